//! The runbook's Odoo side: entities loaded into Odoo models by external id, entities
//! derived from another's distinct values, and what `check` refuses for a target reached
//! only through Odoo's API (no SQL to fingerprint, no backup to restore).

use std::collections::BTreeMap;

use indexmap::IndexMap;

use super::format::{Entity, Lines, MapSpec, Runbook, StepKind, derived_file, is_odoo_url};
use super::lint::Ctx;
use super::{Diagnostic, ResolvedEnv};

/// Fill in what the file leaves implicit, after checking the shape it has to have:
/// a derived entity's columns, key and file; an Odoo entity's table (its model) and key
/// (`id`, the external id column). Runs before the general lint, which then sees every
/// entity as it sees a SQL one.
pub fn shape(ctx: &Ctx, rb: &mut Runbook, diags: &mut Vec<Diagnostic>) {
    let names: Vec<String> = rb.entities.keys().cloned().collect();
    for name in &names {
        let at = |k: &str| format!("entities.{name}.{k}");
        let e = &rb.entities[name];
        match &e.derive {
            None => {
                if e.source.file.is_empty() {
                    diags.push(ctx.diag(
                        &format!("entities.{name}"),
                        "missing field `source`".into(),
                        "add the key, e.g. source = { file = \"customers.csv\" }, or derive = { from = \"ENTITY\", distinct = [\"FIELD\"] }".into(),
                    ));
                }
                if e.columns.is_empty() {
                    diags.push(ctx.diag(
                        &format!("entities.{name}"),
                        "missing field `columns`".into(),
                        "add the key: the columns the extract carries; runbooks/tms.toml shows it in place".into(),
                    ));
                }
                if e.key.is_empty() {
                    diags.push(ctx.diag(
                        &format!("entities.{name}"),
                        "missing field `key`".into(),
                        "add the key; runbooks/tms.toml shows it in place".into(),
                    ));
                }
            }
            Some(d) => {
                for (k, set) in [
                    ("source", !e.source.file.is_empty()),
                    ("columns", !e.columns.is_empty()),
                    ("key", !e.key.is_empty()),
                ] {
                    if set {
                        diags.push(ctx.diag(
                            &at(k),
                            format!("a derived entity has no '{k}': its rows are the distinct values of {}", d.from),
                            "remove the key; derive.distinct names the fields".into(),
                        ));
                    }
                }
                if !e.scope.is_empty() || !e.validate.is_empty() || !e.cleanse.is_empty() {
                    diags.push(ctx.diag(
                        &at("derive"),
                        "a derived entity takes rows its source already scoped, cleansed and validated".into(),
                        format!("move scope, cleanse and validate rules to entity {}", d.from),
                    ));
                }
                match rb.entities.get(&d.from) {
                    None => diags.push(ctx.diag(
                        &at("derive.from"),
                        format!("unknown entity '{}'", d.from),
                        format!("known entities: {}", names.join(", ")),
                    )),
                    Some(src) if src.derive.is_some() => diags.push(ctx.diag(
                        &at("derive.from"),
                        format!("{} is itself derived", d.from),
                        "derive from an entity that has a source".into(),
                    )),
                    Some(src) => {
                        if d.distinct.is_empty() {
                            diags.push(ctx.diag(
                                &at("derive.distinct"),
                                "no field to take distinct values of".into(),
                                format!(
                                    "e.g. distinct = [\"{}\"]",
                                    src.columns.first().map(String::as_str).unwrap_or("make")
                                ),
                            ));
                        }
                        for (j, f) in d.distinct.iter().enumerate() {
                            if !src.columns.contains(f) {
                                diags.push(ctx.diag(
                                    &at(&format!("derive.distinct[{j}]")),
                                    format!("missing column '{f}' in entity {}", d.from),
                                    format!("columns of {}: {}", d.from, src.columns.join(", ")),
                                ));
                            }
                        }
                    }
                }
            }
        }
        let t = &e.target;
        match (&t.model, t.table.is_empty()) {
            (Some(_), false) => diags.push(ctx.diag(
                &at("target.table"),
                "give either 'table' (SQL) or 'model' (Odoo), not both".into(),
                "e.g. target = { model = \"res.partner\", external_id = \"tms_customer\" }".into(),
            )),
            (None, true) => diags.push(ctx.diag(
                &at("target"),
                "the target names no table (SQL) or model (Odoo)".into(),
                "e.g. target = { table = \"res_partner\", key = \"ref\" } or target = { model = \"res.partner\", external_id = \"tms_customer\" }".into(),
            )),
            _ => {}
        }
        if t.model.is_some() {
            if !t.key.is_empty() {
                diags.push(ctx.diag(
                    &at("target.key"),
                    "an Odoo target's key is its external id column `id`, built from external_id".into(),
                    "remove key; external_id = \"PREFIX\" names the records".into(),
                ));
            }
            match &t.external_id {
                None => diags.push(ctx.diag(
                    &at("target"),
                    "an Odoo target needs external_id, the prefix of its records' external ids".into(),
                    "e.g. external_id = \"tms_customer\": a re-run then updates, never duplicates".into(),
                )),
                Some(p) => xid_part_ok(ctx, &at("target.external_id"), p, diags),
            }
            if let Some(m) = &t.module {
                xid_part_ok(ctx, &at("target.module"), m, diags);
            }
            if e.map.contains_key("id") {
                diags.push(ctx.diag(
                    &at("map.id"),
                    "an Odoo entity's `id` column is built from its key and external_id".into(),
                    "remove map.id".into(),
                ));
            }
            if t.batch_size == Some(0) {
                diags.push(ctx.diag(
                    &at("target.batch_size"),
                    "a batch of 0 rows loads nothing".into(),
                    "use a number ≥ 1 (Odoo's own tools use 1000)".into(),
                ));
            }
            if let Some(g) = &t.group_by
                && !e.map.contains_key(g)
            {
                diags.push(ctx.diag(
                    &at("target.group_by"),
                    format!("group_by '{g}' is not a mapped column"),
                    format!(
                        "mapped: {}",
                        e.map.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        } else {
            for (k, set) in [
                ("external_id", t.external_id.is_some()),
                ("module", t.module.is_some()),
                ("batch_size", t.batch_size.is_some()),
                ("group_by", t.group_by.is_some()),
                ("post", t.post.is_some()),
                ("lines", e.lines.is_some()),
            ] {
                if set {
                    diags.push(ctx.diag(
                        &at(&format!("target.{k}")),
                        format!("'{k}' is only meaningful with 'model' (an Odoo target)"),
                        "remove it, or load into an Odoo model: target = { model = \"…\", external_id = \"…\" }".into(),
                    ));
                }
            }
        }
        if let (Some(l), true) = (&e.lines, t.model.is_some()) {
            lines_ok(ctx, name, e, l, diags);
        }
        for (col, spec) in &e.map {
            let MapSpec::Spec(m) = spec else { continue };
            let mk = at(&format!("map.{col}"));
            if let Some(p) = &m.external_id {
                if t.model.is_none() {
                    diags.push(ctx.diag(
                        &format!("{mk}.external_id"),
                        "external ids exist only in Odoo targets".into(),
                        "remove external_id, or load into an Odoo model".into(),
                    ));
                }
                if m.from.is_none() || m.lookup.is_some() || m.values.is_some() {
                    diags.push(ctx.diag(
                        &format!("{mk}.external_id"),
                        "external_id builds an id from 'from' alone".into(),
                        "e.g. { from = \"invoice_no\", external_id = \"tms_invoice_line\" }".into(),
                    ));
                }
                xid_part_ok(ctx, &format!("{mk}.external_id"), p, diags);
            }
            if let Some(l) = &m.lookup
                && let Some(le) = rb.entities.get(l)
            {
                if le.target.model.is_some() != t.model.is_some() {
                    diags.push(ctx.diag(
                        &format!("{mk}.lookup"),
                        format!("{name} and {l} load into different kinds of target (SQL and Odoo)"),
                        "a lookup resolves within one target: load both into Odoo models or both into SQL tables".into(),
                    ));
                }
                if t.model.is_some() && !col.ends_with("/id") {
                    diags.push(ctx.diag(
                        &mk,
                        format!("a lookup into Odoo gives {l}'s external id: the column must be a relation's `/id`"),
                        format!("name the column \"{}/id\"", col.trim_end_matches("/id")),
                    ));
                }
                if t.model.is_some() && m.column.is_some() {
                    diags.push(ctx.diag(
                        &format!("{mk}.column"),
                        "an Odoo relation is given by external id: there is no column to return".into(),
                        "remove column".into(),
                    ));
                }
                if let Some(d) = &le.derive {
                    // The derived entity's id is built from its distinct tuple: read here.
                    if m.from.is_some() {
                        diags.push(ctx.diag(
                            &format!("{mk}.from"),
                            format!(
                                "{l} is derived: its id is built from {}, read from this row",
                                d.distinct.join(", ")
                            ),
                            format!("write {{ lookup = \"{l}\" }} without 'from'"),
                        ));
                    }
                    let own: Vec<&str> = match &e.derive {
                        Some(od) => od.distinct.iter().map(String::as_str).collect(),
                        None => e.columns.iter().map(String::as_str).collect(),
                    };
                    for f in &d.distinct {
                        if !own.contains(&f.as_str()) {
                            diags.push(ctx.diag(
                                &format!("{mk}.lookup"),
                                format!("{l} is derived from '{f}', which {name} does not carry"),
                                format!("{name} needs the fields {}", d.distinct.join(", ")),
                            ));
                        }
                    }
                }
            }
        }
    }
    if !diags.is_empty() {
        return;
    }
    for name in &names {
        let from = rb.entities[name].derive.clone();
        let e: &mut Entity = &mut rb.entities[name];
        if let Some(d) = from {
            e.columns = d.distinct.clone();
            e.key = d.distinct[0].clone();
            e.source.file = derived_file(name);
        }
        if let Some(m) = &e.target.model {
            e.target.table = m.clone();
            e.target.key = "id".into();
        }
    }
}

/// An entity's `lines`: their columns name what the lines use, and the entity does not
/// also map the one2many field itself.
fn lines_ok(ctx: &Ctx, name: &str, e: &Entity, l: &Lines, diags: &mut Vec<Diagnostic>) {
    let at = |k: &str| format!("entities.{name}.lines.{k}");
    if l.source.file.is_empty() {
        diags.push(ctx.diag(
            &at("source"),
            "the lines need their own file".into(),
            "e.g. source = { file = \"invoice_lines.csv\" }".into(),
        ));
    }
    let mut used: Vec<(String, &str)> = vec![("key".into(), &l.key), ("parent".into(), &l.parent)];
    for (col, spec) in &l.map {
        let from = match spec {
            MapSpec::Field(f) => Some(f.as_str()),
            MapSpec::Spec(m) => m.from.as_deref(),
        };
        if let Some(f) = from {
            used.push((format!("map.{col}"), f));
        }
        if col == "id" {
            diags.push(ctx.diag(
                &at("map.id"),
                "a line's `id` is built from its key and external_id".into(),
                "remove map.id".into(),
            ));
        }
    }
    for (k, f) in used {
        if !l.columns.iter().any(|c| c == f) {
            diags.push(ctx.diag(
                &at(&k),
                format!("missing column '{f}' in the lines' columns"),
                format!("columns: {}", l.columns.join(", ")),
            ));
        }
    }
    xid_part_ok(ctx, &at("external_id"), &l.external_id, diags);
    let own = format!("{}/", l.field);
    if let Some(c) = e.map.keys().find(|c| c.starts_with(&own)) {
        diags.push(ctx.diag(
            &format!("entities.{name}.map.{c}"),
            format!(
                "{} comes from lines: the entity does not map it too",
                l.field
            ),
            "remove the column, or the lines".into(),
        ));
    }
}

/// An external id's prefix or module: letters, digits and `_` (a dot would split it).
fn xid_part_ok(ctx: &Ctx, key: &str, v: &str, diags: &mut Vec<Diagnostic>) {
    if v.is_empty() || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        diags.push(ctx.diag(
            key,
            format!("'{v}' cannot be part of an external id"),
            "use letters, digits and _ only, e.g. \"tms_customer\"".into(),
        ));
    }
}

/// How an environment is reached, as far as the runbook's steps and checks care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Sql,
    /// Odoo with a read-only SQL URL of its database.
    OdooWithSql,
    /// Odoo through its API alone.
    OdooApiOnly,
}

/// `vars` expand the environment's `sql_url` (an empty one means API-only).
pub fn reach(rb: &Runbook, vars: &IndexMap<String, String>, env: &ResolvedEnv) -> Reach {
    if !is_odoo_url(&env.url) {
        return Reach::Sql;
    }
    let sql = rb
        .environments
        .get(&env.name)
        .and_then(|e| e.sql_url.as_deref())
        .and_then(|s| super::expand_vars(s, vars).ok());
    match sql {
        Some(s) if !s.trim().is_empty() => Reach::OdooWithSql,
        _ => Reach::OdooApiOnly,
    }
}

/// What the environments' kinds allow: entities and the targets they load into agree,
/// and an API-only Odoo is asked for nothing it cannot do (SQL fingerprints, a backup
/// the tool takes, a restore).
pub fn lint_targets(
    ctx: &Ctx,
    rb: &Runbook,
    vars: &IndexMap<String, String>,
    envs: &IndexMap<String, ResolvedEnv>,
    diags: &mut Vec<Diagnostic>,
) {
    let odoo_entities = rb.entities.values().filter(|e| e.target.is_odoo()).count();
    let sql_entities = rb.entities.len() - odoo_entities;
    let reach_of = |env: &str| {
        envs.get(env)
            .filter(|e| !e.url.is_empty())
            .map(|e| (e, reach(rb, vars, e)))
    };
    for (i, s) in rb.steps.iter().enumerate() {
        let sk = |k: &str| format!("steps[{i}].{k}");
        let default_env = match s.kind {
            StepKind::Backup | StepKind::Load | StepKind::Verify | StepKind::Unfreeze => {
                "production"
            }
            StepKind::DryRun | StepKind::Validate => "staging",
            StepKind::Freeze | StepKind::Extract => "legacy",
            StepKind::SignOff | StepKind::Command => continue,
        };
        let env_name = s.env.as_deref().unwrap_or(default_env);
        let Some((env, r)) = reach_of(env_name) else {
            continue;
        };
        let key = if s.env.is_some() {
            sk("env")
        } else {
            sk("kind")
        };
        let odoo = r != Reach::Sql;
        match s.kind {
            StepKind::DryRun | StepKind::Load => {
                if odoo && sql_entities > 0 {
                    diags.push(ctx.diag(
                        &key,
                        format!("{} loads into Odoo ({}), but some entities name a SQL table", s.id, crate::db::redact_url(&env.url)),
                        "give every entity target = { model = \"…\", external_id = \"…\" }".into(),
                    ));
                } else if !odoo && odoo_entities > 0 {
                    diags.push(ctx.diag(
                        &key,
                        format!("{} loads into a SQL database, but some entities name an Odoo model", s.id),
                        "point the environment at Odoo (odoo+jsonrpc://LOGIN@HOST:PORT/DB or odoo+json2://HOST:PORT/DB)".into(),
                    ));
                }
            }
            StepKind::Backup if r == Reach::OdooApiOnly => diags.push(ctx.diag(
                &key,
                format!("environment {env_name} is reached only through Odoo's API: cutover cannot back it up"),
                format!("give environments.{env_name}.sql_url (a pg_dump of Odoo's database), or replace this step with a `command` step that takes the backup (an RDS snapshot, say)"),
            )),
            StepKind::Extract if odoo => diags.push(ctx.diag(
                &key,
                "the legacy system is extracted from CSV files or a SQL database, not from Odoo".into(),
                "point the legacy environment at the old database, or leave its url empty and supply CSV extracts".into(),
            )),
            StepKind::Freeze | StepKind::Unfreeze if odoo && env.app_users.is_empty() => diags.push(ctx.diag(
                &key,
                format!("closing Odoo environment {env_name} archives its users, but app_users lists none"),
                format!("set environments.{env_name}.app_users = \"login1,login2\" (the users to keep out during the load)"),
            )),
            StepKind::Validate | StepKind::Verify if r == Reach::OdooApiOnly => {
                for (j, c) in rb.checks.iter().enumerate() {
                    if let super::format::Check::Fingerprint { name, .. } = c {
                        diags.push(ctx.diag(
                            &format!("checks[{j}].target_sql"),
                            format!("check '{name}' runs SQL, but {} checks environment {env_name}, reached only through Odoo's API", s.id),
                            format!("give environments.{env_name}.sql_url (a read-only SQL URL of Odoo's database), or drop the check: counts and sums are read through the API"),
                        ));
                    }
                }
            }
            _ => {}
        }
    }
    // What the rollback can do to production.
    if let Some((_, r)) = reach_of("production") {
        if r == Reach::OdooApiOnly && rb.rollback.restore_backup {
            diags.push(ctx.diag(
                "rollback.restore_backup",
                "production is reached only through Odoo's API: there is no backup cutover can restore".into(),
                "set restore_backup = false and delete_loaded = true: the rollback then deletes what the run created, by its external ids".into(),
            ));
        }
        if rb.rollback.delete_loaded && r == Reach::Sql {
            diags.push(ctx.diag(
                "rollback.delete_loaded",
                "delete_loaded removes Odoo records by external id; production is a SQL database".into(),
                "use restore_backup = true for a SQL production".into(),
            ));
        }
        if rb.rollback.delete_loaded && rb.rollback.restore_backup {
            diags.push(ctx.diag(
                "rollback.delete_loaded",
                "give either restore_backup or delete_loaded: a restore already removes the run's records".into(),
                "keep restore_backup when a backup can be restored, delete_loaded when it cannot".into(),
            ));
        }
    }
    for (name, e) in &rb.environments {
        let odoo = envs.get(name).is_some_and(|r| is_odoo_url(&r.url));
        for (k, set) in [
            ("sql_url", e.sql_url.is_some()),
            ("context", e.context.is_some()),
            ("workers", e.workers.is_some()),
        ] {
            if set && !odoo {
                diags.push(ctx.diag(
                    &format!("environments.{name}.{k}"),
                    format!("'{k}' is only meaningful for an Odoo environment"),
                    "remove it, or point url at Odoo (odoo+jsonrpc://… or odoo+json2://…)".into(),
                ));
            }
        }
        if e.workers == Some(0) {
            diags.push(ctx.diag(
                &format!("environments.{name}.workers"),
                "0 workers load nothing".into(),
                "use 1 or more".into(),
            ));
        }
        if let Some(s) = &e.sql_url
            && super::url_has_password(s)
        {
            diags.push(ctx.diag(
                &format!("environments.{name}.sql_url"),
                "a password is written into the runbook".into(),
                super::SECRET_HINT.into(),
            ));
        }
        if odoo
            && let Some(r) = envs.get(name)
            && r.url.starts_with("odoo+jsonrpc")
            && !r
                .url
                .split_once("://")
                .is_some_and(|(_, rest)| rest.split('/').next().unwrap_or("").contains('@'))
        {
            diags.push(ctx.diag(
                &format!("environments.{name}.url"),
                "JSON-RPC logs in with a login: odoo+jsonrpc://LOGIN@HOST:PORT/DB".into(),
                "add the login before the host (its password or API key comes from password_env)".into(),
            ));
        }
        if odoo && e.password_env.is_none() && e.password_file.is_none() {
            diags.push(ctx.diag(
                &format!("environments.{name}.url"),
                "an Odoo environment needs its API key from password_env or password_file".into(),
                "e.g. password_env = \"ODOO_API_KEY\"".into(),
            ));
        }
    }
}

/// The external id of a row: `<module>.<prefix>_<part>`. A single plain value (letters,
/// digits, `_`, `-`) is used as it is (`C0000001`); anything else (spaces, punctuation, line
/// breaks, several fields) becomes a readable slug plus a digest of the exact values, so
/// that two different texts never share an id and the same text always gets the same one.
pub fn external_id(module: &str, prefix: &str, values: &[&str]) -> String {
    let plain = |v: &str| {
        !v.is_empty()
            && v.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let part = match values {
        [v] if plain(v) => v.to_string(),
        _ => {
            use sha2::{Digest, Sha256};
            let mut h = Sha256::new();
            for v in values {
                h.update(v.as_bytes());
                h.update([0x1f]);
            }
            let digest = hex::encode(&h.finalize()[..6]);
            let mut slug = String::new();
            for c in values.join("_").chars() {
                if c.is_ascii_alphanumeric() {
                    slug.push(c.to_ascii_lowercase());
                } else if !slug.ends_with('_') {
                    slug.push('_');
                }
                if slug.len() >= 40 {
                    break;
                }
            }
            let slug = slug.trim_matches('_');
            if slug.is_empty() {
                digest
            } else {
                format!("{slug}_{digest}")
            }
        }
    };
    format!("{module}.{prefix}_{part}")
}

/// What the runbook asks of the Odoo target of one environment, in the target's terms:
/// everything the Odoo target needs from the runbook, gathered in one place.
#[derive(Debug, Clone, PartialEq)]
pub struct OdooSettings {
    /// Rows per `load` call: the entity's `batch_size`, else `settings.batch_size`.
    pub batch_size: BTreeMap<String, usize>,
    /// The environment's context (default `{ tracking_disable = true }`).
    pub context: serde_json::Map<String, serde_json::Value>,
    pub workers: usize,
    /// Per model, the column whose value keeps rows in one batch.
    pub group_by: BTreeMap<String, String>,
    /// Per model, the method called on loaded records (`action_post`).
    pub post: BTreeMap<String, String>,
    /// What every external id of this run starts with (`__import__.tms_`): read-back and the
    /// rollback are scoped by it.
    pub xmlid_prefix: Option<String>,
    /// Models in load order (parents first); a rollback deletes in the reverse order.
    pub models: Vec<String>,
}

/// The Odoo settings of environment `env`, from a linted runbook.
pub fn settings(plan: &super::Plan, env: &str) -> OdooSettings {
    let rb = &plan.rb;
    let ctx = rb
        .environments
        .get(env)
        .map(|e| e.odoo_context())
        .unwrap_or_default();
    let context = match serde_json::to_value(&ctx) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => serde_json::Map::new(),
    };
    let mut out = OdooSettings {
        batch_size: BTreeMap::new(),
        context,
        workers: rb
            .environments
            .get(env)
            .and_then(|e| e.workers)
            .unwrap_or(1),
        group_by: BTreeMap::new(),
        post: BTreeMap::new(),
        xmlid_prefix: None,
        models: Vec::new(),
    };
    let mut prefixes: Vec<String> = Vec::new();
    for name in &plan.order {
        let t = &rb.entities[name].target;
        let Some(model) = &t.model else { continue };
        out.models.push(model.clone());
        out.batch_size.insert(
            model.clone(),
            t.batch_size.unwrap_or(rb.settings.batch_size),
        );
        if let Some(g) = &t.group_by {
            out.group_by.insert(model.clone(), g.clone());
        }
        if let Some(p) = &t.post {
            out.post.insert(model.clone(), p.clone());
        }
        if let Some(x) = &t.external_id {
            prefixes.push(format!("{}.{x}_", t.xid_module()));
        }
        for spec in rb.entities[name].map.values() {
            if let MapSpec::Spec(m) = spec
                && let Some(x) = &m.external_id
            {
                prefixes.push(format!("{}.{x}_", t.xid_module()));
            }
        }
    }
    out.xmlid_prefix = common_prefix(&prefixes).filter(|p| p.contains('.') && !p.ends_with('.'));
    out
}

/// The longest prefix every string shares (on char boundaries); `None` for no strings.
fn common_prefix(all: &[String]) -> Option<String> {
    let first = all.first()?;
    let mut end = first.len();
    for s in &all[1..] {
        end = first
            .char_indices()
            .zip(s.chars())
            .find(|((_, a), b)| a != b)
            .map(|((i, _), _)| i)
            .unwrap_or(end.min(s.len()))
            .min(end);
    }
    Some(first[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_keys_read_as_they_are() {
        assert_eq!(
            external_id("__import__", "tms_customer", &["C0000001"]),
            "__import__.tms_customer_C0000001"
        );
    }

    #[test]
    fn free_text_gets_a_stable_distinct_id() {
        let a = external_id(
            "__import__",
            "tms_model",
            &["Volvo", "FH16, \"Globetrotter\"\nXL"],
        );
        let b = external_id(
            "__import__",
            "tms_model",
            &["Volvo", "FH16, \"Globetrotter\"\nXL"],
        );
        let c = external_id(
            "__import__",
            "tms_model",
            &["Volvo", "FH16, \"Globetrotter\" XL"],
        );
        // Same slug, different text: the digest keeps them apart.
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert!(
            a.starts_with("__import__.tms_model_volvo_fh16_globetrotter_xl_"),
            "{a}"
        );
        // Exactly one dot: Odoo splits module and name on it.
        assert_eq!(a.matches('.').count(), 1);
        // Field boundaries count: ("ab","c") is not ("a","bc").
        assert_ne!(
            external_id("m", "p", &["ab", "c"]),
            external_id("m", "p", &["a", "bc"])
        );
        // Text with nothing readable still has an id.
        assert!(external_id("m", "p", &["ÆØÅ"]).starts_with("m.p_"));
    }
    /// The reference Odoo runbook, its key read from a file instead of the environment.
    fn odoo_plan() -> super::super::Plan {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("runbooks/tms-odoo.toml");
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("key");
        std::fs::write(&key, "k").unwrap();
        let text = std::fs::read_to_string(&path).unwrap().replace(
            "password_env = \"ODOO_API_KEY\"",
            &format!("password_file = \"{}\"", key.display()),
        );
        super::super::load_str(&path, &text, &[]).expect("tms-odoo.toml is valid")
    }

    #[test]
    fn the_target_gets_what_the_runbook_asks() {
        let plan = odoo_plan();
        let s = settings(&plan, "production");
        assert_eq!(s.xmlid_prefix.as_deref(), Some("__import__.tms_"));
        assert_eq!(s.workers, 2);
        assert_eq!(
            s.context.get("tracking_disable"),
            Some(&serde_json::Value::Bool(true))
        );
        assert_eq!(
            s.context.get("mail_create_nolog"),
            Some(&serde_json::Value::Bool(true))
        );
        assert_eq!(
            s.group_by.get("account.move").map(String::as_str),
            Some("partner_id/id")
        );
        assert_eq!(
            s.post.get("account.move").map(String::as_str),
            Some("action_post")
        );
        assert_eq!(s.batch_size.get("res.partner"), Some(&1000));
        let at = |m: &str| s.models.iter().position(|x| x == m).unwrap();
        assert!(at("fleet.vehicle.model.brand") < at("fleet.vehicle.model"));
        assert!(at("fleet.vehicle.model") < at("fleet.vehicle"));
        assert!(at("res.partner") < at("account.move"));
        // Staging: the default context, one worker.
        let s = settings(&plan, "staging");
        assert_eq!(s.workers, 1);
        assert_eq!(s.context.len(), 1);
    }

    /// Each row's relations name exactly the external ids the rows they point at are
    /// loaded under, free text included.
    #[test]
    fn relations_name_the_ids_their_parents_are_loaded_under() {
        use crate::engine::rules::{Compiled, RunState, SqlValue, Verdict};
        let plan = odoo_plan();
        let all = &plan.rb.entities;
        let row = |entity: &str, fields: &[&str]| -> Vec<(String, SqlValue)> {
            let c = Compiled::new(entity, &all[entity], all).unwrap();
            let refs = std::collections::HashMap::from([(
                "customers".to_string(),
                std::sync::Arc::new(["C0000696"].into_iter().collect::<crate::keyset::KeySet>()),
            )]);
            match c.process(
                fields.iter().map(|f| f.to_string()).collect(),
                &mut RunState::default(),
                &refs,
            ) {
                Verdict::Valid { row, .. } => c.target_columns.iter().cloned().zip(row).collect(),
                Verdict::Rejected { issues, .. } => panic!("{entity}: {issues:?}"),
                Verdict::OutOfScope => panic!("{entity}: out of scope"),
            }
        };
        let get = |r: &[(String, SqlValue)], col: &str| match r.iter().find(|(c, _)| c == col) {
            Some((_, SqlValue::Text(t))) => t.clone(),
            other => panic!("{col}: {other:?}"),
        };
        let model = "FH, \"XL\"\nlong";
        let brand = row("vehicle_brands", &["Renault Trucks"]);
        let vmodel = row("vehicle_models", &["Renault Trucks", model]);
        let vehicle = row(
            "vehicles",
            &[
                "V1",
                "AB-1",
                "K8FU5RYA2GW0H7HKG",
                "Renault Trucks",
                model,
                "2019",
                "1400",
            ],
        );
        assert_eq!(get(&vmodel, "brand_id/id"), get(&brand, "id"));
        assert_eq!(get(&vehicle, "model_id/id"), get(&vmodel, "id"));
        assert_eq!(get(&vehicle, "id"), "__import__.tms_vehicle_V1");
        assert_eq!(get(&vmodel, "name"), model);

        let customer = row(
            "customers",
            &[
                "C0000696",
                "Haulage Ltd",
                "a@b.co",
                "",
                "Leeds",
                "2020-01-02",
                "0",
                "A",
            ],
        );
        let invoice = row(
            "open_invoices",
            &[
                "INV-1",
                "C0000696",
                "2026-02-27",
                "USD",
                "100.00",
                "0.00",
                "100.00",
                "40.50",
                "partial",
            ],
        );
        assert_eq!(get(&customer, "id"), "__import__.tms_customer_C0000696");
        assert_eq!(get(&invoice, "partner_id/id"), get(&customer, "id"));
        assert_eq!(get(&invoice, "id"), "__import__.tms_invoice_INV-1");
        assert_eq!(
            get(&invoice, "invoice_line_ids/id"),
            "__import__.tms_invoice_line_INV-1"
        );
        assert_eq!(get(&invoice, "invoice_line_ids/tax_ids"), "");
        assert_eq!(get(&invoice, "move_type"), "out_invoice");
        // The line carries the open amount, exactly.
        let price = invoice
            .iter()
            .find(|(c, _)| c == "invoice_line_ids/price_unit")
            .unwrap();
        assert_eq!(price.1, SqlValue::Dec("40.50".parse().unwrap()));
    }
}
