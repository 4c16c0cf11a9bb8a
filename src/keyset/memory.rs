//! The in-memory tier: every key's bytes in one arena (a length, then the bytes) and a
//! hash table of u32 offsets into it: about 6–12 bytes plus the key per key, where a
//! `HashSet<String>` spends about 100.

use hashbrown::HashTable;

pub struct Memory {
    arena: Vec<u8>,
    table: HashTable<u32>,
}

/// Bytes the table takes per slot of capacity: a u32 and a control byte, at a load of 7/8.
const SLOT_BYTES: usize = 6;

fn key_at(arena: &[u8], at: u32) -> &[u8] {
    let mut i = at as usize;
    let (len, n) = read_varint(&arena[i..]);
    i += n;
    &arena[i..i + len as usize]
}

/// A LEB128 unsigned integer: its value and its length in bytes.
pub fn read_varint(b: &[u8]) -> (u64, usize) {
    let mut v = 0u64;
    for (i, byte) in b.iter().enumerate().take(10) {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return (v, i + 1);
        }
    }
    (v, b.len().min(10))
}

pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

impl Memory {
    pub fn new() -> Memory {
        Memory {
            arena: Vec::new(),
            table: HashTable::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn contains(&self, key: &[u8], hash: u64) -> bool {
        self.table
            .find(hash, |&at| key_at(&self.arena, at) == key)
            .is_some()
    }

    /// Bytes held once `key` is added (the arena and the table each double when full), so
    /// the caller can spill first instead of growing past its budget.
    pub fn bytes_after_insert(&self, key: &[u8]) -> usize {
        let need = self.arena.len() + key.len() + 10;
        let arena = if need <= self.arena.capacity() {
            self.arena.capacity()
        } else {
            need.max(self.arena.capacity() * 2)
        };
        let slots = if self.table.len() < self.table.capacity() {
            self.table.capacity()
        } else {
            (self.table.capacity() * 2).max(4)
        };
        arena + slots * SLOT_BYTES
    }

    pub fn bytes(&self) -> usize {
        self.arena.capacity() + self.table.capacity() * SLOT_BYTES
    }

    /// Add a key known to be absent. Fails when the arena would pass 4 GiB.
    pub fn insert(&mut self, key: &[u8], hash: u64) -> bool {
        let Ok(at) = u32::try_from(self.arena.len()) else {
            return false;
        };
        if self.arena.len() + key.len() + 10 > u32::MAX as usize {
            return false;
        }
        write_varint(&mut self.arena, key.len() as u64);
        self.arena.extend_from_slice(key);
        let arena = &self.arena;
        let hasher = crate::keyset::hasher();
        self.table.insert_unique(hash, at, |&at| {
            std::hash::BuildHasher::hash_one(&hasher, key_at(arena, at))
        });
        true
    }

    /// The keys in byte order (for a spill): offsets are sorted, 4 bytes a key, not slices.
    pub fn sorted(&self) -> impl Iterator<Item = &[u8]> {
        let mut at: Vec<u32> = self.table.iter().copied().collect();
        at.sort_unstable_by(|&a, &b| key_at(&self.arena, a).cmp(key_at(&self.arena, b)));
        at.into_iter().map(|a| key_at(&self.arena, a))
    }

    /// Empty, keeping the allocation when `keep` (the next keys will need it again).
    pub fn clear(&mut self, keep: bool) {
        if keep {
            self.arena.clear();
            self.table.clear();
        } else {
            *self = Memory::new();
        }
    }
}
