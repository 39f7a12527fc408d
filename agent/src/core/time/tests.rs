use super::*;

fn civil(month: u8, day: u8, hour: u8, minute: u8, second: u8, milli: u16) -> Civil {
    Civil {
        year: 0,
        month,
        day,
        hour,
        minute,
        second,
        milli,
    }
}

fn ctx(now: &str, tz: &str) -> TimeContext {
    TimeContext::new(now.parse().unwrap(), TimeZone::get(tz).unwrap())
}

#[test]
fn yearless_time_takes_the_reference_year() {
    let c = ctx("2026-11-27T00:00:00Z", "UTC");
    let t = c.resolve_yearless(civil(11, 26, 10, 0, 0, 0)).unwrap();
    assert_eq!(
        t.ms,
        "2026-11-26T10:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
}

#[test]
fn yearless_time_more_than_a_day_ahead_steps_back_a_year() {
    let c = ctx("2026-01-01T00:30:00Z", "UTC");
    let t = c.resolve_yearless(civil(12, 31, 23, 59, 0, 0)).unwrap();
    assert_eq!(
        t.ms,
        "2025-12-31T23:59:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    // Less than a day ahead (clock skew) stays in the reference year.
    let c = ctx("2026-03-10T12:00:00Z", "UTC");
    let t = c.resolve_yearless(civil(3, 11, 6, 0, 0, 0)).unwrap();
    assert_eq!(
        t.ms,
        "2026-03-11T06:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
}

/// Across New Year the other way: a line of the first seconds of January read at the last
/// minute of December is in a few seconds (a sender's clock a little ahead), not almost a
/// year ago.
#[test]
fn yearless_time_just_past_new_year_takes_the_next_year() {
    let c = ctx("2026-12-31T23:59:00Z", "UTC");
    let t = c.resolve_yearless(civil(1, 1, 0, 0, 30, 0)).unwrap();
    assert_eq!(
        t.ms,
        "2027-01-01T00:00:30Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    // More than a day ahead in the next year is last year's.
    let c = ctx("2026-12-30T00:00:00Z", "UTC");
    let t = c.resolve_yearless(civil(1, 1, 0, 0, 30, 0)).unwrap();
    assert_eq!(
        t.ms,
        "2026-01-01T00:00:30Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
}

#[test]
fn zone_applies_with_daylight_saving() {
    let c = ctx("2026-11-27T00:00:00Z", "Europe/Berlin");
    let summer = c.resolve_yearless(civil(7, 1, 12, 0, 0, 0)).unwrap();
    assert_eq!(summer.offset_min, 120);
    assert_eq!(
        summer.ms,
        "2026-07-01T10:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    let winter = c.resolve_yearless(civil(1, 1, 12, 0, 0, 0)).unwrap();
    assert_eq!(winter.offset_min, 60);
}

#[test]
fn feb_29_in_a_non_leap_reference_year_goes_to_the_previous_leap_year() {
    let c = ctx("2026-03-01T00:00:00Z", "UTC");
    assert!(c.resolve_yearless(civil(2, 29, 1, 0, 0, 0)).is_none());
    let c = ctx("2029-03-01T00:00:00Z", "UTC");
    // 2028 is the year before and is a leap year.
    let t = c.resolve_yearless(civil(2, 29, 1, 0, 0, 0)).unwrap();
    assert_eq!(
        t.ms,
        "2028-02-29T01:00:00Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
}

#[test]
fn iso_with_offset_fraction_and_without_zone() {
    let c = ctx("2026-11-27T00:00:00Z", "UTC");
    let (t, n) = parse_iso(b"2003-10-11T22:14:15.003-07:00 rest", &c).unwrap();
    assert_eq!(n, 29);
    assert_eq!(t.offset_min, -420);
    assert_eq!(
        t.ms,
        "2003-10-12T05:14:15.003Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    let (t, _) = parse_iso(b"2003-10-11 22:14:15", &c).unwrap();
    assert_eq!(
        t.ms,
        "2003-10-11T22:14:15Z"
            .parse::<Timestamp>()
            .unwrap()
            .as_millisecond()
    );
    assert!(parse_iso(b"2003-13-11T22:14:15Z", &c).is_none());
}

/// Chatham's daylight saving ends at 03:45 local (+13:45 → +12:45): a line at 03:50 read
/// right after one at 03:30 (the earlier of its two readings) took that one's offset from a
/// cache kept by the hour.
#[test]
fn an_offset_change_off_the_hour_applies_from_its_minute() {
    let c = ctx("2026-04-10T00:00:00Z", "Pacific/Chatham");
    let early = c.resolve_yearless(civil(4, 5, 3, 30, 0, 0)).unwrap();
    let late = c.resolve_yearless(civil(4, 5, 3, 50, 0, 0)).unwrap();
    assert_eq!(early.offset_min, 13 * 60 + 45);
    assert_eq!(late.offset_min, 12 * 60 + 45);
}
