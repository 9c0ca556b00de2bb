//! TLS settings (`security.protocol` SSL and SASL_SSL) and the [`TlsConnector`] that applies
//! them, on rustls.
//!
//! # Crypto provider
//! rustls leaves the cryptography to a [`CryptoProvider`]. The one a client uses is, in order:
//! 1. [`TlsConfig::crypto_provider`], when set;
//! 2. rustls's process-wide default, when the application installed one
//!    ([`CryptoProvider::install_default`]: aws-lc-rs for FIPS, or any other provider);
//! 3. *ring*, built in with the cargo feature `tls-ring` (on in the `kafkawire` CLI, off in the
//!    library crates: ring compiles C, and the default build needs no C compiler).
//!
//! With none of them, asking for TLS fails with [`Error::Config`] saying so, before any
//! connection is made. [`rustls`] is re-exported here so that an application names the same
//! version of its types.
//!
//! The broker's certificate is verified against the configured roots and against the name the
//! client knows the broker by: its advertised host (or the bootstrap host as configured), also
//! when a [`crate::BrokerAddressMap`] dials another address. Failures are [`Error::Tls`] in
//! plain words: an untrusted issuer, a name mismatch (both names), an expired certificate, a
//! broker that does not speak TLS on the port, a client certificate the broker requires or
//! rejects. They are not retriable: the same settings fail the same way.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::{ResolvesClientCert, WebPkiServerVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::{self, PemObject};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::error::Error;
use crate::security::Secret;

pub use rustls;

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
///
/// Two configurations are equal when their settings are and they name the same crypto provider
/// object (or none).
#[derive(Clone)]
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
    /// The rustls crypto provider for this client's connections. `None` (the default): the
    /// process default if the application installed one, else *ring* with the `tls-ring`
    /// feature (see the [module documentation](self)).
    pub crypto_provider: Option<Arc<CryptoProvider>>,
}

impl Default for TlsConfig {
    fn default() -> Self {
        TlsConfig {
            trust: TrustRoots::System,
            client_certificate: None,
            verify_server_name: true,
            crypto_provider: None,
        }
    }
}

impl PartialEq for TlsConfig {
    fn eq(&self, other: &Self) -> bool {
        let same_provider = match (&self.crypto_provider, &other.crypto_provider) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        };
        self.trust == other.trust
            && self.client_certificate == other.client_certificate
            && self.verify_server_name == other.verify_server_name
            && same_provider
    }
}

impl Eq for TlsConfig {}

impl fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConfig")
            .field("trust", &self.trust)
            .field("client_certificate", &self.client_certificate)
            .field("verify_server_name", &self.verify_server_name)
            .field(
                "crypto_provider",
                &self
                    .crypto_provider
                    .as_ref()
                    .map(|_| "set by the application"),
            )
            .finish()
    }
}

/// Connects TCP streams to brokers over TLS, with the trust roots, client certificate and name
/// verification of a [`TlsConfig`]. Built once per [`crate::Client`] (loading the roots and keys
/// is the costly part); clones are cheap and share everything, including the TLS session cache
/// (so reconnects resume sessions).
///
/// ```no_run
/// use kafkawire_client::tls::{TlsConfig, TlsConnector, TrustRoots};
/// let connector = TlsConnector::new(&TlsConfig {
///     trust: TrustRoots::PemFile("/etc/kafka/ca.pem".into()),
///     ..TlsConfig::default()
/// })?;
/// # Ok::<(), kafkawire_client::Error>(())
/// ```
#[derive(Clone)]
pub struct TlsConnector {
    inner: Arc<ConnectorInner>,
}

struct ConnectorInner {
    /// The shared client configuration; each connection gets a copy with its own client
    /// certificate resolver (to learn whether the broker asked for a certificate).
    config: Arc<ClientConfig>,
    /// The client certificate and its key, loaded.
    client_key: Option<Arc<CertifiedKey>>,
    /// Where the trusted roots come from, for error messages.
    trust: String,
    verify_server_name: bool,
}

impl fmt::Debug for TlsConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsConnector")
            .field("trust", &self.inner.trust)
            .field("client_certificate", &self.inner.client_key.is_some())
            .field("verify_server_name", &self.inner.verify_server_name)
            .finish()
    }
}

impl TlsConnector {
    /// Loads the trust roots and the client certificate of `config`.
    ///
    /// # Errors
    /// [`Error::Config`] when there is no crypto provider (see the
    /// [module documentation](self)), when the system trust store yields no certificate, a PEM file cannot
    /// be read, holds no certificate (or no private key), or is malformed, or the client
    /// certificate and key do not belong together. The messages name the file, never key
    /// material.
    pub fn new(config: &TlsConfig) -> Result<TlsConnector, Error> {
        let provider = crypto_provider(config.crypto_provider.as_ref())?;
        let (roots, trust) = load_roots(&config.trust)?;
        let roots = Arc::new(roots);
        let verifier: Arc<dyn ServerCertVerifier> = if config.verify_server_name {
            WebPkiServerVerifier::builder_with_provider(roots, provider.clone())
                .build()
                .map_err(|e| {
                    Error::Config(format!("cannot use the trusted roots ({trust}): {e}"))
                })?
        } else {
            Arc::new(ChainOnlyVerifier {
                roots,
                provider: provider.clone(),
            })
        };
        let client_key = match &config.client_certificate {
            None => None,
            Some(c) => Some(Arc::new(load_client_certificate(c, &provider)?)),
        };
        let client_config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Config(format!("TLS setup failed: {e}")))?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_client_cert_resolver(Arc::new(ClientAuth {
                key: client_key.clone(),
                asked: Arc::new(AtomicBool::new(false)),
            }));
        Ok(TlsConnector {
            inner: Arc::new(ConnectorInner {
                config: Arc::new(client_config),
                client_key,
                trust,
                verify_server_name: config.verify_server_name,
            }),
        })
    }

    /// Runs the TLS handshake on `tcp`. `server_name` is sent as SNI and verified against the
    /// broker's certificate: the broker's advertised host (or the bootstrap host as
    /// configured), also when the address map dials another address; an IP address is
    /// verified as an IP address SAN. `broker` names the broker in errors.
    ///
    /// Returns a stream that remembers a TLS failure seen after the handshake (a TLS 1.3 broker
    /// rejects a missing client certificate only then), see [`TlsStream::watch`].
    ///
    /// # Errors
    /// [`Error::Tls`] in plain words (untrusted or expired certificate, name mismatch, a broker
    /// that does not speak TLS, a required client certificate missing or rejected);
    /// [`Error::Io`] for other I/O failures.
    pub(crate) async fn connect(
        &self,
        tcp: TcpStream,
        server_name: &str,
        broker: &str,
    ) -> Result<TlsStream, Error> {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|_| Error::Tls {
            broker: broker.to_owned(),
            reason: format!(
                "{server_name:?} is not a DNS name or IP address the broker's certificate could be verified against"
            ),
        })?;
        let asked = Arc::new(AtomicBool::new(false));
        let mut config = (*self.inner.config).clone();
        config.client_auth_cert_resolver = Arc::new(ClientAuth {
            key: self.inner.client_key.clone(),
            asked: asked.clone(),
        });
        let watch = TlsWatch {
            connector: self.clone(),
            server_name: server_name.to_owned(),
            broker: broker.to_owned(),
            asked,
            failure: Arc::new(Mutex::new(None)),
        };
        match tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
        {
            Ok(inner) => Ok(TlsStream { inner, watch }),
            Err(e) => Err(watch.handshake_error(e)),
        }
    }

    /// Explains a TLS error in plain words.
    fn describe(&self, err: &rustls::Error, expected: &str, asked: bool) -> String {
        use rustls::AlertDescription as A;
        use rustls::CertificateError as C;
        let has_key = self.inner.client_key.is_some();
        match err {
            rustls::Error::InvalidCertificate(c) => match c {
                C::UnknownIssuer => format!(
                    "the broker's certificate is not signed by a trusted CA (trusted: {}); set ssl.ca.location (TrustRoots::PemFile or TrustRoots::Pem) to the CA certificate that signed it",
                    self.inner.trust
                ),
                C::NotValidForName => format!(
                    "the broker's certificate is not valid for {expected:?}, the name the client knows the broker by; {NAME_FIX}"
                ),
                C::NotValidForNameContext { presented, .. } => format!(
                    "the broker's certificate is for {} but the client expected {expected:?}, the name it knows the broker by; {NAME_FIX}",
                    presented_names(presented)
                ),
                C::Expired => "the broker's certificate has expired; the broker needs a renewed certificate".into(),
                C::ExpiredContext { time, not_after } => format!(
                    "the broker's certificate expired on {} (the client's clock says {}); the broker needs a renewed certificate",
                    utc(*not_after),
                    utc(*time)
                ),
                C::NotValidYet => "the broker's certificate is not valid yet; check the clocks of the client and of the machine that issued it".into(),
                C::NotValidYetContext { time, not_before } => format!(
                    "the broker's certificate is not valid yet: valid from {}, but the client's clock says {}; check the clocks",
                    utc(*not_before),
                    utc(*time)
                ),
                C::Revoked => "the broker's certificate has been revoked".into(),
                C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
                    "the broker's certificate is not meant for TLS servers (its extended key usage lacks serverAuth)".into()
                }
                C::BadSignature => "the broker's certificate chain has a bad signature".into(),
                C::BadEncoding => "the broker's certificate is malformed".into(),
                other => format!("the broker's certificate was rejected: {other:?}"),
            },
            rustls::Error::InvalidMessage(_)
            | rustls::Error::InappropriateMessage { .. }
            | rustls::Error::InappropriateHandshakeMessage { .. } => {
                not_tls("its answer to the TLS handshake is not TLS")
            }
            rustls::Error::AlertReceived(alert) => match alert {
                A::CertificateRequired if !has_key => {
                    cert_required("TLS alert CertificateRequired")
                }
                A::HandshakeFailure | A::BadCertificate if asked && !has_key => cert_required(
                    &format!("TLS alert {alert:?} after the broker asked for a certificate"),
                ),
                A::CertificateRequired
                | A::BadCertificate
                | A::UnsupportedCertificate
                | A::CertificateRevoked
                | A::CertificateExpired
                | A::CertificateUnknown
                | A::UnknownCA
                | A::AccessDenied
                | A::DecryptError
                    if asked && has_key =>
                {
                    format!(
                        "the broker rejected the client certificate (TLS alert {alert:?}): it must be signed by a CA the broker trusts (its ssl.truststore), be valid now, and be meant for TLS clients"
                    )
                }
                A::ProtocolVersion => {
                    "the broker and this client share no TLS version (this client speaks TLS 1.2 and 1.3)".into()
                }
                A::HandshakeFailure => {
                    "the broker refused the TLS handshake (alert HandshakeFailure): no cipher suite or key exchange in common, or it wants a client certificate".into()
                }
                other => format!("the broker ended the TLS handshake with alert {other:?}"),
            },
            rustls::Error::PeerIncompatible(p) => {
                format!("the broker's TLS settings are incompatible with this client: {p:?}")
            }
            other => format!("TLS failed: {other}"),
        }
    }
}

const NAME_FIX: &str = "connect by a name the certificate holds (the bootstrap address as \
    configured, the broker's advertised.listeners for the others), or reissue the certificate \
    with that name as a subject alternative name (turning off server name verification, an empty \
    ssl.endpoint.identification.algorithm, is unsafe)";

/// A broker that does not speak TLS, with what showed it.
fn not_tls(sign: &str) -> String {
    format!(
        "the broker does not speak TLS on this port (a PLAINTEXT listener?): {sign}; use the \
         broker's SSL listener, or security.protocol PLAINTEXT for this one"
    )
}

/// A broker that wants a client certificate, with what showed it.
fn cert_required(sign: &str) -> String {
    format!(
        "the broker requires a client certificate (mutual TLS, ssl.client.auth=required) and \
         none is configured ({sign}); set ssl.certificate.location and ssl.key.location \
         (TlsConfig::client_certificate)"
    )
}

/// The names a certificate holds, as webpki lists them (`DnsName("x")`, `IpAddress(1.2.3.4)`),
/// in plain text: `"x", "1.2.3.4"`.
fn presented_names(presented: &[String]) -> String {
    if presented.is_empty() {
        return "no name (it has no subject alternative name)".into();
    }
    let plain: Vec<String> = presented
        .iter()
        .map(|p| {
            p.strip_prefix("DnsName(\"")
                .and_then(|s| s.strip_suffix("\")"))
                .or_else(|| p.strip_prefix("IpAddress(")?.strip_suffix(')'))
                .map(|s| format!("{s:?}"))
                .unwrap_or_else(|| p.clone())
        })
        .collect();
    plain.join(", ")
}

/// `YYYY-MM-DD HH:MM:SS UTC`.
fn utc(t: UnixTime) -> String {
    let secs = t.as_secs();
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        rem / 3_600,
        rem / 60 % 60,
        rem % 60
    )
}

/// A TLS connection to a broker. It records the first TLS error seen after the handshake, so a
/// failed first request can be explained ([`TlsWatch::explain`]).
pub(crate) struct TlsStream {
    inner: tokio_rustls::client::TlsStream<TcpStream>,
    watch: TlsWatch,
}

impl TlsStream {
    /// A handle that explains failures of this connection after the handshake.
    pub(crate) fn watch(&self) -> TlsWatch {
        self.watch.clone()
    }

    fn note<T>(&self, r: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if let Poll::Ready(Err(e)) = &r
            && let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>())
            && let Ok(mut f) = self.watch.failure.lock()
            && f.is_none()
        {
            *f = Some(t.clone());
        }
        r
    }
}

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        self.note(r)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(r)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(r)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.note(r)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Explains why a TLS connection failed: during the handshake, or right after it (the first
/// request), where a TLS 1.3 broker reports a missing or rejected client certificate.
#[derive(Clone)]
pub(crate) struct TlsWatch {
    connector: TlsConnector,
    server_name: String,
    broker: String,
    /// The broker asked for a client certificate (a CertificateRequest).
    asked: Arc<AtomicBool>,
    /// The first TLS error seen after the handshake.
    failure: Arc<Mutex<Option<rustls::Error>>>,
}

impl TlsWatch {
    fn tls(&self, reason: String) -> Error {
        Error::Tls {
            broker: self.broker.clone(),
            reason,
        }
    }

    fn asked(&self) -> bool {
        self.asked.load(Ordering::SeqCst)
    }

    /// The error for a failed handshake.
    fn handshake_error(&self, e: io::Error) -> Error {
        if let Some(t) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
            let reason = self.connector.describe(t, &self.server_name, self.asked());
            return self.tls(reason);
        }
        let closed = matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        );
        match () {
            _ if closed && self.asked() && self.connector.inner.client_key.is_none() => self.tls(
                cert_required("the broker closed the connection after asking for one"),
            ),
            _ if closed => self.tls(not_tls("it closed the connection during the TLS handshake")),
            _ => Error::Io {
                broker: self.broker.clone(),
                source: e,
            },
        }
    }

    /// Turns the failure of the first request after the handshake into the TLS error behind it,
    /// if there was one; other errors are returned as they are.
    pub(crate) fn explain(&self, e: Error) -> Error {
        let failure = self.failure.lock().ok().and_then(|f| f.clone());
        if let Some(t) = failure {
            let reason = self.connector.describe(&t, &self.server_name, self.asked());
            return self.tls(reason);
        }
        let transport = matches!(e, Error::Io { .. } | Error::ConnectionClosed { .. });
        if transport && self.asked() && self.connector.inner.client_key.is_none() {
            return self.tls(cert_required(
                "the broker closed the connection after asking for one",
            ));
        }
        e
    }
}

/// Hands the client certificate (if any) to the handshake, noting that the broker asked.
#[derive(Debug)]
struct ClientAuth {
    key: Option<Arc<CertifiedKey>>,
    asked: Arc<AtomicBool>,
}

impl ResolvesClientCert for ClientAuth {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        self.asked.store(true, Ordering::SeqCst);
        self.key.clone()
    }

    fn has_certs(&self) -> bool {
        self.key.is_some()
    }
}

/// **Dangerous**: verifies that the broker's certificate chains to a trusted root and is valid
/// now (and the handshake signatures), but not that it names the broker. Used only with
/// [`TlsConfig::verify_server_name`] turned off: any certificate the trusted roots signed is
/// accepted for any broker, so whoever holds one can sit in the middle.
#[derive(Debug)]
struct ChainOnlyVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ChainOnlyVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The crypto provider of a connector: the configured one, else the process default, else the
/// built-in one (see the module documentation).
fn crypto_provider(configured: Option<&Arc<CryptoProvider>>) -> Result<Arc<CryptoProvider>, Error> {
    choose_provider(
        configured.cloned(),
        CryptoProvider::get_default().cloned(),
        built_in_provider,
    )
}

fn choose_provider(
    configured: Option<Arc<CryptoProvider>>,
    process_default: Option<Arc<CryptoProvider>>,
    built_in: fn() -> Option<CryptoProvider>,
) -> Result<Arc<CryptoProvider>, Error> {
    configured
        .or(process_default)
        .or_else(|| built_in().map(Arc::new))
        .ok_or_else(|| {
            Error::Config(
                "TLS needs a crypto provider, and this build has none: enable the cargo feature \
                 `tls-ring` of kafkawire (it compiles C), or install a rustls provider as the \
                 process default (rustls::crypto::CryptoProvider::install_default) or set \
                 TlsConfig::crypto_provider"
                    .to_owned(),
            )
        })
}

/// *ring*, with the `tls-ring` feature (no OpenSSL; ring compiles C and assembly). rustls
/// 0.23.48 deprecated it for lacking post-quantum key exchange; the classical groups it offers
/// (X25519, P-256, P-384) are what Kafka brokers (JSSE) speak.
#[cfg(feature = "tls-ring")]
#[allow(deprecated)]
fn built_in_provider() -> Option<CryptoProvider> {
    Some(rustls::crypto::ring::default_provider())
}

/// No built-in provider without the `tls-ring` feature.
#[cfg(not(feature = "tls-ring"))]
fn built_in_provider() -> Option<CryptoProvider> {
    None
}

/// The trusted roots, and a description of where they come from.
fn load_roots(trust: &TrustRoots) -> Result<(RootCertStore, String), Error> {
    let mut roots = RootCertStore::empty();
    let desc = match trust {
        TrustRoots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                return Err(Error::Config(format!(
                    "no trusted CA certificate could be loaded from the system's trust store{}; install the system's CA certificates (e.g. the ca-certificates package), or set ssl.ca.location (TrustRoots::PemFile) or use the compiled-in Mozilla roots (TrustRoots::WebPki)",
                    if why.is_empty() {
                        String::new()
                    } else {
                        format!(" ({why})")
                    }
                )));
            }
            format!("the system's trust store, {added} certificates")
        }
        TrustRoots::WebPki => {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            "the Mozilla roots compiled in (webpki-roots)".into()
        }
        TrustRoots::PemFile(path) => {
            let what = format!("the CA file {}", path.display());
            let certs = read_certificates(&PemText::File(path), &what)?;
            add_roots(&mut roots, certs, &what)?;
            format!("the CA certificates in {}", path.display())
        }
        TrustRoots::Pem(text) => {
            let what = "the CA certificates given inline";
            let certs = read_certificates(&PemText::Inline(text.as_bytes()), what)?;
            add_roots(&mut roots, certs, what)?;
            what.into()
        }
    };
    Ok((roots, desc))
}

fn add_roots(
    roots: &mut RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    what: &str,
) -> Result<(), Error> {
    for c in certs {
        roots.add(c).map_err(|e| {
            Error::Config(format!(
                "{what}: a certificate cannot be used as a trusted root: {e}"
            ))
        })?;
    }
    Ok(())
}

/// PEM text to parse: a file, or text in memory.
enum PemText<'a> {
    File(&'a std::path::Path),
    Inline(&'a [u8]),
}

impl<'a> PemText<'a> {
    fn of(source: &'a PemSource) -> PemText<'a> {
        match source {
            PemSource::File(p) => PemText::File(p),
            PemSource::Inline(s) => PemText::Inline(s.expose().as_bytes()),
        }
    }

    fn describe(source: &PemSource, what: &str) -> String {
        match source {
            PemSource::File(p) => format!("the {what} file {}", p.display()),
            PemSource::Inline(_) => format!("the {what} given inline"),
        }
    }
}

/// Explains a PEM error without quoting the input (which may be a private key).
fn pem_error(e: pem::Error, what: &str) -> Error {
    let why = match e {
        pem::Error::Io(io) => format!("cannot read it: {io}"),
        pem::Error::MissingSectionEnd { .. } => "a PEM section has no END line".into(),
        pem::Error::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed".into(),
        pem::Error::Base64Decode(_) => "a PEM section holds invalid base64".into(),
        pem::Error::SectionTooLarge => "a PEM section is too large".into(),
        pem::Error::NoItemsFound => "it holds nothing usable".into(),
        _ => "it is not valid PEM".into(),
    };
    Error::Config(format!("{what}: {why}"))
}

fn read_certificates(
    text: &PemText<'_>,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs: Result<Vec<_>, _> = match text {
        PemText::File(p) => CertificateDer::pem_file_iter(p)
            .map_err(|e| pem_error(e, what))?
            .collect(),
        PemText::Inline(b) => CertificateDer::pem_slice_iter(b).collect(),
    };
    let certs = certs.map_err(|e| pem_error(e, what))?;
    if certs.is_empty() {
        return Err(Error::Config(format!(
            "{what}: no certificate found (expected PEM sections BEGIN CERTIFICATE)"
        )));
    }
    Ok(certs)
}

fn read_private_key(source: &PemSource) -> Result<PrivateKeyDer<'static>, Error> {
    let what = PemText::describe(source, "private key");
    let key = match PemText::of(source) {
        PemText::File(p) => PrivateKeyDer::from_pem_file(p),
        PemText::Inline(b) => PrivateKeyDer::from_pem_slice(b),
    };
    key.map_err(|e| match e {
        pem::Error::NoItemsFound => Error::Config(format!(
            "{what}: no private key found (expected a PEM section BEGIN PRIVATE KEY (PKCS#8), BEGIN RSA PRIVATE KEY (PKCS#1) or BEGIN EC PRIVATE KEY (SEC1); an encrypted key must be decrypted first)"
        )),
        e => pem_error(e, &what),
    })
}

fn load_client_certificate(
    c: &ClientCertificate,
    provider: &CryptoProvider,
) -> Result<CertifiedKey, Error> {
    let chain_what = PemText::describe(&c.chain, "client certificate");
    let chain = read_certificates(&PemText::of(&c.chain), &chain_what)?;
    let key = read_private_key(&c.key)?;
    let key_what = PemText::describe(&c.key, "private key");
    CertifiedKey::from_der(chain, key, provider).map_err(|e| match e {
        rustls::Error::InconsistentKeys(_) => Error::Config(format!(
            "{key_what} does not belong to {chain_what} (its first certificate has another public key)"
        )),
        _ => Error::Config(format!(
            "{key_what} cannot be used: not an RSA, ECDSA (P-256, P-384) or Ed25519 key, or malformed"
        )),
    })
}

/// The host part of `host:port` (without the brackets of an IPv6 address): the name a broker
/// dialled by that address is verified against.
pub(crate) fn host_of(addr: &str) -> &str {
    let host = match addr.rsplit_once(':') {
        Some((h, p)) if p.parse::<u16>().is_ok() => h,
        _ => addr,
    };
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_of_strips_the_port_and_ipv6_brackets() {
        assert_eq!(host_of("broker-1.example:9093"), "broker-1.example");
        assert_eq!(host_of("127.0.0.1:9093"), "127.0.0.1");
        assert_eq!(host_of("[::1]:9093"), "::1");
        assert_eq!(host_of("localhost"), "localhost");
    }

    #[test]
    fn dates_are_utc_calendar_dates() {
        assert_eq!(
            utc(UnixTime::since_unix_epoch(std::time::Duration::ZERO)),
            "1970-01-01 00:00:00 UTC"
        );
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(951_782_400 + 3_661));
        assert_eq!(utc(t), "2000-02-29 01:01:01 UTC");
        let t = UnixTime::since_unix_epoch(std::time::Duration::from_secs(4_102_444_799));
        assert_eq!(utc(t), "2099-12-31 23:59:59 UTC");
    }

    #[test]
    fn presented_names_read_plainly() {
        let names = vec![
            "DnsName(\"kafka.example\")".to_owned(),
            "IpAddress(10.0.0.1)".to_owned(),
        ];
        assert_eq!(presented_names(&names), "\"kafka.example\", \"10.0.0.1\"");
        assert!(presented_names(&[]).contains("no subject alternative name"));
    }

    fn none() -> Option<CryptoProvider> {
        None
    }

    #[allow(deprecated)]
    fn ring() -> Option<CryptoProvider> {
        Some(rustls::crypto::ring::default_provider())
    }

    #[test]
    fn the_configured_provider_wins_then_the_process_default_then_the_built_in_one() {
        let configured = Arc::new(ring().unwrap());
        let process = Arc::new(ring().unwrap());
        let chosen = choose_provider(Some(configured.clone()), Some(process.clone()), ring);
        assert!(Arc::ptr_eq(&chosen.unwrap(), &configured));
        let chosen = choose_provider(None, Some(process.clone()), ring);
        assert!(Arc::ptr_eq(&chosen.unwrap(), &process));
        let chosen = choose_provider(None, None, ring).unwrap();
        assert!(!Arc::ptr_eq(&chosen, &process) && !Arc::ptr_eq(&chosen, &configured));
    }

    #[test]
    fn no_provider_is_a_configuration_error_that_says_how_to_get_one() {
        match choose_provider(None, None, none) {
            Err(Error::Config(m)) => {
                assert!(m.contains("`tls-ring`"), "{m}");
                assert!(m.contains("install_default"), "{m}");
            }
            other => panic!("expected a configuration error, got {other:?}"),
        }
    }

    #[test]
    fn configs_are_equal_when_they_name_the_same_provider() {
        let provider = Arc::new(ring().unwrap());
        let a = TlsConfig {
            crypto_provider: Some(provider.clone()),
            ..TlsConfig::default()
        };
        assert_eq!(a, a.clone());
        assert_ne!(a, TlsConfig::default());
        let b = TlsConfig {
            crypto_provider: Some(Arc::new(ring().unwrap())),
            ..TlsConfig::default()
        };
        assert_ne!(a, b);
        assert!(format!("{a:?}").contains("set by the application"));
    }

    #[test]
    fn the_system_store_or_a_clear_error() {
        match TlsConnector::new(&TlsConfig::default()) {
            Ok(c) => assert!(format!("{c:?}").contains("system")),
            Err(Error::Config(m)) => assert!(m.contains("system's trust store"), "{m}"),
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
}
