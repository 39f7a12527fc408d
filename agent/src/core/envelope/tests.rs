use super::*;
use jiff::tz::TimeZone;

fn ctx() -> TimeContext {
    TimeContext::new("2026-11-27T00:00:00Z".parse().unwrap(), TimeZone::UTC)
}

#[test]
fn rfc5424_with_structured_data() {
    let c = ctx();
    let e = parse(
        r#"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Appl\"ication"] msg"#,
        &c,
    );
    assert_eq!(e.format, Some(Format::Rfc5424));
    assert_eq!(e.error, None);
    assert_eq!((e.facility(), e.severity()), (Some(20), Some(5)));
    assert_eq!(e.hostname, Some("mymachine.example.com"));
    assert_eq!(e.app, Some("evntslog"));
    assert_eq!(e.procid, None);
    assert_eq!(e.msgid, Some("ID47"));
    assert_eq!(
        e.sd[0].params[1],
        ("eventSource".into(), "Appl\"ication".into())
    );
    assert_eq!(e.msg, "msg");
}

#[test]
fn rfc5424_violations_are_reported_and_the_rest_kept() {
    let c = ctx();
    for bad in [
        "<1>1 - - - - - X",
        "<29>2 2006-01-02T15:04:05z - - - - -",
        "<1>1 - - - - - [a][a]",
        "<00>1 - - - - - -",
    ] {
        let e = parse(bad, &c);
        assert!(
            e.error.is_some() || e.format != Some(Format::Rfc5424),
            "{bad}"
        );
    }
}

#[test]
fn rfc3164_host_tag_pid_and_missing_host() {
    let c = ctx();
    let e = parse("<34>Oct 11 22:14:15 mymachine su: 'su root' failed", &c);
    assert_eq!(
        (e.hostname, e.app, e.procid, e.msg),
        (Some("mymachine"), Some("su"), None, "'su root' failed")
    );
    let e = parse("Feb  5 17:32:18 sshd[12]: hello", &c);
    assert_eq!(
        (e.hostname, e.app, e.procid, e.msg),
        (None, Some("sshd"), Some("12"), "hello")
    );
    assert_eq!(e.format, Some(Format::File));
    let e = parse("<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!", &c);
    assert_eq!(
        (e.hostname, e.app, e.msg),
        (Some("10.0.0.99"), None, "Use the BFG!")
    );
    let e = parse("2024-01-02T03:04:05+01:00 host app[1]: x", &c);
    assert_eq!(e.time.unwrap().offset_min, 60);
    assert_eq!((e.hostname, e.app), (Some("host"), Some("app")));
    let e = parse("just text", &c);
    assert_eq!((e.format, e.msg), (Some(Format::Plain), "just text"));
}

/// An address as the host: an IPv6 address or `IP:PORT` read like a tag ended by its
/// colon, the program and message lost.
#[test]
fn an_address_host_is_the_host_not_a_tag() {
    let c = ctx();
    for (line, host) in [
        (
            "Jan 15 10:00:00 fe80::1 sshd[1]: Accepted password for root",
            "fe80::1",
        ),
        (
            "<13>Jan 15 10:00:00 2001:db8::5 sshd[1]: Accepted password for root",
            "2001:db8::5",
        ),
        (
            "<13>Jan 15 10:00:00 10.0.0.1:514 sshd[1]: Accepted password for root",
            "10.0.0.1:514",
        ),
    ] {
        let e = parse(line, &c);
        assert_eq!(e.hostname, Some(host), "{line}");
        assert_eq!(e.app, Some("sshd"), "{line}");
        assert_eq!(e.msg, "Accepted password for root", "{line}");
    }
}

/// A tag with bytes a tag seldom has is the tag, not a host: the message after it is its
/// own, never read for another program (`sshd[1]:` in it made an sshd logon).
#[test]
fn an_odd_tag_does_not_hand_its_message_to_another_program() {
    let c = ctx();
    let e = parse(
        "<13>Jan 15 10:00:00 my-app!![99]: sshd[1]: Accepted password for root",
        &c,
    );
    assert_eq!(e.app, Some("my-app!!"));
    assert_eq!(e.procid, Some("99"));
    assert_eq!(e.hostname, None);
    assert_eq!(e.msg, "sshd[1]: Accepted password for root");
}

/// A number after PRI is an RFC 5424 version only with a timestamp (or `-`) after it:
/// `<13>42 drops` and Cisco's `<189>52: *Mar …` are RFC 3164 content, not cut.
#[test]
fn a_number_after_pri_is_a_version_only_before_a_timestamp() {
    let c = ctx();
    let e = parse("<13>42 drops on eth0", &c);
    assert_eq!(e.format, Some(Format::Rfc3164));
    assert!(e.msg.contains("42 drops on eth0"), "{e:?}");
    let e = parse(
        "<189>52: *Mar  1 00:05:12.123: %SYS-5-CONFIG_I: Configured",
        &c,
    );
    assert_eq!(e.format, Some(Format::Rfc3164));
    assert!(e.msg.contains("52: *Mar"), "{e:?}");
}

/// A timestamp the RFC does not allow but a sender meant (nine fraction digits, a leap
/// second) is said, and the header after it is still read.
#[test]
fn a_bad_rfc5424_timestamp_keeps_the_header_after_it() {
    let c = ctx();
    for line in [
        "<13>1 2026-01-01T00:00:00.123456789Z h a - - - x",
        "<13>1 2026-12-31T23:59:60Z h a - - - x",
    ] {
        let e = parse(line, &c);
        assert_eq!(e.time, None, "{line}");
        assert!(
            e.error.as_deref().is_some_and(|w| w.contains("timestamp")),
            "{line}"
        );
        assert_eq!(
            (e.hostname, e.app, e.msg),
            (Some("h"), Some("a"), "x"),
            "{line}"
        );
    }
}

/// Cisco ends its timestamp with a colon; with no device id there is no host (it was `:`).
#[test]
fn a_cisco_timestamp_colon_is_no_host() {
    let c = ctx();
    let e = parse(
        "<166>Jan 15 2026 10:00:00: %ASA-6-605005: Login permitted from 10.1.1.1/52690",
        &c,
    );
    assert_eq!(e.hostname, None);
    assert_eq!(e.error, None);
    assert!(e.msg.contains("Login permitted"), "{e:?}");
}

/// A four-digit host is no year: `1234` after the time named the host, and dated the line
/// in the year 1234.
#[test]
fn a_four_digit_host_is_no_year() {
    let c = ctx();
    let e = parse("<13>Jan 15 10:00:00 1234 sshd[1]: x", &c);
    assert_eq!(e.hostname, Some("1234"));
    assert_eq!(e.app, Some("sshd"));
    let e = parse("<13>Jan 15 10:00:00 2025 h sshd[1]: x", &c);
    assert_eq!(e.hostname, Some("h"));
}
