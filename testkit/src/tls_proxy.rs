//! TLS in front of a plaintext broker, and the certificates to test it with.
//!
//! [`TlsProxy`] terminates TLS (rustls, *ring*) on `127.0.0.1` and forwards the decrypted bytes
//! to a plaintext broker: the [`mock`](crate::mock) broker or [Tansu](crate::tansu), neither of
//! which speaks TLS itself. [`TlsProxyConfig`] chooses the server certificate, whether a
//! client certificate is required (mutual TLS) and the TLS versions offered.
//!
//! [`TestPki`] makes a small public key infrastructure with rcgen when a test runs: a CA, server
//! certificates for `localhost` and `127.0.0.1` (valid, expired, not yet valid), one for another
//! name, one for `localhost` alone, a client CA with a client certificate, and an unrelated CA with a client certificate
//! of its own. Everything is PEM text; the keys are ECDSA P-256 in PKCS#8.
//!
//! ```no_run
//! # async fn demo(upstream: std::net::SocketAddr) -> std::io::Result<()> {
//! use kafkawire_testkit::tls_proxy::{TestPki, TlsProxy, TlsProxyConfig};
//! let pki = TestPki::generate();
//! let proxy = TlsProxy::start(upstream, TlsProxyConfig::new(&pki.server)).await?;
//! println!("TLS on {}, trust {} bytes of CA PEM", proxy.addr(), pki.ca_cert.len());
//! # Ok(()) }
//! ```

use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::RootCertStore;
use rustls::server::{ServerConfig, WebPkiClientVerifier};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream, ToSocketAddrs};
use tokio::task::JoinSet;

/// A certificate and its private key, in PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    /// The certificate (leaf only; its issuer is one of the [`TestPki`] CAs).
    pub cert_pem: String,
    /// The private key (PKCS#8 `BEGIN PRIVATE KEY`).
    pub key_pem: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("cert_pem", &format_args!("{} bytes", self.cert_pem.len()))
            .field("key_pem", &"[redacted]")
            .finish()
    }
}

/// Test certificates, made fresh by [`TestPki::generate`]. Server certificates name
/// `localhost` and `127.0.0.1` (as DNS and IP subject alternative names) unless said otherwise.
#[derive(Debug, Clone)]
pub struct TestPki {
    /// The CA that signed the server certificates (PEM).
    pub ca_cert: String,
    /// A valid server certificate for `localhost` and `127.0.0.1`.
    pub server: Identity,
    /// A server certificate for `localhost` and `127.0.0.1` that expired in 2001.
    pub expired: Identity,
    /// A server certificate for `localhost` and `127.0.0.1` valid only from 2090.
    pub not_yet_valid: Identity,
    /// A valid server certificate for [`TestPki::OTHER_NAME`] only.
    pub other_name: Identity,
    /// A valid server certificate for `localhost` only (no IP address): it passes only when
    /// the client verifies the name `localhost`, not the address it dials.
    pub localhost_only: Identity,
    /// The CA that signed [`TestPki::client`] (PEM): what a broker requiring client
    /// certificates trusts.
    pub client_ca_cert: String,
    /// A client certificate (CN `kafkawire-test-client`) signed by the client CA.
    pub client: Identity,
    /// A CA that signed nothing of the above (PEM): trusting it alone fails every server
    /// certificate.
    pub unrelated_ca_cert: String,
    /// A client certificate signed by the unrelated CA: a broker trusting the client CA
    /// rejects it.
    pub unrelated_client: Identity,
}

impl TestPki {
    /// The only name in [`TestPki::other_name`].
    pub const OTHER_NAME: &'static str = "broker.other.invalid";

    /// Makes all the certificates (ECDSA P-256 keys, a few milliseconds).
    ///
    /// # Panics
    /// If rcgen fails, which it does not for these fixed parameters.
    pub fn generate() -> TestPki {
        let ca = Ca::new("kafkawire test CA");
        let client_ca = Ca::new("kafkawire test client CA");
        let unrelated = Ca::new("kafkawire unrelated CA");
        let local = ["localhost", "127.0.0.1"];
        TestPki {
            ca_cert: ca.cert.pem(),
            server: ca.issue(&local, Usage::Server, None),
            expired: ca.issue(&local, Usage::Server, Some((1999, 2001))),
            not_yet_valid: ca.issue(&local, Usage::Server, Some((2090, 2099))),
            other_name: ca.issue(&[Self::OTHER_NAME], Usage::Server, None),
            localhost_only: ca.issue(&["localhost"], Usage::Server, None),
            client_ca_cert: client_ca.cert.pem(),
            client: client_ca.issue(&[], Usage::Client, None),
            unrelated_ca_cert: unrelated.cert.pem(),
            unrelated_client: unrelated.issue(&[], Usage::Client, None),
        }
    }
}

#[derive(Clone, Copy)]
enum Usage {
    Server,
    Client,
}

struct Ca {
    cert: rcgen::Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Ca { cert, key }
    }

    /// A certificate for `names`, valid from January 1st of the first year to that of the
    /// second (default: from yesterday's year to ten years on).
    fn issue(&self, names: &[&str], usage: Usage, years: Option<(i32, i32)>) -> Identity {
        let key = KeyPair::generate().expect("generate a key");
        let sans: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let mut params = CertificateParams::new(sans).expect("certificate parameters");
        let cn = match usage {
            Usage::Server => names.first().copied().unwrap_or("server"),
            Usage::Client => "kafkawire-test-client",
        };
        params.distinguished_name.push(DnType::CommonName, cn);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![match usage {
            Usage::Server => ExtendedKeyUsagePurpose::ServerAuth,
            Usage::Client => ExtendedKeyUsagePurpose::ClientAuth,
        }];
        if let Some((from, to)) = years {
            params.not_before = rcgen::date_time_ymd(from, 1, 1);
            params.not_after = rcgen::date_time_ymd(to, 1, 1);
        } else {
            // rcgen's defaults are 1975..4096; keep the usual shape of a real certificate.
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2080, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign the certificate");
        Identity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// What a [`TlsProxy`] presents and requires.
#[derive(Debug, Clone)]
pub struct TlsProxyConfig {
    /// The server certificate and key.
    pub server: Identity,
    /// When set, clients must present a certificate signed by this CA (PEM), as a broker
    /// with `ssl.client.auth=required`.
    pub client_ca: Option<String>,
    /// Offer TLS 1.2 only (default: 1.2 and 1.3). In TLS 1.2 a missing client certificate is
    /// refused during the handshake; in TLS 1.3 only after it, on the first read.
    pub tls12_only: bool,
}

impl TlsProxyConfig {
    /// Presents `server`, requires no client certificate, offers TLS 1.2 and 1.3.
    pub fn new(server: &Identity) -> TlsProxyConfig {
        TlsProxyConfig {
            server: server.clone(),
            client_ca: None,
            tls12_only: false,
        }
    }

    /// Requires a client certificate signed by `ca_pem`.
    pub fn require_client_cert(mut self, ca_pem: &str) -> TlsProxyConfig {
        self.client_ca = Some(ca_pem.to_owned());
        self
    }

    /// Offers TLS 1.2 only.
    pub fn tls12_only(mut self) -> TlsProxyConfig {
        self.tls12_only = true;
        self
    }

    fn server_config(&self) -> io::Result<ServerConfig> {
        let invalid = |what: &str, e: &dyn std::fmt::Display| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{what}: {e}"))
        };
        #[allow(deprecated)] // rustls 0.23.48: no post-quantum groups in ring; fine for tests
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let chain = CertificateDer::pem_slice_iter(self.server.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid("server certificate", &e))?;
        let key = PrivateKeyDer::from_pem_slice(self.server.key_pem.as_bytes())
            .map_err(|_| invalid("server key", &"not a PEM private key"))?;
        let versions: &[&rustls::SupportedProtocolVersion] = if self.tls12_only {
            &[&rustls::version::TLS12]
        } else {
            &[&rustls::version::TLS13, &rustls::version::TLS12]
        };
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(versions)
            .map_err(|e| invalid("TLS versions", &e))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(ca) => {
                let mut roots = RootCertStore::empty();
                for c in CertificateDer::pem_slice_iter(ca.as_bytes()) {
                    let c = c.map_err(|e| invalid("client CA", &e))?;
                    roots.add(c).map_err(|e| invalid("client CA", &e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| invalid("client CA", &e))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(chain, key)
            .map_err(|e| invalid("server certificate and key", &e))
    }
}

/// Counters of a [`TlsProxy`] since it started.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsProxyStats {
    /// TCP connections accepted.
    pub accepted: u64,
    /// TLS handshakes completed (and forwarded upstream).
    pub handshakes: u64,
    /// TLS handshakes that failed.
    pub failed_handshakes: u64,
    /// Why the last handshake failed, as rustls says it (server side).
    pub last_failure: Option<String>,
}

/// A TLS-terminating proxy on `127.0.0.1` (random port) in front of a plaintext broker. See the
/// [module](self) docs. Dropping it stops the listener and closes every connection.
#[derive(Debug)]
pub struct TlsProxy {
    addr: SocketAddr,
    stats: Arc<Mutex<TlsProxyStats>>,
    accept_task: tokio::task::JoinHandle<()>,
}

impl TlsProxy {
    /// Starts a proxy that accepts TLS per `config` and forwards each connection to `upstream`
    /// (resolved once, now). Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// `InvalidInput` for certificates or keys that do not load (or an `upstream` that resolves
    /// to nothing); the error of resolving `upstream` or binding the listener.
    pub async fn start(
        upstream: impl ToSocketAddrs,
        config: TlsProxyConfig,
    ) -> io::Result<TlsProxy> {
        let upstream = tokio::net::lookup_host(upstream)
            .await?
            .next()
            .ok_or(io::ErrorKind::InvalidInput)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config.server_config()?));
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let stats = Arc::new(Mutex::new(TlsProxyStats::default()));
        let accept_task = tokio::spawn(accept_loop(listener, acceptor, upstream, stats.clone()));
        Ok(TlsProxy {
            addr,
            stats,
            accept_task,
        })
    }

    /// The address clients connect to (`127.0.0.1:port`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The counters so far.
    pub fn stats(&self) -> TlsProxyStats {
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        // The accept task owns the connection tasks (a JoinSet): aborting it drops them all.
        self.accept_task.abort();
    }
}

async fn accept_loop(
    listener: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
    stats: Arc<Mutex<TlsProxyStats>>,
) {
    let mut conns = JoinSet::new();
    loop {
        let client = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((client, _)) => client,
                Err(e) => {
                    tracing::warn!("tls proxy: accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            // Reap finished connections so the set does not grow.
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
        };
        let _ = client.set_nodelay(true);
        stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .accepted += 1;
        conns.spawn(serve(client, acceptor.clone(), upstream, stats.clone()));
    }
}

/// One connection: the TLS handshake (a failure is counted, and rustls has sent its alert),
/// then bytes both ways until either side closes.
async fn serve(
    client: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    upstream: SocketAddr,
    stats: Arc<Mutex<TlsProxyStats>>,
) {
    let mut tls = match acceptor.accept(client).await {
        Ok(tls) => tls,
        Err(e) => {
            tracing::debug!("tls proxy: handshake failed: {e}");
            let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
            s.failed_handshakes += 1;
            s.last_failure = Some(e.to_string());
            return;
        }
    };
    stats
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .handshakes += 1;
    let mut up = match TcpStream::connect(upstream).await {
        Ok(up) => up,
        Err(e) => {
            tracing::warn!("tls proxy: cannot reach upstream {upstream}: {e}");
            return;
        }
    };
    let _ = up.set_nodelay(true);
    if let Err(e) = tokio::io::copy_bidirectional(&mut tls, &mut up).await {
        tracing::debug!("tls proxy: connection ended: {e}");
    }
}
