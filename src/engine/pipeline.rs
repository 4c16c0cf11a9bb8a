//! One entity through the pipeline: CSV source → scope → cleanse → validate → transform →
//! batches → target. Rule work runs on a blocking thread and hands batches over a bounded
//! channel, so memory stays flat: the reader waits while the target is busy. A batch holds
//! each row once, as the values for the target, and is cut at `batch_size` rows or
//! `batch_bytes` of them, whichever comes first.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::{Context, Result};
use futures::StreamExt;
use futures::stream::FuturesOrdered;
use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};

use super::lines::{LineSet, LineSpans};
use super::ordered::{self, Spread};
use super::rejects::RejectWriter;
use super::retry::RetryPolicy;
use super::rules::{
    Checked, Compiled, Refs, RowIssue, RunState, ScopeKeys, SqlValue, Verdict, parse_decimal,
};
use crate::db::errors::explain;
use crate::journal::events::{EntityCounts, EntityProgress, Phase, ProgressSnapshot, RefusedRow};
use crate::keyset::{KeyMemory, KeySet};
use crate::sources::csv::{CsvSource, Decoder, Record, Undecodable};
use crate::target::{TableSpec, Target, TargetError};
pub use crate::values::{Fingerprint, NO_CURRENCY};

/// Everything one entity's run needs, owned.
pub struct EntityJob {
    pub phase: Phase,
    pub rules: Arc<Compiled>,
    pub file: PathBuf,
    pub reject_path: PathBuf,
    pub table: TableSpec,
    pub batch_size: usize,
    /// A batch is also cut once its rows weigh this many bytes in memory
    /// (`settings.batch_memory_mb`), so wide rows do not make batches, and the memory
    /// they hold in flight, any larger.
    pub batch_bytes: usize,
    /// How often, and after what waits, a batch is written again after a transient fault.
    pub retry: RetryPolicy,
    /// Valid keys of entities this one references.
    pub refs: Refs,
    /// Keep this entity's valid keys (another entity references it).
    pub keep_valid_keys: bool,
    /// Keys by scope of the entities this one scopes by (`in_scope_of`).
    pub scope_refs: HashMap<String, Arc<ScopeKeys>>,
    /// Keep this entity's keys by scope (another entity scopes by it).
    pub keep_scope_keys: bool,
    /// Memory for this entity's key sets (unique, valid and scope keys), shared among
    /// them, and where they spill past it.
    pub keys: KeyMemory,
    /// Decimal fields to sum over valid and rejected in-scope rows.
    pub sum_fields: Vec<SumField>,
    /// Order-independent fingerprints of valid rows' field tuples, by check name.
    pub fingerprints: Vec<(String, Vec<String>)>,
    pub expected_rows: u64,
    /// Where a resumed load picks up: rows up to this checkpoint are already in the target.
    pub resume: Option<ResumeFrom>,
    /// Passed to every write (see [`Target::write_batch`]): `false` only when the caller
    /// has proved that the target holds none of this entity's keys.
    pub may_conflict: bool,
    /// Threads that decode and check rows (`settings.workers`).
    pub workers: usize,
    /// Batches written to the target at once (`settings.write_concurrency`; 1 for a
    /// target that takes one writer at a time).
    pub write_concurrency: usize,
}

/// The journaled checkpoint of an interrupted load of one entity. Rows up to `last_line`
/// still go through the rules (counts, sums, keys and rejects must cover the whole file)
/// but are not written again.
#[derive(Debug, Clone, Default)]
pub struct ResumeFrom {
    pub last_line: u64,
    pub batches: u64,
    pub loaded: u64,
    /// Rows of committed batches the database refused, by line, with its message.
    pub refused: HashMap<u64, String>,
}

/// A decimal field to sum, per currency when `currency` names the field holding its code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SumField {
    pub field: String,
    pub currency: Option<String>,
}

/// Running sums of one field: one total per currency (a single `""` entry without a
/// currency field). Small: as many entries as distinct currency codes.
type Sums = BTreeMap<String, Decimal>;

/// Add a row's amount to `sums` under its currency; a row whose amount is not a decimal
/// adds nothing (it is rejected for that, and its currency would only be noise).
fn add_amount(sums: &mut Sums, amount: Option<Decimal>, fields: &[String], cur: Option<usize>) {
    let Some(d) = amount else {
        return;
    };
    let key = match cur {
        None => "",
        Some(i) => match fields.get(i).map(|c| c.as_str()) {
            None | Some("") => NO_CURRENCY,
            Some(c) => c,
        },
    };
    // Looked up by reference: a handful of currencies, a million rows.
    match sums.get_mut(key) {
        Some(e) => *e += d,
        None => {
            sums.insert(key.to_string(), d);
        }
    }
}

/// Rows per chunk handed to a worker: large enough that handing over is rare (a channel
/// send per chunk), small enough that the workers stay even near the end of a file and
/// that the chunks in flight (2 × workers + 2, each row held as read, cleansed and typed)
/// stay small.
const CHUNK_ROWS: usize = 256;

/// Bytes of records per chunk: wide rows make shorter chunks.
const CHUNK_BYTES: usize = 256 << 10;

/// What a worker finds out about one record: its rules up to `unique`, and its share of
/// the sums and fingerprints. The sequencer does the rest in file order.
#[derive(Default)]
struct Pre {
    checked: Option<Checked>,
    /// The key as read (trimmed, before cleanse), for entities that scope by this one.
    scope_key: Option<String>,
    /// Per sum field: the amount, when the field holds a decimal.
    amounts: Vec<Option<Decimal>>,
    /// Per fingerprint: the row's digest, when no rule has refused it so far.
    digests: Vec<u128>,
    nulls: Vec<bool>,
    /// The last row's fields, back from the sequencer: decoded into again, strings and all.
    fields: Vec<String>,
    /// A row buffer from the pool for the target row (see [`RowPool`]).
    row: Vec<SqlValue>,
}

/// Rows of written batches, back for the workers to fill again: a row's strings take the
/// next row's values, so that the hot path allocates nothing per row once the pool is
/// warm. Holds rows weighing at most `max_bytes`; past that they are freed.
struct RowPool {
    rows: Mutex<(Vec<Vec<SqlValue>>, usize)>,
    max_bytes: usize,
}

impl RowPool {
    fn new(max_bytes: usize) -> RowPool {
        RowPool {
            rows: Mutex::new((Vec::new(), 0)),
            max_bytes,
        }
    }

    /// A row to fill: one from the pool, or a new (empty) one.
    fn take(&self) -> Vec<SqlValue> {
        let mut pool = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        match pool.0.pop() {
            Some(row) => {
                pool.1 = pool.1.saturating_sub(row_weight(&row));
                row
            }
            None => Vec::new(),
        }
    }

    /// The rows of a written batch.
    fn give(&self, items: Vec<Item>) {
        let mut pool = self.rows.lock().unwrap_or_else(|p| p.into_inner());
        for it in items {
            let w = row_weight(&it.row);
            if pool.1 + w > self.max_bytes {
                break;
            }
            pool.1 += w;
            pool.0.push(it.row);
        }
    }
}

/// About the bytes a row holds: its values and their strings.
fn row_weight(row: &Vec<SqlValue>) -> usize {
    row.capacity() * std::mem::size_of::<SqlValue>()
        + row.iter().map(SqlValue::heap_bytes).sum::<usize>()
}

/// What the workers share: read only.
struct Checker<'a> {
    decoder: &'a Decoder,
    rules: &'a Compiled,
    refs: &'a Refs,
    scope_refs: &'a HashMap<String, Arc<ScopeKeys>>,
    keep_scope_keys: bool,
    sum_idx: &'a [(usize, Option<usize>)],
    fp_idx: &'a [Vec<usize>],
    pool: &'a RowPool,
}

impl Checker<'_> {
    fn check(&self, rec: &Record, pre: &mut Pre) {
        pre.amounts.clear();
        pre.digests.clear();
        pre.scope_key = None;
        let mut fields = std::mem::take(&mut pre.fields);
        let issue = |rule: &str, field: String, message: String| {
            Checked::Done(Verdict::Rejected {
                fields: vec![],
                issues: vec![RowIssue {
                    rule: rule.into(),
                    field,
                    message,
                }],
            })
        };
        let checked = match self.decoder.decode_into(rec, &mut fields, &mut pre.nulls) {
            Ok(()) => {
                if self.keep_scope_keys {
                    pre.scope_key = fields
                        .get(self.rules.key_index())
                        .map(|k| k.trim().to_string());
                }
                if pre.row.capacity() == 0 {
                    pre.row = self.pool.take();
                }
                self.rules
                    .check_into(fields, &mut pre.row, &pre.nulls, self.refs, self.scope_refs)
            }
            Err(Undecodable::Malformed(m)) => issue("malformed", "(row)".into(), m),
            Err(Undecodable::Encoding(field, m)) => issue("encoding", field, m),
        };
        let fields = match &checked {
            Checked::Done(Verdict::Rejected { fields, .. }) => Some(fields),
            Checked::Pending(p) => Some(&p.fields),
            _ => None,
        };
        if let Some(f) = fields {
            for &(amount, _) in self.sum_idx {
                pre.amounts
                    .push(f.get(amount).and_then(|v| parse_decimal(v)));
            }
            if let Checked::Pending(p) = &checked
                && p.clean()
            {
                for idx in self.fp_idx {
                    pre.digests
                        .push(Fingerprint::digest(idx.iter().map(|&i| f[i].as_str())));
                }
            }
        }
        pre.checked = Some(checked);
    }
}

pub struct EntityResult {
    pub counts: EntityCounts,
    /// `valid.<field>` / `rejected.<field>` decimal sums (`valid.<field>.<CUR>` /
    /// `rejected.<field>.<CUR>` for a sum kept per currency) and `fingerprint.<check>` values.
    pub sums: BTreeMap<String, String>,
    pub valid_keys: Option<KeySet>,
    pub scope_keys: Option<ScopeKeys>,
    pub duration_ms: u64,
}

/// A row in a batch: only what the target takes. A row the database refuses is read
/// again from the extract (see [`reread_refused`]) for its raw record and cleansed fields.
struct Item {
    line: u64,
    row: Vec<SqlValue>,
    /// A one2many line after its record's row: counted, refused and rejected with it.
    continuation: bool,
    /// On a record's own row: where its lines are in the lines' file.
    spans: LineSpans,
}

impl Item {
    /// About the bytes it holds: itself, its values and their strings.
    fn weight(&self) -> usize {
        std::mem::size_of::<Item>()
            + row_weight(&self.row)
            + self.spans.capacity() * std::mem::size_of::<(u64, u64)>()
    }
}

/// The batch being filled: full at `max_rows` rows or `max_bytes` of them.
struct Batch {
    items: Vec<Item>,
    bytes: usize,
    max_rows: usize,
    max_bytes: usize,
}

impl Batch {
    fn new(max_rows: usize, max_bytes: usize) -> Batch {
        Batch {
            // Not `max_rows`: the byte budget may cut batches far shorter.
            items: Vec::with_capacity(max_rows.min(1024)),
            bytes: 0,
            max_rows,
            max_bytes,
        }
    }

    fn push(&mut self, item: Item) {
        self.bytes += item.weight();
        self.items.push(item);
    }

    fn full(&self) -> bool {
        self.items.len() >= self.max_rows || self.bytes >= self.max_bytes
    }

    /// The batch so far; the next one starts as long as this one ended.
    fn take(&mut self) -> Vec<Item> {
        self.bytes = 0;
        let cap = self.items.len();
        std::mem::replace(&mut self.items, Vec::with_capacity(cap))
    }
}

/// A row the database refused: line, message, where its one2many lines are.
type Refused = (u64, String, LineSpans);

#[derive(Default)]
struct Tally {
    counts: EntityCounts,
    /// Rows refused in batches committed before a resume.
    refused_before: Vec<Refused>,
    valid_sum: Vec<Sums>,
    rejected_sum: Vec<Sums>,
    fp: Vec<Fingerprint>,
    keys: Option<KeySet>,
    scope_keys: Option<ScopeKeys>,
}

/// Stop before rows go out when a key set failed to write or read its spilled keys: the
/// unique, reference and scope answers since may be wrong.
fn keys_sound(
    state: &RunState,
    t: &Tally,
    refs: &Refs,
    scope_refs: &HashMap<String, Arc<ScopeKeys>>,
) -> Result<()> {
    state
        .failure()
        .and_then(|_| t.keys.as_ref().map_or(Ok(()), KeySet::failure))
        .and_then(|_| t.scope_keys.as_ref().map_or(Ok(()), ScopeKeys::failure))
        .and_then(|_| refs.values().try_for_each(|k| k.failure()))
        .and_then(|_| scope_refs.values().try_for_each(|k| k.failure()))
        .map_err(|e| anyhow::anyhow!("keeping the keys of the unique and reference rules: {e}"))
}

/// Told about every committed batch (the executor journals it as a checkpoint) and every
/// retry after a transient fault.
pub trait BatchObserver {
    fn committed(
        &self,
        batch: u64,
        rows: u64,
        last_line: u64,
        refused: Vec<RefusedRow>,
    ) -> impl std::future::Future<Output = Result<()>> + Send;

    fn retrying(&self, retry: Retry) -> impl std::future::Future<Output = Result<()>> + Send;

    /// Right before each write into the target (every batch, half of a split batch and
    /// retry): `Err` stops the load before that write (the executor: this process no
    /// longer holds the run's lease). Called per batch, so it must be cheap.
    /// `may_conflict`: some of the rows may already be in the target from this run (the
    /// first batches after a resume, as many as can be in flight, and every retry); when
    /// false, none of them was written by this run before.
    fn writing(&self, may_conflict: bool) -> impl std::future::Future<Output = Result<()>> + Send {
        let _ = may_conflict;
        async { Ok(()) }
    }
}

/// A batch write failed for a reason that is not its rows; it is tried again after `delay`.
#[derive(Debug, Clone)]
pub struct Retry {
    /// 1 for the first retry.
    pub attempt: u32,
    pub max_attempts: u32,
    pub delay: std::time::Duration,
    pub error: String,
}

/// Run one entity. Row-level problems never return `Err`.
pub async fn run_entity<O: BatchObserver + Sync>(
    job: EntityJob,
    target: &dyn Target,
    progress: &watch::Sender<ProgressSnapshot>,
    on_batch: &O,
) -> Result<EntityResult> {
    let started = Instant::now();
    // One batch waiting is enough to keep the writers busy; each more one is memory.
    let (tx, mut rx) = mpsc::channel::<Vec<Item>>(1);
    let rules = job.rules.clone();
    let file = job.file.clone();
    let reject_path = job.reject_path.clone();
    let batch_size = job.batch_size.max(1);
    let batch_bytes = job.batch_bytes.max(1);
    // A row whose key cell is empty continues the record above it (Odoo's one2many rows:
    // an invoice, then its further lines): batches are cut only before a row that starts
    // a record, so a record never straddles two writes.
    let key_col = job.table.columns.iter().position(|c| *c == job.table.key);
    let refs = job.refs.clone();
    let scope_refs = job.scope_refs.clone();
    let keep_scope_keys = job.keep_scope_keys;
    // (amount index, currency index) per sum field, aligned with `sum_fields`. A field the
    // rules do not know (lint reports it) gets an index past the row: it adds nothing.
    let sum_idx: Vec<(usize, Option<usize>)> = job
        .sum_fields
        .iter()
        .map(|f| {
            let at = |c: &String| rules.column_index(c).unwrap_or(usize::MAX);
            (at(&f.field), f.currency.as_ref().map(at))
        })
        .collect();
    let fp_idx: Vec<Vec<usize>> = job
        .fingerprints
        .iter()
        .map(|(_, fs)| fs.iter().filter_map(|f| rules.column_index(f)).collect())
        .collect();
    let keep_keys = job.keep_valid_keys;
    // The budget is shared by the sets that grow while this entity is read.
    let key_memory = job
        .keys
        .share(rules.unique_rules() + usize::from(keep_keys) + 2 * usize::from(keep_scope_keys));
    let (sum_idx_db, fp_idx_db) = (sum_idx.clone(), fp_idx.clone());
    let live = Arc::new(LiveCounts::default());
    let live_r = live.clone();
    let resume = job.resume.clone().unwrap_or_default();
    let (skip_until, mut refused_before) = (resume.last_line, resume.refused.clone());

    let spread = Spread::new(job.workers, CHUNK_ROWS, CHUNK_BYTES);
    // As many rows as can be out at once (the batch being filled, the one waiting, those
    // being written), so that the rows of a written batch come back, and none is new.
    let pool = Arc::new(RowPool::new(
        batch_bytes * (job.write_concurrency.max(1) + 2),
    ));
    let pool_w = pool.clone();

    // Rule work and reject writing happen off the async runtime: a reader, `workers`
    // threads for the rules that need no state, and this thread as the sequencer for the
    // rest, in file order (see `ordered`).
    type Read = (Tally, RejectWriter, Option<LineSet>);
    let reader = tokio::task::spawn_blocking(move || -> Result<Read> {
        let mut src = CsvSource::open(&file, &rules.columns, rules.dialect)?;
        let decoder = src.decoder();
        let mut rejects = RejectWriter::create(&reject_path, src.header())?;
        let mut t = Tally {
            valid_sum: vec![Sums::new(); sum_idx.len()],
            rejected_sum: vec![Sums::new(); sum_idx.len()],
            fp: vec![Fingerprint::default(); fp_idx.len()],
            keys: keep_keys.then(|| key_memory.set()),
            scope_keys: keep_scope_keys.then(|| ScopeKeys::new(&key_memory)),
            ..Default::default()
        };
        let mut state = RunState::with_keys(key_memory);
        let mut lines = match &rules.lines {
            Some(_) => Some(LineSet::open(rules.clone(), &file, &reject_path)?),
            None => None,
        };
        let mut batch = Batch::new(batch_size, batch_bytes);
        let mut read = 0u64;
        let fill = |rec: &mut Record| -> Result<Option<usize>> {
            let more = src
                .read_record(rec)
                .with_context(|| format!("{}: reading after line {}", file.display(), read + 1))?;
            read += 1;
            Ok(more.then_some(rec.bytes.len()))
        };
        let checker = Checker {
            decoder: &decoder,
            rules: &rules,
            refs: &refs,
            scope_refs: &scope_refs,
            // The key as read is wanted by entities scoping by this one and by its lines.
            keep_scope_keys: keep_scope_keys || rules.lines.is_some(),
            sum_idx: &sum_idx,
            fp_idx: &fp_idx,
            pool: &pool_w,
        };
        let work = |rec: &Record, pre: &mut Pre| checker.check(rec, pre);
        let sink = |rec: &mut Record, pre: &mut Pre| -> Result<()> {
            t.counts.in_file += 1;
            let line = rec.line;
            let verdict = match pre.checked.take() {
                Some(Checked::Done(v)) => v,
                Some(Checked::Pending(p)) => rules.settle(p, &mut state),
                None => anyhow::bail!("line {line}: not checked"),
            };
            // The record's lines travel with it; a line the rules refuse refuses the record,
            // and a record not loaded takes its lines to their reject file.
            let scope_key = pre.scope_key.take();
            let (verdict, attached) = match &mut lines {
                Some(ls) => super::lines::settle(ls, &rules, verdict, scope_key.as_deref(), &refs)?,
                None => (verdict, None),
            };
            let (spans, line_rows) = attached.map(|a| (a.spans, a.rows)).unwrap_or_default();
            if let (Some(sk), Some(k)) = (t.scope_keys.as_mut(), scope_key)
                && !k.is_empty()
            {
                sk.add(&k, !matches!(verdict, Verdict::OutOfScope));
            }
            match verdict {
                Verdict::OutOfScope => {}
                Verdict::Rejected { fields, issues } => {
                    t.counts.in_scope += 1;
                    t.counts.rejected += 1;
                    for (k, amount) in pre.amounts.iter().enumerate() {
                        add_amount(&mut t.rejected_sum[k], *amount, &fields, sum_idx[k].1);
                    }
                    rejects.write_fields(rec.iter(), line, &issues)?;
                    pre.fields = fields;
                }
                Verdict::Valid { fields, row } => {
                    t.counts.in_scope += 1;
                    t.counts.valid += 1;
                    for (k, amount) in pre.amounts.iter().enumerate() {
                        add_amount(&mut t.valid_sum[k], *amount, &fields, sum_idx[k].1);
                    }
                    for (fp, d) in t.fp.iter_mut().zip(&pre.digests) {
                        fp.add_digest(*d);
                    }
                    if let Some(keys) = t.keys.as_mut() {
                        keys.insert(&fields[rules.key_index()]);
                    }
                    pre.fields = fields;
                    if line <= skip_until {
                        // Committed before the interruption: not written again.
                        if let Some(msg) = refused_before.remove(&line) {
                            t.refused_before.push((line, msg, spans));
                        }
                    } else {
                        if batch.full() && !continues_record(&row, key_col) {
                            keys_sound(&state, &t, &refs, &scope_refs)?;
                            live_r.publish(&t.counts);
                            if tx.blocking_send(batch.take()).is_err() {
                                anyhow::bail!("load stopped");
                            }
                        }
                        // The record's lines: the first on its own row, the others as
                        // continuation rows (every other cell empty), as Odoo exports them.
                        let mut row = row;
                        let width = row.len();
                        let mut cells = line_rows.into_iter();
                        if let (Some(l), Some(first)) = (&rules.lines, cells.next()) {
                            let at = width - l.rules.target_columns.len();
                            row.truncate(at);
                            row.extend(first);
                        }
                        batch.push(Item {
                            line,
                            row,
                            continuation: false,
                            spans,
                        });
                        for line_cells in cells {
                            let mut row = vec![SqlValue::Null; width - line_cells.len()];
                            row.extend(line_cells);
                            batch.push(Item {
                                line,
                                row,
                                continuation: true,
                                spans: Vec::new(),
                            });
                        }
                    }
                }
            }
            if t.counts.in_file.is_multiple_of(4096) {
                live_r.publish(&t.counts);
            }
            Ok(())
        };
        ordered::run(spread, fill, work, sink)?;
        live_r.publish(&t.counts);
        keys_sound(&state, &t, &refs, &scope_refs)?;
        if !batch.items.is_empty() && tx.blocking_send(batch.items).is_err() {
            anyhow::bail!("load stopped");
        }
        drop(state);
        // Read-only from here on: spilled sets write out their last keys and merge.
        if let Some(k) = t.keys.as_mut() {
            k.seal();
        }
        if let Some(k) = t.scope_keys.as_mut() {
            k.seal();
        }
        Ok((t, rejects, lines))
    });

    let mut loaded = resume.loaded;
    let mut db_rejects: Vec<Refused> = Vec::new();
    let mut batch_no = resume.batches;
    let entity = job.rules.name.clone();
    let publish = |loaded: u64, done: bool| {
        let c = live.snapshot();
        progress.send_modify(|snap| {
            let p = EntityProgress {
                phase: Some(job.phase),
                entity: entity.clone(),
                expected: job.expected_rows,
                read: c.in_file,
                valid: c.valid,
                rejected: c.rejected,
                loaded,
                elapsed_secs: started.elapsed().as_secs_f64(),
                done,
            };
            match snap
                .iter_mut()
                .find(|e| e.entity == p.entity && e.phase == p.phase)
            {
                Some(e) => *e = p,
                None => snap.push(p),
            }
        });
    };
    publish(loaded, false);
    // Up to `write_concurrency` batches in flight; their results are taken in batch order,
    // so a checkpoint is journaled only once every batch before it has committed.
    // Keys that may repeat in the file must reach the target in file order.
    let concurrency = if job.rules.unique_key() {
        job.write_concurrency.max(1)
    } else {
        1
    };
    let resumed = job.resume.is_some();
    let mut sent = 0usize;
    let mut in_flight = FuturesOrdered::new();
    let mut reading = true;
    let mut write_err = None;
    while reading || !in_flight.is_empty() {
        tokio::select! {
            // Finished writes first: they free a place and move the checkpoint on.
            biased;
            Some((items, res)) = in_flight.next(), if !in_flight.is_empty() => {
                let items: Vec<Item> = items;
                let res: Result<(u64, Vec<(usize, String)>)> = res;
                match res {
                    Ok((n, bad)) => {
                        // Records are counted, not their continuation rows (all refused or none).
                        let lines_in = items.iter().filter(|i| i.continuation).count();
                        let lines_out = bad.iter().filter(|(i, _)| items[*i].continuation).count();
                        loaded += n.saturating_sub((lines_in - lines_out) as u64);
                        let mut refused = Vec::with_capacity(bad.len());
                        for (i, msg) in bad {
                            let it = &items[i];
                            if it.continuation {
                                continue;
                            }
                            refused.push(RefusedRow {
                                line: it.line,
                                message: msg.clone(),
                            });
                            db_rejects.push((it.line, msg, it.spans.clone()));
                        }
                        batch_no += 1;
                        let last_line = items.last().map(|i| i.line).unwrap_or(0);
                        pool.give(items);
                        publish(loaded, false);
                        if let Err(e) = on_batch.committed(batch_no, n, last_line, refused).await {
                            // Stop reading too, and join the reader before returning.
                            write_err = Some(e);
                            break;
                        }
                    }
                    Err(e) => {
                        write_err = Some(e);
                        break;
                    }
                }
            }
            next = rx.recv(), if reading && in_flight.len() < concurrency => {
                let Some(items) = next else {
                    reading = false;
                    continue;
                };
                // Batches that were in flight when an earlier attempt stopped may hold rows
                // the target already has: as many as could be in flight at once.
                let may_conflict = job.may_conflict || (resumed && sent < concurrency);
                sent += 1;
                let (table, retry) = (&job.table, &job.retry);
                in_flight.push_back(async move {
                    let res =
                        bisect_rows_retrying(target, table, &items, retry, may_conflict, on_batch)
                            .await;
                    (items, res)
                });
            }
        }
    }
    // Writes still in flight after a failure finish (a write is not cut off halfway);
    // they are not journaled, so a resume writes them again, as possible conflicts.
    while in_flight.next().await.is_some() {}
    drop(rx);
    let joined = reader.await.context("pipeline thread")?;
    if let Some(e) = write_err {
        return Err(e)
            .with_context(|| format!("loading {} into {}", job.rules.name, job.table.table));
    }
    let (mut t, mut rejects, mut lines) = joined?;
    let mut refused = std::mem::take(&mut t.refused_before);
    refused.append(&mut db_rejects);
    // Rows the database refused move from valid to rejected, with the database's reason.
    reread_refused(&job.file, &job.rules, refused, |rec, fields, msg, spans| {
        if let Some(ls) = lines.as_mut() {
            ls.refused(&fields[job.rules.key_index()], spans, msg)?;
        }
        rejects.write_fields(
            rec.iter(),
            rec.line,
            &[RowIssue {
                rule: "database".into(),
                field: "(row)".into(),
                message: msg.into(),
            }],
        )?;
        t.counts.valid -= 1;
        t.counts.rejected += 1;
        // Under the row's own currency on both sides.
        for (k, &(amount, cur)) in sum_idx_db.iter().enumerate() {
            let d = fields.get(amount).and_then(|v| parse_decimal(v));
            add_amount(&mut t.valid_sum[k], d.map(|d| -d), fields, cur);
            add_amount(&mut t.rejected_sum[k], d, fields, cur);
        }
        for (k, idx) in fp_idx_db.iter().enumerate() {
            let parts: Vec<&str> = idx.iter().map(|&i| fields[i].as_str()).collect();
            t.fp[k].remove(&parts);
        }
        // Not in the target, so not a valid reference for the entities that follow.
        if let Some(keys) = t.keys.as_mut() {
            keys.remove(&fields[job.rules.key_index()]);
        }
        Ok(())
    })?;
    if let Some(keys) = &t.keys {
        keys.failure()
            .map_err(|e| anyhow::anyhow!("keeping the keys of {}: {e}", job.rules.name))?;
    }
    rejects.finish()?;
    if let Some(ls) = lines {
        t.counts.lines = Some(ls.finish()?);
    }
    t.counts.loaded = loaded;
    publish(loaded, true);

    let mut sums = BTreeMap::new();
    for (k, sf) in job.sum_fields.iter().enumerate() {
        let (valid, rejected) = (&t.valid_sum[k], &t.rejected_sum[k]);
        let f = &sf.field;
        let at = |m: &Sums, cur: &str| m.get(cur).copied().unwrap_or_default().to_string();
        if sf.currency.is_none() {
            sums.insert(format!("valid.{f}"), at(valid, ""));
            sums.insert(format!("rejected.{f}"), at(rejected, ""));
        } else {
            // Both keys for every currency seen on either side, so a currency with only
            // rejected rows still shows its (zero) valid sum.
            for cur in valid.keys().chain(rejected.keys()) {
                sums.insert(format!("valid.{f}.{cur}"), at(valid, cur));
                sums.insert(format!("rejected.{f}.{cur}"), at(rejected, cur));
            }
        }
    }
    for (k, (name, _)) in job.fingerprints.iter().enumerate() {
        sums.insert(format!("fingerprint.{name}"), t.fp[k].render());
    }
    Ok(EntityResult {
        counts: t.counts,
        sums,
        valid_keys: t.keys,
        scope_keys: t.scope_keys,
        duration_ms: started.elapsed().as_millis() as u64,
    })
}

/// The rows the database refused, read again from the extract, in file order: each with
/// its raw record (for the reject file) and its cleansed fields (to take its share back out
/// of the valid sums, fingerprints and keys). Batches keep only the row for the target, so
/// this second read is the price of a refusal, paid only when there is one.
fn reread_refused(
    file: &std::path::Path,
    rules: &Compiled,
    refused: Vec<Refused>,
    mut each: impl FnMut(&Record, &[String], &str, &LineSpans) -> Result<()>,
) -> Result<()> {
    if refused.is_empty() {
        return Ok(());
    }
    let mut by_line: BTreeMap<u64, (String, LineSpans)> =
        refused.into_iter().map(|(l, m, s)| (l, (m, s))).collect();
    let mut src = CsvSource::open(file, &rules.columns, rules.dialect)?;
    let decoder = src.decoder();
    let (mut rec, mut fields, mut nulls) = (Record::default(), Vec::new(), Vec::new());
    while !by_line.is_empty() && src.read_record(&mut rec)? {
        let Some((msg, spans)) = by_line.remove(&rec.line) else {
            continue;
        };
        if decoder.decode_into(&rec, &mut fields, &mut nulls).is_err() {
            anyhow::bail!(
                "{}: line {}, refused by the database, no longer reads as it did: the extract \
                 changed during the load",
                file.display(),
                rec.line
            );
        }
        rules.cleanse(&mut fields);
        each(&rec, &fields, &msg, &spans)?;
    }
    if let Some(line) = by_line.keys().next() {
        anyhow::bail!(
            "{}: line {line}, refused by the database, is no longer in the extract: it changed \
             during the load",
            file.display()
        );
    }
    Ok(())
}

/// Whether `row` continues the record of the row before it: its key cell is empty.
fn continues_record(row: &[SqlValue], key_col: Option<usize>) -> bool {
    key_col.is_some_and(|k| match row.get(k) {
        None | Some(SqlValue::Null) => true,
        Some(SqlValue::Text(t)) => t.is_empty(),
        Some(_) => false,
    })
}

/// Where a part `lo..hi` of a batch may be cut near `want`: the record start closest to
/// it, strictly inside the part; `None` when the part is one record.
fn record_cut<R: AsRef<[SqlValue]>>(
    rows: &[R],
    key_col: Option<usize>,
    lo: usize,
    hi: usize,
    want: usize,
) -> Option<usize> {
    let starts = |i: &usize| !continues_record(rows[*i].as_ref(), key_col);
    let after = (want..hi).find(starts);
    let before = (lo + 1..want).rev().find(starts);
    match (before, after) {
        (Some(b), Some(a)) => Some(if want - b <= a - want { b } else { a }),
        (b, a) => b.or(a),
    }
}

/// Write a batch; when an atomic target refuses its content, split it in halves until the
/// offending rows are isolated (as pgloader does). Returns rows loaded and the refused
/// rows as (index into `rows`, the target's message). Other errors stop it.
pub async fn bisect_rows<R: AsRef<[SqlValue]>>(
    target: &dyn Target,
    spec: &TableSpec,
    rows: &[R],
) -> Result<(u64, Vec<(usize, String)>)> {
    bisect_rows_as(target, spec, rows, true).await
}

/// [`bisect_rows`] with the write's `may_conflict` chosen by the caller.
pub async fn bisect_rows_as<R: AsRef<[SqlValue]>>(
    target: &dyn Target,
    spec: &TableSpec,
    rows: &[R],
    may_conflict: bool,
) -> Result<(u64, Vec<(usize, String)>)> {
    bisect_rows_retrying(
        target,
        spec,
        rows,
        &RetryPolicy::NONE,
        may_conflict,
        &NoObserver,
    )
    .await
}

/// [`bisect_rows`], acting on the target's own verdict ([`TargetError`]) only:
/// - `Rows`: split and write each half, when the target is atomic and does not report its
///   bad rows itself; a single row is refused. A target that cannot be split this way
///   fails the load instead.
/// - `refused` rows of an accepted write go to the rejects like bisected ones.
/// - `Transient`: told to `observer`, waited for and written again, up to `policy.max`
///   times in a row. A retry repeats only the write that failed: parts already committed
///   stay committed and counted once. Targets upsert on the key, so a write whose commit
///   went through before the connection broke is harmless to repeat, and every target
///   reports the rows it was given, so the replay counts them in full. That is why a
///   write repeated after a transient fault is always an upsert (`may_conflict = true`),
///   whatever `may_conflict` the first attempt had: its commit may have gone through.
/// - `Fatal`: stop.
///
/// A batch larger than the target's `max_batch_rows` is written in parts of that size.
pub async fn bisect_rows_retrying<R: AsRef<[SqlValue]>, O: BatchObserver + Sync>(
    target: &dyn Target,
    spec: &TableSpec,
    rows: &[R],
    policy: &RetryPolicy,
    may_conflict: bool,
    observer: &O,
) -> Result<(u64, Vec<(usize, String)>)> {
    let caps = target.capabilities();
    let can_bisect = caps.atomic_batches && !caps.reports_bad_rows;
    let mut loaded = 0;
    let mut bad = Vec::new();
    let key_col = spec.columns.iter().position(|c| *c == spec.key);
    // Parts of whole records (one larger than the part makes an oversized part), pushed
    // last first, so they are written in file order.
    let part = caps.max_batch_rows.unwrap_or(rows.len()).max(1);
    // Each part carries its own `may_conflict`: a retried part (and its halves) upserts.
    let mut stack: Vec<(usize, usize, bool)> = Vec::new();
    let mut lo = 0;
    while lo < rows.len() {
        let mut hi = (lo + part).min(rows.len());
        while hi < rows.len() && continues_record(rows[hi].as_ref(), key_col) {
            hi += 1;
        }
        stack.push((lo, hi, may_conflict));
        lo = hi;
    }
    stack.reverse();
    let mut failures = 0u32;
    while let Some((lo, hi, may_conflict)) = stack.pop() {
        let batch: Vec<&[SqlValue]> = rows[lo..hi].iter().map(|r| r.as_ref()).collect();
        observer.writing(may_conflict).await?;
        let res = target.write_batch(spec, &batch, may_conflict).await;
        if !matches!(res, Err(TargetError::Transient(_))) {
            failures = 0;
        }
        match res {
            Ok(out) => {
                loaded += out.loaded;
                bad.extend(out.refused.into_iter().map(|(i, msg)| (lo + i, msg)));
            }
            Err(TargetError::Rows(msg)) if hi - lo == 1 => bad.push((lo, msg)),
            Err(TargetError::Rows(msg)) if can_bisect => {
                match record_cut(rows, key_col, lo, hi, lo + (hi - lo) / 2) {
                    Some(mid) => {
                        stack.push((mid, hi, may_conflict));
                        stack.push((lo, mid, may_conflict));
                    }
                    // One record, refused whole: each of its rows carries the reason.
                    None => bad.extend((lo..hi).map(|i| (i, msg.clone()))),
                }
            }
            Err(TargetError::Rows(msg)) => {
                return Err(anyhow::anyhow!(
                    "{} refused a batch of {} rows without naming the bad ones: {msg}",
                    target.name(),
                    hi - lo
                ));
            }
            Err(TargetError::Fatal(e)) => return Err(e),
            Err(TargetError::Transient(e)) if policy.max == 0 => return Err(e),
            Err(TargetError::Transient(e)) if failures == policy.max => {
                return Err(anyhow::anyhow!(
                    "gave up after {} retries: {} (check that the server is up and reachable; \
                     to ride out a longer outage, raise settings.retries or \
                     settings.retry_delay in the runbook)",
                    policy.max,
                    explain(&e)
                ));
            }
            Err(TargetError::Transient(e)) => {
                failures += 1;
                let delay = policy.delay(failures);
                observer
                    .retrying(Retry {
                        attempt: failures,
                        max_attempts: policy.max,
                        delay,
                        error: explain(&e),
                    })
                    .await?;
                tokio::time::sleep(delay).await;
                stack.push((lo, hi, true));
            }
        }
    }
    bad.sort_by_key(|(i, _)| *i);
    Ok((loaded, bad))
}

/// An observer that takes note of nothing: for callers that do not journal or retry.
pub struct NoObserver;

impl BatchObserver for NoObserver {
    async fn committed(&self, _: u64, _: u64, _: u64, _: Vec<RefusedRow>) -> Result<()> {
        Ok(())
    }
    async fn retrying(&self, _: Retry) -> Result<()> {
        Ok(())
    }
}

impl AsRef<[SqlValue]> for Item {
    fn as_ref(&self) -> &[SqlValue] {
        &self.row
    }
}

#[derive(Default)]
struct LiveCounts {
    read: std::sync::atomic::AtomicU64,
    valid: std::sync::atomic::AtomicU64,
    rejected: std::sync::atomic::AtomicU64,
}

impl LiveCounts {
    fn publish(&self, c: &EntityCounts) {
        use std::sync::atomic::Ordering::Relaxed;
        self.read.store(c.in_file, Relaxed);
        self.valid.store(c.valid, Relaxed);
        self.rejected.store(c.rejected, Relaxed);
    }
    fn snapshot(&self) -> EntityCounts {
        use std::sync::atomic::Ordering::Relaxed;
        EntityCounts {
            in_file: self.read.load(Relaxed),
            valid: self.valid.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            ..Default::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::target::memory::{self, BatchWriter, Fault, MemoryTarget, WriteOnly};
    use crate::target::{Capabilities, Target};

    fn spec() -> TableSpec {
        TableSpec {
            table: "t".into(),
            key: "k".into(),
            columns: vec!["k".into(), "v".into()],
        }
    }

    fn rows(n: usize, bad: &[usize]) -> Vec<Vec<SqlValue>> {
        (0..n)
            .map(|i| {
                let v = if bad.contains(&i) {
                    SqlValue::Null
                } else {
                    SqlValue::Int(i as i64)
                };
                vec![SqlValue::Text(format!("k{i:03}")), v]
            })
            .collect()
    }

    fn twin(caps: Capabilities) -> MemoryTarget {
        MemoryTarget::new()
            .with_tables(&["t"])
            .not_null("t", "v")
            .with_capabilities(caps)
    }

    #[derive(Default)]
    struct Seen(Mutex<Vec<Retry>>);
    impl BatchObserver for Seen {
        async fn committed(&self, _: u64, _: u64, _: u64, _: Vec<RefusedRow>) -> Result<()> {
            Ok(())
        }
        async fn retrying(&self, r: Retry) -> Result<()> {
            self.0.lock().unwrap().push(r);
            Ok(())
        }
    }

    const QUICK: RetryPolicy = RetryPolicy {
        max: 3,
        first: Duration::from_millis(1),
        cap: Duration::from_millis(2),
    };

    #[tokio::test]
    async fn transient_faults_are_retried_and_the_batch_counted_once() {
        let t = twin(memory::capabilities());
        t.fail_next(2, Fault::Transient);
        let seen = Seen::default();
        let (loaded, bad) = bisect_rows_retrying(&t, &spec(), &rows(10, &[]), &QUICK, true, &seen)
            .await
            .unwrap();
        assert_eq!((loaded, bad.len()), (10, 0));
        let attempts: Vec<u32> = seen.0.lock().unwrap().iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [1, 2]);
        assert!(seen.0.lock().unwrap()[0].error.contains("injected"));
        assert_eq!(t.count("t").await.unwrap(), 10);
    }

    #[tokio::test]
    async fn a_direct_write_retried_after_a_transient_fault_upserts() {
        // The first attempt's commit may have gone through before the connection broke:
        // the retry must not meet its own rows as duplicates.
        let t = twin(memory::capabilities());
        t.fail_next(1, Fault::Transient);
        let (loaded, bad) = bisect_rows_retrying(
            &t,
            &spec(),
            &rows(10, &[3]),
            &QUICK,
            false,
            &Seen::default(),
        )
        .await
        .unwrap();
        assert_eq!((loaded, bad.len()), (9, 1));
        let modes = t.write_modes();
        assert!(!modes[0], "the first attempt is direct: {modes:?}");
        assert!(
            modes[1..].iter().all(|m| *m),
            "retry and its halves: {modes:?}"
        );
        // Without a fault every part, halves included, stays direct.
        let t = twin(memory::capabilities());
        bisect_rows_retrying(
            &t,
            &spec(),
            &rows(10, &[3]),
            &QUICK,
            false,
            &Seen::default(),
        )
        .await
        .unwrap();
        assert!(t.write_modes().iter().all(|m| !*m), "{:?}", t.write_modes());
    }

    #[tokio::test]
    async fn retries_end_after_the_policy_and_fatal_faults_at_once() {
        let t = twin(memory::capabilities());
        t.fail_next(4, Fault::Transient);
        let err = bisect_rows_retrying(&t, &spec(), &rows(4, &[]), &QUICK, true, &Seen::default())
            .await
            .unwrap_err();
        assert!(
            format!("{err}").contains("gave up after 3 retries"),
            "{err}"
        );
        assert_eq!(t.writes(), 4);

        let t = twin(memory::capabilities());
        t.fail_next(1, Fault::Fatal);
        let seen = Seen::default();
        assert!(
            bisect_rows_retrying(&t, &spec(), &rows(4, &[]), &QUICK, true, &seen)
                .await
                .is_err()
        );
        assert!(
            seen.0.lock().unwrap().is_empty(),
            "a fatal fault is not retried"
        );
        assert_eq!(t.writes(), 1);
    }

    #[tokio::test]
    async fn bisect_isolates_the_bad_rows_and_a_target_that_reports_them_is_not_split() {
        let t = twin(memory::capabilities());
        let (loaded, bad) = bisect_rows(&t, &spec(), &rows(100, &[3, 64]))
            .await
            .unwrap();
        assert_eq!(loaded, 98);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [3, 64]);
        assert!(t.writes() > 2, "split: {} writes", t.writes());

        let t = twin(Capabilities {
            reports_bad_rows: true,
            max_batch_rows: Some(30),
            ..memory::capabilities()
        });
        let (loaded, bad) = bisect_rows(&t, &spec(), &rows(100, &[3, 64]))
            .await
            .unwrap();
        assert_eq!(loaded, 98);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [3, 64]);
        // 100 rows in parts of at most 30, each written once: no bisecting.
        assert_eq!(t.writes(), 4);
    }

    /// Records each batch's key cells; refuses a batch holding a row whose `v` is `bad`.
    struct Recorder(Mutex<Vec<Vec<String>>>);

    #[async_trait::async_trait]
    impl BatchWriter for Recorder {
        async fn write(
            &self,
            rows: &[&[SqlValue]],
        ) -> Result<crate::target::WriteOutcome, TargetError> {
            let text = |v: &SqlValue| match v {
                SqlValue::Text(t) => t.clone(),
                _ => String::new(),
            };
            self.0
                .lock()
                .unwrap()
                .push(rows.iter().map(|r| text(&r[0])).collect());
            if rows.iter().any(|r| text(&r[1]) == "bad") {
                return Err(TargetError::Rows("bad line".into()));
            }
            Ok(crate::target::WriteOutcome {
                loaded: rows.len() as u64,
                refused: vec![],
            })
        }
    }

    /// An entity whose rows with an empty key continue the record above (one2many rows).
    fn invoices_job(dir: &std::path::Path, csv: &str, batch_size: usize) -> EntityJob {
        job_with(dir, csv, batch_size, "")
    }

    /// An entity of `k` and `v`, with `extra` TOML (rules).
    fn job_with(dir: &std::path::Path, csv: &str, batch_size: usize, extra: &str) -> EntityJob {
        #[derive(serde::Deserialize)]
        struct W {
            e: crate::runbook::format::Entity,
        }
        let e = toml::from_str::<W>(&format!(
            "[e]\nsource = {{ file = 'inv.csv' }}\ncolumns = ['k', 'v']\nkey = 'k'\n{extra}\n\
             target = {{ table = 't', key = 'k' }}\nmap = {{ k = 'k', v = 'v' }}"
        ))
        .unwrap()
        .e;
        let all = indexmap::IndexMap::from([("e".to_string(), e.clone())]);
        let rules = Compiled::new("e", &e, &all).unwrap();
        let file = dir.join("inv.csv");
        std::fs::write(&file, csv).unwrap();
        EntityJob {
            phase: Phase::Load,
            table: TableSpec {
                table: "t".into(),
                key: "k".into(),
                columns: rules.target_columns.clone(),
            },
            rules: Arc::new(rules),
            file,
            reject_path: dir.join("inv.rejects.csv"),
            batch_size,
            batch_bytes: 4 << 20,
            retry: RetryPolicy::NONE,
            refs: HashMap::new(),
            keep_valid_keys: false,
            scope_refs: HashMap::new(),
            keep_scope_keys: false,
            keys: KeyMemory::default(),
            sum_fields: vec![],
            fingerprints: vec![],
            expected_rows: 0,
            resume: None,
            may_conflict: false,
            workers: 2,
            write_concurrency: 1,
        }
    }

    #[tokio::test]
    async fn batches_are_cut_between_records_never_inside_one() {
        // Invoices A (3 lines), B (2), C (1), D (4): continuation rows have an empty key.
        let csv = "k,v\nA,1\n,2\n,3\nB,1\n,2\nC,1\nD,1\n,2\n,3\n,4\n";
        let keys = ["A", "", "", "B", "", "C", "D", "", "", ""];
        for batch_size in 1..=5 {
            let dir = tempfile::tempdir().unwrap();
            let rec = WriteOnly(Recorder(Mutex::new(Vec::new())));
            let (progress, _) = watch::channel(Vec::new());
            let res = run_entity(
                invoices_job(dir.path(), csv, batch_size),
                &rec,
                &progress,
                &NoObserver,
            )
            .await
            .unwrap();
            assert_eq!(res.counts.loaded, 10, "batch {batch_size}");
            let batches = rec.0.0.into_inner().unwrap();
            assert!(batches.len() > 1, "batch {batch_size}: {batches:?}");
            for b in &batches {
                assert!(
                    !b[0].is_empty(),
                    "batch {batch_size} starts inside a record: {batches:?}"
                );
                // A record starts a batch once batch_size rows are reached, not later.
                let last_start = b.iter().rposition(|k| !k.is_empty()).unwrap();
                assert!(last_start < batch_size, "batch {batch_size}: {batches:?}");
            }
            assert_eq!(
                batches.concat(),
                keys,
                "batch {batch_size}: every row once, in order"
            );
        }
    }

    #[tokio::test]
    async fn wide_rows_cut_batches_by_bytes_before_rows() {
        // 200 rows of about 1,000 bytes; at most 1,000 rows but 20,000 bytes a batch.
        let wide = "x".repeat(1000);
        let csv: String = std::iter::once("k,v\n".to_string())
            .chain((0..200).map(|i| format!("k{i:03},{wide}\n")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let rec = WriteOnly(Recorder(Mutex::new(Vec::new())));
        let (progress, _) = watch::channel(Vec::new());
        let job = EntityJob {
            batch_bytes: 20_000,
            ..job_with(dir.path(), &csv, 1000, "")
        };
        let res = run_entity(job, &rec, &progress, &NoObserver).await.unwrap();
        assert_eq!(res.counts.loaded, 200);
        let batches = rec.0.0.into_inner().unwrap();
        let sizes: Vec<usize> = batches.iter().map(Vec::len).collect();
        // A row weighs its 1,000 bytes and a little more: a batch ends with the row that
        // takes it to 20,000 bytes, so it holds 20 rows at most, never 1,000.
        assert!(
            sizes
                .iter()
                .all(|n| (15..=20).contains(n) || n == sizes.last().unwrap()),
            "{sizes:?}"
        );
        assert!(batches.len() >= 10, "{sizes:?}");
        let keys: Vec<String> = (0..200).map(|i| format!("k{i:03}")).collect();
        assert_eq!(batches.concat(), keys, "every row once, in order");
    }

    /// Writes slowly and unevenly (later batches overtake earlier ones), recording each
    /// write's keys as it starts.
    struct Uneven {
        writes: Mutex<Vec<Vec<String>>>,
    }

    #[async_trait::async_trait]
    impl BatchWriter for Uneven {
        async fn write(
            &self,
            rows: &[&[SqlValue]],
        ) -> Result<crate::target::WriteOutcome, TargetError> {
            let keys: Vec<String> = rows
                .iter()
                .map(|r| match &r[0] {
                    SqlValue::Text(t) => t.clone(),
                    _ => String::new(),
                })
                .collect();
            let slow = keys[0].ends_with('1');
            self.writes.lock().unwrap().push(keys);
            tokio::time::sleep(Duration::from_millis(if slow { 30 } else { 2 })).await;
            Ok(crate::target::WriteOutcome {
                loaded: rows.len() as u64,
                refused: vec![],
            })
        }
    }

    /// Journals checkpoints until `crash_at` (that batch commits in the target but the
    /// process dies before the journal knows), and each write's `may_conflict`.
    struct Journal {
        crash_at: u64,
        checkpoints: Mutex<Vec<(u64, u64, u64)>>,
        conflicts: Mutex<Vec<bool>>,
    }

    impl BatchObserver for Journal {
        async fn committed(
            &self,
            batch: u64,
            rows: u64,
            last: u64,
            _: Vec<RefusedRow>,
        ) -> Result<()> {
            if batch == self.crash_at {
                anyhow::bail!("killed");
            }
            self.checkpoints.lock().unwrap().push((batch, rows, last));
            Ok(())
        }
        async fn retrying(&self, _: Retry) -> Result<()> {
            Ok(())
        }
        async fn writing(&self, may_conflict: bool) -> Result<()> {
            self.conflicts.lock().unwrap().push(may_conflict);
            Ok(())
        }
    }

    #[tokio::test]
    async fn overlapped_writes_checkpoint_in_order_and_a_resume_neither_drops_nor_duplicates() {
        let csv: String = std::iter::once("k,v\n".to_string())
            .chain((1..=60).map(|i| format!("k{i:03},{i}\n")))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let job = |resume: Option<ResumeFrom>| EntityJob {
            resume,
            write_concurrency: 3,
            workers: 3,
            // Unique keys: batches may overtake each other.
            ..job_with(
                dir.path(),
                &csv,
                4,
                "validate = [{ rule = 'unique', field = 'k' }]",
            )
        };
        let target = WriteOnly(Uneven {
            writes: Mutex::new(Vec::new()),
        });
        let first = Journal {
            crash_at: 6,
            checkpoints: Mutex::new(Vec::new()),
            conflicts: Mutex::new(Vec::new()),
        };
        let (progress, _) = watch::channel(Vec::new());
        let err = run_entity(job(None), &target, &progress, &first)
            .await
            .err();
        assert!(format!("{err:?}").contains("killed"));
        // Checkpoints in batch order over committed batches only, whatever order the
        // writes finished in.
        let cps = first.checkpoints.into_inner().unwrap();
        assert_eq!(
            cps,
            (1..=5).map(|b| (b, 4, b * 4 + 1)).collect::<Vec<_>>(),
            "checkpoints"
        );
        assert!(first.conflicts.into_inner().unwrap().iter().all(|c| !c));
        let before: Vec<Vec<String>> = std::mem::take(&mut *target.writes.lock().unwrap());
        // Batch 6 committed without its checkpoint, and later ones were in flight.
        assert!(before.len() > 6, "{before:?}");

        let (batches, _, last_line) = *cps.last().unwrap();
        let second = Journal {
            crash_at: 0,
            checkpoints: Mutex::new(Vec::new()),
            conflicts: Mutex::new(Vec::new()),
        };
        let res = run_entity(
            job(Some(ResumeFrom {
                last_line,
                batches,
                loaded: batches * 4,
                refused: HashMap::new(),
            })),
            &target,
            &progress,
            &second,
        )
        .await
        .unwrap();
        assert_eq!(res.counts.loaded, 60, "each row counted once");
        let after = target.0.writes.into_inner().unwrap();
        let flags = second.conflicts.into_inner().unwrap();
        assert_eq!(flags.len(), after.len());
        // Every row after the checkpoint written once in this run, none before it.
        let keys: Vec<&String> = after.iter().flatten().collect();
        let want: Vec<String> = (21..=60).map(|i| format!("k{i:03}")).collect();
        assert_eq!(keys, want.iter().collect::<Vec<_>>());
        // Rows the first attempt may have written are written as possible conflicts:
        // the first three batches (as many as were in flight), and no others.
        let written_before: std::collections::HashSet<&String> = before.iter().flatten().collect();
        for (keys, conflict) in after.iter().zip(&flags) {
            if keys.iter().any(|k| written_before.contains(k)) {
                assert!(conflict, "{keys:?} may already be in the target");
            }
        }
        assert_eq!(
            flags,
            [
                true, true, true, false, false, false, false, false, false, false
            ]
        );
        let cps = second.checkpoints.into_inner().unwrap();
        assert_eq!(cps.first().map(|c| c.0), Some(6));
        assert_eq!(cps.last(), Some(&(15, 4, 61)));
    }

    #[tokio::test]
    async fn bisection_refuses_a_whole_record_and_keeps_the_others() {
        let rows: Vec<Vec<SqlValue>> = [
            ("A", "1"),
            ("", "2"),
            ("B", "1"),
            ("", "bad"),
            ("", "3"),
            ("C", "1"),
        ]
        .iter()
        .map(|(k, v)| vec![SqlValue::Text(k.to_string()), SqlValue::Text(v.to_string())])
        .collect();
        let rec = WriteOnly(Recorder(Mutex::new(Vec::new())));
        let (loaded, bad) = bisect_rows(&rec, &spec(), &rows).await.unwrap();
        assert_eq!(loaded, 3);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3, 4]);
        for b in rec.0.0.into_inner().unwrap() {
            assert!(!b[0].is_empty(), "a write starts inside a record: {b:?}");
        }
    }

    #[tokio::test]
    async fn a_refused_batch_that_cannot_be_split_stops_the_load() {
        let t = twin(Capabilities {
            atomic_batches: false,
            ..memory::capabilities()
        });
        let err = bisect_rows(&t, &spec(), &rows(10, &[5])).await.unwrap_err();
        assert!(
            format!("{err}").contains("without naming the bad ones"),
            "{err}"
        );
    }
}
