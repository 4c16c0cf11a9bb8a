//! Targets: where valid rows go. One contract for every kind (SQL databases, Odoo, an
//! in-memory twin for engine tests), so that the engine, the steps and the checks never
//! ask which kind they hold; they ask its [`Capabilities`].
//!
//! # The contract
//! - **Delivery.** [`Target::write_batch`] either returns `Ok` with every row of the batch
//!   accounted for — in `loaded` or in `refused` — or `Err`. `Ok` means the loaded rows are
//!   durable in the target (committed, or accepted by the API call).
//! - **Idempotence.** With `may_conflict = true` every write is an upsert on the entity's
//!   key (a SQL key column, an Odoo external id): writing the same rows again leaves the
//!   target as it was after the first write and reports them loaded again. A replay after
//!   a crash or a retry after a transient fault therefore never duplicates.
//! - **Direct writes.** With `may_conflict = false` the caller promises that the target
//!   holds no row with any of the batch's keys (the table was empty when the load began,
//!   no earlier attempt of this batch may have committed). A target may then skip the
//!   conflict handling (PostgreSQL: COPY straight into the table, or an INSERT without
//!   ON CONFLICT); a key that is there after all, or twice in the batch, is refused by
//!   the database's own constraint as [`TargetError::Rows`] and bisected like any bad row.
//!   A target that gains nothing from it may ignore the flag and upsert.
//! - **Partial failure.** With `atomic_batches`, a batch is all or nothing: on
//!   [`TargetError::Rows`] nothing of it was written and the caller may split it to find
//!   the bad rows (the engine bisects). A target with `reports_bad_rows` isolates its bad
//!   rows itself and returns them in [`WriteOutcome::refused`] with its own message, the
//!   rest loaded; it never returns `Rows`.
//! - **Errors are classified by the target**, never by the engine: [`TargetError::Rows`]
//!   (the content was refused), [`TargetError::Transient`] (the same write may succeed
//!   later: connection lost, server restarting, HTTP 429/5xx, a serialization failure),
//!   [`TargetError::Fatal`] (anything else: bad credentials, missing table, permissions).
//! - `count` and `sums` read back what the target holds, for reconciliation; a target
//!   whose `sql_read_back` is false answers them through its own API.
//! - Secrets (passwords, API keys) never appear in an error message, `name`, or a log.
//!
//! [`registry`] opens a target from its URL's scheme and knows every scheme's
//! capabilities without connecting; [`memory`] is the in-memory twin the engine tests use.

pub mod check;
pub mod memory;
pub mod odoo;
pub mod registry;
pub mod sql;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::values::SqlValue;

/// A table (or model) to write into: its name, the key that identifies a row, and the
/// columns in the order of each row's values.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub table: String,
    pub key: String,
    pub columns: Vec<String>,
}

/// How a target can be backed up before the production load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupKind {
    /// A copy of the database file.
    SqliteCopy,
    /// `pg_dump` of the database (an Odoo target's when its SQL URL is given).
    PgDump,
    /// `mariadb-dump` of the database.
    MariaDump,
    /// No backup the tool can take itself: a `command` step of the runbook does it (an RDS
    /// snapshot, say), or the rollback deletes what the run created.
    External,
}

/// How production is closed to its users during the load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FreezeKind {
    /// Revoke the application users' privileges (SQL databases).
    RevokePrivileges,
    /// Archive the listed application users (Odoo): their sessions and RPC calls end.
    ArchiveUsers,
    /// Nothing to close (a file, an in-memory target).
    None,
}

/// What a target can do. The engine, the steps and `check` decide from these alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    /// A batch is one transaction: all of it or nothing.
    pub atomic_batches: bool,
    /// The most rows one `write_batch` takes; larger batches are split by the engine.
    pub max_batch_rows: Option<usize>,
    /// `write_batch` isolates bad rows itself and reports them in `refused`.
    pub reports_bad_rows: bool,
    /// `write_batch` with `may_conflict = false` skips the upsert: a key the target holds
    /// already, or twice in the batch, is refused (see "Direct writes" above). Without it
    /// the flag is ignored and every write upserts.
    pub direct_writes: bool,
    /// References to other entities are resolved by the target (external ids), not by
    /// SQL sub-selects.
    pub resolves_references: bool,
    /// SQL can be run against the target for read-back (fingerprint checks, `target_sql`).
    pub sql_read_back: bool,
    pub backup: BackupKind,
    pub freeze: FreezeKind,
}

/// The result of one accepted batch.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows written (inserted or updated, including unchanged replays).
    pub loaded: u64,
    /// Rows the target refused, as (index into the batch, the target's message).
    pub refused: Vec<(usize, String)>,
}

/// Why a call failed, as the target itself judges it.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    /// The rows' content was refused (constraint, type, missing reference); nothing of the
    /// batch was written.
    #[error("{0}")]
    Rows(String),
    /// The same call may succeed later: retry with backoff.
    #[error(transparent)]
    Transient(anyhow::Error),
    /// Retrying will not help.
    #[error(transparent)]
    Fatal(anyhow::Error),
}

impl TargetError {
    pub fn is_transient(&self) -> bool {
        matches!(self, TargetError::Transient(_))
    }
}

/// What `prepare` needs to make the target ready for a phase.
#[derive(Debug, Clone, Default)]
pub struct Prepare {
    /// The runbook's DDL for SQL targets (applied when none of the tables exists).
    pub schema: Option<crate::runbook::format::Schema>,
    /// Each target table with the columns the runbook maps onto it.
    pub tables: BTreeMap<String, Vec<String>>,
    /// Empty these tables first (children before parents): a staging reset.
    pub reset: Vec<String>,
}

/// The contract every target meets; see the module documentation.
#[async_trait::async_trait]
pub trait Target: Send + Sync {
    /// How to name the target to people: its URL with any secret removed.
    fn name(&self) -> String;

    fn capabilities(&self) -> Capabilities;

    /// Make the target ready: check (or create) the tables and columns, empty what a reset
    /// asks. Returns a note for the operator (e.g. "schema applied").
    async fn prepare(&self, prepare: &Prepare) -> Result<Option<String>, TargetError>;

    /// Write one batch; see the module documentation for what `Ok` and each error promise,
    /// and for `may_conflict` (pass `true` unless a conflict is provably impossible).
    async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        may_conflict: bool,
    ) -> Result<WriteOutcome, TargetError>;

    /// Whether `table` holds any row (for the engine's choice of `may_conflict`). The
    /// default answers `true`, which keeps every write an upsert.
    async fn holds_rows(&self, table: &str) -> Result<bool, TargetError> {
        let _ = table;
        Ok(true)
    }

    /// Rows the target holds in `table` (for Odoo: records of the model this run's external
    /// ids name).
    async fn count(&self, table: &str) -> Result<u64, TargetError>;

    /// The sum of `column` over `table`, one entry per value of `by` (a currency code), or a
    /// single `""` entry without `by`.
    async fn sums(
        &self,
        table: &str,
        column: &str,
        by: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError>;

    /// Release connections; the target is not used afterwards.
    async fn close(&self);

    /// The SQL connection behind a target whose `sql_read_back` is true, for fingerprint
    /// checks and `target_sql`. `None` for API-only targets.
    fn sql(&self) -> Option<&crate::db::Db> {
        None
    }
}
