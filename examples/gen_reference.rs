//! Generate the reference data set.
//!
//! `cargo run --example gen_reference -- [OUT_DIR] [--clean N] [--customers N] [--vehicles N]
//!  [--drivers N] [--dirty-pct P] [--seed S] [--sqlite FILE] [--db URL]`
//! Without `--clean`, writes the dirty demo set (`GenOptions::demo()`). `--clean N` gives N
//! valid invoices and, unless given, customers, vehicles and drivers in its proportions;
//! `--dirty-pct P` breaks P% of the generated rows with one defect each (the benchmark's
//! dirty run). `--db` fills an existing PostgreSQL or MariaDB database (password from
//! `CUTOVER_DB_PASSWORD`, if any).
use cutover::demo::{GenOptions, write_csv_extracts, write_legacy_db, write_legacy_sqlite};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut opts = GenOptions::demo();
    let mut sqlite: Option<PathBuf> = None;
    let mut db_url: Option<String> = None;
    // Counts given on their own apply after --clean, whatever the order.
    let (mut customers, mut vehicles, mut drivers) = (None, None, None);
    let mut dirty_pct = None;
    let count = |v: Option<String>| -> anyhow::Result<Option<usize>> {
        Ok(Some(v.unwrap_or_default().parse()?))
    };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clean" => {
                let seed = opts.seed;
                opts = GenOptions::clean(args.next().unwrap_or_default().parse()?);
                opts.seed = seed;
            }
            "--customers" => customers = count(args.next())?,
            "--vehicles" => vehicles = count(args.next())?,
            "--drivers" => drivers = count(args.next())?,
            "--dirty-pct" => {
                let p: u32 = args.next().unwrap_or_default().parse()?;
                anyhow::ensure!(p <= 100, "--dirty-pct is a percentage: 0 to 100");
                dirty_pct = Some(p);
            }
            "--seed" => opts.seed = args.next().unwrap_or_default().parse()?,
            "--sqlite" => sqlite = args.next().map(PathBuf::from),
            "--db" => db_url = args.next(),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    opts.customers = customers.unwrap_or(opts.customers);
    opts.vehicles = vehicles.unwrap_or(opts.vehicles);
    opts.drivers = drivers.unwrap_or(opts.drivers);
    opts.dirty_pct = dirty_pct.unwrap_or(opts.dirty_pct);
    if let Some(dir) = dir {
        println!("csv    {:?}", write_csv_extracts(&dir, &opts)?);
    }
    if let Some(db) = sqlite {
        println!("sqlite {:?}", write_legacy_sqlite(&db, &opts).await?);
    }
    if let Some(url) = db_url {
        let env = cutover::runbook::ResolvedEnv {
            name: "legacy".into(),
            url: url.clone(),
            password: std::env::var("CUTOVER_DB_PASSWORD").ok(),
            production: false,
            reset: false,
            app_users: vec![],
        };
        let db = cutover::db::Db::connect(&env).await?;
        let r = write_legacy_db(&db, &opts).await;
        db.close().await;
        println!("{} {:?}", cutover::db::redact_url(&url), r?);
    }
    Ok(())
}
