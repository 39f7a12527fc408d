//! Syslog over a byte stream (TCP, TLS): RFC 6587 frames, octet-counted (`LEN SP MSG`) or
//! newline-terminated, told apart frame by frame until the connection has sent a
//! newline-terminated one.
//!
//! A frame that starts with `NONZERO-DIGIT *DIGIT SP <PRI>` is octet-counted (RFC 6587
//! §3.4.1: a count, then a syslog message, which starts with its PRI), anything else runs
//! to LF (§3.4.2). A message without PRI that starts with a number and a space (`1500
//! drops`) is LF-framed: read as a count, it made the deframer wait for that many bytes and
//! merge the messages that followed into one. And once a connection has sent a line, it
//! sends lines: a message with a newline in it (an application's multi-line text, relayed
//! as is) put its second line at a frame's start, where `9999999999 <13>…` was taken for a
//! count that swallowed the connection's next ten gigabytes, the messages in them with it.
//! An octet-counted connection may still fall back to a line where no count starts.
//!
//! A frame longer than the cap is never buffered whole: its first `max` bytes are kept,
//! the rest is skipped, and the frame comes out with its full length so the event says it
//! was cut.

/// One frame out of the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame<'a> {
    /// The message (at most `max` bytes).
    pub bytes: &'a [u8],
    /// The frame's full length when it was longer than `max`, or when the stream ended
    /// inside an octet-counted frame (the declared length).
    pub cut_from: Option<u64>,
    /// Whether the frame was octet-counted.
    pub octet_counted: bool,
}

/// Frames seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FramingStats {
    /// Octet-counted frames.
    pub octet: u64,
    /// Newline-terminated frames.
    pub lf: u64,
    /// Frames longer than the cap (cut).
    pub cut: u64,
    /// Frames the stream ended inside of: octet-counted ones, and LF-framed lines cut off
    /// by this end ([`Deframer::finish_as`]).
    pub incomplete: u64,
}

#[derive(Debug)]
enum State {
    /// Between frames.
    Start,
    /// Inside a frame longer than the cap: its head is held, the rest is being skipped.
    Long {
        /// Bytes of the frame seen so far (octet-counted: the declared length).
        total: u64,
        /// Octet-counted: message bytes still to come. LF-framed: `None` (runs to LF).
        left: Option<u64>,
    },
}

/// The stream deframer: bytes in with [`Deframer::push`], frames out with
/// [`Deframer::poll_frame`] until `None`, [`Deframer::finish`] at end of stream.
#[derive(Debug)]
pub struct Deframer {
    buf: Vec<u8>,
    pos: usize,
    max: usize,
    held: Vec<u8>,
    state: State,
    stats: FramingStats,
    /// Bytes from `pos` already searched for a LF without finding one: a line arriving in
    /// small pieces is searched once, not from its start at every piece (a sender
    /// dripping a line a byte at a time cost a scan of up to `max` bytes per byte).
    lf_scanned: usize,
    /// The connection has sent a newline-terminated frame: no count is read any more.
    lines: bool,
    /// Whether a newline-terminated frame ends count reading ([`Deframer::lines`]); not
    /// for a file declared octet-counted.
    lines_stick: bool,
}

/// Longest octet count read (10 digits: up to 9,999,999,999 bytes).
const MAX_DIGITS: usize = 10;

impl Deframer {
    /// A deframer that cuts frames at `max` bytes (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            max: max.max(1),
            held: Vec::new(),
            state: State::Start,
            stats: FramingStats::default(),
            lf_scanned: 0,
            lines: false,
            lines_stick: true,
        }
    }

    /// A deframer for a stream declared octet-counted (`normalize --framing octet`): a
    /// frame without a count is read as a line, and counts are read after it too.
    pub fn octet_counted(max: usize) -> Self {
        Self {
            lines_stick: false,
            ..Self::new(max)
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> FramingStats {
        self.stats
    }

    /// Bytes buffered and not yet framed (bounded by about `max` plus one read).
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos + self.held.len()
    }

    /// Appends bytes read from the stream.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.pos > 0 && (self.pos == self.buf.len() || self.pos >= self.buf.len() / 2) {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete frame, or `None` until more bytes come.
    pub fn poll_frame(&mut self) -> Option<Frame<'_>> {
        let State::Long { total, left } = self.state else {
            return self.start();
        };
        let avail = &self.buf[self.pos..];
        let (take, done) = match left {
            Some(left) => {
                let n = avail.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                (n, n as u64 == left)
            }
            None => match memchr::memchr(b'\n', avail) {
                Some(i) => (i, true),
                None => (avail.len(), false),
            },
        };
        let room = self.max - self.held.len();
        self.held.extend_from_slice(&avail[..take.min(room)]);
        let total = if left.is_some() {
            total
        } else {
            total + take as u64
        };
        // The LF that ends a long LF-framed frame is consumed with it.
        self.pos += take + usize::from(done && left.is_none());
        if !done {
            self.state = State::Long {
                total,
                left: left.map(|l| l - take as u64),
            };
            return None;
        }
        self.state = State::Start;
        self.stats.cut += 1;
        if left.is_some() {
            self.stats.octet += 1;
        } else {
            self.stats.lf += 1;
            self.lines = self.lines_stick;
        }
        Some(Frame {
            bytes: &self.held,
            cut_from: Some(total),
            octet_counted: left.is_some(),
        })
    }

    fn start(&mut self) -> Option<Frame<'_>> {
        self.held.clear();
        // Separators some senders put between frames (a trailing LF after an
        // octet-counted frame, CRLF, NUL) are not messages.
        while let Some(b'\n' | b'\r' | 0) = self.buf.get(self.pos) {
            self.pos += 1;
        }
        let avail = &self.buf[self.pos..];
        if avail.is_empty() {
            return None;
        }
        if !self.lines
            && let b'1'..=b'9' = avail[0]
        {
            let digits = avail
                .iter()
                .take(MAX_DIGITS + 1)
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits == avail.len() && digits <= MAX_DIGITS {
                return None; // the count may go on
            }
            // `<PRI>` after the count decides: `<`, one to three digits, `>`.
            let pri = |b: &[u8]| -> Option<bool> {
                let rest = b.strip_prefix(b"<")?;
                let n = rest
                    .iter()
                    .take(4)
                    .take_while(|c| c.is_ascii_digit())
                    .count();
                match rest.get(n) {
                    None if n < 4 => None,
                    Some(b'>') => Some((1..=3).contains(&n)),
                    _ => Some(false),
                }
            };
            let after = if digits <= MAX_DIGITS && avail[digits] == b' ' {
                Some(&avail[digits + 1..])
            } else {
                None
            };
            if after.is_some_and(|a| a.is_empty() || (a[0] == b'<' && pri(a).is_none())) {
                return None; // what follows the count decides
            }
            if after.is_some_and(|a| pri(a) == Some(true)) {
                let len: u64 = std::str::from_utf8(&avail[..digits])
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .expect("1 to 10 ASCII digits parse as u64");
                let body = &avail[digits + 1..];
                if len > self.max as u64 {
                    self.pos += digits + 1;
                    self.state = State::Long {
                        total: len,
                        left: Some(len),
                    };
                    return self.poll_frame();
                }
                let len = len as usize;
                if body.len() < len {
                    return None;
                }
                let start = self.pos + digits + 1;
                self.pos = start + len;
                self.stats.octet += 1;
                return Some(Frame {
                    bytes: &self.buf[start..start + len],
                    cut_from: None,
                    octet_counted: true,
                });
            }
        }
        let from = self.lf_scanned.min(avail.len());
        match memchr::memchr(b'\n', &avail[from..]).map(|i| from + i) {
            Some(i) => {
                self.lf_scanned = 0;
                let start = self.pos;
                self.pos += i + 1;
                self.stats.lf += 1;
                self.lines = self.lines_stick;
                let cut = i > self.max;
                if cut {
                    self.stats.cut += 1;
                }
                Some(Frame {
                    bytes: &self.buf[start..start + i.min(self.max)],
                    cut_from: cut.then_some(i as u64),
                    octet_counted: false,
                })
            }
            None if avail.len() > self.max => {
                self.lf_scanned = 0;
                self.state = State::Long {
                    total: 0,
                    left: None,
                };
                self.poll_frame()
            }
            None => {
                self.lf_scanned = avail.len();
                None
            }
        }
    }

    /// End of stream: what is left becomes a last frame. A final frame without its LF is
    /// complete (senders close without one); an octet-counted frame the stream ended inside
    /// of comes out with what arrived, flagged as cut from its declared length.
    pub fn finish(&mut self) -> Option<Frame<'_>> {
        self.finish_as(false).map(|(f, _)| f)
    }

    /// [`Deframer::finish`] for a stream cut off by this end (a stop, an eviction, an
    /// error) when `interrupted`: a last LF-framed line without its LF is then what arrived
    /// of an unfinished one, said by the `true` beside it (its length is unknown), where
    /// at a sender's close it is a complete message.
    pub fn finish_as(&mut self, interrupted: bool) -> Option<(Frame<'_>, bool)> {
        self.lf_scanned = 0;
        let state = std::mem::replace(&mut self.state, State::Start);
        match state {
            State::Long { total, left } => {
                // A long line cut off by this end: its length is unknown, not what was seen.
                let unfinished = interrupted && left.is_none();
                if left.is_some() || unfinished {
                    self.stats.incomplete += 1;
                }
                if left.is_some() {
                    self.stats.octet += 1;
                } else {
                    self.stats.lf += 1;
                    self.stats.cut += 1;
                }
                self.pos = self.buf.len();
                Some((
                    Frame {
                        bytes: &self.held,
                        cut_from: (!unfinished).then_some(total),
                        octet_counted: left.is_some(),
                    },
                    unfinished,
                ))
            }
            State::Start => {
                while let Some(b'\n' | b'\r' | 0) = self.buf.get(self.pos) {
                    self.pos += 1;
                }
                let avail = &self.buf[self.pos..];
                if avail.is_empty() {
                    return None;
                }
                let start = self.pos;
                self.pos = self.buf.len();
                // An octet count whose frame never completed.
                let digits = avail.iter().take_while(|b| b.is_ascii_digit()).count();
                if !self.lines
                    && (1..=MAX_DIGITS).contains(&digits)
                    && avail[0] != b'0'
                    && avail.get(digits) == Some(&b' ')
                    && avail.get(digits + 1).is_none_or(|&b| b == b'<')
                {
                    let declared = std::str::from_utf8(&avail[..digits])
                        .ok()
                        .and_then(|s| s.parse().ok());
                    self.stats.incomplete += 1;
                    self.stats.octet += 1;
                    return Some((
                        Frame {
                            bytes: &self.buf[start + digits + 1..],
                            cut_from: declared,
                            octet_counted: true,
                        },
                        false,
                    ));
                }
                self.stats.lf += 1;
                if interrupted {
                    self.stats.incomplete += 1;
                }
                Some((
                    Frame {
                        bytes: &self.buf[start..],
                        cut_from: None,
                        octet_counted: false,
                    },
                    interrupted,
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests;
