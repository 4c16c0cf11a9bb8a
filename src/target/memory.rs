//! The in-memory twin of a target: the same contract as the SQL and Odoo targets (upsert
//! on the key, all-or-nothing batches, refusals the test configures, faults on demand),
//! with no server. Engine tests use it where a database would only add setup and time.
//!
//! `memory:NAME` URLs (see [`super::registry`]) name a store shared by every target opened
//! on that name in this process, so a run's load and its later checks see the same rows.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, OnceLock};

use rust_decimal::Decimal;

use super::{
    BackupKind, Capabilities, FreezeKind, Prepare, TableSpec, Target, TargetError, WriteOutcome,
};
use crate::values::SqlValue;

/// What the next failing calls return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// As a lost connection: the same call may succeed later.
    Transient,
    /// As a bad password or a missing table.
    Fatal,
}

/// One table: its rows by key, each as the column → value map of its last write.
#[derive(Debug, Default, Clone)]
struct Table {
    rows: BTreeMap<String, HashMap<String, SqlValue>>,
}

#[derive(Default)]
struct Store {
    tables: BTreeMap<String, Table>,
    /// (table, column) pairs that refuse NULL (and a lookup that finds nothing).
    not_null: Vec<(String, String)>,
    /// (table, column) pairs whose values must be unique across keys.
    unique: Vec<(String, String)>,
    /// Injected failures, the next call first.
    faults: Vec<Fault>,
    writes: u64,
    /// `may_conflict` of every write, in order.
    modes: Vec<bool>,
}

/// The in-memory target. Cheap to clone: clones share the store.
#[derive(Clone)]
pub struct MemoryTarget {
    store: Arc<Mutex<Store>>,
    caps: Capabilities,
    name: String,
}

impl Default for MemoryTarget {
    fn default() -> Self {
        MemoryTarget::new()
    }
}

/// What an in-memory target can do by default: like a SQL database without SQL.
pub fn capabilities() -> Capabilities {
    Capabilities {
        atomic_batches: true,
        max_batch_rows: None,
        reports_bad_rows: false,
        direct_writes: true,
        resolves_references: false,
        sql_read_back: false,
        backup: BackupKind::External,
        freeze: FreezeKind::None,
    }
}

fn shared() -> &'static Mutex<HashMap<String, Arc<Mutex<Store>>>> {
    static STORES: OnceLock<Mutex<HashMap<String, Arc<Mutex<Store>>>>> = OnceLock::new();
    STORES.get_or_init(Default::default)
}

impl MemoryTarget {
    /// The same store with `tables` created (empty), as `prepare` would.
    pub fn with_tables(self, tables: &[&str]) -> MemoryTarget {
        for t in tables {
            self.lock().tables.entry(t.to_string()).or_default();
        }
        self
    }

    /// A fresh, empty target of its own.
    pub fn new() -> MemoryTarget {
        MemoryTarget {
            store: Arc::default(),
            caps: capabilities(),
            name: "memory".into(),
        }
    }

    /// The target behind `memory:NAME`: the same store for every call with that name.
    pub fn named(name: &str) -> MemoryTarget {
        let store = shared()
            .lock()
            .expect("memory stores")
            .entry(name.to_string())
            .or_default()
            .clone();
        MemoryTarget {
            store,
            caps: capabilities(),
            name: format!("memory:{name}"),
        }
    }

    /// The same store with other capabilities (e.g. `reports_bad_rows`, `max_batch_rows`).
    pub fn with_capabilities(mut self, caps: Capabilities) -> MemoryTarget {
        self.caps = caps;
        self
    }

    /// `table.column` refuses NULL, as a NOT NULL constraint (a lookup that finds nothing
    /// is NULL too).
    pub fn not_null(self, table: &str, column: &str) -> MemoryTarget {
        self.lock().not_null.push((table.into(), column.into()));
        self
    }

    /// `table.column` takes each value for one key only, as a unique index.
    pub fn unique(self, table: &str, column: &str) -> MemoryTarget {
        self.lock().unique.push((table.into(), column.into()));
        self
    }

    /// The next `n` calls (writes, counts, sums) fail with `fault`, before doing anything.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        self.lock().faults.extend(std::iter::repeat_n(fault, n));
    }

    /// `may_conflict` of every `write_batch` call so far, in order.
    pub fn write_modes(&self) -> Vec<bool> {
        self.lock().modes.clone()
    }

    /// Calls of `write_batch` so far (failed ones included).
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// The value of `column` in the row of `table` with key `key`.
    pub fn value(&self, table: &str, key: &str, column: &str) -> Option<SqlValue> {
        self.lock()
            .tables
            .get(table)?
            .rows
            .get(key)?
            .get(column)
            .cloned()
    }

    /// The keys `table` holds, in order.
    pub fn keys(&self, table: &str) -> Vec<String> {
        self.lock()
            .tables
            .get(table)
            .map(|t| t.rows.keys().cloned().collect())
            .unwrap_or_default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store {
    fn take_fault(&mut self) -> Result<(), TargetError> {
        if self.faults.is_empty() {
            return Ok(());
        }
        Err(match self.faults.remove(0) {
            Fault::Transient => {
                TargetError::Transient(anyhow::anyhow!("memory target: connection lost (injected)"))
            }
            Fault::Fatal => {
                TargetError::Fatal(anyhow::anyhow!("memory target: access denied (injected)"))
            }
        })
    }

    fn table(&self, table: &str) -> Result<&Table, TargetError> {
        self.tables.get(table).ok_or_else(|| {
            TargetError::Fatal(anyhow::anyhow!(
                "memory target: table {table} does not exist"
            ))
        })
    }

    /// A lookup resolves against the referenced table, as the SQL sub-select does.
    fn resolve(&self, v: &SqlValue) -> SqlValue {
        match v {
            SqlValue::Lookup {
                table,
                key,
                id,
                value,
            } => self
                .tables
                .get(table)
                .and_then(|t| {
                    t.rows
                        .values()
                        .find(|r| r.get(key).map(text).as_deref() == Some(value.as_str()))
                })
                .and_then(|r| r.get(id).cloned())
                .unwrap_or(SqlValue::Null),
            other => other.clone(),
        }
    }

    /// Why the store refuses `row` for `key` in `table`, given the rows already accepted
    /// (`pending`) earlier in the same batch.
    fn refusal(
        &self,
        table: &str,
        key: &str,
        row: &HashMap<String, SqlValue>,
        pending: &BTreeMap<String, HashMap<String, SqlValue>>,
    ) -> Option<String> {
        if key.is_empty() {
            return Some(format!("{table}: the key is NULL"));
        }
        for (t, c) in &self.not_null {
            if t == table && matches!(row.get(c), None | Some(SqlValue::Null)) {
                return Some(format!("NOT NULL constraint failed: {table}.{c}"));
            }
        }
        for (t, c) in &self.unique {
            let Some(v) = row.get(c).filter(|v| !matches!(v, SqlValue::Null)) else {
                continue;
            };
            if t != table {
                continue;
            }
            let stored = self.tables.get(table).map(|t| &t.rows);
            let clash = stored
                .into_iter()
                .flatten()
                .chain(pending.iter())
                .any(|(k, r)| k != key && r.get(c) == Some(v));
            if clash {
                return Some(format!("UNIQUE constraint failed: {table}.{c}"));
            }
        }
        None
    }
}

/// A value's text, as a SQL target would store and read it.
fn text(v: &SqlValue) -> String {
    match v {
        SqlValue::Null => String::new(),
        SqlValue::Text(s) => s.clone(),
        SqlValue::Int(i) => i.to_string(),
        SqlValue::Dec(d) => d.to_string(),
        SqlValue::Date(d) => d.format("%Y-%m-%d").to_string(),
        SqlValue::DateTime(t) => crate::datetime::canonical(t),
        SqlValue::Lookup { value, .. } => value.clone(),
    }
}

#[async_trait::async_trait]
impl Target for MemoryTarget {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }

    async fn prepare(&self, prepare: &Prepare) -> Result<Option<String>, TargetError> {
        let mut s = self.lock();
        s.take_fault()?;
        for t in prepare.tables.keys() {
            s.tables.entry(t.clone()).or_default();
        }
        for t in &prepare.reset {
            if let Some(t) = s.tables.get_mut(t) {
                t.rows.clear();
            }
        }
        Ok(None)
    }

    async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        may_conflict: bool,
    ) -> Result<WriteOutcome, TargetError> {
        let mut s = self.lock();
        s.writes += 1;
        s.modes.push(may_conflict);
        s.take_fault()?;
        if let Some(max) = self.caps.max_batch_rows
            && rows.len() > max
        {
            return Err(TargetError::Fatal(anyhow::anyhow!(
                "memory target: {} rows in one call, at most {max} allowed",
                rows.len()
            )));
        }
        // Tables come from `prepare`, as a database's come from its schema.
        s.table(&spec.table)?;
        let key_at = spec.columns.iter().position(|c| *c == spec.key);
        let mut accepted: BTreeMap<String, HashMap<String, SqlValue>> = BTreeMap::new();
        let mut refused = Vec::new();
        for (i, row) in rows.iter().enumerate() {
            if row.len() != spec.columns.len() {
                return Err(TargetError::Fatal(anyhow::anyhow!(
                    "{}: row has {} values for {} columns",
                    spec.table,
                    row.len(),
                    spec.columns.len()
                )));
            }
            let values: HashMap<String, SqlValue> = spec
                .columns
                .iter()
                .zip(row.iter())
                .map(|(c, v)| (c.clone(), s.resolve(v)))
                .collect();
            let key = key_at.map(|k| text(&values[&spec.columns[k]]));
            let key = key.unwrap_or_default();
            // Direct: no upsert, so a key already stored (or earlier in the batch) is refused
            // as a database's unique key would.
            let duplicate = !may_conflict
                && (accepted.contains_key(&key)
                    || s.tables
                        .get(&spec.table)
                        .is_some_and(|t| t.rows.contains_key(&key)));
            let why = if duplicate {
                Some(format!(
                    "duplicate key value violates unique constraint: {}.{} = {key}",
                    spec.table, spec.key
                ))
            } else {
                s.refusal(&spec.table, &key, &values, &accepted)
            };
            match why {
                None => {
                    accepted.insert(key, values);
                }
                Some(why) if self.caps.reports_bad_rows => refused.push((i, why)),
                // Atomic: nothing of the batch is written.
                Some(why) => return Err(TargetError::Rows(why)),
            }
        }
        let loaded = (rows.len() - refused.len()) as u64;
        let table = s.tables.get_mut(&spec.table).expect("table created above");
        for (key, values) in accepted {
            // Upsert: the columns written replace their values, the others stay.
            table.rows.entry(key).or_default().extend(values);
        }
        Ok(WriteOutcome { loaded, refused })
    }

    async fn holds_rows(&self, table: &str) -> Result<bool, TargetError> {
        let mut s = self.lock();
        s.take_fault()?;
        Ok(!s.table(table)?.rows.is_empty())
    }

    async fn count(&self, table: &str) -> Result<u64, TargetError> {
        let mut s = self.lock();
        s.take_fault()?;
        Ok(s.table(table)?.rows.len() as u64)
    }

    async fn sums(
        &self,
        table: &str,
        column: &str,
        by: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError> {
        let mut s = self.lock();
        s.take_fault()?;
        let mut out = BTreeMap::new();
        if by.is_none() {
            out.insert(String::new(), Decimal::ZERO);
        }
        for row in s.table(table)?.rows.values() {
            let group = match by {
                None => String::new(),
                Some(g) => match row.get(g).map(text) {
                    Some(c) if !c.trim().is_empty() => c.trim().to_string(),
                    _ => crate::values::NO_CURRENCY.to_string(),
                },
            };
            let total = out.entry(group).or_default();
            match row.get(column) {
                None | Some(SqlValue::Null) => {}
                Some(v) => {
                    let t = text(v);
                    *total += t.parse::<Decimal>().map_err(|_| {
                        TargetError::Fatal(anyhow::anyhow!(
                            "{table}.{column} holds '{t}', not a decimal"
                        ))
                    })?;
                }
            }
        }
        Ok(out)
    }

    async fn close(&self) {}
}

/// The one call a target made for a test or a measurement answers its own way;
/// [`WriteOnly`] makes it a [`Target`] (the memory twin's capabilities, nothing to
/// prepare, no sums).
#[async_trait::async_trait]
pub trait BatchWriter: Send + Sync {
    async fn write(&self, rows: &[&[SqlValue]]) -> Result<WriteOutcome, TargetError>;
    /// The rows it holds (`count`).
    fn held(&self) -> u64 {
        0
    }
}

/// A [`BatchWriter`] as a [`Target`]; derefs to the writer, for what it recorded.
#[derive(Default)]
pub struct WriteOnly<W>(pub W);

impl<W> std::ops::Deref for WriteOnly<W> {
    type Target = W;
    fn deref(&self) -> &W {
        &self.0
    }
}

#[async_trait::async_trait]
impl<W: BatchWriter> Target for WriteOnly<W> {
    fn name(&self) -> String {
        "write-only".into()
    }
    fn capabilities(&self) -> Capabilities {
        capabilities()
    }
    async fn prepare(&self, _: &Prepare) -> Result<Option<String>, TargetError> {
        Ok(None)
    }
    async fn write_batch(
        &self,
        _: &TableSpec,
        rows: &[&[SqlValue]],
        _: bool,
    ) -> Result<WriteOutcome, TargetError> {
        self.0.write(rows).await
    }
    async fn count(&self, _: &str) -> Result<u64, TargetError> {
        Ok(self.0.held())
    }
    async fn sums(
        &self,
        _: &str,
        _: &str,
        _: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError> {
        Ok(BTreeMap::new())
    }
    async fn close(&self) {}
}

/// Takes every row and keeps none, as a database does once it has them: counts the rows
/// and the largest batch. For measuring the engine's own memory and allocations, which a
/// target that keeps its rows (the twin above) would hide.
pub type Discard = WriteOnly<Counted>;

/// What [`Discard`] counts.
#[derive(Default)]
pub struct Counted {
    pub rows: std::sync::atomic::AtomicU64,
    pub largest_batch: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl BatchWriter for Counted {
    async fn write(&self, rows: &[&[SqlValue]]) -> Result<WriteOutcome, TargetError> {
        use std::sync::atomic::Ordering::Relaxed;
        self.rows.fetch_add(rows.len() as u64, Relaxed);
        self.largest_batch.fetch_max(rows.len(), Relaxed);
        Ok(WriteOutcome {
            loaded: rows.len() as u64,
            refused: vec![],
        })
    }
    fn held(&self) -> u64 {
        self.rows.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TableSpec {
        TableSpec {
            table: "t".into(),
            key: "k".into(),
            columns: vec!["k".into(), "v".into()],
        }
    }

    fn row(k: &str, v: Option<&str>) -> Vec<SqlValue> {
        vec![
            SqlValue::Text(k.into()),
            v.map_or(SqlValue::Null, |v| SqlValue::Text(v.into())),
        ]
    }

    async fn write(t: &MemoryTarget, rows: &[Vec<SqlValue>]) -> Result<WriteOutcome, TargetError> {
        let rows: Vec<&[SqlValue]> = rows.iter().map(|r| r.as_slice()).collect();
        t.write_batch(&spec(), &rows, true).await
    }

    #[tokio::test]
    async fn an_atomic_batch_with_a_bad_row_writes_nothing() {
        let t = MemoryTarget::new().with_tables(&["t"]).not_null("t", "v");
        let err = write(&t, &[row("a", Some("1")), row("b", None)]).await;
        assert!(matches!(err, Err(TargetError::Rows(m)) if m.contains("t.v")));
        assert!(t.keys("t").is_empty());
    }

    #[tokio::test]
    async fn a_target_that_reports_bad_rows_loads_the_rest() {
        let t = MemoryTarget::new()
            .with_tables(&["t"])
            .not_null("t", "v")
            .with_capabilities(Capabilities {
                reports_bad_rows: true,
                ..capabilities()
            });
        let out = write(
            &t,
            &[row("a", Some("1")), row("b", None), row("c", Some(""))],
        )
        .await
        .unwrap();
        assert_eq!(out.loaded, 2);
        assert_eq!(out.refused.len(), 1);
        assert_eq!(out.refused[0].0, 1);
        assert_eq!(t.keys("t"), ["a", "c"]);
    }

    #[tokio::test]
    async fn unique_values_clash_within_a_batch_and_with_stored_rows() {
        let t = MemoryTarget::new().with_tables(&["t"]).unique("t", "v");
        write(&t, &[row("a", Some("x"))]).await.unwrap();
        // The same key may keep its value (an upsert), another key may not take it.
        write(&t, &[row("a", Some("x"))]).await.unwrap();
        assert!(matches!(
            write(&t, &[row("b", Some("x"))]).await,
            Err(TargetError::Rows(_))
        ));
        assert!(matches!(
            write(&t, &[row("c", Some("y")), row("d", Some("y"))]).await,
            Err(TargetError::Rows(_))
        ));
        assert_eq!(t.keys("t"), ["a"]);
    }

    #[tokio::test]
    async fn injected_faults_come_first_then_the_call_works() {
        let t = MemoryTarget::new().with_tables(&["t"]);
        t.fail_next(1, Fault::Transient);
        t.fail_next(1, Fault::Fatal);
        assert!(matches!(
            write(&t, &[row("a", Some("1"))]).await,
            Err(TargetError::Transient(_))
        ));
        assert!(matches!(
            write(&t, &[row("a", Some("1"))]).await,
            Err(TargetError::Fatal(_))
        ));
        assert_eq!(write(&t, &[row("a", Some("1"))]).await.unwrap().loaded, 1);
        assert_eq!(t.writes(), 3);
    }

    #[tokio::test]
    async fn named_stores_are_shared() {
        let a = MemoryTarget::named("memory-test-shared").with_tables(&["t"]);
        write(&a, &[row("a", Some("1"))]).await.unwrap();
        let b = MemoryTarget::named("memory-test-shared");
        assert_eq!(b.count("t").await.unwrap(), 1);
        assert!(MemoryTarget::new().count("t").await.is_err());
    }

    #[tokio::test]
    async fn a_lookup_resolves_against_the_referenced_table() {
        let t = MemoryTarget::new()
            .with_tables(&["parent", "child"])
            .not_null("child", "parent_id");
        let parents = TableSpec {
            table: "parent".into(),
            key: "code".into(),
            columns: vec!["code".into(), "id".into()],
        };
        let p = [SqlValue::Text("P1".into()), SqlValue::Int(7)];
        t.write_batch(&parents, &[&p], true).await.unwrap();
        let child = TableSpec {
            table: "child".into(),
            key: "k".into(),
            columns: vec!["k".into(), "parent_id".into()],
        };
        let lookup = |v: &str| SqlValue::Lookup {
            table: "parent".into(),
            key: "code".into(),
            id: "id".into(),
            value: v.into(),
        };
        let good = [SqlValue::Text("c1".into()), lookup("P1")];
        t.write_batch(&child, &[&good], true).await.unwrap();
        assert_eq!(t.value("child", "c1", "parent_id"), Some(SqlValue::Int(7)));
        let bad = [SqlValue::Text("c2".into()), lookup("P9")];
        assert!(matches!(
            t.write_batch(&child, &[&bad], true).await,
            Err(TargetError::Rows(_))
        ));
    }
}
