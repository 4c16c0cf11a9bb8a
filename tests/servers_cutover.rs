//! The reference cutover on the real servers: MariaDB legacy → PostgreSQL staging and
//! production (`runbooks/tms-postgres.toml`), and the same runbook pointed elsewhere by
//! its URLs. Every test creates and drops its own databases, roles and accounts; a server
//! that is down fails the test with the command that starts it.
//!
//! Expected figures come from the independent Python oracle run on the extract the run
//! itself wrote, never from the engine's own output.

mod common;
use common::*;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use cutover::demo::{GenOptions, write_legacy_db};
use cutover::testdb::{TempDb, mariadb, psql};

fn tms_pg() -> PathBuf {
    repo().join("runbooks/tms-postgres.toml")
}

/// Legacy, staging and production databases plus the application's accounts.
struct Site {
    dir: tempfile::TempDir,
    legacy: TempDb,
    staging: TempDb,
    production: TempDb,
    /// MariaDB account of the legacy application (`name@%`), or PG role on a PG legacy.
    legacy_user: String,
    /// PostgreSQL role of production's users, and a login that is a member of it; on a
    /// MariaDB production, one account.
    users_role: String,
    users_login: String,
    journal: Option<TempDb>,
}

fn fill_legacy(db: &TempDb) {
    let env = cutover::runbook::ResolvedEnv {
        name: "legacy".into(),
        url: db.url(),
        password: None,
        production: false,
        reset: false,
        app_users: vec![],
    };
    block_on(async {
        let c = cutover::db::Db::connect(&env).await.unwrap();
        write_legacy_db(&c, &GenOptions::demo()).await.unwrap();
        c.close().await;
    });
}

impl Site {
    /// MariaDB legacy, PostgreSQL staging and production: the reference layout.
    fn reference(tag: &str) -> Site {
        Site::new(
            TempDb::mysql(tag),
            TempDb::postgres(tag),
            TempDb::postgres(tag),
        )
    }

    fn new(legacy: TempDb, staging: TempDb, production: TempDb) -> Site {
        fill_legacy(&legacy);
        let legacy_user = format!("{}_app", legacy.name);
        match legacy.dialect {
            cutover::db::Dialect::MySql => {
                mariadb(&format!(
                    "CREATE USER '{legacy_user}'@'%'; GRANT SELECT, INSERT, UPDATE, DELETE ON {}.* TO '{legacy_user}'@'%'",
                    legacy.name
                ));
            }
            _ => {
                psql("postgres", &format!("CREATE ROLE {legacy_user} LOGIN"));
                legacy.exec(&format!(
                    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {legacy_user}"
                ));
            }
        }
        let users_role = format!("{}_users", production.name);
        let users_login = format!("{}_u1", production.name);
        match production.dialect {
            cutover::db::Dialect::Postgres => {
                psql("postgres", &format!("CREATE ROLE {users_role} NOLOGIN"));
                psql(
                    "postgres",
                    &format!("CREATE ROLE {users_login} LOGIN IN ROLE {users_role}"),
                );
            }
            _ => {
                mariadb(&format!(
                    "CREATE USER '{users_role}'@'%'; GRANT SELECT ON {}.* TO '{users_role}'@'%'",
                    production.name
                ));
            }
        }
        Site {
            dir: tempfile::tempdir().unwrap(),
            legacy,
            staging,
            production,
            legacy_user,
            users_role,
            users_login,
            journal: None,
        }
    }

    fn flags(&self) -> Vec<String> {
        let legacy_users = match self.legacy.dialect {
            cutover::db::Dialect::MySql => format!("{}@%", self.legacy_user),
            _ => self.legacy_user.clone(),
        };
        let users = match self.production.dialect {
            cutover::db::Dialect::MySql => format!("{}@%", self.users_role),
            _ => self.users_role.clone(),
        };
        let mut f = vec![
            "--headless".to_string(),
            "--var".into(),
            format!("legacy_url={}", self.legacy.url()),
            "--var".into(),
            format!("staging_url={}", self.staging.url()),
            "--var".into(),
            format!("production_url={}", self.production.url()),
            "--var".into(),
            format!("legacy_app_users={legacy_users}"),
            "--var".into(),
            format!("production_users_role={users}"),
            "--var".into(),
            format!("extract_dir={}", self.dir.path().join("extract").display()),
            "--var".into(),
            format!("backup_dir={}", self.dir.path().join("backups").display()),
            "--journal".into(),
        ];
        f.push(match &self.journal {
            Some(j) => j.url(),
            None => self.dir.path().join("journal.db").display().to_string(),
        });
        f
    }

    fn cutover(&self, args: &[&str], runbook: &Path) -> Output {
        Command::new(BIN)
            .args(args.iter().take(1))
            .arg(runbook)
            .args(self.flags())
            .args(args.iter().skip(1))
            .env_remove("CUTOVER_JOURNAL")
            .output()
            .unwrap()
    }

    /// A copy of the reference runbook with `extra` TOML inserted before the step `before`.
    fn variant(&self, before: &str, extra: &str) -> PathBuf {
        let text = std::fs::read_to_string(tms_pg()).unwrap();
        let marker = format!("[[steps]]\nid = \"{before}\"");
        assert!(text.contains(&marker), "no step {before}");
        let p = self.dir.path().join("variant.toml");
        std::fs::write(&p, text.replace(&marker, &format!("{extra}\n{marker}"))).unwrap();
        p
    }

    /// Rows and a content checksum of each production table, computed by the server.
    fn production_state(&self) -> String {
        table_state(&self.production)
    }
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
            cutover::db::Dialect::Postgres => format!(
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

impl Drop for Site {
    fn drop(&mut self) {
        // Databases first: a role that holds privileges on one cannot be dropped.
        for db in [&self.legacy, &self.staging, &self.production] {
            match db.dialect {
                cutover::db::Dialect::Postgres => {
                    let _ = Command::new("psql")
                        .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
                        .arg(format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", db.name))
                        .output();
                }
                _ => {
                    let _ = Command::new("mariadb")
                        .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                        .arg(format!("DROP DATABASE IF EXISTS {}", db.name))
                        .output();
                }
            }
        }
        let pg_roles = [&self.users_login, &self.users_role, &self.legacy_user];
        for r in pg_roles {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-c"])
                .arg(format!("DROP ROLE IF EXISTS {r}"))
                .output();
            let _ = Command::new("mariadb")
                .args(["-h", "127.0.0.1", "-u", "root", "-e"])
                .arg(format!("DROP USER IF EXISTS '{r}'@'%'"))
                .output();
        }
    }
}

/// Run SQL as one of the application's PostgreSQL users (trust auth: no password).
fn as_pg_user(user: &str, db: &str, sql: &str) -> Output {
    Command::new("psql")
        .args(["-h", "127.0.0.1", "-U", user, "-d", db, "-XAtc", sql])
        .output()
        .unwrap()
}

/// Run SQL as one of the application's MariaDB accounts (no password).
fn as_mariadb_user(user: &str, sql: &str) -> Output {
    Command::new("mariadb")
        .args(["-h", "127.0.0.1", "-u", user, "-N", "-e", sql])
        .output()
        .unwrap()
}

fn ok(out: &Output, want: i32) {
    assert_eq!(
        code(out),
        want,
        "exit code\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
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

#[test]
fn reference_cutover_mariadb_to_postgres_is_exact_frozen_and_idempotent() {
    let mut site = Site::reference("ref");
    site.journal = Some(TempDb::postgres("journal"));
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &tms_pg());
    ok(&out, 0);
    let summary = json(&out);
    let want = oracle(&extract_dir(&summary));
    assert_matches_oracle(&site.production, &want);

    // The legacy application's account can still read but no longer write.
    let as_app = |sql: &str| as_mariadb_user(&site.legacy_user, sql);
    let read = as_app(&format!(
        "SELECT COUNT(*) FROM {}.customers",
        site.legacy.name
    ));
    assert!(read.status.success(), "{}", stderr(&read));
    let write = as_app(&format!(
        "INSERT INTO {}.customers (legacy_id) VALUES ('LATE-1')",
        site.legacy.name
    ));
    assert!(!write.status.success(), "a write after the freeze landed");
    assert!(stderr(&write).contains("denied"), "{}", stderr(&write));

    // Unfreeze let production's users back in.
    let login = as_pg_user(&site.users_login, &site.production.name, "SELECT 1");
    assert!(login.status.success(), "{}", stderr(&login));

    // A second load of the same extract changes nothing.
    let before = site.production_state();
    let again = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &tms_pg());
    ok(&again, 0);
    assert_eq!(site.production_state(), before);

    // The PostgreSQL journal holds both runs and its chain verifies.
    let v = Command::new(BIN)
        .args(["journal", "verify", "--journal"])
        .arg(site.journal.as_ref().unwrap().url())
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
    let site = Site::reference("closed");
    let out = site.cutover(&["run", "--until", "backup"], &tms_pg());
    ok(&out, 0);
    let login = as_pg_user(&site.users_login, &site.production.name, "SELECT 1");
    assert!(!login.status.success(), "a user got into production");
    assert!(
        stderr(&login).contains("permission denied for database"),
        "{}",
        stderr(&login)
    );
}

#[test]
fn failure_after_load_restores_postgres_production_to_its_exact_prior_state() {
    let site = Site::reference("rollback");
    // Production already holds data of its own.
    let ddl = {
        let text = std::fs::read_to_string(tms_pg()).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        v["schema"]["postgres"].as_str().unwrap().to_string()
    };
    site.production.exec(&ddl);
    site.production.exec(
        "INSERT INTO res_partner (ref, name, credit_limit) VALUES ('EXISTING-1', 'Kept Customer', 10.50);
         INSERT INTO account_move (name, partner_id, currency, amount_untaxed, amount_tax, amount_total, amount_residual, payment_state)
           SELECT 'EXISTING-INV', id, 'EUR', 1, 0.19, 1.19, 1.19, 'not_paid' FROM res_partner;",
    );
    let before = site.production_state();
    let runbook = site.variant(
        "verify",
        "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"echo smoke test failed >&2; exit 1\"\ntimeout = \"30s\"\n",
    );
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &runbook);
    ok(&out, 6);
    let s = json(&out);
    assert_eq!(s["rollback"]["ok"], true, "{s}");
    assert_ne!(before, "", "state was read");
    assert_eq!(site.production_state(), before);
    // The command's output reached the journal-backed summary via the step message.
    assert!(
        stderr(&out).contains("smoke test failed"),
        "{}",
        stderr(&out)
    );
    // Rollback reopened the legacy system for its application.
    let write = as_mariadb_user(
        &site.legacy_user,
        &format!(
            "INSERT INTO {}.customers (legacy_id) VALUES ('AFTER-ROLLBACK')",
            site.legacy.name
        ),
    );
    assert!(write.status.success(), "{}", stderr(&write));
}

#[test]
fn postgres_legacy_freeze_refuses_writes_and_a_broken_freeze_stops_the_load() {
    // Legacy on PostgreSQL, targets on MariaDB: the URLs alone pick the drivers.
    let site = Site::new(
        TempDb::postgres("pgleg"),
        TempDb::mysql("pgleg"),
        TempDb::mysql("pgleg"),
    );
    let out = site.cutover(&["run", "--until", "freeze"], &tms_pg());
    ok(&out, 0);
    let write = as_pg_user(
        &site.legacy_user,
        &site.legacy.name,
        "INSERT INTO customers (legacy_id) VALUES ('LATE')",
    );
    assert!(!write.status.success(), "a write after the freeze landed");
    assert!(
        stderr(&write).contains("read-only transaction"),
        "{}",
        stderr(&write)
    );

    // A privileged writer slips past the freeze before the load: the run must stop.
    let runbook = site.variant(
        "extract",
        &format!(
            "[[steps]]\nid = \"sneaky_write\"\nkind = \"command\"\nrun = \"psql -h 127.0.0.1 -U postgres -d {} -XAtc \\\"BEGIN READ WRITE; INSERT INTO customers (legacy_id) VALUES ('SNEAK'); COMMIT;\\\"\"\n",
            site.legacy.name
        ),
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
    let write = as_pg_user(
        &site.legacy_user,
        &site.legacy.name,
        "INSERT INTO customers (legacy_id) VALUES ('REOPENED')",
    );
    assert!(write.status.success(), "{}", stderr(&write));
    // The load never started: production has no table of the cutover's.
    assert_eq!(
        site.production.exec(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = 'account_move'"
        ),
        "0"
    );
}

#[test]
fn mariadb_production_rolls_back_to_its_dump_then_loads_exactly() {
    // Legacy on PostgreSQL this time; staging and production on MariaDB.
    let site = Site::new(
        TempDb::postgres("myprod"),
        TempDb::mysql("myprod"),
        TempDb::mysql("myprod"),
    );
    let before = table_state(&site.production);
    let failing = site.variant(
        "verify",
        "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"echo smoke test failed; exit 7\"\n",
    );
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &failing);
    ok(&out, 6);
    assert_eq!(json(&out)["rollback"]["ok"], true);
    assert_eq!(table_state(&site.production), before, "production restored");
    // The legacy application writes again after the rollback.
    let write = as_pg_user(
        &site.legacy_user,
        &site.legacy.name,
        "INSERT INTO customers (legacy_id, status) VALUES ('AFTER', 'X')",
    );
    assert!(write.status.success(), "{}", stderr(&write));

    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]], &tms_pg());
    ok(&out, 0);
    let want = oracle(&extract_dir(&json(&out)));
    assert_matches_oracle(&site.production, &want);
    // Unfreeze unlocked production's account again.
    let login = as_mariadb_user(&site.users_role, "SELECT 1");
    assert!(login.status.success(), "{}", stderr(&login));
}

#[test]
fn rows_the_database_refuses_go_to_the_reject_file_with_its_message() {
    let site = Site::reference("dbreject");
    // Staging enforces a rule the runbook does not know: no vehicle over 25 t.
    let ddl = {
        let text = std::fs::read_to_string(tms_pg()).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        v["schema"]["postgres"].as_str().unwrap().to_string()
    };
    site.staging.exec(&ddl);
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
