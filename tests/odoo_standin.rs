//! The Odoo stand-in's own tests: each pins one fact of docs/odoo-protocol.md (section in
//! the test name), through the transports a client uses (reqwest, raw JSON).

#[path = "common/odoo_standin/mod.rs"]
mod odoo_standin;

use odoo_standin::{Fault, OdooStandin, OdooVersion, StandinConfig, StandinHandle};
use serde_json::{Value, json};
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn standin(version: OdooVersion) -> StandinHandle {
    OdooStandin::start_blocking(StandinConfig {
        version,
        ..Default::default()
    })
}

/// A minimal client of both transports, as the Odoo target talks to the server.
struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
    db: String,
}

impl Client {
    fn new(h: &StandinHandle) -> Client {
        Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap(),
            base: h.base_url(),
            key: h.api_key().to_string(),
            db: "odoo".into(),
        }
    }

    async fn rpc(&self, service: &str, method: &str, args: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "method": "call", "id": 1,
            "params": {"service": service, "method": method, "args": args}});
        let r = self
            .http
            .post(format!("{}/jsonrpc", self.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "JSON-RPC answers errors with HTTP 200");
        r.json().await.unwrap()
    }

    /// execute_kw as uid 2 (admin) with the API key as password; the whole envelope.
    async fn kw(&self, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
        self.rpc(
            "object",
            "execute_kw",
            json!([self.db, 2, self.key, model, method, args, kwargs]),
        )
        .await
    }

    async fn kw_ok(&self, model: &str, method: &str, args: Value, kwargs: Value) -> Value {
        let r = self.kw(model, method, args, kwargs).await;
        assert!(r.get("error").is_none(), "{model}.{method}: {r}");
        r["result"].clone()
    }

    async fn json2(&self, model: &str, method: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}/json/2/{model}/{method}", self.base))
            .bearer_auth(&self.key)
            .header("X-Odoo-Database", &self.db)
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }
}

fn partners_rows(n: usize, bad_every: usize) -> Vec<Vec<String>> {
    (0..n)
        .map(|i| {
            let name = if bad_every > 0 && i % bad_every == 0 {
                String::new()
            } else {
                format!("Customer {i}")
            };
            vec![
                format!("tms_customer_C{i:07}"),
                name,
                format!("c{i}@example.com"),
            ]
        })
        .collect()
}

#[test]
fn s4_authenticate_with_password_or_key_and_refuse_wrong_secret() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let ok = c
            .rpc(
                "common",
                "authenticate",
                json!(["odoo", "admin", "admin", {}]),
            )
            .await;
        assert_eq!(ok["result"], json!(2));
        let ok = c
            .rpc(
                "common",
                "authenticate",
                json!(["odoo", "admin", h.api_key(), {}]),
            )
            .await;
        assert_eq!(ok["result"], json!(2));
        let bad = c
            .rpc(
                "common",
                "authenticate",
                json!(["odoo", "admin", "nope", {}]),
            )
            .await;
        assert_eq!(bad["result"], json!(false));
        let r = c
            .rpc(
                "object",
                "execute_kw",
                json!(["odoo", 2, "nope", "res.partner", "search_count", [[]], {}]),
            )
            .await;
        assert_eq!(r["error"]["code"], json!(200), "17/18 use code 200");
        assert_eq!(r["error"]["message"], json!("Odoo Server Error"));
        assert_eq!(
            r["error"]["data"]["name"],
            json!("odoo.exceptions.AccessDenied")
        );
    });
}

#[test]
fn s1_load_creates_partners_through_jsonrpc_and_json2() {
    let h = standin(OdooVersion::V19);
    rt().block_on(async {
        let c = Client::new(&h);
        let before = h.records("res.partner").len();
        let r = c
            .kw_ok(
                "res.partner",
                "load",
                json!([["id", "name", "email"], partners_rows(3, 0)]),
                json!({"context": {"tracking_disable": true}}),
            )
            .await;
        assert_eq!(r["messages"], json!([]));
        assert_eq!(r["ids"].as_array().unwrap().len(), 3);
        assert_eq!(r["nextrow"], json!(0));
        let (status, r) = c
            .json2(
                "res.partner",
                "load",
                json!({"fields": ["id", "name"], "data": [["tms_customer_X1", "Via JSON-2"]],
                       "context": {"tracking_disable": true}}),
            )
            .await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["ids"].as_array().unwrap().len(), 1);
        assert_eq!(h.records("res.partner").len(), before + 4);
        assert_eq!(
            h.xmlid("__import__.tms_customer_C0000001").unwrap().0,
            "res.partner"
        );
        assert_eq!(h.load_calls(), 2);
    });
}

#[test]
fn s1_hundred_bad_rows_give_exactly_eleven_messages() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let r = c
            .kw_ok(
                "res.partner",
                "load",
                json!([["id", "name", "email"], partners_rows(100, 1)]),
                json!({}),
            )
            .await;
        let msgs = r["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 11, "{msgs:#?}");
        assert_eq!(r["ids"], json!(false));
        for (i, m) in msgs[..10].iter().enumerate() {
            assert_eq!(m["type"], "error");
            assert_eq!(m["message"], "Contacts require a name");
            assert_eq!(m["rows"], json!({"from": i, "to": i}));
            assert_eq!(m["record"], json!(i));
        }
        assert_eq!(msgs[10]["type"], "warning");
        assert!(msgs[10].get("rows").is_none());
        assert_eq!(
            msgs[10]["message"],
            "Found more than 10 errors and more than one error per 10 records, interrupted to avoid showing too many errors."
        );
    });
}

#[test]
fn s1_one_bad_row_rolls_back_the_whole_call() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let before = h.records("res.partner").len();
        let mut rows = partners_rows(1000, 0);
        for i in [10, 500, 999] {
            rows[i][1] = String::new();
        }
        let r = c
            .kw_ok(
                "res.partner",
                "load",
                json!([["id", "name", "email"], rows]),
                json!({}),
            )
            .await;
        assert_eq!(r["ids"], json!(false));
        let rows: Vec<_> = r["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["rows"]["from"].as_u64().unwrap())
            .collect();
        assert_eq!(
            rows,
            vec![10, 500, 999],
            "every bad row reported below the cap"
        );
        assert_eq!(
            h.records("res.partner").len(),
            before,
            "nothing of the call is kept"
        );
        assert!(h.xmlid("__import__.tms_customer_C0000001").is_none());
    });
}

#[test]
fn s4_serialization_fault_comes_back_inside_load() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        h.fail_next(1, Fault::Serialization);
        let r = c
            .kw_ok(
                "res.partner",
                "load",
                json!([["id", "name"], [["a", "A"], ["b", "B"]]]),
                json!({}),
            )
            .await;
        assert_eq!(r["ids"], json!(false));
        assert!(
            r["messages"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("could not serialize access due to concurrent update")
        );
        let r = c
            .kw_ok(
                "res.partner",
                "load",
                json!([["id", "name"], [["a", "A"]]]),
                json!({}),
            )
            .await;
        assert_eq!(
            r["ids"].as_array().unwrap().len(),
            1,
            "the next call succeeds"
        );
    });
}
