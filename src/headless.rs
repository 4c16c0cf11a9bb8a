//! Headless mode: the same run without a terminal UI, one progress line at a time on stderr.

use std::io::Write;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::journal::events::{CheckStatus, Decision, Event, ProgressSnapshot, Record, StepStatus};

pub async fn print_progress(
    mut records: mpsc::Receiver<Record>,
    mut progress: watch::Receiver<ProgressSnapshot>,
    quiet: bool,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut err = std::io::stderr();
    loop {
        tokio::select! {
            r = records.recv() => match r {
                Some(r) => if let Some(line) = describe(&r) { let _ = writeln!(err, "{} {line}", &r.ts[11..19]); },
                None => break,
            },
            _ = tick.tick() => {
                if quiet { continue; }
                let snap = progress.borrow_and_update().clone();
                for p in snap.iter().filter(|p| !p.done && p.read > 0) {
                    let rate = if p.elapsed_secs > 0.0 { p.read as f64 / p.elapsed_secs } else { 0.0 };
                    let _ = writeln!(err, "         {} {}: {}/{} read, {} valid, {} rejected, {} loaded, {:.0} rows/s",
                        p.phase.map(|p| format!("{p:?}")).unwrap_or_default(), p.entity, p.read, p.expected, p.valid, p.rejected, p.loaded, rate);
                }
            }
        }
    }
}

pub fn describe(r: &Record) -> Option<String> {
    Some(match &r.event {
        Event::RunStarted {
            run_id,
            mode,
            runbook_name,
            artifacts_dir,
            ..
        } => {
            format!("{mode:?} {run_id} of \"{runbook_name}\" — artifacts in {artifacts_dir}")
        }
        Event::StepStarted { step } => format!("▶ {step}"),
        Event::StepFinished {
            step,
            status,
            message,
            duration_ms,
        } => {
            let g = match status {
                StepStatus::Passed => "✓ passed",
                StepStatus::Warned => "! warned",
                StepStatus::Failed => "✗ FAILED",
                StepStatus::Skipped => "- skipped",
                StepStatus::RolledBack => "↺ rolled back",
            };
            format!(
                "{g} {step} ({:.1}s): {message}",
                *duration_ms as f64 / 1000.0
            )
        }
        Event::EntityFinished {
            phase,
            entity,
            counts,
            reject_file,
            ..
        } => format!(
            "  {phase:?} {entity}: in file {}, in scope {}, valid {}, rejected {}, loaded {}{}",
            counts.in_file,
            counts.in_scope,
            counts.valid,
            counts.rejected,
            counts.loaded,
            if counts.rejected > 0 {
                format!(" — rejects: {reject_file}")
            } else {
                String::new()
            }
        ),
        Event::CheckRecorded { result, .. } => format!(
            "  {} {} {}: source {} / target {} ({})",
            match result.status {
                CheckStatus::Pass => "✓ PASS",
                CheckStatus::Warn => "! WARN",
                CheckStatus::Fail => "✗ FAIL",
            },
            result.entity,
            result.name,
            result.source,
            result.target,
            result.detail
        ),
        Event::GateOpened {
            gate,
            quorum,
            roles,
            recommendation,
            reasons,
            ..
        } => format!(
            "  gate {gate}: recommendation {} — needs {quorum} GO sign-offs incl. roles {}{}",
            if *recommendation == Decision::Go {
                "✓ GO"
            } else {
                "✗ NO-GO"
            },
            roles.join(", "),
            if reasons.is_empty() {
                String::new()
            } else {
                format!("; {}", reasons.join("; "))
            }
        ),
        Event::SignOffRecorded {
            name,
            role,
            decision,
            comment,
            ..
        } => {
            format!(
                "  sign-off: {name} ({role}) {} — {comment}",
                if *decision == Decision::Go {
                    "GO"
                } else {
                    "NO-GO"
                }
            )
        }
        Event::GateDecided { gate, decision } => format!(
            "  gate {gate} decided: {}",
            if *decision == Decision::Go {
                "GO"
            } else {
                "NO-GO"
            }
        ),
        Event::RollbackStarted { reason } => format!("↺ ROLLBACK started: {reason}"),
        Event::RollbackFinished { ok, message } => format!(
            "↺ rollback {}: {message}",
            if *ok { "verified" } else { "FAILED" }
        ),
        Event::RunFinished {
            outcome,
            exit_code,
            message,
        } => format!("■ {outcome:?} (exit {exit_code}): {message}"),
        Event::CommandRan {
            step,
            exit_code,
            timed_out,
            ..
        } => format!(
            "  {step}: command {}",
            match (exit_code, timed_out) {
                (_, true) => "timed out and was killed".to_string(),
                (Some(c), _) => format!("exited with {c}"),
                (None, _) => "was killed by a signal".to_string(),
            }
        ),
        Event::RetryScheduled {
            entity,
            attempt,
            max_attempts,
            delay_ms,
            error,
            ..
        } => format!(
            "! {entity}: {error}; retry {attempt} of {max_attempts} in {:.1}s",
            *delay_ms as f64 / 1000.0
        ),
        Event::RunResumed { completed, .. } => format!(
            "↻ resuming this run from the journal; not repeated: {}",
            if completed.is_empty() {
                "nothing".to_string()
            } else {
                completed.join(", ")
            }
        ),
        Event::WindowWarning {
            projected_finish,
            window_end,
            point_of_no_return,
        } => format!(
            "! the projected finish {projected_finish} overruns the window (ends {window_end}; point of no return {point_of_no_return})"
        ),
        Event::WindowExceeded { window_end } => {
            format!("✗ the cutover window ended at {window_end}: the rollback plan is proposed")
        }
        Event::ForecastBasis { .. }
        | Event::BackupTaken { .. }
        | Event::FreezeApplied { .. }
        | Event::ExtractRecorded { .. }
        | Event::EntityStarted { .. }
        | Event::BatchCommitted { .. } => return None,
    })
}
