//! MariaDB/MySQL sink: multi-row `INSERT … VALUES … ON DUPLICATE KEY UPDATE`, one
//! transaction per batch. The pool runs in strict mode (see [`crate::db::mysql_pool`]),
//! so a bad value is an error instead of a warning and a silently mangled row.
//!
//! `ON DUPLICATE KEY UPDATE` fires on a clash with *any* unique index of the target, not
//! only `spec.key` (MySQL has no conflict target); the target's other unique keys should
//! agree with it. An update that sets every column to its current value changes nothing:
//! InnoDB skips the write, so a replay of unchanged rows leaves them untouched.

use sqlx::{MySql, MySqlPool, QueryBuilder};

use super::{SinkError, TableSpec};
use crate::engine::rules::SqlValue;

pub struct MySqlSink {
    pub pool: MySqlPool,
}

/// The protocol's limit on placeholders per prepared statement is 65,535.
const MAX_PARAMS: usize = 65_535;

/// Quote an identifier for MySQL/MariaDB SQL text. (`db::ident` double-quotes, which
/// MySQL reads as a string literal unless ANSI_QUOTES is set.)
pub fn ident_mysql(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

impl MySqlSink {
    pub async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
    ) -> Result<u64, SinkError> {
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
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => {
                return Err(SinkError::Infra(
                    crate::db::acquire_error(&self.pool, e).await,
                ));
            }
        };
        for chunk in rows.chunks(per_stmt) {
            let mut qb: QueryBuilder<MySql> = QueryBuilder::new(format!(
                "INSERT INTO {} ({}) ",
                ident_mysql(&spec.table),
                cols.join(", ")
            ));
            qb.push_values(chunk.iter(), |mut b, row| {
                for v in row.iter() {
                    match v {
                        SqlValue::Null => b.push_bind(None::<String>),
                        SqlValue::Text(s) => b.push_bind(s.clone()),
                        SqlValue::Int(i) => b.push_bind(*i),
                        // Exact decimal text: MariaDB parses a string into DECIMAL exactly.
                        SqlValue::Dec(d) => b.push_bind(d.to_string()),
                        SqlValue::Date(d) => b.push_bind(d.format("%Y-%m-%d").to_string()),
                        // UTC; a DATETIME(6) column keeps the microseconds.
                        SqlValue::DateTime(t) => {
                            b.push_bind(crate::engine::rules::datetime::canonical(t))
                        }
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
            qb.push(format!(" ON DUPLICATE KEY UPDATE {on_dup}"));
            qb.build().execute(&mut *tx).await.map_err(classify)?;
        }
        tx.commit().await.map_err(classify)?;
        // Rows accepted (inserted, updated or already identical), as the other sinks count.
        Ok(rows.len() as u64)
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

fn classify(e: sqlx::Error) -> SinkError {
    if let sqlx::Error::Database(d) = &e
        && let Some(m) = d.try_downcast_ref::<sqlx::mysql::MySqlDatabaseError>()
        && ROW_ERRORS.contains(&m.number())
    {
        return SinkError::Rows(m.message().to_string());
    }
    SinkError::Infra(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backticks_are_doubled() {
        assert_eq!(ident_mysql("a`b"), "`a``b`");
    }
}
