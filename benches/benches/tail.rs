//! The file tail's read path: the whole `file` workload (200,000 lines, 37 MB, in the page
//! cache) read by a fresh `Tailer` from its first byte, through each read backend: plain
//! `pread(2)` and io_uring (one read in flight). In the same group, the floor: `fs::read`
//! of the file and a memchr count of its lines.
//!
//! `cargo bench -p vedette-benches --bench tail`; figures in `benches/README.md`.

mod support;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use vedette_agent::core::tail::ReadFrom;
use vedette_agent::io::tail::{IoUringReads, PlainReads, ReadBackend, TailConfig, Tailer};

use support::Format;

/// Reads `path` to its end through `backend`; returns the lines.
fn tail_all<B: ReadBackend>(path: &Path, backend: B) -> u64 {
    let cfg = TailConfig {
        read_from: ReadFrom::Start,
        max_bytes_per_poll: u64::MAX,
        ..TailConfig::new(vec![path.display().to_string()])
    };
    let mut t = Tailer::with_backend(cfg, backend).expect("tailer");
    let mut lines = 0;
    t.poll(0, &mut |l| {
        black_box(l.bytes);
        lines += 1;
    })
    .expect("poll");
    lines
}

fn tail(c: &mut Criterion) {
    let w = support::workload(Format::File);
    let dir = std::env::temp_dir().join(format!("vedette-bench-tail-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("auth.log");
    std::fs::write(&path, &w.buf).expect("write the workload");
    let n = w.len() as u64;
    assert_eq!(tail_all(&path, PlainReads), n);
    assert_eq!(
        tail_all(&path, IoUringReads::new().expect("io_uring ring")),
        n
    );

    let mut g = c.benchmark_group("tail");
    g.sampling_mode(SamplingMode::Flat).sample_size(10);
    g.throughput(Throughput::ElementsAndBytes {
        elements: n,
        bytes: w.bytes() as u64,
    });
    g.bench_function("plain", |b| b.iter(|| tail_all(&path, PlainReads)));
    g.bench_function("io_uring", |b| {
        b.iter(|| tail_all(&path, IoUringReads::new().expect("io_uring ring")))
    });
    g.bench_function("floor-read-and-count", |b| {
        b.iter(|| {
            let buf = std::fs::read(&path).expect("read");
            memchr::memchr_iter(b'\n', &buf).count()
        })
    });
    g.finish();
    let _ignored = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, tail);
criterion_main!(benches);
