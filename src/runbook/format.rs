//! The runbook file format: what a migration lead writes. Parsed with serde,
//! `deny_unknown_fields` everywhere so that a typo is an error, not a silent default.
//! `runbooks/tms.toml` is the worked example of every key.

use indexmap::IndexMap;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runbook {
    pub runbook: Meta,
    /// `${name}` variables with their defaults; `--var name=value` overrides them.
    #[serde(default)]
    pub vars: IndexMap<String, String>,
    /// Named databases: `legacy`, `staging` and `production` by convention.
    pub environments: IndexMap<String, Environment>,
    #[serde(default)]
    pub settings: Settings,
    pub window: Option<Window>,
    /// DDL applied to an empty staging or production database, one script per dialect.
    #[serde(default)]
    pub schema: Schema,
    pub entities: IndexMap<String, Entity>,
    #[serde(default)]
    pub checks: Vec<Check>,
    #[serde(default)]
    pub gates: IndexMap<String, Gate>,
    pub steps: Vec<Step>,
    #[serde(default)]
    pub rollback: Rollback,
    /// Webhooks told about the run (Slack-compatible JSON), `[[notify]]`.
    #[serde(default)]
    pub notify: Vec<Notify>,
}

/// One webhook and the events it is told about.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Notify {
    /// The webhook's URL, where it is no secret (e.g. an internal relay).
    pub url: Option<String>,
    /// Name of an environment variable holding the URL: a Slack webhook URL is a
    /// credential, and credentials never go in a runbook.
    pub url_env: Option<String>,
    /// What it is told about; empty or left out: everything.
    #[serde(default)]
    pub events: Vec<NotifyEvent>,
}

/// What a webhook can be told about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    StepStarted,
    StepFinished,
    GateWaiting,
    GateDecided,
    Failure,
    Rollback,
    WindowWarning,
}

impl NotifyEvent {
    pub fn name(self) -> &'static str {
        match self {
            NotifyEvent::StepStarted => "step_started",
            NotifyEvent::StepFinished => "step_finished",
            NotifyEvent::GateWaiting => "gate_waiting",
            NotifyEvent::GateDecided => "gate_decided",
            NotifyEvent::Failure => "failure",
            NotifyEvent::Rollback => "rollback",
            NotifyEvent::WindowWarning => "window_warning",
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Meta {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// The migration lead who runs the cutover (`--lead` overrides it): they cannot be the
    /// only approver of their own gate.
    #[serde(default)]
    pub lead: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Environment {
    /// Database URL; the scheme picks the driver. Empty means "no database" (legacy given as CSV).
    pub url: String,
    /// Name of an environment variable holding the password. Never the password itself.
    pub password_env: Option<String>,
    /// Path of a file holding the password.
    pub password_file: Option<String>,
    /// Shown in red capitals in the console and demands typed confirmation.
    #[serde(default)]
    pub production: bool,
    /// Empty the mapped tables before each dry run (staging is scratch space).
    #[serde(default)]
    pub reset: bool,
    /// Comma-separated database users of the application. Legacy (MariaDB/MySQL): their
    /// write privileges are revoked at freeze. Production (PostgreSQL: roles; MySQL:
    /// accounts): kept out from the backup until unfreeze. Odoo: the logins archived while
    /// production is closed (exactly those that were active are restored at unfreeze).
    pub app_users: Option<String>,
    /// Odoo: a read-only SQL URL of Odoo's own PostgreSQL database, for `target_sql`
    /// fingerprint checks and a `pg_dump` backup. Without it the target is API-only.
    pub sql_url: Option<String>,
    /// Odoo: the context sent with every call. Default `{ tracking_disable = true }` (no
    /// chatter messages or followers for imported records).
    pub context: Option<toml::Table>,
    /// Odoo: batches loaded concurrently (default 1). Rows sharing an entity's `group_by`
    /// value always go to the same batch.
    pub workers: Option<usize>,
}

/// URL schemes of an Odoo server: `odoo+jsonrpc://LOGIN@HOST:PORT/DB` (Odoo 17, 18) and
/// `odoo+json2://HOST:PORT/DB` (Odoo 19+); an `s` after the transport (`odoo+json2s://`)
/// asks for https.
pub const ODOO_SCHEMES: &[&str] = &["odoo+jsonrpc", "odoo+json2", "odoo+jsonrpcs", "odoo+json2s"];

/// Whether a URL names an Odoo server (not a SQL database).
pub fn is_odoo_url(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| ODOO_SCHEMES.contains(&scheme.to_ascii_lowercase().as_str()))
}

impl Environment {
    /// The context for Odoo calls: the runbook's, or `{ tracking_disable = true }`.
    pub fn odoo_context(&self) -> toml::Table {
        self.context.clone().unwrap_or_else(|| {
            let mut t = toml::Table::new();
            t.insert("tracking_disable".into(), toml::Value::Boolean(true));
            t
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Retries of a batch after a transient fault (lost connection, restarted server)
    /// before the step fails.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First wait before a retry; it doubles each time (capped at 30 s), with jitter.
    #[serde(default = "default_retry_delay")]
    pub retry_delay: String,
    /// Memory for the keys of `unique` and `reference` rules and scope keys, in MiB, per
    /// entity being loaded; past it, keys spill to sorted files in the run folder.
    #[serde(default = "default_key_memory_mb")]
    pub key_memory_mb: u64,
    /// Memory one batch may hold, in MiB: a batch is cut at `batch_size` rows or at this,
    /// whichever comes first. Up to `write_concurrency` + 2 batches exist per entity
    /// being loaded (in flight, one waiting, one being filled).
    #[serde(default = "default_batch_memory_mb")]
    pub batch_memory_mb: u64,
    /// Entities loaded at the same time, among those whose dependencies are loaded.
    #[serde(default = "default_entity_concurrency")]
    pub entity_concurrency: usize,
    /// Threads that decode and check rows; default: the machine's cores.
    #[serde(default)]
    pub workers: Option<usize>,
    /// Batches written to a PostgreSQL or MariaDB target at once (SQLite and Odoo take one).
    #[serde(default = "default_write_concurrency")]
    pub write_concurrency: usize,
}
fn default_write_concurrency() -> usize {
    2
}
impl Settings {
    /// `workers`, or the cores this process may use.
    pub fn workers(&self) -> usize {
        self.workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
            .max(1)
    }
}
fn default_batch() -> usize {
    1000
}
fn default_entity_concurrency() -> usize {
    2
}
fn default_retries() -> u32 {
    5
}
fn default_retry_delay() -> String {
    "1s".into()
}
fn default_key_memory_mb() -> u64 {
    8
}
fn default_batch_memory_mb() -> u64 {
    2
}
impl Default for Settings {
    fn default() -> Self {
        Settings {
            batch_size: default_batch(),
            retries: default_retries(),
            retry_delay: default_retry_delay(),
            entity_concurrency: default_entity_concurrency(),
            workers: None,
            write_concurrency: default_write_concurrency(),
            key_memory_mb: default_key_memory_mb(),
            batch_memory_mb: default_batch_memory_mb(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// RFC 3339 start of the cutover window; defaults to the start of the run.
    pub start: Option<String>,
    /// RFC 3339 end of the window.
    pub end: Option<String>,
    /// Length of the window from its start, e.g. "48h" or "90m".
    pub duration: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Schema {
    pub sqlite: Option<String>,
    pub postgres: Option<String>,
    pub mysql: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// Where the rows come from; a derived entity has none (see `derive`).
    #[serde(default)]
    pub source: Source,
    /// Columns the extract must carry, in the legacy system's names. A derived entity's
    /// columns are its `distinct` fields.
    #[serde(default)]
    pub columns: Vec<String>,
    /// Business key in the source (unique per entity). Required, except for a derived
    /// entity, whose key is its distinct tuple.
    #[serde(default)]
    pub key: String,
    /// Rows made from another entity's distinct values instead of a source: one row per
    /// distinct tuple, e.g. vehicle brands from the vehicles' `make`. Loaded before the
    /// entity it comes from, which may then point at them (`lookup`).
    pub derive: Option<Derive>,
    /// Entities that must be loaded first.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// All conditions must hold for a row to be in scope; rows out of scope are counted, not rejected.
    #[serde(default)]
    pub scope: Vec<ScopeCond>,
    /// Every field is always trimmed; these rules run after the trim.
    #[serde(default)]
    pub cleanse: Vec<CleanseRule>,
    #[serde(default)]
    pub validate: Vec<ValidateRule>,
    pub target: Target,
    /// target column = source field, or a table with `from` + `values` / `lookup`, or `value`.
    pub map: IndexMap<String, MapSpec>,
    /// Reject-rate budget in percent of in-scope rows; over budget recommends NO-GO.
    pub max_reject_pct: Option<f64>,
    /// Odoo: one2many lines read from a second file (an invoice's lines), loaded with
    /// their record in the same `load` call as its continuation rows.
    pub lines: Option<Lines>,
}

/// An Odoo entity's one2many lines from their own extract file: each line names its
/// record by `parent` and has its own external id (`<external_id>_<key>`), so a re-run
/// updates the lines instead of adding them. A line the rules refuse refuses its record.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Lines {
    /// The one2many field, e.g. `invoice_line_ids`.
    pub field: String,
    /// The lines' CSV file, in the same folder as the entity's own.
    pub source: Source,
    pub columns: Vec<String>,
    /// The line's own key, unique over the file.
    pub key: String,
    /// The column holding the key of the line's record (e.g. `invoice_no`).
    pub parent: String,
    /// Prefix of the lines' external ids.
    pub external_id: String,
    #[serde(default)]
    pub cleanse: Vec<CleanseRule>,
    #[serde(default)]
    pub validate: Vec<ValidateRule>,
    /// Line field = lines column, or a table (`value`, `values`, …) as in an entity's map.
    pub map: IndexMap<String, MapSpec>,
}

/// One legacy table an entity is extracted from, and its extract file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// The manifest's name for it: the entity's, or `<entity>.lines` for its lines.
    pub name: String,
    pub table: String,
    pub columns: Vec<String>,
    pub file: String,
}

impl Entity {
    /// The tables the extract reads for entity `name` (its own, then its lines'), which the
    /// freeze watermarks: the lines are taken from the same frozen legacy as their records.
    pub fn source_files(&self, name: &str) -> Vec<SourceFile> {
        let mut out = vec![SourceFile {
            name: name.to_string(),
            table: self
                .source
                .table
                .clone()
                .unwrap_or_else(|| name.to_string()),
            columns: self.columns.clone(),
            file: self.source.file.clone(),
        }];
        if let Some(l) = &self.lines {
            out.push(SourceFile {
                name: format!("{name}.lines"),
                table: l.table(),
                columns: l.columns.clone(),
                file: l.source.file.clone(),
            });
        }
        out
    }
}

impl Lines {
    /// The legacy table of the lines: `source.table`, else the file's name without `.csv`.
    pub fn table(&self) -> String {
        self.source.table.clone().unwrap_or_else(|| {
            let f = &self.source.file;
            f.strip_suffix(".csv").unwrap_or(f).to_string()
        })
    }

    /// The lines as an entity of their own, so that the same rules compile them.
    pub fn as_entity(&self, parent: &Target) -> Entity {
        Entity {
            source: self.source.clone(),
            columns: self.columns.clone(),
            key: self.key.clone(),
            derive: None,
            depends_on: vec![],
            scope: vec![],
            cleanse: self.cleanse.clone(),
            validate: self.validate.clone(),
            target: Target {
                table: format!("{}/{}", parent.table, self.field),
                key: "id".into(),
                model: Some(format!("{}/{}", parent.table, self.field)),
                external_id: Some(self.external_id.clone()),
                module: parent.module.clone(),
                batch_size: None,
                group_by: None,
                post: None,
            },
            map: self.map.clone(),
            max_reject_pct: None,
            lines: None,
        }
    }
}

/// Where a derived entity's rows come from.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Derive {
    /// The entity whose rows give the values (its in-scope rows that pass its own rules).
    pub from: String,
    /// Fields of that entity whose distinct (non-empty) tuples make one row each; they are
    /// the derived entity's columns. Only the distinct values are kept, never the rows.
    pub distinct: Vec<String>,
}

/// The file name a derived entity's rows are written to, inside the run's extract folder.
pub fn derived_file(entity: &str) -> String {
    format!("{entity}.derived.csv")
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// CSV file name inside `extract_dir` (or the run's extract folder).
    pub file: String,
    /// Legacy table name when the legacy system is a database; defaults to the entity name.
    pub table: Option<String>,
    /// Quoted values may hold line breaks (addresses). Off: a quote still open at the end
    /// of its line makes that line a malformed reject, and reading goes on at the next.
    #[serde(default)]
    pub multiline: bool,
    /// Escape character inside values (`"\\"`, as MySQL writes `\"` and `\N`); off: a
    /// `\"` inside a quoted value is a malformed reject.
    pub escape: Option<String>,
}

impl Source {
    /// How the extract file is written. `escape` must be one ASCII character (lint says so).
    pub fn dialect(&self) -> crate::sources::csv::Dialect {
        crate::sources::csv::Dialect {
            multiline: self.multiline,
            escape: self
                .escape
                .as_deref()
                .and_then(|e| <[u8; 1]>::try_from(e.as_bytes()).ok())
                .map(|[b]| b),
        }
    }
}

/// One scope condition. Either a value domain (`in` plus `out` or `others`) or
/// `in_scope_of` another entity.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeCond {
    pub field: String,
    /// Values in scope.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<String>>,
    /// The declared out-of-scope values: counted, not rejected. A value that is in
    /// neither list is rejected, unless `others = "out_of_scope"`.
    pub out: Option<Vec<String>>,
    /// What a value in neither `in` nor `out` is: `reject` (the default once `out` is
    /// given) or `out_of_scope`.
    pub others: Option<ScopeOthers>,
    #[serde(default)]
    pub case_insensitive: bool,
    /// In scope only when the value is the key of an in-scope row (valid or rejected) of
    /// this entity, e.g. rentals of active customers.
    pub in_scope_of: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScopeOthers {
    Reject,
    OutOfScope,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CleanseRule {
    pub rule: CleanseKind,
    pub fields: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum CleanseKind {
    Lowercase,
    Uppercase,
    CollapseSpaces,
}

/// A validation rule. Format rules (email, date, decimal, integer, pattern, one_of)
/// also reject an empty value unless `allow_empty = true`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "rule", rename_all = "snake_case", deny_unknown_fields)]
pub enum ValidateRule {
    Required {
        field: String,
    },
    /// First in-scope occurrence wins; later ones are rejected even if the first was rejected.
    Unique {
        field: String,
    },
    Email {
        field: String,
        #[serde(default)]
        allow_empty: bool,
    },
    /// Formats from `YYYY-MM-DD`, `DD/MM/YYYY`, `MM/DD/YYYY`, `DD.MM.YYYY`, `YYYYMMDD`.
    Date {
        field: String,
        #[serde(default = "default_date_formats")]
        formats: Vec<String>,
        #[serde(default)]
        allow_empty: bool,
    },
    Decimal {
        field: String,
        min: Option<String>,
        max: Option<String>,
        /// Maximum number of decimal places written.
        scale: Option<u32>,
        #[serde(default)]
        allow_empty: bool,
    },
    Integer {
        field: String,
        min: Option<i64>,
        max: Option<i64>,
        #[serde(default)]
        allow_empty: bool,
    },
    Pattern {
        field: String,
        regex: String,
        message: Option<String>,
        #[serde(default)]
        allow_empty: bool,
    },
    OneOf {
        field: String,
        values: Vec<String>,
        #[serde(default)]
        allow_empty: bool,
    },
    /// sum(fields) == equals, exactly (decimal fields).
    Sum {
        fields: Vec<String>,
        equals: String,
    },
    /// field OP other, both decimal fields; op is one of < <= > >= = !=.
    Compare {
        field: String,
        op: String,
        other: String,
    },
    /// field must equal the key of a valid, in-scope row of `entity` in this same run.
    Reference {
        field: String,
        entity: String,
        message: Option<String>,
        /// An empty value is no reference (a nullable foreign key), not a reject.
        #[serde(default)]
        allow_empty: bool,
    },
    /// A date with a time of day, read in `timezone` and stored in UTC.
    /// Formats are built from `YYYY MM DD HH mm ss` and separators, e.g.
    /// `YYYY-MM-DD HH:mm:ss`; fractional seconds after `ss` are kept (to the microsecond).
    Datetime {
        field: String,
        formats: Vec<String>,
        /// Zone the source writes its local times in: `UTC`, a fixed offset such as
        /// `+02:00`, or an IANA name such as `Europe/Paris`.
        #[serde(default = "utc")]
        timezone: String,
        #[serde(default)]
        allow_empty: bool,
    },
}

fn utc() -> String {
    "UTC".into()
}

fn default_date_formats() -> Vec<String> {
    vec!["YYYY-MM-DD".into()]
}

impl ValidateRule {
    pub fn name(&self) -> &'static str {
        match self {
            ValidateRule::Required { .. } => "required",
            ValidateRule::Unique { .. } => "unique",
            ValidateRule::Email { .. } => "email",
            ValidateRule::Date { .. } => "date",
            ValidateRule::Decimal { .. } => "decimal",
            ValidateRule::Integer { .. } => "integer",
            ValidateRule::Pattern { .. } => "pattern",
            ValidateRule::OneOf { .. } => "one_of",
            ValidateRule::Sum { .. } => "sum",
            ValidateRule::Compare { .. } => "compare",
            ValidateRule::Reference { .. } => "reference",
            ValidateRule::Datetime { .. } => "datetime",
        }
    }

    /// Every source field the rule reads.
    pub fn fields(&self) -> Vec<&str> {
        match self {
            ValidateRule::Required { field }
            | ValidateRule::Unique { field }
            | ValidateRule::Email { field, .. }
            | ValidateRule::Date { field, .. }
            | ValidateRule::Decimal { field, .. }
            | ValidateRule::Integer { field, .. }
            | ValidateRule::Pattern { field, .. }
            | ValidateRule::OneOf { field, .. }
            | ValidateRule::Reference { field, .. }
            | ValidateRule::Datetime { field, .. } => vec![field.as_str()],
            ValidateRule::Sum { fields, equals } => {
                let mut v: Vec<&str> = fields.iter().map(String::as_str).collect();
                v.push(equals);
                v
            }
            ValidateRule::Compare { field, other, .. } => vec![field, other],
        }
    }
}

/// Where an entity's rows go: a SQL table (`table` + `key`) or an Odoo model (`model` +
/// `external_id`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Target {
    /// SQL: the table. Odoo: filled in from `model` when the runbook is read.
    #[serde(default)]
    pub table: String,
    /// SQL: unique column holding the business key (upsert key). Odoo: `id`, the external
    /// id column, filled in when the runbook is read.
    #[serde(default)]
    pub key: String,
    /// Odoo: the model, e.g. `res.partner`.
    pub model: Option<String>,
    /// Odoo: the external-id prefix of this entity's records. Each row's `id` column is
    /// `<module>.<external_id>_<key>`, e.g. `__import__.tms_customer_C0000001`: a re-run
    /// updates those records, never duplicates them.
    pub external_id: Option<String>,
    /// Odoo: the external ids' module (default `__import__`; never the name of an
    /// installed Odoo module, which Odoo refuses on create).
    pub module: Option<String>,
    /// Odoo: rows per `load` call for this entity (default: `settings.batch_size`).
    pub batch_size: Option<usize>,
    /// Odoo: a mapped column (e.g. `partner_id/id`): rows sharing its value go to the same
    /// batch, so that parallel workers never update one parent concurrently.
    pub group_by: Option<String>,
    /// Odoo: a method called on the loaded records after each batch, e.g. `action_post`
    /// to post invoices.
    pub post: Option<String>,
}

/// The external ids' module when the runbook names none.
pub const DEFAULT_XID_MODULE: &str = "__import__";

impl Target {
    /// Whether this entity is loaded into Odoo.
    pub fn is_odoo(&self) -> bool {
        self.model.is_some()
    }

    /// The module part of this entity's external ids.
    pub fn xid_module(&self) -> &str {
        self.module.as_deref().unwrap_or(DEFAULT_XID_MODULE)
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum MapSpec {
    Field(String),
    Spec(MapTable),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MapTable {
    pub from: Option<String>,
    /// Translate values; a value not listed is an error at validation time unless
    /// `default` is given.
    pub values: Option<IndexMap<String, String>>,
    /// With `values`: what a value not listed becomes.
    pub default: Option<String>,
    /// Resolve `from` to `column` (default `id`) of the row of this entity's target table
    /// whose target key equals it.
    pub lookup: Option<String>,
    /// With `lookup`: the target column to return, e.g. `customer_pk`.
    pub column: Option<String>,
    /// With `lookup`: an empty value is NULL (a nullable foreign key), not a reject.
    #[serde(default)]
    pub allow_empty: bool,
    /// A constant.
    pub value: Option<String>,
    /// Odoo: `from` becomes an external id with this prefix (`<module>.<prefix>_<value>`),
    /// e.g. `"invoice_line_ids/id" = { from = "invoice_no", external_id = "tms_invoice_line" }`
    /// gives an invoice's line its own identity, so a re-run updates it instead of adding a
    /// line. (Into an Odoo entity, a `lookup` gives that entity's external id the same way:
    /// `"partner_id/id" = { from = "customer_id", lookup = "customers" }`.)
    pub external_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Check {
    /// Per entity: rows loaded into the target table equal rows valid in the source.
    Counts {
        #[serde(default)]
        entities: Vec<String>,
    },
    /// SUM of a decimal field over valid rows equals the SUM of the target column, to the cent.
    Sum {
        entity: String,
        field: String,
        column: String,
        /// Source field holding the ISO currency code: the sums are then kept per
        /// currency, since a total across currencies is not money.
        #[serde(default)]
        currency: Option<String>,
        /// Target column holding the currency (defaults to the name of `currency`).
        #[serde(default)]
        currency_column: Option<String>,
    },
    /// The set of source tuples of valid rows equals the set of tuples the target query returns.
    Fingerprint {
        name: String,
        entity: String,
        source: Vec<String>,
        target_sql: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Gate {
    pub title: String,
    /// Distinct people whose GO is needed in all. Defaults to the sum of the roles' quorums.
    #[serde(default)]
    pub quorum: Option<usize>,
    /// Roles that must sign: `roles = ["a", "b"]` (one GO each, anyone may fill them) or
    /// `[[gates.G.roles]]` tables naming the approvers and an N-of-M quorum per role.
    #[serde(default)]
    pub roles: Vec<GateRole>,
    /// People expected to sign, with their role (and key); with the short form of `roles`
    /// they are shown in the dialog, not enforced.
    #[serde(default)]
    pub approvers: Vec<Approver>,
}

/// One role of a gate: either its name alone (quorum 1, open to anyone) or its table.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum GateRole {
    Name(String),
    Table(RoleTable),
}

impl GateRole {
    pub fn name(&self) -> &str {
        match self {
            GateRole::Name(n) => n,
            GateRole::Table(t) => &t.role,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleTable {
    pub role: String,
    /// Only these people may sign for the role.
    #[serde(default)]
    pub approvers: Vec<RoleApprover>,
    /// How many of them must give a GO (default 1).
    #[serde(default = "one")]
    pub quorum: usize,
}

fn one() -> usize {
    1
}

/// The kinds of `ssh_key` an approver may have: the ones whose signatures cutover verifies.
pub const SSH_KEY_TYPES: [&str; 3] = ["ssh-ed25519", "ecdsa-sha2-nistp256", "ssh-rsa"];

/// An approver of a role: a name, or `{ name, ssh_key }` when their sign-off must carry an
/// SSH signature over the evidence hash.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum RoleApprover {
    Name(String),
    Keyed {
        name: String,
        #[serde(default)]
        ssh_key: Option<String>,
    },
}

impl RoleApprover {
    pub fn name(&self) -> &str {
        match self {
            RoleApprover::Name(n) | RoleApprover::Keyed { name: n, .. } => n,
        }
    }
    pub fn ssh_key(&self) -> Option<&str> {
        match self {
            RoleApprover::Name(_) => None,
            RoleApprover::Keyed { ssh_key, .. } => ssh_key.as_deref(),
        }
    }
}

/// Names are compared as people write them: case, and runs of spaces, do not make another
/// person.
pub fn same_person(a: &str, b: &str) -> bool {
    let norm = |s: &str| {
        s.split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_lowercase()
    };
    norm(a) == norm(b)
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approver {
    pub name: String,
    pub role: String,
    /// `ssh-ed25519 AAAA… comment` (or an ecdsa-sha2-nistp256 or ssh-rsa key): their
    /// sign-off must be signed with this key.
    #[serde(default)]
    pub ssh_key: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub kind: StepKind,
    /// Environment the step acts on (backup, freeze, load, …).
    pub env: Option<String>,
    /// Gate name for `sign_off` steps.
    pub gate: Option<String>,
    #[serde(default)]
    pub title: String,
    /// Planned duration, e.g. "10m", shown beside the actual one.
    pub planned: Option<String>,
    /// `command` steps: the shell command (`sh -c`). Its output goes to the journal.
    pub run: Option<String>,
    /// `command` steps: kill the command after this long (default 10m).
    pub timeout: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    Backup,
    Freeze,
    Extract,
    DryRun,
    Validate,
    SignOff,
    Load,
    Verify,
    Unfreeze,
    /// A shell command with a timeout, e.g. a cloud snapshot or a maintenance toggle.
    Command,
}

impl StepKind {
    /// Why an operator may not skip a step of this kind, or `None` when a skip (journaled
    /// with who and why) is allowed. The one rule the engine, the flags and the console use.
    pub fn skip_refused(self) -> Option<&'static str> {
        match self {
            StepKind::Backup => Some("the rollback restores production from its backup"),
            StepKind::Extract => {
                Some("the dry run, the load and a resume read the extract it records")
            }
            StepKind::DryRun => {
                Some("the validation and the sign-off judge the rows it loads to staging")
            }
            StepKind::SignOff => Some("the load must not start without the gate's GO"),
            StepKind::Load => {
                Some("it is what the cutover is for; stop the run or roll back instead")
            }
            StepKind::Freeze
            | StepKind::Validate
            | StepKind::Verify
            | StepKind::Unfreeze
            | StepKind::Command => None,
        }
    }

    pub fn skippable(self) -> bool {
        self.skip_refused().is_none()
    }

    /// The kind as written in a runbook (`dry_run`, `sign_off`, …).
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Backup => "backup",
            StepKind::Freeze => "freeze",
            StepKind::Extract => "extract",
            StepKind::DryRun => "dry_run",
            StepKind::Validate => "validate",
            StepKind::SignOff => "sign_off",
            StepKind::Load => "load",
            StepKind::Verify => "verify",
            StepKind::Unfreeze => "unfreeze",
            StepKind::Command => "command",
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rollback {
    /// Restore production from the backup step's copy.
    #[serde(default = "yes")]
    pub restore_backup: bool,
    /// Reopen the legacy system for its users after the restore.
    #[serde(default)]
    pub reopen_legacy: bool,
    /// Odoo reached only through its API (no backup to restore): delete every record this
    /// run created, by its external ids, children before parents, then check with
    /// `search_count` that none of them is left.
    #[serde(default)]
    pub delete_loaded: bool,
    /// How long the rollback takes (from the rehearsal of the rollback), e.g. "45m". The
    /// point of no return is this long before the end of the window. Default: twice the
    /// backup step's time (or its `planned`).
    pub planned: Option<String>,
}
fn yes() -> bool {
    true
}
