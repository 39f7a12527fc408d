//! ArcSight Common Event Format:
//! `CEF:Version|Vendor|Product|Version|Signature ID|Name|Severity|key=value …`.
//!
//! The class follows the fields: a request → HTTP Activity; a user with a logon-ish name or
//! category → Authentication; addresses → Network Activity; else Base Event. Every header
//! field and every extension key is kept under `unmapped.cef`.

use serde_json::{Map, Value};
use vedette_schemas::ocsf::{Class, Endpoint, Event, HttpRequest, Service, Severity, Status, Url};

use super::{Parsed, auth, code, set_class};

/// Whether `msg` (no envelope) is CEF without its `CEF:` prefix, as some relays write it.
pub fn headerless(msg: &str) -> bool {
    let b = msg.as_bytes();
    b.len() > 2 && b[0].is_ascii_digit() && b[1] == b'|' && msg.matches('|').count() >= 7
}

/// Splits the seven header fields (`\|` and `\\` escapes) and returns them with the extension.
fn header(s: &str) -> Option<(Vec<String>, &str)> {
    let mut fields = Vec::with_capacity(7);
    let mut cur = String::new();
    let mut chars = s.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('|' | '\\'))) => cur.push(e),
                Some((_, e)) => {
                    cur.push('\\');
                    cur.push(e);
                }
                None => cur.push('\\'),
            },
            '|' => {
                fields.push(std::mem::take(&mut cur));
                if fields.len() == 7 {
                    return Some((fields, &s[i + 1..]));
                }
            }
            _ => cur.push(c),
        }
    }
    None
}

/// Extension `key=value` pairs: a value runs to the next ` key=`; `\=`, `\\`, `\n`, `\r`
/// are escapes.
fn extension(s: &str) -> Vec<(&str, String)> {
    let b = s.as_bytes();
    // Start offsets of each `key=`: a run of key bytes preceded by start or space, followed by an unescaped '='.
    let mut starts = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if (i == 0 || b[i - 1] == b' ') && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            let n = b[i..]
                .iter()
                .take_while(|c| {
                    c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'-' | b'[' | b']')
                })
                .count();
            if b.get(i + n) == Some(&b'=') {
                starts.push((i, i + n));
                i += n + 1;
                continue;
            }
        }
        i += 1;
    }
    let mut out = Vec::with_capacity(starts.len());
    for (k, &(ks, ke)) in starts.iter().enumerate() {
        let vend = starts.get(k + 1).map_or(b.len(), |&(next, _)| next);
        let raw = s[ke + 1..vend].trim_end();
        let mut v = String::with_capacity(raw.len());
        let mut it = raw.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => v.push('\n'),
                    Some('r') => v.push('\r'),
                    Some(e @ ('=' | '\\')) => v.push(e),
                    Some(e) => {
                        v.push('\\');
                        v.push(e);
                    }
                    None => v.push('\\'),
                }
            } else {
                v.push(c);
            }
        }
        out.push((&s[ks..ke], v));
    }
    out
}

fn severity(s: &str) -> Severity {
    match s.trim().to_ascii_lowercase().as_str() {
        "low" => Severity::Low,
        "medium" => Severity::Medium,
        "high" => Severity::High,
        "very-high" | "very high" => Severity::Critical,
        other => match other.parse::<u8>() {
            Ok(0..=3) => Severity::Low,
            Ok(4..=6) => Severity::Medium,
            Ok(7..=8) => Severity::High,
            Ok(9..=10) => Severity::Critical,
            _ => Severity::Unknown,
        },
    }
}

/// Parses a CEF record starting at `CEF:` (or at the version, see [`headerless`]).
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    let body = msg.strip_prefix("CEF:").map(str::trim_start).unwrap_or(msg);
    let Some((h, ext)) = header(body) else {
        code(ev, "cef", "cef.malformed");
        ev.note_parse_error("CEF: fewer than 7 header fields");
        return Parsed::No;
    };
    let ext = extension(ext.trim());
    let get = |k: &str| {
        ext.iter()
            .find(|(key, _)| *key == k)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    };

    let name_l = format!("{} {}", h[5], get("cat").unwrap_or("")).to_ascii_lowercase();
    let user = get("duser").or_else(|| get("suser"));
    let outcome = get("outcome").map(str::to_ascii_lowercase);
    // Failure words first: `unsuccessful` holds `success`, `disallowed` holds `allow`.
    let status = match outcome.as_deref() {
        Some(o)
            if [
                "fail",
                "deny",
                "denied",
                "unsuccess",
                "disallow",
                "reject",
                "block",
            ]
            .iter()
            .any(|w| o.contains(w)) =>
        {
            Status::Failure
        }
        Some(o) if o.contains("success") || o.contains("allow") => Status::Success,
        _ if name_l.contains("fail") || name_l.contains("denied") || name_l.contains("blocked") => {
            Status::Failure
        }
        _ => Status::Unknown,
    };
    let src = endpoint(get("src"), get("spt"), get("shost"), get("smac"));
    let dst = endpoint(get("dst"), get("dpt"), get("dhost"), get("dmac"));
    let logon = [
        "logon",
        "login",
        "log in",
        "authentica",
        "sign-in",
        "signin",
    ]
    .iter()
    .any(|w| name_l.contains(w));

    let mut unclassed_user = None;
    if get("request").is_some() || get("requestMethod").is_some() {
        let method = get("requestMethod").unwrap_or("");
        let activity = super::access::http_activity_id(method);
        set_class(ev, Class::HttpActivity, activity, status);
        ev.http_request = Some(Box::new(HttpRequest {
            http_method: Some(method).filter(|m| !m.is_empty()).map(|m| m.into()),
            url: get("request").map(|r| Url {
                url_string: Some(r.into()),
                ..Url::default()
            }),
            user_agent: get("requestClientApplication").map(|s| s.into()),
            ..HttpRequest::default()
        }));
        ev.src_endpoint = src;
        ev.dst_endpoint = dst;
    } else if user.is_some() && logon {
        let svc = get("app").unwrap_or(&h[2]).to_owned();
        auth(ev, 1, status, &svc, user);
        ev.service = Some(Service {
            name: Some(svc.into()),
        });
        ev.src_endpoint = src;
        ev.dst_endpoint = dst;
    } else if src.is_some() || dst.is_some() {
        let act = get("act").unwrap_or("").to_ascii_lowercase();
        let blocked = ["block", "deny", "drop", "reject"]
            .iter()
            .any(|w| act.contains(w) || name_l.contains(w));
        set_class(
            ev,
            Class::NetworkActivity,
            if blocked { 5 } else { 6 },
            status,
        );
        if blocked {
            ev.action_id = Some(2);
            ev.action = Some("Denied".into());
            ev.disposition_id = Some(2);
            ev.disposition = Some("Blocked".into());
        }
        ev.src_endpoint = src;
        ev.dst_endpoint = dst;
        if ev.src_endpoint.is_none() && ev.dst_endpoint.is_none() {
            set_class(ev, Class::Base, 0, status);
        }
    } else {
        ev.header.status = Some(status).filter(|s| *s != Status::Unknown);
        // No class has a place for it: it goes beside the CEF fields below.
        unclassed_user = user;
    }
    ev.header.severity = severity(&h[6]);
    code(ev, "cef", h[4].clone());
    if !h[5].is_empty() {
        ev.message = Some(h[5].clone().into());
    }
    if let Some(m) = get("msg") {
        ev.status_detail = Some(m.into());
    }
    let mut cef = Map::new();
    for (k, v) in [
        "version",
        "device_vendor",
        "device_product",
        "device_version",
        "signature_id",
        "name",
        "severity",
    ]
    .iter()
    .zip(h.iter())
    {
        cef.insert((*k).to_owned(), Value::String(v.clone()));
    }
    // A key given twice is read by its first value everywhere (the mapped fields take
    // the first), and said.
    let mut exts: Map<String, Value> = Map::new();
    let mut twice: Vec<&str> = Vec::new();
    for (k, v) in &ext {
        if exts.contains_key(*k) {
            twice.push(k);
        } else {
            exts.insert((*k).to_owned(), Value::String(v.clone()));
        }
    }
    if !twice.is_empty() {
        ev.note_parse_error(format!(
            "CEF: {} given more than once; the first value is read",
            twice.join(", ")
        ));
    }
    cef.insert("extensions".into(), Value::Object(exts));
    if let Some(u) = unclassed_user {
        cef.insert("user".into(), Value::from(u));
    }
    ev.unmapped_mut()
        .other
        .insert("cef".into(), Value::Object(cef));
    Parsed::Yes
}

fn endpoint(
    ip: Option<&str>,
    port: Option<&str>,
    host: Option<&str>,
    mac: Option<&str>,
) -> Option<Endpoint> {
    let e = Endpoint {
        ip: ip.filter(|i| crate::core::text::is_ip(i)).map(|i| i.into()),
        port: port.and_then(|p| p.parse().ok()),
        hostname: host.map(|s| s.into()),
        mac: mac.map(|s| s.into()),
        ..Endpoint::default()
    };
    (e.ip.is_some() || e.hostname.is_some()).then_some(e)
}
