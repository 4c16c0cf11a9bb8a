//! Fail-safe on the real servers: production's privileges are given back exactly as they
//! were before the close (PostgreSQL's database ACL, PUBLIC included; MariaDB's account
//! locks) on every path (unfreeze, the rollback plan after a failed load, a failed
//! backup, a NO-GO), and the freeze watermark catches a privileged UPDATE on a MariaDB
//! and a PostgreSQL legacy before the load. Small data: these cases are about the
//! systems' state, not volume.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cutover::db::Dialect;
use cutover::demo::{GenOptions, write_legacy_db};
use cutover::testdb::{TempDb, mariadb, psql};

fn small() -> GenOptions {
    GenOptions {
        customers: 120,
        vehicles: 30,
        drivers: 20,
        invoices: 200,
        ..GenOptions::demo()
    }
}

/// Legacy, staging and production databases plus the applications' accounts.
struct Site {
    dir: tempfile::TempDir,
    legacy: TempDb,
    staging: TempDb,
    production: TempDb,
    /// The legacy application's account (MariaDB `name@%`) or role (PostgreSQL).
    legacy_user: String,
    /// Production's users: PostgreSQL roles, or MariaDB accounts (`name`, host `%`).
    users: Vec<String>,
}

impl Site {
    fn new(legacy: TempDb, staging: TempDb, production: TempDb, n_users: usize) -> Site {
        let env = cutover::runbook::ResolvedEnv {
            name: "legacy".into(),
            url: legacy.url(),
            password: None,
            production: false,
            reset: false,
            app_users: vec![],
        };
        block_on(async {
            let c = cutover::db::Db::connect(&env).await.unwrap();
            write_legacy_db(&c, &small()).await.unwrap();
            c.close().await;
        });
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
        let users: Vec<String> = (1..=n_users)
            .map(|i| format!("{}_u{i}", production.name))
            .collect();
        for u in &users {
            match production.dialect {
                Dialect::Postgres => {
                    psql("postgres", &format!("CREATE ROLE {u} LOGIN"));
                }
                _ => {
                    mariadb(&format!(
                        "CREATE USER '{u}'@'%'; GRANT SELECT ON {}.* TO '{u}'@'%'",
                        production.name
                    ));
                }
            }
        }
        Site {
            dir: tempfile::tempdir().unwrap(),
            legacy,
            staging,
            production,
            legacy_user,
            users,
        }
    }

    fn flags(&self) -> Vec<String> {
        let legacy_users = match self.legacy.dialect {
            Dialect::MySql => format!("{}@%", self.legacy_user),
            _ => self.legacy_user.clone(),
        };
        let users = match self.production.dialect {
            Dialect::MySql => self
                .users
                .iter()
                .map(|u| format!("{u}@%"))
                .collect::<Vec<_>>()
                .join(","),
            _ => self.users.join(","),
        };
        [
            format!("legacy_url={}", self.legacy.url()),
            format!("staging_url={}", self.staging.url()),
            format!("production_url={}", self.production.url()),
            format!("legacy_app_users={legacy_users}"),
            format!("production_users_role={users}"),
            format!("extract_dir={}", self.dir.path().join("extract").display()),
            format!("backup_dir={}", self.dir.path().join("backups").display()),
        ]
        .into_iter()
        .flat_map(|v| ["--var".to_string(), v])
        .chain([
            "--headless".to_string(),
            "--journal".into(),
            self.dir.path().join("journal.db").display().to_string(),
        ])
        .collect()
    }

    fn run(&self, runbook: &Path, fault: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(runbook)
            .args(self.flags())
            .args(args)
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT");
        if let Some(f) = fault {
            cmd.env("CUTOVER_FAULT", f);
        }
        cmd.output().unwrap()
    }

    /// The reference runbook with small batches (or another step inserted before `before`).
    fn runbook(&self, before_unfreeze: Option<&str>) -> PathBuf {
        let mut text = std::fs::read_to_string(repo().join("runbooks/tms-postgres.toml"))
            .unwrap()
            .replace("batch_size = 5000", "batch_size = 100");
        if let Some(step) = before_unfreeze {
            let marker = "[[steps]]\nid = \"unfreeze\"";
            assert!(text.contains(marker), "the runbook's unfreeze step moved");
            text = text.replace(marker, &format!("{step}\n{marker}"));
        }
        let p = self.dir.path().join("runbook.toml");
        std::fs::write(&p, text).unwrap();
        p
    }

    /// Who may connect to (PostgreSQL) or log into (MariaDB) production, as the server
    /// says: the database ACL exploded and sorted, or each account's lock state.
    fn production_access(&self) -> String {
        match self.production.dialect {
            Dialect::Postgres => {
                let rows = self.production.exec(
                    "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END \
                     || ' ' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END \
                     FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
                     WHERE d.datname = current_database()",
                );
                let mut v: Vec<&str> = rows.lines().collect();
                v.sort();
                v.join(", ")
            }
            _ => self
                .users
                .iter()
                .map(|u| {
                    let locked = mariadb(&format!(
                        "SELECT IF(COALESCE(JSON_VALUE(Priv, '$.account_locked'), 'false') IN ('true', '1'), 'true', 'false') \
                         FROM mysql.global_priv WHERE User = '{u}' AND Host = '%'"
                    ));
                    format!("{u} locked={locked}")
                })
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    /// The legacy application can write again (its freeze was undone).
    fn legacy_writable(&self) -> bool {
        match self.legacy.dialect {
            Dialect::MySql => Command::new("mariadb")
                .args(["-h", "127.0.0.1", "-u", &self.legacy_user, "-N", "-e"])
                .arg(format!(
                    "UPDATE {}.vehicles SET make = make WHERE 1 = 0",
                    self.legacy.name
                ))
                .output()
                .unwrap()
                .status
                .success(),
            _ => Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", &self.legacy_user, "-d"])
                .arg(&self.legacy.name)
                .args(["-XAtc", "UPDATE vehicles SET make = make WHERE 1 = 0"])
                .output()
                .unwrap()
                .status
                .success(),
        }
    }

    fn records(&self) -> Vec<cutover::journal::events::Record> {
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
        for r in self.users.iter().chain([&self.legacy_user]) {
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

/// How a run ends in a privilege case.
#[derive(Clone, Copy, Debug)]
enum Path_ {
    /// Completes: unfreeze reopens production.
    Completes,
    /// The backup fails after production was closed.
    BackupFails,
    /// NO-GO at the gate: the rollback plan reopens production (never loaded).
    NoGo,
    /// A step after the load fails: restored from the backup and reopened.
    FailsAfterLoad,
}

impl Path_ {
    fn exit(self) -> i32 {
        match self {
            Path_::Completes => 0,
            Path_::BackupFails => 1,
            Path_::NoGo => 5,
            Path_::FailsAfterLoad => 6,
        }
    }
}

/// Production's access before the cutover is set up by `setup` (SQL on production, with
/// `{u1}`/`{u2}` for the users), the run ends by `path`; the access afterwards must be
/// the same, and the journal holds what was snapshotted.
fn privileges_case(site: &Site, setup: &str, path: Path_) {
    let mut sql = setup.to_string();
    for (i, u) in site.users.iter().enumerate() {
        sql = sql.replace(&format!("{{u{}}}", i + 1), u);
    }
    sql = sql.replace("{db}", &site.production.name);
    if !sql.is_empty() {
        match site.production.dialect {
            Dialect::Postgres => {
                site.production.exec(&sql);
            }
            _ => {
                mariadb(&sql);
            }
        }
    }
    let before = site.production_access();
    let (runbook, fault, args): (PathBuf, Option<&str>, Vec<&str>) = match path {
        Path_::Completes => (site.runbook(None), None, GO.to_vec()),
        Path_::BackupFails => (
            site.runbook(None),
            Some("before:backup_taken:fail"),
            GO.to_vec(),
        ),
        Path_::NoGo => (
            site.runbook(None),
            None,
            vec![
                "--sign-off",
                "Migration lead|migration_lead|no-go|sums are off",
            ],
        ),
        Path_::FailsAfterLoad => (
            site.runbook(Some(
                "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"exit 3\"\n",
            )),
            None,
            GO.to_vec(),
        ),
    };
    let out = site.run(&runbook, fault, &args);
    let err = stderr(&out);
    assert_eq!(code(&out), path.exit(), "{path:?}: {err}");
    assert_eq!(
        site.production_access(),
        before,
        "{path:?}: production's access after the run differs from before; {err}"
    );
    // The snapshot is journaled, and the reopen is on screen.
    let recs = site.records();
    assert!(
        recs.iter().any(|r| r.event.kind() == "production_closed"),
        "{path:?}: no production_closed in the journal"
    );
    assert!(
        err.contains("reopened to its users"),
        "{path:?}: the reopen is not on screen: {err}"
    );
}

#[test]
fn postgres_production_access_is_given_back_exactly_on_every_path() {
    // (production's ACL before the cutover, how the run ends)
    let rows: &[(&str, Path_)] = &[
        // The default ACL: PUBLIC may connect; the users get in through it.
        ("", Path_::Completes),
        ("", Path_::BackupFails),
        // PUBLIC may not connect; one users' role may, with the grant option; another not.
        (
            "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {u1} WITH GRANT OPTION",
            Path_::NoGo,
        ),
        (
            "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {u1}",
            Path_::FailsAfterLoad,
        ),
    ];
    std::thread::scope(|s| {
        for (i, (setup, path)) in rows.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fsacl{i}");
                let site = Site::new(
                    TempDb::mysql(&tag),
                    TempDb::postgres(&tag),
                    TempDb::postgres(&tag),
                    2,
                );
                privileges_case(&site, setup, *path);
                if setup.is_empty() {
                    // PUBLIC has CONNECT again: a user with no grant of its own gets in.
                    let login = Command::new("psql")
                        .args(["-h", "127.0.0.1", "-U", &site.users[1], "-d"])
                        .arg(&site.production.name)
                        .args(["-XAtc", "SELECT 1"])
                        .output()
                        .unwrap();
                    assert!(login.status.success(), "{}", stderr(&login));
                }
            });
        }
    });
}

#[test]
fn mariadb_production_account_locks_are_given_back_exactly() {
    // The second account was locked before the cutover: it stays locked.
    let rows: &[(&str, Path_)] = &[
        ("ALTER USER '{u2}'@'%' ACCOUNT LOCK", Path_::Completes),
        ("ALTER USER '{u2}'@'%' ACCOUNT LOCK", Path_::FailsAfterLoad),
    ];
    std::thread::scope(|s| {
        for (i, (setup, path)) in rows.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fslock{i}");
                let site = Site::new(
                    TempDb::postgres(&tag),
                    TempDb::mysql(&tag),
                    TempDb::mysql(&tag),
                    2,
                );
                privileges_case(&site, setup, *path);
                assert!(
                    site.production_access().contains("_u2 locked=true"),
                    "{}",
                    site.production_access()
                );
                assert!(
                    site.production_access().contains("_u1 locked=false"),
                    "{}",
                    site.production_access()
                );
            });
        }
    });
}

/// `--until sign_off`, a privileged account changes the legacy behind the freeze, then the
/// resumed run reaches the load: caught, the rollback plan runs (exit 6), the legacy is
/// its application's again and production was never loaded.
#[test]
fn a_privileged_update_after_the_freeze_is_caught_before_the_load() {
    let rows: &[(&str, &str)] = &[
        // MariaDB: root is not bound by the revoked privileges.
        (
            "mysql",
            "UPDATE customers SET credit_limit = credit_limit + 1 ORDER BY legacy_id LIMIT 1",
        ),
        // PostgreSQL: a superuser asking for a read-write transaction.
        (
            "postgres",
            "BEGIN READ WRITE; UPDATE customers SET name = name || '.' \
             WHERE legacy_id = (SELECT min(legacy_id) FROM customers); COMMIT;",
        ),
    ];
    std::thread::scope(|s| {
        for (i, (legacy, update)) in rows.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fswm{i}");
                let legacy_db = match *legacy {
                    "mysql" => TempDb::mysql(&tag),
                    _ => TempDb::postgres(&tag),
                };
                let site = Site::new(
                    legacy_db,
                    TempDb::postgres(&tag),
                    TempDb::postgres(&tag),
                    1,
                );
                let rb = site.runbook(None);
                let first = site.run(&rb, None, &[&GO[..], &["--until", "sign_off"]].concat());
                assert_eq!(code(&first), 0, "{}", stderr(&first));
                assert!(!site.legacy_writable(), "{legacy}: the freeze does not hold");
                let counts_before = site.legacy.exec("SELECT COUNT(*) FROM customers");
                site.legacy.exec(update);
                assert_eq!(
                    site.legacy.exec("SELECT COUNT(*) FROM customers"),
                    counts_before,
                    "the change keeps the row count"
                );
                let out = site.run(&rb, None, &[]);
                let err = stderr(&out);
                assert_eq!(code(&out), 6, "{legacy}: {err}");
                assert!(
                    err.contains("changed after the freeze: customers (was rows="),
                    "{legacy}: {err}"
                );
                assert!(site.legacy_writable(), "{legacy}: legacy not reopened");
                assert_eq!(
                    site.production.exec(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'account_move' AND table_schema = 'public'"
                    ),
                    "0",
                    "{legacy}: the load started"
                );
            });
        }
    });
}

/// A NO-GO holding the freeze of a MariaDB legacy, then a new run: its freeze carries over
/// what the first one revoked, so when that run ends (a NO-GO, no hold) the legacy
/// application gets its privileges back.
#[test]
fn a_held_mariadb_freeze_is_carried_over_by_the_next_run() {
    let site = Site::new(
        TempDb::mysql("fshold"),
        TempDb::postgres("fshold"),
        TempDb::postgres("fshold"),
        1,
    );
    let rb = site.runbook(None);
    let no_go = [
        "--sign-off",
        "Migration lead|migration_lead|no-go|credit limits wrong",
    ];
    let first = site.run(
        &rb,
        None,
        &[
            &no_go[..],
            &["--hold-freeze", "fix credit limits, rehearse again"],
        ]
        .concat(),
    );
    assert_eq!(code(&first), 5, "{}", stderr(&first));
    assert!(stderr(&first).contains("kept frozen"), "{}", stderr(&first));
    assert!(!site.legacy_writable(), "the held freeze does not hold");
    let second = site.run(&rb, None, &no_go);
    assert_eq!(code(&second), 5, "{}", stderr(&second));
    let revoked = site.records().iter().find_map(|r| match &r.event {
        cutover::journal::events::Event::FreezeApplied {
            revoked, method, ..
        } => Some((revoked.clone(), method.clone())),
        _ => None,
    });
    let (revoked, method) = revoked.expect("the second run froze");
    assert!(method.contains("carried over"), "{method}");
    assert!(
        revoked.values().any(|p| p.contains("INSERT")),
        "{revoked:?}"
    );
    assert!(
        site.legacy_writable(),
        "the legacy application lost its privileges"
    );
}

impl Site {
    /// `cutover rollback` of the newest run, confirmed with production's database name.
    fn rollback(&self, runbook: &Path) -> Output {
        let flags: Vec<String> = self
            .flags()
            .into_iter()
            .filter(|f| f != "--headless")
            .collect();
        Command::new(BIN)
            .arg("rollback")
            .arg(runbook)
            .args(flags)
            .args(["--confirm", &self.production.name, "--reason", "test"])
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT")
            .output()
            .unwrap()
    }

    /// The legacy application's grants as MariaDB shows them, sorted.
    fn legacy_grants(&self) -> String {
        let mut v: Vec<String> = mariadb(&format!("SHOW GRANTS FOR '{}'@'%'", self.legacy_user))
            .lines()
            .map(String::from)
            .collect();
        v.sort();
        v.join("\n")
    }
}

/// SIGKILL inside the freeze of a MariaDB legacy: after `freeze_planned` (nothing revoked
/// yet) and after the revoke but before `freeze_applied` (the window where the journal
/// used to know nothing). Then `cutover run` resumes and completes: the legacy stays
/// frozen (only SELECT left) and the journal's `freeze_applied` names every write
/// privilege the account held, so granting those back restores SHOW GRANTS exactly. Or
/// `cutover rollback`: the account's SHOW GRANTS is exactly as before the cutover.
#[test]
fn a_kill_inside_the_mariadb_freeze_still_gives_back_exactly_what_was_held() {
    let rows: &[(&str, &str)] = &[
        ("before:freeze_applied:kill", "run"),
        ("before:freeze_applied:kill", "rollback"),
        ("after:freeze_planned:kill", "run"),
        ("after:freeze_planned:kill", "rollback"),
    ];
    std::thread::scope(|s| {
        for (i, (fault, then)) in rows.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fzwin{i}");
                let site = Site::new(
                    TempDb::mysql(&tag),
                    TempDb::postgres(&tag),
                    TempDb::postgres(&tag),
                    1,
                );
                // More than the usual four, so "exactly" means something.
                mariadb(&format!(
                    "GRANT CREATE, ALTER, INDEX, LOCK TABLES ON {}.* TO '{}'@'%'",
                    site.legacy.name, site.legacy_user
                ));
                let before = site.legacy_grants();
                assert!(before.contains("LOCK TABLES"), "{before}");
                let rb = site.runbook(None);
                let killed = site.run(&rb, Some(fault), &GO);
                assert_eq!(killed.status.code(), None, "{fault}: {}", stderr(&killed));
                let planned = site.records().iter().find_map(|r| match &r.event {
                    cutover::journal::events::Event::FreezePlanned { revoked, .. } => {
                        Some(revoked.clone())
                    }
                    _ => None,
                });
                let planned = planned.expect("freeze_planned is journaled before the revoke");
                let account = format!("{}@%", site.legacy_user);
                for p in [
                    "INSERT",
                    "UPDATE",
                    "DELETE",
                    "CREATE",
                    "ALTER",
                    "INDEX",
                    "LOCK TABLES",
                ] {
                    assert!(
                        planned[&account].split(',').any(|x| x == p),
                        "{p}: {planned:?}"
                    );
                }
                if fault.starts_with("before:freeze_applied") {
                    assert!(
                        !site.legacy_writable(),
                        "{fault}: the revoke had not happened"
                    );
                }
                if *then == "run" {
                    let out = site.run(&rb, None, &GO);
                    let err = stderr(&out);
                    assert_eq!(code(&out), 0, "{fault}: {err}");
                    assert!(err.contains("resuming run"), "{err}");
                    // A completed cutover keeps the legacy read-only.
                    assert!(
                        !site.legacy_writable(),
                        "{fault}: legacy writable after the cutover"
                    );
                    let frozen = site.legacy_grants();
                    assert!(
                        frozen.contains(&format!("GRANT SELECT ON `{}`.*", site.legacy.name)),
                        "{fault}: {frozen}"
                    );
                    let applied = site.records().iter().find_map(|r| match &r.event {
                        cutover::journal::events::Event::FreezeApplied { revoked, .. } => {
                            Some(revoked.clone())
                        }
                        _ => None,
                    });
                    assert_eq!(applied.as_ref(), Some(&planned), "{fault}: freeze_applied");
                    // What the journal says was revoked is all that is missing.
                    let env = cutover::runbook::ResolvedEnv {
                        name: "legacy".into(),
                        url: site.legacy.url(),
                        password: None,
                        production: false,
                        reset: false,
                        app_users: vec![account.clone()],
                    };
                    let fz = cutover::db::admin::Freeze {
                        method: String::new(),
                        revoked: applied.unwrap(),
                    };
                    block_on(cutover::db::admin::reopen(&env, &[], &fz)).unwrap();
                    assert_eq!(
                        site.legacy_grants(),
                        before,
                        "{fault}: given back from the journal"
                    );
                } else {
                    let out = site.rollback(&rb);
                    let err = stderr(&out);
                    assert_eq!(code(&out), 6, "{fault}: {err}");
                    assert!(
                        site.legacy_writable(),
                        "{fault}: legacy not reopened: {err}"
                    );
                    assert_eq!(
                        site.legacy_grants(),
                        before,
                        "{fault}: grants after the rollback"
                    );
                }
            });
        }
    });
}

/// The same window on a PostgreSQL legacy: `cutover rollback` after a kill between the
/// freeze and `freeze_applied` resets `default_transaction_read_only` (it used to find no
/// freeze in the journal and leave the legacy read-only).
#[test]
fn a_kill_inside_the_postgres_freeze_is_undone_by_the_rollback() {
    let site = Site::new(
        TempDb::postgres("fzwinpg"),
        TempDb::postgres("fzwinpg"),
        TempDb::postgres("fzwinpg"),
        1,
    );
    let rb = site.runbook(None);
    let killed = site.run(&rb, Some("before:freeze_applied:kill"), &GO);
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    assert!(!site.legacy_writable(), "the freeze had been applied");
    let out = site.rollback(&rb);
    let err = stderr(&out);
    assert_eq!(code(&out), 6, "{err}");
    assert!(site.legacy_writable(), "legacy still read-only: {err}");
}
