//! The failure-path table of the README as a test matrix, one row per case, on SQLite
//! (legacy, staging and production files): a failure and a SIGKILL injected inside each
//! step and inside the rollback (`CUTOVER_FAULT`), a NO-GO with and without holding the
//! freeze, and a legacy changed after the freeze. Each row asserts the end state the
//! README documents: exit code, production (as before the cutover, or loaded), the legacy
//! (frozen or reopened), the journal's last events; a killed run is then run again and
//! must end as an uninterrupted run does. The server cases (privileges, restarts) are in
//! `failsafe_servers.rs` and `server_restarts.rs`.

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

/// A SQLite legacy, staging, and a production with the target schema.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new() -> Site {
        let dir = small_reference_site(100, 300, 60, 40, 500);
        let site = Site { dir };
        let text = std::fs::read_to_string(tms()).unwrap();
        let ddl = text.split("sqlite = \"\"\"").nth(1).unwrap();
        let ddl = ddl.split("\"\"\"").next().unwrap();
        let prod = site.path("production.db");
        // Its tables exist (empty: the `counts` check assumes so) and its snapshot is
        // what "as before the cutover" means below.
        sqlite(&prod, ddl);
        site
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn url(&self, f: &str) -> String {
        format!("sqlite://{}", self.path(f).display())
    }

    fn vars(&self) -> Vec<String> {
        [
            format!("legacy_url={}", self.url("legacy.db")),
            format!("staging_url={}", self.url("staging.db")),
            format!("production_url={}", self.url("production.db")),
            format!("backup_dir={}", self.path("backups").display()),
        ]
        .into_iter()
        .flat_map(|v| ["--var".to_string(), v])
        .collect()
    }

    fn run(&self, fault: Option<&str>, args: &[&str]) -> Output {
        let mut cmd = Command::new(BIN);
        cmd.arg("run")
            .arg(self.path("tms.toml"))
            .arg("--headless")
            .args(self.vars())
            .args(args)
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT");
        if let Some(f) = fault {
            cmd.env("CUTOVER_FAULT", f);
        }
        cmd.output().unwrap()
    }

    fn rollback(&self) -> Output {
        Command::new(BIN)
            .arg("rollback")
            .arg(self.path("tms.toml"))
            .args([
                "--confirm",
                "production.db",
                "--reason",
                "data fixed elsewhere",
            ])
            // Only what names production: the legacy's URL comes from the run's journal.
            .args([
                "--var",
                &format!("production_url={}", self.url("production.db")),
            ])
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT")
            .output()
            .unwrap()
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

    fn snapshot(&self, file: &str) -> BTreeMap<String, String> {
        block_on(async {
            let env = ResolvedEnv {
                name: file.into(),
                url: self.url(file),
                password: None,
                production: false,
                reset: false,
                app_users: vec![],
            };
            let db = Db::connect(&env).await.unwrap();
            let s = db.snapshot().await.unwrap();
            db.close().await;
            s
        })
    }

    fn production(&self) -> BTreeMap<String, String> {
        self.snapshot("production.db")
    }

    /// The freeze's triggers are on the legacy tables.
    fn legacy_frozen(&self) -> bool {
        let n = sqlite(
            &self.path("legacy.db"),
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'cutover_freeze_%'",
        );
        n.trim() != "0"
    }
}

/// Production after one uninterrupted, signed cutover of the same site.
fn clean_production() -> &'static BTreeMap<String, String> {
    static REF: OnceLock<BTreeMap<String, String>> = OnceLock::new();
    REF.get_or_init(|| {
        let site = Site::new();
        let out = site.run(None, &GO);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        site.production()
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Prod {
    /// As before the cutover (never loaded, or restored from the backup and verified).
    Before,
    /// As after an uninterrupted cutover.
    Loaded,
}

#[derive(Clone, Copy)]
enum Setup {
    None,
    /// `--until sign_off`, then the legacy is changed behind the freeze (`sql`), then
    /// `cutover run` resumes into the load.
    ChangeAfterFreeze(&'static str),
    /// A `command` step that fails (`exit 3`) right before unfreeze: the rollback plan
    /// runs after a complete load.
    FailingCommandBeforeUnfreeze,
}

struct Case {
    fault: Option<&'static str>,
    args: &'static [&'static str],
    setup: Setup,
    /// `None`: the process was killed.
    exit: Option<i32>,
    prod: Prod,
    legacy_frozen: bool,
    /// The journal ends with these event kinds, in order.
    last: &'static [&'static str],
    /// Then: `run` (after a kill) or `rollback`, its exit code, and the end state.
    then: Option<(&'static str, i32, Prod, bool)>,
}

const SIGN_GO: &[&str] = &GO;
const NO_GO: &[&str] = &[
    "--sign-off",
    "Migration lead|migration_lead|no-go|credit limits of 12 customers are wrong",
];
const NO_GO_HOLD: &[&str] = &[
    "--sign-off",
    "Migration lead|migration_lead|no-go|credit limits of 12 customers are wrong",
    "--hold-freeze",
    "fix the credit limits in the legacy, then rehearse again",
];

/// A failed step before the load: the rollback plan reopens production (untouched) and
/// the legacy, and the run ends with the failure's exit code.
const FAILED_BEFORE_LOAD: &[&str] = &[
    "step_finished",
    "rollback_started",
    "env_reopened",
    "env_reopened",
    "rollback_finished",
    "run_finished",
];
/// From the load on: production restored from the backup and verified, reopened, the
/// legacy reopened; exit 6.
const ROLLED_BACK: &[&str] = &[
    "rollback_started",
    "env_reopened",
    "env_reopened",
    "rollback_finished",
    "run_finished",
];

fn fails(fault: &'static str, exit: i32, prod: Prod, last: &'static [&'static str]) -> Case {
    Case {
        fault: Some(fault),
        args: SIGN_GO,
        setup: Setup::None,
        exit: Some(exit),
        prod,
        legacy_frozen: false,
        last,
        then: None,
    }
}

/// No fault: the run ends by itself (a NO-GO, a changed legacy).
fn ends(exit: i32, prod: Prod, last: &'static [&'static str]) -> Case {
    Case {
        fault: None,
        ..fails("", exit, prod, last)
    }
}

/// Killed here; `cutover run` again ends as an uninterrupted run (exit 0, production
/// loaded, the legacy still frozen: it stays read-only after a cutover).
fn killed(fault: &'static str, prod: Prod, legacy_frozen: bool) -> Case {
    Case {
        fault: Some(fault),
        args: SIGN_GO,
        setup: Setup::None,
        exit: None,
        prod,
        legacy_frozen,
        last: &[],
        then: Some(("run", 0, Prod::Loaded, true)),
    }
}

fn check(case: Case) {
    let site = Site::new();
    let before = site.production();
    let out = match case.setup {
        Setup::None => site.run(case.fault, case.args),
        Setup::FailingCommandBeforeUnfreeze => {
            let rb = site.path("tms.toml");
            let marker = "[[steps]]\nid = \"unfreeze\"";
            let text = std::fs::read_to_string(&rb).unwrap();
            assert!(text.contains(marker), "the runbook's unfreeze step moved");
            let text = text.replace(
                marker,
                &format!("[[steps]]\nid = \"smoke_test\"\nkind = \"command\"\nrun = \"exit 3\"\n\n{marker}"),
            );
            std::fs::write(&rb, text).unwrap();
            site.run(case.fault, case.args)
        }
        Setup::ChangeAfterFreeze(sql) => {
            let first = site.run(None, &[SIGN_GO, &["--until", "sign_off"]].concat());
            assert_eq!(code(&first), 0, "{}", stderr(&first));
            let legacy = site.path("legacy.db");
            // Someone with the file's rights is not bound by the triggers: they drop
            // them, write, and put them back.
            let triggers = sqlite(
                &legacy,
                "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'cutover_freeze_%'",
            );
            sqlite(
                &legacy,
                &sqlite(
                    &legacy,
                    "SELECT group_concat('DROP TRIGGER ' || name, '; ') FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'cutover_freeze_%'",
                ),
            );
            sqlite(&legacy, sql);
            for t in triggers.lines() {
                sqlite(&legacy, t);
            }
            site.run(case.fault, &[])
        }
    };
    let err = stderr(&out);
    assert_eq!(out.status.code(), case.exit, "{err}");
    let want = |p: Prod| match p {
        Prod::Before => &before,
        Prod::Loaded => clean_production(),
    };
    if case.exit.is_some() {
        assert_eq!(&site.production(), want(case.prod), "production; {err}");
    }
    assert_eq!(
        site.legacy_frozen(),
        case.legacy_frozen,
        "legacy frozen; {err}"
    );
    let recs = site.records();
    let kinds: Vec<&str> = recs.iter().map(|r| r.event.kind()).collect();
    assert!(
        kinds.ends_with(case.last),
        "the journal ends {:?}, expected {:?}",
        &kinds[kinds.len().saturating_sub(case.last.len() + 2)..],
        case.last
    );
    if let Some(Event::RunFinished {
        exit_code, message, ..
    }) = recs.last().map(|r| &r.event)
        && case.exit.is_some()
    {
        assert_eq!(Some(*exit_code), case.exit);
        // What the rollback plan did is on screen (the headless line) and in the journal.
        if !case.last.is_empty() && case.last.contains(&"rollback_finished") {
            assert!(
                err.contains("Rollback verified") || err.contains("Rollback FAILED"),
                "{err}"
            );
            assert!(err.contains(&format!("exit {exit_code}")), "{err}");
            if case.legacy_frozen {
                assert!(message.contains("kept frozen"), "{message}");
            } else if kinds.contains(&"freeze_applied") {
                assert!(message.contains("legacy reopened"), "{message}");
            }
        }
    }
    if let Some((what, exit, prod, frozen)) = case.then {
        let again = match what {
            "run" => site.run(None, case.args),
            _ => site.rollback(),
        };
        let err = stderr(&again);
        assert_eq!(code(&again), exit, "{what} again: {err}");
        assert_eq!(
            &site.production(),
            want(prod),
            "production after {what}: {err}"
        );
        assert_eq!(site.legacy_frozen(), frozen, "legacy after {what}: {err}");
        if what == "run" && case.exit.is_none() {
            assert!(err.contains("resuming run"), "{err}");
        }
    }
}

macro_rules! matrix {
    ($($name:ident: $case:expr;)*) => {
        $(#[test] fn $name() { check($case) })*
    };
}

matrix! {
    // ---- a failure inside each step
    backup_fails: fails("before:backup_taken:fail", 1, Prod::Before,
        &["step_finished", "rollback_started", "env_reopened", "rollback_finished", "run_finished"]);
    freeze_fails: fails("before:freeze_applied:fail", 1, Prod::Before, FAILED_BEFORE_LOAD);
    extract_fails: fails("before:extract_recorded:fail", 1, Prod::Before, FAILED_BEFORE_LOAD);
    dry_run_fails: fails("after:batch_committed.dry_run#2:fail", 1, Prod::Before, FAILED_BEFORE_LOAD);
    validate_fails: fails("before:check_recorded.validate#2:fail", 1, Prod::Before, FAILED_BEFORE_LOAD);
    sign_off_fails: fails("before:sign_off_recorded#1:fail", 1, Prod::Before, FAILED_BEFORE_LOAD);
    load_fails: fails("after:batch_committed.load#2:fail", 6, Prod::Before, ROLLED_BACK);
    verify_fails: fails("before:check_recorded.verify#1:fail", 6, Prod::Before, ROLLED_BACK);
    unfreeze_fails: fails("before:env_reopened.production:fail", 6, Prod::Before, ROLLED_BACK);
    // Production's reopen inside the rollback fails: the restore stands, the legacy is
    // still reopened, exit 1; `cutover rollback` then finishes the job.
    rollback_fails: Case {
        setup: Setup::FailingCommandBeforeUnfreeze,
        then: Some(("rollback", 6, Prod::Before, false)),
        ..fails("before:env_reopened.production:fail", 1, Prod::Before,
            &["rollback_started", "env_reopened", "rollback_finished", "run_finished"])
    };
    // ---- the gate says NO-GO
    no_go_reopens_the_legacy: Case {
        args: NO_GO,
        ..ends(5, Prod::Before, FAILED_BEFORE_LOAD)
    };
    no_go_holding_the_freeze_then_rollback_reopens_it: Case {
        args: NO_GO_HOLD,
        legacy_frozen: true,
        then: Some(("rollback", 6, Prod::Before, false)),
        ..ends(5, Prod::Before,
            &["rollback_started", "env_reopened", "freeze_held", "rollback_finished", "run_finished"])
    };
    // ---- the legacy changed behind the freeze: caught before the load, rollback plan
    updated_after_the_freeze: Case {
        setup: Setup::ChangeAfterFreeze("UPDATE customers SET credit_limit = '999999.00' WHERE rowid = 7"),
        args: &[],
        ..ends(6, Prod::Before,
            &["step_finished", "rollback_started", "env_reopened", "env_reopened", "rollback_finished", "run_finished"])
    };
    deleted_and_inserted_after_the_freeze: Case {
        setup: Setup::ChangeAfterFreeze(
            "CREATE TEMP TABLE k AS SELECT * FROM customers WHERE rowid = 9; \
             DELETE FROM customers WHERE rowid = 9; \
             UPDATE k SET name = name || ' (re-keyed)'; \
             INSERT INTO customers SELECT * FROM k"),
        args: &[],
        ..ends(6, Prod::Before,
            &["step_finished", "rollback_started", "env_reopened", "env_reopened", "rollback_finished", "run_finished"])
    };
    // ---- SIGKILL inside each step, then `cutover run` resumes to the uninterrupted result
    killed_in_backup: killed("before:backup_taken:kill", Prod::Before, false);
    killed_in_freeze: killed("before:freeze_applied:kill", Prod::Before, true);
    // Killed after `freeze_planned`, before the triggers: resumed, it freezes as planned.
    killed_before_the_freeze_took_hold: killed("after:freeze_planned:kill", Prod::Before, false);
    // Frozen, `freeze_applied` not yet written: `cutover rollback` still undoes the freeze
    // (from `freeze_planned`), where it used to find none and leave the legacy frozen.
    killed_in_freeze_then_rolled_back: Case {
        then: Some(("rollback", 6, Prod::Before, false)),
        ..killed("before:freeze_applied:kill", Prod::Before, true)
    };
    killed_in_extract: killed("before:extract_recorded:kill", Prod::Before, true);
    killed_in_dry_run: killed("after:batch_committed.dry_run#3:kill", Prod::Before, true);
    killed_in_validate: killed("after:check_recorded.validate#2:kill", Prod::Before, true);
    killed_in_sign_off: killed("after:sign_off_recorded#1:kill", Prod::Before, true);
    killed_in_load: killed("before:batch_committed.load#4:kill", Prod::Before, true);
    killed_in_verify: killed("after:check_recorded.verify#2:kill", Prod::Loaded, true);
    killed_in_unfreeze: killed("before:env_reopened.production:kill", Prod::Loaded, true);
    // Killed inside the rollback plan of a NO-GO: the next `run` finishes the rollback.
    killed_in_the_rollback: Case {
        args: NO_GO,
        then: Some(("run", 6, Prod::Before, false)),
        legacy_frozen: true,
        ..killed("after:rollback_started:kill", Prod::Before, true)
    };
}

/// `cutover run --fresh` over a run that froze the legacy: that run's rollback plan runs
/// first (its legacy reopened, journaled), then the new run starts.
#[test]
fn fresh_runs_the_abandoned_runs_rollback_plan_first() {
    let site = Site::new();
    let first = site.run(None, &["--until", "freeze"]);
    assert_eq!(code(&first), 0, "{}", stderr(&first));
    assert!(site.legacy_frozen());
    let abandoned = site.records();
    let fresh = site.run(None, &["--fresh", "--until", "backup"]);
    let err = stderr(&fresh);
    assert_eq!(code(&fresh), 0, "{err}");
    assert!(err.contains("abandoned"), "{err}");
    // The new run stopped before its freeze: the legacy is open, so the old run let go.
    assert!(!site.legacy_frozen(), "{err}");
    let old = block_on(async {
        let j = Journal::open_path(&site.path(".cutover/tms/journal.db"))
            .await
            .unwrap();
        j.run_records(&abandoned[0].run_id).await.unwrap()
    });
    let kinds: Vec<&str> = old.iter().map(|r| r.event.kind()).collect();
    assert!(
        kinds.ends_with(&[
            "rollback_started",
            "env_reopened",
            "env_reopened",
            "rollback_finished",
            "run_finished"
        ]),
        "{kinds:?}"
    );
}
