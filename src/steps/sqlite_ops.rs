//! Step operations on SQLite files: backup, freeze, schema, snapshot and restore.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool, ValueRef};

use crate::db::{ident, sqlite_pool};

/// `VACUUM INTO` a consistent copy, then reopen it and check its integrity.
pub async fn backup(url: &str, dest: &Path) -> Result<BTreeMap<String, String>> {
    if let Some(dir) = dest.parent() {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("backup folder {} is not writable", dir.display()))?;
    }
    if dest.exists() {
        std::fs::remove_file(dest).with_context(|| format!("cannot replace {}", dest.display()))?;
    }
    let pool = sqlite_pool(url, true).await?;
    let res = sqlx::query("VACUUM INTO ?")
        .bind(dest.display().to_string())
        .execute(&pool)
        .await;
    pool.close().await;
    res.with_context(|| {
        format!(
            "VACUUM INTO {} failed (is the backup folder writable, is there space?)",
            dest.display()
        )
    })?;
    // Restore test: the copy must open and pass an integrity check.
    let copy = crate::db::sqlite_pool_ro(dest).await?;
    let ok: String = sqlx::query_scalar("PRAGMA integrity_check")
        .fetch_one(&copy)
        .await?;
    let snap = snapshot(&copy).await;
    copy.close().await;
    if ok != "ok" {
        anyhow::bail!("backup {} failed its integrity check: {ok}", dest.display());
    }
    snap
}

/// Per user table: row count and SHA-256 over all rows in rowid order.
pub async fn snapshot(pool: &SqlitePool) -> Result<BTreeMap<String, String>> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    let mut out = BTreeMap::new();
    for t in tables {
        let sql = format!("SELECT * FROM {} ORDER BY rowid", ident(&t));
        let mut rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch(pool);
        let mut h = Sha256::new();
        let mut n = 0u64;
        while let Some(r) = rows.try_next().await? {
            n += 1;
            for i in 0..r.len() {
                let raw = r.try_get_raw(i)?;
                if raw.is_null() {
                    h.update(b"\x00NULL");
                } else if let Ok(s) = r.try_get::<String, _>(i) {
                    h.update(s.as_bytes());
                } else if let Ok(x) = r.try_get::<i64, _>(i) {
                    h.update(x.to_string().as_bytes());
                } else if let Ok(x) = r.try_get::<f64, _>(i) {
                    h.update(x.to_string().as_bytes());
                } else {
                    h.update(r.try_get::<Vec<u8>, _>(i)?);
                }
                h.update([0x1f]);
            }
            h.update([0x1e]);
        }
        out.insert(t, format!("rows={n} sha256={}", hex::encode(h.finalize())));
    }
    Ok(out)
}

pub async fn row_counts(pool: &SqlitePool, tables: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for t in tables {
        let n: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {}",
            ident(t)
        )))
        .fetch_one(pool)
        .await
        .with_context(|| format!("counting legacy table {t}"))?;
        out.insert(t.clone(), n.to_string());
    }
    Ok(out)
}

fn trigger_name(table: &str, op: &str) -> String {
    format!(
        "cutover_freeze_{}_{op}",
        table.replace(|c: char| !c.is_ascii_alphanumeric(), "_")
    )
}

/// Freeze: triggers that refuse every write bind all writers, root included (file
/// permissions do not bind root).
pub async fn freeze(pool: &SqlitePool, tables: &[String]) -> Result<()> {
    let mut tx = pool.begin().await?;
    for t in tables {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            let sql = format!(
                "CREATE TRIGGER IF NOT EXISTS {} BEFORE {op} ON {} BEGIN SELECT RAISE(ABORT, 'frozen by cutover: the legacy system is read-only'); END",
                ident(&trigger_name(t, op)),
                ident(t)
            );
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut *tx)
                .await
                .with_context(|| format!("freezing legacy table {t}"))?;
        }
    }
    tx.commit().await?;
    Ok(())
}

pub async fn unfreeze(pool: &SqlitePool, tables: &[String]) -> Result<()> {
    for t in tables {
        for op in ["INSERT", "UPDATE", "DELETE"] {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP TRIGGER IF EXISTS {}",
                ident(&trigger_name(t, op))
            )))
            .execute(pool)
            .await?;
        }
    }
    Ok(())
}

/// Apply the runbook's DDL to an empty target, or check an existing one has every table
/// and column the mapping writes. Nothing is written when a table or column is missing.
pub async fn ensure_schema(
    pool: &SqlitePool,
    ddl: Option<&str>,
    tables: &BTreeMap<String, Vec<String>>,
) -> Result<&'static str> {
    let existing: Vec<String> =
        sqlx::query_scalar("SELECT name FROM sqlite_master WHERE type = 'table'")
            .fetch_all(pool)
            .await?;
    let present: Vec<&String> = tables.keys().filter(|t| existing.contains(t)).collect();
    if present.is_empty() {
        let ddl = ddl.context("the target has none of the runbook's tables and the runbook carries no [schema] sqlite DDL")?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(ddl.to_string()))
            .execute(pool)
            .await
            .context("applying the runbook's schema.sqlite")?;
        return Ok("schema applied");
    }
    let mut problems = Vec::new();
    for (t, cols) in tables {
        if !existing.contains(t) {
            problems.push(format!("table {t} is missing"));
            continue;
        }
        let have: Vec<String> = sqlx::query(sqlx::AssertSqlSafe(format!(
            "PRAGMA table_info({})",
            ident(t)
        )))
        .fetch_all(pool)
        .await?
        .iter()
        .map(|r| r.get::<String, _>("name"))
        .collect();
        for c in cols {
            if !have.contains(c) {
                problems.push(format!("column {t}.{c} is missing"));
            }
        }
    }
    if !problems.is_empty() {
        anyhow::bail!(
            "the target does not match the runbook's mapping: {}; nothing was written",
            problems.join(", ")
        );
    }
    Ok("schema checked")
}

/// Put the backup file back in place of the production file.
pub fn restore_file(backup: &Path, target: &Path) -> Result<()> {
    let tmp: PathBuf = target.with_extension("restore-tmp");
    std::fs::copy(backup, &tmp)
        .with_context(|| format!("copying backup {} for restore", backup.display()))?;
    // Stale WAL pages would be replayed over the restored file.
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", target.display()));
    }
    std::fs::rename(&tmp, target).with_context(|| format!("restoring {}", target.display()))?;
    Ok(())
}
