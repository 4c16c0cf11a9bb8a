//! Sign-offs at a gate: who may sign and how many must (`rule_of`, from the runbook), what
//! they sign (`evidence`), whether a sign-off counts and where the gate stands (`policy`,
//! pure over journal records), and SSH signatures over the evidence hash (`sshsig`).
//! The run, `cutover sign` and the console all go through `policy`, so the count one shows
//! and the refusal another journals cannot disagree.

pub mod evidence;
pub mod policy;
pub mod sshsig;

use crate::journal::events::{ApproverRule, GateRule, RoleRule};
use crate::runbook::format::{Gate, GateRole};

/// The gate's rule as the runbook states it; `lead` is the operator running the cutover.
pub fn rule_of(gate: &Gate, lead: Option<&str>) -> GateRule {
    let roles: Vec<RoleRule> = gate
        .roles
        .iter()
        .map(|r| match r {
            // The short form: one GO, anyone may give it (the listed approvers are expected).
            GateRole::Name(n) => RoleRule {
                role: n.clone(),
                quorum: 1,
                approvers: Vec::new(),
            },
            GateRole::Table(t) => {
                let mut approvers: Vec<ApproverRule> = t
                    .approvers
                    .iter()
                    .map(|a| ApproverRule {
                        name: a.name().to_string(),
                        ssh_key: a.ssh_key().map(str::to_string),
                    })
                    .collect();
                for a in gate.approvers.iter().filter(|a| a.role == t.role) {
                    if !approvers.iter().any(|x| same_person(&x.name, &a.name)) {
                        approvers.push(ApproverRule {
                            name: a.name.clone(),
                            ssh_key: a.ssh_key.clone(),
                        });
                    }
                }
                RoleRule {
                    role: t.role.clone(),
                    quorum: t.quorum,
                    approvers,
                }
            }
        })
        .collect();
    let sum: usize = roles.iter().map(|r| r.quorum).sum();
    GateRule {
        quorum: gate.quorum.unwrap_or(sum).max(sum).max(1),
        roles,
        lead: lead
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_string),
    }
}

pub use crate::runbook::format::same_person;

/// The first 12 hex digits of a hash, as messages show it.
pub fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}
