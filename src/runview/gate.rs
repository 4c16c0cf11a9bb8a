//! The gate policy as a pure function: which GO sign-offs count, and whether they meet the
//! gate's quorum and roles. The executor asks it after every sign-off; the answer depends
//! on nothing but the view and the gate's rules.

use std::collections::HashSet;

use super::RunView;
use crate::journal::events::Decision;

/// Where a gate stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateTally {
    /// GO sign-offs that count: (name, role), in journal order.
    pub gos: Vec<(String, String)>,
    /// Distinct names among them.
    pub signed: usize,
    pub quorum: usize,
    /// Roles the gate requires that no GO came from yet.
    pub missing_roles: Vec<String>,
    /// Quorum reached and every required role signed.
    pub met: bool,
}

impl RunView {
    /// GO sign-offs given at `gate` on exactly `evidence_sha256`, since the last validate
    /// (what was signed before an interruption still counts; older evidence does not).
    pub fn gos_on(&self, gate: &str, evidence_sha256: &str) -> Vec<(String, String)> {
        let since = self.last_validate_seq.unwrap_or(0);
        self.sign_offs
            .iter()
            .filter(|s| {
                s.seq > since
                    && s.gate == gate
                    && s.row.decision == Decision::Go
                    && s.evidence_sha256 == evidence_sha256
            })
            .map(|s| (s.row.name.clone(), s.row.role.clone()))
            .collect()
    }
}

/// Whether `gos` meet a gate of `quorum` distinct names and these `roles`.
pub fn gate_decision(gos: &[(String, String)], quorum: usize, roles: &[String]) -> GateTally {
    let names: HashSet<&str> = gos.iter().map(|(n, _)| n.as_str()).collect();
    let missing_roles: Vec<String> = roles
        .iter()
        .filter(|r| !gos.iter().any(|(_, role)| role == *r))
        .cloned()
        .collect();
    GateTally {
        gos: gos.to_vec(),
        signed: names.len(),
        quorum,
        met: names.len() >= quorum && missing_roles.is_empty(),
        missing_roles,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gos(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(n, r)| (n.to_string(), r.to_string()))
            .collect()
    }

    #[test]
    fn quorum_counts_names_and_every_role_must_sign() {
        let roles = vec!["migration_lead".to_string(), "finance".to_string()];
        /// (sign-offs, quorum, met, signed, missing roles)
        type Case<'a> = (&'a [(&'a str, &'a str)], usize, bool, usize, &'a [&'a str]);
        let cases: &[Case] = &[
            (&[], 2, false, 0, &["migration_lead", "finance"]),
            (&[("a", "finance")], 1, false, 1, &["migration_lead"]),
            (
                &[("a", "finance"), ("b", "migration_lead")],
                2,
                true,
                2,
                &[],
            ),
            // One person twice is one name: short of a quorum of 2.
            (
                &[("a", "finance"), ("a", "migration_lead")],
                2,
                false,
                1,
                &[],
            ),
            (
                &[("a", "finance"), ("a", "migration_lead")],
                1,
                true,
                1,
                &[],
            ),
            (
                &[("a", "finance"), ("b", "finance"), ("c", "finance")],
                2,
                false,
                3,
                &["migration_lead"],
            ),
        ];
        for (signed, quorum, met, n, missing) in cases {
            let t = gate_decision(&gos(signed), *quorum, &roles);
            assert_eq!((t.met, t.signed), (*met, *n), "{signed:?} quorum {quorum}");
            assert_eq!(t.missing_roles, *missing, "{signed:?}");
        }
        assert!(
            gate_decision(&[], 0, &[]).met,
            "a gate asking for nothing is met"
        );
    }

    #[test]
    fn only_gos_on_this_evidence_since_the_last_validate_count() {
        use crate::app::fixtures::{GATE, rec, records_to_gate};
        use crate::journal::events::Event;
        let mut recs = records_to_gate();
        let ev = match recs.iter().rev().find_map(|r| match &r.event {
            Event::GateOpened {
                evidence_sha256, ..
            } => Some(evidence_sha256.clone()),
            _ => None,
        }) {
            Some(e) => e,
            None => panic!("records_to_gate opens the gate"),
        };
        let sign = |name: &str, decision, evidence: &str, gate: &str| Event::SignOffRecorded {
            gate: gate.into(),
            name: name.into(),
            role: "finance".into(),
            decision,
            comment: "c".into(),
            evidence_sha256: evidence.into(),
            overrides: false,
        };
        fn push(recs: &mut Vec<crate::journal::events::Record>, e: Event) {
            let n = recs.len() as i64 + 1;
            recs.push(rec(n, "18:50:00", e));
        }
        push(&mut recs, sign("counts", Decision::Go, &ev, GATE));
        push(
            &mut recs,
            sign("stale", Decision::Go, "other evidence", GATE),
        );
        push(
            &mut recs,
            sign("elsewhere", Decision::Go, &ev, "other_gate"),
        );
        push(&mut recs, sign("against", Decision::NoGo, &ev, GATE));
        let v = RunView::of(&recs);
        assert_eq!(v.gos_on(GATE, &ev), gos(&[("counts", "finance")]));
        // A new validate starts the count over, even on the same evidence.
        push(
            &mut recs,
            Event::StepStarted {
                step: "validate".into(),
            },
        );
        assert!(RunView::of(&recs).gos_on(GATE, &ev).is_empty());
    }
}
