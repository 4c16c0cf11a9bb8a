//! The gate policy, a pure function: the gate's rule, the evidence hash it shows and the
//! journal records since its validate → where the gate stands (waiting, GO, NO-GO), the
//! count per role, and each sign-off that did not count with the reason. The run decides
//! the gate with it, `cutover sign` and the console judge a new sign-off with it before
//! journaling (as recorded or as refused), and the dialog shows its counts.

use crate::control::missing_reason;
use crate::journal::events::{Decision, Event, GateRule, Record};

use super::{same_person, short, sshsig};

/// A sign-off as given or as journaled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub comment: String,
    pub evidence_sha256: String,
    /// Armored SSH signature over the evidence hash.
    pub signature: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Waiting,
    Go,
    /// The first NO-GO that counted stops the run.
    NoGo {
        name: String,
        role: String,
        comment: String,
    },
}

/// One role's count: `signed.len()` of `quorum`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleCount {
    pub role: String,
    pub quorum: usize,
    /// Who gave a GO that counts here.
    pub signed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotCounted {
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateView {
    pub status: Status,
    pub roles: Vec<RoleCount>,
    /// Distinct people whose GO counts, and how many are needed in all.
    pub people: Vec<(String, String)>,
    pub quorum: usize,
    pub not_counted: Vec<NotCounted>,
    /// Why the gate is still waiting, one reason each; empty once it is decided.
    pub missing: Vec<String>,
}

impl GateView {
    pub fn empty(rule: &GateRule) -> GateView {
        let mut v = GateView {
            status: Status::Waiting,
            roles: rule
                .roles
                .iter()
                .map(|r| RoleCount {
                    role: r.role.clone(),
                    quorum: r.quorum,
                    signed: Vec::new(),
                })
                .collect(),
            people: Vec::new(),
            quorum: rule.quorum,
            not_counted: Vec::new(),
            missing: Vec::new(),
        };
        v.settle(rule);
        v
    }

    /// "finance-controller 1 of 2, application-owner 0 of 1; people 1 of 3".
    pub fn counts(&self) -> String {
        let mut parts: Vec<String> = self
            .roles
            .iter()
            .map(|r| format!("{} {} of {}", r.role, r.signed.len(), r.quorum))
            .collect();
        if self.roles.is_empty() || self.quorum > self.roles.iter().map(|r| r.quorum).sum() {
            parts.push(format!(
                "{} of {} people",
                self.people.len().min(self.quorum),
                self.quorum
            ));
        }
        parts.join(", ")
    }

    /// Recompute `status` and `missing` after a GO counted.
    fn settle(&mut self, rule: &GateRule) {
        if matches!(self.status, Status::NoGo { .. }) {
            self.missing.clear();
            return;
        }
        let mut missing: Vec<String> = self
            .roles
            .iter()
            .filter(|r| r.signed.len() < r.quorum)
            .map(|r| format!("{}: {} of {} GO", r.role, r.signed.len(), r.quorum))
            .collect();
        if self.people.len() < self.quorum {
            missing.push(format!(
                "{} of {} people have given a GO",
                self.people.len(),
                self.quorum
            ));
        }
        if let Some(lead) = &rule.lead
            && !self.people.is_empty()
            && self.people.iter().all(|(n, _)| same_person(n, lead))
        {
            missing.push(format!(
                "the lead ({lead}) cannot be the only approver of their own gate: another approver must give a GO"
            ));
        }
        self.status = if missing.is_empty() {
            Status::Go
        } else {
            Status::Waiting
        };
        self.missing = missing;
    }
}

/// Why `s` cannot count at this gate, given what already counts (`view`); `None` when it
/// counts. The same rules the fold applies to every journaled sign-off.
pub fn refusal(
    rule: &GateRule,
    evidence_sha256: &str,
    recommendation: Decision,
    view: &GateView,
    s: &Signed,
) -> Option<String> {
    if !matches!(view.status, Status::Waiting) {
        return Some("the gate is already decided".into());
    }
    let role = if rule.roles.is_empty() {
        None
    } else {
        match rule.roles.iter().find(|r| r.role == s.role) {
            Some(r) => Some(r),
            None => {
                return Some(format!(
                    "'{}' is not a role of this gate (roles: {})",
                    s.role,
                    rule.roles
                        .iter()
                        .map(|r| r.role.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
        }
    };
    let approver = role.and_then(|r| r.approvers.iter().find(|a| same_person(&a.name, &s.name)));
    if let Some(r) = role
        && !r.approvers.is_empty()
        && approver.is_none()
    {
        return Some(format!(
            "{} is not an approver of role {} (approvers: {})",
            s.name,
            r.role,
            r.approvers
                .iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    if s.evidence_sha256 != evidence_sha256 {
        return Some(format!(
            "stale: signed evidence {}… but the gate shows {}… (validated again since); read the evidence again and sign it",
            short(&s.evidence_sha256),
            short(evidence_sha256)
        ));
    }
    if let Some(key) = approver.and_then(|a| a.ssh_key.as_deref()) {
        match &s.signature {
            None => {
                return Some(format!(
                    "{} signs with an SSH key (the runbook lists it): this sign-off carries no signature over the evidence hash",
                    s.name
                ));
            }
            Some(sig) => {
                if let Err(why) = sshsig::verify(key, sig, evidence_sha256) {
                    return Some(format!("signature refused: {why}"));
                }
            }
        }
    }
    if let Some(why) = missing_reason(s.decision, &s.comment, recommendation) {
        return Some(why.into());
    }
    if s.decision == Decision::NoGo {
        return None; // any required approver's NO-GO stops the run
    }
    if let Some((_, other)) = view.people.iter().find(|(n, _)| same_person(n, &s.name)) {
        return Some(if *other == s.role {
            format!(
                "{} already gave a GO as {other}: one person counts once",
                s.name
            )
        } else {
            format!(
                "{} already signs as {other} at this gate: one person fills one role",
                s.name
            )
        });
    }
    None
}

/// Add a sign-off to the view: it counts, or it is listed with why it does not.
pub fn apply(
    rule: &GateRule,
    evidence_sha256: &str,
    recommendation: Decision,
    view: &mut GateView,
    s: &Signed,
) {
    if let Some(reason) = refusal(rule, evidence_sha256, recommendation, view, s) {
        view.not_counted.push(NotCounted {
            name: s.name.clone(),
            role: s.role.clone(),
            decision: s.decision,
            reason,
        });
        return;
    }
    match s.decision {
        Decision::NoGo => {
            view.status = Status::NoGo {
                name: s.name.clone(),
                role: s.role.clone(),
                comment: s.comment.clone(),
            };
        }
        Decision::Go => {
            view.people.push((s.name.clone(), s.role.clone()));
            if let Some(r) = view.roles.iter_mut().find(|r| r.role == s.role) {
                r.signed.push(s.name.clone());
            }
        }
    }
    view.settle(rule);
}

/// Where `gate` stands after `records` (the run's records since its last validate).
/// Sign-offs journaled as refused are listed as such and never count.
pub fn fold(
    rule: &GateRule,
    gate: &str,
    evidence_sha256: &str,
    recommendation: Decision,
    records: &[Record],
) -> GateView {
    let mut view = GateView::empty(rule);
    for r in records {
        match &r.event {
            Event::SignOffRecorded {
                gate: g,
                name,
                role,
                decision,
                comment,
                evidence_sha256: ev,
                signature,
                ..
            } if g == gate => {
                let s = Signed {
                    name: name.clone(),
                    role: role.clone(),
                    decision: *decision,
                    comment: comment.clone(),
                    evidence_sha256: ev.clone(),
                    signature: signature.clone(),
                };
                apply(rule, evidence_sha256, recommendation, &mut view, &s);
            }
            Event::SignOffRefused {
                gate: g,
                name,
                role,
                decision,
                reason,
                ..
            } if g == gate => view.not_counted.push(NotCounted {
                name: name.clone(),
                role: role.clone(),
                decision: *decision,
                reason: reason.clone(),
            }),
            _ => {}
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::events::{ApproverRule, RoleRule};

    const EV: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";

    fn role(name: &str, quorum: usize, approvers: &[&str]) -> RoleRule {
        RoleRule {
            role: name.into(),
            quorum,
            approvers: approvers
                .iter()
                .map(|a| ApproverRule {
                    name: a.to_string(),
                    ssh_key: None,
                })
                .collect(),
        }
    }

    /// finance-controller 1 of [fc-a, fc-b], application-owner 1 of anyone; the lead is
    /// "migration-lead".
    fn rule() -> GateRule {
        GateRule {
            quorum: 2,
            roles: vec![
                role("finance-controller", 1, &["fc-a", "fc-b"]),
                role("application-owner", 1, &[]),
            ],
            lead: Some("migration-lead".into()),
        }
    }

    fn s(name: &str, role: &str, d: Decision) -> Signed {
        Signed {
            name: name.into(),
            role: role.into(),
            decision: d,
            comment: "seen".into(),
            evidence_sha256: EV.into(),
            signature: None,
        }
    }

    fn view_of(rule: &GateRule, sign: &[Signed]) -> GateView {
        let mut v = GateView::empty(rule);
        for x in sign {
            apply(rule, EV, Decision::Go, &mut v, x);
        }
        v
    }

    use Decision::{Go, NoGo};

    #[test]
    fn matrix() {
        let fc = "finance-controller";
        let ao = "application-owner";
        let stale = Signed {
            evidence_sha256: "b".repeat(64),
            ..s("fc-a", fc, Go)
        };
        let no_reason = Signed {
            comment: " ".into(),
            ..s("fc-a", fc, NoGo)
        };
        // (case, rule, sign-offs, expected status, counts, a refusal that must be listed)
        let lead_only = GateRule {
            quorum: 1,
            roles: vec![role("migration_lead", 1, &[])],
            lead: Some("Migration Lead".into()),
        };
        type Case<'a> = (
            &'a str,
            GateRule,
            Vec<Signed>,
            &'a str,
            &'a str,
            Option<&'a str>,
        );
        let cases: Vec<Case> = vec![
            (
                "nobody",
                rule(),
                vec![],
                "waiting",
                "finance-controller 0 of 1, application-owner 0 of 1",
                None,
            ),
            (
                "one role",
                rule(),
                vec![s("fc-a", fc, Go)],
                "waiting",
                "finance-controller 1 of 1, application-owner 0 of 1",
                None,
            ),
            (
                "both roles, two people",
                rule(),
                vec![s("fc-a", fc, Go), s("ao", ao, Go)],
                "go",
                "finance-controller 1 of 1, application-owner 1 of 1",
                None,
            ),
            (
                "same person in both roles",
                rule(),
                vec![s("fc-a", fc, Go), s("FC-A", ao, Go)],
                "waiting",
                "finance-controller 1 of 1, application-owner 0 of 1",
                Some("one person fills one role"),
            ),
            (
                "same person twice in a role",
                GateRule {
                    roles: vec![role(fc, 2, &["fc-a", "fc-b"])],
                    ..rule()
                },
                vec![s("fc-a", fc, Go), s("fc-a", fc, Go)],
                "waiting",
                "finance-controller 1 of 2",
                Some("one person counts once"),
            ),
            (
                "2 of 2 in one role",
                GateRule {
                    roles: vec![role(fc, 2, &["fc-a", "fc-b"])],
                    ..rule()
                },
                vec![s("fc-a", fc, Go), s("fc-b", fc, Go)],
                "go",
                "finance-controller 2 of 2",
                None,
            ),
            (
                "not an approver of the role",
                rule(),
                vec![s("someone", fc, Go), s("ao", ao, Go)],
                "waiting",
                "finance-controller 0 of 1, application-owner 1 of 1",
                Some("not an approver of role finance-controller"),
            ),
            (
                "unknown role",
                rule(),
                vec![s("fc-a", "cfo", Go)],
                "waiting",
                "finance-controller 0 of 1, application-owner 0 of 1",
                Some("not a role of this gate"),
            ),
            (
                "stale evidence",
                rule(),
                vec![stale, s("ao", ao, Go)],
                "waiting",
                "finance-controller 0 of 1, application-owner 1 of 1",
                Some("stale"),
            ),
            (
                "the lead alone",
                lead_only.clone(),
                vec![s("migration lead", "migration_lead", Go)],
                "waiting",
                "migration_lead 1 of 1",
                None,
            ),
            (
                "the lead and another",
                lead_only,
                vec![
                    s("migration lead", "migration_lead", Go),
                    s("ao", "migration_lead", Go),
                ],
                "go",
                "migration_lead 2 of 1",
                None,
            ),
            (
                "a NO-GO stops",
                rule(),
                vec![s("fc-a", fc, Go), s("ao", ao, NoGo)],
                "no-go",
                "finance-controller 1 of 1, application-owner 0 of 1",
                None,
            ),
            (
                "a NO-GO from a second role of the same person still stops",
                rule(),
                vec![s("fc-a", fc, Go), s("fc-a", ao, NoGo)],
                "no-go",
                "finance-controller 1 of 1, application-owner 0 of 1",
                None,
            ),
            (
                "a NO-GO without a reason does not count",
                rule(),
                vec![no_reason],
                "waiting",
                "finance-controller 0 of 1, application-owner 0 of 1",
                Some("needs a reason"),
            ),
            (
                "nothing counts after the decision",
                rule(),
                vec![s("ao", ao, NoGo), s("fc-a", fc, Go)],
                "no-go",
                "finance-controller 0 of 1, application-owner 0 of 1",
                Some("already decided"),
            ),
            (
                "extra people beyond the roles",
                GateRule {
                    quorum: 3,
                    ..rule()
                },
                vec![s("fc-a", fc, Go), s("ao", ao, Go)],
                "waiting",
                "finance-controller 1 of 1, application-owner 1 of 1, 2 of 3 people",
                None,
            ),
        ];
        for (case, rule, sign, status, counts, refused) in cases {
            let v = view_of(&rule, &sign);
            let st = match v.status {
                Status::Waiting => "waiting",
                Status::Go => "go",
                Status::NoGo { .. } => "no-go",
            };
            assert_eq!(st, status, "{case}: {v:?}");
            assert_eq!(v.counts(), counts, "{case}");
            match refused {
                Some(why) => assert!(
                    v.not_counted.iter().any(|n| n.reason.contains(why)),
                    "{case}: expected a refusal with '{why}': {v:?}"
                ),
                None => assert!(v.not_counted.is_empty(), "{case}: {v:?}"),
            }
            assert_eq!(v.missing.is_empty(), st != "waiting", "{case}: {v:?}");
        }
    }

    #[test]
    fn the_lead_alone_is_told_why() {
        let rule = GateRule {
            quorum: 1,
            roles: vec![role("migration_lead", 1, &[])],
            lead: Some("migration-lead".into()),
        };
        let v = view_of(&rule, &[s("migration-lead", "migration_lead", Go)]);
        assert_eq!(v.status, Status::Waiting);
        assert!(
            v.missing[0].contains("cannot be the only approver of their own gate"),
            "{:?}",
            v.missing
        );
    }

    #[test]
    fn an_override_needs_a_reason() {
        let r = rule();
        let v = GateView::empty(&r);
        let mut x = s("fc-a", "finance-controller", Go);
        x.comment.clear();
        assert_eq!(refusal(&r, EV, Go, &v, &x), None);
        assert!(refusal(&r, EV, NoGo, &v, &x).unwrap().contains("override"));
    }

    #[test]
    fn refused_records_are_listed_and_never_count() {
        let r = rule();
        let rec = |seq, event| Record {
            seq,
            run_id: "r".into(),
            ts: String::new(),
            event,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let records = vec![
            rec(
                1,
                Event::SignOffRefused {
                    gate: "go_live".into(),
                    name: "fc-a".into(),
                    role: "finance-controller".into(),
                    decision: Go,
                    comment: String::new(),
                    evidence_sha256: EV.into(),
                    reason: "signature refused".into(),
                },
            ),
            rec(
                2,
                Event::SignOffRecorded {
                    gate: "other_gate".into(),
                    name: "fc-a".into(),
                    role: "finance-controller".into(),
                    decision: Go,
                    comment: String::new(),
                    evidence_sha256: EV.into(),
                    overrides: false,
                    signature: None,
                },
            ),
        ];
        let v = fold(&r, "go_live", EV, Go, &records);
        assert_eq!(
            v.counts(),
            "finance-controller 0 of 1, application-owner 0 of 1"
        );
        assert_eq!(v.not_counted.len(), 1);
    }
}
