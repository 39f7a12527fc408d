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
