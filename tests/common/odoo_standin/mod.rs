//! Written in this repository for tests only: a stand-in for Odoo 17/18/19 that follows
//! docs/odoo-protocol.md (a copy of ../shared/odoo-protocol.md). It is not Odoo. It speaks
//! both transports (`/jsonrpc` and `/json/2/<model>/<method>`) on 127.0.0.1, keeps its
//! records in memory, and can be told to fail (HTTP statuses, slow answers, serialization
//! errors inside `load`) so that the Odoo target's retries and reject paths can be tested.
//! Where Odoo's wording could not be checked, the message says so in a comment.
//!
//! ```ignore
//! #[path = "common/odoo_standin/mod.rs"]
//! mod odoo_standin;
//! let odoo = odoo_standin::OdooStandin::start(Default::default()).await;
//! let url = odoo.url_json2("odoo"); // odoo+json2://127.0.0.1:PORT/odoo, key: odoo.api_key()
//! ```
#![allow(dead_code)]

mod load;
pub mod orm;
pub mod schema;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use orm::{Db, OrmError};
use schema::Kind;
use serde_json::{Map, Value, json};
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OdooVersion {
    V17,
    V18,
    V19,
}

impl OdooVersion {
    fn major(self) -> u32 {
        match self {
            OdooVersion::V17 => 17,
            OdooVersion::V18 => 18,
            OdooVersion::V19 => 19,
        }
    }
}

#[derive(Clone, Debug)]
pub struct StandinConfig {
    /// 17 and 18 answer JSON-RPC only (`/json/2` is a 404 there); 19 answers both.
    pub version: OdooVersion,
    pub databases: Vec<String>,
    pub login: String,
    pub password: String,
    pub api_key: String,
    pub company_currency: String,
    /// 0 = a random free port.
    pub port: u16,
    /// Added to every model call, to stand for the server's own work in benchmarks. While
    /// a call waits out its latency its transaction stays open: a concurrent call that
    /// updates one of the same existing records fails with a serialization error, as under
    /// Odoo's REPEATABLE READ (protocol §7).
    pub latency: Duration,
}

impl Default for StandinConfig {
    fn default() -> Self {
        StandinConfig {
            version: OdooVersion::V19,
            databases: vec!["odoo".into()],
            login: "admin".into(),
            password: "admin".into(),
            api_key: "standin-admin-api-key-0123456789abcdef".into(),
            company_currency: "EUR".into(),
            port: 0,
            latency: Duration::ZERO,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer with this HTTP status instead of doing the call (429 carries `Retry-After`).
    Status(u16),
    /// Wait this long, then do the call anyway (as a server does after a client gave up).
    Timeout(Duration),
    /// Inside `load`: every write fails with PostgreSQL's serialization message, which Odoo
    /// returns as `error` messages (protocol §4); elsewhere an RPC error.
    Serialization,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    pub transport: &'static str,
    pub db: String,
    pub model: String,
    pub method: String,
    /// Rows in `data` for `load`, 0 otherwise.
    pub rows: usize,
    /// The call answered with an error (RPC error, HTTP error or a `load` with errors).
    pub failed: bool,
}

struct Shared {
    config: StandinConfig,
    dbs: Mutex<HashMap<String, Db>>,
    faults: Mutex<VecDeque<Fault>>,
    calls: Mutex<Vec<Call>>,
    /// Open transactions (see `latency`): call id → existing records it updated.
    inflight: Mutex<Vec<(u64, orm::Touched)>>,
    next_call: std::sync::atomic::AtomicU64,
}

pub struct OdooStandin;

impl OdooStandin {
    /// Serves on its own thread and runtime, so that it keeps answering while the test
    /// blocks (e.g. waiting for the `cutover` binary).
    pub async fn start(config: StandinConfig) -> StandinHandle {
        Self::start_blocking(config)
    }

    pub fn start_blocking(config: StandinConfig) -> StandinHandle {
        let listener = std::net::TcpListener::bind(("127.0.0.1", config.port))
            .expect("bind the Odoo stand-in");
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let mut dbs = HashMap::new();
        for name in &config.databases {
            let mut db = Db::new(&config.company_currency);
            let uid = db.add_admin(&config.login, &config.password, &config.api_key);
            debug_assert_eq!(uid, 2, "the admin is uid 2, as in Odoo");
            dbs.insert(name.clone(), db);
        }
        let shared = Arc::new(Shared {
            config,
            dbs: Mutex::new(dbs),
            faults: Mutex::new(VecDeque::new()),
            calls: Mutex::new(Vec::new()),
            inflight: Mutex::new(Vec::new()),
            next_call: std::sync::atomic::AtomicU64::new(1),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let sh = shared.clone();
        let thread = std::thread::Builder::new()
            .name("odoo-standin".into())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async move {
                    let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                    let app = axum::Router::new()
                        .route("/jsonrpc", post(jsonrpc))
                        .route("/json/2/{model}/{method}", axum::routing::any(json2))
                        .route("/web/version", get(web_version))
                        .fallback(fallback)
                        .with_state(sh);
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = stop_rx.await;
                        })
                        .await
                        .unwrap();
                });
            })
            .unwrap();
        StandinHandle {
            addr,
            shared,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }
}

pub struct StandinHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for StandinHandle {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        // Not joined: an in-flight slow answer (Fault::Timeout) must not hold up the test.
        self.thread.take();
    }
}

impl StandinHandle {
    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }
    pub fn url_jsonrpc(&self, db: &str) -> String {
        format!(
            "odoo+jsonrpc://{}@{}/{db}",
            self.shared.config.login, self.addr
        )
    }
    pub fn url_json2(&self, db: &str) -> String {
        format!("odoo+json2://{}/{db}", self.addr)
    }
    pub fn login(&self) -> &str {
        &self.shared.config.login
    }
    pub fn password(&self) -> &str {
        &self.shared.config.password
    }
    pub fn api_key(&self) -> &str {
        &self.shared.config.api_key
    }
    fn default_db(&self) -> String {
        self.shared.config.databases[0].clone()
    }

    /// Runs `f` on a database, e.g. to seed or inspect what the helpers below do not cover.
    pub fn with_db<R>(&self, db: &str, f: impl FnOnce(&mut Db) -> R) -> R {
        let mut dbs = self.shared.dbs.lock().unwrap();
        f(dbs.get_mut(db).expect("a database of the stand-in"))
    }

    /// Every record of `model` in the first database, archived ones included, as `read`
    /// returns them (many2one as `[id, name]`).
    pub fn records(&self, model: &str) -> Vec<Map<String, Value>> {
        self.records_in(&self.default_db(), model)
    }

    pub fn records_in(&self, db: &str, model: &str) -> Vec<Map<String, Value>> {
        self.with_db(db, |d| {
            let ids: Vec<i64> = d.table(model).keys().copied().collect();
            ids.iter()
                .map(|i| d.read_one(model, *i, &[]).unwrap())
                .collect()
        })
    }

    /// `module.name` → (model, id) in the first database.
    pub fn xmlid(&self, full: &str) -> Option<(String, i64)> {
        self.with_db(&self.default_db(), |d| d.xmlid(full))
    }

    pub fn calls(&self) -> Vec<Call> {
        self.shared.calls.lock().unwrap().clone()
    }
    pub fn load_calls(&self) -> usize {
        self.calls().iter().filter(|c| c.method == "load").count()
    }
    pub fn reset_calls(&self) {
        self.shared.calls.lock().unwrap().clear();
    }

    /// The next `n` model calls (not `authenticate`) meet `fault`.
    pub fn fail_next(&self, n: usize, fault: Fault) {
        let mut q = self.shared.faults.lock().unwrap();
        for _ in 0..n {
            q.push_back(fault.clone());
        }
    }

    /// The key stops working in every database: 401 on JSON-2, AccessDenied on JSON-RPC.
    pub fn revoke_key(&self, key: &str) {
        for db in self.shared.dbs.lock().unwrap().values_mut() {
            db.apikeys.retain(|k| k.key != key);
        }
    }

    /// An expired key is refused like a revoked one (Odoo checks `expiration_date`).
    pub fn expire_key(&self, key: &str) {
        for db in self.shared.dbs.lock().unwrap().values_mut() {
            for k in db.apikeys.iter_mut().filter(|k| k.key == key) {
                k.valid = false;
            }
        }
    }

    /// Adds a user with a password and an API key; returns its uid.
    pub fn add_user(&self, db: &str, login: &str, password: &str, api_key: &str) -> i64 {
        self.with_db(db, |d| d.add_user(login, password, api_key))
    }

    /// Archives a user, as freezing production does: its logins and calls are refused.
    pub fn archive_user(&self, db: &str, login: &str) {
        self.with_db(db, |d| {
            let uid = d
                .table("res.users")
                .iter()
                .find(|(_, r)| r["login"] == json!(login))
                .map(|(i, _)| *i)
                .expect("a user");
            d.write("res.users", uid, orm::obj(json!({"active": false})))
                .unwrap();
            d.commit();
        })
    }
}

// ---------------------------------------------------------------- errors

/// An exception as Odoo serializes it (`odoo.http.serialize_exception`).
#[derive(Debug, Clone)]
pub struct OdooError {
    pub name: String,
    pub message: String,
    pub status: u16,
}

impl OdooError {
    fn new(name: &str, message: impl Into<String>, status: u16) -> Self {
        OdooError {
            name: name.into(),
            message: message.into(),
            status,
        }
    }
    fn access_denied() -> Self {
        Self::new("odoo.exceptions.AccessDenied", "Access Denied", 403)
    }
    fn body(&self) -> Value {
        json!({
            "name": self.name,
            "message": self.message,
            "arguments": [self.message],
            "context": {},
            "debug": format!("Traceback (most recent call last):\n  (odoo stand-in)\n{}: {}\n", self.name, self.message),
        })
    }
}

impl From<OrmError> for OdooError {
    fn from(e: OrmError) -> Self {
        match e {
            OrmError::Value(m) => OdooError::new("builtins.ValueError", m, 500),
            OrmError::User { name, message } => {
                let status = match name {
                    "odoo.exceptions.AccessError" => 403,
                    "odoo.exceptions.MissingError" => 404,
                    _ => 422,
                };
                OdooError::new(name, message, status)
            }
            // Odoo's RPC layer turns integrity errors into a ValidationError.
            OrmError::Db { message, .. } => {
                if message == orm::SERIALIZATION {
                    OdooError::new(
                        "psycopg2.errors.SerializationFailure",
                        message.trim_end(),
                        409,
                    )
                } else {
                    OdooError::new("odoo.exceptions.ValidationError", message, 422)
                }
            }
        }
    }
}

// ---------------------------------------------------------------- transports

async fn web_version(State(sh): State<Arc<Shared>>) -> Response {
    axum::Json(version_info(&sh)).into_response()
}

fn version_info(sh: &Shared) -> Value {
    let v = sh.config.version.major();
    json!({"server_version": format!("{v}.0"), "server_version_info": [v, 0, 0, "final", 0, ""],
           "server_serie": format!("{v}.0"), "protocol_version": 1})
}

async fn fallback(method: Method, uri: Uri) -> Response {
    if uri.path().starts_with("/json/2") {
        let e = OdooError::new(
            "werkzeug.exceptions.NotFound",
            "Did you mean POST /json/2/<model>/<method>?",
            404,
        );
        return (StatusCode::NOT_FOUND, axum::Json(e.body())).into_response();
    }
    let _ = method;
    (
        StatusCode::NOT_FOUND,
        [("content-type", "text/html")],
        "<!doctype html><title>404 Not Found</title><h1>Not Found</h1>",
    )
        .into_response()
}

fn fault_response(f: &Fault) -> Option<Response> {
    let Fault::Status(code) = f else { return None };
    let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut r = if *code == 500 {
        let e = OdooError::new("builtins.RuntimeError", "injected failure", 500);
        (status, axum::Json(e.body())).into_response()
    } else {
        // What a reverse proxy answers for an overloaded or restarting Odoo.
        (
            status,
            [("content-type", "text/html")],
            format!(
                "<html><body><h1>{code} {}</h1></body></html>",
                status.canonical_reason().unwrap_or("")
            ),
        )
            .into_response()
    };
    if *code == 429 {
        r.headers_mut().insert("retry-after", "1".parse().unwrap());
    }
    Some(r)
}

async fn take_fault(sh: &Shared) -> (Option<Response>, bool) {
    let f = sh.faults.lock().unwrap().pop_front();
    match f {
        None => (None, false),
        Some(Fault::Timeout(d)) => {
            tokio::time::sleep(d).await;
            (None, false)
        }
        Some(Fault::Serialization) => (None, true),
        Some(f) => (fault_response(&f), false),
    }
}

fn record_call(
    sh: &Shared,
    transport: &'static str,
    db: &str,
    model: &str,
    method: &str,
    rows: usize,
    failed: bool,
) {
    sh.calls.lock().unwrap().push(Call {
        transport,
        db: db.into(),
        model: model.into(),
        method: method.into(),
        rows,
        failed,
    });
}

/// The call runs in its own task: like an Odoo worker, it finishes even when the client
/// has given up waiting (a client timeout does not cancel the server's work).
async fn jsonrpc(State(sh): State<Arc<Shared>>, body: Bytes) -> Response {
    tokio::spawn(jsonrpc_call(sh, body)).await.unwrap()
}

async fn jsonrpc_call(sh: Arc<Shared>, body: Bytes) -> Response {
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "Invalid JSON data").into_response();
    };
    let id = req.get("id").cloned().unwrap_or(Value::Null);
    let params = req.get("params").cloned().unwrap_or(json!({}));
    let service = params["service"].as_str().unwrap_or("").to_string();
    let method = params["method"].as_str().unwrap_or("").to_string();
    let args = params["args"].as_array().cloned().unwrap_or_default();
    let code = if sh.config.version >= OdooVersion::V19 {
        0
    } else {
        200
    };
    let reply = |r: Result<Value, OdooError>| -> Response {
        match r {
            Ok(v) => axum::Json(json!({"jsonrpc": "2.0", "id": id, "result": v})).into_response(),
            // Errors come with HTTP 200 on this transport (protocol §4).
            Err(e) => axum::Json(json!({"jsonrpc": "2.0", "id": id, "error": {
                "code": code, "message": "Odoo Server Error", "data": e.body()}}))
            .into_response(),
        }
    };
    let s = |i: usize| {
        args.get(i)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    match (service.as_str(), method.as_str()) {
        ("common", "version") => reply(Ok(version_info(&sh))),
        ("db", "list") => reply(Ok(json!(sh.config.databases))),
        ("common", "login") | ("common", "authenticate") => {
            let r = authenticate(&sh, &s(0), &s(1), &s(2));
            reply(r.map(|u| u.map(|u| json!(u)).unwrap_or(json!(false))))
        }
        ("object", "execute_kw") | ("object", "execute") => {
            let (db, uid, pwd, model, meth) =
                (s(0), args.get(1).and_then(|v| v.as_i64()), s(2), s(3), s(4));
            let (pos, kw) = if method == "execute_kw" {
                (
                    args.get(5)
                        .and_then(|v| v.as_array())
                        .cloned()
                        .unwrap_or_default(),
                    args.get(6)
                        .and_then(|v| v.as_object())
                        .cloned()
                        .unwrap_or_default(),
                )
            } else {
                (args.iter().skip(5).cloned().collect(), Map::new())
            };
            if let Err(e) = check_uid(&sh, &db, uid, &pwd) {
                record_call(&sh, "jsonrpc", &db, &model, &meth, 0, true);
                return reply(Err(e));
            }
            let (resp, serialization) = take_fault(&sh).await;
            if let Some(r) = resp {
                record_call(&sh, "jsonrpc", &db, &model, &meth, 0, true);
                return r;
            }
            let (r, call) = execute(
                &sh,
                "jsonrpc",
                &db,
                &model,
                &meth,
                None,
                pos,
                kw,
                serialization,
            );
            hold(&sh, call).await;
            reply(r)
        }
        _ => reply(Err(OdooError::new(
            "builtins.NameError",
            format!("service {service:?} has no method {method:?}"),
            500,
        ))),
    }
}

/// `common.authenticate`: the password or an API key of an active user, else `false`.
fn authenticate(
    sh: &Shared,
    db: &str,
    login: &str,
    secret: &str,
) -> Result<Option<i64>, OdooError> {
    let dbs = sh.dbs.lock().unwrap();
    let Some(d) = dbs.get(db) else {
        return Err(OdooError::new(
            "psycopg2.OperationalError",
            format!("connection to server failed: FATAL:  database \"{db}\" does not exist\n"),
            500,
        ));
    };
    let Some((uid, _)) = d
        .table("res.users")
        .iter()
        .find(|(_, r)| r["login"] == json!(login) && r["active"] == json!(true))
    else {
        return Ok(None);
    };
    Ok(credentials_ok(d, *uid, secret).then_some(*uid))
}

fn credentials_ok(d: &Db, uid: i64, secret: &str) -> bool {
    let active = d
        .get("res.users", uid)
        .is_some_and(|r| r["active"] == json!(true));
    active
        && (d.passwords.get(&uid).is_some_and(|p| p == secret)
            || d.apikeys
                .iter()
                .any(|k| k.uid == uid && k.valid && k.key == secret))
}

fn check_uid(sh: &Shared, db: &str, uid: Option<i64>, secret: &str) -> Result<(), OdooError> {
    let dbs = sh.dbs.lock().unwrap();
    let d = dbs.get(db).ok_or_else(OdooError::access_denied)?;
    match uid {
        Some(u) if credentials_ok(d, u, secret) => Ok(()),
        _ => Err(OdooError::access_denied()),
    }
}

async fn json2(
    State(sh): State<Arc<Shared>>,
    Path((model, method)): Path<(String, String)>,
    http_method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    tokio::spawn(json2_call(sh, model, method, http_method, headers, body))
        .await
        .unwrap()
}

async fn json2_call(
    sh: Arc<Shared>,
    model: String,
    method: String,
    http_method: Method,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let fail = |e: OdooError| -> Response {
        let status = StatusCode::from_u16(e.status).unwrap();
        let mut r = (status, axum::Json(e.body())).into_response();
        if e.status == 401 {
            r.headers_mut()
                .insert("www-authenticate", "bearer".parse().unwrap());
        }
        r
    };
    // Odoo 17 and 18 have no /json/2 route at all.
    if sh.config.version < OdooVersion::V19 || http_method != Method::POST {
        return fallback(http_method, Uri::from_static("/json/2")).await;
    }
    let db = match headers.get("x-odoo-database").and_then(|v| v.to_str().ok()) {
        Some(d) => d.to_string(),
        None if sh.config.databases.len() == 1 => sh.config.databases[0].clone(),
        None => {
            return fail(OdooError::new(
                "werkzeug.exceptions.NotFound",
                "No database selected: send X-Odoo-Database",
                404,
            ));
        }
    };
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|h| {
            let (scheme, rest) = h.split_once(char::is_whitespace)?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        });
    let uid = {
        let dbs = sh.dbs.lock().unwrap();
        let Some(d) = dbs.get(&db) else {
            return fail(OdooError::new(
                "werkzeug.exceptions.NotFound",
                format!("database {db:?} not found"),
                404,
            ));
        };
        match &token {
            None => None,
            Some(t) => d
                .apikeys
                .iter()
                .find(|k| k.valid && &k.key == t)
                .map(|k| k.uid)
                .filter(|u| {
                    d.get("res.users", *u)
                        .is_some_and(|r| r["active"] == json!(true))
                }),
        }
    };
    if uid.is_none() {
        let msg = if token.is_none() {
            "Missing \"Authorization\" header"
        } else {
            "Invalid apikey"
        };
        record_call(&sh, "json2", &db, &model, &method, 0, true);
        return fail(OdooError::new("werkzeug.exceptions.Unauthorized", msg, 401));
    }
    let Ok(Value::Object(mut kw)) = serde_json::from_slice::<Value>(&body) else {
        record_call(&sh, "json2", &db, &model, &method, 0, true);
        return fail(OdooError::new(
            "werkzeug.exceptions.BadRequest",
            "Invalid JSON data",
            400,
        ));
    };
    let (resp, serialization) = take_fault(&sh).await;
    if let Some(r) = resp {
        record_call(&sh, "json2", &db, &model, &method, 0, true);
        return r;
    }
    let ids = kw.remove("ids").map(|v| {
        v.as_array()
            .map(|a| a.iter().filter_map(|x| x.as_i64()).collect::<Vec<_>>())
            .unwrap_or_default()
    });
    let (r, call) = execute(
        &sh,
        "json2",
        &db,
        &model,
        &method,
        Some(ids.unwrap_or_default()),
        vec![],
        kw,
        serialization,
    );
    hold(&sh, call).await;
    match r {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => fail(e),
    }
}

// ---------------------------------------------------------------- dispatch

/// (name, required) per parameter, after `self`; `record` methods take ids first.
struct Spec {
    record: bool,
    params: &'static [(&'static str, bool)],
}

fn spec(method: &str, version: OdooVersion) -> Option<Spec> {
    let s = |record, params| Some(Spec { record, params });
    match method {
        "load" => s(false, &[("fields", true), ("data", true)]),
        "search_count" => s(false, &[("domain", true), ("limit", false)]),
        "search" => s(
            false,
            &[
                ("domain", true),
                ("offset", false),
                ("limit", false),
                ("order", false),
            ],
        ),
        "search_read" => s(
            false,
            &[
                ("domain", false),
                ("fields", false),
                ("offset", false),
                ("limit", false),
                ("order", false),
            ],
        ),
        "read" => s(true, &[("fields", false), ("load", false)]),
        "write" => s(true, &[("vals", true)]),
        "create" => s(false, &[("vals_list", true)]),
        "unlink" => s(true, &[]),
        "read_group" => s(
            false,
            &[
                ("domain", true),
                ("fields", true),
                ("groupby", true),
                ("offset", false),
                ("limit", false),
                ("orderby", false),
                ("lazy", false),
            ],
        ),
        "formatted_read_group" if version >= OdooVersion::V19 => s(
            false,
            &[
                ("domain", false),
                ("groupby", false),
                ("aggregates", false),
                ("having", false),
                ("offset", false),
                ("limit", false),
                ("order", false),
            ],
        ),
        "fields_get" => s(false, &[("allfields", false), ("attributes", false)]),
        "name_search" => s(
            false,
            &[
                ("name", false),
                ("domain", false),
                ("operator", false),
                ("limit", false),
            ],
        ),
        "action_post" | "button_draft" => s(true, &[]),
        _ => None,
    }
}

#[allow(clippy::too_many_arguments)]
fn execute(
    sh: &Shared,
    transport: &'static str,
    db: &str,
    model: &str,
    method: &str,
    json2_ids: Option<Vec<i64>>,
    mut pos: Vec<Value>,
    mut kw: Map<String, Value>,
    serialization: bool,
) -> (Result<Value, OdooError>, u64) {
    let rows = if method == "load" {
        kw.get("data")
            .or_else(|| pos.get(1))
            .and_then(|v| v.as_array())
            .map(|a| a.len())
            .unwrap_or(0)
    } else {
        0
    };
    let call = sh
        .next_call
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let r = execute_inner(
        call,
        sh,
        transport,
        db,
        model,
        method,
        json2_ids,
        &mut pos,
        &mut kw,
        serialization,
    );
    let failed = match &r {
        Err(_) => true,
        Ok(v) => method == "load" && v["ids"] == json!(false),
    };
    record_call(sh, transport, db, model, method, rows, failed);
    (r, call)
}

/// Keeps the call's transaction open for the configured latency, then closes it.
async fn hold(sh: &Shared, call: u64) {
    if !sh.config.latency.is_zero() {
        tokio::time::sleep(sh.config.latency).await;
    }
    sh.inflight.lock().unwrap().retain(|(c, _)| *c != call);
}

#[allow(clippy::too_many_arguments)]
fn execute_inner(
    call: u64,
    sh: &Shared,
    transport: &'static str,
    db_name: &str,
    model: &str,
    method: &str,
    json2_ids: Option<Vec<i64>>,
    pos: &mut Vec<Value>,
    kw: &mut Map<String, Value>,
    serialization: bool,
) -> Result<Value, OdooError> {
    let json2 = transport == "json2";
    let mut dbs = sh.dbs.lock().unwrap();
    let db = dbs.get_mut(db_name).ok_or_else(OdooError::access_denied)?;
    if db.model(model).is_none() {
        return Err(if json2 {
            OdooError::new(
                "werkzeug.exceptions.NotFound",
                format!("the model '{model}' does not exist"),
                404,
            )
        } else {
            OdooError::new(
                "odoo.exceptions.UserError",
                format!("Object {model} doesn't exist"),
                422,
            )
        });
    }
    if method.starts_with('_') {
        return Err(OdooError::new(
            "odoo.exceptions.AccessError",
            format!("Private methods (such as '{model}.{method}') cannot be called remotely."),
            403,
        ));
    }
    let Some(sp) = spec(method, sh.config.version)
        .filter(|_| !matches!(method, "action_post" | "button_draft") || model == "account.move")
    else {
        let msg = format!("The method '{model}.{method}' does not exist");
        return Err(if json2 {
            OdooError::new("werkzeug.exceptions.NotFound", msg, 404)
        } else {
            OdooError::new("builtins.AttributeError", msg, 500)
        });
    };
    let ctx = kw
        .remove("context")
        .and_then(|c| c.as_object().cloned())
        .unwrap_or_default();
    let type_err = |m: String| {
        if json2 {
            OdooError::new("werkzeug.exceptions.UnprocessableEntity", m, 422)
        } else {
            OdooError::new("builtins.TypeError", m, 500)
        }
    };
    let to_ids = |v: &Value| -> Vec<i64> {
        match v {
            Value::Array(a) => a.iter().filter_map(|x| x.as_i64()).collect(),
            Value::Number(n) => n.as_i64().into_iter().collect(),
            _ => vec![],
        }
    };
    let ids: Vec<i64> = match json2_ids {
        Some(ids) => {
            if !sp.record && !ids.is_empty() {
                return Err(type_err(format!("cannot call {model}.{method} with ids")));
            }
            ids
        }
        None if sp.record => {
            if pos.is_empty() {
                return Err(type_err(format!(
                    "{method}() missing 1 required positional argument: 'ids'"
                )));
            }
            to_ids(&pos.remove(0))
        }
        None => vec![],
    };
    // Python's argument binding.
    if pos.len() > sp.params.len() {
        return Err(type_err(format!(
            "{method}() takes {} positional arguments but {} were given",
            sp.params.len() + 1,
            pos.len() + 1
        )));
    }
    let mut args: HashMap<&str, Value> = HashMap::new();
    for (v, (name, _)) in pos.drain(..).zip(sp.params) {
        args.insert(name, v);
    }
    for (k, v) in kw.iter() {
        let Some((name, _)) = sp.params.iter().find(|(n, _)| n == k) else {
            return Err(type_err(format!(
                "{method}() got an unexpected keyword argument '{k}'"
            )));
        };
        if args.insert(name, v.clone()).is_some() {
            return Err(type_err(format!(
                "{method}() got multiple values for argument '{k}'"
            )));
        }
    }
    for (name, required) in sp.params {
        if *required && !args.contains_key(name) {
            return Err(type_err(format!(
                "{method}() missing 1 required positional argument: '{name}'"
            )));
        }
    }
    let arg = |n: &str| args.get(n).cloned().unwrap_or(Value::Null);
    let active_test = ctx.get("active_test") != Some(&json!(false));
    let load_fields: Vec<String> = arg("fields")
        .as_array()
        .map(|a| a.iter().map(cell_text).collect())
        .unwrap_or_default();
    let load_data: Vec<Vec<String>> = arg("data")
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|r| {
                    r.as_array()
                        .map(|c| c.iter().map(cell_text).collect())
                        .unwrap_or_default()
                })
                .collect()
        })
        .unwrap_or_default();
    let mark = db.savepoint();
    let result = (|| -> Result<Value, OdooError> {
        Ok(match method {
            "load" => {
                db.serialization_fault = serialization;
                let r = load::load(db, model, &load_fields, &load_data, &ctx);
                db.serialization_fault = false;
                r?
            }
            _ if serialization => {
                return Err(OrmError::Db {
                    message: orm::SERIALIZATION.into(),
                    field: None,
                }
                .into());
            }
            "search_count" => {
                let ids = db.search(model, &arg("domain"), active_test)?;
                let n = ids.len();
                json!(match arg("limit").as_u64() {
                    Some(l) => n.min(l as usize),
                    None => n,
                })
            }
            "search" => {
                let ids = search(
                    db,
                    model,
                    &arg("domain"),
                    active_test,
                    &arg("order"),
                    &arg("offset"),
                    &arg("limit"),
                )?;
                json!(ids)
            }
            "search_read" => {
                let ids = search(
                    db,
                    model,
                    &arg("domain"),
                    active_test,
                    &arg("order"),
                    &arg("offset"),
                    &arg("limit"),
                )?;
                let fields = str_list(&arg("fields"));
                let mut out = Vec::new();
                for i in ids {
                    out.push(Value::Object(db.read_one(model, i, &fields)?));
                }
                json!(out)
            }
            "read" => {
                let fields = str_list(&arg("fields"));
                let mut out = Vec::new();
                for i in ids.iter().filter(|i| db.get(model, **i).is_some()) {
                    out.push(Value::Object(db.read_one(model, *i, &fields)?));
                }
                json!(out)
            }
            "write" => {
                let vals = arg("vals").as_object().cloned().unwrap_or_default();
                for i in &ids {
                    db.write(model, *i, vals.clone())?;
                }
                json!(true)
            }
            "create" => match arg("vals_list") {
                Value::Array(list) => {
                    let mut out = Vec::new();
                    for v in list {
                        out.push(db.create(model, v.as_object().cloned().unwrap_or_default())?);
                    }
                    json!(out)
                }
                Value::Object(v) => json!(db.create(model, v)?),
                other => return Err(OrmError::Value(format!("Invalid values {other}")).into()),
            },
            "unlink" => {
                if model == "account.move" {
                    db.forbid_parts_of_chain(&ids, &ctx)?;
                }
                db.unlink(model, &ids)?;
                json!(true)
            }
            "action_post" => {
                db.action_post(&ids)?;
                json!(false)
            }
            "button_draft" => {
                db.button_draft(&ids)?;
                json!(false)
            }
            "fields_get" => fields_get(db, model, &str_list(&arg("allfields"))),
            "name_search" => {
                let name = arg("name").as_str().unwrap_or("").to_string();
                let op = arg("operator").as_str().unwrap_or("ilike").to_string();
                let mut hits = db.name_search(model, &name, &op, active_test);
                if let Some(l) = arg("limit").as_u64() {
                    hits.truncate(l as usize);
                }
                json!(
                    hits.into_iter()
                        .map(|(i, n)| json!([i, n]))
                        .collect::<Vec<_>>()
                )
            }
            "read_group" => {
                let lazy = arg("lazy").as_bool().unwrap_or(true);
                read_group(
                    db,
                    model,
                    &arg("domain"),
                    &str_list(&arg("fields")),
                    &str_list(&arg("groupby")),
                    lazy,
                    active_test,
                )?
            }
            "formatted_read_group" => formatted_read_group(
                db,
                model,
                &arg("domain"),
                &str_list(&arg("groupby")),
                &str_list(&arg("aggregates")),
                active_test,
            )?,
            _ => unreachable!(),
        })
    })();
    let mut result = result;
    if result.is_ok() && !sh.config.latency.is_zero() {
        let touched = db.touched_existing(mark);
        let mut open = sh.inflight.lock().unwrap();
        if open.iter().any(|(_, s)| !s.is_disjoint(&touched)) {
            // Another open transaction updated one of these rows first.
            db.rollback_to(mark);
            result = if method == "load" {
                db.serialization_fault = true;
                let r = load::load(db, model, &load_fields, &load_data, &ctx);
                db.serialization_fault = false;
                db.rollback_to(mark);
                r.map_err(OdooError::from)
            } else {
                Err(OrmError::Db {
                    message: orm::SERIALIZATION.into(),
                    field: None,
                }
                .into())
            };
        } else {
            open.push((call, touched));
        }
    }
    match &result {
        Ok(_) => db.commit(),
        Err(_) => {
            db.rollback_to(mark);
            db.commit();
        }
    }
    result
}

fn cell_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null | Value::Bool(false) => String::new(),
        Value::Bool(true) => "1".into(),
        other => other.to_string(),
    }
}

fn str_list(v: &Value) -> Vec<String> {
    match v {
        Value::Array(a) => a
            .iter()
            .filter_map(|x| x.as_str().map(String::from))
            .collect(),
        Value::String(s) => vec![s.clone()],
        _ => vec![],
    }
}

fn search(
    db: &Db,
    model: &str,
    domain: &Value,
    active_test: bool,
    order: &Value,
    offset: &Value,
    limit: &Value,
) -> Result<Vec<i64>, OrmError> {
    let mut ids = db.search(model, domain, active_test)?;
    if let Some(order) = order.as_str().filter(|o| !o.trim().is_empty()) {
        let keys: Vec<(String, bool)> = order
            .split(',')
            .map(|k| {
                let mut it = k.split_whitespace();
                let f = it.next().unwrap_or("id").to_string();
                let desc = it.next().is_some_and(|d| d.eq_ignore_ascii_case("desc"));
                (f, desc)
            })
            .collect();
        ids.sort_by(|a, b| {
            let (ra, rb) = (db.get(model, *a).unwrap(), db.get(model, *b).unwrap());
            for (f, desc) in &keys {
                let (va, vb) = (
                    ra.get(f).cloned().unwrap_or_default(),
                    rb.get(f).cloned().unwrap_or_default(),
                );
                let o = match (va.as_f64(), vb.as_f64()) {
                    (Some(x), Some(y)) => x.partial_cmp(&y).unwrap_or(std::cmp::Ordering::Equal),
                    _ => va.to_string().cmp(&vb.to_string()),
                };
                let o = if *desc { o.reverse() } else { o };
                if o.is_ne() {
                    return o;
                }
            }
            std::cmp::Ordering::Equal
        });
    }
    let off = offset.as_u64().unwrap_or(0) as usize;
    let ids: Vec<i64> = ids.into_iter().skip(off).collect();
    Ok(match limit.as_u64() {
        Some(l) => ids.into_iter().take(l as usize).collect(),
        None => ids,
    })
}

fn fields_get(db: &Db, model: &str, only: &[String]) -> Value {
    let m = db.model(model).unwrap();
    let mut out = Map::new();
    for f in &m.fields {
        if !only.is_empty() && !only.iter().any(|o| o == f.name) {
            continue;
        }
        let mut d = Map::new();
        let (ty, rel) = match &f.kind {
            Kind::Char => ("char", None),
            Kind::Text => ("text", None),
            Kind::Bool => ("boolean", None),
            Kind::Int => ("integer", None),
            Kind::Float => ("float", None),
            Kind::Monetary => ("monetary", None),
            Kind::Date => ("date", None),
            Kind::Datetime => ("datetime", None),
            Kind::Selection(opts) => {
                d.insert(
                    "selection".into(),
                    json!(opts.iter().map(|(k, l)| json!([k, l])).collect::<Vec<_>>()),
                );
                ("selection", None)
            }
            Kind::Many2one(c, _) => ("many2one", Some(*c)),
            Kind::One2many(c, inv) => {
                d.insert("relation_field".into(), json!(inv));
                ("one2many", Some(*c))
            }
            Kind::Many2many(c) => ("many2many", Some(*c)),
        };
        d.insert("type".into(), json!(ty));
        d.insert("string".into(), json!(f.label));
        d.insert("required".into(), json!(f.required));
        d.insert("readonly".into(), json!(f.computed));
        d.insert("store".into(), json!(true));
        if let Some(r) = rel {
            d.insert("relation".into(), json!(r));
        }
        out.insert(f.name.into(), Value::Object(d));
    }
    Value::Object(out)
}

/// `"amount_total:sum"` → (alias, field, aggregate); `"total:sum(amount_total)"` too.
fn parse_spec(db: &Db, model: &str, s: &str) -> Option<(String, String, String)> {
    if s == "__count" {
        return Some(("__count".into(), "__count".into(), "count".into()));
    }
    let re = regex::Regex::new(r"^(\w+)(?::(\w+)(?:\((\w+)\))?)?$").unwrap();
    let c = re.captures(s)?;
    let name = c.get(1)?.as_str().to_string();
    match (c.get(2), c.get(3)) {
        (Some(agg), Some(f)) => Some((name, f.as_str().into(), agg.as_str().into())),
        (Some(agg), None) => Some((name.clone(), name, agg.as_str().into())),
        (None, _) => {
            // No aggregate: the field's own (sum for numbers), or nothing.
            let fl = db.model(model)?.field(&name)?;
            matches!(fl.kind, Kind::Int | Kind::Float | Kind::Monetary)
                .then(|| (name.clone(), name, "sum".into()))
        }
    }
}

fn group_domain(groupby: &[String], key: &[Value]) -> Vec<Value> {
    groupby
        .iter()
        .zip(key)
        .map(|(g, v)| {
            let v = match v {
                Value::Array(a) => a[0].clone(),
                other => other.clone(),
            };
            json!([g, "=", v])
        })
        .collect()
}

/// Odoo 17/18 `read_group`: aggregates keyed by field name, `__count` when lazy=False.
fn read_group(
    db: &Db,
    model: &str,
    domain: &Value,
    fields: &[String],
    groupby: &[String],
    lazy: bool,
    active_test: bool,
) -> Result<Value, OdooError> {
    let ids = db.search(model, domain, active_test)?;
    let groupby: Vec<String> = if lazy {
        groupby.iter().take(1).cloned().collect()
    } else {
        groupby.to_vec()
    };
    let specs: Vec<_> = fields
        .iter()
        .filter_map(|f| parse_spec(db, model, f))
        .filter(|(a, _, _)| a != "__count" && !groupby.contains(a))
        .collect();
    let groups = db.group(model, &ids, &groupby, &specs)?;
    let mut out = Vec::new();
    for (key, aggs, count) in groups {
        let mut g = Map::new();
        for (gb, v) in groupby.iter().zip(&key) {
            g.insert(gb.clone(), v.clone());
        }
        for ((alias, _, _), v) in specs.iter().zip(aggs) {
            g.insert(alias.clone(), v);
        }
        if lazy {
            g.insert(format!("{}_count", groupby[0]), json!(count));
        } else {
            g.insert("__count".into(), json!(count));
        }
        let mut dom = group_domain(&groupby, &key);
        if let Value::Array(d) = domain {
            dom.extend(d.iter().cloned());
        }
        g.insert("__domain".into(), json!(dom));
        out.push(Value::Object(g));
    }
    Ok(json!(out))
}

/// Odoo 19 `formatted_read_group`: keys are the literal specs (`"amount_total:sum"`).
fn formatted_read_group(
    db: &Db,
    model: &str,
    domain: &Value,
    groupby: &[String],
    aggregates: &[String],
    active_test: bool,
) -> Result<Value, OdooError> {
    let ids = db.search(model, domain, active_test)?;
    let mut specs = Vec::new();
    for a in aggregates {
        let Some((_, field, agg)) =
            parse_spec(db, model, a).filter(|_| a == "__count" || a.contains(':'))
        else {
            return Err(OdooError::new(
                "builtins.ValueError",
                format!("Invalid aggregate specification {a:?}"),
                500,
            ));
        };
        specs.push((a.clone(), field, agg));
    }
    let groups = db.group(model, &ids, groupby, &specs)?;
    let mut out = Vec::new();
    for (key, aggs, _) in groups {
        let mut g = Map::new();
        for (gb, v) in groupby.iter().zip(&key) {
            g.insert(gb.clone(), v.clone());
        }
        for ((spec, _, _), v) in specs.iter().zip(aggs) {
            g.insert(spec.clone(), v);
        }
        g.insert("__extra_domain".into(), json!(group_domain(groupby, &key)));
        out.push(Value::Object(g));
    }
    Ok(json!(out))
}
