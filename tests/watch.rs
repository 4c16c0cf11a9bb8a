//! `cutover watch` against the real binary: beside a running cutover in tmux it sees the
//! progress advance and the gate waiting, and no key changes the run; `--headless` prints
//! one line per record, in order, until the run finishes.

mod common;
use common::*;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;

/// The sum of every "loaded N" on the screen.
fn loaded(screen: &str) -> u64 {
    screen
        .split("loaded ")
        .skip(1)
        .filter_map(|rest| {
            let digits: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == ',')
                .filter(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

/// The journal's head seq, as `summary` reports it.
fn head_seq(runbook: &Path) -> i64 {
    let out = Command::new(BIN)
        .arg("summary")
        .arg(runbook)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["journal_head"]["seq"].as_i64().unwrap()
}

/// Poll `ok` until it holds; fails after `secs` saying what it waited for.
fn wait(what: &str, secs: u64, ok: impl Fn() -> bool) {
    let t0 = Instant::now();
    while !ok() {
        assert!(
            t0.elapsed() < Duration::from_secs(secs),
            "waited {secs}s for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn wait_for_file(p: &Path, secs: u64) {
    wait(&p.display().to_string(), secs, || p.exists());
}

#[test]
fn watch_beside_a_running_cutover_sees_progress_and_the_gate_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    // The lead's console; the dry run pauses after the invoices' first committed batch (of
    // three), so the watcher has a moment mid-pipeline to look at. The pause names the
    // entity: entities load concurrently, and a pause on whichever batch commits first may
    // hold a small entity while every other one finishes.
    let lead = Tmux::start(
        &format!(
            "env -u CI CUTOVER_FAULT=after:batch_committed.open_invoices#1:pause=6s {BIN} demo --rows 4000 --dir {}",
            demo.display()
        ),
        120,
    );
    let runbook = demo.join("tms.toml");
    wait_for_file(&runbook, 60);
    wait_for_file(&demo.join(".cutover/tms/journal.db"), 60);
    // Wide enough that no entity's figures are cut at the pane's edge.
    let watcher = Tmux::start(&format!("env -u CI {BIN} watch {}", runbook.display()), 200);

    // Mid dry run: some rows loaded (the first batch), not all.
    let first = watcher.wait_until("rows loaded in the dry run", 60, |s| loaded(s) > 0);
    assert!(
        first.contains("WATCH (read-only)") && first.contains("held by pid "),
        "the header says it is a watch and who holds the run:\n{first}"
    );
    assert!(!first.contains("WAITING AT GATE"), "{first}");
    // Then the rest of the dry run and the validate, up to the gate.
    watcher.wait_until("the gate", 60, |s| s.contains("WAITING AT GATE"));
    // The gate's evidence opens over the panes, as on the lead's console; Esc hides it.
    watcher.keys(&["Escape"]);
    std::thread::sleep(Duration::from_millis(300));
    let gate = watcher.screen();
    assert!(
        loaded(&gate) > loaded(&first),
        "progress advanced: {} then {}\n{first}\n{gate}",
        loaded(&first),
        loaded(&gate)
    );
    assert!(
        lead.screen().contains("WAITING AT GATE"),
        "the lead's console waits at the same gate"
    );

    // Every key a lead would use to sign, skip, roll back or abort: the journal does not move.
    let before = head_seq(&runbook);
    watcher.keys(&[
        "g",
        "Tab",
        "Tester",
        "Tab",
        "finance",
        "Tab",
        "g",
        "Enter",
        "Escape",
        "s",
        "Enter",
        "R",
        "production.db",
        "Enter",
        "y",
        "1",
        "2",
        "3",
        "f",
        "/",
        "x",
        "Enter",
        "Escape",
    ]);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        head_seq(&runbook),
        before,
        "a watch key changed the journal"
    );
    let s = watcher.screen();
    assert!(s.contains("WAITING AT GATE"), "{s}");
    // Ctrl-C leaves the watch at once, without asking and without aborting the run.
    watcher.keys(&["C-c"]);
    let t0 = Instant::now();
    while watcher.alive() && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!watcher.alive(), "the watch ended on Ctrl-C");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        head_seq(&runbook),
        before,
        "leaving the watch changed the journal"
    );
    assert!(
        lead.screen().contains("WAITING AT GATE"),
        "{}",
        lead.screen()
    );
}

#[test]
fn headless_watch_prints_every_record_once_in_order_until_the_run_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    // The demo signs its own gate when headless, so it runs to the end.
    let out = Command::new(BIN)
        .args(["demo", "--headless", "--rows", "4000", "--dir"])
        .arg(&demo)
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runbook = demo.join("tms.toml");
    let out = Command::new(BIN)
        .arg("watch")
        .arg(&runbook)
        .arg("--headless")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<Vec<&str>> = text.lines().map(|l| l.split('\t').collect()).collect();
    assert!(lines.iter().all(|l| l.len() == 4), "{text}");
    let seqs: Vec<i64> = lines.iter().map(|l| l[0].parse().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");
    let kinds: Vec<&str> = lines.iter().map(|l| l[2]).collect();
    assert_eq!(kinds.first(), Some(&"run_started"));
    assert_eq!(kinds.last(), Some(&"run_finished"));
    for k in [
        "batch_committed",
        "gate_opened",
        "sign_off_recorded",
        "gate_decided",
    ] {
        assert!(kinds.contains(&k), "{k} missing: {kinds:?}");
    }
    // Every record of the run: the last one is the journal's head.
    assert_eq!(*seqs.last().unwrap(), head_seq(&runbook));
    // A run the journal does not hold is refused, not waited for.
    let out = Command::new(BIN)
        .arg("watch")
        .arg(&runbook)
        .args(["--headless", "--run", "no-such-run"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds no run no-such-run"));
}

#[test]
fn headless_watch_follows_a_run_live_through_a_postgres_journal() {
    let db = cutover::testdb::TempDb::postgres("watch_pg");
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    // The watcher starts first, from "elsewhere": it knows only the journal's URL, and
    // waits for a run to appear.
    let mut watcher = Command::new(BIN)
        .arg("watch")
        .arg(demo.join("tms.toml"))
        .args(["--headless", "--journal", &db.url()])
        .env_remove("CI")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let run = Command::new(BIN)
        .args(["demo", "--headless", "--rows", "4000", "--dir"])
        .arg(&demo)
        .args(["--journal", &db.url()])
        .env_remove("CI")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let t0 = Instant::now();
    // It ends by itself once it has printed the run's `run_finished`.
    while watcher.try_wait().unwrap().is_none() {
        if t0.elapsed() > Duration::from_secs(30) {
            let _ = watcher.kill();
            panic!("the watch did not end after the run finished");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = watcher.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    let seqs: Vec<i64> = text
        .lines()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    // The only run in this journal: every record, 1, 2, 3, … without a gap or a repeat.
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>(), "{text}");
    assert!(
        text.lines().last().unwrap().contains("\trun_finished\t"),
        "{text}"
    );
    assert!(seqs.len() > 20, "{text}");
}

/// How many records of `kind` the demo's journal holds.
fn count(journal: &Path, kind: &str) -> u64 {
    sqlite(
        journal,
        &format!("SELECT COUNT(*) FROM events WHERE kind = '{kind}'"),
    )
    .parse()
    .unwrap()
}

/// The payload of the (one) record of `kind`.
fn payload(journal: &Path, kind: &str) -> String {
    sqlite(
        journal,
        &format!("SELECT payload FROM events WHERE kind = '{kind}'"),
    )
}

fn wait_for_count(journal: &Path, kind: &str, n: u64, secs: u64) {
    wait(&format!("{n} {kind} record(s)"), secs, || {
        count(journal, kind) >= n
    });
}

/// The keys of a GO in the gate's dialog at the demo's production gate.
fn go_into_production<'a>(name: &'a str, role: &'a str, comment: &'a str) -> [&'a str; 10] {
    [
        name,
        "Tab",
        role,
        "Tab",
        comment,
        "Tab",
        "g",
        "Tab",
        "production.db",
        "Enter",
    ]
}

#[test]
fn a_sign_off_from_the_watch_reaches_the_waiting_gate_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let lead = Tmux::start(
        &format!("env -u CI {BIN} demo --rows 4000 --dir {}", demo.display()),
        120,
    );
    let runbook = demo.join("tms.toml");
    let journal = demo.join(".cutover/tms/journal.db");
    wait_for_file(&runbook, 60);
    wait_for_file(&journal, 60);
    let watcher = Tmux::start(&format!("env -u CI {BIN} watch {}", runbook.display()), 120);
    // The gate's dialog opens on the watch as on the lead's console.
    watcher.wait_for("Sign-off · go_live", 90);

    // The finance controller signs at the watch: a GO into production, the database typed.
    watcher.keys(&go_into_production(
        "Finance controller",
        "finance",
        "open items reconciled",
    ));
    wait_for_count(&journal, "sign_off_recorded", 1, 20);
    let rec: serde_json::Value =
        serde_json::from_str(&payload(&journal, "sign_off_recorded")).unwrap();
    assert_eq!(rec["name"], "Finance controller", "{rec}");
    assert_eq!(rec["role"], "finance", "{rec}");
    assert_eq!(rec["decision"], "go", "{rec}");
    assert_eq!(rec["comment"], "open items reconciled", "{rec}");
    // The watch says so, from cutover sign's own line; the gate still waits for the lead.
    watcher.wait_for("recorded at gate go_live", 10);
    assert_eq!(count(&journal, "gate_decided"), 0);
    // The lead's dialog counts it (the run read it from the journal).
    lead.wait_for("finance 1 of 1", 20);

    // The lead signs the other role; the quorum is met and the run goes on to the end.
    lead.keys(&go_into_production(
        "Migration lead",
        "migration_lead",
        "figures match",
    ));
    wait_for_count(&journal, "gate_decided", 1, 30);
    let decided = payload(&journal, "gate_decided");
    assert!(decided.contains("\"go\""), "{decided}");
    wait_for_count(&journal, "run_finished", 1, 180);
    let finished = payload(&journal, "run_finished");
    assert!(finished.contains("completed"), "{finished}");
    // Both sign-offs, one from each console, and none refused.
    assert_eq!(count(&journal, "sign_off_recorded"), 2);
    assert_eq!(count(&journal, "sign_off_refused"), 0);
}
