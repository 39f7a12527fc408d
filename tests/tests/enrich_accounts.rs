//! User enrichment from the account database, over a fixture root (never the host's own
//! files), through `vedette-agent run`; and once read-only against the real host.

use serde_json::Value;

use crate::support::Scratch;
use crate::support::agent::RunningAgent;
use crate::support::json::get;

#[test]
fn users_named_by_local_events_get_their_account_facts() {
    let scratch = Scratch::new("enrich-accounts");
    let root = scratch.path("root");
    std::fs::create_dir_all(root.join("etc")).expect("fixture etc");
    std::fs::write(
        root.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000:Alice:/home/alice:/bin/bash\nbackup:x:34:34:backup:/var/backups:/usr/sbin/nologin\n",
    )
    .expect("passwd");
    std::fs::write(
        root.join("etc/group"),
        "root:x:0:\nsudo:x:27:alice\nalice:x:1000:\nbackup:x:34:\n",
    )
    .expect("group");
    std::fs::write(
        root.join("etc/shadow"),
        "alice:$y$j9T$x:19500:0:99999:7:::\nbackup:!*:19000:0:99999:7:::\n",
    )
    .expect("shadow");
    std::fs::write(
        root.join("etc/os-release"),
        "NAME=\"Debian GNU/Linux\"\nVERSION_ID=\"12\"\n",
    )
    .expect("os-release");
    let ip_json = scratch.write(
        "ip.json",
        br#"[{"ifname":"eth0","link_type":"ether","address":"52:54:00:12:34:56","addr_info":[{"family":"inet","local":"10.1.2.3"}]}]"#,
    );
    let logs = scratch.path("logs");
    std::fs::create_dir_all(&logs).expect("logs");
    std::fs::write(
        logs.join("auth.log"),
        "Jan 15 10:00:00 thishost sshd[1]: Accepted password for alice from 198.51.100.7 port 40000 ssh2\n\
         Jan 15 10:00:01 thishost sshd[1]: Failed password for backup from 203.0.113.9 port 4242 ssh2\n\
         Jan 15 10:00:02 otherhost sshd[1]: Accepted password for alice from 198.51.100.7 port 40001 ssh2\n\
         Jan 15 10:00:03 thishost sshd[1]: Accepted password for alice from 198.51.100.7 port 40002 ssh2\n",
    )
    .expect("log");
    // Process enrichment looks up live events only: two lines stamped now, one naming this
    // test process (alive), one a pid that does not exist.
    let now = now_rfc3339();
    let me = std::process::id();
    std::fs::write(
        logs.join("app.log"),
        format!("{now} thishost app[{me}]: still here\n{now} thishost app[999999999]: long gone\n"),
    )
    .expect("log");
    let mut agent = RunningAgent::start(
        &scratch,
        &format!(
            "[agent]\nhostname = \"thishost\"\ntimezone = \"UTC\"\nstate_dir = \"{}\"\npoll_interval_ms = 10\n[enrich]\nroot = \"{}\"\nip_command = [\"cat\", \"{}\"]\n[asset]\nowner = \"platform-team\"\nbusiness_unit = \"payments\"\ncriticality = \"tier1\"\nenvironment = \"production\"\nlabels = [\"pci\"]\n[[maintenance]]\nname = \"patch-thursday\"\ndays = [\"thu\"]\nfrom = \"09:00\"\nto = \"10:01\"\n[[input.file]]\npaths = [\"{}/*.log\"]\nread_from = \"start\"\n",
            scratch.path("state").display(),
            root.display(),
            ip_json.display(),
            logs.display()
        ),
        0,
    );
    agent.wait_events(5);
    let out = agent.out.clone();
    let (status, log) = agent.stop();
    assert!(status.success(), "{log}");
    // Five first sightings, then at shutdown the summary of alice's second logon (folded).
    let mut evs = crate::support::parse_ndjson(&std::fs::read_to_string(out).expect("output"));
    assert_eq!(evs.len(), 6, "{log}");
    // The app.log events, by message; auth.log's in file order (the summary last).
    let (app, auth): (Vec<Value>, Vec<Value>) = evs.drain(..).partition(|e| {
        get(e, "metadata.log_source")
            .and_then(Value::as_str)
            .is_some_and(|p| p.ends_with("app.log"))
    });
    let evs = auth;
    let s = |e: &Value, p: &str| get(e, p).and_then(Value::as_str).map(str::to_owned);
    assert_eq!(s(&evs[0], "user.uid").as_deref(), Some("1000"));
    assert_eq!(
        s(&evs[0], "user.type").as_deref(),
        Some("Admin"),
        "alice is in sudo"
    );
    assert_eq!(
        s(&evs[0], "user.account.type").as_deref(),
        Some("Linux Account")
    );
    assert_eq!(
        get(&evs[0], "user.account.is_locked"),
        Some(&Value::Bool(false))
    );
    assert_eq!(s(&evs[1], "user.type").as_deref(), Some("System"));
    assert_eq!(
        get(&evs[1], "user.account.is_locked"),
        Some(&Value::Bool(true))
    );
    // Device facts and asset tags for events about this host.
    assert_eq!(s(&evs[0], "device.ip").as_deref(), Some("10.1.2.3"));
    assert_eq!(
        s(&evs[0], "device.mac").as_deref(),
        Some("52:54:00:12:34:56")
    );
    assert_eq!(
        s(&evs[0], "device.os.name").as_deref(),
        Some("Debian GNU/Linux")
    );
    assert_eq!(
        s(&evs[0], "device.owner.name").as_deref(),
        Some("platform-team")
    );
    assert_eq!(
        s(&evs[0], "device.org.ou_name").as_deref(),
        Some("payments")
    );
    assert_eq!(
        s(&evs[0], "unmapped.vedette.asset.criticality").as_deref(),
        Some("tier1")
    );
    // Jan 15 2026 was a Thursday: 10:00:00 and 10:00:01 are inside 09:00-10:01.
    for e in &evs[..2] {
        assert_eq!(
            s(e, "unmapped.vedette.maintenance_window").as_deref(),
            Some("patch-thursday")
        );
    }
    // Another host's line in a collected file is never given this host's facts.
    assert!(get(&evs[2], "user.uid").is_none(), "{}", evs[2]);
    assert!(get(&evs[2], "device.ip").is_none(), "{}", evs[2]);
    assert!(
        get(&evs[2], "unmapped.vedette.asset").is_none(),
        "{}",
        evs[2]
    );
    let alive = app
        .iter()
        .find(|e| s(e, "message").as_deref() == Some("still here"))
        .expect("live event");
    let exe = std::env::current_exe().expect("current exe");
    assert_eq!(
        s(alive, "actor.process.file.path").as_deref(),
        exe.to_str(),
        "{alive}"
    );
    assert!(
        get(alive, "actor.process.parent_process.pid").is_some(),
        "{alive}"
    );
    let gone = app
        .iter()
        .find(|e| s(e, "message").as_deref() == Some("long gone"))
        .expect("gone event");
    assert_eq!(
        get(gone, "unmapped.vedette.process_gone"),
        Some(&Value::Bool(true)),
        "{gone}"
    );
    // The first-seen baseline: alice from 198.51.100.7 is new on thishost at 10:00:00, and
    // no longer at 10:00:03 (the summary of that repeat carries it).
    let first_seen = |e: &Value| get(e, "unmapped.vedette.first_seen").and_then(Value::as_bool);
    assert_eq!(first_seen(&evs[0]), Some(true));
    assert_eq!(
        first_seen(&evs[2]),
        Some(true),
        "another host is another baseline"
    );
    assert_eq!(get(&evs[3], "count").and_then(Value::as_u64), Some(1));
    assert_eq!(first_seen(&evs[3]), Some(false));
    assert!(
        scratch.path("state/baseline").is_file(),
        "saved at shutdown"
    );
    let problems = crate::ocsf_validate::validate(&scratch.path("events.ndjson"), 6);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Read-only against the host's real account files: root exists and is an admin.
#[test]
fn the_real_hosts_account_database_reads() {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    let group = std::fs::read_to_string("/etc/group").expect("/etc/group");
    let shadow = std::fs::read_to_string("/etc/shadow").ok();
    let db =
        vedette_agent::core::enrich::accounts::AccountDb::parse(&passwd, &group, shadow.as_deref());
    let root = db.get("root").expect("root in /etc/passwd");
    assert_eq!(root.uid, 0);
    assert!(root.privileged);
    assert_eq!(
        db.bad_lines, 0,
        "every line of the host's passwd and group parses"
    );
}

/// Now, for lines that must look live to the agent.
#[expect(
    clippy::disallowed_methods,
    reason = "process enrichment looks up live events only"
)]
fn now_rfc3339() -> String {
    jiff::Timestamp::now().to_string()
}
