//! Message parsers. Each reads the MSG part of one record (the envelope is already split
//! off and its fields are in the event) and refines the Base Event it is handed into the
//! OCSF class the message calls for. A parser that does not recognise the message returns
//! [`Parsed::No`] and leaves the event as it was; one that recognises only part of it keeps
//! what it read and notes why the rest failed in `unmapped.vedette.parse_error`.

pub mod access;
pub mod account;
pub mod audit;
pub mod cef;
pub mod dropbear;
pub mod generic;
pub mod http_error;
pub mod json;
pub mod kernel;
pub mod login;
pub mod netfilter;
pub mod pam;
pub mod sshd;
pub mod sudo;

use vedette_schemas::ocsf::{Class, Event, Header, Service, Severity, Status, Text, User};

/// The user name put where OCSF requires a user and the record names none. Parentheses
/// cannot occur in a Unix user name, so it never collides with a real account.
pub const UNKNOWN_USER: &str = "(unknown)";

/// Whether a parser recognised the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parsed {
    /// The event was refined.
    Yes,
    /// Not this parser's message; the event is untouched.
    No,
}

/// Routes a message to its parser by program name, then by shape. `kernel`: whether a
/// `kernel` tag may be the kernel's (`Envelope::kernel_may_be`).
pub(crate) fn dispatch(
    app: &str,
    msg: &str,
    ev: &mut Event,
    json: &json::JsonMappings,
    scratch: &mut json::Scratch,
    ctx: &crate::core::time::TimeContext,
    kernel: bool,
) -> Parsed {
    // "message repeated N times: [ inner ]" (rsyslog's folding) is the inner message N times.
    if let Some((n, inner)) = repeated(msg) {
        let r = dispatch(app, inner, ev, json, scratch, ctx, kernel);
        if r == Parsed::Yes {
            ev.count = Some(n.saturating_mul(ev.count.unwrap_or(1)));
        }
        return r;
    }
    let (program, module) = match crate::core::text::split_once_ascii(app, b'(') {
        // Old pam writes the module into the tag: `sshd(pam_unix)[123]`.
        Some((program, module)) => (program, module.strip_suffix(')')),
        None => (app, None),
    };
    let r = match program {
        "sshd" | "sshd-session" => sshd::parse(msg, ev, module),
        "sudo" => sudo::parse_sudo(msg, ev, module),
        "pkexec" => sudo::parse_pkexec(msg, ev),
        "dropbear" | "" => dropbear::parse(msg, ev),
        "kernel" if kernel => kernel::parse(msg, ev),
        "su" => sudo::parse_su(msg, ev, module),
        "login" => login::parse(msg, ev),
        "useradd" | "userdel" | "usermod" | "groupadd" | "groupdel" | "groupmod" | "passwd"
        | "chpasswd" | "chage" | "gpasswd" | "newusers" | "chsh" | "chfn" => {
            account::parse(program, msg, ev)
        }
        _ => Parsed::No,
    };
    if r == Parsed::Yes {
        return r;
    }
    if (module.is_some_and(|m| m.starts_with("pam_")) || msg.starts_with("pam_"))
        && pam::parse(program, module, msg, ev) == Parsed::Yes
    {
        return Parsed::Yes;
    }
    // CEF only where the message starts: a `CEF:0|…` anywhere in it (a user agent, a
    // URL, an application quoting its input) made up an event of the attacker's choosing.
    if msg.starts_with("CEF:") {
        return cef::parse(msg, ev);
    }
    if program == "CEF" || cef::headerless(msg) {
        // `host CEF: 0|…` splits as program `CEF`; some relays drop the prefix entirely.
        return cef::parse(msg, ev);
    }
    if program == "filterlog" {
        return netfilter::parse_filterlog(msg, ev);
    }
    if msg.starts_with('{') {
        return json::parse(msg, ev, json, scratch);
    }
    // Access logs first: their client-chosen fields (a user agent) can hold a whole
    // netfilter line, while a kernel LOG line holds no text a packet chooses.
    if access::looks_like(msg) {
        return access::parse(msg, ev);
    }
    // Only what writes netfilter's LOG lines: the kernel, ulogd (NFLOG, on its own
    // facility), or a line that cannot say (a file without PRI: ulogd's own file, whose
    // log prefix reads as a tag, `gw DROP: IN=…`; Proxmox's `pvefw-logger`). A line on
    // another facility is a program's own text (`logger -t app 'IN=eth0 SRC=…'` framed
    // an address).
    if (kernel || program == "ulogd") && netfilter::looks_like(msg) {
        return netfilter::parse(msg, ev);
    }
    if let Some(r) = http_error::parse(msg, ev, ctx) {
        return r;
    }
    generic::parse(program, msg, ev)
}

/// `message repeated N times: [ inner]` → (N, inner).
fn repeated(msg: &str) -> Option<(u32, &str)> {
    let rest = msg.strip_prefix("message repeated ")?;
    let (n, rest) = rest.split_once(" times: [")?;
    let inner = rest.trim_end().strip_suffix(']')?.trim();
    Some((n.parse().ok()?, inner))
}

/// Turns `ev` into an Authentication event for `service`.
pub(crate) fn auth(
    ev: &mut Event,
    activity: u8,
    status: Status,
    service: &str,
    user: Option<&str>,
) {
    set_class(ev, Class::Authentication, activity, status);
    ev.service = Some(Service {
        name: Some(service.into()),
    });
    ev.user = Some(match user.filter(|u| !u.is_empty()) {
        Some(u) => User::named(u),
        None => User {
            name: Some(UNKNOWN_USER.into()),
            type_id: Some(0),
            r#type: Some("Unknown".into()),
            ..User::default()
        },
    });
}

/// Marks an Authentication as a remote interactive logon (an SSH login), from `peer` when
/// the record names it.
pub(crate) fn remote_interactive(ev: &mut Event, peer: Option<vedette_schemas::ocsf::Endpoint>) {
    ev.logon_type_id = Some(10);
    ev.logon_type = Some("Remote Interactive".into());
    ev.is_remote = Some(true);
    if peer.is_some() {
        ev.src_endpoint = peer;
    }
}

/// Sets class, activity and status, keeping the severity; failures are at least Low.
pub(crate) fn set_class(ev: &mut Event, class: Class, activity: u8, status: Status) {
    let severity = match (status, ev.header.severity) {
        (Status::Failure, Severity::Informational | Severity::Unknown) => Severity::Low,
        (_, s) => s,
    };
    ev.header = Header {
        severity,
        status: Some(status),
        ..Header::new(class, activity)
    };
}

/// Sets `metadata.event_code` and `metadata.log_name`.
pub(crate) fn code(ev: &mut Event, log_name: &'static str, event_code: impl Into<Text>) {
    ev.metadata.log_name = Some(Text::const_new(log_name));
    ev.metadata.event_code = Some(event_code.into());
}
