//! Phrases many daemons share, for programs without a parser of their own:
//! `connection from IP` (ftpd, xinetd …) → Network Activity; `Authentication failed from IP`
//! (klogind, …) → Authentication failure. Anything else stays Base Event.

use vedette_schemas::ocsf::{Class, Endpoint, Event, Status};

use super::{Parsed, auth, code, set_class};
use crate::core::text::is_ip;

/// The IP after `marker` where the message starts with it (after a level word such as
/// `error: `), allowing `(` `[` wrappers and a trailing `:` `,`. Anywhere in the message,
/// text a program quotes (`user comment: Authentication failed from 203.0.113.9`) made a
/// failed logon from an address of the writer's choice.
fn ip_after<'a>(msg: &'a str, marker: &str) -> Option<&'a str> {
    let body = ["error: ", "warning: ", "notice: ", "info: "]
        .iter()
        .find_map(|l| msg.strip_prefix(l))
        .unwrap_or(msg);
    let head = body.get(..marker.len())?;
    if !head.eq_ignore_ascii_case(marker) {
        return None;
    }
    let p = msg.len() - body.len();
    let w = msg[p + marker.len()..].split_whitespace().next()?;
    let w = w.trim_matches(|c| matches!(c, '(' | ')' | '[' | ']' | ':' | ','));
    is_ip(w).then_some(w)
}

/// Parses a message of `program` by its shared phrases.
pub fn parse(program: &str, msg: &str, ev: &mut Event) -> Parsed {
    if program.is_empty() {
        return Parsed::No;
    }
    if let Some(ip) = ip_after(msg, "authentication failed from ")
        .or_else(|| ip_after(msg, "authentication failure from "))
    {
        auth(ev, 1, Status::Failure, program, None);
        code(ev, "syslog", "generic.auth_failure");
        ev.src_endpoint = Some(Endpoint::ip(ip, None));
        ev.is_remote = Some(true);
        ev.status_detail = Some(msg.into());
        return Parsed::Yes;
    }
    if let Some(ip) = ip_after(msg, "connection from ") {
        set_class(ev, Class::NetworkActivity, 1, Status::Success);
        code(ev, "syslog", "generic.connection");
        ev.src_endpoint = Some(Endpoint::ip(ip, None));
        return Parsed::Yes;
    }
    Parsed::No
}
