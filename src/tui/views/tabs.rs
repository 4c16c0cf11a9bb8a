//! Tab bar of the detail pane (Rejects, Reconciliation, Log) and the tab body below it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::Tabs;

use super::{log, reconciliation, rejects, style};
use crate::app::{App, Tab};
use crate::journal::events::CheckStatus;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let [bar, body] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(area);
    let badges: Vec<String> = Tab::ALL
        .iter()
        .map(|t| match t {
            Tab::Rejects => format!(" ({})", app.rejects.total()),
            Tab::Reconciliation => {
                let bad = app
                    .view
                    .checks
                    .iter()
                    .filter(|c| c.result.status == CheckStatus::Fail)
                    .count();
                if bad > 0 {
                    format!(" (✗ {bad})")
                } else {
                    format!(" ({})", app.view.checks.len())
                }
            }
            Tab::Log => String::new(),
        })
        .collect();
    // The counts are figures: where the full titles do not fit, the words shorten first.
    let wordings: [fn(Tab) -> &'static str; 3] = [Tab::title, short_title, |_| ""];
    let titles_with = |word: fn(Tab) -> &'static str| -> Vec<Line<'static>> {
        Tab::ALL
            .iter()
            .zip(&badges)
            .enumerate()
            .map(|(i, (t, badge))| {
                let word = word(*t);
                let sep = if word.is_empty() { "" } else { " " };
                Line::from(vec![
                    Span::styled(format!("{}", i + 1), style::dim()),
                    Span::raw(format!("{sep}{word}{badge}")),
                ])
            })
            .collect()
    };
    // Each title is padded by one column each side, with a one-column divider between.
    let width = |ts: &[Line]| ts.iter().map(|t| t.width() + 2).sum::<usize>() + ts.len() - 1;
    let titles = wordings
        .iter()
        .map(|w| titles_with(*w))
        .find(|ts| width(ts) <= bar.width as usize)
        .unwrap_or_else(|| titles_with(wordings[2]));
    let tabs = Tabs::new(titles)
        .select(app.tab.index())
        .highlight_style(style::selected().add_modifier(ratatui::style::Modifier::BOLD))
        .divider("│");
    frame.render_widget(tabs, bar);
    match app.tab {
        Tab::Rejects => rejects::render(frame, app, body),
        Tab::Reconciliation => reconciliation::render(frame, app, body),
        Tab::Log => log::render(frame, app, body),
    }
}

/// Tab names for a narrow bar.
fn short_title(t: Tab) -> &'static str {
    match t {
        Tab::Rejects => "Rej",
        Tab::Reconciliation => "Recon",
        Tab::Log => "Log",
    }
}
