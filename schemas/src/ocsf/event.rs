//! The OCSF event: a [`Header`] (class, activity, severity, status, from which every id and
//! caption is derived) plus the attributes of the classes we emit.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::objects::*;
use super::table::{Class, Severity, Status};

/// The typed identity of an event; serializes to `class_uid`, `class_name`, `category_uid`,
/// `category_name`, `activity_id`, `activity_name`, `type_uid`, `type_name`, `severity_id`,
/// `severity` and, when set, `status_id` and `status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// The class.
    pub class: Class,
    /// The activity within the class; must be one of the class's activities.
    pub activity_id: u8,
    /// The severity.
    pub severity: Severity,
    /// The outcome, when the class and source say one.
    pub status: Option<Status>,
}

impl Header {
    /// A header for `class` and `activity_id`, informational, without status.
    ///
    /// An activity the class does not define becomes 99 (Other): the table is the only
    /// source of activity ids, so a caller cannot emit an id the schema rejects.
    pub fn new(class: Class, activity_id: u8) -> Self {
        let activity_id = if class.activity_name(activity_id).is_some() {
            activity_id
        } else {
            99
        };
        Self {
            class,
            activity_id,
            severity: Severity::Informational,
            status: None,
        }
    }

    /// `activity_name`.
    pub fn activity_name(&self) -> &'static str {
        self.class
            .activity_name(self.activity_id)
            .unwrap_or("Other")
    }

    /// `type_uid`.
    pub fn type_uid(&self) -> u64 {
        self.class.type_uid(self.activity_id)
    }
}

struct TypeName(&'static str, &'static str);

impl Serialize for TypeName {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!("{}: {}", self.0, self.1))
    }
}

impl Serialize for Header {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let info = self.class.info();
        let n = if self.status.is_some() { 12 } else { 10 };
        let mut st = s.serialize_struct("Header", n)?;
        st.serialize_field("class_uid", &info.uid)?;
        st.serialize_field("class_name", info.name)?;
        st.serialize_field("category_uid", &info.category_uid)?;
        st.serialize_field("category_name", info.category_name)?;
        st.serialize_field("activity_id", &self.activity_id)?;
        st.serialize_field("activity_name", self.activity_name())?;
        st.serialize_field("type_uid", &self.type_uid())?;
        st.serialize_field("type_name", &TypeName(info.name, self.activity_name()))?;
        st.serialize_field("severity_id", &self.severity.id())?;
        st.serialize_field("severity", self.severity.caption())?;
        if let Some(status) = self.status {
            st.serialize_field("status_id", &status.id())?;
            st.serialize_field("status", status.caption())?;
        }
        st.end()
    }
}

#[derive(Deserialize)]
struct RawHeader {
    class_uid: u32,
    activity_id: u8,
    severity_id: u8,
    status_id: Option<u8>,
}

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = RawHeader::deserialize(d)?;
        let class = Class::from_uid(raw.class_uid).ok_or_else(|| {
            D::Error::custom(format!(
                "class_uid {} is not a class Vedette emits",
                raw.class_uid
            ))
        })?;
        if class.activity_name(raw.activity_id).is_none() {
            return Err(D::Error::custom(format!(
                "activity_id {} is not defined for class {}",
                raw.activity_id, raw.class_uid
            )));
        }
        let severity = Severity::from_id(raw.severity_id)
            .ok_or_else(|| D::Error::custom(format!("unknown severity_id {}", raw.severity_id)))?;
        let status = match raw.status_id {
            None => None,
            Some(id) => Some(
                Status::from_id(id)
                    .ok_or_else(|| D::Error::custom(format!("unknown status_id {id}")))?,
            ),
        };
        Ok(Self {
            class,
            activity_id: raw.activity_id,
            severity,
            status,
        })
    }
}

/// One OCSF 1.8.0 event of a class Vedette emits.
///
/// Class-specific attributes are optional fields; the agent's builders set only those the
/// event's class defines (the external validator checks it in the test suite).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Class, activity, severity, status.
    #[serde(flatten)]
    pub header: Header,
    /// Event time, ms since the Unix epoch.
    pub time: i64,
    /// Offset of the source's time zone from UTC, in minutes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone_offset: Option<i32>,
    /// Metadata.
    pub metadata: Metadata,
    /// The message as the source wrote it (the syslog MSG part).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<Text>,
    /// How many occurrences this event stands for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// First occurrence, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_time: Option<i64>,
    /// Last occurrence, ms since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_time: Option<i64>,
    /// Source-specific status code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<Text>,
    /// What the outcome was, in the source's words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_detail: Option<Text>,
    /// The host the event is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<Device>,
    /// Who or what acted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<Actor>,
    /// Action id (1 Allowed, 2 Denied …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<u8>,
    /// Caption of `action_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<Text>,
    /// Disposition id (1 Allowed, 2 Blocked …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition_id: Option<u8>,
    /// Caption of `disposition_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disposition: Option<Text>,

    // Authentication / Account Change
    /// The user the event is about (Authentication, Account Change).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<User>,
    /// Authentication protocol id (Authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_protocol_id: Option<u8>,
    /// Authentication protocol as the source named it (Authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_protocol: Option<Text>,
    /// Logon type id (Authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logon_type_id: Option<u8>,
    /// Caption of `logon_type_id` (Authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logon_type: Option<Text>,
    /// Whether the logon came from another host (Authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_remote: Option<bool>,
    /// The service authenticated to (Authentication).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Service>,

    // Network classes (and Authentication, Account Change)
    /// Source endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src_endpoint: Option<Endpoint>,
    /// Destination endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dst_endpoint: Option<Endpoint>,
    /// Connection details (Network, HTTP, DNS Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection_info: Option<Box<ConnectionInfo>>,
    /// Traffic counters (Network, HTTP, DNS Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traffic: Option<Box<Traffic>>,
    /// HTTP request (HTTP Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_request: Option<Box<HttpRequest>>,
    /// HTTP response (HTTP Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub http_response: Option<Box<HttpResponse>>,
    /// DNS query (DNS Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<Box<DnsQuery>>,
    /// DNS answers (DNS Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Vec<DnsAnswer>>,

    // System classes
    /// The process acted on (Process Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<Box<Process>>,
    /// The file acted on (File System Activity).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<Box<File>>,

    /// Values the event names that an analyst pivots on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observables: Option<Vec<Observable>>,
    /// The original record (capped; see `metadata.is_truncated`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_data: Option<Text>,
    /// What has no OCSF place; Vedette's own notes live under `unmapped.vedette`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unmapped: Option<Unmapped>,
}

impl Event {
    /// [`Event::new`] on the heap, built in its allocation: `Box::new(Event::new(..))`
    /// builds the 2.6 KB event on the stack and then copies it (1.4 % of the normalizer's
    /// instructions on the bench workload).
    pub fn boxed(class: Class, activity_id: u8, time: i64, product: Product) -> Box<Self> {
        Box::write(
            Box::new_uninit(),
            Self::new(class, activity_id, time, product),
        )
    }

    /// An event of `class`/`activity_id` at `time` (ms), with the schema version and the
    /// given product in its metadata and nothing else set.
    pub fn new(class: Class, activity_id: u8, time: i64, product: Product) -> Self {
        Self {
            header: Header::new(class, activity_id),
            time,
            timezone_offset: None,
            metadata: Metadata {
                version: Some(Text::const_new(super::OCSF_VERSION)),
                product: Some(product),
                ..Metadata::default()
            },
            message: None,
            count: None,
            start_time: None,
            end_time: None,
            status_code: None,
            status_detail: None,
            device: None,
            actor: None,
            action_id: None,
            action: None,
            disposition_id: None,
            disposition: None,
            user: None,
            auth_protocol_id: None,
            auth_protocol: None,
            logon_type_id: None,
            logon_type: None,
            is_remote: None,
            service: None,
            src_endpoint: None,
            dst_endpoint: None,
            connection_info: None,
            traffic: None,
            http_request: None,
            http_response: None,
            query: None,
            answers: None,
            process: None,
            file: None,
            observables: None,
            raw_data: None,
            unmapped: None,
        }
    }

    /// The class.
    pub fn class(&self) -> Class {
        self.header.class
    }

    /// Adds an observable unless the same path already holds it.
    pub fn observe(&mut self, path: &'static str, kind: ObservableType, value: Text) {
        if value.is_empty() {
            return;
        }
        let list = self.observables.get_or_insert_with(Vec::new);
        if !list
            .iter()
            .any(|o| o.name.as_deref() == Some(path) && o.value.as_deref() == Some(&*value))
        {
            list.push(Observable::new(path, kind, value));
        }
    }

    /// The `unmapped` object, created on first use.
    pub fn unmapped_mut(&mut self) -> &mut Unmapped {
        self.unmapped.get_or_insert_with(Unmapped::default)
    }

    /// Inserts `value` at `unmapped.<section>.<key>`.
    pub fn unmapped_set(&mut self, section: &str, key: &str, value: impl Into<serde_json::Value>) {
        let u = self.unmapped_mut();
        u.materialize(section);
        let other = &mut u.other;
        let entry = other
            .entry(section.to_owned())
            .or_insert_with(|| serde_json::Value::Object(Json::new()));
        if !entry.is_object() {
            *entry = serde_json::Value::Object(Json::new());
        }
        if let serde_json::Value::Object(m) = entry {
            m.insert(key.to_owned(), value.into());
        }
    }

    /// Notes a parse problem at `unmapped.vedette.parse_error` (appending to an earlier one).
    pub fn note_parse_error(&mut self, why: impl AsRef<str>) {
        let notes = self
            .unmapped_mut()
            .vedette
            .get_or_insert_with(VedetteNotes::default);
        match &mut notes.parse_error {
            Some(e) => {
                e.push_str("; ");
                e.push_str(why.as_ref());
            }
            None => notes.parse_error = Some(Text::from(why.as_ref())),
        }
    }

    /// Adds `name` to `metadata.profiles` once.
    pub fn add_profile(&mut self, name: &'static str) {
        // Events carry one or two profiles: one allocation, never a regrowth.
        let p = self
            .metadata
            .profiles
            .get_or_insert_with(|| Vec::with_capacity(2));
        if !p.iter().any(|x| x == name) {
            p.push(Text::const_new(name));
        }
    }
}

impl super::json::WriteJson for Header {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        self.write_members(out);
        out.push(b'}');
    }
}

/// `"severity_id":N,"severity":"Caption"` / `,"status_id":N,"status":"Caption"` as literals.
macro_rules! id_members {
    ($ty:ident, $id_key:literal, $key:literal, $lead:literal, $($v:ident = $id:literal => $cap:literal),* $(,)?) => {
        |x: $ty| -> &'static str {
            match x {
                $($ty::$v => concat!($lead, "\"", $id_key, "\":", $id, ",\"", $key, "\":\"", $cap, "\""),)*
            }
        }
    };
}

impl Header {
    /// The members of [`Header`]'s serde form, in the same order, without braces.
    fn write_members(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(class_activity_members(self.class, self.activity_id).as_bytes());
        let severity = id_members!(Severity, "severity_id", "severity", ",",
            Unknown = 0 => "Unknown",
            Informational = 1 => "Informational",
            Low = 2 => "Low",
            Medium = 3 => "Medium",
            High = 4 => "High",
            Critical = 5 => "Critical",
            Fatal = 6 => "Fatal",
            Other = 99 => "Other",
        );
        out.extend_from_slice(severity(self.severity).as_bytes());
        if let Some(status) = self.status {
            let status_members = id_members!(Status, "status_id", "status", ",",
                Unknown = 0 => "Unknown",
                Success = 1 => "Success",
                Failure = 2 => "Failure",
                Other = 99 => "Other",
            );
            out.extend_from_slice(status_members(status).as_bytes());
        }
    }

    /// The members from `class_uid` to `type_name` as serde writes them, escaped.
    fn render_class_activity(class: Class, activity_id: u8) -> String {
        use super::json::{WriteJson, write_str};
        let header = Self {
            class,
            activity_id,
            severity: Severity::Unknown,
            status: None,
        };
        let info = class.info();
        let activity = header.activity_name();
        let mut out = Vec::new();
        out.extend_from_slice(b"\"class_uid\":");
        info.uid.write_json(&mut out);
        out.extend_from_slice(b",\"class_name\":");
        write_str(info.name, &mut out);
        out.extend_from_slice(b",\"category_uid\":");
        info.category_uid.write_json(&mut out);
        out.extend_from_slice(b",\"category_name\":");
        write_str(info.category_name, &mut out);
        out.extend_from_slice(b",\"activity_id\":");
        activity_id.write_json(&mut out);
        out.extend_from_slice(b",\"activity_name\":");
        write_str(activity, &mut out);
        out.extend_from_slice(b",\"type_uid\":");
        header.type_uid().write_json(&mut out);
        out.extend_from_slice(b",\"type_name\":");
        write_str(&format!("{}: {activity}", info.name), &mut out);
        String::from_utf8(out).expect("JSON is UTF-8")
    }
}

/// The JSON of the class and activity members of a header, rendered once per (class,
/// activity) the table defines; an activity the table lacks is rendered on the spot.
fn class_activity_members(class: Class, activity_id: u8) -> std::borrow::Cow<'static, str> {
    use std::sync::OnceLock;
    type Rendered = Vec<Vec<(u8, String)>>;
    static RENDERED: OnceLock<Rendered> = OnceLock::new();
    let all = RENDERED.get_or_init(|| {
        Class::ALL
            .iter()
            .map(|&c| {
                c.info()
                    .activities
                    .iter()
                    .map(|&(id, _)| (id, Header::render_class_activity(c, id)))
                    .collect()
            })
            .collect()
    });
    let i = Class::ALL.iter().position(|&c| c == class).unwrap_or(0);
    match all[i].iter().find(|(id, _)| *id == activity_id) {
        Some((_, s)) => std::borrow::Cow::Borrowed(s.as_str()),
        None => std::borrow::Cow::Owned(Header::render_class_activity(class, activity_id)),
    }
}

impl super::json::WriteJson for Event {
    fn write_json(&self, out: &mut Vec<u8>) {
        // Typical events are 1-2 KiB: one reservation instead of growth mid-event.
        out.reserve(2048);
        out.push(b'{');
        self.header.write_members(out);
        out.extend_from_slice(b",\"time\":");
        self.time.write_json(out);
        macro_rules! opt {
            ($($f:ident),*) => {$(
                if let Some(v) = &self.$f {
                    out.extend_from_slice(concat!(",\"", stringify!($f), "\":").as_bytes());
                    v.write_json(out);
                }
            )*};
        }
        opt!(timezone_offset);
        out.extend_from_slice(b",\"metadata\":");
        self.metadata.write_json(out);
        opt!(
            message,
            count,
            start_time,
            end_time,
            status_code,
            status_detail,
            device,
            actor,
            action_id,
            action,
            disposition_id,
            disposition,
            user,
            auth_protocol_id,
            auth_protocol,
            logon_type_id,
            logon_type,
            is_remote,
            service,
            src_endpoint,
            dst_endpoint,
            connection_info,
            traffic,
            http_request,
            http_response,
            query,
            answers,
            process,
            file,
            observables,
            raw_data,
            unmapped
        );
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ocsf::WriteJson;

    #[test]
    fn header_literals_match_serde_for_every_id() {
        for &class in &Class::ALL {
            for activity_id in (0..=100).chain([255]) {
                for &severity in Severity::ALL {
                    for status in std::iter::once(None).chain(Status::ALL.iter().copied().map(Some))
                    {
                        let h = Header {
                            class,
                            activity_id,
                            severity,
                            status,
                        };
                        let mut ours = Vec::new();
                        h.write_json(&mut ours);
                        let theirs = serde_json::to_vec(&h).unwrap();
                        assert_eq!(
                            String::from_utf8(ours).unwrap(),
                            String::from_utf8(theirs).unwrap()
                        );
                    }
                }
            }
        }
    }
}
