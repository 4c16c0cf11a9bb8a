//! Log tab: the recent journal events in words and the engine's tracing lines (with their
//! level), newest at the bottom (follows the tail unless scrolled up).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::style;
use crate::app::{App, LogLine};

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let follow = if app.log_scroll == 0 {
        "following"
    } else {
        "scrolled: End follows"
    };
    let dropped = if app.log_dropped > 0 {
        format!(" · {} tracing lines dropped", app.log_dropped)
    } else {
        String::new()
    };
    let block = Block::bordered().title(format!(
        " Log · last {}{dropped} · {follow} ",
        app.log.len()
    ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let h = inner.height as usize;
    let end = app.log.len().saturating_sub(app.log_scroll);
    let start = end.saturating_sub(h);
    let w = inner.width as usize;
    let lines: Vec<Line> = app
        .log
        .range(start..end)
        .map(|l| super::fit::truncate(line(l, " "), w))
        .collect();
    frame.render_widget(Paragraph::new(lines), inner);
}

/// One log line: `lead`, the time, a tracing line's level, the text in its tone.
pub fn line(l: &LogLine, lead: &str) -> Line<'static> {
    let mut spans = vec![Span::styled(format!("{lead}{} ", l.time), style::dim())];
    if let Some(level) = l.level {
        spans.push(Span::styled(format!("{level:<5} "), style::tone(l.tone)));
    }
    spans.push(Span::styled(l.text.clone(), style::tone(l.tone)));
    Line::from(spans)
}
