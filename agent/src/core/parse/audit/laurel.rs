//! laurel's JSON form of an audit event: `{"ID": "SEC.MS:SERIAL", "SYSCALL": {…},
//! "EXECVE": {"ARGV": […]}, "PATH": […], …}`, one whole event per line, read into the same
//! records as raw auditd lines so one builder serves both.

use serde_json::Value;
use vedette_schemas::ocsf::{Class, Event};

use super::event::{Group, build};
use super::record::{AuditRecord, epoch_ms, millis};
use crate::core::parse::Parsed;

/// Parses a laurel JSON line (one whole event) into records; `None` when it is not laurel.
pub fn laurel_records(v: &Value) -> Option<Vec<AuditRecord>> {
    let obj = v.as_object()?;
    let id = obj.get("ID")?.as_str()?;
    let (time_text, serial) = id.split_once(':')?;
    let serial: u64 = serial.parse().ok()?;
    let (sec, frac) = time_text.split_once('.').unwrap_or((time_text, "0"));
    let time_ms = epoch_ms(sec.parse().ok()?, millis(frac))?;
    let node = obj.get("NODE").and_then(Value::as_str).map(str::to_owned);
    let mut out = Vec::new();
    for (rtype, body) in obj {
        if rtype == "ID" || rtype == "NODE" {
            continue;
        }
        let bodies: Vec<&Value> = match body {
            Value::Array(a) => a.iter().collect(),
            other => vec![other],
        };
        for b in bodies {
            let Some(map) = b.as_object() else { continue };
            let mut fields = Vec::new();
            for (k, val) in map {
                match (k.as_str(), val) {
                    ("ARGV", Value::Array(args)) if rtype == "EXECVE" || rtype == "PROCTITLE" => {
                        for (i, a) in args.iter().enumerate() {
                            fields.push((format!("a{i}"), scalar(a)));
                        }
                        if rtype == "PROCTITLE" {
                            let t: Vec<String> = args.iter().map(scalar).collect();
                            fields.push(("proctitle".into(), t.join(" ")));
                        }
                    }
                    ("PPID", Value::Object(p)) => {
                        for (pk, pv) in p {
                            fields.push((format!("parent_{pk}"), scalar(pv)));
                        }
                    }
                    (_, Value::Object(_) | Value::Array(_)) => {
                        fields.push((k.clone(), val.to_string()));
                    }
                    _ => fields.push((k.clone(), scalar(val))),
                }
            }
            out.push(AuditRecord {
                node: node.clone(),
                rtype: rtype.clone(),
                time_ms,
                time_text: time_text.to_owned(),
                serial,
                fields,
            });
        }
    }
    Some(out)
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Builds the event of a laurel line (the line's Base Event refined).
fn laurel_event(records: Vec<AuditRecord>, base: Event) -> Event {
    let first = records.first().map_or(0, |r| r.serial);
    let time = records.first().map_or(base.time, |r| r.time_ms);
    let mut ev = build(Group {
        node: records.first().and_then(|r| r.node.clone()),
        serial: first,
        time_ms: time,
        raw: vec![base.raw_data.as_deref().unwrap_or_default().to_owned()],
        base: Box::new(base),
        records,
    });
    ev.metadata.log_name = Some("laurel".into());
    *ev
}

/// Used by the normalizer when a laurel line arrives.
pub(crate) fn parse_laurel(v: &Value, ev: &mut Event) -> Parsed {
    match laurel_records(v) {
        Some(records) if !records.is_empty() => {
            let base = std::mem::replace(ev, Event::new(Class::Base, 0, 0, Default::default()));
            *ev = laurel_event(records, base);
            Parsed::Yes
        }
        _ => Parsed::No,
    }
}
