//! The segment scanner: whole valid records and the damage between them.

use std::ops::Range;

use memchr::memmem;

use super::record::{HEADER_LEN, MAGIC, RecordError, RecordMeta, check};

/// A whole valid record found in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Byte offset of its header in the segment.
    pub offset: u64,
    /// Header plus payload bytes.
    pub len: u64,
    /// What its header says.
    pub meta: RecordMeta,
}

impl Record {
    /// Where its payload lies in the segment.
    pub fn payload(&self) -> Range<u64> {
        self.offset + HEADER_LEN as u64..self.offset + self.len
    }

    /// Just past its last byte.
    pub fn end(&self) -> u64 {
        self.offset + self.len
    }
}

/// A damaged region: bytes between valid records that hold no valid record. Counted as
/// one damaged record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Where it lies in the segment.
    pub range: Range<u64>,
}

/// What a segment holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Valid records, in file order.
    pub records: Vec<Record>,
    /// Damaged regions, in file order, none adjacent to another.
    pub damaged: Vec<Damage>,
    /// A record cut short at the end of the segment (a write interrupted by a crash): from
    /// the end of the last valid record (or of the last damage) to the end.
    pub torn_tail: Option<Range<u64>>,
}

impl Scan {
    /// Bytes in damaged regions.
    pub fn damaged_bytes(&self) -> u64 {
        self.damaged
            .iter()
            .map(|d| d.range.end - d.range.start)
            .sum()
    }

    /// Where valid content ends: the segment's length once the torn tail is cut off.
    pub fn valid_len(&self, segment_len: u64) -> u64 {
        self.torn_tail.as_ref().map_or(segment_len, |t| t.start)
    }
}

/// Scans a segment's bytes. Never fails and never loops: every step moves forward by at
/// least one byte, and every byte ends up in exactly one record, damaged region or the
/// torn tail.
pub fn scan(data: &[u8]) -> Scan {
    let finder = memmem::Finder::new(&MAGIC);
    let mut out = Scan::default();
    let mut pos = 0usize;
    // The kind of failure that opened the current run of damage, if one is open: it
    // decides between damage and a torn tail when the run reaches the end.
    let mut run: Option<(usize, RecordError)> = None;
    while pos < data.len() {
        match check(&data[pos..]) {
            Ok((meta, payload)) => {
                if let Some((start, _)) = run.take() {
                    push_damage(&mut out, start..pos);
                }
                let len = (HEADER_LEN + payload.len()) as u64;
                out.records.push(Record {
                    offset: pos as u64,
                    len,
                    meta,
                });
                pos += len as usize;
            }
            Err(kind) => {
                run.get_or_insert((pos, kind));
                match finder.find(&data[pos + 1..]) {
                    Some(at) => pos += 1 + at,
                    None => pos = data.len(),
                }
            }
        }
    }
    if let Some((start, kind)) = run {
        match kind {
            RecordError::Truncated => out.torn_tail = Some(start as u64..data.len() as u64),
            RecordError::Corrupt => push_damage(&mut out, start..data.len()),
        }
    }
    out
}

fn push_damage(out: &mut Scan, r: Range<usize>) {
    out.damaged.push(Damage {
        range: r.start as u64..r.end as u64,
    });
}
