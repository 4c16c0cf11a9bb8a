//! What a person sees around the console: the demo's folder works with bare commands, a
//! run ends by saying how it ended and how to go on, `cutover.log` stays empty when nothing
//! went wrong, `summary` refuses an unknown run and survives a closed pipe, and two
//! runbooks in one folder keep their own journals.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Stdio};

fn stdout(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn cutover(cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(cwd)
        .args(args)
        .env_remove("CUTOVER_JOURNAL")
        .env_remove("CUTOVER_ARTIFACTS")
        .output()
        .unwrap()
}

#[test]
fn the_demo_folder_works_bare_and_a_clean_run_leaves_an_empty_log() {
    let dir = tempfile::tempdir().unwrap();
    let top = dir.path();
    let out = cutover(
        top,
        &["demo", "--headless", "--rows", "4000", "--dir", "demo"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    // Leaving says the outcome, the run id and where to look.
    let last: Vec<&str> = err.lines().rev().take(2).collect();
    let run_id = last[1]
        .strip_prefix("run ")
        .and_then(|l| l.split(':').next())
        .unwrap_or_else(|| panic!("no outcome line: {err}"));
    assert!(last[1].contains("✓ COMPLETED (exit 0)"), "{err}");
    assert!(
        last[0].contains(&format!("cutover summary demo/tms.toml --run {run_id}")),
        "{err}"
    );

    // The journal is the runbook's own; nothing worth a warning happened, so no log line.
    let journal = top.join("demo/.cutover/tms/journal.db");
    assert!(journal.exists(), "{err}");
    let log = top.join("demo/.cutover/tms/cutover.log");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "",
        "cutover.log after a clean run"
    );

    // Bare commands on the demo's runbook, from elsewhere: its values are in it.
    let out = cutover(top, &["summary", "demo/tms.toml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(json(&out)["run"]["run_id"], run_id, "{}", stdout(&out));
    let out = cutover(top, &["journal", "verify", "demo/tms.toml"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let out = cutover(top, &["rehearse", "demo/tms.toml", "--headless", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // It read the demo's legacy database (not the sample extract the reference runbook
    // names): as many customers as the demo generated.
    let generated = err
        .lines()
        .find(|l| l.contains("generated legacy system"))
        .and_then(|l| l.split("customers ").nth(1))
        .and_then(|r| r.split(',').next())
        .unwrap_or_else(|| panic!("no generated count: {err}"))
        .to_string();
    let files = json(&out)["extract"]["files"].clone();
    let customers = files
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["entity"] == "customers")
        .map(|f| f["rows"].to_string());
    assert_eq!(customers.as_deref(), Some(generated.as_str()), "{files}");
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "",
        "cutover.log after a clean rehearsal"
    );

    // An unknown run is an error, not an empty summary.
    let out = cutover(top, &["summary", "demo/tms.toml", "--run", "UNKNOWN"]);
    assert_eq!(code(&out), 2, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("holds no run UNKNOWN"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));

    // `summary … | head -1`: the reader is gone before the first write; no panic.
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .current_dir(top)
        .args(["summary", "demo/tms.toml"])
        .stdout(Stdio::from(writer))
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(!stderr(&out).contains("panicked"), "{}", stderr(&out));
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // A second runbook in the same folder has a journal of its own.
    std::fs::copy(top.join("demo/tms.toml"), top.join("demo/other.toml")).unwrap();
    let out = cutover(top, &["summary", "demo/other.toml"]);
    assert_ne!(code(&out), 0, "{}", stdout(&out));
    assert!(
        stderr(&out).contains("holds no run yet"),
        "{}",
        stderr(&out)
    );
    assert!(top.join("demo/.cutover/other/journal.db").exists());
}
