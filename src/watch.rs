//! `cutover watch`: follow a run through its journal, from this host (SQLite) or from
//! anywhere its PostgreSQL journal is reachable. Read-only by construction: it holds a
//! journal handle it only reads, no lease and no command channel to any engine; the
//! console it opens takes look-around keys only ([`Action::is_read_only`]).
//!
//! [`Action::is_read_only`]: crate::app::Action::is_read_only

use std::io::Write;
use std::time::Duration;

use anyhow::Result;
use tokio::sync::{mpsc, watch};

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

/// The console, fed by a follower; returns when the watcher quits.
pub async fn console(j: Journal, run_id: &str, scope: &str) -> Result<i32> {
    let (rec_tx, rec_rx) = mpsc::unbounded_channel();
    // Live progress is not journaled: counts move with each committed batch.
    let (_progress_tx, progress_rx) = watch::channel(Vec::new());
    // Nobody listens: a watch has no engine to command.
    let (cmd_tx, _) = mpsc::channel(1);
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
    })
    .await;
    follow.abort();
    holder.abort();
    exit?;
    Ok(0)
}

#[cfg(test)]
mod tests {
    use ratatui::crossterm::event::{KeyCode, KeyModifiers};

    use crate::app::fixtures::{app_at_gate, app_at_no_go_gate, app_mid_load, settle};
    use crate::app::{Action, App, Effect, keymap, update};

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
                    && (matches!(action, Action::Quit | Action::Interrupt)
                        || !action.is_read_only())
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

    #[test]
    fn no_key_in_watch_mode_sends_anything_to_the_run() {
        for (name, app) in [
            ("at the gate", app_at_gate as fn() -> App),
            ("at a NO-GO gate", app_at_no_go_gate),
            ("mid load", app_mid_load),
        ] {
            // Every key three times over, so a dialog a key opens sees the keys after it.
            let keys = [all_keys(), all_keys(), all_keys()].concat();
            let sent = press(app(), &keys, true);
            assert!(sent.is_empty(), "{name}: watch sent {sent:?}");
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
    }
}
