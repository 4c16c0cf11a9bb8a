//! Webhooks (`[[notify]]`) against receivers on 127.0.0.1: notifications are delivered as
//! Slack-compatible JSON, a 500 is retried, every try is journaled with the URL's secret
//! path left out, and a receiver that never answers neither slows nor fails the run.

mod common;
use common::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use cutover::journal::Journal;
use cutover::journal::events::{Event, Record};

/// A folder with the demo's runbook (its own values) over a small generated legacy
/// database, plus `notify` appended to the runbook.
fn site(notify: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let template = std::fs::read_to_string(tms()).unwrap();
    let rb = cutover::demo::demo_runbook(&template).unwrap() + notify;
    std::fs::write(dir.path().join("tms.toml"), rb).unwrap();
    let opts = cutover::demo::GenOptions::demo_rows(800);
    block_on(cutover::demo::write_legacy_sqlite(
        &dir.path().join("legacy.db"),
        &opts,
    ))
    .unwrap();
    dir
}

fn rehearse(dir: &Path) -> (std::process::Output, std::time::Duration) {
    let t0 = std::time::Instant::now();
    let out = Command::new(BIN)
        .current_dir(dir)
        .args(["rehearse", "tms.toml", "--headless"])
        .env_remove("CUTOVER_JOURNAL")
        .env_remove("CUTOVER_ARTIFACTS")
        .output()
        .unwrap();
    (out, t0.elapsed())
}

fn records(dir: &Path) -> Vec<Record> {
    block_on(async {
        let j = Journal::open_path(&dir.join(".cutover/tms/journal.db"))
            .await
            .unwrap();
        let id = j.last_run_id().await.unwrap().unwrap();
        j.run_records(&id).await.unwrap()
    })
}

/// A one-request-per-connection HTTP receiver answering with `statuses` in turn (then 200),
/// keeping each request body.
fn receiver(statuses: Vec<u16>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let seen = bodies.clone();
    std::thread::spawn(move || {
        let mut script = statuses.into_iter();
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 {
                    break;
                }
                let l = line.to_ascii_lowercase();
                if let Some(v) = l.strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap_or(0);
                }
                if line == "\r\n" {
                    break;
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            seen.lock().unwrap().push(String::from_utf8(body).unwrap());
            let status = script.next().unwrap_or(200);
            let _ = write!(
                conn,
                "HTTP/1.1 {status} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
            );
        }
    });
    (port, bodies)
}

#[test]
fn notifications_are_delivered_retried_after_a_500_and_journaled() {
    let (port, bodies) = receiver(vec![500]);
    let dir = site(&format!(
        "\n[[notify]]\nurl = \"http://127.0.0.1:{port}/hook/SECRET-TOKEN\"\nevents = [\"step_started\", \"step_finished\"]\n"
    ));
    let (out, _) = rehearse(dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let recs = records(dir.path());

    // What the run told: every step started and finished, and the run's end.
    let told = recs
        .iter()
        .filter(|r| {
            matches!(
                r.event,
                Event::StepStarted { .. } | Event::StepFinished { .. } | Event::RunFinished { .. }
            )
        })
        .count();
    let delivered: Vec<(&str, u32, u16)> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::NotificationDelivered {
                about,
                url,
                attempt,
                status,
            } => {
                assert_eq!(url, &format!("http://127.0.0.1:{port}/…"));
                Some((about.as_str(), *attempt, *status))
            }
            _ => None,
        })
        .collect();
    let failed: Vec<(u32, Option<u16>, bool)> = recs
        .iter()
        .filter_map(|r| match &r.event {
            Event::NotificationFailed {
                attempt,
                status,
                gives_up,
                ..
            } => Some((*attempt, *status, *gives_up)),
            _ => None,
        })
        .collect();
    assert_eq!(delivered.len(), told, "{delivered:?}");
    // The first try met the 500; the second try of the same notification got through.
    assert_eq!(failed, vec![(1, Some(500), false)]);
    assert_eq!(delivered[0], ("step_started", 2, 200));
    assert!(
        delivered[1..].iter().all(|d| d.1 == 1 && d.2 == 200),
        "{delivered:?}"
    );
    // The secret part of the URL is nowhere in the journal.
    let all = serde_json::to_string(&recs.iter().map(|r| &r.event).collect::<Vec<_>>()).unwrap();
    assert!(!all.contains("SECRET-TOKEN"));

    // Slack-compatible bodies, in the run's order, the retried one twice.
    let bodies = bodies.lock().unwrap().clone();
    assert_eq!(bodies.len(), told + 1, "{bodies:?}");
    assert_eq!(bodies[0], bodies[1]);
    let texts: Vec<String> = bodies
        .iter()
        .map(|b| {
            let v: serde_json::Value = serde_json::from_str(b).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect();
    assert!(texts[0].contains("extract started"), "{texts:?}");
    assert!(texts.last().unwrap().contains("Run finished"), "{texts:?}");
}

#[test]
fn a_dead_or_silent_receiver_neither_slows_nor_fails_the_run() {
    // One port refuses connections; the other accepts and never answers (each post waits
    // for its timeout).
    let refused = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for c in silent.incoming().flatten() {
            keep.lock().unwrap().push(c);
        }
    });
    let dir = site(&format!(
        "\n[[notify]]\nurl = \"http://127.0.0.1:{refused}/hook\"\n\n[[notify]]\nurl = \"http://127.0.0.1:{silent_port}/hook\"\n"
    ));
    let (out, elapsed) = rehearse(dir.path());
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let recs = records(dir.path());
    let ts = |want: &str| {
        recs.iter()
            .find(|r| r.event.kind() == want)
            .map(|r| chrono::DateTime::parse_from_rfc3339(&r.ts).unwrap())
            .unwrap()
    };
    // Seven notifications to a receiver that takes 5 s to time out each: blocking on them
    // would take more than half a minute.
    let run = ts("run_finished") - ts("run_started");
    assert!(
        run < chrono::Duration::seconds(10),
        "the run took {run} with a silent webhook"
    );
    assert!(
        elapsed < std::time::Duration::from_secs(30),
        "the command took {elapsed:?}"
    );
    let given_up = recs
        .iter()
        .filter(|r| matches!(&r.event, Event::NotificationFailed { gives_up: true, .. }))
        .count();
    assert!(given_up > 0, "nothing journaled as given up");
    let refused_tries = recs
        .iter()
        .filter(|r| {
            matches!(&r.event, Event::NotificationFailed { url, error, .. }
                if url.contains(&refused.to_string()) && error.contains("connect"))
        })
        .count();
    assert!(refused_tries > 0, "the refused connection is journaled");
}

#[test]
fn check_refuses_a_webhook_it_could_not_reach() {
    let dir = site("\n[[notify]]\nurl_env = \"CUTOVER_TEST_UNSET_HOOK\"\n");
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["check", "tms.toml"])
        .env_remove("CUTOVER_TEST_UNSET_HOOK")
        .output()
        .unwrap();
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("url_env names CUTOVER_TEST_UNSET_HOOK"),
        "{}",
        stderr(&out)
    );
    let out = Command::new(BIN)
        .current_dir(dir.path())
        .args(["check", "tms.toml"])
        .env(
            "CUTOVER_TEST_UNSET_HOOK",
            "https://hooks.example.com/services/T/B/X",
        )
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
}
