//! Which senders a TLS syslog listener takes, by the names in their client certificates
//! (RFC 5425 §5.2, rsyslog's `PermittedPeer`, syslog-ng's `trusted-dn`): a certificate
//! from the configured CA proves a sender is one of ours, its name says which. The chain
//! is checked by rustls; this is only the name rule, over names the shell read out of the
//! certificate.

/// One permitted name: `host.example.com` exactly, or `*.example.com` for any one label
/// under `example.com` (as a certificate wildcard matches, so never `a.b.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pattern {
    Exact(String),
    /// The suffix with its leading dot: `.example.com`.
    OneLabelUnder(String),
}

/// The names a client certificate must carry one of; see the module docs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermittedNames(Vec<Pattern>);

/// Why a configured name cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name:?}: {reason}")]
pub struct BadName {
    /// The name as configured.
    pub name: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl PermittedNames {
    /// Checks every name; the first bad one is the error.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, BadName> {
        names
            .iter()
            .map(|n| pattern(n.as_ref()))
            .collect::<Result<_, _>>()
            .map(Self)
    }

    /// No names configured: any certificate the CA signed is taken.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The certificate's name that is permitted, if one is. `names` are the certificate's
    /// DNS subject alternative names, or, when it has none, its subject common name (RFC
    /// 5425 §5.2). Names compare without regard to ASCII case, as DNS names do.
    pub fn permit<'n>(&self, names: &[&'n str]) -> Option<&'n str> {
        names.iter().copied().find(|name| {
            self.0.iter().any(|p| match p {
                Pattern::Exact(want) => name.eq_ignore_ascii_case(want),
                Pattern::OneLabelUnder(suffix) => {
                    let Some(split) = name.len().checked_sub(suffix.len()) else {
                        return false;
                    };
                    // A certificate's own wildcard is a name like any other: it matches
                    // only the same wildcard, never stands for a host.
                    name.is_char_boundary(split) && {
                        let (label, rest) = name.split_at(split);
                        rest.eq_ignore_ascii_case(suffix) && (label == "*" || is_label(label))
                    }
                }
            })
        })
    }
}

fn pattern(name: &str) -> Result<Pattern, BadName> {
    let bad = |reason| {
        Err(BadName {
            name: name.to_owned(),
            reason,
        })
    };
    let (wild, host) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, name),
    };
    if host.is_empty() {
        return bad("is empty");
    }
    if host.contains('*') {
        return bad("a wildcard may only be the whole first label (`*.example.com`)");
    }
    if !host.split('.').all(is_label) {
        return bad("is not a DNS name (labels of letters, digits and `-`, split by `.`)");
    }
    let host = host.to_ascii_lowercase();
    Ok(if wild {
        Pattern::OneLabelUnder(format!(".{host}"))
    } else {
        Pattern::Exact(host)
    })
}

fn is_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= 63
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> PermittedNames {
        PermittedNames::parse(list).expect("valid names")
    }

    #[test]
    fn exact_names_match_without_regard_to_case() {
        let p = names(&["Relay-1.example.com"]);
        assert_eq!(
            p.permit(&["other.example.com", "relay-1.EXAMPLE.com"]),
            Some("relay-1.EXAMPLE.com")
        );
        assert_eq!(p.permit(&["relay-1.example.com.evil.net"]), None);
        assert_eq!(p.permit(&["x.relay-1.example.com"]), None);
        assert_eq!(p.permit(&[]), None);
    }

    #[test]
    fn a_wildcard_is_one_label_and_never_the_bare_suffix() {
        let p = names(&["*.hosts.example.com"]);
        assert_eq!(
            p.permit(&["web-1.hosts.example.com"]),
            Some("web-1.hosts.example.com")
        );
        assert_eq!(p.permit(&["hosts.example.com"]), None);
        assert_eq!(p.permit(&["a.b.hosts.example.com"]), None);
        assert_eq!(p.permit(&[".hosts.example.com"]), None);
        assert_eq!(p.permit(&["web-1.hosts.example.com.evil.net"]), None);
        assert_eq!(p.permit(&["evilhosts.example.com"]), None);
        // A wildcard certificate matches the same wildcard only.
        assert_eq!(
            p.permit(&["*.hosts.example.com"]),
            Some("*.hosts.example.com")
        );
        assert_eq!(
            names(&["web-1.hosts.example.com"]).permit(&["*.hosts.example.com"]),
            None
        );
    }

    #[test]
    fn names_that_are_not_dns_names_are_refused_with_why() {
        for (bad, why) in [
            ("", "is empty"),
            ("*.", "is empty"),
            ("a.*.example.com", "a wildcard"),
            ("*example.com", "a wildcard"),
            ("**.example.com", "a wildcard"),
            ("host..example.com", "is not a DNS name"),
            ("host.example.com.", "is not a DNS name"),
            ("host name", "is not a DNS name"),
            ("hôte.example.com", "is not a DNS name"),
        ] {
            let e = PermittedNames::parse(&["ok.example.com", bad]).expect_err(bad);
            assert_eq!(e.name, bad);
            assert!(e.reason.starts_with(why), "{bad:?}: {}", e.reason);
        }
    }

    proptest::proptest! {
        /// Names come from certificates senders made: any text, no panic, and a match is
        /// always one of the certificate's own names.
        #[test]
        fn any_names_are_judged_without_panic(
            pattern in "(\\*\\.)?[a-zé.*-]{0,12}",
            names in proptest::collection::vec(".{0,20}", 0..4),
        ) {
            if let Ok(p) = PermittedNames::parse(&[pattern]) {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                if let Some(hit) = p.permit(&refs) {
                    proptest::prop_assert!(refs.contains(&hit));
                }
            }
        }
    }

    #[test]
    fn non_ascii_certificate_names_do_not_panic() {
        let p = names(&["*.example.com"]);
        assert_eq!(p.permit(&["é.example.com", "ééééééééééé", "é"]), None);
    }
}
