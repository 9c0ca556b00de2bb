//! The kafkawire producer: batching, acks, retries, idempotence and transactions, with Kafka's
//! own semantics and the Java client's defaults.
//!
//! [`Producer::send`] puts a record into the accumulator (waiting for buffer room up to
//! `max_block`) and returns a [`DeliveryFuture`]; a background sender groups records into one
//! batch per partition, sends them to each leader with up to five requests in flight, retries
//! what may succeed later, and resolves every future with the record's offset or the reason it
//! failed. With idempotence (the default) retries never duplicate or reorder a partition's
//! records (KIP-98); with a transactional id, records and consumer offsets commit or abort
//! together.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kafkawire_client::Error> {
//! use kafkawire_client::{Client, ClientConfig};
//! use kafkawire_producer::{Producer, ProducerRecord};
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! let producer = Producer::builder(&client)
//!     .linger(std::time::Duration::from_millis(10))
//!     .build()?;
//! // Accepted into the buffer: not yet acknowledged.
//! let delivery = producer.send(ProducerRecord::new("orders", "order-42 shipped").key("order-42")).await?;
//! // Acknowledged by all in-sync replicas.
//! let meta = delivery.await?;
//! println!("written to {}-{} at offset {}", meta.topic, meta.partition, meta.offset);
//! producer.close(std::time::Duration::from_secs(5)).await?;
//! # Ok(()) }
//! ```
#![warn(missing_docs)]

mod accumulator;
mod config;
mod delivery;
mod partitioner;
mod sender;
mod state;
mod stats;
mod txn;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
pub use config::{Acks, ProducerBuilder, ProducerConfig};
pub use delivery::DeliveryFuture;
use kafkawire_client::{Client, Error, Result};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
pub use partitioner::{DefaultPartitioner, Partitioner, murmur2, partition_for_key};
pub(crate) use state::Shared;
pub use stats::ProducerStats;
pub use txn::{ConsumerGroupMetadata, TopicPartitionOffset};

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    /// Topic. An `Arc<str>`, so an application sending many records to one topic can share
    /// one name (`let t: Arc<str> = "orders".into();` then `ProducerRecord::new(t.clone(), v)`)
    /// instead of allocating it per record.
    pub topic: Arc<str>,
    /// Partition; `None` lets the partitioner choose (murmur2 of the key; sticky for a null
    /// key).
    pub partition: Option<i32>,
    /// Key (nullable).
    pub key: Option<Bytes>,
    /// Value (nullable: a null value is a tombstone on compacted topics).
    pub value: Option<Bytes>,
    /// Headers: UTF-8 key, nullable value.
    pub headers: Vec<(String, Option<Bytes>)>,
    /// Timestamp in ms since the epoch; `None` is "now" (when `send` is called).
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record with a value and no key.
    pub fn new(topic: impl TopicName, value: impl Into<Bytes>) -> Self {
        ProducerRecord {
            topic: topic.into_topic_name(),
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

/// A topic name for [`ProducerRecord::new`]: `&str`, `String`, `&String` (allocate a shared
/// name), or `Arc<str>` / `&Arc<str>` (share one without allocating).
pub trait TopicName {
    /// The name as a shared string.
    fn into_topic_name(self) -> Arc<str>;
}

impl TopicName for &str {
    fn into_topic_name(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl TopicName for String {
    fn into_topic_name(self) -> Arc<str> {
        Arc::from(self)
    }
}

impl TopicName for &String {
    fn into_topic_name(self) -> Arc<str> {
        Arc::from(self.as_str())
    }
}

impl TopicName for Arc<str> {
    fn into_topic_name(self) -> Arc<str> {
        self
    }
}

impl TopicName for &Arc<str> {
    fn into_topic_name(self) -> Arc<str> {
        self.clone()
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// Topic (shared with the producer's other records of the topic: no allocation per record).
    pub topic: Arc<str>,
    /// Partition.
    pub partition: i32,
    /// Offset; -1 with acks=0, or when the broker reported the batch as a duplicate of one it
    /// already has (an earlier attempt was written).
    pub offset: i64,
    /// The record's timestamp, or the broker's append time when the topic uses LogAppendTime.
    pub timestamp: i64,
}

/// Sends records. Cheap to clone; clones share one accumulator and sender. When the last clone
/// is dropped, the sender sends what is buffered and stops (call [`Producer::close`] to wait for
/// that).
#[derive(Clone)]
pub struct Producer {
    shared: Arc<Shared>,
    _last_handle: Arc<LastHandle>,
}

/// Dropped with the last [`Producer`] clone: tells the sender to finish and stop.
struct LastHandle(Arc<Shared>);

impl Drop for LastHandle {
    fn drop(&mut self) {
        if let Ok(mut acc) = self.0.acc.lock() {
            acc.closing = true;
        }
        self.0.wake.notify_one();
    }
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer")
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

impl Producer {
    /// A builder with the default settings.
    pub fn builder(client: &Client) -> ProducerBuilder {
        ProducerBuilder {
            client: client.clone(),
            config: ProducerConfig::default(),
        }
    }

    /// A producer with `config`.
    ///
    /// # Errors
    /// As [`ProducerConfig::validate`].
    pub fn new(client: &Client, config: ProducerConfig) -> Result<Producer> {
        Producer::builder(client).config(config).build()
    }

    pub(crate) fn start(client: Client, config: ProducerConfig) -> Producer {
        config.partitioner.configure(config.batch_size);
        let shared = Arc::new(Shared::new(client, config));
        let task = tokio::spawn(sender::run(shared.clone()));
        if let Ok(mut t) = shared.sender_task.lock() {
            *t = Some(task);
        }
        Producer {
            _last_handle: Arc::new(LastHandle(shared.clone())),
            shared,
        }
    }

    /// The settings in use.
    pub fn config(&self) -> &ProducerConfig {
        &self.shared.config
    }

    /// Accepts a record into the buffer, waiting up to `max_block` for room and for the topic's
    /// metadata, and returns the future of its delivery.
    ///
    /// # Errors
    /// Immediately: [`Error::RecordTooLarge`], [`Error::BufferFull`] after `max_block`, an
    /// unknown topic or partition, [`Error::TransactionState`] outside a transaction (with a
    /// transactional id), [`Error::ProducerClosed`], or the fatal error that stopped the
    /// producer (e.g. PRODUCER_FENCED). Delivery errors come from the future.
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        self.accept(record).await
    }

    /// As [`Producer::send`], but fails at once with [`Error::BufferFull`] instead of waiting
    /// for buffer room. Metadata must already be known for the topic (send one record with
    /// `send` first), else the error is retriable [`Error::NoLeader`]-like.
    ///
    /// # Errors
    /// As [`Producer::send`].
    pub fn try_send(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let size = self.shared.check_record(&record)?;
        let partition = self.shared.partition_now(&record)?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let need = match self
            .shared
            .append(&record, partition, size, timestamp, None)?
        {
            Ok(f) => return Ok(f),
            Err(need) => need,
        };
        let held = self.shared.try_reserve(need)?;
        self.append_reserved(&record, partition, size, timestamp, held)
    }

    async fn accept(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let size = self.shared.check_record(&record)?;
        let partition = match self.shared.partition_now(&record) {
            Ok(p) => p,
            Err(_) => self.partition_within_max_block(&record).await?,
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        // Into the open batch of the partition when it has room: no memory to wait for.
        let need = match self
            .shared
            .append(&record, partition, size, timestamp, None)?
        {
            Ok(f) => return Ok(f),
            Err(need) => need,
        };
        let held = self.shared.reserve(need).await?;
        self.append_reserved(&record, partition, size, timestamp, held)
    }

    /// Appends with `held` bytes of buffer memory reserved for a new batch; gives them back on
    /// an error.
    fn append_reserved(
        &self,
        record: &ProducerRecord,
        partition: i32,
        size: usize,
        timestamp: i64,
        held: usize,
    ) -> Result<DeliveryFuture> {
        match self
            .shared
            .append(record, partition, size, timestamp, Some(held))
        {
            Ok(Ok(f)) => Ok(f),
            Ok(Err(_)) => {
                self.shared.unreserve(held);
                Err(Error::ProducerClosed {
                    reason: Some("the record could not be buffered".into()),
                })
            }
            Err(e) => {
                self.shared.unreserve(held);
                Err(e)
            }
        }
    }

    /// The record's partition, waiting up to `max_block` for the topic's metadata.
    async fn partition_within_max_block(&self, record: &ProducerRecord) -> Result<i32> {
        let max_block = self.shared.config.max_block;
        match tokio::time::timeout(max_block, self.shared.partition_for(record)).await {
            Ok(p) => p,
            Err(_) => Err(Error::broker_error(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                ApiKey::Metadata,
                None,
                Some(&record.topic),
                record.partition,
                Some(format!(
                    "no metadata for the topic within max_block ({} ms)",
                    max_block.as_millis()
                )),
            )),
        }
    }

    /// Sends one record and waits for its acknowledgement.
    ///
    /// # Errors
    /// As [`Producer::send`], and the record's delivery error.
    pub async fn send_and_wait(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.send(record).await?.await
    }

    /// Sends many records (in order) and waits for all of them.
    ///
    /// # Errors
    /// The first error met, in record order; records before and after it may have been written.
    pub async fn send_batch(&self, records: Vec<ProducerRecord>) -> Result<Vec<RecordMetadata>> {
        let mut futures = Vec::with_capacity(records.len());
        for r in records {
            futures.push(self.send(r).await?);
        }
        let mut out = Vec::with_capacity(futures.len());
        for f in futures {
            out.push(f.await?);
        }
        Ok(out)
    }

    /// Sends everything buffered now, without waiting for `linger`, and waits up to `timeout`
    /// until every record accepted so far is acknowledged or failed. Each record is settled
    /// within its delivery timeout anyway; `timeout` bounds the wait for the caller.
    ///
    /// # Errors
    /// [`Error::Incomplete`] (retriable) when records are still unsettled after `timeout`; they
    /// stay in flight and their futures still resolve.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        self.shared.flush_within(timeout).await
    }

    /// Flushes (up to `timeout`), then stops the sender. Every record's future resolves exactly
    /// once: records still unsettled after the timeout fail with [`Error::ProducerClosed`]
    /// (those already sent may still be written by the broker), and [`Producer::pending`] is 0
    /// afterwards, so a later `flush` returns at once.
    ///
    /// # Errors
    /// [`Error::ProducerClosed`] when the timeout passed with records unsettled.
    pub async fn close(&self, timeout: Duration) -> Result<()> {
        self.shared.close(timeout).await
    }

    /// Records accepted and not yet settled.
    pub fn pending(&self) -> usize {
        self.shared.outstanding.load(Ordering::SeqCst)
    }

    /// What this producer has counted so far: the buffer's fill, requests, batches, records
    /// and bytes sent (hence mean batch size and records per request), retries, acknowledged
    /// and failed records. Counted per request and per batch, never per record; the
    /// connections' own counters are [`Client::stats`]. With the `metrics` feature the same
    /// counts go to the `metrics` recorder (names in [`ProducerStats`]).
    pub fn stats(&self) -> ProducerStats {
        self.shared.stats()
    }
}
