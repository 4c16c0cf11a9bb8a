//! The Odoo target against the Odoo stand-in, through both transports: bad rows isolated
//! with Odoo's own messages (also past the 10-error cap), re-runs that create nothing,
//! retried faults, a refused key, per-currency sums to the cent, workers with group-by,
//! rollback by external id, users archived and restored, and the key kept out of every
//! message.

#[path = "common/odoo_standin/mod.rs"]
mod odoo_standin;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use cutover::engine::rules::SqlValue;
use cutover::runbook::ResolvedEnv;
use cutover::target::odoo::{OdooOptions, OdooTarget, XmlIds};
use cutover::target::{Prepare, TableSpec, Target, TargetError};
use odoo_standin::{Fault, OdooStandin, OdooVersion, StandinConfig, StandinHandle};
use rust_decimal::Decimal;

#[derive(Clone, Copy, Debug)]
enum Via {
    JsonRpc,
    Json2,
}

const BOTH: [Via; 2] = [Via::JsonRpc, Via::Json2];

fn standin(via: Via, databases: &[&str]) -> StandinHandle {
    OdooStandin::start_blocking(StandinConfig {
        // JSON-RPC as Odoo 18 answers it (read_group), JSON-2 as Odoo 19 (formatted_read_group).
        version: match via {
            Via::JsonRpc => OdooVersion::V18,
            Via::Json2 => OdooVersion::V19,
        },
        databases: databases.iter().map(|d| d.to_string()).collect(),
        ..Default::default()
    })
}

fn url(odoo: &StandinHandle, via: Via, db: &str) -> String {
    match via {
        Via::JsonRpc => odoo.url_jsonrpc(db),
        Via::Json2 => odoo.url_json2(db),
    }
}

fn env(url: String, key: &str) -> ResolvedEnv {
    ResolvedEnv {
        name: "production".into(),
        url,
        password: Some(key.to_string()),
        production: true,
        reset: false,
        app_users: vec![],
    }
}

/// Short waits so that retried faults do not slow the suite.
fn quick() -> OdooOptions {
    OdooOptions {
        backoff: Duration::from_millis(20),
        request_timeout: Duration::from_secs(20),
        ..Default::default()
    }
}

fn open(odoo: &StandinHandle, via: Via, db: &str, opts: OdooOptions) -> OdooTarget {
    OdooTarget::open(&env(url(odoo, via, db), odoo.api_key()), opts).unwrap()
}

fn text(s: &str) -> SqlValue {
    if s.is_empty() {
        SqlValue::Null
    } else {
        SqlValue::Text(s.into())
    }
}

fn partner_spec() -> TableSpec {
    TableSpec {
        table: "res.partner".into(),
        key: "id".into(),
        columns: vec![
            "id".into(),
            "name".into(),
            "email".into(),
            "partner_latitude".into(),
        ],
    }
}

/// `n` customers; the rows in `no_name` have no name (Odoo: "Contacts require a name"), the
/// rows in `bad_number` a latitude that is not a number (a conversion error).
fn partners(n: usize, no_name: &[usize], bad_number: &[usize], email: &str) -> Vec<Vec<SqlValue>> {
    (0..n)
        .map(|i| {
            let name = if no_name.contains(&i) {
                String::new()
            } else {
                format!("Customer {i}")
            };
            let lat = if bad_number.contains(&i) {
                "north".to_string()
            } else {
                format!("{}.5", i % 80)
            };
            vec![
                text(&format!("tms_customer_C{i:07}")),
                text(&name),
                text(&format!("c{i}@{email}")),
                SqlValue::Text(lat),
            ]
        })
        .collect()
}

fn refs(rows: &[Vec<SqlValue>]) -> Vec<&[SqlValue]> {
    rows.iter().map(|r| r.as_slice()).collect()
}

/// How many records of `model` carry one of this run's external ids (`__import__.tms_…`).
fn run_records(odoo: &StandinHandle, db: &str, model: &str) -> usize {
    odoo.with_db(db, |d| {
        d.table("ir.model.data")
            .values()
            .filter(|r| {
                r["model"] == serde_json::json!(model)
                    && r["module"] == serde_json::json!("__import__")
                    && r["name"].as_str().is_some_and(|n| n.starts_with("tms_"))
                    && d.get(model, r["res_id"].as_i64().unwrap()).is_some()
            })
            .count()
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn a_batch_of_1000_with_3_bad_rows_loads_997_and_refuses_those_3() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(&odoo, via, "odoo", quick());
        let rows = partners(1000, &[17, 500, 999], &[], "example.com");
        let out = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap();
        assert_eq!(out.loaded, 997, "{via:?}");
        let refused: Vec<usize> = out.refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(refused, vec![17, 500, 999], "{via:?}");
        for (_, msg) in &out.refused {
            assert_eq!(msg, "Contacts require a name", "{via:?}");
        }
        assert_eq!(run_records(&odoo, "odoo", "res.partner"), 997, "{via:?}");
        assert_eq!(t.count("res.partner").await.unwrap(), 997, "{via:?}");
        // One refused call, then the 997 again: not a call per row.
        assert_eq!(odoo.load_calls(), 2, "{via:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn thirty_bad_rows_past_odoos_10_error_cap_are_each_refused() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(&odoo, via, "odoo", quick());
        // Dense enough that Odoo interrupts its report: more than 10 errors and more than
        // one per 10 records (rows 3, 8, … 98), plus conversion errors further on.
        let no_name: Vec<usize> = (0..20).map(|k| k * 5 + 3).collect();
        let bad_number: Vec<usize> = (0..10).map(|k| k * 97 + 11).collect();
        let rows = partners(1000, &no_name, &bad_number, "example.com");
        // The premise: one plain `load` of these rows lists fewer errors than there are,
        // and ends with the cap warning, which names no row.
        let cells: Vec<Vec<String>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| match v {
                        SqlValue::Text(s) => s.clone(),
                        _ => String::new(),
                    })
                    .collect()
            })
            .collect();
        let raw = t
            .call(
                "res.partner",
                "load",
                &[],
                vec![
                    ("fields", serde_json::json!(partner_spec().columns)),
                    ("data", serde_json::json!(cells)),
                ],
            )
            .await
            .unwrap();
        let messages = raw["messages"].as_array().unwrap();
        assert!(messages.len() < 30, "{via:?}: {} messages", messages.len());
        let last = messages.last().unwrap();
        assert!(
            last["type"] == "warning" && last.get("rows").is_none(),
            "{via:?}: {last}"
        );
        assert_eq!(raw["ids"], false, "{via:?}");
        odoo.reset_calls();
        let out = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap();
        assert_eq!(out.loaded, 970, "{via:?}");
        let got: BTreeMap<usize, &str> =
            out.refused.iter().map(|(i, m)| (*i, m.as_str())).collect();
        let mut want: BTreeSet<usize> = no_name.iter().copied().collect();
        want.extend(&bad_number);
        assert_eq!(
            got.keys().copied().collect::<BTreeSet<_>>(),
            want,
            "{via:?}"
        );
        for i in &no_name {
            assert_eq!(got[i], "Contacts require a name", "{via:?} row {i}");
        }
        for i in &bad_number {
            assert!(
                got[i].contains("'north' does not seem to be a number"),
                "{via:?} row {i}: {}",
                got[i]
            );
        }
        assert_eq!(run_records(&odoo, "odoo", "res.partner"), 970, "{via:?}");
        assert!(
            odoo.load_calls() < 15,
            "{via:?}: {} load calls",
            odoo.load_calls()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_rerun_creates_nothing_and_updates_the_records() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(&odoo, via, "odoo", quick());
        let before_all = odoo.records("res.partner").len();
        let first = partners(300, &[], &[], "old.example");
        assert_eq!(
            t.write_batch(&partner_spec(), &refs(&first), true)
                .await
                .unwrap()
                .loaded,
            300
        );
        let second = partners(300, &[], &[], "new.example");
        let out = t
            .write_batch(&partner_spec(), &refs(&second), true)
            .await
            .unwrap();
        assert_eq!((out.loaded, out.refused.len()), (300, 0), "{via:?}");
        assert_eq!(
            odoo.records("res.partner").len(),
            before_all + 300,
            "{via:?}"
        );
        assert_eq!(t.count("res.partner").await.unwrap(), 300, "{via:?}");
        let (_, id) = odoo.xmlid("__import__.tms_customer_C0000042").unwrap();
        let rec = odoo
            .records("res.partner")
            .into_iter()
            .find(|r| r["id"] == id)
            .unwrap();
        assert_eq!(rec["email"], "c42@new.example", "{via:?}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transient_faults_are_retried_and_the_load_completes() {
    let faults = [
        Fault::Status(500),
        Fault::Status(502),
        Fault::Status(503),
        Fault::Status(429),
        Fault::Timeout(Duration::from_millis(1500)),
        Fault::Serialization,
    ];
    for via in BOTH {
        for fault in &faults {
            let odoo = standin(via, &["odoo"]);
            let t = open(
                &odoo,
                via,
                "odoo",
                OdooOptions {
                    request_timeout: Duration::from_millis(700),
                    ..quick()
                },
            );
            odoo.fail_next(2, fault.clone());
            let rows = partners(50, &[], &[], "example.com");
            let out = t.write_batch(&partner_spec(), &refs(&rows), true).await;
            let out = out.unwrap_or_else(|e| panic!("{via:?} {fault:?}: {e:#}"));
            assert_eq!(
                (out.loaded, out.refused.len()),
                (50, 0),
                "{via:?} {fault:?}"
            );
            assert_eq!(
                run_records(&odoo, "odoo", "res.partner"),
                50,
                "{via:?} {fault:?}"
            );
            let failed = odoo
                .calls()
                .iter()
                .filter(|c| c.method == "load" && c.failed)
                .count();
            if !matches!(fault, Fault::Timeout(_)) {
                assert_eq!(failed, 2, "{via:?} {fault:?}: the faults were met");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_that_outlast_the_retries_are_transient_errors() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(
            &odoo,
            via,
            "odoo",
            OdooOptions {
                retries: 2,
                ..quick()
            },
        );
        odoo.fail_next(3, Fault::Status(503));
        let rows = partners(5, &[], &[], "example.com");
        let err = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{via:?}: {err:#}");
        // The engine's retry then succeeds: the same rows, nothing duplicated.
        let out = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap();
        assert_eq!(out.loaded, 5);
        assert_eq!(run_records(&odoo, "odoo", "res.partner"), 5);
    }
}

fn assert_refused_key(err: TargetError, via: Via, key: &str) {
    assert!(matches!(err, TargetError::Fatal(_)), "{via:?}: {err:#}");
    let msg = format!("{err:#} {err:?}");
    assert!(
        msg.contains("Odoo refused the API key for"),
        "{via:?}: {msg}"
    );
    assert!(
        msg.contains("127.0.0.1") && msg.contains("ODOO_API_KEY"),
        "{via:?}: {msg}"
    );
    assert!(!msg.contains(key), "{via:?}: the key leaked: {msg}");
}

#[tokio::test(flavor = "multi_thread")]
async fn an_expired_or_wrong_key_stops_with_a_clear_fatal_message() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let key = odoo.api_key().to_string();
        let t = open(&odoo, via, "odoo", quick());
        let rows = partners(10, &[], &[], "example.com");
        t.write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap();
        odoo.expire_key(&key);
        let err = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap_err();
        assert_refused_key(err, via, &key);
        // Wrong from the start (JSON-RPC: `authenticate` answers false).
        let wrong = "wrong-key-7f3a9c1e5b";
        let t = OdooTarget::open(&env(url(&odoo, via, "odoo"), wrong), quick()).unwrap();
        let err = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap_err();
        assert_refused_key(err, via, wrong);
    }
}

fn invoice_spec() -> TableSpec {
    TableSpec {
        table: "account.move".into(),
        key: "id".into(),
        columns: [
            "id",
            "move_type",
            "partner_id/id",
            "invoice_date",
            "currency_id/id",
            "invoice_line_ids/name",
            "invoice_line_ids/quantity",
            "invoice_line_ids/price_unit",
            "invoice_line_ids/tax_ids",
        ]
        .map(String::from)
        .to_vec(),
    }
}

/// `n` invoices over `customers` partners, each with 1..=3 lines (continuation rows), in
/// EUR, USD and GBP, and the expected total per currency. Invoice `bad` has a line whose
/// price is not a number.
fn invoices(
    n: usize,
    customers: usize,
    bad: Option<usize>,
) -> (Vec<Vec<SqlValue>>, BTreeMap<String, Decimal>) {
    let mut rows = Vec::new();
    let mut want: BTreeMap<String, Decimal> = BTreeMap::new();
    let date = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    for i in 0..n {
        let cur = ["EUR", "USD", "GBP"][i % 3];
        let lines = 1 + i % 3;
        let mut total = Decimal::ZERO;
        for l in 0..lines {
            // Cents that floats do not hold exactly: 0.10, 0.20, 0.30, …
            let price = Decimal::new(((i * 7 + l * 13) % 997 + 10) as i64, 2);
            let price_cell = if bad == Some(i) && l == lines - 1 {
                SqlValue::Text("ten".into())
            } else {
                SqlValue::Dec(price)
            };
            total += price;
            let head = if l == 0 {
                vec![
                    text(&format!("tms_invoice_I{i:07}")),
                    text("out_invoice"),
                    text(&format!("tms_customer_C{:07}", i % customers)),
                    SqlValue::Date(date + chrono::Days::new(i as u64 % 300)),
                    text(&format!("base.{cur}")),
                ]
            } else {
                vec![SqlValue::Null; 5]
            };
            let mut row = head;
            row.extend([
                text(&format!("line {l}")),
                SqlValue::Int(1),
                price_cell,
                SqlValue::Null,
            ]);
            rows.push(row);
        }
        if bad != Some(i) {
            *want.entry(cur.to_string()).or_default() += total;
        }
    }
    (rows, want)
}

#[tokio::test(flavor = "multi_thread")]
async fn sums_per_currency_are_exact_to_the_cent_and_a_bad_line_refuses_its_invoice() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(
            &odoo,
            via,
            "odoo",
            OdooOptions {
                batch_size: 250,
                ..quick()
            },
        );
        let customers = partners(40, &[], &[], "example.com");
        t.write_batch(&partner_spec(), &refs(&customers), true)
            .await
            .unwrap();
        let (rows, want) = invoices(600, 40, Some(101));
        let out = t
            .write_batch(&invoice_spec(), &refs(&rows), true)
            .await
            .unwrap();
        // Invoice 101 has 3 rows (101 % 3 == 2): its head and both lines are refused.
        let start = (0..101).map(|i| 1 + i % 3).sum::<usize>();
        let refused: Vec<usize> = out.refused.iter().map(|(i, _)| *i).collect();
        assert_eq!(
            refused,
            vec![start, start + 1, start + 2],
            "{via:?}: {:?}",
            out.refused
        );
        assert!(
            out.refused[2]
                .1
                .contains("'ten' does not seem to be a number"),
            "{via:?}: {:?}",
            out.refused
        );
        assert!(
            out.refused[0].1.contains("'ten'"),
            "{via:?}: {:?}",
            out.refused
        );
        assert_eq!(out.loaded as usize, rows.len() - 3, "{via:?}");
        assert_eq!(t.count("account.move").await.unwrap(), 599, "{via:?}");
        let sums = t
            .sums("account.move", "amount_total", Some("currency_id"))
            .await
            .unwrap();
        assert_eq!(sums, want, "{via:?}");
        let residual = t
            .sums("account.move", "amount_residual", Some("currency_id/id"))
            .await
            .unwrap();
        assert_eq!(residual, want, "{via:?}");
        let all = t.sums("account.move", "amount_total", None).await.unwrap();
        assert_eq!(all[""], want.values().copied().sum::<Decimal>(), "{via:?}");
        // `action_post` through the public call: posted invoices keep their totals.
        let (_, id) = odoo.xmlid("__import__.tms_invoice_I0000000").unwrap();
        t.call("account.move", "action_post", &[id], vec![])
            .await
            .unwrap();
        assert_eq!(
            t.sums("account.move", "amount_total", Some("currency_id"))
                .await
                .unwrap(),
            want
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_with_group_by_load_what_one_worker_loads() {
    for via in BOTH {
        let odoo = standin(via, &["one", "four"]);
        let customers = partners(30, &[], &[], "example.com");
        let (rows, want) = invoices(900, 30, None);
        let mut results = Vec::new();
        for (db, workers) in [("one", 1), ("four", 4)] {
            let mut opts = OdooOptions {
                batch_size: 100,
                workers,
                ..quick()
            };
            opts.group_by
                .insert("account.move".into(), "partner_id/id".into());
            let t = open(&odoo, via, db, opts);
            t.write_batch(&partner_spec(), &refs(&customers), true)
                .await
                .unwrap();
            let out = t
                .write_batch(&invoice_spec(), &refs(&rows), true)
                .await
                .unwrap();
            assert_eq!(
                (out.loaded as usize, out.refused.len()),
                (rows.len(), 0),
                "{via:?} {db}"
            );
            let sums = t
                .sums("account.move", "amount_total", Some("currency_id"))
                .await
                .unwrap();
            assert_eq!(sums, want, "{via:?} {db}");
            let mut per_invoice: Vec<String> = odoo
                .records_in(db, "account.move")
                .into_iter()
                .map(|r| {
                    let lines = r["invoice_line_ids"]
                        .as_array()
                        .map(|a| a.len())
                        .unwrap_or(0);
                    format!(
                        "{} {} {lines} {}",
                        r["partner_id"][1], r["invoice_date"], r["amount_total"]
                    )
                })
                .collect();
            per_invoice.sort();
            results.push((t.count("account.move").await.unwrap(), per_invoice));
        }
        assert_eq!(results[0].0, 900);
        assert_eq!(results[0], results[1], "{via:?}");
        // The batch was spread over calls of about 100 rows (then run 4 at a time).
        let loads = odoo
            .calls()
            .iter()
            .filter(|c| c.method == "load" && c.db == "four")
            .count();
        assert!(loads >= 9, "{via:?}: {loads} calls");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rollback_by_external_ids_leaves_nothing_and_users_reopen_as_they_were() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(
            &odoo,
            via,
            "odoo",
            OdooOptions {
                xmlid_prefix: Some("__import__.tms_".into()),
                ..quick()
            },
        );
        let before = odoo.records("res.partner").len();
        let customers = partners(60, &[], &[], "example.com");
        t.write_batch(&partner_spec(), &refs(&customers), true)
            .await
            .unwrap();
        let (rows, _) = invoices(30, 60, None);
        t.write_batch(&invoice_spec(), &refs(&rows), true)
            .await
            .unwrap();
        let prefix = XmlIds::Prefix("tms_".into());
        assert_eq!(
            t.count_by_external_ids("account.move", &prefix)
                .await
                .unwrap(),
            30
        );
        // Two thirds of them posted: Odoo refuses to delete a posted entry, and to reset
        // one that is not posted; the rollback resets exactly the posted ones.
        let moves = t
            .resolve_external_ids("account.move", &prefix)
            .await
            .unwrap();
        t.call("account.move", "action_post", &moves[..20], Vec::new())
            .await
            .unwrap();
        let refused = t
            .call("account.move", "unlink", &moves[..1], Vec::new())
            .await
            .unwrap_err();
        assert!(
            format!("{refused:?}").contains("reset the journal entry to draft before deleting it"),
            "{via:?}: {refused:?}"
        );
        // Dependents first: invoices, then their partners.
        assert_eq!(
            t.delete_by_external_ids("account.move", &prefix)
                .await
                .unwrap(),
            30
        );
        assert_eq!(
            t.delete_by_external_ids("res.partner", &prefix)
                .await
                .unwrap(),
            60
        );
        for model in ["account.move", "res.partner"] {
            assert_eq!(
                t.count_by_external_ids(model, &prefix).await.unwrap(),
                0,
                "{via:?} {model}"
            );
            assert_eq!(t.count(model).await.unwrap(), 0, "{via:?} {model}");
        }
        assert_eq!(
            odoo.records("res.partner").len(),
            before,
            "{via:?}: Odoo's own partners stay"
        );
        let listed = XmlIds::List(vec!["tms_customer_C0000001".into()]);
        assert_eq!(
            t.count_by_external_ids("res.partner", &listed)
                .await
                .unwrap(),
            0
        );

        // Close and reopen production: a user archived before stays archived.
        odoo.add_user("odoo", "dispatch", "pw-dispatch", "key-dispatch-0001");
        odoo.add_user("odoo", "billing", "pw-billing", "key-billing-0001");
        odoo.archive_user("odoo", "billing");
        let logins = vec!["dispatch".to_string(), "billing".to_string()];
        let was = t.archive_users(&logins).await.unwrap();
        assert_eq!(
            was,
            vec![
                ("dispatch".to_string(), true),
                ("billing".to_string(), false)
            ]
        );
        let active = |login: &str| {
            odoo.records("res.users")
                .into_iter()
                .find(|u| u["login"] == login)
                .unwrap()["active"]
                == true
        };
        assert!(!active("dispatch") && !active("billing"), "{via:?}");
        assert_eq!(t.restore_users(&was).await.unwrap(), 1);
        assert!(active("dispatch") && !active("billing"), "{via:?}");
        let err = t.archive_users(&["nobody".to_string()]).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("no user with login nobody"),
            "{err:#}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prepare_names_an_unknown_field_and_the_key_appears_nowhere() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let key = odoo.api_key().to_string();
        let t = open(&odoo, via, "odoo", quick());
        let mut prep = Prepare::default();
        prep.tables.insert(
            "res.partner".into(),
            vec!["id".into(), "name".into(), "parent_id/id".into()],
        );
        assert_eq!(t.prepare(&prep).await.unwrap(), None, "{via:?}");
        prep.tables
            .insert("res.partner".into(), vec!["id".into(), "zorglub".into()]);
        let mut texts = Vec::new();
        let err = t.prepare(&prep).await.unwrap_err();
        assert!(
            format!("{err:#}").contains("no field zorglub"),
            "{via:?}: {err:#}"
        );
        texts.push(format!("{err:#} {err:?}"));
        // An unknown column in `load` is an RPC error, not a row's fault.
        let spec = TableSpec {
            table: "res.partner".into(),
            key: "id".into(),
            columns: vec!["id".into(), "zorglub".into()],
        };
        let err = t
            .write_batch(&spec, &[&[text("tms_x"), text("y")]], true)
            .await
            .unwrap_err();
        assert!(matches!(err, TargetError::Fatal(_)), "{via:?}: {err:#}");
        texts.push(format!("{err:#} {err:?}"));
        // A server that is not there: transient, and named without the key.
        let gone = OdooTarget::open(
            &env(
                url(&odoo, via, "odoo").replace(&odoo.port().to_string(), "1"),
                &key,
            ),
            OdooOptions {
                retries: 0,
                ..quick()
            },
        )
        .unwrap();
        let err = gone
            .write_batch(&partner_spec(), &refs(&partners(1, &[], &[], "x")), true)
            .await
            .unwrap_err();
        assert!(err.is_transient(), "{via:?}: {err:#}");
        texts.push(format!("{err:#} {err:?}"));
        texts.push(format!("{t:?} {} {:?}", t.name(), t.endpoint()));
        for s in &texts {
            assert!(!s.contains(&key), "{via:?}: the key leaked: {s}");
        }
        assert!(t.name().starts_with("odoo+"), "{}", t.name());
        // A key in the URL is refused, without repeating it.
        let with_key = format!("odoo+jsonrpc://admin:{key}@127.0.0.1:8069/odoo");
        let err = OdooTarget::open(&env(with_key, &key), quick()).unwrap_err();
        assert!(!format!("{err:#}").contains(&key), "{err:#}");
    }
}

/// Log lines go to a buffer the test reads.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

// One thread: the subscriber set for this test sees every log line of the calls, the
// HTTP client's own included.
#[tokio::test(flavor = "current_thread")]
async fn the_key_appears_in_no_log_line() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let key = odoo.api_key().to_string();
        let t = open(&odoo, via, "odoo", quick());
        odoo.fail_next(2, Fault::Status(503));
        let rows = partners(20, &[3], &[], "example.com");
        let out = t
            .write_batch(&partner_spec(), &refs(&rows), true)
            .await
            .unwrap();
        assert_eq!(out.loaded, 19);
        odoo.expire_key(&key);
        assert!(
            t.write_batch(&partner_spec(), &refs(&rows), true)
                .await
                .is_err()
        );
        let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).to_string();
        assert!(
            text.contains("retrying"),
            "{via:?}: the retries were logged: {text}"
        );
        assert!(!text.contains(&key), "{via:?}: the key leaked into the log");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn continuation_rows_cut_from_their_record_are_refused_not_loaded_alone() {
    for via in BOTH {
        let odoo = standin(via, &["odoo"]);
        let t = open(&odoo, via, "odoo", quick());
        let customers = partners(5, &[], &[], "example.com");
        t.write_batch(&partner_spec(), &refs(&customers), true)
            .await
            .unwrap();
        let (rows, _) = invoices(3, 5, None); // 1 + 2 + 3 rows
        let before = odoo.records("account.move").len();
        // A batch that starts on the second row of invoice 1, its head left behind.
        let out = t
            .write_batch(&invoice_spec(), &refs(&rows[2..]), true)
            .await
            .unwrap();
        assert_eq!(out.refused.len(), 1, "{via:?}: {:?}", out.refused);
        assert_eq!(out.refused[0].0, 0);
        assert!(
            out.refused[0].1.contains("without its record"),
            "{:?}",
            out.refused
        );
        assert_eq!(out.loaded, 3, "{via:?}: invoice 2 and its lines");
        assert_eq!(
            odoo.records("account.move").len(),
            before + 1,
            "{via:?}: no record of a lone line"
        );
    }
}
