//! TLS against a real broker: Tansu (which speaks plaintext only) behind a TLS-terminating
//! [`TlsProxy`]. The broker advertises its own plaintext address; the client maps it to the
//! proxy with the address map and verifies the certificate against the advertised host
//! (`127.0.0.1`, an IP address SAN of the test certificate). Each test starts a Tansu of its
//! own (the proxy needs the broker's address).
mod common;

use std::time::Duration;

use kafkawire::client::tls::{ClientCertificate, PemSource, TlsConfig, TrustRoots};
use kafkawire::client::{Secret, SecurityProtocol};
use kafkawire::{
    BrokerAddressMap, Client, ClientConfig, PartitionConsumer, Producer, ProducerRecord,
    StartOffset,
};
use kafkawire_testkit::tls_proxy::{Identity, TestPki, TlsProxy, TlsProxyConfig};

use common::{Owned, TestBroker};

const PARTITIONS: i32 = 3;

/// A client that reaches `broker` only through `proxy`, over TLS, trusting the test CA.
async fn tls_client(
    broker: &TestBroker,
    proxy: &TlsProxy,
    pki: &TestPki,
    client_cert: Option<&Identity>,
) -> Client {
    let tansu = broker.tansu().expect("a Tansu of this test");
    let mut map = BrokerAddressMap::default();
    map.insert(tansu.advertised(), &proxy.addr().to_string())
        .expect("map");
    let mut c = ClientConfig::new(&proxy.addr().to_string());
    c.address_map = map;
    c.security.protocol = SecurityProtocol::Ssl;
    c.security.tls = TlsConfig {
        trust: TrustRoots::Pem(pki.ca_cert.clone()),
        client_certificate: client_cert.map(|id| ClientCertificate {
            chain: PemSource::Inline(Secret::from(id.cert_pem.as_str())),
            key: PemSource::Inline(Secret::from(id.key_pem.as_str())),
        }),
        verify_server_name: true,
        crypto_provider: None,
    };
    Client::connect(c)
        .await
        .unwrap_or_else(|e| panic!("connect over TLS: {e}"))
}

/// Produces `n` keyed records with a header over `client`, reads them back from the start and
/// checks every one, in order per partition.
async fn round_trip(client: &Client, topic: &str, n: usize) {
    common::create_topic(client, topic, PARTITIONS).await;
    let producer = Producer::builder(client).build().expect("valid config");
    let records: Vec<ProducerRecord> = (0..n)
        .map(|i| {
            ProducerRecord::new(topic, format!("value-{i:05}-{:-<80}", ""))
                .key(format!("key-{}", i % 97))
                .header("i", i.to_string())
        })
        .collect();
    let written = producer
        .send_batch(records.clone())
        .await
        .expect("produce over TLS");
    producer.close(Duration::from_secs(5)).await.expect("close");
    assert_eq!(written.len(), n);

    let mut consumer = PartitionConsumer::new(client, common::quick_consumer_config());
    for p in 0..PARTITIONS {
        consumer
            .assign(topic, p, StartOffset::Earliest)
            .await
            .expect("assign");
    }
    let got = common::drain(&mut consumer, n).await;
    for p in 0..PARTITIONS {
        let want: Vec<Owned> = records
            .iter()
            .zip(&written)
            .filter(|(_, m)| m.partition == p)
            .map(|(r, m)| Owned::expected(m.offset, r))
            .collect();
        assert!(!want.is_empty(), "partition {p} got records");
        assert_eq!(got.of(topic, p), want.as_slice(), "partition {p}");
    }
    common::assert_no_more(&mut consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_over_tls() {
    let broker = common::own_tansu();
    let pki = TestPki::generate();
    tokio::time::timeout(Duration::from_secs(60), async {
        let proxy = TlsProxy::start(broker.bootstrap(), TlsProxyConfig::new(&pki.server))
            .await
            .expect("TLS proxy");
        let client = tls_client(&broker, &proxy, &pki, None).await;
        round_trip(&client, &broker.topic("tls"), 10_000).await;
        let stats = proxy.stats();
        assert!(
            stats.handshakes >= 2,
            "bootstrap and broker connections: {stats:?}"
        );
        assert_eq!(stats.failed_handshakes, 0, "{stats:?}");
    })
    .await
    .expect("finished within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutual_tls_round_trip() {
    let broker = common::own_tansu();
    let pki = TestPki::generate();
    tokio::time::timeout(Duration::from_secs(60), async {
        let config = TlsProxyConfig::new(&pki.server).require_client_cert(&pki.client_ca_cert);
        let proxy = TlsProxy::start(broker.bootstrap(), config)
            .await
            .expect("TLS proxy");
        let client = tls_client(&broker, &proxy, &pki, Some(&pki.client)).await;
        round_trip(&client, &broker.topic("mtls"), 1_000).await;
        assert_eq!(proxy.stats().failed_handshakes, 0);

        // Without the certificate the same broker refuses, and says why.
        let mut c = client.config().clone();
        c.security.tls.client_certificate = None;
        let e = Client::connect(c)
            .await
            .expect_err("a client certificate is required");
        assert!(!e.is_retriable());
        assert!(
            e.to_string().contains("requires a client certificate"),
            "{e}"
        );
    })
    .await
    .expect("finished within 60 s");
}
