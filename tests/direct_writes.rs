//! Direct writes on the real servers: into a table that was empty when the step began,
//! rows go in without the upsert (PostgreSQL: COPY straight into the table, or an INSERT
//! without ON CONFLICT; MariaDB: an INSERT without ON DUPLICATE KEY). A key twice in the
//! file without a `unique` rule is then refused by the database's own key, bisected, and
//! rejected with its line and the database's reason; a load killed after a batch commits
//! and resumed neither duplicates nor drops a row.

mod common;
use common::*;

use std::process::{Command, Output};

use cutover::testdb::TempDb;

/// The reference runbook without the customers' `unique` rule, batches of 3, and a
/// customers file whose C02 comes back in the next batch and whose C06 twice in one.
fn duplicate_site() -> Scratch {
    let s = Scratch::with_fixture("small");
    let rb = std::fs::read_to_string(tms())
        .unwrap()
        .replacen("  { rule = \"unique\", field = \"legacy_id\" },\n", "", 1)
        .replace("batch_size = 1000", "batch_size = 3");
    std::fs::write(s.path("tms.toml"), rb).unwrap();
    let mut csv = String::from("legacy_id,name,email,phone,city,created,credit_limit,status\n");
    for (id, name) in [
        ("C01", "first"),
        ("C02", "first"),
        ("C03", "first"),
        ("C04", "first"),
        ("C02", "again"), // line 6: a key an earlier batch committed
        ("C05", "first"),
        ("C06", "first"),
        ("C06", "again"), // line 9: the same key earlier in this batch
        ("C07", "first"),
        ("C08", "first"),
    ] {
        csv.push_str(&format!("{id},{name},a@b.org,,,2024-01-05,1.00,A\n"));
    }
    std::fs::write(s.path("extract/customers.csv"), csv).unwrap();
    std::fs::write(
        s.path("extract/open_invoices.csv"),
        "invoice_no,customer_id,invoice_date,currency,amount_untaxed,amount_tax,amount_total,amount_residual,state\n",
    )
    .unwrap();
    s
}

fn rehearse_into(s: &Scratch, staging: &TempDb) -> serde_json::Value {
    let out = Command::new(BIN)
        .arg("rehearse")
        .arg(s.path("tms.toml"))
        .args(s.flags())
        .args(["--var", &format!("staging_url={}", staging.url())])
        .arg("--json")
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap();
    assert!(matches!(code(&out), 0 | 3), "{}", stderr(&out));
    json(&out)
}

/// The reject file's rows the database refused: (line, message).
fn database_rejects(summary: &serde_json::Value) -> Vec<(u64, String)> {
    let path = summary["entities"]["customers"]["reject_file"]
        .as_str()
        .unwrap();
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .unwrap();
    let hdr = rdr.headers().unwrap().clone();
    let col = |n: &str| hdr.iter().position(|h| h == n).unwrap();
    let (line, rule, msg) = (col("_line"), col("_rule"), col("_message"));
    rdr.records()
        .map(|r| r.unwrap())
        .filter(|r| &r[rule] == "database")
        .map(|r| (r[line].parse().unwrap(), r[msg].to_string()))
        .collect()
}

fn assert_duplicates_refused(summary: &serde_json::Value, staging: &TempDb, says: &[&str]) {
    let rejects = database_rejects(summary);
    assert_eq!(
        rejects.iter().map(|r| r.0).collect::<Vec<_>>(),
        [6, 9],
        "{rejects:?}"
    );
    for (line, msg) in &rejects {
        let key = if *line == 6 { "C02" } else { "C06" };
        for s in says {
            assert!(msg.contains(s), "line {line}: {msg}");
        }
        assert!(msg.contains(key), "line {line} names its key: {msg}");
    }
    let c = &summary["entities"]["customers"];
    assert_eq!(c["loaded"], 8, "{c}");
    assert_eq!(c["valid"], 8, "refused rows are not valid: {c}");
    // The first of each key stays, unchanged by the second.
    assert_eq!(
        staging.exec("SELECT COUNT(*) FROM res_partner WHERE name = 'again'"),
        "0"
    );
    assert_eq!(
        staging.exec("SELECT COUNT(DISTINCT ref) FROM res_partner"),
        "8"
    );
    assert_eq!(staging.exec("SELECT COUNT(*) FROM res_partner"), "8");
}

#[test]
fn postgres_refuses_a_duplicate_key_written_directly_and_rejects_it_with_its_line() {
    let s = duplicate_site();
    let staging = TempDb::postgres("direct_dup");
    let summary = rehearse_into(&s, &staging);
    assert_duplicates_refused(
        &summary,
        &staging,
        &[
            "duplicate key value violates unique constraint",
            "already exists",
        ],
    );
}

#[test]
fn mariadb_refuses_a_duplicate_key_written_directly_and_rejects_it_with_its_line() {
    let s = duplicate_site();
    let staging = TempDb::mysql("direct_dup");
    let summary = rehearse_into(&s, &staging);
    assert_duplicates_refused(&summary, &staging, &["Duplicate entry"]);
}

/// Each production table's content without its generated ids (a resumed upsert draws
/// sequence values of its own), an invoice's partner by its `ref`.
fn production_content(db: &TempDb) -> String {
    let plain = |t: &str, key: &str| {
        db.exec(&format!(
            "SELECT COUNT(*) || ' ' || COUNT(DISTINCT {key}) || ' ' || \
             md5(string_agg((to_jsonb(t) - 'id')::text, ',' ORDER BY {key})) FROM {t} t"
        ))
    };
    let moves = db.exec(
        "SELECT COUNT(*) || ' ' || COUNT(DISTINCT m.name) || ' ' || \
         md5(string_agg(((to_jsonb(m) - 'id' - 'partner_id') || jsonb_build_object('p', p.ref))::text, \
         ',' ORDER BY m.name)) FROM account_move m JOIN res_partner p ON p.id = m.partner_id",
    );
    format!(
        "res_partner {}\nfleet_vehicle {}\nhr_employee {}\naccount_move {moves}",
        plain("res_partner", "ref"),
        plain("fleet_vehicle", "ref"),
        plain("hr_employee", "ref"),
    )
}

fn run_into(dir: &std::path::Path, production: &TempDb, fault: Option<&str>) -> Output {
    let url = |f: &str| format!("sqlite://{}", dir.join(f).display());
    let mut cmd = Command::new(BIN);
    cmd.arg("run")
        .arg(dir.join("tms.toml"))
        .arg("--headless")
        .args(["--var", &format!("legacy_url={}", url("legacy.db"))])
        .args(["--var", &format!("staging_url={}", url("staging.db"))])
        .args(["--var", &format!("production_url={}", production.url())])
        .args([
            "--var",
            &format!("backup_dir={}", dir.join("backups").display()),
        ])
        .args(GO)
        .env_remove("CUTOVER_JOURNAL")
        .env_remove("CUTOVER_FAULT");
    if let Some(f) = fault {
        cmd.env("CUTOVER_FAULT", f);
    }
    cmd.output().unwrap()
}

#[test]
fn a_direct_load_into_postgres_killed_after_a_commit_resumes_without_duplicates_or_gaps() {
    // The same legacy data twice: one run left alone, one killed after its third load
    // batch committed but before the journal knew, then resumed.
    let reference = small_reference_site(150, 400, 120, 80, 900);
    let whole = TempDb::postgres("direct_whole");
    let out = run_into(reference.path(), &whole, None);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    let site = small_reference_site(150, 400, 120, 80, 900);
    let production = TempDb::postgres("direct_resume");
    let killed = run_into(
        site.path(),
        &production,
        Some("before:batch_committed.load#3:kill"),
    );
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    // The batch went in although the journal does not know it: the resume must meet it.
    let held: u64 = production
        .exec(
            "SELECT (SELECT COUNT(*) FROM res_partner) + (SELECT COUNT(*) FROM fleet_vehicle) \
             + (SELECT COUNT(*) FROM hr_employee) + (SELECT COUNT(*) FROM account_move)",
        )
        .parse()
        .unwrap();
    assert!(held > 0, "{held} rows after the kill");
    let resumed = run_into(site.path(), &production, None);
    assert_eq!(code(&resumed), 0, "{}", stderr(&resumed));
    assert!(
        stderr(&resumed).contains("resuming run"),
        "{}",
        stderr(&resumed)
    );
    assert_eq!(production_content(&production), production_content(&whole));
    // The resumed batch was upserted, not refused as duplicates of itself.
    assert_eq!(database_refusals(site.path()), 0);
    assert_eq!(database_refusals(reference.path()), 0);
}

/// Rows any reject file under `dir` holds because the database refused them.
fn database_refusals(dir: &std::path::Path) -> usize {
    fn walk(d: &std::path::Path, n: &mut usize) {
        for e in std::fs::read_dir(d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, n);
            } else if p.to_string_lossy().ends_with(".rejects.csv") {
                let text = std::fs::read_to_string(&p).unwrap();
                *n += text.lines().filter(|l| l.contains(",database,")).count();
            }
        }
    }
    let mut n = 0;
    walk(dir, &mut n);
    n
}
