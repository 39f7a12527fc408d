//! The aggregator's state dir: CA, server certificate, action-signing key, the store.
//!
//! ```text
//! ca.pem  ca.key          the CA that signs agents (key 0600)
//! server.pem server.key   the QUIC server's chain and key (key 0600)
//! action.key action.pub   Ed25519 key that signs actions (PKCS#8, 0600) and its public half
//! events.db               SQLite (WAL)
//! ```

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::identity::Authority;
use crate::identity::token::hex;

/// CA lifetime.
const CA_DAYS: i64 = 3650;
/// Server certificate lifetime.
const SERVER_DAYS: i64 = 825;

/// What `init` made.
#[derive(Debug)]
pub struct Initialized {
    /// SHA-256 of the CA certificate, hex (tokens carry it).
    pub fingerprint: String,
    /// The names in the server certificate.
    pub names: Vec<String>,
}

/// Writes `bytes` to `path` with `mode`, refusing to replace an existing file.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> anyhow::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

/// Creates the CA, the server certificate for `names` (plus localhost and the loopback
/// addresses, so the local demo and tests connect) and the action key under `dir`.
/// Refuses a dir that already holds a CA: a second init would orphan every enrolled agent.
pub fn init(dir: &Path, names: &[String], now_ms: i64) -> anyhow::Result<Initialized> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    if dir.join("ca.key").exists() {
        bail!(
            "{} already holds a CA (ca.key); refusing to replace it",
            dir.display()
        );
    }
    let ca = Authority::create(now_ms, CA_DAYS)?;
    let mut all: Vec<String> = names.to_vec();
    for n in ["localhost", "127.0.0.1", "::1"] {
        if !all.iter().any(|a| a == n) {
            all.push(n.to_owned());
        }
    }
    let (server, server_key) = ca.issue_server(&all, now_ms, SERVER_DAYS)?;
    let rng = ring::rand::SystemRandom::new();
    let action = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| anyhow::anyhow!("generating the action key failed"))?;
    let action_pub = {
        use ring::signature::KeyPair;
        ring::signature::Ed25519KeyPair::from_pkcs8(action.as_ref())
            .map_err(|_| anyhow::anyhow!("reading back the action key failed"))?
            .public_key()
            .as_ref()
            .to_vec()
    };
    write_new(&dir.join("ca.key"), ca.key_pem().as_bytes(), 0o600)?;
    write_new(&dir.join("ca.pem"), ca.cert_pem().as_bytes(), 0o644)?;
    write_new(&dir.join("server.key"), server_key.as_bytes(), 0o600)?;
    // The chain: the agent pins the CA it finds there during enrollment.
    let chain = format!("{}{}", server.cert_pem, ca.cert_pem());
    write_new(&dir.join("server.pem"), chain.as_bytes(), 0o644)?;
    write_new(&dir.join("action.key"), action.as_ref(), 0o600)?;
    write_new(&dir.join("action.pub"), hex(&action_pub).as_bytes(), 0o644)?;
    Ok(Initialized {
        fingerprint: hex(&ca.fingerprint()),
        names: all,
    })
}

/// Paths of the state dir's files.
#[derive(Debug, Clone)]
pub struct StatePaths {
    /// The dir.
    pub dir: PathBuf,
}

impl StatePaths {
    /// The files under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_owned(),
        }
    }

    /// The CA.
    pub fn authority(&self) -> anyhow::Result<Authority> {
        Authority::load(&self.dir).with_context(|| {
            format!(
                "loading the CA from {} (run `vedette-aggregator init` first)",
                self.dir.display()
            )
        })
    }

    /// The server's chain and key, PEM.
    pub fn server_pem(&self) -> anyhow::Result<(String, String)> {
        let read = |n: &str| {
            let p = self.dir.join(n);
            std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))
        };
        Ok((read("server.pem")?, read("server.key")?))
    }

    /// The SQLite database.
    pub fn db(&self) -> PathBuf {
        self.dir.join("events.db")
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn init_writes_keys_0600_and_refuses_a_second_time() {
        let dir = std::env::temp_dir().join(format!("vedette-agg-init-{}", std::process::id()));
        let _ignored = std::fs::remove_dir_all(&dir);
        let out = super::init(&dir, &["agg.example".into()], 1_790_000_000_000).unwrap();
        assert_eq!(out.fingerprint.len(), 64);
        assert!(out.names.contains(&"127.0.0.1".to_owned()));
        for (f, mode) in [
            ("ca.key", 0o600),
            ("server.key", 0o600),
            ("action.key", 0o600),
            ("ca.pem", 0o644),
        ] {
            let m = std::fs::metadata(dir.join(f)).unwrap().permissions().mode();
            assert_eq!(m & 0o777, mode, "{f}");
        }
        let p = super::StatePaths::new(&dir);
        assert_eq!(
            crate::identity::token::hex(&p.authority().unwrap().fingerprint()),
            out.fingerprint
        );
        assert!(super::init(&dir, &[], 1_790_000_000_000).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
