//! The one table of OCSF identifiers and captions for the classes we emit.
//!
//! Checked against the official compiled schema in `../shared/ocsf/schema` by this
//! module's tests, so a typo here fails CI rather than the validator in production.

use serde::{Deserialize, Serialize};

/// One OCSF event class we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(into = "u32", try_from = "u32")]
pub enum Class {
    /// Base Event (0): the fallback; nothing is dropped.
    Base,
    /// File System Activity (1001).
    FileActivity,
    /// Process Activity (1007).
    ProcessActivity,
    /// Account Change (3001).
    AccountChange,
    /// Authentication (3002).
    Authentication,
    /// Network Activity (4001).
    NetworkActivity,
    /// HTTP Activity (4002).
    HttpActivity,
    /// DNS Activity (4003).
    DnsActivity,
}

/// What the table knows of one class.
#[derive(Debug)]
pub struct ClassInfo {
    /// `class_uid`.
    pub uid: u32,
    /// `class_name`.
    pub name: &'static str,
    /// `category_uid`.
    pub category_uid: u32,
    /// `category_name`.
    pub category_name: &'static str,
    /// `(activity_id, activity_name)` pairs, 0 and 99 included.
    pub activities: &'static [(u8, &'static str)],
}

const fn info(
    uid: u32,
    name: &'static str,
    category_uid: u32,
    category_name: &'static str,
    activities: &'static [(u8, &'static str)],
) -> ClassInfo {
    ClassInfo {
        uid,
        name,
        category_uid,
        category_name,
        activities,
    }
}

const SYSTEM: &str = "System Activity";
const IAM: &str = "Identity & Access Management";
const NETWORK: &str = "Network Activity";

static BASE: ClassInfo = info(
    0,
    "Base Event",
    0,
    "Uncategorized",
    &[(0, "Unknown"), (99, "Other")],
);
static FILE: ClassInfo = info(
    1001,
    "File System Activity",
    1,
    SYSTEM,
    &[
        (0, "Unknown"),
        (1, "Create"),
        (2, "Read"),
        (3, "Update"),
        (4, "Delete"),
        (5, "Rename"),
        (6, "Set Attributes"),
        (7, "Set Security"),
        (8, "Get Attributes"),
        (9, "Get Security"),
        (10, "Encrypt"),
        (11, "Decrypt"),
        (12, "Mount"),
        (13, "Unmount"),
        (14, "Open"),
        (99, "Other"),
    ],
);
static PROCESS: ClassInfo = info(
    1007,
    "Process Activity",
    1,
    SYSTEM,
    &[
        (0, "Unknown"),
        (1, "Launch"),
        (2, "Terminate"),
        (3, "Open"),
        (4, "Inject"),
        (5, "Set User ID"),
        (99, "Other"),
    ],
);
static ACCOUNT: ClassInfo = info(
    3001,
    "Account Change",
    3,
    IAM,
    &[
        (0, "Unknown"),
        (1, "Create"),
        (2, "Enable"),
        (3, "Password Change"),
        (4, "Password Reset"),
        (5, "Disable"),
        (6, "Delete"),
        (7, "Attach Policy"),
        (8, "Detach Policy"),
        (9, "Lock"),
        (10, "MFA Factor Enable"),
        (11, "MFA Factor Disable"),
        (12, "Unlock"),
        (99, "Other"),
    ],
);
static AUTH: ClassInfo = info(
    3002,
    "Authentication",
    3,
    IAM,
    &[
        (0, "Unknown"),
        (1, "Logon"),
        (2, "Logoff"),
        (3, "Authentication Ticket"),
        (4, "Service Ticket Request"),
        (5, "Service Ticket Renew"),
        (6, "Preauth"),
        (7, "Account Switch"),
        (99, "Other"),
    ],
);
static NET: ClassInfo = info(
    4001,
    "Network Activity",
    4,
    NETWORK,
    &[
        (0, "Unknown"),
        (1, "Open"),
        (2, "Close"),
        (3, "Reset"),
        (4, "Fail"),
        (5, "Refuse"),
        (6, "Traffic"),
        (7, "Listen"),
        (99, "Other"),
    ],
);
static HTTP: ClassInfo = info(
    4002,
    "HTTP Activity",
    4,
    NETWORK,
    &[
        (0, "Unknown"),
        (1, "Connect"),
        (2, "Delete"),
        (3, "Get"),
        (4, "Head"),
        (5, "Options"),
        (6, "Post"),
        (7, "Put"),
        (8, "Trace"),
        (9, "Patch"),
        (99, "Other"),
    ],
);
static DNS: ClassInfo = info(
    4003,
    "DNS Activity",
    4,
    NETWORK,
    &[
        (0, "Unknown"),
        (1, "Query"),
        (2, "Response"),
        (6, "Traffic"),
        (99, "Other"),
    ],
);

impl Class {
    /// Every class we emit.
    pub const ALL: [Self; 8] = [
        Self::Base,
        Self::FileActivity,
        Self::ProcessActivity,
        Self::AccountChange,
        Self::Authentication,
        Self::NetworkActivity,
        Self::HttpActivity,
        Self::DnsActivity,
    ];

    /// The table row of this class.
    pub fn info(self) -> &'static ClassInfo {
        match self {
            Self::Base => &BASE,
            Self::FileActivity => &FILE,
            Self::ProcessActivity => &PROCESS,
            Self::AccountChange => &ACCOUNT,
            Self::Authentication => &AUTH,
            Self::NetworkActivity => &NET,
            Self::HttpActivity => &HTTP,
            Self::DnsActivity => &DNS,
        }
    }

    /// `class_uid`.
    pub fn uid(self) -> u32 {
        self.info().uid
    }

    /// `class_name`.
    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// The caption of `activity_id` in this class; `None` for an id the class lacks.
    pub fn activity_name(self, activity_id: u8) -> Option<&'static str> {
        self.info()
            .activities
            .iter()
            .find(|(id, _)| *id == activity_id)
            .map(|(_, n)| *n)
    }

    /// `type_uid = class_uid * 100 + activity_id`.
    pub fn type_uid(self, activity_id: u8) -> u64 {
        u64::from(self.uid()) * 100 + u64::from(activity_id)
    }

    /// The class with this `class_uid`, if we emit it.
    pub fn from_uid(uid: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.uid() == uid)
    }
}

impl From<Class> for u32 {
    fn from(c: Class) -> Self {
        c.uid()
    }
}

impl TryFrom<u32> for Class {
    type Error = String;
    fn try_from(uid: u32) -> Result<Self, String> {
        Self::from_uid(uid).ok_or_else(|| format!("class_uid {uid} is not a class Vedette emits"))
    }
}

macro_rules! id_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $id:literal => $caption:literal,)* }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
        }
        impl $name {
            /// Every value, in id order.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];
            /// The numeric OCSF id.
            pub fn id(self) -> u8 {
                match self { $(Self::$variant => $id,)* }
            }
            /// The OCSF caption of the id.
            pub fn caption(self) -> &'static str {
                match self { $(Self::$variant => $caption,)* }
            }
            /// The value with this id.
            pub fn from_id(id: u8) -> Option<Self> {
                match id { $($id => Some(Self::$variant),)* _ => None }
            }
        }
    };
}

id_enum! {
    /// `severity_id` / `severity`.
    Severity {
        /// 0
        Unknown = 0 => "Unknown",
        /// 1
        Informational = 1 => "Informational",
        /// 2
        Low = 2 => "Low",
        /// 3
        Medium = 3 => "Medium",
        /// 4
        High = 4 => "High",
        /// 5
        Critical = 5 => "Critical",
        /// 6
        Fatal = 6 => "Fatal",
        /// 99
        Other = 99 => "Other",
    }
}

id_enum! {
    /// `status_id` / `status`.
    Status {
        /// 0
        Unknown = 0 => "Unknown",
        /// 1
        Success = 1 => "Success",
        /// 2
        Failure = 2 => "Failure",
        /// 99
        Other = 99 => "Other",
    }
}

impl Severity {
    /// The OCSF severity for a syslog severity (RFC 5424 §6.2.1, 0 = emergency).
    pub fn from_syslog(sev: u8) -> Self {
        match sev {
            0 => Self::Fatal,
            1 => Self::Critical,
            2 => Self::High,
            3 => Self::Medium,
            4 => Self::Low,
            _ => Self::Informational,
        }
    }
}

#[cfg(test)]
mod tests;
