//! Headless mode: the same run without a terminal UI, one progress line at a time on stderr.

use std::io::Write;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::journal::events::{ProgressSnapshot, Record};

pub async fn print_progress(
    mut records: mpsc::UnboundedReceiver<Record>,
    mut progress: watch::Receiver<ProgressSnapshot>,
    quiet: bool,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut err = std::io::stderr();
    loop {
        tokio::select! {
            r = records.recv() => match r {
                Some(r) => if let Some((line, _)) = crate::describe::describe(&r.event) { let _ = writeln!(err, "{} {line}", &r.ts[11..19]); },
                None => break,
            },
            _ = tick.tick() => {
                if quiet { continue; }
                let snap = progress.borrow_and_update().clone();
                for p in snap.iter().filter(|p| !p.done && p.read > 0) {
                    let rate = if p.elapsed_secs > 0.0 { p.read as f64 / p.elapsed_secs } else { 0.0 };
                    let _ = writeln!(err, "         {} {}: {}/{} read, {} valid, {} rejected, {} loaded, {:.0} rows/s",
                        p.phase.map(|p| format!("{p:?}")).unwrap_or_default(), p.entity, p.read, p.expected, p.valid, p.rejected, p.loaded, rate);
                }
            }
        }
    }
}
