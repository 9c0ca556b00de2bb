//! SASL with the producer and consumer, against the mock broker (Tansu has no working SASL):
//! 100,000 records produced and consumed while the broker's session lifetime forces every
//! connection to authenticate again many times (KIP-368), with nothing lost, duplicated or
//! reordered. And secrets hygiene: no configuration or error type shows a password, token or
//! key through `Debug` or `Display`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkawire::{
    Client, ClientCertificate, ClientConfig, Consumer, Error, OffsetReset, PemSource, Producer,
    ProducerRecord, SaslConfig, Secret, SecurityConfig, SecurityProtocol, TlsConfig, TrustRoots,
    UnsecuredJwsProvider,
};
use kafkawire_testkit::mock::{MockCluster, SaslServerConfig};

const PASSWORD: &str = "s3cret-Pa55word-for-the-test";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_records_through_repeated_reauthentication_arrive_exactly_once() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 3);
    cluster.enable_sasl(
        SaslServerConfig::default()
            .user("alice", PASSWORD)
            .session_lifetime(Duration::from_millis(100))
            .scram_iterations(512),
    );
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.security.protocol = SecurityProtocol::SaslPlaintext;
    c.security.sasl = Some(SaslConfig::scram_sha256("alice", PASSWORD));
    let client = Client::connect(c).await.expect("connect");
    let started = Instant::now();

    const N: usize = 100_000;
    let producer = Producer::builder(&client)
        .linger(Duration::from_millis(5))
        .build()
        .expect("valid config");
    let mut futures = Vec::with_capacity(N);
    for i in 0..N {
        let r = ProducerRecord::new("t", format!("{i:07}")).key(format!("k{}", i % 31));
        futures.push(producer.send(r).await.expect("accepted"));
        if i % 5_000 == 4_999 {
            // Spread the run over several session lifetimes.
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }
    for (i, f) in futures.into_iter().enumerate() {
        f.await.unwrap_or_else(|e| panic!("record {i}: {e}"));
    }
    producer.close(Duration::from_secs(5)).await.expect("close");
    let after_produce = cluster.authentications();

    let mut consumer = Consumer::builder(&client)
        .assign([("t", 0), ("t", 1), ("t", 2)])
        .max_poll_records(2_000)
        // Small fetches, so that many requests cross the session ends.
        .max_partition_fetch_bytes(32 * 1024)
        .fetch_max_bytes(64 * 1024)
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .expect("consumer");
    let mut seen = vec![false; N];
    let mut last: [Option<usize>; 3] = [None; 3];
    let mut read = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while read < N {
        assert!(Instant::now() < deadline, "read {read} of {N}");
        let records = consumer
            .poll(Duration::from_millis(500))
            .await
            .expect("poll");
        for r in &records {
            let r = r.expect("a well-formed record");
            let i: usize = std::str::from_utf8(r.value().expect("value"))
                .expect("utf-8")
                .parse()
                .expect("index");
            assert!(!seen[i], "record {i} twice");
            seen[i] = true;
            let p = r.partition() as usize;
            assert!(last[p].is_none_or(|l| l < i), "partition {p} out of order");
            last[p] = Some(i);
            read += 1;
        }
        // Slow enough that sessions end while reading too.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let total = cluster.authentications();
    eprintln!(
        "{N} records in {:?}; authentications: {after_produce} after producing, {total} in all",
        started.elapsed()
    );
    // Every connection authenticated at least once; several sessions were renewed on top.
    assert!(
        after_produce >= cluster.broker(0).connections() + 5 && total >= after_produce + 5,
        "{total} authentications over {} connections",
        cluster.broker(0).connections()
    );
}

#[test]
fn no_configuration_or_error_shows_a_secret() {
    let key_pem =
        "-----BEGIN PRIVATE KEY-----\nMIIsecretkeymaterialQQQ\n-----END PRIVATE KEY-----\n";
    let token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhbGljZSJ9.";
    let secrets = [PASSWORD, "MIIsecretkeymaterialQQQ", token];
    let mut config = ClientConfig::new("127.0.0.1:9092");
    config.security = SecurityConfig {
        protocol: SecurityProtocol::SaslSsl,
        tls: TlsConfig {
            trust: TrustRoots::Pem("-----BEGIN CERTIFICATE-----\nMIIpublic\n".into()),
            client_certificate: Some(ClientCertificate {
                chain: PemSource::File("/etc/kafka/client.pem".into()),
                key: PemSource::Inline(Secret::from(key_pem)),
            }),
            verify_server_name: true,
            crypto_provider: None,
        },
        sasl: Some(SaslConfig::scram_sha512("alice", PASSWORD)),
    };
    let token_provider = UnsecuredJwsProvider::new("alice");
    let oauth = SaslConfig::oauthbearer(Arc::new(token_provider.clone()));
    let minted = token_provider.token_at(1_700_000_000_000).expect("token");
    let errors = [
        Error::Authentication {
            broker: "b:9093".into(),
            mechanism: "SCRAM-SHA-512".into(),
            reason: "Authentication failed during authentication due to invalid credentials".into(),
        },
        Error::Tls {
            broker: "b:9093".into(),
            reason: "the broker requires a client certificate".into(),
        },
        Error::Config("bad setting".into()),
    ];
    let mut shown = vec![
        format!("{config:?}"),
        format!("{config:#?}"),
        format!("{:?}", config.security),
        format!("{oauth:?}"),
        format!("{minted:?}"),
        format!("{:?} {}", minted.value, minted.value),
        format!("{:?}", Secret::from(PASSWORD)),
        format!("{}", Secret::from(PASSWORD)),
    ];
    for e in &errors {
        shown.push(format!("{e} {e:?}"));
    }
    for text in &shown {
        for secret in secrets {
            assert!(!text.contains(secret), "{secret:?} shown in: {text}");
        }
        assert!(
            !text.contains(minted.value.expose()),
            "the token shown in: {text}"
        );
    }
    // The settings themselves are still visible, for diagnosis.
    assert!(
        shown[0].contains("alice") && shown[0].contains("SaslSsl"),
        "{}",
        shown[0]
    );
}
