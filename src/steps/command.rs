//! The `command` step: a shell command with a timeout, its output kept for the journal.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;

use super::{Executor, StepDone, Stop, done};
use crate::journal::events::{Event, StepStatus};
use crate::runbook::lint::parse_duration;

/// Output kept per command: the tail, where errors are.
pub const KEEP_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutcome {
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    /// stdout then stderr, each cut to its last [`KEEP_BYTES`] / 2 bytes.
    pub output: String,
}

/// Run `sh -c command` in its own process group; at `timeout` the whole group is killed,
/// so a command that spawned children does not leave them running.
pub async fn run(
    command: &str,
    timeout: Duration,
    env: &[(&str, String)],
) -> Result<CommandOutcome> {
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().context("cannot start sh")?;
    let pgid = child.id();
    let mut out = child.stdout.take().context("stdout")?;
    let mut err = child.stderr.take().context("stderr")?;
    let read_out = tokio::spawn(async move { tail(&mut out).await });
    let read_err = tokio::spawn(async move { tail(&mut err).await });
    let (exit_code, timed_out) = match tokio::time::timeout(timeout, child.wait()).await {
        Ok(status) => (status.context("waiting for the command")?.code(), false),
        Err(_) => {
            if let Some(pid) = pgid {
                // SIGKILL to the process group: the shell and everything it started.
                let _ = std::process::Command::new("kill")
                    .args(["-s", "KILL", "--", &format!("-{pid}")])
                    .status();
            }
            let _ = child.kill().await;
            (None, true)
        }
    };
    let mut output = read_out.await.unwrap_or_default();
    let e = read_err.await.unwrap_or_default();
    if !e.is_empty() {
        if !output.is_empty() && !output.ends_with('\n') {
            output.push('\n');
        }
        output.push_str(&e);
    }
    Ok(CommandOutcome {
        exit_code,
        timed_out,
        output,
    })
}

async fn tail<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> String {
    let mut keep: Vec<u8> = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                keep.extend_from_slice(&buf[..n]);
                if keep.len() > KEEP_BYTES {
                    keep.drain(..keep.len() - KEEP_BYTES / 2);
                }
            }
        }
    }
    if keep.len() > KEEP_BYTES / 2 {
        keep.drain(..keep.len() - KEEP_BYTES / 2);
    }
    String::from_utf8_lossy(&keep).into_owned()
}

impl Executor {
    pub(super) async fn command(
        &mut self,
        step: &crate::runbook::format::Step,
    ) -> Result<StepDone, Stop> {
        let cmd = step.run.clone().context("command step without run")?;
        if self.prior_view.commands_ok.contains(&step.id) {
            return done(
                StepStatus::Passed,
                format!("`{cmd}` succeeded before the interruption"),
            );
        }
        let timeout = step
            .timeout
            .as_deref()
            .and_then(parse_duration)
            .unwrap_or(std::time::Duration::from_secs(600));
        let env = [
            ("CUTOVER_RUN_ID", self.run_id.clone()),
            ("CUTOVER_RUN_DIR", self.run_dir.display().to_string()),
            ("CUTOVER_STEP", step.id.clone()),
        ];
        let r = run(&cmd, timeout, &env).await?;
        self.emit(Event::CommandRan {
            step: step.id.clone(),
            command: cmd.clone(),
            exit_code: r.exit_code,
            timed_out: r.timed_out,
            output: r.output.clone(),
        })
        .await?;
        let last = r.output.lines().last().unwrap_or("").to_string();
        match (r.exit_code, r.timed_out) {
            (Some(0), _) => done(StepStatus::Passed, format!("`{cmd}` exited 0; {last}")),
            (_, true) => Err(Stop::Failed(anyhow::anyhow!(
                "`{cmd}` was still running after {}s and was killed; raise the step's timeout or fix the command",
                timeout.as_secs()
            ))),
            (code, _) => Err(Stop::Failed(anyhow::anyhow!(
                "`{cmd}` failed with exit code {}: {last}",
                code.map(|c| c.to_string())
                    .unwrap_or_else(|| "none (signal)".into())
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn output_and_exit_code_are_captured() {
        let r = run(
            "echo out; echo err >&2; exit 3",
            Duration::from_secs(10),
            &[],
        )
        .await
        .unwrap();
        assert_eq!(r.exit_code, Some(3));
        assert!(!r.timed_out);
        assert_eq!(r.output, "out\nerr\n");
    }

    #[tokio::test]
    async fn timeout_kills_the_command_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let marker = dir.path().join("late");
        let cmd = format!("(sleep 2; touch {}) & sleep 30", marker.display());
        let t0 = std::time::Instant::now();
        let r = run(&cmd, Duration::from_millis(300), &[]).await.unwrap();
        assert!(r.timed_out);
        assert_eq!(r.exit_code, None);
        assert!(t0.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_secs(3));
        assert!(
            !marker.exists(),
            "a child of the command outlived the timeout"
        );
    }

    #[tokio::test]
    async fn only_the_tail_of_a_long_output_is_kept() {
        let r = run("seq 1 100000", Duration::from_secs(20), &[])
            .await
            .unwrap();
        assert!(r.output.len() <= KEEP_BYTES / 2);
        assert!(r.output.ends_with("99999\n100000\n"));
    }

    #[tokio::test]
    async fn environment_reaches_the_command() {
        let r = run(
            "printf %s \"$CUTOVER_RUN_ID\"",
            Duration::from_secs(5),
            &[("CUTOVER_RUN_ID", "r-42".into())],
        )
        .await
        .unwrap();
        assert_eq!(r.output, "r-42");
    }
}
