//! Transient faults on a real server: PostgreSQL is stopped while the production load is
//! under way. Within the runbook's retry limit the load rides it out and the run
//! completes with production exactly as an uninterrupted load leaves it; past the limit
//! the load step fails and the rollback is run.
//!
//! Its own test binary: cargo runs test binaries one after another, and the servers' test
//! lock (`testdb::stop_servers_turn`, a file lock every `TempDb` of any test process holds
//! shared) keeps other `cargo test` runs on this machine off the server while it is down;
//! the two tests here take turns through a mutex. A guard starts the server again whatever
//! happens, panics included.
//!
//! The shipped binary pauses right after the invoices' second load batch is journaled
//! (`CUTOVER_FAULT`), which is when the server goes down: between two batches, with no
//! transaction in flight.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cutover::demo::{GenOptions, write_legacy_sqlite};
use cutover::testdb::TempDb;

/// The entity whose second load batch the run pauses after: the one with the most batches.
/// Entities load concurrently, so a pause on whichever batch commits second could hold an
/// entity with nothing left to write while the others finish before the server stops.
const PAUSED: &str = "open_invoices";

/// One test at a time stops the server.
static SERVER: Mutex<()> = Mutex::new(());

/// Longest any run here may take before the test gives up on it (a hang, not a speed bar).
const RUN_DEADLINE: Duration = Duration::from_secs(120);

fn pg_version() -> String {
    let dir = std::fs::read_dir("/etc/postgresql")
        .expect("/etc/postgresql is missing: this test drives the local PostgreSQL cluster");
    let mut versions: Vec<String> = dir
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions.pop().expect("no cluster under /etc/postgresql")
}

fn pg_ctl(action: &str) {
    let version = pg_version();
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.args(["--skip-systemctl-redirect", &version, "main", action]);
    if action == "stop" {
        cmd.args(["-m", "fast"]);
    }
    let out = cmd
        .output()
        .expect("pg_ctlcluster is needed to stop and start PostgreSQL");
    assert!(
        out.status.success(),
        "pg_ctlcluster {version} main {action} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// PostgreSQL is down while this lives; dropping it (also while unwinding) starts it again.
struct ServerDown {
    since: Instant,
}

impl ServerDown {
    fn stop() -> ServerDown {
        pg_ctl("stop");
        ServerDown {
            since: Instant::now(),
        }
    }
}

impl Drop for ServerDown {
    fn drop(&mut self) {
        // `start` waits until the server accepts connections.
        let started = Command::new("pg_ctlcluster")
            .args(["--skip-systemctl-redirect", &pg_version(), "main", "start"])
            .output();
        match started {
            Ok(o) if o.status.success() => {
                eprintln!("PostgreSQL was down for {:.1?}", self.since.elapsed())
            }
            other => {
                let msg = format!(
                    "could not start PostgreSQL again ({other:?}); start it with: \
                     pg_ctlcluster --skip-systemctl-redirect {} main start",
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

/// A site whose run (with `settings`) has journaled the invoices' second load batch and is paused
/// there, and the server just stopped. Dropped in reverse: the run is killed if still
/// going, the server started, the databases dropped.
fn stopped_mid_load(tag: &str, settings: &str) -> (Site, ServerDown, Run) {
    let site = Site::new(tag);
    let runbook = site.runbook(settings);
    let mut run = Run(site.spawn(&runbook, "2s"));
    site.wait_for(
        &mut run.0,
        "batch_committed",
        &[("phase", "load"), ("entity", PAUSED)],
        2,
    );
    let down = ServerDown::stop();
    (site, down, run)
}

/// SQLite legacy (the demo's dirty data), PostgreSQL staging and production, SQLite
/// journal (the journal must stay writable while the server is down).
struct Site {
    dir: tempfile::TempDir,
    staging: TempDb,
    production: TempDb,
}

impl Site {
    fn new(tag: &str) -> Site {
        let dir = tempfile::tempdir().unwrap();
        let legacy = dir.path().join("legacy.db");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(write_legacy_sqlite(&legacy, &GenOptions::demo()))
            .unwrap();
        Site {
            dir,
            staging: TempDb::postgres(tag),
            production: TempDb::postgres(tag),
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    /// The reference PostgreSQL runbook with small batches (many of them) and `settings`.
    fn runbook(&self, settings: &str) -> PathBuf {
        let text = std::fs::read_to_string(repo().join("runbooks/tms-postgres.toml")).unwrap();
        assert!(text.contains("batch_size = 5000"), "runbook changed");
        let p = self.path("runbook.toml");
        std::fs::write(
            &p,
            text.replace(
                "batch_size = 5000",
                &format!("batch_size = 100\n{settings}"),
            ),
        )
        .unwrap();
        p
    }

    /// Start `cutover run` with every sign-off, pausing after the invoices' second load batch.
    fn spawn(&self, runbook: &Path, pause: &str) -> Child {
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(runbook)
            .arg("--headless")
            .arg("--json")
            .args(GO);
        for (k, v) in [
            (
                "legacy_url",
                format!("sqlite://{}", self.path("legacy.db").display()),
            ),
            ("staging_url", self.staging.url()),
            ("production_url", self.production.url()),
            ("legacy_app_users", String::new()),
            ("production_users_role", String::new()),
            ("extract_dir", self.path("extract").display().to_string()),
            ("backup_dir", self.path("backups").display().to_string()),
        ] {
            cmd.arg("--var").arg(format!("{k}={v}"));
        }
        cmd.arg("--journal")
            .arg(self.path("journal.db"))
            .env_remove("CUTOVER_JOURNAL")
            .env(
                "CUTOVER_FAULT",
                format!("after:batch_committed.load.{PAUSED}#2:pause={pause}"),
            )
            // Files, not pipes: a full pipe would stall the run.
            .stdout(std::fs::File::create(self.path("stdout")).unwrap())
            .stderr(std::fs::File::create(self.path("stderr")).unwrap());
        cmd.spawn().unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(self.path("stderr")).unwrap_or_default()
    }

    /// Journal rows of this kind whose payload holds each `(field, value)`, so far, read
    /// while the run writes.
    fn journaled(&self, kind: &str, fields: &[(&str, &str)]) -> u64 {
        let journal = self.path("journal.db");
        // The run may not have created the journal, or its table, yet.
        if !journal.exists()
            || sqlite(
                &journal,
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'events'",
            ) != "1"
        {
            return 0;
        }
        let filter: String = fields
            .iter()
            .map(|(f, v)| format!(" AND json_extract(payload, '$.{f}') = '{v}'"))
            .collect();
        sqlite(
            &journal,
            &format!("SELECT COUNT(*) FROM events WHERE kind = '{kind}'{filter}"),
        )
        .parse()
        .unwrap_or(0)
    }

    /// Poll until `ready` holds (`None`) or the run ends (`Some(exit code)`); panic if
    /// neither happens before the deadline.
    fn watch(&self, child: &mut Child, what: &str, ready: impl Fn() -> bool) -> Option<i32> {
        let t0 = Instant::now();
        loop {
            if ready() {
                return None;
            }
            if let Some(status) = child.try_wait().unwrap() {
                return Some(status.code().unwrap_or(-1));
            }
            if t0.elapsed() > RUN_DEADLINE {
                let _ = child.kill();
                panic!(
                    "still waiting for {what} after {RUN_DEADLINE:?}\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the journal holds `n` such rows, while the run goes on.
    fn wait_for(&self, child: &mut Child, kind: &str, fields: &[(&str, &str)], n: u64) {
        let ready = || self.journaled(kind, fields) >= n;
        if let Some(code) = self.watch(child, kind, ready)
            && !ready()
        {
            panic!(
                "the run ended (exit {code}) before the journal held {n} {kind}\n{}",
                self.stderr()
            );
        }
    }

    fn wait_exit(&self, child: &mut Child) -> i32 {
        self.watch(child, "the end of the run", || false)
            .expect("only the end of the run ends this wait")
    }

    /// Every record of the one run in the journal.
    fn records(&self) -> Vec<cutover::journal::events::Record> {
        let journal = self.path("journal.db");
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let j = cutover::journal::Journal::open_path(&journal)
                    .await
                    .unwrap();
                let run = j
                    .last_run_id()
                    .await
                    .unwrap()
                    .expect("a run in the journal");
                let recs = j.run_records(&run).await.unwrap();
                j.close().await;
                recs
            })
    }
}

/// Per table: rows and an MD5 over the rows' content, computed by the server, without the
/// surrogate `id` (an invoice's partner appears as the partner's business key instead).
fn content(db: &TempDb) -> String {
    let mut out = Vec::new();
    for (t, row) in [
        ("res_partner", "to_jsonb(x) - 'id'"),
        ("fleet_vehicle", "to_jsonb(x) - 'id'"),
        ("hr_employee", "to_jsonb(x) - 'id'"),
        (
            "account_move",
            "to_jsonb(x) - 'id' - 'partner_id' || jsonb_build_object('partner', \
             (SELECT p.ref FROM res_partner p WHERE p.id = x.partner_id))",
        ),
    ] {
        let v = db.exec(&format!(
            "SELECT count(*) || ' rows, md5 ' || coalesce(md5(string_agg(r, '|' ORDER BY r)), '-') \
             FROM (SELECT ({row})::text AS r FROM {t} x) s"
        ));
        out.push(format!("{t}: {v}"));
    }
    out.join("\n")
}

/// How a lost server shows in a write's error: refused while it is down; reset, or
/// terminated by the shutdown, when the stop catches a connection in use; or a read cut
/// short on a connection another entity was reading from (all of them retried).
const LOST: &[&str] = &[
    "refused",
    "reset by peer",
    "terminating connection",
    "shutting down",
    "got 0 bytes at EOF",
    // a read cut short inside a message (io::ErrorKind::UnexpectedEof's own wording)
    "unexpected end of file",
    // the same over TLS (sqlx prefers TLS where the server offers it)
    "peer closed connection",
];

#[test]
fn a_postgres_restart_during_the_load_is_retried_and_the_run_completes() {
    let _turn = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    cutover::testdb::stop_servers_turn();
    let t0 = Instant::now();
    let (site, down, mut run) = stopped_mid_load("restart", "retries = 5\nretry_delay = \"500ms\"");
    let setup = t0.elapsed();
    // Down until a batch write has failed and its retry is journaled: at least one attempt
    // met the stopped server.
    site.wait_for(&mut run.0, "retry_scheduled", &[], 1);
    drop(down);
    let code = site.wait_exit(&mut run.0);
    eprintln!(
        "setup and load up to batch 2: {setup:.1?}; whole test: {:.1?}",
        t0.elapsed()
    );
    assert_eq!(code, 0, "exit code\n{}", site.stderr());

    // The retries are in the journal with the error that caused them, and in the log.
    let recs = site.records();
    let retries: Vec<_> = recs
        .iter()
        .filter_map(|r| match &r.event {
            cutover::journal::events::Event::RetryScheduled {
                step,
                attempt,
                max_attempts,
                error,
                ..
            } => Some((step.clone(), *attempt, *max_attempts, error.clone())),
            _ => None,
        })
        .collect();
    assert!(!retries.is_empty());
    for (step, attempt, max, error) in &retries {
        assert_eq!(step, "load");
        assert!(*attempt >= 1 && attempt <= max && *max == 5, "{retries:?}");
        // Refused while the server is down; reset when the stop catches a connection in use.
        assert!(LOST.iter().any(|w| error.contains(w)), "{error}");
    }
    // The console's line for it, and the log file's.
    let out = site.stderr();
    let line = out
        .lines()
        .find(|l| l.contains("retry 1 of 5 in"))
        .unwrap_or_else(|| panic!("no retry line on the console\n{out}"));
    eprintln!("console: {line}");
    // Entities load in parallel: the server down (refused), or a connection in use lost.
    assert!(LOST.iter().any(|w| line.contains(w)), "{line}");
    let log = std::fs::read_to_string(site.path("cutover.log")).unwrap();
    assert!(
        log.lines()
            .any(|l| l.contains("WARN") && l.contains("transient fault; retrying the batch")),
        "{log}"
    );

    // Production holds exactly what the uninterrupted dry run put into staging from the
    // same extract: same rows, same content.
    let prod = content(&site.production);
    assert_eq!(prod, content(&site.staging));
    assert!(!prod.contains(": 0 rows"), "{prod}");
    // And the run's own reconciliation agreed (verify passed), with loaded = valid.
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.path("stdout")).unwrap()).unwrap();
    assert_eq!(summary["outcome"], "completed");
    for (name, e) in summary["entities"].as_object().unwrap() {
        assert_eq!(e["loaded"], e["valid"], "{name}");
    }
}

#[test]
fn past_the_retry_limit_the_load_fails_and_the_rollback_is_run() {
    let _turn = SERVER.lock().unwrap_or_else(|p| p.into_inner());
    cutover::testdb::stop_servers_turn();
    let t0 = Instant::now();
    let (site, down, mut run) = stopped_mid_load("giveup", "retries = 1\nretry_delay = \"100ms\"");
    // The server stays down until the run has ended, so nothing here races its restart.
    let code = site.wait_exit(&mut run.0);
    drop(down);
    eprintln!("whole test: {:.1?}", t0.elapsed());

    let log = site.stderr();
    assert!(log.contains("gave up after 1 retries"), "{log}");
    assert!(log.contains("settings.retries"), "{log}");
    let recs = site.records();
    use cutover::journal::events::{Event, StepStatus};
    // One retry per write in flight (entities load in parallel, and each entity has up to
    // `write_concurrency` = 2 batches in flight): each gave up after its one retry.
    let mut retries: std::collections::BTreeMap<&str, usize> = Default::default();
    for r in &recs {
        if let Event::RetryScheduled {
            entity, attempt, ..
        } = &r.event
        {
            assert_eq!(*attempt, 1, "a write retried past settings.retries");
            *retries.entry(entity.as_str()).or_default() += 1;
        }
    }
    assert!(!retries.is_empty(), "no retry");
    assert!(retries.values().all(|n| (1..=2).contains(n)), "{retries:?}");
    let load = recs
        .iter()
        .find_map(|r| match &r.event {
            Event::StepFinished {
                step,
                status,
                message,
                ..
            } if step == "load" => Some((*status, message.clone())),
            _ => None,
        })
        .expect("the load step finished");
    eprintln!("load step: {}", load.1);
    assert_eq!(load.0, StepStatus::Failed);
    assert!(load.1.contains("gave up after 1 retries"), "{}", load.1);
    // The failed production load brought the rollback on; with the server still down it
    // cannot restore, and says so: exit 1, not 6 (rolled back).
    assert!(
        recs.iter()
            .any(|r| matches!(r.event, Event::RollbackStarted { .. }))
    );
    let rollback_ok = recs.iter().find_map(|r| match &r.event {
        Event::RollbackFinished { ok, .. } => Some(*ok),
        _ => None,
    });
    assert_eq!(rollback_ok, Some(false));
    assert_eq!(code, 1, "{log}");
    // The server is back for whatever runs next.
    assert_eq!(site.production.exec("SELECT 1"), "1");
}
