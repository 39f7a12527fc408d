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

/// Types that user space writes as one self-contained record.
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
        || t.starts_with("ANOM_LOGIN")
        || matches!(t, "USYS_CONFIG" | "CHGRP_ID" | "CHUSER_ID")
}

/// An event still taking records.
#[derive(Debug)]
struct Open {
    source: String,
    /// Position of its first record in the source.
    first_seq: u64,
    last_seen: i64,
    group: Group,
}

/// Joins records into events. See the module docs for when an event is complete.
#[derive(Debug)]
pub struct Joiner {
    timeout_ms: i64,
    open: Vec<Open>,
}

impl Joiner {
    /// A joiner that completes events `timeout_ms` after their last record.
    pub fn new(timeout_ms: i64) -> Self {
        Self {
            timeout_ms,
            open: Vec::new(),
        }
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
        let (serial, time_ms) = (r.serial, r.time_ms);
        let pos = self
            .open
            .iter()
            .position(|o| o.group.serial == serial && o.group.node == node && o.source == source);
        let mut done = Vec::new();
        if r.rtype == "EOE" {
            match pos {
                Some(p) => done.push(build(self.open.remove(p).group)),
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
        match pos {
            Some(p) => {
                let o = &mut self.open[p];
                o.group.records.push(r);
                o.group.raw.push(raw);
                o.last_seen = rec.now_ms;
            }
            None => {
                let alone = standalone(&r.rtype);
                let group = Group {
                    node: node.clone(),
                    serial,
                    time_ms,
                    base,
                    raw: vec![raw],
                    records: vec![r],
                };
                if alone {
                    done.push(build(group));
                } else {
                    self.open.push(Open {
                        source: source.clone(),
                        first_seq: rec.seq,
                        last_seen: rec.now_ms,
                        group,
                    });
                }
            }
        }
        let t = self.timeout_ms;
        let due = |o: &Open| {
            o.source == source
                && o.group.node == node
                && (o.group.serial + REORDER_WINDOW < serial || o.group.time_ms + t < time_ms)
        };
        // Events open in arrival order, so the oldest is first: when it is not due, none of
        // the same source usually is, and the scan is skipped.
        if self.open.first().is_some_and(due) || self.open.len() > 2 * REORDER_WINDOW as usize {
            done.extend(self.take_where(due));
        }
        while self.open.len() > MAX_OPEN {
            done.push(build(self.open.remove(0).group));
        }
        done
    }
}
