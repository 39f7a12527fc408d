//! sudo and su: command runs → Process Activity (actor = who ran it, process user = whom
//! it ran as); failures → Authentication.

use vedette_schemas::ocsf::{Actor, Class, Event, File, Process, Session, Status, User};

use super::{Parsed, auth, code, set_class};
use crate::core::text::{Needle, basename};

/// The `KEY=value` fields of a sudo line: `TTY=pts/0 ; PWD=/x ; USER=root ; COMMAND=…`.
#[derive(Default)]
struct SudoFields<'a> {
    tty: Option<&'a str>,
    pwd: Option<&'a str>,
    user: Option<&'a str>,
    command: Option<&'a str>,
    /// The run-as users the line could be read to name, when the working directory or the
    /// command (both the invoking user's choice) hold sudo's own ` ; USER=` or
    /// `COMMAND=`: `user` is then the most privileged of them.
    ambiguous: Vec<&'a str>,
}

fn sudo_fields(s: &str) -> SudoFields<'_> {
    let mut f = SudoFields::default();
    // COMMAND is last and may itself contain " ; ": take everything after the first, so
    // whatever follows is in the command line, never hidden.
    static COMMAND: Needle = Needle::new("COMMAND=");
    let (head, command) = match COMMAND.find(s) {
        Some(p) => (&s[..p], Some(s[p + 8..].trim())),
        None => (s, None),
    };
    f.command = command;
    for part in head.split(" ; ") {
        let part = part.trim().trim_end_matches(';').trim();
        if let Some(v) = part.strip_prefix("TTY=") {
            f.tty = Some(v);
        } else if let Some(v) = part.strip_prefix("PWD=") {
            f.pwd = Some(v);
        } else if let Some(v) = part.strip_prefix("USER=") {
            f.user = Some(v);
        }
    }
    // A directory named `x ; USER=nobody ; COMMAND=/bin/true` makes a root run read as
    // nobody's, and arguments ` ; USER=nobody ; COMMAND=/bin/true` do the same read from
    // the right: the line does not say which fields are sudo's. Every `USER=` it could
    // mean is a candidate, and the run is taken as the most privileged.
    // Two `COMMAND=` or two ` ; USER=` are the sign; the common line has one of each.
    static USER: Needle = Needle::new(" ; USER=");
    let twice = |n: &Needle| n.find(s).is_some_and(|p| n.find(&s[p + 1..]).is_some());
    if twice(&COMMAND) || twice(&USER) {
        let mut candidates: Vec<&str> = s
            .split(" ; ")
            .filter_map(|p| p.trim().strip_prefix("USER="))
            .collect();
        candidates.sort_unstable();
        candidates.dedup();
        if let Some(root) = candidates.iter().find(|u| **u == "root") {
            f.user = Some(root);
        }
        f.ambiguous = candidates;
    }
    f
}

/// Parses a sudo message.
pub fn parse_sudo(msg: &str, ev: &mut Event, module: Option<&str>) -> Parsed {
    if module.is_some() || msg.starts_with("pam_") {
        return Parsed::No;
    }
    // `  alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id`
    static INVOKER_END: Needle = Needle::new(" : ");
    let Some((invoker, rest)) = INVOKER_END.split_once(msg.trim_start()) else {
        return Parsed::No;
    };
    if invoker.contains(' ') {
        return Parsed::No;
    }
    // A long command is logged over several lines; the ones after the first carry only
    // the rest of it, which may read like anything (`3 incorrect password attempts`).
    if rest.starts_with("(command continued)") {
        code(ev, "sudo", "sudo.command_continued");
        return Parsed::No;
    }
    let f = sudo_fields(rest);
    let first = rest.split(" ; ").next().unwrap_or("");
    let failure = if first.starts_with("TTY=") || first.starts_with("PWD=") {
        None
    } else {
        Some(first.trim())
    };
    match failure {
        None => {
            let Some(cmd) = f.command else {
                return Parsed::No;
            };
            set_class(ev, Class::ProcessActivity, 1, Status::Success);
            code(ev, "sudo", "sudo.command");
            launch(ev, invoker, f.user.unwrap_or("root"), cmd, f.pwd, f.tty);
            if !f.ambiguous.is_empty() {
                ev.note_parse_error(format!(
                    "sudo: the working directory or command holds sudo's own fields, so the run-as user could be any of {}; taken as the most privileged",
                    f.ambiguous.join(", ")
                ));
            }
        }
        Some(reason) => {
            auth(ev, 1, Status::Failure, "sudo", Some(invoker));
            let event_code = if reason.contains("incorrect password") {
                if let Some(n) = reason
                    .split_whitespace()
                    .next()
                    .and_then(|n| n.parse().ok())
                {
                    ev.count = Some(n);
                }
                "sudo.incorrect_password"
            } else if reason.contains("NOT in sudoers") {
                "sudo.not_in_sudoers"
            } else {
                "sudo.auth_failure"
            };
            code(ev, "sudo", event_code);
            ev.status_detail = Some(reason.into());
            if let Some(cmd) = f.command {
                ev.unmapped_set("sudo", "command", cmd.to_owned());
            }
            if let Some(u) = f.user {
                ev.unmapped_set("sudo", "target_user", u.to_owned());
            }
            if let Some(t) = f.tty {
                ev.unmapped_set("sudo", "tty", t.to_owned());
            }
        }
    }
    Parsed::Yes
}

fn launch(
    ev: &mut Event,
    invoker: &str,
    target: &str,
    cmd: &str,
    pwd: Option<&str>,
    tty: Option<&str>,
) {
    let exe = cmd.split_whitespace().next().unwrap_or(cmd);
    let sudo_process = ev.actor.as_ref().and_then(|a| a.process.clone());
    let actor = ev.actor.get_or_insert_with(Actor::default);
    actor.user = Some(User::named(invoker));
    ev.process = Some(Box::new(Process {
        // The command runs as a child of the logged sudo pid and its own pid is not
        // logged, so the process is identified by this event's uid (OCSF needs pid or uid).
        uid: ev.metadata.uid.clone(),
        name: Some(basename(exe).into()),
        cmd_line: Some(cmd.into()),
        file: Some(File {
            name: Some(basename(exe).into()),
            path: Some(exe.into()),
            type_id: Some(1),
            r#type: Some("Regular File".into()),
            ..File::default()
        }),
        user: Some(User::named(target)),
        working_directory: pwd.map(|s| s.into()),
        session: tty.map(|t| Session {
            terminal: Some(t.into()),
            ..Session::default()
        }),
        parent_process: sudo_process,
        ..Process::default()
    }));
}

/// Parses an su message.
pub fn parse_su(msg: &str, ev: &mut Event, module: Option<&str>) -> Parsed {
    if module.is_some() || msg.starts_with("pam_") {
        return Parsed::No;
    }
    // Debian: `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`.
    // RHEL: `Successful su for root by alice`, `FAILED su for root by alice`.
    let (failed, rest) = match msg
        .strip_prefix("FAILED SU ")
        .or_else(|| msg.strip_prefix("FAILED su "))
    {
        Some(r) => (true, r),
        None => (false, msg),
    };
    let (target, invoker, tty) = if let Some(r) = rest.strip_prefix("(to ") {
        let Some((target, r)) = r.split_once(") ") else {
            return Parsed::No;
        };
        let (invoker, tty) = r.split_once(" on ").unwrap_or((r, ""));
        (target, invoker, Some(tty).filter(|t| !t.is_empty()))
    } else if let Some(r) = rest
        .strip_prefix("Successful su for ")
        .or_else(|| rest.strip_prefix("for "))
    {
        let Some((target, invoker)) = r.rsplit_once(" by ") else {
            return Parsed::No;
        };
        (target, invoker, None)
    } else {
        return Parsed::No;
    };
    if failed {
        auth(ev, 7, Status::Failure, "su", Some(target));
        code(ev, "su", "su.failed");
        ev.status_detail = Some("FAILED SU".into());
        ev.actor.get_or_insert_with(Actor::default).user = Some(User::named(invoker));
        if let Some(t) = tty {
            ev.unmapped_set("su", "tty", t.to_owned());
        }
        return Parsed::Yes;
    }
    set_class(ev, Class::ProcessActivity, 5, Status::Success);
    code(ev, "su", "su.session");
    let actor_process = ev.actor.as_ref().and_then(|a| a.process.clone());
    ev.actor.get_or_insert_with(Actor::default).user = Some(User::named(invoker));
    ev.process = Some(Box::new(Process {
        pid: actor_process.as_ref().and_then(|p| p.pid),
        uid: ev.metadata.uid.clone(),
        name: Some("su".into()),
        user: Some(User::named(target)),
        session: tty.map(|t| Session {
            terminal: Some(t.into()),
            ..Session::default()
        }),
        ..Process::default()
    }));
    Parsed::Yes
}

/// Parses a pkexec (polkit) message: `U: Executing command [USER=root] [TTY=…] [CWD=…]
/// [COMMAND=…]` → Process Activity; any other text before the fields (`The value for the
/// SHELL variable was not found …`, the CVE-2021-4034 trace) is a refused run: Failure.
pub fn parse_pkexec(msg: &str, ev: &mut Event) -> Parsed {
    let Some((invoker, rest)) = msg.split_once(": ") else {
        return Parsed::No;
    };
    let field = |k: &str| -> Option<&str> {
        let start = rest.find(&format!("[{k}="))? + k.len() + 2;
        let tail = &rest[start..];
        // COMMAND is last and may hold brackets: it runs to the final `]`.
        let end = if k == "COMMAND" {
            tail.rfind(']')?
        } else {
            tail.find(']')?
        };
        Some(&tail[..end])
    };
    let Some(cmd) = field("COMMAND") else {
        return Parsed::No;
    };
    let ok = rest.starts_with("Executing command");
    set_class(
        ev,
        Class::ProcessActivity,
        1,
        if ok { Status::Success } else { Status::Failure },
    );
    code(
        ev,
        "pkexec",
        if ok {
            "pkexec.command"
        } else {
            "pkexec.refused"
        },
    );
    launch(
        ev,
        invoker,
        field("USER").unwrap_or("root"),
        cmd,
        field("CWD"),
        field("TTY"),
    );
    if !ok {
        let detail = rest.split(" [USER=").next().unwrap_or(rest);
        ev.status_detail = Some(detail.into());
    }
    Parsed::Yes
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_schemas::ocsf::Product;

    fn ev(msg: &str) -> Event {
        let mut e = Event::new(Class::Base, 0, 0, Product::default());
        parse_sudo(msg, &mut e, None);
        e
    }

    fn run_as(e: &Event) -> Option<&str> {
        e.process.as_ref()?.user.as_ref()?.name.as_deref()
    }

    fn parse_error(e: &Event) -> String {
        e.unmapped
            .as_ref()
            .and_then(|u| u.vedette.as_ref())
            .and_then(|v| v.parse_error.as_ref())
            .map(ToString::to_string)
            .unwrap_or_default()
    }

    #[test]
    fn a_command_run_names_its_user_and_command() {
        let e = ev("alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id -u");
        assert_eq!(e.header.class, Class::ProcessActivity);
        assert_eq!(run_as(&e), Some("root"));
        let p = e.process.as_ref().unwrap();
        assert_eq!(p.cmd_line.as_deref(), Some("/usr/bin/id -u"));
        assert_eq!(parse_error(&e), "");
    }

    /// The working directory and the arguments are the invoking user's: either can hold
    /// sudo's own field separators, so which `USER=` is sudo's cannot be told. A root run
    /// is never read as someone else's, the whole command line is kept, and the event says
    /// why.
    #[test]
    fn a_directory_or_argument_holding_sudos_fields_does_not_hide_a_root_run() {
        for line in [
            "alice : TTY=pts/0 ; PWD=/tmp/a ; USER=nobody ; COMMAND=/bin/true ; USER=root ; COMMAND=/bin/rm -rf /",
            "alice : TTY=pts/0 ; PWD=/tmp ; USER=root ; COMMAND=/bin/rm -rf / ; USER=nobody ; COMMAND=/bin/true",
        ] {
            let e = ev(line);
            assert_eq!(run_as(&e), Some("root"), "{line}");
            let cmd = e.process.as_ref().unwrap().cmd_line.as_deref().unwrap();
            assert!(cmd.contains("/bin/rm -rf /"), "{cmd}");
            let why = parse_error(&e);
            assert!(why.contains("nobody, root"), "{why}");
        }
    }

    /// sudo logs a long command over several lines; a continuation is the rest of the
    /// command (the user's text), not a failure it may read like.
    #[test]
    fn a_continued_command_is_not_a_failure() {
        let e = ev("   alice : (command continued) 3 incorrect password attempts");
        assert_eq!(e.header.class, Class::Base);
        assert!(e.count.is_none());
        assert_eq!(
            e.metadata.event_code.as_deref(),
            Some("sudo.command_continued")
        );
    }
}
