//! Consumer group administration and committed offsets: ListGroups, DescribeGroups (and
//! ConsumerGroupDescribe for groups of the consumer rebalance protocol, KIP-848), DeleteGroups,
//! OffsetFetch, OffsetCommit, each sent to the group's coordinator
//! (FindCoordinator key type 0) with retries while the coordinator moves or loads.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use kafkawire_protocol::consumer_protocol::{
    AssignmentByTopic, TopicPartitions, decode_assignment, encode_assignment_by_topic,
};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafkawire_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use kafkawire_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafkawire_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafkawire_protocol::messages::list_groups_request::ListGroupsRequest;
use kafkawire_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkawire_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafkawire_protocol::{DecodeError, ErrorCode};

use crate::admin::{Admin, offset_spec};
use crate::error::{Error, Result};

/// A group as ListGroups names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupListing {
    /// Group id.
    pub group_id: String,
    /// Protocol type (`consumer` for consumer groups; empty for groups that only store offsets).
    pub protocol_type: String,
    /// State (ListGroups v4+, KIP-518), empty when the broker does not say.
    pub state: String,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// Member id.
    pub member_id: String,
    /// Static member id (KIP-345), if any.
    pub group_instance_id: Option<String>,
    /// The member's client id.
    pub client_id: String,
    /// The member's host.
    pub client_host: String,
    /// The member's assignment, as the group protocol encodes it. A group of the consumer
    /// rebalance protocol (KIP-848) has no such bytes: for its members this client encodes the
    /// current assignment ConsumerGroupDescribe reports as a consumer-protocol assignment
    /// (version 0), so that [`GroupMember::assigned_partitions`] reads both kinds of group.
    pub assignment: Bytes,
}

impl GroupMember {
    /// The partitions this member of a consumer group is assigned, as (topic, partition) sorted:
    /// its [`GroupMember::assignment`] read by [`decode_assignment`] (the consumer protocol's
    /// `ConsumerProtocolAssignment`: an int16 version, then that version's fields; versions
    /// above 3 are read as 3, since newer versions only append fields). Empty bytes are an
    /// empty assignment (a member the last rebalance gave nothing, or one joining). Another
    /// member wrote these bytes, so the flat list is refused when it would take more than a
    /// small multiple of them (see [`kafkawire_protocol::consumer_protocol`]). Only groups
    /// whose [`GroupDescription::protocol_type`] is `consumer` use this encoding.
    ///
    /// # Errors
    /// [`DecodeError`] when the bytes are not a consumer-protocol assignment (a negative
    /// version, truncated or oversized fields, bytes left over after a known version) or
    /// would flatten past that bound.
    pub fn assigned_partitions(&self) -> std::result::Result<Vec<(String, i32)>, DecodeError> {
        let mut partitions = decode_assignment(self.assignment.clone())?.partitions;
        partitions.sort();
        partitions.dedup();
        Ok(partitions)
    }
}

/// A group as DescribeGroups describes it (or ConsumerGroupDescribe, for a group of the consumer
/// rebalance protocol, KIP-848).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDescription {
    /// Group id.
    pub group_id: String,
    /// State: Empty, Stable, PreparingRebalance, CompletingRebalance, Dead (classic groups);
    /// Empty, Assigning, Reconciling, Stable, Dead (KIP-848 groups).
    pub state: String,
    /// Protocol type.
    pub protocol_type: String,
    /// The chosen protocol (for consumer groups: the assignor).
    pub protocol: String,
    /// Members.
    pub members: Vec<GroupMember>,
}

/// An offset to commit: the next offset to read (last processed + 1), with optional metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetToCommit {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to read.
    pub offset: i64,
    /// Leader epoch of the last record processed (-1 when unknown; KIP-320).
    pub leader_epoch: i32,
    /// Free text stored with the offset.
    pub metadata: Option<String>,
}

impl OffsetToCommit {
    /// `offset` (the next offset to read) for `topic`/`partition`, without leader epoch or
    /// metadata.
    pub fn new(topic: impl Into<String>, partition: i32, offset: i64) -> OffsetToCommit {
        OffsetToCommit {
            topic: topic.into(),
            partition,
            offset,
            leader_epoch: -1,
            metadata: None,
        }
    }
}

/// Membership of the committing member; `GroupMembership::none()` for group-less commits
/// (generation -1, empty member id), as standalone consumers do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMembership {
    /// Generation id, -1 for none.
    pub generation_id: i32,
    /// Member id, empty for none.
    pub member_id: String,
    /// Static member id.
    pub group_instance_id: Option<String>,
}

impl GroupMembership {
    /// No membership: commits from a consumer that does not join the group.
    pub fn none() -> Self {
        GroupMembership {
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
        }
    }
}

fn coordinator_retriable(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
    )
}

const ATTEMPTS: u32 = 8;

impl Admin {
    /// Runs `call` against the group's coordinator, finding it again and retrying (with
    /// backoff) while the answer is NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE or
    /// COORDINATOR_LOAD_IN_PROGRESS or a transport error.
    pub(crate) async fn with_coordinator<T, F, Fut>(&self, group: &str, call: F) -> Result<T>
    where
        F: Fn(i32) -> Fut,
        Fut: std::future::Future<Output = Result<T>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.client().find_coordinator(0, group).await {
                Ok(node) => call(node).await,
                Err(e) => Err(e),
            };
            match result {
                Err(e)
                    if attempt < ATTEMPTS
                        && (e.code().is_some_and(coordinator_retriable)
                            || (e.code().is_none() && e.is_retriable())) =>
                {
                    tokio::time::sleep(Duration::from_millis(50 * u64::from(attempt))).await;
                }
                other => return other,
            }
        }
    }

    /// Every group on every broker (each broker lists the groups it coordinates).
    ///
    /// # Errors
    /// Transport errors, or a broker's error code.
    pub async fn list_groups(&self) -> Result<Vec<GroupListing>> {
        let meta = self.client().refresh_all_metadata().await?;
        let mut out = Vec::new();
        for node in meta.brokers.keys() {
            let resp = self
                .client()
                .send_to(*node, &ListGroupsRequest::default())
                .await?;
            if resp.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(resp.error_code),
                    ApiKey::ListGroups,
                    None,
                    None,
                    None,
                    None,
                ));
            }
            out.extend(resp.groups.into_iter().map(|g| GroupListing {
                group_id: g.group_id,
                protocol_type: g.protocol_type,
                state: g.group_state,
            }));
        }
        out.sort_by(|a, b| a.group_id.cmp(&b.group_id));
        out.dedup_by(|a, b| a.group_id == b.group_id);
        Ok(out)
    }

    /// One group's state and members. A group the coordinator does not know as a classic
    /// group (DescribeGroups answers GROUP_ID_NOT_FOUND, as Kafka 4.0's v6 does, or state Dead
    /// without members, as earlier versions do) is then asked with ConsumerGroupDescribe when
    /// the coordinator has it (Kafka 3.7+): a group of the consumer rebalance protocol (KIP-848)
    /// is described with protocol type `consumer`, its assignor as the protocol, and its
    /// members' current assignments (see [`GroupMember::assignment`]).
    ///
    /// # Errors
    /// Transport errors, or the group's error code (e.g. GROUP_AUTHORIZATION_FAILED;
    /// GROUP_ID_NOT_FOUND from Kafka 4.0 for a group neither API knows).
    pub async fn describe_group(&self, group: &str) -> Result<GroupDescription> {
        let classic = self.describe_classic_group(group).await;
        let maybe_kip848 = match &classic {
            Ok(d) => d.state == "Dead" && d.members.is_empty(),
            Err(e) => e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND),
        };
        if maybe_kip848 && let Some(d) = self.describe_consumer_protocol_group(group).await? {
            return Ok(d);
        }
        classic
    }

    /// ConsumerGroupDescribe (KIP-848) of one group at its coordinator; `None` when the
    /// coordinator does not have the API or does not know the group as one of the consumer
    /// rebalance protocol (GROUP_ID_NOT_FOUND: unknown, or classic).
    async fn describe_consumer_protocol_group(
        &self,
        group: &str,
    ) -> Result<Option<GroupDescription>> {
        let req = ConsumerGroupDescribeRequest {
            group_ids: vec![group.to_owned()],
            ..Default::default()
        };
        let req = &req;
        let described = self
            .with_coordinator(group, |node| async move {
                let conn = self.client().broker_connection(node).await?;
                if conn.version_for(ApiKey::ConsumerGroupDescribe).is_err() {
                    return Ok(None);
                }
                let resp = conn.send(req).await?;
                let Some(g) = resp.groups.into_iter().find(|g| g.group_id == group) else {
                    return Ok(None);
                };
                match ErrorCode(g.error_code) {
                    ErrorCode::NONE => Ok(Some(g)),
                    ErrorCode::GROUP_ID_NOT_FOUND => Ok(None),
                    code => Err(Error::broker_error(
                        code,
                        ApiKey::ConsumerGroupDescribe,
                        Some(conn.broker()),
                        None,
                        None,
                        Some(match g.error_message {
                            Some(m) => format!("group {group}: {m}"),
                            None => format!("group {group}"),
                        }),
                    )),
                }
            })
            .await?;
        let Some(g) = described else {
            return Ok(None);
        };
        let mut members = Vec::with_capacity(g.members.len());
        for m in g.members {
            // Grouped by topic as the response has it (not flattened: its size stays that of
            // the response).
            let assignment = AssignmentByTopic {
                partitions: m
                    .assignment
                    .topic_partitions
                    .into_iter()
                    // A topic the coordinator could not name (deleted meanwhile) is left out.
                    .filter(|t| !t.topic_name.is_empty())
                    .map(|t| TopicPartitions::new(t.topic_name, t.partitions))
                    .collect(),
                user_data: None,
            };
            let assignment =
                encode_assignment_by_topic(assignment, 0).map_err(|source| Error::Encode {
                    api: ApiKey::ConsumerGroupDescribe,
                    source,
                })?;
            members.push(GroupMember {
                member_id: m.member_id,
                group_instance_id: m.instance_id,
                client_id: m.client_id,
                client_host: m.client_host,
                assignment,
            });
        }
        Ok(Some(GroupDescription {
            group_id: g.group_id,
            state: g.group_state,
            protocol_type: "consumer".to_owned(),
            protocol: g.assignor_name,
            members,
        }))
    }

    /// DescribeGroups of one group.
    async fn describe_classic_group(&self, group: &str) -> Result<GroupDescription> {
        self.with_coordinator(group, |node| async move {
            let req = DescribeGroupsRequest {
                groups: vec![group.to_owned()],
                ..Default::default()
            };
            let resp = self.client().send_to(node, &req).await?;
            let g = resp
                .groups
                .into_iter()
                .find(|g| g.group_id == group)
                .ok_or_else(|| {
                    Error::broker_error(
                        ErrorCode::UNKNOWN_SERVER_ERROR,
                        ApiKey::DescribeGroups,
                        None,
                        None,
                        None,
                        Some(format!("no answer for group {group}")),
                    )
                })?;
            if g.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(g.error_code),
                    ApiKey::DescribeGroups,
                    None,
                    None,
                    None,
                    Some(format!("group {group}")),
                ));
            }
            Ok(GroupDescription {
                group_id: g.group_id,
                state: g.group_state,
                protocol_type: g.protocol_type,
                protocol: g.protocol_data,
                members: g
                    .members
                    .into_iter()
                    .map(|m| GroupMember {
                        member_id: m.member_id,
                        group_instance_id: m.group_instance_id,
                        client_id: m.client_id,
                        client_host: m.client_host,
                        assignment: m.member_assignment,
                    })
                    .collect(),
            })
        })
        .await
    }

    /// Deletes groups (which must have no active members: NON_EMPTY_GROUP otherwise).
    ///
    /// # Errors
    /// The first group's error code, naming the group.
    pub async fn delete_groups(&self, groups: &[&str]) -> Result<()> {
        for group in groups {
            self.with_coordinator(group, |node| async move {
                let req = DeleteGroupsRequest {
                    groups_names: vec![(*group).to_owned()],
                    ..Default::default()
                };
                let resp = self.client().send_to(node, &req).await?;
                match resp.results.iter().find(|r| r.group_id == *group) {
                    Some(r) if r.error_code != 0 => Err(Error::broker_error(
                        ErrorCode(r.error_code),
                        ApiKey::DeleteGroups,
                        None,
                        None,
                        None,
                        Some(format!("group {group}")),
                    )),
                    _ => Ok(()),
                }
            })
            .await?;
        }
        Ok(())
    }

    /// The group's committed offsets: of `partitions`, or of every partition it has offsets
    /// for when `None`. Partitions without a committed offset are left out.
    ///
    /// # Errors
    /// Transport errors, or the group's or a partition's error code.
    pub async fn committed_offsets(
        &self,
        group: &str,
        partitions: Option<&[(String, i32)]>,
    ) -> Result<BTreeMap<(String, i32), i64>> {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions.unwrap_or_default() {
            by_topic.entry(t.clone()).or_default().push(*p);
        }
        let by_topic = &by_topic;
        let all = partitions.is_none();
        self.with_coordinator(group, |node| async move {
            let conn = self.client().broker_connection(node).await?;
            let version = conn.version_for(ApiKey::OffsetFetch)?;
            let req = if version >= 8 {
                OffsetFetchRequest {
                    groups: vec![OffsetFetchRequestGroup {
                        group_id: group.to_owned(),
                        member_epoch: -1,
                        topics: (!all).then(|| {
                            by_topic
                                .iter()
                                .map(|(t, ps)| OffsetFetchRequestTopics {
                                    name: t.clone(),
                                    partition_indexes: ps.clone(),
                                    ..Default::default()
                                })
                                .collect()
                        }),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            } else {
                OffsetFetchRequest {
                    group_id: group.to_owned(),
                    topics: (!all || version < 2).then(|| {
                        by_topic
                            .iter()
                            .map(|(t, ps)| OffsetFetchRequestTopic {
                                name: t.clone(),
                                partition_indexes: ps.clone(),
                                ..Default::default()
                            })
                            .collect()
                    }),
                    ..Default::default()
                }
            };
            let resp = conn.send_version(&req, version).await?;
            let mut out = BTreeMap::new();
            let check = |code: i16, topic: Option<&str>, partition: Option<i32>| {
                if code == 0 {
                    Ok(())
                } else {
                    Err(Error::broker_error(
                        ErrorCode(code),
                        ApiKey::OffsetFetch,
                        Some(conn.broker()),
                        topic,
                        partition,
                        Some(format!("group {group}")),
                    ))
                }
            };
            if version >= 8 {
                for g in resp.groups.iter().filter(|g| g.group_id == group) {
                    check(g.error_code, None, None)?;
                    for t in &g.topics {
                        for p in &t.partitions {
                            check(p.error_code, Some(&t.name), Some(p.partition_index))?;
                            if p.committed_offset >= 0 {
                                out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                            }
                        }
                    }
                }
            } else {
                check(resp.error_code, None, None)?;
                for t in &resp.topics {
                    for p in &t.partitions {
                        check(p.error_code, Some(&t.name), Some(p.partition_index))?;
                        if p.committed_offset >= 0 {
                            out.insert((t.name.clone(), p.partition_index), p.committed_offset);
                        }
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Commits offsets for `group` as `membership` (use [`GroupMembership::none`] outside a
    /// group generation).
    ///
    /// # Errors
    /// Transport errors, or the first partition's error code (e.g. ILLEGAL_GENERATION,
    /// UNKNOWN_MEMBER_ID, REBALANCE_IN_PROGRESS for members; OFFSET_METADATA_TOO_LARGE).
    pub async fn commit_offsets(
        &self,
        group: &str,
        membership: &GroupMembership,
        offsets: &[OffsetToCommit],
    ) -> Result<()> {
        if offsets.is_empty() {
            return Ok(());
        }
        let mut by_topic: BTreeMap<&str, Vec<OffsetCommitRequestPartition>> = BTreeMap::new();
        for o in offsets {
            by_topic
                .entry(&o.topic)
                .or_default()
                .push(OffsetCommitRequestPartition {
                    partition_index: o.partition,
                    committed_offset: o.offset,
                    committed_leader_epoch: o.leader_epoch,
                    commit_timestamp: -1,
                    committed_metadata: o.metadata.clone(),
                    ..Default::default()
                });
        }
        let req = OffsetCommitRequest {
            group_id: group.to_owned(),
            generation_id_or_member_epoch: membership.generation_id,
            member_id: membership.member_id.clone(),
            group_instance_id: membership.group_instance_id.clone(),
            retention_time_ms: -1,
            topics: by_topic
                .into_iter()
                .map(|(name, partitions)| OffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let req = &req;
        self.with_coordinator(group, |node| async move {
            let resp = self.client().send_to(node, req).await?;
            for t in &resp.topics {
                for p in &t.partitions {
                    if p.error_code != 0 {
                        return Err(Error::broker_error(
                            ErrorCode(p.error_code),
                            ApiKey::OffsetCommit,
                            None,
                            Some(&t.name),
                            Some(p.partition_index),
                            Some(format!("group {group}")),
                        ));
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// The partition's high watermark as a fetch reports it (exact on every broker; ListOffsets
    /// LATEST alone is not on some Kafka-compatible brokers).
    ///
    /// # Errors
    /// Transport errors, or the partition's error code.
    pub async fn high_watermark(&self, topic: &str, partition: i32) -> Result<i64> {
        let latest = self
            .list_offset(topic, partition, offset_spec::LATEST)
            .await?;
        let meta = self.client().metadata();
        let req = FetchRequest {
            replica_id: -1,
            max_wait_ms: 1,
            min_bytes: 0,
            max_bytes: 1,
            session_epoch: -1,
            topics: vec![FetchTopic {
                topic: topic.to_owned(),
                topic_id: meta
                    .topics
                    .get(topic)
                    .map_or(kafkawire_protocol::Uuid::ZERO, |t| t.topic_id),
                partitions: vec![FetchPartition {
                    partition,
                    current_leader_epoch: -1,
                    fetch_offset: latest,
                    last_fetched_epoch: -1,
                    log_start_offset: -1,
                    partition_max_bytes: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let leader = self.client().leader_for(topic, partition).await?;
        let resp = self.client().send_to(leader, &req).await?;
        let hw = resp
            .responses
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition && p.error_code == 0)
            .map(|p| p.high_watermark);
        Ok(hw.unwrap_or(latest).max(latest))
    }
}
