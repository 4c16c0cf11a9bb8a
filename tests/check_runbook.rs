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

/// Each new key's mistakes: (edit of the reference runbook, text on the line to point at,
/// "key: message" expected, part of the hint expected).
#[test]
fn scope_domain_and_real_schema_keys_are_linted_with_their_line() {
    let cust_scope = "scope = [{ field = \"status\", in = [\"A\"], out = [\"I\", \"X\", \"\"], case_insensitive = true }]";
    let inv_scope = "scope = [{ field = \"state\", in = [\"open\", \"partial\"], out = [\"paid\", \"draft\", \"cancel\", \"Open\"] }]";
    let lookup = "partner_id = { from = \"customer_id\", lookup = \"customers\" }";
    let with_scope = |extra: &str| inv_scope.replace(" }]", &format!(" }}, {extra}]"));
    let cases: Vec<(String, String, &str, &str)> = vec![
        (
            cust_scope.into(),
            cust_scope.replace("out = [\"I\", \"X\", \"\"], ", ""),
            "entities.customers.scope[0].in: scope on 'status' declares no out-of-scope values",
            "others = \"out_of_scope\" if every value but A is out of scope",
        ),
        (
            cust_scope.into(),
            cust_scope.replace("\"X\", \"\"]", "\"X\", \"\", \"a\"]"),
            "entities.customers.scope[0].out[3]: 'a' is both in scope and out of scope",
            "keep it in one of the two lists",
        ),
        (
            cust_scope.into(),
            cust_scope.replace("out = [\"I\", \"X\", \"\"]", "others = \"drop\""),
            "unknown variant `drop`, expected `reject` or `out_of_scope`",
            "hint:",
        ),
        (
            inv_scope.into(),
            with_scope("{ field = \"customer_id\", in_scope_of = \"customer\" }"),
            "entities.open_invoices.scope[1].in_scope_of: unknown entity 'customer' in in_scope_of",
            "known entities: customers, vehicles, drivers, open_invoices",
        ),
        (
            inv_scope.into(),
            with_scope("{ field = \"customer_id\", in_scope_of = \"customers\", in = [\"C1\"] }"),
            "entities.open_invoices.scope[1].in: 'in' cannot be combined with in_scope_of",
            "write a second scope condition",
        ),
        (
            inv_scope.into(),
            with_scope("{ field = \"customer_id\", in_scope_of = \"customers\", case_insensitive = true }"),
            "entities.open_invoices.scope[1].case_insensitive: 'case_insensitive' cannot be combined with in_scope_of",
            "write a second scope condition",
        ),
        (
            inv_scope.into(),
            with_scope("{ field = \"customer_id\", in_scope_of = \"open_invoices\" }"),
            "entities.open_invoices.scope[1].in_scope_of: entity open_invoices cannot scope by its own rows",
            "name another entity",
        ),
        (
            inv_scope.into(),
            with_scope("{ field = \"customer_id\" }"),
            "entities.open_invoices.scope[1].field: a scope condition needs 'in' (values in scope) or 'in_scope_of' (an entity)",
            "out = [\"I\", \"X\"]",
        ),
        (
            "{ rule = \"required\", field = \"license_no\" },".into(),
            "{ rule = \"required\", field = \"license_no\" }, { rule = \"datetime\", field = \"license_expiry\", formats = [\"YYYY-MM-DD hh:mm\"] },".into(),
            "entities.drivers.validate[3].formats[0]: invalid datetime format: 'YYYY-MM-DD hh:mm' has 'h', which is neither a token (YYYY MM DD HH mm ss) nor a separator",
            "build it from YYYY MM DD HH mm ss and separators",
        ),
        (
            "{ rule = \"required\", field = \"license_no\" },".into(),
            "{ rule = \"required\", field = \"license_no\" }, { rule = \"datetime\", field = \"license_expiry\", formats = [\"YYYY-MM-DD HH:mm\"], timezone = \"Europe/Pariss\" },".into(),
            "entities.drivers.validate[3].timezone: 'Europe/Pariss' is not a time zone",
            "e.g. \"Europe/Paris\", \"+02:00\" or \"UTC\"",
        ),
        (
            "{ rule = \"required\", field = \"license_no\" },".into(),
            "{ rule = \"required\", field = \"license_no\" }, { rule = \"datetime\", field = \"license_expiry\", formats = [] },".into(),
            "entities.drivers.validate[3].formats: a datetime rule needs at least one format",
            "formats = [\"YYYY-MM-DD HH:mm:ss\"]",
        ),
        (
            "phone = \"phone\"".into(),
            "phone = { from = \"phone\", default = \"n/a\" }".into(),
            "entities.customers.map.phone.default: 'default' is only meaningful with 'values'",
            "default = \"unknown\"",
        ),
        (
            "phone = \"phone\"".into(),
            "phone = { from = \"phone\", column = \"x\" }".into(),
            "entities.customers.map.phone.column: 'column' is only meaningful with 'lookup'",
            "column = \"customer_pk\"",
        ),
        (
            "phone = \"phone\"".into(),
            "phone = { from = \"phone\", allow_empty = true }".into(),
            "entities.customers.map.phone.allow_empty: 'allow_empty' is only meaningful with 'lookup'",
            "makes an empty lookup value NULL",
        ),
        (
            lookup.into(),
            lookup.replace(" }", ", column = \"partner_pk\" }"),
            "entities.open_invoices.map.partner_id.column: lookup column 'partner_pk' is not a column of res_partner in schema.sqlite",
            "columns: ",
        ),
        (
            lookup.into(),
            lookup.replace(" }", ", values = { a = \"b\" } }"),
            "entities.open_invoices.map.partner_id: give either 'values' or 'lookup', not both",
            "values translate text",
        ),
    ];
    for (from, to, want, hint) in cases {
        let t = tms_text();
        assert!(
            t.contains(&from),
            "the reference runbook no longer has {from}"
        );
        let t = t.replacen(&from, &to, 1);
        let (c, err) = check_text(&t);
        assert_eq!(c, 2, "{to}: {err}");
        let line = line_of(&t, &to);
        assert!(
            err.contains(&format!("rb.toml:{line}:")),
            "{to}: wants line {line}: {err}"
        );
        assert!(err.contains(want), "{to}: wants {want}: {err}");
        assert!(err.contains(hint), "{to}: wants hint {hint}: {err}");
    }
}

#[test]
fn a_nullable_lookup_needs_the_looked_up_key_loaded_from_its_source_key() {
    let t = tms_text()
        .replacen(
            "partner_id = { from = \"customer_id\", lookup = \"customers\" }",
            "partner_id = { from = \"customer_id\", lookup = \"customers\", allow_empty = true }",
            1,
        )
        .replacen("ref = \"legacy_id\"", "ref = \"email\"", 1);
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    let line = line_of(&t, "allow_empty = true }");
    assert!(
        err.contains(&format!(
            "rb.toml:{line}:60: entities.open_invoices.map.partner_id.allow_empty: partner_id: a nullable lookup is checked against the keys of customers, but customers's target key ref is not loaded from its key legacy_id"
        )),
        "{err}"
    );
    // With the key loaded from the source key, the same lookup is accepted.
    let t = tms_text().replacen(
        "partner_id = { from = \"customer_id\", lookup = \"customers\" }",
        "partner_id = { from = \"customer_id\", lookup = \"customers\", allow_empty = true, column = \"id\" }",
        1,
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 0, "{err}");
}

#[test]
fn scope_by_another_entity_orders_the_entities_and_a_cycle_is_named() {
    // customers scoped by its invoices, which reference customers: a cycle.
    let t = tms_text().replacen(
        "scope = [{ field = \"status\", in = [\"A\"], out = [\"I\", \"X\", \"\"], case_insensitive = true }]",
        "scope = [{ field = \"legacy_id\", in_scope_of = \"open_invoices\" }]",
        1,
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2);
    assert!(err.contains("cyclic dependency"), "{err}");
    // customers scoped by drivers (no other link): drivers must now come first.
    let t = tms_text().replacen(
        "scope = [{ field = \"status\", in = [\"A\"], out = [\"I\", \"X\", \"\"], case_insensitive = true }]",
        "scope = [{ field = \"name\", in_scope_of = \"drivers\" }]",
        1,
    );
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("rb.toml");
    std::fs::write(&p, &t).unwrap();
    let out = Command::new(BIN).arg("check").arg(&p).output().unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        stdout.contains("drivers → customers → vehicles → open_invoices"),
        "{stdout}"
    );
}

#[test]
fn what_an_api_only_production_target_cannot_do_is_refused_at_its_line() {
    let t = tms_text().replace(
        "production_url = \"sqlite://.cutover/production.db\"",
        "production_url = \"odoo+json2://127.0.0.1:8069/tms\"",
    );
    let (c, err) = check_text(&t);
    assert_eq!(c, 2, "{err}");
    // The backup step names production explicitly: the finding points at that `env`.
    let backup = line_of(&t, "kind = \"backup\"") + 1;
    assert!(
        err.contains(&format!("rb.toml:{backup}:"))
            && (err.contains("cannot back up environment 'production' (odoo+json2: target)")
                // An Odoo production: the runbook's Odoo lint says it, with what to do.
                || err.contains("environment production is reached only through Odoo's API: cutover cannot back it up")),
        "{err}"
    );
    // The fingerprint check reads SQL; the verify step checks production.
    let sql = line_of(&t, "target_sql = ");
    assert!(err.contains(&format!("rb.toml:{sql}:")), "{err}");
    assert!(
        err.contains(
            "check 'invoice partner = customer_id' reads target_sql, but environment 'production'"
        ) || err.contains(
            "check 'invoice partner = customer_id' runs SQL, but verify checks environment production"
        ),
        "{err}"
    );
    // Staging stays SQL: the dry run's validation is not refused.
    assert!(!err.contains("environment 'staging'"), "{err}");
    // The same runbook on SQL targets passes (see reference_runbook_is_valid).
}
