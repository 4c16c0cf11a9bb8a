//! Rejects tab: rows that failed a rule, from the reject files (entity filter with `f`).
//! Only the visible window of rows is built each frame; at most
//! [`REJECT_DISPLAY_CAP`] rows per entity are held, and the title says when that cap bites.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Paragraph, Row, Scrollbar, ScrollbarOrientation, ScrollbarState, Table, TableState,
};

use super::{WIDE_MIN_WIDTH, style};
use crate::app::{App, REJECT_DISPLAY_CAP, Tone, fmt_count};

const ENTITY_WIDTH: u16 = 13;
const LINE_WIDTH: u16 = 7;
const RULE_WIDTH: u16 = 9;
const FIELD_WIDTH: u16 = 12;
/// Narrow screens: entity names are cut to this; field and rule go on the detail line.
const ENTITY_WIDTH_NARROW: u16 = 9;

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    let filter = app.reject_filter.as_deref().unwrap_or("all entities");
    let count = app.reject_count();
    let block = Block::bordered()
        .title(format!(
            " Rejects · {filter} · {} rows ",
            fmt_count(count as u64)
        ))
        .title_bottom(Line::from(" f filter · ↑↓ select ").right_aligned());
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let notes = cap_notes(app);
    let wide = frame.area().width >= WIDE_MIN_WIDTH;
    // Narrow: the selected row's field, rule and original values go on a line of their own.
    let detail_h = if wide || count == 0 { 0 } else { 1 };
    let [table_area, detail_area, notes_area] = Layout::vertical([
        Constraint::Fill(1),
        Constraint::Length(detail_h),
        Constraint::Length(notes.len() as u16),
    ])
    .areas(inner);
    if !notes.is_empty() {
        frame.render_widget(Paragraph::new(notes), notes_area);
    }

    if count == 0 {
        let msg = if app.rejects.is_empty() {
            " No reject file loaded yet."
        } else {
            " No rejects for this filter."
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, style::dim())), table_area);
        return;
    }

    let visible = table_area.height.saturating_sub(1).max(1) as usize;
    let sel = app.reject_selected.min(count - 1);
    let offset = sel.saturating_sub(visible - 1);
    let rows = (offset..(offset + visible).min(count))
        .filter_map(|i| app.reject_row(i))
        .map(|r| {
            let line = Cell::from(Line::from(r.line.to_string()).right_aligned());
            if wide {
                Row::new(vec![
                    Cell::from(r.entity.to_string()),
                    line,
                    Cell::from(r.rule.to_string()),
                    Cell::from(r.field.to_string()),
                    Cell::from(r.message.to_string()),
                    Cell::from(Span::styled(r.originals, style::dim())),
                ])
            } else {
                Row::new(vec![
                    Cell::from(r.entity.to_string()),
                    line,
                    Cell::from(r.message.to_string()),
                ])
            }
        });
    let (header, widths): (Vec<&str>, Vec<Constraint>) = if wide {
        (
            vec![
                "entity",
                "line",
                "rule",
                "field",
                "message",
                "original values",
            ],
            vec![
                Constraint::Length(ENTITY_WIDTH),
                Constraint::Length(LINE_WIDTH),
                Constraint::Length(RULE_WIDTH),
                Constraint::Length(FIELD_WIDTH),
                Constraint::Fill(1),
                Constraint::Fill(1),
            ],
        )
    } else {
        (
            vec!["entity", "line", "message"],
            vec![
                Constraint::Length(ENTITY_WIDTH_NARROW),
                Constraint::Length(LINE_WIDTH - 1),
                Constraint::Fill(1),
            ],
        )
    };
    let header = Row::new(header.into_iter().map(|h| {
        if h == "line" {
            Cell::from(Line::from(h).right_aligned())
        } else {
            Cell::from(h)
        }
    }))
    .style(style::header_row());
    let table = Table::new(rows, widths)
        .header(header)
        .column_spacing(1)
        .row_highlight_style(style::selected())
        .highlight_symbol("▶");
    let scrollbar = count > visible;
    let table_rect = if scrollbar {
        Rect {
            width: table_area.width.saturating_sub(1),
            ..table_area
        }
    } else {
        table_area
    };
    let mut state = TableState::default().with_selected(Some(sel - offset));
    frame.render_stateful_widget(table, table_rect, &mut state);

    if scrollbar {
        let mut sb = ScrollbarState::new(count).position(sel);
        frame.render_stateful_widget(
            Scrollbar::new(ScrollbarOrientation::VerticalRight),
            Rect {
                y: table_area.y + 1,
                height: table_area.height.saturating_sub(1),
                ..table_area
            },
            &mut sb,
        );
    }

    if detail_h > 0
        && let Some(r) = app.reject_row(sel)
    {
        let text = format!(" {} · {} · {}", r.field, r.rule, r.originals);
        frame.render_widget(
            Paragraph::new(Span::styled(text, style::dim())),
            detail_area,
        );
    }
}

/// "first 20,000 of 31,337 shown" for every entity whose file exceeds the display cap.
fn cap_notes(app: &App) -> Vec<Line<'static>> {
    app.filtered_rejects()
        .filter(|s| s.rows.len() >= REJECT_DISPLAY_CAP)
        .map(|s| {
            let total = app
                .rejects_reported(&s.entity)
                .map(|n| format!(" of {}", fmt_count(n)))
                .unwrap_or_default();
            Line::styled(
                format!(
                    " ! {}: first {}{total} shown (display cap); the reject file has them all",
                    s.entity,
                    fmt_count(REJECT_DISPLAY_CAP as u64)
                ),
                style::tone(Tone::Warn),
            )
        })
        .collect()
}
