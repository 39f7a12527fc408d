use super::*;
use serde_json::Value;
use std::io::Read;

fn schema() -> Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/ocsf/schema/ocsf-1.8.0.export.json.gz"
    );
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    let mut s = String::new();
    flate2::read::GzDecoder::new(f)
        .read_to_string(&mut s)
        .expect("gunzip schema");
    serde_json::from_str(&s).expect("schema JSON")
}

fn enum_caption(attr: &Value, id: u64) -> Option<String> {
    attr["enum"][id.to_string()]["caption"]
        .as_str()
        .map(str::to_owned)
}

#[test]
fn table_agrees_with_the_official_1_8_0_schema() {
    let schema = schema();
    let classes = schema["classes"].as_object().expect("classes");
    for class in Class::ALL {
        let info = class.info();
        let def = classes
            .values()
            .find(|c| c["uid"].as_u64() == Some(u64::from(info.uid)))
            .unwrap_or_else(|| panic!("class {} missing from schema", info.uid));
        assert_eq!(
            def["caption"].as_str(),
            Some(info.name),
            "class_name of {}",
            info.uid
        );
        assert_eq!(
            def["category_uid"].as_u64(),
            Some(u64::from(info.category_uid))
        );
        let acts = &def["attributes"]["activity_id"];
        let want: Vec<u64> = acts["enum"]
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.parse().unwrap())
            .collect();
        assert_eq!(
            want.len(),
            info.activities.len(),
            "activities of {}",
            info.name
        );
        for (id, name) in info.activities {
            assert_eq!(
                enum_caption(acts, u64::from(*id)).as_deref(),
                Some(*name),
                "{} {id}",
                info.name
            );
        }
        let sev = &def["attributes"]["severity_id"];
        for s in Severity::ALL {
            assert_eq!(
                enum_caption(sev, u64::from(s.id())).as_deref(),
                Some(s.caption())
            );
        }
        let st = &def["attributes"]["status_id"];
        for s in Status::ALL {
            assert_eq!(
                enum_caption(st, u64::from(s.id())).as_deref(),
                Some(s.caption())
            );
        }
    }
}

#[test]
fn header_serializes_derived_ids_and_captions() {
    let mut h = crate::ocsf::Header::new(Class::Authentication, 1);
    h.status = Some(Status::Failure);
    let v = serde_json::to_value(h).unwrap();
    assert_eq!(v["type_uid"], 300201);
    assert_eq!(v["type_name"], "Authentication: Logon");
    assert_eq!(v["category_name"], "Identity & Access Management");
    assert_eq!(v["status"], "Failure");
    let back: crate::ocsf::Header = serde_json::from_value(v).unwrap();
    assert_eq!(back, h);
}

#[test]
fn unknown_activity_becomes_other() {
    let h = crate::ocsf::Header::new(Class::NetworkActivity, 42);
    assert_eq!(h.activity_id, 99);
    assert_eq!(h.type_uid(), 400199);
}

#[test]
fn event_round_trips_through_json() {
    use crate::ocsf::{Event, Product};
    let mut e = Event::new(
        Class::Authentication,
        1,
        1_700_000_000_000,
        Product::default(),
    );
    e.user = Some(crate::ocsf::User::named("root"));
    e.observe(
        "user.name",
        crate::ocsf::ObservableType::UserName,
        "root".into(),
    );
    let s = serde_json::to_string(&e).unwrap();
    let back: Event = serde_json::from_str(&s).unwrap();
    assert_eq!(back, e);
}
