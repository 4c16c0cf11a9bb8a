//! The run summary (`--json`, `summary.json`), built only from journal records.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::journal::events::{Event, Phase, Record};

pub const SCHEMA_VERSION: u32 = 1;

pub fn summary(records: &[Record]) -> Value {
    let mut run = json!({});
    let mut steps: Vec<Value> = Vec::new();
    let mut phases: BTreeMap<&str, BTreeMap<String, Value>> = BTreeMap::new();
    let mut checks = Vec::new();
    let mut sign_offs = Vec::new();
    let mut gates = Vec::new();
    let mut extract = Value::Null;
    let mut backup = Value::Null;
    let mut freeze = Value::Null;
    let mut rollback = Value::Null;
    let mut outcome = json!({"outcome": "running", "exit_code": null, "message": ""});
    for r in records {
        match &r.event {
            Event::RunStarted {
                run_id,
                mode,
                runbook_path,
                runbook_name,
                runbook_sha256,
                tool_version,
                artifacts_dir,
                window_end,
                ..
            } => {
                run = json!({"run_id": run_id, "mode": mode, "runbook": runbook_path, "runbook_name": runbook_name,
                    "runbook_sha256": runbook_sha256, "tool_version": tool_version, "artifacts_dir": artifacts_dir,
                    "started": r.ts, "window_end": window_end});
            }
            Event::StepFinished {
                step,
                status,
                message,
                duration_ms,
            } => {
                steps.push(json!({"step": step, "status": status, "duration_ms": duration_ms, "message": message}));
            }
            Event::ExtractRecorded { manifest, files } => {
                extract = json!({"manifest": manifest, "files": files})
            }
            Event::BackupTaken {
                env,
                path,
                sha256,
                bytes,
                ..
            } => backup = json!({"env": env, "path": path, "sha256": sha256, "bytes": bytes}),
            Event::FreezeApplied {
                env,
                method,
                watermark,
                ..
            } => freeze = json!({"env": env, "method": method, "watermark": watermark}),
            Event::EntityFinished {
                phase,
                entity,
                counts,
                reject_file,
                sums,
                duration_ms,
            } => {
                let p = match phase {
                    Phase::DryRun => "dry_run",
                    Phase::Load => "load",
                };
                phases.entry(p).or_default().insert(
                    entity.clone(),
                    json!({"in_file": counts.in_file, "in_scope": counts.in_scope, "valid": counts.valid,
                        "rejected": counts.rejected, "loaded": counts.loaded, "reject_file": reject_file,
                        "sums": sums, "duration_ms": duration_ms}),
                );
            }
            Event::CheckRecorded { step, result } => {
                let mut c = json!({"step": step, "name": result.name, "entity": result.entity, "source": result.source,
                    "target": result.target, "status": result.status, "detail": result.detail});
                // Only on money, as in the journal: the values are in this currency.
                if let Some(cur) = &result.currency {
                    c["currency"] = json!(cur);
                }
                checks.push(c);
            }
            Event::GateOpened {
                gate,
                recommendation,
                reasons,
                evidence_sha256,
                evidence,
                ..
            } => {
                gates.push(json!({"gate": gate, "recommendation": recommendation, "reasons": reasons, "evidence_sha256": evidence_sha256,
                    "evidence": evidence, "decision": null}));
            }
            Event::GateDecided { gate, decision } => {
                if let Some(g) = gates.iter_mut().rev().find(|g| g["gate"] == json!(gate)) {
                    g["decision"] = json!(decision);
                }
            }
            Event::SignOffRecorded {
                gate,
                name,
                role,
                decision,
                comment,
                evidence_sha256,
                overrides,
                signature,
            } => {
                sign_offs.push(json!({"gate": gate, "name": name, "role": role, "decision": decision, "comment": comment,
                    "overrides_recommendation": overrides, "evidence_sha256": evidence_sha256, "at": r.ts,
                    "signed": signature.is_some()}));
            }
            Event::RollbackStarted { reason } => {
                rollback = json!({"reason": reason, "started": r.ts});
            }
            Event::RollbackFinished { ok, message } => {
                rollback["ok"] = json!(ok);
                rollback["message"] = json!(message);
            }
            Event::RunFinished {
                outcome: o,
                exit_code,
                message,
            } => {
                outcome = json!({"outcome": o, "exit_code": exit_code, "message": message, "finished": r.ts});
            }
            _ => {}
        }
    }
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
        "journal_head": records.last().map(|r| json!({"seq": r.seq, "hash": r.hash})),
    })
}
