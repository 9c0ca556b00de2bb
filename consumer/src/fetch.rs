//! The fetch loop: one Fetch request per leader, decoding of record sets, position tracking,
//! offset-out-of-range resets that are reported, never silent.

use std::collections::{BTreeMap, HashMap};

use bytes::Bytes;
use kafkawire_client::{Admin, Error, Result, offset_spec};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafkawire_protocol::messages::fetch_response::FetchResponse;
use kafkawire_protocol::records::{
    Batch, BatchHeader, Compression, DecodeOptions, DecompressionBudget, LOG_OVERHEAD, MAGIC_V2,
    Record, RecordSet, RecordsPosition,
};
use kafkawire_protocol::{DecodeError, DecodeErrorKind, ErrorCode, Uuid};

use tracing::Instrument;

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
    /// The position this part starts at: records before it (in the first batch) are skipped.
    pub fetch_offset: i64,
    /// The position after this part (exclusive end): [`FetchedPartition::records`] yields the
    /// records with offsets in `fetch_offset..end_offset`. Past the last record when
    /// `max_poll_records` did not cut the fetch, so that transaction markers and aborted
    /// records at the end are not read again.
    pub end_offset: i64,
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
    /// Where, in the batch with this base offset, the records of this part begin (set when
    /// `max_poll_records` cut a batch: the next part continues there instead of decoding the
    /// batch's earlier records again).
    pub(crate) resume: Option<(i64, RecordsPosition)>,
}

impl FetchedPartition {
    /// The records from `fetch_offset` up to `end_offset`, in order, skipping control records
    /// (transaction markers). Each is a borrowed view into its batch's buffer. A record that
    /// does not decode is an [`Error::CorruptRecord`] naming this partition.
    pub fn records(&self) -> impl Iterator<Item = Result<Record<'_>, Error>> + '_ {
        self.records_with_batch().map(|r| r.map(|(_, r)| r))
    }

    /// As [`FetchedPartition::records`], each record with the batch it belongs to (for the
    /// batch's leader epoch, timestamp type or owned `Bytes` of a key or value).
    pub fn records_with_batch(
        &self,
    ) -> impl Iterator<Item = Result<(&Batch, Record<'_>), Error>> + '_ {
        let (from, end) = (self.fetch_offset, self.end_offset);
        self.batches
            .iter()
            .filter(move |b| !b.is_control() && b.last_offset() >= from && b.base_offset() < end)
            .flat_map(move |b| {
                let records = match self.resume {
                    Some((base, at)) if base == b.base_offset() => b.records_from(at),
                    _ => b.records(),
                };
                records.map(move |r| r.map(|r| (b, r)))
            })
            .filter(move |r| {
                r.as_ref()
                    .map_or(true, |(_, r)| r.offset() >= from && r.offset() < end)
            })
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
    /// One entry per partition that answered without error (possibly with no records: its
    /// high watermark is news too), or whose position was reset, in the order they were
    /// fetched. With `max_poll_records`, a fetch's later records come in later polls.
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

/// One fetch request's outcome: the leader asked, each partition with the offset it was
/// fetched from, and the response.
pub(crate) type RoundResult = (i32, Vec<(Key, i64)>, Result<FetchResponse>);

/// Hands out buffered data, fetching when there is none; then starts the next fetch for every
/// partition with nothing buffered (the prefetch), so it runs while the application works.
///
/// Cancel safety: the only awaits come before anything is handed out. A response being
/// applied when the future is dropped is fetched again (positions only move in
/// [`take_buffered`], which is synchronous), so nothing is lost or repeated.
pub(crate) async fn poll(c: &mut PartitionConsumer) -> Result<Fetched> {
    // A few rounds at most, when the one collected could not have brought what the
    // application waits for: it was started before a seek, assign or resume (its answers are
    // dropped, or it left partitions out), or it was a prefetch that did not wait for data.
    for _ in 0..3 {
        if has_data(c) {
            break;
        }
        if let Some(e) = c.pending_error.take() {
            return Err(e);
        }
        if c.in_flight.is_empty() {
            ensure_leaders(c).await?;
            spawn_round(c, true);
        }
        if c.in_flight.is_empty() {
            if !c.buffer.is_empty() {
                break;
            }
            // No partition has a leader yet (or all are paused): wait a little and look again.
            tokio::time::sleep(
                c.config
                    .fetch_max_wait
                    .min(std::time::Duration::from_millis(100)),
            )
            .await;
            refresh_assigned(c).await;
            return Ok(Fetched::default());
        }
        let waited = c.round_waits;
        let outdated = collect_round(c).await?;
        if !outdated && waited && wanted(c).is_empty() {
            break;
        }
    }
    let out = take_buffered(c);
    if out
        .partitions
        .iter()
        .all(|p| p.batches.is_empty() && p.reset.is_none())
        && let Some(e) = c.pending_error.take()
    {
        return Err(e);
    }
    if c.pending_error.is_none() && c.in_flight.is_empty() {
        // While the application still has buffered records to work through, the prefetch
        // must not be held by the broker waiting for new data (a partition that is caught up
        // would hold up the others behind it for `fetch_max_wait`).
        let wait = c.buffer.is_empty();
        spawn_round(c, wait);
    }
    Ok(out)
}

/// Whether the buffer holds records or a reset report (not only empty answers).
fn has_data(c: &PartitionConsumer) -> bool {
    c.buffer
        .iter()
        .any(|p| !p.batches.is_empty() || p.reset.is_some())
}

/// Moves up to `max_poll_records` records (and any reset reports) out of the buffer, advancing
/// the positions of their partitions past them.
fn take_buffered(c: &mut PartitionConsumer) -> Fetched {
    let mut out = Fetched::default();
    let mut quota = c.config.max_poll_records.max(1);
    while quota > 0
        && let Some(p) = c.buffer.pop_front()
    {
        let (first, rest, n) = crate::buffer::split(p, quota);
        quota -= n;
        if let Some(rest) = rest {
            c.buffer.push_front(rest);
        }
        let key = (first.topic.clone(), first.partition);
        if let Some(state) = c.assigned.get_mut(&key) {
            state.position = first.end_offset;
        }
        c.stats
            .on_returned(&key, n, c.assigned.get(&key), c.config.isolation_level);
        out.partitions.push(first);
    }
    out
}

/// Keeps the first error of a poll for later, so data already fetched is returned first.
fn defer(c: &mut PartitionConsumer, e: Error) {
    if c.pending_error.is_none() {
        c.pending_error = Some(e);
    }
}

/// The partitions a new fetch should ask for: assigned, not paused, nothing buffered. While a
/// partition waits for the whole decompression budget (its first batch did not fit in what was
/// left), only that one, and only once nothing decompressed is buffered.
fn wanted(c: &PartitionConsumer) -> Vec<Key> {
    if let Some(key) = &c.budget_wait
        && c.assigned.contains_key(key)
        && !c.paused.contains(key)
    {
        return if buffered_decompressed(c) == 0 && !c.buffer.iter().any(|p| is(p, key)) {
            vec![key.clone()]
        } else {
            Vec::new()
        };
    }
    c.assigned
        .keys()
        .filter(|k| !c.paused.contains(*k))
        .filter(|k| {
            !c.buffer
                .iter()
                .any(|p| p.topic == k.0 && p.partition == k.1)
        })
        .cloned()
        .collect()
}

/// Looks up (refreshing metadata if needed) the leader of every partition to fetch whose
/// leader the cached metadata does not know.
async fn ensure_leaders(c: &PartitionConsumer) -> Result<()> {
    let meta = c.client.metadata();
    for key in wanted(c) {
        if meta.partition(&key.0, key.1).is_some_and(|p| p.leader >= 0) {
            continue;
        }
        match c.client.leader_for(&key.0, key.1).await {
            Ok(_) => {}
            Err(e) if e.is_retriable() => {
                tracing::debug!(error = %e, "no leader yet; will retry");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Starts one Fetch request per leader (as the cached metadata knows them) for the partitions
/// [`wanted`], without waiting for the answers. At most one round is in flight, so at most one
/// response per broker waits in memory besides what is buffered: memory stays bounded by the
/// fetch-size settings however slow the application is.
fn spawn_round(c: &mut PartitionConsumer, wait: bool) {
    c.round_waits = wait;
    let meta = c.client.metadata();
    let mut by_leader: BTreeMap<i32, Vec<(Key, i64)>> = BTreeMap::new();
    for key in wanted(c) {
        let Some(leader) = meta
            .partition(&key.0, key.1)
            .map(|p| p.leader)
            .filter(|l| *l >= 0)
        else {
            continue;
        };
        let offset = c.assigned[&key].position;
        by_leader.entry(leader).or_default().push((key, offset));
    }
    // The spans of the last round have ended with it (its answers were all collected).
    c.stats.spans.clear();
    for (leader, keys) in by_leader {
        let req = build_request(c, &keys, wait);
        let client = c.client.clone();
        let counters = c.stats.fetch.clone();
        let broker = meta.brokers.get(&leader).map(|b| (b.host.as_str(), b.port));
        let span = crate::stats::fetch_span(
            &keys,
            broker,
            c.stats.group.as_deref(),
            c.client.config().client_id.as_deref(),
        );
        if !span.is_disabled() {
            c.stats.spans.insert(leader, span.clone());
        }
        c.in_flight.spawn(
            async move {
                let sent = std::time::Instant::now();
                let r = client.send_to(leader, &req).await;
                counters.on_fetch(sent.elapsed(), r.is_ok());
                (leader, keys, r)
            }
            .instrument(span),
        );
    }
}

/// Waits for the round in flight and buffers what it brought. Returns whether some answer was
/// dropped because the application moved that partition since the request left.
async fn collect_round(c: &mut PartitionConsumer) -> Result<bool> {
    let mut stale = false;
    let mut outdated = false;
    while let Some(joined) = c.in_flight.join_next().await {
        let (leader, keys, resp) =
            joined.map_err(|e| Error::Config(format!("fetch task failed: {e}")))?;
        let span = c.stats.spans.remove(&leader);
        if let Some(span) = &span {
            crate::stats::record_error(span, &resp);
        }
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
        let meta = c.client.metadata();
        let ids = meta.topic_names_by_id();
        let broker = meta.brokers.get(&leader).map(|b| b.address());
        let buffered = c.buffer.len();
        let (s, o) = handle_response(c, &keys, resp, &ids, broker.as_deref()).await;
        stale |= s;
        outdated |= o;
        if let Some(span) = span {
            // The span ends here: the answer is decoded and buffered.
            let records: usize = c
                .buffer
                .iter()
                .skip(buffered)
                .flat_map(|p| p.batches.iter())
                .map(Batch::record_count)
                .sum();
            span.record("messaging.batch.message_count", records);
        }
    }
    if stale {
        refresh_assigned(c).await;
    }
    Ok(outdated)
}

/// How long a poll waits for the metadata refresh that follows a failed fetch before fetching
/// again with the metadata it has. A quick answer gives the next fetch the new leaders; a refresh
/// stuck on a silent connection (a half-open bootstrap connection fails only after the request
/// timeout) goes on in the background instead of holding up a fetch that a new connection to the
/// leader can answer at once: a blackhole costs one request timeout, not two.
const REFRESH_WAIT: std::time::Duration = std::time::Duration::from_millis(100);

/// Refreshes the metadata of the assigned topics, waiting at most [`REFRESH_WAIT`] for it; a
/// refresh still running from an earlier call is waited for instead of starting another.
async fn refresh_assigned(c: &mut PartitionConsumer) {
    if c.refreshing.as_ref().is_none_or(|h| h.is_finished()) {
        let mut topics: Vec<String> = c.assigned.keys().map(|(t, _)| t.clone()).collect();
        topics.dedup();
        let client = c.client.clone();
        c.refreshing = Some(tokio::spawn(async move {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(e) = client.refresh_metadata(&topics).await {
                tracing::debug!(error = %e, "metadata refresh failed; will retry");
            }
        }));
    }
    if let Some(refresh) = c.refreshing.as_mut()
        && tokio::time::timeout(REFRESH_WAIT, refresh).await.is_ok()
    {
        c.refreshing = None;
    }
}

/// `wait`: whether the broker may hold the request up to `fetch_max_wait` for
/// `fetch_min_bytes` (else it answers at once with what it has).
fn build_request(c: &PartitionConsumer, keys: &[(Key, i64)], wait: bool) -> FetchRequest {
    let meta = c.client.metadata();
    let mut topics: BTreeMap<&str, Vec<FetchPartition>> = BTreeMap::new();
    let mut max_bytes = c.config.fetch_max_bytes;
    for (key, offset) in keys {
        let partition_max_bytes = partition_fetch_bytes(c, key);
        max_bytes = max_bytes.max(partition_max_bytes);
        topics.entry(&key.0).or_default().push(FetchPartition {
            partition: key.1,
            // KIP-320: the leader epoch we believe current, so that a broker that is no longer
            // (or not yet) the leader of that epoch refuses (FENCED_LEADER_EPOCH /
            // UNKNOWN_LEADER_EPOCH, both retriable: metadata is refreshed) instead of serving
            // a stale log.
            current_leader_epoch: meta.partition(&key.0, key.1).map_or(-1, |p| p.leader_epoch),
            fetch_offset: *offset,
            last_fetched_epoch: -1,
            log_start_offset: -1,
            partition_max_bytes,
            ..Default::default()
        });
    }
    FetchRequest {
        replica_id: -1,
        max_wait_ms: if wait {
            c.config
                .fetch_max_wait
                .as_millis()
                .clamp(1, i32::MAX as u128) as i32
        } else {
            0
        },
        min_bytes: c.config.fetch_min_bytes,
        max_bytes,
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

/// Buffers one fetch response; returns whether metadata looks stale and whether an answer was
/// dropped as outdated. Errors that must reach
/// the application are deferred with [`defer`]. A partition's answer is dropped when the
/// application moved on since the request left (unassigned, paused, or sought elsewhere): it
/// would no longer start at the partition's position.
async fn handle_response(
    c: &mut PartitionConsumer,
    keys: &[(Key, i64)],
    resp: FetchResponse,
    ids: &HashMap<Uuid, String>,
    broker: Option<&str>,
) -> (bool, bool) {
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
            return (true, false);
        }
        defer(c, e);
        return (false, false);
    }
    let mut stale = false;
    let mut outdated = false;
    // The decompression budget of this answer: the consumer's, less what the buffer holds of
    // earlier answers not yet handed out. One batch may take all of it: the per-batch cap is
    // set above the budget, so that the budget is what stops a batch (and its error says so).
    let limit = c.config.decompression_budget();
    let opts = DecodeOptions {
        verify_crc: c.config.check_crcs,
        max_decompressed_size: limit.saturating_add(1),
    };
    let buffered = buffered_decompressed(c);
    let budget = DecompressionBudget::new(limit.saturating_sub(buffered));
    for t in resp.responses {
        let name = if t.topic.is_empty() {
            ids.get(&t.topic_id).cloned().unwrap_or_default()
        } else {
            t.topic
        };
        for p in t.partitions {
            let key = (name.clone(), p.partition_index);
            let Some(requested) = keys.iter().find(|(k, _)| *k == key).map(|(_, o)| *o) else {
                continue;
            };
            let Some(state) = c.assigned.get_mut(&key) else {
                continue;
            };
            if c.paused.contains(&key) {
                continue;
            }
            if state.position != requested {
                outdated = true;
                tracing::debug!(topic = %key.0, partition = key.1, requested, position = state.position, "dropping a fetch answer for an old position");
                continue;
            }
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
                c.buffer.push_back(FetchedPartition {
                    topic: key.0,
                    partition: key.1,
                    fetch_offset: new,
                    end_offset: new,
                    high_watermark: p.high_watermark,
                    last_stable_offset: p.last_stable_offset,
                    log_start_offset: p.log_start_offset,
                    reset: Some((old, new)),
                    batches: Vec::new(),
                    resume: None,
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
            let records = p.records.unwrap_or_default();
            let walk = walk_partition(&key, &records, fetch_offset, opts, &budget, buffered);
            if c.budget_wait.as_ref() == Some(&key) {
                c.budget_wait = None;
            }
            match walk.stop {
                Some(Stop::Truncated(cut)) => {
                    // Nothing buffered: the partition is fetched again at once (with a larger
                    // limit), or the error says why it cannot be.
                    if let Some(e) = grow_fetch_size(c, &key, fetch_offset, &cut, broker) {
                        defer(c, e);
                    }
                    continue;
                }
                Some(Stop::Budget) if walk.batches.is_empty() => {
                    tracing::debug!(topic = %key.0, partition = key.1, offset = fetch_offset, buffered, used = budget.used(), limit, "decompression budget spent: the partition is fetched again once the buffered records are handed out");
                    if c.budget_wait.is_none() {
                        c.budget_wait = Some(key);
                    }
                    continue;
                }
                _ => {}
            }
            let Walk {
                mut batches,
                mut end_offset,
                error,
                ..
            } = walk;
            if !batches.is_empty() {
                c.fetch_sizes.remove(&key);
            }
            if c.config.isolation_level == IsolationLevel::ReadCommitted {
                let aborted: Vec<(i64, i64)> = p
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|a| (a.producer_id, a.first_offset))
                    .collect();
                drop_aborted(&mut batches, aborted, p.last_stable_offset);
                if p.last_stable_offset >= 0 {
                    // Nothing at or past the last stable offset was kept: read it again later.
                    end_offset = end_offset.min(p.last_stable_offset.max(fetch_offset));
                }
            }
            c.buffer.push_back(FetchedPartition {
                topic: key.0,
                partition: key.1,
                fetch_offset,
                end_offset,
                high_watermark: p.high_watermark,
                last_stable_offset: p.last_stable_offset,
                log_start_offset: p.log_start_offset,
                reset: None,
                batches,
                resume: None,
            });
            if let Some(e) = error {
                defer(c, e);
            }
        }
    }
    (stale, outdated)
}

/// Whether `p` is the buffered data of partition `key`.
fn is(p: &FetchedPartition, key: &Key) -> bool {
    p.partition == key.1 && p.topic == key.0
}

/// Bytes of decompressed records a batch holds (0 for an uncompressed batch: its records are
/// a view of the fetch response). For a legacy wrapper, its inner messages as decoded.
fn decompressed_size(b: &Batch) -> usize {
    if b.compression() == Compression::None {
        return 0;
    }
    match b {
        Batch::V2(b) => b.records_bytes().len(),
        Batch::Legacy(b) => b
            .records()
            .iter()
            .map(|r| {
                // The entry header in the decompressed payload, the decoded record, its data.
                LEGACY_ENTRY_OVERHEAD
                    + std::mem::size_of_val(r)
                    + r.key.as_ref().map_or(0, Bytes::len)
                    + r.value.as_ref().map_or(0, Bytes::len)
            })
            .fold(0, usize::saturating_add),
    }
}

/// Bytes before a magic-1 message's key: log overhead, crc, magic, attributes, timestamp, key
/// and value lengths.
const LEGACY_ENTRY_OVERHEAD: usize = LOG_OVERHEAD + 4 + 1 + 1 + 8 + 4 + 4;

/// Decompressed bytes in the buffer (see [`decompressed_size`]).
fn buffered_decompressed(c: &PartitionConsumer) -> usize {
    c.buffer
        .iter()
        .flat_map(|p| p.batches.iter())
        .map(decompressed_size)
        .fold(0, usize::saturating_add)
}

/// How one partition's records were read.
struct Walk {
    /// The batches at or past the fetch offset, in order.
    batches: Vec<Batch>,
    /// The offset after the last of them (the fetch offset if none).
    end_offset: i64,
    /// An error to return after the batches before it (the consumer stops at it).
    error: Option<Error>,
    /// Why the walk ended before the end of the records, when that is not an error.
    stop: Option<Stop>,
}

/// Why a walk ended early without an error.
enum Stop {
    /// What was left of the decompression budget did not hold the next batch, while other
    /// decompressed data was held: read it again once that is handed out.
    Budget,
    /// The records end in a batch cut short, and no complete batch at or past the position
    /// came before it.
    Truncated(Cut),
}

/// A batch cut short by the broker.
pub(crate) struct Cut {
    /// Its (base) offset, if its first 8 bytes came.
    base_offset: Option<i64>,
    /// Its whole size as its header announces it, if the header's first 12 bytes came.
    size: Option<usize>,
    /// How many of its bytes came.
    got: usize,
}

impl Cut {
    fn of(rest: &[u8]) -> Cut {
        let base_offset = rest.first_chunk::<8>().map(|b| i64::from_be_bytes(*b));
        let size = rest
            .get(8..12)
            .and_then(|b| usize::try_from(i32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok())
            .map(|len| len.saturating_add(LOG_OVERHEAD));
        Cut {
            base_offset,
            size,
            got: rest.len(),
        }
    }
}

fn corrupt(key: &Key, source: DecodeError) -> Error {
    Error::CorruptRecord {
        topic: key.0.clone(),
        partition: key.1,
        source,
    }
}

/// Reads a partition's records from `fetch_offset`. Compressed batches are charged to
/// `budget`, the decompression budget of this fetch answer (the consumer's budget less the
/// `buffered` decompressed bytes of earlier answers not yet handed out): a batch that does not
/// fit in what is left ends the walk, without an error while something else holds memory (it
/// is read again later), with one when it does not fit even in the whole budget. Offsets are
/// checked (a batch whose offsets overflow, or after which no offset can follow, is an error:
/// the position could never move past it; the decoder checks this too), and batches ending
/// before the position are skipped. A broker that answers with nothing but batches before the
/// position is an error too, so that the consumer never polls the same answer forever.
fn walk_partition(
    key: &Key,
    records: &Bytes,
    fetch_offset: i64,
    opts: DecodeOptions,
    budget: &DecompressionBudget,
    buffered: usize,
) -> Walk {
    let mut walk = Walk {
        batches: Vec::new(),
        end_offset: fetch_offset,
        error: None,
        stop: None,
    };
    let invalid = |at: usize, what: &'static str, text: String| {
        corrupt(
            key,
            DecodeError::new(what, at, DecodeErrorKind::Invalid(text)),
        )
    };
    let mut skipped_before: Option<i64> = None;
    let mut set = RecordSet::with_budget(records.clone(), opts, budget);
    loop {
        let at = set.position();
        let batch = match set.next() {
            None => {
                if set.truncated_tail() && walk.batches.is_empty() {
                    walk.stop = Some(Stop::Truncated(Cut::of(&records[at..])));
                }
                break;
            }
            Some(Err(e)) => {
                match e.kind {
                    // It may fit once what is held is handed out.
                    DecodeErrorKind::DecompressionBudget { used, .. }
                        if used > 0 || buffered > 0 =>
                    {
                        walk.stop = Some(Stop::Budget);
                    }
                    DecodeErrorKind::DecompressionBudget { limit, needed, .. } => {
                        walk.error = Some(over_budget(key, records, at, limit, needed));
                    }
                    _ => walk.error = Some(corrupt(key, e)),
                }
                break;
            }
            Some(Ok(batch)) => batch,
        };
        let (base, last) = (batch.base_offset(), batch.last_offset());
        if last < base {
            walk.error = Some(invalid(
                at,
                "record batch offsets",
                format!(
                    "the batch at base offset {base} claims last offset {last}, before its base offset: its offsets overflow i64 or its last offset delta is negative"
                ),
            ));
            break;
        }
        if last < fetch_offset {
            skipped_before = Some(last);
            continue;
        }
        let Some(next) = last.checked_add(1) else {
            walk.error = Some(invalid(
                at,
                "record batch offsets",
                format!(
                    "the batch at base offset {base} ends at offset {last} (i64::MAX): no offset can follow it, so the consumer could never move past it"
                ),
            ));
            break;
        };
        walk.end_offset = walk.end_offset.max(next);
        walk.batches.push(batch);
    }
    if walk.batches.is_empty()
        && walk.error.is_none()
        && walk.stop.is_none()
        && let Some(last) = skipped_before
    {
        walk.error = Some(invalid(
            0,
            "record batch offsets",
            format!(
                "the broker answered a fetch at offset {fetch_offset} with batches that all end before it (the last at offset {last}): the consumer cannot move forward"
            ),
        ));
    }
    walk
}

/// The error for a batch (at byte `at` of `records`) that needs more than the whole
/// decompression budget (`limit` bytes, nothing else held): it can never be read with this
/// budget.
fn over_budget(key: &Key, records: &Bytes, at: usize, limit: usize, needed: usize) -> Error {
    let rest = records.get(at..).unwrap_or_default();
    let cut = Cut::of(rest);
    let v2 = BatchHeader::parse(rest).filter(|h| h.magic == MAGIC_V2);
    let offset = cut
        .base_offset
        .map_or_else(|| "?".to_owned(), |o| o.to_string());
    let codec = v2
        .and_then(|h| Compression::from_attributes(h.attributes).ok())
        .map(|c| format!(", {c}"))
        .unwrap_or_default();
    let skip = v2
        .and_then(|h| h.base_offset.checked_add(i64::from(h.last_offset_delta)))
        .and_then(|last| last.checked_add(1))
        .map_or_else(
            || "seek past it to skip it".to_owned(),
            |n| format!("seek to offset {n} to skip it"),
        );
    corrupt(
        key,
        DecodeError::new(
            "record batch",
            at,
            DecodeErrorKind::Invalid(format!(
                "the batch at offset {offset} ({} bytes{codec}) decompresses to more than the whole decompression budget of {limit} bytes (it needs at least {needed}; ConsumerConfig::max_decompressed_bytes, by default max(4 x fetch_max_bytes, 64 MiB)): raise it to read this batch, or {skip}",
                cut.size.unwrap_or(cut.got),
            )),
        ),
    )
}

/// A partition's fetch size after its first batch came cut short.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FetchSize {
    /// `partition_max_bytes` to ask for.
    bytes: i32,
    /// Answers that cut the batch short although `bytes` holds it.
    cut_again: u8,
}

/// How many answers in a row may cut a batch short although the partition's limit holds it,
/// before the consumer gives up with an error (a broker following KIP-74 never does).
const MAX_CUT_AGAIN: u8 = 3;

/// The `partition_max_bytes` a fetch of `key` asks for.
fn partition_fetch_bytes(c: &PartitionConsumer, key: &Key) -> i32 {
    c.fetch_sizes
        .get(key)
        .map_or(c.config.max_partition_fetch_bytes, |f| f.bytes)
}

/// A partition's answer ended in a batch cut short with nothing usable before it. Brokers
/// since KIP-74 (Fetch v3) send the first batch whole even above the limits, so this comes
/// from an older broker or a proxy, at `max_partition_fetch_bytes`: as the batch cannot be
/// read from a part, the partition is fetched again with its limit raised to the batch's size,
/// up to [`ConsumerConfig::max_batch_fetch_bytes`](crate::ConsumerConfig::max_batch_fetch_bytes).
/// A larger batch, or one cut short again [`MAX_CUT_AGAIN`] times although the limit holds it,
/// is an error naming the partition, the offset and the sizes; the consumer never polls the
/// same answer forever.
fn grow_fetch_size(
    c: &mut PartitionConsumer,
    key: &Key,
    fetch_offset: i64,
    cut: &Cut,
    broker: Option<&str>,
) -> Option<Error> {
    let asked = partition_fetch_bytes(c, key).max(1);
    let ceiling = c.config.max_batch_fetch_bytes();
    let offset = cut.base_offset.unwrap_or(fetch_offset);
    // The size the header announces, or (too little came to read it) twice the last ask.
    let want = cut
        .size
        .unwrap_or_else(|| usize::try_from(asked.saturating_mul(2).min(ceiling)).unwrap_or(0));
    let ceiling_bytes = usize::try_from(ceiling).unwrap_or(0);
    if want > ceiling_bytes {
        c.fetch_sizes.remove(key);
        return Some(Error::broker_error(
            ErrorCode::MESSAGE_TOO_LARGE,
            ApiKey::Fetch,
            broker,
            Some(&key.0),
            Some(key.1),
            Some(format!(
                "the record batch at offset {offset} is {want} bytes, more than a fetch may bring: fetch_max_bytes is {} and max_partition_fetch_bytes {} (the broker sent {} of its bytes); raise fetch_max_bytes to at least {want} to read it, or seek past it",
                c.config.fetch_max_bytes, c.config.max_partition_fetch_bytes, cut.got
            )),
        ));
    }
    let asked_bytes = usize::try_from(asked).unwrap_or(0);
    if want > asked_bytes {
        tracing::info!(topic = %key.0, partition = key.1, offset, size = want, asked, "a record batch larger than the partition's fetch limit came cut short: fetching it again whole");
        c.fetch_sizes.insert(
            key.clone(),
            FetchSize {
                bytes: i32::try_from(want).unwrap_or(ceiling),
                cut_again: 0,
            },
        );
        return None;
    }
    let entry = c.fetch_sizes.entry(key.clone()).or_insert(FetchSize {
        bytes: asked,
        cut_again: 0,
    });
    entry.cut_again += 1;
    tracing::warn!(topic = %key.0, partition = key.1, offset, size = want, got = cut.got, asked, "the broker cut a record batch short although the partition's fetch limit holds it");
    if entry.cut_again < MAX_CUT_AGAIN {
        return None;
    }
    c.fetch_sizes.remove(key);
    Some(corrupt(
        key,
        DecodeError::new(
            "record batch",
            0,
            DecodeErrorKind::Truncated {
                needed: want,
                remaining: cut.got,
            },
        )
        .in_context(|| {
            format!(
                "the batch at offset {offset}, cut short {MAX_CUT_AGAIN} times by the broker although the fetch allowed {asked} bytes for the partition"
            )
        }),
    ))
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
