//! The cluster model shared by the mock brokers: brokers, topics, partition logs, scripts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;

use bytes::Bytes;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::{ErrorCode, Uuid};

use super::{Action, RequestRecord};

/// Bytes of a magic-2 batch header (base offset through record count).
const BATCH_HEADER_LEN: usize = 61;
/// Offset of the batch length field (int32, counts the bytes after it).
const LENGTH_AT: usize = 8;
/// Offset of the partition leader epoch (int32).
const LEADER_EPOCH_AT: usize = 12;
/// Offset of the magic byte.
const MAGIC_AT: usize = 16;
/// Offset of lastOffsetDelta (int32).
const LAST_OFFSET_DELTA_AT: usize = 23;
/// Offset of maxTimestamp (int64).
const MAX_TIMESTAMP_AT: usize = 35;

/// Everything the brokers share, behind one mutex.
pub(crate) struct State {
    pub(crate) cluster_id: String,
    pub(crate) controller_id: i32,
    pub(crate) coordinator_id: i32,
    pub(crate) brokers: Vec<BrokerModel>,
    pub(crate) topics: BTreeMap<String, TopicModel>,
    /// Advertised versions by API key.
    pub(crate) api_versions: BTreeMap<i16, (i16, i16)>,
    pub(crate) auto_create: Option<i32>,
    /// Queued actions by (broker or any, API key).
    pub(crate) scripts: HashMap<(Option<i32>, i16), VecDeque<Action>>,
    pub(crate) requests: Vec<RequestRecord>,
    next_topic_id: u64,
    pub(crate) next_producer_id: i64,
    /// Producer id and epoch by transactional id.
    pub(crate) transactional: HashMap<String, (i64, i16)>,
    /// Committed offsets by (group, topic, partition): offset, leader epoch, metadata.
    pub(crate) committed: HashMap<CommitKey, CommitValue>,
}

/// Committed offset key: group, topic, partition.
pub(crate) type CommitKey = (String, String, i32);
/// Committed offset: offset, leader epoch, metadata.
pub(crate) type CommitValue = (i64, i32, Option<String>);

/// One broker of the model.
pub(crate) struct BrokerModel {
    pub(crate) addr: SocketAddr,
    pub(crate) advertised: Option<(String, i32)>,
    pub(crate) accepted: usize,
    pub(crate) open: usize,
}

/// One topic.
pub(crate) struct TopicModel {
    pub(crate) id: Uuid,
    /// Topic-level Metadata error.
    pub(crate) error: i16,
    pub(crate) partitions: Vec<PartitionModel>,
}

/// One partition and its log.
pub(crate) struct PartitionModel {
    pub(crate) leader: i32,
    pub(crate) leader_epoch: i32,
    /// Metadata error.
    pub(crate) error: i16,
    pub(crate) log_start: i64,
    pub(crate) high_watermark: i64,
    pub(crate) batches: Vec<StoredBatch>,
}

/// A stored batch.
pub(crate) struct StoredBatch {
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) max_timestamp: i64,
    /// Partition leader epoch written into the batch.
    pub(crate) leader_epoch: i32,
    pub(crate) bytes: Bytes,
}

impl State {
    pub(crate) fn new(addrs: &[SocketAddr]) -> State {
        State {
            cluster_id: "mock-cluster".to_owned(),
            controller_id: 0,
            coordinator_id: 0,
            brokers: addrs
                .iter()
                .map(|a| BrokerModel {
                    addr: *a,
                    advertised: None,
                    accepted: 0,
                    open: 0,
                })
                .collect(),
            topics: BTreeMap::new(),
            api_versions: ApiKey::ALL
                .iter()
                .map(|k| (*k as i16, k.versions()))
                .collect(),
            auto_create: None,
            scripts: HashMap::new(),
            requests: Vec::new(),
            next_topic_id: 1,
            next_producer_id: 1000,
            transactional: HashMap::new(),
            committed: HashMap::new(),
        }
    }

    /// Creates (or replaces) a topic; `leaders[p]` overrides partition `p`'s leader.
    pub(crate) fn create_topic(&mut self, name: &str, partitions: i32, leaders: Option<Vec<i32>>) {
        let n = self.brokers.len().max(1) as i32;
        let id = Uuid::from_u64_pair(
            0x6d6f_636b_0000_0000 | self.next_topic_id,
            self.next_topic_id,
        );
        self.next_topic_id += 1;
        let partitions = (0..partitions.max(0))
            .map(|p| PartitionModel {
                leader: leaders
                    .as_ref()
                    .and_then(|l| l.get(p as usize).copied())
                    .unwrap_or(p % n),
                leader_epoch: 0,
                error: 0,
                log_start: 0,
                high_watermark: 0,
                batches: Vec::new(),
            })
            .collect();
        self.topics.insert(
            name.to_owned(),
            TopicModel {
                id,
                error: 0,
                partitions,
            },
        );
    }

    pub(crate) fn topic_by_id(&self, id: Uuid) -> Option<(&String, &TopicModel)> {
        self.topics.iter().find(|(_, t)| t.id == id)
    }

    pub(crate) fn partition(&self, topic: &str, partition: i32) -> Option<&PartitionModel> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)
    }

    pub(crate) fn partition_mut(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> Option<&mut PartitionModel> {
        self.topics
            .get_mut(topic)?
            .partitions
            .get_mut(usize::try_from(partition).ok()?)
    }

    pub(crate) fn partition_mut_or_panic(
        &mut self,
        topic: &str,
        partition: i32,
    ) -> &mut PartitionModel {
        match self.partition_mut(topic, partition) {
            Some(p) => p,
            None => panic!("mock cluster has no partition {topic}-{partition}"),
        }
    }

    pub(crate) fn broker_mut_or_panic(&mut self, id: i32) -> &mut BrokerModel {
        match usize::try_from(id)
            .ok()
            .and_then(|i| self.brokers.get_mut(i))
        {
            Some(b) => b,
            None => panic!("mock cluster has no broker {id}"),
        }
    }

    /// Advertised host and port of broker `id` (`("", -1)` if unknown).
    pub(crate) fn advertised(&self, id: i32) -> (String, i32) {
        match usize::try_from(id).ok().and_then(|i| self.brokers.get(i)) {
            Some(b) => match &b.advertised {
                Some((h, p)) => (h.clone(), *p),
                None => (b.addr.ip().to_string(), i32::from(b.addr.port())),
            },
            None => (String::new(), -1),
        }
    }

    /// Appends whole magic-2 batches to a partition; returns the first base offset. The error is
    /// an error code.
    pub(crate) fn append(&mut self, topic: &str, partition: i32, data: &[u8]) -> Result<i64, i16> {
        let p = self
            .partition_mut(topic, partition)
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)?;
        let batches = split_batches(data).ok_or(ErrorCode::CORRUPT_MESSAGE.0)?;
        let first = p.high_watermark;
        for (bytes, last_delta, max_timestamp) in batches {
            let mut bytes = bytes.to_vec();
            let base = p.high_watermark;
            bytes[..8].copy_from_slice(&base.to_be_bytes());
            bytes[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
                .copy_from_slice(&p.leader_epoch.to_be_bytes());
            let last_offset = base + i64::from(last_delta);
            p.batches.push(StoredBatch {
                base_offset: base,
                last_offset,
                max_timestamp,
                leader_epoch: p.leader_epoch,
                bytes: Bytes::from(bytes),
            });
            p.high_watermark = last_offset + 1;
        }
        Ok(first)
    }

    /// Takes the next scripted action for `key` on `broker`.
    pub(crate) fn next_action(&mut self, broker: i32, key: ApiKey) -> Option<Action> {
        for scope in [Some(broker), None] {
            if let Some(q) = self.scripts.get_mut(&(scope, key as i16))
                && let Some(a) = q.pop_front()
            {
                if q.is_empty() {
                    self.scripts.remove(&(scope, key as i16));
                }
                return Some(a);
            }
        }
        None
    }
}

/// Splits `data` into magic-2 batches: (bytes, lastOffsetDelta, maxTimestamp). `None` when the
/// data is empty, not whole batches, or not magic 2.
fn split_batches(data: &[u8]) -> Option<Vec<(&[u8], i32, i64)>> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        if rest.len() < BATCH_HEADER_LEN {
            return None;
        }
        let len = i32::from_be_bytes(rest[LENGTH_AT..LENGTH_AT + 4].try_into().ok()?);
        let total = usize::try_from(len).ok()?.checked_add(LENGTH_AT + 4)?;
        if total < BATCH_HEADER_LEN || total > rest.len() || rest[MAGIC_AT] != 2 {
            return None;
        }
        let at = LAST_OFFSET_DELTA_AT;
        let last_delta = i32::from_be_bytes(rest[at..at + 4].try_into().ok()?);
        let at = MAX_TIMESTAMP_AT;
        let max_timestamp = i64::from_be_bytes(rest[at..at + 8].try_into().ok()?);
        if last_delta < 0 {
            return None;
        }
        out.push((&rest[..total], last_delta, max_timestamp));
        rest = &rest[total..];
    }
    if out.is_empty() { None } else { Some(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(records: i32, extra: usize) -> Vec<u8> {
        let mut b = vec![0u8; BATCH_HEADER_LEN + extra];
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[16] = 2;
        b[23..27].copy_from_slice(&(records - 1).to_be_bytes());
        b[57..61].copy_from_slice(&records.to_be_bytes());
        b
    }

    #[test]
    fn appends_assign_offsets_and_reject_garbage() {
        let mut s = State::new(&["127.0.0.1:1".parse().unwrap()]);
        s.create_topic("t", 1, None);
        let mut two = batch(3, 5);
        two.extend(batch(2, 0));
        assert_eq!(s.append("t", 0, &two), Ok(0));
        assert_eq!(s.append("t", 0, &batch(1, 1)), Ok(5));
        let p = s.partition("t", 0).unwrap();
        assert_eq!(p.high_watermark, 6);
        let bases: Vec<i64> = p
            .batches
            .iter()
            .map(|b| i64::from_be_bytes(b.bytes[..8].try_into().unwrap()))
            .collect();
        assert_eq!(bases, vec![0, 3, 5]);
        assert_eq!(s.append("t", 0, &[]), Err(2));
        assert_eq!(s.append("t", 0, &batch(1, 0)[..40]), Err(2));
        let mut trailing = batch(1, 0);
        trailing.push(0);
        assert_eq!(s.append("t", 0, &trailing), Err(2));
        let mut magic1 = batch(1, 0);
        magic1[16] = 1;
        assert_eq!(s.append("t", 0, &magic1), Err(2));
        assert_eq!(s.append("t", 1, &batch(1, 0)), Err(3));
    }
}
