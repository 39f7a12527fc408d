//! PAM module messages (`pam_unix(sshd:auth): …`, `PAM 2 more authentication failures; …`,
//! and the old `sshd(pam_unix)[pid]: …` form) → Authentication, or Account Change for
//! password changes.

use vedette_schemas::ocsf::{Class, Endpoint, Event, Status, User};

use super::{Parsed, auth, code, set_class};
use crate::core::text::{Needle, is_ip, kv};

/// Parses a PAM message logged by `program`; `module` is set when the tag named it.
pub fn parse(program: &str, module: Option<&str>, msg: &str, ev: &mut Event) -> Parsed {
    let r = parse_pam(program, module, msg, ev);
    // sshd's PAM conversations are remote interactive logons.
    if r == Parsed::Yes
        && ev.class() == vedette_schemas::ocsf::Class::Authentication
        && ev.service.as_ref().and_then(|s| s.name.as_deref()) == Some("sshd")
    {
        super::remote_interactive(ev, None);
    }
    r
}

fn parse_pam(program: &str, module: Option<&str>, msg: &str, ev: &mut Event) -> Parsed {
    // `pam_unix(sshd:auth): body` → service `sshd`, kind `auth`.
    static MODULE_END: Needle = Needle::new("): ");
    let (service, kind, body) = match msg
        .strip_prefix("pam_")
        .and_then(|_| MODULE_END.split_once(msg))
    {
        Some((head, body)) => {
            let inner = head.split_once('(').map_or("", |(_, i)| i);
            let (svc, kind) = inner.split_once(':').unwrap_or((inner, ""));
            (svc, kind, body)
        }
        None if module.is_some() || msg.starts_with("PAM ") => (program, "", msg),
        None => return Parsed::No,
    };
    let service = if service.is_empty() { program } else { service };
    let remote = service == "sshd";

    if let Some(rest) = body.strip_prefix("PAM ") {
        // `PAM N more authentication failure(s); logname= … rhost=R user=U`
        if let Some((n, _)) = rest.split_once(" more authentication failure")
            && let Ok(n) = n.parse::<u32>()
        {
            failure(ev, service, body, remote, "pam.more_failures");
            ev.count = Some(n);
            ev.status_detail = Some(format!("{n} more authentication failures").into());
            return Parsed::Yes;
        }
        code(ev, "pam", "pam.other");
        return Parsed::No;
    }
    if body.starts_with("authentication failure") {
        failure(ev, service, body, remote, "pam.auth_failure");
        ev.status_detail = Some("Authentication failure".into());
        return Parsed::Yes;
    }
    if body.starts_with("check pass; user unknown") {
        auth(ev, 1, Status::Failure, service, None);
        code(ev, "pam", "pam.check_pass_unknown");
        ev.status_detail = Some("User unknown".into());
        return Parsed::Yes;
    }
    if let Some(rest) = body.strip_prefix("auth could not identify password for [") {
        let user = rest.split(']').next();
        auth(ev, 1, Status::Failure, service, user);
        code(ev, "pam", "pam.auth_failure");
        ev.status_detail = Some("Could not identify password".into());
        return Parsed::Yes;
    }
    for (prefix, activity, event_code) in [
        ("session opened for user ", 1u8, "pam.session_opened"),
        ("session closed for user ", 2u8, "pam.session_closed"),
    ] {
        if let Some(rest) = body.strip_prefix(prefix) {
            // `U by (uid=0)`, `U(uid=1000) by U2(uid=0)`, or just `U`.
            let (target, by) = match rest.rsplit_once(" by ") {
                Some((t, b)) => (t, Some(b)),
                None => (rest, None),
            };
            let (name, uid) = name_uid(target);
            auth(ev, activity, Status::Success, service, Some(name));
            if let (Some(u), Some(uid)) = (ev.user.as_mut(), uid) {
                u.uid = Some(uid.into());
            }
            code(ev, "pam", event_code);
            if let Some(by) = by {
                let (by_name, by_uid) = name_uid(by);
                let actor = ev.actor.get_or_insert_with(Default::default);
                actor.user = Some(User {
                    name: Some(by_name).filter(|n| !n.is_empty()).map(|n| n.into()),
                    uid: by_uid.map(|s| s.into()),
                    ..User::default()
                })
                .filter(|u| u.name.is_some() || u.uid.is_some());
            }
            return Parsed::Yes;
        }
    }
    if let Some(user) = body.strip_prefix("password changed for ") {
        set_class(ev, Class::AccountChange, 3, Status::Success);
        ev.user = Some(User::named(user.trim()));
        code(ev, "pam", "pam.password_changed");
        return Parsed::Yes;
    }
    if let Some(rest) = body.strip_prefix("user ").filter(|r| r.contains(" tally ")) {
        // pam_tally2: `user U (UID) tally N, deny M`
        let user = rest.split_whitespace().next();
        auth(ev, 1, Status::Failure, service, user);
        code(ev, "pam", "pam.tally");
        ev.status_detail = Some(body.into());
        return Parsed::Yes;
    }
    // pam_faillock: `Consecutive login failures for user U account temporarily locked`.
    if let Some(rest) = body.strip_prefix("Consecutive login failures for user ") {
        let user = rest
            .strip_suffix(" account temporarily locked")
            .unwrap_or(rest)
            .trim();
        auth(ev, 1, Status::Failure, service, Some(user));
        code(ev, "pam", "pam.faillock_locked");
        ev.status_detail = Some("Account temporarily locked after consecutive failures".into());
        return Parsed::Yes;
    }
    // The module's phrase is what precedes the `; key=value` fields, whose values (a user
    // name, a remote host) are not the module's to say: `user=failure` is no failure.
    let phrase = body.split(';').next().unwrap_or(body);
    if kind == "auth" && phrase.starts_with("authentication success") {
        outcome(
            ev,
            service,
            body,
            remote,
            Status::Success,
            "pam.auth_success",
        );
        ev.status_detail = Some("Authentication success".into());
        return Parsed::Yes;
    }
    if kind == "auth" && phrase.contains("failure") {
        failure(ev, service, body, remote, "pam.auth_failure");
        ev.status_detail = Some(phrase.trim().into());
        return Parsed::Yes;
    }
    Parsed::No
}

/// `name(uid=N)` or `(uid=N)` → (name, uid).
fn name_uid(s: &str) -> (&str, Option<&str>) {
    match s.split_once("(uid=") {
        Some((n, rest)) => (n.trim(), rest.strip_suffix(')')),
        None => (s.trim(), None),
    }
}

fn failure(ev: &mut Event, service: &str, body: &str, remote: bool, event_code: &'static str) {
    outcome(ev, service, body, remote, Status::Failure, event_code);
}

/// A logon's outcome from a PAM line's `user=`, `rhost=`, `tty=` and `ruser=` fields.
fn outcome(
    ev: &mut Event,
    service: &str,
    body: &str,
    remote: bool,
    status: Status,
    event_code: &'static str,
) {
    let user = kv(body, "user").filter(|u| !u.is_empty());
    auth(ev, 1, status, service, user);
    code(ev, "pam", event_code);
    if let Some(rhost) = kv(body, "rhost").filter(|h| !h.is_empty()) {
        ev.src_endpoint = Some(if is_ip(rhost) {
            Endpoint::ip(rhost, None)
        } else {
            Endpoint {
                hostname: Some(rhost.into()),
                ..Endpoint::default()
            }
        });
        ev.is_remote = Some(true);
    } else if remote {
        ev.is_remote = Some(true);
    }
    if let Some(tty) = kv(body, "tty").filter(|t| !t.is_empty()) {
        ev.unmapped_set("pam", "tty", tty.to_owned());
    }
    if let Some(ruser) = kv(body, "ruser").filter(|t| !t.is_empty()) {
        ev.unmapped_set("pam", "ruser", ruser.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_schemas::ocsf::{Class, Product};

    fn ev(msg: &str) -> Event {
        let mut e = Event::new(Class::Base, 0, 0, Product::default());
        parse("sshd", None, msg, &mut e);
        e
    }

    /// The outcome is the module's phrase, not a field value: a user named `failure`
    /// does not turn a success into a failure.
    #[test]
    fn the_outcome_is_the_modules_phrase() {
        let e = ev(
            "pam_sss(sshd:auth): authentication success; logname= uid=0 euid=0 tty=ssh ruser= rhost=10.0.0.1 user=failure",
        );
        assert_eq!(e.header.class, Class::Authentication);
        assert_eq!(e.header.status, Some(Status::Success));
        assert_eq!(e.user.unwrap().name.as_deref(), Some("failure"));
        assert_eq!(e.src_endpoint.unwrap().ip.as_deref(), Some("10.0.0.1"));
        let e = ev("pam_sss(sshd:auth): received for user bob: 7 (Authentication failure)");
        assert_eq!(e.header.status, Some(Status::Failure));
    }

    #[test]
    fn a_faillock_lock_names_its_user() {
        let e = ev(
            "pam_faillock(sshd:auth): Consecutive login failures for user root account temporarily locked",
        );
        assert_eq!(e.header.status, Some(Status::Failure));
        assert_eq!(e.user.unwrap().name.as_deref(), Some("root"));
        assert_eq!(
            e.metadata.event_code.as_deref(),
            Some("pam.faillock_locked")
        );
    }
}
