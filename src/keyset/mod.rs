//! An exact set of keys (byte strings) in bounded memory, for the `unique` and `reference`
//! rules and the keys entities scope by. Depends on nothing of the engine.
//!
//! Keys live in a compact in-memory tier ([`memory`]) up to a budget; past it, that tier is
//! sorted and written as a run to an unnamed temporary file ([`run`]) that keeps only a
//! Bloom filter (10 bits a key) and one key per 1 KiB block in memory. Runs of one level
//! are merged in fours, so a lookup consults few; a miss is mostly answered by the Bloom
//! filters without reading the disk. Exact: a Bloom hit is checked against the run itself.
//!
//! I/O errors (a full disk while spilling, a failed read) do not change an answer's type:
//! the set records the first one, keeps what it holds in memory, and [`KeySet::failure`]
//! reports it; callers check it before acting on answers (the pipeline, before each batch).

mod bloom;
mod memory;
mod run;

use std::hash::BuildHasher;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use hashbrown::HashSet;

use memory::Memory;
use run::Run;

/// Runs of one level merged together once there are this many.
const FAN_IN: usize = 4;

/// The default memory budget of one set's in-memory tier.
pub const DEFAULT_BUDGET: usize = 16 << 20;

fn hasher() -> foldhash::quality::FixedState {
    foldhash::quality::FixedState::with_seed(0x6b65_7973_6574)
}

fn hash(key: &[u8]) -> u64 {
    hasher().hash_one(key)
}

/// How much memory a set's in-memory tier may take, and where its runs are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyMemory {
    pub budget: usize,
    pub dir: PathBuf,
}

impl Default for KeyMemory {
    fn default() -> Self {
        KeyMemory {
            budget: DEFAULT_BUDGET,
            dir: std::env::temp_dir(),
        }
    }
}

impl KeyMemory {
    /// The same place with `1/n` of the budget each, for `n` sets that grow together.
    pub fn share(&self, n: usize) -> KeyMemory {
        KeyMemory {
            budget: self.budget / n.max(1),
            dir: self.dir.clone(),
        }
    }

    pub fn set(&self) -> KeySet {
        KeySet::new(self.budget, &self.dir)
    }
}

pub struct KeySet {
    memory: Memory,
    runs: Vec<Run>,
    /// Keys taken out again after they were added (rows the database refused): few.
    removed: HashSet<Box<[u8]>>,
    budget: usize,
    dir: PathBuf,
    /// Keys added and not removed.
    len: u64,
    failed: OnceLock<String>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("len", &self.len)
            .field("runs", &self.runs.len())
            .field("memory_bytes", &self.memory_bytes())
            .finish()
    }
}

impl Default for KeySet {
    fn default() -> Self {
        KeyMemory::default().set()
    }
}

impl<K: AsRef<[u8]>> FromIterator<K> for KeySet {
    fn from_iter<I: IntoIterator<Item = K>>(iter: I) -> Self {
        let mut s = KeySet::default();
        for k in iter {
            s.insert(k);
        }
        s
    }
}

impl KeySet {
    /// A set whose in-memory tier stays under about `budget` bytes, spilling to `dir`.
    pub fn new(budget: usize, dir: &Path) -> KeySet {
        KeySet {
            memory: Memory::new(),
            runs: Vec::new(),
            removed: HashSet::new(),
            budget,
            dir: dir.to_path_buf(),
            len: 0,
            failed: OnceLock::new(),
        }
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many runs are on disk.
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// Bytes held in memory: the in-memory tier, and the Bloom filters and sparse indexes
    /// of the runs.
    pub fn memory_bytes(&self) -> usize {
        self.memory.bytes() + self.runs.iter().map(Run::bytes).sum::<usize>()
    }

    /// The first I/O error met, if any: answers given since may be wrong.
    pub fn failure(&self) -> Result<(), String> {
        match self.failed.get() {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    fn fail(&self, what: &str, e: std::io::Error) {
        let _ = self
            .failed
            .set(format!("{what} in {}: {e}", self.dir.display()));
    }

    fn held(&self, key: &[u8], h: u64) -> bool {
        if self.memory.contains(key, h) {
            return true;
        }
        // Newest first: recent keys are the likeliest to be asked for again.
        for r in self.runs.iter().rev() {
            match r.contains(key, h) {
                Ok(true) => return true,
                Ok(false) => {}
                Err(e) => {
                    self.fail("reading spilled keys", e);
                    return false;
                }
            }
        }
        false
    }

    pub fn contains(&self, key: impl AsRef<[u8]>) -> bool {
        let key = key.as_ref();
        if !self.removed.is_empty() && self.removed.contains(key) {
            return false;
        }
        self.held(key, hash(key))
    }

    /// Add `key`; `true` when it was not in the set.
    pub fn insert(&mut self, key: impl AsRef<[u8]>) -> bool {
        let key = key.as_ref();
        let h = hash(key);
        if self.held(key, h) {
            if !self.removed.is_empty() && self.removed.remove(key) {
                self.len += 1;
                return true;
            }
            return false;
        }
        if self.memory.len() > 0 && self.memory.bytes_after_insert(key) > self.budget {
            self.spill();
        }
        if !self.memory.insert(key, h) {
            // Past 4 GiB in one tier (a budget that large): spill and start again.
            self.spill();
            self.memory.insert(key, h);
        }
        self.len += 1;
        true
    }

    /// Take `key` out; `true` when it was in the set. Meant for a few keys (rows the
    /// database refused): each is remembered in memory.
    pub fn remove(&mut self, key: impl AsRef<[u8]>) -> bool {
        let key = key.as_ref();
        if self.removed.contains(key) || !self.held(key, hash(key)) {
            return false;
        }
        self.removed.insert(key.into());
        self.len -= 1;
        true
    }

    /// Write the in-memory tier as a run and merge runs of one level in fours. On an error
    /// the keys stay in memory (past the budget, but exact).
    fn spill(&mut self) {
        if self.memory.len() == 0 {
            return;
        }
        let count = self.memory.len() as u64;
        match Run::write(&self.dir, count, self.memory.sorted(), 0) {
            Ok(r) => self.runs.push(r),
            Err(e) => return self.fail("spilling keys", e),
        }
        self.memory.clear(true);
        while self.runs.len() >= FAN_IN {
            let tail = &self.runs[self.runs.len() - FAN_IN..];
            let level = tail[0].level;
            if tail.iter().any(|r| r.level != level) {
                break;
            }
            let at = self.runs.len() - FAN_IN;
            match run::merge(&self.dir, &self.runs[at..], level + 1) {
                Ok(m) => {
                    self.runs.truncate(at);
                    self.runs.push(m);
                }
                Err(e) => return self.fail("merging spilled keys", e),
            }
        }
    }

    /// No more keys will be added: a set that has spilled writes the rest of its keys
    /// out and merges its runs into one (each lookup then reads at most one block) and
    /// frees its in-memory tier; a set that never spilled stays in memory.
    pub fn seal(&mut self) {
        if self.runs.is_empty() {
            return;
        }
        self.spill();
        if self.runs.len() > 1 {
            let level = self.runs.iter().map(|r| r.level).max().unwrap_or(0) + 1;
            match run::merge(&self.dir, &self.runs, level) {
                Ok(m) => self.runs = vec![m],
                Err(e) => self.fail("merging spilled keys", e),
            }
        }
        if self.memory.len() == 0 {
            self.memory.clear(false);
        }
    }
}

#[cfg(test)]
mod tests;
