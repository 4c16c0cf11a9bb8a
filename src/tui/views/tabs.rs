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
    let titles = Tab::ALL.iter().enumerate().map(|(i, t)| {
        let badge = match t {
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
        };
        Line::from(vec![
            Span::styled(format!("{}", i + 1), style::dim()),
            Span::raw(format!(" {}{badge}", t.title())),
        ])
    });
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
