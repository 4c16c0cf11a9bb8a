//! Semantic checks (`cutover check`): every name the runbook uses must point at something
//! that exists, and entity dependencies must form no cycle.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::path::Path;

use rust_decimal::Decimal;

use super::format::{Check, MapSpec, Runbook, StepKind, ValidateRule};
use super::{Diagnostic, locate};

pub struct Ctx<'a> {
    pub file: &'a Path,
    pub text: &'a str,
}

impl Ctx<'_> {
    pub fn diag(&self, key: &str, message: String, hint: String) -> Diagnostic {
        let (line, column) = locate::offset_of(self.text, key)
            .map(|o| locate::line_col(self.text, o))
            .unwrap_or((1, 1));
        Diagnostic {
            file: self.file.to_path_buf(),
            line,
            column,
            key: key.to_string(),
            message,
            hint,
        }
    }
}

/// The regex crate's multi-line syntax error as one line: its last line says what is wrong.
fn regex_why(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(&text)
        .trim()
        .trim_start_matches("error: ")
        .to_string()
}

pub const DATE_FORMATS: &[&str] = &[
    "YYYY-MM-DD",
    "DD/MM/YYYY",
    "MM/DD/YYYY",
    "DD.MM.YYYY",
    "YYYYMMDD",
];
/// Each entity loading at once holds a rules thread and a database connection.
const MAX_ENTITY_CONCURRENCY: usize = 16;
const COMPARE_OPS: &[&str] = &["<", "<=", ">", ">=", "=", "!="];

/// Each entity's direct dependencies (depends_on, reference, lookup, in_scope_of).
pub type EntityDeps = BTreeMap<String, BTreeSet<String>>;

/// Runs every check, pushing diagnostics; returns the entity load order and each entity's
/// dependencies.
pub fn lint(ctx: &Ctx, rb: &Runbook, diags: &mut Vec<Diagnostic>) -> (Vec<String>, EntityDeps) {
    let names: Vec<&str> = rb.entities.keys().map(String::as_str).collect();
    let known = |n: &str| rb.entities.contains_key(n);
    let list = names.join(", ");

    let mut deps: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (name, e) in &rb.entities {
        let at = |k: &str| format!("entities.{name}.{k}");
        let cols: HashSet<&str> = e.columns.iter().map(String::as_str).collect();
        let col_hint = || format!("columns of {name}: {}", e.columns.join(", "));
        let need_col = |key: String, field: &str, diags: &mut Vec<Diagnostic>| {
            if !cols.contains(field) {
                diags.push(ctx.diag(
                    &key,
                    format!("missing column '{field}' in entity {name}"),
                    col_hint(),
                ));
            }
        };
        if cols.len() != e.columns.len() {
            diags.push(ctx.diag(
                &at("columns"),
                "a column is listed twice".into(),
                col_hint(),
            ));
        }
        need_col(at("key"), &e.key, diags);
        if let Some(esc) = &e.source.escape
            && (esc.len() != 1 || matches!(esc.as_bytes()[0], b'"' | b',' | b'\r' | b'\n'))
        {
            diags.push(ctx.diag(
                &at("source.escape"),
                format!("escape = {esc:?} is not one character other than '\"', ',' or a line break"),
                "write escape = \"\\\\\" for an export that escapes quotes with a backslash (MySQL's \\\"), or leave it out for plain CSV (quotes doubled as \"\")".into(),
            ));
        }
        let d = deps.entry(name.as_str()).or_default();
        for (i, dep) in e.depends_on.iter().enumerate() {
            if !known(dep) {
                diags.push(ctx.diag(
                    &at(&format!("depends_on[{i}]")),
                    format!("unknown entity '{dep}'"),
                    format!("known entities: {list}"),
                ));
            } else {
                d.insert(dep.as_str());
            }
        }
        for (i, s) in e.scope.iter().enumerate() {
            let sk = |k: &str| at(&format!("scope[{i}].{k}"));
            need_col(sk("field"), &s.field, diags);
            lint_scope(ctx, name, e, s, &sk, diags);
            if let Some(of) = &s.in_scope_of {
                if of == name {
                    diags.push(ctx.diag(
                        &sk("in_scope_of"),
                        format!("entity {name} cannot scope by its own rows"),
                        format!("name another entity; known entities: {list}"),
                    ));
                } else if !known(of) {
                    diags.push(ctx.diag(
                        &sk("in_scope_of"),
                        format!("unknown entity '{of}' in in_scope_of"),
                        format!("known entities: {list}"),
                    ));
                } else {
                    // Its rows must have been read first: a dependency, as for a reference.
                    deps.entry(name.as_str()).or_default().insert(of.as_str());
                }
            }
        }
        for (i, c) in e.cleanse.iter().enumerate() {
            for (j, f) in c.fields.iter().enumerate() {
                need_col(at(&format!("cleanse[{i}].fields[{j}]")), f, diags);
            }
        }
        for (i, r) in e.validate.iter().enumerate() {
            let rk = |k: &str| at(&format!("validate[{i}].{k}"));
            match r {
                ValidateRule::Sum { fields, equals } => {
                    for (j, f) in fields.iter().enumerate() {
                        need_col(rk(&format!("fields[{j}]")), f, diags);
                    }
                    need_col(rk("equals"), equals, diags);
                }
                ValidateRule::Compare { field, op, other } => {
                    need_col(rk("field"), field, diags);
                    need_col(rk("other"), other, diags);
                    if !COMPARE_OPS.contains(&op.as_str()) {
                        diags.push(ctx.diag(
                            &rk("op"),
                            format!("unknown comparison '{op}'"),
                            format!("use one of {}", COMPARE_OPS.join(" ")),
                        ));
                    }
                }
                other => {
                    for f in other.fields() {
                        need_col(rk("field"), f, diags);
                    }
                }
            }
            match r {
                ValidateRule::Reference { entity, .. } => {
                    if !known(entity) {
                        diags.push(ctx.diag(
                            &rk("entity"),
                            format!("unknown entity '{entity}'"),
                            format!("known entities: {list}"),
                        ));
                    } else {
                        deps.entry(name.as_str())
                            .or_default()
                            .insert(entity.as_str());
                    }
                }
                ValidateRule::Datetime {
                    formats, timezone, ..
                } => {
                    if formats.is_empty() {
                        diags.push(ctx.diag(
                            &rk("formats"),
                            "a datetime rule needs at least one format".into(),
                            format!(
                                "e.g. formats = [\"YYYY-MM-DD HH:mm:ss\"], from the tokens {}",
                                crate::datetime::TOKENS
                            ),
                        ));
                    }
                    for (j, f) in formats.iter().enumerate() {
                        if let Err(why) = crate::datetime::DtFormat::parse(f) {
                            diags.push(ctx.diag(
                                &rk(&format!("formats[{j}]")),
                                format!("invalid datetime format: {why}"),
                                format!(
                                    "build it from {} and separators, e.g. \"DD/MM/YYYY HH:mm\"",
                                    crate::datetime::TOKENS
                                ),
                            ));
                        }
                    }
                    if let Err(why) = crate::datetime::SourceZone::parse(timezone) {
                        diags.push(ctx.diag(
                            &rk("timezone"),
                            why,
                            "the zone the source writes its local times in, e.g. \"Europe/Paris\", \"+02:00\" or \"UTC\"".into(),
                        ));
                    }
                }
                ValidateRule::Date { formats, .. } => {
                    for (j, f) in formats.iter().enumerate() {
                        if !DATE_FORMATS.contains(&f.as_str()) {
                            diags.push(ctx.diag(
                                &rk(&format!("formats[{j}]")),
                                format!("unknown date format '{f}'"),
                                format!("supported: {}", DATE_FORMATS.join(", ")),
                            ));
                        }
                    }
                }
                ValidateRule::Decimal { min, max, .. } => {
                    for (k, v) in [("min", min), ("max", max)] {
                        if let Some(v) = v
                            && v.parse::<Decimal>().is_err()
                        {
                            diags.push(ctx.diag(
                                &rk(k),
                                format!("'{v}' is not a decimal"),
                                "write it as a quoted decimal, e.g. \"0\" or \"0.01\"".into(),
                            ));
                        }
                    }
                }
                ValidateRule::Pattern { regex, .. } => {
                    if let Err(e) = regex::Regex::new(regex) {
                        diags.push(ctx.diag(
                            &rk("regex"),
                            format!("invalid regular expression '{regex}': {}", regex_why(&e)),
                            "fix the expression (in TOML, a backslash is written \\\\ inside \"…\", or use '…'); see https://docs.rs/regex for the syntax".into(),
                        ));
                    }
                }
                _ => {}
            }
        }
        let mut mapped_key = false;
        for (col, spec) in &e.map {
            let mk = at(&format!("map.{col}"));
            if *col == e.target.key {
                mapped_key = true;
            }
            match spec {
                MapSpec::Field(f) => need_col(mk, f, diags),
                MapSpec::Spec(t) => {
                    // A lookup into a derived entity reads that entity's distinct fields.
                    let derived_lookup = t
                        .lookup
                        .as_ref()
                        .and_then(|l| rb.entities.get(l))
                        .is_some_and(|le| le.derive.is_some());
                    match (&t.from, &t.value) {
                        (Some(f), None) => need_col(mk.clone(), f, diags),
                        (None, Some(_)) => {}
                        (None, None) if derived_lookup => {}
                        _ => diags.push(ctx.diag(
                            &mk,
                            "give exactly one of 'from' or 'value'".into(),
                            "e.g. { from = \"state\", values = { open = \"not_paid\" } }".into(),
                        )),
                    }
                    if let Some(l) = &t.lookup {
                        if !known(l) {
                            diags.push(ctx.diag(
                                &mk,
                                format!("unknown entity '{l}' in lookup"),
                                format!("known entities: {list}"),
                            ));
                        } else {
                            deps.entry(name.as_str()).or_default().insert(l.as_str());
                            lint_lookup(ctx, rb, col, l, t, &mk, diags);
                        }
                    }
                    let only_with = |key: &str, set: bool, needs: &str, example: &str| {
                        set.then(|| {
                            ctx.diag(
                                &format!("{mk}.{key}"),
                                format!("'{key}' is only meaningful with '{needs}'"),
                                example.to_string(),
                            )
                        })
                    };
                    diags.extend(only_with(
                        "default",
                        t.default.is_some() && t.values.is_none(),
                        "values",
                        "e.g. { from = \"state\", values = { open = \"not_paid\" }, default = \"unknown\" }",
                    ));
                    diags.extend(only_with(
                        "column",
                        t.column.is_some() && t.lookup.is_none(),
                        "lookup",
                        "e.g. { from = \"customer_id\", lookup = \"customers\", column = \"customer_pk\" }",
                    ));
                    diags.extend(only_with(
                        "allow_empty",
                        t.allow_empty && t.lookup.is_none(),
                        "lookup",
                        "an empty plain field already loads as NULL; allow_empty makes an empty lookup value NULL",
                    ));
                    if t.values.is_some() && t.lookup.is_some() {
                        diags.push(ctx.diag(
                            &mk,
                            "give either 'values' or 'lookup', not both".into(),
                            "a lookup returns the referenced row's column; values translate text".into(),
                        ));
                    }
                }
            }
        }
        // An Odoo entity's key column (`id`) is built from its external id prefix.
        if !mapped_key && !e.target.is_odoo() {
            diags.push(ctx.diag(
                &at("target.key"),
                format!("target key column '{}' is not mapped", e.target.key),
                format!(
                    "add {} = \"{}\" under [entities.{name}.map]",
                    e.target.key, e.key
                ),
            ));
        }
        if let Some(p) = e.max_reject_pct
            && !(0.0..=100.0).contains(&p)
        {
            diags.push(ctx.diag(
                &at("max_reject_pct"),
                format!("{p} is not a percentage"),
                "use a number from 0 to 100".into(),
            ));
        }
        // Target columns must exist in every dialect's DDL the runbook carries.
        for (dialect, ddl) in [
            ("sqlite", &rb.schema.sqlite),
            ("postgres", &rb.schema.postgres),
            ("mysql", &rb.schema.mysql),
        ] {
            let Some(ddl) = ddl else { continue };
            let tables = ddl_tables(ddl);
            match tables.get(&e.target.table.to_ascii_lowercase()) {
                None => diags.push(ctx.diag(
                    &at("target.table"),
                    format!(
                        "table '{}' is not created by schema.{dialect}",
                        e.target.table
                    ),
                    format!(
                        "tables in schema.{dialect}: {}",
                        tables.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some(tcols) => {
                    for col in e.map.keys().chain(std::iter::once(&e.target.key)) {
                        if !tcols.contains(&col.to_ascii_lowercase()) {
                            diags.push(ctx.diag(
                                &at(&format!("map.{col}")),
                                format!(
                                    "missing column '{col}' in table {} of schema.{dialect}",
                                    e.target.table
                                ),
                                format!(
                                    "columns: {}",
                                    tcols.iter().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            ));
                        }
                    }
                }
            }
        }
    }

    let order = match topo_order(&names, &deps) {
        Ok(o) => o,
        Err(cycle) => {
            diags.push(
                ctx.diag(
                    &format!("entities.{}.depends_on", cycle[0]),
                    format!("cyclic dependency: {}", cycle.join(" → ")),
                    "an entity cannot depend (through depends_on, reference or lookup) on itself"
                        .into(),
                ),
            );
            names.iter().map(|s| s.to_string()).collect()
        }
    };

    for (i, c) in rb.checks.iter().enumerate() {
        let ck = |k: &str| format!("checks[{i}].{k}");
        let ent = |key: String, n: &str, diags: &mut Vec<Diagnostic>| -> bool {
            if known(n) {
                true
            } else {
                diags.push(ctx.diag(
                    &key,
                    format!("unknown entity '{n}'"),
                    format!("known entities: {list}"),
                ));
                false
            }
        };
        match c {
            Check::Counts { entities } => {
                for (j, n) in entities.iter().enumerate() {
                    ent(ck(&format!("entities[{j}]")), n, diags);
                }
            }
            Check::Sum {
                entity,
                field,
                column,
                currency,
                currency_column,
            } => {
                if ent(ck("entity"), entity, diags) {
                    let e = &rb.entities[entity];
                    if !e.columns.contains(field) {
                        diags.push(ctx.diag(
                            &ck("field"),
                            format!("missing column '{field}' in entity {entity}"),
                            format!("columns: {}", e.columns.join(", ")),
                        ));
                    }
                    // Odoo reads sums back by field, computed ones included (amount_total).
                    if !e.map.contains_key(column) && !e.target.is_odoo() {
                        diags.push(ctx.diag(
                            &ck("column"),
                            format!("column '{column}' is not mapped for {entity}"),
                            format!(
                                "mapped: {}",
                                e.map.keys().cloned().collect::<Vec<_>>().join(", ")
                            ),
                        ));
                    }
                    if let Some(cur) = currency {
                        if !e.columns.contains(cur) {
                            diags.push(ctx.diag(
                                &ck("currency"),
                                format!("currency field '{cur}' is not a column of entity {entity}"),
                                format!(
                                    "name the source column holding the ISO currency code; columns: {}",
                                    e.columns.join(", ")
                                ),
                            ));
                        }
                        let tcol = currency_column.as_ref().unwrap_or(cur);
                        if !e.map.contains_key(tcol) {
                            diags.push(ctx.diag(
                                &ck(if currency_column.is_some() {
                                    "currency_column"
                                } else {
                                    "currency"
                                }),
                                format!("currency column '{tcol}' is not mapped for {entity}"),
                                format!(
                                    "set currency_column to the target column holding the currency; mapped: {}",
                                    e.map.keys().cloned().collect::<Vec<_>>().join(", ")
                                ),
                            ));
                        }
                    } else if let Some(cc) = currency_column {
                        diags.push(ctx.diag(
                            &ck("currency_column"),
                            format!("currency_column '{cc}' without currency"),
                            "also name the source field holding the currency: currency = \"FIELD\"".into(),
                        ));
                    }
                }
            }
            Check::Fingerprint { entity, source, .. } => {
                if ent(ck("entity"), entity, diags) {
                    let e = &rb.entities[entity];
                    for (j, f) in source.iter().enumerate() {
                        if !e.columns.contains(f) {
                            diags.push(ctx.diag(
                                &ck(&format!("source[{j}]")),
                                format!("missing column '{f}' in entity {entity}"),
                                format!("columns: {}", e.columns.join(", ")),
                            ));
                        }
                    }
                }
            }
        }
    }

    for (name, g) in &rb.gates {
        lint_gate(ctx, name, g, diags);
    }

    let mut ids = HashSet::new();
    for (i, s) in rb.steps.iter().enumerate() {
        let sk = |k: &str| format!("steps[{i}].{k}");
        if !ids.insert(s.id.as_str()) {
            diags.push(ctx.diag(
                &sk("id"),
                format!("step id '{}' is used twice", s.id),
                "give every step its own id".into(),
            ));
        }
        let env_needed = match s.kind {
            StepKind::Backup | StepKind::Load | StepKind::Verify | StepKind::Unfreeze => {
                Some("production")
            }
            StepKind::DryRun | StepKind::Validate => Some("staging"),
            StepKind::Freeze | StepKind::Extract => Some("legacy"),
            StepKind::SignOff | StepKind::Command => None,
        };
        if let Some(default_env) = env_needed {
            let env = s.env.as_deref().unwrap_or(default_env);
            if !rb.environments.contains_key(env) {
                diags.push(ctx.diag(
                    &if s.env.is_some() {
                        sk("env")
                    } else {
                        sk("kind")
                    },
                    format!("unknown environment '{env}'"),
                    format!(
                            "environments: {}",
                            rb.environments
                                .keys()
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                ));
            }
        }
        if s.kind == StepKind::SignOff {
            match &s.gate {
                None => diags.push(ctx.diag(
                    &sk("kind"),
                    "a sign_off step needs gate = \"NAME\"".into(),
                    "declare the gate under [gates.NAME]".into(),
                )),
                Some(g) if !rb.gates.contains_key(g) => diags.push(ctx.diag(
                    &sk("gate"),
                    format!("unknown gate '{g}'"),
                    format!(
                        "gates: {}",
                        rb.gates.keys().cloned().collect::<Vec<_>>().join(", ")
                    ),
                )),
                _ => {}
            }
        }
        match (s.kind, &s.run) {
            (StepKind::Command, None) => diags.push(ctx.diag(
                &sk("kind"),
                "a command step needs run = \"SHELL COMMAND\"".into(),
                "e.g. run = \"aws rds create-db-snapshot …\", timeout = \"10m\"".into(),
            )),
            (k, Some(_)) if k != StepKind::Command => diags.push(ctx.diag(
                &sk("run"),
                "only a command step runs a shell command".into(),
                "set kind = \"command\" or remove run".into(),
            )),
            _ => {}
        }
        if let Some(t) = &s.timeout
            && parse_duration(t).is_none()
        {
            diags.push(ctx.diag(
                &sk("timeout"),
                format!("'{t}' is not a duration"),
                "write e.g. \"90s\", \"10m\", \"1h30m\"".into(),
            ));
        }
        if let Some(p) = &s.planned
            && parse_duration(p).is_none()
        {
            diags.push(ctx.diag(
                &sk("planned"),
                format!("'{p}' is not a duration"),
                "write e.g. \"90s\", \"10m\", \"1h30m\"".into(),
            ));
        }
    }
    if rb.settings.batch_size == 0 {
        diags.push(ctx.diag(
            "settings.batch_size",
            "batch_size = 0: a batch must hold at least one row".into(),
            "write a positive number of rows per committed batch, e.g. batch_size = 1000".into(),
        ));
    }
    if !(1..=MAX_ENTITY_CONCURRENCY).contains(&rb.settings.entity_concurrency) {
        diags.push(
            ctx.diag(
                "settings.entity_concurrency",
                format!(
                    "entity_concurrency = {} is not between 1 and {MAX_ENTITY_CONCURRENCY}",
                    rb.settings.entity_concurrency
                ),
                "entities loaded at once, each with its own rules thread and connection: 1 loads \
             them one after another, the default 2 suits a 2-core machine"
                    .into(),
            ),
        );
    }
    for (key, v, hint) in [
        (
            "settings.workers",
            rb.settings.workers.unwrap_or(1),
            "write how many threads check rows, e.g. workers = 2, or leave it out for one per core",
        ),
        (
            "settings.write_concurrency",
            rb.settings.write_concurrency,
            "write how many batches may be in flight at once, e.g. write_concurrency = 2",
        ),
    ] {
        if v == 0 {
            let name = key.trim_start_matches("settings.");
            diags.push(ctx.diag(
                key,
                format!("{name} = 0: at least one is needed"),
                hint.into(),
            ));
        }
    }
    if rb.settings.key_memory_mb == 0 || rb.settings.key_memory_mb > 65536 {
        diags.push(ctx.diag(
            "settings.key_memory_mb",
            format!(
                "key_memory_mb = {}: the memory for key sets is between 1 and 65536 MiB",
                rb.settings.key_memory_mb
            ),
            "leave it out for the default (8), or write e.g. key_memory_mb = 64; keys past it spill to disk".into(),
        ));
    }
    if rb.settings.batch_memory_mb == 0 || rb.settings.batch_memory_mb > 4096 {
        diags.push(ctx.diag(
            "settings.batch_memory_mb",
            format!(
                "batch_memory_mb = {}: the memory of one batch is between 1 and 4096 MiB",
                rb.settings.batch_memory_mb
            ),
            "leave it out for the default (2), or write e.g. batch_memory_mb = 8; a batch is cut \
             at batch_size rows or at this, whichever comes first"
                .into(),
        ));
    }
    for (key, v) in [
        ("settings.retry_delay", Some(&rb.settings.retry_delay)),
        ("rollback.planned", rb.rollback.planned.as_ref()),
    ] {
        if let Some(v) = v
            && parse_duration(v).is_none()
        {
            diags.push(ctx.diag(
                key,
                format!("'{v}' is not a duration"),
                "write e.g. \"90s\", \"10m\", \"1h30m\"".into(),
            ));
        }
    }
    if let Some(w) = &rb.window {
        for (k, v) in [("start", &w.start), ("end", &w.end)] {
            if let Some(v) = v
                && chrono::DateTime::parse_from_rfc3339(v).is_err()
            {
                diags.push(ctx.diag(
                    &format!("window.{k}"),
                    format!("'{v}' is not an RFC 3339 time"),
                    "e.g. \"2026-11-21T18:00:00Z\"".into(),
                ));
            }
        }
        if let Some(d) = &w.duration
            && parse_duration(d).is_none()
        {
            diags.push(ctx.diag(
                "window.duration",
                format!("'{d}' is not a duration"),
                "e.g. \"48h\"".into(),
            ));
        }
        if w.end.is_none() && w.duration.is_none() {
            diags.push(ctx.diag(
                "window",
                "the window needs an end or a duration".into(),
                "add end = \"…\" or duration = \"48h\"".into(),
            ));
        }
    }
    let deps = deps
        .iter()
        .map(|(n, ds)| (n.to_string(), ds.iter().map(|d| d.to_string()).collect()))
        .collect();
    (order, deps)
}

/// A scope condition declares its domain: `in` with `out` (or `others`), or `in_scope_of`.
fn lint_scope(
    ctx: &Ctx,
    name: &str,
    e: &super::format::Entity,
    s: &super::format::ScopeCond,
    sk: &dyn Fn(&str) -> String,
    diags: &mut Vec<Diagnostic>,
) {
    if s.in_scope_of.is_some() {
        for (k, set) in [
            ("in", s.one_of.is_some()),
            ("out", s.out.is_some()),
            ("others", s.others.is_some()),
            ("case_insensitive", s.case_insensitive),
        ] {
            if set {
                diags.push(ctx.diag(
                    &sk(k),
                    format!("'{k}' cannot be combined with in_scope_of"),
                    "write a second scope condition for the values of another field".into(),
                ));
            }
        }
        if e.key == s.field {
            diags.push(ctx.diag(
                &sk("field"),
                format!("in_scope_of reads the field that refers to the other entity, not {name}'s own key"),
                "e.g. { field = \"customer_id\", in_scope_of = \"customers\" }".into(),
            ));
        }
        return;
    }
    let Some(ins) = &s.one_of else {
        diags.push(ctx.diag(
            &sk("field"),
            "a scope condition needs 'in' (values in scope) or 'in_scope_of' (an entity)".into(),
            "e.g. { field = \"status\", in = [\"A\"], out = [\"I\", \"X\"] }".into(),
        ));
        return;
    };
    if s.out.is_none() && s.others.is_none() {
        diags.push(ctx.diag(
            &sk("in"),
            format!("scope on '{}' declares no out-of-scope values", s.field),
            format!(
                "list them, e.g. out = [\"I\", \"X\"] (any other value is then rejected), or write \
                 others = \"out_of_scope\" if every value but {} is out of scope",
                ins.join(", ")
            ),
        ));
    }
    let fold = |v: &String| {
        if s.case_insensitive {
            v.to_lowercase()
        } else {
            v.clone()
        }
    };
    let in_set: HashSet<String> = ins.iter().map(fold).collect();
    for (j, v) in s.out.iter().flatten().enumerate() {
        if in_set.contains(&fold(v)) {
            diags.push(ctx.diag(
                &sk(&format!("out[{j}]")),
                format!("'{v}' is both in scope and out of scope"),
                "keep it in one of the two lists".into(),
            ));
        }
    }
}

/// A lookup names an existing return column, and with `allow_empty` it can be checked in
/// memory: the looked-up entity's target key must be loaded from its source key.
fn lint_lookup(
    ctx: &Ctx,
    rb: &Runbook,
    col: &str,
    l: &str,
    t: &super::format::MapTable,
    mk: &str,
    diags: &mut Vec<Diagnostic>,
) {
    let le = &rb.entities[l];
    if let Some(c) = &t.column {
        for (dialect, ddl) in [
            ("sqlite", &rb.schema.sqlite),
            ("postgres", &rb.schema.postgres),
            ("mysql", &rb.schema.mysql),
        ] {
            let Some(ddl) = ddl else { continue };
            if let Some(cols) = ddl_tables(ddl).get(&le.target.table.to_ascii_lowercase())
                && !cols.contains(&c.to_ascii_lowercase())
            {
                diags.push(ctx.diag(
                    &format!("{mk}.column"),
                    format!(
                        "lookup column '{c}' is not a column of {} in schema.{dialect}",
                        le.target.table
                    ),
                    format!(
                        "columns: {}",
                        cols.iter().cloned().collect::<Vec<_>>().join(", ")
                    ),
                ));
            }
        }
    }
    if t.allow_empty {
        let from_key = match le.map.get(&le.target.key) {
            Some(MapSpec::Field(f)) => *f == le.key,
            Some(MapSpec::Spec(s)) => {
                s.from.as_deref() == Some(le.key.as_str())
                    && s.values.is_none()
                    && s.lookup.is_none()
            }
            None => false,
        };
        if !from_key {
            diags.push(ctx.diag(
                &format!("{mk}.allow_empty"),
                format!(
                    "{col}: a nullable lookup is checked against the keys of {l}, but {l}'s target key {} is not loaded from its key {}",
                    le.target.key, le.key
                ),
                format!("map {} = \"{}\" in [entities.{l}.map]", le.target.key, le.key),
            ));
        }
    }
}

/// Dependencies first; on a cycle, returns the names along it.
fn topo_order<'a>(
    names: &[&'a str],
    deps: &HashMap<&'a str, BTreeSet<&'a str>>,
) -> Result<Vec<String>, Vec<String>> {
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        Active,
        Done,
    }
    let mut mark: HashMap<&str, Mark> = names.iter().map(|n| (*n, Mark::New)).collect();
    let mut out = Vec::new();
    fn visit<'a>(
        n: &'a str,
        deps: &HashMap<&'a str, BTreeSet<&'a str>>,
        mark: &mut HashMap<&'a str, Mark>,
        stack: &mut Vec<&'a str>,
        out: &mut Vec<String>,
    ) -> Result<(), Vec<String>> {
        match mark.get(n) {
            Some(Mark::Done) => return Ok(()),
            Some(Mark::Active) => {
                let start = stack.iter().position(|s| *s == n).unwrap_or(0);
                let mut cycle: Vec<String> = stack[start..].iter().map(|s| s.to_string()).collect();
                cycle.push(n.to_string());
                return Err(cycle);
            }
            _ => {}
        }
        mark.insert(n, Mark::Active);
        stack.push(n);
        for d in deps.get(n).into_iter().flatten() {
            if *d == n {
                return Err(vec![n.to_string(), n.to_string()]);
            }
            visit(d, deps, mark, stack, out)?;
        }
        stack.pop();
        mark.insert(n, Mark::Done);
        out.push(n.to_string());
        Ok(())
    }
    for n in names {
        visit(n, deps, &mut mark, &mut Vec::new(), &mut out)?;
    }
    Ok(out)
}

/// "90s", "10m", "48h", "1h30m", "2d", "250ms": humantime's grammar, which needs a unit.
pub fn parse_duration(s: &str) -> Option<std::time::Duration> {
    humantime::parse_duration(s.trim()).ok()
}

/// Table name → column names, read from `CREATE TABLE` statements (enough to lint a mapping).
pub fn ddl_tables(ddl: &str) -> HashMap<String, BTreeSet<String>> {
    let mut out = HashMap::new();
    let lower = ddl.to_ascii_lowercase();
    let mut pos = 0;
    while let Some(i) = lower[pos..].find("create table") {
        let start = pos + i + "create table".len();
        let Some(open) = lower[start..].find('(') else {
            break;
        };
        let mut name = lower[start..start + open].trim().to_string();
        if let Some(rest) = name.strip_prefix("if not exists") {
            name = rest.trim().to_string();
        }
        let name = name.trim_matches(|c| c == '"' || c == '`').to_string();
        let body_start = start + open + 1;
        let mut depth = 1;
        let mut end = body_start;
        for (j, ch) in lower[body_start..].char_indices() {
            match ch {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = body_start + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        let mut cols = BTreeSet::new();
        let mut depth = 0;
        let mut cur = String::new();
        for ch in lower[body_start..end].chars().chain(std::iter::once(',')) {
            match ch {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    let first = cur
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .trim_matches(|c| c == '"' || c == '`')
                        .to_string();
                    if !first.is_empty()
                        && ![
                            "primary",
                            "unique",
                            "foreign",
                            "check",
                            "constraint",
                            "key",
                            "index",
                        ]
                        .contains(&first.as_str())
                    {
                        cols.insert(first);
                    }
                    cur.clear();
                    continue;
                }
                _ => {}
            }
            cur.push(ch);
        }
        out.insert(name, cols);
        pos = end.max(body_start);
    }
    out
}

/// An approver's key as the runbook gives it: an OpenSSH public key of a kind cutover
/// verifies signatures of.
fn approver_key(k: &str) -> Result<(), String> {
    use crate::runbook::format::SSH_KEY_TYPES as KEY_TYPES;
    let alg = k.split_whitespace().next().unwrap_or_default();
    if ["ssh-", "ecdsa-", "sk-"].iter().any(|p| alg.starts_with(p)) && !KEY_TYPES.contains(&alg) {
        return Err(format!(
            "{alg} keys are not supported, only {}",
            KEY_TYPES.join(", ")
        ));
    }
    ssh_key::PublicKey::from_openssh(k.trim())
        .map(|_| ())
        .map_err(|e| format!("not an OpenSSH public key ({e})"))
}

/// A gate's roles, quorums, approvers and keys: each finding at its key.
fn lint_gate(ctx: &Ctx, name: &str, g: &crate::runbook::format::Gate, diags: &mut Vec<Diagnostic>) {
    use crate::runbook::format::GateRole;
    let key = |k: &str| format!("gates.{name}.{k}");
    if g.quorum == Some(0) {
        diags.push(ctx.diag(
            &key("quorum"),
            "quorum must be at least 1".into(),
            "a gate nobody signs is not a gate".into(),
        ));
    }
    if g.roles.is_empty() && g.quorum.is_none() {
        diags.push(ctx.diag(
            &format!("gates.{name}"),
            "the gate names no roles and no quorum".into(),
            "add [[gates.NAME.roles]] with role, approvers and quorum".into(),
        ));
    }
    let sum: usize = g
        .roles
        .iter()
        .map(|r| match r {
            GateRole::Name(_) => 1,
            GateRole::Table(t) => t.quorum,
        })
        .sum();
    if let Some(q) = g.quorum
        && q > 0
        && q < sum
    {
        diags.push(ctx.diag(
            &key("quorum"),
            format!("the roles need {sum} GO sign-offs but the quorum is {q}"),
            "raise the quorum to at least the sum of the roles' quorums, or leave it out".into(),
        ));
    }
    let mut seen: Vec<&str> = Vec::new();
    for (i, r) in g.roles.iter().enumerate() {
        let rk = |k: &str| format!("gates.{name}.roles[{i}]{k}");
        if seen.contains(&r.name()) {
            diags.push(ctx.diag(
                &rk(""),
                format!("role '{}' is listed twice", r.name()),
                "list each role once, with all its approvers".into(),
            ));
        }
        seen.push(r.name());
        let GateRole::Table(t) = r else { continue };
        if t.quorum == 0 {
            diags.push(ctx.diag(
                &rk(".quorum"),
                "quorum must be at least 1".into(),
                "a role nobody signs for is not needed: remove it".into(),
            ));
        }
        if !t.approvers.is_empty() && t.quorum > t.approvers.len() {
            diags.push(ctx.diag(
                &rk(".quorum"),
                format!(
                    "role {} needs {} GO but names {} approver(s)",
                    t.role,
                    t.quorum,
                    t.approvers.len()
                ),
                "one person counts once: name more approvers or lower the quorum".into(),
            ));
        }
        let mut names: Vec<&str> = Vec::new();
        for (j, a) in t.approvers.iter().enumerate() {
            if names
                .iter()
                .any(|n| crate::runbook::format::same_person(n, a.name()))
            {
                diags.push(ctx.diag(
                    &rk(&format!(".approvers[{j}]")),
                    format!("approver '{}' is listed twice in role {}", a.name(), t.role),
                    "one person counts once".into(),
                ));
            }
            names.push(a.name());
            if a.name().trim().is_empty() {
                diags.push(ctx.diag(
                    &rk(&format!(".approvers[{j}]")),
                    "an approver needs a name".into(),
                    "name = \"finance-controller\"".into(),
                ));
            }
            if let Some(k) = a.ssh_key()
                && let Err(e) = approver_key(k)
            {
                diags.push(ctx.diag(
                    &rk(&format!(".approvers[{j}].ssh_key")),
                    format!("ssh_key of {}: {e}", a.name()),
                    "paste the line of their .pub file: ssh-ed25519 AAAA… comment".into(),
                ));
            }
        }
    }
    for (j, a) in g.approvers.iter().enumerate() {
        if let Some(k) = &a.ssh_key {
            let ak = format!("gates.{name}.approvers[{j}].ssh_key");
            if let Err(e) = approver_key(k) {
                diags.push(ctx.diag(
                    &ak,
                    format!("ssh_key of {}: {e}", a.name),
                    "paste the line of their .pub file: ssh-ed25519 AAAA… comment".into(),
                ));
            } else if g
                .roles
                .iter()
                .any(|r| r.name() == a.role && matches!(r, GateRole::Name(_)))
            {
                diags.push(ctx.diag(
                    &ak,
                    format!(
                        "role {} is open to anyone (roles = [\"…\"]), so {}'s key would not be asked for",
                        a.role, a.name
                    ),
                    "declare the role as [[gates.NAME.roles]] with role, approvers and quorum".into(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("1h30m").unwrap().as_secs(), 5400);
        assert_eq!(parse_duration("48h").unwrap().as_secs(), 172800);
        assert!(parse_duration("10").is_none());
        assert!(parse_duration("5x").is_none());
        assert_eq!(parse_duration("250ms").unwrap().as_millis(), 250);
        assert_eq!(parse_duration("1s500ms").unwrap().as_millis(), 1500);
        assert_eq!(parse_duration("2m").unwrap().as_secs(), 120);
        assert!(parse_duration("ms").is_none());
    }

    #[test]
    fn ddl_columns_are_read() {
        let t = ddl_tables(
            "CREATE TABLE IF NOT EXISTS res_partner (id INTEGER PRIMARY KEY, ref TEXT NOT NULL UNIQUE, credit_limit NUMERIC(14,2), UNIQUE(ref));",
        );
        let cols = &t["res_partner"];
        assert!(cols.contains("id") && cols.contains("ref") && cols.contains("credit_limit"));
        assert!(!cols.contains("unique"));
    }

    #[test]
    fn cycles_are_found() {
        let mut deps: HashMap<&str, BTreeSet<&str>> = HashMap::new();
        deps.entry("a").or_default().insert("b");
        deps.entry("b").or_default().insert("a");
        let err = topo_order(&["a", "b"], &deps).unwrap_err();
        assert_eq!(err.first(), err.last());
        deps.get_mut("b").unwrap().clear();
        assert_eq!(topo_order(&["a", "b"], &deps).unwrap(), vec!["b", "a"]);
    }
}
