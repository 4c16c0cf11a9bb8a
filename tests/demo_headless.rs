//! `cutover demo --headless`: a legacy SQLite database is generated, frozen, extracted through
//! SQL, and the whole reference cutover runs. The freeze must really refuse writes.

mod common;
use common::*;

use std::process::Command;

#[test]
fn headless_demo_completes_and_the_frozen_legacy_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = Command::new(BIN)
        .args(["demo", "--headless", "--json", "--rows", "4000", "--dir"])
        .arg(&demo)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["outcome"], "completed");
    let steps: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(steps.len(), 9);

    // The extract came from the legacy database through SQL; its manifest counts every row.
    let legacy = demo.join("legacy.db");
    for f in j["extract"]["files"].as_array().unwrap() {
        let table = f["entity"].as_str().unwrap();
        assert_eq!(
            f["rows"].as_u64().unwrap().to_string(),
            sqlite(&legacy, &format!("SELECT COUNT(*) FROM {table}"))
        );
        assert!(std::path::Path::new(f["path"].as_str().unwrap()).exists());
    }
    // Freeze: the watermark is each legacy table's rows and content checksum, and every
    // write is refused.
    let wm = j["freeze"]["watermark"]["customers"].as_str().unwrap();
    let rows = format!(
        "rows={} sha256=",
        sqlite(&legacy, "SELECT COUNT(*) FROM customers")
    );
    assert!(wm.starts_with(&rows) && wm.len() == rows.len() + 64, "{wm}");
    for sql in [
        "INSERT INTO customers (legacy_id, name) VALUES ('NEW', 'written after freeze')",
        "UPDATE open_invoices SET amount_total = '0'",
        "DELETE FROM drivers",
    ] {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let err = rt.block_on(async {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", legacy.display()))
                .await
                .unwrap();
            let r = sqlx::query(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(&pool)
                .await;
            pool.close().await;
            r.expect_err("a write to the frozen legacy system must fail")
                .to_string()
        });
        assert!(err.contains("frozen by cutover"), "{sql}: {err}");
    }
    // Production holds exactly the valid rows, and every invoice has its partner.
    let prod = demo.join("production.db");
    for (entity, table) in [
        ("customers", "res_partner"),
        ("vehicles", "fleet_vehicle"),
        ("drivers", "hr_employee"),
        ("open_invoices", "account_move"),
    ] {
        assert_eq!(
            j["entities"][entity]["valid"].as_u64().unwrap().to_string(),
            sqlite(&prod, &format!("SELECT COUNT(*) FROM {table}")),
            "{entity}"
        );
    }
    assert_eq!(
        sqlite(
            &prod,
            "SELECT COUNT(*) FROM account_move m LEFT JOIN res_partner p ON p.id = m.partner_id WHERE p.id IS NULL"
        ),
        "0"
    );
    // In headless mode the demo signs for its approvers, and says so in the journal.
    assert!(
        j["sign_offs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["name"].as_str().unwrap().starts_with("Demo "))
    );
    let v = Command::new(BIN)
        .args(["journal", "verify"])
        .arg(demo.join("tms.toml"))
        .output()
        .unwrap();
    assert_eq!(code(&v), 0);
}
