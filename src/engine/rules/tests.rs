//! One small fixture per rule of the reference scenario.

use super::*;
use crate::runbook::format::Entity;

fn entity(toml_body: &str) -> (indexmap::IndexMap<String, Entity>, Compiled) {
    let doc = format!("[e]\n{toml_body}");
    #[derive(serde::Deserialize)]
    struct W {
        e: Entity,
    }
    let w: W = toml::from_str(&doc).unwrap();
    let mut all = indexmap::IndexMap::new();
    all.insert("e".to_string(), w.e.clone());
    all.insert(
        "customers".to_string(),
        toml::from_str::<W>("[e]\nsource={file='c.csv'}\ncolumns=['legacy_id']\nkey='legacy_id'\ntarget={table='res_partner', key='ref'}\nmap={ref='legacy_id'}").unwrap().e,
    );
    let c = Compiled::new("e", &w.e, &all).unwrap();
    (all, c)
}

const BASE: &str = "source = { file = 'x.csv' }\ntarget = { table = 't', key = 'k' }\n";

fn run(c: &Compiled, rows: &[&[&str]]) -> Vec<Verdict> {
    let mut st = RunState::default();
    let mut refs = HashMap::new();
    refs.insert(
        "customers".to_string(),
        Arc::new(["C1"].into_iter().collect::<crate::keyset::KeySet>()),
    );
    rows.iter()
        .map(|r| c.process(r.iter().map(|s| s.to_string()).collect(), &mut st, &refs))
        .collect()
}

fn rules_of(v: &Verdict) -> Vec<String> {
    match v {
        Verdict::Rejected { issues, .. } => issues
            .iter()
            .map(|i| format!("{}:{}", i.rule, i.field))
            .collect(),
        Verdict::Valid { .. } => vec!["valid".into()],
        Verdict::OutOfScope => vec!["out".into()],
    }
}

fn one(c: &Compiled, row: &[&str]) -> Vec<String> {
    rules_of(&run(c, &[row])[0])
}

#[test]
fn scope_is_trimmed_and_case_insensitive_when_asked() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','status']\nkey='k'\nscope=[{{field='status', in=['A'], out=['I'], case_insensitive=true}}]\nmap={{k='k'}}"
    ));
    assert_eq!(one(&c, &["1", " a "]), ["valid"]);
    assert_eq!(one(&c, &["1", "I"]), ["out"]);
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','state']\nkey='k'\nscope=[{{field='state', in=['open','partial'], out=['OPEN', 'paid']}}]\nmap={{k='k'}}"
    ));
    assert_eq!(one(&c, &["1", " partial"]), ["valid"]);
    assert_eq!(one(&c, &["1", "OPEN"]), ["out"]);
    assert_eq!(one(&c, &["1", "paid"]), ["out"]);
}

#[test]
fn required_field() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','name']\nkey='k'\nvalidate=[{{rule='required', field='name'}}]\nmap={{k='k'}}"
    ));
    assert_eq!(one(&c, &["1", "   "]), ["required:name"]);
    assert_eq!(one(&c, &["1", "x"]), ["valid"]);
}

#[test]
fn unique_keeps_first_in_scope_even_if_first_was_rejected() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','name','status']\nkey='k'\nscope=[{{field='status', in=['A'], out=['I']}}]\nvalidate=[{{rule='required', field='name'}},{{rule='unique', field='k'}}]\nmap={{k='k'}}"
    ));
    let v = run(
        &c,
        &[
            &["7", "", "A"],
            &["7", "ok", "I"],
            &["7", "ok", "A"],
            &["8", "ok", "A"],
            &["", "ok", "A"],
            &["", "ok", "A"],
        ],
    );
    let got: Vec<Vec<String>> = v.iter().map(rules_of).collect();
    assert_eq!(got[0], ["required:name"]);
    assert_eq!(got[1], ["out"], "an out-of-scope copy does not take part");
    assert_eq!(
        got[2],
        ["unique:k"],
        "the later in-scope copy is the duplicate"
    );
    assert_eq!(got[3], ["valid"]);
    assert_eq!(got[4], ["valid"], "empty keys are left to `required`");
    assert_eq!(got[5], ["valid"]);
}

#[test]
fn email_is_lowercased_then_checked() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','email']\nkey='k'\ncleanse=[{{rule='lowercase', fields=['email']}}]\nvalidate=[{{rule='email', field='email'}}]\nmap={{k='k', email='email'}}"
    ));
    match &run(&c, &[&["1", " Ann@Example.COM "]])[0] {
        Verdict::Valid { row, .. } => assert_eq!(row[1], SqlValue::Text("ann@example.com".into())),
        _ => panic!("upper-case address must be valid after lower-casing"),
    }
    assert_eq!(one(&c, &["1", "søren.2@example.com"]), ["valid"]);
    for bad in [
        "ann smith@example.com",
        "ann@example",
        "a@@b.com",
        "a@b@c.com",
        "@example.com",
        "ann@.com",
        "ann@example.",
        "",
    ] {
        assert_eq!(one(&c, &["1", bad]), ["email:email"], "{bad:?}");
    }
}

#[test]
fn dates_accept_listed_formats_and_real_days_only() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','d']\nkey='k'\nvalidate=[{{rule='date', field='d', formats=['YYYY-MM-DD','DD/MM/YYYY']}}]\nmap={{k='k', d='d'}}"
    ));
    match &run(&c, &[&["1", "05/01/2024"]])[0] {
        Verdict::Valid { row, .. } => assert_eq!(
            row[1],
            SqlValue::Date(NaiveDate::from_ymd_opt(2024, 1, 5).unwrap())
        ),
        _ => panic!("DD/MM/YYYY is accepted"),
    }
    assert_eq!(one(&c, &["1", "2024-02-29"]), ["valid"]);
    for bad in [
        "31/02/2024",
        "2023-02-29",
        "2023-13-01",
        "2024-1-5",
        "01-05-2024",
        "20240105",
        "",
    ] {
        assert_eq!(one(&c, &["1", bad]), ["date:d"], "{bad:?}");
    }
}

#[test]
fn decimals_are_exact_with_scale_and_minimum() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','m']\nkey='k'\nvalidate=[{{rule='decimal', field='m', min='0', scale=2}}]\nmap={{k='k', m='m'}}"
    ));
    match &run(&c, &[&["1", "1234.50"]])[0] {
        Verdict::Valid { row, .. } => assert_eq!(row[1], SqlValue::Dec("1234.50".parse().unwrap())),
        _ => panic!(),
    }
    assert_eq!(one(&c, &["1", "0"]), ["valid"]);
    for bad in [
        "-0.01", "12.345", "12.500", "1.234,56", "1,5", "abc", "1e3", "+5", ".5", "",
    ] {
        assert_eq!(one(&c, &["1", bad]), ["decimal:m"], "{bad:?}");
    }
}

#[test]
fn integers_and_ranges() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','y']\nkey='k'\nvalidate=[{{rule='integer', field='y', min=1900, max=2100}}]\nmap={{k='k', y='y'}}"
    ));
    assert_eq!(one(&c, &["1", "1900"]), ["valid"]);
    assert_eq!(one(&c, &["1", "2100"]), ["valid"]);
    for bad in ["1899", "2101", "20x1", "2000.0", "-", ""] {
        assert_eq!(one(&c, &["1", bad]), ["integer:y"], "{bad:?}");
    }
}

#[test]
fn vin_pattern() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','vin']\nkey='k'\nvalidate=[{{rule='pattern', field='vin', regex='^[A-HJ-NPR-Z0-9]{{17}}$'}}]\nmap={{k='k'}}"
    ));
    assert_eq!(one(&c, &["1", "1HGCM82633A004352"]), ["valid"]);
    for bad in [
        "1HGCM82633A00435",
        "1HGCM82633A0043521",
        "1HGCM82633AO04352",
        "1HGCM82633AI04352",
        "1HGCM82633AQ04352",
        "1hgcm82633a004352",
    ] {
        assert_eq!(one(&c, &["1", bad]), ["pattern:vin"], "{bad:?}");
    }
}

#[test]
fn currency_list_sum_and_residual_bounds() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','cur','u','t','tot','res']\nkey='k'\nvalidate=[\
         {{rule='one_of', field='cur', values=['EUR','USD','GBP']}},\
         {{rule='decimal', field='u', scale=2}},{{rule='decimal', field='t', scale=2}},{{rule='decimal', field='tot', scale=2}},\
         {{rule='decimal', field='res', scale=2, min='0'}},\
         {{rule='sum', fields=['u','t'], equals='tot'}},{{rule='compare', field='res', op='<=', other='tot'}}]\nmap={{k='k'}}"
    ));
    assert_eq!(
        one(&c, &["1", "EUR", "100.00", "21.00", "121.00", "121.00"]),
        ["valid"]
    );
    assert_eq!(
        one(&c, &["1", "eur", "100.00", "21.00", "121.00", "0"]),
        ["one_of:cur"]
    );
    assert_eq!(
        one(&c, &["1", "EUR", "100.00", "21.00", "121.01", "0"]),
        ["sum:tot"]
    );
    assert_eq!(
        one(&c, &["1", "EUR", "100.00", "21.00", "121.00", "121.01"]),
        ["compare:res"]
    );
    assert_eq!(
        one(&c, &["1", "EUR", "100.00", "21.00", "121.00", "-1"]),
        ["decimal:res"]
    );
    // A row failing several rules lists every reason. 100.001 is a decimal (too many places),
    // so the sum is still checked; an operand that is not a decimal at all skips it.
    assert_eq!(
        one(&c, &["1", "XYZ", "100.001", "21.00", "121.00", "200"]),
        ["one_of:cur", "decimal:u", "sum:tot", "compare:res"]
    );
    assert_eq!(
        one(&c, &["1", "EUR", "1.000,00", "21.00", "121.00", "0"]),
        ["decimal:u"]
    );
}

#[test]
fn reference_must_name_a_valid_row_of_this_run() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','customer_id']\nkey='k'\nvalidate=[{{rule='reference', field='customer_id', entity='customers', message='unknown customer'}}]\nmap={{k='k', partner_id={{from='customer_id', lookup='customers'}}}}"
    ));
    match &run(&c, &[&["1", " C1 "]])[0] {
        Verdict::Valid { row, .. } => {
            assert_eq!(
                row[1],
                SqlValue::Lookup {
                    table: "res_partner".into(),
                    key: "ref".into(),
                    id: "id".into(),
                    value: "C1".into()
                }
            )
        }
        _ => panic!(),
    }
    match &run(&c, &[&["1", "C2"]])[0] {
        Verdict::Rejected { issues, .. } => assert!(
            issues[0].message.starts_with("unknown customer 'C2'"),
            "{}",
            issues[0].message
        ),
        _ => panic!(),
    }
}

#[test]
fn value_maps_translate_and_reject_unmapped() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','state']\nkey='k'\nmap={{k='k', payment_state={{from='state', values={{open='not_paid', partial='partial'}}}}}}"
    ));
    match &run(&c, &[&["1", "open"]])[0] {
        Verdict::Valid { row, .. } => assert_eq!(row[1], SqlValue::Text("not_paid".into())),
        _ => panic!(),
    }
    assert_eq!(one(&c, &["1", "paid"]), ["map:state"]);
}

#[test]
fn a_decimal_written_the_european_or_us_way_is_read_back_only_when_unambiguous() {
    for (written, meant) in [
        ("1.234,56", Some("1234.56")),
        ("1,234.56", Some("1234.56")),
        ("-1.234,5", Some("-1234.5")),
        ("12,5", Some("12.5")),
        ("1.234.567", Some("1234567")),
        ("1,234,567", Some("1234567")),
        ("1,234", None), // 1234 or 1.234?
        ("1,2,3", None),
        ("1.234,5,6", None),
        (",5", None),
        ("12,", None),
        ("1e3", None),
        ("12 500", None),
    ] {
        assert_eq!(decimal_meant(written).as_deref(), meant, "{written}");
    }
}

#[test]
fn a_date_that_is_not_one_says_why() {
    let fmts = [DateFmt::Ymd, DateFmt::DmySlash];
    assert!(date_problem("31/02/2024", &fmts).contains("February 2024 has no day 31"));
    assert!(date_problem("2024-13-01", &fmts).contains("there is no month 13"));
    assert!(date_problem("0000-01-01", &fmts).contains("there is no year 0"));
    assert!(date_problem("5 Jan 2024", &fmts).contains("not a date in an accepted format"));
    assert!(shown(&"x".repeat(100)).ends_with("…[100 bytes]"));
    assert_eq!(shown("short"), "short");
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        // Any string: the rules never panic and a decimal that parses round-trips exactly.
        #[test]
        fn decimal_parse_is_exact(int in 0i64..1_000_000_000, frac in 0u32..100) {
            let s = format!("{int}.{frac:02}");
            let d = parse_decimal(&s).unwrap();
            prop_assert_eq!(d.to_string(), s);
        }

        // The byte tests accept exactly what the regular expressions they replace accept.
        #[test]
        fn email_byte_test_is_the_regex(
            s in "[a-z@. \t\u{a0}\u{2003}\u{85}\u{b}é]{0,12}",
        ) {
            let re = Regex::new(r"^[^\s@]+@([^\s@.]+\.)+[^\s@.]+$").unwrap();
            prop_assert_eq!(is_email(&s), re.is_match(&s), "{:?}", s);
        }

        #[test]
        fn decimal_byte_test_is_the_regex(s in "[-0-9.a٣ ]{0,8}") {
            let re = Regex::new(r"^-?[0-9]+(\.[0-9]+)?$").unwrap();
            prop_assert_eq!(is_plain_decimal(&s), re.is_match(&s), "{:?}", s);
        }

        #[test]
        fn process_never_panics(a in ".*", b in ".*", cc in ".*") {
            let (_, c) = entity(&format!(
                "{BASE}columns=['k','d','m']\nkey='k'\nvalidate=[{{rule='date', field='d', formats=['YYYY-MM-DD','DD/MM/YYYY']}},{{rule='decimal', field='m', scale=2}},{{rule='unique', field='k'}}]\nmap={{k='k', d='d', m='m'}}"
            ));
            let _ = run(&c, &[&[a.as_str(), b.as_str(), cc.as_str()]]);
        }
    }
}

/// `unique` is settled after the other rules, yet its reason keeps its place among them,
/// in rule order, and a value counts as seen from a row that fails other rules.
#[test]
fn unique_keeps_its_place_among_the_reasons() {
    let (_, c) = entity(&format!(
        "{BASE}columns=['k','e','n']\nkey='k'\nvalidate=[{{rule='required', field='n'}},{{rule='unique', field='k'}},{{rule='email', field='e'}},{{rule='unique', field='e'}}]\nmap={{k='k'}}"
    ));
    let v = run(
        &c,
        &[
            &["1", "bad", ""],
            &["1", "bad", ""],
            &["2", "a@b.cd", "x"],
            &["3", "a@b.cd", "x"],
        ],
    );
    assert_eq!(rules_of(&v[0]), ["required:n", "email:e"]);
    assert_eq!(
        rules_of(&v[1]),
        ["required:n", "unique:k", "email:e", "unique:e"]
    );
    assert!(matches!(v[2], Verdict::Valid { .. }));
    assert_eq!(rules_of(&v[3]), ["unique:e"]);
}

mod real_schemas;
