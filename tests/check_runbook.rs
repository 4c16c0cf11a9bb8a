//! `cutover check`: every error names file, line, column and key, gives a hint, exits 2.

mod common;
use common::*;
use std::process::Command;

fn check_text(text: &str) -> (i32, String) {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rb.toml");
    std::fs::write(&p, text).unwrap();
    let out = Command::new(BIN).arg("check").arg(&p).output().unwrap();
    (
        code(&out),
        stderr(&out).replace(&p.display().to_string(), "rb.toml"),
    )
}

fn tms_text() -> String {
    std::fs::read_to_string(tms()).unwrap()
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines().position(|l| l.contains(needle)).unwrap() + 1
}

#[test]
fn reference_runbook_is_valid() {
    let out = Command::new(BIN).arg("check").arg(tms()).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("customers → vehicles → drivers → open_invoices")
            || String::from_utf8_lossy(&out.stdout).contains("open_invoices")
    );
}

#[test]
fn unknown_entity_in_a_reference() {
    let t = tms_text().replace(
        "entity = \"customers\", message",
        "entity = \"customer\", message",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    let line = line_of(&t, "entity = \"customer\", message");
    assert!(err.contains(&format!("rb.toml:{line}:")), "{err}");
    assert!(
        err.contains("entities.open_invoices.validate[2].entity: unknown entity 'customer'"),
        "{err}"
    );
    assert!(
        err.contains("hint: known entities: customers, vehicles, drivers, open_invoices"),
        "{err}"
    );
}

#[test]
fn cyclic_dependencies() {
    let t = tms_text().replace(
        "[entities.customers]\nsource",
        "[entities.customers]\ndepends_on = [\"open_invoices\"]\nsource",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(err.contains("cyclic dependency"), "{err}");
    assert!(
        err.contains("customers") && err.contains("open_invoices"),
        "{err}"
    );
}

#[test]
fn missing_column_in_a_rule_and_in_the_target_schema() {
    let t = tms_text().replace(
        "{ rule = \"email\", field = \"email\" }",
        "{ rule = \"email\", field = \"e_mail\" }",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    let line = line_of(&t, "field = \"e_mail\"");
    assert!(err.contains(&format!("rb.toml:{line}:")), "{err}");
    assert!(
        err.contains(
            "entities.customers.validate[3].field: missing column 'e_mail' in entity customers"
        ),
        "{err}"
    );

    let t = tms_text().replace("license_plate = \"plate\"", "licence_plate = \"plate\"");
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(
        err.contains("missing column 'licence_plate' in table fleet_vehicle of schema.sqlite"),
        "{err}"
    );
}

#[test]
fn unknown_rule_and_unknown_key() {
    let t = tms_text().replace(
        "{ rule = \"required\", field = \"license_no\" }",
        "{ rule = \"mandatory\", field = \"license_no\" }",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    let line = line_of(&t, "mandatory");
    assert!(err.contains(&format!("rb.toml:{line}:")), "{err}");
    assert!(err.contains("unknown variant `mandatory`"), "{err}");
    assert!(err.contains("entities.drivers.validate"), "{err}");

    let t = tms_text().replace("batch_size = 1000", "batchsize = 1000");
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(
        err.contains(&format!("rb.toml:{}:", line_of(&t, "batchsize"))),
        "{err}"
    );
    assert!(
        err.contains("unknown field `batchsize`") && err.contains("hint:"),
        "{err}"
    );
}

#[test]
fn secrets_in_the_runbook_are_refused() {
    let t = tms_text().replace(
        "url = \"${production_url}\"",
        "url = \"${production_url}\"\npassword = \"hunter2\"",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(err.contains("secrets never go in a runbook"), "{err}");

    let t = tms_text().replace(
        "legacy_url = \"\"",
        "legacy_url = \"mysql://tms:hunter2@legacy/tms\"",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(
        err.contains("vars.legacy_url: a password is written into the runbook"),
        "{err}"
    );
    assert!(
        !err.contains("hunter2"),
        "the message itself never repeats the secret: {err}"
    );
}

#[test]
fn malformed_toml_and_wrong_types_and_unknown_gate() {
    let (c, err) = check_text("[runbook]\nname = \"x\n");
    assert_eq!(c, 2);
    assert!(err.contains("rb.toml:2:"), "{err}");

    let t = tms_text().replace("quorum = 2", "quorum = \"two\"");
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(
        err.contains(&format!("rb.toml:{}:", line_of(&t, "quorum = \"two\"")))
            && err.contains("gates.go_live.quorum"),
        "{err}"
    );

    let t = tms_text().replace("gate = \"go_live\"", "gate = \"go-live\"");
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(
        err.contains("steps[5].gate: unknown gate 'go-live'"),
        "{err}"
    );
}

// A missing runbook file, and more bad runbooks: tests/bad_input.rs.

#[test]
fn a_sum_per_currency_names_a_source_column_and_a_mapped_target_column() {
    let t = tms_text().replacen(
        "currency = \"currency\"        # summed",
        "currency = \"curency\"        # summed",
        1,
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    let line = line_of(&t, "currency = \"curency\"");
    // The sum on amount_total is the second check (the first is counts).
    assert!(
        err.contains(&format!(
            "rb.toml:{line}:1: checks[1].currency: currency field 'curency' is not a column of entity open_invoices"
        )),
        "{err}"
    );
    assert!(
        err.contains(
            "hint: name the source column holding the ISO currency code; columns: invoice_no,"
        ),
        "{err}"
    );

    // A target column of another name is given as currency_column, and must be mapped.
    let t = tms_text().replacen(
        "currency = \"currency\"        # summed",
        "currency_column = \"currency_id\"\ncurrency = \"currency\"        # summed",
        1,
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    let line = line_of(&t, "currency_column = \"currency_id\"");
    assert!(
        err.contains(&format!(
            "rb.toml:{line}:1: checks[1].currency_column: currency column 'currency_id' is not mapped for open_invoices"
        )),
        "{err}"
    );
}
