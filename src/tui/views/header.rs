//! Header, two lines: runbook and run on the left, the window clock's headline and the
//! overall status on the right; then the environments in words, production marked
//! `▲ PRODUCTION`, with the window clock's details (projected finish, point of no return)
//! on the right.
//!
//! The window clock, from the app's [`Forecast`](crate::window::Forecast):
//!
//! ```text
//!  TMS → Odoo cutover · run-…                      window 3h12m left │ ▶ RUNNING load
//!  legacy · staging · ▲ PRODUCTION production          finish ~19:48 · PNR 22:45
//! ```
//! The headline turns to `✗ PAST POINT OF NO RETURN` once the point of no return has
//! passed and to `✗ WINDOW EXCEEDED by …` once the window has; an overrunning projection
//! reads `! finish ~… OVERRUNS`. The details line shows the longest of its variants that
//! fits beside the environments (so 80 columns get `PNR`, wide screens the basis too); the
//! run id gives way first when the top line is too narrow.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, Tone, fmt_clock, fmt_secs};
use crate::journal::events::RunMode;

/// Under this much time left the headline turns to the warning tone.
const WARN_LEFT_SECS: i64 = 1800;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let [top, envs] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let clock = clock(app);

    let (glyph, word, tone) = app.status();
    let mut right = Vec::new();
    if let Some((headline, _)) = &clock {
        right.push(headline.clone());
        right.push(Span::raw(" │ "));
    }
    right.push(Span::styled(format!("{glyph} {word} "), style::tone(tone)));
    let right = Line::from(right).right_aligned();
    let right_w = right.width() as u16;

    let name = if app.view.runbook_name.is_empty() {
        "cutover"
    } else {
        &app.view.runbook_name
    };
    let room = area.width.saturating_sub(right_w + 1) as usize;
    let mut left = vec![Span::styled(format!(" {name}"), style::key())];
    let rehearsal = (app.view.mode == Some(RunMode::Rehearse))
        .then(|| Span::styled(" · REHEARSAL", style::key()));
    let needed = left[0].width() + rehearsal.as_ref().map_or(0, Span::width);
    if let Some(id) = &app.view.run_id {
        // The run id is the first thing to go on a narrow screen.
        let id = Span::styled(format!(" · {id}"), style::dim());
        if needed + id.width() <= room {
            left.push(id);
        }
    }
    left.extend(rehearsal);
    // A long runbook name is cut one column short of the right side, never run into it.
    let [l, _, r] = Layout::horizontal([
        Constraint::Fill(1),
        Constraint::Length(1),
        Constraint::Length(right_w),
    ])
    .areas(top);
    frame.render_widget(Paragraph::new(Line::from(left)), l);
    frame.render_widget(Paragraph::new(right), r);

    let wide = area.width >= WIDE_MIN_WIDTH;
    let mut spans = vec![Span::raw(" ")];
    // `cutover watch`: who drives the run matters more than the environments' names.
    if let Some(holder) = &app.watching {
        spans.push(Span::styled("WATCH (read-only)", style::key()));
        spans.push(Span::styled(format!(" · {holder}"), style::dim()));
    }
    let shown = if app.watching.is_some() {
        &[][..]
    } else {
        &app.view.environments[..]
    };
    for (i, e) in shown.iter().enumerate() {
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
    let envs_line = Line::from(spans);
    // Details: the longest variant that leaves a gap after the environments.
    let room = (area.width as usize).saturating_sub(envs_line.width() + 1);
    let details = clock
        .map(|(_, variants)| variants)
        .unwrap_or_default()
        .into_iter()
        .map(|mut l| {
            l.spans.push(Span::raw(" "));
            l
        })
        .find(|l| l.width() <= room);
    let details_w = details.as_ref().map_or(0, |l| l.width() as u16);
    let [l, r] =
        Layout::horizontal([Constraint::Fill(1), Constraint::Length(details_w)]).areas(envs);
    frame.render_widget(Paragraph::new(envs_line), l);
    if let Some(d) = details {
        frame.render_widget(Paragraph::new(d.right_aligned()), r);
    }
}

/// The window clock: its headline for the top line, and its details, longest variant
/// first. `None` without a window.
fn clock(app: &App) -> Option<(Span<'static>, Vec<Line<'static>>)> {
    let f = app.forecast()?;
    let now = app.now?;
    let at = |t| fmt_clock(t, now);
    let dur = |d: chrono::Duration| fmt_secs(d.num_seconds().unsigned_abs());
    let plain = Style::new();
    let warn = style::tone(Tone::Warn);
    let bad = style::tone(Tone::Bad);
    let line = |parts: Vec<(String, Style)>| {
        let mut spans = Vec::new();
        for (i, (text, st)) in parts.into_iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", style::dim()));
            }
            spans.push(Span::styled(text, st));
        }
        Line::from(spans)
    };
    let end = at(f.window_end);

    if app.is_finished() {
        let spare = f.window_end - f.projected_finish;
        let headline = if spare >= chrono::Duration::zero() {
            Span::styled(
                format!("window: done {} early", dur(spare)),
                style::tone(Tone::Good),
            )
        } else {
            Span::styled(format!("! window: done {} late", dur(spare)), warn)
        };
        return Some((
            headline,
            vec![line(vec![(format!("window end {end}"), plain)])],
        ));
    }

    let fin = at(f.projected_finish);
    let pnr = at(f.point_of_no_return);
    let basis = f.basis.word();
    let (fin_long, fin_mid, fin_short, fin_st) = if f.overruns {
        (
            format!("! finish ~{fin} OVERRUNS ({basis})"),
            format!("! finish ~{fin} OVERRUNS"),
            format!("! ~{fin} OVERRUNS"),
            warn,
        )
    } else {
        (
            format!("finish ~{fin} ({basis})"),
            format!("finish ~{fin}"),
            format!("~{fin}"),
            plain,
        )
    };
    let left = dur(f.left);

    let (headline, variants) = if f.exceeded {
        (
            Span::styled(format!("✗ WINDOW EXCEEDED by {left}"), bad),
            vec![
                vec![(format!("window ended {end}"), bad), (fin_long, fin_st)],
                vec![
                    (format!("window ended {end}"), bad),
                    (fin_mid.clone(), fin_st),
                ],
                vec![(format!("ended {end}"), bad), (fin_mid, fin_st)],
                vec![(format!("ended {end}"), bad), (fin_short, fin_st)],
                vec![(format!("ended {end}"), bad)],
            ],
        )
    } else if f.past_point_of_no_return {
        (
            Span::styled("✗ PAST POINT OF NO RETURN", bad),
            vec![
                vec![
                    (format!("window {left} left"), plain),
                    (fin_long, fin_st),
                    (format!("point of no return was {pnr}"), bad),
                ],
                vec![
                    (format!("window {left} left"), plain),
                    (fin_mid.clone(), fin_st),
                    (format!("PNR was {pnr}"), bad),
                ],
                vec![(format!("{left} left"), plain), (fin_mid, fin_st)],
                vec![(format!("{left} left"), plain), (fin_short, fin_st)],
                vec![(format!("{left} left"), plain)],
            ],
        )
    } else {
        let tone = if f.overruns || f.left.num_seconds() < WARN_LEFT_SECS {
            warn
        } else {
            plain
        };
        let mut variants = vec![
            vec![
                (fin_long, fin_st),
                (format!("point of no return {pnr}"), plain),
            ],
            vec![
                (fin_mid.clone(), fin_st),
                (format!("point of no return {pnr}"), plain),
            ],
            vec![(fin_mid, fin_st), (format!("PNR {pnr}"), plain)],
            vec![(fin_short.clone(), fin_st), (format!("PNR {pnr}"), plain)],
        ];
        // Last resort: the alarm if there is one, else the point of no return.
        variants.push(if f.overruns {
            vec![(fin_short, fin_st)]
        } else {
            vec![(format!("PNR {pnr}"), plain)]
        });
        (Span::styled(format!("window {left} left"), tone), variants)
    };
    Some((headline, variants.into_iter().map(line).collect()))
}
