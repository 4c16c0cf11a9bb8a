//! An entity's one2many lines from their own file (`[entities.X.lines]`): indexed once,
//! then read back record by record as the entity's own file is read, so the lines are
//! never held in memory as rows. Every line either travels with its record or goes to the
//! lines' reject file with the reason (`<entity>.lines.rejects.csv`):
//! `read = attached + rejected`.
//!
//! The index holds, per record key, a chain of line positions (byte offset and line
//! number): about 110 bytes per record with one line, 130 with four (measured by the
//! ignored test `index_memory`). A file grouped in
//! the entity file's order is read straight through: positions are only sought when the
//! lines are out of order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result};

use super::rejects::RejectWriter;
use super::rules::{Compiled, LineRules, Refs, RowIssue, RunState, SqlValue, Verdict};
use crate::journal::events::LineCounts;
use crate::sources::csv::{CsvSource, Decoded};

/// Where one line starts in the lines' file, and the next line of the same record.
#[derive(Clone, Copy)]
struct Entry {
    pos: (u64, u64),
    next: u32,
}

const END: u32 = u32::MAX;

/// A record's lines in the file, for a reject after the load refused the record.
pub type LineSpans = Vec<(u64, u64)>;

/// A record's lines, ready to travel with it.
pub struct Attached {
    pub rows: Vec<Vec<SqlValue>>,
    pub spans: LineSpans,
}

pub struct LineSet {
    rules: Arc<Compiled>,
    path: PathBuf,
    /// The entity's own file name, for "no record … in FILE".
    entity_file: String,
    /// Record key → (first, last) entry of its chain.
    heads: HashMap<Box<str>, (u32, u32)>,
    entries: Vec<Entry>,
    /// Why records that have lines were not loaded, by key.
    dropped: HashMap<Box<str>, Box<str>>,
    /// Reads the lines back where the index says they are.
    src: CsvSource,
    state: RunState,
    rejects: RejectWriter,
    counts: LineCounts,
}

/// The lines' reject file of `entity`, beside the entity's own reject file:
/// `<entity>.lines.rejects.csv`.
pub fn reject_path(entity_rejects: &Path, entity: &str) -> std::path::PathBuf {
    entity_rejects.with_file_name(format!("{entity}.lines.rejects.csv"))
}

impl LineSet {
    fn lines(&self) -> &LineRules {
        self.rules.lines.as_deref().expect("an entity with lines")
    }

    /// Index the lines' file next to `entity_file`; lines whose record key cannot be read
    /// go to the reject file at once.
    pub fn open(
        rules: Arc<Compiled>,
        entity_file: &Path,
        entity_rejects: &Path,
    ) -> Result<LineSet> {
        let l = rules.lines.as_deref().context("an entity without lines")?;
        let path = entity_file.with_file_name(&l.file);
        let what = || format!("the {} lines of {}", l.field, rules.name);
        let mut scan =
            CsvSource::open(&path, &l.rules.columns, l.rules.dialect).with_context(what)?;
        let reject_path = reject_path(entity_rejects, &rules.name);
        let mut rejects = RejectWriter::create(&reject_path, scan.header())?;
        let parent_col = scan.index()[l.parent];
        let parent_name = l.rules.columns[l.parent].clone();
        let mut heads: HashMap<Box<str>, (u32, u32)> = HashMap::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut read = 0u64;
        loop {
            let pos = scan.position();
            let Some(raw) = scan
                .next_row()
                .with_context(|| format!("{}: reading", path.display()))?
            else {
                break;
            };
            read += 1;
            // The record key as written (trimmed), even on a damaged line: its record is
            // refused for it when it comes.
            let key = raw
                .raw
                .get(parent_col)
                .map(|b| std::str::from_utf8(b).map(str::trim));
            let key = match key {
                Some(Ok(k)) if !k.is_empty() && !k.contains('\0') => k,
                other => {
                    let message = match other {
                        None => "missing: the line is too short to name its record".to_string(),
                        Some(Ok(_)) => format!("is empty: the line names no {} record", rules.name),
                        Some(Err(_)) => "is not UTF-8 text: its record cannot be told".to_string(),
                    };
                    let issue = RowIssue {
                        rule: "parent".into(),
                        field: parent_name.clone(),
                        message,
                    };
                    rejects.write(&raw.raw, raw.line, &[issue])?;
                    continue;
                }
            };
            let at = u32::try_from(entries.len())
                .ok()
                .filter(|&n| n != END)
                .context("more than 4 billion lines")?;
            entries.push(Entry { pos, next: END });
            match heads.get_mut(key) {
                Some((_, tail)) => {
                    entries[*tail as usize].next = at;
                    *tail = at;
                }
                None => {
                    heads.insert(key.into(), (at, at));
                }
            }
        }
        heads.shrink_to_fit();
        entries.shrink_to_fit();
        let src = CsvSource::open_buffered(&path, &l.rules.columns, l.rules.dialect, 8 << 10)
            .with_context(what)?;
        let entity_file = entity_file
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        Ok(LineSet {
            rules,
            path,
            entity_file,
            heads,
            entries,
            dropped: HashMap::new(),
            src,
            state: RunState::default(),
            rejects,
            counts: LineCounts {
                read,
                ..Default::default()
            },
        })
    }

    /// The positions of record `key`'s lines, taken out of the index (each line is
    /// attached or rejected once).
    fn take(&mut self, key: &str) -> LineSpans {
        let Some((mut at, _)) = self.heads.remove(key) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        while at != END {
            let e = self.entries[at as usize];
            out.push(e.pos);
            at = e.next;
        }
        out
    }

    /// Read the line at `pos` again: its record, and its fields or why they cannot be read.
    fn read_at(&mut self, pos: (u64, u64)) -> Result<(crate::sources::csv::RawRow, Decoded)> {
        self.src.seek(pos)?;
        let raw = self
            .src
            .next_row()?
            .with_context(|| format!("{}: a line indexed before is gone", self.path.display()))?;
        let decoded = self.src.decode(&raw);
        Ok((raw, decoded))
    }

    fn reject_all(&mut self, spans: &[(u64, u64)], issue: &RowIssue) -> Result<()> {
        for &pos in spans {
            let (raw, _) = self.read_at(pos)?;
            self.rejects
                .write(&raw.raw, raw.line, std::slice::from_ref(issue))?;
        }
        Ok(())
    }

    /// The lines of a valid record, through the lines' rules. `Err(reason)` when one of
    /// them is damaged or refused: the record is refused for it, and all of its lines go
    /// to the reject file (the bad ones with their own reasons).
    pub fn attach(&mut self, key: &str, refs: &Refs) -> Result<Result<Attached, String>> {
        let spans = self.take(key);
        let mut rows = Vec::with_capacity(spans.len());
        // Lines read so far, kept raw only until the record is known to be good.
        let mut bad: Option<(u64, String)> = None;
        let mut seen = Vec::with_capacity(spans.len());
        let rules = self.rules.clone();
        let l = rules.lines.as_deref().expect("lines");
        for &pos in &spans {
            let (raw, decoded) = self.read_at(pos)?;
            let issues = match decoded {
                Decoded::Fields(f) => {
                    let nulls = self.src.nulls().to_vec();
                    match l
                        .rules
                        .process_with(f, &nulls, &mut self.state, refs, &HashMap::new())
                    {
                        Verdict::Valid { row, .. } => {
                            rows.push(row);
                            None
                        }
                        Verdict::OutOfScope => None,
                        Verdict::Rejected { issues, .. } => Some(issues),
                    }
                }
                Decoded::Malformed(m) => Some(vec![RowIssue {
                    rule: "malformed".into(),
                    field: "(row)".into(),
                    message: m,
                }]),
                Decoded::Encoding(field, message) => Some(vec![RowIssue {
                    rule: "encoding".into(),
                    field,
                    message,
                }]),
            };
            if let Some(issues) = issues {
                let why: Vec<String> = issues
                    .iter()
                    .map(|i| format!("{} {}", i.field, i.message))
                    .collect();
                if bad.is_none() {
                    bad = Some((
                        raw.line,
                        format!("line {} of {}: {}", raw.line, l.file, why.join("; ")),
                    ));
                }
                self.rejects.write(&raw.raw, raw.line, &issues)?;
            } else {
                seen.push((pos, raw.line));
            }
        }
        let Some((bad_line, reason)) = bad else {
            self.counts.attached += rows.len() as u64;
            return Ok(Ok(Attached { rows, spans }));
        };
        // The record's good lines go with it.
        let issue = RowIssue {
            rule: "parent".into(),
            field: l.rules.columns[l.parent].clone(),
            message: format!(
                "its {} record {key} was rejected for another of its lines (line {bad_line})",
                self.rules.name
            ),
        };
        let good: Vec<(u64, u64)> = seen.into_iter().map(|(p, _)| p).collect();
        self.reject_all(&good, &issue)?;
        Ok(Err(reason))
    }

    /// Record `key` will not be loaded (`why`: "was rejected: …", "is out of scope"):
    /// its lines go to the reject file at the end, unless a later record of that key
    /// (a repeated key) takes them. Only keys that have lines are kept.
    pub fn drop_record(&mut self, key: &str, why: &str) {
        if self.heads.contains_key(key) && !self.dropped.contains_key(key) {
            self.dropped.insert(key.into(), why.into());
        }
    }

    /// The target refused record `key` after its lines were attached.
    pub fn refused(&mut self, key: &str, spans: &[(u64, u64)], why: &str) -> Result<()> {
        self.counts.attached -= spans.len() as u64;
        let issue = self.parent_issue(format!(
            "its {} record {key} was refused by the target: {why}",
            self.rules.name
        ));
        self.reject_all(spans, &issue)
    }

    fn parent_issue(&self, message: String) -> RowIssue {
        let l = self.lines();
        RowIssue {
            rule: "parent".into(),
            field: l.rules.columns[l.parent].clone(),
            message,
        }
    }

    /// Lines whose record was not loaded or never came, in file order; the reject file
    /// closed; the counts.
    pub fn finish(mut self) -> Result<LineCounts> {
        let mut left: Vec<((u64, u64), Box<str>)> = Vec::new();
        let keys: Vec<Box<str>> = self.heads.keys().cloned().collect();
        for k in keys {
            for pos in self.take(&k) {
                left.push((pos, k.clone()));
            }
        }
        left.sort_unstable();
        for (pos, key) in left {
            let message = match self.dropped.get(&key) {
                Some(why) => format!("its {} record {key} {why}", self.rules.name),
                None => format!(
                    "no {} record {key} in {}",
                    self.rules.name, self.entity_file
                ),
            };
            let issue = self.parent_issue(message);
            self.reject_all(&[pos], &issue)?;
        }
        self.counts.rejected = self.rejects.rows;
        self.rejects.finish()?;
        Ok(self.counts)
    }
}

/// Settle a record's verdict with its lines: a valid record takes its lines (or is
/// refused for one of them); a rejected or out-of-scope one leaves them to the reject file.
/// `key` is the record's key as read, for a record without cleansed fields.
pub fn settle(
    ls: &mut LineSet,
    rules: &Compiled,
    verdict: Verdict,
    key: Option<&str>,
    refs: &Refs,
) -> Result<(Verdict, Option<Attached>)> {
    Ok(match verdict {
        Verdict::Valid { fields, row } => match ls.attach(&fields[rules.key_index()], refs)? {
            Ok(a) => (Verdict::Valid { fields, row }, Some(a)),
            Err(why) => {
                let field = ls.lines().field.clone();
                let issues = vec![RowIssue {
                    rule: "lines".into(),
                    field,
                    message: why,
                }];
                (Verdict::Rejected { fields, issues }, None)
            }
        },
        Verdict::Rejected { fields, issues } => {
            let k = fields.get(rules.key_index()).map(String::as_str).or(key);
            if let Some(k) = k.filter(|k| !k.is_empty()) {
                let why: Vec<String> = issues
                    .iter()
                    .map(|i| format!("{} {}", i.field, i.message))
                    .collect();
                ls.drop_record(k, &format!("was rejected: {}", why.join("; ")));
            }
            (Verdict::Rejected { fields, issues }, None)
        }
        Verdict::OutOfScope => {
            if let Some(k) = key {
                ls.drop_record(k, "is out of scope");
            }
            (Verdict::OutOfScope, None)
        }
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use tokio::sync::watch;

    use super::*;
    use crate::engine::pipeline::{EntityJob, NoObserver, run_entity};
    use crate::engine::retry::RetryPolicy;
    use crate::journal::events::Phase;
    use crate::target::memory::{BatchWriter, WriteOnly};
    use crate::target::{TableSpec, TargetError, WriteOutcome};

    /// Keeps every write; refuses a write holding a row whose `v` cell is `bad`.
    struct Recorder {
        v: usize,
        rows: Mutex<Vec<Vec<SqlValue>>>,
    }

    #[async_trait::async_trait]
    impl BatchWriter for Recorder {
        async fn write(&self, rows: &[&[SqlValue]]) -> Result<WriteOutcome, TargetError> {
            if rows
                .iter()
                .any(|r| r[self.v] == SqlValue::Text("bad".into()))
            {
                return Err(TargetError::Rows("v is bad".into()));
            }
            self.rows
                .lock()
                .unwrap()
                .extend(rows.iter().map(|r| r.to_vec()));
            Ok(WriteOutcome {
                loaded: rows.len() as u64,
                refused: vec![],
            })
        }
    }

    const ENTITY: &str = "[e]\nsource = { file = 'inv.csv' }\ncolumns = ['k', 'state', 'v']\n\
        key = 'k'\nscope = [{ field = 'state', in = ['open'], out = ['paid'] }]\n\
        validate = [{ rule = 'required', field = 'v' }]\n\
        target = { model = 'account.move', external_id = 'inv' }\nmap = { ref = 'k', v = 'v' }\n\
        [e.lines]\nfield = 'invoice_line_ids'\nsource = { file = 'lines.csv' }\n\
        columns = ['lid', 'inv', 'desc', 'q']\nkey = 'lid'\nparent = 'inv'\nexternal_id = 'line'\n\
        validate = [{ rule = 'required', field = 'desc' }]\nmap = { name = 'desc', quantity = 'q' }\n";

    fn job(dir: &Path, invoices: &[u8], lines: &[u8]) -> EntityJob {
        #[derive(serde::Deserialize)]
        struct W {
            e: crate::runbook::format::Entity,
        }
        let e = toml::from_str::<W>(ENTITY).unwrap().e;
        let all = indexmap::IndexMap::from([("e".to_string(), e.clone())]);
        let rules = Compiled::new("e", &e, &all).unwrap();
        std::fs::write(dir.join("inv.csv"), invoices).unwrap();
        std::fs::write(dir.join("lines.csv"), lines).unwrap();
        EntityJob {
            phase: Phase::Load,
            table: TableSpec {
                table: "account.move".into(),
                key: "id".into(),
                columns: rules.target_columns.clone(),
            },
            rules: Arc::new(rules),
            file: dir.join("inv.csv"),
            reject_path: dir.join("e.rejects.csv"),
            batch_size: 2,
            batch_bytes: 4 << 20,
            retry: RetryPolicy::NONE,
            refs: HashMap::new(),
            keep_valid_keys: false,
            scope_refs: HashMap::new(),
            keep_scope_keys: false,
            sum_fields: vec![],
            fingerprints: vec![],
            expected_rows: 0,
            resume: None,
            may_conflict: true,
            workers: 2,
            write_concurrency: 1,
            keys: crate::keyset::KeyMemory::default(),
        }
    }

    /// The reject file's rows: line number → message.
    fn rejects(path: &Path) -> BTreeMap<u64, String> {
        let mut r = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .unwrap();
        // The extra columns come last (a malformed row has its own field count).
        r.byte_records()
            .map(|rec| {
                let rec = rec.unwrap();
                let n = rec.len();
                let text = |i: usize| String::from_utf8_lossy(&rec[i]).into_owned();
                (text(n - 4).parse().unwrap(), text(n - 1))
            })
            .collect()
    }

    #[tokio::test]
    async fn every_line_is_attached_or_rejected_with_its_reason() {
        let dir = tempfile::tempdir().unwrap();
        let invoices = b"k,state,v\nA,open,1\nB,open,2\nC,paid,3\nD,open,\nE,open,5\nF,open,6\nG,open,7\nH,open,bad\n";
        // Lines out of the invoices' order; one per way a line can fail to travel.
        let lines: &[u8] = b"lid,inv,desc,q\n\
            L1,A,haulage,1\n\
            L2,B,toll,1\n\
            L3,A,fuel,2\n\
            L4,B,,1\n\
            L5,C,paid one,1\n\
            L6,D,rejected one,1\n\
            L7,Z,nobody's,1\n\
            L8,E,extra,1,field\n\
            L9,,no parent,1\n\
            L10,G,latin,\xe91\n\
            L11,H,refused by the target,1\n";
        let job = job(dir.path(), invoices, lines);
        let v = job.table.columns.iter().position(|c| c == "v").unwrap();
        let rec = WriteOnly(Recorder {
            v,
            rows: Mutex::new(Vec::new()),
        });
        let (progress, _) = watch::channel(Vec::new());
        let res = run_entity(job, &rec, &progress, &NoObserver).await.unwrap();
        let c = &res.counts;
        assert_eq!(
            (c.in_file, c.in_scope, c.valid, c.rejected, c.loaded),
            (8, 7, 2, 5, 2),
            "{c:?}"
        );
        assert_eq!(
            c.lines,
            Some(LineCounts {
                read: 11,
                attached: 2,
                rejected: 9
            })
        );
        // A with both its lines (quantities 1 and 2), F alone.
        let rows = rec.0.rows.into_inner().unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");

        let lr = rejects(&dir.path().join("e.lines.rejects.csv"));
        let want: [(u64, &str); 9] = [
            (
                3,
                "its e record B was rejected for another of its lines (line 5)",
            ),
            (5, "is required"),
            (6, "its e record C is out of scope"),
            (7, "its e record D was rejected: v is required"),
            (8, "no e record Z in inv.csv"),
            (9, "fields"),
            (10, "is empty: the line names no e record"),
            (11, "is not UTF-8"),
            (12, "its e record H was refused by the target: v is bad"),
        ];
        assert_eq!(lr.keys().copied().collect::<Vec<_>>(), want.map(|w| w.0));
        for (line, text) in want {
            assert!(lr[&line].contains(text), "line {line}: {}", lr[&line]);
        }
        // Each refused invoice names the line it was refused for.
        let er = rejects(&dir.path().join("e.rejects.csv"));
        assert!(
            er[&3].contains("line 5 of lines.csv: desc is required"),
            "{er:?}"
        );
        assert!(er[&6].contains("line 9 of lines.csv"), "{er:?}");
        assert!(er[&8].contains("line 11 of lines.csv: q"), "{er:?}");
        assert!(er[&9].contains("v is bad"), "{er:?}");
    }

    /// Resident memory, in bytes.
    fn rss() -> u64 {
        let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
        statm
            .split_whitespace()
            .nth(1)
            .unwrap()
            .parse::<u64>()
            .unwrap()
            * 4096
    }

    /// What the index holds per invoice: `cargo test --lib lines::tests::index_memory --
    /// --ignored --nocapture` (figures in README).
    #[test]
    #[ignore]
    fn index_memory() {
        #[derive(serde::Deserialize)]
        struct W {
            e: crate::runbook::format::Entity,
        }
        let e = toml::from_str::<W>(ENTITY).unwrap().e;
        let all = indexmap::IndexMap::from([("e".to_string(), e.clone())]);
        let rules = Arc::new(Compiled::new("e", &e, &all).unwrap());
        for (invoices, per) in [(1_000_000u64, 1u64), (250_000, 4)] {
            let dir = tempfile::tempdir().unwrap();
            let mut text = String::from("lid,inv,desc,q\n");
            for i in 0..invoices {
                for j in 0..per {
                    text.push_str(&format!("L{i}-{j},INV-{i:07},line {j},1\n"));
                }
            }
            std::fs::write(dir.path().join("lines.csv"), text).unwrap();
            std::fs::write(dir.path().join("inv.csv"), "k,state,v\n").unwrap();
            let before = rss();
            let set = LineSet::open(
                rules.clone(),
                &dir.path().join("inv.csv"),
                &dir.path().join("e.rejects.csv"),
            )
            .unwrap();
            let after = rss();
            println!(
                "{invoices} invoices x {per} lines: index {} bytes, {} per invoice",
                after - before,
                (after - before) / invoices
            );
            drop(set);
        }
    }
}
