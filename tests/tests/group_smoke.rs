//! First check of the group consumer: two members split a topic, every record read once.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use kafkawire::{GroupConfig, GroupConsumer, OffsetReset, Producer, ProducerRecord};

fn config(group: &str) -> GroupConfig {
    let mut c = GroupConfig::new(group);
    c.session_timeout = Duration::from_secs(6);
    c.heartbeat_interval = Duration::from_millis(500);
    c.auto_offset_reset = OffsetReset::Earliest;
    c.fetch.fetch_max_wait = Duration::from_millis(100);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_the_partitions_and_read_everything_once() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("grouped");
    let group = broker.topic("g");
    common::create_topic(&client, &topic, 4).await;
    let producer = Producer::builder(&client).build().unwrap();
    let records: Vec<ProducerRecord> = (0..400)
        .map(|i| ProducerRecord::new(&topic, format!("v{i}")).partition(i % 4))
        .collect();
    producer.send_batch(records).await.unwrap();

    let mut a = GroupConsumer::subscribe(&client, config(&group), &[&topic]).unwrap();
    let mut b = GroupConsumer::subscribe(&client, config(&group), &[&topic]).unwrap();
    let mut seen = BTreeSet::new();
    let mut dup = 0;
    let deadline = Instant::now() + Duration::from_secs(40);
    while seen.len() < 400 && Instant::now() < deadline {
        let (fa, fb) = tokio::join!(a.poll(), b.poll());
        for f in [fa, fb] {
            for p in &f.unwrap().partitions {
                for r in p.records() {
                    let r = r.unwrap();
                    if !seen.insert((p.partition, r.offset())) {
                        dup += 1;
                    }
                }
            }
        }
    }
    let (pa, pb) = (a.assignment(), b.assignment());
    assert_eq!(seen.len(), 400, "assignments {pa:?} / {pb:?}");
    assert_eq!(pa.len() + pb.len(), 4, "{pa:?} {pb:?}");
    assert!(!pa.is_empty() && !pb.is_empty(), "{pa:?} {pb:?}");
    eprintln!("duplicates across the rebalance: {dup}");
    a.close().await.unwrap();
    b.close().await.unwrap();
}
