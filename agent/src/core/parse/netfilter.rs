//! Kernel netfilter LOG lines (iptables `LOG`, nftables `log`, UFW):
//! `[UFW BLOCK] IN=eth0 OUT= MAC=… SRC=… DST=… LEN=… PROTO=TCP SPT=… DPT=… SYN` → Network Activity.

use crate::core::text::{Needle, split_spaces};
use vedette_schemas::ocsf::{Class, ConnectionInfo, Endpoint, Event, ObjectBuilder, Status, Text};

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

/// Where the kernel's fields begin: the first `IN=` word followed by an `OUT=` word (the
/// kernel writes `IN=%s OUT=%s` together; other loggers, Proxmox's, may not, and then the
/// first field word is the start). The prefix before it is the rule's, and may hold `IN=`
/// of its own (`policy IN=wan DROP:`): the first `IN=` alone was taken for the fields,
/// and the line read as the prefix's.
fn fields_start(msg: &str) -> Option<usize> {
    static IN: Needle = Needle::new("IN=");
    let mut from = 0;
    while let Some(p) = IN.find(&msg[from..]).map(|p| p + from) {
        from = p + 3;
        if p > 0 && msg.as_bytes()[p - 1] != b' ' && msg.as_bytes()[p - 1] != b']' {
            continue;
        }
        let after = &msg[p..];
        let next = after.split_once(' ').map(|(_, r)| r);
        if next.is_some_and(|r| r.starts_with("OUT=")) {
            return Some(p);
        }
    }
    None
}

/// Whether `hay` contains `word` (upper-case ASCII), ignoring ASCII case.
fn contains_upper(hay: &str, word: &str) -> bool {
    hay.as_bytes()
        .windows(word.len())
        .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
}

/// The fields of a line that have an OCSF place: the first value of each key.
#[derive(Default)]
struct Mapped<'a> {
    src: Option<&'a str>,
    dst: Option<&'a str>,
    spt: Option<&'a str>,
    dpt: Option<&'a str>,
    in_if: Option<&'a str>,
    out_if: Option<&'a str>,
    mac: Option<&'a str>,
    proto: Option<&'a str>,
}

/// Parses a netfilter line.
pub fn parse(msg: &str, ev: &mut Event) -> Parsed {
    // The fields start at the first `KEY=` word (normally `IN=`).
    static KEYS: [Needle; 4] = [
        Needle::new("IN="),
        Needle::new("OUT="),
        Needle::new("MAC="),
        Needle::new("SRC="),
    ];
    let first_key = || {
        KEYS.iter()
            .filter_map(|k| k.find(msg))
            .min()
            .map(|p| msg[..p].rfind(' ').map_or(0, |s| s + 1))
    };
    let Some(at) = fields_start(msg).or_else(first_key) else {
        return Parsed::No;
    };
    let head = msg[..at].trim();
    // Drop the kernel's `[12345.678901]` uptime stamp before the prefix.
    let prefix = match head.strip_prefix('[').and_then(|h| h.split_once(']')) {
        Some((stamp, rest)) if stamp.trim().parse::<f64>().is_ok() => rest.trim(),
        _ => head,
    };
    let rest = &msg[at..];
    // One pass over the words (`KEY=value`, values never contain spaces): the mapped keys
    // (first value wins), every other upper-case key with a value for unmapped.netfilter
    // (LEN, TTL, ID, TOS, RES, URGP, SEQ, ACK, MARK …; the first of a repeated key, i.e.
    // the IP header's LEN), and the bare flags.
    let mut m = Mapped::default();
    let mut extra: Vec<(&str, &str)> = Vec::with_capacity(16);
    let mut flags = String::new();
    // An ICMP error quotes the packet it is about in `[…]`: that packet's addresses and
    // ports are its sender's choice, not this packet's; they are kept apart.
    // (start, end once closed) of the quoted packet in `rest`.
    let mut quoted: Option<(usize, Option<usize>)> = None;
    let base = rest.as_ptr() as usize;
    for w in split_spaces(rest) {
        let at_w = w.as_ptr() as usize - base;
        match &mut quoted {
            Some((_, end @ None)) => {
                if w.ends_with(']') {
                    *end = Some(at_w + w.len());
                }
                continue;
            }
            None if w.starts_with('[') => {
                quoted = Some((at_w, w.ends_with(']').then_some(at_w + w.len())));
                continue;
            }
            _ => {}
        }
        let Some(eq) = w.bytes().position(|c| c == b'=') else {
            if matches!(
                w,
                "SYN" | "ACK" | "FIN" | "RST" | "PSH" | "URG" | "ECE" | "CWR" | "DF"
            ) {
                if !flags.is_empty() {
                    flags.push(' ');
                }
                flags.push_str(w);
            }
            continue;
        };
        let (k, v) = (&w[..eq], &w[eq + 1..]);
        let slot = match k {
            "SRC" => &mut m.src,
            "DST" => &mut m.dst,
            "SPT" => &mut m.spt,
            "DPT" => &mut m.dpt,
            "IN" => &mut m.in_if,
            "OUT" => &mut m.out_if,
            "MAC" => &mut m.mac,
            "PROTO" => &mut m.proto,
            _ => {
                let key_like =
                    !k.is_empty() && k.bytes().all(|c| c.is_ascii_uppercase() || c == b'_');
                // `prefix` is the section's own (and `flags`, when there are any).
                if key_like
                    && !v.is_empty()
                    && (k != "PREFIX" || prefix.is_empty())
                    && !extra.iter().any(|(x, _)| *x == k)
                {
                    extra.push((k, v));
                }
                continue;
            }
        };
        if slot.is_none() {
            *slot = Some(v);
        }
    }
    let denied = ["BLOCK", "DROP", "REJECT", "DENY", "REFUSE"]
        .iter()
        .any(|w| contains_upper(prefix, w));
    let allowed = !denied
        && ["ALLOW", "ACCEPT", "AUDIT"]
            .iter()
            .any(|w| contains_upper(prefix, w));
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
    let port = |v: Option<&str>| v.and_then(|p| p.parse::<u16>().ok());
    let nonempty = |v: Option<&str>| v.filter(|v| !v.is_empty()).map(Text::from);
    let src = Endpoint {
        ip: nonempty(m.src),
        port: port(m.spt),
        interface_name: nonempty(m.in_if),
        mac: m.mac.and_then(source_mac).map(Text::from),
        ..Endpoint::default()
    };
    let dst = Endpoint {
        ip: nonempty(m.dst),
        port: port(m.dpt),
        interface_name: nonempty(m.out_if),
        ..Endpoint::default()
    };
    let missing = src.ip.is_none() || dst.ip.is_none();
    let (in_if, out_if) = (src.interface_name.is_some(), dst.interface_name.is_some());
    ev.src_endpoint = Some(src).filter(|e| e.ip.is_some() || e.interface_name.is_some());
    ev.dst_endpoint = Some(dst).filter(|e| e.ip.is_some() || e.interface_name.is_some());
    if missing {
        ev.note_parse_error("netfilter: SRC= or DST= missing");
    }
    let proto = m.proto.unwrap_or("");
    let (num, name) = [
        ("TCP", 6, "tcp"),
        ("UDP", 17, "udp"),
        ("ICMP", 1, "icmp"),
        ("ICMPV6", 58, "icmpv6"),
        ("SCTP", 132, "sctp"),
        ("GRE", 47, "gre"),
        ("ESP", 50, "esp"),
        ("AH", 51, "ah"),
    ]
    .iter()
    .find(|(upper, _, _)| proto.eq_ignore_ascii_case(upper))
    .map_or_else(|| (proto.parse().ok(), ""), |&(_, n, name)| (Some(n), name));
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
            Text::from(proto.to_ascii_lowercase())
        } else {
            Text::const_new(name)
        })
        .filter(|s| !s.is_empty()),
        direction_id: Some(dir_id),
        direction: Some(dir.into()),
        tcp_flags: None,
    }));
    // Proxmox puts its own time in the prefix:
    // `0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP:`.
    if ev.metadata.original_time.is_none() {
        let found = (0..prefix.len().saturating_sub(25))
            .filter(|&i| prefix.is_char_boundary(i) && prefix.is_char_boundary(i + 26))
            .find_map(|i| super::access::clf_time(&prefix[i..i + 26]).map(|t| (t, i)));
        if let Some(((ms, off), i)) = found {
            ev.time = ms;
            ev.timezone_offset = Some(off);
            ev.metadata.original_time = Some(prefix[i..i + 26].into());
        }
    }
    // What has no OCSF place goes under unmapped.netfilter, keys in lower case, in the
    // line's order, rendered once.
    let mut b = ObjectBuilder::with_capacity(rest.len() + prefix.len() + 48);
    if !prefix.is_empty() {
        b.str("prefix", prefix);
    }
    let mut lower = String::with_capacity(16);
    for (k, v) in extra {
        if k == "FLAGS" && !flags.is_empty() {
            continue;
        }
        lower.clear();
        lower.push_str(k);
        lower.make_ascii_lowercase();
        b.str(&lower, v);
    }
    if !flags.is_empty() {
        b.str("flags", &flags);
    }
    if let Some((open, end)) = quoted {
        let end = end.unwrap_or(rest.len());
        let inner = rest[open..end]
            .trim_start_matches('[')
            .trim_end_matches(']')
            .trim();
        b.str("quoted_packet", inner);
    }
    ev.unmapped_mut().set_section("netfilter", b.finish());
    Parsed::Yes
}

/// netfilter's `MAC=` is dst(6):src(6):ethertype(2); the source MAC is bytes 6..12
/// (the 7th to 12th `:`-separated parts, when there are at least 12).
fn source_mac(mac: &str) -> Option<&str> {
    let mut colons = mac
        .bytes()
        .enumerate()
        .filter(|&(_, c)| c == b':')
        .map(|(i, _)| i);
    let start = colons.nth(5)? + 1;
    colons.nth(4)?;
    let end = colons.next().unwrap_or(mac.len());
    Some(&mac[start..end])
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
        ip: Some(src.into()),
        port: port(ports),
        interface_name: inbound.then(|| iface.into()),
        ..Endpoint::default()
    });
    ev.dst_endpoint = Some(Endpoint {
        ip: Some(dst.into()),
        port: port(ports + 1),
        interface_name: (!inbound).then(|| iface.into()),
        ..Endpoint::default()
    });
    ev.connection_info = Some(Box::new(ConnectionInfo {
        protocol_num: proto_id.parse().ok(),
        protocol_name: Some(proto.into()),
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
