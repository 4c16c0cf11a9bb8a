//! The `datetime` rule: a local date and time in a declared format and zone, stored in UTC.
//!
//! Canonical form (what every sink receives): `YYYY-MM-DD HH:MM:SS` in UTC, followed by
//! `.ffffff` (six digits) only when the source wrote a non-zero fraction of a second.
//! A local time that happens twice (clocks going back) or never (clocks going forward) in
//! the source zone is rejected with its reason: there is no right guess.

use chrono::{
    Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Timelike,
};

/// One element of a datetime format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
    Lit(char),
}

/// A parsed format such as `DD/MM/YYYY HH:mm`.
#[derive(Debug, Clone)]
pub struct DtFormat {
    name: String,
    parts: Vec<Part>,
}

/// The tokens a format is built from, as the README lists them.
pub const TOKENS: &str = "YYYY MM DD HH mm ss";

impl DtFormat {
    /// `Err` says what is wrong with the format (lint shows it with file:line).
    pub fn parse(f: &str) -> Result<DtFormat, String> {
        let mut parts = Vec::new();
        let mut rest = f;
        while !rest.is_empty() {
            let token = [
                ("YYYY", Part::Year),
                ("MM", Part::Month),
                ("DD", Part::Day),
                ("HH", Part::Hour),
                ("mm", Part::Minute),
                ("ss", Part::Second),
            ]
            .into_iter()
            .find(|(t, _)| rest.starts_with(t));
            match token {
                Some((t, p)) => {
                    if parts.contains(&p) {
                        return Err(format!("'{f}' has {t} twice"));
                    }
                    parts.push(p);
                    rest = &rest[t.len()..];
                }
                None => {
                    let c = rest.chars().next().unwrap_or(' ');
                    // 'T' is ISO 8601's date/time separator; any other letter is a typo.
                    if c.is_alphanumeric() && c != 'T' {
                        return Err(format!(
                            "'{f}' has '{c}', which is neither a token ({TOKENS}) nor a separator"
                        ));
                    }
                    parts.push(Part::Lit(c));
                    rest = &rest[c.len_utf8()..];
                }
            }
        }
        for (t, p) in [
            ("YYYY", Part::Year),
            ("MM", Part::Month),
            ("DD", Part::Day),
            ("HH", Part::Hour),
            ("mm", Part::Minute),
        ] {
            if !parts.contains(&p) {
                return Err(format!(
                    "'{f}' has no {t}: a datetime format needs YYYY, MM, DD, HH and mm (ss optional)"
                ));
            }
        }
        Ok(DtFormat {
            name: f.to_string(),
            parts,
        })
    }

    /// Fields as written, whether or not such a moment exists; `None` when the text does not
    /// have this format's shape. The fraction is in microseconds.
    fn fields(&self, s: &str) -> Option<Result<[u32; 7], String>> {
        let mut v = [0u32, 0, 0, 0, 0, 0, 0];
        let mut rest = s;
        for (k, p) in self.parts.iter().enumerate() {
            let width = match p {
                Part::Lit(c) => {
                    rest = rest.strip_prefix(*c)?;
                    continue;
                }
                Part::Year => 4,
                _ => 2,
            };
            let digits = rest.get(..width)?;
            if !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let n: u32 = digits.parse().ok()?;
            rest = &rest[width..];
            let slot = match p {
                Part::Year => 0,
                Part::Month => 1,
                Part::Day => 2,
                Part::Hour => 3,
                Part::Minute => 4,
                _ => 5,
            };
            v[slot] = n;
            // A fraction of a second right after `ss`, unless the format itself goes on
            // with a '.'.
            if *p == Part::Second
                && self.parts.get(k + 1) != Some(&Part::Lit('.'))
                && let Some(frac) = rest.strip_prefix('.')
            {
                let n = frac.bytes().take_while(u8::is_ascii_digit).count();
                if n == 0 {
                    return None;
                }
                if n > 6 {
                    return Some(Err(format!(
                        "'{s}' has {n} decimal places of a second; at most 6 (microseconds) are kept exactly"
                    )));
                }
                let micros: u32 = frac[..n].parse().ok()?;
                v[6] = micros * 10u32.pow(6 - n as u32);
                rest = &frac[n..];
            }
        }
        rest.is_empty().then_some(Ok(v))
    }
}

/// The zone the source's local times are written in.
#[derive(Debug, Clone)]
pub enum SourceZone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl SourceZone {
    /// `UTC`, `Z`, `+02:00` / `-0530`, or an IANA name such as `Europe/Paris`.
    pub fn parse(z: &str) -> Result<SourceZone, String> {
        if z == "UTC" || z == "Z" {
            return Ok(SourceZone::Fixed(FixedOffset::east_opt(0).expect("zero")));
        }
        if let Some(sign) = z.chars().next().filter(|c| *c == '+' || *c == '-') {
            let digits: String = z[1..].chars().filter(|c| *c != ':').collect();
            let ok = digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit());
            let (h, m): (i32, i32) = if ok {
                (
                    digits[..2].parse().unwrap_or(99),
                    digits[2..].parse().unwrap_or(99),
                )
            } else {
                (99, 99)
            };
            let secs = (h * 3600 + m * 60) * if sign == '-' { -1 } else { 1 };
            return match (m < 60).then(|| FixedOffset::east_opt(secs)).flatten() {
                Some(o) if ok => Ok(SourceZone::Fixed(o)),
                _ => Err(format!("'{z}' is not an offset like +02:00 or -05:30")),
            };
        }
        z.parse::<chrono_tz::Tz>().map(SourceZone::Named).map_err(|_| {
            format!("'{z}' is not a time zone: write UTC, an offset like +02:00, or an IANA name like Europe/Paris")
        })
    }

    fn name(&self) -> String {
        match self {
            SourceZone::Fixed(o) => o.to_string(),
            SourceZone::Named(tz) => tz.name().to_string(),
        }
    }

    fn to_utc(&self, local: NaiveDateTime) -> LocalResult<NaiveDateTime> {
        match self {
            SourceZone::Fixed(o) => o.from_local_datetime(&local).map(|t| t.naive_utc()),
            SourceZone::Named(tz) => tz.from_local_datetime(&local).map(|t| t.naive_utc()),
        }
    }
}

/// Read `s` in the first format it fits, in `zone`; the UTC moment, or why not.
pub fn read(s: &str, formats: &[DtFormat], zone: &SourceZone) -> Result<NaiveDateTime, String> {
    let shown = crate::values::shown(s);
    for f in formats {
        let v = match f.fields(s) {
            None => continue,
            Some(Err(why)) => return Err(why),
            Some(Ok(v)) => v,
        };
        let date = (v[0] != 0)
            .then(|| NaiveDate::from_ymd_opt(v[0] as i32, v[1], v[2]))
            .flatten();
        let time = NaiveTime::from_hms_micro_opt(v[3], v[4], v[5], v[6]);
        let (Some(date), Some(time)) = (date, time) else {
            return Err(format!(
                "'{shown}' is not a real date and time (read as {}); correct it in the source",
                f.name
            ));
        };
        let local = date.and_time(time);
        return match zone.to_utc(local) {
            LocalResult::Single(t) => Ok(t),
            LocalResult::Ambiguous(a, b) => Err(format!(
                "'{shown}' happens twice in {} (the clocks went back): it is {} or {} UTC; write it with the source's UTC time instead",
                zone.name(),
                canonical(&a.min(b)),
                canonical(&a.max(b))
            )),
            LocalResult::None => Err(format!(
                "'{shown}' does not exist in {} (the clocks went forward over it); correct it in the source",
                zone.name()
            )),
        };
    }
    let names: Vec<&str> = formats.iter().map(|f| f.name.as_str()).collect();
    Err(format!(
        "'{shown}' is not a date and time in an accepted format ({}); add its format to the rule's formats",
        names.join(", ")
    ))
}

/// The stored text: `YYYY-MM-DD HH:MM:SS`, plus `.ffffff` when there is a fraction.
pub fn canonical(t: &NaiveDateTime) -> String {
    let mut out = Vec::with_capacity(26);
    let _ = write_canonical(&mut out, t);
    String::from_utf8(out).expect("a formatted timestamp is UTF-8")
}

/// [`canonical`], written into `out` (a COPY buffer): digit by digit for years 0–9999
/// (chrono's `format` builds a string per value), chrono's own text otherwise.
pub fn write_canonical(out: &mut impl std::io::Write, t: &NaiveDateTime) -> std::io::Result<()> {
    let nanos = t.and_utc().timestamp_subsec_nanos();
    if !(0..=9999).contains(&t.year()) || nanos >= 1_000_000_000 {
        return if nanos == 0 {
            write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S"))
        } else {
            write!(out, "{}", t.format("%Y-%m-%d %H:%M:%S%.6f"))
        };
    }
    write_date(out, &t.date())?;
    write!(out, " {:02}:{:02}:{:02}", t.hour(), t.minute(), t.second())?;
    if nanos != 0 {
        write!(out, ".{:06}", nanos / 1_000)?;
    }
    Ok(())
}

/// A date as `%Y-%m-%d`, written into `out` as [`write_canonical`] writes it.
pub fn write_date(out: &mut impl std::io::Write, d: &NaiveDate) -> std::io::Result<()> {
    if (0..=9999).contains(&d.year()) {
        write!(out, "{:04}-{:02}-{:02}", d.year(), d.month(), d.day())
    } else {
        write!(out, "{}", d.format("%Y-%m-%d"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The digit-by-digit text is chrono's, for every kind of value a row can hold:
    /// whole seconds, fractions (cut to microseconds), a leap second, years at both ends
    /// of 0–9999 and past them.
    #[test]
    fn canonical_text_is_chronos_for_every_kind_of_timestamp() {
        let chrono_text = |t: &NaiveDateTime| {
            if t.and_utc().timestamp_subsec_nanos() == 0 {
                t.format("%Y-%m-%d %H:%M:%S").to_string()
            } else {
                t.format("%Y-%m-%d %H:%M:%S%.6f").to_string()
            }
        };
        let mut cases = Vec::new();
        for (y, m, d) in [
            (2026, 11, 30),
            (1, 1, 1),
            (0, 1, 1),
            (9999, 12, 31),
            (10_000, 1, 1),
            (-44, 3, 15),
        ] {
            let date = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            for (h, mi, s, nano) in [
                (0, 0, 0, 0),
                (23, 59, 59, 0),
                (12, 5, 9, 1_000),
                (12, 5, 9, 999_999_999),
                (1, 2, 3, 500_000_000),
                (23, 59, 59, 1_500_000_000),
            ] {
                cases.push(date.and_hms_nano_opt(h, mi, s, nano).unwrap());
            }
            let mut out = Vec::new();
            write_date(&mut out, &date).unwrap();
            assert_eq!(
                String::from_utf8(out).unwrap(),
                date.format("%Y-%m-%d").to_string()
            );
        }
        for t in &cases {
            assert_eq!(canonical(t), chrono_text(t), "{t:?}");
        }
    }
}
