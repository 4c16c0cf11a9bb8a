//! What `check` refuses because a target cannot do it, each finding at its runbook line:
//! a fingerprint check (`target_sql`) on an environment without SQL read-back, a backup
//! step on a target cutover cannot back up, a freeze on a target with nothing to close.
//! Decided from the URL's capabilities alone ([`registry::capabilities_for_url`]), without
//! connecting. The runbook layer cannot ask this itself: targets sit above it.

use std::path::Path;

use super::registry::{self, Kind};
use super::{BackupKind, Capabilities};
use crate::runbook::format::{Check, StepKind};
use crate::runbook::lint::Ctx;
use crate::runbook::{Diagnostic, Plan};

/// `runbook::load`, then the capability findings.
pub fn load(path: &Path, overrides: &[(String, String)]) -> Result<Plan, Vec<Diagnostic>> {
    let plan = crate::runbook::load(path, overrides)?;
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let diags = findings(&plan, &text);
    if diags.is_empty() {
        Ok(plan)
    } else {
        Err(diags)
    }
}

/// The environment a step acts on: its `env`, or its kind's default.
fn step_env(kind: StepKind, env: Option<&str>) -> Option<String> {
    let default = match kind {
        StepKind::Backup | StepKind::Load | StepKind::Verify | StepKind::Unfreeze => "production",
        StepKind::DryRun | StepKind::Validate => "staging",
        StepKind::Freeze | StepKind::Extract => "legacy",
        StepKind::SignOff | StepKind::Command => return None,
    };
    Some(env.unwrap_or(default).to_string())
}

/// Every thing the runbook asks of a target that its URL's capabilities rule out.
pub fn findings(plan: &Plan, text: &str) -> Vec<Diagnostic> {
    let ctx = Ctx {
        file: &plan.path,
        text,
    };
    let caps = |env: &str| -> Option<(String, Capabilities)> {
        let e = plan.envs.get(env)?;
        Some((e.url.clone(), registry::capabilities_for_url(&e.url)?))
    };
    let mut out = Vec::new();
    for (i, s) in plan.rb.steps.iter().enumerate() {
        let Some(env) = step_env(s.kind, s.env.as_deref()) else {
            continue;
        };
        let Some((url, c)) = caps(&env) else {
            continue;
        };
        // Odoo environments are judged by `runbook::odoo::lint_targets`, which knows that
        // a `sql_url` gives SQL read-back and a pg_dump backup.
        if crate::runbook::format::is_odoo_url(&url) {
            continue;
        }
        let scheme = url.split(':').next().unwrap_or_default();
        let key = if s.env.is_some() {
            format!("steps[{i}].env")
        } else {
            format!("steps[{i}].kind")
        };
        match s.kind {
            StepKind::Backup if c.backup == BackupKind::External => out.push(ctx.diag(
                &key,
                format!(
                    "step '{}': cutover cannot back up environment '{env}' ({scheme}: target)",
                    s.id
                ),
                "take the backup with a command step (e.g. a database snapshot), or give the \
                 environment a SQL URL cutover can dump"
                    .into(),
            )),
            StepKind::Freeze | StepKind::Unfreeze if Kind::of_url(&url) == Some(Kind::Memory) => {
                out.push(ctx.diag(
                    &key,
                    format!(
                        "step '{}': environment '{env}' ({scheme}: target) has no users to close out",
                        s.id
                    ),
                    "remove the step, or point the environment at a database".into(),
                ))
            }
            StepKind::Validate | StepKind::Verify if !c.sql_read_back => {
                for (j, check) in plan.rb.checks.iter().enumerate() {
                    if let Check::Fingerprint { name, .. } = check {
                        out.push(ctx.diag(
                            &format!("checks[{j}].target_sql"),
                            format!(
                                "check '{name}' reads target_sql, but environment '{env}' \
                                 ({scheme}: target, checked by step '{}') has no SQL read-back",
                                s.id
                            ),
                            "use counts and sum checks there (read through the target's API), \
                             or give that environment a SQL URL"
                                .into(),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    out
}
