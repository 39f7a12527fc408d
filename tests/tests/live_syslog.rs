//! `vedette-agent run` with syslog listeners, over real sockets on loopback: UDP, TCP in
//! both RFC 6587 framings, TLS, the sender allowlist, an over-long record, a malformed one.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, UdpSocket};
use std::sync::Arc;

use serde_json::Value;

use crate::support::Scratch;
use crate::support::agent::RunningAgent;
use crate::support::json::get;

fn str_at<'a>(ev: &'a Value, path: &str) -> &'a str {
    get(ev, path)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{path} missing in {ev}"))
}

fn by_message<'a>(evs: &'a [Value], needle: &str) -> &'a Value {
    evs.iter()
        .find(|e| {
            get(e, "raw_data")
                .and_then(Value::as_str)
                .is_some_and(|m| m.contains(needle))
        })
        .unwrap_or_else(|| panic!("no event with {needle:?} among {} events", evs.len()))
}

fn agent_events_after_stop(scratch: &Scratch) -> usize {
    let text = std::fs::read_to_string(scratch.path("events.ndjson")).expect("output");
    text.lines().count()
}

fn tcp_send(addr: SocketAddr, bytes: &[u8]) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.write_all(bytes).expect("send");
    s.shutdown(Shutdown::Write).expect("shutdown");
    // The agent closes its side once it has read everything.
    let _ignored = s.read(&mut [0; 16]);
}

fn octet(msg: &str) -> String {
    format!("{} {msg}", msg.len())
}

/// Rsyslog and syslog-ng users configure one framing per listener and lose messages when a
/// relay switches; Vector's `syslog` source splits octet-counted frames that contain a
/// newline. Here one TCP stream carries both framings (one frame with an embedded newline),
/// UDP carries one datagram, and each event names its listener and the peer.
#[test]
fn udp_and_tcp_in_both_framings() {
    let scratch = Scratch::new("live-udp-tcp");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[agent]
hostname = "collector"
timezone = "UTC"
[[input.syslog]]
protocol = "udp"
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8"]
[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8"]
"#,
        2,
    );
    let udp = UdpSocket::bind("127.0.0.1:0").expect("udp client");
    udp.send_to(
        b"<38>Jan 15 10:00:00 web-1 sshd[42]: Failed password for root from 203.0.113.9 port 50000 ssh2",
        agent.addr("udp"),
    )
    .expect("send udp");
    // Framing is told per connection (RFC 6587 leaves it to the sender): a line-framed
    // one, and an octet-counted one (whose last message, without a count, is a line).
    tcp_send(
        agent.addr("tcp"),
        b"<38>Jan 15 10:00:01 web-2 sshd[43]: Accepted password for alice from 198.51.100.7 port 40000 ssh2\n",
    );
    let stream = [
        octet("<13>1 2026-01-15T10:00:02Z web-3 app 7 - - first line\nsecond line"),
        octet("<86>1 2026-01-15T10:00:03Z web-4 sudo 8 - -   bob : TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/id"),
        "<13>Jan 15 10:00:04 web-5 app: last, no newline".to_owned(),
    ]
    .concat();
    tcp_send(agent.addr("tcp"), stream.as_bytes());
    let evs = agent.wait_events(5);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(evs.len(), 5, "{evs:#?}");

    let failed = by_message(&evs, "Failed password");
    assert_eq!(str_at(failed, "class_name"), "Authentication");
    assert_eq!(str_at(failed, "src_endpoint.ip"), "203.0.113.9");
    assert_eq!(str_at(failed, "device.hostname"), "web-1");
    assert!(str_at(failed, "metadata.log_source").starts_with("udp://127.0.0.1:"));
    assert_eq!(str_at(failed, "metadata.loggers.0.device.ip"), "127.0.0.1");
    assert_eq!(str_at(failed, "metadata.reporter.hostname"), "collector");

    let accepted = by_message(&evs, "Accepted password");
    assert_eq!(str_at(accepted, "user.name"), "alice");
    assert!(str_at(accepted, "metadata.log_source").starts_with("tcp://127.0.0.1:"));
    let multi = by_message(&evs, "first line");
    assert_eq!(str_at(multi, "message"), "first line\nsecond line");
    assert_eq!(str_at(multi, "metadata.log_format"), "rfc5424");
    let sudo = by_message(&evs, "COMMAND=/usr/bin/id");
    assert_eq!(str_at(sudo, "class_name"), "Process Activity");
    by_message(&evs, "last, no newline");

    let mut uids: Vec<&str> = evs.iter().map(|e| str_at(e, "metadata.uid")).collect();
    uids.sort_unstable();
    uids.dedup();
    assert_eq!(uids.len(), 5, "uids must be unique");
    assert!(log.contains("5 events"), "{log}");
}

/// Peers (rsyslog's `AllowedSender`, syslog-ng's `allow`) drop refused senders silently;
/// here a refusal is counted and said, and the allowed sender still gets through.
#[test]
fn senders_outside_the_allowlist_are_refused_and_counted() {
    let scratch = Scratch::new("live-allowlist");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.2/32"]
[[input.syslog]]
protocol = "udp"
listen = "127.0.0.1:0"
allow = ["127.0.0.2"]
"#,
        2,
    );
    // From 127.0.0.1: refused (the agent closes at once, so the send may fail midway).
    if let Ok(mut s) = TcpStream::connect(agent.addr("tcp")) {
        let _ignored = s.write_all(b"<13>Jan 15 10:00:00 h app: from the wrong sender\n");
        let _ignored = s.read(&mut [0; 16]);
    }
    UdpSocket::bind("127.0.0.1:0")
        .expect("udp")
        .send_to(
            b"<13>Jan 15 10:00:00 h app: wrong udp sender",
            agent.addr("udp"),
        )
        .expect("send");
    // From 127.0.0.2: taken.
    let mut s = socket_from("127.0.0.2:0".parse().expect("addr"), agent.addr("tcp"));
    s.write_all(b"<13>Jan 15 10:00:01 h app: from the allowed sender\n")
        .expect("send");
    drop(s);
    UdpSocket::bind("127.0.0.2:0")
        .expect("udp from 127.0.0.2")
        .send_to(
            b"<13>Jan 15 10:00:01 h app: allowed udp sender",
            agent.addr("udp"),
        )
        .expect("send");
    let evs = agent.wait_events(2);
    agent.wait_log("refused datagram from 127.0.0.1");
    agent.wait_log("refused connection from 127.0.0.1");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(agent_events_after_stop(&scratch), 2);
    by_message(&evs, "from the allowed sender");
    by_message(&evs, "allowed udp sender");
    assert!(
        !evs.iter().any(|e| str_at(e, "raw_data").contains("wrong")),
        "a refused sender's message was written"
    );
    assert!(log.contains("1 refused (allowlist)"), "{log}");
}

/// A TCP connection from `local` (std cannot bind a client socket before connecting).
fn socket_from(local: SocketAddr, to: SocketAddr) -> TcpStream {
    let s =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    s.bind(&local.into()).expect("bind the client address");
    s.connect(&to.into()).expect("connect");
    s.into()
}

/// A TLS listener section with [`test_pki`]'s server certificate, then `extra` lines.
fn tls_listener(scratch: &Scratch, extra: &str) -> String {
    format!(
        "[[input.syslog]]\nprotocol = \"tls\"\nlisten = \"127.0.0.1:0\"\nallow = [\"127.0.0.1\"]\ntls_cert = \"{}\"\ntls_key = \"{}\"\n{extra}",
        scratch.path("server.crt").display(),
        scratch.path("server.key").display()
    )
}

/// Test PKI: a CA and a server certificate for `localhost` signed by it, as PEM files in
/// `scratch`; returns the CA certificate (DER) for the client to trust.
fn test_pki(scratch: &Scratch) -> rustls::pki_types::CertificateDer<'static> {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "Vedette test CA");
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("server key");
    let params = CertificateParams::new(vec!["localhost".to_owned()]).expect("server params");
    let cert = params.signed_by(&key, &issuer).expect("server cert");
    scratch.write("server.crt", cert.pem().as_bytes());
    scratch.write("server.key", key.serialize_pem().as_bytes());
    ca_cert.der().clone()
}

/// RFC 5425 over TLS 1.3 with a CA-signed certificate: messages arrive, framed by octet
/// counting as the RFC requires; a client that does not speak TLS is counted as a failed
/// handshake and writes nothing.
#[test]
fn tls_listener_takes_rfc5425_frames() {
    let scratch = Scratch::new("live-tls");
    let ca = test_pki(&scratch);
    let mut agent = RunningAgent::start(&scratch, &tls_listener(&scratch, ""), 1);
    let addr = agent.addr("tls");
    // Plain TCP at a TLS port: refused by the handshake.
    tcp_send(
        addr,
        b"<13>Jan 15 10:00:00 h app: plaintext at a TLS port\n",
    );

    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("trust the test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let sock = TcpStream::connect(addr).expect("connect");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    let frames = [
        octet("<34>1 2026-01-15T10:00:00.123Z fw-1 sshd 99 - - Invalid user admin from 192.0.2.50 port 4711"),
        octet("<13>1 2026-01-15T10:00:01Z fw-1 app - - [origin ip=\"192.0.2.1\"] over TLS"),
    ]
    .concat();
    tls.write_all(frames.as_bytes()).expect("send over TLS");
    tls.flush().expect("flush");
    tls.conn.send_close_notify();
    let _ignored = tls.flush();
    let evs = agent.wait_events(2);
    agent.wait_log("TLS handshake with 127.0.0.1");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(
        agent_events_after_stop(&scratch),
        2,
        "the plaintext client wrote nothing"
    );
    let invalid = by_message(&evs, "Invalid user admin");
    assert_eq!(str_at(invalid, "class_name"), "Authentication");
    assert_eq!(str_at(invalid, "src_endpoint.ip"), "192.0.2.50");
    assert!(str_at(invalid, "metadata.log_source").starts_with("tls://127.0.0.1:"));
    let sd = by_message(&evs, "over TLS");
    assert_eq!(
        str_at(sd, "unmapped.syslog.structured_data.origin.ip"),
        "192.0.2.1"
    );
    assert!(log.contains("1 TLS failures"), "{log}");
}

/// A 1 MiB message over TCP: cut at the record cap and flagged with its full size, never
/// dropped, and the stream goes on with the next message intact. (rsyslog's default
/// `maxMessageSize` of 8 KiB splits such a line into bogus messages.)
#[test]
fn a_one_mib_message_is_cut_and_flagged_and_the_next_is_intact() {
    let scratch = Scratch::new("live-big");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
"#,
        1,
    );
    let big = format!("<13>Jan 15 10:00:00 h app: {}", "z".repeat(1 << 20));
    let stream =
        format!("{big}\n<13>Jan 15 10:00:01 h app: after the big one\n<999>not syslog at all\n");
    tcp_send(agent.addr("tcp"), stream.as_bytes());
    let evs = agent.wait_events(3);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let cut = by_message(&evs, "zzzz");
    assert_eq!(get(cut, "metadata.is_truncated"), Some(&Value::Bool(true)));
    assert_eq!(
        get(cut, "metadata.untruncated_size").and_then(Value::as_u64),
        Some(big.len() as u64)
    );
    assert_eq!(str_at(cut, "raw_data").len(), 64 * 1024);
    by_message(&evs, "after the big one");
    // Malformed: kept as an event with the raw line and the reason.
    let bad = by_message(&evs, "not syslog at all");
    assert!(get(bad, "unmapped.vedette.parse_error").is_some(), "{bad}");
}

/// SIGHUP: a listener whose config stayed keeps its socket (nothing sent meanwhile is
/// lost), a new one starts, and a broken config is refused while the running one stays.
#[test]
fn sighup_reloads_and_a_broken_config_is_refused() {
    let scratch = Scratch::new("live-reload");
    let tcp = r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
"#;
    let mut agent = RunningAgent::start(&scratch, tcp, 1);
    let first = agent.addr("tcp");
    let output = agent.output_section();
    let udp = r#"[[input.syslog]]
protocol = "udp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
"#;
    agent.rewrite_config(&format!("{tcp}{udp}{output}"));
    agent.signal("HUP");
    agent.wait_log("config reloaded");
    let udp_line = agent.wait_log("listening on udp://");
    let udp_addr: SocketAddr = udp_line
        .rsplit("udp://")
        .next()
        .and_then(|a| a.parse().ok())
        .expect("udp address");
    tcp_send(first, b"<13>Jan 15 10:00:00 h app: tcp after reload\n");
    UdpSocket::bind("127.0.0.1:0")
        .expect("udp")
        .send_to(b"<13>Jan 15 10:00:00 h app: udp after reload", udp_addr)
        .expect("send");
    agent.wait_events(2);

    agent.rewrite_config(&format!("{tcp}[agent]\nmax_line_bytes = 1\n{output}"));
    agent.signal("HUP");
    agent.wait_log("reload refused");
    // The problem, located, on the lines that follow.
    let problem = agent.wait_log("agent.max_line_bytes");
    assert!(problem.contains("agent.toml:"), "{problem}");
    tcp_send(first, b"<13>Jan 15 10:00:00 h app: still running\n");
    let evs = agent.wait_events(3);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    by_message(&evs, "tcp after reload");
    by_message(&evs, "udp after reload");
    by_message(&evs, "still running");
    // The summary counts the listener the reload started too (only the first start's
    // were counted, in it and in the heartbeats' kernel drops).
    assert!(
        log.contains(&format!("udp://{udp_addr}: 1 messages")),
        "{log}"
    );
}

/// An IPv4 sender reaching a dual-stack listener (`[::]`, where a host listens for both
/// families) was recorded as `::ffff:127.0.0.1`: the same host under two addresses, and a
/// search for its IPv4 address missed these events.
#[test]
fn an_ipv4_sender_on_a_dual_stack_listener_is_recorded_by_its_ipv4_address() {
    let scratch = Scratch::new("live-dual-stack");
    let mut agent = RunningAgent::start(
        &scratch,
        "[[input.syslog]]\nprotocol = \"udp\"\nlisten = \"[::]:0\"\nallow = [\"127.0.0.1\"]\n\
         [[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"[::]:0\"\nallow = [\"127.0.0.1\"]\n",
        2,
    );
    let v4 = |a: SocketAddr| SocketAddr::new("127.0.0.1".parse().unwrap(), a.port());
    UdpSocket::bind("127.0.0.1:0")
        .expect("udp")
        .send_to(
            b"<13>Jan 15 10:00:00 h app: over udp",
            v4(agent.addr("udp")),
        )
        .expect("send");
    tcp_send(
        v4(agent.addr("tcp")),
        b"<13>Jan 15 10:00:00 h app: over tcp\n",
    );
    let evs = agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    for m in ["over udp", "over tcp"] {
        let ev = by_message(&evs, m);
        assert_eq!(
            str_at(ev, "metadata.loggers.0.device.ip"),
            "127.0.0.1",
            "{ev}"
        );
    }
}

/// A stop while a sender is in the middle of a line (no LF yet, the connection still
/// open): what arrived was written as a complete message, nothing telling it from one. It
/// is kept, flagged as truncated with the reason (its length unknown); a line the sender
/// ended by closing stays a whole message.
#[test]
fn a_line_cut_off_by_a_stop_is_kept_and_flagged() {
    let scratch = Scratch::new("live-stop-mid-line");
    let mut agent = RunningAgent::start(
        &scratch,
        "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nallow = [\"127.0.0.1\"]\n",
        1,
    );
    tcp_send(
        agent.addr("tcp"),
        b"<13>Jan 15 10:00:00 h app: closed without a newline",
    );
    let mut open = TcpStream::connect(agent.addr("tcp")).expect("connect");
    open.write_all(b"<13>Jan 15 10:00:00 h app: whole\n<13>Jan 15 10:00:00 h app: half of a li")
        .expect("send");
    agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    drop(open);
    let text = std::fs::read_to_string(scratch.path("events.ndjson")).expect("output");
    let evs = crate::support::parse_ndjson(&text);
    assert_eq!(evs.len(), 3, "{text}");
    for whole in ["closed without a newline", "whole"] {
        let ev = by_message(&evs, whole);
        assert_eq!(get(ev, "metadata.is_truncated"), None, "{ev}");
    }
    let half = by_message(&evs, "half of a li");
    assert_eq!(
        get(half, "metadata.is_truncated"),
        Some(&Value::Bool(true)),
        "{half}"
    );
    assert_eq!(get(half, "metadata.untruncated_size"), None, "{half}");
    assert!(
        str_at(half, "unmapped.vedette.parse_error").contains("closed before this message ended"),
        "{half}"
    );
}

/// A stream cut rather than closed: TLS without close_notify (an attacker on the path can
/// cut a TLS stream at any record; RFC 8446 6.1 makes the alert what tells a close from a
/// cut) or a TCP reset. A message left unfinished by it is kept and flagged incomplete, as
/// one left by a stop is; the whole messages before it are not, and a TLS sender that
/// closes properly ends its last line whole.
#[test]
fn a_message_left_unfinished_by_a_cut_stream_is_flagged() {
    let scratch = Scratch::new("live-cut");
    let ca = test_pki(&scratch);
    let mut agent = RunningAgent::start(
        &scratch,
        &tls_listener(
            &scratch,
            r#"
[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
"#,
        ),
        2,
    );
    let (tls_addr, tcp_addr) = (agent.addr("tls"), agent.addr("tcp"));

    let mut closed = tls_client(tls_addr, ca.clone());
    closed
        .write_all(b"<13>Jan 15 10:00:00 h app: tls closed with its alert")
        .expect("send");
    closed.conn.send_close_notify();
    closed.flush().expect("flush");
    closed
        .sock
        .shutdown(std::net::Shutdown::Both)
        .expect("close");

    let mut cut = tls_client(tls_addr, ca);
    cut.write_all(
        b"<13>Jan 15 10:00:00 h app: tls whole\n<13>Jan 15 10:00:00 h app: tls cut mid-li",
    )
    .expect("send");
    cut.flush().expect("flush");
    cut.sock.shutdown(std::net::Shutdown::Both).expect("cut");

    let reset = socket2::Socket::from(TcpStream::connect(tcp_addr).expect("connect"));
    (&reset)
        .write_all(
            b"<13>Jan 15 10:00:00 h app: tcp whole\n<13>Jan 15 10:00:00 h app: tcp reset mid-li",
        )
        .expect("send");
    // Linger 0: the close is a reset.
    reset
        .set_linger(Some(std::time::Duration::ZERO))
        .expect("linger");
    drop(reset);

    let evs = agent.wait_events(5);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    for whole in ["tls closed with its alert", "tls whole", "tcp whole"] {
        let ev = by_message(&evs, whole);
        assert_eq!(get(ev, "metadata.is_truncated"), None, "{ev}");
    }
    for unfinished in ["tls cut mid-li", "tcp reset mid-li"] {
        let ev = by_message(&evs, unfinished);
        assert_eq!(
            get(ev, "metadata.is_truncated"),
            Some(&Value::Bool(true)),
            "{ev}"
        );
        assert!(
            str_at(ev, "unmapped.vedette.parse_error").contains("closed before this message ended"),
            "{ev}"
        );
    }
}

/// A UDP receive buffer larger than the kernel allows (`net.core.rmem_max`) was capped in
/// silence: sized for a burst, the listener dropped part of it. The agent says so.
#[test]
fn a_receive_buffer_the_kernel_caps_is_reported() {
    let max: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_max")
        .expect("rmem_max")
        .trim()
        .parse()
        .expect("a number");
    let scratch = Scratch::new("live-rcvbuf");
    let mut agent = RunningAgent::start(
        &scratch,
        &format!(
            "[[input.syslog]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:0\"\nallow = [\"127.0.0.1\"]\nreceive_buffer_bytes = {}\n",
            max + 4096
        ),
        1,
    );
    // Just over the cap (the kernel reports twice what it keeps, which hid a cap of up
    // to half).
    let line = agent.wait_log("receive buffer is");
    assert!(
        line.contains(&format!(
            "is {max} bytes, not the {} configured",
            max + 4096
        )),
        "{line}"
    );
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
}

/// A port nothing listens on now (bound, then let go).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A reload whose new inputs do not all start (a port taken) put nothing back: the
/// listeners it had stopped stayed closed, and the agent ran on without them, having said
/// only "reload: Address already in use". Now the previous inputs run again, and what the
/// failed reload started is stopped. And a listener a reload restarts counts its records
/// from 1 again: its records took the uids of the ones before the restart (same source,
/// same counter, and for the same message the same content hash), so a store dropped them
/// as already stored.
#[test]
fn a_reload_that_cannot_start_puts_the_inputs_back_and_a_restart_keeps_uids_apart() {
    let scratch = Scratch::new("live-reload-back");
    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    // Folding off: the same message twice is two events.
    let a = |allow: &str| {
        format!(
            "[[input.syslog]]\nprotocol = \"udp\"\nlisten = \"127.0.0.1:{port}\"\nallow = [\"{allow}\"]\n"
        )
    };
    let dedup_off = "[dedup]\nenabled = false\n";
    let mut agent = RunningAgent::start(&scratch, &format!("{dedup_off}{}", a("127.0.0.1")), 1);
    let output = agent.output_section();
    let send_from = |from: &str, msg: &[u8]| {
        UdpSocket::bind(format!("{from}:0"))
            .expect("udp")
            .send_to(msg, format!("127.0.0.1:{port}"))
            .expect("send");
    };
    let same = b"<13>Jan 15 10:00:00 h app: the same message";
    send_from("127.0.0.1", same);
    agent.wait_events(1);
    // Restarted by a changed allowlist: the same message again is another record.
    agent.rewrite_config(&format!("{dedup_off}{}{output}", a("127.0.0.0/8")));
    agent.signal("HUP");
    agent.wait_log("config reloaded");
    send_from("127.0.0.1", same);
    let evs = agent.wait_events(2);
    let uids: Vec<&str> = evs.iter().map(|e| str_at(e, "metadata.uid")).collect();
    assert_ne!(uids[0], uids[1], "a restarted listener reused its uids");

    // The first listener changed (127.0.0.1 only), then a new one on a port held
    // elsewhere: the first starts, the second does not, and the reload is undone. The
    // listener serves again as it ran, taking 127.0.0.2, which the new one refused.
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let b = format!(
        "[[input.syslog]]\nprotocol = \"udp\"\nlisten = \"{}\"\nallow = [\"127.0.0.1\"]\n",
        taken.local_addr().unwrap()
    );
    agent.rewrite_config(&format!("{dedup_off}{}{b}{output}", a("127.0.0.1")));
    agent.signal("HUP");
    let refused = agent.wait_log("reload refused");
    assert!(refused.contains("previous ones run again"), "{refused}");
    send_from(
        "127.0.0.2",
        b"<13>Jan 15 10:00:00 h app: after the refused reload",
    );
    let evs = agent.wait_events(3);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    by_message(&evs, "after the refused reload");
    drop(taken);
}

/// `[agent] max_line_bytes` changed by a reload reached only the inputs the reload
/// started: a listener it kept went on cutting at the old length (and the log said
/// "config reloaded"). An input is now restarted when an `[agent]` setting it uses changes.
#[test]
fn a_reloaded_line_limit_reaches_the_listeners_that_run() {
    let scratch = Scratch::new("live-reload-limit");
    let port = free_port();
    let tcp = format!(
        "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:{port}\"\nallow = [\"127.0.0.1\"]\n"
    );
    let mut agent = RunningAgent::start(
        &scratch,
        &format!("[agent]\nmax_line_bytes = 300\n{tcp}"),
        1,
    );
    let output = agent.output_section();
    // Raised to the default (64 KiB).
    agent.rewrite_config(&format!("{tcp}{output}"));
    agent.signal("HUP");
    agent.wait_log("config reloaded");
    let long = format!("<13>Jan 15 10:00:00 h app: long {}", "x".repeat(1000));
    tcp_send(
        format!("127.0.0.1:{port}").parse().unwrap(),
        format!("{long}\n").as_bytes(),
    );
    let evs = agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert_eq!(get(&evs[0], "metadata.is_truncated"), None, "{}", evs[0]);
    assert_eq!(str_at(&evs[0], "raw_data"), long);
}

/// Redaction turned on by a reload hashed secrets with an empty key (the key was made
/// only when redaction was on at start): a keyed hash anyone could recompute, so every
/// redacted password was open to an offline guess. The reload now loads or makes the key.
#[test]
fn redaction_turned_on_by_a_reload_hashes_with_the_agents_key() {
    let scratch = Scratch::new("live-reload-redact");
    let tcp =
        "[[input.syslog]]\nprotocol = \"tcp\"\nlisten = \"127.0.0.1:0\"\nallow = [\"127.0.0.1\"]\n";
    let mut agent =
        RunningAgent::start(&scratch, &format!("[redaction]\nenabled = false\n{tcp}"), 1);
    let output = agent.output_section();
    agent.rewrite_config(&format!("{tcp}{output}"));
    agent.signal("HUP");
    agent.wait_log("config reloaded");
    let line = "<38>Jan 15 10:00:00 web-1 sshd[1]: Invalid user P@ssw0rd!2024 from 203.0.113.9 port 4242\n";
    tcp_send(agent.addr("tcp"), line.as_bytes());
    let evs = agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let live = str_at(&evs[0], "user.name").to_owned();
    assert!(live.starts_with("redacted:"), "{live}");
    // The same line through `normalize --fold` with the agent's state dir (its key):
    // the same hash.
    let state = scratch.path("agent.state");
    let cfg = scratch.write(
        "fold.toml",
        format!("[agent]\nstate_dir = \"{}\"\n", state.display()).as_bytes(),
    );
    let input = scratch.write("auth.log", line.as_bytes());
    let cfg_s = cfg.display().to_string();
    let folded = crate::support::normalize_with(&["--fold", "--config", &cfg_s], &[&input]);
    assert_eq!(str_at(&folded[0], "user.name"), live);
}

/// Edge folding in `run` (on by default): a burst of one behaviour becomes its first
/// sighting, written at once, and a summary with the exact count; SIGTERM flushes the open
/// window rather than losing it.
#[test]
fn a_burst_is_folded_and_the_summary_survives_shutdown() {
    let scratch = Scratch::new("live-fold");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[dedup]
window_seconds = 3600
[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
"#,
        1,
    );
    let line = "<38>Jan 15 10:00:00 web-1 sshd[42]: Failed password for root from 203.0.113.9 port 50000 ssh2\n";
    tcp_send(agent.addr("tcp"), line.repeat(50).as_bytes());
    // The first sighting is not held back by the window.
    let first = agent.wait_events(1);
    assert_eq!(first.len(), 1);
    assert!(get(&first[0], "count").is_none());
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let text = std::fs::read_to_string(scratch.path("events.ndjson")).expect("output");
    let evs = crate::support::parse_ndjson(&text);
    assert_eq!(evs.len(), 2, "{log}");
    assert_eq!(get(&evs[1], "count").and_then(Value::as_u64), Some(49));
    assert!(log.contains("dedup: 50 in, 2 out"), "{log}");
}

/// A client for the TLS listener of `addr`, trusting `ca`.
fn tls_client(
    addr: SocketAddr,
    ca: rustls::pki_types::CertificateDer<'static>,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).expect("trust the test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    rustls::StreamOwned::new(conn, TcpStream::connect(addr).expect("connect"))
}

/// Whether the agent closed `s` (EOF or reset) rather than leaving it open.
fn closed_by_agent(s: &mut TcpStream) -> bool {
    s.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    match s.read(&mut [0; 16]) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => !matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
    }
}

/// Without a bound, a sender opening connections in a loop takes the agent's memory (each
/// holds read buffers): rsyslog's imtcp has `MaxSessions`, syslog-ng `max-connections`.
/// Here one over `max_connections` is closed at once and counted, what it sent is not
/// taken, and a place freed by a sender that leaves is served again.
#[test]
fn a_listener_serves_at_most_max_connections() {
    let scratch = Scratch::new("live-max-conn");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
max_connections = 2
"#,
        1,
    );
    let addr = agent.addr("tcp");
    let mut held = Vec::new();
    for tag in ["held-a", "held-b"] {
        let mut s = TcpStream::connect(addr).expect("connect");
        s.write_all(format!("<13>Jan 15 10:00:00 h app: {tag}\n").as_bytes())
            .expect("send");
        held.push(s);
    }
    agent.wait_events(2);
    let mut over = TcpStream::connect(addr).expect("connect");
    let _ignored = over.write_all(b"<13>Jan 15 10:00:00 h app: over-limit\n");
    assert!(closed_by_agent(&mut over), "the third connection is closed");
    agent.wait_log("max_connections");

    // A sender leaves: its place is served again once the agent has seen it go.
    drop(held.remove(0));
    let mut served = false;
    for attempt in 0..500 {
        let mut s = TcpStream::connect(addr).expect("connect");
        let _ignored =
            s.write_all(format!("<13>Jan 15 10:00:00 h app: later-{attempt}\n").as_bytes());
        let _ignored = s.shutdown(Shutdown::Write);
        let _ignored = closed_by_agent(&mut s);
        if agent
            .events()
            .iter()
            .any(|e| str_at(e, "raw_data").contains("later-"))
        {
            served = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert!(served, "a freed place is served again");
    drop(held);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let text = std::fs::read_to_string(scratch.path("events.ndjson")).expect("output");
    assert!(text.contains("held-a") && text.contains("held-b"), "{text}");
    assert!(
        !text.contains("over-limit"),
        "a closed connection's line was taken"
    );
    assert!(
        !log.contains(" 0 closed (max_connections)"),
        "the closed connections are counted: {log}"
    );
}

/// One allowed sender (a misconfigured relay reconnecting in a loop, a compromised host)
/// could hold every place of a listener, each connection speaking often enough never to be
/// the silent one: every other sender was turned away. A sender holds at most
/// `max_connections_per_sender`; one more is closed at once and counted, while another
/// sender is still served. A sender at its share that has a connection silent for
/// `evict_idle_ms` (one it lost without a close) gets that one closed for its new one, and
/// no other sender's.
#[test]
fn one_sender_cannot_hold_every_place() {
    let scratch = Scratch::new("live-per-sender");
    let quick_port = free_port();
    let mut agent = RunningAgent::start(
        &scratch,
        &format!(
            r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.0/8"]
max_connections = 4
max_connections_per_sender = 2
evict_idle_ms = 600000

[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:{quick_port}"
allow = ["127.0.0.0/8"]
max_connections = 4
max_connections_per_sender = 2
evict_idle_ms = 300
"#
        ),
        2,
    );
    let steady = *agent.listening["tcp"]
        .iter()
        .find(|a| a.port() != quick_port)
        .expect("the first listener");
    let quick = SocketAddr::from(([127, 0, 0, 1], quick_port));
    let (a, b): (SocketAddr, SocketAddr) = (
        "127.0.0.2:0".parse().unwrap(),
        "127.0.0.3:0".parse().unwrap(),
    );
    let send = |s: &mut TcpStream, tag: &str| {
        s.write_all(format!("<13>Jan 15 10:00:00 h app: {tag}\n").as_bytes())
            .expect("send");
    };

    // Sender a takes its two places; its third and fourth connections are closed.
    let mut held = Vec::new();
    for tag in ["a-1", "a-2"] {
        let mut s = socket_from(a, steady);
        send(&mut s, tag);
        held.push(s);
    }
    agent.wait_events(2);
    for tag in ["a-3", "a-4"] {
        let mut s = socket_from(a, steady);
        let _ignored = s.write_all(format!("<13>Jan 15 10:00:00 h app: {tag}\n").as_bytes());
        assert!(
            closed_by_agent(&mut s),
            "{tag}: the sender's share is taken"
        );
    }
    // Sender b is still served.
    let mut from_b = socket_from(b, steady);
    send(&mut from_b, "b-1");
    agent.wait_events(3);
    agent.wait_log("max_connections_per_sender");

    // On the quick listener: b's connection, then a's two, all silent past evict_idle_ms;
    // then a speaks on one, and a third of a's closes a's silent one, not b's (silent
    // longer).
    let mut quick_b = socket_from(b, quick);
    send(&mut quick_b, "quick-b-1");
    let mut quick_a1 = socket_from(a, quick);
    send(&mut quick_a1, "quick-a-1");
    let mut quick_a2 = socket_from(a, quick);
    send(&mut quick_a2, "quick-a-2");
    agent.wait_events(6);
    std::thread::sleep(std::time::Duration::from_millis(400));
    send(&mut quick_a2, "quick-a-2-again");
    agent.wait_events(7);
    let mut quick_a3 = socket_from(a, quick);
    send(&mut quick_a3, "quick-a-3");
    assert!(
        closed_by_agent(&mut quick_a1),
        "a's silent connection was closed"
    );
    send(&mut quick_b, "quick-b-2");
    send(&mut quick_a2, "quick-a-2-third");
    let evs = agent.wait_events(10);
    drop((held, from_b, quick_b, quick_a2, quick_a3));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    for tag in [
        "a-1",
        "a-2",
        "b-1",
        "quick-b-1",
        "quick-a-1",
        "quick-a-2",
        "quick-a-2-again",
        "quick-a-3",
        "quick-b-2",
        "quick-a-2-third",
    ] {
        assert!(
            evs.iter().any(|e| str_at(e, "message") == tag),
            "{tag} missing"
        );
    }
    let text = std::fs::read_to_string(scratch.path("events.ndjson")).expect("output");
    let all = crate::support::parse_ndjson(&text);
    assert!(
        !all.iter()
            .any(|e| ["a-3", "a-4"].contains(&str_at(e, "message"))),
        "a closed connection's line was taken: {text}"
    );
    assert!(
        log.contains(" 2 closed (max_connections_per_sender)"),
        "the closed connections are counted: {log}"
    );
    assert!(log.contains("to make room for 127.0.0.2:"), "{log}");
}

/// A sender that vanished without a close (powered off, a cut link, a NAT that forgot the
/// flow), or a client that connects only to hold a place, kept its connection for ever:
/// once `max_connections` were held so, every new sender was turned away. Now the kernel
/// probes a silent sender (TCP keepalive after `keepalive_s`), and a full listener closes
/// the connection silent longest (at least `evict_idle_ms`) to serve a new one.
#[test]
fn a_full_listener_closes_its_longest_silent_connection_for_a_new_one() {
    let scratch = Scratch::new("live-evict");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
max_connections = 2
evict_idle_ms = 300
keepalive_s = 7
"#,
        1,
    );
    let addr = agent.addr("tcp");
    let mut a = TcpStream::connect(addr).expect("connect");
    a.write_all(b"<13>Jan 15 10:00:00 h app: from-a\n")
        .expect("send");
    let mut b = TcpStream::connect(addr).expect("connect");
    b.write_all(b"<13>Jan 15 10:00:00 h app: from-b-1\n")
        .expect("send");
    agent.wait_events(2);

    // The agent's side of each connection has the keepalive timer the config asks for.
    let ss = std::process::Command::new("ss")
        .args(["-tnoH", "state", "established"])
        .arg(format!("( sport = :{} )", addr.port()))
        .output()
        .expect("ss(8) (iproute2)");
    let ss = String::from_utf8_lossy(&ss.stdout);
    let timers: Vec<f64> = ss
        .lines()
        .filter_map(|l| l.split("timer:(keepalive,").nth(1))
        .filter_map(|t| {
            // "6.980sec", or "6.980ms" as some kernels print it; the system default
            // (7200 s) would read "120min".
            let n = t.split(|c: char| !c.is_ascii_digit() && c != '.').next()?;
            n.parse().ok()
        })
        .collect();
    assert_eq!(timers.len(), 2, "{ss}");
    assert!(timers.iter().all(|&t| t <= 7.0), "{ss}");

    // Both stay silent past evict_idle_ms; then b speaks again, a does not.
    std::thread::sleep(std::time::Duration::from_millis(400));
    b.write_all(b"<13>Jan 15 10:00:00 h app: from-b-2\n")
        .expect("send");
    agent.wait_events(3);
    let mut c = TcpStream::connect(addr).expect("connect");
    c.write_all(b"<13>Jan 15 10:00:00 h app: from-c\n")
        .expect("send");
    assert!(closed_by_agent(&mut a), "the silent connection was closed");
    agent.wait_events(4);
    agent.wait_log("silent for");
    // b was not: it is still read.
    b.write_all(b"<13>Jan 15 10:00:00 h app: from-b-3\n")
        .expect("send");
    let evs = agent.wait_events(5);
    for tag in ["from-a", "from-b-1", "from-b-2", "from-c", "from-b-3"] {
        by_message(&evs, tag);
    }
    drop((b, c));
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(
        log.contains("1 silent ones closed for new ones")
            && log.contains(" 0 closed (max_connections)"),
        "{log}"
    );
}

/// A TLS client that connects and never finishes its handshake held its connection, and a
/// place under `max_connections`, for ever (a slow-loris on the listener): it is closed
/// after `handshake_timeout_ms`, counted as a TLS failure, and its place is free again.
#[test]
fn a_tls_handshake_that_never_finishes_is_closed() {
    let scratch = Scratch::new("live-tls-timeout");
    let ca = test_pki(&scratch);
    let mut agent = RunningAgent::start(
        &scratch,
        &tls_listener(
            &scratch,
            r#"max_connections = 1
handshake_timeout_ms = 100
"#,
        ),
        1,
    );
    let addr = agent.addr("tls");
    let mut silent = TcpStream::connect(addr).expect("connect");
    assert!(
        closed_by_agent(&mut silent),
        "a silent client is closed after the handshake timeout"
    );
    agent.wait_log("not finished after 100 ms");
    let mut tls = tls_client(addr, ca);
    tls.write_all(octet("<13>1 2026-01-15T10:00:01Z h app - - - after the silent one").as_bytes())
        .expect("send over TLS");
    tls.flush().expect("flush");
    tls.conn.send_close_notify();
    let _ignored = tls.flush();
    agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("1 TLS failures"), "{log}");
}

/// Connections stalled in their TLS handshakes could not be closed to make room: opened
/// one per `handshake_timeout_ms`, they kept a full listener's places and shut every
/// sender out. A handshake that has not finished is now the first a full listener closes.
#[test]
fn a_full_listener_closes_a_stalled_handshake_for_a_sender() {
    let scratch = Scratch::new("live-tls-evict");
    let ca = test_pki(&scratch);
    let mut agent = RunningAgent::start(
        &scratch,
        &tls_listener(
            &scratch,
            r#"max_connections = 2
handshake_timeout_ms = 600000
evict_idle_ms = 600000
"#,
        ),
        1,
    );
    let addr = agent.addr("tls");
    let stalled: Vec<TcpStream> = (0..2)
        .map(|_| TcpStream::connect(addr).expect("connect"))
        .collect();
    // A handshake younger than the grace (1 s) is left to finish.
    std::thread::sleep(std::time::Duration::from_millis(1_200));
    let mut tls = tls_client(addr, ca);
    tls.write_all(octet("<13>1 2026-01-15T10:00:01Z h app - - - past the stalled ones").as_bytes())
        .expect("send over TLS");
    tls.flush().expect("flush");
    tls.conn.send_close_notify();
    let _ignored = tls.flush();
    agent.wait_events(1);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    assert!(log.contains("still in its TLS handshake"), "{log}");
    drop(stalled);
}

/// A CA that signs client certificates: `(its certificate, an issuer to sign with)`.
fn client_ca(name: &str) -> (rcgen::Certificate, rcgen::Issuer<'static, rcgen::KeyPair>) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let key = KeyPair::generate().expect("CA key");
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, name);
    let cert = params.self_signed(&key).expect("CA cert");
    (cert, Issuer::new(params, key))
}

/// A client certificate for `dns` (subject alternative names) or, when `dns` is empty,
/// with `cn` as its only name; returns the chain and key for rustls.
fn client_cert(
    issuer: &rcgen::Issuer<'static, rcgen::KeyPair>,
    dns: &[&str],
    cn: &str,
) -> (
    Vec<rustls::pki_types::CertificateDer<'static>>,
    rustls::pki_types::PrivateKeyDer<'static>,
) {
    use rcgen::{CertificateParams, DnType, ExtendedKeyUsagePurpose, KeyPair};
    let key = KeyPair::generate().expect("client key");
    let mut params =
        CertificateParams::new(dns.iter().map(|d| (*d).to_owned()).collect::<Vec<_>>())
            .expect("client params");
    params.distinguished_name.push(DnType::CommonName, cn);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    let cert = params.signed_by(&key, issuer).expect("client cert");
    let der = rustls::pki_types::PrivatePkcs8KeyDer::from(key.serialize_der());
    (vec![cert.der().clone()], der.into())
}

/// Sends one RFC 5425 frame as a client showing `identity` (or no certificate), then
/// reads until the agent closes: a refused client learns of it only after its first write
/// in TLS 1.3, and must not be left waiting either way.
fn send_as(
    addr: SocketAddr,
    server_ca: &rustls::pki_types::CertificateDer<'static>,
    identity: Option<(
        Vec<rustls::pki_types::CertificateDer<'static>>,
        rustls::pki_types::PrivateKeyDer<'static>,
    )>,
    msg: &str,
) {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(server_ca.clone()).expect("trust the test CA");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots);
    let cfg = match identity {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .expect("client identity"),
        None => builder.with_no_client_auth(),
    };
    let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
    let conn = rustls::ClientConnection::new(Arc::new(cfg), name).expect("client");
    let sock = TcpStream::connect(addr).expect("connect");
    sock.set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .expect("timeout");
    let mut tls = rustls::StreamOwned::new(conn, sock);
    // A refused handshake may fail the write already.
    if tls.write_all(octet(msg).as_bytes()).is_ok() && tls.flush().is_ok() {
        tls.conn.send_close_notify();
        let _ignored = tls.flush();
    }
    let mut rest = Vec::new();
    let _closed = tls.read_to_end(&mut rest);
}

/// Mutual TLS (RFC 5425 §5, rsyslog's `PermittedPeer`, syslog-ng's `peer-verify`): a TLS
/// listener with `tls_client_ca` takes only senders whose certificate that CA signed, and
/// with `tls_client_names` only those named (DNS names, or the common name of a
/// certificate without any). Without a certificate, with one of another CA, or with an
/// unlisted name, a sender writes nothing and is counted as a TLS failure.
#[test]
fn a_tls_listener_with_a_client_ca_takes_only_its_named_senders() {
    let scratch = Scratch::new("live-mtls");
    let server_ca = test_pki(&scratch);
    let (ca, ours) = client_ca("Vedette test client CA");
    scratch.write("clients.crt", ca.pem().as_bytes());
    let (_, theirs) = client_ca("Someone else's CA");
    let mut agent = RunningAgent::start(
        &scratch,
        &tls_listener(
            &scratch,
            &format!(
                r#"tls_client_ca = "{}"
tls_client_names = ["*.hosts.example.com", "collector.example.com"]
"#,
                scratch.path("clients.crt").display()
            ),
        ),
        1,
    );
    let addr = agent.addr("tls");
    let frame = |who: &str| format!("<13>1 2026-01-15T10:00:01Z h app - - - sent by {who}");
    send_as(addr, &server_ca, None, &frame("no certificate"));
    send_as(
        addr,
        &server_ca,
        Some(client_cert(&theirs, &["relay-2.hosts.example.com"], "x")),
        &frame("another CA"),
    );
    send_as(
        addr,
        &server_ca,
        Some(client_cert(
            &ours,
            &["laptop.example.com"],
            "relay-9.hosts.example.com",
        )),
        &frame("an unlisted name"),
    );
    send_as(
        addr,
        &server_ca,
        Some(client_cert(&ours, &["a.b.hosts.example.com"], "x")),
        &frame("two labels under the wildcard"),
    );
    agent.wait_log("[\"a.b.hosts.example.com\"] are not in tls_client_names");
    send_as(
        addr,
        &server_ca,
        Some(client_cert(&ours, &["RELAY-1.hosts.example.com"], "x")),
        &frame("relay-1"),
    );
    send_as(
        addr,
        &server_ca,
        Some(client_cert(&ours, &[], "collector.example.com")),
        &frame("a common name"),
    );
    let evs = agent.wait_events(2);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let text = std::fs::read_to_string(scratch.path("events.ndjson")).expect("output");
    let evs_after = crate::support::parse_ndjson(&text);
    assert_eq!(evs_after.len(), 2, "only the named senders wrote: {log}");
    // The name the sender proved is recorded beside the address it connected from.
    for (msg, name) in [
        ("sent by relay-1", "RELAY-1.hosts.example.com"),
        ("sent by a common name", "collector.example.com"),
    ] {
        let ev = by_message(&evs, msg);
        assert_eq!(str_at(ev, "metadata.loggers.0.device.hostname"), name);
        assert_eq!(str_at(ev, "metadata.loggers.0.device.ip"), "127.0.0.1");
    }
    assert!(log.contains("4 TLS failures"), "{log}");
    assert!(log.contains("[\"laptop.example.com\"] are not in"), "{log}");
}

/// A certificate renewed in place (certbot, an internal CA's rotation) was only read at
/// start: the listener served the old one until it expired. SIGHUP now reads a TLS
/// listener's files again when they changed: new handshakes get the new certificate,
/// connections already open go on, and files that do not load leave the one in use.
#[test]
fn sighup_takes_a_renewed_tls_certificate_without_closing_connections() {
    let scratch = Scratch::new("live-tls-renew");
    let old_ca = test_pki(&scratch);
    let mut agent = RunningAgent::start(&scratch, &tls_listener(&scratch, ""), 1);
    let addr = agent.addr("tls");
    let frame = |what: &str| octet(&format!("<13>1 2026-01-15T10:00:01Z h app - - - {what}"));
    let mut early = tls_client(addr, old_ca.clone());
    early
        .write_all(frame("early, before").as_bytes())
        .expect("send");
    early.flush().expect("flush");
    agent.wait_events(1);

    // Renewed in place: new files at the same paths (here under a new CA, so a client can
    // tell which certificate it was shown).
    let new_ca = test_pki(&scratch);
    agent.signal("HUP");
    agent.wait_log("TLS certificate and key reloaded");
    early
        .write_all(frame("early, after").as_bytes())
        .expect("the open connection goes on");
    early.flush().expect("flush");
    let mut renewed = tls_client(addr, new_ca.clone());
    renewed
        .write_all(frame("renewed").as_bytes())
        .expect("send with the new certificate");
    renewed.flush().expect("flush");
    let mut stale = tls_client(addr, old_ca);
    let shown_old = stale
        .write_all(frame("trusting the old CA only").as_bytes())
        .and_then(|()| stale.flush());
    assert!(
        shown_old.is_err(),
        "a new handshake is shown the renewed certificate"
    );
    agent.wait_events(3);

    // A renewal gone wrong (half-written file): the certificate in use stays.
    scratch.write("server.crt", b"-----BEGIN CERTIFICATE-----\ntruncated");
    agent.signal("HUP");
    agent.wait_log("keeping the TLS certificate in use");
    let mut after = tls_client(addr, new_ca);
    after
        .write_all(frame("after a bad renewal").as_bytes())
        .expect("send");
    after.flush().expect("flush");
    for mut s in [early, renewed, after] {
        s.conn.send_close_notify();
        let _ignored = s.flush();
    }
    let evs = agent.wait_events(4);
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    for what in [
        "early, before",
        "early, after",
        "renewed",
        "after a bad renewal",
    ] {
        by_message(&evs, what);
    }
    assert_eq!(agent_events_after_stop(&scratch), 4, "{log}");
}

/// logrotate renaming the agent's output file (its default `create` mode) left the agent
/// writing into the renamed file for ever, and whatever read the new one saw nothing. The
/// output now follows the path: a file renamed away is replaced by a new one at once.
#[test]
fn the_file_output_follows_a_rotation() {
    let scratch = Scratch::new("live-output-rotate");
    let mut agent = RunningAgent::start(
        &scratch,
        r#"[[input.syslog]]
protocol = "tcp"
listen = "127.0.0.1:0"
allow = ["127.0.0.1"]
"#,
        1,
    );
    let addr = agent.addr("tcp");
    tcp_send(
        addr,
        b"<13>Jan 15 10:00:00 h app: before-1\n<13>Jan 15 10:00:00 h app: before-2\n",
    );
    agent.wait_events(2);
    let out = scratch.path("events.ndjson");
    let rotated = scratch.path("events.ndjson.1");
    std::fs::rename(&out, &rotated).unwrap();
    tcp_send(addr, b"<13>Jan 15 10:00:00 h app: after-1\n");
    let evs = agent.wait_events(1);
    by_message(&evs, "after-1");
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = std::fs::read_to_string(&out).unwrap();
    assert_eq!(old.lines().count(), 2, "{old}");
    assert!(
        old.contains("before-2") && !old.contains("after-1"),
        "{old}"
    );
    assert_eq!(new.lines().count(), 1, "{new}");
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&out).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o640);
}
