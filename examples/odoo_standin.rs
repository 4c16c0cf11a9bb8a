//! Serves the Odoo stand-in (tests only, not Odoo: see docs/odoo-protocol.md) so that a
//! person or the benchmark can run `cutover` against it by hand.
//!
//!     cargo run --example odoo_standin -- 8069 [--version 17|18|19] [--db NAME]... [--latency-ms N]

#[path = "../tests/common/odoo_standin/mod.rs"]
mod odoo_standin;

use odoo_standin::{OdooStandin, OdooVersion, StandinConfig};
use std::time::Duration;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut cfg = StandinConfig {
        databases: vec![],
        ..Default::default()
    };
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--version" => {
                cfg.version = match val().as_str() {
                    "17" => OdooVersion::V17,
                    "18" => OdooVersion::V18,
                    "19" => OdooVersion::V19,
                    v => usage(&format!("unknown version {v}")),
                }
            }
            "--db" => cfg.databases.push(val()),
            "--latency-ms" => {
                cfg.latency = Duration::from_millis(
                    val()
                        .parse()
                        .unwrap_or_else(|_| usage("--latency-ms takes a number")),
                )
            }
            "-h" | "--help" => usage(""),
            p => {
                cfg.port = p
                    .parse()
                    .unwrap_or_else(|_| usage(&format!("not a port: {p}")))
            }
        }
    }
    if cfg.port == 0 {
        usage("give a port");
    }
    if cfg.databases.is_empty() {
        cfg.databases = vec!["tms_staging".into(), "tms".into()];
    }
    let h = OdooStandin::start_blocking(cfg.clone());
    println!(
        "Odoo stand-in (tests only, not Odoo) {:?} on {}",
        cfg.version,
        h.base_url()
    );
    for db in &cfg.databases {
        if cfg.version == OdooVersion::V19 {
            println!("  {}", h.url_json2(db));
        }
        println!("  {}", h.url_jsonrpc(db));
    }
    println!("API key (login {}, password {}):", h.login(), h.password());
    println!("  export ODOO_API_KEY={}", h.api_key());
    println!("Ctrl-C to stop; records live in memory only.");
    loop {
        std::thread::park();
    }
}

fn usage(msg: &str) -> ! {
    if !msg.is_empty() {
        eprintln!("odoo_standin: {msg}");
    }
    eprintln!("usage: odoo_standin PORT [--version 17|18|19] [--db NAME]... [--latency-ms N]");
    std::process::exit(2);
}
