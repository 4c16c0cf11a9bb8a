//! Steps on an Odoo environment: the target opened with what the runbook asks (context,
//! workers, group-by, this run's external-id prefix), invoices posted after their load,
//! production closed by archiving its users and reopened with exactly those that were
//! active, and the API-only rollback that deletes what the run created.

use std::collections::{BTreeMap, HashSet};

use anyhow::{Context, Result};
use rust_decimal::Decimal;
use serde_json::json;

use crate::engine::rules::SqlValue;

use crate::runbook::format::is_odoo_url;
use crate::runbook::{Plan, ResolvedEnv};
use crate::target::odoo::{OdooOptions, OdooTarget, XmlIds};
use crate::target::{Capabilities, Prepare, TableSpec, Target, TargetError, WriteOutcome};

/// Whether an environment is an Odoo server.
pub fn is_odoo(env: &ResolvedEnv) -> bool {
    is_odoo_url(&env.url)
}

/// The Odoo target's options for environment `env`, from the runbook.
pub fn options(plan: &Plan, env: &str) -> OdooOptions {
    let s = crate::runbook::odoo::settings(plan, env);
    let mut o = OdooOptions::default();
    // The runbook's context keys are added to the target's own (`tz`).
    o.context.extend(s.context);
    o.workers = s.workers.max(1);
    o.group_by = s.group_by;
    o.xmlid_prefix = s.xmlid_prefix;
    o.batch_size = plan.rb.settings.batch_size.max(1);
    o.retries = plan.rb.settings.retries;
    o
}

/// An Odoo environment's database as a SQL environment (its `sql_url`), for `pg_dump` and
/// its restore; `None` for any other environment. The Odoo key is not the database's
/// password and is never handed on: the SQL URL takes `PGPASSWORD` or `~/.pgpass`.
pub fn sql_env(plan: &Plan, env: &ResolvedEnv) -> Result<Option<ResolvedEnv>> {
    if !is_odoo(env) {
        return Ok(None);
    }
    let url = plan.odoo_sql_url(&env.name).with_context(|| {
        format!(
            "environment {} is reached only through Odoo's API: give it sql_url for a pg_dump backup",
            env.name
        )
    })?;
    Ok(Some(ResolvedEnv {
        url,
        password: None,
        ..env.clone()
    }))
}

fn odoo(plan: &Plan, env: &ResolvedEnv) -> Result<OdooTarget> {
    OdooTarget::open(env, options(plan, &env.name))
}

/// Open the target of `env`: Odoo with the runbook's options, any other kind by URL.
pub async fn open(plan: &Plan, env: &ResolvedEnv) -> Result<Box<dyn Target>> {
    if is_odoo(env) {
        Ok(Box::new(odoo(plan, env)?))
    } else {
        crate::target::registry::open(env).await
    }
}

/// This run's external ids of `entity`'s records (`__import__.tms_invoice_`).
fn entity_prefix(plan: &Plan, entity: &str) -> Option<(String, XmlIds)> {
    let t = &plan.rb.entities.get(entity)?.target;
    let model = t.model.clone()?;
    let x = t.external_id.as_deref()?;
    Some((model, XmlIds::Prefix(format!("{}.{x}_", t.xid_module()))))
}

/// After `entity` is loaded: call its `post` method (`action_post`) on its records still
/// in draft. A re-run posts nothing twice. Returns how many were posted, or `None` when
/// the entity asks for nothing.
pub async fn post_loaded(plan: &Plan, env: &ResolvedEnv, entity: &str) -> Result<Option<u64>> {
    let Some(method) = plan.rb.entities[entity].target.post.clone() else {
        return Ok(None);
    };
    let Some((model, which)) = entity_prefix(plan, entity) else {
        return Ok(None);
    };
    let t = odoo(plan, env)?;
    let ids = t.resolve_external_ids(&model, &which).await?;
    if ids.is_empty() {
        return Ok(Some(0));
    }
    let draft: Vec<i64> = serde_json::from_value(
        t.call(
            &model,
            "search",
            &[],
            vec![(
                "domain",
                json!([["id", "in", ids], ["state", "=", "draft"]]),
            )],
        )
        .await?,
    )
    .with_context(|| format!("{model}.search: unreadable answer"))?;
    for chunk in draft.chunks(1000) {
        t.call(&model, &method, chunk, Vec::new())
            .await
            .with_context(|| format!("{model}.{method} on {} records", chunk.len()))?;
    }
    Ok(Some(draft.len() as u64))
}

/// Close production: archive its app users. Returns a summary and, per login, whether it
/// was `active` or already `archived` before (what the reopen gives back, journaled).
pub async fn close(plan: &Plan, env: &ResolvedEnv) -> Result<(String, BTreeMap<String, String>)> {
    let t = odoo(plan, env)?;
    let before = t.archive_users(&env.app_users).await?;
    let held: BTreeMap<String, String> = before
        .iter()
        .map(|(l, a)| {
            (
                l.clone(),
                if *a { "active" } else { "archived" }.to_string(),
            )
        })
        .collect();
    let archived: Vec<&str> = before
        .iter()
        .filter(|(_, a)| *a)
        .map(|(l, _)| l.as_str())
        .collect();
    let already: Vec<&str> = before
        .iter()
        .filter(|(_, a)| !*a)
        .map(|(l, _)| l.as_str())
        .collect();
    let mut msg = format!(
        "archived {} Odoo user(s): {}",
        archived.len(),
        archived.join(", ")
    );
    if !already.is_empty() {
        msg.push_str(&format!(
            " ({} already archived, left so)",
            already.join(", ")
        ));
    }
    Ok((msg, held))
}

/// Reopen production: reactivate exactly the users the close found active.
pub async fn reopen(
    plan: &Plan,
    env: &ResolvedEnv,
    held: Option<&BTreeMap<String, String>>,
) -> Result<String> {
    let Some(held) = held else {
        return Ok("no Odoo user was archived by this run".into());
    };
    let before: Vec<(String, bool)> = held
        .iter()
        .map(|(l, s)| (l.clone(), s == "active"))
        .collect();
    let t = odoo(plan, env)?;
    let n = t.restore_users(&before).await?;
    let names: Vec<&str> = before
        .iter()
        .filter(|(_, a)| *a)
        .map(|(l, _)| l.as_str())
        .collect();
    Ok(format!(
        "reactivated {n} Odoo user(s): {}",
        names.join(", ")
    ))
}

/// The API-only rollback: delete every record of this run, by its external ids, children
/// before parents (posted entries go back to draft first: Odoo refuses to delete a posted
/// one; see `delete_by_external_ids`), then check with `search_count` that none is left. Returns what was deleted;
/// an error names what is left.
pub async fn delete_loaded(plan: &Plan, env: &ResolvedEnv) -> Result<String> {
    let t = odoo(plan, env)?;
    let mut deleted = Vec::new();
    let order: Vec<&String> = plan.order.iter().rev().collect();
    for entity in &order {
        let Some((model, which)) = entity_prefix(plan, entity) else {
            continue;
        };
        // Posted entries are reset to draft there first: Odoo refuses to delete them.
        let n = t.delete_by_external_ids(&model, &which).await?;
        deleted.push(format!("{model} {n}"));
    }
    let mut left = Vec::new();
    for entity in &order {
        let Some((model, which)) = entity_prefix(plan, entity) else {
            continue;
        };
        let n = t.count_by_external_ids(&model, &which).await?;
        if n > 0 {
            left.push(format!("{model} {n}"));
        }
    }
    if !left.is_empty() {
        anyhow::bail!(
            "records of this run are still in {}: {} (deleted: {})",
            crate::db::redact_url(&env.url),
            left.join(", "),
            deleted.join(", ")
        );
    }
    Ok(format!(
        "deleted this run's records by external id: {}; search_count finds none left",
        deleted.join(", ")
    ))
}

/// The external ids of `entity`'s records already posted (`state = posted`): a posted
/// entry refuses any change, so a re-run does not send them again.
pub async fn posted_external_ids(
    plan: &Plan,
    env: &ResolvedEnv,
    entity: &str,
) -> Result<HashSet<String>> {
    let t = &plan.rb.entities[entity].target;
    let Some((model, which)) = entity_prefix(plan, entity).filter(|_| t.post.is_some()) else {
        return Ok(HashSet::new());
    };
    let o = odoo(plan, env)?;
    let ids = o.resolve_external_ids(&model, &which).await?;
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let posted: Vec<i64> = serde_json::from_value(
        o.call(
            &model,
            "search",
            &[],
            vec![(
                "domain",
                json!([["id", "in", ids], ["state", "=", "posted"]]),
            )],
        )
        .await?,
    )
    .with_context(|| format!("{model}.search: unreadable answer"))?;
    if posted.is_empty() {
        return Ok(HashSet::new());
    }
    #[derive(serde::Deserialize)]
    struct Xid {
        module: String,
        name: String,
    }
    let found: Vec<Xid> = serde_json::from_value(
        o.call(
            "ir.model.data",
            "search_read",
            &[],
            vec![
                (
                    "domain",
                    json!([["model", "=", model], ["res_id", "in", posted]]),
                ),
                ("fields", json!(["module", "name"])),
            ],
        )
        .await?,
    )
    .context("ir.model.data.search_read: unreadable answer")?;
    Ok(found
        .into_iter()
        .map(|x| format!("{}.{}", x.module, x.name))
        .collect())
}

/// A target that does not send again the rows of records already posted: they count as
/// loaded, being in Odoo as the first run left them (a re-run then creates and changes
/// nothing, where re-sending would have every such row refused).
pub struct SkipPosted<'a> {
    pub inner: &'a dyn Target,
    pub skip: HashSet<String>,
}

#[async_trait::async_trait]
impl Target for SkipPosted<'_> {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    async fn prepare(&self, prepare: &Prepare) -> Result<Option<String>, TargetError> {
        self.inner.prepare(prepare).await
    }

    async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        may_conflict: bool,
    ) -> Result<WriteOutcome, TargetError> {
        let key = spec.columns.iter().position(|c| *c == spec.key);
        let (mut keep, mut at, mut skipped) = (Vec::new(), Vec::new(), 0u64);
        for (i, r) in rows.iter().enumerate() {
            match key.and_then(|k| r.get(k)) {
                Some(SqlValue::Text(x)) if self.skip.contains(x) => skipped += 1,
                _ => {
                    keep.push(*r);
                    at.push(i);
                }
            }
        }
        if keep.is_empty() {
            return Ok(WriteOutcome {
                loaded: skipped,
                refused: Vec::new(),
            });
        }
        let mut out = self.inner.write_batch(spec, &keep, may_conflict).await?;
        out.loaded += skipped;
        for r in &mut out.refused {
            r.0 = at[r.0];
        }
        Ok(out)
    }

    async fn holds_rows(&self, table: &str) -> Result<bool, TargetError> {
        self.inner.holds_rows(table).await
    }

    async fn count(&self, table: &str) -> Result<u64, TargetError> {
        self.inner.count(table).await
    }

    async fn sums(
        &self,
        table: &str,
        column: &str,
        by: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError> {
        self.inner.sums(table, column, by).await
    }

    async fn close(&self) {}
}
