//! One-time enrollment tokens.
//!
//! `vdt1.<id>.<secret>.<ca-sha256>`: the id names the token's row, the secret proves
//! possession (only its SHA-256 is stored), and the CA fingerprint lets the agent pin the
//! aggregator during enrollment without a second argument. The agent sends `<id>.<secret>`
//! only: the pin is its own business.

use std::fmt::Write as _;

use ring::rand::{SecureRandom, SystemRandom};

/// Version prefix of the token format.
const PREFIX: &str = "vdt1";

/// A parsed token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Names the token (16 hex digits).
    pub id: String,
    /// Proves possession.
    pub secret: [u8; 16],
    /// SHA-256 of the CA certificate (DER) the agent must find in the server's chain.
    pub ca_pin: [u8; 32],
}

/// Why a token string is not a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenFormatError {
    /// Wrong number of parts or prefix.
    #[error("not a Vedette enrollment token (expected vdt1.<id>.<secret>.<ca-sha256>)")]
    Shape,
    /// A part is not the hex it should be.
    #[error("enrollment token part `{0}` is not valid hex of the right length")]
    Hex(&'static str),
}

impl Token {
    /// A fresh token for the CA whose fingerprint is `ca_pin`.
    pub fn generate(ca_pin: [u8; 32]) -> Self {
        let rng = SystemRandom::new();
        let mut id = [0u8; 8];
        let mut secret = [0u8; 16];
        rng.fill(&mut id).expect("system randomness");
        rng.fill(&mut secret).expect("system randomness");
        Self {
            id: hex(&id),
            secret,
            ca_pin,
        }
    }

    /// The token string handed to the operator.
    pub fn encode(&self) -> String {
        format!(
            "{PREFIX}.{}.{}.{}",
            self.id,
            hex(&self.secret),
            hex(&self.ca_pin)
        )
    }

    /// What the agent sends the aggregator: id and secret.
    pub fn credential(&self) -> String {
        format!("{}.{}", self.id, hex(&self.secret))
    }

    /// Parses a token string.
    pub fn parse(s: &str) -> Result<Self, TokenFormatError> {
        let parts: Vec<&str> = s.trim().split('.').collect();
        let [PREFIX, id, secret, pin] = parts[..] else {
            return Err(TokenFormatError::Shape);
        };
        let (id, secret) = parse_credential(&format!("{id}.{secret}"))?;
        Ok(Self {
            id,
            secret,
            ca_pin: unhex(pin).ok_or(TokenFormatError::Hex("ca-sha256"))?,
        })
    }
}

/// Parses `<id>.<secret>` as the agent sends it.
pub fn parse_credential(s: &str) -> Result<(String, [u8; 16]), TokenFormatError> {
    let (id, secret) = s.split_once('.').ok_or(TokenFormatError::Shape)?;
    let _: [u8; 8] = unhex(id).ok_or(TokenFormatError::Hex("id"))?;
    let secret = unhex(secret).ok_or(TokenFormatError::Hex("secret"))?;
    Ok((id.to_ascii_lowercase(), secret))
}

/// What the registry stores instead of the secret.
pub fn secret_hash(secret: &[u8; 16]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, secret);
    d.as_ref().try_into().expect("SHA-256 is 32 bytes")
}

/// Lower-case hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        write!(s, "{b:02x}").expect("writing to a String");
    }
    s
}

/// Exactly `N` bytes of hex, any case.
pub fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 || !s.is_ascii() {
        return None;
    }
    let mut out = [0u8; N];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_round_trips_and_the_credential_omits_the_pin() {
        let t = Token::generate([7; 32]);
        let s = t.encode();
        assert_eq!(Token::parse(&s).unwrap(), t);
        let (id, secret) = parse_credential(&t.credential()).unwrap();
        assert_eq!((id, secret), (t.id.clone(), t.secret));
        assert!(!t.credential().contains(&hex(&[7; 32])));
        assert_ne!(Token::generate([7; 32]).secret, t.secret);
    }

    #[test]
    fn malformed_tokens_are_errors() {
        assert_eq!(Token::parse("hello"), Err(TokenFormatError::Shape));
        assert_eq!(
            Token::parse("vdt1.zz.00.00"),
            Err(TokenFormatError::Hex("id"))
        );
        let t = Token::generate([1; 32]).encode();
        assert_eq!(
            Token::parse(&t[..t.len() - 2]),
            Err(TokenFormatError::Hex("ca-sha256"))
        );
        assert_eq!(
            Token::parse(&t.replacen("vdt1", "vdt2", 1)),
            Err(TokenFormatError::Shape)
        );
    }
}
