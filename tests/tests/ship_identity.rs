//! Enrollment and the doors it opens and keeps shut, with the real binaries over loopback
//! QUIC and real certificates.

use std::os::unix::fs::PermissionsExt;

use super::support::Scratch;
use super::support::aggregator::{RunningAggregator, enroll, enroll_ok};

#[test]
fn an_agent_enrolls_once_per_token_and_keeps_its_key_private() {
    let scratch = Scratch::new("ship-enroll");
    let agg = RunningAggregator::start(&scratch, "agg");
    let token = agg.token("blue", "1h");
    let dir = scratch.path("agent");
    let id = enroll_ok(&dir, &agg.server(), &token);
    assert!(id.starts_with("agt-"), "{id}");
    let key = std::fs::metadata(dir.join("identity/agent.key")).unwrap();
    assert_eq!(key.permissions().mode() & 0o777, 0o600);
    let info: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("identity/agent.json")).unwrap())
            .unwrap();
    assert_eq!(info["tenant"], "blue");

    // The same token again, from another host: refused, and no identity is written.
    let other = scratch.path("agent2");
    let out = enroll(&other, &agg.server(), &token);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("already used"), "{err}");
    assert!(!other.join("identity/agent.pem").exists());

    // A token whose CA pin is not this aggregator's: the agent refuses the server.
    let foreign = RunningAggregator::start(&scratch, "foreign");
    let foreign_token = foreign.token("blue", "1h");
    let out = enroll(&scratch.path("agent3"), &agg.server(), &foreign_token);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("connecting"), "{err}");
}

#[test]
fn an_expired_token_is_refused() {
    use vedette_aggregator::identity::Token;
    use vedette_aggregator::identity::token::secret_hash;
    use vedette_aggregator::store::Registry;
    use vedette_aggregator::store::sqlite::{SqliteConfig, SqliteStore};

    let scratch = Scratch::new("ship-expired");
    let agg = RunningAggregator::start(&scratch, "agg");
    // Made expired directly in the store, instead of waiting for a TTL to pass.
    let ca = vedette_aggregator::identity::Authority::load(&agg.state).unwrap();
    let token = Token::generate(ca.fingerprint());
    let mut store = SqliteStore::open(agg.db(), SqliteConfig::default()).unwrap();
    store
        .create_token(&token.id, secret_hash(&token.secret), "default", 1_000, 0)
        .unwrap();
    drop(store);
    let dir = scratch.path("agent");
    let out = enroll(&dir, &agg.server(), &token.encode());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("expired"), "{err}");
    assert!(!dir.join("identity/agent.pem").exists());
}
