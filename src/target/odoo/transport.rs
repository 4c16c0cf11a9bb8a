//! One Odoo method call over either transport, with Odoo's errors classified.
//!
//! A call names its arguments: JSON-2 sends them by name (it takes nothing else), JSON-RPC
//! sends them positionally in the order given (`execute_kw(db, uid, key, model, method,
//! [ids?, args…], {context, kwargs…})`), which is how Odoo's own clients call.
//! Results come back as raw JSON text so that amounts are parsed exactly, never as `f64`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value, json};

use super::endpoint::{Endpoint, Transport};

/// Why a call failed, as Odoo's answer shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Worth repeating: no answer, a timeout, HTTP 429/5xx, a lock or serialization failure.
    Transient {
        message: String,
        /// A server's `Retry-After`, when it gave one.
        retry_after: Option<Duration>,
    },
    /// The key (or the login) was refused: 401, `AccessDenied`, `authenticate` → false.
    Denied(String),
    /// Anything else: an unknown model, field or method, an access or user error.
    Fatal(String),
}

impl Fault {
    pub fn message(&self) -> &str {
        match self {
            Fault::Transient { message, .. } | Fault::Denied(message) | Fault::Fatal(message) => {
                message
            }
        }
    }
}

/// The key, kept out of every `Debug` and `Display`.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: String) -> Secret {
        Secret(s)
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[REDACTED]")
    }
}

/// One method call: `model.method(ids?, args…, kwargs…)` under `context`.
pub struct Call<'a> {
    pub model: &'a str,
    pub method: &'a str,
    /// The records a recordset method runs on (`write`, `unlink`, `action_post`).
    pub ids: &'a [i64],
    /// Named arguments sent by position over JSON-RPC, by name over JSON-2.
    pub args: Vec<(&'a str, Value)>,
    /// Keyword-only arguments (`lazy`), by name on both transports.
    pub kwargs: Vec<(&'a str, Value)>,
    pub context: &'a Map<String, Value>,
}

pub struct Client {
    pub endpoint: Endpoint,
    http: reqwest::Client,
    key: Secret,
    /// JSON-RPC's user id, from `authenticate` on first use.
    uid: tokio::sync::OnceCell<i64>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("key", &self.key)
            .finish()
    }
}

impl Client {
    pub fn new(
        endpoint: Endpoint,
        key: Secret,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> anyhow::Result<Client> {
        let http = reqwest::Client::builder()
            .connect_timeout(connect_timeout)
            .timeout(request_timeout)
            .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| anyhow::anyhow!("cannot build the HTTP client for {endpoint}: {e}"))?;
        Ok(Client {
            endpoint,
            http,
            key,
            uid: tokio::sync::OnceCell::new(),
            next_id: AtomicU64::new(1),
        })
    }

    /// Replace every occurrence of the key in `s`: nothing that reaches a message, a log or
    /// a panic can carry it, whatever a server or a library echoes back.
    pub fn redact(&self, s: &str) -> String {
        let k = self.key.expose();
        if k.is_empty() {
            s.to_string()
        } else {
            s.replace(k, "[REDACTED]")
        }
    }

    /// Make one call; no retries here (see the target's retry loop).
    pub async fn call(&self, call: &Call<'_>) -> Result<Box<RawValue>, Fault> {
        let r = match self.endpoint.transport {
            Transport::JsonRpc => self.call_jsonrpc(call).await,
            Transport::Json2 => self.call_json2(call).await,
        };
        r.map_err(|f| match f {
            Fault::Transient {
                message,
                retry_after,
            } => Fault::Transient {
                message: self.redact(&message),
                retry_after,
            },
            Fault::Denied(m) => Fault::Denied(self.redact(&m)),
            Fault::Fatal(m) => Fault::Fatal(self.redact(&m)),
        })
    }

    async fn call_json2(&self, call: &Call<'_>) -> Result<Box<RawValue>, Fault> {
        let mut body = Map::new();
        if !call.ids.is_empty() {
            body.insert("ids".into(), json!(call.ids));
        }
        for (k, v) in call.args.iter().chain(&call.kwargs) {
            body.insert((*k).to_string(), v.clone());
        }
        body.insert("context".into(), Value::Object(call.context.clone()));
        let url = format!(
            "{}/json/2/{}/{}",
            self.endpoint.base(),
            call.model,
            call.method
        );
        let what = format!("{}.{}", call.model, call.method);
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.key.expose())
            .header("X-Odoo-Database", &self.endpoint.db)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_fault(&what, e))?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let text = resp
            .text()
            .await
            .map_err(|e| self.transport_fault(&what, e))?;
        if status.is_success() {
            return RawValue::from_string(text).map_err(|e| {
                Fault::Fatal(format!(
                    "{what} at {}: the answer is not JSON: {e}",
                    self.endpoint
                ))
            });
        }
        // JSON-2 errors: {"name", "message", "arguments", "context", "debug"}.
        let err: OdooError = serde_json::from_str(&text).unwrap_or_default();
        let detail = err.describe().unwrap_or_else(|| short(&text));
        let code = status.as_u16();
        Err(match code {
            401 => Fault::Denied(detail),
            409 | 429 | 502 | 503 | 504 => Fault::Transient {
                message: format!("{what}: HTTP {code}: {detail}"),
                retry_after,
            },
            500.. => {
                if is_deterministic_name(&err.name) && !is_transient_name(&err.name, &err.message) {
                    Fault::Fatal(format!(
                        "{what} at {}: HTTP {code}: {detail}",
                        self.endpoint
                    ))
                } else {
                    Fault::Transient {
                        message: format!("{what}: HTTP {code}: {detail}"),
                        retry_after,
                    }
                }
            }
            404 => Fault::Fatal(format!(
                "{what} at {}: HTTP 404 (unknown model or method, or no JSON-2 API: Odoo 17/18 answer odoo+jsonrpc:// URLs): {detail}",
                self.endpoint
            )),
            _ => Fault::Fatal(format!(
                "{what} at {}: HTTP {code}: {detail}",
                self.endpoint
            )),
        })
    }

    async fn uid(&self) -> Result<i64, Fault> {
        self.uid
            .get_or_try_init(|| async {
                let login = self.endpoint.login.clone().unwrap_or_default();
                let params = json!({
                    "service": "common",
                    "method": "authenticate",
                    "args": [self.endpoint.db, login, self.key.expose(), {}],
                });
                let raw = self.jsonrpc("common.authenticate", params).await?;
                match serde_json::from_str::<Value>(raw.get()) {
                    Ok(Value::Number(n)) if n.as_i64().is_some() => {
                        Ok(n.as_i64().unwrap_or_default())
                    }
                    _ => Err(Fault::Denied(
                        "authenticate answered false (wrong login, key or database)".into(),
                    )),
                }
            })
            .await
            .copied()
    }

    async fn call_jsonrpc(&self, call: &Call<'_>) -> Result<Box<RawValue>, Fault> {
        let uid = self.uid().await?;
        let mut args = Vec::with_capacity(call.args.len() + 1);
        if !call.ids.is_empty() {
            args.push(json!(call.ids));
        }
        args.extend(call.args.iter().map(|(_, v)| v.clone()));
        let mut kwargs = Map::new();
        for (k, v) in &call.kwargs {
            kwargs.insert((*k).to_string(), v.clone());
        }
        kwargs.insert("context".into(), Value::Object(call.context.clone()));
        let params = json!({
            "service": "object",
            "method": "execute_kw",
            "args": [self.endpoint.db, uid, self.key.expose(), call.model, call.method, args, kwargs],
        });
        self.jsonrpc(&format!("{}.{}", call.model, call.method), params)
            .await
    }

    async fn jsonrpc(&self, what: &str, params: Value) -> Result<Box<RawValue>, Fault> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": id, "params": params});
        let url = format!("{}/jsonrpc", self.endpoint.base());
        let resp = self
            .http
            .post(&url)
            .json(&body)
            .send()
            .await
            .map_err(|e| self.transport_fault(what, e))?;
        let status = resp.status();
        let retry_after = retry_after(&resp);
        let text = resp
            .text()
            .await
            .map_err(|e| self.transport_fault(what, e))?;
        let code = status.as_u16();
        if code == 429 || code >= 500 {
            return Err(Fault::Transient {
                message: format!("{what}: HTTP {code}: {}", short(&text)),
                retry_after,
            });
        }
        if code == 404 {
            return Err(Fault::Fatal(format!(
                "{what} at {}: HTTP 404 on /jsonrpc (Odoo 22 removed JSON-RPC: use an odoo+json2:// URL)",
                self.endpoint
            )));
        }
        if !status.is_success() {
            return Err(Fault::Fatal(format!(
                "{what} at {}: HTTP {code}: {}",
                self.endpoint,
                short(&text)
            )));
        }
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            result: Option<Box<RawValue>>,
            #[serde(default)]
            error: Option<RpcError>,
        }
        #[derive(Deserialize, Default)]
        struct RpcError {
            #[serde(default)]
            message: String,
            #[serde(default)]
            data: OdooError,
        }
        let env: Envelope = serde_json::from_str(&text).map_err(|e| {
            Fault::Fatal(format!(
                "{what} at {}: the answer is not JSON-RPC: {e}: {}",
                self.endpoint,
                short(&text)
            ))
        })?;
        if let Some(err) = env.error {
            let detail = err.data.describe().unwrap_or(err.message);
            let name = &err.data.name;
            return Err(if name.ends_with("AccessDenied") {
                Fault::Denied(detail)
            } else if is_transient_name(name, &err.data.message) {
                Fault::Transient {
                    message: format!("{what}: {detail}"),
                    retry_after: None,
                }
            } else {
                Fault::Fatal(format!("{what} at {}: {detail}", self.endpoint))
            });
        }
        // A JSON-RPC `null` result (a method returning None) comes as `"result": null`.
        Ok(env
            .result
            .unwrap_or_else(|| RawValue::from_string("null".into()).expect("null is JSON")))
    }

    fn transport_fault(&self, what: &str, e: reqwest::Error) -> Fault {
        let kind = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "cannot connect"
        } else {
            "transport error"
        };
        // `{e:#}`-style chains name the URL (no secret in it) and the cause.
        let mut msg = format!("{what} at {}: {kind}: {e}", self.endpoint);
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        Fault::Transient {
            message: msg,
            retry_after: None,
        }
    }
}

/// Odoo's error payload (JSON-RPC `error.data`, or a JSON-2 error body).
#[derive(Debug, Deserialize, Default)]
struct OdooError {
    #[serde(default)]
    name: String,
    #[serde(default)]
    message: String,
}

impl OdooError {
    fn describe(&self) -> Option<String> {
        match (self.name.is_empty(), self.message.is_empty()) {
            (true, true) => None,
            (false, true) => Some(self.name.clone()),
            (true, false) => Some(self.message.clone()),
            (false, false) => Some(format!("{}: {}", self.name, self.message)),
        }
    }
}

/// Lock, serialization and connection failures of Odoo's database: the call may succeed
/// when repeated.
fn is_transient_name(name: &str, message: &str) -> bool {
    const NAMES: [&str; 6] = [
        "SerializationFailure",
        "TransactionRollbackError",
        "DeadlockDetected",
        "LockNotAvailable",
        "OperationalError",
        "ConcurrencyError",
    ];
    NAMES.iter().any(|n| name.contains(n)) || is_serialization_message(message)
}

/// Exceptions a repeated call raises again (an unknown field is a `ValueError`): a 500
/// naming one is not worth retrying. Any other 5xx is.
fn is_deterministic_name(name: &str) -> bool {
    const NAMES: [&str; 6] = [
        "ValueError",
        "KeyError",
        "TypeError",
        "AttributeError",
        "IndexError",
        "odoo.exceptions.",
    ];
    NAMES.iter().any(|n| name.contains(n))
}

/// PostgreSQL's words for a repeatable-read conflict, as `load` reports them in a message.
pub fn is_serialization_message(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("could not serialize access") || m.contains("deadlock detected")
}

fn retry_after(resp: &reqwest::Response) -> Option<Duration> {
    let v = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?;
    v.trim().parse::<u64>().ok().map(Duration::from_secs)
}

/// The start of a body, for messages: an HTML error page is not worth a screenful.
fn short(text: &str) -> String {
    let t = text.trim();
    match t.char_indices().nth(300) {
        Some((i, _)) => format!("{}…", &t[..i]),
        None => t.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_names_and_messages() {
        for (name, msg, want) in [
            ("psycopg2.errors.SerializationFailure", "", true),
            ("odoo.exceptions.ConcurrencyError", "", true),
            (
                "psycopg2.OperationalError",
                "server closed the connection",
                true,
            ),
            (
                "builtins.ValueError",
                "could not serialize access due to concurrent update",
                true,
            ),
            ("odoo.exceptions.AccessDenied", "Access Denied", false),
            (
                "builtins.ValueError",
                "Invalid field 'zorglub' on model 'res.partner'",
                false,
            ),
            ("odoo.exceptions.UserError", "Object x doesn't exist", false),
        ] {
            assert_eq!(is_transient_name(name, msg), want, "{name} {msg}");
        }
        for (name, deterministic) in [
            ("builtins.ValueError", true),
            ("odoo.exceptions.ValidationError", true),
            ("builtins.RuntimeError", false),
            ("", false),
        ] {
            assert_eq!(is_deterministic_name(name), deterministic, "{name}");
        }
    }

    #[test]
    fn secret_debug_is_redacted() {
        let s = Secret::new("k3y-very-secret".into());
        assert_eq!(format!("{s:?}"), "[REDACTED]");
    }
}
