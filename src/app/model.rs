//! Plain data the console shows: steps, entities, the gate, rejects, the log.
//! Every state carries a glyph *and* a word so nothing depends on colour (NO_COLOR).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::journal::events::Phase;
pub use crate::runview::{
    CheckRow, EntityRow, Finished, GateState, RollbackState, SignOffRow, StepRow,
};

/// Rows/s samples kept per entity for its sparkline: one a second, the last two minutes.
pub const THROUGHPUT_CAPACITY: usize = 120;
/// Least app-clock time between two throughput samples.
pub const THROUGHPUT_SAMPLE_MS: i64 = 1000;

/// A short history of one entity's rows read per second, sampled on the app's clock tick
/// from the live progress. Bounded: the oldest sample goes when a new one would overflow.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Throughput {
    /// The phase the samples are of; a new phase starts the history over.
    pub phase: Option<Phase>,
    /// Rows/s, oldest first, at most [`THROUGHPUT_CAPACITY`].
    pub samples: VecDeque<u64>,
    /// Clock and rows read at the last sample.
    last: Option<(DateTime<Utc>, u64)>,
}

impl Throughput {
    /// Take a sample at `now` if a second has passed since the last one: the rows read
    /// since then over the time since then. The first call only sets the baseline.
    pub fn sample(&mut self, now: DateTime<Utc>, phase: Option<Phase>, read: u64) {
        if self.phase != phase {
            *self = Throughput {
                phase,
                ..Throughput::default()
            };
        }
        let Some((at, prev)) = self.last else {
            self.last = Some((now, read));
            return;
        };
        let ms = (now - at).num_milliseconds();
        if ms < THROUGHPUT_SAMPLE_MS {
            return;
        }
        let rate = (read.saturating_sub(prev) as f64 * 1000.0 / ms as f64).round() as u64;
        if self.samples.len() == THROUGHPUT_CAPACITY {
            self.samples.pop_front();
        }
        self.samples.push_back(rate);
        self.last = Some((now, read));
    }

    pub fn latest(&self) -> Option<u64> {
        self.samples.back().copied()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogLine {
    /// `HH:MM:SS` UTC, or empty when the record had no usable time.
    pub time: String,
    pub text: String,
    pub tone: Tone,
    /// Set for lines from tracing (shown as `WARN` and so on); `None` for the journal's
    /// and the console's own.
    pub level: Option<tracing::Level>,
}

/// A wall-clock time as the console shows it (UTC, like the log): `21:40`, or `Sun 01:10`
/// when it falls on another day than `now` (a window can span days).
pub fn fmt_clock(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%a %H:%M").to_string()
    }
}

pub use crate::figures::{CheckFigures, check_figures, fmt_count, fmt_decimal, fmt_secs};
pub use crate::words::{
    StepState, Tone, check_glyph_word, decision_glyph_word, outcome_glyph_word, phase_word,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_secs(45), "45s");
        assert_eq!(fmt_secs(492), "8m12s");
        assert_eq!(fmt_secs(3720), "1h02m");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let now = t("2026-11-21T19:00:00Z");
        assert_eq!(fmt_clock(t("2026-11-21T21:40:59Z"), now), "21:40");
        assert_eq!(fmt_clock(t("2026-11-22T01:10:00Z"), now), "Sun 01:10");
    }
}
