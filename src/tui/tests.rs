//! Whole-screen snapshots over `TestBackend` (what a person sees), at 80×24 and 160×48.
//! Fixtures use fixed timestamps and a fixed clock, so nothing needs filtering.

use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::views;
use crate::app::fixtures::*;
use crate::app::{Action, App, Effect, Field, RejectAction, Tab, update};
use crate::control::Command;
use crate::journal::events::{Decision, Event, Record};
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
    type_text(&mut app, "Finance controller");
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

/// A GO at the production gate with the database's name mistyped: refused, the field
/// marked "no match".
fn production_go_mistyped() -> App {
    let mut app = app_at_gate();
    type_text(&mut app, "Migration lead");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "migration_lead");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "counts match");
    update(&mut app, Action::ChooseDecision(Decision::Go));
    update(&mut app, Action::SubmitSignOff);
    assert_eq!(app.dialog.focus(), Field::Database);
    type_text(&mut app, "ERP");
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    app
}

#[test]
fn gate_dialog_production_go_80x24() {
    insta::assert_snapshot!(screen(&production_go_mistyped(), 80, 24));
}

#[test]
fn gate_dialog_production_go_160x48() {
    insta::assert_snapshot!(screen(&production_go_mistyped(), 160, 48));
}

/// A gate recommending NO-GO: a GO without a comment is refused as an override that
/// needs a reason.
fn override_without_reason() -> App {
    let mut app = app_at_no_go_gate();
    type_text(&mut app, "Migration lead");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "migration_lead");
    update(&mut app, Action::ChooseDecision(Decision::Go));
    update(&mut app, Action::SubmitSignOff);
    assert_eq!(app.dialog.focus(), Field::Comment);
    app
}

#[test]
fn gate_dialog_override_needs_reason_80x24() {
    insta::assert_snapshot!(screen(&override_without_reason(), 80, 24));
}

#[test]
fn gate_dialog_override_needs_reason_160x48() {
    insta::assert_snapshot!(screen(&override_without_reason(), 160, 48));
}

/// One of two GOs recorded (an override, with its reason); the dialog is cleared for the
/// second approver.
fn one_of_two_signed() -> App {
    let mut app = override_without_reason();
    type_text(&mut app, "late load accepted: business extended the window");
    update(&mut app, Action::DialogNextField);
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "erp");
    let effects = update(&mut app, Action::SubmitSignOff);
    let Some(Effect::Send(Command::SignOff(s))) = effects.first() else {
        panic!("expected a sign-off, got {effects:?}");
    };
    let rec = Record {
        seq: 99,
        ts: "2026-11-21T18:47:00Z".into(),
        run_id: RUN_ID.into(),
        prev_hash: String::new(),
        hash: String::new(),
        event: Event::SignOffRecorded {
            gate: s.gate.clone(),
            name: s.name.clone(),
            role: s.role.clone(),
            decision: s.decision,
            comment: s.comment.clone(),
            evidence_sha256: "cd".repeat(32),
            overrides: true,
            signature: None,
        },
    };
    update(&mut app, Action::Record(rec));
    app
}

#[test]
fn gate_dialog_one_of_two_signed_80x24() {
    insta::assert_snapshot!(screen(&one_of_two_signed(), 80, 24));
}

#[test]
fn gate_dialog_one_of_two_signed_160x48() {
    insta::assert_snapshot!(screen(&one_of_two_signed(), 160, 48));
}

/// The dialog hidden with Esc: the main screen says the gate waits and `g` reopens it.
fn gate_hidden() -> App {
    let mut app = app_at_gate();
    update(&mut app, Action::HideGateDialog);
    app
}

#[test]
fn gate_hidden_80x24() {
    insta::assert_snapshot!(screen(&gate_hidden(), 80, 24));
}

#[test]
fn gate_hidden_160x48() {
    insta::assert_snapshot!(screen(&gate_hidden(), 160, 48));
}

#[test]
fn throughput_sparkline_80x24() {
    insta::assert_snapshot!(screen(&app_throughput(), 80, 24));
}

#[test]
fn throughput_sparkline_160x48() {
    insta::assert_snapshot!(screen(&app_throughput(), 160, 48));
}

#[test]
fn tracing_in_the_log_80x24() {
    insta::assert_snapshot!(screen(&app_with_tracing(), 80, 24));
}

#[test]
fn tracing_in_the_log_160x48() {
    insta::assert_snapshot!(screen(&app_with_tracing(), 160, 48));
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

/// `s` mid-load: unfreeze chosen, the name typed, the reason left blank and refused.
fn skip_dialog() -> App {
    let mut app = app_mid_load();
    update(&mut app, Action::OpenSkipDialog);
    update(&mut app, Action::SkipCycleStep(1));
    update(&mut app, Action::SkipNextField);
    for c in "Migration lead".chars() {
        update(&mut app, Action::SkipInput(InputRequest::InsertChar(c)));
    }
    update(&mut app, Action::SkipNextField);
    assert!(update(&mut app, Action::SubmitSkip).is_empty());
    app
}

#[test]
fn skip_dialog_80x24() {
    insta::assert_snapshot!(screen(&skip_dialog(), 80, 24));
}

#[test]
fn skip_dialog_160x48() {
    insta::assert_snapshot!(screen(&skip_dialog(), 160, 48));
}

/// The journal says verify was skipped: `- skipped` in the runbook pane, the log says who.
#[test]
fn step_skipped_80x24() {
    insta::assert_snapshot!(screen(&verify_skipped(), 80, 24));
}

#[test]
fn step_skipped_160x48() {
    insta::assert_snapshot!(screen(&verify_skipped(), 160, 48));
}

/// Verify skipped by the operator while the load runs: the step and a log line say so.
fn verify_skipped() -> App {
    let mut app = mid_load(Tab::Log);
    let n = records_mid_load().len() as i64;
    update(
        &mut app,
        Action::Record(rec(
            n + 1,
            "19:00:00",
            crate::journal::events::Event::StepSkipped {
                step: "verify".into(),
                name: "Migration lead".into(),
                reason: "checked by hand".into(),
            },
        )),
    );
    app
}

#[test]
fn a_long_runbook_name_never_runs_into_the_window_clock() {
    let mut app = app_past_point_of_no_return();
    app.view.runbook_name = "Legacy-TMS-to-new-TMS-Odoo-shaped-full-weekend-cutover".into();
    let top = screen(&app, 80, 24).to_string();
    let top = top.lines().next().unwrap();
    assert!(top.contains(" ✗ PAST POINT OF NO RETURN │"), "{top}");
    assert!(
        !top.contains("run-2026"),
        "the run id gives way first: {top}"
    );
}

#[test]
fn help_too_long_for_two_columns_scrolls_80x24() {
    let mut app = mid_load(Tab::Rejects);
    update(&mut app, Action::ToggleHelp);
    for _ in 0..30 {
        update(&mut app, Action::HelpScroll(1));
    }
    let s = screen(&app, 80, 24).to_string();
    assert!(s.contains("Reject detail"), "{s}");
    insta::assert_snapshot!(s);
}

/// The rejects tab filtered by rule, with a longer invoices file (row 13 has two reasons).
fn rejects_filtered() -> App {
    let mut app = mid_load(Tab::Rejects);
    act(
        &mut app,
        Action::Rejects(RejectAction::Indexed(reject_file("invoices", 40))),
    );
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    act(&mut app, Action::Rejects(RejectAction::CycleRule));
    for _ in 0..4 {
        act(&mut app, Action::ScrollDown);
    }
    app
}

#[test]
fn rejects_filtered_by_entity_and_rule_80x24() {
    let s = screen(&rejects_filtered(), 80, 24).to_string();
    assert!(s.contains("Rejects · 16 rows · invoices · rule"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn rejects_filtered_by_entity_and_rule_160x48() {
    insta::assert_snapshot!(screen(&rejects_filtered(), 160, 48));
}

/// `/` typed, and the search under way for an earlier term.
fn rejects_searching() -> App {
    let mut app = mid_load(Tab::Rejects);
    act(&mut app, Action::Rejects(RejectAction::StartSearch));
    for c in "row 1".chars() {
        act(
            &mut app,
            Action::Rejects(RejectAction::SearchInput(InputRequest::InsertChar(c))),
        );
    }
    app
}

#[test]
fn rejects_search_line_80x24() {
    let s = screen(&rejects_searching(), 80, 24).to_string();
    assert!(s.contains("search /[row 1"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn rejects_search_line_160x48() {
    insta::assert_snapshot!(screen(&rejects_searching(), 160, 48));
}

#[test]
fn rejects_search_counting_then_matches_160x48() {
    let mut app = rejects_searching();
    // The query goes off to the edge: "searching…" until it answers.
    let effects = update(&mut app, Action::Rejects(RejectAction::SubmitSearch));
    let s = screen(&app, 160, 48).to_string();
    assert!(s.contains("searching… · all entities · “row 1”"), "{s}");
    settle(&mut app, effects);
    let s = screen(&app, 160, 48).to_string();
    assert!(s.contains("5 matches · all entities · “row 1”"), "{s}");
    insta::assert_snapshot!(s);
}

fn rejects_detail() -> App {
    let mut app = rejects_filtered();
    // Row 13 of invoices: both reasons.
    act(&mut app, Action::Rejects(RejectAction::OpenDetail));
    app
}

#[test]
fn rejects_detail_80x24() {
    let s = screen(&rejects_detail(), 80, 24).to_string();
    assert!(s.contains("Source line 2549"), "{s}");
    assert!(s.contains("code   = INV-0013"), "{s}");
    insta::assert_snapshot!(s);
}

#[test]
fn rejects_detail_160x48() {
    let s = screen(&rejects_detail(), 160, 48).to_string();
    assert!(
        s.contains("✗ decimal · amount: not a decimal: '7,25'"),
        "{s}"
    );
    insta::assert_snapshot!(s);
}

// The 160×48 counterparts of views first snapshotted at 80×24 only.

#[test]
fn log_tab_160x48() {
    insta::assert_snapshot!(screen(&mid_load(Tab::Log), 160, 48));
}

#[test]
fn help_160x48() {
    let mut app = mid_load(Tab::Rejects);
    update(&mut app, Action::ToggleHelp);
    insta::assert_snapshot!(screen(&app, 160, 48));
}

#[test]
fn window_past_point_of_no_return_160x48() {
    insta::assert_snapshot!(screen(&app_past_point_of_no_return(), 160, 48));
}

#[test]
fn rollback_sent_160x48() {
    let mut app = rollback_manual();
    assert_eq!(update(&mut app, Action::ConfirmRollback).len(), 1);
    insta::assert_snapshot!(screen(&app, 160, 48));
}

/// Ctrl-C mid-load asks before it aborts: the footer's question, nothing sent yet.
fn ctrl_c_asked() -> App {
    let mut app = mid_load(Tab::Rejects);
    let a = crate::app::keymap::action_for(
        &app,
        ratatui::crossterm::event::KeyCode::Char('c'),
        ratatui::crossterm::event::KeyModifiers::CONTROL,
    )
    .unwrap();
    assert!(update(&mut app, a).is_empty());
    app
}

#[test]
fn ctrl_c_asks_before_abort_80x24() {
    insta::assert_snapshot!(screen(&ctrl_c_asked(), 80, 24));
}

#[test]
fn ctrl_c_asks_before_abort_160x48() {
    insta::assert_snapshot!(screen(&ctrl_c_asked(), 160, 48));
}

/// The text of a rendered screen, row by row.
fn screen_text(b: &TestBackend) -> String {
    let buf = b.buffer();
    (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The NO-GO gate as it opens at 80×24: more evidence (reasons, the money in rejected
/// rows) than the screen holds, so the dialog shows its top and says how much is below.
#[test]
fn gate_no_go_80x24() {
    let app = app_at_no_go_gate();
    let s = screen(&app, 80, 24);
    let text = screen_text(&s);
    assert!(text.contains("Recommendation: ✗ NO-GO"), "{text}");
    assert!(
        text.contains("↓ ") && text.contains(" more ┘"),
        "no scroll marker:\n{text}"
    );
    assert!(
        text.contains("PgUp/PgDn"),
        "scroll keys not in the hint line:\n{text}"
    );
    insta::assert_snapshot!(s);
}

/// Scrolled to the end with PgDn: the production warning, the approvers and the
/// signatures are reachable; the form stays where it was.
#[test]
fn gate_no_go_scrolled_80x24() {
    let mut app = one_of_two_signed_at(80, 24);
    let before = screen_text(&screen(&app, 80, 24));
    for _ in 0..10 {
        act(&mut app, Action::DialogScroll(5));
    }
    let s = screen(&app, 80, 24);
    let text = screen_text(&s);
    for want in [
        "Approvers:",
        "Signed: migration_lead 1 of 1, finance 0 of 1",
        "(override)",
        "▲ PRODUCTION",
        "A GO needs the production database's name typed",
        "Database",
    ] {
        assert!(text.contains(want), "{want:?} not reachable:\n{text}");
    }
    assert!(
        !before.contains("▲ PRODUCTION"),
        "fits without scrolling:\n{before}"
    );
    insta::assert_snapshot!(s);
    // PgUp goes back to the top, however far PgDn was pressed.
    for _ in 0..3 {
        act(&mut app, Action::DialogScroll(-5));
    }
    assert!(screen_text(&screen(&app, 80, 24)).contains("Recommendation: ✗ NO-GO"));
}

/// One of two signed at a NO-GO gate, drawn once at `w`×`h` (the dialog learns how far
/// it can scroll from the frame).
fn one_of_two_signed_at(w: u16, h: u16) -> App {
    let app = one_of_two_signed();
    screen(&app, w, h);
    app
}

/// The console mid-load with sums and counts too large for 80 columns at first sight:
/// 440,944 rows loaded, 20,916,456.73 EUR in the reconciliation. No figure is cut.
fn large_sums() -> App {
    use crate::journal::events::{CheckResult, CheckStatus, EntityProgress, Phase};
    let mut app = app_mid_load();
    let progress = vec![EntityProgress {
        phase: Some(Phase::Load),
        entity: "invoices".into(),
        expected: 1_250_000,
        read: 441_000,
        valid: 440_944,
        rejected: 56,
        loaded: 440_944,
        elapsed_secs: 300.0,
        done: false,
    }];
    update(&mut app, Action::Progress(progress));
    let mut seq = 500;
    for (name, source, target, cur) in [
        (
            "SUM(amount_total) EUR",
            "20916456.73",
            "20916456.73",
            Some("EUR"),
        ),
        (
            "SUM(amount_total) USD",
            "120916456.73",
            "120916450.73",
            Some("USD"),
        ),
        ("rows", "440944", "440944", None),
    ] {
        seq += 1;
        act(
            &mut app,
            Action::Record(rec(
                seq,
                "19:00:00",
                Event::CheckRecorded {
                    step: "verify".into(),
                    result: CheckResult {
                        name: name.into(),
                        entity: "invoices".into(),
                        source: source.into(),
                        target: target.into(),
                        status: CheckStatus::Pass,
                        detail: String::new(),
                        currency: cur.map(String::from),
                    },
                },
            )),
        );
    }
    update(&mut app, Action::SelectTab(Tab::Reconciliation));
    app
}

#[test]
fn reconciliation_large_sums_80x24() {
    let mut app = large_sums();
    let mut seen = String::new();
    for _ in 0..app.view.checks.len() {
        seen.push_str(&screen_text(&screen(&app, 80, 24)));
        act(&mut app, Action::ScrollDown);
    }
    for fig in [
        "20,916,456.73",
        "120,916,456.73",
        "120,916,450.73",
        "440,944",
        "valid 440,944",
        "… 440,944│",
    ] {
        assert!(seen.contains(fig), "{fig} cut or missing:\n{seen}");
    }
    // The newest checks, the large sums, selected.
    let mut app = large_sums();
    act(&mut app, Action::ScrollBottom);
    insta::assert_snapshot!(screen(&app, 80, 24));
}

#[test]
fn reconciliation_large_sums_160x48() {
    let s = screen(&large_sums(), 160, 48);
    let text = screen_text(&s);
    for fig in [
        "20,916,456.73 EUR",
        "120,916,456.73 USD",
        "-6.00 USD",
        "440,944",
    ] {
        assert!(text.contains(fig), "{fig} cut or missing:\n{text}");
    }
    insta::assert_snapshot!(s);
}

/// A load that has run for days (the console left open over a long weekend): its
/// duration is shown whole, not cut from the left.
#[test]
fn a_long_overrun_duration_is_never_cut() {
    let mut app = app_mid_load();
    let later = now("19:00:00") + chrono::Duration::hours(120);
    update(&mut app, Action::Tick { now: later });
    // The window is long gone: the rollback proposal is dismissed to see the runbook.
    update(&mut app, Action::CancelRollback);
    let text = screen_text(&screen(&app, 80, 24));
    let row = text
        .lines()
        .find(|l| l.contains("running") && l.contains(" load "))
        .unwrap_or_else(|| panic!("no load row:\n{text}"));
    assert!(row.contains("120h07m/45m00s"), "{row}");
}

/// At 80 columns the tab bar shortens its words, not its counts, and every tab shows.
#[test]
fn tab_counts_are_whole_and_every_tab_shows_at_80x24() {
    let text = screen_text(&screen(&mid_load(Tab::Rejects), 80, 24));
    let bar = text
        .lines()
        .find(|l| l.contains("1 Re"))
        .unwrap_or_else(|| panic!("no tab bar:\n{text}"));
    for want in ["(15)", "(✗ 1)", "3 Log"] {
        assert!(bar.contains(want), "{want:?} missing from {bar:?}");
    }
    let wide = screen_text(&screen(&mid_load(Tab::Rejects), 160, 48));
    assert!(wide.contains("1 Rejects (15)") && wide.contains("2 Reconciliation (✗ 1)"));
}

/// After one GO, the same person signing the second role: the dialog's count stays at one
/// per role and says why the second did not count, as the run decides.
fn same_person_twice() -> App {
    let mut app = one_of_two_signed();
    let signed = app.open_gate().unwrap().signoffs[0].clone();
    let rec = Record {
        seq: 100,
        ts: "2026-11-21T18:48:00Z".into(),
        run_id: RUN_ID.into(),
        prev_hash: String::new(),
        hash: String::new(),
        event: Event::SignOffRefused {
            gate: app.open_gate().unwrap().gate.clone(),
            name: signed.name.to_uppercase(),
            role: "finance".into(),
            decision: crate::journal::events::Decision::Go,
            comment: "sums match".into(),
            evidence_sha256: "cd".repeat(32),
            reason: format!(
                "{} already signs as {} at this gate: one person fills one role",
                signed.name.to_uppercase(),
                signed.role
            ),
        },
    };
    update(&mut app, Action::Record(rec));
    app
}

#[test]
fn gate_dialog_same_person_twice_160x48() {
    let app = same_person_twice();
    let v = app.open_gate().unwrap().view().unwrap();
    assert_eq!(v.counts(), "migration_lead 1 of 1, finance 0 of 1");
    insta::assert_snapshot!(screen(&app, 160, 48));
}

/// In `cutover watch` the gate dialog's Ctrl-C leaves the watch; it never aborts the run,
/// so the hint must not say it does.
#[test]
fn watch_gate_dialog_says_ctrl_c_leaves_the_watch() {
    let mut app = dialog_filled();
    assert!(
        screen(&app, 80, 24)
            .to_string()
            .contains("Ctrl-C abort run")
    );
    update(&mut app, Action::Watching("pid 1 on host since now".into()));
    let s = screen(&app, 80, 24).to_string();
    assert!(s.contains("Ctrl-C leave watch"), "{s}");
    assert!(!s.contains("abort"), "{s}");
}
