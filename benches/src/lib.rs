//! Criterion benches live in `benches/`; this library holds only what the store binaries
//! (`insert-ceiling`, `store-layouts`) share.

use std::io::BufRead;

use vedette_aggregator::core::ingest::{DecodedBatch, Decoder, Peer, encode_batch};
use vedette_schemas::wire::BatchHeader;

/// The agent the benches' batches come from.
pub fn bench_peer() -> Peer {
    Peer {
        agent_id: "agt-0000000000000001".into(),
        tenant: "default".into(),
        serial: "01ab".into(),
    }
}

/// The events of an NDJSON file (blank lines skipped), encoded into wire batches of
/// `per_batch` as [`bench_peer`] would send them and decoded as the aggregator does:
/// everything a store insert needs, made before any clock starts.
pub fn decoded_batches(
    ndjson: &str,
    per_batch: usize,
) -> Result<Vec<(BatchHeader, DecodedBatch)>, Box<dyn std::error::Error>> {
    let mut events = Vec::new();
    for line in std::io::BufReader::new(std::fs::File::open(ndjson)?).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            events.push(serde_json::from_str::<serde_json::Value>(&line)?);
        }
    }
    let peer = bench_peer();
    let mut decoder = Decoder::new()?;
    let mut batches = Vec::new();
    for (i, chunk) in events.chunks(per_batch).enumerate() {
        let (header, payload) = encode_batch(&peer.agent_id, 1, i as u64 + 1, chunk, Vec::new(), 0);
        let decoded = decoder.decode(&header, &payload, &peer)?;
        batches.push((header, decoded));
    }
    Ok(batches)
}
