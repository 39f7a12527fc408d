//! Reads the account database for user enrichment, and reads it again when it changes
//! (checked at most every `check_every_ms`: a change is seen within that time).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::core::enrich::accounts::AccountDb;

/// Keeps an [`AccountDb`] current.
#[derive(Debug)]
pub struct AccountWatcher {
    root: PathBuf,
    check_every_ms: i64,
    last_check: Option<i64>,
    stamps: Vec<Option<SystemTime>>,
    db: AccountDb,
}

const FILES: [&str; 3] = ["etc/passwd", "etc/group", "etc/shadow"];

impl AccountWatcher {
    /// Watches `root`/etc/{passwd,group,shadow}.
    pub fn new(root: PathBuf, check_every_ms: i64) -> Self {
        Self {
            root,
            check_every_ms,
            last_check: None,
            stamps: Vec::new(),
            db: AccountDb::default(),
        }
    }

    /// The database as of the last check; checks first when one is due at `now_ms`.
    pub fn db(&mut self, now_ms: i64) -> &AccountDb {
        let due = self
            .last_check
            .is_none_or(|t| now_ms - t >= self.check_every_ms || now_ms < t);
        if due {
            self.last_check = Some(now_ms);
            let stamps: Vec<Option<SystemTime>> = FILES
                .iter()
                .map(|f| {
                    std::fs::metadata(self.root.join(f))
                        .and_then(|m| m.modified())
                        .ok()
                })
                .collect();
            if stamps != self.stamps {
                let read = |f: &str| std::fs::read_to_string(self.root.join(f)).ok();
                self.db = AccountDb::parse(
                    &read(FILES[0]).unwrap_or_default(),
                    &read(FILES[1]).unwrap_or_default(),
                    // Unreadable without root: enrichment goes on without lock state.
                    read(FILES[2]).as_deref(),
                );
                self.stamps = stamps;
            }
        }
        &self.db
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_seen_at_the_next_check() {
        let root = std::env::temp_dir().join(format!("vedette-accounts-{}", std::process::id()));
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(
            root.join("etc/passwd"),
            "alice:x:1000:1000::/home/alice:/bin/bash\n",
        )
        .unwrap();
        std::fs::write(root.join("etc/group"), "alice:x:1000:\n").unwrap();
        let mut w = AccountWatcher::new(root.clone(), 10_000);
        assert!(w.db(0).get("alice").is_some());
        std::fs::write(
            root.join("etc/passwd"),
            "alice:x:1000:1000::/home/alice:/bin/bash\nbob:x:1001:1001::/home/bob:/bin/bash\n",
        )
        .unwrap();
        // Force a different mtime even on coarse-grained file systems.
        let f = std::fs::File::options()
            .write(true)
            .open(root.join("etc/passwd"))
            .unwrap();
        f.set_modified(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1))
            .unwrap();
        assert!(
            w.db(5_000).get("bob").is_none(),
            "not checked before the interval"
        );
        assert!(w.db(10_000).get("bob").is_some());
        std::fs::remove_dir_all(&root).unwrap();
    }
}
