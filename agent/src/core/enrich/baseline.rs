//! The first-seen baseline: for Authentication, whether this (host, user, source address)
//! was seen in the last N days (default 30). A first logon from a new place is what an
//! analyst asks about first. Bounded in size (the oldest pairs go first) and persisted in
//! the agent's state dir across restarts (the shell saves [`Baseline::encode`]).

use std::collections::HashMap;

use vedette_schemas::ocsf::{Class, Event, VedetteNotes};

use crate::core::prehashed::Prehashed;
use xxhash_rust::xxh3::Xxh3;

const HEADER: &str = "vedette-baseline 2";

/// Minutes since the epoch (0 before it), the baseline's resolution.
fn minutes(ms: i64) -> u32 {
    u32::try_from(ms.max(0) / 60_000).unwrap_or(u32::MAX)
}

/// The baseline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Baseline {
    /// Pair hash (xxh3-64: a collision among 50,000 pairs has odds of ~1e-10) → last seen,
    /// minutes since the epoch (12 bytes a pair: the baseline stays small on a host).
    seen: HashMap<u64, u32, Prehashed>,
    max: usize,
    retain_ms: i64,
    dirty: bool,
}

impl Baseline {
    /// An empty baseline keeping `max` pairs for `retain_days`.
    pub fn new(max: usize, retain_days: u32) -> Self {
        Self {
            seen: HashMap::default(),
            max: max.max(1),
            retain_ms: i64::from(retain_days) * 86_400_000,
            dirty: false,
        }
    }

    /// Pairs known.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    /// Whether no pair is known.
    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Whether it changed since [`Baseline::mark_saved`].
    pub fn is_dirty(&self) -> bool {
        self.dirty
    }

    /// The state was saved.
    pub fn mark_saved(&mut self) {
        self.dirty = false;
    }

    /// Marks a successful logon (an Authentication Success) with
    /// `unmapped.vedette.first_seen` and records its pair at the event's time, never later
    /// than a day after `now_ms`.
    ///
    /// Only successes: a failure is anyone's to send, so a brute force's failures recorded
    /// the pair, and its own success then came out as seen before; a spray of failures
    /// for made-up users evicted the real history. A line dated in the future pinned its
    /// pair until then. A relayed record is keyed by the sender that relayed it too, so a
    /// remote sender naming this host cannot vouch for a pair here.
    pub fn check(&mut self, ev: &mut Event, now_ms: i64) {
        if ev.class() != Class::Authentication
            || ev.header.status != Some(vedette_schemas::ocsf::Status::Success)
        {
            return;
        }
        let (Some(user), Some(ip)) = (
            ev.user.as_ref().and_then(|u| u.name.as_deref()),
            ev.src_endpoint.as_ref().and_then(|e| e.ip.as_deref()),
        ) else {
            return;
        };
        let host = ev
            .device
            .as_ref()
            .and_then(|d| d.hostname.as_deref().or(d.ip.as_deref()))
            .unwrap_or("");
        let relay = ev
            .metadata
            .loggers
            .as_ref()
            .and_then(|l| l.first())
            .and_then(|l| l.device.as_ref())
            .and_then(|d| d.ip.as_deref().or(d.hostname.as_deref()))
            .unwrap_or("");
        let mut h = Xxh3::new();
        for part in [relay, host, user, ip] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        let key = h.digest();
        let t = minutes(ev.time.min(now_ms.saturating_add(86_400_000)));
        let retain = u32::try_from(self.retain_ms / 60_000).unwrap_or(u32::MAX);
        let first = self
            .seen
            .get(&key)
            .is_none_or(|&last| t.saturating_sub(last) > retain);
        let last = self.seen.entry(key).or_insert(t);
        *last = (*last).max(t);
        self.dirty = true;
        if self.seen.len() > self.max {
            self.evict();
        }
        ev.unmapped_mut()
            .vedette
            .get_or_insert_with(VedetteNotes::default)
            .first_seen = Some(first);
    }

    /// Drops the oldest tenth (at least one), so eviction runs rarely.
    fn evict(&mut self) {
        let mut times: Vec<u32> = self.seen.values().copied().collect();
        let cut = (self.max / 10).max(1).min(times.len() - 1);
        let (_, &mut nth, _) = times.select_nth_unstable(cut);
        self.seen.retain(|_, &mut t| t > nth);
    }

    /// The state as text: a header, then `KEY LAST_SEEN_MINUTE` per pair.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(self.seen.len() * 28 + 32);
        out.push_str(HEADER);
        out.push('\n');
        for (k, t) in &self.seen {
            out.push_str(&format!("{k:016x} {t}\n"));
        }
        out
    }

    /// Reads [`Baseline::encode`]'s text; a bad line names its number.
    pub fn decode(text: &str, max: usize, retain_days: u32) -> Result<Self, String> {
        let mut b = Self::new(max, retain_days);
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err(format!("line 1: expected {HEADER:?}"));
        }
        for (i, l) in lines.enumerate() {
            let (k, t) = l
                .split_once(' ')
                .and_then(|(k, t)| Some((u64::from_str_radix(k, 16).ok()?, t.parse().ok()?)))
                .ok_or_else(|| format!("line {}: expected KEY LAST_SEEN_MINUTE", i + 2))?;
            b.seen.insert(k, t);
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use vedette_schemas::ocsf::{Device, Endpoint, Product, User};

    use super::*;

    fn logon(user: &str, ip: &str, t: i64) -> Event {
        let mut ev = Event::new(Class::Authentication, 1, t, Product::default());
        ev.header.status = Some(vedette_schemas::ocsf::Status::Success);
        ev.user = Some(User {
            name: Some(user.into()),
            ..User::default()
        });
        ev.src_endpoint = Some(Endpoint {
            ip: Some(ip.into()),
            ..Endpoint::default()
        });
        ev.device = Some(Device {
            hostname: Some("web-1".into()),
            ..Device::default()
        });
        ev
    }

    fn first(b: &mut Baseline, user: &str, ip: &str, t: i64) -> bool {
        let mut ev = logon(user, ip, t);
        b.check(&mut ev, t);
        ev.unmapped.unwrap().vedette.unwrap().first_seen.unwrap()
    }

    /// A failure is anyone's to send: it neither records the pair nor is marked, so a
    /// brute force's own success is still the pair's first.
    #[test]
    fn only_successes_count() {
        let mut b = Baseline::new(1000, 30);
        let mut failed = logon("root", "6.6.6.6", 0);
        failed.header.status = Some(vedette_schemas::ocsf::Status::Failure);
        b.check(&mut failed, 0);
        assert!(failed.unmapped.is_none());
        assert!(first(&mut b, "root", "6.6.6.6", DAY));
    }

    /// A line dated in the future pinned its pair until then.
    #[test]
    fn a_future_date_counts_as_at_most_a_day_ahead() {
        let mut b = Baseline::new(1000, 30);
        let mut ev = logon("alice", "10.0.0.1", 100 * 365 * DAY);
        b.check(&mut ev, 0);
        assert!(first(&mut b, "alice", "10.0.0.1", 40 * DAY));
    }

    /// A relayed record naming this host is keyed by its relay too.
    #[test]
    fn a_relayed_logon_does_not_vouch_for_a_local_pair() {
        let mut b = Baseline::new(1000, 30);
        let mut relayed = logon("root", "5.5.5.6", 0);
        relayed.metadata.loggers = Some(vec![vedette_schemas::ocsf::Logger {
            device: Some(Device {
                ip: Some("192.0.2.9".into()),
                ..Device::default()
            }),
            ..Default::default()
        }]);
        b.check(&mut relayed, 0);
        assert!(first(&mut b, "root", "5.5.5.6", DAY));
    }

    const DAY: i64 = 86_400_000;

    #[test]
    fn pairs_are_new_once_per_window() {
        let mut b = Baseline::new(1000, 30);
        assert!(first(&mut b, "alice", "10.0.0.1", 0));
        assert!(!first(&mut b, "alice", "10.0.0.1", DAY));
        assert!(first(&mut b, "alice", "10.0.0.2", DAY));
        assert!(first(&mut b, "bob", "10.0.0.1", DAY));
        // Seen last on day 1; day 40 is more than 30 days later.
        assert!(first(&mut b, "alice", "10.0.0.1", 40 * DAY));
    }

    #[test]
    fn it_survives_a_restart_and_stays_bounded() {
        let mut b = Baseline::new(100, 30);
        for i in 0..1000 {
            first(
                &mut b,
                "u",
                &format!("10.0.{}.{}", i / 256, i % 256),
                i * 60_000,
            );
        }
        assert!(b.len() <= 100);
        // The newest pairs are kept.
        let text = b.encode();
        let mut again = Baseline::decode(&text, 100, 30).unwrap();
        assert_eq!(again.len(), b.len());
        assert!(!first(&mut again, "u", "10.0.3.231", 1000 * 60_000));
        assert!(Baseline::decode("garbage", 10, 30).is_err());
        let err = Baseline::decode("vedette-baseline 2\nzz 1\n", 10, 30).unwrap_err();
        assert!(err.starts_with("line 2"), "{err}");
    }
}
