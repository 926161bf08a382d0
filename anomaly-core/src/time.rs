//! Naive wall-clock timestamps as seconds since 1970-01-01 00:00:00.
//!
//! Meter and plant data arrive as local wall-clock times without zone; the
//! detectors only need hour of day, day and month, so timestamps are kept
//! as plain `i64` seconds on a proleptic Gregorian calendar, with no zone
//! and no leap seconds. Parsing is hand-written because it sits on the hot
//! path of CSV import (millions of rows).

/// Seconds in a day.
pub const SECONDS_PER_DAY: i64 = 86_400;

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

#[cfg(test)]
mod tests {
    use super::*;

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
