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
