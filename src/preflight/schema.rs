//! What the data steps read and write: the legacy tables and columns (or the CSV extract
//! files) and the target tables with the mapped columns, or a schema that can be applied.

use std::collections::BTreeMap;

use super::{Out, Status, lit, rows};
use crate::db::types::unsupported_reason;
use crate::db::{Db, Dialect, display_env};
use crate::runbook::{Plan, ResolvedEnv};
use crate::steps::explain;

/// `legacy_url` is empty: the CSV files in `extract_dir` are the extract. Each must exist
/// and its header must carry the entity's columns.
pub(super) fn extract_files(out: &mut Out<'_>, plan: &Plan, env: &str) {
    for n in &plan.order {
        let e = &plan.rb.entities[n];
        if e.derive.is_some() {
            // Written by the extract step from its source's file.
            continue;
        }
        let path = plan.extract_dir.join(&e.source.file);
        if !path.exists() {
            out.at(
                Status::Fail,
                "extract_file",
                Some(env),
                &format!("entities.{n}.source"),
                format!(
                    "extract file {} is missing (extract_dir = {})",
                    path.display(),
                    plan.extract_dir.display()
                ),
                "pass --var extract_dir=DIR, or fix source.file",
            );
            continue;
        }
        match crate::sources::csv::CsvSource::open(&path, &e.columns, e.source.dialect()) {
            Ok(_) => out.at(
                Status::Pass,
                "extract_file",
                Some(env),
                &format!("entities.{n}.source"),
                format!(
                    "extract file {}: the header has the {} columns",
                    path.display(),
                    e.columns.len()
                ),
                "",
            ),
            Err(err) => out.at(
                Status::Fail,
                "extract_file",
                Some(env),
                &format!("entities.{n}.columns"),
                explain(&err),
                "re-export the file, or fix the runbook's columns",
            ),
        }
    }
}

/// Columns of `table` with their types as the server spells them, or `None` when the
/// table (or view) does not exist or is not visible to the connecting user.
async fn source_columns(db: &Db, table: &str) -> anyhow::Result<Option<Vec<(String, String)>>> {
    let t = lit(db, table);
    let (exists, cols) = match db {
        Db::Sqlite(_) => (
            format!(
                "SELECT COUNT(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = {t}"
            ),
            format!("SELECT name, type FROM pragma_table_info({t}) ORDER BY cid"),
        ),
        Db::Postgres(_) => {
            let reg = format!("to_regclass({})", lit(db, &crate::db::ident(table)));
            (
                format!("SELECT COUNT(*) FROM (SELECT {reg} AS r) x WHERE r IS NOT NULL"),
                format!(
                    "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
                     WHERE attrelid = {reg} AND attnum > 0 AND NOT attisdropped ORDER BY attnum"
                ),
            )
        }
        Db::MySql(_) => (
            format!(
                "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {t}"
            ),
            format!(
                "SELECT CAST(COLUMN_NAME AS CHAR), CAST(COLUMN_TYPE AS CHAR) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = {t} ORDER BY ORDINAL_POSITION"
            ),
        ),
    };
    let n = super::first(db, &exists).await?.unwrap_or_default();
    if n == "0" {
        return Ok(None);
    }
    Ok(Some(
        rows(db, &cols)
            .await?
            .into_iter()
            .map(|r| (r[0].clone(), r.get(1).cloned().unwrap_or_default()))
            .collect(),
    ))
}

/// Every entity's legacy table exists with its columns, of types cutover reads exactly.
pub(super) async fn source_tables(out: &mut Out<'_>, plan: &Plan, env: &ResolvedEnv, db: &Db) {
    let name = env.name.as_str();
    // Derived entities have no table; an entity's lines have one of their own.
    let sources = plan
        .order
        .iter()
        .filter(|n| plan.rb.entities[*n].derive.is_none())
        .flat_map(|n| {
            let files = plan.rb.entities[n].source_files(n);
            files.into_iter().enumerate().map(move |(j, f)| {
                let at = if j == 0 {
                    format!("entities.{n}")
                } else {
                    format!("entities.{n}.lines")
                };
                (at, f)
            })
        });
    for (at, f) in sources {
        let table = f.table;
        let src_key = format!("{at}.source");
        let have = match source_columns(db, &table).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                out.at(
                    Status::Fail,
                    "source_table",
                    Some(name),
                    &src_key,
                    format!(
                        "legacy table {table} does not exist in {} (or the connecting user cannot see it)",
                        display_env(env)
                    ),
                    "fix source.table (it defaults to the entity's name), or grant SELECT on it",
                );
                continue;
            }
            Err(err) => {
                out.at(
                    Status::Fail,
                    "source_table",
                    Some(name),
                    &src_key,
                    format!("cannot read the columns of {table}: {}", explain(&err)),
                    "",
                );
                continue;
            }
        };
        let mut bad = false;
        for (i, c) in f.columns.iter().enumerate() {
            let key = format!("{at}.columns[{i}]");
            match have.iter().find(|(h, _)| h == c) {
                None => {
                    bad = true;
                    out.at(
                        Status::Fail,
                        "source_column",
                        Some(name),
                        &key,
                        format!(
                            "column {table}.{c} does not exist (the table has: {})",
                            have.iter()
                                .map(|(h, _)| h.as_str())
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                        "fix the runbook's columns; names are case-sensitive",
                    );
                }
                Some((_, ty)) => {
                    if let Some(why) = unsupported_reason(db.dialect(), ty) {
                        bad = true;
                        out.at(
                            Status::Fail,
                            "source_type",
                            Some(name),
                            &key,
                            format!("column {table}.{c} has type {ty}, which cutover cannot read exactly: {why}"),
                            "extract it through a view that casts it to text, or leave the column out",
                        );
                    }
                }
            }
        }
        if !bad {
            out.at(
                Status::Pass,
                "source_table",
                Some(name),
                &src_key,
                format!(
                    "legacy table {table}: the {} columns exist and their types are readable",
                    f.columns.len()
                ),
                "",
            );
        }
    }
}

/// The target holds every mapped table and column, or none of the tables and the
/// runbook's `[schema]` has DDL for its dialect (the run applies it). `db` is `None` for
/// a SQLite file the run will create.
pub(super) async fn targets(out: &mut Out<'_>, plan: &Plan, env: &ResolvedEnv, db: Option<&Db>) {
    let name = env.name.as_str();
    let dialect = db
        .map(Db::dialect)
        .or_else(|| Dialect::of_url(&env.url))
        .unwrap_or(Dialect::Sqlite);
    let existing = match db {
        Some(db) => match db.table_names().await {
            Ok(t) => t,
            Err(err) => {
                out.at(
                    Status::Fail,
                    "target_table",
                    Some(name),
                    &format!("environments.{name}.url"),
                    format!("cannot list the tables: {}", explain(&err)),
                    "",
                );
                return;
            }
        },
        None => Vec::new(),
    };
    let mut wanted: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for n in &plan.order {
        let e = &plan.rb.entities[n];
        wanted
            .entry(e.target.table.clone())
            .or_default()
            .extend(e.map.keys().map(|c| (n.clone(), c.clone())));
    }
    if !wanted.keys().any(|t| existing.contains(t)) {
        let (key, ddl) = match dialect {
            Dialect::Sqlite => ("sqlite", &plan.rb.schema.sqlite),
            Dialect::Postgres => ("postgres", &plan.rb.schema.postgres),
            Dialect::MySql => ("mysql", &plan.rb.schema.mysql),
        };
        let first = plan.order.first().cloned().unwrap_or_default();
        if ddl.is_some() {
            out.at(
                Status::Pass,
                "schema",
                Some(name),
                &format!("schema.{key}"),
                format!(
                    "{name} holds none of the runbook's {} tables: the run applies schema.{key}",
                    wanted.len()
                ),
                "",
            );
        } else {
            out.at(
                Status::Fail,
                "schema",
                Some(name),
                &format!("entities.{first}.target"),
                format!(
                    "{name} holds none of the runbook's tables ({}) and the runbook has no [schema] {key} DDL to create them",
                    wanted.keys().cloned().collect::<Vec<_>>().join(", ")
                ),
                format!("create the tables, or add {key} = \"\"\"CREATE TABLE …\"\"\" under [schema]"),
            );
        }
        return;
    }
    let Some(db) = db else { return };
    for (table, cols) in &wanted {
        let entity = &cols.first().map(|(e, _)| e.clone()).unwrap_or_default();
        let target_key = format!("entities.{entity}.target");
        if !existing.contains(table) {
            out.at(
                Status::Fail,
                "target_table",
                Some(name),
                &target_key,
                format!(
                    "table {table} does not exist in {} (other tables of the runbook do, so its schema is not applied)",
                    display_env(env)
                ),
                "create the table, or point the runbook at an empty database",
            );
            continue;
        }
        let have = match db.columns(table).await {
            Ok(h) => h,
            Err(err) => {
                out.at(
                    Status::Fail,
                    "target_table",
                    Some(name),
                    &target_key,
                    explain(&err),
                    "",
                );
                continue;
            }
        };
        let mut missing = false;
        for (e, c) in cols {
            if !have.contains(c) {
                missing = true;
                out.at(
                    Status::Fail,
                    "target_column",
                    Some(name),
                    &format!("entities.{e}.map.{c}"),
                    format!("column {table}.{c} does not exist in {}", display_env(env)),
                    "add the column to the target, or fix the map",
                );
            }
        }
        if !missing {
            out.at(
                Status::Pass,
                "target_table",
                Some(name),
                &target_key,
                format!("table {table} has the {} mapped columns", cols.len()),
                "",
            );
        }
    }
}
