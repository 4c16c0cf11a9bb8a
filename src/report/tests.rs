use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::model::{Dossier, Sources, VerificationEntry};
use super::{Format, redact_location};
use crate::journal::events::{
    CheckResult, CheckStatus, Decision, EntityCounts, EnvInfo, Event, GateEvidence, Outcome, Phase,
    Record, RunMode, StepInfo, StepStatus,
};
use crate::runbook::format::StepKind;
use crate::runview::RunView;

const SECRET: &str = "hunter2-not-for-reports";

fn rec(seq: i64, secs: u32, event: Event) -> Record {
    Record {
        seq,
        run_id: "r1".into(),
        ts: format!("2026-11-28T22:00:{secs:02}Z"),
        event,
        prev_hash: format!("h{}", seq - 1),
        hash: format!("h{seq}"),
    }
}

fn step(id: &str, kind: StepKind, planned: u64) -> StepInfo {
    StepInfo {
        id: id.into(),
        kind,
        title: id.into(),
        planned_secs: Some(planned),
    }
}

fn finished(entity: &str, sums: &[(&str, &str)]) -> Event {
    Event::EntityFinished {
        phase: Phase::DryRun,
        entity: entity.into(),
        counts: EntityCounts {
            in_file: 10,
            in_scope: 9,
            valid: 7,
            rejected: 2,
            loaded: 7,
            lines: None,
        },
        reject_file: String::new(),
        sums: sums
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        duration_ms: 1500,
    }
}

fn gate(evidence: &str) -> Event {
    Event::GateOpened {
        gate: "go_live".into(),
        title: "Go live".into(),
        quorum: 2,
        roles: vec!["finance".into()],
        approvers: vec![],
        recommendation: Decision::NoGo,
        reasons: vec!["2 checks failed".into()],
        evidence_sha256: evidence.into(),
        evidence: GateEvidence::default(),
        rule: None,
    }
}

fn sign(name: &str, evidence: &str, overrides: bool, comment: &str) -> Event {
    Event::SignOffRecorded {
        gate: "go_live".into(),
        name: name.into(),
        role: "finance".into(),
        decision: Decision::Go,
        comment: comment.into(),
        evidence_sha256: evidence.into(),
        overrides,
        signature: None,
    }
}

/// A run with a failed money check, rejects in two currencies, a skip, an override on old
/// and new evidence, and a window warning.
fn records() -> Vec<Record> {
    let events = vec![
        Event::RunStarted {
            run_id: "r1".into(),
            mode: RunMode::Run,
            runbook_path: "/srv/tms.toml".into(),
            runbook_name: "TMS".into(),
            runbook_sha256: "rb".into(),
            steps: vec![
                step("dry_run", StepKind::DryRun, 60),
                step("validate", StepKind::Validate, 30),
                step("verify", StepKind::Verify, 30),
                step("sign_off", StepKind::SignOff, 600),
            ],
            vars: BTreeMap::from([("api_token".to_string(), SECRET.to_string())]),
            tool_version: "9.9.9".into(),
            artifacts_dir: "/srv/runs".into(),
            environments: vec![EnvInfo {
                name: "production".into(),
                display: "Production".into(),
                production: true,
                database: format!("erp?password={SECRET}"),
            }],
            window_end: Some("2026-11-30T06:00:00Z".into()),
        },
        Event::StepStarted {
            step: "dry_run".into(),
        },
        finished(
            "open_invoices",
            &[
                ("rejected.amount_total.EUR", "10.05"),
                ("rejected.amount_total.USD", "3.10"),
                ("valid.amount_total.EUR", "1000.00"),
            ],
        ),
        finished("credit_notes", &[("rejected.amount_total.EUR", "0.10")]),
        Event::StepFinished {
            step: "dry_run".into(),
            status: StepStatus::Passed,
            message: String::new(),
            duration_ms: 75_000,
        },
        Event::StepStarted {
            step: "validate".into(),
        },
        Event::CheckRecorded {
            step: "validate".into(),
            result: CheckResult {
                name: "sum <open_invoices> & co".into(),
                entity: "open_invoices".into(),
                source: "1000.00".into(),
                target: "999.99".into(),
                status: CheckStatus::Fail,
                detail: "0.01 missing".into(),
                currency: Some("EUR".into()),
            },
        },
        Event::StepFinished {
            step: "validate".into(),
            status: StepStatus::Warned,
            message: String::new(),
            duration_ms: 2_000,
        },
        Event::StepSkipped {
            step: "verify".into(),
            name: "migration-lead".into(),
            reason: "verified by the ERP team".into(),
        },
        Event::StepStarted {
            step: "sign_off".into(),
        },
        gate("e1"),
        sign(
            "finance-controller",
            "e1",
            true,
            "the cent is a known rounding",
        ),
        gate("e2"),
        sign("application-owner", "e2", false, "ok"),
        Event::WindowWarning {
            projected_finish: "2026-11-30T07:00:00Z".into(),
            window_end: "2026-11-30T06:00:00Z".into(),
            point_of_no_return: "2026-11-30T02:00:00Z".into(),
        },
        Event::RunFinished {
            outcome: Outcome::Completed,
            exit_code: 0,
            message: "done".into(),
        },
    ];
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| rec(i as i64 + 1, i as u32, e))
        .collect()
}

fn dossier() -> Dossier {
    Dossier::build(
        &RunView::of(&records()),
        Sources {
            runbook_sha256_now: Some("rb".into()),
            journal_location: redact_location(&format!(
                "postgres://migrator:{SECRET}@db.internal/journal"
            )),
            verification: VerificationEntry {
                records: 16,
                intact: true,
                first_bad: None,
                head: Some("16:h16".into()),
                run_head_reachable: true,
            },
            reject_files: BTreeMap::new(),
        },
    )
}

fn all_formats(d: &Dossier) -> [String; 3] {
    [Format::Md, Format::Html, Format::Json].map(|f| f.render(d))
}

#[test]
fn secrets_in_vars_environments_or_the_journal_url_never_reach_a_dossier() {
    let d = dossier();
    for text in all_formats(&d) {
        assert!(!text.contains(SECRET), "{text}");
        assert!(text.contains("postgres://db.internal/journal"));
    }
}

#[test]
fn money_left_behind_is_exact_per_field_and_currency() {
    let d = dossier();
    let totals: Vec<(String, String, Decimal)> = d
        .money_left_behind
        .iter()
        .map(|m| (m.field.clone(), m.currency.clone(), m.amount))
        .collect();
    assert_eq!(
        totals,
        vec![
            ("amount_total".into(), "EUR".into(), Decimal::new(1015, 2)),
            ("amount_total".into(), "USD".into(), Decimal::new(310, 2)),
        ]
    );
    // Valid sums are not money left behind.
    assert!(d.rejects.iter().all(|e| e.left_behind.len() <= 2));
    for text in all_formats(&d) {
        assert!(text.contains("10.05"), "{text}");
        assert!(text.contains("10.15"), "{text}");
    }
}

#[test]
fn overrides_skips_stale_sign_offs_and_warnings_are_in_every_format() {
    let d = dossier();
    assert_eq!(d.overrides.len(), 1);
    assert_eq!(d.overrides[0].name, "finance-controller");
    assert_eq!(d.skips.len(), 1);
    let current: Vec<bool> = d.sign_offs.iter().map(|s| s.evidence_current).collect();
    assert_eq!(
        current,
        [false, true],
        "signed on e1, the gate last showed e2"
    );
    assert_eq!(d.window.warnings.len(), 1);
    let verify = d.timeline.steps.iter().find(|s| s.id == "verify").unwrap();
    assert_eq!(verify.status.word(), "skipped");
    let dry = &d.timeline.steps[0];
    assert_eq!((dry.actual_ms, dry.delta_secs), (Some(75_000), Some(15)));
    for text in all_formats(&d) {
        for want in [
            "the cent is a known rounding",
            "verified by the ERP team",
            "2026-11-30T02:00:00Z",
            "2026-11-30T07:00:00Z",
        ] {
            assert!(text.contains(want), "{want} missing in {text}");
        }
    }
    let [md, html, _] = all_formats(&d);
    assert!(md.contains("STALE") && html.contains("STALE"));
}

#[test]
fn html_escapes_what_the_journal_says() {
    let html = Format::Html.render(&dossier());
    assert!(html.contains("sum &lt;open_invoices&gt; &amp; co"));
    assert!(!html.contains("<open_invoices>"));
    let md = Format::Md.render(&dossier());
    assert!(md.contains("sum <open_invoices> & co"));
}

#[test]
fn journal_locations_lose_their_credentials() {
    for (given, shown) in [
        ("/srv/.cutover/journal.db", "/srv/.cutover/journal.db"),
        ("sqlite:///srv/j.db", "sqlite:///srv/j.db"),
        ("postgres://u:p@h:5432/db", "postgres://h:5432/db"),
        ("postgres://u@h/db", "postgres://h/db"),
        (
            "postgres://h/db?application_name=a@b",
            "postgres://h/db?application_name=a@b",
        ),
        ("postgres://u:p@ss@h/db", "postgres://h/db"),
    ] {
        assert_eq!(redact_location(given), shown, "{given}");
    }
}
