//! Fail-safe on the real servers: production's privileges are given back exactly as they
//! were before the close (PostgreSQL's database ACL, PUBLIC included; MariaDB's account
//! locks) on every path (unfreeze, the rollback plan after a failed load, a failed
//! backup, a NO-GO), and the freeze watermark catches a privileged UPDATE on a MariaDB
//! and a PostgreSQL legacy before the load. Small data: these cases are about the
//! systems' state, not volume.

mod common;
use common::*;

use common::servers::{Site, Users, other, temp_db};

use std::path::{Path, PathBuf};
use std::process::Output;

use cutover::db::Dialect;
use cutover::demo::GenOptions;
use cutover::testdb::{TempDb, mariadb};

fn small() -> GenOptions {
    GenOptions {
        customers: 120,
        vehicles: 30,
        drivers: 20,
        invoices: 200,
        ..GenOptions::demo()
    }
}

fn site(legacy: TempDb, staging: TempDb, production: TempDb, n_users: usize) -> Site {
    Site::new(
        legacy,
        staging,
        production,
        &small(),
        Users::Logins(n_users),
    )
}

/// `cutover run --headless` on the site, with a `CUTOVER_FAULT` when given.
fn run(site: &Site, runbook: &Path, fault: Option<&str>, args: &[&str]) -> Output {
    let mut rest = vec!["--headless"];
    rest.extend_from_slice(args);
    let mut cmd = site.command("run", runbook, &rest);
    if let Some(f) = fault {
        cmd.env("CUTOVER_FAULT", f);
    }
    cmd.output().unwrap()
}

/// The reference runbook with small batches (and a step inserted before unfreeze).
fn small_batches(site: &Site, before_unfreeze: Option<&str>) -> PathBuf {
    site.runbook(Some(100), before_unfreeze.map(|s| ("unfreeze", s)))
}

/// Who may connect to (PostgreSQL) or log into (MariaDB) production, as the server
/// says: the database ACL exploded and sorted, or each account's lock state.
fn production_access(site: &Site) -> String {
    match site.production.dialect {
        Dialect::Postgres => {
            let rows = site.production.exec(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee) END \
                 || ' ' || a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END \
                 FROM pg_database d, aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a \
                 WHERE d.datname = current_database()",
            );
            let mut v: Vec<&str> = rows.lines().collect();
            v.sort();
            v.join(", ")
        }
        _ => site
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

/// Which of production's users can log in now.
fn logins(site: &Site) -> Vec<bool> {
    site.users
        .iter()
        .map(|u| site.as_production_user(u, "SELECT 1").status.success())
        .collect()
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
/// the same, each user logs in (`can_log_in`) before and after alike, and the journal
/// holds what was snapshotted.
fn privileges_case(site: &Site, setup: &str, path: Path_, can_log_in: &[bool]) {
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
    let before = production_access(site);
    assert_eq!(
        logins(site),
        can_log_in,
        "{path:?}: who logs in before the run"
    );
    let (runbook, fault, args): (PathBuf, Option<&str>, Vec<&str>) = match path {
        Path_::Completes => (small_batches(site, None), None, GO.to_vec()),
        Path_::BackupFails => (
            small_batches(site, None),
            Some("before:backup_taken:fail"),
            GO.to_vec(),
        ),
        Path_::NoGo => (
            small_batches(site, None),
            None,
            vec![
                "--sign-off",
                "Migration lead|migration_lead|no-go|sums are off",
            ],
        ),
        Path_::FailsAfterLoad => (
            small_batches(
                site,
                Some("[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"exit 3\"\n"),
            ),
            None,
            GO.to_vec(),
        ),
    };
    let out = run(site, &runbook, fault, &args);
    let err = stderr(&out);
    assert_eq!(code(&out), path.exit(), "{path:?}: {err}");
    assert_eq!(
        production_access(site),
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
    assert_eq!(
        logins(site),
        can_log_in,
        "{path:?}: who logs in after the run; {}",
        production_access(site)
    );
}

/// One privilege case: production's access set up before the cutover, how the run ends,
/// and which of production's two users can log in before the run and after it.
type AccessCase = (&'static str, Path_, [bool; 2]);

/// Each case on a production of kind `production` (legacy and staging on the other
/// server, staging like production), side by side: the access after the run is exactly
/// the access before, and each user logs in after it exactly when it did before.
fn production_access_is_given_back(production: Dialect, cases: &[AccessCase]) {
    std::thread::scope(|s| {
        for (i, (setup, path, can_log_in)) in cases.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fsacc{i}");
                let site = site(
                    temp_db(other(production), &tag),
                    temp_db(production, &tag),
                    temp_db(production, &tag),
                    2,
                );
                privileges_case(&site, setup, *path, can_log_in);
            });
        }
    });
}

#[test]
fn postgres_production_access_is_given_back_exactly_on_every_path() {
    production_access_is_given_back(
        Dialect::Postgres,
        &[
            // The default ACL: PUBLIC may connect; the users get in through it.
            ("", Path_::Completes, [true, true]),
            ("", Path_::BackupFails, [true, true]),
            // PUBLIC may not connect; one users' role may, with the grant option; another not.
            (
                "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {u1} WITH GRANT OPTION",
                Path_::NoGo,
                [true, false],
            ),
            (
                "REVOKE CONNECT ON DATABASE {db} FROM PUBLIC; GRANT CONNECT ON DATABASE {db} TO {u1}",
                Path_::FailsAfterLoad,
                [true, false],
            ),
        ],
    );
}

#[test]
fn mariadb_production_account_locks_are_given_back_exactly() {
    // The second account was locked before the cutover: it stays locked, the first not.
    production_access_is_given_back(
        Dialect::MySql,
        &[
            (
                "ALTER USER '{u2}'@'%' ACCOUNT LOCK",
                Path_::Completes,
                [true, false],
            ),
            (
                "ALTER USER '{u2}'@'%' ACCOUNT LOCK",
                Path_::FailsAfterLoad,
                [true, false],
            ),
        ],
    );
}

/// `--until sign_off`, a privileged account changes the legacy behind the freeze, then the
/// resumed run reaches the load: caught, the rollback plan runs (exit 6), the legacy is
/// its application's again and production was never loaded.
#[test]
fn a_privileged_update_after_the_freeze_is_caught_before_the_load() {
    let rows: &[(Dialect, &str)] = &[
        // MariaDB: root is not bound by the revoked privileges.
        (
            Dialect::MySql,
            "UPDATE customers SET credit_limit = credit_limit + 1 ORDER BY legacy_id LIMIT 1",
        ),
        // PostgreSQL: a superuser asking for a read-write transaction.
        (
            Dialect::Postgres,
            "BEGIN READ WRITE; UPDATE customers SET name = name || '.' \
             WHERE legacy_id = (SELECT min(legacy_id) FROM customers); COMMIT;",
        ),
    ];
    std::thread::scope(|s| {
        for (i, (legacy, update)) in rows.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fswm{i}");
                let site = site(
                    temp_db(*legacy, &tag),
                    TempDb::postgres(&tag),
                    TempDb::postgres(&tag),
                    1,
                );
                let rb = small_batches(&site, None);
                let first = run(&site, &rb, None, &[&GO[..], &["--until", "sign_off"]].concat());
                assert_eq!(code(&first), 0, "{}", stderr(&first));
                assert!(!site.legacy_writable(), "{legacy:?}: the freeze does not hold");
                let counts_before = site.legacy.exec("SELECT COUNT(*) FROM customers");
                site.legacy.exec(update);
                assert_eq!(
                    site.legacy.exec("SELECT COUNT(*) FROM customers"),
                    counts_before,
                    "the change keeps the row count"
                );
                let out = run(&site, &rb, None, &[]);
                let err = stderr(&out);
                assert_eq!(code(&out), 6, "{legacy:?}: {err}");
                assert!(
                    err.contains("changed after the freeze: customers (was rows="),
                    "{legacy:?}: {err}"
                );
                assert!(site.legacy_writable(), "{legacy:?}: legacy not reopened");
                assert_eq!(
                    site.production.exec(
                        "SELECT COUNT(*) FROM information_schema.tables WHERE table_name = 'account_move' AND table_schema = 'public'"
                    ),
                    "0",
                    "{legacy:?}: the load started"
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
    let site = site(
        TempDb::mysql("fshold"),
        TempDb::postgres("fshold"),
        TempDb::postgres("fshold"),
        1,
    );
    let rb = small_batches(&site, None);
    let no_go = [
        "--sign-off",
        "Migration lead|migration_lead|no-go|credit limits wrong",
    ];
    let first = run(
        &site,
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
    let second = run(&site, &rb, None, &no_go);
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

/// What the legacy application may do, as the server shows it: MariaDB's `SHOW GRANTS`
/// of its account, sorted; PostgreSQL's settings of the legacy database (where the freeze
/// sets `default_transaction_read_only`).
fn legacy_access(site: &Site) -> String {
    match site.legacy.dialect {
        Dialect::MySql => {
            let mut v: Vec<String> =
                mariadb(&format!("SHOW GRANTS FOR '{}'@'%'", site.legacy_user))
                    .lines()
                    .map(String::from)
                    .collect();
            v.sort();
            v.join("\n")
        }
        _ => site.legacy.exec(
            "SELECT coalesce(array_to_string(s.setconfig, ','), '') FROM pg_database d \
             LEFT JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 \
             WHERE d.datname = current_database()",
        ),
    }
}

/// How a freeze kill case goes on a legacy server: the grants added before the cutover
/// (MariaDB: more than the usual four, so "exactly" means something), the privileges
/// `freeze_planned` must name, and what `legacy_access` shows of a frozen legacy.
struct FreezeFacts {
    legacy: Dialect,
    grant_more: &'static str,
    planned: &'static [&'static str],
    frozen_shows: &'static str,
}

const MARIADB_FREEZE: FreezeFacts = FreezeFacts {
    legacy: Dialect::MySql,
    grant_more: "GRANT CREATE, ALTER, INDEX, LOCK TABLES ON {db}.* TO '{user}'@'%'",
    planned: &[
        "INSERT",
        "UPDATE",
        "DELETE",
        "CREATE",
        "ALTER",
        "INDEX",
        "LOCK TABLES",
    ],
    frozen_shows: "GRANT SELECT ON `{db}`.*",
};

const POSTGRES_FREEZE: FreezeFacts = FreezeFacts {
    legacy: Dialect::Postgres,
    grant_more: "",
    planned: &[],
    frozen_shows: "default_transaction_read_only=on",
};

/// SIGKILL at `fault` inside the freeze (after `freeze_planned`, nothing revoked yet; or
/// after the freeze, before `freeze_applied`: the window where the journal used to know
/// nothing), then `then`: `cutover run` resumes and completes, the legacy stays frozen
/// and the journal's `freeze_applied` is what was planned, so giving that back restores
/// the legacy's access exactly; or `cutover rollback`: the legacy's access is exactly as
/// before the cutover.
fn a_kill_inside_the_freeze(facts: &FreezeFacts, rows: &[(&str, &str)]) {
    std::thread::scope(|s| {
        for (i, (fault, then)) in rows.iter().enumerate() {
            s.spawn(move || {
                let tag = format!("fzwin{i}");
                let site = site(
                    temp_db(facts.legacy, &tag),
                    TempDb::postgres(&tag),
                    TempDb::postgres(&tag),
                    1,
                );
                let fill = |t: &str| {
                    t.replace("{db}", &site.legacy.name)
                        .replace("{user}", &site.legacy_user)
                };
                if !facts.grant_more.is_empty() {
                    mariadb(&fill(facts.grant_more));
                }
                let before = legacy_access(&site);
                let rb = small_batches(&site, None);
                let killed = run(&site, &rb, Some(fault), &GO);
                assert_eq!(killed.status.code(), None, "{fault}: {}", stderr(&killed));
                let planned = site.records().iter().find_map(|r| match &r.event {
                    cutover::journal::events::Event::FreezePlanned { revoked, .. } => {
                        Some(revoked.clone())
                    }
                    _ => None,
                });
                let planned = planned.expect("freeze_planned is journaled before the revoke");
                let account = Site::app_account(&site.legacy, &site.legacy_user);
                for p in facts.planned {
                    assert!(
                        planned[&account].split(',').any(|x| x == *p),
                        "{p}: {planned:?}"
                    );
                }
                if fault.starts_with("before:freeze_applied") {
                    assert!(
                        !site.legacy_writable(),
                        "{fault}: the freeze had not happened"
                    );
                }
                if *then == "run" {
                    let out = run(&site, &rb, None, &GO);
                    let err = stderr(&out);
                    assert_eq!(code(&out), 0, "{fault}: {err}");
                    assert!(err.contains("resuming run"), "{err}");
                    // A completed cutover keeps the legacy read-only.
                    assert!(
                        !site.legacy_writable(),
                        "{fault}: legacy writable after the cutover"
                    );
                    let frozen = legacy_access(&site);
                    assert!(
                        frozen.contains(&fill(facts.frozen_shows)),
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
                        legacy_access(&site),
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
                        legacy_access(&site),
                        before,
                        "{fault}: access after the rollback"
                    );
                }
            });
        }
    });
}

/// On a MariaDB legacy: SHOW GRANTS of the application's account ends exactly as it was.
#[test]
fn a_kill_inside_the_mariadb_freeze_still_gives_back_exactly_what_was_held() {
    a_kill_inside_the_freeze(
        &MARIADB_FREEZE,
        &[
            ("before:freeze_applied:kill", "run"),
            ("before:freeze_applied:kill", "rollback"),
            ("after:freeze_planned:kill", "run"),
            ("after:freeze_planned:kill", "rollback"),
        ],
    );
}

/// On a PostgreSQL legacy: `cutover rollback` after a kill between the freeze and
/// `freeze_applied` resets `default_transaction_read_only` (it used to find no freeze in
/// the journal and leave the legacy read-only).
#[test]
fn a_kill_inside_the_postgres_freeze_is_undone_by_the_rollback() {
    a_kill_inside_the_freeze(
        &POSTGRES_FREEZE,
        &[("before:freeze_applied:kill", "rollback")],
    );
}
