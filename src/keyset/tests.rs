use std::collections::HashSet as StdSet;

use proptest::prelude::*;

use super::*;

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<u8>),
    Contains(Vec<u8>),
    Remove(Vec<u8>),
    Seal,
}

/// Short keys from a small alphabet, so operations often meet the same key again; some
/// long ones, so a block holds a single key now and then.
fn key() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        8 => proptest::collection::vec(prop_oneof![Just(b'a'), Just(b'b'), Just(b'c')], 0..7),
        1 => proptest::collection::vec(any::<u8>(), 0..9000),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        12 => key().prop_map(Op::Insert),
        8 => key().prop_map(Op::Contains),
        2 => key().prop_map(Op::Remove),
        1 => Just(Op::Seal),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Against std's HashSet, with budgets so small that nearly every insert spills and
    /// runs are merged again and again.
    #[test]
    fn answers_as_a_hash_set_does(ops in proptest::collection::vec(op(), 1..600), budget in 0usize..400) {
        let dir = tempfile::tempdir().unwrap();
        let mut set = KeySet::new(budget, dir.path());
        let mut model: StdSet<Vec<u8>> = StdSet::new();
        for op in ops {
            match op {
                Op::Insert(k) => prop_assert_eq!(set.insert(&k), model.insert(k)),
                Op::Contains(k) => prop_assert_eq!(set.contains(&k), model.contains(&k)),
                Op::Remove(k) => prop_assert_eq!(set.remove(&k), model.remove(&k)),
                Op::Seal => set.seal(),
            }
            prop_assert_eq!(set.len(), model.len() as u64);
        }
        for k in &model {
            prop_assert!(set.contains(k));
        }
        prop_assert!(set.failure().is_ok());
    }
}

#[test]
fn many_keys_spill_merge_and_stay_exact() {
    let dir = tempfile::tempdir().unwrap();
    // About 3,000 keys a run: 40 runs' worth, merged in fours.
    let mut set = KeySet::new(64 << 10, dir.path());
    let n = 120_000u32;
    for i in (0..n).rev() {
        assert!(set.insert(format!("INV{:08}", i * 2)));
    }
    assert!(set.runs() > 1 && set.runs() < 12, "{} runs", set.runs());
    assert!(!set.insert("INV00000010"));
    for i in 0..n * 2 {
        assert_eq!(
            set.contains(format!("INV{i:08}")),
            i.is_multiple_of(2),
            "{i}"
        );
    }
    set.seal();
    assert_eq!(set.runs(), 1);
    assert_eq!(set.len(), n as u64);
    assert!(set.contains("INV00000000") && !set.contains("INV00000001"));
    // Held in memory: a Bloom filter and a sparse index, a few bytes a key.
    assert!(
        set.memory_bytes() < n as usize * 3,
        "{}",
        set.memory_bytes()
    );
}

#[test]
fn a_removed_key_is_gone_and_may_come_back() {
    let dir = tempfile::tempdir().unwrap();
    let mut set = KeySet::new(0, dir.path());
    for k in ["a", "b", "c"] {
        set.insert(k);
    }
    assert!(set.remove("b") && !set.remove("b") && !set.remove("z"));
    assert!(!set.contains("b") && set.contains("a"));
    assert_eq!(set.len(), 2);
    assert!(set.insert("b") && set.contains("b"));
    assert_eq!(set.len(), 3);
}

/// Files in `dir` this process holds open (an unnamed temporary file shows as
/// `DIR/#123 (deleted)`).
fn open_files_in(dir: &Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|p| p.starts_with(dir))
        .count()
}

#[test]
fn spilled_runs_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let mut set = KeySet::new(4 << 10, dir.path());
    for i in 0..20_000 {
        set.insert(format!("C{i:07}"));
    }
    assert!(set.runs() > 0);
    assert!(
        open_files_in(dir.path()) > 0,
        "the runs are in the spill folder"
    );
    // Unnamed: nothing to see in the folder while the set lives, nor after.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    drop(set);
    assert_eq!(open_files_in(dir.path()), 0, "files closed, so freed");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_spill_that_cannot_be_written_keeps_the_keys_and_says_so() {
    let mut set = KeySet::new(0, Path::new("/nonexistent/spill"));
    for i in 0..100 {
        assert!(set.insert(format!("k{i}")));
    }
    assert!((0..100).all(|i| set.contains(format!("k{i}"))));
    let err = set.failure().unwrap_err();
    assert!(err.contains("spilling keys in /nonexistent/spill"), "{err}");
}

#[test]
fn the_in_memory_tier_stays_under_its_budget() {
    let dir = tempfile::tempdir().unwrap();
    let budget = 1 << 20;
    let mut set = KeySet::new(budget, dir.path());
    for i in 0..200_000 {
        set.insert(format!("C{i:07}"));
        assert!(set.memory.bytes() <= budget, "{i}: {}", set.memory.bytes());
    }
    assert!(set.runs() > 0);
}
