//! Skip dialog (modal, `s`): which pending step to skip, who asks and why. Only steps not
//! yet started whose kind nothing later rests on are offered (`App::skip_candidates`);
//! `app::update` sends the command and the executor journals the skip when it gets there.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::form::{field_label, modal, text_field};
use super::style;
use crate::app::{App, SkipField, Tone};

const MAX_WIDTH: u16 = 92;
/// Field label column ("▸ Reason  ").
const LABEL_WIDTH: u16 = 10;
/// Rows under the information block: blank, 3 fields, message, keys.
const FORM_HEIGHT: u16 = 6;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let d = &app.skip_dialog;
    let candidates = app.skip_candidates();
    let chosen = d.chosen(&candidates);

    let mut info = vec![Line::raw(
        "The run passes over the step when it gets there; the journal keeps who asked and why.",
    )];
    info.push(Line::styled(
        "Backup, extract, dry run, sign-off and load cannot be skipped: the run's safety rests on them.",
        style::dim(),
    ));
    if candidates.is_empty() {
        info.push(Line::styled(
            "✗ No pending step can be skipped now.",
            style::tone(Tone::Bad),
        ));
    }

    let title = Line::from(" - Skip a step ").style(style::tone(Tone::Warn));
    let border = style::tone(Tone::Warn);
    let rows = modal(frame, area, MAX_WIDTH, title, border, info, FORM_HEIGHT);
    for (i, field) in SkipField::ALL.into_iter().enumerate() {
        let [label, value] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Fill(1)])
                .areas(rows[i + 1]);
        let focused = field == d.focus;
        frame.render_widget(Paragraph::new(field_label(field.label(), focused)), label);
        match d.field_input(field) {
            Some(input) => text_field(frame, value, input, focused),
            None => frame.render_widget(
                Paragraph::new(step_choice(app, chosen, &candidates, focused)),
                value,
            ),
        }
    }

    let message = match &d.error {
        Some(e) => Line::styled(format!("✗ {e}"), style::tone(Tone::Bad)),
        None => Line::raw(""),
    };
    frame.render_widget(Paragraph::new(message), rows[4]);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Enter", style::key()),
            Span::raw(" skip · "),
            Span::styled("←/→", style::key()),
            Span::raw(" step · "),
            Span::styled("Tab", style::key()),
            Span::raw(" field · "),
            Span::styled("Esc", style::key()),
            Span::raw(" cancel (s reopens)"),
        ])),
        rows[5],
    );
}

/// `◂ verify · Verify production (verify) ▸  1 of 3`, or why there is nothing to choose.
fn step_choice(
    app: &App,
    chosen: Option<&String>,
    candidates: &[String],
    focused: bool,
) -> Line<'static> {
    let Some(id) = chosen else {
        return Line::styled("(none pending)", style::dim());
    };
    let at = candidates.iter().position(|c| c == id).unwrap_or(0);
    let row = app.view.steps.iter().find(|s| &s.id == id);
    let mut what = id.clone();
    if let Some(r) = row {
        if r.title != r.id {
            what.push_str(&format!(" · {}", r.title));
        }
        what.push_str(&format!(" ({})", r.kind.name()));
    }
    let value_style = if focused { style::key() } else { style::dim() };
    Line::from(vec![
        Span::raw("◂ "),
        Span::styled(what, value_style),
        Span::raw(" ▸"),
        Span::styled(
            format!("  {} of {}", at + 1, candidates.len()),
            style::dim(),
        ),
    ])
}
