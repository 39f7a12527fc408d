//! The normalizer: one record in, OCSF events out.
//!
//! Call order: [`Normalizer::handle_line`] for each record (with the time it was read),
//! then [`Normalizer::poll_event`] until `None`. Records that join into one event (auditd)
//! wait inside; [`Normalizer::poll_timeout`] says when the oldest pending one must be
//! flushed, [`Normalizer::handle_timeout`] flushes what is due, and
//! [`Normalizer::finish`] flushes everything at end of input.

use std::borrow::Cow;
use std::collections::VecDeque;
use std::net::IpAddr;

use vedette_schemas::ocsf::{
    Actor, Class, Device, Event, Logger, Process, Product, Reporter, Severity, Shared,
    SyslogFields, VedetteNotes,
};

use super::envelope::{self, Envelope, Format, SEVERITY_NAMES};
use super::journal;
use super::parse::{self, Parsed, audit, json::JsonMappings};
use super::time::TimeContext;
use super::uid::event_uid;

/// What the normalizer needs to know beyond the records.
#[derive(Debug, Clone)]
pub struct NormalizeConfig {
    /// Longest record kept; longer ones are cut (and flagged) before parsing.
    pub max_line_bytes: usize,
    /// This agent's host name, for `metadata.reporter` and for records without a host.
    pub reporter_hostname: String,
    /// How long an auditd event may wait for its last record (ms).
    pub audit_timeout_ms: i64,
    /// Declarative JSON mappings from the agent config.
    pub json: JsonMappings,
}

impl Default for NormalizeConfig {
    fn default() -> Self {
        Self {
            max_line_bytes: 64 * 1024,
            reporter_hostname: "localhost".into(),
            audit_timeout_ms: 2_000,
            json: JsonMappings::default(),
        }
    }
}

/// Where records come from: the identity that keys their uids, and how their times read.
#[derive(Debug, Clone)]
pub struct Source {
    /// Where records come from, as `metadata.log_source` says it (a file path, `stdin`, a
    /// listener address).
    pub id: String,
    /// What keys `metadata.uid` with the record's position, when not `id`: a tailed file's
    /// content fingerprint (a rename must not change the uids of lines read again after a
    /// crash), or a listener address plus a per-run nonce (message counters restart with
    /// the agent, and a new message must never take an old message's uid).
    pub uid_key: Option<String>,
    /// Year and zone for timestamps that lack them.
    pub time: TimeContext,
    /// Records are syslog messages off the wire: a missing PRI breaks the RFC.
    pub syslog: bool,
    /// The name a sender's client certificate was taken by (a TLS listener with
    /// `tls_client_names`): `metadata.loggers[0].device.hostname`, a name the sender
    /// proved, where its address is only what the connection shows.
    pub sender_name: Option<String>,
}

impl Source {
    /// The source part of its records' uids ([`crate::core::uid::source_hash`] of the uid
    /// key): what the edge stage knows a source's held records by.
    pub fn uid_hash(&self) -> u64 {
        crate::core::uid::source_hash(self.uid_key.as_ref().unwrap_or(&self.id))
    }
}

/// What a live source knows about a record beyond its bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Received {
    /// Position in the source: line number, byte offset or message counter (keys the uid).
    pub seq: u64,
    /// When it was read, ms since the epoch.
    pub now_ms: i64,
    /// The network peer that sent it (syslog listeners). It goes to `metadata.loggers`, and
    /// stands for the device when the message names no host: a relayed record is never
    /// about this agent's host.
    pub peer: Option<IpAddr>,
    /// The record's full length when the source already cut it (a frame longer than the
    /// cap is not buffered whole); it is then flagged as truncated.
    pub cut_from: Option<u64>,
    /// When the stage took it, on the shell's monotonic clock: what the auditd joiner's
    /// timeout counts from, in the clock [`Normalizer::handle_timeout`] is given (a step of
    /// the wall clock must neither hold a joined event for an hour nor cut it short).
    /// `None`: `now_ms` (offline `normalize`, where there is one clock).
    pub clock_ms: Option<i64>,
    /// The record is what arrived of one the source never finished (a connection closed
    /// by a stop, an eviction or an error mid-line): kept and flagged truncated, its full
    /// length unknown.
    pub incomplete: bool,
}

/// Counters the shell reports; everything not visible in the events themselves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Records handed in.
    pub lines: u64,
    /// Records that were empty or blank (no event).
    pub empty: u64,
    /// Records cut at `max_line_bytes`.
    pub truncated: u64,
    /// Records that were not valid UTF-8 (decoded lossily).
    pub invalid_utf8: u64,
}

/// The record being normalized, shared with the parsers.
pub(crate) struct Record<'a> {
    pub(crate) src: &'a Source,
    pub(crate) seq: u64,
    pub(crate) now_ms: i64,
    /// See [`Received::clock_ms`].
    pub(crate) clock_ms: i64,
    /// The network peer that sent the record (syslog listeners).
    pub(crate) peer: Option<IpAddr>,
}

/// Turns records into OCSF events. See the module docs for the call order.
#[derive(Debug)]
pub struct Normalizer {
    cfg: NormalizeConfig,
    product: Product,
    /// `cfg.reporter_hostname`, shared by every event's `metadata.reporter`.
    reporter: Shared,
    /// The last source's id, shared by its events' `metadata.log_source` (records come in
    /// runs from one source; another source replaces it).
    log_source: Option<Shared>,
    /// The last network peer and its address as text (see [`Normalizer::peer_text`]).
    peer: Option<(IpAddr, vedette_schemas::ocsf::Text)>,
    out: VecDeque<Box<Event>>,
    audit: audit::Joiner,
    scratch: parse::json::Scratch,
    stats: Stats,
}

impl Normalizer {
    /// A normalizer with `cfg`.
    pub fn new(cfg: NormalizeConfig) -> Self {
        let product = Product {
            name: Some("Vedette".into()),
            vendor_name: Some("Vedette".into()),
            version: Some(env!("CARGO_PKG_VERSION").into()),
            uid: None,
        };
        let audit = audit::Joiner::new(cfg.audit_timeout_ms);
        Self {
            reporter: Shared::from(cfg.reporter_hostname.as_str()),
            log_source: None,
            peer: None,
            cfg,
            product,
            out: VecDeque::new(),
            audit,
            scratch: parse::json::Scratch::default(),
            stats: Stats::default(),
        }
    }

    /// The position of the earliest record of the source keyed `uid_key` (its `uid_key`,
    /// else its `id`) that waits inside to be joined: the source must not checkpoint past
    /// it, or a crash would lose that event.
    pub fn pending_floor(&self, uid_key: &str) -> Option<u64> {
        self.audit.pending_floor(uid_key)
    }

    /// Takes a new config for the records that follow; records waiting to be joined stay.
    pub fn reconfigure(&mut self, cfg: NormalizeConfig) {
        if *self.reporter != *cfg.reporter_hostname {
            self.reporter = Shared::from(cfg.reporter_hostname.as_str());
        }
        self.audit.set_timeout(cfg.audit_timeout_ms);
        self.cfg = cfg;
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// The next finished event.
    /// (Boxed: an event is a few KiB, and it moves through queues.)
    pub fn poll_event(&mut self) -> Option<Box<Event>> {
        self.out.pop_front()
    }

    /// When the oldest pending joined event is due, in the records' [`Received::clock_ms`]
    /// clock.
    pub fn poll_timeout(&self) -> Option<i64> {
        self.audit.poll_timeout()
    }

    /// Flushes joined events that waited past their timeout (`now_ms` in the records'
    /// [`Received::clock_ms`] clock).
    pub fn handle_timeout(&mut self, now_ms: i64) {
        for ev in self.audit.expire(now_ms) {
            self.push(ev);
        }
    }

    /// Flushes everything pending (end of input, shutdown).
    pub fn finish(&mut self) {
        for ev in self.audit.drain() {
            self.push(ev);
        }
    }

    fn push(&mut self, mut ev: Box<Event>) {
        finalize(&mut ev);
        self.out.push_back(ev);
    }

    /// Normalizes one record (`seq` = its 1-based line number or position in `src`;
    /// `now_ms` = when it was read). Trailing CR/LF are ignored.
    pub fn handle_line(&mut self, src: &Source, seq: u64, line: &[u8], now_ms: i64) {
        self.handle_received(
            src,
            Received {
                seq,
                now_ms,
                ..Received::default()
            },
            line,
        );
    }

    /// [`Normalizer::handle_line`] for a record from a live source, with what the source
    /// knows about it beyond its bytes (see [`Received`]).
    pub fn handle_received(&mut self, src: &Source, rx: Received, line: &[u8]) {
        let Received {
            seq,
            now_ms,
            peer,
            cut_from,
            clock_ms,
            incomplete,
        } = rx;
        self.stats.lines += 1;
        let mut line = line;
        while let [rest @ .., b'\n' | b'\r'] = line {
            line = rest;
        }
        if line.iter().all(u8::is_ascii_whitespace) {
            self.stats.empty += 1;
            return;
        }
        let untruncated = cut_from.map_or(line.len(), |n| n.max(line.len() as u64) as usize);
        let truncated = untruncated > self.cfg.max_line_bytes || cut_from.is_some();
        if truncated {
            self.stats.truncated += 1;
            line = &line[..self.cfg.max_line_bytes.min(line.len())];
        }
        let (text, invalid_utf8) = match std::str::from_utf8(line) {
            Ok(s) => (Cow::Borrowed(s), false),
            Err(e) if truncated && e.error_len().is_none() => {
                // The cut fell inside a character: drop its first bytes, not the line.
                (
                    Cow::Borrowed(std::str::from_utf8(&line[..e.valid_up_to()]).unwrap_or("")),
                    false,
                )
            }
            Err(_) => (String::from_utf8_lossy(line), true),
        };
        if invalid_utf8 {
            self.stats.invalid_utf8 += 1;
        }
        let rec = Record {
            src,
            seq,
            now_ms,
            clock_ms: clock_ms.unwrap_or(now_ms),
            peer,
        };
        let env = if src.syslog || !starts_like_audit(&text) {
            envelope::parse(&text, &src.time)
        } else {
            Envelope {
                format: Some(Format::Plain),
                msg: &text,
                ..Envelope::default()
            }
        };
        let mut ev = self.base_event(&rec, &env, &text, text.as_bytes());
        if truncated {
            ev.metadata.is_truncated = Some(true);
            ev.metadata.untruncated_size = Some(untruncated as u64);
        }
        if incomplete {
            // Its full length is unknown: flagged, with no size.
            if !truncated {
                self.stats.truncated += 1;
            }
            ev.metadata.is_truncated = Some(true);
            ev.metadata.untruncated_size = None;
            ev.note_parse_error(
                "the connection closed before this message ended: what arrived is kept",
            );
        }
        if invalid_utf8 {
            ev.note_parse_error("record is not valid UTF-8; invalid bytes were replaced by U+FFFD");
            if env.format == Some(Format::Rfc5424) && env.msg.starts_with('\u{feff}') {
                let notes = ev
                    .unmapped_mut()
                    .vedette
                    .get_or_insert_with(VedetteNotes::default);
                notes.invalid_envelope = Some(true);
                ev.note_parse_error("RFC 5424: MSG starts with a BOM but is not UTF-8");
            }
        }
        self.parse_message(&rec, &env, ev);
    }

    /// One `journalctl --output=json` line of the source `src`: the entry's fields stand in
    /// for the syslog envelope, its message goes through the same parsers. A line that is
    /// not a journal entry is kept as a Base Event with the reason.
    pub fn handle_journal(&mut self, src: &Source, rx: Received, line: &[u8]) {
        self.stats.lines += 1;
        let line = line.trim_ascii_end();
        if line.is_empty() {
            self.stats.empty += 1;
            return;
        }
        let max = self.cfg.max_line_bytes;
        let whole = rx
            .cut_from
            .map_or(line.len(), |n| usize::try_from(n).unwrap_or(usize::MAX));
        let text = String::from_utf8_lossy(line);
        // raw_data is the JSON line, cut at the cap like any record; the entry is parsed
        // whole (the reader bounded it), and its message cut at the cap too.
        let raw = &text[..text.floor_char_boundary(max)];
        let rec = Record {
            src,
            seq: rx.seq,
            now_ms: rx.now_ms,
            clock_ms: rx.clock_ms.unwrap_or(rx.now_ms),
            peer: rx.peer,
        };
        let flag = |me: &mut Self, ev: &mut Event, cut: bool| {
            if cut || raw.len() < text.len() || rx.cut_from.is_some() {
                me.stats.truncated += 1;
                ev.metadata.is_truncated = Some(true);
                ev.metadata.untruncated_size = Some(whole.max(line.len()) as u64);
            }
        };
        match journal::parse(&text) {
            Ok(entry) => {
                let mut fields = entry.text();
                let cut = fields.cut_message(max).is_some();
                let env = entry.envelope(&fields);
                // The JSON's field order changes from one journalctl run to the next; the
                // cursor is the entry's own (its `x=` hashes the entry's fields).
                let same = journal::str_of(&entry.__CURSOR).unwrap_or(raw);
                let mut ev = self.base_event(&rec, &env, raw, same.as_bytes());
                flag(self, &mut ev, cut);
                journal_extras(&mut ev, &entry);
                self.parse_message(&rec, &env, ev);
            }
            Err(why) => {
                let env = Envelope {
                    format: Some(Format::Journal),
                    msg: raw,
                    error: Some(why),
                    ..Envelope::default()
                };
                let mut ev = self.base_event(&rec, &env, raw, raw.as_bytes());
                flag(self, &mut ev, false);
                if rx.cut_from.is_some() {
                    ev.note_parse_error(format!(
                        "journal entry of {whole} bytes, over the reader's cap: cut, not parsed"
                    ));
                }
                self.parse_message(&rec, &env, ev);
            }
        }
    }

    /// Runs the message parsers over the envelope's MSG, refining `ev`.
    fn parse_message(&mut self, rec: &Record<'_>, env: &Envelope<'_>, mut ev: Box<Event>) {
        let src = rec.src;
        let msg = env.msg.strip_prefix('\u{feff}').unwrap_or(env.msg);
        let app = env.app.unwrap_or("");

        let kernel = env.kernel_may_be();
        if app == "kernel" && !kernel {
            ev.note_parse_error(match env.facility() {
                Some(f) if env.from_kernel.is_none() => format!(
                    "tagged `kernel` on facility {f}, which the kernel does not log on: not read as the kernel's"
                ),
                _ => "tagged `kernel`, not from the kernel's transport: not read as the kernel's"
                    .to_owned(),
            });
        }
        // An audit record the kernel logged itself (AppArmor, SELinux), as klogd and imklog
        // write it: after the uptime stamp.
        let audit_msg = if app == "kernel" {
            parse::kernel::strip_uptime(msg)
        } else {
            msg
        };
        if (app != "kernel" || kernel) && parse::audit::is_audit_record(app, audit_msg) {
            let events = self.audit.handle_record(rec, audit_msg, ev);
            for e in events {
                self.push(e);
            }
            return;
        }
        let parsed = parse::dispatch(
            app,
            msg,
            &mut ev,
            &self.cfg.json,
            &mut self.scratch,
            &src.time,
            kernel,
        );
        if parsed == Parsed::No && ev.metadata.log_name.is_none() {
            ev.metadata.log_name = Some(
                if env.format == Some(Format::Plain) {
                    "raw"
                } else {
                    "syslog"
                }
                .into(),
            );
        }
        self.push(ev);
    }

    /// The event every record starts as: Base Event with the envelope, device, reporter,
    /// uid and raw data filled in. Parsers refine it.
    /// `peer` as text, formatted once per run of records from it (a connection sends
    /// thousands): an address formatted per event was ~2 % of a TCP stream's stage.
    fn peer_text(&mut self, peer: IpAddr) -> vedette_schemas::ocsf::Text {
        match &self.peer {
            Some((ip, text)) if *ip == peer => text.clone(),
            _ => {
                let text = vedette_schemas::ocsf::Text::from(peer.to_string());
                self.peer = Some((peer, text.clone()));
                text
            }
        }
    }

    /// The event every record starts as; `same` is what makes it the same record when read
    /// again (its bytes, for most), for its uid.
    fn base_event(
        &mut self,
        rec: &Record<'_>,
        env: &Envelope<'_>,
        raw: &str,
        same: &[u8],
    ) -> Box<Event> {
        let peer = rec.peer.map(|p| self.peer_text(p));
        let (time, offset) = match env.time {
            Some(t) => (t.ms, Some(t.offset_min)),
            None => (rec.now_ms, None),
        };
        let mut ev = Event::boxed(Class::Base, 0, time, self.product.clone());
        ev.timezone_offset = offset;
        let md = &mut ev.metadata;
        md.uid = Some(
            event_uid(
                rec.src.uid_key.as_ref().unwrap_or(&rec.src.id),
                rec.seq,
                same,
            )
            .into(),
        );
        md.sequence = Some(rec.seq as i64);
        md.log_source = Some(match &self.log_source {
            Some(id) if **id == *rec.src.id => id.clone(),
            _ => self
                .log_source
                .insert(Shared::from(rec.src.id.as_str()))
                .clone(),
        });
        md.log_format = env.format.map(|f| f.name().into());
        md.original_time = env.timestamp.map(|s| s.into());
        md.log_provider = env.app.map(|s| s.into());
        md.log_level = env
            .severity()
            .map(|s| SEVERITY_NAMES[usize::from(s)].into());
        md.reporter = Some(Reporter {
            hostname: Some(self.reporter.clone()),
            ..Reporter::default()
        });
        if let Some(sev) = env.severity() {
            ev.header.severity = Severity::from_syslog(sev);
        }
        ev.device = Some(match (env.hostname, &peer) {
            (None, Some(peer)) => Device {
                ip: Some(peer.clone()),
                type_id: Some(0),
                r#type: Some("Unknown".into()),
                ..Device::default()
            },
            (host, _) => {
                let host = host.unwrap_or(&self.cfg.reporter_hostname);
                Device {
                    hostname: Some(host.into()),
                    ip: super::text::is_ip(host).then(|| host.into()),
                    type_id: Some(0),
                    r#type: Some("Unknown".into()),
                    ..Device::default()
                }
            }
        });
        if let Some(peer) = peer {
            md_loggers(
                &mut ev,
                &rec.src.id,
                peer,
                rec.src.sender_name.as_deref(),
                rec.now_ms,
            );
        }
        if let (Some(app), Some(pid)) = (env.app, env.procid.and_then(|p| p.parse::<i64>().ok())) {
            ev.actor = Some(Actor {
                process: Some(Box::new(Process {
                    pid: Some(pid),
                    name: Some(app.into()),
                    ..Process::default()
                })),
                ..Actor::default()
            });
        }
        // A MSG that is only a BOM is an empty message, not an absent one.
        if !env.msg.is_empty() {
            ev.message = Some(env.msg.strip_prefix('\u{feff}').unwrap_or(env.msg).into());
        }
        ev.raw_data = Some(raw.into());
        if env.format != Some(Format::Plain) {
            let sd = (!env.sd.is_empty()).then(|| {
                env.sd
                    .iter()
                    .map(|e| {
                        // A PARAM may repeat (RFC 5424 6.3.3): its values become a list, in
                        // order (the last one alone overwrote the others).
                        let mut params = serde_json::Map::new();
                        for (k, v) in &e.params {
                            let v = serde_json::Value::String(v.clone());
                            match params.get_mut(k) {
                                None => {
                                    params.insert(k.clone(), v);
                                }
                                Some(serde_json::Value::Array(list)) => list.push(v),
                                Some(first) => {
                                    let first = first.take();
                                    params.insert(
                                        k.clone(),
                                        serde_json::Value::Array(vec![first, v]),
                                    );
                                }
                            }
                        }
                        (e.id.clone(), serde_json::Value::Object(params))
                    })
                    .collect()
            });
            let syslog = SyslogFields {
                priority: env.pri,
                facility: env.facility(),
                severity: env.severity(),
                version: env.version,
                procid: env.procid.map(|s| s.into()),
                msgid: env.msgid.map(|s| s.into()),
                structured_data: sd,
            };
            // A file line without PRI or PID has no envelope field to say: no empty object.
            if syslog != SyslogFields::default() {
                ev.unmapped_mut().syslog = Some(syslog);
            }
        }
        let missing_pri = rec.src.syslog && env.pri.is_none();
        if env.error.is_some() || missing_pri {
            let why = env
                .error
                .clone()
                .unwrap_or_else(|| "syslog message without PRI".to_owned());
            let notes = ev
                .unmapped_mut()
                .vedette
                .get_or_insert_with(VedetteNotes::default);
            notes.invalid_envelope = Some(true);
            ev.note_parse_error(why);
        }
        ev
    }
}

fn starts_like_audit(s: &str) -> bool {
    s.starts_with("type=") || s.starts_with("node=")
}

/// Derives what follows from the rest: observables and `metadata.profiles`.
pub(crate) fn finalize(ev: &mut Event) {
    use vedette_schemas::ocsf::{Observable, ObservableType as O, Text};
    // The list is taken out while the fields are read, then put back: no temporary list.
    let had = ev.observables.is_some();
    let mut list = ev.observables.take().unwrap_or_default();
    let mut add = |path: &'static str, kind: O, value: &Text| {
        // As `Event::observe`: nothing empty, and a path holds a value once.
        if value.is_empty()
            || list
                .iter()
                .any(|o| o.name.as_deref() == Some(path) && o.value.as_deref() == Some(&**value))
        {
            return;
        }
        if list.capacity() == 0 {
            list.reserve(4);
        }
        list.push(Observable::new(path, kind, value.clone()));
    };
    if let Some(d) = &ev.device {
        if let Some(h) = &d.hostname {
            add("device.hostname", O::Hostname, h);
        }
        if let Some(ip) = &d.ip {
            add("device.ip", O::IpAddress, ip);
        }
    }
    for (ip_path, host_path, ep) in [
        ("src_endpoint.ip", "src_endpoint.hostname", &ev.src_endpoint),
        ("dst_endpoint.ip", "dst_endpoint.hostname", &ev.dst_endpoint),
    ] {
        if let Some(ep) = ep {
            if let Some(ip) = &ep.ip {
                add(ip_path, O::IpAddress, ip);
            }
            if let Some(h) = &ep.hostname {
                add(host_path, O::Hostname, h);
            }
        }
    }
    if let Some(n) = ev.user.as_ref().and_then(|u| u.name.as_ref())
        && n != parse::UNKNOWN_USER
    {
        add("user.name", O::UserName, n);
    }
    if let Some(a) = &ev.actor
        && let Some(n) = a.user.as_ref().and_then(|u| u.name.as_ref())
    {
        add("actor.user.name", O::UserName, n);
    }
    if let Some(p) = &ev.process {
        if let Some(n) = p.user.as_ref().and_then(|u| u.name.as_ref()) {
            add("process.user.name", O::UserName, n);
        }
        if let Some(f) = p.file.as_ref().and_then(|f| f.path.as_ref()) {
            add("process.file.path", O::FilePath, f);
        }
    }
    if let Some(f) = &ev.file {
        for h in f.hashes.iter().flatten() {
            if let Some(v) = &h.value {
                add("file.hashes.value", O::Hash, v);
            }
        }
    }
    if had || !list.is_empty() {
        ev.observables = Some(list);
    }

    let linux = |p: &Process| p.auid.is_some() || p.euid.is_some() || p.egid.is_some();
    let has_linux = ev
        .process
        .as_ref()
        .is_some_and(|p| linux(p) || p.parent_process.as_deref().is_some_and(linux))
        || ev
            .actor
            .as_ref()
            .and_then(|a| a.process.as_deref())
            .is_some_and(linux);
    if ev.device.is_some() || ev.actor.is_some() {
        ev.add_profile("host");
    }
    if has_linux {
        ev.add_profile("linux/linux_users");
    }
    if ev.action_id.is_some() || ev.disposition_id.is_some() {
        ev.add_profile("security_control");
    }
}

#[cfg(test)]
mod tests;

/// Records the peer that sent a record as `metadata.loggers[0]`, with the name its client
/// certificate proved, if any.
fn md_loggers(
    ev: &mut Event,
    listener: &str,
    peer: vedette_schemas::ocsf::Text,
    sender_name: Option<&str>,
    received_ms: i64,
) {
    ev.metadata.loggers = Some(vec![Logger {
        name: Some(listener.into()),
        device: Some(Device {
            hostname: sender_name.map(Into::into),
            ip: Some(peer),
            type_id: Some(0),
            r#type: Some("Unknown".into()),
            ..Device::default()
        }),
        logged_time: Some(received_ms),
    }]);
}

/// What a journal entry says beyond the envelope, under `unmapped.journald`: the trusted
/// fields the journal adds (the kernel's view of the sender), which a syslog line lacks.
fn journal_extras(ev: &mut Event, entry: &journal::Entry<'_>) {
    let text =
        |v: &Option<journal::Value<'_>>| v.as_ref().and_then(|v| v.text().map(Cow::into_owned));
    let fields = [
        ("exe", text(&entry._EXE)),
        ("comm", text(&entry._COMM)),
        ("uid", journal::str_of(&entry._UID).map(str::to_owned)),
        (
            "systemd_unit",
            journal::str_of(&entry._SYSTEMD_UNIT).map(str::to_owned),
        ),
        (
            "transport",
            journal::str_of(&entry._TRANSPORT).map(str::to_owned),
        ),
        (
            "cursor",
            journal::str_of(&entry.__CURSOR).map(str::to_owned),
        ),
    ];
    for (k, v) in fields {
        if let Some(v) = v {
            ev.unmapped_set("journald", k, v);
        }
    }
}
