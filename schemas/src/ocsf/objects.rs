//! OCSF objects, each with the attributes Vedette fills. Every attribute is optional
//! here; what a class requires is the job of the builders in the agent and of the tests
//! that run the external validator.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

macro_rules! ocsf_object {
    ($(#[$m:meta])* $name:ident { $( $(#[$fm:meta])* $field:ident : $ty:ty, )* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            $(
                $(#[$fm])*
                #[serde(default, skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
        }
    };
}

/// Free-form JSON (`unmapped`, `xattributes`).
pub type Json = Map<String, Value>;

ocsf_object! {
    /// `metadata`.
    Metadata {
        /// Schema version: always [`super::OCSF_VERSION`].
        version: String,
        /// The product that produced the event (Vedette).
        product: Product,
        /// Deterministic event id: a hash of the source's identity and the record's position.
        uid: String,
        /// The time as the source wrote it, verbatim.
        original_time: String,
        /// Where the record came from: a file path, `stdin`, or a listener.
        log_source: String,
        /// The program or app that logged the record (syslog TAG / APP-NAME).
        log_provider: String,
        /// The log's name or format, e.g. `syslog`, `auditd`, `nginx`.
        log_name: String,
        /// The format of the record as detected, e.g. `rfc3164`, `rfc5424`, `json`.
        log_format: String,
        /// Syslog severity as a name (`err`, `info` …).
        log_level: String,
        /// What the record said happened, as a stable name from the parser (e.g. `sshd.failed_password`).
        event_code: String,
        /// True when `raw_data` was cut at the configured cap.
        is_truncated: bool,
        /// The record's length in bytes before it was cut.
        untruncated_size: u64,
        /// The agent that read the record.
        reporter: Reporter,
        /// OCSF profiles the event uses (`host`, `linux/linux_users`).
        profiles: Vec<String>,
        /// The tenant the agent belongs to.
        tenant_uid: String,
        /// Position of the record in its source (line number or byte offset).
        sequence: i64,
    }
}

ocsf_object! {
    /// `metadata.product`.
    Product {
        /// Product name.
        name: String,
        /// Vendor name.
        vendor_name: String,
        /// Product version.
        version: String,
        /// Feature that produced the event (the parser).
        uid: String,
    }
}

ocsf_object! {
    /// `metadata.reporter`: the agent that read the record.
    Reporter {
        /// Agent host name.
        hostname: String,
        /// Agent IP.
        ip: String,
        /// Agent name.
        name: String,
        /// Agent id.
        uid: String,
    }
}

ocsf_object! {
    /// `device`: the host the event is about.
    Device {
        /// Host name.
        hostname: String,
        /// IP address (when the envelope host is an address).
        ip: String,
        /// Name.
        name: String,
        /// Device type id (0 Unknown, 1 Server, 9 Firewall …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: String,
        /// Domain.
        domain: String,
        /// MAC address.
        mac: String,
        /// Operating system.
        os: Os,
    }
}

ocsf_object! {
    /// `os`.
    Os {
        /// OS name.
        name: String,
        /// OS type id (200 Linux).
        type_id: u16,
        /// Caption of `type_id`.
        r#type: String,
        /// Version.
        version: String,
        /// Kernel release.
        kernel_release: String,
    }
}

ocsf_object! {
    /// `network_endpoint` (`src_endpoint`, `dst_endpoint`).
    Endpoint {
        /// IP address.
        ip: String,
        /// Port.
        port: u16,
        /// Host name.
        hostname: String,
        /// Name.
        name: String,
        /// Domain.
        domain: String,
        /// Interface name (`IN=`/`OUT=` of netfilter).
        interface_name: String,
        /// MAC address.
        mac: String,
        /// Service name.
        svc_name: String,
    }
}

ocsf_object! {
    /// `user`.
    User {
        /// User name.
        name: String,
        /// User id (numeric on Unix, as a string).
        uid: String,
        /// Type id (1 User, 2 Admin, 3 System …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: String,
        /// Domain.
        domain: String,
        /// Full name.
        full_name: String,
        /// Groups.
        groups: Vec<Group>,
    }
}

ocsf_object! {
    /// `group`.
    Group {
        /// Group name.
        name: String,
        /// Group id.
        uid: String,
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
        app_name: String,
    }
}

ocsf_object! {
    /// `process`.
    Process {
        /// Process id.
        pid: i64,
        /// A unique identifier of the process (set from the event uid when the record
        /// names the process but not its pid).
        uid: String,
        /// Process name.
        name: String,
        /// Full command line.
        cmd_line: String,
        /// The executable.
        file: File,
        /// The user the process runs as.
        user: User,
        /// The parent.
        parent_process: Box<Process>,
        /// Working directory.
        working_directory: String,
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
        uid: String,
        /// Terminal.
        terminal: String,
        /// Whether the session is remote.
        is_remote: bool,
    }
}

ocsf_object! {
    /// `file`.
    File {
        /// File name (last path component).
        name: String,
        /// Full path.
        path: String,
        /// Type id (1 Regular File, 2 Folder …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: String,
        /// Parent folder.
        parent_folder: String,
        /// File id (inode).
        uid: String,
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
        algorithm: String,
        /// The hash value.
        value: String,
    }
}

ocsf_object! {
    /// `service`.
    Service {
        /// Service name.
        name: String,
    }
}

ocsf_object! {
    /// `network_connection_info`.
    ConnectionInfo {
        /// IANA protocol number.
        protocol_num: i32,
        /// Protocol name, lower case.
        protocol_name: String,
        /// Direction id (0 Unknown, 1 Inbound, 2 Outbound, 3 Lateral, 4 Local).
        direction_id: u8,
        /// Caption of `direction_id`.
        direction: String,
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
        http_method: String,
        /// URL.
        url: Url,
        /// User agent.
        user_agent: String,
        /// Referrer.
        referrer: String,
        /// HTTP version, e.g. `HTTP/1.1`.
        version: String,
        /// Forwarded-for chain.
        x_forwarded_for: Vec<String>,
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
        url_string: String,
        /// Path.
        path: String,
        /// Query string without the `?`.
        query_string: String,
        /// Host name.
        hostname: String,
        /// Scheme.
        scheme: String,
        /// Port.
        port: u16,
    }
}

ocsf_object! {
    /// `dns_query`.
    DnsQuery {
        /// Queried name.
        hostname: String,
        /// Query type, e.g. `A`.
        r#type: String,
        /// Query class, e.g. `IN`.
        class: String,
    }
}

ocsf_object! {
    /// `dns_answer`.
    DnsAnswer {
        /// Answer data.
        rdata: String,
        /// Answer type.
        r#type: String,
    }
}

ocsf_object! {
    /// `observable`.
    Observable {
        /// The attribute path the value sits at, e.g. `src_endpoint.ip`.
        name: String,
        /// Type id (1 Hostname, 2 IP Address, 4 User Name, 8 Hash …).
        type_id: u8,
        /// Caption of `type_id`.
        r#type: String,
        /// The value.
        value: String,
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
    pub fn new(name: &str, kind: ObservableType, value: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            type_id: Some(kind.id()),
            r#type: Some(kind.caption().to_owned()),
            value: Some(value.to_owned()),
        }
    }
}

impl User {
    /// A user known by name.
    pub fn named(name: &str) -> Self {
        Self {
            name: Some(name.to_owned()),
            ..Self::default()
        }
    }
}

impl Endpoint {
    /// An endpoint known by IP address, with an optional port.
    pub fn ip(ip: &str, port: Option<u16>) -> Self {
        Self {
            ip: Some(ip.to_owned()),
            port,
            ..Self::default()
        }
    }
}

/// `unmapped`: what has no OCSF place. The envelope's and Vedette's own fields are typed;
/// parser-specific sections (`auditd`, `cef`, `netfilter` …) are free-form.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Unmapped {
    /// The syslog envelope's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syslog: Option<SyslogFields>,
    /// Vedette's notes on the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vedette: Option<VedetteNotes>,
    /// Parser-specific sections.
    #[serde(flatten)]
    pub other: Json,
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
        procid: String,
        /// MSGID.
        msgid: String,
        /// STRUCTURED-DATA: `{SD-ID: {PARAM-NAME: PARAM-VALUE}}`.
        structured_data: Json,
    }
}

ocsf_object! {
    /// `unmapped.vedette`.
    VedetteNotes {
        /// Why (part of) the record did not parse.
        parse_error: String,
        /// True when the syslog envelope breaks its RFC.
        invalid_envelope: bool,
    }
}
