//! Each parser on its own part of the workload, and the syslog envelope parser alone.
//!
//! `normalizer/<subject>`: the `file` workload split by program and shape (sshd, sudo,
//! auditd, kernel firewall, nginx access, JSON application events), each part through its
//! own `Normalizer` (envelope, message parser, OCSF event; no serialization).
//!
//! `envelope/*`: `envelope::parse` alone on the RFC 3164, RFC 5424 and file records, and, in
//! the same group on the same records, the `syslog_loose` crate, the parser we would have
//! used had we not written our own.
//!
//! `cargo bench -p vedette-benches --bench parsers`; figures in `benches/README.md`.

mod support;

/// The agent binary's allocator, so the figures are the agent's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use syslog_loose::Variant;
use vedette_agent::core::envelope::{self, Format as EnvFormat};
use vedette_agent::core::{NormalizeConfig, Normalizer, Source};

use support::{Format, Lines};

/// Normalizes every record; returns the events (dropped unseen, not serialized).
fn normalize(lines: &Lines, src: &Source) -> usize {
    let mut n = Normalizer::new(NormalizeConfig::default());
    let mut events = 0;
    for (seq, line) in (1..).zip(lines.iter()) {
        n.handle_line(src, seq, line, 0);
        while let Some(ev) = n.poll_event() {
            black_box(ev);
            events += 1;
        }
    }
    n.finish();
    events + std::iter::from_fn(|| n.poll_event()).map(black_box).count()
}

fn normalizer(c: &mut Criterion) {
    let w = support::workload(Format::File);
    let src = support::source(false);
    let mut g = c.benchmark_group("normalizer");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    for (subject, lines) in support::by_subject(&w) {
        assert_eq!(
            normalize(&lines, &src),
            lines.len(),
            "{}: events",
            subject.name()
        );
        g.throughput(Throughput::ElementsAndBytes {
            elements: lines.len() as u64,
            bytes: lines.bytes() as u64,
        });
        g.bench_function(subject.name(), |b| {
            b.iter(|| normalize(black_box(&lines), &src))
        });
    }
    g.finish();
}

/// syslog_loose on one record: year-less times in 2025, zone-less ones in UTC (what ours is
/// given through the source's `TimeContext`).
fn loose(line: &str, variant: Variant) -> syslog_loose::Message<&str> {
    syslog_loose::parse_message_with_year_tz(line, |_| 2025, Some(chrono::Utc), variant)
}

fn envelopes(c: &mut Criterion) {
    let ctx = support::source(true).time;
    let mut g = c.benchmark_group("envelope");
    g.sampling_mode(SamplingMode::Flat);
    g.sample_size(10);
    for (format, theirs) in [
        (Format::Rfc3164, Some(Variant::RFC3164)),
        (Format::Rfc5424Octet, Some(Variant::RFC5424)),
        (Format::File, None),
    ] {
        let w = support::workload(format);
        let lines = w.strs();
        // Both parsers must read every record fully, or the race is between error paths.
        let want = match format {
            Format::Rfc3164 => EnvFormat::Rfc3164,
            Format::Rfc5424Octet => EnvFormat::Rfc5424,
            Format::File => EnvFormat::File,
        };
        for l in &lines {
            let env = envelope::parse(l, &ctx);
            assert!(
                env.format == Some(want) && env.error.is_none() && env.app.is_some(),
                "{l}"
            );
            if let Some(v) = theirs {
                let m = loose(l, v);
                assert!(
                    m.timestamp.is_some() && m.appname.is_some(),
                    "syslog_loose: {l}"
                );
            }
        }
        g.throughput(Throughput::ElementsAndBytes {
            elements: w.len() as u64,
            bytes: w.bytes() as u64,
        });
        g.bench_function(format!("vedette/{}", format.name()), |b| {
            b.iter(|| {
                for l in &lines {
                    black_box(envelope::parse(black_box(l), &ctx));
                }
            });
        });
        if let Some(v) = theirs {
            g.bench_function(format!("syslog_loose/{}", format.name()), |b| {
                b.iter(|| {
                    for l in &lines {
                        black_box(loose(black_box(l), v));
                    }
                });
            });
        }
    }
    g.finish();
}

criterion_group!(benches, normalizer, envelopes);
criterion_main!(benches);
