//! A direct JSON writer for events: the same bytes serde_json writes for the same event
//! (the tests compare them), without serde's generic machinery, `flatten`'s map path or
//! per-key escaping. Keys are known ASCII; string values take a fast path when they hold
//! nothing to escape. The `pipeline` bench measures it beside serde-based serializers.

use serde_json::{Map, Value};

use super::objects::Text;

/// Writes a value as JSON.
pub trait WriteJson {
    /// Appends the JSON of `self` to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

const LO: u64 = 0x0101_0101_0101_0101;
const HI: u64 = 0x8080_8080_8080_8080;

/// The high bit of each byte of `x` that JSON escapes (control, `"`, `\\`) may be set;
/// zero exactly when none is (the classic SWAR "has a byte less than / equal to" tests).
#[inline(always)]
fn dirty_word(x: u64) -> u64 {
    let zero_byte = |x: u64| x.wrapping_sub(LO) & !x & HI;
    (x.wrapping_sub(LO * 0x20) & !x & HI)
        | zero_byte(x ^ (LO * u64::from(b'"')))
        | zero_byte(x ^ (LO * u64::from(b'\\')))
}

#[inline(always)]
fn word(b: &[u8], i: usize) -> u64 {
    let w: [u8; 8] = b[i..i + 8].try_into().expect("8 bytes");
    u64::from_le_bytes(w)
}

/// Whether `b` holds nothing JSON escapes (no control character, `"` or `\\`), 8 bytes at
/// a time (SWAR, no branch per byte): the tail is the last 8 bytes again (overlapping),
/// and strings under 8 bytes are read as overlapping halves padded with spaces.
#[inline]
fn is_clean(b: &[u8]) -> bool {
    let n = b.len();
    if n >= 32 {
        // Long strings (messages, raw lines): a branch-free byte test over 32-byte blocks
        // that the compiler turns into vector compares; the tail is the last block again.
        let block = |c: &[u8]| {
            c.iter().fold(0u8, |d, &x| {
                d | u8::from(x < 0x20 || x == b'"' || x == b'\\')
            })
        };
        let mut blocks = b.chunks_exact(32);
        for c in &mut blocks {
            if block(c) != 0 {
                return false;
            }
        }
        blocks.remainder().is_empty() || block(&b[n - 32..]) == 0
    } else if n >= 8 {
        let mut dirty = 0;
        let mut i = 0;
        while i + 8 <= n {
            dirty |= dirty_word(word(b, i));
            i += 8;
        }
        if i < n {
            dirty |= dirty_word(word(b, n - 8));
        }
        dirty == 0
    } else if n >= 4 {
        let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
        let hi = u32::from_le_bytes([b[n - 4], b[n - 3], b[n - 2], b[n - 1]]);
        dirty_word(u64::from(lo) | (u64::from(hi) << 32)) == 0
    } else if n > 0 {
        // b[0], b[n / 2] and b[n - 1] cover every byte of a 1-3 byte string.
        let x = u64::from_le_bytes([b[0], b[n / 2], b[n - 1], b' ', b' ', b' ', b' ', b' ']);
        dirty_word(x) == 0
    } else {
        true
    }
}

/// Writes `s` as a JSON string, escaped exactly as serde_json does.
#[inline]
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    let b = s.as_bytes();
    if is_clean(b) {
        out.reserve(b.len() + 2);
        out.push(b'"');
        out.extend_from_slice(b);
        out.push(b'"');
    } else {
        write_escaped(b, out);
    }
}

/// [`write_str`] for a string that holds something to escape (kept out of line so the
/// clean path stays small enough to inline). One pass, 8 bytes at a time: a clean word is
/// skipped whole; in a dirty one the lowest flagged byte is exact (the SWAR tests only
/// raise false flags above a true one), so it jumps straight to the byte to escape.
#[inline(never)]
fn write_escaped(b: &[u8], out: &mut Vec<u8>) {
    out.reserve(b.len() + 2);
    out.push(b'"');
    let n = b.len();
    let mut start = 0;
    let mut i = 0;
    while i + 8 <= n {
        let m = dirty_word(word(b, i));
        if m == 0 {
            i += 8;
            continue;
        }
        let j = i + (m.trailing_zeros() / 8) as usize;
        out.extend_from_slice(&b[start..j]);
        write_escape(b[j], out);
        start = j + 1;
        i = j + 1;
    }
    for (j, &c) in b.iter().enumerate().skip(i) {
        if c < 0x20 || c == b'"' || c == b'\\' {
            out.extend_from_slice(&b[start..j]);
            write_escape(c, out);
            start = j + 1;
        }
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// The escape of one byte that needs one (control, `"`, `\\`), as serde_json writes it:
/// fixed-size writes (2 or 6 bytes), no copy of a variable length.
#[inline(always)]
fn write_escape(c: u8, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match c {
        b'"' => b'"',
        b'\\' => b'\\',
        b'\n' => b'n',
        b'\r' => b'r',
        b'\t' => b't',
        0x08 => b'b',
        0x0c => b'f',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(c >> 4)],
                HEX[usize::from(c & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// Closes an object opened at `open` whose members were written each after a comma: the
/// first member's comma becomes the opening brace (an empty object gets one). No member
/// needs to know whether it is the first, so every key is a literal of fixed length,
/// copied without a call to `memcpy`.
#[inline]
pub(crate) fn close_object(open: usize, out: &mut Vec<u8>) {
    if out.len() > open {
        debug_assert_eq!(out[open], b',', "members are written after a comma");
        out[open] = b'{';
    } else {
        out.push(b'{');
    }
    out.push(b'}');
}

impl WriteJson for Text {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(self, out);
    }
}

impl WriteJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(self, out);
    }
}

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

macro_rules! int_json {
    ($($t:ty),*) => {$(
        impl WriteJson for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
            }
        }
    )*};
}
int_json!(u8, u16, u32, u64, i32, i64);

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_seq(self, out);
    }
}

/// Writes a JSON array.
fn write_seq<T: WriteJson>(items: &[T], out: &mut Vec<u8>) {
    out.push(b'[');
    for (i, v) in items.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        v.write_json(out);
    }
    out.push(b']');
}

impl<T: WriteJson + ?Sized> WriteJson for Box<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl WriteJson for Map<String, Value> {
    fn write_json(&self, out: &mut Vec<u8>) {
        let open = out.len();
        write_members(self, out);
        close_object(open, out);
    }
}

/// Writes `,"key":` for a key from the input (escaped).
#[inline]
pub(crate) fn key_escaped(k: &str, out: &mut Vec<u8>) {
    out.push(b',');
    write_str(k, out);
    out.push(b':');
}

/// Writes the members of a free-form map, each after a comma (see [`close_object`]).
pub(crate) fn write_members(m: &Map<String, Value>, out: &mut Vec<u8>) {
    for (k, v) in m {
        key_escaped(k, out);
        v.write_json(out);
    }
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Bool(b) => b.write_json(out),
            Self::String(s) => write_str(s, out),
            Self::Array(a) => write_seq(a, out),
            Self::Object(m) => m.write_json(out),
            // Numbers (floats above all) keep serde_json's own formatting.
            Self::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    fn ours(s: &str) -> String {
        let mut out = Vec::new();
        super::write_str(s, &mut out);
        String::from_utf8(out).expect("UTF-8 out")
    }

    #[test]
    fn one_escape_anywhere_in_short_strings() {
        for n in 1..40 {
            for at in 0..n {
                for c in ['"', '\\', '\n', '\u{1}', '\u{1f}'] {
                    let mut s: String = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGH"[..n].into();
                    s.replace_range(at..=at, &c.to_string());
                    assert_eq!(ours(&s), serde_json::to_string(&s).unwrap(), "{s:?}");
                }
            }
        }
    }

    proptest! {
        #[test]
        fn strings_escape_exactly_as_serde_json(s in any::<String>()) {
            prop_assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }

        #[test]
        fn escape_heavy_strings_too(s in "[\"\\\\\u{0}-\u{1f}a-z\u{7f}é]{0,40}") {
            prop_assert_eq!(ours(&s), serde_json::to_string(&s).unwrap());
        }
    }
}
