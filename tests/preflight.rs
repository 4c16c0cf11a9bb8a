//! The preflight (`cutover check --connect`, and the start of `run` / `rehearse`) on the
//! real servers and on SQLite/CSV: every finding both passing and failing, each failure
//! asserted at the file:line of the runbook key it comes from, with its message.
//!
//! Each case builds its own databases, roles and accounts and drops them afterwards.

mod common;
use common::*;

use common::servers::{Users, runbook_ddl, temp_db, tms_pg};

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cutover::db::Dialect;
use cutover::demo::GenOptions;
use cutover::testdb::{TempDb, mariadb, psql};

fn small() -> GenOptions {
    GenOptions {
        seed: 7,
        customers: 20,
        vehicles: 10,
        drivers: 10,
        invoices: 30,
        dirty: false,
        dirty_pct: 0,
    }
}

/// Line (1-based) of the first line holding `needle` after the line holding `section`.
fn line_of(text: &str, section: &str, needle: &str) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let start = lines
        .iter()
        .position(|l| l.contains(section))
        .unwrap_or_else(|| panic!("no {section:?} in the runbook"));
    start
        + lines[start..]
            .iter()
            .position(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no {needle:?} after {section:?}"))
        + 1
}

/// A site on the servers (staging always PostgreSQL) and the small file systems a case
/// mounted (unmounted on drop).
struct Site {
    site: common::servers::Site,
    mounts: Vec<PathBuf>,
}

impl std::ops::Deref for Site {
    type Target = common::servers::Site;
    fn deref(&self) -> &Self::Target {
        &self.site
    }
}

impl std::ops::DerefMut for Site {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.site
    }
}

impl Site {
    fn new(legacy: Dialect, production: Dialect) -> Site {
        Site {
            site: common::servers::Site::new(
                temp_db(legacy, "pf_legacy"),
                TempDb::postgres("pf_staging"),
                temp_db(production, "pf_prod"),
                &small(),
                Users::Role,
            ),
            mounts: Vec::new(),
        }
    }

    /// The role (PostgreSQL) or account (MariaDB) of production's users.
    fn users_role(&self) -> &str {
        &self.users[0]
    }

    fn cutover(&self, cmd: &str, args: &[String], env: &[(String, String)]) -> Output {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let mut c = self.command(cmd, &tms_pg(), &args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    /// A login for `db` holding only `grants` (MariaDB: GRANT statements' privilege lists
    /// on the database; PostgreSQL: nothing but CONNECT, which PUBLIC has).
    fn low_user(&mut self, db: &TempDbRef, grants: &str) -> String {
        let name = format!("{}_low", db.name);
        self.extra.push(name.clone());
        match db.dialect {
            Dialect::MySql => {
                mariadb(&format!("CREATE USER '{name}'@'%'"));
                if !grants.is_empty() {
                    mariadb(&format!("GRANT {grants} ON {}.* TO '{name}'@'%'", db.name));
                }
                format!("mysql://{name}@127.0.0.1:3306/{}", db.name)
            }
            _ => {
                psql("postgres", &format!("CREATE ROLE {name} LOGIN"));
                format!("postgres://{name}@127.0.0.1:5432/{}", db.name)
            }
        }
    }

    /// Apply the runbook's own DDL for the production dialect to production.
    fn apply_schema(&self) {
        self.production.exec(&runbook_ddl(self.production.dialect));
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        for m in &self.mounts {
            let _ = Command::new("umount").arg("-l").arg(m).output();
        }
    }
}

/// What a case changes before the preflight runs: extra arguments and environment.
#[derive(Default)]
struct Tweak {
    args: Vec<String>,
    env: Vec<(String, String)>,
}

fn args(a: &[&str]) -> Tweak {
    Tweak {
        args: a.iter().map(|s| s.to_string()).collect(),
        env: vec![],
    }
}

/// A finding the case expects: its status, key, the runbook line (section, needle; or
/// `None` for a flag) and what its message says.
struct Expect {
    status: &'static str,
    key: String,
    at: Option<(&'static str, &'static str)>,
    says: Vec<String>,
}

fn fail(key: &str, at: Option<(&'static str, &'static str)>, says: &[&str]) -> Expect {
    Expect {
        status: "fail",
        key: key.into(),
        at,
        says: says.iter().map(|s| s.to_string()).collect(),
    }
}

fn pass(key: &str, at: Option<(&'static str, &'static str)>, says: &[&str]) -> Expect {
    Expect {
        status: "pass",
        ..fail(key, at, says)
    }
}

/// Run `check --connect --json` and assert each expectation against the findings.
fn assert_findings(out: &Output, runbook: &Path, expect: &[Expect], name: &str) {
    let text = std::fs::read_to_string(runbook).unwrap();
    let report = json(out);
    let findings = report["findings"].as_array().unwrap();
    let all = serde_json::to_string_pretty(findings).unwrap();
    for e in expect {
        let f = findings
            .iter()
            .find(|f| {
                f["status"] == e.status
                    && f["key"] == e.key.as_str()
                    && e.says
                        .iter()
                        .all(|s| f["message"].as_str().unwrap().contains(s))
            })
            .unwrap_or_else(|| {
                panic!(
                    "{name}: no {} finding at {} saying {:?}; findings:\n{all}\nstderr: {}",
                    e.status,
                    e.key,
                    e.says,
                    stderr(out)
                )
            });
        match e.at {
            Some((section, needle)) => {
                assert_eq!(
                    f["line"].as_u64().unwrap() as usize,
                    line_of(&text, section, needle),
                    "{name}: line of {}: {f}",
                    e.key
                );
                assert_eq!(f["file"], runbook.display().to_string(), "{name}");
            }
            None => assert_eq!(f["line"], 0, "{name}: a flag has no line: {f}"),
        }
    }
    let failed = findings.iter().any(|f| f["status"] == "fail");
    assert_eq!(report["ok"], !failed, "{name}");
    assert_eq!(
        code(out),
        if failed { 10 } else { 0 },
        "{name}: exit code\n{}",
        stderr(out)
    );
    if expect.iter().any(|e| e.status == "fail") {
        assert!(failed, "{name}: a finding should have failed:\n{all}");
    }
}

/// A folder holding only `tools` (name → script) and links to the real `others`.
fn fake_path(dir: &Path, tools: &[(&str, &str)], others: &[&str]) -> String {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("fakebin");
    std::fs::create_dir_all(&bin).unwrap();
    for (name, script) in tools {
        let p = bin.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{script}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    for o in others {
        let real = Command::new("sh")
            .args(["-c", &format!("command -v {o}")])
            .output()
            .unwrap();
        let real = String::from_utf8_lossy(&real.stdout).trim().to_string();
        assert!(!real.is_empty(), "{o} is needed on PATH for this test");
        std::os::unix::fs::symlink(real, bin.join(o)).unwrap();
    }
    bin.display().to_string()
}

type Setup = fn(&mut Site) -> Tweak;

struct Case {
    name: &'static str,
    legacy: Dialect,
    production: Dialect,
    setup: Setup,
    expect: fn(&Site) -> Vec<Expect>,
}

fn cases() -> Vec<Case> {
    use Dialect::{MySql, Postgres};
    vec![
        Case {
            name: "everything in place (MariaDB legacy, PostgreSQL production)",
            legacy: MySql,
            production: Postgres,
            setup: |_| Tweak::default(),
            expect: |s| {
                vec![
                    pass(
                        "environments.legacy.url",
                        Some(("[environments.legacy]", "url =")),
                        &["connected to", "MariaDB"],
                    ),
                    pass(
                        "entities.customers.source",
                        Some(("[entities.customers]", "source =")),
                        &["legacy table customers: the 8 columns exist"],
                    ),
                    pass(
                        "environments.legacy.app_users",
                        Some(("[environments.legacy]", "app_users =")),
                        &[&format!("{}@%", s.legacy_user), "exist"],
                    ),
                    pass(
                        "environments.production.app_users",
                        Some(("[environments.production]", "app_users =")),
                        &[s.users_role(), "exist"],
                    ),
                    pass(
                        "environments.legacy.url",
                        Some(("[environments.legacy]", "url =")),
                        &["may freeze"],
                    ),
                    pass(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &["may back up"],
                    ),
                    pass(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &["may close"],
                    ),
                    pass(
                        "steps[0].kind",
                        Some(("id = \"backup\"", "kind =")),
                        &["pg_dump 15", "PostgreSQL 15 server"],
                    ),
                    pass(
                        "vars.backup_dir",
                        Some(("[vars]", "backup_dir =")),
                        &["is writable", "free for a database of"],
                    ),
                    pass(
                        "schema.postgres",
                        Some(("[schema]", "postgres =")),
                        &["holds none of the runbook's 4 tables"],
                    ),
                    pass("--artifacts", None, &["is writable"]),
                    pass("--journal", None, &["is writable"]),
                ]
            },
        },
        Case {
            name: "legacy table missing",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                s.legacy.exec("DROP TABLE vehicles");
                Tweak::default()
            },
            expect: |s| {
                vec![fail(
                    "entities.vehicles.source",
                    Some(("[entities.vehicles]", "source =")),
                    &[&format!(
                        "legacy table vehicles does not exist in mysql://root@127.0.0.1:3306/{}",
                        s.legacy.name
                    )],
                )]
            },
        },
        Case {
            name: "legacy column missing (MariaDB)",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                s.legacy.exec("ALTER TABLE drivers DROP COLUMN license_no");
                Tweak::default()
            },
            expect: |_| {
                vec![fail(
                    "entities.drivers.columns[2]",
                    Some(("[entities.drivers]", "columns =")),
                    &[
                        "column drivers.license_no does not exist",
                        "the table has: legacy_id, name, license_expiry",
                    ],
                )]
            },
        },
        Case {
            name: "legacy column missing (PostgreSQL)",
            legacy: Postgres,
            production: Postgres,
            setup: |s| {
                s.legacy
                    .exec("ALTER TABLE open_invoices DROP COLUMN currency");
                Tweak::default()
            },
            expect: |_| {
                vec![fail(
                    "entities.open_invoices.columns[3]",
                    Some(("[entities.open_invoices]", "columns =")),
                    &["column open_invoices.currency does not exist"],
                )]
            },
        },
        Case {
            name: "production role named in app_users missing",
            legacy: MySql,
            production: Postgres,
            setup: |_| args(&["--var", "production_users_role=cutover_no_such_role"]),
            expect: |_| {
                vec![fail(
                    "environments.production.app_users",
                    Some(("[environments.production]", "app_users =")),
                    &["role(s) cutover_no_such_role do not exist on postgres://"],
                )]
            },
        },
        Case {
            name: "legacy account named in app_users missing",
            legacy: MySql,
            production: Postgres,
            setup: |_| args(&["--var", "legacy_app_users=cutover_ghost@%"]),
            expect: |_| {
                vec![fail(
                    "environments.legacy.app_users",
                    Some(("[environments.legacy]", "app_users =")),
                    &["account(s) 'cutover_ghost'@'%' do not exist on mysql://"],
                )]
            },
        },
        Case {
            name: "PostgreSQL production through a login that owns nothing",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                let url = s.low_user(&s.production.clone_ref(), "");
                args(&["--var", &format!("production_url={url}")])
            },
            expect: |s| {
                vec![
                    fail(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &[
                            &format!(
                                "{}_low may not close {} to its users",
                                s.production.name, s.production.name
                            ),
                            &format!("ownership of database {}", s.production.name),
                            "membership of pg_signal_backend",
                        ],
                    ),
                    fail(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &[
                            "may not write the target tables",
                            "CREATE on the current schema",
                        ],
                    ),
                    pass(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &["connected to"],
                    ),
                ]
            },
        },
        Case {
            name: "PostgreSQL legacy through a login that neither owns nor reads it",
            legacy: Postgres,
            production: Postgres,
            setup: |s| {
                let url = s.low_user(&s.legacy.clone_ref(), "");
                args(&["--var", &format!("legacy_url={url}")])
            },
            expect: |s| {
                vec![
                    pass(
                        "entities.customers.source",
                        Some(("[entities.customers]", "source =")),
                        &["legacy table customers: the 8 columns exist"],
                    ),
                    fail(
                        "environments.legacy.url",
                        Some(("[environments.legacy]", "url =")),
                        &[
                            "may not read the legacy tables",
                            "SELECT on customers",
                            "SELECT on open_invoices",
                        ],
                    ),
                    fail(
                        "environments.legacy.url",
                        Some(("[environments.legacy]", "url =")),
                        &[
                            &format!("may not freeze {}", s.legacy.name),
                            &format!("ownership of database {}", s.legacy.name),
                            "membership of pg_signal_backend",
                        ],
                    ),
                ]
            },
        },
        Case {
            name: "journal on a PostgreSQL server that does not answer",
            legacy: MySql,
            production: Postgres,
            setup: |_| args(&["--journal", "postgres://postgres@127.0.0.1:1/journal"]),
            expect: |_| {
                vec![fail(
                    "--journal",
                    None,
                    &["cannot connect to postgres://postgres@127.0.0.1:1/journal"],
                )]
            },
        },
        Case {
            name: "MariaDB legacy through an account that may only read",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                let url = s.low_user(&s.legacy.clone_ref(), "SELECT");
                args(&["--var", &format!("legacy_url={url}")])
            },
            expect: |s| {
                vec![
                    pass(
                        "environments.legacy.url",
                        Some(("[environments.legacy]", "url =")),
                        &["may read the legacy tables"],
                    ),
                    fail(
                        "environments.legacy.url",
                        Some(("[environments.legacy]", "url =")),
                        &[
                            &format!("{}_low may not freeze", s.legacy.name),
                            "GRANT OPTION",
                            "PROCESS (global)",
                            "CONNECTION ADMIN or SUPER",
                            "SELECT on `mysql`",
                        ],
                    ),
                    fail(
                        "environments.legacy.app_users",
                        Some(("[environments.legacy]", "app_users =")),
                        &["cannot look the accounts up", "SELECT on mysql.user"],
                    ),
                ]
            },
        },
        Case {
            name: "MariaDB production through an account that cannot dump triggers or lock accounts",
            legacy: MySql,
            production: MySql,
            setup: |s| {
                let url = s.low_user(
                    &s.production.clone_ref(),
                    "SELECT, INSERT, UPDATE, CREATE, DROP, ALTER, INDEX, LOCK TABLES, CREATE VIEW",
                );
                args(&["--var", &format!("production_url={url}")])
            },
            expect: |s| {
                vec![
                    fail(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &[
                            "may not back up",
                            &format!("SHOW VIEW on `{}`", s.production.name),
                            "TRIGGER on",
                            "SELECT on mysql.proc",
                        ],
                    ),
                    fail(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &[
                            "may not lock and unlock the application's accounts",
                            "CREATE USER (global)",
                            "PROCESS (global)",
                        ],
                    ),
                    pass(
                        "environments.production.url",
                        Some(("[environments.production]", "url =")),
                        &["may write the target tables"],
                    ),
                    pass(
                        "steps[0].kind",
                        Some(("id = \"backup\"", "kind =")),
                        &["mariadb-dump", "MariaDB"],
                    ),
                ]
            },
        },
        Case {
            name: "pg_dump not on PATH",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                let path = fake_path(s.dir.path(), &[], &[]);
                Tweak {
                    args: vec![],
                    env: vec![("PATH".into(), path)],
                }
            },
            expect: |_| {
                vec![
                    fail(
                        "steps[0].kind",
                        Some(("id = \"backup\"", "kind =")),
                        &["cannot run pg_dump"],
                    ),
                    fail(
                        "steps[0].kind",
                        Some(("id = \"backup\"", "kind =")),
                        &["cannot run pg_restore"],
                    ),
                ]
            },
        },
        Case {
            name: "pg_dump older than the server",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                let path = fake_path(
                    s.dir.path(),
                    &[("pg_dump", "echo 'pg_dump (PostgreSQL) 14.9'")],
                    &["pg_restore"],
                );
                Tweak {
                    args: vec![],
                    env: vec![("PATH".into(), path)],
                }
            },
            expect: |_| {
                vec![
                    fail(
                        "steps[0].kind",
                        Some(("id = \"backup\"", "kind =")),
                        &["pg_dump 14.9 is older than the server (PostgreSQL 15)"],
                    ),
                    pass(
                        "steps[0].kind",
                        Some(("id = \"backup\"", "kind =")),
                        &["pg_restore 15"],
                    ),
                ]
            },
        },
        Case {
            name: "MariaDB production holding a FLOAT column the dump cannot restore exactly",
            legacy: MySql,
            production: MySql,
            setup: |s| {
                s.production
                    .exec("CREATE TABLE sensor (id INT PRIMARY KEY, reading FLOAT)");
                Tweak::default()
            },
            expect: |_| {
                vec![fail(
                    "steps[0].kind",
                    Some(("id = \"backup\"", "kind =")),
                    &[
                        "the backup could not restore",
                        "sensor.reading (float)",
                        "6 significant digits",
                    ],
                )]
            },
        },
        Case {
            name: "mariadb-dump not on PATH",
            legacy: MySql,
            production: MySql,
            setup: |s| {
                let path = fake_path(s.dir.path(), &[], &["mariadb"]);
                Tweak {
                    args: vec![],
                    env: vec![("PATH".into(), path)],
                }
            },
            expect: |_| {
                vec![fail(
                    "steps[0].kind",
                    Some(("id = \"backup\"", "kind =")),
                    &["cannot run mariadb-dump"],
                )]
            },
        },
        Case {
            name: "artifacts folder cannot be created",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                std::fs::write(s.dir.path().join("file.txt"), "not a folder").unwrap();
                let a = s.dir.path().join("file.txt/runs").display().to_string();
                Tweak {
                    args: vec!["--artifacts".into(), a],
                    env: vec![],
                }
            },
            expect: |s| {
                vec![fail(
                    "--artifacts",
                    None,
                    &[&format!(
                        "{} is not a folder",
                        s.dir.path().join("file.txt").display()
                    )],
                )]
            },
        },
        Case {
            name: "backup folder on a disk smaller than production",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                // Production (an empty PostgreSQL database) is several MiB on disk.
                let small = s.dir.path().join("small");
                std::fs::create_dir_all(&small).unwrap();
                let out = Command::new("mount")
                    .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
                    .arg(&small)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "this case mounts a 1 MiB tmpfs and needs the right to: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                s.mounts.push(small.clone());
                args(&[
                    "--var",
                    &format!("backup_dir={}", small.join("backups").display()),
                ])
            },
            expect: |s| {
                vec![fail(
                    "vars.backup_dir",
                    Some(("[vars]", "backup_dir =")),
                    &[
                        &format!("1.0 MiB free in {}", s.dir.path().join("small").display()),
                        "MiB on disk: the backup may not fit",
                    ],
                )]
            },
        },
        Case {
            name: "backup folder cannot be created",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                std::fs::write(s.dir.path().join("file.txt"), "not a folder").unwrap();
                let b = s.dir.path().join("file.txt/backups").display().to_string();
                args(&["--var", &format!("backup_dir={b}")])
            },
            expect: |_| {
                vec![fail(
                    "vars.backup_dir",
                    Some(("[vars]", "backup_dir =")),
                    &["is not a folder"],
                )]
            },
        },
        Case {
            name: "production holds the tables but one lacks a mapped column",
            legacy: MySql,
            production: Postgres,
            setup: |s| {
                s.apply_schema();
                s.production
                    .exec("ALTER TABLE fleet_vehicle DROP COLUMN vin_sn");
                Tweak::default()
            },
            expect: |_| {
                vec![
                    fail(
                        "entities.vehicles.map.vin_sn",
                        Some(("[entities.vehicles.map]", "vin_sn =")),
                        &["column fleet_vehicle.vin_sn does not exist"],
                    ),
                    pass(
                        "entities.customers.target",
                        Some(("[entities.customers]", "target =")),
                        &["table res_partner has the 7 mapped columns"],
                    ),
                ]
            },
        },
        Case {
            name: "production holds some of the tables",
            legacy: MySql,
            production: MySql,
            setup: |s| {
                s.apply_schema();
                s.production.exec("DROP TABLE hr_employee");
                Tweak::default()
            },
            expect: |_| {
                vec![fail(
                    "entities.drivers.target",
                    Some(("[entities.drivers]", "target =")),
                    &[
                        "table hr_employee does not exist",
                        "its schema is not applied",
                    ],
                )]
            },
        },
    ]
}

trait CloneRef {
    fn clone_ref(&self) -> TempDbRef;
}

/// What `low_user` needs of a database, without holding a borrow of the site.
struct TempDbRef {
    dialect: Dialect,
    name: String,
}

impl CloneRef for TempDb {
    fn clone_ref(&self) -> TempDbRef {
        TempDbRef {
            dialect: self.dialect,
            name: self.name.clone(),
        }
    }
}

#[test]
fn preflight_findings_on_the_servers() {
    // Four cases at a time: each mostly waits for its databases.
    let failures = std::sync::Mutex::new(Vec::new());
    let mut groups: Vec<Vec<Case>> = (0..4).map(|_| Vec::new()).collect();
    for (i, c) in cases().into_iter().enumerate() {
        groups[i % 4].push(c);
    }
    std::thread::scope(|scope| {
        for group in groups {
            let failures = &failures;
            scope.spawn(move || {
                for case in group {
                    let t0 = std::time::Instant::now();
                    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                        let mut site = Site::new(case.legacy, case.production);
                        let tweak = (case.setup)(&mut site);
                        let mut a = vec!["--connect".to_string(), "--json".into()];
                        a.extend(tweak.args.clone());
                        let out = site.cutover("check", &a, &tweak.env);
                        let expect = (case.expect)(&site);
                        assert_findings(&out, &tms_pg(), &expect, case.name)
                    }));
                    eprintln!("{}: {:.1}s", case.name, t0.elapsed().as_secs_f64());
                    if let Err(e) = r {
                        failures.lock().unwrap().push(format!(
                            "{}: {}",
                            case.name,
                            e.downcast_ref::<String>().cloned().unwrap_or_default()
                        ));
                    }
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The text form names file:line and key, and `run` / `rehearse` refuse to start on a
/// failed finding: exit 10, nothing journaled, production still open to its users, the
/// legacy not frozen.
#[test]
fn run_and_rehearse_refuse_to_start_on_a_failed_finding() {
    let site = Site::new(Dialect::MySql, Dialect::Postgres);
    site.legacy.exec("DROP TABLE vehicles");
    let text = std::fs::read_to_string(tms_pg()).unwrap();
    let line = line_of(&text, "[entities.vehicles]", "source =");
    let expected = format!(
        "✗ {}:{line}: entities.vehicles.source: legacy table vehicles does not exist",
        tms_pg().display()
    );

    let out = site.cutover("check", &["--connect".into()], &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(code(&out), 10, "{stdout}{}", stderr(&out));
    assert!(stdout.contains(&expected), "{expected:?} not in\n{stdout}");
    assert!(stdout.contains("    hint: fix source.table"), "{stdout}");
    assert!(
        stdout.contains(&format!("✓ {}:", tms_pg().display())),
        "passing findings are listed too: {stdout}"
    );
    assert!(stdout.contains(", 1 failed"), "{stdout}");

    let mut go: Vec<String> = vec!["--headless".into()];
    go.extend(GO.iter().map(|s| s.to_string()));
    let out = site.cutover("run", &go, &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    assert!(err.contains(&expected), "{expected:?} not in\n{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(!err.contains("✓ "), "only what failed is shown: {err}");
    let verify = Command::new(BIN)
        .args(["journal", "verify", "--journal"])
        .arg(site.dir.path().join("journal.db"))
        .output()
        .unwrap();
    let v = String::from_utf8_lossy(&verify.stdout);
    assert!(v.contains(": 0 records"), "nothing journaled: {v}");
    assert_eq!(
        psql(
            "postgres",
            &format!(
                "SELECT has_database_privilege('{}', '{}', 'CONNECT')",
                site.users_role(),
                site.production.name
            )
        ),
        "t",
        "production is still open to its users"
    );
    assert_eq!(
        site.production
            .exec("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"),
        "0",
        "no schema applied to production"
    );
    let grants = mariadb(&format!("SHOW GRANTS FOR '{}'@'%'", site.legacy_user));
    assert!(
        grants.contains("INSERT"),
        "the legacy is not frozen: {grants}"
    );
    assert!(
        !site.dir.path().join("backups").exists(),
        "no backup was taken"
    );

    // A rehearsal checks what it uses: here the staging it cannot reach.
    let out = site.cutover(
        "rehearse",
        &[
            "--headless".into(),
            "--var".into(),
            "staging_url=postgres://postgres@127.0.0.1:1/x".into(),
        ],
        &[],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    let staging_line = line_of(&text, "[environments.staging]", "url =");
    assert!(
        err.contains(&format!(
            "✗ {}:{staging_line}: environments.staging.url: environment 'staging': cannot connect to postgres://postgres@127.0.0.1:1/x",
            tms_pg().display()
        )),
        "{err}"
    );
    assert!(err.contains("Connection refused"), "{err}");
}

/// SQLite and CSV: the same findings where the legacy is a SQLite file or the CSV files in
/// extract_dir, and the targets SQLite files (created by the run when absent).
#[test]
fn preflight_findings_on_sqlite_and_csv() {
    type Prep = fn(&Scratch) -> Vec<String>;
    fn legacy_db(s: &Scratch) -> Vec<String> {
        let p = s.path("legacy.db");
        block_on(cutover::demo::write_legacy_sqlite(&p, &small())).unwrap();
        vec!["--var".into(), format!("legacy_url={}", s.url("legacy.db"))]
    }
    let rb_path = tms();
    let cases: Vec<(&str, Prep, Vec<Expect>)> = vec![
        (
            "CSV extract and new SQLite targets",
            |_| vec![],
            vec![
                pass(
                    "entities.customers.source",
                    Some(("[entities.customers]", "source =")),
                    &["customers.csv: the header has the 8 columns"],
                ),
                pass(
                    "environments.production.url",
                    Some(("[environments.production]", "url =")),
                    &["does not exist yet: the run creates it"],
                ),
                pass(
                    "schema.sqlite",
                    Some(("[schema]", "sqlite =")),
                    &["production holds none of the runbook's 4 tables"],
                ),
                pass(
                    "vars.backup_dir",
                    Some(("[vars]", "backup_dir =")),
                    &["is writable"],
                ),
            ],
        ),
        (
            "CSV file missing",
            |s| {
                std::fs::remove_file(s.path("extract/drivers.csv")).unwrap();
                vec![]
            },
            vec![fail(
                "entities.drivers.source",
                Some(("[entities.drivers]", "source =")),
                &["drivers.csv is missing (extract_dir = "],
            )],
        ),
        (
            "CSV header lacks a column",
            |s| {
                let p = s.path("extract/customers.csv");
                let t = std::fs::read_to_string(&p)
                    .unwrap()
                    .replacen(",email,", ",mail,", 1);
                std::fs::write(&p, t).unwrap();
                vec![]
            },
            vec![fail(
                "entities.customers.columns",
                Some(("[entities.customers]", "columns =")),
                &["customers.csv: line 1: missing column(s) email"],
            )],
        ),
        (
            "SQLite legacy in place",
            legacy_db,
            vec![
                pass(
                    "entities.vehicles.source",
                    Some(("[entities.vehicles]", "source =")),
                    &["legacy table vehicles: the 7 columns exist and their types are readable"],
                ),
                pass(
                    "environments.legacy.url",
                    Some(("[environments.legacy]", "url =")),
                    &["connected to sqlite", "SQLite 3"],
                ),
            ],
        ),
        (
            "SQLite legacy column missing",
            |s| {
                let f = legacy_db(s);
                sqlite(
                    &s.path("legacy.db"),
                    "ALTER TABLE customers DROP COLUMN phone",
                );
                f
            },
            vec![fail(
                "entities.customers.columns[3]",
                Some(("[entities.customers]", "columns =")),
                &["column customers.phone does not exist"],
            )],
        ),
        (
            "SQLite legacy table missing",
            |s| {
                let f = legacy_db(s);
                sqlite(&s.path("legacy.db"), "DROP TABLE drivers");
                f
            },
            vec![fail(
                "entities.drivers.source",
                Some(("[entities.drivers]", "source =")),
                &["legacy table drivers does not exist in sqlite"],
            )],
        ),
        (
            "SQLite legacy file missing",
            |s| vec!["--var".into(), format!("legacy_url={}", s.url("nope.db"))],
            vec![fail(
                "environments.legacy.url",
                Some(("[environments.legacy]", "url =")),
                &["the SQLite file", "nope.db does not exist"],
            )],
        ),
        (
            "SQLite production lacks a mapped column",
            |s| {
                let rb: toml::Value =
                    toml::from_str(&std::fs::read_to_string(tms()).unwrap()).unwrap();
                let p = s.path("production.db");
                sqlite(&p, rb["schema"]["sqlite"].as_str().unwrap());
                sqlite(&p, "ALTER TABLE res_partner DROP COLUMN city");
                vec![]
            },
            vec![
                fail(
                    "entities.customers.map.city",
                    Some(("[entities.customers.map]", "city =")),
                    &["column res_partner.city does not exist"],
                ),
                pass(
                    "entities.vehicles.target",
                    Some(("[entities.vehicles]", "target =")),
                    &["table fleet_vehicle has the 7 mapped columns"],
                ),
            ],
        ),
    ];
    let mut failures = Vec::new();
    for (name, prep, expect) in cases {
        let s = Scratch::with_fixture("small");
        let mut args: Vec<String> = vec!["--connect".into(), "--json".into()];
        args.extend(prep(&s));
        let out = Command::new(BIN)
            .arg("check")
            .arg(&rb_path)
            .args(s.flags().into_iter().filter(|f| f != "--headless"))
            .args(&args)
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_ARTIFACTS")
            .output()
            .unwrap();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            assert_findings(&out, &rb_path, &expect, name)
        }));
        if let Err(e) = r {
            failures.push(format!(
                "{name}: {}",
                e.downcast_ref::<String>().cloned().unwrap_or_default()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
