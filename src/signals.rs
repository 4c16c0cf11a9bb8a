//! The signals that end a run like Ctrl-C does: SIGINT, SIGTERM (a service manager or
//! `kill`) and SIGHUP (the operator's SSH session dropped). Each asks the run to stop at its
//! next safe point; it is journaled as interrupted (exit 130) and `cutover run` resumes it.

use tokio::signal::unix::{Signal, SignalKind, signal};

/// The stop signals, listened to from creation on (their default action, ending the
/// process at once, is replaced for the life of the process).
pub struct StopSignals {
    int: Option<Signal>,
    term: Option<Signal>,
    hup: Option<Signal>,
}

impl StopSignals {
    pub fn new() -> StopSignals {
        StopSignals {
            int: signal(SignalKind::interrupt()).ok(),
            term: signal(SignalKind::terminate()).ok(),
            hup: signal(SignalKind::hangup()).ok(),
        }
    }

    /// Without SIGINT: the console reads Ctrl-C as a key (raw mode) and asks first.
    pub fn without_interrupt() -> StopSignals {
        StopSignals {
            int: None,
            ..StopSignals::new()
        }
    }

    /// The name of the next stop signal received.
    pub async fn next(&mut self) -> &'static str {
        async fn on(s: &mut Option<Signal>) {
            match s {
                Some(s) => {
                    if s.recv().await.is_none() {
                        std::future::pending::<()>().await
                    }
                }
                None => std::future::pending::<()>().await,
            }
        }
        tokio::select! {
            _ = on(&mut self.int) => "Ctrl-C",
            _ = on(&mut self.term) => "SIGTERM",
            _ = on(&mut self.hup) => "SIGHUP",
        }
    }
}

impl Default for StopSignals {
    fn default() -> Self {
        StopSignals::new()
    }
}
