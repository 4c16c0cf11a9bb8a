//! What the runbook's built-in steps do to a database, whatever its driver: backup and
//! restore, freeze and reopen, closing production to its users, schema and reset.
//! Each dialect's mechanics live in `sqlite_admin`, `pg_admin` and `mysql_admin`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::{Db, Dialect, mysql_admin, pg_admin, sqlite_admin};
use crate::runbook::ResolvedEnv;
use crate::runbook::format::Schema;
use crate::sources::csv::sha256_file;

/// A verified backup.
#[derive(Debug, Clone)]
pub struct Backup {
    pub path: PathBuf,
    pub sha256: String,
    pub bytes: u64,
    /// Per table: rows and content checksum at backup time (the pre-cutover snapshot).
    pub snapshot: BTreeMap<String, String>,
    /// How the backup was checked, for the journal.
    pub check: String,
}

/// What a freeze did (or is about to do), so that a rollback can undo exactly that.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Freeze {
    pub method: String,
    /// Per MySQL account: the privileges revoked (granted back on reopen), comma-separated.
    pub revoked: BTreeMap<String, String>,
}

impl Freeze {
    /// Add `other`'s revoked privileges to this one's, per account, each named once: what
    /// a reopen must give back when two freezes (planned and applied, or a held one and
    /// this run's) each saw part of it.
    pub fn merge_revoked(&mut self, other: &BTreeMap<String, String>) {
        for (acct, privs) in other {
            let mine = self.revoked.entry(acct.clone()).or_default();
            let mut all: Vec<&str> = mine.split(',').filter(|p| !p.is_empty()).collect();
            for p in privs.split(',').filter(|p| !p.is_empty()) {
                if !all.contains(&p) {
                    all.push(p);
                }
            }
            *mine = all.join(",");
        }
    }
}

fn dialect(env: &ResolvedEnv) -> Result<Dialect> {
    Dialect::of_url(&env.url)
        .with_context(|| format!("environment '{}' has no database URL", env.name))
}

/// Take a backup of `env` into `dir`, check that it can be read back, and record the
/// snapshot it holds.
pub async fn backup(env: &ResolvedEnv, dir: &Path, stem: &str) -> Result<Backup> {
    std::fs::create_dir_all(dir).with_context(|| {
        format!(
            "backup folder {} cannot be created; choose a writable backup_dir",
            dir.display()
        )
    })?;
    let d = dialect(env)?;
    let path = dir.join(format!(
        "{stem}.{}",
        match d {
            Dialect::Sqlite => "db",
            Dialect::Postgres => "dump",
            Dialect::MySql => "sql",
        }
    ));
    // The snapshot is taken before the dump; the environment is closed to its users by
    // then, so both see the same contents.
    let db = Db::connect(env).await?;
    let snapshot = async {
        refuse_inexact_backup(&db, d).await?;
        db.snapshot().await
    }
    .await;
    db.close().await;
    let snapshot = snapshot?;
    let check = match d {
        Dialect::Sqlite => {
            let (check, copy) = sqlite_admin::backup(&env.url, &path).await?;
            if copy != snapshot {
                anyhow::bail!(
                    "backup {} does not hold what production holds",
                    path.display()
                );
            }
            check
        }
        Dialect::Postgres => pg_admin::dump(env, &path).await?,
        Dialect::MySql => mysql_admin::dump(env, &path).await?,
    };
    let (sha256, bytes) = sha256_file(&path)?;
    Ok(Backup {
        path,
        sha256,
        bytes,
        snapshot,
        check,
    })
}

/// A column the dump tool cannot write exactly would make the backup a silent loss at
/// rollback: refuse it before anything is dumped, naming table, column and type.
async fn refuse_inexact_backup(db: &Db, d: Dialect) -> Result<()> {
    for t in db.table_names().await? {
        for (col, ty) in db.column_types(&t).await? {
            if let Some(why) = super::types::backup_inexact_reason(d, &ty) {
                anyhow::bail!("cannot back up column {col} of table {t} ({ty}): {why}");
            }
        }
    }
    Ok(())
}

/// Put production back as it was in `backup`, then prove it: the snapshot after the
/// restore must equal the one taken with the backup.
pub async fn restore_and_verify(env: &ResolvedEnv, backup: &Backup) -> Result<String> {
    // The backup may be read back from the journal hours later: it must be the same file.
    let (sha, _) = crate::sources::csv::sha256_file(&backup.path)
        .with_context(|| format!("reading the backup {}", backup.path.display()))?;
    anyhow::ensure!(
        sha == backup.sha256,
        "the backup {} is not the file the journal recorded (sha256 {sha}, journaled {}); \
         find the original copy before restoring by hand",
        backup.path.display(),
        backup.sha256
    );
    match dialect(env)? {
        Dialect::Sqlite => {
            let file = super::sqlite_path(&env.url).context("production is not a file")?;
            sqlite_admin::restore_file(&backup.path, &file)?;
        }
        Dialect::Postgres | Dialect::MySql => {
            // Tables the cutover created are not in the dump; drop them first so the
            // database really is as it was.
            let db = Db::connect(env).await?;
            let extra: Vec<String> = db
                .table_names()
                .await?
                .into_iter()
                .filter(|t| !backup.snapshot.contains_key(t))
                .collect();
            let dropped = drop_tables(&db, &extra).await;
            db.close().await;
            dropped?;
            if dialect(env)? == Dialect::Postgres {
                pg_admin::restore(env, &backup.path).await?;
            } else {
                mysql_admin::restore(env, &backup.path).await?;
            }
        }
    }
    let db = Db::connect(env).await?;
    let now = db.snapshot().await;
    db.close().await;
    let now = now?;
    if now != backup.snapshot {
        let differ: Vec<&String> = backup
            .snapshot
            .keys()
            .chain(now.keys())
            .filter(|t| backup.snapshot.get(*t) != now.get(*t))
            .collect();
        anyhow::bail!(
            "production after the restore differs from the pre-cutover snapshot in: {}",
            differ
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    Ok(format!(
        "restored from {} and verified equal to the pre-cutover snapshot ({} tables, row counts and checksums)",
        backup.path.display(),
        backup.snapshot.len()
    ))
}

async fn drop_tables(db: &Db, tables: &[String]) -> Result<()> {
    for t in tables {
        let sql = match db {
            Db::Postgres(_) => format!("DROP TABLE IF EXISTS {} CASCADE", db.q(t)),
            Db::MySql(_) => format!(
                "SET FOREIGN_KEY_CHECKS = 0; DROP TABLE IF EXISTS {}; SET FOREIGN_KEY_CHECKS = 1",
                db.q(t)
            ),
            Db::Sqlite(_) => format!("DROP TABLE IF EXISTS {}", db.q(t)),
        };
        db.exec(&sql).await?;
    }
    Ok(())
}

/// What a freeze of `env` will take away, read before anything is changed: the executor
/// journals it (`freeze_planned`) before [`freeze`] revokes it, so a process killed in
/// between still knows what to give back. Refuses what a freeze could not hold (MariaDB:
/// write grants outside the legacy database).
pub async fn freeze_plan(env: &ResolvedEnv) -> Result<Freeze> {
    match dialect(env)? {
        Dialect::Sqlite => Ok(Freeze {
            method: "SQLite: triggers to refuse INSERT/UPDATE/DELETE on every legacy table".into(),
            ..Freeze::default()
        }),
        Dialect::Postgres => Ok(Freeze {
            method: "PostgreSQL: default_transaction_read_only = on, other sessions ended".into(),
            ..Freeze::default()
        }),
        Dialect::MySql => mysql_admin::freeze_plan(env).await,
    }
}

/// Stop every write to the legacy tables and say how. Revokes what is held now (MariaDB),
/// which after a resumed freeze may be less than [`freeze_plan`] journaled.
pub async fn freeze(env: &ResolvedEnv, tables: &[String]) -> Result<Freeze> {
    match dialect(env)? {
        Dialect::Sqlite => {
            let pool = super::sqlite_pool(&env.url, false).await?;
            let r = sqlite_admin::freeze(&pool, tables).await;
            pool.close().await;
            r?;
            Ok(Freeze {
                method: "SQLite triggers refuse INSERT/UPDATE/DELETE on every legacy table".into(),
                ..Freeze::default()
            })
        }
        Dialect::Postgres => pg_admin::freeze(env).await,
        Dialect::MySql => mysql_admin::freeze(env).await,
    }
}

/// Undo a freeze: the legacy system is its users' again (rollback only).
pub async fn reopen(env: &ResolvedEnv, tables: &[String], freeze: &Freeze) -> Result<String> {
    match dialect(env)? {
        Dialect::Sqlite => {
            let pool = super::sqlite_pool(&env.url, false).await?;
            let r = sqlite_admin::unfreeze(&pool, tables).await;
            pool.close().await;
            r?;
            Ok("freeze triggers dropped".into())
        }
        Dialect::Postgres => pg_admin::reopen(env).await,
        Dialect::MySql => mysql_admin::grant_back(env, &freeze.revoked).await,
    }
}

/// Who could use production before it was closed: what a reopen gives back, exactly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Privileges {
    /// As the server shows them (PostgreSQL: the database ACL; MariaDB: each account's
    /// lock state), for people and the journal.
    pub acl: String,
    /// PostgreSQL: `PUBLIC` or an app role → `CONNECT` (or `CONNECT WITH GRANT OPTION`),
    /// only those that held it; MariaDB: account → `unlocked` or `locked`.
    pub held: BTreeMap<String, String>,
}

/// Snapshot of what `close_to_users` is about to take away (taken before it, journaled).
pub async fn users_privileges(env: &ResolvedEnv) -> Result<Privileges> {
    if env.app_users.is_empty() {
        return Ok(Privileges {
            acl: "no app_users: nothing is closed".into(),
            ..Privileges::default()
        });
    }
    match dialect(env)? {
        Dialect::Sqlite => Ok(Privileges {
            acl: "SQLite has no user accounts".into(),
            ..Privileges::default()
        }),
        Dialect::Postgres => pg_admin::connect_privileges(env).await,
        Dialect::MySql => mysql_admin::lock_states(env).await,
    }
    .with_context(|| format!("reading who may use {} before closing it", env.name))
}

/// Keep the application's users out of production until unfreeze.
pub async fn close_to_users(env: &ResolvedEnv) -> Result<String> {
    if env.app_users.is_empty() {
        return Ok(match dialect(env)? {
            Dialect::Sqlite => "SQLite has no user accounts to close out".into(),
            _ => format!(
                "no app_users named for '{}': its users were not closed out",
                env.name
            ),
        });
    }
    match dialect(env)? {
        Dialect::Sqlite => Ok("SQLite has no user accounts to close out".into()),
        Dialect::Postgres => pg_admin::revoke_connect(env).await,
        Dialect::MySql => mysql_admin::lock_accounts(env, true).await,
    }
}

/// Let the application's users back in: exactly those who could get in before the close
/// (`before`, the journaled snapshot); without one (a journal from an older version), the
/// app roles get `CONNECT` / the app accounts are unlocked.
pub async fn open_to_users(env: &ResolvedEnv, before: Option<&Privileges>) -> Result<String> {
    if env.app_users.is_empty() {
        return Ok(match dialect(env)? {
            Dialect::Sqlite => "SQLite has no user accounts to grant".into(),
            _ => format!("no app_users named for '{}'", env.name),
        });
    }
    match (dialect(env)?, before) {
        (Dialect::Sqlite, _) => Ok("SQLite has no user accounts to grant".into()),
        (Dialect::Postgres, Some(b)) => pg_admin::restore_connect(env, &b.held).await,
        (Dialect::Postgres, None) => pg_admin::grant_connect(env).await,
        (Dialect::MySql, Some(b)) => mysql_admin::restore_locks(env, &b.held).await,
        (Dialect::MySql, None) => mysql_admin::lock_accounts(env, false).await,
    }
}

impl Db {
    /// Apply the runbook's DDL for this dialect to an empty target, or check that an
    /// existing one has every table and column the mapping writes. Nothing is written
    /// when a table or column is missing.
    pub async fn ensure_schema(
        &self,
        schema: &Schema,
        tables: &BTreeMap<String, Vec<String>>,
    ) -> Result<&'static str> {
        let existing = self.table_names().await?;
        if !tables.keys().any(|t| existing.contains(t)) {
            let (key, ddl) = match self.dialect() {
                Dialect::Sqlite => ("sqlite", &schema.sqlite),
                Dialect::Postgres => ("postgres", &schema.postgres),
                Dialect::MySql => ("mysql", &schema.mysql),
            };
            let ddl = ddl.as_deref().with_context(|| {
                format!("the target has none of the runbook's tables and the runbook carries no [schema] {key} DDL")
            })?;
            self.exec(ddl)
                .await
                .with_context(|| format!("applying the runbook's schema.{key}"))?;
            return Ok("schema applied");
        }
        let mut problems = Vec::new();
        for (t, cols) in tables {
            if !existing.contains(t) {
                problems.push(format!("table {t} is missing"));
                continue;
            }
            let have = self.columns(t).await?;
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

    /// Empty `tables`, children before parents (staging reset). PostgreSQL truncates them
    /// all in one `TRUNCATE … RESTART IDENTITY CASCADE` (tables outside the list that
    /// reference them are emptied too: staging is scratch); MariaDB/MySQL truncates each
    /// with foreign key checks off in one session of its own, unless a table outside the
    /// list references one in it; SQLite has no TRUNCATE. Those two delete, children first.
    pub async fn empty_tables(&self, children_first: &[String]) -> Result<()> {
        if children_first.is_empty() {
            return Ok(());
        }
        let list = || {
            children_first
                .iter()
                .map(|t| self.q(t))
                .collect::<Vec<_>>()
                .join(", ")
        };
        match self {
            Db::Postgres(_) => self
                .exec(&format!(
                    "TRUNCATE TABLE {} RESTART IDENTITY CASCADE",
                    list()
                ))
                .await
                .with_context(|| format!("emptying staging tables {}", children_first.join(", "))),
            Db::MySql(pool) if !self.referenced_from_outside(children_first).await? => {
                truncate_mysql(pool, children_first, self).await
            }
            // A table outside the list refers to one in it: truncating with the checks
            // off would leave its rows pointing at nothing, so the rows are deleted.
            Db::MySql(_) | Db::Sqlite(_) => {
                for t in children_first {
                    self.exec(&format!("DELETE FROM {}", self.q(t)))
                        .await
                        .with_context(|| format!("emptying staging table {t}"))?;
                }
                Ok(())
            }
        }
    }
}

impl Db {
    /// Whether a table not in `tables` has a foreign key to one in it (MariaDB/MySQL).
    async fn referenced_from_outside(&self, tables: &[String]) -> Result<bool> {
        let list = tables
            .iter()
            .map(|t| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut n = 0;
        self.for_each_row(
            &format!(
                "SELECT COUNT(*) FROM information_schema.REFERENTIAL_CONSTRAINTS \
                 WHERE CONSTRAINT_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IN ({list}) \
                 AND TABLE_NAME NOT IN ({list})"
            ),
            |c| {
                n = c[0].as_deref().and_then(|v| v.parse().ok()).unwrap_or(0);
                Ok(())
            },
        )
        .await?;
        Ok(n > 0)
    }
}

/// `TRUNCATE` refuses a table another one references while foreign key checks are on, so
/// they go off for this one connection only; the connection is closed rather than handed
/// back to the pool if they cannot be turned on again.
async fn truncate_mysql(pool: &sqlx::MySqlPool, tables: &[String], db: &Db) -> Result<()> {
    use sqlx::Connection;
    let mut conn = pool.acquire().await?;
    let mut run = async |sql: String| {
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(&mut *conn)
            .await
            .map(|_| ())
    };
    let mut result = run("SET FOREIGN_KEY_CHECKS = 0".into())
        .await
        .context("turning foreign key checks off to empty staging");
    if result.is_ok() {
        for t in tables {
            result = run(format!("TRUNCATE TABLE {}", db.q(t)))
                .await
                .with_context(|| format!("emptying staging table {t}"));
            if result.is_err() {
                break;
            }
        }
    }
    if run("SET FOREIGN_KEY_CHECKS = 1".into()).await.is_err() {
        let _ = conn.detach().close().await;
    }
    result
}

/// Run a database command-line tool; its stderr becomes the error. The password travels
/// in the child's environment (`var`), never in argv where `ps` shows it.
pub(super) async fn run_tool(
    program: &str,
    args: &[String],
    password: Option<(&str, &str)>,
    stdin_file: Option<&Path>,
) -> Result<Vec<u8>> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    if let Some((var, pw)) = password {
        cmd.env(var, pw);
    }
    if let Some(f) = stdin_file {
        let file =
            std::fs::File::open(f).with_context(|| format!("cannot open {}", f.display()))?;
        cmd.stdin(file);
    }
    let out = cmd
        .output()
        .await
        .with_context(|| format!("cannot run {program}: is it installed and on PATH?"))?;
    if !out.status.success() {
        anyhow::bail!(
            "{program} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out.stdout)
}
