//! A first end-to-end check: connect, create a topic, produce, consume.
mod common;

use kafkawire::{
    Admin, ConsumerConfig, NewTopic, PartitionConsumer, Producer, ProducerConfig, ProducerRecord,
    StartOffset,
};
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_consume_one_partition() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("smoke");
    Admin::new(&client)
        .create_topics(&[NewTopic::new(&topic, 1)], Duration::from_secs(5))
        .await
        .expect("create");
    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");
    let recs: Vec<ProducerRecord> = (0..10)
        .map(|i| {
            ProducerRecord::new(&topic, format!("v{i}"))
                .key(format!("k{i}"))
                .header("h", "x")
        })
        .collect();
    let meta = producer.send_batch(recs).await.expect("produce");
    assert_eq!(meta.len(), 10);
    assert_eq!(meta[0].offset, 0);
    assert_eq!(meta[9].offset, 9);
    let mut c = PartitionConsumer::new(&client, ConsumerConfig::default());
    c.assign(&topic, 0, StartOffset::Earliest)
        .await
        .expect("assign");
    let mut got = vec![];
    for _ in 0..10 {
        let f = c.poll().await.expect("poll");
        for p in &f.partitions {
            for r in p.records() {
                let r = r.unwrap();
                got.push((
                    r.offset(),
                    String::from_utf8(r.value().unwrap().to_vec()).unwrap(),
                ));
            }
        }
        if got.len() >= 10 {
            break;
        }
    }
    assert_eq!(got.len(), 10, "{got:?}");
    assert_eq!(got[3], (3, "v3".to_string()));
}
