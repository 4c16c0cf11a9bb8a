//! Scope, cleanse, validate and transform: pure functions over one row. A row that fails
//! rules is data (a list of [`RowIssue`]s), never an `Err`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{NaiveDate, NaiveDateTime};
use regex::Regex;
use rust_decimal::Decimal;
use smallvec::SmallVec;

use crate::keyset::{KeyMemory, KeySet};
use crate::runbook::format::{CleanseKind, Entity, MapSpec, ScopeOthers, ValidateRule};
use crate::runbook::odoo::external_id;

pub use crate::datetime;
pub use crate::values::shown;
use datetime::{DtFormat, SourceZone};

/// Why a row was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowIssue {
    pub rule: String,
    pub field: String,
    pub message: String,
}

impl RowIssue {
    fn new(rule: &str, field: &str, message: impl Into<String>) -> Self {
        RowIssue {
            rule: rule.into(),
            field: field.into(),
            message: message.into(),
        }
    }
}

pub use crate::values::SqlValue;

#[derive(Debug, Clone, Copy)]
enum Typed {
    Date(NaiveDate),
    DateTime(NaiveDateTime),
    Dec(Decimal),
    Int(i64),
}

#[derive(Debug, Clone, Copy)]
enum DateFmt {
    Ymd,
    DmySlash,
    MdySlash,
    DmyDot,
    Compact,
}

#[derive(Debug)]
enum Rule {
    Required(usize),
    Unique(usize),
    Email(usize, bool),
    Date(usize, Vec<DateFmt>, bool),
    Decimal {
        i: usize,
        min: Option<Decimal>,
        max: Option<Decimal>,
        scale: Option<u32>,
        allow_empty: bool,
    },
    Integer {
        i: usize,
        min: Option<i64>,
        max: Option<i64>,
        allow_empty: bool,
    },
    Pattern {
        i: usize,
        re: Regex,
        message: String,
        allow_empty: bool,
    },
    OneOf {
        i: usize,
        values: HashSet<String>,
        allow_empty: bool,
    },
    Sum {
        fields: Vec<usize>,
        equals: usize,
    },
    Compare {
        i: usize,
        op: String,
        j: usize,
    },
    Reference {
        i: usize,
        entity: String,
        message: String,
        allow_empty: bool,
    },
    Datetime {
        i: usize,
        formats: Vec<DtFormat>,
        zone: SourceZone,
        allow_empty: bool,
    },
}

enum MapKind {
    Field(usize),
    /// Source index, translation, what an unlisted value becomes (none: a reject).
    Values(usize, HashMap<String, String>, Option<String>),
    Lookup {
        i: usize,
        table: String,
        key: String,
        id: String,
        /// Empty is NULL; a non-empty value must then be a valid key of `entity` in this
        /// run, since no match in a nullable column would load a silent NULL.
        allow_empty: Option<String>,
    },
    Const(String),
    /// Odoo: an external id built from these fields (see [`external_id`]).
    ExternalId {
        fields: Vec<usize>,
        module: String,
        prefix: String,
        /// Every field empty: an empty cell (no relation) instead of an id.
        allow_empty: bool,
    },
}

/// One scope condition, compiled.
#[derive(Debug)]
enum Scope {
    /// Values in scope, declared out-of-scope values (both lowercased when
    /// case-insensitive), and whether any other value is out of scope (else rejected).
    Domain {
        i: usize,
        ins: Vec<String>,
        outs: Vec<String>,
        others_out: bool,
        ci: bool,
    },
    /// In scope when the value is the key of an in-scope row of `entity`.
    Of { i: usize, entity: String },
}

/// Keys of one entity's rows by scope, trimmed as read (before cleanse), for the entities
/// that scope by it (`in_scope_of`). A key seen both ways is in scope: `out_of_scope`
/// holds every key seen out of scope, and is asked only about keys not in scope.
#[derive(Debug, Default)]
pub struct ScopeKeys {
    pub in_scope: KeySet,
    pub out_of_scope: KeySet,
}

impl ScopeKeys {
    pub fn new(keys: &KeyMemory) -> ScopeKeys {
        ScopeKeys {
            in_scope: keys.set(),
            out_of_scope: keys.set(),
        }
    }

    /// Record a row's key and whether the row was in scope.
    pub fn add(&mut self, key: &str, in_scope: bool) {
        if in_scope {
            self.in_scope.insert(key);
        } else {
            self.out_of_scope.insert(key);
        }
    }

    pub fn seal(&mut self) {
        self.in_scope.seal();
        self.out_of_scope.seal();
    }

    pub fn failure(&self) -> Result<(), String> {
        self.in_scope.failure()?;
        self.out_of_scope.failure()
    }
}

/// Valid keys of the entities a row may reference, by entity.
pub type Refs = HashMap<String, Arc<KeySet>>;

/// Where a row stands after the scope conditions.
enum ScopeVerdict {
    In,
    Out,
    Rejected(RowIssue),
}

/// An entity's rules, compiled against its column list once per run.
pub struct Compiled {
    pub name: String,
    pub columns: Vec<String>,
    key: usize,
    scope: Vec<Scope>,
    cleanse: Vec<(CleanseKind, Vec<usize>)>,
    rules: Vec<Rule>,
    map: Vec<(String, MapKind)>,
    pub target_columns: Vec<String>,
    /// How the entity's extract file is written.
    pub dialect: crate::sources::csv::Dialect,
    /// Odoo one2many lines from a second file; their cells are the last target columns.
    pub lines: Option<Box<LineRules>>,
}

/// The compiled `lines` of an entity: the lines' own rules (their target columns are the
/// sub-fields, `id` first) and where each line names its record.
pub struct LineRules {
    pub rules: Compiled,
    /// The one2many field, e.g. `invoice_line_ids`.
    pub field: String,
    /// Index of the parent key in the lines' columns.
    pub parent: usize,
    /// The lines' file name, next to the entity's own file.
    pub file: String,
}

/// Per-run state a rule needs: keys seen for `unique`, by field.
#[derive(Default)]
pub struct RunState {
    seen: HashMap<usize, KeySet>,
    keys: KeyMemory,
}

impl RunState {
    /// Each `unique` field's keys within `keys` (its budget is each one's share).
    pub fn with_keys(keys: KeyMemory) -> RunState {
        RunState {
            seen: HashMap::new(),
            keys,
        }
    }

    /// The first I/O error of a key set that spilled to disk, if any.
    pub fn failure(&self) -> Result<(), String> {
        self.seen.values().try_for_each(KeySet::failure)
    }
}

/// A row after [`Compiled::check`]: decided, or waiting for [`Compiled::settle`].
pub enum Checked {
    Done(Verdict),
    Pending(Pending),
}

/// A row in scope, cleansed, checked and transformed, but for its `unique` rules.
pub struct Pending {
    /// The cleansed values.
    pub fields: Vec<String>,
    issues: Vec<RowIssue>,
    row: Vec<SqlValue>,
    /// `unique` rules on non-empty values, in rule order: where the reason goes among
    /// `issues`, and the field.
    unique: SmallVec<[(usize, usize); 4]>,
}

impl Pending {
    /// No rule has found fault so far (`unique` may still).
    pub fn clean(&self) -> bool {
        self.issues.is_empty()
    }
}

/// Trim a value without reallocating it.
fn trim_in_place(s: &mut String) {
    let end = s.trim_end().len();
    s.truncate(end);
    let start = s.len() - s.trim_start().len();
    if start > 0 {
        s.drain(..start);
    }
}

pub enum Verdict {
    OutOfScope,
    /// `fields` are the cleansed values (the reject file keeps the raw ones).
    Rejected {
        fields: Vec<String>,
        issues: Vec<RowIssue>,
    },
    Valid {
        fields: Vec<String>,
        row: Vec<SqlValue>,
    },
}

/// `local@domain.tld`: no whitespace and no `@` in either part, the domain of two or
/// more non-empty labels. A byte test: the same language as
/// `^[^\s@]+@([^\s@.]+\.)+[^\s@.]+$` (`\s` being Unicode white space).
fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let no_space = |t: &str| {
        if t.is_ascii() {
            // The ASCII white space of Unicode: tab, LF, VT, FF, CR, space.
            !t.bytes().any(|b| matches!(b, b'\t'..=b'\r' | b' '))
        } else {
            !t.chars().any(char::is_whitespace)
        }
    };
    !local.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && domain.split('.').all(|label| !label.is_empty())
        && no_space(local)
        && no_space(domain)
}

/// `-?[0-9]+(\.[0-9]+)?`, as a byte test.
fn is_plain_decimal(s: &str) -> bool {
    let b = s.strip_prefix('-').unwrap_or(s).as_bytes();
    let (int, frac) = match b.iter().position(|&c| c == b'.') {
        Some(p) => (&b[..p], Some(&b[p + 1..])),
        None => (b, None),
    };
    let digits = |d: &[u8]| !d.is_empty() && d.iter().all(u8::is_ascii_digit);
    digits(int) && frac.is_none_or(digits)
}

/// Strict decimal: digits with an optional point, no exponent, no thousands separators.
pub fn parse_decimal(s: &str) -> Option<Decimal> {
    if !is_plain_decimal(s) {
        return None;
    }
    s.parse::<Decimal>().ok()
}

/// Decimal places as written (`12.500` has 3).
fn written_scale(s: &str) -> u32 {
    s.split_once('.').map(|(_, f)| f.len() as u32).unwrap_or(0)
}

/// The decimal a number written with a decimal comma or thousands separators most likely
/// means: `1.234,56` and `1,234.56` → `1234.56`, `12,5` → `12.5`, `1.234.567` → `1234567`.
/// `None` where that is ambiguous (`1,234`) or the text is no such number.
fn decimal_meant(s: &str) -> Option<String> {
    let (sign, body) = s.strip_prefix('-').map_or(("", s), |b| ("-", b));
    if body.is_empty()
        || !body
            .bytes()
            .all(|c| c.is_ascii_digit() || c == b',' || c == b'.')
    {
        return None;
    }
    let commas = body.matches(',').count();
    let points = body.matches('.').count();
    // The decimal separator: the last one when both kinds are used, a lone comma that is
    // not followed by exactly three digits, else none (all separators group thousands).
    let last = body.rfind([',', '.'])?;
    let decimal = if commas > 0 && points > 0 {
        let sep = body.as_bytes()[last];
        if body[..last].contains(sep as char) {
            return None;
        }
        Some(last)
    } else if commas == 1 && body.len() - last - 1 != 3 {
        Some(last)
    } else if commas + points == 1 {
        return None;
    } else {
        None
    };
    let (int, frac) = match decimal {
        Some(i) => (&body[..i], Some(&body[i + 1..])),
        None => (body, None),
    };
    let groups: Vec<&str> = int.split([',', '.']).collect();
    let grouped = groups.len() == 1
        || (!groups[0].is_empty()
            && groups[0].len() <= 3
            && groups[1..].iter().all(|g| g.len() == 3));
    if !grouped || frac.is_some_and(|f| f.is_empty() || !f.bytes().all(|c| c.is_ascii_digit())) {
        return None;
    }
    let mut out = format!("{sign}{}", groups.concat());
    if let Some(f) = frac {
        out.push('.');
        out.push_str(f);
    }
    parse_decimal(&out).map(|_| out)
}

/// Year, month and day as written in format `f`, whether or not such a day exists.
fn date_parts(s: &str, f: DateFmt) -> Option<(u32, u32, u32)> {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = match f {
        DateFmt::Ymd if b.len() == 10 && b[4] == b'-' && b[7] == b'-' => {
            (digits(0..4)?, digits(5..7)?, digits(8..10)?)
        }
        DateFmt::DmySlash if b.len() == 10 && b[2] == b'/' && b[5] == b'/' => {
            (digits(6..10)?, digits(3..5)?, digits(0..2)?)
        }
        DateFmt::MdySlash if b.len() == 10 && b[2] == b'/' && b[5] == b'/' => {
            (digits(6..10)?, digits(0..2)?, digits(3..5)?)
        }
        DateFmt::DmyDot if b.len() == 10 && b[2] == b'.' && b[5] == b'.' => {
            (digits(6..10)?, digits(3..5)?, digits(0..2)?)
        }
        DateFmt::Compact if b.len() == 8 => (digits(0..4)?, digits(4..6)?, digits(6..8)?),
        _ => return None,
    };
    Some((y, m, d))
}

fn parse_date(s: &str, f: DateFmt) -> Option<NaiveDate> {
    let (y, m, d) = date_parts(s, f)?;
    // There is no year 0 on a real calendar (chrono's proleptic calendar has one).
    if y == 0 {
        return None;
    }
    NaiveDate::from_ymd_opt(y as i32, m, d)
}

/// Why `s` is no date in any of `fmts`, and what to do about it.
fn date_problem(s: &str, fmts: &[DateFmt]) -> String {
    let names: Vec<&str> = fmts.iter().map(|f| f.name()).collect();
    let accepted = names.join(", ");
    for f in fmts {
        let Some((y, m, d)) = date_parts(s, *f) else {
            continue;
        };
        let why = match u8::try_from(m)
            .ok()
            .and_then(|m| chrono::Month::try_from(m).ok())
        {
            _ if y == 0 => "there is no year 0".to_string(),
            None => format!("there is no month {m}"),
            Some(month) => format!("{} {y} has no day {d}", month.name()),
        };
        return format!(
            "'{}' is not a real date: {why} (read as {}); correct it in the source",
            shown(s),
            f.name()
        );
    }
    format!(
        "'{}' is not a date in an accepted format ({accepted}); write it as e.g. {}, or add its format to the rule's formats",
        shown(s),
        fmts.first().copied().unwrap_or(DateFmt::Ymd).example()
    )
}

impl DateFmt {
    fn name(self) -> &'static str {
        match self {
            DateFmt::Ymd => "YYYY-MM-DD",
            DateFmt::DmySlash => "DD/MM/YYYY",
            DateFmt::MdySlash => "MM/DD/YYYY",
            DateFmt::DmyDot => "DD.MM.YYYY",
            DateFmt::Compact => "YYYYMMDD",
        }
    }

    /// The 31st of January 2024 in this format.
    fn example(self) -> &'static str {
        match self {
            DateFmt::Ymd => "2024-01-31",
            DateFmt::DmySlash => "31/01/2024",
            DateFmt::MdySlash => "01/31/2024",
            DateFmt::DmyDot => "31.01.2024",
            DateFmt::Compact => "20240131",
        }
    }
}

fn date_fmt(name: &str) -> DateFmt {
    match name {
        "DD/MM/YYYY" => DateFmt::DmySlash,
        "MM/DD/YYYY" => DateFmt::MdySlash,
        "DD.MM.YYYY" => DateFmt::DmyDot,
        "YYYYMMDD" => DateFmt::Compact,
        _ => DateFmt::Ymd,
    }
}

impl Compiled {
    /// `all` gives every entity's target (for lookups). The runbook has been linted, so
    /// names resolve; an unknown one here is a bug, reported as an error rather than a panic.
    pub fn new(
        name: &str,
        e: &Entity,
        all: &indexmap::IndexMap<String, Entity>,
    ) -> anyhow::Result<Compiled> {
        let idx = |f: &str| -> anyhow::Result<usize> {
            e.columns
                .iter()
                .position(|c| c == f)
                .ok_or_else(|| anyhow::anyhow!("entity {name}: no column '{f}'"))
        };
        let mut rules = Vec::new();
        for r in &e.validate {
            rules.push(match r {
                ValidateRule::Required { field } => Rule::Required(idx(field)?),
                ValidateRule::Unique { field } => Rule::Unique(idx(field)?),
                ValidateRule::Email { field, allow_empty } => {
                    Rule::Email(idx(field)?, *allow_empty)
                }
                ValidateRule::Date {
                    field,
                    formats,
                    allow_empty,
                } => Rule::Date(
                    idx(field)?,
                    formats.iter().map(|f| date_fmt(f)).collect(),
                    *allow_empty,
                ),
                ValidateRule::Decimal {
                    field,
                    min,
                    max,
                    scale,
                    allow_empty,
                } => Rule::Decimal {
                    i: idx(field)?,
                    min: min.as_deref().map(str::parse).transpose()?,
                    max: max.as_deref().map(str::parse).transpose()?,
                    scale: *scale,
                    allow_empty: *allow_empty,
                },
                ValidateRule::Integer {
                    field,
                    min,
                    max,
                    allow_empty,
                } => Rule::Integer {
                    i: idx(field)?,
                    min: *min,
                    max: *max,
                    allow_empty: *allow_empty,
                },
                ValidateRule::Pattern {
                    field,
                    regex,
                    message,
                    allow_empty,
                } => Rule::Pattern {
                    i: idx(field)?,
                    re: Regex::new(regex)?,
                    message: message
                        .clone()
                        .unwrap_or_else(|| format!("does not match {regex}")),
                    allow_empty: *allow_empty,
                },
                ValidateRule::OneOf {
                    field,
                    values,
                    allow_empty,
                } => Rule::OneOf {
                    i: idx(field)?,
                    values: values.iter().cloned().collect(),
                    allow_empty: *allow_empty,
                },
                ValidateRule::Sum { fields, equals } => Rule::Sum {
                    fields: fields
                        .iter()
                        .map(|f| idx(f))
                        .collect::<anyhow::Result<_>>()?,
                    equals: idx(equals)?,
                },
                ValidateRule::Compare { field, op, other } => Rule::Compare {
                    i: idx(field)?,
                    op: op.clone(),
                    j: idx(other)?,
                },
                ValidateRule::Reference {
                    field,
                    entity,
                    message,
                    allow_empty,
                } => Rule::Reference {
                    i: idx(field)?,
                    entity: entity.clone(),
                    message: message
                        .clone()
                        .unwrap_or_else(|| format!("unknown {}", singular(entity))),
                    allow_empty: *allow_empty,
                },
                ValidateRule::Datetime {
                    field,
                    formats,
                    timezone,
                    allow_empty,
                } => Rule::Datetime {
                    i: idx(field)?,
                    formats: formats
                        .iter()
                        .map(|f| DtFormat::parse(f).map_err(|e| anyhow::anyhow!("{e}")))
                        .collect::<anyhow::Result<_>>()?,
                    zone: SourceZone::parse(timezone).map_err(|e| anyhow::anyhow!("{e}"))?,
                    allow_empty: *allow_empty,
                },
            });
        }
        let mut map = Vec::new();
        // An Odoo entity's identity: its `id` column, the external id of its key (of its
        // whole distinct tuple for a derived entity).
        if let (Some(prefix), true) = (&e.target.external_id, e.target.is_odoo()) {
            let fields = match &e.derive {
                Some(d) => d
                    .distinct
                    .iter()
                    .map(|f| idx(f))
                    .collect::<anyhow::Result<_>>()?,
                None => vec![idx(&e.key)?],
            };
            map.push((
                "id".to_string(),
                MapKind::ExternalId {
                    fields,
                    module: e.target.xid_module().to_string(),
                    prefix: prefix.clone(),
                    allow_empty: false,
                },
            ));
        }
        for (col, spec) in &e.map {
            let kind = match spec {
                MapSpec::Field(f) => MapKind::Field(idx(f)?),
                MapSpec::Spec(t) if t.external_id.is_some() => MapKind::ExternalId {
                    fields: vec![idx(t.from.as_deref().unwrap_or_default())?],
                    module: e.target.xid_module().to_string(),
                    prefix: t.external_id.clone().unwrap_or_default(),
                    allow_empty: true,
                },
                MapSpec::Spec(t)
                    if t.lookup
                        .as_ref()
                        .is_some_and(|l| all.get(l).is_some_and(|le| le.target.is_odoo())) =>
                {
                    // Into Odoo, a relation is the other entity's external id: the same
                    // one that entity's rows are loaded under.
                    let l = t.lookup.as_deref().unwrap_or_default();
                    let le = &all[l];
                    let fields = match (&le.derive, &t.from) {
                        (Some(d), _) => d
                            .distinct
                            .iter()
                            .map(|f| idx(f))
                            .collect::<anyhow::Result<_>>()?,
                        (None, Some(f)) => vec![idx(f)?],
                        (None, None) => anyhow::bail!("entity {name}: map.{col} has no from"),
                    };
                    MapKind::ExternalId {
                        fields,
                        module: le.target.xid_module().to_string(),
                        prefix: le.target.external_id.clone().unwrap_or_default(),
                        allow_empty: t.allow_empty,
                    }
                }
                MapSpec::Spec(t) => match (&t.from, &t.value, &t.lookup, &t.values) {
                    (Some(f), _, Some(l), _) => {
                        let le = all
                            .get(l)
                            .ok_or_else(|| anyhow::anyhow!("unknown entity {l}"))?;
                        MapKind::Lookup {
                            i: idx(f)?,
                            table: le.target.table.clone(),
                            key: le.target.key.clone(),
                            id: t.column.clone().unwrap_or_else(|| "id".into()),
                            allow_empty: t.allow_empty.then(|| l.clone()),
                        }
                    }
                    (Some(f), _, None, Some(v)) => MapKind::Values(
                        idx(f)?,
                        v.iter().map(|(a, b)| (a.clone(), b.clone())).collect(),
                        t.default.clone(),
                    ),
                    (Some(f), _, None, None) => MapKind::Field(idx(f)?),
                    (None, Some(v), _, _) => MapKind::Const(v.clone()),
                    (None, None, _, _) => {
                        anyhow::bail!("entity {name}: map.{col} has neither from nor value")
                    }
                },
            };
            map.push((col.clone(), kind));
        }
        let mut target_columns: Vec<String> = map.iter().map(|(c, _)| c.clone()).collect();
        let lines = match (&e.lines, e.target.is_odoo()) {
            (Some(l), true) => {
                let rules = Compiled::new(&format!("{name}.lines"), &l.as_entity(&e.target), all)?;
                let parent = rules.column_index(&l.parent).ok_or_else(|| {
                    anyhow::anyhow!("entity {name}: lines have no column '{}'", l.parent)
                })?;
                target_columns.extend(
                    rules
                        .target_columns
                        .iter()
                        .map(|c| format!("{}/{c}", l.field)),
                );
                Some(Box::new(LineRules {
                    rules,
                    field: l.field.clone(),
                    parent,
                    file: l.source.file.clone(),
                }))
            }
            _ => None,
        };
        Ok(Compiled {
            name: name.into(),
            dialect: e.source.dialect(),
            columns: e.columns.clone(),
            key: idx(&e.key)?,
            scope: e
                .scope
                .iter()
                .map(|s| {
                    let i = idx(&s.field)?;
                    if let Some(entity) = &s.in_scope_of {
                        return Ok(Scope::Of {
                            i,
                            entity: entity.clone(),
                        });
                    }
                    let fold = |v: &Option<Vec<String>>| -> Vec<String> {
                        v.iter()
                            .flatten()
                            .map(|x| {
                                if s.case_insensitive {
                                    x.to_lowercase()
                                } else {
                                    x.clone()
                                }
                            })
                            .collect()
                    };
                    Ok(Scope::Domain {
                        i,
                        ins: fold(&s.one_of),
                        outs: fold(&s.out),
                        others_out: s.others == Some(ScopeOthers::OutOfScope),
                        ci: s.case_insensitive,
                    })
                })
                .collect::<anyhow::Result<_>>()?,
            cleanse: e
                .cleanse
                .iter()
                .map(|c| {
                    Ok((
                        c.rule,
                        c.fields
                            .iter()
                            .map(|f| idx(f))
                            .collect::<anyhow::Result<_>>()?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?,
            rules,
            target_columns,
            map,
            lines,
        })
    }

    /// Entities whose valid keys this one references (`reference` rules, and lookups
    /// with `allow_empty`, which check their value in memory).
    pub fn references(&self) -> Vec<String> {
        let rules = self.rules.iter().filter_map(|r| match r {
            Rule::Reference { entity, .. } => Some(entity.clone()),
            _ => None,
        });
        let lookups = self.map.iter().filter_map(|(_, m)| match m {
            MapKind::Lookup {
                allow_empty: Some(entity),
                ..
            } => Some(entity.clone()),
            _ => None,
        });
        let mut all: Vec<String> = rules.chain(lookups).collect();
        all.sort();
        all.dedup();
        all
    }

    /// Entities whose keys by scope this one scopes by (`in_scope_of`).
    pub fn scope_references(&self) -> Vec<String> {
        self.scope
            .iter()
            .filter_map(|s| match s {
                Scope::Of { entity, .. } => Some(entity.clone()),
                Scope::Domain { .. } => None,
            })
            .collect()
    }

    /// Scope on trimmed values. Run before cleanse so that scope never depends on cleansing.
    /// A value outside a declared domain rejects the row even when another condition puts
    /// it out of scope: such a row (a shifted one, typically) cannot be trusted to say
    /// its own scope. Otherwise any condition that says "out" puts the row out of scope.
    fn scope_of(
        &self,
        fields: &[String],
        scope_refs: &HashMap<String, Arc<ScopeKeys>>,
    ) -> ScopeVerdict {
        let mut out = false;
        for s in &self.scope {
            match s {
                Scope::Domain {
                    i,
                    ins,
                    outs,
                    others_out,
                    ci,
                } => {
                    let raw = fields[*i].as_str();
                    let folded;
                    let v = if *ci {
                        folded = raw.to_lowercase();
                        folded.as_str()
                    } else {
                        raw
                    };
                    if ins.iter().any(|x| x == v) {
                        continue;
                    }
                    if *others_out || outs.iter().any(|x| x == v) {
                        out = true;
                        continue;
                    }
                    let list = |l: &[String]| {
                        if l.is_empty() {
                            "none declared".to_string()
                        } else {
                            l.join(", ")
                        }
                    };
                    let col = &self.columns[*i];
                    return ScopeVerdict::Rejected(RowIssue::new(
                        "scope",
                        col,
                        format!(
                            "{col} '{}' is neither in scope ({}) nor a declared out-of-scope value ({})",
                            shown(raw),
                            list(ins),
                            list(outs)
                        ),
                    ));
                }
                Scope::Of { i, entity } => {
                    let v = fields[*i].as_str();
                    let col = &self.columns[*i];
                    let Some(keys) = scope_refs.get(entity) else {
                        // The runner always passes them (dependency order); never guess.
                        return ScopeVerdict::Rejected(RowIssue::new(
                            "scope",
                            col,
                            format!("the keys of {entity} are not known in this run"),
                        ));
                    };
                    if keys.in_scope.contains(v) {
                        continue;
                    }
                    if keys.out_of_scope.contains(v) {
                        out = true;
                        continue;
                    }
                    return ScopeVerdict::Rejected(RowIssue::new(
                        "scope",
                        col,
                        format!(
                            "{col} '{}' is the key of no {} row of this extract, in scope or out",
                            shown(v),
                            singular(entity)
                        ),
                    ));
                }
            }
        }
        if out {
            ScopeVerdict::Out
        } else {
            ScopeVerdict::In
        }
    }

    /// Trim every field, then apply the cleanse rules.
    pub fn cleanse(&self, fields: &mut [String]) {
        for f in fields.iter_mut() {
            trim_in_place(f);
        }
        for (kind, idxs) in &self.cleanse {
            for &i in idxs {
                fields[i] = match kind {
                    CleanseKind::Lowercase => fields[i].to_lowercase(),
                    CleanseKind::Uppercase => fields[i].to_uppercase(),
                    CleanseKind::CollapseSpaces => {
                        fields[i].split_whitespace().collect::<Vec<_>>().join(" ")
                    }
                };
            }
        }
    }

    /// Scope → cleanse → validate → transform one row of raw (untrimmed) fields, every
    /// empty field loading as NULL, for an entity that does not scope by another one.
    pub fn process(&self, fields: Vec<String>, state: &mut RunState, refs: &Refs) -> Verdict {
        self.process_with(fields, &[], state, refs, &HashMap::new())
    }

    /// [`process`](Self::process), where `nulls[i]` says whether field `i` was NULL in the
    /// source; an empty field that was not NULL (`""`) loads as the empty string, unless a
    /// date, decimal or integer rule reads it (NULL then: `''` is no number or date). A
    /// field past the end of `nulls` counts as NULL when empty.
    /// Rules that test "empty" (required, allow_empty) treat both alike. `scope_refs` holds
    /// the keys by scope of the entities named by `in_scope_of` conditions.
    pub fn process_with(
        &self,
        fields: Vec<String>,
        nulls: &[bool],
        state: &mut RunState,
        refs: &Refs,
        scope_refs: &HashMap<String, Arc<ScopeKeys>>,
    ) -> Verdict {
        match self.check(fields, nulls, refs, scope_refs) {
            Checked::Done(v) => v,
            Checked::Pending(p) => self.settle(p, state),
        }
    }

    /// The part of [`process_with`](Self::process_with) that needs no state of the run:
    /// scope, cleanse, every rule but `unique`, transform. Rows can be checked on any
    /// thread, in any order; [`settle`](Self::settle) then finishes them in file order.
    pub fn check(
        &self,
        fields: Vec<String>,
        nulls: &[bool],
        refs: &Refs,
        scope_refs: &HashMap<String, Arc<ScopeKeys>>,
    ) -> Checked {
        self.check_into(fields, &mut Vec::new(), nulls, refs, scope_refs)
    }

    /// [`check`](Self::check), the target row made in `row_buf` (taken from it when the
    /// row goes on to `settle`): a buffer from an earlier row keeps its strings, so that
    /// checking a row allocates nothing once the buffers are warm.
    pub fn check_into(
        &self,
        mut fields: Vec<String>,
        row_buf: &mut Vec<SqlValue>,
        nulls: &[bool],
        refs: &Refs,
        scope_refs: &HashMap<String, Arc<ScopeKeys>>,
    ) -> Checked {
        for f in fields.iter_mut() {
            trim_in_place(f);
        }
        match self.scope_of(&fields, scope_refs) {
            ScopeVerdict::In => {}
            ScopeVerdict::Out => return Checked::Done(Verdict::OutOfScope),
            ScopeVerdict::Rejected(issue) => {
                return Checked::Done(Verdict::Rejected {
                    fields,
                    issues: vec![issue],
                });
            }
        }
        self.cleanse(&mut fields);
        let mut issues = Vec::new();
        let mut unique = SmallVec::new();
        let mut typed: SmallVec<[Option<Typed>; 16]> = smallvec::smallvec![None; fields.len()];
        let col = |i: usize| self.columns[i].as_str();

        let empty_fail =
            |i: usize, allow: bool, what: &str, issues: &mut Vec<RowIssue>, rule: &str| -> bool {
                if fields[i].is_empty() {
                    if !allow {
                        issues.push(RowIssue::new(
                            rule,
                            col(i),
                            format!("is empty; expected {what}"),
                        ));
                    }
                    true
                } else {
                    false
                }
            };

        for r in &self.rules {
            match r {
                Rule::Required(i) => {
                    if fields[*i].is_empty() {
                        issues.push(RowIssue::new("required", col(*i), "is required"));
                    }
                }
                // Needs the rows before this one: checked by `settle`, its reason then put
                // where it stands among the others.
                Rule::Unique(i) => {
                    if !fields[*i].is_empty() {
                        unique.push((issues.len(), *i));
                    }
                }
                Rule::Email(i, allow) => {
                    if !empty_fail(*i, *allow, "an e-mail address", &mut issues, "email")
                        && !is_email(&fields[*i])
                    {
                        issues.push(RowIssue::new(
                            "email",
                            col(*i),
                            format!(
                                "'{}' is not an address local@domain.tld",
                                shown(&fields[*i])
                            ),
                        ));
                    }
                }
                Rule::Date(i, fmts, allow) => {
                    if !empty_fail(*i, *allow, "a date", &mut issues, "date") {
                        match fmts.iter().find_map(|f| parse_date(&fields[*i], *f)) {
                            Some(d) => typed[*i] = Some(Typed::Date(d)),
                            None => issues.push(RowIssue::new(
                                "date",
                                col(*i),
                                date_problem(&fields[*i], fmts),
                            )),
                        }
                    }
                }
                Rule::Decimal {
                    i,
                    min,
                    max,
                    scale,
                    allow_empty,
                } => {
                    if empty_fail(*i, *allow_empty, "a decimal", &mut issues, "decimal") {
                        continue;
                    }
                    let s = &fields[*i];
                    let Some(d) = parse_decimal(s) else {
                        let message = match decimal_meant(s) {
                            Some(m) => format!(
                                "'{s}' is not a decimal: write it as {m} (a '.' point, no thousands separators)"
                            ),
                            None => format!(
                                "'{}' is not a decimal: write digits with a '.' point and no thousands separators, e.g. 1234.56",
                                shown(s)
                            ),
                        };
                        issues.push(RowIssue::new("decimal", col(*i), message));
                        continue;
                    };
                    let mut ok = true;
                    if let Some(sc) = scale
                        && written_scale(s) > *sc
                    {
                        issues.push(RowIssue::new(
                            "decimal",
                            col(*i),
                            format!("'{s}' has more than {sc} decimal places"),
                        ));
                        ok = false;
                    }
                    if let Some(m) = min
                        && d < *m
                    {
                        issues.push(RowIssue::new(
                            "decimal",
                            col(*i),
                            format!("{s} is below the minimum {m}"),
                        ));
                        ok = false;
                    }
                    if let Some(m) = max
                        && d > *m
                    {
                        issues.push(RowIssue::new(
                            "decimal",
                            col(*i),
                            format!("{s} is above the maximum {m}"),
                        ));
                        ok = false;
                    }
                    if ok {
                        typed[*i] = Some(Typed::Dec(d));
                    }
                }
                Rule::Integer {
                    i,
                    min,
                    max,
                    allow_empty,
                } => {
                    if empty_fail(*i, *allow_empty, "an integer", &mut issues, "integer") {
                        continue;
                    }
                    let s = &fields[*i];
                    let parsed =
                        if s.bytes().enumerate().all(|(k, c)| {
                            c.is_ascii_digit() || (k == 0 && c == b'-' && s.len() > 1)
                        }) {
                            s.parse::<i64>().ok()
                        } else {
                            None
                        };
                    match parsed {
                        None => issues.push(RowIssue::new(
                            "integer",
                            col(*i),
                            format!(
                                "'{}' is not an integer: write a whole number in digits only, e.g. 1200",
                                shown(s)
                            ),
                        )),
                        Some(n) if min.is_some_and(|m| n < m) || max.is_some_and(|m| n > m) => {
                            issues.push(RowIssue::new(
                                "integer",
                                col(*i),
                                format!(
                                    "{n} is outside {}..{}",
                                    min.map(|m| m.to_string()).unwrap_or_default(),
                                    max.map(|m| m.to_string()).unwrap_or_default()
                                ),
                            ))
                        }
                        Some(n) => typed[*i] = Some(Typed::Int(n)),
                    }
                }
                Rule::Pattern {
                    i,
                    re,
                    message,
                    allow_empty,
                } => {
                    if !empty_fail(*i, *allow_empty, "a value", &mut issues, "pattern")
                        && !re.is_match(&fields[*i])
                    {
                        issues.push(RowIssue::new(
                            "pattern",
                            col(*i),
                            format!("'{}' {message}", shown(&fields[*i])),
                        ));
                    }
                }
                Rule::OneOf {
                    i,
                    values,
                    allow_empty,
                } => {
                    if !empty_fail(*i, *allow_empty, "a listed value", &mut issues, "one_of")
                        && !values.contains(&fields[*i])
                    {
                        let mut allowed: Vec<_> = values.iter().cloned().collect();
                        allowed.sort();
                        issues.push(RowIssue::new(
                            "one_of",
                            col(*i),
                            format!(
                                "'{}' is not one of {}",
                                shown(&fields[*i]),
                                allowed.join(", ")
                            ),
                        ));
                    }
                }
                Rule::Datetime {
                    i,
                    formats,
                    zone,
                    allow_empty,
                } => {
                    if !empty_fail(*i, *allow_empty, "a date and time", &mut issues, "datetime") {
                        match datetime::read(&fields[*i], formats, zone) {
                            Ok(t) => typed[*i] = Some(Typed::DateTime(t)),
                            Err(why) => issues.push(RowIssue::new("datetime", col(*i), why)),
                        }
                    }
                }
                Rule::Sum { .. } | Rule::Compare { .. } | Rule::Reference { .. } => {}
            }
        }
        // Cross-field rules run on values that parsed; a failed parse is already a reason.
        let dec = |i: usize| -> Option<Decimal> {
            match &typed[i] {
                Some(Typed::Dec(d)) => Some(*d),
                Some(_) => None,
                None => {
                    if fields[i].is_empty() {
                        None
                    } else {
                        parse_decimal(&fields[i])
                    }
                }
            }
        };
        for r in &self.rules {
            match r {
                Rule::Sum {
                    fields: parts,
                    equals,
                } => {
                    // Summed as read: no list of the parts per row.
                    let sum = parts
                        .iter()
                        .try_fold(Decimal::ZERO, |acc, &i| dec(i).map(|d| acc + d));
                    if let (Some(sum), Some(total)) = (sum, dec(*equals))
                        && sum != total
                    {
                        let names: Vec<&str> = parts.iter().map(|&i| col(i)).collect();
                        issues.push(RowIssue::new(
                            "sum",
                            col(*equals),
                            format!(
                                "{} = {sum}, but {} is {total}",
                                names.join(" + "),
                                col(*equals)
                            ),
                        ));
                    }
                }
                Rule::Compare { i, op, j } => {
                    if let (Some(a), Some(b)) = (dec(*i), dec(*j)) {
                        let ok = match op.as_str() {
                            "<" => a < b,
                            "<=" => a <= b,
                            ">" => a > b,
                            ">=" => a >= b,
                            "=" => a == b,
                            _ => a != b,
                        };
                        if !ok {
                            issues.push(RowIssue::new(
                                "compare",
                                col(*i),
                                format!("{} {a} must be {op} {} {b}", col(*i), col(*j)),
                            ));
                        }
                    }
                }
                Rule::Reference {
                    i,
                    entity,
                    message,
                    allow_empty,
                } => {
                    let v = &fields[*i];
                    if *allow_empty && v.is_empty() {
                        continue;
                    }
                    let known = refs.get(entity).is_some_and(|set| set.contains(v));
                    if !known {
                        issues.push(RowIssue::new(
                            "reference",
                            col(*i),
                            format!(
                                "{message} '{v}' (not a valid, in-scope {} of this run)",
                                singular(entity)
                            ),
                        ));
                    }
                }
                _ => {}
            }
        }

        let row = self.transform(&fields, &typed, nulls, refs, row_buf, &mut issues);
        Checked::Pending(Pending {
            fields,
            issues,
            row,
            unique,
        })
    }

    /// The map to target values, made in `row_buf` (see [`check_into`](Self::check_into));
    /// a value the map cannot make adds its issue. Its own function, never inlined, so
    /// that a profile names it (`bench/callgrind_split.py`: "transform").
    #[inline(never)]
    fn transform(
        &self,
        fields: &[String],
        typed: &[Option<Typed>],
        nulls: &[bool],
        refs: &Refs,
        row_buf: &mut Vec<SqlValue>,
        issues: &mut Vec<RowIssue>,
    ) -> Vec<SqlValue> {
        let col = |i: usize| self.columns[i].as_str();
        let mut row = std::mem::take(row_buf);
        row.truncate(self.map.len());
        row.reserve_exact(self.map.len() - row.len());
        row.resize(self.map.len(), SqlValue::Null);
        for (slot, (target_col, kind)) in row.iter_mut().zip(&self.map) {
            match kind {
                MapKind::Field(i) => match typed[*i] {
                    Some(Typed::Date(d)) => *slot = SqlValue::Date(d),
                    Some(Typed::Dec(d)) => *slot = SqlValue::Dec(d),
                    Some(Typed::Int(n)) => *slot = SqlValue::Int(n),
                    Some(Typed::DateTime(t)) => *slot = SqlValue::DateTime(t),
                    None if fields[*i].is_empty()
                        && (nulls.get(*i).copied().unwrap_or(true) || self.typed(*i)) =>
                    {
                        *slot = SqlValue::Null
                    }
                    None => slot.set_text(&fields[*i]),
                },
                MapKind::Values(i, m, default) => match m.get(&fields[*i]).or(default.as_ref()) {
                    Some(v) => slot.set_text(v),
                    None => {
                        issues.push(RowIssue::new(
                            "map",
                            col(*i),
                            format!("no mapping for '{}' into {target_col}", fields[*i]),
                        ));
                        *slot = SqlValue::Null
                    }
                },
                MapKind::Lookup {
                    i,
                    allow_empty: Some(entity),
                    ..
                } if fields[*i].is_empty()
                    || !refs.get(entity).is_some_and(|k| k.contains(&fields[*i])) =>
                {
                    if !fields[*i].is_empty() {
                        issues.push(RowIssue::new(
                            "lookup",
                            col(*i),
                            format!(
                                "'{}' is not a valid, in-scope {} of this run, so {target_col} would be an empty reference",
                                shown(&fields[*i]),
                                singular(entity)
                            ),
                        ));
                    }
                    *slot = SqlValue::Null
                }
                MapKind::Lookup {
                    i, table, key, id, ..
                } => slot.set_lookup(table, key, id, &fields[*i]),
                MapKind::Const(v) => slot.set_text(v),
                MapKind::ExternalId {
                    fields: idx,
                    module,
                    prefix,
                    allow_empty,
                } => {
                    let parts: Vec<&str> = idx.iter().map(|&i| fields[i].as_str()).collect();
                    *slot = if *allow_empty && parts.iter().all(|p| p.is_empty()) {
                        SqlValue::Null
                    } else {
                        SqlValue::Text(external_id(module, prefix, &parts))
                    }
                }
            }
        }
        row
    }

    /// Finish a row [`check`](Self::check)ed, in file order: its `unique` rules against
    /// the in-scope rows before it (a value counts as seen whether or not its row is valid).
    pub fn settle(&self, p: Pending, state: &mut RunState) -> Verdict {
        let Pending {
            fields,
            mut issues,
            mut row,
            unique,
        } = p;
        let mut dups = Vec::new();
        for (at, i) in unique {
            let v = &fields[i];
            let keys = &state.keys;
            if !state.seen.entry(i).or_insert_with(|| keys.set()).insert(v) {
                let col = &self.columns[i];
                dups.push((
                    at,
                    RowIssue::new(
                        "unique",
                        col,
                        format!(
                            "duplicate '{}': an earlier in-scope row has it; keep one of the two in the source",
                            shown(v)
                        ),
                    ),
                ));
            }
        }
        // Last first, so that the earlier positions still hold.
        for (at, issue) in dups.into_iter().rev() {
            issues.insert(at, issue);
        }
        if issues.is_empty() {
            // The line cells are filled in by the pipeline, which reads the lines' file.
            if let Some(l) = &self.lines {
                row.resize(row.len() + l.rules.target_columns.len(), SqlValue::Null);
            }
            Verdict::Valid { fields, row }
        } else {
            Verdict::Rejected { fields, issues }
        }
    }

    /// A date, datetime, decimal or integer rule reads field `i`: an empty value there has no
    /// typed form, so it loads as NULL even when written `""`.
    fn typed(&self, i: usize) -> bool {
        self.rules.iter().any(|r| match r {
            Rule::Date(j, ..)
            | Rule::Datetime { i: j, .. }
            | Rule::Decimal { i: j, .. }
            | Rule::Integer { i: j, .. } => *j == i,
            _ => false,
        })
    }

    pub fn key_index(&self) -> usize {
        self.key
    }

    /// A `unique` rule holds the key: no two valid rows share it, so batches may be
    /// written in any order (without it, the file order decides which row of a key wins).
    pub fn unique_key(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r, Rule::Unique(i) if *i == self.key))
    }

    /// How many `unique` rules keep a set of keys while the entity is read.
    pub fn unique_rules(&self) -> usize {
        self.rules
            .iter()
            .filter(|r| matches!(r, Rule::Unique(_)))
            .count()
    }

    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == name)
    }
}

fn singular(entity: &str) -> String {
    entity.strip_suffix('s').unwrap_or(entity).replace('_', " ")
}

#[cfg(test)]
mod tests;
