//! What real schemas need: scope domains, scope by another entity, nullable references and
//! lookups, lookups to any column, datetimes with zones, value maps with a default.

use super::*;
use chrono::{NaiveDateTime, TimeZone};

fn scope_keys(ins: &[&str], outs: &[&str]) -> HashMap<String, Arc<ScopeKeys>> {
    let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect();
    HashMap::from([(
        "customers".to_string(),
        Arc::new(ScopeKeys {
            in_scope: set(ins),
            out_of_scope: set(outs),
        }),
    )])
}

fn verdict(c: &Compiled, row: &[&str], scope: &HashMap<String, Arc<ScopeKeys>>) -> Verdict {
    let refs = HashMap::from([(
        "customers".to_string(),
        Arc::new(["C1"].into_iter().collect::<crate::keyset::KeySet>()),
    )]);
    c.process_with(
        row.iter().map(|s| s.to_string()).collect(),
        &[],
        &mut RunState::default(),
        &refs,
        scope,
    )
}

fn messages(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Rejected { issues, .. } => issues
            .iter()
            .map(|i| format!("{}:{}: {}", i.rule, i.field, i.message))
            .collect(),
        Verdict::Valid { .. } => vec!["valid".into()],
        Verdict::OutOfScope => vec!["out".into()],
    }
}

fn row_of(v: &Verdict) -> Vec<SqlValue> {
    match v {
        Verdict::Valid { row, .. } => row.clone(),
        other => panic!("expected a valid row, got {:?}", messages(other)),
    }
}

#[test]
fn scope_domain_matrix() {
    // (scope condition, value, verdict or the start of the reject message)
    let cases: &[(&str, &str, &str)] = &[
        ("in=['A'], out=['I','X']", "A", "valid"),
        ("in=['A'], out=['I','X']", "I", "out"),
        ("in=['A'], out=['I','X']", "X", "out"),
        (
            "in=['A'], out=['I','X']",
            "Acme Ltd",
            "scope:status: status 'Acme Ltd' is neither in scope (A) nor a declared out-of-scope value (I, X)",
        ),
        (
            "in=['A'], out=['I','X']",
            "",
            "scope:status: status '' is neither in scope (A) nor a declared out-of-scope value (I, X)",
        ),
        ("in=['A'], out=['I','X']", "a", "scope:status:"),
        (
            "in=['A'], out=['I','X'], case_insensitive=true",
            " a ",
            "valid",
        ),
        ("in=['A'], out=['I','X'], case_insensitive=true", "x", "out"),
        ("in=['A'], out=['I','X', '']", "", "out"),
        ("in=['A'], others='out_of_scope'", "Acme Ltd", "out"),
        ("in=['A'], others='out_of_scope'", "A", "valid"),
        ("in=['A'], out=['I'], others='reject'", "Z", "scope:status:"),
        (
            "in=['A'], out=[]",
            "I",
            "scope:status: status 'I' is neither in scope (A) nor a declared out-of-scope value (none declared)",
        ),
    ];
    for (cond, value, want) in cases {
        let (_, c) = entity(&format!(
            "{BASE}columns=['k','status']\nkey='k'\nscope=[{{field='status', {cond}}}]\nmap={{k='k'}}"
        ));
        let got = messages(&verdict(&c, &["1", value], &HashMap::new()));
        assert_eq!(got.len(), 1, "{cond} / {value:?}: {got:?}");
        assert!(
            got[0].starts_with(want),
            "{cond} / {value:?}: got {got:?}, want {want}"
        );
    }
}

#[test]
fn a_shifted_row_is_rejected_for_its_scope_not_dropped() {
    // The city is missing and an extra field closes the row: the status column holds a
    // city name. Other rules are not run on a row that cannot say its own scope.
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','name','city','status']\nkey='k'\nscope=[{{field='status', in=['A'], out=['I','X']}}]\nvalidate=[{{rule='required', field='city'}}]\nmap={{k='k'}}"
    ));
    let v = verdict(&c, &["C7", "Acme", "Ltd", "Berlin"], &HashMap::new());
    assert_eq!(
        messages(&v),
        [
            "scope:status: status 'Berlin' is neither in scope (A) nor a declared out-of-scope value (I, X)"
        ]
    );
    // A domain violation wins over another condition that says "out".
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','kind','status']\nkey='k'\nscope=[{{field='kind', in=['B2B'], others='out_of_scope'}}, {{field='status', in=['A'], out=['I']}}]\nmap={{k='k'}}"
    ));
    assert_eq!(
        messages(&verdict(&c, &["1", "B2C", "??"], &HashMap::new()))[0]
            .split(':')
            .next(),
        Some("scope")
    );
    assert_eq!(
        messages(&verdict(&c, &["1", "B2C", "A"], &HashMap::new())),
        ["out"]
    );
    assert_eq!(
        messages(&verdict(&c, &["1", "B2B", "I"], &HashMap::new())),
        ["out"]
    );
    assert_eq!(
        messages(&verdict(&c, &["1", "B2B", "A"], &HashMap::new())),
        ["valid"]
    );
}

#[test]
fn scope_by_another_entitys_in_scope_rows() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','customer_id']\nkey='k'\nscope=[{{field='customer_id', in_scope_of='customers'}}]\nmap={{k='k'}}"
    ));
    let keys = scope_keys(&["C1", "C3"], &["C2"]);
    for (value, want) in [
        ("C1", "valid"),
        (" C1 ", "valid"),
        ("C3", "valid"), // in scope though rejected there: a reference rule would judge it
        ("C2", "out"),
        (
            "C9",
            "scope:customer_id: customer_id 'C9' is the key of no customer row of this extract, in scope or out",
        ),
        (
            "",
            "scope:customer_id: customer_id '' is the key of no customer row",
        ),
    ] {
        let got = messages(&verdict(&c, &["R1", value], &keys));
        assert!(got[0].starts_with(want), "{value:?}: {got:?}");
    }
    // Never a silent guess when the runner did not pass the keys.
    assert!(messages(&verdict(&c, &["R1", "C1"], &HashMap::new()))[0].contains("not known"));
    assert_eq!(c.scope_references(), ["customers"]);
}

#[test]
fn nullable_reference_and_lookup() {
    // (allow_empty, value) → verdict; the lookup column is mapped, so its SQL value is shown.
    for (allow, value, want) in [
        (true, "", "valid"),
        (true, "C1", "valid"),
        (true, "C9", "reference:cust"),
        (false, "", "reference:cust"),
        (false, "C1", "valid"),
    ] {
        let (_, c) = entity(&format!(
            "{BASE}columns=['k','cust']\nkey='k'\nvalidate=[{{rule='reference', field='cust', entity='customers', allow_empty={allow}}}]\nmap={{k='k', cust='cust'}}"
        ));
        let got = messages(&verdict(&c, &["1", value], &HashMap::new()));
        assert!(got[0].starts_with(want), "{allow} {value:?}: {got:?}");
    }
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','cust']\nkey='k'\nmap={{k='k', partner={{from='cust', lookup='customers', column='partner_pk', allow_empty=true}}}}"
    ));
    assert_eq!(
        row_of(&verdict(&c, &["1", ""], &HashMap::new()))[1],
        SqlValue::Null
    );
    assert_eq!(
        row_of(&verdict(&c, &["1", "C1"], &HashMap::new()))[1],
        SqlValue::Lookup {
            table: "res_partner".into(),
            key: "ref".into(),
            id: "partner_pk".into(),
            value: "C1".into()
        }
    );
    // A value that would find no row is a reject, not a silent NULL in a nullable column.
    assert_eq!(
        messages(&verdict(&c, &["1", "C9"], &HashMap::new())),
        [
            "lookup:cust: 'C9' is not a valid, in-scope customer of this run, so partner would be an empty reference"
        ]
    );
    assert_eq!(c.references(), ["customers"]);
    // Without allow_empty: the database resolves it (and refuses a miss); default column id.
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','cust']\nkey='k'\nmap={{k='k', partner={{from='cust', lookup='customers'}}}}"
    ));
    assert!(matches!(
        &row_of(&verdict(&c, &["1", ""], &HashMap::new()))[1],
        SqlValue::Lookup { id, value, .. } if id == "id" && value.is_empty()
    ));
    assert!(c.references().is_empty());
}

#[test]
fn value_map_with_and_without_default() {
    for (default, value, want) in [
        (Some("unknown"), "open", Some("not_paid")),
        (Some("unknown"), "paid", Some("unknown")),
        (Some("unknown"), "", Some("unknown")),
        (None, "open", Some("not_paid")),
        (None, "paid", None),
    ] {
        let d = default
            .map(|d| format!(", default='{d}'"))
            .unwrap_or_default();
        let (_, c) = entity(&format!(
            "{BASE}columns=['k','state']\nkey='k'\nmap={{k='k', payment_state={{from='state', values={{open='not_paid'}}{d}}}}}"
        ));
        let v = verdict(&c, &["1", value], &HashMap::new());
        match want {
            Some(w) => assert_eq!(
                row_of(&v)[1],
                SqlValue::Text(w.into()),
                "{default:?} {value}"
            ),
            None => assert_eq!(
                messages(&v),
                ["map:state: no mapping for 'paid' into payment_state"]
            ),
        }
    }
}

fn dt(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap()
}

#[test]
fn datetime_matrix() {
    const F: &str = "'YYYY-MM-DD HH:mm:ss', 'DD/MM/YYYY HH:mm'";
    // (formats, timezone, written, canonical UTC text or the start of the reason)
    let cases: &[(&str, &str, &str, Result<&str, &str>)] = &[
        (F, "UTC", "2024-01-15 10:20:30", Ok("2024-01-15 10:20:30")),
        (
            F,
            "Europe/Paris",
            "2024-01-15 10:20:30",
            Ok("2024-01-15 09:20:30"),
        ),
        (
            F,
            "Europe/Paris",
            "2024-07-01 10:00:00",
            Ok("2024-07-01 08:00:00"),
        ),
        (
            F,
            "Europe/Paris",
            "15/01/2024 00:30",
            Ok("2024-01-14 23:30:00"),
        ),
        (
            F,
            "+02:00",
            "2024-01-15 10:00:00",
            Ok("2024-01-15 08:00:00"),
        ),
        (
            F,
            "-05:30",
            "2024-01-15 10:00:00",
            Ok("2024-01-15 15:30:00"),
        ),
        (
            F,
            "UTC",
            "2024-01-15 10:20:30.5",
            Ok("2024-01-15 10:20:30.500000"),
        ),
        (
            F,
            "UTC",
            "2024-01-15 10:20:30.123456",
            Ok("2024-01-15 10:20:30.123456"),
        ),
        (
            F,
            "UTC",
            "2024-01-15 10:20:30.000",
            Ok("2024-01-15 10:20:30"),
        ),
        (
            "'YYYY-MM-DDTHH:mm:ss'",
            "UTC",
            "2024-01-15T10:20:30",
            Ok("2024-01-15 10:20:30"),
        ),
        (
            F,
            "UTC",
            "2024-01-15 10:20:30.1234567",
            Err("'2024-01-15 10:20:30.1234567' has 7 decimal places"),
        ),
        (
            F,
            "Europe/Paris",
            "2024-03-31 02:30:00",
            Err("'2024-03-31 02:30:00' does not exist in Europe/Paris (the clocks went forward"),
        ),
        (
            F,
            "Europe/Paris",
            "27/10/2024 02:30",
            Err(
                "'27/10/2024 02:30' happens twice in Europe/Paris (the clocks went back): it is 2024-10-27 00:30:00 or 2024-10-27 01:30:00 UTC",
            ),
        ),
        (
            F,
            "UTC",
            "2024-02-30 10:00:00",
            Err("'2024-02-30 10:00:00' is not a real date and time (read as YYYY-MM-DD HH:mm:ss)"),
        ),
        (
            F,
            "UTC",
            "2024-01-15 24:00:00",
            Err("'2024-01-15 24:00:00' is not a real date and time"),
        ),
        (
            F,
            "UTC",
            "0000-01-15 10:00:00",
            Err("'0000-01-15 10:00:00' is not a real date and time"),
        ),
        (
            F,
            "UTC",
            "2024-01-15",
            Err(
                "'2024-01-15' is not a date and time in an accepted format (YYYY-MM-DD HH:mm:ss, DD/MM/YYYY HH:mm)",
            ),
        ),
        (
            F,
            "UTC",
            "2024-1-15 10:00:00",
            Err("'2024-1-15 10:00:00' is not a date and time in an accepted format"),
        ),
        (
            F,
            "UTC",
            "15/01/2024 10:00:00",
            Err("'15/01/2024 10:00:00' is not a date and time in an accepted format"),
        ),
        (F, "UTC", "", Err("is empty; expected a date and time")),
    ];
    for (formats, tz, written, want) in cases {
        let (_, c) = entity(&format!(
            "{BASE}columns=['k','at']\nkey='k'\nvalidate=[{{rule='datetime', field='at', formats=[{formats}], timezone='{tz}'}}]\nmap={{k='k', at='at'}}"
        ));
        let v = verdict(&c, &["1", written], &HashMap::new());
        match want {
            Ok(text) => {
                let SqlValue::DateTime(t) = row_of(&v)[1] else {
                    panic!("{written}: not a datetime")
                };
                assert_eq!(datetime::canonical(&t), *text, "{written} in {tz}");
                assert_eq!(t, dt(text));
            }
            Err(start) => {
                let got = messages(&v);
                assert_eq!(got.len(), 1, "{written}: {got:?}");
                let msg = got[0].strip_prefix("datetime:at: ").unwrap_or(&got[0]);
                assert!(msg.starts_with(start), "{written} in {tz}: got {msg}");
            }
        }
    }
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','at']\nkey='k'\nvalidate=[{{rule='datetime', field='at', formats=[{F}], allow_empty=true}}]\nmap={{k='k', at='at'}}"
    ));
    assert_eq!(
        row_of(&verdict(&c, &["1", ""], &HashMap::new()))[1],
        SqlValue::Null
    );
}

#[test]
fn datetime_formats_and_zones_that_are_refused() {
    for (f, why) in [
        ("YYYY-MM-DD", "has no HH"),
        ("YYYY-MM-DD HH:mm:ss YYYY", "has YYYY twice"),
        ("YYYY-MM-DD hh:mm", "has 'h'"),
        ("DD/MM/YY HH:mm", "has 'Y'"),
    ] {
        let err = datetime::DtFormat::parse(f).unwrap_err();
        assert!(err.contains(why), "{f}: {err}");
    }
    for ok in [
        "UTC",
        "Z",
        "+02:00",
        "-0530",
        "Europe/Paris",
        "America/New_York",
    ] {
        assert!(datetime::SourceZone::parse(ok).is_ok(), "{ok}");
    }
    for bad in ["Paris", "+2", "+25:00", "+02:75", "CEST+1", ""] {
        assert!(datetime::SourceZone::parse(bad).is_err(), "{bad}");
    }
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Any moment written as Paris wall-clock time reads back as that moment, except in
        // the hour the clocks go back, which is refused as ambiguous (never guessed).
        #[test]
        fn paris_wall_clock_reads_back_to_the_same_moment(secs in 0i64..2_000_000_000) {
            let utc = chrono::Utc.timestamp_opt(secs, 0).unwrap();
            let local = utc.with_timezone(&chrono_tz::Europe::Paris).naive_local();
            let written = local.format("%Y-%m-%d %H:%M:%S").to_string();
            let f = [datetime::DtFormat::parse("YYYY-MM-DD HH:mm:ss").unwrap()];
            let z = datetime::SourceZone::parse("Europe/Paris").unwrap();
            match datetime::read(&written, &f, &z) {
                Ok(t) => prop_assert_eq!(t, utc.naive_utc()),
                Err(why) => prop_assert!(why.contains("happens twice"), "{}", why),
            }
        }

        // A domain that declares every value: never a reject, whatever the text.
        #[test]
        fn others_out_of_scope_never_rejects(v in ".*") {
            let (_, c) = entity(&format!(
                "{BASE}columns=['k','s']\nkey='k'\nscope=[{{field='s', in=['A'], others='out_of_scope'}}]\nmap={{k='k'}}"
            ));
            let got = messages(&verdict(&c, &["1", v.as_str()], &HashMap::new()));
            prop_assert!(got == ["valid"] || got == ["out"], "{:?}", got);
        }
    }
}
