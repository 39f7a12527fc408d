use super::*;
use vedette_schemas::ocsf::{Class, Product};

fn ev(msg: &str) -> Event {
    let mut e = Event::new(Class::Base, 0, 0, Product::default());
    parse(msg, &mut e, None);
    e
}

#[test]
fn accepted_publickey() {
    let e = ev("Accepted publickey for alice from 2001:db8::1 port 50000 ssh2: RSA SHA256:abc");
    assert_eq!(e.header.status, Some(Status::Success));
    assert_eq!(e.auth_protocol.as_deref(), Some("publickey"));
    assert_eq!(e.src_endpoint.unwrap().ip.as_deref(), Some("2001:db8::1"));
}

#[test]
fn preauth_disconnects_and_max_attempts() {
    let e = ev("Connection closed by authenticating user root 1.2.3.4 port 22 [preauth]");
    assert_eq!(
        e.metadata.event_code.as_deref(),
        Some("sshd.preauth_disconnect")
    );
    assert_eq!(e.user.unwrap().name.as_deref(), Some("root"));
    let e = ev(
        "error: maximum authentication attempts exceeded for invalid user admin from 5.6.7.8 port 1 ssh2 [preauth]",
    );
    assert_eq!(
        e.metadata.event_code.as_deref(),
        Some("sshd.max_auth_attempts")
    );
    assert_eq!(e.user.unwrap().name.as_deref(), Some("admin"));
    let e = ev("User bob from 9.9.9.9 not allowed because not listed in AllowUsers");
    assert_eq!(e.metadata.event_code.as_deref(), Some("sshd.not_allowed"));
    let e = ev("ROOT LOGIN REFUSED FROM 7.7.7.7");
    assert_eq!(e.src_endpoint.unwrap().ip.as_deref(), Some("7.7.7.7"));
}

fn src(e: &Event) -> Option<(String, Option<u16>)> {
    e.src_endpoint
        .as_ref()
        .map(|s| (s.ip.as_deref().unwrap_or("").to_owned(), s.port))
}

fn peer(ip: &str, port: u16) -> Option<(String, Option<u16>)> {
    Some((ip.to_owned(), Some(port)))
}

/// Lines sshd writes with text the client chose before the peer (a user name, a banner):
/// the peer is read from the right, never from that text.
#[test]
fn client_text_before_the_peer_never_becomes_the_source() {
    for line in [
        "Postponed keyboard-interactive/pam for invalid user 1.1.1.1 from 10.0.0.1 port 22 ssh2 [preauth]",
        "ssh_dispatch_run_fatal: Connection from invalid user 1.1.1.1 10.0.0.1 port 22: message authentication code incorrect [preauth]",
        "Bad protocol version identification '[1.1.1.1]' from 10.0.0.1 port 22",
        "Bad protocol version identification 'x 9.9.9.9 port 7777 y' from 10.0.0.1 port 22",
        "banner exchange: Connection from 10.0.0.1 port 22: invalid format",
    ] {
        assert_eq!(src(&ev(line)), peer("10.0.0.1", 22), "{line}");
    }
    let e = ev("error: PAM: Authentication failure for illegal user 1.1.1.1 from 10.0.0.1");
    assert_eq!(src(&e), Some(("10.0.0.1".to_owned(), None)));
    let e = ev("Bad protocol version identification '[1.1.1.1]' from 10.0.0.1");
    assert_eq!(src(&e), Some(("10.0.0.1".to_owned(), None)));
}

/// MaxStartups and PerSourcePenalties name the peer first and sshd's own address after.
#[test]
fn a_dropped_connection_is_refused_from_its_peer() {
    for line in [
        "drop connection #0 from [10.0.0.1]:5555 on [192.168.1.1]:22 past MaxStartups",
        "drop connection #3 from [10.0.0.1]:5555 on [192.168.1.1]:22 penalty: failed authentication",
    ] {
        let e = ev(line);
        assert_eq!(src(&e), peer("10.0.0.1", 5555), "{line}");
        assert_eq!(e.header.status, Some(Status::Failure), "{line}");
        assert_eq!(
            e.metadata.event_code.as_deref(),
            Some("sshd.dropped_connection")
        );
    }
    let e = ev("Server listening on 0.0.0.0 port 22.");
    assert!(e.src_endpoint.is_none());
    assert_eq!(e.dst_endpoint.unwrap().port, Some(22));
}

/// The peer's DNS answers its reverse name: it is a name, taken whole, never an address.
#[test]
fn a_reverse_name_is_the_peers_dns_name() {
    let e = ev("Address 10.0.0.1 maps to evil.example, but this does not map back to the address.");
    let s = e.src_endpoint.unwrap();
    assert_eq!(s.ip.as_deref(), Some("10.0.0.1"));
    assert_eq!(s.hostname.as_deref(), Some("evil.example"));
    let e = ev("Address 10.0.0.1 maps to 6.6.6.6, but this does not map back to the address.");
    assert_eq!(e.src_endpoint.unwrap().ip.as_deref(), Some("10.0.0.1"));
    let e = ev(
        "reverse mapping checking getaddrinfo for 10.0.0.1.evil.example [10.0.0.1] failed - POSSIBLE BREAK-IN ATTEMPT!",
    );
    assert_eq!(
        e.src_endpoint.unwrap().hostname.as_deref(),
        Some("10.0.0.1.evil.example")
    );
}

/// A certificate's key ID is the client's text after the peer: `from IP port N` in it is
/// not the peer, and the user is what precedes the real one.
#[test]
fn a_key_id_does_not_take_over_user_or_source() {
    let e = ev(
        "Failed publickey for root from 10.0.0.1 port 22 ssh2: ED25519-CERT SHA256:abc ID x from 6.6.6.6 port 1 (serial 0) CA ED25519 SHA256:def",
    );
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("root"));
    let e = ev(
        "Accepted publickey for alice from 10.0.0.1 port 22 ssh2: ED25519-CERT SHA256:abc ID alice@corp (serial 7) CA ED25519 SHA256:def",
    );
    assert_eq!(e.header.status, Some(Status::Success));
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("alice"));
    // A user name holding a whole `from IP port N ssh2` before the real one.
    let e = ev("Failed password for x from 6.6.6.6 port 1 ssh2 from 10.0.0.1 port 22 ssh2");
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(
        e.user.unwrap().name.as_deref(),
        Some("x from 6.6.6.6 port 1 ssh2")
    );
}

/// A user name and a key ID that both hold a reading sshd could have written: the line
/// cannot say which address is the peer, so it claims none and says why.
#[test]
fn an_ambiguous_peer_is_claimed_by_neither_reading() {
    let e = ev(
        "Failed publickey for x from 6.6.6.6 port 1 ssh2: RSA SHA256:q ID z from 10.0.0.1 port 22 ssh2: ED25519-CERT SHA256:abc ID k (serial 0) CA ED25519 SHA256:def",
    );
    assert!(e.src_endpoint.is_none());
    let why = e
        .unmapped
        .as_ref()
        .and_then(|u| u.vedette.as_ref())
        .and_then(|v| v.parse_error.as_ref())
        .map(ToString::to_string);
    assert!(
        why.as_deref().is_some_and(|w| w.contains("ambiguous")
            && w.contains("6.6.6.6 port 1")
            && w.contains("10.0.0.1 port 22")),
        "{why:?}"
    );
}

/// `Disconnecting … user U IP port P: REASON`, where U and the names in a change-of-user
/// reason are the client's: the reason's `: ` does not hide the peer, and text in either
/// name does not become it.
#[test]
fn disconnecting_reads_the_peer_sshd_wrote() {
    let e = ev(
        "Disconnecting authenticating user root 10.0.0.1 port 22: Change of username or service not allowed: (root,ssh-connection) -> (admin,ssh-connection) [preauth]",
    );
    assert_eq!(e.header.class, Class::Authentication);
    assert_eq!(e.header.status, Some(Status::Failure));
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("root"));
    let e = ev(
        "Disconnecting invalid user 1.1.1.1 10.0.0.1 port 22: Change of username or service not allowed: (1.1.1.1,ssh-connection) -> (root,ssh-connection) [preauth]",
    );
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("1.1.1.1"));
    // The second name holds `IP port P: `.
    let e = ev(
        "Disconnecting invalid user a 10.0.0.1 port 22: Change of username or service not allowed: (a,ssh-connection) -> (x 6.6.6.6 port 1: y,ssh-connection) [preauth]",
    );
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("a"));
    let e = ev(
        "Disconnecting invalid user x 6.6.6.6 port 1: y 10.0.0.1 port 22: Too many authentication failures [preauth]",
    );
    assert_eq!(src(&e), peer("10.0.0.1", 22));
    assert_eq!(
        e.metadata.event_code.as_deref(),
        Some("sshd.max_auth_attempts")
    );
}

#[test]
fn a_received_disconnect_from_ipv6_keeps_its_peer() {
    let e = ev("Received disconnect from 2001:db8::1 port 22:11: Bye Bye [preauth]");
    assert_eq!(src(&e), peer("2001:db8::1", 22));
    assert_eq!(e.status_detail.as_deref(), Some("Bye Bye"));
    let e = ev("Received disconnect from 2001:db8::1: 11: Bye Bye");
    assert_eq!(src(&e), Some(("2001:db8::1".to_owned(), None)));
    assert_eq!(e.status_detail.as_deref(), Some("Bye Bye"));
}

/// Steps of a logon that is not over yet are Authentication with status Other, with the
/// user and peer (they were Network Activity without a user).
#[test]
fn postponed_and_partial_steps_are_authentication() {
    for (line, event_code) in [
        (
            "Postponed keyboard-interactive/pam for alice from 10.0.0.1 port 22 ssh2 [preauth]",
            "sshd.postponed",
        ),
        (
            "Partial publickey for alice from 10.0.0.1 port 22 ssh2: ED25519 SHA256:abc",
            "sshd.partial",
        ),
    ] {
        let e = ev(line);
        assert_eq!(e.header.class, Class::Authentication, "{line}");
        assert_eq!(e.header.status, Some(Status::Other), "{line}");
        assert_eq!(e.metadata.event_code.as_deref(), Some(event_code));
        assert_eq!(src(&e), peer("10.0.0.1", 22), "{line}");
        assert_eq!(e.user.unwrap().name.as_deref(), Some("alice"), "{line}");
    }
}

#[test]
fn sshds_own_pam_error_and_not_allowed_users_are_failed_logons() {
    let e = ev("error: PAM: Authentication failure for illegal user 1.1.1.1 from 10.0.0.1");
    assert_eq!(e.header.class, Class::Authentication);
    assert_eq!(e.header.status, Some(Status::Failure));
    assert_eq!(src(&e), Some(("10.0.0.1".to_owned(), None)));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("1.1.1.1"));
    let e = ev(
        "error: PAM: User not known to the underlying authentication module for illegal user Qx7!secret from 10.0.0.1",
    );
    assert_eq!(e.header.status, Some(Status::Failure));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("Qx7!secret"));
    let e = ev("error: PAM: Authentication failure for root from host.example.com");
    assert_eq!(
        e.src_endpoint.unwrap().hostname.as_deref(),
        Some("host.example.com")
    );
    let e = ev("User alice not allowed because account is locked");
    assert_eq!(e.header.status, Some(Status::Failure));
    assert_eq!(e.user.unwrap().name.as_deref(), Some("alice"));
    assert!(e.src_endpoint.is_none());
    let e = ev("User root from host.example.com not allowed because not listed in AllowUsers");
    assert_eq!(e.user.as_ref().unwrap().name.as_deref(), Some("root"));
    assert_eq!(
        e.src_endpoint.unwrap().hostname.as_deref(),
        Some("host.example.com")
    );
    let e = ev("User x from 6.6.6.6 from 10.0.0.1 not allowed because not listed in AllowUsers");
    assert_eq!(src(&e), Some(("10.0.0.1".to_owned(), None)));
}
