//! Batches the aggregator refused for good are kept in `<state_dir>/rejected/` for an
//! operator to look at and resend, never silently gone. But within a bound: an aggregator
//! that refuses every batch (a version skew, a bug on either side) must not fill the
//! agent's disk, which would stop its spool and every other service on the host. Past the
//! bound the oldest kept batches are deleted, and each deletion is reported.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// What [`keep`] did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Kept {
    /// Where the batch was saved; `None` when it alone is over the bound.
    pub saved: Option<PathBuf>,
    /// Batches deleted to stay within the bound, oldest first, with their sizes (the new
    /// batch itself when it was not saved).
    pub discarded: Vec<(PathBuf, u64)>,
}

/// A kept batch, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    modified: SystemTime,
    name: String,
    len: u64,
}

/// Saves `bytes` as `dir/name`, then deletes the oldest `*.batch` files until what the
/// directory keeps is at most `max_bytes`.
pub fn keep(dir: &Path, name: &str, bytes: &[u8], max_bytes: u64) -> io::Result<Kept> {
    let mut kept = Kept::default();
    if bytes.len() as u64 > max_bytes {
        kept.discarded.push((dir.join(name), bytes.len() as u64));
        return Ok(kept);
    }
    super::private::create_dir(dir)?;
    let path = dir.join(name);
    let mut f = super::private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    f.write_all(bytes)?;
    // On the device before the spool lets the batch go (its segment may be deleted at
    // once): a power cut must not leave neither copy.
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    kept.saved = Some(path);
    let mut entries = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = e.metadata()?;
        if meta.is_file() && name.ends_with(".batch") {
            entries.push(Entry {
                modified: meta.modified()?,
                name,
                len: meta.len(),
            });
        }
    }
    for victim in over_bound(entries, name, max_bytes) {
        let path = dir.join(&victim.name);
        match std::fs::remove_file(&path) {
            Ok(()) => kept.discarded.push((path, victim.len)),
            // Deleted by someone else meanwhile: no longer ours to count.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    Ok(kept)
}

/// The entries to delete, oldest first (by time, then name: names sort by epoch and
/// sequence), so that the rest total at most `max_bytes`. `newest` is never chosen: it
/// was checked to fit alone.
fn over_bound(mut entries: Vec<Entry>, newest: &str, max_bytes: u64) -> Vec<Entry> {
    let mut total: u64 = entries.iter().map(|e| e.len).sum();
    entries.sort_by(|a, b| (a.modified, &a.name).cmp(&(b.modified, &b.name)));
    let mut out = Vec::new();
    for e in entries {
        if total <= max_bytes {
            break;
        }
        if e.name != newest {
            total -= e.len;
            out.push(e);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn entry(secs: u64, name: &str, len: u64) -> Entry {
        Entry {
            modified: SystemTime::UNIX_EPOCH + Duration::from_secs(secs),
            name: name.into(),
            len,
        }
    }

    fn names(v: Vec<Entry>) -> Vec<String> {
        v.into_iter().map(|e| e.name).collect()
    }

    #[test]
    fn the_oldest_go_first_until_the_rest_fits_and_the_newest_never_goes() {
        let e = vec![
            entry(30, "c.batch", 10),
            entry(10, "b.batch", 10),
            entry(10, "a.batch", 10),
            entry(40, "new.batch", 10),
        ];
        assert_eq!(
            names(over_bound(e.clone(), "new.batch", 40)),
            Vec::<String>::new()
        );
        assert_eq!(names(over_bound(e.clone(), "new.batch", 39)), ["a.batch"]);
        assert_eq!(
            names(over_bound(e.clone(), "new.batch", 20)),
            ["a.batch", "b.batch"]
        );
        assert_eq!(
            names(over_bound(e.clone(), "new.batch", 10)),
            ["a.batch", "b.batch", "c.batch"]
        );
        // A clock set back makes the new batch look oldest: it is still kept.
        let back = vec![entry(50, "old.batch", 10), entry(5, "new.batch", 10)];
        assert_eq!(names(over_bound(back, "new.batch", 10)), ["old.batch"]);
    }

    #[test]
    fn the_directory_stays_within_its_bound_and_every_deletion_is_reported() {
        let dir = std::env::temp_dir().join(format!("vedette-rejected-{}", std::process::id()));
        let _ignored = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Not a batch: not ours to delete, not counted.
        std::fs::write(dir.join("NOTES.txt"), vec![b'x'; 500]).unwrap();
        let mut discarded = Vec::new();
        for i in 0..6u8 {
            let k = keep(&dir, &format!("{i:02}.batch"), &[i; 100], 250).unwrap();
            assert_eq!(k.saved, Some(dir.join(format!("{i:02}.batch"))));
            discarded.extend(k.discarded);
        }
        let mut left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        // Same-second mtimes fall back to the names' order.
        assert_eq!(left, ["04.batch", "05.batch", "NOTES.txt"]);
        assert_eq!(std::fs::read(dir.join("05.batch")).unwrap(), [5; 100]);
        let gone: Vec<_> = discarded.iter().map(|(p, n)| (p.clone(), *n)).collect();
        let want: Vec<_> = (0..4)
            .map(|i| (dir.join(format!("{i:02}.batch")), 100))
            .collect();
        assert_eq!(gone, want);
        // A batch over the bound alone is not written, and says so.
        let k = keep(&dir, "big.batch", &[9; 300], 250).unwrap();
        assert_eq!(k.saved, None);
        assert_eq!(k.discarded, [(dir.join("big.batch"), 300)]);
        assert!(!dir.join("big.batch").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
