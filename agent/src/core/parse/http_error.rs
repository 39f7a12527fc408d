//! nginx and Apache error logs.
//!
//! nginx: `2021/09/30 09:23:53 [error] PID#TID: *CID message, client: IP, server: S,
//! request: "GET / HTTP/1.1", host: "H"`. Apache 2.4: `[Thu Oct 13 12:24:49.880562 2022]
//! [module:level] [pid P:tid T] [client IP:PORT] AH01618: message` (2.2 omits the module
//! and the pid). A record naming a client and a request is HTTP Activity; an Apache basic
//! authentication failure is Authentication; one naming only a client is Network Activity
//! from it; the rest stays Base Event with its time, level and process read. Neither format
//! writes a zone: the source's zone applies. What has no OCSF place is under
//! `unmapped.http_error` (`time`, `cid`, `module`, `code`, `os_error_code`, `os_error`,
//! `server`).

use memchr::memchr;
use vedette_schemas::ocsf::{
    Actor, Class, Endpoint, Event, HttpRequest, Process, Status, Text, Url, User,
};

use super::{Parsed, auth, code, set_class};
use crate::core::text::is_ip;
use crate::core::time::{Civil, TimeContext, digits, fraction, hms, month_from_abbrev};

/// Parses an error-log record; `None` when it is neither format.
pub fn parse(msg: &str, ev: &mut Event, ctx: &TimeContext) -> Option<Parsed> {
    let b = msg.as_bytes();
    if b.len() > 22 && b[4] == b'/' && b[7] == b'/' && b[10] == b' ' && b[20] == b'[' {
        return nginx(msg, ev, ctx);
    }
    if b.first() == Some(&b'[')
        && b.len() > 26
        && b[4] == b' '
        && month_from_abbrev(&b[5..8]).is_some()
    {
        return apache(msg, ev, ctx);
    }
    None
}

/// Sets the log's own time: `time` when the record had no envelope time, and always
/// `unmapped.http_error.time`.
fn own_time(ev: &mut Event, ctx: &TimeContext, text: &str, civil: Civil) {
    ev.unmapped_set("http_error", "time", text.to_owned());
    if ev.metadata.original_time.is_none()
        && let Some(t) = ctx.resolve_local(civil)
    {
        ev.time = t.ms;
        ev.timezone_offset = Some(t.offset_min);
        ev.metadata.original_time = Some(Text::from(text));
    }
}

fn set_process(ev: &mut Event, name: &'static str, pid: Option<i64>, tid: Option<i64>) {
    if pid.is_none() {
        return;
    }
    let actor = ev.actor.get_or_insert_with(Actor::default);
    let p = actor
        .process
        .get_or_insert_with(|| Box::new(Process::default()));
    p.pid = pid;
    p.tid = tid;
    p.name.get_or_insert(Text::const_new(name));
}

/// Apache's `[client IP:PORT]` (an IPv6 address's own colons before the port's).
fn apache_peer(client: &str) -> Endpoint {
    match client.rsplit_once(':') {
        Some((ip, port)) if is_ip(ip) => Endpoint::ip(ip, port.parse().ok()),
        _ => host_peer(client),
    }
}

/// nginx's `client: IP`, without a port: `2001:db8::5:1` is one address, not `:1` a port.
fn host_peer(client: &str) -> Endpoint {
    if is_ip(client) {
        Endpoint::ip(client, None)
    } else {
        Endpoint {
            hostname: Some(Text::from(client)),
            ..Endpoint::default()
        }
    }
}

/// The `, client: IP` of an nginx error line: the fields nginx appends after the message.
/// The message may quote the client's own text (an `open()` error names the decoded
/// path), and so may the fields after the real one (request, host, referrer), so every
/// `, client: ` followed by an address is a candidate: the one, when they agree; else
/// none is claimed and the candidates are returned for the parse error.
fn nginx_client(rest: &str) -> Result<Option<(usize, &str)>, Vec<&str>> {
    const KEY: &str = ", client: ";
    let mut found: Vec<(usize, &str)> = Vec::new();
    let mut from = 0;
    while let Some(p) = rest[from..].find(KEY).map(|p| p + from) {
        from = p + KEY.len();
        let v = rest[from..].split(',').next().unwrap_or("").trim();
        if is_ip(v) {
            found.push((p, v));
        }
    }
    match found.as_slice() {
        [] => Ok(None),
        [first, others @ ..] if others.iter().all(|(_, v)| *v == first.1) => Ok(Some(*first)),
        _ => Err(found.iter().map(|(_, v)| *v).collect()),
    }
}

fn url(target: &str, host: Option<&str>) -> Url {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    Url {
        url_string: Some(Text::from(target)),
        path: Some(Text::from(path)),
        query_string: query.map(Text::from),
        hostname: host.map(Text::from),
        ..Url::default()
    }
}

/// Error levels whose records say something failed.
fn failed(level: &str) -> bool {
    matches!(level, "error" | "crit" | "alert" | "emerg")
}

fn nginx(msg: &str, ev: &mut Event, ctx: &TimeContext) -> Option<Parsed> {
    let b = msg.as_bytes();
    let y = digits(b, 4)? as i16;
    let mo = digits(&b[5..], 2)? as u8;
    let d = digits(&b[8..], 2)? as u8;
    let t = hms(&b[11..])?;
    let close = memchr(b']', &b[20..])? + 20;
    let level = &msg[21..close];
    code(ev, "http_error", "nginx.error");
    let civil = Civil::new(y, mo, d, t, 0);
    own_time(ev, ctx, &msg[..19], civil);
    ev.metadata.log_level = Some(Text::from(level));
    let mut rest = msg[close + 1..].trim_start();
    // `PID#TID: *CID `
    if let Some((ids, after)) = rest.split_once(": ")
        && let Some((pid, tid)) = ids.split_once('#')
        && let (Ok(pid), Ok(tid)) = (pid.parse::<i64>(), tid.parse::<i64>())
    {
        set_process(ev, "nginx", Some(pid), Some(tid));
        rest = after;
    }
    if let Some(after) = rest.strip_prefix('*')
        && let Some((cid, after)) = after.split_once(' ')
        && cid.bytes().all(|c| c.is_ascii_digit())
    {
        ev.unmapped_set("http_error", "cid", cid.to_owned());
        rest = after;
    }
    let (text, fields, ambiguous) = match nginx_client(rest) {
        Ok(Some((p, _))) => (&rest[..p], &rest[p..], Vec::new()),
        Ok(None) => match rest.find(", client: ") {
            Some(p) => (&rest[..p], &rest[p..], Vec::new()),
            None => (rest, "", Vec::new()),
        },
        Err(seen) => {
            let p = rest.find(", client: ").unwrap_or(rest.len());
            (&rest[..p], &rest[p..], seen)
        }
    };
    let field = |k: &str| -> Option<&str> {
        let v = &fields[fields.find(k)? + k.len()..];
        Some(match v.strip_prefix('"') {
            Some(q) => q.split('"').next().unwrap_or(""),
            None => v.split(',').next().unwrap_or("").trim(),
        })
    };
    ev.status_detail = Some(Text::from(text));
    if let Some(server) = field(", server: ") {
        ev.unmapped_set("http_error", "server", server.to_owned());
    }
    let client = if ambiguous.is_empty() {
        field(", client: ")
    } else {
        ev.note_parse_error(format!(
            "nginx: the client is ambiguous (the message or a field quotes another): {}",
            ambiguous.join(", ")
        ));
        None
    };
    let request = field(", request: ");
    let status = if failed(level) {
        Status::Failure
    } else {
        Status::Unknown
    };
    match (client, request) {
        (Some(client), Some(request)) => {
            let mut parts = request.splitn(3, ' ');
            let (method, target, version) =
                (parts.next().unwrap_or(""), parts.next(), parts.next());
            set_class(
                ev,
                Class::HttpActivity,
                super::access::http_activity_id(method),
                status,
            );
            ev.src_endpoint = Some(host_peer(client));
            ev.http_request = Some(Box::new(HttpRequest {
                http_method: Some(Text::from(method)),
                url: target.map(|t| url(t, field(", host: "))),
                version: version.map(Text::from),
                ..HttpRequest::default()
            }));
            // Basic auth: `user "foo" was not found in "/etc/nginx/.htpasswd"`, `user
            // "foo": password mismatch`. The name is the client's (quotes and all), so it
            // is what lies between the fixed start and the fixed end.
            let named = text.strip_prefix("user \"").and_then(|r| {
                r.rsplit_once("\" was not found in \"")
                    .or_else(|| r.rsplit_once("\": password mismatch"))
                    .map(|(u, _)| u)
            });
            if let Some(u) = named {
                ev.actor.get_or_insert_with(Actor::default).user = Some(User::named(u));
            }
            Some(Parsed::Yes)
        }
        (Some(client), None) => {
            set_class(ev, Class::NetworkActivity, 6, status);
            ev.src_endpoint = Some(host_peer(client));
            Some(Parsed::Yes)
        }
        _ => Some(Parsed::No),
    }
}

fn apache(msg: &str, ev: &mut Event, ctx: &TimeContext) -> Option<Parsed> {
    let b = msg.as_bytes();
    let close = memchr(b']', b)?;
    let stamp = &msg[1..close];
    let sb = stamp.as_bytes();
    let mo = month_from_abbrev(sb.get(4..7)?)?;
    let d = digits(sb.get(8..)?, 2)? as u8;
    let t = hms(sb.get(11..)?)?;
    let (ms, flen) = fraction(sb.get(19..)?);
    let y = digits(sb.get(20 + flen..)?, 4)? as i16;
    code(ev, "http_error", "apache.error");
    let civil = Civil::new(y, mo, d, t, ms);
    own_time(ev, ctx, stamp, civil);
    let mut rest = msg[close + 1..].trim_start();
    let mut level = "";
    let mut client = None;
    // The leading `[…]` groups: `[module:level]` or `[level]`, `[pid P:tid T]`, `[client …]`.
    while let Some(inner) = rest.strip_prefix('[') {
        let Some(end) = inner.find(']') else { break };
        let tag = &inner[..end];
        if let Some(c) = tag.strip_prefix("client ") {
            client = Some(c);
        } else if let Some(ids) = tag.strip_prefix("pid ") {
            let (pid, tid) = ids.split_once(":tid ").unwrap_or((ids, ""));
            set_process(ev, "httpd", pid.parse().ok(), tid.parse().ok());
        } else {
            let (module, lvl) = tag.rsplit_once(':').unwrap_or(("", tag));
            if !module.is_empty() {
                ev.unmapped_set("http_error", "module", module.to_owned());
            }
            level = lvl;
            ev.metadata.log_level = Some(Text::from(lvl));
        }
        rest = inner[end + 1..].trim_start();
    }
    // `(70014)End of file found: ` — the OS error behind the message.
    if let Some(inner) = rest.strip_prefix('(')
        && let Some((num, after)) = inner.split_once(')')
        && num.bytes().all(|c| c.is_ascii_digit())
        && let Some((text, after)) = after.split_once(": ")
    {
        ev.unmapped_set("http_error", "os_error_code", num.to_owned());
        ev.unmapped_set("http_error", "os_error", text.to_owned());
        rest = after;
    }
    // mod_ssl and others put the client inside the message.
    if let Some(inner) = rest.strip_prefix("[client ")
        && let Some((c, after)) = inner.split_once("] ")
    {
        client = client.or(Some(c));
        rest = after;
    }
    let mut err_code = None;
    if let Some((c, after)) = rest.split_once(": ")
        && c.len() == 7
        && c.starts_with("AH")
        && c[2..].bytes().all(|x| x.is_ascii_digit())
    {
        err_code = Some(c);
        ev.unmapped_set("http_error", "code", c.to_owned());
        rest = after;
    }
    ev.status_detail = Some(Text::from(rest));
    let status = if failed(level) {
        Status::Failure
    } else {
        Status::Unknown
    };
    // AH01617 password mismatch, AH01618 user not found: `user U not found: /path`.
    if matches!(err_code, Some("AH01617" | "AH01618"))
        && let Some(after) = rest.strip_prefix("user ")
    {
        // `user U not found: /path` (AH01618), `user U: authentication failure for
        // "/path": Password Mismatch` (AH01617): the client chose U, spaces and all.
        let user = after
            .rsplit_once(" not found: ")
            .or_else(|| after.rsplit_once(": authentication failure for "))
            .map_or_else(|| after.split([' ', ':']).next(), |(u, _)| Some(u));
        auth(ev, 1, Status::Failure, "apache", user);
        code(ev, "http_error", "apache.auth_failure");
        ev.is_remote = Some(true);
        ev.src_endpoint = client.map(apache_peer);
        if let Some((_, path)) = rest.rsplit_once(": ").filter(|(_, p)| p.starts_with('/')) {
            ev.http_request = Some(Box::new(HttpRequest {
                url: Some(url(path, None)),
                ..HttpRequest::default()
            }));
        }
        return Some(Parsed::Yes);
    }
    match client {
        Some(c) => {
            set_class(ev, Class::NetworkActivity, 6, status);
            ev.src_endpoint = Some(apache_peer(c));
            Some(Parsed::Yes)
        }
        None => Some(Parsed::No),
    }
}
