//! Fault injection for the crash, resume and restart tests, driven by one environment
//! variable so the binary under test is the shipped one:
//!
//! `CUTOVER_FAULT=<when>:<kind>[.<qualifier>…][#<n>]:<action>`
//!
//! - `when`: `after` (the n-th matching journal record is written) or `before` (it is
//!   about to be written: the work is done, the journal does not know it yet);
//! - `kind`: an event kind as journaled (`batch_committed`, `step_finished`, …), or
//!   `batch_write` (right before a batch is written into the target; `before:` only);
//! - `qualifier`: a phase (`load`, `dry_run`), step id, entity or gate the event names;
//!   several, dot-separated, must all be named (`batch_committed.load.open_invoices#2`:
//!   the invoices' second production batch, whatever the entities beside them do);
//! - `n`: which match, from 1 (default 1);
//! - `action`: `kill` (SIGKILL to this process: no cleanup, like a power cut),
//!   `pause=<duration>` (e.g. `pause=3s`) or `fail` (the journal write fails, so the step
//!   that makes it fails the way a lost database or a full disk would).

use std::sync::Mutex;
use std::sync::OnceLock;
use std::time::Duration;

use crate::journal::events::{Event, Phase};
use crate::runbook::lint::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    before: bool,
    kind: String,
    /// Every one must be named by the event.
    qualifiers: Vec<String>,
    nth: u64,
    action: Action,
}

#[derive(Debug, Clone, PartialEq)]
enum Action {
    Kill,
    Pause(Duration),
    Fail,
}

impl Fault {
    pub fn parse(s: &str) -> Result<Fault, String> {
        let bad = || {
            format!(
                "CUTOVER_FAULT '{s}': expected <after|before>:<kind>[.<qualifier>…][#<n>]:<kill|fail|pause=DURATION>"
            )
        };
        let mut parts = s.splitn(3, ':');
        let (Some(when), Some(what), Some(action)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(bad());
        };
        let before = match when {
            "before" => true,
            "after" => false,
            _ => return Err(bad()),
        };
        let (what, nth) = match what.split_once('#') {
            Some((w, n)) => (w, n.parse::<u64>().map_err(|_| bad())?),
            None => (what, 1),
        };
        let mut names = what.split('.').map(str::to_string);
        let kind = names.next().unwrap_or_default();
        let qualifiers: Vec<String> = names.collect();
        if kind.is_empty() || qualifiers.iter().any(String::is_empty) {
            return Err(bad());
        }
        let action = match action.split_once('=') {
            None if action == "kill" => Action::Kill,
            None if action == "fail" => Action::Fail,
            Some(("pause", d)) => Action::Pause(parse_duration(d).ok_or_else(bad)?),
            _ => return Err(bad()),
        };
        Ok(Fault {
            before,
            kind,
            qualifiers,
            nth: nth.max(1),
            action,
        })
    }

    #[cfg(test)]
    fn matches(&self, e: &Event) -> bool {
        e.kind() == self.kind && self.named_by(&qualifiers(e))
    }

    /// Whether every qualifier is among those an event names.
    fn named_by(&self, quals: &[String]) -> bool {
        self.qualifiers.iter().all(|q| quals.contains(q))
    }
}

fn qualifiers(e: &Event) -> Vec<String> {
    let phase = |p: &Phase| match p {
        Phase::DryRun => "dry_run".to_string(),
        Phase::Load => "load".to_string(),
    };
    match e {
        Event::StepStarted { step } | Event::StepFinished { step, .. } => vec![step.clone()],
        Event::EntityStarted {
            phase: p, entity, ..
        }
        | Event::BatchCommitted {
            phase: p, entity, ..
        }
        | Event::EntityFinished {
            phase: p, entity, ..
        } => vec![phase(p), entity.clone()],
        Event::CheckRecorded { step, .. } | Event::CommandRan { step, .. } => vec![step.clone()],
        Event::RetryScheduled { step, entity, .. } => vec![step.clone(), entity.clone()],
        Event::GateOpened { gate, .. }
        | Event::SignOffRecorded { gate, .. }
        | Event::GateDecided { gate, .. } => vec![gate.clone()],
        Event::BackupTaken { env, .. }
        | Event::FreezePlanned { env, .. }
        | Event::FreezeApplied { env, .. }
        | Event::ProductionClosed { env, .. }
        | Event::EnvReopened { env, .. }
        | Event::FreezeHeld { env, .. } => vec![env.clone()],
        _ => vec![],
    }
}

struct Armed {
    fault: Fault,
    seen: u64,
}

fn armed() -> &'static Option<Mutex<Armed>> {
    static ARMED: OnceLock<Option<Mutex<Armed>>> = OnceLock::new();
    ARMED.get_or_init(|| {
        let s = std::env::var("CUTOVER_FAULT").ok()?;
        match Fault::parse(&s) {
            Ok(fault) => Some(Mutex::new(Armed { fault, seen: 0 })),
            Err(e) => {
                // A test that asked for a fault must not run without it.
                eprintln!("error: {e}");
                std::process::exit(2);
            }
        }
    })
}

/// Called by the executor around every journal append; `Err` is an injected failure.
pub async fn at(before: bool, e: &Event) -> anyhow::Result<()> {
    if armed().is_none() {
        return Ok(());
    }
    at_point(before, e.kind(), &qualifiers(e)).await
}

/// A point that is not a journal record, named like one: `batch_write` (qualifiers: the
/// phase and entity) is right before each batch is written into the target, so
/// `before:batch_write.load#3:pause=5s` holds the third production write back.
pub async fn at_point(before: bool, kind: &str, quals: &[String]) -> anyhow::Result<()> {
    let Some(m) = armed() else { return Ok(()) };
    let action = {
        let mut a = m.lock().unwrap_or_else(|p| p.into_inner());
        let f = &a.fault;
        if f.before != before || f.kind != kind || !f.named_by(quals) {
            return Ok(());
        }
        a.seen += 1;
        if a.seen != a.fault.nth {
            return Ok(());
        }
        a.fault.action.clone()
    };
    match action {
        Action::Kill => {
            tracing::warn!("CUTOVER_FAULT: killing this process at {kind}");
            let _ = std::process::Command::new("kill")
                .args(["-9", &std::process::id().to_string()])
                .status();
            // SIGKILL is not instant; nothing more may happen meanwhile.
            loop {
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Action::Pause(d) => tokio::time::sleep(d).await,
        Action::Fail => {
            tracing::warn!("CUTOVER_FAULT: failing at {kind}");
            anyhow::bail!(
                "injected failure (CUTOVER_FAULT) {} {kind}",
                if before { "before" } else { "after" },
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_matches() {
        let f = Fault::parse("after:batch_committed.load#3:kill").unwrap();
        assert_eq!(
            (f.before, f.nth, f.action.clone()),
            (false, 3, Action::Kill)
        );
        let load = Event::BatchCommitted {
            phase: Phase::Load,
            entity: "customers".into(),
            batch: 1,
            rows: 1,
            last_line: 2,
            refused: vec![],
        };
        let dry = Event::BatchCommitted {
            phase: Phase::DryRun,
            entity: "customers".into(),
            batch: 1,
            rows: 1,
            last_line: 2,
            refused: vec![],
        };
        assert!(f.matches(&load));
        assert!(!f.matches(&dry));
        let p = Fault::parse("before:step_finished.extract:pause=2s").unwrap();
        assert_eq!(p.action, Action::Pause(Duration::from_secs(2)));
        assert!(p.before);
        assert!(p.matches(&Event::StepFinished {
            step: "extract".into(),
            status: crate::journal::events::StepStatus::Passed,
            message: String::new(),
            duration_ms: 0
        }));
        assert_eq!(
            Fault::parse("before:backup_taken:fail").unwrap().action,
            Action::Fail
        );
        // Several qualifiers: all must be named.
        let both = Fault::parse("after:batch_committed.load.customers:kill").unwrap();
        assert!(both.matches(&load));
        assert!(!both.matches(&dry));
        let other = Fault::parse("after:batch_committed.load.vehicles:kill").unwrap();
        assert!(!other.matches(&load));
        for bad in [
            "kill",
            "after:x:explode",
            "during:x:kill",
            "after:x#y:kill",
            "after:x..load:kill",
        ] {
            assert!(Fault::parse(bad).is_err(), "{bad}");
        }
    }
}
