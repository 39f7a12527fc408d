//! Events as NDJSON: one JSON object and a newline per event.
//!
//! sonic-rs serializes the same serde model as serde_json with SIMD string escaping; the
//! `pipeline` bench measures both on the mixed workload (see `benches/README.md`), which is
//! why it is used here. The output is the same JSON.

use vedette_schemas::ocsf::Event;

/// Appends `ev` as one JSON line to `out`.
pub fn write_json_line(ev: &Event, out: &mut Vec<u8>) -> Result<(), sonic_rs::Error> {
    sonic_rs::to_writer(&mut *out, ev)?;
    out.push(b'\n');
    Ok(())
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
        ev.user = Some(User::named("a \"quoted\"\tname\u{1}é"));
        ev.raw_data = Some("line with \\ and \n".into());
        let mut out = Vec::new();
        write_json_line(&ev, &mut out).unwrap();
        let want = format!("{}\n", serde_json::to_string(&ev).unwrap());
        assert_eq!(String::from_utf8(out).unwrap(), want);
    }
}
