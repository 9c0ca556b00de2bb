//! Helpers shared by the integration tests: connecting, creating topics, and draining a
//! consumer into owned records.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafkawire::{
    Admin, Client, ClientConfig, Compression, ConsumerConfig, NewTopic, PartitionConsumer,
    ProducerRecord,
};
use kafkawire_testkit::TansuBroker;

/// How long a test may wait for records to show up before failing.
pub(crate) const CONSUME_DEADLINE: Duration = Duration::from_secs(30);

/// A consumed record, copied out of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Owned {
    pub(crate) offset: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Owned {
    /// What `record` should look like once read back at `offset`.
    pub(crate) fn expected(offset: i64, record: &ProducerRecord) -> Owned {
        Owned {
            offset,
            key: record.key.as_ref().map(|k| k.to_vec()),
            value: record.value.as_ref().map(|v| v.to_vec()),
            headers: record
                .headers
                .iter()
                .map(|(k, v)| (k.clone(), v.as_ref().map(|v| v.to_vec())))
                .collect(),
        }
    }
}

/// Starts a Tansu broker, failing the test with the testkit's message if it cannot.
pub(crate) fn broker() -> TansuBroker {
    TansuBroker::start().unwrap_or_else(|e| panic!("cannot start tansu: {e}"))
}

/// Connects a client to `broker` with default settings.
pub(crate) async fn connect(broker: &TansuBroker) -> Client {
    Client::connect(ClientConfig::new(&broker.bootstrap()))
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", broker.bootstrap()))
}

/// Creates `name` with `partitions` partitions through the Admin API.
pub(crate) async fn create_topic(client: &Client, name: &str, partitions: i32) {
    Admin::new(client)
        .create_topics(&[NewTopic::new(name, partitions)], Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
}

/// A consumer config with a short fetch wait, so polls of empty partitions return quickly.
pub(crate) fn quick_consumer_config() -> ConsumerConfig {
    ConsumerConfig {
        fetch_max_wait: Duration::from_millis(100),
        ..ConsumerConfig::default()
    }
}

/// What [`drain`] read.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    /// Records per (topic, partition), in the order read.
    pub(crate) records: BTreeMap<(String, i32), Vec<Owned>>,
    /// The last high watermark seen per (topic, partition).
    pub(crate) high_watermarks: BTreeMap<(String, i32), i64>,
    /// The timestamps of the records, parallel to `records`.
    pub(crate) timestamps: BTreeMap<(String, i32), Vec<i64>>,
    /// The compression codecs of the batches that held records.
    pub(crate) codecs: Vec<Compression>,
}

impl Drained {
    /// The records of `topic`/`partition` (empty if none arrived).
    pub(crate) fn of(&self, topic: &str, partition: i32) -> &[Owned] {
        self.records
            .get(&(topic.to_owned(), partition))
            .map_or(&[], Vec::as_slice)
    }

    /// The timestamps of the records of `topic`/`partition`, in the order read.
    pub(crate) fn timestamps_of(&self, topic: &str, partition: i32) -> &[i64] {
        self.timestamps
            .get(&(topic.to_owned(), partition))
            .map_or(&[], Vec::as_slice)
    }

    /// The last high watermark of `topic`/`partition`.
    pub(crate) fn high_watermark(&self, topic: &str, partition: i32) -> Option<i64> {
        self.high_watermarks
            .get(&(topic.to_owned(), partition))
            .copied()
    }
}

/// Polls `consumer` until it has yielded `expected` records in all, or fails after
/// [`CONSUME_DEADLINE`].
pub(crate) async fn drain(consumer: &mut PartitionConsumer, expected: usize) -> Drained {
    let mut out = Drained::default();
    let mut total = 0;
    let start = Instant::now();
    while total < expected {
        assert!(
            start.elapsed() < CONSUME_DEADLINE,
            "read only {total} of {expected} records in {CONSUME_DEADLINE:?}"
        );
        let fetched = consumer.poll().await.expect("poll");
        for p in &fetched.partitions {
            assert_eq!(
                p.reset, None,
                "unexpected offset reset on {}-{}",
                p.topic, p.partition
            );
            let key = (p.topic.clone(), p.partition);
            out.high_watermarks.insert(key.clone(), p.high_watermark);
            for b in p.batches() {
                if b.record_count() > 0 && !out.codecs.contains(&b.compression()) {
                    out.codecs.push(b.compression());
                }
            }
            let stamps = out.timestamps.entry(key.clone()).or_default();
            let recs = out.records.entry(key).or_default();
            for r in p.records() {
                let r =
                    r.unwrap_or_else(|e| panic!("bad record in {}-{}: {e}", p.topic, p.partition));
                stamps.push(r.timestamp());
                recs.push(Owned {
                    offset: r.offset(),
                    key: r.key().map(<[u8]>::to_vec),
                    value: r.value().map(<[u8]>::to_vec),
                    headers: r
                        .headers()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect(),
                });
                total += 1;
            }
        }
    }
    assert_eq!(total, expected, "read more records than were written");
    out
}

/// Polls once more and asserts nothing new arrives (nothing beyond what was drained).
pub(crate) async fn assert_no_more(consumer: &mut PartitionConsumer) {
    let fetched = consumer.poll().await.expect("poll");
    let extra: usize = fetched.partitions.iter().map(|p| p.records().count()).sum();
    assert_eq!(extra, 0, "unexpected extra records");
}

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
pub(crate) fn dead_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = l.local_addr().expect("local addr").port();
    drop(l);
    port
}
