//! Administrative operations: topics and offsets. More in the submodules: `cluster`
//! (DescribeCluster and the shared retry loops), `configs` (DescribeConfigs,
//! IncrementalAlterConfigs), `partitions` (CreatePartitions, DeleteRecords, ListOffsets by
//! timestamp, end offsets), `lag` (OffsetDelete, group lag).

use std::time::Duration;

use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use kafkawire_protocol::messages::delete_topics_request::{DeleteTopicState, DeleteTopicsRequest};
use kafkawire_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafkawire_protocol::messages::{ApiKey, Request};

use crate::client::Client;
use crate::error::{Error, Result};
use crate::metadata::TopicMetadata;

mod cluster;
mod configs;
mod lag;
mod partitions;

pub use cluster::ClusterDescription;
pub use configs::{
    AlterConfigOp, AlterConfigOpType, ConfigEntry, ConfigResource, ConfigResourceType, ConfigSource,
};
pub use lag::{GroupLag, LagMember, PartitionLag};
pub use partitions::{ListedOffset, NewPartitions};

/// A topic to create.
#[derive(Debug, Clone)]
pub struct NewTopic {
    /// Name.
    pub name: String,
    /// Partition count; -1 leaves it to the broker's `num.partitions` (KIP-464).
    pub partitions: i32,
    /// Replication factor; -1 leaves it to the broker's `default.replication.factor`.
    pub replication_factor: i16,
    /// Topic configs, e.g. `("retention.ms", "60000")`.
    pub configs: Vec<(String, String)>,
}

impl NewTopic {
    /// A topic with `partitions` partitions and the broker's default replication factor.
    pub fn new(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.to_owned(),
            partitions,
            replication_factor: -1,
            configs: Vec::new(),
        }
    }
}

/// Special timestamps of ListOffsets (protocol guide, ListOffsets API).
pub mod offset_spec {
    /// The next offset to be written: the high watermark (or last stable offset, for
    /// read_committed).
    pub const LATEST: i64 = -1;
    /// The log start offset.
    pub const EARLIEST: i64 = -2;
}

/// Administrative operations on a [`Client`]'s cluster.
#[derive(Debug, Clone)]
pub struct Admin {
    client: Client,
}

impl Admin {
    /// Admin operations through `client`.
    pub fn new(client: &Client) -> Admin {
        Admin {
            client: client.clone(),
        }
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    async fn controller_or_any(&self) -> Result<std::sync::Arc<crate::Connection>> {
        let meta = self.client.metadata();
        if meta.controller_id >= 0
            && meta.brokers.contains_key(&meta.controller_id)
            && let Ok(c) = self.client.broker_connection(meta.controller_id).await
        {
            return Ok(c);
        }
        self.client.any_connection().await
    }

    /// Creates topics, waiting up to `timeout` for the broker to finish.
    ///
    /// # Errors
    /// Transport errors, or the first topic's [`Error::Broker`] (e.g. TOPIC_ALREADY_EXISTS,
    /// INVALID_PARTITIONS) naming the topic.
    pub async fn create_topics(&self, topics: &[NewTopic], timeout: Duration) -> Result<()> {
        let req = CreateTopicsRequest {
            topics: topics
                .iter()
                .map(|t| CreatableTopic {
                    name: t.name.clone(),
                    num_partitions: t.partitions,
                    replication_factor: t.replication_factor,
                    configs: t
                        .configs
                        .iter()
                        .map(|(k, v)| CreatableTopicConfig {
                            name: k.clone(),
                            value: Some(v.clone()),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                })
                .collect(),
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            ..Default::default()
        };
        let conn = self.controller_or_any().await?;
        let resp = conn.send(&req).await?;
        for t in &resp.topics {
            if t.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(t.error_code),
                    CreateTopicsRequest::API_KEY,
                    Some(conn.broker()),
                    Some(&t.name),
                    None,
                    t.error_message.clone(),
                ));
            }
        }
        let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
        self.client.refresh_metadata(&names).await?;
        Ok(())
    }

    /// Deletes topics by name.
    ///
    /// # Errors
    /// Transport errors, or the first topic's [`Error::Broker`] (e.g.
    /// UNKNOWN_TOPIC_OR_PARTITION).
    pub async fn delete_topics(&self, names: &[&str], timeout: Duration) -> Result<()> {
        let conn = self.controller_or_any().await?;
        let version = conn.version_for(ApiKey::DeleteTopics)?;
        let req = DeleteTopicsRequest {
            topic_names: if version < 6 {
                names.iter().map(|n| (*n).to_owned()).collect()
            } else {
                Vec::new()
            },
            topics: if version >= 6 {
                names
                    .iter()
                    .map(|n| DeleteTopicState {
                        name: Some((*n).to_owned()),
                        ..Default::default()
                    })
                    .collect()
            } else {
                Vec::new()
            },
            timeout_ms: timeout.as_millis().min(i32::MAX as u128) as i32,
            ..Default::default()
        };
        let resp = conn.send_version(&req, version).await?;
        for r in &resp.responses {
            if r.error_code != 0 {
                return Err(Error::broker_error(
                    ErrorCode(r.error_code),
                    ApiKey::DeleteTopics,
                    Some(conn.broker()),
                    r.name.as_deref(),
                    None,
                    r.error_message.clone(),
                ));
            }
        }
        self.client.refresh_all_metadata().await?;
        Ok(())
    }

    /// Every topic of the cluster, internal ones included, sorted by name.
    ///
    /// # Errors
    /// Transport errors of the Metadata request.
    pub async fn list_topics(&self) -> Result<Vec<TopicMetadata>> {
        let m = self.client.refresh_all_metadata().await?;
        Ok(m.topics.values().cloned().collect())
    }

    /// One topic's metadata.
    ///
    /// # Errors
    /// As [`Client::topic_metadata`].
    pub async fn describe_topic(&self, name: &str) -> Result<TopicMetadata> {
        self.client.refresh_metadata(&[name]).await?;
        self.client.topic_metadata(name).await
    }

    /// The offset for `timestamp` (or [`offset_spec::LATEST`] / [`offset_spec::EARLIEST`]) of a
    /// partition, asked of its leader.
    ///
    /// Note: with `LATEST`, read-uncommitted isolation is used, so the answer is the high
    /// watermark.
    ///
    /// # Errors
    /// Transport errors, or [`Error::Broker`] with the partition's error code.
    pub async fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> Result<i64> {
        let req = ListOffsetsRequest {
            replica_id: -1,
            topics: vec![ListOffsetsTopic {
                name: topic.to_owned(),
                partitions: vec![ListOffsetsPartition {
                    partition_index: partition,
                    timestamp,
                    current_leader_epoch: -1,
                    max_num_offsets: 1,
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        };
        let leader = self.client.leader_for(topic, partition).await?;
        let resp = self.client.send_to(leader, &req).await?;
        let p = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| partition_not_answered(ApiKey::ListOffsets, None, topic, partition))?;
        if p.error_code != 0 {
            return Err(Error::broker_error(
                ErrorCode(p.error_code),
                ApiKey::ListOffsets,
                None,
                Some(topic),
                Some(partition),
                None,
            ));
        }
        // v0 answers with a list of offsets instead of one offset.
        Ok(p.old_style_offsets.first().copied().unwrap_or(p.offset))
    }
}

/// The error for a response that leaves out a partition it was asked about (retriable: the
/// outcome for that partition is unknown).
pub(crate) fn partition_not_answered(
    api: ApiKey,
    broker: Option<&str>,
    topic: &str,
    partition: i32,
) -> Error {
    Error::broker_error(
        ErrorCode::UNKNOWN_SERVER_ERROR,
        api,
        broker,
        Some(topic),
        Some(partition),
        Some("the response does not mention the partition".into()),
    )
}
