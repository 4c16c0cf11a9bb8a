//! One in-memory Odoo database: records per model, external ids, savepoints (an undo log, so
//! that `load` can be all-or-nothing), and the ORM methods the target calls.

use super::schema::{self, Kind, Model, OnDelete};
use rust_decimal::Decimal;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::str::FromStr;

pub type Rec = Map<String, Value>;
/// A group: its key values, its aggregates (in spec order), its record count.
pub type Group = (Vec<Value>, Vec<Value>, usize);
/// Existing records a transaction updated: (model, id).
pub type Touched = std::collections::HashSet<(String, i64)>;

/// Why a write failed, split the way `load` splits them: database errors (no batch-level
/// message) and user/validation errors (`UserError`, whose batch message Odoo repeats).
#[derive(Debug, Clone, PartialEq)]
pub enum OrmError {
    Db {
        message: String,
        field: Option<String>,
    },
    User {
        name: &'static str,
        message: String,
    },
    /// A programming error on the client's side (unknown field…): Odoo raises, no message.
    Value(String),
}

impl OrmError {
    pub fn user(message: impl Into<String>) -> Self {
        OrmError::User {
            name: "odoo.exceptions.UserError",
            message: message.into(),
        }
    }
    pub fn validation(message: impl Into<String>) -> Self {
        OrmError::User {
            name: "odoo.exceptions.ValidationError",
            message: message.into(),
        }
    }
    pub fn message(&self) -> String {
        match self {
            OrmError::Db { message, .. } => message.clone(),
            OrmError::User { message, .. } => message.clone(),
            OrmError::Value(m) => m.clone(),
        }
    }
}

pub const SERIALIZATION: &str = "could not serialize access due to concurrent update\n";

enum Undo {
    Put {
        model: String,
        id: i64,
        prev: Option<Rec>,
    },
}

pub struct ApiKey {
    pub key: String,
    pub uid: i64,
    pub valid: bool,
}

pub struct Db {
    pub models: Vec<Model>,
    tables: HashMap<String, BTreeMap<i64, Rec>>,
    seq: HashMap<String, i64>,
    xmlids: HashMap<String, i64>,
    undo: Vec<Undo>,
    pub passwords: HashMap<i64, String>,
    pub apikeys: Vec<ApiKey>,
    move_seq: HashMap<String, i64>,
    /// (model, many2one field) → target id → records pointing at it; and external ids by
    /// (model, res_id). Kept by `put_raw`, so one2many reads and unlinks need no scan.
    refs: HashMap<(String, String), HashMap<i64, BTreeSet<i64>>>,
    imd_by_record: HashMap<(String, i64), BTreeSet<i64>>,
    /// Set by a `Fault::Serialization` for one `load` call: every write fails like a
    /// concurrent update would under REPEATABLE READ.
    pub serialization_fault: bool,
}

fn is_empty(v: Option<&Value>) -> bool {
    matches!(v, None | Some(Value::Null) | Some(Value::Bool(false)))
        || matches!(v, Some(Value::String(s)) if s.is_empty())
}

pub fn dec(v: &Value) -> Decimal {
    match v {
        Value::Number(n) => Decimal::from_str(&n.to_string())
            .or_else(|_| Decimal::from_scientific(&n.to_string()))
            .unwrap_or_default(),
        Value::String(s) => Decimal::from_str(s).unwrap_or_default(),
        _ => Decimal::ZERO,
    }
}

pub fn num(d: Decimal) -> Value {
    let f: f64 = d.to_string().parse().unwrap_or(0.0);
    json!(f)
}

impl Db {
    pub fn new(company_currency: &str) -> Db {
        let models = schema::models();
        let mut db = Db {
            tables: models
                .iter()
                .map(|m| (m.name.to_string(), BTreeMap::new()))
                .collect(),
            models,
            seq: HashMap::new(),
            xmlids: HashMap::new(),
            undo: Vec::new(),
            passwords: HashMap::new(),
            apikeys: Vec::new(),
            move_seq: HashMap::new(),
            refs: HashMap::new(),
            imd_by_record: HashMap::new(),
            serialization_fault: false,
        };
        db.seed(company_currency);
        db.undo.clear();
        db
    }

    /// What a fresh Odoo with fleet, hr and accounting holds (protocol §9: never empty).
    fn seed(&mut self, company_currency: &str) {
        let raw = |db: &mut Db, model: &str, xmlid: &str, vals: Value| -> i64 {
            let id = db.next_id(model);
            let mut rec = Rec::new();
            let m = db.model(model).unwrap().clone();
            for fl in &m.fields {
                if matches!(fl.kind, Kind::One2many(..)) {
                    continue;
                }
                let d = schema::default_value(model, fl.name).unwrap_or(Value::Bool(false));
                rec.insert(fl.name.into(), d);
            }
            rec.insert("id".into(), json!(id));
            for (k, v) in vals.as_object().unwrap() {
                rec.insert(k.clone(), v.clone());
            }
            db.put(model, id, Some(rec));
            if let Some((module, name)) = xmlid.split_once('.') {
                db.add_xmlid(module, name, model, id);
            }
            id
        };
        for (code, sym, dp) in [
            ("EUR", "€", 2),
            ("USD", "$", 2),
            ("GBP", "£", 2),
            ("CHF", "CHF", 2),
            ("JPY", "¥", 0),
            ("CAD", "$", 2),
        ] {
            raw(
                self,
                "res.currency",
                &format!("base.{code}"),
                json!({"name": code, "symbol": sym, "decimal_places": dp}),
            );
        }
        let cur = self
            .search_ids("res.currency", |r| r["name"] == json!(company_currency))
            .first()
            .copied()
            .unwrap_or(1);
        raw(
            self,
            "res.partner",
            "base.main_partner",
            json!({"name": "YourCompany", "is_company": true}),
        );
        raw(
            self,
            "res.partner",
            "base.partner_root",
            json!({"name": "OdooBot", "active": false}),
        );
        raw(
            self,
            "res.partner",
            "base.partner_admin",
            json!({"name": "Administrator", "email": "admin@yourcompany.example.com"}),
        );
        raw(
            self,
            "res.company",
            "base.main_company",
            json!({"name": "YourCompany", "partner_id": 1, "currency_id": cur}),
        );
        raw(
            self,
            "res.users",
            "base.user_root",
            json!({"login": "__system__", "name": "OdooBot", "partner_id": 2, "active": false}),
        );
        raw(
            self,
            "hr.employee",
            "hr.employee_admin",
            json!({"name": "Administrator", "work_email": "admin@yourcompany.example.com"}),
        );
        for (i, brand) in [
            "Audi",
            "BMW",
            "Mercedes Benz",
            "Opel",
            "Peugeot",
            "Renault",
            "Volkswagen",
            "Volvo",
        ]
        .iter()
        .enumerate()
        {
            let b = raw(
                self,
                "fleet.vehicle.model.brand",
                &format!("fleet.brand_{}", brand.to_lowercase().replace(' ', "_")),
                json!({"name": brand}),
            );
            if i < 2 {
                let name = if i == 0 { "A3" } else { "Serie 1" };
                raw(
                    self,
                    "fleet.vehicle.model",
                    &format!("fleet.model_{}", name.to_lowercase().replace(' ', "_")),
                    json!({"name": name, "brand_id": b}),
                );
            }
        }
        raw(
            self,
            "account.journal",
            "account.1_sale",
            json!({"name": "Customer Invoices", "code": "INV", "type": "sale"}),
        );
        raw(
            self,
            "account.journal",
            "account.1_purchase",
            json!({"name": "Vendor Bills", "code": "BILL", "type": "purchase"}),
        );
        raw(
            self,
            "account.journal",
            "account.1_general",
            json!({"name": "Miscellaneous Operations", "code": "MISC", "type": "general"}),
        );
        // Two taxes named "15%": importing a tax by name matches both (first + a warning).
        raw(
            self,
            "account.tax",
            "account.1_tax_sale_15",
            json!({"name": "15%", "amount": 15.0, "type_tax_use": "sale"}),
        );
        raw(
            self,
            "account.tax",
            "account.1_tax_purchase_15",
            json!({"name": "15%", "amount": 15.0, "type_tax_use": "purchase"}),
        );
        raw(
            self,
            "account.tax",
            "account.1_tax_sale_0",
            json!({"name": "0%", "amount": 0.0, "type_tax_use": "sale"}),
        );
    }

    /// A user who can log in with `password`, or with `api_key` as Odoo accepts both.
    pub fn add_user(&mut self, login: &str, password: &str, api_key: &str) -> i64 {
        let pid = self
            .create("res.partner", obj(json!({ "name": login })))
            .unwrap();
        self.add_user_with_partner(login, password, api_key, pid)
    }

    /// The configured administrator: uid 2 on the seeded "Administrator" partner, as in Odoo.
    pub fn add_admin(&mut self, login: &str, password: &str, api_key: &str) -> i64 {
        let uid = self.add_user_with_partner(login, password, api_key, 3);
        self.add_xmlid("base", "user_admin", "res.users", uid);
        self.undo.clear();
        uid
    }

    fn add_user_with_partner(
        &mut self,
        login: &str,
        password: &str,
        api_key: &str,
        pid: i64,
    ) -> i64 {
        let uid = self
            .create(
                "res.users",
                obj(json!({"login": login, "name": self.display_name("res.partner", pid), "partner_id": pid})),
            )
            .unwrap();
        self.passwords.insert(uid, password.to_string());
        if !api_key.is_empty() {
            self.apikeys.push(ApiKey {
                key: api_key.to_string(),
                uid,
                valid: true,
            });
        }
        self.undo.clear();
        uid
    }

    /// Adds a model of the test's own (as a custom `x_` model would be), e.g. the target
    /// conformance kit's table.
    pub fn add_model(&mut self, model: Model) {
        self.tables.entry(model.name.to_string()).or_default();
        self.models.retain(|m| m.name != model.name);
        self.models.push(model);
    }

    pub fn model(&self, name: &str) -> Option<&Model> {
        self.models.iter().find(|m| m.name == name)
    }

    pub fn table(&self, model: &str) -> &BTreeMap<i64, Rec> {
        &self.tables[model]
    }

    pub fn get(&self, model: &str, id: i64) -> Option<&Rec> {
        self.tables.get(model).and_then(|t| t.get(&id))
    }

    fn next_id(&mut self, model: &str) -> i64 {
        // Sequences are not rolled back, as in PostgreSQL (protocol §9: gaps after a failure).
        let n = self.seq.entry(model.to_string()).or_insert(0);
        *n += 1;
        *n
    }

    fn put(&mut self, model: &str, id: i64, rec: Option<Rec>) {
        let prev = self.put_raw(model, id, rec);
        self.undo.push(Undo::Put {
            model: model.to_string(),
            id,
            prev,
        });
    }

    fn put_raw(&mut self, model: &str, id: i64, rec: Option<Rec>) -> Option<Rec> {
        let table = self.tables.get_mut(model).expect("known model");
        let prev = match rec.clone() {
            Some(r) => table.insert(id, r),
            None => table.remove(&id),
        };
        if model == "ir.model.data" {
            let rec_key = |r: &Rec| {
                (
                    r["model"].as_str().unwrap_or("").to_string(),
                    r["res_id"].as_i64().unwrap_or(0),
                )
            };
            if let Some(p) = &prev {
                self.xmlids.remove(&xml_key(p));
                if let Some(s) = self.imd_by_record.get_mut(&rec_key(p)) {
                    s.remove(&id);
                }
            }
            if let Some(r) = &rec {
                self.xmlids.insert(xml_key(r), id);
                self.imd_by_record.entry(rec_key(r)).or_default().insert(id);
            }
        }
        let m2o: Vec<&'static str> = self
            .model(model)
            .unwrap()
            .fields
            .iter()
            .filter(|f| matches!(f.kind, Kind::Many2one(..)))
            .map(|f| f.name)
            .collect();
        for f in m2o {
            let old = prev
                .as_ref()
                .and_then(|p| p.get(f))
                .and_then(|v| v.as_i64());
            let new = rec.as_ref().and_then(|r| r.get(f)).and_then(|v| v.as_i64());
            if old == new {
                continue;
            }
            let idx = self
                .refs
                .entry((model.to_string(), f.to_string()))
                .or_default();
            if let Some(o) = old
                && let Some(s) = idx.get_mut(&o)
            {
                s.remove(&id);
            }
            if let Some(n) = new {
                idx.entry(n).or_default().insert(id);
            }
        }
        prev
    }

    /// Ids of `model` records whose many2one `field` is `target`.
    pub fn pointing(&self, model: &str, field: &str, target: i64) -> Vec<i64> {
        self.refs
            .get(&(model.to_string(), field.to_string()))
            .and_then(|m| m.get(&target))
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default()
    }

    pub fn savepoint(&self) -> usize {
        self.undo.len()
    }

    pub fn rollback_to(&mut self, mark: usize) {
        while self.undo.len() > mark {
            let Undo::Put { model, id, prev } = self.undo.pop().unwrap();
            self.put_raw(&model, id, prev);
        }
    }

    /// Records that existed before `mark` and were updated or deleted since: what a
    /// concurrent transaction would conflict on.
    pub fn touched_existing(&self, mark: usize) -> Touched {
        let mut seen = std::collections::HashSet::new();
        let mut out = std::collections::HashSet::new();
        for Undo::Put { model, id, prev } in &self.undo[mark..] {
            let key = (model.clone(), *id);
            if seen.insert(key.clone()) && prev.is_some() {
                out.insert(key);
            }
        }
        out
    }

    /// Each RPC call is its own transaction: once it commits, nothing is left to undo.
    pub fn commit(&mut self) {
        self.undo.clear();
    }

    pub fn add_xmlid(&mut self, module: &str, name: &str, model: &str, res_id: i64) {
        let id = self.next_id("ir.model.data");
        let rec = obj(json!({
            "id": id, "module": module, "name": name, "model": model,
            "res_id": res_id, "noupdate": false
        }));
        self.put("ir.model.data", id, Some(rec));
    }

    /// `module.name` → (model, res_id)
    pub fn xmlid(&self, full: &str) -> Option<(String, i64)> {
        let imd = self.xmlids.get(full)?;
        let r = self.get("ir.model.data", *imd)?;
        Some((
            r["model"].as_str().unwrap_or_default().to_string(),
            r["res_id"].as_i64().unwrap_or(0),
        ))
    }

    fn search_ids(&self, model: &str, pred: impl Fn(&Rec) -> bool) -> Vec<i64> {
        self.tables[model]
            .iter()
            .filter(|(_, r)| pred(r))
            .map(|(id, _)| *id)
            .collect()
    }

    pub fn display_name(&self, model: &str, id: i64) -> String {
        let Some(r) = self.get(model, id) else {
            return String::new();
        };
        let s = |k: &str| r.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        match model {
            "fleet.vehicle.model" => {
                let b = r["brand_id"].as_i64().unwrap_or(0);
                format!(
                    "{}/{}",
                    self.display_name("fleet.vehicle.model.brand", b),
                    s("name")
                )
            }
            "res.users" => s("name"),
            "ir.model.data" => format!("{}.{}", s("module"), s("name")),
            _ => s("name"),
        }
    }

    // ---------------------------------------------------------------- create / write

    pub fn create(&mut self, model: &str, vals: Rec) -> Result<i64, OrmError> {
        let m = self
            .model(model)
            .cloned()
            .ok_or_else(|| OrmError::Value(format!("Object {model} doesn't exist")))?;
        if self.serialization_fault {
            return Err(OrmError::Db {
                message: SERIALIZATION.into(),
                field: None,
            });
        }
        let id = self.next_id(model);
        let mut rec = Rec::new();
        rec.insert("id".into(), json!(id));
        for fl in &m.fields {
            if matches!(fl.kind, Kind::One2many(..)) {
                continue;
            }
            let d = schema::default_value(model, fl.name).unwrap_or(Value::Bool(false));
            rec.insert(fl.name.into(), d);
        }
        if model == "account.move" {
            let mt = vals.get("move_type").and_then(|v| v.as_str()).unwrap_or("");
            let j = if mt.starts_with("out_") {
                1
            } else if mt.starts_with("in_") {
                2
            } else {
                3
            };
            rec.insert("journal_id".into(), json!(j));
            let cur = self.get("res.company", 1).unwrap()["currency_id"].clone();
            rec.insert("currency_id".into(), cur);
        }
        let o2m = self.assign(&m, &mut rec, vals.clone())?;
        if model == "account.move.line" && !vals.contains_key("tax_ids") {
            // Protocol §9: no tax_ids given → the company's default tax for the move's side.
            let mv = rec["move_id"].as_i64().unwrap_or(0);
            let mt = self
                .get("account.move", mv)
                .and_then(|r| r["move_type"].as_str())
                .unwrap_or("")
                .to_string();
            let tax: Vec<i64> = if mt.starts_with("out_") {
                vec![1]
            } else if mt.starts_with("in_") {
                vec![2]
            } else {
                vec![]
            };
            rec.insert("tax_ids".into(), json!(tax));
        }
        if model == "account.move.line" {
            self.check_move_editable(rec["move_id"].as_i64().unwrap_or(0))?;
        }
        self.check_record(&m, &rec)?;
        self.put(model, id, Some(rec));
        self.apply_o2m(&m, id, o2m)?;
        self.recompute(model, id);
        Ok(id)
    }

    pub fn write(&mut self, model: &str, id: i64, vals: Rec) -> Result<(), OrmError> {
        let m = self.model(model).cloned().unwrap();
        if self.serialization_fault {
            return Err(OrmError::Db {
                message: SERIALIZATION.into(),
                field: None,
            });
        }
        let Some(mut rec) = self.get(model, id).cloned() else {
            return Err(OrmError::User {
                name: "odoo.exceptions.MissingError",
                message: format!(
                    "Record does not exist or has been deleted.\n(Record: {model}({id},), User: 2)"
                ),
            });
        };
        let before = rec.clone();
        let o2m = self.assign(&m, &mut rec, vals)?;
        // A posted entry refuses changes to what its amounts depend on; writing the same
        // values again (a re-run) changes nothing and passes, as Odoo compares them.
        let changed = |f: &str| before.get(f) != rec.get(f);
        let posted = |db: &Db, mv: i64| {
            db.get("account.move", mv)
                .is_some_and(|r| r["state"] == json!("posted"))
        };
        let refused = match model {
            "account.move" => {
                posted(self, id)
                    && ["currency_id", "partner_id", "move_type"]
                        .iter()
                        .any(|f| changed(f))
            }
            "account.move.line" => {
                posted(self, before["move_id"].as_i64().unwrap_or(0))
                    && ["move_id", "name", "quantity", "price_unit", "tax_ids"]
                        .iter()
                        .any(|f| changed(f))
            }
            _ => false,
        };
        if refused {
            return Err(OrmError::user(
                "You cannot modify a posted entry of this journal.",
            ));
        }
        self.check_record(&m, &rec)?;
        self.put(model, id, Some(rec));
        self.apply_o2m(&m, id, o2m)?;
        self.recompute(model, id);
        Ok(())
    }

    fn check_move_editable(&self, move_id: i64) -> Result<(), OrmError> {
        if self
            .get("account.move", move_id)
            .is_some_and(|r| r["state"] == json!("posted"))
        {
            return Err(OrmError::user(
                "You cannot modify a posted entry of this journal.",
            ));
        }
        Ok(())
    }

    /// Copies `vals` into `rec`, field by field; one2many commands are returned to apply
    /// once the parent exists.
    fn assign(
        &self,
        m: &Model,
        rec: &mut Rec,
        vals: Rec,
    ) -> Result<Vec<(String, Vec<Value>)>, OrmError> {
        let mut o2m = Vec::new();
        for (k, v) in vals {
            let Some(fl) = m.field(&k) else {
                return Err(OrmError::Value(format!(
                    "Invalid field '{k}' on model '{}'",
                    m.name
                )));
            };
            if fl.computed {
                // Computed, read-only: what the client writes has no effect (§8).
                continue;
            }
            match &fl.kind {
                Kind::One2many(..) => {
                    o2m.push((k, v.as_array().cloned().unwrap_or_default()));
                }
                Kind::Many2many(_) => {
                    let cur: Vec<i64> = rec
                        .get(&k)
                        .and_then(|x| x.as_array())
                        .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
                        .unwrap_or_default();
                    rec.insert(k, json!(m2m_commands(cur, &v)));
                }
                Kind::Many2one(co, _) => {
                    let v = match v {
                        Value::Number(n) => {
                            let id = n.as_i64().unwrap_or(0);
                            if self.get(co, id).is_none() {
                                return Err(OrmError::Db {
                                    message: format!(
                                        "insert or update on table \"{}\" violates foreign key constraint \"{}_{}_fkey\"\nDETAIL:  Key ({})=({}) is not present in table \"{}\".\n",
                                        table(m.name),
                                        table(m.name),
                                        k,
                                        k,
                                        id,
                                        table(co)
                                    ),
                                    field: Some(k.clone()),
                                });
                            }
                            json!(id)
                        }
                        Value::Array(a) if !a.is_empty() => a[0].clone(),
                        _ => Value::Bool(false),
                    };
                    rec.insert(k, v);
                }
                Kind::Int => {
                    if let Some(n) = v.as_i64()
                        && (n > i32::MAX as i64 || n < i32::MIN as i64)
                    {
                        return Err(OrmError::Db {
                            message: "integer out of range\n".into(),
                            field: None,
                        });
                    }
                    if let Some(n) = v.as_f64().filter(|_| v.as_i64().is_none())
                        && n.abs() > i32::MAX as f64
                    {
                        return Err(OrmError::Db {
                            message: "integer out of range\n".into(),
                            field: None,
                        });
                    }
                    rec.insert(k, v);
                }
                _ => {
                    let v = if v.is_null() { Value::Bool(false) } else { v };
                    rec.insert(k, v);
                }
            }
        }
        Ok(o2m)
    }

    /// NOT NULL columns and SQL constraints: these fail as database errors.
    fn check_record(&self, m: &Model, rec: &Rec) -> Result<(), OrmError> {
        if m.name == "res.partner" && is_empty(rec.get("name")) && rec["type"] == json!("contact") {
            return Err(OrmError::Db {
                message: "Contacts require a name".into(),
                field: None,
            });
        }
        for fl in &m.fields {
            if fl.required && !fl.computed && is_empty(rec.get(fl.name)) {
                return Err(OrmError::Db {
                    message: format!(
                        "Missing required value for the field '{}' ({})",
                        fl.label, fl.name
                    ),
                    field: Some(fl.name.to_string()),
                });
            }
        }
        Ok(())
    }

    fn apply_o2m(
        &mut self,
        m: &Model,
        id: i64,
        cmds: Vec<(String, Vec<Value>)>,
    ) -> Result<(), OrmError> {
        for (fname, list) in cmds {
            let Kind::One2many(co, inverse) = m.field(&fname).unwrap().kind.clone() else {
                unreachable!()
            };
            for c in list {
                let c = c.as_array().cloned().unwrap_or_default();
                let code = c.first().and_then(|x| x.as_i64()).unwrap_or(-1);
                let rid = c.get(1).and_then(|x| x.as_i64()).unwrap_or(0);
                let vals = c.get(2).and_then(|x| x.as_object()).cloned();
                match code {
                    0 => {
                        let mut v = vals.unwrap_or_default();
                        let xid = v
                            .remove("__xmlid")
                            .and_then(|x| x.as_str().map(String::from));
                        v.insert(inverse.into(), json!(id));
                        let line = self.create(co, v)?;
                        if let Some(x) = xid
                            && let Some((module, name)) = x.split_once('.')
                        {
                            self.add_xmlid(module, name, co, line);
                        }
                    }
                    1 => {
                        let mut v = vals.unwrap_or_default();
                        v.insert(inverse.into(), json!(id));
                        self.write(co, rid, v)?;
                    }
                    2 | 3 => self.unlink(co, &[rid])?,
                    4 => self.write(co, rid, obj(json!({ inverse: id })))?,
                    5 | 6 => {
                        let keep: Vec<i64> = if code == 6 {
                            c.get(2)
                                .and_then(|x| x.as_array())
                                .map(|a| a.iter().filter_map(|x| x.as_i64()).collect())
                                .unwrap_or_default()
                        } else {
                            vec![]
                        };
                        let cur = self.pointing(co, inverse, id);
                        for c in cur.iter().filter(|c| !keep.contains(c)) {
                            self.unlink(co, &[*c])?;
                        }
                        for k in keep {
                            self.write(co, k, obj(json!({ inverse: id })))?;
                        }
                    }
                    _ => return Err(OrmError::Value(format!("Invalid command {c:?}"))),
                }
            }
        }
        Ok(())
    }

    fn recompute(&mut self, model: &str, id: i64) {
        match model {
            "fleet.vehicle" => {
                let Some(mut r) = self.get(model, id).cloned() else {
                    return;
                };
                let mid = r["model_id"].as_i64().unwrap_or(0);
                let (brand, mname, bid) = match self.get("fleet.vehicle.model", mid) {
                    Some(mr) => {
                        let bid = mr["brand_id"].as_i64().unwrap_or(0);
                        (
                            self.display_name("fleet.vehicle.model.brand", bid),
                            mr["name"].as_str().unwrap_or("").to_string(),
                            json!(bid),
                        )
                    }
                    None => (String::new(), String::new(), json!(false)),
                };
                let plate = r["license_plate"]
                    .as_str()
                    .unwrap_or("No Plate")
                    .to_string();
                r.insert("name".into(), json!(format!("{brand}/{mname}/{plate}")));
                r.insert("brand_id".into(), bid);
                self.put(model, id, Some(r));
            }
            "account.move.line" => {
                let Some(mut r) = self.get(model, id).cloned() else {
                    return;
                };
                let mv = r["move_id"].as_i64().unwrap_or(0);
                let dp = self.move_decimals(mv);
                let sub = (dec(&r["quantity"]) * dec(&r["price_unit"])).round_dp(dp);
                let mut tax = Decimal::ZERO;
                for t in r["tax_ids"].as_array().cloned().unwrap_or_default() {
                    let amount = self
                        .get("account.tax", t.as_i64().unwrap_or(0))
                        .map(|x| dec(&x["amount"]))
                        .unwrap_or_default();
                    tax += (sub * amount / Decimal::from(100)).round_dp(dp);
                }
                r.insert("price_subtotal".into(), num(sub));
                r.insert("price_total".into(), num(sub + tax));
                self.put(model, id, Some(r));
                self.recompute("account.move", mv);
            }
            "account.move" => {
                let Some(mut r) = self.get(model, id).cloned() else {
                    return;
                };
                let lines = self.pointing("account.move.line", "move_id", id);
                let (mut untaxed, mut total) = (Decimal::ZERO, Decimal::ZERO);
                for l in lines {
                    let l = self.get("account.move.line", l).unwrap();
                    untaxed += dec(&l["price_subtotal"]);
                    total += dec(&l["price_total"]);
                }
                r.insert("amount_untaxed".into(), num(untaxed));
                r.insert("amount_tax".into(), num(total - untaxed));
                r.insert("amount_total".into(), num(total));
                r.insert("amount_residual".into(), num(total));
                self.put(model, id, Some(r));
            }
            _ => {}
        }
    }

    fn move_decimals(&self, mv: i64) -> u32 {
        self.get("account.move", mv)
            .and_then(|r| r["currency_id"].as_i64())
            .and_then(|c| self.get("res.currency", c))
            .and_then(|c| c["decimal_places"].as_u64())
            .unwrap_or(2) as u32
    }

    pub fn unlink(&mut self, model: &str, ids: &[i64]) -> Result<(), OrmError> {
        const UNLINK_POSTED: &str = "You can't delete a posted journal item. Don’t play games with your accounting records; reset the journal entry to draft before deleting it.";
        for &id in ids {
            let Some(rec) = self.get(model, id).cloned() else {
                continue;
            };
            // Odoo 18: `account.move.unlink` unlinks its lines first, and
            // `account.move.line._unlink_except_posted` refuses the lines of a posted entry
            // (docs/odoo-protocol.md §9, "Deleting a posted invoice").
            let move_id = match model {
                "account.move" => Some(id),
                "account.move.line" => rec["move_id"].as_i64(),
                _ => None,
            };
            if let Some(mv) = move_id
                && self
                    .get("account.move", mv)
                    .is_some_and(|r| r["state"] == json!("posted"))
            {
                return Err(OrmError::user(UNLINK_POSTED));
            }
            // Records pointing here: cascade, restrict or set null, per field.
            let mut refs = Vec::new();
            for m in &self.models {
                for fl in &m.fields {
                    if let Kind::Many2one(co, od) = &fl.kind
                        && *co == model
                    {
                        for rid in self.pointing(m.name, fl.name, id) {
                            refs.push((m.name, m.description, fl.name, *od, rid));
                        }
                    }
                }
            }
            for (m, desc, fname, od, rid) in refs {
                match od {
                    OnDelete::Cascade => self.unlink(m, &[rid])?,
                    OnDelete::Restrict => {
                        return Err(OrmError::validation(format!(
                            "The operation cannot be completed: another model requires the record being deleted. If possible, archive it instead.\n\nModel: {desc} ({m})\nConstraint: {}_{fname}_fkey",
                            table(m)
                        )));
                    }
                    OnDelete::SetNull => {
                        if let Some(mut r) = self.get(m, rid).cloned() {
                            r.insert(fname.into(), json!(false));
                            self.put(m, rid, Some(r));
                        }
                    }
                }
            }
            self.put(model, id, None);
            // Odoo deletes a record's external ids with it.
            let imd: Vec<i64> = self
                .imd_by_record
                .get(&(model.to_string(), id))
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default();
            for i in imd {
                self.put("ir.model.data", i, None);
            }
            if model == "account.move.line" {
                self.recompute("account.move", rec["move_id"].as_i64().unwrap_or(0));
            }
        }
        Ok(())
    }

    /// Odoo 18's `account.move._unlink_forbid_parts_of_chain` (docs/odoo-protocol.md §9,
    /// "Deleting a posted invoice"), as for a user who is not an accounting administrator:
    /// the numbered entries of one `unlink` may go only if, per sequence (`INV/2026`),
    /// their numbers are contiguous and the highest is the newest the database holds, so
    /// deleting them leaves no gap. Entries still named `/` consumed no number; the
    /// context's `force_delete` lifts the rule.
    pub fn forbid_parts_of_chain(
        &self,
        ids: &[i64],
        ctx: &Map<String, Value>,
    ) -> Result<(), OrmError> {
        // Odoo unlinks an entry's lines before its own checks run, so a posted entry is
        // refused by its lines (`unlink` says so) before its chain is looked at.
        let posted = ids.iter().any(|&id| {
            self.get("account.move", id)
                .is_some_and(|r| r["state"] == json!("posted"))
        });
        if posted || !is_empty(ctx.get("force_delete")) {
            return Ok(());
        }
        const NOT_LAST_IN_CHAIN: &str = "You cannot delete this entry, as it has already consumed a sequence number and is not the last one in the chain. You should probably revert it instead.";
        let numbered = |r: &Rec| -> Option<(String, i64)> {
            let (prefix, n) = r["name"].as_str()?.rsplit_once('/')?;
            Some((prefix.to_string(), n.parse().ok()?))
        };
        let mut chains: BTreeMap<String, BTreeSet<i64>> = BTreeMap::new();
        for r in ids.iter().filter_map(|&id| self.get("account.move", id)) {
            if let Some((prefix, n)) = numbered(r) {
                chains.entry(prefix).or_default().insert(n);
            }
        }
        for (prefix, deleted) in chains {
            let (lo, hi) = (deleted.first().copied(), deleted.last().copied());
            let (Some(lo), Some(hi)) = (lo, hi) else {
                continue;
            };
            let newest = self
                .search_ids("account.move", |r| {
                    numbered(r).is_some_and(|(p, _)| p == prefix)
                })
                .iter()
                .filter_map(|&id| self.get("account.move", id).and_then(numbered))
                .map(|(_, n)| n)
                .max()
                .unwrap_or(hi);
            if hi - lo + 1 != deleted.len() as i64 || hi != newest {
                return Err(OrmError::user(NOT_LAST_IN_CHAIN));
            }
        }
        Ok(())
    }

    pub fn action_post(&mut self, ids: &[i64]) -> Result<(), OrmError> {
        // Odoo 18's `_compute_name` numbers the entries of one call in the order of their
        // date, reference and id, not of the ids it is given (docs/odoo-protocol.md §9).
        let text = |r: Option<&Rec>, f: &str| {
            r.and_then(|r| r.get(f))
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string()
        };
        let mut ids = ids.to_vec();
        ids.sort_by_cached_key(|&id| {
            let r = self.get("account.move", id);
            let date = match text(r, "date") {
                d if d.is_empty() => text(r, "invoice_date"),
                d => d,
            };
            (date, text(r, "ref"), id)
        });
        for id in ids {
            let Some(mut r) = self.get("account.move", id).cloned() else {
                continue;
            };
            if r["state"] == json!("posted") {
                return Err(OrmError::user("The entry is already posted."));
            }
            let mt = r["move_type"].as_str().unwrap_or("").to_string();
            if mt.starts_with("out_") && is_empty(r.get("partner_id")) {
                return Err(OrmError::user(
                    "The field 'Customer' is required, please complete it to validate the Customer Invoice.",
                ));
            }
            let lines = self.pointing("account.move.line", "move_id", id);
            if lines.is_empty() {
                return Err(OrmError::user("You need to add a line before posting."));
            }
            if is_empty(r.get("invoice_date")) {
                r.insert(
                    "invoice_date".into(),
                    json!(chrono::Utc::now().date_naive().to_string()),
                );
            }
            let date = r["invoice_date"]
                .as_str()
                .unwrap_or("2000-01-01")
                .to_string();
            let year = &date[..4];
            let code = self
                .get("account.journal", r["journal_id"].as_i64().unwrap_or(3))
                .map(|j| j["code"].as_str().unwrap_or("MISC").to_string())
                .unwrap_or_default();
            let key = format!("{code}/{year}");
            let n = self.move_seq.entry(key.clone()).or_insert(0);
            *n += 1;
            r.insert("name".into(), json!(format!("{key}/{n:05}")));
            r.insert("state".into(), json!("posted"));
            if is_empty(r.get("date")) {
                r.insert("date".into(), json!(date));
            }
            self.put("account.move", id, Some(r));
        }
        Ok(())
    }

    /// Odoo 18's `account.move.button_draft`: every entry must be posted or cancelled.
    pub fn button_draft(&mut self, ids: &[i64]) -> Result<(), OrmError> {
        let draftable = |r: &Rec| r["state"] == json!("posted") || r["state"] == json!("cancel");
        if ids
            .iter()
            .filter_map(|&id| self.get("account.move", id))
            .any(|r| !draftable(r))
        {
            return Err(OrmError::user(
                "Only posted/cancelled journal entries can be reset to draft.",
            ));
        }
        for &id in ids {
            if let Some(mut r) = self.get("account.move", id).cloned() {
                r.insert("state".into(), json!("draft"));
                self.put("account.move", id, Some(r));
            }
        }
        Ok(())
    }

    // ---------------------------------------------------------------- search / read

    pub fn search(
        &self,
        model: &str,
        domain: &Value,
        active_test: bool,
    ) -> Result<Vec<i64>, OrmError> {
        let m = self
            .model(model)
            .ok_or_else(|| OrmError::Value(format!("Object {model} doesn't exist")))?;
        let expr = parse_domain(domain)?;
        let filter_active = active_test && m.has_active() && !mentions(&expr, "active");
        let mut out = Vec::new();
        for (id, r) in &self.tables[model] {
            if filter_active && r.get("active") != Some(&json!(true)) {
                continue;
            }
            if self.eval(m, r, &expr)? {
                out.push(*id);
            }
        }
        Ok(out)
    }

    fn eval(&self, m: &Model, r: &Rec, e: &Expr) -> Result<bool, OrmError> {
        Ok(match e {
            Expr::True => true,
            Expr::And(a, b) => self.eval(m, r, a)? && self.eval(m, r, b)?,
            Expr::Or(a, b) => self.eval(m, r, a)? || self.eval(m, r, b)?,
            Expr::Not(a) => !self.eval(m, r, a)?,
            Expr::Leaf(f, op, v) => {
                let (val, kind) = if f == "id" {
                    (r["id"].clone(), Kind::Int)
                } else if f == "display_name" {
                    (
                        json!(self.display_name(m.name, r["id"].as_i64().unwrap())),
                        Kind::Char,
                    )
                } else {
                    let fl = m.field(f).ok_or_else(|| {
                        OrmError::Value(format!("Invalid field {}.{} in leaf", m.name, f))
                    })?;
                    let val = match &fl.kind {
                        Kind::One2many(co, inv) => {
                            json!(self.pointing(co, inv, r["id"].as_i64().unwrap_or(0)))
                        }
                        _ => r.get(f.as_str()).cloned().unwrap_or(Value::Bool(false)),
                    };
                    (val, fl.kind.clone())
                };
                // A many2one compared with text compares the target's name, as Odoo does.
                let val = match (&kind, v) {
                    (Kind::Many2one(co, _), Value::String(_)) => match val.as_i64() {
                        Some(i) => json!(self.display_name(co, i)),
                        None => Value::Bool(false),
                    },
                    (Kind::Many2one(co, _), Value::Array(a)) if a.iter().any(|x| x.is_string()) => {
                        match val.as_i64() {
                            Some(i) => json!(self.display_name(co, i)),
                            None => Value::Bool(false),
                        }
                    }
                    _ => val,
                };
                compare(&val, op, v)?
            }
        })
    }

    /// A record as `read` returns it.
    pub fn read_one(&self, model: &str, id: i64, fields: &[String]) -> Result<Rec, OrmError> {
        let m = self.model(model).unwrap();
        let r = self.get(model, id).ok_or_else(|| OrmError::User {
            name: "odoo.exceptions.MissingError",
            message: format!(
                "Record does not exist or has been deleted.\n(Record: {model}({id},), User: 2)"
            ),
        })?;
        let names: Vec<String> = if fields.is_empty() {
            m.fields.iter().map(|f| f.name.to_string()).collect()
        } else {
            fields.to_vec()
        };
        let mut out = Rec::new();
        out.insert("id".into(), json!(id));
        for n in names {
            if n == "id" {
                continue;
            }
            if n == "display_name" {
                out.insert(n, json!(self.display_name(model, id)));
                continue;
            }
            let fl = m.field(&n).ok_or_else(|| {
                OrmError::Value(format!("Invalid field '{n}' on model '{model}'"))
            })?;
            let v = r.get(&n).cloned().unwrap_or(Value::Bool(false));
            let v = match &fl.kind {
                Kind::Many2one(co, _) => match v.as_i64() {
                    Some(i) => json!([i, self.display_name(co, i)]),
                    None => json!(false),
                },
                Kind::One2many(co, inv) => json!(self.pointing(co, inv, id)),
                Kind::Many2many(_) => {
                    if v.is_array() {
                        v
                    } else {
                        json!([])
                    }
                }
                Kind::Int => json!(v.as_i64().unwrap_or(0)),
                Kind::Float | Kind::Monetary => {
                    if v.is_number() {
                        v
                    } else {
                        json!(0.0)
                    }
                }
                _ => v,
            };
            out.insert(n, v);
        }
        Ok(out)
    }

    pub fn name_search(
        &self,
        model: &str,
        name: &str,
        op: &str,
        active_test: bool,
    ) -> Vec<(i64, String)> {
        let m = self.model(model).unwrap();
        self.tables[model]
            .iter()
            .filter(|(_, r)| {
                !(active_test && m.has_active() && r.get("active") != Some(&json!(true)))
            })
            .map(|(id, _)| (*id, self.display_name(model, *id)))
            .filter(|(_, dn)| compare(&json!(dn), op, &json!(name)).unwrap_or(false))
            .collect()
    }

    /// Groups `ids` by `groupby` and aggregates `specs` (`field:agg`), keys as given.
    pub fn group(
        &self,
        model: &str,
        ids: &[i64],
        groupby: &[String],
        specs: &[(String, String, String)],
    ) -> Result<Vec<Group>, OrmError> {
        let m = self.model(model).unwrap();
        for g in groupby {
            if m.field(g).is_none() {
                return Err(OrmError::Value(format!(
                    "Invalid field '{g}' on model '{model}'"
                )));
            }
        }
        let mut groups: Vec<(Vec<Value>, Vec<i64>)> = Vec::new();
        for id in ids {
            let r = self.get(model, *id).unwrap();
            let key: Vec<Value> = groupby
                .iter()
                .map(|g| r.get(g).cloned().unwrap_or(Value::Bool(false)))
                .collect();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(*id),
                None => groups.push((key, vec![*id])),
            }
        }
        let mut out = Vec::new();
        for (key, members) in groups {
            let mut aggs = Vec::new();
            for (_alias, field, agg) in specs {
                if field == "__count" || (field == "id" && agg == "count") {
                    aggs.push(json!(members.len()));
                    continue;
                }
                let fl = m.field(field).ok_or_else(|| {
                    OrmError::Value(format!("Invalid field '{field}' on model '{model}'"))
                })?;
                let vals: Vec<Decimal> = members
                    .iter()
                    .map(|i| dec(&self.get(model, *i).unwrap()[fl.name]))
                    .collect();
                let v =
                    match agg.as_str() {
                        "sum" => num(vals.iter().copied().sum()),
                        "max" => num(vals.iter().copied().max().unwrap_or_default()),
                        "min" => num(vals.iter().copied().min().unwrap_or_default()),
                        "avg" => num(vals.iter().copied().sum::<Decimal>()
                            / Decimal::from(vals.len().max(1))),
                        "count" => json!(vals.len()),
                        other => {
                            return Err(OrmError::Value(format!(
                                "Invalid aggregate function {other:?}."
                            )));
                        }
                    };
                aggs.push(v);
            }
            let key = key
                .into_iter()
                .zip(groupby)
                .map(|(v, g)| match &m.field(g).unwrap().kind {
                    Kind::Many2one(co, _) => match v.as_i64() {
                        Some(i) => json!([i, self.display_name(co, i)]),
                        None => json!(false),
                    },
                    _ => v,
                })
                .collect();
            out.push((key, aggs, members.len()));
        }
        Ok(out)
    }
}

fn xml_key(r: &Rec) -> String {
    format!(
        "{}.{}",
        r["module"].as_str().unwrap_or(""),
        r["name"].as_str().unwrap_or("")
    )
}

pub fn table(model: &str) -> String {
    model.replace('.', "_")
}

pub fn obj(v: Value) -> Rec {
    v.as_object().cloned().unwrap_or_default()
}

fn m2m_commands(mut cur: Vec<i64>, v: &Value) -> Vec<i64> {
    match v {
        Value::Array(cmds) => {
            for c in cmds {
                match c {
                    Value::Number(n) => {
                        // A plain list of ids replaces the set.
                        if let Some(i) = n.as_i64()
                            && !cur.contains(&i)
                        {
                            cur.push(i)
                        }
                    }
                    Value::Array(a) => {
                        let code = a.first().and_then(|x| x.as_i64()).unwrap_or(-1);
                        let id = a.get(1).and_then(|x| x.as_i64()).unwrap_or(0);
                        match code {
                            4 if !cur.contains(&id) => cur.push(id),
                            3 | 2 => cur.retain(|x| *x != id),
                            5 => cur.clear(),
                            6 => {
                                cur = a
                                    .get(2)
                                    .and_then(|x| x.as_array())
                                    .map(|l| l.iter().filter_map(|x| x.as_i64()).collect())
                                    .unwrap_or_default()
                            }
                            _ => {}
                        }
                    }
                    _ => {}
                }
            }
            cur
        }
        _ => Vec::new(),
    }
}

// ---------------------------------------------------------------- domains

#[derive(Debug)]
pub enum Expr {
    True,
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Leaf(String, String, Value),
}

fn mentions(e: &Expr, f: &str) -> bool {
    match e {
        Expr::True => false,
        Expr::And(a, b) | Expr::Or(a, b) => mentions(a, f) || mentions(b, f),
        Expr::Not(a) => mentions(a, f),
        Expr::Leaf(x, _, _) => x == f,
    }
}

pub fn parse_domain(d: &Value) -> Result<Expr, OrmError> {
    let items = match d {
        Value::Array(a) => a.clone(),
        Value::Null | Value::Bool(false) => vec![],
        other => return Err(OrmError::Value(format!("Invalid domain {other}"))),
    };
    let mut pos = 0;
    let mut terms = Vec::new();
    while pos < items.len() {
        terms.push(parse_term(&items, &mut pos)?);
    }
    Ok(terms
        .into_iter()
        .rev()
        .fold(None, |acc: Option<Expr>, t| {
            Some(match acc {
                None => t,
                Some(a) => Expr::And(Box::new(t), Box::new(a)),
            })
        })
        .unwrap_or(Expr::True))
}

fn parse_term(items: &[Value], pos: &mut usize) -> Result<Expr, OrmError> {
    let t = items
        .get(*pos)
        .ok_or_else(|| OrmError::Value("Invalid domain: missing operand".into()))?;
    *pos += 1;
    match t {
        Value::String(s) if s == "&" => Ok(Expr::And(
            Box::new(parse_term(items, pos)?),
            Box::new(parse_term(items, pos)?),
        )),
        Value::String(s) if s == "|" => Ok(Expr::Or(
            Box::new(parse_term(items, pos)?),
            Box::new(parse_term(items, pos)?),
        )),
        Value::String(s) if s == "!" => Ok(Expr::Not(Box::new(parse_term(items, pos)?))),
        Value::Array(l) if l.len() == 3 => {
            if l[0].is_number() {
                // TRUE_LEAF (1, '=', 1) / FALSE_LEAF (0, '=', 1)
                return Ok(if l[0] == l[2] {
                    Expr::True
                } else {
                    Expr::Not(Box::new(Expr::True))
                });
            }
            let f = l[0]
                .as_str()
                .ok_or_else(|| OrmError::Value(format!("Invalid leaf {t}")))?;
            let op = l[1]
                .as_str()
                .ok_or_else(|| OrmError::Value(format!("Invalid leaf {t}")))?
                .to_lowercase();
            Ok(Expr::Leaf(f.to_string(), op, l[2].clone()))
        }
        other => Err(OrmError::Value(format!("Invalid leaf {other}"))),
    }
}

fn like(pattern: &str, text: &str, ci: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if ci {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    fn go(p: &[char], t: &[char]) -> bool {
        match p.first() {
            None => t.is_empty(),
            Some('%') => (0..=t.len()).any(|i| go(&p[1..], &t[i..])),
            Some('_') => !t.is_empty() && go(&p[1..], &t[1..]),
            // PostgreSQL's default LIKE escape: `\_` is a literal underscore.
            Some('\\') if p.len() > 1 => t.first() == Some(&p[1]) && go(&p[2..], &t[1..]),
            Some(c) => t.first() == Some(c) && go(&p[1..], &t[1..]),
        }
    }
    go(&p, &t)
}

fn falsy(v: &Value) -> bool {
    matches!(v, Value::Null | Value::Bool(false))
}

fn eq(a: &Value, b: &Value) -> bool {
    if falsy(a) && falsy(b) {
        return true;
    }
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), y) if !y.is_array() => x.contains(y),
        _ => a == b,
    }
}

fn compare(val: &Value, op: &str, v: &Value) -> Result<bool, OrmError> {
    let text = |x: &Value| match x {
        Value::String(s) => s.clone(),
        Value::Bool(false) | Value::Null => String::new(),
        other => other.to_string(),
    };
    Ok(match op {
        "=" | "==" => eq(val, v),
        "!=" | "<>" => !eq(val, v),
        "in" | "not in" => {
            let list = v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]);
            let hit = list.iter().any(|x| eq(val, x));
            if op == "in" { hit } else { !hit }
        }
        "like" | "ilike" | "not like" | "not ilike" => {
            if falsy(val) {
                op.starts_with("not")
            } else {
                let hit = like(&format!("%{}%", text(v)), &text(val), op.ends_with("ilike"));
                if op.starts_with("not") { !hit } else { hit }
            }
        }
        "=like" | "=ilike" => !falsy(val) && like(&text(v), &text(val), op == "=ilike"),
        "<" | ">" | "<=" | ">=" => {
            if falsy(val) {
                false
            } else {
                let ord = match (val.as_f64(), v.as_f64()) {
                    (Some(a), Some(b)) => a.partial_cmp(&b),
                    _ => Some(text(val).cmp(&text(v))),
                };
                let Some(o) = ord else { return Ok(false) };
                match op {
                    "<" => o.is_lt(),
                    ">" => o.is_gt(),
                    "<=" => o.is_le(),
                    _ => o.is_ge(),
                }
            }
        }
        other => {
            return Err(OrmError::Value(format!(
                "Invalid search operator {other:?}"
            )));
        }
    })
}
