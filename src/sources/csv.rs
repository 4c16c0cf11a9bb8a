//! Streaming CSV extract reader: UTF-8 with optional BOM, RFC 4180 quoting, any line ends
//! (records are split by [`super::csv_records`]).
//! Columns are matched by header name, so column order and extra columns don't matter.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;

use anyhow::{Context, Result};
use csv::ByteRecord;

pub use super::csv_records::Dialect;
pub use super::csv_records::Record;
use super::csv_records::{Kind, Problem, Records};
use crate::values::shown;

pub struct CsvSource {
    reader: Records<BufReader<File>>,
    path: String,
    /// The last record read, reused.
    rec: Record,
    dec: Decoder,
    /// For each expected column of the last decoded row: was it NULL (see [`CsvSource::nulls`]).
    nulls: Vec<bool>,
}

/// Turns records of one file into the expected columns' text. Separate from the reader
/// so that records can be decoded on other threads than the one that reads them.
#[derive(Debug, Clone)]
pub struct Decoder {
    /// The file's header, as written (BOM removed; a column that is not UTF-8, shown lossily).
    header: Vec<String>,
    /// For each expected column, its index in the file.
    index: Vec<usize>,
}

/// Why a record has no fields to check: a row-level problem, never an `Err`.
pub enum Undecodable {
    /// Field count differs from the header, or the quoting is broken.
    Malformed(String),
    /// A needed field is not UTF-8 text (or holds a NUL byte): the field and the message.
    Encoding(String, String),
}

/// One record: where it starts and its fields' bytes (kept for the reject file).
pub struct RawRow {
    pub line: u64,
    pub raw: ByteRecord,
}

pub enum Decoded {
    Fields(Vec<String>),
    /// Field count differs from the header, or the quoting is broken.
    Malformed(String),
    /// A needed field is not UTF-8 text (or holds a NUL byte): the field and the message.
    Encoding(String, String),
}

impl CsvSource {
    pub fn open(path: &Path, expected: &[String], dialect: Dialect) -> Result<CsvSource> {
        Self::open_buffered(path, expected, dialect, 1 << 16)
    }

    /// [`CsvSource::open`] with a read buffer of `capacity` bytes: small for a reader that
    /// [`seek`](Self::seek)s from record to record.
    pub fn open_buffered(
        path: &Path,
        expected: &[String],
        dialect: Dialect,
        capacity: usize,
    ) -> Result<CsvSource> {
        let file = File::open(path)
            .with_context(|| format!("{}: cannot open extract file", path.display()))?;
        let mut reader = Records::new(BufReader::with_capacity(capacity, file), dialect);
        let shown_path = path.display().to_string();
        let mut rec = Record::default();
        if !reader
            .read(&mut rec)
            .with_context(|| format!("{shown_path}: line 1"))?
        {
            anyhow::bail!(
                "{shown_path}: the file is empty, not even a header line; re-export it: its first line must name the columns {}",
                expected.join(", ")
            );
        }
        let first = rec.field(0);
        if first.starts_with(b"\xFF\xFE")
            || first.starts_with(b"\xFE\xFF")
            || rec.iter().any(|f| f.contains(&0))
        {
            anyhow::bail!(
                "{shown_path}: line 1: the file is UTF-16 (a byte-order mark or NUL bytes in the header); re-export the extract as UTF-8"
            );
        }
        if rec.end_line != rec.line || rec.problem.is_some() {
            anyhow::bail!(
                "{shown_path}: line {}: the header line is not plain CSV (a quote is misplaced or never closed); its first line must name the columns {}, separated by ','",
                rec.line,
                expected.join(", ")
            );
        }
        let mut header = Vec::with_capacity(rec.len());
        // Header columns that are not UTF-8: fine unless the runbook needs them.
        let mut not_utf8 = Vec::new();
        for (i, f) in rec.iter().enumerate() {
            let f = if i == 0 {
                f.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(f)
            } else {
                f
            };
            match std::str::from_utf8(f) {
                Ok(s) => header.push(s.trim().to_string()),
                Err(_) => {
                    let s = String::from_utf8_lossy(f).trim().to_string();
                    not_utf8.push(format!("column {} ('{}')", i + 1, shown(&s)));
                    header.push(s);
                }
            }
        }
        let mut index = Vec::with_capacity(expected.len());
        let mut missing = Vec::new();
        for col in expected {
            let at: Vec<usize> = (0..header.len()).filter(|&i| &header[i] == col).collect();
            match at[..] {
                [] => missing.push(col.as_str()),
                [i] => index.push(i),
                [a, b, ..] => anyhow::bail!(
                    "{shown_path}: line 1: column '{col}' appears twice (columns {} and {}); remove or rename one, so that it is clear which one to load",
                    a + 1,
                    b + 1
                ),
            }
        }
        if !missing.is_empty() {
            if !not_utf8.is_empty() {
                anyhow::bail!(
                    "{shown_path}: line 1: missing column(s) {}, and header {} not UTF-8; if that is a column the runbook needs, re-export the extract as UTF-8",
                    missing.join(", "),
                    if not_utf8.len() == 1 {
                        format!("{} is", not_utf8[0])
                    } else {
                        format!("{} are", not_utf8.join(", "))
                    },
                );
            }
            anyhow::bail!(
                "{shown_path}: line 1: missing column(s) {} (the header has: {}); {}",
                missing.join(", "),
                header.join(", "),
                missing_hint(&header, &missing)
            );
        }
        if !not_utf8.is_empty() {
            tracing::warn!(
                "{shown_path}: line 1: header {} {} not UTF-8; the runbook does not use {}, so {} ignored",
                not_utf8.join(", "),
                if not_utf8.len() == 1 { "is" } else { "are" },
                if not_utf8.len() == 1 { "it" } else { "them" },
                if not_utf8.len() == 1 {
                    "it is"
                } else {
                    "they are"
                },
            );
        }
        reader.expect = Some(header.len());
        Ok(CsvSource {
            reader,
            path: shown_path,
            rec,
            nulls: Vec::with_capacity(index.len()),
            dec: Decoder { header, index },
        })
    }

    /// Next record, or `None` at end of file.
    pub fn next_row(&mut self) -> Result<Option<RawRow>> {
        if !self
            .reader
            .read(&mut self.rec)
            .with_context(|| format!("{}: reading", self.path))?
        {
            return Ok(None);
        }
        let mut raw = ByteRecord::with_capacity(self.rec.bytes.len(), self.rec.len());
        for f in self.rec.iter() {
            raw.push_field(f);
        }
        Ok(Some(RawRow {
            line: self.rec.line,
            raw,
        }))
    }

    /// Where the next record starts (byte offset, line): [`seek`](Self::seek) there to
    /// read it again.
    pub fn position(&self) -> (u64, u64) {
        self.reader.position()
    }

    /// Read on from a [`position`](Self::position) taken earlier on this file.
    pub fn seek(&mut self, (pos, line): (u64, u64)) -> Result<()> {
        self.reader
            .seek_to(pos, line)
            .with_context(|| format!("{}: seeking to byte {pos}", self.path))
    }

    /// Expected columns of the row just read by [`next_row`](Self::next_row), in runbook
    /// order; [`nulls`](Self::nulls) then tells which of them were NULL.
    pub fn decode(&mut self, row: &RawRow) -> Decoded {
        debug_assert_eq!(row.line, self.rec.line, "decode the row just read");
        let mut out = Vec::with_capacity(self.dec.index.len());
        match self.dec.decode_into(&self.rec, &mut out, &mut self.nulls) {
            Ok(()) => Decoded::Fields(out),
            Err(Undecodable::Malformed(m)) => Decoded::Malformed(m),
            Err(Undecodable::Encoding(f, m)) => Decoded::Encoding(f, m),
        }
    }

    /// After [`decode`](Self::decode) gave `Fields`: for each expected column, whether it
    /// was NULL (an unquoted empty field, or `\N` with an escape character) rather than
    /// a value (`""` is the empty string).
    pub fn nulls(&self) -> &[bool] {
        &self.nulls
    }

    /// The next record into `rec` (its buffers reused), without copying it; `false` at the
    /// end of the file. Decode it with [`decoder`](Self::decoder).
    pub fn read_record(&mut self, rec: &mut Record) -> Result<bool> {
        self.reader
            .read(rec)
            .with_context(|| format!("{}: reading", self.path))
    }

    /// A decoder for this file's records, for any thread.
    pub fn decoder(&self) -> Decoder {
        self.dec.clone()
    }

    /// The file's header, as written (BOM removed; a column that is not UTF-8, shown lossily).
    /// Where each expected column sits in the file's records.
    pub fn index(&self) -> &[usize] {
        &self.dec.index
    }

    pub fn header(&self) -> &[String] {
        &self.dec.header
    }
}

impl Decoder {
    /// The expected columns of `rec`, in runbook order, into `out` (cleared first; its
    /// strings' buffers are reused), and for each whether it was NULL into `nulls`: an
    /// unquoted empty field, or `\N` with an escape character, rather than a value (`""`
    /// is the empty string).
    pub fn decode_into(
        &self,
        rec: &Record,
        out: &mut Vec<String>,
        nulls: &mut Vec<bool>,
    ) -> Result<(), Undecodable> {
        if let Some(p) = &rec.problem {
            return Err(Undecodable::Malformed(self.problem_message(rec, p)));
        }
        if rec.len() != self.header.len() {
            return Err(Undecodable::Malformed(self.field_count_message(rec)));
        }
        out.resize_with(self.index.len(), String::new);
        nulls.clear();
        for (slot, &i) in out.iter_mut().zip(&self.index) {
            let bytes = rec.field(i);
            let problem = match std::str::from_utf8(bytes) {
                // `\N` (with an escape character) is NULL: empty to the rules.
                Ok(_) if rec.kinds[i] == Kind::Null => {
                    slot.clear();
                    nulls.push(true);
                    continue;
                }
                Ok(s) if !bytes.contains(&0) => {
                    slot.clear();
                    slot.push_str(s);
                    nulls.push(rec.is_null(i));
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
            return Err(Undecodable::Encoding(self.header[i].clone(), problem));
        }
        Ok(())
    }

    fn column(&self, i: usize) -> String {
        match self.header.get(i) {
            Some(h) => format!("column {} ({h})", i + 1),
            None => format!("column {}", i + 1),
        }
    }

    /// What is wrong with a record's quoting, and what to do about it.
    fn problem_message(&self, rec: &Record, p: &Problem) -> String {
        let line = rec.line;
        let hint = "close the quote, and write a quote inside a quoted value as \"\"; if values really hold line breaks (addresses), set multiline = true on the entity's source";
        match *p {
            Problem::OpenQuote {
                field,
                closes: Some(end),
                ..
            } => format!(
                "a quoted value in {} opens on line {line} and is not closed on that line: read on, it runs from line {line} to line {end} (lines {line}–{end}), so those lines would be one value: a quote (\") is probably never closed; only line {line} is rejected, reading goes on at line {}; {hint}",
                self.column(field),
                line + 1
            ),
            Problem::OpenQuote {
                field,
                closes: None,
                last,
            } => format!(
                "a quoted value in {} opens on line {line} and is never closed: it runs from line {line} to the end of the file at line {last} (lines {line}–{last}): a quote (\") is probably never closed; only line {line} is rejected, reading goes on at line {}; {hint}",
                self.column(field),
                line + 1
            ),
            Problem::SpansLines { end, fields } => format!(
                "a quoted value runs from line {line} to line {end} (lines {line}–{end}) and the record it makes has {fields} field(s), the header has {}: a quote (\") is probably never closed; only line {line} is rejected, reading goes on at line {}; close the quote, and write a quote inside a quoted value as \"\"",
                self.header.len(),
                line + 1
            ),
            Problem::TextAfterQuote { field } => format!(
                "{}: text follows the closing quote of a quoted value (\"a\"b): a quote inside a quoted value must be written as \"\"; quote the whole value",
                self.column(field)
            ),
            Problem::BackslashQuote { field } => format!(
                "{}: a quoted value holds \\\" (a quote escaped with a backslash), which plain CSV would read as the end of the value; if the export escapes quotes with a backslash (MySQL), set escape = \"\\\\\" on the entity's source; otherwise write the quote as \"\"",
                self.column(field)
            ),
            Problem::QuoteInBare { field } => format!(
                "{}: a quote (\") inside an unquoted value (a line broken out of a multi-line value, or an inch mark): quote the whole value and write the quote as \"\" (\"12\"\" pipe\")",
                self.column(field)
            ),
        }
    }

    /// Why a record's field count differs from the header's, and what to do about it.
    fn field_count_message(&self, rec: &Record) -> String {
        let (got, want) = (rec.len(), self.header.len());
        let (line, end) = (rec.line, rec.end_line);
        if end > line {
            format!(
                "has {got} field(s), the header has {want}, and a quoted value runs from line {line} to line {end} (lines {line}–{end}): a quote (\") is probably never closed, so those lines were read as one value; close the quote, and write a quote inside a quoted value as \"\""
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

/// Data rows in a CSV file (records after the header, as read without `multiline`),
/// streaming.
pub fn count_records(path: &Path) -> Result<u64> {
    let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
    let mut r = Records::new(BufReader::with_capacity(1 << 16, file), Dialect::default());
    let mut rec = Record::default();
    let mut n = 0u64;
    while r
        .read(&mut rec)
        .with_context(|| format!("{}: record {}", path.display(), n))?
    {
        n += 1;
    }
    Ok(n.saturating_sub(1))
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

    const MULTI: Dialect = Dialect {
        multiline: true,
        escape: None,
    };

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
        let mut s = CsvSource::open(&p, &cols(&["model", "id"]), MULTI).unwrap();
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
        // Counted as read without `multiline`: line 2, then line 3 on its own, then line 4.
        assert_eq!(count_records(&p).unwrap(), 3);
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
            let mut s = CsvSource::open(&p, &cols(&["id"]), MULTI).unwrap();
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
        let err = CsvSource::open(&p, &cols(&["legacy_id", "email"]), Dialect::default())
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
        let mut s = CsvSource::open(&p, &cols(&["id", "name"]), Dialect::default()).unwrap();
        let r = s.next_row().unwrap().unwrap();
        assert!(matches!(s.decode(&r), Decoded::Malformed(_)));
        let r = s.next_row().unwrap().unwrap();
        assert!(matches!(s.decode(&r), Decoded::Encoding(ref f, _) if f == "name"));
    }
}
