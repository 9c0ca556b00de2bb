//! Producer behaviour beyond the round trip: concurrent senders on one client, sticky
//! partitioning of null keys, timestamps, records larger than a batch, and topics that appear
//! after the client connected.
mod common;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use kafkawire::{
    Client, ClientConfig, PartitionConsumer, Producer, ProducerConfig, ProducerRecord, StartOffset,
};

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_share_one_client() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let busy = broker.topic("busy");
    common::create_topic(&client, &busy, 2).await;
    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");

    const TASKS: usize = 8;
    const EACH: usize = 50;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let producer = producer.clone();
        let busy = busy.clone();
        set.spawn(async move {
            let mut out = Vec::new();
            for i in 0..EACH {
                let r = ProducerRecord::new(&busy, format!("{t}-{i}")).partition((i % 2) as i32);
                out.push((
                    format!("{t}-{i}"),
                    producer.send_and_wait(r).await.expect("send"),
                ));
            }
            out
        });
    }
    let mut by_offset: BTreeMap<(i32, i64), String> = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        for (value, m) in done.expect("task") {
            assert!(
                by_offset.insert((m.partition, m.offset), value).is_none(),
                "offset given twice"
            );
        }
    }
    // Offsets are exactly 0..n per partition: no record lost, none acknowledged twice.
    for p in 0..2 {
        let offsets: Vec<i64> = by_offset
            .keys()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| *o)
            .collect();
        assert_eq!(
            offsets,
            (0..(TASKS * EACH / 2) as i64).collect::<Vec<_>>(),
            "partition {p}"
        );
    }

    // The acknowledged offsets are where the records are.
    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    consumer
        .assign_topic(&busy, StartOffset::Earliest)
        .await
        .expect("assign");
    let got = common::drain(&mut consumer, TASKS * EACH).await;
    for ((p, o), value) in &by_offset {
        let read = &got.of(&busy, *p)[*o as usize];
        assert_eq!(
            read.value.as_deref(),
            Some(value.as_bytes()),
            "{busy}-{p}@{o}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_keys_stick_to_one_partition_until_a_batch_is_full() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let sticky = broker.topic("sticky");
    common::create_topic(&client, &sticky, 4).await;
    // 16 KiB batches (the default is 256 KiB): the sticky partitioner follows batch_size.
    let config = ProducerConfig {
        batch_size: 16 * 1024,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(&client, config).expect("valid config");

    // Small records (well under one 16 KiB batch in all) stick to one partition, across calls,
    // with contiguous offsets in send order (uniform sticky partitioning, KIP-794).
    let mut small = Vec::new();
    for call in 0..4 {
        let records: Vec<ProducerRecord> = (0..10)
            .map(|i| ProducerRecord::new(&sticky, format!("{call}-{i}")))
            .collect();
        small.extend(producer.send_batch(records).await.expect("send"));
    }
    let p = small[0].partition;
    assert!((0..4).contains(&p));
    assert!(
        small.iter().all(|m| m.partition == p),
        "one partition while under a batch: {small:?}"
    );
    let offsets: Vec<i64> = small.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, (0..40).collect::<Vec<i64>>());

    // Once about a batch (16 KiB) has gone to the sticky partition, the next records move to a
    // new one chosen at random: 64 records of 4 KiB switch after every 4 records, 16 times, so
    // they use more than one partition (all in one: probability 4^-15), and never fewer than 4
    // in a row before a switch.
    const BIG: usize = 64;
    let records: Vec<ProducerRecord> = (0..BIG)
        .map(|i| ProducerRecord::new(&sticky, vec![b'a' + (i % 26) as u8; 4096]))
        .collect();
    let big = producer.send_batch(records).await.expect("send");
    let mut runs: Vec<(i32, Vec<i64>)> = Vec::new();
    for m in &big {
        match runs.last_mut() {
            Some((p, offsets)) if *p == m.partition => offsets.push(m.offset),
            _ => runs.push((m.partition, vec![m.offset])),
        }
    }
    let used: std::collections::BTreeSet<i32> = runs.iter().map(|(p, _)| *p).collect();
    assert!(used.len() > 1, "never moved on: {runs:?}");
    for (i, (p, offsets)) in runs.iter().enumerate() {
        if i + 1 < runs.len() {
            assert!(
                offsets.len() >= 4,
                "switched before a batch was full: {runs:?}"
            );
        }
        assert!(
            offsets.windows(2).all(|w| w[1] == w[0] + 1),
            "partition {p}: {offsets:?}"
        );
    }

    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    consumer
        .assign_topic(&sticky, StartOffset::Earliest)
        .await
        .expect("assign");
    let got = common::drain(&mut consumer, 40 + BIG).await;
    assert!(got.records.values().flatten().all(|r| r.key.is_none()));
    for m in small.iter().chain(&big) {
        assert!(
            got.of(&sticky, m.partition)
                .iter()
                .any(|r| r.offset == m.offset),
            "{sticky}-{}@{} not read back",
            m.partition,
            m.offset
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_and_oversized_records_round_trip() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let stamps_topic = broker.topic("stamps");
    if broker.is_tansu() {
        common::create_topic(&client, &stamps_topic, 1).await;
    } else {
        // Kafka refuses batches over `max.message.bytes` (1 MiB by default); Tansu has no limit.
        common::create_topic_with_configs(
            &client,
            &stamps_topic,
            1,
            &[("max.message.bytes", "8388608")],
        )
        .await;
    }
    // A small batch size: every record gets its own batch, and one record exceeds it alone.
    // The largest record (and request) must allow the 3 MiB record.
    let producer = Producer::new(
        &client,
        ProducerConfig {
            batch_size: 1024,
            max_request_size: 8 * 1024 * 1024,
            ..ProducerConfig::default()
        },
    )
    .expect("valid config");

    let big = vec![0xa5_u8; 3 * 1024 * 1024];
    let records = vec![
        ProducerRecord::new(&stamps_topic, "old").timestamp(1_234),
        ProducerRecord::new(&stamps_topic, big.clone()).timestamp(1_700_000_000_000),
        ProducerRecord::new(&stamps_topic, "x".repeat(600)).timestamp(1_700_000_000_001),
        ProducerRecord::new(&stamps_topic, "y".repeat(600)).timestamp(1_700_000_000_002),
    ];
    let written = producer.send_batch(records.clone()).await.expect("send");
    let stamps: Vec<i64> = written.iter().map(|m| m.timestamp).collect();
    assert_eq!(
        stamps,
        vec![
            1_234,
            1_700_000_000_000,
            1_700_000_000_001,
            1_700_000_000_002
        ]
    );
    assert_eq!(
        written.iter().map(|m| m.offset).collect::<Vec<_>>(),
        vec![0, 1, 2, 3]
    );

    // The consumer's per-partition limit is smaller than the big record (KIP-74: the broker
    // still returns the first batch whole).
    let config = kafkawire::ConsumerConfig {
        max_partition_fetch_bytes: 64 * 1024,
        ..common::quick_consumer_config()
    };
    let mut consumer = PartitionConsumer::new(&client, config);
    consumer
        .assign(&stamps_topic, 0, StartOffset::Earliest)
        .await
        .expect("assign");
    let got = common::drain(&mut consumer, 4).await;
    assert_eq!(got.timestamps_of(&stamps_topic, 0), stamps.as_slice());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(
            got.of(&stamps_topic, 0)[i],
            common::Owned::expected(i as i64, r)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_metadata_reports_the_timestamp_the_producer_assigned() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let now = broker.topic("now");
    common::create_topic(&client, &now, 1).await;
    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");

    let before = now_ms();
    let m = producer
        .send_and_wait(ProducerRecord::new(&now, "v"))
        .await
        .expect("send");
    let after = now_ms();
    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    consumer
        .assign(&now, 0, StartOffset::Earliest)
        .await
        .expect("assign");
    let stored = common::drain(&mut consumer, 1).await.timestamps_of(&now, 0)[0];
    assert!(
        (before..=after).contains(&stored),
        "stored {stored} not in {before}..={after}"
    );
    assert_eq!(
        m.timestamp, stored,
        "RecordMetadata should report the CreateTime that was written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_created_after_connect_is_found() {
    let broker = common::broker();
    let mut config = ClientConfig::new(&broker.bootstrap());
    config.allow_auto_topic_creation = false;
    let client = Client::connect(config).await.expect("connect");
    let late = broker.topic("late");
    assert!(!client.metadata().topics.contains_key(&late));

    if let Some(tansu) = broker.tansu() {
        tansu
            .create_topic(&late, 3)
            .expect("create with the tansu CLI");
    } else {
        // Another client creates it, so this one's cache knows nothing of it.
        let other = common::connect(&broker).await;
        common::create_topic(&other, &late, 3).await;
    }
    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");
    let m = producer
        .send_and_wait(ProducerRecord::new(&late, "v").key("some-key"))
        .await
        .expect("send");
    assert_eq!(
        m.partition,
        kafkawire::producer::partition_for_key(b"some-key", 3)
    );
    assert_eq!(client.metadata().partition_count(&late), Some(3));
}
