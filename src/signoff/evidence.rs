//! What an approver signs: the reconciliation results of the run's last validate, as
//! journaled (each with its record's sequence number and hash), in canonical JSON. Its
//! SHA-256 is journaled with the gate and with every sign-off; a new validate gives new
//! records, so a new hash, and earlier sign-offs become stale.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::journal::events::{CheckResult, Event, Record};
use crate::runbook::format::StepKind;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evidence {
    pub run_id: String,
    /// The validate step the checks come from, and the sequence number of its start.
    pub validate_step: Option<String>,
    pub validate_seq: Option<i64>,
    pub checks: Vec<JournaledCheck>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct JournaledCheck {
    pub seq: i64,
    pub hash: String,
    pub result: CheckResult,
}

/// Index of the start of the last validate in `records` (a run's records, in order).
pub fn last_validate(records: &[Record]) -> Option<usize> {
    let kinds: Vec<(String, StepKind)> = match records.first().map(|r| &r.event) {
        Some(Event::RunStarted { steps, .. }) => {
            steps.iter().map(|s| (s.id.clone(), s.kind)).collect()
        }
        _ => Vec::new(),
    };
    let is_validate = |step: &str| {
        kinds
            .iter()
            .any(|(id, k)| id == step && *k == StepKind::Validate)
    };
    records
        .iter()
        .rposition(|r| matches!(&r.event, Event::StepStarted { step } if is_validate(step)))
}

/// The evidence of the last validate in `records`.
pub fn of(records: &[Record]) -> Evidence {
    let run_id = records
        .first()
        .map(|r| r.run_id.clone())
        .unwrap_or_default();
    let Some(i) = last_validate(records) else {
        return Evidence {
            run_id,
            validate_step: None,
            validate_seq: None,
            checks: Vec::new(),
        };
    };
    let Event::StepStarted { step } = &records[i].event else {
        unreachable!("last_validate finds a step start")
    };
    let checks = records[i..]
        .iter()
        .filter_map(|r| match &r.event {
            Event::CheckRecorded { step: s, result } if s == step => Some(JournaledCheck {
                seq: r.seq,
                hash: r.hash.clone(),
                result: result.clone(),
            }),
            _ => None,
        })
        .collect();
    Evidence {
        run_id,
        validate_step: Some(step.clone()),
        validate_seq: Some(records[i].seq),
        checks,
    }
}

impl Evidence {
    /// Canonical JSON: fields in declaration order, no spaces, checks in journal order.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("evidence serialises")
    }

    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::events::{CheckStatus, StepInfo};

    fn rec(seq: i64, event: Event) -> Record {
        Record {
            seq,
            run_id: "r1".into(),
            ts: String::new(),
            event,
            prev_hash: String::new(),
            hash: format!("h{seq}"),
        }
    }

    fn check(step: &str, source: &str) -> Event {
        Event::CheckRecorded {
            step: step.into(),
            result: CheckResult {
                name: "count".into(),
                entity: "customers".into(),
                source: source.into(),
                target: source.into(),
                status: CheckStatus::Pass,
                detail: String::new(),
                currency: None,
            },
        }
    }

    fn run() -> Vec<Record> {
        let step = |id: &str, kind| StepInfo {
            id: id.into(),
            kind,
            title: String::new(),
            planned_secs: None,
        };
        vec![
            rec(
                1,
                Event::RunStarted {
                    run_id: "r1".into(),
                    mode: crate::journal::events::RunMode::Run,
                    runbook_path: String::new(),
                    runbook_name: String::new(),
                    runbook_sha256: String::new(),
                    steps: vec![
                        step("validate", StepKind::Validate),
                        step("verify", StepKind::Verify),
                    ],
                    vars: Default::default(),
                    tool_version: String::new(),
                    artifacts_dir: String::new(),
                    environments: Vec::new(),
                    window_end: None,
                },
            ),
            rec(
                2,
                Event::StepStarted {
                    step: "validate".into(),
                },
            ),
            rec(3, check("validate", "10")),
        ]
    }

    #[test]
    fn the_last_validates_checks_are_the_evidence_and_a_new_validate_changes_the_hash() {
        let mut r = run();
        let first = of(&r);
        assert_eq!(first.checks.len(), 1);
        assert_eq!(first.validate_seq, Some(2));
        // A verify's checks are not the gate's evidence.
        r.push(rec(4, check("verify", "10")));
        assert_eq!(of(&r).sha256(), first.sha256());
        // The same figures validated again are new evidence: earlier sign-offs are stale.
        r.push(rec(
            5,
            Event::StepStarted {
                step: "validate".into(),
            },
        ));
        r.push(rec(6, check("validate", "10")));
        let second = of(&r);
        assert_eq!(second.validate_seq, Some(5));
        assert_ne!(second.sha256(), first.sha256());
        assert!(second.canonical_json().contains("\"seq\":6"));
    }
}
