//! Differential test: the engine and an independent implementation of the scenario's rules
//! (tests/oracle/tms_oracle.py, Python standard library only) must agree exactly on extracts
//! neither has seen: counts per entity, both invoice sums to the cent, the line of every
//! rejected row, and the partner of every loaded invoice. Needs python3 (present on every
//! machine of this project); it fails loudly without it.

mod common;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use cutover::demo::{GenOptions, SplitMix64, write_csv_extracts};

const TRICKY: &[&str] = &[
    "",
    " ",
    "  A ",
    "a",
    "I",
    "active",
    " ACTIVE",
    "inactive",
    "open",
    "partial",
    "OPEN",
    "paid",
    "EUR",
    "eur",
    "GBP",
    "XYZ",
    "31/02/2024",
    "29/02/2024",
    "2023-02-29",
    "2024-1-5",
    "0000-01-01",
    "1.234,56",
    "12.345",
    "12.50",
    "-0.01",
    "0",
    "0.00",
    "abc",
    "1e3",
    "1900",
    "2101",
    "-5",
    "søren.2@example.com",
    "a b@example.com",
    "x@y",
    "UP@EXAMPLE.COM",
    "1HGCM82633A004352",
    "1HGCM82633A00435O",
    "C00001",
    "C00002",
    "100.00",
    "21.00",
    "121.00",
    "Actros, \"18\"\nlong",
];

/// Replace a random field of about one row in six with a tricky value.
fn corrupt(dir: &Path, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    for f in [
        "customers.csv",
        "vehicles.csv",
        "drivers.csv",
        "open_invoices.csv",
    ] {
        let p = dir.join(f);
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(&p)
            .unwrap();
        let header = rdr.byte_headers().unwrap().clone();
        let rows: Vec<csv::ByteRecord> = rdr.byte_records().map(|r| r.unwrap()).collect();
        let mut w = csv::Writer::from_path(&p).unwrap();
        w.write_byte_record(&header).unwrap();
        for r in rows {
            let mut fields: Vec<Vec<u8>> = r.iter().map(|x| x.to_vec()).collect();
            if rng.below(6) == 0 && !fields.is_empty() {
                let i = rng.below(fields.len() as u64) as usize;
                fields[i] = rng.pick(TRICKY).as_bytes().to_vec();
            }
            w.write_record(&fields).unwrap();
        }
        w.flush().unwrap();
    }
}

fn agree(s: &Scratch) {
    let ex = s.path("extract");
    let want = oracle(&ex);
    let out = s.cutover(&["rehearse", "--json"], &tms());
    assert!(matches!(code(&out), 0 | 3), "rehearse: {}", stderr(&out));
    let got = json(&out);
    for name in ["customers", "vehicles", "drivers", "open_invoices"] {
        let (g, w) = (&got["entities"][name], &want["entities"][name]);
        for k in ["in_file", "in_scope", "valid", "rejected"] {
            assert_eq!(g[k], w[k], "{name}.{k}");
        }
        assert_eq!(g["loaded"], w["valid"], "{name}: loaded = valid");
        // One reject-file row per rejected row, at the oracle's lines.
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .from_path(g["reject_file"].as_str().unwrap())
            .unwrap();
        let hdr = rdr.headers().unwrap().clone();
        assert_eq!(hdr.iter().rev().nth(3), Some("_line"));
        // `_line` is 4th from the end: a malformed row keeps only the fields it has.
        let lines: BTreeSet<u64> = rdr
            .records()
            .map(|r| {
                let r = r.unwrap();
                r[r.len() - 4].parse().unwrap()
            })
            .collect();
        let expect: BTreeSet<u64> = w_lines(&want, name);
        assert_eq!(lines, expect, "{name}: rejected lines");
    }
    let sums = &got["entities"]["open_invoices"]["sums"];
    let o = &want["open_invoices_sums"];
    // The engine keeps these sums per currency only; across currencies they still add up
    // to the oracle's totals (a cross-check of the keys, not a figure anyone reports).
    let across = |k: &str| -> rust_decimal::Decimal {
        let prefix = format!("{k}.");
        sums.as_object()
            .unwrap()
            .iter()
            .filter(|(s, _)| s.starts_with(&prefix))
            .map(|(_, v)| dec(v))
            .sum()
    };
    assert_eq!(across("valid.amount_total"), dec(&o["valid_total"]));
    assert_eq!(across("valid.amount_residual"), dec(&o["valid_residual"]));
    assert_eq!(across("rejected.amount_total"), dec(&o["rejected_total"]));
    assert_eq!(
        across("rejected.amount_residual"),
        dec(&o["rejected_residual"])
    );
    // Per currency too: every currency either side knows, a blank one as "(none)".
    for (k, by_cur) in want["open_invoices_sums_by_currency"].as_object().unwrap() {
        let mut currencies: BTreeSet<String> = by_cur
            .as_object()
            .unwrap()
            .keys()
            .map(|c| {
                if c.is_empty() {
                    "(none)".into()
                } else {
                    c.clone()
                }
            })
            .collect();
        let prefix = format!("{k}.");
        currencies.extend(
            sums.as_object()
                .unwrap()
                .keys()
                .filter_map(|s| s.strip_prefix(&prefix).map(String::from)),
        );
        assert!(!currencies.is_empty(), "{k}: no currency at all");
        for cur in currencies {
            let oracle_cur = if cur == "(none)" { "" } else { cur.as_str() };
            let zero = serde_json::Value::String("0".into());
            let w = by_cur.get(oracle_cur).unwrap_or(&zero);
            let g = sums.get(format!("{k}.{cur}")).unwrap_or(&zero);
            assert_eq!(dec(g), dec(w), "{k}.{cur}");
        }
    }
    // Every loaded invoice points at the partner whose ref is its customer_id.
    // Unit/record separators: corrupted keys may hold line breaks.
    let pairs = sqlite(
        &s.path("staging.db"),
        "SELECT coalesce(group_concat(m.name || char(31) || p.ref, char(30)), '') FROM account_move m JOIN res_partner p ON p.id = m.partner_id",
    );
    let got_pairs: BTreeMap<String, String> = pairs
        .split('\u{1e}')
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.split_once('\u{1f}')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .unwrap()
        })
        .collect();
    let n_moves = sqlite(&s.path("staging.db"), "SELECT COUNT(*) FROM account_move");
    assert_eq!(
        n_moves,
        got_pairs.len().to_string(),
        "every invoice has a partner"
    );
    let want_pairs: BTreeMap<String, String> = want["invoice_partner"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    assert_eq!(got_pairs, want_pairs);
}

fn w_lines(want: &serde_json::Value, name: &str) -> BTreeSet<u64> {
    want["rejected_lines"][name]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap())
        .collect()
}

#[test]
fn engine_agrees_with_the_oracle_on_the_demo_set() {
    let s = Scratch::with_fixture("small");
    write_csv_extracts(
        &s.path("extract"),
        &GenOptions {
            seed: 101,
            ..GenOptions::demo()
        },
    )
    .unwrap();
    agree(&s);
}

#[test]
fn engine_agrees_with_the_oracle_on_corrupted_extracts() {
    for seed in [1u64, 2, 3] {
        let s = Scratch::with_fixture("small");
        write_csv_extracts(
            &s.path("extract"),
            &GenOptions {
                seed: 500 + seed,
                ..GenOptions::demo()
            },
        )
        .unwrap();
        corrupt(&s.path("extract"), seed);
        agree(&s);
    }
}

#[test]
fn engine_agrees_with_the_oracle_on_the_hand_made_fixture() {
    agree(&Scratch::with_fixture("small"));
}

/// Rows whose scope field holds a value outside the declared domain (a shifted row, a
/// status nobody declared): both sides reject them at their lines, none is out of scope.
#[test]
fn engine_agrees_with_the_oracle_on_values_outside_the_scope_domain() {
    let s = Scratch::with_fixture("small");
    for (file, rows) in [
        (
            "customers.csv",
            &[
                "C90,Shifted,s@example.com,,2020-01-01,10,A,Berlin",
                "C91,Other,o@example.com,,Köln,2020-01-01,10,Acme Ltd",
                "C92,Out,o2@example.com,,Köln,2020-01-01,10,x",
            ][..],
        ),
        (
            "drivers.csv",
            &[
                "D90,F,L6,2030-01-01,retired",
                "D91,G,L7,2030-01-01,SUSPENDED",
            ][..],
        ),
        (
            "open_invoices.csv",
            &[
                "I90,C1,,EUR,5,0,5,5,closed",
                "I91,C1,,EUR,5,0,5,5,OPEN",
                "I92,C1,,EUR,5,0,5,5,draft",
            ][..],
        ),
    ] {
        let p = s.path("extract").join(file);
        let mut text = std::fs::read_to_string(&p).unwrap();
        let eol = if text.contains("\r\n") { "\r\n" } else { "\n" };
        if !text.ends_with('\n') {
            text.push_str(eol);
        }
        for r in rows {
            text.push_str(r);
            text.push_str(eol);
        }
        std::fs::write(&p, text).unwrap();
    }
    let explained = std::process::Command::new("python3")
        .arg(repo().join("tests/oracle/tms_oracle.py"))
        .arg(s.path("extract"))
        .arg("--explain")
        .output()
        .expect("python3 is needed for the oracle");
    let want: serde_json::Value = serde_json::from_slice(&explained.stdout).unwrap();
    // Shifted / undeclared: rejected; 'x' and 'SUSPENDED' (case-insensitive) and 'draft':
    // declared out of scope.
    assert_eq!(
        want["rules"]["customers.status.scope"].as_u64(),
        Some(2),
        "{want}"
    );
    assert_eq!(want["rules"]["drivers.status.scope"].as_u64(), Some(1));
    assert_eq!(want["rules"]["open_invoices.state.scope"].as_u64(), Some(2));
    agree(&s);
}
