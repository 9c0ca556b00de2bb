//! SASL on the mock brokers: [`SaslServerConfig`] and the SASL methods of [`MockCluster`] and
//! [`MockBroker`]. The server side (state machine and mechanisms) is `handlers/sasl.rs`; the
//! behaviour is described in the module docs of [`crate::mock`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::handlers::sasl::SaslSetup;
use super::{MockBroker, MockCluster};

/// The SASL mechanisms the mock broker implements, in the order [`SaslServerConfig::default`]
/// enables them.
pub const SASL_MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];

/// The SASL configuration of a mock cluster ([`MockCluster::enable_sasl`]), like a Kafka
/// `SASL_PLAINTEXT` listener's.
#[derive(Clone)]
pub struct SaslServerConfig {
    /// The enabled mechanisms (`sasl.enabled.mechanisms`), listed in every SaslHandshake
    /// response. A handshake naming another one gets `UNSUPPORTED_SASL_MECHANISM`. Names the
    /// mock does not implement (e.g. `"GSSAPI"`) may be listed: choosing one fails at the
    /// first SaslAuthenticate.
    pub mechanisms: Vec<String>,
    /// User names and passwords for PLAIN and SCRAM (OAUTHBEARER takes any valid token).
    pub users: Vec<(String, String)>,
    /// The SCRAM iteration count sent to clients (default 4096, Kafka's minimum).
    pub scram_iterations: u32,
    /// KIP-368 `connections.max.reauth.ms`: the session lifetime returned as
    /// `session_lifetime_ms` by SaslAuthenticate v1+ when an authentication succeeds (for
    /// OAUTHBEARER at most the token's remaining lifetime); a request other than SaslHandshake
    /// after it ran out closes the connection. `None` (or zero): sessions never expire.
    pub session_lifetime: Option<Duration>,
}

impl Default for SaslServerConfig {
    /// Every mechanism of [`SASL_MECHANISMS`], no users, 4096 iterations, no session lifetime.
    fn default() -> Self {
        SaslServerConfig {
            mechanisms: SASL_MECHANISMS.iter().map(|m| (*m).to_owned()).collect(),
            users: Vec::new(),
            scram_iterations: 4096,
            session_lifetime: None,
        }
    }
}

impl SaslServerConfig {
    /// Only these mechanisms, no users, 4096 iterations, no session lifetime.
    pub fn new(mechanisms: &[&str]) -> Self {
        SaslServerConfig {
            mechanisms: mechanisms.iter().map(|m| (*m).to_owned()).collect(),
            ..Default::default()
        }
    }

    /// Adds a user.
    #[must_use]
    pub fn user(mut self, name: &str, password: &str) -> Self {
        self.users.push((name.to_owned(), password.to_owned()));
        self
    }

    /// Sets the session lifetime.
    #[must_use]
    pub fn session_lifetime(mut self, lifetime: Duration) -> Self {
        self.session_lifetime = Some(lifetime);
        self
    }

    /// Sets the SCRAM iteration count.
    #[must_use]
    pub fn scram_iterations(mut self, iterations: u32) -> Self {
        self.scram_iterations = iterations;
        self
    }
}

impl fmt::Debug for SaslServerConfig {
    /// Passwords are not shown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let users: Vec<&str> = self.users.iter().map(|(u, _)| u.as_str()).collect();
        f.debug_struct("SaslServerConfig")
            .field("mechanisms", &self.mechanisms)
            .field("users", &users)
            .field("scram_iterations", &self.scram_iterations)
            .field("session_lifetime", &self.session_lifetime)
            .finish()
    }
}

impl MockCluster {
    /// Requires SASL authentication (`SASL_PLAINTEXT`) on every broker, for connections
    /// accepted from now on (open ones keep what they had). Replaces an earlier configuration.
    ///
    /// # Panics
    /// If the SCRAM server cannot be set up (not expected).
    pub fn enable_sasl(&self, config: SaslServerConfig) {
        let setup = Arc::new(SaslSetup::new(config));
        self.shared.with(|s| s.sasl = Some(setup));
    }

    /// Turns SASL off for connections accepted from now on (open ones keep their state).
    pub fn disable_sasl(&self) {
        self.shared.with(|s| s.sasl = None);
    }

    /// Successful SASL authentications and re-authentications on all brokers.
    pub fn authentications(&self) -> usize {
        self.shared
            .with(|s| s.brokers.iter().map(|b| b.authentications).sum())
    }

    /// The extensions (key, value; without `auth`) of every OAUTHBEARER initial response that
    /// parsed, in arrival order, whether its token was accepted or not.
    pub fn oauth_extensions(&self) -> Vec<BTreeMap<String, String>> {
        self.shared.with(|s| s.oauth_extensions.clone())
    }
}

impl MockBroker {
    /// Successful SASL authentications and re-authentications on this broker.
    pub fn authentications(&self) -> usize {
        self.shared.with(|s| {
            s.brokers
                .get(self.id as usize)
                .map_or(0, |b| b.authentications)
        })
    }
}
