//! Rollback dialog (modal, drawn over everything but the help): the manual rollback (`R`)
//! or the console's proposal once the window is exceeded. It says what a rollback does and
//! what it costs in time, then asks for the production database's name and a reason. The
//! confirm key only counts once the name matches exactly; `app::update` sends the command.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::form::{MARK_WIDTH, field_label, match_mark, modal, text_field};
use super::style;
use crate::app::{App, RollbackField, RollbackOrigin, Tone, fmt_clock, fmt_secs};

const MAX_WIDTH: u16 = 92;
/// Field label column ("▸ Database  ").
const LABEL_WIDTH: u16 = 12;
/// Rows under the information block: blank, prompt, 2 fields, message, keys.
const FORM_HEIGHT: u16 = 6;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(name) = app.rollback_confirm_name() else {
        return;
    };
    let d = &app.rollback_dialog;
    let forecast = app.forecast();
    let hm = |t| app.now.map(|now| fmt_clock(t, now)).unwrap_or_default();

    let mut info: Vec<Line> = Vec::new();
    let title = match d.origin {
        RollbackOrigin::WindowExceeded => {
            if let Some(f) = &forecast {
                info.push(Line::styled(
                    format!(
                        "✗ The cutover window ended at {} UTC, {} ago, and the run is not done.",
                        hm(f.window_end),
                        fmt_secs(f.left.num_seconds().unsigned_abs())
                    ),
                    style::tone(Tone::Bad),
                ));
            }
            info.push(Line::styled(
                "Esc dismisses this; it comes back on the next window-exceeded event, or with R.",
                style::dim(),
            ));
            " ↺ Rollback proposed · the cutover window is exceeded "
        }
        RollbackOrigin::Manual => " ↺ Manual rollback ",
    };
    info.push(Line::raw(
        "At its next safe point the run stops and carries out the runbook's rollback plan \
         (production restored from this run's backup and verified).",
    ));
    if let Some(p) = app.production_env() {
        info.push(Line::from(vec![
            Span::styled("▲ PRODUCTION", style::production()),
            Span::styled(
                format!(" {} · {}", p.name, p.display),
                style::tone(Tone::Bad),
            ),
        ]));
    }
    if let Some(f) = &forecast {
        info.push(Line::raw(format!(
            "Going on: finish ~{} UTC ({}). Rolling back takes ~{}.",
            hm(f.projected_finish),
            f.basis.word(),
            fmt_secs(f.rollback().num_seconds().max(0) as u64),
        )));
    }

    let title = Line::from(title).style(style::production());
    let border = style::tone(Tone::Bad);
    let rows = modal(frame, area, MAX_WIDTH, title, border, info, FORM_HEIGHT);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::raw("Type the production database's name to confirm: "),
            Span::styled(name.to_string(), style::key()),
        ])),
        rows[1],
    );
    let matches = d.name_matches(name);
    for (i, field) in RollbackField::ALL.into_iter().enumerate() {
        let [label, value, mark] = Layout::horizontal([
            Constraint::Length(LABEL_WIDTH),
            Constraint::Fill(1),
            Constraint::Length(MARK_WIDTH),
        ])
        .areas(rows[i + 2]);
        frame.render_widget(
            Paragraph::new(field_label(field.label(), field == d.focus)),
            label,
        );
        text_field(frame, value, d.field_input(field), field == d.focus);
        if field == RollbackField::Database
            && let Some(m) = match_mark(d.database.value(), matches)
        {
            frame.render_widget(Paragraph::new(m), mark);
        }
    }

    let message = match &d.error {
        Some(e) => Line::styled(format!("✗ {e}"), style::tone(Tone::Bad)),
        None => Line::raw(""),
    };
    frame.render_widget(Paragraph::new(message), rows[4]);
    let confirm = if matches {
        Span::styled(
            "Enter ROLL BACK",
            style::production().add_modifier(Modifier::BOLD),
        )
    } else {
        Span::styled("Enter roll back (type the name)", style::dim())
    };
    let esc = match d.origin {
        RollbackOrigin::WindowExceeded => " dismiss (R reopens)",
        RollbackOrigin::Manual => " cancel (R reopens)",
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            confirm,
            Span::raw(" · "),
            Span::styled("Tab", style::key()),
            Span::raw(" field · "),
            Span::styled("Esc", style::key()),
            Span::raw(esc),
        ])),
        rows[5],
    );
}
