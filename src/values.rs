//! Plain values shared by every layer (the engine computes them, the database layer reads
//! them back, the checks compare them, targets take them): no I/O.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};

/// The currency key of a row whose currency field is blank (or a NULL target currency).
pub const NO_CURRENCY: &str = "(none)";

/// Order-independent set digest: count plus wrapping sum of 128-bit row hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Fingerprint {
    pub rows: u64,
    pub sum: u128,
}

impl Fingerprint {
    pub fn add(&mut self, parts: &[&str]) {
        self.add_digest(Self::digest(parts.iter().copied()));
    }

    /// One row's share of a fingerprint: computed anywhere, added in any order.
    pub fn digest<'a>(parts: impl IntoIterator<Item = &'a str>) -> u128 {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p.as_bytes());
            h.update([0x1f]);
        }
        let d = h.finalize();
        let mut b = [0u8; 16];
        b.copy_from_slice(&d[..16]);
        u128::from_be_bytes(b)
    }

    pub fn add_digest(&mut self, d: u128) {
        self.sum = self.sum.wrapping_add(d);
        self.rows += 1;
    }

    /// Undo an [`add`](Self::add) of the same parts.
    pub fn remove(&mut self, parts: &[&str]) {
        let mut other = Fingerprint::default();
        other.add(parts);
        self.rows -= 1;
        self.sum = self.sum.wrapping_sub(other.sum);
    }
    pub fn render(&self) -> String {
        format!("{} rows, fingerprint {:032x}", self.rows, self.sum)
    }
}

/// A value as quoted in a message: long ones are cut, so that a 10 MB field makes a short
/// message (the reject file keeps the whole value).
pub fn shown(v: &str) -> String {
    const MAX: usize = 60;
    if v.chars().count() <= MAX {
        return v.to_string();
    }
    let head: String = v.chars().take(40).collect();
    format!("{head}…[{} bytes]", v.len())
}

/// A value on its way to the target, typed by the rule that validated it.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Text(String),
    Int(i64),
    Dec(Decimal),
    Date(NaiveDate),
    /// A UTC timestamp (its text form: `datetime::canonical`).
    DateTime(NaiveDateTime),
    /// Resolved in the database: column `id` of the row of `table` whose `key` column
    /// equals the value.
    Lookup {
        table: String,
        key: String,
        id: String,
        value: String,
    },
}

impl SqlValue {
    /// Bytes the value holds outside itself (its strings), for the memory a batch holds.
    pub fn heap_bytes(&self) -> usize {
        match self {
            SqlValue::Text(t) => t.capacity(),
            SqlValue::Lookup {
                table,
                key,
                id,
                value,
            } => table.capacity() + key.capacity() + id.capacity() + value.capacity(),
            _ => 0,
        }
    }

    /// Make this value the text `s`, in the string it already holds when it is text (a
    /// row buffer reused for the next row: no allocation once its strings are long enough).
    pub fn set_text(&mut self, s: &str) {
        match self {
            SqlValue::Text(t) => {
                t.clear();
                t.push_str(s);
            }
            _ => *self = SqlValue::Text(s.to_owned()),
        }
    }

    /// Make this value a lookup of `value`, reusing its strings as [`set_text`](Self::set_text) does.
    pub fn set_lookup(&mut self, table: &str, key: &str, id: &str, value: &str) {
        match self {
            SqlValue::Lookup {
                table: t,
                key: k,
                id: i,
                value: v,
            } if t == table && k == key && i == id => {
                v.clear();
                v.push_str(value);
            }
            _ => {
                *self = SqlValue::Lookup {
                    table: table.to_owned(),
                    key: key.to_owned(),
                    id: id.to_owned(),
                    value: value.to_owned(),
                }
            }
        }
    }
}
