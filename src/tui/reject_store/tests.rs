//! The store against real files: index, query, window by offset, export.

use std::io::Write;

use super::*;

/// A reject file of `n` rows: every 7th row has two reasons, every 1000th a quoted comma
/// and a line break inside a value (so offsets must come from the CSV parser, not lines).
fn write_rejects(path: &Path, n: usize) {
    let mut w = std::io::BufWriter::new(File::create(path).unwrap());
    writeln!(w, "code,name,amount,_line,_rule,_field,_message").unwrap();
    for i in 0..n {
        let name = if i % 1000 == 0 {
            format!("\"Name, {i}\nsecond line\"")
        } else {
            format!("Name {i}")
        };
        let (rule, field, msg) = if i % 7 == 0 {
            (
                "required | decimal",
                "code | amount",
                "code is empty | not a decimal",
            )
        } else {
            ("decimal", "amount", "not a decimal")
        };
        writeln!(w, "C{i},{name},{i}.5,{},{rule},{field},{msg}", i + 2).unwrap();
    }
}

fn query(files: &[Arc<RejectIndex>], q: RejectQuery) -> Matches {
    run_query(files, 1, &q, &AtomicU64::new(1))
        .unwrap()
        .unwrap()
}

#[test]
fn a_million_rejects_index_and_a_window_near_the_end_reads_back_exactly() {
    const N: usize = 1_000_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.rejects.csv");
    write_rejects(&path, N);
    let idx = Arc::new(index_file("big", &path).unwrap());
    assert_eq!(idx.file.rows, N);
    assert_eq!(idx.file.rules, ["required", "decimal"]);
    assert_eq!(idx.file.fields, ["code", "amount"]);
    // Only offsets and two ids a row are kept: 16 bytes a row.
    assert_eq!(
        idx.offsets.len() + idx.rule_of.len() + idx.field_of.len(),
        3 * N
    );

    let mut store = RejectStore::default();
    store.add(idx.clone());
    store.set_matches(Arc::new(query(&store.files(), RejectQuery::default())));
    let req = WindowRequest {
        generation: 1,
        start: N - 50,
        len: 60,
    };
    let rows = store.fetch(&req).unwrap();
    assert_eq!(rows.len(), 50, "the window stops at the last row");
    for (k, r) in rows.iter().enumerate() {
        let i = N - 50 + k;
        assert_eq!(r.entity, "big");
        assert_eq!(r.cells[0], format!("C{i}"));
        assert_eq!(r.cells[3], (i + 2).to_string(), "the source line number");
    }
    // A row with a line break inside a quoted value reads back whole.
    let rows = store
        .fetch(&WindowRequest {
            generation: 1,
            start: 999_000,
            len: 2,
        })
        .unwrap();
    assert_eq!(rows[0].cells[1], "Name, 999000\nsecond line");
    assert_eq!(rows[1].cells[0], "C999001");

    // The rule filter comes from the index: every 7th row names `required`.
    let m = query(
        &store.files(),
        RejectQuery {
            rule: Some("required".into()),
            ..RejectQuery::default()
        },
    );
    assert_eq!(m.total(), N.div_ceil(7));
    store.set_matches(Arc::new(m));
    let last = store
        .fetch(&WindowRequest {
            generation: 1,
            start: N.div_ceil(7) - 1,
            len: 1,
        })
        .unwrap();
    assert_eq!(last[0].cells[0], format!("C{}", (N - 1) / 7 * 7));
}

#[test]
fn search_filters_combine_and_export_keeps_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("people.rejects.csv");
    write_rejects(&path, 3000);
    let files = vec![Arc::new(index_file("people", &path).unwrap())];
    let m = query(
        &files,
        RejectQuery {
            search: Some("NAME, ".into()),
            ..RejectQuery::default()
        },
    );
    assert_eq!(m.total(), 3, "rows 0, 1000, 2000, case-insensitive");
    let m = query(
        &files,
        RejectQuery {
            entity: Some("people".into()),
            field: Some("code".into()),
            search: Some("name, ".into()),
            ..RejectQuery::default()
        },
    );
    assert_eq!(m.total(), 1, "only row 0 is a multiple of 7 and 1000");
    let none = query(
        &files,
        RejectQuery {
            entity: Some("other".into()),
            ..RejectQuery::default()
        },
    );
    assert_eq!(none.total(), 0);
    // A newer query stops a long search early.
    let stale = run_query(
        &files,
        1,
        &RejectQuery {
            search: Some("x".into()),
            ..RejectQuery::default()
        },
        &AtomicU64::new(2),
    )
    .unwrap();
    assert!(stale.is_none());

    let (paths, rows) = export(&m, "T").unwrap();
    assert_eq!(rows, 1);
    assert_eq!(
        paths,
        [dir.path()
            .join("people.rejects.export-T.csv")
            .display()
            .to_string()]
    );
    let text = std::fs::read_to_string(&paths[0]).unwrap();
    assert_eq!(
        text,
        "code,name,amount,_line,_rule,_field,_message\n\
         C0,\"Name, 0\nsecond line\",0.5,2,required | decimal,code | amount,code is empty | not a decimal\n"
    );
}

#[test]
fn a_missing_file_is_an_error() {
    assert!(index_file("x", Path::new("/nonexistent/x.csv")).is_err());
}

/// What the loop does: index off-thread, count a query off-thread, export off-thread, each
/// answer coming back over the channel and through `receive` as the app's action.
#[tokio::test]
async fn jobs_answer_over_the_channel_as_actions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("vehicles.rejects.csv");
    write_rejects(&path, 50);
    let mut store = RejectStore::default();
    let (tx, mut rx) = mpsc::unbounded_channel();

    spawn_index("vehicles".into(), path.display().to_string(), tx.clone());
    let Action::Rejects(RejectAction::Indexed(file)) = store.receive(rx.recv().await.unwrap())
    else {
        panic!("not indexed")
    };
    assert_eq!((file.entity.as_str(), file.rows), ("vehicles", 50));

    let query = RejectQuery {
        rule: Some("required".into()),
        ..RejectQuery::default()
    };
    store.spawn(
        RejectEffect::Query {
            generation: 3,
            query: query.clone(),
        },
        tx.clone(),
    );
    assert_eq!(
        store.receive(rx.recv().await.unwrap()),
        Action::Rejects(RejectAction::Counted {
            generation: 3,
            matched: 8
        })
    );
    let rows = store
        .fetch(&WindowRequest {
            generation: 3,
            start: 7,
            len: 5,
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].cells[0], "C49");

    store.spawn(
        RejectEffect::Export {
            generation: 3,
            query,
        },
        tx.clone(),
    );
    let Action::Rejects(RejectAction::Exported { paths, rows }) =
        store.receive(rx.recv().await.unwrap())
    else {
        panic!("not exported")
    };
    assert_eq!(rows, 8);
    // Row 0's name holds a line break: count records, not lines.
    let mut r = csv::Reader::from_path(&paths[0]).unwrap();
    assert_eq!(r.headers().unwrap().get(3), Some("_line"));
    assert_eq!(r.records().count(), 8);

    spawn_index("gone".into(), "/nonexistent/gone.csv".into(), tx);
    let a = store.receive(rx.recv().await.unwrap());
    assert!(
        matches!(a, Action::Rejects(RejectAction::IndexFailed { ref entity, .. }) if entity == "gone"),
        "{a:?}"
    );
}
