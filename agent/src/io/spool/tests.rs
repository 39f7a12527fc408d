use std::sync::mpsc;

use super::*;
use crate::core::batcher::{BatchConfig, Batcher};

/// A fresh directory under the temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> Self {
        let p = std::env::temp_dir().join(format!("vedette-spool-{}-{name}", std::process::id()));
        fs::remove_dir_all(&p).ok();
        fs::create_dir_all(&p).unwrap();
        Self(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        fs::remove_dir_all(&self.0).ok();
    }
}

/// The next `n` writes fail with ENOSPC after a partial header (`u32::MAX`: all of
/// them, `0`: none).
fn fail_writes(spool: &Spool, n: u32) {
    spool
        .fail_writes
        .store(n, std::sync::atomic::Ordering::SeqCst);
}

/// Drop-oldest, a segment per record: each drop frees one batch.
fn drop_oldest_per_record() -> SpoolConfig {
    SpoolConfig {
        when_full: FullPolicy::DropOldest,
        segment_bytes: 1,
        ..cfg()
    }
}

fn cfg() -> SpoolConfig {
    SpoolConfig {
        max_bytes: 1 << 20,
        segment_bytes: 4096,
        fsync: FsyncPolicy::Never,
        when_full: FullPolicy::Block,
    }
}

/// A real batch of `events` small events, cut with the spool's next seq.
fn batch(spool: &Spool, events: u32) -> EncodedBatch {
    let mut b = Batcher::new(BatchConfig::default());
    let seq = spool.next_seq();
    for i in 0..events {
        b.push_event(format!("{{\"seq\":{seq},\"i\":{i}}}\n").as_bytes(), 1, 0);
    }
    b.cut("agent", spool.epoch(), seq, 1000 + seq as i64)
        .unwrap()
}

fn append(spool: &Spool, events: u32) -> EncodedBatch {
    let b = batch(spool, events);
    spool.append(&b).unwrap();
    b
}

/// Hands out everything waiting: seqs in order, each decoded and checked.
fn drain(spool: &Spool) -> Vec<u64> {
    let mut out = Vec::new();
    while let Some((seq, bytes)) = spool.next_unsent().unwrap() {
        let (h, _) = batcher::decode(&bytes).unwrap();
        assert_eq!(h.seq, seq);
        assert_eq!(h.epoch, spool.epoch());
        out.push(seq);
    }
    out
}

fn segment_files(dir: &Path) -> Vec<PathBuf> {
    list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|(_, p)| p)
        .collect()
}

#[test]
fn append_ack_restart_keeps_order_and_seq_continuity() {
    let dir = TempDir::new("continuity");
    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert!(report.created);
    assert_eq!(report.next_seq, 1);
    let epoch = spool.epoch();
    let sent: Vec<EncodedBatch> = (0..20).map(|i| append(&spool, 1 + i % 5)).collect();
    assert!(segment_files(&dir.0).len() > 1, "segments rotate at 4 KiB");
    let mut seen = Vec::new();
    while let Some((seq, bytes)) = spool.next_unsent().unwrap() {
        assert_eq!(bytes, sent[seq as usize - 1].bytes, "bytes as appended");
        seen.push(seq);
    }
    assert_eq!(seen, (1..=20).collect::<Vec<_>>());
    for seq in 1..=20 {
        assert!(spool.ack(seq).unwrap());
    }
    assert!(!spool.ack(3).unwrap(), "a second ack is a no-op");
    let st = spool.stats();
    assert_eq!((st.batches, st.bytes, st.acked), (0, 0, 20));
    assert_eq!(
        segment_files(&dir.0).len(),
        1,
        "acknowledged segments are deleted, the active one stays"
    );
    drop(spool);

    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert_eq!(spool.epoch(), epoch);
    assert_eq!((report.batches, report.next_seq), (0, 21));
    append(&spool, 1);
    assert_eq!(drain(&spool), [21]);
    spool.ack(21).unwrap();
    // Every segment acknowledged and deleted: the high-water mark keeps the numbering.
    spool.append(&batch(&spool, 1)).unwrap();
    spool.ack(22).unwrap();
    {
        let mut g = spool.lock();
        let a = g.active.unwrap();
        spool.seal(&mut g, a).unwrap();
    }
    assert!(segment_files(&dir.0).is_empty());
    drop(spool);
    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert_eq!(report.next_seq, 23);
    assert_eq!(spool.next_seq(), 23);
}

#[test]
fn restart_resends_unacked_only() {
    let dir = TempDir::new("resend");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    for _ in 0..10 {
        append(&spool, 3);
    }
    assert_eq!(drain(&spool).len(), 10);
    for seq in [1, 2, 3, 5, 8] {
        spool.ack(seq).unwrap();
    }
    drop(spool);
    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert_eq!(report.batches, 5);
    assert_eq!(report.damaged_records, 0);
    assert_eq!(drain(&spool), [4, 6, 7, 9, 10]);
    assert_eq!(spool.stats().oldest_created_ms, Some(1004));
}

#[test]
fn requeue_hands_out_everything_unacked_again_in_order() {
    let dir = TempDir::new("requeue");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    for _ in 0..5 {
        append(&spool, 1);
    }
    assert_eq!(spool.next_unsent().unwrap().unwrap().0, 1);
    assert_eq!(spool.next_unsent().unwrap().unwrap().0, 2);
    assert_eq!(spool.next_unsent().unwrap().unwrap().0, 3);
    spool.ack(2).unwrap();
    spool.requeue_unacked();
    assert_eq!(drain(&spool), [1, 3, 4, 5]);
    assert!(!spool.has_unsent());
}

#[test]
fn torn_tail_after_a_crash_loses_exactly_that_record() {
    let dir = TempDir::new("torn");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    for _ in 0..3 {
        append(&spool, 2);
    }
    let last = spool.lock().index[&3];
    drop(spool);
    let seg = &segment_files(&dir.0)[0];
    let full = fs::metadata(seg).unwrap().len();
    // The crash cut the third record in the middle of its payload.
    let cut = last.offset + last.len / 2;
    OpenOptions::new()
        .write(true)
        .open(seg)
        .unwrap()
        .set_len(cut)
        .unwrap();

    let v = verify(&dir.0).unwrap();
    assert_eq!(v.segments[0].torn_tail, Some(last.offset..cut));
    assert!(!v.is_clean());
    assert_eq!(
        fs::metadata(seg).unwrap().len(),
        cut,
        "verify changes nothing"
    );

    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert_eq!(report.batches, 2);
    assert_eq!(report.truncated_bytes, cut - last.offset);
    assert_eq!(report.damaged_records, 0);
    assert_eq!(fs::metadata(seg).unwrap().len(), last.offset);
    assert!(full > cut);
    assert_eq!(drain(&spool), [1, 2]);
    // The lost seq was never handed out (its write did not finish): it is reused.
    assert_eq!(spool.next_seq(), 3);
    append(&spool, 1);
    assert_eq!(drain(&spool), [3]);
    assert!(verify(&dir.0).unwrap().is_clean());
}

#[test]
fn a_flipped_byte_in_the_middle_record_loses_exactly_it() {
    let dir = TempDir::new("flip");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    for _ in 0..3 {
        append(&spool, 2);
    }
    let mid = spool.lock().index[&2];
    drop(spool);
    let seg = &segment_files(&dir.0)[0];
    let mut data = fs::read(seg).unwrap();
    data[(mid.offset + mid.len / 2) as usize] ^= 0x20;
    fs::write(seg, &data).unwrap();

    let v = verify(&dir.0).unwrap();
    assert_eq!(v.damaged_records(), 1);
    assert_eq!(
        v.segments[0].damaged,
        vec![mid.offset..mid.offset + mid.len]
    );
    assert_eq!(v.batches(), 2);
    let text = v.to_string();
    assert!(
        text.contains(&format!(
            "damaged record at bytes {}..{}",
            mid.offset,
            mid.offset + mid.len
        )),
        "{text}"
    );
    assert!(text.contains("00000000000000000001.seg"), "{text}");

    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert_eq!(report.batches, 2);
    assert_eq!(report.damaged_records, 1);
    assert_eq!(report.damaged_bytes, mid.len);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(drain(&spool), [1, 3]);
    assert_eq!(spool.stats().damaged_records, 1);
    assert_eq!(spool.next_seq(), 4);
}

#[test]
fn damage_appearing_after_open_is_skipped_and_counted() {
    let dir = TempDir::new("rot");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    for _ in 0..3 {
        append(&spool, 1);
    }
    let mid = spool.lock().index[&2];
    let seg = &segment_files(&dir.0)[0];
    let f = OpenOptions::new().write(true).open(seg).unwrap();
    f.write_all_at(&[0xff], mid.offset + mid.len - 1).unwrap();
    assert_eq!(drain(&spool), [1, 3]);
    let st = spool.stats();
    assert_eq!(
        (st.damaged_records, st.damaged_bytes, st.batches),
        (1, mid.len, 2)
    );
}

#[test]
fn block_waits_until_an_ack_frees_a_segment() {
    let dir = TempDir::new("block");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let one = batch(&spool, 1);
    let rec = (HEADER_LEN + one.bytes.len()) as u64;
    drop(spool);
    // Room for three records, one per segment.
    let cfg = SpoolConfig {
        max_bytes: rec * 3 + rec / 2,
        segment_bytes: rec,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    for _ in 0..3 {
        append(&spool, 1);
    }
    assert_eq!(segment_files(&dir.0).len(), 3);
    let next = batch(&spool, 1);
    assert_eq!(next.bytes.len(), one.bytes.len());
    let (tx, rx) = mpsc::channel();
    let s = Arc::clone(&spool);
    let t = std::thread::spawn(move || tx.send(s.append(&next)).unwrap());
    while spool.waiters() == 0 {
        assert!(!t.is_finished(), "the append did not block");
        std::thread::yield_now();
    }
    assert!(rx.try_recv().is_err(), "blocked while full");
    spool.ack(1).unwrap();
    rx.recv().unwrap().unwrap();
    t.join().unwrap();
    assert_eq!(drain(&spool), [2, 3, 4]);
    let st = spool.stats();
    assert_eq!((st.dropped_batches, st.batches), (0, 3));
}

/// A spool in `dir` with room for `halves` / 2 records of one-event batches, a segment
/// per record.
fn spool_with_room(dir: &TempDir, halves: u64) -> Arc<Spool> {
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let rec = (HEADER_LEN + batch(&spool, 1).bytes.len()) as u64;
    drop(spool);
    let cfg = SpoolConfig {
        max_bytes: rec * halves / 2,
        segment_bytes: rec,
        ..cfg()
    };
    Spool::open(&dir.0, cfg).unwrap().0
}

#[test]
fn a_stop_gives_up_only_the_appends_that_wait_for_space() {
    // At a stop the spool was closed after the drain time whether full or not: with room
    // left, the last batches (a syslog listener's last messages, which nothing reads
    // again) were refused too.
    let dir = TempDir::new("stop-waiting");
    let spool = spool_with_room(&dir, 5);
    append(&spool, 1);
    spool.stop_waiting();
    assert!(spool.is_closed());
    spool
        .append(&batch(&spool, 1))
        .expect("room for one more: taken");
    assert!(matches!(
        spool.append(&batch(&spool, 1)),
        Err(SpoolError::Closed)
    ));
    assert_eq!(spool.next_seq(), 3);
}

#[test]
fn close_or_a_stop_releases_a_blocked_append() {
    type Release = fn(&Spool);
    let releases: [(&str, Release); 2] = [
        ("close", Spool::close),
        ("stop-waiting-blocked", Spool::stop_waiting),
    ];
    for (name, release) in releases {
        let dir = TempDir::new(name);
        let spool = spool_with_room(&dir, 3);
        append(&spool, 1);
        let next = batch(&spool, 1);
        let s = Arc::clone(&spool);
        let t = std::thread::spawn(move || s.append(&next));
        while spool.waiters() == 0 {
            assert!(!t.is_finished(), "{name}: the append did not block");
            std::thread::yield_now();
        }
        release(&spool);
        assert!(
            matches!(t.join().unwrap(), Err(SpoolError::Closed)),
            "{name}"
        );
        assert_eq!(spool.next_seq(), 2, "{name}: the refused batch took no seq");
    }
}

#[test]
fn drop_oldest_drops_and_counts_exactly() {
    let dir = TempDir::new("dropoldest");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let rec = (HEADER_LEN + batch(&spool, 4).bytes.len()) as u64;
    drop(spool);
    // Two records per segment, two segments fit.
    // (Slack: compressed sizes differ by a byte or two from batch to batch.)
    let cfg = SpoolConfig {
        max_bytes: rec * 4 + rec / 2,
        segment_bytes: rec * 2 + rec / 2,
        when_full: FullPolicy::DropOldest,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    for _ in 0..4 {
        append(&spool, 4);
    }
    assert_eq!(spool.next_unsent().unwrap().unwrap().0, 1, "1 is in flight");
    assert_eq!(spool.stats().dropped_batches, 0);
    append(&spool, 4); // drops segment 1 (seqs 1, 2)
    let st = spool.stats();
    assert_eq!(
        (st.dropped_batches, st.dropped_events, st.batches),
        (1, 4, 3),
        "seq 2 is lost; seq 1 is on the wire and its ack decides"
    );
    assert!(
        !spool.ack(1).unwrap(),
        "an ack of a dropped batch frees nothing"
    );
    assert_eq!(
        spool.stats().dropped_batches,
        1,
        "seq 1 was stored after all: not a loss"
    );
    assert_eq!(drain(&spool), [3, 4, 5]);
    spool.ack(3).unwrap();
    append(&spool, 4); // fits: seq 5's segment has room
    append(&spool, 4); // drops segment 3 (seq 4 only: 3 was acked)
    let st = spool.stats();
    assert_eq!(
        (st.dropped_batches, st.dropped_events, st.batches),
        (1, 4, 3),
        "seq 4 is on the wire: not counted yet"
    );
    assert!(st.disk_bytes <= rec * 4 + rec / 2);
    spool.requeue_unacked(); // the connection ended without seq 4's ack: lost
    let st = spool.stats();
    assert_eq!((st.dropped_batches, st.dropped_events), (2, 8));
    assert!(
        !spool.ack(4).unwrap(),
        "a late ack of a counted loss changes nothing"
    );
    spool.requeue_unacked();
    assert_eq!(spool.stats().dropped_batches, 2, "counted once");
    assert_eq!(drain(&spool), [5, 6, 7]);
}

#[test]
fn a_batch_bigger_than_the_spool_is_refused_and_handed_back() {
    let dir = TempDir::new("toolarge");
    let cfg = SpoolConfig {
        max_bytes: 100,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    let b = batch(&spool, 50);
    assert!(matches!(
        spool.append(&b),
        Err(SpoolError::TooLarge { limit: 100, .. })
    ));
    drop(spool);
    let (spool, _) = Spool::open(&dir.0, super::tests::cfg()).unwrap();
    let mut wrong = batch(&spool, 1);
    wrong.header.seq = 7;
    let err = spool.append(&wrong).unwrap_err();
    assert!(
        matches!(
            err,
            SpoolError::OutOfOrder {
                expected: 1,
                got: 7
            }
        ),
        "{err}"
    );
}

#[test]
fn enospc_rolls_back_and_drops_oldest() {
    let dir = TempDir::new("enospc-drop");
    let (spool, _) = Spool::open(&dir.0, drop_oldest_per_record()).unwrap();
    append(&spool, 2);
    append(&spool, 2);
    let before: u64 = segment_files(&dir.0)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    fail_writes(&spool, 1);
    append(&spool, 2);
    let st = spool.stats();
    assert_eq!((st.dropped_batches, st.dropped_events), (1, 2));
    assert_eq!(drain(&spool), [2, 3]);
    // The partial header went with the rollback: the files hold whole records only.
    let v = verify(&dir.0).unwrap();
    assert!(v.is_clean(), "{v}");
    let after: u64 = segment_files(&dir.0)
        .iter()
        .map(|p| fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(after, before, "one record dropped, one added, same size");
    // Nothing left to drop (a device full of someone else's files): drop-oldest never
    // fails for lack of space, the new batch itself is dropped and counted.
    spool.ack(2).unwrap();
    spool.ack(3).unwrap();
    fail_writes(&spool, u32::MAX);
    append(&spool, 5);
    let st = spool.stats();
    assert_eq!(
        (st.dropped_batches, st.dropped_events, st.batches),
        (2, 7, 0)
    );
    assert_eq!(spool.next_seq(), 5, "the dropped batch used its seq up");
    fail_writes(&spool, 0);
    append(&spool, 1);
    assert_eq!(drain(&spool), [5]);
    assert!(verify(&dir.0).unwrap().is_clean());
}

#[test]
fn drop_oldest_drops_a_batch_too_large_for_the_spool_counted() {
    let dir = TempDir::new("toolarge-drop");
    let cfg = SpoolConfig {
        max_bytes: 100,
        when_full: FullPolicy::DropOldest,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    append(&spool, 50);
    let st = spool.stats();
    assert_eq!(
        (st.dropped_batches, st.dropped_events, st.batches),
        (1, 50, 0)
    );
    assert_eq!(spool.next_seq(), 2);
    assert!(spool.next_unsent().unwrap().is_none());
}

#[test]
fn enospc_with_block_and_nothing_waiting_blocks_until_close() {
    // A device full of someone else's files: no ack can free it, but another process
    // may; the append waits (retrying) instead of failing, and close lets it go.
    let dir = TempDir::new("enospc-block-empty");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    fail_writes(&spool, u32::MAX);
    let next = batch(&spool, 1);
    let s = Arc::clone(&spool);
    let t = std::thread::spawn(move || s.append(&next));
    while spool.waiters() == 0 {
        assert!(!t.is_finished(), "the append did not block");
        std::thread::yield_now();
    }
    spool.close();
    assert!(matches!(t.join().unwrap(), Err(SpoolError::Closed)));
    assert_eq!(spool.waiters(), 0);
    assert_eq!(spool.next_seq(), 1, "the refused batch took no seq");
    assert_eq!(spool.stats().dropped_batches, 0);
}

#[test]
fn a_bad_state_file_gets_a_new_epoch_and_the_spool_still_opens() {
    let dir = TempDir::new("state");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let old = spool.epoch();
    append(&spool, 1);
    drop(spool);
    fs::write(dir.0.join(STATE), "garbage").unwrap();
    let (spool, report) = Spool::open(&dir.0, cfg()).unwrap();
    assert!(report.state_reset);
    assert_ne!(spool.epoch(), old);
    assert_eq!((report.batches, report.next_seq), (1, 2));
}

#[tokio::test(flavor = "current_thread")]
async fn the_shipper_wakes_for_new_batches_and_at_close() {
    let dir = TempDir::new("notify");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let s = Arc::clone(&spool);
    let shipper = tokio::spawn(async move {
        let mut got = Vec::new();
        loop {
            while let Some((seq, _)) = s.next_unsent().unwrap() {
                got.push(seq);
            }
            if s.is_closed() {
                return got;
            }
            s.wait_unsent().await;
        }
    });
    let s = Arc::clone(&spool);
    tokio::task::spawn_blocking(move || {
        for _ in 0..5 {
            append(&s, 1);
        }
    })
    .await
    .unwrap();
    spool.close();
    assert_eq!(shipper.await.unwrap(), [1, 2, 3, 4, 5]);
}

/// The agent's shipper spun at 100% CPU once the spool was closed (at SIGTERM, to let a
/// blocked append go): `wait_unsent` returned at once for good on a closed spool, so its
/// loop never yielded, starving the one runtime thread (the control task that ends the
/// agent included). A closed spool wakes the waiter once, then it waits again.
#[test]
fn a_closed_spool_wakes_the_shipper_once_not_for_good() {
    use std::future::Future;
    use std::task::{Context, Waker};
    let dir = TempDir::new("closed-wait");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let mut cx = Context::from_waker(Waker::noop());
    let poll = |cx: &mut Context<'_>| {
        let mut f = std::pin::pin!(spool.wait_unsent());
        f.as_mut().poll(cx)
    };
    assert!(poll(&mut cx).is_pending(), "nothing to hand out");
    spool.close();
    // Woken by the close (the permit it leaves), once.
    assert!(poll(&mut cx).is_ready());
    assert!(
        poll(&mut cx).is_pending(),
        "a closed spool must not make it spin"
    );
    assert!(poll(&mut cx).is_pending());
    // A requeue after a lost connection still wakes it.
    spool.requeue_unacked();
    assert!(poll(&mut cx).is_ready());
    assert!(poll(&mut cx).is_pending());
}

/// A tmpfs mounted over a directory for a test's life. Root only, as CI runs: the test
/// fails (it does not skip) where it cannot mount.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(at: &Path, kib: u64) -> Self {
        let st = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={kib}k"), "tmpfs"])
            .arg(at)
            .status();
        assert!(
            st.as_ref().is_ok_and(|s| s.success()),
            "mounting a tmpfs at {} failed ({st:?}): this test needs root",
            at.display()
        );
        Self(at.to_owned())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        std::process::Command::new("umount")
            .arg(&self.0)
            .status()
            .ok();
    }
}

/// Cuts batches of 40 incompressible events (about 5 KiB each).
struct Noise {
    b: Batcher,
    x: u64,
}

impl Noise {
    fn new() -> Self {
        Self {
            b: Batcher::new(BatchConfig::default()),
            x: 0x9e37_79b9_7f4a_7c15,
        }
    }

    fn batch(&mut self, spool: &Spool) -> EncodedBatch {
        let seq = spool.next_seq();
        for _ in 0..40 {
            let line: String = (0..64)
                .map(|_| {
                    self.x ^= self.x << 13;
                    self.x ^= self.x >> 7;
                    self.x ^= self.x << 17;
                    format!("{:02x}", self.x as u8)
                })
                .collect();
            self.b
                .push_event(format!("{{\"r\":\"{line}\"}}\n").as_bytes(), 0, 0);
        }
        self.b.cut("agent", spool.epoch(), seq, 0).unwrap()
    }
}

/// A real full filesystem: a 64 KiB tmpfs. DropOldest keeps appending past the point the
/// device fills, and every file stays made of whole records.
#[test]
fn a_real_full_tmpfs_counts_as_full() {
    let dir = TempDir::new("tmpfs");
    let _mount = Tmpfs::mount(&dir.0, 64);
    let cfg = SpoolConfig {
        max_bytes: 1 << 30,
        segment_bytes: 8 << 10,
        when_full: FullPolicy::DropOldest,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    let mut noise = Noise::new();
    for _ in 0..60 {
        let batch = noise.batch(&spool);
        spool.append(&batch).unwrap();
    }
    let st = spool.stats();
    assert!(
        st.dropped_batches > 0,
        "64 KiB cannot hold 60 batches: {st:?}"
    );
    assert_eq!(st.dropped_events, st.dropped_batches * 40);
    assert_eq!(st.batches + st.dropped_batches, 60);
    let v = verify(&dir.0).unwrap();
    assert!(v.is_clean(), "{v}");
    drop(spool);
}

/// The drop-oldest bug of the agent on a small tmpfs: segments sized for a spool far
/// bigger than the device, so the only segment is the one being written. Dropping it
/// must save the high-water mark, whose temp file did not fit: the segment was unlinked
/// but its space stayed held by the spool's own open handle, the retry failed too, and
/// the append failed (the stage died). Now every append succeeds, losses counted.
#[test]
fn drop_oldest_on_a_full_tmpfs_with_one_big_segment_never_fails() {
    let dir = TempDir::new("tmpfs-one-seg");
    let _mount = Tmpfs::mount(&dir.0, 64);
    let cfg = SpoolConfig {
        max_bytes: 1 << 30,
        segment_bytes: 1 << 30,
        when_full: FullPolicy::DropOldest,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    let mut noise = Noise::new();
    for i in 0..100 {
        let batch = noise.batch(&spool);
        spool
            .append(&batch)
            .unwrap_or_else(|e| panic!("append {i}: {e}; {:?}", spool.stats()));
        // The shipper reads while the stage appends: its handle on a dropped segment
        // must not keep the space either.
        if i % 3 == 0 {
            spool.next_unsent().unwrap();
        }
    }
    // No ack came for what was handed out: once the connection ends, the dropped ones
    // among them are losses.
    spool.requeue_unacked();
    let st = spool.stats();
    assert!(st.dropped_batches > 0, "{st:?}");
    assert_eq!(st.dropped_events, st.dropped_batches * 40);
    assert_eq!(st.batches + st.dropped_batches, 100);
    assert!(
        segment_files(&dir.0).len() > 1,
        "segments sized for the device once it filled up"
    );
    let v = verify(&dir.0).unwrap();
    assert!(v.is_clean(), "{v}");
    drop(spool);
    // Numbering continues after a restart.
    let (spool, report) = Spool::open(&dir.0, cfg).unwrap();
    assert_eq!(report.next_seq, 101);
    assert_eq!(spool.stats().batches, st.batches);
}

/// Fills what is left of the filesystem at `dir` with a file of its own, up to ENOSPC.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut f = File::create(&path).unwrap();
    let page = [0x5a_u8; 4096];
    loop {
        match f.write_all(&page) {
            Ok(()) => {}
            Err(e) if is_no_space(&e) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    path
}

/// A peer's disk buffer refuses to start on a full disk, which is exactly when a host is
/// in trouble. Opening after a reboot must write a new epoch into the state, and opening
/// compacts the acknowledgement log: with no byte free, the spool still opens, keeps its
/// state in memory, hands out what waits, and writes the state with the first append
/// once there is room.
#[test]
fn a_full_disk_never_keeps_the_spool_from_opening() {
    let dir = TempDir::new("tmpfs-open-full");
    let _mount = Tmpfs::mount(&dir.0, 64);
    let cfg = SpoolConfig {
        segment_bytes: 8 << 10,
        ..cfg()
    };
    let (spool, _) = Spool::open_in_boot(&dir.0, cfg, Some("boot-a")).unwrap();
    let before = spool.epoch();
    let mut noise = Noise::new();
    for _ in 0..3 {
        let b = noise.batch(&spool);
        spool.append(&b).unwrap();
    }
    assert_eq!(spool.next_unsent().unwrap().map(|(seq, _)| seq), Some(1));
    assert!(spool.ack(1).unwrap());
    drop(spool);
    let filler = fill(&dir.0);

    let (spool, report) = Spool::open_in_boot(&dir.0, cfg, Some("boot-b"))
        .unwrap_or_else(|e| panic!("a full disk kept the spool from opening: {e}"));
    assert!(report.new_boot && report.state_unsaved, "{report:?}");
    assert!(report.acks_not_compacted, "{report:?}");
    assert_eq!((report.batches, report.next_seq), (2, 4), "{report:?}");
    let epoch = spool.epoch();
    assert_ne!(epoch, before, "a new boot takes a new epoch, saved or not");
    let waiting: Vec<u64> = std::iter::from_fn(|| spool.next_unsent().unwrap())
        .map(|(seq, bytes)| {
            assert_eq!(
                batcher::decode(&bytes).unwrap().0.epoch,
                before,
                "cut before"
            );
            seq
        })
        .collect();
    assert_eq!(waiting, [2, 3]);
    assert!(spool.ack(2).unwrap(), "acks go on into the log as it was");
    fs::remove_file(&filler).unwrap();
    let b = noise.batch(&spool);
    spool.append(&b).unwrap();
    drop(spool);

    let (spool, report) = Spool::open_in_boot(&dir.0, cfg, Some("boot-b")).unwrap();
    assert!(!report.new_boot && !report.state_unsaved, "{report:?}");
    assert!(!report.acks_not_compacted, "{report:?}");
    assert_eq!(spool.epoch(), epoch, "the first append saved the state");
    assert_eq!((report.batches, report.next_seq), (2, 5), "{report:?}");
    let waiting: Vec<u64> = std::iter::from_fn(|| spool.next_unsent().unwrap())
        .map(|(seq, _)| seq)
        .collect();
    assert_eq!(waiting, [3, 4]);
}

/// The block-policy bug of the agent on a small tmpfs: once every batch of the only
/// segment was acknowledged, the blocked append deleted it, but its space stayed held by
/// the spool's open handle, so the high-water mark's temp file still did not fit and the
/// append failed (the stage died with everything acknowledged). Now the append goes on,
/// and the tail catches up with nothing lost.
#[test]
fn block_on_a_full_tmpfs_resumes_once_acks_free_the_only_segment() {
    let dir = TempDir::new("tmpfs-block");
    let _mount = Tmpfs::mount(&dir.0, 64);
    let cfg = SpoolConfig {
        max_bytes: 1 << 30,
        segment_bytes: 1 << 30,
        when_full: FullPolicy::Block,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    const N: u64 = 60;
    let s = Arc::clone(&spool);
    let t = std::thread::spawn(move || {
        let mut noise = Noise::new();
        for _ in 0..N {
            let batch = noise.batch(&s);
            s.append(&batch)?;
        }
        Ok::<_, SpoolError>(())
    });
    let mut shipped = Vec::new();
    let mut blocked = 0;
    while !t.is_finished() {
        if spool.waiters() == 0 {
            std::thread::yield_now();
            continue;
        }
        // Full: the shipper sends and the aggregator acknowledges everything.
        blocked += 1;
        while let Some((seq, _)) = spool.next_unsent().unwrap() {
            shipped.push(seq);
            assert!(spool.ack(seq).unwrap());
        }
        // Nothing waits any more: the blocked append must get through.
        let seq = spool.next_seq();
        let deadline = crate::io::clock::now_ms() + 10_000;
        while spool.next_seq() == seq && !t.is_finished() {
            assert!(
                crate::io::clock::now_ms() < deadline,
                "still blocked with everything acknowledged: {:?}",
                spool.stats()
            );
            std::thread::yield_now();
        }
    }
    t.join().unwrap().unwrap();
    while let Some((seq, _)) = spool.next_unsent().unwrap() {
        shipped.push(seq);
    }
    assert!(blocked > 0, "64 KiB cannot hold {N} batches");
    assert_eq!(shipped, (1..=N).collect::<Vec<_>>(), "nothing lost");
    assert_eq!(spool.stats().dropped_batches, 0);
    let v = verify(&dir.0).unwrap();
    assert!(v.is_clean(), "{v}");
}

#[test]
fn after_a_reboot_new_batches_take_a_new_epoch_so_records_lost_with_the_power_cannot_pass_for_replays()
 {
    let dir = TempDir::new("reboot");
    let big = SpoolConfig {
        segment_bytes: 1 << 20,
        ..cfg()
    };
    let (spool, report) = Spool::open_in_boot(&dir.0, big, Some("boot-a")).unwrap();
    assert!(report.created && !report.new_boot);
    let before = spool.epoch();
    for _ in 0..5 {
        append(&spool, 2);
    }
    // All five sent; the aggregator committed and acknowledged 1 and 2, and committed 3 to
    // 5 without the acks arriving.
    assert_eq!(drain(&spool), [1, 2, 3, 4, 5]);
    spool.ack(1).unwrap();
    spool.ack(2).unwrap();
    drop(spool);
    // The power goes: records 4 and 5 were never synced (fsync never) and are gone, and
    // the state file still says what it said at creation.
    let [seg] = &segment_files(&dir.0)[..] else {
        panic!("one segment")
    };
    let data = fs::read(seg).unwrap();
    let records = format::scan(&data).records;
    fs::write(seg, &data[..records[3].offset as usize]).unwrap();
    let mut stale = parse_state(&fs::read_to_string(dir.0.join(STATE)).unwrap()).unwrap();
    stale.hwm = 0;
    fs::write(dir.0.join(STATE), state_text(&stale)).unwrap();

    let (spool, report) = Spool::open_in_boot(&dir.0, big, Some("boot-b")).unwrap();
    assert!(report.new_boot);
    assert_eq!(report.next_seq, 4, "seqs 4 and 5 are numbered again...");
    let after = spool.epoch();
    assert_ne!(after, before, "...but in another epoch");
    // Record 3, made before the reboot, still goes with its own epoch: a replay of what
    // the aggregator has. The new batch 4 is new to it.
    let b = append(&spool, 1);
    let mut handed = Vec::new();
    while let Some((seq, bytes)) = spool.next_unsent().unwrap() {
        let (h, _) = batcher::decode(&bytes).unwrap();
        handed.push((h.epoch, seq));
    }
    assert_eq!(handed, [(before, 3), (after, 4)]);
    assert_eq!(batcher::decode(&b.bytes).unwrap().0.epoch, after);
    drop(spool);
    // `spool verify` knows the earlier epoch: record 3 is not reported as foreign.
    let v = verify(&dir.0).unwrap();
    assert_eq!(v.earlier_epochs, [before]);
    assert!(v.segments.iter().all(|s| s.undecodable.is_empty()), "{v:?}");
    // Another start in the same boot keeps the epoch; a start that cannot tell the boot
    // keeps it too (and the boot recorded).
    let (spool, report) = Spool::open_in_boot(&dir.0, big, Some("boot-b")).unwrap();
    assert!(!report.new_boot);
    assert_eq!(spool.epoch(), after);
    drop(spool);
    let (spool, report) = Spool::open(&dir.0, big).unwrap();
    assert!(!report.new_boot);
    assert_eq!(spool.epoch(), after);
    drop(spool);
    let state = parse_state(&fs::read_to_string(dir.0.join(STATE)).unwrap()).unwrap();
    assert_eq!(state.boot.as_deref(), Some("boot-b"));
}

#[test]
fn a_state_file_of_an_older_version_reads_and_the_boot_id_is_this_hosts() {
    let old = format!("{STATE_HEADER}\nepoch 00000000000000ab\nhwm 7\n");
    let s = parse_state(&old).unwrap();
    assert_eq!((s.epoch, s.hwm, s.boot, s.earlier), (0xab, 7, None, vec![]));
    let s2 = SpoolState {
        boot: Some("b".into()),
        earlier: vec![1, 2],
        ..s
    };
    assert_eq!(parse_state(&state_text(&s2)), Some(s2));
    assert_eq!(parse_state(&format!("{old}junk\n")), None);
    // Linux has one; the test machines are Linux.
    let id = current_boot_id().expect("a boot id");
    assert_eq!(id.len(), 36, "{id}");
}

#[test]
fn a_record_that_cannot_be_read_is_given_up_and_the_rest_still_ship() {
    // The segment cut under the running agent (by hand, by a filesystem error): reading
    // the record failed, the session reconnected, the record was handed out again and
    // failed again, for good, and nothing behind it shipped.
    let dir = TempDir::new("unreadable");
    let big = SpoolConfig {
        segment_bytes: 1 << 20,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, big).unwrap();
    for _ in 0..3 {
        append(&spool, 5);
    }
    let seg = segment_files(&dir.0).pop().unwrap();
    let len = fs::metadata(&seg).unwrap().len();
    // Cut the last record in half.
    let f = OpenOptions::new().write(true).open(&seg).unwrap();
    f.set_len(len - 40).unwrap();
    assert_eq!(drain(&spool), [1, 2]);
    assert_eq!(spool.stats().damaged_records, 1);
    // What is handed out again after a reconnect does not include it.
    spool.requeue_unacked();
    assert_eq!(drain(&spool), [1, 2]);
    for seq in [1, 2] {
        assert!(spool.ack(seq).unwrap());
    }
    assert_eq!(spool.stats().batches, 0);
    // And new batches go on.
    append(&spool, 5);
    assert_eq!(drain(&spool), [4]);
}

#[test]
fn a_spool_held_by_another_process_is_refused_not_shared() {
    // Two agents on one spool (one started by hand beside the service) each took the
    // other's half-written record for a torn tail and cut it, and deleted segments the
    // other still held. The lock is the directory's flock: another process's open file
    // description, or another open here, is refused alike.
    let dir = TempDir::new("locked");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let e = Spool::open(&dir.0, cfg()).unwrap_err();
    assert!(matches!(&e, SpoolError::InUse(p) if p == &dir.0), "{e}");
    assert!(e.to_string().contains("in use by another process"), "{e}");
    drop(spool);
    let (_again, _) = Spool::open(&dir.0, cfg()).expect("free once the holder is gone");
}

#[test]
fn a_record_cut_short_at_the_end_of_an_older_segment_is_counted_as_damage() {
    // Only the newest segment is written to, so only its end can be a write a crash cut.
    // A record cut short at the end of an older one (a length field flipped to point past
    // the end, a file truncated by hand) was whole once: it was reported only as torn
    // bytes, and the damage counter, the one the heartbeat carries, missed it.
    let dir = TempDir::new("old-torn");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    let one = batch(&spool, 1);
    let rec = (HEADER_LEN + one.bytes.len()) as u64;
    drop(spool);
    let cfg = SpoolConfig {
        segment_bytes: rec,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    for _ in 0..3 {
        append(&spool, 1);
    }
    drop(spool);
    let segs = segment_files(&dir.0);
    assert_eq!(segs.len(), 3);
    OpenOptions::new()
        .write(true)
        .open(&segs[0])
        .unwrap()
        .set_len(rec / 2)
        .unwrap();
    let (spool, report) = Spool::open(&dir.0, cfg).unwrap();
    assert_eq!(report.damaged_records, 1);
    assert_eq!(report.damaged_bytes, rec / 2);
    assert_eq!(report.truncated_bytes, 0);
    assert_eq!(drain(&spool), [2, 3]);
}

/// A source's checkpoint is synced only after the sink's barrier: for the spool, every
/// batch appended before it is on the device, across a seal too, while appends and syncs
/// run on several threads (the stage, the interval timer, each source's checkpoint).
#[test]
fn the_sinks_barrier_flushes_every_batch_appended_before_it() {
    use crate::io::sink::Sink;
    let dir = TempDir::new("barrier");
    let cfg = SpoolConfig {
        fsync: FsyncPolicy::IntervalMs(3_600_000),
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    let barrier = Sink::spool(spool.clone(), BatchConfig::default(), "agent", "t").barrier();
    append(&spool, 1);
    for _ in 0..3 {
        append(&spool, 5);
    }
    assert_eq!(
        spool.unflushed_segments(),
        1,
        "appends in the interval wait"
    );
    barrier.wait().unwrap();
    assert_eq!(spool.unflushed_segments(), 0);
    let s = spool.clone();
    let appender = std::thread::spawn(move || {
        for _ in 0..200 {
            append(&s, 3); // 4 KiB segments: sealed every few appends
        }
    });
    let syncers: Vec<_> = (0..2)
        .map(|_| {
            let b = barrier.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    b.wait().unwrap();
                }
            })
        })
        .collect();
    appender.join().unwrap();
    for t in syncers {
        t.join().unwrap();
    }
    barrier.wait().unwrap();
    assert_eq!(spool.unflushed_segments(), 0);
    assert!(segment_files(&dir.0).len() > 2, "seals happened");
    assert_eq!(drain(&spool).len(), 204);

    // Told never to flush, the spool is not flushed for a checkpoint either.
    drop(barrier); // it holds the spool open
    drop(spool);
    let never = SpoolConfig {
        fsync: FsyncPolicy::Never,
        ..cfg
    };
    let (spool, _) = Spool::open(&dir.0, never).unwrap();
    append(&spool, 1);
    Sink::spool(spool.clone(), BatchConfig::default(), "agent", "t")
        .barrier()
        .wait()
        .unwrap();
    assert_eq!(spool.unflushed_segments(), 1);
}

/// The ack log is rewritten once most of its entries name deleted segments, counted in
/// records: a bound in bytes over the smallest record let it grow to a third of the
/// spool beside a backlog before a rewrite, and opening reads it whole.
#[test]
fn the_ack_log_stays_within_twice_the_records_on_disk() {
    let dir = TempDir::new("acklog");
    let cfg = SpoolConfig {
        segment_bytes: 256 << 10,
        max_bytes: 64 << 20,
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    let mut noise = Noise::new();
    // The first batch is never acknowledged: its segment stays, a backlog.
    spool.append(&noise.batch(&spool)).unwrap();
    let pinned = spool.next_unsent().unwrap().unwrap().0;
    for _ in 0..1500 {
        spool.append(&noise.batch(&spool)).unwrap();
        let (seq, _) = spool.next_unsent().unwrap().unwrap();
        assert!(spool.ack(seq).unwrap());
    }
    let st = spool.stats();
    assert_eq!((st.batches, st.acked), (1, 1500), "{st:?}");
    let log = fs::metadata(dir.0.join(ACKS)).unwrap().len();
    assert!(
        log <= 8 * 1024,
        "{log} bytes of acks for {} segments",
        segment_files(&dir.0).len()
    );
    drop(spool);
    let (spool, report) = Spool::open(&dir.0, cfg).unwrap();
    assert_eq!(report.batches, 1);
    assert_eq!(spool.next_unsent().unwrap().unwrap().0, pinned);
}

/// The shipper asks its questions on the async runtime the syslog listeners share: they
/// must be answered while an append holds the lock waiting for the device (`Always`, a
/// slow disk), or UDP datagrams overflow the socket's buffer meanwhile.
#[test]
fn the_shippers_questions_do_not_wait_for_an_append_in_progress() {
    let dir = TempDir::new("lock-free-stats");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    append(&spool, 3);
    let (held_tx, held_rx) = std::sync::mpsc::channel();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let s = spool.clone();
    let holder = std::thread::spawn(move || {
        let _g = s.lock(); // an append stuck in the device
        held_tx.send(()).unwrap();
        release_rx.recv().ok();
    });
    held_rx.recv().unwrap();
    let (answer_tx, answer_rx) = std::sync::mpsc::channel();
    let s = spool.clone();
    std::thread::spawn(move || {
        answer_tx.send((s.stats(), s.has_unsent())).ok();
    });
    let answer = answer_rx.recv_timeout(std::time::Duration::from_secs(10));
    release_tx.send(()).unwrap();
    holder.join().unwrap();
    let (stats, unsent) = answer.expect("answered while the lock was held");
    assert_eq!((stats.batches, stats.next_seq), (1, 2));
    assert!(unsent);
    // And they follow what happened once the lock is released.
    assert_eq!(drain(&spool), [1]);
    assert!(!spool.has_unsent());
    assert!(spool.ack(1).unwrap());
    assert_eq!((spool.stats().batches, spool.stats().acked), (0, 1));
}

/// Under the interval policy neither an append nor a seal waits for the device (each
/// under the lock, the shipper behind it): sealed segments stay unflushed until the next
/// `sync`, which flushes them all.
#[test]
fn appends_and_seals_leave_flushing_to_sync() {
    let dir = TempDir::new("seal-no-flush");
    let cfg = SpoolConfig {
        fsync: FsyncPolicy::IntervalMs(3_600_000),
        ..cfg()
    };
    let (spool, _) = Spool::open(&dir.0, cfg).unwrap();
    for _ in 0..30 {
        append(&spool, 3); // 4 KiB segments: sealed every few appends
    }
    assert!(segment_files(&dir.0).len() > 2, "seals happened");
    assert_eq!(
        spool.unflushed_segments(),
        segment_files(&dir.0).len(),
        "every segment waits for sync"
    );
    spool.sync().unwrap();
    assert_eq!(spool.unflushed_segments(), 0);
    assert_eq!(drain(&spool).len(), 30);
}

/// A batch whose stream failed alone is handed out again before the ones not handed out
/// yet; one acknowledged since, or not handed out yet, is not handed out twice.
#[test]
fn a_batch_to_retry_comes_first_and_only_while_it_waits() {
    let dir = TempDir::new("retry");
    let (spool, _) = Spool::open(&dir.0, cfg()).unwrap();
    for _ in 0..4 {
        append(&spool, 1);
    }
    let next = || spool.next_unsent().unwrap().map(|(seq, _)| seq);
    assert_eq!((next(), next()), (Some(1), Some(2)));
    spool.retry(1);
    spool.retry(3); // not handed out yet: comes in order anyway
    assert!(spool.has_unsent());
    assert_eq!(next(), Some(1), "the retried batch first");
    assert_eq!(next(), Some(3));
    spool.retry(2);
    assert!(spool.ack(2).unwrap());
    assert_eq!(next(), Some(4), "acknowledged since: not again");
    assert_eq!(next(), None);
    assert!(!spool.has_unsent());
    // A lost connection hands everything out again, once.
    spool.retry(1);
    spool.requeue_unacked();
    assert_eq!(drain(&spool), [1, 3, 4]);
}

/// Drop-oldest counts a batch lost at once unless it is on the wire (an ack may still say
/// it was stored): one waiting to be sent again after its stream failed is not, and was
/// counted only when the connection ended.
#[test]
fn drop_oldest_counts_a_batch_waiting_to_be_resent_at_once() {
    let dir = TempDir::new("drop-retry");
    let (spool, _) = Spool::open(&dir.0, drop_oldest_per_record()).unwrap();
    append(&spool, 2);
    append(&spool, 3);
    assert_eq!(spool.next_unsent().unwrap().map(|(s, _)| s), Some(1));
    assert_eq!(spool.next_unsent().unwrap().map(|(s, _)| s), Some(2));
    spool.retry(1); // its stream failed; 2 is still on the wire
    fail_writes(&spool, 1);
    append(&spool, 4); // a full device: the oldest segment (batch 1) goes
    let st = spool.stats();
    assert_eq!(
        (st.dropped_batches, st.dropped_events),
        (1, 2),
        "counted at once"
    );
    assert_eq!(drain(&spool), [3], "not handed out again");
    fail_writes(&spool, 1);
    append(&spool, 5); // batch 2 goes while on the wire: counted only if its ack never comes
    assert_eq!(spool.stats().dropped_batches, 1);
    spool.requeue_unacked();
    assert_eq!(spool.stats().dropped_batches, 2);
}
