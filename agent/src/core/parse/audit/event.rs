//! One joined audit event → the OCSF class its records call for: Process Activity (an
//! exec), File System Activity (a syscall on a path, or an AppArmor or SELinux decision on
//! a file), Authentication (user-space logins),
//! Account Change (user-space account management), else Base Event; every raw field stays
//! under `unmapped.auditd.<TYPE>`.

use serde_json::Value;
use vedette_schemas::ocsf::{
    Actor, Class, Endpoint, Event, File, ObjectBuilder, Process, Service, Session, Status, User,
    repeated,
};

use super::record::AuditRecord;
use crate::core::parse::{UNKNOWN_USER, auth, code, set_class};
use crate::core::text::basename;

/// The records of one audit event, with the Base Event its first line became.
#[derive(Debug)]
pub(super) struct Group {
    pub(super) node: Option<String>,
    pub(super) serial: u64,
    pub(super) time_ms: i64,
    pub(super) base: Box<Event>,
    pub(super) raw: Vec<String>,
    pub(super) records: Vec<AuditRecord>,
}

pub(super) fn num(v: Option<&str>) -> Option<i64> {
    let v = v?;
    v.parse().ok().or_else(|| {
        v.strip_prefix("0x")
            .and_then(|h| i64::from_str_radix(h, 16).ok())
    })
}

/// An id that means "unset" (auid 4294967295 / -1).
fn unset(v: Option<i64>) -> Option<i64> {
    v.filter(|&x| x != 4_294_967_295 && x != -1)
}

fn user_of(uid: Option<&str>, name: Option<&str>) -> Option<User> {
    let name =
        name.filter(|n| !n.is_empty() && *n != "?" && *n != "unset" && !n.starts_with("unknown("));
    let uid = uid.filter(|u| *u != "4294967295" && *u != "-1");
    (uid.is_some() || name.is_some()).then(|| User {
        uid: uid.map(|s| s.into()),
        name: name.map(|s| s.into()),
        ..User::default()
    })
}

const EXECVE_X86_64: &str = "59";

fn syscall_name(r: &AuditRecord) -> Option<String> {
    if let Some(n) = r.get("SYSCALL") {
        return Some(n.to_owned());
    }
    let nr = r.get("syscall")?;
    let x86_64 = matches!(r.get("arch"), Some("c000003e" | "0xc000003e") | None);
    if !x86_64 {
        return None;
    }
    Some(
        match nr {
            "2" => "open",
            "257" => "openat",
            "85" => "creat",
            "87" => "unlink",
            "263" => "unlinkat",
            "84" => "rmdir",
            "82" => "rename",
            "264" => "renameat",
            "316" => "renameat2",
            "90" => "chmod",
            "91" => "fchmod",
            "268" => "fchmodat",
            "92" => "chown",
            "260" => "fchownat",
            "83" => "mkdir",
            "258" => "mkdirat",
            "76" => "truncate",
            "188" => "setxattr",
            "86" => "link",
            "88" => "symlink",
            "59" => "execve",
            "322" => "execveat",
            _ => return None,
        }
        .to_owned(),
    )
}

fn file_activity(syscall: &str) -> u8 {
    match syscall {
        "creat" | "mkdir" | "mkdirat" | "link" | "symlink" => 1,
        "unlink" | "unlinkat" | "rmdir" => 4,
        "rename" | "renameat" | "renameat2" => 5,
        "chmod" | "fchmod" | "fchmodat" | "chown" | "fchownat" | "setxattr" => 6,
        "truncate" => 3,
        "open" | "openat" => 14,
        _ => 99,
    }
}

/// The OCSF event of a complete group.
pub(super) fn build(g: Group) -> Box<Event> {
    let Group {
        node,
        serial,
        base,
        raw,
        records,
        time_ms,
    } = g;
    let mut ev = base;
    ev.time = time_ms;
    ev.timezone_offset = Some(0);
    ev.metadata.original_time = records.first().map(|r| r.time_text.clone().into());
    ev.raw_data = Some(match <[String; 1]>::try_from(raw) {
        Ok([one]) => one.into(),
        Err(raw) => raw.join("\n").into(),
    });
    if ev.metadata.log_name.as_deref() != Some("laurel") {
        ev.metadata.log_name = Some("auditd".into());
    }
    if let Some(n) = &node
        && let Some(d) = ev.device.as_mut()
    {
        d.hostname = Some(n.clone().into());
        d.ip = crate::core::text::is_ip(n).then(|| n.clone().into());
    }
    let mut ev = classify(ev, &records);
    // Everything, typed or not, stays under unmapped.auditd, rendered once: the records
    // in their order, each record's fields in its order. What `classify` already put in
    // the section (`terminal`) comes last and wins.
    let find = |t: &str| records.iter().find(|r| r.rtype == t);
    let syscall = find("SYSCALL");
    let syscall_name = syscall.and_then(syscall_name);
    let key = syscall
        .and_then(|sc| sc.get("key"))
        .filter(|k| *k != "(null)" && !k.is_empty());
    let later = ev
        .unmapped
        .as_mut()
        .and_then(|u| u.other.remove("auditd"))
        .and_then(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .unwrap_or_default();
    let fixed = |k: &str| {
        matches!(k, "serial" | "node" | "records")
            || (k == "syscall" && syscall_name.is_some())
            || (k == "key" && key.is_some())
            || later.contains_key(k)
    };
    let bytes: usize = raw_len(&records);
    let mut b = ObjectBuilder::with_capacity(bytes + 64);
    b.u64("serial", serial);
    if let Some(n) = &node {
        b.str("node", n);
    }
    b.begin_array("records");
    for r in &records {
        b.elem_str(&r.rtype);
    }
    b.end();
    for (i, r) in records.iter().enumerate() {
        if records[..i].iter().any(|p| p.rtype == r.rtype) {
            continue; // written with the first of its type
        }
        // A record type named like one of the section's own members (only garbage does
        // that) keeps its fields under a name no other member has.
        let mut name = r.rtype.clone();
        while fixed(&name) || (name != r.rtype && records.iter().any(|o| o.rtype == name)) {
            name.insert_str(0, "type_");
        }
        let same = || records[i..].iter().filter(|o| o.rtype == r.rtype);
        if same().nth(1).is_some() {
            b.begin_array(&name);
            for o in same() {
                b.begin_object_elem();
                write_fields(&mut b, &o.fields);
                b.end();
            }
            b.end();
        } else {
            b.begin_object(&name);
            write_fields(&mut b, &r.fields);
            b.end();
        }
    }
    if let Some(n) = &syscall_name {
        b.str("syscall", n);
    }
    if let Some(k) = key {
        b.str("key", k);
    }
    for (k, v) in &later {
        b.value(k, v);
    }
    ev.unmapped_mut().set_section("auditd", b.finish());
    ev
}

/// Bytes of the records' fields, to size the section's buffer once.
fn raw_len(records: &[AuditRecord]) -> usize {
    records
        .iter()
        .flat_map(|r| &r.fields)
        .map(|(k, v)| k.len() + v.len() + 6)
        .sum()
}

/// A record's fields as members; a key given twice keeps its last value, as auditd's own
/// tools read it.
fn write_fields(b: &mut ObjectBuilder, fields: &[(String, String)]) {
    let keep = repeated(fields.len(), |i| fields[i].0.as_str());
    for (i, (k, v)) in fields.iter().enumerate() {
        if keep.as_ref().is_none_or(|keep| keep[i]) {
            b.str(k, v);
        }
    }
}

/// The most arguments of one command line read, and the most bytes of it: `argc` is the
/// process's own (an exec with 600,000 empty arguments is a few hundred KB of records,
/// and a forged `argc=99999999999` asked for terabytes up front).
const MAX_ARGS: usize = 4096;
const MAX_CMD_LINE: usize = 64 * 1024;

/// The command line of `argc` arguments read through `get` (`aN`, or the pieces of a long
/// one, `aN[0]`, `aN[1]` …, joined before their hex is decoded), within [`MAX_ARGS`] and
/// [`MAX_CMD_LINE`]; and what is missing or cut, said once.
fn command_line<'a>(
    argc: usize,
    get: impl Fn(&str) -> Option<&'a str>,
) -> (Option<String>, Option<String>) {
    let mut line = String::new();
    let mut read = 0;
    let mut missing: Vec<usize> = Vec::new();
    let mut cut = false;
    let mut key = String::new();
    for i in 0..argc.max(1) {
        if i >= MAX_ARGS || line.len() >= MAX_CMD_LINE {
            cut = true;
            break;
        }
        key.clear();
        key.push('a');
        key.push_str(&i.to_string());
        let arg = match get(&key) {
            Some(a) => Some(std::borrow::Cow::Borrowed(a)),
            None => pieces(i, &get).map(std::borrow::Cow::Owned),
        };
        match arg {
            Some(a) => {
                if read > 0 {
                    line.push(' ');
                }
                line.push_str(&a);
                read += 1;
            }
            None if i < argc => missing.push(i),
            None => {}
        }
    }
    if line.len() > MAX_CMD_LINE {
        line.truncate(line.floor_char_boundary(MAX_CMD_LINE));
        cut = true;
    }
    let mut why = Vec::new();
    if !missing.is_empty() {
        let first: Vec<String> = missing.iter().take(8).map(|i| format!("a{i}")).collect();
        why.push(format!(
            "auditd: {} EXECVE argument(s) missing ({}{})",
            missing.len(),
            first.join(", "),
            if missing.len() > 8 { ", …" } else { "" }
        ));
    }
    if cut {
        why.push(format!(
            "auditd: command line cut at {read} of {argc} arguments ({} bytes at most)",
            MAX_CMD_LINE
        ));
    }
    (
        (read > 0).then_some(line),
        (!why.is_empty()).then(|| why.join("; ")),
    )
}

/// Argument `i` from its pieces `ai[0]`, `ai[1]` … (kept as logged: quoted text, or hex
/// decoded once joined, a character split between pieces whole again).
fn pieces<'a>(i: usize, get: &impl Fn(&str) -> Option<&'a str>) -> Option<String> {
    let mut joined = String::new();
    let mut quoted = false;
    let mut k = 0;
    while let Some(part) = get(&format!("a{i}[{k}]")) {
        match part.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
            Some(text) => {
                quoted = true;
                joined.push_str(text);
            }
            None => joined.push_str(part),
        }
        k += 1;
        if joined.len() > 2 * MAX_CMD_LINE {
            break;
        }
    }
    if k == 0 {
        return None;
    }
    let hex =
        !quoted && joined.len().is_multiple_of(2) && joined.bytes().all(|c| c.is_ascii_hexdigit());
    Some(if hex {
        super::record::decode_hex(&joined)
    } else {
        joined
    })
}

/// The class, activity and typed attributes the records call for.
fn classify(mut ev: Box<Event>, records: &[AuditRecord]) -> Box<Event> {
    let find = |t: &str| records.iter().find(|r| r.rtype == t);
    let syscall = find("SYSCALL");
    let log_name = if ev.metadata.log_name.as_deref() == Some("laurel") {
        "laurel"
    } else {
        "auditd"
    };
    code(
        &mut ev,
        log_name,
        format!(
            "auditd.{}",
            records
                .first()
                .map_or("unknown".to_owned(), |r| r.rtype.to_ascii_lowercase())
        ),
    );

    let execve = find("EXECVE");
    let sc_name = syscall.and_then(syscall_name);
    let is_exec = execve.is_some()
        || syscall.and_then(|s| s.get("syscall")) == Some(EXECVE_X86_64)
        || sc_name.as_deref() == Some("execve");
    let status = match syscall.and_then(|s| s.get("success")) {
        Some("yes") => Status::Success,
        Some("no") => Status::Failure,
        _ => Status::Unknown,
    };
    if let (Some(sc), true) = (syscall, is_exec) {
        set_class(&mut ev, Class::ProcessActivity, 1, status);
        code(&mut ev, "auditd", "auditd.execve");
        let mut p = process_of(sc);
        if let Some(ex) = execve {
            // A long argv takes several EXECVE records of the event (the kernel starts a
            // new one every ~7.5 KB): the arguments are read across all of them.
            let execves: Vec<&AuditRecord> =
                records.iter().filter(|r| r.rtype == "EXECVE").collect();
            let get = |k: &str| execves.iter().find_map(|r| r.get(k));
            let argc = num(ex.get("argc")).unwrap_or(0).max(0) as usize;
            let (cmd_line, missing) = command_line(argc, get);
            if let Some(c) = cmd_line {
                p.cmd_line = Some(c.into());
            }
            if let Some(why) = missing {
                ev.note_parse_error(why);
            }
        } else if let Some(t) = find("PROCTITLE").and_then(|r| r.get("proctitle")) {
            p.cmd_line = Some(t.into());
        }
        if let Some(cwd) = find("CWD").and_then(|r| r.get("cwd")) {
            p.working_directory = Some(cwd.into());
        }
        let actor = Actor {
            user: user_of(
                unset(num(sc.get("auid"))).map(|a| a.to_string()).as_deref(),
                sc.get("AUID"),
            ),
            process: p.parent_process.clone(),
            ..Actor::default()
        };
        ev.actor = Some(actor)
            .filter(|a| a.user.is_some() || a.process.is_some())
            .or_else(|| {
                Some(Actor {
                    user: p.user.clone(),
                    ..Actor::default()
                })
            });
        ev.process = Some(Box::new(p));
        return ev;
    }
    if let Some(sc) = syscall {
        let paths: Vec<&AuditRecord> = records.iter().filter(|r| r.rtype == "PATH").collect();
        let target = paths
            .iter()
            .find(|r| matches!(r.get("nametype"), Some("DELETE" | "CREATE" | "NORMAL")))
            .or(paths.first());
        if let Some(path) = target
            .and_then(|r| r.get("name"))
            .filter(|n| *n != "(null)")
        {
            let activity = sc_name.as_deref().map_or(99, file_activity);
            set_class(&mut ev, Class::FileActivity, activity, status);
            code(
                &mut ev,
                "auditd",
                format!("auditd.{}", sc_name.as_deref().unwrap_or("file")),
            );
            let cwd = find("CWD").and_then(|r| r.get("cwd"));
            let full = if path.starts_with('/') || cwd.is_none() {
                path.to_owned()
            } else {
                format!("{}/{}", cwd.unwrap_or("").trim_end_matches('/'), path)
            };
            let is_dir = target
                .and_then(|r| r.get("mode"))
                .is_some_and(|m| m.trim_start_matches("0o").starts_with("04"));
            ev.file = Some(Box::new(File {
                // `/` alone has no last component: the name is the path.
                name: Some(
                    Some(basename(&full))
                        .filter(|n| !n.is_empty())
                        .unwrap_or(&full)
                        .to_owned()
                        .into(),
                ),
                path: Some(full.into()),
                type_id: Some(if is_dir { 2 } else { 1 }),
                r#type: Some(if is_dir { "Folder" } else { "Regular File" }.into()),
                uid: target.and_then(|r| r.get("inode")).map(|s| s.into()),
                ..File::default()
            }));
            let p = process_of(sc);
            ev.actor = Some(Actor {
                user: user_of(
                    unset(num(sc.get("auid"))).map(|a| a.to_string()).as_deref(),
                    sc.get("AUID"),
                )
                .or_else(|| p.user.clone()),
                process: Some(Box::new(p)),
                ..Actor::default()
            });
            return ev;
        }
        if let Some(denial) = find("AVC").and_then(mac_file) {
            return mac_file_event(ev, &denial, process_of(sc));
        }
        // A syscall without a path: the process that made it is still worth having.
        let p = process_of(sc);
        ev.actor = Some(Actor {
            user: p.user.clone(),
            process: Some(Box::new(p)),
            ..Actor::default()
        });
        return ev;
    }
    // A MAC denial alone: AppArmor's and SELinux's kernel-log lines carry no SYSCALL.
    if let Some(denial) = find("AVC").and_then(mac_file) {
        let p = Process {
            pid: denial.pid,
            name: denial.comm.map(Into::into),
            ..Process::default()
        };
        return mac_file_event(ev, &denial, p);
    }
    let Some(first) = records.first() else {
        return ev;
    };
    let res = first.get("res").map(|r| r.to_ascii_lowercase());
    let st = match res.as_deref() {
        Some("success" | "yes" | "1") => Status::Success,
        Some("failed" | "no" | "0" | "fail") => Status::Failure,
        _ => Status::Unknown,
    };
    // The account is `acct` (a name), else `id` (a uid: `id=1000` is no user name). The
    // record's own `uid` is the process that logged it (sshd: 0), never the account: a
    // failed logon with `acct="?"` was a failed root logon.
    let acct = first.get("acct").filter(|a| !a.is_empty() && *a != "?");
    match first.rtype.as_str() {
        "USER_AUTH" | "USER_LOGIN" | "USER_LOGOUT" | "USER_ERR" | "USER_START" | "USER_END"
        | "USER_ACCT" | "CRED_ACQ" | "CRED_REFR" | "CRED_DISP" => {
            // PAM's account check and its credential steps are parts of a logon, not
            // logons: Other, so counting failed logons does not count one attempt twice
            // (its USER_AUTH is the logon); `event_code` says which step it was.
            let activity = match first.rtype.as_str() {
                "USER_LOGOUT" | "USER_END" => 2,
                "USER_ACCT" | "CRED_ACQ" | "CRED_REFR" | "CRED_DISP" => 99,
                _ => 1,
            };
            let svc = first
                .get("exe")
                .map(basename)
                .unwrap_or("auditd")
                .to_owned();
            auth(&mut ev, activity, st, &svc, acct);
            if ev.user.as_ref().and_then(|u| u.name.as_deref()) == Some(UNKNOWN_USER)
                && let Some(u) = user_of(first.get("id"), None)
            {
                ev.user = Some(u);
            }
            code(
                &mut ev,
                "auditd",
                format!("auditd.{}", first.rtype.to_ascii_lowercase()),
            );
            ev.service = Some(Service {
                name: Some(svc.into()),
            });
            if let Some(addr) = first.get("addr").filter(|a| crate::core::text::is_ip(a)) {
                ev.src_endpoint = Some(Endpoint::ip(addr, None));
                ev.is_remote = Some(true);
            } else if let Some(h) = first.get("hostname").filter(|h| !h.is_empty() && *h != "?") {
                ev.src_endpoint = Some(Endpoint {
                    hostname: Some(h.into()),
                    ..Endpoint::default()
                });
            }
            if let Some(op) = first.get("op") {
                ev.status_detail = Some(op.into());
            }
            if let Some(t) = first.get("terminal") {
                ev.unmapped_set("auditd", "terminal", t.to_owned());
            }
        }
        "ADD_USER" | "DEL_USER" | "USER_CHAUTHTOK" | "ACCT_LOCK" | "ACCT_UNLOCK" | "USER_MGMT"
        | "ADD_GROUP" | "DEL_GROUP" | "GRP_MGMT" => {
            if let Some(a) = acct {
                let rtype = first.rtype.as_str();
                let activity = match rtype {
                    "ADD_USER" | "ADD_GROUP" => 1,
                    "DEL_USER" | "DEL_GROUP" => 6,
                    "USER_CHAUTHTOK" => 3,
                    "ACCT_LOCK" => 9,
                    "ACCT_UNLOCK" => 12,
                    _ => 99,
                };
                set_class(&mut ev, Class::AccountChange, activity, st);
                ev.user = Some(if matches!(rtype, "ADD_GROUP" | "DEL_GROUP" | "GRP_MGMT") {
                    // Groups have no class of their own: the account changed is the
                    // group, typed `Group` (Other), as for groupadd's own log lines.
                    User {
                        name: Some(a.into()),
                        uid: first.get("id").map(Into::into),
                        type_id: Some(99),
                        r#type: Some("Group".into()),
                        ..User::default()
                    }
                } else {
                    User::named(a)
                });
                if let Some(u) = user_of(first.get("uid"), first.get("UID")) {
                    ev.actor = Some(Actor {
                        user: Some(u),
                        ..Actor::default()
                    });
                }
                if let Some(op) = first.get("op") {
                    ev.status_detail = Some(op.into());
                }
            }
        }
        // A process the kernel killed while dumping core (a SUID binary crashing is how
        // exploits of it often show): Process Activity Terminate, Failure, as for the
        // kernel's own segfault line.
        "ANOM_ABEND" => {
            set_class(&mut ev, Class::ProcessActivity, 2, Status::Failure);
            let exe = first.get("exe").filter(|e| *e != "(null)");
            ev.process = Some(Box::new(Process {
                pid: num(first.get("pid")),
                name: first.get("comm").filter(|c| *c != "(null)").map(Into::into),
                file: exe.map(executable),
                user: user_of(first.get("uid"), first.get("UID")),
                auid: unset(num(first.get("auid"))),
                ..Process::default()
            }));
            ev.actor = Some(Actor {
                app_name: Some("kernel".into()),
                user: user_of(
                    unset(num(first.get("auid")))
                        .map(|a| a.to_string())
                        .as_deref(),
                    first.get("AUID"),
                ),
                ..Actor::default()
            });
            if let Some(sig) = first.get("sig") {
                ev.status_detail = Some(
                    match signal_name(sig) {
                        Some(name) => format!("killed by signal {sig} ({name})"),
                        None => format!("killed by signal {sig}"),
                    }
                    .into(),
                );
            }
        }
        _ => {
            if st != Status::Unknown {
                ev.header.status = Some(st);
            }
        }
    }
    ev
}

/// The name of a fatal signal a core dump reports (x86-64 / generic numbering).
fn signal_name(sig: &str) -> Option<&'static str> {
    Some(match sig {
        "3" => "SIGQUIT",
        "4" => "SIGILL",
        "5" => "SIGTRAP",
        "6" => "SIGABRT",
        "7" => "SIGBUS",
        "8" => "SIGFPE",
        "11" => "SIGSEGV",
        "24" => "SIGXCPU",
        "25" => "SIGXFSZ",
        "31" => "SIGSYS",
        _ => return None,
    })
}

/// What an `AVC` record (AppArmor or SELinux) says about a file it ruled on.
struct MacFile<'a> {
    /// `apparmor` or `selinux`.
    module: &'static str,
    /// AppArmor's `name` (a path); SELinux's `path` if given, else its `name` (the last
    /// component only).
    name: &'a str,
    /// Whether `name` is a whole path.
    is_path: bool,
    /// OCSF `file.type_id` and its caption.
    file_type: (u8, &'static str),
    activity: u8,
    status: Status,
    /// `DENIED open`, `denied { read write }` …
    detail: String,
    pid: Option<i64>,
    comm: Option<&'a str>,
    inode: Option<&'a str>,
}

/// The file an `AVC` record is about, if it is about one: AppArmor's file operations (a
/// `name`, no network `family`, not a capability, signal or ptrace check), SELinux's
/// file-like target classes.
fn mac_file(avc: &AuditRecord) -> Option<MacFile<'_>> {
    let pid = num(avc.get("pid"));
    let comm = avc.get("comm");
    if let Some(verdict) = avc.get("apparmor") {
        let op = avc.get("operation").unwrap_or("");
        let name = avc.get("name").filter(|n| n.starts_with('/'))?;
        // Newer kernels say the object's class; older ones only the operation.
        if avc.get("class").is_some_and(|c| c != "file")
            || avc.get("family").is_some()
            || matches!(
                op,
                "capable" | "signal" | "ptrace" | "mount" | "umount" | "pivotroot"
            )
        {
            return None;
        }
        let activity = match op {
            "open" => 14,
            "mknod" | "mkdir" | "link" | "symlink" => 1,
            "unlink" | "rmdir" => 4,
            "rename_src" | "rename_dest" => 5,
            "chmod" | "chown" | "setattr" => 6,
            "getattr" => 8,
            "truncate" => 3,
            _ => 99,
        };
        return Some(MacFile {
            module: "apparmor",
            name,
            is_path: true,
            // AppArmor writes a directory with its trailing slash; anything else it does
            // not say.
            file_type: if name.len() > 1 && name.ends_with('/') {
                (2, "Folder")
            } else {
                (0, "Unknown")
            },
            activity,
            status: match verdict {
                "DENIED" => Status::Failure,
                "ALLOWED" | "AUDIT" => Status::Success,
                _ => Status::Unknown,
            },
            detail: format!("{verdict} {op}").trim_end().to_owned(),
            pid,
            comm,
            inode: None,
        });
    }
    // SELinux: `avc:  denied  { read write } for  pid=… name="…" … tclass=dir`; the words
    // without `=` come as positional fields, in order.
    let file_type = match avc.get("tclass")? {
        "file" => (1, "Regular File"),
        "dir" => (2, "Folder"),
        "chr_file" => (3, "Character Device"),
        "blk_file" => (4, "Block Device"),
        "sock_file" => (5, "Local Socket"),
        "fifo_file" => (6, "Named Pipe"),
        "lnk_file" => (7, "Symbolic Link"),
        _ => return None,
    };
    let words: Vec<&str> = avc
        .fields
        .iter()
        .filter(|(k, _)| k.starts_with('_'))
        .map(|(_, v)| v.as_str())
        .collect();
    let verdict = words
        .iter()
        .copied()
        .find(|w| matches!(*w, "denied" | "granted"))?;
    let perms: Vec<&str> = words
        .iter()
        .skip_while(|w| **w != "{")
        .skip(1)
        .take_while(|w| **w != "}")
        .copied()
        .collect();
    let (name, is_path) = match avc.get("path").filter(|p| p.starts_with('/')) {
        Some(p) => (p, true),
        None => (avc.get("name")?, false),
    };
    let has = |p: &str| perms.contains(&p);
    let activity = if has("create") || has("add_name") {
        1
    } else if has("unlink") || has("rmdir") || has("remove_name") {
        4
    } else if has("rename") || has("reparent") {
        5
    } else if has("setattr") || has("relabelfrom") || has("relabelto") {
        6
    } else if has("write") || has("append") {
        3
    } else if has("read") {
        2
    } else if has("open") {
        14
    } else if has("getattr") {
        8
    } else {
        99
    };
    // A denial in permissive mode was logged, not enforced.
    let permissive = avc.get("permissive") == Some("1");
    Some(MacFile {
        module: "selinux",
        name,
        is_path,
        file_type,
        activity,
        status: match (verdict, permissive) {
            ("denied", false) => Status::Failure,
            _ => Status::Success,
        },
        detail: format!(
            "{verdict} {{ {} }}{}",
            perms.join(" "),
            if permissive { " (permissive)" } else { "" }
        ),
        pid,
        comm,
        inode: avc.get("ino"),
    })
}

/// File System Activity of a MAC decision on a file, by `actor`.
fn mac_file_event(mut ev: Box<Event>, m: &MacFile<'_>, actor: Process) -> Box<Event> {
    set_class(&mut ev, Class::FileActivity, m.activity, m.status);
    code(
        &mut ev,
        "auditd",
        if m.module == "apparmor" {
            "auditd.apparmor"
        } else {
            "auditd.selinux"
        },
    );
    ev.status_detail = Some(m.detail.as_str().into());
    let trimmed = m.name.trim_end_matches('/');
    let name = if m.is_path {
        basename(trimmed)
    } else {
        trimmed
    };
    ev.file = Some(Box::new(File {
        name: Some(if name.is_empty() { m.name } else { name }.into()),
        path: m.is_path.then(|| m.name.into()),
        type_id: Some(m.file_type.0),
        r#type: Some(m.file_type.1.into()),
        uid: m.inode.map(Into::into),
        ..File::default()
    }));
    ev.actor = Some(Actor {
        user: actor.user.clone(),
        process: Some(Box::new(actor)),
        ..Actor::default()
    });
    ev
}

/// The file of a process's executable, as audit records name it (`exe=`).
fn executable(path: &str) -> File {
    File {
        name: Some(basename(path).into()),
        path: Some(path.into()),
        type_id: Some(1),
        r#type: Some("Regular File".into()),
        ..File::default()
    }
}

fn process_of(sc: &AuditRecord) -> Process {
    let comm = sc.get("comm").filter(|c| *c != "(null)");
    let exe = sc.get("exe").filter(|c| *c != "(null)");
    let parent = num(sc.get("ppid")).map(|ppid| {
        Box::new(Process {
            pid: Some(ppid),
            name: sc.get("parent_comm").map(|s| s.into()),
            file: sc.get("parent_exe").map(executable),
            ..Process::default()
        })
    });
    let tty = sc.get("tty").filter(|t| *t != "(none)");
    let ses = sc.get("ses").filter(|s| *s != "4294967295");
    Process {
        pid: num(sc.get("pid")),
        name: comm.map(|s| s.into()),
        file: exe.map(executable),
        user: user_of(sc.get("uid"), sc.get("UID")),
        parent_process: parent,
        auid: num(sc.get("auid")),
        euid: num(sc.get("euid")),
        egid: num(sc.get("egid")),
        session: (tty.is_some() || ses.is_some()).then(|| Session {
            uid: ses.map(|s| s.into()),
            terminal: tty.map(|s| s.into()),
            ..Session::default()
        }),
        ..Process::default()
    }
}
