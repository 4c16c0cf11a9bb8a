//! SQL extract: legacy tables streamed to CSV files (the extract), with counts and SHA-256.

use std::path::Path;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use sqlx::{Row, SqlitePool, ValueRef};

use crate::db::ident;

/// Stream `SELECT columns FROM table` into a CSV file with a header row; returns rows written.
pub async fn sqlite_table_to_csv(
    pool: &SqlitePool,
    table: &str,
    columns: &[String],
    out: &Path,
) -> Result<u64> {
    let cols: Vec<String> = columns.iter().map(|c| ident(c)).collect();
    let sql = format!("SELECT {} FROM {}", cols.join(", "), ident(table));
    let file =
        std::fs::File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
    w.write_record(columns)?;
    let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
    let mut n = 0u64;
    let mut rec: Vec<String> = Vec::with_capacity(columns.len());
    while let Some(r) = rows
        .try_next()
        .await
        .with_context(|| format!("reading legacy table {table}"))?
    {
        rec.clear();
        for i in 0..columns.len() {
            // Legacy columns are untyped text; anything else is rendered as text unchanged.
            let raw = r.try_get_raw(i)?;
            let v = if raw.is_null() {
                String::new()
            } else if let Ok(s) = r.try_get::<String, _>(i) {
                s
            } else if let Ok(x) = r.try_get::<i64, _>(i) {
                x.to_string()
            } else if let Ok(x) = r.try_get::<f64, _>(i) {
                x.to_string()
            } else {
                String::from_utf8_lossy(&r.try_get::<Vec<u8>, _>(i)?).into_owned()
            };
            rec.push(v);
        }
        w.write_record(&rec)?;
        n += 1;
    }
    w.flush()
        .with_context(|| format!("writing {} (disk full?)", out.display()))?;
    Ok(n)
}
