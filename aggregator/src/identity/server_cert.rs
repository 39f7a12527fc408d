//! The aggregator's own server certificate: what it says (names, validity) and when it is
//! due for renewal. `init` issues it for 825 days; without renewal every agent would be
//! refused on the day it expires. The aggregator holds the CA, so it renews it itself
//! (`io::state::renew_server_if_due`), for the same names, as agents renew theirs.

use std::net::IpAddr;

use super::IdentityError;

/// What the renewal needs to know about the current server certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerCertFacts {
    /// Its DNS names and IP addresses, as `init` was given them.
    pub names: Vec<String>,
    /// Valid from, ms since the epoch.
    pub not_before_ms: i64,
    /// Valid until, ms since the epoch.
    pub not_after_ms: i64,
}

impl ServerCertFacts {
    /// Reads them from the certificate (DER).
    pub fn of(der: &[u8]) -> Result<Self, IdentityError> {
        use x509_parser::extensions::GeneralName;
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| IdentityError::NotServer(e.to_string()))?;
        let names = match cert.subject_alternative_name() {
            Ok(Some(san)) => san
                .value
                .general_names
                .iter()
                .filter_map(|n| match n {
                    GeneralName::DNSName(d) => Some((*d).to_owned()),
                    GeneralName::IPAddress(b) => ip(b).map(|a| a.to_string()),
                    _ => None,
                })
                .collect(),
            Ok(None) => Vec::new(),
            Err(e) => return Err(IdentityError::NotServer(e.to_string())),
        };
        if names.is_empty() {
            return Err(IdentityError::NotServer(
                "no DNS name or address in its subject alternative names".into(),
            ));
        }
        let v = cert.validity();
        Ok(Self {
            names,
            not_before_ms: v.not_before.timestamp() * 1000,
            not_after_ms: v.not_after.timestamp() * 1000,
        })
    }

    /// Whether it is due for renewal at `now_ms`: when less than a third of its life is
    /// left (the agents' rule), or it has expired.
    pub fn renewal_due(&self, now_ms: i64) -> bool {
        let life = (self.not_after_ms - self.not_before_ms).max(0);
        now_ms >= self.not_after_ms - life / 3
    }
}

fn ip(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::Authority;
    use crate::identity::authority::cert_der_from_pem;

    const NOW: i64 = 1_790_000_000_000;
    const DAY: i64 = 86_400_000;

    #[test]
    fn facts_are_read_back_as_issued() {
        let ca = Authority::create(NOW, 3650).unwrap();
        let names: Vec<String> = ["agg.example.com", "localhost", "127.0.0.1", "::1"]
            .map(String::from)
            .into();
        let (issued, _key) = ca.issue_server(&names, NOW, 825).unwrap();
        let facts = ServerCertFacts::of(&cert_der_from_pem(&issued.cert_pem).unwrap()).unwrap();
        assert_eq!(facts.names, names);
        assert_eq!(facts.not_after_ms, issued.not_after_ms);
        assert!(facts.not_before_ms <= NOW);
    }

    #[test]
    fn renewal_is_due_in_the_last_third_and_after_expiry() {
        let f = ServerCertFacts {
            names: vec!["a".into()],
            not_before_ms: 0,
            not_after_ms: 900 * DAY,
        };
        assert!(!f.renewal_due(599 * DAY));
        assert!(f.renewal_due(600 * DAY));
        assert!(f.renewal_due(2_000 * DAY), "expired");
    }

    #[test]
    fn a_certificate_without_names_is_not_a_server_certificate() {
        assert!(ServerCertFacts::of(b"not DER").is_err());
    }
}
