//! Figures as people read them: counts and exact decimals thousands-separated, check
//! values with their currency and a signed difference. Shared by the steps (journaled
//! check lines), the reconciliation and the console, so it sits below all of them.

use rust_decimal::Decimal;

use crate::journal::events::CheckResult;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::events::CheckStatus;

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
    fn formats_counts() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(1234567), "1,234,567");
        assert_eq!(fmt_count(123), "123");
    }
}
