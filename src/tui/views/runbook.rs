//! Runbook pane: one row per step, glyph + word state, actual / planned duration; the
//! outcome (or rollback) under it once there is one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Cell, Paragraph, Row, Table, Wrap};

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, StepState, Tone, fmt_secs, outcome_glyph_word};

/// State column: glyph, space, longest word ("rolled back").
const STATE_WIDTH: u16 = 13;
const ID_WIDTH: u16 = 9;
/// "actual / planned", e.g. "21m29s/30m00s".
const DURATION_WIDTH: u16 = 13;
/// Show the newest log lines under the steps when at least this many rows are free.
const RECENT_MIN_ROWS: u16 = 3;

/// Rows this pane wants: borders, header, one per step, and the outcome lines.
pub fn wanted_height(app: &App) -> u16 {
    let footer = footer_lines(app).len() as u16;
    3 + app.view.steps.len() as u16 + if footer > 0 { footer + 1 } else { 0 }
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let block = Block::bordered().title(" Runbook ");
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let footer = footer_lines(app);
    let footer_h = if footer.is_empty() {
        0
    } else {
        (footer.len() as u16 + 1).min(inner.height / 2)
    };
    let [table_area, footer_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(footer_h)]).areas(inner);

    let wide = frame.area().width >= WIDE_MIN_WIDTH;
    let rows = app.view.steps.iter().map(|s| {
        let state = Span::styled(
            format!("{} {}", s.state.glyph(), s.state.word()),
            style::tone(s.state.tone()),
        );
        let actual = s
            .actual_secs(app.now)
            .map(fmt_secs)
            .unwrap_or_else(|| "–".into());
        let planned = s.planned_secs.map(fmt_secs).unwrap_or_else(|| "–".into());
        let late = matches!((s.actual_secs(app.now), s.planned_secs), (Some(a), Some(p)) if a > p);
        let dur_style = if late {
            style::tone(Tone::Warn)
        } else {
            ratatui::style::Style::new()
        };
        let duration = Line::from(vec![
            Span::styled(actual, dur_style),
            Span::styled(format!("/{planned}"), style::dim()),
        ])
        .right_aligned();
        let mut cells = vec![Cell::from(state), Cell::from(s.id.clone())];
        if wide {
            cells.push(Cell::from(Span::styled(s.title.clone(), style::dim())));
        }
        cells.push(Cell::from(duration));
        let row = Row::new(cells);
        if matches!(s.state, StepState::Running | StepState::WaitingSignOff) {
            row.style(style::key())
        } else {
            row
        }
    });
    let widths: Vec<Constraint> = if wide {
        vec![
            Constraint::Length(STATE_WIDTH),
            Constraint::Length(ID_WIDTH),
            Constraint::Fill(1),
            Constraint::Length(DURATION_WIDTH),
        ]
    } else {
        vec![
            Constraint::Length(STATE_WIDTH),
            Constraint::Fill(1),
            Constraint::Length(DURATION_WIDTH),
        ]
    };
    let mut header = vec!["state", "step"];
    if wide {
        header.push("title");
    }
    header.push("actual/plan");
    let header = Row::new(header.into_iter().enumerate().map(|(i, h)| {
        if i == 0 || h != "actual/plan" {
            Cell::from(h)
        } else {
            Cell::from(Line::from(h).right_aligned())
        }
    }))
    .style(style::header_row());
    let table = Table::new(rows, widths).header(header).column_spacing(1);
    frame.render_widget(table, table_area);

    // Spare rows under the steps show the newest log lines (the Log tab has them all).
    let used = 1 + app.view.steps.len() as u16;
    let spare = table_area.height.saturating_sub(used + 1);
    if spare >= RECENT_MIN_ROWS {
        let area = Rect {
            y: table_area.y + used + 1,
            height: spare,
            ..table_area
        };
        let n = spare as usize - 1;
        let mut lines = vec![Line::styled("recent", style::header_row())];
        lines.extend(
            app.log
                .iter()
                .skip(app.log.len().saturating_sub(n))
                .map(|l| super::log::line(l, "")),
        );
        frame.render_widget(Paragraph::new(lines), area);
    }

    if footer_h > 0 {
        let p = Paragraph::new(footer).wrap(Wrap { trim: true });
        frame.render_widget(p, footer_area);
    }
}

fn footer_lines(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(rb) = &app.view.rollback {
        let text = match &rb.finished {
            None => format!("↺ Rolling back: {}", rb.reason),
            Some((true, m)) => format!("↺ Rolled back: {m}"),
            Some((false, m)) => format!("✗ Rollback FAILED: {m}"),
        };
        lines.push(Line::styled(text, style::tone(Tone::Warn)));
    }
    if let Some(f) = &app.view.finished {
        let (g, w, t) = outcome_glyph_word(f.outcome);
        lines.push(Line::from(vec![
            Span::styled(format!("{g} {w}"), style::tone(t)),
            Span::raw(format!(" (exit {}): {}", f.exit_code, f.message)),
        ]));
    } else if let Some(s) = app.view.steps.iter().find(|s| s.state == StepState::Failed) {
        lines.push(Line::styled(
            format!("✗ {}: {}", s.id, s.message),
            style::tone(Tone::Bad),
        ));
    }
    if !lines.is_empty() {
        lines.insert(0, Line::raw(""));
    }
    lines
}
