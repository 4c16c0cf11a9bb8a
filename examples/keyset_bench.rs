//! What the key sets of the `unique` and `reference` rules cost, against a
//! `HashSet<String>`: N invoice-shaped keys inserted (each checked new), then N lookups,
//! half of them present. Prints the time and the set's memory.
//!
//! `cargo run --release --example keyset_bench -- [N] [BUDGET_MB]` (default 1000000, 32);
//! under `valgrind --tool=callgrind` for instruction counts.

use std::collections::HashSet;
use std::time::Instant;

use cutover::keyset::KeySet;

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(1_000_000, |a| a.parse().expect("N"));
    let mb: usize = args.next().map_or(32, |a| a.parse().expect("BUDGET_MB"));
    let which = args.next().unwrap_or_else(|| "both".into());
    let dir = tempfile::tempdir().expect("temp dir");
    // Shuffled-looking order, as a legacy table's rows often are.
    let key = |i: u32| format!("INV{:09}", i.wrapping_mul(2_654_435_761) % (n * 4));
    // Even: a key inserted; odd: one past every inserted key.
    let probe = |i: u32| {
        if i.is_multiple_of(2) {
            key(i)
        } else {
            format!("INV{:09}", n * 4 + i)
        }
    };

    if which != "hashset" {
        let t = Instant::now();
        let mut set = KeySet::new(mb << 20, dir.path());
        let mut new = 0;
        for i in 0..n {
            new += usize::from(set.insert(key(i)));
        }
        let ins = t.elapsed();
        set.seal();
        let t = Instant::now();
        let hits = (0..n).filter(|&i| set.contains(probe(i))).count();
        println!(
            "keyset  budget {mb} MiB: {n} inserts ({new} new) {:.2}s, {n} lookups ({hits} hits) {:.2}s, {} runs, {:.1} MiB in memory",
            ins.as_secs_f64(),
            t.elapsed().as_secs_f64(),
            set.runs(),
            set.memory_bytes() as f64 / (1 << 20) as f64
        );
    }
    if which != "keyset" {
        let t = Instant::now();
        let mut set: HashSet<String> = HashSet::new();
        let mut new = 0;
        for i in 0..n {
            new += usize::from(set.insert(key(i)));
        }
        let ins = t.elapsed();
        let t = Instant::now();
        let hits = (0..n).filter(|&i| set.contains(probe(i).as_str())).count();
        println!(
            "hashset: {n} inserts ({new} new) {:.2}s, {n} lookups ({hits} hits) {:.2}s",
            ins.as_secs_f64(),
            t.elapsed().as_secs_f64()
        );
    }
}
