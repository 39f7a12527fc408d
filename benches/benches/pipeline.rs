//! The whole path one record takes in the agent, minus the I/O: split the buffer into
//! records, normalize each (envelope, message parser, OCSF event), serialize every event as a
//! JSON line into a reused buffer. Over the generated mixed workload as an auth.log-style
//! file, as RFC 3164 and as octet-counted RFC 5424; next to it, in the same group, the floor:
//! splitting the same buffer into records and nothing else.
//!
//! `cargo bench -p vedette-benches --bench pipeline`; figures in `benches/README.md`.

mod support;

/// The agent binary's allocator, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use vedette_agent::core::{NormalizeConfig, Normalizer, Source};
use vedette_schemas::ocsf::Event;

use support::{Format, Lines, OctetFrames};

/// Flush threshold of the output buffer: what a sink's write buffer would hold.
const OUT_FLUSH: usize = 1 << 20;

/// How an event becomes a JSON line.
type Serialize = fn(&Event, &mut Vec<u8>);

/// What the agent uses (the schema's direct writer).
fn agent_json(ev: &Event, out: &mut Vec<u8>) {
    vedette_agent::core::output::write_json_line(ev, out);
}

/// serde_json, the baseline the agent's choice is measured against.
fn serde_json_line(ev: &Event, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, ev).expect("event serializes");
    out.push(b'\n');
}

/// Serializes every finished event as a JSON line into `out`; returns how many.
fn drain(n: &mut Normalizer, out: &mut Vec<u8>, ser: Serialize) -> u64 {
    let mut events = 0;
    while let Some(ev) = n.poll_event() {
        ser(&ev, out);
        events += 1;
    }
    if out.len() >= OUT_FLUSH {
        out.clear();
    }
    events
}

/// The full path over `records` (as split from one buffer); returns the events written.
fn normalize<'a>(
    records: impl Iterator<Item = &'a [u8]>,
    src: &Source,
    out: &mut Vec<u8>,
    ser: Serialize,
) -> u64 {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let mut events = 0;
    for (seq, rec) in (1..).zip(records) {
        n.handle_line(src, seq, rec, 0);
        events += drain(&mut n, out, ser);
    }
    n.finish();
    events + drain(&mut n, out, ser)
}

/// Splits `buf` as `format` frames it and runs the full path; returns the events written.
fn full(format: Format, buf: &[u8], src: &Source, out: &mut Vec<u8>, ser: Serialize) -> u64 {
    match format {
        Format::Rfc5424Octet => normalize(OctetFrames::new(buf).map(|(_, r)| r), src, out, ser),
        Format::File | Format::Rfc3164 => {
            let mut start = 0;
            let lines = memchr::memchr_iter(b'\n', buf).map(|nl| {
                let line = &buf[start..nl];
                start = nl + 1;
                line
            });
            normalize(lines, src, out, ser)
        }
    }
}

/// The floor: records found in the buffer, doing nothing with them.
fn floor(format: Format, buf: &[u8]) -> usize {
    match format {
        Format::Rfc5424Octet => OctetFrames::new(buf).count(),
        Format::File | Format::Rfc3164 => memchr::memchr_iter(b'\n', buf).count(),
    }
}

fn pipeline(c: &mut Criterion) {
    for format in [Format::File, Format::Rfc3164, Format::Rfc5424Octet] {
        let w: Lines = support::workload(format);
        let src = support::source(format.syslog());
        let mut out = Vec::with_capacity(OUT_FLUSH + (64 << 10));
        // Every record of the workload is one event (auditd records are single-record
        // events there): check once, outside the timing.
        let events = full(format, &w.buf, &src, &mut out, agent_json);
        assert_eq!(events, w.len() as u64, "{}: events", format.name());
        assert_eq!(
            floor(format, &w.buf),
            w.len(),
            "{}: floor records",
            format.name()
        );

        let mut g = c.benchmark_group(format!("pipeline/{}", format.name()));
        g.sampling_mode(SamplingMode::Flat);
        g.sample_size(10);
        g.throughput(Throughput::ElementsAndBytes {
            elements: w.len() as u64,
            bytes: w.bytes() as u64,
        });
        g.bench_function("normalize+serialize", |b| {
            b.iter(|| full(format, black_box(&w.buf), &src, &mut out, agent_json));
        });
        if format == Format::File {
            // The ceiling serialization alone sets: the same events, already built (outside
            // the timing, and only when the bench is selected).
            let build = || -> Vec<Box<Event>> {
                let mut n = Normalizer::new(NormalizeConfig::default());
                let lines = w.buf.split(|&c| c == b'\n').filter(|l| !l.is_empty());
                for (seq, line) in (1..).zip(lines) {
                    n.handle_line(&src, seq, line, 0);
                }
                n.finish();
                std::iter::from_fn(|| n.poll_event()).collect()
            };
            for (name, ser) in [
                ("serialize-only", agent_json as Serialize),
                ("serialize-only(serde_json)", serde_json_line),
            ] {
                g.bench_function(name, |b| {
                    let built = build();
                    b.iter(|| {
                        for ev in &built {
                            ser(black_box(ev), &mut out);
                            if out.len() >= OUT_FLUSH {
                                out.clear();
                            }
                        }
                    });
                });
            }
            // The reason for the direct writer: the same path with serde_json, same run.
            g.bench_function("normalize+serialize(serde_json)", |b| {
                b.iter(|| full(format, black_box(&w.buf), &src, &mut out, serde_json_line));
            });
        }
        let split = if format == Format::Rfc5424Octet {
            "octet-split"
        } else {
            "memchr-split"
        };
        g.bench_function(format!("floor:{split}"), |b| {
            b.iter(|| floor(format, black_box(&w.buf)));
        });
        g.finish();
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
