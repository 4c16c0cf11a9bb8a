//! The reject table's state. Nothing here holds a reject file: the edge
//! (`tui::reject_store`) indexes each file once off the UI thread, counts the rows of the
//! current filter off the UI thread, and hands back only the window of rows around the
//! selection. This module decides *what* is wanted (a [`RejectQuery`] and a
//! [`WindowRequest`]) and keeps what came back, so it stays pure and testable.

use indexmap::IndexMap;
use tui_input::{Input, InputRequest};

use super::{Action, App, Effect, Tone, fmt_count};

/// The window of rows kept around the selection moves in blocks of this many rows.
pub const WINDOW_BLOCK: usize = 128;
/// Rows in a window: the selection's block and one block either side.
pub const WINDOW_ROWS: usize = 3 * WINDOW_BLOCK;
/// How a reject file joins several reasons in one column.
pub const REASON_SEP: &str = " | ";
/// Rows moved by PgUp / PgDn in the detail view.
const DETAIL_PAGE: isize = 10;

/// Where the well-known columns of a reject file are. Anything else is an original value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectColumns {
    pub line: Option<usize>,
    pub rule: Option<usize>,
    pub field: Option<usize>,
    pub message: Option<usize>,
    pub originals: Vec<usize>,
}

impl RejectColumns {
    /// Recognises `line`, `rule`, `field`, `message` (case-insensitive, optional leading
    /// `_` or `reject_` prefix); every other column is an original value.
    pub fn from_header(header: &[String]) -> Self {
        let mut c = RejectColumns::default();
        for (i, h) in header.iter().enumerate() {
            let h = h.trim().to_ascii_lowercase();
            let h = h.trim_start_matches('_');
            let h = h.strip_prefix("reject_").unwrap_or(h);
            let slot = match h {
                "line" | "source_line" | "line_no" => &mut c.line,
                "rule" => &mut c.rule,
                "field" => &mut c.field,
                "message" | "error" => &mut c.message,
                _ => {
                    c.originals.push(i);
                    continue;
                }
            };
            if slot.is_none() {
                *slot = Some(i);
            } else {
                c.originals.push(i);
            }
        }
        c
    }
}

/// The name the rejects pane gives the one2many lines of `entity` (`open_invoices.lines`),
/// whose rejects are in a file of their own.
pub fn lines_entity(entity: &str) -> String {
    format!("{entity}.lines")
}

/// Split a joined reasons cell back into its parts ("" gives none).
pub fn split_reasons(cell: &str) -> Vec<&str> {
    if cell.is_empty() {
        return Vec::new();
    }
    cell.split(REASON_SEP).collect()
}

/// What the console knows of one indexed reject file (not its rows).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectFile {
    pub entity: String,
    pub path: String,
    pub header: Vec<String>,
    pub columns: RejectColumns,
    pub rows: usize,
    /// Distinct rules and fields present, in order of first appearance.
    pub rules: Vec<String>,
    pub fields: Vec<String>,
}

/// The rows the table shows: every part that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RejectQuery {
    pub entity: Option<String>,
    /// A row matches if any of its reasons has this rule.
    pub rule: Option<String>,
    /// A row matches if any of its reasons names this field.
    pub field: Option<String>,
    /// Any cell contains this text, case-insensitive.
    pub search: Option<String>,
}

impl RejectQuery {
    pub fn wants_entity(&self, entity: &str) -> bool {
        self.entity.as_deref().is_none_or(|e| e == entity)
    }

    /// Whether a joined rule (or field) cell matches `want`.
    pub fn reason_matches(want: Option<&str>, cell: &str) -> bool {
        want.is_none_or(|w| split_reasons(cell).contains(&w))
    }

    /// The search needle, lower-cased once.
    pub fn needle(&self) -> Option<String> {
        self.search.as_deref().map(str::to_lowercase)
    }

    /// Whether any cell contains `needle` (already lower-cased).
    pub fn cell_hits<'a>(needle: &str, mut cells: impl Iterator<Item = &'a str>) -> bool {
        cells.any(|c| c.to_lowercase().contains(needle))
    }

    /// The whole query on one parsed row (the edge uses its index for rule and field).
    pub fn matches_row(&self, entity: &str, columns: &RejectColumns, cells: &[String]) -> bool {
        let cell = |c: Option<usize>| c.and_then(|c| cells.get(c)).map_or("", String::as_str);
        self.wants_entity(entity)
            && Self::reason_matches(self.rule.as_deref(), cell(columns.rule))
            && Self::reason_matches(self.field.as_deref(), cell(columns.field))
            && self
                .needle()
                .is_none_or(|n| Self::cell_hits(&n, cells.iter().map(String::as_str)))
    }

    /// `people · rule required · “acme”`, or `all entities`.
    pub fn describe(&self) -> String {
        let mut parts = vec![self.entity.as_deref().unwrap_or("all entities").to_string()];
        if let Some(r) = &self.rule {
            parts.push(format!("rule {r}"));
        }
        if let Some(f) = &self.field {
            parts.push(format!("field {f}"));
        }
        if let Some(s) = &self.search {
            parts.push(format!("“{s}”"));
        }
        parts.join(" · ")
    }
}

/// One row of a reject file as the edge read it: every cell, in the file's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectRecord {
    pub entity: String,
    pub cells: Vec<String>,
}

/// Rows `start..start + len` of the current filter's matches, for query `generation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowRequest {
    pub generation: u64,
    pub start: usize,
    pub len: usize,
}

/// One reason a row was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub rule: String,
    pub field: String,
    pub message: String,
}

/// One row as the table and the detail view show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectView<'a> {
    pub entity: &'a str,
    pub line: &'a str,
    pub rule: &'a str,
    pub field: &'a str,
    pub message: &'a str,
    /// `(column, value)` of the original row, in the extract's order.
    pub originals: Vec<(&'a str, &'a str)>,
}

impl RejectView<'_> {
    /// `column=value` pairs on one line.
    pub fn originals_line(&self) -> String {
        self.originals
            .iter()
            .map(|(h, v)| format!("{h}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Every reason: the joined rule, field and message cells split back apart.
    pub fn reasons(&self) -> Vec<Reason> {
        let (rules, fields, messages) = (
            split_reasons(self.rule),
            split_reasons(self.field),
            split_reasons(self.message),
        );
        let n = rules.len().max(fields.len()).max(messages.len());
        let at = |v: &[&str], i: usize| v.get(i).copied().unwrap_or("").to_string();
        (0..n)
            .map(|i| Reason {
                rule: at(&rules, i),
                field: at(&fields, i),
                message: at(&messages, i),
            })
            .collect()
    }
}

/// The detail view of one row (Enter); Esc closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectDetail {
    pub record: RejectRecord,
    pub scroll: usize,
}

#[derive(Debug, Clone, Default)]
pub struct RejectTable {
    pub files: IndexMap<String, RejectFile>,
    pub query: RejectQuery,
    /// Bumped on every new query; answers for older ones are dropped.
    pub generation: u64,
    /// Rows matching `query` once the edge has counted them; `None` while it works.
    pub matched: Option<usize>,
    pub selected: usize,
    /// The rows the edge fetched around the selection.
    pub window: Option<(WindowRequest, Vec<RejectRecord>)>,
    /// The search line while it is being typed (`/`).
    pub search: Option<Input>,
    pub detail: Option<RejectDetail>,
    pub exporting: bool,
    /// What the last export did, shown under the table (the footer gives way to the
    /// outcome once the run has finished).
    pub export_status: Option<(String, Tone)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectAction {
    /// The edge indexed a reject file.
    Indexed(RejectFile),
    IndexFailed {
        entity: String,
        error: String,
    },
    /// The edge counted the rows of query `generation`.
    Counted {
        generation: u64,
        matched: usize,
    },
    QueryFailed {
        generation: u64,
        error: String,
    },
    /// The rows of a window the table asked for.
    Rows {
        request: WindowRequest,
        rows: Vec<RejectRecord>,
    },
    CycleEntity,
    CycleRule,
    CycleField,
    /// Drop entity, rule, field and search filters.
    ClearFilters,
    /// `/`: open the search line.
    StartSearch,
    SearchInput(InputRequest),
    /// Enter on the search line: search for what was typed (nothing clears the search).
    SubmitSearch,
    /// Esc on the search line: close it, keep the search in force.
    CancelSearch,
    OpenDetail,
    CloseDetail,
    DetailScroll(isize),
    DetailPage(isize),
    /// `x`: write the current filter's rows to CSV.
    Export,
    Exported {
        paths: Vec<String>,
        rows: usize,
    },
    ExportFailed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RejectEffect {
    /// Count (and remember) the rows of `query`, off the UI thread.
    Query { generation: u64, query: RejectQuery },
    /// Write the rows of `query` to CSV next to the reject files, off the UI thread.
    Export { generation: u64, query: RejectQuery },
}

fn cycle(values: &[String], cur: &Option<String>) -> Option<String> {
    match cur {
        None => values.first().cloned(),
        Some(c) => {
            let pos = values.iter().position(|v| v == c);
            match pos {
                Some(i) if i + 1 < values.len() => Some(values[i + 1].clone()),
                _ => None,
            }
        }
    }
}

impl RejectTable {
    /// Rows in every reject file, whatever the filter.
    pub fn total(&self) -> usize {
        self.files.values().map(|f| f.rows).sum()
    }

    /// Rows the current filter shows (0 while counting).
    pub fn count(&self) -> usize {
        self.matched.unwrap_or(0)
    }

    /// Distinct values (rules or fields) present in the files the entity filter shows.
    fn present(&self, pick: fn(&RejectFile) -> &Vec<String>) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for f in self
            .files
            .values()
            .filter(|f| self.query.wants_entity(&f.entity))
        {
            for v in pick(f) {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
        }
        out
    }

    pub fn rules_present(&self) -> Vec<String> {
        self.present(|f| &f.rules)
    }

    pub fn fields_present(&self) -> Vec<String> {
        self.present(|f| &f.fields)
    }

    /// Start a new query: the count and the rows shown so far no longer hold.
    fn requery(&mut self) -> Vec<Effect> {
        self.generation += 1;
        self.matched = None;
        self.window = None;
        if self.files.is_empty() {
            self.matched = Some(0);
            return vec![];
        }
        vec![Effect::Rejects(RejectEffect::Query {
            generation: self.generation,
            query: self.query.clone(),
        })]
    }

    fn refilter(&mut self) -> Vec<Effect> {
        self.selected = 0;
        self.requery()
    }

    pub fn scroll(&mut self, delta: isize) {
        let max = self.count().saturating_sub(1) as isize;
        self.selected = (self.selected as isize + delta).clamp(0, max.max(0)) as usize;
    }

    /// The window the table needs for the selection, if it is not the one held. Blocks
    /// keep it still while the selection moves inside them.
    pub fn wanted_window(&self) -> Option<WindowRequest> {
        let n = self.matched.filter(|&n| n > 0)?;
        let start = (self.selected / WINDOW_BLOCK).saturating_sub(1) * WINDOW_BLOCK;
        let req = WindowRequest {
            generation: self.generation,
            start,
            len: WINDOW_ROWS.min(n - start),
        };
        match &self.window {
            Some((held, _)) if *held == req => None,
            _ => Some(req),
        }
    }

    /// Row `i` of the current filter, if the edge has fetched it.
    pub fn record(&self, i: usize) -> Option<&RejectRecord> {
        let (req, rows) = self.window.as_ref()?;
        if req.generation != self.generation {
            return None;
        }
        rows.get(i.checked_sub(req.start)?)
    }

    /// A fetched record as the table shows it.
    pub fn view<'a>(&'a self, r: &'a RejectRecord) -> RejectView<'a> {
        let file = self.files.get(&r.entity);
        let cols = file.map(|f| &f.columns);
        let cell = |c: Option<usize>| c.and_then(|c| r.cells.get(c)).map_or("", String::as_str);
        let originals = cols
            .map(|c| {
                c.originals
                    .iter()
                    .filter_map(|&i| {
                        let v = r.cells.get(i)?;
                        let h = file
                            .and_then(|f| f.header.get(i))
                            .map_or("?", String::as_str);
                        Some((h, v.as_str()))
                    })
                    .collect()
            })
            .unwrap_or_default();
        RejectView {
            entity: &r.entity,
            line: cell(cols.and_then(|c| c.line)),
            rule: cell(cols.and_then(|c| c.rule)),
            field: cell(cols.and_then(|c| c.field)),
            message: cell(cols.and_then(|c| c.message)),
            originals,
        }
    }

    /// Row `i` of the current filter as the table shows it.
    pub fn row(&self, i: usize) -> Option<RejectView<'_>> {
        self.record(i).map(|r| self.view(r))
    }

    /// Lines of the detail view (for clamping its scroll).
    pub fn detail_lines(&self) -> usize {
        self.detail.as_ref().map_or(0, |d| {
            let v = self.view(&d.record);
            // Title and gap, each original value, gap, the reasons' title and each reason.
            4 + v.originals.len() + v.reasons().len()
        })
    }

    fn scroll_detail(&mut self, delta: isize) {
        let max = self.detail_lines().saturating_sub(1) as isize;
        if let Some(d) = &mut self.detail {
            d.scroll = (d.scroll as isize + delta).clamp(0, max.max(0)) as usize;
        }
    }
}

/// Apply one reject-table action.
pub fn update(app: &mut App, action: RejectAction) -> Vec<Effect> {
    let t = &mut app.rejects;
    match action {
        RejectAction::Indexed(file) => {
            let (entity, n) = (file.entity.clone(), file.rows);
            t.files.insert(entity.clone(), file);
            app.note(
                format!("Rejects of {entity} loaded: {} rows", fmt_count(n as u64)),
                Tone::Neutral,
            );
            return app.rejects.requery();
        }
        RejectAction::IndexFailed { entity, error } => app.note(
            format!("✗ Could not read rejects of {entity}: {error}"),
            Tone::Bad,
        ),
        RejectAction::Counted {
            generation,
            matched,
        } => {
            if generation == t.generation {
                t.matched = Some(matched);
                t.selected = t.selected.min(matched.saturating_sub(1));
            }
        }
        RejectAction::QueryFailed { generation, error } => {
            if generation == t.generation {
                t.matched = Some(0);
                app.notice = Some(format!("✗ Reject search failed: {error}"));
            }
        }
        RejectAction::Rows { request, rows } => {
            if request.generation == t.generation {
                t.window = Some((request, rows));
            }
        }
        RejectAction::CycleEntity => {
            let names: Vec<String> = t.files.keys().cloned().collect();
            t.query.entity = cycle(&names, &t.query.entity);
            // A rule or field the new entity does not have would show nothing.
            if t.query
                .rule
                .as_ref()
                .is_some_and(|r| !t.rules_present().contains(r))
            {
                t.query.rule = None;
            }
            if t.query
                .field
                .as_ref()
                .is_some_and(|f| !t.fields_present().contains(f))
            {
                t.query.field = None;
            }
            return t.refilter();
        }
        RejectAction::CycleRule => {
            t.query.rule = cycle(&t.rules_present(), &t.query.rule);
            return t.refilter();
        }
        RejectAction::CycleField => {
            t.query.field = cycle(&t.fields_present(), &t.query.field);
            return t.refilter();
        }
        RejectAction::ClearFilters => {
            if t.query != RejectQuery::default() {
                t.query = RejectQuery::default();
                return t.refilter();
            }
        }
        RejectAction::StartSearch => {
            t.search = Some(Input::new(t.query.search.clone().unwrap_or_default()));
        }
        RejectAction::SearchInput(req) => {
            if let Some(i) = &mut t.search {
                i.handle(req);
            }
        }
        RejectAction::SubmitSearch => {
            if let Some(i) = t.search.take() {
                let text = i.value().trim().to_string();
                let search = (!text.is_empty()).then_some(text);
                if search != t.query.search {
                    t.query.search = search;
                    return t.refilter();
                }
            }
        }
        RejectAction::CancelSearch => t.search = None,
        RejectAction::OpenDetail => {
            if let Some(r) = t.record(t.selected).cloned() {
                t.detail = Some(RejectDetail {
                    record: r,
                    scroll: 0,
                });
            }
        }
        RejectAction::CloseDetail => t.detail = None,
        RejectAction::DetailScroll(d) => t.scroll_detail(d),
        RejectAction::DetailPage(d) => t.scroll_detail(d * DETAIL_PAGE),
        RejectAction::Export => {
            if t.exporting {
                app.notice = Some("An export is already running".into());
            } else if t.matched.is_none_or(|n| n == 0) {
                app.notice = Some("Nothing to export: no rows match the filter".into());
            } else {
                t.exporting = true;
                let text = format!("Exporting {}…", t.query.describe());
                t.export_status = Some((text.clone(), Tone::Active));
                app.notice = Some(text);
                return vec![Effect::Rejects(RejectEffect::Export {
                    generation: t.generation,
                    query: t.query.clone(),
                })];
            }
        }
        RejectAction::Exported { paths, rows } => {
            t.exporting = false;
            let text = format!(
                "Exported {} rows to {}",
                fmt_count(rows as u64),
                paths.join(", ")
            );
            t.export_status = Some((text.clone(), Tone::Good));
            app.note(text.clone(), Tone::Good);
            app.notice = Some(text);
        }
        RejectAction::ExportFailed { error } => {
            t.exporting = false;
            let text = format!("✗ Export failed: {error}");
            t.export_status = Some((text.clone(), Tone::Bad));
            app.note(text.clone(), Tone::Bad);
            app.notice = Some(text);
        }
    }
    vec![]
}

impl From<RejectAction> for Action {
    fn from(a: RejectAction) -> Self {
        Action::Rejects(a)
    }
}

#[cfg(test)]
mod tests;
