//! `cutover check` on Odoo runbooks: the reference runbook into Odoo 18 is valid, loads
//! brands and models before the vehicles that point at them, and every step or check an
//! API-only Odoo cannot do is refused with file, line and key.

mod common;
use common::*;
use std::process::{Command, Output};

const KEY: &str = "odoo-test-key-5f1c";

fn odoo_rb() -> std::path::PathBuf {
    repo().join("runbooks/tms-odoo.toml")
}

fn odoo_text() -> String {
    std::fs::read_to_string(odoo_rb()).unwrap()
}

fn check(path: &std::path::Path, args: &[&str], key: Option<&str>) -> Output {
    let mut c = Command::new(BIN);
    c.arg("check")
        .arg(path)
        .args(args)
        .env_remove("ODOO_API_KEY");
    if let Some(k) = key {
        c.env("ODOO_API_KEY", k);
    }
    c.output().unwrap()
}

/// Check `text` as a runbook; returns exit code and stderr with the path shortened.
fn check_text(text: &str, args: &[&str]) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rb.toml");
    std::fs::write(&p, text).unwrap();
    // The extract folder is relative to the runbook: point it back at the sample.
    let out = check(&p, args, Some(KEY));
    (
        code(&out),
        stderr(&out).replace(&p.display().to_string(), "rb.toml"),
    )
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("{needle:?} not in the runbook"))
        + 1
}

#[test]
fn reference_odoo_runbook_is_valid_and_loads_parents_first() {
    let out = check(&odoo_rb(), &[], Some(KEY));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(code(&out), 0, "{}{}", stderr(&out), text);
    let pos = |n: &str| text.find(n).unwrap_or_else(|| panic!("{n} not in {text}"));
    assert!(pos("vehicle_brands") < pos("vehicle_models"), "{text}");
    assert!(pos("vehicle_models") < pos("→ vehicles"), "{text}");
    assert!(pos("customers") < pos("open_invoices"), "{text}");
    // Both transports, the login only where JSON-RPC needs it.
    for url in [
        "odoo+jsonrpc://admin@127.0.0.1:8069/tms_staging",
        "odoo+json2://127.0.0.1:8069/tms_staging",
    ] {
        let out = check(
            &odoo_rb(),
            &["--var", &format!("staging_url={url}")],
            Some(KEY),
        );
        assert_eq!(code(&out), 0, "{url}: {}", stderr(&out));
    }
}

#[test]
fn the_api_key_comes_from_the_environment_only() {
    let out = check(&odoo_rb(), &[], None);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains("password_env names ODOO_API_KEY, which is not set"),
        "{err}"
    );
    // A key written into the URL is refused, and never echoed back.
    let out = check(
        &odoo_rb(),
        &[
            "--var",
            "staging_url=odoo+jsonrpc://admin:hunter2@127.0.0.1:8069/db",
        ],
        Some(KEY),
    );
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(err.contains("the URL carries a password"), "{err}");
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn what_an_odoo_runbook_gets_wrong_is_named_with_file_line_and_key() {
    let base = odoo_text();
    // (replace, with, line to point at, key, words of the message)
    let cases: &[(&str, &str, &str, &str, &str)] = &[
        (
            "[[checks]]\nkind = \"counts\"",
            "[[checks]]\nkind = \"fingerprint\"\nname = \"partner\"\nentity = \"open_invoices\"\nsource = [\"invoice_no\"]\ntarget_sql = \"SELECT name FROM account_move\"\n\n[[checks]]\nkind = \"counts\"",
            "target_sql = \"SELECT name",
            "checks[0].target_sql",
            "reached only through Odoo's API",
        ),
        (
            "[[steps]]\nid = \"freeze\"",
            "[[steps]]\nid = \"backup\"\nkind = \"backup\"\nenv = \"production\"\n\n[[steps]]\nid = \"freeze\"",
            "kind = \"backup\"\nenv = \"production\"",
            "steps[0].env",
            "cutover cannot back it up",
        ),
        (
            "restore_backup = false",
            "restore_backup = true",
            "restore_backup = true",
            "rollback.restore_backup",
            "no backup cutover can restore",
        ),
        (
            "\"partner_id/id\" = { from",
            "\"partner_id\" = { from",
            "\"partner_id\" = { from",
            "entities.open_invoices.map.partner_id",
            "must be a relation's `/id`",
        ),
        (
            "derive = { from = \"vehicles\", distinct = [\"make\"] }",
            "derive = { from = \"vehicle\", distinct = [\"make\"] }",
            "derive = { from = \"vehicle\"",
            "entities.vehicle_brands.derive.from",
            "unknown entity 'vehicle'",
        ),
        (
            "distinct = [\"make\", \"model\"]",
            "distinct = [\"make\", \"modell\"]",
            "\"modell\"",
            "entities.vehicle_models.derive.distinct[1]",
            "missing column 'modell' in entity vehicles",
        ),
        (
            "target = { model = \"hr.employee\", external_id = \"tms_driver\" }",
            "target = { model = \"hr.employee\", table = \"hr_employee\", external_id = \"tms_driver\" }",
            "table = \"hr_employee\"",
            "entities.drivers.target.table",
            "not both",
        ),
        (
            "external_id = \"tms_driver\"",
            "external_id = \"tms.driver\"",
            "tms.driver",
            "entities.drivers.target.external_id",
            "cannot be part of an external id",
        ),
        (
            "group_by = \"partner_id/id\"",
            "group_by = \"partner\"",
            "group_by = \"partner\"",
            "entities.open_invoices.target.group_by",
            "not a mapped column",
        ),
        (
            "app_users = \"dispatch,accounting\"",
            "app_users = \"\"",
            "kind = \"freeze\"\nenv = \"production\"",
            "steps[5].env",
            "app_users lists none",
        ),
        (
            "\"brand_id/id\" = { lookup = \"vehicle_brands\" }",
            "\"brand_id/id\" = { from = \"make\", lookup = \"vehicle_brands\" }",
            "\"brand_id/id\" = { from",
            "entities.vehicle_models.map.brand_id/id.from",
            "is derived",
        ),
        (
            "\"invoice_line_ids/tax_ids\" = { value = \"\" }",
            "\"invoice_line_ids/tax_ids\" = { value = \"\" }\n\n[entities.open_invoices.lines]\nfield = \"invoice_line_ids\"\nsource = { file = \"invoice_lines.csv\" }\ncolumns = [\"line_id\", \"invoice_no\", \"price_unit\"]\nkey = \"line_id\"\nparent = \"invoice_no\"\nexternal_id = \"tms_invoice_line\"\nmap = { price_unit = \"price_unit\" }",
            "\"invoice_line_ids/id\" = {",
            "entities.open_invoices.map.invoice_line_ids/id",
            "invoice_line_ids comes from lines",
        ),
        (
            "\"invoice_line_ids/id\" = { from = \"invoice_no\", external_id = \"tms_invoice_line\" }\n\"invoice_line_ids/name\" = { value = \"Open amount migrated from the legacy TMS\" }\n\"invoice_line_ids/quantity\" = { value = \"1\" }\n\"invoice_line_ids/price_unit\" = \"amount_residual\"\n\"invoice_line_ids/tax_ids\" = { value = \"\" }",
            "\n[entities.open_invoices.lines]\nfield = \"invoice_line_ids\"\nsource = { file = \"invoice_lines.csv\" }\ncolumns = [\"line_id\", \"invoice_no\", \"price_unit\"]\nkey = \"line_id\"\nparent = \"invoice\"\nexternal_id = \"tms_invoice_line\"\nmap = { price_unit = \"price_unit\" }",
            "parent = \"invoice\"",
            "entities.open_invoices.lines.parent",
            "missing column 'invoice' in the lines' columns",
        ),
    ];
    for (from, to, at, key, says) in cases {
        assert!(base.contains(from), "{from:?} not in tms-odoo.toml");
        let t = base.replacen(from, to, 1);
        let (c, err) = check_text(&t, &[]);
        assert_eq!(c, 2, "{key}: {err}");
        let line = if at.contains('\n') {
            // A two-line needle: the line of its second half.
            let (first, second) = at.split_once('\n').unwrap();
            let i = t.find(&format!("{first}\n{second}")).unwrap();
            t[..i].matches('\n').count() + 2
        } else {
            line_of(&t, at)
        };
        assert!(
            err.contains(&format!("rb.toml:{line}:")),
            "{key}: line {line} expected: {err}"
        );
        assert!(err.contains(&format!("{key}: ")), "{key}: {err}");
        assert!(err.contains(says), "{key}: {says:?} not in {err}");
        assert!(err.contains("hint: "), "{key}: {err}");
    }
}

#[test]
fn a_backup_by_pg_dump_is_allowed_once_the_sql_url_is_given() {
    let t = odoo_text().replace(
        "[[steps]]\nid = \"freeze\"",
        "[[steps]]\nid = \"backup\"\nkind = \"backup\"\nenv = \"production\"\n\n[[steps]]\nid = \"freeze\"",
    );
    let (c, err) = check_text(&t, &[]);
    assert_eq!(c, 2, "API-only: {err}");
    let (c, err) = check_text(
        &t,
        &[
            "--var",
            "production_sql_url=postgres://odoo_ro@127.0.0.1:5432/tms",
        ],
    );
    assert_eq!(c, 0, "{err}");
}

#[test]
fn odoo_keys_on_a_sql_runbook_are_refused() {
    let tms = std::fs::read_to_string(tms()).unwrap();
    let t = tms.replace(
        "target = { table = \"res_partner\", key = \"ref\" }",
        "target = { table = \"res_partner\", key = \"ref\", external_id = \"tms_customer\" }",
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rb.toml");
    std::fs::write(&p, &t).unwrap();
    let out = check(&p, &[], None);
    let err = stderr(&out);
    assert_eq!(code(&out), 2, "{err}");
    assert!(
        err.contains(
            "entities.customers.target.external_id: 'external_id' is only meaningful with 'model'"
        ),
        "{err}"
    );
}
