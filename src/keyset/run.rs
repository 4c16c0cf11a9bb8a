//! A sorted run of keys in an unnamed temporary file (the system removes it when it is
//! closed, even after a crash). The file is a sequence of blocks of about 1 KiB; each
//! entry is (bytes shared with the previous key, suffix length, suffix), the first of a
//! block sharing nothing. In memory stay only a Bloom filter and each block's first key.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use super::bloom::Bloom;
use super::memory::{read_varint, write_varint};

/// A lookup that passes the Bloom filter reads and scans one block: 1 KiB took a spilled
/// set's lookups 15% less time than 4 KiB (`examples/keyset_bench 1000000 4`), for an
/// index of one key per KiB of run (about 3 MB at 10M invoice keys).
const BLOCK: usize = 1024;
/// Bloom filter bits per key: about 1% false positives.
const BLOOM_BITS: u64 = 10;

pub struct Run {
    file: File,
    bloom: Bloom,
    /// First key of each block.
    first: Vec<Box<[u8]>>,
    /// Where each block starts, then the file's length.
    offsets: Vec<u64>,
    keys: u64,
    /// How many merges made it: runs of one level are merged together.
    pub level: u32,
}

impl Run {
    /// Write `keys` (sorted, distinct; `count` of them) to a new file in `dir`.
    pub fn write<'a>(
        dir: &Path,
        count: u64,
        keys: impl Iterator<Item = &'a [u8]>,
        level: u32,
    ) -> io::Result<Run> {
        let mut w = Writer::new(dir, count, level)?;
        for k in keys {
            w.push(k)?;
        }
        w.finish()
    }

    pub fn keys(&self) -> u64 {
        self.keys
    }

    /// Bytes held in memory: the Bloom filter and the sparse index.
    pub fn bytes(&self) -> usize {
        self.bloom.bytes()
            + self.offsets.len() * 8
            + self.first.iter().map(|k| k.len() + 16).sum::<usize>()
    }

    pub fn contains(&self, key: &[u8], hash: u64) -> io::Result<bool> {
        if !self.bloom.may_contain(hash) {
            return Ok(false);
        }
        let b = match self.first.binary_search_by(|f| f.as_ref().cmp(key)) {
            Ok(_) => return Ok(true),
            Err(0) => return Ok(false),
            Err(i) => i - 1,
        };
        let (start, end) = (self.offsets[b], self.offsets[b + 1]);
        let len = (end - start) as usize;
        // A block is read into the stack unless one long key made it bigger.
        let mut stack = [0u8; 2 * BLOCK];
        let mut heap = Vec::new();
        let buf = if len <= stack.len() {
            &mut stack[..len]
        } else {
            heap.resize(len, 0);
            &mut heap[..]
        };
        self.file.read_exact_at(buf, start)?;
        // Keys ascend. `m`: how many leading bytes the previous key shares with `key`
        // (the previous key is smaller); an entry sharing more than `m` with it is smaller
        // too, so only the suffixes are compared and no key is rebuilt.
        let mut m = 0usize;
        let mut i = 0;
        while i < buf.len() {
            let (shared, n) = read_varint(&buf[i..]);
            i += n;
            let (len, n) = read_varint(&buf[i..]);
            i += n;
            let (shared, len) = (shared as usize, len as usize);
            let suffix = &buf[i..i + len];
            i += len;
            if shared > m {
                continue;
            }
            let rest = &key[shared..];
            let c = suffix.iter().zip(rest).take_while(|(a, b)| a == b).count();
            m = shared + c;
            match (c == suffix.len(), c == rest.len()) {
                (true, true) => return Ok(true),
                (true, false) => {}
                (false, true) => return Ok(false),
                (false, false) if suffix[c] > rest[c] => return Ok(false),
                (false, false) => {}
            }
        }
        Ok(false)
    }

    /// Every key in order, read through a buffer.
    pub fn cursor(&self) -> io::Result<Cursor> {
        let mut f = self.file.try_clone()?;
        std::io::Seek::rewind(&mut f)?;
        Ok(Cursor {
            r: BufReader::with_capacity(64 * 1024, f),
            key: Vec::new(),
            left: self.keys,
        })
    }
}

/// Reads a run's keys in order.
pub struct Cursor {
    r: BufReader<File>,
    key: Vec<u8>,
    left: u64,
}

impl Cursor {
    /// The next key, or `None` at the end.
    pub fn next_key(&mut self) -> io::Result<Option<&[u8]>> {
        if self.left == 0 {
            return Ok(None);
        }
        self.left -= 1;
        let shared = read_varint_from(&mut self.r)? as usize;
        let len = read_varint_from(&mut self.r)? as usize;
        self.key.truncate(shared);
        let at = self.key.len();
        self.key.resize(at + len, 0);
        self.r.read_exact(&mut self.key[at..])?;
        Ok(Some(&self.key))
    }
}

fn read_varint_from(r: &mut impl Read) -> io::Result<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let mut b = [0u8];
        r.read_exact(&mut b)?;
        v |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "bad length in a key run",
    ))
}

/// Builds a run from keys given in order.
pub struct Writer {
    w: BufWriter<File>,
    bloom: Bloom,
    first: Vec<Box<[u8]>>,
    offsets: Vec<u64>,
    prev: Vec<u8>,
    at: u64,
    block_start: u64,
    entry: Vec<u8>,
    keys: u64,
    level: u32,
}

impl Writer {
    /// `count`: how many keys will come (sizes the Bloom filter).
    pub fn new(dir: &Path, count: u64, level: u32) -> io::Result<Writer> {
        let file = tempfile::tempfile_in(dir)?;
        Ok(Writer {
            w: BufWriter::with_capacity(64 * 1024, file),
            bloom: Bloom::new(count, BLOOM_BITS),
            first: Vec::new(),
            offsets: Vec::new(),
            prev: Vec::new(),
            at: 0,
            block_start: 0,
            entry: Vec::new(),
            keys: 0,
            level,
        })
    }

    pub fn push(&mut self, key: &[u8]) -> io::Result<()> {
        let new_block = self.keys == 0 || self.at - self.block_start >= BLOCK as u64;
        let shared = if new_block {
            self.block_start = self.at;
            self.offsets.push(self.at);
            self.first.push(key.into());
            0
        } else {
            self.prev
                .iter()
                .zip(key)
                .take_while(|(a, b)| a == b)
                .count()
        };
        self.entry.clear();
        write_varint(&mut self.entry, shared as u64);
        write_varint(&mut self.entry, (key.len() - shared) as u64);
        self.entry.extend_from_slice(&key[shared..]);
        self.w.write_all(&self.entry)?;
        self.at += self.entry.len() as u64;
        self.bloom
            .insert(std::hash::BuildHasher::hash_one(&super::hasher(), key));
        self.prev.clear();
        self.prev.extend_from_slice(key);
        self.keys += 1;
        Ok(())
    }

    pub fn finish(mut self) -> io::Result<Run> {
        self.w.flush()?;
        self.offsets.push(self.at);
        let file = self.w.into_inner().map_err(|e| e.into_error())?;
        Ok(Run {
            file,
            bloom: self.bloom,
            first: self.first,
            offsets: self.offsets,
            keys: self.keys,
            level: self.level,
        })
    }
}

/// Merge runs (disjoint or not) into one run at `level`, in `dir`.
pub fn merge(dir: &Path, runs: &[Run], level: u32) -> io::Result<Run> {
    let count = runs.iter().map(|r| r.keys()).sum();
    let mut w = Writer::new(dir, count, level)?;
    let mut cursors = runs
        .iter()
        .map(|r| r.cursor())
        .collect::<io::Result<Vec<_>>>()?;
    // The head of each cursor, refilled as it is taken; a handful of runs: a linear scan.
    let mut heads: Vec<Option<Vec<u8>>> = Vec::with_capacity(cursors.len());
    for c in &mut cursors {
        heads.push(c.next_key()?.map(<[u8]>::to_vec));
    }
    while let Some(min) = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|h| (i, h)))
        .min_by(|a, b| a.1.cmp(b.1))
        .map(|(i, _)| i)
    {
        let key = heads[min].take().unwrap_or_default();
        if w.keys == 0 || w.prev != key {
            w.push(&key)?;
        }
        let mut buf = key;
        heads[min] = match cursors[min].next_key()? {
            Some(k) => {
                buf.clear();
                buf.extend_from_slice(k);
                Some(buf)
            }
            None => None,
        };
    }
    w.finish()
}
