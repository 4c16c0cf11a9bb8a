//! A MariaDB restart and a PostgreSQL restart during each data phase (extract, dry run,
//! load), one row per case. The run is paused at a point of the phase (`CUTOVER_FAULT`),
//! the server that phase talks to is stopped, the pause ends while it is down, and a
//! guard starts it again a few seconds later. Documented end state: the phase retries
//! (`retry_scheduled` in the journal), the run completes (exit 0), and production holds
//! exactly what an uninterrupted run of the same site leaves.
//!
//! Two layouts so that each server meets each phase: MariaDB legacy → PostgreSQL staging
//! and production, and PostgreSQL legacy → MariaDB staging and production.
//!
//! Its own test binary, one test: it stops the local servers, so it first takes the
//! servers' test lock (`testdb::stop_servers_turn`) and restarts a server in a guard,
//! panics included.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cutover::db::Dialect;
use cutover::demo::GenOptions;
use cutover::testdb::{TempDb, mariadb};

const RUN_DEADLINE: Duration = Duration::from_secs(120);
/// How long the run pauses in the phase (`pause=5s` in the cases): the server is stopped
/// within it and stays down past its end.
const PAUSE: Duration = Duration::from_secs(5);
const OUTAGE_AFTER_PAUSE: Duration = Duration::from_millis(6500);

#[derive(Clone, Copy, Debug, PartialEq)]
enum Server {
    Postgres,
    MariaDb,
}

fn pg_version() -> String {
    let mut v: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql is missing: this test drives the local PostgreSQL cluster")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v.pop().expect("no cluster under /etc/postgresql")
}

fn run_ok(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run it: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// MariaDB answers a query (bounded: a server shutting down may accept and never answer).
fn mariadb_up() -> bool {
    Command::new("timeout")
        .args([
            "5",
            "mariadb",
            "--connect-timeout=2",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
        ])
        .args(["-N", "-e", "SELECT 1"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The MariaDB server process is running.
fn mariadbd_running() -> bool {
    Command::new("pgrep")
        .args(["-x", "mariadbd"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// The server is down while this lives; dropping it (also while unwinding) starts it.
struct Down {
    server: Server,
    since: Instant,
}

impl Down {
    fn stop(server: Server) -> Down {
        match server {
            Server::Postgres => run_ok(
                Command::new("pg_ctlcluster").args([
                    "--skip-systemctl-redirect",
                    &pg_version(),
                    "main",
                    "stop",
                    "-m",
                    "fast",
                ]),
                "pg_ctlcluster stop",
            ),
            Server::MariaDb => {
                run_ok(
                    Command::new("timeout").args([
                        "30",
                        "mariadb-admin",
                        "-h",
                        "127.0.0.1",
                        "-u",
                        "root",
                        "shutdown",
                    ]),
                    "mariadb-admin shutdown",
                );
                let t0 = Instant::now();
                while mariadbd_running() && t0.elapsed() < Duration::from_secs(30) {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
        Down {
            server,
            since: Instant::now(),
        }
    }
}

impl Drop for Down {
    fn drop(&mut self) {
        let started = match self.server {
            // `start` waits until the server accepts connections.
            Server::Postgres => Command::new("pg_ctlcluster")
                .args(["--skip-systemctl-redirect", &pg_version(), "main", "start"])
                .output()
                .is_ok_and(|o| o.status.success()),
            Server::MariaDb => {
                let _ = Command::new("start-stop-daemon")
                    .args([
                        "--start",
                        "--oknodo",
                        "--background",
                        "--exec",
                        "/usr/sbin/mariadbd",
                    ])
                    .output();
                let t0 = Instant::now();
                while !mariadb_up() && t0.elapsed() < Duration::from_secs(60) {
                    std::thread::sleep(Duration::from_millis(200));
                }
                mariadb_up()
            }
        };
        eprintln!(
            "{:?} was down for {:.1?}",
            self.server,
            self.since.elapsed()
        );
        if !started {
            let msg = format!(
                "could not start {:?} again; start it with: pg_ctlcluster --skip-systemctl-redirect {} main start \
                 / start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd",
                self.server,
                pg_version()
            );
            if std::thread::panicking() {
                eprintln!("{msg}");
            } else {
                panic!("{msg}");
            }
        }
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        if let Some(u) = &self.legacy_user {
            let _ = Command::new("mariadb")
                .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                .arg(format!("DROP USER IF EXISTS '{u}'@'%'"))
                .output();
        }
    }
}

/// The run under test; killed if the test ends before it does.
struct Run(Child);

impl Drop for Run {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

struct Site {
    dir: tempfile::TempDir,
    /// The legacy application's MariaDB account (the freeze revokes its writes).
    legacy_user: Option<String>,
    legacy: TempDb,
    staging: TempDb,
    production: TempDb,
}

impl Site {
    /// `legacy` is the legacy's server; staging and production are on the other one.
    fn new(legacy: Server, tag: &str) -> Site {
        let (l, t) = match legacy {
            Server::MariaDb => (
                TempDb::mysql(tag),
                [TempDb::postgres(tag), TempDb::postgres(tag)],
            ),
            Server::Postgres => (
                TempDb::postgres(tag),
                [TempDb::mysql(tag), TempDb::mysql(tag)],
            ),
        };
        let opts = GenOptions {
            customers: 200,
            vehicles: 40,
            drivers: 30,
            invoices: 300,
            ..GenOptions::demo()
        };
        common::servers::fill_legacy(&l, &opts);
        let [staging, production] = t;
        let legacy_user = (legacy == Server::MariaDb).then(|| {
            let u = format!("{}_app", l.name);
            mariadb(&format!(
                "CREATE USER '{u}'@'%'; GRANT SELECT, INSERT, UPDATE, DELETE ON {}.* TO '{u}'@'%'",
                l.name
            ));
            u
        });
        let site = Site {
            dir: tempfile::tempdir().unwrap(),
            legacy_user,
            legacy: l,
            staging,
            production,
        };
        // Small batches, and retries that outlast a restart.
        let text = std::fs::read_to_string(repo().join("runbooks/tms-postgres.toml"))
            .unwrap()
            .replace(
                "batch_size = 5000",
                "batch_size = 50\nretries = 8\nretry_delay = \"500ms\"",
            );
        assert!(
            text.contains("retries = 8"),
            "the runbook's batch_size moved"
        );
        std::fs::write(site.path("runbook.toml"), text).unwrap();
        site
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// `cutover run` with every sign-off; `fault` pauses it at a point of a phase.
    fn spawn(&self, fault: Option<&str>) -> Run {
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(self.path("runbook.toml"))
            .arg("--headless")
            .args(GO);
        for (k, v) in [
            ("legacy_url", self.legacy.url()),
            ("staging_url", self.staging.url()),
            ("production_url", self.production.url()),
            (
                "legacy_app_users",
                self.legacy_user
                    .as_ref()
                    .map(|u| format!("{u}@%"))
                    .unwrap_or_default(),
            ),
            ("production_users_role", String::new()),
            ("extract_dir", self.path("extract").display().to_string()),
            ("backup_dir", self.path("backups").display().to_string()),
        ] {
            cmd.arg("--var").arg(format!("{k}={v}"));
        }
        cmd.arg("--journal")
            .arg(self.path("journal.db"))
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT")
            // Files, not pipes: a full pipe would stall the run.
            .stdout(std::fs::File::create(self.path("stdout")).unwrap())
            .stderr(std::fs::File::create(self.path("stderr")).unwrap());
        if let Some(f) = fault {
            cmd.env("CUTOVER_FAULT", f);
        }
        Run(cmd.spawn().unwrap())
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Journal rows matching `filter` (SQL over `events`), read while the run writes.
    fn journaled(&self, filter: &str) -> u64 {
        let journal = self.path("journal.db");
        if !journal.exists()
            || sqlite(
                &journal,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            ) != "1"
        {
            return 0;
        }
        sqlite(
            &journal,
            &format!("SELECT COUNT(*) FROM events WHERE {filter}"),
        )
        .parse()
        .unwrap_or(0)
    }

    /// Poll until `ready` or the run's end (its exit code); panic at the deadline.
    fn watch(&self, run: &mut Run, ready: impl Fn() -> bool) -> Option<i32> {
        let t0 = Instant::now();
        loop {
            if ready() {
                return None;
            }
            if let Some(s) = run.0.try_wait().unwrap() {
                return Some(s.code().unwrap_or(-1));
            }
            assert!(
                t0.elapsed() < RUN_DEADLINE,
                "the run is still going after {RUN_DEADLINE:?}\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn wait_exit(&self, run: &mut Run) -> i32 {
        self.watch(run, || false)
            .expect("only the end ends this wait")
    }
}

/// Per production table: rows and an MD5 over their content, by the server, without the
/// surrogate `id` (a retried batch may use up sequence values); an invoice's partner by
/// its business key.
fn content(db: &TempDb) -> String {
    let tables: [(&str, &str); 4] = [
        (
            "res_partner",
            "ref, name, email, phone, city, create_date, credit_limit",
        ),
        (
            "fleet_vehicle",
            "ref, license_plate, vin_sn, make, model, model_year, capacity_kg",
        ),
        ("hr_employee", "ref, name, license_no, license_expiry"),
        (
            "account_move",
            "name, (SELECT p.ref FROM res_partner p WHERE p.id = x.partner_id), invoice_date, currency, \
             amount_untaxed, amount_tax, amount_total, amount_residual, payment_state",
        ),
    ];
    tables
        .iter()
        .map(|(t, cols)| {
            let v = match db.dialect {
                Dialect::Postgres => db.exec(&format!(
                    "SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(r, '|' ORDER BY r)), '-') \
                     FROM (SELECT (ROW({cols}))::text AS r FROM {t} x) s"
                )),
                _ => {
                    let each: Vec<String> = split_cols(cols)
                        .iter()
                        .map(|c| format!("IFNULL(CAST({c} AS CHAR), '\\\\N')"))
                        .collect();
                    db.exec(&format!(
                        "SET SESSION group_concat_max_len = 100000000; \
                         SELECT CONCAT(COUNT(*), ' rows, md5 ', IFNULL(MD5(GROUP_CONCAT(r ORDER BY r SEPARATOR '|')), '-')) \
                         FROM (SELECT CONCAT_WS(',', {}) AS r FROM {t} x) s",
                        each.join(", ")
                    ))
                }
            };
            format!("{t}: {v}")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Top-level commas of a column list (not those inside the sub-select's parentheses).
fn split_cols(cols: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth) = (Vec::new(), String::new(), 0);
    for ch in cols.chars() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    out.push(cur.trim().to_string());
    out
}

struct Case {
    /// The legacy's server (staging and production are on the other one).
    legacy: Server,
    /// The server restarted.
    restarted: Server,
    /// Where the run pauses; when the journal holds `seen`, the server goes down.
    fault: &'static str,
    seen: &'static str,
}

// The pauses name the invoices (the entity with the most batches) and the phase: entities
// load concurrently, so a pause on whichever batch commits second could hold an entity
// with nothing left to write while the others finish the phase before the server stops.
const INVOICES_SECOND_DRY_RUN_BATCH: &str = "kind = 'batch_committed' \
    AND json_extract(payload, '$.phase') = 'dry_run' \
    AND json_extract(payload, '$.entity') = 'open_invoices' AND json_extract(payload, '$.batch') >= 2";
const INVOICES_SECOND_LOAD_BATCH: &str = "kind = 'batch_committed' \
    AND json_extract(payload, '$.phase') = 'load' \
    AND json_extract(payload, '$.entity') = 'open_invoices' AND json_extract(payload, '$.batch') >= 2";

const CASES: &[Case] = &[
    Case {
        legacy: Server::MariaDb,
        restarted: Server::MariaDb,
        fault: "after:step_started.extract:pause=5s",
        seen: "kind = 'step_started' AND json_extract(payload, '$.step') = 'extract'",
    },
    Case {
        legacy: Server::MariaDb,
        restarted: Server::Postgres,
        fault: "after:batch_committed.dry_run.open_invoices#2:pause=5s",
        seen: INVOICES_SECOND_DRY_RUN_BATCH,
    },
    Case {
        legacy: Server::MariaDb,
        restarted: Server::Postgres,
        fault: "after:batch_committed.load.open_invoices#2:pause=5s",
        seen: INVOICES_SECOND_LOAD_BATCH,
    },
    Case {
        legacy: Server::Postgres,
        restarted: Server::Postgres,
        fault: "after:step_started.extract:pause=5s",
        seen: "kind = 'step_started' AND json_extract(payload, '$.step') = 'extract'",
    },
    Case {
        legacy: Server::Postgres,
        restarted: Server::MariaDb,
        fault: "after:batch_committed.dry_run.open_invoices#2:pause=5s",
        seen: INVOICES_SECOND_DRY_RUN_BATCH,
    },
    Case {
        legacy: Server::Postgres,
        restarted: Server::MariaDb,
        fault: "after:batch_committed.load.open_invoices#2:pause=5s",
        seen: INVOICES_SECOND_LOAD_BATCH,
    },
];

#[test]
fn a_server_restart_in_each_data_phase_is_ridden_out_to_the_uninterrupted_result() {
    cutover::testdb::stop_servers_turn();
    let t0 = Instant::now();
    // What an uninterrupted run leaves in production, per layout.
    let reference = |legacy: Server| {
        let site = Site::new(legacy, "rsref");
        let mut run = site.spawn(None);
        let code = site.wait_exit(&mut run);
        assert_eq!(code, 0, "{}", site.stderr());
        content(&site.production)
    };
    let want_mariadb_legacy = reference(Server::MariaDb);
    let want_pg_legacy = reference(Server::Postgres);
    let mut failures = Vec::new();
    for (i, c) in CASES.iter().enumerate() {
        if std::env::var("RESTART_ROW").is_ok_and(|r| r != i.to_string()) {
            continue;
        }
        let row = format!(
            "{:?} restarted at {} ({:?} legacy)",
            c.restarted, c.fault, c.legacy
        );
        let site = Site::new(c.legacy, &format!("rs{i}"));
        let mut run = site.spawn(Some(c.fault));
        if let Some(code) = site.watch(&mut run, || site.journaled(c.seen) >= 1) {
            failures.push(format!(
                "{row}: ended (exit {code}) before the pause\n{}",
                site.stderr()
            ));
            continue;
        }
        let seen = Instant::now();
        let down = Down::stop(c.restarted);
        assert!(
            seen.elapsed() < PAUSE,
            "{row}: stopping the server took longer than the run's pause"
        );
        // The pause ends while the server is down, and it stays down longer than a
        // connection is waited for (`db::ACQUIRE_TIMEOUT`): the phase's next write or read
        // fails, and is retried.
        std::thread::sleep((PAUSE + OUTAGE_AFTER_PAUSE).saturating_sub(seen.elapsed()));
        drop(down);
        let code = site.wait_exit(&mut run);
        let retries = site.journaled("kind = 'retry_scheduled'");
        let want = match c.legacy {
            Server::MariaDb => &want_mariadb_legacy,
            Server::Postgres => &want_pg_legacy,
        };
        if code != 0 {
            failures.push(format!("{row}: exit {code}\n{}", site.stderr()));
            continue;
        }
        let got = content(&site.production);
        if retries == 0 {
            failures.push(format!(
                "{row}: no retry journaled: the restart was not met\n{}",
                site.stderr()
            ));
        } else if got != *want {
            failures.push(format!("{row}: production differs\n{got}\nvs\n{want}"));
        } else {
            eprintln!("{row}: ok, {retries} retries");
        }
    }
    eprintln!("{} cases in {:.1?}", CASES.len(), t0.elapsed());
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
