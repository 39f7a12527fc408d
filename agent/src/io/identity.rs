//! The agent's identity: enrollment, the files it keeps, and the TLS configs built from
//! them.
//!
//! ```text
//! <state_dir>/identity/agent.key   private key (0600), never leaves the host
//! <state_dir>/identity/agent.pem   client certificate signed by the aggregator's CA
//! <state_dir>/identity/ca.pem      the aggregator's CA (the only root trusted)
//! <state_dir>/identity/agent.json  agent id, tenant, server address
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::{Deserialize, Serialize};
use vedette_schemas::wire::{self, ALPN_ENROLL, ALPN_EVENTS, EnrollRequest, EnrollResponse};

/// What `agent.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityInfo {
    /// Assigned by the aggregator; also the certificate's CN.
    pub agent_id: String,
    /// The tenant joined; also the certificate's O.
    pub tenant: String,
    /// `HOST:PORT` of the aggregator.
    pub server: String,
}

/// The identity files of a state dir.
#[derive(Debug, Clone)]
pub struct IdentityPaths {
    dir: PathBuf,
}

impl IdentityPaths {
    /// Under `<state_dir>/identity`.
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("identity"),
        }
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Reads `agent.json`.
    pub fn info(&self) -> anyhow::Result<IdentityInfo> {
        let p = self.file("agent.json");
        let text = std::fs::read_to_string(&p).with_context(|| {
            format!(
                "reading {} (enroll first: vedette-agent enroll --server HOST:PORT --token T)",
                p.display()
            )
        })?;
        serde_json::from_str(&text).with_context(|| format!("parsing {}", p.display()))
    }

    /// The certificate, key and CA, PEM; a renewal a crash cut short is finished or undone
    /// first ([`IdentityPaths::finish_interrupted_renewal`]).
    pub fn pems(&self) -> anyhow::Result<(String, String, String)> {
        if let Some(what) = self.finish_interrupted_renewal()? {
            eprintln!("vedette-agent: {what}");
        }
        let read = |n: &str| {
            let p = self.file(n);
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        Ok((read("agent.pem")?, read("agent.key")?, read("ca.pem")?))
    }

    /// A renewal cut by a crash ([`IdentityPaths::replace_cert`]) left `.new` files: with
    /// both, the new pair goes in if it is whole and matches, else they go; with the
    /// certificate alone (the key was moved in), it goes in if it matches the key in
    /// place. Without this, a crash between the two renames left a key and a certificate
    /// that do not match, and the agent could not connect until enrolled again. Says what
    /// it did, if anything.
    pub fn finish_interrupted_renewal(&self) -> anyhow::Result<Option<String>> {
        let (key_new, pem_new) = (self.file(".agent.key.new"), self.file(".agent.pem.new"));
        if !pem_new.exists() {
            // A key alone: its certificate was never written.
            if key_new.exists() {
                std::fs::remove_file(&key_new)?;
                return Ok(Some(
                    "a renewal cut short was undone (its certificate was never written)".into(),
                ));
            }
            return Ok(None);
        }
        // A file that cannot be read now (EIO, no descriptors left) is an error, not an
        // empty file: taken for a mismatch, the only copy of a renewed certificate went.
        let read = |p: &Path| {
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))
        };
        let cert = read(&pem_new)?;
        let done = if key_new.exists() {
            if pair_matches(&cert, &read(&key_new)?) {
                std::fs::rename(&key_new, self.file("agent.key"))?;
                std::fs::rename(&pem_new, self.file("agent.pem"))?;
                "a renewal cut short was completed (both files)"
            } else {
                std::fs::remove_file(&key_new)?;
                std::fs::remove_file(&pem_new)?;
                "a renewal cut short was undone (its files were incomplete)"
            }
        } else if pair_matches(&cert, &read(&self.file("agent.key"))?) {
            std::fs::rename(&pem_new, self.file("agent.pem"))?;
            "a renewal cut short was completed (its certificate moved in after its key)"
        } else {
            std::fs::remove_file(&pem_new)?;
            "a renewal left a certificate that matches no key; removed"
        };
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(Some(done.to_owned()))
    }

    /// Replaces the certificate and key (renewal): each file written aside and synced,
    /// then moved in, key first; a crash anywhere is repaired by
    /// [`IdentityPaths::finish_interrupted_renewal`] at the next read.
    pub fn replace_cert(&self, cert_pem: &str, key_pem: &str, now_ms: i64) -> anyhow::Result<()> {
        // Nothing is written unless the new pair would connect: installed as it came, a
        // certificate of another CA, for another key, or unparsable (an aggregator's bug,
        // a CA mixed up) locked the agent out until it was enrolled again by hand.
        check_renewed(cert_pem, key_pem, &self.pems()?.2, now_ms)?;
        write_secret(&self.file(".agent.key.new"), key_pem)?;
        write_durable(&self.file(".agent.pem.new"), cert_pem)?;
        std::fs::rename(self.file(".agent.key.new"), self.file("agent.key"))?;
        std::fs::rename(self.file(".agent.pem.new"), self.file("agent.pem"))?;
        std::fs::File::open(&self.dir)?.sync_all()?;
        Ok(())
    }
}

/// That a renewed certificate is for `key_pem`, valid at `now_ms`, and issued by the CA of
/// `ca_pem` for client authentication: what the aggregator will check of it.
fn check_renewed(cert_pem: &str, key_pem: &str, ca_pem: &str, now_ms: i64) -> anyhow::Result<()> {
    if !pair_matches(cert_pem, key_pem) {
        bail!("the renewed certificate is not for the key this agent sent");
    }
    let (not_before, not_after) = validity_ms(cert_pem)?;
    if now_ms >= not_after {
        bail!("the renewed certificate expired at {not_after} ms");
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.context("reading the CA certificate")?)?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
            .build()
            .context("the CA as a root")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("reading the renewed certificate")?;
    let (end, intermediates) = chain
        .split_first()
        .ok_or_else(|| anyhow!("no certificate in the renewal"))?;
    // At a time it is valid (a clock a little behind its start is no reason to refuse it).
    let at = (now_ms.max(not_before) / 1000).max(0) as u64;
    verifier
        .verify_client_cert(
            end,
            intermediates,
            UnixTime::since_unix_epoch(Duration::from_secs(at)),
        )
        .map_err(|e| anyhow!("the renewed certificate does not chain to this agent's CA: {e}"))?;
    Ok(())
}

/// Whether `key_pem` is the private key of the (first) certificate in `cert_pem`.
fn pair_matches(cert_pem: &str, key_pem: &str) -> bool {
    let Ok(certs) =
        CertificateDer::pem_slice_iter(cert_pem.as_bytes()).collect::<Result<Vec<_>, _>>()
    else {
        return false;
    };
    let Ok(key) = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()) else {
        return false;
    };
    if certs.is_empty() {
        return false;
    }
    let provider = rustls::crypto::ring::default_provider();
    let Ok(signing) = provider.key_provider.load_private_key(key) else {
        return false;
    };
    rustls::sign::CertifiedKey::new(certs, signing)
        .keys_match()
        .is_ok()
}

/// Writes `text` to a new `path` and syncs it, so a rename over the old file after it never
/// leaves an empty file behind a power loss.
fn write_durable(path: &Path, text: &str) -> anyhow::Result<()> {
    let mut f =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn write_secret(path: &Path, text: &str) -> anyhow::Result<()> {
    let _ignored = std::fs::remove_file(path);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

/// A fresh key and a CSR for it, PEM. The subject is left to the aggregator.
pub fn key_and_csr() -> anyhow::Result<(String, String)> {
    let key = rcgen::KeyPair::generate()?;
    let csr = rcgen::CertificateParams::default()
        .serialize_request(&key)?
        .pem()?;
    Ok((key.serialize_pem(), csr))
}

/// The parts of a `vdt1.<id>.<secret>.<ca-sha256>` token the agent needs: what it sends,
/// and the CA fingerprint it pins.
pub fn split_token(token: &str) -> anyhow::Result<(String, [u8; 32])> {
    let parts: Vec<&str> = token.trim().split('.').collect();
    let ["vdt1", id, secret, pin] = parts[..] else {
        bail!("not a Vedette enrollment token (expected vdt1.<id>.<secret>.<ca-sha256>)");
    };
    let pin =
        unhex32(pin).ok_or_else(|| anyhow!("the token's CA fingerprint is not 64 hex digits"))?;
    Ok((format!("{id}.{secret}"), pin))
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Trusts exactly the CA whose SHA-256 the token carries, found in the server's own chain:
/// the server certificate must be signed by it and name the host dialled.
#[derive(Debug)]
struct PinnedCa {
    pin: [u8; 32],
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates
            .iter()
            .find(|c| ring::digest::digest(&ring::digest::SHA256, c).as_ref() == self.pin)
            .ok_or_else(|| {
                rustls::Error::General(
                    "the server's chain does not hold the CA the token pins".into(),
                )
            })?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.clone().into_owned())?;
        let inner = rustls::client::WebPkiServerVerifier::builder_with_provider(
            Arc::new(roots),
            self.provider.clone(),
        )
        .build()
        .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, &[], server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

fn quic_client(tls: rustls::ClientConfig, idle: Duration) -> anyhow::Result<quinn::ClientConfig> {
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut cfg = quinn::ClientConfig::new(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .keep_alive_interval(Some(idle / 3))
        .max_idle_timeout(Some(idle.try_into()?))
        .stream_receive_window((1u32 << 20).into());
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}

/// The enrollment client config: no client certificate, the server pinned by fingerprint.
fn enroll_client(pin: [u8; 32]) -> anyhow::Result<quinn::ClientConfig> {
    let provider = provider();
    let mut tls = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PinnedCa { pin, provider }))
        .with_no_client_auth();
    tls.alpn_protocols = vec![ALPN_ENROLL.to_vec()];
    quic_client(tls, Duration::from_secs(30))
}

/// The event client config: our certificate, and the CA as the only root.
pub fn events_client(
    cert_pem: &str,
    key_pem: &str,
    ca_pem: &str,
    idle: Duration,
) -> anyhow::Result<quinn::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.context("reading the CA certificate")?)?;
    }
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("reading the agent certificate")?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("reading the agent key")?;
    let mut tls = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN_EVENTS.to_vec()];
    quic_client(tls, idle)
}

/// How long an enrollment waits for each of the server's addresses to answer.
const ENROLL_CONNECT: std::time::Duration = std::time::Duration::from_secs(10);

/// `HOST:PORT` → the addresses to dial, in the resolver's order, and the name to verify.
/// Resolved off the runtime's thread: a resolver that hangs (DNS down) would otherwise
/// stall the syslog listeners that share it.
pub async fn resolve(server: &str) -> anyhow::Result<(Vec<SocketAddr>, String)> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(server)
        .await
        .with_context(|| format!("resolving {server}"))?
        .collect();
    if addrs.is_empty() {
        bail!("{server} resolves to no address");
    }
    let host = server
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(server);
    Ok((addrs, host.to_owned()))
}

/// Connects to the first of `addrs` that answers, each given `timeout`: a name with
/// several addresses (IPv6 and IPv4, or several aggregators) is not stuck on one that
/// cannot be reached. Also says which of `addrs` it connected to.
pub async fn connect_any(
    addrs: &[SocketAddr],
    name: &str,
    cfg: quinn::ClientConfig,
    timeout: std::time::Duration,
) -> anyhow::Result<(quinn::Endpoint, quinn::Connection, usize)> {
    let mut failures = Vec::new();
    for (i, &addr) in addrs.iter().enumerate() {
        let attempt = async {
            let endpoint = client_endpoint(addr)?;
            let conn = endpoint.connect_with(cfg.clone(), addr, name)?.await?;
            anyhow::Ok((endpoint, conn))
        };
        match tokio::time::timeout(timeout, attempt).await {
            Ok(Ok((endpoint, conn))) => return Ok((endpoint, conn, i)),
            Ok(Err(e)) => failures.push(format!("{addr}: {e:#}")),
            Err(_) => failures.push(format!("{addr}: no answer in {} ms", timeout.as_millis())),
        }
    }
    bail!("connecting to {name}: {}", failures.join("; "))
}

/// A client endpoint on an ephemeral port of the right address family.
pub fn client_endpoint(server: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    Ok(quinn::Endpoint::client(bind)?)
}

/// Reads one wire frame (enrollment answers, acks, control frames).
pub(crate) async fn read_frame<T: serde::de::DeserializeOwned>(
    r: &mut quinn::RecvStream,
) -> anyhow::Result<T> {
    let mut prefix = [0u8; 4];
    r.read_exact(&mut prefix).await?;
    let mut body = vec![0u8; wire::frame_len(prefix)?];
    r.read_exact(&mut body).await?;
    Ok(wire::decode_frame(&body)?)
}

/// Writes one wire frame.
pub(crate) async fn write_frame<T: serde::Serialize>(
    w: &mut quinn::SendStream,
    msg: &T,
) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    wire::encode_frame(msg, &mut buf);
    w.write_all(&buf).await?;
    Ok(())
}

/// Enrolls: a fresh key, a CSR sent with the token on the enrollment ALPN, the signed
/// certificate written beside the key. Refuses to replace an existing identity.
pub async fn enroll(
    state_dir: &Path,
    server: &str,
    token: &str,
    hostname: &str,
) -> anyhow::Result<IdentityInfo> {
    let paths = IdentityPaths::new(state_dir);
    if paths.file("agent.pem").exists() {
        bail!(
            "{} already holds an identity; remove it to enroll again",
            paths.dir.display()
        );
    }
    let (credential, pin) = split_token(token)?;
    let (addrs, name) = resolve(server).await?;
    let (key_pem, csr_pem) = key_and_csr()?;
    let (endpoint, conn, _) = connect_any(&addrs, &name, enroll_client(pin)?, ENROLL_CONNECT)
        .await
        .with_context(|| format!("connecting to {server}"))?;
    let (mut send, mut recv) = conn.open_bi().await?;
    write_frame(
        &mut send,
        &EnrollRequest {
            token: credential,
            csr_pem,
            hostname: hostname.to_owned(),
        },
    )
    .await?;
    send.finish()?;
    let resp: EnrollResponse = read_frame(&mut recv)
        .await
        .context("reading the enrollment answer")?;
    conn.close(0u32.into(), b"enrolled");
    endpoint.wait_idle().await;
    let (agent_id, tenant, cert_pem, ca_pem) = match resp {
        EnrollResponse::Enrolled {
            agent_id,
            tenant,
            cert_pem,
            ca_pem,
        } => (agent_id, tenant, cert_pem, ca_pem),
        EnrollResponse::Refused { reason } => bail!("enrollment refused: {reason}"),
    };
    // The CA handed back must be the one pinned: the token is the root of trust.
    let ca_der = CertificateDer::pem_slice_iter(ca_pem.as_bytes())
        .next()
        .ok_or_else(|| anyhow!("the aggregator sent no CA certificate"))??;
    if ring::digest::digest(&ring::digest::SHA256, &ca_der).as_ref() != pin {
        bail!("the aggregator sent a CA other than the one the token pins");
    }
    super::private::create_dir(&paths.dir)
        .with_context(|| format!("creating {}", paths.dir.display()))?;
    let info = IdentityInfo {
        agent_id,
        tenant,
        server: server.to_owned(),
    };
    write_secret(&paths.file("agent.key"), &key_pem)?;
    std::fs::write(paths.file("ca.pem"), &ca_pem)?;
    std::fs::write(
        paths.file("agent.json"),
        serde_json::to_string_pretty(&info)? + "\n",
    )?;
    // Last: its presence marks a complete identity.
    std::fs::write(paths.file("agent.pem"), &cert_pem)?;
    std::fs::File::open(&paths.dir)?.sync_all()?;
    Ok(info)
}

/// Validity of a PEM certificate, `(not_before, not_after)` in ms since the epoch.
pub fn validity_ms(cert_pem: &str) -> anyhow::Result<(i64, i64)> {
    let der = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .next()
        .ok_or_else(|| anyhow!("no certificate in the PEM"))??;
    let (_, cert) = x509_parser::parse_x509_certificate(&der)
        .map_err(|e| anyhow!("parsing the certificate: {e}"))?;
    let v = cert.validity();
    Ok((
        v.not_before.timestamp() * 1000,
        v.not_after.timestamp() * 1000,
    ))
}

/// Whether a certificate valid over [`not_before`, `not_after`) is due for renewal at
/// `now`: when less than a third of its life is left.
pub fn renewal_due(not_before: i64, not_after: i64, now: i64) -> bool {
    let life = (not_after - not_before).max(0);
    now >= not_after - life / 3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_split_into_credential_and_pin() {
        let pin = "ab".repeat(32);
        let (cred, p) =
            split_token(&format!("vdt1.0011223344556677.{}.{pin}", "cd".repeat(16))).unwrap();
        assert_eq!(cred, format!("0011223344556677.{}", "cd".repeat(16)));
        assert_eq!(p, [0xab; 32]);
        assert!(split_token("vdt1.a.b").is_err());
        assert!(split_token(&format!("vdt1.a.b.{}", "zz".repeat(32))).is_err());
    }

    /// A self-signed certificate and its key, PEM.
    fn pair() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["agent".into()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        (cert.pem(), key.serialize_pem())
    }

    /// A CA, and a client certificate it issued for a new key: (ca, cert, key) PEM.
    fn issued(ca_key: &rcgen::KeyPair) -> (String, String, String) {
        let mut ca_params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::new()).unwrap();
        params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &issuer).unwrap();
        (ca.pem(), cert.pem(), key.serialize_pem())
    }

    /// A renewal is installed only if the aggregator's CA issued it for the key this agent
    /// sent: anything else (another CA's, another key's, garbage) locked the agent out.
    #[test]
    fn only_a_renewal_that_would_connect_is_installed() {
        let dir = std::env::temp_dir().join(format!("vedette-renewed-{}", std::process::id()));
        let paths = IdentityPaths::new(&dir);
        std::fs::create_dir_all(&paths.dir).unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let (ca, cert, key) = issued(&ca_key);
        let (old_cert, old_key) = pair();
        std::fs::write(paths.file("ca.pem"), &ca).unwrap();
        std::fs::write(paths.file("agent.pem"), &old_cert).unwrap();
        std::fs::write(paths.file("agent.key"), &old_key).unwrap();
        let now = crate::io::clock::now_ms();
        let other_ca = rcgen::KeyPair::generate().unwrap();
        let (_, foreign, foreign_key) = issued(&other_ca);
        let (_, _, unrelated_key) = issued(&ca_key);
        for (what, c, k) in [
            ("another CA's", foreign.as_str(), foreign_key.as_str()),
            ("for another key", cert.as_str(), unrelated_key.as_str()),
            ("not a certificate", "garbage", key.as_str()),
        ] {
            assert!(paths.replace_cert(c, k, now).is_err(), "{what}");
            assert_eq!(
                paths.pems().unwrap().0,
                old_cert,
                "{what}: nothing installed"
            );
        }
        paths.replace_cert(&cert, &key, now).unwrap();
        assert_eq!(paths.pems().unwrap().0, cert);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_renewal_cut_by_a_crash_is_completed_or_undone() {
        let dir = std::env::temp_dir().join(format!("vedette-identity-{}", std::process::id()));
        let paths = IdentityPaths::new(&dir);
        std::fs::create_dir_all(&paths.dir).unwrap();
        let write = |n: &str, t: &str| std::fs::write(paths.file(n), t).unwrap();
        let read = |n: &str| std::fs::read_to_string(paths.file(n)).unwrap();
        let (old_cert, old_key) = pair();
        let (new_cert, new_key) = pair();
        assert!(pair_matches(&old_cert, &old_key) && !pair_matches(&new_cert, &old_key));
        let install = |c: &str, k: &str| {
            write("agent.pem", c);
            write("agent.key", k);
        };

        // Nothing to do.
        install(&old_cert, &old_key);
        assert_eq!(paths.finish_interrupted_renewal().unwrap(), None);
        // Between the two renames: the new key in place, its certificate aside.
        install(&old_cert, &new_key);
        write(".agent.pem.new", &new_cert);
        assert!(paths.finish_interrupted_renewal().unwrap().is_some());
        assert_eq!(
            (read("agent.pem"), read("agent.key")),
            (new_cert.clone(), new_key.clone())
        );
        // Before them, both written: both go in.
        install(&old_cert, &old_key);
        write(".agent.key.new", &new_key);
        write(".agent.pem.new", &new_cert);
        paths.finish_interrupted_renewal().unwrap();
        assert_eq!(
            (read("agent.pem"), read("agent.key")),
            (new_cert.clone(), new_key.clone())
        );
        // The certificate cut short while written: the old pair stays.
        install(&old_cert, &old_key);
        write(".agent.key.new", &new_key);
        write(".agent.pem.new", &new_cert[..new_cert.len() / 2]);
        paths.finish_interrupted_renewal().unwrap();
        assert_eq!(
            (read("agent.pem"), read("agent.key")),
            (old_cert.clone(), old_key.clone())
        );
        // The key alone: its certificate never came.
        write(".agent.key.new", &new_key);
        paths.finish_interrupted_renewal().unwrap();
        assert_eq!(read("agent.key"), old_key);
        for n in [".agent.key.new", ".agent.pem.new"] {
            assert!(!paths.file(n).exists(), "{n} left behind");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn renewal_is_due_in_the_last_third() {
        assert!(!renewal_due(0, 300, 199));
        assert!(renewal_due(0, 300, 200));
        assert!(renewal_due(0, 300, 400));
    }

    #[tokio::test]
    async fn servers_resolve_with_their_names() {
        let (a, n) = resolve("127.0.0.1:4433").await.unwrap();
        assert_eq!((a[0].port(), n.as_str()), (4433, "127.0.0.1"));
        let (_, n) = resolve("[::1]:4433").await.unwrap();
        assert_eq!(n, "::1");
    }
}
