use vedette_schemas::ocsf::{Endpoint, Product, Status, User};

use super::*;

const W: i64 = 10_000;

fn auth(user: &str, ip: &str, t: i64) -> Box<Event> {
    let mut ev = Box::new(Event::new(Class::Authentication, 1, t, Product::default()));
    ev.header.status = Some(Status::Failure);
    ev.user = Some(User {
        name: Some(user.into()),
        ..User::default()
    });
    ev.src_endpoint = Some(Endpoint {
        ip: Some(ip.into()),
        ..Endpoint::default()
    });
    ev.metadata.uid = Some(format!("uid-{t}").into());
    ev
}

fn drain(d: &mut Dedup) -> Vec<Box<Event>> {
    std::iter::from_fn(|| d.poll_event()).collect()
}

#[test]
fn first_sighting_is_forwarded_at_once_and_untouched() {
    let mut d = Dedup::new(DedupConfig::default());
    let ev = auth("root", "10.0.0.1", 1_000);
    let copy = ev.clone();
    let out = d.handle_event(1_000, ev).expect("forwarded immediately");
    assert_eq!(out, copy);
    assert!(d.poll_event().is_none());
}

#[test]
fn repeats_fold_into_one_summary_with_exact_count_and_times() {
    let mut d = Dedup::new(DedupConfig::default());
    assert!(d.handle_event(0, auth("root", "10.0.0.1", 0)).is_some());
    for t in [100, 200, 9_999] {
        assert!(d.handle_event(t, auth("root", "10.0.0.1", t)).is_none());
    }
    // Another behaviour is not folded with it.
    assert!(
        d.handle_event(300, auth("admin", "10.0.0.1", 300))
            .is_some()
    );
    assert!(drain(&mut d).is_empty(), "nothing before the window ends");
    assert_eq!(d.poll_timeout(), Some(W));
    d.handle_timeout(W - 1);
    assert!(drain(&mut d).is_empty());
    d.handle_timeout(W);
    let s = drain(&mut d);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].count, Some(3));
    assert_eq!((s[0].start_time, s[0].end_time), (Some(100), Some(9_999)));
    // The summary is the first repeat: its own uid, not the first sighting's.
    assert_eq!(s[0].metadata.uid.as_deref(), Some("uid-100"));
    let m = d.metrics();
    assert_eq!((m.events_in, m.events_out, m.folded), (5, 3, 3));
}

#[test]
fn windows_are_tumbling_from_the_first_sighting() {
    let mut d = Dedup::new(DedupConfig::default());
    assert!(d.handle_event(0, auth("u", "1.1.1.1", 0)).is_some());
    assert!(d.handle_event(W - 1, auth("u", "1.1.1.1", W - 1)).is_none());
    // At the window's end: the summary comes out, and this event opens a new window as a
    // first sighting.
    let ev = d.handle_event(W, auth("u", "1.1.1.1", W));
    assert!(ev.is_some());
    let s = drain(&mut d);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].count, Some(1));
    assert!(
        d.handle_event(2 * W - 1, auth("u", "1.1.1.1", 2 * W - 1))
            .is_none()
    );
    d.flush();
    assert_eq!(drain(&mut d)[0].count, Some(1));
}

#[test]
fn a_window_without_repeats_emits_nothing() {
    let mut d = Dedup::new(DedupConfig::default());
    assert!(d.handle_event(0, auth("u", "1.1.1.1", 0)).is_some());
    d.handle_timeout(10 * W);
    assert!(drain(&mut d).is_empty());
    assert_eq!(d.poll_timeout(), None);
}

#[test]
fn past_the_memory_bound_events_pass_unfolded_and_are_counted() {
    let mut d = Dedup::new(DedupConfig {
        max_tracked: 2,
        ..DedupConfig::default()
    });
    assert!(d.handle_event(0, auth("a", "1.1.1.1", 0)).is_some());
    assert!(d.handle_event(0, auth("b", "1.1.1.1", 0)).is_some());
    for _ in 0..3 {
        assert!(d.handle_event(1, auth("c", "1.1.1.1", 1)).is_some());
    }
    assert_eq!(d.metrics().untracked, 3);
    // Tracked ones still fold.
    assert!(d.handle_event(2, auth("a", "1.1.1.1", 2)).is_none());
}

#[test]
fn shutdown_flush_loses_no_count() {
    let mut d = Dedup::new(DedupConfig::default());
    let mut n_out = 0u64;
    let mut counted = 0u64;
    for i in 0..1000i64 {
        let user = ["a", "b", "c"][(i % 3) as usize];
        if let Some(ev) = d.handle_event(i, auth(user, "10.0.0.1", i)) {
            n_out += 1;
            counted += u64::from(ev.count.unwrap_or(1));
        }
    }
    d.flush();
    for ev in drain(&mut d) {
        n_out += 1;
        counted += u64::from(ev.count.unwrap_or(1));
    }
    assert_eq!(counted, 1000);
    assert_eq!(n_out, 6);
    assert_eq!(d.metrics().events_out, 6);
    assert!((d.metrics().reduction_ratio() - 1000.0 / 6.0).abs() < 1e-9);
}

#[test]
fn configured_fields_replace_the_defaults() {
    let mut fields = HashMap::new();
    fields.insert(Class::Authentication, vec![Field::SrcIp]);
    let mut d = Dedup::new(DedupConfig {
        fields,
        ..DedupConfig::default()
    });
    assert!(d.handle_event(0, auth("a", "1.1.1.1", 0)).is_some());
    // Another user from the same address: the same behaviour under this config.
    assert!(d.handle_event(1, auth("b", "1.1.1.1", 1)).is_none());
}

#[test]
fn field_paths_resolve() {
    assert_eq!(fingerprint::field("src_endpoint.ip"), Some(Field::SrcIp));
    assert_eq!(fingerprint::field("no.such.path"), None);
}

#[test]
fn a_repeat_that_stands_for_several_counts_as_several() {
    let mut d = Dedup::new(DedupConfig::default());
    assert!(d.handle_event(0, auth("u", "1.1.1.1", 0)).is_some());
    let mut five = auth("u", "1.1.1.1", 1);
    five.count = Some(5);
    assert!(d.handle_event(1, five).is_none());
    assert!(d.handle_event(2, auth("u", "1.1.1.1", 2)).is_none());
    d.flush();
    assert_eq!(drain(&mut d)[0].count, Some(6));
}

#[test]
fn held_repeats_hold_their_source_back() {
    use crate::core::uid::{event_uid, source_hash};
    let mut d = Dedup::new(DedupConfig::default());
    // Two sources under one path: a rotated file and the new one (their uid keys differ).
    let with_pos = |t: i64, key: &str, seq: u64| {
        let mut e = auth("u", "1.1.1.1", t);
        e.metadata.log_source = Some("/var/log/auth.log".into());
        e.metadata.sequence = Some(seq as i64);
        e.metadata.uid = Some(event_uid(key, seq, b"line").into());
        e
    };
    let (old, new) = (source_hash("dev=1,ino=7"), source_hash("dev=1,ino=8"));
    assert!(d.handle_event(0, with_pos(0, "dev=1,ino=7", 100)).is_some());
    assert_eq!(d.pending_floor(old), None);
    assert!(d.handle_event(1, with_pos(1, "dev=1,ino=7", 200)).is_none());
    assert!(d.handle_event(2, with_pos(2, "dev=1,ino=7", 300)).is_none());
    assert!(d.handle_event(3, with_pos(3, "dev=1,ino=8", 50)).is_none());
    assert_eq!(d.pending_floor(old), Some(200));
    assert_eq!(d.pending_floor(new), Some(50), "the new file's own floor");
    assert_eq!(d.pending_floor(source_hash("/var/log/syslog")), None);
    // A lower position of the same source in the same window lowers its floor.
    assert!(d.handle_event(4, with_pos(4, "dev=1,ino=7", 150)).is_none());
    assert_eq!(d.pending_floor(old), Some(150));
    d.flush();
    assert_eq!(d.pending_floor(old), None);
    assert_eq!(d.pending_floor(new), None);
}

#[test]
fn a_stopping_source_closes_only_the_windows_holding_its_repeats() {
    use crate::core::uid::{event_uid, source_hash};
    let mut d = Dedup::new(DedupConfig::default());
    let from = |user: &str, t: i64, key: &str, seq: u64| {
        let mut e = auth(user, "1.1.1.1", t);
        e.metadata.sequence = Some(seq as i64);
        e.metadata.uid = Some(event_uid(key, seq, b"line").into());
        e
    };
    // "a" repeats from the stopping source; "b" from another; "c" from both.
    for (user, key) in [("a", "stopping"), ("b", "other"), ("c", "other")] {
        assert!(d.handle_event(0, from(user, 0, key, 1)).is_some());
        assert!(d.handle_event(1, from(user, 1, key, 2)).is_none());
    }
    assert!(d.handle_event(2, from("c", 2, "stopping", 9)).is_none());
    d.flush_sources(&[source_hash("stopping")]);
    let mut closed: Vec<_> = drain(&mut d)
        .iter()
        .map(|e| {
            e.user
                .as_ref()
                .and_then(|u| u.name.as_deref())
                .unwrap()
                .to_owned()
        })
        .collect();
    closed.sort();
    assert_eq!(closed, ["a", "c"]);
    assert_eq!(d.pending_floor(source_hash("stopping")), None);
    assert_eq!(
        d.pending_floor(source_hash("other")),
        Some(2),
        "b's window is open"
    );
    // Its repeats still fold into the one summary.
    assert!(d.handle_event(3, from("b", 3, "other", 3)).is_none());
    d.flush();
    let s = drain(&mut d);
    assert_eq!(s.len(), 1);
    assert_eq!(s[0].count, Some(2));
}

/// Lines through the normalizer, then the fold (each on its own time): the events that
/// come out at once, i.e. those not folded as a repeat of an earlier one.
fn forwarded(lines: &[&str]) -> Vec<Box<Event>> {
    use crate::core::normalize::{NormalizeConfig, Normalizer};
    use crate::core::time::TimeContext;
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = crate::core::Source {
        uid_key: None,
        id: "/var/log/x.log".into(),
        time: TimeContext::new(
            "2026-11-27T00:00:00Z".parse().unwrap(),
            jiff::tz::TimeZone::UTC,
        ),
        syslog: false,
        sender_name: None,
    };
    for (i, l) in lines.iter().enumerate() {
        n.handle_line(&src, i as u64 + 1, l.as_bytes(), 0);
    }
    n.finish();
    let mut d = Dedup::new(DedupConfig::default());
    std::iter::from_fn(|| n.poll_event())
        .filter_map(|ev| d.handle_event(ev.time, ev))
        .collect()
}

/// A repeat's own fields are gone with it (the summary is its first repeat with a
/// count), so events an analyst must see apart never fold: an auditd run as another uid
/// or from another executable or directory, a PAM failure by another person or through
/// another service, a sudo denial of another command, a request with another query or
/// client, a membership of another group, a change of another attribute, the same text
/// from another program. (All of these folded into the first.)
#[test]
fn events_an_analyst_tells_apart_are_not_folded() {
    let exec = |serial: u32, uid: &str, exe: &str, cwd: &str| {
        [
            format!(
                r#"type=SYSCALL msg=audit(1764201600.{serial:03}:{serial}): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=2 auid=1000 uid={uid} gid=0 euid={uid} suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=1 comm="ls" exe="{exe}" key=(null)"#
            ),
            format!(r#"type=EXECVE msg=audit(1764201600.{serial:03}:{serial}): argc=1 a0="ls""#),
            format!(r#"type=CWD msg=audit(1764201600.{serial:03}:{serial}): cwd="{cwd}""#),
            format!(r#"type=EOE msg=audit(1764201600.{serial:03}:{serial}): "#),
        ]
    };
    let mut lines: Vec<String> = Vec::new();
    for (serial, uid, exe, cwd) in [
        (1, "1000", "/usr/bin/ls", "/home/a"),
        (2, "0", "/usr/bin/ls", "/home/a"),
        (3, "1000", "/tmp/.x/ls", "/home/a"),
        (4, "1000", "/usr/bin/ls", "/root/.ssh"),
    ] {
        lines.extend(exec(serial, uid, exe, cwd));
    }
    lines.extend(
        [
            "Nov 27 00:00:01 h su: pam_unix(su:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=root",
            "Nov 27 00:00:02 h su: pam_unix(su:auth): authentication failure; logname=mallory uid=1001 euid=0 tty=/dev/pts/1 ruser=mallory rhost=  user=root",
            "Nov 27 00:00:03 h sudo:    bob : command not allowed ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/usr/bin/ls",
            "Nov 27 00:00:04 h sudo:    bob : command not allowed ; TTY=pts/0 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
            r#"10.0.0.5 - - [27/Nov/2026:00:00:05 +0000] "GET /search?q=shoes HTTP/1.1" 200 10 "-" "Mozilla""#,
            r#"10.0.0.5 - - [27/Nov/2026:00:00:06 +0000] "GET /search?q=1'+UNION+SELECT+password+FROM+users-- HTTP/1.1" 200 99999 "-" "sqlmap""#,
            "Nov 27 00:00:07 h usermod[1]: add 'bob' to group 'video'",
            "Nov 27 00:00:08 h usermod[1]: add 'bob' to group 'sudo'",
            "Nov 27 00:00:09 h usermod[1]: change user 'bob' shell from '/bin/bash' to '/bin/sh'",
            "Nov 27 00:00:09 h usermod[1]: change user 'bob' UID from '1001' to '0'",
            "Nov 27 00:00:09 h systemd[1]: Started Session 5 of User bob.",
            "Nov 27 00:00:09 h evil[666]: Started Session 5 of User bob.",
        ]
        .map(str::to_owned),
    );
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let out = forwarded(&refs);
    assert_eq!(
        out.len(),
        16,
        "{:#?}",
        out.iter().map(|e| e.message.clone()).collect::<Vec<_>>()
    );
}

/// Replayed on the events' own times, one dated in the future opened a window every
/// later-read, earlier-dated repeat fell into, however far apart.
#[test]
fn a_repeat_before_its_windows_start_opens_a_window_of_its_own() {
    let mut d = Dedup::new(DedupConfig::default());
    let future = 10 * 365 * 86_400_000;
    assert!(
        d.handle_event(future, auth("root", "10.0.0.1", future))
            .is_some()
    );
    assert!(d.handle_event(0, auth("root", "10.0.0.1", 0)).is_some());
    assert!(
        d.handle_event(3_600_000, auth("root", "10.0.0.1", 3_600_000))
            .is_some()
    );
}
