//! The cluster model shared by the mock brokers: brokers, topics, partition logs, scripts.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::{ErrorCode, Uuid};

use super::handlers::sasl::SaslSetup;
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
/// Offset of producerId (int64).
const PRODUCER_ID_AT: usize = 43;
/// Offset of producerEpoch (int16).
const PRODUCER_EPOCH_AT: usize = 51;
/// Offset of baseSequence (int32).
const BASE_SEQUENCE_AT: usize = 53;
/// Offset of the record count (int32).
const RECORD_COUNT_AT: usize = 57;
/// Batches remembered per producer and partition for duplicate detection (as Kafka).
const RECENT_BATCHES: usize = 5;

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
    /// Every magic-2 batch a Produce request carried, as received (before any check), with its
    /// topic and partition.
    pub(crate) produced: Vec<(String, i32, Bytes)>,
    next_topic_id: u64,
    pub(crate) next_producer_id: i64,
    /// Producer id and epoch by transactional id.
    pub(crate) transactional: HashMap<String, (i64, i16)>,
    /// Latest epoch issued (InitProducerId) or fenced per producer id. Only the batches of these
    /// producer ids get the idempotence checks.
    pub(crate) producers: HashMap<i64, i16>,
    /// Producer ids fenced by [`super::MockCluster::fence_producer`], with the first epoch that
    /// is not fenced.
    pub(crate) fenced: HashMap<i64, i16>,
    /// Committed offsets by (group, topic, partition): offset, leader epoch, metadata.
    pub(crate) committed: HashMap<CommitKey, CommitValue>,
    /// SASL for connections accepted from now on ([`super::MockCluster::enable_sasl`]).
    pub(crate) sasl: Option<Arc<SaslSetup>>,
    /// The extensions of every OAUTHBEARER initial response received, in arrival order.
    pub(crate) oauth_extensions: Vec<BTreeMap<String, String>>,
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
    /// Successful SASL authentications and re-authentications.
    pub(crate) authentications: usize,
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
    /// Idempotent producer state by producer id (KIP-98).
    pub(crate) producers: HashMap<i64, ProducerEntry>,
}

/// A producer's state on one partition: its epoch and its last appended batches.
#[derive(Debug, Clone, Default)]
pub(crate) struct ProducerEntry {
    pub(crate) epoch: i16,
    /// (first sequence, last sequence, base offset) of the last appended batches, oldest first.
    pub(crate) recent: VecDeque<(i32, i32, i64)>,
}

impl ProducerEntry {
    /// The last sequence appended.
    pub(crate) fn last_sequence(&self) -> Option<i32> {
        self.recent.back().map(|b| b.1)
    }
}

/// The producer fields of a batch header.
#[derive(Debug, Clone, Copy)]
struct BatchProducer {
    id: i64,
    epoch: i16,
    first_seq: i32,
    last_seq: i32,
}

/// `seq + delta`, wrapping from `i32::MAX` to 0 (KIP-98).
pub(crate) fn add_sequence(seq: i32, delta: i32) -> i32 {
    ((i64::from(seq) + i64::from(delta)) % (i64::from(i32::MAX) + 1)) as i32
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

impl PartitionModel {
    /// Stores one batch at the high watermark (base offset and leader epoch rewritten); returns
    /// its base offset.
    fn push_batch(&mut self, bytes: &[u8], last_delta: i32, max_timestamp: i64) -> i64 {
        let mut bytes = bytes.to_vec();
        let base = self.high_watermark;
        bytes[..8].copy_from_slice(&base.to_be_bytes());
        bytes[LEADER_EPOCH_AT..LEADER_EPOCH_AT + 4]
            .copy_from_slice(&self.leader_epoch.to_be_bytes());
        let last_offset = base + i64::from(last_delta);
        self.batches.push(StoredBatch {
            base_offset: base,
            last_offset,
            max_timestamp,
            leader_epoch: self.leader_epoch,
            bytes: Bytes::from(bytes),
        });
        self.high_watermark = last_offset + 1;
        base
    }

    /// Records stored (from the batch headers' record counts).
    pub(crate) fn record_count(&self) -> usize {
        self.batches
            .iter()
            .map(|b| {
                b.bytes
                    .get(RECORD_COUNT_AT..RECORD_COUNT_AT + 4)
                    .and_then(|c| c.try_into().ok())
                    .map_or(0, |c| i32::from_be_bytes(c).max(0) as usize)
            })
            .sum()
    }
}

/// Outcome of the sequence check of one batch.
enum Check {
    /// Written before at this base offset: answer success, append nothing.
    Duplicate(i64),
    Append,
    Error(i16),
}

/// Kafka's producer state check for one batch (KIP-98; `ProducerAppendInfo`). A producer with no
/// state on the partition must start at sequence 0, else `OUT_OF_ORDER_SEQUENCE_NUMBER` (what
/// Kafka before 2.5 answered `UNKNOWN_PRODUCER_ID` for).
fn check_sequence(entry: Option<&ProducerEntry>, b: BatchProducer) -> Check {
    let Some(entry) = entry else {
        return if b.first_seq == 0 {
            Check::Append
        } else {
            Check::Error(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0)
        };
    };
    if b.epoch < entry.epoch {
        return Check::Error(ErrorCode::INVALID_PRODUCER_EPOCH.0);
    }
    if b.epoch > entry.epoch {
        return if b.first_seq == 0 {
            Check::Append
        } else {
            Check::Error(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0)
        };
    }
    if let Some((_, _, offset)) = entry
        .recent
        .iter()
        .find(|(first, last, _)| *first == b.first_seq && *last == b.last_seq)
    {
        return Check::Duplicate(*offset);
    }
    let in_sequence = entry
        .last_sequence()
        .is_none_or(|last| add_sequence(last, 1) == b.first_seq);
    if in_sequence {
        Check::Append
    } else {
        Check::Error(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0)
    }
}

/// The producer fields of a batch (header already validated by [`split_batches`]).
fn batch_producer(bytes: &[u8], last_delta: i32) -> Option<BatchProducer> {
    let id = i64::from_be_bytes(
        bytes
            .get(PRODUCER_ID_AT..PRODUCER_ID_AT + 8)?
            .try_into()
            .ok()?,
    );
    let epoch = i16::from_be_bytes(
        bytes
            .get(PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2)?
            .try_into()
            .ok()?,
    );
    let first_seq = i32::from_be_bytes(
        bytes
            .get(BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4)?
            .try_into()
            .ok()?,
    );
    Some(BatchProducer {
        id,
        epoch,
        first_seq,
        last_seq: add_sequence(first_seq.max(0), last_delta),
    })
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
                    authentications: 0,
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
            produced: Vec::new(),
            transactional: HashMap::new(),
            producers: HashMap::new(),
            fenced: HashMap::new(),
            committed: HashMap::new(),
            sasl: None,
            oauth_extensions: Vec::new(),
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
                producers: HashMap::new(),
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
            p.push_batch(bytes, last_delta, max_timestamp);
        }
        Ok(first)
    }

    /// Appends whole magic-2 batches to a partition as its leader does for a Produce request:
    /// like [`append`](Self::append), plus the idempotent producer checks (KIP-98) for batches
    /// whose producer id this cluster issued. Returns the base offset of the first batch (for a
    /// duplicate, the offset it was first written at). Nothing is appended if a batch fails.
    pub(crate) fn produce(&mut self, topic: &str, partition: i32, data: &[u8]) -> Result<i64, i16> {
        let issued = &self.producers;
        let fenced = &self.fenced;
        let produced = &mut self.produced;
        let p = self
            .topics
            .get_mut(topic)
            .and_then(|t| t.partitions.get_mut(usize::try_from(partition).ok()?))
            .ok_or(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0)?;
        let batches = split_batches(data).ok_or(ErrorCode::CORRUPT_MESSAGE.0)?;
        for (bytes, _, _) in &batches {
            produced.push((topic.to_owned(), partition, Bytes::copy_from_slice(bytes)));
        }
        // Check every batch first (against a copy of the producer state), then append.
        let mut state = p.producers.clone();
        let mut plan = Vec::with_capacity(batches.len());
        for (bytes, last_delta, _) in &batches {
            let prod = batch_producer(bytes, *last_delta)
                .filter(|b| b.id >= 0 && issued.contains_key(&b.id));
            let Some(prod) = prod else {
                plan.push(None);
                continue;
            };
            if fenced.get(&prod.id).is_some_and(|min| prod.epoch < *min) {
                return Err(ErrorCode::PRODUCER_FENCED.0);
            }
            match check_sequence(state.get(&prod.id), prod) {
                Check::Duplicate(offset) => plan.push(Some((prod, Some(offset)))),
                Check::Append => {
                    let entry = state.entry(prod.id).or_default();
                    if entry.epoch != prod.epoch {
                        entry.recent.clear();
                    }
                    entry.epoch = prod.epoch;
                    // The offset is filled in below; here only the sequence matters.
                    entry.recent.push_back((prod.first_seq, prod.last_seq, -1));
                    if entry.recent.len() > RECENT_BATCHES {
                        entry.recent.pop_front();
                    }
                    plan.push(Some((prod, None)));
                }
                Check::Error(code) => return Err(code),
            }
        }
        let mut first = None;
        for ((bytes, last_delta, max_timestamp), step) in batches.into_iter().zip(plan) {
            let base = match step {
                Some((_, Some(original))) => original,
                Some((prod, None)) => {
                    let base = p.push_batch(bytes, last_delta, max_timestamp);
                    let entry = p.producers.entry(prod.id).or_default();
                    if entry.epoch != prod.epoch {
                        entry.recent.clear();
                    }
                    entry.epoch = prod.epoch;
                    entry
                        .recent
                        .push_back((prod.first_seq, prod.last_seq, base));
                    if entry.recent.len() > RECENT_BATCHES {
                        entry.recent.pop_front();
                    }
                    base
                }
                None => p.push_batch(bytes, last_delta, max_timestamp),
            };
            first.get_or_insert(base);
        }
        Ok(first.unwrap_or(p.high_watermark))
    }

    /// Issues producer id `id` at `epoch` (InitProducerId): its batches are now checked.
    pub(crate) fn issue_producer(&mut self, id: i64, epoch: i16) {
        self.producers.insert(id, epoch);
    }

    /// Fences every epoch of `id` issued or used so far; returns the first epoch still allowed.
    pub(crate) fn fence_producer(&mut self, id: i64) -> i16 {
        let seen = self
            .topics
            .values()
            .flat_map(|t| t.partitions.iter())
            .filter_map(|p| p.producers.get(&id).map(|e| e.epoch))
            .max();
        let latest = self.producers.get(&id).copied().max(seen).unwrap_or(-1);
        let next = latest.saturating_add(1).max(0);
        self.producers.insert(id, next);
        self.fenced.insert(id, next);
        for v in self.transactional.values_mut() {
            if v.0 == id {
                v.1 = next;
            }
        }
        next
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

    /// `batch(records, 0)` from producer `id` at `epoch` starting at sequence `seq`.
    fn idem(records: i32, id: i64, epoch: i16, seq: i32) -> Vec<u8> {
        let mut b = batch(records, 0);
        b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&id.to_be_bytes());
        b[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&epoch.to_be_bytes());
        b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&seq.to_be_bytes());
        b
    }

    const OUT_OF_ORDER: i16 = ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER.0;

    #[test]
    fn idempotent_produce_detects_duplicates_gaps_and_stale_epochs() {
        let mut s = State::new(&["127.0.0.1:1".parse().unwrap()]);
        s.create_topic("t", 2, None);
        s.issue_producer(1000, 0);
        // A new producer must start at 0.
        assert_eq!(s.produce("t", 0, &idem(2, 1000, 0, 5)), Err(OUT_OF_ORDER));
        assert_eq!(s.produce("t", 0, &idem(3, 1000, 0, 0)), Ok(0));
        assert_eq!(s.produce("t", 0, &idem(2, 1000, 0, 3)), Ok(3));
        // A retry of either batch is a duplicate: its first offset, nothing appended.
        assert_eq!(s.produce("t", 0, &idem(3, 1000, 0, 0)), Ok(0));
        assert_eq!(s.produce("t", 0, &idem(2, 1000, 0, 3)), Ok(3));
        assert_eq!(s.partition("t", 0).unwrap().high_watermark, 5);
        assert_eq!(s.partition("t", 0).unwrap().record_count(), 5);
        // A gap, an overlap that is not an earlier batch, and a repeat of the last sequence.
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 0, 6)), Err(OUT_OF_ORDER));
        assert_eq!(s.produce("t", 0, &idem(2, 1000, 0, 4)), Err(OUT_OF_ORDER));
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 0, 5)), Ok(5));
        // Only the last 5 batches are remembered.
        for seq in 6..11 {
            assert_eq!(
                s.produce("t", 0, &idem(1, 1000, 0, seq)),
                Ok(i64::from(seq))
            );
        }
        assert_eq!(
            s.produce("t", 0, &idem(1, 1000, 0, 6)),
            Ok(6),
            "still known"
        );
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 0, 5)), Err(OUT_OF_ORDER));
        // A higher epoch starts at 0; then the old epoch is stale.
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 1, 11)), Err(OUT_OF_ORDER));
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 1, 0)), Ok(11));
        assert_eq!(
            s.produce("t", 0, &idem(1, 1000, 0, 11)),
            Err(ErrorCode::INVALID_PRODUCER_EPOCH.0)
        );
        // Other partitions have their own state.
        assert_eq!(s.produce("t", 1, &idem(1, 1000, 1, 0)), Ok(0));
        // Ids never issued and -1 are not checked.
        assert_eq!(s.produce("t", 1, &idem(1, 7, 0, 9)), Ok(1));
        assert_eq!(s.produce("t", 1, &idem(1, 7, 0, 9)), Ok(2));
        assert_eq!(s.produce("t", 1, &idem(1, -1, -1, -1)), Ok(3));
        // Fencing.
        assert_eq!(s.fence_producer(1000), 2);
        assert_eq!(
            s.produce("t", 1, &idem(1, 1000, 1, 1)),
            Err(ErrorCode::PRODUCER_FENCED.0)
        );
        assert_eq!(s.produce("t", 1, &idem(1, 1000, 2, 0)), Ok(4));
    }

    #[test]
    fn sequences_wrap_at_i32_max() {
        let mut s = State::new(&["127.0.0.1:1".parse().unwrap()]);
        s.create_topic("t", 1, None);
        s.issue_producer(1000, 0);
        assert_eq!(add_sequence(i32::MAX, 1), 0);
        assert_eq!(add_sequence(i32::MAX - 1, 3), 1);
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 0, 0)), Ok(0));
        // Make the state end just below the wrap.
        let e = s
            .partition_mut("t", 0)
            .unwrap()
            .producers
            .get_mut(&1000)
            .unwrap();
        e.recent.clear();
        e.recent.push_back((i32::MAX - 3, i32::MAX - 2, 0));
        assert_eq!(s.produce("t", 0, &idem(3, 1000, 0, i32::MAX - 1)), Ok(1));
        let e = &s.partition("t", 0).unwrap().producers[&1000];
        assert_eq!(e.last_sequence(), Some(0));
        assert_eq!(s.produce("t", 0, &idem(1, 1000, 0, 1)), Ok(4));
        assert_eq!(
            s.produce("t", 0, &idem(3, 1000, 0, i32::MAX - 1)),
            Ok(1),
            "duplicate"
        );
    }

    #[test]
    fn a_failed_batch_appends_nothing_of_the_request() {
        let mut s = State::new(&["127.0.0.1:1".parse().unwrap()]);
        s.create_topic("t", 1, None);
        s.issue_producer(1000, 0);
        let mut two = idem(2, 1000, 0, 0);
        two.extend(idem(1, 1000, 0, 7));
        assert_eq!(s.produce("t", 0, &two), Err(OUT_OF_ORDER));
        assert_eq!(s.partition("t", 0).unwrap().high_watermark, 0);
        let mut two = idem(2, 1000, 0, 0);
        two.extend(idem(1, 1000, 0, 2));
        assert_eq!(s.produce("t", 0, &two), Ok(0));
        assert_eq!(s.partition("t", 0).unwrap().high_watermark, 3);
        assert_eq!(
            s.partition("t", 0).unwrap().producers[&1000].last_sequence(),
            Some(2)
        );
    }
}
