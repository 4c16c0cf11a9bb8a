use ratatui::crossterm::event::{KeyCode, KeyModifiers};

use super::fixtures::*;
use super::keymap::action_for;
use super::*;
use crate::control::SignOff;
use crate::journal::events::{EntityCounts, Outcome};

fn type_text(app: &mut App, s: &str) {
    for c in s.chars() {
        update(app, Action::DialogInput(InputRequest::InsertChar(c)));
    }
}

fn key(app: &mut App, code: KeyCode) -> Vec<Effect> {
    match action_for(app, code, KeyModifiers::NONE) {
        Some(a) => update(app, a),
        None => vec![],
    }
}

fn finish(app: &mut App) {
    update(
        app,
        Action::Record(rec(
            999,
            "20:00:00",
            Event::RunFinished {
                outcome: Outcome::Completed,
                exit_code: 0,
                message: "all steps passed".into(),
            },
        )),
    );
}

#[test]
fn run_started_sets_header_and_pending_steps() {
    let mut app = App::new();
    update(&mut app, Action::Record(rec(1, "18:00:00", run_started())));
    assert_eq!(app.view.runbook_name, "TMS → Odoo cutover");
    assert_eq!(app.view.steps.len(), 9);
    assert!(app.view.steps.iter().all(|s| s.state == StepState::Pending));
    assert_eq!(app.production_env().unwrap().name, "production");
    update(
        &mut app,
        Action::Tick {
            now: now("21:30:00"),
        },
    );
    assert_eq!(app.window_left_secs(), Some(90 * 60));
}

#[test]
fn step_states_and_durations_follow_the_journal() {
    let app = app_at_gate();
    let state = |id: &str| app.view.steps.iter().find(|s| s.id == id).unwrap().state;
    assert_eq!(state("backup"), StepState::Passed);
    assert_eq!(state("dry_run"), StepState::Warned);
    assert_eq!(state("go_live"), StepState::WaitingSignOff);
    assert_eq!(state("load"), StepState::Pending);
    let backup = &app.view.steps[0];
    assert_eq!(backup.actual_secs(app.now), Some(432));
    let gate_step = app.view.steps.iter().find(|s| s.id == "go_live").unwrap();
    // Started 18:45:01, now 18:46:00.
    assert_eq!(gate_step.actual_secs(app.now), Some(59));
    assert_eq!(app.view.checks.len(), 6);
    assert!(app.status().1.contains("WAITING AT GATE"));
}

#[test]
fn entity_progress_and_finished_counts() {
    let app = app_mid_load();
    let people = &app.view.entities["people"];
    assert!(people.done);
    assert_eq!(people.counts.as_ref().unwrap().rejected, 3);
    let inv = &app.view.entities["invoices"];
    assert_eq!(
        (inv.read, inv.loaded, inv.expected),
        (15_000, 14_000, 25_000)
    );
    assert_eq!(inv.rate(), Some(50.0));
    assert_eq!(inv.eta_secs(), Some(200));
    // A stale snapshot never moves counters back.
    let mut app = app;
    let mut old = progress_mid_load();
    old[0].read = 10;
    update(&mut app, Action::Progress(old));
    assert_eq!(app.view.entities["invoices"].read, 15_000);
}

/// An entity with one2many lines from their own file: its lines' reject file, beside its
/// own, is loaded too, and its rows are the rejects pane's `<entity>.lines`.
#[test]
fn entity_with_lines_asks_to_load_the_lines_reject_file_too() {
    let mut app = App::new();
    let fx = update(
        &mut app,
        Action::Record(rec(
            1,
            "18:00:00",
            Event::EntityFinished {
                phase: Phase::DryRun,
                entity: "open_invoices".into(),
                counts: EntityCounts {
                    in_file: 5,
                    in_scope: 5,
                    valid: 4,
                    rejected: 1,
                    loaded: 4,
                    lines: Some(crate::journal::events::LineCounts {
                        read: 9,
                        attached: 6,
                        rejected: 3,
                    }),
                },
                reject_file: "r/open_invoices.rejects.csv".into(),
                sums: Default::default(),
                duration_ms: 10,
            },
        )),
    );
    assert_eq!(
        fx,
        vec![
            Effect::LoadRejects {
                entity: "open_invoices".into(),
                path: "r/open_invoices.rejects.csv".into()
            },
            Effect::LoadRejects {
                entity: "open_invoices.lines".into(),
                path: "r/open_invoices.lines.rejects.csv".into()
            },
        ]
    );
    // Indexed, both files are in the pane: all entities, or the lines alone.
    for (entity, n) in [("open_invoices", 1), ("open_invoices.lines", 3)] {
        act(
            &mut app,
            Action::Rejects(RejectAction::Indexed(reject_file(entity, n))),
        );
    }
    assert_eq!(app.rejects.total(), 4);
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    act(&mut app, Action::Rejects(RejectAction::CycleEntity));
    assert_eq!(
        app.rejects.query.entity.as_deref(),
        Some("open_invoices.lines")
    );
    assert_eq!(app.rejects.matched, Some(3));
}

#[test]
fn entity_finished_with_reject_file_asks_to_load_it() {
    let mut app = App::new();
    let fx = update(
        &mut app,
        Action::Record(rec(
            1,
            "18:00:00",
            Event::EntityFinished {
                phase: Phase::DryRun,
                entity: "people".into(),
                counts: EntityCounts {
                    in_file: 5,
                    in_scope: 5,
                    valid: 4,
                    rejected: 1,
                    loaded: 4,
                    lines: None,
                },
                reject_file: "r/people.csv".into(),
                sums: Default::default(),
                duration_ms: 10,
            },
        )),
    );
    assert_eq!(
        fx,
        vec![Effect::LoadRejects {
            entity: "people".into(),
            path: "r/people.csv".into()
        }]
    );
    let fx = update(
        &mut app,
        Action::Record(rec(
            2,
            "18:00:01",
            Event::EntityFinished {
                phase: Phase::DryRun,
                entity: "companies".into(),
                counts: EntityCounts::default(),
                reject_file: String::new(),
                sums: Default::default(),
                duration_ms: 10,
            },
        )),
    );
    assert!(fx.is_empty());
}

#[test]
fn gate_dialog_opens_by_itself_and_sends_exactly_the_typed_sign_off() {
    let mut app = app_at_gate();
    assert!(app.dialog_visible());
    type_text(&mut app, "Migration lead");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "migration_lead");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "counts match");
    update(&mut app, Action::DialogNextField);
    update(&mut app, Action::ChooseDecision(Decision::Go));
    // The gate lets the load into production: a GO needs the database's name typed.
    update(&mut app, Action::DialogNextField);
    assert_eq!(app.dialog.focus(), Field::Database);
    type_text(&mut app, "erp");
    let fx = update(&mut app, Action::SubmitSignOff);
    assert_eq!(
        fx,
        vec![Effect::Send(Command::SignOff(SignOff {
            gate: GATE.into(),
            name: "Migration lead".into(),
            role: "migration_lead".into(),
            decision: Decision::Go,
            comment: "counts match".into(),
            signature_file: None,
        }))]
    );
    // The gate is still open (quorum 2): the dialog stays, cleared, for the next approver.
    assert!(app.dialog_visible());
    assert_eq!(app.dialog.name.value(), "");
    assert_eq!(app.dialog.database.value(), "");
    assert_eq!(app.dialog.decision, None);
    // The next approver must confirm too.
    assert_eq!(app.dialog.confirm_name.as_deref(), Some("erp"));
    assert!(app.notice.as_deref().unwrap().contains("Sign-off sent"));
}

/// Name, role and comment filled in for a GO at the gate.
fn go_filled(app: &mut App) {
    type_text(app, "Migration lead");
    update(app, Action::DialogNextField);
    type_text(app, "migration_lead");
    update(app, Action::DialogNextField);
    type_text(app, "counts match");
    update(app, Action::ChooseDecision(Decision::Go));
}

#[test]
fn production_gate_go_needs_the_database_name_typed_exactly() {
    let mut app = app_at_gate();
    assert_eq!(app.gate_confirm_name().as_deref(), Some("erp"));
    assert_eq!(app.dialog.confirm_name.as_deref(), Some("erp"));
    go_filled(&mut app);
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    assert_eq!(app.dialog.focus(), Field::Database);
    assert!(
        app.dialog
            .error
            .as_deref()
            .unwrap()
            .contains("production database's name")
    );
    // Case and spaces count.
    for wrong in ["ERP", "erp ", " erp", "production"] {
        app.dialog.database = tui_input::Input::default();
        type_text(&mut app, wrong);
        assert!(!app.dialog.database_matches(), "{wrong:?}");
        assert!(
            update(&mut app, Action::SubmitSignOff).is_empty(),
            "{wrong:?}"
        );
    }
    app.dialog.database = tui_input::Input::default();
    type_text(&mut app, "erp");
    assert!(app.dialog.database_matches());
    let fx = update(&mut app, Action::SubmitSignOff);
    assert!(
        matches!(fx.as_slice(), [Effect::Send(Command::SignOff(s))] if s.decision == Decision::Go),
        "{fx:?}"
    );
}

#[test]
fn production_gate_no_go_needs_a_reason_not_the_name() {
    let mut app = app_at_gate();
    go_filled(&mut app);
    // Clear the comment: a NO-GO without a reason is refused.
    app.dialog.comment = tui_input::Input::default();
    update(&mut app, Action::ChooseDecision(Decision::NoGo));
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    assert_eq!(app.dialog.focus(), Field::Comment);
    type_text(&mut app, "AR off by 1");
    let fx = update(&mut app, Action::SubmitSignOff);
    let [Effect::Send(Command::SignOff(s))] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (s.decision, s.comment.as_str()),
        (Decision::NoGo, "AR off by 1")
    );
}

#[test]
fn tab_visits_the_database_field_only_at_a_production_gate() {
    let mut app = app_at_gate();
    let mut seen = vec![app.dialog.focus()];
    for _ in 0..5 {
        update(&mut app, Action::DialogNextField);
        seen.push(app.dialog.focus());
    }
    let production = [
        Field::Name,
        Field::Role,
        Field::Comment,
        Field::Decision,
        Field::Database,
        Field::Name,
    ];
    assert_eq!(seen, production);
    update(&mut app, Action::DialogPrevField);
    assert_eq!(app.dialog.focus(), Field::Database);

    // The same gate with no load after it (before the next gate): no confirmation.
    let mut app = App::new();
    for mut r in records_to_gate() {
        if let Event::RunStarted { steps, .. } = &mut r.event {
            steps.retain(|s| s.kind != StepKind::Load);
        }
        update(&mut app, Action::Record(r));
    }
    assert!(app.dialog_visible());
    assert_eq!(app.gate_confirm_name(), None);
    assert_eq!(
        app.dialog.fields(),
        [Field::Name, Field::Role, Field::Comment, Field::Decision]
    );
    update(&mut app, Action::DialogPrevField);
    assert_eq!(app.dialog.focus(), Field::Decision);
    app.dialog.focus = Some(Field::Name);
    go_filled(&mut app);
    assert_eq!(update(&mut app, Action::SubmitSignOff).len(), 1);
}

#[test]
fn gate_dialog_through_the_keymap() {
    let mut app = app_at_gate();
    // 'q' and 'g' are text while a field has focus.
    for c in "Bo q".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Backspace);
    key(&mut app, KeyCode::Tab);
    for c in "finance".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Tab);
    key(&mut app, KeyCode::Char('n'));
    assert_eq!(app.dialog.decision, Some(Decision::NoGo));
    // NO-GO with no comment is refused, focus goes to Comment.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.dialog.focus(), Field::Comment);
    assert!(
        app.dialog
            .error
            .as_deref()
            .unwrap()
            .contains("NO-GO needs a comment")
    );
    for c in "AR off by 1".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    let fx = key(&mut app, KeyCode::Enter);
    let [Effect::Send(Command::SignOff(s))] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (s.name.as_str(), s.role.as_str(), s.decision),
        ("Bo", "finance", Decision::NoGo)
    );
    assert_eq!(s.comment, "AR off by 1");
}

#[test]
fn no_go_without_comment_is_refused() {
    let mut app = app_at_gate();
    type_text(&mut app, "Ada");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "migration_lead");
    update(&mut app, Action::ChooseDecision(Decision::NoGo));
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    assert!(app.dialog_visible());
    // Whitespace is not a reason either.
    update(&mut app, Action::DialogInput(InputRequest::InsertChar(' ')));
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
}

#[test]
fn go_against_a_no_go_recommendation_needs_a_reason_and_is_shown_as_an_override() {
    let mut app = app_at_no_go_gate();
    go_filled(&mut app);
    app.dialog.comment = tui_input::Input::default();
    update(&mut app, Action::DialogNextField);
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "erp");
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    assert_eq!(app.dialog.focus(), Field::Comment);
    assert!(app.dialog.error.as_deref().unwrap().contains("overrides"));
    type_text(&mut app, "window extended by the business");
    let fx = update(&mut app, Action::SubmitSignOff);
    let [Effect::Send(Command::SignOff(s))] = fx.as_slice() else {
        panic!("{fx:?}")
    };
    assert_eq!(
        (s.decision, s.comment.as_str()),
        (Decision::Go, "window extended by the business")
    );
    // The engine journals it as an override; the dialog lists it so.
    record(
        &mut app,
        90,
        "18:47:00",
        Event::SignOffRecorded {
            gate: GATE.into(),
            name: s.name.clone(),
            role: s.role.clone(),
            decision: Decision::Go,
            comment: s.comment.clone(),
            evidence_sha256: String::new(),
            overrides: true,
            signature: None,
        },
    );
    assert!(app.open_gate().unwrap().signoffs[0].overrides);
}

#[test]
fn a_pipeline_step_starting_replaces_the_last_ones_entities() {
    let mut app = app_at_gate();
    assert_eq!(app.view.pipeline_phase, Some(Phase::DryRun));
    assert_eq!(app.view.entities.len(), 4, "the dry run's entities");
    record(
        &mut app,
        90,
        "18:53:00",
        Event::StepStarted {
            step: "load".into(),
        },
    );
    assert_eq!(app.view.pipeline_phase, Some(Phase::Load));
    assert!(
        app.view.entities.is_empty(),
        "no dry-run row passes for a load row"
    );
    record(
        &mut app,
        91,
        "18:53:01",
        Event::EntityStarted {
            phase: Phase::Load,
            entity: "companies".into(),
            table: "res_company".into(),
            expected_rows: 1_200,
        },
    );
    assert_eq!(app.view.entities.len(), 1);
    assert_eq!(app.view.entities["companies"].phase, Some(Phase::Load));
    // Other steps leave the pane as it is.
    record(
        &mut app,
        92,
        "18:59:00",
        Event::StepStarted {
            step: "verify".into(),
        },
    );
    assert_eq!(app.view.entities.len(), 1);
}

#[test]
fn submit_refuses_missing_fields_and_unknown_role() {
    let mut app = app_at_gate();
    update(&mut app, Action::ChooseDecision(Decision::Go));
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    assert_eq!(app.dialog.focus(), Field::Name);
    type_text(&mut app, "Ada");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "intern");
    assert!(update(&mut app, Action::SubmitSignOff).is_empty());
    assert!(
        app.dialog
            .error
            .as_deref()
            .unwrap()
            .contains("migration_lead, finance")
    );
}

#[test]
fn esc_hides_the_dialog_and_g_brings_it_back_with_the_text() {
    let mut app = app_at_gate();
    type_text(&mut app, "Ada");
    key(&mut app, KeyCode::Esc);
    assert!(!app.dialog_visible());
    key(&mut app, KeyCode::Char('g'));
    assert!(app.dialog_visible());
    assert_eq!(app.dialog.name.value(), "Ada");
}

#[test]
fn gate_decided_closes_the_dialog_and_resumes_the_step() {
    let app = app_mid_load();
    assert!(!app.dialog_visible());
    let g = app.view.gate().unwrap();
    assert_eq!(g.signoffs.len(), 2);
    assert_eq!(g.decided, Some(Decision::Go));
    let state = |id: &str| app.view.steps.iter().find(|s| s.id == id).unwrap().state;
    assert_eq!(state("go_live"), StepState::Passed);
    assert_eq!(state("load"), StepState::Running);
}

#[test]
fn quit_before_finish_asks_then_sends_abort_then_quits() {
    let mut app = app_mid_load();
    assert!(key(&mut app, KeyCode::Char('q')).is_empty());
    assert!(app.confirm_quit);
    key(&mut app, KeyCode::Esc);
    assert!(!app.confirm_quit);
    key(&mut app, KeyCode::Char('q'));
    let fx = key(&mut app, KeyCode::Char('y'));
    assert_eq!(fx, vec![Effect::Send(Command::Abort), Effect::Quit]);
}

fn ctrl_c(app: &mut App) -> Vec<Effect> {
    let a = action_for(app, KeyCode::Char('c'), KeyModifiers::CONTROL).unwrap();
    update(app, a)
}

/// Ctrl-C asks before it aborts, as `q` does, from the main screen and from inside a
/// dialog; the question is answered by a second Ctrl-C, `y` or `q`, or cancelled.
#[test]
fn ctrl_c_asks_before_it_aborts_even_in_the_dialog() {
    let abort = vec![Effect::Send(Command::Abort), Effect::Quit];
    type Setup = fn() -> App;
    let at_gate_in_dialog: Setup = || {
        let app = app_at_gate();
        assert!(app.dialog_visible());
        app
    };
    let setups: [(&str, Setup); 2] = [
        ("mid load", app_mid_load),
        ("gate dialog", at_gate_in_dialog),
    ];
    let answers: [(&str, KeyCode, KeyModifiers, bool); 5] = [
        (
            "Ctrl-C again",
            KeyCode::Char('c'),
            KeyModifiers::CONTROL,
            true,
        ),
        ("y", KeyCode::Char('y'), KeyModifiers::NONE, true),
        ("q", KeyCode::Char('q'), KeyModifiers::NONE, true),
        ("n", KeyCode::Char('n'), KeyModifiers::NONE, false),
        ("Esc", KeyCode::Esc, KeyModifiers::NONE, false),
    ];
    for (where_, setup) in setups {
        for (what, code, mods, aborts) in answers {
            let mut app = setup();
            assert!(
                ctrl_c(&mut app).is_empty(),
                "{where_}: the first Ctrl-C only asks"
            );
            assert!(app.confirm_quit, "{where_}");
            let a = action_for(&app, code, mods).unwrap();
            let fx = update(&mut app, a);
            if aborts {
                assert_eq!(fx, abort, "{where_}, {what}");
            } else {
                assert!(fx.is_empty(), "{where_}, {what}: {fx:?}");
                assert!(!app.confirm_quit, "{where_}, {what}");
            }
        }
    }
}

#[test]
fn a_stop_signal_aborts_without_asking() {
    let mut app = app_at_gate();
    assert_eq!(
        update(&mut app, Action::Interrupt),
        vec![Effect::Send(Command::Abort), Effect::Quit]
    );
}

#[test]
fn ctrl_c_after_the_run_only_quits() {
    let mut app = app_mid_load();
    finish(&mut app);
    assert_eq!(ctrl_c(&mut app), vec![Effect::Quit]);
}

#[test]
fn quit_after_finish_only_quits() {
    let mut app = app_mid_load();
    finish(&mut app);
    assert_eq!(app.status().1, "COMPLETED");
    assert_eq!(key(&mut app, KeyCode::Char('q')), vec![Effect::Quit]);
    assert_eq!(update(&mut app, Action::Interrupt), vec![Effect::Quit]);
}

#[test]
fn log_keeps_the_last_lines_only() {
    let mut app = App::new();
    for i in 0..(LOG_CAPACITY as i64 + 50) {
        update(
            &mut app,
            Action::Record(rec(
                i,
                "18:00:00",
                Event::StepStarted {
                    step: format!("s{i}"),
                },
            )),
        );
    }
    assert_eq!(app.log.len(), LOG_CAPACITY);
    assert!(app.log.back().unwrap().text.contains("s249"));
}

#[test]
fn tabs_and_help_via_keymap() {
    let mut app = app_mid_load();
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.tab, Tab::Reconciliation);
    key(&mut app, KeyCode::Char('3'));
    assert_eq!(app.tab, Tab::Log);
    // '?' typed with Shift still opens help.
    let a = action_for(&app, KeyCode::Char('?'), KeyModifiers::SHIFT).unwrap();
    update(&mut app, a);
    assert!(app.show_help);
    key(&mut app, KeyCode::Esc);
    assert!(!app.show_help);
}

// ---------------------------------------------------------------- window and rollback

/// Type through the keymap, as the loop does: in a dialog every unbound key edits a field.
fn type_keys(app: &mut App, s: &str) {
    for c in s.chars() {
        let a = action_for(app, KeyCode::Char(c), KeyModifiers::NONE)
            .unwrap_or_else(|| panic!("'{c}' does nothing here"));
        update(app, a);
    }
}

fn shift_r(app: &mut App) -> Vec<Effect> {
    let a = action_for(app, KeyCode::Char('R'), KeyModifiers::SHIFT).expect("R is bound");
    assert_eq!(a, Action::OpenRollbackDialog);
    update(app, a)
}

fn record(app: &mut App, seq: i64, hms: &str, event: Event) -> Vec<Effect> {
    update(app, Action::Record(rec(seq, hms, event)))
}

fn window_exceeded() -> Event {
    Event::WindowExceeded {
        window_end: at("23:00:00"),
    }
}

#[test]
fn forecast_follows_the_records_progress_and_clock() {
    let app = app_mid_load();
    let f = app.forecast().unwrap();
    // Live: invoices 10,000 rows left at 50/s (200s), lines 72,000 at 60/s (1,200s);
    // then verify 10m and unfreeze 2m as planned.
    assert_eq!(f.projected_finish, now("19:35:20"));
    assert_eq!(f.basis, crate::window::Basis::Live);
    // Rollback: twice this run's 7m12s backup before 23:00.
    assert_eq!(f.point_of_no_return, now("22:45:36"));
    assert!(!f.overruns && !f.exceeded);

    let f = app_overrunning().forecast().unwrap();
    assert!(f.overruns && !f.past_point_of_no_return);
    let f = app_past_point_of_no_return().forecast().unwrap();
    assert!(f.past_point_of_no_return && !f.exceeded);
    // Without a window there is no forecast.
    let mut app = App::new();
    let mut started = run_started();
    if let Event::RunStarted { window_end, .. } = &mut started {
        *window_end = None;
    }
    record(&mut app, 1, "18:00:00", started);
    update(
        &mut app,
        Action::Tick {
            now: now("18:01:00"),
        },
    );
    assert_eq!(app.forecast(), None);
}

#[test]
fn r_opens_the_manual_rollback_dialog_and_esc_cancels_it() {
    let mut app = app_mid_load();
    assert!(!app.rollback_dialog_visible());
    assert!(shift_r(&mut app).is_empty());
    assert!(app.rollback_dialog_visible());
    assert_eq!(app.rollback_dialog.origin, RollbackOrigin::Manual);
    assert_eq!(app.rollback_dialog.focus, RollbackField::Database);
    // Letters that are keys on the main screen (q, R, g) are typed, not obeyed.
    type_keys(&mut app, "qRg");
    assert_eq!(app.rollback_dialog.database.value(), "qRg");
    assert!(!app.confirm_quit);
    let fx = key(&mut app, KeyCode::Esc);
    assert!(fx.is_empty());
    assert!(!app.rollback_dialog_visible());
    assert!(app.notice.as_deref().unwrap().contains("nothing was sent"));
    // Reopened, nothing typed survives.
    shift_r(&mut app);
    assert_eq!(app.rollback_dialog.database.value(), "");
    // Ctrl-C from inside the dialog asks, then a second one aborts.
    assert!(ctrl_c(&mut app).is_empty());
    assert!(app.confirm_quit);
    assert_eq!(
        ctrl_c(&mut app),
        vec![Effect::Send(Command::Abort), Effect::Quit]
    );
}

#[test]
fn rollback_needs_the_exact_database_name_and_a_reason() {
    let mut app = app_mid_load();
    assert_eq!(app.rollback_confirm_name(), Some("erp"));
    shift_r(&mut app);
    // Wrong names: another case, a trailing space, the environment's name.
    for wrong in ["ERP", "erp ", "production"] {
        update(&mut app, Action::RollbackInput(InputRequest::DeleteLine));
        type_keys(&mut app, wrong);
        assert!(!app.rollback_dialog.name_matches("erp"));
        assert!(
            key(&mut app, KeyCode::Enter).is_empty(),
            "{wrong:?} let through"
        );
        assert!(app.rollback_dialog_visible());
        assert!(app.rollback_dialog.error.is_some());
        assert_eq!(app.rollback_dialog.focus, RollbackField::Database);
    }
    update(&mut app, Action::RollbackInput(InputRequest::DeleteLine));
    type_keys(&mut app, "erp");
    assert!(app.rollback_dialog.name_matches("erp"));
    assert_eq!(app.rollback_dialog.error, None);
    // The right name without a reason: refused, focus on the reason.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.rollback_dialog.focus, RollbackField::Reason);
    type_keys(&mut app, "load too slow");
    let fx = key(&mut app, KeyCode::Enter);
    assert_eq!(
        fx,
        vec![Effect::Send(Command::Rollback {
            reason: "load too slow".into()
        })]
    );
    assert!(!app.rollback_dialog_visible());
    assert_eq!(app.rollback_asked.as_deref(), Some("load too slow"));
    assert_eq!(app.status().1, "ROLLBACK ASKED");
    assert!(app.notice.as_deref().unwrap().contains("Rollback sent"));
    assert!(app.log.back().unwrap().text.contains("load too slow"));
    // Asked once: R now only explains.
    assert!(shift_r(&mut app).is_empty());
    assert!(!app.rollback_dialog_visible());
    assert!(app.notice.as_deref().unwrap().contains("already"));
}

#[test]
fn tab_switches_between_the_rollback_fields() {
    let mut app = app_mid_load();
    shift_r(&mut app);
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.rollback_dialog.focus, RollbackField::Reason);
    type_keys(&mut app, "why");
    key(&mut app, KeyCode::Up);
    assert_eq!(app.rollback_dialog.focus, RollbackField::Database);
    assert_eq!(app.rollback_dialog.reason.value(), "why");
    assert_eq!(app.rollback_dialog.database.value(), "");
}

#[test]
fn window_exceeded_record_proposes_the_rollback_and_comes_back_after_dismissal() {
    let mut app = app_mid_load();
    let n = records_mid_load().len() as i64;
    record(&mut app, n + 1, "23:00:05", window_exceeded());
    assert!(app.rollback_dialog_visible());
    assert_eq!(app.rollback_dialog.origin, RollbackOrigin::WindowExceeded);
    assert_eq!(
        app.rollback_dialog.reason.value(),
        "cutover window exceeded (ended 23:00 UTC)"
    );
    key(&mut app, KeyCode::Esc);
    assert!(!app.rollback_dialog_visible());
    let notice = app.notice.clone().unwrap();
    assert!(notice.contains("next exceeded event, or R"));
    // The clock alone does not bring it back; the next exceeded event does.
    update(
        &mut app,
        Action::Tick {
            now: now("23:01:00"),
        },
    );
    assert!(!app.rollback_dialog_visible());
    record(&mut app, n + 2, "23:30:00", window_exceeded());
    assert!(app.rollback_dialog_visible());
    // Confirming the proposal sends its prefilled reason.
    type_keys(&mut app, "erp");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Send(Command::Rollback {
            reason: "cutover window exceeded (ended 23:00 UTC)".into()
        })]
    );
}

#[test]
fn the_clock_passing_the_window_end_proposes_the_rollback_once() {
    let mut app = app_mid_load();
    update(
        &mut app,
        Action::Tick {
            now: now("22:59:59"),
        },
    );
    assert!(!app.rollback_dialog_visible());
    update(
        &mut app,
        Action::Tick {
            now: now("23:00:01"),
        },
    );
    assert!(app.rollback_dialog_visible());
    assert_eq!(app.rollback_dialog.origin, RollbackOrigin::WindowExceeded);
    update(&mut app, Action::CancelRollback);
    update(
        &mut app,
        Action::Tick {
            now: now("23:05:00"),
        },
    );
    assert!(!app.rollback_dialog_visible());
    // R still opens it by hand.
    shift_r(&mut app);
    assert_eq!(app.rollback_dialog.origin, RollbackOrigin::Manual);
}

#[test]
fn rollback_records_close_the_dialog_and_show_the_outcome() {
    let mut app = app_mid_load();
    shift_r(&mut app);
    record(
        &mut app,
        100,
        "19:01:00",
        Event::RollbackStarted {
            reason: "rollback asked by the operator: slow".into(),
        },
    );
    assert!(!app.rollback_dialog_visible());
    assert_eq!(app.status().1, "ROLLING BACK");
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .starts_with("↺ Rollback started")
    );
    assert!(app.rollback_refusal().unwrap().contains("under way"));
    record(
        &mut app,
        101,
        "19:20:00",
        Event::RollbackFinished {
            ok: false,
            message: "restore failed".into(),
        },
    );
    assert_eq!(
        app.notice.as_deref(),
        Some("✗ Rollback FAILED: restore failed")
    );
    finish(&mut app);
    assert!(shift_r(&mut app).is_empty());
    assert!(!app.rollback_dialog_visible());
}

#[test]
fn no_rollback_before_the_run_in_a_rehearsal_or_after_the_end() {
    let mut app = App::new();
    shift_r(&mut app);
    assert!(!app.rollback_dialog_visible());
    assert!(app.notice.as_deref().unwrap().contains("No run"));

    let mut started = run_started();
    if let Event::RunStarted { mode, .. } = &mut started {
        *mode = RunMode::Rehearse;
    }
    record(&mut app, 1, "18:00:00", started);
    shift_r(&mut app);
    assert!(!app.rollback_dialog_visible());
    assert!(app.notice.as_deref().unwrap().contains("rehearsal"));
    // Nor is one proposed when a rehearsal passes the window's end.
    record(&mut app, 2, "23:00:05", window_exceeded());
    assert!(!app.rollback_dialog_visible());

    let mut app = app_mid_load();
    shift_r(&mut app);
    finish(&mut app);
    assert!(!app.rollback_dialog_visible());
    assert_eq!(update(&mut app, Action::ConfirmRollback), vec![]);
}

#[test]
fn confirm_name_falls_back_to_the_environment_for_older_journals() {
    let mut app = App::new();
    let mut started = run_started();
    if let Event::RunStarted { environments, .. } = &mut started {
        for e in environments {
            e.database.clear();
        }
    }
    record(&mut app, 1, "18:00:00", started);
    assert_eq!(app.rollback_confirm_name(), Some("production"));
}

#[test]
fn throughput_is_sampled_once_a_second_on_the_tick() {
    let mut app = app_mid_load();
    // app_mid_load ticked once at 19:00: the baseline, no sample yet.
    assert_eq!(app.running_throughput("invoices").unwrap().samples.len(), 0);
    let tick = |app: &mut App, hms: &str, invoices: u64| {
        update(
            app,
            Action::Progress(progress_load((invoices, 301.0), (18_000, 301.0))),
        );
        update(app, Action::Tick { now: now(hms) });
    };
    // Half a second later: too soon for a sample.
    update(
        &mut app,
        Action::Tick {
            now: now("19:00:00") + chrono::Duration::milliseconds(500),
        },
    );
    assert!(app.throughput["invoices"].samples.is_empty());
    tick(&mut app, "19:00:02", 15_300);
    // 300 rows in 2 s; invoice lines had not moved.
    assert_eq!(app.throughput["invoices"].latest(), Some(150));
    assert_eq!(app.throughput["invoice_lines"].latest(), Some(0));
    // Done entities are not sampled.
    assert!(!app.throughput.contains_key("companies"));
    assert_eq!(app.running_throughput("companies"), None);
}

#[test]
fn throughput_history_is_bounded_and_ends_with_the_entity() {
    let mut app = app_throughput();
    let inv = app.running_throughput("invoices").unwrap();
    assert_eq!(inv.samples.len(), 60);
    assert_eq!(inv.latest(), Some(throughput_rates(60).0));
    let lines = &app.throughput["invoice_lines"].samples;
    assert_eq!(lines[35], 0, "the stall shows");
    // Keep ticking for longer than the buffer holds: it stays at capacity, newest last.
    let mut read = 20_000;
    for i in 1..=(THROUGHPUT_CAPACITY as i64 + 10) {
        read += 7;
        update(
            &mut app,
            Action::Progress(progress_load((read, 400.0), (20_000, 400.0))),
        );
        update(
            &mut app,
            Action::Tick {
                now: now("19:00:00") + chrono::Duration::seconds(i),
            },
        );
    }
    let inv = app.running_throughput("invoices").unwrap();
    assert_eq!(inv.samples.len(), THROUGHPUT_CAPACITY);
    assert!(inv.samples.iter().all(|r| *r == 7), "{:?}", inv.samples);
    // Once the entity finishes, no sparkline is offered for it.
    update(
        &mut app,
        Action::Record(rec(
            500,
            "19:03:00",
            Event::EntityFinished {
                phase: Phase::Load,
                entity: "invoices".into(),
                counts: EntityCounts::default(),
                reject_file: String::new(),
                sums: Default::default(),
                duration_ms: 1,
            },
        )),
    );
    assert_eq!(app.running_throughput("invoices"), None);
}

#[test]
fn tracing_lines_join_the_log_with_their_level() {
    let mut app = app_mid_load();
    let before = app.log.len();
    update(
        &mut app,
        Action::Log {
            level: tracing::Level::WARN,
            target: "cutover::steps".into(),
            message: "transient fault; retrying the batch entity=people attempt=1".into(),
        },
    );
    update(
        &mut app,
        Action::Log {
            level: tracing::Level::ERROR,
            target: "sqlx::pool".into(),
            message: "connection lost".into(),
        },
    );
    assert_eq!(app.log.len(), before + 2);
    let warn = &app.log[before];
    assert_eq!(warn.level, Some(tracing::Level::WARN));
    assert_eq!(warn.tone, Tone::Warn);
    assert_eq!(warn.time, "19:00:00", "at the app's clock");
    assert_eq!(
        warn.text,
        "transient fault; retrying the batch entity=people attempt=1"
    );
    let err = &app.log[before + 1];
    assert_eq!(err.tone, Tone::Bad);
    assert_eq!(
        err.text, "connection lost (sqlx::pool)",
        "another crate is named"
    );
    // Journal lines carry no level.
    assert!(app.log.iter().take(before).all(|l| l.level.is_none()));
}

#[test]
fn log_dropped_keeps_the_running_total() {
    let mut app = app_mid_load();
    assert_eq!(app.log_dropped, 0);
    update(&mut app, Action::LogDropped { total: 5 });
    assert_eq!(app.log_dropped, 5);
    // A stale (smaller) total never moves it back.
    update(&mut app, Action::LogDropped { total: 2 });
    assert_eq!(app.log_dropped, 5);
}

#[test]
fn tracing_lines_are_bounded_like_the_rest_of_the_log() {
    let mut app = app_mid_load();
    for i in 0..LOG_CAPACITY + 5 {
        update(
            &mut app,
            Action::Log {
                level: tracing::Level::INFO,
                target: "cutover".into(),
                message: format!("line {i}"),
            },
        );
    }
    assert_eq!(app.log.len(), LOG_CAPACITY);
    assert_eq!(
        app.log.back().unwrap().text,
        format!("line {}", LOG_CAPACITY + 4)
    );
}

#[test]
fn throughput_starts_over_in_a_new_phase() {
    let mut t = Throughput::default();
    t.sample(now("19:00:00"), Some(Phase::DryRun), 1_000);
    t.sample(now("19:00:01"), Some(Phase::DryRun), 1_500);
    assert_eq!(t.samples, [500]);
    // The load starts the count over: no history carried over, no negative jump.
    t.sample(now("19:00:02"), Some(Phase::Load), 100);
    assert!(t.samples.is_empty());
    assert_eq!(t.phase, Some(Phase::Load));
    t.sample(now("19:00:04"), Some(Phase::Load), 300);
    assert_eq!(t.latest(), Some(100));
}

#[test]
fn help_scroll_is_clamped_and_starts_over_when_reopened() {
    let mut app = app_mid_load();
    key(&mut app, KeyCode::Char('?'));
    key(&mut app, KeyCode::Up);
    assert_eq!(app.help_scroll, 0);
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Char('j'));
    assert_eq!(app.help_scroll, 2);
    for _ in 0..500 {
        update(&mut app, Action::HelpScroll(1));
    }
    assert_eq!(app.help_scroll, keymap::help_lines() - 1);
    key(&mut app, KeyCode::Esc);
    key(&mut app, KeyCode::Char('?'));
    assert_eq!(app.help_scroll, 0);
}

/// The actions the tests above reach only through keys, each on its own.
mod each_action {
    use super::*;

    #[test]
    fn next_and_prev_tab_wrap_around() {
        let mut app = app_mid_load();
        update(&mut app, Action::SelectTab(Tab::Log));
        update(&mut app, Action::NextTab);
        assert_eq!(app.tab, Tab::Rejects);
        update(&mut app, Action::PrevTab);
        assert_eq!(app.tab, Tab::Log);
        update(&mut app, Action::PrevTab);
        assert_eq!(app.tab, Tab::Reconciliation);
    }

    #[test]
    fn scrolling_the_reconciliation_is_clamped_to_its_checks() {
        let mut app = app_mid_load();
        update(&mut app, Action::SelectTab(Tab::Reconciliation));
        update(&mut app, Action::ScrollDown);
        update(&mut app, Action::ScrollDown);
        assert_eq!(app.recon_scroll, 2);
        update(&mut app, Action::PageUp);
        assert_eq!(app.recon_scroll, 0);
        update(&mut app, Action::PageDown);
        assert_eq!(app.recon_scroll, app.view.checks.len() - 1);
    }

    #[test]
    fn hide_and_open_the_gate_dialog() {
        let mut app = app_at_gate();
        update(&mut app, Action::HideGateDialog);
        assert!(!app.dialog_visible());
        update(&mut app, Action::ToggleHelp);
        update(&mut app, Action::OpenGateDialog);
        assert!(app.dialog_visible());
        assert!(!app.show_help, "the dialog replaces the help overlay");
        // Without an open gate there is nothing to open.
        let mut idle = app_mid_load();
        update(&mut idle, Action::OpenGateDialog);
        assert!(!idle.dialog_visible());
        assert_eq!(idle.notice.as_deref(), Some("No gate is open"));
    }

    #[test]
    fn toggle_decision_starts_at_go_then_alternates() {
        let mut app = app_at_gate();
        assert_eq!(app.dialog.decision, None, "no default decision");
        update(&mut app, Action::ToggleDecision);
        assert_eq!(app.dialog.decision, Some(Decision::Go));
        update(&mut app, Action::ToggleDecision);
        assert_eq!(app.dialog.decision, Some(Decision::NoGo));
        update(&mut app, Action::ToggleDecision);
        assert_eq!(app.dialog.decision, Some(Decision::Go));
    }

    #[test]
    fn toggle_help_opens_at_the_top_and_closes() {
        let mut app = app_mid_load();
        update(&mut app, Action::ToggleHelp);
        update(&mut app, Action::HelpScroll(3));
        assert!(app.show_help);
        update(&mut app, Action::ToggleHelp);
        assert!(!app.show_help);
        update(&mut app, Action::ToggleHelp);
        assert_eq!(app.help_scroll, 0);
    }

    #[test]
    fn quit_asks_and_cancel_quit_takes_it_back() {
        let mut app = app_mid_load();
        assert!(update(&mut app, Action::Quit).is_empty());
        assert!(app.confirm_quit);
        update(&mut app, Action::CancelQuit);
        assert!(!app.confirm_quit);
        assert!(
            update(&mut app, Action::Quit).is_empty(),
            "asks again after a cancel"
        );
    }

    #[test]
    fn a_notice_shows_and_goes_to_the_log() {
        let mut app = app_mid_load();
        let before = app.log.len();
        update(
            &mut app,
            Action::Notice {
                text: "The engine is no longer listening".into(),
            },
        );
        assert_eq!(
            app.notice.as_deref(),
            Some("The engine is no longer listening")
        );
        assert_eq!(app.log.len(), before + 1);
        assert_eq!(
            app.log.back().unwrap().text,
            "The engine is no longer listening"
        );
    }

    #[test]
    fn rollback_switch_field_moves_between_database_and_reason() {
        let mut app = app_mid_load();
        update(&mut app, Action::OpenRollbackDialog);
        assert_eq!(app.rollback_dialog.focus, RollbackField::Database);
        update(&mut app, Action::RollbackSwitchField);
        assert_eq!(app.rollback_dialog.focus, RollbackField::Reason);
        update(
            &mut app,
            Action::RollbackInput(InputRequest::InsertChar('x')),
        );
        assert_eq!(app.rollback_dialog.reason.value(), "x");
        update(&mut app, Action::RollbackSwitchField);
        assert_eq!(app.rollback_dialog.focus, RollbackField::Database);
    }
}

// ---------------------------------------------------------------- skip a step

fn s_key(app: &mut App) -> Vec<Effect> {
    let a = action_for(app, KeyCode::Char('s'), KeyModifiers::NONE).expect("s is bound");
    assert_eq!(a, Action::OpenSkipDialog);
    update(app, a)
}

#[test]
fn s_opens_the_skip_dialog_on_the_first_pending_skippable_step_and_esc_cancels() {
    let mut app = app_mid_load();
    // load is running; backup … go_live are done: only verify and unfreeze are offered.
    assert_eq!(app.skip_candidates(), ["verify", "unfreeze"]);
    assert!(s_key(&mut app).is_empty());
    assert!(app.skip_dialog_visible());
    assert_eq!(app.skip_dialog.focus, SkipField::Step);
    assert_eq!(app.skip_dialog.step.as_deref(), Some("verify"));
    // A letter on the Step row edits nothing and does not reopen the dialog.
    assert_eq!(
        action_for(&app, KeyCode::Char('x'), KeyModifiers::NONE),
        None
    );
    assert!(key(&mut app, KeyCode::Esc).is_empty());
    assert!(!app.skip_dialog_visible());
    assert_eq!(
        app.notice.as_deref(),
        Some("Skip cancelled: nothing was sent")
    );
}

#[test]
fn skip_step_row_cycles_with_arrows_and_space() {
    let mut app = app_mid_load();
    s_key(&mut app);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.skip_dialog.step.as_deref(), Some("unfreeze"));
    key(&mut app, KeyCode::Right);
    assert_eq!(app.skip_dialog.step.as_deref(), Some("verify"), "wraps");
    key(&mut app, KeyCode::Left);
    assert_eq!(app.skip_dialog.step.as_deref(), Some("unfreeze"));
    key(&mut app, KeyCode::Char(' '));
    assert_eq!(app.skip_dialog.step.as_deref(), Some("verify"));
    // In a text field, arrows move the cursor and do not change the step.
    key(&mut app, KeyCode::Tab);
    assert_eq!(app.skip_dialog.focus, SkipField::Name);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.skip_dialog.step.as_deref(), Some("verify"));
    key(&mut app, KeyCode::BackTab);
    assert_eq!(app.skip_dialog.focus, SkipField::Step);
    key(&mut app, KeyCode::Up);
    assert_eq!(app.skip_dialog.focus, SkipField::Reason);
}

#[test]
fn skip_needs_a_name_and_a_reason_then_sends_exactly_one_command() {
    let mut app = app_mid_load();
    s_key(&mut app);
    key(&mut app, KeyCode::Right);
    // Nothing typed: refused, focus on the name.
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert!(app.skip_dialog_visible());
    assert_eq!(app.skip_dialog.focus, SkipField::Name);
    assert!(app.skip_dialog.error.as_deref().unwrap().contains("name"));
    type_keys(&mut app, "Migration lead");
    assert_eq!(app.skip_dialog.error, None);
    // Blank reason: refused, focus on the reason.
    key(&mut app, KeyCode::Tab);
    type_keys(&mut app, "   ");
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.skip_dialog.focus, SkipField::Reason);
    assert!(app.skip_dialog.error.as_deref().unwrap().contains("reason"));
    type_keys(&mut app, "reopened by the ERP team ");
    assert_eq!(
        key(&mut app, KeyCode::Enter),
        vec![Effect::Send(Command::Skip {
            step: "unfreeze".into(),
            name: "Migration lead".into(),
            reason: "reopened by the ERP team".into(),
        })]
    );
    assert!(!app.skip_dialog_visible());
    assert!(
        app.notice
            .as_deref()
            .unwrap()
            .contains("Skip sent: unfreeze")
    );
    assert!(
        app.log
            .back()
            .unwrap()
            .text
            .contains("reopened by the ERP team")
    );
    // Asked once: not offered again.
    assert_eq!(app.skip_candidates(), ["verify"]);
    s_key(&mut app);
    assert_eq!(app.skip_dialog.step.as_deref(), Some("verify"));
}

#[test]
fn skip_dialog_says_so_when_no_step_can_be_skipped() {
    let mut app = app_mid_load();
    app.skips_asked = vec!["verify".into(), "unfreeze".into()];
    s_key(&mut app);
    assert!(app.skip_dialog_visible());
    assert_eq!(app.skip_dialog.step, None);
    key(&mut app, KeyCode::Right);
    assert_eq!(app.skip_dialog.step, None);
    assert!(key(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        app.skip_dialog.error.as_deref(),
        Some("No pending step can be skipped")
    );
}

#[test]
fn step_skipped_record_shows_the_step_skipped_with_who_and_why() {
    let mut app = app_mid_load();
    let n = records_mid_load().len() as i64;
    record(
        &mut app,
        n + 1,
        "19:01:00",
        Event::StepSkipped {
            step: "verify".into(),
            name: "Migration lead".into(),
            reason: "checked by hand".into(),
        },
    );
    let row = |app: &App| {
        app.view
            .steps
            .iter()
            .find(|s| s.id == "verify")
            .unwrap()
            .clone()
    };
    assert_eq!(row(&app).state, StepState::Skipped);
    assert_eq!(
        row(&app).message,
        "skipped by Migration lead: checked by hand"
    );
    assert_eq!(
        app.log.back().unwrap().text,
        "- verify skipped by Migration lead: checked by hand"
    );
    record(
        &mut app,
        n + 2,
        "19:01:00",
        Event::StepFinished {
            step: "verify".into(),
            status: crate::journal::events::StepStatus::Skipped,
            message: "skipped by Migration lead: checked by hand".into(),
            duration_ms: 0,
        },
    );
    assert_eq!(row(&app).state, StepState::Skipped);
    assert_eq!(row(&app).duration_ms, Some(0));
    // One log line for the skip, not a second for its StepFinished.
    assert!(
        app.log
            .back()
            .unwrap()
            .text
            .starts_with("- verify skipped by")
    );
    assert_eq!(
        app.log
            .iter()
            .filter(|l| l.text.contains("verify skipped"))
            .count(),
        1
    );
    assert_eq!(app.skip_candidates(), ["unfreeze"]);
}

#[test]
fn no_skip_before_the_run_while_rolling_back_or_after_the_end() {
    let mut app = App::new();
    assert!(s_key(&mut app).is_empty());
    assert!(!app.skip_dialog_visible());
    assert!(app.notice.as_deref().unwrap().contains("No run"));
    let mut app = app_mid_load();
    app.rollback_asked = Some("too slow".into());
    s_key(&mut app);
    assert!(!app.skip_dialog_visible());
    assert!(app.notice.as_deref().unwrap().contains("rolling back"));
    let mut app = app_mid_load();
    s_key(&mut app);
    finish(&mut app);
    assert!(!app.skip_dialog_visible());
    assert!(update(&mut app, Action::SubmitSkip).is_empty());
}

#[test]
fn a_no_go_may_hold_the_legacy_freeze_with_its_reason() {
    let sent = |hold: bool| {
        let mut app = app_at_gate();
        type_text(&mut app, "Ada");
        update(&mut app, Action::DialogNextField);
        type_text(&mut app, "migration_lead");
        update(&mut app, Action::DialogNextField);
        type_text(&mut app, "credit limits wrong; fix and rehearse");
        update(&mut app, Action::ChooseDecision(Decision::NoGo));
        if hold {
            update(&mut app, Action::ToggleHoldFreeze);
        }
        update(&mut app, Action::SubmitSignOff)
    };
    // The hold goes first, with the NO-GO's reason, so the engine has it at the NO-GO.
    let fx = sent(true);
    let [
        Effect::Send(Command::HoldFreeze { reason }),
        Effect::Send(Command::SignOff(s)),
    ] = fx.as_slice()
    else {
        panic!("{fx:?}")
    };
    assert_eq!(reason, "credit limits wrong; fix and rehearse");
    assert_eq!(s.decision, Decision::NoGo);
    // Without it, only the sign-off: the legacy is reopened.
    let fx = sent(false);
    assert!(
        matches!(fx.as_slice(), [Effect::Send(Command::SignOff(_))]),
        "{fx:?}"
    );
}

/// The dialog's count is the gate policy's: the same person signing a second role does
/// not count twice, and a sign-off the run refused is listed with its reason.
#[test]
fn the_dialog_counts_per_role_as_the_run_does_and_says_why_a_sign_off_did_not_count() {
    let mut app = app_at_gate();
    let signed = |name: &str, role: &str| Event::SignOffRecorded {
        gate: GATE.into(),
        name: name.into(),
        role: role.into(),
        decision: Decision::Go,
        comment: "ok".into(),
        evidence_sha256: "cd".repeat(32),
        overrides: false,
        signature: None,
    };
    record(
        &mut app,
        90,
        "18:47:00",
        signed("Migration lead", "migration_lead"),
    );
    record(
        &mut app,
        91,
        "18:47:10",
        signed("migration LEAD", "finance"),
    );
    record(
        &mut app,
        92,
        "18:47:20",
        Event::SignOffRefused {
            gate: GATE.into(),
            name: "Finance controller".into(),
            role: "finance".into(),
            decision: Decision::Go,
            comment: "ok".into(),
            evidence_sha256: "ab".repeat(32),
            reason: "stale: signed evidence abab…".into(),
        },
    );
    let view = app.open_gate().unwrap().view().unwrap();
    assert_eq!(view.counts(), "migration_lead 1 of 1, finance 0 of 1");
    let why: Vec<&str> = view.not_counted.iter().map(|n| n.reason.as_str()).collect();
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why[0].contains("one person fills one role"), "{why:?}");
    assert!(why[1].starts_with("stale"), "{why:?}");
    assert_eq!(
        app.notice.as_deref(),
        Some("✗ sign-off by Finance controller refused: stale: signed evidence abab…")
    );
}

#[test]
fn a_gate_with_a_keyed_approver_takes_a_signature_file_and_sends_it() {
    let mut app = App::new();
    for mut r in records_to_gate() {
        if let Event::GateOpened {
            rule: Some(rule), ..
        } = &mut r.event
        {
            rule.roles[1]
                .approvers
                .push(crate::journal::events::ApproverRule {
                    name: "Finance controller".into(),
                    ssh_key: Some("ssh-ed25519 AAAA finance".into()),
                });
        }
        update(&mut app, Action::Record(r));
    }
    assert!(app.dialog.keyed);
    assert_eq!(
        app.dialog.fields(),
        [
            Field::Name,
            Field::Role,
            Field::Comment,
            Field::Decision,
            Field::Signature,
            Field::Database
        ]
    );
    go_filled(&mut app);
    // From the comment, past the decision (chosen), to the signature.
    update(&mut app, Action::DialogNextField);
    update(&mut app, Action::DialogNextField);
    assert_eq!(app.dialog.focus(), Field::Signature);
    type_text(&mut app, "/tmp/evidence.sha256.sig");
    update(&mut app, Action::DialogNextField);
    type_text(&mut app, "erp");
    let fx = update(&mut app, Action::SubmitSignOff);
    let [Effect::Send(Command::SignOff(s))] = fx.as_slice() else {
        panic!("expected one sign-off: {fx:?}");
    };
    assert_eq!(
        s.signature_file.as_deref(),
        Some(std::path::Path::new("/tmp/evidence.sha256.sig"))
    );
    // Cleared for the next approver, the Signature field still there and empty.
    assert!(app.dialog.keyed);
    assert_eq!(app.dialog.signature.value(), "");
    // An unkeyed gate (the fixture's own) has no Signature field and sends no file.
    let app = app_at_gate();
    assert!(!app.dialog.keyed && !app.dialog.fields().contains(&Field::Signature));
}
