//! Sign-off dialog (modal). Shows the gate, the recommendation and its reasons, quorum,
//! roles, expected approvers and sign-offs so far, then the Name / Role / Comment fields
//! and the GO / NO-GO choice. It only collects; `app::update` hands back the `SignOff`.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::style;
use crate::app::{App, Field, Tone, decision_glyph_word};
use crate::journal::events::Decision;

const MAX_WIDTH: u16 = 92;
/// Field label column ("▸ Comment  ").
const LABEL_WIDTH: u16 = 12;
/// Rows under the information block: blank, 3 fields, decision, message, keys.
const FORM_HEIGHT: u16 = 7;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let Some(gate) = app.open_gate() else { return };
    let d = &app.dialog;

    let mut info: Vec<Line> = Vec::new();
    let (g, w, t) = decision_glyph_word(gate.recommendation);
    info.push(Line::from(vec![
        Span::raw("Recommendation: "),
        Span::styled(
            format!("{g} {w}"),
            style::tone(t).add_modifier(ratatui::style::Modifier::BOLD),
        ),
    ]));
    for r in &gate.reasons {
        info.push(Line::raw(format!("  • {r}")));
    }
    info.push(Line::raw(format!(
        "Quorum: {} · roles: {}",
        gate.quorum,
        gate.roles.join(", ")
    )));
    info.push(Line::raw(format!(
        "Approvers: {}",
        gate.approvers.join(", ")
    )));
    info.push(Line::raw(format!(
        "Sign-offs so far: {} of {}",
        gate.signoffs.len(),
        gate.quorum
    )));
    for s in &gate.signoffs {
        let (g, w, t) = decision_glyph_word(s.decision);
        let comment = if s.comment.is_empty() {
            String::new()
        } else {
            format!(": {}", s.comment)
        };
        info.push(Line::from(vec![
            Span::raw("  "),
            Span::styled(format!("{g} {w}"), style::tone(t)),
            Span::raw(format!(" {} ({}){comment}", s.name, s.role)),
        ]));
    }

    let width = area.width.saturating_sub(4).min(MAX_WIDTH);
    let inner_w = width.saturating_sub(2);
    // Wrapped height of the information block, roughly: long reasons take two rows.
    let info_h: u16 = info
        .iter()
        .map(|l| (l.width() as u16).div_ceil(inner_w.max(1)).max(1))
        .sum();
    let height = (info_h + FORM_HEIGHT + 2).min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    frame.render_widget(Clear, popup);
    let block = Block::bordered()
        .title(
            Line::from(format!(" Sign-off · {}: {} ", gate.gate, gate.title)).style(style::key()),
        )
        .border_style(style::key());
    let inner = block.inner(popup);
    frame.render_widget(block, popup);

    let [info_area, form_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(FORM_HEIGHT)]).areas(inner);
    frame.render_widget(Paragraph::new(info).wrap(Wrap { trim: false }), info_area);

    let rows = Layout::vertical([Constraint::Length(1); FORM_HEIGHT as usize]).split(form_area);
    let focus = d.focus();
    for (i, field) in [Field::Name, Field::Role, Field::Comment]
        .into_iter()
        .enumerate()
    {
        let row = rows[i + 1];
        let [label, value] =
            Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Fill(1)]).areas(row);
        frame.render_widget(Paragraph::new(label_line(field, focus)), label);
        let input = d.field_input(field).expect("text field");
        let w = value.width.saturating_sub(2).max(1) as usize;
        let scroll = input.visual_scroll(w);
        let shown: String = input.value().chars().skip(scroll).take(w).collect();
        let pad = w.saturating_sub(shown.chars().count());
        let value_style = if field == focus {
            style::key().add_modifier(ratatui::style::Modifier::UNDERLINED)
        } else {
            style::dim()
        };
        let line = Line::from(vec![
            Span::raw("["),
            Span::styled(format!("{shown}{}", " ".repeat(pad)), value_style),
            Span::raw("]"),
        ]);
        frame.render_widget(Paragraph::new(line), value);
        if field == focus {
            let x = value.x + 1 + (input.visual_cursor().saturating_sub(scroll)) as u16;
            frame.set_cursor_position(Position::new(
                x.min(value.right().saturating_sub(1)),
                value.y,
            ));
        }
    }

    let [label, value] =
        Layout::horizontal([Constraint::Length(LABEL_WIDTH), Constraint::Fill(1)]).areas(rows[4]);
    frame.render_widget(Paragraph::new(label_line(Field::Decision, focus)), label);
    let choice = |dec: Decision| {
        let (g, w, t) = decision_glyph_word(dec);
        let chosen = d.decision == Some(dec);
        let mark = if chosen { "(•)" } else { "( )" };
        let st = if chosen {
            style::tone(t)
                .add_modifier(ratatui::style::Modifier::REVERSED | ratatui::style::Modifier::BOLD)
        } else {
            ratatui::style::Style::new()
        };
        Span::styled(format!("{mark} {g} {w}"), st)
    };
    let hint = if focus == Field::Decision {
        "   ←/→ or g / n"
    } else {
        ""
    };
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            choice(Decision::Go),
            Span::raw("   "),
            choice(Decision::NoGo),
            Span::styled(hint, style::dim()),
        ])),
        value,
    );

    let message = match &d.error {
        Some(e) => Line::styled(format!("✗ {e}"), style::tone(Tone::Bad)),
        None if d.decision == Some(Decision::NoGo) => {
            Line::styled("A NO-GO needs a comment giving the reason.", style::dim())
        }
        None => Line::raw(""),
    };
    frame.render_widget(Paragraph::new(message), rows[5]);
    frame.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("Enter", style::key()),
            Span::raw(" submit · "),
            Span::styled("Tab/↑↓", style::key()),
            Span::raw(" field · "),
            Span::styled("Esc", style::key()),
            Span::raw(" hide (g reopens) · "),
            Span::styled("Ctrl-C", style::key()),
            Span::raw(" abort run"),
        ])),
        rows[6],
    );
}

fn label_line(field: Field, focus: Field) -> Line<'static> {
    if field == focus {
        Line::styled(format!("▸ {}", field.label()), style::key())
    } else {
        Line::raw(format!("  {}", field.label()))
    }
}
