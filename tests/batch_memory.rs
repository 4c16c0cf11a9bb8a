//! What an entity's load holds in memory is bounded by bytes, not only by rows: a file of
//! wide rows with a `batch_size` larger than the file is loaded in batches cut by
//! `batch_bytes`, and the process's peak RSS grows by a few of those batches, not by the
//! file. (Alone in its test binary: the peak is the whole process's.)

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use cutover::engine::pipeline::{EntityJob, NoObserver, run_entity};
use cutover::engine::retry::RetryPolicy;
use cutover::engine::rules::Compiled;
use cutover::journal::events::Phase;
use cutover::keyset::KeyMemory;
use cutover::runbook::format::Entity;
use cutover::target::TableSpec;
use cutover::target::memory::Discard;

/// A line of /proc/self/status, in kB.
fn status_kb(key: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("{key} in /proc/self/status"))
}

const ROWS: u64 = 40_000;
const WIDTH: usize = 4_000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wide_rows_are_loaded_in_batches_bounded_by_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("notes.csv");
    {
        // Written a line at a time: the file (160 MB) never is in this process's memory.
        let mut w = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
        writeln!(w, "id,note,amount").unwrap();
        let note = "n".repeat(WIDTH);
        for i in 0..ROWS {
            writeln!(w, "N{i:07},{note},{}.50", i % 1000).unwrap();
        }
    }
    let all: indexmap::IndexMap<String, Entity> = toml::from_str(
        "[notes]\nsource = { file = 'notes.csv' }\ncolumns = ['id', 'note', 'amount']\n\
         key = 'id'\nvalidate = [{ rule = 'unique', field = 'id' },\n\
           { rule = 'decimal', field = 'amount', scale = 2 }]\n\
         target = { table = 'note', key = 'ref' }\n\
         map = { ref = 'id', body = 'note', amount = 'amount' }\n",
    )
    .unwrap();
    let rules = Compiled::new("notes", &all["notes"], &all).unwrap();
    let batch_bytes = 1 << 20;
    let job = EntityJob {
        phase: Phase::DryRun,
        table: TableSpec {
            table: "note".into(),
            key: "ref".into(),
            columns: rules.target_columns.clone(),
        },
        rules: Arc::new(rules),
        file,
        reject_path: dir.path().join("notes.rejects.csv"),
        // More rows than the file: only the byte budget cuts batches.
        batch_size: 1_000_000,
        batch_bytes,
        retry: RetryPolicy::NONE,
        refs: HashMap::new(),
        keep_valid_keys: false,
        scope_refs: HashMap::new(),
        keep_scope_keys: false,
        keys: KeyMemory {
            budget: 1 << 20,
            dir: dir.path().to_path_buf(),
        },
        sum_fields: vec![],
        fingerprints: vec![],
        expected_rows: ROWS,
        resume: None,
        may_conflict: false,
        workers: 2,
        write_concurrency: 2,
    };
    // Keeps no row (the memory twin keeps them all, which would hide the engine's own
    // footprint).
    let sink = Discard::default();
    let (progress, _) = tokio::sync::watch::channel(Vec::new());
    let before = status_kb("VmRSS:");
    // Resets VmHWM to the current RSS (Linux 4.0+), so the peak is this load's.
    std::fs::write("/proc/self/clear_refs", "5").unwrap();
    let res = run_entity(job, &sink, &progress, &NoObserver)
        .await
        .unwrap();
    let peak = status_kb("VmHWM:");
    assert_eq!(res.counts.loaded, ROWS);
    assert_eq!(sink.rows.load(Ordering::Relaxed), ROWS);
    // A row holds its 4,000-byte note once: about 260 rows make 1 MiB.
    let largest = sink.largest_batch.load(Ordering::Relaxed);
    assert!(largest <= 300, "a batch of {largest} rows");
    // The file is 160 MB; four batches in flight, waiting or being filled (4 MiB) and
    // the chunks the workers hold (6 × 256 KiB of records, each read, cleansed and typed)
    // are about 10 MB. Without the byte budget one batch would hold the whole file.
    let grown_mb = peak.saturating_sub(before) / 1024;
    assert!(
        grown_mb < 40,
        "peak RSS grew by {grown_mb} MB loading 160 MB of rows"
    );
}
