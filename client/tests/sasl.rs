//! SASL against the mock broker, whose server side is independent of the client's (SCRAM on the
//! `rsasl` crate): every mechanism authenticates; wrong credentials, a mechanism the broker does
//! not enable and a refused re-authentication give clear, non-retriable errors with no secret in
//! them; a session lifetime makes connections authenticate again (KIP-368) while requests go on.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use kafkawire_client::{
    Client, ClientConfig, Error, SaslConfig, SecurityProtocol, UnsecuredJwsProvider,
};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_testkit::mock::{MockCluster, SaslServerConfig};

const PASSWORD: &str = "correct-horse-battery-staple";

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test did not finish within 20 s")
}

async fn sasl_cluster(lifetime: Option<Duration>) -> MockCluster {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    let mut server = SaslServerConfig::default().user("alice", PASSWORD);
    if let Some(l) = lifetime {
        // Short sessions re-authenticate often: fewer SCRAM iterations keep that cheap in a
        // debug build on a loaded machine.
        server = server.session_lifetime(l).scram_iterations(512);
    }
    cluster.enable_sasl(server);
    cluster
}

fn config(cluster: &MockCluster, sasl: SaslConfig) -> ClientConfig {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = Duration::from_secs(5);
    c.security.protocol = SecurityProtocol::SaslPlaintext;
    c.security.sasl = Some(sasl);
    c
}

#[tokio::test]
async fn every_mechanism_authenticates_and_requests_are_answered() {
    within(async {
        let cluster = sasl_cluster(None).await;
        let jws = UnsecuredJwsProvider::new("alice").extension("logicalCluster", "lkc-42");
        for sasl in [
            SaslConfig::plain("alice", PASSWORD),
            SaslConfig::scram_sha256("alice", PASSWORD),
            SaslConfig::scram_sha512("alice", PASSWORD),
            SaslConfig::oauthbearer(Arc::new(jws.clone())),
        ] {
            let mechanism = sasl.mechanism;
            let before = cluster.authentications();
            let client = Client::connect(config(&cluster, sasl))
                .await
                .unwrap_or_else(|e| panic!("{mechanism}: {e}"));
            let meta = client.refresh_metadata(&["t"]).await.expect("metadata");
            assert!(meta.topics.contains_key("t"), "{mechanism}");
            assert!(
                cluster.authentications() > before,
                "{mechanism}: the broker counted the authentication"
            );
        }
        let ext = cluster.oauth_extensions();
        assert_eq!(
            ext.last()
                .and_then(|e| e.get("logicalCluster"))
                .map(String::as_str),
            Some("lkc-42"),
            "KIP-342 extension received"
        );
    })
    .await;
}

fn assert_no_secret(e: &Error) {
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains(PASSWORD), "{shown}");
    assert!(!shown.contains("wrong-password"), "{shown}");
    assert!(!e.is_retriable(), "{e}");
}

#[tokio::test]
async fn wrong_credentials_fail_clearly_and_are_not_retriable() {
    within(async {
        let cluster = sasl_cluster(None).await;
        for sasl in [
            SaslConfig::plain("alice", "wrong-password"),
            SaslConfig::scram_sha256("alice", "wrong-password"),
            SaslConfig::scram_sha512("mallory", "wrong-password"),
        ] {
            let mechanism = sasl.mechanism;
            let e = Client::connect(config(&cluster, sasl))
                .await
                .expect_err("refused");
            match &e {
                Error::Authentication {
                    mechanism: m,
                    broker,
                    ..
                } => {
                    assert_eq!(m, mechanism.name());
                    assert_eq!(broker, &cluster.broker_addr(0));
                }
                other => panic!("{mechanism}: expected Authentication, got {other:?}"),
            }
            assert_no_secret(&e);
        }
    })
    .await;
}

#[tokio::test]
async fn a_mechanism_the_broker_does_not_enable_names_those_it_does() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.enable_sasl(SaslServerConfig::new(&["SCRAM-SHA-512"]).user("alice", PASSWORD));
        let e = Client::connect(config(&cluster, SaslConfig::plain("alice", PASSWORD)))
            .await
            .expect_err("PLAIN is not enabled");
        let text = e.to_string();
        assert!(
            text.contains("does not enable PLAIN") && text.contains("SCRAM-SHA-512"),
            "{text}"
        );
        assert_no_secret(&e);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_renewed_while_requests_keep_flowing() {
    within(async {
        let cluster = sasl_cluster(Some(Duration::from_millis(300))).await;
        let client = Client::connect(config(
            &cluster,
            SaslConfig::scram_sha512("alice", PASSWORD),
        ))
        .await
        .expect("connect");
        let conn = client.broker_connection(0).await.expect("connection");
        let connections = cluster.broker(0).connections();
        let connections_auth = cluster.broker(0).authentications();
        // Requests pipelined 4 at a time until the connection has re-authenticated 4 times
        // (about 1.1 s of 300 ms sessions; 15 s at most): every one is answered, on the same
        // connection.
        let started = std::time::Instant::now();
        let mut answered = 0;
        while cluster.broker(0).authentications() < connections_auth + 4 {
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "only {} authentications after 15 s",
                cluster.broker(0).authentications()
            );
            let req = kafkawire_protocol::messages::metadata_request::MetadataRequest {
                topics: Some(Vec::new()),
                ..Default::default()
            };
            let mut futs = Vec::new();
            for _ in 0..4 {
                futs.push(conn.send_ordered(&req).expect("queued"));
            }
            for f in futs {
                f.await.expect("answered");
                answered += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!(answered > 20, "{answered}");
        assert!(!conn.is_closed(), "the connection stayed open");
        assert_eq!(cluster.broker(0).connections(), connections, "no reconnect");

        assert_eq!(
            cluster.request_count(ApiKey::SaslHandshake),
            cluster.authentications(),
            "one handshake per authentication"
        );
    })
    .await;
}
