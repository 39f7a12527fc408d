//! The server's TLS: one QUIC endpoint, two ALPNs. Client certificates are verified
//! against our CA when presented (a certificate of another CA fails the handshake) and
//! optional at the TLS level, because enrollment (`vedette-enroll/1`) is how an agent gets
//! one; the event ALPN then refuses a connection without one.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use vedette_schemas::wire::{ALPN_ENROLL, ALPN_EVENTS};

/// Batches one agent may have in flight at once (each is a bidirectional stream).
pub const MAX_STREAMS: u32 = 64;
/// A connection silent this long is dropped; agents send keep-alives well inside it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The quinn server config from the chain, key and CA (PEM).
pub fn server_config(
    chain_pem: &str,
    key_pem: &str,
    ca_pem: &str,
) -> anyhow::Result<quinn::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(chain_pem.as_bytes())
        .collect::<Result<_, _>>()
        .context("reading the server certificate chain")?;
    let key =
        PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).context("reading the server key")?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.context("reading the CA certificate")?)?;
    }
    let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()?;
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)?;
    tls.alpn_protocols = vec![ALPN_EVENTS.to_vec(), ALPN_ENROLL.to_vec()];
    tls.max_early_data_size = 0;
    let crypto = quinn::crypto::rustls::QuicServerConfig::try_from(tls)?;
    let mut cfg = quinn::ServerConfig::with_crypto(Arc::new(crypto));
    let mut transport = quinn::TransportConfig::default();
    transport
        .max_concurrent_bidi_streams(MAX_STREAMS.into())
        .max_concurrent_uni_streams(0u32.into())
        .max_idle_timeout(Some(IDLE_TIMEOUT.try_into()?))
        // What a connection's peer may have the server buffer before the server reads
        // it, outside the batch memory budget (a stream waiting for its share is not
        // read): 16 MiB per connection, 4 MiB per stream. An ordinary batch is ~100 KiB
        // compressed, so the agent's 8 batches in flight fit many times over; with the
        // largest batches, streams waiting for memory leave room for the one being read
        // (at 8 MiB, two of them filled the window and stalled it). 32 MiB per connection
        // let each agent's four connections hold 128 MiB beyond the budget.
        .stream_receive_window((4u32 << 20).into())
        .receive_window((16u32 << 20).into());
    cfg.transport_config(Arc::new(transport));
    Ok(cfg)
}
