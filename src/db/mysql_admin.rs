//! MariaDB/MySQL mechanics: `mariadb-dump` and its replay, freeze by revoking the
//! application users' write privileges (`read_only` is server-wide and does not bind
//! privileged users), production closed by locking the application's accounts.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};

use super::admin::{Freeze, run_tool};
use super::{ConnParts, Db};
use crate::runbook::ResolvedEnv;

/// Privileges that let an account change data or schema.
const WRITE_PRIVILEGES: &[&str] = &[
    "INSERT",
    "UPDATE",
    "DELETE",
    "CREATE",
    "DROP",
    "ALTER",
    "INDEX",
    "TRIGGER",
    "CREATE VIEW",
    "EVENT",
    "LOCK TABLES",
];

fn client_args(env: &ResolvedEnv) -> Result<(Vec<String>, String)> {
    let p = ConnParts::parse(&env.url)?;
    let mut args = vec![format!("--host={}", p.host)];
    if let Some(port) = p.port {
        args.push(format!("--port={port}"));
    }
    if let Some(u) = p.user {
        args.push(format!("--user={u}"));
    }
    Ok((args, p.database))
}

fn pw(env: &ResolvedEnv) -> Option<(&'static str, &str)> {
    env.password.as_deref().map(|p| ("MYSQL_PWD", p))
}

/// `mariadb-dump` in one consistent snapshot; a dump is complete only if it ends with
/// the tool's completion marker.
pub async fn dump(env: &ResolvedEnv, dest: &Path) -> Result<String> {
    let (mut args, db) = client_args(env)?;
    args.extend(
        [
            "--single-transaction",
            "--routines",
            "--triggers",
            "--add-drop-table",
            "--hex-blob",
        ]
        .map(String::from),
    );
    args.push(format!("--result-file={}", dest.display()));
    args.push(db);
    run_tool("mariadb-dump", &args, pw(env), None)
        .await
        .with_context(|| format!("backing up {} with mariadb-dump", env.name))?;
    let text = std::fs::read(dest).with_context(|| format!("reading {}", dest.display()))?;
    let tail = String::from_utf8_lossy(&text[text.len().saturating_sub(200)..]).into_owned();
    if !tail.contains("-- Dump completed") {
        anyhow::bail!(
            "{} does not end with mariadb-dump's completion marker: the dump is truncated",
            dest.display()
        );
    }
    Ok("mariadb-dump --single-transaction, completion marker present".into())
}

/// Replay the dump (it drops and recreates each table it holds).
pub async fn restore(env: &ResolvedEnv, dump: &Path) -> Result<()> {
    let (mut args, db) = client_args(env)?;
    args.push(db);
    run_tool("mariadb", &args, pw(env), Some(dump))
        .await
        .with_context(|| format!("restoring {} from {}", env.name, dump.display()))?;
    Ok(())
}

/// `user@host` (host defaults to `%`) as a quoted MySQL account.
fn account(spec: &str) -> (String, String) {
    let (u, h) = spec.rsplit_once('@').unwrap_or((spec, "%"));
    (u.to_string(), h.to_string())
}

fn quoted((u, h): &(String, String)) -> String {
    format!("'{}'@'{}'", u.replace('\'', "''"), h.replace('\'', "''"))
}

async fn kill_sessions(db: &Db, user: &str) -> Result<u64> {
    let mut ids = Vec::new();
    db.for_each_row(
        &format!(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = '{}' AND ID <> CONNECTION_ID()",
            user.replace('\'', "''")
        ),
        |c| {
            if let Some(id) = &c[0] {
                ids.push(id.clone());
            }
            Ok(())
        },
    )
    .await?;
    for id in &ids {
        // The session may have ended on its own meanwhile.
        let _ = db.exec(&format!("KILL CONNECTION {id}")).await;
    }
    Ok(ids.len() as u64)
}

fn need_app_users(env: &ResolvedEnv) -> Result<()> {
    if env.app_users.is_empty() {
        anyhow::bail!(
            "environment '{}' is MariaDB/MySQL: name the application's accounts in app_users \
             (e.g. app_users = \"${{legacy_app_users}}\") so their writes can be revoked; \
             read_only is server-wide and does not bind privileged users",
            env.name
        );
    }
    Ok(())
}

/// What a freeze will revoke: each application account's write privileges on the legacy
/// database as held now. Changes nothing.
pub async fn freeze_plan(env: &ResolvedEnv) -> Result<Freeze> {
    need_app_users(env)?;
    let schema = ConnParts::parse(&env.url)?.database;
    let db = Db::connect(env).await?;
    let r = held_writes(&db, env).await;
    db.close().await;
    let revoked: BTreeMap<String, String> = r?.into_iter().map(|(a, p)| (a, p.join(","))).collect();
    Ok(Freeze {
        method: format!(
            "MariaDB: write privileges on `{schema}` to revoke: {}",
            revoked
                .iter()
                .map(|(a, p)| format!("{a} {}", if p.is_empty() { "(none)" } else { p }))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        revoked,
    })
}

/// Revoke each application user's write privileges on the legacy database and end their
/// sessions (a database-level revoke binds a session only from its next `USE`). Returns
/// what it revoked now: nothing for an account whose writes were revoked already.
pub async fn freeze(env: &ResolvedEnv) -> Result<Freeze> {
    need_app_users(env)?;
    let db = Db::connect(env).await?;
    let r = freeze_on(&db, env).await;
    db.close().await;
    r
}

/// Per application account, the write privileges it holds on the legacy database now.
/// Refuses an account with write grants a database-level revoke cannot take away.
async fn held_writes(db: &Db, env: &ResolvedEnv) -> Result<BTreeMap<String, Vec<String>>> {
    let schema = ConnParts::parse(&env.url)?.database;
    let mut out = BTreeMap::new();
    for spec in &env.app_users {
        let grantee = quoted(&account(spec)).replace('\'', "''");
        // Global or table-level write grants are not touched by a database-level revoke.
        let mut elsewhere = Vec::new();
        for (view, scope) in [
            ("USER_PRIVILEGES", "ON *.*"),
            ("TABLE_PRIVILEGES", "on single tables"),
        ] {
            let extra = if view == "TABLE_PRIVILEGES" {
                format!(" AND TABLE_SCHEMA = '{}'", schema.replace('\'', "''"))
            } else {
                String::new()
            };
            db.for_each_row(
                &format!(
                    "SELECT PRIVILEGE_TYPE FROM information_schema.{view} WHERE GRANTEE = '{grantee}'{extra}"
                ),
                |c| {
                    if let Some(p) = &c[0]
                        && WRITE_PRIVILEGES.contains(&p.as_str())
                    {
                        elsewhere.push(format!("{p} {scope}"));
                    }
                    Ok(())
                },
            )
            .await?;
        }
        if !elsewhere.is_empty() {
            anyhow::bail!(
                "account {spec} holds write privileges a freeze of `{schema}` cannot revoke ({}); \
                 revoke them by hand or give the application an account with grants on `{schema}`.* only",
                elsewhere.join(", ")
            );
        }
        let mut held = Vec::new();
        db.for_each_row(
            &format!(
                "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES \
                 WHERE GRANTEE = '{grantee}' AND TABLE_SCHEMA = '{}'",
                schema.replace('\'', "''")
            ),
            |c| {
                if let Some(p) = &c[0]
                    && WRITE_PRIVILEGES.contains(&p.as_str())
                {
                    held.push(p.clone());
                }
                Ok(())
            },
        )
        .await?;
        out.insert(spec.clone(), held);
    }
    Ok(out)
}

async fn freeze_on(db: &Db, env: &ResolvedEnv) -> Result<Freeze> {
    let schema = ConnParts::parse(&env.url)?.database;
    let mut revoked = BTreeMap::new();
    let mut ended = 0;
    for (spec, held) in held_writes(db, env).await? {
        let acct = account(&spec);
        if !held.is_empty() {
            db.exec(&format!(
                "REVOKE {} ON {}.* FROM {}",
                held.join(", "),
                db.q(&schema),
                quoted(&acct)
            ))
            .await
            .with_context(|| format!("revoking {spec}'s writes on {schema}"))?;
        }
        ended += kill_sessions(db, &acct.0).await?;
        revoked.insert(spec, held.join(","));
    }
    Ok(Freeze {
        method: format!(
            "MariaDB: write privileges on `{schema}` revoked from {}; {ended} session(s) ended",
            env.app_users.join(", ")
        ),
        revoked,
    })
}

/// Give back exactly the privileges the freeze revoked.
pub async fn grant_back(env: &ResolvedEnv, revoked: &BTreeMap<String, String>) -> Result<String> {
    let schema = ConnParts::parse(&env.url)?.database;
    let db = Db::connect(env).await?;
    let r = async {
        for (spec, privs) in revoked {
            if privs.is_empty() {
                continue;
            }
            db.exec(&format!(
                "GRANT {} ON {}.* TO {}",
                privs.replace(',', ", "),
                db.q(&schema),
                quoted(&account(spec))
            ))
            .await?;
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    r?;
    Ok(format!(
        "write privileges on `{schema}` granted back to {}",
        revoked.keys().cloned().collect::<Vec<_>>().join(", ")
    ))
}

/// Whether each app account is locked now (MariaDB: `mysql.global_priv`; MySQL:
/// `mysql.user.account_locked`).
pub async fn lock_states(env: &ResolvedEnv) -> Result<super::admin::Privileges> {
    let db = Db::connect(env).await?;
    let r = async {
        let mut held = BTreeMap::new();
        for spec in &env.app_users {
            let (u, h) = account(spec);
            let (u, h) = (u.replace('\'', "''"), h.replace('\'', "''"));
            let mut state: Option<String> = None;
            let maria = db
                .for_each_row(
                    &format!(
                        "SELECT COALESCE(JSON_VALUE(Priv, '$.account_locked'), 'false') \
                         FROM mysql.global_priv WHERE User = '{u}' AND Host = '{h}'"
                    ),
                    |c| {
                        state = c[0].clone();
                        Ok(())
                    },
                )
                .await;
            if maria.is_err() {
                db.for_each_row(
                    &format!(
                        "SELECT IF(account_locked = 'Y', 'true', 'false') FROM mysql.user \
                         WHERE User = '{u}' AND Host = '{h}'"
                    ),
                    |c| {
                        state = c[0].clone();
                        Ok(())
                    },
                )
                .await?;
            }
            let state = state.with_context(|| format!("account {spec} does not exist"))?;
            held.insert(
                spec.clone(),
                if state == "true" || state == "1" {
                    "locked"
                } else {
                    "unlocked"
                }
                .to_string(),
            );
        }
        anyhow::Ok(held)
    }
    .await;
    db.close().await;
    let held = r?;
    Ok(super::admin::Privileges {
        acl: held
            .iter()
            .map(|(a, s)| format!("{a} {s}"))
            .collect::<Vec<_>>()
            .join(", "),
        held,
    })
}

/// Unlock exactly the accounts that were unlocked before the close.
pub async fn restore_locks(env: &ResolvedEnv, held: &BTreeMap<String, String>) -> Result<String> {
    let db = Db::connect(env).await?;
    let mut opened = Vec::new();
    let mut kept = Vec::new();
    let r = async {
        for (spec, state) in held {
            if state == "unlocked" {
                db.exec(&format!(
                    "ALTER USER {} ACCOUNT UNLOCK",
                    quoted(&account(spec))
                ))
                .await?;
                opened.push(spec.clone());
            } else {
                kept.push(spec.clone());
            }
        }
        anyhow::Ok(())
    }
    .await;
    db.close().await;
    r.with_context(|| format!("reopening {}", env.name))?;
    let mut msg = if opened.is_empty() {
        "no account unlocked".to_string()
    } else {
        format!("accounts {} unlocked", opened.join(", "))
    };
    if !kept.is_empty() {
        msg.push_str(&format!(
            "; {} kept locked as before the cutover",
            kept.join(", ")
        ));
    }
    Ok(msg)
}

/// Lock (or unlock) the application's accounts and end their sessions.
pub async fn lock_accounts(env: &ResolvedEnv, lock: bool) -> Result<String> {
    let db = Db::connect(env).await?;
    let r = async {
        let mut ended = 0;
        for spec in &env.app_users {
            let acct = account(spec);
            db.exec(&format!(
                "ALTER USER {} ACCOUNT {}",
                quoted(&acct),
                if lock { "LOCK" } else { "UNLOCK" }
            ))
            .await?;
            if lock {
                ended += kill_sessions(&db, &acct.0).await?;
            }
        }
        anyhow::Ok(ended)
    }
    .await;
    db.close().await;
    let ended = r?;
    Ok(if lock {
        format!(
            "accounts {} locked; {ended} session(s) ended",
            env.app_users.join(", ")
        )
    } else {
        format!("accounts {} unlocked", env.app_users.join(", "))
    })
}
