//! `cutover sign`: an approver signs the waiting gate from anywhere the journal is
//! reachable, as themselves. The sign-off is judged by the gate policy against the run's
//! records and appended (as recorded or as refused) in one journal transaction; the
//! waiting run reads it from the journal and goes on once the quorum is met.

use anyhow::{Context, Result};

use crate::journal::Journal;
use crate::journal::events::{Decision, Event, GateRule};
use crate::runbook::Plan;
use crate::runview::{GateState, RunView};
use crate::signoff::{policy, short};
use crate::steps::exit;

pub struct SignRequest {
    pub gate: String,
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub comment: String,
    /// The evidence hash the approver was shown; the gate's current one when not given.
    pub evidence_sha256: Option<String>,
    /// Armored `ssh-keygen -Y sign -n cutover` signature over the evidence hash.
    pub signature: Option<String>,
}

/// The gate named `gate` as the run's view shows it, still waiting, and the rule its
/// sign-offs are counted by (from the runbook when an older cutover journaled none).
fn open_gate<'a>(
    run: &'a RunView,
    plan: Option<&Plan>,
    gate: &str,
) -> Result<(&'a GateState, GateRule), String> {
    let Some(g) = run.gates.iter().rev().find(|g| g.gate == gate) else {
        return Err(format!(
            "the run has not reached gate '{gate}' yet: there is no evidence to sign"
        ));
    };
    if let Some(d) = g.decided {
        return Err(format!(
            "gate '{gate}' is already decided ({}); nothing waits for a sign-off",
            word(d)
        ));
    }
    let rule = match (&g.rule, plan) {
        (Some(r), _) => r.clone(),
        (None, Some(plan)) => plan
            .rb
            .gates
            .get(gate)
            .map(|x| crate::signoff::rule_of(x, plan.rb.runbook.lead.as_deref()))
            .ok_or_else(|| format!("the runbook has no gate '{gate}'"))?,
        (None, None) => {
            return Err(format!(
                "gate '{gate}' was opened by an older cutover that journaled no rule: sign with `cutover sign`"
            ));
        }
    };
    Ok((g, rule))
}

/// Where the gate stands, counted as the run counts it: its sign-off records since the
/// last validate.
fn standing(run: &RunView, g: &GateState, rule: &GateRule) -> policy::GateView {
    policy::fold(
        rule,
        &g.gate,
        &g.evidence_sha256,
        g.recommendation,
        &run.sign_records_since_validate,
    )
}

fn word(d: Decision) -> &'static str {
    match d {
        Decision::Go => "GO",
        Decision::NoGo => "NO-GO",
    }
}

/// `cutover sign --show-evidence`: the evidence as canonical JSON and its hash, or the hash
/// alone (one line, what `ssh-keygen -Y sign` signs).
pub async fn show_evidence(
    journal: &Journal,
    plan: &Plan,
    gate: &str,
    hash_only: bool,
) -> Result<i32> {
    let Some(records) = crate::steps::latest_run(journal, plan).await? else {
        eprintln!("error: the journal holds no run of this runbook");
        return Ok(exit::INVALID);
    };
    let run = RunView::of(&records);
    let (g, rule) = match open_gate(&run, Some(plan), gate) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::INVALID);
        }
    };
    if hash_only {
        print!("{}", crate::signoff::sshsig::message(&g.evidence_sha256));
        return Ok(exit::OK);
    }
    // A gate waits on the evidence of the last validate: no validate runs while it is open.
    let shown = run.evidence();
    println!("{}", shown.canonical_json());
    println!("sha256 {}", g.evidence_sha256);
    if shown.sha256() != g.evidence_sha256 {
        eprintln!(
            "note: the gate was opened by an older cutover that hashed its evidence otherwise; sign the sha256 line"
        );
    }
    eprintln!(
        "gate {gate} of run {}: recommendation {}; signed: {}",
        records[0].run_id,
        word(g.recommendation),
        standing(&run, g, &rule).counts()
    );
    Ok(exit::OK)
}

/// What became of a sign-off that reached the gate: journaled either way.
#[derive(Debug, Clone)]
pub enum Judged {
    Recorded {
        seq: i64,
        evidence_sha256: String,
        /// It was checked against the approver's SSH key.
        keyed: bool,
        /// Where the gate stands with it.
        view: policy::GateView,
    },
    Refused {
        seq: i64,
        reason: String,
    },
}

impl Judged {
    /// The line `cutover sign` prints and `cutover watch` shows.
    pub fn line(&self, req: &SignRequest, run_id: &str) -> String {
        let who = format!("{} ({})", req.name, req.role);
        let w = word(req.decision);
        match self {
            Judged::Refused { seq, reason } => format!(
                "✗ {w} by {who} refused at gate {} of run {run_id}: {reason} (journaled as refused, record {seq})",
                req.gate
            ),
            Judged::Recorded {
                seq,
                evidence_sha256,
                keyed,
                view,
            } => {
                let state = match &view.status {
                    policy::Status::Go => "quorum met: the run goes on".to_string(),
                    policy::Status::NoGo { .. } => "NO-GO: the run stops".to_string(),
                    policy::Status::Waiting => {
                        format!("still waiting: {}", view.missing.join("; "))
                    }
                };
                format!(
                    "✓ {w} by {who} recorded at gate {} of run {run_id} (record {seq}, evidence {}…{}); signed: {}; {state}",
                    req.gate,
                    short(evidence_sha256),
                    if *keyed {
                        ", SSH signature verified"
                    } else {
                        ""
                    },
                    view.counts()
                )
            }
        }
    }
}

/// Judge one sign-off by the gate policy against run `run_id` as journaled and append it,
/// as recorded or as refused, in one journal transaction. `Ok(Err(why))` when it cannot
/// reach the gate (none waits, a malformed hash): nothing is journaled then. `plan` gives
/// the rule of a gate an older cutover journaled without one.
pub async fn submit(
    journal: &Journal,
    run_id: &str,
    plan: Option<&Plan>,
    req: &SignRequest,
) -> Result<Result<Judged, String>> {
    let records = journal.run_records(run_id).await?;
    if let Err(e) = open_gate(&RunView::of(&records), plan, &req.gate) {
        return Ok(Err(e));
    }
    if let Some(h) = &req.evidence_sha256
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Ok(Err(format!(
            "evidence '{h}': expected the 64 hex digits --show-evidence prints"
        )));
    }
    let mut judged: Option<Result<(policy::GateView, bool), String>> = None;
    let rec = journal
        .append_sign_off(run_id, |recs| {
            // Judged on the records as they are inside the append's transaction.
            let run = RunView::of(recs);
            let open = open_gate(&run, plan, &req.gate);
            let signed = policy::Signed {
                name: req.name.clone(),
                role: req.role.clone(),
                decision: req.decision,
                comment: req.comment.clone(),
                evidence_sha256: req
                    .evidence_sha256
                    .clone()
                    .or_else(|| open.as_ref().ok().map(|(g, _)| g.evidence_sha256.clone()))
                    .unwrap_or_default()
                    .to_ascii_lowercase(),
                signature: req.signature.clone(),
            };
            let refused = |reason: String| Event::SignOffRefused {
                gate: req.gate.clone(),
                name: signed.name.clone(),
                role: signed.role.clone(),
                decision: signed.decision,
                comment: signed.comment.clone(),
                evidence_sha256: signed.evidence_sha256.clone(),
                reason,
            };
            // Decided by another approver since the look above.
            let (g, rule) = match open {
                Ok(x) => x,
                Err(why) => {
                    judged = Some(Err(why.clone()));
                    return refused(why);
                }
            };
            let before = standing(&run, g, &rule);
            if let Some(reason) = policy::refusal(
                &rule,
                &g.evidence_sha256,
                g.recommendation,
                &before,
                &signed,
            ) {
                judged = Some(Err(reason.clone()));
                return refused(reason);
            }
            let keyed = rule
                .roles
                .iter()
                .filter(|r| r.role == signed.role)
                .flat_map(|r| &r.approvers)
                .any(|a| crate::signoff::same_person(&a.name, &signed.name) && a.ssh_key.is_some());
            let mut after = before;
            policy::apply(
                &rule,
                &g.evidence_sha256,
                g.recommendation,
                &mut after,
                &signed,
            );
            judged = Some(Ok((after, keyed)));
            Event::SignOffRecorded {
                gate: req.gate.clone(),
                overrides: signed.decision == Decision::Go && g.recommendation == Decision::NoGo,
                name: signed.name,
                role: signed.role,
                decision: signed.decision,
                comment: signed.comment,
                evidence_sha256: signed.evidence_sha256,
                signature: signed.signature,
            }
        })
        .await
        .with_context(|| format!("journaling the sign-off at gate {}", req.gate))?;
    Ok(Ok(match judged.expect("judged in the append") {
        Err(reason) => Judged::Refused {
            seq: rec.seq,
            reason,
        },
        Ok((view, keyed)) => Judged::Recorded {
            seq: rec.seq,
            evidence_sha256: match &rec.event {
                Event::SignOffRecorded {
                    evidence_sha256, ..
                } => evidence_sha256.clone(),
                _ => String::new(),
            },
            keyed,
            view,
        },
    }))
}

/// `cutover sign`: judge and journal one sign-off. Exit 0 when it counts, 2 when refused
/// (journaled as refused when it reached the gate).
pub async fn sign(journal: &Journal, plan: &Plan, req: SignRequest) -> Result<i32> {
    let Some(run_id) = crate::steps::latest_run_id(journal, plan).await? else {
        eprintln!("error: the journal holds no run of this runbook");
        return Ok(exit::INVALID);
    };
    match submit(journal, &run_id, Some(plan), &req).await? {
        Err(e) => {
            eprintln!("error: {e}");
            Ok(exit::INVALID)
        }
        Ok(j @ Judged::Refused { .. }) => {
            eprintln!("{}", j.line(&req, &run_id));
            Ok(exit::INVALID)
        }
        Ok(j) => {
            println!("{}", j.line(&req, &run_id));
            Ok(exit::OK)
        }
    }
}
