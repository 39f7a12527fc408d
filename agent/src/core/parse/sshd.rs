//! OpenSSH's sshd → Authentication.
//!
//! Attackers choose user names, so a user name may contain ` from 10.0.0.1 port 22`. Every
//! pattern here reads the address and port from the fixed right-hand end of the line and
//! takes the user as whatever lies between the fixed left part and that tail.

use vedette_schemas::ocsf::{Endpoint, Event, Status};

use super::{Parsed, auth, code, pam};
use crate::core::text::{Needle, ip_port, is_ip, last_word, split_once_ascii, strip_preauth};

const LOGON: u8 = 1;
const LOGOFF: u8 = 2;

/// Parses one sshd message; `module` is a PAM module named in the tag (`sshd(pam_unix)`).
pub fn parse(msg: &str, ev: &mut Event, module: Option<&str>) -> Parsed {
    if module.is_some() || msg.starts_with("pam_") || msg.starts_with("PAM ") {
        let r = pam::parse("sshd", module, msg, ev);
        if r == Parsed::No {
            code(ev, "sshd", "sshd.other");
        }
        return r;
    }
    let r = parse_sshd(msg, ev);
    if r == Parsed::Yes {
        return r;
    }
    // A connection-level record with a peer but no user (no identification string, bad
    // banner, failed key exchange, timeout, tcpwrappers refusal, reverse-mapping warning):
    // Network Activity from that peer.
    if let Some(ip) = bracketed_or_from_ip(msg) {
        let lower = msg.to_ascii_lowercase();
        let (activity, event_code) = if lower.starts_with("refused connect") {
            (5, "sshd.refused_connect")
        } else if lower.starts_with("did not receive identification") {
            (4, "sshd.no_identification")
        } else if lower.contains("banner exchange") || lower.contains("bad protocol version") {
            (4, "sshd.bad_banner")
        } else if lower.starts_with("unable to negotiate")
            || lower.contains("kex_exchange_identification")
        {
            (4, "sshd.negotiation_failed")
        } else if lower.contains("timeout before authentication") {
            (4, "sshd.auth_timeout")
        } else if lower.starts_with("reverse mapping checking") || lower.starts_with("address ") {
            // The connection was opened; the warning is about the peer's DNS.
            (1, "sshd.reverse_mapping_failed")
        } else if lower.starts_with("connection from") {
            (1, "sshd.connection")
        } else if ["fail", "error", "invalid", "bad ", "unable", "refused"]
            .iter()
            .any(|w| lower.contains(w))
        {
            (4, "sshd.connection_error")
        } else {
            (6, "sshd.connection")
        };
        let status = if matches!(activity, 4 | 5) {
            Status::Failure
        } else {
            Status::Success
        };
        super::set_class(
            ev,
            vedette_schemas::ocsf::Class::NetworkActivity,
            activity,
            status,
        );
        code(ev, "sshd", event_code);
        let after = &msg[msg.find(ip).map_or(msg.len(), |p| p + ip.len())..];
        let port = after
            .strip_prefix(" port ")
            .and_then(|p| p.split([' ', ':']).next())
            .and_then(|p| p.parse().ok());
        let mut src = Endpoint::ip(ip, port);
        if event_code == "sshd.reverse_mapping_failed" || event_code == "sshd.refused_connect" {
            // `… for NAME [IP] failed`, `refused connect from NAME (IP)`
            let name = msg.split_whitespace().find(|w| {
                w.contains('.') && !w.contains(ip) && !w.starts_with('[') && !w.starts_with('(')
            });
            src.hostname = name.filter(|n| !is_ip(n)).map(|s| s.into());
        }
        ev.src_endpoint = Some(src);
        ev.status_detail = Some(msg.into());
        return Parsed::Yes;
    }
    code(ev, "sshd", "sshd.other");
    r
}

fn parse_sshd(msg: &str, ev: &mut Event) -> Parsed {
    let (body, preauth) = strip_preauth(msg);
    // `error: Received disconnect …` and friends: the level prefix is not part of the phrase.
    let body = body.strip_prefix("error: ").unwrap_or(body);
    if let Some(rest) = body.strip_prefix("Accepted ") {
        return method_line(rest, ev, Status::Success, "sshd.accepted", "Accepted");
    }
    if let Some(rest) = body.strip_prefix("Failed ") {
        return method_line(rest, ev, Status::Failure, "sshd.failed", "Failed");
    }
    if let Some(rest) = body.strip_prefix("Invalid user ") {
        // `Invalid user U from IP[ port P]`
        let (user, tail) = rsplit_from(rest).unwrap_or((rest, ""));
        return fail(
            ev,
            "sshd.invalid_user",
            Some(user),
            ip_port(tail),
            "Invalid user",
        );
    }
    if let Some(user) = body.strip_prefix("input_userauth_request: invalid user ") {
        return fail(ev, "sshd.invalid_user", Some(user), None, "Invalid user");
    }
    if let Some(rest) = body
        .strip_prefix("error: maximum authentication attempts exceeded for ")
        .or_else(|| body.strip_prefix("maximum authentication attempts exceeded for "))
    {
        let rest = rest.strip_suffix(" ssh2").unwrap_or(rest);
        let (user, tail) = rsplit_from(rest).unwrap_or((rest, ""));
        let user = user.strip_prefix("invalid user ").unwrap_or(user);
        return fail(
            ev,
            "sshd.max_auth_attempts",
            Some(user),
            ip_port(tail),
            "Maximum authentication attempts exceeded",
        );
    }
    if let Some(rest) = body.strip_prefix("Disconnecting: Too many authentication failures") {
        let user = rest
            .strip_prefix(" for ")
            .map(|u| u.strip_prefix("invalid user ").unwrap_or(u));
        return fail(
            ev,
            "sshd.max_auth_attempts",
            user,
            None,
            "Too many authentication failures",
        );
    }
    if let Some(rest) = body
        .strip_prefix("Disconnecting invalid user ")
        .or_else(|| body.strip_prefix("Disconnecting authenticating user "))
    {
        // `Disconnecting invalid user U IP port P: Too many authentication failures`
        if let Some((left, reason)) = rest.rsplit_once(": ")
            && let Some((user, peer)) = user_ip_port_tail(left)
        {
            let code_ = if reason.contains("Too many authentication failures") {
                "sshd.max_auth_attempts"
            } else {
                "sshd.preauth_disconnect"
            };
            login(ev, LOGON, Status::Failure, code_, Some(user), Some(peer));
            ev.status_detail = Some(reason.into());
            return Parsed::Yes;
        }
    }
    if let Some(rest) = body.strip_prefix("Close session: user ") {
        // `Close session: user U from IP port P id 0`
        let rest = rest.rsplit_once(" id ").map_or(rest, |(l, _)| l);
        if let Some((user, tail)) = rsplit_from(rest) {
            login(
                ev,
                LOGOFF,
                Status::Success,
                "sshd.session_closed",
                Some(user),
                ip_port(tail),
            );
            return Parsed::Yes;
        }
    }
    if let Some(ip) = body.strip_prefix("ROOT LOGIN REFUSED FROM ") {
        let ip = ip.split_whitespace().next().unwrap_or("");
        return fail(
            ev,
            "sshd.root_refused",
            Some("root"),
            ip_port(ip),
            "Root login refused",
        );
    }
    if let Some(rest) = body.strip_prefix("User ") {
        // `User U from IP not allowed because not listed in AllowUsers`
        if let Some((left, reason)) = rest.rsplit_once(" not allowed because ")
            && let Some((user, tail)) = rsplit_from(left)
        {
            login(
                ev,
                LOGON,
                Status::Failure,
                "sshd.not_allowed",
                Some(user),
                ip_port(tail),
            );
            ev.status_detail = Some(format!("Not allowed because {reason}").into());
            return Parsed::Yes;
        }
    }
    if let Some(rest) = body
        .strip_prefix("Connection closed by ")
        .or_else(|| body.strip_prefix("Connection reset by "))
    {
        return disconnect(rest, preauth, ev, msg);
    }
    if let Some(rest) = body.strip_prefix("Disconnected from ") {
        return disconnect(rest, preauth, ev, msg);
    }
    if let Some(rest) = body.strip_prefix("Received disconnect from ") {
        // `Received disconnect from IP[ port P]: 11: reason`
        let (peer, reason) = rest.split_once(':').unwrap_or((rest, ""));
        let reason =
            reason.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == ' ');
        let peer = ip_port(peer);
        if preauth {
            login(
                ev,
                LOGON,
                Status::Failure,
                "sshd.preauth_disconnect",
                None,
                peer,
            );
        } else {
            login(ev, LOGOFF, Status::Success, "sshd.disconnect", None, peer);
        }
        ev.status_detail = Some(reason.trim())
            .filter(|s| !s.is_empty())
            .map(|s| s.into());
        return Parsed::Yes;
    }
    Parsed::No
}

/// `<method> for [invalid user ]U from IP port P ssh2[: key info]`
fn method_line(
    rest: &str,
    ev: &mut Event,
    status: Status,
    code_: &'static str,
    verb: &str,
) -> Parsed {
    static FOR: Needle = Needle::new(" for ");
    static COLON: Needle = Needle::new(": ");
    let Some((method, rest)) = FOR.split_once(rest) else {
        return Parsed::No;
    };
    let Some((user, tail)) = rsplit_from(rest) else {
        // `Failed password for U` with the address cut off: keep the user, say why.
        login(ev, LOGON, status, code_, Some(rest), None);
        ev.note_parse_error("sshd: no source address after the user name");
        return Parsed::Yes;
    };
    let invalid = user.starts_with("invalid user ");
    let user = user.strip_prefix("invalid user ").unwrap_or(user);
    let peer = ip_port(tail);
    login(ev, LOGON, status, code_, Some(user), peer);
    if peer.is_none() {
        ev.note_parse_error(format!(
            "sshd: cannot read the source address from {tail:?}"
        ));
    }
    let proto = method.split('/').next().unwrap_or(method);
    ev.auth_protocol_id = Some(99);
    ev.auth_protocol = Some(proto.into());
    // `{verb} {method}[ for invalid user]`, concatenated without the formatting machinery.
    let mut detail = String::with_capacity(verb.len() + method.len() + 18);
    detail.push_str(verb);
    detail.push(' ');
    detail.push_str(method);
    if invalid {
        detail.push_str(" for invalid user");
    }
    ev.status_detail = Some(detail.into());
    if let Some((_, key)) = COLON.split_once(tail) {
        ev.unmapped_set("sshd", "key", key.to_owned());
    }
    Parsed::Yes
}

/// Splits `U from TAIL` at the last ` from ` whose tail starts with an IP address.
fn rsplit_from(s: &str) -> Option<(&str, &str)> {
    static FROM: Needle = Needle::new(" from ");
    let mut end = s.len();
    while let Some(p) = FROM.rfind(&s[..end]) {
        let tail = &s[p + 6..];
        let first = split_once_ascii(tail, b' ')
            .map_or(tail, |(w, _)| w)
            .trim_end_matches(':');
        if is_ip(first) {
            return Some((&s[..p], tail));
        }
        end = p;
    }
    None
}

/// `[invalid |authenticating |user ]U IP port P` from the right.
fn user_ip_port_tail(s: &str) -> Option<(&str, (&str, Option<u16>))> {
    let (left, port) = last_word(s);
    let port: u16 = port.parse().ok()?;
    let left = left.strip_suffix(" port")?;
    let (user, ip) = last_word(left);
    if !is_ip(ip) {
        return None;
    }
    Some((user, (ip, Some(port))))
}

fn disconnect(rest: &str, preauth: bool, ev: &mut Event, msg: &str) -> Parsed {
    let (rest, _) = strip_preauth(rest);
    let (user, peer) = match user_ip_port_tail(rest) {
        Some((u, peer)) => {
            let u = ["invalid user ", "authenticating user ", "user "]
                .iter()
                .find_map(|p| u.strip_prefix(p))
                .unwrap_or(u);
            (Some(u).filter(|u| !u.is_empty()), Some(peer))
        }
        None => (None, ip_port(rest)),
    };
    if preauth || msg.contains("[preauth]") {
        login(
            ev,
            LOGON,
            Status::Failure,
            "sshd.preauth_disconnect",
            user,
            peer,
        );
        ev.status_detail = Some("Disconnected before authentication".into());
    } else {
        login(ev, LOGOFF, Status::Success, "sshd.disconnect", user, peer);
    }
    Parsed::Yes
}

/// A failed logon with the source's phrase as `status_detail`.
fn fail(
    ev: &mut Event,
    event_code: &'static str,
    user: Option<&str>,
    peer: Option<(&str, Option<u16>)>,
    detail: &str,
) -> Parsed {
    login(ev, LOGON, Status::Failure, event_code, user, peer);
    ev.status_detail = Some(detail.into());
    Parsed::Yes
}

fn login(
    ev: &mut Event,
    activity: u8,
    status: Status,
    event_code: &'static str,
    user: Option<&str>,
    peer: Option<(&str, Option<u16>)>,
) {
    auth(ev, activity, status, "sshd", user);
    code(ev, "sshd", event_code);
    super::remote_interactive(ev, peer.map(|(ip, port)| Endpoint::ip(ip, port)));
}

/// An address in `[1.2.3.4]` or after `from `, for sshd lines we do not map to a class.
fn bracketed_or_from_ip(msg: &str) -> Option<&str> {
    if let Some(open) = msg.rfind('[') {
        let inner = msg[open + 1..].split(']').next().unwrap_or("");
        if is_ip(inner) {
            return Some(inner);
        }
    }
    // Trailing ':' and ',' are punctuation, a leading ':' is not (`::ffff:1.2.3.4`); a
    // `user@addr` word names the address after the '@'.
    msg.split_whitespace()
        .map(|w| {
            w.trim_matches(|c| matches!(c, '(' | ')' | '[' | ']'))
                .trim_end_matches([':', ','])
        })
        .map(|w| w.rsplit('@').next().unwrap_or(w))
        .find(|w| is_ip(w))
}

#[cfg(test)]
mod tests;
