//! A hasher for keys that already are hashes (xxh3 fingerprints): the map uses their bits
//! as they are instead of hashing them again with SipHash.

use std::hash::{BuildHasherDefault, Hasher};

/// Passes a `u64`/`u128` key's bits through.
#[derive(Debug, Default, Clone, Copy)]
pub struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only reached for keys other than u64/u128: fold them in (still a valid hasher).
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(29) ^ u64::from_le_bytes(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }

    fn write_u128(&mut self, n: u128) {
        self.0 ^= n as u64 ^ (n >> 64) as u64;
    }
}

/// `HashMap<K, V, Prehashed>` for keys that are hashes already.
pub type Prehashed = BuildHasherDefault<PassThrough>;
