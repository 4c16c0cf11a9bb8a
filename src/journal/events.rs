//! Journal events: the source of truth for a run. The console, `watch`, the summary and
//! resume all read these back; nothing else keeps its own record.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::runbook::format::StepKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunMode {
    Run,
    Rehearse,
}

/// Where rows are going: the rehearsal target or the real one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    DryRun,
    Load,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepStatus {
    Passed,
    Warned,
    Failed,
    Skipped,
    RolledBack,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckStatus {
    Pass,
    Warn,
    Fail,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    Go,
    NoGo,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Completed,
    StoppedAfterStep,
    ValidationFailed,
    WaitingAtGate,
    NoGo,
    RolledBack,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    pub id: String,
    pub kind: StepKind,
    pub title: String,
    pub planned_secs: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvInfo {
    pub name: String,
    /// Driver, host and database, e.g. `sqlite .cutover/production.db`.
    pub display: String,
    pub production: bool,
    /// The database's own name (`erp`, `production.db`): what an operator types to confirm
    /// a rollback. Empty in journals written before it was recorded.
    #[serde(default)]
    pub database: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityCounts {
    pub in_file: u64,
    pub in_scope: u64,
    pub valid: u64,
    pub rejected: u64,
    pub loaded: u64,
    /// An entity whose one2many lines come from their own file: what became of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<LineCounts>,
}

/// The lines of an entity's lines file: each is attached to its loaded record or in the
/// lines' reject file, so `read = attached + rejected`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineCounts {
    pub read: u64,
    pub attached: u64,
    pub rejected: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtractFile {
    pub entity: String,
    pub path: String,
    pub rows: u64,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefusedRow {
    pub line: u64,
    pub message: String,
}

/// Rows moved in a measured time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowRate {
    pub rows: u64,
    pub ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckResult {
    pub name: String,
    pub entity: String,
    /// Value on the source side (file / pipeline), as text: counts, exact decimals.
    pub source: String,
    /// Value found in the target database.
    pub target: String,
    pub status: CheckStatus,
    /// Anything finance or the lead should see beside it (e.g. rejected sums).
    pub detail: String,
    /// Set on a sum kept per currency: source and target are money in this currency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
}

/// The evidence a gate shows its approvers, journaled with the gate so the record says
/// what they saw.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateEvidence {
    /// Reconciliation checks of the last validate: how many passed, warned, failed.
    pub checks_pass: usize,
    pub checks_warn: usize,
    pub checks_fail: usize,
    /// Per entity, from the last dry run.
    pub reject_rates: Vec<RejectRate>,
    /// The projection against the cutover window (none when the runbook has no window).
    pub timing: Option<GateTiming>,
    /// Money in the rows the last dry run rejected, per entity, field and currency (only
    /// non-zero sums of fields kept per currency). Left out of the record when there is
    /// none, so evidence journaled before it existed hashes the same.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub money_rejected: Vec<MoneyRejected>,
}

/// One currency's sum of one money field over an entity's rejected rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoneyRejected {
    pub entity: String,
    pub field: String,
    pub currency: String,
    /// An exact decimal, as the pipeline summed it.
    pub amount: String,
}

impl MoneyRejected {
    /// From each entity's `EntityFinished` sums: every `rejected.<field>.<CUR>` that is
    /// not zero. Fields summed without a currency are counts of something, not money.
    pub fn from_sums<E: AsRef<str> + Ord>(
        sums: &BTreeMap<E, &BTreeMap<String, String>>,
    ) -> Vec<MoneyRejected> {
        let mut out = Vec::new();
        for (entity, sums) in sums {
            for (key, amount) in sums.iter() {
                let Some(rest) = key.strip_prefix("rejected.") else {
                    continue;
                };
                let Some((field, currency)) = rest.rsplit_once('.') else {
                    continue;
                };
                let zero = amount
                    .parse::<rust_decimal::Decimal>()
                    .is_ok_and(|d| d.is_zero());
                if zero || currency.is_empty() {
                    continue;
                }
                out.push(MoneyRejected {
                    entity: entity.as_ref().to_string(),
                    field: field.to_string(),
                    currency: currency.to_string(),
                    amount: amount.clone(),
                });
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RejectRate {
    pub entity: String,
    pub rejected: u64,
    pub in_scope: u64,
    /// The runbook's `max_reject_pct`, as written there.
    pub budget_pct: Option<String>,
    /// `None` where no budget is set.
    pub within_budget: Option<bool>,
}

impl RejectRate {
    /// Percent of in-scope rows rejected.
    pub fn pct(&self) -> f64 {
        if self.in_scope == 0 {
            0.0
        } else {
            self.rejected as f64 * 100.0 / self.in_scope as f64
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateTiming {
    /// What the estimate of the remaining steps comes from ("rehearsal", "planned").
    pub basis: String,
    /// The rehearsal run whose timings the estimate scales, if any.
    pub rehearsal_run: Option<String>,
    /// Estimated seconds for the steps after the gate.
    pub remaining_secs: u64,
    /// RFC 3339 instants.
    pub projected_finish: String,
    pub point_of_no_return: String,
    pub window_end: String,
    /// The projected finish is inside the window.
    pub fits: bool,
}

/// Who may sign a gate and how many must: journaled with the gate, so whoever reads the
/// journal (the run, `cutover sign`, the console) applies the same rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateRule {
    /// Distinct people whose GO is needed in all.
    pub quorum: usize,
    pub roles: Vec<RoleRule>,
    /// The operator running the cutover: never the only approver of their own gate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lead: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRule {
    pub role: String,
    /// GO sign-offs needed from distinct people in this role.
    pub quorum: usize,
    /// Who may sign for it; empty means anyone.
    #[serde(default)]
    pub approvers: Vec<ApproverRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApproverRule {
    pub name: String,
    /// OpenSSH public key; their sign-off must carry a signature made with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ssh_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    RunStarted {
        run_id: String,
        mode: RunMode,
        runbook_path: String,
        runbook_name: String,
        runbook_sha256: String,
        steps: Vec<StepInfo>,
        /// Non-secret variable values in force.
        vars: BTreeMap<String, String>,
        tool_version: String,
        artifacts_dir: String,
        /// Environments as shown to people: never a password.
        environments: Vec<EnvInfo>,
        /// End of the cutover window (RFC 3339), when the runbook declares one.
        window_end: Option<String>,
    },
    StepStarted {
        step: String,
    },
    StepFinished {
        step: String,
        status: StepStatus,
        message: String,
        duration_ms: u64,
    },
    /// An operator skipped a step not yet started; its `StepFinished` (skipped) follows.
    StepSkipped {
        step: String,
        name: String,
        reason: String,
    },
    BackupTaken {
        env: String,
        path: String,
        sha256: String,
        bytes: u64,
        /// Per table, rows and checksum the backup holds: what a rollback must restore.
        #[serde(default)]
        snapshot: BTreeMap<String, String>,
    },
    /// About to freeze the legacy: what the freeze takes away, journaled before anything
    /// is revoked, so a process killed inside the freeze (revoked, `freeze_applied` not
    /// yet written) leaves the journal knowing what to give back. `revoked` as in
    /// `FreezeApplied` (MariaDB: per account, the write privileges held now).
    FreezePlanned {
        env: String,
        method: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        revoked: BTreeMap<String, String>,
    },
    FreezeApplied {
        env: String,
        method: String,
        /// Row count (or file checksum) per table, taken at freeze time.
        watermark: BTreeMap<String, String>,
        /// Per account, the privileges revoked (what a reopen grants back).
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        revoked: BTreeMap<String, String>,
    },
    /// Production's users are about to be closed out. Journaled before the close so a
    /// crash cannot lose it: `held` is who could get in before (PostgreSQL: `PUBLIC` or a
    /// role → `CONNECT`; MariaDB: account → `unlocked`/`locked`), which a reopen restores
    /// exactly; `acl` is the privileges as the server shows them, for people.
    ProductionClosed {
        env: String,
        acl: String,
        held: BTreeMap<String, String>,
    },
    /// An environment was given back to its users: production reopened (at unfreeze, or
    /// by the rollback plan) or the legacy freeze undone.
    EnvReopened {
        env: String,
        production: bool,
        message: String,
    },
    /// After a NO-GO the operator kept the legacy frozen (to fix data and rehearse again);
    /// `cutover rollback`, or the next run's freeze, takes it over from here.
    FreezeHeld {
        env: String,
        reason: String,
    },
    /// A `command` step's shell command ran.
    CommandRan {
        step: String,
        command: String,
        /// `None` when it was killed at its timeout or by a signal.
        exit_code: Option<i32>,
        timed_out: bool,
        /// Combined stdout and stderr, the last 16 KiB.
        output: String,
    },
    ExtractRecorded {
        manifest: String,
        files: Vec<ExtractFile>,
    },
    EntityStarted {
        phase: Phase,
        entity: String,
        table: String,
        expected_rows: u64,
    },
    BatchCommitted {
        phase: Phase,
        entity: String,
        batch: u64,
        rows: u64,
        last_line: u64,
        /// Rows of this batch the database refused: a resumed load re-files them as rejects
        /// without writing the batch again.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        refused: Vec<RefusedRow>,
    },
    /// A transient fault (lost connection, restarted server): the batch is tried again.
    RetryScheduled {
        step: String,
        entity: String,
        /// 1 for the first retry.
        attempt: u32,
        max_attempts: u32,
        delay_ms: u64,
        error: String,
    },
    EntityFinished {
        phase: Phase,
        entity: String,
        counts: EntityCounts,
        reject_file: String,
        /// Decimal sums over valid (`valid.<field>`) and rejected (`rejected.<field>`) in-scope rows.
        sums: BTreeMap<String, String>,
        duration_ms: u64,
    },
    CheckRecorded {
        step: String,
        result: CheckResult,
    },
    GateOpened {
        gate: String,
        title: String,
        quorum: usize,
        roles: Vec<String>,
        /// "name (role)" of each expected approver.
        approvers: Vec<String>,
        recommendation: Decision,
        reasons: Vec<String>,
        evidence_sha256: String,
        /// What the approvers are shown beside the reasons: reconciliation totals, reject
        /// rates against their budgets, the timing against the window.
        #[serde(default)]
        evidence: GateEvidence,
        /// The roles, quorums, approvers and lead the sign-offs are counted against
        /// (absent in journals written before it was recorded).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<GateRule>,
    },
    SignOffRecorded {
        gate: String,
        name: String,
        role: String,
        decision: Decision,
        comment: String,
        evidence_sha256: String,
        /// A GO against a NO-GO recommendation; `comment` then holds the reason.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        overrides: bool,
        /// `ssh-keygen -Y sign -n cutover` signature (armored) over the evidence hash.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        signature: Option<String>,
    },
    /// A sign-off that was not counted, and why (stale evidence, missing or bad signature,
    /// not an approver of that role, …). Journaled so nobody believes they signed.
    SignOffRefused {
        gate: String,
        name: String,
        role: String,
        decision: Decision,
        comment: String,
        evidence_sha256: String,
        reason: String,
    },
    GateDecided {
        gate: String,
        decision: Decision,
    },
    /// `cutover run` picked an unfinished run up where it stopped.
    RunResumed {
        runbook_sha256: String,
        /// Steps already finished, which are not run again.
        completed: Vec<String>,
    },
    /// What the window projection starts from: the last rehearsal's timings (scaled to
    /// this run's volumes once the extract is known) and the rollback's expected length.
    ForecastBasis {
        rehearsal_run: Option<String>,
        /// Measured time per step id in the rehearsal.
        step_ms: BTreeMap<String, u64>,
        /// Rows and time per entity in the rehearsal's dry run.
        entity_rate: BTreeMap<String, RowRate>,
        rollback_ms: u64,
    },
    /// The projected finish no longer fits the window (journaled once per run).
    WindowWarning {
        projected_finish: String,
        window_end: String,
        point_of_no_return: String,
    },
    /// The window has ended; the console proposes the rollback.
    WindowExceeded {
        window_end: String,
    },
    RollbackStarted {
        reason: String,
    },
    RollbackFinished {
        ok: bool,
        message: String,
    },
    RunFinished {
        outcome: Outcome,
        exit_code: i32,
        message: String,
    },
    /// The process that drove this run died or went silent and another took its lease.
    LeaseTakenOver {
        previous: crate::journal::lease::Holder,
        holder: crate::journal::lease::Holder,
        /// How the previous holder was judged gone.
        why: String,
    },
    /// A webhook took a notification (`[[notify]]`); the URL shown without its path.
    NotificationDelivered {
        /// What it was about: `step_started`, `gate_waiting`, … (the runbook's names).
        about: String,
        url: String,
        /// 1 for the first try.
        attempt: u32,
        /// The HTTP status the webhook answered.
        status: u16,
    },
    /// A webhook did not take a notification on this try; `gives_up` when no try follows.
    NotificationFailed {
        about: String,
        url: String,
        attempt: u32,
        /// The HTTP status, when the webhook answered at all.
        status: Option<u16>,
        error: String,
        gives_up: bool,
    },
}

impl Event {
    pub fn kind(&self) -> &'static str {
        match self {
            Event::RunStarted { .. } => "run_started",
            Event::StepStarted { .. } => "step_started",
            Event::StepFinished { .. } => "step_finished",
            Event::StepSkipped { .. } => "step_skipped",
            Event::BackupTaken { .. } => "backup_taken",
            Event::FreezePlanned { .. } => "freeze_planned",
            Event::FreezeApplied { .. } => "freeze_applied",
            Event::CommandRan { .. } => "command_ran",
            Event::ProductionClosed { .. } => "production_closed",
            Event::EnvReopened { .. } => "env_reopened",
            Event::FreezeHeld { .. } => "freeze_held",
            Event::ExtractRecorded { .. } => "extract_recorded",
            Event::EntityStarted { .. } => "entity_started",
            Event::BatchCommitted { .. } => "batch_committed",
            Event::EntityFinished { .. } => "entity_finished",
            Event::CheckRecorded { .. } => "check_recorded",
            Event::GateOpened { .. } => "gate_opened",
            Event::SignOffRecorded { .. } => "sign_off_recorded",
            Event::SignOffRefused { .. } => "sign_off_refused",
            Event::GateDecided { .. } => "gate_decided",
            Event::RetryScheduled { .. } => "retry_scheduled",
            Event::RunResumed { .. } => "run_resumed",
            Event::ForecastBasis { .. } => "forecast_basis",
            Event::WindowWarning { .. } => "window_warning",
            Event::WindowExceeded { .. } => "window_exceeded",
            Event::RollbackStarted { .. } => "rollback_started",
            Event::RollbackFinished { .. } => "rollback_finished",
            Event::RunFinished { .. } => "run_finished",
            Event::NotificationDelivered { .. } => "notification_delivered",
            Event::NotificationFailed { .. } => "notification_failed",
            Event::LeaseTakenOver { .. } => "lease_taken_over",
        }
    }
}

/// A journaled event with its place in the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub seq: i64,
    pub run_id: String,
    /// UTC RFC 3339.
    pub ts: String,
    pub event: Event,
    pub prev_hash: String,
    pub hash: String,
}

/// Live, lossy progress (latest value wins): sent on a `watch`, never journaled.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityProgress {
    pub phase: Option<Phase>,
    pub entity: String,
    pub expected: u64,
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    pub loaded: u64,
    /// Seconds since the entity started.
    pub elapsed_secs: f64,
    pub done: bool,
}

pub type ProgressSnapshot = Vec<EntityProgress>;

#[cfg(test)]
mod money_tests {
    use super::*;

    #[test]
    fn money_rejected_is_every_nonzero_currency_sum_of_rejected_rows() {
        let invoices: BTreeMap<String, String> = [
            ("valid.amount.EUR", "20916456.73"),
            ("rejected.amount.EUR", "1234.50"),
            ("rejected.amount.USD", "0.00"),
            ("rejected.amount.CHF", "-12.00"),
            ("rejected.weight", "99"),
            ("fingerprint.all", "ab"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let none = BTreeMap::new();
        let sums = BTreeMap::from([("invoices", &invoices), ("people", &none)]);
        let got: Vec<(String, String, String)> = MoneyRejected::from_sums(&sums)
            .into_iter()
            .map(|m| (m.field, m.currency, m.amount))
            .collect();
        assert_eq!(
            got,
            vec![
                ("amount".into(), "CHF".into(), "-12.00".into()),
                ("amount".into(), "EUR".into(), "1234.50".into()),
            ]
        );
    }

    #[test]
    fn evidence_without_money_serializes_as_before() {
        let json = serde_json::to_string(&GateEvidence::default()).unwrap();
        assert!(!json.contains("money_rejected"), "{json}");
        let back: GateEvidence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, GateEvidence::default());
    }
}
