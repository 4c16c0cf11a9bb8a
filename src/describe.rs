//! Journal events in words: the one place that says what each event means to a person.
//! The console's log pane and the headless progress lines both print these.

use crate::figures::{fmt_count, fmt_secs};
use crate::journal::events::{CheckStatus, Event, RunMode, StepStatus};
use crate::words::{
    StepState, Tone, check_glyph_word, decision_glyph_word, outcome_glyph_word, phase_word,
};

/// Human text for an event and how it should feel, or `None` for events too frequent
/// (or too internal) to list. Every line starts with a glyph or a plain word, so nothing
/// depends on colour.
pub fn describe(ev: &Event) -> Option<(String, Tone)> {
    use Tone::*;
    Some(match ev {
        Event::RunStarted {
            run_id,
            mode,
            runbook_name,
            artifacts_dir,
            ..
        } => {
            let mode = match mode {
                RunMode::Run => "run",
                RunMode::Rehearse => "rehearsal",
            };
            (
                format!(
                    "Run {run_id} started: {runbook_name} ({mode}) — artifacts in {artifacts_dir}"
                ),
                Neutral,
            )
        }
        Event::StepStarted { step } => (format!("▶ {step} started"), Active),
        // The StepSkipped before it said who skipped the step and why.
        Event::StepFinished {
            status: StepStatus::Skipped,
            ..
        } => return None,
        Event::StepFinished {
            step,
            status,
            message,
            duration_ms,
        } => {
            let st = StepState::from(*status);
            let mut t = format!(
                "{} {step} {} in {}",
                st.glyph(),
                st.word(),
                fmt_secs(duration_ms / 1000)
            );
            if !message.is_empty() {
                t.push_str(": ");
                t.push_str(message);
            }
            let tone = if *status == StepStatus::Passed {
                Good
            } else {
                st.tone()
            };
            (t, tone)
        }
        Event::StepSkipped { step, name, reason } => {
            (format!("- {step} skipped by {name}: {reason}"), Warn)
        }
        Event::CommandRan {
            step,
            command,
            exit_code,
            timed_out,
            ..
        } => (
            format!(
                "Command of {step} ({command}) {}",
                match (exit_code, timed_out) {
                    (_, true) => "timed out and was killed".to_string(),
                    (Some(c), _) => format!("exited with {c}"),
                    (None, _) => "was killed by a signal".to_string(),
                }
            ),
            if *exit_code == Some(0) { Good } else { Bad },
        ),
        Event::BackupTaken {
            env, path, bytes, ..
        } => (
            format!(
                "Backup of {env} taken: {path} ({} bytes)",
                fmt_count(*bytes)
            ),
            Neutral,
        ),
        Event::FreezePlanned { env, method, .. } => (format!("Freezing {env}: {method}"), Neutral),
        Event::FreezeApplied {
            env,
            method,
            watermark,
            ..
        } => (
            format!(
                "Freeze applied on {env} ({method}), {} tables watermarked",
                watermark.len()
            ),
            Neutral,
        ),
        Event::ExtractRecorded { files, .. } => {
            let rows: u64 = files.iter().map(|f| f.rows).sum();
            (
                format!(
                    "Extract recorded: {} files, {} rows",
                    files.len(),
                    fmt_count(rows)
                ),
                Neutral,
            )
        }
        Event::EntityStarted {
            phase,
            entity,
            table,
            expected_rows,
        } => (
            format!(
                "{} {entity} → {table}: {} rows expected",
                phase_word(Some(*phase)),
                fmt_count(*expected_rows)
            ),
            Neutral,
        ),
        Event::BatchCommitted { .. } | Event::ForecastBasis { .. } => return None,
        Event::RetryScheduled {
            entity,
            attempt,
            max_attempts,
            delay_ms,
            error,
            ..
        } => (
            format!(
                "! {entity}: {error}; retry {attempt} of {max_attempts} in {:.1}s",
                *delay_ms as f64 / 1000.0
            ),
            Warn,
        ),
        Event::NotificationDelivered {
            about,
            url,
            attempt,
            status,
        } => (
            format!("✉ webhook {url} took {about} (try {attempt}, HTTP {status})"),
            Neutral,
        ),
        Event::NotificationFailed {
            about,
            url,
            attempt,
            error,
            gives_up,
            ..
        } => (
            format!(
                "! webhook {url}: {about} not delivered (try {attempt}): {error}{}",
                if *gives_up {
                    "; given up"
                } else {
                    "; retrying"
                }
            ),
            Warn,
        ),
        Event::LeaseTakenOver {
            previous,
            holder,
            why,
        } => (
            format!(
                "↻ Lease taken over by pid {} on {} from pid {} on {} ({why})",
                holder.pid, holder.host, previous.pid, previous.host
            ),
            Warn,
        ),
        Event::RunResumed { completed, .. } => (
            format!(
                "↻ Resumed from the journal; not repeated: {}",
                if completed.is_empty() {
                    "nothing".to_string()
                } else {
                    completed.join(", ")
                }
            ),
            Active,
        ),
        Event::WindowWarning {
            projected_finish,
            window_end,
            point_of_no_return,
        } => (
            format!(
                "! Projected finish {projected_finish} overruns the window (ends {window_end}; point of no return {point_of_no_return})"
            ),
            Warn,
        ),
        Event::WindowExceeded { window_end } => (
            format!("✗ The cutover window ended at {window_end}: rollback proposed"),
            Bad,
        ),
        Event::EntityFinished {
            phase,
            entity,
            counts,
            reject_file,
            ..
        } => (
            format!(
                "{} {entity} done: {} valid, {} rejected, {} loaded{}",
                phase_word(Some(*phase)),
                fmt_count(counts.valid),
                fmt_count(counts.rejected),
                fmt_count(counts.loaded),
                if counts.rejected > 0 {
                    format!(" — rejects: {reject_file}")
                } else {
                    String::new()
                }
            ),
            if counts.rejected > 0 { Warn } else { Good },
        ),
        Event::CheckRecorded { result, .. } => {
            let (g, w, tone) = check_glyph_word(result.status);
            let f = crate::figures::check_figures(result);
            let mut t = format!(
                "{g} check {} {w} ({}): source {} / target {}",
                result.name, result.entity, f.source, f.target
            );
            if f.difference != "–" && result.status != CheckStatus::Pass {
                t.push_str(&format!(", difference {}", f.difference));
            }
            if !result.detail.is_empty() {
                t.push_str(&format!(" ({})", result.detail));
            }
            (t, tone)
        }
        Event::GateOpened {
            gate,
            title,
            quorum,
            roles,
            recommendation,
            reasons,
            ..
        } => {
            let (g, w, _) = decision_glyph_word(*recommendation);
            let mut t = format!(
                "? Gate {gate} open: {title} (recommendation {g} {w}) — needs {quorum} GO incl. {}",
                roles.join(", ")
            );
            if !reasons.is_empty() {
                t.push_str("; ");
                t.push_str(&reasons.join("; "));
            }
            (t, Active)
        }
        Event::SignOffRecorded {
            gate,
            name,
            role,
            decision,
            comment,
            overrides,
            ..
        } => {
            let (g, w, tone) = decision_glyph_word(*decision);
            let over = if *overrides {
                " (overriding the NO-GO recommendation)"
            } else {
                ""
            };
            let mut t = format!("{g} Sign-off at {gate}: {w}{over} by {name} ({role})");
            if !comment.is_empty() {
                t.push_str(" — ");
                t.push_str(comment);
            }
            (t, tone)
        }
        Event::SignOffRefused {
            gate,
            name,
            role,
            decision,
            reason,
            ..
        } => {
            let (_, w, _) = decision_glyph_word(*decision);
            (
                format!("✗ Sign-off at {gate} refused: {w} by {name} ({role}) — {reason}"),
                Warn,
            )
        }
        Event::GateDecided { gate, decision } => {
            let (g, w, tone) = decision_glyph_word(*decision);
            (format!("{g} Gate {gate} decided: {w}"), tone)
        }
        Event::ProductionClosed { env, acl, .. } => (
            format!("■ Production {env} closed to its users (privileges before: {acl})"),
            Neutral,
        ),
        Event::EnvReopened { env, message, .. } => {
            (format!("✓ {env} reopened to its users: {message}"), Good)
        }
        Event::FreezeHeld { env, reason } => (
            format!("■ Legacy {env} kept frozen after the NO-GO: {reason}"),
            Warn,
        ),
        Event::RollbackStarted { reason } => (format!("↺ Rollback started: {reason}"), Warn),
        Event::RollbackFinished { ok, message } => {
            if *ok {
                (format!("↺ Rollback verified: {message}"), Warn)
            } else {
                (format!("✗ Rollback FAILED: {message}"), Bad)
            }
        }
        Event::RunFinished {
            outcome,
            exit_code,
            message,
        } => {
            let (g, w, tone) = outcome_glyph_word(*outcome);
            (
                format!("{g} Run finished: {w} (exit {exit_code}): {message}"),
                tone,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::events::{Decision, Phase};

    #[test]
    fn frequent_events_have_no_line() {
        let ev = Event::BatchCommitted {
            phase: Phase::Load,
            entity: "people".into(),
            batch: 3,
            rows: 500,
            last_line: 1500,
            refused: vec![],
        };
        assert_eq!(describe(&ev), None);
    }

    #[test]
    fn a_skip_is_one_line_with_who_and_why() {
        let skipped = Event::StepSkipped {
            step: "unfreeze".into(),
            name: "Migration lead".into(),
            reason: "reopened by hand".into(),
        };
        assert_eq!(
            describe(&skipped),
            Some((
                "- unfreeze skipped by Migration lead: reopened by hand".into(),
                Tone::Warn
            ))
        );
        let finished = Event::StepFinished {
            step: "unfreeze".into(),
            status: StepStatus::Skipped,
            message: "skipped by Migration lead: reopened by hand".into(),
            duration_ms: 0,
        };
        assert_eq!(describe(&finished), None);
    }

    #[test]
    fn retry_and_sign_off_say_what_headless_and_console_need() {
        let retry = Event::RetryScheduled {
            step: "load".into(),
            entity: "customers".into(),
            attempt: 1,
            max_attempts: 5,
            delay_ms: 1500,
            error: "connection refused".into(),
        };
        assert_eq!(
            describe(&retry),
            Some((
                "! customers: connection refused; retry 1 of 5 in 1.5s".into(),
                Tone::Warn
            ))
        );
        let no_go = Event::SignOffRecorded {
            gate: "go_live".into(),
            name: "Dana".into(),
            role: "finance".into(),
            decision: Decision::NoGo,
            comment: "ledger off by 2.00".into(),
            evidence_sha256: String::new(),
            overrides: false,
            signature: None,
        };
        assert_eq!(
            describe(&no_go),
            Some((
                "✗ Sign-off at go_live: NO-GO by Dana (finance) — ledger off by 2.00".into(),
                Tone::Bad
            ))
        );
    }
}
