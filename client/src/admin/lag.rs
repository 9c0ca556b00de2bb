//! Group offsets beyond commit and fetch: deleting a group's committed offsets (OffsetDelete,
//! KIP-496) and a group's lag (committed offset against the high watermark, on the partitions
//! the group has offsets for or its members are assigned: DescribeGroups for classic groups,
//! ConsumerGroupDescribe for groups of the consumer rebalance protocol, KIP-848).

use std::collections::{BTreeMap, BTreeSet};

use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};

use super::cluster::Partition;
use crate::admin::Admin;
use crate::error::{Error, Result};
use crate::groups::GroupDescription;

/// How far a group's committed offset is behind the end of one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The committed offset (the next offset the group reads); `None` for a partition a
    /// member is assigned that the group has not committed yet (where its consumer starts
    /// depends on its reset policy, which the broker does not know).
    pub committed: Option<i64>,
    /// The partition's high watermark; `None` when the partition no longer exists (its topic
    /// was deleted or shrank).
    pub end_offset: Option<i64>,
    /// `end_offset - committed`, in records (offsets), never below 0; `None` without a
    /// committed offset or without an end offset.
    pub lag: Option<i64>,
    /// The member assigned the partition, `None` when no member is (the group is empty or
    /// rebalancing).
    pub member: Option<LagMember>,
}

/// The member of a group a partition is assigned to, as DescribeGroups (or
/// ConsumerGroupDescribe, KIP-848) names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagMember {
    /// Member id.
    pub member_id: String,
    /// The member's client id (`client.id`).
    pub client_id: String,
    /// The member's host, as the coordinator saw it.
    pub client_host: String,
}

/// A group's lag on every partition it has committed offsets for or its members are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupLag {
    /// Group id.
    pub group_id: String,
    /// Per partition, sorted by topic and partition.
    pub partitions: Vec<PartitionLag>,
}

impl GroupLag {
    /// The sum of the partitions' lags, in records (partitions without a committed offset or
    /// an end offset count 0).
    pub fn total(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

impl Admin {
    /// Deletes a group's committed offsets for `partitions` (OffsetDelete, KIP-496; protocol
    /// guide "OffsetDelete API"), sent to the group's coordinator and retried while it moves.
    /// The group must not be consuming those topics (its members must not be subscribed to
    /// them): the group may be empty, or active on other topics.
    ///
    /// # Errors
    /// [`Error::Broker`] with the group's error (GROUP_ID_NOT_FOUND, GROUP_AUTHORIZATION_FAILED,
    /// INVALID_GROUP_ID, NON_EMPTY_GROUP for a non-consumer group with members) naming the
    /// group in the message, or the first partition's (GROUP_SUBSCRIBED_TO_TOPIC while members
    /// read the topic, UNKNOWN_TOPIC_OR_PARTITION, TOPIC_AUTHORIZATION_FAILED) naming the topic
    /// and partition; [`Error::UnsupportedVersion`] from brokers without the API (before Kafka
    /// 2.4). Coordinator moves (NOT_COORDINATOR, COORDINATOR_NOT_AVAILABLE,
    /// COORDINATOR_LOAD_IN_PROGRESS) are retried.
    pub async fn delete_group_offsets(
        &self,
        group: &str,
        partitions: &[(String, i32)],
    ) -> Result<()> {
        if partitions.is_empty() {
            return Ok(());
        }
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for (t, p) in partitions {
            by_topic.entry(t).or_default().push(*p);
        }
        let req = OffsetDeleteRequest {
            group_id: group.to_owned(),
            topics: by_topic
                .into_iter()
                .map(|(t, ps)| OffsetDeleteRequestTopic {
                    name: t.to_owned(),
                    partitions: ps
                        .into_iter()
                        .map(|p| OffsetDeleteRequestPartition {
                            partition_index: p,
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let req = &req;
        self.with_coordinator(group, |node| async move {
            let conn = self.client().broker_connection(node).await?;
            let resp = conn.send(req).await?;
            if resp.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(resp.error_code),
                    ApiKey::OffsetDelete,
                    Some(conn.broker()),
                    None,
                    None,
                    Some(format!("group {group}")),
                ));
            }
            for t in &resp.topics {
                for p in &t.partitions {
                    if p.error_code != 0 {
                        return Err(Error::broker_error(
                            ErrorCode(p.error_code),
                            ApiKey::OffsetDelete,
                            Some(conn.broker()),
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

    /// The group's lag on each partition it has a committed offset for or one of its members
    /// is assigned: the committed offset (OffsetFetch, from the coordinator) against the
    /// partition's high watermark ([`Admin::end_offsets`]: ListOffsets LATEST, one request per
    /// leader), with the member assigned the partition (DescribeGroups for classic consumer
    /// groups; for a group DescribeGroups does not know as classic, ConsumerGroupDescribe, the
    /// consumer rebalance protocol of KIP-848, Kafka 4.0, when the coordinator supports it).
    /// An assigned partition without a committed offset is listed with `committed: None`, so
    /// that a member stuck before its first commit shows. A member whose assignment cannot be
    /// read is logged (WARN) and its partitions are listed only if committed.
    ///
    /// # Errors
    /// As [`Admin::committed_offsets`], [`Admin::describe_group`] and [`Admin::end_offsets`].
    /// A group unknown to the coordinator has no offsets and no members: an empty list, not
    /// an error.
    pub async fn group_lag(&self, group: &str) -> Result<GroupLag> {
        let committed = self.committed_offsets(group, None).await?;
        let owners = self.assigned_in(group).await?;
        self.one_group_lag(&group.to_owned(), committed, owners)
            .await
    }

    /// [`Admin::group_lag`] of every group ListGroups names (consumer groups and groups that
    /// only store offsets), sorted by group id. End offsets are asked once for all groups.
    ///
    /// # Errors
    /// As [`Admin::list_groups`] and [`Admin::group_lag`].
    pub async fn all_groups_lag(&self) -> Result<Vec<GroupLag>> {
        let groups: Vec<String> = self
            .list_groups()
            .await?
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        self.lag_of(&groups).await
    }

    /// [`Admin::group_lag`] of a group already described (by [`Admin::describe_group`]): its
    /// members' assignments are taken from `description` instead of asking again.
    ///
    /// # Errors
    /// As [`Admin::committed_offsets`] and [`Admin::end_offsets`].
    pub async fn described_group_lag(&self, description: &GroupDescription) -> Result<GroupLag> {
        let group = &description.group_id;
        let committed = self.committed_offsets(group, None).await?;
        self.one_group_lag(group, committed, owners(description))
            .await
    }

    /// One group's lag from its committed offsets and owners.
    async fn one_group_lag(
        &self,
        group: &String,
        committed: Committed,
        owners: Owners,
    ) -> Result<GroupLag> {
        let mut all = self.lag_from(vec![(group, committed, owners)]).await?;
        Ok(all.pop().unwrap_or_else(|| GroupLag {
            group_id: group.clone(),
            partitions: Vec::new(),
        }))
    }

    async fn lag_of(&self, groups: &[String]) -> Result<Vec<GroupLag>> {
        let mut found = Vec::with_capacity(groups.len());
        for g in groups {
            let committed = self.committed_offsets(g, None).await?;
            let owners = self.assigned_in(g).await?;
            found.push((g, committed, owners));
        }
        self.lag_from(found).await
    }

    /// Each group's lag from its committed offsets and owners; end offsets asked once.
    async fn lag_from(&self, found: Vec<(&String, Committed, Owners)>) -> Result<Vec<GroupLag>> {
        let wanted: BTreeSet<&Partition> = found
            .iter()
            .flat_map(|(_, c, o)| c.keys().chain(o.keys()))
            .collect();
        // Only partitions that exist: a committed offset may outlive its topic.
        let mut topics: Vec<&str> = wanted.iter().map(|(t, _)| t.as_str()).collect();
        topics.dedup();
        let meta = if topics.is_empty() {
            self.client().metadata()
        } else {
            self.client().refresh_metadata(&topics).await?
        };
        let existing: Vec<Partition> = wanted
            .into_iter()
            .filter(|(t, p)| {
                meta.topics.get(t).is_some_and(|m| m.error.is_ok())
                    && meta.partition(t, *p).is_some()
            })
            .cloned()
            .collect();
        let ends = self.end_offsets(&existing).await?;
        Ok(found
            .into_iter()
            .map(|(g, committed, mut owners)| {
                let rows: BTreeSet<Partition> =
                    committed.keys().chain(owners.keys()).cloned().collect();
                GroupLag {
                    group_id: g.clone(),
                    partitions: rows
                        .into_iter()
                        .map(|key| {
                            let committed = committed.get(&key).copied();
                            let end_offset = ends.get(&key).copied();
                            let member = owners.remove(&key);
                            let (topic, partition) = key;
                            PartitionLag {
                                lag: end_offset.zip(committed).map(|(e, c)| (e - c).max(0)),
                                topic,
                                partition,
                                committed,
                                end_offset,
                                member,
                            }
                        })
                        .collect(),
                }
            })
            .collect())
    }

    /// Who in a consumer group is assigned which partition ([`Admin::describe_group`]: classic
    /// and KIP-848 groups). Groups of other protocol types (Kafka Connect, ...), empty and
    /// unknown groups have none.
    async fn assigned_in(&self, group: &str) -> Result<Owners> {
        let description = match self.describe_group(group).await {
            Ok(d) => d,
            // DescribeGroups v6 (Kafka 4.0, KIP-1043) reports an unknown group this way;
            // earlier versions as state Dead.
            Err(e) if e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND) => return Ok(BTreeMap::new()),
            Err(e) => return Err(e),
        };
        Ok(owners(&description))
    }
}

/// Committed offsets of one group, by partition.
type Committed = BTreeMap<Partition, i64>;
/// The member assigned each partition.
type Owners = BTreeMap<Partition, LagMember>;

/// Who in a described consumer group is assigned which partition. Groups of other protocol types
/// (Kafka Connect, ...) have none; a member whose assignment cannot be read is logged (WARN).
fn owners(description: &GroupDescription) -> Owners {
    let mut owners = BTreeMap::new();
    if description.protocol_type != "consumer" {
        return owners;
    }
    for m in &description.members {
        match m.assigned_partitions() {
            Ok(partitions) => {
                for p in partitions {
                    owners.insert(
                        p,
                        LagMember {
                            member_id: m.member_id.clone(),
                            client_id: m.client_id.clone(),
                            client_host: m.client_host.clone(),
                        },
                    );
                }
            }
            Err(e) => tracing::warn!(
                group = %description.group_id, member = %m.member_id, error = %e,
                "cannot read a group member's assignment; its partitions are listed only where committed"
            ),
        }
    }
    owners
}
