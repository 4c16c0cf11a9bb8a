//! Sinks: where valid rows go. Contract of [`Sink::write_batch`]:
//! - a batch is one transaction: either every row of it is committed or none is;
//! - writes are upserts on the target key, so replaying a batch is idempotent;
//! - `Err` means the database refused the batch's *content* (constraint, type) and the
//!   caller may split it to find the bad rows; infrastructure failures are `Err` too but
//!   are not row-shaped, see [`SinkError`].

pub mod mysql;
pub mod postgres;
pub mod sqlite;

use crate::engine::rules::SqlValue;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The rows' content was refused (constraint, type, missing reference).
    #[error("{0}")]
    Rows(String),
    /// Anything else: connection lost, disk full, permissions.
    #[error(transparent)]
    Infra(#[from] anyhow::Error),
}

/// A table to write into.
#[derive(Debug, Clone)]
pub struct TableSpec {
    pub table: String,
    pub key: String,
    pub columns: Vec<String>,
}

pub enum Sink {
    Sqlite(sqlite::SqliteSink),
    Postgres(postgres::PgSink),
    MySql(mysql::MySqlSink),
}

impl Sink {
    pub async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
    ) -> Result<u64, SinkError> {
        match self {
            Sink::Sqlite(s) => s.write_batch(spec, rows).await,
            Sink::Postgres(s) => s.write_batch(spec, rows).await,
            Sink::MySql(s) => s.write_batch(spec, rows).await,
        }
    }
}
