//! The executor: a state machine over the runbook's steps. It owns the journal writes;
//! everything it learns goes into the journal first and is forwarded to the console after.

pub mod command;
mod failsafe;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::control::{Command, SignOff, Skip};
use crate::db::admin::{self, Backup, Freeze};
use crate::db::{Db, display_env};
use crate::engine::pipeline::{BatchObserver, EntityJob, Retry, run_entity};
use crate::engine::rules::{Compiled, ScopeKeys};
use crate::journal::Journal;
use crate::journal::events::*;
use crate::reconcile::{EntityEvidence, run_checks};
use crate::runbook::format::{Check, StepKind};
use crate::runbook::{Plan, lint::parse_duration};
use crate::runview::RunView;
use crate::runview::gate::gate_decision;
use crate::sinks::{Sink, TableSpec};
use crate::sources::csv::{count_records, sha256_file};

/// Process exit codes (documented in `--help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const FAILURE: i32 = 1;
    pub const INVALID: i32 = 2;
    pub const RECONCILIATION_FAILED: i32 = 3;
    pub const WAITING_AT_GATE: i32 = 4;
    pub const NO_GO: i32 = 5;
    pub const ROLLED_BACK: i32 = 6;
    /// The cutover window ran out; stopped at a safe point for the operator to decide.
    pub const WINDOW_EXCEEDED: i32 = 7;
    /// The preflight found an environment not ready; nothing was changed.
    pub const PREFLIGHT_FAILED: i32 = 10;
    pub const INTERRUPTED: i32 = 130;
}

pub struct RunOptions {
    pub mode: RunMode,
    /// Stop after this step id.
    pub until: Option<String>,
    /// Sign-offs given up front (`--sign-off`), offered at every gate in order.
    pub sign_offs: Vec<SignOff>,
    /// A person is at the console: wait at gates instead of stopping.
    pub interactive: bool,
    pub artifacts: Option<PathBuf>,
    /// What a run without a console does once the window has run out.
    pub on_window_exceeded: OnWindowExceeded,
    /// Steps to skip (`--skip`), checked by `check_skip` before the run starts.
    pub skips: Vec<Skip>,
    /// After a NO-GO, keep the legacy frozen (to fix data and rehearse again) instead of
    /// reopening it; the reason is journaled (`--hold-freeze REASON`).
    pub hold_freeze: Option<String>,
}

/// Whether a run of `mode` steps through a step of this kind (a rehearsal stops at validate).
fn runs_in(mode: RunMode, kind: StepKind) -> bool {
    mode == RunMode::Run
        || matches!(
            kind,
            StepKind::Extract | StepKind::DryRun | StepKind::Validate
        )
}

/// Whether step `step` of `plan` may be skipped in a run of `mode`, asked by `name` for
/// `reason`; `Err` says why not. Whether it has started already is the executor's to know.
pub fn check_skip(
    plan: &Plan,
    mode: RunMode,
    step: &str,
    name: &str,
    reason: &str,
) -> Result<(), String> {
    let Some(s) = plan.rb.steps.iter().find(|s| s.id == step) else {
        return Err(format!(
            "no step '{step}' in the runbook (steps: {})",
            plan.step_ids()
        ));
    };
    let kind = s.kind.name();
    if let Some(why) = s.kind.skip_refused() {
        return Err(format!("step {step} ({kind}) cannot be skipped: {why}"));
    }
    if !runs_in(mode, s.kind) {
        return Err(format!("step {step} ({kind}) is not part of a rehearsal"));
    }
    if name.trim().is_empty() || reason.trim().is_empty() {
        return Err(format!(
            "skipping step {step} needs the name of who asks and a reason; both are journaled"
        ));
    }
    Ok(())
}

/// Once the cutover window has run out the rollback is proposed; somebody must decide.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum OnWindowExceeded {
    /// The console asks (the default with a console); headless: the same as `stop`.
    #[default]
    Ask,
    /// Stop at the next safe point (exit 7); `cutover rollback` or `cutover run` decides.
    Stop,
    /// The operator confirmed in advance: run the rollback plan at the next safe point.
    Rollback,
    /// Carry on past the window (e.g. the business extended it).
    Continue,
}

/// Why a run cannot be resumed (printed as is; exit code 2).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ResumeRefused(pub String);

/// Asked for at a safe point inside a load (between batches): the batch is committed and
/// journaled, so stopping here loses nothing.
#[derive(Debug, thiserror::Error)]
enum Halt {
    #[error("interrupted by the operator")]
    Abort,
    #[error("rollback asked by the operator: {0}")]
    Rollback(String),
    #[error("{0}")]
    Window(String),
}

impl From<Halt> for Stop {
    fn from(h: Halt) -> Stop {
        match h {
            Halt::Abort => Stop::Outcome(Outcome::Failed, exit::INTERRUPTED, h.to_string()),
            Halt::Rollback(reason) => Stop::Rollback(reason),
            Halt::Window(m) => Stop::Outcome(Outcome::Failed, exit::WINDOW_EXCEEDED, m),
        }
    }
}

pub struct Channels {
    pub records: Option<mpsc::UnboundedSender<Record>>,
    pub progress: watch::Sender<ProgressSnapshot>,
    pub commands: mpsc::Receiver<Command>,
}

pub struct Finished {
    pub run_id: String,
    pub outcome: Outcome,
    pub exit_code: i32,
    pub run_dir: PathBuf,
}

/// A step ended in a way that changes the course of the run.
enum Stop {
    Outcome(Outcome, i32, String),
    Failed(anyhow::Error),
    /// The operator confirmed the rollback (by hand, or when the window ran out).
    Rollback(String),
    /// The run cannot go on safely (the legacy changed after the freeze): the step failed
    /// and the rollback plan runs.
    RollbackPlan(String),
}

impl From<anyhow::Error> for Stop {
    fn from(e: anyhow::Error) -> Self {
        Stop::Failed(e)
    }
}

struct StepDone {
    status: StepStatus,
    message: String,
}

fn done(status: StepStatus, message: impl Into<String>) -> Result<StepDone, Stop> {
    Ok(StepDone {
        status,
        message: message.into(),
    })
}

pub struct Executor {
    plan: Arc<Plan>,
    journal: Journal,
    run_id: String,
    run_dir: PathBuf,
    records_tx: Option<mpsc::UnboundedSender<Record>>,
    progress: watch::Sender<ProgressSnapshot>,
    /// Polled between steps and batches (the gate waits on it), so it needs a lock.
    commands: tokio::sync::Mutex<mpsc::Receiver<Command>>,
    opts: RunOptions,
    /// The journal of the run being resumed (empty for a new run).
    prior: Vec<Record>,
    /// What those records say: resume decisions read it.
    prior_view: RunView,
    /// Follows every record (the window forecast: projected finish, point of no return).
    view: std::sync::Mutex<RunView>,
    /// WindowWarning / WindowExceeded already journaled by this process.
    window_warned: std::sync::atomic::AtomicBool,
    window_exceeded: std::sync::atomic::AtomicBool,
    backup: Option<Backup>,
    /// The legacy environment's freeze, so a rollback can undo exactly it.
    frozen: Option<(String, Freeze)>,
    /// Production was closed to its users (its backup step started).
    prod_closed: bool,
    /// Who could use production before it was closed: what reopening gives back.
    closed: Option<crate::db::admin::Privileges>,
    /// The reason to keep the legacy frozen after a NO-GO (flag, or the console).
    hold_freeze: std::sync::Mutex<Option<String>>,
    load_started: bool,
    offered: usize,
    /// Skips asked for steps not yet started, by step id: (who, why). Taken when the run
    /// reaches the step; a lock because commands are read behind `&self`.
    skips: std::sync::Mutex<BTreeMap<String, (String, String)>>,
    /// Steps this process started or skipped: too late to skip them.
    started: std::sync::Mutex<HashSet<String>>,
}

fn new_run_id() -> String {
    let now = chrono::Utc::now();
    let nanos = now.timestamp_subsec_nanos() ^ std::process::id();
    format!("{}-{:04x}", now.format("%Y%m%dT%H%M%SZ"), nanos & 0xffff)
}

impl Executor {
    pub fn new(
        plan: Plan,
        journal: Journal,
        journal_dir: &Path,
        ch: Channels,
        opts: RunOptions,
    ) -> Executor {
        let run_id = new_run_id();
        let base = opts
            .artifacts
            .clone()
            .unwrap_or_else(|| journal_dir.join("runs"));
        Executor {
            run_dir: base.join(&run_id),
            plan: Arc::new(plan),
            journal,
            run_id,
            records_tx: ch.records,
            progress: ch.progress,
            commands: tokio::sync::Mutex::new(ch.commands),
            prior: Vec::new(),
            prior_view: RunView::default(),
            view: Default::default(),
            window_warned: Default::default(),
            window_exceeded: Default::default(),
            backup: None,
            frozen: None,
            prod_closed: false,
            closed: None,
            hold_freeze: std::sync::Mutex::new(opts.hold_freeze.clone()),
            load_started: false,
            offered: 0,
            skips: std::sync::Mutex::new(
                opts.skips
                    .iter()
                    .map(|k| (k.step.clone(), (k.name.clone(), k.reason.clone())))
                    .collect(),
            ),
            started: Default::default(),
            opts,
        }
    }

    /// Continue the run whose journal is `records`: finished steps are not repeated, the
    /// backup and freeze are the ones it took, a load continues after its last committed
    /// batch. Refused when the runbook or the extract changed since the run began.
    pub fn resume(
        plan: Plan,
        journal: Journal,
        ch: Channels,
        opts: RunOptions,
        records: Vec<Record>,
    ) -> Result<Executor, ResumeRefused> {
        let mut e = Executor::adopt(plan, journal, ch, opts, records)?;
        let Some(started) = e.prior_view.run.clone() else {
            unreachable!("adopt checked the first record");
        };
        let runbook_sha256 = &started.runbook_sha256;
        if *runbook_sha256 != e.plan.sha256 {
            return Err(ResumeRefused(format!(
                "run {} cannot be resumed: the runbook {} changed since the run began \
                 (sha256 {}… then, {}… now). Put the runbook back as it was to resume, or \
                 roll the run back (`cutover rollback`) and start a new run with --fresh",
                e.run_id,
                e.plan.path.display(),
                &runbook_sha256[..12.min(runbook_sha256.len())],
                &e.plan.sha256[..12]
            )));
        }
        {
            let vars = &started.vars;
            let now: BTreeMap<String, String> = e
                .plan
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), crate::db::redact_url(v)))
                .collect();
            if let Some((k, v)) = vars.iter().find(|(k, v)| now.get(*k) != Some(*v)) {
                return Err(ResumeRefused(format!(
                    "run {} cannot be resumed: variable {k} was '{v}' when the run began and is '{}' now; \
                     pass the same --var values to resume",
                    e.run_id,
                    now.get(k).map(String::as_str).unwrap_or("(unset)")
                )));
            }
        }
        {
            if let Some((_, files)) = &e.prior_view.extract {
                for f in files {
                    let now = sha256_file(Path::new(&f.path)).map(|(s, _)| s);
                    if now.as_ref().ok() != Some(&f.sha256) {
                        return Err(ResumeRefused(format!(
                            "run {} cannot be resumed: the extract file {} changed since the run \
                             began ({}). The rows already loaded came from the recorded file; put \
                             it back, or roll the run back (`cutover rollback`) and start a new run \
                             with --fresh",
                            e.run_id,
                            f.path,
                            match now {
                                Ok(s) =>
                                    format!("sha256 {}… then, {}… now", &f.sha256[..12], &s[..12]),
                                Err(err) => explain(&err),
                            }
                        )));
                    }
                }
            }
        }
        e.opts.mode = RunMode::Run;
        Ok(e)
    }

    /// Take over an earlier run from its journal: its id, folder, backup and freeze.
    pub fn adopt(
        plan: Plan,
        journal: Journal,
        ch: Channels,
        opts: RunOptions,
        records: Vec<Record>,
    ) -> Result<Executor, ResumeRefused> {
        let Some(Event::RunStarted {
            run_id,
            artifacts_dir,
            ..
        }) = records.first().map(|r| &r.event)
        else {
            return Err(ResumeRefused(
                "the journal holds no start record for that run".into(),
            ));
        };
        // Environments that were databases when the run began (not CSV files).
        let databases: HashSet<String> = match records.first().map(|r| &r.event) {
            Some(Event::RunStarted { environments, .. }) => environments
                .iter()
                .filter(|e| !e.database.is_empty() || e.display != "CSV extract files")
                .map(|e| e.name.clone())
                .collect(),
            _ => HashSet::new(),
        };
        let mut e = Executor::new(plan, journal, Path::new("."), ch, opts);
        e.run_id = run_id.clone();
        e.run_dir = PathBuf::from(artifacts_dir);
        e.adopt_closed(&records);
        for r in &records {
            match &r.event {
                Event::BackupTaken {
                    path,
                    sha256,
                    bytes,
                    snapshot,
                    ..
                } => {
                    e.backup = Some(Backup {
                        path: PathBuf::from(path),
                        sha256: sha256.clone(),
                        bytes: *bytes,
                        snapshot: snapshot.clone(),
                        check: "as journaled".into(),
                    });
                }
                // Planned and not applied: killed inside the freeze, perhaps after the
                // revoke. A rollback gives back what was planned (a grant of what is still
                // held changes nothing); `freeze_applied` replaces it once written.
                Event::FreezePlanned {
                    env,
                    method,
                    revoked,
                }
                | Event::FreezeApplied {
                    env,
                    method,
                    revoked,
                    ..
                } if e.plan.env(env).is_some() || databases.contains(env) => {
                    e.frozen = Some((
                        env.clone(),
                        Freeze {
                            method: method.clone(),
                            revoked: revoked.clone(),
                        },
                    ));
                }
                Event::StepStarted { step } if e.step_kind(step) == Some(StepKind::Load) => {
                    e.load_started = true;
                }
                _ => {}
            }
        }
        e.prior_view = RunView::of(&records);
        *e.view.lock().unwrap_or_else(|p| p.into_inner()) = e.prior_view.clone();
        e.prior = records;
        Ok(e)
    }

    /// Run the rollback plan of an adopted run now (`cutover rollback`), and close it.
    pub async fn rollback_now(mut self, reason: &str) -> Result<Finished> {
        let result = self.rollback(reason).await;
        self.finish(result).await
    }

    /// Journal the end of the run.
    async fn finish(
        &self,
        (outcome, exit_code, message): (Outcome, i32, String),
    ) -> Result<Finished> {
        self.emit(Event::RunFinished {
            outcome,
            exit_code,
            message,
        })
        .await?;
        Ok(Finished {
            run_id: self.run_id.clone(),
            outcome,
            exit_code,
            run_dir: self.run_dir.clone(),
        })
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    async fn emit(&self, event: Event) -> Result<Record> {
        crate::fault::at(true, &event).await?;
        let rec = self.journal.append(&self.run_id, &event).await?;
        self.view
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&rec);
        crate::fault::at(false, &event).await?;
        if let Event::StepStarted { step } | Event::StepSkipped { step, .. } = &event {
            lock(&self.started).insert(step.clone());
        }
        if let Some(tx) = &self.records_tx {
            // Unbounded: the engine never waits for a console that is slow to draw (a run's
            // records are thousands, not millions: one per batch, step and check). The
            // console may have gone; the journal already holds the truth.
            let _ = tx.send(rec.clone());
        }
        Ok(rec)
    }

    /// An operator command that stops the run at this safe point, if one is waiting.
    /// Skip requests on the way are noted for later.
    fn interrupted(&self) -> Option<Stop> {
        let mut rx = self.commands.try_lock().ok()?;
        loop {
            match rx.try_recv() {
                Ok(Command::Abort) => {
                    return Some(Stop::Outcome(
                        Outcome::Failed,
                        exit::INTERRUPTED,
                        "interrupted by the operator".into(),
                    ));
                }
                Ok(Command::Rollback { reason }) => return Some(Stop::Rollback(reason)),
                Ok(Command::Skip { step, name, reason }) => self.ask_skip(step, name, reason),
                Ok(Command::HoldFreeze { reason }) => *lock(&self.hold_freeze) = Some(reason),
                // A sign-off with no gate open has nowhere to go.
                Ok(Command::SignOff(_)) => {}
                Err(_) => return None,
            }
        }
    }

    /// Note a skip the console asked for; the run takes it when it reaches the step. A
    /// refused one is only logged: nothing happened that the journal should hold.
    fn ask_skip(&self, step: String, name: String, reason: String) {
        let refused = check_skip(&self.plan, self.opts.mode, &step, &name, &reason)
            .err()
            .or_else(|| {
                (lock(&self.started).contains(&step) || self.completed_steps().contains(&step))
                    .then(|| format!("step {step} has already started"))
            });
        match refused {
            Some(why) => tracing::warn!(step = %step, "skip refused: {why}"),
            None => {
                tracing::info!(step = %step, name = %name, "skip noted: {reason}");
                lock(&self.skips).insert(step, (name, reason));
            }
        }
    }

    /// Journal the skip of `step` if one was asked: `StepSkipped`, then its `StepFinished`.
    async fn skipped(&self, step: &str) -> Result<bool> {
        let Some((name, reason)) = lock(&self.skips).remove(step) else {
            return Ok(false);
        };
        let message = format!("skipped by {name}: {reason}");
        self.emit(Event::StepSkipped {
            step: step.into(),
            name,
            reason,
        })
        .await?;
        self.emit(Event::StepFinished {
            step: step.into(),
            status: StepStatus::Skipped,
            message,
            duration_ms: 0,
        })
        .await?;
        Ok(true)
    }

    pub async fn run(mut self) -> Result<Finished> {
        std::fs::create_dir_all(&self.run_dir)
            .with_context(|| format!("cannot create run folder {}", self.run_dir.display()))?;
        let plan = self.plan.clone();
        let steps: Vec<_> = plan
            .rb
            .steps
            .iter()
            .filter(|s| runs_in(self.opts.mode, s.kind))
            .cloned()
            .collect();
        if self.prior.is_empty() {
            self.start(&steps).await?;
        } else {
            self.resumed().await?;
        }
        let completed = self.completed_steps();
        let mut result: Option<(Outcome, i32, String)> = match self.unfinished_rollback() {
            Some(reason) => Some(self.rollback(&reason).await),
            None => None,
        };
        for step in &steps {
            if result.is_some() {
                break;
            }
            if completed.contains(&step.id) {
                if lock(&self.skips).remove(&step.id).is_some() {
                    tracing::warn!(step = %step.id, "skip ignored: the step finished before the interruption");
                }
                if self.opts.until.as_deref() == Some(step.id.as_str()) {
                    result = Some((
                        Outcome::StoppedAfterStep,
                        exit::OK,
                        format!("step {} had already finished (--until)", step.id),
                    ));
                }
                continue;
            }
            let halt = match self.check_window().await? {
                Some(h) => Some(h.into()),
                None => self.interrupted(),
            };
            match halt {
                Some(Stop::Rollback(reason)) => {
                    result = Some(
                        self.rollback(&format!("rollback asked by the operator: {reason}"))
                            .await,
                    );
                    break;
                }
                Some(Stop::Outcome(o, c, m)) => {
                    result = Some((o, c, m));
                    break;
                }
                _ => {}
            }
            if self.skipped(&step.id).await? {
                if self.opts.until.as_deref() == Some(step.id.as_str()) {
                    result = Some((
                        Outcome::StoppedAfterStep,
                        exit::OK,
                        format!("stopped after step {} as asked (--until)", step.id),
                    ));
                }
                continue;
            }
            self.emit(Event::StepStarted {
                step: step.id.clone(),
            })
            .await?;
            let t0 = Instant::now();
            let r = match step.kind {
                StepKind::Backup => {
                    self.backup(step.env.as_deref().unwrap_or("production"))
                        .await
                }
                StepKind::Freeze => self.freeze(step.env.as_deref().unwrap_or("legacy")).await,
                StepKind::Extract => {
                    self.extract(&step.id, step.env.as_deref().unwrap_or("legacy"))
                        .await
                }
                StepKind::DryRun => {
                    self.pipeline(
                        &step.id,
                        Phase::DryRun,
                        step.env.as_deref().unwrap_or("staging"),
                    )
                    .await
                }
                StepKind::Validate => {
                    self.validate(
                        &step.id,
                        Phase::DryRun,
                        step.env.as_deref().unwrap_or("staging"),
                    )
                    .await
                }
                StepKind::SignOff => self.gate(step.gate.as_deref().unwrap_or_default()).await,
                StepKind::Load => {
                    self.load(&step.id, step.env.as_deref().unwrap_or("production"))
                        .await
                }
                StepKind::Verify => {
                    self.validate(
                        &step.id,
                        Phase::Load,
                        step.env.as_deref().unwrap_or("production"),
                    )
                    .await
                }
                StepKind::Unfreeze => {
                    self.unfreeze(step.env.as_deref().unwrap_or("production"))
                        .await
                }
                StepKind::Command => self.command(step).await,
            };
            let ms = t0.elapsed().as_millis() as u64;
            match r {
                Ok(d) => {
                    self.emit(Event::StepFinished {
                        step: step.id.clone(),
                        status: d.status,
                        message: d.message,
                        duration_ms: ms,
                    })
                    .await?;
                }
                Err(stop) => {
                    let plan_due = matches!(stop, Stop::RollbackPlan(_));
                    let (outcome, code, msg) = match stop {
                        Stop::Outcome(o, c, m) => (o, c, m),
                        Stop::Failed(e) => (Outcome::Failed, exit::FAILURE, explain(&e)),
                        Stop::Rollback(reason) => (
                            Outcome::RolledBack,
                            exit::ROLLED_BACK,
                            format!("rollback asked by the operator: {reason}"),
                        ),
                        Stop::RollbackPlan(m) => (Outcome::RolledBack, exit::ROLLED_BACK, m),
                    };
                    self.emit(Event::StepFinished {
                        step: step.id.clone(),
                        // Stopped for the rollback the operator asked for, not by a fault.
                        status: if outcome == Outcome::RolledBack && !plan_due {
                            StepStatus::RolledBack
                        } else {
                            StepStatus::Failed
                        },
                        message: msg.clone(),
                        duration_ms: ms,
                    })
                    .await?;
                    result = Some(
                        // An interrupted run stays resumable; anything else that stops a
                        // started load takes production back to its backup.
                        if outcome == Outcome::RolledBack
                            || self.load_started
                                && code != exit::INTERRUPTED
                                && code != exit::WINDOW_EXCEEDED
                                && matches!(
                                    outcome,
                                    Outcome::Failed | Outcome::ValidationFailed | Outcome::NoGo
                                )
                        {
                            self.rollback(&msg).await
                        } else if failsafe::ends_run(outcome, code) {
                            // Ended before the load: production and the legacy go back.
                            self.fail_safe((outcome, code, msg)).await
                        } else {
                            (outcome, code, msg)
                        },
                    );
                    break;
                }
            }
            if self.opts.until.as_deref() == Some(step.id.as_str()) {
                result = Some((
                    Outcome::StoppedAfterStep,
                    exit::OK,
                    format!("stopped after step {} as asked (--until)", step.id),
                ));
                break;
            }
        }
        let result = result.unwrap_or((
            Outcome::Completed,
            exit::OK,
            match self.opts.mode {
                RunMode::Run => "cutover completed".to_string(),
                RunMode::Rehearse => "rehearsal completed".to_string(),
            },
        ));
        self.finish(result).await
    }

    async fn start(&self, steps: &[crate::runbook::format::Step]) -> Result<()> {
        let plan = self.plan.clone();
        let now = chrono::Utc::now();
        let window_end = plan.rb.window.as_ref().and_then(|w| {
            let start = w
                .start
                .as_deref()
                .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
                .map(|d| d.to_utc())
                .unwrap_or(now);
            match (&w.end, &w.duration) {
                (Some(e), _) => chrono::DateTime::parse_from_rfc3339(e)
                    .ok()
                    .map(|d| d.to_utc()),
                (None, Some(d)) => parse_duration(d)
                    .and_then(|d| chrono::Duration::from_std(d).ok())
                    .map(|d| start + d),
                _ => None,
            }
        });
        self.emit(Event::RunStarted {
            run_id: self.run_id.clone(),
            mode: self.opts.mode,
            runbook_path: plan.path.display().to_string(),
            runbook_name: plan.rb.runbook.name.clone(),
            runbook_sha256: plan.sha256.clone(),
            steps: steps
                .iter()
                .map(|s| StepInfo {
                    id: s.id.clone(),
                    kind: s.kind,
                    title: if s.title.is_empty() {
                        s.id.clone()
                    } else {
                        s.title.clone()
                    },
                    planned_secs: s
                        .planned
                        .as_deref()
                        .and_then(parse_duration)
                        .map(|d| d.as_secs()),
                })
                .collect(),
            vars: plan
                .vars
                .iter()
                .map(|(k, v)| (k.clone(), crate::db::redact_url(v)))
                .collect(),
            tool_version: env!("CARGO_PKG_VERSION").into(),
            artifacts_dir: self.run_dir.display().to_string(),
            environments: plan
                .envs
                .values()
                .map(|e| EnvInfo {
                    name: e.name.clone(),
                    display: display_env(e),
                    production: e.production,
                    database: crate::db::database_name(e),
                })
                .collect(),
            window_end: window_end.map(|d| d.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        })
        .await?;
        if window_end.is_some() && self.opts.mode == RunMode::Run {
            let rehearsal = self.last_rehearsal().await?;
            self.emit(crate::window::basis(
                &plan,
                rehearsal
                    .as_ref()
                    .map(|(id, r)| (id.as_str(), r.as_slice())),
            ))
            .await?;
        }
        Ok(())
    }

    /// The newest rehearsal of this runbook that completed: what the projection starts from.
    async fn last_rehearsal(&self) -> Result<Option<(String, Vec<Record>)>> {
        let starts = self.journal.run_starts().await?;
        for r in starts.iter().rev() {
            if let Event::RunStarted {
                run_id,
                mode: RunMode::Rehearse,
                runbook_name,
                ..
            } = &r.event
                && *runbook_name == self.plan.rb.runbook.name
            {
                let recs = self.journal.run_records(run_id).await?;
                let completed = recs.iter().any(|x| {
                    matches!(
                        x.event,
                        Event::RunFinished {
                            outcome: Outcome::Completed,
                            ..
                        }
                    )
                });
                if completed {
                    return Ok(Some((run_id.clone(), recs)));
                }
            }
        }
        Ok(None)
    }

    /// Journal a projected overrun once, and the end of the window once; then stop or roll
    /// back if the operator decided so in advance (`--on-window-exceeded`). A console asks.
    async fn check_window(&self) -> Result<Option<Halt>> {
        use std::sync::atomic::Ordering::SeqCst;
        let now = chrono::Utc::now();
        let forecast = {
            let progress = self.progress.borrow().clone();
            self.view
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .window
                .forecast(&progress, now)
        };
        let Some(f) = forecast else { return Ok(None) };
        let ts =
            |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        if f.overruns && !f.exceeded && !self.window_warned.swap(true, SeqCst) {
            self.emit(Event::WindowWarning {
                projected_finish: ts(f.projected_finish),
                window_end: ts(f.window_end),
                point_of_no_return: ts(f.point_of_no_return),
            })
            .await?;
        }
        if !f.exceeded || self.window_exceeded.swap(true, SeqCst) {
            return Ok(None);
        }
        self.emit(Event::WindowExceeded {
            window_end: ts(f.window_end),
        })
        .await?;
        let end = f.window_end.format("%Y-%m-%d %H:%M:%S UTC");
        Ok(
            match (self.opts.on_window_exceeded, self.opts.interactive) {
                (OnWindowExceeded::Continue, _) | (OnWindowExceeded::Ask, true) => None,
                (OnWindowExceeded::Rollback, _) => Some(Halt::Rollback(format!(
                    "the cutover window ended at {end} (rollback confirmed in advance with --on-window-exceeded rollback)"
                ))),
                (OnWindowExceeded::Stop | OnWindowExceeded::Ask, _) => Some(Halt::Window(format!(
                    "the cutover window ended at {end}; stopped at a safe point. Roll back with \
                 `cutover rollback RUNBOOK --confirm DATABASE --reason …`, or go on past the \
                 window with `cutover run RUNBOOK --on-window-exceeded continue`"
                ))),
            },
        )
    }

    /// Show the console where the run stood, then journal that it goes on.
    async fn resumed(&self) -> Result<()> {
        if self.opts.interactive
            && let Some(tx) = &self.records_tx
        {
            for r in &self.prior {
                // An earlier stop (at a gate, after --until) is not the end of this run.
                if !matches!(r.event, Event::RunFinished { .. }) {
                    let _ = tx.send(r.clone());
                }
            }
        }
        self.emit(Event::RunResumed {
            runbook_sha256: self.plan.sha256.clone(),
            completed: self.completed_steps().into_iter().collect(),
        })
        .await?;
        Ok(())
    }

    /// Steps the resumed run finished; they are not run again.
    fn completed_steps(&self) -> Vec<String> {
        self.prior_view.completed_steps()
    }

    /// A rollback the interruption cut short: it is finished first.
    fn unfinished_rollback(&self) -> Option<String> {
        self.prior_view.unfinished_rollback().map(str::to_string)
    }

    fn env(&self, name: &str) -> Result<&crate::runbook::ResolvedEnv> {
        self.plan
            .env(name)
            .with_context(|| format!("environment '{name}' has no URL"))
    }

    fn source_tables(&self) -> Vec<String> {
        self.plan
            .order
            .iter()
            .map(|n| {
                self.plan.rb.entities[n]
                    .source
                    .table
                    .clone()
                    .unwrap_or_else(|| n.clone())
            })
            .collect()
    }

    async fn backup(&mut self, env: &str) -> Result<StepDone, Stop> {
        // Never a second backup in one run: after the load began it would hold loaded rows.
        if let Some(b) = &self.backup
            && self.prior_view.backed_up.contains(env)
        {
            return done(
                StepStatus::Passed,
                format!(
                    "taken before the interruption: {} (sha256 {}…)",
                    b.path.display(),
                    &b.sha256[..12]
                ),
            );
        }
        let e = self.env(env)?.clone();
        // Users go first: a write between the backup and the load would be lost by a rollback.
        self.prod_closed = true;
        let closed = self.close_production(env, &e).await?;
        let b = admin::backup(&e, &self.plan.backup_dir, &format!("{env}-{}", self.run_id)).await?;
        self.emit(Event::BackupTaken {
            env: env.into(),
            path: b.path.display().to_string(),
            sha256: b.sha256.clone(),
            bytes: b.bytes,
            snapshot: b.snapshot.clone(),
        })
        .await?;
        let msg = format!(
            "{closed}; {} ({} bytes, sha256 {}…), {}; {} tables",
            b.path.display(),
            b.bytes,
            &b.sha256[..12],
            b.check,
            b.snapshot.len()
        );
        self.backup = Some(b);
        done(StepStatus::Passed, msg)
    }

    /// Rows and a content checksum per legacy source table: the freeze watermark. A
    /// privileged account the freeze does not bind could still UPDATE, or DELETE and
    /// INSERT keeping the count; the checksum sees both.
    async fn legacy_watermark(
        &self,
        env: &crate::runbook::ResolvedEnv,
    ) -> Result<BTreeMap<String, String>> {
        let db = Db::connect(env).await?;
        let c = db.snapshot_tables(&self.source_tables()).await;
        db.close().await;
        c.context("taking the legacy rows and checksums (the freeze watermark)")
    }

    async fn freeze(&mut self, env: &str) -> Result<StepDone, Stop> {
        // Freezing twice would record the already-revoked privileges as the ones to give back.
        if self.prior_view.frozen_envs.contains(env) {
            return done(StepStatus::Passed, "applied before the interruption");
        }
        let (fz, watermark) = match self.plan.env(env) {
            None => (
                Freeze {
                    method: "CSV extracts: checksums recorded; the files are the frozen source"
                        .into(),
                    ..Freeze::default()
                },
                self.extract_checksums()?,
            ),
            Some(e) => {
                let e = e.clone();
                let tables = self.source_tables();
                let planned = self.freeze_planned(env, &e).await?;
                // From here the legacy may be frozen: a failure now runs the rollback
                // plan with what was planned.
                self.frozen = Some((env.to_string(), planned.clone()));
                let applied = admin::freeze(&e, &tables).await?;
                // What to give back: what the accounts held before the freeze (planned,
                // journaled), and anything held now that the plan did not see.
                let mut fz = Freeze {
                    method: applied.method,
                    revoked: planned.revoked,
                };
                fz.merge_revoked(&applied.revoked);
                if let Some((_, carried)) = planned.method.split_once("; carried over") {
                    fz.method = format!("{}; carried over{carried}", fz.method);
                }
                self.frozen = Some((env.to_string(), fz.clone()));
                // Taken once frozen: what the extract reads, and what must still be there
                // at the load.
                let wm = self.legacy_watermark(&e).await?;
                (fz, wm)
            }
        };
        self.emit(Event::FreezeApplied {
            env: env.into(),
            method: fz.method.clone(),
            watermark: watermark.clone(),
            revoked: fz.revoked.clone(),
        })
        .await?;
        done(
            StepStatus::Passed,
            format!("{}; watermark {}", fz.method, fmt_map(&watermark)),
        )
    }

    /// What the freeze of `env` takes away, journaled (`freeze_planned`) before anything
    /// is revoked. A run resumed after a kill inside the freeze takes the journaled plan:
    /// read again, the accounts would hold nothing (already revoked) and the privileges to
    /// give back would be lost.
    async fn freeze_planned(
        &mut self,
        env: &str,
        e: &crate::runbook::ResolvedEnv,
    ) -> Result<Freeze> {
        let journaled = self.prior_view.freeze_plans.get(env).map(|f| Freeze {
            method: f.method.clone(),
            revoked: f.revoked.clone(),
        });
        if let Some(p) = journaled {
            return Ok(p);
        }
        let mut p = admin::freeze_plan(e).await?;
        // Still frozen by the previous run (held after its NO-GO): what that freeze
        // revoked is what this run must give back; read now, it holds nothing.
        if let Some((prev, old)) = self.held_freeze(env).await? {
            p.merge_revoked(&old.revoked);
            p.method = format!(
                "{}; carried over the freeze run {prev} held after its NO-GO",
                p.method
            );
        }
        self.emit(Event::FreezePlanned {
            env: env.into(),
            method: p.method.clone(),
            revoked: p.revoked.clone(),
        })
        .await?;
        Ok(p)
    }

    fn extract_checksums(&self) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for n in &self.plan.order {
            let p = self
                .plan
                .extract_dir
                .join(&self.plan.rb.entities[n].source.file);
            let (sha, _) = sha256_file(&p)?;
            out.insert(n.clone(), format!("sha256={sha}"));
        }
        Ok(out)
    }

    /// The freeze must still hold when the production load starts.
    async fn check_watermark(&self, records: &[Record]) -> Result<(), Stop> {
        let Some((env, wm)) = RunView::of(records)
            .freeze_applied
            .map(|f| (f.env, f.watermark))
        else {
            return Ok(());
        };
        let now = match self.plan.env(&env) {
            None => self.extract_checksums()?,
            Some(e) => self.legacy_watermark(&e.clone()).await?,
        };
        if now != wm {
            let changed: Vec<String> = wm
                .keys()
                .chain(now.keys().filter(|k| !wm.contains_key(*k)))
                .filter(|t| wm.get(*t) != now.get(*t))
                .map(|t| {
                    // `rows=4 sha256=…` with the checksum cut to 12 digits.
                    let show = |v: Option<&String>| match v {
                        None => "absent".to_string(),
                        Some(v) => v
                            .split(' ')
                            .map(|p| match p.split_once("sha256=") {
                                Some((a, h)) => format!("{a}sha256={}…", &h[..12.min(h.len())]),
                                None => p.to_string(),
                            })
                            .collect::<Vec<_>>()
                            .join(" "),
                    };
                    format!("{t} (was {}, now {})", show(wm.get(t)), show(now.get(t)))
                })
                .collect();
            return Err(Stop::RollbackPlan(format!(
                "the legacy source changed after the freeze: {}; the extract no longer matches it, \
                 so the production load did not start",
                changed.join(", ")
            )));
        }
        Ok(())
    }

    async fn extract(&mut self, step: &str, env: &str) -> Result<StepDone, Stop> {
        // Resuming checked the recorded files are unchanged.
        if self.prior_view.extract.is_some() {
            return done(StepStatus::Passed, "recorded before the interruption");
        }
        let mut files = Vec::new();
        let manifest = self.run_dir.join("extract").join("manifest.json");
        std::fs::create_dir_all(manifest.parent().unwrap_or(&self.run_dir))
            .context("creating the extract folder")?;
        match self.plan.env(env) {
            None => {
                // CSV extracts supplied: verify and record them where they are.
                for n in &self.plan.order {
                    let p = self
                        .plan
                        .extract_dir
                        .join(&self.plan.rb.entities[n].source.file);
                    if !p.exists() {
                        return Err(Stop::Failed(anyhow::anyhow!(
                            "extract file {} is missing (extract_dir = {}); pass --var extract_dir=DIR",
                            p.display(),
                            self.plan.extract_dir.display()
                        )));
                    }
                    let p2 = p.clone();
                    let rows = tokio::task::spawn_blocking(move || count_records(&p2))
                        .await
                        .context("count")??;
                    let (sha, _) = sha256_file(&p)?;
                    files.push(ExtractFile {
                        entity: n.clone(),
                        path: p.display().to_string(),
                        rows,
                        sha256: sha,
                    });
                }
            }
            Some(e) => {
                let e = e.clone();
                let policy =
                    crate::engine::retry::RetryPolicy::from_settings(&self.plan.rb.settings);
                for n in &self.plan.order {
                    let ent = &self.plan.rb.entities[n];
                    let out = self.run_dir.join("extract").join(&ent.source.file);
                    let table = ent.source.table.clone().unwrap_or_else(|| n.clone());
                    // A lost connection or a restarting server: the table is read again
                    // from the start (the file is rewritten), like a load's batch.
                    let mut attempt = 0;
                    let rows = loop {
                        let r = async {
                            let db = Db::connect(&e).await?;
                            let r = db.table_to_csv(&table, &ent.columns, &out).await;
                            db.close().await;
                            r
                        }
                        .await;
                        match r {
                            Ok(r) => break r,
                            Err(err)
                                if attempt < policy.max
                                    && crate::engine::retry::is_transient(&err) =>
                            {
                                attempt += 1;
                                let delay = policy.delay(attempt);
                                tracing::warn!(entity = %n, attempt, error = %explain(&err), "transient fault; extracting the table again");
                                self.emit(Event::RetryScheduled {
                                    step: step.into(),
                                    entity: n.clone(),
                                    attempt,
                                    max_attempts: policy.max,
                                    delay_ms: delay.as_millis() as u64,
                                    error: explain(&err),
                                })
                                .await?;
                                tokio::time::sleep(delay).await;
                            }
                            Err(err) => return Err(err.into()),
                        }
                    };
                    let (sha, _) = sha256_file(&out)?;
                    files.push(ExtractFile {
                        entity: n.clone(),
                        path: out.display().to_string(),
                        rows,
                        sha256: sha,
                    });
                }
            }
        }
        std::fs::write(
            &manifest,
            serde_json::to_string_pretty(&files).context("manifest")?,
        )
        .with_context(|| format!("writing {}", manifest.display()))?;
        let summary = files
            .iter()
            .map(|f| format!("{} {}", f.entity, f.rows))
            .collect::<Vec<_>>()
            .join(", ");
        self.emit(Event::ExtractRecorded {
            manifest: manifest.display().to_string(),
            files,
        })
        .await?;
        done(
            StepStatus::Passed,
            format!("{summary}; manifest {}", manifest.display()),
        )
    }

    async fn pipeline(&mut self, step: &str, phase: Phase, env: &str) -> Result<StepDone, Stop> {
        let records = self.journal.run_records(&self.run_id).await?;
        let files: HashMap<String, ExtractFile> = records
            .iter()
            .rev()
            .find_map(|r| match &r.event {
                Event::ExtractRecorded { files, .. } => Some(files.iter().map(|f| (f.entity.clone(), f.clone())).collect()),
                _ => None,
            })
            .context("no extract recorded in this run: the extract step must come before the dry run and the load")?;
        let target = self.env(env)?.clone();
        let db = Db::connect(&target).await?;
        let plan = self.plan.clone();
        let mut tables: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for n in &plan.order {
            let e = &plan.rb.entities[n];
            tables.insert(e.target.table.clone(), e.map.keys().cloned().collect());
        }
        let reset = phase == Phase::DryRun && target.reset;
        let prepared = async {
            let note = db.ensure_schema(&plan.rb.schema, &tables).await?;
            if reset {
                let children_first: Vec<String> = plan
                    .order
                    .iter()
                    .rev()
                    .map(|n| plan.rb.entities[n].target.table.clone())
                    .collect();
                db.empty_tables(&children_first).await?;
            }
            anyhow::Ok(note)
        }
        .await;
        let schema_note = match prepared {
            Ok(n) => n,
            Err(e) => {
                db.close().await;
                return Err(e.into());
            }
        };
        let sink = match sink_for(&db) {
            Ok(s) => s,
            Err(e) => {
                db.close().await;
                return Err(e.into());
            }
        };
        let referenced: HashSet<String> = plan
            .order
            .iter()
            .flat_map(|n| {
                Compiled::new(n, &plan.rb.entities[n], &plan.rb.entities)
                    .map(|c| c.references())
                    .unwrap_or_default()
            })
            .collect();
        let scoped_by: HashSet<String> = plan
            .order
            .iter()
            .flat_map(|n| {
                Compiled::new(n, &plan.rb.entities[n], &plan.rb.entities)
                    .map(|c| c.scope_references())
                    .unwrap_or_default()
            })
            .collect();
        let mut keys: HashMap<String, Arc<HashSet<String>>> = HashMap::new();
        let mut scope_keys: HashMap<String, Arc<ScopeKeys>> = HashMap::new();
        let mut lines = Vec::new();
        let phase_dir = match phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        for n in &plan.order {
            if let Some(stop) = self.interrupted() {
                db.close().await;
                return Err(stop);
            }
            let e = &plan.rb.entities[n];
            let f = files
                .get(n)
                .with_context(|| format!("the extract has no file for {n}"))?;
            let mut compiled = Compiled::new(n, e, &plan.rb.entities)?;
            // A file cutover extracted from the legacy database quotes its line breaks
            // itself: read them as values (`multiline` guards files handed over).
            if Path::new(&f.path).starts_with(self.run_dir.join("extract")) {
                compiled.dialect.multiline = true;
            }
            let rules = Arc::new(compiled);
            let job = EntityJob {
                phase,
                refs: rules
                    .references()
                    .iter()
                    .filter_map(|r| keys.get(r).map(|k| (r.clone(), k.clone())))
                    .collect(),
                rules: rules.clone(),
                file: PathBuf::from(&f.path),
                reject_path: self
                    .run_dir
                    .join("rejects")
                    .join(phase_dir)
                    .join(format!("{n}.rejects.csv")),
                table: TableSpec {
                    table: e.target.table.clone(),
                    key: e.target.key.clone(),
                    columns: rules.target_columns.clone(),
                },
                batch_size: plan.rb.settings.batch_size,
                retry: crate::engine::retry::RetryPolicy::from_settings(&plan.rb.settings),
                keep_valid_keys: referenced.contains(n),
                scope_refs: rules
                    .scope_references()
                    .iter()
                    .filter_map(|r| scope_keys.get(r).map(|k| (r.clone(), k.clone())))
                    .collect(),
                keep_scope_keys: scoped_by.contains(n),
                sum_fields: plan
                    .rb
                    .checks
                    .iter()
                    .filter_map(|c| match c {
                        Check::Sum {
                            entity,
                            field,
                            currency,
                            ..
                        } if entity == n => Some(crate::engine::pipeline::SumField {
                            field: field.clone(),
                            currency: currency.clone(),
                        }),
                        _ => None,
                    })
                    .collect(),
                fingerprints: plan
                    .rb
                    .checks
                    .iter()
                    .filter_map(|c| match c {
                        Check::Fingerprint {
                            name,
                            entity,
                            source,
                            ..
                        } if entity == n => Some((name.clone(), source.clone())),
                        _ => None,
                    })
                    .collect(),
                expected_rows: f.rows,
                // A reset dry run starts over; anything else continues after its checkpoint.
                resume: if reset {
                    None
                } else {
                    RunView::of(&records).checkpoint(phase, n)
                },
            };
            let reject_file = job.reject_path.display().to_string();
            self.emit(Event::EntityStarted {
                phase,
                entity: n.clone(),
                table: e.target.table.clone(),
                expected_rows: f.rows,
            })
            .await?;
            let obs = Checkpoints {
                exec: self,
                step: step.to_string(),
                phase,
                entity: n.clone(),
            };
            let res = run_entity(job, &sink, &self.progress, &obs).await;
            let res = match res {
                Ok(r) => r,
                Err(err) => {
                    db.close().await;
                    return Err(match err.downcast::<Halt>() {
                        Ok(h) => h.into(),
                        Err(err) => Stop::Failed(err),
                    });
                }
            };
            lines.push(format!(
                "{n}: {} valid, {} rejected, {} loaded",
                res.counts.valid, res.counts.rejected, res.counts.loaded
            ));
            if let Some(k) = res.valid_keys {
                keys.insert(n.clone(), Arc::new(k));
            }
            if let Some(k) = res.scope_keys {
                scope_keys.insert(n.clone(), Arc::new(k));
            }
            self.emit(Event::EntityFinished {
                phase,
                entity: n.clone(),
                counts: res.counts,
                reject_file,
                sums: res.sums,
                duration_ms: res.duration_ms,
            })
            .await?;
        }
        db.close().await;
        done(
            StepStatus::Passed,
            format!("{schema_note}; {}", lines.join("; ")),
        )
    }

    async fn validate(&mut self, step: &str, phase: Phase, env: &str) -> Result<StepDone, Stop> {
        let records = self.journal.run_records(&self.run_id).await?;
        let mut evidence: BTreeMap<String, EntityEvidence> = BTreeMap::new();
        for r in &records {
            if let Event::EntityFinished {
                phase: p,
                entity,
                counts,
                sums,
                ..
            } = &r.event
                && *p == phase
            {
                evidence.insert(
                    entity.clone(),
                    EntityEvidence {
                        counts: counts.clone(),
                        sums: sums.clone(),
                    },
                );
            }
        }
        if evidence.is_empty() {
            return Err(Stop::Failed(anyhow::anyhow!(
                "nothing to reconcile: no {phase:?} has run in this run"
            )));
        }
        let db = Db::connect(self.env(env)?).await?;
        let results = run_checks(&self.plan, &db, &evidence).await;
        db.close().await;
        let results = results?;
        let fails = results
            .iter()
            .filter(|r| r.status == CheckStatus::Fail)
            .count();
        let warns = results
            .iter()
            .filter(|r| r.status == CheckStatus::Warn)
            .count();
        for r in &results {
            self.emit(Event::CheckRecorded {
                step: step.into(),
                result: r.clone(),
            })
            .await?;
        }
        let msg = format!(
            "{} checks: {} pass, {warns} warn, {fails} fail",
            results.len(),
            results.len() - fails - warns
        );
        if fails > 0 {
            return Err(Stop::Outcome(
                Outcome::ValidationFailed,
                exit::RECONCILIATION_FAILED,
                msg,
            ));
        }
        done(
            if warns > 0 {
                StepStatus::Warned
            } else {
                StepStatus::Passed
            },
            msg,
        )
    }

    async fn gate(&mut self, gate: &str) -> Result<StepDone, Stop> {
        let g = self
            .plan
            .rb
            .gates
            .get(gate)
            .with_context(|| format!("unknown gate {gate}"))?
            .clone();
        let records = self.journal.run_records(&self.run_id).await?;
        // Evidence: the checks of the last validate of this run.
        let last_validate = records.iter().rposition(|r| matches!(&r.event, Event::StepStarted { step } if self.step_kind(step) == Some(StepKind::Validate)));
        let checks: Vec<CheckResult> = records[last_validate.unwrap_or(0)..]
            .iter()
            .filter_map(|r| {
                if let Event::CheckRecorded { result, .. } = &r.event {
                    Some(result.clone())
                } else {
                    None
                }
            })
            .collect();
        let mut reasons: Vec<String> = checks
            .iter()
            .filter(|c| c.status != CheckStatus::Pass)
            .map(|c| {
                // As the console shows them: money with its currency.
                let f = crate::app::check_figures(c);
                format!(
                    "{} {} {}: source {} vs target {}",
                    if c.status == CheckStatus::Fail {
                        "✗ FAIL"
                    } else {
                        "! WARN"
                    },
                    c.entity,
                    c.name,
                    f.source,
                    f.target
                )
            })
            .collect();
        if checks.is_empty() {
            reasons.push("no reconciliation evidence in this run".into());
        }
        let evidence = self.gate_evidence(&records, &checks);
        if let Some(t) = evidence.timing.as_ref().filter(|t| !t.fits) {
            reasons.push(format!(
                "✗ LATE projected finish {} is after the window's end {}",
                utc_minute(&t.projected_finish),
                utc_minute(&t.window_end)
            ));
        }
        let recommendation = if reasons.is_empty() {
            Decision::Go
        } else {
            Decision::NoGo
        };
        let evidence_sha256 = hex::encode(Sha256::digest(
            serde_json::to_vec(&checks).context("evidence")?,
        ));
        self.emit(Event::GateOpened {
            gate: gate.into(),
            title: g.title.clone(),
            quorum: g.quorum,
            roles: g.roles.clone(),
            approvers: g
                .approvers
                .iter()
                .map(|a| format!("{} ({})", a.name, a.role))
                .collect(),
            recommendation,
            reasons: reasons.clone(),
            evidence_sha256: evidence_sha256.clone(),
            evidence,
        })
        .await?;
        // GOs given on this same evidence before an interruption still count.
        let mut gos = lock(&self.view).gos_on(gate, &evidence_sha256);
        // Sign-offs not recorded because they lacked a reason, for the waiting message.
        let mut refused: Vec<String> = Vec::new();
        loop {
            let tally = gate_decision(&gos, g.quorum, &g.roles);
            if tally.met {
                self.emit(Event::GateDecided {
                    gate: gate.into(),
                    decision: Decision::Go,
                })
                .await?;
                let who = gos
                    .iter()
                    .map(|(n, r)| format!("{n} ({r})"))
                    .collect::<Vec<_>>()
                    .join(", ");
                return done(StepStatus::Passed, format!("GO by {who}"));
            }
            let next = if self.offered < self.opts.sign_offs.len() {
                self.offered += 1;
                let s = self.opts.sign_offs[self.offered - 1].clone();
                if s.decision == Decision::Go && gos.iter().any(|(n, _)| *n == s.name) {
                    continue; // already signed before the interruption
                }
                Some(s)
            } else if self.opts.interactive {
                // The window keeps running while people read the evidence.
                let cmd = loop {
                    let mut rx = self.commands.lock().await;
                    tokio::select! {
                        c = rx.recv() => break c,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => {}
                    }
                    drop(rx);
                    if let Some(h) = self.check_window().await? {
                        return Err(h.into());
                    }
                };
                match cmd {
                    Some(Command::SignOff(s)) => Some(s),
                    // For a later step: noted, and the gate waits on.
                    Some(Command::Skip { step, name, reason }) => {
                        self.ask_skip(step, name, reason);
                        continue;
                    }
                    Some(Command::Rollback { reason }) => return Err(Stop::Rollback(reason)),
                    // Taken with the NO-GO that follows it.
                    Some(Command::HoldFreeze { reason }) => {
                        *lock(&self.hold_freeze) = Some(reason);
                        continue;
                    }
                    Some(Command::Abort) | None => {
                        return Err(Stop::Outcome(
                            Outcome::Failed,
                            exit::INTERRUPTED,
                            "interrupted at the gate by the operator".into(),
                        ));
                    }
                }
            } else {
                None
            };
            if let Some(s) = &next
                && let Some(why) = s.missing_reason(recommendation)
            {
                tracing::warn!("sign-off by {} ({}) not recorded: {why}", s.name, s.role);
                refused.push(format!("{} ({}): {why}", s.name, s.role));
                continue;
            }
            let Some(s) = next else {
                let missing_roles = &tally.missing_roles;
                return Err(Stop::Outcome(
                    Outcome::WaitingAtGate,
                    exit::WAITING_AT_GATE,
                    format!(
                        "waiting at gate '{gate}': {} of {} GO sign-offs{}{}; give them with --sign-off \"NAME|ROLE|go|COMMENT\"",
                        tally.signed,
                        tally.quorum,
                        refused
                            .iter()
                            .map(|r| format!("; not recorded: {r}"))
                            .collect::<String>(),
                        if missing_roles.is_empty() {
                            String::new()
                        } else {
                            format!(
                                ", roles still to sign: {}",
                                missing_roles
                                    .iter()
                                    .map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            )
                        }
                    ),
                ));
            };
            self.emit(Event::SignOffRecorded {
                gate: gate.into(),
                name: s.name.clone(),
                role: s.role.clone(),
                decision: s.decision,
                comment: s.comment.clone(),
                evidence_sha256: evidence_sha256.clone(),
                overrides: s.decision == Decision::Go && recommendation == Decision::NoGo,
            })
            .await?;
            match s.decision {
                Decision::Go => gos.push((s.name, s.role)),
                Decision::NoGo => {
                    self.emit(Event::GateDecided {
                        gate: gate.into(),
                        decision: Decision::NoGo,
                    })
                    .await?;
                    return Err(Stop::Outcome(
                        Outcome::NoGo,
                        exit::NO_GO,
                        format!("NO-GO by {} ({}): {}", s.name, s.role, s.comment),
                    ));
                }
            }
        }
    }

    /// What the gate shows beside its reasons: reconciliation totals, each entity's reject
    /// rate against its budget (from this run's last dry run) and the projection against
    /// the window.
    fn gate_evidence(&self, records: &[Record], checks: &[CheckResult]) -> GateEvidence {
        let count = |st: CheckStatus| checks.iter().filter(|c| c.status == st).count();
        let mut dry: BTreeMap<&str, &EntityCounts> = BTreeMap::new();
        for r in records {
            if let Event::EntityFinished {
                phase: Phase::DryRun,
                entity,
                counts,
                ..
            } = &r.event
            {
                dry.insert(entity, counts);
            }
        }
        let reject_rates = self
            .plan
            .rb
            .entities
            .iter()
            .filter_map(|(name, e)| {
                let c = dry.get(name.as_str())?;
                let mut rate = RejectRate {
                    entity: name.clone(),
                    rejected: c.rejected,
                    in_scope: c.in_scope,
                    budget_pct: e.max_reject_pct.map(|b| format!("{b:.2}")),
                    within_budget: None,
                };
                rate.within_budget = e.max_reject_pct.map(|b| rate.pct() <= b);
                Some(rate)
            })
            .collect();
        let now = chrono::Utc::now();
        let timing = {
            let progress = self.progress.borrow().clone();
            let view = self.view.lock().unwrap_or_else(|p| p.into_inner());
            let window = &view.window;
            window.forecast(&progress, now).map(|f| {
                let ts = |t: chrono::DateTime<chrono::Utc>| {
                    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                };
                GateTiming {
                    basis: f.basis.word().to_string(),
                    rehearsal_run: window.rehearsal_run().map(str::to_string),
                    remaining_secs: (f.projected_finish - now).num_seconds().max(0) as u64,
                    projected_finish: ts(f.projected_finish),
                    point_of_no_return: ts(f.point_of_no_return),
                    window_end: ts(f.window_end),
                    fits: !f.overruns,
                }
            })
        };
        GateEvidence {
            checks_pass: count(CheckStatus::Pass),
            checks_warn: count(CheckStatus::Warn),
            checks_fail: count(CheckStatus::Fail),
            reject_rates,
            timing,
        }
    }

    fn step_kind(&self, id: &str) -> Option<StepKind> {
        self.plan
            .rb
            .steps
            .iter()
            .find(|s| s.id == id)
            .map(|s| s.kind)
    }

    async fn load(&mut self, step: &str, env: &str) -> Result<StepDone, Stop> {
        let records = self.journal.run_records(&self.run_id).await?;
        // The gate cannot be bypassed: a GO must follow the last validate of this run.
        let last_validate = records.iter().rposition(|r| matches!(&r.event, Event::StepFinished { step, .. } if self.step_kind(step) == Some(StepKind::Validate)));
        let go = last_validate.is_some_and(|i| {
            records[i..].iter().any(|r| {
                matches!(
                    &r.event,
                    Event::GateDecided {
                        decision: Decision::Go,
                        ..
                    }
                )
            })
        });
        if !go {
            return Err(Stop::Failed(anyhow::anyhow!(
                "the production load needs a GO at the sign-off gate after the last validate; none is in the journal"
            )));
        }
        self.check_watermark(&records).await?;
        self.load_started = true;
        self.pipeline(step, Phase::Load, env).await
    }

    async fn unfreeze(&mut self, env: &str) -> Result<StepDone, Stop> {
        let e = self.env(env)?.clone();
        let opened = self.reopen_production(env, &e).await?;
        done(
            StepStatus::Passed,
            format!(
                "{}: {opened}; the legacy source stays read-only",
                display_env(&e)
            ),
        )
    }

    async fn command(&mut self, step: &crate::runbook::format::Step) -> Result<StepDone, Stop> {
        let cmd = step.run.clone().context("command step without run")?;
        if self.prior_view.commands_ok.contains(&step.id) {
            return done(
                StepStatus::Passed,
                format!("`{cmd}` succeeded before the interruption"),
            );
        }
        let timeout = step
            .timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(std::time::Duration::from_secs(600));
        let env = [
            ("CUTOVER_RUN_ID", self.run_id.clone()),
            ("CUTOVER_RUN_DIR", self.run_dir.display().to_string()),
            ("CUTOVER_STEP", step.id.clone()),
        ];
        let r = command::run(&cmd, timeout, &env).await?;
        self.emit(Event::CommandRan {
            step: step.id.clone(),
            command: cmd.clone(),
            exit_code: r.exit_code,
            timed_out: r.timed_out,
            output: r.output.clone(),
        })
        .await?;
        let last = r.output.lines().last().unwrap_or("").to_string();
        match (r.exit_code, r.timed_out) {
            (Some(0), _) => done(StepStatus::Passed, format!("`{cmd}` exited 0; {last}")),
            (_, true) => Err(Stop::Failed(anyhow::anyhow!(
                "`{cmd}` was still running after {}s and was killed; raise the step's timeout or fix the command",
                timeout.as_secs()
            ))),
            (code, _) => Err(Stop::Failed(anyhow::anyhow!(
                "`{cmd}` failed with exit code {}: {last}",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "none (signal)".into())
            ))),
        }
    }

    /// Restore production from this run's backup and verify it matches the pre-cutover snapshot.
    async fn rollback(&mut self, reason: &str) -> (Outcome, i32, String) {
        let _ = self
            .emit(Event::RollbackStarted {
                reason: reason.into(),
            })
            .await;
        let res = self.do_rollback(None).await;
        let (ok, message) = match &res {
            Ok(m) => (true, m.clone()),
            Err(e) => (false, format!("rollback FAILED: {}", explain(e))),
        };
        let _ = self
            .emit(Event::RollbackFinished {
                ok,
                message: message.clone(),
            })
            .await;
        if ok {
            (
                Outcome::RolledBack,
                exit::ROLLED_BACK,
                format!("{reason}; rolled back: {message}"),
            )
        } else {
            (
                Outcome::Failed,
                exit::FAILURE,
                format!("{reason}; {message}"),
            )
        }
    }
}

/// Journals every committed batch: the checkpoint a resumed load continues from.
struct Checkpoints<'a> {
    exec: &'a Executor,
    step: String,
    phase: Phase,
    entity: String,
}

impl BatchObserver for Checkpoints<'_> {
    fn committed(
        &self,
        batch: u64,
        rows: u64,
        last_line: u64,
        refused: Vec<RefusedRow>,
    ) -> impl std::future::Future<Output = Result<()>> + Send {
        let ev = Event::BatchCommitted {
            phase: self.phase,
            entity: self.entity.clone(),
            batch,
            rows,
            last_line,
            refused,
        };
        async move {
            self.exec.emit(ev).await?;
            // The batch is committed and journaled: a safe point to stop at.
            if let Some(h) = self.exec.check_window().await? {
                return Err(h.into());
            }
            match self.exec.interrupted() {
                Some(Stop::Rollback(reason)) => Err(Halt::Rollback(reason).into()),
                Some(_) => Err(Halt::Abort.into()),
                None => Ok(()),
            }
        }
    }

    /// Right before each write into the target: a process whose lease was taken over
    /// (the heartbeat found out) writes no further batch, not even the one in hand.
    async fn writing(&self) -> Result<()> {
        let phase = match self.phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        crate::fault::at_point(true, "batch_write", &[phase.into(), self.entity.clone()]).await?;
        self.exec.journal.ensure_lease().await
    }

    fn retrying(&self, r: Retry) -> impl std::future::Future<Output = Result<()>> + Send {
        tracing::warn!(
            entity = %self.entity,
            attempt = r.attempt,
            max = r.max_attempts,
            delay_ms = r.delay.as_millis() as u64,
            error = %r.error,
            "transient fault; retrying the batch"
        );
        let ev = Event::RetryScheduled {
            step: self.step.clone(),
            entity: self.entity.clone(),
            attempt: r.attempt,
            max_attempts: r.max_attempts,
            delay_ms: r.delay.as_millis() as u64,
            error: r.error,
        };
        async move { self.exec.emit(ev).await.map(|_| ()) }
    }
}

/// The journal of the newest `run` (not rehearsal) of this runbook, if any.
/// `2026-11-21T22:45:00Z` as `Sat 22:45 UTC` (a window spans a weekend at most) (as is when it is not RFC 3339).
fn utc_minute(ts: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.format("%a %H:%M UTC").to_string())
        .unwrap_or_else(|_| ts.to_string())
}

pub async fn latest_run(journal: &Journal, plan: &Plan) -> Result<Option<Vec<Record>>> {
    let starts = journal.run_starts().await?;
    let Some(run_id) = starts.iter().rev().find_map(|r| match &r.event {
        Event::RunStarted {
            run_id,
            mode: RunMode::Run,
            runbook_name,
            ..
        } if *runbook_name == plan.rb.runbook.name => Some(run_id.clone()),
        _ => None,
    }) else {
        return Ok(None);
    };
    Ok(Some(journal.run_records(&run_id).await?))
}

/// How a run's journal ends, for deciding what `run` and `rollback` may do with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunState {
    /// Killed, cut off, stopped at a gate, after --until or by Ctrl-C: `run` continues it.
    Resumable,
    /// Ended for good (completed, rolled back, failed, NO-GO).
    Ended(Outcome),
}

pub fn run_state(records: &[Record]) -> RunState {
    match RunView::of(records)
        .finished
        .map(|f| (f.outcome, f.exit_code))
    {
        None => RunState::Resumable,
        Some((Outcome::WaitingAtGate | Outcome::StoppedAfterStep, _)) => RunState::Resumable,
        Some((Outcome::Failed, exit::INTERRUPTED | exit::WINDOW_EXCEEDED)) => RunState::Resumable,
        Some((o, _)) => RunState::Ended(o),
    }
}

/// Whether production may hold rows of this run that no rollback has taken back out.
pub fn production_touched(records: &[Record]) -> bool {
    RunView::of(records).production_touched
}

/// An error and its causes on one line, each cause once: sqlx's database errors repeat
/// their source's text, which `{:#}` would print twice.
pub fn explain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

/// The sink that writes into `db`.
fn sink_for(db: &Db) -> Result<Sink> {
    match db {
        Db::Sqlite(pool) => Ok(Sink::Sqlite(crate::sinks::sqlite::SqliteSink {
            pool: pool.clone(),
        })),
        Db::Postgres(pool) => Ok(Sink::Postgres(crate::sinks::postgres::PgSink::new(
            pool.clone(),
        ))),
        Db::MySql(pool) => Ok(Sink::MySql(crate::sinks::mysql::MySqlSink {
            pool: pool.clone(),
        })),
    }
}

fn fmt_map(m: &BTreeMap<String, String>) -> String {
    m.iter()
        .map(|(k, v)| {
            format!(
                "{k}={}",
                v.strip_prefix("sha256=")
                    .map(|s| &s[..12.min(s.len())])
                    .unwrap_or(v)
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A poisoned lock still holds good data: a panic elsewhere does not change it.
fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tms() -> Plan {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/runbooks/tms.toml"));
        crate::runbook::load(path, &[]).expect("the shipped runbook loads")
    }

    #[test]
    fn only_steps_nothing_rests_on_can_be_skipped() {
        use StepKind::*;
        for k in [Freeze, Validate, Verify, Unfreeze, Command] {
            assert!(k.skippable(), "{k:?}");
        }
        for k in [Backup, Extract, DryRun, SignOff, Load] {
            assert!(!k.skippable(), "{k:?}");
        }
    }

    #[test]
    fn check_skip_names_the_step_and_why() {
        let plan = tms();
        let ok = |step: &str, mode| check_skip(&plan, mode, step, "Migration lead", "done by hand");
        assert_eq!(ok("unfreeze", RunMode::Run), Ok(()));
        assert_eq!(ok("validate", RunMode::Rehearse), Ok(()));
        let e = ok("load", RunMode::Run).unwrap_err();
        assert!(e.contains("step load (load) cannot be skipped"), "{e}");
        let e = ok("sign_off", RunMode::Run).unwrap_err();
        assert!(e.contains("GO"), "{e}");
        let e = ok("nope", RunMode::Run).unwrap_err();
        assert!(
            e.contains("no step 'nope'") && e.contains("unfreeze"),
            "{e}"
        );
        let e = ok("unfreeze", RunMode::Rehearse).unwrap_err();
        assert!(e.contains("not part of a rehearsal"), "{e}");
        let e = check_skip(&plan, RunMode::Run, "verify", "Ada", " ").unwrap_err();
        assert!(e.contains("a reason"), "{e}");
        assert!(check_skip(&plan, RunMode::Run, "verify", "", "why").is_err());
    }
}
