//! Plain data the console shows: steps, entities, the gate, rejects, the log.
//! Every state carries a glyph *and* a word so nothing depends on colour (NO_COLOR).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};

use crate::journal::events::{CheckResult, Decision, EntityCounts, GateEvidence, Outcome, Phase};
use crate::runbook::format::StepKind;

#[derive(Debug, Clone, PartialEq)]
pub struct StepRow {
    pub id: String,
    pub kind: StepKind,
    pub title: String,
    pub planned_secs: Option<u64>,
    pub state: StepState,
    pub started_at: Option<DateTime<Utc>>,
    /// Set when the step finished (from `StepFinished.duration_ms`).
    pub duration_ms: Option<u64>,
    pub message: String,
}

impl StepRow {
    /// Actual seconds: final duration, or time since start while it runs.
    pub fn actual_secs(&self, now: Option<DateTime<Utc>>) -> Option<u64> {
        if let Some(ms) = self.duration_ms {
            return Some(ms / 1000);
        }
        match (self.started_at, now) {
            (Some(start), Some(now)) => Some((now - start).num_seconds().max(0) as u64),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntityRow {
    pub entity: String,
    pub phase: Option<Phase>,
    pub table: String,
    pub expected: u64,
    pub read: u64,
    pub valid: u64,
    pub rejected: u64,
    pub loaded: u64,
    pub elapsed_secs: f64,
    pub done: bool,
    /// Final counts from `EntityFinished`.
    pub counts: Option<EntityCounts>,
    pub reject_file: Option<String>,
}

impl EntityRow {
    /// Rows read per second so far.
    pub fn rate(&self) -> Option<f64> {
        (self.elapsed_secs > 0.0 && self.read > 0).then(|| self.read as f64 / self.elapsed_secs)
    }

    /// Seconds left at the current rate, while running.
    pub fn eta_secs(&self) -> Option<u64> {
        if self.done || self.expected == 0 {
            return None;
        }
        let rate = self.rate()?;
        Some((self.expected.saturating_sub(self.read) as f64 / rate).ceil() as u64)
    }

    /// Fraction done in 0..=1 (read against expected).
    pub fn ratio(&self) -> f64 {
        if self.done {
            1.0
        } else if self.expected == 0 {
            0.0
        } else {
            (self.read as f64 / self.expected as f64).clamp(0.0, 1.0)
        }
    }
}

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
pub struct CheckRow {
    pub step: String,
    pub result: CheckResult,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOffRow {
    pub name: String,
    pub role: String,
    pub decision: Decision,
    pub comment: String,
    /// A GO against the NO-GO recommendation.
    pub overrides: bool,
}

/// The gate that is (or was last) open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GateState {
    pub gate: String,
    pub title: String,
    pub quorum: usize,
    pub roles: Vec<String>,
    pub approvers: Vec<String>,
    pub recommendation: Decision,
    pub reasons: Vec<String>,
    pub evidence_sha256: String,
    pub evidence: GateEvidence,
    pub signoffs: Vec<SignOffRow>,
    pub decided: Option<Decision>,
}

impl GateState {
    pub fn is_open(&self) -> bool {
        self.decided.is_none()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollbackState {
    pub reason: String,
    /// `(ok, message)` once finished.
    pub finished: Option<(bool, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub outcome: Outcome,
    pub exit_code: i32,
    pub message: String,
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
