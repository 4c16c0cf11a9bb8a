//! Throwaway databases on the local PostgreSQL and MariaDB servers, for tests.
//!
//! Each [`TempDb`] is a freshly created database with a unique name, dropped again when the
//! value goes out of scope. A server that cannot be reached is a test failure with the
//! command that starts it, never a skip.

use std::fs::File;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use crate::db::Dialect;

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/mysql";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database created for one test and dropped on drop.
pub struct TempDb {
    pub dialect: Dialect,
    pub name: String,
    /// Holds the servers up (a shared turn) while the database is in use.
    _turn: Option<Arc<File>>,
}

/// The file every test process locks to share the local servers: a test that stops a
/// server holds it exclusively ([`stop_servers_turn`]), every [`TempDb`] holds it shared, so
/// a restart in one `cargo test` never breaks another run's tests on the same machine.
fn lock_path() -> std::path::PathBuf {
    std::env::temp_dir().join("cutover-test-servers.lock")
}

fn lock_file() -> File {
    let p = lock_path();
    std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)
        .unwrap_or_else(|e| panic!("cannot open the servers' test lock {}: {e}", p.display()))
}

/// Set once this process holds the exclusive turn: its own databases need no shared one
/// (a second lock on the same file from one process would wait for itself).
static EXCLUSIVE: AtomicBool = AtomicBool::new(false);
/// The shared turn, one per process, held while any of its databases live.
static SHARED: Mutex<std::sync::Weak<File>> = Mutex::new(std::sync::Weak::new());

fn shared_turn() -> Option<Arc<File>> {
    if EXCLUSIVE.load(Ordering::SeqCst) {
        return None;
    }
    let mut held = SHARED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(f) = held.upgrade() {
        return Some(f);
    }
    let f = lock_file();
    f.lock_shared()
        .unwrap_or_else(|e| panic!("cannot take the servers' test lock: {e}"));
    let f = Arc::new(f);
    *held = Arc::downgrade(&f);
    Some(f)
}

/// For a test that stops and starts a local server: waits until no other test process
/// uses the servers, then keeps them to this process until it exits. Call it before
/// creating any [`TempDb`].
pub fn stop_servers_turn() {
    static HELD: std::sync::OnceLock<File> = std::sync::OnceLock::new();
    HELD.get_or_init(|| {
        let f = lock_file();
        eprintln!(
            "waiting for other test processes to finish with the local servers ({})",
            lock_path().display()
        );
        f.lock()
            .unwrap_or_else(|e| panic!("cannot take the servers' test lock: {e}"));
        EXCLUSIVE.store(true, Ordering::SeqCst);
        f
    });
}

impl TempDb {
    /// A new empty PostgreSQL database.
    pub fn postgres(tag: &str) -> TempDb {
        let _turn = shared_turn();
        let name = unique(tag);
        psql("postgres", &format!("CREATE DATABASE {name}"));
        TempDb {
            dialect: Dialect::Postgres,
            name,
            _turn,
        }
    }

    /// A new empty MariaDB/MySQL database.
    pub fn mysql(tag: &str) -> TempDb {
        let _turn = shared_turn();
        let name = unique(tag);
        mariadb(&format!("CREATE DATABASE {name}"));
        TempDb {
            dialect: Dialect::MySql,
            name,
            _turn,
        }
    }

    /// Connection URL (no password: the local servers use trust / empty-password auth).
    pub fn url(&self) -> String {
        match self.dialect {
            Dialect::Postgres => format!("postgres://postgres@127.0.0.1:5432/{}", self.name),
            Dialect::MySql => format!("mysql://root@127.0.0.1:3306/{}", self.name),
            Dialect::Sqlite => unreachable!("TempDb is for servers"),
        }
    }

    /// Run SQL through the command-line client, panicking with its error on failure.
    pub fn exec(&self, sql: &str) -> String {
        match self.dialect {
            Dialect::Postgres => psql(&self.name, sql),
            Dialect::MySql => mariadb(&format!("USE {}; {sql}", self.name)),
            Dialect::Sqlite => unreachable!(),
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        let _ = match self.dialect {
            Dialect::Postgres => run_cli(
                "psql",
                &[
                    "-h",
                    "127.0.0.1",
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                    "-c",
                    &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
                ],
            ),
            Dialect::MySql => run_cli(
                "mariadb",
                &[
                    "-h",
                    "127.0.0.1",
                    "-u",
                    "root",
                    "-e",
                    &format!("DROP DATABASE IF EXISTS {}", self.name),
                ],
            ),
            Dialect::Sqlite => Ok(String::new()),
        };
    }
}

fn unique(tag: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let tag: String = tag
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .take(20)
        .collect();
    format!("cutover_t_{tag}_{}_{n}_{nanos:x}", std::process::id())
}

/// `psql` against the local server; panics loudly when the server is down.
pub fn psql(db: &str, sql: &str) -> String {
    run_cli(
        "psql",
        &[
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            db,
            "-v",
            "ON_ERROR_STOP=1",
            "-XAtq",
            "-c",
            sql,
        ],
    )
    .unwrap_or_else(|e| {
        panic!(
            "PostgreSQL at 127.0.0.1:5432 refused `{sql}`: {e}\n\
             Is it running? Start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start"
        )
    })
}

/// `mariadb` against the local server; panics loudly when the server is down.
pub fn mariadb(sql: &str) -> String {
    run_cli(
        "mariadb",
        &["-h", "127.0.0.1", "-u", "root", "-N", "-B", "-e", sql],
    )
    .unwrap_or_else(|e| {
        panic!(
            "MariaDB at 127.0.0.1:3306 refused `{sql}`: {e}\n\
             Is it running? Start it with: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd"
        )
    })
}

fn run_cli(bin: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(bin)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run {bin}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}
