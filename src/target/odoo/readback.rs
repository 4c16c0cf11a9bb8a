//! Reading an Odoo database back, scoped to one run's records by their external ids, and
//! the API-only operations the runbook needs: deleting a run's records (rollback), and
//! archiving and restoring users (closing and reopening production).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Value, json};

use super::OdooTarget;
use super::endpoint::Transport;
use super::transport::Call;
use crate::target::TargetError;
use crate::values::NO_CURRENCY;

/// Which external ids: every one starting with a prefix, or a list. Unqualified ids (no
/// dot) belong to the context's `module` (`__import__` by default), as in `load`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum XmlIds {
    /// `__import__.tms_` or `tms_` (the context's module then).
    Prefix(String),
    List(Vec<String>),
}

/// `module.name` for an external id as `load` reads it.
pub(super) fn qualify(xmlid: &str, module: &str) -> String {
    if xmlid.contains('.') {
        xmlid.to_string()
    } else {
        format!("{module}.{xmlid}")
    }
}

fn split(xmlid: &str) -> (&str, &str) {
    xmlid.split_once('.').unwrap_or(("", xmlid))
}

/// `=like` pattern for a prefix. `_` and `%` are left as wildcards (escapes differ between
/// servers): the pattern finds a superset, and names are checked exactly afterwards.
fn like_prefix(s: &str) -> String {
    format!("{s}%")
}

/// An aggregate as Odoo sent it, parsed from the JSON number's text (never through `f64`).
pub(super) fn decimal(raw: &RawValue) -> Result<Decimal, String> {
    let t = raw.get().trim();
    if matches!(t, "false" | "null") {
        return Ok(Decimal::ZERO);
    }
    let parsed = if t.contains(['e', 'E']) {
        Decimal::from_scientific(t)
    } else {
        Decimal::from_str(t)
    };
    parsed.map_err(|e| format!("{t} is not a number: {e}"))
}

/// The group's label: a many2one's display name (`[1, "EUR"]` → `EUR`), a plain value as
/// text, `""` for none.
fn group_label(raw: Option<&RawValue>) -> String {
    let v: Value = raw
        .and_then(|r| serde_json::from_str(r.get()).ok())
        .unwrap_or(Value::Null);
    match v {
        Value::Array(a) => match a.get(1) {
            Some(Value::String(s)) => s.clone(),
            Some(other) => other.to_string(),
            None => a.first().map(|x| x.to_string()).unwrap_or_default(),
        },
        Value::String(s) => s,
        Value::Null | Value::Bool(false) => String::new(),
        other => other.to_string(),
    }
}

#[derive(Deserialize)]
struct DataRow {
    module: String,
    name: String,
    res_id: i64,
}

impl OdooTarget {
    fn read_context(&self) -> serde_json::Map<String, Value> {
        // Archived records are still the run's records.
        self.context_with(&[("active_test", Value::Bool(false))])
    }

    async fn read_call<T: for<'de> Deserialize<'de>>(
        &self,
        call: Call<'_>,
    ) -> Result<T, TargetError> {
        let raw = self.call_retrying(&call).await?;
        serde_json::from_str(raw.get()).map_err(|e| {
            TargetError::Fatal(anyhow::anyhow!(
                "{}.{} at {}: unexpected answer: {e}",
                call.model,
                call.method,
                self.client.endpoint
            ))
        })
    }

    /// The database ids of `model`'s records named by `which`, through `ir.model.data`.
    pub async fn resolve_external_ids(
        &self,
        model: &str,
        which: &XmlIds,
    ) -> Result<Vec<i64>, TargetError> {
        let module = self.module();
        let context = self.read_context();
        let mut domains: Vec<Value> = Vec::new();
        let mut wanted: Option<HashSet<String>> = None;
        let mut prefix: Option<String> = None;
        match which {
            XmlIds::Prefix(p) => {
                let q = qualify(p, &module);
                let (m, n) = split(&q);
                domains.push(json!([
                    ["model", "=", model],
                    ["module", "=", m],
                    ["name", "=like", like_prefix(n)]
                ]));
                prefix = Some(q);
            }
            XmlIds::List(list) => {
                let q: Vec<String> = list.iter().map(|x| qualify(x, &module)).collect();
                let mut by_module: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
                for x in &q {
                    let (m, n) = split(x);
                    by_module.entry(m).or_default().push(n);
                }
                for (m, names) in by_module {
                    for chunk in names.chunks(1000) {
                        domains.push(json!([
                            ["model", "=", model],
                            ["module", "=", m],
                            ["name", "in", chunk]
                        ]));
                    }
                }
                wanted = Some(q.into_iter().collect());
            }
        }
        let mut ids = Vec::new();
        for domain in domains {
            let rows: Vec<DataRow> = self
                .read_call(Call {
                    model: "ir.model.data",
                    method: "search_read",
                    ids: &[],
                    args: vec![
                        ("domain", domain),
                        ("fields", json!(["module", "name", "res_id"])),
                    ],
                    kwargs: Vec::new(),
                    context: &context,
                })
                .await?;
            for r in rows {
                // Checked again here: the server's pattern matching is not ours to trust.
                let full = format!("{}.{}", r.module, r.name);
                let keep = match (&prefix, &wanted) {
                    (Some(p), _) => full.starts_with(p.as_str()),
                    (_, Some(w)) => w.contains(&full),
                    _ => false,
                };
                if keep {
                    ids.push(r.res_id);
                }
            }
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }

    /// This run's records of `model`: by the prefix, or what this target wrote.
    pub(super) async fn run_ids(&self, model: &str) -> Result<Vec<i64>, TargetError> {
        let which = match &self.opts.xmlid_prefix {
            Some(p) => XmlIds::Prefix(p.clone()),
            None => {
                let w = self.written.lock().unwrap_or_else(|p| p.into_inner());
                XmlIds::List(
                    w.get(model)
                        .map(|s| s.iter().cloned().collect())
                        .unwrap_or_default(),
                )
            }
        };
        if matches!(&which, XmlIds::List(l) if l.is_empty()) {
            return Ok(Vec::new());
        }
        self.resolve_external_ids(model, &which).await
    }

    /// Called even without ids: an unknown model is then a fatal error, not a zero.
    pub(super) async fn count_ids(&self, model: &str, ids: &[i64]) -> Result<u64, TargetError> {
        let context = self.read_context();
        self.read_call(Call {
            model,
            method: "search_count",
            ids: &[],
            args: vec![("domain", json!([["id", "in", ids]]))],
            kwargs: Vec::new(),
            context: &context,
        })
        .await
    }

    /// Sums of `column` over the records `ids`, per value of `by` (a currency; none is
    /// `(none)`), rounded to the cent; one `""` entry without `by`.
    pub(super) async fn sum_ids(
        &self,
        model: &str,
        ids: &[i64],
        column: &str,
        by: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError> {
        let column = column.split('/').next().unwrap_or(column);
        let by = by.map(|b| b.split('/').next().unwrap_or(b));
        let mut out = BTreeMap::new();
        let context = self.read_context();
        let domain = json!([["id", "in", ids]]);
        let groupby: Vec<&str> = by.into_iter().collect();
        let spec = format!("{column}:sum");
        let (call, key) = match self.client.endpoint.transport {
            Transport::JsonRpc => (
                Call {
                    model,
                    method: "read_group",
                    ids: &[],
                    args: vec![
                        ("domain", domain),
                        ("fields", json!([spec])),
                        ("groupby", json!(groupby)),
                    ],
                    kwargs: vec![("lazy", Value::Bool(false))],
                    context: &context,
                },
                column.to_string(),
            ),
            Transport::Json2 => (
                Call {
                    model,
                    method: "formatted_read_group",
                    ids: &[],
                    args: vec![
                        ("domain", domain),
                        ("groupby", json!(groupby)),
                        ("aggregates", json!([spec])),
                    ],
                    kwargs: Vec::new(),
                    context: &context,
                },
                spec.clone(),
            ),
        };
        let groups: Vec<HashMap<String, Box<RawValue>>> = self.read_call(call).await?;
        for g in groups {
            let label = by
                .map(|b| group_label(g.get(b).map(|r| &**r)))
                .unwrap_or_default();
            // No currency is named as the source side names it.
            let label = if by.is_some() && label.is_empty() {
                NO_CURRENCY.to_string()
            } else {
                label
            };
            let amount = match g.get(&key) {
                Some(raw) => decimal(raw).map_err(|e| {
                    TargetError::Fatal(anyhow::anyhow!("{model} sum of {column}: {e}"))
                })?,
                None => Decimal::ZERO,
            };
            *out.entry(label).or_insert(Decimal::ZERO) += amount;
        }
        for v in out.values_mut() {
            // Odoo sums floats: the currency's 2 decimals are what it means.
            *v = v.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
        }
        if by.is_none() && out.is_empty() {
            out.insert(String::new(), Decimal::ZERO);
        }
        Ok(out)
    }

    pub(super) async fn field_names(&self, model: &str) -> Result<HashSet<String>, TargetError> {
        let context = self.opts.context.clone();
        let fields: HashMap<String, Value> = self
            .read_call(Call {
                model,
                method: "fields_get",
                ids: &[],
                args: Vec::new(),
                kwargs: vec![("attributes", json!(["type"]))],
                context: &context,
            })
            .await?;
        Ok(fields.into_keys().collect())
    }

    /// How many of `model`'s records `which` names still exist (0 after a rollback).
    pub async fn count_by_external_ids(
        &self,
        model: &str,
        which: &XmlIds,
    ) -> Result<u64, TargetError> {
        let ids = self.resolve_external_ids(model, which).await?;
        self.count_ids(model, &ids).await
    }

    /// Delete `model`'s records that `which` names (the API-only rollback; call it model
    /// by model, dependents first). Returns how many were deleted.
    ///
    /// Journal entries (`account.move`): Odoo 17/18 refuses to unlink the lines of a posted
    /// entry (`account.move.line._unlink_except_posted`: "reset the journal entry to draft
    /// before deleting it"), so the posted ones are reset with `button_draft` first (which
    /// refuses entries that are not posted or cancelled, so only those are sent). A numbered
    /// entry may then only go if it ends its sequence chain (`_unlink_forbid_parts_of_chain`,
    /// unless the user is an accounting administrator): the newest numbers are deleted
    /// first, read from the entries (Odoo numbers them by date, not by id).
    /// See docs/odoo-protocol.md.
    pub async fn delete_by_external_ids(
        &self,
        model: &str,
        which: &XmlIds,
    ) -> Result<u64, TargetError> {
        let mut ids = self.resolve_external_ids(model, which).await?;
        let context = self.read_context();
        if model == "account.move" && !ids.is_empty() {
            let posted: Vec<i64> = self
                .read_call(Call {
                    model,
                    method: "search",
                    ids: &[],
                    args: vec![(
                        "domain",
                        json!([["id", "in", ids], ["state", "=", "posted"]]),
                    )],
                    kwargs: Vec::new(),
                    context: &context,
                })
                .await?;
            for chunk in posted.chunks(1000) {
                self.call_retrying(&Call {
                    model,
                    method: "button_draft",
                    ids: chunk,
                    args: Vec::new(),
                    kwargs: Vec::new(),
                    context: &context,
                })
                .await?;
            }
            tracing::info!(target: "cutover::odoo", model, reset = posted.len(), "posted entries reset to draft before deleting");
            // Odoo numbers the entries of one `action_post` by date, reference and id, so
            // the ids' order is not the numbers': read the numbers.
            #[derive(Deserialize)]
            struct Named {
                id: i64,
                name: Value,
            }
            let named: Vec<Named> = self
                .read_call(Call {
                    model,
                    method: "search_read",
                    ids: &[],
                    args: vec![
                        ("domain", json!([["id", "in", ids]])),
                        ("fields", json!(["name"])),
                    ],
                    kwargs: Vec::new(),
                    context: &context,
                })
                .await?;
            ids = newest_first(
                named
                    .into_iter()
                    .map(|n| (n.id, n.name.as_str().unwrap_or_default().to_string())),
            );
        }
        for chunk in ids.chunks(1000) {
            self.call_retrying(&Call {
                model,
                method: "unlink",
                ids: chunk,
                args: Vec::new(),
                kwargs: Vec::new(),
                context: &context,
            })
            .await?;
        }
        tracing::info!(target: "cutover::odoo", model, deleted = ids.len(), "deleted by external id");
        Ok(ids.len() as u64)
    }

    async fn users(&self, logins: &[String]) -> Result<Vec<(i64, String, bool)>, TargetError> {
        #[derive(Deserialize)]
        struct User {
            id: i64,
            login: String,
            active: bool,
        }
        let context = self.read_context();
        let found: Vec<User> = self
            .read_call(Call {
                model: "res.users",
                method: "search_read",
                ids: &[],
                args: vec![
                    ("domain", json!([["login", "in", logins]])),
                    ("fields", json!(["login", "active"])),
                ],
                kwargs: Vec::new(),
                context: &context,
            })
            .await?;
        let mut out = Vec::with_capacity(logins.len());
        let mut missing = Vec::new();
        for l in logins {
            match found.iter().find(|u| &u.login == l) {
                Some(u) => out.push((u.id, u.login.clone(), u.active)),
                None => missing.push(l.as_str()),
            }
        }
        if !missing.is_empty() {
            return Err(TargetError::Fatal(anyhow::anyhow!(
                "{} has no user with login {}",
                self.client.endpoint,
                missing.join(", ")
            )));
        }
        Ok(out)
    }

    async fn set_active(&self, ids: &[i64], active: bool) -> Result<(), TargetError> {
        if ids.is_empty() {
            return Ok(());
        }
        let context = self.read_context();
        self.call_retrying(&Call {
            model: "res.users",
            method: "write",
            ids,
            args: vec![("vals", json!({"active": active}))],
            kwargs: Vec::new(),
            context: &context,
        })
        .await?;
        Ok(())
    }

    /// Close production: archive these users (their sessions and RPC calls end). Returns
    /// each login with whether it was active, for [`OdooTarget::restore_users`]. The
    /// connection's own login is refused: the load needs it.
    pub async fn archive_users(
        &self,
        logins: &[String],
    ) -> Result<Vec<(String, bool)>, TargetError> {
        if let Some(me) = self
            .client
            .endpoint
            .login
            .as_deref()
            .filter(|me| logins.iter().any(|l| l == me))
        {
            return Err(TargetError::Fatal(anyhow::anyhow!(
                "refusing to archive {me}: it is the user this connection loads with; list only the application's users"
            )));
        }
        let users = self.users(logins).await?;
        let active: Vec<i64> = users.iter().filter(|u| u.2).map(|u| u.0).collect();
        self.set_active(&active, false).await?;
        tracing::info!(target: "cutover::odoo", archived = active.len(), "users archived");
        Ok(users.into_iter().map(|(_, l, a)| (l, a)).collect())
    }

    /// Reopen production exactly as it was: reactivate the users that `archive_users`
    /// found active, leave the others archived. Returns how many were reactivated.
    pub async fn restore_users(&self, before: &[(String, bool)]) -> Result<u64, TargetError> {
        let logins: Vec<String> = before
            .iter()
            .filter(|(_, was)| *was)
            .map(|(l, _)| l.clone())
            .collect();
        if logins.is_empty() {
            return Ok(0);
        }
        let users = self.users(&logins).await?;
        let ids: Vec<i64> = users.iter().map(|u| u.0).collect();
        self.set_active(&ids, true).await?;
        Ok(ids.len() as u64)
    }
}

/// Journal entries (id, name) in the order that deletes each sequence chain from its end
/// (`INV/2026/00007` before `INV/2026/00006`), so that every `unlink` call, cut anywhere,
/// ends its chains as `_unlink_forbid_parts_of_chain` asks; entries without a number
/// (`/`) last.
fn newest_first(entries: impl IntoIterator<Item = (i64, String)>) -> Vec<i64> {
    let mut keyed: Vec<(Option<(String, u64)>, i64)> = entries
        .into_iter()
        .map(|(id, name)| {
            let number = name
                .rsplit_once('/')
                .and_then(|(prefix, n)| Some((prefix.to_string(), n.parse().ok()?)));
            (number, id)
        })
        .collect();
    keyed.sort_unstable_by(|a, b| b.cmp(a));
    keyed.into_iter().map(|(_, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_string()).unwrap()
    }

    #[test]
    fn amounts_are_read_from_their_text() {
        for (t, want) in [
            ("1234.5", "1234.5"),
            ("0.30000000000000004", "0.30000000000000004"),
            ("1.5e3", "1500"),
            ("-2E-2", "-0.02"),
            ("false", "0"),
            ("12345678901234567.89", "12345678901234567.89"),
        ] {
            assert_eq!(
                decimal(&raw(t)).unwrap(),
                Decimal::from_str(want).unwrap(),
                "{t}"
            );
        }
        assert!(decimal(&raw("\"x\"")).is_err());
    }

    #[test]
    fn entries_are_deleted_from_the_end_of_each_sequence() {
        // Ids in another order than the numbers (posted by date), two chains, a draft.
        let named = [
            (1, "INV/2026/00003"),
            (2, "INV/2026/00001"),
            (3, "INV/2025/00002"),
            (4, "/"),
            (5, "INV/2026/00002"),
            (6, "INV/2025/00001"),
            (7, "INV/2026/00010"),
        ];
        let order = newest_first(named.iter().map(|(i, n)| (*i, n.to_string())));
        assert_eq!(order, [7, 1, 5, 2, 3, 6, 4]);
    }

    #[test]
    fn labels_and_patterns() {
        assert_eq!(group_label(Some(&raw("[3, \"EUR\"]"))), "EUR");
        assert_eq!(group_label(Some(&raw("\"out_invoice\""))), "out_invoice");
        assert_eq!(group_label(Some(&raw("false"))), "");
        assert_eq!(group_label(None), "");
        assert_eq!(like_prefix("tms_c"), "tms_c%");
        assert_eq!(qualify("tms_c_1", "__import__"), "__import__.tms_c_1");
        assert_eq!(
            qualify("base.main_company", "__import__"),
            "base.main_company"
        );
    }
}
