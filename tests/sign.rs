//! `cutover sign` on the real binary: approvers sign the waiting gate from other
//! processes, as themselves, against the gate's per-role quorums, the lead rule, the
//! evidence hash and SSH signatures. Each refusal is journaled as refused.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

const GATE_TMS: &str = r#"[gates.go_live]
title = "Go / no-go for the production load"
quorum = 2
roles = ["migration_lead", "finance"]
approvers = [
  { name = "Migration lead", role = "migration_lead" },
  { name = "Finance controller", role = "finance" },
]
"#;

/// The reference runbook with `gate` in place of its own, in the scratch folder.
fn runbook(s: &Scratch, gate: &str) -> PathBuf {
    let text = std::fs::read_to_string(tms())
        .unwrap()
        .replace("../assets/sample-extract", "extract");
    assert!(text.contains(GATE_TMS), "the reference gate moved");
    let rb = s.path("rb.toml");
    std::fs::write(&rb, text.replace(GATE_TMS, gate)).unwrap();
    rb
}

/// finance-controller: 1 of [finance-controller, finance-deputy (keyed when `key`)];
/// application-owner: 1 of [application-owner, finance-controller, migration-lead].
fn two_roles(key: Option<&str>) -> String {
    let deputy = match key {
        Some(k) => format!(
            "{{ name = \"finance-deputy\", ssh_key = \"{}\" }}",
            k.trim()
        ),
        None => "\"finance-deputy\"".into(),
    };
    format!(
        r#"[gates.go_live]
title = "Go / no-go for the production load"

[[gates.go_live.roles]]
role = "finance-controller"
approvers = ["finance-controller", {deputy}]
quorum = 1

[[gates.go_live.roles]]
role = "application-owner"
approvers = ["application-owner", "finance-controller", "migration-lead"]
quorum = 1
"#
    )
}

/// Flags of `s` that every command takes (variables and the journal), without --headless.
fn where_flags(s: &Scratch) -> Vec<String> {
    s.flags()
        .into_iter()
        .filter(|f| f != "--headless")
        .collect()
}

fn sign(s: &Scratch, rb: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("sign")
        .arg(rb)
        .args(where_flags(s))
        .args(["--gate", "go_live"])
        .args(args)
        .env_remove("CUTOVER_JOURNAL")
        .output()
        .unwrap()
}

fn as_(name: &str, role: &str, decision: &str) -> Vec<String> {
    [
        "--as",
        name,
        "--role",
        role,
        "--decision",
        decision,
        "--comment",
        "figures read",
    ]
    .map(String::from)
    .to_vec()
}

fn sign_as(s: &Scratch, rb: &Path, name: &str, role: &str, extra: &[&str]) -> Output {
    let mut a = as_(name, role, "go");
    a.extend(extra.iter().map(|x| x.to_string()));
    let a: Vec<&str> = a.iter().map(String::as_str).collect();
    sign(s, rb, &a)
}

fn out(o: &Output) -> String {
    format!(
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn kinds(s: &Scratch, kind: &str) -> usize {
    sqlite(
        &s.path("journal.db"),
        &format!("SELECT COUNT(*) FROM events WHERE kind = '{kind}'"),
    )
    .parse()
    .unwrap()
}

fn evidence_hash(s: &Scratch, rb: &Path) -> String {
    let o = sign(s, rb, &["--show-evidence", "--hash-only"]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    let h = String::from_utf8(o.stdout).unwrap();
    assert_eq!(h.trim().len(), 64, "{h:?}");
    h.trim().to_string()
}

fn loaded_invoices(s: &Scratch) -> usize {
    sqlite(
        &s.path("production.db"),
        "SELECT COUNT(*) FROM account_move",
    )
    .parse()
    .unwrap()
}

#[test]
fn two_sign_processes_meet_a_two_of_two_quorum_and_the_waiting_run_goes_on() {
    let s = Scratch::with_fixture("small");
    let rb = runbook(&s, &two_roles(None));
    // The lead's run, headless, waits at the gate for sign-offs through the journal.
    let mut run = Command::new(BIN)
        .arg("run")
        .arg(&rb)
        .args(s.flags())
        .args(["--wait-at-gate", "--lead", "migration-lead", "--json"])
        .env_remove("CUTOVER_JOURNAL")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t0 = Instant::now();
    loop {
        let o = sign(&s, &rb, &["--show-evidence"]);
        if code(&o) == 0 {
            let text = String::from_utf8_lossy(&o.stdout).into_owned();
            assert!(text.contains("\"checks\":[{"), "{text}");
            assert!(
                stderr(&o).contains("finance-controller 0 of 1, application-owner 0 of 1"),
                "{}",
                out(&o)
            );
            break;
        }
        assert!(
            run.try_wait().unwrap().is_none(),
            "the run ended before its gate"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "no gate: {}",
            out(&o)
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        loaded_invoices_or_none(&s),
        None,
        "nothing loaded before the GO"
    );
    // Two approvers, two processes at once, while the run holds its lease.
    let first = std::thread::scope(|sc| {
        let f = sc.spawn(|| sign_as(&s, &rb, "finance-controller", "finance-controller", &[]));
        let o = sc.spawn(|| sign_as(&s, &rb, "application-owner", "application-owner", &[]));
        (f.join().unwrap(), o.join().unwrap())
    });
    assert_eq!(code(&first.0), 0, "{}", out(&first.0));
    assert_eq!(code(&first.1), 0, "{}", out(&first.1));
    let both = format!(
        "{}{}",
        String::from_utf8_lossy(&first.0.stdout),
        String::from_utf8_lossy(&first.1.stdout)
    );
    assert!(both.contains("quorum met: the run goes on"), "{both}");
    // The waiting run reads them from the journal and completes the cutover.
    let t0 = Instant::now();
    let status = loop {
        if let Some(st) = run.try_wait().unwrap() {
            break st;
        }
        if t0.elapsed() > Duration::from_secs(120) {
            let _ = run.kill();
            panic!("the run did not go on after the quorum");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let o = run.wait_with_output().unwrap();
    assert_eq!(status.code(), Some(0), "{}", out(&o));
    // The run showed the sign-offs it read from the journal as they came.
    let err = stderr(&o);
    for who in [
        "finance-controller (finance-controller)",
        "application-owner (application-owner)",
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("Sign-off at go_live: GO") && l.contains(&format!("by {who}"))),
            "{err}"
        );
    }
    let j = json(&o);
    assert_eq!(j["gates"][0]["decision"], "go");
    let signers: Vec<&str> = j["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(signers.len(), 2, "{signers:?}");
    assert!(loaded_invoices(&s) > 0);
    assert_eq!(kinds(&s, "sign_off_refused"), 0);
}

fn loaded_invoices_or_none(s: &Scratch) -> Option<usize> {
    let n = sqlite(
        &s.path("production.db"),
        "SELECT COUNT(*) FROM sqlite_master WHERE name = 'account_move'",
    );
    (n != "0").then(|| loaded_invoices(s)).filter(|n| *n > 0)
}

#[test]
fn the_same_person_in_both_roles_counts_once() {
    let s = Scratch::with_fixture("small");
    let rb = runbook(&s, &two_roles(None));
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let o = sign_as(&s, &rb, "finance-controller", "finance-controller", &[]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("finance-controller 1 of 1, application-owner 0 of 1"),
        "{}",
        out(&o)
    );
    // Listed in both roles, but one person fills one role: refused, and journaled so.
    let o = sign_as(&s, &rb, "Finance-Controller", "application-owner", &[]);
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(
        stderr(&o).contains("one person fills one role"),
        "{}",
        out(&o)
    );
    assert_eq!(kinds(&s, "sign_off_refused"), 1);
    // The run agrees: still waiting, and says why.
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let err = stderr(&o);
    assert!(err.contains("1 of 2 GO sign-offs"), "{err}");
    assert!(
        err.contains("roles still to sign: application-owner"),
        "{err}"
    );
    assert!(err.contains("one person fills one role"), "{err}");
    assert_eq!(loaded_invoices_or_none(&s), None);
    // Not an approver of that role at all.
    let o = sign_as(&s, &rb, "someone-else", "application-owner", &[]);
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(stderr(&o).contains("not an approver of role application-owner"));
}

#[test]
fn the_lead_alone_cannot_pass_their_own_gate() {
    let s = Scratch::with_fixture("small");
    let gate = r#"[gates.go_live]
title = "Go / no-go for the production load"

[[gates.go_live.roles]]
role = "application-owner"
approvers = ["application-owner", "migration-lead"]
quorum = 1
"#;
    let rb = runbook(&s, gate);
    let o = s.cutover(&["run", "--lead", "migration-lead"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let o = sign_as(&s, &rb, "migration-lead", "application-owner", &[]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout)
            .contains("cannot be the only approver of their own gate"),
        "{}",
        out(&o)
    );
    // Continued without --lead: the gate keeps the lead it named when it opened.
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    assert!(
        stderr(&o).contains("the lead (migration-lead) cannot be the only approver"),
        "{}",
        out(&o)
    );
    assert_eq!(loaded_invoices_or_none(&s), None);
    // Another approver's GO: the run goes on.
    let o = sign_as(&s, &rb, "application-owner", "application-owner", &[]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    let o = s.cutover(&["run", "--lead", "migration-lead"], &rb);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(loaded_invoices(&s) > 0);
}

#[test]
fn a_stale_sign_off_is_refused_after_a_new_validate() {
    let s = Scratch::with_fixture("small");
    let rb = runbook(&s, &two_roles(None));
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let first = evidence_hash(&s, &rb);
    // A new run validates again: the same figures, new evidence.
    let o = s.cutover(&["run", "--fresh"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let second = evidence_hash(&s, &rb);
    assert_ne!(first, second);
    let o = sign_as(
        &s,
        &rb,
        "finance-controller",
        "finance-controller",
        &["--evidence", &first],
    );
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(stderr(&o).contains("stale"), "{}", out(&o));
    assert_eq!(kinds(&s, "sign_off_refused"), 1);
    // The evidence they were shown now: it counts.
    let o = sign_as(
        &s,
        &rb,
        "finance-controller",
        "finance-controller",
        &["--evidence", &second],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let err = stderr(&o);
    assert!(err.contains("finance-controller 1 of 1"), "{err}");
    assert!(
        err.contains("not recorded: finance-controller (finance-controller): stale"),
        "{err}"
    );
}

fn keygen(dir: &Path, name: &str) -> (PathBuf, String) {
    let key = dir.join(name);
    let o = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&key)
        .output()
        .expect("ssh-keygen is needed for the SSH signature tests");
    assert!(o.status.success(), "{}", out(&o));
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    (key, public)
}

/// `ssh-keygen -Y sign -f KEY -n cutover FILE` → FILE.sig.
fn ssh_sign(key: &Path, file: &Path) -> PathBuf {
    let o = Command::new("ssh-keygen")
        .args(["-Y", "sign", "-n", "cutover", "-f"])
        .arg(key)
        .arg(file)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", out(&o));
    PathBuf::from(format!("{}.sig", file.display()))
}

/// A run stopped at a gate whose finance-deputy has an SSH key, and the approver's
/// signatures over its evidence hash: by their key, and by someone else's.
struct KeyedGate {
    rb: PathBuf,
    hash: String,
    /// The hash as `--show-evidence --hash-only` printed it, in a file.
    ev: PathBuf,
    deputy_key: PathBuf,
    deputy_pub: String,
    good: PathBuf,
    by_other: PathBuf,
}

/// Which sign-offs of a run's `--json` summary carried an SSH signature, in order.
fn signed(o: &Output) -> Vec<bool> {
    json(o)["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["signed"].as_bool().unwrap())
        .collect()
}

fn keyed_gate(s: &Scratch) -> KeyedGate {
    let keys = s.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let (deputy_key, deputy_pub) = keygen(&keys, "finance-deputy");
    let (other_key, _) = keygen(&keys, "someone-else");
    let rb = runbook(s, &two_roles(Some(&deputy_pub)));
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    // The approver's commands: the hash to a file, signed with their key.
    let hash = evidence_hash(s, &rb);
    let ev = s.path("evidence.sha256");
    std::fs::write(&ev, format!("{hash}\n")).unwrap();
    let good = ssh_sign(&deputy_key, &ev);
    let other_dir = s.path("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let ev_other = other_dir.join("evidence.sha256");
    std::fs::copy(&ev, &ev_other).unwrap();
    let by_other = ssh_sign(&other_key, &ev_other);
    KeyedGate {
        rb,
        hash,
        ev,
        deputy_key,
        deputy_pub,
        good,
        by_other,
    }
}

#[test]
fn an_ssh_signed_sign_off_verifies_and_forged_ones_are_refused() {
    let s = Scratch::with_fixture("small");
    let k = keyed_gate(&s);
    let (rb, hash, ev, good, by_other) = (k.rb, k.hash, k.ev, k.good, k.by_other);
    // ssh-keygen itself verifies what cutover accepts.
    let signers = s.path("allowed_signers");
    std::fs::write(&signers, format!("finance-deputy {}", k.deputy_pub)).unwrap();
    let v = Command::new("ssh-keygen")
        .args([
            "-Y",
            "verify",
            "-n",
            "cutover",
            "-I",
            "finance-deputy",
            "-f",
        ])
        .arg(&signers)
        .arg("-s")
        .arg(&good)
        .stdin(std::fs::File::open(&ev).unwrap())
        .output()
        .unwrap();
    assert!(v.status.success(), "{}", out(&v));

    let refused = |extra: &[&str], why: &str, n: usize| {
        let o = sign_as(&s, &rb, "finance-deputy", "finance-controller", extra);
        assert_eq!(code(&o), 2, "{}", out(&o));
        assert!(stderr(&o).contains(why), "expected '{why}': {}", out(&o));
        assert_eq!(kinds(&s, "sign_off_refused"), n);
    };
    // Unsigned.
    refused(&[], "carries no signature", 1);
    // Signed with another key.
    refused(
        &["--signature", by_other.to_str().unwrap()],
        "another key",
        2,
    );
    // The right key over an altered hash.
    let altered_dir = s.path("altered");
    std::fs::create_dir_all(&altered_dir).unwrap();
    let altered = altered_dir.join("evidence.sha256");
    let mut h = hash.clone().into_bytes();
    h[0] = if h[0] == b'0' { b'1' } else { b'0' };
    std::fs::write(&altered, format!("{}\n", String::from_utf8(h).unwrap())).unwrap();
    let forged = ssh_sign(&k.deputy_key, &altered);
    refused(
        &["--signature", forged.to_str().unwrap()],
        "does not cover",
        3,
    );
    assert_eq!(kinds(&s, "sign_off_recorded"), 0);

    // The real signature counts; with the application owner the run completes.
    let o = sign_as(
        &s,
        &rb,
        "finance-deputy",
        "finance-controller",
        &["--signature", good.to_str().unwrap()],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    let o = sign_as(&s, &rb, "application-owner", "application-owner", &[]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    let o = s.cutover(&["run", "--json"], &rb);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_eq!(signed(&o), [true, false]);
    assert!(loaded_invoices(&s) > 0);

    // The dossier says which sign-off carried a verified SSH signature.
    let journal = s.path("journal.db");
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_cutover"))
        .arg("report")
        .arg(&rb)
        .args(["--format", "json", "--journal"])
        .arg(&journal)
        .output()
        .unwrap();
    assert_eq!(code(&o), 0, "{}", out(&o));
    let d = json(&o);
    let status: Vec<(String, String)> = d["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["name"].as_str().unwrap().to_string(),
                x["signature"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        status,
        [
            ("finance-deputy".to_string(), "verified".to_string()),
            ("application-owner".to_string(), "unsigned".to_string())
        ]
    );
}

#[test]
fn the_gate_lint_names_file_line_and_key() {
    let s = Scratch::with_fixture("small");
    let keys = s.path("keys");
    std::fs::create_dir_all(&keys).unwrap();
    let ecdsa = keys.join("owner");
    let o = Command::new("ssh-keygen")
        // nistp384: cutover verifies ed25519, nistp256 and RSA keys only.
        .args([
            "-q", "-t", "ecdsa", "-b", "384", "-N", "", "-C", "owner", "-f",
        ])
        .arg(&ecdsa)
        .output()
        .expect("ssh-keygen is needed for the SSH signature tests");
    assert!(o.status.success(), "{}", out(&o));
    let ecdsa = std::fs::read_to_string(ecdsa.with_extension("pub")).unwrap();
    let gate = two_roles(Some("ssh-ed25519 not-a-key finance-deputy"))
        .replacen("quorum = 1", "quorum = 3", 1)
        .replacen(
            "\"application-owner\", \"finance-controller\"",
            &format!(
                "{{ name = \"application-owner\", ssh_key = \"{}\" }}, \"finance-controller\"",
                ecdsa.trim()
            ),
            1,
        );
    let rb = runbook(&s, &gate);
    let text = std::fs::read_to_string(&rb).unwrap();
    let line_of = |needle: &str| text.lines().position(|l| l.contains(needle)).unwrap() + 1;
    let o = Command::new(BIN).arg("check").arg(&rb).output().unwrap();
    assert_eq!(code(&o), 2, "{}", out(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("rb.toml:{}:", line_of("quorum = 3")))
            && err.contains("gates.go_live.roles[0].quorum")
            && err.contains("needs 3 GO but names 2 approver(s)"),
        "{err}"
    );
    assert!(
        err.contains(&format!("rb.toml:{}:", line_of("not-a-key")))
            && err.contains("ssh_key of finance-deputy: not an OpenSSH public key"),
        "{err}"
    );
    assert!(
        err.contains(&format!("rb.toml:{}:", line_of("ecdsa-sha2")))
            && err.contains("ssh_key of application-owner: ecdsa-sha2-nistp384 keys are not supported, only ssh-ed25519, ecdsa-sha2-nistp256, ssh-rsa"),
        "{err}"
    );
}

#[test]
fn a_no_go_from_cutover_sign_stops_the_run() {
    let s = Scratch::with_fixture("small");
    let rb = runbook(&s, &two_roles(None));
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 4, "{}", out(&o));
    let o = sign_as(&s, &rb, "finance-controller", "finance-controller", &[]);
    assert_eq!(code(&o), 0, "{}", out(&o));
    // A NO-GO needs its reason.
    let o = sign(
        &s,
        &rb,
        &[
            "--as",
            "application-owner",
            "--role",
            "application-owner",
            "--decision",
            "no-go",
        ],
    );
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(stderr(&o).contains("a NO-GO needs a reason"), "{}", out(&o));
    let o = sign(
        &s,
        &rb,
        &[
            "--as",
            "application-owner",
            "--role",
            "application-owner",
            "--decision",
            "no-go",
            "--comment",
            "invoice totals differ",
        ],
    );
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("NO-GO: the run stops"));
    let o = s.cutover(&["run"], &rb);
    assert_eq!(code(&o), 5, "{}", out(&o));
    assert!(
        stderr(&o)
            .contains("NO-GO by application-owner (application-owner): invoice totals differ"),
        "{}",
        out(&o)
    );
    assert_eq!(loaded_invoices_or_none(&s), None);
    // The gate is decided: nothing more to sign.
    let o = sign_as(&s, &rb, "finance-deputy", "finance-controller", &[]);
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(stderr(&o).contains("already decided"), "{}", out(&o));
}

#[test]
fn a_sign_off_flag_carries_its_ssh_signature_verified_like_cutover_signs() {
    let s = Scratch::with_fixture("small");
    // The hash exists once the gate has opened: signed now, given when the run goes on.
    let KeyedGate {
        rb, good, by_other, ..
    } = keyed_gate(&s);
    let deputy = "finance-deputy|finance-controller|go|balances reconciled";
    let run = |extra: &[String]| {
        let mut a = vec!["run".to_string(), "--sign-off".into(), deputy.into()];
        a.extend(extra.iter().cloned());
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        s.cutover(&a, &rb)
    };
    let sig = |p: &Path| {
        vec![
            "--signature".to_string(),
            format!("finance-deputy={}", p.display()),
        ]
    };
    // No --sign-off by that name, or a file that is not there: refused before anything runs.
    let o = run(&["--signature".into(), format!("nobody={}", good.display())]);
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(
        stderr(&o).contains("no --sign-off is given by nobody"),
        "{}",
        out(&o)
    );
    let o = run(&sig(&s.path("missing.sig")));
    assert_eq!(code(&o), 2, "{}", out(&o));
    assert!(stderr(&o).contains("cannot be read"), "{}", out(&o));
    assert_eq!(kinds(&s, "sign_off_refused"), 0);
    // Unsigned, then signed by another key: refused and journaled as refused; the run waits.
    let o = run(&[]);
    assert_eq!(code(&o), 4, "{}", out(&o));
    assert!(stderr(&o).contains("carries no signature"), "{}", out(&o));
    assert_eq!(kinds(&s, "sign_off_refused"), 1);
    let o = run(&sig(&by_other));
    assert_eq!(code(&o), 4, "{}", out(&o));
    assert!(stderr(&o).contains("another key"), "{}", out(&o));
    assert_eq!(kinds(&s, "sign_off_refused"), 2);
    assert_eq!(kinds(&s, "sign_off_recorded"), 0);
    // The approver's own signature counts; with the application owner the run completes.
    let mut extra = sig(&good);
    extra.extend([
        "--sign-off".to_string(),
        "application-owner|application-owner|go|spot-checked".into(),
        "--json".into(),
    ]);
    let o = run(&extra);
    assert_eq!(code(&o), 0, "{}", out(&o));
    assert_eq!(signed(&o), [true, false]);
    assert!(loaded_invoices(&s) > 0);
}
