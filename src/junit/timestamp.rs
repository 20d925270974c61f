//! JUnit `timestamp` attributes (RFC 3339 / ISO 8601 date-times, e.g.
//! nextest's `2026-11-27T15:09:01.008+00:00`) as points in time.
//!
//! Only differences between the timestamps of one report are used (when its
//! tests ran, relative to each other, on the clock of the machine that ran
//! them), so a timestamp without an offset is read as UTC: all of one
//! report's are written the same way.

use std::time::{Duration, SystemTime};

/// `2026-11-27T15:09:01.008+00:00`, `…T15:09:01Z`, `… 15:09:01.123456`
/// (a space for the `T`, any number of fraction digits, an optional `Z` or
/// `±HH:MM` / `±HHMM` offset). `None` for anything else, or a time before
/// 1970.
pub fn parse(text: &str) -> Option<SystemTime> {
    let b = text.trim().as_bytes();
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let digits = b.get(range)?;
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        Some(
            digits
                .iter()
                .fold(0i64, |n, &d| n * 10 + i64::from(d - b'0')),
        )
    };
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    // 60: a leap second, as RFC 3339 allows.
    if second > 60 {
        return None;
    }
    let mut i = 19;
    let mut nanos = 0u32;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while b.get(i).is_some_and(u8::is_ascii_digit) {
            if i - start < 9 {
                nanos = nanos * 10 + u32::from(b[i] - b'0');
            }
            i += 1;
        }
        if i == start {
            return None;
        }
        for _ in (i - start)..9 {
            nanos *= 10;
        }
    }
    let offset_secs = match b.get(i) {
        None => 0,
        Some(b'Z' | b'z') if i + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) => {
            let rest = &b[i + 1..];
            let (h, m) = match rest.len() {
                5 if rest[2] == b':' => (num(i + 1..i + 3)?, num(i + 4..i + 6)?),
                4 => (num(i + 1..i + 3)?, num(i + 3..i + 5)?),
                _ => return None,
            };
            if h > 23 || m > 59 {
                return None;
            }
            let s = h * 3600 + m * 60;
            if sign == b'+' {
                s
            } else {
                -s
            }
        }
        _ => return None,
    };
    let secs = days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second
        - offset_secs;
    let secs = u64::try_from(secs).ok()?;
    SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
/// `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(text: &str) -> Option<f64> {
        parse(text).map(|t| {
            t.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs_f64()
        })
    }

    #[test]
    fn reads_the_forms_runners_write() {
        // `date -u -d 2026-11-27T15:09:01 +%s` = 1795792141
        assert_eq!(secs("2026-11-27T15:09:01+00:00"), Some(1_795_792_141.0));
        assert_eq!(
            secs("2026-11-27T15:09:01.008+00:00"),
            Some(1_795_792_141.008)
        );
        assert_eq!(secs("2026-11-27T15:09:01Z"), Some(1_795_792_141.0));
        assert_eq!(secs("2026-11-27 15:09:01.5"), Some(1_795_792_141.5));
        assert_eq!(secs("2026-11-27T16:09:01+01:00"), Some(1_795_792_141.0));
        assert_eq!(secs("2026-11-27T14:39:01-0030"), Some(1_795_792_141.0));
        assert_eq!(secs("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(secs("2000-02-29T00:00:00Z"), Some(951_782_400.0));
        let micro = parse("2026-11-27T15:09:01.123456789123+00:00").unwrap();
        let base = parse("2026-11-27T15:09:01+00:00").unwrap();
        assert_eq!(
            micro.duration_since(base).unwrap(),
            Duration::from_nanos(123_456_789)
        );
    }

    #[test]
    fn rejects_anything_else() {
        for bad in [
            "",
            "yesterday",
            "2026-11-27",
            "2026-13-27T15:09:01Z",
            "2026-11-27T25:09:01Z",
            "2026-11-27T15:09:01.Z",
            "2026-11-27T15:09:01+5",
            "2026-11-27T15:09:01 trailing",
            "1969-12-31T23:59:59Z",
            "２０２６-11-27T15:09:01Z",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
