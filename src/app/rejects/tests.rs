//! The reject table's actions, with the fixture edge ([`settle`]) answering queries and
//! window requests in memory.

use ratatui::crossterm::event::{KeyCode, KeyModifiers};

use super::*;
use crate::app::fixtures::*;
use crate::app::keymap::action_for;
use crate::app::{Tab, update};

/// A key press as the loop sees it, reject effects settled; other effects returned.
fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    match action_for(app, code, KeyModifiers::NONE) {
        Some(a) => act(app, a),
        None => vec![],
    }
}

fn keys(app: &mut App, text: &str) {
    for c in text.chars() {
        key(app, KeyCode::Char(c));
    }
}

fn rejects_app() -> App {
    let mut app = app_mid_load();
    update(&mut app, Action::SelectTab(Tab::Rejects));
    app
}

fn ra(app: &mut App, a: RejectAction) -> Vec<Effect> {
    update(app, Action::Rejects(a))
}

/// `(entity, line)` of the rows the table holds for the current filter.
fn shown(app: &App) -> Vec<(String, String)> {
    (0..app.rejects.count())
        .map(|i| {
            let r = app.rejects.row(i).expect("row fetched");
            (r.entity.to_string(), r.line.to_string())
        })
        .collect()
}

#[test]
fn reject_columns_found_by_name() {
    let h: Vec<String> = ["_line", "_rule", "_field", "_message", "code", "name"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let c = RejectColumns::from_header(&h);
    assert_eq!(
        (c.line, c.rule, c.field, c.message),
        (Some(0), Some(1), Some(2), Some(3))
    );
    assert_eq!(c.originals, vec![4, 5]);
}

#[test]
fn indexed_file_is_counted_by_a_query_off_the_app() {
    let mut app = App::new();
    let effects = ra(&mut app, RejectAction::Indexed(reject_file("people", 3)));
    assert_eq!(
        effects,
        vec![Effect::Rejects(RejectEffect::Query {
            generation: 1,
            query: RejectQuery::default()
        })]
    );
    assert_eq!(app.rejects.total(), 3);
    assert_eq!(app.rejects.matched, None, "counting until the edge answers");
    assert!(
        app.log
            .back()
            .unwrap()
            .text
            .contains("people loaded: 3 rows")
    );
    settle(&mut app, effects);
    assert_eq!(app.rejects.matched, Some(3));
}

#[test]
fn index_failure_is_logged() {
    let mut app = App::new();
    ra(
        &mut app,
        RejectAction::IndexFailed {
            entity: "people".into(),
            error: "gone".into(),
        },
    );
    assert!(app.log.back().unwrap().text.contains("people: gone"));
    assert_eq!(app.rejects.total(), 0);
}

#[test]
fn answers_for_an_older_query_are_dropped() {
    let mut app = rejects_app();
    let g = app.rejects.generation;
    ra(
        &mut app,
        RejectAction::Counted {
            generation: g - 1,
            matched: 999,
        },
    );
    assert_eq!(app.rejects.matched, Some(15));
    let stale = WindowRequest {
        generation: g - 1,
        start: 0,
        len: 1,
    };
    ra(
        &mut app,
        RejectAction::Rows {
            request: stale,
            rows: vec![],
        },
    );
    assert_eq!(app.rejects.row(0).unwrap().entity, "people");
    ra(
        &mut app,
        RejectAction::QueryFailed {
            generation: g - 1,
            error: "x".into(),
        },
    );
    assert_eq!(app.notice, None);
    ra(
        &mut app,
        RejectAction::QueryFailed {
            generation: g,
            error: "disk gone".into(),
        },
    );
    assert_eq!(app.rejects.matched, Some(0));
    assert!(app.notice.as_deref().unwrap().contains("disk gone"));
}

#[test]
fn counted_clamps_the_selection() {
    let mut app = rejects_app();
    update(&mut app, Action::ScrollBottom);
    assert_eq!(app.rejects.selected, 14);
    let g = app.rejects.generation;
    ra(
        &mut app,
        RejectAction::Counted {
            generation: g,
            matched: 4,
        },
    );
    assert_eq!(app.rejects.selected, 3);
}

#[test]
fn entity_filter_cycles_through_entities_and_back_to_all() {
    let mut app = rejects_app();
    assert_eq!(app.rejects.count(), 15);
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.rejects.query.entity.as_deref(), Some("people"));
    assert_eq!(app.rejects.count(), 3);
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.rejects.query.entity.as_deref(), Some("invoices"));
    assert_eq!(app.rejects.count(), 12);
    assert_eq!(app.rejects.row(0).unwrap().entity, "invoices");
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.rejects.query.entity, None);
    assert_eq!(app.rejects.count(), 15);
}

#[test]
fn rule_filter_matches_any_reason_of_a_row() {
    let mut app = rejects_app();
    assert_eq!(app.rejects.rules_present(), ["required", "decimal", "date"]);
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.rejects.query.rule.as_deref(), Some("required"));
    // people line 17; invoices rows 0, 3, 6, 9.
    let lines: Vec<String> = shown(&app).into_iter().map(|(_, l)| l).collect();
    assert_eq!(lines, ["17", "17", "650", "1283", "1916"]);
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.rejects.query.rule.as_deref(), Some("decimal"));
    assert_eq!(app.rejects.count(), 5);
    key(&mut app, KeyCode::Char('r'));
    assert_eq!(app.rejects.count(), 5, "date");
    // Row 12 of a longer file has two reasons: it counts for both rules.
    act(
        &mut app,
        Action::Rejects(RejectAction::Indexed(reject_file("invoices", 13))),
    );
    assert_eq!(app.rejects.count(), 5, "date still");
    keys(&mut app, "rr");
    assert_eq!(app.rejects.query.rule.as_deref(), Some("required"));
    assert_eq!(app.rejects.count(), 6);
    assert_eq!(app.rejects.row(5).unwrap().line, "2549");
    keys(&mut app, "r");
    assert_eq!(app.rejects.count(), 6, "decimal, with row 12");
    keys(&mut app, "rr");
    assert_eq!(app.rejects.query.rule, None);
    assert_eq!(app.rejects.count(), 16);
}

#[test]
fn field_filter_and_entity_filter_combine() {
    let mut app = rejects_app();
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(app.rejects.query.field.as_deref(), Some("partner_ref"));
    key(&mut app, KeyCode::Char('c'));
    assert_eq!(app.rejects.query.field.as_deref(), Some("amount"));
    assert_eq!(app.rejects.count(), 5);
    key(&mut app, KeyCode::Char('f'));
    key(&mut app, KeyCode::Char('f'));
    assert_eq!(app.rejects.query.entity.as_deref(), Some("invoices"));
    assert_eq!(app.rejects.count(), 4);
    assert!(shown(&app).iter().all(|(e, _)| e == "invoices"));
    assert_eq!(app.rejects.query.describe(), "invoices · field amount");
}

#[test]
fn clearing_filters_shows_everything_again() {
    let mut app = rejects_app();
    keys(&mut app, "fr");
    assert_eq!(app.rejects.count(), 1);
    key(&mut app, KeyCode::Backspace);
    assert_eq!(app.rejects.query, RejectQuery::default());
    assert_eq!(app.rejects.count(), 15);
    // Nothing to clear: no new query.
    assert!(ra(&mut app, RejectAction::ClearFilters).is_empty());
}

#[test]
fn search_line_types_then_searches_case_insensitively() {
    let mut app = rejects_app();
    key(&mut app, KeyCode::Char('/'));
    assert!(app.rejects.search.is_some());
    // Keys bound on the table now type: `f` and `r` are text, not filters.
    keys(&mut app, "rOw 1");
    assert_eq!(app.rejects.search.as_ref().unwrap().value(), "rOw 1");
    assert_eq!(app.rejects.query.entity, None);
    let enter = action_for(&app, KeyCode::Enter, KeyModifiers::NONE).unwrap();
    let effects = update(&mut app, enter);
    assert!(app.rejects.search.is_none());
    assert_eq!(app.rejects.query.search.as_deref(), Some("rOw 1"));
    assert_eq!(app.rejects.matched, None, "searching…");
    settle(&mut app, effects);
    // "Row 1 of people", "Row 1", "Row 10".."Row 12" of invoices.
    assert_eq!(app.rejects.count(), 5);
    // `/` again starts from the current search; Esc keeps it.
    key(&mut app, KeyCode::Char('/'));
    assert_eq!(app.rejects.search.as_ref().unwrap().value(), "rOw 1");
    key(&mut app, KeyCode::Esc);
    assert!(app.rejects.search.is_none());
    assert_eq!(app.rejects.count(), 5);
    // An empty search clears it.
    key(&mut app, KeyCode::Char('/'));
    for _ in 0..5 {
        key(&mut app, KeyCode::Backspace);
    }
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rejects.query.search, None);
    assert_eq!(app.rejects.count(), 15);
}

#[test]
fn search_input_edits_only_while_the_line_is_open() {
    let mut app = rejects_app();
    ra(
        &mut app,
        RejectAction::SearchInput(InputRequest::InsertChar('z')),
    );
    assert!(app.rejects.search.is_none());
    ra(&mut app, RejectAction::StartSearch);
    ra(
        &mut app,
        RejectAction::SearchInput(InputRequest::InsertChar('z')),
    );
    assert_eq!(app.rejects.search.as_ref().unwrap().value(), "z");
    ra(&mut app, RejectAction::CancelSearch);
    assert_eq!(app.rejects.query.search, None);
}

#[test]
fn detail_shows_the_source_row_and_every_reason_and_scrolls() {
    let mut app = rejects_app();
    act(
        &mut app,
        Action::Rejects(RejectAction::Indexed(reject_file("invoices", 40))),
    );
    keys(&mut app, "ff"); // invoices
    for _ in 0..12 {
        key(&mut app, KeyCode::Down);
    }
    key(&mut app, KeyCode::Enter);
    let d = app.rejects.detail.as_ref().expect("detail open");
    let v = app.rejects.view(&d.record);
    assert_eq!((v.entity, v.line), ("invoices", "2549"));
    assert_eq!(
        v.originals,
        [
            ("code", "INV-0013"),
            ("name", "Row 13 of invoices"),
            ("amount", "7,25")
        ]
    );
    assert_eq!(
        v.reasons(),
        [
            Reason {
                rule: "required".into(),
                field: "partner_ref".into(),
                message: "partner_ref is empty".into()
            },
            Reason {
                rule: "decimal".into(),
                field: "amount".into(),
                message: "not a decimal: '7,25'".into()
            }
        ]
    );
    // ↓ scrolls the detail, not the table; clamped to its lines.
    key(&mut app, KeyCode::Down);
    assert_eq!(app.rejects.detail.as_ref().unwrap().scroll, 1);
    assert_eq!(app.rejects.selected, 12);
    key(&mut app, KeyCode::PageDown);
    let last = app.rejects.detail_lines() - 1;
    assert_eq!(last, 8);
    assert_eq!(app.rejects.detail.as_ref().unwrap().scroll, last);
    key(&mut app, KeyCode::PageUp);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.rejects.detail.as_ref().unwrap().scroll, 0);
    // Tab does not switch tabs under the detail; Esc closes it.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Rejects);
    key(&mut app, KeyCode::Esc);
    assert!(app.rejects.detail.is_none());
}

#[test]
fn detail_needs_a_fetched_row() {
    let mut app = App::new();
    ra(&mut app, RejectAction::OpenDetail);
    assert!(app.rejects.detail.is_none());
}

#[test]
fn export_asks_the_edge_once_and_reports_the_paths() {
    let mut app = rejects_app();
    keys(&mut app, "r");
    let effects = key(&mut app, KeyCode::Char('x'));
    let q = app.rejects.query.clone();
    assert_eq!(q.rule.as_deref(), Some("required"));
    assert_eq!(
        effects,
        vec![Effect::Rejects(RejectEffect::Export {
            generation: app.rejects.generation,
            query: q
        })]
    );
    assert!(app.rejects.exporting);
    assert!(key(&mut app, KeyCode::Char('x')).is_empty());
    assert_eq!(app.notice.as_deref(), Some("An export is already running"));
    ra(
        &mut app,
        RejectAction::Exported {
            paths: vec!["r/people.rejects.export-1.csv".into()],
            rows: 7,
        },
    );
    assert!(!app.rejects.exporting);
    assert_eq!(
        app.notice.as_deref(),
        Some("Exported 7 rows to r/people.rejects.export-1.csv")
    );
    // Also under the table: the footer gives way to the outcome once the run is over.
    assert_eq!(
        app.rejects.export_status,
        Some((
            "Exported 7 rows to r/people.rejects.export-1.csv".into(),
            Tone::Good
        ))
    );
    assert_eq!(key(&mut app, KeyCode::Char('x')).len(), 1);
    ra(
        &mut app,
        RejectAction::ExportFailed {
            error: "disk full".into(),
        },
    );
    assert!(!app.rejects.exporting);
    assert!(app.notice.as_deref().unwrap().contains("disk full"));
}

#[test]
fn export_of_nothing_is_refused() {
    let mut app = rejects_app();
    keys(&mut app, "/");
    keys(&mut app, "no such value");
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.rejects.count(), 0);
    assert!(key(&mut app, KeyCode::Char('x')).is_empty());
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .starts_with("Nothing to export")
    );
}

#[test]
fn window_moves_in_blocks_around_the_selection() {
    let mut t = RejectTable {
        matched: Some(1000),
        generation: 4,
        ..RejectTable::default()
    };
    let want = |t: &RejectTable| t.wanted_window().map(|w| (w.start, w.len));
    assert_eq!(want(&t), Some((0, WINDOW_ROWS)));
    t.selected = 300; // block 2: blocks 1..=3
    let w = t.wanted_window().unwrap();
    assert_eq!((w.start, w.generation), (WINDOW_BLOCK, 4));
    t.window = Some((w, vec![]));
    t.selected = 290;
    assert_eq!(want(&t), None, "same block: nothing to fetch");
    t.selected = 999;
    assert_eq!(want(&t), Some((768, 1000 - 768)));
    t.matched = Some(0);
    assert_eq!(want(&t), None);
}

#[test]
fn scrolling_is_clamped_to_the_filter() {
    let mut app = rejects_app();
    act(&mut app, Action::PageDown);
    act(&mut app, Action::PageDown);
    assert_eq!(app.rejects.selected, 14);
    act(&mut app, Action::ScrollTop);
    act(&mut app, Action::ScrollUp);
    assert_eq!(app.rejects.selected, 0);
    let row = app.rejects.row(3).unwrap();
    assert_eq!(
        (row.entity, row.rule, row.field),
        ("invoices", "required", "partner_ref")
    );
    assert!(row.originals_line().contains("code=INV-0001"));
}
