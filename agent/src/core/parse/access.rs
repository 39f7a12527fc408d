//! nginx and Apache access logs, common and combined formats (and combined with extra
//! trailing fields, as nginx's default adds): → HTTP Activity.
//!
//! `client ident user [dd/Mon/yyyy:hh:mm:ss ±zzzz] "METHOD target VERSION" status bytes ["referrer" "agent" …]`

use memchr::memchr;
use vedette_schemas::ocsf::{
    Actor, Class, Endpoint, Event, HttpRequest, HttpResponse, Status, Url, User,
};

use super::{Parsed, code, set_class};
use crate::core::text::{is_ip, split_once_ascii};
use crate::core::time::{civil_to_epoch, digits, hms, month_from_abbrev};

/// The HTTP Activity `activity_id` of a request method (0 when there is none).
pub(crate) fn http_activity_id(method: &str) -> u8 {
    match method {
        "CONNECT" => 1,
        "DELETE" => 2,
        "GET" => 3,
        "HEAD" => 4,
        "OPTIONS" => 5,
        "POST" => 6,
        "PUT" => 7,
        "TRACE" => 8,
        "PATCH" => 9,
        "" => 0,
        _ => 99,
    }
}

/// Whether `msg` looks like an access log line: `… [date] "`.
pub fn looks_like(msg: &str) -> bool {
    match time_brackets(msg) {
        Some((open, close)) => {
            close - open >= 21
                && close - open <= 32
                && msg.as_bytes()[..open].ends_with(b" ")
                && msg[..open].split_whitespace().count() >= 2
        }
        None => false,
    }
}

/// `10/Oct/2000:13:55:36 -0700` → (ms, offset minutes).
pub(crate) fn clf_time(s: &str) -> Option<(i64, i32)> {
    let b = s.as_bytes();
    if b.len() < 26 || b[2] != b'/' || b[6] != b'/' || b[11] != b':' || b[20] != b' ' {
        return None;
    }
    let d = digits(b, 2)? as u8;
    let mo = month_from_abbrev(&b[3..6])?;
    let y = digits(&b[7..], 4)? as i16;
    let (h, mi, sec) = hms(&b[12..])?;
    let sign = match b[21] {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let off = sign * (digits(&b[22..], 2)? as i32 * 60 + digits(&b[24..], 2)? as i32);
    let local = civil_to_epoch(y, mo, d, h, mi, sec)?;
    Some(((local - i64::from(off) * 60) * 1000, off))
}

/// Reads a `"…"` field starting at `s[0] == '"'`, honouring `\"` escapes.
/// Returns (content, rest after the closing quote).
fn quoted(s: &str) -> Option<(&str, &str)> {
    let b = s.as_bytes();
    if b.first() != Some(&b'"') {
        return None;
    }
    let mut i = 1;
    while let Some(p) = memchr(b'"', &b[i..]) {
        let at = i + p;
        let escaped = b[..at].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1;
        if !escaped {
            return Some((&s[1..at], &s[at + 1..]));
        }
        i = at + 1;
    }
    None
}

/// `-` means absent in access logs.
fn dash(s: &str) -> Option<&str> {
    (s != "-" && !s.is_empty()).then_some(s)
}

/// The time's brackets: the `[` and `]` before the request's opening quote. The user
/// (basic auth, the client's choice) comes before and may hold `[`, `]` and spaces, but
/// not a bare `"` (nginx writes it `\x22`, Apache `\"`), so the first `] "` closes the
/// time.
fn time_brackets(msg: &str) -> Option<(usize, usize)> {
    static CLOSE_QUOTE: crate::core::text::Needle = crate::core::text::Needle::new("] \"");
    let close = CLOSE_QUOTE.find(msg)?;
    let b = msg.as_bytes();
    // `[dd/Mon/yyyy:hh:mm:ss ±zzzz]` is 28 bytes; other forms, the nearest `[` before.
    let open = match close.checked_sub(27) {
        Some(o) if b[o] == b'[' => o,
        _ => msg[..close].rfind('[')?,
    };
    Some((open, close))
}

/// `[vhost[:port]] client ident user` (nginx may drop the ident: `client user`) → client
/// and user. Fields are split at single spaces from the left: the user is the client's
/// own text (nginx and Apache log it unescaped, spaces and all), so it is the rest.
fn head_fields(head: &str) -> Option<(&str, Option<&str>)> {
    let head = head.trim_end_matches(' ');
    let (first, rest) = split_once_ascii(head, b' ')?;
    let (second, rest) = match split_once_ascii(rest, b' ') {
        Some(x) => x,
        // `client user`
        None => return Some((first, dash(rest))),
    };
    // A vhost first: `vhost client ident user`.
    if !is_ip(first)
        && is_ip(second)
        && let Some((_ident, user)) = split_once_ascii(rest, b' ')
    {
        return Some((second, dash(user)));
    }
    Some((first, dash(rest)))
}

/// Parses an access log line.
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    let Some((open, close)) = time_brackets(msg) else {
        return Parsed::No;
    };
    let Some((client, user)) = head_fields(&msg[..open]) else {
        return Parsed::No;
    };
    let Some((request, after)) = quoted(msg[close + 1..].trim_start()) else {
        return Parsed::No;
    };
    let mut tail = after.split_whitespace();
    let status: Option<i32> = tail.next().and_then(|s| s.parse().ok());
    let bytes: Option<i64> = tail.next().and_then(|s| s.parse().ok());
    // `METHOD target VERSION`: nginx takes a target with spaces in it, so the version is
    // the last word (when it is one) and the target all between.
    let (method, target, version) = match split_once_ascii(request, b' ') {
        None => (request, None, None),
        Some((m, r)) => match r.rsplit_once(' ') {
            Some((t, v)) if v.starts_with("HTTP/") => (m, Some(t), Some(v)),
            _ => (m, Some(r), None),
        },
    };
    let valid_method = !method.is_empty() && method.bytes().all(|c| c.is_ascii_uppercase());
    let activity = if valid_method {
        http_activity_id(method)
    } else {
        0
    };
    let st = match status {
        Some(c) if c < 400 => Status::Success,
        Some(_) => Status::Failure,
        None => Status::Unknown,
    };
    // HTTP Activity needs a request or a response: a line with neither stays the Base Event
    // it was (raw_data keeps it).
    let has_request = (valid_method && target.is_some()) || dash(request).is_some();
    if !has_request && status.is_none() {
        return Parsed::No;
    }
    set_class(ev, Class::HttpActivity, activity, st);
    if let Some((ms, off)) = clf_time(&msg[open + 1..close]) {
        if ev.metadata.original_time.is_none() {
            ev.time = ms;
            ev.timezone_offset = Some(off);
            ev.metadata.original_time = Some(msg[open + 1..close].into());
        } else {
            // Relayed through syslog: `time` stays the envelope's, as for every record with
            // one; the request's own time is kept beside it.
            ev.unmapped_set("http_access", "request_time", ms);
        }
    } else {
        ev.note_parse_error(format!(
            "access log: unreadable time {:?}",
            &msg[open + 1..close]
        ));
    }
    let is_nginx = ev
        .metadata
        .log_provider
        .as_deref()
        .is_some_and(|p| p.contains("nginx"));
    code(
        ev,
        "http_access",
        if is_nginx {
            "nginx.access"
        } else {
            "http.access"
        },
    );
    ev.src_endpoint = Some(if is_ip(client) {
        Endpoint::ip(client, None)
    } else {
        Endpoint {
            hostname: Some(client.into()),
            ..Endpoint::default()
        }
    });
    if let Some(u) = user {
        ev.actor.get_or_insert_with(Actor::default).user = Some(User::named(u));
    }
    let mut req = HttpRequest::default();
    if valid_method && target.is_some() {
        let target = target.unwrap_or("");
        req.http_method = Some(method.into());
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p, Some(q)),
            None => (target, None),
        };
        req.url = Some(Url {
            url_string: Some(target.into()),
            path: Some(path.into()),
            query_string: query.map(|s| s.into()),
            ..Url::default()
        });
        req.version = version.map(|s| s.into());
    } else if let Some(r) = dash(request) {
        // Scanners send TLS handshakes and garbage to HTTP ports: keep what was sent.
        req.url = Some(Url {
            url_string: Some(r.into()),
            ..Url::default()
        });
        ev.note_parse_error("access log: request line is not METHOD TARGET VERSION");
    }
    // Combined format: "referrer" "user agent", then anything extra.
    let rest = after.trim_start();
    let rest = split_once_ascii(rest, b' ')
        .and_then(|(_, r)| split_once_ascii(r, b' '))
        .map_or("", |(_, r)| r)
        .trim_start();
    if let Some((referrer, rest)) = quoted(rest) {
        req.referrer = dash(referrer).map(|s| s.into());
        if let Some((agent, extra)) = quoted(rest.trim_start()) {
            req.user_agent = dash(agent).map(|s| s.into());
            let extra = extra.trim();
            if !extra.is_empty() {
                ev.unmapped_set("http_access", "extra", extra.to_owned());
            }
        }
    }
    if req != HttpRequest::default() {
        ev.http_request = Some(Box::new(req));
    }
    if let Some(code_) = status {
        ev.http_response = Some(Box::new(HttpResponse {
            code: Some(code_),
            length: bytes,
            latency: None,
        }));
    } else {
        ev.note_parse_error("access log: no status code");
    }
    Parsed::Yes
}
