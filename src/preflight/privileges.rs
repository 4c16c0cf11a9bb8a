//! The accounts `app_users` names, and the privileges the connecting user needs for what
//! `pg_admin` / `mysql_admin` execute: extract, load, reset, backup, restore, freeze,
//! closing production to its users and reopening it.

use std::collections::BTreeSet;

use super::{Out, Status, Uses, first, join, lit, rows};
use crate::db::{Db, display_env};
use crate::runbook::{Plan, ResolvedEnv};
use crate::steps::explain;

/// `user@host` (host `%` when left out), as the MariaDB freeze and lock read it.
fn account(spec: &str) -> (String, String) {
    let (u, h) = spec.rsplit_once('@').unwrap_or((spec, "%"));
    (u.to_string(), h.to_string())
}

/// Every role (PostgreSQL) or account (MariaDB) in `app_users` exists.
pub(super) async fn app_users(out: &mut Out<'_>, env: &ResolvedEnv, db: &Db) {
    let name = env.name.as_str();
    let key = format!("environments.{name}.app_users");
    let mut missing = Vec::new();
    for spec in &env.app_users {
        let sql = match db {
            Db::Postgres(_) => format!(
                "SELECT COUNT(*) FROM pg_roles WHERE rolname = {}",
                lit(db, spec)
            ),
            Db::MySql(_) => {
                let (u, h) = account(spec);
                format!(
                    "SELECT COUNT(*) FROM mysql.user WHERE User = {} AND Host = {}",
                    lit(db, &u),
                    lit(db, &h)
                )
            }
            Db::Sqlite(_) => return,
        };
        match first(db, &sql).await {
            Ok(Some(n)) if n != "0" => {}
            Ok(_) => missing.push(match db {
                Db::MySql(_) => {
                    let (u, h) = account(spec);
                    format!("'{u}'@'{h}'")
                }
                _ => spec.clone(),
            }),
            Err(err) => {
                out.at(
                    Status::Fail,
                    "app_users",
                    Some(name),
                    &key,
                    format!(
                        "cannot look the accounts up: {} (the connecting user needs SELECT on mysql.user)",
                        explain(&err)
                    ),
                    "GRANT SELECT ON mysql.* TO the cutover user",
                );
                return;
            }
        }
    }
    let what = match db {
        Db::Postgres(_) => "role",
        _ => "account",
    };
    if missing.is_empty() {
        out.at(
            Status::Pass,
            "app_users",
            Some(name),
            &key,
            format!(
                "{what}(s) {} exist on {}",
                env.app_users.join(", "),
                display_env(env)
            ),
            "",
        );
    } else {
        out.at(
            Status::Fail,
            "app_users",
            Some(name),
            &key,
            format!(
                "{what}(s) {} do not exist on {}",
                missing.join(", "),
                display_env(env)
            ),
            match db {
                Db::MySql(_) => {
                    "name accounts as user@host (host % when left out), exactly as in mysql.user"
                }
                _ => "name existing roles (the role the application's logins are members of)",
            },
        );
    }
}

/// One group of privileges a step needs, held or not.
struct Need {
    what: String,
    missing: Vec<String>,
    hint: String,
}

pub(super) async fn check(out: &mut Out<'_>, plan: &Plan, env: &ResolvedEnv, db: &Db, u: &Uses) {
    let needs = match db {
        Db::Postgres(_) => pg_needs(plan, env, db, u).await,
        Db::MySql(_) => mysql_needs(plan, env, db, u).await,
        Db::Sqlite(_) => return,
    };
    let name = env.name.as_str();
    let key = format!("environments.{name}.url");
    let user = crate::db::ConnParts::parse(&env.url)
        .ok()
        .and_then(|p| p.user)
        .unwrap_or_else(|| "the connecting user".into());
    match needs {
        Err(err) => out.at(
            Status::Fail,
            "privileges",
            Some(name),
            &key,
            format!("cannot read {user}'s privileges: {}", explain(&err)),
            "",
        ),
        Ok(needs) => {
            for n in needs {
                if n.missing.is_empty() {
                    out.at(
                        Status::Pass,
                        "privileges",
                        Some(name),
                        &key,
                        format!("{user} may {}", n.what),
                        "",
                    );
                } else {
                    out.at(
                        Status::Fail,
                        "privileges",
                        Some(name),
                        &key,
                        format!("{user} may not {}: lacks {}", n.what, n.missing.join(", ")),
                        n.hint,
                    );
                }
            }
        }
    }
}

fn source_tables(plan: &Plan) -> Vec<String> {
    plan.order
        .iter()
        .flat_map(|n| plan.rb.entities[n].source_files(n))
        .map(|f| f.table)
        .collect()
}

fn target_tables(plan: &Plan) -> Vec<String> {
    let set: BTreeSet<String> = plan
        .order
        .iter()
        .map(|n| plan.rb.entities[n].target.table.clone())
        .collect();
    set.into_iter().collect()
}

async fn pg_needs(plan: &Plan, env: &ResolvedEnv, db: &Db, u: &Uses) -> anyhow::Result<Vec<Need>> {
    let t = |b: Option<String>| b.as_deref() == Some("true");
    let superuser = t(first(
        db,
        "SELECT rolsuper::text FROM pg_roles WHERE rolname = current_user",
    )
    .await?);
    let owner = t(first(
        db,
        "SELECT pg_has_role(datdba, 'USAGE')::text FROM pg_database WHERE datname = current_database()",
    )
    .await?);
    let signal =
        superuser || t(first(db, "SELECT pg_has_role('pg_signal_backend', 'USAGE')::text").await?);
    let dbname = first(db, "SELECT current_database()::text")
        .await?
        .unwrap_or_default();
    let owner_missing = || {
        (!owner)
            .then(|| format!("ownership of database {dbname}"))
            .into_iter()
            .collect::<Vec<_>>()
    };
    let signal_missing = || {
        (!signal)
            .then(|| "membership of pg_signal_backend".to_string())
            .into_iter()
            .collect::<Vec<_>>()
    };
    // Privileges on existing tables (absent ones are reported by the table checks).
    let lacking = async |tables: &[String], privs: &[&str]| -> anyhow::Result<Vec<String>> {
        let mut v = Vec::new();
        for table in tables {
            let reg = format!("to_regclass({})", lit(db, &crate::db::ident(table)));
            for p in privs {
                let ok = first(
                    db,
                    &format!("SELECT COALESCE(has_table_privilege({reg}, '{p}'), true)::text"),
                )
                .await?;
                if ok.as_deref() != Some("true") {
                    v.push(format!("{p} on {table}"));
                }
            }
        }
        Ok(v)
    };
    let mut needs = Vec::new();
    if u.source {
        needs.push(Need {
            what: "read the legacy tables (extract)".into(),
            missing: lacking(&source_tables(plan), &["SELECT"]).await?,
            hint: "GRANT SELECT ON the legacy tables TO the cutover user".into(),
        });
    }
    if u.freeze {
        let mut missing = owner_missing();
        missing.extend(signal_missing());
        needs.push(Need {
            what: format!(
                "freeze {dbname} and reopen it (ALTER DATABASE … SET default_transaction_read_only, ending its other sessions)"
            ),
            missing,
            hint: "connect as the database's owner who is also a member of pg_signal_backend (GRANT pg_signal_backend TO …), or as a superuser".into(),
        });
    }
    if u.target {
        let tables = target_tables(plan);
        let mut privs = vec!["SELECT", "INSERT", "UPDATE"];
        if u.reset {
            privs.push("TRUNCATE");
        }
        let mut missing = lacking(&tables, &privs).await?;
        let create = t(first(
            db,
            "SELECT has_schema_privilege(current_schema(), 'CREATE')::text",
        )
        .await?);
        let any_exists = t(first(
            db,
            &format!(
                "SELECT bool_or(to_regclass(t) IS NOT NULL)::text FROM unnest(ARRAY[{}]) t",
                join(tables.iter().map(|x| lit(db, &crate::db::ident(x))))
            ),
        )
        .await?);
        if !any_exists && !create {
            missing.push("CREATE on the current schema (to apply [schema])".into());
        }
        needs.push(Need {
            what: format!(
                "write the target tables ({}{})",
                if u.reset {
                    "truncate, "
                } else {
                    ""
                },
                "insert, update"
            ),
            missing,
            hint: "GRANT SELECT, INSERT, UPDATE (and TRUNCATE for a reset staging) ON the target tables, or CREATE on the schema for an empty target".into(),
        });
    }
    if u.backup.is_some() {
        let unreadable = rows(
            db,
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'S', 'm') AND n.nspname <> 'information_schema' \
             AND n.nspname NOT LIKE 'pg\\_%' AND NOT has_table_privilege(c.oid, 'SELECT') ORDER BY 1",
        )
        .await?;
        needs.push(Need {
            what: format!("back up {dbname} (pg_dump reads every table and sequence)"),
            missing: unreadable
                .into_iter()
                .map(|r| format!("SELECT on {}", r[0]))
                .collect(),
            hint:
                "GRANT pg_read_all_data TO the cutover user, or SELECT on every table and sequence"
                    .into(),
        });
    }
    if u.restore {
        let foreign = rows(
            db,
            "SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('r', 'p', 'S', 'm', 'v') AND n.nspname <> 'information_schema' \
             AND n.nspname NOT LIKE 'pg\\_%' AND NOT pg_has_role(c.relowner, 'USAGE') ORDER BY 1",
        )
        .await?;
        needs.push(Need {
            what: format!("restore {dbname} on rollback (pg_restore --clean drops and recreates each object)"),
            missing: foreign
                .into_iter()
                .map(|r| format!("ownership of {}", r[0]))
                .collect(),
            hint: "connect as the owner of production's tables (or a member of the owning role), or as a superuser".into(),
        });
    }
    if u.users && !env.app_users.is_empty() {
        let mut missing = owner_missing();
        missing.extend(signal_missing());
        needs.push(Need {
            what: format!(
                "close {dbname} to its users and reopen it (REVOKE/GRANT CONNECT, ending their sessions)"
            ),
            missing,
            hint: "connect as the database's owner who is also a member of pg_signal_backend, or as a superuser".into(),
        });
    }
    Ok(needs)
}

/// The connecting account's privileges: global, on the database, on `mysql`, on
/// `mysql.proc`, and on single tables of the database.
struct MyPrivs {
    global: BTreeSet<String>,
    schema: BTreeSet<String>,
    mysql: BTreeSet<String>,
    proc_: BTreeSet<String>,
    tables: BTreeSet<(String, String)>,
    grant_option: bool,
}

impl MyPrivs {
    fn on_db(&self, p: &str) -> bool {
        self.global.contains(p) || self.schema.contains(p)
    }
    fn on_table(&self, t: &str, p: &str) -> bool {
        self.on_db(p) || self.tables.contains(&(t.to_string(), p.to_string()))
    }
}

async fn my_privs(db: &Db) -> anyhow::Result<MyPrivs> {
    let grantee = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";
    let mut p = MyPrivs {
        global: BTreeSet::new(),
        schema: BTreeSet::new(),
        mysql: BTreeSet::new(),
        proc_: BTreeSet::new(),
        tables: BTreeSet::new(),
        grant_option: false,
    };
    for r in rows(
        db,
        &format!("SELECT PRIVILEGE_TYPE, IS_GRANTABLE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = {grantee}"),
    )
    .await?
    {
        p.grant_option |= r[1] == "YES";
        p.global.insert(r[0].clone());
    }
    for r in rows(
        db,
        &format!("SELECT PRIVILEGE_TYPE, IS_GRANTABLE, CAST(TABLE_SCHEMA = DATABASE() AS CHAR) FROM information_schema.SCHEMA_PRIVILEGES \
                  WHERE GRANTEE = {grantee} AND (TABLE_SCHEMA = DATABASE() OR TABLE_SCHEMA = 'mysql')"),
    )
    .await?
    {
        if r[2] == "1" {
            p.grant_option |= r[1] == "YES";
            p.schema.insert(r[0].clone());
        } else {
            p.mysql.insert(r[0].clone());
        }
    }
    for r in rows(
        db,
        &format!("SELECT CAST(TABLE_SCHEMA AS CHAR), CAST(TABLE_NAME AS CHAR), PRIVILEGE_TYPE FROM information_schema.TABLE_PRIVILEGES \
                  WHERE GRANTEE = {grantee} AND (TABLE_SCHEMA = DATABASE() OR (TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'proc'))"),
    )
    .await?
    {
        if r[0] == "mysql" {
            p.proc_.insert(r[2].clone());
        } else {
            p.tables.insert((r[1].clone(), r[2].clone()));
        }
    }
    Ok(p)
}

async fn mysql_needs(
    plan: &Plan,
    env: &ResolvedEnv,
    db: &Db,
    u: &Uses,
) -> anyhow::Result<Vec<Need>> {
    let p = my_privs(db).await?;
    let dbname = first(db, "SELECT DATABASE()").await?.unwrap_or_default();
    let lacking = |privs: &[&str]| -> Vec<String> {
        privs
            .iter()
            .filter(|x| !p.on_db(x))
            .map(|x| format!("{x} on `{dbname}`"))
            .collect()
    };
    let global_lacking = |privs: &[&str]| -> Vec<String> {
        privs
            .iter()
            .filter(|x| !p.global.contains(**x))
            .map(|x| format!("{x} (global)"))
            .collect()
    };
    let kill = || {
        (!p.global.contains("CONNECTION ADMIN") && !p.global.contains("SUPER"))
            .then(|| "CONNECTION ADMIN or SUPER (global, to end other sessions)".to_string())
    };
    let mysql_select = p.global.contains("SELECT") || p.mysql.contains("SELECT");
    let mut needs = Vec::new();
    if u.source {
        needs.push(Need {
            what: "read the legacy tables (extract)".into(),
            missing: source_tables(plan)
                .iter()
                .filter(|t| !p.on_table(t, "SELECT"))
                .map(|t| format!("SELECT on `{dbname}`.`{t}`"))
                .collect(),
            hint: format!("GRANT SELECT ON `{dbname}`.* TO the cutover account"),
        });
    }
    if u.freeze {
        let mut missing = Vec::new();
        if !p.grant_option {
            missing.push(format!(
                "GRANT OPTION on `{dbname}` (to revoke and give back the application's writes)"
            ));
        }
        missing.extend(global_lacking(&["PROCESS"]));
        missing.extend(kill());
        if !mysql_select {
            missing.push("SELECT on `mysql` (to read the application accounts' grants)".into());
        }
        // A revoke needs the revoker to hold each privilege it takes away.
        for spec in &env.app_users {
            let (user, host) = account(spec);
            let grantee = lit(db, &format!("'{user}'@'{host}'"));
            let held = rows(
                db,
                &format!(
                    "SELECT PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES WHERE GRANTEE = {grantee} AND TABLE_SCHEMA = DATABASE()"
                ),
            )
            .await?;
            for r in held {
                if !p.on_db(&r[0]) {
                    missing.push(format!("{} on `{dbname}` (held by {spec})", r[0]));
                }
            }
        }
        needs.push(Need {
            what: format!("freeze `{dbname}` and reopen it (revoke the accounts' writes, end their sessions, grant back)"),
            missing,
            hint: format!("GRANT ALL ON `{dbname}`.* TO … WITH GRANT OPTION; GRANT PROCESS, CONNECTION ADMIN ON *.* TO …; GRANT SELECT ON mysql.* TO …"),
        });
    }
    if u.target {
        let mut privs = vec!["SELECT", "INSERT", "UPDATE"];
        if u.reset {
            privs.push("DROP"); // TRUNCATE needs DROP
        }
        let existing: BTreeSet<String> = db.table_names().await?.into_iter().collect();
        if !target_tables(plan).iter().any(|t| existing.contains(t)) {
            privs.push("CREATE");
        }
        needs.push(Need {
            what: format!(
                "write the target tables ({}insert, update)",
                if u.reset { "truncate, " } else { "" }
            ),
            missing: lacking(&privs),
            hint: format!(
                "GRANT SELECT, INSERT, UPDATE, CREATE, DROP ON `{dbname}`.* TO the cutover account"
            ),
        });
    }
    if u.backup.is_some() {
        let mut missing = lacking(&["SELECT", "SHOW VIEW", "TRIGGER"]);
        if !mysql_select && !p.proc_.contains("SELECT") {
            missing.push(
                "SELECT on mysql.proc (without it the dump silently leaves out stored routines)"
                    .into(),
            );
        }
        needs.push(Need {
            what: format!("back up `{dbname}` (mariadb-dump --single-transaction --routines --triggers)"),
            missing,
            hint: format!("GRANT SELECT, SHOW VIEW, TRIGGER ON `{dbname}`.* TO …; GRANT SELECT ON mysql.proc TO … (without TRIGGER the dump silently leaves out triggers)"),
        });
    }
    if u.restore {
        needs.push(Need {
            what: format!(
                "restore `{dbname}` on rollback (replaying the dump drops and recreates each table)"
            ),
            missing: lacking(&[
                "CREATE",
                "DROP",
                "ALTER",
                "INDEX",
                "INSERT",
                "LOCK TABLES",
                "CREATE VIEW",
                "TRIGGER",
            ]),
            hint: format!("GRANT ALL ON `{dbname}`.* TO the cutover account"),
        });
    }
    if u.users && !env.app_users.is_empty() {
        let mut missing = global_lacking(&["CREATE USER", "PROCESS"]);
        missing.extend(kill());
        needs.push(Need {
            what: "lock and unlock the application's accounts (ALTER USER … ACCOUNT LOCK, ending their sessions)".into(),
            missing,
            hint: "GRANT CREATE USER, PROCESS, CONNECTION ADMIN ON *.* TO the cutover account (without PROCESS their sessions are not even seen)".into(),
        });
    }
    Ok(needs)
}
