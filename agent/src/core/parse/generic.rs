//! Phrases many daemons share, for programs without a parser of their own:
//! `connection from IP` (ftpd, xinetd …) → Network Activity; `Authentication failed from IP`
//! (klogind, …) → Authentication failure. Anything else stays Base Event.

use vedette_schemas::ocsf::{Class, Endpoint, Event, Status};

use super::{Parsed, auth, code, set_class};
use crate::core::text::is_ip;

/// The IP after `marker`, allowing `(` `[` wrappers and a trailing `:` `,`.
fn ip_after<'a>(msg: &'a str, marker: &str) -> Option<&'a str> {
    let lower = msg.to_ascii_lowercase();
    let p = lower.find(marker)?;
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
