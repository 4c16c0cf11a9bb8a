//! Helpers for driving the real `cutover` binary against SQLite files in a temp folder.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub mod one_entity;
pub mod servers;
pub mod tmux;

pub const BIN: &str = env!("CARGO_BIN_EXE_cutover");

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn tms() -> PathBuf {
    repo().join("runbooks/tms.toml")
}

/// A scratch folder holding a copy of an extract and the SQLite targets.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn with_fixture(name: &str) -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let ex = dir.path().join("extract");
        std::fs::create_dir_all(&ex).unwrap();
        for f in std::fs::read_dir(repo().join("tests/fixtures").join(name)).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), ex.join(f.file_name())).unwrap();
        }
        Scratch { dir }
    }
    pub fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }
    pub fn url(&self, p: &str) -> String {
        format!("sqlite://{}", self.path(p).display())
    }
    /// Flags pointing every runbook variable and the journal into this folder.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--headless".into(),
            "--var".into(),
            format!("extract_dir={}", self.path("extract").display()),
            "--var".into(),
            format!("staging_url={}", self.url("staging.db")),
            "--var".into(),
            format!("production_url={}", self.url("production.db")),
            "--var".into(),
            format!("backup_dir={}", self.path("backups").display()),
            "--journal".into(),
            self.path("journal.db").display().to_string(),
        ]
    }
    pub fn cutover(&self, args: &[&str], runbook: &Path) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.args(args.iter().take(1))
            .arg(runbook)
            .args(self.flags())
            .args(args.iter().skip(1));
        cmd.env_remove("CUTOVER_JOURNAL");
        cmd.output().unwrap()
    }
}

pub fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}): {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The command exited with `want`; else both of its outputs are shown.
pub fn ok(out: &Output, want: i32) {
    assert_eq!(
        code(out),
        want,
        "exit code\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

pub const GO: [&str; 4] = [
    "--sign-off",
    "Migration lead|migration_lead|go|counts and sums match",
    "--sign-off",
    "Finance controller|finance|go|sums match to the cent",
];

/// Run SQL on a SQLite file through sqlx (no sqlite3 CLI needed): statements are executed,
/// a query's rows come back one per line with columns joined by '|'.
pub fn sqlite(path: &Path, sql: &str) -> String {
    use sqlx::{Row, ValueRef};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let opts = sqlx::sqlite::SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true);
        let pool = sqlx::SqlitePool::connect_with(opts).await.unwrap();
        let trimmed = sql.trim_start().to_ascii_uppercase();
        let out = if trimmed.starts_with("SELECT") {
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .fetch_all(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            rows.iter()
                .map(|r| {
                    (0..r.len())
                        .map(|i| {
                            if r.try_get_raw(i).unwrap().is_null() {
                                String::new()
                            } else {
                                r.try_get::<String, _>(i)
                                    .or_else(|_| r.try_get::<i64, _>(i).map(|v| v.to_string()))
                                    .unwrap()
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("|")
                })
                .collect::<Vec<_>>()
                .join("\n")
        } else {
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"));
            String::new()
        };
        pool.close().await;
        out
    })
}

/// The independent Python implementation of the scenario's rules, run on a folder of
/// CSV extracts: expected counts, sums, rejected lines and invoice partners as JSON.
pub fn oracle(dir: &Path) -> serde_json::Value {
    let out = Command::new("python3")
        .arg(repo().join("tests/oracle/tms_oracle.py"))
        .arg(dir)
        .output()
        .expect("python3 is needed for the oracle and was not found");
    assert!(
        out.status.success(),
        "oracle failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

pub fn dec(v: &serde_json::Value) -> rust_decimal::Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .parse()
        .unwrap()
}

/// Run a future to completion on a fresh current-thread runtime (test set-up code).
pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// A temp folder with the reference runbook (`tms.toml`, batches of `batch_size`) and a
/// small generated SQLite legacy (`legacy.db`) of `customers`, `vehicles`, `drivers` and
/// `invoices` rows: the set-up of the crash, lease and failure-path tests.
pub fn small_reference_site(
    batch_size: usize,
    customers: usize,
    vehicles: usize,
    drivers: usize,
    invoices: usize,
) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let rb = std::fs::read_to_string(tms())
        .unwrap()
        .replace("batch_size = 1000", &format!("batch_size = {batch_size}"));
    std::fs::write(dir.path().join("tms.toml"), rb).unwrap();
    let opts = cutover::demo::GenOptions {
        customers,
        vehicles,
        drivers,
        invoices,
        ..cutover::demo::GenOptions::demo()
    };
    block_on(cutover::demo::write_legacy_sqlite(
        &dir.path().join("legacy.db"),
        &opts,
    ))
    .unwrap();
    dir
}
