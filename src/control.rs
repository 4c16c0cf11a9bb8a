//! What an operator can tell a running cutover, from the console or from flags.

use crate::journal::events::Decision;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOff {
    pub gate: String,
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub comment: String,
    /// An `ssh-keygen -Y sign -n cutover` signature file over the evidence hash, for an
    /// approver whose SSH key the runbook lists; read where the sign-off is judged.
    pub signature_file: Option<std::path::PathBuf>,
}

/// Why a sign-off cannot be recorded as given: a NO-GO, and a GO against a NO-GO
/// recommendation (an override), must say why in the comment.
pub fn missing_reason(
    decision: Decision,
    comment: &str,
    recommendation: Decision,
) -> Option<&'static str> {
    if !comment.trim().is_empty() {
        return None;
    }
    match (decision, recommendation) {
        (Decision::NoGo, _) => Some("a NO-GO needs a reason in the comment"),
        (Decision::Go, Decision::NoGo) => Some(
            "a GO against the NO-GO recommendation is an override and needs a reason in the comment",
        ),
        (Decision::Go, Decision::Go) => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Record a sign-off at the open gate.
    SignOff(SignOff),
    /// Stop the run at the next safe point (Ctrl-C, quit).
    Abort,
    /// Run the rollback plan at the next safe point; the operator confirmed it by typing
    /// the production database's name.
    Rollback { reason: String },
    /// After the NO-GO that follows, keep the legacy frozen (to fix data and rehearse
    /// again) instead of reopening it; the reason is journaled.
    HoldFreeze { reason: String },
    /// Skip a step not yet started: who asked and why, journaled before the run moves on.
    Skip {
        step: String,
        name: String,
        reason: String,
    },
}

/// A skip given up front (`--skip "STEP|NAME|REASON"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skip {
    pub step: String,
    pub name: String,
    pub reason: String,
}

impl Skip {
    /// Parse `STEP|NAME|REASON` as given to `--skip`; the reason may itself hold `|`.
    pub fn parse(s: &str) -> Result<Skip, String> {
        let parts: Vec<&str> = s.splitn(3, '|').map(str::trim).collect();
        let [step, name, reason] = parts.as_slice() else {
            return Err(format!("--skip '{s}': expected STEP|NAME|REASON"));
        };
        if step.is_empty() || name.is_empty() || reason.is_empty() {
            return Err(format!(
                "--skip '{s}': STEP, NAME and REASON must not be empty (a skip is journaled with who asked and why)"
            ));
        }
        Ok(Skip {
            step: step.to_string(),
            name: name.to_string(),
            reason: reason.to_string(),
        })
    }
}

impl From<Skip> for Command {
    fn from(s: Skip) -> Command {
        Command::Skip {
            step: s.step,
            name: s.name,
            reason: s.reason,
        }
    }
}

impl SignOff {
    /// Why this sign-off cannot be recorded as given: a NO-GO, and a GO against a NO-GO
    /// recommendation (an override), must say why in the comment. The console's dialog and
    /// the engine's gate both apply it.
    pub fn missing_reason(&self, recommendation: Decision) -> Option<&'static str> {
        missing_reason(self.decision, &self.comment, recommendation)
    }

    /// Parse `NAME|ROLE|go|COMMENT` (decision `go` or `no-go`) as given to `--sign-off`.
    pub fn parse(gate: &str, s: &str) -> Result<SignOff, String> {
        let parts: Vec<&str> = s.splitn(4, '|').collect();
        if parts.len() != 4 {
            return Err(format!(
                "--sign-off '{s}': expected NAME|ROLE|go|COMMENT (or NAME|ROLE|no-go|COMMENT)"
            ));
        }
        let decision = match parts[2].trim().to_ascii_lowercase().as_str() {
            "go" => Decision::Go,
            "no-go" | "nogo" | "no_go" => Decision::NoGo,
            other => {
                return Err(format!(
                    "--sign-off '{s}': decision '{other}' is not go or no-go"
                ));
            }
        };
        let (name, role) = (parts[0].trim(), parts[1].trim());
        if name.is_empty() || role.is_empty() {
            return Err(format!("--sign-off '{s}': NAME and ROLE must not be empty"));
        }
        Ok(SignOff {
            gate: gate.to_string(),
            name: name.to_string(),
            role: role.to_string(),
            decision,
            comment: parts[3].trim().to_string(),
            signature_file: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_and_no_go() {
        let s = SignOff::parse("g", "Migration lead|migration_lead|go|counts match").unwrap();
        assert_eq!(
            (s.name.as_str(), s.role.as_str(), s.decision),
            ("Migration lead", "migration_lead", Decision::Go)
        );
        assert_eq!(s.comment, "counts match");
        let s = SignOff::parse("g", "B|finance|NO-GO|sums off | by 3").unwrap();
        assert_eq!(s.decision, Decision::NoGo);
        assert_eq!(s.comment, "sums off | by 3");
    }

    #[test]
    fn no_go_and_override_need_a_reason() {
        let s = |d: &str, c: &str| SignOff::parse("g", &format!("A|lead|{d}|{c}")).unwrap();
        assert_eq!(s("go", "").missing_reason(Decision::Go), None);
        assert!(s("no-go", " ").missing_reason(Decision::Go).is_some());
        assert!(s("no-go", "").missing_reason(Decision::NoGo).is_some());
        let over = s("go", "").missing_reason(Decision::NoGo).unwrap();
        assert!(over.contains("override"), "{over}");
        assert_eq!(
            s("go", "AR diff explained").missing_reason(Decision::NoGo),
            None
        );
        assert_eq!(s("no-go", "sums off").missing_reason(Decision::Go), None);
    }

    #[test]
    fn rejects_malformed() {
        assert!(SignOff::parse("g", "only|three|go").is_err());
        assert!(SignOff::parse("g", "a|b|maybe|c").is_err());
        assert!(SignOff::parse("g", " |b|go|c").is_err());
    }

    #[test]
    fn parses_skip() {
        let s = Skip::parse(" unfreeze | Migration lead | reopened by hand | at 06:00 ").unwrap();
        assert_eq!(
            s,
            Skip {
                step: "unfreeze".into(),
                name: "Migration lead".into(),
                reason: "reopened by hand | at 06:00".into(),
            }
        );
        assert_eq!(
            Command::from(s),
            Command::Skip {
                step: "unfreeze".into(),
                name: "Migration lead".into(),
                reason: "reopened by hand | at 06:00".into(),
            }
        );
    }

    #[test]
    fn skip_needs_step_name_and_reason() {
        assert!(Skip::parse("unfreeze").is_err());
        assert!(Skip::parse("unfreeze|Ada").is_err());
        assert!(Skip::parse("unfreeze|Ada| ").is_err());
        assert!(Skip::parse("unfreeze| |why").is_err());
        assert!(Skip::parse(" |Ada|why").is_err());
    }
}
