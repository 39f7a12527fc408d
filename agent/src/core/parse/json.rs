//! JSON lines (alone or as a syslog MSG): laurel's audit JSON, declarative mappings from the
//! agent config (JSON paths → OCSF paths, selected by field matches), or Base Event with the
//! object kept under `unmapped.json`.

use serde_json::{Map, Value};
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

/// A JSON time: RFC 3339 text, or epoch seconds / milliseconds.
fn time_ms(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => {
            let f = n.as_f64()?;
            Some(if f < 1e11 {
                (f * 1000.0) as i64
            } else {
                f as i64
            })
        }
        Value::String(s) => s
            .parse::<jiff::Timestamp>()
            .ok()
            .map(|t| t.as_millisecond()),
        _ => None,
    }
}

/// Parses a JSON message.
pub fn parse(msg: &str, ev: &mut Event, mappings: &JsonMappings, scratch: &mut Vec<u8>) -> Parsed {
    // simd-json parses in place: work on a reused copy of the line.
    scratch.clear();
    scratch.extend_from_slice(msg.trim_end().as_bytes());
    let value: Value = match simd_json::serde::from_slice(scratch) {
        Ok(v) => v,
        Err(e) => {
            code(ev, "json", "json.invalid");
            ev.note_parse_error(format!("JSON: {e}"));
            return Parsed::No;
        }
    };
    // laurel: {"ID": "SEC.MS:SERIAL", "SYSCALL": {…}, …} — record types are upper case.
    let laurel = value
        .get("ID")
        .and_then(Value::as_str)
        .is_some_and(|id| id.contains('.') && id.contains(':'))
        && value.as_object().is_some_and(|o| {
            o.keys()
                .any(|k| k != "ID" && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_'))
        });
    if laurel {
        return audit::parse_laurel(&value, ev);
    }
    for m in &mappings.0 {
        if m.matches
            .iter()
            .all(|(p, want)| get(&value, p) == Some(want))
        {
            return apply(m, value, ev);
        }
    }
    code(ev, "json", "json.unmapped");
    // Without a mapping, a conventional time field still dates the event.
    if ev.metadata.original_time.is_none() {
        let stamp = ["@timestamp", "timestamp", "time", "ts"]
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

fn apply(m: &JsonMapping, mut value: Value, ev: &mut Event) -> Parsed {
    let mut target = match serde_json::to_value(&*ev) {
        Ok(t) => t,
        Err(e) => {
            ev.note_parse_error(format!("JSON mapping {}: {e}", m.name));
            return Parsed::No;
        }
    };
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
    let mut problems = Vec::new();
    for (ocsf, src) in &m.fields {
        let Some(v) = get(&value, src).cloned() else {
            continue;
        };
        if ocsf.len() == 1
            && (ocsf[0] == "time" || ocsf[0] == "start_time" || ocsf[0] == "end_time")
        {
            match time_ms(&v) {
                Some(ms) => set(&mut target, ocsf, Value::from(ms)),
                None => problems.push(format!("{}: unreadable time {v}", src.join("."))),
            }
        } else {
            set(&mut target, ocsf, v);
        }
        remove(&mut value, src);
    }
    match serde_json::from_value::<Event>(target) {
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
