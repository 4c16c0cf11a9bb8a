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
        let shown = path.display().to_string();
        w.write_record(&h).map_err(|e| csv_failed(&shown, e))?;
        Ok(RejectWriter {
            w,
            path: shown,
            rows: 0,
        })
    }

    /// One line per rejected row; several reasons are joined with " | " in each column.
    pub fn write(&mut self, raw: &ByteRecord, line: u64, issues: &[RowIssue]) -> Result<()> {
        self.write_fields(raw.iter(), line, issues)
    }

    /// [`write`](Self::write) from the record's fields as they are, without a copy.
    pub fn write_fields<'a>(
        &mut self,
        raw: impl Iterator<Item = &'a [u8]>,
        line: u64,
        issues: &[RowIssue],
    ) -> Result<()> {
        let join = |f: fn(&RowIssue) -> &str| issues.iter().map(f).collect::<Vec<_>>().join(" | ");
        let extra = [
            line.to_string(),
            join(|i| &i.rule),
            join(|i| &i.field),
            join(|i| &i.message),
        ];
        let fail = |e| csv_failed(&self.path, e);
        for f in raw {
            self.w.write_field(f).map_err(fail)?;
        }
        for f in &extra {
            self.w.write_field(f).map_err(fail)?;
        }
        self.w.write_record(None::<&[u8]>).map_err(fail)?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish(mut self) -> Result<()> {
        self.w.flush().map_err(|e| cannot_write(&self.path, e))
    }
}

fn csv_failed(path: &str, e: csv::Error) -> anyhow::Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => cannot_write(path, io),
        other => anyhow::anyhow!("writing reject file {path}: {other:?}"),
    }
}

/// A reject file that cannot be written stops the run: its rows would otherwise be lost.
/// Says which file, why, and what to do.
fn cannot_write(path: &str, e: std::io::Error) -> anyhow::Error {
    let what_to_do = match e.kind() {
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
            "the disk is full: free space there, or point --artifacts at a folder on another disk, and run again"
        }
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
            "make the folder writable, or point --artifacts at a writable folder, and run again"
        }
        _ => "check the disk, or point --artifacts at another folder, and run again",
    };
    anyhow::anyhow!(
        "cannot write reject file {path}: {e}; the rejected rows were not all written, so this step stops; {what_to_do}"
    )
}
