//! Rejects tab: the rows that failed a rule, from the reject files. The table is
//! virtual: the app holds only the window of rows the edge read around the selection, and
//! the title says how many rows the filter (entity, rule, field, search) matches. The
//! search line (`/`) sits on top while typed; Enter opens the detail of a row (its source
//! line as `column = value` and every reason) over the screen.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{
    Block, Cell, Clear, Paragraph, Row, Scrollbar, ScrollbarOrientation, ScrollbarState, Table,
    TableState,
};

use super::footer::keys_for;
use super::{WIDE_MIN_WIDTH, form, style};
use crate::app::rejects::RejectTable;
use crate::app::{Action, App, RejectAction as RA, Tone, fmt_count};

const ENTITY_WIDTH: u16 = 13;
const LINE_WIDTH: u16 = 7;
const RULE_WIDTH: u16 = 9;
const FIELD_WIDTH: u16 = 12;
/// Narrow screens: entity names are cut to this; field and rule go on the detail line.
const ENTITY_WIDTH_NARROW: u16 = 9;
const DETAIL_MAX_WIDTH: u16 = 100;

/// Keys named under the table (labels come from the keymap); the short form drops the
/// words of the filters and the detail when the table is narrow.
const HINTS: &[(Action, &str)] = &[
    (Action::Rejects(RA::CycleEntity), "entity"),
    (Action::Rejects(RA::CycleRule), "rule"),
    (Action::Rejects(RA::CycleField), "field"),
    (Action::Rejects(RA::StartSearch), "search"),
    (Action::Rejects(RA::OpenDetail), "detail"),
    (Action::Rejects(RA::Export), "export"),
];

fn hints(width: u16) -> Line<'static> {
    let key = |i: usize| keys_for(&HINTS[i].0).unwrap_or_default();
    let long = HINTS
        .iter()
        .enumerate()
        .map(|(i, (_, w))| format!("{} {w}", key(i)))
        .collect::<Vec<_>>()
        .join(" · ");
    let text = if long.chars().count() + 4 <= width as usize {
        long
    } else {
        format!(
            "{}/{}/{} filter · {} search · {} export",
            key(0),
            key(1),
            key(2),
            key(3),
            key(5)
        )
    };
    Line::from(format!(" {text} ")).right_aligned()
}

/// `12 rows`, `searching…`, `3 matches`.
fn count_label(t: &RejectTable) -> String {
    match t.matched {
        None if t.query.search.is_some() => "searching…".into(),
        None => "counting…".into(),
        Some(n) if t.query.search.is_some() => format!("{} matches", fmt_count(n as u64)),
        Some(n) => format!("{} rows", fmt_count(n as u64)),
    }
}

pub fn render(frame: &mut Frame, app: &App, area: Rect) {
    render_table(frame, &app.rejects, area);
    if app.rejects.detail.is_some() {
        render_detail(frame, &app.rejects);
    }
}

fn render_table(frame: &mut Frame, t: &RejectTable, area: Rect) {
    let block = Block::bordered()
        .title(format!(
            " Rejects · {} · {} ",
            count_label(t),
            t.query.describe()
        ))
        .title_bottom(hints(area.width));
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let count = t.count();
    let wide = frame.area().width >= WIDE_MIN_WIDTH;
    // Narrow: the selected row's field, rule and original values go on a line of their own.
    let detail_h = if wide || count == 0 { 0 } else { 1 };
    let search_h = u16::from(t.search.is_some());
    let status_h = u16::from(t.export_status.is_some());
    let [search_area, table_area, detail_area, status_area] = Layout::vertical([
        Constraint::Length(search_h),
        Constraint::Fill(1),
        Constraint::Length(detail_h),
        Constraint::Length(status_h),
    ])
    .areas(inner);
    if let Some((text, tone)) = &t.export_status {
        frame.render_widget(
            Paragraph::new(Span::styled(format!(" {text}"), style::tone(*tone))),
            status_area,
        );
    }
    if let Some(input) = &t.search {
        let [label, field] =
            Layout::horizontal([Constraint::Length(9), Constraint::Fill(1)]).areas(search_area);
        frame.render_widget(
            Paragraph::new(Span::styled(" search /", style::key())),
            label,
        );
        form::text_field(frame, field, input, true);
    }
    if count == 0 {
        let msg = if t.files.is_empty() {
            " No reject file loaded yet."
        } else if t.matched.is_none() {
            ""
        } else {
            " No rejects for this filter (Backspace clears it)."
        };
        frame.render_widget(Paragraph::new(Span::styled(msg, style::dim())), table_area);
        return;
    }

    let visible = table_area.height.saturating_sub(1).max(1) as usize;
    let sel = t.selected.min(count - 1);
    let offset = sel.saturating_sub(visible - 1);
    // The line column fits the largest line number shown: a cut `1234567` would read `234567`.
    let line_w = (offset..(offset + visible).min(count))
        .filter_map(|i| t.row(i).map(|r| r.line.to_string().len() as u16))
        .max()
        .unwrap_or(0)
        .max(LINE_WIDTH - 1);
    let rows = (offset..(offset + visible).min(count)).map(|i| match t.row(i) {
        Some(r) => {
            let line = Cell::from(Line::from(r.line.to_string()).right_aligned());
            let message = Cell::from(r.message.to_string());
            if wide {
                Row::new(vec![
                    Cell::from(r.entity.to_string()),
                    line,
                    Cell::from(r.rule.to_string()),
                    Cell::from(r.field.to_string()),
                    message,
                    Cell::from(Span::styled(r.originals_line(), style::dim())),
                ])
            } else {
                Row::new(vec![Cell::from(r.entity.to_string()), line, message])
            }
        }
        // Not read yet (the window is on its way): a placeholder, never a wrong row.
        None => Row::new(vec![Cell::from(Span::styled("…", style::dim()))]),
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
                Constraint::Length(line_w.max(LINE_WIDTH)),
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
                Constraint::Length(line_w),
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
        && let Some(r) = t.row(sel)
    {
        let text = format!(" {} · {} · {}", r.field, r.rule, r.originals_line());
        frame.render_widget(
            Paragraph::new(Span::styled(text, style::dim())),
            detail_area,
        );
    }
}

/// The detail of one row over the whole screen: where it was in the extract, its values
/// as `column = value`, and every reason.
fn render_detail(frame: &mut Frame, t: &RejectTable) {
    let Some(d) = &t.detail else { return };
    let v = t.view(&d.record);
    let reasons = v.reasons();
    let width = v.originals.iter().map(|(h, _)| h.chars().count()).max();
    let mut lines = vec![
        Line::from(vec![
            Span::styled(" Source line ", style::key()),
            Span::styled(v.line.to_string(), style::key()),
            Span::raw(format!(" of the {} extract, as it was:", v.entity)),
        ]),
        Line::raw(""),
    ];
    for (h, val) in &v.originals {
        lines.push(Line::from(vec![
            Span::raw(format!("   {h:<w$} = ", w = width.unwrap_or(0))),
            Span::raw(val.to_string()),
        ]));
    }
    lines.push(Line::raw(""));
    lines.push(Line::styled(
        format!(" Reasons ({})", reasons.len()),
        style::key(),
    ));
    for r in &reasons {
        lines.push(Line::from(vec![
            Span::styled("   ✗ ", style::tone(Tone::Bad)),
            Span::raw(format!("{} · {}: ", r.rule, r.field)),
            Span::raw(r.message.clone()),
        ]));
    }

    let area = frame.area();
    let w = area.width.saturating_sub(4).min(DETAIL_MAX_WIDTH);
    let h = (lines.len() as u16 + 2).min(area.height.saturating_sub(2));
    let popup = area.centered(Constraint::Length(w), Constraint::Length(h));
    frame.render_widget(Clear, popup);
    let close = keys_for(&Action::Rejects(RA::CloseDetail)).unwrap_or_default();
    let block = Block::bordered()
        .title(format!(" Reject · {} · line {} ", v.entity, v.line))
        .title_bottom(Line::from(format!(" ↑↓ scroll · {close} close ")).right_aligned());
    frame.render_widget(
        Paragraph::new(lines)
            .block(block)
            .scroll((d.scroll as u16, 0)),
        popup,
    );
}
