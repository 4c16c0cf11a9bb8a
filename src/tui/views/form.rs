//! What the dialogs share: a centred modal sized to its information block plus a fixed
//! form, field labels, and one-line text fields.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};
use tui_input::Input;

use super::style;
use crate::app::Tone;

/// Draw a bordered modal centred in `area`: `info` (wrapped) on top, `form_height` rows
/// below it, which are returned one `Rect` a row for the caller to fill.
pub fn modal(
    frame: &mut Frame,
    area: Rect,
    max_width: u16,
    title: Line<'static>,
    border: Style,
    info: Vec<Line<'static>>,
    form_height: u16,
) -> Vec<Rect> {
    modal_scrolled(frame, area, max_width, title, border, info, form_height, 0).rows
}

/// A drawn modal: its form rows, and how far its information block scrolls.
pub struct Modal {
    pub rows: Vec<Rect>,
    /// The furthest the information block can scroll (0: it fits).
    pub max_scroll: u16,
    /// Rows of the information block below what is shown.
    pub below: u16,
}

/// [`modal`] whose information block, when the screen is too short for it, shows from
/// row `scroll` on (clamped), the form staying in place; the bottom border says how many
/// rows are above and below.
#[allow(clippy::too_many_arguments)]
pub fn modal_scrolled(
    frame: &mut Frame,
    area: Rect,
    max_width: u16,
    title: Line<'static>,
    border: Style,
    info: Vec<Line<'static>>,
    form_height: u16,
    scroll: u16,
) -> Modal {
    let width = area.width.saturating_sub(4).min(max_width);
    let inner_w = width.saturating_sub(2);
    let para = Paragraph::new(info).wrap(Wrap { trim: false });
    let info_h = para.line_count(inner_w.max(1)) as u16;
    let height = (info_h + form_height + 2).min(area.height);
    let popup = area.centered(Constraint::Length(width), Constraint::Length(height));
    frame.render_widget(Clear, popup);
    let shown_h = height.saturating_sub(form_height + 2);
    let max_scroll = info_h.saturating_sub(shown_h);
    let scroll = scroll.min(max_scroll);
    let below = max_scroll - scroll;
    let mut block = Block::bordered().title(title).border_style(border);
    if max_scroll > 0 {
        let mut marks = Vec::new();
        if scroll > 0 {
            marks.push(format!("↑ {scroll} more"));
        }
        if below > 0 {
            marks.push(format!("↓ {below} more"));
        }
        block = block.title_bottom(Line::from(format!(" {} ", marks.join(" · "))).right_aligned());
    }
    let inner = block.inner(popup);
    frame.render_widget(block, popup);

    let [info_area, form_area] =
        Layout::vertical([Constraint::Fill(1), Constraint::Length(form_height)]).areas(inner);
    frame.render_widget(para.scroll((scroll, 0)), info_area);
    let rows = Layout::vertical(vec![Constraint::Length(1); form_height as usize])
        .split(form_area)
        .to_vec();
    Modal {
        rows,
        max_scroll,
        below,
    }
}

/// A field's label, `▸` marking the focused one.
pub fn field_label(label: &str, focused: bool) -> Line<'static> {
    if focused {
        Line::styled(format!("▸ {label}"), style::key())
    } else {
        Line::raw(format!("  {label}"))
    }
}

/// Column right of a typed confirmation: "✓ matches" / "✗ no match".
pub const MARK_WIDTH: u16 = 12;

/// Beside a typed confirmation: whether what is typed so far matches (nothing before
/// anything is typed).
pub fn match_mark(typed: &str, matches: bool) -> Option<Span<'static>> {
    if typed.is_empty() {
        None
    } else if matches {
        Some(Span::styled(" ✓ matches", style::tone(Tone::Good)))
    } else {
        Some(Span::styled(" ✗ no match", style::tone(Tone::Bad)))
    }
}

/// A one-line text field `[value   ]`, scrolled to its cursor; the focused one gets the
/// terminal cursor.
pub fn text_field(frame: &mut Frame, area: Rect, input: &Input, focused: bool) {
    let w = area.width.saturating_sub(2).max(1) as usize;
    let scroll = input.visual_scroll(w);
    let shown: String = input.value().chars().skip(scroll).take(w).collect();
    let pad = w.saturating_sub(shown.chars().count());
    let value_style = if focused {
        style::key().add_modifier(ratatui::style::Modifier::UNDERLINED)
    } else {
        style::dim()
    };
    let line = Line::from(vec![
        Span::raw("["),
        Span::styled(format!("{shown}{}", " ".repeat(pad)), value_style),
        Span::raw("]"),
    ]);
    frame.render_widget(Paragraph::new(line), area);
    if focused {
        let x = area.x + 1 + (input.visual_cursor().saturating_sub(scroll)) as u16;
        frame.set_cursor_position(Position::new(x.min(area.right().saturating_sub(1)), area.y));
    }
}
