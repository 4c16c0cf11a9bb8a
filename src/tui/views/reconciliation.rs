//! Reconciliation tab: one row per check, numbers right-aligned, status as glyph + word.
//! On narrow screens the selected check's detail goes on its own line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, check_glyph_word};

const STATUS_WIDTH: u16 = 6;
const ENTITY_WIDTH: u16 = 13;
/// Widest number column allowed ("1,234,567.89" is 12).
const NUMBER_MAX_WIDTH: usize = 16;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(format!(" Reconciliation · {} checks ", app.checks.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.checks.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(" No checks recorded yet.", style::dim())),
            inner,
        );
        return;
    }
    let wide = frame.area().width >= WIDE_MIN_WIDTH;
    let [table_area, detail_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(if wide { 0 } else { 1 }),
    ])
    .areas(inner);

    let num_w = |f: fn(&crate::app::CheckRow) -> &str, title: &str| {
        app.checks
            .iter()
            .map(|c| f(c).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(6)
            .min(NUMBER_MAX_WIDTH) as u16
    };
    let src_w = num_w(|c| &c.result.source, "source");
    let tgt_w = num_w(|c| &c.result.target, "target");
    let right = |s: &str| Cell::from(Line::from(s.to_string()).right_aligned());

    let sel = app.recon_scroll.min(app.checks.len() - 1);
    let rows = app.checks.iter().map(|c| {
        let (g, w, t) = check_glyph_word(c.result.status);
        let status = Cell::from(Span::styled(format!("{g} {w}"), style::tone(t)));
        if wide {
            Row::new(vec![
                status,
                Cell::from(c.result.name.clone()),
                Cell::from(c.result.entity.clone()),
                right(&c.result.source),
                right(&c.result.target),
                Cell::from(Span::styled(c.result.detail.clone(), style::dim())),
            ])
        } else {
            // Two lines: what was checked, then the numbers right-aligned in fixed columns.
            let numbers = format!(
                "{:>sw$} {:>tw$}",
                c.result.source,
                c.result.target,
                sw = src_w as usize,
                tw = tgt_w as usize
            );
            let text = Text::from(vec![
                Line::from(format!("{} · {}", c.result.name, c.result.entity)),
                Line::from(numbers).right_aligned(),
            ]);
            Row::new(vec![status, Cell::from(text)]).height(2)
        }
    });
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec!["status", "check", "entity", "source", "target", "detail"],
            vec![
                Constraint::Length(STATUS_WIDTH),
                Constraint::Fill(1),
                Constraint::Length(ENTITY_WIDTH),
                Constraint::Length(src_w),
                Constraint::Length(tgt_w),
                Constraint::Fill(2),
            ],
        )
    } else {
        (
            vec![],
            vec![Constraint::Length(STATUS_WIDTH), Constraint::Fill(1)],
        )
    };
    let header = if wide {
        Row::new(header.into_iter().map(|h| {
            if h == "source" || h == "target" {
                right(h)
            } else {
                Cell::from(h)
            }
        }))
        .style(style::header_row())
    } else {
        let nums = format!(
            "{:>sw$} {:>tw$}",
            "source",
            "target",
            sw = src_w as usize,
            tw = tgt_w as usize
        );
        Row::new(vec![
            Cell::from("status"),
            Cell::from(Text::from(vec![
                Line::from("check · entity"),
                Line::from(nums).right_aligned(),
            ])),
        ])
        .height(2)
        .style(style::header_row())
    };
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(style::selected())
        .highlight_symbol("▶");
    let mut state = TableState::default().with_selected(Some(sel));
    frame.render_stateful_widget(table, table_area, &mut state);

    if !wide {
        let c = &app.checks[sel];
        let detail = if c.result.detail.is_empty() {
            "(no detail)"
        } else {
            &c.result.detail
        };
        frame.render_widget(
            Paragraph::new(Span::styled(
                format!(" {}: {detail}", c.result.name),
                style::dim(),
            )),
            detail_area,
        );
    }
}
