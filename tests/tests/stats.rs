//! Statistics against a real broker: the producer's counters over a known workload, a group
//! member's lag falling to 0 once it has read everything, its rebalance counted and timed, and
//! the client's counters agreeing with both.

mod common;

use std::time::{Duration, Instant};

use kafkawire::protocol::messages::ApiKey;
use kafkawire::{Consumer, OffsetReset, Producer, ProducerRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producer_counts_and_group_lag_against_a_broker() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("stats");
    let group = broker.topic("stats-group");
    common::create_topic(&client, &topic, 2).await;

    let producer = Producer::builder(&client)
        .linger(Duration::from_millis(50))
        .build()
        .unwrap();
    let records: Vec<ProducerRecord> = (0..300)
        .map(|i| ProducerRecord::new(&topic, format!("v{i}")).partition(i % 2))
        .collect();
    producer.send_batch(records).await.unwrap();
    let s = producer.stats();
    assert_eq!(s.records_acked, 300, "{s:?}");
    assert_eq!(s.records_sent, 300, "no retry expected: {s:?}");
    assert_eq!((s.retries, s.failed_records, s.buffered_records), (0, 0, 0));
    assert!(s.batches_sent >= 2 && s.requests >= 1, "{s:?}");
    assert!(s.bytes_sent > 300 * 4, "{s:?}");
    assert_eq!(client.stats().requests(ApiKey::Produce), s.requests);
    producer.close(Duration::from_secs(10)).await.unwrap();

    let mut consumer = Consumer::builder(&client)
        .group_id(&group)
        .subscribe([topic.as_str()])
        .auto_offset_reset(OffsetReset::Earliest)
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(500))
        .fetch_max_wait(Duration::from_millis(100))
        .build()
        .await
        .unwrap();
    let mut got = 0;
    let deadline = Instant::now() + common::CONSUME_DEADLINE;
    while (got < 300 || consumer.lag().len() < 2) && Instant::now() < deadline {
        got += consumer.poll(Duration::from_secs(1)).await.unwrap().count();
    }
    assert_eq!(got, 300);
    let lag = consumer.lag();
    assert_eq!(lag.len(), 2, "{lag:?}");
    assert!(lag.values().all(|l| *l == 0), "{lag:?}");
    let s = consumer.stats();
    assert_eq!(s.records_returned, 300);
    assert_eq!(s.total_lag(), 0);
    assert_eq!(
        s.partitions.iter().map(|p| p.position).sum::<i64>(),
        300,
        "{s:?}"
    );
    assert!(s.rebalances >= 1, "{s:?}");
    assert!(s.rebalance_time > Duration::ZERO, "{s:?}");
    assert!(s.fetch_requests >= 1 && s.fetch_latency.count >= 1, "{s:?}");

    let c = client.stats();
    assert!(c.requests(ApiKey::JoinGroup) >= 1, "{c:?}");
    assert!(c.requests(ApiKey::SyncGroup) >= 1, "{c:?}");
    assert!(c.requests(ApiKey::Fetch) >= s.fetch_requests, "{c:?}");
    assert!(c.bytes_received() > 0 && c.bytes_sent() > 0, "{c:?}");
    consumer.close().await.unwrap();
}
