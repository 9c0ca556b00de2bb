//! TLS settings (`security.protocol` SSL and SASL_SSL), on rustls.

use std::path::PathBuf;

use crate::security::Secret;

/// Where the certificates that may sign a broker's certificate come from
/// (`ssl.ca.location` / `ssl.truststore.location` in the Java client and librdkafka).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TrustRoots {
    /// The operating system's trust store (rustls-native-certs).
    #[default]
    System,
    /// The Mozilla root program, compiled in (webpki-roots).
    WebPki,
    /// CA certificates in a PEM file.
    PemFile(PathBuf),
    /// CA certificates as PEM text.
    Pem(String),
}

/// PEM data, from a file or inline. Inline PEM of a private key is a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PemSource {
    /// A PEM file.
    File(PathBuf),
    /// PEM text.
    Inline(Secret),
}

/// A client certificate for mutual TLS (`ssl.certificate.location`, `ssl.key.location`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCertificate {
    /// The certificate chain, leaf first (PEM).
    pub chain: PemSource,
    /// The private key: PKCS#8, PKCS#1 (RSA) or SEC1 (EC), in PEM.
    pub key: PemSource,
}

/// TLS settings of a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// Trusted roots (default: the system's).
    pub trust: TrustRoots,
    /// A client certificate, for brokers that require one.
    pub client_certificate: Option<ClientCertificate>,
    /// Whether the broker's certificate must name the host the client knows it by (its
    /// advertised host name, even when [`crate::BrokerAddressMap`] dials another address).
    /// Default true; turning it off (the Java client's empty
    /// `ssl.endpoint.identification.algorithm`) accepts any certificate the trusted roots
    /// signed, which lets a machine in the middle holding such a certificate read everything.
    pub verify_server_name: bool,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            trust: TrustRoots::System,
            client_certificate: None,
            verify_server_name: true,
        }
    }
}
