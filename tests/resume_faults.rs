//! Crash and resume: the shipped binary is killed (SIGKILL, via `CUTOVER_FAULT`) at ten
//! points of the reference cutover, then `cutover run` is started again on the same
//! runbook. Each resumed run must leave production with the same per-table checksums, and
//! the same reject files, as a run that was never interrupted.

mod common;
use common::*;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;

use cutover::db::Db;
use cutover::journal::Journal;
use cutover::journal::events::{Event, Record};
use cutover::runbook::ResolvedEnv;

/// A legacy SQLite system, empty staging and production, and the reference runbook with
/// small batches so the loads have many checkpoints.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = small_reference_site(200, 400, 120, 80, 1_000);
        Site { dir }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn run(&self, fault: Option<&str>) -> Output {
        self.run_with(fault, &[])
    }

    fn records(&self) -> Vec<Record> {
        block_on(async {
            let j = Journal::open_path(&self.path(".cutover/tms/journal.db"))
                .await
                .unwrap();
            let id = j.last_run_id().await.unwrap().unwrap();
            j.run_records(&id).await.unwrap()
        })
    }

    /// Rows and a content checksum per production table.
    fn production(&self) -> BTreeMap<String, String> {
        block_on(async {
            let env = ResolvedEnv {
                name: "production".into(),
                url: format!("sqlite://{}", self.path("production.db").display()),
                password: None,
                production: true,
                reset: false,
                app_users: vec![],
            };
            let db = Db::connect(&env).await.unwrap();
            let s = db.snapshot().await.unwrap();
            db.close().await;
            s
        })
    }

    /// The load's reject files by name, with their content.
    fn load_rejects(&self) -> BTreeMap<String, String> {
        let run_dir = self.records().iter().find_map(|r| match &r.event {
            Event::RunStarted { artifacts_dir, .. } => Some(PathBuf::from(artifacts_dir)),
            _ => None,
        });
        let dir = run_dir.unwrap().join("rejects/load");
        std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| {
                let f = f.unwrap();
                (
                    f.file_name().to_string_lossy().into_owned(),
                    std::fs::read_to_string(f.path()).unwrap(),
                )
            })
            .collect()
    }
}

struct Reference {
    production: BTreeMap<String, String>,
    rejects: BTreeMap<String, String>,
    load_rows: u64,
}

/// Production, rejects and journaled load batches of one uninterrupted run, computed once.
fn reference() -> &'static Reference {
    static REF: OnceLock<Reference> = OnceLock::new();
    REF.get_or_init(|| {
        let site = Site::new();
        let out = site.run(None);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        Reference {
            production: site.production(),
            rejects: site.load_rejects(),
            load_rows: load_rows(&site.records()),
        }
    })
}

/// Rows of every load batch the journal holds as committed.
fn load_rows(records: &[Record]) -> u64 {
    records
        .iter()
        .map(|r| match &r.event {
            Event::BatchCommitted {
                phase: cutover::journal::events::Phase::Load,
                rows,
                ..
            } => *rows,
            _ => 0,
        })
        .sum()
}

fn count(records: &[Record], kind: &str) -> usize {
    records.iter().filter(|r| r.event.kind() == kind).count()
}

fn kill_and_resume(fault: &str) {
    let site = Site::new();
    let killed = site.run(Some(fault));
    assert_eq!(
        killed.status.code(),
        None,
        "the run should have been killed at {fault}; stderr:\n{}",
        stderr(&killed)
    );
    let resumed = site.run(None);
    assert_eq!(
        code(&resumed),
        0,
        "resume after {fault}:\n{}",
        stderr(&resumed)
    );
    assert!(
        stderr(&resumed).contains("resuming run"),
        "{}",
        stderr(&resumed)
    );
    let recs = site.records();
    // One run, resumed once; the backup was never taken twice.
    assert_eq!(count(&recs, "run_started"), 1);
    assert_eq!(count(&recs, "run_resumed"), 1);
    assert_eq!(
        count(&recs, "backup_taken"),
        1,
        "a second backup after {fault}"
    );
    assert_eq!(count(&recs, "freeze_applied"), 1);
    let reference = reference();
    assert_eq!(
        site.production(),
        reference.production,
        "production after a kill at {fault} differs from an uninterrupted run"
    );
    assert_eq!(
        site.load_rejects(),
        reference.rejects,
        "reject files after {fault}"
    );
    // The resumed load continued from its checkpoint: no committed batch was written twice.
    assert_eq!(load_rows(&recs), reference.load_rows, "after {fault}");
}

#[test]
fn killed_after_the_backup_is_taken() {
    kill_and_resume("after:backup_taken:kill");
}

#[test]
fn killed_after_the_freeze() {
    kill_and_resume("after:freeze_applied:kill");
}

#[test]
fn killed_after_the_extract() {
    kill_and_resume("after:extract_recorded:kill");
}

#[test]
fn killed_in_the_dry_run() {
    kill_and_resume("after:batch_committed.dry_run#4:kill");
}

#[test]
fn killed_during_validate() {
    kill_and_resume("after:check_recorded.validate#3:kill");
}

#[test]
fn killed_between_two_sign_offs() {
    kill_and_resume("after:sign_off_recorded#1:kill");
}

#[test]
fn killed_after_a_load_batch_is_journaled() {
    kill_and_resume("after:batch_committed.load#3:kill");
}

#[test]
fn killed_after_a_load_batch_commits_but_before_the_journal_knows() {
    // The batch is in production but not journaled: the resumed load writes it again,
    // and the upsert on the key keeps it from being duplicated.
    kill_and_resume("before:batch_committed.load#6:kill");
}

#[test]
fn killed_between_two_entities_of_the_load() {
    kill_and_resume("after:entity_finished.load#2:kill");
}

#[test]
fn killed_during_verify() {
    kill_and_resume("after:check_recorded.verify#4:kill");
}

#[test]
fn killed_before_unfreeze_finishes() {
    kill_and_resume("after:step_started.unfreeze:kill");
}

#[test]
fn a_changed_extract_refuses_the_resume() {
    let site = Site::new();
    let killed = site.run(Some("after:batch_committed.load#2:kill"));
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    let extract = site.records().iter().find_map(|r| match &r.event {
        Event::ExtractRecorded { files, .. } => Some(PathBuf::from(&files[0].path)),
        _ => None,
    });
    let extract = extract.unwrap();
    let mut text = std::fs::read_to_string(&extract).unwrap();
    text.push('\n');
    std::fs::write(&extract, text).unwrap();
    let out = site.run(None);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot be resumed"), "{err}");
    assert!(err.contains(&extract.display().to_string()), "{err}");
    assert!(err.contains("changed since the run began"), "{err}");
    // Nothing more was written for that run.
    assert!(
        !site
            .records()
            .iter()
            .any(|r| r.event.kind() == "run_resumed")
    );
}

#[test]
fn a_changed_runbook_refuses_the_resume_and_fresh_is_refused_while_production_is_loaded() {
    let site = Site::new();
    let killed = site.run(Some("after:batch_committed.load#2:kill"));
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    let rb = site.path("tms.toml");
    let text = std::fs::read_to_string(&rb).unwrap();
    std::fs::write(&rb, text.replace("batch_size = 200", "batch_size = 300")).unwrap();
    let out = site.run(None);
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("the runbook")
            && stderr(&out).contains("changed since the run began"),
        "{}",
        stderr(&out)
    );
    // A new run over a half-loaded production would back that state up: refused.
    let fresh = Command::new(BIN)
        .args(["run", rb.to_str().unwrap(), "--headless", "--fresh"])
        .output()
        .unwrap();
    assert_eq!(code(&fresh), 2, "{}", stderr(&fresh));
    assert!(
        stderr(&fresh).contains("cutover rollback"),
        "{}",
        stderr(&fresh)
    );
}

/// The pre-cutover snapshot the run journaled with its backup.
fn backup_snapshot(records: &[Record]) -> BTreeMap<String, String> {
    records
        .iter()
        .find_map(|r| match &r.event {
            Event::BackupTaken { snapshot, .. } => Some(snapshot.clone()),
            _ => None,
        })
        .expect("a backup in the journal")
}

#[test]
fn a_rollback_cut_short_is_finished_by_the_next_run() {
    let site = Site::new();
    // A step after the load fails, so the rollback plan starts; the kill lands inside it.
    let rb = site.path("tms.toml");
    let text = std::fs::read_to_string(&rb).unwrap().replace(
        "[[steps]]\nid = \"verify\"",
        "[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"exit 3\"\n\n[[steps]]\nid = \"verify\"",
    );
    assert!(
        text.contains("smoke_test"),
        "the runbook's verify step moved"
    );
    std::fs::write(&rb, text).unwrap();
    let killed = site.run(Some("after:rollback_started:kill"));
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    let out = site.run(None);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let recs = site.records();
    assert_eq!(count(&recs, "rollback_finished"), 1);
    assert!(
        recs.iter()
            .any(|r| matches!(&r.event, Event::RollbackFinished { ok: true, .. }))
    );
    assert_eq!(site.production(), backup_snapshot(&recs));
}

#[test]
fn cutover_rollback_restores_a_half_loaded_production_by_hand() {
    let site = Site::new();
    let killed = site.run(Some("after:batch_committed.load#3:kill"));
    assert_eq!(killed.status.code(), None, "{}", stderr(&killed));
    assert_ne!(site.production(), backup_snapshot(&site.records()));
    let rollback = |confirm: &str| {
        Command::new(BIN)
            .arg("rollback")
            .arg(site.path("tms.toml"))
            .args(["--confirm", confirm, "--reason", "window too short"])
            .args([
                "--var",
                &format!(
                    "production_url=sqlite://{}",
                    site.path("production.db").display()
                ),
            ])
            .args([
                "--var",
                &format!("legacy_url=sqlite://{}", site.path("legacy.db").display()),
            ])
            .output()
            .unwrap()
    };
    // The typed confirmation is the production database's name.
    let wrong = rollback("staging.db");
    assert_eq!(code(&wrong), 2, "{}", stderr(&wrong));
    assert!(stderr(&wrong).contains("is not the production database's name"));
    let out = rollback("production.db");
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let recs = site.records();
    assert!(recs.iter().any(|r| matches!(
        &r.event,
        Event::RollbackStarted { reason } if reason.contains("window too short")
    )));
    assert_eq!(site.production(), backup_snapshot(&recs));
    // That run is over: the next `run` starts a new one instead of resuming it.
    let next = site.run(None);
    assert_eq!(code(&next), 0, "{}", stderr(&next));
    assert!(!stderr(&next).contains("resuming run"));
}

// ---------------------------------------------------------------- the cutover window

impl Site {
    /// Production as it is before the cutover: the schema and one partner of its own.
    fn production_with_a_row_of_its_own(&self) -> BTreeMap<String, String> {
        let text = std::fs::read_to_string(tms()).unwrap();
        let ddl = text.split("sqlite = \"\"\"").nth(1).unwrap();
        let ddl = ddl.split("\"\"\"").next().unwrap();
        let prod = self.path("production.db");
        sqlite(&prod, ddl);
        sqlite(
            &prod,
            "INSERT INTO res_partner (ref, name) VALUES ('EXISTING', 'Already in the new system')",
        );
        self.production()
    }

    /// The runbook with a window of `secs` seconds from the start of the run.
    fn window_of(&self, secs: u32) {
        let rb = self.path("tms.toml");
        let text = std::fs::read_to_string(&rb).unwrap();
        let text = text.replace("duration = \"48h\"", &format!("duration = \"{secs}s\""));
        assert!(text.contains(&format!("duration = \"{secs}s\"")));
        std::fs::write(&rb, text).unwrap();
    }

    fn run_with(&self, fault: Option<&str>, extra: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        let url = |f: &str| format!("sqlite://{}", self.path(f).display());
        cmd.arg("run")
            .arg(self.path("tms.toml"))
            .arg("--headless")
            .args(["--var", &format!("legacy_url={}", url("legacy.db"))])
            .args(["--var", &format!("staging_url={}", url("staging.db"))])
            .args(["--var", &format!("production_url={}", url("production.db"))])
            .args([
                "--var",
                &format!("backup_dir={}", self.path("backups").display()),
            ])
            .args(GO)
            .args(extra)
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT");
        if let Some(f) = fault {
            cmd.env("CUTOVER_FAULT", f);
        }
        cmd.output().unwrap()
    }
}

/// The load is held up (a pause after its second batch) until the 6-second window is over.
const HOLD_UP_THE_LOAD: &str = "after:batch_committed.load#2:pause=7s";

fn position(records: &[Record], kind: &str) -> usize {
    records
        .iter()
        .position(|r| r.event.kind() == kind)
        .unwrap_or_else(|| panic!("no {kind} in the journal"))
}

#[test]
fn the_window_runs_out_during_the_load_and_the_confirmed_rollback_restores_production() {
    let site = Site::new();
    let before = site.production_with_a_row_of_its_own();
    site.window_of(6);
    let out = site.run_with(
        Some(HOLD_UP_THE_LOAD),
        &["--on-window-exceeded", "rollback"],
    );
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let recs = site.records();
    // The planned step times never fitted in six seconds: warned first, then exceeded
    // during the load, then the rollback.
    assert!(position(&recs, "forecast_basis") < position(&recs, "window_warning"));
    assert!(position(&recs, "window_warning") < position(&recs, "window_exceeded"));
    assert!(position(&recs, "entity_started") < position(&recs, "window_exceeded"));
    assert!(position(&recs, "window_exceeded") < position(&recs, "rollback_started"));
    assert!(recs.iter().any(|r| matches!(
        &r.event,
        Event::RollbackFinished { ok: true, message } if message.contains("verified equal")
    )));
    assert_eq!(site.production(), before);
    assert_eq!(backup_snapshot(&recs), before);
}

#[test]
fn headless_the_window_stops_the_run_and_the_operator_rolls_back_by_hand() {
    let site = Site::new();
    let before = site.production_with_a_row_of_its_own();
    site.window_of(6);
    let out = site.run_with(Some(HOLD_UP_THE_LOAD), &[]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("cutover rollback"),
        "{}",
        stderr(&out)
    );
    // Stopped mid-load, nothing rolled back without the operator.
    assert_ne!(site.production(), before);
    let out = Command::new(BIN)
        .arg("rollback")
        .arg(site.path("tms.toml"))
        .args(["--confirm", "production.db", "--reason", "window exceeded"])
        .args([
            "--var",
            &format!(
                "production_url=sqlite://{}",
                site.path("production.db").display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    assert_eq!(site.production(), before);
}

#[test]
fn headless_the_operator_may_go_on_past_the_window() {
    let site = Site::new();
    site.window_of(6);
    let out = site.run_with(Some(HOLD_UP_THE_LOAD), &[]);
    assert_eq!(code(&out), 7, "{}", stderr(&out));
    let out = site.run_with(None, &["--on-window-exceeded", "continue"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(site.production(), reference().production);
}

/// What the console's rollback dialog sends (`Command::Rollback`) while the run waits at
/// the gate: the executor carries out the rollback plan and the run ends rolled back.
#[test]
fn the_consoles_rollback_command_at_the_gate_runs_the_rollback_plan() {
    use cutover::control::Command as Ctl;
    use cutover::journal::events::{Outcome, StepStatus};
    use cutover::steps::{Channels, Executor, OnWindowExceeded, RunOptions};
    let site = Site::new();
    let before = site.production_with_a_row_of_its_own();
    let url = |f: &str| format!("sqlite://{}", site.path(f).display());
    let vars: Vec<(String, String)> = [
        ("legacy_url", url("legacy.db")),
        ("staging_url", url("staging.db")),
        ("production_url", url("production.db")),
        ("backup_dir", site.path("backups").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let plan = cutover::runbook::load(&site.path("tms.toml"), &vars).unwrap();
    let fin = block_on(async {
        let journal = Journal::open_path(&site.path("journal.db")).await.unwrap();
        let (rec_tx, mut rec_rx) = tokio::sync::mpsc::unbounded_channel();
        let (prog_tx, _prog_rx) = tokio::sync::watch::channel(Vec::new());
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(4);
        let exec = Executor::new(
            plan,
            journal,
            &site.path(".cutover"),
            Channels {
                records: Some(rec_tx),
                progress: prog_tx,
                commands: cmd_rx,
            },
            RunOptions {
                mode: cutover::journal::events::RunMode::Run,
                until: None,
                sign_offs: vec![],
                interactive: true,
                artifacts: None,
                on_window_exceeded: OnWindowExceeded::Ask,
                skips: vec![],
                hold_freeze: None,
            },
        );
        let run = tokio::spawn(exec.run());
        // The console: once the gate opens, the operator confirms a rollback.
        while let Some(r) = rec_rx.recv().await {
            if r.event.kind() == "gate_opened" {
                cmd_tx
                    .send(Ctl::Rollback {
                        reason: "figures do not match the ledger".into(),
                    })
                    .await
                    .unwrap();
                break;
            }
        }
        tokio::spawn(async move { while rec_rx.recv().await.is_some() {} });
        run.await.unwrap().unwrap()
    });
    assert_eq!(fin.outcome, Outcome::RolledBack);
    assert_eq!(fin.exit_code, 6);
    let recs = block_on(async {
        let j = Journal::open_path(&site.path("journal.db")).await.unwrap();
        j.run_records(&fin.run_id).await.unwrap()
    });
    assert!(recs.iter().any(|r| matches!(
        &r.event,
        Event::StepFinished { step, status: StepStatus::RolledBack, .. } if step == "sign_off"
    )));
    assert!(recs.iter().any(|r| matches!(
        &r.event,
        Event::RollbackStarted { reason } if reason.contains("figures do not match the ledger")
    )));
    assert_eq!(site.production(), before);
}
