//! Preflight: before a run changes anything, connect to every environment its steps use
//! and check that each step will be able to do its work. Every finding points at the
//! runbook key it comes from (file:line), so the fix is one look away.
//!
//! `cutover check RUNBOOK --connect` prints the findings; `run` and `rehearse` run the same
//! checks first (for the steps they will run) and refuse to start on a failed one.

mod host;
mod privileges;
mod schema;

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::db::{Db, Dialect, display_env, sqlite_path};
use crate::journal::events::{Event, Phase, Record, RunMode};
use crate::runbook::format::StepKind;
use crate::runbook::lint::Ctx;
use crate::runbook::{Plan, ResolvedEnv};
use crate::steps::explain;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn glyph(self) -> &'static str {
        match self {
            Status::Pass => "✓",
            Status::Warn => "!",
            Status::Fail => "✗",
        }
    }
}

/// One thing checked, with where in the runbook (or which flag) it comes from.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub status: Status,
    /// What was checked: `connect`, `source_table`, `source_column`, `source_type`,
    /// `extract_file`, `target_table`, `target_column`, `schema`, `app_users`,
    /// `privileges`, `tool`, `disk`, `writable`.
    pub check: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    /// The runbook file, or the flag the checked value came from (`--journal`).
    pub file: String,
    /// 0 when the finding is about a flag, not a place in the runbook.
    pub line: usize,
    pub column: usize,
    pub key: String,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hint: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let g = self.status.glyph();
        if self.line == 0 {
            write!(f, "{g} {}: {}", self.file, self.message)?;
        } else {
            write!(
                f,
                "{g} {}:{}: {}: {}",
                self.file, self.line, self.key, self.message
            )?;
        }
        if !self.hint.is_empty() && self.status != Status::Pass {
            write!(f, "\n    hint: {}", self.hint)?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub ok: bool,
    pub passed: usize,
    pub warned: usize,
    pub failed: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    fn new(findings: Vec<Finding>) -> Report {
        let n = |s| findings.iter().filter(|f| f.status == s).count();
        let (passed, warned, failed) = (n(Status::Pass), n(Status::Warn), n(Status::Fail));
        Report {
            ok: failed == 0,
            passed,
            warned,
            failed,
            findings,
        }
    }

    /// `preflight: 21 passed, 1 warning, 2 failed`.
    pub fn tally(&self) -> String {
        format!(
            "preflight: {} passed, {} warning(s), {} failed",
            self.passed, self.warned, self.failed
        )
    }

    /// Every finding into `cutover.log`.
    pub fn log(&self) {
        for f in &self.findings {
            match f.status {
                Status::Pass => tracing::info!(key = %f.key, "preflight ✓ {}", f.message),
                Status::Warn => tracing::warn!(key = %f.key, "preflight ! {}", f.message),
                Status::Fail => tracing::error!(key = %f.key, "preflight ✗ {}", f.message),
            }
        }
    }
}

/// Where the run will write, besides the databases.
pub struct Options {
    /// Which steps will run: a rehearsal checks only what extract, dry run and validate use.
    pub mode: RunMode,
    /// The journal's location (a path, `sqlite:` or server URL) and the flag it came from.
    pub journal: String,
    pub artifacts: PathBuf,
}

/// Whether a resumed run still needs its preflight: not once it has closed production,
/// frozen the legacy system or started the load, because from then on the environments
/// are in the state the cutover put them in, and the run's own steps check what they use.
pub fn due_on_resume(records: &[Record]) -> bool {
    !records.iter().any(|r| {
        matches!(
            r.event,
            Event::BackupTaken { .. }
                | Event::FreezePlanned { .. }
                | Event::FreezeApplied { .. }
                | Event::EntityStarted {
                    phase: Phase::Load,
                    ..
                }
        )
    })
}

/// Collects findings, placing each at its runbook key.
pub(crate) struct Out<'a> {
    ctx: Ctx<'a>,
    file: String,
    findings: Vec<Finding>,
}

impl Out<'_> {
    pub(crate) fn at(
        &mut self,
        status: Status,
        check: &'static str,
        env: Option<&str>,
        key: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        let d = self.ctx.diag(key, String::new(), String::new());
        self.findings.push(Finding {
            status,
            check,
            env: env.map(str::to_string),
            file: self.file.clone(),
            line: d.line,
            column: d.column,
            key: key.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }

    /// A finding about a value given by a flag, not by the runbook.
    pub(crate) fn flag(
        &mut self,
        status: Status,
        check: &'static str,
        flag: &str,
        message: impl Into<String>,
        hint: impl Into<String>,
    ) {
        self.findings.push(Finding {
            status,
            check,
            env: None,
            file: flag.to_string(),
            line: 0,
            column: 0,
            key: flag.to_string(),
            message: message.into(),
            hint: hint.into(),
        });
    }
}

/// What the steps that will run ask of one environment.
#[derive(Debug, Default)]
pub(crate) struct Uses {
    /// Read by the extract (and counted by the freeze watermark).
    pub source: bool,
    pub freeze: bool,
    /// Written by a dry run or a load.
    pub target: bool,
    /// Emptied before the dry run (`reset = true`).
    pub reset: bool,
    /// Index of the backup step in `[[steps]]`.
    pub backup: Option<usize>,
    /// Restored from the backup by the rollback.
    pub restore: bool,
    /// Closed to and reopened for `app_users` (backup, unfreeze, rollback).
    pub users: bool,
}

fn runs_in(mode: RunMode, kind: StepKind) -> bool {
    mode == RunMode::Run
        || matches!(
            kind,
            StepKind::Extract | StepKind::DryRun | StepKind::Validate
        )
}

/// The environment a step acts on, with the executor's defaults.
fn step_env(kind: StepKind, env: Option<&str>) -> Option<&str> {
    env.or(match kind {
        StepKind::Backup | StepKind::Load | StepKind::Verify | StepKind::Unfreeze => {
            Some("production")
        }
        StepKind::Freeze | StepKind::Extract => Some("legacy"),
        StepKind::DryRun | StepKind::Validate => Some("staging"),
        StepKind::SignOff | StepKind::Command => None,
    })
}

fn uses(plan: &Plan, mode: RunMode) -> indexmap::IndexMap<String, Uses> {
    let mut out: indexmap::IndexMap<String, Uses> = indexmap::IndexMap::new();
    for (i, s) in plan.rb.steps.iter().enumerate() {
        if !runs_in(mode, s.kind) {
            continue;
        }
        let Some(name) = step_env(s.kind, s.env.as_deref()) else {
            continue;
        };
        let reset = plan.envs.get(name).is_some_and(|e| e.reset);
        let u = out.entry(name.to_string()).or_default();
        match s.kind {
            StepKind::Extract => u.source = true,
            StepKind::Freeze => {
                u.source = true;
                u.freeze = true;
            }
            StepKind::DryRun => {
                u.target = true;
                u.reset |= reset;
            }
            StepKind::Load => u.target = true,
            StepKind::Backup => {
                u.backup = Some(i);
                u.restore = plan.rb.rollback.restore_backup;
                u.users = true;
            }
            StepKind::Unfreeze => u.users = true,
            _ => {}
        }
    }
    out
}

/// Run every check the steps of `opts.mode` call for. Nothing is written to any database.
pub async fn run(plan: &Plan, opts: &Options) -> Report {
    let text = std::fs::read_to_string(&plan.path).unwrap_or_default();
    let mut out = Out {
        ctx: Ctx {
            file: &plan.path,
            text: &text,
        },
        file: plan.path.display().to_string(),
        findings: Vec::new(),
    };
    for (name, u) in uses(plan, opts.mode) {
        let Some(env) = plan.envs.get(&name) else {
            continue; // the lint already named an unknown environment
        };
        check_env(&mut out, plan, env, &u).await;
    }
    host::writable_places(&mut out, opts).await;
    Report::new(out.findings)
}

async fn check_env(out: &mut Out<'_>, plan: &Plan, env: &ResolvedEnv, u: &Uses) {
    let name = env.name.as_str();
    let url_key = format!("environments.{name}.url");
    if env.url.is_empty() {
        if u.source && !u.target && u.backup.is_none() {
            schema::extract_files(out, plan, name);
        } else {
            out.at(
                Status::Fail,
                "connect",
                Some(name),
                &url_key,
                format!("environment '{name}' has no URL, and the runbook writes to it"),
                "set its url (or the variable it names, with --var)",
            );
        }
        return;
    }
    if crate::runbook::format::is_odoo_url(&env.url) {
        odoo_env(out, plan, env, &url_key).await;
        return;
    }
    // The legacy must exist; a SQLite staging or production is created by the run.
    let must_exist = u.source;
    let db = match connect(env, must_exist).await {
        Ok(db) => db,
        Err(e) => {
            out.at(
                Status::Fail,
                "connect",
                Some(name),
                &url_key,
                explain(&e),
                "check the URL, that the server is up, and the password (password_env / password_file)",
            );
            return;
        }
    };
    let Some(db) = db else {
        // A SQLite file that does not exist yet: the run creates it and applies the schema.
        out.at(
            Status::Pass,
            "connect",
            Some(name),
            &url_key,
            format!(
                "{} does not exist yet: the run creates it",
                display_env(env)
            ),
            "",
        );
        if u.target {
            schema::targets(out, plan, env, None).await;
        }
        if let Some(step) = u.backup {
            host::backup_disk(out, plan, env, None, step).await;
        }
        host::sqlite_folder(out, env, &url_key);
        return;
    };
    let version = server_version(&db).await.unwrap_or_default();
    out.at(
        Status::Pass,
        "connect",
        Some(name),
        &url_key,
        format!("connected to {} ({version})", display_env(env)),
        "",
    );
    if u.source {
        schema::source_tables(out, plan, env, &db).await;
    }
    if u.target {
        schema::targets(out, plan, env, Some(&db)).await;
    }
    if u.users && !env.app_users.is_empty() && db.dialect() != Dialect::Sqlite {
        privileges::app_users(out, env, &db).await;
    }
    if u.freeze && db.dialect() == Dialect::MySql && env.app_users.is_empty() {
        out.at(
            Status::Fail,
            "app_users",
            Some(name),
            &format!("environments.{name}"),
            format!("environment '{name}' is MariaDB/MySQL and names no app_users: the freeze would have no accounts to revoke writes from"),
            "name the application's accounts: app_users = \"app@%\" (read_only is server-wide and does not bind privileged users)",
        );
    } else if u.freeze && db.dialect() == Dialect::MySql {
        privileges::app_users(out, env, &db).await;
    }
    if db.dialect() != Dialect::Sqlite {
        privileges::check(out, plan, env, &db, u).await;
    }
    if let Some(step) = u.backup {
        host::dump_tools(out, env, &db, step).await;
        host::backup_types(out, env, &db, step).await;
        host::backup_disk(out, plan, env, Some(&db), step).await;
    }
    if db.dialect() == Dialect::Sqlite && (u.target || u.freeze || u.backup.is_some()) {
        host::sqlite_folder(out, env, &url_key);
    }
    db.close().await;
}

/// An Odoo environment: reachable with its key, and every mapped field exists on its
/// model (`fields_get`). Nothing is written.
async fn odoo_env(out: &mut Out<'_>, plan: &Plan, env: &ResolvedEnv, url_key: &str) {
    let name = env.name.as_str();
    let target = match crate::steps::odoo::open(plan, env).await {
        Ok(t) => t,
        Err(e) => {
            out.at(
                Status::Fail,
                "connect",
                Some(name),
                url_key,
                explain(&e),
                "check the URL and the key (password_env)",
            );
            return;
        }
    };
    let mut tables = std::collections::BTreeMap::new();
    for n in &plan.order {
        let e = &plan.rb.entities[n];
        tables.insert(
            e.target.table.clone(),
            e.map.keys().cloned().collect::<Vec<_>>(),
        );
    }
    let prepare = crate::target::Prepare {
        tables,
        ..Default::default()
    };
    match target.prepare(&prepare).await {
        Ok(_) => out.at(
            Status::Pass,
            "connect",
            Some(name),
            url_key,
            format!("{}: reachable, every mapped field exists", target.name()),
            "",
        ),
        Err(e) => out.at(
            Status::Fail,
            "connect",
            Some(name),
            url_key,
            explain(&anyhow::Error::from(e)),
            "check the URL, the key (password_env) and the field names (Odoo's technical names)",
        ),
    }
    target.close().await;
}

/// Connect without creating anything: a SQLite file that does not exist is `None` (or an
/// error where it must exist), an existing one is opened read-only.
async fn connect(env: &ResolvedEnv, must_exist: bool) -> anyhow::Result<Option<Db>> {
    if Dialect::of_url(&env.url) != Some(Dialect::Sqlite) {
        return Db::connect(env).await.map(Some);
    }
    let path = sqlite_path(&env.url)
        .ok_or_else(|| anyhow::anyhow!("{} names no database file", env.url))?;
    if !path.exists() {
        if must_exist {
            anyhow::bail!(
                "environment '{}': the SQLite file {} does not exist",
                env.name,
                path.display()
            );
        }
        return Ok(None);
    }
    let pool = crate::db::sqlite_pool_ro(&path)
        .await
        .map_err(|e| e.context(format!("environment '{}'", env.name)))?;
    Ok(Some(Db::Sqlite(pool)))
}

async fn server_version(db: &Db) -> anyhow::Result<String> {
    let sql = match db {
        Db::Sqlite(_) => "SELECT 'SQLite ' || sqlite_version()",
        Db::Postgres(_) => "SELECT 'PostgreSQL ' || current_setting('server_version')",
        Db::MySql(_) => "SELECT VERSION()",
    };
    Ok(first(db, sql).await?.unwrap_or_default())
}

/// The first cell of the first row.
pub(crate) async fn first(db: &Db, sql: &str) -> anyhow::Result<Option<String>> {
    let mut v = None;
    db.for_each_row(sql, |c| {
        if v.is_none() {
            v = Some(c.first().cloned().flatten());
        }
        Ok(())
    })
    .await?;
    Ok(v.flatten())
}

/// Every row's cells (for small catalog queries).
pub(crate) async fn rows(db: &Db, sql: &str) -> anyhow::Result<Vec<Vec<String>>> {
    let mut v = Vec::new();
    db.for_each_row(sql, |c| {
        v.push(c.iter().map(|x| x.clone().unwrap_or_default()).collect());
        Ok(())
    })
    .await?;
    Ok(v)
}

/// A string literal for `db`'s SQL (MariaDB also treats a backslash as an escape).
pub(crate) fn lit(db: &Db, s: &str) -> String {
    let s = s.replace('\'', "''");
    match db {
        Db::MySql(_) => format!("'{}'", s.replace('\\', "\\\\")),
        _ => format!("'{s}'"),
    }
}

/// `a, b, c` with duplicates removed, in first-seen order.
pub(crate) fn join(items: impl IntoIterator<Item = String>) -> String {
    let mut seen = BTreeSet::new();
    items
        .into_iter()
        .filter(|i| seen.insert(i.clone()))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tms_pg() -> Plan {
        let path = std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/runbooks/tms-postgres.toml"
        ));
        crate::runbook::load(path, &[]).expect("the shipped runbook loads")
    }

    #[test]
    fn a_rehearsal_checks_only_what_extract_dry_run_and_validate_use() {
        let plan = tms_pg();
        let run = uses(&plan, RunMode::Run);
        let p = &run["production"];
        assert!(p.target && p.backup == Some(0) && p.restore && p.users && !p.reset);
        let l = &run["legacy"];
        assert!(l.source && l.freeze && !l.target);
        assert!(run["staging"].target && run["staging"].reset);
        let rehearse = uses(&plan, RunMode::Rehearse);
        assert!(!rehearse.contains_key("production"), "{rehearse:?}");
        assert!(!rehearse["legacy"].freeze && rehearse["legacy"].source);
    }

    #[test]
    fn a_resumed_run_is_checked_again_only_before_it_changed_anything() {
        let rec = |event| Record {
            seq: 1,
            ts: String::new(),
            run_id: "r".into(),
            event,
            prev_hash: String::new(),
            hash: String::new(),
        };
        let started = rec(Event::StepStarted {
            step: "backup".into(),
        });
        assert!(due_on_resume(std::slice::from_ref(&started)));
        let frozen = rec(Event::FreezeApplied {
            env: "legacy".into(),
            method: String::new(),
            watermark: Default::default(),
            revoked: Default::default(),
        });
        assert!(!due_on_resume(&[started, frozen]));
    }
}
