//! Read-side queries that work the same on every driver: rows come back as text cells, so
//! counts, sums, snapshots, fingerprints and extracts share one code path. Decimals are
//! read as their exact text, never through a float.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use futures::TryStreamExt;
use rust_decimal::Decimal;
use sha2::{Digest, Sha256};
use sqlx::Row;

use super::{Db, types};
use crate::values::Fingerprint;

/// Stream `$rows`, each as text cells (rendered by `$cell`), through `$f`.
macro_rules! for_each_row {
    ($rows:expr, $cell:path, $f:expr) => {{
        let mut rows = $rows;
        let mut cells: Vec<Option<String>> = Vec::new();
        while let Some(r) = rows.try_next().await? {
            cells.clear();
            for i in 0..r.len() {
                cells.push($cell(&r, i)?);
            }
            $f(&cells)?;
        }
        Ok(())
    }};
}

impl Db {
    /// Stream the rows of `sql`, each as text cells, through `f`: every value as the
    /// server renders it as text (see [`super::types`]), NULL as `None`.
    ///
    /// Server queries go through the text protocol (PostgreSQL simple query, MySQL
    /// `COM_QUERY`), whose values arrive as text whatever their type; rows stream.
    pub async fn for_each_row(
        &self,
        sql: &str,
        mut f: impl FnMut(&[Option<String>]) -> Result<()>,
    ) -> Result<()> {
        let run = async {
            match self {
                Db::Sqlite(p) => for_each_row!(
                    sqlx::query(sqlx::AssertSqlSafe(sql.to_string())).fetch(p),
                    types::sqlite_cell,
                    f
                ),
                Db::Postgres(p) => for_each_row!(
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).fetch(p),
                    types::pg_cell,
                    f
                ),
                Db::MySql(p) => for_each_row!(
                    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string())).fetch(p),
                    types::mysql_cell,
                    f
                ),
            }
        };
        let run: Result<()> = run.await;
        run.with_context(|| format!("running {sql}"))
    }

    pub async fn count(&self, table: &str) -> Result<i64> {
        let sql = format!("SELECT COUNT(*) FROM {}", self.q(table));
        let n = match self {
            Db::Sqlite(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(p)
                    .await
            }
            Db::Postgres(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(p)
                    .await
            }
            Db::MySql(p) => {
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
                    .fetch_one(p)
                    .await
            }
        };
        n.with_context(|| format!("counting rows of {table}"))
    }

    /// Whether `table` holds any row (cheap on a large table, unlike `count`).
    pub async fn holds_rows(&self, table: &str) -> Result<bool> {
        let sql = format!("SELECT 1 FROM {} LIMIT 1", self.q(table));
        let q = || sqlx::raw_sql(sqlx::AssertSqlSafe(sql.clone()));
        let row = match self {
            Db::Sqlite(p) => q().fetch_optional(p).await.map(|r| r.is_some()),
            Db::Postgres(p) => q().fetch_optional(p).await.map(|r| r.is_some()),
            Db::MySql(p) => q().fetch_optional(p).await.map(|r| r.is_some()),
        };
        row.with_context(|| format!("reading whether {table} holds rows"))
    }

    pub async fn row_counts(&self, tables: &[String]) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for t in tables {
            out.insert(t.clone(), self.count(t).await?.to_string());
        }
        Ok(out)
    }

    /// The user tables of the connected database (schema `public`-like: the current one).
    pub async fn table_names(&self) -> Result<Vec<String>> {
        let sql = match self {
            Db::Sqlite(_) => {
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY name"
            }
            Db::Postgres(_) => {
                "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1"
            }
            Db::MySql(_) => {
                "SELECT CAST(table_name AS CHAR) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE' ORDER BY 1"
            }
        };
        let mut out = Vec::new();
        self.for_each_row(sql, |c| {
            out.push(c[0].clone().unwrap_or_default());
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Column names of `table`, in table order.
    pub async fn columns(&self, table: &str) -> Result<Vec<String>> {
        let lit = table.replace('\'', "''");
        let sql = match self {
            Db::Sqlite(_) => format!("SELECT name FROM pragma_table_info('{lit}') ORDER BY cid"),
            Db::Postgres(_) => format!(
                "SELECT column_name::text FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = '{lit}' ORDER BY ordinal_position"
            ),
            Db::MySql(_) => format!(
                "SELECT CAST(column_name AS CHAR) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '{lit}' ORDER BY ordinal_position"
            ),
        };
        let mut out = Vec::new();
        self.for_each_row(&sql, |c| {
            out.push(c[0].clone().unwrap_or_default());
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Per user table: row count and an order-independent digest of its rows (the
    /// wrapping sum of each row's SHA-256), so two databases with the same contents give
    /// the same snapshot whatever their physical row order (a restore does not keep it),
    /// with no sort: no column type needs an ordering (PostgreSQL `json` has none), no
    /// collation or sort-prefix limit (MySQL `max_sort_length`) can reorder ties.
    /// Every value is hashed as its exact text, NULL apart from the empty string.
    pub async fn snapshot(&self) -> Result<BTreeMap<String, String>> {
        self.snapshot_tables(&self.table_names().await?).await
    }

    /// [`snapshot`](Self::snapshot) of the named tables only (the freeze watermark over
    /// the legacy source tables).
    pub async fn snapshot_tables(&self, tables: &[String]) -> Result<BTreeMap<String, String>> {
        let mut out = BTreeMap::new();
        for t in tables {
            let types = self.column_types(t).await?;
            let names: Vec<String> = types.iter().map(|(n, _)| n.clone()).collect();
            let sql = format!(
                "SELECT {} FROM {}",
                self.exact_select_list(&names, &types),
                self.q(t)
            );
            let (mut hi, mut lo) = (0u128, 0u128);
            let mut n = 0u64;
            self.for_each_row(&sql, |cells| {
                n += 1;
                let mut h = Sha256::new();
                for c in cells {
                    match c {
                        None => h.update([0u8]),
                        Some(s) => {
                            h.update([1u8]);
                            h.update((s.len() as u64).to_be_bytes());
                            h.update(s.as_bytes());
                        }
                    }
                }
                let d = h.finalize();
                let (a, b) = d.split_at(16);
                hi = hi.wrapping_add(u128::from_be_bytes(a.try_into().expect("16 bytes")));
                lo = lo.wrapping_add(u128::from_be_bytes(b.try_into().expect("16 bytes")));
                Ok(())
            })
            .await
            .with_context(|| format!("snapshot of table {t}"))?;
            out.insert(t.clone(), format!("rows={n} sha256={hi:032x}{lo:032x}"));
        }
        Ok(out)
    }

    /// Exact sum of a money column, whether it is stored as decimal text or as a decimal.
    pub async fn sum_column(&self, table: &str, column: &str) -> Result<Decimal> {
        let sql = format!("SELECT {} FROM {}", self.q(column), self.q(table));
        let mut total = Decimal::ZERO;
        self.for_each_row(&sql, |c| {
            if let Some(s) = &c[0] {
                total += s
                    .parse::<Decimal>()
                    .with_context(|| format!("{table}.{column} holds '{s}', not a decimal"))?;
            }
            Ok(())
        })
        .await?;
        Ok(total)
    }

    /// Exact sums of a money column per value of `group_column` (its currency), read row
    /// by row like [`sum_column`](Self::sum_column) so every driver sums the same way. A
    /// NULL or blank group is [`NO_CURRENCY`](crate::values::NO_CURRENCY), as on
    /// the source side.
    pub async fn sum_column_by(
        &self,
        table: &str,
        column: &str,
        group_column: &str,
    ) -> Result<BTreeMap<String, Decimal>> {
        let sql = format!(
            "SELECT {}, {} FROM {}",
            self.q(group_column),
            self.q(column),
            self.q(table)
        );
        let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
        self.for_each_row(&sql, |c| {
            let group = match c[0].as_deref().map(str::trim) {
                None | Some("") => crate::values::NO_CURRENCY.to_string(),
                Some(g) => g.to_string(),
            };
            let total = out.entry(group).or_default();
            if let Some(s) = &c[1] {
                *total += s
                    .parse::<Decimal>()
                    .with_context(|| format!("{table}.{column} holds '{s}', not a decimal"))?;
            }
            Ok(())
        })
        .await?;
        Ok(out)
    }

    /// Order-independent digest of what `sql` returns (NULL counts as empty text).
    pub async fn fingerprint(&self, sql: &str) -> Result<Fingerprint> {
        let mut fp = Fingerprint::default();
        self.for_each_row(sql, |cells| {
            let parts: Vec<&str> = cells.iter().map(|c| c.as_deref().unwrap_or("")).collect();
            fp.add(&parts);
            Ok(())
        })
        .await?;
        Ok(fp)
    }

    /// Stream `SELECT columns FROM table` into a CSV file with a header row; returns the
    /// number of rows written. This is the SQL extract.
    pub async fn table_to_csv(&self, table: &str, columns: &[String], out: &Path) -> Result<u64> {
        let types = self
            .column_types(table)
            .await
            .with_context(|| format!("reading legacy table {table}"))?;
        let sql = format!(
            "SELECT {} FROM {}",
            self.exact_select_list(columns, &types),
            self.q(table)
        );
        let file = std::fs::File::create(out)
            .with_context(|| format!("cannot create {}", out.display()))?;
        let mut w = std::io::BufWriter::new(file);
        let mut line = Vec::new();
        let header: Vec<Option<String>> = columns.iter().map(|c| Some(c.clone())).collect();
        csv_record(&mut line, &header);
        w.write_all(&line)
            .with_context(|| format!("writing {} (disk full?)", out.display()))?;
        let mut n = 0u64;
        self.for_each_row(&sql, |cells| {
            line.clear();
            csv_record(&mut line, cells);
            w.write_all(&line)
                .with_context(|| format!("writing {} (disk full?)", out.display()))?;
            n += 1;
            Ok(())
        })
        .await
        .with_context(|| format!("reading legacy table {table}"))?;
        w.flush()
            .with_context(|| format!("writing {} (disk full?)", out.display()))?;
        Ok(n)
    }

    /// Run statements that return nothing (DDL, grants), one string at a time.
    pub async fn exec(&self, sql: &str) -> Result<()> {
        let r = match self {
            Db::Sqlite(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
            Db::Postgres(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
            Db::MySql(p) => sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
                .execute(p)
                .await
                .map(|_| ()),
        };
        r.with_context(|| format!("running {}", first_line(sql)))
    }
}

/// One CSV record, `\n`-terminated, in psql's `\copy … CSV` convention: NULL is an
/// empty field, the empty string is `""`; a value holding a comma, a quote or a line end
/// is quoted, its quotes doubled.
pub fn csv_record(out: &mut Vec<u8>, cells: &[Option<String>]) {
    for (i, c) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        match c.as_deref() {
            None => {}
            Some(s) if s.is_empty() || s.contains([',', '"', '\r', '\n']) => {
                out.push(b'"');
                out.extend_from_slice(s.replace('"', "\"\"").as_bytes());
                out.push(b'"');
            }
            Some(s) => out.extend_from_slice(s.as_bytes()),
        }
    }
    out.push(b'\n');
}

fn first_line(sql: &str) -> String {
    let l = sql.trim().lines().next().unwrap_or("");
    if l.len() > 120 {
        format!("{}…", &l[..l.floor_char_boundary(120)])
    } else {
        l.to_string()
    }
}
