//! Deterministic event ids: the same record of the same source always gets the same id, so
//! a line re-read after a crash is recognisably the same event downstream.

use xxhash_rust::xxh3::Xxh3;

/// `metadata.uid` of the record at `position` (line number or byte offset) of the source
/// identified by `source_id`: 32 lower-case hex digits of xxh3-128.
pub fn event_uid(source_id: &str, position: u64) -> String {
    let mut h = Xxh3::new();
    h.update(source_id.as_bytes());
    h.update(&[0]);
    h.update(&position.to_le_bytes());
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let v = h.digest128();
    let mut out = String::with_capacity(32);
    for i in (0..32).rev() {
        out.push(char::from(HEX[((v >> (i * 4)) & 0xf) as usize]));
    }
    out
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
    }
}
