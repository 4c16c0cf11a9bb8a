//! Log tab: the recent journal events in words, newest at the bottom (follows the tail
//! unless scrolled up).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::style;
use crate::app::App;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let follow = if app.log_scroll == 0 {
        "following"
    } else {
        "scrolled: End follows"
    };
    let block = Block::bordered().title(format!(" Log · last {} · {follow} ", app.log.len()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let h = inner.height as usize;
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(h);
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| {
            Line::from(vec![
                Span::styled(format!(" {} ", l.time), style::dim()),
                Span::styled(l.text.clone(), style::tone(l.tone)),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}
