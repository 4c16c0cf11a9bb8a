//! One live run at a time: the process that drives a runbook's run (`run`, `rehearse`,
//! `rollback`) holds a lease on it in the journal store, table `leases`, one row per runbook.
//!
//! - Taking it is one transaction that also holds the journal's append lock (SQLite `BEGIN
//!   IMMEDIATE`, PostgreSQL's advisory lock), so two processes racing for it never both win.
//! - The holder renews `heartbeat` every [`HEARTBEAT_EVERY`] from a background task.
//! - Every append through a fenced [`Journal`] checks, inside its own transaction, that this
//!   process still holds the lease: a process that lost it can journal nothing more, and
//!   the executor journals before every step and after each batch, so it stops there.
//! - A holder that died is taken over: on the same host when its pid is gone (at once),
//!   otherwise once its heartbeat is older than [`STALE_AFTER`].
//! - Approvers are not fenced: `cutover sign` appends a sign-off to the waiting run from
//!   another process through [`Journal::append_sign_off`], which holds no lease and takes
//!   nothing but a sign-off record; the run reads it from the journal and decides the gate
//!   itself. Everything the run does stays behind the fence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use super::{Journal, Store};

/// How often the holder renews its heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A heartbeat older than this means its holder is gone (or cut off), unless that holder
/// is a live process on this very host.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Exit code of a `run`, `rehearse` or `rollback` refused because another process drives
/// the run, or stopped because another process took the run over.
pub const EXIT_LEASE_HELD: i32 = 8;

/// Who holds (or held) a lease, as journaled on a take-over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub run_id: String,
    pub host: String,
    pub pid: u32,
    /// RFC 3339 UTC.
    pub since: String,
}

/// The lease row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(super) struct Row {
    run_id: String,
    host: String,
    pid: i64,
    proc_start: String,
    pub(super) token: String,
    started_at: i64,
    heartbeat: i64,
}

impl Row {
    pub(super) fn holder(&self) -> Holder {
        Holder {
            run_id: self.run_id.clone(),
            host: self.host.clone(),
            pid: self.pid as u32,
            since: rfc3339(self.started_at),
        }
    }
}

/// Another live process drives the run: the refusal, printed as is.
#[derive(Debug, thiserror::Error)]
#[error(
    "{} is driven by pid {} on host {} since {} (heartbeat {} s ago); wait for it to finish, \
     or stop it there. A holder that died is taken over automatically: at once on the same \
     host, otherwise once its heartbeat is {} s old",
    if .holder.run_id.is_empty() { "this runbook's run" } else { .holder.run_id.as_str() },
    .holder.pid, .holder.host, hms(&.holder.since), .heartbeat_age.as_secs(), STALE_AFTER.as_secs()
)]
pub struct LeaseHeld {
    pub holder: Holder,
    pub heartbeat_age: Duration,
}

/// This process no longer holds the lease (another took the run over): it must stop.
#[derive(Debug, thiserror::Error)]
#[error(
    "this process no longer drives the run: the lease on runbook '{scope}' in the journal {journal} \
     is held by {}; nothing more is journaled or loaded from here",
    match .now { Some(h) => format!("pid {} on host {} since {}", h.pid, h.host, hms(&h.since)), None => "nobody".into() }
)]
pub struct LeaseLost {
    pub scope: String,
    pub journal: String,
    pub now: Option<Holder>,
}

/// What a fenced journal checks before each append.
#[derive(Debug)]
pub(super) struct Fence {
    pub scope: String,
    pub token: String,
    /// Set by the heartbeat when it finds the lease taken: checked before each production
    /// batch without a round trip (the append after the batch checks the row itself).
    pub lost: Arc<AtomicBool>,
}

/// What taking a lease found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// Nobody held it.
    Free,
    /// A dead or silent holder was replaced; `why` says how that was decided.
    TookOver { previous: Holder, why: String },
}

/// The lease this process holds. Renewed in the background until released or dropped.
pub struct Lease {
    journal: Journal,
    fenced: Journal,
    scope: String,
    token: String,
    lost: Arc<AtomicBool>,
    beat: tokio::task::JoinHandle<()>,
    pub taken: Taken,
    pub me: Holder,
}

/// This process, as a lease holder.
struct Me {
    host: String,
    pid: u32,
    proc_start: String,
    token: String,
}

fn me() -> Me {
    let pid = std::process::id();
    let here = Local::now();
    // Stored in `proc_start`: which machine, which boot, which process of that pid.
    let proc_start = format!(
        "{}/{}/{}",
        here.machine,
        here.boot,
        proc_start(pid).unwrap_or_default()
    );
    let nonce = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let host = hostname();
    Me {
        token: format!("{host}/{pid}/{proc_start}/{nonce:x}"),
        host,
        pid,
        proc_start,
    }
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The process's start time in clock ticks since boot (`/proc/PID/stat` field 22): with
/// the pid, it tells a live holder from a later process that reused its pid. `None` when
/// there is no such (live) process; a zombie counts as gone.
fn proc_start(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state …`: comm may hold spaces and parentheses, so split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19).map(|s| s.to_string())
}

/// This machine: its host name, `/etc/machine-id` (two machines may share a name) and
/// boot id (a holder from before a restart is gone, whatever its pid).
struct Local {
    host: String,
    machine: String,
    boot: String,
}

impl Local {
    fn now() -> Local {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        };
        Local {
            host: hostname(),
            machine: read("/etc/machine-id"),
            boot: read("/proc/sys/kernel/random/boot_id"),
        }
    }
}

/// Why the holder's process is known to be gone, if it is on this machine and gone
/// (`/proc` needed); `None` when it may be alive, or is elsewhere.
fn holder_gone(row: &Row, here: &Local) -> Option<String> {
    if row.host != here.host || !std::path::Path::new("/proc/self/stat").exists() {
        return None;
    }
    let mut parts = row.proc_start.splitn(3, '/');
    let (machine, boot, start) = (parts.next()?, parts.next()?, parts.next()?);
    if machine != here.machine {
        return None; // another machine of the same name
    }
    if boot != here.boot {
        return Some(format!(
            "host {} restarted since pid {} took the lease",
            row.host, row.pid
        ));
    }
    match proc_start(row.pid as u32) {
        None => Some(format!(
            "pid {} on this host ({}) is gone",
            row.pid, row.host
        )),
        Some(s) if !start.is_empty() && s != start => Some(format!(
            "pid {} on this host ({}) is gone (the pid now belongs to another process)",
            row.pid, row.host
        )),
        Some(_) => None,
    }
}

/// Decide about a present holder: `Ok(why)` to take it over, `Err(age)` when it is live.
fn judge(row: &Row, here: &Local, now_ms: i64, stale_after: Duration) -> Result<String, Duration> {
    let age = Duration::from_millis((now_ms - row.heartbeat).max(0) as u64);
    if let Some(why) = holder_gone(row, here) {
        return Ok(why);
    }
    if age > stale_after {
        return Ok(format!(
            "its heartbeat is {} s old (more than {} s)",
            age.as_secs(),
            stale_after.as_secs()
        ));
    }
    Err(age)
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// `2026-11-29T15:40:02Z` as `15:40:02 UTC` (with the date when it is not today).
fn hms(ts: &str) -> String {
    match chrono::DateTime::parse_from_rfc3339(ts) {
        Ok(t) if t.date_naive() == chrono::Utc::now().date_naive() => {
            t.format("%H:%M:%S UTC").to_string()
        }
        Ok(t) => t.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        Err(_) => ts.to_string(),
    }
}

pub(super) const SELECT_SQL: &str = "SELECT run_id, host, pid, proc_start, token, started_at, heartbeat \
                          FROM leases WHERE scope = $1";
const INSERT_SQL: &str = "INSERT INTO leases \
                          (scope, run_id, host, pid, proc_start, token, started_at, heartbeat) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7, $7)";
// Conditional on the token read in the same transaction: a take-over replaces exactly
// the holder that was judged dead.
const REPLACE_SQL: &str = "UPDATE leases SET run_id = $2, host = $3, pid = $4, proc_start = $5, \
                           token = $6, started_at = $7, heartbeat = $7 \
                           WHERE scope = $1 AND token = $8";
const BEAT_SQL: &str = "UPDATE leases SET heartbeat = $3 WHERE scope = $1 AND token = $2";
const BIND_SQL: &str = "UPDATE leases SET run_id = $3 WHERE scope = $1 AND token = $2";
const RELEASE_SQL: &str = "DELETE FROM leases WHERE scope = $1 AND token = $2";
const SQLITE_NOW: &str = "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";
const PG_NOW: &str = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT";

/// Inside an open transaction that holds the append lock: read the lease, judge it, and
/// insert or replace it with ours. A macro because the backends' transactions differ.
macro_rules! take_in_tx {
    ($tx:expr, $now_sql:expr, $scope:expr, $run_id:expr, $me:expr, $stale:expr) => {
        async {
            let now: i64 = sqlx::query_scalar($now_sql).fetch_one(&mut *$tx).await?;
            let row: Option<Row> = sqlx::query_as(SELECT_SQL)
                .bind($scope)
                .fetch_optional(&mut *$tx)
                .await?;
            let taken = match &row {
                None => {
                    sqlx::query(INSERT_SQL)
                        .bind($scope)
                        .bind($run_id)
                        .bind(&$me.host)
                        .bind($me.pid as i64)
                        .bind(&$me.proc_start)
                        .bind(&$me.token)
                        .bind(now)
                        .execute(&mut *$tx)
                        .await?;
                    Taken::Free
                }
                Some(r) => match judge(r, &Local::now(), now, $stale) {
                    Err(age) => {
                        return Ok::<_, anyhow::Error>(Err(LeaseHeld {
                            holder: r.holder(),
                            heartbeat_age: age,
                        }));
                    }
                    Ok(why) => {
                        let n = sqlx::query(REPLACE_SQL)
                            .bind($scope)
                            .bind($run_id)
                            .bind(&$me.host)
                            .bind($me.pid as i64)
                            .bind(&$me.proc_start)
                            .bind(&$me.token)
                            .bind(now)
                            .bind(&r.token)
                            .execute(&mut *$tx)
                            .await?
                            .rows_affected();
                        anyhow::ensure!(n == 1, "the lease changed while it was being taken over");
                        Taken::TookOver {
                            previous: r.holder(),
                            why,
                        }
                    }
                },
            };
            Ok(Ok((taken, now)))
        }
    };
}

impl Journal {
    /// Take the lease on `scope` (a runbook's name) for `run_id` (may be empty until the
    /// run has an id; see [`Lease::bind_run`]). `Ok(Err(held))` when a live process holds it.
    /// `on_lost` runs once if the heartbeat finds the lease taken by another process.
    pub async fn take_lease(
        &self,
        scope: &str,
        run_id: &str,
        stale_after: Duration,
        on_lost: impl FnOnce() + Send + 'static,
    ) -> Result<Result<Lease, LeaseHeld>> {
        let me = me();
        let taken = match &self.store {
            Store::Sqlite(pool) => {
                let mut tx = super::begin_sqlite(pool).await?;
                let r = take_in_tx!(tx, SQLITE_NOW, scope, run_id, me, stale_after).await?;
                tx.commit().await?;
                r
            }
            Store::Postgres(pool) => {
                // The append lock: no append of the previous holder interleaves with the
                // take-over, and two takers queue here.
                let mut tx = super::begin_pg(pool).await?;
                let r = take_in_tx!(tx, PG_NOW, scope, run_id, me, stale_after).await?;
                tx.commit().await?;
                r
            }
        };
        let (taken, now) = match taken {
            Ok(t) => t,
            Err(held) => return Ok(Err(held)),
        };
        let lost = Arc::new(AtomicBool::new(false));
        let fenced = Journal {
            store: self.store.clone(),
            location: self.location.clone(),
            fence: Some(Arc::new(Fence {
                scope: scope.to_string(),
                token: me.token.clone(),
                lost: lost.clone(),
            })),
        };
        let beat = {
            let (j, scope, token, lost) = (
                self.clone(),
                scope.to_string(),
                me.token.clone(),
                lost.clone(),
            );
            tokio::spawn(async move {
                let mut every = tokio::time::interval(HEARTBEAT_EVERY);
                every.tick().await;
                let mut on_lost = Some(on_lost);
                loop {
                    every.tick().await;
                    match j.lease_exec(BEAT_SQL, &scope, &token, None).await {
                        Ok(0) => {
                            lost.store(true, Ordering::SeqCst);
                            tracing::error!(scope = %scope, "lease lost: another process took the run over; stopping");
                            if let Some(f) = on_lost.take() {
                                f();
                            }
                        }
                        Ok(_) => {}
                        // Renewed at the next beat; a long outage lets the lease go stale,
                        // and the fence stops this process at its next record.
                        Err(e) => tracing::warn!(scope = %scope, "lease heartbeat failed: {e:#}"),
                    }
                }
            })
        };
        Ok(Ok(Lease {
            journal: self.clone(),
            fenced,
            scope: scope.to_string(),
            token: me.token,
            lost,
            beat,
            taken,
            me: Holder {
                run_id: run_id.to_string(),
                host: me.host,
                pid: me.pid,
                since: rfc3339(now),
            },
        }))
    }

    /// Run one of the holder's statements (`scope`, `token` and an optional third bind:
    /// the time for a heartbeat, the run id to bind). Returns the rows affected.
    async fn lease_exec(
        &self,
        sql: &'static str,
        scope: &str,
        token: &str,
        third: Option<&str>,
    ) -> Result<u64> {
        macro_rules! exec {
            ($pool:expr, $now:expr) => {{
                let q = sqlx::query(sql).bind(scope).bind(token);
                let q = if sql == BEAT_SQL {
                    let now: i64 = sqlx::query_scalar($now).fetch_one($pool).await?;
                    q.bind(now)
                } else if let Some(t) = third {
                    q.bind(t.to_string())
                } else {
                    q
                };
                q.execute($pool).await?.rows_affected()
            }};
        }
        Ok(match &self.store {
            Store::Sqlite(p) => exec!(p, SQLITE_NOW),
            Store::Postgres(p) => exec!(p, PG_NOW),
        })
    }

    /// Before a write outside the journal (a production batch): `Err(LeaseLost)` once the
    /// heartbeat found this handle's lease taken by another process. No round trip: an
    /// atomic read, so it costs nothing per batch. Unfenced handles always pass.
    pub async fn ensure_lease(&self) -> Result<()> {
        let Some(f) = &self.fence else { return Ok(()) };
        if !f.lost.load(Ordering::SeqCst) {
            return Ok(());
        }
        Err(LeaseLost {
            scope: f.scope.clone(),
            journal: self.location.clone(),
            now: self
                .lease_holder(&f.scope)
                .await
                .ok()
                .flatten()
                .map(|(h, _)| h),
        }
        .into())
    }

    /// Who holds the lease on `scope` now, and how old its heartbeat is.
    pub async fn lease_holder(&self, scope: &str) -> Result<Option<(Holder, Duration)>> {
        macro_rules! read {
            ($pool:expr, $now:expr) => {{
                let now: i64 = sqlx::query_scalar($now).fetch_one($pool).await?;
                let row: Option<Row> = sqlx::query_as(SELECT_SQL)
                    .bind(scope)
                    .fetch_optional($pool)
                    .await?;
                row.map(|r| {
                    (
                        r.holder(),
                        Duration::from_millis((now - r.heartbeat).max(0) as u64),
                    )
                })
            }};
        }
        Ok(match &self.store {
            Store::Sqlite(p) => read!(p, SQLITE_NOW),
            Store::Postgres(p) => read!(p, PG_NOW),
        })
    }
}

impl Lease {
    /// The journal handle to drive the run with: each append checks the lease is still ours.
    pub fn journal(&self) -> Journal {
        self.fenced.clone()
    }

    /// Name the run this lease drives, once it has an id.
    pub async fn bind_run(&mut self, run_id: &str) -> Result<()> {
        let n = self
            .journal
            .lease_exec(BIND_SQL, &self.scope, &self.token, Some(run_id))
            .await?;
        if n == 0 {
            return Err(self.lost_error().await.into());
        }
        self.me.run_id = run_id.to_string();
        Ok(())
    }

    /// Whether the heartbeat found the lease taken by another process.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    async fn lost_error(&self) -> LeaseLost {
        LeaseLost {
            scope: self.scope.clone(),
            journal: self.journal.location.clone(),
            now: self
                .journal
                .lease_holder(&self.scope)
                .await
                .ok()
                .flatten()
                .map(|(h, _)| h),
        }
    }

    /// Give the lease up (the run ended): the next process takes it at once.
    pub async fn release(self) -> Result<()> {
        self.beat.abort();
        self.journal
            .lease_exec(RELEASE_SQL, &self.scope, &self.token, None)
            .await?;
        Ok(())
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.beat.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(host: &str, pid: u32, proc_start: &str, heartbeat: i64) -> Row {
        Row {
            run_id: "run-1".into(),
            host: host.into(),
            pid: pid as i64,
            proc_start: proc_start.into(),
            token: "t".into(),
            started_at: 0,
            heartbeat,
        }
    }

    /// Take-over rules, one row each: who holds it, how old the heartbeat is → taken over?
    #[test]
    fn take_over_rules() {
        let here = Local::now();
        let host = here.host.clone();
        let me = std::process::id();
        let start = proc_start(me).expect("/proc is needed for the lease's liveness check");
        let id = |boot: &str, start: &str| format!("{}/{boot}/{start}", here.machine);
        let my_start = id(&here.boot, &start);
        let other_machine = format!("another-machine/{}/{start}", here.boot);
        // A process that has certainly exited: a child we waited for.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let stale = STALE_AFTER.as_millis() as i64;
        let now = 10_000_000;
        let cases: Vec<(&str, Row, bool)> = vec![
            (
                "live pid here, fresh",
                row(&host, me, &my_start, now - 1_000),
                false,
            ),
            (
                "live pid here, silent",
                row(&host, me, &my_start, now - stale - 1),
                true,
            ),
            (
                "dead pid here, fresh",
                row(&host, dead, &id(&here.boot, "1"), now),
                true,
            ),
            (
                "reused pid here, fresh",
                row(&host, me, &id(&here.boot, "1"), now),
                true,
            ),
            (
                "here before a restart, fresh",
                row(&host, me, &id("old-boot", &start), now),
                true,
            ),
            (
                "same name, other machine, fresh",
                row(&host, dead, &other_machine, now),
                false,
            ),
            (
                "same name, other machine, stale",
                row(&host, dead, &other_machine, now - stale - 1),
                true,
            ),
            (
                "other host, fresh",
                row("elsewhere", dead, "1", now - 1_000),
                false,
            ),
            (
                "other host, at the limit",
                row("elsewhere", dead, "1", now - stale),
                false,
            ),
            (
                "other host, stale",
                row("elsewhere", dead, "1", now - stale - 1),
                true,
            ),
        ];
        for (what, r, take) in cases {
            let got = judge(&r, &here, now, STALE_AFTER);
            assert_eq!(got.is_ok(), take, "{what}: {got:?}");
        }
    }

    #[test]
    fn refusal_names_run_pid_host_and_heartbeat_age() {
        let msg = LeaseHeld {
            holder: Holder {
                run_id: "20261129T154002Z-ab12".into(),
                host: "ops-1".into(),
                pid: 4242,
                since: chrono::Utc::now()
                    .date_naive()
                    .and_hms_opt(15, 40, 2)
                    .unwrap()
                    .and_utc()
                    .to_rfc3339(),
            },
            heartbeat_age: Duration::from_secs(2),
        }
        .to_string();
        assert!(
            msg.starts_with(
                "20261129T154002Z-ab12 is driven by pid 4242 on host ops-1 since 15:40:02 UTC (heartbeat 2 s ago)"
            ),
            "{msg}"
        );
    }
}
