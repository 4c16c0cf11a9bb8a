//! Staging reset on every database: tables linked by foreign keys end empty, whatever
//! order they are named in where the server can truncate (PostgreSQL `TRUNCATE …
//! CASCADE`, MariaDB `TRUNCATE` with foreign key checks off in its own session), children
//! first on SQLite (`DELETE`). Foreign key checks are on again afterwards.

use cutover::db::{Db, Dialect};
use cutover::runbook::ResolvedEnv;
use cutover::testdb::TempDb;

fn env(url: String) -> ResolvedEnv {
    ResolvedEnv {
        name: "staging".into(),
        url,
        password: None,
        production: false,
        reset: true,
        app_users: vec![],
    }
}

fn ddl(d: Dialect) -> &'static str {
    match d {
        Dialect::Postgres => {
            "CREATE TABLE parent (id serial PRIMARY KEY, name text);
             CREATE TABLE child (id serial PRIMARY KEY, parent_id integer NOT NULL REFERENCES parent(id));
             CREATE TABLE grandchild (id serial PRIMARY KEY, child_id integer NOT NULL REFERENCES child(id));"
        }
        Dialect::MySql => {
            "CREATE TABLE parent (id INT AUTO_INCREMENT PRIMARY KEY, name TEXT) ENGINE=InnoDB;
             CREATE TABLE child (id INT AUTO_INCREMENT PRIMARY KEY, parent_id INT NOT NULL, FOREIGN KEY (parent_id) REFERENCES parent(id)) ENGINE=InnoDB;
             CREATE TABLE grandchild (id INT AUTO_INCREMENT PRIMARY KEY, child_id INT NOT NULL, FOREIGN KEY (child_id) REFERENCES child(id)) ENGINE=InnoDB;"
        }
        Dialect::Sqlite => {
            "PRAGMA foreign_keys = ON;
             CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT);
             CREATE TABLE child (id INTEGER PRIMARY KEY, parent_id INTEGER NOT NULL REFERENCES parent(id));
             CREATE TABLE grandchild (id INTEGER PRIMARY KEY, child_id INTEGER NOT NULL REFERENCES child(id));"
        }
    }
}

const ROWS: &str = "INSERT INTO parent (name) VALUES ('a'), ('b'), ('c');
    INSERT INTO child (parent_id) VALUES (1), (2), (3);
    INSERT INTO grandchild (child_id) VALUES (1), (2);";

/// Reset `order` and check the row counts left (`parent`, `child`, `grandchild`), or that
/// the reset was refused (`None`).
async fn reset_case(d: Dialect, url: String, order: &[&str], left: Option<[i64; 3]>) {
    let db = Db::connect(&env(url)).await.unwrap();
    db.exec(ddl(d)).await.unwrap();
    db.exec(ROWS).await.unwrap();
    let order: Vec<String> = order.iter().map(|s| s.to_string()).collect();
    let r = db.empty_tables(&order).await;
    let counts = [
        db.count("parent").await.unwrap(),
        db.count("child").await.unwrap(),
        db.count("grandchild").await.unwrap(),
    ];
    match left {
        Some(expect) => {
            r.unwrap_or_else(|e| panic!("{d:?} reset {order:?}: {e:#}"));
            assert_eq!(counts, expect, "{d:?}: rows left after reset {order:?}");
        }
        None => {
            let e = r.expect_err("refused");
            assert!(
                format!("{e:#}").contains("foreign key constraint fails"),
                "{d:?}: {e:#}"
            );
            assert_eq!(counts[2], 2, "{d:?}: the referring rows are intact");
            db.close().await;
            return;
        }
    }
    if d == Dialect::Postgres {
        // Identities restart: the staging rows number from 1 again.
        db.exec("INSERT INTO parent (name) VALUES ('again')")
            .await
            .unwrap();
        let mut id = String::new();
        db.for_each_row("SELECT id FROM parent", |c| {
            id = c[0].clone().unwrap_or_default();
            Ok(())
        })
        .await
        .unwrap();
        assert_eq!(id, "1", "RESTART IDENTITY");
    }
    if let Db::MySql(pool) = &db {
        // Every pooled connection checks foreign keys again.
        let mut held = Vec::new();
        for _ in 0..4 {
            let mut c = pool.acquire().await.unwrap();
            let on: i64 = sqlx::query_scalar("SELECT @@FOREIGN_KEY_CHECKS")
                .fetch_one(&mut *c)
                .await
                .unwrap();
            assert_eq!(on, 1, "foreign key checks are back on");
            held.push(c);
        }
        drop(held);
    }
    let orphan = db.exec("INSERT INTO child (parent_id) VALUES (999)").await;
    assert!(orphan.is_err(), "{d:?}: the foreign key still binds");
    db.close().await;
}

#[tokio::test]
async fn reset_staging_with_foreign_keys_ends_empty() {
    // PostgreSQL: parents first, and the table referring to `child` left out of the list:
    // CASCADE empties it too.
    let pg = TempDb::postgres("reset");
    reset_case(
        Dialect::Postgres,
        pg.url(),
        &["parent", "child"],
        Some([0, 0, 0]),
    )
    .await;
    // MariaDB: parents first; TRUNCATE with the checks off empties all three.
    let my = TempDb::mysql("reset");
    reset_case(
        Dialect::MySql,
        my.url(),
        &["parent", "child", "grandchild"],
        Some([0, 0, 0]),
    )
    .await;
    // MariaDB, a table outside the list refers to one in it: not truncated (its rows
    // would point at nothing); the delete is refused by its foreign key instead.
    let my = TempDb::mysql("reset");
    reset_case(Dialect::MySql, my.url(), &["child", "parent"], None).await;
    // SQLite deletes, children first.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("staging.db").display());
    reset_case(
        Dialect::Sqlite,
        url,
        &["grandchild", "child", "parent"],
        Some([0, 0, 0]),
    )
    .await;
}
