//! Header, two lines: runbook and run on the left, window time and overall status on the
//! right; then the environments in words, production marked `▲ PRODUCTION`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, Tone, fmt_secs};

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let [top, envs] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);

    let (glyph, word, tone) = app.status();
    let mut right = Vec::new();
    if let Some(left) = app.window_left_secs() {
        let (text, t) = if left >= 0 {
            (
                format!("window {} left", fmt_secs(left as u64)),
                if left < 1800 {
                    Tone::Warn
                } else {
                    Tone::Neutral
                },
            )
        } else {
            (
                format!("window OVER by {}", fmt_secs(left.unsigned_abs())),
                Tone::Bad,
            )
        };
        right.push(Span::styled(text, style::tone(t)));
        right.push(Span::raw(" │ "));
    }
    right.push(Span::styled(format!("{glyph} {word} "), style::tone(tone)));
    let right = Line::from(right).right_aligned();
    let right_w = right.width() as u16;

    let name = if app.runbook_name.is_empty() {
        "cutover"
    } else {
        &app.runbook_name
    };
    let mut left = vec![Span::styled(format!(" {name}"), style::key())];
    if let Some(id) = &app.run_id {
        left.push(Span::styled(format!(" · {id}"), style::dim()));
    }
    if let Some(crate::journal::events::RunMode::Rehearse) = app.mode {
        left.push(Span::styled(" · REHEARSAL", style::key()));
    }
    let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Length(right_w)]).areas(top);
    frame.render_widget(Paragraph::new(Line::from(left)), l);
    frame.render_widget(Paragraph::new(right), r);

    let wide = area.width >= WIDE_MIN_WIDTH;
    let mut spans = vec![Span::raw(" ")];
    for (i, e) in app.environments.iter().enumerate() {
        if i > 0 {
            spans.push(Span::styled(" · ", style::dim()));
        }
        let text = if wide {
            format!("{}: {}", e.name, e.display)
        } else {
            e.name.clone()
        };
        if e.production {
            spans.push(Span::styled("▲ PRODUCTION", style::production()));
            spans.push(Span::styled(format!(" {text}"), style::tone(Tone::Bad)));
        } else {
            spans.push(Span::raw(text));
        }
    }
    frame.render_widget(Paragraph::new(Line::from(spans)), envs);
}
