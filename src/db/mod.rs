//! Database connections. The URL's scheme picks the driver; passwords come from the
//! runbook's `password_env` / `password_file` and never appear in a URL we print.

pub mod admin;
pub mod errors;
pub mod mysql_admin;
pub mod nodelay;
pub mod pg_admin;
pub mod query;
pub mod sqlite_admin;
pub mod types;

use std::str::FromStr;

use anyhow::{Context, Result};
use sqlx::mysql::{MySqlConnectOptions, MySqlPoolOptions};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Connection, Executor, MySqlPool, PgPool, SqlitePool};

use crate::runbook::ResolvedEnv;

pub use crate::urls::{Dialect, redact_url, sqlite_path};

/// How an environment is shown: driver plus where it lives, never a secret.
pub fn display_env(env: &ResolvedEnv) -> String {
    if env.url.is_empty() {
        return "CSV extract files".into();
    }
    match Dialect::of_url(&env.url) {
        Some(Dialect::Sqlite) => format!(
            "sqlite {}",
            sqlite_path(&env.url)
                .map(|p| p.display().to_string())
                .unwrap_or_default()
        ),
        _ => redact_url(&env.url),
    }
}

/// The database's own name, as an operator would type it to confirm a rollback: the last
/// path segment of a server URL (`erp` in `postgres://app@db.prod:5432/erp`), the file name
/// of a SQLite path (`production.db`). Empty when the URL names none.
pub fn database_name(env: &ResolvedEnv) -> String {
    if env.url.is_empty() {
        return String::new();
    }
    if Dialect::of_url(&env.url) == Some(Dialect::Sqlite) {
        return sqlite_path(&env.url)
            .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
            .unwrap_or_default();
    }
    let url = redact_url(&env.url);
    let url = url.split('?').next().unwrap_or_default();
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.split_once('/') {
        Some((_, path)) => path
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string(),
        None => String::new(),
    }
}

/// Open (and create if missing) a SQLite database in WAL mode.
pub async fn sqlite_pool(url: &str, create: bool) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::from_str(url)
        .with_context(|| format!("bad SQLite URL {}", redact_url(url)))?
        .create_if_missing(create)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(std::time::Duration::from_secs(10));
    if let Some(p) = sqlite_path(url).and_then(|p| p.parent().map(|d| d.to_path_buf()))
        && create
    {
        std::fs::create_dir_all(&p)
            .with_context(|| format!("cannot create folder {}", p.display()))?;
    }
    SqlitePoolOptions::new()
        .max_connections(4)
        .connect_with(opts)
        .await
        .with_context(|| format!("cannot open {}", redact_url(url)))
}

/// Open an existing SQLite file read-only (no journal-mode change, nothing written).
pub async fn sqlite_pool_ro(path: &std::path::Path) -> Result<SqlitePool> {
    let opts = SqliteConnectOptions::new()
        .filename(path)
        .read_only(true)
        .create_if_missing(false);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .with_context(|| format!("cannot open {} read-only", path.display()))
}

/// How long taking a connection from a server pool may wait, opening a new one included.
///
/// While the server is down, sqlx's acquire quietly retries a refused connect (and a
/// server's "starting up") until this runs out, then says `PoolTimedOut`. A load's batch
/// write then fails with a transient error and the load's own retry loop takes over
/// (runbook `settings.retries` / `retry_delay`, each retry logged and journaled). So this
/// stays short: ample for a TLS handshake with a busy server, short enough that an outage
/// shows up within seconds as retries the operator can see, not as a silent hang of
/// 15-30 s per attempt that would also make the runbook's retry budget meaningless.
pub const ACQUIRE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pool's `PoolTimedOut` says nothing of why. One direct connection attempt (bounded by
/// [`ACQUIRE_TIMEOUT`]) does: refused, no route, authentication. Its error becomes the
/// cause, so [`errors::is_transient`] judges the real reason (a refused
/// connection is worth a retry; a rejected password is not). Other errors pass through.
pub async fn acquire_error<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    e: sqlx::Error,
) -> anyhow::Error {
    if !matches!(e, sqlx::Error::PoolTimedOut) {
        return e.into();
    }
    let opts = pool.connect_options();
    let direct = tokio::time::timeout(ACQUIRE_TIMEOUT, DB::Connection::connect_with(&opts)).await;
    let within = format!("no connection within {} s", ACQUIRE_TIMEOUT.as_secs());
    match direct {
        Ok(Err(why)) => anyhow::Error::new(why).context(within),
        Ok(Ok(conn)) => {
            // Back already: the next attempt will get through.
            let _ = conn.close().await;
            anyhow::Error::new(e)
        }
        Err(_) => anyhow::Error::new(e).context(format!("{within} (connecting hangs)")),
    }
}

/// Connect to PostgreSQL. The password comes from the runbook's `password_env` /
/// `password_file`; without one, libpq's `PGPASSWORD` and `~/.pgpass` apply.
pub async fn pg_pool(url: &str, password: Option<&str>) -> Result<PgPool> {
    let mut opts = PgConnectOptions::from_str(url)
        .with_context(|| format!("bad PostgreSQL URL {}", redact_url(url)))?
        .application_name("cutover")
        // A frozen legacy database defaults to read-only transactions; cutover's own
        // sessions must still be able to reopen it (and to freeze it again after a rollback).
        .options([("default_transaction_read_only", "off")]);
    if let Some(p) = password {
        opts = opts.password(p);
    }
    // One direct attempt first: the pool retries a refused connection for its whole
    // acquire timeout and then only says it timed out; this says why, at once.
    first_contact(sqlx::PgConnection::connect_with(&opts), url).await?;
    let pool = PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|_, _| {
            Box::pin(async move {
                nodelay::on_every_tcp_socket();
                Ok(())
            })
        })
        .connect_with(opts.clone())
        .await;
    match pool {
        Ok(p) => Ok(p),
        Err(_) => Err(why_not(
            sqlx::PgConnection::connect_with(&opts).await.err(),
            url,
        )),
    }
}

const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15);

/// Open and close one connection, to fail fast (refused, unknown host, authentication)
/// with the server's own reason.
async fn first_contact<C: Connection>(
    connect: impl std::future::Future<Output = sqlx::Result<C>>,
    url: &str,
) -> Result<()> {
    match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
        Ok(Ok(conn)) => {
            let _ = conn.close().await;
            Ok(())
        }
        Ok(Err(e)) => Err(why_not(Some(e), url)),
        Err(_) => Err(why_not(None, url)),
    }
}

fn why_not(direct: Option<sqlx::Error>, url: &str) -> anyhow::Error {
    let what = direct.as_ref().map_or_else(
        || format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
        |e| e.to_string(),
    );
    anyhow::Error::new(ConnectError {
        message: format!(
            "cannot connect to {}: {what}; check that the server is running and reachable at that host and port, and that the user and password are right (or point the runbook variable at another server with --var)",
            redact_url(url)
        ),
        cause: direct,
    })
}

/// A connection that could not be made. The message already holds the driver's words;
/// the driver's error is kept so that a retry can judge it (a refused connection, a
/// restarting server: worth another attempt; a rejected password: not).
#[derive(Debug)]
pub struct ConnectError {
    message: String,
    /// `None`: no answer at all within the connect timeout.
    pub cause: Option<sqlx::Error>,
}

impl std::fmt::Display for ConnectError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConnectError {}

/// Connect to MariaDB/MySQL with strict SQL mode, so a bad value is an error rather than
/// a warning and a silently truncated row, and the session time zone UTC.
pub async fn mysql_pool(url: &str, password: Option<&str>) -> Result<MySqlPool> {
    // sqlx knows the `mysql:` scheme; `mariadb:` is accepted here as its synonym.
    let normalized = match url.strip_prefix("mariadb:") {
        Some(rest) => format!("mysql:{rest}"),
        None => url.to_string(),
    };
    let mut opts = MySqlConnectOptions::from_str(&normalized)
        .with_context(|| format!("bad MySQL URL {}", redact_url(url)))?;
    if let Some(p) = password {
        opts = opts.password(p);
    }
    first_contact(sqlx::MySqlConnection::connect_with(&opts), url).await?;
    let pool = MySqlPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .after_connect(|conn, _| {
            Box::pin(async move {
                nodelay::on_every_tcp_socket();
                conn.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')")
                    .await?;
                // TIMESTAMP values are read and written in UTC, as mariadb-dump does: in a
                // zone with daylight saving, one hour a year reads the same twice.
                conn.execute("SET SESSION time_zone = '+00:00'").await?;
                Ok(())
            })
        })
        .connect_with(opts.clone())
        .await;
    match pool {
        Ok(p) => Ok(p),
        Err(_) => Err(why_not(
            sqlx::MySqlConnection::connect_with(&opts).await.err(),
            url,
        )),
    }
}

/// A connected environment. The variant is the driver its URL's scheme picked.
#[derive(Clone)]
pub enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
    MySql(MySqlPool),
}

impl Db {
    pub async fn connect(env: &ResolvedEnv) -> Result<Db> {
        let pw = env.password.as_deref();
        // No `?` inside: every error gets the environment's name.
        let db: Result<Db> = match Dialect::of_url(&env.url) {
            Some(Dialect::Sqlite) => sqlite_pool(&env.url, true).await.map(Db::Sqlite),
            Some(Dialect::Postgres) => pg_pool(&env.url, pw).await.map(Db::Postgres),
            Some(Dialect::MySql) => mysql_pool(&env.url, pw).await.map(Db::MySql),
            None => Err(anyhow::anyhow!("unsupported URL {}", redact_url(&env.url))),
        };
        db.with_context(|| format!("environment '{}'", env.name))
    }

    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
            Db::MySql(_) => Dialect::MySql,
        }
    }

    /// Quote an identifier the way this database wants it.
    pub fn q(&self, name: &str) -> String {
        match self {
            Db::MySql(_) => format!("`{}`", name.replace('`', "``")),
            _ => ident(name),
        }
    }

    pub async fn close(&self) {
        match self {
            Db::Sqlite(p) => p.close().await,
            Db::Postgres(p) => p.close().await,
            Db::MySql(p) => p.close().await,
        }
    }
}

/// Host, port, user and database of a server URL, for the command-line tools
/// (`pg_dump`, `mariadb-dump`), which get the password through their environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnParts {
    pub host: String,
    pub port: Option<u16>,
    pub user: Option<String>,
    pub database: String,
}

impl ConnParts {
    pub fn parse(url: &str) -> Result<ConnParts> {
        let bad = || anyhow::anyhow!("cannot read host and database from {}", redact_url(url));
        let rest = url.split_once("://").ok_or_else(bad)?.1;
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let database = path.split('?').next().unwrap_or("").to_string();
        let (user, hostport) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u.split(':').next().unwrap_or("").to_string()), h),
            None => (None, authority),
        };
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) => (h.to_string(), Some(p.parse().map_err(|_| bad())?)),
            None => (hostport.to_string(), None),
        };
        if database.is_empty() {
            return Err(bad());
        }
        Ok(ConnParts {
            host: if host.is_empty() {
                "localhost".into()
            } else {
                host
            },
            port,
            user: user.filter(|u| !u.is_empty()),
            database,
        })
    }
}

/// Quote an identifier for SQL text (identifiers come from the linted runbook).
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_never_shows_password() {
        assert_eq!(
            redact_url("postgres://app:pw@db:5432/prod?sslmode=require"),
            "postgres://app@db:5432/prod"
        );
        assert_eq!(redact_url("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
        assert_eq!(
            redact_url("sqlite://.cutover/staging.db?mode=rwc"),
            "sqlite://.cutover/staging.db"
        );
        assert_eq!(
            redact_url("mysql://root:p%40ss@127.0.0.1:3306/erp?password=x"),
            "mysql://root@127.0.0.1:3306/erp"
        );
        assert_eq!(redact_url("sqlite:x.db?password=x"), "sqlite:x.db");
        for bad in ["postgres://u:secret@[::1/db", "mysql://u:secret@h:99999/db"] {
            assert!(!redact_url(bad).contains("secret"), "{bad}");
        }
    }

    #[test]
    fn scheme_picks_driver() {
        assert_eq!(Dialect::of_url("sqlite://a.db"), Some(Dialect::Sqlite));
        assert_eq!(
            Dialect::of_url("postgresql://h/db"),
            Some(Dialect::Postgres)
        );
        assert_eq!(Dialect::of_url("mariadb://h/db"), Some(Dialect::MySql));
        assert_eq!(Dialect::of_url("oracle://h"), None);
    }

    #[test]
    fn database_name_is_what_an_operator_types() {
        let env = |url: &str| ResolvedEnv {
            name: "production".into(),
            url: url.into(),
            password: None,
            production: true,
            reset: false,
            app_users: vec![],
        };
        let name = |url: &str| database_name(&env(url));
        assert_eq!(
            name("postgres://app:pw@db.prod:5432/erp?sslmode=require"),
            "erp"
        );
        assert_eq!(name("mysql://127.0.0.1/legacy/"), "legacy");
        assert_eq!(
            name("sqlite:///srv/cutover/production.db?mode=rwc"),
            "production.db"
        );
        assert_eq!(name("sqlite:prod.db"), "prod.db");
        assert_eq!(name("postgres://db.prod"), "");
        assert_eq!(name(""), "");
    }

    #[test]
    fn conn_parts_for_the_command_line_tools() {
        assert_eq!(
            ConnParts::parse("postgres://app:pw@db.internal:5433/prod?sslmode=require").unwrap(),
            ConnParts {
                host: "db.internal".into(),
                port: Some(5433),
                user: Some("app".into()),
                database: "prod".into()
            }
        );
        let p = ConnParts::parse("mysql://127.0.0.1/legacy").unwrap();
        assert_eq!((p.port, p.user), (None, None));
        assert!(ConnParts::parse("postgres://host").is_err());
    }
}
