//! The spool's on-disk format, sans-I/O: encoding a record and scanning a segment's bytes
//! back into records and damage. The files, locking and policies live in `io::spool`.
//!
//! # Segment files
//!
//! A spool directory holds segment files named by the sequence number of their first
//! record, 20 digits, `.seg` (`00000000000000000001.seg`), and a `state` file (epoch and
//! sequence high-water mark). A segment is a concatenation of records, nothing else:
//!
//! ```text
//! offset  size  field
//!      0     8  magic          89 'V' 'D' 'S' 'P' 'O' 'O' 'L'
//!      8     2  version        1, little-endian
//!     10     2  reserved       0
//!     12     4  payload length little-endian, at most MAX_PAYLOAD
//!     16     8  seq            the batch's sequence number
//!     24     4  events         events in the batch
//!     28     4  reserved       0
//!     32     8  created_ms     when the batch was cut, ms since the epoch (i64)
//!     40     8  checksum       xxh3-64 of bytes 0..40 followed by the payload
//!     48     …  payload        the encoded batch: header frame + zstd payload, as sent
//! ```
//!
//! The checksum covers the header fields too, so a flipped bit anywhere is caught. The
//! magic starts with a byte above 0x7f (like PNG's), so it does not occur in JSON text;
//! it may occur inside zstd data, which is why a candidate found while resynchronising
//! must pass the whole checksum before it counts.
//!
//! # Damage
//!
//! [`scan`] walks a segment record by record. A record that does not check out is damage:
//! the scanner searches for the next magic after its first byte and resumes there, so one
//! flipped byte costs one record, not the rest of the segment. Consecutive damaged bytes
//! form one damaged region, counted as one damaged record (its sequence number may be the
//! damaged part). Bytes at the end that start a record too short for what it announces —
//! a write cut by a crash — are the torn tail, which the spool truncates at open.

mod record;
mod scan;

pub use record::{
    HEADER_LEN, MAGIC, MAX_PAYLOAD, RecordError, RecordMeta, VERSION, check, encode_header,
};
pub use scan::{Damage, Record, Scan, scan};

#[cfg(test)]
mod tests;
