//! Kernel netfilter LOG lines (iptables `LOG`, nftables `log`, UFW):
//! `[UFW BLOCK] IN=eth0 OUT= MAC=… SRC=… DST=… LEN=… PROTO=TCP SPT=… DPT=… SYN` → Network Activity.

use memchr::memmem;
use vedette_schemas::ocsf::{Class, ConnectionInfo, Endpoint, Event, Status};

use super::{Parsed, code, set_class};

/// Whether `msg` is a netfilter log line.
pub fn looks_like(msg: &str) -> bool {
    let b = msg.as_bytes();
    memmem::find(b, b"IN=").is_some() && memmem::find(b, b" OUT=").is_some()
}

/// `KEY=value` of a netfilter line; values never contain spaces. A key with an empty value
/// (`OUT=`) returns `Some("")`.
fn nf<'a>(rest: &'a str, key: &str) -> Option<&'a str> {
    rest.split(' ').find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// Parses a netfilter line.
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    let Some(at) = memmem::find(msg.as_bytes(), b"IN=") else { return Parsed::No };
    let head = msg[..at].trim();
    // Drop the kernel's `[12345.678901]` uptime stamp before the prefix.
    let prefix = match head.strip_prefix('[').and_then(|h| h.split_once(']')) {
        Some((stamp, rest)) if stamp.trim().parse::<f64>().is_ok() => rest.trim(),
        _ => head,
    };
    let rest = &msg[at..];
    let upper = prefix.to_ascii_uppercase();
    let denied = ["BLOCK", "DROP", "REJECT", "DENY", "REFUSE"].iter().any(|w| upper.contains(w));
    let allowed = !denied && ["ALLOW", "ACCEPT", "AUDIT"].iter().any(|w| upper.contains(w));
    let (activity, status) = if denied { (5, Status::Failure) } else { (6, Status::Success) };
    set_class(ev, Class::NetworkActivity, activity, status);
    code(ev, "netfilter", if denied { "netfilter.blocked" } else { "netfilter.logged" });
    if denied {
        ev.action_id = Some(2);
        ev.action = Some("Denied".into());
        ev.disposition_id = Some(2);
        ev.disposition = Some("Blocked".into());
    } else if allowed {
        ev.action_id = Some(1);
        ev.action = Some("Allowed".into());
        ev.disposition_id = Some(1);
        ev.disposition = Some("Allowed".into());
    }
    let port = |k: &str| nf(rest, k).and_then(|p| p.parse::<u16>().ok());
    let nonempty = |k: &str| nf(rest, k).filter(|v| !v.is_empty()).map(str::to_owned);
    let src = Endpoint {
        ip: nonempty("SRC"),
        port: port("SPT"),
        interface_name: nonempty("IN"),
        mac: nf(rest, "MAC").and_then(source_mac),
        ..Endpoint::default()
    };
    let dst = Endpoint {
        ip: nonempty("DST"),
        port: port("DPT"),
        interface_name: nonempty("OUT"),
        ..Endpoint::default()
    };
    let missing = src.ip.is_none() || dst.ip.is_none();
    let (in_if, out_if) = (src.interface_name.is_some(), dst.interface_name.is_some());
    ev.src_endpoint = Some(src).filter(|e| e.ip.is_some() || e.interface_name.is_some());
    ev.dst_endpoint = Some(dst).filter(|e| e.ip.is_some() || e.interface_name.is_some());
    if missing {
        ev.note_parse_error("netfilter: SRC= or DST= missing");
    }
    let proto = nf(rest, "PROTO").unwrap_or("");
    let (num, name) = match proto.to_ascii_uppercase().as_str() {
        "TCP" => (Some(6), "tcp"),
        "UDP" => (Some(17), "udp"),
        "ICMP" => (Some(1), "icmp"),
        "ICMPV6" => (Some(58), "icmpv6"),
        "SCTP" => (Some(132), "sctp"),
        "GRE" => (Some(47), "gre"),
        "ESP" => (Some(50), "esp"),
        "AH" => (Some(51), "ah"),
        other => (other.parse().ok(), ""),
    };
    // IN only: arrived for this host; OUT only: leaving it; both: forwarded.
    let (dir_id, dir) = match (in_if, out_if) {
        (true, false) => (1, "Inbound"),
        (false, true) => (2, "Outbound"),
        (true, true) => (3, "Lateral"),
        (false, false) => (0, "Unknown"),
    };
    ev.connection_info = Some(ConnectionInfo {
        protocol_num: num,
        protocol_name: Some(if name.is_empty() { proto.to_ascii_lowercase() } else { name.to_owned() })
            .filter(|s| !s.is_empty()),
        direction_id: Some(dir_id),
        direction: Some(dir.into()),
        tcp_flags: None,
    });
    if !prefix.is_empty() {
        ev.unmapped_set("netfilter", "prefix", prefix.to_owned());
    }
    for key in ["LEN", "TTL", "ID", "TOS", "PREC", "WINDOW", "MARK", "PHYSIN", "PHYSOUT"] {
        if let Some(v) = nf(rest, key).filter(|v| !v.is_empty()) {
            ev.unmapped_set("netfilter", &key.to_ascii_lowercase(), v.to_owned());
        }
    }
    let flags: Vec<&str> = rest
        .split(' ')
        .filter(|w| matches!(*w, "SYN" | "ACK" | "FIN" | "RST" | "PSH" | "URG" | "ECE" | "CWR" | "DF"))
        .collect();
    if !flags.is_empty() {
        ev.unmapped_set("netfilter", "flags", flags.join(" "));
    }
    Parsed::Yes
}

/// netfilter's `MAC=` is dst(6):src(6):ethertype(2); the source MAC is bytes 6..12.
fn source_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    (parts.len() >= 12).then(|| parts[6..12].join(":"))
}
