//! SQLite writes: multi-row `INSERT … ON CONFLICT (key) DO UPDATE` (a plain INSERT when no
//! conflict is possible), one transaction per batch.
//! Dates are ISO text, money is exact decimal text (SQLite has no decimal type; a NUMERIC
//! column would turn it into a float, so the reference DDL declares money columns TEXT).

use sqlx::{QueryBuilder, Sqlite, SqlitePool};

use super::{TableSpec, TargetError, fault};
use crate::db::ident;
use crate::values::SqlValue;

pub struct SqliteWriter {
    pub pool: SqlitePool,
}

/// SQLite's default limit is 32766 bound parameters per statement.
const MAX_PARAMS: usize = 32_000;

impl SqliteWriter {
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
        let mut tx = self.pool.begin().await.map_err(infra)?;
        let mut n = 0;
        for chunk in rows.chunks(per_stmt) {
            let cols: Vec<String> = spec.columns.iter().map(|c| ident(c)).collect();
            let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(format!(
                "INSERT INTO {} ({}) ",
                ident(&spec.table),
                cols.join(", ")
            ));
            qb.push_values(chunk.iter(), |mut b, row| {
                for v in row.iter() {
                    match v {
                        SqlValue::Null => b.push_bind(None::<String>),
                        SqlValue::Text(s) => b.push_bind(s.clone()),
                        SqlValue::Int(i) => b.push_bind(*i),
                        SqlValue::Dec(d) => b.push_bind(d.to_string()),
                        SqlValue::Date(d) => b.push_bind(d.format("%Y-%m-%d").to_string()),
                        // UTC as canonical text (see crate::datetime).
                        SqlValue::DateTime(t) => b.push_bind(crate::datetime::canonical(t)),
                        SqlValue::Lookup {
                            table,
                            key,
                            id,
                            value,
                        } => {
                            // Resolved inside the database, in the same transaction.
                            b.push(format!(
                                "(SELECT {} FROM {} WHERE {} = ",
                                ident(id),
                                ident(table),
                                ident(key)
                            ));
                            b.push_bind_unseparated(value.clone());
                            b.push_unseparated(")")
                        }
                    };
                }
            });
            let updates: Vec<String> = spec
                .columns
                .iter()
                .filter(|c| **c != spec.key)
                .map(|c| format!("{} = excluded.{}", ident(c), ident(c)))
                .collect();
            // Direct: a key already there is refused by the table's own constraint.
            if may_conflict {
                qb.push(format!(" ON CONFLICT ({}) DO ", ident(&spec.key)));
                if updates.is_empty() {
                    qb.push("NOTHING");
                } else {
                    qb.push(format!("UPDATE SET {}", updates.join(", ")));
                }
            }
            let res = qb.build().execute(&mut *tx).await.map_err(classify)?;
            n += res.rows_affected();
        }
        tx.commit().await.map_err(classify)?;
        let _ = n;
        Ok(rows.len() as u64)
    }
}

fn infra(e: sqlx::Error) -> TargetError {
    fault(e.into())
}

/// Constraint and type errors are about rows; everything else is infrastructure.
fn classify(e: sqlx::Error) -> TargetError {
    match &e {
        sqlx::Error::Database(d) => {
            let msg = d.message().to_string();
            let lower = msg.to_ascii_lowercase();
            if lower.contains("constraint")
                || lower.contains("mismatch")
                || lower.contains("not null")
            {
                TargetError::Rows(msg)
            } else {
                fault(e.into())
            }
        }
        _ => fault(e.into()),
    }
}
