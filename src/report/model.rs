//! The cutover dossier: one typed model of a finished (or stopped) run, built from its
//! [`RunView`], the runbook and the files the run left. `md`, `html` and `json` render this
//! model and nothing else, so the three formats cannot disagree.
//!
//! Pure: the caller reads the files (reject files, runbook, journal verification) and hands
//! over what it found.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::journal::events::{CheckStatus, Decision, Outcome, Phase, RunMode};
use crate::runbook::format::StepKind;
use crate::runview::{RunView, StepState, parse_ts};

/// Bumped when a field changes meaning or goes away (adding a field does not bump it).
pub const DOSSIER_SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
pub struct Dossier {
    pub schema_version: u32,
    /// Version of the `cutover` that wrote this dossier (the run's own is in `provenance`).
    pub generated_by: String,
    pub run: RunSection,
    pub timeline: Timeline,
    pub window: WindowSection,
    /// One table per step that recorded checks (validate, verify), in journal order.
    pub reconciliation: Vec<CheckTable>,
    pub entities: Vec<EntityEntry>,
    pub rejects: Vec<EntityRejects>,
    /// Money left behind in rejected rows, summed per field and currency over the entities.
    pub money_left_behind: Vec<Money>,
    pub gates: Vec<GateEntry>,
    pub sign_offs: Vec<SignOffEntry>,
    pub overrides: Vec<OverrideEntry>,
    pub skips: Vec<SkipEntry>,
    pub rollback: Option<RollbackEntry>,
    pub provenance: Provenance,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunSection {
    pub run_id: String,
    pub mode: Option<RunMode>,
    pub runbook_name: String,
    pub runbook_path: String,
    pub started: Option<String>,
    pub finished: Option<String>,
    /// `None` while the run has not finished (or stopped without a `RunFinished`).
    pub outcome: Option<Outcome>,
    pub exit_code: Option<i32>,
    pub message: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Timeline {
    pub steps: Vec<TimelineStep>,
    /// From the run's start to its last record, in milliseconds.
    pub span_ms: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimelineStep {
    pub id: String,
    pub kind: StepKind,
    pub title: String,
    pub status: StepOutcome,
    pub planned_secs: Option<u64>,
    pub actual_ms: Option<u64>,
    /// Actual minus planned, in seconds (positive: late).
    pub delta_secs: Option<i64>,
    pub started: Option<String>,
    /// Milliseconds from the run's start to the step's start.
    pub offset_ms: Option<u64>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepOutcome {
    NotRun,
    Running,
    Passed,
    Warned,
    Failed,
    WaitingSignOff,
    Skipped,
    RolledBack,
}

impl StepOutcome {
    pub fn word(self) -> &'static str {
        match self {
            StepOutcome::NotRun => "not run",
            StepOutcome::Running => "running",
            StepOutcome::Passed => "passed",
            StepOutcome::Warned => "warned",
            StepOutcome::Failed => "failed",
            StepOutcome::WaitingSignOff => "waiting for sign-off",
            StepOutcome::Skipped => "skipped",
            StepOutcome::RolledBack => "rolled back",
        }
    }
}

impl From<StepState> for StepOutcome {
    fn from(s: StepState) -> Self {
        match s {
            StepState::Pending => StepOutcome::NotRun,
            StepState::Running => StepOutcome::Running,
            StepState::Passed => StepOutcome::Passed,
            StepState::Warned => StepOutcome::Warned,
            StepState::Failed => StepOutcome::Failed,
            StepState::WaitingSignOff => StepOutcome::WaitingSignOff,
            StepState::Skipped => StepOutcome::Skipped,
            StepState::RolledBack => StepOutcome::RolledBack,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowSection {
    pub window_end: Option<String>,
    /// The projection and point of no return each gate was shown.
    pub at_gates: Vec<GateTimingEntry>,
    /// Every window warning journaled during the run.
    pub warnings: Vec<WindowWarning>,
    pub exceeded_at: Option<String>,
    /// The forecast as the journal stands at its last record.
    pub at_end: Option<ForecastEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateTimingEntry {
    pub gate: String,
    pub basis: String,
    pub remaining_secs: u64,
    pub projected_finish: String,
    pub point_of_no_return: String,
    pub window_end: String,
    pub fits: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct WindowWarning {
    pub at: String,
    pub projected_finish: String,
    pub point_of_no_return: String,
    pub window_end: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct ForecastEntry {
    pub at: String,
    pub basis: String,
    pub projected_finish: String,
    pub point_of_no_return: String,
    pub overruns: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckTable {
    pub step: String,
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
    pub checks: Vec<CheckEntry>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CheckEntry {
    pub name: String,
    pub entity: String,
    /// Only on money checks kept per currency.
    pub currency: Option<String>,
    pub source: String,
    pub target: String,
    pub status: CheckStatus,
    pub detail: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct EntityEntry {
    pub phase: Phase,
    pub entity: String,
    pub in_file: u64,
    pub in_scope: u64,
    pub valid: u64,
    pub rejected: u64,
    pub loaded: u64,
    pub duration_ms: u64,
}

/// Rejected rows of one entity in the latest phase that ran.
#[derive(Debug, Clone, Serialize)]
pub struct EntityRejects {
    pub phase: Phase,
    pub entity: String,
    pub rejected: u64,
    pub reject_file: String,
    /// The money in the rejected rows, per field and currency, as the run summed it.
    pub left_behind: Vec<Money>,
    /// Per rule, from the reject file (a row broken by two rules counts under both).
    pub by_rule: Vec<RuleRejects>,
    /// Why `by_rule` is empty although rows were rejected (the file is gone, unreadable…).
    pub by_rule_missing: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Money {
    pub field: String,
    /// Empty when the runbook keeps this sum without a currency.
    pub currency: String,
    pub amount: Decimal,
}

#[derive(Debug, Clone, Serialize)]
pub struct RuleRejects {
    pub rule: String,
    pub rows: u64,
    pub money: Vec<Money>,
}

/// Amounts per (field, currency).
pub type Amounts = BTreeMap<(String, String), Decimal>;

/// What the caller read from one reject file.
#[derive(Debug, Clone, Default)]
pub struct RejectTally {
    /// rule → (rows, amounts in those rows)
    pub by_rule: BTreeMap<String, (u64, Amounts)>,
}

#[derive(Debug, Clone, Serialize)]
pub struct GateEntry {
    pub gate: String,
    pub title: String,
    pub recommendation: Decision,
    pub reasons: Vec<String>,
    pub evidence_sha256: String,
    pub quorum: usize,
    pub roles: Vec<String>,
    pub decision: Option<Decision>,
}

/// The sign-off table's columns, in the order every format writes them.
pub const SIGN_OFF_COLUMNS: [&str; 9] = [
    "Gate",
    "Name",
    "Role",
    "Decision",
    "At",
    "Evidence",
    "Current",
    "Signature",
    "Comment",
];

#[derive(Debug, Clone, Serialize)]
pub struct SignOffEntry {
    pub gate: String,
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub comment: String,
    pub at: String,
    pub evidence_sha256: String,
    /// The evidence hash is the one the gate showed last (false: signed on older evidence).
    pub evidence_current: bool,
    pub signature: SignatureStatus,
    pub overrides_recommendation: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureStatus {
    /// The approver has no SSH key in the runbook: the sign-off carries no signature.
    Unsigned,
    /// Signed with the approver's SSH key over the evidence hash and verified when it was
    /// journaled (a sign-off whose signature fails is refused, never recorded).
    Verified,
}

impl SignatureStatus {
    pub fn word(self) -> &'static str {
        match self {
            SignatureStatus::Unsigned => "unsigned (no key listed)",
            SignatureStatus::Verified => "SSH signature verified",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OverrideEntry {
    pub gate: String,
    pub name: String,
    pub role: String,
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct SkipEntry {
    pub step: String,
    pub name: String,
    pub reason: String,
    pub at: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct RollbackEntry {
    pub reason: String,
    pub started: Option<String>,
    pub ok: Option<bool>,
    pub message: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Provenance {
    pub tool_version: String,
    /// The runbook's hash when the run started.
    pub runbook_sha256: String,
    /// The runbook file's hash now; `None` when it cannot be read.
    pub runbook_sha256_now: Option<String>,
    pub extract_manifest: Option<String>,
    pub inputs: Vec<InputFile>,
    pub backup: Option<BackupEntry>,
    pub journal: JournalEntry,
}

#[derive(Debug, Clone, Serialize)]
pub struct InputFile {
    pub entity: String,
    pub path: String,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BackupEntry {
    pub env: String,
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct JournalEntry {
    /// Where the journal is, with any user or password taken out.
    pub location: String,
    /// The run's last record: `journal verify --expect-head SEQ:HASH` checks it later.
    pub run_head: Option<String>,
    pub verification: VerificationEntry,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationEntry {
    /// Records checked (the whole journal, every run in it).
    pub records: u64,
    pub intact: bool,
    /// The first broken link: sequence number and why.
    pub first_bad: Option<(i64, String)>,
    /// The journal's head as verified.
    pub head: Option<String>,
    /// The journal still holds the run's head record with the same hash.
    pub run_head_reachable: bool,
}

/// What the caller gathered outside the journal's records.
#[derive(Debug, Clone)]
pub struct Sources {
    pub runbook_sha256_now: Option<String>,
    pub journal_location: String,
    pub verification: VerificationEntry,
    /// Reject tallies per reject file path as journaled; `Err` says why it could not be read.
    pub reject_files: BTreeMap<String, Result<RejectTally, String>>,
}

fn phase_of_latest(v: &RunView) -> Option<Phase> {
    if v.phases.contains_key(&Phase::Load) {
        Some(Phase::Load)
    } else if v.phases.contains_key(&Phase::DryRun) {
        Some(Phase::DryRun)
    } else {
        None
    }
}

/// `rejected.<field>` / `rejected.<field>.<CUR>` sums of an `EntityFinished`.
fn left_behind(sums: &BTreeMap<String, String>) -> Vec<Money> {
    let mut out = Vec::new();
    for (k, v) in sums {
        let Some(rest) = k.strip_prefix("rejected.") else {
            continue;
        };
        let Ok(amount) = v.parse::<Decimal>() else {
            continue;
        };
        let (field, currency) = match rest.split_once('.') {
            Some((f, c)) => (f.to_string(), c.to_string()),
            None => (rest.to_string(), String::new()),
        };
        out.push(Money {
            field,
            currency,
            amount,
        });
    }
    out
}

fn ms_between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<u64> {
    match (from, to) {
        (Some(a), Some(b)) => Some((b - a).num_milliseconds().max(0) as u64),
        _ => None,
    }
}

impl Dossier {
    /// The dossier of the run `v` tells, with what the caller found outside the journal.
    pub fn build(v: &RunView, src: Sources) -> Dossier {
        let info = v.run.clone().unwrap_or_default();
        let started = parse_ts(&info.started);
        let finished = v.finished.as_ref();
        let run = RunSection {
            run_id: v.run_id.clone().unwrap_or_default(),
            mode: v.mode,
            runbook_name: v.runbook_name.clone(),
            runbook_path: info.runbook_path.clone(),
            started: v.run.as_ref().map(|i| i.started.clone()),
            finished: v.finished_at.clone(),
            outcome: finished.map(|f| f.outcome),
            exit_code: finished.map(|f| f.exit_code),
            message: finished.map(|f| f.message.clone()).unwrap_or_default(),
        };

        let steps = v
            .steps
            .iter()
            .map(|s| {
                let actual_ms = s.duration_ms;
                TimelineStep {
                    id: s.id.clone(),
                    kind: s.kind,
                    title: s.title.clone(),
                    status: s.state.into(),
                    planned_secs: s.planned_secs,
                    actual_ms,
                    delta_secs: match (s.planned_secs, actual_ms) {
                        (Some(p), Some(a)) => Some((a / 1000) as i64 - p as i64),
                        _ => None,
                    },
                    started: s
                        .started_at
                        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)),
                    offset_ms: ms_between(started, s.started_at),
                    message: s.message.clone(),
                }
            })
            .collect();
        let timeline = Timeline {
            steps,
            span_ms: ms_between(started, v.last_ts).unwrap_or(0),
        };

        let at_gates = v
            .gates
            .iter()
            .filter_map(|g| {
                g.evidence.timing.as_ref().map(|t| GateTimingEntry {
                    gate: g.gate.clone(),
                    basis: t.basis.clone(),
                    remaining_secs: t.remaining_secs,
                    projected_finish: t.projected_finish.clone(),
                    point_of_no_return: t.point_of_no_return.clone(),
                    window_end: t.window_end.clone(),
                    fits: t.fits,
                })
            })
            .collect();
        let at_end = v.last_ts.and_then(|now| {
            v.window.forecast(&Vec::new(), now).map(|f| ForecastEntry {
                at: now.to_rfc3339_opts(SecondsFormat::Millis, true),
                basis: f.basis.word().to_string(),
                projected_finish: f
                    .projected_finish
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                point_of_no_return: f
                    .point_of_no_return
                    .to_rfc3339_opts(SecondsFormat::Secs, true),
                overruns: f.overruns,
            })
        });
        let window = WindowSection {
            window_end: info.window_end.clone(),
            at_gates,
            warnings: v
                .window_warnings
                .iter()
                .map(|w| WindowWarning {
                    at: w.at.clone(),
                    projected_finish: w.projected_finish.clone(),
                    point_of_no_return: w.point_of_no_return.clone(),
                    window_end: w.window_end.clone(),
                })
                .collect(),
            exceeded_at: v.window_exceeded_at.clone(),
            at_end,
        };

        let mut reconciliation: Vec<CheckTable> = Vec::new();
        for c in &v.checks {
            if reconciliation.last().is_none_or(|t| t.step != c.step) {
                reconciliation.push(CheckTable {
                    step: c.step.clone(),
                    pass: 0,
                    warn: 0,
                    fail: 0,
                    checks: Vec::new(),
                });
            }
            let t = reconciliation.last_mut().expect("pushed above");
            match c.result.status {
                CheckStatus::Pass => t.pass += 1,
                CheckStatus::Warn => t.warn += 1,
                CheckStatus::Fail => t.fail += 1,
            }
            t.checks.push(CheckEntry {
                name: c.result.name.clone(),
                entity: c.result.entity.clone(),
                currency: c.result.currency.clone(),
                source: c.result.source.clone(),
                target: c.result.target.clone(),
                status: c.result.status,
                detail: c.result.detail.clone(),
            });
        }

        let mut entities = Vec::new();
        for (phase, m) in &v.phases {
            for (entity, r) in m {
                entities.push(EntityEntry {
                    phase: *phase,
                    entity: entity.clone(),
                    in_file: r.counts.in_file,
                    in_scope: r.counts.in_scope,
                    valid: r.counts.valid,
                    rejected: r.counts.rejected,
                    loaded: r.counts.loaded,
                    duration_ms: r.duration_ms,
                });
            }
        }

        let mut rejects = Vec::new();
        if let (Some(phase), Some(m)) = (phase_of_latest(v), v.latest_phase()) {
            for (entity, r) in m {
                let (by_rule, by_rule_missing) = match src.reject_files.get(&r.reject_file) {
                    Some(Ok(t)) => (
                        t.by_rule
                            .iter()
                            .map(|(rule, (rows, money))| RuleRejects {
                                rule: rule.clone(),
                                rows: *rows,
                                money: money
                                    .iter()
                                    .map(|((field, currency), amount)| Money {
                                        field: field.clone(),
                                        currency: currency.clone(),
                                        amount: *amount,
                                    })
                                    .collect(),
                            })
                            .collect(),
                        None,
                    ),
                    Some(Err(why)) => (Vec::new(), Some(why.clone())),
                    None if r.counts.rejected > 0 => {
                        (Vec::new(), Some("no reject file was journaled".into()))
                    }
                    None => (Vec::new(), None),
                };
                rejects.push(EntityRejects {
                    phase,
                    entity: entity.clone(),
                    rejected: r.counts.rejected,
                    reject_file: r.reject_file.clone(),
                    left_behind: left_behind(&r.sums),
                    by_rule,
                    by_rule_missing,
                });
            }
        }

        let gates = v
            .gates
            .iter()
            .map(|g| GateEntry {
                gate: g.gate.clone(),
                title: g.title.clone(),
                recommendation: g.recommendation,
                reasons: g.reasons.clone(),
                evidence_sha256: g.evidence_sha256.clone(),
                quorum: g.quorum,
                roles: g.roles.clone(),
                decision: g.decided,
            })
            .collect();
        let latest_evidence = |gate: &str| {
            v.gates
                .iter()
                .rev()
                .find(|g| g.gate == gate)
                .map(|g| g.evidence_sha256.as_str())
        };
        let sign_offs: Vec<SignOffEntry> = v
            .sign_offs
            .iter()
            .map(|s| SignOffEntry {
                gate: s.gate.clone(),
                name: s.row.name.clone(),
                role: s.row.role.clone(),
                decision: s.row.decision,
                comment: s.row.comment.clone(),
                at: s.at.clone(),
                evidence_sha256: s.evidence_sha256.clone(),
                evidence_current: latest_evidence(&s.gate) == Some(s.evidence_sha256.as_str()),
                signature: if s.signed {
                    SignatureStatus::Verified
                } else {
                    SignatureStatus::Unsigned
                },
                overrides_recommendation: s.row.overrides,
            })
            .collect();
        let overrides = sign_offs
            .iter()
            .filter(|s| s.overrides_recommendation)
            .map(|s| OverrideEntry {
                gate: s.gate.clone(),
                name: s.name.clone(),
                role: s.role.clone(),
                reason: s.comment.clone(),
                at: s.at.clone(),
            })
            .collect();
        let skips = v
            .skips
            .iter()
            .map(|s| SkipEntry {
                step: s.step.clone(),
                name: s.name.clone(),
                reason: s.reason.clone(),
                at: s.at.clone(),
            })
            .collect();
        let rollback = v.rollback.as_ref().map(|rb| RollbackEntry {
            reason: rb.reason.clone(),
            started: v.rollback_started_at.clone(),
            ok: rb.finished.as_ref().map(|(ok, _)| *ok),
            message: rb.finished.as_ref().map(|(_, m)| m.clone()),
        });

        let provenance = Provenance {
            tool_version: info.tool_version.clone(),
            runbook_sha256: info.runbook_sha256.clone(),
            runbook_sha256_now: src.runbook_sha256_now,
            extract_manifest: v.extract.as_ref().map(|(m, _)| m.clone()),
            inputs: v
                .extract
                .as_ref()
                .map(|(_, files)| {
                    files
                        .iter()
                        .map(|f| InputFile {
                            entity: f.entity.clone(),
                            path: f.path.clone(),
                            rows: f.rows,
                            sha256: f.sha256.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
            backup: v.backup.as_ref().map(|b| BackupEntry {
                env: b.env.clone(),
                path: b.path.clone(),
                sha256: b.sha256.clone(),
                bytes: b.bytes,
            }),
            journal: JournalEntry {
                location: src.journal_location,
                run_head: v.head.as_ref().map(ToString::to_string),
                verification: src.verification,
            },
        };

        let money_left_behind = totals(&rejects);
        Dossier {
            schema_version: DOSSIER_SCHEMA_VERSION,
            generated_by: env!("CARGO_PKG_VERSION").to_string(),
            run,
            timeline,
            window,
            reconciliation,
            entities,
            rejects,
            money_left_behind,
            gates,
            sign_offs,
            overrides,
            skips,
            rollback,
            provenance,
        }
    }
}

/// Money left behind in rejected rows, summed per field and currency over every entity.
fn totals(rejects: &[EntityRejects]) -> Vec<Money> {
    let mut m: BTreeMap<(String, String), Decimal> = BTreeMap::new();
    for e in rejects {
        for x in &e.left_behind {
            *m.entry((x.field.clone(), x.currency.clone())).or_default() += x.amount;
        }
    }
    m.into_iter()
        .map(|((field, currency), amount)| Money {
            field,
            currency,
            amount,
        })
        .collect()
}

pub fn decision_word(d: Decision) -> &'static str {
    match d {
        Decision::Go => "GO",
        Decision::NoGo => "NO-GO",
    }
}

pub fn outcome_word(o: Option<Outcome>) -> &'static str {
    match o {
        None => "not finished",
        Some(Outcome::Completed) => "completed",
        Some(Outcome::StoppedAfterStep) => "stopped after step",
        Some(Outcome::ValidationFailed) => "validation failed",
        Some(Outcome::WaitingAtGate) => "waiting at gate",
        Some(Outcome::NoGo) => "NO-GO",
        Some(Outcome::RolledBack) => "rolled back",
        Some(Outcome::Failed) => "failed",
    }
}

pub fn check_word(s: CheckStatus) -> &'static str {
    match s {
        CheckStatus::Pass => "PASS",
        CheckStatus::Warn => "WARN",
        CheckStatus::Fail => "FAIL",
    }
}

pub fn phase_word(p: Phase) -> &'static str {
    match p {
        Phase::DryRun => "dry run",
        Phase::Load => "load",
    }
}

/// A step kind as the runbook writes it.
pub fn kind_word(k: StepKind) -> String {
    serde_json::to_value(k)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

pub fn mode_word(m: RunMode) -> &'static str {
    match m {
        RunMode::Run => "run",
        RunMode::Rehearse => "rehearse",
    }
}
