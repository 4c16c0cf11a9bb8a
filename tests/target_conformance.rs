//! Every target against the one contract (`tests/common/target_kit.rs`): the in-memory
//! twin (atomic, and reporting its own bad rows with a batch limit), SQLite, and the
//! local PostgreSQL and MariaDB servers, each in a throwaway database, and the Odoo
//! stand-in over both transports. A server that is
//! down fails the test, never skips it. Adding a target is one function here.

#[path = "common/odoo_standin/mod.rs"]
mod odoo_standin;
#[path = "common/target_kit.rs"]
mod target_kit;

use cutover::runbook::ResolvedEnv;
use cutover::target::memory::{self, Fault, MemoryTarget};
use cutover::target::sql::SqlTarget;
use cutover::target::{Capabilities, Target, TargetError};
use cutover::testdb::TempDb;
use target_kit::{Subject, TABLE, conformance};

fn env(url: &str, password: Option<&str>) -> ResolvedEnv {
    ResolvedEnv {
        name: "target".into(),
        url: url.into(),
        password: password.map(String::from),
        production: false,
        reset: false,
        app_users: vec![],
    }
}

async fn open(url: &str) -> SqlTarget {
    SqlTarget::open(&env(url, None))
        .await
        .unwrap_or_else(|e| panic!("{url}: {e:#}"))
}

async fn open_err(url: &str, password: Option<&str>) -> TargetError {
    match SqlTarget::open(&env(url, password)).await {
        Err(e) => e,
        Ok(_) => panic!("{url} opened"),
    }
}

/// Two faults the memory twin is told to give.
async fn memory_faults(t: &MemoryTarget) -> (TargetError, TargetError) {
    t.fail_next(1, Fault::Transient);
    let transient = t.count(TABLE).await.unwrap_err();
    t.fail_next(1, Fault::Fatal);
    let fatal = t.count(TABLE).await.unwrap_err();
    (transient, fatal)
}

fn memory_twin(caps: Capabilities) -> MemoryTarget {
    MemoryTarget::new()
        .with_tables(&[TABLE])
        .not_null(TABLE, "label")
        .with_capabilities(caps)
}

#[tokio::test]
async fn memory_atomic() {
    let t = memory_twin(memory::capabilities());
    let (transient, fatal) = memory_faults(&t).await;
    conformance(Subject {
        target: Box::new(t),
        transient: Some(transient),
        fatal,
        empty_is_null: false,
    })
    .await;
}

#[tokio::test]
async fn memory_reporting_bad_rows_with_a_batch_limit() {
    let t = memory_twin(Capabilities {
        reports_bad_rows: true,
        max_batch_rows: Some(64),
        ..memory::capabilities()
    });
    let (transient, fatal) = memory_faults(&t).await;
    conformance(Subject {
        target: Box::new(t.clone()),
        transient: Some(transient),
        fatal,
        empty_is_null: false,
    })
    .await;
    // The twin refuses more than 64 rows a call: the suite's 1,000 rows went in parts.
    assert!(t.writes() >= 1000 / 64, "{} writes", t.writes());
}

#[tokio::test]
async fn sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("t.db").display());
    let t = open(&url).await;
    t.db()
        .exec("CREATE TABLE conf_ledger (k TEXT PRIMARY KEY, label TEXT NOT NULL, amount TEXT, cur TEXT)")
        .await
        .unwrap();
    // A file has no server to lose; a database file that cannot be created is fatal.
    let fatal = open_err("sqlite:///proc/no/such/dir/t.db", None).await;
    conformance(Subject {
        target: Box::new(t),
        transient: None,
        fatal,
        empty_is_null: false,
    })
    .await;
}

#[tokio::test]
async fn postgres() {
    let db = TempDb::postgres("conformance");
    db.exec(
        "CREATE TABLE conf_ledger (k varchar(32) PRIMARY KEY, label text NOT NULL, \
         amount numeric(14,2), cur varchar(3))",
    );
    let t = open(&db.url()).await;
    // Nothing listens on port 1: refused, worth a retry. An unknown database is not.
    let transient = open_err("postgres://postgres@127.0.0.1:1/x", None).await;
    let fatal = open_err(
        "postgres://postgres@127.0.0.1:5432/cutover_no_such_db",
        None,
    )
    .await;
    conformance(Subject {
        target: Box::new(t),
        transient: Some(transient),
        fatal,
        empty_is_null: false,
    })
    .await;
}

#[tokio::test]
async fn mariadb() {
    let db = TempDb::mysql("conformance");
    db.exec(
        "CREATE TABLE conf_ledger (k VARCHAR(32) PRIMARY KEY, label TEXT NOT NULL, \
         amount DECIMAL(14,2), cur VARCHAR(3)) ENGINE=InnoDB",
    );
    let t = open(&db.url()).await;
    let transient = open_err("mysql://root@127.0.0.1:1/x", None).await;
    // A bad password.
    let fatal = open_err(&db.url(), Some("not-the-password")).await;
    conformance(Subject {
        target: Box::new(t),
        transient: Some(transient),
        fatal,
        empty_is_null: false,
    })
    .await;
}

/// The kit's table as an Odoo model of the stand-in: `k` is the external id (`id`).
fn odoo_ledger() -> odoo_standin::schema::Model {
    use odoo_standin::schema::{Field, Kind, Model};
    let field = |name: &'static str, kind: Kind, required: bool| Field {
        name,
        label: name,
        kind,
        required,
        computed: false,
    };
    Model {
        name: TABLE,
        description: "Conformance ledger",
        fields: vec![
            field("label", Kind::Char, true),
            field("amount", Kind::Float, false),
            field("cur", Kind::Char, false),
        ],
    }
}

/// Odoo renames the key column: the kit's `k` travels as the external id `id`.
struct OdooLedger(cutover::target::odoo::OdooTarget);

#[async_trait::async_trait]
impl Target for OdooLedger {
    fn name(&self) -> String {
        self.0.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.0.capabilities()
    }
    async fn prepare(&self, p: &cutover::target::Prepare) -> Result<Option<String>, TargetError> {
        let mut p = p.clone();
        for cols in p.tables.values_mut() {
            cols.retain(|c| c != "k");
        }
        self.0.prepare(&p).await
    }
    async fn write_batch(
        &self,
        spec: &cutover::target::TableSpec,
        rows: &[&[cutover::engine::rules::SqlValue]],
        may_conflict: bool,
    ) -> Result<cutover::target::WriteOutcome, TargetError> {
        let mut spec = spec.clone();
        for c in spec.columns.iter_mut().chain([&mut spec.key]) {
            if c == "k" {
                *c = "id".into();
            }
        }
        self.0.write_batch(&spec, rows, may_conflict).await
    }
    async fn count(&self, table: &str) -> Result<u64, TargetError> {
        self.0.count(table).await
    }
    async fn sums(
        &self,
        table: &str,
        column: &str,
        by: Option<&str>,
    ) -> Result<std::collections::BTreeMap<String, rust_decimal::Decimal>, TargetError> {
        self.0.sums(table, column, by).await
    }
    async fn close(&self) {
        self.0.close().await
    }
}

async fn odoo(json2: bool) {
    use cutover::target::odoo::{OdooOptions, OdooTarget};
    let odoo = odoo_standin::OdooStandin::start(odoo_standin::StandinConfig {
        version: if json2 {
            odoo_standin::OdooVersion::V19
        } else {
            odoo_standin::OdooVersion::V18
        },
        ..Default::default()
    })
    .await;
    odoo.with_db("odoo", |d| d.add_model(odoo_ledger()));
    let url = if json2 {
        odoo.url_json2("odoo")
    } else {
        odoo.url_jsonrpc("odoo")
    };
    let opts = || OdooOptions {
        // Every external id of the kit's rows (`__import__.K0001`, …) is this run's.
        xmlid_prefix: Some("__import__.".into()),
        backoff: std::time::Duration::from_millis(10),
        retries: 1,
        ..Default::default()
    };
    let t = OdooTarget::open(&env(&url, Some(odoo.api_key())), opts()).unwrap();
    // Nothing listens on port 1: worth a retry. A wrong key is not.
    let transient = OdooTarget::open(
        &env(&url.replace(&odoo.port().to_string(), "1"), Some("k")),
        opts(),
    )
    .unwrap()
    .count(TABLE)
    .await
    .unwrap_err();
    let fatal = OdooTarget::open(&env(&url, Some("not-the-key")), opts())
        .unwrap()
        .count(TABLE)
        .await
        .unwrap_err();
    conformance(Subject {
        target: Box::new(OdooLedger(t)),
        transient: Some(transient),
        fatal,
        empty_is_null: true,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odoo_jsonrpc() {
    odoo(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn odoo_json2() {
    odoo(true).await;
}
