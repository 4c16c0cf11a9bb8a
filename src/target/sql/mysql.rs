//! MariaDB/MySQL writes: multi-row `INSERT … VALUES … ON DUPLICATE KEY UPDATE` (a plain
//! INSERT when no conflict is possible), one transaction per batch. The pool runs in strict mode (see [`crate::db::mysql_pool`]),
//! so a bad value is an error instead of a warning and a silently mangled row.
//!
//! `ON DUPLICATE KEY UPDATE` fires on a clash with *any* unique index of the target, not
//! only `spec.key` (MySQL has no conflict target); the target's other unique keys should
//! agree with it. An update that sets every column to its current value changes nothing:
//! InnoDB skips the write, so a replay of unchanged rows leaves them untouched.

use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::{TableSpec, TargetError, fault};
use crate::values::SqlValue;

pub struct MySqlWriter {
    pub pool: MySqlPool,
}

/// The protocol's limit on placeholders per prepared statement is 65,535.
const MAX_PARAMS: usize = 65_535;

/// Quote an identifier for MySQL/MariaDB SQL text. (`db::ident` double-quotes, which
/// MySQL reads as a string literal unless ANSI_QUOTES is set.)
pub fn ident_mysql(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl MySqlWriter {
    pub async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        may_conflict: bool,
    ) -> Result<u64, TargetError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let per_stmt = (MAX_PARAMS / spec.columns.len().max(1)).max(1);
        let cols: Vec<String> = spec.columns.iter().map(|c| ident_mysql(c)).collect();
        let updates: Vec<String> = spec
            .columns
            .iter()
            .filter(|c| **c != spec.key)
            .map(|c| format!("{0} = VALUES({0})", ident_mysql(c)))
            .collect();
        // With nothing but the key to update, a no-op assignment still keeps the statement
        // an upsert (INSERT IGNORE would also swallow real errors as warnings).
        let on_dup = if updates.is_empty() {
            format!("{0} = {0}", ident_mysql(&spec.key))
        } else {
            updates.join(", ")
        };
        let kinds = self.column_kinds(spec).await?;
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                return Err(fault(crate::db::acquire_error(&self.pool, e).await));
            }
        };
        for chunk in rows.chunks(per_stmt) {
            let mut qb: QueryBuilder<MySql> = QueryBuilder::new(format!(
                "INSERT INTO {} ({}) ",
                ident_mysql(&spec.table),
                cols.join(", ")
            ));
            qb.push_values(chunk.iter(), |mut b, row| {
                for (v, kind) in row.iter().zip(&kinds) {
                    match v {
                        SqlValue::Null => b.push_bind(None::<String>),
                        SqlValue::Text(s) => match kind.written(s) {
                            Written::Bytes(b2) => b.push_bind(b2),
                            Written::Unsigned(n) => b.push_bind(n),
                            Written::Text => b.push_bind(s.clone()),
                        },
                        SqlValue::Int(i) => b.push_bind(*i),
                        // Exact decimal text: MariaDB parses a string into DECIMAL exactly.
                        SqlValue::Dec(d) => b.push_bind(d.to_string()),
                        SqlValue::Date(d) => b.push_bind(d.format("%Y-%m-%d").to_string()),
                        // UTC; a DATETIME(6) column keeps the microseconds.
                        SqlValue::DateTime(t) => b.push_bind(crate::datetime::canonical(t)),
                        SqlValue::Lookup {
                            table,
                            key,
                            id,
                            value,
                        } => {
                            // Resolved inside the database, in the same transaction; no
                            // match is NULL, which the target's NOT NULL / FK refuses.
                            b.push(format!(
                                "(SELECT {} FROM {} WHERE {} = ",
                                ident_mysql(id),
                                ident_mysql(table),
                                ident_mysql(key)
                            ));
                            b.push_bind_unseparated(value.clone());
                            b.push_unseparated(")")
                        }
                    };
                }
            });
            // Direct: a key already there is refused by the unique index (1062).
            if may_conflict {
                qb.push(format!(" ON DUPLICATE KEY UPDATE {on_dup}"));
            }
            qb.build().execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        // Rows accepted (inserted, updated or already identical), as the other SQL targets count.
        Ok(rows.len() as u64)
    }
}

impl MySqlWriter {
    /// How each of `spec.columns` takes a text value, from the catalog (one small query
    /// per batch: the sink keeps no state, and a batch is thousands of rows).
    async fn column_kinds(&self, spec: &TableSpec) -> Result<Vec<Kind>, TargetError> {
        let rows: Result<Vec<(String, String)>, sqlx::Error> = sqlx::query_as(
            "SELECT CAST(column_name AS CHAR), CAST(LOWER(data_type) AS CHAR) \
             FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = ?",
        )
        .bind(&spec.table)
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            Ok(r) => r,
            Err(e @ sqlx::Error::PoolTimedOut) => {
                return Err(fault(crate::db::acquire_error(&self.pool, e).await));
            }
            Err(e) => return Err(classify(e)),
        };
        Ok(spec
            .columns
            .iter()
            .map(|c| {
                let ty = rows.iter().find(|(n, _)| n == c).map(|(_, t)| t.as_str());
                match ty {
                    Some(
                        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob",
                    ) => Kind::Binary,
                    Some("bit") => Kind::Bit,
                    _ => Kind::Text,
                }
            })
            .collect())
    }
}

/// How a target column takes the text cutover reads (see README "How values read as
/// text"): binary strings as `\x` + hex, BIT as its unsigned integer, the rest as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
    Bit,
}

enum Written {
    Text,
    Bytes(Vec<u8>),
    Unsigned(u64),
}

impl Kind {
    /// A value not in the column's form goes as text: the server takes its bytes (a
    /// binary column) or refuses it (a BIT), a row error like any other.
    fn written(self, s: &str) -> Written {
        match self {
            Kind::Binary => match s.strip_prefix("\\x").map(hex::decode) {
                Some(Ok(b)) => Written::Bytes(b),
                _ => Written::Text,
            },
            Kind::Bit => s.parse().map_or(Written::Text, Written::Unsigned),
            Kind::Text => Written::Text,
        }
    }
}

/// Server error numbers that mean "this row's content was refused".
///
/// 1364 (field has no default) is deliberately absent: the column list is the same for
/// every row, so it is a mapping/schema mismatch, and bisecting would reject every row.
/// Deadlocks and lock timeouts (1213, 1205) are infrastructure too: retry, don't reject.
const ROW_ERRORS: &[u16] = &[
    1048, // column cannot be null (incl. a lookup that found nothing)
    1062, // duplicate entry on another unique key
    1216, // FK: no referenced row (old form)
    1217, // FK: row is referenced (old form)
    1242, // subquery returns more than 1 row (ambiguous lookup)
    1263, // NULL supplied to NOT NULL column
    1264, // out of range value
    1265, // data truncated
    1292, // incorrect date/time/decimal value
    1300, // invalid character string for the column's charset
    1366, // incorrect value for column (e.g. text into an integer)
    1367, // illegal value found during parsing
    1406, // data too long for column
    1411, // incorrect value for function
    1451, // FK: cannot update a parent row that is referenced
    1452, // FK: no referenced row
    1690, // value out of range in an expression
    3819, // MySQL 8: check constraint violated
    4025, // MariaDB: CONSTRAINT … failed (CHECK)
];

fn classify(e: sqlx::Error) -> TargetError {
    if let sqlx::Error::Database(d) = &e
        && let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        && ROW_ERRORS.contains(&m.number())
    {
        return TargetError::Rows(m.message().to_string());
    }
    fault(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_and_bit_columns_take_the_text_cutover_reads() {
        assert!(matches!(Kind::Binary.written("\\x00ff"), Written::Bytes(b) if b == [0, 255]));
        assert!(matches!(Kind::Binary.written("\\x"), Written::Bytes(b) if b.is_empty()));
        assert!(matches!(Kind::Binary.written("plain"), Written::Text));
        assert!(matches!(Kind::Binary.written("\\xzz"), Written::Text));
        assert!(matches!(
            Kind::Bit.written("18446744073709551615"),
            Written::Unsigned(u64::MAX)
        ));
        assert!(matches!(Kind::Bit.written("-1"), Written::Text));
        assert!(matches!(Kind::Text.written("\\x00"), Written::Text));
    }

    #[test]
    fn backticks_are_doubled() {
        assert_eq!(ident_mysql("a`b"), "`a``b`");
    }
}
