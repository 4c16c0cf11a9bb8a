//! The hot path allocates nothing per row: the reference runbook's invoices (scope, every
//! rule, the partner lookup, the unique key set) loaded at two sizes allocate about as
//! often at both, and a batch's `COPY` text is one buffer. Counted by a global allocator
//! that counts (alone in its test binary, one test at a time: the count is the whole
//! process's).

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cutover::demo::{GenOptions, write_csv_extracts};
use cutover::engine::pipeline::{EntityJob, EntityResult, NoObserver, run_entity};
use cutover::engine::retry::RetryPolicy;
use cutover::engine::rules::Compiled;
use cutover::journal::events::Phase;
use cutover::keyset::KeyMemory;
use cutover::runbook::format::Runbook;
use cutover::target::TableSpec;
use cutover::target::memory::Discard;
use cutover::values::SqlValue;
use rust_decimal::Decimal;

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One test counts at a time: the count is the whole process's.
static COUNTING: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn job(rb: &Runbook, entity: &str, dir: &Path, refs: cutover::engine::rules::Refs) -> EntityJob {
    let e = &rb.entities[entity];
    let rules = Compiled::new(entity, e, &rb.entities).unwrap();
    EntityJob {
        phase: Phase::DryRun,
        table: TableSpec {
            table: entity.into(),
            key: "name".into(),
            columns: rules.target_columns.clone(),
        },
        rules: Arc::new(rules),
        file: dir.join(format!("{entity}.csv")),
        reject_path: dir.join(format!("{entity}.rejects.csv")),
        batch_size: 5_000,
        batch_bytes: 2 << 20,
        retry: RetryPolicy::NONE,
        refs,
        keep_valid_keys: entity == "customers",
        scope_refs: HashMap::new(),
        keep_scope_keys: false,
        keys: KeyMemory {
            budget: 8 << 20,
            dir: dir.to_path_buf(),
        },
        sum_fields: vec![],
        fingerprints: vec![],
        expected_rows: 0,
        resume: None,
        may_conflict: false,
        workers: 2,
        write_concurrency: 2,
    }
}

/// Allocations while the invoices of an extract of `invoices` clean invoices load, and
/// the rows loaded.
async fn invoices_allocations(rb: &Runbook, invoices: usize) -> (u64, u64) {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenOptions {
        seed: 7,
        customers: 2_000,
        vehicles: 10,
        drivers: 10,
        invoices,
        dirty: false,
        dirty_pct: 0,
    };
    write_csv_extracts(dir.path(), &opts).unwrap();
    let (progress, _) = tokio::sync::watch::channel(Vec::new());
    let customers: EntityResult = run_entity(
        job(rb, "customers", dir.path(), HashMap::new()),
        &Discard::default(),
        &progress,
        &NoObserver,
    )
    .await
    .unwrap();
    let refs = HashMap::from([(
        "customers".to_string(),
        Arc::new(customers.valid_keys.expect("the customers' keys")),
    )]);
    let invoices = job(rb, "open_invoices", dir.path(), refs);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let res = run_entity(invoices, &Discard::default(), &progress, &NoObserver)
        .await
        .unwrap();
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(res.counts.rejected, 0, "a clean extract");
    (allocations, res.counts.loaded)
}

#[test]
fn loading_invoices_allocates_nothing_per_row() {
    let _alone = COUNTING.lock().unwrap_or_else(|p| p.into_inner());
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/tms-postgres.toml"),
    )
    .unwrap();
    let rb: Runbook = toml::from_str(&text).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (small, small_rows) = rt.block_on(invoices_allocations(&rb, 20_000));
    let (large, large_rows) = rt.block_on(invoices_allocations(&rb, 80_000));
    let per_row = (large as f64 - small as f64) / (large_rows - small_rows) as f64;
    eprintln!(
        "{small} allocations for {small_rows} rows, {large} for {large_rows}: {per_row:.2} per row"
    );
    // Before the row pool, 22 a row (each field and each value a string of its own); a
    // buffer that stopped being reused shows here as one or more a row.
    assert!(per_row < 0.5, "{per_row:.2} allocations per row");
}

/// Allocations while a batch of `n` rows (every kind of value) is encoded for `COPY`.
fn copy_text_allocations(n: usize) -> u64 {
    use chrono::NaiveDate;
    let date = NaiveDate::from_ymd_opt(2026, 11, 30).unwrap();
    let rows: Vec<Vec<SqlValue>> = (0..n)
        .map(|i| {
            vec![
                SqlValue::Text(format!("INV-{i:07}")),
                SqlValue::Int(i as i64),
                SqlValue::Dec(Decimal::new(123_456 + i as i64, 2)),
                SqlValue::Date(date),
                SqlValue::DateTime(
                    date.and_hms_micro_opt(12, 0, 1, i as u32 % 1_000_000)
                        .unwrap(),
                ),
                SqlValue::Lookup {
                    table: "res_partner".into(),
                    key: "ref".into(),
                    id: "id".into(),
                    value: format!("C{i}"),
                },
                SqlValue::Null,
            ]
        })
        .collect();
    let refs: Vec<&[SqlValue]> = rows.iter().map(Vec::as_slice).collect();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let text = cutover::target::sql::postgres::copy_text(&refs);
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(text.iter().filter(|&&b| b == b'\n').count(), n);
    allocations
}

#[test]
fn encoding_a_batch_for_copy_allocates_nothing_per_row() {
    let _alone = COUNTING.lock().unwrap_or_else(|p| p.into_inner());
    let (small, large) = (copy_text_allocations(1_000), copy_text_allocations(8_000));
    eprintln!("COPY text: {small} allocations for 1,000 rows, {large} for 8,000");
    // The buffer, grown a few times: not a string per value.
    assert!(large < 20, "{large} allocations for 8,000 rows");
}
