//! `Consumer::stats` and `Consumer::lag` against the in-process mock broker: positions, high
//! watermarks and lag per partition (0 once everything is consumed), Fetch requests and their
//! latency, records returned; the span of a Fetch (OpenTelemetry messaging conventions); and,
//! with the `metrics` feature, the counters through a recorder.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use kafkawire_client::{Client, ClientConfig};
use kafkawire_consumer::{Consumer, ConsumerConfig, OffsetReset, PartitionConsumer, StartOffset};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::records::RecordBatchBuilder;
use kafkawire_testkit::mock::MockCluster;

mod common;
use common::within;

async fn client(cluster: &MockCluster) -> Client {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    Client::connect(c).await.expect("connect to the mock")
}

/// Appends `n` records to a partition, 10 per batch.
fn seed(cluster: &MockCluster, topic: &str, partition: i32, n: i64) {
    let mut i = 0;
    while i < n {
        let end = (i + 10).min(n);
        let mut b = RecordBatchBuilder::new();
        for j in i..end {
            b.push(
                1_700_000_000_000 + j,
                None,
                Some(format!("v{j}").as_bytes()),
                &[],
            )
            .unwrap();
        }
        let bytes: Bytes = b.build().unwrap();
        cluster.append(topic, partition, &bytes).unwrap();
        i = end;
    }
}

fn config(max_poll_records: usize) -> ConsumerConfig {
    ConsumerConfig {
        fetch_max_wait: Duration::from_millis(20),
        max_poll_records,
        ..ConsumerConfig::default()
    }
}

#[tokio::test]
async fn lag_falls_to_zero_once_everything_is_consumed() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("lagging", 2);
        seed(&cluster, "lagging", 0, 100);
        seed(&cluster, "lagging", 1, 60);
        let client = client(&cluster).await;
        let mut c = PartitionConsumer::new(&client, config(30));
        c.assign_topic("lagging", StartOffset::Earliest)
            .await
            .unwrap();

        // Nothing fetched yet: positions known, lag not.
        assert!(c.lag().is_empty());
        let s = c.stats();
        assert_eq!(s.partitions.len(), 2);
        assert!(
            s.partitions
                .iter()
                .all(|p| p.lag.is_none() && p.position == 0)
        );

        // One poll: 30 records handed out, the rest buffered: lag counts them.
        let first = c.poll().await.unwrap();
        let n: usize = first.partitions.iter().map(|p| p.records().count()).sum();
        assert_eq!(n, 30);
        let lag = c.lag();
        assert_eq!(lag.values().sum::<i64>(), 160 - 30, "{lag:?}");

        let mut returned = n as u64;
        while c.lag().values().sum::<i64>() > 0 || c.lag().len() < 2 {
            let f = c.poll().await.unwrap();
            returned += f
                .partitions
                .iter()
                .map(|p| p.records().count() as u64)
                .sum::<u64>();
        }
        assert_eq!(returned, 160);
        let expected: BTreeMap<(String, i32), i64> = [
            (("lagging".to_owned(), 0), 0),
            (("lagging".to_owned(), 1), 0),
        ]
        .into();
        assert_eq!(c.lag(), expected);
        let s = c.stats();
        assert_eq!(s.records_returned, 160);
        assert_eq!(s.total_lag(), 0);
        for (p, end) in s.partitions.iter().zip([100, 60]) {
            assert_eq!(
                (p.position, p.high_watermark, p.lag),
                (end, end, Some(0)),
                "{p:?}"
            );
        }
        assert!(s.fetch_requests >= 1);
        assert_eq!(s.fetch_errors, 0);
        assert_eq!(s.fetch_latency.count, s.fetch_requests);
        assert!(s.fetch_latency.max > Duration::ZERO);
        // The client wrote those Fetch requests (and maybe the next one, prefetched).
        assert!(client.stats().requests(ApiKey::Fetch) >= s.fetch_requests);
        assert_eq!((s.rebalances, s.rebalance_time), (0, Duration::ZERO));

        // New records: the next fetch reports a new high watermark and the lag comes back.
        seed(&cluster, "lagging", 1, 5);
        loop {
            c.poll().await.unwrap();
            let s = c.stats();
            if s.partitions[1].high_watermark == 65 {
                assert_eq!(s.partitions[1].position, 65, "all 5 returned by that poll");
                break;
            }
        }
    })
    .await;
}

#[tokio::test]
async fn the_consumer_type_reports_stats_and_lag() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("app", 1);
        seed(&cluster, "app", 0, 25);
        let client = client(&cluster).await;
        let mut consumer = Consumer::builder(&client)
            .assign([("app", 0)])
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_max_wait(Duration::from_millis(20))
            .build()
            .await
            .unwrap();
        let mut got = 0;
        while got < 25 {
            got += consumer.poll(Duration::from_secs(5)).await.unwrap().count();
        }
        assert_eq!(consumer.lag(), [(("app".to_owned(), 0), 0)].into());
        let s = consumer.stats();
        assert_eq!(s.records_returned, 25);
        assert_eq!(s.partitions[0].high_watermark, 25);
        consumer.close().await.unwrap();
    })
    .await;
}

/// Spans by name, each with its fields (last value recorded) as text.
type Spans = Arc<Mutex<Vec<(String, HashMap<String, String>)>>>;

struct Fields<'a>(&'a mut HashMap<String, String>);

impl tracing::field::Visit for Fields<'_> {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
}

/// A subscriber that keeps every span's fields (no output).
struct Capture(Spans);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.0.lock().unwrap();
        spans.push((attrs.metadata().name().to_owned(), fields));
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.0.lock().unwrap();
        if let Some((_, fields)) = spans.get_mut(span.into_u64() as usize - 1) {
            values.record(&mut Fields(fields));
        }
    }
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, _: &tracing::Event<'_>) {}
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

#[tokio::test]
async fn a_fetch_has_a_poll_span_with_the_messaging_attributes() {
    // The process's subscriber; the spans of other tests are told apart by their topic.
    let spans = Spans::default();
    tracing::subscriber::set_global_default(Capture(spans.clone()))
        .expect("the only subscriber of this test binary");
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("traced", 2);
        seed(&cluster, "traced", 1, 12);
        let client = client(&cluster).await;
        let mut c = PartitionConsumer::new(&client, config(500));
        c.assign("traced", 1, StartOffset::Earliest).await.unwrap();
        let f = c.poll().await.unwrap();
        assert_eq!(f.batch_record_count(), 12);
    })
    .await;
    let spans = spans.lock().unwrap();
    let polls: Vec<_> = spans
        .iter()
        .filter(|(n, f)| {
            n == "poll" && f.get("messaging.destination.name").map(String::as_str) == Some("traced")
        })
        .collect();
    assert!(!polls.is_empty());
    let f = &polls[0].1;
    for (k, v) in [
        ("messaging.system", "kafka"),
        ("messaging.operation.name", "poll"),
        ("messaging.operation.type", "receive"),
        ("messaging.destination.partition.id", "1"),
        ("messaging.batch.message_count", "12"),
        ("otel.name", "poll traced"),
        ("otel.kind", "client"),
        ("server.address", "127.0.0.1"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }
    assert!(!f.contains_key("messaging.consumer.group.name"), "{f:?}");
}

#[cfg(feature = "metrics")]
mod metrics_feature {
    //! The consumer's counters through the `metrics` facade, read back with testkit's
    //! `TestRecorder`.

    use kafkawire_testkit::TestRecorder;

    use super::*;

    #[tokio::test]
    async fn records_and_lag_reach_the_metrics_recorder() {
        let recorder = TestRecorder::install();
        within(async {
            let cluster = MockCluster::start(1).await;
            cluster.create_topic("exported", 1);
            seed(&cluster, "exported", 0, 40);
            let client = client(&cluster).await;
            let mut c = PartitionConsumer::new(&client, config(15));
            c.assign("exported", 0, StartOffset::Earliest)
                .await
                .unwrap();
            c.poll().await.unwrap();
            let tp = "{partition=0,topic=exported}";
            assert_eq!(
                recorder.get(&format!("kafkawire.consumer.records{tp}")),
                Some(15)
            );
            assert_eq!(
                recorder.get(&format!("kafkawire.consumer.position{tp}")),
                Some(15)
            );
            assert_eq!(
                recorder.get(&format!("kafkawire.consumer.lag{tp}")),
                Some(25)
            );
            while c.lag().values().sum::<i64>() > 0 {
                c.poll().await.unwrap();
            }
            assert_eq!(
                recorder.get(&format!("kafkawire.consumer.records{tp}")),
                Some(40)
            );
            assert_eq!(
                recorder.get(&format!("kafkawire.consumer.lag{tp}")),
                Some(0)
            );
            assert!(
                recorder
                    .get("kafkawire.consumer.fetch.latency{}")
                    .unwrap_or(0)
                    >= 1
            );
        })
        .await;
    }
}
