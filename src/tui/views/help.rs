//! Help overlay, rendered from the keymap table itself (two columns when tall enough
//! content would not fit).

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use super::style;
use crate::app::keymap::{HELP_CONTEXTS, KEYMAP, binding_keys, context_edits};

/// Key column width inside the help.
const KEYS_WIDTH: usize = 14;
const MAX_WIDTH: u16 = 100;

/// The help's lines, and where each context's group starts.
fn lines() -> (Vec<Line<'static>>, Vec<usize>) {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    for ctx in HELP_CONTEXTS {
        starts.push(out.len());
        out.push(Line::styled(ctx.title().to_string(), style::header_row()));
        for b in KEYMAP.iter().filter(|b| b.context == ctx) {
            out.push(Line::from(vec![
                Span::styled(format!(" {:<KEYS_WIDTH$}", binding_keys(b)), style::key()),
                Span::raw(b.help),
            ]));
        }
        if context_edits(ctx) {
            out.push(Line::from(vec![
                Span::styled(format!(" {:<KEYS_WIDTH$}", "other keys"), style::key()),
                Span::raw("edit (Ctrl-U clears)"),
            ]));
        }
    }
    (out, starts)
}

pub fn render(frame: &mut Frame, area: Rect, scroll: usize) {
    let (all, starts) = lines();
    frame.render_widget(Clear, area);
    let area = area.centered(Constraint::Max(MAX_WIDTH), Constraint::Percentage(100));
    let block = Block::bordered().title(" Keys · ? or Esc closes ");
    let inner = block.inner(area);
    let rows = inner.height as usize;
    // Two columns, split between groups so that a title stays with its keys.
    let half = starts
        .iter()
        .copied()
        .filter(|&i| i > 0)
        .min_by_key(|&i| i.max(all.len() - i))
        .unwrap_or(all.len().div_ceil(2));
    if all.len() <= rows {
        frame.render_widget(block, area);
        frame.render_widget(Paragraph::new(all), inner);
    } else if half.max(all.len() - half) <= rows {
        frame.render_widget(block, area);
        let (a, b) = all.split_at(half);
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
        frame.render_widget(Paragraph::new(a.to_vec()), l);
        frame.render_widget(Paragraph::new(b.to_vec()), r);
    } else {
        // Too long for two columns: they flow one into the other and scroll together.
        let scroll = scroll.min(all.len().saturating_sub(2 * rows));
        let end = (scroll + 2 * rows).min(all.len());
        let block = block.title_bottom(
            Line::from(format!(
                " ↑↓ scroll · lines {}–{end} of {} ",
                scroll + 1,
                all.len()
            ))
            .right_aligned(),
        );
        frame.render_widget(block, area);
        let [l, r] = Layout::horizontal([Constraint::Fill(1), Constraint::Fill(1)]).areas(inner);
        let mid = (scroll + rows).min(end);
        frame.render_widget(Paragraph::new(all[scroll..mid].to_vec()), l);
        frame.render_widget(Paragraph::new(all[mid..end].to_vec()), r);
    }
}
