//! Process enrichment: an event that names a live pid (the logging program's PID, an
//! audited process) gets the process's executable, command line, parent pid and parent
//! executable from /proc, read at event time by the shell. A process that is gone, or
//! whose pid was reused since the event (it started after it), is noted, never guessed.

use vedette_schemas::ocsf::{Event, File, Process, VedetteNotes};

/// What /proc says about one pid.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcInfo {
    /// `exe` link target.
    pub exe: Option<String>,
    /// `cmdline`, arguments joined by spaces.
    pub cmdline: Option<String>,
    /// Parent pid.
    pub ppid: Option<i64>,
    /// When it started, ms since the epoch.
    pub start_ms: Option<i64>,
    /// The parent's `exe`.
    pub parent_exe: Option<String>,
}

/// The result of looking a pid up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Running, and started before the event.
    Live(ProcInfo),
    /// Exited, or the pid now belongs to a process started after the event.
    Gone,
}

/// `(ppid, starttime in clock ticks since boot)` from `/proc/<pid>/stat`. The command name
/// in parentheses may hold spaces and parentheses itself: fields are read after the last
/// `)`.
pub fn parse_stat(stat: &str) -> Option<(i64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_ascii_whitespace().collect();
    // After `)`: state(3) ppid(4) … starttime(22): indices 0-based from state.
    Some((f.get(1)?.parse().ok()?, f.get(19)?.parse().ok()?))
}

/// `cmdline`'s NUL-separated arguments as one line.
pub fn parse_cmdline(bytes: &[u8]) -> Option<String> {
    let s: Vec<String> = bytes
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    (!s.is_empty()).then(|| s.join(" "))
}

/// `btime` (boot time, seconds since the epoch) from `/proc/stat`.
pub fn parse_btime(stat: &str) -> Option<i64> {
    stat.lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

/// Fills the looked-up facts into `p` (what the record said stays).
pub fn fill(p: &mut Process, info: &ProcInfo) {
    if p.cmd_line.is_none() {
        p.cmd_line = info.cmdline.clone().map(Into::into);
    }
    if let Some(exe) = &info.exe {
        let f = p.file.get_or_insert_with(|| File {
            type_id: Some(1),
            r#type: Some("Regular File".into()),
            ..File::default()
        });
        if f.path.is_none() {
            f.path = Some(exe.clone().into());
            f.name = exe.rsplit('/').next().map(|n| n.into());
        }
    }
    if p.parent_process.is_none()
        && let Some(ppid) = info.ppid
    {
        p.parent_process = Some(Box::new(Process {
            pid: Some(ppid),
            file: info.parent_exe.as_ref().map(|exe| File {
                path: Some(exe.clone().into()),
                name: exe.rsplit('/').next().map(|n| n.into()),
                type_id: Some(1),
                r#type: Some("Regular File".into()),
                ..File::default()
            }),
            ..Process::default()
        }));
    }
}

/// The pid the event names: the audited process, else the logging program.
pub fn pid_of(ev: &Event) -> Option<i64> {
    ev.process
        .as_ref()
        .and_then(|p| p.pid)
        .or_else(|| {
            ev.actor
                .as_ref()
                .and_then(|a| a.process.as_ref())
                .and_then(|p| p.pid)
        })
        .filter(|&p| p > 0)
}

/// Applies a lookup of [`pid_of`]`(ev)`.
pub fn apply(ev: &mut Event, lookup: &Lookup) {
    match lookup {
        Lookup::Live(info) => {
            let target = match ev.process.as_mut().filter(|p| p.pid.is_some()) {
                Some(p) => Some(&mut **p),
                None => ev.actor.as_mut().and_then(|a| a.process.as_deref_mut()),
            };
            if let Some(p) = target {
                fill(p, info);
            }
        }
        Lookup::Gone => {
            ev.unmapped_mut()
                .vedette
                .get_or_insert_with(VedetteNotes::default)
                .process_gone = Some(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use vedette_schemas::ocsf::{Actor, Class, Product};

    use super::*;

    #[test]
    fn stat_with_a_strange_command_name_parses() {
        let stat = "1234 (sshd: root (priv)) S 1000 1234 1234 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2 3";
        assert_eq!(parse_stat(stat), Some((1000, 98765)));
        assert_eq!(
            parse_cmdline(b"sshd: root [priv]\0\0"),
            Some("sshd: root [priv]".into())
        );
        assert_eq!(
            parse_cmdline(b"/bin/sh\0-c\0id\0"),
            Some("/bin/sh -c id".into())
        );
        assert_eq!(
            parse_btime("cpu 1 2\nbtime 1700000000\n"),
            Some(1_700_000_000)
        );
    }

    #[test]
    fn the_logging_process_gets_its_facts_and_a_gone_one_is_noted() {
        let mut ev = Event::new(Class::Authentication, 1, 0, Product::default());
        ev.actor = Some(Actor {
            process: Some(Box::new(Process {
                pid: Some(1234),
                name: Some("sshd".into()),
                ..Process::default()
            })),
            ..Actor::default()
        });
        assert_eq!(pid_of(&ev), Some(1234));
        let info = ProcInfo {
            exe: Some("/usr/sbin/sshd".into()),
            cmdline: Some("sshd: root [priv]".into()),
            ppid: Some(1000),
            start_ms: Some(0),
            parent_exe: Some("/usr/sbin/sshd".into()),
        };
        apply(&mut ev, &Lookup::Live(info));
        let p = ev.actor.as_ref().unwrap().process.as_ref().unwrap();
        assert_eq!(p.cmd_line.as_deref(), Some("sshd: root [priv]"));
        assert_eq!(
            p.file.as_ref().unwrap().path.as_deref(),
            Some("/usr/sbin/sshd")
        );
        assert_eq!(p.parent_process.as_ref().unwrap().pid, Some(1000));
        let mut gone = Event::new(Class::Authentication, 1, 0, Product::default());
        apply(&mut gone, &Lookup::Gone);
        assert_eq!(
            gone.unmapped.unwrap().vedette.unwrap().process_gone,
            Some(true)
        );
    }
}
