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

async fn load(c: &Client, model: &str, fields: Value, data: Value) -> Value {
    c.kw_ok(model, "load", json!([fields, data]), json!({}))
        .await
}

fn find<'a>(
    recs: &'a [serde_json::Map<String, Value>],
    k: &str,
    v: &str,
) -> &'a serde_json::Map<String, Value> {
    recs.iter()
        .find(|r| r[k] == json!(v))
        .unwrap_or_else(|| panic!("no {k}={v}"))
}

#[test]
fn s2_reimporting_an_external_id_updates_never_duplicates() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let f = json!(["id", "name", "email"]);
        let a = load(
            &c,
            "res.partner",
            f.clone(),
            json!([["tms_customer_C1", "Old", "a@x.io"]]),
        )
        .await;
        let n = h.records("res.partner").len();
        let b = load(
            &c,
            "res.partner",
            f.clone(),
            json!([["tms_customer_C1", "New", "a@x.io"]]),
        )
        .await;
        assert_eq!(a["ids"], b["ids"], "same record");
        assert_eq!(h.records("res.partner").len(), n, "no duplicate");
        let recs = h.records("res.partner");
        assert_eq!(find(&recs, "email", "a@x.io")["name"], json!("New"));
        // The same external id written with its prefix is the same record.
        let c2 = load(
            &c,
            "res.partner",
            f,
            json!([["__import__.tms_customer_C1", "Again", ""]]),
        )
        .await;
        assert_eq!(a["ids"], c2["ids"]);
    });
}

#[test]
fn s1_empty_cell_clears_the_field() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let f = json!(["id", "name", "email", "city"]);
        let r = load(
            &c,
            "res.partner",
            f.clone(),
            json!([["p1", "P", "p@x.io", "Lyon"]]),
        )
        .await;
        let id = r["ids"][0].clone();
        load(&c, "res.partner", f, json!([["p1", "P", "", "Lyon"]])).await;
        let rec = c
            .kw_ok(
                "res.partner",
                "read",
                json!([[id], ["email", "city"]]),
                json!({}),
            )
            .await;
        assert_eq!(rec[0]["email"], json!(false));
        assert_eq!(rec[0]["city"], json!("Lyon"));
    });
}

#[test]
fn s1_unknown_column_is_an_rpc_error_not_a_message() {
    let h = standin(OdooVersion::V19);
    rt().block_on(async {
        let c = Client::new(&h);
        let r = c
            .kw(
                "res.partner",
                "load",
                json!([["id", "name", "nope"], [["x", "X", "1"]]]),
                json!({}),
            )
            .await;
        assert_eq!(r["error"]["code"], json!(0), "19 uses code 0");
        assert_eq!(r["error"]["data"]["name"], json!("builtins.ValueError"));
        assert_eq!(
            r["error"]["data"]["message"],
            json!("Invalid field name 'nope'")
        );
        let (status, body) = c
            .json2(
                "res.partner",
                "load",
                json!({"fields": ["nope"], "data": [["1"]]}),
            )
            .await;
        assert_eq!(status, 500);
        assert_eq!(body["name"], json!("builtins.ValueError"));
    });
}

async fn brand_and_model(c: &Client) {
    let r = load(
        c,
        "fleet.vehicle.model.brand",
        json!(["id", "name"]),
        json!([["tms_brand_scania", "Scania"]]),
    )
    .await;
    assert_eq!(r["messages"], json!([]), "{r}");
    let r = load(
        c,
        "fleet.vehicle.model",
        json!(["id", "name", "brand_id/id"]),
        json!([["tms_model_scania_r450", "R450", "tms_brand_scania"]]),
    )
    .await;
    assert_eq!(r["messages"], json!([]), "{r}");
}

#[test]
fn s8_vehicle_needs_its_model_and_its_name_is_computed() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        brand_and_model(&c).await;
        let f = json!([
            "id",
            "license_plate",
            "vin_sn",
            "model_year",
            "model_id/id",
            "name"
        ]);
        let r = load(
            &c,
            "fleet.vehicle",
            f.clone(),
            json!([["v1", "AB-123", "VIN1", "2019", "", "ignored"]]),
        )
        .await;
        assert_eq!(r["ids"], json!(false));
        assert_eq!(
            r["messages"],
            json!([{"type": "error", "rows": {"from": 0, "to": 0}, "record": 0, "field": "model_id",
                    "message": "Missing required value for the field 'Model' (model_id)"}])
        );
        let r = load(
            &c,
            "fleet.vehicle",
            f,
            json!([[
                "v1",
                "AB-123",
                "VIN1",
                "2019",
                "tms_model_scania_r450",
                "ignored"
            ]]),
        )
        .await;
        assert_eq!(r["messages"], json!([]), "{r}");
        let v = &h.records("fleet.vehicle")[0];
        assert_eq!(v["name"], json!("Scania/R450/AB-123"));
        assert_eq!(v["model_year"], json!("2019"));
        assert_eq!(v["brand_id"][1], json!("Scania"));
    });
}

const INVOICE_FIELDS: [&str; 9] = [
    "id",
    "move_type",
    "partner_id/id",
    "invoice_date",
    "currency_id",
    "amount_total",
    "invoice_line_ids/name",
    "invoice_line_ids/quantity",
    "invoice_line_ids/price_unit",
];

#[test]
fn s8_s9_invoice_totals_follow_lines_with_the_default_tax() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        load(
            &c,
            "res.partner",
            json!(["id", "name"]),
            json!([["cust1", "Customer 1"]]),
        )
        .await;
        let r = load(
            &c,
            "account.move",
            json!(INVOICE_FIELDS),
            json!([
                [
                    "inv1",
                    "out_invoice",
                    "cust1",
                    "2026-11-02",
                    "EUR",
                    "999.99",
                    "Freight",
                    "1",
                    "100.00"
                ],
                ["", "", "", "", "", "", "Storage", "2", "50.005"],
            ]),
        )
        .await;
        assert_eq!(r["messages"], json!([]), "{r}");
        let mv = &h.records("account.move")[0];
        // amount_total written as 999.99 has no effect; 15% default tax on both lines.
        assert_eq!(mv["amount_untaxed"], json!(200.01));
        assert_eq!(mv["amount_tax"], json!(30.0));
        assert_eq!(mv["amount_total"], json!(230.01));
        assert_eq!(mv["currency_id"][1], json!("EUR"));
        assert_eq!(mv["state"], json!("draft"));
        assert_eq!(mv["invoice_line_ids"].as_array().unwrap().len(), 2);
        // An explicit, empty tax_ids column means no tax (§9).
        let mut f = INVOICE_FIELDS.to_vec();
        f.push("invoice_line_ids/tax_ids");
        let r = load(
            &c,
            "account.move",
            json!(f),
            json!([[
                "inv2",
                "out_invoice",
                "cust1",
                "2026-11-03",
                "USD",
                "",
                "Open amount",
                "1",
                "123.45",
                ""
            ]]),
        )
        .await;
        assert_eq!(r["messages"], json!([]), "{r}");
        let id = r["ids"][0].as_i64().unwrap();
        c.kw_ok("account.move", "action_post", json!([[id]]), json!({}))
            .await;
        let mv = c
            .kw_ok(
                "account.move",
                "read",
                json!([[id], ["amount_total", "amount_residual", "state", "name"]]),
                json!({}),
            )
            .await;
        assert_eq!(mv[0]["amount_total"], json!(123.45));
        assert_eq!(mv[0]["amount_residual"], json!(123.45));
        assert_eq!(mv[0]["state"], json!("posted"));
        assert_eq!(mv[0]["name"], json!("INV/2026/00001"));
        // A posted invoice refuses new lines and deletion until reset to draft.
        let r = c
            .kw("account.move", "unlink", json!([[id]]), json!({}))
            .await;
        assert_eq!(
            r["error"]["data"]["name"],
            json!("odoo.exceptions.UserError")
        );
        // Odoo 18's words (account.move.line._unlink_except_posted).
        assert_eq!(
            r["error"]["data"]["message"],
            json!("You can't delete a posted journal item. Don’t play games with your accounting records; reset the journal entry to draft before deleting it.")
        );
        c.kw_ok("account.move", "button_draft", json!([[id]]), json!({}))
            .await;
        // button_draft takes only posted or cancelled entries.
        let r = c
            .kw("account.move", "button_draft", json!([[id]]), json!({}))
            .await;
        assert_eq!(
            r["error"]["data"]["message"],
            json!("Only posted/cancelled journal entries can be reset to draft.")
        );
        c.kw_ok("account.move", "unlink", json!([[id]]), json!({}))
            .await;
        assert!(
            h.xmlid("__import__.inv2").is_none(),
            "external id deleted with the record"
        );
    });
}

#[test]
fn s9_reimporting_lines_without_their_own_ids_adds_lines_with_ids_updates() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        load(
            &c,
            "res.partner",
            json!(["id", "name"]),
            json!([["cust1", "Customer 1"]]),
        )
        .await;
        let rows = json!([[
            "inv1",
            "out_invoice",
            "cust1",
            "2026-11-02",
            "EUR",
            "",
            "Freight",
            "1",
            "100"
        ]]);
        load(&c, "account.move", json!(INVOICE_FIELDS), rows.clone()).await;
        load(&c, "account.move", json!(INVOICE_FIELDS), rows).await;
        let mv = &h.records("account.move")[0];
        assert_eq!(
            mv["invoice_line_ids"].as_array().unwrap().len(),
            2,
            "lines doubled"
        );
        assert_eq!(mv["amount_total"], json!(230.0), "and the total with them");

        let mut f = INVOICE_FIELDS.to_vec();
        f.push("invoice_line_ids/id");
        let rows = json!([[
            "inv2",
            "out_invoice",
            "cust1",
            "2026-11-02",
            "EUR",
            "",
            "Freight",
            "1",
            "100",
            "inv2_line1"
        ]]);
        load(&c, "account.move", json!(f), rows.clone()).await;
        let r = load(&c, "account.move", json!(f), rows).await;
        assert_eq!(r["messages"], json!([]), "{r}");
        let id = r["ids"][0].as_i64().unwrap();
        let mv = c
            .kw_ok(
                "account.move",
                "read",
                json!([[id], ["invoice_line_ids", "amount_total"]]),
                json!({}),
            )
            .await;
        assert_eq!(
            mv[0]["invoice_line_ids"].as_array().unwrap().len(),
            1,
            "line updated in place"
        );
        assert_eq!(mv[0]["amount_total"], json!(115.0));
        assert_eq!(
            h.xmlid("__import__.inv2_line1").unwrap().0,
            "account.move.line"
        );
    });
}

#[test]
fn s5_json2_answers_real_http_statuses() {
    let h = standin(OdooVersion::V19);
    rt().block_on(async {
        let c = Client::new(&h);
        let url = |p: &str| format!("{}/json/2/{p}", h.base_url());
        // 400: not JSON
        let r = c
            .http
            .post(url("res.partner/search_count"))
            .bearer_auth(h.api_key())
            .body("{nope")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        // 401: missing or invalid key, with WWW-Authenticate
        let r = c
            .http
            .post(url("res.partner/search_count"))
            .json(&json!({"domain": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = c
            .http
            .post(url("res.partner/search_count"))
            .bearer_auth("wrong")
            .json(&json!({"domain": []}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert_eq!(r.headers()["www-authenticate"], "bearer");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["message"], json!("Invalid apikey"));
        for k in ["name", "message", "arguments", "context", "debug"] {
            assert!(body.get(k).is_some(), "error body has {k}");
        }
        // 403: private method
        assert_eq!(
            c.json2("res.partner", "_load_records", json!({})).await.0,
            403
        );
        // 404: unknown model, unknown method, any other /json/2 path
        assert_eq!(
            c.json2("no.such.model", "search_count", json!({"domain": []}))
                .await
                .0,
            404
        );
        assert_eq!(c.json2("res.partner", "frobnicate", json!({})).await.0, 404);
        let r = c
            .http
            .post(url("res.partner"))
            .bearer_auth(h.api_key())
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404);
        // 422: bad argument names, ids on a model method, a UserError
        let (s, b) = c
            .json2("res.partner", "search_count", json!({"domian": []}))
            .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(
            c.json2(
                "res.partner",
                "search_count",
                json!({"ids": [1], "domain": []})
            )
            .await
            .0,
            422
        );
        let (_, r) = c
            .json2(
                "account.move",
                "create",
                json!({"vals_list": [{"move_type": "out_invoice"}]}),
            )
            .await;
        let (s, b) = c
            .json2("account.move", "action_post", json!({"ids": r}))
            .await;
        assert_eq!(s, 422, "{b}");
        assert_eq!(b["name"], json!("odoo.exceptions.UserError"));
        // 409: a serialization failure outside load
        h.fail_next(1, Fault::Serialization);
        assert_eq!(
            c.json2("res.partner", "search_count", json!({"domain": []}))
                .await
                .0,
            409
        );
        // 200 with the method's result
        let (s, n) = c
            .json2(
                "res.partner",
                "search_count",
                json!({"domain": [["name", "=", "YourCompany"]]}),
            )
            .await;
        assert_eq!((s, n), (200, json!(1)));
    });
    // Odoo 17/18 have no /json/2 at all.
    let h18 = standin(OdooVersion::V18);
    rt().block_on(async {
        assert_eq!(
            Client::new(&h18)
                .json2("res.partner", "search_count", json!({"domain": []}))
                .await
                .0,
            404
        );
    });
}

#[test]
fn s10_archived_user_is_refused_on_both_transports() {
    let h = standin(OdooVersion::V19);
    let uid = h.add_user("odoo", "operator", "op-pass", "op-key");
    rt().block_on(async {
        let c = Client::new(&h);
        let op = Client {
            key: "op-key".into(),
            ..Client::new(&h)
        };
        assert_eq!(
            op.rpc(
                "common",
                "authenticate",
                json!(["odoo", "operator", "op-pass", {}])
            )
            .await["result"],
            json!(uid)
        );
        assert_eq!(
            op.json2("res.partner", "search_count", json!({"domain": []}))
                .await
                .0,
            200
        );
        // Freezing production: the admin archives the user through the API.
        c.kw_ok(
            "res.users",
            "write",
            json!([[uid], {"active": false}]),
            json!({}),
        )
        .await;
        assert_eq!(
            op.rpc(
                "common",
                "authenticate",
                json!(["odoo", "operator", "op-pass", {}])
            )
            .await["result"],
            json!(false)
        );
        let r = op
            .rpc(
                "object",
                "execute_kw",
                json!([
                    "odoo",
                    uid,
                    "op-key",
                    "res.partner",
                    "search_count",
                    [[]],
                    {}
                ]),
            )
            .await;
        assert_eq!(
            r["error"]["data"]["name"],
            json!("odoo.exceptions.AccessDenied")
        );
        assert_eq!(
            op.json2("res.partner", "search_count", json!({"domain": []}))
                .await
                .0,
            401
        );
        // Archived users are out of a plain search, but found with active_test=False.
        assert_eq!(
            c.kw_ok(
                "res.users",
                "search_count",
                json!([[["login", "=", "operator"]]]),
                json!({})
            )
            .await,
            json!(0)
        );
        let n = c
            .kw_ok(
                "res.users",
                "search_count",
                json!([[["login", "=", "operator"]]]),
                json!({"context": {"active_test": false}}),
            )
            .await;
        assert_eq!(n, json!(1));
        // Unfreezing restores it.
        c.kw_ok(
            "res.users",
            "write",
            json!([[uid], {"active": true}]),
            json!({}),
        )
        .await;
        assert_eq!(
            op.json2("res.partner", "search_count", json!({"domain": []}))
                .await
                .0,
            200
        );
    });
}

#[test]
fn s4_revoked_or_expired_key_is_refused() {
    let h = standin(OdooVersion::V19);
    rt().block_on(async {
        let c = Client::new(&h);
        h.expire_key(h.api_key());
        assert_eq!(
            c.json2("res.partner", "search_count", json!({"domain": []}))
                .await
                .0,
            401
        );
        let r = c
            .kw("res.partner", "search_count", json!([[]]), json!({}))
            .await;
        assert_eq!(
            r["error"]["data"]["name"],
            json!("odoo.exceptions.AccessDenied")
        );
        // The password still works on JSON-RPC; a revoked key is gone for good.
        let pw = Client {
            key: "admin".into(),
            ..Client::new(&h)
        };
        assert_eq!(
            pw.kw_ok("res.partner", "search_count", json!([[]]), json!({}))
                .await,
            json!(2)
        );
        h.revoke_key(h.api_key());
        assert_eq!(
            c.rpc(
                "common",
                "authenticate",
                json!(["odoo", "admin", h.api_key(), {}])
            )
            .await["result"],
            json!(false)
        );
    });
}

async fn two_invoices(c: &Client) {
    load(
        c,
        "res.partner",
        json!(["id", "name"]),
        json!([["cust1", "Customer 1"]]),
    )
    .await;
    let mut f = INVOICE_FIELDS.to_vec();
    f.push("invoice_line_ids/tax_ids");
    let r = load(
        c,
        "account.move",
        json!(f),
        json!([
            [
                "i1",
                "out_invoice",
                "cust1",
                "2026-11-02",
                "EUR",
                "",
                "Open",
                "1",
                "100.10",
                ""
            ],
            [
                "i2",
                "out_invoice",
                "cust1",
                "2026-11-02",
                "EUR",
                "",
                "Open",
                "1",
                "0.20",
                ""
            ],
            [
                "i3",
                "out_invoice",
                "cust1",
                "2026-11-02",
                "GBP",
                "",
                "Open",
                "1",
                "7",
                ""
            ],
        ]),
    )
    .await;
    assert_eq!(r["messages"], json!([]), "{r}");
}

#[test]
fn s6_read_group_shape_on_17_and_18() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        two_invoices(&c).await;
        let g = c
            .kw_ok(
                "account.move",
                "read_group",
                json!([
                    [["move_type", "=", "out_invoice"]],
                    ["amount_total:sum", "amount_residual:sum"],
                    ["currency_id"]
                ]),
                json!({"lazy": false}),
            )
            .await;
        let eur = g
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["currency_id"][1] == "EUR")
            .unwrap();
        assert_eq!(eur["amount_total"], json!(100.3));
        assert_eq!(eur["amount_residual"], json!(100.3));
        assert_eq!(eur["__count"], json!(2));
        assert!(eur["__domain"].is_array());
        assert!(eur.get("amount_total:sum").is_none());
        let r = c
            .kw(
                "account.move",
                "formatted_read_group",
                json!([[]]),
                json!({"groupby": ["currency_id"]}),
            )
            .await;
        assert_eq!(
            r["error"]["data"]["name"],
            json!("builtins.AttributeError"),
            "not in 18"
        );
    });
}

#[test]
fn s6_formatted_read_group_shape_on_19() {
    let h = standin(OdooVersion::V19);
    rt().block_on(async {
        let c = Client::new(&h);
        two_invoices(&c).await;
        let (s, g) = c
            .json2(
                "account.move",
                "formatted_read_group",
                json!({"domain": [["move_type", "=", "out_invoice"]], "groupby": ["currency_id"],
                       "aggregates": ["amount_total:sum", "amount_residual:sum", "__count"]}),
            )
            .await;
        assert_eq!(s, 200, "{g}");
        let gbp = g
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["currency_id"][1] == "GBP")
            .unwrap();
        assert_eq!(gbp["amount_total:sum"], json!(7.0));
        assert_eq!(gbp["amount_residual:sum"], json!(7.0));
        assert_eq!(gbp["__count"], json!(1));
        assert!(gbp.get("amount_total").is_none());
    });
}

#[test]
fn s2_external_id_of_another_model_is_an_error() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let r = load(&c, "res.partner", json!(["id", "name"]), json!([["base.EUR", "Not a currency"]])).await;
        assert_eq!(r["ids"], json!(false));
        let m = r["messages"][0]["message"].as_str().unwrap();
        assert!(
            m.starts_with("For external id base.EUR when trying to create/update a record of model res.partner found record of different model res.currency"),
            "{m}"
        );
    });
}

#[test]
fn s2_relation_by_name_none_is_an_error_several_a_warning() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        load(
            &c,
            "res.partner",
            json!(["id", "name"]),
            json!([["d1", "Dup"], ["d2", "Dup"]]),
        )
        .await;
        let r = load(
            &c,
            "res.partner",
            json!(["id", "name", "parent_id"]),
            json!([["k1", "Kid", "Dup"]]),
        )
        .await;
        assert_ne!(r["ids"], json!(false), "a warning alone does not roll back");
        assert_eq!(r["messages"][0]["type"], json!("warning"));
        assert_eq!(
            r["messages"][0]["message"],
            json!(
                "Found multiple matches for value \"Dup\" in field \"Related Company\" (2 matches)"
            )
        );
        let r = load(
            &c,
            "res.partner",
            json!(["id", "name", "parent_id"]),
            json!([["k2", "Kid", "Nobody"]]),
        )
        .await;
        assert_eq!(r["ids"], json!(false));
        assert_eq!(r["messages"][0]["field"], json!("parent_id"));
        assert_eq!(
            r["messages"][0]["message"],
            json!("No matching record found for name 'Nobody' in field 'Related Company'")
        );
        // Two ways of naming one relation is an error.
        let r = load(
            &c,
            "res.partner",
            json!(["id", "name", "parent_id", "parent_id/id"]),
            json!([["k3", "Kid", "Dup", "d1"]]),
        )
        .await;
        assert_eq!(r["ids"], json!(false));
        assert!(
            r["messages"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("Ambiguous specification")
        );
        // By database id.
        let r = load(
            &c,
            "res.partner",
            json!(["id", "name", "parent_id/.id"]),
            json!([["k4", "Kid", "1"]]),
        )
        .await;
        assert_eq!(r["messages"], json!([]));
    });
}

#[test]
fn s1_conversions_and_their_errors() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let f = json!(["id", "name", "is_company", "date", "partner_latitude", "type"]);
        let r = load(&c, "res.partner", f.clone(), json!([["c1", "C", "Yes", "2024-12-31", "45.5", "invoice address"]])).await;
        assert_eq!(r["messages"], json!([]), "{r}");
        let p = c.kw_ok("res.partner", "read", json!([r["ids"], ["is_company", "date", "partner_latitude", "type"]]), json!({})).await;
        assert_eq!(p[0], json!({"id": r["ids"][0], "is_company": true, "date": "2024-12-31", "partner_latitude": 45.5, "type": "invoice"}));
        let cases = [
            (["c2", "C", "maybe", "", "", ""], "is_company", "Unknown value 'maybe' for boolean field 'Is a Company'"),
            (["c2", "C", "", "31/12/2024", "", ""], "date", "'31/12/2024' does not seem to be a valid date for field 'Date'"),
            (["c2", "C", "", "", "1,5", ""], "partner_latitude", "'1,5' does not seem to be a number for field 'Geo Latitude'"),
            (["c2", "C", "", "", "", "bogus"], "type", "Value 'bogus' not found in selection field 'Address Type'"),
        ];
        for (row, field, msg) in cases {
            let r = load(&c, "res.partner", f.clone(), json!([row])).await;
            assert_eq!(r["ids"], json!(false), "{field}");
            assert_eq!(r["messages"][0]["field"], json!(field));
            assert_eq!(r["messages"][0]["message"], json!(msg));
        }
        let r = load(&c, "fleet.vehicle", json!(["id", "seats"]), json!([["v", "zorglub"]])).await;
        assert_eq!(r["messages"][0]["message"], json!("'zorglub' does not seem to be an integer for field 'Seats Number'"));
        // Conversion errors are not capped: 30 bad dates, 30 messages, no warning.
        let rows: Vec<_> = (0..30).map(|i| json!([format!("d{i}"), "D", "", "2024-02-30", "", ""])).collect();
        let r = load(&c, "res.partner", f, json!(rows)).await;
        let msgs = r["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 30);
        assert!(msgs.iter().all(|m| m["type"] == "error"));
    });
}

#[test]
fn s1_nextrow_follows_import_limit() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let r = c
            .kw_ok(
                "res.partner",
                "load",
                json!([["id", "name"], [["a", "A"], ["b", "B"], ["c", "C"]]]),
                json!({"context": {"_import_limit": 2}}),
            )
            .await;
        assert_eq!(r["ids"].as_array().unwrap().len(), 2);
        assert_eq!(r["nextrow"], json!(2));
    });
}

#[test]
fn s4_injected_statuses_and_timeouts_then_recovery() {
    let h = standin(OdooVersion::V19);
    rt().block_on(async {
        let c = Client::new(&h);
        for code in [500u16, 502, 503, 429] {
            h.fail_next(1, Fault::Status(code));
            let r = c.http.post(format!("{}/json/2/res.partner/search_count", h.base_url()))
                .bearer_auth(h.api_key()).json(&json!({"domain": []})).send().await.unwrap();
            assert_eq!(r.status().as_u16(), code);
            if code == 429 {
                assert!(r.headers().contains_key("retry-after"));
            }
        }
        h.fail_next(1, Fault::Status(502));
        let r = c.http.post(format!("{}/jsonrpc", h.base_url()))
            .json(&json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {"service": "object",
                "method": "execute_kw", "args": ["odoo", 2, h.api_key(), "res.partner", "search_count", [[]], {}]}}))
            .send().await.unwrap();
        assert_eq!(r.status().as_u16(), 502, "a proxy's answer, not JSON-RPC");
        // A timed-out call is still done by the server afterwards.
        h.fail_next(1, Fault::Timeout(Duration::from_millis(600)));
        let quick = reqwest::Client::builder().timeout(Duration::from_millis(150)).build().unwrap();
        let r = quick.post(format!("{}/json/2/res.partner/load", h.base_url()))
            .bearer_auth(h.api_key())
            .json(&json!({"fields": ["id", "name"], "data": [["late", "Late"]]}))
            .send().await;
        assert!(r.unwrap_err().is_timeout());
        tokio::time::sleep(Duration::from_millis(900)).await;
        assert!(h.xmlid("__import__.late").is_some());
        assert_eq!(c.json2("res.partner", "search_count", json!({"domain": []})).await.0, 200);
    });
}

#[test]
fn s9_a_fresh_database_is_never_empty_and_ir_model_data_is_readable() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let brands = c
            .kw_ok(
                "fleet.vehicle.model.brand",
                "search_read",
                json!([[["name", "=", "Audi"]], ["name"]]),
                json!({}),
            )
            .await;
        assert_eq!(brands.as_array().unwrap().len(), 1);
        assert_eq!(
            c.kw_ok("res.partner", "search_count", json!([[]]), json!({}))
                .await,
            json!(2),
            "company and admin (OdooBot archived)"
        );
        assert_eq!(
            c.kw_ok("hr.employee", "search_count", json!([[]]), json!({}))
                .await,
            json!(1)
        );
        let r = load(
            &c,
            "res.partner",
            json!(["id", "name"]),
            json!([["x1", "X1"], ["x2", "X2"]]),
        )
        .await;
        let dom = json!([["module", "=", "__import__"], ["model", "=", "res.partner"]]);
        let imd = c
            .kw_ok(
                "ir.model.data",
                "search_read",
                json!([dom, ["name", "res_id"]]),
                json!({}),
            )
            .await;
        assert_eq!(imd.as_array().unwrap().len(), 2);
        assert_eq!(imd[0]["name"], json!("x1"));
        c.kw_ok("res.partner", "unlink", json!([r["ids"]]), json!({}))
            .await;
        assert_eq!(
            c.kw_ok("ir.model.data", "search_count", json!([dom]), json!({}))
                .await,
            json!(0)
        );
    });
}

#[test]
fn domains_with_prefix_operators_and_patterns() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        load(
            &c,
            "res.partner",
            json!(["id", "name", "city"]),
            json!([
                ["a", "Alpha", "Lyon"],
                ["b", "beta", "Paris"],
                ["g", "Gamma", ""]
            ]),
        )
        .await;
        let c = &c;
        let n = |d: Value| async move {
            c.kw_ok("res.partner", "search_count", json!([d]), json!({}))
                .await
        };
        assert_eq!(n(json!([["name", "ilike", "ALP"]])).await, json!(1));
        assert_eq!(n(json!([["name", "like", "ALP"]])).await, json!(0));
        assert_eq!(n(json!([["name", "=like", "_eta"]])).await, json!(1));
        assert_eq!(
            n(json!(["|", ["city", "=", "Lyon"], ["city", "=", "Paris"]])).await,
            json!(2)
        );
        assert_eq!(
            n(json!([
                ["city", "in", ["Lyon", "Paris"]],
                ["name", "!=", "beta"]
            ]))
            .await,
            json!(1)
        );
        assert_eq!(
            n(json!([
                ["city", "=", false],
                ["name", "not in", ["YourCompany", "Administrator"]]
            ]))
            .await,
            json!(1)
        );
        assert_eq!(n(json!(["!", ["city", "=", false]])).await, json!(2));
    });
}

#[test]
fn s1_the_cap_needs_ten_errors_and_one_per_ten_records() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let f = json!(["id", "name", "email"]);
        // 30 bad rows spread over 1,000: never one error per 10 records, all reported.
        let mut rows = partners_rows(1000, 0);
        let bad: Vec<usize> = (0..30).map(|k| 16 + k * 33).collect();
        for &i in &bad {
            rows[i][1] = String::new();
        }
        let r = load(&c, "res.partner", f.clone(), json!(rows)).await;
        let msgs = r["messages"].as_array().unwrap();
        let reported: Vec<usize> = msgs
            .iter()
            .map(|m| m["rows"]["from"].as_u64().unwrap() as usize)
            .collect();
        assert_eq!(reported, bad);
        // The same 30 at the head of the batch: stopped after 10, with the warning.
        let mut rows = partners_rows(1000, 0);
        for row in rows.iter_mut().take(30) {
            row[1] = String::new();
        }
        let r = load(&c, "res.partner", f, json!(rows)).await;
        let msgs = r["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 11);
        assert_eq!(msgs[9]["rows"]["from"], json!(9));
        assert_eq!(msgs[10]["type"], json!("warning"));
    });
}

#[test]
fn s9_posted_invoice_rerun_unchanged_passes_a_changed_line_is_refused() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        load(
            &c,
            "res.partner",
            json!(["id", "name"]),
            json!([["cust1", "Customer 1"]]),
        )
        .await;
        let mut f = INVOICE_FIELDS.to_vec();
        f.extend(["invoice_line_ids/tax_ids", "invoice_line_ids/id"]);
        let row = |price: &str| {
            json!([[
                "inv1",
                "out_invoice",
                "cust1",
                "2026-11-02",
                "EUR",
                "",
                "Open",
                "1",
                price,
                "",
                "inv1_line"
            ]])
        };
        let r = load(&c, "account.move", json!(f), row("80")).await;
        c.kw_ok("account.move", "action_post", json!([r["ids"]]), json!({}))
            .await;
        let n = h.records("account.move.line").len();
        let again = load(&c, "account.move", json!(f), row("80")).await;
        assert_eq!(again["messages"], json!([]), "{again}");
        assert_eq!(
            h.records("account.move.line").len(),
            n,
            "a re-run creates nothing"
        );
        let changed = load(&c, "account.move", json!(f), row("81")).await;
        assert_eq!(changed["ids"], json!(false));
        assert_eq!(changed["messages"][0]["type"], json!("error"));
        assert_eq!(h.records("account.move")[0]["amount_total"], json!(80.0));
    });
}

#[test]
fn s8_reference_models_defaults_and_fields_get() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        let r = load(
            &c,
            "hr.employee",
            json!(["id", "name", "work_email", "mobile_phone"]),
            json!([["tms_driver_D1", "Driver One", "d1@x.io", "+33 6 00"]]),
        )
        .await;
        assert_eq!(r["messages"], json!([]), "{r}");
        let e = c
            .kw_ok(
                "hr.employee",
                "read",
                json!([r["ids"], ["company_id", "employee_type"]]),
                json!({}),
            )
            .await;
        assert_eq!(
            e[0]["company_id"],
            json!([1, "YourCompany"]),
            "company_id defaulted"
        );
        assert_eq!(e[0]["employee_type"], json!("employee"));
        let r = load(
            &c,
            "hr.employee",
            json!(["id", "work_email"]),
            json!([["tms_driver_D2", "x@x.io"]]),
        )
        .await;
        assert_eq!(
            r["messages"][0]["message"],
            json!("Missing required value for the field 'Employee Name' (name)")
        );
        let fg = c
            .kw_ok(
                "fleet.vehicle",
                "fields_get",
                json!([]),
                json!({"attributes": ["type", "required", "readonly"]}),
            )
            .await;
        assert_eq!(fg["model_id"]["required"], json!(true));
        assert_eq!(fg["model_id"]["relation"], json!("fleet.vehicle.model"));
        assert_eq!(fg["model_year"]["type"], json!("char"));
        let fg = c
            .kw_ok(
                "account.move",
                "fields_get",
                json!([["amount_total", "move_type"]]),
                json!({}),
            )
            .await;
        assert_eq!(fg["amount_total"]["readonly"], json!(true));
        assert!(
            fg["move_type"]["selection"]
                .as_array()
                .unwrap()
                .contains(&json!(["out_invoice", "Customer Invoice"]))
        );
        assert!(fg.get("partner_id").is_none());
        // Python's argument binding: an unknown keyword is a TypeError.
        let r = c
            .kw(
                "res.partner",
                "search_count",
                json!([[]]),
                json!({"domian": []}),
            )
            .await;
        assert_eq!(r["error"]["data"]["name"], json!("builtins.TypeError"));
        let r = c
            .kw("no.such.model", "search_count", json!([[]]), json!({}))
            .await;
        assert_eq!(
            r["error"]["data"]["message"],
            json!("Object no.such.model doesn't exist")
        );
        // search_read with order, offset and limit.
        load(
            &c,
            "res.partner",
            json!(["id", "name"]),
            json!([["a", "Zed"], ["b", "Amy"], ["c", "Max"]]),
        )
        .await;
        let names = c
            .kw_ok(
                "res.partner",
                "search_read",
                json!([[["id", ">", 3]], ["name"]]),
                json!({"order": "name desc", "limit": 2, "offset": 1}),
            )
            .await;
        let names: Vec<_> = names
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].clone())
            .collect();
        assert_eq!(names, vec![json!("Max"), json!("Amy")]);
    });
}

#[test]
fn s7_concurrent_calls_updating_the_same_record_fail_to_serialize() {
    let h = OdooStandin::start_blocking(StandinConfig {
        latency: Duration::from_millis(300),
        ..Default::default()
    });
    rt().block_on(async {
        let c = Client::new(&h);
        let (s, _) = c
            .json2(
                "res.partner",
                "load",
                json!({"fields": ["id", "name"], "data": [["p1", "P1"], ["p2", "P2"]]}),
            )
            .await;
        assert_eq!(s, 200);
        let upd = |xid: &'static str, name: &'static str| {
            c.json2(
                "res.partner",
                "load",
                json!({"fields": ["id", "name"], "data": [[xid, name]]}),
            )
        };
        let (a, b) = tokio::join!(upd("p1", "A"), upd("p1", "B"));
        let failed: Vec<_> = [&a.1, &b.1]
            .into_iter()
            .filter(|r| r["ids"] == json!(false))
            .collect();
        assert_eq!(failed.len(), 1, "{a:?} {b:?}");
        assert!(
            failed[0]["messages"][0]["message"]
                .as_str()
                .unwrap()
                .starts_with("could not serialize access due to concurrent update")
        );
        // Different records: no conflict.
        let (a, b) = tokio::join!(upd("p1", "X"), upd("p2", "Y"));
        assert!(
            a.1["ids"].is_array() && b.1["ids"].is_array(),
            "{a:?} {b:?}"
        );
    });
}

/// §9 "Deleting a posted invoice": a numbered entry goes only if the entries deleted with
/// it end its sequence chain (`account.move._unlink_forbid_parts_of_chain`, Odoo 18's
/// words), unless the context has `force_delete`; nothing is deleted by a refused call.
#[test]
fn s9_a_numbered_entry_is_deleted_only_at_the_end_of_its_chain() {
    let h = standin(OdooVersion::V18);
    rt().block_on(async {
        let c = Client::new(&h);
        two_invoices(&c).await;
        let id = |x: &str| h.xmlid(&format!("__import__.{x}")).unwrap().1;
        let (i1, i2, i3) = (id("i1"), id("i2"), id("i3"));
        c.kw_ok("account.move", "action_post", json!([[i1, i2, i3]]), json!({}))
            .await;
        let names = c
            .kw_ok(
                "account.move",
                "read",
                json!([[i1, i2, i3], ["name"]]),
                json!({}),
            )
            .await;
        let names: Vec<&str> = names
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["INV/2026/00001", "INV/2026/00002", "INV/2026/00003"]);
        c.kw_ok("account.move", "button_draft", json!([[i1, i2, i3]]), json!({}))
            .await;
        // Older entries while a newer one of the chain remains, or a set with a hole.
        for ids in [vec![i1], vec![i2], vec![i1, i3], vec![i1, i2]] {
            let r = c
                .kw("account.move", "unlink", json!([ids]), json!({}))
                .await;
            assert_eq!(
                r["error"]["data"]["name"],
                json!("odoo.exceptions.UserError"),
                "{ids:?}: {r}"
            );
            assert_eq!(
                r["error"]["data"]["message"],
                json!("You cannot delete this entry, as it has already consumed a sequence number and is not the last one in the chain. You should probably revert it instead."),
                "{ids:?}"
            );
            assert_eq!(h.records("account.move").len(), 3, "{ids:?}: none deleted");
        }
        // force_delete lifts the rule: the oldest goes, leaving a gap.
        c.kw_ok(
            "account.move",
            "unlink",
            json!([[i1]]),
            json!({"context": {"force_delete": true}}),
        )
        .await;
        // Newest first succeeds, one call or several.
        c.kw_ok("account.move", "unlink", json!([[i3]]), json!({}))
            .await;
        c.kw_ok("account.move", "unlink", json!([[i2]]), json!({}))
            .await;
        assert!(h.records("account.move").is_empty());
    });
}
