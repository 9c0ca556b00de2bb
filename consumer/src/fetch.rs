//! The fetch loop: one Fetch request per leader, decoding of record sets, position tracking,
//! offset-out-of-range resets that are reported, never silent.

use std::collections::{BTreeMap, HashMap};

use kafkawire_client::{Admin, Error, Result, offset_spec};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafkawire_protocol::messages::fetch_response::FetchResponse;
use kafkawire_protocol::records::{Batch, DecodeOptions, Record, RecordSet};
use kafkawire_protocol::{DecodeError, ErrorCode, Uuid};

use crate::{IsolationLevel, PartitionConsumer};

/// What to do when a partition's position is out of range (the data was deleted by retention,
/// or the offset was never written). Whatever the policy, the reset is reported in
/// [`FetchedPartition::reset`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OffsetReset {
    /// Move to the log start offset.
    #[default]
    Earliest,
    /// Move to the end of the log.
    Latest,
    /// Fail the poll with an error naming the partition and offset.
    None,
}

/// What one poll returned for one partition.
#[derive(Debug)]
pub struct FetchedPartition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The position the fetch started at: records before it (in the first batch) are skipped.
    pub fetch_offset: i64,
    /// High watermark reported by the broker.
    pub high_watermark: i64,
    /// Last stable offset reported by the broker (-1 if not sent).
    pub last_stable_offset: i64,
    /// Log start offset reported by the broker (-1 if not sent).
    pub log_start_offset: i64,
    /// Set when the position was out of range and was reset: `(old, new)` offsets.
    pub reset: Option<(i64, i64)>,
    /// The decoded batches, in offset order.
    pub batches: Vec<Batch>,
}

impl FetchedPartition {
    /// The records at or after the fetch offset, in order, skipping control records
    /// (transaction markers). Each is a borrowed view into its batch's buffer. A record that
    /// does not decode is an [`Error::CorruptRecord`] naming this partition.
    pub fn records(&self) -> impl Iterator<Item = Result<Record<'_>, Error>> + '_ {
        let from = self.fetch_offset;
        self.batches
            .iter()
            .filter(|b| !b.is_control())
            .flat_map(|b| b.records())
            .filter(move |r| r.as_ref().map_or(true, |r| r.offset() >= from))
            .map(|r| r.map_err(|source| self.corrupt(source)))
    }

    fn corrupt(&self, source: DecodeError) -> Error {
        Error::CorruptRecord {
            topic: self.topic.clone(),
            partition: self.partition,
            source,
        }
    }

    /// The batch holding `record`, to take owned `Bytes` of its key or value without copying
    /// (`batch.slice_ref(record.value().unwrap())`).
    pub fn batches(&self) -> &[Batch] {
        &self.batches
    }
}

/// What one poll returned.
#[derive(Debug, Default)]
pub struct Fetched {
    /// One entry per partition that answered without error (possibly with no records).
    pub partitions: Vec<FetchedPartition>,
}

impl Fetched {
    /// Total records (control records included) in the batches, an upper bound on what
    /// [`FetchedPartition::records`] yields.
    pub fn batch_record_count(&self) -> usize {
        self.partitions
            .iter()
            .flat_map(|p| p.batches.iter())
            .map(Batch::record_count)
            .sum()
    }
}

type Key = (String, i32);

pub(crate) async fn poll(c: &mut PartitionConsumer) -> Result<Fetched> {
    if let Some(e) = c.pending_error.take() {
        return Err(e);
    }
    let out = poll_once(c).await?;
    match c.pending_error.take() {
        Some(e)
            if out
                .partitions
                .iter()
                .all(|p| p.batches.is_empty() && p.reset.is_none()) =>
        {
            Err(e)
        }
        other => {
            c.pending_error = other;
            Ok(out)
        }
    }
}

/// Keeps the first error of a poll for later, so data already fetched is returned first.
fn defer(c: &mut PartitionConsumer, e: Error) {
    if c.pending_error.is_none() {
        c.pending_error = Some(e);
    }
}

async fn poll_once(c: &mut PartitionConsumer) -> Result<Fetched> {
    let mut by_leader: BTreeMap<i32, Vec<Key>> = BTreeMap::new();
    for key in c.assigned.keys().filter(|k| !c.paused.contains(*k)) {
        match c.client.leader_for(&key.0, key.1).await {
            Ok(l) => by_leader.entry(l).or_default().push(key.clone()),
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "no leader yet; will retry");
            }
            Err(e) => return Err(e),
        }
    }
    if by_leader.is_empty() {
        tokio::time::sleep(
            c.config
                .fetch_max_wait
                .min(std::time::Duration::from_millis(100)),
        )
        .await;
        refresh_assigned(c).await;
        return Ok(Fetched::default());
    }
    let ids = c.client.metadata().topic_names_by_id();
    let mut tasks = tokio::task::JoinSet::new();
    for (leader, keys) in by_leader {
        let req = build_request(c, &keys);
        let client = c.client.clone();
        tasks.spawn(async move { (leader, keys, client.send_to(leader, &req).await) });
    }
    let mut out = Fetched::default();
    let mut stale = false;
    while let Some(joined) = tasks.join_next().await {
        let (leader, keys, resp) =
            joined.map_err(|e| Error::Config(format!("fetch task failed: {e}")))?;
        let resp = match resp {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                tracing::debug!(leader, error = %e, "fetch failed; will retry");
                stale = true;
                continue;
            }
            Err(e) => {
                defer(c, e);
                continue;
            }
        };
        let broker = c
            .client
            .metadata()
            .brokers
            .get(&leader)
            .map(|b| b.address());
        stale |= handle_response(c, &keys, resp, &ids, broker.as_deref(), &mut out).await;
    }
    if stale {
        refresh_assigned(c).await;
    }
    Ok(out)
}

async fn refresh_assigned(c: &PartitionConsumer) {
    let mut topics: Vec<&str> = c.assigned.keys().map(|(t, _)| t.as_str()).collect();
    topics.dedup();
    if let Err(e) = c.client.refresh_metadata(&topics).await {
        tracing::debug!(error = %e, "metadata refresh failed; will retry");
    }
}

fn build_request(c: &PartitionConsumer, keys: &[Key]) -> FetchRequest {
    let meta = c.client.metadata();
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    for key in keys {
        let state = &c.assigned[key];
        topics.entry(&key.0).or_default().push(FetchPartition {
            partition: key.1,
            current_leader_epoch: -1,
            fetch_offset: state.position,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes: c.config.max_partition_fetch_bytes,
            ..Default::default()
        });
    }
    FetchRequest {
        replica_id: -1,
        max_wait_ms: c
            .config
            .fetch_max_wait
            .as_millis()
            .clamp(1, i32::MAX as u128) as i32,
        min_bytes: c.config.fetch_min_bytes,
        max_bytes: c.config.fetch_max_bytes,
        isolation_level: match c.config.isolation_level {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        },
        session_id: 0,
        session_epoch: -1,
        topics: topics
            .into_iter()
            .map(|(t, partitions)| FetchTopic {
                topic: t.to_owned(),
                topic_id: meta.topics.get(t).map_or(Uuid::ZERO, |m| m.topic_id),
                partitions,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Applies one fetch response; returns whether metadata looks stale. Errors that must reach
/// the application are deferred with [`defer`].
async fn handle_response(
    c: &mut PartitionConsumer,
    keys: &[Key],
    resp: FetchResponse,
    ids: &HashMap<Uuid, String>,
    broker: Option<&str>,
    out: &mut Fetched,
) -> bool {
    if resp.error_code != 0 {
        let e = Error::broker_error(
            ErrorCode(resp.error_code),
            ApiKey::Fetch,
            broker,
            None,
            None,
            None,
        );
        if e.is_retriable() {
            return true;
        }
        defer(c, e);
        return false;
    }
    let mut stale = false;
    let opts = DecodeOptions {
        verify_crc: c.config.check_crcs,
        ..DecodeOptions::default()
    };
    for t in resp.responses {
        let name = if t.topic.is_empty() {
            ids.get(&t.topic_id).cloned().unwrap_or_default()
        } else {
            t.topic
        };
        for p in t.partitions {
            let key = (name.clone(), p.partition_index);
            if !keys.contains(&key) {
                continue;
            }
            let Some(state) = c.assigned.get_mut(&key) else {
                continue;
            };
            let code = ErrorCode(p.error_code);
            if code == ErrorCode::OFFSET_OUT_OF_RANGE {
                let old = state.position;
                let reset = match c.config.offset_reset {
                    OffsetReset::None => {
                        defer(
                            c,
                            Error::broker_error(
                                code,
                                ApiKey::Fetch,
                                broker,
                                Some(&key.0),
                                Some(key.1),
                                Some(format!(
                                    "offset {old} is out of range (log start {}, high watermark {}) and offset reset is none",
                                    p.log_start_offset, p.high_watermark
                                )),
                            ),
                        );
                        continue;
                    }
                    OffsetReset::Earliest => {
                        Admin::new(&c.client)
                            .list_offset(&key.0, key.1, offset_spec::EARLIEST)
                            .await
                    }
                    OffsetReset::Latest => {
                        Admin::new(&c.client)
                            .list_offset(&key.0, key.1, offset_spec::LATEST)
                            .await
                    }
                };
                let new = match reset {
                    Ok(n) => n,
                    Err(e) if e.is_retriable() => {
                        stale |= e.invalidates_metadata();
                        continue;
                    }
                    Err(e) => {
                        defer(c, e);
                        continue;
                    }
                };
                tracing::warn!(topic = %key.0, partition = key.1, old, new, "offset out of range: position reset");
                let state = c.assigned.get_mut(&key).expect("assigned");
                state.position = new;
                out.partitions.push(FetchedPartition {
                    topic: key.0,
                    partition: key.1,
                    fetch_offset: new,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    reset: Some((old, new)),
                    batches: Vec::new(),
                });
                continue;
            }
            if !code.is_ok() {
                let e = Error::broker_error(
                    code,
                    ApiKey::Fetch,
                    broker,
                    Some(&key.0),
                    Some(key.1),
                    None,
                );
                if e.is_retriable() {
                    stale |= e.invalidates_metadata();
                } else {
                    defer(c, e);
                }
                continue;
            }
            state.high_watermark = p.high_watermark;
            state.last_stable_offset = p.last_stable_offset;
            state.log_start_offset = p.log_start_offset;
            let fetch_offset = state.position;
            let mut batches = Vec::new();
            let mut corrupt = None;
            if let Some(records) = p.records {
                let mut set = RecordSet::with_options(records, opts);
                for batch in &mut set {
                    let batch = match batch {
                        Ok(b) => b,
                        Err(source) => {
                            // Keep the good batches before it; stop at the corrupt one.
                            corrupt = Some(Error::CorruptRecord {
                                topic: key.0.clone(),
                                partition: key.1,
                                source,
                            });
                            break;
                        }
                    };
                    if batch.last_offset() < fetch_offset {
                        continue;
                    }
                    state.position = state.position.max(batch.last_offset() + 1);
                    batches.push(batch);
                }
            }
            if c.config.isolation_level == IsolationLevel::ReadCommitted {
                let aborted: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|a| (a.producer_id, a.first_offset))
                    .collect();
                drop_aborted(&mut batches, aborted, p.last_stable_offset);
            }
            out.partitions.push(FetchedPartition {
                topic: key.0,
                partition: key.1,
                fetch_offset,
                high_watermark: p.high_watermark,
                last_stable_offset: p.last_stable_offset,
                log_start_offset: p.log_start_offset,
                reset: None,
                batches,
            });
            if let Some(e) = corrupt {
                defer(c, e);
            }
        }
    }
    stale
}

/// Removes, for read_committed, the batches of aborted transactions and what lies at or past the
/// last stable offset (KIP-98). `aborted` lists (producer id, first offset) of the transactions
/// the broker reports aborted in the fetched range: from its first offset, a producer's
/// transactional batches are dropped until that producer's ABORT marker.
fn drop_aborted(batches: &mut Vec<Batch>, mut aborted: Vec<(i64, i64)>, last_stable_offset: i64) {
    use kafkawire_protocol::records::ControlRecordType;
    aborted.sort_by_key(|(_, first)| *first);
    let mut pending = aborted.into_iter().peekable();
    let mut active: std::collections::HashSet<i64> = std::collections::HashSet::new();
    batches.retain(|b| {
        if last_stable_offset >= 0 && b.base_offset() >= last_stable_offset {
            return false;
        }
        while let Some((pid, _)) = pending.next_if(|(_, first)| *first <= b.last_offset()) {
            active.insert(pid);
        }
        if b.is_control() {
            let abort = b
                .records()
                .next()
                .and_then(|r| r.ok())
                .and_then(|r| r.control_record())
                .is_some_and(|c| c.kind == ControlRecordType::Abort);
            if abort {
                active.remove(&b.producer_id());
            }
            // Control batches are never returned as records anyway; keep them for callers
            // that look at markers.
            return true;
        }
        !(b.is_transactional() && active.contains(&b.producer_id()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use kafkawire_protocol::records::{
        ControlRecordType, EndTxnMarker, RecordBatchBuilder, control_batch,
    };

    fn data(base: i64, pid: i64, txn: bool, n: usize) -> Bytes {
        let mut b = RecordBatchBuilder::new();
        b.base_offset(base).producer(pid, 0, 0).transactional(txn);
        for i in 0..n {
            b.push(0, None, Some(format!("{pid}-{i}").as_bytes()), &[])
                .unwrap();
        }
        b.build().unwrap()
    }

    fn marker(base: i64, pid: i64, kind: ControlRecordType) -> Bytes {
        let commit = kind == ControlRecordType::Commit;
        control_batch(
            base,
            0,
            pid,
            0,
            0,
            EndTxnMarker {
                commit,
                coordinator_epoch: 0,
            },
        )
    }

    fn decode(parts: &[Bytes]) -> Vec<Batch> {
        let all: Vec<u8> = parts.iter().flat_map(|b| b.iter().copied()).collect();
        RecordSet::new(Bytes::from(all))
            .map(|b| b.unwrap())
            .collect()
    }

    #[test]
    fn aborted_transactions_are_dropped_and_committed_ones_kept() {
        // pid 1 aborts (offsets 0-1, marker 4); pid 2 commits (2-3, marker 5); pid 3 is not
        // transactional (6); pid 1 again after its abort, committed (7, marker 8).
        let mut batches = decode(&[
            data(0, 1, true, 2),
            data(2, 2, true, 2),
            marker(4, 1, ControlRecordType::Abort),
            marker(5, 2, ControlRecordType::Commit),
            data(6, 3, false, 1),
            data(7, 1, true, 1),
            marker(8, 1, ControlRecordType::Commit),
        ]);
        drop_aborted(&mut batches, vec![(1, 0)], 9);
        let data_offsets: Vec<i64> = batches
            .iter()
            .filter(|b| !b.is_control())
            .map(|b| b.base_offset())
            .collect();
        assert_eq!(data_offsets, vec![2, 6, 7]);
    }

    #[test]
    fn nothing_at_or_past_the_last_stable_offset() {
        let mut batches = decode(&[data(0, 1, true, 2), data(2, 2, true, 2)]);
        drop_aborted(&mut batches, vec![], 2);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].base_offset(), 0);
    }
}
