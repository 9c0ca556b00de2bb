//! [`GroupConsumer`]: a member of a consumer group. It finds the group coordinator, joins
//! (the leader runs the assignor), heartbeats from a background task independent of how long
//! the application takes between polls, fetches its partitions from the committed offsets, and
//! commits what `poll` has returned (auto commit) or what the application says.
//!
//! Eager and cooperative (KIP-429) rebalancing: with only cooperative assignors configured, a
//! rebalance revokes just the partitions that move; otherwise every partition is revoked
//! before joining, as in the eager protocol.

mod membership;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire_client::{
    Admin, Client, ClusterMetadata, Error, GroupMembership, OffsetToCommit, Result,
};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use tracing::Instrument;

use crate::assignor::{self, MemberSubscription, RebalanceProtocol};
use crate::assignor::{
    Assignment, AssignmentByTopic, Subscription, decode_assignment_by_topic,
    decode_subscription_by_topic, encode_assignment, encode_subscription,
};
use crate::stats::{GroupCounters, GroupOp, group_span, record_error};
use crate::{ConsumerConfig, ConsumerStats, Fetched, OffsetReset, PartitionConsumer, StartOffset};
use membership::{Coordinator, Membership, SharedMembership};

/// Settings of a group member. Defaults are the Java client's (Kafka 3.x).
#[derive(Debug, Clone)]
pub struct GroupConfig {
    /// Group id.
    pub group_id: String,
    /// Static membership id (KIP-345): a restart within the session timeout keeps the
    /// assignment without a rebalance; `close` does not leave the group.
    pub group_instance_id: Option<String>,
    /// Where to start a partition with no committed offset (default latest).
    pub auto_offset_reset: OffsetReset,
    /// Commit what `poll` returned, every `auto_commit_interval`, before a revocation and on
    /// close (default true).
    pub enable_auto_commit: bool,
    /// Auto commit period (default 5 s).
    pub auto_commit_interval: Duration,
    /// The coordinator removes a member that sends no heartbeat for this long (default 45 s).
    pub session_timeout: Duration,
    /// Heartbeat period (default 3 s).
    pub heartbeat_interval: Duration,
    /// A member that does not poll for this long leaves the group itself, and the next poll
    /// reports it (default 5 min). Also the rebalance timeout.
    pub max_poll_interval: Duration,
    /// Assignors in order of preference (default `range`, `cooperative-sticky`).
    pub partition_assignment_strategy: Vec<String>,
    /// Fetch settings.
    pub fetch: ConsumerConfig,
}

impl GroupConfig {
    /// Defaults for `group_id`.
    pub fn new(group_id: &str) -> GroupConfig {
        GroupConfig {
            group_id: group_id.to_owned(),
            group_instance_id: None,
            auto_offset_reset: OffsetReset::Latest,
            enable_auto_commit: true,
            auto_commit_interval: Duration::from_secs(5),
            session_timeout: Duration::from_secs(45),
            heartbeat_interval: Duration::from_secs(3),
            max_poll_interval: Duration::from_secs(300),
            partition_assignment_strategy: vec!["range".into(), "cooperative-sticky".into()],
            fetch: ConsumerConfig::default(),
        }
    }
}

/// Called around rebalances. The consumer has already committed (with auto commit, or the
/// offsets stored with [`GroupConsumer::store_offset`]) before `on_partitions_revoked`.
pub trait RebalanceListener: Send {
    /// Partitions about to be given up (their offsets can still be committed).
    fn on_partitions_revoked(&mut self, partitions: &[(String, i32)]) {
        let _ = partitions;
    }
    /// Partitions newly assigned.
    fn on_partitions_assigned(&mut self, partitions: &[(String, i32)]) {
        let _ = partitions;
    }
    /// Partitions lost without a chance to commit (the member was removed from the group).
    fn on_partitions_lost(&mut self, partitions: &[(String, i32)]) {
        let _ = partitions;
    }
}

/// A consumer that is a member of a group. See the module docs.
pub struct GroupConsumer {
    client: Client,
    config: GroupConfig,
    topics: Vec<String>,
    state: SharedMembership,
    fetcher: PartitionConsumer,
    assigned: BTreeSet<(String, i32)>,
    /// Next offsets after the records `poll` has returned: what auto commit commits.
    consumed: BTreeMap<(String, i32), i64>,
    /// Next offsets the application stored as processed: committed before revocation even
    /// without auto commit.
    stored: BTreeMap<(String, i32), i64>,
    last_commit: Instant,
    last_poll: Arc<Mutex<Instant>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    listener: Option<Box<dyn RebalanceListener>>,
    joined: bool,
    /// A rebalance that has not succeeded yet: what was owned before it, for the next try.
    unfinished_rebalance: Option<Vec<(String, i32)>>,
    /// Join + sync rounds failed in a row.
    failed_rebalances: u32,
    /// Partition counts the last assignment was made with, of the topics whose change calls
    /// for a new one: every topic of the group for the leader, the member's own otherwise
    /// (0 for a topic without partitions then). A different count in the metadata cache makes
    /// the member rejoin, as the Java consumer's metadata check does, so that partitions a topic
    /// gains are assigned.
    assignment_counts: BTreeMap<String, i32>,
    /// The metadata snapshot last compared with `assignment_counts` (a refresh replaces it).
    metadata_checked: Option<Arc<ClusterMetadata>>,
    /// Rebalances and the time spent in them.
    rebalance_stats: GroupCounters,
}

/// Join + sync rounds that may fail in a row (each in its own poll) before the error is
/// returned.
const REBALANCE_ATTEMPTS: u32 = 20;

impl std::fmt::Debug for GroupConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupConsumer")
            .field("group", &self.config.group_id)
            .field("assigned", &self.assigned)
            .finish_non_exhaustive()
    }
}

impl Drop for GroupConsumer {
    fn drop(&mut self) {
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
    }
}

impl GroupConsumer {
    /// A member of `config.group_id` subscribed to `topics`. Nothing is sent until the first
    /// poll.
    ///
    /// # Errors
    /// [`Error::Config`] for an empty group id or topic list, or an unknown assignor name.
    pub fn subscribe(
        client: &Client,
        config: GroupConfig,
        topics: &[&str],
    ) -> Result<GroupConsumer> {
        if config.group_id.is_empty() || topics.is_empty() {
            return Err(Error::Config(
                "a group consumer needs a group id and at least one topic".into(),
            ));
        }
        for name in &config.partition_assignment_strategy {
            if assignor::by_name(name).is_none() {
                return Err(Error::Config(format!(
                    "unknown assignor {name:?} (range, roundrobin, sticky, cooperative-sticky)"
                )));
            }
        }
        if config.partition_assignment_strategy.is_empty() {
            return Err(Error::Config(
                "partition_assignment_strategy is empty".into(),
            ));
        }
        let fetch = ConsumerConfig {
            offset_reset: config.auto_offset_reset,
            ..config.fetch.clone()
        };
        let mut fetcher = PartitionConsumer::new(client, fetch);
        fetcher.set_group(&config.group_id);
        Ok(GroupConsumer {
            fetcher,
            client: client.clone(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
            state: Arc::new(Mutex::new(Membership {
                generation_id: -1,
                ..Default::default()
            })),
            assigned: BTreeSet::new(),
            consumed: BTreeMap::new(),
            stored: BTreeMap::new(),
            last_commit: Instant::now(),
            last_poll: Arc::new(Mutex::new(Instant::now())),
            heartbeat: None,
            listener: None,
            joined: false,
            unfinished_rebalance: None,
            failed_rebalances: 0,
            assignment_counts: BTreeMap::new(),
            metadata_checked: None,
            rebalance_stats: GroupCounters::default(),
            config,
        })
    }

    /// Sets the rebalance listener.
    pub fn set_rebalance_listener(&mut self, listener: impl RebalanceListener + 'static) {
        self.listener = Some(Box::new(listener));
    }

    pub(crate) fn set_boxed_listener(&mut self, listener: Box<dyn RebalanceListener>) {
        self.listener = Some(listener);
    }

    /// The partitions assigned to this member now.
    pub fn assignment(&self) -> Vec<(String, i32)> {
        self.assigned.iter().cloned().collect()
    }

    /// The position (next offset to read) of an assigned partition.
    pub fn position(&self, topic: &str, partition: i32) -> Option<i64> {
        self.fetcher.position(topic, partition)
    }

    /// What this member has counted: as [`PartitionConsumer::stats`], with the rebalances
    /// completed and the time spent in them.
    pub fn stats(&self) -> ConsumerStats {
        let mut s = self.fetcher.stats();
        s.rebalances = self.rebalance_stats.rebalances;
        s.rebalance_time = self.rebalance_stats.time;
        s
    }

    /// The lag of each assigned partition (see [`PartitionConsumer::lag`]).
    pub fn lag(&self) -> BTreeMap<(String, i32), i64> {
        self.fetcher.lag()
    }

    /// Moves the position of an assigned partition (the next poll reads from there).
    ///
    /// # Errors
    /// [`Error::Config`] if the partition is not assigned; ListOffsets errors.
    pub async fn seek(&mut self, topic: &str, partition: i32, to: StartOffset) -> Result<()> {
        self.fetcher.seek(topic, partition, to).await
    }

    /// Stops fetching an assigned partition until [`GroupConsumer::resume`]; heartbeats go on,
    /// so a paused member stays in the group.
    pub fn pause(&mut self, topic: &str, partition: i32) {
        self.fetcher.pause(topic, partition);
    }

    /// Fetches a paused partition again.
    pub fn resume(&mut self, topic: &str, partition: i32) {
        self.fetcher.resume(topic, partition);
    }

    /// The group's committed offsets of `partitions` (OffsetFetch).
    ///
    /// # Errors
    /// OffsetFetch errors.
    pub async fn committed(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>> {
        Admin::new(&self.client)
            .committed_offsets(&self.config.group_id, Some(partitions))
            .await
    }

    /// Starts a commit of what [`GroupConsumer::commit`] would commit and returns at once; the
    /// result is handed to `callback` when the coordinator answers. A failed commit that means
    /// the generation is over makes the next poll rejoin.
    pub fn commit_async(&mut self, callback: impl FnOnce(Result<()>) + Send + 'static) {
        let offsets = self.to_commit();
        self.commit_offsets_async(offsets, callback);
    }

    /// As [`GroupConsumer::commit_async`], for the given offsets.
    pub fn commit_offsets_async(
        &mut self,
        offsets: Vec<OffsetToCommit>,
        callback: impl FnOnce(Result<()>) + Send + 'static,
    ) {
        let admin = Admin::new(&self.client);
        let group = self.config.group_id.clone();
        let membership = self.membership();
        let state = self.state.clone();
        self.last_commit = Instant::now();
        tokio::spawn(async move {
            let r = admin.commit_offsets(&group, &membership, &offsets).await;
            if let Err(e) = &r
                && matches!(
                    e.code(),
                    Some(
                        ErrorCode::REBALANCE_IN_PROGRESS
                            | ErrorCode::ILLEGAL_GENERATION
                            | ErrorCode::UNKNOWN_MEMBER_ID
                    )
                )
                && let Ok(mut s) = state.lock()
            {
                s.needs_rejoin = true;
            }
            callback(r);
        });
    }

    /// The member id and generation, once joined.
    pub fn membership(&self) -> GroupMembership {
        let s = self.state.lock().map(|s| s.clone()).unwrap_or_default();
        GroupMembership {
            generation_id: s.generation_id,
            member_id: s.member_id,
            group_instance_id: self.config.group_instance_id.clone(),
        }
    }

    fn coordinator(&self) -> Coordinator<'_> {
        Coordinator {
            client: &self.client,
            group: &self.config.group_id,
            instance_id: self.config.group_instance_id.as_deref(),
            state: &self.state,
        }
    }

    fn protocol(&self) -> RebalanceProtocol {
        let all_cooperative = self
            .config
            .partition_assignment_strategy
            .iter()
            .filter_map(|n| assignor::by_name(n))
            .all(|a| a.protocol() == RebalanceProtocol::Cooperative);
        if all_cooperative {
            RebalanceProtocol::Cooperative
        } else {
            RebalanceProtocol::Eager
        }
    }

    /// Joins (or rejoins) the group if needed, commits on schedule, and fetches. Records come
    /// back as [`Fetched`], exactly as from a [`PartitionConsumer`]. A join round that must be
    /// repeated (another member joined or left meanwhile) ends the poll with nothing fetched;
    /// the next poll joins again.
    ///
    /// # Errors
    /// [`Error::GroupMembership`] once after the member left the group for polling too slowly
    /// (the next poll joins again); fatal membership errors (FENCED_INSTANCE_ID, authorization);
    /// fetch errors as [`PartitionConsumer::poll`].
    pub async fn poll(&mut self) -> Result<Fetched> {
        if let Ok(mut t) = self.last_poll.lock() {
            *t = Instant::now();
        }
        let (fatal, slow) = self
            .state
            .lock()
            .map(|mut s| (s.fatal.clone(), s.left_for_slow_poll.take()))
            .unwrap_or_default();
        if let Some(e) = fatal {
            return Err(e);
        }
        if let Some(after) = slow {
            let lost: Vec<(String, i32)> = self.assigned.iter().cloned().collect();
            self.drop_partitions(&lost, true);
            return Err(Error::GroupMembership {
                group: self.config.group_id.clone(),
                reason: format!(
                    "left the group after {} ms without a poll (max_poll_interval {} ms); the next poll joins again",
                    after.as_millis(),
                    self.config.max_poll_interval.as_millis()
                ),
            });
        }
        let mut rejoin = self.state.lock().map(|s| s.needs_rejoin).unwrap_or(true);
        if self.joined
            && !rejoin
            && let Some(change) = self.partition_count_change()
        {
            tracing::info!(group = %self.config.group_id, %change, "partition count changed: rejoining");
            rejoin = true;
            if let Ok(mut s) = self.state.lock() {
                s.needs_rejoin = true;
            }
        }
        if (!self.joined || rejoin) && !self.rebalance().await? {
            return Ok(Fetched::default());
        }
        if self.config.enable_auto_commit
            && self.last_commit.elapsed() >= self.config.auto_commit_interval
            && let Err(e) = self.commit().await
        {
            tracing::warn!(error = %e, "auto commit failed");
        }
        let fetched = self.fetcher.poll().await?;
        for p in &fetched.partitions {
            if let Some(pos) = self.fetcher.position(&p.topic, p.partition) {
                self.consumed.insert((p.topic.clone(), p.partition), pos);
            }
        }
        Ok(fetched)
    }

    /// Stores `next_offset` (last processed + 1) as processed for a partition: committed by
    /// [`GroupConsumer::commit`], before a revocation, and on close, even without auto commit.
    pub fn store_offset(&mut self, topic: &str, partition: i32, next_offset: i64) {
        self.stored
            .insert((topic.to_owned(), partition), next_offset);
    }

    fn to_commit(&self) -> Vec<OffsetToCommit> {
        let mut offsets = BTreeMap::new();
        if self.config.enable_auto_commit {
            offsets.extend(
                self.consumed
                    .iter()
                    .filter(|(k, _)| self.assigned.contains(*k))
                    .map(|(k, v)| (k.clone(), *v)),
            );
        }
        offsets.extend(
            self.stored
                .iter()
                .filter(|(k, _)| self.assigned.contains(*k))
                .map(|(k, v)| (k.clone(), *v)),
        );
        offsets
            .into_iter()
            .map(|((topic, partition), offset)| OffsetToCommit::new(topic, partition, offset))
            .collect()
    }

    /// Commits the offsets of records returned by `poll` (with auto commit) and those stored
    /// with [`GroupConsumer::store_offset`], as this generation's member.
    ///
    /// # Errors
    /// OffsetCommit errors; REBALANCE_IN_PROGRESS, ILLEGAL_GENERATION and UNKNOWN_MEMBER_ID
    /// also make the next poll rejoin.
    pub async fn commit(&mut self) -> Result<()> {
        let offsets = self.to_commit();
        self.commit_offsets(&offsets).await
    }

    /// Commits the given offsets as this generation's member.
    ///
    /// # Errors
    /// As [`GroupConsumer::commit`].
    pub async fn commit_offsets(&mut self, offsets: &[OffsetToCommit]) -> Result<()> {
        self.last_commit = Instant::now();
        let span = group_span(GroupOp::Commit, &self.config.group_id);
        let r = Admin::new(&self.client)
            .commit_offsets(&self.config.group_id, &self.membership(), offsets)
            .instrument(span.clone())
            .await;
        record_error(&span, &r);
        if let Err(e) = &r
            && matches!(
                e.code(),
                Some(
                    ErrorCode::REBALANCE_IN_PROGRESS
                        | ErrorCode::ILLEGAL_GENERATION
                        | ErrorCode::UNKNOWN_MEMBER_ID
                )
            )
            && let Ok(mut s) = self.state.lock()
        {
            s.needs_rejoin = true;
        }
        r
    }

    /// Commits (with auto commit or stored offsets), leaves the group (unless static
    /// membership), and stops heartbeating.
    ///
    /// # Errors
    /// The commit's or LeaveGroup's error; the member is stopped either way.
    pub async fn close(mut self) -> Result<()> {
        let mut result = Ok(());
        if self.joined && (self.config.enable_auto_commit || !self.stored.is_empty()) {
            result = self.commit().await;
        }
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        if self.joined && self.config.group_instance_id.is_none() {
            let left = self.coordinator().leave("the consumer is closing").await;
            if result.is_ok() {
                result = left;
            }
        }
        result
    }

    fn drop_partitions(&mut self, partitions: &[(String, i32)], lost: bool) {
        if partitions.is_empty() {
            return;
        }
        if let Some(l) = self.listener.as_mut() {
            if lost {
                l.on_partitions_lost(partitions)
            } else {
                l.on_partitions_revoked(partitions)
            }
        }
        for (t, p) in partitions {
            self.fetcher.unassign(t, *p);
            self.assigned.remove(&(t.clone(), *p));
            self.consumed.remove(&(t.clone(), *p));
            self.stored.remove(&(t.clone(), *p));
        }
    }

    async fn revoke(&mut self, partitions: Vec<(String, i32)>) {
        if partitions.is_empty() {
            return;
        }
        let offsets: Vec<OffsetToCommit> = self
            .to_commit()
            .into_iter()
            .filter(|o| partitions.contains(&(o.topic.clone(), o.partition)))
            .collect();
        if !offsets.is_empty()
            && let Err(e) = self.commit_offsets(&offsets).await
        {
            tracing::warn!(error = %e, "commit before revocation failed");
        }
        self.drop_partitions(&partitions, false);
    }

    /// One join + sync round. Returns whether the member now has an assignment; a round that
    /// failed in a way that means "join again" (another member joined or left meanwhile)
    /// returns `Ok(false)` so that `poll` returns and the application keeps polling (a
    /// member that stays in here would hold up the others it shares a task with); the next
    /// poll tries again, up to [`REBALANCE_ATTEMPTS`] rounds in a row.
    async fn rebalance(&mut self) -> Result<bool> {
        let started = Instant::now();
        let r = self.rebalance_round().await;
        let done = matches!(r, Ok(true));
        self.rebalance_stats
            .on_rebalance(&self.config.group_id, started.elapsed(), done);
        if done {
            tracing::info!(
                group = %self.config.group_id,
                partitions = self.assigned.len(),
                took_ms = started.elapsed().as_millis() as u64,
                "rebalance done"
            );
        }
        r
    }

    /// One join + sync round (see [`GroupConsumer::rebalance`]).
    async fn rebalance_round(&mut self) -> Result<bool> {
        let protocol = self.protocol();
        let owned_before = match self.unfinished_rebalance.take() {
            Some(owned) => owned,
            None => {
                let lost = self
                    .state
                    .lock()
                    .map(|s| s.member_id.is_empty() && self.joined)
                    .unwrap_or(false);
                // What we owned before giving it up: eager members still report it in their
                // subscription so that sticky assignors can keep it in place (KIP-54).
                let owned: Vec<(String, i32)> = self.assigned.iter().cloned().collect();
                if lost {
                    self.drop_partitions(&owned, true);
                    Vec::new()
                } else {
                    if protocol == RebalanceProtocol::Eager {
                        self.revoke(owned.clone()).await;
                    }
                    owned
                }
            }
        };
        let attempt = self.failed_rebalances + 1;
        // Another member joining or leaving while we sync answers REBALANCE_IN_PROGRESS (and
        // an old generation ILLEGAL_GENERATION / UNKNOWN_MEMBER_ID): those mean "join again".
        let rejoin = |e: &Error| {
            e.is_retriable()
                || matches!(
                    e.code(),
                    Some(
                        ErrorCode::REBALANCE_IN_PROGRESS
                            | ErrorCode::UNKNOWN_MEMBER_ID
                            | ErrorCode::ILLEGAL_GENERATION
                    )
                )
        };
        if let Ok(mut s) = self.state.lock() {
            s.rebalancing = true;
        }
        let outcome = self.join_and_sync(protocol, &owned_before).await;
        if let Ok(mut s) = self.state.lock() {
            s.rebalancing = false;
        }
        match outcome {
            Ok(()) => {
                self.failed_rebalances = 0;
                self.joined = true;
                self.start_heartbeat();
                Ok(true)
            }
            Err(e) if rejoin(&e) && attempt < REBALANCE_ATTEMPTS => {
                tracing::debug!(error = %e, attempt, "rebalance failed; joining again");
                if let Ok(mut s) = self.state.lock() {
                    if matches!(
                        e.code(),
                        Some(ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION)
                    ) {
                        s.member_id.clear();
                    }
                    s.needs_rejoin = true;
                }
                self.failed_rebalances = attempt;
                self.unfinished_rebalance = Some(owned_before);
                tokio::time::sleep(Duration::from_millis(100 * u64::from(attempt.min(10)))).await;
                Ok(false)
            }
            Err(e) => {
                self.failed_rebalances = 0;
                if matches!(
                    e.code(),
                    Some(ErrorCode::FENCED_INSTANCE_ID | ErrorCode::GROUP_AUTHORIZATION_FAILED)
                ) && let Ok(mut s) = self.state.lock()
                {
                    s.fatal = Some(e.clone());
                }
                Err(e)
            }
        }
    }

    async fn join_and_sync(
        &mut self,
        protocol: RebalanceProtocol,
        owned_before: &[(String, i32)],
    ) -> Result<()> {
        if let Ok(mut s) = self.state.lock() {
            s.needs_rejoin = false;
        }
        let generation = self.state.lock().map(|s| s.generation_id).unwrap_or(-1);
        let subscription = Subscription {
            topics: self.topics.clone(),
            owned_partitions: match protocol {
                RebalanceProtocol::Cooperative => self.assigned.iter().cloned().collect(),
                RebalanceProtocol::Eager => owned_before.to_vec(),
            },
            generation_id: generation,
            rack_id: None,
            user_data: None,
        };
        let meta = encode_subscription(&subscription, 3).map_err(|source| Error::Encode {
            api: ApiKey::JoinGroup,
            source,
        })?;
        let protocols: Vec<(String, Bytes)> = self
            .config
            .partition_assignment_strategy
            .iter()
            .map(|n| (n.clone(), meta.clone()))
            .collect();
        let coordinator = self.coordinator();
        let span = group_span(GroupOp::Join, &self.config.group_id);
        let joined = coordinator
            .join(
                &protocols,
                self.config.session_timeout,
                self.config.max_poll_interval,
            )
            .instrument(span.clone())
            .await;
        record_error(&span, &joined);
        let joined = joined?;
        let mut assignments = BTreeMap::new();
        let mut leader_counts = None;
        if joined.leader {
            let (plan, counts) = lead(&self.client, &self.config.group_id, &joined).await?;
            for (member_id, partitions) in plan {
                let bytes = encode_assignment(
                    &Assignment {
                        partitions,
                        user_data: None,
                    },
                    3,
                )
                .map_err(|source| Error::Encode {
                    api: ApiKey::SyncGroup,
                    source,
                })?;
                assignments.insert(member_id, bytes);
            }
            leader_counts = Some(counts);
        }
        let coordinator = self.coordinator();
        let span = group_span(GroupOp::Sync, &self.config.group_id);
        let bytes = coordinator
            .sync(&joined, assignments)
            .instrument(span.clone())
            .await;
        record_error(&span, &bytes);
        let bytes = bytes?;
        let assignment = match decode_assignment_by_topic(bytes) {
            Ok(a) => a,
            Err(e) => {
                // Rejoining would only fetch the same bytes again: take nothing this
                // generation and let the group go on.
                tracing::warn!(
                    group = %self.config.group_id,
                    error = %e,
                    "the leader sent an assignment this client cannot read; taking none"
                );
                AssignmentByTopic::default()
            }
        };
        let (new, cache) = accept_assignment(
            &self.client,
            &self.config.group_id,
            &self.topics,
            assignment,
        )
        .await;
        self.assignment_counts = match leader_counts {
            Some(counts) => counts,
            None => self
                .topics
                .iter()
                .map(|t| (t.clone(), partition_count(&cache, t).unwrap_or(0)))
                .collect(),
        };
        self.metadata_checked = None;
        if protocol == RebalanceProtocol::Cooperative {
            let revoked: Vec<(String, i32)> = self.assigned.difference(&new).cloned().collect();
            if !revoked.is_empty() {
                self.revoke(revoked).await;
                // KIP-429: give the revoked partitions back to the group in a follow-up round.
                if let Ok(mut s) = self.state.lock() {
                    s.needs_rejoin = true;
                }
            }
        }
        let added: Vec<(String, i32)> = new.difference(&self.assigned).cloned().collect();
        if !added.is_empty() {
            let committed = Admin::new(&self.client)
                .committed_offsets(&self.config.group_id, Some(&added))
                .await?;
            for (t, p) in &added {
                let start = crate::start_offset(
                    committed.get(&(t.clone(), *p)).copied(),
                    self.config.auto_offset_reset,
                    t,
                    *p,
                    Some(&self.config.group_id),
                )?;
                self.fetcher.assign(t, *p, start).await?;
                self.assigned.insert((t.clone(), *p));
            }
            if let Some(l) = self.listener.as_mut() {
                l.on_partitions_assigned(&added);
            }
        }
        Ok(())
    }

    /// A change of a watched topic's partition count in the metadata cache since the last
    /// assignment, described; `None` if none (or the cache has not changed since the last
    /// call).
    fn partition_count_change(&mut self) -> Option<String> {
        let meta = self.client.metadata();
        if self
            .metadata_checked
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, &meta))
        {
            return None;
        }
        let change = self.assignment_counts.iter().find_map(|(t, &before)| {
            partition_count(&meta, t)
                .filter(|&now| now != before)
                .map(|now| format!("{t}: {before} -> {now} partitions"))
        });
        self.metadata_checked = Some(meta);
        change
    }

    fn start_heartbeat(&mut self) {
        if self.heartbeat.as_ref().is_some_and(|h| !h.is_finished()) {
            return;
        }
        let client = self.client.clone();
        let group = self.config.group_id.clone();
        let instance = self.config.group_instance_id.clone();
        let state = self.state.clone();
        let last_poll = self.last_poll.clone();
        let every = self.config.heartbeat_interval;
        let max_poll = self.config.max_poll_interval;
        self.heartbeat = Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let coordinator = Coordinator {
                    client: &client,
                    group: &group,
                    instance_id: instance.as_deref(),
                    state: &state,
                };
                let idle = last_poll.lock().map(|t| t.elapsed()).unwrap_or_default();
                let (member, rebalancing, generation) = state
                    .lock()
                    .map(|s| (!s.member_id.is_empty(), s.rebalancing, s.generation_id))
                    .unwrap_or((false, true, -1));
                if !member || rebalancing {
                    continue;
                }
                if idle > max_poll {
                    tracing::warn!(group = %group, idle_ms = idle.as_millis() as u64, "no poll within max_poll_interval: leaving the group");
                    let _ = coordinator.leave("consumer poll timeout has expired").await;
                    if let Ok(mut s) = state.lock() {
                        s.left_for_slow_poll = Some(idle);
                        s.needs_rejoin = true;
                    }
                    continue;
                }
                let answer = coordinator.heartbeat().await;
                // An answer about a generation that a rebalance has replaced meanwhile says
                // nothing about the new one.
                let stale = state
                    .lock()
                    .map(|s| s.rebalancing || s.generation_id != generation)
                    .unwrap_or(true);
                if stale {
                    continue;
                }
                match answer {
                    Ok(ErrorCode::NONE) => {}
                    Ok(ErrorCode::REBALANCE_IN_PROGRESS) => {
                        if let Ok(mut s) = state.lock() {
                            s.needs_rejoin = true;
                        }
                    }
                    Ok(ErrorCode::UNKNOWN_MEMBER_ID | ErrorCode::ILLEGAL_GENERATION) => {
                        if let Ok(mut s) = state.lock() {
                            s.member_id.clear();
                            s.needs_rejoin = true;
                        }
                    }
                    Ok(
                        c @ (ErrorCode::FENCED_INSTANCE_ID | ErrorCode::GROUP_AUTHORIZATION_FAILED),
                    ) => {
                        if let Ok(mut s) = state.lock() {
                            s.fatal = Some(Error::broker_error(
                                c,
                                ApiKey::Heartbeat,
                                None,
                                None,
                                None,
                                Some(format!("group {group}")),
                            ));
                        }
                        return;
                    }
                    Ok(other) => {
                        tracing::debug!(code = %other, "heartbeat answered with an error; retrying")
                    }
                    Err(e) => tracing::debug!(error = %e, "heartbeat failed; retrying"),
                }
            }
        }));
    }
}

/// A partition count as an `i32` (the protocol's type), saturating.
fn clamp_count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The partition count of `topic` in `meta`: the number of partitions of a topic the metadata
/// lists without error, 0 for one it reports as not existing, `None` when it says nothing
/// reliable (not asked about yet, or a transient error such as a leader election).
fn partition_count(meta: &ClusterMetadata, topic: &str) -> Option<i32> {
    let t = meta.topics.get(topic)?;
    if t.error.is_ok() {
        Some(clamp_count(t.partitions.len()))
    } else if t.error == ErrorCode::UNKNOWN_TOPIC_OR_PARTITION {
        Some(0)
    } else {
        None
    }
}

/// The partition indexes of `topic` that `meta` lists (none for a topic with an error).
fn known_partitions(meta: &ClusterMetadata, topic: &str) -> BTreeSet<i32> {
    meta.topics
        .get(topic)
        .filter(|t| t.error.is_ok())
        .map(|t| t.partitions.iter().map(|p| p.partition).collect())
        .unwrap_or_default()
}

/// The leader's part of a join: reads every member's subscription, refreshes metadata for
/// the topics they want, and runs the assignor. Returns the plan (an entry per member) and
/// the partition count of every topic of the group it was made with.
///
/// A subscription that does not decode counts as subscribing to nothing: that member gets
/// an empty assignment, and the rest of the group is assigned as usual (failing the whole
/// group because of one member would let any member stop everyone).
async fn lead(
    client: &Client,
    group: &str,
    joined: &membership::Joined,
) -> Result<(BTreeMap<String, Vec<(String, i32)>>, BTreeMap<String, i32>)> {
    let assignor = assignor::by_name(&joined.protocol).ok_or_else(|| {
        Error::Config(format!(
            "the group chose assignor {:?}, which this client does not have",
            joined.protocol
        ))
    })?;
    let mut members = BTreeMap::new();
    let mut topics = BTreeSet::new();
    for (member_id, instance, metadata) in &joined.members {
        let m = match decode_subscription_by_topic(metadata.clone()) {
            Ok(s) => MemberSubscription::from_subscription_by_topic(s, instance.clone()),
            Err(e) => {
                tracing::warn!(
                    group,
                    member = %member_id,
                    error = %e,
                    bytes = metadata.len(),
                    "a member's subscription cannot be read: it is treated as subscribing \
                     to nothing"
                );
                MemberSubscription {
                    group_instance_id: instance.clone(),
                    ..MemberSubscription::new(Vec::<String>::new())
                }
            }
        };
        topics.extend(m.topics.iter().cloned());
        members.insert(member_id.clone(), m);
    }
    let partitions_per_topic: BTreeMap<String, i32> = if topics.is_empty() {
        BTreeMap::new()
    } else {
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        let meta = client.refresh_metadata(&names).await?;
        topics
            .iter()
            .filter_map(|t| {
                meta.topics
                    .get(t)
                    .filter(|m| m.error.is_ok())
                    .map(|m| (t.clone(), clamp_count(m.partitions.len())))
            })
            .collect()
    };
    let mut plan = assignor.assign(&partitions_per_topic, &members);
    // Every member gets an entry, and only members get one, whatever the assignor did.
    plan.retain(|id, _| members.contains_key(id));
    for id in members.keys() {
        plan.entry(id.clone()).or_default();
    }
    let counts = topics
        .into_iter()
        .map(|t| {
            let n = partitions_per_topic.get(&t).copied().unwrap_or(0);
            (t, n)
        })
        .collect();
    Ok((plan, counts))
}

/// The partitions of `assignment` this member takes, and the metadata it judged them by.
///
/// Only partitions of subscribed topics that the metadata knows are taken. A partition the
/// cached metadata does not know (the leader saw a newer partition count) refreshes the
/// metadata of those topics once; one still unknown after that is left out with a warning
/// (it becomes readable through the rejoin the partition count check starts once the
/// metadata shows it) rather than failing the rebalance, which would only start another
/// with the same outcome. The result holds at most the partitions the metadata lists, so
/// its size does not depend on what the leader sent.
async fn accept_assignment(
    client: &Client,
    group: &str,
    topics: &[String],
    assignment: AssignmentByTopic,
) -> (BTreeSet<(String, i32)>, Arc<ClusterMetadata>) {
    let ours: BTreeSet<&str> = topics.iter().map(String::as_str).collect();
    let mut cache = client.metadata();
    // Refresh for topics with a partition the cache does not know, and for subscribed
    // topics it knows nothing about (their partition count is watched from now on).
    let mut stale: BTreeSet<&str> = ours
        .iter()
        .copied()
        .filter(|t| partition_count(&cache, t).is_none())
        .collect();
    let mut known: BTreeMap<&str, BTreeSet<i32>> = BTreeMap::new();
    for entry in &assignment.partitions {
        let Some(&topic) = ours.get(entry.topic.as_str()) else {
            continue;
        };
        if stale.contains(topic) {
            continue;
        }
        let known = known
            .entry(topic)
            .or_insert_with(|| known_partitions(&cache, topic));
        if entry.partitions.iter().any(|p| !known.contains(p)) {
            stale.insert(topic);
        }
    }
    if !stale.is_empty() {
        let names: Vec<&str> = stale.into_iter().collect();
        tracing::debug!(topics = ?names, "refreshing metadata for the assignment");
        match client.refresh_metadata(&names).await {
            Ok(fresh) => cache = fresh,
            Err(e) => {
                tracing::warn!(error = %e, "metadata refresh for the assignment failed")
            }
        }
        known.clear();
    }
    let mut accepted = BTreeSet::new();
    let mut unsubscribed = 0usize;
    let mut unknown: BTreeMap<&str, (usize, i32)> = BTreeMap::new();
    for entry in &assignment.partitions {
        let Some(&topic) = ours.get(entry.topic.as_str()) else {
            unsubscribed += entry.partitions.len();
            continue;
        };
        let known = known
            .entry(topic)
            .or_insert_with(|| known_partitions(&cache, topic));
        for &p in &entry.partitions {
            if known.contains(&p) {
                accepted.insert((topic, p));
            } else {
                unknown.entry(topic).or_insert((0, p)).0 += 1;
            }
        }
    }
    if unsubscribed > 0 {
        tracing::warn!(
            group,
            partitions = unsubscribed,
            "the assignment names topics this member does not subscribe to; ignoring them"
        );
    }
    for (topic, (count, example)) in unknown {
        tracing::warn!(
            group,
            topic,
            partitions = count,
            example,
            "the assignment names partitions the metadata does not know, even after a \
             refresh; leaving them out"
        );
    }
    let accepted = accepted
        .into_iter()
        .map(|(t, p)| (t.to_owned(), p))
        .collect();
    (accepted, cache)
}
