//! Reading fields out of events by dotted path, and comparing them loosely typed.

use serde_json::Value;

/// The value at a dotted path (`a.b.c`; a numeric segment indexes an array). JSON `null`
/// counts as absent, as it does for OCSF.
pub(crate) fn get<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path.split('.') {
        cur = match cur {
            Value::Object(m) => m.get(seg)?,
            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    (!cur.is_null()).then_some(cur)
}

/// A string or number as text: `"1000"` and `1000` compare equal, since the corpora write
/// numbers as strings and OCSF types them. Objects, arrays and null have no text.
pub(crate) fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (_, Some(u), _) => u.to_string(),
            // An integral float (4294967295.0) is the integer an auditd field meant.
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => format!("{f:.0}"),
            _ => n.to_string(),
        }),
        _ => None,
    }
}

/// The text at `path`, if the field holds a scalar.
pub(crate) fn text_at(v: &Value, path: &str) -> Option<String> {
    get(v, path).and_then(text)
}

/// A field for a failure message: its JSON, clipped, or `absent`.
pub(crate) fn show(v: Option<&Value>) -> String {
    match v {
        None => "absent".to_owned(),
        Some(v) => super::clip(&v.to_string(), 160),
    }
}

/// The field at `path` for a failure message.
pub(crate) fn show_at(ev: &Value, path: &str) -> String {
    show(get(ev, path))
}
