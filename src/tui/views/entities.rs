//! Entities pane: one gauge per entity (more lines when there is room): read against
//! expected, then valid / rejected / loaded counts, rows per second and ETA, and for a
//! running entity a sparkline of its rows/s over the last samples. Short of room, done
//! entities give up their counts line first, then running ones their sparkline.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, LineGauge, Paragraph, Sparkline};

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, EntityRow, Throughput, Tone, entity_phase, fmt_count, fmt_secs, phase_word};

/// Entity name column beside each gauge.
const NAME_WIDTH: u16 = 14;
/// "100% ETA 59m59s" / "✓ done".
const RIGHT_WIDTH: u16 = 16;
/// "  rows/s " before a sparkline and "12,345 now" after it.
const SPARK_LABEL_WIDTH: u16 = 9;
const SPARK_RIGHT_WIDTH: u16 = 11;

/// Lines an entity takes with all there is to show: gauge, counts, and the sparkline
/// while it runs.
fn full_lines(e: &EntityRow) -> u16 {
    if e.done { 2 } else { 3 }
}

/// Rows this pane wants: borders plus every entity's full lines (at least one line).
pub fn wanted_height(app: &App) -> u16 {
    2 + app
        .view
        .entities
        .values()
        .map(full_lines)
        .sum::<u16>()
        .max(1)
}

/// Lines each entity gets in `height` rows: all of them; else done entities one line
/// (gauge) and running ones three; else two each; else one each.
fn lines_per_entity(app: &App, height: u16) -> Vec<u16> {
    let n = app.view.entities.len() as u16;
    let running = app.view.entities.values().filter(|e| !e.done).count() as u16;
    let full: u16 = app.view.entities.values().map(full_lines).sum();
    app.view
        .entities
        .values()
        .map(|e| {
            if height >= full {
                full_lines(e)
            } else if height >= n + 2 * running {
                if e.done { 1 } else { 3 }
            } else if height >= 2 * n {
                2
            } else {
                1
            }
        })
        .collect()
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let phase = match app.view.pipeline_phase {
        Some(p) => phase_word(Some(p)),
        None => app
            .view
            .entities
            .values()
            .last()
            .map(entity_phase)
            .unwrap_or(""),
    };
    let title = if phase.is_empty() {
        " Entities ".to_string()
    } else {
        format!(" Entities · {phase} ")
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    if app.view.entities.is_empty() {
        frame.render_widget(
            Paragraph::new(Span::styled(" no entity started yet", style::dim())),
            inner,
        );
        return;
    }
    let wide = frame.area().width >= WIDE_MIN_WIDTH;
    let line = |y: u16| Rect {
        y,
        height: 1,
        ..inner
    };
    let mut y = inner.y;
    let mut shown = 0;
    for (e, lines) in app
        .view
        .entities
        .values()
        .zip(lines_per_entity(app, inner.height))
    {
        if y + lines > inner.bottom() {
            break;
        }
        render_gauge_line(frame, e, line(y));
        if lines == 3 {
            let spark = app.running_throughput(&e.entity);
            render_sparkline(frame, spark, line(y + 1));
        }
        if lines >= 2 {
            frame.render_widget(Paragraph::new(stats_line(e, wide)), line(y + lines - 1));
        }
        y += lines;
        shown += 1;
    }
    if shown < app.view.entities.len() {
        let last = line(inner.bottom() - 1);
        let more = format!(" +{} more", app.view.entities.len() - shown + 1);
        frame.render_widget(Clear, last);
        frame.render_widget(
            Paragraph::new(Span::styled(more, style::dim())).right_aligned(),
            last,
        );
    }
}

/// `  rows/s ▂▃▅▇▆▅ 60 now`: the newest samples that fit, the latest rate on the right.
fn render_sparkline(frame: &mut Frame, t: Option<&Throughput>, area: Rect) {
    let [name, spark, right] = Layout::horizontal([
        Constraint::Length(SPARK_LABEL_WIDTH),
        Constraint::Fill(1),
        Constraint::Length(SPARK_RIGHT_WIDTH),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(Span::styled("  rows/s", style::dim())), name);
    let samples: Vec<u64> = t
        .map(|t| t.samples.iter().copied().collect())
        .unwrap_or_default();
    let from = samples.len().saturating_sub(spark.width as usize);
    frame.render_widget(
        Sparkline::default()
            .data(&samples[from..])
            .style(style::tone(Tone::Active)),
        spark,
    );
    let latest = match t.and_then(Throughput::latest) {
        Some(r) => format!(" {} now", fmt_count(r)),
        None => " measuring".to_string(),
    };
    frame.render_widget(Paragraph::new(Span::styled(latest, style::dim())), right);
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
