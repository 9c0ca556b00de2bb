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

mod oauthbearer;
mod plain;
mod refreshing;
mod scram;
mod unsecured_jws;

pub use refreshing::RefreshingTokenProvider;
pub use unsecured_jws::UnsecuredJwsProvider;

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

/// One side of a SASL exchange, sans-io: the connection sends [`Authenticator::initial`] in the
/// first SaslAuthenticate request (after SaslHandshake v1 named the mechanism, KIP-152), then
/// feeds each answer's `auth_bytes` to [`Authenticator::step`] and sends what it returns, until
/// `step` returns `None`.
///
/// Every failure is an [`Error::Authentication`] naming the broker and the mechanism; the reason
/// never holds a password, a token or a key.
pub(crate) trait Authenticator: Send {
    /// The client's first message (the SaslAuthenticate request's `auth_bytes`). Called once.
    fn initial(&mut self) -> Result<Vec<u8>, Error>;

    /// Takes the server's answer to the last message: `Some(next client message)`, or `None`
    /// when the exchange is complete (and, for SCRAM, the server's signature verified).
    fn step(&mut self, server: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Whether the exchange completed successfully.
    fn is_complete(&self) -> bool;
}

/// The [`Authenticator`] for `config.mechanism`, talking to `broker` (used in errors).
/// OAUTHBEARER needs `token` (ask the [`TokenProvider`] first; async work stays out of the
/// state machines); the other mechanisms ignore it.
///
/// # Errors
/// [`Error::Authentication`] when the settings cannot make a valid first message: an empty
/// user name or password, a NUL in PLAIN credentials, no token or a malformed token or
/// extension for OAUTHBEARER.
pub(crate) fn authenticator(
    config: &SaslConfig,
    token: Option<OAuthToken>,
    broker: &str,
) -> Result<Box<dyn Authenticator>, Error> {
    match config.mechanism {
        SaslMechanism::Plain => Ok(Box::new(plain::PlainAuthenticator::new(config, broker)?)),
        SaslMechanism::ScramSha256 | SaslMechanism::ScramSha512 => {
            Ok(Box::new(scram::ScramAuthenticator::new(config, broker)?))
        }
        SaslMechanism::OAuthBearer => {
            let token = token.ok_or_else(|| {
                auth_error(
                    broker,
                    SaslMechanism::OAuthBearer,
                    "no token: the token provider was not asked for one",
                )
            })?;
            Ok(Box::new(oauthbearer::OAuthBearerAuthenticator::new(
                token, broker,
            )?))
        }
    }
}

/// An [`Error::Authentication`].
pub(crate) fn auth_error(
    broker: &str,
    mechanism: SaslMechanism,
    reason: impl Into<String>,
) -> Error {
    Error::Authentication {
        broker: broker.to_owned(),
        mechanism: mechanism.name().to_owned(),
        reason: reason.into(),
    }
}

/// Text from a server, made fit for an error message: control characters escaped, at most
/// 200 characters.
pub(crate) fn sanitize_server_text(text: &str) -> String {
    const MAX: usize = 200;
    let mut out = String::new();
    for (n, c) in text.chars().enumerate() {
        if n == MAX {
            out.push_str("...");
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factory_picks_the_mechanism_and_names_broker_and_mechanism_in_errors() {
        let mut a = authenticator(&SaslConfig::plain("u", "p"), None, "b:9092").unwrap();
        assert_eq!(a.initial().unwrap(), b"\0u\0p");
        let mut a = authenticator(&SaslConfig::scram_sha512("u", "p"), None, "b:9092").unwrap();
        assert!(a.initial().unwrap().starts_with(b"n,,n=u,r="));
        let provider: Arc<dyn TokenProvider> = Arc::new(UnsecuredJwsProvider::new("alice"));
        match authenticator(&SaslConfig::oauthbearer(provider), None, "b:9092").err() {
            Some(Error::Authentication {
                broker, mechanism, ..
            }) => {
                assert_eq!(broker, "b:9092");
                assert_eq!(mechanism, "OAUTHBEARER");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn config_debug_hides_the_password() {
        let c = SaslConfig::scram_sha256("alice", "hunter2-secret");
        let text = format!("{c:?}");
        assert!(text.contains("alice"), "{text}");
        assert!(!text.contains("hunter2-secret"), "{text}");
    }

    #[test]
    fn server_text_is_sanitized() {
        assert_eq!(sanitize_server_text("a\nb"), "a\\nb");
        assert_eq!(sanitize_server_text(&"x".repeat(300)).len(), 203);
    }
}
