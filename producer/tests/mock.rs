//! The producer against the in-process mock broker: leader moves, retriable and fatal error
//! codes, acks=0 and key partitioning.

use std::time::Duration;

use kafkawire_client::Error;
use kafkawire_producer::{Acks, Producer, ProducerConfig, ProducerRecord, partition_for_key};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::records::RecordSet;
use kafkawire_testkit::mock::{Action, MockCluster};

mod common;
use common::{client, within};

fn fast_config() -> ProducerConfig {
    ProducerConfig {
        retry_backoff: Duration::from_millis(5),
        request_timeout: Duration::from_secs(2),
        ..ProducerConfig::default()
    }
}

fn records(topic: &str, partition: i32, values: std::ops::Range<i32>) -> Vec<ProducerRecord> {
    values
        .map(|i| ProducerRecord::new(topic, format!("v{i}")).partition(partition))
        .collect()
}

/// (offset, key, value) of every record in a partition's log, decoded from the stored batches.
fn log_records(
    cluster: &MockCluster,
    topic: &str,
    partition: i32,
) -> Vec<(i64, Option<String>, String)> {
    let mut out = Vec::new();
    for stored in cluster.log(topic, partition) {
        for batch in RecordSet::new(stored) {
            let batch = batch.expect("stored batch decodes");
            for r in batch.records() {
                let r = r.expect("record decodes");
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                out.push((
                    r.offset(),
                    r.key().map(text),
                    r.value().map(text).unwrap_or_default(),
                ));
            }
        }
    }
    out
}

fn values(log: &[(i64, Option<String>, String)]) -> Vec<String> {
    log.iter().map(|(_, _, v)| v.clone()).collect()
}

fn expected_values(range: std::ops::Range<i32>) -> Vec<String> {
    range.map(|i| format!("v{i}")).collect()
}

fn produce_brokers(cluster: &MockCluster) -> Vec<i32> {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api() == Some(ApiKey::Produce))
        .map(|r| r.broker_id)
        .collect()
}

#[tokio::test]
async fn leader_move_mid_stream_is_followed_and_nothing_is_duplicated() {
    within(async {
        let cluster = MockCluster::start(3).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, fast_config()).expect("valid config");

        let first = producer.send_batch(records("t", 0, 0..5)).await.unwrap();
        let offsets: Vec<i64> = first.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3, 4]);
        assert_eq!(produce_brokers(&cluster), [0]);

        cluster.set_leader("t", 0, 2);
        let second = producer.send_batch(records("t", 0, 5..10)).await.unwrap();
        let offsets: Vec<i64> = second.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [5, 6, 7, 8, 9]);
        assert!(second.iter().all(|m| &*m.topic == "t" && m.partition == 0));
        // The old leader refused (NOT_LEADER_OR_FOLLOWER), the new one took the batch.
        assert_eq!(produce_brokers(&cluster), [0, 0, 2]);
        assert_eq!(client.leader_for("t", 0).await.unwrap(), 2);

        let log = log_records(&cluster, "t", 0);
        assert_eq!(
            values(&log),
            expected_values(0..10),
            "each record exactly once"
        );
        let log_offsets: Vec<i64> = log.iter().map(|(o, ..)| *o).collect();
        assert_eq!(log_offsets, (0..10).collect::<Vec<i64>>());
        assert_eq!(cluster.high_watermark("t", 0), Some(10));
    })
    .await;
}

#[tokio::test]
async fn retriable_codes_scripted_once_are_retried() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, fast_config()).expect("valid config");

        let mut want = 0;
        for code in [
            ErrorCode::NOT_ENOUGH_REPLICAS,
            ErrorCode::REQUEST_TIMED_OUT,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
        ] {
            let before = cluster.request_count(ApiKey::Produce);
            cluster.script(ApiKey::Produce, Action::ErrorCode(code));
            let m = producer
                .send_and_wait(ProducerRecord::new("t", format!("v{want}")).partition(0))
                .await
                .unwrap_or_else(|e| panic!("{code} once should be retried: {e}"));
            assert_eq!(m.offset, i64::from(want));
            assert_eq!(cluster.request_count(ApiKey::Produce), before + 2, "{code}");
            want += 1;
        }
        assert_eq!(cluster.pending_scripts(), 0);
        assert_eq!(
            values(&log_records(&cluster, "t", 0)),
            expected_values(0..want)
        );
    })
    .await;
}

#[tokio::test]
async fn dropped_connection_during_produce_is_retried() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, fast_config()).expect("valid config");
        cluster.script(ApiKey::Produce, Action::DropConnection);
        let m = producer
            .send_batch(records("t", 0, 0..3))
            .await
            .expect("retried on a new connection");
        assert_eq!(m.last().unwrap().offset, 2);
        assert_eq!(cluster.request_count(ApiKey::Produce), 2);
        assert_eq!(
            values(&log_records(&cluster, "t", 0)),
            expected_values(0..3)
        );
    })
    .await;
}

#[tokio::test]
async fn non_retriable_code_fails_at_once_naming_topic_and_partition() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 2);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, fast_config()).expect("valid config");
        cluster.script(
            ApiKey::Produce,
            Action::ErrorCode(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        );
        let e = producer
            .send_and_wait(ProducerRecord::new("t", "secret").partition(1))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Broker { .. }), "{e:?}");
        assert_eq!(e.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
        assert_eq!(e.api(), Some(ApiKey::Produce));
        assert!(!e.is_retriable());
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(1)));
        assert!(e.to_string().contains("t-1"), "{e}");
        assert_eq!(cluster.request_count(ApiKey::Produce), 1, "no retry");
        assert!(cluster.log("t", 1).is_empty());
    })
    .await;
}

#[tokio::test]
async fn retriable_code_beyond_the_delivery_timeout_fails_with_that_code() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        // Retries are bounded by time, not by a count: the record fails once the delivery
        // timeout has passed, reporting the error of its last attempt.
        let delivery_timeout = Duration::from_secs(1);
        let config = ProducerConfig {
            linger: Duration::ZERO,
            request_timeout: Duration::from_millis(500),
            delivery_timeout,
            ..fast_config()
        };
        let producer = Producer::new(&client, config).expect("valid config");
        // More failures than the producer can try within the delivery timeout.
        const SCRIPTED: usize = 200;
        cluster.script_n(ApiKey::Produce, SCRIPTED, || {
            Action::ErrorCode(ErrorCode::NOT_ENOUGH_REPLICAS)
        });
        let start = std::time::Instant::now();
        let e = producer
            .send_batch(records("t", 0, 0..4))
            .await
            .unwrap_err();
        let elapsed = start.elapsed();
        let Error::DeliveryTimeout {
            timeout_ms,
            last_error,
            ..
        } = &e
        else {
            panic!("expected DeliveryTimeout, got {e:?}");
        };
        assert_eq!(*timeout_ms, 1000);
        let last_error = last_error.as_deref().expect("the last attempt's error");
        assert!(last_error.contains("NOT_ENOUGH_REPLICAS"), "{last_error}");
        assert!(e.to_string().contains("NOT_ENOUGH_REPLICAS"), "{e}");
        assert!(e.is_retriable());
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(0)));
        assert!(e.to_string().contains("t-0"), "{e}");
        assert!(
            elapsed >= delivery_timeout,
            "failed after {elapsed:?}, before the delivery timeout"
        );
        let attempts = cluster.request_count(ApiKey::Produce);
        assert!(
            attempts > 2,
            "retried until the timeout: {attempts} attempts"
        );
        assert_eq!(
            cluster.pending_scripts(),
            SCRIPTED - attempts,
            "every attempt got the scripted error"
        );
        assert!(cluster.log("t", 0).is_empty());

        // Once the broker recovers, the producer works again.
        cluster.clear_scripts();
        let m = producer.send_batch(records("t", 0, 0..4)).await.unwrap();
        let offsets: Vec<i64> = m.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, [0, 1, 2, 3]);
        assert_eq!(
            values(&log_records(&cluster, "t", 0)),
            expected_values(0..4)
        );
    })
    .await;
}

#[tokio::test]
async fn acks_zero_returns_offset_minus_one_and_the_records_arrive() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let config = ProducerConfig {
            acks: Acks::None,
            // Idempotence needs acks=all.
            enable_idempotence: false,
            ..fast_config()
        };
        let producer = Producer::new(&client, config).expect("valid config");
        let m = producer
            .send_and_wait(ProducerRecord::new("t", "v0").partition(0))
            .await
            .unwrap();
        assert_eq!((&*m.topic, m.partition, m.offset), ("t", 0, -1));
        let more = producer.send_batch(records("t", 0, 1..4)).await.unwrap();
        assert!(more.iter().all(|m| m.offset == -1));
        // No response comes back: wait for the broker to have them.
        while cluster.high_watermark("t", 0) != Some(4) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            values(&log_records(&cluster, "t", 0)),
            expected_values(0..4)
        );
        assert_eq!(cluster.request_count(ApiKey::Produce), 2);
        assert_eq!(cluster.broker(0).open_connections(), 2, "nothing closed");
    })
    .await;
}

#[tokio::test]
async fn keyed_records_go_to_the_murmur2_partition() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("k", 5);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, fast_config()).expect("valid config");
        let keys: Vec<String> = (0..40).map(|i| format!("key-{i}")).collect();
        let batch = keys
            .iter()
            .map(|k| ProducerRecord::new("k", format!("value of {k}")).key(k.clone()))
            .collect();
        let results = producer.send_batch(batch).await.unwrap();
        let mut per_partition = [0usize; 5];
        for (key, m) in keys.iter().zip(&results) {
            let want = partition_for_key(key.as_bytes(), 5);
            assert_eq!(m.partition, want, "{key}");
            per_partition[want as usize] += 1;
        }
        assert!(per_partition.iter().filter(|n| **n > 0).count() > 1);
        for p in 0..5 {
            let log = log_records(&cluster, "k", p);
            assert_eq!(log.len(), per_partition[p as usize], "partition {p}");
            for (_, key, value) in &log {
                let key = key.as_deref().expect("keyed");
                assert_eq!(partition_for_key(key.as_bytes(), 5), p);
                assert_eq!(value, &format!("value of {key}"));
            }
        }
        // Both leaders got their partitions' batches.
        let mut brokers = produce_brokers(&cluster);
        brokers.sort_unstable();
        brokers.dedup();
        assert_eq!(brokers, [0, 1]);
    })
    .await;
}

#[tokio::test]
async fn leader_election_in_progress_is_retried() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = Producer::new(&client, fast_config()).expect("valid config");
        producer
            .send_and_wait(ProducerRecord::new("t", "v0").partition(0))
            .await
            .unwrap();

        // The leader goes away; for a moment the partition has none (election), then broker 1
        // takes over.
        cluster.set_leader("t", 0, -1);
        cluster.set_partition_error("t", 0, ErrorCode::LEADER_NOT_AVAILABLE);
        let before = cluster.request_count(ApiKey::Produce);
        let elect = async {
            // The election ends 30 ms after the record's first attempt (which the old leader
            // refuses), however long the producer takes to send it.
            while cluster.request_count(ApiKey::Produce) == before {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            tokio::time::sleep(Duration::from_millis(30)).await;
            cluster.set_partition_error("t", 0, ErrorCode::NONE);
            cluster.set_leader("t", 0, 1);
        };
        let (sent, ()) = tokio::join!(
            producer.send_and_wait(ProducerRecord::new("t", "v1").partition(0)),
            elect
        );
        let m = sent.expect("retried until the new leader is known");
        assert_eq!(m.offset, 1);
        assert_eq!(produce_brokers(&cluster), [0, 0, 1]);
        assert_eq!(
            values(&log_records(&cluster, "t", 0)),
            expected_values(0..2)
        );
    })
    .await;
}
