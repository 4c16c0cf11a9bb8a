//! Reconciliation checks: source figures (from the journal's pipeline results) against
//! what the target holds. Counts and sums are read through [`Target::count`] and
//! [`Target::sums`], so they work on any target; fingerprints run the check's
//! `target_sql` and need a target with SQL read-back. Every result is evidence for the gate.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use rust_decimal::Decimal;

use crate::journal::events::{CheckResult, CheckStatus, EntityCounts};
use crate::runbook::Plan;
use crate::runbook::format::Check;
use crate::target::Target;
use crate::values::{Fingerprint, NO_CURRENCY};

/// What the pipeline recorded for one entity in one phase.
#[derive(Debug, Clone, Default)]
pub struct EntityEvidence {
    pub counts: EntityCounts,
    pub sums: BTreeMap<String, String>,
}

pub async fn run_checks(
    plan: &Plan,
    target: &dyn Target,
    results: &BTreeMap<String, EntityEvidence>,
) -> Result<Vec<CheckResult>> {
    let mut out = Vec::new();
    for check in &plan.rb.checks {
        match check {
            Check::Counts { entities } => {
                let names: Vec<&String> = if entities.is_empty() {
                    plan.order.iter().collect()
                } else {
                    entities.iter().collect()
                };
                for name in names {
                    let e = &plan.rb.entities[name];
                    let ev = results.get(name).cloned().unwrap_or_default();
                    let c = &ev.counts;
                    let n = target.count(&e.target.table).await?;
                    let ok = n == c.valid && c.loaded == c.valid;
                    out.push(CheckResult {
                        name: "rows loaded = rows valid".into(),
                        entity: name.clone(),
                        source: c.valid.to_string(),
                        target: n.to_string(),
                        status: if ok {
                            CheckStatus::Pass
                        } else {
                            CheckStatus::Fail
                        },
                        detail: format!(
                            "in file {}, in scope {}, valid {}, rejected {}, loaded {} into {}",
                            c.in_file, c.in_scope, c.valid, c.rejected, c.loaded, e.target.table
                        ),
                        currency: None,
                    });
                    if let Some(l) = c.lines {
                        // Every line of the lines' file travels with its record or is rejected.
                        out.push(CheckResult {
                            name: "lines read = attached + rejected".into(),
                            entity: name.clone(),
                            source: l.read.to_string(),
                            target: (l.attached + l.rejected).to_string(),
                            status: if l.read == l.attached + l.rejected {
                                CheckStatus::Pass
                            } else {
                                CheckStatus::Fail
                            },
                            detail: format!(
                                "lines read {}, attached {}, rejected {} (in {name}.lines.rejects.csv)",
                                l.read, l.attached, l.rejected
                            ),
                            currency: None,
                        });
                    }
                    if c.in_file == 0 {
                        // A header and no rows is a legal extract, but rarely what anyone meant.
                        out.push(CheckResult {
                            name: "extract holds rows".into(),
                            entity: name.clone(),
                            source: "0".into(),
                            target: "≥ 1".into(),
                            status: CheckStatus::Warn,
                            detail: format!(
                                "{}: line 1 is the header and no rows follow, so nothing was loaded; if rows were expected, extract again",
                                e.source.file
                            ),
                            currency: None,
                        });
                    }
                    if let Some(budget) = e.max_reject_pct {
                        let rate = if c.in_scope == 0 {
                            0.0
                        } else {
                            c.rejected as f64 * 100.0 / c.in_scope as f64
                        };
                        out.push(CheckResult {
                            name: "reject rate within budget".into(),
                            entity: name.clone(),
                            source: format!("{rate:.2}%"),
                            target: format!("≤ {budget:.2}%"),
                            status: if rate <= budget {
                                CheckStatus::Pass
                            } else {
                                CheckStatus::Warn
                            },
                            detail: format!(
                                "{} of {} in-scope rows rejected",
                                c.rejected, c.in_scope
                            ),
                            currency: None,
                        });
                    }
                }
            }
            Check::Sum {
                entity,
                field,
                column,
                currency,
                currency_column,
            } => {
                let e = &plan.rb.entities[entity];
                let ev = results.get(entity).cloned().unwrap_or_default();
                let dec = |key: &str| -> Decimal {
                    ev.sums
                        .get(key)
                        .and_then(|s| s.parse().ok())
                        .unwrap_or_default()
                };
                let Some(cur_field) = currency else {
                    let source = dec(&format!("valid.{field}"));
                    let rejected = dec(&format!("rejected.{field}"));
                    let total = target.sums(&e.target.table, column, None).await?;
                    out.push(sum_result(
                        format!("SUM({field})"),
                        entity,
                        source,
                        total.values().copied().sum(),
                        rejected,
                        None,
                    ));
                    continue;
                };
                let tcol = currency_column.as_ref().unwrap_or(cur_field);
                let targets = target.sums(&e.target.table, column, Some(tcol)).await?;
                // Every currency on either side (rejected rows included), so one missing
                // on a side shows as a difference, not as silence.
                let prefix = format!("valid.{field}.");
                let mut currencies: BTreeSet<String> = targets.keys().cloned().collect();
                for k in ev.sums.keys() {
                    if let Some(cur) = k
                        .strip_prefix(&prefix)
                        .or_else(|| k.strip_prefix(&format!("rejected.{field}.")))
                    {
                        currencies.insert(cur.to_string());
                    }
                }
                for cur in currencies {
                    out.push(sum_result(
                        format!("SUM({field}) {cur}"),
                        entity,
                        dec(&format!("valid.{field}.{cur}")),
                        targets.get(&cur).copied().unwrap_or_default(),
                        dec(&format!("rejected.{field}.{cur}")),
                        // Blank codes are named "(none)" but are no currency to print.
                        (cur != NO_CURRENCY).then_some(cur),
                    ));
                }
            }
            Check::Fingerprint {
                name,
                entity,
                target_sql,
                ..
            } => {
                let ev = results.get(entity).cloned().unwrap_or_default();
                let source = ev
                    .sums
                    .get(&format!("fingerprint.{name}"))
                    .cloned()
                    .unwrap_or_else(|| Fingerprint::default().render());
                let db = target.sql().with_context(|| {
                    format!(
                        "check '{name}': {} has no SQL read-back for its target_sql",
                        target.name()
                    )
                })?;
                let target = db
                    .fingerprint(target_sql)
                    .await
                    .with_context(|| format!("check '{name}'"))?
                    .render();
                out.push(CheckResult {
                    name: name.clone(),
                    entity: entity.clone(),
                    status: if source == target {
                        CheckStatus::Pass
                    } else {
                        CheckStatus::Fail
                    },
                    source,
                    target,
                    detail: "set of (source tuple) equals set of target rows".into(),
                    currency: None,
                });
            }
        }
    }
    Ok(out)
}

/// One sum compared to the cent; the rejected rows' share is shown, as it stays behind.
fn sum_result(
    name: String,
    entity: &str,
    source: Decimal,
    target: Decimal,
    rejected: Decimal,
    currency: Option<String>,
) -> CheckResult {
    CheckResult {
        name,
        entity: entity.to_string(),
        source: source.to_string(),
        target: target.to_string(),
        status: if source == target {
            CheckStatus::Pass
        } else {
            CheckStatus::Fail
        },
        detail: format!(
            "rejected in-scope rows hold {}{} (stays behind)",
            crate::figures::fmt_decimal(rejected),
            currency
                .as_ref()
                .map(|c| format!(" {c}"))
                .unwrap_or_default()
        ),
        currency,
    }
}
