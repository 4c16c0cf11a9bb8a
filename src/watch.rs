//! `cutover watch`: follow a run through its journal, from this host (SQLite) or from
//! anywhere its PostgreSQL journal is reachable. It never changes the run: it holds no
//! lease and no command channel to any engine; the console it opens takes look-around keys
//! and the sign-off dialog only ([`Action::watch_takes`]), and a sign-off given there is
//! judged and journaled exactly as `cutover sign` does it ([`crate::sign::submit`]); the
//! waiting run reads it from the journal.
//!
//! [`Action::watch_takes`]: crate::app::Action::watch_takes

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{mpsc, watch};

use crate::control::Command;
use crate::journal::Journal;
use crate::journal::events::{Event, Record};
use crate::journal::follow::{Follower, POLL_EVERY};

/// How often the header's "held by …" is read again.
pub const HOLDER_EVERY: Duration = Duration::from_secs(2);

/// The newest run of the runbook named `name` (of any runbook when `None`).
pub async fn newest_run(j: &Journal, name: Option<&str>) -> Result<Option<String>> {
    Ok(j.run_starts()
        .await?
        .iter()
        .rev()
        .find_map(|r| match &r.event {
            Event::RunStarted {
                run_id,
                runbook_name,
                ..
            } if name.is_none_or(|n| n == runbook_name) => Some(run_id.clone()),
            _ => None,
        }))
}

/// Wait until the journal holds a run of `name`; says so once on stderr.
pub async fn wait_for_run(j: &Journal, name: Option<&str>) -> Result<String> {
    let mut said = false;
    loop {
        if let Some(r) = newest_run(j, name).await? {
            return Ok(r);
        }
        if !said {
            eprintln!(
                "no live run in journal {} yet; waiting for one to start",
                j.location
            );
            said = true;
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// "held by pid P on HOST since T", or "no live run".
pub async fn holder_line(j: &Journal, scope: &str, run_id: &str) -> String {
    match j.lease_holder(scope).await {
        Ok(Some((h, _))) => {
            let other = if !h.run_id.is_empty() && h.run_id != run_id {
                format!(" (run {})", h.run_id)
            } else {
                String::new()
            };
            format!(
                "held by pid {} on {} since {}{other}",
                h.pid, h.host, h.since
            )
        }
        Ok(None) => "no live run".to_string(),
        Err(e) => format!("lease unknown: {}", crate::steps::explain(&e)),
    }
}

/// One line per record, for scripts: `SEQ TS KIND TEXT`, tab-separated.
pub fn line(r: &Record) -> String {
    let text = crate::describe::describe(&r.event)
        .map(|(t, _)| t)
        .unwrap_or_default();
    format!(
        "{}\t{}\t{}\t{}",
        r.seq,
        r.ts,
        r.event.kind(),
        text.replace('\n', " ")
    )
}

/// `--headless`: print the run's records as they are journaled, until it finishes (or
/// stops at a gate, or after `--until`).
pub async fn headless(j: Journal, run_id: &str, out: &mut impl Write) -> Result<i32> {
    let mut f = Follower::new(j, run_id, 0);
    loop {
        for r in f.next().await? {
            // A closed pipe (`| head`) ends the watch quietly.
            if writeln!(out, "{}", line(&r))
                .and_then(|_| out.flush())
                .is_err()
            {
                return Ok(0);
            }
            if matches!(r.event, Event::RunFinished { .. }) {
                return Ok(0);
            }
        }
    }
}

/// A sign-off from the watch's dialog, as `cutover sign` gives it: judged against the run
/// as journaled and appended as recorded or refused. Returns the line to show.
pub async fn sign_off(j: &Journal, run_id: &str, s: crate::control::SignOff) -> String {
    let signature = match s
        .signature_file
        .as_deref()
        .map(crate::signoff::sshsig::read)
    {
        Some(Err(e)) => return format!("✗ sign-off not sent: {e}"),
        Some(Ok(sig)) => Some(sig),
        None => None,
    };
    let req = crate::sign::SignRequest {
        gate: s.gate,
        name: s.name,
        role: s.role,
        decision: s.decision,
        comment: s.comment,
        evidence_sha256: None,
        signature,
    };
    match crate::sign::submit(j, run_id, None, &req).await {
        Ok(Ok(judged)) => judged.line(&req, run_id),
        Ok(Err(why)) => format!("✗ sign-off not recorded: {why}"),
        Err(e) => format!("✗ sign-off not recorded: {}", crate::steps::explain(&e)),
    }
}

/// The console, fed by a follower; returns when the watcher quits.
pub async fn console(j: Journal, run_id: &str, scope: &str) -> Result<i32> {
    let (rec_tx, rec_rx) = mpsc::unbounded_channel();
    // Live progress is not journaled: counts move with each committed batch.
    let (_progress_tx, progress_rx) = watch::channel(Vec::new());
    // No engine listens: the sign-offs the dialog sends go into the journal, through
    // `cutover sign`'s own path; anything else is dropped.
    let (cmd_tx, mut cmd_rx) = mpsc::channel(4);
    let (notice_tx, notice_rx) = mpsc::unbounded_channel();
    let signer = {
        let (j, run_id) = (j.clone(), run_id.to_string());
        tokio::spawn(async move {
            while let Some(cmd) = cmd_rx.recv().await {
                if let Command::SignOff(s) = cmd {
                    let _ = notice_tx.send(sign_off(&j, &run_id, s).await);
                }
            }
        })
    };
    let (holder_tx, holder_rx) = watch::channel(holder_line(&j, scope, run_id).await);
    let follow = {
        let mut f = Follower::new(j.clone(), run_id, 0);
        tokio::spawn(async move {
            loop {
                match f.next().await {
                    Ok(recs) => {
                        for r in recs {
                            if rec_tx.send(r).is_err() {
                                return;
                            }
                        }
                    }
                    // The journal is unreachable for now: the follower picks up where it
                    // stopped once it answers again.
                    Err(e) => {
                        tracing::debug!("watch: {e:#}");
                        tokio::time::sleep(POLL_EVERY * 5).await;
                    }
                }
            }
        })
    };
    let holder = {
        let (j, scope, run_id) = (j.clone(), scope.to_string(), run_id.to_string());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(HOLDER_EVERY).await;
                let line = holder_line(&j, &scope, &run_id).await;
                holder_tx.send_if_modified(|h| {
                    let changed = *h != line;
                    *h = line;
                    changed
                });
            }
        })
    };
    let exit = crate::tui::run(crate::tui::UiChannels {
        events: rec_rx,
        progress: progress_rx,
        commands: cmd_tx,
        logs: None,
        watch: Some(holder_rx),
        notices: Some(notice_rx),
    })
    .await;
    follow.abort();
    holder.abort();
    signer.abort();
    exit?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    use crate::app::fixtures::{app_at_gate, app_at_no_go_gate, app_mid_load, settle};
    use crate::app::{Action, App, Effect, keymap, update};
    use crate::control::Command;
    use crate::journal::events::Decision;

    /// Every key the keymap could know: printable ASCII, the named keys, F-keys, with and
    /// without Ctrl, Shift and Alt.
    fn all_keys() -> Vec<(KeyCode, KeyModifiers)> {
        use KeyCode::*;
        let mut codes: Vec<KeyCode> = (0x20u8..0x7f).map(|b| Char(b as char)).collect();
        codes.extend([
            Enter, Esc, Tab, BackTab, Backspace, Delete, Insert, Up, Down, Left, Right, Home, End,
            PageUp, PageDown,
        ]);
        codes.extend((1..=12).map(F));
        let mods = [
            KeyModifiers::NONE,
            KeyModifiers::CONTROL,
            KeyModifiers::SHIFT,
            KeyModifiers::ALT,
        ];
        codes
            .into_iter()
            .flat_map(|c| mods.iter().map(move |m| (c, *m)))
            .collect()
    }

    /// Press `keys` in order, the way the watch loop does or the lead's does. Returns the
    /// commands that would have been sent.
    fn press(mut app: App, keys: &[(KeyCode, KeyModifiers)], watch: bool) -> Vec<Effect> {
        let mut sent = Vec::new();
        if watch {
            update(&mut app, Action::Watching("no live run".into()));
        }
        {
            for &(code, mods) in keys {
                let Some(action) = keymap::action_for(&app, code, mods) else {
                    continue;
                };
                if watch
                    && (matches!(action, Action::Quit | Action::Interrupt) || !action.watch_takes())
                {
                    // The watch loop leaves on a quit and drops everything else.
                    continue;
                }
                // `q` would end the lead's console: keep pressing all the same.
                let effects = update(&mut app, action);
                sent.extend(
                    settle(&mut app, effects)
                        .into_iter()
                        .filter(|e| matches!(e, Effect::Send(_))),
                );
            }
        }
        sent
    }

    /// Only sign-offs: a watch signs through the journal and changes nothing else.
    fn only_sign_offs(sent: &[Effect]) -> bool {
        sent.iter()
            .all(|e| matches!(e, Effect::Send(Command::SignOff(_))))
    }

    fn typed(text: &str) -> Vec<(KeyCode, KeyModifiers)> {
        text.chars()
            .map(|c| (KeyCode::Char(c), KeyModifiers::NONE))
            .collect()
    }

    #[test]
    fn a_watch_signs_from_its_dialog_but_holds_no_freeze() {
        let n = KeyModifiers::NONE;
        let tab = (KeyCode::Tab, n);
        // Name, role, a reason, NO-GO with `h` (hold the freeze), Enter.
        let keys = [
            typed("Finance controller"),
            vec![tab],
            typed("finance"),
            vec![tab],
            typed("AR off by 1"),
            vec![tab, (KeyCode::Char('n'), n), (KeyCode::Char('h'), n)],
            vec![(KeyCode::Enter, n)],
        ]
        .concat();
        let sent = press(app_at_gate(), &keys, true);
        let [Effect::Send(Command::SignOff(s))] = sent.as_slice() else {
            panic!("expected one sign-off: {sent:?}");
        };
        assert_eq!(
            (
                s.name.as_str(),
                s.role.as_str(),
                s.decision,
                s.comment.as_str()
            ),
            (
                "Finance controller",
                "finance",
                Decision::NoGo,
                "AR off by 1"
            )
        );
        // The lead's console sends the hold of the freeze with the same keys.
        let lead = press(app_at_gate(), &keys, false);
        assert!(
            lead.iter()
                .any(|e| matches!(e, Effect::Send(Command::HoldFreeze { .. }))),
            "{lead:?}"
        );
    }

    #[test]
    fn no_key_in_watch_mode_sends_anything_but_a_sign_off() {
        for (name, app) in [
            ("at the gate", app_at_gate as fn() -> App),
            ("at a NO-GO gate", app_at_no_go_gate),
            ("mid load", app_mid_load),
        ] {
            // Every key three times over, so a dialog a key opens sees the keys after it.
            let keys = [all_keys(), all_keys(), all_keys()].concat();
            let sent = press(app(), &keys, true);
            assert!(only_sign_offs(&sent), "{name}: watch sent {sent:?}");
        }
        // Key sequences that do send on the lead's console (an abort; a skip; a rollback
        // typed out): the filter is what keeps a watch from changing the run.
        let c = KeyModifiers::CONTROL;
        let ctrl_c_twice = [(KeyCode::Char('c'), c), (KeyCode::Char('c'), c)];
        assert!(
            !press(app_mid_load(), &ctrl_c_twice, false).is_empty(),
            "Ctrl-C twice aborts the lead's run"
        );
        assert!(press(app_mid_load(), &ctrl_c_twice, true).is_empty());
        // Mid load no gate is open: the dialog does not open, nothing is signed.
        let g_then_enter = [
            (KeyCode::Char('g'), KeyModifiers::NONE),
            (KeyCode::Enter, KeyModifiers::NONE),
        ];
        assert!(press(app_mid_load(), &g_then_enter, true).is_empty());
    }

    /// The watch's sign-off goes through `cutover sign`'s path on a real journal: a keyed
    /// approver's sign-off without a signature is journaled as refused, a file that cannot
    /// be read sends nothing, and one `ssh-keygen -Y sign` made over the evidence counts.
    #[tokio::test]
    async fn a_watch_sign_off_is_judged_and_journaled_as_cutover_sign_does() {
        use crate::app::fixtures::{RUN_ID, records_to_gate};
        use crate::journal::Journal;
        use crate::journal::events::{ApproverRule, Event};
        use std::process::Command as Sh;

        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("fc");
        let keygen = Sh::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "fc", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen is needed for the SSH signature tests");
        assert!(keygen.success());
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let j = Journal::open_path(&dir.path().join("journal.db"))
            .await
            .unwrap();
        let mut evidence = String::new();
        for mut r in records_to_gate() {
            if let Event::GateOpened {
                rule: Some(rule),
                evidence_sha256,
                ..
            } = &mut r.event
            {
                rule.roles[1].approvers.push(ApproverRule {
                    name: "Finance controller".into(),
                    ssh_key: Some(public.trim().into()),
                });
                evidence = evidence_sha256.clone();
            }
            j.append(RUN_ID, &r.event).await.unwrap();
        }
        let fc = |signature_file: Option<std::path::PathBuf>| crate::control::SignOff {
            gate: crate::app::fixtures::GATE.into(),
            name: "Finance controller".into(),
            role: "finance".into(),
            decision: Decision::Go,
            comment: "open items reconciled".into(),
            signature_file,
        };
        let kinds = |recs: &[crate::journal::events::Record]| -> Vec<&'static str> {
            recs.iter().map(|r| r.event.kind()).collect()
        };
        let before = j.run_records(RUN_ID).await.unwrap().len();

        let line = super::sign_off(&j, RUN_ID, fc(None)).await;
        assert!(line.contains("carries no signature"), "{line}");
        let line = super::sign_off(&j, RUN_ID, fc(Some(dir.path().join("none.sig")))).await;
        assert!(
            line.contains("not sent") && line.contains("cannot be read"),
            "{line}"
        );

        let ev = dir.path().join("evidence.sha256");
        std::fs::write(&ev, crate::signoff::sshsig::message(&evidence)).unwrap();
        let signed = Sh::new("ssh-keygen")
            .args(["-Y", "sign", "-n", "cutover", "-f"])
            .arg(&key)
            .arg(&ev)
            .output()
            .unwrap();
        assert!(signed.status.success());
        let line = super::sign_off(&j, RUN_ID, fc(Some(ev.with_extension("sha256.sig")))).await;
        assert!(line.contains("SSH signature verified"), "{line}");

        let recs = j.run_records(RUN_ID).await.unwrap();
        assert_eq!(
            kinds(&recs[before..]),
            ["sign_off_refused", "sign_off_recorded"]
        );
        let Event::SignOffRecorded { signature, .. } = &recs[before + 1].event else {
            unreachable!()
        };
        assert!(
            signature
                .as_deref()
                .is_some_and(|s| s.contains("BEGIN SSH SIGNATURE"))
        );
    }
}
