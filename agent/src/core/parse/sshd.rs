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
    // `Server listening on IP port N.`: sshd's own address, not a peer.
    if let Some(rest) = msg.strip_prefix("Server listening on ")
        && let Some((ip, port)) = ip_port(rest.trim_end_matches('.'))
    {
        super::set_class(
            ev,
            vedette_schemas::ocsf::Class::NetworkActivity,
            7,
            Status::Success,
        );
        code(ev, "sshd", "sshd.listening");
        ev.dst_endpoint = Some(Endpoint::ip(ip, port));
        return Parsed::Yes;
    }
    if let Some((ip, port)) = connection_peer(msg) {
        let lower = msg.to_ascii_lowercase();
        let (activity, event_code) = if lower.starts_with("refused connect") {
            (5, "sshd.refused_connect")
        } else if lower.starts_with("drop connection") {
            // MaxStartups, or (OpenSSH 9.8) PerSourcePenalties: turned away unheard.
            (5, "sshd.dropped_connection")
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
        let mut src = Endpoint::ip(ip, port);
        // The peer's DNS name, where the line names one: `reverse mapping checking
        // getaddrinfo for NAME [IP] failed`, `Address IP maps to NAME, but …`, `refused
        // connect from NAME (IP)`. The peer's DNS answers it, so it is only ever a name.
        let name = match event_code {
            "sshd.reverse_mapping_failed" => word_after(msg, " for ")
                .or_else(|| word_after(msg, " maps to "))
                .map(|w| w.trim_end_matches(',')),
            // tcpwrappers' client: `NAME`, `ADDR`, or `IDENTUSER@NAME`.
            "sshd.refused_connect" => word_after(msg, " from ").and_then(|w| w.rsplit('@').next()),
            _ => None,
        };
        src.hostname = name
            .filter(|n| !n.is_empty() && !is_ip(n) && !n.starts_with(['[', '(']))
            .map(|s| s.into());
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
    // An authentication step, not its outcome: `Postponed keyboard-interactive/pam for U
    // from IP port P ssh2`, `Partial publickey for U from IP port P ssh2: KEY` (the first
    // of several required methods passed).
    if let Some(rest) = body.strip_prefix("Postponed ") {
        return method_line(rest, ev, Status::Other, "sshd.postponed", "Postponed");
    }
    if let Some(rest) = body.strip_prefix("Partial ") {
        return method_line(rest, ev, Status::Other, "sshd.partial", "Partial");
    }
    // sshd's own PAM error: `PAM: Authentication failure for [illegal user ]U from HOST`.
    if let Some(rest) = body
        .strip_prefix("PAM: Authentication failure for ")
        .or_else(|| {
            body.strip_prefix("PAM: User not known to the underlying authentication module for ")
        })
    {
        let (user, peer) = rsplit_from_host(rest);
        let user = ["illegal user ", "invalid user "]
            .iter()
            .find_map(|p| user.strip_prefix(p))
            .unwrap_or(user);
        login(
            ev,
            LOGON,
            Status::Failure,
            "sshd.pam_failure",
            Some(user),
            None,
        );
        ev.src_endpoint = peer;
        ev.status_detail = Some("PAM: Authentication failure".into());
        return Parsed::Yes;
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
        if let Some(d) = disconnecting(rest) {
            let code_ = if d.reason.starts_with("Too many authentication failures") {
                "sshd.max_auth_attempts"
            } else {
                "sshd.preauth_disconnect"
            };
            login(ev, LOGON, Status::Failure, code_, Some(d.user), d.peer);
            if d.peer.is_none() {
                ambiguous_peer(ev, &d.ambiguous);
            }
            ev.status_detail = Some(d.reason.into());
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
        // `User U from HOST not allowed because not listed in AllowUsers` (HOST an address,
        // or a name with UseDNS), `User U not allowed because account is locked`.
        if let Some((left, reason)) = rest.rsplit_once(" not allowed because ") {
            let (user, peer) = rsplit_from_host(left);
            login(
                ev,
                LOGON,
                Status::Failure,
                "sshd.not_allowed",
                Some(user),
                None,
            );
            ev.src_endpoint = peer;
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
        // `Received disconnect from IP port P:11: reason`, older `… from IP: 11: reason`;
        // the reason is the client's text, and an IPv6 address holds ':' too.
        let (peer, reason) = match rest.split_once(" port ") {
            Some((ip, after)) => {
                let (port, reason) = after.split_once(':').unwrap_or((after, ""));
                (is_ip(ip).then(|| (ip, port.parse().ok())), reason)
            }
            None => {
                let (ip, reason) = rest.split_once(": ").unwrap_or((rest, ""));
                (is_ip(ip).then_some((ip, None)), reason)
            }
        };
        let reason =
            reason.trim_start_matches(|c: char| c.is_ascii_digit() || c == ':' || c == ' ');
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
    let readings = method_readings(rest);
    let (user, peer, key) = match readings.as_slice() {
        [] => {
            let Some((user, tail)) = rsplit_from(rest) else {
                // `Failed password for U` with the address cut off: keep the user, say why.
                login(ev, LOGON, status, code_, Some(rest), None);
                ev.note_parse_error("sshd: no source address after the user name");
                return Parsed::Yes;
            };
            let peer = ip_port(tail);
            if peer.is_none() {
                ev.note_parse_error(format!(
                    "sshd: cannot read the source address from {tail:?}"
                ));
            }
            (user, peer, COLON.split_once(tail).map(|(_, k)| k))
        }
        [one] => (one.user, Some(one.peer), one.key),
        [first, rest @ ..] if rest.iter().all(|r| r.peer == first.peer) => {
            let last = rest.last().unwrap_or(first);
            (last.user, Some(last.peer), last.key)
        }
        [.., last] => {
            // The user name (or a certificate's key ID) holds another `from IP port N
            // ssh2`: which address is the peer cannot be told from the line, so none is
            // claimed, rather than one the attacker wrote.
            let peers: Vec<_> = readings.iter().map(|r| r.peer).collect();
            ambiguous_peer(ev, &peers);
            (last.user, None, last.key)
        }
    };
    let invalid = user.starts_with("invalid user ");
    let user = user.strip_prefix("invalid user ").unwrap_or(user);
    login(ev, LOGON, status, code_, Some(user), peer);
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
    if let Some(key) = key {
        ev.unmapped_set("sshd", "key", key.to_owned());
    }
    Parsed::Yes
}

/// One way to read `U from IP port P ssh2[: KEY]`.
struct MethodReading<'a> {
    user: &'a str,
    peer: (&'a str, Option<u16>),
    key: Option<&'a str>,
}

/// Every way to read `U from IP port P ssh2[: KEY]` in which what follows the address is
/// what sshd writes there: nothing, ` ssh2`, or ` ssh2: ` and a key (`ALGO FP`, or a
/// certificate's `ALGO FP ID KEYID (serial N) CA ALGO FP`). The user name and a
/// certificate's key ID are the client's choice and may hold a `from IP port N` of their
/// own; a reading through one of those leaves a tail sshd does not write.
fn method_readings(s: &str) -> Vec<MethodReading<'_>> {
    static FROM: Needle = Needle::new(" from ");
    let mut out = Vec::new();
    let mut at = 0;
    while let Some(p) = FROM.find(&s[at..]).map(|p| p + at) {
        at = p + 1;
        let tail = &s[p + 6..];
        let (ip, after) = split_once_ascii(tail, b' ').unwrap_or((tail, ""));
        if !is_ip(ip) {
            continue;
        }
        let (port, after) = match after.strip_prefix("port ") {
            Some(a) => {
                let (digits, after) = a.split_at(a.bytes().take_while(u8::is_ascii_digit).count());
                let Ok(port) = digits.parse::<u16>() else {
                    continue;
                };
                (Some(port), after)
            }
            // `from IP` alone ends the line.
            None if after.is_empty() => (None, ""),
            None => continue,
        };
        let key = match after {
            "" | " ssh2" => None,
            a => match a.strip_prefix(" ssh2: ") {
                Some(k) if is_key(k) => Some(k),
                _ => continue,
            },
        };
        out.push(MethodReading {
            user: &s[..p],
            peer: (ip, port),
            key,
        });
    }
    out
}

/// Whether `k` is a key as sshd logs it after `ssh2: `: `ALGO FP`, or a certificate's
/// `ALGO FP ID KEYID (serial N) CA ALGO FP`.
fn is_key(k: &str) -> bool {
    let mut w = k.split(' ');
    let (Some(algo), Some(fp)) = (w.next(), w.next()) else {
        return false;
    };
    if algo.is_empty() || fp.is_empty() {
        return false;
    }
    match w.next() {
        None => true,
        Some("ID") => {
            let tail: Vec<&str> = k.rsplitn(6, ' ').collect();
            // Reversed: FP, ALGO, "CA", "N)", "(serial", the rest.
            matches!(
                tail.as_slice(),
                [fp2, algo2, "CA", n, "(serial", _]
                    if !fp2.is_empty()
                        && !algo2.is_empty()
                        && n.strip_suffix(')').is_some_and(|n| n.parse::<u64>().is_ok())
            )
        }
        Some(_) => false,
    }
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

/// `U IP port P: REASON` after `Disconnecting invalid user ` (or `authenticating user `),
/// read at each `: `. The client chose U, and with `Change of username or service not
/// allowed: (U,S) -> (U2,S2)` the reason's names too, so either side may hold an
/// `IP port P: ` of its own. The readings whose reason is one sshd writes (too many
/// failures; a change of user name that starts with the reading's own user) are the
/// candidates, else every reading; when the candidates name different peers, none is
/// claimed ([`Disconnecting::peer`] is `None`, the addresses are in `ambiguous`).
fn disconnecting(s: &str) -> Option<Disconnecting<'_>> {
    const CHANGE: &str = "Change of username or service not allowed: (";
    let mut readings = Vec::new();
    let mut end = s.len();
    while let Some(p) = s[..end].rfind(": ") {
        end = p;
        let (left, reason) = (&s[..p], &s[p + 2..]);
        if let Some((user, peer)) = user_ip_port_tail(left) {
            let known = reason.starts_with("Too many authentication failures")
                || reason
                    .strip_prefix(CHANGE)
                    .and_then(|named| named.strip_prefix(user))
                    .is_some_and(|r| r.starts_with(','));
            readings.push((known, user, peer, reason));
        }
    }
    let known: Vec<_> = readings.iter().filter(|r| r.0).collect();
    let candidates: Vec<_> = if known.is_empty() {
        readings.iter().collect()
    } else {
        known
    };
    let &&(_, user, peer, reason) = candidates.first()?;
    if candidates.iter().all(|r| r.2 == peer) {
        return Some(Disconnecting {
            user,
            peer: Some(peer),
            reason,
            ambiguous: Vec::new(),
        });
    }
    Some(Disconnecting {
        user,
        peer: None,
        reason,
        ambiguous: candidates.iter().map(|r| r.2).collect(),
    })
}

struct Disconnecting<'a> {
    user: &'a str,
    peer: Option<(&'a str, Option<u16>)>,
    reason: &'a str,
    ambiguous: Vec<(&'a str, Option<u16>)>,
}

/// The parse error of a line whose peer could be any of `peers`.
fn ambiguous_peer(ev: &mut Event, peers: &[(&str, Option<u16>)]) {
    let seen: Vec<String> = peers
        .iter()
        .map(|(ip, port)| match port {
            Some(p) => format!("{ip} port {p}"),
            None => (*ip).to_owned(),
        })
        .collect();
    ev.note_parse_error(format!(
        "sshd: the source address is ambiguous (text the client chose names another): {}",
        seen.join(", ")
    ));
}

/// `U from HOST` read from the right (HOST an address, or a DNS name: the peer's DNS
/// answers it, so it holds no space): the user and the peer; `U` alone without a peer.
fn rsplit_from_host(s: &str) -> (&str, Option<Endpoint>) {
    if let Some((user, tail)) = rsplit_from(s)
        && let Some((ip, port)) = ip_port(tail)
    {
        return (user, Some(Endpoint::ip(ip, port)));
    }
    match s.rsplit_once(" from ") {
        Some((user, host))
            if !host.is_empty()
                && !host.contains(' ')
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b)) =>
        {
            let peer = Endpoint {
                hostname: Some(host.into()),
                ..Endpoint::default()
            };
            (user, Some(peer))
        }
        _ => (s, None),
    }
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

/// The peer of an sshd line we do not map to a class. Attackers choose text that sshd
/// logs before the peer (user names, banners, key IDs), so it is read from the right: the
/// last `IP port N`, else the last address. Two forms name it first and sshd's own
/// address or the peer's DNS name after it (`drop connection #0 from [IP]:P on [IP]:P`,
/// `Address IP maps to NAME`).
fn connection_peer(msg: &str) -> Option<(&str, Option<u16>)> {
    fn addr(w: &str) -> Option<&str> {
        // Trailing ':' and ',' are punctuation, a leading ':' is not (`::ffff:1.2.3.4`);
        // a `user@addr` word names the address after the '@'.
        let w = w
            .trim_matches(|c| matches!(c, '(' | ')' | '[' | ']' | '\'' | '"'))
            .trim_end_matches([':', ',', '.']);
        let w = w.rsplit('@').next().unwrap_or(w);
        is_ip(w).then_some(w)
    }
    if let Some(rest) = msg.strip_prefix("drop connection #") {
        // `#N from [IP]:PORT on [IP]:PORT …`
        let (_, peer) = rest.split_once(" from [")?;
        let (ip, port) = peer.split_once("]:")?;
        let port = port.split(' ').next().and_then(|p| p.parse().ok());
        return is_ip(ip).then_some((ip, port));
    }
    if let Some(rest) = msg.strip_prefix("Address ") {
        return addr(rest.split(' ').next()?).map(|ip| (ip, None));
    }
    let words: Vec<&str> = msg.split_whitespace().collect();
    let with_port = words.windows(3).rev().find_map(|w| {
        let port = w[2].trim_end_matches([':', ',', '.', ';']).parse().ok()?;
        (w[1] == "port").then_some(())?;
        Some((addr(w[0])?, Some(port)))
    });
    with_port.or_else(|| {
        words
            .iter()
            .rev()
            .find_map(|w| addr(w))
            .map(|ip| (ip, None))
    })
}

/// The word after the first `marker` in `s`.
fn word_after<'a>(s: &'a str, marker: &str) -> Option<&'a str> {
    let (_, rest) = s.split_once(marker)?;
    rest.split(' ').next()
}

#[cfg(test)]
mod tests;
