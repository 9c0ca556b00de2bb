//! The kafkawire producer (first version): send records to a topic with acks 0, 1 or all,
//! partitioned by Java-compatible murmur2 of the key, compressed per producer.
//!
//! This version sends what it is given: [`Producer::send`] one record, [`Producer::send_batch`]
//! many (grouped per partition into record batches, one Produce request per leader per round).
//! Retriable errors are retried with backoff after a metadata refresh. Batching in the
//! background, idempotence and transactions are the next step (see the README's status table).
//!
//! ```no_run
//! # async fn demo() -> Result<(), kafkawire_client::Error> {
//! use kafkawire_client::{Client, ClientConfig};
//! use kafkawire_producer::{Producer, ProducerConfig, ProducerRecord};
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! let producer = Producer::new(&client, ProducerConfig::default());
//! let meta = producer
//!     .send(ProducerRecord::new("orders", "order-42 shipped").key("order-42"))
//!     .await?;
//! println!("written to {}-{} at offset {}", meta.topic, meta.partition, meta.offset);
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod partitioner;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use kafkawire_client::{Client, Error, Result};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafkawire_protocol::records::{Compression, RecordBatchBuilder};

pub use partitioner::{murmur2, partition_for_key};

/// How many replicas must have a record before the broker acknowledges it (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Acks {
    /// `acks=0`: no acknowledgement; the broker sends no response and offsets are unknown.
    None,
    /// `acks=1`: the leader has written it.
    Leader,
    /// `acks=all` (-1): every in-sync replica has it. The default: no lost messages.
    #[default]
    All,
}

impl Acks {
    /// The value sent in the Produce request.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }
}

impl std::str::FromStr for Acks {
    type Err = Error;
    fn from_str(s: &str) -> Result<Acks> {
        match s {
            "0" => Ok(Acks::None),
            "1" => Ok(Acks::Leader),
            "all" | "-1" => Ok(Acks::All),
            other => Err(Error::Config(format!("acks must be 0, 1 or all, not {other:?}"))),
        }
    }
}

/// Producer settings. Defaults follow the Java client.
#[derive(Debug, Clone)]
pub struct ProducerConfig {
    /// Acknowledgement level (default all).
    pub acks: Acks,
    /// Compression of every batch (default none).
    pub compression: Compression,
    /// Largest record batch this producer builds, in bytes (default 1 MiB, the broker's
    /// `message.max.bytes` default).
    pub max_batch_bytes: usize,
    /// How long the broker may wait for replicas before answering, sent as the Produce
    /// request's timeout (default 30 s).
    pub request_timeout: Duration,
    /// Retries of a batch after a retriable error (default 5).
    pub retries: u32,
    /// First backoff between retries, doubled each time up to 1 s (default 100 ms).
    pub retry_backoff: Duration,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        ProducerConfig {
            acks: Acks::All,
            compression: Compression::None,
            max_batch_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            retries: 5,
            retry_backoff: Duration::from_millis(100),
        }
    }
}

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic.
    pub topic: String,
    /// Partition; `None` lets the producer choose (murmur2 of the key, or any partition for a
    /// null key).
    pub partition: Option<i32>,
    /// Key (nullable).
    pub key: Option<Bytes>,
    /// Value (nullable: a null value is a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers: UTF-8 key, nullable value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp in ms since the epoch; `None` is "now".
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: &str, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.to_owned(),
            value: Some(value.into()),
            ..Default::default()
        }
    }

    /// Sets the key.
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sets the partition.
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    pub fn header(mut self, key: &str, value: impl Into<Bytes>) -> Self {
        self.headers.push((key.to_owned(), Some(value.into())));
        self
    }

    /// Sets the timestamp, in ms since the epoch.
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset, or -1 with acks=0.
    pub offset: i64,
    /// The record's timestamp, or the broker's append time when the topic uses LogAppendTime.
    pub timestamp: i64,
}

/// Sends records. Cheap to clone; clones share the client.
#[derive(Debug, Clone)]
pub struct Producer {
    client: Client,
    config: ProducerConfig,
    round_robin: std::sync::Arc<AtomicU32>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One encoded batch on its way: (topic, partition), the range of the partition queue it holds,
/// and its bytes.
type BatchToSend = ((String, i32), usize, usize, Bytes);

/// Records of one partition waiting to go, with where their results go.
struct PartitionQueue {
    records: Vec<(usize, ProducerRecord)>,
    next: usize,
}

impl Producer {
    /// A producer sending through `client`.
    pub fn new(client: &Client, config: ProducerConfig) -> Producer {
        Producer {
            client: client.clone(),
            config,
            round_robin: std::sync::Arc::new(AtomicU32::new(rand_seed())),
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.config
    }

    /// Sends one record and waits for its acknowledgement.
    ///
    /// # Errors
    /// As [`Producer::send_batch`].
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        let mut v = self.send_batch(vec![record]).await?;
        v.pop().ok_or_else(|| Error::Config("no result for the record".into()))
    }

    /// Sends many records, keeping their order within each partition, and waits until all are
    /// acknowledged. Records with a null key and no partition all go to one partition chosen per
    /// call (sticky, KIP-480's idea without the background batching).
    ///
    /// # Errors
    /// The first non-retriable error, or a retriable one that persisted through
    /// `config.retries` retries; the error names the topic and partition. Records of other
    /// partitions may have been written (no transactions in this version).
    pub async fn send_batch(&self, records: Vec<ProducerRecord>) -> Result<Vec<RecordMetadata>> {
        let total = records.len();
        let mut queues: BTreeMap<(String, i32), PartitionQueue> = BTreeMap::new();
        let mut sticky: BTreeMap<String, i32> = BTreeMap::new();
        let now = now_ms();
        for (i, mut r) in records.into_iter().enumerate() {
            // Stamped once, here, so the batch and the returned metadata agree.
            r.timestamp.get_or_insert(now);
            let partition = match r.partition {
                Some(p) => p,
                None => {
                    let topic = self.client.topic_metadata(&r.topic).await?;
                    let n = topic.partitions.len() as i32;
                    match &r.key {
                        Some(k) => partition_for_key(k, n),
                        None => *sticky.entry(r.topic.clone()).or_insert_with(|| {
                            (self.round_robin.fetch_add(1, Ordering::Relaxed) % n.max(1) as u32) as i32
                        }),
                    }
                }
            };
            queues
                .entry((r.topic.clone(), partition))
                .or_insert_with(|| PartitionQueue { records: Vec::new(), next: 0 })
                .records
                .push((i, r));
        }
        let mut results: Vec<Option<RecordMetadata>> = vec![None; total];
        let mut attempts: BTreeMap<(String, i32), u32> = BTreeMap::new();
        while queues.values().any(|q| q.next < q.records.len()) {
            // One batch per partition per round; one request per leader.
            let mut by_leader: BTreeMap<i32, Vec<BatchToSend>> = BTreeMap::new();
            for ((topic, partition), q) in queues.iter().filter(|(_, q)| q.next < q.records.len()) {
                let leader = match self.client.leader_for(topic, *partition).await {
                    Ok(l) => l,
                    Err(e) => {
                        let key = (topic.clone(), *partition);
                        self.retry_or_fail(e, &[key], &mut attempts).await?;
                        continue;
                    }
                };
                let (end, bytes) = self.build_batch(&q.records[q.next..])?;
                by_leader.entry(leader).or_default().push(((topic.clone(), *partition), q.next, q.next + end, bytes));
            }
            for (leader, batches) in by_leader {
                let outcome = match self.produce(leader, &batches).await {
                    Ok(per_batch) => per_batch,
                    // The whole request failed: every batch in it shares the error.
                    Err(e) => {
                        let keys: Vec<(String, i32)> = batches.iter().map(|(k, ..)| k.clone()).collect();
                        self.retry_or_fail(e, &keys, &mut attempts).await?;
                        continue;
                    }
                };
                for (((topic, partition), start, end, _), result) in batches.into_iter().zip(outcome) {
                    let key = (topic.clone(), partition);
                    match result {
                        Ok((base_offset, append_time)) => {
                            let q = queues.get_mut(&key).expect("queue");
                            for (n, (idx, rec)) in q.records[start..end].iter().enumerate() {
                                results[*idx] = Some(RecordMetadata {
                                    topic: topic.clone(),
                                    partition,
                                    offset: if base_offset < 0 { -1 } else { base_offset + n as i64 },
                                    timestamp: if append_time >= 0 { append_time } else { rec.timestamp.unwrap_or(now) },
                                });
                            }
                            q.next = end;
                            attempts.remove(&key);
                        }
                        Err(e) => self.retry_or_fail(e, &[key], &mut attempts).await?,
                    }
                }
            }
        }
        Ok(results.into_iter().map(|r| r.expect("every record has a result")).collect())
    }

    /// After a failed batch: `Ok` to try again (after a backoff, and a metadata refresh when
    /// the error says metadata is stale), or the error when it is not retriable or the retries
    /// are used up.
    async fn retry_or_fail(
        &self,
        e: Error,
        keys: &[(String, i32)],
        attempts: &mut BTreeMap<(String, i32), u32>,
    ) -> Result<()> {
        if !e.is_retriable() {
            return Err(e);
        }
        let mut worst = 0;
        for k in keys {
            let n = attempts.entry(k.clone()).or_insert(0);
            *n += 1;
            worst = worst.max(*n);
        }
        if worst > self.config.retries {
            return Err(e);
        }
        tracing::debug!(error = %e, attempt = worst, "retrying produce");
        let backoff = self
            .config
            .retry_backoff
            .saturating_mul(1 << (worst - 1).min(10))
            .min(Duration::from_secs(1));
        tokio::time::sleep(backoff).await;
        if e.invalidates_metadata() {
            let topics: Vec<&str> = keys.iter().map(|(t, _)| t.as_str()).collect();
            let _ = self.client.refresh_metadata(&topics).await;
        }
        Ok(())
    }

    /// Builds one batch from the front of `records`, up to `max_batch_bytes`; returns how many
    /// records it holds (at least one) and the encoded batch.
    fn build_batch(&self, records: &[(usize, ProducerRecord)]) -> Result<(usize, Bytes)> {
        let mut b = RecordBatchBuilder::new();
        b.compression(self.config.compression);
        let now = now_ms();
        let mut count = 0;
        for (_, r) in records {
            let headers: Vec<(&str, Option<&[u8]>)> =
                r.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
            let ts = r.timestamp.unwrap_or(now);
            let size = b.estimated_size_with(ts, r.key.as_deref(), r.value.as_deref(), &headers);
            if count > 0 && size > self.config.max_batch_bytes {
                break;
            }
            b.push(ts, r.key.as_deref(), r.value.as_deref(), &headers)
                .map_err(|source| Error::Encode { api: ApiKey::Produce, source })?;
            count += 1;
        }
        let bytes = b.build().map_err(|source| Error::Encode { api: ApiKey::Produce, source })?;
        Ok((count, bytes))
    }

    /// Sends one Produce request to `leader`; returns per batch the base offset and log append
    /// time, or the partition's error.
    async fn produce(
        &self,
        leader: i32,
        batches: &[BatchToSend],
    ) -> Result<Vec<Result<(i64, i64)>>> {
        let mut topics: BTreeMap<&str, Vec<PartitionProduceData>> = BTreeMap::new();
        for ((topic, partition), _, _, bytes) in batches {
            topics.entry(topic).or_default().push(PartitionProduceData {
                index: *partition,
                records: Some(bytes.clone()),
                ..Default::default()
            });
        }
        let req = ProduceRequest {
            acks: self.config.acks.as_i16(),
            timeout_ms: self.config.request_timeout.as_millis().min(i32::MAX as u128) as i32,
            topic_data: topics
                .into_iter()
                .map(|(name, partition_data)| TopicProduceData { name: name.to_owned(), partition_data, ..Default::default() })
                .collect(),
            ..Default::default()
        };
        if self.config.acks == Acks::None {
            let sent = async {
                let conn = self.client.broker_connection(leader).await?;
                let v = conn.version_for(ApiKey::Produce)?;
                conn.send_no_response(&req, v)
            }
            .await;
            sent?;
            return Ok(batches.iter().map(|_| Ok((-1, -1))).collect());
        }
        let resp = self.client.send_to(leader, &req).await?;
        let broker = self.client.metadata().brokers.get(&leader).map(|b| b.address());
        Ok(batches
            .iter()
            .map(|((topic, partition), ..)| {
                let p = resp
                    .responses
                    .iter()
                    .filter(|t| &t.name == topic)
                    .flat_map(|t| t.partition_responses.iter())
                    .find(|p| p.index == *partition);
                match p {
                    None => Err(Error::broker_error(
                        ErrorCode::UNKNOWN_SERVER_ERROR,
                        ApiKey::Produce,
                        broker.as_deref(),
                        Some(topic),
                        Some(*partition),
                        Some("the response does not mention this partition".into()),
                    )),
                    Some(p) if p.error_code != 0 => Err(Error::broker_error(
                        ErrorCode(p.error_code),
                        ApiKey::Produce,
                        broker.as_deref(),
                        Some(topic),
                        Some(*partition),
                        p.error_message.clone(),
                    )),
                    Some(p) => Ok((p.base_offset, p.log_append_time_ms)),
                }
            })
            .collect())
    }
}

fn rand_seed() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0)
}
