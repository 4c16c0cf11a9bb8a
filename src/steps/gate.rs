//! The sign-off gate: the evidence shown, the sign-offs taken (offered, from the console,
//! or journaled by `cutover sign`) and counted by the one gate policy (`signoff::policy`).

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use anyhow::Context;

use super::{Executor, StepDone, Stop, done, exit, lock};
use crate::control::Command;
use crate::journal::events::*;
use crate::runview::RunView;

impl Executor {
    pub(super) async fn gate(&mut self, gate: &str) -> Result<StepDone, Stop> {
        use crate::signoff::policy;
        let g = self
            .plan
            .rb
            .gates
            .get(gate)
            .with_context(|| format!("unknown gate {gate}"))?
            .clone();
        let mut run = RunView::of(&self.journal.run_records(&self.run_id).await?);
        // Evidence: the checks of the last validate of this run, as journaled.
        let shown = run.evidence();
        let checks: Vec<CheckResult> = shown.checks.iter().map(|c| c.result.clone()).collect();
        let mut reasons: Vec<String> = checks
            .iter()
            .filter(|c| c.status != CheckStatus::Pass)
            .map(|c| {
                // As the console shows them: money with its currency.
                let f = crate::figures::check_figures(c);
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
        let evidence = self.gate_evidence(&run, &checks);
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
        let evidence_sha256 = shown.sha256();
        // A resumed run keeps the lead its gate named before, unless told otherwise.
        let lead = self
            .lead
            .clone()
            .or_else(|| self.plan.rb.runbook.lead.clone())
            .or_else(|| {
                run.gates
                    .iter()
                    .filter(|g| g.gate == gate)
                    .filter_map(|g| g.rule.as_ref()?.lead.clone())
                    .next_back()
            });
        let rule = crate::signoff::rule_of(&g, lead.as_deref());
        self.emit(Event::GateOpened {
            gate: gate.into(),
            title: g.title.clone(),
            quorum: rule.quorum,
            roles: rule.roles.iter().map(|r| r.role.clone()).collect(),
            approvers: rule
                .roles
                .iter()
                .flat_map(|r| {
                    r.approvers
                        .iter()
                        .map(|a| format!("{} ({})", a.name, r.role))
                })
                .chain(
                    g.approvers
                        .iter()
                        .filter(|a| {
                            !rule.roles.iter().any(|r| {
                                r.role == a.role
                                    && r.approvers
                                        .iter()
                                        .any(|x| crate::signoff::same_person(&x.name, &a.name))
                            })
                        })
                        .map(|a| format!("{} ({})", a.name, a.role)),
                )
                .collect(),
            recommendation,
            reasons: reasons.clone(),
            evidence_sha256: evidence_sha256.clone(),
            evidence,
            rule: Some(rule.clone()),
        })
        .await?;
        // Sign-offs given on this same evidence before an interruption still count, and
        // so do those `cutover sign` appends while the gate waits: the journal is read
        // again each time round.
        let mut last_window_check = Instant::now();
        // Sign-offs other processes journal reach the console and the progress lines
        // through this process too: records after `seen` that it did not write itself.
        let mut seen = run.head.as_ref().map_or(0, |h| h.seq);
        let mut own: HashSet<i64> = HashSet::new();
        loop {
            // Only what was appended since the last look (a run holds thousands of records).
            loop {
                let new = self.journal.records_after(&self.run_id, seen, 1000).await?;
                let Some(last) = new.last() else { break };
                seen = last.seq;
                for r in new {
                    if !own.contains(&r.seq)
                        && matches!(
                            r.event,
                            Event::SignOffRecorded { .. } | Event::SignOffRefused { .. }
                        )
                    {
                        // The run's view stays the fold of the whole journal.
                        lock(&self.view).apply(&r);
                        if let Some(tx) = &self.records_tx {
                            let _ = tx.send(r.clone());
                        }
                    }
                    run.apply(&r);
                }
            }
            // The sign-offs since the last validate: older ones were given on other evidence.
            let view = policy::fold(
                &rule,
                gate,
                &evidence_sha256,
                recommendation,
                &run.sign_records_since_validate,
            );
            match &view.status {
                policy::Status::Go => {
                    self.emit(Event::GateDecided {
                        gate: gate.into(),
                        decision: Decision::Go,
                    })
                    .await?;
                    let who = view
                        .people
                        .iter()
                        .map(|(n, r)| format!("{n} ({r})"))
                        .collect::<Vec<_>>()
                        .join(", ");
                    return done(StepStatus::Passed, format!("GO by {who}"));
                }
                policy::Status::NoGo {
                    name,
                    role,
                    comment,
                } => {
                    self.emit(Event::GateDecided {
                        gate: gate.into(),
                        decision: Decision::NoGo,
                    })
                    .await?;
                    return Err(Stop::Outcome(
                        Outcome::NoGo,
                        exit::NO_GO,
                        format!("NO-GO by {name} ({role}): {comment}"),
                    ));
                }
                policy::Status::Waiting => {}
            }
            let next = if self.offered < self.opts.sign_offs.len() {
                self.offered += 1;
                let s = self.opts.sign_offs[self.offered - 1].clone();
                let already = view
                    .people
                    .iter()
                    .any(|(n, r)| crate::signoff::same_person(n, &s.name) && *r == s.role);
                if s.decision == Decision::Go && already {
                    continue; // already signed before the interruption
                }
                Some(s)
            } else if self.opts.interactive {
                // The window keeps running while people read the evidence; another
                // process may sign meanwhile (`cutover sign`), so look at the journal
                // again every second.
                let cmd = {
                    let mut rx = self.commands.lock().await;
                    tokio::select! {
                        c = rx.recv() => Some(c),
                        _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => None,
                    }
                };
                if last_window_check.elapsed() >= std::time::Duration::from_secs(5) {
                    last_window_check = Instant::now();
                    if let Some(h) = self.check_window().await? {
                        return Err(h.into());
                    }
                }
                match cmd {
                    None => continue,
                    Some(Some(Command::SignOff(s))) => Some(s),
                    // For a later step: noted, and the gate waits on.
                    Some(Some(Command::Skip { step, name, reason })) => {
                        self.ask_skip(step, name, reason);
                        continue;
                    }
                    Some(Some(Command::Rollback { reason })) => {
                        return Err(Stop::Rollback(reason));
                    }
                    // Taken with the NO-GO that follows it.
                    Some(Some(Command::HoldFreeze { reason })) => {
                        *lock(&self.hold_freeze) = Some(reason);
                        continue;
                    }
                    Some(Some(Command::Abort) | None) => {
                        return Err(Stop::Outcome(
                            Outcome::Failed,
                            exit::INTERRUPTED,
                            "interrupted at the gate by the operator".into(),
                        ));
                    }
                }
            } else if self.wait_at_gate {
                // Headless: the sign-offs come through the journal (`cutover sign`).
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                if let Some(stop) = self.interrupted() {
                    return Err(stop);
                }
                if last_window_check.elapsed() >= std::time::Duration::from_secs(5) {
                    last_window_check = Instant::now();
                    if let Some(h) = self.check_window().await? {
                        return Err(h.into());
                    }
                }
                continue;
            } else {
                None
            };
            let Some(s) = next else {
                let roles_left: Vec<&str> = view
                    .roles
                    .iter()
                    .filter(|r| r.signed.len() < r.quorum)
                    .map(|r| r.role.as_str())
                    .collect();
                return Err(Stop::Outcome(
                    Outcome::WaitingAtGate,
                    exit::WAITING_AT_GATE,
                    format!(
                        "waiting at gate '{gate}': {} of {} GO sign-offs ({}){}{}{}; give them with `cutover sign` or --sign-off \"NAME|ROLE|go|COMMENT\"",
                        view.people.len(),
                        view.quorum,
                        view.counts(),
                        view.not_counted
                            .iter()
                            .map(|n| format!(
                                "; not recorded: {} ({}): {}",
                                n.name, n.role, n.reason
                            ))
                            .collect::<String>(),
                        if roles_left.is_empty() {
                            String::new()
                        } else {
                            format!(", roles still to sign: {}", roles_left.join(", "))
                        },
                        view.missing
                            .iter()
                            .filter(|m| m.starts_with("the lead ("))
                            .map(|m| format!("; {m}"))
                            .collect::<String>(),
                    ),
                ));
            };
            // A signature file that cannot be read is a sign-off without its signature.
            let signature = s
                .signature_file
                .as_deref()
                .map(crate::signoff::sshsig::read)
                .transpose();
            let signed = policy::Signed {
                name: s.name.clone(),
                role: s.role.clone(),
                decision: s.decision,
                comment: s.comment.clone(),
                evidence_sha256: evidence_sha256.clone(),
                signature: signature.clone().ok().flatten(),
            };
            if let Some(reason) = signature.err().or_else(|| {
                policy::refusal(&rule, &evidence_sha256, recommendation, &view, &signed)
            }) {
                tracing::warn!("sign-off by {} ({}) refused: {reason}", s.name, s.role);
                let r = self
                    .emit(Event::SignOffRefused {
                        gate: gate.into(),
                        name: s.name,
                        role: s.role,
                        decision: s.decision,
                        comment: s.comment,
                        evidence_sha256: evidence_sha256.clone(),
                        reason,
                    })
                    .await?;
                own.insert(r.seq);
                continue;
            }
            let r = self
                .emit(Event::SignOffRecorded {
                    gate: gate.into(),
                    name: s.name.clone(),
                    role: s.role.clone(),
                    decision: s.decision,
                    comment: s.comment.clone(),
                    evidence_sha256: evidence_sha256.clone(),
                    overrides: s.decision == Decision::Go && recommendation == Decision::NoGo,
                    signature: signed.signature,
                })
                .await?;
            own.insert(r.seq);
        }
    }

    /// What the gate shows beside its reasons: reconciliation totals, each entity's reject
    /// rate against its budget (from this run's last dry run) and the projection against
    /// the window.
    fn gate_evidence(&self, run: &RunView, checks: &[CheckResult]) -> GateEvidence {
        let count = |st: CheckStatus| checks.iter().filter(|c| c.status == st).count();
        let empty = BTreeMap::new();
        let dry_run = run.phases.get(&Phase::DryRun).unwrap_or(&empty);
        let dry: BTreeMap<&str, &EntityCounts> = dry_run
            .iter()
            .map(|(e, r)| (e.as_str(), &r.counts))
            .collect();
        let dry_sums: BTreeMap<&str, &BTreeMap<String, String>> =
            dry_run.iter().map(|(e, r)| (e.as_str(), &r.sums)).collect();
        let money_rejected = MoneyRejected::from_sums(&dry_sums);
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
            money_rejected,
        }
    }
}

/// `2026-11-21T22:45:00Z` as `Sat 22:45 UTC` (a window spans a weekend at most) (as is when it is not RFC 3339).
fn utc_minute(ts: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(ts)
        .map(|t| t.format("%a %H:%M UTC").to_string())
        .unwrap_or_else(|_| ts.to_string())
}
