//! Whole-screen snapshots over `TestBackend` (what a person sees), at 80×24 and 160×48.
//! Fixtures use fixed timestamps and a fixed clock, so nothing needs filtering.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::views;
use crate::app::fixtures::*;
use crate::app::{Action, App, Field, RejectAction, Tab, update};
use crate::journal::events::Decision;
use tui_input::InputRequest;

fn screen(app: &App, w: u16, h: u16) -> TestBackend {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| views::render(f, app)).unwrap();
    t.backend().clone()
}

fn mid_load(tab: Tab) -> App {
    let mut app = app_mid_load();
    update(&mut app, Action::SelectTab(tab));
    app
}

#[test]
fn main_mid_load_80x24() {
    insta::assert_snapshot!(screen(&mid_load(Tab::Rejects), 80, 24));
}

#[test]
fn main_mid_load_160x48() {
    insta::assert_snapshot!(screen(&mid_load(Tab::Rejects), 160, 48));
}

#[test]
fn rejects_tab_filtered_and_scrolled_80x24() {
    let mut app = mid_load(Tab::Rejects);
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    for _ in 0..4 {
        act(&mut app, Action::ScrollDown);
    }
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn rejects_tab_filtered_and_scrolled_160x48() {
    let mut app = mid_load(Tab::Rejects);
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    for _ in 0..4 {
        act(&mut app, Action::ScrollDown);
    }
    insta::assert_snapshot!(screen(&app, 160, 48));
}

#[test]
fn reconciliation_tab_80x24() {
    let mut app = mid_load(Tab::Reconciliation);
    for _ in 0..5 {
        update(&mut app, Action::ScrollDown);
    }
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn reconciliation_tab_160x48() {
    insta::assert_snapshot!(screen(&mid_load(Tab::Reconciliation), 160, 48));
}

#[test]
fn log_tab_80x24() {
    insta::assert_snapshot!(screen(&mid_load(Tab::Log), 80, 24));
}

fn type_text(app: &mut App, s: &str) {
    for c in s.chars() {
        update(app, Action::DialogInput(InputRequest::InsertChar(c)));
    }
}

fn dialog_filled() -> App {
    let mut app = app_at_gate();
    type_text(&mut app, "Bo Ledger");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "finance");
    update(&mut app, Action::DialogNextField);
    update(&mut app, Action::DialogNextField);
    update(&mut app, Action::ChooseDecision(Decision::NoGo));
    // Refused: a NO-GO needs a comment. Focus moves to Comment and the reason shows.
    update(&mut app, Action::SubmitSignOff);
    assert_eq!(app.dialog.focus(), Field::Comment);
    app
}

#[test]
fn gate_dialog_80x24() {
    insta::assert_snapshot!(screen(&dialog_filled(), 80, 24));
}

#[test]
fn gate_dialog_160x48() {
    insta::assert_snapshot!(screen(&dialog_filled(), 160, 48));
}

#[test]
fn help_80x24() {
    let mut app = mid_load(Tab::Rejects);
    update(&mut app, Action::ToggleHelp);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn window_overrun_80x24() {
    insta::assert_snapshot!(screen(&app_overrunning(), 80, 24));
}

#[test]
fn window_overrun_160x48() {
    insta::assert_snapshot!(screen(&app_overrunning(), 160, 48));
}

#[test]
fn window_past_point_of_no_return_80x24() {
    insta::assert_snapshot!(screen(&app_past_point_of_no_return(), 80, 24));
}

/// The window exceeded, its rollback proposal dismissed.
fn exceeded_dismissed() -> App {
    let mut app = app_window_exceeded();
    assert!(app.rollback_dialog_visible());
    update(&mut app, Action::CancelRollback);
    app
}

#[test]
fn window_exceeded_80x24() {
    insta::assert_snapshot!(screen(&exceeded_dismissed(), 80, 24));
}

#[test]
fn window_exceeded_160x48() {
    insta::assert_snapshot!(screen(&exceeded_dismissed(), 160, 48));
}

fn type_rollback(app: &mut App, s: &str) {
    for c in s.chars() {
        update(app, Action::RollbackInput(InputRequest::InsertChar(c)));
    }
}

/// The proposal, a wrong name typed and confirm refused.
fn rollback_proposal() -> App {
    let mut app = app_window_exceeded();
    type_rollback(&mut app, "prod");
    assert!(update(&mut app, Action::ConfirmRollback).is_empty());
    app
}

#[test]
fn rollback_proposal_80x24() {
    insta::assert_snapshot!(screen(&rollback_proposal(), 80, 24));
}

#[test]
fn rollback_proposal_160x48() {
    insta::assert_snapshot!(screen(&rollback_proposal(), 160, 48));
}

/// `R` mid-load: the right name typed (confirm enabled), a reason being typed.
fn rollback_manual() -> App {
    let mut app = app_mid_load();
    update(&mut app, Action::OpenRollbackDialog);
    type_rollback(&mut app, "erp");
    update(&mut app, Action::RollbackSwitchField);
    type_rollback(&mut app, "invoice lines load too slow");
    app
}

#[test]
fn rollback_manual_80x24() {
    insta::assert_snapshot!(screen(&rollback_manual(), 80, 24));
}

#[test]
fn rollback_manual_160x48() {
    insta::assert_snapshot!(screen(&rollback_manual(), 160, 48));
}

#[test]
fn rollback_sent_80x24() {
    let mut app = rollback_manual();
    assert_eq!(update(&mut app, Action::ConfirmRollback).len(), 1);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn a_long_runbook_name_never_runs_into_the_window_clock() {
    let mut app = app_past_point_of_no_return();
    app.runbook_name = "Legacy-TMS-to-new-TMS-Odoo-shaped-full-weekend-cutover".into();
    let top = screen(&app, 80, 24).to_string();
    let top = top.lines().next().unwrap();
    assert!(top.contains(" ✗ PAST POINT OF NO RETURN │"), "{top}");
    assert!(
        !top.contains("run-2026"),
        "the run id gives way first: {top}"
    );
}
