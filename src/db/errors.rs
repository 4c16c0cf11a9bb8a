//! Which database and connection errors are worth another attempt. The SQL targets
//! classify their write errors with it, and the extract and backup steps, which talk to
//! [`Db`](super::Db) directly, retry on it too.

/// Whether `e` (or any error in its chain) is a fault of the connection or of the server's
/// availability, after which the same write may well succeed: the connection was lost or
/// refused, the server is shutting down or starting up, or the pool found no live
/// connection in time. Everything else (the rows' content, a missing table, permissions,
/// a full disk, a bad password, a protocol mismatch) fails at once.
pub fn is_transient(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        if let Some(s) = cause.downcast_ref::<sqlx::Error>() {
            return sqlx_transient(s);
        }
        if let Some(c) = cause.downcast_ref::<super::ConnectError>() {
            // No answer at all: unreachable for now, like a refused connection.
            return c.cause.as_ref().is_none_or(sqlx_transient);
        }
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return io_transient(io);
        }
        false
    })
}

fn sqlx_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(io) => io_transient(io),
        // No live connection within the pool's acquire timeout: the server is down or
        // unreachable (see `db::ACQUIRE_TIMEOUT`).
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(d) => {
            if let Some(my) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
                && mysql_transient(my.number())
            {
                return true;
            }
            d.code().is_some_and(|c| sqlstate_transient(&c))
        }
        // Not transient:
        // - PoolClosed: only this program closes a pool, and a closed pool stays closed;
        // - Protocol: sqlx reports a cut connection as an I/O error (UnexpectedEof), so a
        //   protocol error is a real mismatch that a retry would only repeat;
        // - Tls, Configuration and the rest: settings or code, not the network.
        _ => false,
    }
}

/// SQLSTATE class 08 (connection exception), the server shutting down or starting
/// (57P01 admin_shutdown, 57P02 crash_shutdown, 57P03 cannot_connect_now), too many
/// connections (53300: clients reconnecting after a restart), and the two conflicts a
/// transaction is meant to be retried after (40001 serialization failure, 40P01
/// deadlock).
fn sqlstate_transient(code: &str) -> bool {
    code.starts_with("08")
        || matches!(
            code,
            "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01"
        )
}

/// MySQL/MariaDB error numbers: 2006 server has gone away, 2013 lost connection during
/// query (client-side codes, kept for drivers that report them), 1927 connection killed
/// (MariaDB), 1053 server shutdown in progress, 1040 too many connections, 1213 deadlock.
fn mysql_transient(number: u16) -> bool {
    matches!(number, 2006 | 2013 | 1927 | 1053 | 1040 | 1213)
}

fn io_transient(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionReset
            | ConnectionRefused
            | ConnectionAborted
            | BrokenPipe
            | UnexpectedEof
            | NotConnected
            | TimedOut
            | HostUnreachable
            | NetworkUnreachable
            | NetworkDown
    )
}

/// An error and its causes on one line, each cause once: sqlx's database errors repeat
/// their source's text, which `{:#}` would print twice.
pub fn explain(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !out.ends_with(&text) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&text);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use std::io;

    fn io_err(kind: io::ErrorKind) -> anyhow::Error {
        anyhow::Error::new(sqlx::Error::Io(io::Error::new(kind, "x")))
            .context("loading customers into res_partner")
    }

    #[test]
    fn lost_or_refused_connections_are_transient() {
        for kind in [
            io::ErrorKind::ConnectionRefused,
            io::ErrorKind::ConnectionReset,
            io::ErrorKind::ConnectionAborted,
            io::ErrorKind::BrokenPipe,
            io::ErrorKind::UnexpectedEof,
        ] {
            assert!(is_transient(&io_err(kind)), "{kind:?}");
        }
        assert!(is_transient(
            &anyhow::Error::new(sqlx::Error::PoolTimedOut).context("batch 3")
        ));
        // A bare io::Error (not wrapped by sqlx) counts too.
        let bare: anyhow::Result<()> = Err(io::Error::from(io::ErrorKind::BrokenPipe).into());
        assert!(is_transient(&bare.context("writing").unwrap_err()));
        for code in [
            "08006", "08001", "08003", "57P01", "57P02", "57P03", "40P01",
        ] {
            assert!(sqlstate_transient(code), "{code}");
        }
        for n in [2006, 2013, 1927, 1053] {
            assert!(mysql_transient(n), "{n}");
        }
    }

    /// A database error carrying just a SQLSTATE, as a driver would report it.
    #[derive(Debug)]
    struct State(&'static str);
    impl std::fmt::Display for State {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "error {}", self.0)
        }
    }
    impl std::error::Error for State {}
    impl sqlx::error::DatabaseError for State {
        fn message(&self) -> &str {
            "error"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }
    fn db_err(code: &'static str) -> anyhow::Error {
        anyhow::Error::new(sqlx::Error::Database(Box::new(State(code)))).context("batch 7")
    }

    #[test]
    fn database_errors_by_sqlstate() {
        for code in ["57P01", "08006", "57P03"] {
            assert!(is_transient(&db_err(code)), "{code}");
        }
        for code in ["53100", "42P01", "23505"] {
            assert!(!is_transient(&db_err(code)), "{code}");
        }
    }

    #[test]
    fn other_infrastructure_errors_fail_at_once() {
        for kind in [
            io::ErrorKind::PermissionDenied,
            io::ErrorKind::StorageFull,
            io::ErrorKind::NotFound,
            io::ErrorKind::InvalidData,
        ] {
            assert!(!is_transient(&io_err(kind)), "{kind:?}");
        }
        for e in [
            sqlx::Error::PoolClosed,
            sqlx::Error::Protocol("unknown message type".into()),
            sqlx::Error::RowNotFound,
        ] {
            assert!(!is_transient(&anyhow::Error::new(e)));
        }
        assert!(!is_transient(&anyhow::anyhow!(
            "table res_partner does not exist (or is not visible to this user)"
        )));
        // Disk full, permission denied, undefined table, bad password, data errors.
        for code in [
            "53100", "42501", "42P01", "28P01", "23505", "22001", "XX000",
        ] {
            assert!(!sqlstate_transient(code), "{code}");
        }
        for n in [1045, 1146, 1062, 1114] {
            assert!(!mysql_transient(n), "{n}");
        }
    }
}
