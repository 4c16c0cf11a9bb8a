//! The bad-input catalogue: one test per bad input a cutover meets in practice. Each
//! asserts that the message names the file, the line and the field (where they exist) and
//! says what to do; that the rows that can load do load; and that nothing is silently lost
//! (a refused row is in the reject file with its line, its bytes unchanged). README.md's
//! troubleshooting table is built from these cases.
//!
//! Runbook cases run `cutover check` (exit 2); CSV and value cases run `cutover rehearse`
//! on a one-entity runbook whose extract holds a good row on line 2, the bad input on
//! line 3 and a good row on line 4; environment cases break the disk, the server or the
//! backup folder.
//!
//! Bad inputs covered elsewhere, and not repeated here:
//! - `tests/check_runbook.rs`: an unterminated string, `quorum = "two"`, an unknown rule,
//!   a misspelled `batchsize`, a `password = …` key, a password in `[vars]`, an unknown
//!   gate, an unknown entity, a dependency cycle, a rule on a missing column;
//! - `tests/run_steps.rs`: bad `--sign-off` and `--var` flags (a password in `--var` for
//!   `run`), and a failed verify after the load that rolls production back (exit 6);
//! - `tests/sinks_servers.rs`: a row the database refuses inside a 1,000-row batch.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::{Command, Output};

/// One entity, every step of a cutover, and the target's DDL for SQLite and PostgreSQL.
/// The entity this suite feeds through the whole run, and its target table.
const ENTITY: &str = r#"[entities.customers]
source = { file = "customers.csv", table = "customers" }
columns = ["id", "name", "amount", "created"]
key = "id"
validate = [
  { rule = "required", field = "id" },
  { rule = "unique", field = "id" },
  { rule = "decimal", field = "amount", scale = 2 },
  { rule = "date", field = "created", formats = ["YYYY-MM-DD", "DD/MM/YYYY"] },
]
target = { table = "partner", key = "ref" }

[entities.customers.map]
ref = "id"
name = "name"
amount = "amount"
created = "created"

"#;

static RUNBOOK: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    common::one_entity::runbook(
        "bad input",
        ENTITY,
        r#"CREATE TABLE partner (id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE, name TEXT NOT NULL, amount TEXT, created TEXT);"#,
        r#"CREATE TABLE partner (id serial PRIMARY KEY, ref text NOT NULL UNIQUE, name text NOT NULL, amount numeric(14,2), created date);"#,
    )
});

const HEADER: &[u8] = b"id,name,amount,created\n";

/// The runbook with `from` replaced by `to` (which must change it: no silent no-op edits).
fn runbook_with(from: &str, to: &str) -> String {
    assert!(RUNBOOK.contains(from), "the runbook has no {from:?}");
    RUNBOOK.replacen(from, to, 1)
}

/// The target's SQLite DDL, as the runbook writes it.
fn sqlite_ddl() -> &'static str {
    RUNBOOK
        .as_str()
        .split("sqlite = \"\"\"")
        .nth(1)
        .and_then(|s| s.split("\"\"\"").next())
        .unwrap()
}

/// An extract: the header, then `rows`, one a line.
fn extract(rows: &[&[u8]]) -> Vec<u8> {
    let mut out = HEADER.to_vec();
    for r in rows {
        out.extend_from_slice(r);
        out.push(b'\n');
    }
    out
}

/// A good row on line 2, `bad` on line 3, a good row on line 4.
fn around(bad: &[u8]) -> Vec<u8> {
    extract(&[b"1,Ann,1.50,2024-01-05", bad, b"3,Cy,2.00,05/01/2024"])
}

/// A scratch folder holding the runbook, its extract and the SQLite targets.
struct Case {
    s: Scratch,
    rb: PathBuf,
}

impl Case {
    fn new(runbook: &str, customers_csv: &[u8]) -> Case {
        let s = Scratch {
            dir: tempfile::tempdir().unwrap(),
        };
        std::fs::create_dir_all(s.path("extract")).unwrap();
        std::fs::write(s.path("extract/customers.csv"), customers_csv).unwrap();
        let rb = s.path("rb.toml");
        std::fs::write(&rb, runbook).unwrap();
        Case { s, rb }
    }

    /// `cutover COMMAND rb.toml` with every variable pointing into this folder, then `args`.
    fn run(&self, command: &str, args: &[&str]) -> Output {
        let mut all = vec![command, "--json"];
        all.extend(args);
        self.s.cutover(&all, &self.rb)
    }

    fn staged(&self) -> Vec<String> {
        let refs = sqlite(
            &self.s.path("staging.db"),
            "SELECT ref FROM partner ORDER BY ref",
        );
        refs.lines().map(String::from).collect()
    }
}

/// A rehearsal that completed: its summary, reject file and staging table.
struct Rehearsal {
    case: Case,
    json: serde_json::Value,
}

fn rehearse(customers_csv: &[u8]) -> Rehearsal {
    rehearse_with(customers_csv, &[])
}

fn rehearse_with(customers_csv: &[u8], args: &[&str]) -> Rehearsal {
    let case = Case::new(&RUNBOOK, customers_csv);
    let out = case.run("rehearse", args);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    Rehearsal {
        json: json(&out),
        case,
    }
}

/// One row of a reject file: the original fields, byte for byte, then where and why.
struct Reject {
    original: Vec<Vec<u8>>,
    rule: String,
    field: String,
    message: String,
}

impl Rehearsal {
    fn counts(&self) -> (u64, u64, u64) {
        let e = &self.json["entities"]["customers"];
        let n = |k: &str| e[k].as_u64().unwrap();
        (n("in_file"), n("rejected"), n("loaded"))
    }

    /// The reject-file row of source line `line`; fails listing the file if there is none.
    fn reject(&self, line: u64) -> Reject {
        let path = self.json["entities"]["customers"]["reject_file"]
            .as_str()
            .unwrap();
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(path)
            .unwrap();
        let h = rdr.byte_headers().unwrap().clone();
        assert_eq!(
            &h.iter().rev().take(4).collect::<Vec<_>>(),
            &[&b"_message"[..], b"_field", b"_rule", b"_line"]
        );
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut seen = Vec::new();
        for r in rdr.byte_records() {
            let r = r.unwrap();
            let f: Vec<Vec<u8>> = r.iter().map(<[u8]>::to_vec).collect();
            let n = f.len();
            if text(&f[n - 4]) == line.to_string() {
                return Reject {
                    original: f[..n - 4].to_vec(),
                    rule: text(&f[n - 3]),
                    field: text(&f[n - 2]),
                    message: text(&f[n - 1]),
                };
            }
            seen.push(text(r.as_slice()));
        }
        panic!("no reject row for line {line} in {path}: {seen:?}")
    }
}

/// `bad` on line 3 is rejected by `rule` on `field` with a message saying each of `says`;
/// lines 2 and 4 are loaded; the reject row keeps the line's bytes.
fn rejected_between_good_rows(bad: &[u8], rule: &str, field: &str, says: &[&str]) -> Reject {
    let r = rehearse(&around(bad));
    let rej = r.reject(3);
    assert_eq!((rej.rule.as_str(), rej.field.as_str()), (rule, field));
    for s in says {
        assert!(rej.message.contains(s), "{s:?} not in {:?}", rej.message);
    }
    let fields = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(bad)
        .into_byte_records()
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(
        rej.original,
        fields.iter().map(<[u8]>::to_vec).collect::<Vec<_>>(),
        "the row's bytes are kept"
    );
    assert_eq!(r.counts(), (3, 1, 2), "in file, rejected, loaded");
    assert_eq!(r.case.staged(), ["1", "3"]);
    rej
}

/// A rehearsal refused by its preflight for the extract file as a whole: exit 10, the
/// finding names the runbook's `columns` key, the file, and says each of `says`, and
/// nothing reaches staging.
fn extract_refused(customers_csv: &[u8], says: &[&str]) -> String {
    let case = Case::new(&RUNBOOK, customers_csv);
    let out = case.run("rehearse", &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    let file = case.s.path("extract/customers.csv").display().to_string();
    assert!(err.contains(": entities.customers.columns: "), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert!(err.contains(&file), "the file is named: {err}");
    for s in says {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
    assert!(
        !case.s.path("staging.db").exists(),
        "staging is not even created"
    );
    err
}

/// `cutover check` on the runbook with `from` replaced by `to`: exit 2, and the
/// diagnostic names `rb.toml:LINE:` of the first line holding `at`, the key `key`, and
/// says each of `says`. Returns stderr.
fn check_refuses(from: &str, to: &str, at: &str, key: &str, says: &[&str]) -> String {
    let text = runbook_with(from, to);
    check_text_refuses(text.as_bytes(), &[], at, key, says)
}

fn check_text_refuses(text: &[u8], args: &[&str], at: &str, key: &str, says: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rb.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(BIN)
        .arg("check")
        .arg(&p)
        .args(args)
        .output()
        .unwrap();
    let err = stderr(&out).replace(&p.display().to_string(), "rb.toml");
    assert_eq!(code(&out), 2, "{err}");
    let text = String::from_utf8_lossy(text);
    let line = text.lines().position(|l| l.contains(at)).expect(at) + 1;
    assert!(
        err.contains(&format!("error: rb.toml:{line}:")),
        "line {line}: {err}"
    );
    assert!(err.contains(&format!(": {key}: ")), "key {key}: {err}");
    assert!(err.contains("\n  hint: "), "a hint says what to do: {err}");
    for s in says {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
    err
}

// ------------------------------------------------------------------- runbooks

#[test]
fn runbook_file_missing() {
    let out = Command::new(BIN)
        .args(["rehearse", "/nonexistent/rb.toml", "--headless"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("error: /nonexistent/rb.toml: cannot read runbook: No such file"),
        "no :0:0 position for a file that is not there: {err}"
    );
    assert!(err.contains("hint: check the path"), "{err}");
}

#[test]
fn runbook_not_utf8() {
    // "Jörg" saved as Latin-1: the ö is the one byte 0xF6, which is not UTF-8.
    let text = runbook_with("name = \"bad input\"", "name = \"J\u{1}rg's input\"")
        .into_bytes()
        .into_iter()
        .map(|b| if b == 1 { 0xF6 } else { b })
        .collect::<Vec<u8>>();
    check_text_refuses(
        &text,
        &[],
        "rg's input",
        "runbook.name",
        &["not UTF-8 (byte 0xF6)", "save the runbook as UTF-8"],
    );
}

#[test]
fn runbook_unclosed_table_header() {
    check_refuses(
        "[entities.customers]\n",
        "[entities.customers\n",
        "[entities.customers",
        "entities.customers",
        &["unclosed table", "close the table header with ]"],
    );
}

#[test]
fn runbook_duplicate_key() {
    check_refuses(
        "name = \"bad input\"",
        "name = \"bad input\"\nname = \"again\"",
        "name = \"again\"",
        "runbook.name",
        &["duplicate key", "delete or rename the second one"],
    );
}

#[test]
fn runbook_unknown_key_in_an_entity() {
    check_refuses(
        "key = \"id\"",
        "kee = \"id\"",
        "kee = ",
        "entities.customers.kee",
        &["unknown field `kee`", "`key`", "check the spelling"],
    );
}

#[test]
fn runbook_missing_required_key() {
    check_refuses(
        "key = \"id\"\n",
        "",
        "[entities.customers]",
        "entities.customers",
        &["missing field `key`", "add the key"],
    );
}

#[test]
fn runbook_list_written_as_a_string() {
    check_refuses(
        "columns = [\"id\", \"name\", \"amount\", \"created\"]",
        "columns = \"id,name,amount,created\"",
        "columns = \"id",
        "entities.customers.columns",
        &["expected a sequence", "write a list in [ ]"],
    );
}

#[test]
fn runbook_boolean_written_as_a_string() {
    check_refuses(
        "reset = true",
        "reset = \"yes\"",
        "reset = \"yes\"",
        "environments.staging.reset",
        &["expected a boolean", "write true or false, without quotes"],
    );
}

#[test]
fn runbook_password_in_an_environment_url() {
    let err = check_refuses(
        "url = \"${production_url}\"",
        "url = \"postgres://app:hunter2@db/prod\"",
        "hunter2",
        "environments.production.url",
        &[
            "a password is written into the runbook",
            "password_env",
            "PGPASSWORD",
        ],
    );
    assert!(
        !err.contains("hunter2"),
        "the secret is never repeated: {err}"
    );
}

#[test]
fn runbook_password_given_on_the_command_line() {
    let err = check_text_refuses(
        RUNBOOK.as_bytes(),
        &["--var", "staging_url=postgres://app:hunter2@db/staging"],
        "staging_url = ",
        "vars.staging_url",
        &["argv is visible to every user", "PGPASSWORD"],
    );
    assert!(
        !err.contains("hunter2"),
        "the secret is never repeated: {err}"
    );
}

#[test]
fn runbook_password_file_missing() {
    check_refuses(
        "production = true",
        "production = true\npassword_file = \"prod.secret\"",
        "password_file",
        "environments.production.password_file",
        &[
            "cannot read password file",
            "prod.secret",
            "create the file (mode 0600)",
        ],
    );
}

#[test]
fn runbook_unknown_variable() {
    check_refuses(
        "url = \"${staging_url}\"",
        "url = \"${stagin_url}\"",
        "${stagin_url}",
        "environments.staging.url",
        &[
            "unknown variable ${stagin_url}",
            "declare it under [vars]",
            "staging_url",
        ],
    );
}

#[test]
fn runbook_unsupported_database_url() {
    check_refuses(
        "staging_url = \"sqlite://staging.db\"",
        "staging_url = \"mssql://db/staging\"",
        "url = \"${staging_url}\"",
        "environments.staging.url",
        &[
            "unsupported database URL 'mssql://db/staging'",
            "postgres://USER@HOST/DB",
        ],
    );
}

#[test]
fn runbook_unknown_date_format() {
    check_refuses(
        "\"DD/MM/YYYY\"",
        "\"DD-MM-YYYY\"",
        "DD-MM-YYYY",
        "entities.customers.validate[3].formats[1]",
        &[
            "unknown date format 'DD-MM-YYYY'",
            "supported: YYYY-MM-DD, DD/MM/YYYY",
        ],
    );
}

#[test]
fn runbook_invalid_regular_expression() {
    let err = check_refuses(
        "{ rule = \"unique\", field = \"id\" },",
        "{ rule = \"pattern\", field = \"id\", regex = \"[A-Z\" },",
        "[A-Z",
        "entities.customers.validate[1].regex",
        &[
            "invalid regular expression '[A-Z': unclosed character class",
            "fix the expression",
        ],
    );
    assert_eq!(
        err.matches("error:").count(),
        1,
        "one error, on one line: {err}"
    );
}

// -------------------------------------------------------------- extract files

#[test]
fn extract_file_missing() {
    let case = Case::new(&RUNBOOK, HEADER);
    std::fs::remove_file(case.s.path("extract/customers.csv")).unwrap();
    let out = case.run("rehearse", &[]);
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    assert!(err.contains(": entities.customers.source: "), "{err}");
    let file = case.s.path("extract/customers.csv");
    assert!(
        err.contains(&format!("extract file {} is missing", file.display())),
        "{err}"
    );
    assert!(err.contains("pass --var extract_dir=DIR"), "{err}");
}

#[test]
fn empty_extract_file() {
    extract_refused(
        b"",
        &[
            "the file is empty, not even a header line",
            "re-export it",
            "id, name, amount, created",
        ],
    );
}

#[test]
fn header_only_extract() {
    let r = rehearse(HEADER);
    assert_eq!(r.counts(), (0, 0, 0));
    let warn = r.json["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "extract holds rows")
        .expect("a check says the extract is empty");
    assert_eq!(warn["status"], "warn");
    let detail = warn["detail"].as_str().unwrap();
    assert!(
        detail.contains("customers.csv: line 1 is the header and no rows follow")
            && detail.contains("extract again"),
        "{detail}"
    );
}

#[test]
fn missing_column_in_the_header() {
    extract_refused(
        b"id,name,created\n1,Ann,2024-01-05\n",
        &[
            "line 1: missing column(s) amount (the header has: id, name, created)",
            "add them to the extract or fix the runbook's columns",
        ],
    );
}

#[test]
fn column_name_in_another_case() {
    extract_refused(
        b"ID,name,amount,created\n1,Ann,1.50,2024-01-05\n",
        &[
            "line 1: missing column(s) id",
            "column names are case-sensitive ('ID' is not 'id')",
        ],
    );
}

#[test]
fn column_twice_in_the_header() {
    extract_refused(
        b"id,name,name,amount,created\n1,Ann,Bo,1.50,2024-01-05\n",
        &[
            "line 1: column 'name' appears twice (columns 2 and 3)",
            "remove or rename one",
        ],
    );
}

#[test]
fn semicolon_separated_extract() {
    extract_refused(
        b"id;name;amount;created\n1;Ann;1,50;2024-01-05\n",
        &[
            "line 1: missing column(s) id, name, amount, created",
            "the header looks ';'-separated: export the extract with ',' as the separator",
        ],
    );
}

#[test]
fn utf16_extract() {
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            "id,name,amount,created\n1,Ann,1.50,2024-01-05\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    extract_refused(
        &utf16,
        &[
            "line 1: the file is UTF-16",
            "re-export the extract as UTF-8",
        ],
    );
}

#[test]
fn extra_column_in_the_header_is_not_loaded_and_rejects_nothing() {
    let r =
        rehearse(b"id,name,fax,amount,created\n1,Ann,555,1.50,2024-01-05\n2,Bo,,2.00,2024-01-05\n");
    assert_eq!(r.counts(), (2, 0, 2));
    assert_eq!(r.case.staged(), ["1", "2"]);
}

// ------------------------------------------------------------------- CSV rows

#[test]
fn latin1_bytes_in_a_value() {
    rejected_between_good_rows(
        b"2,J\xF6rg,1.00,2024-01-05",
        "encoding",
        "name",
        &[
            "is not UTF-8 (byte 0xF6 at byte 2",
            "re-export the extract as UTF-8",
        ],
    );
}

#[test]
fn nul_byte_in_a_value() {
    rejected_between_good_rows(
        b"2,B\0o,1.00,2024-01-05",
        "encoding",
        "name",
        &[
            "'B\\0o' holds a NUL byte (at byte 2)",
            "re-export it as UTF-8 text, or remove the NUL",
        ],
    );
}

#[test]
fn nul_byte_in_a_value_into_postgres() {
    let db = cutover::testdb::TempDb::postgres("bad_input_nul");
    let url = format!("staging_url={}", db.url());
    let r = rehearse_with(&around(b"2,B\0o,1.00,2024-01-05"), &["--var", &url]);
    let rej = r.reject(3);
    assert_eq!(
        (rej.rule.as_str(), rej.field.as_str()),
        ("encoding", "name"),
        "refused at the source with its field, not by the database: {}",
        rej.message
    );
    assert_eq!(
        db.exec("SELECT string_agg(ref, ',' ORDER BY ref) FROM partner"),
        "1,3"
    );
}

#[test]
fn row_with_an_unquoted_decimal_comma() {
    rejected_between_good_rows(
        b"2,Bo,1.234,56,2024-01-05",
        "malformed",
        "(row)",
        &[
            "has 5 fields, the header has 4",
            "unquoted ','",
            "quote that value",
        ],
    );
}

#[test]
fn row_with_a_missing_field() {
    rejected_between_good_rows(
        b"2,Bo,2024-01-05",
        "malformed",
        "(row)",
        &[
            "has 3 field(s), the header has 4",
            "a value is missing; add it",
        ],
    );
}

#[test]
fn unterminated_quote() {
    // The quote opened on line 3 is never closed: only line 3 is rejected, with the lines
    // the value would have swallowed, and line 4 is read on its own and loads.
    let r = rehearse(&around(b"2,Bo,\"2.00,2024-01-05"));
    let rej = r.reject(3);
    assert_eq!(
        (rej.rule.as_str(), rej.field.as_str()),
        ("malformed", "(row)")
    );
    for s in [
        "opens on line 3 and is never closed",
        "lines 3–4",
        "a quote (\") is probably never closed",
        "reading goes on at line 4",
        "close the quote",
        "multiline = true",
    ] {
        assert!(rej.message.contains(s), "{s:?} not in {}", rej.message);
    }
    assert_eq!(rej.original[2], b"2.00,2024-01-05");
    assert_eq!(r.counts(), (3, 1, 2));
    assert_eq!(r.case.staged(), ["1", "3"]);
}

#[test]
fn ten_megabyte_value_in_a_free_text_column_loads_whole() {
    let big = "x".repeat(10 << 20);
    let r = rehearse(&around(format!("2,{big},1.00,2024-01-05").as_bytes()));
    assert_eq!(r.counts(), (3, 0, 3));
    assert_eq!(
        sqlite(
            &r.case.s.path("staging.db"),
            "SELECT length(name) FROM partner WHERE ref = '2'"
        ),
        (10 << 20).to_string()
    );
}

#[test]
fn ten_megabyte_value_in_a_decimal_column() {
    let big = "9".repeat(10 << 20);
    let rej = rejected_between_good_rows(
        format!("2,Bo,{big},2024-01-05").as_bytes(),
        "decimal",
        "amount",
        &["…[10485760 bytes]' is not a decimal", "e.g. 1234.56"],
    );
    assert!(
        rej.message.len() < 200,
        "a short message: {} bytes",
        rej.message.len()
    );
}

// --------------------------------------------------------------------- values

#[test]
fn european_decimal_comma_quoted() {
    rejected_between_good_rows(
        b"2,Bo,\"1.234,56\",2024-01-05",
        "decimal",
        "amount",
        &["'1.234,56' is not a decimal: write it as 1234.56"],
    );
}

#[test]
fn thousands_separator_in_a_decimal() {
    rejected_between_good_rows(
        b"2,Bo,\"1,234.50\",2024-01-05",
        "decimal",
        "amount",
        &["'1,234.50' is not a decimal: write it as 1234.50"],
    );
}

#[test]
fn impossible_date() {
    rejected_between_good_rows(
        b"2,Bo,1.00,31/02/2024",
        "date",
        "created",
        &[
            "'31/02/2024' is not a real date: February 2024 has no day 31 (read as DD/MM/YYYY)",
            "correct it in the source",
        ],
    );
}

#[test]
fn date_in_a_format_the_rule_does_not_accept() {
    rejected_between_good_rows(
        b"2,Bo,1.00,2024-1-5",
        "date",
        "created",
        &[
            "'2024-1-5' is not a date in an accepted format (YYYY-MM-DD, DD/MM/YYYY)",
            "write it as e.g. 2024-01-31",
        ],
    );
}

#[test]
fn too_many_decimal_places() {
    rejected_between_good_rows(
        b"2,Bo,1.005,2024-01-05",
        "decimal",
        "amount",
        &["'1.005' has more than 2 decimal places"],
    );
}

#[test]
fn duplicate_key() {
    rejected_between_good_rows(
        b"1,Bo,1.00,2024-01-05",
        "unique",
        "id",
        &[
            "duplicate '1': an earlier in-scope row has it",
            "keep one of the two in the source",
        ],
    );
}

// ---------------------------------------------------------------- environment

/// A rehearsal into `staging_url` that cannot connect: its preflight refuses it (exit 10),
/// fast, and the finding names the environment's url key, the server and why.
fn unreachable_staging(url: &str) {
    let case = Case::new(&RUNBOOK, &around(b"2,Bo,1.00,2024-01-05"));
    let t0 = std::time::Instant::now();
    let out = case.run("rehearse", &["--var", &format!("staging_url={url}")]);
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    assert!(err.contains(": environments.staging.url: "), "{err}");
    assert!(
        t0.elapsed().as_secs() < 10,
        "a refused connection is reported at once"
    );
    for s in [
        &format!("environment 'staging': cannot connect to {url}"),
        "Connection refused",
        "check that the server is running and reachable",
    ] {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
}

#[test]
fn unreachable_postgres_server() {
    unreachable_staging("postgres://postgres@127.0.0.1:1/x");
}

#[test]
fn unreachable_mariadb_server() {
    unreachable_staging("mysql://root@127.0.0.1:1/x");
}

#[test]
fn backup_folder_under_a_regular_file() {
    let case = Case::new(&RUNBOOK, &around(b"2,Bo,1.00,2024-01-05"));
    std::fs::write(case.s.path("file.txt"), "not a folder").unwrap();
    let backup = case.s.path("file.txt/sub").display().to_string();
    let out = case.run(
        "run",
        &[
            "--var",
            &format!("backup_dir={backup}"),
            "--sign-off",
            "Lee|lead|go|ok",
        ],
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 10, "{err}");
    let file = case.s.path("file.txt").display().to_string();
    for s in [
        &format!(": vars.backup_dir: backup folder {backup}: {file} is not a folder"),
        "choose a writable backup_dir",
        "nothing was changed",
    ] {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
    assert!(
        !case.s.path("production.db").exists(),
        "production is not touched"
    );
}

#[test]
fn disk_full_while_writing_rejects() {
    use cutover::engine::pipeline::{EntityJob, NoObserver, run_entity};
    let case = Case::new(&RUNBOOK, &around(b"2,Bo,1.234,56,2024-01-05"));
    let plan = cutover::runbook::load_str(&case.rb, &RUNBOOK, &[]).unwrap();
    sqlite(&case.s.path("staging.db"), sqlite_ddl());
    let rules = cutover::engine::rules::Compiled::new(
        "customers",
        &plan.rb.entities["customers"],
        &plan.rb.entities,
    )
    .unwrap();
    let job = EntityJob {
        phase: cutover::journal::events::Phase::DryRun,
        table: cutover::target::TableSpec {
            table: "partner".into(),
            key: "ref".into(),
            columns: rules.target_columns.clone(),
        },
        rules: std::sync::Arc::new(rules),
        file: case.s.path("extract/customers.csv"),
        reject_path: "/dev/full".into(),
        batch_size: 100,
        batch_bytes: 4 << 20,
        refs: Default::default(),
        keep_valid_keys: false,
        scope_refs: Default::default(),
        keep_scope_keys: false,
        keys: Default::default(),
        sum_fields: vec![],
        fingerprints: vec![],
        expected_rows: 3,
        resume: None,
        may_conflict: true,
        retry: cutover::engine::retry::RetryPolicy::from_settings(&plan.rb.settings),
        workers: 2,
        write_concurrency: 1,
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let err = rt.block_on(async {
        let pool = cutover::db::sqlite_pool(&case.s.url("staging.db"), false)
            .await
            .unwrap();
        let sink =
            cutover::target::sql::SqlTarget::new(cutover::db::Db::Sqlite(pool), "sqlite".into());
        let (progress, _) = tokio::sync::watch::channel(Vec::new());
        run_entity(job, &sink, &progress, &NoObserver)
            .await
            .err()
            .expect("a full disk is an error, not a lost reject")
    });
    let err = cutover::steps::explain(&err);
    for s in [
        "cannot write reject file /dev/full",
        "No space left on device",
        "the disk is full: free space there, or point --artifacts at a folder on another disk",
    ] {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
}

#[test]
fn failing_step_after_the_production_load_rolls_back() {
    let runbook = runbook_with(
        "[[steps]]\nid = \"verify\"",
        "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"echo smoke test failed >&2; exit 1\"\n\n[[steps]]\nid = \"verify\"",
    );
    let case = Case::new(&runbook, &around(b"2,Bo,1.00,2024-01-05"));
    let prod = case.s.path("production.db");
    sqlite(&prod, sqlite_ddl());
    sqlite(
        &prod,
        "INSERT INTO partner (ref, name, amount) VALUES ('OLD', 'already here', '9.99')",
    );
    let dump =
        "SELECT group_concat(id || ':' || ref || ':' || name || ':' || amount, ' ') FROM partner";
    let before = sqlite(&prod, dump);
    let out = case.run("run", &["--sign-off", "Lee|lead|go|ok"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 6, "{err}");
    for s in [
        "✗ smoke_test failed",
        "failed with exit code 1: smoke test failed",
        "Rollback verified: production restored from",
    ] {
        assert!(err.contains(s), "{s:?} not in {err}");
    }
    let j = json(&out);
    assert_eq!(
        j["entities"]["customers"]["loaded"], 3,
        "the load itself ran: {j}"
    );
    assert_eq!(j["rollback"]["ok"], true, "{j}");
    assert_eq!(
        sqlite(&prod, dump),
        before,
        "production is as it was before the run"
    );
}

#[test]
fn runbook_key_memory_zero() {
    check_text_refuses(
        format!("{}\n[settings]\nkey_memory_mb = 0\n", *RUNBOOK).as_bytes(),
        &[],
        "key_memory_mb = 0",
        "settings.key_memory_mb",
        &["key_memory_mb = 0", "between 1 and 65536 MiB"],
    );
}

#[test]
fn runbook_batch_memory_zero() {
    check_text_refuses(
        format!("{}\n[settings]\nbatch_memory_mb = 0\n", *RUNBOOK).as_bytes(),
        &[],
        "batch_memory_mb = 0",
        "settings.batch_memory_mb",
        &["batch_memory_mb = 0", "between 1 and 4096 MiB"],
    );
}

#[test]
fn runbook_batch_size_zero() {
    check_text_refuses(
        format!("{}\n[settings]\nbatch_size = 0\n", *RUNBOOK).as_bytes(),
        &[],
        "batch_size = 0",
        "settings.batch_size",
        &["batch_size = 0", "at least one row"],
    );
}

#[test]
fn runbook_entity_concurrency_out_of_range() {
    for n in ["0", "17"] {
        check_text_refuses(
            format!("{}\n[settings]\nentity_concurrency = {n}\n", *RUNBOOK).as_bytes(),
            &[],
            "entity_concurrency =",
            "settings.entity_concurrency",
            &[
                &format!("entity_concurrency = {n} is not between 1 and 16"),
                "one after another",
            ],
        );
    }
}

#[test]
fn runbook_password_in_a_url_query_string() {
    for url in [
        "postgres://app@db/prod?password=hunter2",
        "mysql://app@db/prod?ssl-mode=REQUIRED&password=hunter2",
    ] {
        let err = check_refuses(
            "url = \"${production_url}\"",
            &format!("url = \"{url}\""),
            "hunter2",
            "environments.production.url",
            &["a password is written into the runbook", "password_env"],
        );
        assert!(
            !err.contains("hunter2"),
            "the secret is never repeated: {err}"
        );
    }
}

#[test]
fn runbook_password_env_names_an_unset_variable() {
    check_refuses(
        "production = true",
        "production = true\npassword_env = \"CUTOVER_TEST_UNSET_PASSWORD\"",
        "password_env",
        "environments.production.password_env",
        &["CUTOVER_TEST_UNSET_PASSWORD", "which is not set", "export"],
    );
}

#[test]
fn a_password_in_the_journal_url_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rb = dir.path().join("rb.toml");
    std::fs::write(&rb, &*RUNBOOK).unwrap();
    let verbs: [&[&str]; 3] = [&["rehearse"], &["run"], &["summary"]];
    for url in [
        "postgres://postgres:hunter2@127.0.0.1:5432/journal",
        "postgres://postgres@127.0.0.1:5432/journal?password=hunter2",
    ] {
        for verb in verbs {
            let out = Command::new(BIN)
                .args(verb)
                .arg(&rb)
                .args(["--journal", url])
                .output()
                .unwrap();
            let err = stderr(&out);
            assert_eq!(code(&out), 2, "{verb:?} {url}: {err}");
            assert!(
                err.contains("--journal: the URL carries a password"),
                "{err}"
            );
            assert!(!err.contains("hunter2"), "{err}");
        }
        let out = Command::new(BIN)
            .args(["journal", "verify", "--journal", url])
            .output()
            .unwrap();
        assert_eq!(code(&out), 2, "{}", stderr(&out));
    }
}
