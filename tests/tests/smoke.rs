//! A first end-to-end check: connect, create a topic, produce, consume.
use kafkawire::{Admin, Client, ClientConfig, NewTopic, PartitionConsumer, Producer, ProducerConfig, ProducerRecord, StartOffset, ConsumerConfig};
use kafkawire_testkit::TansuBroker;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_then_consume_one_partition() {
    let broker = TansuBroker::start().expect("tansu");
    let client = Client::connect(ClientConfig::new(&broker.bootstrap())).await.expect("connect");
    Admin::new(&client).create_topics(&[NewTopic::new("smoke", 1)], Duration::from_secs(5)).await.expect("create");
    let producer = Producer::new(&client, ProducerConfig::default());
    let recs: Vec<ProducerRecord> = (0..10).map(|i| ProducerRecord::new("smoke", format!("v{i}")).key(format!("k{i}")).header("h", "x")).collect();
    let meta = producer.send_batch(recs).await.expect("produce");
    assert_eq!(meta.len(), 10);
    assert_eq!(meta[0].offset, 0);
    assert_eq!(meta[9].offset, 9);
    let mut c = PartitionConsumer::new(&client, ConsumerConfig::default());
    c.assign("smoke", 0, StartOffset::Earliest).await.expect("assign");
    let mut got = vec![];
    for _ in 0..10 {
        let f = c.poll().await.expect("poll");
        for p in &f.partitions {
            for r in p.records() {
                let r = r.unwrap();
                got.push((r.offset(), String::from_utf8(r.value().unwrap().to_vec()).unwrap()));
            }
        }
        if got.len() >= 10 { break; }
    }
    assert_eq!(got.len(), 10, "{got:?}");
    assert_eq!(got[3], (3, "v3".to_string()));
}
