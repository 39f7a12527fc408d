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
