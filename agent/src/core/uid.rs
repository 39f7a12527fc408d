//! Deterministic event ids: the same record of the same source always gets the same id, so
//! a line re-read after a crash is recognisably the same event downstream.
//!
//! The id is the source's 64-bit hash followed by the record's position, not a hash of
//! both: the records of one source get ids in the order they are read, so a store's
//! unique index on the id takes each new one at the right edge of its source's range (a
//! few hot pages) instead of at a random place in the whole index, which is what kept
//! the aggregator's insert rate at ~25k rows/s and would have made it fall further as the
//! index outgrew memory (`benches/src/bin/store-layouts.rs`). Two sources collide only if
//! their ids' xxh3-64 do (one chance in 2^64 per pair); two records of one source never.

use xxhash_rust::xxh3::xxh3_64;

/// `metadata.uid` of the record at `position` (line number, byte offset, journal or
/// message sequence number) of the source identified by `source_id`: 32 lower-case hex
/// digits, the xxh3-64 of `source_id` then `position`, 16 each.
pub fn event_uid(source_id: &str, position: u64) -> String {
    let v = (u128::from(xxh3_64(source_id.as_bytes())) << 64) | u128::from(position);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = HEX[((v >> ((31 - i) * 4)) & 0xf) as usize];
    }
    String::from_utf8(hex.to_vec()).expect("hex digits are ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_source_and_position_same_uid_else_different() {
        assert_eq!(
            event_uid("/var/log/auth.log", 7),
            event_uid("/var/log/auth.log", 7)
        );
        assert_ne!(
            event_uid("/var/log/auth.log", 7),
            event_uid("/var/log/auth.log", 8)
        );
        assert_ne!(
            event_uid("/var/log/auth.log", 7),
            event_uid("/var/log/syslog", 7)
        );
        assert_eq!(event_uid("a", 1).len(), 32);
        assert_eq!(
            event_uid("a", 1),
            format!("{:016x}{:016x}", xxh3_64(b"a"), 1u64)
        );
    }

    #[test]
    fn uids_of_one_source_sort_in_position_order() {
        let positions = [0u64, 1, 9, 10, 255, 256, 1 << 40, u64::MAX];
        let uids: Vec<String> = positions
            .iter()
            .map(|&p| event_uid("/var/log/auth.log", p))
            .collect();
        assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");
        // One prefix per source.
        assert!(uids.iter().all(|u| u[..16] == uids[0][..16]));
    }
}
