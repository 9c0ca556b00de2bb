//! TLS against the mock broker behind a TLS-terminating proxy ([`TlsProxy`]): trust roots, name
//! verification (advertised names through the address map too), expired certificates, mutual
//! TLS, and the plain-words errors for every misconfiguration, none of which is retriable or
//! quotes key material.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use kafkawire_client::tls::rustls;
use kafkawire_client::tls::{ClientCertificate, PemSource, TlsConfig, TlsConnector, TrustRoots};
use kafkawire_client::{
    Admin, Client, ClientConfig, Connection, ConnectionConfig, Error, NewTopic, Secret,
    SecurityProtocol,
};
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafkawire_testkit::mock::MockCluster;
use kafkawire_testkit::tls_proxy::{Identity, TestPki, TlsProxy, TlsProxyConfig};

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test did not finish within 20 s")
}

/// A plaintext client configuration with short timeouts.
fn plain(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(3);
    c.allow_auto_topic_creation = false;
    c
}

/// An SSL client configuration trusting `ca_pem`.
fn ssl(bootstrap: &str, ca_pem: &str) -> ClientConfig {
    let mut c = plain(bootstrap);
    c.security.protocol = SecurityProtocol::Ssl;
    c.security.tls = TlsConfig {
        trust: TrustRoots::Pem(ca_pem.to_owned()),
        ..TlsConfig::default()
    };
    c
}

/// An SSL client configuration trusting `ca_pem` that does not verify the broker's name.
fn ssl_any_name(bootstrap: &str, ca_pem: &str) -> ClientConfig {
    let mut c = ssl(bootstrap, ca_pem);
    c.security.tls.verify_server_name = false;
    c
}

/// An SSL client configuration trusting the test CA and presenting `id` as its certificate.
fn ssl_with_cert(bootstrap: &str, pki: &TestPki, id: &Identity) -> ClientConfig {
    let mut c = ssl(bootstrap, &pki.ca_cert);
    c.security.tls.client_certificate = client_cert(id);
    c
}

/// A client certificate chain and key given inline.
fn inline_cert(chain: &str, key: &str) -> ClientCertificate {
    ClientCertificate {
        chain: PemSource::Inline(Secret::from(chain)),
        key: PemSource::Inline(Secret::from(key)),
    }
}

fn client_cert(id: &Identity) -> Option<ClientCertificate> {
    Some(inline_cert(&id.cert_pem, &id.key_pem))
}

/// TLS settings trusting the test CA, with an inline client certificate and name verification.
fn with_cert(pki: &TestPki, chain: &str, key: &str) -> TlsConfig {
    TlsConfig {
        trust: TrustRoots::Pem(pki.ca_cert.clone()),
        client_certificate: Some(inline_cert(chain, key)),
        verify_server_name: true,
        crypto_provider: None,
    }
}

/// Proxy settings with the usual server certificate that require a client certificate signed
/// by the client CA.
fn mutual_tls(pki: &TestPki) -> TlsProxyConfig {
    TlsProxyConfig::new(&pki.server).require_client_cert(&pki.client_ca_cert)
}

/// [`mutual_tls`] with every TLS version, then TLS 1.2 only (the `bool`).
fn mutual_tls_both_ways(pki: &TestPki) -> [(bool, TlsProxyConfig); 2] {
    [
        (false, mutual_tls(pki)),
        (true, mutual_tls(pki).tls12_only()),
    ]
}

/// A one-broker mock cluster behind a TLS proxy; the broker advertises the proxy's address.
struct Behind {
    cluster: MockCluster,
    proxy: TlsProxy,
}

impl Behind {
    async fn start(config: TlsProxyConfig) -> Behind {
        let cluster = MockCluster::start(1).await;
        let proxy = TlsProxy::start(cluster.broker(0).socket_addr(), config)
            .await
            .expect("start the TLS proxy");
        cluster.set_advertised(0, &proxy.addr().to_string());
        Behind { cluster, proxy }
    }

    /// Behind a proxy presenting `server`, with no client certificate required.
    async fn serving(server: &Identity) -> Behind {
        Behind::start(TlsProxyConfig::new(server)).await
    }

    /// Another TLS proxy in front of the same broker, presenting `server`.
    async fn another_proxy(&self, server: &Identity, what: &str) -> TlsProxy {
        TlsProxy::start(
            self.cluster.broker(0).socket_addr(),
            TlsProxyConfig::new(server),
        )
        .await
        .expect(what)
    }

    fn addr(&self) -> String {
        self.proxy.addr().to_string()
    }
}

fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.to_owned()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

/// Connects, creates a topic and asks the broker (on its own connection) for its metadata.
async fn exercise(config: ClientConfig) -> Result<(), Error> {
    static N: AtomicUsize = AtomicUsize::new(0);
    let topic = format!("secure-{}", N.fetch_add(1, Ordering::Relaxed));
    let client = Client::connect(config).await?;
    Admin::new(&client)
        .create_topics(&[NewTopic::new(&topic, 2)], Duration::from_secs(5))
        .await?;
    let resp = client.send_to(0, &metadata_for(&topic)).await?;
    assert_eq!(resp.topics.len(), 1);
    assert_eq!(resp.topics[0].partitions.len(), 2);
    assert_eq!(client.leader_for(&topic, 1).await?, 0);
    Ok(())
}

/// The reason of a TLS error, checking what every TLS error must be: not retriable, naming the
/// broker, free of key material.
fn tls_reason(e: &Error, pki: &TestPki) -> String {
    let Error::Tls { reason, broker } = e else {
        panic!("expected Error::Tls, got {e:?} ({e})");
    };
    assert!(!e.is_retriable(), "{e}");
    assert!(!broker.is_empty());
    eprintln!("{e}");
    assert_no_key_material(&e.to_string(), pki);
    assert_no_key_material(&format!("{e:?}"), pki);
    reason.clone()
}

/// Connects with `config`, which must fail (`why`): the [`tls_reason`] of the error.
async fn tls_failure(config: ClientConfig, pki: &TestPki, why: &str) -> String {
    let e = Client::connect(config).await.expect_err(why);
    tls_reason(&e, pki)
}

/// Behind each of the [`mutual_tls_both_ways`] proxies, connecting with `client(address)` fails
/// (`why`) with a TLS error whose reason says all of `says`.
async fn mutual_tls_refuses(
    pki: &TestPki,
    client: impl Fn(&str) -> ClientConfig,
    why: &str,
    says: &[&str],
) {
    for (tls12, proxy) in mutual_tls_both_ways(pki) {
        let b = Behind::start(proxy).await;
        let reason = tls_failure(client(&b.addr()), pki, why).await;
        assert!(
            says.iter().all(|s| reason.contains(s)),
            "tls12 only: {tls12}: {reason}"
        );
    }
}

fn assert_no_key_material(text: &str, pki: &TestPki) {
    assert!(!text.contains("PRIVATE KEY-----"), "{text}");
    for id in [
        &pki.server,
        &pki.client,
        &pki.unrelated_client,
        &pki.other_name,
    ] {
        for line in id.key_pem.lines().filter(|l| !l.starts_with("-----")) {
            assert!(!text.contains(line), "key material in {text}");
        }
    }
}

#[tokio::test]
async fn connects_and_reads_metadata_over_tls() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.server).await;
        exercise(ssl(&b.addr(), &pki.ca_cert))
            .await
            .expect("over TLS");
        let stats = b.proxy.stats();
        assert!(
            stats.handshakes >= 2,
            "bootstrap and broker connections: {stats:?}"
        );
        assert_eq!(stats.failed_handshakes, 0, "{stats:?}");
        assert!(b.cluster.connections(0) >= 2);
    })
    .await;
}

#[tokio::test]
async fn a_host_name_bootstrap_is_verified_as_that_name() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.server).await;
        let port = b.proxy.addr().port();
        b.cluster.set_advertised(0, &format!("localhost:{port}"));
        exercise(ssl(&format!("localhost:{port}"), &pki.ca_cert))
            .await
            .expect("localhost is in the certificate");
    })
    .await;
}

#[tokio::test]
async fn an_untrusted_ca_says_so() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.server).await;
        let e = Client::connect(ssl(&b.addr(), &pki.unrelated_ca_cert))
            .await
            .expect_err("the server certificate is not signed by the trusted CA");
        let reason = tls_reason(&e, &pki);
        assert!(
            reason.contains("not signed by a trusted CA") && reason.contains("ssl.ca.location"),
            "{reason}"
        );
        assert!(
            reason.contains("given inline"),
            "says what is trusted: {reason}"
        );
        assert_eq!(e.broker(), Some(b.addr().as_str()));
    })
    .await;
}

#[tokio::test]
async fn a_name_mismatch_names_both_names() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.other_name).await;
        let why = "the certificate is for another name";
        let reason = tls_failure(ssl(&b.addr(), &pki.ca_cert), &pki, why).await;
        assert!(
            reason.contains("\"127.0.0.1\""),
            "the expected name: {reason}"
        );
        assert!(
            reason.contains(TestPki::OTHER_NAME),
            "the certificate's name: {reason}"
        );

        let port = b.proxy.addr().port();
        let localhost = format!("localhost:{port}");
        let reason = tls_failure(ssl(&localhost, &pki.ca_cert), &pki, why).await;
        assert!(reason.contains("expected \"localhost\""), "{reason}");
    })
    .await;
}

#[tokio::test]
async fn without_name_verification_any_name_passes_but_the_chain_is_still_checked() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.other_name).await;
        exercise(ssl_any_name(&b.addr(), &pki.ca_cert))
            .await
            .expect("the name is not checked");

        let c = ssl_any_name(&b.addr(), &pki.unrelated_ca_cert);
        let reason = tls_failure(c, &pki, "the CA still matters").await;
        assert!(reason.contains("not signed by a trusted CA"));

        let expired = Behind::serving(&pki.expired).await;
        let c = ssl_any_name(&expired.addr(), &pki.ca_cert);
        let reason = tls_failure(c, &pki, "validity still matters").await;
        assert!(reason.contains("expired"));
    })
    .await;
}

#[tokio::test]
async fn an_expired_or_future_certificate_says_so() {
    within(async {
        let pki = TestPki::generate();
        for (server, why, says) in [
            (
                &pki.expired,
                "expired",
                "expired on 2001-01-01 00:00:00 UTC",
            ),
            (
                &pki.not_yet_valid,
                "not yet valid",
                "not valid yet: valid from 2090-01-01",
            ),
        ] {
            let b = Behind::serving(server).await;
            let reason = tls_failure(ssl(&b.addr(), &pki.ca_cert), &pki, why).await;
            assert!(reason.contains(says), "{reason}");
        }
    })
    .await;
}

#[tokio::test]
async fn a_tls_client_on_a_plaintext_port_is_told_so() {
    within(async {
        let pki = TestPki::generate();
        let cluster = MockCluster::start(1).await;
        let c = ssl(&cluster.broker_addr(0), &pki.ca_cert);
        let reason = tls_failure(c, &pki, "the mock speaks no TLS").await;
        assert!(
            reason.contains("does not speak TLS on this port"),
            "{reason}"
        );
        assert!(reason.contains("PLAINTEXT"), "{reason}");
    })
    .await;
}

#[tokio::test]
async fn a_plaintext_client_on_a_tls_port_is_told_so() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.server).await;
        let reason = tls_failure(plain(&b.addr()), &pki, "the proxy speaks TLS").await;
        assert!(
            reason.contains("speaks TLS on this port") && reason.contains("security.protocol SSL"),
            "{reason}"
        );
        // The same through a bare connection.
        let e = Connection::connect(
            &b.addr(),
            ConnectionConfig::default(),
            Duration::from_secs(3),
        )
        .await
        .expect_err("the proxy speaks TLS");
        assert!(tls_reason(&e, &pki).contains("speaks TLS on this port"));
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_with_a_client_certificate_works() {
    within(async {
        let pki = TestPki::generate();
        for (tls12, proxy) in mutual_tls_both_ways(&pki) {
            let b = Behind::start(proxy).await;
            exercise(ssl_with_cert(&b.addr(), &pki, &pki.client))
                .await
                .unwrap_or_else(|e| panic!("mTLS (tls12 only: {tls12}): {e}"));
            assert_eq!(b.proxy.stats().failed_handshakes, 0);
        }
    })
    .await;
}

#[tokio::test]
async fn mutual_tls_with_a_sec1_key_works() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::start(mutual_tls(&pki)).await;
        let sec1 = pkcs8_to_sec1_pem(&pki.client.key_pem);
        assert!(sec1.starts_with("-----BEGIN EC PRIVATE KEY-----"));
        let mut c = ssl(&b.addr(), &pki.ca_cert);
        c.security.tls.client_certificate = Some(inline_cert(&pki.client.cert_pem, &sec1));
        exercise(c).await.expect("mTLS with a SEC1 key");
    })
    .await;
}

#[tokio::test]
async fn a_missing_client_certificate_says_one_is_required() {
    within(async {
        let pki = TestPki::generate();
        let says = ["requires a client certificate", "ssl.certificate.location"];
        let client = |addr: &str| ssl(addr, &pki.ca_cert);
        mutual_tls_refuses(&pki, client, "no client certificate", &says).await;
    })
    .await;
}

#[tokio::test]
async fn a_client_certificate_the_broker_does_not_trust_is_rejected() {
    within(async {
        let pki = TestPki::generate();
        let says = ["rejected the client certificate"];
        let client = |addr: &str| ssl_with_cert(addr, &pki, &pki.unrelated_client);
        mutual_tls_refuses(&pki, client, "an untrusted client certificate", &says).await;
    })
    .await;
}

#[tokio::test]
async fn the_advertised_name_is_verified_when_the_address_map_dials_another_address() {
    within(async {
        let pki = TestPki::generate();
        // Bootstrap through a proxy with the usual certificate; the broker's own connections
        // go through a second proxy whose certificate names `localhost` only.
        let b = Behind::serving(&pki.server).await;
        // A client that bootstraps through `b` and dials `advertised` at `proxy`'s address.
        let mapped = |advertised: &str, proxy: &TlsProxy| {
            let mut c = ssl(&b.addr(), &pki.ca_cert);
            c.address_map
                .insert(advertised, &proxy.addr().to_string())
                .expect("map");
            c
        };
        let broker_proxy = b.another_proxy(&pki.localhost_only, "second proxy").await;
        // Advertised at a port nothing listens on: only the map makes it reachable.
        b.cluster.set_advertised(0, "localhost:1");
        exercise(mapped("localhost:1", &broker_proxy))
            .await
            .expect("verified against the advertised name, localhost");
        assert!(broker_proxy.stats().handshakes >= 1);
        assert_eq!(broker_proxy.stats().failed_handshakes, 0);

        // Advertised as the name in another certificate: verified against that name too.
        let other = b.another_proxy(&pki.other_name, "third proxy").await;
        let advertised = format!("{}:9093", TestPki::OTHER_NAME);
        b.cluster.set_advertised(0, &advertised);
        exercise(mapped(&advertised, &other))
            .await
            .expect("verified against the advertised name");
    })
    .await;
}

#[tokio::test]
async fn a_broker_certificate_for_the_wrong_name_is_a_tls_error_not_the_listener_trap() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::serving(&pki.server).await;
        let wrong = b.another_proxy(&pki.other_name, "second proxy").await;
        b.cluster.set_advertised(0, &wrong.addr().to_string());
        let client = Client::connect(ssl(&b.addr(), &pki.ca_cert))
            .await
            .expect("bootstrap is fine");
        for _ in 0..3 {
            let e = client
                .send_to(0, &metadata_for("x"))
                .await
                .expect_err("the broker's certificate names another host");
            let reason = tls_reason(&e, &pki);
            assert!(
                reason.contains(TestPki::OTHER_NAME) && reason.contains("127.0.0.1"),
                "{reason}"
            );
        }
    })
    .await;
}

#[tokio::test]
async fn a_silent_port_times_out_in_the_tls_handshake_retriably() {
    within(async {
        let pki = TestPki::generate();
        // Accepts connections and never answers (holding them open).
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr").to_string();
        let holder = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = listener.accept().await {
                held.push(s);
            }
        });
        let connector = TlsConnector::new(&TlsConfig {
            trust: TrustRoots::Pem(pki.ca_cert.clone()),
            ..TlsConfig::default()
        })
        .expect("connector");
        let config = ConnectionConfig {
            tls: Some(connector),
            ..ConnectionConfig::default()
        };
        let e = Connection::connect(&addr, config, Duration::from_millis(300))
            .await
            .expect_err("nothing answers");
        let Error::Io { source, .. } = &e else {
            panic!("expected an I/O timeout, got {e:?}");
        };
        assert_eq!(source.kind(), std::io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("stuck in the TLS handshake"), "{e}");
        assert!(e.is_retriable());
        holder.abort();
    })
    .await;
}

#[tokio::test]
async fn bad_settings_are_config_errors_without_key_material() {
    let pki = TestPki::generate();
    let config_error = |c: TlsConfig| match TlsConnector::new(&c) {
        Err(Error::Config(m)) => {
            assert_no_key_material(&m, &pki);
            m
        }
        other => panic!("expected a Config error, got {other:?}"),
    };

    let m = config_error(TlsConfig {
        trust: TrustRoots::PemFile("/nonexistent/ca.pem".into()),
        ..TlsConfig::default()
    });
    assert!(
        m.contains("/nonexistent/ca.pem") && m.contains("cannot read"),
        "{m}"
    );
    let m = config_error(TlsConfig {
        trust: TrustRoots::Pem("no PEM here".into()),
        ..TlsConfig::default()
    });
    assert!(m.contains("no certificate found"), "{m}");

    // The key of another certificate.
    let m = config_error(with_cert(&pki, &pki.client.cert_pem, &pki.server.key_pem));
    assert!(m.contains("does not belong"), "{m}");
    // A certificate where the key should be.
    let m = config_error(with_cert(&pki, &pki.client.cert_pem, &pki.client.cert_pem));
    assert!(
        m.contains("no private key found") && m.contains("PKCS#1"),
        "{m}"
    );
    // A damaged key: the error does not quote it.
    let damaged = pki.client.key_pem.replacen('A', "!", 3);
    let m = config_error(with_cert(&pki, &pki.client.cert_pem, &damaged));
    assert!(!m.contains('!'), "{m}");
    let truncated: String = pki
        .client
        .key_pem
        .lines()
        .take(2)
        .collect::<Vec<_>>()
        .join("\n");
    let m = config_error(with_cert(&pki, &pki.client.cert_pem, &truncated));
    assert!(m.contains("no END line"), "{m}");

    // A key file that does not exist is named.
    let m = config_error(TlsConfig {
        client_certificate: Some(ClientCertificate {
            chain: PemSource::Inline(Secret::from(pki.client.cert_pem.as_str())),
            key: PemSource::File("/nonexistent/client.key".into()),
        }),
        ..with_cert(&pki, "", "")
    });
    assert!(m.contains("/nonexistent/client.key"), "{m}");

    // Debug output of the settings and of the connector holds no key either.
    let good = with_cert(&pki, &pki.client.cert_pem, &pki.client.key_pem);
    assert_no_key_material(&format!("{good:?}"), &pki);
    let connector = TlsConnector::new(&good).expect("good settings");
    let shown = format!("{connector:?}");
    assert_no_key_material(&shown, &pki);
    assert!(shown.contains("client_certificate: true"), "{shown}");
}

#[tokio::test]
async fn keys_load_in_pkcs8_pkcs1_and_sec1() {
    let pki = TestPki::generate();
    let load = |chain: &str, key: &str| TlsConnector::new(&with_cert(&pki, chain, key));
    load(&pki.client.cert_pem, &pki.client.key_pem).expect("PKCS#8");
    load(
        &pki.client.cert_pem,
        &pkcs8_to_sec1_pem(&pki.client.key_pem),
    )
    .expect("SEC1");
    assert!(RSA_PKCS1_KEY.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    load(RSA_CERT, RSA_PKCS1_KEY).expect("PKCS#1");
    // From files, too.
    let dir = std::env::temp_dir().join(format!("kafkawire-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let (ca, cert, key) = (
        dir.join("ca.pem"),
        dir.join("client.pem"),
        dir.join("client.key"),
    );
    std::fs::write(&ca, &pki.ca_cert).expect("write");
    std::fs::write(&cert, &pki.client.cert_pem).expect("write");
    std::fs::write(&key, &pki.client.key_pem).expect("write");
    let from_files = TlsConnector::new(&TlsConfig {
        trust: TrustRoots::PemFile(ca),
        client_certificate: Some(ClientCertificate {
            chain: PemSource::File(cert),
            key: PemSource::File(key),
        }),
        verify_server_name: true,
        crypto_provider: None,
    });
    let _ = std::fs::remove_dir_all(&dir);
    from_files.expect("PEM files");
    TlsConnector::new(&TlsConfig {
        trust: TrustRoots::WebPki,
        ..TlsConfig::default()
    })
    .expect("the compiled-in roots");
}

/// Rewrites a PKCS#8 EC key (PEM) as SEC1 (`BEGIN EC PRIVATE KEY`): the ECPrivateKey inside
/// the PKCS#8 structure's privateKey octet string.
fn pkcs8_to_sec1_pem(pkcs8_pem: &str) -> String {
    let body: String = pkcs8_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64_decode(&body);
    // SEQUENCE { INTEGER version, SEQUENCE algorithm, OCTET STRING privateKey, ... }
    let (tag, outer, _) = tlv(&der);
    assert_eq!(tag, 0x30);
    let (_, _, rest) = tlv(outer);
    let (_, _, rest) = tlv(rest);
    let (tag, sec1, _) = tlv(rest);
    assert_eq!(tag, 0x04);
    let b64 = base64_encode(sec1);
    let mut pem = String::from("-----BEGIN EC PRIVATE KEY-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        pem.push_str(std::str::from_utf8(chunk).expect("ascii"));
        pem.push('\n');
    }
    pem.push_str("-----END EC PRIVATE KEY-----\n");
    pem
}

/// One DER tag-length-value: (tag, value, what follows).
fn tlv(b: &[u8]) -> (u8, &[u8], &[u8]) {
    let tag = b[0];
    let (len, start) = match b[1] {
        l if l < 0x80 => (l as usize, 2),
        l => {
            let n = (l & 0x7f) as usize;
            let len = b[2..2 + n]
                .iter()
                .fold(0usize, |a, x| (a << 8) | *x as usize);
            (len, 2 + n)
        }
    };
    (tag, &b[start..start + len], &b[start + len..])
}

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_decode(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in s.bytes().filter(|c| *c != b'=') {
        let v = B64.iter().position(|x| *x == c).expect("base64") as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    out
}

fn base64_encode(b: &[u8]) -> String {
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = chunk.iter().fold(0u32, |a, x| (a << 8) | *x as u32) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A throwaway RSA key in PKCS#1 (`BEGIN RSA PRIVATE KEY`) and a self-signed certificate for
/// it, made for this test only (ring, which the tests generate keys with, cannot make RSA keys).
const RSA_PKCS1_KEY: &str = concat!(
    "-----BEGIN RSA PRIVATE KEY-----\n",
    "MIIEowIBAAKCAQEAqAlU984vIVebKcVXleX3YpTPEScpbN0YENTcLk4CJDU+5GnV\n",
    "CcgX45+8aCB2r55t/dQARRW7VLAwHpZK5nbERfwEXEFmH28l3oZhwvRt7xAvAJGL\n",
    "n+ypiXz2PbWByKbvERLxkKg0IILJ4+2Tgq9RZKm40iJiQgMJizVNTwxYnbrMGT4A\n",
    "4kRUhMVwbHDIZ4yDfqsbk1Eok1Gm0Tz0RiEyc9C4IWVUjZ3OEBAffWRMFY1NW5aB\n",
    "vwWeH3XF8mFE7QnJ+4qKOEr3H1fusSZre2nh+QbPfRLdkGN2p4/tvXXYnz40vB3/\n",
    "3vqIWo/1K+sWi51mzYXoECBzDExt0/YIzP+QIQIDAQABAoIBAEBMGdQcdBJJCFlK\n",
    "ZsI31ZpGIJmKp6I9U3kVSg750H30VdVm3Zq5ktKJi7k4OtHmSGYo2dWVhDHanP8H\n",
    "OS/IYD/7N9vpNl9u00m7l+rWRr6ELcgE6S1PjGvMghiIvFl/7thUrFRS2GdcRE5P\n",
    "2PLXjMh83PijKX/i06MNyUAnFD193rlVuepByfGVR8U5jIVW5mIN2LSrtuRMbPsJ\n",
    "qRXEdl3yw/Zo1aFGGN7rWqFeKKLYX7Jyp+C2Ofu8Fn8qamDYyFBaSswy2BpNe8Bx\n",
    "Nwyaa3lgn/mN6rz23DtHS8lwrdQbh9At3h66nQN2RrdXJalGUP27FiN/jiHJ/7N2\n",
    "Ofkn6aUCgYEA2QqBw+cpn/CIk0Z/k0dPUXGCoFYEV9jKk9qlptC7giLHnRQfiwTE\n",
    "ZaRp+/X2/uSRxsrX5qN/4z2kF+M72fZTPV8NZRLARUd33W7iJWqhllfsotQ4hSv3\n",
    "YKJKe5Zcum7u6dbqefgAC5DrWgHYtNaAz/7LDKRYW8bZLEqlUnYViDsCgYEAxjL1\n",
    "/Ed6QWRgs9bX0kmudljcyZMb4UbM2MJwbViC+ciJHJdv8rw2FwRtjq5NpQ5tLAcM\n",
    "RO7uKqqMmKOW9kmVop6bJYJXWlBHesPavikvr9lKBLOSsDz1xE9UN47ssp+RszWW\n",
    "MifGYBnRa3vs5/IZC0QrGf5WuoiCRyqz/wp731MCgYATxWNAx0QBb9XhJKDmd66A\n",
    "CskNdgh7QCJkCZzhb05Fcomgg37EGTES2UFWVHeljIjDBSNZvTcfKjRSgL6pAkle\n",
    "49PCi0y8guAmab1sDySdH3FM++wSJYkpYl9Kls3npcdZwdwmNDM82ny1/EkTYB7n\n",
    "05wHkMkDwz9xS3N36Y3YlQKBgQDF4zfLDSq5g5kxtf6CTWLNcufustyRTnlUqr5J\n",
    "zqfm8RxE2cbCWry+uoMQhGOtuvuxi8/qO4y8ONBrzln5yXqHhUhuaPcCi0jy//21\n",
    "A7ZDIvZOP2TkZdkUiggR+LfHmJ6GiahOp3vfk6eOY4skAoqSvxsxtsmtMIKyv6Y7\n",
    "rKIFVQKBgCI0ElOe/RwDQQzdF/xCzoXMm08SInK0gBKWtLZhAkHPIrhN8WIM99Gz\n",
    "9llI5lzxTvHwLYF7hxlrCSb5/7XHfG9kXPAgDwK8Shi6w3G1TSZBGrmLOm5ti8gr\n",
    "XxslGdvPTeMCxvvUUqt7e3f9GCbbId68+IzMQMBYqQOraBZu8tU5\n",
    "-----END RSA PRIVATE KEY-----\n",
);

const RSA_CERT: &str = concat!(
    "-----BEGIN CERTIFICATE-----\n",
    "MIIC7zCCAdegAwIBAgIUXNpXwo3g0x/rjPCbwTZNFFMusG8wDQYJKoZIhvcNAQEL\n",
    "BQAwJDEiMCAGA1UEAwwZa2Fma2F3aXJlLXRlc3QtcnNhLWNsaWVudDAgFw0yMDAx\n",
    "MDEwMDAwMDBaGA8yMDgwMDEwMTAwMDAwMFowJDEiMCAGA1UEAwwZa2Fma2F3aXJl\n",
    "LXRlc3QtcnNhLWNsaWVudDCCASIwDQYJKoZIhvcNAQEBBQADggEPADCCAQoCggEB\n",
    "AKgJVPfOLyFXmynFV5Xl92KUzxEnKWzdGBDU3C5OAiQ1PuRp1QnIF+OfvGggdq+e\n",
    "bf3UAEUVu1SwMB6WSuZ2xEX8BFxBZh9vJd6GYcL0be8QLwCRi5/sqYl89j21gcim\n",
    "7xES8ZCoNCCCyePtk4KvUWSpuNIiYkIDCYs1TU8MWJ26zBk+AOJEVITFcGxwyGeM\n",
    "g36rG5NRKJNRptE89EYhMnPQuCFlVI2dzhAQH31kTBWNTVuWgb8Fnh91xfJhRO0J\n",
    "yfuKijhK9x9X7rEma3tp4fkGz30S3ZBjdqeP7b112J8+NLwd/976iFqP9SvrFoud\n",
    "Zs2F6BAgcwxMbdP2CMz/kCECAwEAAaMXMBUwEwYDVR0lBAwwCgYIKwYBBQUHAwIw\n",
    "DQYJKoZIhvcNAQELBQADggEBAEGxqiBeGxh8zX6uwQ1fTswu1UDVQaoMvB7NErtq\n",
    "sA0+QvoLEi9scj1VimPHRKvv/PnNgfmY+xqDp63C0fkGijNkHFH/dg5spdjdGR5S\n",
    "swVgwxyvur9UNnl3ysFadqfoxWNeyRgkT/Tg0rA9Mnx/zmXY6CvPDGpndZv27TBP\n",
    "asU7tTvCvhe9TUQuNPo1L1UDwg7lJ8Ad54rz+B9KuxPp0tqXWub6x8Qiayb49iyw\n",
    "ALD76TOYERcgqlC6Gd7wPaYLmq9O2rVct9CmUIR8AJv1IYaRjCnU3W6yyuTWLZAa\n",
    "lkgTIAJdhya44B5+pyPQOR17TufCz3SNGKNXvJlSjkQ28qc=\n",
    "-----END CERTIFICATE-----\n",
);

#[tokio::test]
async fn sasl_ssl_authenticates_over_tls_with_mutual_tls() {
    within(async {
        use kafkawire_client::SaslConfig;
        use kafkawire_testkit::mock::SaslServerConfig;
        let pki = TestPki::generate();
        let b = Behind::start(mutual_tls(&pki)).await;
        b.cluster
            .enable_sasl(SaslServerConfig::default().user("alice", "tls-and-scram"));
        let mut c = ssl_with_cert(&b.addr(), &pki, &pki.client);
        c.security.protocol = SecurityProtocol::SaslSsl;
        c.security.sasl = Some(SaslConfig::scram_sha512("alice", "tls-and-scram"));
        exercise(c.clone()).await.expect("SASL_SSL with mutual TLS");
        assert!(b.cluster.authentications() >= 1);
        // Wrong password over TLS: the SASL error, not a TLS one.
        c.security.sasl = Some(SaslConfig::scram_sha512("alice", "wrong"));
        let e = Client::connect(c).await.expect_err("refused");
        assert!(matches!(e, Error::Authentication { .. }), "{e:?}");
        assert!(!e.to_string().contains("tls-and-scram"), "{e}");
    })
    .await;
}

/// *ring*'s provider, keeping only the cipher suites `keep` accepts.
#[allow(deprecated)]
fn ring_with_suites(
    keep: impl Fn(&rustls::SupportedCipherSuite) -> bool,
) -> Arc<rustls::crypto::CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    provider.cipher_suites.retain(|s| keep(s));
    Arc::new(provider)
}

#[tokio::test]
async fn the_configured_crypto_provider_is_the_one_connections_use() {
    within(async {
        let pki = TestPki::generate();
        let b = Behind::start(TlsProxyConfig::new(&pki.server).tls12_only()).await;
        // The built-in provider speaks TLS 1.2; so does an application's full provider.
        exercise(ssl(&b.addr(), &pki.ca_cert)).await.unwrap();
        let mut full = ssl(&b.addr(), &pki.ca_cert);
        full.security.tls.crypto_provider = Some(ring_with_suites(|_| true));
        exercise(full).await.unwrap();
        // A provider with TLS 1.3 suites only cannot reach a TLS 1.2 broker: the connector
        // used it, not the built-in one.
        let mut tls13 = ssl(&b.addr(), &pki.ca_cert);
        tls13.security.tls.crypto_provider = Some(ring_with_suites(|s| s.tls13().is_some()));
        let reason = tls_failure(tls13, &pki, "TLS 1.3 suites against a TLS 1.2 broker").await;
        assert!(!reason.is_empty());
        // A provider without any suite is refused before connecting.
        let none = TlsConfig {
            crypto_provider: Some(ring_with_suites(|_| false)),
            ..TlsConfig::default()
        };
        match TlsConnector::new(&none) {
            Err(Error::Config(m)) => assert!(m.contains("TLS setup failed"), "{m}"),
            other => panic!("expected a Config error, got {other:?}"),
        }
    })
    .await
}
