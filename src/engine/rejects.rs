//! Reject files: one per entity, original columns byte-for-byte plus where and why, so a
//! person can fix the rows and load the file again (the extra `_` columns are ignored).

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;

use anyhow::{Context, Result};
use csv::ByteRecord;

use super::rules::RowIssue;

pub const EXTRA: [&str; 4] = ["_line", "_rule", "_field", "_message"];

pub struct RejectWriter {
    w: csv::Writer<BufWriter<File>>,
    path: String,
    pub rows: u64,
}

impl RejectWriter {
    pub fn create(path: &Path, header: &[String]) -> Result<RejectWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create reject folder {}", dir.display()))?;
        }
        let file = File::create(path)
            .with_context(|| format!("cannot create reject file {}", path.display()))?;
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(BufWriter::new(file));
        let mut h: Vec<&str> = header.iter().map(String::as_str).collect();
        h.extend(EXTRA);
        w.write_record(&h)
            .with_context(|| format!("writing {}", path.display()))?;
        Ok(RejectWriter {
            w,
            path: path.display().to_string(),
            rows: 0,
        })
    }

    /// One line per rejected row; several reasons are joined with " | " in each column.
    pub fn write(&mut self, raw: &ByteRecord, line: u64, issues: &[RowIssue]) -> Result<()> {
        let join = |f: fn(&RowIssue) -> &str| issues.iter().map(f).collect::<Vec<_>>().join(" | ");
        let mut rec = raw.clone();
        rec.push_field(line.to_string().as_bytes());
        rec.push_field(join(|i| &i.rule).as_bytes());
        rec.push_field(join(|i| &i.field).as_bytes());
        rec.push_field(join(|i| &i.message).as_bytes());
        self.w
            .write_byte_record(&rec)
            .with_context(|| format!("writing reject file {} (disk full?)", self.path))?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.w
            .flush()
            .with_context(|| format!("flushing reject file {} (disk full?)", self.path))
    }
}
