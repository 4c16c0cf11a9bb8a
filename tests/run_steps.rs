//! The reference runbook end to end through the real binary, on SQLite files: every step,
//! every exit code, the gate, rollback and the journal.

mod common;
use common::*;

#[test]
fn rehearsal_counts_sums_and_rejects_on_the_small_fixture() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(&["rehearse", "--json"], &tms());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    let e = &j["entities"];
    // Worked out by hand from tests/fixtures/small (see the rows' comments in the test below).
    let expect = [
        ("customers", 5, 4, 1, 3),
        ("vehicles", 2, 2, 1, 1),
        ("drivers", 3, 2, 1, 1),
        ("open_invoices", 5, 4, 1, 3),
    ];
    for (name, in_file, in_scope, valid, rejected) in expect {
        let got = &e[name];
        assert_eq!(
            (
                got["in_file"].as_u64(),
                got["in_scope"].as_u64(),
                got["valid"].as_u64(),
                got["rejected"].as_u64(),
                got["loaded"].as_u64()
            ),
            (
                Some(in_file),
                Some(in_scope),
                Some(valid),
                Some(rejected),
                Some(valid)
            ),
            "{name}"
        );
        let rejects = std::fs::read_to_string(got["reject_file"].as_str().unwrap()).unwrap();
        let mut rdr = csv::Reader::from_reader(rejects.as_bytes());
        assert_eq!(
            rdr.records().count() as u64,
            rejected,
            "{name}: one reject-file row per rejected row"
        );
    }
    // Per currency, from tests/fixtures/small/open_invoices.csv: I1 (EUR) is the one valid
    // invoice; I2 (EUR, unknown customer C2), I3 (EUR, customer C3 rejected) and I4 (XYZ)
    // are rejected; I5 is paid, out of scope.
    let inv = &e["open_invoices"]["sums"];
    assert_eq!(inv["valid.amount_total.EUR"], "121.00");
    assert_eq!(inv["rejected.amount_total.EUR"], "14.10");
    assert_eq!(inv["valid.amount_total.XYZ"], "0");
    assert_eq!(inv["rejected.amount_total.XYZ"], "3");
    assert_eq!(inv["valid.amount_residual.EUR"], "121.00");
    assert_eq!(inv["rejected.amount_residual.EUR"], "5.00");
    assert_eq!(inv["rejected.amount_residual.XYZ"], "4");
    assert!(
        inv.get("valid.amount_total").is_none(),
        "no total across currencies: {inv}"
    );
    let checks = j["checks"].as_array().unwrap();
    let sum_eur = checks
        .iter()
        .find(|c| c["name"] == "SUM(amount_total) EUR")
        .expect("a per-currency sum check");
    assert_eq!(
        (&sum_eur["source"], &sum_eur["target"], &sum_eur["currency"]),
        (&"121.00".into(), &"121.00".into(), &"EUR".into())
    );
    assert_eq!(sum_eur["status"], "pass");
    // XYZ exists only among rejected rows: 0 on both sides, its rejected sum in the detail.
    let sum_xyz = checks
        .iter()
        .find(|c| c["name"] == "SUM(amount_total) XYZ")
        .unwrap();
    assert_eq!(sum_xyz["status"], "pass");
    assert!(
        sum_xyz["detail"].as_str().unwrap().contains(" 3 "),
        "{sum_xyz}"
    );
    assert!(
        j["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["status"] != "fail")
    );
    assert_eq!(j["outcome"], "completed");
    // A rehearsal never touches production.
    assert!(!s.path("production.db").exists());
}

#[test]
fn reject_file_keeps_original_columns_line_and_every_reason() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(&["rehearse", "--json"], &tms());
    let j = json(&out);
    let path = j["entities"]["customers"]["reject_file"]
        .as_str()
        .unwrap()
        .to_string();
    let mut rdr = csv::Reader::from_path(&path).unwrap();
    let header: Vec<String> = rdr.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(
        &header[..8],
        [
            "legacy_id",
            "name",
            "email",
            "phone",
            "city",
            "created",
            "credit_limit",
            "status"
        ]
    );
    assert_eq!(&header[8..], ["_line", "_rule", "_field", "_message"]);
    let rows: Vec<csv::StringRecord> = rdr.records().map(|r| r.unwrap()).collect();
    let c3 = rows.iter().find(|r| &r[0] == "C3").unwrap();
    assert_eq!(
        &c3[8], "4",
        "physical source line (header is line 1; the file is CRLF)"
    );
    assert_eq!(&c3[9], "date | decimal", "both reasons, in rule order");
    assert_eq!(&c3[10], "created | credit_limit");
    let c2 = rows.iter().find(|r| &r[0] == "C2").unwrap();
    assert_eq!(&c2[2], "bad email", "original value unchanged");
    let dup = rows.iter().find(|r| &r[1] == "Dup").unwrap();
    assert_eq!((&dup[8], &dup[9]), ("6", "unique"));
}

#[test]
fn full_run_walks_every_step_and_journals_the_sign_offs() {
    let s = Scratch::with_fixture("small");
    let mut args = vec!["run", "--json"];
    args.extend(GO);
    let out = s.cutover(&args, &tms());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    let steps: Vec<(&str, &str)> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    let ids: Vec<&str> = steps.iter().map(|s| s.0).collect();
    assert_eq!(
        ids,
        [
            "backup", "freeze", "extract", "dry_run", "validate", "sign_off", "load", "verify",
            "unfreeze"
        ]
    );
    assert!(
        steps
            .iter()
            .all(|(_, st)| *st == "passed" || *st == "warned"),
        "{steps:?}"
    );
    // backup: a real file whose SHA-256 is the one recorded.
    let b = &j["backup"];
    let bytes = std::fs::read(b["path"].as_str().unwrap()).unwrap();
    use sha2::Digest;
    assert_eq!(
        hex::encode(sha2::Sha256::digest(&bytes)),
        b["sha256"].as_str().unwrap()
    );
    // extract: manifest with counts and checksums.
    let files = j["extract"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 4);
    assert!(
        files
            .iter()
            .all(|f| f["sha256"].as_str().unwrap().len() == 64)
    );
    // load: production holds the valid rows with partner resolved.
    let prod = s.path("production.db");
    assert_eq!(
        sqlite(
            &prod,
            "SELECT m.name || '>' || p.ref FROM account_move m JOIN res_partner p ON p.id = m.partner_id"
        ),
        "I1>C1"
    );
    assert_eq!(
        sqlite(&prod, "SELECT model FROM fleet_vehicle"),
        "TGX, 18\" long\nline"
    );
    assert_eq!(
        sqlite(
            &prod,
            "SELECT amount_total || ' ' || payment_state FROM account_move"
        ),
        "121.00 not_paid"
    );
    let signers: Vec<&str> = j["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(signers, ["Migration lead", "Finance controller"]);
    assert_eq!(j["gates"][0]["decision"], "go");
    // The journal's chain verifies.
    let v = std::process::Command::new(BIN)
        .args(["journal", "verify", "--journal"])
        .arg(s.path("journal.db"))
        .output()
        .unwrap();
    assert_eq!(code(&v), 0, "{}", String::from_utf8_lossy(&v.stdout));
}

#[test]
fn gate_waits_without_sign_offs_and_load_is_not_reached() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(&["run", "--json"], &tms());
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("waiting at gate 'go_live'"));
    let j = json(&out);
    assert!(
        !j["steps"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["step"] == "load")
    );
    assert_eq!(
        sqlite(
            &s.path("production.db"),
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'account_move'"
        ),
        "0"
    );
    // One GO is not a quorum of two with both roles.
    let out = s.cutover(
        &["run", "--sign-off", "Migration lead|migration_lead|go|ok"],
        &tms(),
    );
    assert_eq!(code(&out), 4);
    // Two GOs from the same role miss the finance role.
    let out = s.cutover(
        &[
            "run",
            "--sign-off",
            "Ann|migration_lead|go|ok",
            "--sign-off",
            "Cy|migration_lead|go|ok",
        ],
        &tms(),
    );
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    assert!(stderr(&out).contains("roles still to sign: finance"));
}

#[test]
fn no_go_stops_the_run_with_its_own_exit_code() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(
        &[
            "run",
            "--json",
            "--sign-off",
            "Finance controller|finance|no-go|residuals unexplained",
        ],
        &tms(),
    );
    assert_eq!(code(&out), 5, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["sign_offs"][0]["decision"], "no-go");
    assert_eq!(j["sign_offs"][0]["comment"], "residuals unexplained");
    assert_eq!(j["outcome"], "no_go");
}

#[test]
fn until_stops_after_the_named_step() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(&["run", "--json", "--until", "extract"], &tms());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    let ids: Vec<&str> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["step"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["backup", "freeze", "extract"]);
    assert_eq!(j["outcome"], "stopped_after_step");
    let bad = s.cutover(&["run", "--until", "nope"], &tms());
    assert_eq!(code(&bad), 2);
}

/// A staging runbook that keeps old rows: the count check must catch them.
#[test]
fn failed_reconciliation_exits_3() {
    let s = Scratch::with_fixture("small");
    let text = std::fs::read_to_string(tms())
        .unwrap()
        .replace("reset = true", "reset = false")
        .replace("../assets/sample-extract", "extract");
    let rb = s.path("tms.toml");
    std::fs::write(&rb, text).unwrap();
    assert_eq!(code(&s.cutover(&["rehearse"], &rb)), 0);
    sqlite(
        &s.path("staging.db"),
        "INSERT INTO res_partner (ref, name) VALUES ('STRAY', 'left over from an old rehearsal')",
    );
    let out = s.cutover(&["rehearse", "--json"], &rb);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let j = json(&out);
    let failed: Vec<&str> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["entity"].as_str().unwrap())
        .collect();
    assert_eq!(failed, ["customers"]);
}

/// Production already holds a row the source does not know: verify fails after the load,
/// and the rollback restores production to exactly its pre-cutover state.
#[test]
fn verify_failure_rolls_production_back_to_its_backup() {
    let s = Scratch::with_fixture("small");
    // Pre-cutover production: the schema and one existing partner.
    let text = std::fs::read_to_string(tms()).unwrap();
    let ddl = text
        .split("sqlite = \"\"\"")
        .nth(1)
        .unwrap()
        .split("\"\"\"")
        .next()
        .unwrap();
    let prod = s.path("production.db");
    sqlite(&prod, ddl);
    sqlite(
        &prod,
        "INSERT INTO res_partner (ref, name) VALUES ('EXISTING', 'Already in the new system')",
    );
    let before = sqlite(
        &prod,
        "SELECT group_concat(ref || ':' || name) FROM res_partner",
    );
    let mut args = vec!["run", "--json"];
    args.extend(GO);
    let out = s.cutover(&args, &tms());
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["outcome"], "rolled_back");
    assert_eq!(j["rollback"]["ok"], true);
    assert!(
        j["rollback"]["message"]
            .as_str()
            .unwrap()
            .contains("verified equal")
    );
    assert_eq!(
        sqlite(
            &prod,
            "SELECT group_concat(ref || ':' || name) FROM res_partner"
        ),
        before
    );
    assert_eq!(sqlite(&prod, "SELECT COUNT(*) FROM account_move"), "0");
}

/// `--skip` passes over a step with who asked and why in the journal; the run goes on.
#[test]
fn skip_journals_who_and_why_and_the_run_completes() {
    let s = Scratch::with_fixture("small");
    let mut args = vec![
        "run",
        "--json",
        "--skip",
        "unfreeze|Migration lead|the ERP team reopens it at 06:00",
    ];
    args.extend(GO);
    let out = s.cutover(&args, &tms());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out)
            .contains("- unfreeze skipped by Migration lead: the ERP team reopens it at 06:00"),
        "{}",
        stderr(&out)
    );
    let j = json(&out);
    assert_eq!(j["outcome"], "completed");
    let steps = j["steps"].as_array().unwrap();
    let unfreeze = steps.iter().find(|s| s["step"] == "unfreeze").unwrap();
    assert_eq!(unfreeze["status"], "skipped");
    assert_eq!(
        unfreeze["message"],
        "skipped by Migration lead: the ERP team reopens it at 06:00"
    );
    assert_eq!(unfreeze["duration_ms"], 0);
    assert!(
        steps
            .iter()
            .filter(|s| s["step"] != "unfreeze")
            .all(|s| s["status"] == "passed" || s["status"] == "warned"),
        "{steps:?}"
    );
    // The journal: the skip with its name and reason, then its StepFinished; never started.
    let journal = s.path("journal.db");
    let skipped: serde_json::Value = serde_json::from_str(&sqlite(
        &journal,
        "SELECT payload FROM events WHERE kind = 'step_skipped'",
    ))
    .unwrap();
    assert_eq!(skipped["step"], "unfreeze");
    assert_eq!(skipped["name"], "Migration lead");
    assert_eq!(skipped["reason"], "the ERP team reopens it at 06:00");
    let kinds = sqlite(
        &journal,
        "SELECT kind FROM events WHERE payload LIKE '%\"step\":\"unfreeze\"%' ORDER BY seq",
    );
    assert_eq!(kinds, "step_skipped\nstep_finished");
    let v = std::process::Command::new(BIN)
        .args(["journal", "verify", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(code(&v), 0, "{}", String::from_utf8_lossy(&v.stdout));
}

/// A skipped step counts as finished: `--until` stops after it, and the resumed run does
/// not come back to it.
#[test]
fn a_skipped_step_is_finished_for_until_and_for_the_resume() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(
        &[
            "run",
            "--json",
            "--until",
            "freeze",
            "--skip",
            "freeze|Migration lead|frozen by the vendor at 18:00",
        ],
        &tms(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["outcome"], "stopped_after_step");
    let steps: Vec<(&str, &str)> = j["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["step"].as_str().unwrap(), s["status"].as_str().unwrap()))
        .collect();
    assert_eq!(steps, [("backup", "passed"), ("freeze", "skipped")]);
    // Given again on the resume: the freeze is over, so the skip is ignored (and said so).
    let mut args = vec![
        "run",
        "--skip",
        "freeze|Migration lead|frozen by the vendor at 18:00",
    ];
    args.extend(GO);
    let out = s.cutover(&args, &tms());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("not repeated: backup, freeze"),
        "{}",
        stderr(&out)
    );
    let journal = s.path("journal.db");
    assert_eq!(
        sqlite(
            &journal,
            "SELECT COUNT(*) FROM events WHERE kind = 'freeze_applied'"
        ),
        "0",
        "the skipped freeze never ran"
    );
    let log = std::fs::read_to_string(s.path("cutover.log")).unwrap();
    assert!(
        log.contains("skip ignored: the step finished before the interruption"),
        "{log}"
    );
}

/// Steps the run's safety rests on cannot be skipped: refused before anything runs.
#[test]
fn skip_of_a_load_or_an_unknown_step_is_refused_up_front() {
    let s = Scratch::with_fixture("small");
    let mut args = vec!["run", "--skip", "load|Migration lead|no time left"];
    args.extend(GO);
    let out = s.cutover(&args, &tms());
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("step load (load) cannot be skipped"),
        "{}",
        stderr(&out)
    );
    assert!(!s.path("production.db").exists(), "nothing ran");
    assert!(!s.path("backups").exists(), "not even the backup");
    let out = s.cutover(&["run", "--skip", "nope|Migration lead|why"], &tms());
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("no step 'nope'"), "{}", stderr(&out));
    let out = s.cutover(&["run", "--skip", "unfreeze|Migration lead| "], &tms());
    assert_eq!(code(&out), 2);
    let out = s.cutover(
        &["rehearse", "--skip", "unfreeze|Migration lead|why"],
        &tms(),
    );
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("not part of a rehearsal"),
        "{}",
        stderr(&out)
    );
}

/// What the console's skip dialog sends (`Command::Skip`) while the run waits at the gate:
/// the executor notes it and skips the step when it gets there; a refused one (load) is
/// not journaled and the load runs.
#[test]
fn the_consoles_skip_command_is_taken_when_the_run_reaches_the_step() {
    use cutover::control::{Command as Ctl, SignOff};
    use cutover::journal::Journal;
    use cutover::journal::events::{Decision, Event, Outcome, StepStatus};
    use cutover::steps::{Channels, Executor, OnWindowExceeded, RunOptions};
    let s = Scratch::with_fixture("small");
    let vars: Vec<(String, String)> = [
        ("extract_dir", s.path("extract").display().to_string()),
        ("staging_url", s.url("staging.db")),
        ("production_url", s.url("production.db")),
        ("backup_dir", s.path("backups").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let plan = cutover::runbook::load(&tms(), &vars).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (fin, recs) = rt.block_on(async {
        let journal = Journal::open_path(&s.path("journal.db")).await.unwrap();
        let (rec_tx, mut rec_rx) = tokio::sync::mpsc::unbounded_channel();
        let (prog_tx, _prog_rx) = tokio::sync::watch::channel(Vec::new());
        let (cmd_tx, cmd_rx) = tokio::sync::mpsc::channel(8);
        let exec = Executor::new(
            plan,
            journal.clone(),
            &s.path(".cutover"),
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
        let skip = |step: &str| Ctl::Skip {
            step: step.into(),
            name: "Migration lead".into(),
            reason: "checked by hand".into(),
        };
        let go = |name: &str, role: &str| {
            Ctl::SignOff(SignOff {
                gate: "go_live".into(),
                name: name.into(),
                role: role.into(),
                decision: Decision::Go,
                comment: "ok".into(),
                signature_file: None,
            })
        };
        while let Some(r) = rec_rx.recv().await {
            if r.event.kind() == "gate_opened" {
                for c in [
                    skip("load"),
                    skip("sign_off"),
                    skip("verify"),
                    go("Migration lead", "migration_lead"),
                    go("Finance controller", "finance"),
                ] {
                    cmd_tx.send(c).await.unwrap();
                }
                break;
            }
        }
        tokio::spawn(async move { while rec_rx.recv().await.is_some() {} });
        let fin = run.await.unwrap().unwrap();
        let recs = journal.run_records(&fin.run_id).await.unwrap();
        (fin, recs)
    });
    assert_eq!(fin.outcome, Outcome::Completed);
    let skipped: Vec<&str> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::StepSkipped { step, name, reason } => {
                assert_eq!(
                    (name.as_str(), reason.as_str()),
                    ("Migration lead", "checked by hand")
                );
                Some(step.as_str())
            }
            _ => None,
        })
        .collect();
    assert_eq!(skipped, ["verify"], "load and sign_off were refused");
    let status = |id: &str| {
        recs.iter().find_map(|r| match &r.event {
            Event::StepFinished { step, status, .. } if step == id => Some(*status),
            _ => None,
        })
    };
    assert_eq!(status("verify"), Some(StepStatus::Skipped));
    assert_eq!(status("load"), Some(StepStatus::Passed));
    assert!(
        !recs
            .iter()
            .any(|r| matches!(&r.event, Event::StepStarted { step } if step == "verify"))
    );
}

// A missing extract file, and more bad inputs: tests/bad_input.rs.

#[test]
fn bad_flags_are_invalid_input() {
    let s = Scratch::with_fixture("small");
    assert_eq!(
        code(&s.cutover(&["run", "--sign-off", "just a name"], &tms())),
        2
    );
    assert_eq!(
        code(&s.cutover(&["run", "--var", "no_such_var=1"], &tms())),
        2
    );
    let out = s.cutover(
        &[
            "run",
            "--var",
            "production_url=postgres://app:hunter2@db/prod",
        ],
        &tms(),
    );
    assert_eq!(code(&out), 2);
    assert!(
        !stderr(&out).contains("hunter2"),
        "a password never reaches the terminal"
    );
}

/// A second gate after verify ("keep the new system?"): a NO-GO there comes after the
/// production load started, so the rollback plan runs and production is as before.
#[test]
fn no_go_after_the_load_rolls_production_back() {
    let s = Scratch::with_fixture("small");
    let text = std::fs::read_to_string(tms())
        .unwrap()
        .replace("../assets/sample-extract", "extract")
        .replace(
            "[[steps]]\nid = \"backup\"",
            "[gates.keep]\ntitle = \"Keep the new system?\"\nquorum = 1\nroles = [\"migration_lead\"]\n\n[[steps]]\nid = \"backup\"",
        )
        .replace(
            "[[steps]]\nid = \"unfreeze\"",
            "[[steps]]\nid = \"keep\"\nkind = \"sign_off\"\ngate = \"keep\"\n\n[[steps]]\nid = \"unfreeze\"",
        );
    assert!(text.contains("gate = \"keep\""));
    let rb = s.path("tms.toml");
    std::fs::write(&rb, text).unwrap();
    let mut args = vec!["run", "--json"];
    args.extend(GO);
    args.extend([
        "--sign-off",
        "Migration lead|migration_lead|no-go|users report wrong balances",
    ]);
    let out = s.cutover(&args, &rb);
    assert_eq!(code(&out), 6, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["outcome"], "rolled_back");
    assert_eq!(j["rollback"]["ok"], true);
    assert!(
        j["rollback"]["reason"]
            .as_str()
            .unwrap()
            .contains("NO-GO by Migration lead (migration_lead): users report wrong balances"),
        "{}",
        j["rollback"]
    );
    // Production was empty before: the restore leaves none of the loaded rows.
    assert_eq!(
        sqlite(
            &s.path("production.db"),
            "SELECT COUNT(*) FROM sqlite_master WHERE name = 'account_move'"
        ),
        "0"
    );
}

/// A reject budget the dry run breaks makes the gate recommend NO-GO. A GO there is an
/// override: without a reason it is not recorded (the run waits, exit 4, saying why); with
/// one it is journaled as an override, and the gate's evidence is journaled beside it.
#[test]
fn override_of_a_no_go_recommendation_needs_a_reason() {
    let s = Scratch::with_fixture("small");
    // customers: 3 of 4 in-scope rows rejected (75%) against a 10% budget.
    let text = std::fs::read_to_string(tms())
        .unwrap()
        .replace("../assets/sample-extract", "extract")
        .replacen("max_reject_pct = 25.0", "max_reject_pct = 10.0", 1);
    let rb = s.path("tms.toml");
    std::fs::write(&rb, text).unwrap();

    let bare = [
        "--sign-off",
        "Migration lead|migration_lead|go|",
        "--sign-off",
        "Finance controller|finance|go|sums match to the cent",
    ];
    let mut args = vec!["run", "--json"];
    args.extend(bare);
    let out = s.cutover(&args, &rb);
    assert_eq!(code(&out), 4, "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("not recorded: Migration lead (migration_lead): a GO against the NO-GO recommendation is an override and needs a reason"),
        "{err}"
    );
    let j = json(&out);
    let gate = &j["gates"][0];
    assert_eq!(gate["recommendation"], "no-go");
    let rates = gate["evidence"]["reject_rates"].as_array().unwrap();
    let customers = rates.iter().find(|r| r["entity"] == "customers").unwrap();
    assert_eq!(
        (
            &customers["rejected"],
            &customers["in_scope"],
            &customers["within_budget"]
        ),
        (
            &serde_json::json!(3),
            &serde_json::json!(4),
            &serde_json::json!(false)
        )
    );
    assert_eq!(customers["budget_pct"], "10.00");
    assert!(gate["evidence"]["checks_warn"].as_u64().unwrap() >= 1);
    assert_eq!(gate["evidence"]["timing"]["fits"], true, "48h window");
    let names: Vec<&str> = j["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Finance controller"],
        "the bare GO was not journaled"
    );
    assert!(
        !s.path("production.db").exists()
            || sqlite(
                &s.path("production.db"),
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'account_move'"
            ) == "0"
    );

    // The same run goes on with a reason: the GO is journaled as an override.
    let mut args = vec!["run", "--json"];
    args.extend([
        "--sign-off",
        "Migration lead|migration_lead|go|C3 is a test customer, accepted as a reject",
    ]);
    let out = s.cutover(&args, &rb);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    let ann = j["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "Migration lead")
        .unwrap()
        .clone();
    assert_eq!(ann["overrides_recommendation"], true);
    assert_eq!(
        ann["comment"],
        "C3 is a test customer, accepted as a reject"
    );
    assert_eq!(j["outcome"], "completed");
}

/// Ways round the production gate, each of which must end before a row reaches production.
mod gate_cannot_be_bypassed {
    use super::*;

    fn runbook(s: &Scratch, edit: impl Fn(String) -> String) -> std::path::PathBuf {
        let text = std::fs::read_to_string(tms())
            .unwrap()
            .replace("../assets/sample-extract", "extract");
        let rb = s.path("tms.toml");
        std::fs::write(&rb, edit(text)).unwrap();
        rb
    }

    fn production_untouched(s: &Scratch) {
        assert_eq!(
            sqlite(
                &s.path("production.db"),
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'account_move'"
            ),
            "0",
            "rows reached production"
        );
    }

    fn refused(out: &std::process::Output) {
        assert_eq!(code(out), 1, "{}", stderr(out));
        assert!(
            stderr(out).contains("the production load needs a GO at the sign-off gate"),
            "{}",
            stderr(out)
        );
    }

    const SIGN_OFF_STEP: &str = "[[steps]]\nid = \"sign_off\"\nkind = \"sign_off\"\ngate = \"go_live\"\ntitle = \"Go / no-go\"\nplanned = \"30m\"\n";

    #[test]
    fn a_runbook_without_its_sign_off_step() {
        let s = Scratch::with_fixture("small");
        let rb = runbook(&s, |t| {
            assert!(t.contains(SIGN_OFF_STEP));
            t.replace(SIGN_OFF_STEP, "")
        });
        let mut args = vec!["run"];
        args.extend(GO);
        refused(&s.cutover(&args, &rb));
        production_untouched(&s);
    }

    #[test]
    fn a_go_given_before_the_last_validate() {
        // Sign first, validate afterwards: the GO did not see this evidence.
        let s = Scratch::with_fixture("small");
        let rb = runbook(&s, |t| {
            let without = t.replace(SIGN_OFF_STEP, "");
            without.replace(
                "[[steps]]\nid = \"dry_run\"",
                &format!("{SIGN_OFF_STEP}\n[[steps]]\nid = \"dry_run\""),
            )
        });
        let mut args = vec!["run"];
        args.extend(GO);
        refused(&s.cutover(&args, &rb));
        production_untouched(&s);
    }

    #[test]
    fn one_person_signing_for_both_roles() {
        let s = Scratch::with_fixture("small");
        let out = s.cutover(
            &[
                "run",
                "--sign-off",
                "Migration lead|migration_lead|go|ok",
                "--sign-off",
                "Migration lead|finance|go|ok",
            ],
            &tms_in(&s),
        );
        assert_eq!(code(&out), 4, "{}", stderr(&out));
        assert!(
            stderr(&out).contains("1 of 2 GO sign-offs"),
            "{}",
            stderr(&out)
        );
        production_untouched(&s);
    }

    #[test]
    fn the_go_of_an_earlier_run() {
        let s = Scratch::with_fixture("small");
        let rb = tms_in(&s);
        let mut args = vec!["run", "--until", "sign_off"];
        args.extend(GO);
        assert_eq!(code(&s.cutover(&args, &rb)), 0);
        // A new run (not a resume) must collect its own GOs.
        let out = s.cutover(&["run", "--fresh"], &rb);
        assert_eq!(code(&out), 4, "{}", stderr(&out));
        production_untouched(&s);
    }

    fn tms_in(s: &Scratch) -> std::path::PathBuf {
        runbook(s, |t| t)
    }
}

/// Money in a currency the source does not have shows as its own failed sum, never folded
/// into another currency's total.
#[test]
fn a_currency_only_the_target_holds_fails_its_own_sum() {
    let s = Scratch::with_fixture("small");
    let text = std::fs::read_to_string(tms())
        .unwrap()
        .replace("reset = true", "reset = false")
        .replace("../assets/sample-extract", "extract");
    let rb = s.path("tms.toml");
    std::fs::write(&rb, text).unwrap();
    assert_eq!(code(&s.cutover(&["rehearse"], &rb)), 0);
    sqlite(
        &s.path("staging.db"),
        "INSERT INTO account_move (name, partner_id, currency, amount_untaxed, amount_tax, amount_total, amount_residual, payment_state) \
         SELECT 'STRAY', MIN(id), 'USD', '50.00', '0.00', '50.00', '50.00', 'not_paid' FROM res_partner",
    );
    let out = s.cutover(&["rehearse", "--json"], &rb);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let j = json(&out);
    let sums: Vec<(&str, &str, &str, &str)> = j["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"].as_str().unwrap().starts_with("SUM(amount_total)"))
        .map(|c| {
            (
                c["currency"].as_str().unwrap(),
                c["source"].as_str().unwrap(),
                c["target"].as_str().unwrap(),
                c["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        sums,
        [
            ("EUR", "121.00", "121.00", "pass"),
            ("USD", "0", "50.00", "fail"),
            ("XYZ", "0", "0", "pass"),
        ]
    );
}
