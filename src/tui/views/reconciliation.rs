//! Reconciliation tab: one row per check, numbers right-aligned, status as glyph + word.
//! Each check shows target − source; money carries its currency. On narrow screens the
//! selected check's difference and detail go on their own line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, CheckFigures, check_figures, check_glyph_word};
use crate::journal::events::CheckResult;

const STATUS_WIDTH: u16 = 6;
const ENTITY_WIDTH: u16 = 13;
/// Widest number column allowed ("-1,234,567.89 EUR" is 17).
const NUMBER_MAX_WIDTH: usize = 20;

/// Figures without the currency: the narrow layout names it once per row.
fn bare_figures(r: &CheckResult) -> CheckFigures {
    check_figures(&CheckResult {
        currency: None,
        ..r.clone()
    })
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(format!(
        " Reconciliation · {} checks ",
        app.view.checks.len()
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.view.checks.is_empty() {
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

    // Wide: money with its currency in every column. Narrow: bare numbers, the currency
    // once after them, as three money columns do not fit in 40 columns.
    let figures: Vec<CheckFigures> = app
        .view
        .checks
        .iter()
        .map(|c| {
            if wide {
                check_figures(&c.result)
            } else {
                bare_figures(&c.result)
            }
        })
        .collect();
    let num_w = |f: fn(&CheckFigures) -> &str, title: &str| {
        figures
            .iter()
            .map(|c| f(c).chars().count())
            .chain([title.len()])
            .max()
            .unwrap_or(6)
            .min(NUMBER_MAX_WIDTH) as u16
    };
    let src_w = num_w(|f| &f.source, "source");
    let tgt_w = num_w(|f| &f.target, "target");
    let diff_w = num_w(|f| &f.difference, "difference");
    // " EUR" after the narrow numbers; rows without a currency pad so columns line up.
    let unit_w = app
        .view
        .checks
        .iter()
        .filter_map(|c| c.result.currency.as_ref().map(|u| u.chars().count() + 1))
        .max()
        .unwrap_or(0);
    let right = |s: &str| Cell::from(Line::from(s.to_string()).right_aligned());

    let sel = app.recon_scroll.min(app.view.checks.len() - 1);
    let rows = app.view.checks.iter().zip(&figures).map(|(c, f)| {
        let (g, w, t) = check_glyph_word(c.result.status);
        let status = Cell::from(Span::styled(format!("{g} {w}"), style::tone(t)));
        if wide {
            Row::new(vec![
                status,
                Cell::from(c.result.name.clone()),
                Cell::from(c.result.entity.clone()),
                right(&f.source),
                right(&f.target),
                right(&f.difference),
                Cell::from(Span::styled(c.result.detail.clone(), style::dim())),
            ])
        } else {
            // Two lines: what was checked, then the numbers right-aligned in fixed columns.
            let unit = c
                .result
                .currency
                .as_ref()
                .map(|u| format!(" {u}"))
                .unwrap_or_default();
            let numbers = format!(
                "{:>sw$} {:>tw$}{unit:<uw$}",
                f.source,
                f.target,
                sw = src_w as usize,
                tw = tgt_w as usize,
                uw = unit_w
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
            vec![
                "status",
                "check",
                "entity",
                "source",
                "target",
                "difference",
                "detail",
            ],
            vec![
                Constraint::Length(STATUS_WIDTH),
                Constraint::Fill(1),
                Constraint::Length(ENTITY_WIDTH),
                Constraint::Length(src_w),
                Constraint::Length(tgt_w),
                Constraint::Length(diff_w),
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
            if matches!(h, "source" | "target" | "difference") {
                right(h)
            } else {
                Cell::from(h)
            }
        }))
        .style(style::header_row())
    } else {
        let nums = format!(
            "{:>sw$} {:>tw$}{:uw$}",
            "source",
            "target",
            "",
            sw = src_w as usize,
            tw = tgt_w as usize,
            uw = unit_w
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
        let c = &app.view.checks[sel];
        // The selected row above names the check; this line has room for Δ and the why.
        let diff = check_figures(&c.result).difference;
        let mut parts = Vec::new();
        if diff != "–" {
            parts.push(format!("Δ {diff}"));
        }
        if !c.result.detail.is_empty() {
            parts.push(c.result.detail.clone());
        }
        let text = if parts.is_empty() {
            format!(" {}: (no detail)", c.result.name)
        } else {
            format!(" {}", parts.join(" · "))
        };
        frame.render_widget(
            Paragraph::new(Span::styled(text, style::dim())),
            detail_area,
        );
    }
}
