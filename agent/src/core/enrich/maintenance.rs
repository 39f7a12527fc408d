//! Maintenance windows from the config (weekdays and a time range in a zone): events that
//! fall inside one are marked (`unmapped.vedette.maintenance_window`), so a detection can
//! tell a planned reboot from an unplanned one.

use jiff::Timestamp;
use jiff::civil::Weekday;
use jiff::tz::TimeZone;
use vedette_schemas::ocsf::{Event, VedetteNotes};

/// One window.
#[derive(Debug, Clone)]
pub struct MaintenanceWindow {
    /// Name, as the events carry it.
    pub name: String,
    /// Days it starts on (Monday first).
    pub days: [bool; 7],
    /// Start, minutes after local midnight.
    pub from_min: u16,
    /// End (exclusive), minutes after local midnight; at or before `from_min`, the window
    /// runs past midnight into the next day.
    pub to_min: u16,
    /// The zone its times are in.
    pub tz: TimeZone,
}

/// Day index, Monday = 0.
fn day_index(d: Weekday) -> usize {
    usize::from(d.to_monday_zero_offset().unsigned_abs())
}

/// Parses `HH:MM` into minutes after midnight.
pub fn parse_hhmm(s: &str) -> Option<u16> {
    let (h, m) = s.split_once(':')?;
    let (h, m): (u16, u16) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60)
        .then_some(h * 60 + m)
        .or((h == 24 && m == 0).then_some(1440))
}

/// Parses a weekday name (`mon`, `Monday` …) into its index, Monday = 0.
pub fn parse_day(s: &str) -> Option<usize> {
    let s = s.to_ascii_lowercase();
    ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
        .iter()
        .position(|d| s.starts_with(d))
}

impl MaintenanceWindow {
    /// Whether the instant `ms` falls inside the window.
    pub fn contains(&self, ms: i64) -> bool {
        let Ok(t) = Timestamp::from_millisecond(ms) else {
            return false;
        };
        let local = t.to_zoned(self.tz.clone());
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        let today = day_index(local.weekday());
        let yesterday = (today + 6) % 7;
        if self.from_min < self.to_min {
            self.days[today] && (self.from_min..self.to_min).contains(&minute)
        } else {
            // Overnight: from `from` on a listed day to `to` the next day.
            (self.days[today] && minute >= self.from_min)
                || (self.days[yesterday] && minute < self.to_min)
        }
    }
}

/// Marks `ev` with the first window its time falls in.
pub fn apply(windows: &[MaintenanceWindow], ev: &mut Event) {
    if let Some(w) = windows.iter().find(|w| w.contains(ev.time)) {
        ev.unmapped_mut()
            .vedette
            .get_or_insert_with(VedetteNotes::default)
            .maintenance_window = Some(w.name.clone().into());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(s: &str) -> i64 {
        s.parse::<Timestamp>().unwrap().as_millisecond()
    }

    #[test]
    fn windows_match_weekday_and_time_in_their_zone() {
        let tue_night = MaintenanceWindow {
            name: "patch".into(),
            days: [false, true, false, false, false, false, false],
            from_min: parse_hhmm("22:00").unwrap(),
            to_min: parse_hhmm("02:00").unwrap(),
            tz: TimeZone::get("Europe/Berlin").unwrap(),
        };
        // 2026-11-24 is a Tuesday; Berlin is UTC+1 in November.
        assert!(tue_night.contains(ms("2026-11-24T21:30:00Z"))); // 22:30 Tue
        assert!(tue_night.contains(ms("2026-11-25T00:30:00Z"))); // 01:30 Wed
        assert!(!tue_night.contains(ms("2026-11-25T01:00:00Z"))); // 02:00 Wed
        assert!(!tue_night.contains(ms("2026-11-24T20:59:00Z"))); // 21:59 Tue
        assert!(!tue_night.contains(ms("2026-11-25T21:30:00Z"))); // 22:30 Wed
        let day = MaintenanceWindow {
            name: "sat".into(),
            days: [false, false, false, false, false, true, false],
            from_min: 0,
            to_min: 1440,
            tz: TimeZone::UTC,
        };
        assert!(day.contains(ms("2026-11-28T12:00:00Z")));
        assert!(!day.contains(ms("2026-11-29T00:00:00Z")));
        assert_eq!(parse_day("Saturday"), Some(5));
        assert_eq!(parse_hhmm("25:00"), None);
    }
}
