//! Line assembly over byte chunks read at increasing offsets.
//!
//! Each complete line carries the offset of its first byte and the offset just after its
//! LF, so a checkpoint at `end` resumes exactly at the next line and `start` is a stable
//! position for the event uid. A line longer than the maximum is cut and flagged; the rest
//! of it is skipped (and counted) but its offsets still cover all of it, so nothing after it
//! shifts and nothing is silently lost.

/// A complete line: bytes without the LF (and without a CR before it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssembledLine {
    /// Offset of the line's first byte.
    pub start: u64,
    /// Offset just after the line's LF (or after its last byte, for a flushed partial line).
    pub end: u64,
    /// The line, at most `max` bytes.
    pub bytes: Vec<u8>,
    /// The line was longer than `max` and was cut.
    pub truncated: bool,
}

/// Turns chunks into lines, keeping the unterminated tail until more bytes come.
#[derive(Debug, Clone)]
pub struct LineAssembler {
    max: usize,
    /// Offset of the first byte of `pending`.
    start: u64,
    /// Offset of the next byte expected.
    next: u64,
    /// Bytes of the current line so far, at most `max + 1` (room for a CR before the LF).
    pending: Vec<u8>,
    /// The current line overflowed: bytes are skipped until its LF.
    cut: bool,
    skipped: u64,
}

impl LineAssembler {
    /// An assembler whose first byte will be at `offset`; lines longer than `max` bytes are
    /// cut (`max` is at least 1).
    pub fn new(offset: u64, max: usize) -> Self {
        Self {
            max: max.max(1),
            start: offset,
            next: offset,
            pending: Vec::new(),
            cut: false,
            skipped: 0,
        }
    }

    /// Offset of the next byte to feed.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Offset where the unfinished line starts: every byte before it has been emitted.
    pub fn line_start(&self) -> u64 {
        self.start
    }

    /// Bytes of over-long lines dropped so far.
    pub fn skipped_bytes(&self) -> u64 {
        self.skipped
    }

    /// Feeds `bytes`, which must start at [`next_offset`](Self::next_offset); calls `out`
    /// for each line completed.
    pub fn push(&mut self, bytes: &[u8], out: &mut impl FnMut(AssembledLine)) {
        let mut rest = bytes;
        while !rest.is_empty() {
            match memchr::memchr(b'\n', rest) {
                Some(i) => {
                    self.take(&rest[..i]);
                    self.next += i as u64 + 1;
                    self.emit(true, out);
                    rest = &rest[i + 1..];
                }
                None => {
                    self.take(rest);
                    self.next += rest.len() as u64;
                    rest = &[];
                }
            }
        }
    }

    /// Emits the unterminated tail, if any, as a line: the file is finished (a rotated file
    /// drained to its end), so no LF will ever come.
    pub fn flush(&mut self, out: &mut impl FnMut(AssembledLine)) {
        if self.next > self.start {
            self.emit(false, out);
        }
    }

    fn take(&mut self, seg: &[u8]) {
        if self.cut {
            self.skipped += seg.len() as u64;
            return;
        }
        let room = self.max + 1 - self.pending.len();
        if seg.len() <= room {
            self.pending.extend_from_slice(seg);
        } else {
            self.pending.extend_from_slice(&seg[..room]);
            self.skipped += (seg.len() - room) as u64;
            self.cut = true;
        }
    }

    fn emit(&mut self, had_lf: bool, out: &mut impl FnMut(AssembledLine)) {
        let mut bytes = std::mem::take(&mut self.pending);
        if had_lf && !self.cut && bytes.last() == Some(&b'\r') {
            bytes.pop();
        }
        let mut truncated = self.cut;
        if bytes.len() > self.max {
            // The byte kept beyond `max` (room for a CR) was not a CR before the LF.
            self.skipped += (bytes.len() - self.max) as u64;
            bytes.truncate(self.max);
            truncated = true;
        }
        out(AssembledLine {
            start: self.start,
            end: self.next,
            bytes,
            truncated,
        });
        self.start = self.next;
        self.cut = false;
    }
}

#[cfg(test)]
mod tests;
