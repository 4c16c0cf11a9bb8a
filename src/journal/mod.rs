//! The journal: an append-only, hash-chained event log. It is the source of truth for a
//! run; the console, the summary and (later) resume read it back.
//!
//! `hash_n = SHA-256(hash_{n-1} ‖ seq ‖ run_id ‖ ts ‖ payload)`, where `payload` is the exact
//! JSON text stored, so verification needs no canonicalisation.

pub mod events;

use std::path::Path;

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use sqlx::{Row, SqlitePool};

use events::{Event, Record};

pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

#[derive(Clone)]
pub struct Journal {
    pool: SqlitePool,
    pub location: String,
}

/// Outcome of `verify`: how many records were checked and the first broken link, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verification {
    pub records: u64,
    pub first_bad: Option<(i64, String)>,
}

pub fn chain_hash(prev: &str, seq: i64, run_id: &str, ts: &str, payload: &str) -> String {
    let mut h = Sha256::new();
    for part in [prev, &seq.to_string(), run_id, ts, payload] {
        h.update(part.as_bytes());
        h.update([0x1f]);
    }
    hex::encode(h.finalize())
}

impl Journal {
    /// Open `url` (a `sqlite:` URL) or, for a plain path, the SQLite file there.
    pub async fn open(url_or_path: &str) -> Result<Journal> {
        let url = if url_or_path.contains(':') && !url_or_path.starts_with('/') {
            url_or_path.to_string()
        } else {
            format!("sqlite://{url_or_path}")
        };
        match crate::db::Dialect::of_url(&url) {
            Some(crate::db::Dialect::Sqlite) => {}
            _ => anyhow::bail!(
                "journal {}: only a SQLite journal is supported by this build",
                crate::db::redact_url(&url)
            ),
        }
        let pool = crate::db::sqlite_pool(&url, true).await?;
        sqlx::migrate!("./migrations/sqlite")
            .run(&pool)
            .await
            .context("journal migration")?;
        Ok(Journal {
            pool,
            location: crate::db::redact_url(&url),
        })
    }

    pub async fn open_path(path: &Path) -> Result<Journal> {
        Journal::open(&path.display().to_string()).await
    }

    /// Append one event; returns the record as stored.
    pub async fn append(&self, run_id: &str, event: &Event) -> Result<Record> {
        let payload = serde_json::to_string(event)?;
        let ts = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        // A concurrent writer can take the same seq; the primary key refuses it and we retry.
        for _ in 0..20 {
            let mut tx = self.pool.begin().await?;
            let last = sqlx::query("SELECT seq, hash FROM events ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await?;
            let (seq, prev) = match last {
                Some(r) => (r.get::<i64, _>(0) + 1, r.get::<String, _>(1)),
                None => (1, GENESIS.to_string()),
            };
            let hash = chain_hash(&prev, seq, run_id, &ts, &payload);
            let res = sqlx::query("INSERT INTO events (seq, run_id, ts, kind, payload, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)")
                .bind(seq)
                .bind(run_id)
                .bind(&ts)
                .bind(event.kind())
                .bind(&payload)
                .bind(&prev)
                .bind(&hash)
                .execute(&mut *tx)
                .await;
            match res {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(Record {
                        seq,
                        run_id: run_id.into(),
                        ts,
                        event: event.clone(),
                        prev_hash: prev,
                        hash,
                    });
                }
                Err(e)
                    if e.as_database_error()
                        .is_some_and(|d| d.is_unique_violation()) =>
                {
                    continue;
                }
                Err(e) => return Err(e.into()),
            }
        }
        anyhow::bail!(
            "journal {}: could not append after 20 attempts (another writer?)",
            self.location
        )
    }

    /// All records of one run, in order.
    pub async fn run_records(&self, run_id: &str) -> Result<Vec<Record>> {
        let rows = sqlx::query("SELECT seq, run_id, ts, payload, prev_hash, hash FROM events WHERE run_id = ? ORDER BY seq")
            .bind(run_id)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(to_record).collect()
    }

    /// The newest run in this journal, if any.
    pub async fn last_run_id(&self) -> Result<Option<String>> {
        Ok(sqlx::query_scalar(
            "SELECT run_id FROM events WHERE kind = 'run_started' ORDER BY seq DESC LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Recompute the whole chain.
    pub async fn verify(&self) -> Result<Verification> {
        use futures::TryStreamExt;
        let mut rows = sqlx::query(
            "SELECT seq, run_id, ts, payload, prev_hash, hash FROM events ORDER BY seq",
        )
        .fetch(&self.pool);
        let mut prev = GENESIS.to_string();
        let mut expect_seq = 1;
        let mut n = 0;
        while let Some(r) = rows.try_next().await? {
            let seq: i64 = r.get(0);
            let (run_id, ts, payload, prev_hash, hash): (String, String, String, String, String) =
                (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5));
            n += 1;
            let bad = if seq != expect_seq {
                Some(format!("sequence gap: expected {expect_seq}, found {seq}"))
            } else if prev_hash != prev {
                Some("prev_hash does not match the previous record's hash".to_string())
            } else if chain_hash(&prev, seq, &run_id, &ts, &payload) != hash {
                Some("hash does not match the record's content (edited?)".to_string())
            } else if serde_json::from_str::<Event>(&payload).is_err() {
                Some("payload is not a known event".to_string())
            } else {
                None
            };
            if let Some(why) = bad {
                return Ok(Verification {
                    records: n,
                    first_bad: Some((seq, why)),
                });
            }
            prev = hash;
            expect_seq = seq + 1;
        }
        Ok(Verification {
            records: n,
            first_bad: None,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

fn to_record(r: &sqlx::sqlite::SqliteRow) -> Result<Record> {
    let payload: String = r.get(3);
    Ok(Record {
        seq: r.get(0),
        run_id: r.get(1),
        ts: r.get(2),
        event: serde_json::from_str(&payload).context("journal payload")?,
        prev_hash: r.get(4),
        hash: r.get(5),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::*;

    async fn fresh() -> (tempfile::TempDir, Journal) {
        let dir = tempfile::tempdir().unwrap();
        let j = Journal::open_path(&dir.path().join("j.db")).await.unwrap();
        (dir, j)
    }

    fn ev(step: &str) -> Event {
        Event::StepStarted { step: step.into() }
    }

    #[tokio::test]
    async fn chain_links_every_record_and_reads_back() {
        let (_d, j) = fresh().await;
        let a = j.append("r1", &ev("backup")).await.unwrap();
        let b = j.append("r1", &ev("freeze")).await.unwrap();
        j.append("r2", &ev("other")).await.unwrap();
        assert_eq!(a.prev_hash, GENESIS);
        assert_eq!(b.prev_hash, a.hash);
        let recs = j.run_records("r1").await.unwrap();
        assert_eq!(
            recs.iter().map(|r| r.event.clone()).collect::<Vec<_>>(),
            vec![ev("backup"), ev("freeze")]
        );
        assert_eq!(
            j.verify().await.unwrap(),
            Verification {
                records: 3,
                first_bad: None
            }
        );
    }

    #[tokio::test]
    async fn database_refuses_update_and_delete() {
        let (_d, j) = fresh().await;
        j.append("r1", &ev("backup")).await.unwrap();
        let upd = sqlx::query("UPDATE events SET payload = '{}'")
            .execute(&j.pool)
            .await;
        assert!(upd.unwrap_err().to_string().contains("append-only"));
        let del = sqlx::query("DELETE FROM events").execute(&j.pool).await;
        assert!(del.is_err());
    }

    #[tokio::test]
    async fn tampering_is_detected_at_the_edited_record() {
        let (_d, j) = fresh().await;
        for s in ["backup", "freeze", "extract"] {
            j.append("r1", &ev(s)).await.unwrap();
        }
        // Someone with file access drops the guard and edits history.
        sqlx::query("DROP TRIGGER events_no_update")
            .execute(&j.pool)
            .await
            .unwrap();
        sqlx::query("UPDATE events SET payload = ? WHERE seq = 2")
            .bind(serde_json::to_string(&ev("forged")).unwrap())
            .execute(&j.pool)
            .await
            .unwrap();
        let v = j.verify().await.unwrap();
        assert_eq!(v.first_bad.as_ref().map(|b| b.0), Some(2), "{v:?}");
    }
}
