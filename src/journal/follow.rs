//! Following a run while it is journaled (`cutover watch`). The sequence number is the only
//! bookmark: every wake-up — a PostgreSQL NOTIFY, a reconnect, a poll tick — re-reads the
//! records after the last one seen, so a lost notification or connection delays a record
//! but never drops or repeats it.
//!
//! - PostgreSQL: `LISTEN` (sqlx `PgListener`) on [`super::NOTIFY_CHANNEL`], which every
//!   append NOTIFYs at commit. The listener is (re)connected *before* each read, so a record
//!   committed between the read and the wait still wakes it.
//! - SQLite (WAL, same host): polling every [`POLL_EVERY`].

use std::time::Duration;

use anyhow::Result;
use sqlx::postgres::PgListener;

use super::events::Record;
use super::{Journal, NOTIFY_CHANNEL};

/// How often a follower re-reads a SQLite journal.
pub const POLL_EVERY: Duration = Duration::from_millis(200);
/// On PostgreSQL, re-read this long after the last wake-up even without a notification
/// (a belt to the listener's braces: what a silent network loss can cost at most).
pub const QUIET_REREAD: Duration = Duration::from_secs(2);
/// Records read per round trip.
const BATCH: u32 = 1000;

pub struct Follower {
    journal: Journal,
    run_id: String,
    after: i64,
    listener: Option<PgListener>,
    reconnects: u64,
}

impl Follower {
    /// Follow `run_id` from the record after `after` (0: from its first record).
    pub fn new(journal: Journal, run_id: &str, after: i64) -> Follower {
        Follower {
            journal,
            run_id: run_id.to_string(),
            after,
            listener: None,
            reconnects: 0,
        }
    }

    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Sequence number of the last record handed out.
    pub fn after(&self) -> i64 {
        self.after
    }

    /// How often the PostgreSQL listener lost its connection and was set up again.
    pub fn reconnects(&self) -> u64 {
        self.reconnects
    }

    /// The next records of the run, in order; waits until there is at least one.
    pub async fn next(&mut self) -> Result<Vec<Record>> {
        loop {
            let recs = self.poll().await?;
            if !recs.is_empty() {
                return Ok(recs);
            }
            self.wait().await;
        }
    }

    /// Whatever records are there now (maybe none), without waiting.
    pub async fn poll(&mut self) -> Result<Vec<Record>> {
        self.listen().await;
        let recs = self
            .journal
            .records_after(&self.run_id, self.after, BATCH)
            .await?;
        if let Some(last) = recs.last() {
            self.after = last.seq;
        }
        Ok(recs)
    }

    /// On a PostgreSQL journal, make sure a listener is subscribed. A failure is not fatal:
    /// the follower then waits as on SQLite and tries again on the next round.
    async fn listen(&mut self) {
        if self.listener.is_some() {
            return;
        }
        let Some(pool) = self.journal.pg_pool() else {
            return;
        };
        let subscribed = async {
            let mut l = PgListener::connect_with(pool).await?;
            l.listen(NOTIFY_CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match subscribed {
            Ok(l) => self.listener = Some(l),
            Err(e) => tracing::debug!("journal follower: cannot listen yet: {e}"),
        }
    }

    async fn wait(&mut self) {
        let Some(l) = self.listener.as_mut() else {
            tokio::time::sleep(POLL_EVERY).await;
            return;
        };
        match tokio::time::timeout(QUIET_REREAD, l.try_recv()).await {
            // Woken: take every notification already queued, one re-read covers them all.
            Ok(Ok(Some(_))) => while l.next_buffered().is_some() {},
            // The connection dropped and sqlx set it up again (LISTEN included); whatever
            // was notified in between is lost, which the re-read makes up for.
            Ok(Ok(None)) => self.reconnects += 1,
            // A terminated backend says so with an error: start a new listener.
            Ok(Err(e)) => {
                tracing::debug!("journal follower: listener lost: {e}");
                self.listener = None;
                self.reconnects += 1;
                tokio::time::sleep(POLL_EVERY).await;
            }
            Err(_quiet) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::events::Event;
    use crate::testdb::TempDb;

    fn ev(i: usize) -> Event {
        Event::StepStarted {
            step: format!("s{i}"),
        }
    }

    /// Appends `n` records of run `r1` (interleaved with another run's) at a steady pace.
    fn appender(j: Journal, n: usize, pace: Duration) -> tokio::task::JoinHandle<Vec<i64>> {
        tokio::spawn(async move {
            let mut seqs = Vec::new();
            for i in 0..n {
                seqs.push(j.append("r1", &ev(i)).await.unwrap().seq);
                if i % 3 == 0 {
                    j.append("r2", &ev(i)).await.unwrap();
                }
                tokio::time::sleep(pace).await;
            }
            seqs
        })
    }

    /// Collect until `want` records arrived (or a deadline passes).
    async fn collect(f: &mut Follower, want: usize) -> Vec<Record> {
        let mut got = Vec::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while got.len() < want && tokio::time::Instant::now() < deadline {
            if let Ok(r) = tokio::time::timeout(Duration::from_secs(5), f.next()).await {
                got.extend(r.unwrap());
            }
        }
        got
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_follower_misses_nothing_across_forced_reconnects() {
        const N: usize = 120;
        let db = TempDb::postgres("follow_reconnect");
        let writer = Journal::open(&db.url()).await.unwrap();
        let reader = Journal::open(&db.url()).await.unwrap();
        let mut f = Follower::new(reader, "r1", 0);
        // Subscribed before the first append, so the first records arrive by NOTIFY.
        assert!(f.poll().await.unwrap().is_empty());
        let app = appender(writer.clone(), N, Duration::from_millis(15));
        // Meanwhile kill the listener's backend, three times, while records keep coming.
        let killer = {
            let db_name = db.url().rsplit('/').next().unwrap().to_string();
            tokio::spawn(async move {
                let mut killed = 0;
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(400)).await;
                    let db_name = db_name.clone();
                    let out = tokio::task::spawn_blocking(move || {
                        crate::testdb::psql(
                            &db_name,
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                             WHERE datname = current_database() AND query ILIKE 'LISTEN%' \
                             AND pid <> pg_backend_pid()",
                        )
                    })
                    .await
                    .unwrap();
                    killed += out.trim().parse::<u32>().unwrap_or(0);
                }
                killed
            })
        };
        let got = collect(&mut f, N).await;
        let appended = app.await.unwrap();
        let killed = killer.await.unwrap();
        assert!(
            killed >= 2,
            "the listener's backend was terminated ({killed} times)"
        );
        assert!(
            f.reconnects() >= 2,
            "the follower noticed and reconnected ({} times)",
            f.reconnects()
        );
        let seqs: Vec<i64> = got.iter().map(|r| r.seq).collect();
        assert_eq!(seqs, appended, "every record, exactly once, in order");
        assert!(got.iter().all(|r| r.run_id == "r1"));
        // Nothing more trickles in afterwards.
        assert!(f.poll().await.unwrap().is_empty());
        writer.close().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_follower_is_woken_by_notify_not_the_quiet_reread() {
        let db = TempDb::postgres("follow_notify");
        let writer = Journal::open(&db.url()).await.unwrap();
        let mut f = Follower::new(Journal::open(&db.url()).await.unwrap(), "r1", 0);
        assert!(f.poll().await.unwrap().is_empty());
        for i in 0..5 {
            let w = writer.clone();
            let t = tokio::time::Instant::now();
            let (appended, got) = tokio::join!(
                async move {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    w.append("r1", &ev(i)).await.unwrap().seq
                },
                f.next()
            );
            let got = got.unwrap();
            assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), [appended]);
            // Well under the quiet re-read: the NOTIFY woke it.
            assert!(t.elapsed() < QUIET_REREAD / 2, "{:?}", t.elapsed());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_follower_polls_every_record_in_order() {
        const N: usize = 40;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("j.db");
        let writer = Journal::open_path(&path).await.unwrap();
        // Two records before the follower starts, read from its bookmark on.
        let first = writer.append("r1", &ev(100)).await.unwrap();
        writer.append("r1", &ev(101)).await.unwrap();
        let mut f = Follower::new(Journal::open_path(&path).await.unwrap(), "r1", first.seq);
        let app = appender(writer.clone(), N, Duration::from_millis(5));
        let got = collect(&mut f, N + 1).await;
        let mut want = vec![first.seq + 1];
        want.extend(app.await.unwrap());
        assert_eq!(got.iter().map(|r| r.seq).collect::<Vec<_>>(), want);
    }
}
