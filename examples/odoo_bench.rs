//! Throughput of the Odoo target against the Odoo stand-in (tests only, not Odoo): rows
//! per second at 1, 2 and 4 workers, `load` batches of 1,000, over both transports, for
//! partners (one row a record) and invoices with two lines (three rows a record, grouped
//! by partner). `--latency-ms N` adds N ms of server work to every call, as a real Odoo
//! spends computing a `load`.
//!
//!     cargo run --release --example odoo_bench -- [--rows 20000] [--latency-ms 0] [--only partners|invoices]

#[path = "../tests/common/odoo_standin/mod.rs"]
mod odoo_standin;

use std::time::{Duration, Instant};

use cutover::engine::rules::SqlValue;
use cutover::runbook::ResolvedEnv;
use cutover::target::odoo::{OdooOptions, OdooTarget};
use cutover::target::{TableSpec, Target};
use odoo_standin::{OdooStandin, OdooVersion, StandinConfig};
use rust_decimal::Decimal;

fn text(s: String) -> SqlValue {
    SqlValue::Text(s)
}

fn partners(n: usize) -> (TableSpec, Vec<Vec<SqlValue>>) {
    let spec = TableSpec {
        table: "res.partner".into(),
        key: "id".into(),
        columns: ["id", "name", "email", "city"].map(String::from).to_vec(),
    };
    let rows = (0..n)
        .map(|i| {
            vec![
                text(format!("tms_customer_C{i:07}")),
                text(format!("Customer {i}")),
                text(format!("c{i}@example.com")),
                text(format!("City {}", i % 97)),
            ]
        })
        .collect();
    (spec, rows)
}

fn invoices(n: usize, customers: usize) -> (TableSpec, Vec<Vec<SqlValue>>) {
    let spec = TableSpec {
        table: "account.move".into(),
        key: "id".into(),
        columns: [
            "id",
            "move_type",
            "partner_id/id",
            "currency_id/id",
            "invoice_line_ids/name",
            "invoice_line_ids/quantity",
            "invoice_line_ids/price_unit",
            "invoice_line_ids/tax_ids",
        ]
        .map(String::from)
        .to_vec(),
    };
    let mut rows = Vec::new();
    for i in 0..n {
        for l in 0..2 {
            let mut row = if l == 0 {
                vec![
                    text(format!("tms_invoice_I{i:07}")),
                    text("out_invoice".into()),
                    text(format!("tms_customer_C{:07}", i % customers)),
                    text(["base.EUR", "base.USD"][i % 2].into()),
                ]
            } else {
                vec![SqlValue::Null; 4]
            };
            row.extend([
                text(format!("line {l}")),
                SqlValue::Int(1),
                SqlValue::Dec(Decimal::new((i * 37 % 10_000) as i64 + 100, 2)),
                SqlValue::Null,
            ]);
            rows.push(row);
        }
    }
    (spec, rows)
}

#[tokio::main]
async fn main() {
    let mut rows = 20_000usize;
    let mut latency = Duration::ZERO;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--rows" => rows = v.parse().expect("--rows N"),
            "--latency-ms" => latency = Duration::from_millis(v.parse().expect("--latency-ms N")),
            "--only" => only = Some(v),
            _ => panic!("usage: odoo_bench [--rows N] [--latency-ms N] [--only partners|invoices]"),
        }
    }
    println!("transport  data      workers  rows    seconds  rows/s  load calls");
    for json2 in [false, true] {
        for workers in [1, 2, 4] {
            let odoo = OdooStandin::start(StandinConfig {
                version: if json2 {
                    OdooVersion::V19
                } else {
                    OdooVersion::V18
                },
                latency,
                ..Default::default()
            })
            .await;
            let url = if json2 {
                odoo.url_json2("odoo")
            } else {
                odoo.url_jsonrpc("odoo")
            };
            let env = ResolvedEnv {
                name: "bench".into(),
                url,
                password: Some(odoo.api_key().into()),
                production: false,
                reset: false,
                app_users: vec![],
            };
            let mut opts = OdooOptions {
                workers,
                ..Default::default()
            };
            opts.group_by
                .insert("account.move".into(), "partner_id/id".into());
            let t = OdooTarget::open(&env, opts).unwrap();
            let customers = rows / 10;
            for (what, (spec, data)) in [
                ("partners", partners(rows)),
                ("invoices", invoices(rows / 2, customers)),
            ] {
                // Invoices need their partners: those are always loaded, timed or not.
                let timed = only.as_deref().is_none_or(|o| o == what);
                if !timed && what == "invoices" {
                    continue;
                }
                let refs: Vec<&[SqlValue]> = data.iter().map(|r| r.as_slice()).collect();
                odoo.reset_calls();
                let start = Instant::now();
                let out = t.write_batch(&spec, &refs, true).await.unwrap();
                let secs = start.elapsed().as_secs_f64();
                assert_eq!(
                    (out.loaded as usize, out.refused.len()),
                    (data.len(), 0),
                    "{what}"
                );
                println!(
                    "{:<10} {what:<9} {workers:>7}  {:>6}  {secs:>7.2}  {:>6.0}  {:>10}",
                    if json2 { "json2" } else { "jsonrpc" },
                    data.len(),
                    data.len() as f64 / secs,
                    odoo.load_calls()
                );
            }
        }
    }
}
