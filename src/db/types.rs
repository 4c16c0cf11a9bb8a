//! How a cell of any column type becomes text. Server rows are read through the text
//! protocol (PostgreSQL simple query, MySQL `COM_QUERY`), so each value arrives as the
//! server itself renders it (`x::text`, `CAST(x AS CHAR)`), whatever its type: nothing is
//! decoded into a Rust type and printed again. The few exceptions, so that the text is
//! exact and the same on every server, are documented in the README ("How values read as
//! text"): binary strings as `\x` + lowercase hex, MySQL `BIT` as its unsigned integer,
//! PostgreSQL `bool` as `true`/`false`, MySQL `FLOAT` columns read as `DOUBLE`.

use anyhow::{Context, Result};
use sqlx::mysql::{MySql, MySqlRow};
use sqlx::postgres::{PgRow, PgValueFormat};
use sqlx::sqlite::SqliteRow;
use sqlx::{Column, Decode, Row, TypeInfo, ValueRef};

use super::{Db, Dialect};

/// Why a column of this type cannot be carried exactly as text, or `None` when it can.
/// `data_type` is information_schema's `data_type` (or MySQL's `column_type`), lowercase.
pub fn unsupported_reason(dialect: Dialect, data_type: &str) -> Option<&'static str> {
    let t = data_type.trim().to_ascii_lowercase();
    let base = t.split(['(', ' ']).next().unwrap_or("");
    match dialect {
        Dialect::MySql => match base {
            "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
            | "multipolygon" | "geometrycollection" | "geomcollection" => Some(
                "a spatial type: the server sends it in its internal binary form, not as text; \
                 cutover cannot carry it",
            ),
            _ => None,
        },
        // Every PostgreSQL type has a text output function that its input function reads
        // back exactly (arrays, ranges, enums, domains and composites included).
        Dialect::Postgres => None,
        Dialect::Sqlite => None,
    }
}

/// Why a backup could not restore a column of this type exactly, or `None`. MySQL
/// `FLOAT`: `mariadb-dump` writes it with 6 significant digits (16777215 as `16777200`),
/// so a rollback would not give production back as it was.
pub fn backup_inexact_reason(dialect: Dialect, data_type: &str) -> Option<&'static str> {
    let t = data_type.trim().to_ascii_lowercase();
    match dialect {
        Dialect::MySql if t.starts_with("float") => Some(
            "mariadb-dump writes FLOAT with 6 significant digits (16777215 as 16777200), so a \
             restore from the backup would not be exact; change the column to DOUBLE first",
        ),
        _ => None,
    }
}

/// Read errors name the column, its table when the server says, and its type.
fn where_is(col: &impl Column, type_name: &str) -> String {
    let table = match col.origin() {
        sqlx::ColumnOrigin::Table(t) => format!(" of table {}", t.table),
        _ => String::new(),
    };
    format!("column {}{table} ({type_name})", col.name())
}

/// `\x` + lowercase hex, PostgreSQL's `bytea` output.
pub fn hex_bytes(b: &[u8]) -> String {
    let mut s = String::with_capacity(2 + 2 * b.len());
    s.push_str("\\x");
    s.push_str(&hex::encode(b));
    s
}

/// One PostgreSQL cell from a simple-query (text format) row.
pub(crate) fn pg_cell(row: &PgRow, i: usize) -> Result<Option<String>> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(None);
    }
    let ty = raw.type_info().name().to_string();
    let col = &row.columns()[i];
    anyhow::ensure!(
        raw.format() == PgValueFormat::Text,
        "{} arrived in binary form",
        where_is(col, &ty)
    );
    let s = raw
        .as_str()
        .map_err(|e| anyhow::anyhow!("{}: {e}", where_is(col, &ty)))?;
    // The output function prints `t`/`f`; the cast to text (and `COPY … CSV` readers,
    // and cutover before) say `true`/`false`. Elements of a bool[] stay `t`/`f`, as
    // `ARRAY[true]::text` prints them.
    Ok(Some(match (ty.as_str(), s) {
        ("BOOL", "t") => "true".into(),
        ("BOOL", "f") => "false".into(),
        _ => s.to_string(),
    }))
}

/// One MySQL/MariaDB cell from a text-protocol row.
pub(crate) fn mysql_cell(row: &MySqlRow, i: usize) -> Result<Option<String>> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(None);
    }
    let ti = raw.type_info().into_owned();
    let col = &row.columns()[i];
    let bytes = <&[u8] as Decode<MySql>>::decode(raw)
        .map_err(|e| anyhow::anyhow!("{}: {e}", where_is(col, ti.name())))?;
    match ti.name() {
        // The text protocol sends a BIT(M) as its M bits, big-endian, in raw bytes.
        "BIT" => {
            anyhow::ensure!(
                bytes.len() <= 8,
                "{} holds {} bytes, more than a BIT(64)",
                where_is(col, "BIT"),
                bytes.len()
            );
            let n = bytes.iter().fold(0u64, |n, b| (n << 8) | u64::from(*b));
            return Ok(Some(n.to_string()));
        }
        "GEOMETRY" => anyhow::bail!(
            "{} cannot be read: {}",
            where_is(col, "GEOMETRY"),
            unsupported_reason(Dialect::MySql, "geometry").unwrap_or_default()
        ),
        _ => {}
    }
    // A string type with the `binary` character set (BINARY, VARBINARY, BLOB) is bytes;
    // any other collation is text the server transcoded to utf8mb4.
    let binary = <[u8] as sqlx::Type<MySql>>::compatible(&ti)
        && !<str as sqlx::Type<MySql>>::compatible(&ti);
    if binary {
        return Ok(Some(hex_bytes(bytes)));
    }
    let s = std::str::from_utf8(bytes)
        .with_context(|| format!("{} is not valid UTF-8", where_is(col, ti.name())))?;
    Ok(Some(s.to_string()))
}

/// One SQLite cell, by the value's own storage class (SQLite types values, not columns).
pub(crate) fn sqlite_cell(row: &SqliteRow, i: usize) -> Result<Option<String>> {
    let raw = row.try_get_raw(i)?;
    if raw.is_null() {
        return Ok(None);
    }
    let class = raw.type_info().name().to_string();
    let col = &row.columns()[i];
    let bad = |e: sqlx::Error| anyhow::anyhow!("{}: {e}", where_is(col, &class));
    Ok(Some(match class.as_str() {
        "INTEGER" => row.try_get_unchecked::<i64, _>(i).map_err(bad)?.to_string(),
        "REAL" => row.try_get_unchecked::<f64, _>(i).map_err(bad)?.to_string(),
        "BLOB" => hex_bytes(row.try_get_unchecked::<&[u8], _>(i).map_err(bad)?),
        _ => row.try_get_unchecked::<String, _>(i).map_err(bad)?,
    }))
}

impl Db {
    /// Each column of `table` with its type as information_schema gives it, lowercase
    /// (MySQL: `column_type`, e.g. `int(10) unsigned`; PostgreSQL: `format_type`, e.g.
    /// `numeric(65,30)`, `integer[]`, an enum's or a domain's own name; SQLite: the
    /// declared type).
    pub async fn column_types(&self, table: &str) -> Result<Vec<(String, String)>> {
        let lit = table.replace('\'', "''");
        let sql = match self {
            Db::Sqlite(_) => {
                format!("SELECT name, lower(type) FROM pragma_table_info('{lit}') ORDER BY cid")
            }
            Db::Postgres(_) => format!(
                "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                 WHERE attrelid = to_regclass(quote_ident(current_schema()) || '.' || quote_ident('{lit}')) \
                 AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
            ),
            Db::MySql(_) => format!(
                "SELECT CAST(column_name AS CHAR), LOWER(CAST(column_type AS CHAR)) FROM information_schema.columns \
                 WHERE table_schema = DATABASE() AND table_name = '{lit}' ORDER BY ordinal_position"
            ),
        };
        let mut out = Vec::new();
        self.for_each_row(&sql, |c| {
            out.push((
                c[0].clone().unwrap_or_default(),
                c[1].clone().unwrap_or_default(),
            ));
            Ok(())
        })
        .await?;
        anyhow::ensure!(!out.is_empty(), "table {table} not found");
        Ok(out)
    }

    /// The select list that reads `columns` of a table exactly. Only MySQL `FLOAT` needs
    /// help: the server prints it with 6 significant digits (16777215 as `16777200`), so
    /// it is read as `DOUBLE`, whose text is the shortest that reads back exactly.
    pub(crate) fn exact_select_list(
        &self,
        columns: &[String],
        types: &[(String, String)],
    ) -> String {
        columns
            .iter()
            .map(|c| {
                let quoted = self.q(c);
                let ty = types.iter().find(|(n, _)| n == c).map(|(_, t)| t.as_str());
                match (self.dialect(), ty) {
                    (Dialect::MySql, Some(t)) if t.starts_with("float") => {
                        format!("CAST({quoted} AS DOUBLE) AS {quoted}")
                    }
                    _ => quoted,
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spatial_types_are_named_unsupported_and_the_rest_is_not() {
        for t in ["geometry", "point", "multipolygon", "geometrycollection"] {
            assert!(unsupported_reason(Dialect::MySql, t).is_some(), "{t}");
        }
        for t in [
            "int(10) unsigned",
            "bigint unsigned",
            "datetime(6)",
            "time",
            "year",
            "bit(64)",
            "blob",
            "float",
            "json",
            "enum('a','b')",
        ] {
            assert_eq!(unsupported_reason(Dialect::MySql, t), None, "{t}");
        }
        for t in ["bytea", "money", "interval", "integer[]", "uuid", "jsonb"] {
            assert_eq!(unsupported_reason(Dialect::Postgres, t), None, "{t}");
        }
    }

    #[test]
    fn bytes_print_as_postgres_hex() {
        assert_eq!(hex_bytes(&[0x0a, 0x0b, 0xff]), "\\x0a0bff");
        assert_eq!(hex_bytes(&[]), "\\x");
    }
}
