//! One record: its fixed header and the check of a record at the front of a buffer.

use xxhash_rust::xxh3::Xxh3;

/// First bytes of every record.
pub const MAGIC: [u8; 8] = *b"\x89VDSPOOL";
/// The record format version this code writes and reads.
pub const VERSION: u16 = 1;
/// Bytes of the fixed header before the payload.
pub const HEADER_LEN: usize = 48;
/// Largest payload a record may hold: a whole wire batch (header frame + zstd payload) at
/// the wire's limits. A larger length field is damage.
pub const MAX_PAYLOAD: u32 =
    (vedette_schemas::wire::MAX_PAYLOAD as usize + vedette_schemas::wire::MAX_FRAME + 4) as u32;

/// Offset of the checksum: it covers the header bytes before it.
const SUM_AT: usize = 40;

/// What a record's header says about its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordMeta {
    /// The batch's sequence number.
    pub seq: u64,
    /// Events in the batch.
    pub events: u32,
    /// When the batch was cut, ms since the epoch.
    pub created_ms: i64,
}

/// Why the bytes at a position are not a whole valid record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordError {
    /// Fewer bytes than the header, or a plausible header announcing more payload than
    /// there is: a write cut short, if nothing valid follows.
    Truncated,
    /// Wrong magic, version, reserved bits or length, or a checksum mismatch.
    Corrupt,
}

/// The header for `payload`. Write it, then the payload.
///
/// # Panics
/// When the payload exceeds [`MAX_PAYLOAD`] (the caller's bug: batches are capped first).
pub fn encode_header(meta: &RecordMeta, payload: &[u8]) -> [u8; HEADER_LEN] {
    let len = u32::try_from(payload.len())
        .ok()
        .filter(|&l| l <= MAX_PAYLOAD)
        .expect("spool record payload within MAX_PAYLOAD");
    let mut h = [0u8; HEADER_LEN];
    h[0..8].copy_from_slice(&MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    h[12..16].copy_from_slice(&len.to_le_bytes());
    h[16..24].copy_from_slice(&meta.seq.to_le_bytes());
    h[24..28].copy_from_slice(&meta.events.to_le_bytes());
    h[32..40].copy_from_slice(&meta.created_ms.to_le_bytes());
    let sum = checksum(&h[..SUM_AT], payload);
    h[SUM_AT..].copy_from_slice(&sum.to_le_bytes());
    h
}

fn checksum(head: &[u8], payload: &[u8]) -> u64 {
    let mut x = Xxh3::new();
    x.update(head);
    x.update(payload);
    x.digest()
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Checks the record at the front of `buf`: its metadata and payload, or why not.
pub fn check(buf: &[u8]) -> Result<(RecordMeta, &[u8]), RecordError> {
    let Some(h) = buf.get(..HEADER_LEN) else {
        // A short prefix of a header is a cut write; anything else short is garbage.
        let n = buf.len().min(MAGIC.len());
        return Err(if buf[..n] == MAGIC[..n] {
            RecordError::Truncated
        } else {
            RecordError::Corrupt
        });
    };
    let len = u32_at(h, 12);
    if h[..8] != MAGIC
        || h[8..10] != VERSION.to_le_bytes()
        || h[10..12] != [0, 0]
        || h[28..32] != [0; 4]
        || len > MAX_PAYLOAD
    {
        return Err(RecordError::Corrupt);
    }
    let Some(payload) = buf[HEADER_LEN..].get(..len as usize) else {
        return Err(RecordError::Truncated);
    };
    if checksum(&h[..SUM_AT], payload) != u64_at(h, SUM_AT) {
        return Err(RecordError::Corrupt);
    }
    let meta = RecordMeta {
        seq: u64_at(h, 16),
        events: u32_at(h, 24),
        created_ms: u64_at(h, 32) as i64,
    };
    Ok((meta, payload))
}
