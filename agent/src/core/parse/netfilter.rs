//! Kernel netfilter LOG lines (iptables `LOG`, nftables `log`, UFW):
//! `[UFW BLOCK] IN=eth0 OUT= MAC=… SRC=… DST=… LEN=… PROTO=TCP SPT=… DPT=… SYN` → Network Activity.

use memchr::memmem;

use crate::core::text::Needle;
use vedette_schemas::ocsf::{Class, ConnectionInfo, Endpoint, Event, Status, Text};

use super::{Parsed, code, set_class};

/// Whether `msg` is a netfilter log line.
pub fn looks_like(msg: &str) -> bool {
    static SRC: Needle = Needle::new("SRC=");
    static DST: Needle = Needle::new(" DST=");
    static IN: Needle = Needle::new("IN=");
    static OUT: Needle = Needle::new("OUT=");
    SRC.find(msg).is_some()
        && DST.find(msg).is_some()
        && (IN.find(msg).is_some() || OUT.find(msg).is_some())
}

/// The value of `key` among a line's `KEY=value` words (read once per line); values never
/// contain spaces. A key with an empty value (`OUT=`) gives `Some("")`.
fn nf<'a>(pairs: &[(&'a str, &'a str)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| *k == key).map(|(_, v)| *v)
}

/// Parses a netfilter line.
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    // The fields start at the first `KEY=` word (normally `IN=`).
    let Some(at) = ["IN=", "OUT=", "MAC=", "SRC="]
        .iter()
        .filter_map(|k| memmem::find(msg.as_bytes(), k.as_bytes()))
        .min()
        .map(|p| msg[..p].rfind(' ').map_or(0, |s| s + 1))
    else {
        return Parsed::No;
    };
    let head = msg[..at].trim();
    // Drop the kernel's `[12345.678901]` uptime stamp before the prefix.
    let prefix = match head.strip_prefix('[').and_then(|h| h.split_once(']')) {
        Some((stamp, rest)) if stamp.trim().parse::<f64>().is_ok() => rest.trim(),
        _ => head,
    };
    let rest = &msg[at..];
    let pairs: Vec<(&str, &str)> = rest.split(' ').filter_map(|w| w.split_once('=')).collect();
    let upper = prefix.to_ascii_uppercase();
    let denied = ["BLOCK", "DROP", "REJECT", "DENY", "REFUSE"]
        .iter()
        .any(|w| upper.contains(w));
    let allowed = !denied
        && ["ALLOW", "ACCEPT", "AUDIT"]
            .iter()
            .any(|w| upper.contains(w));
    let (activity, status) = if denied {
        (5, Status::Failure)
    } else {
        (6, Status::Success)
    };
    set_class(ev, Class::NetworkActivity, activity, status);
    code(
        ev,
        "netfilter",
        if denied {
            "netfilter.blocked"
        } else {
            "netfilter.logged"
        },
    );
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
    let port = |k: &str| nf(&pairs, k).and_then(|p| p.parse::<u16>().ok());
    let nonempty = |k: &str| {
        nf(&pairs, k)
            .filter(|v| !v.is_empty())
            .map(|v| Text::Owned(v.to_owned()))
    };
    let src = Endpoint {
        ip: nonempty("SRC"),
        port: port("SPT"),
        interface_name: nonempty("IN"),
        mac: nf(&pairs, "MAC").and_then(source_mac).map(Text::Owned),
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
    let proto = nf(&pairs, "PROTO").unwrap_or("");
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
    ev.connection_info = Some(Box::new(ConnectionInfo {
        protocol_num: num,
        protocol_name: Some(if name.is_empty() {
            Text::Owned(proto.to_ascii_lowercase())
        } else {
            Text::Borrowed(name)
        })
        .filter(|s| !s.is_empty()),
        direction_id: Some(dir_id),
        direction: Some(dir.into()),
        tcp_flags: None,
    }));
    // What has no OCSF place goes under unmapped.netfilter, built in one pass: the prefix,
    // every other KEY=value (LEN, TTL, ID, TOS, RES, URGP, SEQ, ACK, MARK …; the first of a
    // repeated key, i.e. the IP header's LEN), and the flags.
    let mut extra = serde_json::Map::new();
    if !prefix.is_empty() {
        extra.insert("prefix".into(), prefix.into());
    }
    for &(k, v) in &pairs {
        let mapped = matches!(
            k,
            "IN" | "OUT" | "MAC" | "SRC" | "DST" | "SPT" | "DPT" | "PROTO"
        );
        let key_like = !k.is_empty() && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_');
        if !mapped && key_like && !v.is_empty() {
            extra
                .entry(k.to_ascii_lowercase())
                .or_insert_with(|| v.into());
        }
    }
    // Proxmox puts its own time in the prefix:
    // `0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP:`.
    if ev.metadata.original_time.is_none() {
        let found = (0..prefix.len().saturating_sub(25))
            .filter(|&i| prefix.is_char_boundary(i) && prefix.is_char_boundary(i + 26))
            .find_map(|i| super::access::clf_time(&prefix[i..i + 26]).map(|t| (t, i)));
        if let Some(((ms, off), i)) = found {
            ev.time = ms;
            ev.timezone_offset = Some(off);
            ev.metadata.original_time = Some(prefix[i..i + 26].to_owned().into());
        }
    }
    let flags: Vec<&str> = rest
        .split(' ')
        .filter(|w| {
            matches!(
                *w,
                "SYN" | "ACK" | "FIN" | "RST" | "PSH" | "URG" | "ECE" | "CWR" | "DF"
            )
        })
        .collect();
    if !flags.is_empty() {
        extra.insert("flags".into(), flags.join(" ").into());
    }
    ev.unmapped_mut()
        .other
        .insert("netfilter".into(), extra.into());
    Parsed::Yes
}

/// netfilter's `MAC=` is dst(6):src(6):ethertype(2); the source MAC is bytes 6..12.
fn source_mac(mac: &str) -> Option<String> {
    let parts: Vec<&str> = mac.split(':').collect();
    (parts.len() >= 12).then(|| parts[6..12].join(":"))
}

/// pfSense / OPNsense `filterlog` CSV (IPv4 and IPv6, TCP/UDP/ICMP) → Network Activity.
pub fn parse_filterlog(msg: &str, ev: &mut Event) -> Parsed {
    let f: Vec<&str> = msg.trim().split(',').collect();
    if f.len() < 17 {
        return Parsed::No;
    }
    let (iface, reason, action, direction, ipver) = (f[4], f[5], f[6], f[7], f[8]);
    // IPv4: … 15 proto id, 16 proto, 17 length, 18 src, 19 dst, 20 sport, 21 dport.
    // IPv6: … 12 proto, 13 proto id, 14 length, 15 src, 16 dst, 17 sport, 18 dport.
    let (proto, proto_id, src, dst, ports) = match ipver {
        "4" if f.len() >= 20 => (f[16], f[15], f[18], f[19], 20),
        "6" if f.len() >= 17 => (f[12], f[13], f[15], f[16], 17),
        _ => return Parsed::No,
    };
    let denied = matches!(action, "block" | "reject");
    set_class(
        ev,
        Class::NetworkActivity,
        if denied { 5 } else { 6 },
        if denied {
            Status::Failure
        } else {
            Status::Success
        },
    );
    code(
        ev,
        "filterlog",
        if denied {
            "filterlog.blocked"
        } else {
            "filterlog.passed"
        },
    );
    let (aid, a, did, d) = if denied {
        (2, "Denied", 2, "Blocked")
    } else {
        (1, "Allowed", 1, "Allowed")
    };
    ev.action_id = Some(aid);
    ev.action = Some(a.into());
    ev.disposition_id = Some(did);
    ev.disposition = Some(d.into());
    let with_ports = matches!(proto, "tcp" | "udp");
    let port = |i: usize| {
        if with_ports {
            f.get(i).and_then(|p| p.parse().ok())
        } else {
            None
        }
    };
    let inbound = direction == "in";
    ev.src_endpoint = Some(Endpoint {
        ip: Some(src.to_owned().into()),
        port: port(ports),
        interface_name: inbound.then(|| iface.to_owned().into()),
        ..Endpoint::default()
    });
    ev.dst_endpoint = Some(Endpoint {
        ip: Some(dst.to_owned().into()),
        port: port(ports + 1),
        interface_name: (!inbound).then(|| iface.to_owned().into()),
        ..Endpoint::default()
    });
    ev.connection_info = Some(Box::new(ConnectionInfo {
        protocol_num: proto_id.parse().ok(),
        protocol_name: Some(proto.to_owned().into()),
        direction_id: Some(if inbound { 1 } else { 2 }),
        direction: Some(if inbound { "Inbound" } else { "Outbound" }.into()),
        tcp_flags: None,
    }));
    for (k, i) in [("rule", 0usize), ("tracker", 3)] {
        if let Some(v) = f.get(i).filter(|v| !v.is_empty()) {
            ev.unmapped_set("filterlog", k, (*v).to_owned());
        }
    }
    ev.unmapped_set("filterlog", "reason", reason.to_owned());
    Parsed::Yes
}
