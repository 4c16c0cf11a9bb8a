//! Tracing into the console's log pane. [`channel`] makes a tracing [`Layer`] and the
//! [`LogFeed`] the console reads: each event that passes [`wanted`] (cutover's own at
//! INFO and above, everyone else's — sqlx included — at WARN and above) is formatted and
//! handed over a bounded channel with `try_send`. The engine never waits on the console:
//! when the channel is full the line is dropped and counted.

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Level, Metadata, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// Lines the channel holds before new ones are dropped.
pub const LOG_FEED_CAPACITY: usize = 256;

/// One tracing event, formatted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEvent {
    pub level: Level,
    pub target: String,
    /// The message, then the other fields as `key=value`.
    pub message: String,
}

/// Whether a tracing event belongs in the console: cutover's own from INFO up, any other
/// crate's (sqlx's chatter among them) only from WARN up.
pub fn wanted(meta: &Metadata<'_>) -> bool {
    let own = meta.target() == "cutover" || meta.target().starts_with("cutover::");
    let least = if own { Level::INFO } else { Level::WARN };
    *meta.level() <= least
}

/// The layer's half: formats and forwards, never blocks.
pub struct ConsoleLayer {
    tx: mpsc::Sender<LogEvent>,
    dropped: Arc<AtomicU64>,
}

/// The console's half: the lines, and how many were dropped because it was behind.
pub struct LogFeed {
    pub rx: mpsc::Receiver<LogEvent>,
    dropped: Arc<AtomicU64>,
}

impl LogFeed {
    /// Lines dropped so far (the channel was full).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// A layer (filtered by [`wanted`]) and the feed it writes to, `capacity` lines deep.
pub fn channel<S>(capacity: usize) -> (impl Layer<S> + Send + Sync + 'static, LogFeed)
where
    S: Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let dropped = Arc::new(AtomicU64::new(0));
    let layer = ConsoleLayer {
        tx,
        dropped: dropped.clone(),
    }
    .with_filter(tracing_subscriber::filter::filter_fn(wanted));
    (layer, LogFeed { rx, dropped })
}

impl ConsoleLayer {
    fn forward(&self, ev: LogEvent) {
        match self.tx.try_send(ev) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
            // The console has gone: nothing to show it to.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }
}

impl<S: Subscriber> Layer<S> for ConsoleLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let meta = event.metadata();
        let mut v = Fields::default();
        event.record(&mut v);
        let mut message = v.message;
        if !v.rest.is_empty() {
            if !message.is_empty() {
                message.push(' ');
            }
            message.push_str(&v.rest);
        }
        self.forward(LogEvent {
            level: *meta.level(),
            target: meta.target().to_string(),
            message,
        });
    }
}

/// The `message` field, and the others as `key=value` separated by spaces.
#[derive(Default)]
struct Fields {
    message: String,
    rest: String,
}

impl Fields {
    fn push(&mut self, field: &Field, value: std::fmt::Arguments<'_>) {
        if field.name() == "message" {
            let _ = self.message.write_fmt(value);
        } else {
            if !self.rest.is_empty() {
                self.rest.push(' ');
            }
            let _ = write!(self.rest, "{}=", field.name());
            let _ = self.rest.write_fmt(value);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push(field, format_args!("{value}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    fn capture(capacity: usize, emit: impl FnOnce()) -> (Vec<LogEvent>, u64) {
        let (layer, mut feed) = channel(capacity);
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, emit);
        let mut got = Vec::new();
        while let Ok(ev) = feed.rx.try_recv() {
            got.push(ev);
        }
        (got, feed.dropped())
    }

    #[test]
    fn own_info_and_everyones_warnings_pass_sqlx_chatter_does_not() {
        let (got, dropped) = capture(16, || {
            tracing::info!(target: "cutover::steps", "step started");
            tracing::debug!(target: "cutover::steps", "too fine");
            tracing::info!(target: "sqlx::query", "SELECT 1");
            tracing::warn!(target: "sqlx::pool", "slow acquire");
            tracing::info!(target: "hyper", "connection");
            tracing::error!(target: "tokio", "boom");
        });
        let seen: Vec<(Level, &str, &str)> = got
            .iter()
            .map(|e| (e.level, e.target.as_str(), e.message.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (Level::INFO, "cutover::steps", "step started"),
                (Level::WARN, "sqlx::pool", "slow acquire"),
                (Level::ERROR, "tokio", "boom"),
            ]
        );
        assert_eq!(dropped, 0);
    }

    #[test]
    fn fields_follow_the_message() {
        let (got, _) = capture(4, || {
            tracing::warn!(
                target: "cutover::steps",
                entity = %"customers",
                attempt = 1,
                error = "connection refused",
                "transient fault; retrying the batch"
            );
        });
        assert_eq!(
            got[0].message,
            "transient fault; retrying the batch entity=customers attempt=1 error=connection refused"
        );
    }

    #[test]
    fn a_full_channel_drops_and_counts_without_blocking() {
        let (got, dropped) = capture(2, || {
            for i in 0..5 {
                tracing::warn!(target: "cutover", "line {i}");
            }
        });
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].message, "line 1");
        assert_eq!(dropped, 3);
    }
}
