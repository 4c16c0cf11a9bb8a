//! An order-preserving parallel map over a stream: one reader thread fills chunks of
//! items, `workers` threads turn each item into an output, and the calling thread (the
//! sequencer) gets every item and its output back in reading order. Chunks are recycled:
//! at most `in_flight` exist, each cut at `chunk` items or `chunk_bytes` of input, so
//! memory stays flat whatever the width of a row, and their buffers are reused.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, mpsc};

use anyhow::Result;

/// How the work is spread.
#[derive(Debug, Clone, Copy)]
pub struct Spread {
    pub workers: usize,
    /// Items per chunk.
    pub chunk: usize,
    /// A chunk also ends once its items weigh this much (as `fill` weighs them).
    pub chunk_bytes: usize,
    /// Chunks that exist at once (read, being worked on, or waiting for the sequencer).
    pub in_flight: usize,
}

impl Spread {
    /// `workers` threads, chunks of at most `chunk` items and about `chunk_bytes` (one
    /// item more at most), enough chunks to keep them all busy.
    pub fn new(workers: usize, chunk: usize, chunk_bytes: usize) -> Spread {
        let workers = workers.max(1);
        Spread {
            workers,
            chunk: chunk.max(1),
            chunk_bytes: chunk_bytes.max(1),
            in_flight: 2 * workers + 2,
        }
    }
}

struct Chunk<T, U> {
    seq: u64,
    items: Vec<T>,
    outs: Vec<U>,
    /// Items in use (`items` keeps the others' buffers for the next fill).
    len: usize,
}

/// Run the map. `fill` reads the next item into a reused slot and returns its weight in
/// bytes (`None` at the end of the stream); `work` computes an item's output into a reused slot, on any worker; `sink`
/// takes each item and output in reading order. The first error of `fill` or `sink`
/// stops everything; `fill`'s error is returned after every item read before it has
/// been sunk, so the sequencer sees a prefix of the stream either way.
pub fn run<T, U, F, W, S>(spread: Spread, mut fill: F, work: W, mut sink: S) -> Result<()>
where
    T: Send + Default,
    U: Send + Default,
    F: FnMut(&mut T) -> Result<Option<usize>> + Send,
    W: Fn(&T, &mut U) + Sync,
    S: FnMut(&mut T, &mut U) -> Result<()>,
{
    let stop = AtomicBool::new(false);
    let (pool_tx, pool_rx) = mpsc::channel::<Chunk<T, U>>();
    for _ in 0..spread.in_flight {
        let _ = pool_tx.send(Chunk {
            seq: 0,
            items: Vec::new(),
            outs: Vec::new(),
            len: 0,
        });
    }
    let (work_tx, work_rx) = mpsc::channel::<Chunk<T, U>>();
    let work_rx = Mutex::new(work_rx);
    let (done_tx, done_rx) = mpsc::channel::<Chunk<T, U>>();
    std::thread::scope(|s| {
        let stop = &stop;
        let reader = s.spawn(move || -> Result<()> {
            let mut seq = 0;
            while let Ok(mut c) = pool_rx.recv() {
                if stop.load(Ordering::Relaxed) {
                    return Ok(());
                }
                c.seq = seq;
                seq += 1;
                c.len = 0;
                let mut bytes = 0;
                let mut end = false;
                let mut err = None;
                while c.len < spread.chunk && bytes < spread.chunk_bytes {
                    if c.items.len() == c.len {
                        c.items.push(T::default());
                        c.outs.push(U::default());
                    }
                    match fill(&mut c.items[c.len]) {
                        Ok(Some(weight)) => {
                            c.len += 1;
                            bytes += weight;
                        }
                        Ok(None) => {
                            end = true;
                            break;
                        }
                        Err(e) => {
                            err = Some(e);
                            break;
                        }
                    }
                }
                if c.len > 0 && work_tx.send(c).is_err() {
                    return Ok(());
                }
                if let Some(e) = err {
                    return Err(e);
                }
                if end {
                    return Ok(());
                }
            }
            Ok(())
        });
        for _ in 0..spread.workers {
            let (work_rx, done_tx, work) = (&work_rx, done_tx.clone(), &work);
            s.spawn(move || {
                loop {
                    // The lock is held only to take a chunk, not while working on it.
                    let next = work_rx.lock().map(|rx| rx.recv());
                    let Ok(Ok(mut c)) = next else { return };
                    if !stop.load(Ordering::Relaxed) {
                        for k in 0..c.len {
                            work(&c.items[k], &mut c.outs[k]);
                        }
                    }
                    if done_tx.send(c).is_err() {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        // The sequencer: chunks back in reading order.
        let mut waiting = BTreeMap::new();
        let mut next = 0u64;
        let sunk = (|| -> Result<()> {
            for c in done_rx.iter() {
                waiting.insert(c.seq, c);
                while let Some(mut c) = waiting.remove(&next) {
                    next += 1;
                    for k in 0..c.len {
                        let (items, outs) = (&mut c.items, &mut c.outs);
                        sink(&mut items[k], &mut outs[k])?;
                    }
                    // The reader may be gone already (end of the stream).
                    let _ = pool_tx.send(c);
                }
            }
            Ok(())
        })();
        if sunk.is_err() {
            stop.store(true, Ordering::Relaxed);
        }
        // Unblocks the reader (no more chunks) and the workers (nowhere to send).
        drop(pool_tx);
        drop(done_rx);
        let read = reader
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        sunk.and(read)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Items come back in order, each worked on once, whatever the spread.
    #[test]
    fn order_is_kept_and_every_item_is_seen_once() {
        for (workers, chunk) in [(1, 1), (1, 7), (4, 1), (4, 3), (3, 1000)] {
            let mut n = 0u64;
            let mut seen = Vec::new();
            run(
                Spread::new(workers, chunk, usize::MAX),
                |slot: &mut u64| {
                    n += 1;
                    *slot = n;
                    Ok((n <= 5000).then_some(8))
                },
                |item: &u64, out: &mut u64| {
                    // Uneven work, so that chunks finish out of order.
                    if item.is_multiple_of(97) {
                        std::thread::sleep(std::time::Duration::from_micros(200));
                    }
                    *out = item * 2;
                },
                |item, out| {
                    seen.push((*item, *out));
                    Ok(())
                },
            )
            .unwrap();
            let want: Vec<(u64, u64)> = (1..=5000).map(|i| (i, i * 2)).collect();
            assert_eq!(seen, want, "workers {workers}, chunk {chunk}");
        }
    }

    /// A reading error arrives after every item read before it; a sink error stops the
    /// reader early.
    #[test]
    fn errors_stop_it_after_the_prefix() {
        let mut n = 0u64;
        let mut seen = Vec::new();
        let err = run(
            Spread::new(3, 4, usize::MAX),
            |slot: &mut u64| {
                n += 1;
                *slot = n;
                if n == 11 {
                    anyhow::bail!("bad read at 11");
                }
                Ok(Some(8))
            },
            |_: &u64, _: &mut ()| {},
            |item, _| {
                seen.push(*item);
                Ok(())
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("bad read at 11"));
        assert_eq!(seen, (1..=10).collect::<Vec<_>>());

        let read = std::sync::atomic::AtomicU64::new(0);
        let err = run(
            Spread::new(2, 10, usize::MAX),
            |slot: &mut u64| {
                *slot = read.fetch_add(1, Ordering::Relaxed);
                Ok(Some(8))
            },
            |_: &u64, _: &mut ()| {},
            |item, _| {
                if *item == 25 {
                    anyhow::bail!("sink stops");
                }
                Ok(())
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("sink stops"));
        // Bounded by the chunks in flight, not the endless stream.
        assert!(read.load(Ordering::Relaxed) < 25 + 10 * 20);
    }

    /// Heavy items make short chunks: what is read ahead of the sequencer is bounded by
    /// the chunks' bytes, not only by their item count.
    #[test]
    fn chunks_are_cut_by_bytes() {
        use std::sync::atomic::AtomicU64;
        for (chunk_bytes, most) in [(usize::MAX, 1000), (3000, 3)] {
            let spread = Spread::new(2, 1000, chunk_bytes);
            let (read, ahead) = (AtomicU64::new(0), AtomicU64::new(0));
            let mut sunk = 0u64;
            run(
                spread,
                |slot: &mut u64| {
                    *slot = read.fetch_add(1, Ordering::Relaxed);
                    // Every item weighs 1,000 bytes.
                    Ok((*slot < 20_000).then_some(1000))
                },
                |_: &u64, _: &mut ()| {},
                |_, _| {
                    sunk += 1;
                    let r = read.load(Ordering::Relaxed);
                    ahead.fetch_max(r - sunk, Ordering::Relaxed);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(sunk, 20_000);
            // Every chunk in flight full, and the reader one item into the next.
            let bound = (spread.in_flight * most + 1) as u64;
            let ahead = ahead.load(Ordering::Relaxed);
            assert!(ahead <= bound, "{ahead} read ahead, at most {bound}");
            if chunk_bytes == usize::MAX {
                // A whole chunk is read before its first item reaches the sequencer.
                assert!(ahead >= 999, "chunks of 1,000 items: {ahead} read ahead");
            }
        }
    }
}
