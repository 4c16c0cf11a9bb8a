//! Generate the reference data set.
//!
//! `cargo run --example gen_reference -- OUT_DIR [--clean N] [--seed S] [--sqlite FILE]`
//! Without `--clean`, writes the dirty demo set (`GenOptions::demo()`).
use cutover::demo::{GenOptions, write_csv_extracts, write_legacy_sqlite};
use std::path::PathBuf;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut dir: Option<PathBuf> = None;
    let mut opts = GenOptions::demo();
    let mut sqlite: Option<PathBuf> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--clean" => {
                let seed = opts.seed;
                opts = GenOptions::clean(args.next().unwrap_or_default().parse()?);
                opts.seed = seed;
            }
            "--seed" => opts.seed = args.next().unwrap_or_default().parse()?,
            "--sqlite" => sqlite = args.next().map(PathBuf::from),
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    if let Some(dir) = dir {
        println!("csv    {:?}", write_csv_extracts(&dir, &opts)?);
    }
    if let Some(db) = sqlite {
        println!("sqlite {:?}", write_legacy_sqlite(&db, &opts).await?);
    }
    Ok(())
}
