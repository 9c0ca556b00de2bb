//! `Producer::stats` against the in-process mock broker: records, batches, bytes and requests
//! over a known workload, the buffer while records linger, retries and failed records; the
//! span of a Produce request (OpenTelemetry messaging conventions); and, with the `metrics`
//! feature, the counters through a recorder.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkawire_client::{Client, ClientConfig};
use kafkawire_producer::{Producer, ProducerConfig, ProducerRecord};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_testkit::mock::{Action, MockCluster};

mod common;
use common::within;

async fn client(cluster: &MockCluster) -> Client {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    Client::connect(c).await.expect("connect to the mock")
}

/// Records wait for a flush: nothing leaves on its own during a test.
fn lingering() -> ProducerConfig {
    ProducerConfig {
        linger: Duration::from_secs(3600),
        delivery_timeout: Duration::from_secs(7200),
        retry_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(2),
        ..ProducerConfig::default()
    }
}

async fn send_n(producer: &Producer, topic: &str, partition: i32, n: usize) {
    for i in 0..n {
        producer
            .send(ProducerRecord::new(topic, format!("value-{i}")).partition(partition))
            .await
            .expect("accepted");
    }
}

#[tokio::test]
async fn n_records_in_one_batch_count_one_request_one_batch_and_its_bytes() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("stats", 1);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, lingering()).unwrap();
        assert_eq!(producer.stats().requests, 0);

        send_n(&producer, "stats", 0, 50).await;
        let lingering = producer.stats();
        assert_eq!(lingering.buffered_records, 50);
        assert!(lingering.buffered_bytes > 50 * 7, "{lingering:?}");
        assert!(lingering.buffered_bytes <= lingering.buffer_memory);
        assert_eq!(lingering.batches_sent, 0);

        producer.flush(Duration::from_secs(5)).await.unwrap();
        let s = producer.stats();
        let produced = cluster.produced_batches();
        assert_eq!(produced.len(), 1);
        assert_eq!(s.requests, 1);
        assert_eq!(s.batches_sent, 1);
        assert_eq!(s.records_sent, 50);
        assert_eq!(s.records_acked, 50);
        assert_eq!(
            s.bytes_sent,
            produced[0].2.len() as u64,
            "the encoded batch"
        );
        assert_eq!(s.average_batch_records(), 50.0);
        assert_eq!(s.average_batch_bytes(), s.bytes_sent as f64);
        assert_eq!(s.records_per_request(), 50.0);
        assert_eq!((s.retries, s.failed_records), (0, 0));
        assert_eq!((s.buffered_records, s.buffered_bytes), (0, 0));

        // The client counted the same request, per API.
        let c = client.stats();
        assert_eq!(c.requests(ApiKey::Produce), 1);
        assert_eq!(c.requests(ApiKey::InitProducerId), 1);

        // Two partitions flushed together: one request, two batches.
        cluster.create_topic("two", 2);
        client.refresh_metadata(&["two"]).await.unwrap();
        send_n(&producer, "two", 0, 10).await;
        send_n(&producer, "two", 1, 30).await;
        producer.flush(Duration::from_secs(5)).await.unwrap();
        let s = producer.stats();
        assert_eq!(s.requests, 2);
        assert_eq!(s.batches_sent, 3);
        assert_eq!(s.records_sent, 90);
        assert_eq!(s.records_per_request(), 45.0);
        let all: u64 = cluster
            .produced_batches()
            .iter()
            .map(|b| b.2.len() as u64)
            .sum();
        assert_eq!(s.bytes_sent, all);
        producer.close(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

#[tokio::test]
async fn retries_and_failed_records_are_counted() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("stats", 1);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, lingering()).unwrap();

        // A retriable error once: the batch goes again.
        cluster.script(
            ApiKey::Produce,
            Action::ErrorCode(ErrorCode::NOT_ENOUGH_REPLICAS),
        );
        send_n(&producer, "stats", 0, 20).await;
        producer.flush(Duration::from_secs(5)).await.unwrap();
        let s = producer.stats();
        assert_eq!(s.retries, 1, "{s:?}");
        assert_eq!((s.requests, s.batches_sent, s.records_sent), (2, 2, 40));
        assert_eq!(s.records_acked, 20);
        assert_eq!(s.failed_records, 0);

        // A non-retriable error: the records fail.
        cluster.script(
            ApiKey::Produce,
            Action::ErrorCode(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        );
        let mut futures = Vec::new();
        for i in 0..7 {
            futures.push(
                producer
                    .send(ProducerRecord::new("stats", format!("doomed-{i}")).partition(0))
                    .await
                    .unwrap(),
            );
        }
        producer.flush(Duration::from_secs(5)).await.unwrap();
        for f in futures {
            assert!(f.await.is_err());
        }
        let s = producer.stats();
        assert_eq!(s.failed_records, 7, "{s:?}");
        assert_eq!(s.records_acked, 20);
        assert_eq!(s.buffered_records, 0);
        producer.close(Duration::from_secs(5)).await.unwrap();
    })
    .await;
}

/// Spans by name, each with its fields (last value recorded) as text.
#[derive(Clone, Default)]
struct Spans(Arc<Mutex<Vec<Captured>>>);

/// A span's name and fields.
type Captured = (String, HashMap<String, String>);

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
struct Capture {
    spans: Spans,
}

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, attrs: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        let mut fields = HashMap::new();
        attrs.record(&mut Fields(&mut fields));
        let mut spans = self.spans.0.lock().unwrap();
        spans.push((attrs.metadata().name().to_owned(), fields));
        tracing::span::Id::from_u64(spans.len() as u64)
    }
    fn record(&self, span: &tracing::span::Id, values: &tracing::span::Record<'_>) {
        let mut spans = self.spans.0.lock().unwrap();
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
async fn a_produce_request_has_a_send_span_with_the_messaging_attributes() {
    // The process's subscriber (a thread's own would miss callsites other tests registered
    // first): the spans of other tests are told apart by their topic.
    let spans = Spans::default();
    tracing::subscriber::set_global_default(Capture {
        spans: spans.clone(),
    })
    .expect("the only subscriber of this test binary");
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("traced", 3);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, lingering()).unwrap();
        send_n(&producer, "traced", 2, 12).await;
        producer.flush(Duration::from_secs(5)).await.unwrap();
        producer.close(Duration::from_secs(5)).await.unwrap();
    })
    .await;
    let spans = spans.0.lock().unwrap();
    let sends: Vec<_> = spans
        .iter()
        .filter(|(n, f)| {
            n == "send" && f.get("messaging.destination.name").map(String::as_str) == Some("traced")
        })
        .collect();
    assert_eq!(sends.len(), 1, "one span per Produce request");
    let f = &sends[0].1;
    let addr_host = "127.0.0.1";
    for (k, v) in [
        ("messaging.system", "kafka"),
        ("messaging.operation.name", "send"),
        ("messaging.operation.type", "send"),
        ("messaging.destination.name", "traced"),
        ("messaging.destination.partition.id", "2"),
        ("messaging.batch.message_count", "12"),
        ("otel.name", "send traced"),
        ("otel.kind", "producer"),
        ("server.address", addr_host),
        ("messaging.client.id", "kafkawire"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }
    assert!(f.contains_key("server.port"), "{f:?}");
    assert!(!f.contains_key("error.type"), "{f:?}");
}

#[cfg(feature = "metrics")]
mod metrics_feature {
    //! The producer's counters through the `metrics` facade, read back with testkit's
    //! `TestRecorder`.

    use kafkawire_testkit::TestRecorder;

    use super::*;

    #[tokio::test]
    async fn the_producer_counters_reach_the_metrics_recorder() {
        let recorder = TestRecorder::install();
        within(async {
            let cluster = MockCluster::start(1).await;
            cluster.create_topic("exported", 1);
            let client = client(&cluster).await;
            let producer = Producer::new(&client, lingering()).unwrap();
            send_n(&producer, "exported", 0, 25).await;
            producer.flush(Duration::from_secs(5)).await.unwrap();
            let s = producer.stats();
            let tp = "{partition=0,topic=exported}";
            assert_eq!(
                recorder.get(&format!("kafkawire.producer.records{tp}")),
                Some(25)
            );
            assert_eq!(
                recorder.get(&format!("kafkawire.producer.batches{tp}")),
                Some(1)
            );
            assert_eq!(
                recorder.get(&format!("kafkawire.producer.bytes{tp}")),
                Some(s.bytes_sent)
            );
            assert_eq!(
                recorder.get(&format!("kafkawire.producer.records.acked{tp}")),
                Some(25)
            );
            // The client's counters come along with the producer's feature.
            let addr = cluster.broker_addr(0);
            assert_eq!(
                recorder.get(&format!(
                    "kafkawire.client.requests{{api=Produce,broker={addr}}}"
                )),
                Some(1)
            );
            producer.close(Duration::from_secs(5)).await.unwrap();
        })
        .await;
    }
}
