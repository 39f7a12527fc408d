//! A file's identity by content: xxh3-64 of its first bytes plus how many bytes that covers.
//!
//! Inodes alone are not identities (they are reused as soon as a file is deleted) and paths
//! are not either (rotation renames). The head of a log file, which starts with a timestamp,
//! is. We do not insist on a full-length head: a 10-byte file gets a 10-byte fingerprint
//! (peers that require 1 KiB never read small files). To match a stored fingerprint against
//! a file that has since grown, the shell hashes exactly `len` bytes of it again.

use xxhash_rust::xxh3::xxh3_64;

/// Hash of the first `len` bytes of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint {
    /// xxh3-64 of the covered bytes.
    pub hash: u64,
    /// How many bytes from offset 0 the hash covers; never 0 (an empty file has no identity).
    pub len: u64,
}

impl Fingerprint {
    /// The fingerprint of `head`, or `None` for an empty head: an empty file has no identity
    /// yet, and the tracker waits for its first byte.
    pub fn of(head: &[u8]) -> Option<Self> {
        (!head.is_empty()).then(|| Self {
            hash: xxh3_64(head),
            len: head.len() as u64,
        })
    }

    /// How many bytes of a file of `size` bytes to hash when its fingerprint is `want` long:
    /// a file shorter than that is hashed whole (and then cannot match a longer fingerprint).
    pub fn head_len(size: u64, want: u64) -> u64 {
        size.min(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_has_no_identity_one_byte_has() {
        assert_eq!(Fingerprint::of(b""), None);
        let one = Fingerprint::of(b"a").expect("1 byte");
        assert_eq!(one.len, 1);
        assert_ne!(Some(one), Fingerprint::of(b"b"));
    }

    #[test]
    fn a_short_fingerprint_matches_the_same_prefix_of_the_grown_file() {
        let short = Fingerprint::of(b"Jan 1 a").expect("non-empty");
        let grown = b"Jan 1 a\nJan 1 b\n";
        let len = Fingerprint::head_len(grown.len() as u64, short.len) as usize;
        assert_eq!(Fingerprint::of(&grown[..len]), Some(short));
        // The whole grown file is a different (longer) fingerprint.
        assert_ne!(Fingerprint::of(grown), Some(short));
    }
}
