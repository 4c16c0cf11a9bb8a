//! The Odoo target: rows go in through Odoo's own import method (`load`), so that Odoo's
//! business logic and constraints apply; identities are external ids; read-back goes
//! through the API (`search_count`, `read_group` / `formatted_read_group`).
//!
//! URLs: see [`endpoint`]. The key is the environment's resolved password and nothing
//! else; it never appears in an error, a log line, [`Target::name`] or `Debug` output.
//!
//! # Writing
//! `spec.table` is the model, `spec.columns` the field paths (`id`, `name`, `partner_id/id`,
//! `invoice_line_ids/price_unit`), `spec.key` the external-id column (`id`). Rows whose key
//! cell is empty continue the record above them (one2many lines) and always travel with
//! it (rows at the head of a batch whose record stayed in the previous batch are refused:
//! callers cut batches between records). A call is all-or-nothing and Odoo stops reporting after about 10 errors: flagged
//! records are refused with Odoo's own message and the rest is sent again; errors that
//! name no row make the call split in halves. Serialization conflicts, timeouts, HTTP
//! 429/5xx are retried with backoff, then surface as [`TargetError::Transient`].
//!
//! Re-sending a record updates it (external ids). One2many lines are added again on a
//! re-send unless they carry their own external ids (`invoice_line_ids/id`): the runbook
//! gives them one.
//!
//! # Read-back
//! Scoped to this run's records, by external id: the runbook's prefix
//! ([`OdooOptions::xmlid_prefix`], e.g. `__import__.tms_`), or without one the external ids
//! this target wrote since it was opened. An Odoo database is never empty.

pub mod endpoint;
mod load;
mod readback;
pub mod transport;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};

use crate::engine::rules::SqlValue;
use crate::runbook::ResolvedEnv;
use crate::target::{
    BackupKind, Capabilities, FreezeKind, Prepare, TableSpec, Target, TargetError, WriteOutcome,
};

pub use endpoint::{Endpoint, Transport};
pub use readback::XmlIds;
use transport::{Call, Client, Fault, Secret};

/// What every Odoo target can do (known without connecting, for `check`). Each `load`
/// call is all or nothing; a batch larger than `batch_size`, or spread over workers, makes
/// several calls, and a fault after some of them leaves those loaded (re-sending updates
/// the same records).
pub fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batches: true,
        // Records are kept whole and calls sized here: the engine need not split.
        max_batch_rows: None,
        reports_bad_rows: true,
        // `load` creates or updates by external id: there is no cheaper direct write.
        direct_writes: false,
        resolves_references: true,
        sql_read_back: false,
        backup: BackupKind::External,
        freeze: FreezeKind::ArchiveUsers,
    }
}

/// How the Odoo target loads. `Default` is what a runbook gets without settings.
#[derive(Debug, Clone)]
pub struct OdooOptions {
    /// Rows per `load` call (a record with its continuation rows is never split). 1,000.
    pub batch_size: usize,
    /// The context of every call. Default `{"tracking_disable": true, "tz": "UTC"}` (`tz`
    /// because datetimes are sent in UTC); the runbook's keys are added to it.
    pub context: Map<String, Value>,
    /// Concurrent `load` calls within one batch. 1.
    pub workers: usize,
    /// Per model, the column whose value keeps rows in one call (`parent_id/id`,
    /// `partner_id/id`): with several workers, no two calls then touch one parent.
    pub group_by: BTreeMap<String, String>,
    /// This run's external ids start with this (`__import__.tms_`, or `tms_` for the
    /// context's module): read-back, `count` and rollback are scoped by it.
    pub xmlid_prefix: Option<String>,
    /// Attempts of a call after a transient fault before it is reported `Transient`. 5.
    pub retries: u32,
    /// The first wait between attempts; doubled each time, at most 30 s. 500 ms.
    pub backoff: Duration,
    pub connect_timeout: Duration,
    /// The longest a call may take (a `load` of 1,000 invoices takes a while). 300 s.
    pub request_timeout: Duration,
}

impl Default for OdooOptions {
    fn default() -> Self {
        let mut context = Map::new();
        context.insert("tracking_disable".into(), Value::Bool(true));
        context.insert("tz".into(), Value::String("UTC".into()));
        OdooOptions {
            batch_size: 1000,
            context,
            workers: 1,
            group_by: BTreeMap::new(),
            xmlid_prefix: None,
            retries: 5,
            backoff: Duration::from_millis(500),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(300),
        }
    }
}

/// An Odoo database reached through its API.
pub struct OdooTarget {
    client: Client,
    opts: OdooOptions,
    /// External ids written by this target, per model (read-back scope without a prefix).
    written: Mutex<HashMap<String, BTreeSet<String>>>,
}

impl std::fmt::Debug for OdooTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdooTarget")
            .field("endpoint", &self.client.endpoint)
            .field("key", &"[REDACTED]")
            .field("opts", &self.opts)
            .finish()
    }
}

impl OdooTarget {
    /// Open an Odoo target from an environment (`odoo+…` URL, key in `env.password`). No
    /// network traffic yet: JSON-RPC authenticates on the first call.
    pub fn open(env: &ResolvedEnv, opts: OdooOptions) -> anyhow::Result<OdooTarget> {
        let endpoint = Endpoint::parse(&env.url)?;
        let key = env.password.clone().filter(|k| !k.is_empty()).ok_or_else(|| {
            anyhow::anyhow!(
                "environment {}: {endpoint} needs an API key: set password_env = \"ODOO_API_KEY\" (or password_file) on the environment",
                env.name
            )
        })?;
        let client = Client::new(
            endpoint,
            Secret::new(key),
            opts.connect_timeout,
            opts.request_timeout,
        )?;
        Ok(OdooTarget {
            client,
            opts,
            written: Mutex::new(HashMap::new()),
        })
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.client.endpoint
    }

    pub fn options(&self) -> &OdooOptions {
        &self.opts
    }

    /// The context with `extra` keys on top.
    fn context_with(&self, extra: &[(&str, Value)]) -> Map<String, Value> {
        let mut c = self.opts.context.clone();
        for (k, v) in extra {
            c.insert((*k).to_string(), v.clone());
        }
        c
    }

    /// The module unprefixed external ids belong to (`module` in the context).
    fn module(&self) -> String {
        self.opts
            .context
            .get("module")
            .and_then(Value::as_str)
            .unwrap_or("__import__")
            .to_string()
    }

    /// A call, repeated with backoff while it fails transiently.
    async fn call_retrying(
        &self,
        call: &Call<'_>,
    ) -> Result<Box<serde_json::value::RawValue>, TargetError> {
        let mut attempt = 0;
        loop {
            match self.client.call(call).await {
                Ok(v) => return Ok(v),
                Err(Fault::Transient {
                    message,
                    retry_after,
                }) if attempt < self.opts.retries => {
                    let wait = retry_after
                        .unwrap_or_else(|| self.backoff(attempt))
                        .min(Duration::from_secs(60));
                    tracing::warn!(target: "cutover::odoo", attempt = attempt + 1, wait_ms = wait.as_millis() as u64, "retrying: {message}");
                    tokio::time::sleep(wait).await;
                    attempt += 1;
                }
                Err(f) => return Err(self.fault(f)),
            }
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.opts
            .backoff
            .saturating_mul(1u32 << attempt.min(16))
            .min(Duration::from_secs(30))
    }

    fn fault(&self, f: Fault) -> TargetError {
        match f {
            Fault::Transient { message, .. } => TargetError::Transient(anyhow::anyhow!(message)),
            Fault::Denied(m) => TargetError::Fatal(anyhow::anyhow!(
                "Odoo refused the API key for {}: {m}; check the key in the environment's password_env (e.g. ODOO_API_KEY) or password_file: expired, revoked, or for another database ({})",
                self.client.endpoint.who(),
                self.client.endpoint.db
            )),
            Fault::Fatal(m) => TargetError::Fatal(anyhow::anyhow!(m)),
        }
    }

    /// Call any model method (`action_post` on the invoices a run loaded, say). `args` are
    /// named: JSON-2 sends them by name, JSON-RPC by position in the order given; `ids`
    /// are the records of a recordset method. Returns Odoo's result.
    pub async fn call(
        &self,
        model: &str,
        method: &str,
        ids: &[i64],
        args: Vec<(&str, Value)>,
    ) -> Result<Value, TargetError> {
        let context = self.opts.context.clone();
        let call = Call {
            model,
            method,
            ids,
            args,
            kwargs: Vec::new(),
            context: &context,
        };
        let raw = self.call_retrying(&call).await?;
        serde_json::from_str(raw.get()).map_err(|e| {
            TargetError::Fatal(anyhow::anyhow!("{model}.{method}: unreadable answer: {e}"))
        })
    }

    /// One `load` call, repeated while it only fails for serialization conflicts.
    async fn load_call(
        &self,
        model: &str,
        fields: &[String],
        data: Vec<&Vec<String>>,
    ) -> Result<load::LoadResult, TargetError> {
        let mut attempt = 0;
        loop {
            let call = Call {
                model,
                method: "load",
                ids: &[],
                args: vec![("fields", json!(fields)), ("data", json!(data))],
                kwargs: Vec::new(),
                context: &self.opts.context,
            };
            let raw = self.call_retrying(&call).await?;
            let res: load::LoadResult = serde_json::from_str(raw.get()).map_err(|e| {
                TargetError::Fatal(anyhow::anyhow!(
                    "{model}.load at {}: unreadable answer: {e}",
                    self.client.endpoint
                ))
            })?;
            if !res.only_conflicts() {
                return Ok(res);
            }
            let msg = res
                .errors()
                .next()
                .map(|m| m.message.clone())
                .unwrap_or_default();
            if attempt >= self.opts.retries {
                return Err(TargetError::Transient(anyhow::anyhow!(
                    "{model}.load: {msg}"
                )));
            }
            let wait = self.backoff(attempt);
            tracing::warn!(target: "cutover::odoo", attempt = attempt + 1, "{model}.load conflict, retrying: {msg}");
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    /// Load the records `part` of one call until each is loaded or refused.
    async fn settle(
        &self,
        model: &str,
        fields: &[String],
        rows: &[Vec<String>],
        recs: &[load::Record],
        part: Vec<usize>,
    ) -> Result<(u64, Vec<(usize, String)>), TargetError> {
        let mut loaded = 0u64;
        let mut refused = Vec::new();
        let mut queue = vec![part];
        let refuse = |refused: &mut Vec<(usize, String)>, r: load::Record, msgs: &[String]| {
            let msg = msgs.join(" | ");
            refused.push((r.start, msg.clone()));
            for i in r.start + 1..r.start + r.len {
                refused.push((
                    i,
                    format!("refused with its record (batch row {}): {msg}", r.start),
                ));
            }
        };
        while let Some(part) = queue.pop() {
            let data: Vec<&Vec<String>> = part
                .iter()
                .flat_map(|&r| &rows[recs[r].start..recs[r].start + recs[r].len])
                .collect();
            let n = data.len() as u64;
            let res = self.load_call(model, fields, data).await?;
            if res.committed() {
                loaded += n;
                continue;
            }
            match load::next_step(&part, recs, &res) {
                load::Next::Refuse { bad, rest } => {
                    for (r, msgs) in bad {
                        refuse(&mut refused, recs[r], &msgs);
                    }
                    if !rest.is_empty() {
                        queue.push(rest);
                    }
                }
                load::Next::Split(a, b) => {
                    queue.push(b);
                    queue.push(a);
                }
                load::Next::RefuseAlone(r, msgs) => refuse(&mut refused, recs[r], &msgs),
            }
        }
        Ok((loaded, refused))
    }

    /// External ids named in `rows` (key cells), normalized to `module.name`.
    fn remember(
        &self,
        model: &str,
        rows: &[Vec<String>],
        key: Option<usize>,
        refused: &[(usize, String)],
    ) {
        let Some(k) = key else { return };
        let bad: BTreeSet<usize> = refused.iter().map(|(i, _)| *i).collect();
        let module = self.module();
        let mut w = self.written.lock().unwrap_or_else(|p| p.into_inner());
        let set = w.entry(model.to_string()).or_default();
        for (i, row) in rows.iter().enumerate() {
            if bad.contains(&i) {
                continue;
            }
            if let Some(x) = row.get(k).filter(|x| !x.is_empty()) {
                set.insert(readback::qualify(x, &module));
            }
        }
    }
}

#[async_trait::async_trait]
impl Target for OdooTarget {
    fn name(&self) -> String {
        self.client.endpoint.to_string()
    }

    fn capabilities(&self) -> Capabilities {
        capabilities()
    }

    /// Check that each model and the first field of each column exist (`fields_get`), and
    /// for a reset delete this run's records (by the external-id prefix) in the order given.
    async fn prepare(&self, prepare: &Prepare) -> Result<Option<String>, TargetError> {
        for (model, columns) in &prepare.tables {
            let fields = self.field_names(model).await?;
            let missing: Vec<&str> = columns
                .iter()
                .map(|c| c.split('/').next().unwrap_or(c))
                .filter(|f| *f != "id" && *f != ".id" && !fields.contains(*f))
                .collect();
            if !missing.is_empty() {
                return Err(TargetError::Fatal(anyhow::anyhow!(
                    "{model} at {} has no field {}: check the column names (Odoo's technical field names)",
                    self.client.endpoint,
                    missing.join(", ")
                )));
            }
        }
        if prepare.reset.is_empty() {
            return Ok(None);
        }
        let Some(prefix) = self.opts.xmlid_prefix.clone() else {
            return Err(TargetError::Fatal(anyhow::anyhow!(
                "a reset of {} deletes this run's records by their external ids: the runbook must name the external-id prefix",
                self.client.endpoint
            )));
        };
        let mut notes = Vec::new();
        for model in &prepare.reset {
            let n = self
                .delete_by_external_ids(model, &XmlIds::Prefix(prefix.clone()))
                .await?;
            notes.push(format!("{model}: {n}"));
        }
        Ok(Some(format!(
            "deleted this run's records ({prefix}*): {}",
            notes.join(", ")
        )))
    }

    /// Always an upsert by external id (`load` creates or updates): `may_conflict` changes
    /// nothing for Odoo.
    async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        _may_conflict: bool,
    ) -> Result<WriteOutcome, TargetError> {
        let model = spec.table.as_str();
        let key = spec.columns.iter().position(|c| *c == spec.key);
        let group = match self.opts.group_by.get(model) {
            Some(col) => Some(spec.columns.iter().position(|c| c == col).ok_or_else(|| {
                TargetError::Fatal(anyhow::anyhow!(
                    "group_by column {col} is not among {model}'s columns"
                ))
            })?),
            None => None,
        };
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| r.iter().map(load::cell).collect())
            .collect();
        let recs = load::records(&cells, key);
        let mut calls = load::plan_calls(&cells, &recs, self.opts.batch_size, group);
        // Continuation rows at the head of a batch lost their record to the previous batch:
        // sent alone, Odoo would make them a record of their own. Refuse them instead.
        let orphan = key
            .and_then(|k| cells.first()?.get(k))
            .is_some_and(|c| c.is_empty());
        let mut refused_here = Vec::new();
        if orphan {
            for c in &mut calls {
                c.retain(|&r| r != 0);
            }
            calls.retain(|c| !c.is_empty());
            for i in 0..recs[0].len {
                refused_here.push((
                    i,
                    "continuation row without its record in the same batch: a batch boundary split a record from its one2many rows".to_string(),
                ));
            }
        }
        let results: Vec<_> = futures::stream::iter(calls)
            .map(|part| self.settle(model, &spec.columns, &cells, &recs, part))
            .buffer_unordered(self.opts.workers.max(1))
            .collect()
            .await;
        let mut out = WriteOutcome {
            loaded: 0,
            refused: refused_here,
        };
        let mut errors = Vec::new();
        for r in results {
            match r {
                Ok((n, refused)) => {
                    out.loaded += n;
                    out.refused.extend(refused);
                }
                Err(e) => errors.push(e),
            }
        }
        if !errors.is_empty() {
            // A fatal fault wins: retrying the batch would not help. Calls that succeeded
            // stay in Odoo; re-sending them updates the same records.
            let i = errors.iter().position(|e| !e.is_transient()).unwrap_or(0);
            return Err(errors.swap_remove(i));
        }
        out.refused.sort_by_key(|(i, _)| *i);
        self.remember(model, &cells, key, &out.refused);
        tracing::debug!(target: "cutover::odoo", model, loaded = out.loaded, refused = out.refused.len(), "batch written");
        Ok(out)
    }

    async fn count(&self, table: &str) -> Result<u64, TargetError> {
        let ids = self.run_ids(table).await?;
        self.count_ids(table, &ids).await
    }

    async fn sums(
        &self,
        table: &str,
        column: &str,
        by: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError> {
        let ids = self.run_ids(table).await?;
        self.sum_ids(table, &ids, column, by).await
    }

    async fn close(&self) {}
}
