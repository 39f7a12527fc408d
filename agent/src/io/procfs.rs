//! Looks processes up in /proc for process enrichment, at event time: only for events that
//! just happened (a replayed file's pids belong to other processes by now), with a short
//! cache so a burst from one process reads /proc once.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::core::enrich::process::{Lookup, ProcInfo, parse_btime, parse_cmdline, parse_stat};

/// `USER_HZ`: the unit of `starttime` in /proc/<pid>/stat, fixed at 100 by the Linux ABI
/// on the architectures the agent is built for.
const USER_HZ: i64 = 100;
/// How old an event may be for its pid to be looked up.
const LIVE_MS: i64 = 60_000;
/// How long a lookup is reused.
const CACHE_MS: i64 = 2_000;
/// Most pids cached.
const CACHE_MAX: usize = 4096;

/// Reads `root`/proc.
#[derive(Debug)]
pub struct ProcReader {
    root: PathBuf,
    btime_ms: Option<i64>,
    cache: HashMap<i64, (i64, Lookup)>,
}

impl ProcReader {
    /// A reader of `root`/proc (`/` on a host; a fixture tree in tests).
    pub fn new(root: PathBuf) -> Self {
        let btime_ms = std::fs::read_to_string(root.join("proc/stat"))
            .ok()
            .and_then(|s| parse_btime(&s))
            .map(|s| s * 1000);
        Self {
            root,
            btime_ms,
            cache: HashMap::new(),
        }
    }

    /// `pid` as of `now_ms`, for an event at `event_ms`; `None` when the event is not live
    /// (its pid says nothing about the process running now).
    pub fn lookup(&mut self, pid: i64, event_ms: i64, now_ms: i64) -> Option<Lookup> {
        if (now_ms - event_ms).abs() > LIVE_MS {
            return None;
        }
        if let Some((at, l)) = self.cache.get(&pid)
            && now_ms - at < CACHE_MS
        {
            return Some(self.judge(l.clone(), event_ms));
        }
        let l = self.read(pid);
        if self.cache.len() >= CACHE_MAX {
            self.cache.retain(|_, (at, _)| now_ms - *at < CACHE_MS);
        }
        if self.cache.len() < CACHE_MAX {
            self.cache.insert(pid, (now_ms, l.clone()));
        }
        Some(self.judge(l, event_ms))
    }

    /// A process started after the event is not the one the event names.
    fn judge(&self, l: Lookup, event_ms: i64) -> Lookup {
        match l {
            Lookup::Live(info) if info.start_ms.is_some_and(|s| s > event_ms + 1000) => {
                Lookup::Gone
            }
            l => l,
        }
    }

    fn read(&self, pid: i64) -> Lookup {
        let dir = self.root.join(format!("proc/{pid}"));
        let Some((ppid, ticks)) = std::fs::read_to_string(dir.join("stat"))
            .ok()
            .and_then(|s| parse_stat(&s))
        else {
            return Lookup::Gone;
        };
        let exe = |d: &std::path::Path| {
            std::fs::read_link(d.join("exe"))
                .ok()
                .map(|p| p.to_string_lossy().into_owned())
        };
        Lookup::Live(ProcInfo {
            exe: exe(&dir),
            cmdline: std::fs::read(dir.join("cmdline"))
                .ok()
                .and_then(|b| parse_cmdline(&b)),
            ppid: Some(ppid),
            start_ms: self.btime_ms.map(|b| b + (ticks as i64) * 1000 / USER_HZ),
            parent_exe: exe(&self.root.join(format!("proc/{ppid}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fake_proc_tree_is_read_and_a_reused_pid_is_gone() {
        let root = std::env::temp_dir().join(format!("vedette-procfs-{}", std::process::id()));
        let p = root.join("proc/4242");
        std::fs::create_dir_all(&p).unwrap();
        std::fs::create_dir_all(root.join("proc/1")).unwrap();
        std::fs::write(root.join("proc/stat"), "cpu 0\nbtime 1700000000\n").unwrap();
        // Started 10 s after boot.
        std::fs::write(
            p.join("stat"),
            "4242 (sshd) S 1 4242 4242 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 1000 0 0",
        )
        .unwrap();
        std::fs::write(p.join("cmdline"), b"sshd: root [priv]\0").unwrap();
        std::os::unix::fs::symlink("/usr/sbin/sshd", p.join("exe")).unwrap();
        std::os::unix::fs::symlink("/usr/lib/systemd/systemd", root.join("proc/1/exe")).unwrap();
        let mut r = ProcReader::new(root.clone());
        let boot = 1_700_000_000_000;
        let t = boot + 60_000;
        match r.lookup(4242, t, t + 5).unwrap() {
            Lookup::Live(i) => {
                assert_eq!(i.exe.as_deref(), Some("/usr/sbin/sshd"));
                assert_eq!(i.cmdline.as_deref(), Some("sshd: root [priv]"));
                assert_eq!(i.ppid, Some(1));
                assert_eq!(i.parent_exe.as_deref(), Some("/usr/lib/systemd/systemd"));
                assert_eq!(i.start_ms, Some(boot + 10_000));
            }
            Lookup::Gone => panic!("live"),
        }
        // An event from before the process started: the pid was reused.
        assert_eq!(
            r.lookup(4242, boot + 5_000, boot + 5_010),
            Some(Lookup::Gone)
        );
        assert_eq!(r.lookup(999, t, t), Some(Lookup::Gone));
        // History: not looked up at all.
        assert_eq!(r.lookup(4242, t, t + 3_600_000), None);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn this_process_is_found_on_the_real_host() {
        let mut r = ProcReader::new("/".into());
        let now = crate::io::clock::now_ms();
        let me = std::process::id() as i64;
        match r.lookup(me, now, now) {
            Some(Lookup::Live(i)) => {
                let exe = std::env::current_exe().unwrap();
                assert_eq!(i.exe.as_deref(), exe.to_str());
                assert!(i.start_ms.is_some_and(|s| s <= now));
            }
            other => panic!("{other:?}"),
        }
    }
}
