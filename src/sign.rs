//! `cutover sign`: an approver signs the waiting gate from anywhere the journal is
//! reachable, as themselves. The sign-off is judged by the gate policy against the run's
//! records and appended (as recorded or as refused) in one journal transaction; the
//! waiting run reads it from the journal and goes on once the quorum is met.

use anyhow::{Context, Result};

use crate::journal::Journal;
use crate::journal::events::{Decision, Event, GateRule, Record};
use crate::runbook::Plan;
use crate::signoff::{evidence, policy, short};
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

/// The open gate of a run: where it opened and what it showed.
struct OpenGate {
    index: usize,
    rule: GateRule,
    recommendation: Decision,
    evidence_sha256: String,
}

/// The last time `gate` opened in `records`, unless it was decided since.
fn open_gate(plan: &Plan, records: &[Record], gate: &str) -> Result<OpenGate, String> {
    let Some(index) = records
        .iter()
        .rposition(|r| matches!(&r.event, Event::GateOpened { gate: g, .. } if g == gate))
    else {
        return Err(format!(
            "the run has not reached gate '{gate}' yet: there is no evidence to sign"
        ));
    };
    if let Some(d) = records[index..].iter().find_map(|r| match &r.event {
        Event::GateDecided { gate: g, decision } if g == gate => Some(*decision),
        _ => None,
    }) {
        return Err(format!(
            "gate '{gate}' is already decided ({}); nothing waits for a sign-off",
            match d {
                Decision::Go => "GO",
                Decision::NoGo => "NO-GO",
            }
        ));
    }
    let Event::GateOpened {
        rule,
        recommendation,
        evidence_sha256,
        ..
    } = &records[index].event
    else {
        unreachable!("found above")
    };
    let rule = match rule {
        Some(r) => r.clone(),
        None => plan
            .rb
            .gates
            .get(gate)
            .map(|g| crate::signoff::rule_of(g, plan.rb.runbook.lead.as_deref()))
            .ok_or_else(|| format!("the runbook has no gate '{gate}'"))?,
    };
    Ok(OpenGate {
        index,
        rule,
        recommendation: *recommendation,
        evidence_sha256: evidence_sha256.clone(),
    })
}

/// Where the gate stands after `records`.
fn view(open: &OpenGate, gate: &str, records: &[Record]) -> policy::GateView {
    let since = evidence::last_validate(records).unwrap_or(0);
    policy::fold(
        &open.rule,
        gate,
        &open.evidence_sha256,
        open.recommendation,
        &records[since..],
    )
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
    let open = match open_gate(plan, &records, gate) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit::INVALID);
        }
    };
    let shown = evidence::of(&records[..open.index]);
    if hash_only {
        print!("{}", crate::signoff::sshsig::message(&open.evidence_sha256));
        return Ok(exit::OK);
    }
    println!("{}", shown.canonical_json());
    println!("sha256 {}", open.evidence_sha256);
    if shown.sha256() != open.evidence_sha256 {
        eprintln!(
            "note: the gate was opened by an older cutover that hashed its evidence otherwise; sign the sha256 line"
        );
    }
    let v = view(&open, gate, &records);
    eprintln!(
        "gate {gate} of run {}: recommendation {}; signed: {}",
        records[0].run_id,
        match open.recommendation {
            Decision::Go => "GO",
            Decision::NoGo => "NO-GO",
        },
        v.counts()
    );
    Ok(exit::OK)
}

/// `cutover sign`: judge and journal one sign-off. Exit 0 when it counts, 2 when refused
/// (journaled as refused when it reached the gate).
pub async fn sign(journal: &Journal, plan: &Plan, req: SignRequest) -> Result<i32> {
    let Some(records) = crate::steps::latest_run(journal, plan).await? else {
        eprintln!("error: the journal holds no run of this runbook");
        return Ok(exit::INVALID);
    };
    let run_id = records[0].run_id.clone();
    if let Err(e) = open_gate(plan, &records, &req.gate) {
        eprintln!("error: {e}");
        return Ok(exit::INVALID);
    }
    if let Some(h) = &req.evidence_sha256
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        eprintln!("error: --evidence '{h}': expected the 64 hex digits --show-evidence prints");
        return Ok(exit::INVALID);
    }
    let gate = req.gate.clone();
    let mut outcome: Option<Result<policy::GateView, String>> = None;
    // Whether the sign-off that counted was checked against the approver's SSH key.
    let mut keyed = false;
    let rec = journal
        .append_sign_off(&run_id, |recs| {
            // Judged on the records as they are inside the append's transaction.
            let open = open_gate(plan, recs, &gate).expect("checked above; gates do not reopen");
            let before = view(&open, &gate, recs);
            let signed = policy::Signed {
                name: req.name.clone(),
                role: req.role.clone(),
                decision: req.decision,
                comment: req.comment.clone(),
                evidence_sha256: req
                    .evidence_sha256
                    .clone()
                    .unwrap_or_else(|| open.evidence_sha256.clone())
                    .to_ascii_lowercase(),
                signature: req.signature.clone(),
            };
            match policy::refusal(
                &open.rule,
                &open.evidence_sha256,
                open.recommendation,
                &before,
                &signed,
            ) {
                Some(reason) => {
                    outcome = Some(Err(reason.clone()));
                    Event::SignOffRefused {
                        gate: gate.clone(),
                        name: signed.name,
                        role: signed.role,
                        decision: signed.decision,
                        comment: signed.comment,
                        evidence_sha256: signed.evidence_sha256,
                        reason,
                    }
                }
                None => {
                    keyed = open
                        .rule
                        .roles
                        .iter()
                        .filter(|r| r.role == signed.role)
                        .flat_map(|r| &r.approvers)
                        .any(|a| {
                            crate::signoff::same_person(&a.name, &signed.name)
                                && a.ssh_key.is_some()
                        });
                    let mut after = before;
                    policy::apply(
                        &open.rule,
                        &open.evidence_sha256,
                        open.recommendation,
                        &mut after,
                        &signed,
                    );
                    outcome = Some(Ok(after));
                    Event::SignOffRecorded {
                        gate: gate.clone(),
                        overrides: signed.decision == Decision::Go
                            && open.recommendation == Decision::NoGo,
                        name: signed.name,
                        role: signed.role,
                        decision: signed.decision,
                        comment: signed.comment,
                        evidence_sha256: signed.evidence_sha256,
                        signature: signed.signature,
                    }
                }
            }
        })
        .await
        .with_context(|| format!("journaling the sign-off at gate {}", req.gate))?;
    let who = format!("{} ({})", req.name, req.role);
    let word = match req.decision {
        Decision::Go => "GO",
        Decision::NoGo => "NO-GO",
    };
    match outcome.expect("judged in the append") {
        Err(reason) => {
            eprintln!(
                "✗ {word} by {who} refused at gate {} of run {run_id}: {reason} (journaled as refused, record {})",
                req.gate, rec.seq
            );
            Ok(exit::INVALID)
        }
        Ok(v) => {
            let state = match &v.status {
                policy::Status::Go => "quorum met: the run goes on".to_string(),
                policy::Status::NoGo { .. } => "NO-GO: the run stops".to_string(),
                policy::Status::Waiting => format!("still waiting: {}", v.missing.join("; ")),
            };
            let ev = match &rec.event {
                Event::SignOffRecorded {
                    evidence_sha256, ..
                } => short(evidence_sha256).to_string(),
                _ => String::new(),
            };
            println!(
                "✓ {word} by {who} recorded at gate {} of run {run_id} (record {}, evidence {ev}…{}); signed: {}; {state}",
                req.gate,
                rec.seq,
                if keyed {
                    ", SSH signature verified"
                } else {
                    ""
                },
                v.counts()
            );
            Ok(exit::OK)
        }
    }
}
