//! Reconciliation checks: source figures (from the journal's pipeline results) against
//! what the target database holds. Every result is evidence for the gate.

use std::collections::BTreeMap;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use sqlx::{Row, SqlitePool, ValueRef};

use crate::db::ident;
use crate::engine::pipeline::Fingerprint;
use crate::journal::events::{CheckResult, CheckStatus, EntityCounts};
use crate::runbook::Plan;
use crate::runbook::format::Check;

/// What the pipeline recorded for one entity in one phase.
#[derive(Debug, Clone, Default)]
pub struct EntityEvidence {
    pub counts: EntityCounts,
    pub sums: BTreeMap<String, String>,
}

pub async fn run_checks(
    plan: &Plan,
    pool: &SqlitePool,
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
                    let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                        "SELECT COUNT(*) FROM {}",
                        ident(&e.target.table)
                    )))
                    .fetch_one(pool)
                    .await
                    .with_context(|| format!("counting {}", e.target.table))?;
                    let ok = n as u64 == c.valid && c.loaded == c.valid;
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
                    });
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
                        });
                    }
                }
            }
            Check::Sum {
                entity,
                field,
                column,
            } => {
                let e = &plan.rb.entities[entity];
                let ev = results.get(entity).cloned().unwrap_or_default();
                let source: Decimal = ev
                    .sums
                    .get(&format!("valid.{field}"))
                    .and_then(|s| s.parse().ok())
                    .unwrap_or_default();
                let rejected = ev
                    .sums
                    .get(&format!("rejected.{field}"))
                    .cloned()
                    .unwrap_or_else(|| "0".into());
                let target = sum_column(pool, &e.target.table, column).await?;
                out.push(CheckResult {
                    name: format!("SUM({field})"),
                    entity: entity.clone(),
                    source: source.to_string(),
                    target: target.to_string(),
                    status: if source == target {
                        CheckStatus::Pass
                    } else {
                        CheckStatus::Fail
                    },
                    detail: format!("rejected in-scope rows hold {rejected} (stays behind)"),
                });
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
                let target = fingerprint_query(pool, target_sql).await?.render();
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
                });
            }
        }
    }
    Ok(out)
}

/// Exact sum of a money column stored as decimal text.
async fn sum_column(pool: &SqlitePool, table: &str, column: &str) -> Result<Decimal> {
    let sql = format!("SELECT {} FROM {}", ident(column), ident(table));
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
    let mut total = Decimal::ZERO;
    while let Some(r) = rows.try_next().await? {
        if r.try_get_raw(0)?.is_null() {
            continue;
        }
        let v: Decimal = match r.try_get::<String, _>(0) {
            Ok(s) => s
                .parse()
                .with_context(|| format!("{table}.{column} holds '{s}', not a decimal"))?,
            Err(_) => Decimal::from(
                r.try_get::<i64, _>(0)
                    .with_context(|| format!("{table}.{column} is neither text nor integer"))?,
            ),
        };
        total += v;
    }
    Ok(total)
}

async fn fingerprint_query(pool: &SqlitePool, sql: &str) -> Result<Fingerprint> {
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch(pool);
    let mut fp = Fingerprint::default();
    while let Some(r) = rows
        .try_next()
        .await
        .with_context(|| format!("running check query: {sql}"))?
    {
        let mut parts = Vec::with_capacity(r.len());
        for i in 0..r.len() {
            let v = if r.try_get_raw(i)?.is_null() {
                String::new()
            } else if let Ok(s) = r.try_get::<String, _>(i) {
                s
            } else {
                r.try_get::<i64, _>(i)
                    .map(|x| x.to_string())
                    .unwrap_or_default()
            };
            parts.push(v);
        }
        let refs: Vec<&str> = parts.iter().map(String::as_str).collect();
        fp.add(&refs);
    }
    Ok(fp)
}
