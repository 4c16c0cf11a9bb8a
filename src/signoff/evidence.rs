//! What an approver signs: the reconciliation results of the run's last validate, as
//! journaled (folded by `RunView::evidence`) (each with its record's sequence number and hash), in canonical JSON. Its
//! SHA-256 is journaled with the gate and with every sign-off; a new validate gives new
//! records, so a new hash, and earlier sign-offs become stale.

use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::journal::events::CheckResult;

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

impl Evidence {
    /// Canonical JSON: fields in declaration order, no spaces, checks in journal order.
    pub fn canonical_json(&self) -> String {
        serde_json::to_string(self).expect("evidence serialises")
    }

    pub fn sha256(&self) -> String {
        hex::encode(Sha256::digest(self.canonical_json().as_bytes()))
    }
}
