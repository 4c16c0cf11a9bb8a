//! PostgreSQL writes: per batch, one transaction that `COPY`s the rows as text into a
//! session-local staging table, then upserts them into the target with
//! `INSERT … SELECT <casts> … ON CONFLICT (key) DO UPDATE … WHERE … IS DISTINCT FROM …`.
//! When the caller says no conflict is possible (`may_conflict = false`), the upsert's
//! work is skipped: `COPY` straight into the table when no column needs SQL (a UTC
//! timestamp, a lookup left to the server), else the same `INSERT … SELECT` without
//! `ON CONFLICT`.
//!
//! Lookups (a key of another table → its id) are resolved before the batch's transaction,
//! one query per lookup column for the batch's distinct keys, so the rows reach the table
//! with their ids and can be `COPY`ed straight in: a correlated sub-select per row in the
//! `INSERT … SELECT` was most of the server's time (README, "Performance"). Where that
//! read cannot decide a key (a key the key column cannot hold, or one matching two rows),
//! the column keeps its sub-select, so the server refuses exactly the bad rows as before.
//!
//! COPY is the fast path into PostgreSQL; staging as text and casting in SQL keeps every
//! conversion (dates, exact decimals, lookups) inside the database, where a bad value is a
//! row-shaped error the caller can bisect. The `IS DISTINCT FROM` guard makes a replay of
//! unchanged rows write nothing (no new tuple versions, no triggers, no WAL for them).

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use sqlx::{AssertSqlSafe, PgPool};

use super::{TableSpec, TargetError, fault};
use crate::db::{acquire_error, ident};
use crate::values::SqlValue;

/// Column name → type to cast the staged text to, for one table.
type ColumnTypes = Arc<HashMap<String, String>>;

pub struct PgWriter {
    pub pool: PgPool,
    /// Catalog answers per table (targets and lookup tables), fetched once: the schema is
    /// not expected to change during a load.
    types: Mutex<HashMap<String, ColumnTypes>>,
}

impl PgWriter {
    pub fn new(pool: PgPool) -> PgWriter {
        PgWriter {
            pool,
            types: Mutex::new(HashMap::new()),
        }
    }

    pub async fn write_batch(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        may_conflict: bool,
    ) -> Result<u64, TargetError> {
        if rows.is_empty() {
            return Ok(0);
        }
        let n = spec.columns.len();
        if let Some(r) = rows.iter().find(|r| r.len() != n) {
            return Err(fault(anyhow::anyhow!(
                "{}: row has {} values for {n} columns",
                spec.table,
                r.len()
            )));
        }
        let stage = format!("cutover_stage_{n}");
        let resolved = self.resolve_lookups(rows).await?;
        let exprs = self.select_exprs(spec, rows, &resolved).await?;
        let data = copy_text_resolved(rows, &resolved);

        // A connection the server dropped (restart, network) is noticed here by the pool's
        // liveness ping and replaced by a new one; the staging table below is per
        // connection and created if missing, so a new connection gets its own.
        let mut tx = match self.pool.begin().await {
            Ok(tx) => tx,
            Err(e) => return Err(fault(acquire_error(&self.pool, e).await)),
        };
        let cols: Vec<String> = spec.columns.iter().map(|c| ident(c)).collect();
        if !may_conflict && exprs.plain {
            // Nothing to resolve or cast in SQL and no row to meet: COPY straight into the
            // table. COPY reads each field with the column's own input function and
            // modifier, as the staged cast plus assignment would; a bad value or a key
            // already there fails the whole COPY, which the caller bisects.
            let mut copy = tx
                .copy_in_raw(&format!(
                    "COPY {} ({}) FROM STDIN",
                    ident(&spec.table),
                    cols.join(", ")
                ))
                .await
                .map_err(classify)?;
            copy.send(data).await.map_err(classify)?;
            copy.finish().await.map_err(classify)?;
            tx.commit().await.map_err(classify)?;
            return Ok(rows.len() as u64);
        }
        // Why a temp table that lives as long as the pooled connection, emptied at commit,
        // rather than ON COMMIT DROP: DROP would insert and delete pg_class/pg_attribute/
        // pg_type rows on every batch, bloating the catalog over a long load; DELETE ROWS
        // creates the table once per connection and truncates it in place. It is created
        // (if missing) inside this very transaction, so nothing assumes which backend we
        // got, and a rollback simply takes the staged rows (or the new table) with it.
        // The table is shared by all targets with the same column count (columns are
        // positional c0..cN, all text). client_min_messages hides the "already exists,
        // skipping" NOTICE that sqlx would otherwise log at INFO once per batch.
        let staged: Vec<String> = (0..n).map(|i| format!("c{i} text")).collect();
        sqlx::raw_sql(AssertSqlSafe(format!(
            "SET LOCAL client_min_messages = warning; \
             CREATE TEMP TABLE IF NOT EXISTS {stage} ({}) ON COMMIT DELETE ROWS",
            staged.join(", ")
        )))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;

        let mut copy = tx
            .copy_in_raw(&format!("COPY pg_temp.{stage} FROM STDIN"))
            .await
            .map_err(classify)?;
        copy.send(data).await.map_err(classify)?;
        copy.finish().await.map_err(classify)?;

        let insert = format!(
            "INSERT INTO {} AS cutover_t ({}) SELECT {} FROM pg_temp.{stage} AS cutover_s",
            ident(&spec.table),
            cols.join(", "),
            exprs.exprs.join(", "),
        );
        let sql = if may_conflict {
            format!("{insert} {}", on_conflict(spec))
        } else {
            // No row to meet: the upsert's conflict check and IS DISTINCT FROM comparison
            // would be wasted work; a key already there fails on the unique index.
            insert
        };
        // Simple-query protocol: the statement carries no parameters, so preparing and
        // caching it (one per column count and lookup shape) would buy nothing.
        sqlx::raw_sql(AssertSqlSafe(sql))
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        tx.commit().await.map_err(classify)?;
        // Rows accepted (inserted, updated or already identical), as the other SQL targets count.
        Ok(rows.len() as u64)
    }

    /// The SELECT list that turns the staged text into the target's columns: a cast per
    /// column, a sub-select per lookup not resolved on the client. `plain` when every one
    /// is a bare cast, which COPY into the table does by itself.
    async fn select_exprs(
        &self,
        spec: &TableSpec,
        rows: &[&[SqlValue]],
        resolved: &Resolved<'_>,
    ) -> Result<SelectExprs, TargetError> {
        let target = self.column_types(&spec.table).await?;
        let mut exprs = Vec::with_capacity(spec.columns.len());
        let mut plain = true;
        for (i, col) in spec.columns.iter().enumerate() {
            let staged = format!("cutover_s.c{i}");
            // A column is a lookup when its values are (the map rule makes every row alike);
            // one resolved above is the referenced ids, cast like any column.
            let lookup = rows
                .iter()
                .find_map(|r| match &r[i] {
                    SqlValue::Lookup { table, key, id, .. } => Some((table, key, id)),
                    _ => None,
                })
                .filter(|_| !resolved.contains_key(&i));
            let expr = match lookup {
                Some((table, key, id)) => {
                    plain = false;
                    let key_type = self
                        .column_types(table)
                        .await?
                        .get(key)
                        .cloned()
                        .ok_or_else(|| {
                            infra_msg(format!("lookup table {table} has no column {key}"))
                        })?;
                    // No match gives NULL; the target's NOT NULL / FK then refuses the row.
                    format!(
                        "(SELECT cutover_l.{} FROM {} AS cutover_l WHERE cutover_l.{} = {staged}::{key_type})",
                        ident(id),
                        ident(table),
                        ident(key)
                    )
                }
                None => {
                    let ty = target.get(col).ok_or_else(|| {
                        infra_msg(format!("table {} has no column {col}", spec.table))
                    })?;
                    let utc = rows.iter().any(|r| matches!(r[i], SqlValue::DateTime(_)));
                    if utc && ty == "pg_catalog.timestamptz" {
                        // The datetime rule's values are UTC: say so, whatever the session's zone.
                        plain = false;
                        format!("({staged}::pg_catalog.timestamp AT TIME ZONE 'UTC')")
                    } else {
                        format!("{staged}::{ty}")
                    }
                }
            };
            exprs.push(expr);
        }
        Ok(SelectExprs { exprs, plain })
    }

    /// Each lookup column's keys → the referenced ids, read in one query per column for the
    /// batch's distinct keys. A key with no row maps to `None` (the row goes out with NULL,
    /// which the table's NOT NULL or foreign key refuses, as the sub-select's NULL did). A column is left out (kept as a sub-select) when the read cannot decide
    /// it: a key its column's type refuses, or a key matching two rows; the server then
    /// names the bad rows while the batch is bisected.
    async fn resolve_lookups<'a>(
        &self,
        rows: &[&'a [SqlValue]],
    ) -> Result<Resolved<'a>, TargetError> {
        let mut resolved = Resolved::new();
        let Some(first) = rows.first() else {
            return Ok(resolved);
        };
        for i in 0..first.len() {
            let Some((table, key, id)) = rows.iter().find_map(|r| match &r[i] {
                SqlValue::Lookup { table, key, id, .. } => Some((table, key, id)),
                _ => None,
            }) else {
                continue;
            };
            let types = self.column_types(table).await?;
            let key_type = types
                .get(key)
                .cloned()
                .ok_or_else(|| infra_msg(format!("lookup table {table} has no column {key}")))?;
            let mut keys: Vec<&str> = rows
                .iter()
                .filter_map(|r| match &r[i] {
                    SqlValue::Lookup { value, .. } => Some(value.as_str()),
                    _ => None,
                })
                .collect();
            keys.sort_unstable();
            keys.dedup();
            // A scalar sub-select per distinct key: an index probe each. (A join lets the
            // planner hash the whole lookup table for a few thousand keys: 5× slower at
            // 500k partners.) A key matching two rows fails the read (21000). The ids come
            // back as one text in the keys' order, each already in COPY's text form
            // (escaped, `\N` for no row), so the batch's ids cost one string, not two a key.
            // An integer id needs no escaping (and the server no four `replace` calls a key).
            let id_sql = format!(
                "(SELECT l.{}::text FROM {} AS l WHERE l.{} = k.v::{key_type})",
                ident(id),
                ident(table),
                ident(key)
            );
            let id_sql = match types.get(id).map(String::as_str) {
                Some("pg_catalog.int2" | "pg_catalog.int4" | "pg_catalog.int8") => id_sql,
                _ => format!(
                    "replace(replace(replace(replace({id_sql}, \
                     '\\', '\\\\'), E'\\t', '\\t'), E'\\n', '\\n'), E'\\r', '\\r')"
                ),
            };
            let sql = format!(
                "SELECT string_agg(coalesce({id_sql}, '\\N'), E'\\t' ORDER BY k.n) \
                 FROM unnest($1::text[]) WITH ORDINALITY AS k(v, n)"
            );
            let text: Option<String> = match sqlx::query_scalar(AssertSqlSafe(sql))
                .bind(&keys)
                .fetch_one(&self.pool)
                .await
            {
                Ok(text) => text,
                Err(e @ sqlx::Error::PoolTimedOut) => {
                    return Err(fault(acquire_error(&self.pool, e).await));
                }
                Err(e) => match classify(e) {
                    // A key the key column cannot hold, or one matching two rows: the
                    // batch's own sub-select names its row.
                    TargetError::Rows(_) => continue,
                    other => return Err(other),
                },
            };
            let text = text.unwrap_or_default();
            let mut spans = Vec::with_capacity(keys.len());
            let mut at = 0;
            for id in text.split('\t') {
                spans.push((at, at + id.len()));
                at += id.len() + 1;
            }
            if spans.len() != keys.len() {
                return Err(fault(anyhow::anyhow!(
                    "lookup of {table}.{key}: {} ids for {} keys",
                    spans.len(),
                    keys.len()
                )));
            }
            resolved.insert(i, Ids { keys, text, spans });
        }
        Ok(resolved)
    }

    /// Cast target per column of `table`, from the catalog once, then from the cache.
    ///
    /// The cast names the type *without* its modifier (`pg_catalog.varchar`, not
    /// `character varying(64)`): an explicit cast to `varchar(64)` silently truncates a
    /// longer value, while the INSERT's own assignment coercion to the column's modifier
    /// refuses it (22001). The internal name (`bpchar`, `"bit"`) is used because
    /// `format_type` spells those as `character` / `bit`, which as a cast mean length 1.
    async fn column_types(&self, table: &str) -> Result<ColumnTypes, TargetError> {
        if let Some(t) = self.types.lock().expect("type cache").get(table) {
            return Ok(t.clone());
        }
        let rows: Result<Vec<(String, String)>, _> = sqlx::query_as(
            "SELECT a.attname::text, quote_ident(n.nspname) || '.' || quote_ident(t.typname) \
             FROM pg_attribute a \
             JOIN pg_type t ON t.oid = a.atttypid \
             JOIN pg_namespace n ON n.oid = t.typnamespace \
             WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped",
        )
        .bind(ident(table))
        .fetch_all(&self.pool)
        .await;
        let rows = match rows {
            Ok(r) => r,
            Err(e @ sqlx::Error::PoolTimedOut) => {
                return Err(fault(acquire_error(&self.pool, e).await));
            }
            Err(e) => return Err(classify(e)),
        };
        if rows.is_empty() {
            // Not cached: the table may be created before the next attempt.
            return Err(infra_msg(format!(
                "table {table} does not exist (or is not visible to this user)"
            )));
        }
        let t: ColumnTypes = Arc::new(rows.into_iter().collect());
        self.types
            .lock()
            .expect("type cache")
            .insert(table.to_string(), t.clone());
        Ok(t)
    }
}

/// Lookup columns resolved on the client: column index → key → the referenced id as text
/// (`None`: no row has that key).
/// Per resolved lookup column: its batch's ids.
type Resolved<'a> = HashMap<usize, Ids<'a>>;

/// A lookup column's ids for one batch: its distinct keys, sorted, and the server's
/// answer, one COPY text field per key in the same order (`\N` where no row has it).
struct Ids<'a> {
    keys: Vec<&'a str>,
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Ids<'_> {
    /// The id of `key` as a COPY text field (escaped; `\N` for none).
    fn copy_field(&self, key: &str) -> &str {
        match self.keys.binary_search(&key) {
            Ok(k) => &self.text[self.spans[k].0..self.spans[k].1],
            Err(_) => "\\N",
        }
    }
}

/// The SELECT list of a batch's INSERT from the staging table.
struct SelectExprs {
    exprs: Vec<String>,
    /// Every column a bare cast of its staged text (no lookup, no time zone).
    plain: bool,
}

/// `ON CONFLICT (key) DO UPDATE … WHERE … IS DISTINCT FROM …`: the upsert's clause.
fn on_conflict(spec: &TableSpec) -> String {
    let rest: Vec<&String> = spec.columns.iter().filter(|c| **c != spec.key).collect();
    let action = if rest.is_empty() {
        "NOTHING".to_string()
    } else {
        let set: Vec<String> = rest
            .iter()
            .map(|c| format!("{0} = EXCLUDED.{0}", ident(c)))
            .collect();
        // Compared as text: every type has a text form (`json` has no `=`), and equal
        // text is what "unchanged" means to cutover's reads.
        let old: Vec<String> = rest
            .iter()
            .map(|c| format!("cutover_t.{}::text", ident(c)))
            .collect();
        let new: Vec<String> = rest
            .iter()
            .map(|c| format!("EXCLUDED.{}::text", ident(c)))
            .collect();
        format!(
            "UPDATE SET {} WHERE ({}) IS DISTINCT FROM ({})",
            set.join(", "),
            old.join(", "),
            new.join(", ")
        )
    };
    format!("ON CONFLICT ({}) DO {action}", ident(&spec.key))
}

/// Rows in COPY's text format: tab-separated, newline-terminated, `\N` for NULL, and
/// backslash escapes for the characters that would otherwise be structure. An empty
/// string is an empty field, distinct from `\N`; literal text `\N` goes out as `\\N`.
pub fn copy_text(rows: &[&[SqlValue]]) -> Vec<u8> {
    copy_text_resolved(rows, &Resolved::new())
}

/// [`copy_text`], with each resolved lookup column's key replaced by its id (`\N` for a
/// key that found no row).
fn copy_text_resolved(rows: &[&[SqlValue]], resolved: &Resolved<'_>) -> Vec<u8> {
    let mut buf = Vec::with_capacity(rows.len() * rows.first().map_or(1, |r| r.len()) * 12);
    for row in rows {
        for (i, v) in row.iter().enumerate() {
            if i > 0 {
                buf.push(b'\t');
            }
            // Numbers, dates and times hold nothing COPY would read as structure: written
            // straight into the buffer (no string per value).
            let s: &str = match v {
                SqlValue::Null => {
                    buf.extend_from_slice(b"\\N");
                    continue;
                }
                SqlValue::Text(s) => s,
                SqlValue::Lookup { value, .. } => match resolved.get(&i) {
                    None => value,
                    // Already COPY text, escaped by the server.
                    Some(ids) => {
                        buf.extend_from_slice(ids.copy_field(value).as_bytes());
                        continue;
                    }
                },
                SqlValue::Int(n) => {
                    let _ = write!(buf, "{n}");
                    continue;
                }
                // Display is exact and plain (no exponent), keeping the scale: "0.10".
                SqlValue::Dec(d) => {
                    let _ = write!(buf, "{d}");
                    continue;
                }
                SqlValue::Date(d) => {
                    let _ = crate::datetime::write_date(&mut buf, d);
                    continue;
                }
                // UTC wall-clock text; a timestamptz target reads it AT TIME ZONE 'UTC'
                // (see select_exprs), so the session's TimeZone never shifts it.
                SqlValue::DateTime(t) => {
                    let _ = crate::datetime::write_canonical(&mut buf, t);
                    continue;
                }
            };
            for b in s.bytes() {
                match b {
                    b'\\' => buf.extend_from_slice(b"\\\\"),
                    b'\t' => buf.extend_from_slice(b"\\t"),
                    b'\n' => buf.extend_from_slice(b"\\n"),
                    b'\r' => buf.extend_from_slice(b"\\r"),
                    _ => buf.push(b),
                }
            }
        }
        buf.push(b'\n');
    }
    buf
}

fn infra_msg(msg: String) -> TargetError {
    fault(anyhow::anyhow!(msg))
}

/// SQLSTATE classes 21 (cardinality: a lookup matching two rows, one key twice in a
/// batch), 22 (data exception: bad date, overflow, too long) and 23 (integrity: NOT NULL,
/// FK, unique, CHECK) are about the rows; anything else (connection, permissions,
/// undefined table, serialization failure) is infrastructure and must not be bisected.
fn classify(e: sqlx::Error) -> TargetError {
    if let sqlx::Error::Database(d) = &e
        && let Some(code) = d.code()
        && matches!(code.get(..2), Some("21" | "22" | "23"))
    {
        let detail = d
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .and_then(|p| p.detail());
        return TargetError::Rows(match detail {
            Some(detail) => format!("{} ({detail})", d.message()),
            None => d.message().to_string(),
        });
    }
    fault(e.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_text_escapes_structure_and_keeps_null_apart_from_empty() {
        let row = [
            SqlValue::Text("a\tb\nc\rd\\e".into()),
            SqlValue::Text("\\N".into()),
            SqlValue::Text(String::new()),
            SqlValue::Null,
            SqlValue::Dec("-0.10".parse().unwrap()),
        ];
        assert_eq!(
            copy_text(&[&row]),
            b"a\\tb\\nc\\rd\\\\e\t\\\\N\t\t\\N\t-0.10\n".to_vec()
        );
    }

    #[test]
    fn a_datetime_goes_out_as_canonical_utc_text() {
        let at = |s: &str| {
            SqlValue::DateTime(
                chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f").unwrap(),
            )
        };
        let row = [at("2024-01-15 08:30:00"), at("2024-06-01 10:00:00.25")];
        assert_eq!(
            copy_text(&[&row]),
            b"2024-01-15 08:30:00\t2024-06-01 10:00:00.250000\n".to_vec()
        );
    }
}
