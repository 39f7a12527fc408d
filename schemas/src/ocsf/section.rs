//! `unmapped` sections that a parser renders to JSON itself, once.
//!
//! A parser's free-form section (`unmapped.auditd` carries every field of every record of
//! an audit event, ~25 per record) built as a `serde_json` map costs a heap key and value
//! per field, a sort, a walk to write it and another to free it: about half of what an
//! audit record costs. An [`ObjectBuilder`] writes the same members straight into one
//! buffer, escaped as the event writer escapes them, in the order the parser gives them;
//! the event writer then copies the buffer whole.

use serde_json::Value;

use super::json::write_str;

/// A JSON object rendered by an [`ObjectBuilder`]: valid JSON by construction (keys and
/// strings escaped, every container closed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonObject(Vec<u8>);

impl JsonObject {
    /// The JSON text.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// The object as a `serde_json` value (for the slow paths: an edit, a redaction, a
    /// test).
    pub fn to_value(&self) -> Value {
        serde_json::from_slice(&self.0).expect("an ObjectBuilder writes valid JSON")
    }

    /// The JSON text as a `str`.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("an ObjectBuilder writes UTF-8")
    }
}

/// Writes a JSON object member by member. Keys must be unique within each object: the
/// caller's duty, as with any writer of JSON text.
#[derive(Debug)]
pub struct ObjectBuilder {
    out: Vec<u8>,
    /// One bit per open container: set while it has no member yet.
    empty: u64,
    /// One bit per open container: set for an array.
    array: u64,
    depth: u32,
}

impl Default for ObjectBuilder {
    fn default() -> Self {
        Self::with_capacity(256)
    }
}

/// Containers nest at most this deep (a section is a few levels at most).
const MAX_DEPTH: u32 = 63;

impl ObjectBuilder {
    /// An empty object with room for `bytes` of JSON.
    pub fn with_capacity(bytes: usize) -> Self {
        let mut out = Vec::with_capacity(bytes);
        out.push(b'{');
        Self {
            out,
            empty: 1,
            array: 0,
            depth: 0,
        }
    }

    fn bit(&self) -> u64 {
        1 << self.depth
    }

    /// The separator before a new member or element.
    fn sep(&mut self) {
        let bit = self.bit();
        if self.empty & bit == 0 {
            self.out.push(b',');
        }
        self.empty &= !bit;
    }

    /// `"key":` in the open object; a value writer (`val_*`, `begin_*_val`) follows.
    pub fn key(&mut self, key: &str) {
        self.sep();
        debug_assert!(self.array & self.bit() == 0, "a key inside an array");
        write_str(key, &mut self.out);
        self.out.push(b':');
    }

    /// The next element of the open array; a value writer (`val_*`, `begin_*_val`)
    /// follows.
    pub fn elem(&mut self) {
        self.sep();
        debug_assert!(self.array & self.bit() != 0, "an element outside an array");
    }

    /// A string value.
    pub fn val_str(&mut self, value: &str) {
        write_str(value, &mut self.out);
    }

    /// An integer value.
    pub fn val_i64(&mut self, n: i64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// An unsigned integer value.
    pub fn val_u64(&mut self, n: u64) {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    }

    /// A float value exactly as serde_json writes it (`2.0` not `2`, its exponent form);
    /// JSON has no infinity or NaN: those are `null`, as serde_json makes them.
    pub fn val_f64(&mut self, f: f64) {
        // Writing to a Vec cannot fail.
        let _ignored = serde_json::to_writer(&mut self.out, &f);
    }

    /// `true` or `false`.
    pub fn val_bool(&mut self, b: bool) {
        self.out
            .extend_from_slice(if b { b"true" } else { b"false" });
    }

    /// `null`.
    pub fn val_null(&mut self) {
        self.out.extend_from_slice(b"null");
    }

    /// `{` as the value after [`ObjectBuilder::key`] or [`ObjectBuilder::elem`]: members
    /// go into it until [`ObjectBuilder::end`].
    pub fn begin_object_val(&mut self) {
        self.open(b'{', false);
    }

    /// `[` as the value after [`ObjectBuilder::key`] or [`ObjectBuilder::elem`]:
    /// elements go into it until [`ObjectBuilder::end`].
    pub fn begin_array_val(&mut self) {
        self.open(b'[', true);
    }

    /// `"key":"value"`.
    pub fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        self.val_str(value);
    }

    /// `"key":n`.
    pub fn u64(&mut self, key: &str, n: u64) {
        self.key(key);
        self.val_u64(n);
    }

    /// `"key":` any JSON value.
    pub fn value(&mut self, key: &str, v: &Value) {
        self.key(key);
        super::json::WriteJson::write_json(v, &mut self.out);
    }

    /// A string element of the open array.
    pub fn elem_str(&mut self, value: &str) {
        self.elem();
        self.val_str(value);
    }

    fn open(&mut self, c: u8, array: bool) {
        // Nesting follows the parser's code, never its input: a section is a few levels.
        assert!(
            self.depth < MAX_DEPTH,
            "sections nest at most {MAX_DEPTH} deep"
        );
        self.out.push(c);
        self.depth += 1;
        let bit = self.bit();
        self.empty |= bit;
        if array {
            self.array |= bit;
        } else {
            self.array &= !bit;
        }
    }

    /// `"key":{`: members go into the new object until [`ObjectBuilder::end`].
    pub fn begin_object(&mut self, key: &str) {
        self.key(key);
        self.begin_object_val();
    }

    /// `"key":[`: elements go into the new array until [`ObjectBuilder::end`].
    pub fn begin_array(&mut self, key: &str) {
        self.key(key);
        self.begin_array_val();
    }

    /// An object element of the open array.
    pub fn begin_object_elem(&mut self) {
        self.elem();
        self.begin_object_val();
    }

    /// Closes the innermost open object or array.
    pub fn end(&mut self) {
        if self.depth == 0 {
            debug_assert!(false, "end() without a begin");
            return;
        }
        let bit = self.bit();
        self.out
            .push(if self.array & bit != 0 { b']' } else { b'}' });
        self.depth -= 1;
    }

    /// The object, every container still open closed.
    pub fn finish(mut self) -> JsonObject {
        while self.depth > 0 {
            self.end();
        }
        self.out.push(b'}');
        JsonObject(self.out)
    }
}

fn key_bit(k: &str) -> u64 {
    let kb = k.as_bytes();
    let h = (kb.len() as u32)
        .wrapping_mul(31)
        .wrapping_add(u32::from(kb.first().copied().unwrap_or(0)).wrapping_mul(7))
        .wrapping_add(u32::from(kb.last().copied().unwrap_or(0)));
    1u64 << (h % 64)
}

/// Whether some key in `keys` may be given twice: each key sets one bit of a cheap hash,
/// so `false` is certain and `true` is for [`repeated`] to settle.
pub fn may_repeat<'k>(keys: impl IntoIterator<Item = &'k str>) -> bool {
    let mut seen = 0u64;
    for k in keys {
        let bit = key_bit(k);
        if seen & bit != 0 {
            return true;
        }
        seen |= bit;
    }
    false
}

/// The keys `key(0..n)` not to write so that each is written once with its last value (as
/// a map keeps it): `None` when none repeats, else `Some(keep)`, `keep[i]` false for a
/// key given again later. Linear in `n` however the keys repeat (a line's keys are
/// whoever wrote it to choose): a later key is compared in full only when its hash bit
/// was seen, and past 64 keys a hash set decides.
pub fn repeated<'k>(n: usize, key: impl Fn(usize) -> &'k str) -> Option<Vec<bool>> {
    let mut keep: Option<Vec<bool>> = None;
    if n > 64 {
        let mut later = std::collections::HashSet::with_capacity(n);
        for i in (0..n).rev() {
            if !later.insert(key(i)) {
                keep.get_or_insert_with(|| vec![true; n])[i] = false;
            }
        }
        return keep;
    }
    let mut later = 0u64;
    for i in (0..n).rev() {
        let k = key(i);
        let bit = key_bit(k);
        if later & bit != 0 && (i + 1..n).any(|j| key(j) == k) {
            keep.get_or_insert_with(|| vec![true; n])[i] = false;
        }
        later |= bit;
    }
    keep
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn nested_members_and_escapes_read_back() {
        let mut b = ObjectBuilder::default();
        b.u64("serial", 7);
        b.begin_array("records");
        b.elem_str("SYSCALL");
        b.elem_str("PA\"TH");
        b.end();
        b.begin_object("SYSCALL");
        b.str("exe", "/usr/bin/x\n");
        b.str("k\u{1}", "");
        b.end();
        b.begin_array("PATH");
        b.begin_object_elem();
        b.str("name", "a");
        b.end();
        b.begin_object_elem();
        b.end();
        b.end();
        b.begin_object("empty");
        b.value("v", &json!([1.5, null, {"x": true}]));
        b.end();
        b.key("n");
        b.begin_array_val();
        for f in [2.0, 0.1, -7.25e-8, f64::INFINITY] {
            b.elem();
            b.val_f64(f);
        }
        b.elem();
        b.val_i64(-3);
        b.elem();
        b.val_bool(false);
        b.elem();
        b.begin_array_val();
        let o = b.finish();
        assert!(
            o.as_str()
                .contains(r#""n":[2.0,0.1,-7.25e-8,null,-3,false,[]]"#),
            "floats as serde_json writes them: {}",
            o.as_str()
        );
        assert_eq!(
            o.to_value(),
            json!({
                "serial": 7,
                "records": ["SYSCALL", "PA\"TH"],
                "SYSCALL": {"exe": "/usr/bin/x\n", "k\u{1}": ""},
                "PATH": [{"name": "a"}, {}],
                "empty": {"v": [1.5, null, {"x": true}]},
                "n": [2.0, 0.1, -7.25e-8, null, -3, false, []],
            })
        );
        assert_eq!(ObjectBuilder::default().finish().as_str(), "{}");
    }

    #[test]
    fn each_key_is_kept_once_with_its_last_value() {
        assert!(!may_repeat(["a", "b", "serial"]));
        assert!(may_repeat(["a", "b", "a"]));
        let keys = ["a", "b", "a", "c", "b"];
        assert_eq!(
            repeated(keys.len(), |i| keys[i]),
            Some(vec![false, false, true, true, true])
        );
        assert_eq!(repeated(3, |i| ["x", "y", "z"][i]), None);
        // Small and past 64 keys (the hash set), the same answer as a plain search.
        for n in [40, 100] {
            let keys: Vec<String> = (0..n).map(|i| format!("k{}", i % 25)).collect();
            let keep = repeated(n, |i| keys[i].as_str()).expect("repeats");
            for (i, k) in keys.iter().enumerate() {
                assert_eq!(keep[i], !keys[i + 1..].contains(k), "{n} {i}");
            }
        }
    }
}
