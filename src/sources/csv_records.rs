//! Splits a CSV file into records, strictly, counting physical lines.
//!
//! Why not the csv crate: it hides whether a field was quoted (NULL is an unquoted empty
//! field, the empty string is `""`), it reads on past a quote left open to the end of the
//! file, and it accepts `"a"b` and `"a \"b\""` by silently joining the pieces. Here every
//! such record is flagged with a [`Problem`] and its line, so it becomes a reject.
//!
//! Line ends: `\n`, `\r\n` and a lone `\r` (old Mac exports) each end a physical line, in
//! any mix. Blank lines are skipped, as the csv crate did.
//!
//! A quoted value still open at the end of its line: without `multiline` the record ends
//! there (it is malformed) and reading goes on at the next line, so one stray quote costs
//! one line, not the rest of the file. To say which lines the value would have swallowed,
//! the rest of the file is scanned (without keeping it) to where the quote closes, then
//! the reader seeks back. The scan stops at the next lone quote, so many stray quotes
//! still cost about one pass. With `multiline`, the value goes on over the following lines;
//! if it never closes, or the record it makes has the wrong field count (a stray quote,
//! not an address), the record is cut back to its first line and reading resumes on the
//! next, as above.

use std::io::{self, BufRead, Seek, SeekFrom};

/// How the entity's source file is written (the runbook's `source` options).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dialect {
    /// Quoted values may hold line breaks (addresses).
    pub multiline: bool,
    /// Escape character (MySQL's `\`): it makes the next character literal, and an
    /// unquoted `\N` is NULL.
    pub escape: Option<u8>,
}

/// How a field was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Unquoted: empty means NULL.
    Bare,
    /// Quoted: `""` is the empty string.
    Quoted,
    /// `\N` with an escape character: NULL.
    Null,
}

/// Why a record cannot be trusted. Field numbers are 0-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A quoted value in `field` opened on the record's first line is not closed there
    /// (without `multiline`) or never (with it). `closes`: the line of its closing quote,
    /// or `None` when it runs to the end of the file, whose last line is `last`.
    OpenQuote {
        field: usize,
        closes: Option<u64>,
        last: u64,
    },
    /// A multi-line record whose field count is wrong: cut back to its first line.
    /// `end`: the line where it would have ended.
    SpansLines { end: u64, fields: usize },
    /// Text right after a closing quote (`"a"b`).
    TextAfterQuote { field: usize },
    /// `\"` inside a quoted value, without an escape character: RFC 4180 would read the
    /// backslash as text and the quote as the end of the value, mangling it.
    BackslashQuote { field: usize },
    /// A quote inside an unquoted value (`12" pipe`): quoting would make it unambiguous.
    QuoteInBare { field: usize },
}

/// One record, reused from row to row: field bytes back to back.
#[derive(Debug, Default)]
pub struct Record {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
    pub kinds: Vec<Kind>,
    /// Physical lines of its first and last byte.
    pub line: u64,
    pub end_line: u64,
    pub problem: Option<Problem>,
}

impl Record {
    pub fn len(&self) -> usize {
        self.ends.len()
    }
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }
    pub fn field(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..self.ends[i]]
    }
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        (0..self.len()).map(|i| self.field(i))
    }
    /// NULL: an unquoted empty field, or `\N` with an escape character.
    pub fn is_null(&self, i: usize) -> bool {
        match self.kinds[i] {
            Kind::Bare => self.field(i).is_empty(),
            Kind::Quoted => false,
            Kind::Null => true,
        }
    }
    fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
        self.kinds.clear();
        self.problem = None;
    }
    fn end_field(&mut self, kind: Kind) {
        self.ends.push(self.bytes.len());
        self.kinds.push(kind);
    }
    fn flag(&mut self, p: Problem) {
        if self.problem.is_none() {
            self.problem = Some(p);
        }
    }
}

/// What ended a field.
enum End {
    Delim,
    Eol,
    Eof,
}

/// Where to resume after a record cut back to its first line.
#[derive(Clone, Copy)]
struct Resync {
    pos: u64,
    line: u64,
    /// The record's fields and bytes at the end of that line.
    fields: usize,
    bytes: usize,
}

pub struct Records<R> {
    r: R,
    dialect: Dialect,
    /// Byte offset and physical line of the next unread byte.
    pos: u64,
    line: u64,
    /// Field count a record must have (set once the header is read): a multi-line record
    /// with another count is cut back to its first line.
    pub expect: Option<usize>,
    stop_bare: [bool; 256],
    stop_quoted: [bool; 256],
}

const DELIM: u8 = b',';

impl<R: BufRead + Seek> Records<R> {
    pub fn new(r: R, dialect: Dialect) -> Records<R> {
        let mut stop_bare = [false; 256];
        let mut stop_quoted = [false; 256];
        for b in [DELIM, b'"', b'\r', b'\n'] {
            stop_bare[b as usize] = true;
        }
        for b in [b'"', b'\r', b'\n'] {
            stop_quoted[b as usize] = true;
        }
        // The escape character, or the backslash to spot `\"` when there is none.
        let esc = dialect.escape.unwrap_or(b'\\');
        stop_quoted[esc as usize] = true;
        if dialect.escape.is_some() {
            stop_bare[esc as usize] = true;
        }
        Records {
            r,
            dialect,
            pos: 0,
            line: 1,
            expect: None,
            stop_bare,
            stop_quoted,
        }
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        Ok(self.r.fill_buf()?.first().copied())
    }

    fn bump(&mut self) {
        self.r.consume(1);
        self.pos += 1;
    }

    /// Copy bytes into `out` up to (not including) the next stop byte; `None` at EOF.
    fn take_until(&mut self, out: &mut Vec<u8>, quoted: bool) -> io::Result<Option<u8>> {
        let stops = if quoted {
            &self.stop_quoted
        } else {
            &self.stop_bare
        };
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                return Ok(None);
            }
            let (n, stop) = match buf.iter().position(|&b| stops[b as usize]) {
                Some(i) => (i, Some(buf[i])),
                None => (buf.len(), None),
            };
            out.extend_from_slice(&buf[..n]);
            self.r.consume(n);
            self.pos += n as u64;
            if stop.is_some() {
                return Ok(stop);
            }
        }
    }

    /// Consume a line end starting with `first` (`\n`, `\r\n` or `\r`), copying it to `out`.
    fn eol(&mut self, first: u8, out: Option<&mut Vec<u8>>) -> io::Result<()> {
        self.bump();
        let crlf = first == b'\r' && self.peek()? == Some(b'\n');
        if crlf {
            self.bump();
        }
        if let Some(out) = out {
            out.push(first);
            if crlf {
                out.push(b'\n');
            }
        }
        self.line += 1;
        Ok(())
    }

    /// The next record into `rec`; `false` at end of file.
    pub fn read(&mut self, rec: &mut Record) -> io::Result<bool> {
        rec.clear();
        loop {
            match self.peek()? {
                None => return Ok(false),
                Some(b @ (b'\r' | b'\n')) => self.eol(b, None)?,
                Some(_) => break,
            }
        }
        rec.line = self.line;
        let mut resync = None;
        let ended_by_eol = loop {
            let end = match self.peek()? {
                Some(b'"') => {
                    self.bump();
                    self.quoted(rec, &mut resync)?
                }
                _ => self.bare(rec, Kind::Bare)?,
            };
            match end {
                End::Delim => self.bump(),
                End::Eol => break true,
                End::Eof => break false,
            }
        };
        rec.end_line = self.line - u64::from(ended_by_eol);
        if let Some(rs) = resync {
            let open_at_eof = matches!(rec.problem, Some(Problem::OpenQuote { .. }));
            let wrong_count = self.expect.is_some_and(|n| n != rec.len());
            if open_at_eof || wrong_count {
                if !open_at_eof {
                    rec.problem = Some(Problem::SpansLines {
                        end: rec.end_line,
                        fields: rec.len(),
                    });
                }
                rec.bytes.truncate(rs.bytes);
                rec.ends.truncate(rs.fields);
                rec.kinds.truncate(rs.fields);
                rec.end_field(Kind::Quoted);
                rec.end_line = rs.line - 1;
                self.seek(rs.pos, rs.line)?;
            }
        }
        Ok(true)
    }

    /// Byte offset and physical line of the next unread byte: where [`Records::seek_to`] can
    /// come back to read the next record again.
    pub fn position(&self) -> (u64, u64) {
        (self.pos, self.line)
    }

    /// Continue reading at a [`Records::position`] taken between records. Already there:
    /// nothing is done, so a reader asked for its records in file order keeps its buffer.
    /// (Between records `pos` is exact; inside one, a look-ahead may have moved the
    /// underlying reader, so [`Records::read`] seeks unconditionally.)
    pub fn seek_to(&mut self, pos: u64, line: u64) -> io::Result<()> {
        if (pos, line) == (self.pos, self.line) {
            return Ok(());
        }
        self.seek(pos, line)
    }

    fn seek(&mut self, pos: u64, line: u64) -> io::Result<()> {
        self.r.seek(SeekFrom::Start(pos))?;
        self.pos = pos;
        self.line = line;
        Ok(())
    }

    /// The rest of an unquoted field (or of a quoted one with text after its closing quote).
    fn bare(&mut self, rec: &mut Record, kind: Kind) -> io::Result<End> {
        let start = rec.bytes.len();
        let field = rec.len();
        // `\N` alone, with an escape character: NULL (MySQL's convention).
        let mut null = false;
        loop {
            let end = match self.take_until(&mut rec.bytes, false)? {
                None => End::Eof,
                Some(DELIM) => End::Delim,
                Some(b @ (b'\r' | b'\n')) => {
                    self.eol(b, None)?;
                    End::Eol
                }
                Some(b'"') => {
                    rec.flag(Problem::QuoteInBare { field });
                    rec.bytes.push(b'"');
                    self.bump();
                    continue;
                }
                Some(esc) => {
                    self.bump();
                    match self.peek()? {
                        Some(b) if b != b'\r' && b != b'\n' => {
                            null = b == b'N' && rec.bytes.len() == start && kind == Kind::Bare;
                            rec.bytes.push(b);
                            self.bump();
                        }
                        // Nothing to escape: the character is text.
                        _ => rec.bytes.push(esc),
                    }
                    continue;
                }
            };
            if null && rec.bytes.len() == start + 1 {
                rec.bytes.truncate(start);
                rec.bytes.extend_from_slice(b"\\N");
                rec.end_field(Kind::Null);
            } else {
                rec.end_field(kind);
            }
            return Ok(end);
        }
    }

    /// A quoted field, its opening quote consumed.
    fn quoted(&mut self, rec: &mut Record, resync: &mut Option<Resync>) -> io::Result<End> {
        let field = rec.len();
        loop {
            match self.take_until(&mut rec.bytes, true)? {
                None => {
                    // End of file inside the quotes (only a multi-line value gets here).
                    let last = self.line
                        - u64::from(rec.bytes.ends_with(b"\n") || rec.bytes.ends_with(b"\r"));
                    // Over any earlier problem: the record must be cut back.
                    rec.problem = Some(Problem::OpenQuote {
                        field,
                        closes: None,
                        last,
                    });
                    rec.end_field(Kind::Quoted);
                    return Ok(End::Eof);
                }
                Some(b'"') => {
                    self.bump();
                    match self.peek()? {
                        Some(b'"') => {
                            rec.bytes.push(b'"');
                            self.bump();
                        }
                        Some(DELIM) => {
                            rec.end_field(Kind::Quoted);
                            return Ok(End::Delim);
                        }
                        None => {
                            rec.end_field(Kind::Quoted);
                            return Ok(End::Eof);
                        }
                        Some(b @ (b'\r' | b'\n')) => {
                            rec.end_field(Kind::Quoted);
                            self.eol(b, None)?;
                            return Ok(End::Eol);
                        }
                        Some(_) => {
                            rec.flag(Problem::TextAfterQuote { field });
                            return self.bare(rec, Kind::Quoted);
                        }
                    }
                }
                Some(b @ (b'\r' | b'\n')) => {
                    if self.dialect.multiline {
                        if resync.is_none() {
                            *resync = Some(Resync {
                                pos: 0,
                                line: 0,
                                fields: rec.len(),
                                bytes: rec.bytes.len(),
                            });
                        }
                        self.eol(b, Some(&mut rec.bytes))?;
                        if let Some(rs) = resync.as_mut().filter(|rs| rs.line == 0) {
                            (rs.pos, rs.line) = (self.pos, self.line);
                        }
                        continue;
                    }
                    // The record ends with its line: one stray quote costs one line.
                    rec.end_field(Kind::Quoted);
                    self.eol(b, None)?;
                    if rec.problem.is_none() {
                        let (pos, line) = (self.pos, self.line);
                        let (closes, last) = self.scan_to_close()?;
                        self.seek(pos, line)?;
                        rec.flag(Problem::OpenQuote {
                            field,
                            closes,
                            last,
                        });
                    }
                    return Ok(End::Eol);
                }
                Some(c) if Some(c) == self.dialect.escape => {
                    self.bump();
                    match self.peek()? {
                        // An escaped line break is a line break: handled above.
                        None | Some(b'\r' | b'\n') => {}
                        Some(b) => {
                            rec.bytes.push(b);
                            self.bump();
                        }
                    }
                }
                Some(_) => {
                    // A backslash, without an escape character.
                    rec.bytes.push(b'\\');
                    self.bump();
                    if self.peek()? == Some(b'"') {
                        rec.flag(Problem::BackslashQuote { field });
                    }
                }
            }
        }
    }

    /// From inside a quoted value, read on (keeping nothing) to its closing quote:
    /// `(Some(line of the closing quote), _)`, or `(None, last line of the file)`.
    fn scan_to_close(&mut self) -> io::Result<(Option<u64>, u64)> {
        let (mut line, mut at_start) = (self.line, true);
        let (mut quote, mut esc, mut cr) = (false, false, false);
        loop {
            let buf = self.r.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            for &b in buf {
                if std::mem::take(&mut cr) && b == b'\n' {
                    continue;
                }
                if std::mem::take(&mut quote) {
                    if b != b'"' {
                        return Ok((Some(line), line));
                    }
                    continue;
                }
                let escaped = std::mem::take(&mut esc);
                at_start = false;
                match b {
                    b'\n' => (line, at_start) = (line + 1, true),
                    b'\r' => (line, at_start, cr) = (line + 1, true, true),
                    _ if escaped => {}
                    b'"' => quote = true,
                    _ => esc = Some(b) == self.dialect.escape,
                }
            }
            let n = buf.len();
            self.r.consume(n);
        }
        if quote {
            return Ok((Some(line), line));
        }
        Ok((None, line - u64::from(at_start)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PLAIN: Dialect = Dialect {
        multiline: false,
        escape: None,
    };
    const MULTI: Dialect = Dialect {
        multiline: true,
        escape: None,
    };
    const ESC: Dialect = Dialect {
        multiline: false,
        escape: Some(b'\\'),
    };

    /// Every record as `line-end_line: field|field` (NULL shown as `∅`, `""` as `''`),
    /// with its problem.
    fn read_all(data: &[u8], d: Dialect, expect: Option<usize>) -> Vec<String> {
        let mut r = Records::new(io::Cursor::new(data.to_vec()), d);
        r.expect = expect;
        let mut rec = Record::default();
        let mut out = vec![];
        while r.read(&mut rec).unwrap() {
            let fields: Vec<String> = (0..rec.len())
                .map(|i| match (rec.is_null(i), rec.field(i)) {
                    (true, _) => "∅".to_string(),
                    (false, b"") => "''".to_string(),
                    (false, f) => String::from_utf8_lossy(f).into_owned(),
                })
                .collect();
            let mut s = format!("{}-{}: {}", rec.line, rec.end_line, fields.join("|"));
            if let Some(p) = &rec.problem {
                s.push_str(&format!(" {p:?}"));
            }
            out.push(s);
        }
        out
    }

    #[test]
    fn records_lines_quoting_and_problems() {
        #[rustfmt::skip]
        let cases: &[(&str, &[u8], Dialect, &[&str])] = &[
            ("LF", b"a,b\n1,2\n", PLAIN, &["1-1: a|b", "2-2: 1|2"]),
            ("CRLF", b"a,b\r\n1,2\r\n", PLAIN, &["1-1: a|b", "2-2: 1|2"]),
            ("CR only", b"a,b\r1,2\r3,4", PLAIN, &["1-1: a|b", "2-2: 1|2", "3-3: 3|4"]),
            ("mixed, blank lines skipped", b"a\r\n\r1\n\n2\r3", PLAIN,
                &["1-1: a", "3-3: 1", "5-5: 2", "6-6: 3"]),
            ("NULL vs empty string", b"1,,\"\",\" \"\n", PLAIN, &["1-1: 1|∅|''| "]),
            ("trailing delimiter", b"1,\n", PLAIN, &["1-1: 1|∅"]),
            ("doubled quote and delimiter in quotes", b"\"a\"\"b\",\"c,d\"\n", PLAIN,
                &["1-1: a\"b|c,d"]),
            ("open quote in the last column, closes later", b"1,\"x\n2,y\n3,\"z\"\n", PLAIN,
                &["1-1: 1|x OpenQuote { field: 1, closes: Some(3), last: 3 }",
                  "2-2: 2|y", "3-3: 3|z"]),
            ("open quote never closed", b"1,\"x\n2,y\n3,z\n", PLAIN,
                &["1-1: 1|x OpenQuote { field: 1, closes: None, last: 3 }",
                  "2-2: 2|y", "3-3: 3|z"]),
            ("open quote, CR-only lines", b"1,\"x\r2,y\r3,z", PLAIN,
                &["1-1: 1|x OpenQuote { field: 1, closes: None, last: 3 }",
                  "2-2: 2|y", "3-3: 3|z"]),
            ("last field cut short", b"1,\"ab\n2,\"c\"\n", PLAIN,
                &["1-1: 1|ab OpenQuote { field: 1, closes: Some(2), last: 2 }",
                  "2-2: 2|c"]),
            ("multiline value", b"1,\"a\nb\"\n2,c\n", MULTI, &["1-2: 1|a\nb", "3-3: 2|c"]),
            ("multiline CRLF kept", b"1,\"a\r\nb\"\r\n2,c\r\n", MULTI,
                &["1-2: 1|a\r\nb", "3-3: 2|c"]),
            ("multiline never closed: cut back", b"1,\"a\n2,b\n3,c\n", MULTI,
                &["1-1: 1|a OpenQuote { field: 1, closes: None, last: 3 }",
                  "2-2: 2|b", "3-3: 3|c"]),
            ("multiline, an earlier problem, never closed: cut back", b"\"x\"y,\"a\n2,b\n", MULTI,
                &["1-1: xy|a OpenQuote { field: 1, closes: None, last: 2 }", "2-2: 2|b"]),
            ("text after the closing quote", b"\"a\"b,c\n2,d\n", PLAIN,
                &["1-1: ab|c TextAfterQuote { field: 0 }", "2-2: 2|d"]),
            ("backslash quote without escape", b"1,\"Kovac \\\"Express\\\" Ltd\"\n2,x\n", PLAIN,
                &["1-1: 1|Kovac \\Express\\\" Ltd\" BackslashQuote { field: 1 }", "2-2: 2|x"]),
            ("backslash before a doubled quote", b"1,\"a\\\"\"\"\n", PLAIN,
                &["1-1: 1|a\\\" BackslashQuote { field: 1 }"]),
            ("plain backslash is text", b"1,\"C:\\dir\\x\"\n", PLAIN, &["1-1: 1|C:\\dir\\x"]),
            ("escape: quotes, backslash, \\N", b"1,\"Kovac \\\"Express\\\" Ltd\",\\N,\"\\N\",a\\\\b\n", ESC,
                &["1-1: 1|Kovac \"Express\" Ltd|∅|N|a\\b"]),
            ("quote in an unquoted value", b"1,12\" pipe\n2,x\n", PLAIN,
                &["1-1: 1|12\" pipe QuoteInBare { field: 1 }", "2-2: 2|x"]),
        ];
        for (name, data, d, want) in cases {
            assert_eq!(read_all(data, *d, None), *want, "{name}");
        }
    }

    #[test]
    fn multiline_record_with_the_wrong_field_count_is_cut_back_to_its_first_line() {
        // A stray quote in a multiline file: the quote closes 2 lines later, making a
        // record of 4 fields; the header has 2.
        let got = read_all(b"1,\"a\n2,b\n3\",c,d\n4,e\n", MULTI, Some(2));
        assert_eq!(
            got,
            [
                "1-1: 1|a SpansLines { end: 3, fields: 4 }",
                "2-2: 2|b",
                "3-3: 3\"|c|d QuoteInBare { field: 0 }",
                "4-4: 4|e"
            ]
        );
    }
}
