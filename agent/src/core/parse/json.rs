//! JSON lines (alone or as a syslog MSG): laurel's audit JSON, declarative mappings from the
//! agent config (JSON paths → OCSF paths, selected by field matches), or Base Event with the
//! object kept under `unmapped.json`.

use serde_json::{Map, Value};
use simd_json::Tape;
use vedette_schemas::ocsf::{Class, Event, Header, Severity, Status};

use super::{Parsed, audit, code};

/// One validated mapping: when every `matches` path equals its value, the event becomes
/// `class`/`activity_id` and each `fields` source path is copied to its OCSF path.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonMapping {
    /// Name, for `metadata.event_code` and errors.
    pub name: String,
    /// (JSON path, expected value) pairs; all must hold.
    pub matches: Vec<(Vec<String>, Value)>,
    /// The class.
    pub class: Class,
    /// The activity.
    pub activity_id: u8,
    /// A fixed status, if any.
    pub status: Option<Status>,
    /// A fixed severity, if any.
    pub severity: Option<Severity>,
    /// (OCSF path, JSON path) pairs.
    pub fields: Vec<(Vec<String>, Vec<String>)>,
}

/// The mappings of an agent config, tried in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonMappings(pub Vec<JsonMapping>);

/// Splits a dotted path (`a.b.c`).
pub fn path(s: &str) -> Vec<String> {
    s.split('.').map(str::to_owned).collect()
}

fn get<'a>(v: &'a Value, p: &[String]) -> Option<&'a Value> {
    p.iter().try_fold(v, |cur, k| match cur {
        Value::Object(m) => m.get(k),
        Value::Array(a) => k.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// Removes `p` from `v`, and the objects it leaves empty.
fn remove(v: &mut Value, p: &[String]) {
    let Some((first, rest)) = p.split_first() else {
        return;
    };
    let Value::Object(m) = v else { return };
    if rest.is_empty() {
        m.remove(first);
        return;
    }
    if let Some(child) = m.get_mut(first) {
        remove(child, rest);
        if child.as_object().is_some_and(Map::is_empty) {
            m.remove(first);
        }
    }
}

/// Sets `p` in `v`, creating objects on the way.
pub(crate) fn set(v: &mut Value, p: &[String], val: Value) {
    let mut cur = v;
    for (i, k) in p.iter().enumerate() {
        if !cur.is_object() {
            *cur = Value::Object(Map::new());
        }
        let Value::Object(m) = cur else { return };
        if i == p.len() - 1 {
            m.insert(k.clone(), val);
            return;
        }
        cur = m
            .entry(k.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Epoch seconds (below 1e11) or milliseconds as ms, when that is a time at all (years
/// -9999 to 9999): `1e127` would saturate to the end of `i64` and date an event 292
/// million years ahead.
fn epoch_number_ms(f: f64) -> Option<i64> {
    let ms = (if f < 1e11 { f * 1000.0 } else { f }) as i64;
    jiff::Timestamp::from_millisecond(ms).ok().map(|_| ms)
}

/// A JSON time: RFC 3339 text, or epoch seconds / milliseconds.
fn time_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => epoch_number_ms(n.as_f64()?),
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
        _ => None,
    }
}

/// The JSON parser's reusable buffers (one per normalizer): the line copied and padded
/// (simd-json reads in 64-byte blocks and unescapes in place), simd-json's own buffers and
/// the tape's allocation.
pub struct Scratch {
    bytes: Vec<u8>,
    buffers: simd_json::Buffers,
    tape: Option<Tape<'static>>,
}

impl Default for Scratch {
    fn default() -> Self {
        Self {
            bytes: Vec::new(),
            buffers: simd_json::Buffers::new(512),
            tape: None,
        }
    }
}

impl std::fmt::Debug for Scratch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scratch")
            .field("bytes", &self.bytes.capacity())
            .finish_non_exhaustive()
    }
}

/// Parses a JSON message.
///
/// Most JSON lines match no mapping and keep their object under `unmapped.json`: for
/// those the object is read off simd-json's tape and written once as the section's JSON,
/// in the line's order (a key given twice keeps its last value, as a map keeps it). A
/// laurel record, a line a mapping selects, or one the tape cannot vouch for takes the
/// general path: a `serde_json::Value`.
pub fn parse(msg: &str, ev: &mut Event, mappings: &JsonMappings, scratch: &mut Scratch) -> Parsed {
    // A lone UTF-16 surrogate escape (`\ud800`, what JavaScript's and Python's encoders
    // write for a broken string a client sent) made the whole line invalid JSON: a value
    // an attacker controls hid every line it was in from its mapping. It is read as
    // U+FFFD, and the event says so.
    if msg.contains("\\u")
        && let Some(fixed) = lone_surrogates_replaced(msg)
    {
        let before = ev.clone();
        let r = parse_text(&fixed, ev, mappings, scratch);
        if ev.metadata.event_code.as_deref() != Some("json.invalid") {
            ev.note_parse_error("JSON: a lone UTF-16 surrogate escape was read as U+FFFD");
            return r;
        }
        // Invalid for another reason too: said as the line is.
        *ev = before;
    }
    parse_text(msg, ev, mappings, scratch)
}

/// `text` with each lone UTF-16 surrogate escape (a high one not followed by a low one,
/// or a low one alone) replaced by `\ufffd`; `None` when it has none.
fn lone_surrogates_replaced(text: &str) -> Option<String> {
    let b = text.as_bytes();
    let hex4 = |at: usize| -> Option<u16> {
        let h = b.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u16> {
        (b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'u'))
            .then(|| hex4(at + 2))
            .flatten()
    };
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            i += 1;
            continue;
        }
        let Some(u) = escape_at(i) else {
            // Another escape (`\\`, `\"` …): its next byte is not a new escape.
            i += 2;
            continue;
        };
        let lone = match u {
            0xD800..=0xDBFF => match escape_at(i + 6) {
                Some(0xDC00..=0xDFFF) => {
                    i += 12;
                    continue;
                }
                _ => true,
            },
            0xDC00..=0xDFFF => true,
            _ => false,
        };
        if lone {
            let o = out.get_or_insert_with(|| String::with_capacity(text.len()));
            o.push_str(&text[copied..i]);
            o.push_str("\\ufffd");
            copied = i + 6;
        }
        i += 6;
    }
    out.map(|mut o| {
        o.push_str(&text[copied..]);
        o
    })
}

fn parse_text(msg: &str, ev: &mut Event, mappings: &JsonMappings, scratch: &mut Scratch) -> Parsed {
    let text = msg.trim_end();
    scratch.bytes.clear();
    scratch.bytes.extend_from_slice(text.as_bytes());
    scratch
        .bytes
        .resize(text.len() + simd_json::INPUT_PADDING, 0);
    let mut tape = scratch.tape.take().unwrap_or_else(Tape::null).reset();
    let read = match simd_json::fill_tape_padded(
        &mut scratch.bytes,
        text.len(),
        &mut scratch.buffers,
        &mut tape,
    ) {
        Ok(()) => fast::unmapped(tape.as_value(), text.len(), ev, mappings),
        Err(e) => Err(Some(e.to_string())),
    };
    scratch.tape = Some(tape.reset());
    match read {
        Ok(parsed) => parsed,
        Err(Some(why)) => {
            code(ev, "json", "json.invalid");
            ev.note_parse_error(format!("JSON: {why}"));
            Parsed::No
        }
        Err(None) => general(text, ev, mappings, &mut scratch.bytes),
    }
}

/// The general path: the line as a `serde_json::Value`.
fn general(text: &str, ev: &mut Event, mappings: &JsonMappings, scratch: &mut Vec<u8>) -> Parsed {
    let text = text.trim_end();
    // simd-json parses in place: work on a reused copy of the line.
    scratch.clear();
    scratch.extend_from_slice(text.as_bytes());
    let value: Value = match simd_json::serde::from_slice(scratch) {
        Ok(v) => v,
        Err(e) => {
            code(ev, "json", "json.invalid");
            ev.note_parse_error(format!("JSON: {e}"));
            return Parsed::No;
        }
    };
    // laurel: {"ID": "SEC.MS:SERIAL", "SYSCALL": {…}, …} — record types are upper case,
    // each an object (or a list of them).
    let laurel = value
        .get("ID")
        .and_then(Value::as_str)
        .is_some_and(is_audit_stamp)
        && value.as_object().is_some_and(|o| {
            o.iter().any(|(k, v)| {
                k != "ID"
                    && !k.is_empty()
                    && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_')
                    && (v.is_object() || v.is_array())
            })
        });
    // A configured mapping is the operator's word on a line, before the guess that it is
    // laurel's (an application's JSON with an `ID` like `1.2:3` and an upper-case key was
    // read as an audit event, its mapping skipped).
    for m in &mappings.0 {
        if m.matches
            .iter()
            .all(|(p, want)| get(&value, p) == Some(want))
        {
            return apply(m, value, ev);
        }
    }
    if laurel {
        return audit::parse_laurel(&value, ev);
    }
    code(ev, "json", "json.unmapped");
    // Without a mapping, a conventional time field still dates the event.
    if ev.metadata.original_time.is_none() {
        let stamp = TIME_KEYS
            .iter()
            .find_map(|k| value.get(*k).and_then(|v| time_ms(v).map(|ms| (ms, v))));
        if let Some((ms, v)) = stamp {
            ev.time = ms;
            ev.metadata.original_time = Some(
                v.as_str()
                    .map_or_else(|| v.to_string(), str::to_owned)
                    .into(),
            );
        }
    }
    ev.unmapped_mut().other.insert("json".into(), value);
    Parsed::No
}

/// Whether `id` is an audit event's stamp, `SEC.MS:SERIAL` (digits each).
fn is_audit_stamp(id: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    id.split_once(':').is_some_and(|(t, serial)| {
        digits(serial)
            && t.split_once('.')
                .is_some_and(|(s, ms)| digits(s) && digits(ms))
    })
}

/// The fields that date an unmapped JSON event, in order of preference.
const TIME_KEYS: [&str; 4] = ["@timestamp", "timestamp", "time", "ts"];

mod fast {
    //! The unmapped case read off the tape (see [`super::parse`]).

    use serde_json::Value;
    use simd_json::prelude::*;
    use simd_json::tape::{Object, Value as T};
    use vedette_schemas::ocsf::{Event, ObjectBuilder, may_repeat, repeated};

    use super::{JsonMappings, TIME_KEYS, code};
    use crate::core::parse::Parsed;

    /// Deeper than this, the general path renders it (the builder nests 63 deep).
    const MAX_DEPTH: u32 = 48;

    /// The event of an unmapped line; `Err(None)` when the general path must read it.
    pub(super) fn unmapped(
        root: T<'_, '_>,
        len: usize,
        ev: &mut Event,
        mappings: &JsonMappings,
    ) -> Result<Parsed, Option<String>> {
        let Some(obj) = root.as_object() else {
            return Err(None);
        };
        if laurel(&obj) {
            return Err(None);
        }
        for m in &mappings.0 {
            let mut all = true;
            for (p, want) in &m.matches {
                match path(root, p).map(|v| same(v, want)) {
                    Some(Some(true)) => {}
                    Some(Some(false)) | None => {
                        all = false;
                        break;
                    }
                    // A value the tape cannot compare (an object, an array).
                    Some(None) => return Err(None),
                }
            }
            if all {
                return Err(None);
            }
        }
        let mut b = ObjectBuilder::with_capacity(len + len / 8 + 16);
        if !members(&mut b, &obj, 1) {
            return Err(None);
        }
        code(ev, "json", "json.unmapped");
        if ev.metadata.original_time.is_none()
            && let Some((ms, text)) = TIME_KEYS
                .iter()
                .find_map(|k| last(&obj, k).and_then(|v| time_ms(v).map(|ms| (ms, v))))
                .map(|(ms, v)| (ms, scalar_text(v)))
        {
            ev.time = ms;
            ev.metadata.original_time = Some(text.into());
        }
        ev.unmapped_mut().set_section("json", b.finish());
        Ok(Parsed::No)
    }

    /// The last member named `key` (a map keeps the last of a repeated key).
    fn last<'t, 'i>(obj: &Object<'t, 'i>, key: &str) -> Option<T<'t, 'i>> {
        obj.iter().filter(|(k, _)| *k == key).map(|(_, v)| v).last()
    }

    /// As the general path's test: `ID` names an audit stamp and another key is upper case.
    fn laurel(obj: &Object<'_, '_>) -> bool {
        last(obj, "ID")
            .and_then(|v| v.into_string())
            .is_some_and(super::is_audit_stamp)
            && obj.iter().any(|(k, v)| {
                k != "ID"
                    && !k.is_empty()
                    && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_')
                    && (v.as_object().is_some() || v.as_array().is_some())
            })
    }

    /// The value at a dotted path, as the general path's `get` finds it.
    fn path<'t, 'i>(root: T<'t, 'i>, p: &[String]) -> Option<T<'t, 'i>> {
        p.iter().try_fold(root, |cur, k| {
            if let Some(o) = cur.as_object() {
                last(&o, k)
            } else if let Some(a) = cur.as_array() {
                k.parse::<usize>().ok().and_then(|i| a.get(i))
            } else {
                None
            }
        })
    }

    /// Whether `v` equals `want` as `serde_json::Value`s compare (an integer never equals a
    /// float); `None` for an object or array `want`.
    fn same(v: T<'_, '_>, want: &Value) -> Option<bool> {
        Some(match want {
            Value::Null => v.value_type() == ValueType::Null,
            Value::Bool(b) => v.value_type() == ValueType::Bool && v.as_bool() == Some(*b),
            Value::String(s) => v.as_str() == Some(s.as_str()),
            Value::Number(n) => match v.value_type() {
                ValueType::F64 => n.is_f64() && n.as_f64() == v.as_f64(),
                ValueType::I64 | ValueType::U64 => {
                    !n.is_f64()
                        && ((n.as_i64().is_some() && n.as_i64() == v.as_i64())
                            || (n.as_u64().is_some() && n.as_u64() == v.as_u64()))
                }
                _ => false,
            },
            Value::Array(_) | Value::Object(_) => return None,
        })
    }

    /// A JSON time, as the general path's `time_ms` reads it.
    fn time_ms(v: T<'_, '_>) -> Option<i64> {
        match v.value_type() {
            ValueType::I64 | ValueType::U64 | ValueType::F64 => {
                super::epoch_number_ms(v.cast_f64()?)
            }
            ValueType::String => v
                .as_str()?
                .parse::<jiff::Timestamp>()
                .ok()
                .map(|t| t.as_millisecond()),
            _ => None,
        }
    }

    /// A time field's text as the general path gives it: a string's text, a number's
    /// JSON.
    fn scalar_text(v: T<'_, '_>) -> String {
        match v.value_type() {
            ValueType::I64 => v.as_i64().map(|n| n.to_string()),
            ValueType::U64 => v.as_u64().map(|n| n.to_string()),
            ValueType::F64 => v.as_f64().and_then(|f| serde_json::to_string(&f).ok()),
            _ => v.as_str().map(str::to_owned),
        }
        .unwrap_or_default()
    }

    /// Writes `obj`'s members; false when the general path must render it.
    fn members(b: &mut ObjectBuilder, obj: &Object<'_, '_>, depth: u32) -> bool {
        // A repeated key keeps its last value, as a map keeps it.
        if !may_repeat(obj.keys()) {
            return obj.iter().all(|(k, v)| {
                b.key(k);
                value(b, v, depth)
            });
        }
        let all: Vec<(&str, T<'_, '_>)> = obj.iter().collect();
        let keep = repeated(all.len(), |i| all[i].0);
        all.iter().enumerate().all(|(i, (k, v))| {
            if keep.as_ref().is_some_and(|keep| !keep[i]) {
                return true;
            }
            b.key(k);
            value(b, *v, depth)
        })
    }

    /// Writes one value; false when the general path must render it.
    fn value(b: &mut ObjectBuilder, v: T<'_, '_>, depth: u32) -> bool {
        match v.value_type() {
            ValueType::Null => b.val_null(),
            ValueType::Bool => b.val_bool(v.as_bool().unwrap_or_default()),
            ValueType::I64 => match v.as_i64() {
                Some(n) => b.val_i64(n),
                None => return false,
            },
            ValueType::U64 => match v.as_u64() {
                Some(n) => b.val_u64(n),
                None => return false,
            },
            ValueType::F64 => match v.as_f64() {
                Some(f) => b.val_f64(f),
                None => return false,
            },
            ValueType::String => b.val_str(v.as_str().unwrap_or_default()),
            ValueType::Array if depth < MAX_DEPTH => {
                let Some(a) = v.as_array() else { return false };
                b.begin_array_val();
                for e in a.iter() {
                    b.elem();
                    if !value(b, e, depth + 1) {
                        return false;
                    }
                }
                b.end();
            }
            ValueType::Object if depth < MAX_DEPTH => {
                let Some(o) = v.as_object() else { return false };
                b.begin_object_val();
                if !members(b, &o, depth + 1) {
                    return false;
                }
                b.end();
            }
            _ => return false,
        }
        true
    }
}

/// `ev` as JSON with the class, activity, severity and status of mapping `m`: what the
/// mapped fields are set into.
fn mapped_base(m: &JsonMapping, ev: &Event) -> Result<Value, serde_json::Error> {
    let mut target = serde_json::to_value(ev)?;
    let header = Header {
        severity: m.severity.unwrap_or(ev.header.severity),
        status: m.status,
        ..Header::new(m.class, m.activity_id)
    };
    for (k, v) in serde_json::to_value(header)
        .ok()
        .and_then(|h| h.as_object().cloned())
        .unwrap_or_default()
    {
        target[k.as_str()] = v;
    }
    Ok(target)
}

fn apply(m: &JsonMapping, mut value: Value, ev: &mut Event) -> Parsed {
    let mut target = match mapped_base(m, ev) {
        Ok(t) => t,
        Err(e) => {
            ev.note_parse_error(format!("JSON mapping {}: {e}", m.name));
            return Parsed::No;
        }
    };
    let mut problems = Vec::new();
    // Each field with its value, then all at once; a value of the wrong type for its
    // attribute is left out alone (and kept under unmapped.json), not the whole mapping.
    let mut mapped_fields: Vec<(&[String], &[String], Value)> = Vec::new();
    for (ocsf, src) in &m.fields {
        let Some(v) = get(&value, src).cloned() else {
            continue;
        };
        if ocsf.len() == 1
            && (ocsf[0] == "time" || ocsf[0] == "start_time" || ocsf[0] == "end_time")
        {
            match time_ms(&v) {
                Some(ms) => mapped_fields.push((ocsf, src, Value::from(ms))),
                None => problems.push(format!("{}: unreadable time {v}", src.join("."))),
            }
        } else if ocsf.last().is_some_and(|k| k == "ip")
            && !v.is_null()
            && v.as_str()
                .is_none_or(|t| t.parse::<std::net::IpAddr>().is_err())
        {
            // An address attribute holds an address: detections match on it and a
            // response blocks it, so a host name, an `IP:port` or garbage is not set
            // there (nor made an IP observable) but kept under unmapped.json.
            problems.push(format!(
                "JSON mapping {}: {} is not an IP address, for {}: {v}",
                m.name,
                src.join("."),
                ocsf.join(".")
            ));
        } else {
            mapped_fields.push((ocsf, src, v));
        }
    }
    for (ocsf, _, v) in &mapped_fields {
        set(&mut target, ocsf, v.clone());
    }
    let (event, kept) = match serde_json::from_value::<Event>(target) {
        Ok(e) => (Ok(e), mapped_fields.iter().map(|f| f.1).collect::<Vec<_>>()),
        // The base again (it went into the failed attempt), each field tried alone.
        Err(_) => {
            let mut target = mapped_base(m, ev).unwrap_or(Value::Null);
            let mut kept = Vec::new();
            for (ocsf, src, v) in &mapped_fields {
                let mut t = target.clone();
                set(&mut t, ocsf, v.clone());
                match serde_json::from_value::<Event>(t) {
                    Ok(_) => {
                        set(&mut target, ocsf, v.clone());
                        kept.push(*src);
                    }
                    Err(e) => problems.push(format!(
                        "JSON mapping {}: {} does not fit {}: {e}",
                        m.name,
                        src.join("."),
                        ocsf.join(".")
                    )),
                }
            }
            (serde_json::from_value::<Event>(target), kept)
        }
    };
    // The sources read go from unmapped.json once every field had its value (one source
    // may feed two attributes).
    for src in kept {
        remove(&mut value, src);
    }
    match event {
        Ok(mut mapped) => {
            if value.as_object().is_some_and(|o| !o.is_empty()) {
                mapped.unmapped_mut().other.insert("json".into(), value);
            }
            mapped.metadata.log_name = Some("json".into());
            mapped.metadata.event_code = Some(m.name.clone().into());
            *ev = mapped;
            for p in problems {
                ev.note_parse_error(p);
            }
            Parsed::Yes
        }
        Err(e) => {
            code(ev, "json", m.name.clone());
            ev.note_parse_error(format!(
                "JSON mapping {}: a mapped value has the wrong type: {e}",
                m.name
            ));
            ev.unmapped_mut().other.insert("json".into(), value);
            Parsed::No
        }
    }
}

/// Whether an OCSF path is one the agent sets and a mapping may not: the event's identity
/// (`metadata.uid`, the store's key for dropping repeats), its tenant, source, product,
/// schema version, sequence, reporter and relays, its raw line and cut marks, and the
/// agent's own notes.
pub fn agent_owned(p: &[String]) -> bool {
    let p: Vec<&str> = p.iter().map(String::as_str).collect();
    match p.as_slice() {
        ["raw_data", ..] => true,
        ["metadata", rest @ ..] => matches!(
            rest.first().copied(),
            Some(
                "uid"
                    | "tenant_uid"
                    | "log_source"
                    | "product"
                    | "version"
                    | "sequence"
                    | "reporter"
                    | "loggers"
                    | "is_truncated"
                    | "untruncated_size"
            )
        ),
        ["unmapped", "vedette", ..] => true,
        _ => false,
    }
}

/// Whether an OCSF path survives a round trip through the typed model (so a mapping to it
/// is not silently lost), with a string or a number value.
pub fn path_is_mappable(p: &[String]) -> bool {
    let base = Event::new(Class::Base, 0, 0, Default::default());
    let Ok(mut v) = serde_json::to_value(&base) else {
        return false;
    };
    for probe in [Value::from("x"), Value::from(1)] {
        let mut t = v.clone();
        set(&mut t, p, probe.clone());
        if let Ok(e) = serde_json::from_value::<Event>(t)
            && serde_json::to_value(&e)
                .ok()
                .and_then(|back| get(&back, p).cloned())
                == Some(probe)
        {
            return true;
        }
    }
    v = Value::Null;
    let _ = v;
    false
}

/// Both paths on `text` with `mappings`, for the fuzz target and the tests: the fast
/// path's event must read back as the general path's, written without a repeated key.
#[doc(hidden)]
pub fn paths_agree(text: &str, mappings: &JsonMappings) -> Result<(), String> {
    let event = || Event::new(Class::Base, 0, 0, Default::default());
    let (mut fast, mut slow) = (event(), event());
    let p1 = parse_text(text, &mut fast, mappings, &mut Scratch::default());
    let p2 = general(text, &mut slow, mappings, &mut Vec::new());
    if p1 != p2 {
        return Err(format!(
            "{p1:?} on the fast path, {p2:?} on the general one"
        ));
    }
    let written = |e: &Event| -> Result<Value, String> {
        let mut out = Vec::new();
        vedette_schemas::ocsf::WriteJson::write_json(e, &mut out);
        let mut copy = out.clone();
        let tape = simd_json::to_tape(&mut copy).map_err(|e| format!("not JSON: {e}"))?;
        if !no_repeated_key(tape.as_value()) {
            return Err(format!(
                "a key written twice: {}",
                String::from_utf8_lossy(&out)
            ));
        }
        serde_json::from_slice(&out).map_err(|e| format!("not JSON: {e}"))
    };
    let (a, b) = (written(&fast)?, written(&slow)?);
    if a != b {
        return Err(format!("fast path {a}\ngeneral path {b}"));
    }
    let serde = serde_json::to_value(&fast).map_err(|e| e.to_string())?;
    if serde != a {
        return Err(format!("writer {a}\nserde {serde}"));
    }
    Ok(())
}

/// Whether every object in `v` names each key once.
pub(crate) fn no_repeated_key(v: simd_json::tape::Value<'_, '_>) -> bool {
    use simd_json::prelude::*;
    if let Some(o) = v.as_object() {
        let keys: Vec<&str> = o.keys().collect();
        let unique: std::collections::HashSet<&&str> = keys.iter().collect();
        unique.len() == keys.len() && o.values().all(no_repeated_key)
    } else if let Some(a) = v.as_array() {
        a.iter().all(no_repeated_key)
    } else {
        true
    }
}

/// The mappings the fuzz target and the tests run with: one selecting `event` = "login"
/// and `n` = 2, so both selection and its absence are tried.
#[doc(hidden)]
pub fn probe_mappings() -> JsonMappings {
    JsonMappings(vec![JsonMapping {
        name: "login".into(),
        matches: vec![
            (path("event"), Value::from("login")),
            (path("n"), Value::from(2)),
        ],
        class: Class::Authentication,
        activity_id: 1,
        status: None,
        severity: None,
        fields: vec![(path("user.name"), path("user"))],
    }])
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// JSON text with what a `Value` cannot hold: repeated keys, and numbers as written.
    #[derive(Debug, Clone)]
    enum J {
        Leaf(String),
        Arr(Vec<Self>),
        Obj(Vec<(String, Self)>),
    }

    impl J {
        fn text(&self) -> String {
            match self {
                Self::Leaf(t) => t.clone(),
                Self::Arr(a) => format!(
                    "[{}]",
                    a.iter().map(Self::text).collect::<Vec<_>>().join(",")
                ),
                Self::Obj(m) => format!(
                    "{{{}}}",
                    m.iter()
                        .map(|(k, v)| format!("{}:{}", Value::from(k.as_str()), v.text()))
                        .collect::<Vec<_>>()
                        .join(",")
                ),
            }
        }
    }

    fn leaf() -> impl Strategy<Value = J> {
        prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| format!("{f:e}")),
            Just("2.0".to_owned()),
            Just("1e400".to_owned()),
            Just("-0.0".to_owned()),
            "[a-z\"\\\\\u{0}-\u{1f}é€😀 ]{0,12}".prop_map(|s| Value::from(s).to_string()),
            Just(r#""\u00e9\ud83d\ude00\n""#.to_owned()),
            Just(r#""2025-01-15T00:00:00.035Z""#.to_owned()),
        ]
        .prop_map(J::Leaf)
    }

    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("ts".to_owned()),
            Just("time".to_owned()),
            Just("ID".to_owned()),
            Just("user".to_owned()),
            "[a-zA-Z_@.\"\\\\é]{0,6}",
        ]
    }

    fn doc() -> impl Strategy<Value = J> {
        leaf().prop_recursive(6, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(J::Arr),
                prop::collection::vec((key(), inner), 0..6).prop_map(J::Obj),
            ]
        })
    }

    #[test]
    fn unmapped_lines_read_the_same_on_both_paths() {
        let deep = format!("{}1{}", r#"{"a":["#.repeat(40), "]}".repeat(40));
        let many = format!(
            "{{{}}}",
            (0..60)
                .map(|i| format!(r#""k{}":{i}"#, i % 37))
                .collect::<Vec<_>>()
                .join(",")
        );
        for text in [
            r#"{"a":1,"a":{"b":[1,2.0,-0.0,1e400]},"ts":"2025-01-15T00:00:00.035Z"}"#,
            r#"{"ts":1736899200.5,"x":"\u00e9\"\n","y":null,"z":[{},[]],"b":true}"#,
            r#"{"time":1736899200123,"u":18446744073709551615,"i":-9223372036854775808}"#,
            r#"{"event":"login","n":2,"user":"bob","extra":{"k":"v"}}"#,
            r#"{"event":"login","n":2.0,"user":"bob"}"#,
            r#"{"ID":"1736899200.035:100001","SYSCALL":{"syscall":"59"}}"#,
            // A float dates the event: its text is serde_json's (`e+127`, not ryu's
            // `e127`), found by the differential fuzz target.
            r#"{"ts":35222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222222.34117}"#,
            r#"{"time":1e-300,"x":[1e300,-2.5e-8,123456789.0]}"#,
            r#"{"a":"#,
            "{\"a\":1}  \n",
            // Nested past the fast path's depth: the general path renders it.
            &deep,
            // Past the small case of the repeated-key check, repeats included.
            &many,
        ] {
            paths_agree(text, &probe_mappings()).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    #[test]
    fn a_number_that_is_no_time_does_not_date_the_event() {
        for (text, want) in [
            (r#"{"ts":1e127}"#, None),
            (
                r#"{"ts":-1e20,"time":"2025-01-15T00:00:00Z"}"#,
                Some(1_736_899_200_000),
            ),
            (r#"{"ts":1736899200.5}"#, Some(1_736_899_200_500)),
            (r#"{"ts":1736899200123}"#, Some(1_736_899_200_123)),
        ] {
            let mut ev = Event::new(Class::Base, 0, 7, Default::default());
            parse(
                text,
                &mut ev,
                &JsonMappings::default(),
                &mut Scratch::default(),
            );
            assert_eq!(
                (ev.time, ev.metadata.original_time.is_some()),
                (want.unwrap_or(7), want.is_some()),
                "{text}"
            );
            paths_agree(text, &probe_mappings()).unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }

    proptest! {
        #[test]
        fn any_object_reads_the_same_on_both_paths(
            members in prop::collection::vec((key(), doc()), 0..8),
        ) {
            let text = J::Obj(members).text();
            prop_assert_eq!(paths_agree(&text, &probe_mappings()), Ok(()), "{}", text);
        }
    }
}
