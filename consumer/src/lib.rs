//! The kafkawire consumer.
//!
//! - [`Consumer`], built with [`Consumer::builder`], is what most applications need: a member
//!   of a consumer group (`subscribe`) or a reader of given partitions (`assign`), with
//!   `poll(timeout)` returning [`Records`], a `Stream` adaptor, commits, seek, pause and
//!   resume, and out-of-range resets reported as [`ResetReport`]s.
//! - [`GroupConsumer`] is the group member underneath (join/sync, heartbeats, rebalances,
//!   auto commit, `store_offset` for record-by-record commits), and [`PartitionConsumer`] the
//!   fetcher of assigned partitions (one Fetch per leader, the next one prefetched while the
//!   application works, `max_poll_records`); [`OffsetManager`] stores offsets for it under a
//!   group id without membership.
//! - [`assignor`] holds the partition assignors and the consumer-protocol encoding.
//!
//! Records are borrowed views into the fetched buffers: nothing is copied until the
//! application asks for owned bytes.
//!
//! ```no_run
//! # async fn demo() -> Result<(), kafkawire_client::Error> {
//! use kafkawire_client::{Client, ClientConfig};
//! use kafkawire_consumer::{ConsumerConfig, PartitionConsumer, StartOffset};
//! let client = Client::connect(ClientConfig::new("127.0.0.1:9092")).await?;
//! let mut consumer = PartitionConsumer::new(&client, ConsumerConfig::default());
//! consumer.assign("orders", 0, StartOffset::Earliest).await?;
//! loop {
//!     let fetched = consumer.poll().await?;
//!     for part in &fetched.partitions {
//!         for record in part.records() {
//!             let record = record?; // Error::CorruptRecord names the partition
//!             println!("{}-{} @{}: {:?}", part.topic, part.partition, record.offset(), record.value());
//!         }
//!     }
//! }
//! # }
//! ```
#![warn(missing_docs)]

pub mod assignor;
mod buffer;
mod consumer;
mod fetch;
mod group;
mod offsets;
mod records;
mod stats;

pub use consumer::{Consumer, ConsumerBuilder, MAX_GROUP_DURATION};
pub use fetch::{Fetched, FetchedPartition, OffsetReset};
pub use group::{GroupConfig, GroupConsumer, RebalanceListener};
pub use offsets::OffsetManager;
pub use records::{ConsumerRecord, Records, ResetReport};
pub use stats::{ConsumerStats, PartitionStats};

use std::collections::BTreeMap;
use std::time::Duration;

use kafkawire_client::{Admin, Client, Error, Result, offset_spec};
use kafkawire_protocol::messages::ApiKey;

/// Where to start reading a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOffset {
    /// The log start offset (oldest record still kept).
    Earliest,
    /// The end of the log (only records written from now on).
    Latest,
    /// An exact offset.
    Offset(i64),
    /// The earliest offset whose record timestamp is at or after this time, in milliseconds
    /// since the Unix epoch (UTC), as the partition leader's ListOffsets answers it for this
    /// timestamp (protocol guide, ListOffsets; KIP-79, which needs ListOffsets v1+, Kafka
    /// 0.10.1+). Brokers compare against the timestamps they index: the record's CreateTime,
    /// or the append time on topics with `message.timestamp.type=LogAppendTime`.
    ///
    /// When no record is that recent, the position is the end of the log (as
    /// [`StartOffset::Latest`]): only records written from then on are read. This is what the
    /// Java consumer's users do when `offsetsForTimes` answers null (seek to the end), and what
    /// `kafka-consumer-groups --reset-offsets --to-datetime` does. A negative timestamp is an
    /// [`Error::Config`] (negative values are ListOffsets' special requests, not times). Use
    /// [`PartitionConsumer::offset_for_timestamp`] to tell the two cases apart.
    Timestamp(i64),
}

/// Parses `earliest` (or `beginning`), `latest` (or `end`), an offset `N >= 0`, or `@MS`, a
/// [`StartOffset::Timestamp`] in milliseconds since the Unix epoch.
///
/// # Errors
/// [`Error::Config`] quoting the text for anything else (a negative offset or timestamp
/// included).
impl std::str::FromStr for StartOffset {
    type Err = Error;
    fn from_str(s: &str) -> Result<StartOffset> {
        match s {
            "earliest" | "beginning" => Ok(StartOffset::Earliest),
            "latest" | "end" => Ok(StartOffset::Latest),
            t if t.starts_with('@') => t[1..]
                .parse::<i64>()
                .ok()
                .filter(|ms| *ms >= 0)
                .map(StartOffset::Timestamp)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "a start timestamp must be @ and milliseconds since the Unix epoch (>= 0), e.g. @1700000000000, not {t:?}"
                    ))
                }),
            n => n
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .map(StartOffset::Offset)
                .ok_or_else(|| {
                    Error::Config(format!(
                        "offset must be earliest, latest, a number >= 0 or @TIMESTAMP_MS, not {n:?}"
                    ))
                }),
        }
    }
}

/// Where a partition starts reading: its committed offset, else by the reset policy.
///
/// # Errors
/// [`Error::Config`] naming the partition (and group) when there is no committed offset and
/// the policy is [`OffsetReset::None`].
pub(crate) fn start_offset(
    committed: Option<i64>,
    reset: OffsetReset,
    topic: &str,
    partition: i32,
    group: Option<&str>,
) -> Result<StartOffset> {
    match (committed, reset) {
        (Some(o), _) => Ok(StartOffset::Offset(o)),
        (None, OffsetReset::Earliest) => Ok(StartOffset::Earliest),
        (None, OffsetReset::Latest) => Ok(StartOffset::Latest),
        (None, OffsetReset::None) => Err(Error::Config(format!(
            "{topic}-{partition} has no committed offset{} and auto_offset_reset is none",
            group.map(|g| format!(" for group {g}")).unwrap_or_default()
        ))),
    }
}

/// Which records a fetch may see (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IsolationLevel {
    /// Everything up to the high watermark, including records of open or aborted transactions.
    #[default]
    ReadUncommitted,
    /// Only records of committed transactions, and nothing at or past the last stable offset:
    /// batches of aborted transactions are dropped using the fetch response's list of aborted
    /// transactions (KIP-98).
    ReadCommitted,
}

/// Consumer settings. Defaults follow the Java client.
#[derive(Debug, Clone)]
pub struct ConsumerConfig {
    /// Longest time the broker may hold a fetch waiting for `fetch_min_bytes` (default 500 ms).
    pub fetch_max_wait: Duration,
    /// Bytes the broker should gather before answering (default 1).
    pub fetch_min_bytes: i32,
    /// Most bytes in one fetch response (default 50 MiB).
    pub fetch_max_bytes: i32,
    /// Most bytes per partition in one fetch response (default 1 MiB). The broker still returns
    /// one whole batch if the first one is larger (KIP-74).
    pub max_partition_fetch_bytes: i32,
    /// Isolation level (default read_uncommitted).
    pub isolation_level: IsolationLevel,
    /// What to do when the position is out of range (default: earliest, and report it).
    pub offset_reset: OffsetReset,
    /// Verify batch CRCs (default true).
    pub check_crcs: bool,
    /// Most records one poll returns (default 500, as the Java client). The rest of a fetch
    /// stays buffered for the next polls; control records are not counted. At least 1.
    pub max_poll_records: usize,
    /// The decompression budget: most bytes of decompressed records the consumer holds at once
    /// (what it has buffered plus what the fetches in flight decode). `None` (the default)
    /// derives it from `fetch_max_bytes`; see [`ConsumerConfig::decompression_budget`].
    ///
    /// Each compressed batch is decompressed with what is left of the budget as its limit, so
    /// no answer, however crafted (many small batches that each inflate a thousandfold), makes
    /// the consumer decompress more than this. When the budget runs out part-way through an
    /// answer, the batches decoded so far are returned and the rest is fetched again once the
    /// buffered records have been handed out: nothing is skipped. A batch that does not fit
    /// even in the whole budget is an [`Error::CorruptRecord`] naming the partition, the
    /// batch's offset, its size and the budget; the consumer does not move past it by itself
    /// (raise the budget, or seek past the batch).
    pub max_decompressed_bytes: Option<usize>,
}

/// Smallest derived decompression budget: the per-batch limit the protocol decoder has by
/// default (64 MiB), so that any batch it would decode, a consumer decodes.
pub const MIN_DECOMPRESSION_BUDGET: usize =
    kafkawire_protocol::records::DEFAULT_MAX_DECOMPRESSED_SIZE;

impl ConsumerConfig {
    /// The decompression budget in effect: `max_decompressed_bytes` if set, else
    /// max(4 x `fetch_max_bytes`, 64 MiB) (200 MiB with the default `fetch_max_bytes` of
    /// 50 MiB). See [`ConsumerConfig::max_decompressed_bytes`].
    pub fn decompression_budget(&self) -> usize {
        self.max_decompressed_bytes.unwrap_or_else(|| {
            usize::try_from(self.fetch_max_bytes)
                .unwrap_or(0)
                .saturating_mul(4)
                .max(MIN_DECOMPRESSION_BUDGET)
        })
    }

    /// The largest record batch a fetch may grow to for one partition: max(`fetch_max_bytes`,
    /// `max_partition_fetch_bytes`). A batch the broker cuts short at the per-partition limit
    /// (brokers before KIP-74, or a proxy) is fetched again with a limit raised to its size, up
    /// to this; a larger batch is an error naming the partition, offset and sizes.
    pub fn max_batch_fetch_bytes(&self) -> i32 {
        self.fetch_max_bytes
            .max(self.max_partition_fetch_bytes)
            .max(1)
    }
}

impl Default for ConsumerConfig {
    fn default() -> Self {
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(500),
            fetch_min_bytes: 1,
            fetch_max_bytes: 50 * 1024 * 1024,
            max_partition_fetch_bytes: 1024 * 1024,
            isolation_level: IsolationLevel::ReadUncommitted,
            offset_reset: OffsetReset::Earliest,
            check_crcs: true,
            max_poll_records: 500,
            max_decompressed_bytes: None,
        }
    }
}

/// The state of one assigned partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// Offset of the next record a poll returns (records fetched ahead of it wait in the
    /// consumer's buffer).
    pub position: i64,
    /// High watermark from the last fetch (-1 before the first).
    pub high_watermark: i64,
    /// Last stable offset from the last fetch (-1 if the broker did not send one).
    pub last_stable_offset: i64,
    /// Log start offset from the last fetch (-1 if the broker did not send one).
    pub log_start_offset: i64,
    /// Leader epoch of the partition when last seen in metadata (-1 if unknown).
    pub leader_epoch: i32,
}

/// A consumer of explicitly assigned partitions.
#[derive(Debug)]
pub struct PartitionConsumer {
    client: Client,
    config: ConsumerConfig,
    assigned: BTreeMap<(String, i32), PartitionState>,
    /// An error met after some data had already been fetched in the same poll: that data is
    /// returned first, and this error by the next poll.
    pending_error: Option<Error>,
    /// Partitions not fetched until resumed.
    paused: std::collections::BTreeSet<(String, i32)>,
    /// Fetched data not yet returned by a poll, in fetch order; at most one entry per
    /// partition.
    buffer: std::collections::VecDeque<FetchedPartition>,
    /// The fetch requests in flight (at most one round: one request per leader).
    in_flight: tokio::task::JoinSet<fetch::RoundResult>,
    /// Whether the round in flight lets the broker wait for data (`fetch_max_wait`).
    round_waits: bool,
    /// The metadata refresh started after a failed fetch, while it runs (a poll waits for it
    /// only briefly; see `fetch::refresh_assigned`).
    refreshing: Option<tokio::task::JoinHandle<()>>,
    /// Partitions whose next fetch asks for more than `max_partition_fetch_bytes`: their
    /// first batch came cut short at that limit (see `fetch::grow_fetch_size`).
    fetch_sizes: std::collections::HashMap<(String, i32), fetch::FetchSize>,
    /// A partition whose first batch did not fit in what the decompression budget had left:
    /// it is fetched next, alone, once nothing decompressed is buffered.
    budget_wait: Option<(String, i32)>,
    /// Fetch counters, records returned, the spans of the round in flight.
    stats: stats::ConsumerCounters,
}

impl PartitionConsumer {
    /// A consumer with nothing assigned yet.
    pub fn new(client: &Client, config: ConsumerConfig) -> PartitionConsumer {
        PartitionConsumer {
            client: client.clone(),
            config,
            assigned: BTreeMap::new(),
            pending_error: None,
            paused: std::collections::BTreeSet::new(),
            buffer: std::collections::VecDeque::new(),
            in_flight: tokio::task::JoinSet::new(),
            round_waits: true,
            refreshing: None,
            fetch_sizes: std::collections::HashMap::new(),
            budget_wait: None,
            stats: stats::ConsumerCounters::default(),
        }
    }

    /// The consumer group whose member (or committer) this consumer is: named in its fetch
    /// spans.
    pub(crate) fn set_group(&mut self, group: &str) {
        self.stats.group = Some(group.into());
    }

    /// What this consumer has counted, and where each assigned partition stands: position,
    /// high watermark, lag. Reads plain fields and a few atomics (no request is sent); the
    /// counters move once per Fetch request and per poll, never per record. With the
    /// `metrics` feature the same counts go to the `metrics` recorder (names in
    /// [`ConsumerStats`]).
    pub fn stats(&self) -> ConsumerStats {
        self.stats
            .snapshot(self.assigned.iter(), self.config.isolation_level)
    }

    /// The lag of each assigned partition whose high watermark a fetch has reported: records
    /// between the position and the high watermark (the last stable offset with
    /// read_committed), as of the last fetch. 0 once everything fetched was returned.
    pub fn lag(&self) -> BTreeMap<(String, i32), i64> {
        self.assigned
            .iter()
            .filter_map(|(k, s)| Some((k.clone(), stats::lag(s, self.config.isolation_level)?)))
            .collect()
    }

    /// The settings in use.
    pub fn config(&self) -> &ConsumerConfig {
        &self.config
    }

    /// Assigns `topic`/`partition` starting at `start`.
    ///
    /// # Errors
    /// Metadata errors for an unknown topic or partition, ListOffsets errors resolving
    /// `Earliest`/`Latest`/`Timestamp`, and [`Error::Config`] for a negative
    /// [`StartOffset::Timestamp`].
    pub async fn assign(&mut self, topic: &str, partition: i32, start: StartOffset) -> Result<()> {
        let meta = self.client.topic_metadata(topic).await?;
        let Some(p) = meta.partitions.iter().find(|p| p.partition == partition) else {
            return Err(Error::broker_error(
                kafkawire_protocol::ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                kafkawire_protocol::messages::ApiKey::Metadata,
                None,
                Some(topic),
                Some(partition),
                Some(format!(
                    "the topic has {} partitions",
                    meta.partitions.len()
                )),
            ));
        };
        let leader_epoch = p.leader_epoch;
        let position = self.resolve(topic, partition, start).await?;
        self.drop_buffered(topic, partition);
        self.assigned.insert(
            (topic.to_owned(), partition),
            PartitionState {
                position,
                high_watermark: -1,
                last_stable_offset: -1,
                log_start_offset: -1,
                leader_epoch,
            },
        );
        Ok(())
    }

    /// Assigns every partition of `topic`, each starting at `start`. Returns the partitions.
    ///
    /// # Errors
    /// As [`PartitionConsumer::assign`].
    pub async fn assign_topic(&mut self, topic: &str, start: StartOffset) -> Result<Vec<i32>> {
        let meta = self.client.topic_metadata(topic).await?;
        let parts: Vec<i32> = meta.partitions.iter().map(|p| p.partition).collect();
        for p in &parts {
            self.assign(topic, *p, start).await?;
        }
        Ok(parts)
    }

    /// Stops reading a partition.
    pub fn unassign(&mut self, topic: &str, partition: i32) {
        self.assigned.remove(&(topic.to_owned(), partition));
        self.drop_buffered(topic, partition);
    }

    /// Forgets data fetched ahead for a partition (its position is unchanged, so it is
    /// fetched again if still wanted).
    fn drop_buffered(&mut self, topic: &str, partition: i32) {
        self.buffer
            .retain(|p| !(p.topic == topic && p.partition == partition));
        let key = (topic.to_owned(), partition);
        self.fetch_sizes.remove(&key);
        if self.budget_wait.as_ref() == Some(&key) {
            self.budget_wait = None;
        }
    }

    /// The assigned partitions and their state.
    pub fn assignment(&self) -> &BTreeMap<(String, i32), PartitionState> {
        &self.assigned
    }

    /// Moves the position of an assigned partition.
    ///
    /// # Errors
    /// [`Error::Config`] if the partition is not assigned; ListOffsets errors.
    pub async fn seek(&mut self, topic: &str, partition: i32, to: StartOffset) -> Result<()> {
        let position = self.resolve(topic, partition, to).await?;
        match self.assigned.get_mut(&(topic.to_owned(), partition)) {
            Some(s) => {
                s.position = position;
                self.drop_buffered(topic, partition);
                Ok(())
            }
            None => Err(Error::Config(format!(
                "{topic}-{partition} is not assigned"
            ))),
        }
    }

    /// Stops fetching a partition (its position is kept) until [`PartitionConsumer::resume`]:
    /// for back-pressure when the application cannot keep up with it. Records already
    /// fetched ahead for it are dropped and fetched again after `resume`.
    pub fn pause(&mut self, topic: &str, partition: i32) {
        self.paused.insert((topic.to_owned(), partition));
        self.drop_buffered(topic, partition);
    }

    /// Fetches a paused partition again.
    pub fn resume(&mut self, topic: &str, partition: i32) {
        self.paused.remove(&(topic.to_owned(), partition));
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<(String, i32)> {
        self.paused.iter().cloned().collect()
    }

    /// The position (next offset to read) of an assigned partition.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.assigned
            .get(&(topic.to_owned(), partition))
            .map(|s| s.position)
    }

    /// The earliest offset of `topic`/`partition` whose record timestamp is at or after
    /// `timestamp_ms` (milliseconds since the Unix epoch), asked of the partition's leader with
    /// ListOffsets (KIP-79); `None` when no record is that recent (the Java consumer's
    /// `offsetsForTimes` answers null then). The partition need not be assigned.
    ///
    /// # Errors
    /// [`Error::Config`] for a negative `timestamp_ms`; [`Error::UnsupportedVersion`] when the
    /// leader has only ListOffsets v0 (Kafka before 0.10.1, which cannot look up timestamps);
    /// metadata and ListOffsets errors (e.g. UNKNOWN_TOPIC_OR_PARTITION) naming the partition.
    pub async fn offset_for_timestamp(
        &self,
        topic: &str,
        partition: i32,
        timestamp_ms: i64,
    ) -> Result<Option<i64>> {
        if timestamp_ms < 0 {
            return Err(Error::Config(format!(
                "{topic}-{partition}: a start timestamp must be milliseconds since the Unix epoch (>= 0), not {timestamp_ms}"
            )));
        }
        // ListOffsets v0 answers with the start offsets of log segments, not of a timestamp.
        let leader = self.client.leader_for(topic, partition).await?;
        let conn = self.client.broker_connection(leader).await?;
        if conn.version_for(ApiKey::ListOffsets)? == 0 {
            return Err(Error::UnsupportedVersion {
                broker: conn.broker().to_owned(),
                api: ApiKey::ListOffsets,
                ours: (1, ApiKey::ListOffsets.versions().1),
                theirs: conn.broker_versions(ApiKey::ListOffsets),
            });
        }
        let offset = Admin::new(&self.client)
            .list_offset(topic, partition, timestamp_ms)
            .await?;
        // ListOffsets v1+ answers offset -1 (and timestamp -1) when no record is that recent.
        Ok((offset >= 0).then_some(offset))
    }

    async fn resolve(&self, topic: &str, partition: i32, start: StartOffset) -> Result<i64> {
        let admin = Admin::new(&self.client);
        match start {
            StartOffset::Offset(n) => Ok(n),
            StartOffset::Timestamp(ms) => {
                match self.offset_for_timestamp(topic, partition, ms).await? {
                    Some(offset) => Ok(offset),
                    None => {
                        admin
                            .list_offset(topic, partition, offset_spec::LATEST)
                            .await
                    }
                }
            }
            StartOffset::Earliest => {
                admin
                    .list_offset(topic, partition, offset_spec::EARLIEST)
                    .await
            }
            StartOffset::Latest => {
                admin
                    .list_offset(topic, partition, offset_spec::LATEST)
                    .await
            }
        }
    }

    /// Returns up to `max_poll_records` records: those fetched ahead by the previous poll, or,
    /// when none are buffered, the answer of one Fetch request per leader broker for every
    /// assigned partition (waiting up to `fetch_max_wait` when nothing is new). Positions move
    /// past what is returned. Before returning, the next fetch is started for the partitions
    /// with nothing buffered, so it runs while the application works (at most one request per
    /// broker in flight: memory stays bounded by the fetch-size settings).
    ///
    /// # Errors
    /// Non-retriable errors (e.g. authorization, OFFSET_OUT_OF_RANGE with
    /// [`OffsetReset::None`], [`Error::CorruptRecord`] — also for a batch that needs more than
    /// the whole decompression budget, or whose offsets overflow i64 — and MESSAGE_TOO_LARGE
    /// for a batch larger than [`ConsumerConfig::max_batch_fetch_bytes`] that the broker cut
    /// short) naming the partition. When such an
    /// error meets a poll that also fetched good records, the records are returned and the
    /// error comes with the next poll, so nothing fetched is lost; positions never move past
    /// data that failed. Retriable errors (leader moved, broker restarting) refresh metadata and
    /// are retried inside the next call, not returned.
    pub async fn poll(&mut self) -> Result<Fetched> {
        fetch::poll(self).await
    }
}
