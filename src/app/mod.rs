//! Console state and its one update function. No terminal, no I/O, no tokio here:
//! journal records, progress snapshots, ticks and key presses all arrive as [`Action`]s;
//! [`update`] changes the [`App`] and returns the [`Effect`]s the loop must carry out.

#[cfg(test)]
pub mod fixtures;
pub mod gate_dialog;
pub mod keymap;
pub mod model;
pub mod rejects;
pub mod rollback_dialog;
pub mod skip_dialog;

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use tui_input::InputRequest;

use crate::control::Command;
use crate::journal::events::{Decision, EnvInfo, Event, Phase, ProgressSnapshot, Record, RunMode};
use crate::runbook::format::StepKind;
use crate::runview::RunView;
use crate::window::Forecast;

pub use gate_dialog::{Field, GateDialog};
pub use model::*;
pub use rejects::{RejectAction, RejectEffect, RejectTable};
pub use rollback_dialog::{RollbackDialog, RollbackField, RollbackOrigin};
pub use skip_dialog::{SkipAsk, SkipDialog, SkipField};

/// Lines kept in the recent-events log.
pub const LOG_CAPACITY: usize = 200;
/// Rows moved by PgUp / PgDn.
pub const PAGE_ROWS: usize = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tab {
    #[default]
    Rejects,
    Reconciliation,
    Log,
}

impl Tab {
    pub const ALL: [Tab; 3] = [Tab::Rejects, Tab::Reconciliation, Tab::Log];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Rejects => "Rejects",
            Tab::Reconciliation => "Reconciliation",
            Tab::Log => "Log",
        }
    }

    pub fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// Every input and every operator intent.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // Records arrive one at a time; boxing buys nothing.
pub enum Action {
    /// A journal record from the engine.
    Record(Record),
    /// Latest live progress.
    Progress(ProgressSnapshot),
    /// Clock tick: the loop passes the wall clock so `update` stays pure.
    Tick {
        now: DateTime<Utc>,
    },
    /// The reject table (see [`rejects`]).
    Rejects(RejectAction),
    /// A tracing event for the log pane (already filtered: see `log_feed`).
    Log {
        level: tracing::Level,
        target: String,
        message: String,
    },
    /// Tracing lines dropped so far because the console was behind (a running total).
    LogDropped {
        total: u64,
    },
    /// Something the loop wants the operator to see (e.g. the engine stopped listening).
    Notice {
        text: String,
    },
    NextTab,
    PrevTab,
    SelectTab(Tab),
    ScrollUp,
    ScrollDown,
    PageUp,
    PageDown,
    ScrollTop,
    ScrollBottom,
    OpenGateDialog,
    /// Esc: hide the dialog (typed text is kept; `g` brings it back).
    HideGateDialog,
    DialogNextField,
    DialogPrevField,
    /// Edit the focused text field.
    DialogInput(InputRequest),
    /// Scroll the sign-off dialog's information block (when it does not fit the screen).
    DialogScroll(isize),
    ChooseDecision(Decision),
    ToggleDecision,
    /// With a NO-GO: hold the legacy's freeze instead of reopening it.
    ToggleHoldFreeze,
    SubmitSignOff,
    /// `R`: open the manual rollback dialog (any time before the run finishes).
    OpenRollbackDialog,
    /// Esc: close the rollback dialog; nothing is sent and what was typed is dropped.
    CancelRollback,
    /// Between the database-name and reason fields.
    RollbackSwitchField,
    /// Edit the focused field of the rollback dialog.
    RollbackInput(InputRequest),
    /// Send the rollback, if the typed name is exactly the production database's.
    ConfirmRollback,
    /// `s`: open the skip dialog (a pending step, who asks, why).
    OpenSkipDialog,
    /// Esc: close the skip dialog; nothing is sent and what was typed is dropped.
    CancelSkip,
    SkipNextField,
    SkipPrevField,
    /// ←/→ on the Step row: the previous / next step that can be skipped.
    SkipCycleStep(isize),
    /// Edit the focused text field of the skip dialog.
    SkipInput(InputRequest),
    /// Send the skip, if a step, a name and a reason are given.
    SubmitSkip,
    ToggleHelp,
    /// Scroll the help (when it does not fit the screen).
    HelpScroll(isize),
    /// `q` or Ctrl-C: after the run, leave; before it, ask first, and a second `q`, `y`
    /// or Ctrl-C aborts.
    Quit,
    /// Keep running after a `q`.
    CancelQuit,
    /// SIGTERM or SIGHUP: abort the run (if still running) and leave at once.
    Interrupt,
    /// `cutover watch`: who holds the run, for the header ("held by pid … on … since …").
    Watching(String),
}

impl Action {
    /// Whether `cutover watch` takes this action: looking around only. Nothing that opens
    /// a form, types into one or sends a command to an engine.
    pub fn is_read_only(&self) -> bool {
        matches!(
            self,
            Action::NextTab
                | Action::PrevTab
                | Action::SelectTab(_)
                | Action::ScrollUp
                | Action::ScrollDown
                | Action::PageUp
                | Action::PageDown
                | Action::ScrollTop
                | Action::ScrollBottom
                | Action::HideGateDialog
                | Action::ToggleHelp
                | Action::HelpScroll(_)
                | Action::Record(_)
                | Action::Progress(_)
                | Action::Tick { .. }
                | Action::Log { .. }
                | Action::LogDropped { .. }
                | Action::Notice { .. }
                | Action::Watching(_)
        )
    }
}

impl Action {
    /// Whether `cutover watch` takes this action: looking around, and filling in and
    /// sending the sign-off dialog (a watch signs through the journal, as `cutover sign`
    /// does). Never a hold of the freeze, a skip, a rollback or an abort.
    pub fn watch_takes(&self) -> bool {
        self.is_read_only()
            || matches!(
                self,
                Action::OpenGateDialog
                    | Action::DialogNextField
                    | Action::DialogPrevField
                    | Action::DialogInput(_)
                    | Action::DialogScroll(_)
                    | Action::ChooseDecision(_)
                    | Action::ToggleDecision
                    | Action::SubmitSignOff
            )
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    Send(Command),
    LoadRejects { entity: String, path: String },
    Rejects(RejectEffect),
    Quit,
}

/// Everything the console shows, built only from records, snapshots and actions.
#[derive(Debug, Clone, Default)]
pub struct App {
    /// The run as its journal tells it (steps, entities, checks, gate, rollback, outcome,
    /// window); live progress is laid over its entities.
    pub view: RunView,
    /// Rows/s history of each entity that has run, for the sparklines.
    pub throughput: IndexMap<String, Throughput>,
    pub dialog: GateDialog,
    pub rollback_dialog: RollbackDialog,
    /// Reason of the rollback this console sent, until the journal shows it started.
    pub rollback_asked: Option<String>,
    pub skip_dialog: SkipDialog,
    /// Steps this console asked to skip: not offered again.
    pub skips_asked: Vec<String>,
    /// Latest live progress, as the engine sent it (for the window forecast).
    pub progress: ProgressSnapshot,
    /// The console has seen the window exceeded (and proposed the rollback once for it).
    pub window_exceeded_seen: bool,
    pub log: VecDeque<LogLine>,
    /// Tracing lines dropped before they reached the console (the channel was full).
    pub log_dropped: u64,
    pub rejects: RejectTable,
    pub recon_scroll: usize,
    /// Lines scrolled up from the newest log line (0 follows the tail).
    pub log_scroll: usize,
    pub tab: Tab,
    pub show_help: bool,
    /// Lines the help is scrolled down, when it does not fit the screen.
    pub help_scroll: usize,
    pub confirm_quit: bool,
    /// Latest clock: from ticks, or the newest record time.
    pub now: Option<DateTime<Utc>>,
    /// One-line message for the operator (e.g. "sign-off sent").
    pub notice: Option<String>,
    /// Set once Abort has been sent.
    pub aborted: bool,
    /// `cutover watch`: a read-only console; who holds the run.
    pub watching: Option<String>,
}

fn parse_ts(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl App {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_finished(&self) -> bool {
        self.view.finished.is_some()
    }

    pub fn production_env(&self) -> Option<&EnvInfo> {
        self.view.production_env()
    }

    /// The gate, if one is open and still waiting for its decision.
    pub fn open_gate(&self) -> Option<&GateState> {
        self.view.open_gate()
    }

    pub fn dialog_visible(&self) -> bool {
        self.dialog.visible && self.open_gate().is_some() && !self.is_finished()
    }

    pub fn window_left_secs(&self) -> Option<i64> {
        Some((self.view.window_end? - self.now?).num_seconds())
    }

    /// Projected finish, point of no return and the rest, at the app's clock; `None`
    /// without a window (or before any clock).
    pub fn forecast(&self) -> Option<Forecast> {
        self.view.window.forecast(&self.progress, self.now?)
    }

    /// What the operator types to confirm a rollback: the production database's name (the
    /// environment's name for journals that did not record the database).
    pub fn rollback_confirm_name(&self) -> Option<&str> {
        let p = self.production_env()?;
        Some(if p.database.is_empty() {
            &p.name
        } else {
            &p.database
        })
    }

    /// What a GO at the open gate needs typed: the production database's name, when a
    /// load step follows the gate (before any later gate). `None` for other gates.
    pub fn gate_confirm_name(&self) -> Option<String> {
        let at = self.view.steps.iter().position(|s| {
            s.kind == StepKind::SignOff
                && matches!(s.state, StepState::WaitingSignOff | StepState::Running)
        })?;
        let into_production = self.view.steps[at + 1..]
            .iter()
            .take_while(|s| s.kind != StepKind::SignOff)
            .any(|s| s.kind == StepKind::Load);
        into_production
            .then(|| self.rollback_confirm_name().map(str::to_string))
            .flatten()
    }

    pub fn skip_dialog_visible(&self) -> bool {
        self.skip_dialog.visible && !self.is_finished()
    }

    /// Why no skip can be asked for now; `None` when it can.
    pub fn skip_refusal(&self) -> Option<&'static str> {
        if self.view.run_id.is_none() {
            Some("No run has started yet: nothing to skip")
        } else if self.is_finished() {
            Some("The run has finished: nothing to skip")
        } else if self.view.rollback.is_some() || self.rollback_asked.is_some() {
            Some("The run is rolling back: nothing to skip")
        } else if self.aborted {
            Some("The run is being aborted")
        } else {
            None
        }
    }

    /// Ids of the steps the operator may skip now: not yet started, of a kind nothing
    /// rests on (`StepKind::skippable`), and not already asked for.
    pub fn skip_candidates(&self) -> Vec<String> {
        self.view
            .steps
            .iter()
            .filter(|s| {
                s.state == StepState::Pending
                    && s.kind.skippable()
                    && !self.skips_asked.contains(&s.id)
            })
            .map(|s| s.id.clone())
            .collect()
    }

    pub fn rollback_dialog_visible(&self) -> bool {
        self.rollback_dialog.visible && !self.is_finished()
    }

    /// Why a rollback cannot be asked for now; `None` when it can.
    pub fn rollback_refusal(&self) -> Option<&'static str> {
        if self.view.run_id.is_none() {
            Some("No run has started yet: nothing to roll back")
        } else if self.is_finished() {
            Some("The run has finished: nothing to roll back from here")
        } else if self.view.mode == Some(RunMode::Rehearse) {
            Some("A rehearsal does not touch production: nothing to roll back")
        } else if self.view.rollback.is_some() {
            Some("The rollback is already under way")
        } else if self.rollback_asked.is_some() {
            Some("The rollback has already been asked for; waiting for the journal")
        } else if self.aborted {
            Some("The run is being aborted")
        } else if self.rollback_confirm_name().is_none() {
            Some("No environment is marked production: nothing to roll back")
        } else {
            None
        }
    }

    /// Open the rollback proposal (the window is exceeded), unless a rollback cannot be
    /// asked for or the dialog is already up.
    fn propose_rollback(&mut self) {
        if self.rollback_refusal().is_some() || self.rollback_dialog.visible {
            return;
        }
        let end = self
            .view
            .window_end
            .map(|t| format!(" (ended {} UTC)", t.format("%H:%M")))
            .unwrap_or_default();
        self.rollback_dialog.open(
            RollbackOrigin::WindowExceeded,
            &format!("cutover window exceeded{end}"),
        );
        self.show_help = false;
    }

    /// The first time the clock passes the end of the window, propose the rollback (the
    /// journal's `WindowExceeded` proposes it again each time it arrives).
    fn check_window(&mut self) {
        if self.window_exceeded_seen || self.is_finished() {
            return;
        }
        if self.forecast().is_some_and(|f| f.exceeded) {
            self.window_exceeded_seen = true;
            self.propose_rollback();
        }
    }

    pub fn running_step(&self) -> Option<&StepRow> {
        self.view
            .steps
            .iter()
            .find(|s| matches!(s.state, StepState::Running | StepState::WaitingSignOff))
    }

    /// Overall status: glyph, word, tone.
    pub fn status(&self) -> (&'static str, String, Tone) {
        if let Some(f) = &self.view.finished {
            let (g, w, t) = outcome_glyph_word(f.outcome);
            return (g, w.to_string(), t);
        }
        if self.aborted {
            return ("■", "ABORTING".into(), Tone::Warn);
        }
        if self.rollback_asked.is_some() && self.view.rollback.is_none() {
            return ("↺", "ROLLBACK ASKED".into(), Tone::Warn);
        }
        if let Some(rb) = &self.view.rollback
            && rb.finished.is_none()
        {
            return ("↺", "ROLLING BACK".into(), Tone::Warn);
        }
        if let Some(g) = self.open_gate() {
            return ("?", format!("WAITING AT GATE {}", g.gate), Tone::Active);
        }
        if self.view.run_id.is_none() {
            return ("·", "WAITING FOR RUN".into(), Tone::Neutral);
        }
        match self.running_step() {
            Some(s) => ("▶", format!("RUNNING {}", s.id), Tone::Active),
            None => ("▶", "RUNNING".into(), Tone::Active),
        }
    }

    fn push_log(&mut self, time: String, text: String, tone: Tone) {
        self.push_log_line(LogLine {
            time,
            text,
            tone,
            level: None,
        });
    }

    fn push_log_line(&mut self, line: LogLine) {
        if self.log.len() == LOG_CAPACITY {
            self.log.pop_front();
        }
        self.log.push_back(line);
        if self.log_scroll > 0 {
            // Keep the view still while scrolled up.
            self.log_scroll = (self.log_scroll + 1).min(self.log.len().saturating_sub(1));
        }
    }

    fn clock(&self) -> String {
        self.now
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default()
    }

    fn note(&mut self, text: String, tone: Tone) {
        self.push_log(self.clock(), text, tone);
    }

    /// A tracing line: at the app's clock, its level shown beside it; another crate's
    /// target is named after the message.
    fn log_traced(&mut self, level: tracing::Level, target: &str, message: String) {
        let tone = match level {
            tracing::Level::ERROR => Tone::Bad,
            tracing::Level::WARN => Tone::Warn,
            _ => Tone::Neutral,
        };
        let own = target == "cutover" || target.starts_with("cutover::");
        let text = if own || target.is_empty() {
            message
        } else {
            format!("{message} ({target})")
        };
        self.push_log_line(LogLine {
            time: self.clock(),
            text,
            tone,
            level: Some(level),
        });
    }

    /// A journal record: the view folds it; the console only reacts (dialogs, notices,
    /// the log, reading a reject file).
    fn apply_record(&mut self, rec: Record) -> Vec<Effect> {
        self.view.apply(&rec);
        if let Some(t) = parse_ts(&rec.ts)
            && self.now.is_none_or(|n| t > n)
        {
            self.now = Some(t);
        }
        let time = parse_ts(&rec.ts)
            .map(|t| t.format("%H:%M:%S").to_string())
            .unwrap_or_default();
        let mut effects = Vec::new();
        let described = crate::describe::describe(&rec.event);
        match rec.event {
            Event::EntityFinished {
                entity,
                reject_file,
                counts,
                ..
            } if !reject_file.is_empty() => {
                // One2many lines read from their own file have their own reject file
                // beside the entity's: shown as the rows of `<entity>.lines`.
                let lines = counts.lines.map(|_| Effect::LoadRejects {
                    entity: rejects::lines_entity(&entity),
                    path: crate::engine::lines::reject_path(
                        std::path::Path::new(&reject_file),
                        &entity,
                    )
                    .display()
                    .to_string(),
                });
                effects.push(Effect::LoadRejects {
                    entity,
                    path: reject_file,
                });
                effects.extend(lines);
            }
            Event::GateOpened { .. } => {
                let keyed = self.open_gate().is_some_and(|g| {
                    g.rule.as_ref().is_some_and(|r| {
                        r.roles
                            .iter()
                            .flat_map(|r| &r.approvers)
                            .any(|a| a.ssh_key.is_some())
                    })
                });
                self.dialog.open_fresh(self.gate_confirm_name(), keyed);
                self.show_help = false;
            }
            Event::SignOffRecorded { .. } => self.notice = None,
            Event::SignOffRefused { name, reason, .. } => {
                self.notice = Some(format!("✗ sign-off by {name} refused: {reason}"));
            }
            Event::GateDecided { .. } => self.dialog.visible = false,
            Event::RollbackStarted { reason } => {
                self.rollback_dialog.close();
                self.notice = Some(format!("↺ Rollback started: {reason}"));
            }
            Event::RollbackFinished { ok, message } => {
                self.notice = Some(if ok {
                    format!("↺ Rollback finished: {message}")
                } else {
                    format!("✗ Rollback FAILED: {message}")
                });
            }
            Event::WindowExceeded { .. } => {
                self.window_exceeded_seen = true;
                self.propose_rollback();
            }
            Event::RunFinished { .. } => {
                self.dialog.visible = false;
                self.rollback_dialog.close();
                self.confirm_quit = false;
            }
            _ => {}
        }
        if let Some((text, tone)) = described {
            self.push_log(time, text, tone);
        }
        self.check_window();
        effects
    }

    fn apply_progress(&mut self, snap: ProgressSnapshot) {
        self.progress = snap.clone();
        for p in snap {
            let e = self.view.entities.entry(p.entity.clone()).or_default();
            if e.phase.is_some() && p.phase.is_some() && e.phase != p.phase {
                if e.phase == Some(Phase::Load) {
                    // A late dry-run snapshot after load began: ignore it.
                    continue;
                }
                // A new phase for this entity: start its row over.
                *e = EntityRow::default();
            }
            if e.done {
                // EntityFinished already gave the final counts: the journal wins.
                continue;
            }
            e.entity = p.entity;
            e.phase = p.phase.or(e.phase);
            if p.expected > 0 {
                e.expected = p.expected;
            }
            // Counters only grow within a phase; a stale snapshot never moves them back.
            e.read = e.read.max(p.read);
            e.valid = e.valid.max(p.valid);
            e.rejected = e.rejected.max(p.rejected);
            e.loaded = e.loaded.max(p.loaded);
            e.elapsed_secs = e.elapsed_secs.max(p.elapsed_secs);
        }
    }

    /// One throughput sample per running entity (at most one a second).
    fn sample_throughput(&mut self, now: DateTime<Utc>) {
        for e in self
            .view
            .entities
            .values()
            .filter(|e| !e.done && e.phase.is_some())
        {
            self.throughput
                .entry(e.entity.clone())
                .or_default()
                .sample(now, e.phase, e.read);
        }
    }

    /// The rows/s history of an entity that is still running.
    pub fn running_throughput(&self, entity: &str) -> Option<&Throughput> {
        let e = self.view.entities.get(entity).filter(|e| !e.done)?;
        self.throughput.get(entity).filter(|t| t.phase == e.phase)
    }

    fn scroll(&mut self, delta: isize) {
        fn apply(v: usize, delta: isize, len: usize) -> usize {
            let max = len.saturating_sub(1) as isize;
            (v as isize + delta).clamp(0, max.max(0)) as usize
        }
        match self.tab {
            Tab::Rejects => self.rejects.scroll(delta),
            Tab::Reconciliation => {
                self.recon_scroll = apply(self.recon_scroll, delta, self.view.checks.len())
            }
            // The log counts from the bottom: "up" means further back.
            Tab::Log => self.log_scroll = apply(self.log_scroll, -delta, self.log.len()),
        }
    }

    fn abort_and_quit(&mut self) -> Vec<Effect> {
        if self.is_finished() || self.aborted {
            return vec![Effect::Quit];
        }
        self.aborted = true;
        vec![Effect::Send(Command::Abort), Effect::Quit]
    }
}

/// Apply one action. Returns what the loop must do (send a command, read a file, leave).
pub fn update(app: &mut App, action: Action) -> Vec<Effect> {
    match action {
        Action::Record(rec) => return app.apply_record(rec),
        Action::Progress(snap) => app.apply_progress(snap),
        Action::Tick { now } => {
            app.now = Some(now);
            app.sample_throughput(now);
            app.check_window();
        }
        Action::Rejects(a) => return rejects::update(app, a),
        Action::Log {
            level,
            target,
            message,
        } => app.log_traced(level, &target, message),
        Action::LogDropped { total } => app.log_dropped = app.log_dropped.max(total),
        Action::Watching(holder) => app.watching = Some(holder),
        Action::Notice { text } => {
            app.note(text.clone(), Tone::Warn);
            app.notice = Some(text);
        }
        Action::NextTab => app.tab = Tab::ALL[(app.tab.index() + 1) % Tab::ALL.len()],
        Action::PrevTab => {
            app.tab = Tab::ALL[(app.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len()]
        }
        Action::SelectTab(t) => app.tab = t,
        Action::ScrollUp => app.scroll(-1),
        Action::ScrollDown => app.scroll(1),
        Action::PageUp => app.scroll(-(PAGE_ROWS as isize)),
        Action::PageDown => app.scroll(PAGE_ROWS as isize),
        Action::ScrollTop => app.scroll(isize::MIN / 2),
        Action::ScrollBottom => app.scroll(isize::MAX / 2),
        Action::OpenGateDialog => {
            if app.open_gate().is_some() && !app.is_finished() {
                app.dialog.visible = true;
                app.show_help = false;
            } else {
                app.notice = Some("No gate is open".into());
            }
        }
        Action::HideGateDialog => app.dialog.visible = false,
        Action::DialogNextField => app.dialog.next_field(),
        Action::DialogPrevField => app.dialog.prev_field(),
        Action::DialogInput(req) => app.dialog.input(req),
        Action::DialogScroll(rows) => app.dialog.scroll_by(rows),
        Action::ChooseDecision(d) => {
            app.dialog.decision = Some(d);
            app.dialog.error = None;
        }
        Action::ToggleDecision => app.dialog.toggle_decision(),
        Action::ToggleHoldFreeze => app.dialog.hold_freeze = !app.dialog.hold_freeze,
        Action::SubmitSignOff => {
            if !app.dialog_visible() {
                return vec![];
            }
            let Some(gate) = app.open_gate().cloned() else {
                return vec![];
            };
            if let Ok(signoff) = app.dialog.validate(&gate) {
                let (g, w, _) = decision_glyph_word(signoff.decision);
                app.notice = Some(format!(
                    "Sign-off sent: {g} {w} by {} ({}); waiting for the journal",
                    signoff.name, signoff.role
                ));
                let hold =
                    (signoff.decision == Decision::NoGo && app.dialog.hold_freeze).then(|| {
                        Effect::Send(Command::HoldFreeze {
                            reason: signoff.comment.clone(),
                        })
                    });
                // Stay open, cleared, for the next approver; GateDecided closes it.
                app.dialog.clear();
                return hold
                    .into_iter()
                    .chain([Effect::Send(Command::SignOff(signoff))])
                    .collect();
            }
        }
        Action::OpenRollbackDialog => match app.rollback_refusal() {
            Some(why) => app.notice = Some(why.into()),
            None => {
                if !app.rollback_dialog.visible {
                    app.rollback_dialog.open(RollbackOrigin::Manual, "");
                }
                app.show_help = false;
            }
        },
        Action::CancelRollback => {
            if app.rollback_dialog.visible {
                app.notice = Some(
                    match app.rollback_dialog.origin {
                        RollbackOrigin::WindowExceeded => {
                            "Rollback proposal dismissed: returns on the next exceeded event, or R"
                        }
                        RollbackOrigin::Manual => "Rollback cancelled: nothing was sent",
                    }
                    .into(),
                );
            }
            app.rollback_dialog.close();
        }
        Action::RollbackSwitchField => app.rollback_dialog.other_field(),
        Action::RollbackInput(req) => app.rollback_dialog.input(req),
        Action::ConfirmRollback => {
            if !app.rollback_dialog_visible() {
                return vec![];
            }
            if let Some(why) = app.rollback_refusal() {
                app.rollback_dialog.close();
                app.notice = Some(why.into());
                return vec![];
            }
            let name = app.rollback_confirm_name().unwrap_or_default().to_string();
            if let Ok(reason) = app.rollback_dialog.validate(&name) {
                app.rollback_dialog.close();
                app.note(
                    format!("↺ Rollback asked by the operator: {reason}"),
                    Tone::Warn,
                );
                app.notice =
                    Some("↺ Rollback sent: the run rolls back at its next safe point".into());
                app.rollback_asked = Some(reason.clone());
                return vec![Effect::Send(Command::Rollback { reason })];
            }
        }
        Action::OpenSkipDialog => match app.skip_refusal() {
            Some(why) => app.notice = Some(why.into()),
            None => {
                if !app.skip_dialog.visible {
                    app.skip_dialog.open(&app.skip_candidates());
                }
                app.show_help = false;
            }
        },
        Action::CancelSkip => {
            if app.skip_dialog.visible {
                app.notice = Some("Skip cancelled: nothing was sent".into());
            }
            app.skip_dialog.close();
        }
        Action::SkipNextField => app.skip_dialog.next_field(),
        Action::SkipPrevField => app.skip_dialog.prev_field(),
        Action::SkipCycleStep(d) => app.skip_dialog.cycle_step(&app.skip_candidates(), d),
        Action::SkipInput(req) => app.skip_dialog.input(req),
        Action::SubmitSkip => {
            if !app.skip_dialog_visible() {
                return vec![];
            }
            if let Some(why) = app.skip_refusal() {
                app.skip_dialog.close();
                app.notice = Some(why.into());
                return vec![];
            }
            if let Ok(SkipAsk { step, name, reason }) =
                app.skip_dialog.validate(&app.skip_candidates())
            {
                app.skip_dialog.close();
                app.note(
                    format!("- Skip of {step} asked by {name}: {reason}"),
                    Tone::Warn,
                );
                app.notice = Some(format!(
                    "Skip sent: {step} is skipped when the run reaches it"
                ));
                app.skips_asked.push(step.clone());
                return vec![Effect::Send(Command::Skip { step, name, reason })];
            }
        }
        Action::ToggleHelp => {
            app.show_help = !app.show_help;
            app.help_scroll = 0;
        }
        Action::HelpScroll(d) => {
            let max = keymap::help_lines().saturating_sub(1) as isize;
            app.help_scroll = (app.help_scroll as isize + d).clamp(0, max) as usize;
        }
        Action::Quit => {
            if app.is_finished() || app.aborted {
                return vec![Effect::Quit];
            }
            if app.confirm_quit {
                app.confirm_quit = false;
                return app.abort_and_quit();
            }
            app.confirm_quit = true;
        }
        Action::CancelQuit => app.confirm_quit = false,
        Action::Interrupt => return app.abort_and_quit(),
    }
    vec![]
}

/// Which phase an entity row belongs to, for display.
pub fn entity_phase(e: &EntityRow) -> &'static str {
    phase_word(e.phase)
}

#[cfg(test)]
mod tests;
