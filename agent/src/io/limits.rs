//! The process's open-file limit. A file tail holds every matched file open until it is
//! drained (that is how a rotated or deleted file is still read to its end), so a pattern
//! over many files (per-container or per-vhost logs) meets the soft limit, 1024 by default
//! on Linux, long before the hard one (524288 for systemd services). Past it every open
//! fails (the tail reports those files as unreadable).

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Where the soft limit goes when the hard one is unlimited: the kernel's default
/// `fs.nr_open`, above which no process may go anyway.
const UNLIMITED_CAP: u64 = 1 << 20;

/// Raises the soft limit on open files to the hard limit, as Go's runtime does for every
/// program: the soft default is a guard for old `select()` users, which the agent is not.
/// Returns the old and new soft limits when it changed them.
pub fn raise_open_files() -> Option<(u64, u64)> {
    let now = getrlimit(Resource::Nofile);
    let soft = now.current?;
    let target = now.maximum.unwrap_or(UNLIMITED_CAP);
    if target <= soft {
        return None;
    }
    setrlimit(
        Resource::Nofile,
        Rlimit {
            current: Some(target),
            maximum: now.maximum,
        },
    )
    .ok()?;
    Some((soft, target))
}

/// The soft limit on open files now (unlimited: the kernel's default ceiling).
pub fn open_files() -> u64 {
    getrlimit(Resource::Nofile).current.unwrap_or(UNLIMITED_CAP)
}
