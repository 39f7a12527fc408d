//! A Bloom filter over the addresses a chunk of events names (`src_endpoint.ip` and
//! `dst_endpoint.ip`, each tagged with its side), stored beside the chunk: a search by
//! address reads the filters of the chunks in its time range and scans only the chunks
//! whose filter says "maybe".
//!
//! Why not a B-tree index per event: addresses are close to unique per event in scan and
//! brute-force traffic, so an index on them takes each row at a random place, which
//! halved the store's insert rate (`benches/src/bin/store-layouts.rs`: 121k rows/s
//! without the source-address index, 64k with it). A filter costs a few hashes per event
//! and one blob per batch, and covers the destination address too, which had no index.
//!
//! Format (stored, so fixed): one byte `k` (hash count), then the bit array, its length
//! a whole number of bytes. Bit `i` is bit `i % 8` of byte `i / 8`. The `k` positions of
//! a key are `h1 + j*h2 mod m` (`j` in `0..k`), `h1`/`h2` the halves of the xxh3-128 of
//! the side tag (`s` or `d`), a zero byte and the address text. Hand-written because the
//! bits must read back the same in every later version: the filter crates hash with
//! per-process random keys or keep their layout to themselves.

use xxhash_rust::xxh3::xxh3_128;

/// Bits per key: 10 with 7 hashes gives ~0.8% false positives.
const BITS_PER_KEY: usize = 10;
const HASHES: u8 = 7;
/// Smallest filter, bytes (a chunk of one event).
const MIN_BYTES: usize = 8;

/// Which address of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// `src_endpoint.ip`.
    Src,
    /// `dst_endpoint.ip`.
    Dst,
}

impl Side {
    fn tag(self) -> u8 {
        match self {
            Self::Src => b's',
            Self::Dst => b'd',
        }
    }
}

fn halves(side: Side, ip: &str) -> (u64, u64) {
    let mut buf = [0u8; 66];
    let h = if ip.len() + 2 <= buf.len() {
        buf[0] = side.tag();
        buf[2..2 + ip.len()].copy_from_slice(ip.as_bytes());
        xxh3_128(&buf[..2 + ip.len()])
    } else {
        let mut v = Vec::with_capacity(ip.len() + 2);
        v.extend_from_slice(&[side.tag(), 0]);
        v.extend_from_slice(ip.as_bytes());
        xxh3_128(&v)
    };
    ((h >> 64) as u64, h as u64 | 1)
}

/// Builds the filter of one chunk.
#[derive(Debug, Default)]
pub struct IpFilterBuilder {
    keys: Vec<(u64, u64)>,
}

impl IpFilterBuilder {
    /// Adds an address (repeats are fine: they set the same bits).
    pub fn add(&mut self, side: Side, ip: &str) {
        self.keys.push(halves(side, ip));
    }

    /// The stored form; `None` when no address was added (nothing to find in the chunk).
    pub fn finish(mut self) -> Option<Vec<u8>> {
        if self.keys.is_empty() {
            return None;
        }
        self.keys.sort_unstable();
        self.keys.dedup();
        let bytes = (self.keys.len() * BITS_PER_KEY).div_ceil(8).max(MIN_BYTES);
        let mut out = vec![0u8; 1 + bytes];
        out[0] = HASHES;
        let m = (bytes * 8) as u64;
        for &(h1, h2) in &self.keys {
            for j in 0..u64::from(HASHES) {
                let bit = h1.wrapping_add(j.wrapping_mul(h2)) % m;
                out[1 + (bit / 8) as usize] |= 1 << (bit % 8);
            }
        }
        Some(out)
    }
}

/// A filter as stored: whether it may hold `ip` on `side`. `false` is certain; `true` is
/// right but for ~1% of absent addresses. A malformed filter answers `true` (scan the
/// chunk: a damaged filter must not hide events).
pub fn may_contain(filter: &[u8], side: Side, ip: &str) -> bool {
    let Some((&k, bits)) = filter.split_first() else {
        return true;
    };
    if bits.is_empty() || k == 0 {
        return true;
    }
    let m = (bits.len() * 8) as u64;
    let (h1, h2) = halves(side, ip);
    (0..u64::from(k)).all(|j| {
        let bit = h1.wrapping_add(j.wrapping_mul(h2)) % m;
        bits[(bit / 8) as usize] & (1 << (bit % 8)) != 0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> String {
        std::net::Ipv4Addr::from(0x0a00_0000 + i).to_string()
    }

    #[test]
    fn every_added_address_is_found_on_its_side_only_and_few_others_are() {
        let mut b = IpFilterBuilder::default();
        for i in 0..1000 {
            b.add(Side::Src, &ip(i));
        }
        b.add(Side::Dst, "2001:db8::1");
        let f = b.finish().unwrap();
        assert_eq!(f[0], HASHES);
        assert!((0..1000).all(|i| may_contain(&f, Side::Src, &ip(i))));
        assert!(may_contain(&f, Side::Dst, "2001:db8::1"));
        assert!(!may_contain(&f, Side::Src, "2001:db8::1") || !may_contain(&f, Side::Dst, &ip(0)));
        let false_positives = (1000..101_000)
            .filter(|&i| may_contain(&f, Side::Src, &ip(i)))
            .count();
        // ~0.8% expected; a wrong hash or bit layout shows as far more.
        assert!(false_positives < 2_000, "{false_positives} of 100000");
    }

    #[test]
    fn no_address_no_filter_and_a_damaged_filter_says_maybe() {
        assert_eq!(IpFilterBuilder::default().finish(), None);
        assert!(may_contain(&[], Side::Src, "10.0.0.1"));
        assert!(may_contain(&[7], Side::Src, "10.0.0.1"));
        assert!(may_contain(&[0, 0, 0], Side::Src, "10.0.0.1"));
        // Long input (not an address, but a filter must not panic on what it is given).
        let long = "x".repeat(300);
        let mut b = IpFilterBuilder::default();
        b.add(Side::Src, &long);
        let f = b.finish().unwrap();
        assert!(may_contain(&f, Side::Src, &long));
        assert_eq!(f.len(), 1 + MIN_BYTES);
    }

    #[test]
    fn the_stored_bits_do_not_change_between_versions() {
        // A filter written by this version must read the same forever: pin its bytes.
        let mut b = IpFilterBuilder::default();
        b.add(Side::Src, "192.0.2.7");
        b.add(Side::Dst, "198.51.100.9");
        let f = b.finish().unwrap();
        let hex: String = f.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, PINNED);
    }

    const PINNED: &str = "0703000000f00700f8";
}
