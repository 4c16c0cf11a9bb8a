//! One live run at a time, with the shipped binary: a second `run`, `rehearse` or
//! `rollback` while the first waits at its gate is refused (exit 8) and changes nothing;
//! after `kill -9` of the first, `run` takes the run over, resumes it and loads production
//! exactly once. On a SQLite and on a PostgreSQL journal. Also: two processes racing,
//! SIGTERM/SIGHUP as interrupts, the journal head and `--expect-head`, a read-only journal.

mod common;
use common::*;

use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cutover::journal::Journal;
use cutover::journal::events::{Event, Outcome, Phase, Record};
use cutover::testdb::TempDb;

const LEASE_HELD: i32 = 8;
const HEAD_DIFFERS: i32 = 9;

/// A legacy SQLite system, the reference runbook with small batches, and a journal: the
/// default SQLite file beside the runbook, or a PostgreSQL database.
struct Site {
    dir: tempfile::TempDir,
    journal: String,
    _pg: Option<TempDb>,
}

impl Site {
    fn new(pg: bool) -> Site {
        let dir = small_reference_site(200, 300, 60, 40, 600);
        let (journal, pg) = if pg {
            let db = TempDb::postgres("lease");
            (db.url(), Some(db))
        } else {
            (
                dir.path()
                    .join(".cutover/tms/journal.db")
                    .display()
                    .to_string(),
                None,
            )
        };
        Site {
            dir,
            journal,
            _pg: pg,
        }
    }

    fn path(&self, p: &str) -> PathBuf {
        self.dir.path().join(p)
    }

    fn cmd(&self, verb: &str, fault: Option<&str>, extra: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        let url = |f: &str| format!("sqlite://{}", self.path(f).display());
        cmd.arg(verb)
            .arg(self.path("tms.toml"))
            .args(["--var", &format!("legacy_url={}", url("legacy.db"))])
            .args(["--var", &format!("production_url={}", url("production.db"))])
            .args(["--journal", &self.journal])
            .args(extra)
            .env_remove("CUTOVER_JOURNAL")
            .env_remove("CUTOVER_FAULT");
        if verb != "rollback" {
            cmd.arg("--headless")
                .args(["--var", &format!("staging_url={}", url("staging.db"))])
                .args([
                    "--var",
                    &format!("backup_dir={}", self.path("backups").display()),
                ]);
        }
        if let Some(f) = fault {
            cmd.env("CUTOVER_FAULT", f);
        }
        cmd
    }

    fn run(&self, verb: &str, extra: &[&str]) -> Output {
        self.cmd(verb, None, extra).output().unwrap()
    }

    fn spawn(&self, verb: &str, fault: &str, extra: &[&str]) -> Child {
        self.cmd(verb, Some(fault), extra)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn journal(&self) -> Journal {
        block_on(Journal::open(&self.journal)).unwrap()
    }

    /// Every record of the journal, all runs, in order.
    fn all(&self) -> Vec<Record> {
        block_on(async {
            let j = Journal::open(&self.journal).await.unwrap();
            let mut out = Vec::new();
            for s in j.run_starts().await.unwrap() {
                out.extend(j.run_records(&s.run_id).await.unwrap());
            }
            j.close().await;
            out.sort_by_key(|r| r.seq);
            out
        })
    }

    /// Wait until the journal holds a record of `kind` (the child is then where we want it).
    fn wait_for(&self, kind: &str, child: &mut Child) {
        let t0 = Instant::now();
        loop {
            if self.all().iter().any(|r| r.event.kind() == kind) {
                return;
            }
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut err).unwrap();
                panic!("the first process ended ({status}) before {kind}:\n{err}");
            }
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "no {kind} after 2 minutes"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn production_rows(&self) -> u64 {
        let prod = self.path("production.db");
        let tables = sqlite(
            &prod,
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        );
        tables
            .lines()
            .map(|t| {
                sqlite(&prod, &format!("SELECT COUNT(*) FROM \"{t}\""))
                    .parse::<u64>()
                    .unwrap()
            })
            .sum()
    }
}

fn kinds(records: &[Record], kind: &str) -> usize {
    records.iter().filter(|r| r.event.kind() == kind).count()
}

fn load_entities_started(records: &[Record]) -> usize {
    records
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                Event::EntityStarted {
                    phase: Phase::Load,
                    ..
                }
            )
        })
        .count()
}

/// The scenario of the issue: the first `run` sits at its gate; a second `run` (and a
/// `rehearse`, and a `rollback`) is refused at once and changes nothing; the first is
/// killed with SIGKILL; `run` takes the run over and completes it, loading production once.
fn second_run_refused_then_killed_holder_taken_over(pg: bool) {
    let site = Site::new(pg);
    // Held at its gate: paused right after the gate opened, as an operator would leave it.
    let mut first = site.spawn("run", "after:gate_opened:pause=120s", &GO);
    site.wait_for("gate_opened", &mut first);
    let before = site.all();
    let prod_before = site.production_rows();
    let pid = first.id();
    let refusals: [(&str, Vec<&str>); 3] = [
        ("run", GO.to_vec()),
        ("rehearse", vec![]),
        (
            "rollback",
            vec!["--confirm", "production.db", "--reason", "second console"],
        ),
    ];
    for (verb, extra) in refusals {
        let t0 = Instant::now();
        let out = site.run(verb, &extra);
        let err = stderr(&out);
        assert_eq!(code(&out), LEASE_HELD, "{verb}: {err}");
        assert!(
            err.contains(&format!("is driven by pid {pid} on host ")),
            "{verb}: {err}"
        );
        assert!(
            err.contains(" since ") && err.contains(" UTC (heartbeat "),
            "{verb}: {err}"
        );
        assert!(!err.contains("resuming run"), "{verb}: {err}");
        assert!(
            t0.elapsed() < Duration::from_secs(20),
            "{verb}: refused at once"
        );
    }
    // Nothing changed: not a record more, not a row more.
    assert_eq!(site.all(), before);
    assert_eq!(site.production_rows(), prod_before);
    assert_eq!(load_entities_started(&before), 0);

    first.kill().unwrap(); // SIGKILL: no cleanup, the lease row stays behind
    first.wait().unwrap();
    let resumed = site.run("run", &GO);
    let err = stderr(&resumed);
    assert_eq!(code(&resumed), 0, "{err}");
    assert!(err.contains("resuming run"), "{err}");
    assert!(
        err.contains(&format!("from pid {pid} on host")) && err.contains("is gone"),
        "{err}"
    );
    let recs = site.all();
    let took: Vec<_> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::LeaseTakenOver {
                previous, holder, ..
            } => Some((previous.clone(), holder.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(took.len(), 1, "one take-over journaled");
    assert_eq!(took[0].0.pid, pid);
    assert_ne!(took[0].1.pid, pid);
    assert_eq!(took[0].0.run_id, took[0].1.run_id, "the same run, resumed");
    // Production loaded exactly once: one load step, each entity loaded once, and the rows
    // in production are the rows the load journaled.
    assert_eq!(kinds(&recs, "run_started"), 1);
    assert_eq!(
        recs.iter()
            .filter(|r| matches!(&r.event, Event::StepStarted { step } if step == "load"))
            .count(),
        1
    );
    let entities = load_entities_started(&recs);
    assert!(entities >= 3, "{entities}");
    let loaded: u64 = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::EntityFinished {
                phase: Phase::Load,
                counts,
                ..
            } => Some(counts.loaded),
            _ => None,
        })
        .sum();
    assert_eq!(
        recs.iter()
            .filter(|r| matches!(
                &r.event,
                Event::EntityFinished {
                    phase: Phase::Load,
                    ..
                }
            ))
            .count(),
        entities
    );
    assert!(loaded > 0);
    assert_eq!(site.production_rows(), loaded);
    assert!(matches!(
        recs.last().unwrap().event,
        Event::RunFinished {
            outcome: Outcome::Completed,
            ..
        }
    ));
    // The run ended and gave the lease up.
    assert!(
        block_on(site.journal().lease_holder("tms"))
            .unwrap()
            .is_none()
    );
}

#[test]
fn a_second_run_is_refused_and_a_killed_holder_is_taken_over_on_a_sqlite_journal() {
    second_run_refused_then_killed_holder_taken_over(false);
}

#[test]
fn a_second_run_is_refused_and_a_killed_holder_is_taken_over_on_a_postgres_journal() {
    second_run_refused_then_killed_holder_taken_over(true);
}

/// Two `rehearse` processes started together: one drives, the other is refused.
#[test]
fn two_processes_racing_for_a_run_one_wins() {
    let site = Site::new(false);
    for round in 0..3 {
        let hold = "after:run_started:pause=3s";
        let a = site.spawn("rehearse", hold, &["--until", "extract"]);
        let b = site.spawn("rehearse", hold, &["--until", "extract"]);
        let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
        let mut codes = [code(&a), code(&b)];
        codes.sort();
        assert_eq!(
            codes,
            [0, LEASE_HELD],
            "round {round}:\n{}\n---\n{}",
            stderr(&a),
            stderr(&b)
        );
    }
    let recs = site.all();
    assert_eq!(kinds(&recs, "run_started"), 3, "one rehearsal a round");
    assert_eq!(kinds(&recs, "lease_taken_over"), 0);
}

impl Site {
    /// Load one entity at a time: a pause the test puts in one entity's load then holds
    /// the whole load (with entities in parallel, another would go on writing meanwhile,
    /// up to its next lease check).
    fn one_entity_at_a_time(&self) {
        let rb = std::fs::read_to_string(self.path("tms.toml")).unwrap();
        assert!(rb.contains("batch_size = 200"));
        let rb = rb.replace(
            "batch_size = 200",
            "batch_size = 200\nentity_concurrency = 1",
        );
        std::fs::write(self.path("tms.toml"), rb).unwrap();
    }

    /// Wait until the production load has journaled a batch.
    fn wait_for_load_batch(&self, child: &mut Child) {
        self.wait_for("batch_committed", child);
        let t0 = Instant::now();
        while !self.all().iter().any(|r| {
            matches!(
                r.event,
                Event::BatchCommitted {
                    phase: Phase::Load,
                    ..
                }
            )
        }) {
            assert!(t0.elapsed() < Duration::from_secs(120), "no load batch");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// A holder whose lease is taken while it still runs (say it was cut off longer than the
/// timeout and another host took over) stops at its next safe point: exit 8, and it writes
/// nothing more, neither to the journal nor to production.
#[test]
fn a_holder_that_lost_its_lease_stops_and_writes_nothing_more() {
    let site = Site::new(false);
    site.one_entity_at_a_time();
    let mut child = site.spawn("run", "after:batch_committed.load#2:pause=5s", &GO);
    site.wait_for_load_batch(&mut child);
    // What a take-over by another host does to the row.
    sqlite(
        &site.path(".cutover/tms/journal.db"),
        "UPDATE leases SET token = 'another', pid = 4242, host = 'elsewhere'",
    );
    let records = site.all().len();
    let rows = site.production_rows();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), LEASE_HELD, "{err}");
    assert!(
        err.contains("no longer drives the run") && err.contains("pid 4242 on host elsewhere"),
        "{err}"
    );
    assert_eq!(site.all().len(), records, "nothing more journaled");
    assert_eq!(site.production_rows(), rows, "no batch loaded after");
    assert!(!site.all().iter().any(|r| r.event.kind() == "run_finished"));
}

/// The lease is taken over while the holder is about to write its third production batch
/// (held back there by `before:batch_write.load#3:pause`): the holder writes not even that
/// batch (it checks its lease right before each write), exits 8, and journals nothing more.
#[test]
fn a_holder_whose_lease_is_taken_before_a_batch_write_does_not_write_it() {
    let site = Site::new(false);
    site.one_entity_at_a_time();
    let mut child = site.spawn("run", "before:batch_write.load#3:pause=8s", &GO);
    site.wait_for_load_batch(&mut child);
    let load_batches = |recs: &[Record]| {
        recs.iter()
            .filter(|r| {
                matches!(
                    r.event,
                    Event::BatchCommitted {
                        phase: Phase::Load,
                        ..
                    }
                )
            })
            .count()
    };
    let t0 = Instant::now();
    while load_batches(&site.all()) < 2 {
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no second load batch"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // Now paused before the third write: another host takes the run over.
    sqlite(
        &site.path(".cutover/tms/journal.db"),
        "UPDATE leases SET token = 'another', pid = 4242, host = 'elsewhere'",
    );
    let records = site.all();
    assert_eq!(
        load_batches(&records),
        2,
        "the third batch was not held back"
    );
    let rows = site.production_rows();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert_eq!(code(&out), LEASE_HELD, "{err}");
    assert!(
        err.contains("no longer drives the run") && err.contains("pid 4242 on host elsewhere"),
        "{err}"
    );
    assert_eq!(
        site.production_rows(),
        rows,
        "the batch in hand was written"
    );
    assert_eq!(site.all().len(), records.len(), "nothing more journaled");
}

/// SIGTERM and SIGHUP end a headless run like Ctrl-C: journaled as interrupted, exit 130,
/// and `cutover run` resumes it to completion.
#[test]
fn sigterm_and_sighup_interrupt_a_run_that_then_resumes() {
    for sig in ["TERM", "HUP"] {
        let site = Site::new(false);
        let mut child = site.spawn("run", "after:batch_committed.load#2:pause=4s", &GO);
        site.wait_for_load_batch(&mut child);
        let kill = Command::new("kill")
            .args([&format!("-{sig}"), &child.id().to_string()])
            .status()
            .unwrap();
        assert!(kill.success());
        let out = child.wait_with_output().unwrap();
        assert_eq!(code(&out), 130, "SIG{sig}: {}", stderr(&out));
        assert!(
            stderr(&out).contains(&format!("interrupt (SIG{sig})")),
            "{}",
            stderr(&out)
        );
        let recs = site.all();
        match &recs.last().unwrap().event {
            Event::RunFinished {
                outcome: Outcome::Failed,
                exit_code: 130,
                message,
            } => assert!(message.contains("interrupted"), "{message}"),
            other => panic!("SIG{sig}: last record {other:?}"),
        }
        let resumed = site.run("run", &GO);
        assert_eq!(code(&resumed), 0, "SIG{sig}: {}", stderr(&resumed));
        assert!(stderr(&resumed).contains("resuming run"));
        // The interrupted process released its lease: nothing to take over.
        assert_eq!(kinds(&site.all(), "lease_taken_over"), 0);
    }
}

/// The run prints its journal head and writes it into summary.json; `journal verify`
/// prints it; `--expect-head` passes on the intact journal and fails with exit 9 once the
/// tail is cut off, while plain verify still passes.
#[test]
fn expect_head_detects_a_truncated_tail_that_plain_verify_passes() {
    let site = Site::new(false);
    let out = site.run("rehearse", &["--until", "extract"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let err = stderr(&out);
    let printed = err
        .lines()
        .find_map(|l| l.strip_prefix("journal head "))
        .unwrap_or_else(|| panic!("no head printed: {err}"))
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    let recs = site.all();
    let last = recs.last().unwrap();
    assert!(matches!(last.event, Event::RunFinished { .. }));
    assert_eq!(printed, format!("{}:{}", last.seq, last.hash));
    let run_dir = recs
        .iter()
        .find_map(|r| match &r.event {
            Event::RunStarted { artifacts_dir, .. } => Some(PathBuf::from(artifacts_dir)),
            _ => None,
        })
        .unwrap();
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run_dir.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["journal_head"]["seq"], last.seq);
    assert_eq!(summary["journal_head"]["hash"], last.hash.as_str());

    let verify = |expect: Option<&str>| {
        let mut c = Command::new(BIN);
        c.args(["journal", "verify", "--journal", &site.journal]);
        if let Some(e) = expect {
            c.args(["--expect-head", e]);
        }
        c.env_remove("CUTOVER_JOURNAL").output().unwrap()
    };
    let plain = verify(None);
    assert_eq!(code(&plain), 0);
    assert!(
        String::from_utf8_lossy(&plain.stdout).contains(&format!("head {printed}")),
        "{}",
        String::from_utf8_lossy(&plain.stdout)
    );
    assert_eq!(code(&verify(Some(&printed))), 0);
    // An earlier head is still reached (records after it are reported, not an error).
    let earlier = format!("{}:{}", recs[1].seq, recs[1].hash);
    let out = verify(Some(&earlier));
    assert_eq!(code(&out), 0);
    assert!(String::from_utf8_lossy(&out.stdout).contains("appended after it"));
    // A forged hash at that seq: the journal was rewritten.
    let forged = format!("{}:{}", last.seq, "ab".repeat(32));
    let out = verify(Some(&forged));
    assert_eq!(
        code(&out),
        HEAD_DIFFERS,
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    // Malformed: a usage error.
    assert_eq!(code(&verify(Some("12"))), 2);

    // Cut the last three records off (someone with file access drops the guard).
    let j = site.path(".cutover/tms/journal.db");
    sqlite(&j, "DROP TRIGGER events_no_delete");
    sqlite(
        &j,
        &format!("DELETE FROM events WHERE seq > {}", last.seq - 3),
    );
    let plain = verify(None);
    assert_eq!(code(&plain), 0, "the shortened chain is intact on its own");
    let out = verify(Some(&printed));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(code(&out), HEAD_DIFFERS, "{text}");
    assert!(text.contains("3 record(s) are missing"), "{text}");
}

/// A journal the process cannot write: the error names it.
#[test]
fn a_read_only_journal_is_named_in_the_error() {
    let site = Site::new(false);
    let out = site.run("rehearse", &["--until", "extract"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let file = site.path(".cutover/tms/journal.db");
    let ro = Site {
        journal: format!("sqlite://{}?mode=ro", file.display()),
        ..site
    };
    let out = ro.run("rehearse", &["--until", "extract"]);
    let err = stderr(&out);
    assert_eq!(code(&out), 1, "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(
        err.contains("readonly") || err.contains("read-only"),
        "{err}"
    );
}

/// A journal on a full disk: the error names the journal, and the run stops there.
#[test]
fn a_full_journal_disk_is_named_in_the_error() {
    let site = Site::new(false);
    let small = site.path("small");
    std::fs::create_dir_all(&small).unwrap();
    let mount = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=2m", "tmpfs"])
        .arg(&small)
        .output()
        .unwrap();
    assert!(
        mount.status.success(),
        "this test mounts a 2 MiB tmpfs and needs the right to: {}",
        String::from_utf8_lossy(&mount.stderr)
    );
    struct Unmount(std::path::PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).output();
        }
    }
    let file = small.join("journal.db");
    let full = Site {
        journal: file.display().to_string(),
        ..site
    };
    // Declared after the site, so the file system is unmounted before its folder goes.
    let _unmount = Unmount(small.clone());
    let out = full.run("rehearse", &["--until", "extract"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    // Fill what is left of the file system, so the next append has nowhere to go.
    let mut filler = std::fs::File::create(small.join("filler")).unwrap();
    let block = vec![0u8; 64 * 1024];
    while std::io::Write::write_all(&mut filler, &block).is_ok() {}
    while std::io::Write::write_all(&mut filler, &block[..512]).is_ok() {}
    drop(filler);
    let out = full.run("rehearse", &[]);
    let err = stderr(&out);
    assert_ne!(code(&out), 0, "{err}");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(
        err.contains(&format!(
            "the file system holding {} is full",
            file.display()
        )),
        "{err}"
    );
}
