//! Joining records into events: the state machine that decides when an event is complete
//! (see the module docs of `audit`).

use vedette_schemas::ocsf::Event;

use super::event::{Group, build};
use super::record::parse_record;
use crate::core::normalize::Record as Input;
use crate::core::parse::code;

/// Serials further apart than this are not interleaved: the older event is complete.
const REORDER_WINDOW: u64 = 16;
/// At most this many events wait for records; past it the oldest is completed.
const MAX_OPEN: usize = 1024;
/// Events completed at their `PROCTITLE` remembered, so that their `EOE` is known.
const RECENT: usize = 64;

/// Types that make a whole event alone: what user space writes as one self-contained
/// record, and the kernel's anomaly, integrity and `KERNEL` records (auparse's list).
fn standalone(t: &str) -> bool {
    t.starts_with("USER_")
        || t.starts_with("CRED_")
        || t.starts_with("ADD_")
        || t.starts_with("DEL_")
        || t.starts_with("DAEMON_")
        || t.starts_with("SERVICE_")
        || t.starts_with("SYSTEM_")
        || t.starts_with("ACCT_")
        || t.starts_with("GRP_")
        || t.starts_with("ANOM_")
        || t.starts_with("INTEGRITY_")
        || t.starts_with("RESP_")
        || t.starts_with("CRYPTO_")
        || t.starts_with("VIRT_")
        || matches!(
            t,
            "USER" | "KERNEL" | "USYS_CONFIG" | "CHGRP_ID" | "CHUSER_ID"
        )
}

/// The kernel writes an event's `PROCTITLE` last, just before its `EOE`: the event is
/// complete there (as auparse and ausearch take it), which matters where no `EOE` follows
/// (audisp plugins that forward records one by one).
fn ends_event(t: &str) -> bool {
    t == "PROCTITLE"
}

/// An event still taking records.
#[derive(Debug)]
struct Open {
    source: String,
    /// xxh3 of the host the line's envelope names (0: none): see [`host_key`].
    host: u64,
    /// Position of its first record in the source.
    first_seq: u64,
    last_seen: i64,
    group: Group,
}

/// Which kernel a record came from, beside its `node=`: the host its syslog envelope names.
/// Serials are per kernel, so a source that gathers several hosts' audisp-syslog lines (a
/// central syslog file, a relay's stream) carries the same serials independently, and one
/// host's serials say nothing about when another host's event is complete. Hashed: it is
/// compared on every record, and kept per open event.
fn host_key(base: &Event) -> u64 {
    base.device
        .as_ref()
        .and_then(|d| d.hostname.as_deref())
        .map_or(0, |h| xxhash_rust::xxh3::xxh3_64(h.as_bytes()))
}

/// Joins records into events. See the module docs for when an event is complete.
#[derive(Debug)]
pub struct Joiner {
    timeout_ms: i64,
    open: Vec<Open>,
    /// Keys ([`event_key`]) of the last [`RECENT`] events completed at their `PROCTITLE`:
    /// their `EOE` ends nothing and is no orphan.
    recent: [u64; RECENT],
    recent_next: usize,
}

/// One event's identity in one source, hashed.
fn event_key(source: &str, host: u64, node: Option<&str>, serial: u64) -> u64 {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(source.as_bytes());
    h.update(&host.to_le_bytes());
    h.update(node.unwrap_or("").as_bytes());
    h.update(&[u8::from(node.is_some())]);
    h.update(&serial.to_le_bytes());
    // Never 0, the empty slot.
    h.digest() | 1
}

impl Joiner {
    /// A joiner that completes events `timeout_ms` after their last record.
    pub fn new(timeout_ms: i64) -> Self {
        Self {
            timeout_ms,
            open: Vec::new(),
            recent: [0; RECENT],
            recent_next: 0,
        }
    }

    /// From now on, events complete `timeout_ms` after their last record (the open ones
    /// too).
    pub fn set_timeout(&mut self, timeout_ms: i64) {
        self.timeout_ms = timeout_ms;
    }

    /// When the oldest open event times out.
    pub fn poll_timeout(&self) -> Option<i64> {
        self.open
            .iter()
            .map(|o| o.last_seen + self.timeout_ms)
            .min()
    }

    /// The position of the earliest record of `source` still waiting in an open event: a
    /// source may not checkpoint past it, or a crash would lose the event.
    pub fn pending_floor(&self, source: &str) -> Option<u64> {
        self.open
            .iter()
            .filter(|o| o.source == source)
            .map(|o| o.first_seq)
            .min()
    }

    /// Completes the events whose timeout passed.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Box<Event>> {
        let t = self.timeout_ms;
        self.take_where(|o| o.last_seen + t <= now_ms)
    }

    /// Completes every open event, oldest first.
    pub fn drain(&mut self) -> Vec<Box<Event>> {
        self.take_where(|_| true)
    }

    fn take_where(&mut self, mut pred: impl FnMut(&Open) -> bool) -> Vec<Box<Event>> {
        let mut done = Vec::new();
        let mut i = 0;
        while i < self.open.len() {
            if pred(&self.open[i]) {
                done.push(build(self.open.remove(i).group));
            } else {
                i += 1;
            }
        }
        done
    }

    /// Takes one record (`msg`, already without syslog envelope) with the Base Event its line
    /// became; returns the events this completes.
    pub(crate) fn handle_record(
        &mut self,
        rec: &Input<'_>,
        msg: &str,
        mut base: Box<Event>,
    ) -> Vec<Box<Event>> {
        let r = match parse_record(msg) {
            Ok(r) => r,
            Err(why) => {
                let mut ev = base;
                code(&mut ev, "auditd", "auditd.malformed");
                ev.note_parse_error(why);
                return vec![ev];
            }
        };
        // Two files that rotate under one path are two sources.
        let source = rec.src.uid_key.as_ref().unwrap_or(&rec.src.id).clone();
        let node = r.node.clone();
        let host = host_key(&base);
        let (serial, time_ms) = (r.serial, r.time_ms);
        // An event is its time and serial: serials start over at boot, so a serial alone
        // joined a record to an event of another boot.
        let pos = self.open.iter().position(|o| {
            o.group.serial == serial
                && o.group.time_ms == time_ms
                && o.host == host
                && o.group.node == node
                && o.source == source
        });
        let mut done = Vec::new();
        if r.rtype == "EOE" {
            match pos {
                Some(p) => done.push(build(self.open.remove(p).group)),
                None if self.recent.contains(&event_key(
                    &source,
                    host,
                    node.as_deref(),
                    serial,
                )) =>
                {
                    // Its event ended at its PROCTITLE; the marker carries nothing more.
                }
                None => {
                    // An end marker for an event already completed (or never seen): say so.
                    let mut ev = base;
                    code(&mut ev, "auditd", "auditd.eoe_without_event");
                    done.push(ev);
                }
            }
            return done;
        }
        // The line joins the group's raw lines (`build` sets `raw_data` from them).
        let raw = base
            .raw_data
            .take()
            .map(vedette_schemas::ocsf::Text::into_string)
            .unwrap_or_default();
        let ends = ends_event(&r.rtype);
        match pos {
            Some(p) => {
                let o = &mut self.open[p];
                o.group.records.push(r);
                o.group.raw.push(raw);
                o.last_seen = rec.clock_ms;
                if ends {
                    done.push(build(self.open.remove(p).group));
                }
            }
            None => {
                let group = Group {
                    node: node.clone(),
                    serial,
                    time_ms,
                    base,
                    raw: vec![raw],
                    records: vec![r],
                };
                if ends || standalone(&group.records[0].rtype) {
                    done.push(build(group));
                } else {
                    self.open.push(Open {
                        source: source.clone(),
                        host,
                        first_seq: rec.seq,
                        last_seen: rec.clock_ms,
                        group,
                    });
                }
            }
        }
        if ends {
            self.recent[self.recent_next] = event_key(&source, host, node.as_deref(), serial);
            self.recent_next = (self.recent_next + 1) % RECENT;
        }
        let t = self.timeout_ms;
        // Cheapest test first: most open events are another host's.
        let due = |o: &Open| {
            o.host == host
                && (o.group.serial + REORDER_WINDOW < serial || o.group.time_ms + t < time_ms)
                && o.group.node == node
                && o.source == source
        };
        if self.open.iter().any(due) {
            done.extend(self.take_where(due));
        }
        while self.open.len() > MAX_OPEN {
            done.push(build(self.open.remove(0).group));
        }
        done
    }
}
