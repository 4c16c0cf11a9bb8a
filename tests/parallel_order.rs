//! Rows checked on several threads, and batches written several at a time, give exactly
//! what one thread writing one batch at a time gives: the same reject files byte for byte
//! (lines, order, reasons), the same counts, sums and fingerprints, the same target rows.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use cutover::testdb::TempDb;

/// A dirty extract (every kind of bad row of the demo), several chunks per entity.
fn dirty_extract() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let opts = cutover::demo::GenOptions {
        customers: 6_000,
        vehicles: 1_500,
        drivers: 1_000,
        invoices: 12_000,
        ..cutover::demo::GenOptions::demo()
    };
    cutover::demo::write_csv_extracts(&dir.path().join("extract"), &opts).unwrap();
    dir
}

/// What a rehearsal leaves that must not depend on the threads: each entity's figures
/// from the journal (counts, sums, fingerprints) and its reject file's bytes.
#[derive(Debug, PartialEq)]
struct Outcome {
    entities: BTreeMap<String, serde_json::Value>,
    rejects: BTreeMap<String, Vec<u8>>,
}

/// `cutover rehearse` of `runbook` (from `runbooks/`) with `workers` threads and
/// `write_concurrency` batches in flight, batches of 250 rows, into `staging_url`.
fn rehearse(
    runbook: &str,
    extract: &Path,
    workers: usize,
    write_concurrency: usize,
    staging_url: &str,
) -> Outcome {
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(repo().join("runbooks").join(runbook)).unwrap();
    let settings = format!(
        "[settings]\nworkers = {workers}\nwrite_concurrency = {write_concurrency}\nbatch_size = 250\n"
    );
    let mut out = String::new();
    let mut skipping = false;
    for line in text.lines() {
        if line.starts_with('[') {
            skipping = line.trim() == "[settings]";
            if skipping {
                out.push_str(&settings);
                continue;
            }
        }
        // Only the batch size is replaced; the retries and the rest stay as shipped.
        if skipping && line.starts_with("batch_size") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    let rb = dir.path().join("rb.toml");
    std::fs::write(&rb, out).unwrap();
    let artifacts = dir.path().join("runs");
    let res = std::process::Command::new(BIN)
        .arg("rehearse")
        .arg(&rb)
        .args(["--headless", "--json", "--var", "legacy_url="])
        .arg("--var")
        .arg(format!("extract_dir={}", extract.display()))
        .arg("--var")
        .arg(format!("staging_url={staging_url}"))
        .arg("--journal")
        .arg(dir.path().join("journal.db"))
        .arg("--artifacts")
        .arg(&artifacts)
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap();
    assert!(
        matches!(code(&res), 0 | 3),
        "rehearse with {workers} workers: exit {}\n{}",
        code(&res),
        stderr(&res)
    );
    let entities = entity_figures(&dir.path().join("journal.db"));
    assert!(entities.len() >= 4, "{entities:?}");
    let mut rejects = BTreeMap::new();
    for f in files_under(&artifacts) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".rejects.csv") {
            rejects.insert(name, std::fs::read(&f).unwrap());
        }
    }
    assert!(rejects.len() >= 4, "{rejects:?}");
    Outcome { entities, rejects }
}

/// Each `entity_finished` record of the journal, without its duration.
fn entity_figures(journal: &Path) -> BTreeMap<String, serde_json::Value> {
    let rows = sqlite(
        journal,
        "SELECT payload FROM events WHERE kind = 'entity_finished' ORDER BY seq",
    );
    rows.lines()
        .map(|l| {
            let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
            let obj = v.as_object_mut().unwrap();
            obj.remove("duration_ms");
            obj.remove("reject_file");
            let name = obj["entity"].as_str().unwrap().to_string();
            (name, serde_json::Value::Object(obj.clone()))
        })
        .collect()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                todo.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

#[test]
fn one_worker_and_four_give_the_same_rejects_figures_and_rows_in_sqlite() {
    let ex = dirty_extract();
    let extract = ex.path().join("extract");
    let one_db = ex.path().join("one.db");
    let four_db = ex.path().join("four.db");
    let one = rehearse(
        "tms.toml",
        &extract,
        1,
        1,
        &format!("sqlite://{}", one_db.display()),
    );
    let four = rehearse(
        "tms.toml",
        &extract,
        4,
        1,
        &format!("sqlite://{}", four_db.display()),
    );
    // The dirty extract has rejects of every kind in every entity's file.
    for (name, bytes) in &one.rejects {
        assert!(
            bytes.iter().filter(|&&b| b == b'\n').count() > 10,
            "{name} has rejects"
        );
    }
    assert_eq!(
        one.rejects.keys().collect::<Vec<_>>(),
        four.rejects.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &one.rejects {
        assert!(
            bytes == &four.rejects[name],
            "{name} differs between 1 and 4 workers"
        );
    }
    assert_eq!(one.entities, four.entities);
    for table in [
        "res_partner",
        "fleet_vehicle",
        "hr_employee",
        "account_move",
    ] {
        let q = format!("SELECT * FROM {table} ORDER BY 1");
        let (a, b) = (sqlite(&one_db, &q), sqlite(&four_db, &q));
        assert!(
            a.lines().count() > 500,
            "{table}: {} rows",
            a.lines().count()
        );
        assert!(a == b, "{table} differs between 1 and 4 workers");
    }
}

#[test]
fn overlapped_writes_into_postgres_give_the_same_rejects_figures_and_rows() {
    let ex = dirty_extract();
    let extract = ex.path().join("extract");
    let (db1, db4) = (
        TempDb::postgres("par_order_one"),
        TempDb::postgres("par_order_four"),
    );
    let one = rehearse("tms-postgres.toml", &extract, 1, 1, &db1.url());
    let four = rehearse("tms-postgres.toml", &extract, 4, 4, &db4.url());
    assert_eq!(
        one.rejects.keys().collect::<Vec<_>>(),
        four.rejects.keys().collect::<Vec<_>>()
    );
    for (name, bytes) in &one.rejects {
        assert!(bytes == &four.rejects[name], "{name} differs");
    }
    assert_eq!(one.entities, four.entities);
    // Every column but the generated ids, which follow the order of the inserts: an
    // invoice's customer by its key instead.
    for (table, row) in [
        ("res_partner", "to_jsonb(x) - 'id'"),
        ("fleet_vehicle", "to_jsonb(x) - 'id'"),
        ("hr_employee", "to_jsonb(x) - 'id'"),
        (
            "account_move",
            "to_jsonb(x) - 'id' - 'partner_id' || jsonb_build_object('partner', \
             (SELECT ref FROM res_partner p WHERE p.id = x.partner_id))",
        ),
    ] {
        let q = format!(
            "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t::text)) FROM \
             (SELECT {row} AS t FROM {table} x) s"
        );
        let (a, b) = (db1.exec(&q), db4.exec(&q));
        let rows: u64 = a.split('|').next().unwrap().trim().parse().unwrap();
        assert!(rows > 500 && a == b, "{table}: {a} vs {b}");
    }
}
