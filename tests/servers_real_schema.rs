//! `runbooks/rentals.toml` on the real servers, through the real binary: rentals of active
//! customers (`in_scope_of`), a scope domain, datetimes in a source zone with DST, a
//! lookup returning a key column not named id, a nullable lookup, and a value map with a
//! default. The full run (extract → dry run → validate → sign-off → load → verify) goes
//! into PostgreSQL and into MariaDB; the loaded rows and every reject are asserted exactly.

mod common;
use common::*;

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use cutover::testdb::TempDb;

const CUSTOMERS: &str = "customer_id,first_name,email,active,create_date
1,Mary,mary@example.org,1,2006-02-14 22:04:36
2,Patricia,pat@example.org,0,2006-02-14 22:04:36
3,Linda,,1,2006-02-14 22:04:37.5
4,Barbara,barb@example.org,Y,2006-02-14 22:04:36
5,Elizabeth,liz@example.org,1,2006-02-30 10:00:00
";
// line 2: customer 1 (in scope, valid)       line 3: customer 2 (active 0: out of scope)
// line 4: customer 3 (fraction of a second)  line 5: 'Y' is outside the domain: rejected
// line 6: February 30th: rejected (in scope)

const STAFF: &str = "staff_id,name\n1,Mike\n2,Jon\n";

const RENTALS: &str = "rental_id,rental_date,customer_id,staff_id,return_date,state
10,2005-05-24 22:53:30,1,1,2005-05-26 22:04:30,open
11,2005-05-24 22:54:33,2,1,,open
12,15/01/2024 09:30,3,,,weird
13,2024-01-01 10:00:00,4,1,,open
14,2024-01-01 10:00:00,99,1,,open
15,2024-03-31 02:30:00,1,1,,open
16,2024-10-27 02:30:00,1,1,,open
17,2024-01-01 10:00:00,1,7,,open
18,2024-06-01 12:00:00.25,3,2,,paid
19,2024-01-01 10:00:00,5,1,,open
";

/// Rentals loaded: legacy id, rented_at and returned_at in UTC, customer, staff, state.
const WANT_RENTALS: &[&str] = &[
    // Paris summer time (+02:00); the return too.
    "10|2005-05-24 20:53:30.000000|2005-05-26 20:04:30.000000|1|1|not_paid",
    // Second format, winter time (+01:00); no return, no staff: NULLs; unmapped state: default.
    "12|2024-01-15 08:30:00.000000|NULL|3|NULL|unknown",
    "18|2024-06-01 10:00:00.250000|NULL|3|2|paid",
];

const WANT_CUSTOMERS: &[&str] = &[
    "1|Mary|2006-02-14 22:04:36.000000",
    "3|Linda|2006-02-14 22:04:37.500000",
];

/// (file, line, rule) of every reject of the load.
const WANT_REJECTS: &[(&str, u64, &str)] = &[
    ("customers", 5, "scope"),
    ("customers", 6, "datetime"),
    ("rentals", 5, "reference"), // customer 4 is in scope but rejected
    ("rentals", 6, "scope"),     // customer 99 exists nowhere
    ("rentals", 7, "datetime"),  // 02:30 on 31 March does not exist in Paris
    ("rentals", 8, "datetime"),  // 02:30 on 27 October happens twice
    ("rentals", 9, "lookup"),    // staff 7: a nullable lookup that would find nothing
    ("rentals", 11, "reference"),
];

fn run_into(staging: &TempDb, production: &TempDb) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let ex = dir.path().join("extract");
    std::fs::create_dir_all(&ex).unwrap();
    for (f, text) in [
        ("customer.csv", CUSTOMERS),
        ("staff.csv", STAFF),
        ("rental.csv", RENTALS),
    ] {
        std::fs::write(ex.join(f), text).unwrap();
    }
    let out = Command::new(BIN)
        .arg("run")
        .arg(repo().join("runbooks/rentals.toml"))
        .args(["--headless", "--json", "--var"])
        .arg(format!("extract_dir={}", ex.display()))
        .arg("--var")
        .arg(format!("staging_url={}", staging.url()))
        .arg("--var")
        .arg(format!("production_url={}", production.url()))
        .arg("--journal")
        .arg(dir.path().join("journal.db"))
        .args(["--sign-off", "Migration lead|migration_lead|go|rehearsed"])
        .current_dir(dir.path())
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let report = json(&out);
    let mut rejects = BTreeSet::new();
    for name in ["customers", "staff", "rentals"] {
        let path = report["entities"][name]["reject_file"].as_str().unwrap();
        let path = dir.path().join(path);
        let mut rdr = csv::Reader::from_path(Path::new(&path)).unwrap();
        let hdr = rdr.headers().unwrap().clone();
        let at = |h: &str| hdr.iter().position(|x| x == h).unwrap();
        let (li, ri) = (at("_line"), at("_rule"));
        for r in rdr.records() {
            let r = r.unwrap();
            rejects.insert((name, r[li].parse::<u64>().unwrap(), r[ri].to_string()));
        }
    }
    let want: BTreeSet<(&str, u64, String)> = WANT_REJECTS
        .iter()
        .map(|(f, l, r)| (*f, *l, r.to_string()))
        .collect();
    assert_eq!(rejects, want);
    for (name, in_file, in_scope, valid, rejected) in [
        ("customers", 5, 4, 2, 2),
        ("staff", 2, 2, 2, 0),
        ("rentals", 10, 9, 3, 6),
    ] {
        let e = &report["entities"][name];
        assert_eq!(e["in_file"], in_file, "{name}");
        assert_eq!(e["in_scope"], in_scope, "{name}: the rest is out of scope");
        assert_eq!(e["valid"], valid, "{name}");
        assert_eq!(e["rejected"], rejected, "{name}");
        assert_eq!(e["loaded"], valid, "{name}");
    }
    report
}

fn lines(s: String) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

#[test]
fn rentals_of_active_customers_into_postgresql() {
    let staging = TempDb::postgres("rentals_stg");
    let production = TempDb::postgres("rentals_prod");
    // The database's own zone far from UTC (psql reads in it): the stored moment,
    // converted back to UTC below, is still the source's local time moved to UTC.
    production.exec(&format!(
        "ALTER DATABASE {} SET timezone = 'Asia/Tokyo'",
        production.name
    ));
    run_into(&staging, &production);
    let us = "'YYYY-MM-DD HH24:MI:SS.US'";
    assert_eq!(
        lines(production.exec(&format!(
            "SELECT r.legacy_id || '|' || to_char(r.rented_at, {us}) || '|' || \
             coalesce(to_char(r.returned_at, {us}), 'NULL') || '|' || c.legacy_id || '|' || \
             coalesce(s.legacy_id::text, 'NULL') || '|' || r.payment_state \
             FROM rental r JOIN customer c ON c.customer_pk = r.customer_pk \
             LEFT JOIN staff s ON s.staff_pk = r.staff_pk ORDER BY r.legacy_id"
        ))),
        WANT_RENTALS
    );
    assert_eq!(
        lines(production.exec(&format!(
            "SELECT legacy_id || '|' || first_name || '|' || \
             to_char(created_at AT TIME ZONE 'UTC', {us}) FROM customer ORDER BY legacy_id"
        ))),
        WANT_CUSTOMERS
    );
    // An empty e-mail is an empty string, a missing staff a real NULL.
    assert_eq!(
        production.exec("SELECT count(*) FROM rental WHERE staff_pk IS NULL"),
        "1"
    );
}

#[test]
fn rentals_of_active_customers_into_mariadb() {
    let staging = TempDb::mysql("rentals_stg");
    let production = TempDb::mysql("rentals_prod");
    run_into(&staging, &production);
    let us = "'%Y-%m-%d %H:%i:%s.%f'";
    assert_eq!(
        lines(production.exec(&format!(
            "SELECT CONCAT_WS('|', r.legacy_id, DATE_FORMAT(r.rented_at, {us}), \
             COALESCE(DATE_FORMAT(r.returned_at, {us}), 'NULL'), c.legacy_id, \
             COALESCE(s.legacy_id, 'NULL'), r.payment_state) \
             FROM rental r JOIN customer c ON c.customer_pk = r.customer_pk \
             LEFT JOIN staff s ON s.staff_pk = r.staff_pk ORDER BY r.legacy_id"
        ))),
        WANT_RENTALS
    );
    assert_eq!(
        lines(production.exec(&format!(
            "SELECT CONCAT_WS('|', legacy_id, first_name, DATE_FORMAT(created_at, {us})) \
             FROM customer ORDER BY legacy_id"
        ))),
        WANT_CUSTOMERS
    );
    assert_eq!(
        production.exec("SELECT count(*) FROM rental WHERE staff_pk IS NULL"),
        "1"
    );
}
