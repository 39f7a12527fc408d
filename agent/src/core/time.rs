//! Turning log timestamps into instants: RFC 3164's year-less local times (the year from a
//! reference time, the zone from the source), RFC 3339 / ISO 8601, and epoch seconds.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use jiff::Timestamp;
use jiff::tz::TimeZone;

/// How a source's zone-less, year-less timestamps are read.
#[derive(Debug)]
pub struct TimeContext {
    /// The reference instant for year inference (file mtime, receive time, `--now`).
    pub reference: Timestamp,
    /// The zone of timestamps that carry none.
    pub tz: TimeZone,
    /// Year of `reference` in `tz`.
    ref_year: i16,
    /// Whether `reference` is in December in `tz` (a January line may be next year's).
    ref_december: bool,
    /// Cache of the zone's offset for the minute last looked up, packed by [`pack_offset`]
    /// (one atomic word, so a source can be shared between threads; relaxed loads cost
    /// what a plain load does).
    offset_cache: AtomicU64,
}

impl Clone for TimeContext {
    fn clone(&self) -> Self {
        Self {
            reference: self.reference,
            tz: self.tz.clone(),
            ref_year: self.ref_year,
            ref_december: self.ref_december,
            offset_cache: AtomicU64::new(self.offset_cache.load(Relaxed)),
        }
    }
}

/// An empty offset cache.
const NO_OFFSET: u64 = u64::MAX;

/// Packs (minute since the epoch, offset in seconds) into one word: the minute in the high
/// 44 bits, the offset biased by 2^19 in the low 20. `None` when either does not fit (the
/// cache is then not used).
fn pack_offset(minute: i64, offset: i32) -> Option<u64> {
    const MINUTE_BITS: u32 = 44;
    let m_ok = (-(1 << (MINUTE_BITS - 1))..(1 << (MINUTE_BITS - 1))).contains(&minute);
    let biased = i64::from(offset) + (1 << 19);
    let o_ok = (0..(1 << 20)).contains(&biased);
    let packed = ((minute as u64) << 20) | biased as u64;
    (m_ok && o_ok && packed != NO_OFFSET).then_some(packed)
}

fn unpack_offset(packed: u64) -> (i64, i32) {
    (
        (packed as i64) >> 20,
        ((packed & 0xf_ffff) as i64 - (1 << 19)) as i32,
    )
}

/// A wall-clock date and time as a log wrote it, without a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    /// Year.
    pub year: i16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute, 0-59.
    pub minute: u8,
    /// Second, 0-60.
    pub second: u8,
    /// Milliseconds, 0-999.
    pub milli: u16,
}

impl Civil {
    /// A date, a `(hour, minute, second)` as [`hms`] reads it, and milliseconds.
    pub fn new(
        year: i16,
        month: u8,
        day: u8,
        (hour, minute, second): (u8, u8, u8),
        milli: u16,
    ) -> Self {
        Self {
            year,
            month,
            day,
            hour,
            minute,
            second,
            milli,
        }
    }
}

/// A resolved timestamp: ms since the epoch and the zone offset in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Instant {
    /// Milliseconds since the Unix epoch.
    pub ms: i64,
    /// Offset from UTC in minutes.
    pub offset_min: i32,
}

impl TimeContext {
    /// A context reading zone-less times in `tz`, inferring years around `reference`.
    pub fn new(reference: Timestamp, tz: TimeZone) -> Self {
        let zoned = reference.to_zoned(tz.clone());
        let (ref_year, ref_december) = (zoned.year(), zoned.month() == 12);
        Self {
            reference,
            tz,
            ref_year,
            ref_december,
            offset_cache: AtomicU64::new(NO_OFFSET),
        }
    }

    /// The offset (seconds) of the context's zone at a local wall-clock time given as
    /// seconds since the epoch as if it were UTC.
    fn local_offset(&self, local_secs: i64) -> i32 {
        // Cached by the minute: zones change offset off the hour too (Chatham at 2:45,
        // Lord Howe by half an hour), and an hour's cache gave the minutes after such a
        // change the offset from before it.
        let minute = local_secs.div_euclid(60);
        let cached = self.offset_cache.load(Relaxed);
        if cached != NO_OFFSET && unpack_offset(cached).0 == minute {
            return unpack_offset(cached).1;
        }
        let off = match Timestamp::from_second(local_secs) {
            Ok(ts) => {
                let civil = ts.to_zoned(TimeZone::UTC).datetime();
                match self.tz.to_ambiguous_timestamp(civil).compatible() {
                    Ok(real) => (local_secs - real.as_second()) as i32,
                    Err(_) => 0,
                }
            }
            Err(_) => 0,
        };
        if let Some(packed) = pack_offset(minute, off) {
            self.offset_cache.store(packed, Relaxed);
        }
        off
    }

    /// Resolves a wall-clock time in the context's zone.
    pub fn resolve_local(&self, c: Civil) -> Option<Instant> {
        let local = civil_to_epoch(c.year, c.month, c.day, c.hour, c.minute, c.second)?;
        let off = self.local_offset(local);
        Some(Instant {
            ms: (local - i64::from(off)) * 1000 + i64::from(c.milli),
            offset_min: off / 60,
        })
    }

    /// Resolves an RFC 3164 time, which has no year (`c.year` is not read): the latest of
    /// the year after the reference, the reference year and the year before that lands at
    /// most a day after the reference. The year after is for New Year: `Jan  1 00:00:30`
    /// read at 23:59 on Dec 31 (a sender's clock a little ahead, a line read just after
    /// it was written) is in a few seconds, not almost a year ago.
    pub fn resolve_yearless(&self, c: Civil) -> Option<Instant> {
        let limit = self.reference.as_millisecond() + 86_400_000;
        // Only a January line read in December can be next year's (trying the next year
        // for every line would look up the zone twice per line).
        if self.ref_december
            && c.month == 1
            && let Some(t) = self.resolve_local(Civil {
                year: self.ref_year + 1,
                ..c
            })
            && t.ms <= limit
        {
            return Some(t);
        }
        match self.resolve_local(Civil {
            year: self.ref_year,
            ..c
        }) {
            Some(t) if t.ms <= limit => Some(t),
            // Feb 29 of a non-leap reference year, or a future date: the year before.
            _ => self.resolve_local(Civil {
                year: self.ref_year - 1,
                ..c
            }),
        }
    }
}

/// Seconds since the epoch of a UTC civil time; `None` when a field is out of range.
pub fn civil_to_epoch(y: i16, mo: u8, d: u8, h: u8, mi: u8, s: u8) -> Option<i64> {
    if !(1..=12).contains(&mo) || d == 0 || d > days_in_month(y, mo) || h > 23 || mi > 59 || s > 60
    {
        return None;
    }
    // Howard Hinnant's days_from_civil.
    let y = i64::from(y) - i64::from(mo <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(mo);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(s.min(59)))
}

/// Days in a month of the proleptic Gregorian calendar.
pub fn days_in_month(y: i16, mo: u8) -> u8 {
    match mo {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        _ => 0,
    }
}

/// Month number of a three-letter English month name (case-insensitive).
pub fn month_from_abbrev(b: &[u8]) -> Option<u8> {
    if b.len() != 3 {
        return None;
    }
    let m = [
        b[0].to_ascii_lowercase(),
        b[1].to_ascii_lowercase(),
        b[2].to_ascii_lowercase(),
    ];
    Some(match &m {
        b"jan" => 1,
        b"feb" => 2,
        b"mar" => 3,
        b"apr" => 4,
        b"may" => 5,
        b"jun" => 6,
        b"jul" => 7,
        b"aug" => 8,
        b"sep" => 9,
        b"oct" => 10,
        b"nov" => 11,
        b"dec" => 12,
        _ => return None,
    })
}

/// Parses exactly `n` ASCII digits.
pub fn digits(b: &[u8], n: usize) -> Option<u32> {
    if b.len() < n {
        return None;
    }
    let mut v = 0u32;
    for &c in &b[..n] {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(c - b'0');
    }
    Some(v)
}

/// `hh:mm:ss` at the start of `b`.
pub fn hms(b: &[u8]) -> Option<(u8, u8, u8)> {
    if b.len() < 8 || b[2] != b':' || b[5] != b':' {
        return None;
    }
    Some((
        digits(b, 2)? as u8,
        digits(&b[3..], 2)? as u8,
        digits(&b[6..], 2)? as u8,
    ))
}

/// A fraction of a second after `.` or `,`: returns (milliseconds, bytes consumed incl. the dot).
pub fn fraction(b: &[u8]) -> (u16, usize) {
    if b.len() < 2 || (b[0] != b'.' && b[0] != b',') || !b[1].is_ascii_digit() {
        return (0, 0);
    }
    let n = b[1..].iter().take_while(|c| c.is_ascii_digit()).count();
    let mut ms = 0u16;
    for i in 0..3 {
        ms = ms * 10
            + b.get(1 + i)
                .filter(|_| i < n)
                .map_or(0, |c| u16::from(c - b'0'));
    }
    (ms, 1 + n)
}

/// An RFC 3339 / ISO 8601 date-time at the start of `b` (`YYYY-MM-DD[T ]hh:mm:ss[.f][Z|±hh:mm|±hhmm]`).
/// Returns the instant and the bytes consumed. Without a zone, the context's zone applies.
pub fn parse_iso(b: &[u8], ctx: &TimeContext) -> Option<(Instant, usize)> {
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || !(b[10] == b'T' || b[10] == b' ') {
        return None;
    }
    let y = digits(b, 4)? as i16;
    let mo = digits(&b[5..], 2)? as u8;
    let d = digits(&b[8..], 2)? as u8;
    let (h, mi, s) = hms(&b[11..])?;
    let (ms, flen) = fraction(&b[19..]);
    let mut i = 19 + flen;
    let base = civil_to_epoch(y, mo, d, h, mi, s)?;
    match b.get(i) {
        Some(b'Z') | Some(b'z') => {
            i += 1;
            Some((
                Instant {
                    ms: base * 1000 + i64::from(ms),
                    offset_min: 0,
                },
                i,
            ))
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(&b[i + 1..], 2)? as i32;
            let (om, len) = if b.get(i + 3) == Some(&b':') {
                (digits(&b[i + 4..], 2)? as i32, 6)
            } else {
                match digits(b.get(i + 3..).unwrap_or(&[]), 2) {
                    Some(m) => (m as i32, 5),
                    None => (0, 3),
                }
            };
            if oh > 23 || om > 59 {
                return None;
            }
            let off = (oh * 60 + om) * if sign == b'-' { -1 } else { 1 };
            i += len;
            Some((
                Instant {
                    ms: (base - i64::from(off) * 60) * 1000 + i64::from(ms),
                    offset_min: off,
                },
                i,
            ))
        }
        _ => Some((ctx.resolve_local(Civil::new(y, mo, d, (h, mi, s), ms))?, i)),
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod pack_tests {
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn offsets_pack_and_unpack(hour in -(1i64 << 43)..(1i64 << 43), off in -86_400i32..86_400) {
            let p = super::pack_offset(hour, off);
            prop_assume!(p.is_some());
            prop_assert_eq!(super::unpack_offset(p.unwrap()), (hour, off));
        }
    }
}
