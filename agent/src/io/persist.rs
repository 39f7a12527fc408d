//! Atomic replacement of a state file (tail checkpoints, the journal cursor, the first-seen
//! baseline): after a crash at any point the file holds either the old state or the new
//! one, never a mix or nothing.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The hidden temp file beside `path` (same directory, so the rename is atomic; hidden, so
/// `*` patterns over the directory never tail it).
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `text` to `path`: temp file, fsync, rename over, fsync the directory (else the
/// rename itself may not survive a power loss). Without `sync` the file still replaces
/// the old one atomically for any crash of the process (the kernel has the bytes), just
/// not for a power loss; that costs microseconds instead of milliseconds.
pub(crate) fn write_atomic(path: &Path, text: &str, sync: bool) -> io::Result<()> {
    let tmp = temp_path(path);
    let written = super::private::file_options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&tmp)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            if sync {
                f.sync_all()?;
            }
            Ok(())
        });
    if let Err(e) = written {
        // A partial copy left on a full disk would hold space the next try needs.
        std::fs::remove_file(&tmp).ok();
        return Err(e);
    }
    std::fs::rename(&tmp, path)?;
    if !sync {
        return Ok(());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
