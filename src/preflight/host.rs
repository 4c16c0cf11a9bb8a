//! This machine: the dump tools the backup and the rollback run, free disk for the
//! backup, and the folders the run writes to (backup, journal, artifacts).

use std::path::{Path, PathBuf};

use super::{Options, Out, Status, first};
use crate::db::{Db, Dialect, display_env, sqlite_path};
use crate::runbook::{Plan, ResolvedEnv};

use crate::steps::explain;

/// `tool --version`, and the version number in it (`15.20`, `10.11.19`).
async fn version(tool: &str) -> Result<(String, String), String> {
    let out = tokio::process::Command::new(tool)
        .arg("--version")
        .output()
        .await
        .map_err(|e| format!("cannot run {tool}: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "{tool} --version failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let number = version_number(&line);
    Ok((line, number))
}

/// The version in a tool's banner: `pg_dump (PostgreSQL) 15.20 (Debian …)` → `15.20`;
/// `mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, …` → `10.11.19` (the server release,
/// not the tool's own `Ver`).
fn version_number(line: &str) -> String {
    line.split_once("Distrib ")
        .map(|(_, r)| r)
        .unwrap_or(line)
        .split(|c: char| c.is_whitespace() || c == ',' || c == '-')
        .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .unwrap_or("")
        .to_string()
}

fn major(v: &str) -> Option<u32> {
    v.split('.').next()?.parse().ok()
}

/// The backup's and the rollback's client tools are on PATH and can handle the server.
pub(super) async fn dump_tools(out: &mut Out<'_>, env: &ResolvedEnv, db: &Db, step: usize) {
    let name = env.name.as_str();
    let key = format!("steps[{step}].kind");
    match db {
        Db::Sqlite(_) => {}
        Db::Postgres(_) => {
            let server = first(db, "SELECT current_setting('server_version_num')")
                .await
                .ok()
                .flatten()
                .and_then(|v| v.parse::<u32>().ok())
                .map(|n| n / 10000);
            let hint = format!(
                "install the PostgreSQL client tools of the server's major version ({}) and put them on PATH",
                server.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
            );
            for tool in ["pg_dump", "pg_restore"] {
                match version(tool).await {
                    Err(e) => out.at(Status::Fail, "tool", Some(name), &key, e, &hint),
                    Ok((_, v)) => match (major(&v), server) {
                        (Some(m), Some(s)) if m < s => out.at(
                            Status::Fail,
                            "tool",
                            Some(name),
                            &key,
                            format!(
                                "{tool} {v} is older than the server (PostgreSQL {s}): {tool} refuses a newer server's data"
                            ),
                            &hint,
                        ),
                        _ => out.at(
                            Status::Pass,
                            "tool",
                            Some(name),
                            &key,
                            format!(
                                "{tool} {v} for the PostgreSQL {} server",
                                server.map(|s| s.to_string()).unwrap_or_default()
                            ),
                            "",
                        ),
                    },
                }
            }
        }
        Db::MySql(_) => {
            let server = first(db, "SELECT VERSION()")
                .await
                .ok()
                .flatten()
                .unwrap_or_default();
            for tool in ["mariadb-dump", "mariadb"] {
                match version(tool).await {
                    Err(e) => out.at(
                        Status::Fail,
                        "tool",
                        Some(name),
                        &key,
                        e,
                        "install the MariaDB client (mariadb-dump backs up, mariadb replays the dump on rollback) and put it on PATH",
                    ),
                    Ok((_, v)) if !server.contains("MariaDB") => out.at(
                        Status::Warn,
                        "tool",
                        Some(name),
                        &key,
                        format!("{tool} {v} against MySQL {server}: rehearse the backup and its restore on this server"),
                        "",
                    ),
                    Ok((_, v)) => out.at(
                        Status::Pass,
                        "tool",
                        Some(name),
                        &key,
                        format!("{tool} {v} for the MariaDB {server} server"),
                        "",
                    ),
                }
            }
        }
    }
}

/// The database's size on disk, a bound for what its backup takes.
async fn database_bytes(db: Option<&Db>, env: &ResolvedEnv) -> anyhow::Result<u64> {
    let Some(db) = db else { return Ok(0) };
    let n = match db {
        Db::Sqlite(_) => {
            let p = sqlite_path(&env.url).unwrap_or_default();
            let wal = PathBuf::from(format!("{}-wal", p.display()));
            return Ok(std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0)
                + std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0));
        }
        Db::Postgres(_) => first(db, "SELECT pg_database_size(current_database())::text").await?,
        Db::MySql(_) => {
            first(
                db,
                "SELECT CAST(COALESCE(SUM(DATA_LENGTH + INDEX_LENGTH), 0) AS CHAR) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()",
            )
            .await?
        }
    };
    Ok(n.and_then(|v| v.parse().ok()).unwrap_or(0))
}

/// The deepest folder of `path` that exists (the path itself when it does).
fn existing_ancestor(path: &Path) -> PathBuf {
    let mut p = path.to_path_buf();
    while !p.exists() {
        match p.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => p = parent.to_path_buf(),
            _ => return PathBuf::from("."),
        }
    }
    p
}

/// backup_dir can be written and has room for a backup of the database's current size.
pub(super) async fn backup_disk(
    out: &mut Out<'_>,
    plan: &Plan,
    env: &ResolvedEnv,
    db: Option<&Db>,
    step: usize,
) {
    let name = env.name.as_str();
    let key = if plan.rb.vars.contains_key("backup_dir") {
        "vars.backup_dir".to_string()
    } else {
        format!("steps[{step}].kind")
    };
    let dir = &plan.backup_dir;
    if let Err(e) = writable(dir) {
        out.at(
            Status::Fail,
            "writable",
            Some(name),
            &key,
            format!("backup folder {}: {e}", dir.display()),
            "choose a writable backup_dir (--var backup_dir=DIR)",
        );
        return;
    }
    let size = match database_bytes(db, env).await {
        Ok(s) => s,
        Err(e) => {
            out.at(
                Status::Warn,
                "disk",
                Some(name),
                &key,
                format!(
                    "cannot tell the size of {}: {}",
                    display_env(env),
                    explain(&e)
                ),
                "",
            );
            return;
        }
    };
    let at = existing_ancestor(dir);
    match crate::disk::free_bytes(&at) {
        Err(e) => out.at(
            Status::Warn,
            "disk",
            Some(name),
            &key,
            format!("cannot tell the free space in {}: {e}", at.display()),
            "",
        ),
        Ok(free) if free < size => out.at(
            Status::Fail,
            "disk",
            Some(name),
            &key,
            format!(
                "{} free in {}, and {} is {} on disk: the backup may not fit",
                crate::disk::human(free),
                at.display(),
                display_env(env),
                crate::disk::human(size)
            ),
            "free space there, or point --var backup_dir at a folder on a larger disk",
        ),
        Ok(free) => out.at(
            Status::Pass,
            "disk",
            Some(name),
            &key,
            format!(
                "backup folder {} is writable, {} free for a database of {}",
                dir.display(),
                crate::disk::human(free),
                crate::disk::human(size)
            ),
            "",
        ),
    }
}

/// Whether files can be created in `path` (or, when it does not exist yet, in the folder
/// that will hold it). Writes and removes one empty file; changes nothing else.
pub(super) fn writable(path: &Path) -> Result<(), String> {
    let at = existing_ancestor(path);
    if !at.is_dir() {
        return Err(format!(
            "{} is not a folder, so {} cannot be created",
            at.display(),
            path.display()
        ));
    }
    let probe = at.join(format!(".cutover-preflight-{}", std::process::id()));
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)
    {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(format!("{} is not writable: {e}", at.display())),
    }
}

/// A SQLite database's folder must take the new file, its WAL and journal.
pub(super) fn sqlite_folder(out: &mut Out<'_>, env: &ResolvedEnv, key: &str) {
    let Some(path) = sqlite_path(&env.url) else {
        return;
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    if let Err(e) = writable(&dir) {
        out.at(
            Status::Fail,
            "writable",
            Some(&env.name),
            key,
            format!("SQLite database {}: {e}", path.display()),
            "make the folder writable, or point the URL elsewhere",
        );
    }
}

/// The journal and the run's artifacts folder can be written.
pub(super) async fn writable_places(out: &mut Out<'_>, opts: &Options) {
    let journal = &opts.journal;
    match Dialect::of_url(journal) {
        Some(Dialect::Postgres | Dialect::MySql) => {
            // The journal creates its table when it opens; here: that the server answers.
            let env = ResolvedEnv {
                name: "journal".into(),
                url: journal.clone(),
                password: None,
                production: false,
                reset: false,
                app_users: vec![],
            };
            match Db::connect(&env).await {
                Ok(db) => {
                    db.close().await;
                    out.flag(
                        Status::Pass,
                        "writable",
                        "--journal",
                        format!("journal {} answers", crate::db::redact_url(journal)),
                        "",
                    );
                }
                Err(e) => out.flag(
                    Status::Fail,
                    "writable",
                    "--journal",
                    explain(&e),
                    "start the journal's server, or point --journal elsewhere",
                ),
            }
        }
        _ => {
            let file = sqlite_path(journal).unwrap_or_else(|| PathBuf::from(journal.as_str()));
            let r = if file.exists() {
                std::fs::OpenOptions::new()
                    .append(true)
                    .open(&file)
                    .map(|_| ())
                    .map_err(|e| format!("{} cannot be written: {e}", file.display()))
            } else {
                writable(file.parent().unwrap_or(Path::new(".")))
            };
            match r {
                Ok(()) => out.flag(
                    Status::Pass,
                    "writable",
                    "--journal",
                    format!("journal {} is writable", file.display()),
                    "",
                ),
                Err(e) => out.flag(
                    Status::Fail,
                    "writable",
                    "--journal",
                    format!("journal {}: {e}", file.display()),
                    "point --journal (or CUTOVER_JOURNAL) at a writable place",
                ),
            }
        }
    }
    match writable(&opts.artifacts) {
        Ok(()) => out.flag(
            Status::Pass,
            "writable",
            "--artifacts",
            format!("artifacts folder {} is writable", opts.artifacts.display()),
            "",
        ),
        Err(e) => out.flag(
            Status::Fail,
            "writable",
            "--artifacts",
            format!("artifacts folder {}: {e}", opts.artifacts.display()),
            "point --artifacts (or CUTOVER_ARTIFACTS) at a writable folder",
        ),
    }
}

/// Every column of the database the backup covers must come back exactly from the dump
/// (MySQL `FLOAT` does not): found here, not when the backup step refuses it mid-run.
pub(super) async fn backup_types(out: &mut Out<'_>, env: &ResolvedEnv, db: &Db, step: usize) {
    let name = env.name.as_str();
    let key = format!("steps[{step}].kind");
    let tables = match db.table_names().await {
        Ok(t) => t,
        Err(e) => {
            let msg = format!(
                "cannot list the tables to back up: {}",
                crate::steps::explain(&e)
            );
            out.at(Status::Fail, "backup_types", Some(name), &key, msg, "");
            return;
        }
    };
    let mut inexact = Vec::new();
    for t in &tables {
        match db.column_types(t).await {
            Ok(cols) => {
                for (col, ty) in cols {
                    if let Some(why) = crate::db::types::backup_inexact_reason(db.dialect(), &ty) {
                        inexact.push(format!("{t}.{col} ({ty}): {why}"));
                    }
                }
            }
            Err(e) => inexact.push(format!("{t}: {}", crate::steps::explain(&e))),
        }
    }
    if inexact.is_empty() {
        let msg = format!(
            "every column of the {} table(s) to back up restores exactly",
            tables.len()
        );
        out.at(Status::Pass, "backup_types", Some(name), &key, msg, "");
    } else {
        out.at(
            Status::Fail,
            "backup_types",
            Some(name),
            &key,
            format!("the backup could not restore: {}", inexact.join("; ")),
            "change those columns to an exact type (DOUBLE) before the cutover",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_versions_are_read_from_their_banner() {
        let n = version_number;
        assert_eq!(
            n("pg_dump (PostgreSQL) 15.20 (Debian 15.20-0+deb12u1)"),
            "15.20"
        );
        assert_eq!(
            n("mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"),
            "10.11.19"
        );
        assert_eq!(major("15.20"), Some(15));
        assert_eq!(major("9.6.24"), Some(9));
    }

    #[test]
    fn a_path_through_a_file_is_not_writable() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "x").unwrap();
        let e = writable(&d.path().join("f/sub/deeper")).unwrap_err();
        assert!(e.contains("is not a folder"), "{e}");
        assert!(writable(&d.path().join("new/folder")).is_ok());
        assert_eq!(
            std::fs::read_dir(d.path()).unwrap().count(),
            1,
            "nothing left behind"
        );
    }
}
