//! Reconciliation tab: one row per check, numbers right-aligned, status as glyph + word.
//! Each check shows target − source; money carries its currency. On narrow screens the
//! selected check's difference and detail go on their own line.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span, Text};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, TableState};

use super::fit::{Part, fit};
use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, CheckFigures, check_figures, check_glyph_word};
use crate::journal::events::CheckResult;

const STATUS_WIDTH: u16 = 6;
const ENTITY_WIDTH: u16 = 13;
/// The selection marker's column left of the rows.
const HIGHLIGHT_WIDTH: u16 = 1;

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
    // Narrow: the cell right of the status column. Rows whose numbers fit one line there
    // share right-aligned columns; a row whose numbers do not goes on two more lines, never
    // cut (a cut `20,916,456.73` reads `,456.73`).
    let cell_w = table_area
        .width
        .saturating_sub(STATUS_WIDTH + 1 + HIGHLIGHT_WIDTH) as usize;
    let unit_len = |i: usize| {
        app.view.checks[i]
            .result
            .currency
            .as_ref()
            .map_or(0, |u| u.chars().count() + 1)
    };
    let len = |s: &str| s.chars().count();
    let own_w = |i: usize| len(&figures[i].source) + 1 + len(&figures[i].target) + unit_len(i);
    let mut one_line = vec![true; figures.len()];
    let columns = |one_line: &[bool]| {
        let shared = (0..figures.len()).filter(|&i| wide || one_line[i]);
        let (mut s, mut t, mut d, mut u) = (len("source"), len("target"), len("difference"), 0);
        for i in shared {
            s = s.max(len(&figures[i].source));
            t = t.max(len(&figures[i].target));
            d = d.max(len(&figures[i].difference));
            u = u.max(unit_len(i));
        }
        (s, t, d, u)
    };
    let too_wide = |one_line: &[bool]| {
        let (s, t, _, u) = columns(one_line);
        s + 1 + t + u > cell_w
    };
    while !wide && too_wide(&one_line) {
        let widest = (0..figures.len())
            .filter(|&i| one_line[i])
            .max_by_key(|&i| own_w(i));
        match widest {
            Some(i) => one_line[i] = false,
            None => break,
        }
    }
    let (src_w, tgt_w, diff_w, unit_w) = columns(&one_line);
    let (src_w, tgt_w, diff_w) = (src_w as u16, tgt_w as u16, diff_w as u16);
    let right = |s: &str| Cell::from(Line::from(s.to_string()).right_aligned());
    let numbers_line = |source: &str, target: &str, unit: &str| {
        format!(
            "{source:>sw$} {target:>tw$}{unit:<uw$}",
            sw = src_w as usize,
            tw = tgt_w as usize,
            uw = unit_w
        )
    };

    let sel = app.recon_scroll.min(app.view.checks.len() - 1);
    let rows = app
        .view
        .checks
        .iter()
        .zip(&figures)
        .enumerate()
        .map(|(i, (c, f))| {
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
                // What was checked, then the numbers right-aligned in fixed columns: on one
                // line when both fit the cell, else source and target on a line each.
                let unit = c
                    .result
                    .currency
                    .as_ref()
                    .map(|u| format!(" {u}"))
                    .unwrap_or_default();
                let mut lines = vec![fit(
                    vec![
                        Part::label(c.result.name.clone()),
                        Part::sep(" · "),
                        Part::label(c.result.entity.clone()),
                    ],
                    cell_w,
                )];
                if !one_line[i] {
                    for (word, fig) in [("source", &f.source), ("target", &f.target)] {
                        let fig = format!("{fig}{unit}");
                        let room = cell_w.saturating_sub(fig.chars().count() + 1);
                        lines.push(Line::from(vec![
                            Span::styled(
                                format!("{:<room$} ", super::fit::ellipsis(word, room)),
                                style::dim(),
                            ),
                            Span::raw(fig),
                        ]));
                    }
                } else {
                    lines.push(
                        Line::from(numbers_line(&f.source, &f.target, &unit)).right_aligned(),
                    );
                }
                let height = lines.len() as u16;
                Row::new(vec![status, Cell::from(Text::from(lines))]).height(height)
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
        let nums = numbers_line("source", "target", "");
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
        let mut parts = vec![Part::sep(" ")];
        if diff != "–" {
            parts.extend([Part::sep("Δ "), Part::figure(diff)]);
        }
        if !c.result.detail.is_empty() {
            if parts.len() > 1 {
                parts.push(Part::sep(" · "));
            }
            parts.push(Part::label(c.result.detail.clone()));
        }
        if parts.len() == 1 {
            parts.push(Part::label(format!("{}: (no detail)", c.result.name)));
        }
        let text = fit(parts, detail_area.width as usize).style(style::dim());
        frame.render_widget(Paragraph::new(text), detail_area);
    }
}
