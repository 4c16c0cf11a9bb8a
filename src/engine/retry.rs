//! Retries after transient faults: which errors are worth another attempt, and how long
//! to wait before it (exponential backoff with jitter, bounded by the runbook's
//! `settings.retries` / `settings.retry_delay`).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::runbook::format::Settings;
use crate::runbook::lint::parse_duration;

/// No single wait is longer than this (unless `retry_delay` itself is).
pub const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retrying off.
    pub max: u32,
    /// Wait before the first retry; it doubles for each further one.
    pub first: Duration,
    /// Longest wait.
    pub cap: Duration,
}

impl RetryPolicy {
    /// No retries: a transient fault fails at once.
    pub const NONE: RetryPolicy = RetryPolicy {
        max: 0,
        first: Duration::ZERO,
        cap: Duration::ZERO,
    };

    pub fn from_settings(s: &Settings) -> RetryPolicy {
        // The lint refuses a retry_delay that is not a duration; 1 s is its default.
        let first = parse_duration(&s.retry_delay).unwrap_or(Duration::from_secs(1));
        RetryPolicy {
            max: s.retries,
            first,
            // A first delay the runbook sets above the cap is taken as asked.
            cap: MAX_DELAY.max(first),
        }
    }

    /// The wait before retry `attempt` (1 for the first), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_u64())
    }

    /// `first · 2^(attempt-1)`, capped, then drawn uniformly from its upper half by `r`:
    /// retries of several processes hit by the same outage do not arrive in step, and
    /// none waits less than half the planned time.
    pub fn delay_with(&self, attempt: u32, r: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let d = self.first.saturating_mul(1u32 << doublings).min(self.cap);
        let half = d / 2;
        let span = (d - half).as_nanos() as u64;
        let extra = if span == 0 { 0 } else { r % (span + 1) };
        half + Duration::from_nanos(extra)
    }
}

/// A fresh pseudo-random number: std's per-process random SipHash keys, renewed for each
/// `RandomState`. Jitter needs nothing stronger.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

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
        if let Some(c) = cause.downcast_ref::<crate::db::ConnectError>() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context;
    use std::io;

    fn policy(max: u32, first_ms: u64) -> RetryPolicy {
        RetryPolicy::from_settings(&Settings {
            retries: max,
            retry_delay: format!("{first_ms}ms"),
            ..Settings::default()
        })
    }

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let p = policy(5, 1000);
        assert_eq!(
            (p.max, p.first, p.cap),
            (5, Duration::from_secs(1), MAX_DELAY)
        );
        // r = 0 gives the lower bound, r = u64::MAX-ish some value ≤ the full delay.
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (40, 30)] {
            let full = Duration::from_secs(full);
            assert_eq!(p.delay_with(attempt, 0), full / 2, "attempt {attempt}");
            let span = (full - full / 2).as_nanos() as u64;
            assert_eq!(p.delay_with(attempt, span), full, "attempt {attempt}");
            for _ in 0..50 {
                let d = p.delay(attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        // A first delay above the cap is honoured, not cut.
        assert_eq!(policy(1, 60_000).delay_with(1, 0), Duration::from_secs(30));
        assert_eq!(policy(1, 60_000).cap, Duration::from_secs(60));
        assert_eq!(RetryPolicy::NONE.delay_with(3, 12345), Duration::ZERO);
        // The default settings: 5 retries, 1 s first.
        assert_eq!(
            RetryPolicy::from_settings(&Settings::default()),
            policy(5, 1000)
        );
    }

    #[test]
    fn jitter_varies() {
        let p = policy(3, 1000);
        let seen: std::collections::HashSet<Duration> = (0..20).map(|_| p.delay(3)).collect();
        assert!(seen.len() > 1, "no jitter: {seen:?}");
    }

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
