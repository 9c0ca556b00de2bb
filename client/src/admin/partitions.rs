//! Partition-level administration: adding partitions (CreatePartitions), deleting records
//! (DeleteRecords), offsets by timestamp (ListOffsets) and exact end offsets.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::time::Duration;

use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::create_partitions_request::{
    CreatePartitionsAssignment, CreatePartitionsRequest, CreatePartitionsTopic,
};
use kafkawire_protocol::messages::delete_records_request::{
    DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
};
use kafkawire_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafkawire_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafkawire_protocol::{ErrorCode, Uuid};

use super::cluster::Partition;
use crate::admin::{Admin, offset_spec, partition_not_answered};
use crate::error::{Error, Result};

/// A topic's new partition count (CreatePartitions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPartitions {
    /// The topic.
    pub topic: String,
    /// The partition count wanted, in all (not the number to add); must be above the current
    /// count.
    pub total_count: i32,
    /// The replicas (broker node ids) of each new partition, leader first; `None` lets the
    /// controller place them.
    pub assignments: Option<Vec<Vec<i32>>>,
}

impl NewPartitions {
    /// `topic` grown to `total_count` partitions, placed by the controller.
    pub fn increase_to(topic: impl Into<String>, total_count: i32) -> NewPartitions {
        NewPartitions {
            topic: topic.into(),
            total_count,
            assignments: None,
        }
    }
}

/// A partition's offset for a timestamp, as ListOffsets answers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListedOffset {
    /// The offset: for a timestamp, the first offset whose record timestamp is at or after it
    /// (-1 when there is none); for [`offset_spec::LATEST`] the high watermark, for
    /// [`offset_spec::EARLIEST`] the log start offset.
    pub offset: i64,
    /// The timestamp of the record at `offset`, in milliseconds since the epoch; -1 for the
    /// special offsets and when there is no such record (and from ListOffsets v0).
    pub timestamp: i64,
    /// The leader epoch of the record at `offset` (ListOffsets v4+), -1 when unknown.
    pub leader_epoch: i32,
}

/// The partitions of `keys` grouped by topic, in the order of each topic's first appearance.
fn by_topic<'a>(keys: impl IntoIterator<Item = &'a Partition>) -> BTreeMap<&'a str, Vec<i32>> {
    let mut out: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (t, p) in keys {
        out.entry(t.as_str()).or_default().push(*p);
    }
    out
}

/// Milliseconds for a request's `timeout_ms` field.
fn timeout_ms(timeout: Duration) -> i32 {
    timeout.as_millis().min(i32::MAX as u128) as i32
}

impl Admin {
    /// Adds partitions to topics (CreatePartitions, KIP-195; protocol guide "CreatePartitions
    /// API"), waiting up to `timeout` for the controller to create them, then refreshes the
    /// client's metadata for those topics. Records with keys may map to other partitions
    /// afterwards.
    ///
    /// Sent to the controller (else any broker); topics answered with NOT_CONTROLLER are sent
    /// again after a metadata refresh, as are all of them after a retriable transport error.
    ///
    /// # Errors
    /// The first failing topic's [`Error::Broker`] naming it: INVALID_PARTITIONS (the count is
    /// not above the current one), UNKNOWN_TOPIC_OR_PARTITION, INVALID_REPLICA_ASSIGNMENT,
    /// TOPIC_AUTHORIZATION_FAILED; [`Error::UnsupportedVersion`] from brokers without the API
    /// (before Kafka 1.0).
    pub async fn create_partitions(
        &self,
        topics: &[NewPartitions],
        timeout: Duration,
    ) -> Result<()> {
        let done: Mutex<BTreeSet<&str>> = Mutex::new(BTreeSet::new());
        let done = &done;
        self.with_controller_retries(|| async move {
            let pending: Vec<&NewPartitions> = {
                let done = done.lock().unwrap_or_else(|e| e.into_inner());
                topics
                    .iter()
                    .filter(|t| !done.contains(t.topic.as_str()))
                    .collect()
            };
            if pending.is_empty() {
                return Ok(());
            }
            let req = CreatePartitionsRequest {
                topics: pending
                    .iter()
                    .map(|t| CreatePartitionsTopic {
                        name: t.topic.clone(),
                        count: t.total_count,
                        assignments: t.assignments.as_ref().map(|a| {
                            a.iter()
                                .map(|ids| CreatePartitionsAssignment {
                                    broker_ids: ids.clone(),
                                    ..Default::default()
                                })
                                .collect()
                        }),
                        ..Default::default()
                    })
                    .collect(),
                timeout_ms: timeout_ms(timeout),
                validate_only: false,
                ..Default::default()
            };
            let conn = self.controller_or_any().await?;
            let resp = conn.send(&req).await?;
            let mut first_error = None;
            let mut not_controller = None;
            for t in &pending {
                let code = match resp.results.iter().find(|r| r.name == t.topic) {
                    Some(r) if r.error_code == 0 => {
                        done.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(t.topic.as_str());
                        continue;
                    }
                    Some(r) => (ErrorCode(r.error_code), r.error_message.clone()),
                    None => (
                        ErrorCode::UNKNOWN_SERVER_ERROR,
                        Some("the response does not mention the topic".into()),
                    ),
                };
                let e = Error::broker_error(
                    code.0,
                    ApiKey::CreatePartitions,
                    Some(conn.broker()),
                    Some(&t.topic),
                    None,
                    code.1,
                );
                if code.0 == ErrorCode::NOT_CONTROLLER {
                    not_controller.get_or_insert(e);
                } else {
                    first_error.get_or_insert(e);
                }
            }
            // A topic's own error is final; NOT_CONTROLLER sends the rest again.
            match (first_error, not_controller) {
                (Some(e), _) | (None, Some(e)) => Err(e),
                (None, None) => Ok(()),
            }
        })
        .await?;
        let names: Vec<&str> = topics.iter().map(|t| t.topic.as_str()).collect();
        self.client().refresh_metadata(&names).await?;
        Ok(())
    }

    /// Deletes the records of partitions below the given offsets (DeleteRecords, KIP-107;
    /// protocol guide "DeleteRecords API"): each partition's log start offset moves up to its
    /// offset ([`offset_spec::LATEST`], -1, means the high watermark: everything). Sent to each
    /// partition's leader, waiting up to `timeout` for the followers. Returns each partition's
    /// new low watermark (log start offset).
    ///
    /// # Errors
    /// [`Error::Broker`] naming the first failing topic and partition: OFFSET_OUT_OF_RANGE (the
    /// offset is above the high watermark), UNKNOWN_TOPIC_OR_PARTITION,
    /// POLICY_VIOLATION (a compacted topic), TOPIC_AUTHORIZATION_FAILED; the last retriable
    /// error when leadership keeps moving. Partitions answered before an error stay deleted.
    pub async fn delete_records(
        &self,
        before: &BTreeMap<(String, i32), i64>,
        timeout: Duration,
    ) -> Result<BTreeMap<(String, i32), i64>> {
        let partitions: Vec<Partition> = before.keys().cloned().collect();
        self.per_leader(partitions, |leader, parts| async move {
            let req = DeleteRecordsRequest {
                topics: by_topic(&parts)
                    .into_iter()
                    .map(|(t, ps)| DeleteRecordsTopic {
                        name: t.to_owned(),
                        partitions: ps
                            .into_iter()
                            .map(|p| DeleteRecordsPartition {
                                partition_index: p,
                                offset: before[&(t.to_owned(), p)],
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                timeout_ms: timeout_ms(timeout),
                ..Default::default()
            };
            let conn = self.client().broker_connection(leader).await?;
            let resp = conn.send(&req).await?;
            Ok(parts
                .into_iter()
                .map(|(t, p)| {
                    let r = resp
                        .topics
                        .iter()
                        .filter(|rt| rt.name == t)
                        .flat_map(|rt| rt.partitions.iter())
                        .find(|rp| rp.partition_index == p);
                    let result = match r {
                        Some(r) if r.error_code == 0 => Ok(r.low_watermark),
                        Some(r) => Err(Error::broker_error(
                            ErrorCode(r.error_code),
                            ApiKey::DeleteRecords,
                            Some(conn.broker()),
                            Some(&t),
                            Some(p),
                            Some(format!(
                                "deleting records before offset {}",
                                before[&(t.clone(), p)]
                            )),
                        )),
                        None => Err(partition_not_answered(
                            ApiKey::DeleteRecords,
                            Some(conn.broker()),
                            &t,
                            p,
                        )),
                    };
                    ((t, p), result)
                })
                .collect())
        })
        .await
    }

    /// The offset of each partition for `timestamp` (ListOffsets, KIP-79; protocol guide
    /// "ListOffsets API"): a time in milliseconds since the epoch finds the first record
    /// whose timestamp is at or after it; [`offset_spec::LATEST`] (-1) the high watermark and
    /// [`offset_spec::EARLIEST`] (-2) the log start offset. One request per partition leader
    /// (read-uncommitted), retried when leadership moves.
    ///
    /// # Errors
    /// [`Error::Broker`] naming the first failing topic and partition (e.g.
    /// UNKNOWN_TOPIC_OR_PARTITION); [`Error::UnsupportedVersion`] for a timestamp on a broker
    /// with only ListOffsets v0; the last retriable error when leadership keeps moving.
    pub async fn list_offsets(
        &self,
        partitions: &[(String, i32)],
        timestamp: i64,
    ) -> Result<BTreeMap<(String, i32), ListedOffset>> {
        self.per_leader(partitions.to_vec(), |leader, parts| async move {
            let req = ListOffsetsRequest {
                replica_id: -1,
                isolation_level: 0,
                topics: by_topic(&parts)
                    .into_iter()
                    .map(|(t, ps)| ListOffsetsTopic {
                        name: t.to_owned(),
                        partitions: ps
                            .into_iter()
                            .map(|p| ListOffsetsPartition {
                                partition_index: p,
                                timestamp,
                                current_leader_epoch: -1,
                                max_num_offsets: 1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let conn = self.client().broker_connection(leader).await?;
            let version = conn.version_for(ApiKey::ListOffsets)?;
            if version == 0 && timestamp >= 0 {
                // v0 answers with the offsets of segment starts, not of a timestamp.
                return Err(Error::UnsupportedVersion {
                    broker: conn.broker().to_owned(),
                    api: ApiKey::ListOffsets,
                    ours: (1, ApiKey::ListOffsets.versions().1),
                    theirs: conn.broker_versions(ApiKey::ListOffsets),
                });
            }
            let resp = conn.send_version(&req, version).await?;
            Ok(parts
                .into_iter()
                .map(|(t, p)| {
                    let r = resp
                        .topics
                        .iter()
                        .filter(|rt| rt.name == t)
                        .flat_map(|rt| rt.partitions.iter())
                        .find(|rp| rp.partition_index == p);
                    let result = match r {
                        Some(r) if r.error_code == 0 => Ok(if version == 0 {
                            ListedOffset {
                                offset: r.old_style_offsets.first().copied().unwrap_or(-1),
                                timestamp: -1,
                                leader_epoch: -1,
                            }
                        } else {
                            ListedOffset {
                                offset: r.offset,
                                timestamp: r.timestamp,
                                leader_epoch: if version >= 4 { r.leader_epoch } else { -1 },
                            }
                        }),
                        Some(r) => Err(Error::broker_error(
                            ErrorCode(r.error_code),
                            ApiKey::ListOffsets,
                            Some(conn.broker()),
                            Some(&t),
                            Some(p),
                            None,
                        )),
                        None => Err(partition_not_answered(
                            ApiKey::ListOffsets,
                            Some(conn.broker()),
                            &t,
                            p,
                        )),
                    };
                    ((t, p), result)
                })
                .collect())
        })
        .await
    }

    /// The high watermark (the offset the next record gets) of each partition: ListOffsets
    /// LATEST, checked against the high watermark a Fetch from that offset reports (one
    /// request of each per leader), since on some Kafka-compatible brokers ListOffsets LATEST
    /// alone is not exact. See [`Admin::high_watermark`] for one partition.
    ///
    /// # Errors
    /// As [`Admin::list_offsets`]; the Fetch's errors are ignored (its partition keeps the
    /// ListOffsets answer).
    pub async fn end_offsets(
        &self,
        partitions: &[(String, i32)],
    ) -> Result<BTreeMap<(String, i32), i64>> {
        let latest: BTreeMap<Partition, i64> = self
            .list_offsets(partitions, offset_spec::LATEST)
            .await?
            .into_iter()
            .map(|(k, v)| (k, v.offset))
            .collect();
        let mut out = latest.clone();
        let meta = self.client().metadata();
        let mut by_leader: BTreeMap<i32, Vec<&Partition>> = BTreeMap::new();
        for key in latest.keys() {
            if let Some(p) = meta.partition(&key.0, key.1).filter(|p| p.leader >= 0) {
                by_leader.entry(p.leader).or_default().push(key);
            }
        }
        let names = meta.topic_names_by_id();
        for (leader, keys) in by_leader {
            let req = FetchRequest {
                replica_id: -1,
                max_wait_ms: 1,
                min_bytes: 0,
                max_bytes: 1,
                session_epoch: -1,
                topics: by_topic(keys.iter().copied())
                    .into_iter()
                    .map(|(t, ps)| FetchTopic {
                        topic: t.to_owned(),
                        topic_id: meta.topics.get(t).map_or(Uuid::ZERO, |m| m.topic_id),
                        partitions: ps
                            .into_iter()
                            .map(|p| FetchPartition {
                                partition: p,
                                current_leader_epoch: -1,
                                fetch_offset: latest[&(t.to_owned(), p)],
                                last_fetched_epoch: -1,
                                log_start_offset: -1,
                                partition_max_bytes: 1,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let Ok(resp) = self.client().send_to(leader, &req).await else {
                continue;
            };
            for rt in &resp.responses {
                let topic = if rt.topic.is_empty() {
                    match names.get(&rt.topic_id) {
                        Some(n) => n.clone(),
                        None => continue,
                    }
                } else {
                    rt.topic.clone()
                };
                for rp in rt.partitions.iter().filter(|rp| rp.error_code == 0) {
                    if let Some(end) = out.get_mut(&(topic.clone(), rp.partition_index)) {
                        *end = (*end).max(rp.high_watermark);
                    }
                }
            }
        }
        Ok(out)
    }
}
