//! The run summary (`--json`, `summary.json`), built only from the run's [`RunView`].

use std::collections::BTreeMap;

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
