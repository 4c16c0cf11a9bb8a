//! Footer: the main keys (labels from the keymap table), or the question after `q`, or
//! the outcome once the run has finished, or a notice.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::style;
use crate::app::keymap::{KEYMAP, KeyContext, binding_keys};
use crate::app::{Action, App, RejectAction, Tone, outcome_glyph_word};

/// Actions shown in the footer, with their short word, in order. Keys come from [`KEYMAP`].
/// The last number is the priority: on a narrow screen the lowest go first.
const FOOTER: &[(Action, &str, u8)] = &[
    (Action::Quit, "quit", 9),
    (Action::ToggleHelp, "help", 9),
    (Action::OpenGateDialog, "sign-off", 8),
    (Action::NextTab, "tab", 3),
    (Action::ScrollDown, "scroll", 1),
    (Action::Rejects(RejectAction::CycleEntity), "filter", 2),
    (Action::OpenSkipDialog, "skip", 4),
    (Action::OpenRollbackDialog, "rollback", 8),
];

pub fn keys_for(action: &Action) -> Option<String> {
    [KeyContext::Main, KeyContext::Rejects, KeyContext::Anywhere]
        .iter()
        .find_map(|ctx| {
            KEYMAP
                .iter()
                .find(|b| &b.action == action && b.context == *ctx)
                .map(binding_keys)
        })
        .or_else(|| {
            KEYMAP
                .iter()
                .find(|b| &b.action == action)
                .map(binding_keys)
        })
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let line = if app.confirm_quit {
        Line::from(vec![
            Span::styled(" Abort the run and quit? ", style::production()),
            Span::styled(" y", style::key()),
            Span::raw(" abort · "),
            Span::styled("n", style::key()),
            Span::raw("/"),
            Span::styled("Esc", style::key()),
            Span::raw(" keep running"),
        ])
    } else if let Some(f) = &app.view.finished {
        let (g, w, t) = outcome_glyph_word(f.outcome);
        Line::from(vec![
            Span::styled(
                format!(" Run finished: {g} {w} (exit {}) ", f.exit_code),
                style::tone(t),
            ),
            Span::raw("· "),
            Span::styled("q", style::key()),
            Span::raw(" leave · "),
            Span::styled("?", style::key()),
            Span::raw(" help"),
        ])
    } else if let Some(n) = &app.notice {
        Line::from(vec![
            Span::styled(format!(" {n}"), style::tone(Tone::Active)),
            Span::raw(" · "),
            Span::styled("?", style::key()),
            Span::raw(" help"),
        ])
    } else {
        let mut items: Vec<(String, &str, u8)> = Vec::new();
        for (action, word, priority) in FOOTER {
            if *action == Action::OpenGateDialog && app.open_gate().is_none() {
                continue;
            }
            if matches!(action, Action::Rejects(_)) && app.tab != crate::app::Tab::Rejects {
                continue;
            }
            if *action == Action::OpenRollbackDialog && app.rollback_refusal().is_some() {
                continue;
            }
            if *action == Action::OpenSkipDialog
                && (app.skip_refusal().is_some() || app.skip_candidates().is_empty())
            {
                continue;
            }
            let Some(keys) = keys_for(action) else {
                continue;
            };
            let keys = if *action == Action::ScrollDown {
                "↑↓".to_string()
            } else {
                keys
            };
            items.push((keys, word, *priority));
        }
        // " " + "keys word" joined by " · ".
        let width = |items: &[(String, &str, u8)]| -> usize {
            1 + items
                .iter()
                .map(|(k, w, _)| k.chars().count() + 1 + w.chars().count())
                .sum::<usize>()
                + 3 * items.len().saturating_sub(1)
        };
        while width(&items) > area.width as usize {
            let Some(lowest) = items
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, _, p))| *p)
                .map(|(i, _)| i)
            else {
                break;
            };
            items.remove(lowest);
        }
        let mut spans = vec![Span::raw(" ")];
        for (i, (keys, word, _)) in items.into_iter().enumerate() {
            if i > 0 {
                spans.push(Span::styled(" · ", style::dim()));
            }
            spans.push(Span::styled(keys, style::key()));
            spans.push(Span::raw(format!(" {word}")));
        }
        Line::from(spans)
    };
    frame.render_widget(Paragraph::new(line), area);
}
