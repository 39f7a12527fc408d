//! Atomic replacement of the checkpoint file: after a crash at any point the file holds
//! either the old checkpoints or the new ones, never a mix or nothing.

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
/// rename itself may not survive a power loss).
pub(super) fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let tmp = temp_path(path);
    let mut f = File::create(&tmp)?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    File::open(dir)?.sync_all()
}
