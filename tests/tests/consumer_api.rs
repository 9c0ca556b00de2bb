//! The `Consumer` built with `Consumer::builder`, against a real broker: a group member read
//! through the `Stream` adaptor with manual commits, resumed exactly by its successor; an
//! assigned consumer resuming from its group's committed offsets; `max_poll_records`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use kafkawire::{Client, Consumer, OffsetReset, Producer, ProducerRecord};

const DEADLINE: Duration = Duration::from_secs(40);

async fn fill(client: &Client, topic: &str, partitions: i32, per_partition: i32) {
    let producer = Producer::builder(client).build().unwrap();
    let records: Vec<ProducerRecord> = (0..partitions * per_partition)
        .map(|i| {
            ProducerRecord::new(topic, format!("{}-{}", i % partitions, i / partitions))
                .partition(i % partitions)
        })
        .collect();
    producer.send_batch(records).await.unwrap();
    producer.close(Duration::from_secs(10)).await.unwrap();
}

/// The value a record of `fill` has at `partition`/`offset`.
fn value(partition: i32, offset: i64) -> String {
    format!("{partition}-{offset}")
}

fn group_builder(client: &Client, group: &str, topic: &str) -> kafkawire::ConsumerBuilder {
    Consumer::builder(client)
        .group_id(group)
        .subscribe([topic])
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .session_timeout(Duration::from_secs(6))
        .heartbeat_interval(Duration::from_millis(500))
        .fetch_max_wait(Duration::from_millis(100))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_then_commit_then_a_successor_resumes_exactly_after_the_processed_records() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("api-stream");
    let group = broker.topic("api-g");
    common::create_topic(&client, &topic, 2).await;
    fill(&client, &topic, 2, 50).await;

    // First member: read 60 of the 100 records through the stream, polls of at most 7,
    // committing after each poll's records are processed.
    let mut first = group_builder(&client, &group, &topic)
        .max_poll_records(7)
        .build()
        .await
        .unwrap();
    let mut seen: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let mut count = 0;
    {
        let start = Instant::now();
        let mut polls = std::pin::pin!(first.stream());
        while count < 60 {
            assert!(start.elapsed() < DEADLINE, "read only {count} records");
            let records = polls
                .next()
                .await
                .expect("the stream does not end")
                .unwrap();
            let mut n = 0;
            for r in &records {
                let r = r.unwrap();
                assert_eq!(r.topic(), topic);
                assert_eq!(
                    String::from_utf8_lossy(r.value().unwrap()),
                    value(r.partition(), r.offset())
                );
                seen.entry(r.partition()).or_default().push(r.offset());
                n += 1;
            }
            assert!(n <= 7, "a poll returned {n} records, max_poll_records is 7");
            count += n;
        }
    }
    first.commit().await.unwrap();
    let committed = first
        .committed(&[(topic.clone(), 0), (topic.clone(), 1)])
        .await
        .unwrap();
    for (p, offsets) in &seen {
        let want: Vec<i64> = (0..offsets.len() as i64).collect();
        assert_eq!(offsets, &want, "partition {p} read in order, once");
        assert_eq!(
            committed.get(&(topic.clone(), *p)),
            Some(&(offsets.len() as i64)),
            "committed after the last processed record of partition {p}"
        );
    }
    first.close().await.unwrap();

    // Its successor reads exactly the rest.
    let mut second = group_builder(&client, &group, &topic)
        .build()
        .await
        .unwrap();
    let start = Instant::now();
    while count < 100 {
        assert!(start.elapsed() < DEADLINE, "read only {count} records");
        let records = second.poll(Duration::from_millis(500)).await.unwrap();
        for r in &records {
            let r = r.unwrap();
            seen.entry(r.partition()).or_default().push(r.offset());
            count += 1;
        }
    }
    for (p, offsets) in &seen {
        assert_eq!(offsets, &(0..50).collect::<Vec<i64>>(), "partition {p}");
    }
    let extra = second.poll(Duration::from_millis(300)).await.unwrap();
    assert!(extra.is_empty(), "nothing read twice");
    second.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_assigned_consumer_resumes_from_its_groups_committed_offsets() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("api-assigned");
    let group = broker.topic("api-ag");
    common::create_topic(&client, &topic, 1).await;
    fill(&client, &topic, 1, 30).await;

    let build = || {
        Consumer::builder(&client)
            .group_id(&group)
            .assign([(topic.as_str(), 0)])
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(true)
            .fetch_max_wait(Duration::from_millis(100))
            .max_poll_records(10)
            .build()
    };
    let mut consumer = build().await.unwrap();
    assert_eq!(consumer.assignment(), vec![(topic.clone(), 0)]);
    let records = consumer.poll(Duration::from_secs(5)).await.unwrap();
    let offsets: Vec<i64> = records.iter().map(|r| r.unwrap().offset()).collect();
    assert_eq!(offsets, (0..10).collect::<Vec<i64>>());
    assert_eq!(consumer.position(&topic, 0), Some(10));
    // Auto commit commits on close what poll returned, not what was fetched ahead.
    consumer.close().await.unwrap();

    let mut again = build().await.unwrap();
    assert_eq!(again.position(&topic, 0), Some(10));
    let records = again.poll(Duration::from_secs(5)).await.unwrap();
    let first = records.iter().next().unwrap().unwrap();
    assert_eq!(first.offset(), 10);
    assert_eq!(
        String::from_utf8_lossy(first.value().unwrap()),
        value(0, 10)
    );
    again.close().await.unwrap();

    // Without a group id there is nothing to commit to: a clear error, not a silent no-op.
    let mut anonymous = Consumer::builder(&client)
        .assign([(topic.as_str(), 0)])
        .auto_offset_reset(OffsetReset::Earliest)
        .build()
        .await
        .unwrap();
    let e = anonymous.commit().await.unwrap_err();
    assert!(e.to_string().contains("group id"), "{e}");
}
