//! Retries after transient faults: which errors are worth another attempt, and how long
//! to wait before it (exponential backoff with jitter, bounded by the runbook's
//! `settings.retries` / `settings.retry_delay`).

use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use crate::runbook::format::Settings;
use crate::runbook::lint::parse_duration;

/// No single wait is longer than this (unless `retry_delay` itself is).
pub const MAX_DELAY: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt; 0 turns retrying off.
    pub max: u32,
    /// Wait before the first retry; it doubles for each further one.
    pub first: Duration,
    /// Longest wait.
    pub cap: Duration,
}

impl RetryPolicy {
    /// No retries: a transient fault fails at once.
    pub const NONE: RetryPolicy = RetryPolicy {
        max: 0,
        first: Duration::ZERO,
        cap: Duration::ZERO,
    };

    pub fn from_settings(s: &Settings) -> RetryPolicy {
        // The lint refuses a retry_delay that is not a duration; 1 s is its default.
        let first = parse_duration(&s.retry_delay).unwrap_or(Duration::from_secs(1));
        RetryPolicy {
            max: s.retries,
            first,
            // A first delay the runbook sets above the cap is taken as asked.
            cap: MAX_DELAY.max(first),
        }
    }

    /// The wait before retry `attempt` (1 for the first), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, random_u64())
    }

    /// `first · 2^(attempt-1)`, capped, then drawn uniformly from its upper half by `r`:
    /// retries of several processes hit by the same outage do not arrive in step, and
    /// none waits less than half the planned time.
    pub fn delay_with(&self, attempt: u32, r: u64) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        let d = self.first.saturating_mul(1u32 << doublings).min(self.cap);
        let half = d / 2;
        let span = (d - half).as_nanos() as u64;
        let extra = if span == 0 { 0 } else { r % (span + 1) };
        half + Duration::from_nanos(extra)
    }
}

/// A fresh pseudo-random number: std's per-process random SipHash keys, renewed for each
/// `RandomState`. Jitter needs nothing stronger.
fn random_u64() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max: u32, first_ms: u64) -> RetryPolicy {
        RetryPolicy::from_settings(&Settings {
            retries: max,
            retry_delay: format!("{first_ms}ms"),
            ..Settings::default()
        })
    }

    #[test]
    fn delays_double_up_to_the_cap_with_jitter_in_the_upper_half() {
        let p = policy(5, 1000);
        assert_eq!(
            (p.max, p.first, p.cap),
            (5, Duration::from_secs(1), MAX_DELAY)
        );
        // r = 0 gives the lower bound, r = u64::MAX-ish some value ≤ the full delay.
        for (attempt, full) in [(1, 1), (2, 2), (3, 4), (4, 8), (5, 16), (6, 30), (40, 30)] {
            let full = Duration::from_secs(full);
            assert_eq!(p.delay_with(attempt, 0), full / 2, "attempt {attempt}");
            let span = (full - full / 2).as_nanos() as u64;
            assert_eq!(p.delay_with(attempt, span), full, "attempt {attempt}");
            for _ in 0..50 {
                let d = p.delay(attempt);
                assert!(d >= full / 2 && d <= full, "attempt {attempt}: {d:?}");
            }
        }
        // A first delay above the cap is honoured, not cut.
        assert_eq!(policy(1, 60_000).delay_with(1, 0), Duration::from_secs(30));
        assert_eq!(policy(1, 60_000).cap, Duration::from_secs(60));
        assert_eq!(RetryPolicy::NONE.delay_with(3, 12345), Duration::ZERO);
        // The default settings: 5 retries, 1 s first.
        assert_eq!(
            RetryPolicy::from_settings(&Settings::default()),
            policy(5, 1000)
        );
    }

    #[test]
    fn jitter_varies() {
        let p = policy(3, 1000);
        let seen: std::collections::HashSet<Duration> = (0..20).map(|_| p.delay(3)).collect();
        assert!(seen.len() > 1, "no jitter: {seen:?}");
    }
}
