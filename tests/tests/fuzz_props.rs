//! The fuzz bodies (`vedette_agent::core::fuzzing`, `vedette_aggregator::fuzzing`) as property tests, so `cargo test` keeps
//! what the cargo-fuzz targets in `fuzz/` check: no parser panics, every non-blank record
//! yields an event that carries it, every event serializes.
//!
//! One module per fuzz target, named and fed exactly as its `fuzz/fuzz_targets/<name>.rs`
//! (same prefixes, same program-picking first byte). Each runs its body over arbitrary bytes,
//! arbitrary UTF-8, and realistic inputs (its seeds) with NUL bytes, made invalid UTF-8, or
//! with multi-byte characters put anywhere; then its seeds as given, the crashes the fuzzer
//! found (`fuzz/regressions/<target>/`), and three 1 MiB inputs (random-ish bytes, an sshd
//! message, a whole sshd syslog line).
//! 256 cases per property (`PROPTEST_CASES=N` for a longer run); failing cases are shrunk
//! and printed, not persisted: save a minimized one as `fuzz/regressions/<target>/<bug>`.
//!
//! Unlike the rest of this suite these tests call the agent's crate, not its binary: the
//! fuzz bodies are its sans-I/O core.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::Config;
use vedette_agent::core::fuzzing;
use vedette_aggregator::fuzzing as aggregator;

/// 1 MiB: the line limit the fuzz bodies configure, so the long inputs sit right at it.
const MIB: usize = 1 << 20;

/// 256 cases unless `PROPTEST_CASES` says otherwise; nothing written next to the sources.
fn config() -> Config {
    Config {
        failure_persistence: None,
        ..Config::default()
    }
}

/// Up to 600 arbitrary bytes.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..600)
}

/// Arbitrary UTF-8, any scalar value (controls, BOM, combining marks, astral planes).
fn utf8() -> impl Strategy<Value = String> {
    prop::collection::vec(any::<char>(), 0..300).prop_map(String::from_iter)
}

/// A realistic input for the target (one of its seeds) or, one time in four, arbitrary text.
fn base(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        3 => prop::sample::select(seeds).prop_map(|s| s.as_bytes().to_vec()),
        1 => utf8().prop_map(String::into_bytes),
    ]
}

/// Puts each insertion at its index into `data`.
fn splice(mut data: Vec<u8>, inserts: Vec<(Index, &'static [u8])>) -> Vec<u8> {
    for (at, bytes) in inserts {
        let at = at.index(data.len() + 1);
        data.splice(at..at, bytes.iter().copied());
    }
    data
}

/// A realistic input with NUL bytes put anywhere (start, middle, end), or nothing but NULs.
fn with_nuls(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let nuls: &'static [&'static [u8]] = &[b"\0", b"\0\0", b"\0\0\0\0\0\0\0\0"];
    prop_oneof![
        9 => (base(seeds), prop::collection::vec((any::<Index>(), prop::sample::select(nuls)), 1..8))
            .prop_map(|(data, nuls)| splice(data, nuls)),
        1 => (1..64usize).prop_map(|n| vec![0; n]),
    ]
}

/// A realistic input made invalid UTF-8: one `0xFF` (never valid) and up to five other
/// broken sequences (lone continuation, lone lead, overlong, surrogate, past U+10FFFF,
/// truncated), anywhere.
fn invalid_utf8(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let broken: &'static [&'static [u8]] = &[
        b"\x80",
        b"\xbf",
        b"\xc3",
        b"\xc0\x80",
        b"\xe0\x80\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xe2\x82",
        b"\xf0\x9f\x98",
        b"\xfe",
    ];
    (
        base(seeds),
        any::<Index>(),
        prop::collection::vec((any::<Index>(), prop::sample::select(broken)), 0..6),
    )
        .prop_map(|(data, ff, more)| {
            let data = splice(data, more);
            let data = splice(data, vec![(ff, b"\xff".as_slice())]);
            debug_assert!(std::str::from_utf8(&data).is_err());
            data
        })
}

/// A realistic input with non-ASCII characters (2, 3 and 4 bytes long) put anywhere: still
/// valid UTF-8, but every byte offset a parser computes may now fall inside a character.
fn multibyte(seeds: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    const CHARS: &[&[u8]] = &[
        "é".as_bytes(),
        "€".as_bytes(),
        "\u{feff}".as_bytes(),
        "\u{2028}".as_bytes(),
        "😀".as_bytes(),
        "\u{10ffff}".as_bytes(),
    ];
    (
        base(seeds),
        prop::collection::vec((any::<Index>(), prop::sample::select(CHARS)), 1..6),
    )
        .prop_map(|(data, chars)| splice(data, chars))
}

/// The files in `fuzz/regressions/<target>/` (none when the folder is missing).
fn regressions(target: &str) -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/regressions")
        .join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("listing fuzz regressions").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| std::fs::read(f).expect("reading a fuzz regression"))
        .collect()
}

/// 1 MiB of xorshift bytes (a fixed seed: the same input every run).
fn random_mib() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..MIB)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect()
}

/// A 1 MiB sshd "Failed password" message whose middle repeats the `from ... port ...` the
/// parser looks for, which is what a quadratic search would choke on.
fn sshd_message_mib() -> Vec<u8> {
    let mut m = b"Failed password for invalid user ".to_vec();
    while m.len() < MIB - 64 {
        m.extend_from_slice(b"root from 203.0.113.7 port 22 ");
    }
    m.extend_from_slice(b"x from 198.51.100.23 port 50022 ssh2");
    m
}

/// The same message as a whole RFC 3164 syslog line from `sshd[42]`.
fn sshd_line_mib() -> Vec<u8> {
    let mut l = b"<38>Nov 27 10:00:00 bastion-1 sshd[42]: ".to_vec();
    l.extend_from_slice(&sshd_message_mib());
    l
}

/// `prefix` then `data`, as the prefixing fuzz targets feed the normalizer.
fn prefixed(prefix: &[u8], data: &[u8]) -> Vec<u8> {
    let mut line = prefix.to_vec();
    line.extend_from_slice(data);
    line
}

const SYSLOG_SEEDS: &[&str] = &[
    "<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - \u{feff}'su root' failed for lonvick on /dev/pts/8",
    "<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut=\"3\" eventSource=\"Application\" eventID=\"1011\"][examplePriority@32473 class=\"high\"] An application event",
    "<38>1 2025-01-15T00:00:01.123456Z web-03 sshd 4242 AUTHFAIL [meta sequenceId=\"7\"] Failed password for root from 203.0.113.7 port 51234 ssh2",
    "<134>1 2025-01-15T00:00:02Z web-01 auth-api - - [app@32473 env=\"prod\" region=\"eu-west-1\"] {\"ts\":\"2025-01-15T00:00:02.000Z\",\"level\":\"warn\",\"event\":\"login_failed\",\"user\":\"bob\",\"src_ip\":\"10.1.2.3\"}",
    "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
    "<86>Jan 15 00:00:03 bastion-1 sudo:    alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
    "<4>Jan 15 00:00:04 edge-fw-1 kernel: [123456.789012] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=203.0.113.7 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
    "<190>Jan 15 00:00:05 web-02 nginx[812]: 203.0.113.7 - - [15/Jan/2025:00:00:05 +0000] \"GET /.env HTTP/1.1\" 404 153 \"-\" \"curl/8.4.0\"",
    "<13>2025-01-15T00:00:06+01:00 host app[1]: ISO timestamp",
    "<13>2025-01-15T00:00:06.5-06 host app[1]: ISO timestamp, hour-only offset",
    "2003-10-11T22:14:15.003+0200 host app: ISO timestamp, no PRI",
    "<0>1 - - - - - -",
    "<191>",
];

const FILE_SEEDS: &[&str] = &[
    "Jan 15 00:00:01 web-03 sshd[4242]: Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2",
    "Jan 15 00:00:01 web-03 sshd[4242]: Accepted publickey for deploy from 10.0.0.5 port 40022 ssh2: ED25519 SHA256:0123456789abcdef0123456789abcdef",
    "Jan 15 00:00:02 web-03 sshd[4243]: pam_unix(sshd:session): session opened for user git(uid=1001) by (uid=0)",
    "Jan 15 00:00:02 web-03 sshd[4243]: message repeated 3 times: [ Failed password for root from 203.0.113.7 port 51234 ssh2]",
    "Jan 15 00:00:03 bastion-1 sudo: pam_unix(sudo:auth): authentication failure; logname=bob uid=1004 euid=0 tty=/dev/pts/2 ruser=bob rhost=  user=bob",
    "Jan 15 00:00:04 db-01 audisp-syslog[311]: type=USER_LOGIN msg=audit(1736899204.000:100001): pid=311 uid=0 auid=1001 ses=3 subj=unconfined msg='op=login acct=\"bob\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.7 terminal=ssh res=failed'",
    "type=SYSCALL msg=audit(1764149520.101:7001): arch=c000003e syscall=59 success=yes exit=0 ppid=2302 pid=2311 auid=1001 uid=0 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"exec_from_net\"",
    "Jan 15 00:00:05 k8s-node-01 kernel: audit: type=1400 audit(1736899205.000:100002): apparmor=\"DENIED\" operation=\"open\" profile=\"docker-default\" name=\"/etc/shadow\" pid=99 comm=\"cat\" requested_mask=\"r\" denied_mask=\"r\" fsuid=0 ouid=0",
    "Jan 15 00:00:06 edge-fw-2 kernel: [42.000001] nft-drop: IN=ens3 OUT= MAC=aa SRC=198.51.100.9 DST=192.0.2.1 LEN=40 TOS=0x00 PREC=0x00 TTL=64 ID=7 PROTO=UDP SPT=53 DPT=123 LEN=20",
    "Jan 15 00:00:07 web-01 nginx[812]: 10.1.2.3 - alice [15/Jan/2025:00:00:07 +0000] \"POST /login HTTP/1.1\" 401 12 \"-\" \"python-requests/2.31.0\"",
    "Jan 15 00:00:08 web-01 billing[77]: {\"ts\":\"2025-01-15T00:00:08.000Z\",\"level\":\"error\",\"event\":\"permission_denied\",\"user\":\"eve\",\"src_ip\":\"10.9.8.7\",\"http\":{\"method\":\"GET\",\"status\":403}}",
    "Jan 15 00:00:09 siem-fwd cef: CEF:0|Acme|EDR|4.2|1001|Suspicious process blocked|8|src=10.20.0.11 dst=203.0.113.77 act=blocked suser=deploy",
    "Nov 26 09:30:00 web-01 useradd[2401]: new user: name=backdoor, UID=1002, GID=1002, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0",
    "2025-01-15T00:00:10.123456+00:00 web-04 su[99]: FAILED SU (to root) deploy on pts/0",
    "2025-01-15T00:00:10-05 web-04 su[99]: FAILED SU (to root) deploy on pts/0",
    "just some text without any envelope",
];

const SSHD_SEEDS: &[&str] = &[
    "Failed publickey for root from 10.0.0.1 port 22 ssh2: ED25519-CERT SHA256:abc ID x from 6.6.6.6 port 1 (serial 0) CA ED25519 SHA256:def",
    "Disconnecting authenticating user root 10.0.0.1 port 22: Change of username or service not allowed: (root,ssh-connection) -> (admin,ssh-connection) [preauth]",
    "Postponed keyboard-interactive/pam for invalid user 1.1.1.1 from 10.0.0.1 port 22 ssh2 [preauth]",
    "drop connection #0 from [10.0.0.1]:5555 on [192.168.1.1]:22 past MaxStartups",
    "Received disconnect from 2001:db8::1 port 22:11: Bye Bye [preauth]",
    "error: PAM: Authentication failure for illegal user x from host.example.com",
    "Failed password for invalid user admin from 203.0.113.7 port 51234 ssh2",
    "Failed password for root from 2001:db8::7 port 22 ssh2",
    "Accepted publickey for deploy from 10.0.0.5 port 40022 ssh2: ED25519 SHA256:0123456789abcdef",
    "Accepted password for alice from 10.0.0.6 port 40023 ssh2",
    "Invalid user oracle from 203.0.113.8 port 40000",
    "Connection closed by authenticating user root 203.0.113.9 port 22 [preauth]",
    "Disconnected from invalid user test 203.0.113.10 port 2222 [preauth]",
    "pam_unix(sshd:session): session opened for user git(uid=1001) by (uid=0)",
    "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.7  user=root",
    "message repeated 5 times: [ Failed password for root from 203.0.113.7 port 51234 ssh2]",
    "error: maximum authentication attempts exceeded for root from 203.0.113.7 port 22 ssh2 [preauth]",
];

const SUDO_SEEDS: &[&str] = &[
    "\0   alice : TTY=pts/1 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/cat /etc/shadow",
    "\0bob : 3 incorrect password attempts ; TTY=pts/2 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
    "\0pam_unix(sudo:auth): authentication failure; logname=bob uid=1004 euid=0 tty=/dev/pts/2 ruser=bob rhost=  user=bob",
    "\0pam_unix(sudo:session): session opened for user root(uid=0) by bob(uid=1004)",
    "\u{1}FAILED SU (to root) deploy on pts/0",
    "\u{1}(to root) deploy on pts/0",
    "\u{1}pam_unix(su:auth): authentication failure; logname=deploy uid=1001 euid=0 tty=pts/0 ruser=deploy rhost=  user=root",
    "\u{1}+ pts/0 deploy:root",
];

const DROPBEAR_SEEDS: &[&str] = &[
    "Bad password attempt for 'root' from 203.0.113.7:40000",
    "Exit (root) from <10.0.0.1:5555>: Disconnect received",
    "Exit before auth (user 'x', 10 fails): Max auth tries reached - user 'x' from [2001:db8::1]:22",
    "Login attempt for nonexistent user 'oracle' from 10.0.0.9:1",
];

const LOGIN_SEEDS: &[&str] = &[
    "FAILED LOGIN 1 ON /dev/tty1 FOR root, Authentication failure",
    "FAILED LOGIN (2) on '/dev/pts/0' from 'gw' FOR 'it's', Authentication failure",
    "TOO MANY LOGIN TRIES (3) FROM 203.0.113.9 FOR admin, Authentication failure",
    "ROOT LOGIN  on `/dev/tty1'",
    "LOGIN ON pts/1 BY bob FROM 198.51.100.7",
];

const ACCOUNT_SEEDS: &[&str] = &[
    "\u{2}change user 'bob' UID from '1001' to '0'",
    "\u{5}group changed in /etc/group (group devs/1001, new name: ops)",
    "\u{b}changed user 'bob' shell to '/bin/sh'",
    "\0new user: name=backdoor, UID=1002, GID=1002, home=/home/backdoor, shell=/bin/bash, from=/dev/pts/0",
    "\u{1}delete user 'bob'",
    "\u{2}add 'bob' to group 'sudo'",
    "\u{2}lock user 'bob' password",
    "\u{3}group added to /etc/group: name=ops, GID=1005",
    "\u{3}new group: name=ops, GID=1005",
    "\u{6}pam_unix(passwd:chauthtok): password changed for backdoor",
    "\u{9}user bob added by root to group sudo",
];

const AUDITD_SEEDS: &[&str] = &[
    "type=SYSCALL msg=audit(1764149520.101:7001): arch=c000003e syscall=59 success=yes exit=0 a0=55d0c3a0 items=2 ppid=2302 pid=2311 auid=1001 uid=0 gid=0 euid=0 tty=pts0 ses=4 comm=\"curl\" exe=\"/usr/bin/curl\" key=\"exec_from_net\"\ntype=EXECVE msg=audit(1764149520.101:7001): argc=3 a0=\"curl\" a1=\"-s\" a2=687474703A2F2F3230332E302E3131332E37372F782E7368\ntype=CWD msg=audit(1764149520.101:7001): cwd=\"/tmp\"\ntype=PATH msg=audit(1764149520.101:7001): item=0 name=\"/usr/bin/curl\" inode=131090 dev=fd:01 mode=0100755 ouid=0 ogid=0 nametype=NORMAL\ntype=PROCTITLE msg=audit(1764149520.101:7001): proctitle=6375726C002D73\ntype=EOE msg=audit(1764149520.101:7001):",
    "type=USER_AUTH msg=audit(1764149540.220:7002): pid=2188 uid=0 auid=4294967295 ses=4294967295 msg='op=PAM:authentication grantors=? acct=\"oracle\" exe=\"/usr/sbin/sshd\" hostname=203.0.113.77 addr=203.0.113.77 terminal=ssh res=failed'",
    "node=web-01 type=USER_LOGIN msg=audit(1736899204.000:100001): pid=311 uid=0 auid=1001 ses=3 msg='op=login acct=\"bob\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.7 terminal=ssh res=failed'",
    "type=AVC msg=audit(1736899205.000:100002): apparmor=\"DENIED\" operation=\"open\" profile=\"docker-default\" name=\"/etc/shadow\" pid=99 comm=\"cat\"\ntype=SYSCALL msg=audit(1736899205.000:100002): arch=c000003e syscall=257 success=no exit=-13 pid=99 auid=4294967295 uid=0 comm=\"cat\" exe=\"/usr/bin/cat\"",
    "type=1300 audit(1736899206.000:100003): arch=c000003e syscall=59 success=yes exit=0 pid=1 uid=0\ntype=1327 audit(1736899206.000:100003): proctitle=2F62696E2F7368",
];

const CEF_SEEDS: &[&str] = &[
    "Acme|EDR|4.2|1001|Suspicious process blocked|8|src=10.20.0.11 dst=203.0.113.77 dpt=443 act=blocked suser=deploy cs1Label=rule cs1=curl-to-raw-ip",
    "Security|threatmanager|1.0|100|worm successfully stopped|10|src=10.0.0.1 dst=2.1.2.2 spt=1232",
    "Vendor|Prod|1.0|1|name with \\| pipe|5|msg=line1\\nline2 cs1=a\\=b cs1Label=x",
    "Acme|FW|2|deny|Denied|High|src=10.0.0.1 suser=alice rt=Nov 26 2025 09:00:00 act=deny",
    "a|b|c|d|e|f|",
];

const JSON_SEEDS: &[&str] = &[
    // laurel: one auditd event as one JSON object.
    "\"ID\":\"1736899206.123:100003\",\"NODE\":\"web-01\",\"SYSCALL\":{\"arch\":\"0xc000003e\",\"syscall\":59,\"success\":\"yes\",\"exit\":0,\"pid\":4242,\"auid\":1001,\"uid\":0,\"comm\":\"curl\",\"exe\":\"/usr/bin/curl\"},\"EXECVE\":{\"argc\":2,\"ARGV\":[\"curl\",\"-s\"]},\"PROCTITLE\":{\"ARGV\":[\"curl\",\"-s\"]}}",
    "\"ts\":\"2025-01-15T00:00:08.000Z\",\"level\":\"error\",\"service\":\"billing\",\"event\":\"permission_denied\",\"user\":\"eve\",\"src_ip\":\"10.9.8.7\",\"mfa\":false,\"attempt\":3,\"latency_ms\":12.5,\"http\":{\"method\":\"GET\",\"path\":\"/admin\",\"status\":403}}",
    "\"event\":\"login_failed\",\"user\":\"bob\",\"src_ip\":\"2001:db8::1\"}",
    "\"a\":[1,2,{\"b\":null}],\"c\":\"\\u0000\\ud83d\\ude00\"}",
    "}",
    "\"deep\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
];

const NETFILTER_SEEDS: &[&str] = &[
    "[123456.789012] [UFW BLOCK] IN=eth0 OUT= MAC=00:11:22:33:44:55:66:77:88:99:aa:bb:08:00 SRC=203.0.113.7 DST=192.0.2.10 LEN=60 TOS=0x00 PREC=0x00 TTL=50 ID=1 DF PROTO=TCP SPT=51234 DPT=22 WINDOW=64240 RES=0x00 SYN URGP=0",
    "IPTABLES-DROP: IN=ens3 OUT= SRC=198.51.100.9 DST=192.0.2.1 LEN=40 PROTO=UDP SPT=53 DPT=123 LEN=20",
    "nft input reject: IN=enp1s0 OUT= SRC=2001:db8::1 DST=2001:db8::2 LEN=80 PROTO=ICMPv6 TYPE=128 CODE=0",
    "[UFW ALLOW] IN= OUT=eth0 SRC=10.0.0.1 DST=10.0.0.2 PROTO=TCP SPT=1 DPT=2",
    "OUT= MAC= SRC= DST= PROTO=",
];

const ACCESS_SEEDS: &[&str] = &[
    "15/Jan/2025:00:00:07 +0000] \"POST /login HTTP/1.1\" 401 12 \"-\" \"python-requests/2.31.0\"",
    "10/Oct/2000:13:55:36 -0700] \"GET /apache_pb.gif HTTP/1.0\" 200 2326",
    "15/Jan/2025:00:00:05 +0000] \"GET /api/v2/search?q=%27%20OR%201%3D1-- HTTP/1.1\" 500 0 \"https://example.com/\" \"sqlmap/1.7.2#stable (https://sqlmap.org)\"",
    "29/Feb/2024:23:59:60 +1400] \"-\" 400 - \"-\" \"-\"",
];

/// Two control bytes (cap, split), then a TCP stream of both framings.
const FRAMING_SEEDS: &[&str] = &[
    "\u{1}\u{5}<13>lf one\n9 <13>octet<13>lf two\n",
    "\u{2}\u{20}26 <13>1 - - - - - a\nb c d e fg<13>tail without newline",
    "\u{1}\u{0}999999999 xx",
];

const JOURNAL_SEEDS: &[&str] = &[
    r#"{"__CURSOR":"s=ab;i=1;b=cd","__REALTIME_TIMESTAMP":"1736935200000000","_HOSTNAME":"web-1","SYSLOG_IDENTIFIER":"sshd","_PID":"123","PRIORITY":"5","SYSLOG_FACILITY":"10","MESSAGE":"Failed password for root from 203.0.113.9 port 50000 ssh2"}"#,
    r#"{"MESSAGE":[104,105,255],"SYSLOG_IDENTIFIER":null,"_COMM":"x","__REALTIME_TIMESTAMP":"1"}"#,
    "-- cursor: s=1",
];

const CHECKPOINT_SEEDS: &[&str] = &[
    "vedette-tail-checkpoints 1\n{\"dev\":1,\"ino\":2,\"fp_hash\":\"fbba3bceed42eb52\",\"fp_len\":157,\"offset\":157,\"source_id\":\"file:1feb8f0bfa20d7a9\",\"path\":\"/var/log/auth.log\"}\n",
    "vedette-tail-checkpoints 1\n",
    "garbage",
];

/// passwd, group and shadow, NUL-separated.
const ACCOUNTS_SEEDS: &[&str] = &[
    "root:x:0:0:root:/root:/bin/bash\nalice:x:1000:1000::/home/alice:/bin/bash\n\u{0}sudo:x:27:alice\nalice:x:1000:\n\u{0}alice:!$y$:19500:0:99999:7:::\n",
    "::::\n\u{0}:::\n",
];

const BASELINE_SEEDS: &[&str] = &[
    "vedette-baseline 2\n00000000000000ff 29000000\n",
    "vedette-baseline 2\nzz 1\n",
];

/// Control bytes (even first byte: flip at offset 0x0102; odd: cut there), then payloads.
const SPOOL_SEGMENT_SEEDS: &[&str] = &[
    "\u{0}\u{1}\u{2}{\"a\":1};{\"b\":2};{\"c\":3}",
    "\u{1}\u{0}\u{40};;\u{89}VDSPOOL;x",
    "\u{7e}\u{0}\u{0}one",
];

/// NDJSON batch bodies: the agent's lines, a line of another tenant, lines the aggregator
/// must refuse.
const BATCH_LINES_SEEDS: &[&str] = &[
    r#"{"time":1700000000123,"class_uid":3002,"type_uid":300201,"severity_id":2,"metadata":{"uid":"u1","tenant_uid":"acme"},"user":{"name":"bob"},"src_endpoint":{"ip":"203.0.113.7"}}"#,
    "{\"time\":1,\"class_uid\":0,\"type_uid\":0,\"severity_id\":0,\"metadata\":{\"uid\":\"x\",\"tenant_uid\":\"other\"}}\n{\"time\":2,\"class_uid\":4001,\"type_uid\":400105,\"severity_id\":1,\"metadata\":{\"uid\":\"y\",\"tenant_uid\":\"acme\"},\"device\":{\"hostname\":\"h\\u00e9\"},\"dst_endpoint\":{\"ip\":\"2001:db8::1\"}}\n",
    r#"{"time":1,"class_uid":0,"type_uid":0,"severity_id":0,"metadata":{}}"#,
    "",
];

/// A batch header frame (4-byte length, JSON) and a payload after it.
const BATCH_FRAME_SEEDS: &[&str] = &[
    concat!(
        "\0\0\u{1}\0",
        r#"{"agent_id":"agt-0123456789abcdef","epoch":1,"seq":1,"events":1,"first_time":0,"last_time":0,"created_ms":0,"raw_len":9,"zstd_len":4,"checksum":0,"watermarks":[]}"#,
        "                                                                                              ",
        "zstd"
    ),
    "\0\0\0\u{2}{}",
];

/// Enrollment requests: a good one (token shape, real CSR), and one bad in every field.
const ENROLL_SEEDS: &[&str] = &[GOOD_ENROLL, BAD_ENROLL];
const GOOD_ENROLL: &str = r#"{"token": "0123456789abcdef.00112233445566778899aabbccddeeff", "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nMIHKMHMCAQAwETEPMA0GA1UEAwwGd2ViLTAxMFkwEwYHKoZIzj0CAQYIKoZIzj0D\nAQcDQgAEVV82HymjoEUsT5TmdxA5YLDXpXsNHJxF5F1RcSJsyUMr54Zugjsz0JPi\nXl0N/7iujryNfZTTfwBeQvSqW1hGI6AAMAoGCCqGSM49BAMCA0cAMEQCICsJu5zo\npvW9KVvkdG4wBeOKQzhJI3sx8YcdOtZDP11TAiBr0UmnOcCrP42XLNVBibdJ0qVt\nY4de183F1YWF+derhQ==\n-----END CERTIFICATE REQUEST-----\n", "hostname": "web-01"}"#;
const BAD_ENROLL: &str = r#"{"token": "zz.00", "csr_pem": "-----BEGIN CERTIFICATE REQUEST-----\nMIHXMHMCAQAwETEPMA0GA1UEAwwGd2ViLTAxMFkwEwYHKoZIzj0CAQYIKoZIzj0D\nAQcDQgAEVV82HymjoEUsT5TmdxA5YLDXpXsNHJxF5F1RcSJsyUMr54Zugjsz0JPi\nXl0N/7iujryNfZTTfwBeQvSqW1hGI6AAMAoGCCqGSM49BAMCA0cAMEQCICsJu5zo\npvW9KVvkdG4wBeOKQzhJI3sx8YcdOtZDP11TAiBr0UmnOcCrP42XLNVBibdJ0qVt\nY4de183F1YWF+derhQ==\n-----END CERTIFICATE REQUEST-----\n", "hostname": "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#;

/// One module per fuzz target: `name => |data| body(data), seeds: SEEDS;`.
macro_rules! fuzz_props {
    ($($name:ident => $body:expr, seeds: $seeds:expr;)*) => {$(
        mod $name {
            use super::*;

            fn run(data: &[u8]) {
                let body: fn(&[u8]) = $body;
                body(data);
            }

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn arbitrary_bytes(data in bytes()) {
                    run(&data);
                }

                #[test]
                fn arbitrary_utf8(s in utf8()) {
                    run(s.as_bytes());
                }

                #[test]
                fn nul_bytes(data in with_nuls($seeds)) {
                    run(&data);
                }

                #[test]
                fn invalid_utf8(data in super::invalid_utf8($seeds)) {
                    run(&data);
                }

                #[test]
                fn multibyte_chars(data in multibyte($seeds)) {
                    run(&data);
                }
            }

            #[test]
            fn seeds_as_given() {
                for s in $seeds {
                    run(s.as_bytes());
                }
            }

            /// Every crash the fuzzer found for this target, minimized, in
            /// `fuzz/regressions/<target>/`.
            #[test]
            fn fuzz_regressions() {
                for data in regressions(stringify!($name)) {
                    run(&data);
                }
            }

            #[test]
            fn one_mib_random_bytes() {
                run(&random_mib());
            }

            #[test]
            fn one_mib_sshd_message() {
                run(&sshd_message_mib());
            }

            #[test]
            fn one_mib_sshd_line() {
                run(&sshd_line_mib());
            }
        }
    )*};
}

fuzz_props! {
    envelope => fuzzing::envelope, seeds: SYSLOG_SEEDS;
    syslog_5424 => fuzzing::syslog, seeds: SYSLOG_SEEDS;
    normalize => fuzzing::normalize, seeds: FILE_SEEDS;
    sshd => |d| fuzzing::program("sshd", d), seeds: SSHD_SEEDS;
    sudo => |d| {
        // As fuzz/fuzz_targets/sudo.rs: the first byte picks the program (odd: su).
        let Some((&pick, msg)) = d.split_first() else { return };
        fuzzing::program(if pick & 1 == 0 { "sudo" } else { "su" }, msg);
    }, seeds: SUDO_SEEDS;
    account => |d| {
        // As fuzz/fuzz_targets/account.rs: the first byte picks the tool.
        const TOOLS: [&str; 13] = [
            "useradd", "userdel", "usermod", "groupadd", "groupdel", "groupmod", "passwd",
            "chpasswd", "chage", "gpasswd", "newusers", "chsh", "chfn",
        ];
        let Some((&pick, msg)) = d.split_first() else { return };
        fuzzing::program(TOOLS[usize::from(pick) % TOOLS.len()], msg);
    }, seeds: ACCOUNT_SEEDS;
    dropbear => |d| fuzzing::program("dropbear", d), seeds: DROPBEAR_SEEDS;
    login => |d| fuzzing::program("login", d), seeds: LOGIN_SEEDS;
    auditd => fuzzing::auditd, seeds: AUDITD_SEEDS;
    cef => |d| fuzzing::normalize(&prefixed(b"CEF:0|", d)), seeds: CEF_SEEDS;
    json => fuzzing::json, seeds: JSON_SEEDS;
    netfilter => |d| {
        // As fuzz/fuzz_targets/netfilter.rs: `IN=` in front unless the data has one.
        if d.windows(3).any(|w| w == b"IN=") {
            fuzzing::normalize(d);
        } else {
            fuzzing::normalize(&prefixed(b"IN=", d));
        }
    }, seeds: NETFILTER_SEEDS;
    access_log => |d| fuzzing::normalize(&prefixed(b"203.0.113.7 - - [", d)),
        seeds: ACCESS_SEEDS;
    stream_framing => fuzzing::stream_framing, seeds: FRAMING_SEEDS;
    journal => fuzzing::journal, seeds: JOURNAL_SEEDS;
    checkpoint => fuzzing::checkpoint, seeds: CHECKPOINT_SEEDS;
    accounts => fuzzing::accounts, seeds: ACCOUNTS_SEEDS;
    baseline => fuzzing::baseline, seeds: BASELINE_SEEDS;
    spool_segment => fuzzing::spool_segment, seeds: SPOOL_SEGMENT_SEEDS;
    batch_lines => aggregator::batch_lines, seeds: BATCH_LINES_SEEDS;
    batch_frame => aggregator::batch_frame, seeds: BATCH_FRAME_SEEDS;
    enroll => |d| {
        let _issued = aggregator::enroll(d);
    }, seeds: ENROLL_SEEDS;
}

/// The good enrollment seed gets a certificate, so the body reaches the signing and the
/// read-back check; the bad one does not.
#[test]
fn the_good_enrollment_seed_is_signed_and_the_bad_one_refused() {
    assert!(aggregator::enroll(GOOD_ENROLL.as_bytes()));
    assert!(!aggregator::enroll(BAD_ENROLL.as_bytes()));
}

/// `csr_der` takes DER, which no text seed can hold: its seed is a real CSR (P-256, made
/// with `openssl req -new`), given as is, with bytes flipped, and cut short.
mod csr_der {
    use super::*;

    const SEED_HEX: &str = "3081ca30730201003011310f300d06035504030c067765622d30313059301306072a8648ce3d020106082a8648ce3d03010703420004555f361f29a3a0452c4f94e677103960b0d7a57b0d1c9c45e45d5171226cc9432be7866e823b33d093e25e5d0dffb8ae8ebc8d7d94d37f005e42f4aa5b584623a000300a06082a8648ce3d040302034700304402202b09bb9ce8a6f5bd295be4746e3005e38a433849237b31f1871d3ad6433f5d5302206bd149a739c0ab3f8d972cd54189b749d2a56d63875ed7cdc5d58585f9d7ab85";

    fn seed() -> Vec<u8> {
        (0..SEED_HEX.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&SEED_HEX[i..i + 2], 16).expect("hex"))
            .collect()
    }

    #[test]
    fn the_seed_signs_and_reads_back() {
        assert!(aggregator::csr_der(&seed()));
    }

    #[test]
    fn fuzz_regressions() {
        for data in regressions("csr_der") {
            let _issued = aggregator::csr_der(&data);
        }
    }

    #[test]
    fn one_mib_random_bytes() {
        assert!(!aggregator::csr_der(&random_mib()));
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn arbitrary_bytes(data in bytes()) {
            let _issued = aggregator::csr_der(&data);
        }

        #[test]
        fn flipped_bytes(flips in prop::collection::vec((any::<Index>(), any::<u8>()), 1..4)) {
            let mut der = seed();
            for (at, x) in flips {
                let i = at.index(der.len());
                der[i] ^= x;
            }
            let _issued = aggregator::csr_der(&der);
        }

        #[test]
        fn cut_short(at in any::<Index>()) {
            let der = seed();
            let _issued = aggregator::csr_der(&der[..at.index(der.len())]);
        }
    }
}
