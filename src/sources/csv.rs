//! Streaming CSV extract reader: UTF-8 with optional BOM, CRLF, RFC 4180 quoting.
//! Columns are matched by header name, so column order and extra columns don't matter.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use anyhow::{Context, Result};
use csv::ByteRecord;

use crate::engine::rules::shown;

/// Remembers where the newlines are in the bytes read so far, so a record's physical line
/// comes from its byte offset. (csv's own line counter lags by one after a CRLF record.)
/// Only newlines not yet passed are kept: memory is bounded by the read-ahead buffer.
struct LineTracker<R> {
    inner: R,
    offset: u64,
    pending: RefCell<VecDeque<u64>>,
    passed: Cell<u64>,
}

impl<R: Read> Read for LineTracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        let mut pending = self.pending.borrow_mut();
        for (i, b) in buf[..n].iter().enumerate() {
            if *b == b'\n' {
                pending.push_back(self.offset + i as u64);
            }
        }
        self.offset += n as u64;
        Ok(n)
    }
}

impl<R> LineTracker<R> {
    /// 1-based line of the byte at `offset` (offsets must not decrease between calls).
    fn line_at(&self, offset: u64) -> u64 {
        let mut pending = self.pending.borrow_mut();
        // `<=`: after CRLF, csv reports the record as starting on the terminator's `\n`.
        while pending.front().is_some_and(|&nl| nl <= offset) {
            pending.pop_front();
            self.passed.set(self.passed.get() + 1);
        }
        self.passed.get() + 1
    }
}

pub struct CsvSource {
    reader: csv::Reader<LineTracker<BufReader<File>>>,
    /// The file's header, as written (BOM removed).
    pub header: Vec<String>,
    /// For each expected column, its index in the file.
    pub index: Vec<usize>,
}

/// One record: where it starts and its raw bytes (kept for the reject file).
pub struct RawRow {
    pub line: u64,
    pub raw: ByteRecord,
}

pub enum Decoded {
    Fields(Vec<String>),
    /// Field count differs from the header.
    Malformed(String),
    /// A needed field is not UTF-8 text (or holds a NUL byte): the field and the message.
    Encoding(String, String),
}

impl CsvSource {
    pub fn open(path: &Path, expected: &[String]) -> Result<CsvSource> {
        let file = File::open(path)
            .with_context(|| format!("{}: cannot open extract file", path.display()))?;
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(1 << 16)
            .from_reader(LineTracker {
                inner: BufReader::with_capacity(1 << 16, file),
                offset: 0,
                pending: RefCell::new(VecDeque::new()),
                passed: Cell::new(0),
            });
        let mut rec = ByteRecord::new();
        if !reader
            .read_byte_record(&mut rec)
            .with_context(|| format!("{}: line 1", path.display()))?
        {
            anyhow::bail!(
                "{}: the file is empty, not even a header line; re-export it: its first line must name the columns {}",
                path.display(),
                expected.join(", ")
            );
        }
        let first = rec.get(0).unwrap_or_default();
        if first.starts_with(b"\xFF\xFE")
            || first.starts_with(b"\xFE\xFF")
            || rec.iter().any(|f| f.contains(&0))
        {
            anyhow::bail!(
                "{}: line 1: the file is UTF-16 (a byte-order mark or NUL bytes in the header); re-export the extract as UTF-8",
                path.display()
            );
        }
        let mut header = Vec::with_capacity(rec.len());
        for (i, f) in rec.iter().enumerate() {
            let f = if i == 0 {
                f.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f)
            } else {
                f
            };
            let s = std::str::from_utf8(f).map_err(|_| {
                anyhow::anyhow!(
                    "{}: line 1, header column {}: not UTF-8; re-export the extract as UTF-8",
                    path.display(),
                    i + 1
                )
            })?;
            header.push(s.trim().to_string());
        }
        let mut index = Vec::with_capacity(expected.len());
        let mut missing = Vec::new();
        for col in expected {
            let at: Vec<usize> = (0..header.len()).filter(|&i| &header[i] == col).collect();
            match at[..] {
                [] => missing.push(col.as_str()),
                [i] => index.push(i),
                [a, b, ..] => anyhow::bail!(
                    "{}: line 1: column '{col}' appears twice (columns {} and {}); remove or rename one, so that it is clear which one to load",
                    path.display(),
                    a + 1,
                    b + 1
                ),
            }
        }
        if !missing.is_empty() {
            anyhow::bail!(
                "{}: line 1: missing column(s) {} (the header has: {}); {}",
                path.display(),
                missing.join(", "),
                header.join(", "),
                missing_hint(&header, &missing)
            );
        }
        Ok(CsvSource {
            reader,
            header,
            index,
        })
    }

    /// Next record, or `None` at end of file.
    pub fn next_row(&mut self) -> Result<Option<RawRow>> {
        let mut raw = ByteRecord::new();
        if !self.reader.read_byte_record(&mut raw)? {
            return Ok(None);
        }
        let line = raw
            .position()
            .map(|p| self.reader.get_ref().line_at(p.byte()))
            .unwrap_or(0);
        Ok(Some(RawRow { line, raw }))
    }

    /// Expected columns of `row`, in runbook order.
    pub fn decode(&self, row: &RawRow) -> Decoded {
        if row.raw.len() != self.header.len() {
            return Decoded::Malformed(self.field_count_message(row));
        }
        let mut out = Vec::with_capacity(self.index.len());
        for &i in &self.index {
            let bytes = &row.raw[i];
            let problem = match std::str::from_utf8(bytes) {
                Ok(s) if !s.contains('\0') => {
                    out.push(s.to_string());
                    continue;
                }
                Ok(s) => format!(
                    "'{}' holds a NUL byte (at byte {}): the extract is probably UTF-16 or binary; re-export it as UTF-8 text, or remove the NUL",
                    shown(&s.replace('\0', "\\0")),
                    s.find('\0').unwrap_or(0) + 1
                ),
                Err(e) => format!(
                    "'{}' is not UTF-8 (byte 0x{:02X} at byte {}: Latin-1 or Windows-1252?); re-export the extract as UTF-8",
                    shown(&String::from_utf8_lossy(bytes)),
                    bytes[e.valid_up_to()],
                    e.valid_up_to() + 1
                ),
            };
            return Decoded::Encoding(self.header[i].clone(), problem);
        }
        Decoded::Fields(out)
    }

    /// Why a record's field count differs from the header's, and what to do about it.
    fn field_count_message(&self, row: &RawRow) -> String {
        let (got, want) = (row.raw.len(), self.header.len());
        // Line breaks inside quoted values; one that ends the record's last value is the
        // end of a line the value swallowed (a quote left open to the end of the file).
        let breaks = row
            .raw
            .iter()
            .map(|f| f.iter().filter(|&&b| b == b'\n').count() as u64)
            .sum::<u64>()
            - u64::from(
                row.raw
                    .iter()
                    .next_back()
                    .is_some_and(|f| f.ends_with(b"\n")),
            );
        if breaks > 0 {
            format!(
                "has {got} field(s), the header has {want}, and a quoted value runs from line {} to line {}: a quote (\") is probably never closed, so those lines were read as one value; close the quote, and write a quote inside a quoted value as \"\"",
                row.line,
                row.line + breaks
            )
        } else if got > want {
            format!(
                "has {got} fields, the header has {want}: a value holds an unquoted ',' (a decimal comma as in 1.234,56, or a name with a comma); quote that value, or remove the extra field"
            )
        } else {
            format!(
                "has {got} field(s), the header has {want}: a value is missing; add it (an empty value is still written, as ,,)"
            )
        }
    }
}

/// What to do when the header lacks columns: the likely cause, when the header shows one.
fn missing_hint(header: &[String], missing: &[&str]) -> String {
    if let [only] = header
        && let Some(sep) = [';', '\t', '|'].into_iter().find(|c| only.contains(*c))
    {
        let sep = if sep == '\t' {
            "tab".to_string()
        } else {
            format!("'{sep}'")
        };
        return format!(
            "the header looks {sep}-separated: export the extract with ',' as the separator"
        );
    }
    let near: Vec<String> = missing
        .iter()
        .filter_map(|m| {
            header
                .iter()
                .find(|h| h.eq_ignore_ascii_case(m))
                .map(|h| format!("'{h}' is not '{m}'"))
        })
        .collect();
    if !near.is_empty() {
        return format!("column names are case-sensitive ({})", near.join(", "));
    }
    "add them to the extract or fix the runbook's columns".to_string()
}

/// Data rows in a CSV file (records after the header), streaming.
pub fn count_records(path: &Path) -> Result<u64> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut r = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(BufReader::with_capacity(1 << 16, file));
    let mut rec = ByteRecord::new();
    let mut n = 0;
    while r
        .read_byte_record(&mut rec)
        .with_context(|| format!("{}: record {}", path.display(), n + 1))?
    {
        n += 1;
    }
    Ok(n)
}

/// SHA-256 of a file, streaming (auditors can rerun `sha256sum`).
pub fn sha256_file(path: &Path) -> Result<(String, u64)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;
    let mut f = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut total = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        total += n as u64;
        h.update(&buf[..n]);
    }
    Ok((hex::encode(h.finalize()), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bom_crlf_quotes_and_line_numbers() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("v.csv");
        std::fs::write(
            &p,
            b"\xEF\xBB\xBFid,model\r\n1,\"Actros, 18\"\"\r\nlong\"\r\n2,Plain\r\n",
        )
        .unwrap();
        let mut s = CsvSource::open(&p, &cols(&["model", "id"])).unwrap();
        let r1 = s.next_row().unwrap().unwrap();
        assert_eq!(r1.line, 2);
        match s.decode(&r1) {
            Decoded::Fields(f) => {
                assert_eq!(f, vec!["Actros, 18\"\r\nlong".to_string(), "1".into()])
            }
            _ => panic!(),
        }
        let r2 = s.next_row().unwrap().unwrap();
        assert_eq!(
            r2.line, 4,
            "the quoted line break pushes the next record down"
        );
        assert!(s.next_row().unwrap().is_none());
        assert_eq!(count_records(&p).unwrap(), 2);
    }

    #[test]
    fn physical_lines_with_crlf_lf_bom_and_blank_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("l.csv");
        for (data, want) in [
            (&b"id\r\na\r\nb\r\nc\r\n"[..], vec![2, 3, 4]),
            (&b"\xEF\xBB\xBFid\r\na\r\nb\r\n"[..], vec![2, 3]),
            (&b"id\na\n\nb\n\"x\ny\"\nc"[..], vec![2, 4, 5, 7]),
        ] {
            std::fs::write(&p, data).unwrap();
            let mut s = CsvSource::open(&p, &cols(&["id"])).unwrap();
            let mut got = vec![];
            while let Some(r) = s.next_row().unwrap() {
                got.push(r.line);
            }
            assert_eq!(got, want, "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn missing_column_names_file_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, "legacy_id,name\n1,a\n").unwrap();
        let err = CsvSource::open(&p, &cols(&["legacy_id", "email"]))
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("c.csv") && err.contains("missing column(s) email"),
            "{err}"
        );
    }

    #[test]
    fn wrong_field_count_and_latin1_are_row_problems() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.csv");
        std::fs::write(&p, b"id,name\n1,a,extra\n2,J\xF6rg\n").unwrap();
        let mut s = CsvSource::open(&p, &cols(&["id", "name"])).unwrap();
        let r = s.next_row().unwrap().unwrap();
        assert!(matches!(s.decode(&r), Decoded::Malformed(_)));
        let r = s.next_row().unwrap().unwrap();
        assert!(matches!(s.decode(&r), Decoded::Encoding(ref f, _) if f == "name"));
    }
}
