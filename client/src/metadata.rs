//! The client's picture of the cluster: brokers, topics, partitions, leaders and leader epochs,
//! built from Metadata responses.

use std::collections::{BTreeMap, HashMap};

use kafkawire_protocol::messages::metadata_response::MetadataResponse;
use kafkawire_protocol::{ErrorCode, Uuid};

/// A broker as Metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerMetadata {
    /// Node id.
    pub node_id: i32,
    /// Advertised host.
    pub host: String,
    /// Advertised port.
    pub port: i32,
    /// Rack, if set.
    pub rack: Option<String>,
}

impl BrokerMetadata {
    /// The advertised `host:port`.
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

/// One partition of a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionMetadata {
    /// Partition index.
    pub partition: i32,
    /// Leader's node id (-1 when there is none).
    pub leader: i32,
    /// Leader epoch (-1 when the broker does not send it, Metadata v6 and older).
    pub leader_epoch: i32,
    /// Replica node ids.
    pub replicas: Vec<i32>,
    /// In-sync replica node ids.
    pub isr: Vec<i32>,
    /// Offline replica node ids.
    pub offline_replicas: Vec<i32>,
    /// The partition's error, e.g. LEADER_NOT_AVAILABLE.
    pub error: ErrorCode,
}

/// One topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicMetadata {
    /// Name.
    pub name: String,
    /// Topic id (KIP-516), zero when the broker does not send it.
    pub topic_id: Uuid,
    /// Internal topic (e.g. `__consumer_offsets`).
    pub is_internal: bool,
    /// The topic's error, e.g. UNKNOWN_TOPIC_OR_PARTITION.
    pub error: ErrorCode,
    /// Partitions by index.
    pub partitions: Vec<PartitionMetadata>,
}

/// A snapshot of cluster metadata. Cheap to share (`Arc`); a refresh builds a new one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterMetadata {
    /// Cluster id, if sent (Metadata v2+).
    pub cluster_id: Option<String>,
    /// Controller node id, -1 if unknown.
    pub controller_id: i32,
    /// Brokers by node id.
    pub brokers: BTreeMap<i32, BrokerMetadata>,
    /// Topics by name.
    pub topics: BTreeMap<String, TopicMetadata>,
}

impl ClusterMetadata {
    /// Builds the snapshot from a Metadata response.
    pub fn from_response(r: &MetadataResponse) -> ClusterMetadata {
        let brokers = r
            .brokers
            .iter()
            .map(|b| {
                (
                    b.node_id,
                    BrokerMetadata {
                        node_id: b.node_id,
                        host: b.host.clone(),
                        port: b.port,
                        rack: b.rack.clone(),
                    },
                )
            })
            .collect();
        let topics = r
            .topics
            .iter()
            .filter_map(|t| {
                let name = t.name.clone()?;
                let mut partitions: Vec<PartitionMetadata> = t
                    .partitions
                    .iter()
                    .map(|p| PartitionMetadata {
                        partition: p.partition_index,
                        leader: p.leader_id,
                        leader_epoch: p.leader_epoch,
                        replicas: p.replica_nodes.clone(),
                        isr: p.isr_nodes.clone(),
                        offline_replicas: p.offline_replicas.clone(),
                        error: ErrorCode(p.error_code),
                    })
                    .collect();
                partitions.sort_by_key(|p| p.partition);
                Some((
                    name.clone(),
                    TopicMetadata {
                        name,
                        topic_id: t.topic_id,
                        is_internal: t.is_internal,
                        error: ErrorCode(t.error_code),
                        partitions,
                    },
                ))
            })
            .collect();
        ClusterMetadata {
            cluster_id: r.cluster_id.clone(),
            controller_id: r.controller_id,
            brokers,
            topics,
        }
    }

    /// Merges a response that covered only some topics: its brokers replace ours, its topics
    /// replace ours of the same name, other topics are kept.
    pub fn merge(&self, newer: ClusterMetadata) -> ClusterMetadata {
        let mut topics = self.topics.clone();
        topics.extend(newer.topics);
        ClusterMetadata { topics, ..newer }
    }

    /// The partition's metadata.
    pub fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionMetadata> {
        self.topics
            .get(topic)?
            .partitions
            .iter()
            .find(|p| p.partition == partition)
    }

    /// Number of partitions of `topic`, if known.
    pub fn partition_count(&self, topic: &str) -> Option<usize> {
        self.topics.get(topic).map(|t| t.partitions.len())
    }

    /// Topic names by topic id (for Fetch v13+, which names topics by id).
    pub fn topic_names_by_id(&self) -> HashMap<Uuid, String> {
        self.topics
            .values()
            .filter(|t| t.topic_id != Uuid::ZERO)
            .map(|t| (t.topic_id, t.name.clone()))
            .collect()
    }
}
