//! A cutover "site" on the local servers: legacy, staging and production databases, the
//! legacy application's account and production's users, all created for one test and
//! dropped with it. Parameterised by server kind, so one test body serves PostgreSQL and
//! MariaDB alike.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cutover::db::Dialect;
use cutover::demo::{GenOptions, write_legacy_db};
use cutover::testdb::{TempDb, mariadb, psql};

use super::{BIN, block_on, repo};

/// The reference runbook on the servers.
pub fn tms_pg() -> PathBuf {
    repo().join("runbooks/tms-postgres.toml")
}

/// The reference runbook's DDL for a server kind (`[schema]` `postgres` or `mysql`).
pub fn runbook_ddl(dialect: Dialect) -> String {
    let rb: toml::Value = toml::from_str(&std::fs::read_to_string(tms_pg()).unwrap()).unwrap();
    let key = match dialect {
        Dialect::MySql => "mysql",
        _ => "postgres",
    };
    rb["schema"][key]
        .as_str()
        .expect("the runbook carries DDL")
        .to_string()
}

/// A new empty database of that kind.
pub fn temp_db(dialect: Dialect, tag: &str) -> TempDb {
    match dialect {
        Dialect::MySql => TempDb::mysql(tag),
        _ => TempDb::postgres(tag),
    }
}

/// The other server kind: a site's legacy on one, its targets on the other.
pub fn other(dialect: Dialect) -> Dialect {
    match dialect {
        Dialect::MySql => Dialect::Postgres,
        _ => Dialect::MySql,
    }
}

/// The generated legacy tables, written into `db`.
pub fn fill_legacy(db: &TempDb, opts: &GenOptions) {
    let env = cutover::runbook::ResolvedEnv {
        name: "legacy".into(),
        url: db.url(),
        password: None,
        production: false,
        reset: false,
        app_users: vec![],
    };
    block_on(async {
        let c = cutover::db::Db::connect(&env).await.unwrap();
        write_legacy_db(&c, opts).await.unwrap();
        c.close().await;
    });
}

/// Run SQL as one of the application's PostgreSQL users (trust auth: no password).
pub fn as_pg_user(user: &str, db: &str, sql: &str) -> Output {
    Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", user, "-d", db, "-XAtc", sql])
        .output()
        .unwrap()
}

/// Run SQL as one of the application's MariaDB accounts (no password), in database `db`.
pub fn as_mariadb_user(user: &str, db: &str, sql: &str) -> Output {
    Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", user, "-D", db, "-N", "-e", sql])
        .output()
        .unwrap()
}

/// Who production's users are.
#[derive(Clone, Copy, Debug)]
pub enum Users {
    /// One group: a PostgreSQL `NOLOGIN` role with a login in it, or one MariaDB account.
    Role,
    /// That many logins (PostgreSQL roles, MariaDB accounts), each named in `app_users`.
    Logins(usize),
}

/// Legacy, staging and production databases plus the applications' accounts.
pub struct Site {
    pub dir: tempfile::TempDir,
    pub legacy: TempDb,
    pub staging: TempDb,
    pub production: TempDb,
    /// The legacy application's account (MariaDB `name@%`) or role (PostgreSQL).
    pub legacy_user: String,
    /// Production's users as the runbook's `app_users` names them (without a host).
    pub users: Vec<String>,
    /// A login that gets into production as one of its users.
    pub users_login: String,
    /// More PostgreSQL roles and MariaDB accounts (`name@%`) a test created: dropped too.
    pub extra: Vec<String>,
    /// A PostgreSQL journal; `None`: a SQLite journal in `dir`.
    pub journal: Option<TempDb>,
}

impl Site {
    /// The databases given, the legacy filled from `opts`, the accounts created.
    pub fn new(
        legacy: TempDb,
        staging: TempDb,
        production: TempDb,
        opts: &GenOptions,
        users: Users,
    ) -> Site {
        fill_legacy(&legacy, opts);
        let legacy_user = format!("{}_app", legacy.name);
        match legacy.dialect {
            Dialect::MySql => {
                mariadb(&format!(
                    "CREATE USER '{legacy_user}'@'%'; GRANT SELECT, INSERT, UPDATE, DELETE ON {}.* TO '{legacy_user}'@'%'",
                    legacy.name
                ));
            }
            _ => {
                psql("postgres", &format!("CREATE ROLE {legacy_user} LOGIN"));
                legacy.exec(&format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {legacy_user}"
                ));
            }
        }
        let p = &production.name;
        let (users, users_login) = match (users, production.dialect) {
            (Users::Role, Dialect::Postgres) => {
                let (role, login) = (format!("{p}_users"), format!("{p}_u1"));
                psql("postgres", &format!("CREATE ROLE {role} NOLOGIN"));
                psql(
                    "postgres",
                    &format!("CREATE ROLE {login} LOGIN IN ROLE {role}"),
                );
                (vec![role], login)
            }
            (Users::Role, _) => {
                let account = format!("{p}_users");
                mariadb(&format!(
                    "CREATE USER '{account}'@'%'; GRANT SELECT ON {p}.* TO '{account}'@'%'"
                ));
                (vec![account.clone()], account)
            }
            (Users::Logins(n), dialect) => {
                let names: Vec<String> = (1..=n).map(|i| format!("{p}_u{i}")).collect();
                for u in &names {
                    match dialect {
                        Dialect::Postgres => {
                            psql("postgres", &format!("CREATE ROLE {u} LOGIN"));
                        }
                        _ => {
                            mariadb(&format!(
                                "CREATE USER '{u}'@'%'; GRANT SELECT ON {p}.* TO '{u}'@'%'"
                            ));
                        }
                    }
                }
                let first = names.first().cloned().unwrap_or_default();
                (names, first)
            }
        };
        Site {
            dir: tempfile::tempdir().unwrap(),
            legacy,
            staging,
            production,
            legacy_user,
            users,
            users_login,
            extra: Vec::new(),
            journal: None,
        }
    }

    /// An account as `app_users` names it on `db`'s server (MariaDB: `name@%`).
    pub fn app_account(db: &TempDb, name: &str) -> String {
        match db.dialect {
            Dialect::MySql => format!("{name}@%"),
            _ => name.to_string(),
        }
    }

    /// `--var` flags pointing the runbook at this site.
    pub fn vars(&self) -> Vec<String> {
        let users = self
            .users
            .iter()
            .map(|u| Site::app_account(&self.production, u))
            .collect::<Vec<_>>()
            .join(",");
        [
            format!("legacy_url={}", self.legacy.url()),
            format!("staging_url={}", self.staging.url()),
            format!("production_url={}", self.production.url()),
            format!(
                "legacy_app_users={}",
                Site::app_account(&self.legacy, &self.legacy_user)
            ),
            format!("production_users_role={users}"),
            format!("extract_dir={}", self.dir.path().join("extract").display()),
            format!("backup_dir={}", self.dir.path().join("backups").display()),
        ]
        .into_iter()
        .flat_map(|v| ["--var".to_string(), v])
        .collect()
    }

    /// Where the journal is: the PostgreSQL journal's URL or the SQLite file's path.
    pub fn journal_arg(&self) -> String {
        match &self.journal {
            Some(j) => j.url(),
            None => self.dir.path().join("journal.db").display().to_string(),
        }
    }

    /// `cutover CMD RUNBOOK` with this site's variables, its journal (unless `args` names
    /// one) and `args`, the inherited cutover variables removed.
    pub fn command(&self, cmd: &str, runbook: &Path, args: &[&str]) -> Command {
        let mut c = Command::new(BIN);
        c.arg(cmd).arg(runbook).args(self.vars());
        if !args.contains(&"--journal") {
            c.arg("--journal").arg(self.journal_arg());
        }
        c.args(args)
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT")
            .env_remove("CUTOVER_ARTIFACTS");
        c
    }

    /// `cutover CMD RUNBOOK --headless REST…` for `args` = `[CMD, REST…]`.
    pub fn cutover(&self, args: &[&str], runbook: &Path) -> Output {
        let rest: Vec<&str> = std::iter::once("--headless")
            .chain(args[1..].iter().copied())
            .collect();
        self.command(args[0], runbook, &rest).output().unwrap()
    }

    /// `cutover rollback` of the newest run, confirmed with production's database name.
    pub fn rollback(&self, runbook: &Path) -> Output {
        let confirm = ["--confirm", &self.production.name, "--reason", "test"];
        self.command("rollback", runbook, &confirm)
            .output()
            .unwrap()
    }

    /// The reference runbook written into the site's folder, with batches of `batch_size`
    /// rows and `insert` (TOML) placed before the step `before`, when given.
    pub fn runbook(&self, batch_size: Option<usize>, insert: Option<(&str, &str)>) -> PathBuf {
        let mut text = std::fs::read_to_string(tms_pg()).unwrap();
        if let Some(n) = batch_size {
            assert!(text.contains("batch_size = 5000"), "the batch size moved");
            text = text.replace("batch_size = 5000", &format!("batch_size = {n}"));
        }
        if let Some((before, toml)) = insert {
            let marker = format!("[[steps]]\nid = \"{before}\"");
            assert!(text.contains(&marker), "no step {before}");
            text = text.replace(&marker, &format!("{toml}\n{marker}"));
        }
        let p = self.dir.path().join("runbook.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// SQL run in the legacy database as its application.
    pub fn as_legacy_app(&self, sql: &str) -> Output {
        match self.legacy.dialect {
            Dialect::MySql => as_mariadb_user(&self.legacy_user, &self.legacy.name, sql),
            _ => as_pg_user(&self.legacy_user, &self.legacy.name, sql),
        }
    }

    /// The legacy application can write (its freeze was undone, or never applied).
    pub fn legacy_writable(&self) -> bool {
        self.as_legacy_app("UPDATE vehicles SET make = make WHERE 1 = 0")
            .status
            .success()
    }

    /// SQL run in production as `user`, one of its users.
    pub fn as_production_user(&self, user: &str, sql: &str) -> Output {
        match self.production.dialect {
            Dialect::MySql => as_mariadb_user(user, &self.production.name, sql),
            _ => as_pg_user(user, &self.production.name, sql),
        }
    }

    /// The journal's records of the newest run.
    pub fn records(&self) -> Vec<cutover::journal::events::Record> {
        assert!(self.journal.is_none(), "reads the SQLite journal");
        block_on(async {
            let j = cutover::journal::Journal::open_path(&self.dir.path().join("journal.db"))
                .await
                .unwrap();
            let id = j.last_run_id().await.unwrap().unwrap();
            j.run_records(&id).await.unwrap()
        })
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        // Databases first: a role that holds privileges on one cannot be dropped.
        for db in [&self.legacy, &self.staging, &self.production] {
            let _ = match db.dialect {
                Dialect::Postgres => Command::new("psql")
                    .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
                    .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
                    .output(),
                _ => Command::new("mariadb")
                    .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                    .arg(format!("DROP DATABASE IF EXISTS {}", db.name))
                    .output(),
            };
        }
        // Logins before the roles they are members of.
        let mut names = vec![self.users_login.clone()];
        names.extend(self.users.iter().cloned());
        names.push(self.legacy_user.clone());
        names.extend(self.extra.iter().cloned());
        names.dedup();
        for r in names {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
                .arg(format!("DROP ROLE IF EXISTS {r}"))
                .output();
            let _ = Command::new("mariadb")
                .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                .arg(format!("DROP USER IF EXISTS '{r}'@'%'"))
                .output();
        }
    }
}
