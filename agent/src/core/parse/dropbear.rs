//! Dropbear (the SSH server of routers and small hosts) → Authentication, like sshd.

use vedette_schemas::ocsf::{Endpoint, Event, Status};

use super::{Parsed, auth, code};
use crate::core::text::is_ip;

/// `IP:PORT`, `<IP:PORT>` or `[IPv6]:PORT` at the end of a phrase.
fn peer(s: &str) -> Option<Endpoint> {
    let s = s.trim().trim_start_matches('<').trim_end_matches('>');
    let s = s.split(['>', ' ']).next().unwrap_or(s);
    let (ip, port) = match s.strip_prefix('[') {
        Some(v6) => {
            let (ip, port) = v6.split_once("]:")?;
            (ip, port)
        }
        None => s.rsplit_once(':')?,
    };
    is_ip(ip).then(|| Endpoint::ip(ip, port.parse().ok()))
}

fn login(
    ev: &mut Event,
    activity: u8,
    status: Status,
    event_code: &'static str,
    user: Option<&str>,
    from: Option<&str>,
) {
    auth(ev, activity, status, "dropbear", user);
    code(ev, "dropbear", event_code);
    super::remote_interactive(ev, from.and_then(peer));
}

/// Parses a dropbear message (the program may be unknown: the phrases are dropbear's own).
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    // `Bad password attempt for 'U' from IP:PORT`, `Bad PAM password attempt for …`
    if let Some(rest) = msg
        .strip_prefix("Bad password attempt for '")
        .or_else(|| msg.strip_prefix("Bad PAM password attempt for '"))
    {
        let Some((user, from)) = rest.rsplit_once("' from ") else {
            return Parsed::No;
        };
        login(
            ev,
            1,
            Status::Failure,
            "dropbear.failed",
            Some(user),
            Some(from),
        );
        ev.auth_protocol_id = Some(99);
        ev.auth_protocol = Some("password".into());
        ev.status_detail = Some("Bad password attempt".into());
        return Parsed::Yes;
    }
    // `Login attempt for nonexistent user from IP:PORT` (newer: `… user 'U' from …`)
    if let Some(rest) = msg.strip_prefix("Login attempt for nonexistent user") {
        let (user, from) = match rest.rsplit_once(" from ") {
            Some((u, f)) => (u.trim().trim_matches('\'').trim(), f),
            None => ("", rest),
        };
        login(
            ev,
            1,
            Status::Failure,
            "dropbear.invalid_user",
            Some(user).filter(|u| !u.is_empty()),
            Some(from),
        );
        ev.status_detail = Some("Login attempt for nonexistent user".into());
        return Parsed::Yes;
    }
    // `Password auth succeeded for 'U' from IP:PORT`, `Pubkey auth succeeded for 'U' with key … from IP:PORT`
    for (prefix, proto) in [
        ("Password auth succeeded for '", "password"),
        ("Pubkey auth succeeded for '", "publickey"),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let Some((user, _)) = rest.split_once('\'') else {
                return Parsed::No;
            };
            let from = rest.rsplit_once(" from ").map(|(_, f)| f);
            login(
                ev,
                1,
                Status::Success,
                "dropbear.accepted",
                Some(user),
                from,
            );
            ev.auth_protocol_id = Some(99);
            ev.auth_protocol = Some(proto.into());
            return Parsed::Yes;
        }
    }
    // `Exit before auth from <IP:PORT>: reason`,
    // `Exit before auth (user 'U', N fails): Max auth tries reached - user 'U' from IP:PORT`
    if let Some(rest) = msg.strip_prefix("Exit before auth") {
        let user = rest
            .split("user '")
            .nth(1)
            .and_then(|r| r.split('\'').next());
        // `from <PEER>` first, then a reason that may quote the client: the peer is the
        // one right after `Exit before auth`; in the user form it ends the line.
        let from = match rest.strip_prefix(" from <") {
            Some(peer) => peer.split_once('>').map(|(p, _)| p),
            None => rest.rsplit_once(" from ").map(|(_, f)| f),
        };
        login(
            ev,
            1,
            Status::Failure,
            "dropbear.preauth_disconnect",
            user,
            from,
        );
        ev.status_detail = Some(
            rest.split_once(": ")
                .map_or(rest, |(_, r)| r)
                .trim()
                .to_owned()
                .into(),
        );
        return Parsed::Yes;
    }
    // `Exit (U): Disconnect received`, since 2022 `Exit (U) from <IP:PORT>: reason` — the
    // end of an authenticated session. The reason is dropbear's, the user the client's.
    if let Some(rest) = msg.strip_prefix("Exit (") {
        let (user, from, reason) = match rest.rsplit_once(") from <") {
            Some((user, tail)) => {
                let Some((from, reason)) = tail.split_once(">: ") else {
                    return Parsed::No;
                };
                (user, Some(from), reason)
            }
            None => {
                let Some((user, reason)) = rest.split_once("): ") else {
                    return Parsed::No;
                };
                (user, None, reason)
            }
        };
        login(
            ev,
            2,
            Status::Success,
            "dropbear.disconnect",
            Some(user),
            from,
        );
        ev.status_detail = Some(reason.into());
        return Parsed::Yes;
    }
    Parsed::No
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_schemas::ocsf::{Class, Product};

    fn ev(msg: &str) -> (Parsed, Event) {
        let mut e = Event::new(Class::Base, 0, 0, Product::default());
        (parse(msg, &mut e), e)
    }

    #[test]
    fn a_session_end_names_its_user_and_peer() {
        let (r, e) = ev("Exit (root) from <10.0.0.1:5555>: Disconnect received");
        assert_eq!(r, Parsed::Yes);
        assert_eq!(e.header.activity_id, 2);
        assert_eq!(e.user.unwrap().name.as_deref(), Some("root"));
        let s = e.src_endpoint.unwrap();
        assert_eq!((s.ip.as_deref(), s.port), (Some("10.0.0.1"), Some(5555)));
        let (r, e) = ev("Exit (root): Disconnect received");
        assert_eq!(r, Parsed::Yes);
        assert_eq!(e.status_detail.as_deref(), Some("Disconnect received"));
    }

    /// The reason after the peer may quote what the client sent.
    #[test]
    fn a_preauth_exit_takes_the_peer_after_exit_before_auth() {
        let (_, e) = ev("Exit before auth from <10.0.0.1:5555>: Bad hostkey from 6.6.6.6:1");
        let s = e.src_endpoint.unwrap();
        assert_eq!((s.ip.as_deref(), s.port), (Some("10.0.0.1"), Some(5555)));
        let (_, e) = ev(
            "Exit before auth (user 'x from 6.6.6.6:1', 10 fails): Max auth tries reached - user 'x from 6.6.6.6:1' from 10.0.0.1:5555",
        );
        assert_eq!(e.src_endpoint.unwrap().ip.as_deref(), Some("10.0.0.1"));
    }
}
