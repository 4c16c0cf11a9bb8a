//! The journal: an append-only, hash-chained event log. It is the source of truth for a
//! run; the console, the summary and (later) resume read it back.
//!
//! `hash_n = SHA-256(hash_{n-1} ‖ seq ‖ run_id ‖ ts ‖ payload)`, where `payload` is the exact
//! JSON text stored, so verification needs no canonicalisation.

pub mod events;
pub mod follow;
pub mod lease;

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures::stream::BoxStream;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, SqlitePool};

use crate::db::Dialect;
use events::{Event, Record};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Advisory-lock key that serialises appends to a PostgreSQL journal ("cutover" in ASCII).
/// Advisory locks are per database, so separate journals do not contend.
const PG_APPEND_LOCK: i64 = 0x0063_7574_6f76_6572;

// `$n` placeholders work on both backends (sqlx's SQLite driver maps `$n` to the n-th bind).
const LAST_SQL: &str = "SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1";
const INSERT_SQL: &str = "INSERT INTO events (seq, run_id, ts, kind, payload, prev_hash, hash) \
                          VALUES ($1, $2, $3, $4, $5, $6, $7)";
const RUN_SQL: &str = "SELECT seq, run_id, ts, payload, prev_hash, hash FROM events \
                       WHERE run_id = $1 ORDER BY seq";
const LAST_RUN_SQL: &str =
    "SELECT run_id FROM events WHERE kind = 'run_started' ORDER BY seq DESC LIMIT 1";
const STARTS_SQL: &str = "SELECT seq, run_id, ts, payload, prev_hash, hash FROM events \
                          WHERE kind = 'run_started' ORDER BY seq";
const AFTER_SQL: &str = "SELECT seq, run_id, ts, payload, prev_hash, hash FROM events \
                         WHERE run_id = $1 AND seq > $2 ORDER BY seq LIMIT $3";
/// The channel a PostgreSQL journal NOTIFYs on after each append; the payload is
/// `RUN_ID:SEQ`. Followers only take it as a wake-up and re-read by sequence number.
pub const NOTIFY_CHANNEL: &str = "cutover_journal";
const ALL_SQL: &str = "SELECT seq, run_id, ts, payload, prev_hash, hash FROM events ORDER BY seq";

#[derive(Clone)]
pub struct Journal {
    store: Store,
    pub location: String,
    /// Set on the handle of the process that holds the run's lease: every append first
    /// checks, in its transaction, that the lease is still this process's.
    fence: Option<Arc<lease::Fence>>,
}

/// Where the journal lives. Both hold the same table, so records and hashes are identical.
#[derive(Clone)]
enum Store {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Outcome of `verify`: how many records were checked and the first broken link, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub records: u64,
    pub first_bad: Option<(i64, String)>,
    /// The last record whose link checked out: the journal's head when it is intact.
    pub head: Option<Head>,
}

/// The end of the chain: `seq:hash` of its last record. Kept by the operator (the run
/// prints it and writes it into summary.json), it lets `journal verify --expect-head`
/// tell a journal whose tail was cut off from one that is merely intact.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl std::str::FromStr for Head {
    type Err = String;
    fn from_str(s: &str) -> Result<Head, String> {
        let bad = || format!("'{s}': expected SEQ:HASH (as `journal verify` prints the head)");
        let (seq, hash) = s.trim().split_once(':').ok_or_else(bad)?;
        let seq = seq
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(bad)?;
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        Ok(Head {
            seq,
            hash: hash.to_ascii_lowercase(),
        })
    }
}

/// Where a journal at `location` (a path or a `sqlite:` URL) lives on disk; `None` on a
/// server.
fn local_file(location: &str) -> Option<std::path::PathBuf> {
    match Dialect::of_url(location) {
        Some(Dialect::Sqlite) => crate::db::sqlite_path(location),
        Some(_) => None,
        None => Some(location.into()),
    }
}

/// "opening the journal LOCATION", with the reason when its file system is full (SQLite
/// tends to call that a "disk I/O error").
pub fn open_context(location: &str) -> String {
    format!(
        "opening the journal {}{}",
        crate::db::redact_url(location),
        full_note(location)
    )
}

/// " (the file system holding … is full)" when the journal's file system is full, else "".
pub fn full_note(location: &str) -> String {
    local_file(location)
        .and_then(|p| crate::disk::full_hint(&p))
        .map(|h| format!(" ({h})"))
        .unwrap_or_default()
}

/// Exit code of `journal verify --expect-head` when the journal no longer reaches that head.
pub const EXIT_HEAD_DIFFERS: i32 = 9;

/// One stored row, as read back from either backend.
#[derive(sqlx::FromRow)]
struct Row {
    seq: i64,
    run_id: String,
    ts: String,
    payload: String,
    prev_hash: String,
    hash: String,
}

pub fn chain_hash(prev: &str, seq: i64, run_id: &str, ts: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    for part in [prev, &seq.to_string(), run_id, ts, payload] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

/// Inside an open transaction: read the chain's tip, link the new record to it and insert
/// it. Returns `(seq, prev_hash, hash)`. A macro because the two backends' transactions
/// are different types.
macro_rules! link_and_insert {
    ($tx:expr, $run_id:expr, $ts:expr, $kind:expr, $payload:expr) => {
        async {
            let last: Option<(i64, String)> =
                sqlx::query_as(LAST_SQL).fetch_optional(&mut *$tx).await?;
            let (seq, prev) = last.map_or((1, GENESIS.to_string()), |(s, h)| (s + 1, h));
            let hash = chain_hash(&prev, seq, $run_id, $ts, $payload);
            sqlx::query(INSERT_SQL)
                .bind(seq)
                .bind($run_id)
                .bind($ts)
                .bind($kind)
                .bind($payload)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *$tx)
                .await?;
            Ok::<_, sqlx::Error>((seq, prev, hash))
        }
    };
}

/// Inside an append's transaction: stop with `LeaseLost` unless this handle's lease is
/// still held by this process.
macro_rules! check_fence {
    ($j:expr, $tx:expr) => {
        if let Some(f) = &$j.fence {
            let row: Option<lease::Row> = sqlx::query_as(lease::SELECT_SQL)
                .bind(f.scope.as_str())
                .fetch_optional(&mut *$tx)
                .await?;
            if row.as_ref().is_none_or(|r| r.token != f.token) {
                return Err(lease::LeaseLost {
                    scope: f.scope.clone(),
                    journal: $j.location.clone(),
                    now: row.map(|r| r.holder()),
                }
                .into());
            }
        }
    };
}

/// Inside an open transaction: read run `$run_id`'s records, let `$judge` make the sign-off
/// from them, link and insert it. Returns `(event, seq, prev_hash, hash)`. A macro for the
/// same reason as `link_and_insert!`.
macro_rules! judge_and_insert {
    ($tx:expr, $run_id:expr, $ts:expr, $judge:expr) => {
        async {
            let rows: Vec<Row> = sqlx::query_as(RUN_SQL)
                .bind($run_id)
                .fetch_all(&mut *$tx)
                .await?;
            let records = rows
                .into_iter()
                .map(to_record)
                .collect::<Result<Vec<_>>>()?;
            let event: Event = $judge(&records);
            anyhow::ensure!(
                matches!(
                    event,
                    Event::SignOffRecorded { .. } | Event::SignOffRefused { .. }
                ),
                "only a sign-off can be journaled from outside the run, not a {}",
                event.kind()
            );
            let payload = serde_json::to_string(&event)?;
            let (seq, prev, hash) =
                link_and_insert!($tx, $run_id, $ts, event.kind(), &payload).await?;
            Ok::<_, anyhow::Error>((event, seq, prev, hash))
        }
    };
}

/// An append's transaction on SQLite. IMMEDIATE takes the write lock before the tip is
/// read; other appenders wait on it (busy timeout). A plain deferred BEGIN fails with
/// "database is locked" once a concurrent commit makes its read snapshot stale.
pub(crate) async fn begin_sqlite(
    pool: &SqlitePool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Sqlite>> {
    pool.begin_with("BEGIN IMMEDIATE").await
}

/// An append's transaction on PostgreSQL: READ COMMITTED whatever the server default (each
/// statement then sees rows committed before it, so the tip read after the lock is the real
/// tip), queued on the append lock until the previous appender commits, so two appenders
/// never link to the same tip; the lock goes with the commit or rollback.
pub(crate) async fn begin_pg(
    pool: &PgPool,
) -> sqlx::Result<sqlx::Transaction<'static, sqlx::Postgres>> {
    let mut tx = pool
        .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
        .await?;
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(PG_APPEND_LOCK)
        .execute(&mut *tx)
        .await?;
    Ok(tx)
}

/// Wake the followers of a PostgreSQL journal: delivered at commit, so a follower woken by
/// it finds the row.
async fn notify(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    run_id: &str,
    seq: i64,
) -> sqlx::Result<()> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(NOTIFY_CHANNEL)
        .bind(format!("{run_id}:{seq}"))
        .execute(&mut **tx)
        .await
        .map(|_| ())
}

impl Journal {
    /// Open `url` (a `sqlite:` or `postgres:` URL) or, for a plain path, the SQLite file there.
    pub async fn open(url_or_path: &str) -> Result<Journal> {
        let url = if url_or_path.contains(':') && !url_or_path.starts_with('/') {
            url_or_path.to_string()
        } else {
            format!("sqlite://{url_or_path}")
        };
        let location = crate::db::redact_url(&url);
        let store = match Dialect::of_url(&url) {
            Some(Dialect::Sqlite) => {
                // A new journal opened by two processes at once: switching it to WAL needs
                // the file to itself, and SQLite answers "database is locked" at once instead
                // of waiting. The other process is done within moments; try again.
                let mut attempt = 0;
                let pool = loop {
                    attempt += 1;
                    match crate::db::sqlite_pool(&url, true).await {
                        Ok(p) => break p,
                        Err(e)
                            if attempt < 20 && format!("{e:#}").contains("database is locked") =>
                        {
                            tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await
                        }
                        Err(e) => return Err(e),
                    }
                };
                // SQLite has no migration lock: two processes opening a new journal at once
                // both try to apply a migration and one fails on its version row. The other
                // one's migration then stands, so trying again a moment later finds it applied.
                let mut attempt = 0;
                loop {
                    attempt += 1;
                    match sqlx::migrate!("./migrations/sqlite").run(&pool).await {
                        Ok(()) => break,
                        Err(_) if attempt < 5 => {
                            tokio::time::sleep(std::time::Duration::from_millis(100 * attempt))
                                .await
                        }
                        Err(e) => {
                            return Err(e)
                                .with_context(|| format!("journal {location}: migration"));
                        }
                    }
                }
                Store::Sqlite(pool)
            }
            Some(Dialect::Postgres) => {
                // No password argument: one in the URL, PGPASSWORD or ~/.pgpass applies.
                let pool = crate::db::pg_pool(&url, None).await?;
                sqlx::migrate!("./migrations/postgres")
                    .run(&pool)
                    .await
                    .with_context(|| format!("journal {location}: migration"))?;
                Store::Postgres(pool)
            }
            Some(Dialect::MySql) => anyhow::bail!(
                "journal {location}: MySQL/MariaDB cannot hold the journal; the journal \
                 supports SQLite and PostgreSQL (a path, a sqlite: URL or a postgres:// URL)"
            ),
            None => anyhow::bail!(
                "journal {location}: unknown URL scheme; the journal supports SQLite and \
                 PostgreSQL (a path, a sqlite: URL or a postgres:// URL)"
            ),
        };
        Ok(Journal {
            store,
            location,
            fence: None,
        })
    }

    pub async fn open_path(path: &Path) -> Result<Journal> {
        Journal::open(&path.display().to_string()).await
    }

    /// Append one event; returns the record as stored. An error names the journal (a
    /// read-only or full disk says which file or database).
    pub async fn append(&self, run_id: &str, event: &Event) -> Result<Record> {
        self.append_inner(run_id, event).await.map_err(|e| {
            if e.is::<lease::LeaseLost>() {
                e
            } else {
                let full = full_note(&self.location);
                e.context(format!(
                    "journal {}: cannot write the {} record{full}",
                    self.location,
                    event.kind()
                ))
            }
        })
    }

    async fn append_inner(&self, run_id: &str, event: &Event) -> Result<Record> {
        let payload = serde_json::to_string(event)?;
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let kind = event.kind();
        let (seq, prev_hash, hash) = match &self.store {
            Store::Sqlite(pool) => {
                let mut tx = begin_sqlite(pool).await?;
                check_fence!(self, tx);
                let linked = link_and_insert!(tx, run_id, &ts, kind, &payload).await?;
                tx.commit().await?;
                linked
            }
            Store::Postgres(pool) => {
                let mut tx = begin_pg(pool).await?;
                check_fence!(self, tx);
                let linked = link_and_insert!(tx, run_id, &ts, kind, &payload).await?;
                notify(&mut tx, run_id, linked.0).await?;
                tx.commit().await?;
                linked
            }
        };
        Ok(Record {
            seq,
            run_id: run_id.into(),
            ts,
            event: event.clone(),
            prev_hash,
            hash,
        })
    }

    /// Append a sign-off from outside the process that drives the run (`cutover sign`):
    /// the run's lease fences the run's own writes, not an approver's, so this takes no
    /// lease; and it takes nothing but a sign-off. `judge` reads the run's records inside
    /// the append's transaction (with the append lock held) and returns the
    /// `sign_off_recorded` or `sign_off_refused` to append, so the judgement and the
    /// record cannot be overtaken by another appender.
    pub async fn append_sign_off(
        &self,
        run_id: &str,
        judge: impl FnOnce(&[Record]) -> Event,
    ) -> Result<Record> {
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        let (event, seq, prev_hash, hash) = match &self.store {
            Store::Sqlite(pool) => {
                let mut tx = begin_sqlite(pool).await?;
                let linked = judge_and_insert!(tx, run_id, &ts, judge).await?;
                tx.commit().await?;
                linked
            }
            Store::Postgres(pool) => {
                let mut tx = begin_pg(pool).await?;
                let linked = judge_and_insert!(tx, run_id, &ts, judge).await?;
                // A watch following this journal sees the sign-off at once.
                notify(&mut tx, run_id, linked.1).await?;
                tx.commit().await?;
                linked
            }
        };
        Ok(Record {
            seq,
            run_id: run_id.into(),
            ts,
            event,
            prev_hash,
            hash,
        })
    }

    /// All records of one run, in order.
    pub async fn run_records(&self, run_id: &str) -> Result<Vec<Record>> {
        let rows: Vec<Row> = match &self.store {
            Store::Sqlite(p) => sqlx::query_as(RUN_SQL).bind(run_id).fetch_all(p).await?,
            Store::Postgres(p) => sqlx::query_as(RUN_SQL).bind(run_id).fetch_all(p).await?,
        };
        rows.into_iter().map(to_record).collect()
    }

    /// Up to `limit` records of one run after sequence number `seq` (0: from the start), in
    /// order: what a follower reads after each wake-up.
    pub async fn records_after(&self, run_id: &str, seq: i64, limit: u32) -> Result<Vec<Record>> {
        let limit = i64::from(limit);
        let rows: Vec<Row> = match &self.store {
            Store::Sqlite(p) => {
                sqlx::query_as(AFTER_SQL)
                    .bind(run_id)
                    .bind(seq)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
            Store::Postgres(p) => {
                sqlx::query_as(AFTER_SQL)
                    .bind(run_id)
                    .bind(seq)
                    .bind(limit)
                    .fetch_all(p)
                    .await?
            }
        };
        rows.into_iter().map(to_record).collect()
    }

    /// The PostgreSQL pool behind this journal (`None` on SQLite): a follower listens on it.
    pub(crate) fn pg_pool(&self) -> Option<&PgPool> {
        match &self.store {
            Store::Postgres(p) => Some(p),
            Store::Sqlite(_) => None,
        }
    }

    /// The newest run in this journal, if any.
    pub async fn last_run_id(&self) -> Result<Option<String>> {
        Ok(match &self.store {
            Store::Sqlite(p) => sqlx::query_scalar(LAST_RUN_SQL).fetch_optional(p).await?,
            Store::Postgres(p) => sqlx::query_scalar(LAST_RUN_SQL).fetch_optional(p).await?,
        })
    }

    /// The `RunStarted` record of every run, oldest first.
    pub async fn run_starts(&self) -> Result<Vec<Record>> {
        let rows: Vec<Row> = match &self.store {
            Store::Sqlite(p) => sqlx::query_as(STARTS_SQL).fetch_all(p).await?,
            Store::Postgres(p) => sqlx::query_as(STARTS_SQL).fetch_all(p).await?,
        };
        rows.into_iter().map(to_record).collect()
    }

    /// Recompute the whole chain.
    pub async fn verify(&self) -> Result<Verification> {
        use futures::TryStreamExt;
        let mut rows: BoxStream<'_, Result<Row, sqlx::Error>> = match &self.store {
            Store::Sqlite(p) => sqlx::query_as(ALL_SQL).fetch(p),
            Store::Postgres(p) => sqlx::query_as(ALL_SQL).fetch(p),
        };
        let mut prev = GENESIS.to_string();
        let mut expect_seq = 1;
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            let seq = r.seq;
            n += 1;
            let bad = if seq != expect_seq {
                Some(format!("sequence gap: expected {expect_seq}, found {seq}"))
            } else if r.prev_hash != prev {
                Some("prev_hash does not match the previous record's hash".to_string())
            } else if chain_hash(&prev, seq, &r.run_id, &r.ts, &r.payload) != r.hash {
                Some("hash does not match the record's content (edited?)".to_string())
            } else if serde_json::from_str::<Event>(&r.payload).is_err() {
                Some("payload is not a known event".to_string())
            } else {
                None
            };
            if let Some(why) = bad {
                return Ok(Verification {
                    records: n,
                    first_bad: Some((seq, why)),
                    head: (seq > 1).then(|| Head {
                        seq: seq - 1,
                        hash: prev,
                    }),
                });
            }
            prev = r.hash;
            expect_seq = seq + 1;
        }
        Ok(Verification {
            records: n,
            first_bad: None,
            head: (expect_seq > 1).then(|| Head {
                seq: expect_seq - 1,
                hash: prev,
            }),
        })
    }

    /// The hash of record `seq`, if the journal holds it.
    pub async fn hash_at(&self, seq: i64) -> Result<Option<String>> {
        const SQL: &str = "SELECT hash FROM events WHERE seq = $1";
        Ok(match &self.store {
            Store::Sqlite(p) => sqlx::query_scalar(SQL).bind(seq).fetch_optional(p).await?,
            Store::Postgres(p) => sqlx::query_scalar(SQL).bind(seq).fetch_optional(p).await?,
        })
    }

    pub async fn close(&self) {
        match &self.store {
            Store::Sqlite(p) => p.close().await,
            Store::Postgres(p) => p.close().await,
        }
    }
}

fn to_record(r: Row) -> Result<Record> {
    Ok(Record {
        seq: r.seq,
        event: serde_json::from_str(&r.payload).context("journal payload")?,
        run_id: r.run_id,
        ts: r.ts,
        prev_hash: r.prev_hash,
        hash: r.hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdb::TempDb;
    use events::*;

    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum Backend {
        Sqlite,
        Postgres,
    }

    /// Each body runs once per backend, as `<body>::sqlite` and `<body>::postgres`. Multi-thread
    /// runtime so the concurrent appenders really overlap.
    macro_rules! on_both_backends {
        ($($body:ident),* $(,)?) => {$(
            mod $body {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$body(super::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$body(super::Backend::Postgres).await
                }
            }
        )*};
    }

    on_both_backends!(
        chain_links_every_record_and_reads_back,
        database_refuses_update_and_delete,
        tampering_is_detected_at_the_edited_record,
        last_run_id_is_the_newest_run_started,
        concurrent_appenders_never_fork_the_chain,
        racing_takers_one_wins_the_lease,
        a_live_lease_is_refused_a_stale_one_taken_over_and_the_old_holder_fenced,
        a_released_lease_is_free_again,
        records_after_reads_one_run_from_a_sequence_number,
        an_approver_appends_a_sign_off_beside_the_lease_holder_and_nothing_else,
    );

    /// A new, empty journal. Fields drop in order: the journal, then its storage.
    struct Fresh {
        j: Journal,
        /// What `Journal::open` takes, to open more handles on the same journal.
        loc: String,
        _dir: Option<tempfile::TempDir>,
        _db: Option<TempDb>,
    }

    async fn fresh(b: Backend, tag: &str) -> Fresh {
        match b {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("j.db");
                Fresh {
                    j: Journal::open_path(&path).await.unwrap(),
                    loc: path.display().to_string(),
                    _dir: Some(dir),
                    _db: None,
                }
            }
            Backend::Postgres => {
                let db = TempDb::postgres(tag);
                let loc = db.url();
                Fresh {
                    j: Journal::open(&loc).await.unwrap(),
                    loc,
                    _dir: None,
                    _db: Some(db),
                }
            }
        }
    }

    /// SQL straight against the journal's database, as anyone with access could run it.
    async fn raw(j: &Journal, sql: &'static str, binds: &[&str]) -> Result<u64, sqlx::Error> {
        Ok(match &j.store {
            Store::Sqlite(p) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(p).await?.rows_affected()
            }
            Store::Postgres(p) => {
                let mut q = sqlx::query(sql);
                for b in binds {
                    q = q.bind(*b);
                }
                q.execute(p).await?.rows_affected()
            }
        })
    }

    fn ev(step: &str) -> Event {
        Event::StepStarted { step: step.into() }
    }

    fn started(run_id: &str) -> Event {
        Event::RunStarted {
            run_id: run_id.into(),
            mode: RunMode::Rehearse,
            runbook_path: "rb.toml".into(),
            runbook_name: "rb".into(),
            runbook_sha256: GENESIS.into(),
            steps: vec![],
            vars: Default::default(),
            tool_version: "test".into(),
            artifacts_dir: "runs".into(),
            environments: vec![],
            window_end: None,
        }
    }

    /// An intact chain of `records` whose head is its last record.
    fn assert_intact(v: &Verification, records: u64) {
        assert_eq!((v.records, &v.first_bad), (records, &None), "{v:?}");
        assert_eq!(
            v.head.as_ref().map(|h| h.seq),
            Some(records as i64),
            "{v:?}"
        );
    }

    async fn chain_links_every_record_and_reads_back(b: Backend) {
        let f = fresh(b, "chain").await;
        let j = &f.j;
        let a = j.append("r1", &ev("backup")).await.unwrap();
        let b2 = j.append("r1", &ev("freeze")).await.unwrap();
        j.append("r2", &ev("other")).await.unwrap();
        assert_eq!((a.seq, b2.seq), (1, 2));
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b2.prev_hash, a.hash);
        let recs = j.run_records("r1").await.unwrap();
        // Read back exactly as appended, timestamps and hashes included.
        assert_eq!(recs, vec![a, b2]);
        assert_eq!(
            recs.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
            vec![ev("backup"), ev("freeze")]
        );
        assert_intact(&j.verify().await.unwrap(), 3);
        j.close().await;
    }

    async fn database_refuses_update_and_delete(b: Backend) {
        let f = fresh(b, "refuse").await;
        let j = &f.j;
        j.append("r1", &ev("backup")).await.unwrap();
        let upd = raw(j, "UPDATE events SET payload = '{}'", &[]).await;
        assert!(
            upd.as_ref()
                .is_err_and(|e| e.to_string().contains("append-only")),
            "{upd:?}"
        );
        let del = raw(j, "DELETE FROM events", &[]).await;
        assert!(
            del.as_ref()
                .is_err_and(|e| e.to_string().contains("append-only")),
            "{del:?}"
        );
        if b == Backend::Postgres {
            // TRUNCATE fires no row triggers; the statement-level one must catch it.
            let tru = raw(j, "TRUNCATE events", &[]).await;
            assert!(
                tru.as_ref()
                    .is_err_and(|e| e.to_string().contains("append-only")),
                "{tru:?}"
            );
        }
        assert_intact(&j.verify().await.unwrap(), 1);
        j.close().await;
    }

    async fn tampering_is_detected_at_the_edited_record(b: Backend) {
        let f = fresh(b, "tamper").await;
        let j = &f.j;
        for s in ["backup", "freeze", "extract"] {
            j.append("r1", &ev(s)).await.unwrap();
        }
        // Someone with enough rights drops the guard (SQLite: file access; PostgreSQL: the
        // table owner or a superuser, as the tests connect) and edits history.
        let unguard = match b {
            Backend::Sqlite => "DROP TRIGGER events_no_update",
            Backend::Postgres => "ALTER TABLE events DISABLE TRIGGER events_no_update",
        };
        raw(j, unguard, &[]).await.unwrap();
        let forged = serde_json::to_string(&ev("forged")).unwrap();
        let n = raw(
            j,
            "UPDATE events SET payload = $1 WHERE seq = 2",
            &[&forged],
        )
        .await
        .unwrap();
        assert_eq!(n, 1);
        let v = j.verify().await.unwrap();
        assert_eq!(v.first_bad.as_ref().map(|b| b.0), Some(2), "{v:?}");
        assert!(v.first_bad.unwrap().1.contains("edited"));
        j.close().await;
    }

    async fn last_run_id_is_the_newest_run_started(b: Backend) {
        let f = fresh(b, "lastrun").await;
        let j = &f.j;
        assert_eq!(j.last_run_id().await.unwrap(), None);
        j.append("r1", &started("r1")).await.unwrap();
        j.append("r1", &ev("backup")).await.unwrap();
        assert_eq!(j.last_run_id().await.unwrap().as_deref(), Some("r1"));
        j.append("r2", &started("r2")).await.unwrap();
        // A late record of an older run does not make it the newest run.
        j.append("r1", &ev("freeze")).await.unwrap();
        assert_eq!(j.last_run_id().await.unwrap().as_deref(), Some("r2"));
        // A second handle sees the same journal; on PostgreSQL via the `postgresql:` spelling.
        let again = match b {
            Backend::Sqlite => format!("sqlite://{}", f.loc),
            Backend::Postgres => f.loc.replacen("postgres://", "postgresql://", 1),
        };
        let j2 = Journal::open(&again).await.unwrap();
        assert_eq!(j2.last_run_id().await.unwrap().as_deref(), Some("r2"));
        assert_eq!(j2.run_records("r1").await.unwrap().len(), 3);
        j2.close().await;
        j.close().await;
    }

    async fn concurrent_appenders_never_fork_the_chain(b: Backend) {
        const WRITERS: usize = 4;
        const EACH: usize = 25;
        let f = fresh(b, "concurrent").await;
        // Separate handles (own pools), as several consoles on one journal would have.
        let handles = futures::future::try_join_all((0..WRITERS).map(|_| Journal::open(&f.loc)))
            .await
            .unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(WRITERS));
        let tasks: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(w, j)| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    for i in 0..EACH {
                        j.append(&format!("w{w}"), &ev(&format!("s{i}")))
                            .await
                            .unwrap();
                    }
                    j.close().await;
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        let total = (WRITERS * EACH) as u64;
        // `verify` checks seq runs 1, 2, … without a gap and every link, so this is one
        // unforked chain of exactly `total` records.
        assert_intact(&f.j.verify().await.unwrap(), total);
        for w in 0..WRITERS {
            let recs = f.j.run_records(&format!("w{w}")).await.unwrap();
            let steps: Vec<_> = recs.into_iter().map(|r| r.event).collect();
            let want: Vec<_> = (0..EACH).map(|i| ev(&format!("s{i}"))).collect();
            assert_eq!(steps, want, "writer {w}'s records, in its order");
        }
        f.j.close().await;
    }

    /// Separate handles (own pools, as separate processes would have) race for one lease
    /// behind a barrier: exactly one wins, every other is told who holds it.
    async fn racing_takers_one_wins_the_lease(b: Backend) {
        const TAKERS: usize = 6;
        let f = fresh(b, "lease_race").await;
        let handles = futures::future::try_join_all((0..TAKERS).map(|_| Journal::open(&f.loc)))
            .await
            .unwrap();
        let start = std::sync::Arc::new(tokio::sync::Barrier::new(TAKERS));
        let tasks: Vec<_> = handles
            .into_iter()
            .enumerate()
            .map(|(i, j)| {
                let start = start.clone();
                tokio::spawn(async move {
                    start.wait().await;
                    let r = j
                        .take_lease("tms", &format!("run-{i}"), lease::STALE_AFTER, || {})
                        .await
                        .unwrap();
                    (i, r)
                })
            })
            .collect();
        let mut won = Vec::new();
        let mut refused = Vec::new();
        for t in tasks {
            match t.await.unwrap() {
                (i, Ok(l)) => won.push((i, l)),
                (_, Err(held)) => refused.push(held),
            }
        }
        assert_eq!(won.len(), 1, "exactly one taker wins");
        assert_eq!(refused.len(), TAKERS - 1);
        let winner = format!("run-{}", won[0].0);
        for held in &refused {
            assert_eq!(held.holder.run_id, winner);
            assert_eq!(held.holder.pid, std::process::id());
        }
        let (h, _) = f.j.lease_holder("tms").await.unwrap().unwrap();
        assert_eq!(h.run_id, winner);
    }

    async fn records_after_reads_one_run_from_a_sequence_number(b: Backend) {
        let f = fresh(b, "after").await;
        let j = &f.j;
        let mut mine = Vec::new();
        for i in 0..6 {
            mine.push(j.append("r1", &ev(&format!("s{i}"))).await.unwrap());
            j.append("r2", &ev("other")).await.unwrap();
        }
        let seqs = |v: Vec<Record>| v.into_iter().map(|r| r.seq).collect::<Vec<_>>();
        assert_eq!(
            j.records_after("r1", 0, 100).await.unwrap(),
            mine,
            "from the start, exactly as appended"
        );
        // After a record of this run, after one of another run, with a limit.
        assert_eq!(
            seqs(j.records_after("r1", 3, 100).await.unwrap()),
            [5, 7, 9, 11]
        );
        assert_eq!(seqs(j.records_after("r1", 4, 2).await.unwrap()), [5, 7]);
        assert!(j.records_after("r1", 11, 100).await.unwrap().is_empty());
        assert!(j.records_after("nope", 0, 100).await.unwrap().is_empty());
        j.close().await;
    }

    async fn set_lease(j: &Journal, sql: &'static str) {
        raw(j, sql, &[]).await.unwrap();
    }

    async fn a_live_lease_is_refused_a_stale_one_taken_over_and_the_old_holder_fenced(b: Backend) {
        let f = fresh(b, "lease_fence").await;
        let first =
            f.j.take_lease("tms", "run-1", lease::STALE_AFTER, || {})
                .await
                .unwrap()
                .unwrap();
        assert_eq!(first.taken, lease::Taken::Free);
        let old = first.journal();
        old.append("run-1", &ev("backup")).await.unwrap();
        // Live (this very process, fresh heartbeat): refused, and nothing changes.
        let second = Journal::open(&f.loc).await.unwrap();
        let held = second
            .take_lease("tms", "run-2", lease::STALE_AFTER, || {})
            .await
            .unwrap()
            .err()
            .expect("a live holder keeps its lease");
        assert_eq!(held.holder.run_id, "run-1");
        assert!(held.heartbeat_age < lease::STALE_AFTER);
        // The holder is on another host and silent for longer than the timeout given.
        set_lease(
            &f.j,
            "UPDATE leases SET host = 'elsewhere', heartbeat = heartbeat - 60000",
        )
        .await;
        let lost = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let told = lost.clone();
        let second = second
            .take_lease(
                "tms",
                "run-1",
                std::time::Duration::from_secs(30),
                move || told.store(true, std::sync::atomic::Ordering::SeqCst),
            )
            .await
            .unwrap()
            .expect("a stale holder is taken over");
        match &second.taken {
            lease::Taken::TookOver { previous, why } => {
                assert_eq!(previous.host, "elsewhere");
                assert_eq!(previous.run_id, "run-1");
                assert!(why.contains("heartbeat"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        // The old holder can journal nothing more: its appends are fenced off.
        let err = old.append("run-1", &ev("load")).await.unwrap_err();
        let lost_err = err
            .downcast_ref::<lease::LeaseLost>()
            .unwrap_or_else(|| panic!("{err:#}"));
        assert_eq!(lost_err.now.as_ref().unwrap().pid, std::process::id());
        second.journal().append("run-1", &ev("load")).await.unwrap();
        let steps: Vec<_> =
            f.j.run_records("run-1")
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.event)
                .collect();
        assert_eq!(steps, vec![ev("backup"), ev("load")]);
        // A holder whose lease is taken while it lives: its heartbeat notices within a
        // beat or two and calls its `on_lost` (the executor is told to stop).
        drop(first);
        let third = Journal::open(&f.loc).await.unwrap();
        set_lease(&f.j, "UPDATE leases SET heartbeat = heartbeat - 60000").await;
        let stolen = third
            .take_lease("tms", "run-1", std::time::Duration::from_secs(30), || {})
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(stolen.taken, lease::Taken::TookOver { .. }));
        let t0 = std::time::Instant::now();
        while !second.lost() && t0.elapsed() < lease::HEARTBEAT_EVERY * 3 {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(second.lost(), "the heartbeat finds the lease taken");
        assert!(
            lost.load(std::sync::atomic::Ordering::SeqCst),
            "on_lost was called"
        );
    }

    async fn a_released_lease_is_free_again(b: Backend) {
        let f = fresh(b, "lease_release").await;
        let l =
            f.j.take_lease("tms", "run-1", lease::STALE_AFTER, || {})
                .await
                .unwrap()
                .unwrap();
        l.release().await.unwrap();
        assert!(f.j.lease_holder("tms").await.unwrap().is_none());
        let again =
            f.j.take_lease("tms", "run-2", lease::STALE_AFTER, || {})
                .await
                .unwrap()
                .unwrap();
        assert_eq!(again.taken, lease::Taken::Free);
        // Another runbook's lease is independent.
        assert!(
            f.j.take_lease("other", "run-3", lease::STALE_AFTER, || {})
                .await
                .unwrap()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_mysql_journal_is_refused_clearly() {
        let err = Journal::open("mysql://root:secret@127.0.0.1:3306/cutover")
            .await
            .err()
            .expect("a MySQL journal must be refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("SQLite and PostgreSQL"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }

    /// `cutover sign` from another process while the run holds its lease: the sign-off is
    /// judged on the run's records read inside the append and joins the same chain; any
    /// other event is refused, so the fence on the run's own writes is not widened.
    async fn an_approver_appends_a_sign_off_beside_the_lease_holder_and_nothing_else(b: Backend) {
        let f = fresh(b, "sign_off_append").await;
        let lease =
            f.j.take_lease("tms", "run-1", lease::STALE_AFTER, || {})
                .await
                .unwrap()
                .unwrap();
        let run = lease.journal();
        run.append("run-1", &ev("validate")).await.unwrap();
        let approver = Journal::open(&f.loc).await.unwrap();
        let sign_off = |n: usize| Event::SignOffRecorded {
            gate: "go_live".into(),
            name: format!("seen {n} records"),
            role: "finance-controller".into(),
            decision: Decision::Go,
            comment: String::new(),
            evidence_sha256: String::new(),
            overrides: false,
            signature: None,
        };
        let rec = approver
            .append_sign_off("run-1", |recs| sign_off(recs.len()))
            .await
            .unwrap();
        assert_eq!(rec.seq, 2);
        // The run goes on writing behind its fence, after the approver's record.
        run.append("run-1", &ev("load")).await.unwrap();
        let refused = approver
            .append_sign_off("run-1", |_| ev("unfreeze"))
            .await
            .unwrap_err();
        assert!(
            format!("{refused:#}").contains("only a sign-off"),
            "{refused:#}"
        );
        let all = f.j.run_records("run-1").await.unwrap();
        assert_eq!(all.len(), 3, "the refused event was not written");
        assert_eq!(all[1].event, sign_off(1));
        assert!(f.j.verify().await.unwrap().first_bad.is_none());
        lease.release().await.unwrap();
    }
}
