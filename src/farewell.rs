//! What a run command prints when it ends (after the console's screen is gone): the
//! outcome, the run id, and the command that picks the run up again or shows it.

use crate::app::outcome_glyph_word;
use crate::journal::events::Outcome;

/// How the run was started, to say how to go on with it.
#[derive(Debug, Clone, Default)]
pub struct Invocation {
    /// The runbook as it was given on the command line.
    pub runbook: String,
    /// `--journal`, when one was given.
    pub journal: Option<String>,
    /// `--var NAME=VALUE` flags as given (resuming needs the same values).
    pub vars: Vec<String>,
}

impl Invocation {
    fn args(&self, with_vars: bool) -> String {
        let mut out = shell_word(&self.runbook);
        if with_vars {
            for v in &self.vars {
                out.push_str(" --var ");
                out.push_str(&shell_word(v));
            }
        }
        if let Some(j) = &self.journal {
            out.push_str(" --journal ");
            out.push_str(&shell_word(j));
        }
        out
    }
}

/// A word as a POSIX shell reads it back: bare when it is plain, else single-quoted.
fn shell_word(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c));
    if plain {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// The lines printed on leaving: outcome and run id, then how to resume an unfinished run
/// (or look at a finished one).
pub fn lines(
    inv: &Invocation,
    run_id: &str,
    outcome: Option<(Outcome, i32, &str)>,
    resumable: bool,
) -> Vec<String> {
    let mut out = Vec::new();
    match outcome {
        Some((o, code, message)) => {
            let (g, w, _) = outcome_glyph_word(o);
            out.push(format!("run {run_id}: {g} {w} (exit {code}): {message}"));
        }
        None => out.push(format!("run {run_id}: left before it finished")),
    }
    if resumable {
        out.push(format!(
            "resume it with: cutover run {}   (the same command continues run {run_id})",
            inv.args(true)
        ));
    }
    out.push(format!(
        "what happened: cutover summary {} --run {run_id}",
        inv.args(false)
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv() -> Invocation {
        Invocation {
            runbook: "cutover-demo/tms.toml".into(),
            journal: None,
            vars: vec!["extract_dir=./my extract".into()],
        }
    }

    #[test]
    fn an_unfinished_run_says_how_to_resume_a_finished_one_does_not() {
        let l = lines(
            &inv(),
            "run-20261121-01",
            Some((Outcome::WaitingAtGate, 4, "waiting at go_live")),
            true,
        );
        assert_eq!(
            l[0],
            "run run-20261121-01: ? WAITING AT GATE (exit 4): waiting at go_live"
        );
        assert!(
            l[1].starts_with(
                "resume it with: cutover run cutover-demo/tms.toml --var 'extract_dir=./my extract'"
            ),
            "{l:?}"
        );
        assert_eq!(
            l[2],
            "what happened: cutover summary cutover-demo/tms.toml --run run-20261121-01"
        );
        let done = lines(
            &inv(),
            "run-20261121-01",
            Some((Outcome::Completed, 0, "all steps passed")),
            false,
        );
        assert!(done.iter().all(|l| !l.contains("resume")), "{done:?}");
        assert!(done[0].contains("COMPLETED"), "{done:?}");
    }

    #[test]
    fn shell_words_survive_a_copy_and_paste() {
        assert_eq!(shell_word("a/b.toml"), "a/b.toml");
        assert_eq!(shell_word("it's here"), r"'it'\''s here'");
        assert_eq!(shell_word(""), "''");
    }
}
