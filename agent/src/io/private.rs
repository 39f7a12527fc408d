//! What the agent keeps for itself is kept from other local users. Its state dir and spool
//! hold copies of what it read: authentication and audit records that only root (or
//! `adm`) may read where they come from, with the arguments of every command run. Under
//! the usual umask (022) they were created readable by everyone on the host.

use std::io;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Directories the agent creates: its user only.
const DIR_MODE: u32 = 0o700;
/// Files in them: its user only.
pub(crate) const FILE_MODE: u32 = 0o600;

/// Creates `dir` and any missing parents for the agent's user alone. An existing
/// directory is left as it is (it may be shared, or set up by a package): see [`exposed`].
pub(crate) fn create_dir(dir: &Path) -> io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// Creates `dir`, a directory of the agent's own (the spool), and takes back access
/// others were given, as an older agent's umask-made directory gave it.
pub(crate) fn own_dir(dir: &Path) -> io::Result<()> {
    create_dir(dir)?;
    let mode = std::fs::metadata(dir)?.permissions().mode();
    if mode & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(DIR_MODE))?;
    }
    Ok(())
}

/// Options that create a file for the agent's user alone.
pub(crate) fn file_options() -> std::fs::OpenOptions {
    let mut o = std::fs::OpenOptions::new();
    o.mode(FILE_MODE);
    o
}

/// The mode of `dir` when other users may enter it, for a warning at start.
pub fn exposed(dir: &Path) -> Option<u32> {
    let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_directories_and_files_are_the_agents_alone_and_its_own_dirs_are_taken_back() {
        let base = std::env::temp_dir().join(format!("vedette-private-{}", std::process::id()));
        let _ignored = std::fs::remove_dir_all(&base);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        create_dir(&base.join("state/spool")).unwrap();
        assert_eq!(mode(&base.join("state")), 0o700, "parents too");
        assert_eq!(mode(&base.join("state/spool")), 0o700);
        assert_eq!(exposed(&base.join("state")), None);
        let f = base.join("state/spool/seg");
        file_options()
            .write(true)
            .create_new(true)
            .open(&f)
            .unwrap();
        assert_eq!(mode(&f), 0o600);

        // A shared or packaged directory is not changed, only reported; the spool is ours.
        let shared = base.join("shared");
        std::fs::create_dir(&shared).unwrap();
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
        create_dir(&shared).unwrap();
        assert_eq!(exposed(&shared), Some(0o755));
        own_dir(&shared).unwrap();
        assert_eq!(mode(&shared), 0o700);
        std::fs::remove_dir_all(&base).unwrap();
    }
}
