//! OCSF objects, each with the attributes Vedette fills. Every attribute is optional
//! here; what a class requires is the job of the builders in the agent and of the tests
//! that run the external validator.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::section::JsonObject;

/// `,"name":` for a field (serde's name: `r#type` is `type`); the first member of an
/// object drops the comma.
macro_rules! json_key {
    (r#type) => {
        ",\"type\":"
    };
    ($f:ident) => {
        concat!(",\"", stringify!($f), "\":")
    };
}

macro_rules! ocsf_object {
    // An object whose value repeats from event to event (the product, the reporter): its
    // JSON is kept per thread with the value it renders, and copied while the value is the
    // same (a comparison of a few short strings instead of writing each member).
    (cached $(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty, )* }) => {
        ocsf_object!(@type $(#[$m])* $name { $( $(#[$fm])* $field : $ty, )* });

        impl super::json::WriteJson for $name {
            fn write_json(&self, out: &mut Vec<u8>) {
                thread_local! {
                    static LAST: std::cell::RefCell<Option<($name, Vec<u8>)>> =
                        const { std::cell::RefCell::new(None) };
                }
                LAST.with_borrow_mut(|last| {
                    if let Some((v, json)) = last
                        && v == self
                    {
                        out.extend_from_slice(json);
                        return;
                    }
                    let mut json = Vec::with_capacity(64);
                    self.write_members(&mut json);
                    super::json::close_object(0, &mut json);
                    out.extend_from_slice(&json);
                    *last = Some((self.clone(), json));
                });
            }
        }
    };
    ($(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty, )* }) => {
        ocsf_object!(@type $(#[$m])* $name { $( $(#[$fm])* $field : $ty, )* });

        impl super::json::WriteJson for $name {
            fn write_json(&self, out: &mut Vec<u8>) {
                let open = out.len();
                self.write_members(out);
                super::json::close_object(open, out);
            }
        }
    };
    (@type $(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }

        impl $name {
            /// Appends the members, each after a comma (see [`super::json::close_object`]).
            pub(crate) fn write_members(&self, out: &mut Vec<u8>) {
                $(
                    if let Some(v) = &self.$field {
                        out.extend_from_slice(json_key!($field).as_bytes());
                        super::json::WriteJson::write_json(v, out);
                    }
                )*
            }
        }
    };
}

/// Text in an event: constants (captions, schema names) are borrowed (`Text::const_new`),
/// values read from a record up to 24 bytes (names, addresses, ports, pids) are held inline,
/// so building an event allocates only for the long strings a record said (the message, the
/// raw line).
pub type Text = compact_str::CompactString;

/// Text shared by many events (the source's name, the agent's host name): cloning it bumps
/// a reference count instead of copying the string. Reads, compares and serializes as a
/// string, exactly like [`Text`].
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Shared(Arc<str>);

impl Shared {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Shared {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Shared {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::borrow::Borrow<str> for Shared {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&*self.0, f)
    }
}

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Shared {
    fn from(s: &str) -> Self {
        Self(Arc::from(s))
    }
}

impl From<String> for Shared {
    fn from(s: String) -> Self {
        Self(Arc::from(s))
    }
}

impl From<Cow<'_, str>> for Shared {
    fn from(s: Cow<'_, str>) -> Self {
        Self(Arc::from(&*s))
    }
}

impl PartialEq<str> for Shared {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for Shared {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl Serialize for Shared {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Shared {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

impl super::json::WriteJson for Shared {
    fn write_json(&self, out: &mut Vec<u8>) {
        super::json::write_str(&self.0, out);
    }
}

/// Free-form JSON (`unmapped`, `xattributes`).
pub type Json = Map<String, Value>;

ocsf_object! {
    /// `metadata`.
    Metadata {
        /// Schema version: always [`super::OCSF_VERSION`].
        version: Text,
        /// The product that produced the event (Vedette).
        product: Product,
        /// Deterministic event id: a hash of the source's identity and the record's position.
        uid: Text,
        /// The time as the source wrote it, verbatim.
        original_time: Text,
        /// Where the record came from: a file path, `stdin`, or a listener (shared by the
        /// source's events).
        log_source: Shared,
        /// The program or app that logged the record (syslog TAG / APP-NAME).
        log_provider: Text,
        /// The log's name or format, e.g. `syslog`, `auditd`, `nginx`.
        log_name: Text,
        /// The format of the record as detected, e.g. `rfc3164`, `rfc5424`, `json`.
        log_format: Text,
        /// Syslog severity as a name (`err`, `info` …).
        log_level: Text,
        /// What the record said happened, as a stable name from the parser (e.g. `sshd.failed_password`).
        event_code: Text,
        /// True when `raw_data` was cut at the configured cap.
        is_truncated: bool,
        /// The record's length in bytes before it was cut.
        untruncated_size: u64,
        /// The agent that read the record.
        reporter: Reporter,
        /// Hosts the record passed through before the agent: for syslog off the network,
        /// the peer that sent it.
        loggers: Vec<Logger>,
        /// OCSF profiles the event uses (`host`, `linux/linux_users`).
        profiles: Vec<Text>,
        /// The tenant the agent belongs to.
        tenant_uid: Text,
        /// Position of the record in its source (line number or byte offset).
        sequence: i64,
    }
}

ocsf_object! {
    cached
    /// `metadata.product`.
    Product {
        /// Product name.
        name: Text,
        /// Vendor name.
        vendor_name: Text,
        /// Product version.
        version: Text,
        /// Feature that produced the event (the parser).
        uid: Text,
    }
}

ocsf_object! {
    cached
    /// `metadata.reporter`: the agent that read the record.
    Reporter {
        /// Agent host name (shared by the agent's events).
        hostname: Shared,
        /// Agent IP.
        ip: Text,
        /// Agent name.
        name: Text,
        /// Agent id.
        uid: Text,
    }
}

ocsf_object! {
    /// One entry of `metadata.loggers`: a host that relayed the record to the agent.
    Logger {
        /// How the record arrived, e.g. `syslog/udp`.
        name: Text,
        /// The sending host (its address as seen by the agent).
        device: Device,
        /// When the agent received the record, ms since the epoch.
        logged_time: i64,
    }
}

ocsf_object! {
    /// `device`: the host the event is about.
    Device {
        /// Host name.
        hostname: Text,
        /// IP address (when the envelope host is an address).
        ip: Text,
        /// Name.
        name: Text,
        /// Device type id (0 Unknown, 1 Server, 9 Firewall …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: Text,
        /// Domain.
        domain: Text,
        /// MAC address.
        mac: Text,
        /// Operating system.
        os: Os,
        /// Network interfaces (this agent's host).
        network_interfaces: Vec<NetworkInterface>,
        /// Who owns the host (asset tags).
        owner: User,
        /// The organization (business unit) the host belongs to (asset tags).
        org: Organization,
    }
}

ocsf_object! {
    /// `device.network_interfaces[]`.
    NetworkInterface {
        /// Interface name.
        name: Text,
        /// IP address.
        ip: Text,
        /// MAC address.
        mac: Text,
        /// Type id (0 Unknown, 1 Wired …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: Text,
    }
}

ocsf_object! {
    /// `device.org`.
    Organization {
        /// Organization name.
        name: Text,
        /// Organizational unit (business unit).
        ou_name: Text,
    }
}

ocsf_object! {
    /// `os`.
    Os {
        /// OS name.
        name: Text,
        /// OS type id (200 Linux).
        type_id: u16,
        /// Caption of `type_id`.
        r#type: Text,
        /// Version.
        version: Text,
        /// Kernel release.
        kernel_release: Text,
    }
}

ocsf_object! {
    /// `network_endpoint` (`src_endpoint`, `dst_endpoint`).
    Endpoint {
        /// IP address.
        ip: Text,
        /// Port.
        port: u16,
        /// Host name.
        hostname: Text,
        /// Name.
        name: Text,
        /// Domain.
        domain: Text,
        /// Interface name (`IN=`/`OUT=` of netfilter).
        interface_name: Text,
        /// MAC address.
        mac: Text,
        /// Service name.
        svc_name: Text,
    }
}

ocsf_object! {
    /// `user`.
    User {
        /// User name.
        name: Text,
        /// User id (numeric on Unix, as a string).
        uid: Text,
        /// Type id (1 User, 2 Admin, 3 System …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: Text,
        /// Domain.
        domain: Text,
        /// Full name.
        full_name: Text,
        /// Groups.
        groups: Vec<Group>,
        /// The account on the host the event is about.
        account: Account,
    }
}

ocsf_object! {
    /// `user.account`.
    Account {
        /// Account name.
        name: Text,
        /// Account id.
        uid: Text,
        /// Type id (9 Linux Account …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: Text,
        /// Whether the account is locked (its password is disabled).
        is_locked: bool,
    }
}

ocsf_object! {
    /// `group`.
    Group {
        /// Group name.
        name: Text,
        /// Group id.
        uid: Text,
    }
}

ocsf_object! {
    /// `actor`.
    Actor {
        /// The user who acted.
        user: User,
        /// The process that acted.
        process: Box<Process>,
        /// The application that acted.
        app_name: Text,
    }
}

ocsf_object! {
    /// `process`.
    Process {
        /// Process id.
        pid: i64,
        /// A unique identifier of the process (set from the event uid when the record
        /// names the process but not its pid).
        uid: Text,
        /// Process name.
        name: Text,
        /// Full command line.
        cmd_line: Text,
        /// The executable.
        file: File,
        /// The user the process runs as.
        user: User,
        /// The parent.
        parent_process: Box<Process>,
        /// Working directory.
        working_directory: Text,
        /// Audit user id (linux/linux_users profile).
        auid: i64,
        /// Effective user id (linux/linux_users profile).
        euid: i64,
        /// Effective group id (linux/linux_users profile).
        egid: i64,
        /// Session.
        session: Session,
        /// Thread id.
        tid: i64,
    }
}

ocsf_object! {
    /// `session`.
    Session {
        /// Session id.
        uid: Text,
        /// Terminal.
        terminal: Text,
        /// Whether the session is remote.
        is_remote: bool,
    }
}

ocsf_object! {
    /// `file`.
    File {
        /// File name (last path component).
        name: Text,
        /// Full path.
        path: Text,
        /// Type id (1 Regular File, 2 Folder …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: Text,
        /// Parent folder.
        parent_folder: Text,
        /// File id (inode).
        uid: Text,
        /// Hashes.
        hashes: Vec<Fingerprint>,
    }
}

ocsf_object! {
    /// `fingerprint`.
    Fingerprint {
        /// Algorithm id (1 MD5, 2 SHA-1, 3 SHA-256 …).
        algorithm_id: u8,
        /// Caption of `algorithm_id`.
        algorithm: Text,
        /// The hash value.
        value: Text,
    }
}

ocsf_object! {
    /// `service`.
    Service {
        /// Service name.
        name: Text,
    }
}

ocsf_object! {
    /// `network_connection_info`.
    ConnectionInfo {
        /// IANA protocol number.
        protocol_num: i32,
        /// Protocol name, lower case.
        protocol_name: Text,
        /// Direction id (0 Unknown, 1 Inbound, 2 Outbound, 3 Lateral, 4 Local).
        direction_id: u8,
        /// Caption of `direction_id`.
        direction: Text,
        /// TCP flags as a bit mask.
        tcp_flags: i32,
    }
}

ocsf_object! {
    /// `network_traffic`.
    Traffic {
        /// Bytes.
        bytes: i64,
        /// Bytes out.
        bytes_out: i64,
        /// Packets.
        packets: i64,
    }
}

ocsf_object! {
    /// `http_request`.
    HttpRequest {
        /// Method.
        http_method: Text,
        /// URL.
        url: Url,
        /// User agent.
        user_agent: Text,
        /// Referrer.
        referrer: Text,
        /// HTTP version, e.g. `HTTP/1.1`.
        version: Text,
        /// Forwarded-for chain.
        x_forwarded_for: Vec<Text>,
    }
}

ocsf_object! {
    /// `http_response`.
    HttpResponse {
        /// Status code.
        code: i32,
        /// Body length in bytes.
        length: i64,
        /// Latency in ms.
        latency: i64,
    }
}

ocsf_object! {
    /// `url`.
    Url {
        /// The whole URL as logged.
        url_string: Text,
        /// Path.
        path: Text,
        /// Query string without the `?`.
        query_string: Text,
        /// Host name.
        hostname: Text,
        /// Scheme.
        scheme: Text,
        /// Port.
        port: u16,
    }
}

ocsf_object! {
    /// `dns_query`.
    DnsQuery {
        /// Queried name.
        hostname: Text,
        /// Query type, e.g. `A`.
        r#type: Text,
        /// Query class, e.g. `IN`.
        class: Text,
    }
}

ocsf_object! {
    /// `dns_answer`.
    DnsAnswer {
        /// Answer data.
        rdata: Text,
        /// Answer type.
        r#type: Text,
    }
}

/// `observable`. (Written by hand rather than by `ocsf_object!`: its `type_id`/`type` pair
/// goes out as one literal when it is one of [`ObservableType`]'s.)
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Observable {
    /// The attribute path the value sits at, e.g. `src_endpoint.ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<Text>,
    /// Type id (1 Hostname, 2 IP Address, 4 User Name, 8 Hash …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub type_id: Option<u8>,
    /// Caption of `type_id`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#type: Option<Text>,
    /// The value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Text>,
}

impl super::json::WriteJson for Observable {
    fn write_json(&self, out: &mut Vec<u8>) {
        let open = out.len();
        if let Some(v) = &self.name {
            out.extend_from_slice(b",\"name\":");
            v.write_json(out);
        }
        let known = match (self.type_id, &self.r#type) {
            (Some(id), Some(t)) => ObservableType::from_id(id).filter(|k| {
                let c = k.caption();
                std::ptr::eq(t.as_ptr(), c.as_ptr()) && t.len() == c.len() || **t == *c
            }),
            _ => None,
        };
        if let Some(k) = known {
            out.extend_from_slice(k.members().as_bytes());
        } else {
            if let Some(v) = &self.type_id {
                out.extend_from_slice(b",\"type_id\":");
                v.write_json(out);
            }
            if let Some(v) = &self.r#type {
                out.extend_from_slice(b",\"type\":");
                v.write_json(out);
            }
        }
        if let Some(v) = &self.value {
            out.extend_from_slice(b",\"value\":");
            v.write_json(out);
        }
        super::json::close_object(open, out);
    }
}

/// The observable types we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ObservableType {
    /// 1
    Hostname,
    /// 2
    IpAddress,
    /// 3
    MacAddress,
    /// 4
    UserName,
    /// 6
    UrlString,
    /// 7
    FileName,
    /// 8
    Hash,
    /// 9
    ProcessName,
    /// 13
    CommandLine,
    /// 16
    UserAgent,
    /// 45
    FilePath,
}

impl ObservableType {
    /// OCSF id.
    pub fn id(self) -> u8 {
        match self {
            Self::Hostname => 1,
            Self::IpAddress => 2,
            Self::MacAddress => 3,
            Self::UserName => 4,
            Self::UrlString => 6,
            Self::FileName => 7,
            Self::Hash => 8,
            Self::ProcessName => 9,
            Self::CommandLine => 13,
            Self::UserAgent => 16,
            Self::FilePath => 45,
        }
    }

    /// The type of OCSF id `id`, when it is one we emit.
    pub fn from_id(id: u8) -> Option<Self> {
        Some(match id {
            1 => Self::Hostname,
            2 => Self::IpAddress,
            3 => Self::MacAddress,
            4 => Self::UserName,
            6 => Self::UrlString,
            7 => Self::FileName,
            8 => Self::Hash,
            9 => Self::ProcessName,
            13 => Self::CommandLine,
            16 => Self::UserAgent,
            45 => Self::FilePath,
            _ => return None,
        })
    }

    /// `,"type_id":N,"type":"Caption"` as one literal.
    fn members(self) -> &'static str {
        macro_rules! m {
            ($id:literal, $cap:literal) => {
                concat!(",\"type_id\":", $id, ",\"type\":\"", $cap, "\"")
            };
        }
        match self {
            Self::Hostname => m!(1, "Hostname"),
            Self::IpAddress => m!(2, "IP Address"),
            Self::MacAddress => m!(3, "MAC Address"),
            Self::UserName => m!(4, "User Name"),
            Self::UrlString => m!(6, "URL String"),
            Self::FileName => m!(7, "File Name"),
            Self::Hash => m!(8, "Hash"),
            Self::ProcessName => m!(9, "Process Name"),
            Self::CommandLine => m!(13, "Command Line"),
            Self::UserAgent => m!(16, "HTTP User-Agent"),
            Self::FilePath => m!(45, "File Path"),
        }
    }

    /// OCSF caption.
    pub fn caption(self) -> &'static str {
        match self {
            Self::Hostname => "Hostname",
            Self::IpAddress => "IP Address",
            Self::MacAddress => "MAC Address",
            Self::UserName => "User Name",
            Self::UrlString => "URL String",
            Self::FileName => "File Name",
            Self::Hash => "Hash",
            Self::ProcessName => "Process Name",
            Self::CommandLine => "Command Line",
            Self::UserAgent => "HTTP User-Agent",
            Self::FilePath => "File Path",
        }
    }
}

impl Observable {
    /// An observable of `kind` at attribute path `name`.
    pub fn new(name: &'static str, kind: ObservableType, value: Text) -> Self {
        Self {
            name: Some(Text::const_new(name)),
            type_id: Some(kind.id()),
            r#type: Some(Text::const_new(kind.caption())),
            value: Some(value),
        }
    }
}

impl User {
    /// A user known by name.
    pub fn named(name: &str) -> Self {
        Self {
            name: Some(Text::from(name)),
            ..Self::default()
        }
    }
}

impl Endpoint {
    /// An endpoint known by IP address, with an optional port.
    pub fn ip(ip: &str, port: Option<u16>) -> Self {
        Self {
            ip: Some(Text::from(ip)),
            port,
            ..Self::default()
        }
    }
}

/// `unmapped`: what has no OCSF place. The envelope's and Vedette's own fields are typed;
/// parser-specific sections (`auditd`, `cef`, `netfilter` …) are free-form: a map in
/// `other`, or JSON the parser rendered itself in `sections` (never both for one name).
/// Either way they are written in name order; read back, every section is in `other`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Unmapped {
    /// The syslog envelope's fields.
    #[serde(default)]
    pub syslog: Option<SyslogFields>,
    /// Vedette's notes on the record.
    #[serde(default)]
    pub vedette: Option<VedetteNotes>,
    /// Parser-specific sections.
    #[serde(flatten)]
    pub other: Json,
    /// Parser-specific sections rendered by the parser, by name (sorted).
    #[serde(skip)]
    sections: Vec<(&'static str, JsonObject)>,
}

/// One parser-specific section of [`Unmapped`], however it is held.
#[derive(Debug, Clone, Copy)]
pub enum Section<'a> {
    /// A map.
    Value(&'a Value),
    /// JSON rendered by the parser.
    Rendered(&'a JsonObject),
}

impl Unmapped {
    /// Sets section `name` to JSON the parser rendered (replacing a map of that name).
    pub fn set_section(&mut self, name: &'static str, obj: JsonObject) {
        self.other.remove(name);
        match self.sections.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => self.sections[i].1 = obj,
            Err(i) => self.sections.insert(i, (name, obj)),
        }
    }

    /// Turns rendered section `name` into a map in `other`, to be edited there.
    pub fn materialize(&mut self, name: &str) {
        if let Ok(i) = self.sections.binary_search_by(|(n, _)| (*n).cmp(name)) {
            let (n, obj) = self.sections.remove(i);
            self.other.insert(n.to_owned(), obj.to_value());
        }
    }

    /// The rendered sections, by name.
    pub fn rendered(&self) -> &[(&'static str, JsonObject)] {
        &self.sections
    }

    /// Section `name` as JSON text, however it is held (borrowed when rendered).
    pub fn section_text(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        match self.sections.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => Some(std::borrow::Cow::Borrowed(self.sections[i].1.as_str())),
            Err(_) => self
                .other
                .get(name)
                .map(|v| std::borrow::Cow::Owned(v.to_string())),
        }
    }

    /// Section `name` as a value, however it is held.
    pub fn section(&self, name: &str) -> Option<Value> {
        match self.sections.binary_search_by(|(n, _)| (*n).cmp(name)) {
            Ok(i) => Some(self.sections[i].1.to_value()),
            Err(_) => self.other.get(name).cloned(),
        }
    }

    /// Every parser-specific section in name order.
    pub fn sections(&self) -> impl Iterator<Item = (&str, Section<'_>)> {
        let mut maps = self.other.iter().peekable();
        let mut rendered = self.sections.iter().peekable();
        std::iter::from_fn(move || {
            let take_map = match (maps.peek(), rendered.peek()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some((a, _)), Some((b, _))) => a.as_str() < *b,
            };
            if take_map {
                maps.next().map(|(k, v)| (k.as_str(), Section::Value(v)))
            } else {
                rendered.next().map(|(k, o)| (*k, Section::Rendered(o)))
            }
        })
    }
}

impl PartialEq for Unmapped {
    /// Equal when they would read back equal: a rendered section equals the same map.
    fn eq(&self, other: &Self) -> bool {
        if self.syslog != other.syslog || self.vedette != other.vedette {
            return false;
        }
        if self.sections.is_empty() && other.sections.is_empty() {
            return self.other == other.other;
        }
        let all = |u: &Self| -> Json {
            u.sections()
                .map(|(k, s)| {
                    let v = match s {
                        Section::Value(v) => v.clone(),
                        Section::Rendered(o) => o.to_value(),
                    };
                    (k.to_owned(), v)
                })
                .collect()
        };
        all(self) == all(other)
    }
}

impl Serialize for Unmapped {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{Error, SerializeMap};
        let mut m = s.serialize_map(None)?;
        if let Some(v) = &self.syslog {
            m.serialize_entry("syslog", v)?;
        }
        if let Some(v) = &self.vedette {
            m.serialize_entry("vedette", v)?;
        }
        for (k, sec) in self.sections() {
            match sec {
                Section::Value(v) => m.serialize_entry(k, v)?,
                Section::Rendered(o) => {
                    let raw = serde_json::value::RawValue::from_string(o.as_str().to_owned())
                        .map_err(S::Error::custom)?;
                    m.serialize_entry(k, &raw)?;
                }
            }
        }
        m.end()
    }
}

ocsf_object! {
    /// `unmapped.syslog`.
    SyslogFields {
        /// PRI.
        priority: u8,
        /// Facility (PRI / 8).
        facility: u8,
        /// Severity (PRI % 8).
        severity: u8,
        /// RFC 5424 VERSION.
        version: u16,
        /// PROCID / PID as written.
        procid: Text,
        /// MSGID.
        msgid: Text,
        /// STRUCTURED-DATA: `{SD-ID: {PARAM-NAME: PARAM-VALUE}}`.
        structured_data: Json,
    }
}

ocsf_object! {
    /// `unmapped.vedette`.
    VedetteNotes {
        /// Why (part of) the record did not parse.
        parse_error: Text,
        /// True when the syslog envelope breaks its RFC.
        invalid_envelope: bool,
        /// The maintenance window (from the agent config) the event's time falls in.
        maintenance_window: Text,
        /// The process the event names had exited (or its pid was reused) when the agent
        /// looked: its details are not guessed.
        process_gone: bool,
        /// Authentication: whether this (host, user, source address) was not seen in the
        /// agent's baseline window (30 days by default).
        first_seen: bool,
        /// When the password of `user` last changed (ms since the epoch; from shadow).
        password_changed_time: i64,
        /// The asset tags of the agent's host that OCSF has no place for.
        asset: AssetNotes,
    }
}

ocsf_object! {
    /// `unmapped.vedette.asset`.
    AssetNotes {
        /// Criticality tier.
        criticality: Text,
        /// Environment.
        environment: Text,
        /// Free labels.
        labels: Vec<Text>,
    }
}

impl super::json::WriteJson for Unmapped {
    fn write_json(&self, out: &mut Vec<u8>) {
        let open = out.len();
        if let Some(v) = &self.syslog {
            out.extend_from_slice(b",\"syslog\":");
            super::json::WriteJson::write_json(v, out);
        }
        if let Some(v) = &self.vedette {
            out.extend_from_slice(b",\"vedette\":");
            super::json::WriteJson::write_json(v, out);
        }
        if self.sections.is_empty() {
            super::json::write_members(&self.other, out);
        } else {
            for (k, sec) in self.sections() {
                super::json::key_escaped(k, out);
                match sec {
                    Section::Value(v) => super::json::WriteJson::write_json(v, out),
                    Section::Rendered(o) => out.extend_from_slice(o.as_bytes()),
                }
            }
        }
        super::json::close_object(open, out);
    }
}

#[cfg(test)]
mod tests {
    use super::ObservableType as O;
    use super::*;

    #[test]
    fn observable_type_literals_match_ids_and_captions() {
        for k in [
            O::Hostname,
            O::IpAddress,
            O::MacAddress,
            O::UserName,
            O::UrlString,
            O::FileName,
            O::Hash,
            O::ProcessName,
            O::CommandLine,
            O::UserAgent,
            O::FilePath,
        ] {
            assert_eq!(O::from_id(k.id()), Some(k));
            let want = format!(",\"type_id\":{},\"type\":\"{}\"", k.id(), k.caption());
            assert_eq!(k.members(), want);
        }
    }

    #[test]
    fn cached_objects_follow_their_value() {
        use super::super::json::WriteJson;
        let a = Product {
            name: Some("A".into()),
            version: Some("1".into()),
            ..Product::default()
        };
        let b = Product {
            name: Some("A".into()),
            version: Some("2".into()),
            ..Product::default()
        };
        for p in [&a, &a, &b, &b, &a, &Product::default()] {
            let mut out = b"x".to_vec();
            p.write_json(&mut out);
            assert_eq!(
                out,
                [b"x".to_vec(), serde_json::to_vec(p).unwrap()].concat()
            );
        }
    }

    #[test]
    fn observables_write_as_serde_does() {
        use super::super::json::WriteJson;
        let cases = [
            Observable::new("device.ip", O::IpAddress, "10.0.0.1".into()),
            Observable {
                r#type: Some("Not the caption".into()),
                ..Observable::new("user.name", O::UserName, "bob".into())
            },
            Observable {
                type_id: Some(77),
                ..Observable::default()
            },
            Observable::default(),
        ];
        for o in cases {
            let mut out = Vec::new();
            o.write_json(&mut out);
            assert_eq!(
                String::from_utf8(out).unwrap(),
                serde_json::to_string(&o).unwrap()
            );
        }
    }
}
