//! login(1), the logins at a console, a serial line or a telnet session (util-linux's and
//! shadow's) → Authentication: the attempts at a terminal, which no SSH log shows.
//!
//! util-linux:
//! - `FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure` (`FROM` the terminal
//!   when there is no remote host)
//! - `FAILED LOGIN 2 FROM host FOR bob, User not known to the underlying authentication module`
//! - `TOO MANY LOGIN TRIES (3) FROM tty1 FOR root, Authentication failure`
//! - `FAILED LOGIN SESSION FROM host FOR bob, Permission denied`
//! - `ROOT LOGIN ON tty1`, `ROOT LOGIN ON pts/0 FROM host`, `LOGIN ON tty2 BY bob`,
//!   `LOGIN ON pts/1 BY bob FROM host`
//!
//! shadow (quotes as `'x'`, older versions as `` `x' ``):
//! - `FAILED LOGIN (1) on '/dev/tty1' FOR 'UNKNOWN', Authentication failure`
//! - `FAILED LOGIN (2) on '/dev/pts/0' from 'host' FOR 'bob', Authentication failure`
//! - `TOO MANY LOGIN TRIES (5) on '/dev/tty1' FOR 'root'`
//! - `ROOT LOGIN  on '/dev/tty1'`, `ROOT LOGIN  on '/dev/pts/0' from 'host'`
//!
//! The user name is what was typed at the prompt: a password typed one line early, or
//! text made to look like the rest of the line. So the terminal and host, which the user
//! does not choose, are read from the left, the PAM error (a fixed phrase) from the right,
//! and the user is what lies between them, whatever it holds.

use vedette_schemas::ocsf::{Endpoint, Event, Status};

use super::{Parsed, auth, code};
use crate::core::text::is_ip;

/// Where the attempt came from: the terminal, and the remote host when there is one.
struct Place<'a> {
    tty: &'a str,
    host: Option<&'a str>,
}

fn finish(
    ev: &mut Event,
    status: Status,
    event_code: &'static str,
    user: Option<&str>,
    place: &Place<'_>,
    detail: Option<&str>,
) {
    auth(ev, 1, status, "login", user);
    code(ev, "login", event_code);
    match place.host {
        Some(host) => {
            ev.logon_type_id = Some(10);
            ev.logon_type = Some("Remote Interactive".into());
            ev.is_remote = Some(true);
            ev.src_endpoint = Some(if is_ip(host) {
                Endpoint::ip(host, None)
            } else {
                Endpoint {
                    hostname: Some(host.into()),
                    ..Endpoint::default()
                }
            });
        }
        None => {
            ev.logon_type_id = Some(2);
            ev.logon_type = Some("Interactive".into());
            ev.is_remote = Some(false);
        }
    }
    if !place.tty.is_empty() {
        ev.unmapped_set("login", "tty", place.tty.to_owned());
    }
    if let Some(d) = detail.filter(|d| !d.is_empty()) {
        ev.status_detail = Some(d.into());
    }
}

/// Whether `s` names a terminal as login(1) writes it (`tty1`, `ttyS0`, `pts/3`,
/// `console`, `hvc0`): util-linux says `FROM` the terminal when there is no remote host.
/// (A remote host whose reverse name is `tty1` reads as local; its address is not in the
/// line anyway.)
fn is_terminal(s: &str) -> bool {
    let s = s.strip_prefix("/dev/").unwrap_or(s);
    if let Some(n) = s.strip_prefix("pts/") {
        return !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit());
    }
    ["tty", "console", "hvc", "xvc", "ttyS", "ttyUSB", "ttyAMA"]
        .iter()
        .any(|p| {
            s.strip_prefix(p)
                .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// util-linux: `ON TTY` or `FROM HOST` (one word each; `FROM TTY` without a remote host),
/// then what follows it.
fn util_linux_place(s: &str) -> Option<(Place<'_>, &str)> {
    let (word, rest) = s.split_once(' ')?;
    let (at, rest) = rest.split_once(' ').unwrap_or((rest, ""));
    match word {
        "ON" => Some((
            Place {
                tty: at,
                host: None,
            },
            rest,
        )),
        "FROM" if is_terminal(at) => Some((
            Place {
                tty: at,
                host: None,
            },
            rest,
        )),
        "FROM" => Some((
            Place {
                tty: "",
                host: Some(at),
            },
            rest,
        )),
        _ => None,
    }
}

/// `FOR USER, ERROR` (util-linux) → (user, error): the error is the last `, ` phrase.
fn util_linux_user(rest: &str) -> Option<(&str, Option<&str>)> {
    let rest = rest.strip_prefix("FOR ")?;
    Some(match rest.rsplit_once(", ") {
        Some((user, err)) => (user, Some(err)),
        None => (rest, None),
    })
}

/// A shadow quoted value at the start of `s` (`'x'` or `` `x' ``) and what follows it,
/// for values that cannot hold a quote (a terminal, a host).
fn quoted(s: &str) -> Option<(&str, &str)> {
    let s = s.strip_prefix('\'').or_else(|| s.strip_prefix('`'))?;
    s.split_once('\'')
}

/// shadow: ` on 'TTY'` and ` from 'HOST'`, then what follows.
fn shadow_place(s: &str) -> Option<(Place<'_>, &str)> {
    let s = s.trim_start();
    let (tty, rest) = match s.strip_prefix("on ") {
        Some(on) => quoted(on)?,
        None => ("", s),
    };
    let (host, rest) = match rest.trim_start().strip_prefix("from ") {
        Some(from) => {
            let (host, rest) = quoted(from)?;
            (Some(host), rest)
        }
        None => (None, rest),
    };
    Some((Place { tty, host }, rest.trim_start()))
}

/// shadow: `FOR 'USER', ERROR` (`with_error`) or `FOR 'USER'` → (user, error). The user
/// may hold quotes and commas: it ends at the last `', `, or at the last quote where no
/// error follows (`TOO MANY LOGIN TRIES`: a user `root', Authentication failure` is all
/// user).
fn shadow_user(rest: &str, with_error: bool) -> Option<(&str, Option<&str>)> {
    let rest = rest.strip_prefix("FOR ")?;
    let rest = rest.strip_prefix('\'').or_else(|| rest.strip_prefix('`'))?;
    if !with_error {
        return Some((rest.strip_suffix('\'')?, None));
    }
    let (user, err) = rest.rsplit_once("', ")?;
    Some((user, Some(err)))
}

/// Parses a login(1) message.
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    match read(msg, ev) {
        Some(()) => Parsed::Yes,
        None => Parsed::No,
    }
}

/// [`parse`]; `None` (and `ev` untouched) when the message is not one of login's.
fn read(msg: &str, ev: &mut Event) -> Option<()> {
    // Failures: util-linux (`FAILED LOGIN N ON|FROM …`) and shadow (`FAILED LOGIN (N) …`).
    for (prefix, event_code, detail) in [
        ("FAILED LOGIN SESSION ", "login.failed_session", None),
        ("FAILED LOGIN ", "login.failed", None),
        (
            "TOO MANY LOGIN TRIES ",
            "login.too_many_tries",
            Some("Too many login tries"),
        ),
    ] {
        let Some(rest) = msg.strip_prefix(prefix) else {
            continue;
        };
        // The attempt number: `N ` or `(N) ` (util-linux; none for a session), `(N)`
        // (shadow).
        let rest = if event_code == "login.failed_session" {
            rest
        } else {
            let (n, r) = match rest.strip_prefix('(') {
                Some(r) => r.split_once(')')?,
                None => rest.split_once(' ')?,
            };
            if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            r.trim_start()
        };
        // shadow says where in lower case and quotes it.
        let shadow = {
            let r = rest.trim_start();
            r.starts_with("on ") || r.starts_with("from ") || r.starts_with("FOR '")
        };
        let (place, (user, err)) = if shadow {
            let (place, rest) = shadow_place(rest)?;
            let with_error = event_code != "login.too_many_tries";
            (place, shadow_user(rest, with_error)?)
        } else {
            let (place, rest) = util_linux_place(rest)?;
            (place, util_linux_user(rest)?)
        };
        // shadow writes `UNKNOWN` for a name that is no account (unless LOG_UNKFAIL_ENAB):
        // it hides what was typed, which may be a password; util-linux `(unknown)` for
        // none.
        let user = Some(user).filter(|u| !(shadow && *u == "UNKNOWN") && *u != "(unknown)");
        finish(
            ev,
            Status::Failure,
            event_code,
            user,
            &place,
            detail.or(err),
        );
        return Some(());
    }
    // Successes: `ROOT LOGIN ON tty1 [FROM host]`, `LOGIN ON tty2 BY bob [FROM host]`
    // (util-linux), `ROOT LOGIN  on '/dev/tty1' [from 'host']` (shadow).
    if let Some(rest) = msg.strip_prefix("ROOT LOGIN ") {
        let place = if rest.trim_start().starts_with("on ") {
            shadow_place(rest)?.0
        } else {
            let (mut place, rest) = util_linux_place(rest)?;
            if let Some(host) = rest.strip_prefix("FROM ") {
                place.host = Some(host.trim());
            }
            place
        };
        finish(
            ev,
            Status::Success,
            "login.root",
            Some("root"),
            &place,
            None,
        );
        return Some(());
    }
    if let Some(rest) = msg.strip_prefix("LOGIN ON ") {
        let (tty, rest) = rest.split_once(" BY ")?;
        if tty.contains(' ') {
            return None;
        }
        // The user is a name login looked up (it has an account), so it holds no space;
        // what follows it is the host.
        let (user, host) = match rest.split_once(" FROM ") {
            Some((user, host)) => (user, Some(host.trim())),
            None => (rest, None),
        };
        finish(
            ev,
            Status::Success,
            "login.success",
            Some(user),
            &Place { tty, host },
            None,
        );
        return Some(());
    }
    None
}
