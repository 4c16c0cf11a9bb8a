//! Entities without dependencies between them load at the same time
//! (`settings.entity_concurrency`); a dependent starts only once what it references is
//! loaded, and a failure in one entity stops the others and names the one that failed.

mod common;
use common::*;

use std::process::{Command, Output};

use cutover::journal::Journal;
use cutover::journal::events::{Event, Record};

fn rehearse(dir: &std::path::Path, fault: Option<&str>) -> Output {
    let url = |f: &str| format!("sqlite://{}", dir.join(f).display());
    let mut cmd = Command::new(BIN);
    cmd.arg("rehearse")
        .arg(dir.join("tms.toml"))
        .arg("--headless")
        .args(["--var", &format!("legacy_url={}", url("legacy.db"))])
        .args(["--var", &format!("staging_url={}", url("staging.db"))])
        .env_remove("CUTOVER_JOURNAL")
        .env_remove("CUTOVER_FAULT");
    if let Some(f) = fault {
        cmd.env("CUTOVER_FAULT", f);
    }
    cmd.output().unwrap()
}

fn records(dir: &std::path::Path) -> Vec<Record> {
    block_on(async {
        let j = Journal::open_path(&dir.join(".cutover/tms/journal.db"))
            .await
            .unwrap();
        let id = j.last_run_id().await.unwrap().unwrap();
        j.run_records(&id).await.unwrap()
    })
}

/// Sequence number of the entity's `entity_started` / `entity_finished` record.
fn at(recs: &[Record], entity: &str, started: bool) -> Option<usize> {
    recs.iter().position(|r| match &r.event {
        Event::EntityStarted { entity: e, .. } => started && e == entity,
        Event::EntityFinished { entity: e, .. } => !started && e == entity,
        _ => false,
    })
}

/// Batches of one entity journaled between two others' records.
fn interleaved(recs: &[Record]) -> bool {
    let mut last: Option<&str> = None;
    let mut switches = 0;
    for r in recs {
        if let Event::BatchCommitted { entity, .. } = &r.event {
            if last.is_some_and(|l| l != entity) {
                switches += 1;
            }
            last = Some(entity);
        }
    }
    // In order, customers → vehicles → drivers → invoices switch three times.
    switches > 3
}

#[test]
fn independent_entities_load_together_and_a_dependent_waits_for_its_reference() {
    let site = small_reference_site(20, 400, 300, 200, 400);
    let out = rehearse(site.path(), None);
    assert!(matches!(code(&out), 0 | 3), "{}", stderr(&out));
    let recs = records(site.path());
    // customers, vehicles and drivers depend on nothing: vehicles starts before customers
    // has finished.
    let vehicles_start = at(&recs, "vehicles", true).unwrap();
    assert!(
        vehicles_start < at(&recs, "customers", false).unwrap(),
        "vehicles waited for customers"
    );
    assert!(interleaved(&recs), "batches of two entities interleave");
    // open_invoices references customers: it starts after customers has finished.
    assert!(at(&recs, "open_invoices", true).unwrap() > at(&recs, "customers", false).unwrap());

    // entity_concurrency = 1: one after another, in load order.
    let site = small_reference_site(20, 400, 300, 200, 400);
    let rb = std::fs::read_to_string(site.path().join("tms.toml"))
        .unwrap()
        .replace("batch_size = 20", "batch_size = 20\nentity_concurrency = 1");
    std::fs::write(site.path().join("tms.toml"), rb).unwrap();
    let out = rehearse(site.path(), None);
    assert!(matches!(code(&out), 0 | 3), "{}", stderr(&out));
    let recs = records(site.path());
    assert!(at(&recs, "vehicles", true).unwrap() > at(&recs, "customers", false).unwrap());
    assert!(!interleaved(&recs));
}

#[test]
fn a_failing_entity_stops_the_others_and_is_named() {
    let site = small_reference_site(20, 400, 300, 200, 400);
    let out = rehearse(site.path(), Some("before:batch_write.vehicles#3:fail"));
    let err = stderr(&out);
    assert_ne!(code(&out), 0, "{err}");
    assert!(err.contains("loading vehicles into fleet_vehicle"), "{err}");
    assert!(
        !err.contains("another entity failed"),
        "the cause is reported: {err}"
    );
    let recs = records(site.path());
    // Nothing after the failure started, and vehicles never finished.
    assert!(at(&recs, "vehicles", false).is_none());
    assert!(
        at(&recs, "open_invoices", true).is_none(),
        "a dependent started after a failure"
    );
    // Every batch journaled is in staging: the checkpoints stay exact.
    let journaled: u64 = recs
        .iter()
        .map(|r| match &r.event {
            Event::BatchCommitted { entity, rows, .. } if entity == "customers" => *rows,
            _ => 0,
        })
        .sum();
    let staged: u64 = sqlite(
        &site.path().join("staging.db"),
        "SELECT COUNT(*) FROM res_partner",
    )
    .trim()
    .parse()
    .unwrap();
    assert_eq!(staged, journaled, "customers in staging vs journaled");
}
