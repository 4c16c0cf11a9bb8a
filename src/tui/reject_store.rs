//! The reject files on disk, for the reject table. Each file is indexed once, off the UI
//! thread: the byte offset of every record, and per record which rules and fields it names
//! (as ids into a small table of distinct cells). A query (entity, rule, field, search)
//! yields the matching record numbers; drawing reads only the window of rows around the
//! selection, by offset. With 1,000,000 rejects that is about 16 MB of index, not the rows.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use csv::{ByteRecord, Position};

use tokio::sync::mpsc;

use crate::app::Action;
use crate::app::rejects::{
    RejectAction, RejectColumns, RejectEffect, RejectFile, RejectQuery, RejectRecord,
    WindowRequest, split_reasons,
};

/// Distinct joined cells (`"required | date"`) and the parts of each.
#[derive(Debug, Default)]
struct Cells {
    ids: HashMap<Vec<u8>, u32>,
    parts: Vec<Vec<String>>,
}

impl Cells {
    fn id(&mut self, raw: &[u8]) -> u32 {
        if let Some(&id) = self.ids.get(raw) {
            return id;
        }
        let id = self.parts.len() as u32;
        let text = String::from_utf8_lossy(raw);
        self.parts
            .push(split_reasons(&text).into_iter().map(String::from).collect());
        self.ids.insert(raw.to_vec(), id);
        id
    }

    /// Distinct parts, in order of first appearance.
    fn distinct(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in self.parts.iter().flatten() {
            if !p.is_empty() && !out.contains(p) {
                out.push(p.clone());
            }
        }
        out
    }

    /// For each cell id, whether it names `want` (all true without a filter).
    fn hits(&self, want: Option<&str>) -> Vec<bool> {
        self.parts
            .iter()
            .map(|p| want.is_none_or(|w| p.iter().any(|x| x == w)))
            .collect()
    }
}

/// One indexed reject file.
#[derive(Debug)]
pub struct RejectIndex {
    pub file: RejectFile,
    path: PathBuf,
    offsets: Vec<u64>,
    rule_of: Vec<u32>,
    field_of: Vec<u32>,
    rules: Cells,
    fields: Cells,
}

fn reader(path: &Path) -> Result<csv::Reader<File>> {
    let f = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    Ok(csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(f))
}

/// Index a reject file: one pass, keeping offsets and rule/field ids, not the rows.
pub fn index_file(entity: &str, path: &Path) -> Result<RejectIndex> {
    let mut rdr = reader(path)?;
    let mut rec = ByteRecord::new();
    if !rdr.read_byte_record(&mut rec)? {
        bail!("{} is empty (no header)", path.display());
    }
    let header: Vec<String> = rec
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    let columns = RejectColumns::from_header(&header);
    let (mut rules, mut fields) = (Cells::default(), Cells::default());
    let (mut offsets, mut rule_of, mut field_of) = (Vec::new(), Vec::new(), Vec::new());
    loop {
        let at = rdr.position().byte();
        match rdr.read_byte_record(&mut rec) {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) if e.is_io_error() => return Err(e.into()),
            // A malformed record: the file stays the record; this is only a view of it.
            Err(_) => continue,
        }
        let cell = |c: Option<usize>| c.and_then(|c| rec.get(c)).unwrap_or(b"");
        offsets.push(at);
        rule_of.push(rules.id(cell(columns.rule)));
        field_of.push(fields.id(cell(columns.field)));
    }
    Ok(RejectIndex {
        file: RejectFile {
            entity: entity.to_string(),
            path: path.display().to_string(),
            header,
            columns,
            rows: offsets.len(),
            rules: rules.distinct(),
            fields: fields.distinct(),
        },
        path: path.to_path_buf(),
        offsets,
        rule_of,
        field_of,
        rules,
        fields,
    })
}

impl RejectIndex {
    /// Records `rows` (ascending record numbers), read by offset: one seek where they are
    /// not next to each other.
    pub fn read(&self, rows: impl IntoIterator<Item = u32>) -> Result<Vec<Vec<String>>> {
        let mut rdr = reader(&self.path)?;
        let mut rec = ByteRecord::new();
        let mut out = Vec::new();
        for row in rows {
            let at = *self
                .offsets
                .get(row as usize)
                .with_context(|| format!("no record {row} in {}", self.path.display()))?;
            if rdr.position().byte() != at {
                let mut pos = Position::new();
                pos.set_byte(at);
                rdr.seek(pos)?;
            }
            rdr.read_byte_record(&mut rec)?;
            out.push(
                rec.iter()
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect(),
            );
        }
        Ok(out)
    }
}

/// The record numbers of one query, file by file.
#[derive(Debug, Default)]
pub struct Matches {
    pub generation: u64,
    /// `(file, record numbers)` in the table's order.
    parts: Vec<(Arc<RejectIndex>, Vec<u32>)>,
}

impl Matches {
    pub fn total(&self) -> usize {
        self.parts.iter().map(|(_, r)| r.len()).sum()
    }
}

/// How often a long scan looks whether a newer query made it pointless.
const CANCEL_EVERY: usize = 4096;

/// The records of `files` that match `q`. Rule and field come from the index; a search
/// reads each candidate file once, front to back. Returns `None` when `latest` moved past
/// `generation` meanwhile (a newer query is under way).
pub fn run_query(
    files: &[Arc<RejectIndex>],
    generation: u64,
    q: &RejectQuery,
    latest: &AtomicU64,
) -> Result<Option<Matches>> {
    let mut parts = Vec::new();
    for f in files.iter().filter(|f| q.wants_entity(&f.file.entity)) {
        let rule_hits = f.rules.hits(q.rule.as_deref());
        let field_hits = f.fields.hits(q.field.as_deref());
        let candidate =
            |i: usize| rule_hits[f.rule_of[i] as usize] && field_hits[f.field_of[i] as usize];
        let rows: Vec<u32> = match q.needle() {
            None => (0..f.offsets.len())
                .filter(|&i| candidate(i))
                .map(|i| i as u32)
                .collect(),
            Some(needle) => {
                let mut rdr = reader(&f.path)?;
                let mut rec = ByteRecord::new();
                rdr.read_byte_record(&mut rec)?; // header
                let mut rows = Vec::new();
                let mut i = 0usize;
                while i < f.offsets.len() {
                    if i.is_multiple_of(CANCEL_EVERY)
                        && latest.load(Ordering::Relaxed) != generation
                    {
                        return Ok(None);
                    }
                    let at = rdr.position().byte();
                    match rdr.read_byte_record(&mut rec) {
                        Ok(true) => {}
                        Ok(false) => break,
                        Err(e) if e.is_io_error() => return Err(e.into()),
                        Err(_) => continue,
                    }
                    if at != f.offsets[i] {
                        // Skipped malformed record: it was not indexed either.
                        continue;
                    }
                    if candidate(i)
                        && RejectQuery::cell_hits(
                            &needle,
                            rec.iter().map(|c| std::str::from_utf8(c).unwrap_or("")),
                        )
                    {
                        rows.push(i as u32);
                    }
                    i += 1;
                }
                rows
            }
        };
        parts.push((f.clone(), rows));
    }
    Ok(Some(Matches { generation, parts }))
}

/// The reject files indexed so far and the current query's matches.
#[derive(Debug, Default)]
pub struct RejectStore {
    files: Vec<Arc<RejectIndex>>,
    matches: Option<Arc<Matches>>,
    /// The newest query asked for; older scans stop early.
    pub latest: Arc<AtomicU64>,
}

impl RejectStore {
    /// Add (or replace) an entity's index, in arrival order like the app's table.
    pub fn add(&mut self, index: Arc<RejectIndex>) {
        match self
            .files
            .iter_mut()
            .find(|f| f.file.entity == index.file.entity)
        {
            Some(f) => *f = index,
            None => self.files.push(index),
        }
    }

    pub fn files(&self) -> Vec<Arc<RejectIndex>> {
        self.files.clone()
    }

    pub fn set_matches(&mut self, m: Arc<Matches>) {
        self.matches = Some(m);
    }

    pub fn matches(&self, generation: u64) -> Option<Arc<Matches>> {
        self.matches.clone().filter(|m| m.generation == generation)
    }

    /// The rows of a window, read by offset (a few hundred at most). Rows of another
    /// query's generation, or that cannot be read, come back as none.
    pub fn fetch(&self, req: &WindowRequest) -> Result<Vec<RejectRecord>> {
        let Some(m) = self.matches(req.generation) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::with_capacity(req.len);
        let (mut skip, mut want) = (req.start, req.len);
        for (f, rows) in &m.parts {
            if want == 0 {
                break;
            }
            if skip >= rows.len() {
                skip -= rows.len();
                continue;
            }
            let take = &rows[skip..(skip + want).min(rows.len())];
            skip = 0;
            want -= take.len();
            for cells in f.read(take.iter().copied())? {
                out.push(RejectRecord {
                    entity: f.file.entity.clone(),
                    cells,
                });
            }
        }
        Ok(out)
    }
}

/// Write the rows of `m` to CSV next to each entity's reject file, with that file's
/// header: one file per entity that has matching rows. Returns the paths and rows written.
pub fn export(m: &Matches, stamp: &str) -> Result<(Vec<String>, usize)> {
    let mut paths = Vec::new();
    let mut total = 0;
    for (f, rows) in m.parts.iter().filter(|(_, r)| !r.is_empty()) {
        let dir = f.path.parent().unwrap_or(Path::new("."));
        let out = dir.join(format!("{}.rejects.export-{stamp}.csv", f.file.entity));
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_path(&out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        w.write_record(&f.file.header)?;
        for chunk in rows.chunks(CANCEL_EVERY) {
            for rec in f.read(chunk.iter().copied())? {
                w.write_record(&rec)?;
            }
        }
        w.flush()
            .with_context(|| format!("cannot write {}", out.display()))?;
        total += rows.len();
        paths.push(out.display().to_string());
    }
    Ok((paths, total))
}

/// What off-thread reject work sends back to the loop.
#[derive(Debug)]
pub enum StoreMsg {
    Indexed(Arc<RejectIndex>),
    Matched(Arc<Matches>),
    Action(Box<Action>),
}

fn tell(a: RejectAction) -> StoreMsg {
    StoreMsg::Action(Box::new(Action::Rejects(a)))
}

pub type StoreTx = mpsc::UnboundedSender<StoreMsg>;

impl RejectStore {
    /// Take in what a job sent back; returns what the app must be told.
    pub fn receive(&mut self, msg: StoreMsg) -> Action {
        match msg {
            StoreMsg::Indexed(idx) => {
                let file = idx.file.clone();
                self.add(idx);
                Action::Rejects(RejectAction::Indexed(file))
            }
            StoreMsg::Matched(m) => {
                let (generation, matched) = (m.generation, m.total());
                self.set_matches(m);
                Action::Rejects(RejectAction::Counted {
                    generation,
                    matched,
                })
            }
            StoreMsg::Action(a) => *a,
        }
    }

    /// Carry out a reject-table effect off the UI thread.
    pub fn spawn(&self, effect: RejectEffect, tx: StoreTx) {
        let files = self.files();
        match effect {
            RejectEffect::Query { generation, query } => {
                self.latest.store(generation, Ordering::Relaxed);
                let latest = self.latest.clone();
                tokio::task::spawn_blocking(move || {
                    let msg = match run_query(&files, generation, &query, &latest) {
                        Ok(Some(m)) => StoreMsg::Matched(Arc::new(m)),
                        Ok(None) => return, // a newer query took over
                        Err(e) => tell(RejectAction::QueryFailed {
                            generation,
                            error: format!("{e:#}"),
                        }),
                    };
                    let _ = tx.send(msg);
                });
            }
            RejectEffect::Export { generation, query } => {
                let held = self.matches(generation);
                let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
                tokio::task::spawn_blocking(move || {
                    let result = match held {
                        Some(m) => export(&m, &stamp),
                        None => run_query(&files, generation, &query, &AtomicU64::new(generation))
                            .and_then(|m| export(&m.unwrap_or_default(), &stamp)),
                    };
                    let a = match result {
                        Ok((paths, rows)) => RejectAction::Exported { paths, rows },
                        Err(e) => RejectAction::ExportFailed {
                            error: format!("{e:#}"),
                        },
                    };
                    let _ = tx.send(tell(a));
                });
            }
        }
    }
}

/// Index a reject file off the UI thread.
pub fn spawn_index(entity: String, path: String, tx: StoreTx) {
    tokio::task::spawn_blocking(move || {
        let msg = match index_file(&entity, Path::new(&path)) {
            Ok(idx) => StoreMsg::Indexed(Arc::new(idx)),
            Err(e) => tell(RejectAction::IndexFailed {
                entity,
                error: format!("{path}: {e:#}"),
            }),
        };
        let _ = tx.send(msg);
    });
}

#[cfg(test)]
mod tests;
