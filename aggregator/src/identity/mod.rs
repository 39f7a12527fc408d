//! Identity: the certificate authority, enrollment tokens, and reading who an agent is
//! from its certificate.

pub mod authority;
pub mod server_cert;
pub mod token;

pub use authority::{Authority, CertIdentity, IdentityError, Issued, cert_identity};
pub use server_cert::ServerCertFacts;
pub use token::Token;
