//! The SQL targets: SQLite, PostgreSQL (COPY into a staging table, then one upsert; COPY
//! or a plain INSERT straight into the table when no conflict is possible) and
//! MariaDB/MySQL, behind [`Target`]. A batch is one transaction, lookups are resolved by
//! SQL sub-selects in that transaction, and read-back is SQL.
//!
//! Errors are classified here, not by the engine: each writer says which database errors
//! are about the rows ([`TargetError::Rows`]); anything else is
//! [`Transient`](TargetError::Transient) or [`Fatal`](TargetError::Fatal) by
//! [`db::errors::is_transient`](crate::db::errors::is_transient).

pub mod mysql;
pub mod postgres;
pub mod sqlite;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{
    BackupKind, Capabilities, FreezeKind, Prepare, TableSpec, Target, TargetError, WriteOutcome,
};
use crate::db::{Db, Dialect, display_env};
use crate::runbook::ResolvedEnv;
use crate::values::SqlValue;

/// A connection failure, a lost server, a deadlock: transient or fatal by the driver's
/// own error (see [`crate::db::errors::is_transient`]).
pub fn fault(e: anyhow::Error) -> TargetError {
    if crate::db::errors::is_transient(&e) {
        TargetError::Transient(e)
    } else {
        TargetError::Fatal(e)
    }
}

enum Writer {
    Sqlite(sqlite::SqliteWriter),
    Postgres(postgres::PgWriter),
    MySql(mysql::MySqlWriter),
}

/// A SQL database as a target. It keeps its [`Db`], which fingerprint checks and
/// `target_sql` read through ([`SqlTarget::db`]).
pub struct SqlTarget {
    db: Db,
    writer: Writer,
    name: String,
}

/// What every SQL target can do; only backup differs by dialect.
pub fn capabilities(dialect: Dialect) -> Capabilities {
    Capabilities {
        atomic_batches: true,
        max_batch_rows: None,
        reports_bad_rows: false,
        direct_writes: true,
        resolves_references: false,
        sql_read_back: true,
        backup: match dialect {
            Dialect::Sqlite => BackupKind::SqliteCopy,
            Dialect::Postgres => BackupKind::PgDump,
            Dialect::MySql => BackupKind::MariaDump,
        },
        freeze: match dialect {
            // SQLite has no accounts: its freeze is a read-only marker, nothing to revoke.
            Dialect::Sqlite => FreezeKind::None,
            _ => FreezeKind::RevokePrivileges,
        },
    }
}

impl SqlTarget {
    /// Connect to the environment's database; a connection that cannot be made is
    /// transient or fatal like any other fault.
    pub async fn open(env: &ResolvedEnv) -> Result<SqlTarget, TargetError> {
        let db = Db::connect(env).await.map_err(fault)?;
        Ok(SqlTarget::new(db, display_env(env)))
    }

    /// A target writing into an open connection.
    pub fn new(db: Db, name: String) -> SqlTarget {
        let writer = match &db {
            Db::Sqlite(pool) => Writer::Sqlite(sqlite::SqliteWriter { pool: pool.clone() }),
            Db::Postgres(pool) => Writer::Postgres(postgres::PgWriter::new(pool.clone())),
            Db::MySql(pool) => Writer::MySql(mysql::MySqlWriter { pool: pool.clone() }),
        };
        SqlTarget { db, writer, name }
    }

    /// The connection, for SQL read-back (fingerprints, `target_sql`).
    pub fn db(&self) -> &Db {
        &self.db
    }
}

#[async_trait::async_trait]
impl Target for SqlTarget {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn capabilities(&self) -> Capabilities {
        capabilities(self.db.dialect())
    }

    async fn prepare(&self, prepare: &Prepare) -> Result<Option<String>, TargetError> {
        let schema = prepare.schema.clone().unwrap_or_default();
        let note = self
            .db
            .ensure_schema(&schema, &prepare.tables)
            .await
            .map_err(fault)?;
        if !prepare.reset.is_empty() {
            self.db.empty_tables(&prepare.reset).await.map_err(fault)?;
        }
        Ok(Some(note.to_string()))
    }

    async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        may_conflict: bool,
    ) -> Result<WriteOutcome, TargetError> {
        let loaded = match &self.writer {
            Writer::Sqlite(w) => w.write_batch(spec, rows, may_conflict).await?,
            Writer::Postgres(w) => w.write_batch(spec, rows, may_conflict).await?,
            Writer::MySql(w) => w.write_batch(spec, rows, may_conflict).await?,
        };
        Ok(WriteOutcome {
            loaded,
            refused: Vec::new(),
        })
    }

    async fn holds_rows(&self, table: &str) -> Result<bool, TargetError> {
        self.db.holds_rows(table).await.map_err(fault)
    }

    async fn count(&self, table: &str) -> Result<u64, TargetError> {
        let n = self.db.count(table).await.map_err(fault)?;
        Ok(n.max(0) as u64)
    }

    async fn sums(
        &self,
        table: &str,
        column: &str,
        by: Option<&str>,
    ) -> Result<BTreeMap<String, Decimal>, TargetError> {
        match by {
            Some(group) => self
                .db
                .sum_column_by(table, column, group)
                .await
                .map_err(fault),
            None => {
                let total = self.db.sum_column(table, column).await.map_err(fault)?;
                Ok(BTreeMap::from([(String::new(), total)]))
            }
        }
    }

    async fn close(&self) {
        self.db.close().await;
    }

    fn sql(&self) -> Option<&Db> {
        Some(&self.db)
    }
}
