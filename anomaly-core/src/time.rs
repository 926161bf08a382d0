//! Naive wall-clock timestamps as seconds since 1970-01-01 00:00:00.
//!
//! Meter and plant data arrive as local wall-clock times without zone; the
//! detectors only need hour of day, day and month, so timestamps are kept
//! as plain `i64` seconds on a proleptic Gregorian calendar, with no zone
//! and no leap seconds. Parsing is hand-written because it sits on the hot
//! path of CSV import (millions of rows).

/// Seconds in a day.
pub const SECONDS_PER_DAY: i64 = 86_400;

/// Nanoseconds in a second. Every reading time in the library counts
/// seconds, except inside the Prophet-compatible model, which takes pandas'
/// `datetime64[ns]` values exactly (sub-second data included, as Prophet
/// does); [`to_nanos`] is the one conversion between the two.
pub const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The whole days nanoseconds in an `i64` can count (pandas' range), as
/// every message about it says it.
pub const NANOS_RANGE: &str = "1677-09-22 to 2262-04-11";

/// `seconds` in nanoseconds, or `None` outside [`NANOS_RANGE`] (to the
/// second: 1677-09-21 00:12:44 to 2262-04-11 23:47:16).
pub fn to_nanos(seconds: i64) -> Option<i64> {
    seconds.checked_mul(NANOS_PER_SECOND)
}

/// Days since 1970-01-01 for a civil date (Howard Hinnant's algorithm).
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Civil date `(year, month, day)` for days since 1970-01-01.
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Day number (days since epoch) of a timestamp.
pub fn day_of(ts: i64) -> i64 {
    ts.div_euclid(SECONDS_PER_DAY)
}

/// Seconds since midnight of a timestamp.
pub fn second_of_day(ts: i64) -> i64 {
    ts.rem_euclid(SECONDS_PER_DAY)
}

/// `year * 12 + month - 1` of a timestamp: a month index that sorts.
pub fn month_index(ts: i64) -> i64 {
    let (y, m, _) = civil_from_days(day_of(ts));
    y * 12 + i64::from(m) - 1
}

fn is_leap(year: i64) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(year) => 29,
        _ => 28,
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    if b.is_empty() {
        return None;
    }
    b.iter().try_fold(0u32, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0')))
}

/// Parses `YYYY-MM-DD`, `YYYY-MM-DD HH:MM`, `YYYY-MM-DD HH:MM:SS[.fff]`
/// (a `T` may replace the space, a trailing `Z` is accepted) into seconds.
/// Fractional seconds are truncated. Returns `None` for anything else,
/// including impossible dates such as February 30.
///
/// ```
/// use anomaly_core::time::{parse_timestamp, format_timestamp};
/// let t = parse_timestamp("2024-02-29 13:30:00").unwrap();
/// assert_eq!(format_timestamp(t), "2024-02-29 13:30:00");
/// assert!(parse_timestamp("2023-02-29").is_none());
/// ```
pub fn parse_timestamp(text: &str) -> Option<i64> {
    let s = text.trim().as_bytes();
    let s = s.strip_suffix(b"Z").unwrap_or(s);
    if s.len() < 10 || s[4] != b'-' || s[7] != b'-' {
        return None;
    }
    let year = i64::from(digits(&s[0..4])?);
    let month = digits(&s[5..7])?;
    let day = digits(&s[8..10])?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let mut secs = 0i64;
    if s.len() > 10 {
        if s[10] != b' ' && s[10] != b'T' {
            return None;
        }
        let t = &s[11..];
        if t.len() < 5 || t[2] != b':' {
            return None;
        }
        let hour = digits(&t[0..2])?;
        let minute = digits(&t[3..5])?;
        let mut second = 0;
        if t.len() > 5 {
            if t.len() < 8 || t[5] != b':' {
                return None;
            }
            second = digits(&t[6..8])?;
            if t.len() > 8 && (t[8] != b'.' || digits(&t[9..]).is_none()) {
                return None;
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        secs = i64::from(hour * 3600 + minute * 60 + second);
    }
    Some(days_from_civil(year, month, day) * SECONDS_PER_DAY + secs)
}

/// Formats seconds as `YYYY-MM-DD HH:MM:SS`.
pub fn format_timestamp(ts: i64) -> String {
    let mut out = String::with_capacity(19);
    write_timestamp(&mut out, ts);
    out
}

/// Appends `YYYY-MM-DD HH:MM:SS` to `out` without allocating.
pub fn write_timestamp(out: &mut String, ts: i64) {
    let (y, m, d) = civil_from_days(day_of(ts));
    let s = second_of_day(ts);
    let (hh, mm, ss) = (s / 3600, (s / 60) % 60, s % 60);
    use std::fmt::Write;
    // Writing to a String cannot fail.
    let _ = write!(out, "{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02}");
}

/// Appends `YYYY-MM-DD HH:MM:SS` to a byte buffer: the same text as
/// [`format_timestamp`], written digit by digit because CSV export calls it
/// once per row.
pub fn push_timestamp(out: &mut Vec<u8>, ts: i64) {
    let (y, m, d) = civil_from_days(day_of(ts));
    let s = second_of_day(ts);
    if (0..10_000).contains(&y) {
        let two = |out: &mut Vec<u8>, v: i64| out.extend_from_slice(&[b'0' + (v / 10) as u8, b'0' + (v % 10) as u8]);
        two(out, y / 100);
        two(out, y % 100);
        out.push(b'-');
        two(out, i64::from(m));
        out.push(b'-');
        two(out, i64::from(d));
        out.push(b' ');
        two(out, s / 3600);
        out.push(b':');
        two(out, (s / 60) % 60);
        out.push(b':');
        two(out, s % 60);
    } else {
        // Years outside 0-9999 (negative or five digits) take the general path.
        out.extend_from_slice(format_timestamp(ts).as_bytes());
    }
}

/// The unit of a duration, also the unit of a bare number (see [`parse_duration`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DurationUnit {
    /// `ms`.
    Millisecond,
    /// `s`.
    Second,
    /// `m` or `min`.
    Minute,
    /// `h`.
    Hour,
    /// `d`.
    Day,
    /// `w`.
    Week,
}

impl DurationUnit {
    fn nanos(self) -> u128 {
        const S: u128 = 1_000_000_000;
        match self {
            DurationUnit::Millisecond => S / 1000,
            DurationUnit::Second => S,
            DurationUnit::Minute => 60 * S,
            DurationUnit::Hour => 3600 * S,
            DurationUnit::Day => 86_400 * S,
            DurationUnit::Week => 604_800 * S,
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_lowercase().as_str() {
            "ms" | "msec" | "msecs" | "millisecond" | "milliseconds" => DurationUnit::Millisecond,
            "s" | "sec" | "secs" | "second" | "seconds" => DurationUnit::Second,
            "m" | "min" | "mins" | "minute" | "minutes" => DurationUnit::Minute,
            "h" | "hr" | "hrs" | "hour" | "hours" => DurationUnit::Hour,
            "d" | "day" | "days" => DurationUnit::Day,
            "w" | "week" | "weeks" => DurationUnit::Week,
            _ => return None,
        })
    }
}

const DURATION_GRAMMAR: &str = "expected a duration such as 30m, 1h, 1h30m, 1.5h or 2d (units ms, s, m/min, h, d, w)";

/// The longest duration [`parse_duration`] accepts: 100 years, so that any
/// duration added to or taken from a clock or a reading time stays in range
/// (`Instant + 2^64 s` panicked; a cutoff `now - 2^64 s` wrapped around).
pub const MAX_DURATION_SECS: u64 = 100 * 31_557_600;

/// Parses a duration, the one grammar of every duration the CLI and Python
/// accept: one or more `NUMBER[UNIT]` terms, summed (`1h30m`), with optional
/// spaces around them. `NUMBER` is digits with an optional decimal fraction
/// (`1.5h`, no sign, no exponent); `UNIT` is `ms`, `s`, `m`/`min`, `h`, `d`
/// or `w` (also spelled out, e.g. `minutes`, any case). A bare number
/// (`90`) is in `bare` units, the caller's documented default.
///
/// Arithmetic is exact and checked: a value above [`MAX_DURATION_SECS`]
/// is an error, never a wrap or a panic. Errors are
/// [`Error::InvalidParameter`](crate::Error::InvalidParameter) naming `name`
/// and the text.
///
/// ```
/// use std::time::Duration;
/// use anomaly_core::time::{parse_duration, DurationUnit};
/// assert_eq!(parse_duration("lookback", "1h30m", DurationUnit::Second).unwrap(), Duration::from_secs(5400));
/// assert_eq!(parse_duration("poll", "500ms", DurationUnit::Second).unwrap(), Duration::from_millis(500));
/// assert_eq!(parse_duration("interval", "90", DurationUnit::Minute).unwrap(), Duration::from_secs(5400));
/// assert!(parse_duration("interval", "10x", DurationUnit::Second).is_err());
/// assert!(parse_duration("interval", "99999999999999999999d", DurationUnit::Second).is_err());
/// ```
pub fn parse_duration(name: &str, text: &str, bare: DurationUnit) -> crate::Result<std::time::Duration> {
    let bad = |reason: &str| crate::Error::param(name, format!("{text:?}"), reason);
    let too_large = || bad("too large");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad(DURATION_GRAMMAR));
    }
    let (mut total, mut terms) = (0u128, 0usize);
    while !rest.is_empty() {
        let int_len = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let (int, after) = rest.split_at(int_len);
        let (frac, after) = match after.strip_prefix('.') {
            Some(f) => f.split_at(f.find(|c: char| !c.is_ascii_digit()).unwrap_or(f.len())),
            None => ("", after),
        };
        if int.is_empty() && frac.is_empty() {
            return Err(bad(DURATION_GRAMMAR));
        }
        let after = after.trim_start();
        let unit_len = after.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(after.len());
        let (unit_name, after) = after.split_at(unit_len);
        let unit = if unit_name.is_empty() {
            // A bare number only stands alone: `1h30` is a typo, not 1h30m.
            if terms > 0 || !after.is_empty() {
                return Err(bad(DURATION_GRAMMAR));
            }
            bare
        } else {
            DurationUnit::from_name(unit_name).ok_or_else(|| bad(DURATION_GRAMMAR))?
        };
        // value = (int . frac) * unit, in nanoseconds; digits past 18 decimals
        // are below a nanosecond for every unit up to a week and are dropped.
        let frac = &frac[..frac.len().min(18)];
        let scale = 10u128.pow(frac.len() as u32);
        let mut mantissa = 0u128;
        for c in int.bytes().chain(frac.bytes()) {
            mantissa =
                mantissa.checked_mul(10).and_then(|m| m.checked_add(u128::from(c - b'0'))).ok_or_else(too_large)?;
        }
        let nanos = mantissa.checked_mul(unit.nanos()).ok_or_else(too_large)? / scale;
        total = total.checked_add(nanos).ok_or_else(too_large)?;
        terms += 1;
        rest = after.trim_start();
    }
    if total > u128::from(MAX_DURATION_SECS) * 1_000_000_000 {
        return Err(bad("too large (more than 100 years)"));
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| too_large())?;
    Ok(std::time::Duration::new(secs, (total % 1_000_000_000) as u32))
}

/// Parses a sampling interval as a positive whole number of minutes that
/// fits a `u32`, with the grammar of [`parse_duration`]; a bare number is
/// minutes (`90` = `1h30m`).
///
/// ```
/// use anomaly_core::time::parse_minutes;
/// assert_eq!(parse_minutes("interval", "30m").unwrap(), 30);
/// assert_eq!(parse_minutes("interval", "1h").unwrap(), 60);
/// assert!(parse_minutes("interval", "90s").is_err());
/// assert!(parse_minutes("interval", "99999999h").is_err());
/// ```
pub fn parse_minutes(name: &str, text: &str) -> crate::Result<u32> {
    let duration = parse_duration(name, text, DurationUnit::Minute)?;
    let bad = |reason: &str| crate::Error::param(name, format!("{text:?}"), reason);
    if duration.is_zero() || duration.subsec_nanos() != 0 || duration.as_secs() % 60 != 0 {
        return Err(bad("must be a positive whole number of minutes"));
    }
    u32::try_from(duration.as_secs() / 60).map_err(|_| bad("too large"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn secs(text: &str) -> crate::Result<Duration> {
        parse_duration("interval", text, DurationUnit::Second)
    }

    #[test]
    fn duration_grammar() {
        for (text, expected) in [
            ("2s", Duration::from_secs(2)),
            ("2", Duration::from_secs(2)),
            ("500ms", Duration::from_millis(500)),
            ("10m", Duration::from_secs(600)),
            ("10min", Duration::from_secs(600)),
            ("30 minutes", Duration::from_secs(1800)),
            ("1.5h", Duration::from_secs(5400)),
            ("1h30m", Duration::from_secs(5400)),
            ("1h 30min", Duration::from_secs(5400)),
            (" 2d ", Duration::from_secs(172_800)),
            ("1w", Duration::from_secs(604_800)),
            ("1H", Duration::from_secs(3600)),
            (".5s", Duration::from_millis(500)),
            ("0.1s", Duration::from_millis(100)),
            ("0s", Duration::ZERO),
        ] {
            assert_eq!(secs(text).unwrap(), expected, "{text}");
        }
        assert_eq!(parse_duration("interval", "90", DurationUnit::Minute).unwrap(), Duration::from_secs(5400));
    }

    #[test]
    fn duration_bad_units_and_forms() {
        for bad in ["", "10x", "ten", "3y", "-1s", "+1s", "1e3s", "h", ".", "1.h2", "1h30", "1 2", "1s-", "1.5.5s"] {
            let err = secs(bad).unwrap_err();
            assert_eq!(err.field(), Some("interval"), "{bad}");
            assert!(err.to_string().contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn duration_overflow_is_an_error() {
        for huge in ["99999999999999999999d", "999999999999999999999999999999999999999999s", "18446744073709551616s"] {
            let err = secs(huge).unwrap_err();
            assert!(err.to_string().contains("too large"), "{err}");
        }
        // u64::MAX seconds fits a Duration but not an Instant: a century is the bound.
        assert!(secs("18446744073709551615s").unwrap_err().to_string().contains("100 years"));
        assert_eq!(secs("36524d").unwrap().as_secs(), 36524 * 86400);
        let err = parse_minutes("interval", "99999999h").unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
    }

    #[test]
    fn minutes() {
        assert_eq!(parse_minutes("interval", "15m").unwrap(), 15);
        assert_eq!(parse_minutes("interval", "1h").unwrap(), 60);
        assert_eq!(parse_minutes("interval", "90").unwrap(), 90);
        assert_eq!(parse_minutes("interval", "1800s").unwrap(), 30);
        for bad in ["0", "0m", "90s", "1.5m"] {
            let err = parse_minutes("interval", bad).unwrap_err();
            assert!(err.to_string().contains("positive whole number of minutes"), "{err}");
        }
    }

    #[test]
    fn push_timestamp_matches_format_timestamp() {
        for ts in [0, -1, 1_709_213_400, 253_402_300_799, 253_402_300_800, -62_167_219_201] {
            let mut out = Vec::new();
            push_timestamp(&mut out, ts);
            assert_eq!(String::from_utf8(out).unwrap(), format_timestamp(ts), "{ts}");
        }
    }

    #[test]
    fn civil_round_trip_over_four_centuries() {
        for days in (-200_000..200_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn parses_common_forms() {
        let base = parse_timestamp("2012-02-03").unwrap();
        assert_eq!(parse_timestamp("2012-02-03 00:30").unwrap(), base + 1800);
        assert_eq!(parse_timestamp("2012-02-03T00:30:15Z").unwrap(), base + 1815);
        assert_eq!(parse_timestamp(" 2012-02-03 00:30:15.250 ").unwrap(), base + 1815);
        for bad in [
            "",
            "2012-13-01",
            "2012-02-30",
            "2012-02-03 24:00",
            "12-02-03",
            "2012-02-03 1:00",
            "2012-02-03 10:00:00.x",
            "yesterday",
        ] {
            assert!(parse_timestamp(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn month_index_and_format() {
        let t = parse_timestamp("2013-12-31 23:59:59").unwrap();
        assert_eq!(month_index(t), 2013 * 12 + 11);
        assert_eq!(format_timestamp(t), "2013-12-31 23:59:59");
        assert_eq!(format_timestamp(-1), "1969-12-31 23:59:59");
    }
}
