//! The keys of `unique` and `reference` rules in bounded memory: an entity read with a key
//! budget so small that every key spills to disk gives the same verdicts as one that keeps
//! them all in memory, down to the keys the database refused; and a spill that cannot be
//! written stops the load instead of answering wrongly.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use cutover::engine::pipeline::{EntityJob, EntityResult, NoObserver, run_entity};
use cutover::engine::retry::RetryPolicy;
use cutover::engine::rules::Compiled;
use cutover::journal::events::Phase;
use cutover::keyset::{KeyMemory, KeySet};
use cutover::runbook::format::Entity;
use cutover::target::TableSpec;
use cutover::target::memory::MemoryTarget;

fn entities() -> indexmap::IndexMap<String, Entity> {
    toml::from_str(
        "[customers]\nsource = { file = 'c.csv' }\ncolumns = ['id', 'name']\nkey = 'id'\n\
         validate = [{ rule = 'unique', field = 'id' }]\n\
         target = { table = 'partner', key = 'ref' }\nmap = { ref = 'id', name = 'name' }\n\
         [invoices]\nsource = { file = 'i.csv' }\ncolumns = ['no', 'customer']\nkey = 'no'\n\
         validate = [{ rule = 'unique', field = 'no' },\n\
           { rule = 'reference', field = 'customer', entity = 'customers', message = 'unknown customer' }]\n\
         target = { table = 'move', key = 'name' }\nmap = { name = 'no', partner = 'customer' }\n",
    )
    .unwrap()
}

fn job(dir: &Path, name: &str, keys: KeyMemory, refs: HashMap<String, Arc<KeySet>>) -> EntityJob {
    let all = entities();
    let rules = Compiled::new(name, &all[name], &all).unwrap();
    EntityJob {
        phase: Phase::DryRun,
        table: TableSpec {
            table: all[name].target.table.clone(),
            key: all[name].target.key.clone(),
            columns: rules.target_columns.clone(),
        },
        rules: Arc::new(rules),
        file: dir.join(format!("{name}.csv")),
        reject_path: dir.join(format!("{name}.{}.rejects.csv", keys.budget)),
        batch_size: 100,
        batch_bytes: 4 << 20,
        retry: RetryPolicy::NONE,
        refs,
        keep_valid_keys: name == "customers",
        scope_refs: HashMap::new(),
        keep_scope_keys: false,
        keys,
        sum_fields: vec![],
        fingerprints: vec![],
        expected_rows: 0,
        resume: None,
        may_conflict: true,
        workers: 2,
        write_concurrency: 1,
    }
}

/// Customers (every 7th id twice, every 13th without a name, which the database refuses)
/// and invoices pointing at customers that exist, were refused, or never were.
fn write_extract(dir: &Path) {
    let mut c = String::from("id,name\n");
    for i in 0..3000u32 {
        let name = if i.is_multiple_of(13) { "" } else { "Acme" };
        c.push_str(&format!("C{i:06},{name}\n"));
        if i.is_multiple_of(7) {
            c.push_str(&format!("C{i:06},again\n"));
        }
    }
    std::fs::write(dir.join("customers.csv"), c).unwrap();
    let mut inv = String::from("no,customer\n");
    for i in 0..6000u32 {
        inv.push_str(&format!("INV{i:07},C{:06}\n", (i * 7) % 3500));
        if i.is_multiple_of(11) {
            inv.push_str(&format!("INV{i:07},C000001\n"));
        }
    }
    std::fs::write(dir.join("invoices.csv"), inv).unwrap();
}

async fn rehearse(dir: &Path, keys: KeyMemory) -> (EntityResult, EntityResult, String, String) {
    let target = MemoryTarget::new()
        .with_tables(&["partner", "move"])
        .not_null("partner", "name");
    let (progress, _) = tokio::sync::watch::channel(Vec::new());
    let c = run_entity(
        job(dir, "customers", keys.clone(), HashMap::new()),
        &target,
        &progress,
        &NoObserver,
    )
    .await
    .unwrap();
    let mut c = c;
    let valid = Arc::new(c.valid_keys.take().expect("customers' valid keys"));
    let refs = HashMap::from([("customers".to_string(), valid)]);
    let i = run_entity(
        job(dir, "invoices", keys.clone(), refs),
        &target,
        &progress,
        &NoObserver,
    )
    .await
    .unwrap();
    let read = |n: &str| {
        std::fs::read_to_string(dir.join(format!("{n}.{}.rejects.csv", keys.budget))).unwrap()
    };
    (c, i, read("customers"), read("invoices"))
}

#[tokio::test]
async fn keys_spilled_to_disk_give_the_verdicts_of_keys_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    write_extract(dir.path());
    let spill = tempfile::tempdir().unwrap();
    let (mc, mi, mcr, mir) = rehearse(dir.path(), KeyMemory::default()).await;
    let (sc, si, scr, sir) = rehearse(
        dir.path(),
        KeyMemory {
            budget: 512,
            dir: spill.path().to_path_buf(),
        },
    )
    .await;
    // 3000 customers, 429 repeated ids, 231 without a name refused by the database.
    assert_eq!(
        (mc.counts.valid, mc.counts.rejected, mc.counts.loaded),
        (2769, 660, 2769)
    );
    let counts = |r: &EntityResult| (r.counts.valid, r.counts.rejected, r.counts.loaded);
    assert_eq!(counts(&sc), counts(&mc));
    assert_eq!(counts(&si), counts(&mi));
    assert!(mi.counts.rejected > 1000, "{:?}", mi.counts);
    assert_eq!(scr, mcr, "the same customer rejects, reasons and lines");
    assert_eq!(sir, mir, "the same invoice rejects, reasons and lines");
    assert!(
        mir.contains("unknown customer 'C000091'"),
        "refused by the database"
    );
    assert!(
        mir.contains("unknown customer 'C003003'"),
        "never in the extract"
    );
    assert!(mir.contains("duplicate 'INV0000011'"), "{mir}");
    // Nothing is left in the spill folder: the runs were unnamed files.
    assert_eq!(std::fs::read_dir(spill.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn a_spill_that_cannot_be_written_stops_the_load() {
    let dir = tempfile::tempdir().unwrap();
    write_extract(dir.path());
    let target = MemoryTarget::new().with_tables(&["partner"]);
    let (progress, _) = tokio::sync::watch::channel(Vec::new());
    let keys = KeyMemory {
        budget: 0,
        dir: "/nonexistent/spill".into(),
    };
    let err = run_entity(
        job(dir.path(), "customers", keys, HashMap::new()),
        &target,
        &progress,
        &NoObserver,
    )
    .await
    .err()
    .expect("the load stops");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("keeping the keys of the unique and reference rules: spilling keys in /nonexistent/spill"),
        "{msg}"
    );
    assert_eq!(target.keys("partner").len(), 0, "no batch went out");
}
