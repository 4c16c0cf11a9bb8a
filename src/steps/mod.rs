//! The executor: a state machine over the runbook's steps. It owns the journal writes;
//! everything it learns goes into the journal first and is forwarded to the console after.
//!
//! This file is the core (the step loop, `emit`, resume, skips, the window); each step kind
//! has its own file. Resume decisions read the `RunView`, the one fold of the journal.

mod backup;
pub mod command;
mod extract;
mod failsafe;
mod freeze;
mod gate;
pub mod odoo;
mod pipeline;
mod validate;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use tokio::sync::{mpsc, watch};

use crate::control::{Command, SignOff, Skip};
use crate::db::admin::{Backup, Freeze, Privileges};
use crate::db::display_env;
use crate::journal::Journal;
use crate::journal::events::*;
use crate::runbook::format::StepKind;
use crate::runbook::{Plan, lint::parse_duration};
use crate::runview::RunView;
use crate::sources::csv::sha256_file;

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
    /// The operator running the cutover (`--lead`, else the runbook's `lead`).
    lead: Option<String>,
    /// Without a console: wait at a gate for sign-offs given by `cutover sign` (read from
    /// the journal) instead of stopping with exit 4.
    wait_at_gate: bool,
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
            lead: None,
            wait_at_gate: false,
            opts,
        }
    }

    /// Who runs the cutover: never the only approver of their own gate.
    pub fn with_lead(mut self, lead: Option<String>) -> Executor {
        self.lead = lead;
        self
    }

    /// Without a console, wait at gates for `cutover sign` instead of stopping (exit 4).
    pub fn waiting_at_gates(mut self, wait: bool) -> Executor {
        self.wait_at_gate = wait;
        self
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
        let view = RunView::of(&records);
        let (Some(run_id), Some(run)) = (&view.run_id, &view.run) else {
            return Err(ResumeRefused(
                "the journal holds no start record for that run".into(),
            ));
        };
        let mut e = Executor::new(plan, journal, Path::new("."), ch, opts);
        e.run_id = run_id.clone();
        e.run_dir = PathBuf::from(&run.artifacts_dir);
        e.prod_closed = view.backup_started || !view.closures.is_empty();
        e.closed = view.closures.last().map(|c| Privileges {
            acl: c.acl.clone(),
            held: c.held.clone(),
        });
        e.backup = view.backup.as_ref().map(|b| Backup {
            path: PathBuf::from(&b.path),
            sha256: b.sha256.clone(),
            bytes: b.bytes,
            snapshot: b.snapshot.clone(),
            check: "as journaled".into(),
        });
        // Environments that were databases when the run began (not CSV files).
        let database = |env: &str| {
            e.plan.env(env).is_some()
                || view.environments.iter().any(|x| {
                    x.name == env && (!x.database.is_empty() || x.display != "CSV extract files")
                })
        };
        // Planned and not applied: killed inside the freeze, perhaps after the revoke. A
        // rollback gives back what was planned (a grant of what is still held changes
        // nothing); `freeze_applied` replaces it once written.
        e.frozen = view.freezes.iter().rfind(|f| database(&f.env)).map(|f| {
            (
                f.env.clone(),
                Freeze {
                    method: f.method.clone(),
                    revoked: f.revoked.clone(),
                },
            )
        });
        e.load_started = view.load_started;
        *e.view.lock().unwrap_or_else(|p| p.into_inner()) = view.clone();
        e.prior_view = view;
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
        for run_id in runs_of(&starts, &self.plan, RunMode::Rehearse) {
            let recs = self.journal.run_records(run_id).await?;
            if RunView::of(&recs).outcome() == Some(Outcome::Completed) {
                return Ok(Some((run_id.to_string(), recs)));
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
            .filter(|n| !self.derived(n))
            .flat_map(|n| self.plan.rb.entities[n].source_files(n))
            .map(|f| f.table)
            .collect()
    }

    /// An entity whose rows the extract derives from another's (see [`crate::engine::derive`]).
    fn derived(&self, entity: &str) -> bool {
        self.plan.rb.entities[entity].derive.is_some()
    }
}

/// The ids of this runbook's runs in `mode`, newest first, from the journal's run starts
/// (`Journal::run_starts`, one record per run): which run to read, not what a run says.
fn runs_of<'a>(
    starts: &'a [Record],
    plan: &'a Plan,
    mode: RunMode,
) -> impl Iterator<Item = &'a str> + 'a {
    starts.iter().rev().filter_map(move |r| match &r.event {
        Event::RunStarted {
            run_id,
            mode: m,
            runbook_name,
            ..
        } if *m == mode && *runbook_name == plan.rb.runbook.name => Some(run_id.as_str()),
        _ => None,
    })
}

/// The journal of the newest `run` (not rehearsal) of this runbook, if any.
pub async fn latest_run(journal: &Journal, plan: &Plan) -> Result<Option<Vec<Record>>> {
    let Some(run_id) = latest_run_id(journal, plan).await? else {
        return Ok(None);
    };
    Ok(Some(journal.run_records(&run_id).await?))
}

/// The id of the newest run (not rehearsal) of this runbook.
pub async fn latest_run_id(journal: &Journal, plan: &Plan) -> Result<Option<String>> {
    let starts = journal.run_starts().await?;
    Ok(runs_of(&starts, plan, RunMode::Run)
        .next()
        .map(str::to_string))
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

pub use crate::db::errors::explain;

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
