//! What a run leaves for people: the summary (`--json`, `summary.json`) and the cutover
//! dossier (`cutover report`), both built only from the run's [`RunView`].

pub mod html;
pub mod json;
pub mod md;
pub mod model;
pub mod rejects;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Result;
use sha2::{Digest, Sha256};

use crate::journal::Journal;
use crate::runbook::format::{Check, Runbook};
use model::{Dossier, Sources, VerificationEntry};
use rejects::MoneyField;

use serde_json::{Value, json};

use crate::journal::events::{Phase, Record};
use crate::runview::{CheckRow, RunView};

pub const SCHEMA_VERSION: u32 = 1;

pub fn summary(records: &[Record]) -> Value {
    summary_of(&RunView::of(records))
}

/// The summary of a run as its view tells it.
pub fn summary_of(v: &RunView) -> Value {
    let run = match (&v.run, &v.run_id) {
        (Some(i), Some(run_id)) => {
            json!({"run_id": run_id, "mode": v.mode, "runbook": i.runbook_path,
            "runbook_name": v.runbook_name, "runbook_sha256": i.runbook_sha256, "tool_version": i.tool_version,
            "artifacts_dir": i.artifacts_dir, "started": i.started, "window_end": i.window_end})
        }
        _ => json!({}),
    };
    let steps: Vec<Value> = v
        .step_results
        .iter()
        .map(|s| json!({"step": s.step, "status": s.status, "duration_ms": s.duration_ms, "message": s.message}))
        .collect();
    let mut phases: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    for (phase, entities) in &v.phases {
        let p = match phase {
            Phase::DryRun => "dry_run",
            Phase::Load => "load",
        };
        for (entity, r) in entities {
            let c = &r.counts;
            phases.entry(p).or_default().insert(
                entity.clone(),
                json!({"in_file": c.in_file, "in_scope": c.in_scope, "valid": c.valid,
                    "rejected": c.rejected, "loaded": c.loaded, "reject_file": r.reject_file,
                    "sums": r.sums, "duration_ms": r.duration_ms}),
            );
        }
    }
    let checks: Vec<Value> = v
        .checks
        .iter()
        .map(|CheckRow { step, result }| {
            let mut c = json!({"step": step, "name": result.name, "entity": result.entity, "source": result.source,
                "target": result.target, "status": result.status, "detail": result.detail});
            // Only on money, as in the journal: the values are in this currency.
            if let Some(cur) = &result.currency {
                c["currency"] = json!(cur);
            }
            c
        })
        .collect();
    let gates: Vec<Value> = v
        .gates
        .iter()
        .map(|g| {
            json!({"gate": g.gate, "recommendation": g.recommendation, "reasons": g.reasons,
            "evidence_sha256": g.evidence_sha256, "evidence": g.evidence, "decision": g.decided})
        })
        .collect();
    let sign_offs: Vec<Value> = v
        .sign_offs
        .iter()
        .map(|s| json!({"gate": s.gate, "name": s.row.name, "role": s.row.role, "decision": s.row.decision,
            "comment": s.row.comment, "overrides_recommendation": s.row.overrides,
            "evidence_sha256": s.evidence_sha256, "at": s.at, "signed": s.signed}))
        .collect();
    let extract = v.extract.as_ref().map_or(
        Value::Null,
        |(manifest, files)| json!({"manifest": manifest, "files": files}),
    );
    let backup = v.backup.as_ref().map_or(
        Value::Null,
        |b| json!({"env": b.env, "path": b.path, "sha256": b.sha256, "bytes": b.bytes}),
    );
    let freeze = v.freeze_applied.as_ref().map_or(
        Value::Null,
        |f| json!({"env": f.env, "method": f.method, "watermark": f.watermark}),
    );
    let mut rollback = match (&v.rollback, &v.rollback_started_at) {
        (Some(rb), Some(at)) => json!({"reason": rb.reason, "started": at}),
        _ => Value::Null,
    };
    if let Some((ok, message)) = v.rollback.as_ref().and_then(|r| r.finished.as_ref()) {
        rollback["ok"] = json!(ok);
        rollback["message"] = json!(message);
    }
    let outcome = match (&v.finished, &v.finished_at) {
        (Some(f), Some(at)) => {
            json!({"outcome": f.outcome, "exit_code": f.exit_code, "message": f.message, "finished": at})
        }
        _ => json!({"outcome": "running", "exit_code": null, "message": ""}),
    };
    // `entities` is the latest phase that ran: the production load if any, else the dry run.
    let entities = phases
        .get("load")
        .or_else(|| phases.get("dry_run"))
        .cloned()
        .unwrap_or_default();
    json!({
        "schema_version": SCHEMA_VERSION,
        "run": run,
        "outcome": outcome["outcome"],
        "exit_code": outcome["exit_code"],
        "message": outcome["message"],
        "entities": entities,
        "phases": phases,
        "checks": checks,
        "gates": gates,
        "sign_offs": sign_offs,
        "steps": steps,
        "extract": extract,
        "backup": backup,
        "freeze": freeze,
        "rollback": rollback,
        // The run's last record: `journal verify --expect-head SEQ:HASH` checks the journal
        // still reaches it.
        "journal_head": v.head.as_ref().map(|h| json!({"seq": h.seq, "hash": h.hash})),
    })
}

/// The formats `cutover report` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Md,
    Html,
    Json,
}

impl Format {
    pub fn render(self, d: &Dossier) -> String {
        match self {
            Format::Md => md::render(d),
            Format::Html => html::render(d),
            Format::Json => json::render(d),
        }
    }
}

/// A journal location fit to print: the user and password of a URL are taken out.
pub fn redact_location(loc: &str) -> String {
    let Some((scheme, rest)) = loc.split_once("://") else {
        return loc.to_string();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
        None => loc.to_string(),
    }
}

/// The money fields of each entity (the runbook's `sum` checks), for splitting rejects by rule.
fn money_fields(rb: &Runbook) -> BTreeMap<String, Vec<MoneyField>> {
    let mut m: BTreeMap<String, Vec<MoneyField>> = BTreeMap::new();
    for c in &rb.checks {
        if let Check::Sum {
            entity,
            field,
            currency,
            ..
        } = c
        {
            let f = MoneyField {
                field: field.clone(),
                currency: currency.clone(),
            };
            let v = m.entry(entity.clone()).or_default();
            if !v.contains(&f) {
                v.push(f);
            }
        }
    }
    m
}

/// The dossier of run `run_id`: its records folded by [`RunView`], the runbook at `runbook`,
/// the reject files the run wrote and the journal's verification. `None` when the journal
/// holds no such run.
pub async fn dossier(journal: &Journal, run_id: &str, runbook: &Path) -> Result<Option<Dossier>> {
    let recs = journal.run_records(run_id).await?;
    if recs.is_empty() {
        return Ok(None);
    }
    let view = RunView::of(&recs);
    let text = std::fs::read_to_string(runbook).ok();
    let runbook_sha256_now = text
        .as_ref()
        .map(|t| hex::encode(Sha256::digest(t.as_bytes())));
    // Only the checks matter here: parsed without expanding or linting the runbook.
    let money = text
        .as_deref()
        .and_then(|t| toml::from_str::<Runbook>(t).ok())
        .map(|rb| money_fields(&rb))
        .unwrap_or_default();
    let mut reject_files = BTreeMap::new();
    if let Some(m) = view.latest_phase() {
        let base = runbook.parent().unwrap_or(Path::new("."));
        for (entity, r) in m {
            if r.reject_file.is_empty() {
                continue;
            }
            let mut path = PathBuf::from(&r.reject_file);
            if path.is_relative() && !path.exists() {
                path = base.join(&r.reject_file);
            }
            let fields = money.get(entity).map(Vec::as_slice).unwrap_or(&[]);
            reject_files.insert(r.reject_file.clone(), rejects::tally(&path, fields));
        }
    }
    let v = journal.verify().await?;
    let run_head_reachable = match &view.head {
        Some(h) => journal.hash_at(h.seq).await?.as_deref() == Some(h.hash.as_str()),
        None => false,
    };
    let verification = VerificationEntry {
        records: v.records,
        intact: v.first_bad.is_none(),
        first_bad: v.first_bad,
        head: v.head.as_ref().map(ToString::to_string),
        run_head_reachable,
    };
    Ok(Some(Dossier::build(
        &view,
        Sources {
            runbook_sha256_now,
            journal_location: redact_location(&journal.location),
            verification,
            reject_files,
        },
    )))
}
#[cfg(test)]
mod tests;
