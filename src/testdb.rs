//! Throwaway databases on the local PostgreSQL and MariaDB servers, for tests.
//!
//! Each [`TempDb`] is a freshly created database with a unique name, dropped again when the
//! value goes out of scope. A server that cannot be reached is a test failure with the
//! command that starts it, never a skip.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

use crate::db::Dialect;

pub const PG_ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";
pub const MYSQL_ADMIN: &str = "mysql://root@127.0.0.1:3306/mysql";

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A database created for one test and dropped on drop.
pub struct TempDb {
    pub dialect: Dialect,
    pub name: String,
}

impl TempDb {
    /// A new empty PostgreSQL database.
    pub fn postgres(tag: &str) -> TempDb {
        let name = unique(tag);
        psql("postgres", &format!("CREATE DATABASE {name}"));
        TempDb {
            dialect: Dialect::Postgres,
            name,
        }
    }

    /// A new empty MariaDB/MySQL database.
    pub fn mysql(tag: &str) -> TempDb {
        let name = unique(tag);
        mariadb(&format!("CREATE DATABASE {name}"));
        TempDb {
            dialect: Dialect::MySql,
            name,
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
