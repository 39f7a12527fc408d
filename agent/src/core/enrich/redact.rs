//! Redaction at the edge: people type passwords into the user-name prompt (sshd logs them
//! as `Invalid user <password>`), and clients put tokens in URL query strings. Such values
//! are replaced by a keyed hash (`redacted:` + 16 hex digits of HMAC-SHA256 under the
//! agent's key), everywhere in the event, `raw_data` included: the same secret still
//! correlates across events and hosts of one key, but is never shipped in clear.

use regex::Regex;
use ring::hmac;
use vedette_schemas::ocsf::{Class, Event, Process, Status, Text};

/// Query parameter names that carry credentials (compared without case).
const TOKEN_PARAMS: &[&str] = &[
    "token",
    "access_token",
    "refresh_token",
    "id_token",
    "api_key",
    "apikey",
    "key",
    "secret",
    "client_secret",
    "password",
    "passwd",
    "pwd",
    "pass",
    "auth",
    "authorization",
    "session",
    "sessionid",
    "sid",
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "code",
    "private_token",
    "api-key",
    "x-api-key",
    "jwt",
    "access-token",
    "auth_token",
];

/// Redaction settings.
#[derive(Debug, Clone)]
pub struct RedactConfig {
    /// Failed logins whose user name looks like a secret (built in, on).
    pub secret_user_names: bool,
    /// URL query parameters named like tokens (built in, on).
    pub token_params: bool,
    /// Custom patterns: a match (its first capture group when it has one) is redacted in
    /// the message, `raw_data` and every string field.
    pub patterns: Vec<Regex>,
}

impl Default for RedactConfig {
    fn default() -> Self {
        Self {
            secret_user_names: true,
            token_params: true,
            patterns: Vec::new(),
        }
    }
}

/// The redactor: settings plus the key.
#[derive(Debug)]
pub struct Redactor {
    cfg: RedactConfig,
    key: hmac::Key,
    /// Values redacted so far.
    pub redacted: u64,
}

impl Redactor {
    /// A redactor hashing under `key` (the agent keeps one per host, in its state dir).
    pub fn new(cfg: RedactConfig, key: &[u8]) -> Self {
        Self {
            cfg,
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
            redacted: 0,
        }
    }

    /// The replacement of `secret`.
    pub fn hash(&self, secret: &str) -> String {
        let tag = hmac::sign(&self.key, secret.as_bytes());
        let mut out = String::with_capacity(9 + 16);
        out.push_str("redacted:");
        for b in &tag.as_ref()[..8] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Finds the secrets in `ev` and replaces each wherever it appears.
    pub fn apply(&mut self, ev: &mut Event) {
        let mut secrets: Vec<String> = Vec::new();
        // A token parameter's value is replaced where it stands as that parameter's value
        // (`token=VALUE`), not wherever its text appears: a client sending
        // `?token=/etc/passwd` or `&token=UNION` wiped its own path or payload from every
        // field of the record.
        let mut params: Vec<(String, String)> = Vec::new();
        // Not a logon that succeeded (a failure, a step, an unknown outcome), and not an
        // account this host knows (enrichment gave it a uid or an account): a name that
        // looks like a password is one typed at the user prompt.
        if self.cfg.secret_user_names
            && ev.class() == Class::Authentication
            && ev.header.status != Some(Status::Success)
            && let Some(u) = ev.user.as_ref()
            && u.uid.is_none()
            && u.account.is_none()
            && let Some(name) = u.name.as_deref()
            && looks_like_secret(name)
        {
            secrets.push(name.to_owned());
        }
        if self.cfg.token_params {
            if let Some(q) = ev
                .http_request
                .as_ref()
                .and_then(|r| r.url.as_ref())
                .and_then(|u| u.query_string.as_deref())
            {
                token_values(q, &mut params);
            }
            // Every URL the record holds: the request's, a referrer (a reset link or an
            // OAuth redirect carries its token into the next request's), one in a command
            // line (`curl https://…?access_token=…`) or in an error log's fields.
            let mut texts: Vec<&str> = [
                ev.raw_data.as_deref(),
                ev.message.as_deref(),
                ev.http_request
                    .as_ref()
                    .and_then(|r| r.url.as_ref())
                    .and_then(|u| u.url_string.as_deref()),
                ev.http_request.as_ref().and_then(|r| r.referrer.as_deref()),
            ]
            .into_iter()
            .flatten()
            .collect();
            for p in [
                ev.process.as_deref(),
                ev.actor.as_ref().and_then(|a| a.process.as_deref()),
            ]
            .into_iter()
            .flatten()
            {
                cmd_lines(p, &mut texts);
            }
            for t in texts {
                url_token_values(t, &mut params);
            }
        }
        // Patterns read the decoded command lines too: auditd writes an argument with a
        // space, and a whole multi-argument proctitle, in hex, where no pattern matches.
        let mut texts: Vec<&str> = [ev.raw_data.as_deref(), ev.message.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !self.cfg.patterns.is_empty() {
            for p in [
                ev.process.as_deref(),
                ev.actor.as_ref().and_then(|a| a.process.as_deref()),
            ]
            .into_iter()
            .flatten()
            {
                cmd_lines(p, &mut texts);
            }
        }
        for re in &self.cfg.patterns {
            for &text in &texts {
                for c in re.captures_iter(text) {
                    if let Some(m) = c.get(1).or_else(|| c.get(0))
                        && !m.as_str().is_empty()
                    {
                        secrets.push(m.as_str().to_owned());
                    }
                }
            }
        }
        if secrets.is_empty() && params.is_empty() {
            return;
        }
        secrets.sort();
        secrets.dedup();
        params.sort();
        params.dedup();
        self.redacted += (secrets.len() + params.len()) as u64;
        let mut pairs: Vec<(String, String)> = secrets
            .into_iter()
            .map(|s| {
                let h = self.hash(&s);
                (s, h)
            })
            .collect();
        pairs.extend(params.into_iter().map(|(k, v)| {
            let h = self.hash(&v);
            (format!("{k}={v}"), format!("{k}={h}"))
        }));
        // Longest first, so a secret that contains another is replaced whole.
        pairs.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then(a.0.cmp(&b.0)));
        replace_everywhere(ev, &pairs);
    }
}

/// The command lines of `p` and its ancestors.
fn cmd_lines<'e>(p: &'e Process, out: &mut Vec<&'e str>) {
    out.extend(p.cmd_line.as_deref());
    if let Some(pp) = p.parent_process.as_deref() {
        cmd_lines(pp, out);
    }
}

/// Each secret as auditd writes a value it hex-encodes (upper case; lower case too, as
/// other tools write it), with its replacement in the same form, so the record still
/// decodes. Only for secrets of 4 bytes or more: shorter hex runs too often by chance.
fn hex_pairs(pairs: &[(String, String)]) -> Vec<(String, String)> {
    let hex = |s: &str, upper: bool| -> String {
        s.bytes()
            .map(|b| {
                if upper {
                    format!("{b:02X}")
                } else {
                    format!("{b:02x}")
                }
            })
            .collect()
    };
    pairs
        .iter()
        .filter(|(s, _)| s.len() >= 4)
        .flat_map(|(s, h)| [(hex(s, true), hex(h, true)), (hex(s, false), hex(h, false))])
        .collect()
}

/// Whether a user name is more likely a password typed at the user prompt than an account
/// name: account names are short, lower-case words (`[a-z_][a-z0-9._-]*`, maybe with a
/// trailing `$`); passwords mix classes (upper, digits, symbols) or run long.
pub fn looks_like_secret(name: &str) -> bool {
    let n = name.chars().count();
    if n < 6 {
        return false;
    }
    let lower = name.chars().any(|c| c.is_ascii_lowercase());
    let upper = name.chars().any(|c| c.is_ascii_uppercase());
    let digit = name.chars().any(|c| c.is_ascii_digit());
    let symbol = name
        .chars()
        .any(|c| !c.is_ascii_alphanumeric() && !"._-$".contains(c));
    let classes = [lower, upper, digit, symbol].iter().filter(|&&b| b).count();
    let account_like = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .trim_end_matches('$')
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c));
    if account_like {
        // Account names stay short (useradd's limit is 32, and few go past 20): a long one
        // with digits, or a very long one, is a passphrase.
        return n > 24 || (n >= 16 && digit);
    }
    symbol || classes >= 3 || (upper && digit) || n >= 16
}

/// The token-like parameters (name as written, value) of a query string.
fn token_values(query: &str, out: &mut Vec<(String, String)>) {
    let query = query.split('#').next().unwrap_or(query);
    for pair in query.split('&') {
        let Some((k, v)) = pair.split_once('=') else {
            continue;
        };
        if !v.is_empty() && TOKEN_PARAMS.iter().any(|t| t.eq_ignore_ascii_case(k)) {
            out.push((k.to_owned(), v.to_owned()));
        }
    }
}

/// The token-like parameters of every URL query in `text` (after a `?` or `&`), each value
/// running to the next `&`, `#`, quote or blank.
fn url_token_values(text: &str, out: &mut Vec<(String, String)>) {
    let b = text.as_bytes();
    let mut i = 0;
    while let Some(p) = memchr::memchr2(b'?', b'&', &b[i..]).map(|p| p + i) {
        i = p + 1;
        let rest = &text[i..];
        // The name is short: its `=` is looked for within it only (a line of `&` without
        // one was searched to its end from each).
        let head = &rest.as_bytes()[..rest.len().min(33)];
        let Some(eq) = memchr::memchr(b'=', head) else {
            continue;
        };
        let k = &rest[..eq];
        if k.is_empty() || !TOKEN_PARAMS.iter().any(|t| t.eq_ignore_ascii_case(k)) {
            continue;
        }
        let v = &rest[eq + 1..];
        let end = v
            .find(['&', '#', '"', '\'', ' ', '\t', '\n'])
            .unwrap_or(v.len());
        if end > 0 {
            out.push((k.to_owned(), v[..end].to_owned()));
        }
    }
}

fn replace_in(text: &mut Option<Text>, pairs: &[(String, String)]) {
    let Some(t) = text else { return };
    if !pairs.iter().any(|(s, _)| t.contains(s.as_str())) {
        return;
    }
    let mut v = t.to_string();
    for (s, h) in pairs {
        if v.contains(s.as_str()) {
            v = v.replace(s.as_str(), h);
        }
    }
    *t = Text::from(v);
}

/// Whether JSON text may hold `secret` in one of its strings: escaping changes only
/// control characters, `"` and `\`, so a secret without them is found as it is; one with
/// them is assumed present.
fn may_hold(json: &[u8], secret: &str) -> bool {
    secret.bytes().any(|c| c < 0x20 || c == b'"' || c == b'\\')
        || memchr::memmem::find(json, secret.as_bytes()).is_some()
}

fn replace_json(v: &mut serde_json::Value, pairs: &[(String, String)]) {
    match v {
        serde_json::Value::String(s) => {
            for (secret, h) in pairs {
                if s.contains(secret.as_str()) {
                    *s = s.replace(secret.as_str(), h);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| replace_json(x, pairs)),
        serde_json::Value::Object(m) => m.values_mut().for_each(|x| replace_json(x, pairs)),
        _ => {}
    }
}

/// A process's text fields, and its parent's.
fn replace_process(p: &mut Process, pairs: &[(String, String)]) {
    replace_in(&mut p.cmd_line, pairs);
    replace_in(&mut p.name, pairs);
    replace_in(&mut p.working_directory, pairs);
    if let Some(u) = &mut p.user {
        replace_in(&mut u.name, pairs);
    }
    if let Some(pp) = &mut p.parent_process {
        replace_process(pp, pairs);
    }
}

/// Replaces the secrets in every string field the parsers fill from a record's text. A
/// field missed here would leak: the tests scan the whole serialized event.
fn replace_everywhere(ev: &mut Event, pairs: &[(String, String)]) {
    let hex = hex_pairs(pairs);
    replace_in(&mut ev.raw_data, pairs);
    replace_in(&mut ev.raw_data, &hex);
    replace_in(&mut ev.message, pairs);
    replace_in(&mut ev.message, &hex);
    replace_in(&mut ev.status_detail, pairs);
    if let Some(u) = &mut ev.user {
        replace_in(&mut u.name, pairs);
    }
    if let Some(a) = &mut ev.actor {
        if let Some(u) = &mut a.user {
            replace_in(&mut u.name, pairs);
        }
        if let Some(p) = &mut a.process {
            replace_process(p, pairs);
        }
    }
    if let Some(p) = &mut ev.process {
        replace_process(p, pairs);
    }
    if let Some(r) = &mut ev.http_request {
        if let Some(u) = &mut r.url {
            replace_in(&mut u.url_string, pairs);
            replace_in(&mut u.query_string, pairs);
            replace_in(&mut u.path, pairs);
        }
        replace_in(&mut r.referrer, pairs);
    }
    if let Some(obs) = &mut ev.observables {
        for o in obs {
            replace_in(&mut o.value, pairs);
        }
    }
    if let Some(u) = &mut ev.unmapped {
        // A section the parser rendered that holds a secret is edited as a map.
        let holding: Vec<&'static str> = u
            .rendered()
            .iter()
            .filter(|(_, o)| pairs.iter().any(|(s, _)| may_hold(o.as_bytes(), s)))
            .map(|(name, _)| *name)
            .collect();
        for name in holding {
            u.materialize(name);
        }
        if let Some(v) = &mut u.vedette {
            replace_in(&mut v.parse_error, pairs);
        }
        for v in u.other.values_mut() {
            replace_json(v, pairs);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_like_names_are_told_from_account_names() {
        for secret in [
            "P@ssw0rd!",
            "Summer2024",
            "hunter2hunter2hunter2x",
            "Tr0ub4dor&3",
            "correcthorsebatterystaple",
        ] {
            assert!(looks_like_secret(secret), "{secret}");
        }
        for account in [
            "root",
            "admin",
            "oracle",
            "test123",
            "postgres",
            "www-data",
            "svc_backup",
            "ubuntu",
            "deploy$",
            "a.b",
        ] {
            assert!(!looks_like_secret(account), "{account}");
        }
    }

    #[test]
    fn token_parameters_are_found_in_urls() {
        let mut v = Vec::new();
        token_values("user=bob&access_token=abc123&x=1#frag", &mut v);
        token_values("Token=zzz&page=2", &mut v);
        url_token_values(
            r#"GET /api?user=bob&access_token=abc123&x=1 HTTP/1.1" "https://x/login?session=REF" curl https://a/v1?private_token=P"#,
            &mut v,
        );
        let v: Vec<(&str, &str)> = v.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(
            v,
            [
                ("access_token", "abc123"),
                ("Token", "zzz"),
                ("access_token", "abc123"),
                ("session", "REF"),
                ("private_token", "P"),
            ]
        );
    }

    /// A password typed at the user prompt is one in any logon that did not succeed (a
    /// step like sshd's `Postponed`, an unknown outcome), not only in a failure; a name
    /// this host's accounts know (enrichment gave it a uid) is an account, never hashed.
    #[test]
    fn a_typed_password_is_redacted_in_any_unsuccessful_logon_but_an_account_is_not() {
        use vedette_schemas::ocsf::{Product, User};
        let mut r = Redactor::new(RedactConfig::default(), b"k");
        let logon = |status: Status, uid: Option<&str>| {
            let mut ev = Event::new(Class::Authentication, 1, 0, Product::default());
            ev.header.status = Some(status);
            ev.user = Some(User {
                name: Some("Qx7!secretC".into()),
                uid: uid.map(Into::into),
                ..User::default()
            });
            ev.message = Some("Postponed keyboard-interactive for invalid user Qx7!secretC".into());
            ev
        };
        let mut step = logon(Status::Other, None);
        r.apply(&mut step);
        assert!(!step.message.as_deref().unwrap().contains("Qx7!secretC"));
        let mut known = logon(Status::Failure, Some("1005"));
        r.apply(&mut known);
        assert!(known.message.as_deref().unwrap().contains("Qx7!secretC"));
    }

    /// A token's value is replaced where it stands as the parameter's value: a client
    /// choosing its token's text (its own path, an IP, `UNION`) wiped that text from every
    /// field of its record.
    #[test]
    fn a_token_value_is_replaced_only_as_the_parameters_value() {
        use vedette_schemas::ocsf::{HttpRequest, Product, Url};
        let mut r = Redactor::new(RedactConfig::default(), b"k");
        let mut ev = Event::new(Class::HttpActivity, 3, 0, Product::default());
        let line = r#"203.0.113.66 - - [26/Nov/2026:10:00:01 +0000] "GET /etc/passwd?token=/etc/passwd&q=UNION HTTP/1.1" 200 1 "-" "-""#;
        ev.raw_data = Some(line.into());
        ev.http_request = Some(Box::new(HttpRequest {
            url: Some(Url {
                path: Some("/etc/passwd".into()),
                query_string: Some("token=/etc/passwd&q=UNION".into()),
                url_string: Some("/etc/passwd?token=/etc/passwd&q=UNION".into()),
                ..Url::default()
            }),
            ..HttpRequest::default()
        }));
        r.apply(&mut ev);
        let raw = ev.raw_data.as_deref().unwrap();
        let url = ev.http_request.as_ref().unwrap().url.as_ref().unwrap();
        assert_eq!(url.path.as_deref(), Some("/etc/passwd"));
        assert!(raw.starts_with("203.0.113.66 - - ["), "{raw}");
        assert!(raw.contains("GET /etc/passwd?token=redacted:"), "{raw}");
        assert!(!raw.contains("token=/etc/passwd"), "{raw}");
        assert!(
            url.query_string
                .as_deref()
                .unwrap()
                .starts_with("token=redacted:")
        );
    }

    #[test]
    fn the_same_secret_hashes_the_same_and_keys_differ() {
        let a = Redactor::new(RedactConfig::default(), b"key-a");
        let b = Redactor::new(RedactConfig::default(), b"key-b");
        assert_eq!(a.hash("s3cret!"), a.hash("s3cret!"));
        assert_ne!(a.hash("s3cret!"), a.hash("s3cret?"));
        assert_ne!(a.hash("s3cret!"), b.hash("s3cret!"));
        assert!(a.hash("x").starts_with("redacted:") && a.hash("x").len() == 25);
    }
}
