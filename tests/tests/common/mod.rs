//! Helpers shared by the integration tests: choosing the broker, connecting, creating topics,
//! and draining a consumer into owned records.
//!
//! The tests run against a Tansu broker each test starts for itself, or, when
//! `KAFKAWIRE_BOOTSTRAP` is set and non-empty, against that external broker (for example the
//! Apache Kafka of `docker/compose.yml`). See [`broker`].
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

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

/// The environment variable naming an external broker (`HOST:PORT[,HOST:PORT...]`).
pub(crate) const BOOTSTRAP_ENV: &str = "KAFKAWIRE_BOOTSTRAP";

/// How long to wait for an external cluster's metadata to catch up with an admin operation.
pub(crate) const METADATA_DEADLINE: Duration = Duration::from_secs(30);

/// The broker a test runs against.
#[derive(Debug)]
pub(crate) enum TestBroker {
    /// A Tansu broker this test started; it stops when this value is dropped.
    Tansu(TansuBroker),
    /// A broker from [`BOOTSTRAP_ENV`]: shared, possibly not Tansu, and its topics persist
    /// between runs.
    External {
        /// The bootstrap list, as given.
        bootstrap: String,
    },
}

impl TestBroker {
    /// The bootstrap list to hand to [`ClientConfig::new`].
    pub(crate) fn bootstrap(&self) -> String {
        match self {
            TestBroker::Tansu(t) => t.bootstrap(),
            TestBroker::External { bootstrap } => bootstrap.clone(),
        }
    }

    /// The bootstrap addresses one by one, as [`ClientConfig::new`] splits them.
    pub(crate) fn bootstrap_addresses(&self) -> Vec<String> {
        ClientConfig::new(&self.bootstrap()).bootstrap
    }

    /// Whether this is a Tansu broker the test started (so Tansu's deviations and fixed
    /// values, such as node id 111, apply, and the broker holds no topics but the test's).
    pub(crate) fn is_tansu(&self) -> bool {
        matches!(self, TestBroker::Tansu(_))
    }

    /// The Tansu broker, when the test started one.
    pub(crate) fn tansu(&self) -> Option<&TansuBroker> {
        match self {
            TestBroker::Tansu(t) => Some(t),
            TestBroker::External { .. } => None,
        }
    }

    /// A topic name for this test: `base` itself on a fresh Tansu, and a name no earlier run or
    /// other test uses (`base-PID-UNIQUE`) on an external broker, whose topics persist.
    pub(crate) fn topic(&self, base: &str) -> String {
        match self {
            TestBroker::Tansu(_) => base.to_owned(),
            TestBroker::External { .. } => {
                format!("{base}-{}-{}", std::process::id(), unique_nanos())
            }
        }
    }
}

/// Nanoseconds since the epoch, strictly increasing within this process (two calls in the same
/// nanosecond still get different values).
fn unique_nanos() -> u64 {
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    let prev = LAST
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |prev| {
            Some(now.max(prev + 1))
        })
        .expect("the update always succeeds");
    now.max(prev + 1)
}

/// The broker for a test: the external one named by [`BOOTSTRAP_ENV`] when that is set and
/// non-empty, otherwise a Tansu broker started for this test alone.
pub(crate) fn broker() -> TestBroker {
    match std::env::var_os(BOOTSTRAP_ENV) {
        Some(v) if !v.is_empty() => {
            let v = v
                .into_string()
                .unwrap_or_else(|v| panic!("{BOOTSTRAP_ENV} is not UTF-8: {v:?}"));
            let bootstrap = v.trim();
            assert!(
                !ClientConfig::new(bootstrap).bootstrap.is_empty(),
                "{BOOTSTRAP_ENV} holds no address: {v:?}"
            );
            TestBroker::External {
                bootstrap: bootstrap.to_owned(),
            }
        }
        _ => own_tansu(),
    }
}

/// Starts a Tansu broker whatever [`BOOTSTRAP_ENV`] says, for tests that need a broker process
/// of their own (one they stop, for instance). Fails the test with the testkit's message if it
/// cannot start one.
pub(crate) fn own_tansu() -> TestBroker {
    TestBroker::Tansu(TansuBroker::start().unwrap_or_else(|e| panic!("cannot start tansu: {e}")))
}

/// Connects a client to `broker` with default settings.
pub(crate) async fn connect(broker: &TestBroker) -> Client {
    Client::connect(ClientConfig::new(&broker.bootstrap()))
        .await
        .unwrap_or_else(|e| panic!("connect to {}: {e}", broker.bootstrap()))
}

/// Creates `name` with `partitions` partitions through the Admin API.
pub(crate) async fn create_topic(client: &Client, name: &str, partitions: i32) {
    create_topic_with_configs(client, name, partitions, &[]).await;
}

/// Creates `name` with `partitions` partitions and topic `configs` through the Admin API, then
/// waits until the client's metadata shows every partition with a leader. (A fresh Tansu has
/// them as soon as the create returns; on a Kafka cluster the metadata can lag behind the
/// controller for a moment.)
pub(crate) async fn create_topic_with_configs(
    client: &Client,
    name: &str,
    partitions: i32,
    configs: &[(&str, &str)],
) {
    let mut topic = NewTopic::new(name, partitions);
    topic.configs = configs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Admin::new(client)
        .create_topics(&[topic], Duration::from_secs(10))
        .await
        .unwrap_or_else(|e| panic!("create topic {name}: {e}"));
    wait_for_topic(client, name, partitions).await;
}

/// Waits until the client's metadata has `name` with `partitions` partitions, each with a
/// leader, refreshing it as needed; fails after [`METADATA_DEADLINE`].
pub(crate) async fn wait_for_topic(client: &Client, name: &str, partitions: i32) {
    let ready = |m: &kafkawire::ClusterMetadata| {
        m.topics.get(name).is_some_and(|t| {
            t.error.is_ok()
                && t.partitions.len() == partitions as usize
                && t.partitions.iter().all(|p| p.leader >= 0)
        })
    };
    let start = Instant::now();
    let mut meta = client.metadata();
    while !ready(&meta) {
        assert!(
            start.elapsed() < METADATA_DEADLINE,
            "topic {name} has no complete metadata after {METADATA_DEADLINE:?}: {:?}",
            meta.topics.get(name)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        meta = client
            .refresh_metadata(&[name])
            .await
            .unwrap_or_else(|e| panic!("metadata for {name}: {e}"));
    }
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
