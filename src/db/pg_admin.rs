//! PostgreSQL mechanics: `pg_dump -Fc` / `pg_restore`, freeze through
//! `default_transaction_read_only`, production closed with `REVOKE CONNECT`.

use std::path::Path;

use anyhow::{Context, Result};

use super::admin::{Freeze, run_tool};
use super::{ConnParts, Db};
use crate::runbook::ResolvedEnv;

/// libpq connection string without password or sqlx-only parameters.
fn libpq_target(env: &ResolvedEnv) -> Result<String> {
    let p = ConnParts::parse(&env.url)?;
    let mut s = format!("host={} dbname={}", p.host, p.database);
    if let Some(port) = p.port {
        s.push_str(&format!(" port={port}"));
    }
    if let Some(u) = p.user {
        s.push_str(&format!(" user={u}"));
    }
    Ok(s)
}

fn pw(env: &ResolvedEnv) -> Option<(&'static str, &str)> {
    env.password.as_deref().map(|p| ("PGPASSWORD", p))
}

/// `pg_dump -Fc`, then `pg_restore --list` proves the archive is complete and readable.
pub async fn dump(env: &ResolvedEnv, dest: &Path) -> Result<String> {
    let target = libpq_target(env)?;
    run_tool(
        "pg_dump",
        &[
            "--format=custom".into(),
            format!("--file={}", dest.display()),
            format!("--dbname={target}"),
        ],
        pw(env),
        None,
    )
    .await
    .with_context(|| format!("backing up {} with pg_dump", env.name))?;
    let list = run_tool(
        "pg_restore",
        &["--list".into(), dest.display().to_string()],
        None,
        None,
    )
    .await
    .context("the dump does not read back with pg_restore --list")?;
    let entries = String::from_utf8_lossy(&list)
        .lines()
        .filter(|l| !l.starts_with(';') && !l.trim().is_empty())
        .count();
    Ok(format!(
        "pg_dump -Fc, read back with pg_restore --list ({entries} entries)"
    ))
}

/// `pg_restore --clean --if-exists` in one transaction: all of the backup or nothing.
pub async fn restore(env: &ResolvedEnv, dump: &Path) -> Result<()> {
    run_tool(
        "pg_restore",
        &[
            "--clean".into(),
            "--if-exists".into(),
            "--single-transaction".into(),
            "--exit-on-error".into(),
            format!("--dbname={}", libpq_target(env)?),
            dump.display().to_string(),
        ],
        pw(env),
        None,
    )
    .await
    .with_context(|| format!("restoring {} with pg_restore", env.name))?;
    Ok(())
}

/// New sessions default to read-only transactions and every other session is ended, so
/// no write that started before the freeze can still land.
pub async fn freeze(env: &ResolvedEnv) -> Result<Freeze> {
    let db = Db::connect(env).await?;
    let r = async {
        db.exec(
            "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET default_transaction_read_only = on', current_database()); END $$",
        )
        .await?;
        let ended = terminate(&db, "TRUE").await?;
        anyhow::Ok(ended)
    }
    .await;
    db.close().await;
    let ended = r?;
    Ok(Freeze {
        method: format!(
            "PostgreSQL: ALTER DATABASE … SET default_transaction_read_only = on; {ended} other session(s) ended"
        ),
        ..Freeze::default()
    })
}

pub async fn reopen(env: &ResolvedEnv) -> Result<String> {
    let db = Db::connect(env).await?;
    let r = db
        .exec("DO $$ BEGIN EXECUTE format('ALTER DATABASE %I RESET default_transaction_read_only', current_database()); END $$")
        .await;
    db.close().await;
    r?;
    Ok("default_transaction_read_only reset".into())
}

/// End the other sessions on this database that match `filter` (SQL over pg_stat_activity).
async fn terminate(db: &Db, filter: &str) -> Result<u64> {
    let mut n = 0;
    db.for_each_row(
        &format!(
            "SELECT pg_terminate_backend(pid)::text FROM pg_stat_activity \
             WHERE datname = current_database() AND pid <> pg_backend_pid() AND ({filter})"
        ),
        |c| {
            if c[0].as_deref() == Some("true") {
                n += 1;
            }
            Ok(())
        },
    )
    .await?;
    Ok(n)
}

fn role_list(db: &Db, env: &ResolvedEnv) -> String {
    env.app_users
        .iter()
        .map(|r| db.q(r))
        .collect::<Vec<_>>()
        .join(", ")
}

/// CONNECT is revoked from PUBLIC (which every role inherits) and from the users' roles,
/// and their open sessions are ended.
pub async fn revoke_connect(env: &ResolvedEnv) -> Result<String> {
    let db = Db::connect(env).await?;
    let roles = role_list(&db, env);
    let r = async {
        db.exec(&format!(
            "DO $$ BEGIN EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC, {}', current_database()); END $$",
            roles.replace('\'', "''")
        ))
        .await?;
        let names = env
            .app_users
            .iter()
            .map(|u| format!("'{}'", u.replace('\'', "''")))
            .collect::<Vec<_>>()
            .join(", ");
        terminate(
            &db,
            &format!(
                "usename IS NOT NULL AND EXISTS (SELECT 1 FROM unnest(ARRAY[{names}]) AS r(name) \
                 WHERE pg_has_role(usename, r.name, 'MEMBER'))"
            ),
        )
        .await
    }
    .await;
    db.close().await;
    let ended = r.with_context(|| format!("closing {} to {}", env.name, roles))?;
    Ok(format!(
        "CONNECT revoked from PUBLIC and {}; {ended} session(s) ended",
        env.app_users.join(", ")
    ))
}

/// The database's ACL, and which of PUBLIC and the app roles hold `CONNECT` (the ones
/// `revoke_connect` takes it from). A NULL ACL is the default one, in which PUBLIC has it.
pub async fn connect_privileges(env: &ResolvedEnv) -> Result<super::admin::Privileges> {
    let db = Db::connect(env).await?;
    let mut acl = String::new();
    let mut held = std::collections::BTreeMap::new();
    let r = async {
        db.for_each_row(
            "SELECT coalesce(d.datacl, acldefault('d', d.datdba))::text FROM pg_database d \
             WHERE d.datname = current_database()",
            |c| {
                acl = c[0].clone().unwrap_or_default();
                Ok(())
            },
        )
        .await?;
        db.for_each_row(
            "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)::text END, \
             a.is_grantable::text \
             FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
             WHERE d.datname = current_database() AND a.privilege_type = 'CONNECT'",
            |c| {
                let who = c[0].clone().unwrap_or_default();
                if who == "PUBLIC" || env.app_users.contains(&who) {
                    let grantable = c[1].as_deref() == Some("true");
                    let v = if grantable {
                        "CONNECT WITH GRANT OPTION"
                    } else {
                        "CONNECT"
                    };
                    // One grantee may hold it from two grantors: the strongest wins.
                    let e = held.entry(who).or_insert_with(|| v.to_string());
                    if grantable {
                        *e = v.to_string();
                    }
                }
                Ok(())
            },
        )
        .await
    }
    .await;
    db.close().await;
    r?;
    Ok(super::admin::Privileges { acl, held })
}

/// Give `CONNECT` back to exactly those of PUBLIC and the app roles that held it.
pub async fn restore_connect(
    env: &ResolvedEnv,
    held: &std::collections::BTreeMap<String, String>,
) -> Result<String> {
    if held.is_empty() {
        return Ok(format!(
            "CONNECT left revoked: none of PUBLIC, {} held it before the cutover",
            env.app_users.join(", ")
        ));
    }
    let db = Db::connect(env).await?;
    let r = async {
        for (who, what) in held {
            let grantee = if who == "PUBLIC" {
                "PUBLIC".to_string()
            } else {
                db.q(who)
            };
            let option = if what.contains("GRANT OPTION") {
                " WITH GRANT OPTION"
            } else {
                ""
            };
            db.exec(&format!(
                "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {}{option}', current_database()); END $$",
                grantee.replace('\'', "''")
            ))
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    r.with_context(|| format!("reopening {}", env.name))?;
    Ok(format!(
        "CONNECT given back to {} as before the cutover",
        held.keys().cloned().collect::<Vec<_>>().join(", ")
    ))
}

pub async fn grant_connect(env: &ResolvedEnv) -> Result<String> {
    let db = Db::connect(env).await?;
    let roles = role_list(&db, env);
    let r = db
        .exec(&format!(
            "DO $$ BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO {}', current_database()); END $$",
            roles.replace('\'', "''")
        ))
        .await;
    db.close().await;
    r?;
    Ok(format!("CONNECT granted to {}", env.app_users.join(", ")))
}
