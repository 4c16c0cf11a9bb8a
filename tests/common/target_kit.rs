//! The target contract (see `cutover::target`) as one suite every target must pass.
//! A target joins by one function that builds a [`Subject`] and calls [`conformance`];
//! see `tests/target_conformance.rs`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use cutover::engine::pipeline::{bisect_rows, bisect_rows_as};
use cutover::engine::rules::SqlValue;
use cutover::target::{Prepare, TableSpec, Target, TargetError, WriteOutcome};

/// The table every subject provides, empty: `k` (key, text), `label` (text, NOT NULL:
/// the row the suite makes bad has a NULL label), `amount` (exact decimal, 2 places),
/// `cur` (a currency code, nullable).
pub const TABLE: &str = "conf_ledger";

pub struct Subject {
    pub target: Box<dyn Target>,
    /// An error the target gave for a fault that passes (a server not answering yet, an
    /// injected fault); `None` where the target has no such fault to show (a file).
    pub transient: Option<TargetError>,
    /// An error the target gave for a fault that does not pass (bad password, unknown
    /// database, injected).
    pub fatal: TargetError,
    /// The target cannot tell an empty string from NULL (Odoo: an empty cell is `False`),
    /// so the empty-label row of the suite carries a label there.
    pub empty_is_null: bool,
}

pub fn spec() -> TableSpec {
    TableSpec {
        table: TABLE.into(),
        key: "k".into(),
        columns: ["k", "label", "amount", "cur"].map(String::from).to_vec(),
    }
}

pub fn row(k: &str, label: Option<&str>, amount: &str, cur: Option<&str>) -> Vec<SqlValue> {
    let text = |v: Option<&str>| v.map_or(SqlValue::Null, |s| SqlValue::Text(s.into()));
    vec![
        SqlValue::Text(k.into()),
        text(label),
        SqlValue::Dec(amount.parse().expect("a decimal")),
        text(cur),
    ]
}

async fn write(t: &dyn Target, rows: &[Vec<SqlValue>]) -> Result<WriteOutcome, TargetError> {
    let refs: Vec<&[SqlValue]> = rows.iter().map(|r| r.as_slice()).collect();
    t.write_batch(&spec(), &refs, true).await
}

fn dec(s: &str) -> Decimal {
    s.parse().unwrap()
}

async fn reset(t: &dyn Target) {
    let prepare = Prepare {
        schema: None,
        tables: BTreeMap::from([(TABLE.to_string(), spec().columns)]),
        reset: vec![TABLE.into()],
    };
    t.prepare(&prepare).await.expect("prepare with a reset");
    assert_eq!(
        t.count(TABLE).await.unwrap(),
        0,
        "a reset empties the table"
    );
}

/// Every property of the contract, in order, on one subject.
pub async fn conformance(s: Subject) {
    let t = s.target.as_ref();
    let caps = t.capabilities();
    let who = t.name();
    reset(t).await;

    // An empty batch writes nothing and succeeds.
    assert_eq!(write(t, &[]).await.unwrap().loaded, 0, "{who}: empty batch");
    assert_eq!(t.count(TABLE).await.unwrap(), 0, "{who}");

    // Write, then count; a replay leaves the count and reports the rows loaded again.
    let empty = if s.empty_is_null { "beta" } else { "" };
    let first = vec![
        row("A1", Some("alpha"), "10.00", Some("EUR")),
        row("A2", Some(empty), "0.10", Some("EUR")),
        row("A3", Some("gamma"), "-3.50", None),
    ];
    let out = write(t, &first).await.unwrap();
    assert_eq!(
        (out.loaded, out.refused.len()),
        (3, 0),
        "{who}: first write"
    );
    assert_eq!(t.count(TABLE).await.unwrap(), 3, "{who}: count after write");
    let again = write(t, &first).await.unwrap();
    assert_eq!(
        again.loaded, 3,
        "{who}: a replay reports its rows loaded again"
    );
    assert_eq!(
        t.count(TABLE).await.unwrap(),
        3,
        "{who}: a replay adds nothing"
    );

    // A changed value on an existing key is an update.
    let changed = vec![row("A1", Some("alpha"), "12.25", Some("EUR"))];
    assert_eq!(write(t, &changed).await.unwrap().loaded, 1, "{who}");
    assert_eq!(
        t.count(TABLE).await.unwrap(),
        3,
        "{who}: an update is no new row"
    );
    let sums = t.sums(TABLE, "amount", Some("cur")).await.unwrap();
    assert_eq!(
        sums.get("EUR"),
        Some(&dec("12.35")),
        "{who}: the update is read back"
    );
    // A NULL currency is counted apart, under "(none)" as on the source side.
    assert_eq!(sums.get("(none)"), Some(&dec("-3.50")), "{who}: {sums:?}");

    // NULL and empty string are two things: "" passed NOT NULL above (A2); NULL is refused.
    // In an atomic batch the bad row makes the whole batch `Rows` and nothing is written;
    // a target that reports bad rows refuses only that row.
    let batch = vec![
        row("B1", Some("b1"), "1.00", Some("EUR")),
        row("B2", None, "1.00", Some("EUR")),
        row("B3", Some("b3"), "1.00", Some("EUR")),
    ];
    match write(t, &batch).await {
        Err(TargetError::Rows(msg)) => {
            assert!(
                caps.atomic_batches && !caps.reports_bad_rows,
                "{who}: Rows from {caps:?}"
            );
            assert!(!msg.is_empty(), "{who}: a refusal says why");
            assert_eq!(
                t.count(TABLE).await.unwrap(),
                3,
                "{who}: nothing of the batch"
            );
        }
        Ok(out) => {
            assert!(
                caps.reports_bad_rows,
                "{who}: a NULL in a NOT NULL column was accepted"
            );
            assert_eq!(out.loaded, 2, "{who}");
            assert_eq!(
                out.refused.iter().map(|r| r.0).collect::<Vec<_>>(),
                [1],
                "{who}"
            );
            assert_eq!(t.count(TABLE).await.unwrap(), 5, "{who}");
        }
        Err(e) => panic!("{who}: a bad row is Rows or refused, not {e:?}"),
    }

    // The engine isolates exactly the bad rows of a batch of 1,000 (bisecting an atomic
    // target, or taking a target's own refusals), and loads the rest.
    reset(t).await;
    let bad = [17, 500, 999];
    let rows: Vec<Vec<SqlValue>> = (0..1000)
        .map(|i| {
            let label = format!("row {i}");
            let label = (!bad.contains(&i)).then_some(label.as_str());
            row(&format!("K{i:04}"), label, "1.00", Some("EUR"))
        })
        .collect();
    let (loaded, refused) = bisect_rows(t, &spec(), &rows).await.unwrap();
    assert_eq!(loaded, 997, "{who}: loaded around the bad rows");
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        bad,
        "{who}: exactly the bad rows"
    );
    assert!(
        refused.iter().all(|r| !r.1.is_empty()),
        "{who}: each with a reason"
    );
    assert_eq!(t.count(TABLE).await.unwrap(), 997, "{who}");

    // Exact decimal sums per currency: 1,000 × 0.10 is 100.00, not 99.99999…; a large
    // amount and negative amounts keep every cent.
    reset(t).await;
    let mut money: Vec<Vec<SqlValue>> = (0..1000)
        .map(|i| row(&format!("M{i:04}"), Some("x"), "0.10", Some("EUR")))
        .collect();
    money.push(row("BIG", Some("x"), "20916456.73", Some("USD")));
    money.push(row("NEG1", Some("x"), "-0.01", Some("USD")));
    money.push(row("NEG2", Some("x"), "-1234.56", Some("CHF")));
    money.push(row("NOCUR", Some("x"), "7.00", None));
    let (loaded, refused) = bisect_rows(t, &spec(), &money).await.unwrap();
    assert_eq!((loaded, refused.len()), (1004, 0), "{who}");
    let by = t.sums(TABLE, "amount", Some("cur")).await.unwrap();
    let want: BTreeMap<String, Decimal> = [
        ("(none)", "7.00"),
        ("CHF", "-1234.56"),
        ("EUR", "100.00"),
        ("USD", "20916456.72"),
    ]
    .into_iter()
    .map(|(c, v)| (c.to_string(), dec(v)))
    .collect();
    assert_eq!(by, want, "{who}: sums per currency");
    let all = t.sums(TABLE, "amount", None).await.unwrap();
    assert_eq!(
        all,
        BTreeMap::from([(String::new(), dec("20915329.16"))]),
        "{who}: sum without by"
    );

    // Direct writes (`may_conflict = false`) into the emptied table: the rows land as an
    // upsert would put them, a bad row is isolated as before.
    reset(t).await;
    let mut direct: Vec<Vec<SqlValue>> = (0..1000)
        .map(|i| row(&format!("D{i:04}"), Some("d"), "0.10", Some("EUR")))
        .collect();
    direct[3] = row("D0003", None, "0.10", Some("EUR"));
    let (loaded, refused) = bisect_rows_as(t, &spec(), &direct, false).await.unwrap();
    assert_eq!(loaded, 999, "{who}: direct write");
    assert_eq!(
        refused.iter().map(|r| r.0).collect::<Vec<_>>(),
        [3],
        "{who}"
    );
    assert_eq!(
        t.sums(TABLE, "amount", None).await.unwrap()[""],
        dec("99.90"),
        "{who}: direct rows read back"
    );
    // `may_conflict = true` over the same keys is the upsert, as ever: nothing doubles.
    direct[3] = row("D0003", Some("d"), "0.10", Some("EUR"));
    let (loaded, refused) = bisect_rows_as(t, &spec(), &direct, true).await.unwrap();
    assert_eq!(
        (loaded, refused.len()),
        (1000, 0),
        "{who}: upsert after direct"
    );
    assert_eq!(t.count(TABLE).await.unwrap(), 1000, "{who}");
    // Written directly, a key the table holds already and a key twice in one batch are
    // refused by the target's own key, each with its reason; the rest loads. A target
    // without direct writes upserts them.
    let dups = vec![
        row("N1", Some("n"), "1.00", Some("EUR")),
        row("D0005", Some("changed"), "5.00", Some("EUR")),
        row("N2", Some("n"), "1.00", Some("EUR")),
        row("N1", Some("again"), "1.00", Some("EUR")),
    ];
    if caps.direct_writes {
        let (loaded, refused) = bisect_rows_as(t, &spec(), &dups, false).await.unwrap();
        assert_eq!(loaded, 2, "{who}: direct duplicates");
        assert_eq!(
            refused.iter().map(|r| r.0).collect::<Vec<_>>(),
            [1, 3],
            "{who}: the key already there and the second N1"
        );
        assert!(
            refused.iter().all(|r| !r.1.is_empty()),
            "{who}: {refused:?}"
        );
        assert_eq!(t.count(TABLE).await.unwrap(), 1002, "{who}");
        assert_eq!(
            t.sums(TABLE, "amount", None).await.unwrap()[""],
            dec("102.00"),
            "{who}: D0005 kept its value"
        );
    } else {
        let (loaded, _) = bisect_rows_as(t, &spec(), &dups[..3], false).await.unwrap();
        assert_eq!(loaded, 3, "{who}: without direct writes, an upsert");
        assert_eq!(t.count(TABLE).await.unwrap(), 1002, "{who}");
    }

    // A batch larger than the target takes is split by the engine.
    if let Some(max) = caps.max_batch_rows {
        reset(t).await;
        let rows: Vec<Vec<SqlValue>> = (0..max * 2 + 1)
            .map(|i| row(&format!("S{i:04}"), Some("s"), "1.00", Some("EUR")))
            .collect();
        let (loaded, _) = bisect_rows(t, &spec(), &rows).await.unwrap();
        assert_eq!(loaded as usize, max * 2 + 1, "{who}: max_batch_rows");
    }

    // Faults are classified by the target.
    match t.count("conf_no_such_table").await {
        Err(TargetError::Fatal(_)) => {}
        other => panic!("{who}: a missing table is Fatal, not {other:?}"),
    }
    match write_to_missing(t).await {
        Err(TargetError::Fatal(_)) => {}
        other => panic!("{who}: writing to a missing table is Fatal, not {other:?}"),
    }
    assert!(
        matches!(s.fatal, TargetError::Fatal(_)),
        "{who}: {:?}",
        s.fatal
    );
    if let Some(e) = &s.transient {
        assert!(e.is_transient(), "{who}: {e:?}");
    }
    t.close().await;
}

async fn write_to_missing(t: &dyn Target) -> Result<WriteOutcome, TargetError> {
    let mut spec = spec();
    spec.table = "conf_no_such_table".into();
    let r = row("X", Some("x"), "1.00", None);
    t.write_batch(&spec, &[&r], true).await
}
