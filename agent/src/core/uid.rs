//! Deterministic event ids: the same record of the same source always gets the same id, so
//! a line re-read after a crash is recognisably the same event downstream.

use xxhash_rust::xxh3::{Xxh3, xxh3_128};

/// `metadata.uid` of the record at `position` (line number or byte offset) of the source
/// identified by `source_id`: 32 lower-case hex digits of xxh3-128.
pub fn event_uid(source_id: &str, position: u64) -> String {
    // The hash of `source_id`, a zero byte and the position (little-endian): in one call
    // over a stack buffer when it fits (xxh3's short-input paths), streamed otherwise
    // (the same digest either way).
    const MAX: usize = 240;
    let id = source_id.as_bytes();
    let v = if id.len() + 9 <= MAX {
        let mut buf = [0u8; MAX];
        buf[..id.len()].copy_from_slice(id);
        buf[id.len() + 1..id.len() + 9].copy_from_slice(&position.to_le_bytes());
        xxh3_128(&buf[..id.len() + 9])
    } else {
        let mut h = Xxh3::new();
        h.update(id);
        h.update(&[0]);
        h.update(&position.to_le_bytes());
        h.digest128()
    };
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
        // The same digits `{:032x}` gives.
        let mut h = Xxh3::new();
        h.update(b"a");
        h.update(&[0]);
        h.update(&1u64.to_le_bytes());
        assert_eq!(event_uid("a", 1), format!("{:032x}", h.digest128()));
        // Source ids too long for the one-call path hash the same way.
        for n in [230, 231, 232, 300] {
            let id = "x".repeat(n);
            let mut h = Xxh3::new();
            h.update(id.as_bytes());
            h.update(&[0]);
            h.update(&9u64.to_le_bytes());
            assert_eq!(event_uid(&id, 9), format!("{:032x}", h.digest128()));
        }
    }
}
