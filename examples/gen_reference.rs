//! Generate the reference data set.
//!
//! `cargo run --example gen_reference -- [OUT_DIR] [--clean N] [--seed S] [--sqlite FILE] [--db URL]`
//! Without `--clean`, writes the dirty demo set (`GenOptions::demo()`). `--db` fills an
//! existing PostgreSQL or MariaDB database (password from `CUTOVER_DB_PASSWORD`, if any).
use cutover::demo::{GenOptions, write_csv_extracts, write_legacy_db, write_legacy_sqlite};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut opts = GenOptions::demo();
    let mut sqlite: Option<PathBuf> = None;
    let mut db_url: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clean" => {
                let seed = opts.seed;
                opts = GenOptions::clean(args.next().unwrap_or_default().parse()?);
                opts.seed = seed;
            }
            "--seed" => opts.seed = args.next().unwrap_or_default().parse()?,
            "--sqlite" => sqlite = args.next().map(PathBuf::from),
            "--db" => db_url = args.next(),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
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
