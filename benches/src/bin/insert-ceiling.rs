//! The store's ceiling, for `benches/ship-e2e.sh`: the same rows the aggregator would
//! commit, inserted in a bare loop (no network, no decompression, no JSON parsing: all of
//! that is done before the clock starts), batch by batch through `SqliteStore::commit`
//! into a fresh database with the server's settings. Prints rows/s.
//!
//! `insert-ceiling EVENTS.ndjson DB [BATCH_EVENTS]`

use std::time::Instant;

use vedette_aggregator::store::EventStore;
use vedette_aggregator::store::sqlite::{SqliteConfig, SqliteStore};
use vedette_benches::{bench_peer, decoded_batches};

#[expect(
    clippy::disallowed_methods,
    reason = "a benchmark's stopwatch is its clock"
)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let [_, ndjson, db, rest @ ..] = &args[..] else {
        return Err("usage: insert-ceiling EVENTS.ndjson DB [BATCH_EVENTS]".into());
    };
    let per_batch: usize = rest.first().map_or(Ok(1000), |s| s.parse())?;
    let peer = bench_peer();
    let batches = decoded_batches(ndjson, per_batch)?;
    let _ignored = std::fs::remove_file(db);
    let mut store = SqliteStore::open(db, SqliteConfig::default())?;
    let start = Instant::now();
    for (header, decoded) in &batches {
        store.commit(&peer, header, decoded, 0)?;
    }
    let secs = start.elapsed().as_secs_f64();
    let rows = store.event_count()?;
    println!(
        "{{\"rows\": {rows}, \"seconds\": {secs:.3}, \"rows_per_s\": {:.0}, \"batch_events\": {per_batch}}}",
        rows as f64 / secs
    );
    Ok(())
}
