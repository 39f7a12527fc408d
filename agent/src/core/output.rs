//! Events as NDJSON: one JSON object and a newline per event.
//!
//! Written by the schema's direct writer ([`WriteJson`]): the same bytes serde_json gives
//! for the same event (checked over the whole corpus in `agent/tests/json_writer.rs`), at a
//! fraction of the cost; the `pipeline` bench runs serde_json beside it as the baseline.

use vedette_schemas::ocsf::{Event, WriteJson};

/// Appends `ev` as one JSON line to `out`.
pub fn write_json_line(ev: &Event, out: &mut Vec<u8>) {
    ev.write_json(out);
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;
    use vedette_schemas::ocsf::{Class, Product, User};

    #[test]
    fn same_json_as_serde_json() {
        let mut ev = Event::new(
            Class::Authentication,
            1,
            1_700_000_000_000,
            Product::default(),
        );
        ev.user = Some(User::named("a \"quoted\"\tname\u{1}\u{7f}é\\"));
        ev.raw_data = Some("line with \\ and \n\r\u{8}\u{c}".into());
        ev.unmapped_set("x", "f", 1.5);
        ev.unmapped_set("x", "n", serde_json::Value::Null);
        let mut out = Vec::new();
        write_json_line(&ev, &mut out);
        let want = format!("{}\n", serde_json::to_string(&ev).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}
