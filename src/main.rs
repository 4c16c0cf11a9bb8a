//! `cutover` command line: parse flags, set up logging and the journal, then hand the run to
//! the executor and the console (TUI) or the headless printer. I/O lives here, at the edge.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use tokio::sync::{mpsc, watch};

use cutover::control::{SignOff, Skip};
use cutover::journal::events::RunMode;
use cutover::journal::lease::{self, Lease, LeaseLost, Taken};
use cutover::journal::{Head, Journal};
use cutover::runbook::{self, Plan};
use cutover::steps::{Channels, Executor, RunOptions, exit};

/// mimalloc rather than glibc's malloc: in a 1M-invoice rehearsal into PostgreSQL, glibc's
/// allocator and frees were a third of the client's CPU (perf), and mimalloc halved the
/// client's CPU time (20.7 s → 10.4 s user) and lowered its peak RSS (250 → 211 MB).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc keeps freed pages for a while and commits its arenas eagerly, which held
/// about 50 MB more at the peak of that rehearsal (122 and 155 MB against 70 MB): give
/// freed memory back at once and commit arenas as they are used. Set before `main`, from
/// the ELF initialisers, because the first arena is reserved by the first allocation;
/// mimalloc v3's option numbers (`mimalloc.h`, `mi_option_e`). The environment
/// (`MIMALLOC_PURGE_DELAY`, `MIMALLOC_ARENA_EAGER_COMMIT`) still decides when set.
#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static TUNE_ALLOCATOR: extern "C" fn() = {
    extern "C" fn tune() {
        const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
        const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
        for (option, name) in [
            (ARENA_EAGER_COMMIT, "MIMALLOC_ARENA_EAGER_COMMIT"),
            (PURGE_DELAY, "MIMALLOC_PURGE_DELAY"),
        ] {
            if std::env::var_os(name).is_none() {
                // SAFETY: sets one option value; nothing else runs yet.
                unsafe { libmimalloc_sys::mi_option_set(option, 0) };
            }
        }
    }
    tune
};

const EXIT_CODES: &str = "\
Exit codes:
  0    success (or stopped where --until asked)
  1    infrastructure failure (database unreachable, disk full, backup failed)
  2    invalid input (bad flags, invalid runbook, bad --var or --sign-off); a refused `cutover sign`
  3    reconciliation failed (a validate or verify check failed)
  4    waiting at a gate (not enough GO sign-offs given)
  5    NO-GO recorded at a gate (the legacy is reopened unless --hold-freeze)
  6    rolled back (production restored from the backup and verified, or never loaded)
  7    the cutover window ran out (headless): `cutover rollback`, or `cutover run` to go on
  8    another process drives this runbook's run (refused), or took it over (this one stopped)
  9    `journal verify --expect-head`: the journal does not reach the expected head
  10   preflight failed (check --connect, or the start of run/rehearse): nothing was changed
  130  interrupted (Ctrl-C, SIGTERM or SIGHUP); `cutover run` resumes it";

#[derive(Parser)]
#[command(name = "cutover", version, about = "Drive a legacy-data cutover: runbook, ETL, reconciliation, sign-off gates, rollback.",
    after_help = EXIT_CODES,
    after_long_help = format!("Examples:\n  cutover demo\n  cutover check runbooks/tms.toml\n  cutover rehearse runbooks/tms.toml --headless --json --var extract_dir=./extract\n  cutover run runbooks/tms.toml --headless --sign-off \"Migration lead|migration_lead|go|counts match\" --sign-off \"Finance controller|finance|go|sums match\"\n\n{EXIT_CODES}"))]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Generate a dirty legacy database and run the reference cutover against SQLite files.
    Demo(DemoArgs),
    /// Validate a runbook and every reference in it; exit 2 if it is invalid. With
    /// --connect, also the preflight: connect to every environment and check that each
    /// step can do its work; exit 10 if a finding fails.
    Check {
        runbook: PathBuf,
        /// Override a runbook variable: NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Run the preflight against the environments (nothing is changed).
        #[arg(long)]
        connect: bool,
        /// With --connect: print the findings as JSON on stdout.
        #[arg(long, requires = "connect")]
        json: bool,
        /// With --connect: the journal the run would use (checked for writing).
        #[arg(long, env = "CUTOVER_JOURNAL")]
        journal: Option<String>,
        /// With --connect: the artifacts folder the run would use (checked for writing).
        #[arg(long, env = "CUTOVER_ARTIFACTS")]
        artifacts: Option<PathBuf>,
    },
    /// Run the whole cutover: backup → freeze → extract → dry_run → validate → sign_off → load → verify → unfreeze.
    Run(RunArgs),
    /// Rehearse: extract → dry_run → validate only, as often as needed before the weekend.
    Rehearse(RunArgs),
    /// Run the rollback plan of the newest run now: restore production from its backup,
    /// verify it against the pre-cutover snapshot, reopen the legacy system.
    Rollback {
        runbook: PathBuf,
        /// The production database's name, typed out to confirm.
        #[arg(long, value_name = "DATABASE")]
        confirm: String,
        /// Why, for the journal.
        #[arg(long)]
        reason: String,
        /// Override a runbook variable: NAME=VALUE (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        #[arg(long, env = "CUTOVER_JOURNAL")]
        journal: Option<String>,
    },
    /// Print the JSON summary of a run from the journal (the newest run by default).
    Summary {
        runbook: PathBuf,
        #[arg(long)]
        run: Option<String>,
        #[arg(long, env = "CUTOVER_JOURNAL")]
        journal: Option<String>,
    },
    /// Sign the waiting gate as yourself, from any terminal that reaches the journal: the
    /// sign-off is judged by the gate's rule and journaled (refused ones too); the waiting
    /// run goes on once the quorum is met. Exit 0 when it counts, 2 when refused.
    Sign(SignArgs),
    /// Write the cutover dossier of a run (the newest by default): timeline, window,
    /// reconciliation, rejects and the money left behind, sign-offs, overrides, skips,
    /// hashes and the journal's verification; as Markdown, one self-contained HTML file or JSON.
    Report {
        runbook: PathBuf,
        #[arg(long)]
        run: Option<String>,
        #[arg(long, value_enum, default_value = "md")]
        format: cutover::report::Format,
        /// Write here instead of stdout.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
        #[arg(long, env = "CUTOVER_JOURNAL")]
        journal: Option<String>,
    },
    /// Follow a run live through its journal, read-only: the console's views plus who
    /// holds the run. Works beside the run (SQLite) or from anywhere its PostgreSQL
    /// journal is reachable (`--journal postgres://…`).
    Watch {
        runbook: PathBuf,
        /// The run to follow (default: the newest run of this runbook).
        #[arg(long)]
        run: Option<String>,
        #[arg(long, env = "CUTOVER_JOURNAL")]
        journal: Option<String>,
        /// No console: one tab-separated line per record (SEQ TS KIND TEXT) on stdout,
        /// until the run finishes.
        #[arg(long)]
        headless: bool,
    },
    /// Journal tools.
    Journal {
        #[command(subcommand)]
        cmd: JournalCmd,
    },
}

#[derive(Subcommand)]
enum JournalCmd {
    /// Recompute the hash chain of a journal and print its head (SEQ:HASH of the last
    /// record); exit 1 at the first broken link.
    Verify {
        /// Runbook whose journal to verify (`.cutover/<runbook name>/journal.db` beside it), unless --journal.
        runbook: Option<PathBuf>,
        #[arg(long, env = "CUTOVER_JOURNAL")]
        journal: Option<String>,
        /// The head a run printed when it finished (also in its summary.json): exit 9 unless
        /// the journal still reaches it, record SEQ with exactly that HASH (a cut-off tail).
        #[arg(long, value_name = "SEQ:HASH")]
        expect_head: Option<Head>,
    },
}

#[derive(Args)]
struct SignArgs {
    runbook: PathBuf,
    /// The gate to sign (the runbook's [gates.NAME]).
    #[arg(long)]
    gate: String,
    /// Your name, as the runbook lists you among the gate's approvers.
    #[arg(
        long = "as",
        value_name = "NAME",
        required_unless_present = "show_evidence"
    )]
    name: Option<String>,
    /// The role you sign for.
    #[arg(long, required_unless_present = "show_evidence")]
    role: Option<String>,
    /// go or no-go.
    #[arg(long, value_parser = ["go", "no-go"], required_unless_present = "show_evidence")]
    decision: Option<String>,
    /// Why (required for a NO-GO, and for a GO against a NO-GO recommendation).
    #[arg(long, default_value = "")]
    comment: String,
    /// `ssh-keygen -Y sign -n cutover` signature file over the evidence hash (required
    /// when the runbook lists your ssh_key).
    #[arg(long, value_name = "FILE")]
    signature: Option<PathBuf>,
    /// The evidence hash you were shown (`--show-evidence`); default: the gate's current one.
    #[arg(long, value_name = "SHA256")]
    evidence: Option<String>,
    /// Print the evidence the gate shows, as canonical JSON, and its SHA-256; sign nothing.
    #[arg(long)]
    show_evidence: bool,
    /// With --show-evidence: print only the hash line (the file to sign with ssh-keygen).
    #[arg(long, requires = "show_evidence")]
    hash_only: bool,
    /// Override a runbook variable: NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    #[arg(long, env = "CUTOVER_JOURNAL")]
    journal: Option<String>,
}

#[derive(Args, Clone)]
struct RunArgs {
    runbook: PathBuf,
    #[command(flatten)]
    common: CommonRun,
}

#[derive(Args, Clone, Default)]
struct CommonRun {
    /// Override a runbook variable: NAME=VALUE (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    vars: Vec<String>,
    /// No terminal UI: progress lines on stderr (automatic when stdout is not a terminal or CI is set).
    #[arg(long, alias = "no-tui")]
    headless: bool,
    /// Print the final summary as JSON on stdout.
    #[arg(long)]
    json: bool,
    /// Stop after this step id.
    #[arg(long, value_name = "STEP")]
    until: Option<String>,
    /// A sign-off for the gate: "NAME|ROLE|go|COMMENT" or "NAME|ROLE|no-go|REASON" (repeatable).
    #[arg(long = "sign-off", value_name = "NAME|ROLE|DECISION|COMMENT")]
    sign_offs: Vec<String>,
    /// The SSH signature of NAME's --sign-off: "NAME=FILE", a file `ssh-keygen -Y sign -n
    /// cutover` made over the gate's evidence hash (repeatable; for approvers with ssh_key).
    #[arg(long = "signature", value_name = "NAME=FILE")]
    signatures: Vec<String>,
    /// Skip a step: "STEP|NAME|REASON", journaled with who asked and why (repeatable).
    /// Only freeze, validate, verify, unfreeze and command steps can be skipped.
    #[arg(long = "skip", value_name = "STEP|NAME|REASON")]
    skips: Vec<String>,
    /// Journal location: a path, a sqlite: URL or a postgres:// URL (password via PGPASSWORD).
    /// Default: .cutover/<runbook name>/journal.db beside the runbook.
    #[arg(long, env = "CUTOVER_JOURNAL")]
    journal: Option<String>,
    /// Folder for run artifacts (extract, rejects, summary). Default: runs/ beside the journal.
    #[arg(long, env = "CUTOVER_ARTIFACTS")]
    artifacts: Option<PathBuf>,
    /// After a NO-GO, keep the legacy frozen (to fix its data and rehearse again) instead
    /// of reopening it; the reason is journaled. `cutover rollback` reopens it later.
    #[arg(long, value_name = "REASON")]
    hold_freeze: Option<String>,
    /// `run` only: start a new run even though the newest one is unfinished (refused while
    /// that run's load is in production and not rolled back).
    #[arg(long)]
    fresh: bool,
    /// Once the cutover window has run out: `ask` (the console proposes the rollback;
    /// headless it means `stop`), `stop` (exit 7 at the next safe point), `rollback`
    /// (confirmed in advance) or `continue`.
    #[arg(long, value_enum, default_value = "ask", value_name = "WHAT")]
    on_window_exceeded: cutover::steps::OnWindowExceeded,
    /// Who runs the cutover (overrides the runbook's `lead`): they cannot be the only
    /// approver of their own gate.
    #[arg(long, value_name = "NAME", env = "CUTOVER_LEAD")]
    lead: Option<String>,
    /// Headless: wait at a gate for sign-offs given with `cutover sign` (read from the
    /// journal) instead of stopping with exit 4.
    #[arg(long)]
    wait_at_gate: bool,
}

#[derive(Args)]
struct DemoArgs {
    /// Working folder for the demo's databases, extract, rejects and journal (recreated).
    #[arg(long, default_value = "cutover-demo")]
    dir: PathBuf,
    /// Seed of the generated legacy data.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Legacy rows to generate (customers, vehicles, drivers, invoices in the demo's
    /// proportions, the rows that break each rule on top). The default runs long enough to
    /// watch the live progress: bar, rate and ETA.
    #[arg(long, default_value_t = DEMO_DEFAULT_ROWS)]
    rows: usize,
    #[command(flatten)]
    common: CommonRun,
}

/// `println!` that survives a closed stdout: `cutover summary … | head -1` closes the pipe
/// after one line, and the rest of the output has nowhere to go (not a panic).
macro_rules! out {
    ($($t:tt)*) => {
        emit(&format!($($t)*))
    };
}

fn emit(text: &str) {
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    if let Err(e) = writeln!(o, "{text}").and_then(|()| o.flush())
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: writing to stdout: {e}");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::from(exit::FAILURE as u8);
        }
    };
    let code = rt.block_on(async {
        match dispatch(cli).await {
            Ok(code) => code,
            Err(e) => {
                eprintln!("error: {}", cutover::steps::explain(&e));
                // Another process took the run over: not an infrastructure failure.
                if e.chain().any(|c| c.is::<LeaseLost>()) {
                    lease::EXIT_LEASE_HELD
                } else {
                    exit::FAILURE
                }
            }
        }
    });
    ExitCode::from(code.clamp(0, 255) as u8)
}

/// The `--journal` (or `CUTOVER_JOURNAL`) a command was given.
fn journal_flag(cmd: &Cmd) -> Option<&str> {
    match cmd {
        Cmd::Run(a) | Cmd::Rehearse(a) => a.common.journal.as_deref(),
        Cmd::Demo(d) => d.common.journal.as_deref(),
        Cmd::Rollback { journal, .. }
        | Cmd::Summary { journal, .. }
        | Cmd::Report { journal, .. }
        | Cmd::Watch { journal, .. } => journal.as_deref(),
        Cmd::Sign(a) => a.journal.as_deref(),
        Cmd::Journal {
            cmd: JournalCmd::Verify { journal, .. },
        } => journal.as_deref(),
        Cmd::Check { .. } => None,
    }
}

async fn dispatch(cli: Cli) -> Result<i32> {
    if journal_flag(&cli.command).is_some_and(runbook::url_has_password) {
        eprintln!(
            "error: --journal: the URL carries a password, and argv and the environment of a \
             process are visible to other users of this machine\n  hint: drop the password \
             from the URL; PGPASSWORD or ~/.pgpass supply it"
        );
        return Ok(exit::INVALID);
    }
    match cli.command {
        Cmd::Check {
            runbook,
            vars,
            connect,
            json,
            journal,
            artifacts,
        } => {
            let Some(plan) = load_plan(&runbook, &vars)? else {
                return Ok(exit::INVALID);
            };
            // The webhooks as `run` will resolve them: a bad URL or an unset url_env now.
            if let Err(e) = cutover::notify::targets(&plan.rb.notify, |k| std::env::var(k).ok()) {
                eprintln!("error: {}: {e}", runbook.display());
                return Ok(exit::INVALID);
            }
            if connect {
                let opts = preflight_options(&runbook, journal.as_deref(), artifacts, RunMode::Run);
                let report = cutover::preflight::run(&plan, &opts).await;
                if json {
                    out!("{}", serde_json::to_string_pretty(&report)?);
                } else {
                    for f in &report.findings {
                        out!("{f}");
                    }
                    out!("{}", report.tally());
                }
                return Ok(if report.ok {
                    exit::OK
                } else {
                    exit::PREFLIGHT_FAILED
                });
            }
            out!(
                "{}: ok — {} entities in load order {}, {} steps, {} checks",
                runbook.display(),
                plan.order.len(),
                plan.order.join(" → "),
                plan.rb.steps.len(),
                plan.rb.checks.len()
            );
            Ok(exit::OK)
        }
        Cmd::Run(a) => execute(&a.runbook, &a.common, RunMode::Run, None).await,
        Cmd::Rehearse(a) => execute(&a.runbook, &a.common, RunMode::Rehearse, None).await,
        Cmd::Demo(d) => demo(d).await,
        Cmd::Sign(a) => sign(a).await,
        Cmd::Rollback {
            runbook,
            confirm,
            reason,
            vars,
            journal,
        } => rollback(&runbook, &vars, journal.as_deref(), &confirm, &reason).await,
        Cmd::Summary {
            runbook,
            run,
            journal,
        } => {
            let j = Journal::open(&journal_location(&runbook, journal.as_deref())).await?;
            let run = match run {
                Some(r) => r,
                None => j
                    .last_run_id()
                    .await?
                    .context("the journal holds no run yet")?,
            };
            let recs = j.run_records(&run).await?;
            if recs.is_empty() {
                // An unknown run id is a mistake to say, not an empty summary to print.
                let newest = j.last_run_id().await?;
                eprintln!(
                    "error: journal {} holds no run {run}{}",
                    j.location,
                    newest
                        .map(|n| format!("\n  hint: the newest run is {n} (cutover summary without --run shows it)"))
                        .unwrap_or_else(|| " (it holds no run yet)".into())
                );
                return Ok(exit::INVALID);
            }
            out!(
                "{}",
                serde_json::to_string_pretty(&cutover::report::summary(&recs))?
            );
            Ok(exit::OK)
        }
        Cmd::Report {
            runbook,
            run,
            format,
            output,
            journal,
        } => report(&runbook, run, format, output, journal.as_deref()).await,
        Cmd::Watch {
            runbook,
            run,
            journal,
            headless,
        } => watch_run(&runbook, run, journal.as_deref(), headless).await,
        Cmd::Journal {
            cmd:
                JournalCmd::Verify {
                    runbook,
                    journal,
                    expect_head,
                },
        } => {
            let loc = match (&journal, &runbook) {
                (Some(j), _) => j.clone(),
                (None, Some(r)) => journal_location(r, None),
                (None, None) => anyhow::bail!("give a RUNBOOK or --journal URL"),
            };
            let j = Journal::open(&loc).await?;
            let v = j.verify().await?;
            match v.first_bad {
                None => {
                    out!(
                        "journal {}: {} records, hash chain intact; head {}",
                        j.location,
                        v.records,
                        v.head
                            .as_ref()
                            .map_or("none (empty journal)".to_string(), Head::to_string)
                    );
                    let Some(want) = expect_head else {
                        return Ok(exit::OK);
                    };
                    let end = v.head.as_ref().map_or(0, |h| h.seq);
                    match j.hash_at(want.seq).await? {
                        Some(h) if h == want.hash => {
                            if end > want.seq {
                                out!(
                                    "expected head {want} reached; {} record(s) appended after it",
                                    end - want.seq
                                );
                            } else {
                                out!("expected head {want} reached: it is the journal's end");
                            }
                            Ok(exit::OK)
                        }
                        Some(h) => {
                            out!(
                                "journal {}: HEAD DIFFERS: record {} has hash {h}, expected {}; \
                                 the journal was rewritten after that head was taken",
                                j.location,
                                want.seq,
                                want.hash
                            );
                            Ok(cutover::journal::EXIT_HEAD_DIFFERS)
                        }
                        None => {
                            out!(
                                "journal {}: HEAD DIFFERS: the journal ends at record {end}, \
                                 before the expected head {want}; {} record(s) are missing \
                                 from its tail",
                                j.location,
                                want.seq - end
                            );
                            Ok(cutover::journal::EXIT_HEAD_DIFFERS)
                        }
                    }
                }
                Some((seq, why)) => {
                    out!("journal {}: BROKEN at record {seq}: {why}", j.location);
                    Ok(exit::FAILURE)
                }
            }
        }
    }
}

fn parse_vars(vars: &[String]) -> Result<Vec<(String, String)>, String> {
    vars.iter()
        .map(|v| {
            v.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .ok_or_else(|| format!("--var '{v}': expected NAME=VALUE"))
        })
        .collect()
}

/// Load and lint; print diagnostics and return None when the runbook is invalid.
fn load_plan(path: &Path, vars: &[String]) -> Result<Option<Plan>> {
    let overrides = match parse_vars(vars) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(None);
        }
    };
    match cutover::target::check::load(path, &overrides) {
        Ok(p) => Ok(Some(p)),
        Err(diags) => {
            for d in &diags {
                eprintln!("error: {d}");
            }
            eprintln!(
                "{}: {} problem(s); the runbook is invalid",
                path.display(),
                diags.len()
            );
            Ok(None)
        }
    }
}

/// `cutover report`: the dossier of one run, in one format, to stdout or a file.
async fn report(
    runbook: &Path,
    run: Option<String>,
    format: cutover::report::Format,
    output: Option<PathBuf>,
    journal: Option<&str>,
) -> Result<i32> {
    let j = Journal::open(&journal_location(runbook, journal)).await?;
    let run = match run {
        Some(r) => r,
        None => j
            .last_run_id()
            .await?
            .context("the journal holds no run yet")?,
    };
    let Some(d) = cutover::report::dossier(&j, &run, runbook).await? else {
        eprintln!(
            "error: the journal {} holds no run {run}\n  hint: `cutover summary` shows the newest run's id",
            cutover::report::redact_location(&j.location)
        );
        return Ok(exit::INVALID);
    };
    let text = format.render(&d);
    match output {
        Some(path) => {
            std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!("dossier of run {run} written to {}", path.display());
        }
        None => {
            use std::io::Write;
            // A closed pipe (`| head`) is the reader's choice, not a failure.
            let mut out = std::io::stdout().lock();
            if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush())
                && e.kind() != std::io::ErrorKind::BrokenPipe
            {
                return Err(e.into());
            }
        }
    }
    Ok(exit::OK)
}

/// The journal a command uses: `--journal`, else `.cutover/<runbook name>/journal.db`
/// beside the runbook. One per runbook: two runbooks in one folder are two cutovers, and
/// sharing one journal would mix their runs (and `summary` would show the other's newest).
/// A `.cutover/journal.db` left by an earlier version is kept while no per-runbook one
/// exists, so an unfinished run there can still be resumed.
fn journal_location(runbook: &Path, given: Option<&str>) -> String {
    if let Some(g) = given {
        return g.to_string();
    }
    let dir = runbook
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .join(".cutover");
    let name = runbook
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "runbook".into());
    let own = dir.join(&name).join("journal.db");
    let shared = dir.join("journal.db");
    if !own.exists() && shared.exists() {
        eprintln!(
            "note: using {} from an earlier version; move it to {} to give this runbook its own",
            shared.display(),
            own.display()
        );
        return shared.display().to_string();
    }
    own.display().to_string()
}

/// Tracing to `cutover.log` beside the journal and, with the console, into its log pane
/// too (the returned feed; see `cutover::log_feed` for what passes and what is dropped).
fn init_logging(dir: &Path, console: bool) -> Result<Option<cutover::log_feed::LogFeed>> {
    use tracing_subscriber::{EnvFilter, Layer, layer::SubscriberExt, util::SubscriberInitExt};
    std::fs::create_dir_all(dir)?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("cutover.log"))?;
    let filter = EnvFilter::try_from_env("CUTOVER_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        // Warnings and errors only by default: a run without trouble leaves the log empty,
        // so anything in it is worth reading (the journal has the story of the run). sqlx
        // calls a statement over 1 s "slow"; streaming a whole legacy table always is.
        .unwrap_or_else(|_| EnvFilter::new("warn,sqlx::query=error"));
    // Logs go to a file: the terminal belongs to the console, and the journal is the audit record.
    let file_layer = tracing_subscriber::fmt::layer()
        .with_ansi(false)
        .with_writer(std::sync::Mutex::new(file))
        .with_filter(filter);
    let (console_layer, feed) = if console {
        let (layer, feed) = cutover::log_feed::channel(cutover::log_feed::LOG_FEED_CAPACITY);
        (Some(layer), Some(feed))
    } else {
        (None, None)
    };
    let _ = tracing_subscriber::registry()
        .with(file_layer)
        .with(console_layer)
        .try_init();
    Ok(feed)
}

async fn execute(
    runbook: &Path,
    c: &CommonRun,
    mode: RunMode,
    demo_sign_offs: Option<Vec<SignOff>>,
) -> Result<i32> {
    let Some(plan) = load_plan(runbook, &c.vars)? else {
        return Ok(exit::INVALID);
    };
    let mut sign_offs = Vec::new();
    for s in &c.sign_offs {
        match SignOff::parse("", s) {
            Ok(s) => sign_offs.push(s),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::INVALID);
            }
        }
    }
    for arg in &c.signatures {
        let attached = arg
            .split_once('=')
            .map(|(n, f)| (n.trim(), std::path::PathBuf::from(f.trim())))
            .filter(|(n, f)| !n.is_empty() && !f.as_os_str().is_empty())
            .ok_or_else(|| format!("--signature '{arg}': expected NAME=FILE"))
            .and_then(|(name, file)| {
                cutover::signoff::sshsig::read(&file)
                    .map_err(|e| format!("--signature '{arg}': {e}"))?;
                let mut found = false;
                for s in sign_offs
                    .iter_mut()
                    .filter(|s| cutover::signoff::same_person(&s.name, name))
                {
                    s.signature_file = Some(file.clone());
                    found = true;
                }
                found
                    .then_some(())
                    .ok_or_else(|| format!("--signature '{arg}': no --sign-off is given by {name}"))
            });
        if let Err(e) = attached {
            eprintln!("error: {e}");
            return Ok(exit::INVALID);
        }
    }
    if let Some(since) = &c.until
        && !plan.rb.steps.iter().any(|s| &s.id == since)
    {
        eprintln!(
            "error: --until {since}: no such step (steps: {})",
            plan.step_ids()
        );
        return Ok(exit::INVALID);
    }
    let mut skips = Vec::new();
    for s in &c.skips {
        let checked = Skip::parse(s).and_then(|k| {
            cutover::steps::check_skip(&plan, mode, &k.step, &k.name, &k.reason)
                .map(|()| k)
                .map_err(|e| format!("--skip '{s}': {e}"))
        });
        match checked {
            Ok(k) => skips.push(k),
            Err(e) => {
                eprintln!("error: {e}");
                return Ok(exit::INVALID);
            }
        }
    }
    let headless =
        c.headless || !std::io::stdout().is_terminal() || std::env::var_os("CI").is_some();
    if headless && let Some(d) = demo_sign_offs {
        sign_offs.extend(d);
    }
    let loc = journal_location(runbook, c.journal.as_deref());
    // A journal on a server has no folder: its log and runs/ go where the default one would.
    let on_server = matches!(
        cutover::db::Dialect::of_url(&loc),
        Some(cutover::db::Dialect::Postgres | cutover::db::Dialect::MySql)
    );
    let file_loc = if on_server {
        journal_location(runbook, None)
    } else {
        loc.clone()
    };
    let journal_dir = cutover::db::sqlite_path(&file_loc)
        .or_else(|| Some(PathBuf::from(&file_loc)))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(".cutover"));
    let log_feed = init_logging(&journal_dir, !headless)?;
    let journal = Journal::open(&loc)
        .await
        .with_context(|| cutover::journal::open_context(&loc))?;
    let (cmd_tx, cmd_rx) = mpsc::channel(16);
    // One live run at a time: taken before anything is read or written for the run.
    // Weak: the lease must not keep the command channel open (a closed channel is how the
    // engine learns that the console has gone).
    let mut lease = match take_lease(&journal, &plan, "", Some(cmd_tx.downgrade())).await? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let journal = lease.journal();
    // `--fresh` abandons the unfinished run: only once the new one can start (a refused
    // --fresh is said first, by `unfinished_run`).
    let checked = mode == RunMode::Run && c.fresh && !fresh_refused(&journal, &plan).await?;
    if checked
        && let Some(code) = preflight_gate(&plan, runbook, c, mode, &journal_dir, headless).await?
    {
        lease.release().await?;
        return Ok(code);
    }
    let prior = match mode {
        RunMode::Run => unfinished_run(&journal, &plan, c.fresh).await?,
        RunMode::Rehearse => Ok(None),
    };
    let prior = match prior {
        Ok(p) => p,
        Err(msg) => {
            eprintln!("error: {msg}");
            lease.release().await?;
            return Ok(exit::INVALID);
        }
    };
    // Before anything is changed; a resumed run past its backup or freeze is not checked
    // again (its environments are now in the state the cutover put them in).
    if !checked
        && prior
            .as_deref()
            .is_none_or(cutover::preflight::due_on_resume)
        && let Some(code) = preflight_gate(&plan, runbook, c, mode, &journal_dir, headless).await?
    {
        lease.release().await?;
        return Ok(code);
    }
    // Webhooks are resolved before anything runs: a missing url_env is a mistake to say now.
    let hooks = match cutover::notify::targets(&plan.rb.notify, |k| std::env::var(k).ok()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            lease.release().await?;
            return Ok(exit::INVALID);
        }
    };
    let runbook_name = plan.rb.runbook.name.clone();
    let (rec_tx, engine_rx) = mpsc::unbounded_channel();
    let (prog_tx, prog_rx) = watch::channel(Vec::new());
    let channels = Channels {
        records: Some(rec_tx),
        progress: prog_tx,
        commands: cmd_rx,
    };
    if c.hold_freeze
        .as_deref()
        .is_some_and(|r| r.trim().is_empty())
    {
        eprintln!("error: --hold-freeze needs a reason; it is journaled with the NO-GO");
        return Ok(exit::INVALID);
    }
    let opts = RunOptions {
        mode,
        hold_freeze: c.hold_freeze.clone(),
        until: c.until.clone(),
        sign_offs,
        interactive: !headless,
        artifacts: c.artifacts.clone(),
        on_window_exceeded: c.on_window_exceeded,
        skips,
    };
    let exec = match prior {
        None => Executor::new(plan, journal.clone(), &journal_dir, channels, opts),
        Some(records) => match Executor::resume(plan, journal.clone(), channels, opts, records) {
            Ok(e) => {
                eprintln!(
                    "resuming run {} from the journal (--fresh starts a new run)",
                    e.run_id()
                );
                e
            }
            Err(refused) => {
                eprintln!("error: {refused}");
                lease.release().await?;
                return Ok(exit::INVALID);
            }
        },
    };
    let exec = exec
        .with_lead(c.lead.clone())
        .waiting_at_gates(c.wait_at_gate);
    lease.bind_run(exec.run_id()).await?;
    journal_take_over(&lease).await?;
    let (rec_rx, tee) = tee_records(engine_rx, hooks, &runbook_name, &journal, exec.run_id());
    let engine = tokio::spawn(exec.run());
    let ui_code = if headless {
        let stop = cmd_tx.clone();
        let mut signals = cutover::signals::StopSignals::new();
        tokio::spawn(async move {
            let name = signals.next().await;
            eprintln!("interrupt ({name}): stopping at the next safe point (again to force)");
            let _ = stop.send(cutover::control::Command::Abort).await;
            signals.next().await;
            std::process::exit(exit::INTERRUPTED);
        });
        cutover::headless::print_progress(rec_rx, prog_rx, false).await;
        None
    } else {
        console(rec_rx, prog_rx, cmd_tx, log_feed).await?
    };
    let fin = engine.await.context("engine task")??;
    finish_notifications(tee).await;
    let recs = journal.run_records(&fin.run_id).await?;
    let summary = cutover::report::summary(&recs);
    // The run's last record is the journal's end as this run left it (also in summary.json):
    // kept by the operator, it shows later whether the journal's tail was cut off.
    if let Some(last) = recs.last() {
        let head = Head {
            seq: last.seq,
            hash: last.hash.clone(),
        };
        eprintln!(
            "journal head {head} (check it later: cutover journal verify --expect-head {head})"
        );
    }
    if let Err(e) = lease.release().await {
        tracing::warn!("releasing the lease: {e:#}");
    }
    let summary_path = fin.run_dir.join("summary.json");
    std::fs::write(&summary_path, serde_json::to_string_pretty(&summary)?)
        .with_context(|| format!("writing {}", summary_path.display()))?;
    if c.json {
        out!("{}", serde_json::to_string_pretty(&summary)?);
    }
    // Last on stderr, once the console's screen is gone: how it ended and how to go on.
    let inv = cutover::farewell::Invocation {
        runbook: runbook.display().to_string(),
        journal: c.journal.clone(),
        vars: c.vars.clone(),
    };
    let ended = recs.iter().rev().find_map(|r| match &r.event {
        cutover::journal::events::Event::RunFinished {
            outcome,
            exit_code,
            message,
        } => Some((*outcome, *exit_code, message.as_str())),
        _ => None,
    });
    let resumable = cutover::steps::run_state(&recs) == cutover::steps::RunState::Resumable;
    for line in cutover::farewell::lines(&inv, &fin.run_id, ended, resumable) {
        eprintln!("{line}");
    }
    Ok(ui_code.unwrap_or(fin.exit_code))
}

/// `cutover sign`: no lease (the run holds it); the sign-off goes into the journal.
async fn sign(a: SignArgs) -> Result<i32> {
    let Some(plan) = load_plan(&a.runbook, &a.vars)? else {
        return Ok(exit::INVALID);
    };
    let location = journal_location(&a.runbook, a.journal.as_deref());
    let journal = Journal::open(&location)
        .await
        .with_context(|| cutover::journal::open_context(&location))?;
    if !plan.rb.gates.contains_key(&a.gate) {
        eprintln!(
            "error: --gate '{}': the runbook has no such gate (gates: {})",
            a.gate,
            plan.rb.gates.keys().cloned().collect::<Vec<_>>().join(", ")
        );
        return Ok(exit::INVALID);
    }
    if a.show_evidence {
        return cutover::sign::show_evidence(&journal, &plan, &a.gate, a.hash_only).await;
    }
    let signature = match &a.signature {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .with_context(|| format!("reading the signature {}", p.display()))?,
        ),
        None => None,
    };
    let req = cutover::sign::SignRequest {
        gate: a.gate,
        name: a.name.unwrap_or_default().trim().to_string(),
        role: a.role.unwrap_or_default().trim().to_string(),
        decision: match a.decision.as_deref() {
            Some("no-go") => cutover::journal::events::Decision::NoGo,
            _ => cutover::journal::events::Decision::Go,
        },
        comment: a.comment.trim().to_string(),
        evidence_sha256: a.evidence.map(|e| e.trim().to_string()),
        signature,
    };
    if req.name.is_empty() || req.role.is_empty() {
        eprintln!("error: --as and --role must not be empty");
        return Ok(exit::INVALID);
    }
    cutover::sign::sign(&journal, &plan, req).await
}

/// Whether `--fresh` will be refused: the unfinished run's rows are in production.
async fn fresh_refused(journal: &Journal, plan: &Plan) -> Result<bool> {
    use cutover::steps::{RunState, latest_run, production_touched, run_state};
    Ok(latest_run(journal, plan)
        .await?
        .is_some_and(|r| run_state(&r) == RunState::Resumable && production_touched(&r)))
}

/// The preflight at the start of `run` / `rehearse`: `Some(exit code)` when it failed (the
/// failures are printed; nothing was changed), `None` to go on.
async fn preflight_gate(
    plan: &Plan,
    runbook: &Path,
    c: &CommonRun,
    mode: RunMode,
    journal_dir: &Path,
    headless: bool,
) -> Result<Option<i32>> {
    use cutover::preflight::Status;
    let mut opts = preflight_options(runbook, c.journal.as_deref(), c.artifacts.clone(), mode);
    if c.artifacts.is_none() {
        opts.artifacts = journal_dir.join("runs");
    }
    let report = cutover::preflight::run(plan, &opts).await;
    report.log();
    if !report.ok {
        for f in report.findings.iter().filter(|f| f.status != Status::Pass) {
            eprintln!("{f}");
        }
        eprintln!(
            "{}; nothing was changed (`cutover check --connect` lists every finding)",
            report.tally()
        );
        if c.json {
            out!("{}", serde_json::to_string_pretty(&report)?);
        }
        return Ok(Some(exit::PREFLIGHT_FAILED));
    }
    if headless {
        for f in report.findings.iter().filter(|f| f.status == Status::Warn) {
            eprintln!("{f}");
        }
        eprintln!("{}", report.tally());
    }
    Ok(None)
}

/// Where the preflight looks for the journal and the artifacts folder.
fn preflight_options(
    runbook: &Path,
    journal: Option<&str>,
    artifacts: Option<PathBuf>,
    mode: RunMode,
) -> cutover::preflight::Options {
    let loc = journal_location(runbook, journal);
    let file_loc = match cutover::db::Dialect::of_url(&loc) {
        Some(cutover::db::Dialect::Postgres | cutover::db::Dialect::MySql) => {
            journal_location(runbook, None)
        }
        _ => loc.clone(),
    };
    let journal_dir = cutover::db::sqlite_path(&file_loc)
        .or_else(|| Some(PathBuf::from(&file_loc)))
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from(".cutover"));
    cutover::preflight::Options {
        mode,
        journal: loc,
        artifacts: artifacts.unwrap_or_else(|| journal_dir.join("runs")),
    }
}

/// Take the lease on this runbook's runs, or print who holds it and return the exit code.
/// `stop` is told to abort if a later heartbeat finds the lease taken by another process.
async fn take_lease(
    journal: &Journal,
    plan: &Plan,
    run_id: &str,
    stop: Option<mpsc::WeakSender<cutover::control::Command>>,
) -> Result<Result<Lease, i32>> {
    let scope = &plan.rb.runbook.name;
    let on_lost = move || {
        if let Some(tx) = stop.and_then(|w| w.upgrade()) {
            let _ = tx.try_send(cutover::control::Command::Abort);
        }
    };
    let taken = journal
        .take_lease(scope, run_id, lease::STALE_AFTER, on_lost)
        .await
        .with_context(|| {
            format!(
                "journal {}: taking the lease on runbook '{scope}'{}",
                journal.location,
                cutover::journal::full_note(&journal.location)
            )
        })?;
    match taken {
        Ok(l) => {
            if let Taken::TookOver { previous, why } = &l.taken {
                eprintln!(
                    "taking over {} from pid {} on host {} (since {}): {why}",
                    if previous.run_id.is_empty() {
                        "the run"
                    } else {
                        &previous.run_id
                    },
                    previous.pid,
                    previous.host,
                    previous.since
                );
            }
            Ok(Ok(l))
        }
        Err(held) => {
            eprintln!("error: {held}");
            Ok(Err(lease::EXIT_LEASE_HELD))
        }
    }
}

/// Journal a take-over in the run the previous holder drove (once this holder is named).
async fn journal_take_over(l: &Lease) -> Result<()> {
    use cutover::journal::events::Event;
    if let Taken::TookOver { previous, why } = &l.taken
        && !previous.run_id.is_empty()
    {
        l.journal()
            .append(
                &previous.run_id,
                &Event::LeaseTakenOver {
                    previous: previous.clone(),
                    holder: l.me.clone(),
                    why: why.clone(),
                },
            )
            .await?;
    }
    Ok(())
}

/// The newest run of this runbook if `run` should continue it; `Err` is a refusal to print.
async fn unfinished_run(
    journal: &Journal,
    plan: &Plan,
    fresh: bool,
) -> Result<Result<Option<Vec<cutover::journal::events::Record>>, String>> {
    use cutover::journal::events::Event;
    use cutover::steps::{RunState, latest_run, production_touched, run_state};
    let Some(records) = latest_run(journal, plan).await? else {
        return Ok(Ok(None));
    };
    if run_state(&records) != RunState::Resumable {
        return Ok(Ok(None));
    }
    if !fresh {
        return Ok(Ok(Some(records)));
    }
    let run_id = records[0].run_id.clone();
    if production_touched(&records) {
        return Ok(Err(format!(
            "run {run_id} loaded rows into production and was not rolled back; a new run \
             would take its backup of that half-loaded production. Resume it (`cutover run` \
             without --fresh) or roll it back first (`cutover rollback`)"
        )));
    }
    // Its rollback plan runs first: what it closed and froze is given back.
    let (prog_tx, _prog_rx) = watch::channel(Vec::new());
    let (_cmd_tx, cmd_rx) = mpsc::channel(1);
    let old = match Executor::adopt(
        plan.clone(),
        journal.clone(),
        Channels {
            records: None,
            progress: prog_tx,
            commands: cmd_rx,
        },
        RunOptions {
            mode: RunMode::Run,
            until: None,
            sign_offs: Vec::new(),
            interactive: false,
            artifacts: None,
            on_window_exceeded: cutover::steps::OnWindowExceeded::Continue,
            skips: Vec::new(),
            hold_freeze: None,
        },
        records,
    ) {
        Ok(e) => e,
        Err(refused) => return Ok(Err(refused.to_string())),
    };
    let fin = old
        .abandon_now("abandoned: a new run was started with --fresh")
        .await?;
    debug_assert_eq!(fin.run_id, run_id);
    let ended = journal.run_records(&run_id).await?;
    if let Some(Event::RunFinished { message, .. }) = ended.last().map(|r| &r.event) {
        eprintln!("run {run_id} {message}");
    }
    if ended
        .iter()
        .any(|r| matches!(&r.event, Event::RollbackFinished { ok: false, .. }))
    {
        return Ok(Err(format!(
            "run {run_id} was abandoned but its rollback plan failed (see above); put \
             production and the legacy back by hand, or run `cutover rollback`, before a new run"
        )));
    }
    eprintln!("starting a new run");
    Ok(Ok(None))
}

/// `cutover rollback`: the rollback plan of the newest run, confirmed by the production
/// database's name.
async fn rollback(
    runbook: &Path,
    vars: &[String],
    journal: Option<&str>,
    confirm: &str,
    reason: &str,
) -> Result<i32> {
    use cutover::steps::{RunState, latest_run, run_state};
    let Some(plan) = load_plan(runbook, vars)? else {
        return Ok(exit::INVALID);
    };
    let Some(prod) = plan.envs.values().find(|e| e.production).cloned() else {
        eprintln!("error: no environment of the runbook is marked production = true");
        return Ok(exit::INVALID);
    };
    let name = cutover::db::database_name(&prod);
    if confirm != name {
        eprintln!(
            "error: --confirm '{confirm}' is not the production database's name; production is {}. \
             Type its database name to confirm the rollback",
            cutover::db::display_env(&prod)
        );
        return Ok(exit::INVALID);
    }
    let loc = journal_location(runbook, journal);
    let j = Journal::open(&loc)
        .await
        .with_context(|| cutover::journal::open_context(&loc))?;
    let Some(records) = latest_run(&j, &plan).await? else {
        eprintln!(
            "error: the journal {} holds no run of this runbook",
            j.location
        );
        return Ok(exit::INVALID);
    };
    let run_id = records[0].run_id.clone();
    let lease = match take_lease(&j, &plan, &run_id, None).await? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    journal_take_over(&lease).await?;
    let j = lease.journal();
    // Read again under the lease: the holder that just ended may have written more.
    let records = j.run_records(&run_id).await?;
    // A variable left out now that the run had set (e.g. legacy_url) would make the
    // rollback miss that environment: the run's own value is taken, and said so.
    let mut plan = plan;
    if let Some(cutover::journal::events::Event::RunStarted { vars: then, .. }) =
        records.first().map(|r| &r.event)
    {
        let missing: Vec<String> = then
            .iter()
            .filter(|(k, v)| !v.is_empty() && plan.vars.get(*k).is_some_and(|now| now.is_empty()))
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !missing.is_empty() {
            eprintln!(
                "using the run's own {} (not given with --var)",
                missing.join(", ")
            );
            let all: Vec<String> = vars.iter().cloned().chain(missing).collect();
            let Some(p) = load_plan(runbook, &all)? else {
                return Ok(exit::INVALID);
            };
            plan = p;
        }
    }
    match run_state(&records) {
        RunState::Ended(cutover::journal::events::Outcome::RolledBack) => {
            eprintln!("run {run_id} is already rolled back");
            lease.release().await?;
            return Ok(exit::OK);
        }
        RunState::Ended(cutover::journal::events::Outcome::Completed) => {
            eprintln!(
                "error: run {run_id} completed and production was opened to its users; a rollback \
                 now would discard what they entered since. Restore by hand if you must"
            );
            lease.release().await?;
            return Ok(exit::INVALID);
        }
        _ => {}
    }
    // Webhooks are resolved before anything runs: a missing url_env is a mistake to say now.
    let hooks = match cutover::notify::targets(&plan.rb.notify, |k| std::env::var(k).ok()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("error: {e}");
            lease.release().await?;
            return Ok(exit::INVALID);
        }
    };
    let runbook_name = plan.rb.runbook.name.clone();
    let (rec_tx, engine_rx) = mpsc::unbounded_channel();
    let (prog_tx, prog_rx) = watch::channel(Vec::new());
    let (_cmd_tx, cmd_rx) = mpsc::channel(1);
    let exec = match Executor::adopt(
        plan,
        j.clone(),
        Channels {
            records: Some(rec_tx),
            progress: prog_tx,
            commands: cmd_rx,
        },
        RunOptions {
            mode: RunMode::Run,
            until: None,
            sign_offs: Vec::new(),
            interactive: false,
            artifacts: None,
            on_window_exceeded: cutover::steps::OnWindowExceeded::Continue,
            skips: Vec::new(),
            hold_freeze: None,
        },
        records,
    ) {
        Ok(e) => e,
        Err(refused) => {
            eprintln!("error: {refused}");
            lease.release().await?;
            return Ok(exit::INVALID);
        }
    };
    let (rec_rx, tee) = tee_records(engine_rx, hooks, &runbook_name, &j, exec.run_id());
    let printer = tokio::spawn(cutover::headless::print_progress(rec_rx, prog_rx, true));
    let fin = exec
        .rollback_now(&format!("rollback asked by the operator: {reason}"))
        .await?;
    let _ = printer.await;
    finish_notifications(tee).await;
    if let Err(e) = lease.release().await {
        tracing::warn!("releasing the lease: {e:#}");
    }
    Ok(fin.exit_code)
}

type Records = mpsc::UnboundedReceiver<cutover::journal::events::Record>;

/// The engine's records to the screen and, without waiting for them, to the webhooks (when
/// the runbook has any). The task hands the notifier back once the engine is done.
fn tee_records(
    engine_rx: Records,
    hooks: Vec<cutover::notify::Target>,
    runbook_name: &str,
    journal: &Journal,
    run_id: &str,
) -> (
    Records,
    tokio::task::JoinHandle<Option<cutover::notify::Notifier>>,
) {
    let notifier = (!hooks.is_empty()).then(|| {
        cutover::notify::Notifier::start(
            hooks,
            runbook_name,
            journal.clone(),
            run_id,
            cutover::notify::Policy::default(),
        )
    });
    let (ui_tx, rec_rx) = mpsc::unbounded_channel();
    let tee = tokio::spawn(async move {
        let mut engine_rx = engine_rx;
        while let Some(rec) = engine_rx.recv().await {
            if let Some(n) = &notifier {
                n.offer(&rec);
            }
            let _ = ui_tx.send(rec);
        }
        notifier
    });
    (rec_rx, tee)
}

/// What the webhooks still have queued gets a short grace (journaled), before the
/// journal's head is read.
async fn finish_notifications(tee: tokio::task::JoinHandle<Option<cutover::notify::Notifier>>) {
    if let Ok(Some(n)) = tee.await {
        n.finish(cutover::notify::Policy::default().grace).await;
    }
}

/// The interactive console; returns an exit code override when the operator aborted.
async fn console(
    rec_rx: mpsc::UnboundedReceiver<cutover::journal::events::Record>,
    prog_rx: watch::Receiver<cutover::journal::events::ProgressSnapshot>,
    cmd_tx: mpsc::Sender<cutover::control::Command>,
    logs: Option<cutover::log_feed::LogFeed>,
) -> Result<Option<i32>> {
    let exit = cutover::tui::run(cutover::tui::UiChannels {
        events: rec_rx,
        progress: prog_rx,
        commands: cmd_tx,
        logs,
        watch: None,
        notices: None,
    })
    .await?;
    Ok(match exit {
        cutover::tui::UiExit::Finished => None,
        cutover::tui::UiExit::Aborted => Some(exit::INTERRUPTED),
    })
}

/// The reference runbook, embedded so that `cutover demo` works from an installed binary.
const TMS_RUNBOOK: &str = include_str!("../runbooks/tms.toml");
/// `demo --rows` default: a few seconds of live load progress in a release build.
const DEMO_DEFAULT_ROWS: usize = 200_000;

/// `cutover watch`: the runbook's name (its lease scope) is read from the file as is,
/// without its variables: a watcher need not know them.
async fn watch_run(
    runbook: &Path,
    run: Option<String>,
    journal: Option<&str>,
    headless: bool,
) -> Result<i32> {
    let name = std::fs::read_to_string(runbook)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .and_then(|t| t.get("runbook")?.get("name")?.as_str().map(String::from));
    let j = Journal::open(&journal_location(runbook, journal))
        .await
        .with_context(|| cutover::journal::open_context(&journal_location(runbook, journal)))?;
    let run_id = match run {
        Some(r) if j.records_after(&r, 0, 1).await?.is_empty() => {
            eprintln!("error: the journal {} holds no run {r}", j.location);
            return Ok(exit::INVALID);
        }
        Some(r) => r,
        None => cutover::watch::wait_for_run(&j, name.as_deref()).await?,
    };
    let scope = match name {
        Some(n) => n,
        None => cutover::runview::RunView::of(&j.records_after(&run_id, 0, 1).await?).runbook_name,
    };
    if headless || !std::io::stdout().is_terminal() {
        cutover::watch::headless(j, &run_id, &mut std::io::stdout().lock()).await
    } else {
        cutover::watch::console(j, &run_id, &scope).await
    }
}

async fn demo(d: DemoArgs) -> Result<i32> {
    let dir =
        std::path::absolute(&d.dir).with_context(|| format!("demo folder {}", d.dir.display()))?;
    if dir.exists() {
        // Only ever remove a folder this command made.
        if !dir.join("tms.toml").exists() && std::fs::read_dir(&dir)?.next().is_some() {
            anyhow::bail!(
                "{} exists and is not a cutover demo folder; choose another with --dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(&dir).with_context(|| format!("cannot clear {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir)?;
    // The runbook in the folder carries the folder's own values: `cutover run` on it works
    // bare, like every other command.
    let runbook = dir.join("tms.toml");
    std::fs::write(&runbook, cutover::demo::demo_runbook(TMS_RUNBOOK)?)?;
    let legacy = dir.join("legacy.db");
    let opts = cutover::demo::GenOptions {
        seed: d.seed,
        ..cutover::demo::GenOptions::demo_rows(d.rows)
    };
    // Generating takes a moment at the default size: say so before the screen opens.
    eprintln!(
        "demo: generating a legacy system of about {} rows (--rows) …",
        cutover::app::fmt_count(d.rows as u64)
    );
    let counts = cutover::demo::write_legacy_sqlite(&legacy, &opts).await?;
    eprintln!(
        "demo: generated legacy system {} ({}) in {}",
        legacy.display(),
        counts
            .iter()
            .map(|(t, n)| format!("{t} {n}"))
            .collect::<Vec<_>>()
            .join(", "),
        dir.display()
    );
    let common = d.common.clone();
    // Headless has nobody at the gate: the demo signs for its two approvers (journaled as such).
    let demo_sign_offs = vec![
        SignOff::parse(
            "",
            "Demo migration lead|migration_lead|go|demo run: evidence reviewed",
        )
        .map_err(anyhow::Error::msg)?,
        SignOff::parse(
            "",
            "Demo finance controller|finance|go|demo run: sums reviewed",
        )
        .map_err(anyhow::Error::msg)?,
    ];
    // As the user named it (relative to where they are), for the lines printed at the end.
    let named = d.dir.join("tms.toml");
    execute(&named, &common, RunMode::Run, Some(demo_sign_offs)).await
}
