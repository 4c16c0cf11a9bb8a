//! The terminal console: one `tokio::select!` loop over key presses, journal records,
//! progress snapshots, tracing lines and a tick. Keys become [`Action`]s through the
//! keymap table; [`update`] changes the [`App`]; the loop carries out the returned
//! [`Effect`]s (send a command, read a reject file off-thread, quit) and draws what
//! changed, at most one frame per [`FRAME`] unless a key was pressed.
//!
//! ```text
//!  runbook · run id                           window 4h00m left │ ▶ RUNNING load
//!  legacy · rehearsal · ▲ PRODUCTION production      finish ~19:35 · PNR 22:45
//! ┌ Runbook ─────────────────────┐┌ Entities · load ────────────────────────────┐
//! │✓ passed   backup 7m12s/10m00s││ invoices ██████░░░░ 60% ETA 3m20s           │
//! │? sign-off go_live   59s/15m00││   read 15,000 · valid · rejected · loaded   │
//! │· pending  load      –/45m00s │└─────────────────────────────────────────────┘
//! │                              │ 1 Rejects │ 2 Reconciliation │ 3 Log
//! │                              │┌ Rejects table / checks table / log ─────────┐
//! └──────────────────────────────┘└─────────────────────────────────────────────┘
//!  q quit · ? help · g sign-off · Tab tab · ↑↓ scroll · f filter · R rollback
//! ```
//! Region renderers live in [`views`], one file each.

pub mod reject_store;
pub mod views;

use std::time::Duration;

use anyhow::Context;
use chrono::Utc;
use futures::StreamExt;
use ratatui::DefaultTerminal;
use ratatui::crossterm::event::{Event as TermEvent, KeyEventKind};
use tokio::sync::{mpsc, watch};

use crate::app::{Action, App, Effect, RejectAction, keymap, update};
use crate::control::Command;
use crate::journal::events::{ProgressSnapshot, Record};
use crate::log_feed::{LogEvent, LogFeed};

/// Clock tick: window countdown, running-step time, ETAs.
pub const TICK: Duration = Duration::from_millis(250);
/// Records (or tracing lines) applied before the next draw when many arrive at once.
const RECORD_BURST: usize = 256;
/// Least time between two frames while the engine streams records and progress: a load
/// commits dozens of batches a second, and drawing each would take CPU from the load on a
/// small machine. A key press is drawn at once.
pub const FRAME: Duration = Duration::from_millis(100);

pub struct UiChannels {
    pub events: mpsc::UnboundedReceiver<Record>,
    pub progress: watch::Receiver<ProgressSnapshot>,
    pub commands: mpsc::Sender<Command>,
    /// Tracing lines for the log pane (`None`: the log pane shows the journal only).
    pub logs: Option<LogFeed>,
    /// `cutover watch`: the header's "held by …" line, refreshed. Set, the console is
    /// read-only: keys only look around, and quitting leaves the run alone.
    pub watch: Option<watch::Receiver<String>>,
    /// Lines for the operator from outside the engine (a watch's sign-off outcome).
    pub notices: Option<mpsc::UnboundedReceiver<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UiExit {
    /// The run finished (`RunFinished` seen) and the operator left.
    Finished,
    /// The operator left before the end; `Command::Abort` was sent.
    Aborted,
}

/// Take over the terminal and run the console until the operator quits. The terminal is
/// restored on every exit path (and on panic, by ratatui's hook).
pub async fn run(ch: UiChannels) -> anyhow::Result<UiExit> {
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            return Err(e).context("could not set up the terminal");
        }
    };
    let result = event_loop(&mut terminal, ch).await;
    ratatui::restore();
    result
}

async fn event_loop(terminal: &mut DefaultTerminal, mut ch: UiChannels) -> anyhow::Result<UiExit> {
    let mut app = App::new();
    let mut keys = crossterm::event::EventStream::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Results of off-thread work (reject files) come back here as actions.
    let (back_tx, mut back_rx) = mpsc::unbounded_channel::<Action>();
    let mut events_open = true;
    let mut progress_open = true;
    let mut keys_open = true;
    let mut logs = ch.logs.take();
    let mut dropped_seen = 0;
    // Reject files: indexed and searched off-thread; only the visible window is read here.
    let mut store = reject_store::RejectStore::default();
    let (store_tx, mut store_rx) = mpsc::unbounded_channel();
    // Frame pacing: something changed since the last frame, and when that frame was drawn.
    let mut dirty = true;
    let mut urgent = true;
    let mut drawn_at = tokio::time::Instant::now();
    // SIGTERM / SIGHUP end the run as a confirmed quit does; Ctrl-C is a key here and asks.
    let mut signals = crate::signals::StopSignals::without_interrupt();
    let mut watching = ch.watch.take();
    let mut notices = ch.notices.take();
    let read_only = watching.is_some();
    if let Some(w) = &watching {
        update(&mut app, Action::Watching(w.borrow().clone()));
    }

    loop {
        if let Some(request) = app.rejects.wanted_window() {
            // A few hundred rows read by offset: quick enough to do before drawing.
            let rows = store.fetch(&request).unwrap_or_else(|e| {
                let text = format!("✗ Could not read reject rows: {e:#}");
                let _ = back_tx.send(Action::Notice { text });
                Vec::new()
            });
            update(
                &mut app,
                Action::Rejects(RejectAction::Rows { request, rows }),
            );
        }
        let next_frame = drawn_at + FRAME;
        if dirty && (urgent || tokio::time::Instant::now() >= next_frame) {
            terminal.draw(|f| views::render(f, &app))?;
            drawn_at = tokio::time::Instant::now();
            (dirty, urgent) = (false, false);
        }
        let mut actions = Vec::new();
        tokio::select! {
            ev = keys.next(), if keys_open => match ev {
                Some(Ok(TermEvent::Key(k))) if k.kind != KeyEventKind::Release => {
                    let action = keymap::action_for(&app, k.code, k.modifiers);
                    if read_only {
                        match action {
                            // Leaving a watch leaves the run alone.
                            Some(Action::Quit | Action::Interrupt) => return Ok(UiExit::Finished),
                            Some(a) if a.watch_takes() => actions.push(a),
                            _ => {}
                        }
                    } else {
                        actions.extend(action);
                    }
                    urgent = true;
                }
                Some(Ok(_)) => urgent = true, // resize, focus, mouse: just redraw
                Some(Err(e)) => return Err(e).context("reading the terminal"),
                None => keys_open = false,
            },
            rec = ch.events.recv(), if events_open => match rec {
                Some(r) => {
                    actions.push(Action::Record(r));
                    while actions.len() < RECORD_BURST {
                        match ch.events.try_recv() {
                            Ok(r) => actions.push(Action::Record(r)),
                            Err(_) => break,
                        }
                    }
                }
                None => {
                    events_open = false;
                    if !app.is_finished() {
                        actions.push(Action::Notice { text: "The engine closed its event channel".into() });
                    }
                }
            },
            changed = ch.progress.changed(), if progress_open => match changed {
                Ok(()) => actions.push(Action::Progress(ch.progress.borrow_and_update().clone())),
                Err(_) => progress_open = false,
            },
            ev = recv_log(&mut logs), if logs.is_some() => match ev {
                Some(e) => {
                    actions.push(log_action(e));
                    while actions.len() < RECORD_BURST {
                        match logs.as_mut().map(|f| f.rx.try_recv()) {
                            Some(Ok(e)) => actions.push(log_action(e)),
                            _ => break,
                        }
                    }
                }
                None => logs = None,
            },
            _ = signals.next() => {
                if read_only {
                    return Ok(UiExit::Finished);
                }
                actions.push(Action::Interrupt);
                urgent = true;
            }
            changed = recv_watch(&mut watching), if watching.is_some() => match changed {
                Some(holder) => actions.push(Action::Watching(holder)),
                None => watching = None,
            },
            Some(a) = back_rx.recv() => actions.push(a),
            n = recv_notice(&mut notices), if notices.is_some() => match n {
                Some(text) => {
                    actions.push(Action::Notice { text });
                    urgent = true;
                }
                None => notices = None,
            },
            Some(msg) = store_rx.recv() => actions.push(store.receive(msg)),
            _ = tick.tick() => {
                actions.push(Action::Tick { now: Utc::now() });
                if let Some(total) = logs.as_ref().map(LogFeed::dropped).filter(|d| *d > dropped_seen) {
                    dropped_seen = total;
                    actions.push(Action::LogDropped { total });
                }
            }
            // A change waits at most one frame to be drawn.
            _ = tokio::time::sleep_until(next_frame), if dirty => {}
        }
        // What the operator did is drawn at once; the engine's changes wait for the frame.
        dirty |= !actions.is_empty() || urgent;
        for action in actions {
            for effect in update(&mut app, action) {
                match effect {
                    Effect::Send(cmd) => send(&ch.commands, cmd, &back_tx),
                    Effect::LoadRejects { entity, path } => {
                        reject_store::spawn_index(entity, path, store_tx.clone())
                    }
                    Effect::Rejects(e) => store.spawn(e, store_tx.clone()),
                    Effect::Quit => {
                        return Ok(if app.is_finished() {
                            UiExit::Finished
                        } else {
                            UiExit::Aborted
                        });
                    }
                }
            }
        }
    }
}

async fn recv_watch(w: &mut Option<watch::Receiver<String>>) -> Option<String> {
    let w = w.as_mut()?;
    w.changed().await.ok()?;
    Some(w.borrow_and_update().clone())
}

async fn recv_notice(n: &mut Option<mpsc::UnboundedReceiver<String>>) -> Option<String> {
    n.as_mut()?.recv().await
}

async fn recv_log(logs: &mut Option<LogFeed>) -> Option<LogEvent> {
    logs.as_mut()?.rx.recv().await
}

fn log_action(e: LogEvent) -> Action {
    Action::Log {
        level: e.level,
        target: e.target,
        message: e.message,
    }
}

/// Never block the console on a full command queue: hand the send to a task instead.
fn send(tx: &mpsc::Sender<Command>, cmd: Command, back: &mpsc::UnboundedSender<Action>) {
    match tx.try_send(cmd) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(cmd)) => {
            let (tx, back) = (tx.clone(), back.clone());
            tokio::spawn(async move {
                if tx.send(cmd).await.is_err() {
                    let _ = back.send(Action::Notice {
                        text: "The engine is no longer listening".into(),
                    });
                }
            });
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            let _ = back.send(Action::Notice {
                text: "The engine is no longer listening".into(),
            });
        }
    }
}

#[cfg(test)]
mod tests;
