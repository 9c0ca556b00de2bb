//! SASL authentication (KIP-43, KIP-152): mechanisms PLAIN (RFC 4616), SCRAM-SHA-256 and
//! SCRAM-SHA-512 (RFC 5802, RFC 7677, KIP-84) and OAUTHBEARER (RFC 7628, KIP-255, KIP-342).

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;

use crate::error::Error;
use crate::security::Secret;

/// A SASL mechanism (`sasl.mechanism`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN`: user name and password in the clear (use it over TLS only).
    Plain,
    /// `SCRAM-SHA-256`.
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
    /// `OAUTHBEARER`: a bearer token from a [`TokenProvider`].
    OAuthBearer,
}

impl SaslMechanism {
    /// The mechanism's name as brokers list it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

impl fmt::Display for SaslMechanism {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SaslMechanism {
    type Err = Error;

    /// Parses a `sasl.mechanism` value (case-insensitive).
    ///
    /// # Errors
    /// [`Error::Config`] naming the accepted values.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAIN" => Ok(SaslMechanism::Plain),
            "SCRAM-SHA-256" => Ok(SaslMechanism::ScramSha256),
            "SCRAM-SHA-512" => Ok(SaslMechanism::ScramSha512),
            "OAUTHBEARER" => Ok(SaslMechanism::OAuthBearer),
            other => Err(Error::Config(format!(
                "unknown SASL mechanism {other:?} (expected PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 or OAUTHBEARER)"
            ))),
        }
    }
}

/// An OAuth bearer token and what KIP-255/KIP-342 send with it.
#[derive(Debug, Clone)]
pub struct OAuthToken {
    /// The token (a JWS compact serialization, usually).
    pub value: Secret,
    /// The principal it names (for logs; the broker reads it from the token).
    pub principal: String,
    /// When it expires, in milliseconds since the Unix epoch.
    pub expires_at_ms: i64,
    /// SASL extensions sent with it (KIP-342), e.g. a Confluent Cloud `logicalCluster`.
    pub extensions: BTreeMap<String, String>,
}

/// The future of [`TokenProvider::token`].
pub type TokenFuture<'a> = Pin<Box<dyn Future<Output = Result<OAuthToken, Error>> + Send + 'a>>;

/// Where OAUTHBEARER tokens come from. Called when a connection authenticates and ahead of a
/// token's expiry; it runs on the runtime, so it must not block.
pub trait TokenProvider: Send + Sync + fmt::Debug {
    /// A valid token.
    fn token(&self) -> TokenFuture<'_>;
}

/// SASL settings of a client.
#[derive(Clone)]
pub struct SaslConfig {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name (PLAIN, SCRAM).
    pub username: String,
    /// The password (PLAIN, SCRAM).
    pub password: Secret,
    /// The token provider (OAUTHBEARER).
    pub token_provider: Option<Arc<dyn TokenProvider>>,
    /// The highest SCRAM iteration count accepted from a broker: each iteration costs one HMAC,
    /// so a broker (or a machine in the middle) naming billions would stall the client. Default
    /// 16,384 (Kafka's own maximum for SCRAM credentials).
    pub max_scram_iterations: u32,
}

impl fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &self.password)
            .field("token_provider", &self.token_provider)
            .field("max_scram_iterations", &self.max_scram_iterations)
            .finish()
    }
}

impl SaslConfig {
    fn with_password(mechanism: SaslMechanism, username: &str, password: Secret) -> SaslConfig {
        SaslConfig {
            mechanism,
            username: username.to_owned(),
            password,
            token_provider: None,
            max_scram_iterations: 16_384,
        }
    }

    /// PLAIN with these credentials.
    pub fn plain(username: &str, password: impl Into<Secret>) -> SaslConfig {
        SaslConfig::with_password(SaslMechanism::Plain, username, password.into())
    }

    /// SCRAM-SHA-256 with these credentials.
    pub fn scram_sha256(username: &str, password: impl Into<Secret>) -> SaslConfig {
        SaslConfig::with_password(SaslMechanism::ScramSha256, username, password.into())
    }

    /// SCRAM-SHA-512 with these credentials.
    pub fn scram_sha512(username: &str, password: impl Into<Secret>) -> SaslConfig {
        SaslConfig::with_password(SaslMechanism::ScramSha512, username, password.into())
    }

    /// OAUTHBEARER with tokens from `provider`.
    pub fn oauthbearer(provider: Arc<dyn TokenProvider>) -> SaslConfig {
        SaslConfig {
            mechanism: SaslMechanism::OAuthBearer,
            username: String::new(),
            password: Secret::default(),
            token_provider: Some(provider),
            max_scram_iterations: 16_384,
        }
    }
}
