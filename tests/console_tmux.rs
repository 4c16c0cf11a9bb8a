//! End to end through the console: the real binary runs `cutover demo` inside tmux; the test
//! reads the screen, signs the gate through the dialog (two approvers, each typing the
//! production database's name to confirm the GO), checks what the screen shows and that
//! the cutover completes. Needs tmux, which every machine of this project has; it fails
//! loudly without it.

mod common;
use common::*;

use std::process::Command;
use std::time::{Duration, Instant};

use common::tmux::Tmux;

#[test]
fn demo_cutover_through_the_console() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let done = dir.path().join("exit-code");
    // `env -u CI`: under CI the binary falls back to headless, and a tmux server that is
    // already running keeps its own environment, so unset it in the command itself.
    let cmd = format!(
        "env -u CI {BIN} demo --rows 4000 --dir {} ; echo $? > {}",
        demo.display(),
        done.display()
    );
    let t = Tmux::start(&cmd, 120);

    // The dialog's last row: a frame is written top to bottom, so the rows above are there.
    let s = t.wait_for("Enter submit", 60);
    assert!(s.contains("PRODUCTION"), "production is marked:\n{s}");
    assert!(
        s.contains("✓ GO") && s.contains("Signed: migration_lead 0 of 1, finance 0 of 1"),
        "the dialog shows the recommendation and the count per role:\n{s}"
    );
    assert!(
        s.contains("✓ passed") && s.contains("validate"),
        "steps up to validate passed:\n{s}"
    );
    // 21: the two invoice sums are per currency, 6 each (EUR, GBP, USD; and XYZ, eur and
    // a blank one, found only on rejected rows, which show what stays behind).
    assert!(
        s.contains("Reconciliation 21 pass · 0 warn · 0 fail")
            && s.contains("customers 3.84% ≤ 25.00% ✓")
            && s.contains("✓ fits"),
        "the dialog shows the evidence: checks, reject rates against budget, timing:\n{s}"
    );

    // The gate is followed by the production load: a GO needs the production database's
    // name typed, which the dialog states.
    let name = s
        .lines()
        .find_map(|l| l.split("database's name typed: ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("the dialog asks for the database's name:\n{s}"))
        .to_string();

    // Two approvers sign GO through the dialog (the NO-GO-needs-a-reason rule is covered
    // by the app::update tests); the dialog stays open, cleared, until the quorum is met.
    // The first mistypes the name: refused, then corrected.
    let mistyped = format!("{name}x");
    t.keys(&[
        "Tester One",
        "Tab",
        "finance",
        "Tab",
        "sums reconciled",
        "Tab",
        "g",
        "Tab",
        &mistyped,
        "Enter",
    ]);
    // "✗ no match" shows while the name is being typed; the refusal comes after Enter.
    let s = t.wait_for("typed exactly", 10);
    assert!(s.contains("✗ no match"), "{s}");
    assert!(
        s.contains("needs the production database's name typed exactly")
            && s.contains("Signed: migration_lead 0 of 1, finance 0 of 1"),
        "a GO with the wrong name is refused:\n{s}"
    );
    t.keys(&["BSpace", "Enter"]);
    t.wait_for("Signed: migration_lead 0 of 1, finance 1 of 1", 10);
    t.keys(&[
        "Migration lead",
        "Tab",
        "migration_lead",
        "Tab",
        "rehearsal figures match",
        "Tab",
        "g",
        "Tab",
        &name,
        "Enter",
    ]);

    let s = t.wait_for("COMPLETED", 60);
    assert!(s.contains("unfreeze"), "{s}");
    // The reject table: switch to it and filter to one entity, then to one rule.
    t.keys(&["1"]);
    t.wait_for("Rejects · ", 5);
    let mut s = t.screen();
    for _ in 0..6 {
        if s.contains("rows · customers ") {
            break;
        }
        t.keys(&["f"]);
        std::thread::sleep(Duration::from_millis(300));
        s = t.screen();
    }
    assert!(s.contains("rows · customers "), "{s}");
    t.keys(&["r"]);
    let s = t.wait_for("rows · customers · rule required", 5);
    assert!(s.contains("No Id GmbH"), "{s}");
    // Search by value within the filter: case-insensitive, over every cell.
    t.keys(&["/", "no id", "Enter"]);
    let s = t.wait_for("2 matches · customers · rule required · “no id”", 10);
    assert!(
        s.contains("No Id GmbH") && s.contains("No Id Either") && !s.contains("Blank Id"),
        "{s}"
    );
    // The detail of the first match: its source line and values as they were, its reason.
    t.keys(&["Enter"]);
    let s = t.wait_for("Source line 135", 5);
    assert!(
        s.contains("legacy_id    =") && s.contains("name         = No Id GmbH"),
        "{s}"
    );
    assert!(
        s.contains("Reasons (1)") && s.contains("✗ required · legacy_id: is required"),
        "{s}"
    );
    // The second match has two reasons.
    t.keys(&["Escape", "Down", "Enter"]);
    let s = t.wait_for("Source line 173", 5);
    assert!(
        s.contains("Reasons (2)") && s.contains("✗ email · email: 'bad email@example.com'"),
        "{s}"
    );
    // Export the filtered rows next to the reject files.
    t.keys(&["Escape", "x"]);
    t.wait_for("Exported 2 rows to", 10);
    let exported: Vec<_> = walk(&demo)
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("customers.rejects.export-"))
        })
        .collect();
    assert_eq!(exported.len(), 1, "{exported:?}");
    let text = std::fs::read_to_string(&exported[0]).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].starts_with("legacy_id,name,")
            && lines[0].ends_with("_line,_rule,_field,_message")
    );
    assert!(
        lines[1].contains("No Id GmbH") && lines[2].contains("No Id Either"),
        "{text}"
    );
    t.keys(&["q"]);
    let t0 = Instant::now();
    while !done.exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the console did not exit after q"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(std::fs::read_to_string(&done).unwrap().trim(), "0");
    // The journal holds both sign-offs as typed.
    let summary = Command::new(BIN)
        .arg("summary")
        .arg(demo.join("tms.toml"))
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    let signers: Vec<(String, String)> = j["sign_offs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["name"].as_str().unwrap().to_string(),
                s["decision"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        signers,
        [
            ("Tester One".to_string(), "go".to_string()),
            ("Migration lead".to_string(), "go".to_string())
        ]
    );
    assert_eq!(j["outcome"], "completed");
}

/// In the console, Ctrl-C asks before it aborts (as `q` does) and `n` keeps the run going;
/// SIGTERM then ends it as a confirmed abort: journaled as interrupted, exit 130, and the
/// terminal given back in its normal (canonical) mode.
#[test]
fn ctrl_c_asks_and_sigterm_ends_the_console_with_the_terminal_restored() {
    let dir = tempfile::tempdir().unwrap();
    let demo = dir.path().join("demo");
    let pid_file = dir.path().join("pid");
    // The inner shell writes its pid and becomes cutover (exec); the outer one reports how
    // it ended and the terminal's mode afterwards, then stays so the screen can be read.
    let cmd = format!(
        "env -u CI sh -c 'echo $$ > {}; exec {BIN} demo --rows 4000 --dir {}'; echo EXIT=$?; \
         stty -a | tr ' ;' '\\n\\n' | grep -E -x -- '-?icanon'; sleep 60",
        pid_file.display(),
        demo.display()
    );
    let t = Tmux::start(&cmd, 120);
    t.wait_for("Enter submit", 60);
    t.keys(&["C-c"]);
    let s = t.wait_for("Abort the run and quit?", 10);
    assert!(s.contains("keep running"), "{s}");
    t.keys(&["n"]);
    let t0 = Instant::now();
    while t.screen().contains("Abort the run and quit?") {
        assert!(t0.elapsed() < Duration::from_secs(10), "{}", t.screen());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(t.screen().contains("Enter submit"), "still at the gate");

    let pid = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let s = t.wait_for("EXIT=", 20);
    assert!(s.contains("EXIT=130"), "{s}");
    assert!(
        s.lines().any(|l| l.trim() == "icanon"),
        "the terminal is back in canonical mode:\n{s}"
    );
    let summary = Command::new(BIN)
        .arg("summary")
        .arg(demo.join("tms.toml"))
        .output()
        .unwrap();
    let j: serde_json::Value = serde_json::from_slice(&summary.stdout).unwrap();
    assert_eq!(j["exit_code"], 130, "{j}");
    assert!(
        j["message"].as_str().unwrap().contains("interrupted"),
        "{j}"
    );
}

/// Every file below `dir`.
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}
