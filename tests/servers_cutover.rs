//! The reference cutover on the real servers: MariaDB legacy → PostgreSQL staging and
//! production (`runbooks/tms-postgres.toml`), and the same runbook pointed elsewhere by
//! its URLs. Every test creates and drops its own databases, roles and accounts; a server
//! that is down fails the test with the command that starts it.
//!
//! Expected figures come from the independent Python oracle run on the extract the run
//! itself wrote, never from the engine's own output.

mod common;
use common::*;

use common::servers::{Site, Users, runbook_ddl, temp_db, tms_pg};

use std::path::PathBuf;
use std::process::{Command, Output};

use cutover::db::Dialect;
use cutover::demo::GenOptions;
use cutover::testdb::TempDb;

/// The demo legacy on `legacy`, staging and production on `targets`.
fn site(tag: &str, legacy: Dialect, targets: Dialect) -> Site {
    Site::new(
        temp_db(legacy, tag),
        temp_db(targets, tag),
        temp_db(targets, tag),
        &GenOptions::demo(),
        Users::Role,
    )
}

/// MariaDB legacy, PostgreSQL staging and production: the reference layout.
fn reference(tag: &str) -> Site {
    site(tag, Dialect::MySql, Dialect::Postgres)
}

/// Rows and a content checksum of each production table, computed by the server.
fn production_state(site: &Site) -> String {
    table_state(&site.production)
}

fn table_state(db: &TempDb) -> String {
    let mut out = Vec::new();
    for t in [
        "res_partner",
        "fleet_vehicle",
        "hr_employee",
        "account_move",
    ] {
        let q = match db.dialect {
            Dialect::Postgres => format!(
                "SELECT CASE WHEN to_regclass('{t}') IS NULL THEN 'absent' ELSE \
                 (SELECT count(*) || ' ' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '-') FROM {t} x) END"
            ),
            _ => format!(
                "SELECT IF((SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{t}') = 0, 'absent', 'present')"
            ),
        };
        let mut v = db.exec(&q);
        if v == "present" {
            // CHECKSUM TABLE: MariaDB's own checksum of the table's contents.
            let sum = db.exec(&format!("CHECKSUM TABLE {t}"));
            v = format!(
                "{} {}",
                db.exec(&format!("SELECT COUNT(*) FROM {t}")),
                sum.split_whitespace().last().unwrap_or("")
            );
        }
        out.push(format!("{t}: {v}"));
    }
    out.join("\n")
}

fn extract_dir(summary: &serde_json::Value) -> PathBuf {
    PathBuf::from(summary["run"]["artifacts_dir"].as_str().unwrap()).join("extract")
}

/// Production holds exactly what the oracle says the extract's valid rows are.
fn assert_matches_oracle(db: &TempDb, want: &serde_json::Value) {
    for (entity, table) in [
        ("customers", "res_partner"),
        ("vehicles", "fleet_vehicle"),
        ("drivers", "hr_employee"),
        ("open_invoices", "account_move"),
    ] {
        let n = db.exec(&format!("SELECT COUNT(*) FROM {table}"));
        assert_eq!(
            n,
            want["entities"][entity]["valid"].to_string(),
            "{table} rows"
        );
    }
    let sum = |c: &str| {
        dec(&serde_json::Value::String(db.exec(&format!(
            "SELECT CAST(SUM({c}) AS CHAR(40)) FROM account_move"
        ))))
    };
    let o = &want["open_invoices_sums"];
    assert_eq!(sum("amount_total"), dec(&o["valid_total"]));
    assert_eq!(sum("amount_residual"), dec(&o["valid_residual"]));
    // And per currency, as the sum checks compare them.
    for (k, col) in [
        ("valid.amount_total", "amount_total"),
        ("valid.amount_residual", "amount_residual"),
    ] {
        let got: std::collections::BTreeMap<String, rust_decimal::Decimal> = db
            .exec(&format!(
                "SELECT currency, CAST(SUM({col}) AS CHAR(40)) FROM account_move GROUP BY currency"
            ))
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let (c, v) = l
                    .split_once(['|', '\t'])
                    .unwrap_or_else(|| panic!("not currency|sum: {l:?}"));
                let v = v.trim();
                let d = v.parse().unwrap_or_else(|e| panic!("{v:?}: {e}"));
                (c.trim().to_string(), d)
            })
            .collect();
        let want_cur: std::collections::BTreeMap<String, rust_decimal::Decimal> =
            want["open_invoices_sums_by_currency"][k]
                .as_object()
                .unwrap()
                .iter()
                .map(|(c, v)| (c.clone(), dec(v)))
                .collect();
        assert_eq!(got, want_cur, "{k} per currency");
    }
    // Every invoice's partner was resolved inside the database to its customer_id.
    let pairs = db
        .exec("SELECT m.name, p.ref FROM account_move m JOIN res_partner p ON p.id = m.partner_id");
    let got: std::collections::BTreeMap<String, String> = pairs
        .lines()
        .map(|l| {
            let (a, b) = l.split_once(['|', '\t']).unwrap();
            (a.to_string(), b.to_string())
        })
        .collect();
    let want_pairs: std::collections::BTreeMap<String, String> = want["invoice_partner"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got, want_pairs);
}

/// The legacy application can still read but no longer write, in its server's words.
fn assert_legacy_frozen(site: &Site) {
    let read = site.as_legacy_app("SELECT COUNT(*) FROM customers");
    assert!(read.status.success(), "{}", stderr(&read));
    let write = site.as_legacy_app("INSERT INTO customers (legacy_id) VALUES ('LATE-1')");
    assert!(!write.status.success(), "a write after the freeze landed");
    let refusal = match site.legacy.dialect {
        Dialect::MySql => "denied",
        _ => "read-only transaction",
    };
    assert!(stderr(&write).contains(refusal), "{}", stderr(&write));
}

/// The legacy application writes again (the rollback reopened it).
fn assert_legacy_reopened(site: &Site) {
    let write = site
        .as_legacy_app("INSERT INTO customers (legacy_id, status) VALUES ('AFTER-ROLLBACK', 'X')");
    assert!(write.status.success(), "{}", stderr(&write));
}

/// One of production's users logs in.
fn production_login(site: &Site) -> Output {
    site.as_production_user(&site.users_login, "SELECT 1")
}

#[test]
fn reference_cutover_mariadb_to_postgres_is_exact_frozen_and_idempotent() {
    let mut site = reference("ref");
    site.journal = Some(TempDb::postgres("journal"));
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &tms_pg());
    ok(&out, 0);
    let summary = json(&out);
    let want = oracle(&extract_dir(&summary));
    assert_matches_oracle(&site.production, &want);

    assert_legacy_frozen(&site);

    // Unfreeze let production's users back in.
    let login = production_login(&site);
    assert!(login.status.success(), "{}", stderr(&login));

    // A second load of the same extract changes nothing.
    let before = production_state(&site);
    let again = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &tms_pg());
    ok(&again, 0);
    assert_eq!(production_state(&site), before);

    // The PostgreSQL journal holds both runs and its chain verifies.
    let v = Command::new(BIN)
        .args(["journal", "verify", "--journal"])
        .arg(site.journal_arg())
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", stderr(&v));
    let runs = site
        .journal
        .as_ref()
        .unwrap()
        .exec("SELECT COUNT(*) FROM events WHERE kind = 'run_started'");
    assert_eq!(runs, "2");
}

#[test]
fn production_is_closed_to_its_users_from_the_backup_on() {
    let site = reference("closed");
    let out = site.cutover(&["run", "--until", "backup"], &tms_pg());
    ok(&out, 0);
    let login = production_login(&site);
    assert!(!login.status.success(), "a user got into production");
    assert!(
        stderr(&login).contains("permission denied for database"),
        "{}",
        stderr(&login)
    );
}

/// A step after the load fails: the rollback plan puts production back from its backup
/// exactly as it was (holding rows of its own first, when `own_rows`), the failed
/// command's output is on screen, and the legacy is its application's again.
fn failure_after_load_restores_production(site: &Site, own_rows: bool) {
    if own_rows {
        site.production.exec(&runbook_ddl(site.production.dialect));
        site.production.exec(
            "INSERT INTO res_partner (ref, name, credit_limit) VALUES ('EXISTING-1', 'Kept Customer', 10.50);
             INSERT INTO account_move (name, partner_id, currency, amount_untaxed, amount_tax, amount_total, amount_residual, payment_state)
               SELECT 'EXISTING-INV', id, 'EUR', 1, 0.19, 1.19, 1.19, 'not_paid' FROM res_partner;",
        );
    }
    let before = production_state(site);
    assert_ne!(before, "", "state was read");
    let runbook = site.runbook(
        None,
        Some((
            "verify",
            "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"echo smoke test failed >&2; exit 1\"\ntimeout = \"30s\"\n",
        )),
    );
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &runbook);
    ok(&out, 6);
    let s = json(&out);
    assert_eq!(s["rollback"]["ok"], true, "{s}");
    assert_eq!(production_state(site), before, "production restored");
    // The command's output reached the journal-backed summary via the step message.
    assert!(
        stderr(&out).contains("smoke test failed"),
        "{}",
        stderr(&out)
    );
    assert_legacy_reopened(site);
}

#[test]
fn failure_after_load_restores_postgres_production_to_its_exact_prior_state() {
    failure_after_load_restores_production(&reference("rollback"), true);
}

#[test]
fn mariadb_production_rolls_back_to_its_dump_then_loads_exactly() {
    // Legacy on PostgreSQL this time; staging and production on MariaDB.
    let site = site("myprod", Dialect::Postgres, Dialect::MySql);
    failure_after_load_restores_production(&site, false);

    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &tms_pg());
    ok(&out, 0);
    let want = oracle(&extract_dir(&json(&out)));
    assert_matches_oracle(&site.production, &want);
    // Unfreeze unlocked production's account again.
    let login = production_login(&site);
    assert!(login.status.success(), "{}", stderr(&login));
}

#[test]
fn postgres_legacy_freeze_refuses_writes_and_a_broken_freeze_stops_the_load() {
    // Legacy on PostgreSQL, targets on MariaDB: the URLs alone pick the drivers.
    let site = site("pgleg", Dialect::Postgres, Dialect::MySql);
    let out = site.cutover(&["run", "--until", "freeze"], &tms_pg());
    ok(&out, 0);
    assert_legacy_frozen(&site);

    // A privileged writer slips past the freeze before the load: the run must stop.
    let runbook = site.runbook(
        None,
        Some((
            "extract",
            &format!(
                "[[steps]]\nid = \"sneaky_write\"\nkind = \"command\"\nrun = \"psql -h 127.0.0.1 -U postgres -d {} -XAtc \\\"BEGIN READ WRITE; INSERT INTO customers (legacy_id) VALUES ('SNEAK'); COMMIT;\\\"\"\n",
                site.legacy.name
            ),
        )),
    );
    // The first run stopped after its freeze and would be resumed; this edited runbook
    // needs a new run (--fresh), which the freeze's journal entry does not block.
    let out = site.cutover(
        &["run", "--fresh", "--json", GO[0], GO[1], GO[2], GO[3]],
        &runbook,
    );
    // Caught before the load: the rollback plan runs (exit 6) and reopens the legacy.
    ok(&out, 6);
    assert!(
        stderr(&out).contains("changed after the freeze"),
        "{}",
        stderr(&out)
    );
    assert_legacy_reopened(&site);
    // The load never started: production has no table of the cutover's.
    assert_eq!(
        site.production.exec(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'account_move'"
        ),
        "0"
    );
}

#[test]
fn rows_the_database_refuses_go_to_the_reject_file_with_its_message() {
    let site = reference("dbreject");
    // Staging enforces a rule the runbook does not know: no vehicle over 25 t.
    site.staging.exec(&runbook_ddl(Dialect::Postgres));
    site.staging.exec(
        "ALTER TABLE fleet_vehicle ADD CONSTRAINT fleet_vehicle_max_25t CHECK (capacity_kg <= 25000);
         ALTER TABLE account_move ADD CONSTRAINT account_move_max CHECK (amount_total <= 29600)",
    );
    let out = site.cutover(&["rehearse", "--json"], &tms_pg());
    // Reject file and counts: the database's refusals are rejects, not a failed step.
    assert!(matches!(code(&out), 0 | 3), "{}", stderr(&out));
    let s = json(&out);
    let v = &s["entities"]["vehicles"];
    let mut rdr = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(v["reject_file"].as_str().unwrap())
        .unwrap();
    let hdr = rdr.headers().unwrap().clone();
    let col = |n: &str| hdr.iter().position(|h| h == n).unwrap();
    let (cap, rule, msg) = (col("capacity_kg"), col("_rule"), col("_message"));
    let refused: Vec<csv::StringRecord> = rdr
        .records()
        .map(|r| r.unwrap())
        .filter(|r| r[rule].contains("database"))
        .collect();
    assert!(!refused.is_empty(), "no row was refused by the database");
    for r in &refused {
        assert!(r[cap].trim().parse::<i64>().unwrap() > 25000, "{r:?}");
        assert!(r[msg].contains("fleet_vehicle_max_25t"), "{r:?}");
    }
    // Every other valid vehicle is in staging, and no heavy one.
    let loaded: u64 = site
        .staging
        .exec("SELECT COUNT(*) FROM fleet_vehicle")
        .parse()
        .unwrap();
    assert_eq!(loaded, v["loaded"].as_u64().unwrap());
    assert_eq!(
        v["loaded"], v["valid"],
        "refused rows count as rejected, not valid"
    );
    assert_eq!(
        site.staging
            .exec("SELECT COUNT(*) FROM fleet_vehicle WHERE capacity_kg > 25000"),
        "0"
    );
    // Invoices the database refused leave the valid sums and the partner fingerprint
    // with their rows, so the reconciliation of what did load still balances.
    let inv = &s["entities"]["open_invoices"];
    assert_eq!(inv["loaded"], inv["valid"]);
    let checks = s["checks"].as_array().unwrap();
    let refused_inv = site.staging.exec("SELECT COUNT(*) FROM account_move");
    assert!(refused_inv.parse::<u64>().unwrap() > 0);
    for c in checks.iter().filter(|c| c["entity"] == "open_invoices") {
        if c["name"] != "reject rate within budget" {
            assert_eq!(c["status"], "pass", "{c}");
        }
    }
    // Per currency, each balancing on its own: refused rows left their currency's sum.
    let per_currency: Vec<&serde_json::Value> = checks
        .iter()
        .filter(|c| {
            c["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("SUM(amount_total) "))
        })
        .collect();
    assert!(per_currency.len() >= 2, "{checks:?}");
    for c in per_currency {
        // Rows with a blank currency are checked as "(none)", which is not money.
        let blank = c["name"].as_str().is_some_and(|n| n.ends_with(" (none)"));
        assert_eq!(c["currency"].is_string(), !blank, "{c}");
        assert_eq!(c["status"], "pass", "{c}");
    }
}
