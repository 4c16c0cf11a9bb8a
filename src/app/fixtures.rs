//! A fixed, reproducible TMS cutover (fixed timestamps) for tests and snapshots.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::journal::events::*;
use crate::runbook::format::StepKind;

use super::rejects::{
    RejectColumns, RejectEffect, RejectFile, RejectQuery, RejectRecord, split_reasons,
};
use super::{Action, App, Effect, RejectAction, update};

pub const RUN_ID: &str = "run-20261121-01";
pub const GATE: &str = "go_live";

pub fn at(hms: &str) -> String {
    format!("2026-11-21T{hms}Z")
}

pub fn now(hms: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&at(hms))
        .unwrap()
        .with_timezone(&Utc)
}

pub fn rec(seq: i64, hms: &str, event: Event) -> Record {
    Record {
        seq,
        run_id: RUN_ID.into(),
        ts: at(hms),
        event,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

fn step(id: &str, kind: StepKind, title: &str, planned_secs: u64) -> StepInfo {
    StepInfo {
        id: id.into(),
        kind,
        title: title.into(),
        planned_secs: Some(planned_secs),
    }
}

pub fn run_started() -> Event {
    Event::RunStarted {
        run_id: RUN_ID.into(),
        mode: RunMode::Run,
        runbook_path: "runbooks/tms.toml".into(),
        runbook_name: "TMS → Odoo cutover".into(),
        runbook_sha256: "ab".repeat(32),
        steps: vec![
            step("backup", StepKind::Backup, "Back up production", 600),
            step("freeze", StepKind::Freeze, "Freeze legacy TMS", 120),
            step("extract", StepKind::Extract, "Extract legacy data", 900),
            step("dry_run", StepKind::DryRun, "Dry run into rehearsal", 1800),
            step("validate", StepKind::Validate, "Reconcile dry run", 300),
            step("go_live", StepKind::SignOff, "Go / no-go", 900),
            step("load", StepKind::Load, "Load production", 2700),
            step("verify", StepKind::Verify, "Verify production", 600),
            step("unfreeze", StepKind::Unfreeze, "Reopen for users", 120),
        ],
        vars: BTreeMap::new(),
        tool_version: "0.1.0".into(),
        artifacts_dir: ".cutover/run-20261121-01".into(),
        environments: vec![
            EnvInfo {
                name: "legacy".into(),
                display: "csv extracts/".into(),
                production: false,
                database: String::new(),
            },
            EnvInfo {
                name: "rehearsal".into(),
                display: "sqlite .cutover/rehearsal.db".into(),
                production: false,
                database: "rehearsal.db".into(),
            },
            EnvInfo {
                name: "production".into(),
                display: "postgres db.prod:5432/erp".into(),
                production: true,
                database: "erp".into(),
            },
        ],
        window_end: Some(at("23:00:00")),
    }
}

pub const ENTITIES: [(&str, &str, u64); 4] = [
    ("companies", "res_partner", 1_200),
    ("people", "res_partner", 4_800),
    ("invoices", "account_move", 25_000),
    ("invoice_lines", "account_move_line", 90_000),
];

fn counts(n: u64, rejected: u64, loaded: bool) -> EntityCounts {
    EntityCounts {
        in_file: n,
        in_scope: n,
        valid: n - rejected,
        rejected,
        loaded: if loaded { n - rejected } else { 0 },
        lines: None,
    }
}

fn entity_finished(phase: Phase, entity: &str, n: u64, rejected: u64) -> Event {
    Event::EntityFinished {
        phase,
        entity: entity.into(),
        counts: counts(n, rejected, true),
        reject_file: if rejected > 0 {
            format!(
                ".cutover/run-20261121-01/{}/{entity}.rejects.csv",
                phase_dir(phase)
            )
        } else {
            String::new()
        },
        sums: BTreeMap::new(),
        duration_ms: n * 4,
    }
}

fn phase_dir(p: Phase) -> &'static str {
    match p {
        Phase::DryRun => "dry_run",
        Phase::Load => "load",
    }
}

fn rejects_for(entity: &str) -> u64 {
    match entity {
        "people" => 3,
        "invoices" => 12,
        _ => 0,
    }
}

/// Values as the engine records them (plain digits); the console formats them.
fn check(
    name: &str,
    entity: &str,
    source: &str,
    target: &str,
    status: CheckStatus,
    detail: &str,
) -> Event {
    money_check(name, entity, source, target, status, detail, None)
}

fn money_check(
    name: &str,
    entity: &str,
    source: &str,
    target: &str,
    status: CheckStatus,
    detail: &str,
    currency: Option<&str>,
) -> Event {
    Event::CheckRecorded {
        step: "validate".into(),
        result: CheckResult {
            name: name.into(),
            entity: entity.into(),
            source: source.into(),
            target: target.into(),
            status,
            detail: detail.into(),
            currency: currency.map(String::from),
        },
    }
}

/// Records up to the open go/no-go gate (dry run done, checks recorded).
pub fn records_to_gate() -> Vec<Record> {
    let mut v = Vec::new();
    let mut seq = 0;
    let mut push = |hms: &str, e: Event| {
        seq += 1;
        v.push(rec(seq, hms, e));
    };
    push("18:00:00", run_started());
    let finished = |step: &str, ms: u64, msg: &str| Event::StepFinished {
        step: step.into(),
        status: StepStatus::Passed,
        message: msg.into(),
        duration_ms: ms,
    };
    push(
        "18:00:01",
        Event::StepStarted {
            step: "backup".into(),
        },
    );
    push("18:07:13", finished("backup", 432_000, "pg_dump 1.2 GB"));
    push(
        "18:07:14",
        Event::StepStarted {
            step: "freeze".into(),
        },
    );
    push("18:08:02", finished("freeze", 48_000, "logins disabled"));
    push(
        "18:08:03",
        Event::StepStarted {
            step: "extract".into(),
        },
    );
    push("18:19:40", finished("extract", 697_000, "4 files"));
    push(
        "18:19:41",
        Event::StepStarted {
            step: "dry_run".into(),
        },
    );
    for (entity, table, n) in ENTITIES {
        push(
            "18:20:00",
            Event::EntityStarted {
                phase: Phase::DryRun,
                entity: entity.into(),
                table: table.into(),
                expected_rows: n,
            },
        );
        push(
            "18:30:00",
            entity_finished(Phase::DryRun, entity, n, rejects_for(entity)),
        );
    }
    push(
        "18:41:10",
        Event::StepFinished {
            step: "dry_run".into(),
            status: StepStatus::Warned,
            message: "15 rows rejected".into(),
            duration_ms: 1_289_000,
        },
    );
    push(
        "18:41:11",
        Event::StepStarted {
            step: "validate".into(),
        },
    );
    push(
        "18:43:00",
        check(
            "row count",
            "companies",
            "1200",
            "1200",
            CheckStatus::Pass,
            "",
        ),
    );
    push(
        "18:43:01",
        check(
            "row count",
            "people",
            "4797",
            "4797",
            CheckStatus::Pass,
            "3 rejected",
        ),
    );
    push(
        "18:43:02",
        check(
            "row count",
            "invoices",
            "24988",
            "24988",
            CheckStatus::Pass,
            "12 rejected",
        ),
    );
    push(
        "18:43:03",
        money_check(
            "SUM(amount_total) EUR",
            "invoices",
            "1234567.89",
            "1234567.89",
            CheckStatus::Pass,
            "rejected in-scope rows hold 4,210.00 EUR (stays behind)",
            Some("EUR"),
        ),
    );
    push(
        "18:43:04",
        money_check(
            "SUM(balance) EUR",
            "invoice_lines",
            "88001.10",
            "87999.10",
            CheckStatus::Warn,
            "2.00 rounding on 1 line",
            Some("EUR"),
        ),
    );
    push(
        "18:43:05",
        check(
            "open receivables",
            "invoices",
            "312",
            "311",
            CheckStatus::Fail,
            "INV/2019/0042 missing partner",
        ),
    );
    push(
        "18:45:00",
        Event::StepFinished {
            step: "validate".into(),
            status: StepStatus::Warned,
            message: "1 warning, 1 failure".into(),
            duration_ms: 229_000,
        },
    );
    push("18:45:01", Event::StepStarted { step: GATE.into() });
    push(
        "18:45:02",
        Event::GateOpened {
            gate: GATE.into(),
            title: "Go / no-go for the production load".into(),
            quorum: 2,
            roles: vec!["migration_lead".into(), "finance".into()],
            approvers: vec![
                "Migration lead (migration_lead)".into(),
                "Finance controller (finance)".into(),
            ],
            recommendation: Decision::Go,
            reasons: vec![
                "15 of 121,000 rows rejected (0.01%), under the 0.5% limit".into(),
                "open receivables differ by 1 (known: INV/2019/0042)".into(),
            ],
            evidence_sha256: "cd".repeat(32),
            evidence: gate_evidence(),
            rule: Some(crate::journal::events::GateRule {
                quorum: 2,
                roles: ["migration_lead", "finance"]
                    .map(|r| crate::journal::events::RoleRule {
                        role: r.into(),
                        quorum: 1,
                        approvers: Vec::new(),
                    })
                    .to_vec(),
                lead: None,
            }),
        },
    );
    v
}

/// What the fixture gate shows: the checks above, the dry run's reject rates against a
/// 0.5% budget on people and invoices, and a finish well inside the window.
pub fn gate_evidence() -> GateEvidence {
    let rate = |entity: &str, rejected: u64, in_scope: u64, budget: Option<&str>| RejectRate {
        entity: entity.into(),
        rejected,
        in_scope,
        budget_pct: budget.map(str::to_string),
        within_budget: budget
            .map(|b| rejected as f64 * 100.0 / in_scope as f64 <= b.parse::<f64>().unwrap()),
    };
    GateEvidence {
        checks_pass: 4,
        checks_warn: 1,
        checks_fail: 1,
        reject_rates: vec![
            rate("companies", 0, 1_200, None),
            rate("people", 3, 4_800, Some("0.50")),
            rate("invoices", 12, 25_000, Some("0.50")),
            rate("invoice_lines", 0, 90_000, None),
        ],
        timing: Some(GateTiming {
            basis: "rehearsal".into(),
            rehearsal_run: Some("rehearsal-20261114-01".into()),
            remaining_secs: 72 * 60,
            projected_finish: at("19:57:00"),
            point_of_no_return: at("22:45:00"),
            window_end: at("23:00:00"),
            fits: true,
        }),
        money_rejected: Vec::new(),
    }
}

/// Records up to the middle of the production load.
pub fn records_mid_load() -> Vec<Record> {
    let mut v = records_to_gate();
    let mut seq = v.len() as i64;
    let mut push = |hms: &str, e: Event| {
        seq += 1;
        v.push(rec(seq, hms, e));
    };
    push(
        "18:50:00",
        Event::SignOffRecorded {
            gate: GATE.into(),
            name: "Migration lead".into(),
            role: "migration_lead".into(),
            decision: Decision::Go,
            comment: "counts match".into(),
            evidence_sha256: "cd".repeat(32),
            overrides: false,
            signature: None,
        },
    );
    push(
        "18:52:30",
        Event::SignOffRecorded {
            gate: GATE.into(),
            name: "Finance controller".into(),
            role: "finance".into(),
            decision: Decision::Go,
            comment: "AR diff explained".into(),
            evidence_sha256: "cd".repeat(32),
            overrides: false,
            signature: None,
        },
    );
    push(
        "18:52:31",
        Event::GateDecided {
            gate: GATE.into(),
            decision: Decision::Go,
        },
    );
    push(
        "18:52:32",
        Event::StepFinished {
            step: GATE.into(),
            status: StepStatus::Passed,
            message: "GO (2 of 2)".into(),
            duration_ms: 451_000,
        },
    );
    push(
        "18:52:33",
        Event::StepStarted {
            step: "load".into(),
        },
    );
    for (entity, table, n) in &ENTITIES[..2] {
        push(
            "18:52:40",
            Event::EntityStarted {
                phase: Phase::Load,
                entity: entity.to_string(),
                table: table.to_string(),
                expected_rows: *n,
            },
        );
        push(
            "18:55:00",
            entity_finished(Phase::Load, entity, *n, rejects_for(entity)),
        );
    }
    for (entity, table, n) in &ENTITIES[2..] {
        push(
            "18:55:01",
            Event::EntityStarted {
                phase: Phase::Load,
                entity: entity.to_string(),
                table: table.to_string(),
                expected_rows: *n,
            },
        );
    }
    v
}

pub fn progress_mid_load() -> ProgressSnapshot {
    vec![
        EntityProgress {
            phase: Some(Phase::Load),
            entity: "invoices".into(),
            expected: 25_000,
            read: 15_000,
            valid: 14_991,
            rejected: 9,
            loaded: 14_000,
            elapsed_secs: 300.0,
            done: false,
        },
        EntityProgress {
            phase: Some(Phase::Load),
            entity: "invoice_lines".into(),
            expected: 90_000,
            read: 18_000,
            valid: 18_000,
            rejected: 0,
            loaded: 16_000,
            elapsed_secs: 300.0,
            done: false,
        },
    ]
}

pub fn reject_rows(entity: &str, n: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let header = [
        "_line", "_rule", "_field", "_message", "code", "name", "amount",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let rows = (0..n)
        .map(|i| {
            let (rule, field, msg, amount) = if i % 13 == 12 {
                (
                    "required | decimal",
                    "partner_ref | amount",
                    "partner_ref is empty | not a decimal: '7,25'",
                    "7,25",
                )
            } else if i % 3 == 0 {
                ("required", "partner_ref", "partner_ref is empty", "120.00")
            } else if i % 3 == 1 {
                ("decimal", "amount", "not a decimal: '12,5'", "12,5")
            } else {
                ("date", "invoice_date", "2019-02-30 is not a date", "88.10")
            };
            vec![
                (17 + i * 211).to_string(),
                rule.into(),
                field.into(),
                msg.into(),
                format!("{}-{:04}", &entity[..3].to_uppercase(), i + 1),
                format!("Row {} of {entity}", i + 1),
                amount.into(),
            ]
        })
        .collect();
    (header, rows)
}

fn apply(app: &mut App, records: Vec<Record>) {
    for r in records {
        update(app, Action::Record(r));
    }
}

/// The fixture reject file of an entity as the edge would index it.
pub fn reject_file(entity: &str, n: usize) -> RejectFile {
    let (header, rows) = reject_rows(entity, n);
    let columns = RejectColumns::from_header(&header);
    let mut rules: Vec<String> = Vec::new();
    let mut fields: Vec<String> = Vec::new();
    for r in &rows {
        for (v, c) in [(&mut rules, 1), (&mut fields, 2)] {
            for part in split_reasons(&r[c]) {
                if !v.iter().any(|x| x == part) {
                    v.push(part.to_string());
                }
            }
        }
    }
    RejectFile {
        entity: entity.into(),
        path: format!(".cutover/run-20261121-01/load/{entity}.rejects.csv"),
        header,
        columns,
        rows: n,
        rules,
        fields,
    }
}

/// Play the edge for app tests, in memory: answer the queries among `effects` from
/// [`reject_rows`] (with [`RejectQuery::matches_row`]) and fetch the window the table
/// wants. Other effects are returned.
pub fn settle(app: &mut App, effects: Vec<Effect>) -> Vec<Effect> {
    let mut rest = Vec::new();
    for e in effects {
        match e {
            Effect::Rejects(RejectEffect::Query { generation, query }) => {
                let matched = matching_rows(app, &query).len();
                let more = update(
                    app,
                    Action::Rejects(RejectAction::Counted {
                        generation,
                        matched,
                    }),
                );
                rest.extend(settle(app, more));
            }
            other => rest.push(other),
        }
    }
    if let Some(request) = app.rejects.wanted_window() {
        let all = matching_rows(app, &app.rejects.query.clone());
        let rows = all
            .into_iter()
            .skip(request.start)
            .take(request.len)
            .collect();
        update(app, Action::Rejects(RejectAction::Rows { request, rows }));
    }
    rest
}

fn matching_rows(app: &App, q: &RejectQuery) -> Vec<RejectRecord> {
    let mut out = Vec::new();
    for f in app.rejects.files.values() {
        let (_, rows) = reject_rows(&f.entity, f.rows);
        out.extend(
            rows.into_iter()
                .filter(|r| q.matches_row(&f.entity, &f.columns, r))
                .map(|cells| RejectRecord {
                    entity: f.entity.clone(),
                    cells,
                }),
        );
    }
    out
}

/// Apply an action and settle its reject effects, as the loop would.
pub fn act(app: &mut App, action: Action) -> Vec<Effect> {
    let effects = update(app, action);
    settle(app, effects)
}

/// Feed the fixture reject files, as the loop does after `EntityFinished`.
fn load_rejects(app: &mut App) {
    for entity in ["people", "invoices"] {
        let file = reject_file(entity, rejects_for(entity) as usize);
        act(app, Action::Rejects(RejectAction::Indexed(file)));
    }
}

/// The console with the gate open (dialog showing) at 18:46.
pub fn app_at_gate() -> App {
    let mut app = App::new();
    apply(&mut app, records_to_gate());
    load_rejects(&mut app);
    update(
        &mut app,
        Action::Tick {
            now: now("18:46:00"),
        },
    );
    app
}

/// The console at a gate whose evidence recommends NO-GO: invoices over their reject
/// budget, a failed check, and a projected finish after the window's end.
pub fn app_at_no_go_gate() -> App {
    let mut records = records_to_gate();
    if let Some(Event::GateOpened {
        recommendation,
        reasons,
        evidence,
        ..
    }) = records.last_mut().map(|r| &mut r.event)
    {
        *recommendation = Decision::NoGo;
        *reasons = vec![
            "✗ FAIL invoices open receivables: source 312 vs target 311".into(),
            "! WARN invoices reject rate within budget: source 0.62% vs target ≤ 0.50%".into(),
            "✗ LATE projected finish Sun 00:40 UTC is after the window's end Sat 23:00 UTC".into(),
        ];
        evidence.reject_rates[2].rejected = 155;
        evidence.reject_rates[2].within_budget = Some(false);
        let money = |entity: &str, currency: &str, amount: &str| MoneyRejected {
            entity: entity.into(),
            field: "amount_total".into(),
            currency: currency.into(),
            amount: amount.into(),
        };
        evidence.money_rejected = vec![
            money("invoices", "EUR", "20916456.73"),
            money("invoices", "USD", "48200.00"),
            money("invoice_lines", "EUR", "1250.10"),
        ];
        if let Some(t) = evidence.timing.as_mut() {
            t.remaining_secs = 5 * 3600 + 55 * 60;
            t.projected_finish = "2026-11-22T00:40:00Z".into();
            t.fits = false;
        }
    }
    let mut app = App::new();
    apply(&mut app, records);
    load_rejects(&mut app);
    update(
        &mut app,
        Action::Tick {
            now: now("18:46:00"),
        },
    );
    app
}

/// The console in the middle of the production load at 19:00.
pub fn app_mid_load() -> App {
    app_mid_load_with(progress_mid_load(), "19:00:00")
}

/// The console during the production load with this progress, at this time.
pub fn app_mid_load_with(progress: ProgressSnapshot, hms: &str) -> App {
    let mut app = App::new();
    apply(&mut app, records_mid_load());
    load_rejects(&mut app);
    update(&mut app, Action::Progress(progress));
    update(&mut app, Action::Tick { now: now(hms) });
    app
}

/// Live load progress of one entity: every row read is valid and loaded.
pub fn load_progress(entity: &str, expected: u64, read: u64, elapsed_secs: f64) -> EntityProgress {
    EntityProgress {
        phase: Some(Phase::Load),
        entity: entity.into(),
        expected,
        read,
        valid: read,
        rejected: 0,
        loaded: read,
        elapsed_secs,
        done: false,
    }
}

/// Load progress of invoices (25,000) and invoice lines (90,000): rows read so far, and
/// seconds since each started.
pub fn progress_load(invoices: (u64, f64), lines: (u64, f64)) -> ProgressSnapshot {
    vec![
        load_progress("invoices", 25_000, invoices.0, invoices.1),
        load_progress("invoice_lines", 90_000, lines.0, lines.1),
    ]
}

/// 19:00, the load crawling: invoice lines at 5 rows/s, so the projection overruns 23:00.
pub fn app_overrunning() -> App {
    app_mid_load_with(progress_load((15_000, 300.0), (1_500, 300.0)), "19:00:00")
}

/// 22:50, past the point of no return (22:45:36) with the projection overrunning.
pub fn app_past_point_of_no_return() -> App {
    app_mid_load_with(
        progress_load((25_000, 14_000.0), (80_000, 14_000.0)),
        "22:50:00",
    )
}

/// 23:12, the window exceeded (the console has opened the rollback proposal).
pub fn app_window_exceeded() -> App {
    app_mid_load_with(
        progress_load((25_000, 15_000.0), (85_000, 15_000.0)),
        "23:12:00",
    )
}

/// Rows read per second in [`app_throughput`]'s minute: invoices speeding up and easing
/// off, invoice lines steady but for a 10-second stall (a retried batch).
pub fn throughput_rates(i: u64) -> (u64, u64) {
    let invoices = 40 + (i % 30) * 4;
    let lines = if (30..40).contains(&i) { 0 } else { 60 };
    (invoices, lines)
}

/// The production load at 19:00 after a minute of one-second ticks, each after a fresh
/// progress snapshot: a minute of throughput history for the sparklines.
pub fn app_throughput() -> App {
    let mut app = App::new();
    apply(&mut app, records_mid_load());
    load_rejects(&mut app);
    let start = now("18:59:00");
    let (mut invoices, mut lines) = (9_000, 14_500);
    for i in 0..=60u64 {
        if i > 0 {
            let (a, b) = throughput_rates(i);
            invoices += a;
            lines += b;
        }
        let elapsed = 240.0 + i as f64;
        update(
            &mut app,
            Action::Progress(progress_load((invoices, elapsed), (lines, elapsed))),
        );
        update(
            &mut app,
            Action::Tick {
                now: start + chrono::Duration::seconds(i as i64),
            },
        );
    }
    app
}

/// Mid-load with tracing lines in the log: the retry warnings of a lost connection, a
/// pool warning from sqlx and some lines the console could not keep up with.
pub fn app_with_tracing() -> App {
    let mut app = app_mid_load();
    let warn = |attempt: u32| Action::Log {
        level: tracing::Level::WARN,
        target: "cutover::steps".into(),
        message: format!(
            "transient fault; retrying the batch entity=invoice_lines attempt={attempt} max=5 \
             delay_ms=500 error=connection refused"
        ),
    };
    update(&mut app, warn(1));
    update(&mut app, warn(2));
    update(
        &mut app,
        Action::Log {
            level: tracing::Level::WARN,
            target: "sqlx::pool::acquire".into(),
            message: "slow acquire elapsed=1.2s".into(),
        },
    );
    update(
        &mut app,
        Action::Log {
            level: tracing::Level::INFO,
            target: "cutover::engine".into(),
            message: "batch retried and committed entity=invoice_lines".into(),
        },
    );
    update(&mut app, Action::LogDropped { total: 3 });
    update(&mut app, Action::SelectTab(super::Tab::Log));
    app
}
