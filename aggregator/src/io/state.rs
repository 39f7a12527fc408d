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

use crate::identity::authority::cert_der_from_pem;
use crate::identity::token::hex;
use crate::identity::{Authority, ServerCertFacts};

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
    // The aggregator's user alone: the database holds every agent's events.
    {
        use std::os::unix::fs::DirBuilderExt;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
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

/// A server certificate renewed by [`renew_server_if_due`].
#[derive(Debug)]
pub struct RenewedServer {
    /// The names it carries (those of the one it replaced).
    pub names: Vec<String>,
    /// The expiry of the one it replaced, ms since the epoch.
    pub old_not_after_ms: i64,
    /// Its own expiry, ms since the epoch.
    pub not_after_ms: i64,
}

/// Renews the server certificate under `dir` when it is due at `now_ms` (see
/// [`ServerCertFacts::renewal_due`]): a new key and a certificate for the same names from
/// the same CA, so agents, which pin the CA, take it without a change. `None` when it is
/// not due. Crash-safe with [`finish_interrupted_renewal`] at start.
pub fn renew_server_if_due(dir: &Path, now_ms: i64) -> anyhow::Result<Option<RenewedServer>> {
    let pem_path = dir.join("server.pem");
    let chain = std::fs::read_to_string(&pem_path)
        .with_context(|| format!("reading {}", pem_path.display()))?;
    let der = cert_der_from_pem(&chain)
        .with_context(|| format!("{}: no certificate in it", pem_path.display()))?;
    let facts = ServerCertFacts::of(&der).with_context(|| pem_path.display().to_string())?;
    if !facts.renewal_due(now_ms) {
        return Ok(None);
    }
    let ca = StatePaths::new(dir).authority()?;
    let (server, key) = ca.issue_server(&facts.names, now_ms, SERVER_DAYS)?;
    let chain = format!("{}{}", server.cert_pem, ca.cert_pem());
    // Both written aside and synced, then the key moved in, then the chain: a crash
    // between the two moves leaves `server.pem.new` alone, which the next start moves in
    // (a `server.key.new` still there means neither moved: the old pair is whole).
    let (key_new, pem_new) = (dir.join("server.key.new"), dir.join("server.pem.new"));
    for p in [&key_new, &pem_new] {
        remove_if_there(p)?;
    }
    write_new(&key_new, key.as_bytes(), 0o600)?;
    write_new(&pem_new, chain.as_bytes(), 0o644)?;
    move_in(&key_new, &dir.join("server.key"))?;
    move_in(&pem_new, &pem_path)?;
    sync_dir(dir)?;
    Ok(Some(RenewedServer {
        names: facts.names,
        old_not_after_ms: facts.not_after_ms,
        not_after_ms: server.not_after_ms,
    }))
}

/// Completes or undoes a renewal a crash interrupted (see [`renew_server_if_due`]); says
/// what it did, if anything.
pub fn finish_interrupted_renewal(dir: &Path) -> anyhow::Result<Option<&'static str>> {
    let (key_new, pem_new) = (dir.join("server.key.new"), dir.join("server.pem.new"));
    if key_new.exists() {
        // Nothing was moved in: the pair in use is whole.
        remove_if_there(&key_new)?;
        remove_if_there(&pem_new)?;
        return Ok(Some(
            "an interrupted server certificate renewal was dropped",
        ));
    }
    if pem_new.exists() {
        // The new key is in: its certificate must follow.
        move_in(&pem_new, &dir.join("server.pem"))?;
        sync_dir(dir)?;
        return Ok(Some(
            "an interrupted server certificate renewal was completed",
        ));
    }
    Ok(None)
}

fn remove_if_there(p: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).with_context(|| format!("removing {}", p.display()))
        }
        _ => Ok(()),
    }
}

fn move_in(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::rename(from, to)
        .with_context(|| format!("moving {} to {}", from.display(), to.display()))
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
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

    /// Creates the database file for the aggregator's user alone if it is missing, before
    /// SQLite would create it under the umask (0644): its WAL and shared-memory files take
    /// its mode.
    pub fn create_private_db(&self) -> anyhow::Result<()> {
        let p = self.db();
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&p)
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                Err(e).with_context(|| format!("creating {}", p.display()))
            }
            _ => Ok(()),
        }
    }

    /// The dir's mode when other users may enter it, for a warning at start.
    pub fn exposed(&self) -> Option<u32> {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&self.dir).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
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
        let dir_mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(
            dir_mode & 0o777,
            0o700,
            "the state dir is the aggregator's alone"
        );
        let p = super::StatePaths::new(&dir);
        assert_eq!(p.exposed(), None);
        p.create_private_db().unwrap();
        p.create_private_db().unwrap();
        for (f, mode) in [
            ("ca.key", 0o600),
            ("server.key", 0o600),
            ("action.key", 0o600),
            ("ca.pem", 0o644),
            ("events.db", 0o600),
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

    const DAY: i64 = 86_400_000;

    fn public_key_of_cert(chain: &str) -> Vec<u8> {
        let der = crate::identity::authority::cert_der_from_pem(chain).unwrap();
        let (_, cert) = x509_parser::parse_x509_certificate(&der).unwrap();
        cert.public_key().raw.to_vec()
    }

    fn public_key_of_key(key: &str) -> Vec<u8> {
        use rcgen::PublicKeyData;
        rcgen::KeyPair::from_pem(key)
            .unwrap()
            .subject_public_key_info()
    }

    /// The server certificate `init` made 600 days ago (of 825) is renewed for the same
    /// names by the same CA with a new key, once; a crash between its two file moves is
    /// completed, or undone, at the next start.
    #[test]
    fn the_server_certificate_is_renewed_in_its_last_third() {
        let dir = std::env::temp_dir().join(format!("vedette-agg-renew-{}", std::process::id()));
        let _ignored = std::fs::remove_dir_all(&dir);
        let now = 1_790_000_000_000;
        super::init(&dir, &["agg.example".into()], now - 600 * DAY).unwrap();
        let p = super::StatePaths::new(&dir);
        let (old_chain, old_key) = p.server_pem().unwrap();
        let ca_before = std::fs::read(dir.join("ca.pem")).unwrap();
        assert!(
            super::renew_server_if_due(&dir, now - 300 * DAY)
                .unwrap()
                .is_none(),
            "not due with two thirds left"
        );
        let renewed = super::renew_server_if_due(&dir, now).unwrap().expect("due");
        assert_eq!(
            renewed.names,
            ["agg.example", "localhost", "127.0.0.1", "::1"]
        );
        assert!(renewed.not_after_ms >= now + 824 * DAY);
        assert!(renewed.old_not_after_ms < renewed.not_after_ms);
        let (chain, key) = p.server_pem().unwrap();
        assert_ne!((&chain, &key), (&old_chain, &old_key));
        assert_eq!(
            public_key_of_cert(&chain),
            public_key_of_key(&key),
            "a matching pair"
        );
        assert_eq!(std::fs::read(dir.join("ca.pem")).unwrap(), ca_before);
        let ca = p.authority().unwrap();
        assert!(chain.ends_with(ca.cert_pem()), "the chain ends at the CA");
        crate::io::tls::server_config(&chain, &key, ca.cert_pem()).expect("it serves");
        let mode = std::fs::metadata(dir.join("server.key"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert!(
            super::renew_server_if_due(&dir, now).unwrap().is_none(),
            "once"
        );
        assert_eq!(super::finish_interrupted_renewal(&dir).unwrap(), None);

        // A crash after the key moved in: the chain waits aside, and is moved in.
        std::fs::write(dir.join("server.pem.new"), &old_chain).unwrap();
        assert!(
            super::finish_interrupted_renewal(&dir)
                .unwrap()
                .unwrap()
                .contains("completed")
        );
        assert_eq!(p.server_pem().unwrap().0, old_chain);
        // A crash before either moved: both aside, the pair in use stays.
        std::fs::write(dir.join("server.key.new"), "x").unwrap();
        std::fs::write(dir.join("server.pem.new"), "y").unwrap();
        assert!(
            super::finish_interrupted_renewal(&dir)
                .unwrap()
                .unwrap()
                .contains("dropped")
        );
        assert!(!dir.join("server.key.new").exists() && !dir.join("server.pem.new").exists());
        assert_eq!(p.server_pem().unwrap(), (old_chain, key));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
