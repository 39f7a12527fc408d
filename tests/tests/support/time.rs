//! Timestamp arithmetic for comparing the agent's `time` (ms since the epoch) and
//! `timezone_offset` (minutes) with the corpora's textual timestamps. Hand-written so the
//! tests share no date library (and no bug) with the agent.

/// An instant and the UTC offset its text was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ts {
    /// Milliseconds since the Unix epoch, sub-millisecond digits truncated.
    pub(crate) ms: i64,
    /// Offset from UTC in minutes.
    pub(crate) offset_min: i64,
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
pub(crate) fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number (inverse of [`days_from_civil`]).
pub(crate) fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// Wall-clock fields `(year, month, day, hour, minute, second)` of an instant as seen
/// at `offset_min`.
pub(crate) fn civil(ms: i64, offset_min: i64) -> (i64, i64, i64, i64, i64, i64) {
    let secs = (ms + offset_min * 60_000).div_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let sod = secs.rem_euclid(86_400);
    (y, m, d, sod / 3600, sod % 3600 / 60, sod % 60)
}

/// `YYYY-MM-DDTHH:MM:SSZ` of an instant (seconds precision, UTC).
pub(crate) fn utc_seconds_text(ms: i64) -> String {
    let (y, mo, d, h, mi, s) = civil(ms, 0);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

pub(crate) fn month_number(name: &str) -> Option<i64> {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    MONTHS.iter().position(|m| *m == name).map(|i| i as i64 + 1)
}

fn num(s: &str) -> Option<i64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// `+HH:MM`, `-HHMM`, `Z` → minutes.
fn parse_offset(s: &str) -> Option<i64> {
    if s == "Z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.len() != 4 {
        return None;
    }
    Some(sign * (num(&digits[..2])? * 60 + num(&digits[2..])?))
}

/// Milliseconds of a wall-clock `[year, month, day, hour, minute, second]` plus nanoseconds,
/// written at `off` minutes from UTC.
fn ms_of([y, mo, d, h, mi, s]: [i64; 6], nanos: i64, off: i64) -> i64 {
    let secs = days_from_civil(y, mo, d) * 86_400 + h * 3600 + mi * 60 + s - off * 60;
    secs * 1000 + nanos / 1_000_000
}

/// RFC 3339 (`2003-08-24T05:14:15.000003-07:00`, `…Z`; `+0000` also accepted).
pub(crate) fn parse_rfc3339(s: &str) -> Option<Ts> {
    let b = s.as_bytes();
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || b[10] != b'T'
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (y, mo, d) = (num(&s[..4])?, num(&s[5..7])?, num(&s[8..10])?);
    let (h, mi, sec) = (num(&s[11..13])?, num(&s[14..16])?, num(&s[17..19])?);
    let mut rest = &s[19..];
    let mut nanos = 0;
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        nanos = num(&frac[..n])? * 10_i64.pow(9 - n as u32);
        rest = &frac[n..];
    }
    let off = parse_offset(rest)?;
    Some(Ts {
        ms: ms_of([y, mo, d, h, mi, sec], nanos, off),
        offset_min: off,
    })
}

/// Common Log Format time: `20/Jun/2022:13:09:14 +0200`.
pub(crate) fn parse_clf(s: &str) -> Option<Ts> {
    let (dt, off) = s.split_once(' ')?;
    let mut p = dt.splitn(4, [':', '/']);
    let d = num(p.next()?)?;
    let mo = month_number(p.next()?)?;
    let y = num(p.next()?)?;
    let hms: Vec<i64> = p.next()?.split(':').map(num).collect::<Option<_>>()?;
    let [h, mi, sec] = hms[..] else { return None };
    let off = parse_offset(off)?;
    Some(Ts {
        ms: ms_of([y, mo, d, h, mi, sec], 0, off),
        offset_min: off,
    })
}

/// Apache's error-log time, which has no zone: `Thu Oct 13 12:24:49.880562 2022`, read in
/// the zone the tests pass (`--tz UTC`).
pub(crate) fn parse_apache_error_utc(s: &str) -> Option<Ts> {
    let mut p = s.split_whitespace();
    let _weekday = p.next()?;
    let mo = month_number(p.next()?)?;
    let d = num(p.next()?)?;
    let clock = p.next()?;
    let y = num(p.next()?)?;
    let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
    let hms: Vec<i64> = hms.split(':').map(num).collect::<Option<_>>()?;
    let [h, mi, sec] = hms[..] else { return None };
    let frac = format!("{frac:0<3}");
    Some(Ts {
        ms: ms_of([y, mo, d, h, mi, sec], 0, 0) + num(&frac[..3])?,
        offset_min: 0,
    })
}

/// An epoch with a fractional part, as auditd writes it: `1684329817.579` → ms.
pub(crate) fn parse_epoch(s: &str) -> Option<i64> {
    let (secs, frac) = s.split_once('.').unwrap_or((s, ""));
    let frac = format!("{frac:0<3}");
    Some(num(secs)? * 1000 + num(&frac[..3])?)
}

/// The year an RFC 3164 `month day` gets when read at `now_ms`: this year, unless that
/// would put it more than a day in the future (then last year). Every sane inference rule
/// agrees on these dates; the day of slack covers zones ahead of UTC.
pub(crate) fn infer_year(now_ms: i64, month: i64, day: i64) -> i64 {
    let (y, ..) = civil(now_ms, 0);
    let candidate = days_from_civil(y, month, day) * 86_400_000;
    if candidate > now_ms + 86_400_000 {
        y - 1
    } else {
        y
    }
}

#[test]
fn time_helpers_agree_with_known_instants() {
    let ts = parse_rfc3339("2003-08-24T05:14:15.000003-07:00").unwrap();
    assert_eq!(
        ts,
        Ts {
            ms: 1_061_727_255_000,
            offset_min: -420
        }
    );
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap().ms, 0);
    assert_eq!(
        parse_rfc3339("2018-12-31T23:59:59.999999-23:59")
            .unwrap()
            .offset_min,
        -1439
    );
    assert_eq!(
        parse_clf("20/Jun/2022:13:09:14 +0200").unwrap().ms,
        1_655_723_354_000
    );
    assert_eq!(parse_epoch("1684329817.579"), Some(1_684_329_817_579));
    assert_eq!(civil(951_782_400_000, 0), (2000, 2, 29, 0, 0, 0));
    assert_eq!(utc_seconds_text(1_061_727_255_999), "2003-08-24T12:14:15Z");
    let now = parse_rfc3339("2026-11-27T00:00:00Z").unwrap().ms;
    assert_eq!(infer_year(now, 11, 27), 2026);
    assert_eq!(infer_year(now, 12, 10), 2025);
}
