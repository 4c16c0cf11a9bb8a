//! Reference-data generator for the legacy TMS cutover scenario
//! ([`docs/reference-scenario.md`](../docs/reference-scenario.md) in the repository).
//!
//! It produces the four legacy tables (`customers`, `vehicles`, `drivers`,
//! `open_invoices`) either as CSV extracts or as a SQLite "legacy system" whose
//! columns are all `TEXT`. Generation is:
//!
//! - **deterministic**: a tiny splitmix64 PRNG seeded per (seed, table, row index), so the
//!   same [`GenOptions`] give byte-identical output on every machine;
//! - **streaming**: rows come from iterators ([`rows`]); no table is ever collected, so
//!   memory stays flat at a million invoices;
//! - **dirty on request**: with `dirty = true` a fixed catalogue of hand-written bad rows
//!   (one or more for every rule in the scenario) is spread evenly among the generated
//!   rows, in a fixed order so that "first occurrence" semantics are exercised.
//!
//! The counts in [`GenOptions`] are the numbers of *generated* rows; in dirty mode the
//! special rows (a few dozen per table) come on top.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use anyhow::Context as _;
use chrono::{Datelike, Duration, NaiveDate};
use sqlx::Connection as _;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};

/// One row of a legacy table: every value is text, in column order.
pub type Row = Vec<String>;

/// The four legacy tables of the reference scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Table {
    Customers,
    Vehicles,
    Drivers,
    OpenInvoices,
}

impl Table {
    /// All tables, in load order (customers before the invoices that reference them).
    pub const ALL: [Table; 4] = [
        Table::Customers,
        Table::Vehicles,
        Table::Drivers,
        Table::OpenInvoices,
    ];

    /// Table name, which is also the CSV file stem.
    pub fn name(self) -> &'static str {
        match self {
            Table::Customers => "customers",
            Table::Vehicles => "vehicles",
            Table::Drivers => "drivers",
            Table::OpenInvoices => "open_invoices",
        }
    }

    /// Column names exactly as in the scenario's "Extract files" table.
    pub fn columns(self) -> &'static [&'static str] {
        match self {
            Table::Customers => &[
                "legacy_id",
                "name",
                "email",
                "phone",
                "city",
                "created",
                "credit_limit",
                "status",
            ],
            Table::Vehicles => &[
                "legacy_id",
                "plate",
                "vin",
                "make",
                "model",
                "year",
                "capacity_kg",
            ],
            Table::Drivers => &[
                "legacy_id",
                "name",
                "license_no",
                "license_expiry",
                "status",
            ],
            Table::OpenInvoices => &[
                "invoice_no",
                "customer_id",
                "invoice_date",
                "currency",
                "amount_untaxed",
                "amount_tax",
                "amount_total",
                "amount_residual",
                "state",
            ],
        }
    }

    fn salt(self) -> u64 {
        match self {
            Table::Customers => 0x6375_7374,
            Table::Vehicles => 0x7665_6869,
            Table::Drivers => 0x6472_6976,
            Table::OpenInvoices => 0x696e_766f,
        }
    }
}

/// Rows of [`GenOptions::demo`]: customers, vehicles, drivers and invoices together.
pub const DEMO_ROWS: usize = 4_000;

/// What the demo's runbook sets, relative to its own folder: the demo folder carries its
/// own values, so `cutover run cutover-demo/tms.toml` (and `sign`, `summary`, `journal
/// verify`) work on it without `--var` flags.
pub const DEMO_VARS: [(&str, &str); 5] = [
    ("extract_dir", "extract"),
    ("legacy_url", "sqlite://legacy.db"),
    ("staging_url", "sqlite://staging.db"),
    ("production_url", "sqlite://production.db"),
    ("backup_dir", "backups"),
];

/// The reference runbook with its `[vars]` set to [`DEMO_VARS`] (comments kept, a note
/// on each changed line). Every variable must be in the template: a renamed one is an error
/// here, not a demo that silently reads the sample extract.
pub fn demo_runbook(template: &str) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 256);
    let mut in_vars = false;
    let mut set = std::collections::BTreeSet::new();
    for line in template.lines() {
        let t = line.trim_start();
        if t.starts_with('[') {
            in_vars = t.starts_with("[vars]");
        }
        let key = t.split('=').next().unwrap_or("").trim();
        match DEMO_VARS
            .iter()
            .find(|(k, _)| in_vars && *k == key && t.contains('='))
        {
            Some((k, v)) => {
                set.insert(*k);
                out.push_str(&format!(
                    "{k} = \"{v}\"   # set by `cutover demo`, beside this file"
                ));
            }
            None => out.push_str(line),
        }
        out.push('\n');
    }
    for (k, _) in DEMO_VARS {
        anyhow::ensure!(
            set.contains(k),
            "the reference runbook has no var {k} in [vars]"
        );
    }
    Ok(out)
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenOptions {
    pub seed: u64,
    /// Generated customers (dirty mode adds its special rows on top).
    pub customers: usize,
    pub vehicles: usize,
    pub drivers: usize,
    pub invoices: usize,
    /// Mix in out-of-scope rows and the catalogue of rows that break the rules.
    pub dirty: bool,
    /// Percent (0–100) of the generated rows given one defect a rule rejects (benchmarks:
    /// realistic reject volumes). Keys stay unique and amounts stay numbers, so `psql \copy`
    /// still takes every file; an invoice never names a broken customer, so no reject
    /// cascades.
    pub dirty_pct: u32,
}

impl GenOptions {
    /// The demo data set: a few thousand rows, every kind of dirty row included.
    pub fn demo() -> Self {
        GenOptions {
            seed: 20_261_121,
            customers: 1_000,
            vehicles: 300,
            drivers: 200,
            invoices: 2_500,
            dirty: true,
            dirty_pct: 0,
        }
    }

    /// The demo data set scaled to about `rows` generated rows (the dirty rows on top), in
    /// the demo's proportions; `DEMO_ROWS` gives exactly [`GenOptions::demo`].
    pub fn demo_rows(rows: usize) -> Self {
        let d = GenOptions::demo();
        let part = |n: usize| (rows * n / DEMO_ROWS).max(1);
        GenOptions {
            customers: part(d.customers),
            vehicles: part(d.vehicles),
            drivers: part(d.drivers),
            invoices: part(d.invoices),
            ..d
        }
    }

    /// Benchmark data: every row in scope and valid, every invoice references a
    /// generated (in-scope, valid) customer; customers ≈ invoices / 10.
    pub fn clean(invoices: usize) -> Self {
        GenOptions {
            seed: 20_261_121,
            customers: (invoices / 10).max(1),
            vehicles: (invoices / 50).max(1),
            drivers: (invoices / 100).max(1),
            invoices,
            dirty: false,
            dirty_pct: 0,
        }
    }

    fn count(&self, table: Table) -> usize {
        match table {
            Table::Customers => self.customers,
            Table::Vehicles => self.vehicles,
            Table::Drivers => self.drivers,
            Table::OpenInvoices => self.invoices,
        }
    }
}

// ---------------------------------------------------------------------------------------
// PRNG

/// splitmix64 (Steele, Lea, Flood 2014): tiny, fast, and identical on every platform.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-enough value in `0..n` (`n > 0`), via the multiply-high reduction.
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }

    /// Value in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn mix(x: u64) -> u64 {
    SplitMix64::new(x).next_u64()
}

/// Independent generator for one row, so rows can be produced in any order.
fn row_rng(seed: u64, table: Table, index: u64) -> SplitMix64 {
    SplitMix64::new(mix(mix(mix(seed) ^ table.salt()) ^ index))
}

// ---------------------------------------------------------------------------------------
// Streaming rows

/// A stream of rows for `table`: generated rows with, in dirty mode, the special rows
/// spread evenly among them (in catalogue order).
pub fn rows(opts: &GenOptions, table: Table) -> Box<dyn Iterator<Item = Row> + Send> {
    let specials = if opts.dirty {
        special_rows(table)
    } else {
        Vec::new()
    };
    Box::new(Interleave {
        opts: opts.clone(),
        table,
        base_total: opts.count(table) as u64,
        base_next: 0,
        special_total: specials.len() as u64,
        specials: specials.into_iter().peekable(),
        special_next: 0,
    })
}

struct Interleave {
    opts: GenOptions,
    table: Table,
    base_total: u64,
    base_next: u64,
    specials: std::iter::Peekable<std::vec::IntoIter<Row>>,
    special_total: u64,
    special_next: u64,
}

impl Interleave {
    /// Special row `j` goes out once this many generated rows have gone out.
    fn threshold(&self, j: u64) -> u64 {
        ((u128::from(j + 1) * u128::from(self.base_total)) / u128::from(self.special_total + 1))
            as u64
    }
}

impl Iterator for Interleave {
    type Item = Row;

    fn next(&mut self) -> Option<Row> {
        let special_due = self.specials.peek().is_some()
            && (self.base_next >= self.threshold(self.special_next)
                || self.base_next >= self.base_total);
        if special_due {
            self.special_next += 1;
            return self.specials.next();
        }
        if self.base_next < self.base_total {
            let i = self.base_next;
            self.base_next += 1;
            return Some(base_row(&self.opts, self.table, i));
        }
        None
    }
}

fn base_row(opts: &GenOptions, table: Table, i: u64) -> Row {
    let mut rng = row_rng(opts.seed, table, i);
    let mut row = match table {
        Table::Customers => customer(opts, &mut rng, i),
        Table::Vehicles => vehicle(&mut rng, i),
        Table::Drivers => driver(opts, &mut rng, i),
        Table::OpenInvoices => invoice(opts, &mut rng, i),
    };
    if let Some(kind) = defect(opts, table, i) {
        break_row(table, kind, &mut row);
    }
    row
}

/// Which defect (0..4) generated row `i` gets under `dirty_pct`, if any. Drawn from its own
/// hash, so the other rows are byte-identical to a clean extract's.
fn defect(opts: &GenOptions, table: Table, i: u64) -> Option<u64> {
    if opts.dirty_pct == 0 {
        return None;
    }
    let h = mix(mix(opts.seed ^ 0x0064_6972_7479) ^ table.salt() ^ i.rotate_left(17));
    (h % 100 < u64::from(opts.dirty_pct)).then_some((h >> 32) % 4)
}

/// One defect the reference runbook's rules reject; the key is kept, and so are the
/// invoice amounts' number syntax (the benchmark's `psql \copy` reads them as numeric).
fn break_row(table: Table, kind: u64, row: &mut Row) {
    let (field, value) = match (table, kind) {
        (Table::Customers, 0) => (2, row[2].replace('@', " at ")), // email
        (Table::Customers, 1) => (5, "31/02/2024".to_string()),    // date
        (Table::Customers, 2) => (6, "1.234,50".to_string()),      // decimal
        (Table::Customers, _) => (1, String::new()),               // required name
        (Table::Vehicles, 0) => (2, row[2][..16].to_string()),     // pattern: VIN
        (Table::Vehicles, 1) => (5, "19x8".to_string()),           // integer
        (Table::Vehicles, 2) => (5, "1850".to_string()),           // integer: min
        (Table::Vehicles, _) => (6, "0".to_string()),              // integer: min
        (Table::Drivers, 0) | (Table::Drivers, 2) => (2, String::new()), // required
        (Table::Drivers, _) => (3, "2026-13-01".to_string()),      // date
        (Table::OpenInvoices, 0) => (3, "EURO".to_string()),       // one_of
        (Table::OpenInvoices, 1) => (1, "C-UNKNOWN".to_string()),  // reference
        (Table::OpenInvoices, 2) => {
            // sum: the total one cent off
            let total: i64 = row[6].replace('.', "").parse().unwrap_or(0);
            (6, money(total + 1))
        }
        (Table::OpenInvoices, _) => {
            // compare: more left to pay than the total
            let total: i64 = row[6].replace('.', "").parse().unwrap_or(0);
            (7, money(total + 100))
        }
    };
    row[field] = value;
}

const FIRST: [&str; 20] = [
    "Anna", "Jan", "Maria", "Søren", "José", "Zoë", "Lars", "Fatima", "Piotr", "Élodie", "Hans",
    "Ingrid", "Mehmet", "Chloé", "Björn", "Aoife", "Luca", "Nina", "Tomasz", "Eva",
];
/// (display, ASCII for e-mail local parts)
const LAST: [(&str, &str); 20] = [
    ("Müller", "mueller"),
    ("Kowalski", "kowalski"),
    ("García", "garcia"),
    ("Hansen", "hansen"),
    ("Jensen", "jensen"),
    ("Dubois", "dubois"),
    ("Rossi", "rossi"),
    ("Novak", "novak"),
    ("Schmidt", "schmidt"),
    ("O'Brien", "obrien"),
    ("Nowak", "nowak"),
    ("Öztürk", "ozturk"),
    ("van der Berg", "vanderberg"),
    ("Lindqvist", "lindqvist"),
    ("Fischer", "fischer"),
    ("Moreau", "moreau"),
    ("Kovač", "kovac"),
    ("Bauer", "bauer"),
    ("Silva", "silva"),
    ("Meier", "meier"),
];
const COMPANY: [&str; 8] = [
    "Logistik GmbH",
    "Spedition GmbH & Co. KG",
    "Transport A/S",
    "Trasporti S.r.l.",
    "Transports, Fils & Cie",
    "Freight Ltd",
    "Logística S.L.",
    "\"Express\" Kurierdienst",
];
const CITY: [&str; 10] = [
    "Berlin",
    "Hamburg",
    "München",
    "Köln",
    "Kraków",
    "Lyon",
    "Milano",
    "Aarhus",
    "Rotterdam",
    "Wien",
];
const DOMAIN: [&str; 4] = [
    "example.com",
    "example.de",
    "example.org",
    "mail.example.net",
];
const VIN_CHARS: &[u8] = b"ABCDEFGHJKLMNPRSTUVWXYZ0123456789";
/// (make, model, min kg, max kg)
const FLEET: [(&str, &str, i64, i64); 9] = [
    ("Mercedes-Benz", "Actros 1845", 18_000, 26_000),
    ("MAN", "TGX 18.510", 18_000, 26_000),
    ("Volvo", "FH16 750", 20_000, 26_000),
    ("Scania", "R 450", 18_000, 24_000),
    ("DAF", "XF 480", 18_000, 24_000),
    ("Iveco", "S-Way 490", 18_000, 24_000),
    ("Renault Trucks", "T 480", 18_000, 24_000),
    ("Mercedes-Benz", "Sprinter 316 CDI", 1_000, 1_500),
    ("Ford", "Transit Custom, L2H2", 800, 1_300),
];
const PLATE_AREA: [&str; 6] = ["B", "HH", "M", "K", "KR", "WI"];

fn date_between(rng: &mut SplitMix64, from: NaiveDate, days: i64) -> NaiveDate {
    from + Duration::days(rng.range(0, days))
}

fn fmt_date(d: NaiveDate, european: bool) -> String {
    if european {
        format!("{:02}/{:02}/{:04}", d.day(), d.month(), d.year())
    } else {
        d.format("%Y-%m-%d").to_string()
    }
}

/// Cents as a two-place decimal string ("-12.05").
fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}{}.{:02}", c / 100, c % 100)
}

fn customer_id(index: u64) -> String {
    format!("C{:07}", index + 1)
}

/// In dirty mode every 9th generated customer is inactive (out of scope, not rejected).
fn customer_in_scope(opts: &GenOptions, index: u64) -> bool {
    !(opts.dirty && index % 9 == 4)
}

fn customer(opts: &GenOptions, rng: &mut SplitMix64, i: u64) -> Row {
    let (last, last_ascii) = *rng.pick(&LAST);
    let first = *rng.pick(&FIRST);
    let name = if rng.chance(60) {
        format!("{last} {}", rng.pick(&COMPANY))
    } else {
        format!("{first} {last}")
    };
    let email = format!("{last_ascii}.{}@{}", i + 1, rng.pick(&DOMAIN));
    let phone = format!("+49 {} {:07}", rng.range(30, 89), rng.range(0, 9_999_999));
    let city = rng.pick(&CITY).to_string();
    let created = date_between(rng, NaiveDate::from_ymd_opt(2005, 1, 1).unwrap(), 7_600);
    let created = fmt_date(created, rng.chance(20));
    let credit_limit = match rng.below(4) {
        0 => "0".to_string(),
        1 => format!("{}", rng.range(1, 40) * 500),
        _ => money(rng.range(1, 40) * 50_000),
    };
    let status = if !customer_in_scope(opts, i) {
        "I"
    } else if opts.dirty && i % 11 == 3 {
        "a"
    } else {
        "A"
    };
    vec![
        customer_id(i),
        name,
        email,
        phone,
        city,
        created,
        credit_limit,
        status.to_string(),
    ]
}

fn vehicle(rng: &mut SplitMix64, i: u64) -> Row {
    let (make, model, lo, hi) = *rng.pick(&FLEET);
    let plate = format!(
        "{}-{}{} {}",
        rng.pick(&PLATE_AREA),
        char::from(b'A' + rng.below(26) as u8),
        char::from(b'A' + rng.below(26) as u8),
        rng.range(1, 9_999)
    );
    let vin: String = (0..17).map(|_| char::from(*rng.pick(VIN_CHARS))).collect();
    let year = rng.range(1998, 2025);
    let capacity = rng.range(lo / 100, hi / 100) * 100;
    vec![
        format!("V{:06}", i + 1),
        plate,
        vin,
        make.to_string(),
        model.to_string(),
        year.to_string(),
        capacity.to_string(),
    ]
}

fn driver(opts: &GenOptions, rng: &mut SplitMix64, i: u64) -> Row {
    let name = format!("{} {}", rng.pick(&FIRST), rng.pick(&LAST).0);
    let license_no = format!(
        "{}{:09}",
        char::from(b'A' + rng.below(26) as u8),
        rng.range(0, 999_999_999)
    );
    let expiry = date_between(rng, NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(), 3_650);
    let expiry = fmt_date(expiry, rng.chance(25));
    let status = if opts.dirty && i % 7 == 2 {
        "inactive"
    } else if rng.chance(20) {
        "Active"
    } else {
        "active"
    };
    vec![
        format!("D{:06}", i + 1),
        name,
        license_no,
        expiry,
        status.to_string(),
    ]
}

fn invoice(opts: &GenOptions, rng: &mut SplitMix64, i: u64) -> Row {
    let customers = opts.customers as u64;
    let customer = if customers == 0 {
        customer_id(0)
    } else {
        let mut idx = rng.below(customers);
        if !customer_in_scope(opts, idx) {
            idx = if idx + 1 < customers {
                idx + 1
            } else {
                idx - 1
            };
        }
        // A customer broken by `dirty_pct` is rejected: name the next sound one instead.
        let start = idx;
        while defect(opts, Table::Customers, idx).is_some() || !customer_in_scope(opts, idx) {
            idx = (idx + 1) % customers;
            if idx == start {
                break;
            }
        }
        customer_id(idx)
    };
    let date = date_between(rng, NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(), 660);
    let (currency, rate) = match rng.below(100) {
        0..80 => ("EUR", 19),
        80..92 => ("USD", 0),
        _ => ("GBP", 20),
    };
    let untaxed = rng.range(5_000, 2_500_000);
    let tax = (untaxed * rate + 50) / 100;
    let total = untaxed + tax;
    let (state, residual) = if opts.dirty && i % 8 == 5 {
        ("paid", 0)
    } else if opts.dirty && i % 13 == 7 {
        ("draft", total)
    } else if rng.chance(25) {
        ("partial", total * rng.range(10, 90) / 100)
    } else {
        ("open", total)
    };
    vec![
        format!("INV-{:07}", i + 1),
        customer,
        date.format("%Y-%m-%d").to_string(),
        currency.to_string(),
        money(untaxed),
        money(tax),
        money(total),
        money(residual),
        state.to_string(),
    ]
}

fn to_rows(rows: &[&[&str]]) -> Vec<Row> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

/// The catalogue of hand-written rows for dirty mode, in the order they appear.
/// Comments name the rule(s) each row is meant to break ("ok" = valid, "out" = out of scope).
#[rustfmt::skip]
fn special_rows(table: Table) -> Vec<Row> {
    match table {
        Table::Customers => to_rows(&[
            // legacy_id, name, email, phone, city, created, credit_limit, status
            // out of scope (counted, not rejected), even when otherwise dirty
            &["CX-OUT-1", "Old Client GmbH", "old@example.com", "", "Berlin", "2010-01-01", "100", "I"],
            &["CX-OUT-2", "Closed Ltd", "closed at example", "", "Hamburg", "31/02/2024", "abc", "X"],
            &["CX-OUT-3", "No Status AG", "nostatus@example.com", "", "Wien", "2011-05-05", "0", ""],
            &["CX-OUT-4", "", "", "", "", "", "", "i"],
            // in scope with odd case / spaces: ok
            &["CX-SCOPE-1", "Spaced Status GmbH", "spaced@example.com", "", "Köln", "2019-07-07", "1000.00", " a "],
            &["  CX-SCOPE-2  ", "  Padded Fields KG  ", "  Padded@Example.com ", " +49 1 ", " Lyon ", " 2018-08-08 ", " 250.50 ", "A"],
            // missing legacy_id (required); empty keys do not take part in uniqueness
            &["", "No Id GmbH", "noid@example.com", "", "Berlin", "2020-01-01", "10", "A"],
            &["   ", "Blank Id GmbH", "blankid@example.com", "", "Berlin", "2020-01-01", "10", "A"],
            &["", "No Id Either", "bad email@example.com", "", "Berlin", "2020-01-01", "10", "A"],
            // duplicates: first valid, second rejected
            &["CX-DUP-1", "First Copy GmbH", "dup1@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            // duplicate whose FIRST occurrence is itself invalid (bad email)
            &["CX-DUP-2", "Invalid First GmbH", "anna@example", "", "Berlin", "2015-01-01", "500", "A"],
            // first copy out of scope, second in scope: second is kept
            &["CX-DUP-3", "Was Inactive GmbH", "dup3@example.com", "", "Berlin", "2015-01-01", "500", "I"],
            &["CX-DUP-4", "Still Active GmbH", "dup4@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            &["CX-DUP-5", "Triple GmbH", "dup5@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            // missing name
            &["CX-NAME-1", "", "noname@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            &["CX-NAME-2", "   ", "blankname@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            // bad e-mails
            &["CX-MAIL-1", "Space Mail", "jan kowalski@example.com", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-2", "No Tld", "piotr@localhost", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-3", "Two At", "a@b@example.com", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-4", "Empty Mail", "", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-5", "No Local", "@example.com", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-6", "Trailing Dot", "eva@example.com.", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-7", "Double Dot", "eva@example..com", "", "", "2015-01-01", "500", "A"],
            // upper-case and non-ASCII e-mails: ok
            &["CX-MAIL-8", "Upper Case", "MARIA.GARCIA@EXAMPLE.COM", "", "", "2015-01-01", "500", "A"],
            &["CX-MAIL-9", "Søren Hansen", "søren.2@example.com", "", "Aarhus", "2015-01-01", "500", "A"],
            &["CX-MAIL-10", "Zoë Bücher", "Zoë@Bücher.de", "", "", "2015-01-01", "500", "A"],
            // created
            &["CX-DATE-1", "European Date", "d1@example.com", "", "", "15/03/2021", "500", "A"],
            &["CX-DATE-2", "Leap Day", "d2@example.com", "", "", "29/02/2024", "500", "A"],
            &["CX-DATE-3", "Feb 31", "d3@example.com", "", "", "31/02/2024", "500", "A"],
            &["CX-DATE-4", "Month 13", "d4@example.com", "", "", "2023-13-01", "500", "A"],
            &["CX-DATE-5", "Short Parts", "d5@example.com", "", "", "2024-1-5", "500", "A"],
            &["CX-DATE-6", "Empty Date", "d6@example.com", "", "", "", "500", "A"],
            &["CX-DATE-7", "Not Leap", "d7@example.com", "", "", "29/02/2023", "500", "A"],
            &["CX-DATE-8", "Slashed Iso", "d8@example.com", "", "", "2024/01/05", "500", "A"],
            &["CX-DATE-9", "Short European", "d9@example.com", "", "", "5/1/2024", "500", "A"],
            // credit_limit
            &["CX-CREDIT-1", "Negative", "c1@example.com", "", "", "2015-01-01", "-100.00", "A"],
            &["CX-CREDIT-2", "Three Places", "c2@example.com", "", "", "2015-01-01", "12.345", "A"],
            &["CX-CREDIT-3", "Comma Decimal", "c3@example.com", "", "", "2015-01-01", "1.234,56", "A"],
            &["CX-CREDIT-4", "Letters", "c4@example.com", "", "", "2015-01-01", "abc", "A"],
            &["CX-CREDIT-5", "Empty Credit", "c5@example.com", "", "", "2015-01-01", "", "A"],
            &["CX-CREDIT-6", "Exponent", "c6@example.com", "", "", "2015-01-01", "1e3", "A"],
            &["CX-CREDIT-7", "Plus Sign", "c7@example.com", "", "", "2015-01-01", "+10", "A"],
            &["CX-CREDIT-8", "Zero Ok", "c8@example.com", "", "", "2015-01-01", "0.00", "A"],
            &["CX-CREDIT-9", "Just Below Zero", "c9@example.com", "", "", "2015-01-01", "-0.01", "A"],
            &["CX-CREDIT-10", "Trailing Zero Place", "c10@example.com", "", "", "2015-01-01", "99.500", "A"],
            // several rules at once
            &["CX-MULTI-1", "", "not an email", "", "", "2023-13-01", "1.234,56", "A"],
            &["", "", "", "", "", "", "", "a"],
            // later occurrences of the duplicates above
            &["CX-DUP-1", "Second Copy GmbH", "dup1b@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            &["CX-DUP-2", "Valid Second GmbH", "dup2@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            &["CX-DUP-3", "Now Active GmbH", "dup3@example.com", "", "Berlin", "2015-01-01", "500", "A"],
            &["CX-DUP-4", "Now Inactive GmbH", "dup4b@example.com", "", "Berlin", "2015-01-01", "500", "I"],
            &["CX-DUP-5", "Triple Two", "dup5b@example.com", "", "Berlin", "2015-01-01", "500", " a"],
            &["CX-DUP-5", "Triple Three", "bad@", "", "Berlin", "2015-01-01", "500", "A"],
            // duplicate of a generated customer (rejected; the generated one stays valid)
            &["C0000003", "Shadow Copy", "shadow@example.com", "", "Berlin", "2015-01-01", "500", "A"],
        ]),
        Table::Vehicles => to_rows(&[
            // legacy_id, plate, vin, make, model, year, capacity_kg
            &["VX-VIN-1", "B-XX 1", "1HGCM82633A0I4352", "Volvo", "FH16", "2020", "20000"],
            &["VX-VIN-2", "B-XX 2", "1HGCM82633A0O4352", "Volvo", "FH16", "2020", "20000"],
            &["VX-VIN-3", "B-XX 3", "1HGCM82633A0Q4352", "Volvo", "FH16", "2020", "20000"],
            &["VX-VIN-4", "B-XX 4", "1HGCM82633A04352", "Volvo", "FH16 (16 chars)", "2020", "20000"],
            &["VX-VIN-5", "B-XX 5", "1HGCM82633A0043521", "Volvo", "FH16 (18 chars)", "2020", "20000"],
            &["VX-VIN-6", "B-XX 6", "1hgcm82633a004352", "Volvo", "FH16 (lower case)", "2020", "20000"],
            &["VX-VIN-7", "B-XX 7", "", "Volvo", "FH16 (no VIN)", "2020", "20000"],
            &["VX-VIN-8", "B-XX 8", " 1HGCM82633A004352 ", "Volvo", "FH16 (padded VIN, ok)", "2020", "20000"],
            &["VX-YEAR-1", "B-XX 9", "WDB96340310123456", "Mercedes-Benz", "Actros", "1899", "18000"],
            &["VX-YEAR-2", "B-XX 10", "WDB96340310123457", "Mercedes-Benz", "Actros", "2101", "18000"],
            &["VX-YEAR-3", "B-XX 11", "WDB96340310123458", "Mercedes-Benz", "Actros", "20x1", "18000"],
            &["VX-YEAR-4", "B-XX 12", "WDB96340310123459", "Mercedes-Benz", "Actros", "", "18000"],
            &["VX-YEAR-5", "B-XX 13", "WDB96340310123460", "Mercedes-Benz", "Actros (1900 ok)", "1900", "18000"],
            &["VX-YEAR-6", "B-XX 14", "WDB96340310123461", "Mercedes-Benz", "Actros (2100 ok)", "2100", "18000"],
            &["VX-CAP-1", "B-XX 15", "WMA06XZZ7GM123456", "MAN", "TGX", "2019", "0"],
            &["VX-CAP-2", "B-XX 16", "WMA06XZZ7GM123457", "MAN", "TGX", "2019", "-5"],
            &["VX-CAP-3", "B-XX 17", "WMA06XZZ7GM123458", "MAN", "TGX", "2019", "1.5"],
            &["VX-CAP-4", "B-XX 18", "WMA06XZZ7GM123459", "MAN", "TGX", "2019", ""],
            &["VX-CAP-5", "B-XX 19", "WMA06XZZ7GM123460", "MAN", "TGX (1 kg ok)", "2019", "1"],
            &["VX-CAP-6", "B-XX 20", "WMA06XZZ7GM123461", "MAN", "TGX", "2019", "12kg"],
            // free-text model: loaded verbatim
            &["VX-MODEL-1", "HH-AB 1", "YS2R4X20005123456", "Scania", "R 450, \"Highline\"", "2018", "24000"],
            &["VX-MODEL-2", "HH-AB 2", "YS2R4X20005123457", "Scania", "R 450\nTopline\nretarder, 2 tanks", "2018", "24000"],
            &["VX-MODEL-3", "HH-AB 3", "YS2R4X20005123458", "DAF", "XF \"Space Cab\",\r\nADR", "2017", "24000"],
            // missing legacy_id
            &["", "HH-AB 4", "YS2R4X20005123459", "DAF", "XF", "2017", "24000"],
            &["  ", "HH-AB 5", "YS2R4X20005123460", "DAF", "XF", "2017", "24000"],
            // duplicates (first valid; first invalid)
            &["VX-DUP-1", "M-DU 1", "XLRTE47MS0E123456", "DAF", "CF", "2016", "18000"],
            &["VX-DUP-2", "M-DU 2", "XLRTE47MS0E12345", "DAF", "CF (bad VIN first)", "2016", "18000"],
            // several rules at once
            &["VX-MULTI-1", "", "IOQ", "", "", "18x9", "-1"],
            &["VX-DUP-1", "M-DU 3", "XLRTE47MS0E123457", "DAF", "CF (dup)", "2016", "18000"],
            &["VX-DUP-2", "M-DU 4", "XLRTE47MS0E123458", "DAF", "CF (valid, dup)", "2016", "18000"],
            &["V000002", "M-DU 5", "XLRTE47MS0E123459", "DAF", "shadow of a generated vehicle", "2016", "18000"],
        ]),
        Table::Drivers => to_rows(&[
            // legacy_id, name, license_no, license_expiry, status
            &["DX-OUT-1", "Retired Driver", "B123", "2020-01-01", "inactive"],
            &["DX-OUT-2", "Suspended Driver", "", "never", "suspended"],
            &["DX-OUT-3", "No Status", "B124", "2030-01-01", ""],
            &["DX-SCOPE-1", "Shouting Status", "B125", "2030-01-01", "ACTIVE "],
            &["DX-SCOPE-2", "Padded Status", "B126", "01/06/2030", " Active"],
            &["DX-LIC-1", "No License", "", "2030-01-01", "active"],
            &["DX-LIC-2", "Blank License", "   ", "2030-01-01", "active"],
            &["DX-EXP-1", "April 31", "B127", "31/04/2025", "active"],
            &["DX-EXP-2", "Month Zero", "B128", "2025-00-10", "active"],
            &["DX-EXP-3", "Empty Expiry", "B129", "", "active"],
            &["DX-EXP-4", "Word Expiry", "B130", "tomorrow", "active"],
            &["DX-EXP-5", "Short Expiry", "B131", "2026-1-1", "active"],
            &["", "Nameless Id", "B132", "2030-01-01", "active"],
            &["DX-DUP-1", "First Copy", "B133", "2030-01-01", "active"],
            &["DX-DUP-2", "Inactive First", "B134", "2030-01-01", "inactive"],
            &["DX-MULTI-1", "Everything Wrong", "", "32/13/2030", "active"],
            &["DX-DUP-1", "Second Copy", "B135", "2030-01-01", "active"],
            &["DX-DUP-2", "Active Second", "B136", "2030-01-01", "active"],
            &["D000001", "Shadow Driver", "B137", "2030-01-01", "active"],
        ]),
        Table::OpenInvoices => to_rows(&[
            // invoice_no, customer_id, invoice_date, currency, untaxed, tax, total, residual, state
            // out of scope
            &["INV-X-OUT-1", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "0.00", "paid"],
            &["INV-X-OUT-2", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "draft"],
            &["INV-X-OUT-3", "NOBODY", "2025-03-01", "XYZ", "abc", "", "", "", "cancel"],
            &["INV-X-OUT-4", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "Open"],
            &["INV-X-SCOPE-1", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "50.00", " partial "],
            // customer references
            &["INV-X-CUST-1", "C9999999", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-2", "", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-3", "CX-MAIL-1", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-4", "CX-DUP-2", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-5", "CX-OUT-1", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-6", " CX-SCOPE-2 ", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-7", "CX-DUP-1", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-8", "CX-DUP-3", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUST-9", "cx-dup-1", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            // currency
            &["INV-X-CUR-1", "C0000001", "2025-03-01", "XYZ", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUR-2", "C0000001", "2025-03-01", "eur", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-CUR-3", "C0000001", "2025-03-01", "", "100.00", "19.00", "119.00", "119.00", "open"],
            // amounts
            &["INV-X-SUM-1", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "120.00", "120.00", "open"],
            &["INV-X-SUM-2", "C0000001", "2025-03-01", "USD", "100.00", "0.00", "99.99", "99.99", "open"],
            // valid: equal amounts written at different scales
            &["INV-X-SUM-3", "C0000001", "2025-03-01", "GBP", "100.0", "20", "120.00", "120", "open"],
            &["INV-X-RES-1", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.01", "partial"],
            &["INV-X-RES-2", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "-5.00", "partial"],
            &["INV-X-RES-3", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "0", "open"],
            &["INV-X-RES-4", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "-0.01", "open"],
            &["INV-X-DEC-1", "C0000001", "2025-03-01", "EUR", "100.005", "19.00", "119.005", "119.005", "open"],
            &["INV-X-DEC-2", "C0000001", "2025-03-01", "EUR", "1.234,56", "234.57", "1469.13", "1469.13", "open"],
            &["INV-X-DEC-3", "C0000001", "2025-03-01", "EUR", "100", "19", "119", "119", "open"],
            &["INV-X-DEC-4", "C0000001", "2025-03-01", "GBP", "", "", "", "", "open"],
            &["INV-X-DEC-5", "C0000001", "2025-03-01", "USD", "1e2", "0", "100.00", "100.00", "open"],
            &["INV-X-DEC-6", "C0000001", "2025-03-01", "EUR", "100.00", "19.000", "119.00", "119.00", "open"],
            // invoice_no
            &["", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-DUP-1", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-DUP-2", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "0.00", "paid"],
            &["INV-X-DUP-3", "C9999999", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            // several rules at once
            &["INV-X-MULTI-1", "C9999999", "2025-03-01", "eur", "1.234,56", "19.001", "50.00", "60.00", "open"],
            &["", "", "", "", "", "", "", "", "partial"],
            // later occurrences
            &["INV-X-DUP-1", "C0000001", "2025-03-01", "EUR", "200.00", "38.00", "238.00", "238.00", "open"],
            &["INV-X-DUP-2", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-X-DUP-3", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
            &["INV-0000002", "C0000001", "2025-03-01", "EUR", "100.00", "19.00", "119.00", "119.00", "open"],
        ]),
    }
}

// ---------------------------------------------------------------------------------------
// Writers

/// Write `customers.csv`, `vehicles.csv`, `drivers.csv` and `open_invoices.csv` into `dir`
/// (created if missing). UTF-8, header row, RFC 4180 quoting, LF line ends; in dirty mode
/// `customers.csv` starts with a BOM and uses CRLF. Returns data rows written per table.
pub fn write_csv_extracts(dir: &Path, opts: &GenOptions) -> anyhow::Result<BTreeMap<String, u64>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut counts = BTreeMap::new();
    for table in Table::ALL {
        let path = dir.join(format!("{}.csv", table.name()));
        let file = File::create(&path).with_context(|| format!("creating {}", path.display()))?;
        let mut out = BufWriter::with_capacity(1 << 16, file);
        let windows_style = opts.dirty && table == Table::Customers;
        if windows_style {
            out.write_all("\u{feff}".as_bytes())?;
        }
        let terminator = if windows_style {
            csv::Terminator::CRLF
        } else {
            csv::Terminator::Any(b'\n')
        };
        let mut w = csv::WriterBuilder::new()
            .terminator(terminator)
            .from_writer(out);
        w.write_record(table.columns())?;
        let mut n = 0u64;
        for row in rows(opts, table) {
            w.write_record(&row)?;
            n += 1;
        }
        w.into_inner()
            .map_err(|e| anyhow::anyhow!("flushing {}: {}", path.display(), e.error()))?
            .flush()?;
        counts.insert(table.name().to_string(), n);
    }
    Ok(counts)
}

/// Rows per multi-row `INSERT`.
const INSERT_BATCH: usize = 500;
/// Rows per transaction.
const TX_ROWS: u64 = 50_000;

fn insert_sql(table: Table, nrows: usize) -> String {
    let cols = table.columns();
    let tuple = format!("({})", vec!["?"; cols.len()].join(","));
    format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name(),
        cols.join(","),
        vec![tuple.as_str(); nrows].join(",")
    )
}

async fn insert_batch(
    conn: &mut SqliteConnection,
    table: Table,
    full_sql: &str,
    batch: &mut Vec<Row>,
) -> anyhow::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let sql = if batch.len() == INSERT_BATCH {
        full_sql.to_string()
    } else {
        insert_sql(table, batch.len())
    };
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for row in batch.drain(..) {
        for value in row {
            q = q.bind(value);
        }
    }
    q.execute(&mut *conn).await?;
    Ok(())
}

/// Create a SQLite "legacy system" at `path` (replacing any existing file) holding the
/// four tables, every column `TEXT`, no keys or constraints (a legacy system that never
/// typed its data). Rows are inserted in multi-row batches inside transactions. Returns
/// rows written per table.
pub async fn write_legacy_sqlite(
    path: &Path,
    opts: &GenOptions,
) -> anyhow::Result<BTreeMap<String, u64>> {
    for suffix in ["", "-journal", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        match std::fs::remove_file(&p) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e).with_context(|| format!("removing {:?}", p)),
        }
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Delete)
        .synchronous(SqliteSynchronous::Off);
    let mut conn = SqliteConnection::connect_with(&options)
        .await
        .with_context(|| format!("opening {}", path.display()))?;
    let mut counts = BTreeMap::new();
    for table in Table::ALL {
        let ddl = format!(
            "CREATE TABLE {} ({})",
            table.name(),
            table
                .columns()
                .iter()
                .map(|c| format!("{c} TEXT"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        sqlx::query(sqlx::AssertSqlSafe(ddl))
            .execute(&mut conn)
            .await?;
        let full_sql = insert_sql(table, INSERT_BATCH);
        let mut n = 0u64;
        let mut batch: Vec<Row> = Vec::with_capacity(INSERT_BATCH);
        let mut tx = conn.begin().await?;
        for row in rows(opts, table) {
            batch.push(row);
            n += 1;
            if batch.len() == INSERT_BATCH {
                insert_batch(&mut tx, table, &full_sql, &mut batch).await?;
            }
            if n.is_multiple_of(TX_ROWS) {
                insert_batch(&mut tx, table, &full_sql, &mut batch).await?;
                tx.commit().await?;
                tx = conn.begin().await?;
            }
        }
        insert_batch(&mut tx, table, &full_sql, &mut batch).await?;
        tx.commit().await?;
        counts.insert(table.name().to_string(), n);
    }
    conn.close().await?;
    Ok(counts)
}

/// Create the four legacy tables (every column text, no keys) in an existing PostgreSQL
/// or MariaDB/MySQL database and fill them, for trying `runbooks/tms-postgres.toml` on
/// real servers. Existing tables of those names are replaced. Returns rows per table.
pub async fn write_legacy_db(
    db: &crate::db::Db,
    opts: &GenOptions,
) -> anyhow::Result<BTreeMap<String, u64>> {
    use crate::db::Dialect;
    let quote = |v: &str| match db.dialect() {
        // MySQL's default sql_mode treats a backslash in a literal as an escape.
        Dialect::MySql => format!("'{}'", v.replace('\\', "\\\\").replace('\'', "''")),
        _ => format!("'{}'", v.replace('\'', "''")),
    };
    let mut counts = BTreeMap::new();
    for table in Table::ALL {
        let name = db.q(table.name());
        db.exec(&format!("DROP TABLE IF EXISTS {name}")).await?;
        let cols: Vec<String> = table.columns().iter().map(|c| db.q(c)).collect();
        db.exec(&format!(
            "CREATE TABLE {name} ({})",
            cols.iter()
                .map(|c| format!("{c} TEXT"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
        .await?;
        let mut n = 0u64;
        let mut values: Vec<String> = Vec::with_capacity(INSERT_BATCH);
        let flush = async |values: &mut Vec<String>| -> anyhow::Result<()> {
            if !values.is_empty() {
                db.exec(&format!(
                    "INSERT INTO {name} ({}) VALUES {}",
                    cols.join(", "),
                    values.join(", ")
                ))
                .await?;
                values.clear();
            }
            Ok(())
        };
        for row in rows(opts, table) {
            values.push(format!(
                "({})",
                row.iter().map(|v| quote(v)).collect::<Vec<_>>().join(", ")
            ));
            n += 1;
            if values.len() == INSERT_BATCH {
                flush(&mut values).await?;
            }
        }
        flush(&mut values).await?;
        counts.insert(table.name().to_string(), n);
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::process::Command;

    fn oracle(dir: &Path) -> Value {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oracle/tms_oracle.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(dir)
            .arg("--explain")
            .output()
            .expect("python3 must be installed to run the oracle");
        assert!(
            out.status.success(),
            "oracle failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn small_demo() -> GenOptions {
        GenOptions {
            customers: 200,
            vehicles: 60,
            drivers: 40,
            invoices: 400,
            ..GenOptions::demo()
        }
    }

    #[test]
    fn splitmix64_reference_values() {
        let mut r = SplitMix64::new(0);
        assert_eq!(r.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(r.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn same_seed_gives_identical_bytes() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        let opts = GenOptions::demo();
        let counts = write_csv_extracts(a.path(), &opts).unwrap();
        assert_eq!(write_csv_extracts(b.path(), &opts).unwrap(), counts);
        write_csv_extracts(
            c.path(),
            &GenOptions {
                seed: opts.seed + 1,
                ..opts.clone()
            },
        )
        .unwrap();
        for t in Table::ALL {
            let f = format!("{}.csv", t.name());
            let bytes = std::fs::read(a.path().join(&f)).unwrap();
            assert_eq!(bytes, std::fs::read(b.path().join(&f)).unwrap(), "{f}");
            assert_ne!(bytes, std::fs::read(c.path().join(&f)).unwrap(), "{f}");
        }
    }

    #[test]
    fn counts_include_specials_and_tiny_sizes_work() {
        let opts = GenOptions {
            customers: 0,
            vehicles: 1,
            drivers: 2,
            invoices: 3,
            ..GenOptions::demo()
        };
        for t in Table::ALL {
            let n = rows(&opts, t)
                .inspect(|r| assert_eq!(r.len(), t.columns().len()))
                .count();
            assert_eq!(n, opts.count(t) + special_rows(t).len(), "{}", t.name());
            let clean = GenOptions {
                dirty: false,
                ..opts.clone()
            };
            assert_eq!(rows(&clean, t).count(), clean.count(t));
        }
    }

    #[test]
    fn dirty_customers_csv_has_bom_and_crlf_others_lf() {
        let dir = tempfile::tempdir().unwrap();
        write_csv_extracts(dir.path(), &small_demo()).unwrap();
        let cust = std::fs::read(dir.path().join("customers.csv")).unwrap();
        assert!(cust.starts_with(b"\xEF\xBB\xBFlegacy_id,name,"));
        assert!(cust.windows(2).any(|w| w == b"\r\n"));
        let inv = std::fs::read(dir.path().join("open_invoices.csv")).unwrap();
        assert!(inv.starts_with(b"invoice_no,"));
        assert!(!inv.contains(&b'\r'));
    }

    #[test]
    fn clean_mode_has_no_row_the_oracle_rejects() {
        let dir = tempfile::tempdir().unwrap();
        let opts = GenOptions::clean(3_000);
        let counts = write_csv_extracts(dir.path(), &opts).unwrap();
        let report = oracle(dir.path());
        for t in Table::ALL {
            let e = &report["entities"][t.name()];
            let n = counts[t.name()];
            assert_eq!(n as usize, opts.count(t));
            assert_eq!(e["in_file"], n, "{}", t.name());
            assert_eq!(e["in_scope"], n, "{}", t.name());
            assert_eq!(e["valid"], n, "{}", t.name());
            assert_eq!(e["rejected"], 0, "{}", t.name());
        }
        assert_eq!(report["invoice_partner"].as_object().unwrap().len(), 3_000);
        assert_eq!(report["open_invoices_sums"]["rejected_total"], "0.00");
    }

    #[test]
    fn dirty_pct_breaks_that_share_of_rows_and_nothing_cascades() {
        let dir = tempfile::tempdir().unwrap();
        // The reference proportions: enough rows per file for the share to show.
        let opts = GenOptions {
            customers: 2_000,
            vehicles: 1_000,
            drivers: 500,
            dirty_pct: 10,
            ..GenOptions::clean(4_000)
        };
        let counts = write_csv_extracts(dir.path(), &opts).unwrap();
        let report = oracle(dir.path());
        for t in Table::ALL {
            let e = &report["entities"][t.name()];
            let broken = (0..opts.count(t) as u64)
                .filter(|&i| defect(&opts, t, i).is_some())
                .count();
            // About the share asked for, and exactly the broken rows are rejected: an
            // invoice never names a broken customer.
            let n = opts.count(t);
            assert!(
                broken * 100 >= n * 7 && broken * 100 <= n * 13,
                "{}: {broken}",
                t.name()
            );
            assert_eq!(e["in_file"], counts[t.name()], "{}", t.name());
            assert_eq!(e["rejected"], broken as u64, "{}", t.name());
            assert_eq!(e["valid"], (n - broken) as u64, "{}", t.name());
        }
        // The rows left sound are those of the clean extract, byte for byte.
        let clean = GenOptions {
            dirty_pct: 0,
            ..opts.clone()
        };
        let sound = |o: &GenOptions| -> Vec<Row> {
            rows(o, Table::Vehicles)
                .enumerate()
                .filter(|(i, _)| defect(&opts, Table::Vehicles, *i as u64).is_none())
                .map(|(_, r)| r)
                .collect()
        };
        assert_eq!(sound(&opts), sound(&clean));
    }

    #[test]
    fn dirty_mode_makes_every_rule_fire() {
        let dir = tempfile::tempdir().unwrap();
        write_csv_extracts(dir.path(), &GenOptions::demo()).unwrap();
        let report = oracle(dir.path());
        let rules = report["rules"].as_object().unwrap();
        let expected = [
            "customers.legacy_id.required",
            "customers.legacy_id.duplicate",
            "customers.name.required",
            "customers.email.missing",
            "customers.email.format",
            "customers.created.missing",
            "customers.created.date",
            "customers.credit_limit.missing",
            "customers.credit_limit.decimal",
            "customers.credit_limit.scale",
            "customers.credit_limit.min",
            "vehicles.legacy_id.required",
            "vehicles.legacy_id.duplicate",
            "vehicles.vin.missing",
            "vehicles.vin.format",
            "vehicles.year.missing",
            "vehicles.year.integer",
            "vehicles.year.range",
            "vehicles.capacity_kg.missing",
            "vehicles.capacity_kg.integer",
            "vehicles.capacity_kg.range",
            "drivers.legacy_id.required",
            "drivers.legacy_id.duplicate",
            "drivers.license_no.required",
            "drivers.license_expiry.missing",
            "drivers.license_expiry.date",
            "open_invoices.invoice_no.required",
            "open_invoices.invoice_no.duplicate",
            "open_invoices.customer_id.unknown_customer",
            "open_invoices.currency.missing",
            "open_invoices.currency.allowed",
            "open_invoices.amount_untaxed.decimal",
            "open_invoices.amount_untaxed.scale",
            "open_invoices.amount_tax.scale",
            "open_invoices.amount_total.missing",
            "open_invoices.amount_total.sum",
            "open_invoices.amount_residual.negative",
            "open_invoices.amount_residual.exceeds_total",
        ];
        for rule in expected {
            let n = rules.get(rule).and_then(Value::as_u64).unwrap_or(0);
            assert!(n >= 1, "rule {rule} never fired");
        }
        let ents = &report["entities"];
        for t in ["customers", "drivers", "open_invoices"] {
            assert!(
                ents[t]["in_scope"].as_u64() < ents[t]["in_file"].as_u64(),
                "{t}"
            );
        }
        // The special rows that must stay valid do.
        let partner = report["invoice_partner"].as_object().unwrap();
        for (inv, cust) in [
            ("INV-X-SCOPE-1", "C0000001"),
            ("INV-X-CUST-6", "CX-SCOPE-2"),
            ("INV-X-CUST-7", "CX-DUP-1"),
            ("INV-X-CUST-8", "CX-DUP-3"),
            ("INV-X-DUP-2", "C0000001"),
            ("INV-X-SUM-3", "C0000001"),
        ] {
            assert_eq!(
                partner.get(inv).and_then(Value::as_str),
                Some(cust),
                "{inv}"
            );
        }
        for inv in [
            "INV-X-CUST-3",
            "INV-X-CUST-4",
            "INV-X-CUST-5",
            "INV-X-CUST-9",
        ] {
            assert!(!partner.contains_key(inv), "{inv} must be rejected");
        }
    }

    #[tokio::test]
    async fn sqlite_holds_exactly_the_generated_rows() {
        use sqlx::Row as _;
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("legacy.db");
        let opts = small_demo();
        let counts = write_legacy_sqlite(&db, &opts).await.unwrap();
        // Writing again replaces the file rather than appending.
        assert_eq!(write_legacy_sqlite(&db, &opts).await.unwrap(), counts);
        let mut conn = SqliteConnection::connect_with(&SqliteConnectOptions::new().filename(&db))
            .await
            .unwrap();
        for t in Table::ALL {
            let sql = format!("SELECT * FROM {} ORDER BY rowid", t.name());
            let got = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            assert_eq!(got.len() as u64, counts[t.name()]);
            for (db_row, row) in got.iter().zip(rows(&opts, t)) {
                let values: Vec<String> = (0..row.len()).map(|i| db_row.get(i)).collect();
                assert_eq!(values, row);
            }
            let types: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT type FROM pragma_table_info('{}')",
                t.name()
            )))
            .fetch_all(&mut conn)
            .await
            .unwrap();
            assert!(types.iter().all(|ty| ty == "TEXT"), "{types:?}");
        }
    }
}

#[cfg(test)]
mod demo_runbook_tests {
    use super::*;

    #[test]
    fn the_demo_runbook_carries_the_folders_own_values() {
        let template = include_str!("../runbooks/tms.toml");
        let rb = demo_runbook(template).unwrap();
        for (k, v) in DEMO_VARS {
            assert!(rb.contains(&format!("{k} = \"{v}\"")), "{k} not set:\n{rb}");
        }
        // Everything else as the reference runbook has it.
        assert_eq!(rb.lines().count(), template.lines().count());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tms.toml");
        std::fs::write(&path, &rb).unwrap();
        let plan = crate::runbook::load(&path, &[]).expect("the demo runbook loads");
        // Relative to the runbook's folder, wherever the command runs from.
        assert_eq!(plan.extract_dir, dir.path().join("extract"));
        let legacy = &plan.vars["legacy_url"];
        assert!(
            legacy.starts_with("sqlite:")
                && legacy.contains(&dir.path().join("legacy.db").display().to_string()),
            "{legacy}"
        );
        assert!(demo_runbook("[vars]\nlegacy_url = \"\"\n").is_err());
    }

    #[test]
    fn demo_rows_scales_the_demo_set() {
        assert_eq!(GenOptions::demo_rows(DEMO_ROWS), GenOptions::demo());
        let big = GenOptions::demo_rows(DEMO_ROWS * 50);
        assert_eq!(big.invoices, GenOptions::demo().invoices * 50);
        assert_eq!(
            big.customers + big.vehicles + big.drivers + big.invoices,
            DEMO_ROWS * 50
        );
    }
}
