//! The one read side of the journal: [`RunView`] folds a run's records, in order, into the
//! state everyone reads — the lead's console, `cutover watch`, the summary, the window
//! forecast and resume. [`RunView::apply`] is the only place records are interpreted; the
//! readers ask the view, never the records.
//!
//! Pure: no I/O, no clock. Live progress (never journaled) is laid over `entities` by the
//! console; the journal's `EntityFinished` always has the last word.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;

use crate::engine::pipeline::ResumeFrom;
use crate::journal::Head;
use crate::journal::events::{
    CheckResult, Decision, EntityCounts, EnvInfo, Event, ExtractFile, GateEvidence, Outcome, Phase,
    Record, RunMode, StepStatus,
};
use crate::journal::lease::Holder;
use crate::runbook::format::StepKind;
use crate::window::WindowModel;

#[cfg(test)]
mod tests;

pub use crate::words::StepState;

#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub id: String,
    pub kind: StepKind,
    pub title: String,
    pub planned_secs: Option<u64>,
    pub state: StepState,
    pub started_at: Option<DateTime<Utc>>,
    /// Set when the step finished (from `StepFinished.duration_ms`).
    pub duration_ms: Option<u64>,
    pub message: String,
}

impl StepRow {
    /// Actual seconds: final duration, or time since start while it runs.
    pub fn actual_secs(&self, now: Option<DateTime<Utc>>) -> Option<u64> {
        if let Some(ms) = self.duration_ms {
            return Some(ms / 1000);
        }
        match (self.started_at, now) {
            (Some(start), Some(now)) => Some((now - start).num_seconds().max(0) as u64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityRow {
    pub entity: String,
    pub phase: Option<Phase>,
    pub table: String,
    pub expected: u64,
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    pub loaded: u64,
    pub elapsed_secs: f64,
    pub done: bool,
    /// Final counts from `EntityFinished`.
    pub counts: Option<EntityCounts>,
    pub reject_file: Option<String>,
}

impl EntityRow {
    /// Rows read per second so far.
    pub fn rate(&self) -> Option<f64> {
        (self.elapsed_secs > 0.0 && self.read > 0).then(|| self.read as f64 / self.elapsed_secs)
    }

    /// Seconds left at the current rate, while running.
    pub fn eta_secs(&self) -> Option<u64> {
        if self.done || self.expected == 0 {
            return None;
        }
        let rate = self.rate()?;
        Some((self.expected.saturating_sub(self.read) as f64 / rate).ceil() as u64)
    }

    /// Fraction done in 0..=1 (read against expected).
    pub fn ratio(&self) -> f64 {
        if self.done {
            1.0
        } else if self.expected == 0 {
            0.0
        } else {
            (self.read as f64 / self.expected as f64).clamp(0.0, 1.0)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckRow {
    pub step: String,
    pub result: CheckResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffRow {
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub comment: String,
    /// A GO against the NO-GO recommendation.
    pub overrides: bool,
}

/// The gate that is (or was last) open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateState {
    pub gate: String,
    pub title: String,
    pub quorum: usize,
    pub roles: Vec<String>,
    pub approvers: Vec<String>,
    pub recommendation: Decision,
    pub reasons: Vec<String>,
    pub evidence_sha256: String,
    pub evidence: GateEvidence,
    pub signoffs: Vec<SignOffRow>,
    pub decided: Option<Decision>,
    /// The roles, quorums and approvers the sign-offs are counted against.
    pub rule: Option<crate::journal::events::GateRule>,
    /// This gate's sign-off records (recorded and refused), for the gate policy.
    pub sign_records: Vec<Record>,
}

impl GateState {
    pub fn is_open(&self) -> bool {
        self.decided.is_none()
    }

    /// Where the gate stands by the same policy the run applies: the count per role and
    /// each sign-off that did not count, with why. `None` for a gate journaled without
    /// its rule.
    pub fn view(&self) -> Option<crate::signoff::policy::GateView> {
        self.rule.as_ref().map(|rule| {
            crate::signoff::policy::fold(
                rule,
                &self.gate,
                &self.evidence_sha256,
                self.recommendation,
                &self.sign_records,
            )
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackState {
    pub reason: String,
    /// `(ok, message)` once finished.
    pub finished: Option<(bool, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    pub exit_code: i32,
    pub message: String,
}

/// A sign-off as journaled, with the gate it was for and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffEntry {
    /// The record's sequence number.
    pub seq: i64,
    pub gate: String,
    pub row: SignOffRow,
    pub evidence_sha256: String,
    pub at: String,
    /// It carried an SSH signature (checked against the approver's key when the runbook
    /// lists one).
    pub signed: bool,
}

/// A `StepFinished` as journaled (a resumed run may finish a step twice).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepResult {
    pub step: String,
    pub status: StepStatus,
    pub duration_ms: u64,
    pub message: String,
}

/// An `EntityFinished` as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityResult {
    pub counts: EntityCounts,
    pub reject_file: String,
    pub sums: BTreeMap<String, String>,
    pub duration_ms: u64,
}

/// The run's start, as `RunStarted` says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunInfo {
    pub runbook_path: String,
    pub runbook_sha256: String,
    pub tool_version: String,
    pub artifacts_dir: String,
    pub vars: BTreeMap<String, String>,
    /// The `RunStarted` record's time.
    pub started: String,
    /// The window's end as written (RFC 3339).
    pub window_end: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    pub env: String,
    pub path: String,
    pub sha256: String,
    pub bytes: u64,
    pub snapshot: BTreeMap<String, String>,
}

/// A freeze as planned or applied: what it took away, so a rollback can give it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FreezeInfo {
    pub env: String,
    pub method: String,
    pub revoked: BTreeMap<String, String>,
    /// Empty while only planned.
    pub watermark: BTreeMap<String, String>,
    pub applied: bool,
}

/// Production closed to its users, as journaled: who could use it before (what reopening
/// gives back).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedInfo {
    pub env: String,
    pub acl: String,
    pub held: BTreeMap<String, String>,
}

/// Rows of one entity in one phase that committed batches hold: where a resumed pipeline
/// continues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    pub batches: u64,
    pub loaded: u64,
    pub last_line: u64,
    /// Rows the database refused in those batches: (line, message), in journal order.
    pub refused: Vec<(u64, String)>,
}

impl Checkpoint {
    pub fn resume_from(&self) -> ResumeFrom {
        ResumeFrom {
            last_line: self.last_line,
            batches: self.batches,
            loaded: self.loaded,
            refused: self.refused.iter().cloned().collect::<HashMap<_, _>>(),
        }
    }
}

/// A step skipped on request, as journaled: who asked and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkipEntry {
    pub step: String,
    pub name: String,
    pub reason: String,
    pub at: String,
}

/// A window warning as journaled: the projection and the point of no return as they were.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowWarningEntry {
    pub at: String,
    pub projected_finish: String,
    pub window_end: String,
    pub point_of_no_return: String,
}

/// A take-over of the run's lease, as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Takeover {
    pub previous: Holder,
    pub holder: Holder,
    pub why: String,
}

/// One run, as its journal tells it so far.
#[derive(Debug, Clone, Default)]
pub struct RunView {
    pub run_id: Option<String>,
    pub mode: Option<RunMode>,
    pub runbook_name: String,
    pub run: Option<RunInfo>,
    pub environments: Vec<EnvInfo>,
    pub window_end: Option<DateTime<Utc>>,
    /// Steps in runbook order with their state and planned/actual times.
    pub steps: Vec<StepRow>,
    /// Every `StepFinished`, in journal order.
    pub step_results: Vec<StepResult>,
    /// The entities of the pipeline step that runs (or ran last), in the order they started.
    pub entities: IndexMap<String, EntityRow>,
    /// That step's phase.
    pub pipeline_phase: Option<Phase>,
    /// Final counts per phase and entity (the last `EntityFinished` of each).
    pub phases: BTreeMap<Phase, BTreeMap<String, EntityResult>>,
    /// Where each (phase, entity) stands in committed batches.
    pub checkpoints: BTreeMap<(Phase, String), Checkpoint>,
    /// Reconciliation results, in journal order.
    pub checks: Vec<CheckRow>,
    /// Every gate opened, in order; the last is the one that is (or was last) open.
    pub gates: Vec<GateState>,
    /// Every sign-off, in journal order, whichever gate it was for.
    pub sign_offs: Vec<SignOffEntry>,
    /// Sequence number of the last `StepStarted` of a validate step: sign-offs before it
    /// were given on older evidence.
    pub last_validate_seq: Option<i64>,
    pub extract: Option<(String, Vec<ExtractFile>)>,
    /// The last backup taken.
    pub backup: Option<BackupInfo>,
    /// The last freeze planned or applied (`applied` tells which).
    pub freeze: Option<FreezeInfo>,
    /// The last freeze applied.
    pub freeze_applied: Option<FreezeInfo>,
    /// Per environment, the last freeze planned (`freeze_planned`).
    pub freeze_plans: BTreeMap<String, FreezeInfo>,
    /// Environments whose freeze was applied.
    pub frozen_envs: BTreeSet<String>,
    /// Every freeze planned or applied, in journal order.
    pub freezes: Vec<FreezeInfo>,
    /// Environments whose freeze was held after a NO-GO and not reopened since.
    pub freezes_held: BTreeSet<String>,
    /// Every closing of production to its users, in journal order.
    pub closures: Vec<ClosedInfo>,
    /// A backup step has started (production is closed to its users from there on).
    pub backup_started: bool,
    /// A load step has started.
    pub load_started: bool,
    /// `Some` once a validate finished; `Some(true)` once a gate decided GO after it.
    pub go_after_validate: Option<bool>,
    /// The validate step that started last (see `last_validate_seq`).
    pub last_validate_step: Option<String>,
    /// That validate's checks, as journaled: what an approver signs (see [`RunView::evidence`]).
    pub validate_checks: Vec<crate::signoff::evidence::JournaledCheck>,
    /// Sign-off records (recorded and refused, any gate) since the last validate started,
    /// or since the run began: what the gate policy counts.
    pub sign_records_since_validate: Vec<Record>,
    /// Environments backed up.
    pub backed_up: BTreeSet<String>,
    /// Steps whose shell command exited 0.
    pub commands_ok: BTreeSet<String>,
    /// A load has started and no successful rollback took its rows back out since.
    pub production_touched: bool,
    pub rollback: Option<RollbackState>,
    /// The `RollbackStarted` record's time.
    pub rollback_started_at: Option<String>,
    pub window_exceeded: bool,
    /// The `WindowExceeded` record's time.
    pub window_exceeded_at: Option<String>,
    /// Every `WindowWarning`, in journal order.
    pub window_warnings: Vec<WindowWarningEntry>,
    /// Every `StepSkipped`, in journal order.
    pub skips: Vec<SkipEntry>,
    /// Steps `RunResumed` listed as done, at the last resume.
    pub resumed_completed: Option<Vec<String>>,
    pub takeovers: Vec<Takeover>,
    pub finished: Option<Finished>,
    /// The `RunFinished` record's time.
    pub finished_at: Option<String>,
    /// The window forecast's own tracking of the same records.
    pub window: WindowModel,
    /// The last record applied.
    pub head: Option<Head>,
    /// Time of the newest record.
    pub last_ts: Option<DateTime<Utc>>,
}

pub fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl RunView {
    pub fn new() -> RunView {
        RunView::default()
    }

    /// The view of a run's records, in order.
    pub fn of(records: &[Record]) -> RunView {
        let mut v = RunView::new();
        for r in records {
            v.apply(r);
        }
        v
    }

    /// The gate that is (or was last) open.
    pub fn gate(&self) -> Option<&GateState> {
        self.gates.last()
    }

    /// The gate, if one is open and still waiting for its decision.
    pub fn open_gate(&self) -> Option<&GateState> {
        self.gate().filter(|g| g.is_open())
    }

    pub fn production_env(&self) -> Option<&EnvInfo> {
        self.environments.iter().find(|e| e.production)
    }

    pub fn step(&self, id: &str) -> Option<&StepRow> {
        self.steps.iter().find(|s| s.id == id)
    }

    fn step_mut(&mut self, id: &str) -> Option<&mut StepRow> {
        self.steps.iter_mut().find(|s| s.id == id)
    }

    /// The journaled plan or application of the freeze of `env`, the latest.
    pub fn freeze_of(&self, env: &str) -> Option<&FreezeInfo> {
        self.freeze.as_ref().filter(|f| f.env == env)
    }

    /// Where the pipeline of `entity` in `phase` continues, if batches were committed.
    pub fn checkpoint(&self, phase: Phase, entity: &str) -> Option<ResumeFrom> {
        self.checkpoints
            .get(&(phase, entity.to_string()))
            .map(Checkpoint::resume_from)
    }

    /// Take the next record of the run.
    pub fn apply(&mut self, rec: &Record) {
        self.window.apply(rec);
        let ts = parse_ts(&rec.ts);
        if let Some(t) = ts
            && self.last_ts.is_none_or(|n| t > n)
        {
            self.last_ts = Some(t);
        }
        self.head = Some(Head {
            seq: rec.seq,
            hash: rec.hash.clone(),
        });
        match &rec.event {
            Event::RunStarted {
                run_id,
                mode,
                runbook_path,
                runbook_name,
                runbook_sha256,
                steps,
                vars,
                tool_version,
                artifacts_dir,
                environments,
                window_end,
            } => {
                self.run_id = Some(run_id.clone());
                self.mode = Some(*mode);
                self.runbook_name = runbook_name.clone();
                self.environments = environments.clone();
                self.window_end = window_end.as_deref().and_then(parse_ts);
                self.run = Some(RunInfo {
                    runbook_path: runbook_path.clone(),
                    runbook_sha256: runbook_sha256.clone(),
                    tool_version: tool_version.clone(),
                    artifacts_dir: artifacts_dir.clone(),
                    vars: vars.clone(),
                    started: rec.ts.clone(),
                    window_end: window_end.clone(),
                });
                self.steps = steps
                    .iter()
                    .map(|s| StepRow {
                        id: s.id.clone(),
                        kind: s.kind,
                        title: s.title.clone(),
                        planned_secs: s.planned_secs,
                        state: StepState::Pending,
                        started_at: None,
                        duration_ms: None,
                        message: String::new(),
                    })
                    .collect();
            }
            Event::StepStarted { step } => {
                match self.step(step).map(|s| s.kind) {
                    Some(StepKind::Validate) => {
                        self.last_validate_seq = Some(rec.seq);
                        self.last_validate_step = Some(step.clone());
                        self.validate_checks.clear();
                        self.sign_records_since_validate.clear();
                    }
                    Some(StepKind::Backup) => self.backup_started = true,
                    Some(StepKind::Load) => self.load_started = true,
                    _ => {}
                }
                if let Some(s) = self.step_mut(step) {
                    s.state = StepState::Running;
                    s.started_at = ts;
                    s.duration_ms = None;
                    // A new pipeline step: the last one's entities would read as this one's.
                    let phase = match s.kind {
                        StepKind::DryRun => Some(Phase::DryRun),
                        StepKind::Load => Some(Phase::Load),
                        _ => None,
                    };
                    if phase.is_some() {
                        self.pipeline_phase = phase;
                        self.entities.clear();
                    }
                }
            }
            Event::StepFinished {
                step,
                status,
                message,
                duration_ms,
            } => {
                if self
                    .step(step)
                    .is_some_and(|s| s.kind == StepKind::Validate)
                {
                    self.go_after_validate = Some(false);
                }
                if let Some(s) = self.step_mut(step) {
                    s.state = (*status).into();
                    s.duration_ms = Some(*duration_ms);
                    s.message = message.clone();
                }
                self.step_results.push(StepResult {
                    step: step.clone(),
                    status: *status,
                    duration_ms: *duration_ms,
                    message: message.clone(),
                });
            }
            // Its StepFinished (skipped) follows; shown at once all the same.
            Event::StepSkipped { step, name, reason } => {
                if let Some(s) = self.step_mut(step) {
                    s.state = StepState::Skipped;
                    s.duration_ms = Some(0);
                    s.message = format!("skipped by {name}: {reason}");
                }
                self.skips.push(SkipEntry {
                    step: step.clone(),
                    name: name.clone(),
                    reason: reason.clone(),
                    at: rec.ts.clone(),
                });
            }
            Event::EntityStarted {
                phase,
                entity,
                table,
                expected_rows,
            } => {
                if *phase == Phase::Load {
                    self.production_touched = true;
                }
                self.entities.insert(
                    entity.clone(),
                    EntityRow {
                        entity: entity.clone(),
                        phase: Some(*phase),
                        table: table.clone(),
                        expected: *expected_rows,
                        ..EntityRow::default()
                    },
                );
            }
            Event::BatchCommitted {
                phase,
                entity,
                rows,
                last_line,
                refused,
                ..
            } => {
                let c = self
                    .checkpoints
                    .entry((*phase, entity.clone()))
                    .or_default();
                c.batches += 1;
                c.loaded += rows;
                c.last_line = c.last_line.max(*last_line);
                c.refused
                    .extend(refused.iter().map(|x| (x.line, x.message.clone())));
                let refused_so_far = c.refused.len() as u64;
                if let Some(e) = self.entities.get_mut(entity)
                    && e.phase == Some(*phase)
                {
                    e.loaded = e.loaded.saturating_add(*rows);
                    // A journal follower (`cutover watch`) gets batches, not the reader's
                    // progress: what the batches prove is a floor of what was read, found
                    // valid and rejected so far (never "read 0 · loaded 308").
                    e.valid = e.valid.max(e.loaded);
                    e.rejected = e.rejected.max(refused_so_far);
                    e.read = e.read.max(e.loaded + refused_so_far);
                }
            }
            Event::EntityFinished {
                phase,
                entity,
                counts,
                reject_file,
                sums,
                duration_ms,
            } => {
                let e = self.entities.entry(entity.clone()).or_default();
                e.entity = entity.clone();
                e.phase = Some(*phase);
                e.read = counts.in_scope;
                e.valid = counts.valid;
                e.rejected = counts.rejected;
                e.loaded = counts.loaded;
                if e.expected == 0 {
                    e.expected = counts.in_scope;
                }
                e.elapsed_secs = *duration_ms as f64 / 1000.0;
                e.done = true;
                e.counts = Some(counts.clone());
                if !reject_file.is_empty() {
                    e.reject_file = Some(reject_file.clone());
                }
                self.phases.entry(*phase).or_default().insert(
                    entity.clone(),
                    EntityResult {
                        counts: counts.clone(),
                        reject_file: reject_file.clone(),
                        sums: sums.clone(),
                        duration_ms: *duration_ms,
                    },
                );
            }
            Event::CheckRecorded { step, result } => {
                if self.last_validate_step.as_ref() == Some(step) {
                    self.validate_checks
                        .push(crate::signoff::evidence::JournaledCheck {
                            seq: rec.seq,
                            hash: rec.hash.clone(),
                            result: result.clone(),
                        });
                }
                self.checks.push(CheckRow {
                    step: step.clone(),
                    result: result.clone(),
                });
            }
            Event::GateOpened {
                gate,
                title,
                quorum,
                roles,
                approvers,
                recommendation,
                reasons,
                evidence_sha256,
                evidence,
                rule,
            } => {
                // Reopened on the same evidence (a resumed run): its sign-offs still count.
                let (signoffs, sign_records) = match self.gates.last() {
                    Some(g) if g.gate == *gate && g.evidence_sha256 == *evidence_sha256 => {
                        (g.signoffs.clone(), g.sign_records.clone())
                    }
                    _ => (Vec::new(), Vec::new()),
                };
                self.gates.push(GateState {
                    evidence: evidence.clone(),
                    gate: gate.clone(),
                    title: title.clone(),
                    quorum: *quorum,
                    roles: roles.clone(),
                    approvers: approvers.clone(),
                    recommendation: *recommendation,
                    reasons: reasons.clone(),
                    evidence_sha256: evidence_sha256.clone(),
                    signoffs,
                    decided: None,
                    rule: rule.clone(),
                    sign_records,
                });
                if let Some(s) = self
                    .steps
                    .iter_mut()
                    .find(|s| s.state == StepState::Running && s.kind == StepKind::SignOff)
                {
                    s.state = StepState::WaitingSignOff;
                }
            }
            Event::SignOffRecorded {
                gate,
                name,
                role,
                decision,
                comment,
                evidence_sha256,
                overrides,
                signature,
            } => {
                let row = SignOffRow {
                    name: name.clone(),
                    role: role.clone(),
                    decision: *decision,
                    comment: comment.clone(),
                    overrides: *overrides,
                };
                self.sign_records_since_validate.push(rec.clone());
                // The open gate's own list; a sign-off for another gate is only kept below.
                if let Some(g) = self.gates.last_mut().filter(|g| g.gate == *gate) {
                    g.signoffs.push(row.clone());
                    g.sign_records.push(rec.clone());
                }
                self.sign_offs.push(SignOffEntry {
                    seq: rec.seq,
                    gate: gate.clone(),
                    row,
                    evidence_sha256: evidence_sha256.clone(),
                    at: rec.ts.clone(),
                    signed: signature.is_some(),
                });
            }
            Event::SignOffRefused { gate, .. } => {
                self.sign_records_since_validate.push(rec.clone());
                if let Some(g) = self.gates.last_mut().filter(|g| g.gate == *gate) {
                    g.sign_records.push(rec.clone());
                }
            }
            Event::GateDecided { gate, decision } => {
                if *decision == Decision::Go
                    && let Some(go) = &mut self.go_after_validate
                {
                    *go = true;
                }
                if let Some(g) = self.gates.iter_mut().rev().find(|g| g.gate == *gate) {
                    g.decided = Some(*decision);
                }
                for s in &mut self.steps {
                    if s.state == StepState::WaitingSignOff {
                        s.state = StepState::Running;
                    }
                }
            }
            Event::ExtractRecorded { manifest, files } => {
                self.extract = Some((manifest.clone(), files.clone()));
            }
            Event::BackupTaken {
                env,
                path,
                sha256,
                bytes,
                snapshot,
            } => {
                self.backed_up.insert(env.clone());
                self.backup = Some(BackupInfo {
                    env: env.clone(),
                    path: path.clone(),
                    sha256: sha256.clone(),
                    bytes: *bytes,
                    snapshot: snapshot.clone(),
                });
            }
            Event::FreezePlanned {
                env,
                method,
                revoked,
            } => {
                let f = FreezeInfo {
                    env: env.clone(),
                    method: method.clone(),
                    revoked: revoked.clone(),
                    watermark: BTreeMap::new(),
                    applied: false,
                };
                self.freeze_plans.insert(env.clone(), f.clone());
                self.freezes.push(f.clone());
                self.freeze = Some(f);
            }
            Event::FreezeApplied {
                env,
                method,
                watermark,
                revoked,
            } => {
                let f = FreezeInfo {
                    env: env.clone(),
                    method: method.clone(),
                    revoked: revoked.clone(),
                    watermark: watermark.clone(),
                    applied: true,
                };
                self.frozen_envs.insert(env.clone());
                self.freezes.push(f.clone());
                self.freeze = Some(f.clone());
                self.freeze_applied = Some(f);
            }
            Event::CommandRan {
                step,
                exit_code: Some(0),
                ..
            } => {
                self.commands_ok.insert(step.clone());
            }
            Event::RollbackStarted { reason } => {
                self.rollback = Some(RollbackState {
                    reason: reason.clone(),
                    finished: None,
                });
                self.rollback_started_at = Some(rec.ts.clone());
            }
            Event::RollbackFinished { ok, message } => {
                if *ok {
                    self.production_touched = false;
                }
                let rb = self.rollback.get_or_insert_with(|| RollbackState {
                    reason: String::new(),
                    finished: None,
                });
                rb.finished = Some((*ok, message.clone()));
            }
            Event::WindowExceeded { .. } => {
                self.window_exceeded = true;
                self.window_exceeded_at = Some(rec.ts.clone());
            }
            Event::WindowWarning {
                projected_finish,
                window_end,
                point_of_no_return,
            } => self.window_warnings.push(WindowWarningEntry {
                at: rec.ts.clone(),
                projected_finish: projected_finish.clone(),
                window_end: window_end.clone(),
                point_of_no_return: point_of_no_return.clone(),
            }),
            Event::RunResumed { completed, .. } => {
                self.resumed_completed = Some(completed.clone());
            }
            Event::LeaseTakenOver {
                previous,
                holder,
                why,
            } => self.takeovers.push(Takeover {
                previous: previous.clone(),
                holder: holder.clone(),
                why: why.clone(),
            }),
            Event::RunFinished {
                outcome,
                exit_code,
                message,
            } => {
                self.finished = Some(Finished {
                    outcome: *outcome,
                    exit_code: *exit_code,
                    message: message.clone(),
                });
                self.finished_at = Some(rec.ts.clone());
            }
            Event::ProductionClosed { env, acl, held } => self.closures.push(ClosedInfo {
                env: env.clone(),
                acl: acl.clone(),
                held: held.clone(),
            }),
            Event::FreezeHeld { env, .. } => {
                self.freezes_held.insert(env.clone());
            }
            Event::EnvReopened {
                env,
                production: false,
                ..
            } => {
                self.freezes_held.remove(env);
            }
            Event::CommandRan { .. }
            | Event::EnvReopened { .. }
            | Event::RetryScheduled { .. }
            | Event::ForecastBasis { .. }
            | Event::NotificationDelivered { .. }
            | Event::NotificationFailed { .. } => {}
        }
    }

    /// Steps finished (passed, warned or skipped), in the order they first finished: a
    /// resumed run does not run them again.
    pub fn completed_steps(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in &self.step_results {
            if matches!(
                r.status,
                StepStatus::Passed | StepStatus::Warned | StepStatus::Skipped
            ) && !out.contains(&r.step)
            {
                out.push(r.step.clone());
            }
        }
        out
    }

    /// The reason of a rollback that started and has not finished.
    pub fn unfinished_rollback(&self) -> Option<&str> {
        self.rollback
            .as_ref()
            .filter(|r| r.finished.is_none())
            .map(|r| r.reason.as_str())
    }

    /// What an approver signs now: the checks of the last validate, as journaled; the same
    /// as [`crate::signoff::evidence::of`] over the run's records.
    pub fn evidence(&self) -> crate::signoff::evidence::Evidence {
        crate::signoff::evidence::Evidence {
            run_id: self.run_id.clone().unwrap_or_default(),
            validate_step: self.last_validate_step.clone(),
            validate_seq: self.last_validate_seq,
            checks: self.validate_checks.clone(),
        }
    }

    /// The last closing of production journaled for `env`.
    pub fn closed(&self, env: &str) -> Option<&ClosedInfo> {
        self.closures.iter().rfind(|c| c.env == env)
    }

    /// The freeze of `env` held after a NO-GO and not reopened since: the last one planned
    /// or applied.
    pub fn held_freeze(&self, env: &str) -> Option<&FreezeInfo> {
        if !self.freezes_held.contains(env) {
            return None;
        }
        self.freezes.iter().rfind(|f| f.env == env)
    }

    /// The outcome so far: `None` while the run has not finished.
    pub fn outcome(&self) -> Option<Outcome> {
        self.finished.as_ref().map(|f| f.outcome)
    }

    /// Evidence of the gate named `gate`, the latest opened.
    pub fn gate_evidence(&self, gate: &str) -> Option<&GateEvidence> {
        self.gates
            .iter()
            .rev()
            .find(|g| g.gate == gate)
            .map(|g| &g.evidence)
    }

    /// The decision of the last gate opened, once taken.
    pub fn gate_decision(&self) -> Option<Decision> {
        self.gate().and_then(|g| g.decided)
    }

    /// Rejected rows per entity of the latest phase that ran (the load if any, else the
    /// dry run).
    pub fn rejects_summary(&self) -> BTreeMap<String, u64> {
        self.latest_phase()
            .map(|m| {
                m.iter()
                    .map(|(e, r)| (e.clone(), r.counts.rejected))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The final counts of the latest phase that ran: the production load if any, else the
    /// dry run.
    pub fn latest_phase(&self) -> Option<&BTreeMap<String, EntityResult>> {
        self.phases
            .get(&Phase::Load)
            .or_else(|| self.phases.get(&Phase::DryRun))
    }

    /// A check result, for callers that hold only the view.
    pub fn checks_of(&self, step: &str) -> impl Iterator<Item = &CheckResult> {
        self.checks
            .iter()
            .filter(move |c| c.step == step)
            .map(|c| &c.result)
    }
}
