//! Plain data the console shows: steps, entities, the gate, rejects, the log.
//! Every state carries a glyph *and* a word so nothing depends on colour (NO_COLOR).

use std::collections::VecDeque;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::journal::events::{CheckResult, CheckStatus, Decision, Outcome, Phase};
pub use crate::runview::{
    CheckRow, EntityRow, Finished, GateState, RollbackState, SignOffRow, StepRow, StepState,
};

/// How a thing should feel on screen. Views map it to a style; the glyph and word carry
/// the meaning on their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Neutral,
    Active,
    Good,
    Warn,
    Bad,
}

impl StepState {
    pub fn glyph(self) -> &'static str {
        match self {
            StepState::Pending => "·",
            StepState::Running => "▶",
            StepState::Passed => "✓",
            StepState::Warned => "!",
            StepState::Failed => "✗",
            StepState::WaitingSignOff => "?",
            StepState::Skipped => "-",
            StepState::RolledBack => "↺",
        }
    }

    pub fn word(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Passed => "passed",
            StepState::Warned => "warned",
            StepState::Failed => "failed",
            StepState::WaitingSignOff => "sign-off",
            StepState::Skipped => "skipped",
            StepState::RolledBack => "rolled back",
        }
    }

    pub fn tone(self) -> Tone {
        match self {
            StepState::Pending | StepState::Skipped => Tone::Neutral,
            StepState::Running | StepState::WaitingSignOff => Tone::Active,
            StepState::Passed => Tone::Good,
            StepState::Warned | StepState::RolledBack => Tone::Warn,
            StepState::Failed => Tone::Bad,
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

pub fn check_glyph_word(s: CheckStatus) -> (&'static str, &'static str, Tone) {
    match s {
        CheckStatus::Pass => ("✓", "pass", Tone::Good),
        CheckStatus::Warn => ("!", "warn", Tone::Warn),
        CheckStatus::Fail => ("✗", "FAIL", Tone::Bad),
    }
}

pub fn decision_glyph_word(d: Decision) -> (&'static str, &'static str, Tone) {
    match d {
        Decision::Go => ("✓", "GO", Tone::Good),
        Decision::NoGo => ("✗", "NO-GO", Tone::Bad),
    }
}

pub fn outcome_glyph_word(o: Outcome) -> (&'static str, &'static str, Tone) {
    match o {
        Outcome::Completed => ("✓", "COMPLETED", Tone::Good),
        Outcome::StoppedAfterStep => ("■", "STOPPED", Tone::Warn),
        Outcome::ValidationFailed => ("✗", "VALIDATION FAILED", Tone::Bad),
        Outcome::WaitingAtGate => ("?", "WAITING AT GATE", Tone::Warn),
        Outcome::NoGo => ("✗", "NO-GO", Tone::Bad),
        Outcome::RolledBack => ("↺", "ROLLED BACK", Tone::Warn),
        Outcome::Failed => ("✗", "FAILED", Tone::Bad),
    }
}

pub fn phase_word(p: Option<Phase>) -> &'static str {
    match p {
        Some(Phase::DryRun) => "dry-run",
        Some(Phase::Load) => "load",
        None => "",
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

/// `1h02m`, `8m12s`, `45s`.
pub fn fmt_secs(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, (secs % 3600) / 60, secs % 60);
    if h > 0 {
        format!("{h}h{m:02}m")
    } else if m > 0 {
        format!("{m}m{s:02}s")
    } else {
        format!("{s}s")
    }
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

/// `12,345`.
pub fn fmt_count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An exact decimal as finance reads it: `-1,234,567.89`, its scale kept (`0.00` stays
/// `0.00`), never through a float.
pub fn fmt_decimal(d: Decimal) -> String {
    let abs = d.abs().to_string();
    let (int, frac) = abs.split_once('.').unwrap_or((&abs, ""));
    let mut out = String::with_capacity(abs.len() + abs.len() / 3 + 1);
    if d.is_sign_negative() && !d.is_zero() {
        out.push('-');
    }
    for (i, ch) in int.chars().enumerate() {
        if i > 0 && (int.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    if !frac.is_empty() {
        out.push('.');
        out.push_str(frac);
    }
    out
}

/// A check value that is an exact decimal (a count or a sum as the engine writes it);
/// `None` for fingerprints, rates (`12.50%`), bounds (`≤ 25.00%`).
fn exact_decimal(s: &str) -> Option<Decimal> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    let plain = !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
        && digits.starts_with(|c: char| c.is_ascii_digit());
    plain.then(|| s.parse().ok()).flatten()
}

/// A check's figures as the console shows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckFigures {
    pub source: String,
    pub target: String,
    /// target − source when both are exact decimals, else `–`.
    pub difference: String,
}

/// Exact decimals thousands-separated, money with its currency (`1,234.50 EUR`), and the
/// difference signed (`+2.00 EUR`) so its direction reads without doing the sum.
pub fn check_figures(r: &CheckResult) -> CheckFigures {
    let unit = r
        .currency
        .as_ref()
        .map(|c| format!(" {c}"))
        .unwrap_or_default();
    let (src, tgt) = (exact_decimal(&r.source), exact_decimal(&r.target));
    let show = |raw: &str, d: Option<Decimal>| match d {
        Some(d) => format!("{}{unit}", fmt_decimal(d)),
        None => raw.to_string(),
    };
    let difference = match (src, tgt) {
        (Some(s), Some(t)) => {
            let mut d = t - s;
            // Cents stay cents even when one side is a bare `0`.
            d.rescale(s.scale().max(t.scale()));
            let sign = if d > Decimal::ZERO { "+" } else { "" };
            format!("{sign}{}{unit}", fmt_decimal(d))
        }
        _ => "–".to_string(),
    };
    CheckFigures {
        source: show(&r.source, src),
        target: show(&r.target, tgt),
        difference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_decimals_exactly() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(fmt_decimal(d("1234567.89")), "1,234,567.89");
        assert_eq!(fmt_decimal(d("-1234567.89")), "-1,234,567.89");
        assert_eq!(fmt_decimal(d("-0.01")), "-0.01");
        assert_eq!(fmt_decimal(d("0.00")), "0.00");
        assert_eq!(fmt_decimal(d("-0.00")), "0.00");
        assert_eq!(fmt_decimal(d("100.10")), "100.10");
        assert_eq!(fmt_decimal(d("999")), "999");
        assert_eq!(fmt_decimal(d("1000")), "1,000");
        assert_eq!(fmt_decimal(d("-123456")), "-123,456");
        assert_eq!(fmt_decimal(d("12345.678901")), "12,345.678901");
        // Beyond f64's exact range, still to the cent.
        assert_eq!(
            fmt_decimal(d("12345678901234567.01")),
            "12,345,678,901,234,567.01"
        );
    }

    #[test]
    fn check_figures_show_difference_and_currency() {
        let r = |source: &str, target: &str, currency: Option<&str>| CheckResult {
            name: "x".into(),
            entity: "e".into(),
            source: source.into(),
            target: target.into(),
            status: CheckStatus::Pass,
            detail: String::new(),
            currency: currency.map(String::from),
        };
        let f = check_figures(&r("1234567.89", "1234565.89", Some("EUR")));
        assert_eq!(f.source, "1,234,567.89 EUR");
        assert_eq!(f.target, "1,234,565.89 EUR");
        assert_eq!(f.difference, "-2.00 EUR");
        let f = check_figures(&r("311", "312", None));
        assert_eq!((f.source.as_str(), f.difference.as_str()), ("311", "+1"));
        assert_eq!(check_figures(&r("4988", "4988", None)).difference, "0");
        assert_eq!(
            check_figures(&r("0", "0.00", Some("USD"))).difference,
            "0.00 USD"
        );
        // Not exact decimals: shown as they are, no difference.
        for (s, t) in [
            ("4 rows, fingerprint 0a", "4 rows, fingerprint 0b"),
            ("12.50%", "≤ 25.00%"),
            ("0", "≥ 1"),
            ("1e3", "1e3"),
        ] {
            let f = check_figures(&r(s, t, None));
            assert_eq!((f.source.as_str(), f.target.as_str()), (s, t));
            assert_eq!(f.difference, "–");
        }
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_secs(45), "45s");
        assert_eq!(fmt_secs(492), "8m12s");
        assert_eq!(fmt_secs(3720), "1h02m");
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_count(123), "123");
        let t = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().to_utc();
        let now = t("2026-11-21T19:00:00Z");
        assert_eq!(fmt_clock(t("2026-11-21T21:40:59Z"), now), "21:40");
        assert_eq!(fmt_clock(t("2026-11-22T01:10:00Z"), now), "Sun 01:10");
    }
}
