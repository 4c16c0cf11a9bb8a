//! The PostgreSQL and MariaDB targets against the local servers, each test in its own throwaway
//! database. A server that is down fails the test (see `cutover::testdb`), never skips it.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sqlx::{MySqlPool, PgPool};

use cutover::db::Db;
use cutover::db::{mysql_pool, pg_pool};
use cutover::engine::pipeline::{bisect_rows, bisect_rows_as};
use cutover::engine::rules::SqlValue;
use cutover::target::sql::SqlTarget;
use cutover::target::{TableSpec, Target, TargetError};
use cutover::testdb::TempDb;

// ---------------------------------------------------------------- shared fixtures

/// Partner ids deliberately differ from their refs' numbers: `P<g>` has id 100 + 7g.
fn partner_id(g: u32) -> i32 {
    100 + 7 * g as i32
}

const PG_DDL: &str = "
CREATE TABLE res_partner (id integer PRIMARY KEY, ref varchar(16) NOT NULL UNIQUE, name text);
INSERT INTO res_partner SELECT 100 + 7 * g, 'P' || g, 'Partner ' || g FROM generate_series(1, 10) g;
CREATE TABLE account_move (
    id serial PRIMARY KEY,
    name varchar(32) NOT NULL UNIQUE,
    partner_id integer NOT NULL REFERENCES res_partner(id),
    amount numeric(14,2) NOT NULL CONSTRAINT amount_nonneg CHECK (amount >= 0),
    qty integer,
    date date,
    memo text
);";

fn mysql_ddl() -> String {
    let partners: Vec<String> = (1..=10)
        .map(|g| format!("({}, 'P{g}', 'Partner {g}')", partner_id(g)))
        .collect();
    format!(
        "CREATE TABLE res_partner (id INT PRIMARY KEY, ref VARCHAR(16) NOT NULL UNIQUE, name TEXT)
             ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
         INSERT INTO res_partner (id, ref, name) VALUES {};
         CREATE TABLE account_move (
             id INT AUTO_INCREMENT PRIMARY KEY,
             name VARCHAR(32) NOT NULL UNIQUE,
             partner_id INT NOT NULL,
             amount DECIMAL(14,2) NOT NULL,
             qty INT,
             date DATE,
             memo TEXT,
             -- not written by the sink: moves only when the row really changes
             touched TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6) ON UPDATE CURRENT_TIMESTAMP(6),
             CONSTRAINT amount_nonneg CHECK (amount >= 0),
             CONSTRAINT fk_partner FOREIGN KEY (partner_id) REFERENCES res_partner(id)
         ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;",
        partners.join(", ")
    )
}

fn moves_spec() -> TableSpec {
    TableSpec {
        table: "account_move".into(),
        key: "name".into(),
        columns: ["name", "partner_id", "amount", "qty", "date", "memo"]
            .map(String::from)
            .to_vec(),
    }
}

fn partner(r: &str) -> SqlValue {
    SqlValue::Lookup {
        table: "res_partner".into(),
        key: "ref".into(),
        id: "id".into(),
        value: r.into(),
    }
}

fn dec(s: &str) -> SqlValue {
    SqlValue::Dec(s.parse().unwrap())
}

/// `n` valid invoice rows; row `i` is named `INV/<i>` and points at partner `P<i % 10 + 1>`.
fn moves(n: usize) -> Vec<Vec<SqlValue>> {
    let day0 = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
    (0..n)
        .map(|i| {
            vec![
                SqlValue::Text(format!("INV/{i:04}")),
                partner(&format!("P{}", i % 10 + 1)),
                SqlValue::Dec(Decimal::new(i as i64 * 101 + 1, 2)),
                SqlValue::Int(i as i64),
                SqlValue::Date(day0 + chrono::Days::new(i as u64)),
                if i % 7 == 0 {
                    SqlValue::Null
                } else {
                    SqlValue::Text(format!("memo {i}"))
                },
            ]
        })
        .collect()
}

async fn pg(db: &TempDb) -> (PgPool, SqlTarget) {
    let pool = pg_pool(&db.url(), None).await.unwrap();
    (
        pool.clone(),
        SqlTarget::new(Db::Postgres(pool), "pg".into()),
    )
}

async fn maria(db: &TempDb) -> (MySqlPool, SqlTarget) {
    let pool = mysql_pool(&db.url(), None).await.unwrap();
    (
        pool.clone(),
        SqlTarget::new(Db::MySql(pool), "mariadb".into()),
    )
}

/// Rows refused by the database and the names still in the table, for a 1,000-row batch
/// with one bad row at `bad_at`.
fn assert_one_refused(
    (loaded, bad): (u64, Vec<(usize, String)>),
    bad_at: usize,
    message_has: &str,
) {
    assert_eq!(loaded, 999, "rows loaded");
    assert_eq!(bad.len(), 1, "refused rows: {bad:?}");
    assert_eq!(bad[0].0, bad_at, "refused row index");
    assert!(
        bad[0].1.contains(message_has),
        "message should name `{message_has}`: {}",
        bad[0].1
    );
}

/// Keys whose row content or write marker differs between two (key, row, marker) lists.
fn changed(before: &[(String, String, String)], after: &[(String, String, String)]) -> Vec<String> {
    assert_eq!(before.len(), after.len(), "row count changed");
    before
        .iter()
        .zip(after)
        .filter(|(a, b)| {
            assert_eq!(a.0, b.0, "keys changed");
            a.1 != b.1 || a.2 != b.2
        })
        .map(|(a, _)| a.0.clone())
        .collect()
}

// ---------------------------------------------------------------- both servers, one body

/// The servers every body below runs on, one test each (`per_server!`).
#[derive(Debug, Clone, Copy)]
enum Server {
    Postgres,
    MariaDb,
}

impl Server {
    fn temp(self, tag: &str) -> TempDb {
        match self {
            Server::Postgres => TempDb::postgres(tag),
            Server::MariaDb => TempDb::mysql(tag),
        }
    }

    fn moves_ddl(self) -> String {
        match self {
            Server::Postgres => PG_DDL.to_string(),
            Server::MariaDb => mysql_ddl(),
        }
    }

    fn ledger_ddl(self) -> &'static str {
        match self {
            Server::Postgres => {
                "CREATE TABLE ledger (id serial PRIMARY KEY, code text NOT NULL UNIQUE, \
                 debit numeric(14,2) NOT NULL, precise numeric(38,10))"
            }
            Server::MariaDb => {
                "CREATE TABLE ledger (id INT AUTO_INCREMENT PRIMARY KEY, code VARCHAR(16) NOT NULL UNIQUE, \
                 debit DECIMAL(14,2) NOT NULL, precise DECIMAL(38,10)) ENGINE=InnoDB"
            }
        }
    }

    async fn target(self, db: &TempDb) -> SqlTarget {
        match self {
            Server::Postgres => pg(db).await.1,
            Server::MariaDb => maria(db).await.1,
        }
    }
}

/// One body per server: `mod NAME { postgres, mariadb }`.
macro_rules! per_server {
    ($name:ident) => {
        mod $name {
            #[tokio::test]
            async fn postgres() {
                super::$name(super::Server::Postgres).await
            }
            #[tokio::test]
            async fn mariadb() {
                super::$name(super::Server::MariaDb).await
            }
        }
    };
}

/// The rows of `sql` as the server renders them as text (NULL as `None`).
async fn texts(t: &SqlTarget, sql: &str) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    t.db()
        .for_each_row(sql, |cells| {
            out.push(cells.to_vec());
            Ok(())
        })
        .await
        .unwrap();
    out
}

fn num(cell: &Option<String>) -> Decimal {
    cell.as_deref().expect("a value").parse().expect("a number")
}

/// (rows, distinct names, sum of qty) in account_move.
async fn names(t: &SqlTarget) -> (Decimal, Decimal, Decimal) {
    let r = texts(
        t,
        "SELECT COUNT(*), COUNT(DISTINCT name), SUM(qty) FROM account_move",
    )
    .await;
    (num(&r[0][0]), num(&r[0][1]), num(&r[0][2]))
}

per_server!(bisect_isolates_check_violation);
async fn bisect_isolates_check_violation(s: Server) {
    let db = s.temp("bisect_check");
    db.exec(&s.moves_ddl());
    let t = s.target(&db).await;
    let mut rows = moves(1000);
    rows[613][2] = dec("-5.00");
    let res = bisect_rows(&t, &moves_spec(), &rows).await.unwrap();
    assert_one_refused(res, 613, "amount_nonneg");
    let qty = Decimal::from((0..1000).sum::<i64>() - 613);
    assert_eq!(names(&t).await, (999.into(), 999.into(), qty));
    let bad = texts(
        &t,
        "SELECT COUNT(*) FROM account_move WHERE name = 'INV/0613'",
    )
    .await;
    assert_eq!(num(&bad[0][0]), Decimal::ZERO);
    t.close().await;
}

per_server!(bisect_isolates_missing_lookup);
async fn bisect_isolates_missing_lookup(s: Server) {
    let db = s.temp("bisect_lookup");
    db.exec(&s.moves_ddl());
    let t = s.target(&db).await;
    let mut rows = moves(1000);
    rows[421][1] = partner("P99");
    let res = bisect_rows(&t, &moves_spec(), &rows).await.unwrap();
    assert_one_refused(res, 421, "partner_id");
    let (n, _, qty) = names(&t).await;
    assert_eq!(
        (n, qty),
        (999.into(), Decimal::from((0..1000).sum::<i64>() - 421))
    );
    t.close().await;
}

per_server!(lookup_resolves_partner_id_in_database);
async fn lookup_resolves_partner_id_in_database(s: Server) {
    let db = s.temp("lookup");
    db.exec(&s.moves_ddl());
    let t = s.target(&db).await;
    let rows = moves(20);
    let (loaded, bad) = bisect_rows(&t, &moves_spec(), &rows).await.unwrap();
    assert_eq!((loaded, bad.len()), (20, 0));
    let got = texts(
        &t,
        "SELECT name, partner_id FROM account_move ORDER BY name",
    )
    .await;
    let want: Vec<Vec<Option<String>>> = (0..20)
        .map(|i| {
            vec![
                Some(format!("INV/{i:04}")),
                Some(partner_id(i % 10 + 1).to_string()),
            ]
        })
        .collect();
    assert_eq!(got, want);
    t.close().await;
}

per_server!(decimals_are_exact);
async fn decimals_are_exact(s: Server) {
    let db = s.temp("decimal");
    db.exec(s.ledger_ddl());
    let t = s.target(&db).await;
    let rows = ledger_rows();
    assert_eq!(
        bisect_rows(&t, &ledger_spec(), &rows).await.unwrap(),
        (1000, vec![])
    );
    let sums = texts(&t, "SELECT SUM(debit), SUM(precise) FROM ledger").await;
    assert_eq!(num(&sums[0][0]), expected_sum(&rows, 1));
    assert_eq!(num(&sums[0][1]), expected_sum(&rows, 2));
    let one = texts(&t, "SELECT debit, precise FROM ledger WHERE code = 'L997'").await;
    assert_eq!(
        one,
        [[
            Some("12345678.99".to_string()),
            Some("9971234567.1234567891".to_string())
        ]]
    );
    t.close().await;
}

// ---------------------------------------------------------------- PostgreSQL

/// (row count, md5 over every row in id order)
async fn pg_checksum(pool: &PgPool) -> (i64, String) {
    sqlx::query_as(
        "SELECT count(*), md5(string_agg(t::text, '|' ORDER BY t.id)) FROM account_move t",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// name → (whole row as text, xmin: the transaction that wrote this row version)
async fn pg_row_versions(pool: &PgPool) -> Vec<(String, String, String)> {
    sqlx::query_as("SELECT name::text, t::text, xmin::text FROM account_move t ORDER BY name")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn pg_rewrite_is_idempotent_and_updates_only_changes() {
    let db = TempDb::postgres("pg_idem");
    db.exec(PG_DDL);
    let (pool, sink) = pg(&db).await;
    let spec = moves_spec();
    let mut rows = moves(200);
    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (200, vec![])
    );
    let sum1 = pg_checksum(&pool).await;
    let v1 = pg_row_versions(&pool).await;
    assert_eq!(sum1.0, 200);

    // Same rows again: same content, and no row was rewritten (same xmin everywhere).
    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (200, vec![])
    );
    assert_eq!(pg_checksum(&pool).await, sum1);
    assert_eq!(
        changed(&v1, &pg_row_versions(&pool).await),
        Vec::<String>::new()
    );

    // One changed value: exactly that row is rewritten, with the new value.
    rows[57][2] = dec("999.99");
    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (200, vec![])
    );
    let sum3 = pg_checksum(&pool).await;
    assert_eq!(sum3.0, 200);
    assert_ne!(sum3.1, sum1.1);
    let v3 = pg_row_versions(&pool).await;
    assert_eq!(changed(&v1, &v3), ["INV/0057"]);
    let amount: String =
        sqlx::query_scalar("SELECT amount::text FROM account_move WHERE name = 'INV/0057'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(amount, "999.99");
    pool.close().await;
}

#[tokio::test]
async fn pg_same_key_twice_in_a_batch_loads_last_value() {
    // ON CONFLICT cannot touch a row twice in one statement (SQLSTATE 21000): that is
    // row-shaped, so bisect splits the pair and the later row wins.
    let db = TempDb::postgres("pg_dup_key");
    db.exec(PG_DDL);
    let (pool, sink) = pg(&db).await;
    let mut rows = moves(2);
    rows[1][0] = SqlValue::Text("INV/0000".into());
    let (loaded, bad) = bisect_rows(&sink, &moves_spec(), &rows).await.unwrap();
    assert_eq!((loaded, bad.len()), (2, 0));
    let got: (i64, i64) = sqlx::query_as("SELECT count(*), max(qty)::bigint FROM account_move")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(got, (1, 1));
    pool.close().await;
}

fn ledger_rows() -> Vec<Vec<SqlValue>> {
    let mut debits: Vec<&str> = vec!["0.10"; 997];
    debits.extend(["12345678.99", "-0.01", "99999999999.99"]);
    debits
        .iter()
        .enumerate()
        .map(|(i, d)| {
            vec![
                SqlValue::Text(format!("L{i}")),
                dec(d),
                // 28 significant digits: beyond any f64, so only exact text survives.
                dec(&format!("{i}1234567.1234567891")),
            ]
        })
        .collect()
}

fn ledger_spec() -> TableSpec {
    TableSpec {
        table: "ledger".into(),
        key: "code".into(),
        columns: ["code", "debit", "precise"].map(String::from).to_vec(),
    }
}

fn expected_sum(rows: &[Vec<SqlValue>], col: usize) -> Decimal {
    rows.iter()
        .map(|r| match &r[col] {
            SqlValue::Dec(d) => *d,
            v => panic!("{v:?}"),
        })
        .sum()
}

/// Values that are structure in COPY's text format, or easy to confuse with NULL.
fn edge_texts() -> Vec<(&'static str, Option<&'static str>)> {
    vec![
        ("tab", Some("a\tb")),
        ("newline", Some("line1\nline2")),
        ("crlf", Some("x\r\ny")),
        ("backslash", Some("C:\\dir\\file")),
        ("trailing_bs", Some("ends with \\")),
        ("slash_n", Some("\\N")),
        ("end_of_data", Some("\\.")),
        ("empty", Some("")),
        ("null", None),
        ("quotes", Some("it's \"quoted\", with, commas")),
        ("accent", Some("é café — 日本")),
        ("spaces", Some("  padded  ")),
    ]
}

fn notes_spec() -> TableSpec {
    TableSpec {
        table: "notes".into(),
        key: "code".into(),
        columns: ["code", "body", "short"].map(String::from).to_vec(),
    }
}

fn note_rows() -> Vec<Vec<SqlValue>> {
    edge_texts()
        .into_iter()
        .map(|(code, body)| {
            vec![
                SqlValue::Text(code.into()),
                body.map_or(SqlValue::Null, |b| SqlValue::Text(b.into())),
                SqlValue::Text("ok".into()),
            ]
        })
        .collect()
}

fn want_notes() -> Vec<(String, Option<String>)> {
    let mut want: Vec<(String, Option<String>)> = edge_texts()
        .into_iter()
        .map(|(c, b)| (c.to_string(), b.map(String::from)))
        .collect();
    want.sort();
    want
}

#[tokio::test]
async fn pg_text_edge_cases_survive_copy() {
    let db = TempDb::postgres("pg_text");
    db.exec("CREATE TABLE notes (code text PRIMARY KEY, body text, short varchar(8))");
    let (pool, sink) = pg(&db).await;
    let rows = note_rows();
    assert_eq!(
        bisect_rows(&sink, &notes_spec(), &rows).await.unwrap(),
        (rows.len() as u64, vec![])
    );
    let got: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT code, body FROM notes ORDER BY code COLLATE \"C\"")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(got, want_notes());
    let nulls: (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE body IS NULL), count(*) FILTER (WHERE body = '') FROM notes",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(nulls, (1, 1));

    // Too long for varchar(8): refused, not silently cut to 8 characters.
    let long = [
        SqlValue::Text("long".into()),
        SqlValue::Null,
        SqlValue::Text("123456789".into()),
    ];
    match sink.write_batch(&notes_spec(), &[&long], true).await {
        Err(TargetError::Rows(m)) => assert!(m.contains("too long"), "{m}"),
        other => panic!("expected a row error, got {other:?}"),
    }
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM notes WHERE code = 'long'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    pool.close().await;
}

/// A lookup whose ids are text (not the usual integer): every id that is structure in
/// COPY's text format, or looks like NULL, reaches the table as it is in the lookup table
/// (the server escapes the ids it sends back), and a key with no row loads NULL.
#[tokio::test]
async fn pg_text_ids_of_a_lookup_survive_copy() {
    let db = TempDb::postgres("pg_text_ids");
    db.exec(
        "CREATE TABLE codes (name text PRIMARY KEY, code text); \
         CREATE TABLE tagged (ref text PRIMARY KEY, code text)",
    );
    let (pool, sink) = pg(&db).await;
    let ids: Vec<(String, Option<&str>)> = edge_texts()
        .into_iter()
        .map(|(name, id)| (name.to_string(), id))
        .collect();
    for (name, id) in &ids {
        sqlx::query("INSERT INTO codes VALUES ($1, $2)")
            .bind(name)
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
    }
    let spec = TableSpec {
        table: "tagged".into(),
        key: "ref".into(),
        columns: ["ref", "code"].map(String::from).to_vec(),
    };
    let lookup = |name: &str| SqlValue::Lookup {
        table: "codes".into(),
        key: "name".into(),
        id: "code".into(),
        value: name.into(),
    };
    let mut rows: Vec<Vec<SqlValue>> = ids
        .iter()
        .map(|(name, _)| vec![SqlValue::Text(format!("r-{name}")), lookup(name)])
        .collect();
    rows.push(vec![SqlValue::Text("r-nobody".into()), lookup("nobody")]);
    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (rows.len() as u64, vec![])
    );
    let got: Vec<(String, Option<String>)> =
        sqlx::query_as("SELECT ref, code FROM tagged ORDER BY ref COLLATE \"C\"")
            .fetch_all(&pool)
            .await
            .unwrap();
    let mut want: Vec<(String, Option<String>)> = ids
        .iter()
        .map(|(name, id)| (format!("r-{name}"), id.map(String::from)))
        .chain([("r-nobody".to_string(), None)])
        .collect();
    want.sort();
    assert_eq!(got, want);
    pool.close().await;
}

#[tokio::test]
async fn pg_missing_table_or_column_is_infra_and_not_bisected() {
    let db = TempDb::postgres("pg_infra");
    db.exec(PG_DDL);
    let (pool, sink) = pg(&db).await;
    let rows = moves(10);
    let mut spec = moves_spec();
    spec.table = "no_such_table".into();
    let refs: Vec<&[SqlValue]> = rows.iter().map(|r| r.as_slice()).collect();
    assert!(matches!(
        sink.write_batch(&spec, &refs, true).await,
        Err(TargetError::Fatal(_))
    ));
    assert!(bisect_rows(&sink, &spec, &rows).await.is_err());

    let mut spec = moves_spec();
    spec.columns[5] = "no_such_column".into();
    assert!(matches!(
        sink.write_batch(&spec, &refs, true).await,
        Err(TargetError::Fatal(_))
    ));
    assert!(bisect_rows(&sink, &spec, &rows).await.is_err());

    // A key without a unique index: ON CONFLICT has nothing to arbitrate on (42P10).
    let mut spec = moves_spec();
    spec.key = "memo".into();
    match sink.write_batch(&spec, &refs, true).await {
        Err(TargetError::Fatal(e)) => assert!(format!("{e:#}").contains("ON CONFLICT"), "{e:#}"),
        Err(TargetError::Rows(m)) => panic!("classified as rows: {m}"),
        Err(TargetError::Transient(e)) => panic!("classified as transient: {e:#}"),
        Ok(_) => panic!("no error"),
    }
    assert!(bisect_rows(&sink, &spec, &rows).await.is_err());
    let n: i64 = sqlx::query_scalar("SELECT count(*) FROM account_move")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    pool.close().await;
}

// ---------------------------------------------------------------- MariaDB

/// Every column the sink writes, NULL-safe (QUOTE gives `NULL`), `touched` left out.
const MARIA_ROW: &str =
    "CONCAT_WS('|', id, QUOTE(name), partner_id, amount, QUOTE(qty), QUOTE(date), QUOTE(memo))";

async fn maria_checksum(pool: &MySqlPool) -> (i64, String) {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT COUNT(*), CAST(MD5(GROUP_CONCAT({MARIA_ROW} ORDER BY id SEPARATOR '\\n')) AS CHAR) \
         FROM account_move"
    )))
    .fetch_one(pool)
    .await
    .unwrap()
}

/// name → (row as text, `touched`: moves only when the row really changes)
async fn maria_row_versions(pool: &MySqlPool) -> Vec<(String, String, String)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT name, {MARIA_ROW}, CAST(touched AS CHAR) FROM account_move ORDER BY name"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn maria_rewrite_is_idempotent_and_updates_only_changes() {
    let db = TempDb::mysql("my_idem");
    db.exec(&mysql_ddl());
    let (pool, sink) = maria(&db).await;
    let spec = moves_spec();
    let mut rows = moves(200);
    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (200, vec![])
    );
    let sum1 = maria_checksum(&pool).await;
    let v1 = maria_row_versions(&pool).await;
    assert_eq!(sum1.0, 200);
    // Let the clock move on, so a rewritten row would show a different `touched`.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;

    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (200, vec![])
    );
    assert_eq!(maria_checksum(&pool).await, sum1);
    assert_eq!(
        changed(&v1, &maria_row_versions(&pool).await),
        Vec::<String>::new()
    );

    rows[57][2] = dec("999.99");
    assert_eq!(
        bisect_rows(&sink, &spec, &rows).await.unwrap(),
        (200, vec![])
    );
    let sum3 = maria_checksum(&pool).await;
    assert_eq!(sum3.0, 200);
    assert_ne!(sum3.1, sum1.1);
    let v3 = maria_row_versions(&pool).await;
    assert_eq!(changed(&v1, &v3), ["INV/0057"]);
    let amount: String =
        sqlx::query_scalar("SELECT CAST(amount AS CHAR) FROM account_move WHERE name = 'INV/0057'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(amount, "999.99");
    pool.close().await;
}

#[tokio::test]
async fn maria_text_edge_cases_survive() {
    let db = TempDb::mysql("my_text");
    db.exec(
        "CREATE TABLE notes (code VARCHAR(32) PRIMARY KEY, body TEXT, short VARCHAR(8))
         ENGINE=InnoDB DEFAULT CHARSET=utf8mb4",
    );
    let (pool, sink) = maria(&db).await;
    let rows = note_rows();
    assert_eq!(
        bisect_rows(&sink, &notes_spec(), &rows).await.unwrap(),
        (rows.len() as u64, vec![])
    );
    let mut got: Vec<(String, Option<String>)> = sqlx::query_as("SELECT code, body FROM notes")
        .fetch_all(&pool)
        .await
        .unwrap();
    got.sort();
    assert_eq!(got, want_notes());

    let long = [
        SqlValue::Text("long".into()),
        SqlValue::Null,
        SqlValue::Text("123456789".into()),
    ];
    match sink.write_batch(&notes_spec(), &[&long], true).await {
        Err(TargetError::Rows(m)) => assert!(m.contains("too long"), "{m}"),
        other => panic!("expected a row error, got {other:?}"),
    }
    pool.close().await;
}

#[tokio::test]
async fn maria_missing_table_or_column_is_infra_and_not_bisected() {
    let db = TempDb::mysql("my_infra");
    db.exec(&mysql_ddl());
    let (pool, sink) = maria(&db).await;
    let rows = moves(10);
    let refs: Vec<&[SqlValue]> = rows.iter().map(|r| r.as_slice()).collect();
    let mut spec = moves_spec();
    spec.table = "no_such_table".into();
    assert!(matches!(
        sink.write_batch(&spec, &refs, true).await,
        Err(TargetError::Fatal(_))
    ));
    assert!(bisect_rows(&sink, &spec, &rows).await.is_err());

    let mut spec = moves_spec();
    spec.columns[5] = "no_such_column".into();
    assert!(matches!(
        sink.write_batch(&spec, &refs, true).await,
        Err(TargetError::Fatal(_))
    ));
    assert!(bisect_rows(&sink, &spec, &rows).await.is_err());
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM account_move")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(n, 0);
    pool.close().await;
}

// ---------------------------------------------------------------- lookups

/// A lookup table with an integer key, holding one key twice: `depot (id, code)`.
const DEPOTS: &str = "
CREATE TABLE depot (id integer PRIMARY KEY, code integer NOT NULL);
INSERT INTO depot VALUES (1, 10), (2, 20), (3, 30), (4, 30);
CREATE TABLE trip (name text PRIMARY KEY, depot_id integer NOT NULL REFERENCES depot(id));";

fn trip_spec() -> TableSpec {
    TableSpec {
        table: "trip".into(),
        key: "name".into(),
        columns: vec!["name".into(), "depot_id".into()],
    }
}

fn trip(i: usize, code: &str) -> Vec<SqlValue> {
    vec![
        SqlValue::Text(format!("T{i:03}")),
        SqlValue::Lookup {
            table: "depot".into(),
            key: "code".into(),
            id: "id".into(),
            value: code.into(),
        },
    ]
}

/// The statements that wrote `account_move`, as the server saw them (a statement trigger
/// records `current_query()`).
const STATEMENT_LOG: &str = "
CREATE TABLE wrote (stmt text);
CREATE FUNCTION log_stmt() RETURNS trigger LANGUAGE plpgsql AS
  $$ BEGIN INSERT INTO wrote VALUES (current_query()); RETURN NULL; END $$;
CREATE TRIGGER log_stmt AFTER INSERT ON account_move FOR EACH STATEMENT EXECUTE FUNCTION log_stmt();";

/// A batch new to its table goes in with one `COPY` although a column is a lookup: the
/// ids were read before the write; a key that found no row is refused by the table (NOT
/// NULL), named by the bisect, and the other rows load with the right ids.
#[tokio::test]
async fn pg_lookups_resolved_before_the_write_let_a_new_batch_copy_straight_in() {
    let db = TempDb::postgres("pg_lookup_copy");
    db.exec(PG_DDL);
    db.exec(STATEMENT_LOG);
    let (pool, sink) = pg(&db).await;
    let mut rows = moves(300);
    rows[17][1] = partner("P99");
    let (loaded, bad) = bisect_rows_as(&sink, &moves_spec(), &rows, false)
        .await
        .unwrap();
    assert_eq!((loaded, bad.len()), (299, 1), "{bad:?}");
    assert_eq!(bad[0].0, 17);
    assert!(bad[0].1.contains("partner_id"), "{}", bad[0].1);
    let wrong: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM account_move m JOIN res_partner p ON p.id = m.partner_id \
         WHERE p.ref <> 'P' || (substr(m.name, 5)::int % 10 + 1)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(wrong, 0, "every move points at its own partner");
    let stmts: Vec<String> = sqlx::query_scalar("SELECT stmt FROM wrote")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(!stmts.is_empty());
    assert!(
        stmts.iter().all(|s| s.starts_with("COPY \"account_move\"")),
        "every write a COPY straight into the table: {stmts:?}"
    );
    pool.close().await;
}

/// Keys the client-side read cannot decide keep the server's own refusal: a key its
/// column cannot hold (`'x'` for an integer) and a key matching two rows are each refused
/// by the bisect with the server's message; every other row loads with its id.
#[tokio::test]
async fn pg_lookup_keys_of_the_wrong_type_or_matching_twice_are_refused_by_the_server() {
    let db = TempDb::postgres("pg_lookup_undecided");
    db.exec(DEPOTS);
    let (pool, sink) = pg(&db).await;
    for may_conflict in [false, true] {
        sqlx::query("DELETE FROM trip")
            .execute(&pool)
            .await
            .unwrap();
        let mut rows: Vec<Vec<SqlValue>> = (0..40)
            .map(|i| trip(i, if i.is_multiple_of(2) { "10" } else { "20" }))
            .collect();
        rows[5] = trip(5, "x");
        rows[9] = trip(9, "30");
        let (loaded, bad) = bisect_rows_as(&sink, &trip_spec(), &rows, may_conflict)
            .await
            .unwrap();
        assert_eq!(loaded, 38, "may_conflict {may_conflict}: {bad:?}");
        let refused: Vec<usize> = bad.iter().map(|b| b.0).collect();
        assert_eq!(refused, [5, 9]);
        assert!(bad[0].1.contains("invalid input syntax"), "{}", bad[0].1);
        assert!(bad[1].1.contains("more than one row"), "{}", bad[1].1);
        let ids: Vec<(String, i32)> = sqlx::query_as("SELECT name, depot_id FROM trip")
            .fetch_all(&pool)
            .await
            .unwrap();
        assert_eq!(ids.len(), 38);
        for (name, id) in ids {
            let i: usize = name[1..].parse().unwrap();
            assert_eq!(id, if i.is_multiple_of(2) { 1 } else { 2 }, "{name}");
        }
    }
    pool.close().await;
}

// ---------------------------------------------------------------- sockets

/// Whether this process's TCP socket bound to local `port` has TCP_NODELAY.
fn nodelay_of_local_port(port: u16) -> bool {
    use std::os::fd::BorrowedFd;
    for entry in std::fs::read_dir("/proc/self/fd").unwrap().flatten() {
        let Some(fd) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // SAFETY: borrowed for two getsockopt calls; a closed fd makes them fail.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        let sock = socket2::SockRef::from(&fd);
        if sock
            .local_addr()
            .ok()
            .and_then(|a| a.as_socket())
            .is_some_and(|a| a.port() == port)
        {
            return sock.tcp_nodelay().unwrap();
        }
    }
    panic!("no socket of this process on local port {port}");
}

/// sqlx 0.9.0 opens TCP connections without TCP_NODELAY, so a COPY's end message waited
/// for the server's delayed ACK (about 40 ms a batch); every pooled connection to either
/// server sends at once.
#[tokio::test]
async fn pooled_connections_to_both_servers_set_tcp_nodelay() {
    let db = TempDb::postgres("nodelay");
    let (pool, _) = pg(&db).await;
    let mut conn = pool.acquire().await.unwrap();
    let port: i32 = sqlx::query_scalar("SELECT inet_client_port()")
        .fetch_one(&mut *conn)
        .await
        .unwrap();
    assert!(nodelay_of_local_port(port as u16), "PostgreSQL connection");
    drop(conn);
    pool.close().await;

    let db = TempDb::mysql("nodelay");
    let (pool, _) = maria(&db).await;
    let mut conn = pool.acquire().await.unwrap();
    let host: String = sqlx::query_scalar(
        "SELECT host FROM information_schema.processlist WHERE id = CONNECTION_ID()",
    )
    .fetch_one(&mut *conn)
    .await
    .unwrap();
    let port: u16 = host.rsplit(':').next().unwrap().parse().unwrap();
    assert!(nodelay_of_local_port(port), "MariaDB connection ({host})");
    drop(conn);
    pool.close().await;
}
