//! `Client::stats` against the in-process mock broker: requests per broker and API, bytes both
//! ways, latency, requests in flight, throttle time, failed requests, connects and reconnects;
//! and, with the `metrics` feature, the same counters through a recorder installed in the test.

use std::future::Future;
use std::time::Duration;

use kafkawire_client::{Admin, Client, ClientConfig, LatencyHistogram};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::metadata_response::MetadataResponse;
use kafkawire_testkit::mock::{Action, MockCluster};

async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("test did not finish within 15 s")
}

async fn connect(cluster: &MockCluster) -> Client {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.reconnect_backoff = Duration::from_millis(1);
    Client::connect(c).await.expect("connect to the mock")
}

#[tokio::test]
async fn requests_bytes_and_latency_are_counted_per_broker_and_api() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("counted", 2);
        let client = connect(&cluster).await;
        let addr = cluster.broker_addr(0);

        let first = client.stats();
        assert_eq!(first.brokers.len(), 1, "{first:?}");
        let b = first.broker(&addr).expect("the bootstrap broker");
        // The setup: one ApiVersions, then the client's first Metadata.
        assert_eq!(b.api(ApiKey::ApiVersions).map(|a| a.requests), Some(1));
        assert_eq!(b.api(ApiKey::Metadata).map(|a| a.requests), Some(1));
        assert_eq!(
            (b.connects, b.reconnects, b.errors, b.in_flight),
            (1, 0, 0, 0)
        );

        for _ in 0..5 {
            client.refresh_metadata(&["counted"]).await.unwrap();
        }
        let offsets = Admin::new(&client)
            .list_offset("counted", 1, kafkawire_client::offset_spec::LATEST)
            .await
            .unwrap();
        assert_eq!(offsets, 0);

        let s = client.stats();
        assert_eq!(s.requests(ApiKey::Metadata), 6);
        assert_eq!(s.requests(ApiKey::ListOffsets), 1);
        // Exactly what the broker saw.
        for api in [ApiKey::ApiVersions, ApiKey::Metadata, ApiKey::ListOffsets] {
            assert_eq!(
                s.requests(api) as usize,
                cluster.request_count(api),
                "{api:?}"
            );
        }
        let b = s.broker(&addr).unwrap();
        // The leader of partition 1 is broker 0, reached at the same address: one entry, now
        // with its node id, and still one connection (the leader's shared connection is a
        // second one to the same address, not a reconnect).
        assert_eq!(s.brokers.len(), 1, "{s:?}");
        assert_eq!(b.node_id, Some(0));
        assert_eq!(b.connects, 2);
        assert_eq!(b.reconnects, 0);
        assert_eq!(b.requests, s.total_requests());
        // ApiVersions on each of the two connections, 6 Metadata, 1 ListOffsets.
        assert_eq!(b.requests, 2 + 6 + 1, "{b:?}");
        let metadata = b.api(ApiKey::Metadata).unwrap();
        assert_eq!(metadata.latency.count, 6);
        assert!(metadata.latency.max >= metadata.latency.p50);
        assert!(metadata.latency.max > Duration::ZERO);
        assert_eq!(b.latency.count, b.requests);
        assert_eq!(b.in_flight, 0);
        assert_eq!(b.errors, 0);
        // Requests are small; responses carry the metadata.
        assert!(b.bytes_sent > 9 * 20, "{b:?}");
        assert!(b.bytes_received > b.bytes_sent, "{b:?}");
        assert_eq!(s.bytes_sent(), b.bytes_sent);
    })
    .await;
}

#[tokio::test]
async fn throttle_time_failures_and_reconnects_are_counted() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let client = connect(&cluster).await;
        let addr = cluster.broker_addr(0);

        cluster.script(
            ApiKey::Metadata,
            Action::modify::<MetadataResponse>(|r| r.throttle_time_ms = 40),
        );
        client.refresh_metadata(&[]).await.unwrap();
        let b = client.stats().broker(&addr).cloned().unwrap();
        assert_eq!(b.throttle_time, Duration::from_millis(40));

        // A request that gets no answer: counted as failed, and the connection is set up again.
        cluster.script(ApiKey::Metadata, Action::DropConnection);
        assert!(client.refresh_metadata(&[]).await.is_err());
        let b = client.stats().broker(&addr).cloned().unwrap();
        assert_eq!(b.api(ApiKey::Metadata).unwrap().errors, 1, "{b:?}");
        assert_eq!(b.errors, 1);
        assert_eq!(b.in_flight, 0);

        client.refresh_metadata(&[]).await.unwrap();
        let b = client.stats().broker(&addr).cloned().unwrap();
        assert_eq!((b.connects, b.reconnects), (2, 1), "{b:?}");
        assert_eq!(b.api(ApiKey::ApiVersions).unwrap().requests, 2);
        // The failed request was written: it counts as a request too.
        assert_eq!(b.api(ApiKey::Metadata).unwrap().requests, 4);
        assert_eq!(b.api(ApiKey::Metadata).unwrap().latency.count, 3);
    })
    .await;
}

#[tokio::test]
async fn requests_waiting_for_an_answer_are_in_flight() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let client = connect(&cluster).await;
        let addr = cluster.broker_addr(0);
        cluster.script(ApiKey::Metadata, Action::Delay(Duration::from_millis(300)));
        let c = client.clone();
        let slow = tokio::spawn(async move { c.refresh_metadata(&[]).await });
        let mut seen = 0;
        for _ in 0..100 {
            seen = client.stats().broker(&addr).unwrap().in_flight;
            if seen == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(seen, 1);
        slow.await.unwrap().unwrap();
        let b = client.stats().broker(&addr).cloned().unwrap();
        assert_eq!(b.in_flight, 0);
        assert!(
            b.api(ApiKey::Metadata).unwrap().latency.max >= Duration::from_millis(300),
            "{b:?}"
        );
    })
    .await;
}

#[test]
fn the_latency_histogram_is_usable_on_its_own() {
    let h = LatencyHistogram::new();
    assert_eq!(h.quantile(0.5), Duration::ZERO);
    for us in [100, 200, 300, 400, 10_000] {
        h.record(Duration::from_micros(us));
    }
    let s = h.summary();
    assert_eq!(s.count, 5);
    assert_eq!(s.max, Duration::from_micros(10_000));
    assert_eq!(s.mean, Duration::from_micros(2_200));
    // Within a quarter of the true median (300 µs), never below it.
    assert!((300..=375).contains(&s.p50.as_micros()), "{s:?}");
    assert_eq!(h.quantile(1.0), Duration::from_micros(10_000));
}

#[cfg(feature = "metrics")]
mod metrics_feature {
    //! The counters through the `metrics` facade, read back with testkit's
    //! `TestRecorder`.

    use kafkawire_testkit::TestRecorder;

    use super::*;

    #[tokio::test]
    async fn the_counters_reach_the_metrics_recorder() {
        let recorder = TestRecorder::install();
        within(async {
            let cluster = MockCluster::start(1).await;
            let client = connect(&cluster).await;
            let addr = cluster.broker_addr(0);
            for _ in 0..3 {
                client.refresh_metadata(&[]).await.unwrap();
            }
            let requests = format!("kafkawire.client.requests{{api=Metadata,broker={addr}}}");
            assert_eq!(recorder.get(&requests), Some(4));
            let versions = format!("kafkawire.client.requests{{api=ApiVersions,broker={addr}}}");
            assert_eq!(recorder.get(&versions), Some(1));
            let latency = format!("kafkawire.client.request.latency{{api=Metadata,broker={addr}}}");
            assert_eq!(recorder.get(&latency), Some(4), "one sample per answer");
            let sent = format!("kafkawire.client.bytes.sent{{broker={addr}}}");
            let b = client.stats().broker(&addr).cloned().unwrap();
            assert_eq!(recorder.get(&sent), Some(b.bytes_sent));
            let received = format!("kafkawire.client.bytes.received{{broker={addr}}}");
            assert_eq!(recorder.get(&received), Some(b.bytes_received));
            assert_eq!(
                recorder.get(&format!("kafkawire.client.connects{{broker={addr}}}")),
                Some(1)
            );
        })
        .await;
    }
}
