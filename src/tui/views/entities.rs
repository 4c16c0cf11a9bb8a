//! Entities pane: one gauge per entity (two lines when there is room): read against
//! expected, then valid / rejected / loaded counts, rows per second and ETA.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, LineGauge, Paragraph};

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, EntityRow, Tone, entity_phase, fmt_count, fmt_secs};

/// Entity name column beside each gauge.
const NAME_WIDTH: u16 = 14;
/// "100% ETA 59m59s" / "✓ done".
const RIGHT_WIDTH: u16 = 16;

/// Rows this pane wants: borders plus two lines per entity (at least one line).
pub fn wanted_height(app: &App) -> u16 {
    2 + 2 * (app.entities.len().max(1) as u16)
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let phase = app.entities.values().last().map(entity_phase).unwrap_or("");
    let title = if phase.is_empty() {
        " Entities ".to_string()
    } else {
        format!(" Entities · {phase} ")
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.entities.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(" no entity started yet", style::dim())),
            inner,
        );
        return;
    }
    let n = app.entities.len() as u16;
    let two_lines = inner.height >= 2 * n;
    let per = if two_lines { 2 } else { 1 };
    let wide = frame.area().width >= WIDE_MIN_WIDTH;
    let shown = (inner.height / per) as usize;
    for (i, e) in app.entities.values().take(shown).enumerate() {
        let y = inner.y + i as u16 * per;
        let line1 = Rect {
            y,
            height: 1,
            ..inner
        };
        render_gauge_line(frame, e, line1);
        if two_lines {
            let line2 = Rect {
                y: y + 1,
                height: 1,
                ..inner
            };
            frame.render_widget(Paragraph::new(stats_line(e, wide)), line2);
        }
    }
    if shown < app.entities.len() {
        let last = Rect {
            y: inner.bottom() - 1,
            height: 1,
            ..inner
        };
        let more = format!(" +{} more", app.entities.len() - shown + 1);
        frame.render_widget(Clear, last);
        frame.render_widget(
            Paragraph::new(Span::styled(more, style::dim())).right_aligned(),
            last,
        );
    }
}

fn render_gauge_line(frame: &mut Frame, e: &EntityRow, area: Rect) {
    let [name, gauge, right] = Layout::horizontal([
        Constraint::Length(NAME_WIDTH),
        Constraint::Fill(1),
        Constraint::Length(RIGHT_WIDTH),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(format!(" {}", e.entity)), name);
    let tone = if e.done { Tone::Good } else { Tone::Active };
    let g = LineGauge::default()
        .ratio(e.ratio())
        .label("")
        .filled_symbol("█")
        .unfilled_symbol("░")
        .filled_style(style::tone(tone))
        .unfilled_style(style::dim());
    frame.render_widget(g, gauge);
    let text = if e.done {
        Line::from(Span::styled(" ✓ done", style::tone(Tone::Good)))
    } else {
        let pct = (e.ratio() * 100.0).floor() as u64;
        let eta = e
            .eta_secs()
            .map(|s| format!(" ETA {}", fmt_secs(s)))
            .unwrap_or_default();
        Line::from(format!(" {pct:>3}%{eta}"))
    };
    frame.render_widget(Paragraph::new(text), right);
}

fn stats_line(e: &EntityRow, wide: bool) -> Line<'static> {
    let warn = |s: String, on: bool| {
        if on {
            Span::styled(s, style::tone(Tone::Warn))
        } else {
            Span::raw(s)
        }
    };
    if !wide {
        // The gauge line already says how far reading is; keep what fits in ~40 columns.
        return Line::from(vec![
            Span::raw(format!("  valid {}", fmt_count(e.valid))),
            warn(format!(" · rej {}", fmt_count(e.rejected)), e.rejected > 0),
            Span::raw(format!(" · loaded {}", fmt_count(e.loaded))),
        ]);
    }
    let mut spans = vec![
        Span::raw(format!(
            "   read {}/{}",
            fmt_count(e.read),
            fmt_count(e.expected)
        )),
        Span::raw(format!(" · valid {}", fmt_count(e.valid))),
        warn(
            format!(" · rejected {}", fmt_count(e.rejected)),
            e.rejected > 0,
        ),
        Span::raw(format!(" · loaded {}", fmt_count(e.loaded))),
    ];
    if let Some(r) = e.rate() {
        spans.push(Span::styled(
            format!(" · {} rows/s", fmt_count(r.round() as u64)),
            style::dim(),
        ));
    }
    Line::from(spans)
}
