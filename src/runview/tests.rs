use super::*;
use crate::app::fixtures::{GATE, rec, records_to_gate, run_started};
use crate::journal::events::{EntityCounts, RefusedRow};

fn states(v: &RunView) -> Vec<(&str, StepState)> {
    v.steps.iter().map(|s| (s.id.as_str(), s.state)).collect()
}

fn batch(phase: Phase, entity: &str, rows: u64, last_line: u64, refused: &[u64]) -> Event {
    Event::BatchCommitted {
        phase,
        entity: entity.into(),
        batch: 0,
        rows,
        last_line,
        refused: refused
            .iter()
            .map(|l| RefusedRow {
                line: *l,
                message: format!("refused {l}"),
            })
            .collect(),
    }
}

/// Apply `events` after a run start; returns the view.
fn view_of(events: Vec<Event>) -> RunView {
    let mut all = vec![rec(1, "18:00:00", run_started())];
    for (i, e) in events.into_iter().enumerate() {
        all.push(rec(i as i64 + 2, "18:00:01", e));
    }
    RunView::of(&all)
}

#[test]
fn step_states_follow_the_records() {
    let start = |s: &str| Event::StepStarted { step: s.into() };
    let fin = |s: &str, status| Event::StepFinished {
        step: s.into(),
        status,
        message: "m".into(),
        duration_ms: 1500,
    };
    // (records after the start, the expected state of `backup` and of `sign_off`)
    let cases: Vec<(Vec<Event>, StepState, StepState)> = vec![
        (vec![], StepState::Pending, StepState::Pending),
        (
            vec![start("backup")],
            StepState::Running,
            StepState::Pending,
        ),
        (
            vec![start("backup"), fin("backup", StepStatus::Warned)],
            StepState::Warned,
            StepState::Pending,
        ),
        (
            vec![start("backup"), fin("backup", StepStatus::Failed)],
            StepState::Failed,
            StepState::Pending,
        ),
        (
            vec![Event::StepSkipped {
                step: "backup".into(),
                name: "migration-lead".into(),
                reason: "taken by ops".into(),
            }],
            StepState::Skipped,
            StepState::Pending,
        ),
    ];
    for (events, backup, _) in cases {
        let v = view_of(events.clone());
        assert_eq!(v.step("backup").unwrap().state, backup, "{events:?}");
    }
    let v = view_of(vec![start("backup"), fin("backup", StepStatus::Passed)]);
    let b = v.step("backup").unwrap();
    assert_eq!((b.duration_ms, b.message.as_str()), (Some(1500), "m"));
    assert_eq!(v.step_results.len(), 1);
    let v = view_of(vec![Event::StepSkipped {
        step: "backup".into(),
        name: "migration-lead".into(),
        reason: "taken by ops".into(),
    }]);
    assert_eq!(
        v.step("backup").unwrap().message,
        "skipped by migration-lead: taken by ops"
    );
}

#[test]
fn the_gate_waits_collects_sign_offs_and_is_decided() {
    let v = RunView::of(&records_to_gate());
    let g = v
        .open_gate()
        .expect("the gate is open at the end of records_to_gate");
    assert_eq!(g.gate, GATE);
    assert!(g.signoffs.is_empty());
    assert!(
        states(&v)
            .iter()
            .any(|(_, s)| *s == StepState::WaitingSignOff),
        "{:?}",
        states(&v)
    );
    // A sign-off for another gate is journaled but not counted on this one.
    let mut recs = records_to_gate();
    let n = recs.len() as i64;
    let sign = |gate: &str, name: &str| Event::SignOffRecorded {
        gate: gate.into(),
        name: name.into(),
        role: "finance-controller".into(),
        decision: Decision::Go,
        comment: String::new(),
        evidence_sha256: "e".into(),
        overrides: false,
        signature: None,
    };
    recs.push(rec(n + 1, "18:50:00", sign("other_gate", "a")));
    recs.push(rec(n + 2, "18:50:01", sign(GATE, "b")));
    let v = RunView::of(&recs);
    let g = v.gate().unwrap();
    assert_eq!(
        g.signoffs.iter().map(|s| &s.name).collect::<Vec<_>>(),
        ["b"]
    );
    assert_eq!(v.sign_offs.len(), 2);
    assert_eq!(v.sign_offs[1].at, "2026-11-21T18:50:01Z");
    recs.push(rec(
        n + 3,
        "18:51:00",
        Event::GateDecided {
            gate: GATE.into(),
            decision: Decision::Go,
        },
    ));
    let v = RunView::of(&recs);
    assert_eq!(v.gate_decision(), Some(Decision::Go));
    assert!(v.open_gate().is_none());
    assert!(
        !states(&v)
            .iter()
            .any(|(_, s)| *s == StepState::WaitingSignOff)
    );
}

#[test]
fn entities_count_batches_of_their_phase_and_start_over_per_pipeline_step() {
    let started = |phase, e: &str| Event::EntityStarted {
        phase,
        entity: e.into(),
        table: "t".into(),
        expected_rows: 10,
    };
    let v = view_of(vec![
        Event::StepStarted {
            step: "dry_run".into(),
        },
        started(Phase::DryRun, "invoices"),
        batch(Phase::DryRun, "invoices", 4, 5, &[]),
        // A late batch of another phase does not count here.
        batch(Phase::Load, "invoices", 100, 101, &[]),
        batch(Phase::DryRun, "invoices", 3, 8, &[7]),
    ]);
    assert_eq!(v.pipeline_phase, Some(Phase::DryRun));
    let e = &v.entities["invoices"];
    assert_eq!(e.loaded, 7);
    assert_eq!(
        (e.read, e.valid, e.rejected),
        (8, 7, 1),
        "a follower's floor from the batches alone"
    );
    let c = v.checkpoint(Phase::DryRun, "invoices").unwrap();
    assert_eq!((c.batches, c.loaded, c.last_line), (2, 7, 8));
    assert_eq!(c.refused.get(&7).map(String::as_str), Some("refused 7"));
    assert_eq!(v.checkpoint(Phase::Load, "invoices").unwrap().loaded, 100);
    assert!(v.checkpoint(Phase::DryRun, "lines").is_none());
    assert!(!v.production_touched, "no load entity has started");

    let v = view_of(vec![
        Event::StepStarted {
            step: "dry_run".into(),
        },
        started(Phase::DryRun, "invoices"),
        Event::StepStarted {
            step: "load".into(),
        },
        started(Phase::Load, "lines"),
        Event::EntityFinished {
            phase: Phase::Load,
            entity: "lines".into(),
            counts: EntityCounts {
                in_file: 12,
                in_scope: 11,
                valid: 9,
                rejected: 2,
                loaded: 9,
                lines: None,
            },
            reject_file: "rejects/lines.csv".into(),
            sums: Default::default(),
            duration_ms: 2500,
        },
    ]);
    assert_eq!(
        v.entities.keys().collect::<Vec<_>>(),
        ["lines"],
        "the load's entities only"
    );
    let l = &v.entities["lines"];
    assert!(l.done);
    assert_eq!((l.read, l.valid, l.rejected, l.loaded), (11, 9, 2, 9));
    assert_eq!(l.reject_file.as_deref(), Some("rejects/lines.csv"));
    assert_eq!(v.rejects_summary().get("lines"), Some(&2));
    assert!(v.production_touched);
}

#[test]
fn production_is_touched_until_a_successful_rollback() {
    let load = Event::EntityStarted {
        phase: Phase::Load,
        entity: "x".into(),
        table: "t".into(),
        expected_rows: 1,
    };
    let rb = |ok| Event::RollbackFinished {
        ok,
        message: String::new(),
    };
    for (events, touched) in [
        (vec![], false),
        (vec![load.clone()], true),
        (vec![load.clone(), rb(false)], true),
        (vec![load.clone(), rb(true)], false),
        (vec![load.clone(), rb(true), load.clone()], true),
    ] {
        assert_eq!(
            view_of(events.clone()).production_touched,
            touched,
            "{events:?}"
        );
    }
}

#[test]
fn resume_facts_are_the_latest_journaled() {
    let v = view_of(vec![
        Event::FreezePlanned {
            env: "legacy".into(),
            method: "revoke".into(),
            revoked: [("app".to_string(), "INSERT".to_string())].into(),
        },
        Event::CommandRan {
            step: "notify".into(),
            command: "true".into(),
            exit_code: Some(0),
            timed_out: false,
            output: String::new(),
        },
        Event::CommandRan {
            step: "fails".into(),
            command: "false".into(),
            exit_code: Some(1),
            timed_out: false,
            output: String::new(),
        },
    ]);
    let f = v.freeze_of("legacy").unwrap();
    assert!(!f.applied);
    assert_eq!(f.revoked["app"], "INSERT");
    assert!(v.freeze_of("other").is_none());
    assert!(v.freeze_applied.is_none());
    assert!(v.commands_ok.contains("notify"));
    assert!(!v.commands_ok.contains("fails"));
}

#[test]
fn skips_and_window_warnings_are_kept_in_journal_order_with_their_times() {
    let warn = |p: &str| Event::WindowWarning {
        projected_finish: p.into(),
        window_end: "2026-11-30T06:00:00Z".into(),
        point_of_no_return: "2026-11-30T02:00:00Z".into(),
    };
    let v = view_of(vec![
        warn("2026-11-30T05:00:00Z"),
        Event::StepSkipped {
            step: "validate".into(),
            name: "migration-lead".into(),
            reason: "checked by hand".into(),
        },
        warn("2026-11-30T07:00:00Z"),
        Event::WindowExceeded {
            window_end: "2026-11-30T06:00:00Z".into(),
        },
    ]);
    let projected: Vec<&str> = v
        .window_warnings
        .iter()
        .map(|w| w.projected_finish.as_str())
        .collect();
    assert_eq!(projected, ["2026-11-30T05:00:00Z", "2026-11-30T07:00:00Z"]);
    assert_eq!(
        v.skips,
        [SkipEntry {
            step: "validate".into(),
            name: "migration-lead".into(),
            reason: "checked by hand".into(),
            at: v.window_warnings[0].at.clone(),
        }]
    );
    assert!(v.window_exceeded);
    assert!(v.window_exceeded_at.is_some());
}

/// A run through its gate and into the load, then validated again (the evidence changes)
/// with sign-offs before and after, every record with its own hash.
fn run_validated_twice() -> Vec<Record> {
    let mut all = crate::app::fixtures::records_mid_load();
    let sign = |name: &str, decision| Event::SignOffRecorded {
        gate: GATE.into(),
        name: name.into(),
        role: "finance".into(),
        decision,
        comment: "c".into(),
        evidence_sha256: "ef".repeat(32),
        overrides: false,
        signature: None,
    };
    let more = vec![
        Event::StepFinished {
            step: "load".into(),
            status: StepStatus::Passed,
            message: "m".into(),
            duration_ms: 1,
        },
        Event::StepStarted {
            step: "validate".into(),
        },
        Event::CheckRecorded {
            step: "verify".into(),
            result: all
                .iter()
                .find_map(|r| match &r.event {
                    Event::CheckRecorded { result, .. } => Some(result.clone()),
                    _ => None,
                })
                .expect("the fixture holds checks"),
        },
        Event::CheckRecorded {
            step: "validate".into(),
            result: all
                .iter()
                .find_map(|r| match &r.event {
                    Event::CheckRecorded { result, .. } => Some(result.clone()),
                    _ => None,
                })
                .expect("the fixture holds checks"),
        },
        sign("finance-controller", Decision::Go),
        Event::StepFinished {
            step: "validate".into(),
            status: StepStatus::Passed,
            message: "m".into(),
            duration_ms: 1,
        },
        Event::SignOffRefused {
            gate: GATE.into(),
            name: "finance-controller".into(),
            role: "finance".into(),
            decision: Decision::Go,
            comment: "again".into(),
            evidence_sha256: "ef".repeat(32),
            reason: "already signed".into(),
        },
        sign("application-owner", Decision::NoGo),
        Event::GateDecided {
            gate: GATE.into(),
            decision: Decision::NoGo,
        },
    ];
    let mut seq = all.last().map_or(0, |r| r.seq);
    for e in more {
        seq += 1;
        all.push(rec(seq, "19:30:00", e));
    }
    for r in &mut all {
        r.hash = format!("h{}", r.seq);
    }
    all
}

#[test]
fn resume_and_gate_reads_agree_with_the_journal_at_every_record() {
    let records = run_validated_twice();
    let is_validate = |s: &str| s == "validate";
    // The fixture: the first validate starts at record 18 and journals checks 19 to 24;
    // sign-offs 28 and 29 pass the gate; the second validate starts at 40 with one check
    // of its own (42; 41 is a verify's); sign-off records 43, 45 and 46 follow it.
    assert_eq!(
        records.len(),
        47,
        "the fixture changed: recount the records below"
    );
    // (records read, the validate's start, its checks, the sign-off records counted)
    type Expected = (usize, Option<i64>, Vec<i64>, Vec<i64>);
    let expected: [Expected; 6] = [
        (17, None, vec![], vec![]),
        (18, Some(18), vec![], vec![]),
        (24, Some(18), (19..=24).collect(), vec![]),
        (39, Some(18), (19..=24).collect(), vec![28, 29]),
        (41, Some(40), vec![], vec![]),
        (47, Some(40), vec![42], vec![43, 45, 46]),
    ];
    for (n, validate_seq, checks, signs) in expected {
        let v = RunView::of(&records[..n]);
        let got = v.evidence();
        assert_eq!(
            got.run_id,
            crate::app::fixtures::RUN_ID,
            "after {n} records"
        );
        assert_eq!(
            got.validate_step.as_deref(),
            validate_seq.map(|_| "validate"),
            "after {n} records"
        );
        assert_eq!(got.validate_seq, validate_seq, "after {n} records");
        let seqs: Vec<i64> = got.checks.iter().map(|c| c.seq).collect();
        assert_eq!(seqs, checks, "after {n} records");
        let hashes: Vec<String> = got.checks.iter().map(|c| c.hash.clone()).collect();
        let want: Vec<String> = checks.iter().map(|s| format!("h{s}")).collect();
        assert_eq!(hashes, want, "after {n} records");
        let counted: Vec<i64> = v
            .sign_records_since_validate
            .iter()
            .map(|r| r.seq)
            .collect();
        assert_eq!(counted, signs, "after {n} records");
    }
    // The second validate's evidence is other evidence: a new hash.
    assert_ne!(
        RunView::of(&records[..39]).evidence().sha256(),
        RunView::of(&records).evidence().sha256()
    );
    for n in 0..=records.len() {
        let prefix = &records[..n];
        let v = RunView::of(prefix);
        // The load's guard: a GO after the last validate finished.
        let go = prefix
            .iter()
            .rposition(
                |r| matches!(&r.event, Event::StepFinished { step, .. } if is_validate(step)),
            )
            .is_some_and(|i| {
                prefix[i..].iter().any(|r| {
                    matches!(
                        r.event,
                        Event::GateDecided {
                            decision: Decision::Go,
                            ..
                        }
                    )
                })
            });
        assert_eq!(v.go_after_validate == Some(true), go, "after {n} records");
        let load = prefix
            .iter()
            .any(|r| matches!(&r.event, Event::StepStarted { step } if step == "load"));
        assert_eq!(v.load_started, load, "after {n} records");
        let backup = prefix
            .iter()
            .any(|r| matches!(&r.event, Event::StepStarted { step } if step == "backup"));
        assert_eq!(v.backup_started, backup, "after {n} records");
    }
    // The run passes through each of those states.
    let views: Vec<RunView> = (0..=records.len())
        .map(|n| RunView::of(&records[..n]))
        .collect();
    assert!(views.iter().any(|v| v.go_after_validate == Some(true)));
    assert!(views.iter().any(|v| v.go_after_validate == Some(false)));
    assert!(
        views
            .iter()
            .any(|v| v.sign_records_since_validate.len() >= 2)
    );
    assert!(views.iter().any(|v| v.validate_checks.len() >= 2));
}

#[test]
fn a_held_freeze_lasts_until_the_legacy_is_reopened_and_closings_are_per_environment() {
    let planned = |env: &str, method: &str| Event::FreezePlanned {
        env: env.into(),
        method: method.into(),
        revoked: BTreeMap::from([("app".to_string(), "INSERT".to_string())]),
    };
    let held = |env: &str| Event::FreezeHeld {
        env: env.into(),
        reason: "fix data".into(),
    };
    let reopened = |env: &str, production| Event::EnvReopened {
        env: env.into(),
        production,
        message: "m".into(),
    };
    // (records after the start, the method of the freeze of `legacy` still held)
    let cases: Vec<(Vec<Event>, Option<&str>)> = vec![
        (vec![], None),
        (vec![planned("legacy", "a")], None),
        (vec![planned("legacy", "a"), held("legacy")], Some("a")),
        (
            vec![
                planned("legacy", "a"),
                planned("legacy", "b"),
                held("legacy"),
            ],
            Some("b"),
        ),
        (
            vec![
                planned("legacy", "a"),
                held("legacy"),
                planned("other", "c"),
            ],
            Some("a"),
        ),
        (
            vec![
                planned("legacy", "a"),
                held("legacy"),
                reopened("legacy", false),
            ],
            None,
        ),
        // Production reopened: the legacy stays held.
        (
            vec![
                planned("legacy", "a"),
                held("legacy"),
                reopened("legacy", true),
            ],
            Some("a"),
        ),
        (vec![held("legacy")], None),
    ];
    for (events, want) in cases {
        let v = view_of(events.clone());
        assert_eq!(
            v.held_freeze("legacy").map(|f| f.method.as_str()),
            want,
            "{events:?}"
        );
    }
    let closed = |env: &str, acl: &str| Event::ProductionClosed {
        env: env.into(),
        acl: acl.into(),
        held: BTreeMap::new(),
    };
    let v = view_of(vec![
        closed("production", "a"),
        closed("odoo", "b"),
        closed("production", "c"),
    ]);
    assert_eq!(v.closed("production").map(|c| c.acl.as_str()), Some("c"));
    assert_eq!(v.closed("odoo").map(|c| c.acl.as_str()), Some("b"));
    assert_eq!(v.closed("staging"), None);
    assert_eq!(v.closures.last().map(|c| c.acl.as_str()), Some("c"));
}
mod evidence {
    use crate::journal::events::{CheckResult, CheckStatus, Event, Record, StepInfo};
    use crate::runbook::format::StepKind;
    use crate::runview::RunView;

    fn of(records: &[Record]) -> crate::signoff::evidence::Evidence {
        RunView::of(records).evidence()
    }

    fn rec(seq: i64, event: Event) -> Record {
        Record {
            seq,
            run_id: "r1".into(),
            ts: String::new(),
            event,
            prev_hash: String::new(),
            hash: format!("h{seq}"),
        }
    }

    fn check(step: &str, source: &str) -> Event {
        Event::CheckRecorded {
            step: step.into(),
            result: CheckResult {
                name: "count".into(),
                entity: "customers".into(),
                source: source.into(),
                target: source.into(),
                status: CheckStatus::Pass,
                detail: String::new(),
                currency: None,
            },
        }
    }

    fn run() -> Vec<Record> {
        let step = |id: &str, kind| StepInfo {
            id: id.into(),
            kind,
            title: String::new(),
            planned_secs: None,
        };
        vec![
            rec(
                1,
                Event::RunStarted {
                    run_id: "r1".into(),
                    mode: crate::journal::events::RunMode::Run,
                    runbook_path: String::new(),
                    runbook_name: String::new(),
                    runbook_sha256: String::new(),
                    steps: vec![
                        step("validate", StepKind::Validate),
                        step("verify", StepKind::Verify),
                    ],
                    vars: Default::default(),
                    tool_version: String::new(),
                    artifacts_dir: String::new(),
                    environments: Vec::new(),
                    window_end: None,
                },
            ),
            rec(
                2,
                Event::StepStarted {
                    step: "validate".into(),
                },
            ),
            rec(3, check("validate", "10")),
        ]
    }

    #[test]
    fn the_last_validates_checks_are_the_evidence_and_a_new_validate_changes_the_hash() {
        let mut r = run();
        let first = of(&r);
        assert_eq!(first.checks.len(), 1);
        assert_eq!(first.validate_seq, Some(2));
        // A verify's checks are not the gate's evidence.
        r.push(rec(4, check("verify", "10")));
        assert_eq!(of(&r).sha256(), first.sha256());
        // The same figures validated again are new evidence: earlier sign-offs are stale.
        r.push(rec(
            5,
            Event::StepStarted {
                step: "validate".into(),
            },
        ));
        r.push(rec(6, check("validate", "10")));
        let second = of(&r);
        assert_eq!(second.validate_seq, Some(5));
        assert_ne!(second.sha256(), first.sha256());
        assert!(second.canonical_json().contains("\"seq\":6"));
    }
}
