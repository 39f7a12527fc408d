//! What makes two events "the same behaviour": per OCSF class, the fields an analyst would
//! group them by. Two events with equal fingerprints within a window are folded.

use vedette_schemas::ocsf::{Class, Event};

/// A field an event is grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// `activity_id`.
    Activity,
    /// `status_id`.
    Status,
    /// `device.hostname` (else `device.ip`).
    Device,
    /// `metadata.event_code`.
    EventCode,
    /// `user.name`.
    User,
    /// `actor.user.name`.
    ActorUser,
    /// `src_endpoint.ip`.
    SrcIp,
    /// `dst_endpoint.ip`.
    DstIp,
    /// `dst_endpoint.port`.
    DstPort,
    /// `connection_info.protocol_name`.
    Protocol,
    /// `action_id`.
    Action,
    /// `auth_protocol`.
    AuthProtocol,
    /// `process.cmd_line`.
    CmdLine,
    /// `http_request.http_method`.
    HttpMethod,
    /// `http_request.url.path`.
    UrlPath,
    /// `http_response.code`.
    HttpCode,
    /// `query.hostname`.
    Query,
    /// `message`.
    Message,
    /// `user.uid`.
    UserUid,
    /// `user.groups[].name`, joined.
    UserGroups,
    /// `actor.user.uid`.
    ActorUserUid,
    /// `process.user.name`.
    ProcessUser,
    /// `process.user.uid`.
    ProcessUserUid,
    /// `process.file.path`.
    Exe,
    /// `process.working_directory`.
    WorkingDir,
    /// `service.name`.
    Service,
    /// `http_request.url.query_string`.
    QueryString,
    /// `http_request.user_agent`.
    UserAgent,
    /// `metadata.log_source`.
    LogSource,
    /// `metadata.log_provider`.
    LogProvider,
    /// `unmapped.<name>`, the whole section.
    Unmapped(&'static str),
}

/// The paths the config may name, with their fields.
pub const FIELDS: &[(&str, Field)] = &[
    ("activity_id", Field::Activity),
    ("status_id", Field::Status),
    ("device.hostname", Field::Device),
    ("metadata.event_code", Field::EventCode),
    ("user.name", Field::User),
    ("actor.user.name", Field::ActorUser),
    ("src_endpoint.ip", Field::SrcIp),
    ("dst_endpoint.ip", Field::DstIp),
    ("dst_endpoint.port", Field::DstPort),
    ("connection_info.protocol_name", Field::Protocol),
    ("action_id", Field::Action),
    ("auth_protocol", Field::AuthProtocol),
    ("process.cmd_line", Field::CmdLine),
    ("http_request.http_method", Field::HttpMethod),
    ("http_request.url.path", Field::UrlPath),
    ("http_response.code", Field::HttpCode),
    ("query.hostname", Field::Query),
    ("message", Field::Message),
    ("user.uid", Field::UserUid),
    ("user.groups", Field::UserGroups),
    ("actor.user.uid", Field::ActorUserUid),
    ("process.user.name", Field::ProcessUser),
    ("process.user.uid", Field::ProcessUserUid),
    ("process.file.path", Field::Exe),
    ("process.working_directory", Field::WorkingDir),
    ("service.name", Field::Service),
    ("http_request.url.query_string", Field::QueryString),
    ("http_request.user_agent", Field::UserAgent),
    ("metadata.log_source", Field::LogSource),
    ("metadata.log_provider", Field::LogProvider),
    ("unmapped.account", Field::Unmapped("account")),
    ("unmapped.pam", Field::Unmapped("pam")),
    ("unmapped.sudo", Field::Unmapped("sudo")),
];

/// The field at `path`, if the fingerprint can use it.
pub fn field(path: &str) -> Option<Field> {
    FIELDS.iter().find(|(p, _)| *p == path).map(|(_, f)| *f)
}

/// The default fields of `class`. Every class also groups by activity, device and event
/// code; a class without specific fields groups by its message (the same line from the
/// same host and program).
///
/// Only events an analyst would count as one behaviour may fold: a repeat's own fields
/// are gone with it (the summary is its first repeat with a count), so every field that
/// tells one actor, target, command or outcome from another is in the key — the uids
/// auditd gives where there are no names, the executable and directory of a run, the
/// service and the PAM and sudo details of a failure (who tried, for which command), the
/// query and client of a request, the group or attribute of an account change.
pub fn default_fields(class: Class) -> &'static [Field] {
    use Field::*;
    match class {
        Class::Authentication => &[
            Activity,
            Device,
            EventCode,
            User,
            UserUid,
            SrcIp,
            Status,
            AuthProtocol,
            Service,
            ActorUser,
            Unmapped("pam"),
            Unmapped("sudo"),
        ],
        Class::NetworkActivity => &[
            Activity, Device, EventCode, SrcIp, DstIp, DstPort, Protocol, Action,
        ],
        Class::HttpActivity => &[
            Activity,
            Device,
            EventCode,
            LogSource,
            SrcIp,
            ActorUser,
            HttpMethod,
            UrlPath,
            QueryString,
            UserAgent,
            HttpCode,
        ],
        Class::DnsActivity => &[Activity, Device, EventCode, SrcIp, Query],
        Class::ProcessActivity => &[
            Activity,
            Device,
            EventCode,
            Status,
            ActorUser,
            ActorUserUid,
            User,
            ProcessUser,
            ProcessUserUid,
            Exe,
            CmdLine,
            WorkingDir,
        ],
        Class::AccountChange => &[
            Activity,
            Device,
            EventCode,
            User,
            UserUid,
            UserGroups,
            ActorUser,
            Status,
            Unmapped("account"),
        ],
        Class::FileActivity | Class::Base => &[Activity, Device, EventCode, LogProvider, Message],
    }
}

/// A field's value: text, or a number hashed as its bytes (no string made).
enum V<'a> {
    S(&'a str),
    N(i64),
    /// Text made for the key (a section held as a map, groups joined).
    Owned(String),
}

fn b(s: &Option<vedette_schemas::ocsf::Text>) -> Option<V<'_>> {
    s.as_deref().map(V::S)
}

fn value(ev: &Event, f: Field) -> Option<V<'_>> {
    let n = |v: Option<i64>| v.map(V::N);
    match f {
        Field::Activity => n(Some(i64::from(ev.header.activity_id))),
        Field::Status => n(ev.header.status.map(|s| i64::from(s.id()))),
        Field::Device => ev
            .device
            .as_ref()
            .and_then(|d| b(&d.hostname).or_else(|| b(&d.ip))),
        Field::EventCode => b(&ev.metadata.event_code),
        Field::User => ev.user.as_ref().and_then(|u| b(&u.name)),
        Field::ActorUser => ev
            .actor
            .as_ref()
            .and_then(|a| a.user.as_ref())
            .and_then(|u| b(&u.name)),
        Field::SrcIp => ev.src_endpoint.as_ref().and_then(|e| b(&e.ip)),
        Field::DstIp => ev.dst_endpoint.as_ref().and_then(|e| b(&e.ip)),
        Field::DstPort => n(ev.dst_endpoint.as_ref().and_then(|e| e.port).map(i64::from)),
        Field::Protocol => ev
            .connection_info
            .as_ref()
            .and_then(|c| b(&c.protocol_name)),
        Field::Action => n(ev.action_id.map(i64::from)),
        Field::AuthProtocol => b(&ev.auth_protocol),
        Field::CmdLine => ev.process.as_ref().and_then(|p| b(&p.cmd_line)),
        Field::HttpMethod => ev.http_request.as_ref().and_then(|r| b(&r.http_method)),
        Field::UrlPath => ev
            .http_request
            .as_ref()
            .and_then(|r| r.url.as_ref())
            .and_then(|u| b(&u.path)),
        Field::HttpCode => n(ev
            .http_response
            .as_ref()
            .and_then(|r| r.code)
            .map(i64::from)),
        Field::Query => ev.query.as_ref().and_then(|q| b(&q.hostname)),
        Field::Message => b(&ev.message),
        Field::UserUid => ev.user.as_ref().and_then(|u| b(&u.uid)),
        Field::UserGroups => ev.user.as_ref().and_then(|u| u.groups.as_ref()).map(|g| {
            let names: Vec<&str> = g.iter().filter_map(|g| g.name.as_deref()).collect();
            V::Owned(names.join("\n"))
        }),
        Field::ActorUserUid => ev
            .actor
            .as_ref()
            .and_then(|a| a.user.as_ref())
            .and_then(|u| b(&u.uid)),
        Field::ProcessUser => ev
            .process
            .as_ref()
            .and_then(|p| p.user.as_ref())
            .and_then(|u| b(&u.name)),
        Field::ProcessUserUid => ev
            .process
            .as_ref()
            .and_then(|p| p.user.as_ref())
            .and_then(|u| b(&u.uid)),
        Field::Exe => ev
            .process
            .as_ref()
            .and_then(|p| p.file.as_ref())
            .and_then(|f| b(&f.path)),
        Field::WorkingDir => ev.process.as_ref().and_then(|p| b(&p.working_directory)),
        Field::Service => ev.service.as_ref().and_then(|s| b(&s.name)),
        Field::QueryString => ev
            .http_request
            .as_ref()
            .and_then(|r| r.url.as_ref())
            .and_then(|u| b(&u.query_string)),
        Field::UserAgent => ev.http_request.as_ref().and_then(|r| b(&r.user_agent)),
        Field::LogSource => ev.metadata.log_source.as_deref().map(V::S),
        Field::LogProvider => b(&ev.metadata.log_provider),
        Field::Unmapped(name) => ev
            .unmapped
            .as_ref()
            .and_then(|u| u.section_text(name))
            .map(|t| match t {
                std::borrow::Cow::Borrowed(t) => V::S(t),
                std::borrow::Cow::Owned(t) => V::Owned(t),
            }),
    }
}

/// The fingerprint of `ev` over `fields` (its class always included): xxh3-128 of the
/// values, each tagged absent / text / number and texts length-prefixed, so ("ab", "c")
/// and ("a", "bc"), or a missing and an empty value, never collide by construction. The
/// bytes are gathered in `scratch` and hashed in one call.
pub fn fingerprint(ev: &Event, fields: &[Field], scratch: &mut Vec<u8>) -> u128 {
    scratch.clear();
    scratch.extend_from_slice(&ev.class().uid().to_le_bytes());
    for &f in fields {
        let mut text = |v: &str| {
            scratch.push(1);
            scratch.extend_from_slice(&(v.len() as u64).to_le_bytes());
            scratch.extend_from_slice(v.as_bytes());
        };
        match value(ev, f) {
            Some(V::S(v)) => text(v),
            Some(V::Owned(v)) => text(&v),
            Some(V::N(n)) => {
                scratch.push(2);
                scratch.extend_from_slice(&n.to_le_bytes());
            }
            None => scratch.push(0),
        }
    }
    xxhash_rust::xxh3::xxh3_128(scratch)
}
