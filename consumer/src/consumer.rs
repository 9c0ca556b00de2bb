//! [`Consumer`]: the one consumer type most applications need, built with
//! [`Consumer::builder`]. In a group (`subscribe`) it is a [`GroupConsumer`]; with `assign` it
//! reads the given partitions, starting from the group's committed offsets when a group id is
//! set (and committing under it, without membership), else by `auto_offset_reset`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use futures_core::Stream;
use kafkawire_client::{Admin, Client, Error, GroupMembership, OffsetToCommit, Result};

use tracing::Instrument;

use crate::stats::{GroupOp, group_span, record_error};
use crate::{
    ConsumerConfig, ConsumerStats, GroupConfig, GroupConsumer, IsolationLevel, OffsetReset,
    PartitionConsumer, RebalanceListener, Records, StartOffset,
};

/// The longest duration a group or fetch setting of [`ConsumerBuilder`] takes: `i32::MAX`
/// milliseconds (about 24.8 days), the most the protocol's int32 millisecond fields carry.
/// Longer ones (up to `Duration::MAX`) saturate to it.
pub const MAX_GROUP_DURATION: Duration = Duration::from_millis(i32::MAX as u64);

/// Settings of a [`Consumer`]; see [`Consumer::builder`]. Defaults are the Java client's
/// (Kafka 3.x), except where a setting says otherwise.
pub struct ConsumerBuilder {
    client: Client,
    group: GroupConfig,
    group_set: bool,
    topics: Vec<String>,
    partitions: Vec<(String, i32)>,
    listener: Option<Box<dyn RebalanceListener>>,
}

impl std::fmt::Debug for ConsumerBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerBuilder")
            .field("group", &self.group)
            .field("topics", &self.topics)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

impl ConsumerBuilder {
    /// The group id: needed to `subscribe`, and with `assign` it is the id committed offsets
    /// are read from and written to.
    pub fn group_id(mut self, group_id: &str) -> Self {
        self.group.group_id = group_id.to_owned();
        self.group_set = true;
        self
    }

    /// Joins the group and reads the partitions its assignor gives this member.
    pub fn subscribe<I, S>(mut self, topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.topics = topics.into_iter().map(Into::into).collect();
        self
    }

    /// Reads exactly these `(topic, partition)`s, without group membership.
    pub fn assign<I, S>(mut self, partitions: I) -> Self
    where
        I: IntoIterator<Item = (S, i32)>,
        S: Into<String>,
    {
        self.partitions = partitions.into_iter().map(|(t, p)| (t.into(), p)).collect();
        self
    }

    /// Where to start a partition with no committed offset, and what to do when a position
    /// is out of range (default latest). Resets are reported by [`Records::resets`].
    pub fn auto_offset_reset(mut self, reset: OffsetReset) -> Self {
        self.group.auto_offset_reset = reset;
        self
    }

    /// Commit what `poll` returned every `auto_commit_interval`, before a revocation and on
    /// close (default true).
    pub fn enable_auto_commit(mut self, on: bool) -> Self {
        self.group.enable_auto_commit = on;
        self
    }

    /// Auto commit period (default 5 s). Any duration is accepted: `Duration::MAX` commits
    /// only before a revocation and on close.
    pub fn auto_commit_interval(mut self, every: Duration) -> Self {
        self.group.auto_commit_interval = every;
        self
    }

    /// Session timeout: the coordinator removes a member that sends no heartbeat for this
    /// long (default 45 s; the broker bounds it by `group.min/max.session.timeout.ms`).
    /// Saturates at [`MAX_GROUP_DURATION`], the most the protocol carries.
    pub fn session_timeout(mut self, timeout: Duration) -> Self {
        self.group.session_timeout = timeout.min(MAX_GROUP_DURATION);
        self
    }

    /// Heartbeat period (default 3 s), sent from a background task whatever the application
    /// does between polls. Saturates at [`MAX_GROUP_DURATION`].
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.group.heartbeat_interval = every.min(MAX_GROUP_DURATION);
        self
    }

    /// A member that does not poll for this long leaves the group, and the next poll reports
    /// it (default 5 min). Also the rebalance timeout (KIP-62). Saturates at
    /// [`MAX_GROUP_DURATION`], the most the protocol carries.
    pub fn max_poll_interval(mut self, interval: Duration) -> Self {
        self.group.max_poll_interval = interval.min(MAX_GROUP_DURATION);
        self
    }

    /// Assignor names in order of preference: `range`, `roundrobin`, `sticky`,
    /// `cooperative-sticky` (default `range`, `cooperative-sticky`). With only cooperative
    /// ones, rebalances are incremental (KIP-429).
    pub fn partition_assignment_strategy<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.group.partition_assignment_strategy = names.into_iter().map(Into::into).collect();
        self
    }

    /// Static membership id (KIP-345): a restart within the session timeout keeps the
    /// assignment, and `close` does not leave the group.
    pub fn group_instance_id(mut self, id: &str) -> Self {
        self.group.group_instance_id = Some(id.to_owned());
        self
    }

    /// read_uncommitted (default) or read_committed (KIP-98).
    pub fn isolation_level(mut self, level: IsolationLevel) -> Self {
        self.group.fetch.isolation_level = level;
        self
    }

    /// Bytes the broker should gather before answering a fetch (default 1).
    pub fn fetch_min_bytes(mut self, bytes: i32) -> Self {
        self.group.fetch.fetch_min_bytes = bytes;
        self
    }

    /// Most bytes in one fetch response (default 50 MiB).
    pub fn fetch_max_bytes(mut self, bytes: i32) -> Self {
        self.group.fetch.fetch_max_bytes = bytes;
        self
    }

    /// Most bytes per partition in one fetch response (default 1 MiB; a larger first batch
    /// still comes whole, KIP-74).
    pub fn max_partition_fetch_bytes(mut self, bytes: i32) -> Self {
        self.group.fetch.max_partition_fetch_bytes = bytes;
        self
    }

    /// Longest time the broker holds a fetch waiting for `fetch_min_bytes` (default 500 ms).
    /// Saturates at [`MAX_GROUP_DURATION`] (the request carries it as int32 milliseconds).
    pub fn fetch_max_wait(mut self, wait: Duration) -> Self {
        self.group.fetch.fetch_max_wait = wait.min(MAX_GROUP_DURATION);
        self
    }

    /// The decompression budget: most bytes of decompressed records the consumer holds at
    /// once (default max(4 x `fetch_max_bytes`, 64 MiB), i.e. 200 MiB with the default
    /// `fetch_max_bytes`). A batch larger than the whole budget is an
    /// [`Error::CorruptRecord`] naming the partition, offset and sizes; see
    /// [`ConsumerConfig::max_decompressed_bytes`].
    pub fn max_decompressed_bytes(mut self, bytes: usize) -> Self {
        self.group.fetch.max_decompressed_bytes = Some(bytes);
        self
    }

    /// Most records one poll returns (default 500).
    pub fn max_poll_records(mut self, n: usize) -> Self {
        self.group.fetch.max_poll_records = n;
        self
    }

    /// Verify batch CRCs (default true).
    pub fn check_crcs(mut self, on: bool) -> Self {
        self.group.fetch.check_crcs = on;
        self
    }

    /// Called around rebalances (group mode only).
    pub fn rebalance_listener(mut self, listener: impl RebalanceListener + 'static) -> Self {
        self.listener = Some(Box::new(listener));
        self
    }

    /// Builds the consumer. With `subscribe`, nothing is sent until the first poll; with
    /// `assign`, the start offsets are resolved now.
    ///
    /// # Errors
    /// [`Error::Config`] when neither or both of `subscribe` and `assign` were given,
    /// `subscribe` without a group id, `max_poll_records` of 0, a decompression budget of 0,
    /// an unknown assignor, or an
    /// assigned partition with no committed offset while `auto_offset_reset` is none;
    /// metadata, OffsetFetch and ListOffsets errors resolving assigned start offsets.
    pub async fn build(self) -> Result<Consumer> {
        if self.group.fetch.max_poll_records == 0 {
            return Err(Error::Config("max_poll_records must be at least 1".into()));
        }
        if self.group.fetch.max_decompressed_bytes == Some(0) {
            return Err(Error::Config(
                "max_decompressed_bytes must be at least 1 (no compressed batch could be read)"
                    .into(),
            ));
        }

        match (self.topics.is_empty(), self.partitions.is_empty()) {
            (false, false) => Err(Error::Config(
                "a consumer either subscribes to topics or is assigned partitions, not both".into(),
            )),
            (true, true) => Err(Error::Config(
                "a consumer needs topics to subscribe to or partitions to assign".into(),
            )),
            (false, true) => {
                if !self.group_set {
                    return Err(Error::Config("subscribe needs a group id".into()));
                }
                let topics: Vec<&str> = self.topics.iter().map(String::as_str).collect();
                let mut group = GroupConsumer::subscribe(&self.client, self.group, &topics)?;
                if let Some(l) = self.listener {
                    group.set_boxed_listener(l);
                }
                Ok(Consumer {
                    inner: Inner::Group(group),
                })
            }
            (true, false) => self.build_assigned().await,
        }
    }

    async fn build_assigned(self) -> Result<Consumer> {
        let group = self.group_set.then(|| self.group.group_id.clone());
        let fetch = ConsumerConfig {
            offset_reset: self.group.auto_offset_reset,
            ..self.group.fetch.clone()
        };
        let mut consumer = PartitionConsumer::new(&self.client, fetch);
        if let Some(g) = &group {
            consumer.set_group(g);
        }
        let committed = match &group {
            Some(g) => {
                Admin::new(&self.client)
                    .committed_offsets(g, Some(&self.partitions))
                    .await?
            }
            None => BTreeMap::new(),
        };
        for (t, p) in &self.partitions {
            let start = crate::start_offset(
                committed.get(&(t.clone(), *p)).copied(),
                self.group.auto_offset_reset,
                t,
                *p,
                group.as_deref(),
            )?;
            consumer.assign(t, *p, start).await?;
        }
        Ok(Consumer {
            inner: Inner::Assigned(Assigned {
                admin: Admin::new(&self.client),
                consumer,
                group,
                auto_commit: self.group.enable_auto_commit,
                auto_commit_interval: self.group.auto_commit_interval,
                last_commit: Instant::now(),
            }),
        })
    }
}

/// A Kafka consumer: a group member (`subscribe`) or a reader of assigned partitions
/// (`assign`), with one API for both.
///
/// ```no_run
/// # async fn demo(client: &kafkawire_client::Client) -> Result<(), kafkawire_client::Error> {
/// use std::time::Duration;
/// use kafkawire_consumer::{Consumer, OffsetReset};
/// let mut consumer = Consumer::builder(client)
///     .group_id("billing")
///     .subscribe(["orders"])
///     .auto_offset_reset(OffsetReset::Earliest)
///     .enable_auto_commit(false)
///     .build()
///     .await?;
/// loop {
///     let records = consumer.poll(Duration::from_secs(1)).await?;
///     for reset in records.resets() {
///         eprintln!("{}-{}: {} offsets skipped", reset.topic, reset.partition, reset.skipped());
///     }
///     for record in &records {
///         let record = record?;
///         // ... process ...
///         let _ = (record.topic(), record.partition(), record.offset(), record.value());
///     }
///     consumer.commit().await?; // at-least-once: commit after processing
/// }
/// # }
/// ```
#[derive(Debug)]
pub struct Consumer {
    inner: Inner,
}

// One consumer lives as long as the application; the sizes do not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
enum Inner {
    Group(GroupConsumer),
    Assigned(Assigned),
}

#[derive(Debug)]
struct Assigned {
    admin: Admin,
    consumer: PartitionConsumer,
    group: Option<String>,
    auto_commit: bool,
    auto_commit_interval: Duration,
    last_commit: Instant,
}

impl Assigned {
    fn group(&self) -> Result<&str> {
        self.group.as_deref().ok_or_else(|| {
            Error::Config("committing offsets needs a group id (ConsumerBuilder::group_id)".into())
        })
    }
}

impl Consumer {
    /// Starts building a consumer on `client`.
    pub fn builder(client: &Client) -> ConsumerBuilder {
        ConsumerBuilder {
            client: client.clone(),
            group: GroupConfig::new(""),
            group_set: false,
            topics: Vec::new(),
            partitions: Vec::new(),
            listener: None,
        }
    }

    /// Waits for records: returns as soon as a fetch brings records (at most
    /// `max_poll_records`) or a reset to report, or an empty [`Records`] once `timeout` has
    /// passed. The timeout is checked between fetches: a fetch in progress (at most
    /// `fetch_max_wait`) or a rebalance is finished first, never cut short, so nothing
    /// fetched is lost. In a group, this is also where the member joins, rebalances and auto
    /// commits. A timeout too long to add to the clock (`Duration::MAX`) means no deadline:
    /// the poll returns with records, a reset report or an error.
    ///
    /// # Errors
    /// As [`GroupConsumer::poll`] and [`PartitionConsumer::poll`]: fatal membership errors,
    /// leaving the group for polling too slowly (reported once), OFFSET_OUT_OF_RANGE with
    /// reset none, corrupt records, non-retriable broker errors naming the partition.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Records> {
        // `None`: no deadline (the timeout does not fit the clock, e.g. `Duration::MAX`).
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let fetched = match &mut self.inner {
                Inner::Group(g) => g.poll().await?,
                Inner::Assigned(a) => {
                    if a.auto_commit
                        && a.group.is_some()
                        && a.last_commit.elapsed() >= a.auto_commit_interval
                        && let Err(e) = Self::commit_assigned(a).await
                    {
                        tracing::warn!(error = %e, "auto commit failed");
                    }
                    a.consumer.poll().await?
                }
            };
            let records = Records::new(fetched);
            if !records.is_empty()
                || !records.resets().is_empty()
                || deadline.is_some_and(|d| Instant::now() >= d)
            {
                return Ok(records);
            }
        }
    }

    /// The records as a [`Stream`] of polls, each non-empty (or carrying a reset report).
    /// Errors are yielded, not ending the stream: stop on those that are not retriable.
    ///
    /// ```no_run
    /// # async fn demo(mut consumer: kafkawire_consumer::Consumer) -> Result<(), kafkawire_client::Error> {
    /// use futures_util::StreamExt;
    /// let mut polls = std::pin::pin!(consumer.stream());
    /// while let Some(records) = polls.next().await {
    ///     for record in &records? {
    ///         println!("{:?}", record?.value());
    ///     }
    /// }
    /// # Ok(()) }
    /// ```
    pub fn stream(&mut self) -> impl Stream<Item = Result<Records>> + '_ {
        futures_util::stream::unfold(self, |consumer| async move {
            loop {
                match consumer.poll(Duration::from_secs(3600)).await {
                    Ok(r) if r.is_empty() && r.resets().is_empty() => continue,
                    other => return Some((other, consumer)),
                }
            }
        })
    }

    /// The positions (next offset to return) of every assigned partition: what
    /// [`Consumer::commit`] commits.
    fn positions(&self) -> Vec<OffsetToCommit> {
        self.assignment()
            .into_iter()
            .filter_map(|(topic, partition)| {
                let offset = self.position(&topic, partition)?;
                Some(OffsetToCommit::new(topic, partition, offset))
            })
            .collect()
    }

    async fn commit_assigned(a: &mut Assigned) -> Result<()> {
        let offsets: Vec<OffsetToCommit> = a
            .consumer
            .assignment()
            .iter()
            .map(|((topic, partition), s)| OffsetToCommit::new(topic, *partition, s.position))
            .collect();
        a.last_commit = Instant::now();
        let group = a.group()?;
        let span = group_span(GroupOp::Commit, group);
        let r = a
            .admin
            .commit_offsets(group, &GroupMembership::none(), &offsets)
            .instrument(span.clone())
            .await;
        record_error(&span, &r);
        r
    }

    /// Commits, for every assigned partition, the position after the records `poll` has
    /// returned: call it after processing them (at-least-once).
    ///
    /// # Errors
    /// OffsetCommit errors (in a group, REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION and
    /// UNKNOWN_MEMBER_ID also make the next poll rejoin); [`Error::Config`] for an assigned
    /// consumer without a group id.
    pub async fn commit(&mut self) -> Result<()> {
        match &mut self.inner {
            Inner::Assigned(a) => Self::commit_assigned(a).await,
            Inner::Group(_) => {
                let offsets = self.positions();
                self.commit_offsets(&offsets).await
            }
        }
    }

    /// Commits the given offsets (each the next offset to read: last processed + 1).
    ///
    /// # Errors
    /// As [`Consumer::commit`].
    pub async fn commit_offsets(&mut self, offsets: &[OffsetToCommit]) -> Result<()> {
        match &mut self.inner {
            Inner::Group(g) => g.commit_offsets(offsets).await,
            Inner::Assigned(a) => {
                let group = a.group()?;
                a.admin
                    .commit_offsets(group, &GroupMembership::none(), offsets)
                    .await
            }
        }
    }

    /// Starts a commit of what [`Consumer::commit`] would commit and returns at once; the
    /// result goes to `callback`.
    pub fn commit_async(&mut self, callback: impl FnOnce(Result<()>) + Send + 'static) {
        let offsets = self.positions();
        match &mut self.inner {
            Inner::Group(g) => g.commit_offsets_async(offsets, callback),
            Inner::Assigned(a) => match a.group.clone() {
                None => callback(a.group().map(|_| ())),
                Some(group) => {
                    let admin = a.admin.clone();
                    a.last_commit = Instant::now();
                    tokio::spawn(async move {
                        callback(
                            admin
                                .commit_offsets(&group, &GroupMembership::none(), &offsets)
                                .await,
                        );
                    });
                }
            },
        }
    }

    /// Moves the position of an assigned partition; the next poll reads from there.
    ///
    /// # Errors
    /// [`Error::Config`] if the partition is not assigned; ListOffsets errors.
    pub async fn seek(&mut self, topic: &str, partition: i32, to: StartOffset) -> Result<()> {
        match &mut self.inner {
            Inner::Group(g) => g.seek(topic, partition, to).await,
            Inner::Assigned(a) => a.consumer.seek(topic, partition, to).await,
        }
    }

    /// The position (offset of the next record `poll` returns) of an assigned partition.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        match &self.inner {
            Inner::Group(g) => g.position(topic, partition),
            Inner::Assigned(a) => a.consumer.position(topic, partition),
        }
    }

    /// The committed offsets of `partitions` (OffsetFetch).
    ///
    /// # Errors
    /// OffsetFetch errors; [`Error::Config`] for an assigned consumer without a group id.
    pub async fn committed(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>> {
        match &self.inner {
            Inner::Group(g) => g.committed(partitions).await,
            Inner::Assigned(a) => {
                a.admin
                    .committed_offsets(a.group()?, Some(partitions))
                    .await
            }
        }
    }

    /// Stops fetching a partition until [`Consumer::resume`] (a group member keeps
    /// heartbeating).
    pub fn pause(&mut self, topic: &str, partition: i32) {
        match &mut self.inner {
            Inner::Group(g) => g.pause(topic, partition),
            Inner::Assigned(a) => a.consumer.pause(topic, partition),
        }
    }

    /// Fetches a paused partition again.
    pub fn resume(&mut self, topic: &str, partition: i32) {
        match &mut self.inner {
            Inner::Group(g) => g.resume(topic, partition),
            Inner::Assigned(a) => a.consumer.resume(topic, partition),
        }
    }

    /// The partitions this consumer reads now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        match &self.inner {
            Inner::Group(g) => g.assignment(),
            Inner::Assigned(a) => a.consumer.assignment().keys().cloned().collect(),
        }
    }

    /// What this consumer has counted, and where each assigned partition stands: position,
    /// high watermark and lag per partition, Fetch requests and their latency, records
    /// returned, rebalances and the time spent in them. No request is sent; the counters move
    /// once per Fetch request, per poll and per rebalance, never per record. The connections'
    /// own counters are [`Client::stats`]; with the `metrics` feature the same counts go to
    /// the `metrics` recorder (names in [`ConsumerStats`]).
    pub fn stats(&self) -> ConsumerStats {
        match &self.inner {
            Inner::Group(g) => g.stats(),
            Inner::Assigned(a) => a.consumer.stats(),
        }
    }

    /// The lag of each assigned partition whose high watermark a fetch has reported: the
    /// records between its position and the high watermark (the last stable offset with
    /// read_committed) as of the last fetch, so 0 once a poll has returned everything up to
    /// the end of the log. Partitions not fetched yet are left out.
    pub fn lag(&self) -> BTreeMap<(String, i32), i64> {
        match &self.inner {
            Inner::Group(g) => g.lag(),
            Inner::Assigned(a) => a.consumer.lag(),
        }
    }

    /// The group member, when subscribed (for its membership, `store_offset`, and the rest
    /// of the group API).
    pub fn group_consumer(&mut self) -> Option<&mut GroupConsumer> {
        match &mut self.inner {
            Inner::Group(g) => Some(g),
            Inner::Assigned(_) => None,
        }
    }

    /// Commits when auto commit is on, then leaves the group (unless static membership).
    ///
    /// # Errors
    /// The commit's or LeaveGroup's error; the consumer is stopped either way.
    pub async fn close(self) -> Result<()> {
        match self.inner {
            Inner::Group(g) => g.close().await,
            Inner::Assigned(mut a) if a.auto_commit && a.group.is_some() => {
                Self::commit_assigned(&mut a).await
            }
            Inner::Assigned(_) => Ok(()),
        }
    }
}
