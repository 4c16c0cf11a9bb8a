//! `load(fields, data)`, step by step as Odoo's `BaseModel.load` does it (protocol §1–2):
//! extract records (one2many continuation rows), convert cells (conversion errors are logged
//! and not capped), batch, flush in a savepoint, fall back row by row only to report errors
//! (capped at 10 with Odoo's warning), and roll the whole call back on any error.

use super::orm::{Db, OrmError, Rec};
use super::schema::{Kind, Model};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashSet};

#[derive(Clone, Debug)]
enum Cell {
    Str(String),
    Sub(Vec<Extracted>),
}

/// One record's raw cells; the key "" is a relation's bare (by-name) column.
type Extracted = BTreeMap<String, Cell>;

const CAP_WARNING: &str = "Found more than 10 errors and more than one error per 10 records, interrupted to avoid showing too many errors.";
const FALSES: [&str; 4] = ["", "0", "false", "no"];
const TRUES: [&str; 3] = ["1", "true", "yes"];

/// Odoo's `fix_import_export_id_paths`: `partner_id.id` → `partner_id/.id`, `:id` → `/id`.
fn split_path(p: &str) -> Vec<String> {
    let re = regex::Regex::new(r"([^/])\.id").unwrap();
    let p = re.replace_all(p, "$1/.id").replace(":id", "/id");
    p.split('/').map(String::from).collect()
}

fn check_paths(db: &Db, m: &Model, paths: &[Vec<String>]) -> Result<(), OrmError> {
    for p in paths {
        let head = p[0].as_str();
        if matches!(head, "id" | ".id" | "") {
            continue;
        }
        let Some(fl) = m.field(head) else {
            // Odoo raises here (an RPC error, not a message): protocol §1.
            return Err(OrmError::Value(format!("Invalid field name '{head}'")));
        };
        if p.len() > 1
            && let Kind::One2many(co, _) = fl.kind
        {
            check_paths(db, db.model(co).unwrap(), &[p[1..].to_vec()])?;
        }
    }
    Ok(())
}

fn is_rel(m: &Model, name: &str) -> bool {
    m.field(name).is_some_and(|f| {
        matches!(
            f.kind,
            Kind::Many2one(..) | Kind::One2many(..) | Kind::Many2many(..)
        )
    })
}

fn extract(
    db: &Db,
    m: &Model,
    paths: &[Vec<String>],
    data: &[Vec<String>],
    limit: usize,
) -> Vec<(Extracted, usize, usize)> {
    let cell = |row: &Vec<String>, i: usize| row.get(i).cloned().unwrap_or_default();
    let is_o2m = |p: &Vec<String>| {
        m.field(&p[0])
            .is_some_and(|f| matches!(f.kind, Kind::One2many(..)))
    };
    let only_o2m = |row: &Vec<String>| {
        let mut any_o2m = false;
        for (i, p) in paths.iter().enumerate() {
            let filled = !cell(row, i).is_empty();
            if is_o2m(p) {
                any_o2m |= filled;
            } else if filled {
                return false;
            }
        }
        any_o2m
    };
    let mut out = Vec::new();
    let mut index = 0;
    while index < data.len() && index < limit {
        let row = &data[index];
        let mut rec = Extracted::new();
        for (i, p) in paths.iter().enumerate() {
            if !is_rel(m, &p[0]) {
                rec.insert(p[0].clone(), Cell::Str(cell(row, i)));
            }
        }
        let mut span = vec![row.clone()];
        for r in &data[index + 1..] {
            if !only_o2m(r) {
                break;
            }
            span.push(r.clone());
        }
        let mut seen = HashSet::new();
        for p in paths {
            let rel = &p[0];
            if !is_rel(m, rel) || !seen.insert(rel.clone()) {
                continue;
            }
            let co = match m.field(rel).unwrap().kind {
                Kind::Many2one(c, _) | Kind::One2many(c, _) | Kind::Many2many(c) => c,
                _ => unreachable!(),
            };
            let (idx, sub): (Vec<usize>, Vec<Vec<String>>) = paths
                .iter()
                .enumerate()
                .filter(|(_, q)| &q[0] == rel)
                .map(|(i, q)| {
                    let rest = if q.len() > 1 {
                        q[1..].to_vec()
                    } else {
                        vec![String::new()]
                    };
                    (i, rest)
                })
                .unzip();
            let reldata: Vec<Vec<String>> = span
                .iter()
                .map(|r| idx.iter().map(|i| cell(r, *i)).collect::<Vec<_>>())
                .filter(|cells| cells.iter().any(|c| !c.is_empty()))
                .collect();
            let sub = extract(db, db.model(co).unwrap(), &sub, &reldata, usize::MAX)
                .into_iter()
                .map(|(r, _, _)| r)
                .collect();
            rec.insert(rel.clone(), Cell::Sub(sub));
        }
        out.push((rec, index, index + span.len() - 1));
        index += span.len();
    }
    out
}

/// A conversion failure: Odoo's message with `%(field)s` still in it, plus extra keys.
struct ConvErr {
    warning: bool,
    message: String,
    extra: Map<String, Value>,
}

fn err(message: String) -> ConvErr {
    ConvErr {
        warning: false,
        message,
        extra: Map::new(),
    }
}

struct Loader<'a> {
    db: &'a mut Db,
    model: String,
    module: String,
    ctx: Map<String, Value>,
    messages: Vec<Value>,
    ids: Vec<i64>,
    batch: Vec<(Option<String>, Rec, Value)>,
    batch_xids: HashSet<String>,
    creatable: HashSet<String>,
}

pub fn load(
    db: &mut Db,
    model: &str,
    fields: &[String],
    data: &[Vec<String>],
    ctx: &Map<String, Value>,
) -> Result<Value, OrmError> {
    let m = db
        .model(model)
        .cloned()
        .ok_or_else(|| OrmError::Value(format!("Object {model} doesn't exist")))?;
    let paths: Vec<Vec<String>> = fields.iter().map(|f| split_path(f)).collect();
    check_paths(db, &m, &paths)?;
    let limit = ctx
        .get("_import_limit")
        .and_then(|v| v.as_u64())
        .map(|v| v as usize);
    let extracted = extract(db, &m, &paths, data, limit.unwrap_or(usize::MAX));
    let mut creatable: HashSet<String> = HashSet::from([model.to_string()]);
    for p in &paths {
        if let Some(Kind::One2many(co, _)) = m.field(&p[0]).map(|f| f.kind.clone()) {
            creatable.insert(co.to_string());
        }
    }
    let sp = db.savepoint();
    let mut l = Loader {
        db,
        model: model.to_string(),
        module: ctx
            .get("module")
            .and_then(|v| v.as_str())
            .unwrap_or("__import__")
            .to_string(),
        ctx: ctx.clone(),
        messages: Vec::new(),
        ids: Vec::new(),
        batch: Vec::new(),
        batch_xids: HashSet::new(),
        creatable,
    };
    let mut last_to: i64 = -1;
    for (stream_index, (rec, from, to)) in extracted.into_iter().enumerate() {
        let info = json!({"rows": {"from": from, "to": to}, "record": stream_index});
        last_to = to as i64;
        let xid = match rec.get("id") {
            Some(Cell::Str(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        };
        let mut dbid = None;
        if let Some(Cell::Str(s)) = rec.get(".id")
            && !s.is_empty()
        {
            match s.parse::<i64>() {
                Ok(i) if l.db.get(model, i).is_some() => dbid = Some(i),
                _ => l.log(
                    &info,
                    json!({"type": "error", "field": ".id",
                           "message": format!("Unknown database identifier '{s}'")}),
                ),
            }
        }
        let mut converted = l.convert(&m, &rec, &info, None);
        let xid = xid.map(|x| l.full_xmlid(&x));
        if let Some(x) = &xid {
            l.batch_xids.insert(x.clone());
        } else if let Some(i) = dbid {
            converted.insert("id".into(), json!(i));
        }
        l.batch.push((xid, converted, info));
    }
    l.flush(None, None);
    let failed = l.messages.iter().any(|m| m["type"] == "error");
    let ids = if failed {
        l.db.rollback_to(sp);
        Value::Bool(false)
    } else {
        json!(l.ids)
    };
    let nextrow = match limit {
        Some(lim) if ((last_to + 1) as usize) >= lim => last_to + 1,
        _ => 0,
    };
    Ok(json!({"ids": ids, "messages": l.messages, "nextrow": nextrow}))
}

impl Loader<'_> {
    fn log(&mut self, info: &Value, msg: Value) {
        let mut m = info.as_object().cloned().unwrap();
        m.extend(msg.as_object().cloned().unwrap());
        self.messages.push(Value::Object(m));
    }

    fn full_xmlid(&self, x: &str) -> String {
        if x.contains('.') {
            x.to_string()
        } else {
            format!("{}.{x}", self.module)
        }
    }

    /// Converts one extracted record; a failed cell is logged and left out (protocol §1).
    /// `nested` is set for one2many sub-records: the first error there aborts the field.
    fn convert(
        &mut self,
        m: &Model,
        rec: &Extracted,
        info: &Value,
        nested: Option<&mut Option<ConvErr>>,
    ) -> Rec {
        let mut out = Rec::new();
        let mut nested = nested;
        for (name, cell) in rec {
            if matches!(name.as_str(), "id" | ".id" | "") {
                continue;
            }
            let fl = m.field(name).unwrap().clone();
            let empty = match cell {
                Cell::Str(s) => s.is_empty(),
                Cell::Sub(v) => v.is_empty(),
            };
            if empty {
                // An empty cell is False: re-importing it clears the field (§1).
                out.insert(name.clone(), Value::Bool(false));
                continue;
            }
            match self.convert_cell(&fl.kind, name, cell, info) {
                Ok((v, warnings)) => {
                    out.insert(name.clone(), v);
                    for w in warnings {
                        self.log_conv(m, name, info, w, nested.as_deref_mut());
                    }
                }
                Err(e) => self.log_conv(m, name, info, e, nested.as_deref_mut()),
            }
        }
        out
    }

    fn log_conv(
        &mut self,
        m: &Model,
        field: &str,
        info: &Value,
        e: ConvErr,
        nested: Option<&mut Option<ConvErr>>,
    ) {
        let label = m.field(field).map(|f| f.label).unwrap_or(field);
        if let Some(slot) = nested {
            if e.warning {
                // Warnings of sub-records are kept by the parent field as they are.
            } else if slot.is_none() {
                *slot = Some(ConvErr {
                    message: e
                        .message
                        .replace("%(field)s", &format!("%(field)s/{label}")),
                    ..e
                });
            }
            return;
        }
        let mut msg = Map::new();
        msg.insert(
            "type".into(),
            json!(if e.warning { "warning" } else { "error" }),
        );
        msg.insert("field".into(), json!(field));
        msg.insert("field_name".into(), json!(label));
        msg.insert(
            "message".into(),
            json!(e.message.replace("%(field)s", label)),
        );
        msg.extend(e.extra);
        self.log(info, Value::Object(msg));
    }

    fn convert_cell(
        &mut self,
        kind: &Kind,
        field: &str,
        cell: &Cell,
        info: &Value,
    ) -> Result<(Value, Vec<ConvErr>), ConvErr> {
        let s = match cell {
            Cell::Str(s) => s.clone(),
            Cell::Sub(_) => String::new(),
        };
        Ok(match kind {
            Kind::Char | Kind::Text => (json!(s), vec![]),
            Kind::Bool => {
                let l = s.to_lowercase();
                if TRUES.contains(&l.as_str()) {
                    (json!(true), vec![])
                } else if FALSES.contains(&l.as_str()) {
                    (json!(false), vec![])
                } else {
                    let mut e = err(format!("Unknown value '{s}' for boolean field '%(field)s'"));
                    e.extra
                        .insert("moreinfo".into(), json!("Use '1' for yes and '0' for no"));
                    (json!(true), vec![e])
                }
            }
            Kind::Int => match s.trim().parse::<i64>() {
                Ok(n) => (json!(n), vec![]),
                Err(_) => {
                    return Err(err(format!(
                        "'{s}' does not seem to be an integer for field '%(field)s'"
                    )));
                }
            },
            Kind::Float | Kind::Monetary => match s.trim().parse::<f64>() {
                Ok(n) if n.is_finite() => (json!(n), vec![]),
                _ => {
                    return Err(err(format!(
                        "'{s}' does not seem to be a number for field '%(field)s'"
                    )));
                }
            },
            Kind::Date => match chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d") {
                Ok(d) => (json!(d.to_string()), vec![]),
                Err(_) => {
                    let mut e = err(format!(
                        "'{s}' does not seem to be a valid date for field '%(field)s'"
                    ));
                    e.extra
                        .insert("moreinfo".into(), json!("Use the format '2012-12-31'"));
                    return Err(e);
                }
            },
            Kind::Datetime => {
                match chrono::NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S") {
                    Ok(dt) => {
                        // In the context's tz, stored UTC (§1).
                        let tz: chrono_tz::Tz = self
                            .ctx
                            .get("tz")
                            .and_then(|v| v.as_str())
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(chrono_tz::UTC);
                        let utc = dt
                            .and_local_timezone(tz)
                            .earliest()
                            .map(|x| x.naive_utc())
                            .unwrap_or(dt);
                        (json!(utc.format("%Y-%m-%d %H:%M:%S").to_string()), vec![])
                    }
                    Err(_) => {
                        let mut e = err(format!(
                            "'{s}' does not seem to be a valid datetime for field '%(field)s'"
                        ));
                        e.extra.insert(
                            "moreinfo".into(),
                            json!("Use the format '2012-12-31 23:59:59'"),
                        );
                        return Err(e);
                    }
                }
            }
            Kind::Selection(opts) => {
                let l = s.to_lowercase();
                match opts
                    .iter()
                    .find(|(k, _)| k.to_lowercase() == l)
                    .or_else(|| opts.iter().find(|(_, lab)| lab.to_lowercase() == l))
                {
                    Some((k, _)) => (json!(k), vec![]),
                    None => {
                        let mut e = err(format!(
                            "Value '{s}' not found in selection field '%(field)s'"
                        ));
                        e.extra.insert(
                            "moreinfo".into(),
                            json!(
                                opts.iter()
                                    .flat_map(|(k, lab)| [k.to_string(), lab.to_string()])
                                    .collect::<Vec<_>>()
                            ),
                        );
                        return Err(e);
                    }
                }
            }
            Kind::Many2one(co, _) => {
                let Cell::Sub(subs) = cell else {
                    unreachable!()
                };
                let sub = &subs[0];
                let (key, value) = referencing(sub)?;
                let (id, warnings) = self.db_id_for(co, &key, &value, field)?;
                (id.map(|i| json!(i)).unwrap_or(json!(false)), warnings)
            }
            Kind::Many2many(co) => {
                let Cell::Sub(subs) = cell else {
                    unreachable!()
                };
                if subs.len() > 1 {
                    return Err(err("too many values to unpack (expected 1)".into()));
                }
                let (key, value) = referencing(&subs[0])?;
                let mut ids = Vec::new();
                let mut ws = Vec::new();
                for reference in value.split(',') {
                    let (id, w) = self.db_id_for(co, &key, reference, field)?;
                    ids.extend(id);
                    ws.extend(w);
                }
                (json!([[6, 0, ids]]), ws)
            }
            Kind::One2many(co, _) => {
                let Cell::Sub(subs) = cell else {
                    unreachable!()
                };
                let com = self.db.model(co).unwrap().clone();
                let mut cmds = Vec::new();
                let mut warnings = Vec::new();
                let only_refs =
                    |r: &Extracted| r.keys().all(|k| matches!(k.as_str(), "id" | ".id" | ""));
                if subs.len() == 1 && only_refs(&subs[0]) {
                    // `field/id` alone: a comma-separated list of records to link.
                    let (key, value) = referencing(&subs[0])?;
                    for reference in value.split(',') {
                        let (id, w) = self.db_id_for(co, &key, reference, field)?;
                        warnings.extend(w);
                        if let Some(i) = id {
                            cmds.push(json!([4, i, 0]));
                        }
                    }
                    return Ok((json!(cmds), warnings));
                }
                for sub in subs {
                    let mut first_err = None;
                    let writable: Rec = {
                        let plain: Extracted = sub
                            .iter()
                            .filter(|(k, _)| !matches!(k.as_str(), "id" | ".id" | ""))
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect();
                        self.convert(&com, &plain, info, Some(&mut first_err))
                    };
                    if let Some(e) = first_err {
                        return Err(e);
                    }
                    let refs: Extracted = sub
                        .iter()
                        .filter(|(k, _)| matches!(k.as_str(), "id" | ".id"))
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect();
                    let mut id = None;
                    let mut writable = writable;
                    if !refs.is_empty() {
                        let (key, value) = referencing(&refs)?;
                        match self.db_id_for(co, &key, &value, field) {
                            Ok((i, w)) => {
                                id = i;
                                warnings.extend(w);
                            }
                            Err(e) if key != "id" => return Err(e),
                            Err(_) => {
                                // A new line with its own external id: created with it.
                                writable.insert("__xmlid".into(), json!(self.full_xmlid(&value)));
                            }
                        }
                    }
                    match id {
                        Some(i) => {
                            cmds.push(json!([4, i, 0]));
                            cmds.push(json!([1, i, writable]));
                        }
                        None => cmds.push(json!([0, 0, writable])),
                    }
                }
                (json!(cmds), warnings)
            }
        })
    }

    /// Odoo's `db_id_for`: a relation cell by external id, database id or name.
    fn db_id_for(
        &mut self,
        co: &str,
        key: &str,
        value: &str,
        _field: &str,
    ) -> Result<(Option<i64>, Vec<ConvErr>), ConvErr> {
        let action = json!({"type": "ir.actions.act_window", "target": "new",
            "res_model": co, "view_mode": "list,form", "views": [[false, "list"], [false, "form"]],
            "help": "See all possible values", "name": "Possible Values"});
        let not_found = |ftype: &str| {
            let mut e = err(format!(
                "No matching record found for {ftype} '{value}' in field '%(field)s'"
            ));
            e.extra.insert("moreinfo".into(), action.clone());
            e
        };
        match key {
            ".id" => {
                let Ok(i) = value.trim().parse::<i64>() else {
                    return Err(err(format!(
                        "Invalid database id '{value}' for the field '%(field)s'"
                    )));
                };
                if self.db.get(co, i).is_some() {
                    Ok((Some(i), vec![]))
                } else {
                    Err(not_found("database id"))
                }
            }
            "id" => {
                if FALSES.contains(&value.to_lowercase().as_str()) {
                    return Ok((None, vec![]));
                }
                let xid = self.full_xmlid(value);
                self.flush(Some(&xid), None);
                match self.db.xmlid(&xid) {
                    Some((m, i)) if m == co && self.db.get(co, i).is_some() => {
                        Ok((Some(i), vec![]))
                    }
                    Some((m, _)) if m != co => Err(err(format!(
                        "Invalid external ID {xid}: expected model '{co}', found '{m}'"
                    ))),
                    _ => Err(not_found("external id")),
                }
            }
            _ => {
                self.flush(None, Some(co));
                let active_test = self.ctx.get("active_test") != Some(&json!(false));
                let hits = self.db.name_search(co, value, "=", active_test);
                match hits.len() {
                    0 => Err(not_found("name")),
                    1 => Ok((Some(hits[0].0), vec![])),
                    n => {
                        let w = ConvErr {
                            warning: true,
                            message: format!(
                                "Found multiple matches for value \"{value}\" in field \"%(field)s\" ({n} matches)"
                            ),
                            extra: Map::new(),
                        };
                        Ok((Some(hits[0].0), vec![w]))
                    }
                }
            }
        }
    }

    /// Creates what is batched: whole batch in a savepoint, else row by row to report.
    fn flush(&mut self, xml_id: Option<&str>, model: Option<&str>) {
        if self.batch.is_empty() {
            return;
        }
        if let Some(x) = xml_id
            && !self.batch_xids.contains(x)
        {
            return;
        }
        if let Some(m) = model
            && !self.creatable.contains(m)
        {
            return;
        }
        let data = std::mem::take(&mut self.batch);
        self.batch_xids.clear();
        let mark = self.db.savepoint();
        let mut global = None;
        match self.load_records(&data) {
            Ok(ids) => {
                self.ids.extend(ids);
                return;
            }
            Err(e) => {
                self.db.rollback_to(mark);
                if let OrmError::User { message, .. } = e {
                    let mut g = data[0].2.as_object().cloned().unwrap();
                    g.insert("type".into(), json!("error"));
                    g.insert("message".into(), json!(message));
                    global = Some(Value::Object(g));
                }
            }
        }
        let mut errors = 0usize;
        for (i, rec) in data.iter().enumerate() {
            let i = i + 1;
            let mark = self.db.savepoint();
            match self.load_records(std::slice::from_ref(rec)) {
                Ok(ids) => self.ids.extend(ids),
                Err(e) => {
                    self.db.rollback_to(mark);
                    let msg = match e {
                        OrmError::Db { message, field } => {
                            let mut m = json!({"type": "error", "message": message});
                            if let Some(f) = field {
                                m["field"] = json!(f);
                            }
                            m
                        }
                        OrmError::User { message, .. } => {
                            json!({"type": "error", "message": message})
                        }
                        OrmError::Value(message) => json!({"type": "error",
                            "message": format!("Unknown error during import: <class 'ValueError'>: {message}"),
                            "moreinfo": "Resolve other errors first"}),
                    };
                    self.log(&rec.2, msg);
                    errors += 1;
                }
            }
            if errors >= 10 && errors as f64 >= i as f64 / 10.0 {
                self.messages
                    .push(json!({"type": "warning", "message": CAP_WARNING}));
                break;
            }
        }
        if errors > 0
            && let Some(g) = global
            && !self.messages.contains(&g)
        {
            self.messages.insert(0, g);
        }
    }

    /// Odoo's `_load_records`: an external id updates its record, or creates it.
    fn load_records(
        &mut self,
        data: &[(Option<String>, Rec, Value)],
    ) -> Result<Vec<i64>, OrmError> {
        let mut ids = Vec::new();
        let model = self.model.clone();
        for (xid, vals, _) in data {
            let mut vals = vals.clone();
            match xid {
                Some(x) => match self.db.xmlid(x) {
                    Some((m, _)) if m != model => {
                        let imd = self
                            .db
                            .table("ir.model.data")
                            .iter()
                            .find(|(_, r)| {
                                format!(
                                    "{}.{}",
                                    r["module"].as_str().unwrap(),
                                    r["name"].as_str().unwrap()
                                ) == *x
                            })
                            .map(|(i, _)| *i)
                            .unwrap_or(0);
                        return Err(OrmError::validation(format!(
                            "For external id {x} when trying to create/update a record of model {model} found record of different model {m} ({imd})"
                        )));
                    }
                    Some((_, res_id)) if self.db.get(&model, res_id).is_some() => {
                        self.db.write(&model, res_id, vals)?;
                        ids.push(res_id);
                    }
                    _ => {
                        let id = self.db.create(&model, vals)?;
                        let (module, name) = x.split_once('.').unwrap();
                        self.db.add_xmlid(module, name, &model, id);
                        ids.push(id);
                    }
                },
                None => match vals.remove("id").and_then(|v| v.as_i64()) {
                    Some(id) => {
                        self.db.write(&model, id, vals)?;
                        ids.push(id);
                    }
                    None => ids.push(self.db.create(&model, vals)?),
                },
            }
        }
        Ok(ids)
    }
}

/// Odoo's `_referencing_subfield`: exactly one of name, `id`, `.id` per relation.
fn referencing(sub: &Extracted) -> Result<(String, String), ConvErr> {
    if sub.keys().any(|k| !matches!(k.as_str(), "id" | ".id" | "")) {
        return Err(err(
            "Can not create Many-To-One records indirectly, import the field separately".into(),
        ));
    }
    if sub.len() > 1 {
        return Err(err("Ambiguous specification for field '%(field)s', only provide one of name, external id or database id".into()));
    }
    let (k, v) = sub.iter().next().unwrap();
    let v = match v {
        Cell::Str(s) => s.clone(),
        Cell::Sub(_) => String::new(),
    };
    Ok((k.clone(), v))
}
