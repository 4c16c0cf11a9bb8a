//! A full cutover of a schema nobody on this project wrote: the public Chinook sample
//! database (`../shared/samples/chinook`, MIT licence) loaded into MariaDB by its own
//! published script, read from its real tables (no helper views) by `runbooks/chinook.toml`,
//! and loaded into PostgreSQL. Its key columns are made `INT UNSIGNED` on the way in (the
//! published script uses signed `INT`; schemas like MySQL's Sakila use unsigned keys, which
//! once came out of cutover as `true`).
//!
//! The expected production is computed by the two servers themselves, by SQL written here
//! against the legacy tables (the in-scope rows) and against production, never from the
//! engine's own figures.

mod common;
use common::*;

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use cutover::testdb::{TempDb, mariadb, psql};

const AMERICAS: &str = "('USA', 'Canada', 'Brazil', 'Argentina', 'Chile')";

/// `CUTOVER_SAMPLES` if set, else the shared folder beside the checkout, else the
/// development machines' `/work/shared/samples`.
fn chinook_script() -> PathBuf {
    let candidates: Vec<PathBuf> = match std::env::var_os("CUTOVER_SAMPLES") {
        Some(d) => vec![PathBuf::from(d)],
        None => vec![
            repo().join("../shared/samples"),
            PathBuf::from("/work/shared/samples"),
        ],
    };
    candidates
        .iter()
        .map(|d| d.join("chinook/Chinook_MySql.sql"))
        .find(|p| p.exists())
        .unwrap_or_else(|| {
            panic!(
                "Chinook_MySql.sql is not in any of {candidates:?}: this test reads the public \
                 Chinook sample; point CUTOVER_SAMPLES at the folder holding chinook/"
            )
        })
}

/// The published script, into database `name`, with every key column made unsigned.
fn load_chinook(db: &TempDb) {
    let text = std::fs::read_to_string(chinook_script()).unwrap();
    let keys = regex::Regex::new(r"(`(?:\w+Id|ReportsTo)`) INT\b").unwrap();
    let text = keys.replace_all(&text, "$1 INT UNSIGNED");
    let text = text.replace("`Chinook`", &format!("`{}`", db.name));
    assert!(text.contains("`CustomerId` INT UNSIGNED NOT NULL"));
    let mut child = Command::new("mariadb")
        .args([
            "--default-character-set=utf8mb4",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
        ])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("mariadb client");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "loading Chinook into MariaDB failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Rows of a query on the legacy MariaDB database, raw (no escaping), one per line.
fn legacy_rows(db: &TempDb, sql: &str) -> Vec<String> {
    let out = Command::new("mariadb")
        .args([
            "--default-character-set=utf8mb4",
            "-h",
            "127.0.0.1",
            "-u",
            "root",
            "-N",
            "-B",
            "-r",
            &db.name,
            "-e",
            sql,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

/// Rows of a query on the PostgreSQL production, tab-separated, one per line.
fn production_rows(db: &TempDb, sql: &str) -> Vec<String> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", &db.name])
        .args(["-XAtq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    rows.sort();
    rows
}

/// (what, legacy in-scope rows, the same rows read back from production)
fn comparisons() -> Vec<(&'static str, String, &'static str)> {
    let n = "'∅'"; // NULL marker on both sides
    vec![
        (
            "artists",
            format!("SELECT ArtistId, IFNULL(Name, {n}) FROM Artist"),
            "SELECT legacy_id, coalesce(name, '∅') FROM artist",
        ),
        (
            "albums",
            "SELECT AlbumId, Title, ArtistId FROM Album".to_string(),
            "SELECT a.legacy_id, a.title, r.legacy_id FROM album a JOIN artist r ON r.id = a.artist_id",
        ),
        (
            "tracks",
            format!(
                "SELECT TrackId, Name, IFNULL(AlbumId, {n}), MediaTypeId, IFNULL(GenreId, {n}), \
                 IFNULL(Composer, {n}), Milliseconds, IFNULL(Bytes, {n}), UnitPrice FROM Track"
            ),
            "SELECT t.legacy_id, t.name, coalesce(a.legacy_id::text, '∅'), m.legacy_id, \
             coalesce(g.legacy_id::text, '∅'), coalesce(t.composer, '∅'), t.milliseconds, \
             coalesce(t.bytes::text, '∅'), t.unit_price FROM track t \
             LEFT JOIN album a ON a.id = t.album_id JOIN media_type m ON m.id = t.media_type_id \
             LEFT JOIN genre g ON g.id = t.genre_id",
        ),
        (
            "employees",
            format!(
                "SELECT EmployeeId, LastName, FirstName, IFNULL(Title, {n}), IFNULL(ReportsTo, {n}), \
                 IFNULL(DATE_FORMAT(BirthDate, '%Y-%m-%d %H:%i:%s'), {n}), \
                 IFNULL(DATE_FORMAT(HireDate, '%Y-%m-%d %H:%i:%s'), {n}), IFNULL(Email, {n}) FROM Employee"
            ),
            "SELECT legacy_id, last_name, first_name, coalesce(title, '∅'), \
             coalesce(reports_to_legacy_id::text, '∅'), \
             coalesce(to_char(birth_date, 'YYYY-MM-DD HH24:MI:SS'), '∅'), \
             coalesce(to_char(hire_date, 'YYYY-MM-DD HH24:MI:SS'), '∅'), coalesce(email, '∅') FROM employee",
        ),
        (
            "customers of the Americas",
            format!(
                "SELECT CustomerId, FirstName, LastName, IFNULL(Company, {n}), IFNULL(City, {n}), \
                 Country, Email, IFNULL(SupportRepId, {n}) FROM Customer WHERE Country IN {AMERICAS}"
            ),
            "SELECT c.legacy_id, c.first_name, c.last_name, coalesce(c.company, '∅'), \
             coalesce(c.city, '∅'), c.country, c.email, coalesce(e.legacy_id::text, '∅') \
             FROM customer c LEFT JOIN employee e ON e.id = c.support_rep_id",
        ),
        (
            "their invoices",
            format!(
                "SELECT i.InvoiceId, i.CustomerId, DATE_FORMAT(i.InvoiceDate, '%Y-%m-%d %H:%i:%s'), \
                 IFNULL(i.BillingCountry, {n}), i.Total FROM Invoice i \
                 JOIN Customer c ON c.CustomerId = i.CustomerId WHERE c.Country IN {AMERICAS}"
            ),
            "SELECT i.legacy_id, c.legacy_id, to_char(i.invoice_date, 'YYYY-MM-DD HH24:MI:SS'), \
             coalesce(i.billing_country, '∅'), i.total FROM invoice i JOIN customer c ON c.id = i.customer_id",
        ),
        (
            "their invoice lines",
            format!(
                "SELECT l.InvoiceLineId, l.InvoiceId, l.TrackId, l.UnitPrice, l.Quantity \
                 FROM InvoiceLine l JOIN Invoice i ON i.InvoiceId = l.InvoiceId \
                 JOIN Customer c ON c.CustomerId = i.CustomerId WHERE c.Country IN {AMERICAS}"
            ),
            "SELECT l.legacy_id, i.legacy_id, t.legacy_id, l.unit_price, l.quantity \
             FROM invoice_line l JOIN invoice i ON i.id = l.invoice_id JOIN track t ON t.id = l.track_id",
        ),
    ]
}

#[test]
fn chinook_on_mariadb_cuts_over_to_postgresql_with_exactly_the_in_scope_rows() {
    let legacy = TempDb::mysql("chinook");
    let staging = TempDb::postgres("chinook_stg");
    let production = TempDb::postgres("chinook_prod");
    load_chinook(&legacy);
    let app = format!("{}_app", legacy.name);
    mariadb(&format!(
        "CREATE USER '{app}'@'%'; GRANT SELECT, INSERT, UPDATE, DELETE ON `{}`.* TO '{app}'@'%'",
        legacy.name
    ));
    let users = format!("{}_users", production.name);
    psql("postgres", &format!("CREATE ROLE {users} NOLOGIN"));
    let dir = tempfile::tempdir().unwrap();
    let var = |k: &str, v: String| ["--var".to_string(), format!("{k}={v}")];
    let mut args: Vec<String> = vec![
        "run".into(),
        repo().join("runbooks/chinook.toml").display().to_string(),
        "--headless".into(),
        "--journal".into(),
        dir.path().join("journal.db").display().to_string(),
        "--sign-off".into(),
        "Migration lead|migration_lead|go|counts and sums match".into(),
        "--sign-off".into(),
        "Store manager|business|go|Americas invoices reconciled".into(),
    ];
    for (k, v) in [
        ("legacy_url", legacy.url()),
        ("legacy_app_users", format!("{app}@%")),
        ("staging_url", staging.url()),
        ("production_url", production.url()),
        ("production_users_role", users.clone()),
        (
            "backup_dir",
            dir.path().join("backups").display().to_string(),
        ),
        (
            "extract_dir",
            dir.path().join("extract").display().to_string(),
        ),
    ] {
        args.extend(var(k, v));
    }
    let out = Command::new(BIN)
        .args(&args)
        .args(["--json"])
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap();
    let cleanup = || {
        let _ = Command::new("mariadb")
            .args(["-h", "127.0.0.1", "-u", "root", "-e"])
            .arg(format!("DROP USER IF EXISTS '{app}'@'%'"))
            .output();
        let _ = Command::new("psql")
            .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE); DROP ROLE IF EXISTS {users}",
                production.name
            ))
            .output();
    };
    if code(&out) != 0 {
        cleanup();
        panic!(
            "the Chinook cutover failed (exit {}):\n{}",
            code(&out),
            stderr(&out)
        );
    }
    let summary = json(&out);

    // Production holds exactly the legacy's in-scope rows, value for value.
    let mut problems = Vec::new();
    for (what, legacy_sql, prod_sql) in comparisons() {
        let want = legacy_rows(&legacy, &legacy_sql);
        let got = production_rows(&production, prod_sql);
        assert!(!want.is_empty(), "{what}: no legacy rows in scope");
        if want != got {
            let missing: Vec<_> = want.iter().filter(|r| !got.contains(r)).take(3).collect();
            let extra: Vec<_> = got.iter().filter(|r| !want.contains(r)).take(3).collect();
            problems.push(format!(
                "{what}: legacy {} rows, production {}; missing {missing:?}; extra {extra:?}",
                want.len(),
                got.len()
            ));
        }
    }
    // The scope did cut: customers of other continents, and their sales, stayed behind.
    let all_customers = legacy_rows(&legacy, "SELECT COUNT(*) FROM Customer")[0].clone();
    let americas = production_rows(&production, "SELECT count(*) FROM customer")[0].clone();
    let invoices_left =
        legacy_rows(&legacy, &format!("SELECT COUNT(*) FROM Invoice i JOIN Customer c ON c.CustomerId = i.CustomerId WHERE c.Country NOT IN {AMERICAS}"))[0].clone();
    // After go-live the legacy stays frozen (read-only for its application), and production
    // is open to its users.
    let legacy_write = Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", &app, &legacy.name, "-e"])
        .arg("UPDATE Genre SET Name = Name WHERE GenreId = 1")
        .output()
        .unwrap();
    let connect = psql(
        "postgres",
        &format!(
            "SELECT has_database_privilege('{users}', '{}', 'CONNECT')",
            production.name
        ),
    );
    cleanup();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        all_customers.parse::<u32>().unwrap() > americas.parse::<u32>().unwrap(),
        "the scope kept every customer ({all_customers})"
    );
    assert!(invoices_left.parse::<u32>().unwrap() > 0);
    assert!(
        !legacy_write.status.success()
            && String::from_utf8_lossy(&legacy_write.stderr).contains("UPDATE command denied"),
        "the legacy is not frozen after the cutover: {}",
        String::from_utf8_lossy(&legacy_write.stderr)
    );
    assert_eq!(connect, "t", "production stayed closed to its users");
    assert_eq!(summary["outcome"], "completed", "{summary}");
    // No row of this clean sample is rejected.
    let entities = summary["entities"].as_object().expect("entities by name");
    assert_eq!(entities.len(), 9, "{summary}");
    for (name, e) in entities {
        assert_eq!(e["rejected"], 0, "{name}: {e}");
    }
}
