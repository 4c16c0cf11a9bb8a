//! One entity through the pipeline: CSV source → scope → cleanse → validate → transform →
//! batches → target. Rule work runs on a blocking thread and hands batches over a bounded
//! channel, so memory stays flat: the reader waits while the target is busy.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use csv::ByteRecord;
use rust_decimal::Decimal;
use tokio::sync::{mpsc, watch};

use super::rejects::RejectWriter;
use super::retry::RetryPolicy;
use super::rules::{
    Compiled, Refs, RowIssue, RunState, ScopeKeys, SqlValue, Verdict, parse_decimal,
};
use crate::db::errors::explain;
use crate::journal::events::{EntityCounts, EntityProgress, Phase, ProgressSnapshot, RefusedRow};
use crate::keyset::{KeyMemory, KeySet};
use crate::sources::csv::{CsvSource, Decoded};
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
fn add_to(sums: &mut Sums, fields: &[String], (amount, cur): (usize, Option<usize>), sign: i8) {
    let Some(d) = fields.get(amount).and_then(|v| parse_decimal(v)) else {
        return;
    };
    let key = match cur {
        None => String::new(),
        Some(i) => match fields.get(i).map(|c| c.as_str()) {
            None | Some("") => NO_CURRENCY.to_string(),
            Some(c) => c.to_string(),
        },
    };
    let e = sums.entry(key).or_default();
    if sign < 0 {
        *e -= d;
    } else {
        *e += d;
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

struct Item {
    line: u64,
    raw: ByteRecord,
    row: Vec<SqlValue>,
    /// The cleansed source fields: if the database refuses the row, its share of the
    /// valid sums, fingerprints and keys is taken back out.
    fields: Vec<String>,
    /// A one2many line after its record's row: counted, refused and rejected with it.
    continuation: bool,
}

/// An entity's one2many lines by the key of their record, or why a line of that record
/// was refused by the rules (the record is then refused with it).
type LinesByParent = HashMap<String, Result<Vec<Vec<SqlValue>>, String>>;

/// Read and check the lines' file (next to the entity's own file) once, before the load.
/// Held in memory: one entry per record that has lines.
fn read_lines(
    l: &super::rules::LineRules,
    next_to: &std::path::Path,
    refs: &Refs,
) -> Result<LinesByParent> {
    let path = next_to.with_file_name(&l.file);
    let mut src = CsvSource::open(&path, &l.rules.columns, l.rules.dialect)
        .with_context(|| format!("the {} lines of {}", l.field, l.rules.name))?;
    let mut state = RunState::default();
    let mut out = LinesByParent::new();
    while let Some(raw) = src
        .next_row()
        .with_context(|| format!("{}: reading", path.display()))?
    {
        let fields = match src.decode(&raw) {
            Decoded::Fields(f) => f,
            Decoded::Malformed(m) | Decoded::Encoding(_, m) => {
                anyhow::bail!("{} line {}: {m}", path.display(), raw.line)
            }
        };
        let parent = fields
            .get(l.parent)
            .map(|p| p.trim().to_string())
            .unwrap_or_default();
        let verdict = l
            .rules
            .process_with(fields, src.nulls(), &mut state, refs, &HashMap::new());
        let entry = out.entry(parent).or_insert_with(|| Ok(Vec::new()));
        match verdict {
            Verdict::OutOfScope => {}
            Verdict::Valid { row, .. } => {
                if let Ok(v) = entry {
                    v.push(row);
                }
            }
            Verdict::Rejected { issues, .. } => {
                if entry.is_ok() {
                    let why: Vec<String> = issues
                        .iter()
                        .map(|i| format!("{} {}", i.field, i.message))
                        .collect();
                    *entry = Err(format!(
                        "line {} of {}: {}",
                        raw.line,
                        l.file,
                        why.join("; ")
                    ));
                }
            }
        }
    }
    Ok(out)
}

/// A row the database refused: line, original record, cleansed fields, message.
type Refused = (u64, ByteRecord, Vec<String>, String);

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
    fn writing(&self) -> impl std::future::Future<Output = Result<()>> + Send {
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
    let (tx, mut rx) = mpsc::channel::<Vec<Item>>(2);
    let rules = job.rules.clone();
    let file = job.file.clone();
    let reject_path = job.reject_path.clone();
    let batch_size = job.batch_size.max(1);
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

    // Rule work and reject writing happen off the async runtime.
    let reader = tokio::task::spawn_blocking(move || -> Result<(Tally, RejectWriter)> {
        let mut src = CsvSource::open(&file, &rules.columns, rules.dialect)?;
        let mut rejects = RejectWriter::create(&reject_path, &src.header)?;
        let mut t = Tally {
            valid_sum: vec![Sums::new(); sum_idx.len()],
            rejected_sum: vec![Sums::new(); sum_idx.len()],
            fp: vec![Fingerprint::default(); fp_idx.len()],
            keys: keep_keys.then(|| key_memory.set()),
            scope_keys: keep_scope_keys.then(|| ScopeKeys::new(&key_memory)),
            ..Default::default()
        };
        let mut state = RunState::with_keys(key_memory);
        let lines = match &rules.lines {
            Some(l) => Some(read_lines(l, &file, &refs)?),
            None => None,
        };
        let mut batch = Vec::with_capacity(batch_size);
        while let Some(raw) = src.next_row().with_context(|| {
            format!(
                "{}: reading after line {}",
                file.display(),
                t.counts.in_file + 1
            )
        })? {
            t.counts.in_file += 1;
            // The key as read (trimmed, before cleanse), for entities that scope by this one.
            let mut scope_key = None;
            let verdict = match src.decode(&raw) {
                Decoded::Fields(f) => {
                    if t.scope_keys.is_some() {
                        scope_key = f.get(rules.key_index()).map(|k| k.trim().to_string());
                    }
                    rules.process_with(f, src.nulls(), &mut state, &refs, &scope_refs)
                }
                Decoded::Malformed(m) => Verdict::Rejected {
                    fields: vec![],
                    issues: vec![RowIssue {
                        rule: "malformed".into(),
                        field: "(row)".into(),
                        message: m,
                    }],
                },
                Decoded::Encoding(field, message) => Verdict::Rejected {
                    fields: vec![],
                    issues: vec![RowIssue {
                        rule: "encoding".into(),
                        field,
                        message,
                    }],
                },
            };
            // A record whose lines the rules refused is refused with them.
            let verdict = match (verdict, &lines, &rules.lines) {
                (Verdict::Valid { fields, row }, Some(by), Some(l)) => {
                    match by.get(&fields[rules.key_index()]) {
                        Some(Err(why)) => Verdict::Rejected {
                            fields,
                            issues: vec![RowIssue {
                                rule: "lines".into(),
                                field: l.field.clone(),
                                message: why.clone(),
                            }],
                        },
                        _ => Verdict::Valid { fields, row },
                    }
                }
                (v, ..) => v,
            };
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
                    for (k, &i) in sum_idx.iter().enumerate() {
                        add_to(&mut t.rejected_sum[k], &fields, i, 1);
                    }
                    rejects.write(&raw.raw, raw.line, &issues)?;
                }
                Verdict::Valid { fields, row } => {
                    t.counts.in_scope += 1;
                    t.counts.valid += 1;
                    for (k, &i) in sum_idx.iter().enumerate() {
                        add_to(&mut t.valid_sum[k], &fields, i, 1);
                    }
                    for (k, idx) in fp_idx.iter().enumerate() {
                        let parts: Vec<&str> = idx.iter().map(|&i| fields[i].as_str()).collect();
                        t.fp[k].add(&parts);
                    }
                    if let Some(keys) = t.keys.as_mut() {
                        keys.insert(&fields[rules.key_index()]);
                    }
                    if raw.line <= skip_until {
                        // Committed before the interruption: not written again.
                        if let Some(msg) = refused_before.remove(&raw.line) {
                            t.refused_before.push((raw.line, raw.raw, fields, msg));
                        }
                    } else {
                        if batch.len() >= batch_size && !continues_record(&row, key_col) {
                            keys_sound(&state, &t, &refs, &scope_refs)?;
                            live_r.publish(&t.counts);
                            if tx
                                .blocking_send(std::mem::replace(
                                    &mut batch,
                                    Vec::with_capacity(batch_size),
                                ))
                                .is_err()
                            {
                                anyhow::bail!("load stopped");
                            }
                        }
                        // The record's lines: the first on its own row, the others as
                        // continuation rows (every other cell empty), as Odoo exports them.
                        let mut rows = vec![row];
                        if let (Some(by), Some(l)) = (&lines, &rules.lines)
                            && let Some(Ok(ls)) = by.get(&fields[rules.key_index()])
                        {
                            let at = rows[0].len() - l.rules.target_columns.len();
                            for (j, cells) in ls.iter().enumerate() {
                                if j > 0 {
                                    rows.push(vec![SqlValue::Null; rows[0].len()]);
                                }
                                rows[j][at..].clone_from_slice(cells);
                            }
                        }
                        for (j, row) in rows.into_iter().enumerate() {
                            batch.push(Item {
                                line: raw.line,
                                raw: if j == 0 {
                                    raw.raw.clone()
                                } else {
                                    ByteRecord::new()
                                },
                                row,
                                fields: if j == 0 { fields.clone() } else { Vec::new() },
                                continuation: j > 0,
                            });
                        }
                    }
                }
            }
            if t.counts.in_file.is_multiple_of(4096) {
                live_r.publish(&t.counts);
            }
        }
        live_r.publish(&t.counts);
        keys_sound(&state, &t, &refs, &scope_refs)?;
        if !batch.is_empty() && tx.blocking_send(batch).is_err() {
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
        Ok((t, rejects))
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
    let mut write_err = None;
    while let Some(items) = rx.recv().await {
        match bisect_rows_retrying(target, &job.table, &items, &job.retry, on_batch).await {
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
                    db_rejects.push((it.line, it.raw.clone(), it.fields.clone(), msg));
                }
                batch_no += 1;
                let last_line = items.last().map(|i| i.line).unwrap_or(0);
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
    drop(rx);
    let joined = reader.await.context("pipeline thread")?;
    if let Some(e) = write_err {
        return Err(e)
            .with_context(|| format!("loading {} into {}", job.rules.name, job.table.table));
    }
    let (mut t, mut rejects) = joined?;
    let mut refused = std::mem::take(&mut t.refused_before);
    refused.append(&mut db_rejects);
    // Rows the database refused move from valid to rejected, with the database's reason.
    for (line, raw, fields, msg) in &refused {
        rejects.write(
            raw,
            *line,
            &[RowIssue {
                rule: "database".into(),
                field: "(row)".into(),
                message: msg.clone(),
            }],
        )?;
        t.counts.valid -= 1;
        t.counts.rejected += 1;
        // Under the row's own currency on both sides.
        for (k, &i) in sum_idx_db.iter().enumerate() {
            add_to(&mut t.valid_sum[k], fields, i, -1);
            add_to(&mut t.rejected_sum[k], fields, i, 1);
        }
        for (k, idx) in fp_idx_db.iter().enumerate() {
            let parts: Vec<&str> = idx.iter().map(|&i| fields[i].as_str()).collect();
            t.fp[k].remove(&parts);
        }
        // Not in the target, so not a valid reference for the entities that follow.
        if let Some(keys) = t.keys.as_mut() {
            keys.remove(&fields[job.rules.key_index()]);
        }
    }
    if let Some(keys) = &t.keys {
        keys.failure()
            .map_err(|e| anyhow::anyhow!("keeping the keys of {}: {e}", job.rules.name))?;
    }
    rejects.finish()?;
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
    bisect_rows_retrying(target, spec, rows, &RetryPolicy::NONE, &NoObserver).await
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
///   reports the rows it was given, so the replay counts them in full.
/// - `Fatal`: stop.
///
/// A batch larger than the target's `max_batch_rows` is written in parts of that size.
pub async fn bisect_rows_retrying<R: AsRef<[SqlValue]>, O: BatchObserver + Sync>(
    target: &dyn Target,
    spec: &TableSpec,
    rows: &[R],
    policy: &RetryPolicy,
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
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let mut lo = 0;
    while lo < rows.len() {
        let mut hi = (lo + part).min(rows.len());
        while hi < rows.len() && continues_record(rows[hi].as_ref(), key_col) {
            hi += 1;
        }
        stack.push((lo, hi));
        lo = hi;
    }
    stack.reverse();
    let mut failures = 0u32;
    while let Some((lo, hi)) = stack.pop() {
        let batch: Vec<&[SqlValue]> = rows[lo..hi].iter().map(|r| r.as_ref()).collect();
        observer.writing().await?;
        let res = target.write_batch(spec, &batch).await;
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
                        stack.push((mid, hi));
                        stack.push((lo, mid));
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
                stack.push((lo, hi));
            }
        }
    }
    bad.sort_by_key(|(i, _)| *i);
    Ok((loaded, bad))
}

/// For callers that do not retry.
struct NoObserver;

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
    use crate::target::memory::{self, Fault, MemoryTarget};
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
        let (loaded, bad) = bisect_rows_retrying(&t, &spec(), &rows(10, &[]), &QUICK, &seen)
            .await
            .unwrap();
        assert_eq!((loaded, bad.len()), (10, 0));
        let attempts: Vec<u32> = seen.0.lock().unwrap().iter().map(|r| r.attempt).collect();
        assert_eq!(attempts, [1, 2]);
        assert!(seen.0.lock().unwrap()[0].error.contains("injected"));
        assert_eq!(t.count("t").await.unwrap(), 10);
    }

    #[tokio::test]
    async fn retries_end_after_the_policy_and_fatal_faults_at_once() {
        let t = twin(memory::capabilities());
        t.fail_next(4, Fault::Transient);
        let err = bisect_rows_retrying(&t, &spec(), &rows(4, &[]), &QUICK, &Seen::default())
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
            bisect_rows_retrying(&t, &spec(), &rows(4, &[]), &QUICK, &seen)
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
    impl Target for Recorder {
        fn name(&self) -> String {
            "recorder".into()
        }
        fn capabilities(&self) -> Capabilities {
            memory::capabilities()
        }
        async fn prepare(&self, _: &crate::target::Prepare) -> Result<Option<String>, TargetError> {
            Ok(None)
        }
        async fn write_batch(
            &self,
            _: &TableSpec,
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
        async fn count(&self, _: &str) -> Result<u64, TargetError> {
            Ok(0)
        }
        async fn sums(
            &self,
            _: &str,
            _: &str,
            _: Option<&str>,
        ) -> Result<BTreeMap<String, Decimal>, TargetError> {
            Ok(BTreeMap::new())
        }
        async fn close(&self) {}
    }

    /// An entity whose rows with an empty key continue the record above (one2many rows).
    fn invoices_job(dir: &std::path::Path, csv: &str, batch_size: usize) -> EntityJob {
        #[derive(serde::Deserialize)]
        struct W {
            e: crate::runbook::format::Entity,
        }
        let e = toml::from_str::<W>(
            "[e]\nsource = { file = 'inv.csv' }\ncolumns = ['k', 'v']\nkey = 'k'\n\
             target = { table = 't', key = 'k' }\nmap = { k = 'k', v = 'v' }",
        )
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
        }
    }

    #[tokio::test]
    async fn batches_are_cut_between_records_never_inside_one() {
        // Invoices A (3 lines), B (2), C (1), D (4): continuation rows have an empty key.
        let csv = "k,v\nA,1\n,2\n,3\nB,1\n,2\nC,1\nD,1\n,2\n,3\n,4\n";
        let keys = ["A", "", "", "B", "", "C", "D", "", "", ""];
        for batch_size in 1..=5 {
            let dir = tempfile::tempdir().unwrap();
            let rec = Recorder(Mutex::new(Vec::new()));
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
            let batches = rec.0.into_inner().unwrap();
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
        let rec = Recorder(Mutex::new(Vec::new()));
        let (loaded, bad) = bisect_rows(&rec, &spec(), &rows).await.unwrap();
        assert_eq!(loaded, 3);
        assert_eq!(bad.iter().map(|b| b.0).collect::<Vec<_>>(), [2, 3, 4]);
        for b in rec.0.into_inner().unwrap() {
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
