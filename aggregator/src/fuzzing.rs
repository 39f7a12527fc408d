//! Fuzz bodies for what the aggregator reads from the network: batches from enrolled
//! agents (one of which may be compromised), and enrollment requests, which anyone who can
//! reach the port may send. Each body checks the invariants its parser keeps, beyond "no
//! panic". The cargo-fuzz targets in `fuzz/` and the proptests in `tests/tests/fuzz_props.rs`
//! both call these, so a crash found by one is a regression test in the other.

use std::sync::OnceLock;

use vedette_schemas::wire::{self, BatchHeader, EnrollRequest};
use xxhash_rust::xxh3::xxh3_64;

use crate::core::ingest::{ChunkText, Decoder, Peer};
use crate::identity::token::parse_credential;
use crate::identity::{Authority, cert_identity};

const AGENT: &str = "agt-0123456789abcdef";
const TENANT: &str = "acme";

fn peer() -> Peer {
    Peer {
        agent_id: AGENT.into(),
        tenant: TENANT.into(),
        serial: "01ab".into(),
    }
}

fn header(raw: &[u8], payload: &[u8], events: u32) -> BatchHeader {
    BatchHeader {
        agent_id: AGENT.into(),
        epoch: 1,
        seq: 1,
        events,
        first_time: 0,
        last_time: 0,
        created_ms: 0,
        raw_len: raw.len() as u64,
        zstd_len: payload.len() as u64,
        checksum: xxh3_64(raw),
        watermarks: Vec::new(),
    }
}

/// `data` as the NDJSON of a batch that passes every framing check (length, checksum,
/// event count), so the lines themselves are judged. A decoded batch has one row per line,
/// and its stored chunk reads back as those lines, every one naming the certificate's
/// tenant whatever the line said.
pub fn batch_lines(data: &[u8]) {
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let lines = if body.is_empty() {
        0
    } else {
        memchr::memchr_iter(b'\n', body).count() + 1
    };
    let payload = zstd::bulk::compress(data, 1).expect("zstd compresses");
    let h = header(data, &payload, lines as u32);
    let mut d = Decoder::new().expect("zstd contexts");
    let Ok(batch) = d.decode(&h, &payload, &peer()) else {
        return;
    };
    assert_eq!(batch.rows.len(), lines, "one row per line");
    let text = ChunkText::open(&batch.chunk.data, batch.chunk.raw_len).expect("chunk opens");
    assert_eq!(text.len(), lines, "one stored document per row");
    for (i, row) in batch.rows.iter().enumerate() {
        assert!(!row.uid.is_empty(), "row {i} without a uid");
        let doc = text.line(i).expect("a stored document is JSON");
        assert_eq!(
            doc["metadata"]["tenant_uid"].as_str(),
            Some(TENANT),
            "row {i}: the stored tenant is the certificate's"
        );
        assert_eq!(doc["metadata"]["uid"].as_str(), Some(row.uid.as_str()));
    }
}

/// `data` as a whole batch off the wire: a header frame (JSON, as `wire` frames it) and
/// the payload after it. Refused or decoded, never a panic.
pub fn batch_frame(data: &[u8]) {
    let Ok(Some((head, payload))) = wire::split_frame(data) else {
        return;
    };
    let Ok(h) = wire::decode_frame::<BatchHeader>(head) else {
        return;
    };
    let mut d = Decoder::new().expect("zstd contexts");
    if let Ok(batch) = d.decode(&h, payload, &peer()) {
        assert_eq!(batch.rows.len() as u64, u64::from(h.events));
    }
}

fn authority() -> &'static Authority {
    static CA: OnceLock<Authority> = OnceLock::new();
    CA.get_or_init(|| Authority::create(1_790_000_000_000, 365).expect("a CA"))
}

/// `data` as an enrollment request frame body, the one message served without a client
/// certificate. A request whose token and CSR parse is signed, and the certificate it gets
/// names exactly the agent id and tenant the aggregator chose, never anything from the
/// request. Whether a certificate was issued.
pub fn enroll(data: &[u8]) -> bool {
    let Ok(req) = wire::decode_frame::<EnrollRequest>(data) else {
        return false;
    };
    parse_credential(&req.token).is_ok() && sign(&req.csr_pem)
}

/// `data` as the DER inside a PEM certificate signing request: the CSR parser behind
/// enrollment, on arbitrary bytes. Whether a certificate was issued.
pub fn csr_der(data: &[u8]) -> bool {
    sign(&pem::encode(&pem::Pem::new("CERTIFICATE REQUEST", data)))
}

fn sign(csr_pem: &str) -> bool {
    let Ok(issued) = authority().sign_agent(csr_pem, AGENT, TENANT, 1_790_000_000_000, 3_600_000)
    else {
        return false;
    };
    let der = crate::identity::authority::cert_der_from_pem(&issued.cert_pem)
        .expect("an issued certificate is PEM");
    let who = cert_identity(&der).expect("an issued certificate reads back");
    assert_eq!(who.agent_id, AGENT);
    assert_eq!(who.tenant, TENANT);
    true
}
