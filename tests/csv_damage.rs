//! No silent CSV loss: a corpus of damaged and differently exported CSV files, each run
//! through the real `cutover rehearse` on a one-entity runbook. For each file the test
//! asserts the reject file (each bad row with its line, or its line range, and reason),
//! the rows that load (with their exact values, NULL told from ''), and the summary counts.
//!
//! What each exporter produces, as decided here (README "CSV extracts"):
//! - Excel "CSV UTF-8": BOM, CRLF, quotes only where needed, `""` inside quotes; a cell
//!   with a line break is a quoted multi-line value (needs `multiline = true`). Excel in a
//!   locale with a decimal comma writes `;`-separated files: refused whole, with a hint.
//! - LibreOffice (defaults): LF, quotes only where needed; same as Excel otherwise.
//! - psql `\copy … CSV HEADER`: NULL is an unquoted empty field, the empty string `""`.
//! - MySQL `SELECT … INTO OUTFILE` / `mysqldump --tab` with `FIELDS TERMINATED BY ','
//!   OPTIONALLY ENCLOSED BY '"' ESCAPED BY '\\'`: NULL is `\N`, a quote inside a value is
//!   `\"`. With `escape = "\\"` it reads exactly; without, `\"` is a malformed reject and an
//!   unquoted `\N` is the two characters `\N`.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::Output;

/// The entity this suite feeds through the whole run, and its target table.
const ENTITY: &str = r#"[entities.drivers]
source = { file = "drivers.csv", table = "drivers"SOURCE_OPTIONS }
columns = ["id", "name", "city", "note"]
key = "id"
validate = [
  { rule = "required", field = "id" },
  { rule = "unique", field = "id" },
  { rule = "required", field = "name" },
]
target = { table = "driver", key = "ref" }

[entities.drivers.map]
ref = "id"
name = "name"
city = "city"
note = "note"

"#;

static RUNBOOK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    common::one_entity::runbook(
        "csv damage",
        ENTITY,
        r#"CREATE TABLE driver (id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE, name TEXT NOT NULL, city TEXT, note TEXT);"#,
        r#"CREATE TABLE driver (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, name text NOT NULL, city text, note text);"#,
    )
});

fn runbook(options: &str) -> String {
    RUNBOOK.replace("SOURCE_OPTIONS", options)
}

struct Case {
    s: Scratch,
    rb: PathBuf,
}

impl Case {
    fn new(options: &str, csv: &[u8]) -> Case {
        let s = Scratch {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(s.path("extract")).unwrap();
        std::fs::write(s.path("extract/drivers.csv"), csv).unwrap();
        let rb = s.path("rb.toml");
        std::fs::write(&rb, runbook(options)).unwrap();
        Case { s, rb }
    }

    fn rehearse(&self) -> Output {
        self.s.cutover(&["rehearse", "--json"], &self.rb)
    }

    /// Staged rows as `ref|name|city|note`, NULL shown as `∅`, line breaks as `\r` `\n`.
    fn staged(&self) -> Vec<String> {
        let rows = sqlite(
            &self.s.path("staging.db"),
            "SELECT replace(replace(ref || '|' || name || '|' || coalesce(city, '∅') || '|' \
             || coalesce(note, '∅'), char(13), '\\r'), char(10), '\\n') FROM driver ORDER BY id",
        );
        rows.lines().map(String::from).collect()
    }
}

/// The reject file as (line, rule, message, original fields).
fn rejects(summary: &serde_json::Value) -> Vec<(u64, String, String, Vec<String>)> {
    let path = summary["entities"]["drivers"]["reject_file"]
        .as_str()
        .unwrap();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let mut out = vec![];
    for r in rdr.byte_records() {
        let r = r.unwrap();
        let f: Vec<String> = r
            .iter()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .collect();
        let n = f.len();
        out.push((
            f[n - 4].parse().unwrap(),
            f[n - 3].clone(),
            f[n - 1].clone(),
            f[..n - 4].to_vec(),
        ));
    }
    out
}

/// A good row line as the corpus writes it: `id,Name id,City id,` (note NULL).
fn good(id: u32) -> String {
    format!("{id},Name {id},City {id},")
}

fn staged_good(id: u32) -> String {
    format!("{id}|Name {id}|City {id}|∅")
}

/// One file of the corpus: what must be rejected (line, rule, words of the message) and
/// what must be staged, exactly.
struct Expect<'a> {
    name: &'a str,
    options: &'a str,
    csv: Vec<u8>,
    in_file: u64,
    rejects: Vec<(u64, &'a str, Vec<&'a str>)>,
    staged: Vec<String>,
}

fn lines(ls: &[String], end: &str) -> Vec<u8> {
    let mut out = String::new();
    for l in ls {
        out.push_str(l);
        out.push_str(end);
    }
    out.into_bytes()
}

fn corpus() -> Vec<Expect<'static>> {
    let header = "id,name,city,note".to_string();
    let mut cases = vec![];

    // A quote opened in the last column and never closed, early in a 175-row file: only
    // that line is rejected, every later row loads.
    let mut ls = vec![header.clone()];
    ls.extend((1..=175).map(|i| {
        if i == 11 {
            "11,Name 11,City 11,\"left open".to_string()
        } else {
            good(i)
        }
    }));
    cases.push(Expect {
        name: "unclosed quote in the last column",
        options: "",
        csv: lines(&ls, "\n"),
        in_file: 175,
        rejects: vec![(
            12,
            "malformed",
            vec![
                "column 4 (note)",
                "never closed",
                "lines 12–176",
                "reading goes on at line 13",
            ],
        )],
        staged: (1..=175).filter(|&i| i != 11).map(staged_good).collect(),
    });

    // A last field cut short, a later quoted value closes it: the range ends there.
    cases.push(Expect {
        name: "last field cut short",
        options: "",
        csv: lines(
            &[
                header.clone(),
                good(1),
                "2,Name 2,City 2,\"cut sh".into(),
                good(3),
                "4,Name 4,\"City, 4\",".into(),
            ],
            "\n",
        ),
        in_file: 4,
        rejects: vec![(3, "malformed", vec!["lines 3–5", "not closed on that line"])],
        staged: vec![staged_good(1), staged_good(3), "4|Name 4|City, 4|∅".into()],
    });

    // CR-only line ends (old Mac exports): every reject keeps its own line.
    cases.push(Expect {
        name: "CR-only line ends",
        options: "",
        csv: lines(
            &[
                header.clone(),
                good(1),
                "2,Name 2".into(),
                good(3),
                "4,,City 4,".into(),
                good(5),
            ],
            "\r",
        ),
        in_file: 5,
        rejects: vec![
            (3, "malformed", vec!["has 2 field(s), the header has 4"]),
            (5, "required", vec!["is required"]),
        ],
        staged: vec![staged_good(1), staged_good(3), staged_good(5)],
    });

    // Mixed line ends in one file.
    cases.push(Expect {
        name: "mixed line ends",
        options: "",
        csv: format!(
            "{header}\r\n{}\n{}\r{}\r\n2,x\n{}",
            good(1),
            good(3),
            good(4),
            good(7)
        )
        .into_bytes(),
        in_file: 5,
        rejects: vec![(5, "malformed", vec!["has 2 field(s)"])],
        staged: vec![
            staged_good(1),
            staged_good(3),
            staged_good(4),
            staged_good(7),
        ],
    });

    // Excel "CSV UTF-8": BOM, CRLF, quotes where needed, a multi-line address cell.
    let excel = b"\xEF\xBB\xBFid,name,city,note\r\n1,\"Kovac \"\"Express\"\" Ltd\",\"Split, HR\",\r\n2,Bo,Oslo,\"Main St 1\r\nfloor 2\"\r\n3,Cy,Rome,plain\r\n".to_vec();
    cases.push(Expect {
        name: "Excel with a multi-line cell, multiline = true",
        options: ", multiline = true",
        csv: excel.clone(),
        in_file: 3,
        rejects: vec![],
        staged: vec![
            "1|Kovac \"Express\" Ltd|Split, HR|∅".into(),
            "2|Bo|Oslo|Main St 1\\r\\nfloor 2".into(),
            "3|Cy|Rome|plain".into(),
        ],
    });
    cases.push(Expect {
        name: "Excel with a multi-line cell, without multiline",
        options: "",
        csv: excel,
        // Line 3 is rejected; line 4 (`floor 2"`) is read on its own and is malformed too.
        in_file: 4,
        rejects: vec![
            (
                3,
                "malformed",
                vec!["lines 3–4", "set multiline = true on the entity's source"],
            ),
            (
                4,
                "malformed",
                vec!["column 1 (id)", "inside an unquoted value"],
            ),
        ],
        staged: vec![
            "1|Kovac \"Express\" Ltd|Split, HR|∅".into(),
            "3|Cy|Rome|plain".into(),
        ],
    });

    // LibreOffice defaults: LF, quotes only where needed.
    cases.push(Expect {
        name: "LibreOffice",
        options: "",
        csv: b"id,name,city,note\n1,Ann,\"Ghent, BE\",\n2,Bo,Oslo,\"say \"\"hi\"\"\"\n".to_vec(),
        in_file: 2,
        rejects: vec![],
        staged: vec!["1|Ann|Ghent, BE|∅".into(), "2|Bo|Oslo|say \"hi\"".into()],
    });

    // psql \copy … CSV HEADER: NULL unquoted empty, '' as "". A "" name is empty for
    // `required`.
    cases.push(Expect {
        name: "psql \\copy CSV: NULL vs empty string",
        options: "",
        csv: b"id,name,city,note\n1,Ann,,\"\"\n2,Bo,\"\",\n3,\"\",Rome,x\n4,Di,\" \",\"a\"\n"
            .to_vec(),
        in_file: 4,
        rejects: vec![(4, "required", vec!["is required"])],
        staged: vec![
            "1|Ann|∅|".into(),
            "2|Bo||∅".into(),
            // Values are trimmed: " " is the empty string, not NULL.
            "4|Di||a".into(),
        ],
    });

    // MySQL OUTFILE / mysqldump --tab with ENCLOSED BY '"' ESCAPED BY '\\'.
    let mysql = b"id,name,city,note\n1,\"Kovac \\\"Express\\\" Ltd\",\\N,\"a\\\\b\"\n2,\"Bo\",\"Oslo\",\\N\n".to_vec();
    cases.push(Expect {
        name: "MySQL escaped, escape = \\",
        options: r#", escape = "\\""#,
        csv: mysql.clone(),
        in_file: 2,
        rejects: vec![],
        staged: vec![
            "1|Kovac \"Express\" Ltd|∅|a\\b".into(),
            "2|Bo|Oslo|∅".into(),
        ],
    });
    cases.push(Expect {
        name: "MySQL escaped, without escape",
        options: "",
        csv: mysql,
        in_file: 2,
        rejects: vec![(
            2,
            "malformed",
            vec![
                "column 2 (name)",
                "\\\"",
                "set escape = \"\\\\\" on the entity's source",
            ],
        )],
        staged: vec!["2|Bo|Oslo|\\N".into()],
    });

    // A quote inside an unquoted value, and text after a closing quote.
    cases.push(Expect {
        name: "stray quotes inside values",
        options: "",
        csv: lines(
            &[
                header.clone(),
                good(1),
                "2,Name 2,12\" pipe,".into(),
                "3,\"Name\" 3,City 3,".into(),
                good(4),
            ],
            "\n",
        ),
        in_file: 4,
        rejects: vec![
            (
                3,
                "malformed",
                vec!["column 3 (city)", "inside an unquoted value"],
            ),
            (
                4,
                "malformed",
                vec!["column 2 (name)", "text follows the closing quote"],
            ),
        ],
        staged: vec![staged_good(1), staged_good(4)],
    });

    // Unused header column with bytes that are not UTF-8 (and its values): ignored.
    cases.push(Expect {
        name: "unused column not UTF-8",
        options: "",
        csv: b"id,name,Stra\xDFe,city,note\n1,Ann,\xFC\xFF,Oslo,\n".to_vec(),
        in_file: 1,
        rejects: vec![],
        staged: vec!["1|Ann|Oslo|∅".into()],
    });
    cases
}

#[test]
fn damaged_and_exported_files_lose_no_row() {
    let mut failures = vec![];
    for e in corpus() {
        let case = Case::new(e.options, &e.csv);
        let out = case.rehearse();
        if code(&out) != 0 {
            failures.push(format!("{}: exit {}: {}", e.name, code(&out), stderr(&out)));
            continue;
        }
        let summary = json(&out);
        let ent = &summary["entities"]["drivers"];
        let n = |k: &str| ent[k].as_u64().unwrap();
        let want_loaded = e.staged.len() as u64;
        let counts = (n("in_file"), n("rejected"), n("loaded"));
        let want = (e.in_file, e.rejects.len() as u64, want_loaded);
        if counts != want {
            failures.push(format!(
                "{}: (in file, rejected, loaded) {counts:?}, expected {want:?}",
                e.name
            ));
        }
        let got = rejects(&summary);
        let got_lines: Vec<u64> = got.iter().map(|r| r.0).collect();
        let want_lines: Vec<u64> = e.rejects.iter().map(|r| r.0).collect();
        if got_lines != want_lines {
            failures.push(format!(
                "{}: reject lines {got_lines:?}, expected {want_lines:?}: {got:?}",
                e.name
            ));
        } else {
            for ((_, rule, msg, _), (line, want_rule, says)) in got.iter().zip(&e.rejects) {
                if rule != want_rule || !says.iter().all(|s| msg.contains(s)) {
                    failures.push(format!(
                        "{}: line {line}: {rule}: {msg:?}, expected {want_rule} saying {says:?}",
                        e.name
                    ));
                }
            }
        }
        let staged = case.staged();
        if staged != e.staged {
            failures.push(format!(
                "{}: staged {staged:?}, expected {:?}",
                e.name, e.staged
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn rows_after_an_unclosed_quote_still_load() {
    // The exact shape seen in the field: 175 drivers, a quote opened in the last column of
    // line 9 and never closed. Before, 7 drivers loaded and every check passed.
    let mut csv = String::from("id,name,city,note\n");
    for i in 1..=175 {
        if i == 8 {
            csv.push_str("8,Name 8,City 8,\"unclosed\n");
        } else {
            csv.push_str(&format!("{}\n", good(i)));
        }
    }
    let case = Case::new("", csv.as_bytes());
    let out = case.rehearse();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary = json(&out);
    let ent = &summary["entities"]["drivers"];
    assert_eq!(ent["loaded"].as_u64(), Some(174), "{ent}");
    assert_eq!(ent["rejected"].as_u64(), Some(1), "{ent}");
    let staged = case.staged();
    assert_eq!(staged.len(), 174);
    assert_eq!(staged.last().unwrap(), &staged_good(175));
    let rej = rejects(&summary);
    assert_eq!(rej[0].0, 9);
    assert!(rej[0].2.contains("lines 9–176"), "{}", rej[0].2);
    assert_eq!(rej[0].3, ["8", "Name 8", "City 8", "unclosed"]);
}

#[test]
fn unused_header_column_not_utf8_is_named_in_a_warning() {
    let case = Case::new("", b"id,name,Stra\xDFe,city,note\n1,Ann,x,Oslo,\n");
    let out = case.rehearse();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let log = std::fs::read_to_string(case.s.path("cutover.log")).unwrap();
    let warn = log
        .lines()
        .find(|l| l.contains("WARN") && l.contains("drivers.csv"))
        .unwrap_or_else(|| panic!("no warning in the log: {log}"));
    for s in [
        "line 1: header column 3 ('Stra\u{FFFD}e') is not UTF-8",
        "the runbook does not use it, so it is ignored",
    ] {
        assert!(warn.contains(s), "{s:?} not in {warn}");
    }
}

#[test]
fn used_header_column_not_utf8_fails_naming_file_and_column() {
    let case = Case::new("", b"id,n\xE4me,city,note\n1,Ann,Oslo,\n");
    let out = case.rehearse();
    let err = stderr(&out);
    // Found by the preflight, at the entity's columns, before anything ran (exit 10).
    assert_eq!(code(&out), 10, "{err}");
    for s in [
        "entities.drivers.columns".to_string(),
        case.s.path("extract/drivers.csv").display().to_string(),
        "line 1: missing column(s) name, and header column 2 ('n\u{FFFD}me') is not UTF-8".into(),
        "re-export the extract as UTF-8".into(),
    ] {
        assert!(err.contains(&s), "{s:?} not in {err}");
    }
    assert!(
        !case.s.path("staging.db").exists(),
        "staging was created although the preflight failed"
    );
}

#[test]
fn bad_source_options_are_named_with_file_line_and_key() {
    for (options, key, says) in [
        (
            r#", escape = "ab""#,
            "entities.drivers.source.escape",
            "is not one character",
        ),
        (
            r#", escape = "\"""#,
            "entities.drivers.source.escape",
            "is not one character",
        ),
        (
            r#", multiline = "yes""#,
            "entities.drivers.source",
            "multiline",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("rb.toml");
        let text = runbook(options);
        std::fs::write(&p, &text).unwrap();
        let out = std::process::Command::new(BIN)
            .arg("check")
            .arg(&p)
            .output()
            .unwrap();
        let err = stderr(&out).replace(&p.display().to_string(), "rb.toml");
        assert_eq!(code(&out), 2, "{options}: {err}");
        let line = text.lines().position(|l| l.contains("source = {")).unwrap() + 1;
        assert!(
            err.contains(&format!("rb.toml:{line}:")),
            "{options}: line {line}: {err}"
        );
        assert!(err.contains(key), "{options}: {key}: {err}");
        assert!(err.contains(says), "{options}: {says}: {err}");
    }
}

#[test]
fn psql_null_and_empty_string_reach_postgres_apart() {
    let db = cutover::testdb::TempDb::postgres("csv_damage_null");
    let case = Case::new(
        "",
        b"id,name,city,note\n1,Ann,,\"\"\n2,Bo,\"\",\n3,Cy,Rome,x\n",
    );
    let url = format!("staging_url={}", db.url());
    let out = case
        .s
        .cutover(&["rehearse", "--json", "--var", &url], &case.rb);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        db.exec(
            "SELECT string_agg(ref || ':' || coalesce(quote_literal(city), 'NULL') || ':' \
             || coalesce(quote_literal(note), 'NULL'), ' ' ORDER BY ref) FROM driver"
        ),
        "1:NULL:'' 2:'':NULL 3:'Rome':'x'"
    );
}

#[test]
fn quoted_empty_in_a_typed_column_loads_as_null() {
    // '' is no integer: under an integer rule with allow_empty, `""` loads as NULL like an
    // unquoted empty field; in a text column next to it, `""` stays ''.
    let case = Case::new(
        "",
        b"id,name,city,note\n1,Ann,\"\",\"\"\n2,Bo,,x\n3,Cy,\"7\",\n",
    );
    let text = runbook("").replace(
        r#"{ rule = "required", field = "name" },"#,
        r#"{ rule = "required", field = "name" },
  { rule = "integer", field = "city", allow_empty = true },"#,
    );
    assert_ne!(text, runbook(""));
    std::fs::write(&case.rb, text).unwrap();
    let out = case.rehearse();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(case.staged(), ["1|Ann|∅|", "2|Bo|∅|x", "3|Cy|7|∅"]);
}

#[test]
fn database_extract_keeps_line_breaks_in_values_without_multiline() {
    // cutover's own extract from the legacy database quotes line breaks itself, so they
    // load as values; `multiline` is for files handed over.
    let case = Case::new("", b"");
    let legacy = case.s.path("legacy.db");
    sqlite(
        &legacy,
        "CREATE TABLE drivers (id TEXT, name TEXT, city TEXT, note TEXT); \
         INSERT INTO drivers VALUES ('1', 'Ann', 'Oslo', 'Main St 1' || char(10) || 'floor 2'), \
         ('2', 'Bo', NULL, '');",
    );
    let url = format!("legacy_url=sqlite://{}", legacy.display());
    let out = case
        .s
        .cutover(&["rehearse", "--json", "--var", &url], &case.rb);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let ent = &json(&out)["entities"]["drivers"];
    assert_eq!(ent["rejected"].as_u64(), Some(0), "{ent}");
    assert_eq!(case.staged()[0], "1|Ann|Oslo|Main St 1\\nfloor 2");
}
