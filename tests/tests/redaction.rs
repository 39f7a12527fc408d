//! Redaction at the edge (`normalize --fold` runs the edge stage as `run` does): a password
//! typed at sshd's user prompt, a token in a URL and a custom pattern never leave the host
//! in clear, in any field or in `raw_data`; the same secret hashes the same way.

use serde_json::Value;

use crate::support::json::get;
use crate::support::{self, Scratch};

const PASSWORD: &str = "P@ssw0rd!2024";
const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0cGFydA";
const CARD: &str = "4111111111111111";

#[test]
fn secrets_are_replaced_by_a_keyed_hash_everywhere() {
    let scratch = Scratch::new("redaction");
    let log = scratch.write(
        "auth.log",
        format!(
            "Jan 15 10:00:00 web-1 sshd[1]: Invalid user {PASSWORD} from 203.0.113.9 port 4242\n\
             Jan 15 10:00:01 web-1 sshd[1]: Failed password for invalid user {PASSWORD} from 203.0.113.9 port 4242 ssh2\n\
             Jan 15 10:00:02 web-1 sshd[1]: Invalid user oracle from 203.0.113.9 port 4243\n\
             Jan 15 10:00:03 web-1 nginx[2]: 198.51.100.7 - - [15/Jan/2025:10:00:03 +0000] \"GET /api/v1/items?access_token={TOKEN}&page=2 HTTP/1.1\" 200 512 \"-\" \"curl/8.0\"\n\
             Jan 15 10:00:04 web-1 shop[3]: payment accepted card={CARD} amount=12.00\n\
             Jan 15 10:00:05 web-1 audisp-syslog[4]: type=USER_LOGIN msg=audit(1736935205.000:77): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct=\"{PASSWORD}\" exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.9 terminal=ssh res=failed'\n"
        )
        .as_bytes(),
    );
    let cfg = scratch.write(
        "agent.toml",
        format!(
            "[agent]\nstate_dir = \"{}\"\n[redaction]\npatterns = ['card=(\\d{{16}})']\n",
            scratch.path("state").display()
        )
        .as_bytes(),
    );
    std::fs::create_dir_all(scratch.path("state")).expect("state dir");
    let cfg_s = cfg.display().to_string();
    let run = || support::normalize_with(&["--fold", "--config", &cfg_s], &[&log]);
    let evs = run();
    assert_eq!(evs.len(), 6);
    let text: String = evs.iter().map(|e| format!("{e}\n")).collect();
    for secret in [PASSWORD, TOKEN, CARD] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
    }
    let user = |i: usize| {
        get(&evs[i], "user.name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    assert!(user(0).starts_with("redacted:"), "{}", user(0));
    assert_eq!(user(0), user(1), "the same secret hashes the same way");
    assert_eq!(
        user(2),
        "oracle",
        "account names an attacker tries are kept"
    );
    let raw0 = get(&evs[0], "raw_data")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        raw0.contains(&user(0)),
        "raw_data carries the same hash: {raw0}"
    );
    let url = get(&evs[3], "http_request.url.url_string")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(
        url.contains("access_token=redacted:") && url.contains("page=2"),
        "{url}"
    );
    // auditd's fields are rendered once into `unmapped.auditd`; a secret in them is
    // replaced there too.
    assert_eq!(
        get(&evs[5], "unmapped.auditd.USER_LOGIN.acct").and_then(Value::as_str),
        Some(user(0).as_str()),
        "{}",
        evs[5]
    );
    // The key lives in the state dir: a second run hashes alike.
    let again = run();
    assert_eq!(get(&again[0], "user.name"), get(&evs[0], "user.name"));
}

/// auditd writes a value with a space (a passphrase typed as the user name) and every
/// multi-argument proctitle in hex: the secret is found decoded and replaced in its hex
/// form too (still valid hex, decoding to the hash). A token in a referrer (a reset link
/// followed) is a token. Each leaked before.
#[test]
fn secrets_in_auditd_hex_and_in_referrers_are_replaced_too() {
    const PASSPHRASE: &str = "correct horse Battery9";
    const DB_PASSWORD: &str = "S3cretPass";
    const RESET: &str = "k3yFr0mAR3setL1nk";
    let hex = |s: &[u8]| -> String { s.iter().map(|b| format!("{b:02X}")).collect() };
    let scratch = Scratch::new("redaction-hex");
    let log = scratch.write(
        "audit.log",
        format!(
            "Jan 15 10:00:05 web-1 audisp-syslog[4]: type=USER_LOGIN msg=audit(1736935205.000:77): pid=1 uid=0 auid=4294967295 ses=4294967295 msg='op=login acct={} exe=\"/usr/sbin/sshd\" hostname=? addr=203.0.113.9 terminal=ssh res=failed'\n\
             Jan 15 10:00:06 web-1 audisp-syslog[4]: type=SYSCALL msg=audit(1736935206.000:78): arch=c000003e syscall=59 success=yes exit=0 a0=1 a1=2 a2=3 a3=4 items=1 ppid=10 pid=11 auid=1000 uid=1000 gid=1000 euid=1000 suid=1000 fsuid=1000 egid=1000 sgid=1000 fsgid=1000 tty=pts0 ses=1 comm=\"mysql\" exe=\"/usr/bin/mysql\" key=(null)\n\
             Jan 15 10:00:06 web-1 audisp-syslog[4]: type=EXECVE msg=audit(1736935206.000:78): argc=2 a0=\"mysql\" a1=\"-p{DB_PASSWORD}\"\n\
             Jan 15 10:00:06 web-1 audisp-syslog[4]: type=PROCTITLE msg=audit(1736935206.000:78): proctitle={}\n\
             Jan 15 10:00:06 web-1 audisp-syslog[4]: type=EOE msg=audit(1736935206.000:78):\n\
             Jan 15 10:00:07 web-1 nginx[2]: 198.51.100.7 - - [15/Jan/2025:10:00:07 +0000] \"GET /account HTTP/1.1\" 200 512 \"https://shop.example/reset?token={RESET}\" \"curl/8.0\"\n",
            hex(PASSPHRASE.as_bytes()),
            hex(format!("mysql\0-p{DB_PASSWORD}").as_bytes()),
        )
        .as_bytes(),
    );
    let cfg = scratch.write(
        "agent.toml",
        format!(
            "[agent]\nstate_dir = \"{}\"\n[redaction]\npatterns = ['-p(\\S+)']\n",
            scratch.path("state").display()
        )
        .as_bytes(),
    );
    std::fs::create_dir_all(scratch.path("state")).expect("state dir");
    let cfg_s = cfg.display().to_string();
    let evs = support::normalize_with(&["--fold", "--config", &cfg_s], &[&log]);
    assert_eq!(evs.len(), 3);
    let text: String = evs.iter().map(|e| format!("{e}\n")).collect();
    for secret in [PASSPHRASE, DB_PASSWORD, RESET] {
        assert!(!text.contains(secret), "{secret} leaked:\n{text}");
        let h = hex(secret.as_bytes());
        assert!(!text.contains(&h), "{secret} leaked as {h}:\n{text}");
    }
    let referrer = get(&evs[2], "http_request.referrer")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(referrer.contains("token=redacted:"), "{referrer}");
}
