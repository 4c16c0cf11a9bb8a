//! SQLite mechanics: `VACUUM INTO` backup, freeze triggers, file restore.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use sqlx::SqlitePool;

use crate::db::{ident, sqlite_pool};

/// `VACUUM INTO` a consistent copy, then reopen it and check its integrity.
pub async fn backup(
    url: &str,
    dest: &Path,
) -> Result<(String, std::collections::BTreeMap<String, String>)> {
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
    let copy = crate::db::Db::Sqlite(copy);
    let snap = copy.snapshot().await;
    copy.close().await;
    if ok != "ok" {
        anyhow::bail!("backup {} failed its integrity check: {ok}", dest.display());
    }
    Ok(("VACUUM INTO, reopened, integrity_check ok".into(), snap?))
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
