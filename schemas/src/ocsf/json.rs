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

/// Whether any of the 8 bytes of `x` is a control character, `"` or `\\` (SWAR).
#[inline]
fn needs_escape(x: u64) -> bool {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    // A byte below 0x20; a byte equal to '"' or '\\' (their XOR becomes zero).
    let ctrl = x.wrapping_sub(LO * 0x20) & !x & HI;
    let q = x ^ (LO * u64::from(b'"'));
    let quote = q.wrapping_sub(LO) & !q & HI;
    let bs = x ^ (LO * u64::from(b'\\'));
    let backslash = bs.wrapping_sub(LO) & !bs & HI;
    (ctrl | quote | backslash) != 0
}

/// Writes `s` as a JSON string, escaped exactly as serde_json does.
pub fn write_str(s: &str, out: &mut Vec<u8>) {
    out.push(b'"');
    let b = s.as_bytes();
    // Fast path: skip 8-byte words that hold nothing to escape.
    let mut i = 0;
    while i + 8 <= b.len() {
        let word = u64::from_le_bytes(b[i..i + 8].try_into().unwrap_or([0; 8]));
        if needs_escape(word) {
            break;
        }
        i += 8;
    }
    let mut start = 0;
    while i < b.len() {
        let c = b[i];
        let esc: &[u8] = match c {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0x08 => b"\\b",
            0x0c => b"\\f",
            0..=0x1f => {
                out.extend_from_slice(&b[start..i]);
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(c >> 4)]);
                out.push(HEX[usize::from(c & 0xf)]);
                i += 1;
                start = i;
                continue;
            }
            _ => {
                i += 1;
                continue;
            }
        };
        out.extend_from_slice(&b[start..i]);
        out.extend_from_slice(esc);
        i += 1;
        start = i;
    }
    out.extend_from_slice(&b[start..]);
    out.push(b'"');
}

/// Writes `"key":` after a comma unless it is the first member.
pub(crate) fn key(first: &mut bool, name: &str, out: &mut Vec<u8>) {
    if !*first {
        out.push(b',');
    }
    *first = false;
    out.push(b'"');
    out.extend_from_slice(name.strip_prefix("r#").unwrap_or(name).as_bytes());
    out.extend_from_slice(b"\":");
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
        out.push(b'[');
        for (i, v) in self.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            v.write_json(out);
        }
        out.push(b']');
    }
}

impl<T: WriteJson + ?Sized> WriteJson for Box<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl WriteJson for Map<String, Value> {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        write_members(self, &mut true, out);
        out.push(b'}');
    }
}

/// Writes the members of a free-form map (no braces), continuing after `first`.
pub(crate) fn write_members(m: &Map<String, Value>, first: &mut bool, out: &mut Vec<u8>) {
    for (k, v) in m {
        if !*first {
            out.push(b',');
        }
        *first = false;
        write_str(k, out);
        out.push(b':');
        v.write_json(out);
    }
}

impl WriteJson for Value {
    fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Self::Null => out.extend_from_slice(b"null"),
            Self::Bool(b) => b.write_json(out),
            Self::String(s) => write_str(s, out),
            Self::Array(a) => {
                out.push(b'[');
                for (i, v) in a.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_json(out);
                }
                out.push(b']');
            }
            Self::Object(m) => m.write_json(out),
            // Numbers (floats above all) keep serde_json's own formatting.
            Self::Number(n) => out.extend_from_slice(n.to_string().as_bytes()),
        }
    }
}
