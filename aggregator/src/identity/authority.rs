//! The aggregator's certificate authority: it signs the server certificate and every
//! agent's client certificate. An agent's identity (id, tenant) lives in its certificate's
//! subject, chosen by the aggregator at enrollment, so nothing an agent sends can change it.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use ring::rand::{SecureRandom, SystemRandom};
use time::OffsetDateTime;

use super::token::hex;

/// Clock skew tolerated between the aggregator and its agents: certificates start this
/// long before they are signed. Fixed for good: [`CertIdentity::signed_ms`] of every
/// certificate already out adds it back, and a larger value would make certificates a
/// renewal replaced look signed later than the registry's latest (taken for a renewal it
/// lost after a restore).
const SKEW_MS: i64 = 5 * 60 * 1000;
/// A day.
pub const DAY_MS: i64 = 24 * 3600 * 1000;

/// Identity failures.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    /// Certificate generation or signing failed.
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    /// The CSR could not be read or its signature does not verify.
    #[error("certificate signing request: {0}")]
    Csr(rcgen::Error),
    /// A tenant name outside `[A-Za-z0-9._-]`, or empty, or over 64 bytes.
    #[error("tenant `{0}`: use 1-64 of A-Z a-z 0-9 . _ - (starting with a letter or digit)")]
    Tenant(String),
    /// A certificate's subject lacks what a Vedette agent certificate carries.
    #[error("not a Vedette agent certificate: {0}")]
    NotAgent(String),
    /// The server certificate in the state dir cannot be read as one.
    #[error("not a usable server certificate: {0}")]
    NotServer(String),
    /// Reading or writing the state dir.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What failed.
        source: std::io::Error,
    },
}

/// A certificate and the facts the registry keeps about it.
#[derive(Debug, Clone)]
pub struct Issued {
    /// PEM.
    pub cert_pem: String,
    /// Serial number, hex.
    pub serial: String,
    /// Expiry, ms since the epoch.
    pub not_after_ms: i64,
}

/// The CA: its certificate and key.
pub struct Authority {
    cert_pem: String,
    cert_der: Vec<u8>,
    issuer: Issuer<'static, KeyPair>,
}

impl std::fmt::Debug for Authority {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authority")
            .field("fingerprint", &hex(&self.fingerprint()))
            .finish()
    }
}

fn datetime(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .expect("a time within the calendar")
}

fn random_serial() -> SerialNumber {
    let mut b = [0u8; 16];
    SystemRandom::new().fill(&mut b).expect("system randomness");
    // Positive, as DER integers for serials must be, and with a first byte that is not
    // zero: DER drops leading zero bytes, so a serial starting with one would be written
    // into the certificate as 15 bytes while the registry recorded 16, and the agent
    // would not be recognised by its certificate (1 in 256).
    b[0] = (b[0] & 0x7f) | 0x40;
    SerialNumber::from_slice(&b)
}

/// Whether `t` is a tenant name we accept (it goes into certificate subjects and paths).
pub fn valid_tenant(t: &str) -> bool {
    (1..=64).contains(&t.len())
        && t.as_bytes()[0].is_ascii_alphanumeric()
        && t.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// A fresh agent id.
pub fn new_agent_id() -> String {
    let mut b = [0u8; 8];
    SystemRandom::new().fill(&mut b).expect("system randomness");
    format!("agt-{}", hex(&b))
}

impl Authority {
    /// A new CA valid for `days` from `now_ms`.
    pub fn create(now_ms: i64, days: i64) -> Result<Self, IdentityError> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Vedette");
        dn.push(
            DnType::CommonName,
            format!("Vedette CA {}", &new_agent_id()[4..]),
        );
        p.distinguished_name = dn;
        p.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        p.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        p.not_before = datetime(now_ms - SKEW_MS);
        p.not_after = datetime(now_ms + days * DAY_MS);
        p.serial_number = Some(random_serial());
        let cert = p.self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(p, key),
        })
    }

    /// The CA from its PEM certificate and key.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<Self, IdentityError> {
        let key = KeyPair::from_pem(key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)?;
        let der = cert_der_from_pem(cert_pem)
            .ok_or_else(|| IdentityError::NotAgent("CA PEM holds no certificate".into()))?;
        Ok(Self {
            cert_pem: cert_pem.to_owned(),
            cert_der: der,
            issuer,
        })
    }

    /// Loads `ca.pem` and `ca.key` from `dir`.
    pub fn load(dir: &Path) -> Result<Self, IdentityError> {
        let read = |n: &str| {
            let path = dir.join(n);
            std::fs::read_to_string(&path).map_err(|source| IdentityError::Io {
                path: path.display().to_string(),
                source,
            })
        };
        Self::from_pem(&read("ca.pem")?, &read("ca.key")?)
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA certificate, DER.
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// The CA key, PEM (written 0600 by the caller).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    /// SHA-256 of the CA certificate: what enrollment tokens pin.
    pub fn fingerprint(&self) -> [u8; 32] {
        fingerprint(&self.cert_der)
    }

    /// When the CA certificate expires, ms since the epoch.
    pub fn not_after_ms(&self) -> Result<i64, IdentityError> {
        let (_, cert) = x509_parser::parse_x509_certificate(&self.cert_der)
            .map_err(|e| IdentityError::NotAgent(format!("the CA certificate: {e}")))?;
        Ok(cert.validity().not_after.timestamp() * 1000)
    }

    /// The server's certificate for `names` (DNS names or IP addresses) and its key, PEM.
    pub fn issue_server(
        &self,
        names: &[String],
        now_ms: i64,
        days: i64,
    ) -> Result<(Issued, String), IdentityError> {
        let key = KeyPair::generate()?;
        let mut p = CertificateParams::new(names.to_vec())?;
        p.distinguished_name
            .push(DnType::CommonName, "Vedette aggregator");
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        let issued = self.sign(p, &key, now_ms, days * DAY_MS)?;
        Ok((issued, key.serialize_pem()))
    }

    fn sign(
        &self,
        mut p: CertificateParams,
        key: &impl rcgen::PublicKeyData,
        now_ms: i64,
        lifetime_ms: i64,
    ) -> Result<Issued, IdentityError> {
        let serial = random_serial();
        p.serial_number = Some(serial.clone());
        p.not_before = datetime(now_ms - SKEW_MS);
        let not_after_ms = now_ms + lifetime_ms;
        p.not_after = datetime(not_after_ms);
        p.use_authority_key_identifier_extension = true;
        let cert = p.signed_by(key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            serial: hex(&serial.to_bytes()),
            not_after_ms: not_after_ms / 1000 * 1000,
        })
    }

    /// Signs an agent's CSR, valid for `lifetime_ms`. Only the CSR's key is taken from it:
    /// the subject (agent id and tenant), usage and lifetime are the aggregator's.
    pub fn sign_agent(
        &self,
        csr_pem: &str,
        agent_id: &str,
        tenant: &str,
        now_ms: i64,
        lifetime_ms: i64,
    ) -> Result<Issued, IdentityError> {
        if !valid_tenant(tenant) {
            return Err(IdentityError::Tenant(tenant.to_owned()));
        }
        let csr = CertificateSigningRequestParams::from_pem(csr_pem).map_err(IdentityError::Csr)?;
        let mut p = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, agent_id);
        dn.push(DnType::OrganizationName, tenant);
        p.distinguished_name = dn;
        p.subject_alt_names = vec![SanType::URI(
            format!("vedette://{tenant}/{agent_id}")
                .try_into()
                .map_err(IdentityError::Cert)?,
        )];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        self.sign(p, &csr.public_key, now_ms, lifetime_ms)
    }
}

/// How long before the CA's end the aggregator starts saying so.
pub const CA_WARN_MS: i64 = 365 * DAY_MS;

/// What to say about the CA's expiry at `now_ms`, if anything: within [`CA_WARN_MS`] of
/// its end, or past it. Nothing renews a CA (every agent's trust is pinned to it): when it
/// ends, no agent can connect, renew or enroll, so an operator must be told a year ahead.
pub fn ca_expiry_warning(not_after_ms: i64, now_ms: i64) -> Option<String> {
    let left = not_after_ms - now_ms;
    if left <= 0 {
        Some(format!(
            "the CA expired {} days ago: no agent can connect, renew or enroll; make a new state dir (init) and enroll the agents again",
            (-left) / DAY_MS
        ))
    } else if left <= CA_WARN_MS {
        Some(format!(
            "the CA expires in {} days: then no agent can connect, renew or enroll; plan a new CA (init in a new state dir) and the agents' enrollment into it",
            left / DAY_MS
        ))
    } else {
        None
    }
}

/// SHA-256 of a DER certificate.
pub fn fingerprint(der: &[u8]) -> [u8; 32] {
    ring::digest::digest(&ring::digest::SHA256, der)
        .as_ref()
        .try_into()
        .expect("SHA-256 is 32 bytes")
}

/// The DER of the first certificate in a PEM text (other sections skipped).
pub fn cert_der_from_pem(pem: &str) -> Option<Vec<u8>> {
    pem::parse_many(pem)
        .ok()?
        .into_iter()
        .find(|p| p.tag() == "CERTIFICATE")
        .map(pem::Pem::into_contents)
}

/// Who a client certificate says the agent is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertIdentity {
    /// The agent id (subject CN).
    pub agent_id: String,
    /// The tenant (subject O).
    pub tenant: String,
    /// Serial, hex.
    pub serial: String,
    /// Expiry, ms since the epoch.
    pub not_after_ms: i64,
    /// The earliest time it can have been signed, ms since the epoch: its start of
    /// validity plus the skew the authority back-dates by (signed at most a second
    /// later, the certificate's precision). A certificate whose `signed_ms` is past every
    /// signing a registry recorded was signed after that registry's state (see
    /// `Registry::admit_cert`).
    pub signed_ms: i64,
}

/// Reads the identity out of an agent certificate (DER) that TLS already verified.
pub fn cert_identity(der: &[u8]) -> Result<CertIdentity, IdentityError> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| IdentityError::NotAgent(e.to_string()))?;
    let subject = cert.subject();
    let one = |it: &mut dyn Iterator<Item = &x509_parser::x509::AttributeTypeAndValue<'_>>,
               what: &str| {
        it.next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
            .ok_or_else(|| IdentityError::NotAgent(format!("no {what} in the subject")))
    };
    let agent_id = one(&mut subject.iter_common_name(), "common name")?;
    let tenant = one(&mut subject.iter_organization(), "organization")?;
    if !agent_id.starts_with("agt-") || !valid_tenant(&tenant) {
        return Err(IdentityError::NotAgent(format!(
            "subject CN={agent_id} O={tenant}"
        )));
    }
    Ok(CertIdentity {
        agent_id,
        tenant,
        serial: hex(cert.raw_serial()),
        not_after_ms: cert.validity().not_after.timestamp() * 1000,
        signed_ms: cert.validity().not_before.timestamp() * 1000 + SKEW_MS,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cas_end_is_said_a_year_ahead_and_after() {
        let ca = Authority::create(NOW, 3650).unwrap();
        let end = ca.not_after_ms().unwrap();
        assert_eq!(end, (NOW + 3650 * DAY_MS) / 1000 * 1000);
        assert_eq!(ca_expiry_warning(end, NOW), None);
        assert_eq!(ca_expiry_warning(end, end - CA_WARN_MS - 1), None);
        let soon = ca_expiry_warning(end, end - 30 * DAY_MS).unwrap();
        assert!(soon.starts_with("the CA expires in 30 days"), "{soon}");
        let past = ca_expiry_warning(end, end + 2 * DAY_MS).unwrap();
        assert!(past.starts_with("the CA expired 2 days ago"), "{past}");
    }

    const NOW: i64 = 1_790_000_000_000;

    #[test]
    fn an_agent_certificate_carries_the_aggregators_choice_of_identity() {
        let ca = Authority::create(NOW, 3650).unwrap();
        let key = KeyPair::generate().unwrap();
        // The agent asks for another identity; the CA ignores what it asks.
        let mut req = CertificateParams::new(vec!["evil.example".into()]).unwrap();
        req.distinguished_name
            .push(DnType::CommonName, "agt-someone-else");
        req.distinguished_name
            .push(DnType::OrganizationName, "other-tenant");
        let csr = req.serialize_request(&key).unwrap().pem().unwrap();
        let issued = ca
            .sign_agent(&csr, "agt-0011223344556677", "blue", NOW, 30 * DAY_MS)
            .unwrap();
        let der = cert_der_from_pem(&issued.cert_pem).unwrap();
        let id = cert_identity(&der).unwrap();
        assert_eq!(id.agent_id, "agt-0011223344556677");
        assert_eq!(id.tenant, "blue");
        assert_eq!(id.serial, issued.serial);
        assert_eq!(id.not_after_ms, issued.not_after_ms);
        assert_eq!(id.not_after_ms, (NOW + 30 * DAY_MS) / 1000 * 1000);
        // Never later than the signing, at most a second before it.
        assert_eq!(id.signed_ms, NOW);
        let later = ca
            .sign_agent(&csr, "agt-0011223344556677", "blue", NOW + 999, DAY_MS)
            .unwrap();
        let later = cert_identity(&cert_der_from_pem(&later.cert_pem).unwrap()).unwrap();
        assert_eq!(later.signed_ms, NOW, "signed at NOW + 999: its second");
    }

    /// A CSR for a fresh key, with no subject of its own.
    fn fresh_csr() -> String {
        let key = KeyPair::generate().unwrap();
        CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap()
    }

    #[test]
    fn the_serial_recorded_is_the_serial_the_certificate_carries() {
        // A random serial starting with a zero byte was written into the certificate
        // without it (DER), and the registry did not recognise 1 certificate in 256.
        let ca = Authority::create(NOW, 3650).unwrap();
        let csr = fresh_csr();
        for _ in 0..1500 {
            let issued = ca
                .sign_agent(&csr, "agt-0011223344556677", "blue", NOW, DAY_MS)
                .unwrap();
            let der = cert_der_from_pem(&issued.cert_pem).unwrap();
            assert_eq!(cert_identity(&der).unwrap().serial, issued.serial);
        }
    }

    #[test]
    fn a_reloaded_ca_keeps_its_fingerprint_and_bad_input_is_refused() {
        let ca = Authority::create(NOW, 3650).unwrap();
        let again = Authority::from_pem(ca.cert_pem(), &ca.key_pem()).unwrap();
        assert_eq!(again.fingerprint(), ca.fingerprint());
        assert!(matches!(
            ca.sign_agent("garbage", "agt-00", "blue", NOW, 1),
            Err(IdentityError::Csr(_))
        ));
        let csr = fresh_csr();
        assert!(matches!(
            ca.sign_agent(&csr, "agt-00", "a/b", NOW, 1),
            Err(IdentityError::Tenant(_))
        ));
        for t in ["default", "blue-team", "acme.eu_1"] {
            assert!(valid_tenant(t), "{t}");
        }
        for t in ["", "-x", "a b", &"x".repeat(65)] {
            assert!(!valid_tenant(t), "{t}");
        }
    }
}
