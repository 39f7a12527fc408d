//! Deterministic event ids: the same record of the same source always gets the same id, so
//! a line re-read after a crash is recognisably the same event downstream.
//!
//! The id is the source's 64-bit hash, then the record's position (48 bits), then 16 bits
//! of the record's own hash: not a hash of all three, so the records of one source get
//! ids in the order they are read, and a store's unique index on the id takes each new
//! one at the right edge of its source's range (a few hot pages) instead of at a random
//! place in the whole index, which is what kept the aggregator's insert rate at ~25k
//! rows/s and would have made it fall further as the index outgrew memory
//! (`benches/src/bin/store-layouts.rs`).
//!
//! The content bits are for a source whose positions come again with other records: a
//! virtual machine restored from a snapshot writes new lines at the offsets (and new
//! journal entries under the sequence numbers) its old ones had, and with ids of source
//! and position alone every such record was taken downstream for the one already stored
//! and dropped. Now two records collide there one time in 65536; a record read again is
//! the same bytes, so its id is the same as before. Two sources collide only if their
//! ids' xxh3-64 do (one chance in 2^64 per pair).

use xxhash_rust::xxh3::xxh3_64;

/// Positions are kept modulo 2^48 (256 TiB of a file, 2.8e14 messages).
const POSITION_BITS: u32 = 48;

/// `metadata.uid` of the record `content` at `position` (line number, byte offset, journal
/// or message sequence number) of the source identified by `source_id`: 32 lower-case hex
/// digits, the xxh3-64 of `source_id` (16), `position` (12), the low 16 bits of the
/// xxh3-64 of `content` (4).
pub fn event_uid(source_id: &str, position: u64, content: &[u8]) -> String {
    let low = ((position & ((1 << POSITION_BITS) - 1)) << (64 - POSITION_BITS))
        | (xxh3_64(content) & 0xffff);
    let v = (u128::from(source_hash(source_id)) << 64) | u128::from(low);
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut hex = [0u8; 32];
    for (i, d) in hex.iter_mut().enumerate() {
        *d = HEX[((v >> ((31 - i) * 4)) & 0xf) as usize];
    }
    String::from_utf8(hex.to_vec()).expect("hex digits are ASCII")
}

/// The source part of the uids of `source_id`'s records (their first 16 hex digits).
pub fn source_hash(source_id: &str) -> u64 {
    xxh3_64(source_id.as_bytes())
}

/// The source part of a uid [`event_uid`] made; `None` for any other uid.
pub fn source_of(uid: &str) -> Option<u64> {
    if uid.len() != 32 {
        return None;
    }
    u64::from_str_radix(uid.get(..16)?, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_source_position_and_content_same_uid_else_different() {
        let uid = |src: &str, pos: u64, line: &str| event_uid(src, pos, line.as_bytes());
        assert_eq!(
            uid("/var/log/auth.log", 7, "a"),
            uid("/var/log/auth.log", 7, "a")
        );
        assert_ne!(
            uid("/var/log/auth.log", 7, "a"),
            uid("/var/log/auth.log", 8, "a")
        );
        assert_ne!(
            uid("/var/log/auth.log", 7, "a"),
            uid("/var/log/syslog", 7, "a")
        );
        // Another record where one was (a restored snapshot writing on).
        assert_ne!(
            uid("/var/log/auth.log", 7, "Accepted password for bob"),
            uid("/var/log/auth.log", 7, "Failed password for root")
        );
        assert_eq!(uid("a", 1, "x").len(), 32);
        assert_eq!(
            uid("a", 1, "x"),
            format!(
                "{:016x}{:012x}{:04x}",
                xxh3_64(b"a"),
                1u64,
                xxh3_64(b"x") & 0xffff
            )
        );
    }

    #[test]
    fn uids_of_one_source_sort_in_position_order() {
        let positions = [0u64, 1, 9, 10, 255, 256, 1 << 40, (1 << 48) - 1];
        let uids: Vec<String> = positions
            .iter()
            .map(|&p| event_uid("/var/log/auth.log", p, format!("line {p}").as_bytes()))
            .collect();
        assert!(uids.windows(2).all(|w| w[0] < w[1]), "{uids:?}");
        // One prefix per source.
        assert!(uids.iter().all(|u| u[..16] == uids[0][..16]));
        assert!(
            uids.iter()
                .all(|u| source_of(u) == Some(source_hash("/var/log/auth.log")))
        );
        assert_eq!(source_of("not-one-of-ours"), None);
    }
}
