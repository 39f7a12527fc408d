//! The aggregator's per-batch work before the store: `Decoder::decode` (decompress,
//! checksum, split, read each line's indexed fields) over batches of the mixed workload as
//! the agent ships them (its JSON writer, the tenant it writes, its zstd level, batches cut at
//! 1 MiB). Beside it, same run: the reader it replaced (serde_json into a borrowed struct,
//! everything else skipped) over the same lines after the same decompression, and the
//! floor of decompressing and checksumming alone.
//!
//! `cargo bench -p vedette-benches --bench ingest`; figures in `benches/README.md`.

mod support;

/// The aggregator binary's allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::borrow::Cow;
use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use serde::Deserialize;
use vedette_agent::core::{NormalizeConfig, Normalizer};
use vedette_aggregator::core::ingest::Decoder;
use vedette_benches::bench_peer;
use vedette_schemas::wire::BatchHeader;

use support::Format;

/// Records of the workload shipped (about 70 MB of OCSF).
const EVENTS: usize = 40_000;
/// The agent's batch cut.
const BATCH_RAW: usize = 1 << 20;

/// The workload's first [`EVENTS`] records, normalized and cut into batches as the agent
/// ships them.
fn batches() -> Vec<(BatchHeader, Vec<u8>)> {
    let w = support::workload(Format::File);
    let src = support::source(false);
    let peer = bench_peer();
    let mut n = Normalizer::new(NormalizeConfig::default());
    let mut out = Vec::new();
    let mut batches = Vec::new();
    let mut events = 0u32;
    let mut flush = |raw: &mut Vec<u8>, events: &mut u32| {
        let payload = zstd::bulk::compress(raw, vedette_agent::core::batcher::DEFAULT_ZSTD_LEVEL)
            .expect("zstd compresses");
        let header = BatchHeader {
            agent_id: peer.agent_id.clone(),
            epoch: 1,
            seq: batches.len() as u64 + 1,
            events: *events,
            first_time: 0,
            last_time: 0,
            created_ms: 0,
            raw_len: raw.len() as u64,
            zstd_len: payload.len() as u64,
            checksum: xxhash_rust::xxh3::xxh3_64(raw),
            watermarks: Vec::new(),
        };
        batches.push((header, payload));
        raw.clear();
        *events = 0;
    };
    for (seq, line) in (1..).zip(w.iter().take(EVENTS)) {
        n.handle_line(&src, seq, line, 0);
        while let Some(mut ev) = n.poll_event() {
            ev.metadata.tenant_uid = Some(peer.tenant.as_str().into());
            vedette_agent::core::output::write_json_line(&ev, &mut out);
            events += 1;
            if out.len() >= BATCH_RAW {
                flush(&mut out, &mut events);
            }
        }
    }
    if events > 0 {
        flush(&mut out, &mut events);
    }
    batches
}

/// The reader `Decoder::decode` used before its simd-json tape reader: serde_json into
/// borrowed fields, every other key skipped (but still parsed and validated).
#[derive(Deserialize)]
#[expect(dead_code, reason = "read to be as costly as the reader was, not used")]
struct SerdeFields<'a> {
    #[serde(borrow)]
    metadata: SerdeMeta<'a>,
    time: i64,
    class_uid: i64,
    type_uid: i64,
    severity_id: i64,
    #[serde(borrow, default)]
    device: Option<SerdeHost<'a>>,
    #[serde(borrow, default)]
    user: Option<SerdeName<'a>>,
    #[serde(borrow, default)]
    actor: Option<SerdeActor<'a>>,
    #[serde(borrow, default)]
    src_endpoint: Option<SerdeIp<'a>>,
    #[serde(borrow, default)]
    dst_endpoint: Option<SerdeIp<'a>>,
    #[serde(default)]
    count: Option<u64>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "read, not used")]
struct SerdeMeta<'a> {
    #[serde(borrow)]
    uid: Cow<'a, str>,
    #[serde(borrow, default)]
    tenant_uid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "read, not used")]
struct SerdeHost<'a> {
    #[serde(borrow, default)]
    hostname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "read, not used")]
struct SerdeName<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "read, not used")]
struct SerdeActor<'a> {
    #[serde(borrow, default)]
    user: Option<SerdeName<'a>>,
}

#[derive(Deserialize)]
#[expect(dead_code, reason = "read, not used")]
struct SerdeIp<'a> {
    #[serde(borrow, default)]
    ip: Option<Cow<'a, str>>,
}

fn ingest(c: &mut Criterion) {
    let batches = batches();
    let events: u64 = batches.iter().map(|(h, _)| u64::from(h.events)).sum();
    let raw: u64 = batches.iter().map(|(h, _)| h.raw_len).sum();
    let peer = bench_peer();
    let mut decoder = Decoder::new().expect("zstd contexts");
    // Every line takes the reader under test: check once, outside the timing.
    for (h, p) in &batches {
        let d = decoder
            .decode(h, p, &peer)
            .expect("the agent's batches decode");
        assert_eq!(
            d.chunk.data, *p,
            "stored as sent: every line took the fast path"
        );
    }

    let mut g = c.benchmark_group("ingest/file");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    g.throughput(Throughput::ElementsAndBytes {
        elements: events,
        bytes: raw,
    });
    g.bench_function("decode", |b| {
        b.iter(|| {
            for (h, p) in &batches {
                black_box(decoder.decode(h, p, &peer).expect("decodes"));
            }
        });
    });
    let mut unzstd = zstd::bulk::Decompressor::new().expect("zstd context");
    let mut unpack = |h: &BatchHeader, p: &[u8]| {
        let raw = unzstd
            .decompress(p, h.raw_len as usize)
            .expect("decompresses");
        assert_eq!(xxhash_rust::xxh3::xxh3_64(&raw), h.checksum);
        raw
    };
    g.bench_function("decompress+serde_json-fields", |b| {
        b.iter(|| {
            for (h, p) in &batches {
                let raw = unpack(h, p);
                for line in raw.split(|&c| c == b'\n').filter(|l| !l.is_empty()) {
                    let f: SerdeFields<'_> = serde_json::from_slice(line).expect("reads");
                    black_box(f);
                }
            }
        });
    });
    g.bench_function("floor:decompress+checksum", |b| {
        b.iter(|| {
            for (h, p) in &batches {
                black_box(unpack(h, p));
            }
        });
    });
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
