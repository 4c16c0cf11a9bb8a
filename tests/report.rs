//! `cutover report`: the cutover dossier of a real run, in three formats from one model.

mod common;
use common::*;

use std::path::Path;
use std::process::{Command, Output};

use rust_decimal::Decimal;
use serde_json::Value;
use sha2::{Digest, Sha256};

fn report(runbook: &Path, extra: &[&str]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.arg("report").arg(runbook).args(extra);
    cmd.env_remove("CUTOVER_JOURNAL");
    cmd.output().unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// As the HTML writes text.
fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

fn sha256_file(p: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(p).unwrap()))
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap_or_else(|| panic!("not a string: {v}"))
}

/// Every name, figure and hash of the JSON dossier shows in the Markdown and the HTML.
fn assert_same_content(j: &Value, md: &str, html: &str) {
    let mut wanted: Vec<String> = Vec::new();
    for t in j["reconciliation"].as_array().unwrap() {
        for c in t["checks"].as_array().unwrap() {
            wanted.push(s(&c["name"]).into());
            wanted.push(s(&c["source"]).into());
            wanted.push(s(&c["target"]).into());
        }
    }
    for so in j["sign_offs"].as_array().unwrap() {
        for k in ["name", "role", "comment", "evidence_sha256", "at"] {
            wanted.push(s(&so[k]).into());
        }
    }
    for e in j["rejects"].as_array().unwrap() {
        let phase = if e["phase"] == "load" {
            "load"
        } else {
            "dry run"
        };
        wanted.push(format!(
            "{} ({phase}): {} rejected",
            s(&e["entity"]),
            e["rejected"]
        ));
        for m in e["left_behind"].as_array().unwrap() {
            wanted.push(
                format!(
                    "{} {} {}",
                    s(&m["field"]),
                    s(&m["amount"]),
                    s(&m["currency"])
                )
                .trim()
                .into(),
            );
        }
        for r in e["by_rule"].as_array().unwrap() {
            wanted.push(s(&r["rule"]).into());
        }
    }
    for m in j["money_left_behind"].as_array().unwrap() {
        wanted.push(s(&m["amount"]).into());
    }
    for st in j["timeline"]["steps"].as_array().unwrap() {
        wanted.push(s(&st["id"]).into());
    }
    for f in j["provenance"]["inputs"].as_array().unwrap() {
        wanted.push(s(&f["sha256"]).into());
    }
    wanted.push(s(&j["provenance"]["runbook_sha256"]).into());
    wanted.push(s(&j["provenance"]["journal"]["run_head"]).into());
    wanted.push(s(&j["run"]["run_id"]).into());
    assert!(wanted.len() > 20, "too little to compare: {wanted:?}");
    for w in &wanted {
        assert!(md.contains(w.as_str()), "the Markdown lacks {w:?}");
        assert!(html.contains(&html_text(w)), "the HTML lacks {w:?}");
    }
}

/// Nothing in the HTML is fetched from elsewhere: it opens offline, archived or mailed.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    for bad in [
        "http://", "https://", "src=", "<link", "<script", "url(", "@import",
    ] {
        assert!(!lower.contains(bad), "the HTML holds {bad:?}");
    }
    assert!(lower.starts_with("<!doctype html>") && lower.contains("<style>"));
    assert!(lower.contains("<svg"), "no timeline picture");
}

#[test]
fn the_demo_dossier_renders_one_model_three_ways_with_exact_money() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let out = Command::new(BIN)
        .args(["demo", "--headless", "--json", "--rows", "4000", "--dir"])
        .arg(&demo)
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let summary = json(&out);
    let runbook = demo.join("tms.toml");

    let jo = report(&runbook, &["--format", "json"]);
    assert_eq!(code(&jo), 0, "{}", stderr(&jo));
    let j = json(&jo);
    let md = stdout(&report(&runbook, &["--format", "md"]));
    let html_file = dir.path().join("dossier.html");
    let ho = report(
        &runbook,
        &["--format", "html", "--output", html_file.to_str().unwrap()],
    );
    assert_eq!(code(&ho), 0, "{}", stderr(&ho));
    assert!(ho.stdout.is_empty(), "--output writes to the file only");
    let html = std::fs::read_to_string(&html_file).unwrap();

    assert_eq!(j["schema_version"], 1);
    assert_eq!(j["run"]["run_id"], summary["run"]["run_id"]);
    assert_eq!(j["run"]["outcome"], "completed");
    assert_same_content(&j, &md, &html);
    assert_self_contained(&html);

    // Planned vs actual: every step of the run, with the duration the journal holds.
    let steps = j["timeline"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), summary["steps"].as_array().unwrap().len());
    for st in summary["steps"].as_array().unwrap() {
        let t = steps.iter().find(|x| x["id"] == st["step"]).unwrap();
        assert_eq!(t["actual_ms"], st["duration_ms"], "{}", st["step"]);
        assert!(t["planned_secs"].is_u64(), "{t}");
    }
    // Every reconciliation check the run recorded, in its table.
    let checks: usize = j["reconciliation"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["checks"].as_array().unwrap().len())
        .sum();
    assert_eq!(checks, summary["checks"].as_array().unwrap().len());
    // The demo's two sign-offs, on the evidence the gate showed.
    let signs = j["sign_offs"].as_array().unwrap();
    assert_eq!(signs.len(), 2);
    for so in signs {
        assert_eq!(so["evidence_current"], true);
        assert_eq!(so["evidence_sha256"], j["gates"][0]["evidence_sha256"]);
    }

    // Rejects: counted again from each reject file, and the money left behind summed again
    // from it per currency, exactly.
    let mut currencies = 0;
    let rejects = j["rejects"].as_array().unwrap();
    assert!(rejects.iter().any(|e| e["rejected"].as_u64().unwrap() > 0));
    for e in rejects {
        let path = Path::new(s(&e["reject_file"]));
        let mut r = csv::Reader::from_path(path).unwrap();
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        let rows: Vec<csv::StringRecord> = r.records().map(Result::unwrap).collect();
        assert_eq!(
            rows.len() as u64,
            e["rejected"].as_u64().unwrap(),
            "{}",
            e["entity"]
        );
        let by_rule: u64 = e["by_rule"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["rows"].as_u64().unwrap())
            .sum();
        assert!(
            by_rule >= rows.len() as u64,
            "every rejected row is under a rule"
        );
        for m in e["left_behind"].as_array().unwrap() {
            let field = header.iter().position(|h| h == s(&m["field"])).unwrap();
            let cur = header.iter().position(|h| h == "currency");
            let mut total = Decimal::ZERO;
            for row in &rows {
                let c = cur.map(|i| row[i].trim()).unwrap_or("");
                let c = if cur.is_some() && c.is_empty() {
                    "(none)"
                } else {
                    c
                };
                if c == s(&m["currency"])
                    && let Ok(d) = row[field].trim().parse::<Decimal>()
                {
                    total += d;
                }
            }
            assert_eq!(
                s(&m["amount"]).parse::<Decimal>().unwrap(),
                total,
                "{} {} {}",
                e["entity"],
                m["field"],
                m["currency"]
            );
            currencies += 1;
        }
    }
    assert!(
        currencies >= 2,
        "the demo leaves money behind in several currencies"
    );

    // Provenance: the hashes are those of the files, the journal verifies to the run's head.
    let p = &j["provenance"];
    assert_eq!(s(&p["runbook_sha256"]), sha256_file(&runbook));
    assert_eq!(p["runbook_sha256_now"], p["runbook_sha256"]);
    let inputs = p["inputs"].as_array().unwrap();
    assert_eq!(inputs.len(), 4);
    for f in inputs {
        assert_eq!(s(&f["sha256"]), sha256_file(Path::new(s(&f["path"]))));
    }
    assert_eq!(p["tool_version"], env!("CARGO_PKG_VERSION"));
    let v = &p["journal"]["verification"];
    assert_eq!(v["intact"], true);
    assert_eq!(v["run_head_reachable"], true);
    let verify = Command::new(BIN)
        .args(["journal", "verify"])
        .arg(&runbook)
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap();
    assert_eq!(code(&verify), 0);
    assert!(
        stdout(&verify).contains(s(&p["journal"]["run_head"])),
        "{}",
        stdout(&verify)
    );

    // The run's own id gives the same dossier; an id the journal never held is refused.
    let again = report(
        &runbook,
        &["--format", "json", "--run", s(&j["run"]["run_id"])],
    );
    assert_eq!(json(&again)["provenance"], j["provenance"]);
    let unknown = report(&runbook, &["--format", "md", "--run", "no-such-run"]);
    assert_eq!(code(&unknown), 2, "{}", stderr(&unknown));
    assert!(stderr(&unknown).contains("no-such-run"));
    assert!(unknown.stdout.is_empty());
}

/// A skipped step is in the dossier with who skipped it and why, in every format.
#[test]
fn a_skip_is_in_the_dossier_with_its_reason() {
    let s = Scratch::with_fixture("small");
    let out = s.cutover(
        &[
            "rehearse",
            "--skip",
            "validate|migration-lead|reconciled by hand against the ledger",
        ],
        &tms(),
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let journal = s.path("journal.db");
    let get = |f: &str| {
        let o = report(
            &tms(),
            &["--format", f, "--journal", journal.to_str().unwrap()],
        );
        assert_eq!(code(&o), 0, "{}", stderr(&o));
        stdout(&o)
    };
    let j: Value = serde_json::from_str(&get("json")).unwrap();
    assert_eq!(j["run"]["mode"], "rehearse");
    let skips = j["skips"].as_array().unwrap();
    assert_eq!(skips.len(), 1);
    assert_eq!(skips[0]["step"], "validate");
    assert_eq!(skips[0]["name"], "migration-lead");
    let validate = j["timeline"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == "validate")
        .unwrap();
    assert_eq!(validate["status"], "skipped");
    // Nothing was validated, so there is no reconciliation table.
    assert!(j["reconciliation"].as_array().unwrap().is_empty());
    for text in [get("md"), get("html")] {
        assert!(text.contains("reconciled by hand against the ledger"));
        assert!(text.contains("skipped by migration-lead"));
    }
}
