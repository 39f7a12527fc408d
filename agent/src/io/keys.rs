//! The agent's secret for keyed hashes (redaction), kept in its state dir, mode 0600.

use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Bytes of a key.
const KEY_LEN: usize = 32;

/// Reads the key at `path`, or makes one (from the OS's random source) and writes it with
/// mode 0600. A key file readable by others is refused: anyone with the key can test
/// guesses against the redacted values.
pub fn load_or_create(path: &Path) -> io::Result<Vec<u8>> {
    match std::fs::read(path) {
        Ok(k) => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    format!(
                        "{}: mode {:o}; the key must be 0600",
                        path.display(),
                        mode & 0o777
                    ),
                ));
            }
            if k.len() < KEY_LEN {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("{}: {} bytes, want {KEY_LEN}", path.display(), k.len()),
                ));
            }
            Ok(k)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = random_key()?;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)?;
            f.write_all(&key)?;
            f.sync_all()?;
            Ok(key)
        }
        Err(e) => Err(e),
    }
}

/// A key that lives as long as the process (`normalize` without a state dir).
pub fn random_key() -> io::Result<Vec<u8>> {
    use ring::rand::SecureRandom;
    let mut key = vec![0u8; KEY_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut key)
        .map_err(|_| io::Error::other("the OS random source failed"))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_with_mode_0600_and_read_back() {
        let dir = std::env::temp_dir().join(format!("vedette-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("redaction.key");
        let a = load_or_create(&p).unwrap();
        let b = load_or_create(&p).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            std::fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(load_or_create(&p).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
