//! The reference cutover into Odoo, end to end: the real binary runs
//! `runbooks/tms-odoo.toml` against two Odoo stand-ins (staging and production), through
//! both transports, and what lands in Odoo is compared with the independent oracle.

mod common;
#[path = "common/odoo_standin/mod.rs"]
mod odoo_standin;

use common::*;
use odoo_standin::{OdooStandin, OdooVersion, StandinConfig, StandinHandle};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The key both stand-ins accept; the test greps every file the run wrote for it.
const KEY: &str = "tms-odoo-api-key-7d2e41b9c0a35f68e1";
const STAGING_DB: &str = "tms_staging";
const PROD_DB: &str = "tms";

struct Site {
    dir: tempfile::TempDir,
    staging: StandinHandle,
    production: StandinHandle,
    json2: bool,
    runbook: PathBuf,
    extract: PathBuf,
    /// More `--var`s and environment for the binary.
    extra_args: Vec<String>,
    extra_env: Vec<(String, String)>,
}

impl Site {
    fn new(json2: bool) -> Site {
        let cfg = |db: &str| StandinConfig {
            // 18 speaks JSON-RPC only; 19 speaks JSON-2.
            version: if json2 {
                OdooVersion::V19
            } else {
                OdooVersion::V18
            },
            databases: vec![db.into()],
            api_key: KEY.into(),
            ..Default::default()
        };
        let staging = OdooStandin::start_blocking(cfg(STAGING_DB));
        let production = OdooStandin::start_blocking(cfg(PROD_DB));
        for login in ["dispatch", "accounting"] {
            production.add_user(
                PROD_DB,
                login,
                &format!("pw-{login}"),
                &format!("key-{login}"),
            );
        }
        Site {
            dir: tempfile::tempdir().unwrap(),
            staging,
            production,
            json2,
            runbook: repo().join("runbooks/tms-odoo.toml"),
            extract: repo().join("assets/sample-extract"),
            extra_args: Vec::new(),
            extra_env: Vec::new(),
        }
    }

    fn url(&self, h: &StandinHandle, db: &str) -> String {
        if self.json2 {
            h.url_json2(db)
        } else {
            h.url_jsonrpc(db)
        }
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--headless".into(),
            "--var".into(),
            format!("staging_url={}", self.url(&self.staging, STAGING_DB)),
            "--var".into(),
            format!("production_url={}", self.url(&self.production, PROD_DB)),
            "--var".into(),
            format!("extract_dir={}", self.extract.display()),
            "--journal".into(),
            self.dir.path().join("journal.db").display().to_string(),
        ]
    }

    fn cutover(&self, args: &[&str]) -> Output {
        Command::new(BIN)
            .args(args.iter().take(1))
            .arg(&self.runbook)
            .args(self.args())
            .args(&self.extra_args)
            .args(args.iter().skip(1))
            .current_dir(self.dir.path())
            .envs(self.extra_env.iter().cloned())
            .env("ODOO_API_KEY", KEY)
            .env_remove("CUTOVER_JOURNAL")
            .output()
            .unwrap()
    }

    /// A copy of the runbook with `extra` inserted before step `before`.
    fn variant(&mut self, before: &str, extra: &str) {
        let text = std::fs::read_to_string(&self.runbook).unwrap();
        let marker = format!("[[steps]]\nid = \"{before}\"");
        assert!(text.contains(&marker), "no step {before}");
        let p = self.dir.path().join("variant.toml");
        std::fs::write(&p, text.replace(&marker, &format!("{extra}\n{marker}"))).unwrap();
        self.runbook = p;
    }
}

/// Database ids of `model`'s records whose external id starts with `__import__.<prefix>`.
fn ids(h: &StandinHandle, db: &str, model: &str, prefix: &str) -> Vec<i64> {
    h.records_in(db, "ir.model.data")
        .iter()
        .filter(|r| {
            r["module"] == json!("__import__")
                && r["model"] == json!(model)
                && r["name"].as_str().is_some_and(|n| n.starts_with(prefix))
        })
        .filter_map(|r| r["res_id"].as_i64())
        .collect()
}

fn records(
    h: &StandinHandle,
    db: &str,
    model: &str,
    prefix: &str,
) -> Vec<serde_json::Map<String, Value>> {
    let ids = ids(h, db, model, prefix);
    h.records_in(db, model)
        .into_iter()
        .filter(|r| r["id"].as_i64().is_some_and(|i| ids.contains(&i)))
        .collect()
}

fn money(v: &Value) -> Decimal {
    v.to_string()
        .trim_matches('"')
        .parse::<Decimal>()
        .unwrap()
        .round_dp(2)
}

/// Everything the run created in one Odoo, as counts and sums to compare.
fn state(h: &StandinHandle, db: &str) -> String {
    let mut out = Vec::new();
    for (model, prefix) in [
        ("res.partner", "tms_customer_"),
        ("fleet.vehicle.model.brand", "tms_vehicle_brand_"),
        ("fleet.vehicle.model", "tms_vehicle_model_"),
        ("fleet.vehicle", "tms_vehicle_"),
        ("hr.employee", "tms_driver_"),
        ("account.move", "tms_invoice_"),
        ("account.move.line", "tms_invoice_line_"),
    ] {
        out.push(format!("{model} {}", h.records_in(db, model).len()));
        out.push(format!(
            "{model} of this run {}",
            ids(h, db, model, prefix).len()
        ));
    }
    let moves = records(h, db, "account.move", "tms_invoice_");
    let total: Decimal = moves.iter().map(|m| money(&m["amount_total"])).sum();
    out.push(format!("amount_total {total}"));
    out.join("\n")
}

/// Production holds what the oracle says the extract's valid rows are, to the cent.
fn assert_matches_oracle(h: &StandinHandle, db: &str, want: &Value) {
    for (entity, model, prefix) in [
        ("customers", "res.partner", "tms_customer_"),
        ("vehicles", "fleet.vehicle", "tms_vehicle_V"),
        ("drivers", "hr.employee", "tms_driver_"),
        ("open_invoices", "account.move", "tms_invoice_I"),
    ] {
        assert_eq!(
            ids(h, db, model, prefix).len().to_string(),
            want["entities"][entity]["valid"].to_string(),
            "{db}: {model} records of this run"
        );
    }
    let moves = records(h, db, "account.move", "tms_invoice_");
    // Each invoice: posted, one line carrying the open amount, no tax.
    for m in &moves {
        assert_eq!(m["state"], json!("posted"), "{m:?}");
        assert_eq!(m["move_type"], json!("out_invoice"), "{m:?}");
        assert_eq!(money(&m["amount_tax"]), Decimal::ZERO, "{m:?}");
    }
    assert_eq!(
        ids(h, db, "account.move.line", "tms_invoice_line_").len(),
        moves.len(),
        "one line per invoice"
    );
    let total: Decimal = moves.iter().map(|m| money(&m["amount_total"])).sum();
    let residual: Decimal = moves.iter().map(|m| money(&m["amount_residual"])).sum();
    let o = &want["open_invoices_sums"];
    assert_eq!(
        total,
        dec(&o["valid_residual"]),
        "{db}: Odoo's totals = the open amounts"
    );
    assert_eq!(
        residual,
        dec(&o["valid_residual"]),
        "{db}: all of it still due"
    );
    // Every vehicle points at a model of this run, whose brand is one of this run.
    let models = ids(h, db, "fleet.vehicle.model", "tms_vehicle_model_");
    let brands = ids(h, db, "fleet.vehicle.model.brand", "tms_vehicle_brand_");
    assert!(!brands.is_empty() && !models.is_empty());
    for v in records(h, db, "fleet.vehicle", "tms_vehicle_V") {
        let m = v["model_id"].as_i64().or_else(|| v["model_id"][0].as_i64());
        assert!(m.is_some_and(|m| models.contains(&m)), "{v:?}");
    }
    for m in records(h, db, "fleet.vehicle.model", "tms_vehicle_model_") {
        let b = m["brand_id"].as_i64().or_else(|| m["brand_id"][0].as_i64());
        assert!(b.is_some_and(|b| brands.contains(&b)), "{m:?}");
    }
}

fn active(h: &StandinHandle, login: &str) -> bool {
    h.records_in(PROD_DB, "res.users")
        .iter()
        .find(|u| u["login"] == json!(login))
        .map(|u| u["active"] == json!(true))
        .unwrap()
}

/// Every file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

fn assert_key_nowhere(site: &Site, outs: &[&Output]) {
    for o in outs {
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains(KEY),
            "key on stdout"
        );
        assert!(!stderr(o).contains(KEY), "key on stderr");
    }
    let written = files(site.dir.path());
    assert!(
        written.len() > 3,
        "the run wrote its journal and artifacts: {written:?}"
    );
    for f in written {
        let bytes = std::fs::read(&f).unwrap();
        assert!(
            !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
            "the API key is in {}",
            f.display()
        );
    }
}

fn reference_cutover(json2: bool) {
    let site = Site::new(json2);
    // An app user already archived before the cutover must stay archived after it.
    site.production.archive_user(PROD_DB, "accounting");
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&out, 0);
    let want = oracle(&repo().join("assets/sample-extract"));
    assert_matches_oracle(&site.staging, STAGING_DB, &want);
    assert_matches_oracle(&site.production, PROD_DB, &want);
    // Reopened with exactly the users that were active.
    assert!(active(&site.production, "dispatch"));
    assert!(!active(&site.production, "accounting"));
    let events = sqlite(
        &site.dir.path().join("journal.db"),
        "SELECT payload FROM events WHERE kind = 'production_closed'",
    );
    assert!(events.contains("\"dispatch\":\"active\""), "{events}");
    assert!(events.contains("\"accounting\":\"archived\""), "{events}");

    // A second run of the same extract creates nothing, on either side.
    let (staging_before, prod_before) = (
        state(&site.staging, STAGING_DB),
        state(&site.production, PROD_DB),
    );
    let again = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&again, 0);
    assert_eq!(state(&site.staging, STAGING_DB), staging_before);
    assert_eq!(state(&site.production, PROD_DB), prod_before);
    assert_key_nowhere(&site, &[&out, &again]);
}

#[test]
fn reference_cutover_into_odoo_over_json2_reconciles_and_reruns_create_nothing() {
    reference_cutover(true);
}

#[test]
fn reference_cutover_into_odoo_over_jsonrpc_reconciles_and_reruns_create_nothing() {
    reference_cutover(false);
}

fn api_only_rollback(json2: bool) {
    let mut site = Site::new(json2);
    let before = state(&site.production, PROD_DB);
    site.variant(
        "verify",
        "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"echo smoke test failed >&2; exit 1\"\ntimeout = \"30s\"\n",
    );
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&out, 6);
    let s = json(&out);
    assert_eq!(s["rollback"]["ok"], true, "{s}");
    let msg = s["rollback"]["message"].to_string();
    assert!(msg.contains("search_count finds none left"), "{msg}");
    // Nothing of the run is left in production, and its users are back.
    assert_eq!(state(&site.production, PROD_DB), before);
    assert!(active(&site.production, "dispatch"));
    assert!(active(&site.production, "accounting"));
    assert_key_nowhere(&site, &[&out]);
}

#[test]
fn api_only_rollback_over_json2_leaves_no_record_of_the_run() {
    api_only_rollback(true);
}

#[test]
fn api_only_rollback_over_jsonrpc_leaves_no_record_of_the_run() {
    api_only_rollback(false);
}

/// `pg_dump` on PATH that records its argv and `PGPASSWORD`, then runs the real one.
fn recording_pg_dump(dir: &Path) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v pg_dump"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let real = real.trim();
    assert!(!real.is_empty(), "pg_dump is not installed");
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("pg_dump.calls");
    let script = bin.join("pg_dump");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf 'argv:' >> '{log}'\nprintf ' %s' \"$@\" >> '{log}'\nprintf '\\nPGPASSWORD=%s\\n' \"${{PGPASSWORD-}}\" >> '{log}'\nexec '{real}' \"$@\"\n",
            log = log.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    (PathBuf::from(path), log)
}

/// Rows of the tables that stand for Odoo's, in a stable order.
fn odoo_rows(db: &cutover::testdb::TempDb) -> String {
    db.exec(
        "SELECT 'p', id, name, ref, NULL::numeric FROM res_partner \
         UNION ALL SELECT 'm', id, NULL, state, amount_total FROM account_move ORDER BY 1, 2",
    )
}

fn backup_through_sql_url(json2: bool) {
    // A real PostgreSQL database stands for production Odoo's own.
    let odoo_db = cutover::testdb::TempDb::postgres("odoo_prod");
    odoo_db.exec(
        "CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL, ref text); \
         CREATE TABLE account_move (id serial PRIMARY KEY, state text, amount_total numeric(16, 2)); \
         INSERT INTO res_partner (name, ref) VALUES ('Haulage Ltd', 'C0000001'), ('Fjord Frakt AS', NULL); \
         INSERT INTO account_move (state, amount_total) VALUES ('posted', 1234.56), ('draft', 0.01);",
    );
    let before = odoo_rows(&odoo_db);
    assert!(before.contains("1234.56"), "{before}");

    let mut site = Site::new(json2);
    site.variant(
        "load",
        "[[steps]]\nid = \"backup\"\nkind = \"backup\"\nenv = \"production\"\ntitle = \"Back up production Odoo's database\"\nplanned = \"2m\"\n",
    );
    let (path, calls) = recording_pg_dump(site.dir.path());
    site.extra_env
        .push(("PATH".into(), path.display().to_string()));
    site.extra_args.extend([
        "--var".into(),
        format!("production_sql_url={}", odoo_db.url()),
    ]);
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&out, 0);

    // pg_dump ran against the SQL URL, with neither the key nor any password handed on.
    let calls = std::fs::read_to_string(&calls).expect("pg_dump was run through PATH");
    assert!(calls.contains(&odoo_db.name), "{calls}");
    assert!(calls.contains("PGPASSWORD=\n"), "{calls}");
    assert!(!calls.contains(KEY), "{calls}");

    let dumps: Vec<PathBuf> = files(site.dir.path())
        .into_iter()
        .filter(|p| p.components().any(|c| c.as_os_str() == "backups"))
        .collect();
    assert_eq!(dumps.len(), 1, "one backup: {dumps:?}");
    let events = sqlite(
        &site.dir.path().join("journal.db"),
        "SELECT payload FROM events WHERE kind = 'backup_taken'",
    );
    let name = dumps[0].file_name().unwrap().to_string_lossy().to_string();
    assert!(events.contains(&name), "{events}");

    // The dump restores into a fresh database with the same rows.
    let restored = cutover::testdb::TempDb::postgres("odoo_restored");
    let r = Command::new("pg_restore")
        .args(["--no-owner", "--exit-on-error", "--dbname"])
        .arg(restored.url())
        .arg(&dumps[0])
        .output()
        .unwrap();
    assert!(r.status.success(), "pg_restore: {}", stderr(&r));
    assert_eq!(odoo_rows(&restored), before);
    assert_key_nowhere(&site, &[&out]);
}

#[test]
fn backup_through_sql_url_over_json2_is_a_pg_dump_that_restores() {
    backup_through_sql_url(true);
}

#[test]
fn backup_through_sql_url_over_jsonrpc_is_a_pg_dump_that_restores() {
    backup_through_sql_url(false);
}

/// The reference runbook with each invoice's lines read from `invoice_lines.csv`.
const LINES: &str = r#"
[entities.open_invoices.lines]
field = "invoice_line_ids"
source = { file = "invoice_lines.csv" }
columns = ["line_id", "invoice_no", "description", "quantity", "price_unit"]
key = "line_id"
parent = "invoice_no"
external_id = "tms_invoice_line"
validate = [{ rule = "required", field = "description" }]

[entities.open_invoices.lines.map]
name = "description"
quantity = "quantity"
price_unit = "price_unit"
tax_ids = { value = "" }
"#;

/// Switch the site to the reference runbook with [`LINES`].
fn with_lines(site: &mut Site) {
    let text = std::fs::read_to_string(&site.runbook).unwrap();
    let text: String = text
        .lines()
        .filter(|l| !l.starts_with("\"invoice_line_ids/"))
        .map(|l| format!("{l}\n"))
        .collect();
    let text = text.replace(
        "\n# ---------------------------------------------------------------- reconciliation",
        &format!("{LINES}\n# ---------------------------------------------------------------- reconciliation"),
    );
    let rb = site.dir.path().join("lines.toml");
    std::fs::write(&rb, text).unwrap();
    site.runbook = rb;
}

fn moves_lines(h: &StandinHandle, invoice: &str) -> Option<(Decimal, Vec<Decimal>)> {
    let (_, id) = h.xmlid(&format!("__import__.tms_invoice_{invoice}"))?;
    let mv = h
        .records_in(PROD_DB, "account.move")
        .into_iter()
        .find(|m| m["id"] == json!(id))?;
    let mut prices: Vec<Decimal> = h
        .records_in(PROD_DB, "account.move.line")
        .iter()
        .filter(|l| l["move_id"].as_i64().or_else(|| l["move_id"][0].as_i64()) == Some(id))
        .map(|l| money(&l["price_unit"]))
        .collect();
    prices.sort();
    Some((money(&mv["amount_total"]), prices))
}

#[test]
fn invoice_lines_from_their_own_file_load_with_their_invoice_and_a_bad_line_refuses_it() {
    let mut site = Site::new(true);
    // The sample extract, plus each invoice's lines: INV-0000001 in three lines, one line
    // for the others; INV-0000004 has a price Odoo cannot read, INV-0000005 a line the
    // rules refuse (no description).
    let extract = site.dir.path().join("extract");
    std::fs::create_dir_all(&extract).unwrap();
    for f in [
        "customers.csv",
        "vehicles.csv",
        "drivers.csv",
        "open_invoices.csv",
    ] {
        std::fs::copy(
            repo().join("assets/sample-extract").join(f),
            extract.join(f),
        )
        .unwrap();
    }
    let invoices = std::fs::read_to_string(extract.join("open_invoices.csv")).unwrap();
    let mut lines = String::from("line_id,invoice_no,description,quantity,price_unit\n");
    let mut residual_1 = Decimal::ZERO;
    let mut seen = std::collections::HashSet::new();
    for row in invoices.lines().skip(1) {
        let c: Vec<&str> = row.split(',').collect();
        let (inv, residual) = (c[0], c[7]);
        // Lines for the invoice the rules keep: in scope, the first of a repeated number.
        if !["open", "partial"].contains(&c[8].trim()) || !seen.insert(inv.to_string()) {
            continue;
        }
        let mut line = |n: usize, desc: &str, price: &str| {
            lines.push_str(&format!("L-{inv}-{n},{inv},{desc},1,{price}\n"));
        };
        match inv {
            "INV-0000001" => {
                residual_1 = residual.parse().unwrap();
                let rest = residual_1 - Decimal::new(100_001, 2);
                line(1, "Haulage", "1000.00");
                line(2, "Toll", "0.01");
                line(3, "Fuel surcharge", &rest.to_string());
            }
            "INV-0000004" => {
                line(1, "Haulage", residual);
                line(2, "Toll", "twelve");
            }
            "INV-0000005" => {
                line(1, "Haulage", residual);
                line(2, "", "1.00");
            }
            _ => {
                line(1, "Open amount migrated from the legacy TMS", residual);
            }
        }
    }
    std::fs::write(extract.join("invoice_lines.csv"), lines).unwrap();
    site.extract = extract;
    with_lines(&mut site);

    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&out, 0);
    let h = &site.production;
    let (total, prices) = moves_lines(h, "INV-0000001").expect("INV-0000001 loaded");
    assert_eq!(prices.len(), 3, "{prices:?}");
    assert_eq!(total, residual_1);
    assert!(
        moves_lines(h, "INV-0000004").is_none(),
        "a bad line refuses its invoice"
    );
    assert!(
        moves_lines(h, "INV-0000005").is_none(),
        "a refused line refuses its invoice"
    );
    let want = oracle(&repo().join("assets/sample-extract"));
    let valid: usize = want["entities"]["open_invoices"]["valid"]
        .to_string()
        .parse()
        .unwrap();
    assert_eq!(
        ids(h, PROD_DB, "account.move", "tms_invoice_I").len(),
        valid - 2
    );
    assert_eq!(
        ids(h, PROD_DB, "account.move.line", "tms_invoice_line_").len(),
        (valid - 2 - 1) + 3,
        "one line for each loaded invoice, three for INV-0000001"
    );
    // Each invoice's reasons are in its reject file, Odoo's words for the unreadable price.
    let rejects: Vec<String> = files(site.dir.path())
        .into_iter()
        .filter(|p| p.ends_with("open_invoices.rejects.csv"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!rejects.is_empty());
    for r in &rejects {
        let row = |inv: &str| {
            r.lines()
                .find(|l| l.contains(inv))
                .unwrap_or_else(|| panic!("{inv} not in {r}"))
                .to_string()
        };
        assert!(
            row("INV-0000004").contains("'twelve' does not seem to be a number"),
            "{r}"
        );
        assert!(
            row("INV-0000005").contains("description is required"),
            "{r}"
        );
    }

    // Their lines are in the lines' reject file, each saying why; the summary counts them.
    let line_rejects: Vec<String> = files(site.dir.path())
        .into_iter()
        .filter(|p| p.ends_with("open_invoices.lines.rejects.csv"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(!line_rejects.is_empty());
    for r in &line_rejects {
        let rows: Vec<&str> = r.lines().skip(1).collect();
        let of = |inv: &str| rows.iter().filter(|l| l.contains(inv)).count();
        assert_eq!((of("INV-0000004"), of("INV-0000005")), (2, 2), "{r}");
        assert!(
            r.contains("record INV-0000004 was refused by the target"),
            "{r}"
        );
        assert!(
            r.contains("record INV-0000005 was rejected for another of its lines"),
            "{r}"
        );
    }
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(
        summary.contains("lines read = attached + rejected"),
        "{summary}"
    );
    // Lines of invoices the rules reject for their own reasons are rejected too.
    let (read, attached) = (lines_read_in(&site.extract), (valid - 2 - 1) + 3);
    let want = format!(
        "lines read {read}, attached {attached}, rejected {}",
        read - attached
    );
    assert!(summary.contains(&want), "{want}: {summary}");

    // A re-run adds no line and changes no total.
    let before = state(h, PROD_DB);
    let again = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&again, 0);
    assert_eq!(state(h, PROD_DB), before);
    assert_eq!(moves_lines(h, "INV-0000001").unwrap().1.len(), 3);
}

fn lines_read_in(extract: &Path) -> usize {
    std::fs::read_to_string(extract.join("invoice_lines.csv"))
        .unwrap()
        .lines()
        .count()
        - 1
}

/// The lines are extracted from the legacy database like the entities: their table is read
/// to `invoice_lines.csv` in the run's extract folder, recorded in the manifest with its
/// rows and hash, and watermarked by the freeze with the other tables.
fn invoice_lines_extract_from_a_legacy_database(legacy: cutover::testdb::TempDb) {
    let opts = cutover::demo::GenOptions {
        customers: 200,
        vehicles: 40,
        drivers: 40,
        invoices: 300,
        ..cutover::demo::GenOptions::demo()
    };
    common::servers::fill_legacy(&legacy, &opts);
    // One line per invoice, carrying its open amount: numbers used twice are left out, so
    // that each loaded invoice's total is its own.
    legacy.exec(
        "DELETE FROM open_invoices WHERE invoice_no IN (SELECT invoice_no FROM \
         (SELECT invoice_no FROM open_invoices GROUP BY invoice_no HAVING COUNT(*) > 1) d)",
    );
    legacy.exec(
        "CREATE TABLE invoice_lines (line_id VARCHAR(40), invoice_no VARCHAR(40), \
         description VARCHAR(80), quantity VARCHAR(10), price_unit VARCHAR(40)); \
         INSERT INTO invoice_lines SELECT CONCAT('L-', ROW_NUMBER() OVER (ORDER BY invoice_no)), \
         invoice_no, 'Open amount', '1', amount_residual FROM open_invoices; \
         INSERT INTO invoice_lines VALUES ('L-orphan', 'INV-NONE', 'No invoice', '1', '1.00')",
    );
    let count = |sql: &str| -> u64 {
        let out = legacy.exec(sql);
        out.split_whitespace()
            .filter_map(|w| w.parse().ok())
            .next_back()
            .unwrap_or_else(|| panic!("{sql}: {out}"))
    };
    let lines = count("SELECT COUNT(*) FROM invoice_lines");
    assert!(lines > 300, "{lines}");

    let mut site = Site::new(true);
    with_lines(&mut site);
    // MariaDB's freeze revokes writes from the legacy application's accounts.
    let app = format!("{}_app", legacy.name);
    if legacy.dialect == cutover::db::Dialect::MySql {
        legacy.exec(&format!(
            "CREATE USER '{app}'@'%'; GRANT SELECT, INSERT, UPDATE, DELETE ON {}.* TO '{app}'@'%'",
            legacy.name
        ));
        let text = std::fs::read_to_string(&site.runbook).unwrap().replace(
            "[environments.legacy]\nurl = \"${legacy_url}\"",
            &format!("[environments.legacy]\nurl = \"${{legacy_url}}\"\napp_users = \"{app}@%\""),
        );
        std::fs::write(&site.runbook, text).unwrap();
    }
    site.extra_args = vec!["--var".into(), format!("legacy_url={}", legacy.url())];
    let out = site.cutover(&["run", "--json", GO[0], GO[1], GO[2], GO[3]]);
    ok(&out, 0);
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();

    // In the manifest with its rows and hash, beside the entity's own file.
    let manifest = files(site.dir.path())
        .into_iter()
        .find(|p| p.ends_with("extract/manifest.json"))
        .expect("a manifest");
    let files: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    let entry = files
        .iter()
        .find(|f| f["entity"] == json!("open_invoices.lines"))
        .unwrap_or_else(|| panic!("{files:?}"));
    assert_eq!(entry["rows"], json!(lines));
    let path = PathBuf::from(entry["path"].as_str().unwrap());
    assert_eq!(path.parent(), manifest.parent());
    assert!(path.ends_with("invoice_lines.csv"));
    let (sha, _) = cutover::sources::csv::sha256_file(&path).unwrap();
    assert_eq!(entry["sha256"], json!(sha));
    // Watermarked with the other legacy tables.
    let wm = &summary["freeze"]["watermark"];
    assert!(wm["invoice_lines"].is_string(), "{wm}");
    assert!(wm["open_invoices"].is_string(), "{wm}");
    // Every line read was loaded with its invoice or rejected; the orphan among the latter.
    let text = summary.to_string();
    assert!(
        text.contains(&format!("lines read {lines}, attached ")),
        "{text}"
    );
    let rejects: String = files_named(site.dir.path(), "open_invoices.lines.rejects.csv");
    assert!(
        rejects.contains("L-orphan") && rejects.contains("no open_invoices record INV-NONE"),
        "{rejects}"
    );
    if legacy.dialect == cutover::db::Dialect::MySql {
        cutover::testdb::mariadb(&format!("DROP USER '{app}'@'%'"));
    }
}

fn files_named(dir: &Path, name: &str) -> String {
    files(dir)
        .into_iter()
        .filter(|p| p.ends_with(name))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect()
}

#[test]
fn invoice_lines_extract_from_a_postgres_legacy() {
    invoice_lines_extract_from_a_legacy_database(cutover::testdb::TempDb::postgres("lines_legacy"));
}

#[test]
fn invoice_lines_extract_from_a_mariadb_legacy() {
    invoice_lines_extract_from_a_legacy_database(cutover::testdb::TempDb::mysql("lines_legacy"));
}
