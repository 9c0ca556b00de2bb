//! Security settings of a connection: the security protocol (the Java client's
//! `security.protocol`), TLS and SASL, and [`Secret`], the wrapper that keeps passwords, tokens
//! and keys out of `Debug` output, logs and errors.

use std::fmt;
use std::str::FromStr;

use crate::error::Error;
use crate::sasl::SaslConfig;
use crate::tls::TlsConfig;

/// How connections to brokers are secured (`security.protocol`, the names the Java client and
/// librdkafka use).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SecurityProtocol {
    /// Plain TCP.
    #[default]
    Plaintext,
    /// TLS.
    Ssl,
    /// SASL authentication over plain TCP.
    SaslPlaintext,
    /// SASL authentication over TLS.
    SaslSsl,
}

impl SecurityProtocol {
    /// Whether connections use TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether connections authenticate with SASL.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    /// The name as in `security.protocol`: `PLAINTEXT`, `SSL`, `SASL_PLAINTEXT`, `SASL_SSL`.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for SecurityProtocol {
    type Err = Error;

    /// Parses a `security.protocol` value (case-insensitive).
    ///
    /// # Errors
    /// [`Error::Config`] naming the four accepted values.
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Ok(SecurityProtocol::Plaintext),
            "SSL" => Ok(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Ok(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Ok(SecurityProtocol::SaslSsl),
            other => Err(Error::Config(format!(
                "unknown security protocol {other:?} (expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL)"
            ))),
        }
    }
}

/// A password, token or private key: its `Debug` and `Display` print `[redacted]`, so it can
/// sit in configuration structs that are logged or printed. Read it with
/// [`Secret::expose`].
///
/// ```
/// use kafkawire_client::Secret;
/// let s = Secret::from("hunter2");
/// assert_eq!(format!("{s:?} {s}"), "Secret([redacted]) [redacted]");
/// assert_eq!(s.expose(), "hunter2");
/// ```
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret value itself; never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Whether the value is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Secret {
    fn from(s: String) -> Secret {
        Secret(s)
    }
}

impl From<&str> for Secret {
    fn from(s: &str) -> Secret {
        Secret(s.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// The security of every connection a [`crate::Client`] opens.
#[derive(Debug, Clone, Default)]
pub struct SecurityConfig {
    /// `security.protocol` (default `PLAINTEXT`).
    pub protocol: SecurityProtocol,
    /// TLS settings, used when the protocol is `SSL` or `SASL_SSL`.
    pub tls: TlsConfig,
    /// SASL settings, required when the protocol is `SASL_PLAINTEXT` or `SASL_SSL`.
    pub sasl: Option<SaslConfig>,
}

impl SecurityConfig {
    /// Checks that the parts fit together: SASL settings for a SASL protocol (and none for the
    /// others).
    ///
    /// # Errors
    /// [`Error::Config`] saying what is missing or superfluous.
    pub fn validate(&self) -> Result<(), Error> {
        match (self.protocol.uses_sasl(), &self.sasl) {
            (true, None) => Err(Error::Config(format!(
                "security protocol {} needs SASL settings (a mechanism and credentials)",
                self.protocol
            ))),
            (false, Some(s)) => Err(Error::Config(format!(
                "SASL mechanism {} is set, but security protocol {} does not use SASL (use SASL_SSL or SASL_PLAINTEXT)",
                s.mechanism, self.protocol
            ))),
            _ => Ok(()),
        }
    }
}
