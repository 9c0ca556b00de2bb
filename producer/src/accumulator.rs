//! The record accumulator: per-partition queues of batches waiting to be sent.
//!
//! `send` encodes each record straight into the last open batch of its partition (a
//! [`RecordBatchBuilder`] whose buffer was reserved from `buffer_memory` when the batch opened),
//! so a buffered record costs its encoded bytes and nothing else; the sender takes whole
//! batches from the front of each queue when they are full, have lingered long enough, or a
//! flush asks for them. Retried batches go back to the front, in sequence order, so a
//! partition's records leave in the order they were given to `send`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkawire_client::{Error, Result};
use kafkawire_protocol::EncodeError;
use kafkawire_protocol::records::{CompressionConfig, RecordBatchBuilder, RecordSet, set_producer};

use crate::delivery::Completion;

/// A topic-partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// A record as `send` hands it to the accumulator (borrowed from the application's record).
pub(crate) struct RecordRef<'a> {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a [(&'a str, Option<&'a [u8]>)],
    /// Upper bound of its encoded size in bytes ([`record_size`]).
    pub(crate) size: usize,
}

/// The bytes a record takes inside a batch (protocol guide, "Record"): its fields and the varints
/// of its length, attributes, lengths and header count, counting 3 bytes for the timestamp and
/// offset deltas (exact for batches of up to 16,383 records within 127 ms, close otherwise).
pub(crate) fn record_size(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[(String, Option<Bytes>)],
) -> usize {
    use kafkawire_protocol::primitives::varint_len;
    let field = |b: Option<&[u8]>| match b {
        Some(b) => varint_len(b.len().min(i32::MAX as usize) as i32) + b.len(),
        None => 1,
    };
    let mut body = 1
        + 1
        + 2
        + field(key)
        + field(value)
        + varint_len(headers.len().min(i32::MAX as usize) as i32);
    for (k, v) in headers {
        body += field(Some(k.as_bytes())) + field(v.as_deref());
    }
    varint_len(body.min(i32::MAX as usize) as i32) + body
}

/// Bytes of a batch header (magic 2), counted against `batch_size`.
pub(crate) const BATCH_OVERHEAD: usize = 61;

/// Bytes a record may take beyond [`record_size`]: timestamp and offset deltas longer than the
/// 3 bytes counted there (up to 10 and 5 bytes).
const DELTA_SLACK: usize = 12;

/// Room `RecordBatchBuilder::push` needs past the last record (its 8-byte varint stores).
const PUSH_SLACK: usize = 8;

/// Memory accounted to a batch beyond its record buffer: the batch's own state and its share
/// of the completion its records' futures hold.
pub(crate) const BATCH_BOOKKEEPING: usize = 512;

/// How batches are opened.
#[derive(Clone, Copy)]
pub(crate) struct BatchSettings {
    pub(crate) batch_size: usize,
    pub(crate) delivery_timeout: Duration,
    pub(crate) compression: CompressionConfig,
}

/// Record buffer a new batch starts with (or `batch_size` if smaller); it doubles, reserving
/// more buffer memory each time, as records arrive, up to `batch_size`. Many partitions with a
/// large `batch_size` thus hold only what their records take.
pub(crate) const INITIAL_BATCH_BUFFER: usize = 16 * 1024;

impl BatchSettings {
    /// The buffer memory a new batch for a record of `size` bytes reserves: its first record
    /// buffer (the smaller of `batch_size` and [`INITIAL_BATCH_BUFFER`], or one record's worth
    /// for a larger record) and its bookkeeping.
    pub(crate) fn reservation(&self, size: usize) -> usize {
        self.batch_size
            .min(INITIAL_BATCH_BUFFER)
            .max(BATCH_OVERHEAD + size + DELTA_SLACK)
            + PUSH_SLACK
            + BATCH_BOOKKEEPING
    }
}

/// A batch's records: encoded as they arrive, then as the bytes sent to the broker.
pub(crate) enum Payload {
    /// Records pushed so far, uncompressed, without a header.
    Records(RecordBatchBuilder),
    /// The encoded batch (header, compression, CRC), for the producer id, epoch and base
    /// sequence in `ProducerBatch::encoded_for`; a retry sends the same bytes.
    Encoded(Bytes),
}

/// A batch of one partition, from its first record until it is acknowledged or fails.
pub(crate) struct ProducerBatch {
    pub(crate) tp: TopicPartition,
    pub(crate) payload: Payload,
    /// The producer fields `Payload::Encoded` carries.
    encoded_for: Option<((i64, i16), i32)>,
    /// Number of records.
    pub(crate) record_count: usize,
    /// Encoded size before compression, header included.
    pub(crate) bytes: usize,
    /// Buffer memory this batch holds (returned when it settles).
    pub(crate) reserved: usize,
    /// Where its records' futures look for the outcome.
    completion: Arc<Completion>,
    /// Index of its first record in `completion` (a split's second half starts past 0).
    first_index: u32,
    /// Its records' futures were resolved (or it was split into batches that will).
    settled: bool,
    pub(crate) created: Instant,
    /// `created + delivery_timeout`: past it the batch fails (KIP-91).
    pub(crate) deadline: Instant,
    pub(crate) attempts: u32,
    /// Not before this instant (backoff after a failed attempt).
    pub(crate) retry_at: Option<Instant>,
    /// First sequence number, once assigned (idempotence); kept across retries.
    pub(crate) base_sequence: Option<i32>,
    /// The producer id and epoch `base_sequence` belongs to; kept across retries, so a retry is
    /// the same batch to the broker's deduplication (KIP-98).
    pub(crate) producer: Option<(i64, i16)>,
    /// An attempt ended without a definite answer (timeout, connection lost after the request
    /// left, a response that does not decode or leaves the partition out): the broker may have
    /// written it, so it is never numbered again; it is retried as it is until an answer.
    pub(crate) maybe_written: bool,
    /// Its last attempt left while earlier batches of its partition were unacknowledged, so an
    /// OUT_OF_ORDER_SEQUENCE_NUMBER answer to it may be a race rather than a gap.
    pub(crate) after_unacked: bool,
    /// The error of the last attempt, reported if the delivery timeout passes.
    pub(crate) last_error: Option<Error>,
    /// Closed to new records (it has been sent at least once, or was split).
    pub(crate) closed: bool,
}

/// A batch dropped without being settled (the sender stopped) fails its records' futures.
impl Drop for ProducerBatch {
    fn drop(&mut self) {
        if !self.settled {
            self.settled = true;
            self.completion.fail(
                self.first_index,
                self.end_index(),
                &Error::ProducerClosed {
                    reason: Some("the sender stopped before the record was settled".into()),
                },
            );
        }
    }
}

/// A record read back from a batch (to split it).
struct OwnedRecord {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

impl ProducerBatch {
    /// An empty open batch whose record buffer holds `reserved` bytes of buffer memory.
    pub(crate) fn new(
        tp: TopicPartition,
        settings: &BatchSettings,
        reserved: usize,
    ) -> ProducerBatch {
        let created = Instant::now();
        let capacity = reserved.saturating_sub(BATCH_OVERHEAD + BATCH_BOOKKEEPING);
        let mut builder = RecordBatchBuilder::with_capacity(capacity);
        builder.compression(settings.compression);
        ProducerBatch {
            tp,
            payload: Payload::Records(builder),
            encoded_for: None,
            record_count: 0,
            bytes: BATCH_OVERHEAD,
            reserved,
            completion: Arc::new(Completion::default()),
            first_index: 0,
            settled: false,
            created,
            deadline: created + settings.delivery_timeout,
            attempts: 0,
            retry_at: None,
            base_sequence: None,
            producer: None,
            maybe_written: false,
            after_unacked: false,
            last_error: None,
            closed: false,
        }
    }

    fn end_index(&self) -> u32 {
        self.first_index + self.record_count as u32
    }

    /// Whether `r` can go into this batch: at once, after its buffer grows, or not at all
    /// (closed, or no room within `batch_size`).
    fn room(&self, r: &RecordRef<'_>, batch_size: usize) -> Room {
        let Payload::Records(builder) = &self.payload else {
            return Room::None;
        };
        if self.closed || (self.record_count > 0 && self.bytes + r.size > batch_size) {
            return Room::None;
        }
        let need = self.bytes - BATCH_OVERHEAD + r.size + DELTA_SLACK + PUSH_SLACK;
        if need <= builder.capacity() {
            Room::Now
        } else {
            // Double (as the buffer itself would), never past `batch_size`, at least enough.
            let cap = builder.capacity();
            let target = (cap * 2)
                .min(batch_size + DELTA_SLACK + PUSH_SLACK)
                .max(need);
            Room::AfterGrowing(target - cap)
        }
    }

    /// Grows the record buffer by `bytes` of buffer memory the caller reserved.
    fn grow(&mut self, bytes: usize) {
        if let Payload::Records(builder) = &mut self.payload {
            builder.reserve_exact(bytes);
            self.reserved += bytes;
        }
    }

    /// Encodes `r` into the batch; returns its index for its future.
    fn push(&mut self, r: &RecordRef<'_>) -> Result<u32, EncodeError> {
        let Payload::Records(builder) = &mut self.payload else {
            return Err(EncodeError::Invalid("the batch is closed".into()));
        };
        builder.push(r.timestamp, r.key, r.value, r.headers)?;
        self.bytes = builder.estimated_size();
        let index = self.end_index();
        self.record_count += 1;
        Ok(index)
    }

    /// The encoded batch for its current producer id, epoch and base sequence: encoded (and
    /// compressed) the first time, the same bytes for every retry, and restamped (header and
    /// CRC only, KIP-360) when it was numbered again.
    pub(crate) fn encode(&mut self, transactional: bool) -> Result<Bytes, EncodeError> {
        let ids = self.producer.zip(self.base_sequence);
        let ((pid, epoch), seq) = ids.unwrap_or(((-1, -1), -1));
        let transactional = transactional && ids.is_some();
        match &mut self.payload {
            Payload::Encoded(bytes) => {
                if self.encoded_for != ids {
                    let mut b = BytesMut::from(&bytes[..]);
                    set_producer(&mut b, pid, epoch, seq, transactional)?;
                    *bytes = b.freeze();
                    self.encoded_for = ids;
                }
                Ok(bytes.clone())
            }
            Payload::Records(builder) => {
                builder.producer(pid, epoch, seq);
                builder.transactional(transactional);
                let bytes = builder.build()?;
                self.payload = Payload::Encoded(bytes.clone());
                self.encoded_for = ids;
                Ok(bytes)
            }
        }
    }

    /// Completes every record with `err` and returns the memory they held.
    pub(crate) fn fail(mut self, err: &Error) -> usize {
        self.settled = true;
        self.completion
            .fail(self.first_index, self.end_index(), err);
        self.reserved
    }

    /// Completes every record as written at `base_offset` (-1 when unknown); returns the memory
    /// they held.
    pub(crate) fn succeed(mut self, base_offset: i64, log_append_time: i64) -> usize {
        self.settled = true;
        self.completion.succeed(
            self.first_index,
            self.end_index(),
            base_offset,
            log_append_time,
        );
        self.reserved
    }

    /// The records, decoded from the encoded batch (or the open one).
    fn records(&mut self) -> std::result::Result<Vec<OwnedRecord>, String> {
        let bytes = match &mut self.payload {
            Payload::Encoded(b) => b.clone(),
            Payload::Records(builder) => builder.build().map_err(|e| e.to_string())?,
        };
        let mut out = Vec::with_capacity(self.record_count);
        for batch in RecordSet::new(bytes) {
            let batch = batch.map_err(|e| e.to_string())?;
            for r in batch.records() {
                let r = r.map_err(|e| e.to_string())?;
                out.push(OwnedRecord {
                    timestamp: r.timestamp(),
                    key: r.key().map(<[u8]>::to_vec),
                    value: r.value().map(<[u8]>::to_vec),
                    headers: r
                        .headers()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect(),
                });
            }
        }
        Ok(out)
    }

    /// Splits into two halves (after MESSAGE_TOO_LARGE); sequences follow on. Each half is
    /// encoded again from the records; their futures keep resolving from the same completion.
    /// `Err` (the batch handed back) when there is one record, or the records do not read back.
    #[allow(clippy::result_large_err)] // moved once, on a rare path
    pub(crate) fn split(
        mut self,
        compression: CompressionConfig,
    ) -> std::result::Result<(ProducerBatch, ProducerBatch), ProducerBatch> {
        if self.record_count < 2 {
            return Err(self);
        }
        let records = match self.records() {
            Ok(r) if r.len() == self.record_count => r,
            _ => return Err(self),
        };
        let half = records.len() / 2;
        let mut halves = Vec::with_capacity(2);
        for (part, first) in [(&records[..half], 0), (&records[half..], half)] {
            let capacity: usize = part
                .iter()
                .map(|r| {
                    let headers: Vec<(String, Option<Bytes>)> = Vec::new();
                    record_size(r.key.as_deref(), r.value.as_deref(), &headers)
                        + r.headers
                            .iter()
                            .map(|(k, v)| k.len() + v.as_ref().map_or(0, Vec::len) + 10)
                            .sum::<usize>()
                        + DELTA_SLACK
                })
                .sum::<usize>()
                + PUSH_SLACK;
            let mut builder = RecordBatchBuilder::with_capacity(capacity);
            builder.compression(compression);
            for r in part {
                let headers: Vec<(&str, Option<&[u8]>)> = r
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_deref()))
                    .collect();
                if builder
                    .push(r.timestamp, r.key.as_deref(), r.value.as_deref(), &headers)
                    .is_err()
                {
                    return Err(self);
                }
            }
            let seq = self
                .base_sequence
                .map(|s| s.wrapping_add(first as i32) & i32::MAX);
            halves.push(ProducerBatch {
                tp: self.tp.clone(),
                bytes: builder.estimated_size(),
                payload: Payload::Records(builder),
                encoded_for: None,
                record_count: part.len(),
                reserved: if first == 0 {
                    self.reserved / 2
                } else {
                    self.reserved - self.reserved / 2
                },
                completion: self.completion.clone(),
                first_index: self.first_index + first as u32,
                settled: false,
                created: self.created,
                deadline: self.deadline,
                attempts: self.attempts,
                retry_at: None,
                base_sequence: seq,
                producer: self.producer,
                maybe_written: self.maybe_written,
                after_unacked: false,
                last_error: self.last_error.clone(),
                closed: true,
            });
        }
        // The halves settle these records now.
        self.settled = true;
        let b = halves.pop().expect("two halves");
        let a = halves.pop().expect("two halves");
        Ok((a, b))
    }
}

/// Room for a record in a partition's open batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Room {
    /// Within the buffer it has.
    Now,
    /// After the buffer grows by this many bytes (within `batch_size`).
    AfterGrowing(usize),
    /// None: a new batch is needed.
    None,
}

/// Where `Accumulator::append` put a record.
pub(crate) struct Appended {
    pub(crate) completion: Arc<Completion>,
    pub(crate) index: u32,
    pub(crate) topic: Arc<str>,
    /// The sender should wake: a batch was opened (its linger timer starts) or became full.
    pub(crate) wake: bool,
    /// Buffer memory reserved by the caller that the record did not need (it went into a
    /// batch another caller opened meanwhile): to be given back.
    pub(crate) unused_reservation: usize,
}

/// Per-partition queues.
#[derive(Default)]
pub(crate) struct Accumulator {
    pub(crate) queues: HashMap<TopicPartition, VecDeque<ProducerBatch>>,
    /// Number of `flush` calls waiting: while above 0 every batch is ready at once.
    pub(crate) flushing: usize,
    /// Set by `close`: send everything, accept nothing more.
    pub(crate) closing: bool,
}

impl Accumulator {
    /// Buffer memory to reserve before [`Accumulator::append`] can take `r` (0: none needed):
    /// what the partition's open batch needs to grow for it, or a new batch's reservation.
    pub(crate) fn needed(
        &self,
        topic: &Arc<str>,
        partition: i32,
        r: &RecordRef<'_>,
        settings: &BatchSettings,
    ) -> usize {
        let tp = (topic.clone(), partition);
        match self.queues.get(&tp).and_then(VecDeque::back) {
            Some(b) => match b.room(r, settings.batch_size) {
                Room::Now => 0,
                Room::AfterGrowing(n) => n,
                Room::None => settings.reservation(r.size),
            },
            None => settings.reservation(r.size),
        }
    }

    /// Encodes a record into its partition's open batch. When that batch needs more buffer, or
    /// a new batch is needed, `reservation` (bytes of buffer memory the caller holds, see
    /// [`Accumulator::needed`]) pays for it; without one, `Ok(None)`: the caller reserves and
    /// calls again.
    pub(crate) fn append(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        r: &RecordRef<'_>,
        reservation: Option<usize>,
        settings: &BatchSettings,
    ) -> Result<Option<Appended>, EncodeError> {
        let tp = (topic.clone(), partition);
        let q = match self.queues.get_mut(&tp) {
            Some(q) => q,
            None => self.queues.entry(tp.clone()).or_default(),
        };
        let room = q
            .back()
            .map_or(Room::None, |b| b.room(r, settings.batch_size));
        let opened = room == Room::None;
        let unused_reservation = match (room, reservation) {
            (Room::Now, held) => held.unwrap_or(0),
            (_, None) => return Ok(None),
            (Room::AfterGrowing(_), Some(held)) => {
                q.back_mut().expect("an open batch").grow(held);
                0
            }
            (Room::None, Some(held)) => {
                q.push_back(ProducerBatch::new(tp.clone(), settings, held));
                0
            }
        };
        let b = q.back_mut().expect("a batch was just ensured");
        let index = match b.push(r) {
            Ok(i) => i,
            Err(e) => {
                if b.record_count == 0 {
                    // The batch opened for this record stays empty: gone again (the caller
                    // gives its reservation back).
                    q.pop_back();
                }
                return Err(e);
            }
        };
        Ok(Some(Appended {
            completion: b.completion.clone(),
            index,
            topic: tp.0,
            wake: opened || b.bytes >= settings.batch_size,
            unused_reservation,
        }))
    }

    /// Puts a batch back for another attempt, ahead of newer ones and in sequence order.
    pub(crate) fn requeue(&mut self, batch: ProducerBatch) {
        let q = self.queues.entry(batch.tp.clone()).or_default();
        let pos = match batch.base_sequence {
            Some(seq) => q
                .iter()
                .position(|b| b.base_sequence.is_none_or(|s| seq_before(seq, s)))
                .unwrap_or(q.len()),
            None => q.iter().position(|b| !b.closed).unwrap_or(q.len()),
        };
        q.insert(pos, batch);
    }

    /// True when no batch is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queues.values().all(VecDeque::is_empty)
    }
}

/// Whether sequence `a` comes before `b` (sequences wrap at `i32::MAX`, KIP-98).
pub(crate) fn seq_before(a: i32, b: i32) -> bool {
    let d = b.wrapping_sub(a) & i32::MAX;
    d != 0 && d < i32::MAX / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(batch_size: usize) -> BatchSettings {
        BatchSettings {
            batch_size,
            delivery_timeout: Duration::from_secs(60),
            compression: CompressionConfig::default(),
        }
    }

    /// Appends a record whose value is `id` padded to `len` bytes; returns whether the sender
    /// would be woken.
    fn put(
        acc: &mut Accumulator,
        tp: &TopicPartition,
        id: u32,
        len: usize,
        s: &BatchSettings,
    ) -> bool {
        let mut v = vec![0u8; len.max(4)];
        v[..4].copy_from_slice(&id.to_be_bytes());
        let size = record_size(None, Some(&v), &[]);
        let r = RecordRef {
            timestamp: 1,
            key: None,
            value: Some(&v),
            headers: &[],
            size,
        };
        match acc.append(&tp.0, tp.1, &r, None, s).unwrap() {
            Some(a) => a.wake,
            None => {
                let need = acc.needed(&tp.0, tp.1, &r, s);
                assert!(need > 0);
                acc.append(&tp.0, tp.1, &r, Some(need), s)
                    .unwrap()
                    .expect("appended with a reservation")
                    .wake
            }
        }
    }

    #[test]
    fn batches_fill_to_batch_size_then_a_new_one_opens() {
        let mut acc = Accumulator::default();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let s = settings(220);
        for id in 0..3 {
            put(&mut acc, &tp, id, 40, &s);
        }
        assert_eq!(acc.queues[&tp].len(), 1);
        assert!(
            put(&mut acc, &tp, 3, 40, &s),
            "a second batch makes the first ready"
        );
        assert_eq!(acc.queues[&tp].len(), 2);
        // A record larger than batch_size still gets a batch of its own.
        put(&mut acc, &tp, 4, 1000, &s);
        assert_eq!(acc.queues[&tp].len(), 3);
        // Every batch's buffer held its records without growing past what was reserved.
        for b in &acc.queues[&tp] {
            let Payload::Records(builder) = &b.payload else {
                panic!("open batches hold records")
            };
            assert!(builder.capacity() + BATCH_OVERHEAD + BATCH_BOOKKEEPING <= b.reserved + 64);
        }
    }

    /// A large `batch_size` is not reserved up front: a batch starts with a 16 KiB buffer and
    /// doubles it (reserving each step) as records arrive, so its reservation always covers its
    /// buffer and stays within twice what its records take.
    #[test]
    fn large_batches_grow_their_reservation_with_their_records() {
        let mut acc = Accumulator::default();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let s = settings(1 << 20);
        put(&mut acc, &tp, 0, 100, &s);
        let first = acc.queues[&tp][0].reserved;
        assert!(first <= INITIAL_BATCH_BUFFER + 1024, "{first}");
        let mut last = first;
        let mut grew = 0;
        for id in 1..12_000 {
            put(&mut acc, &tp, id, 100, &s);
            let b = acc.queues[&tp].back().unwrap();
            let Payload::Records(builder) = &b.payload else {
                panic!("open")
            };
            assert!(builder.capacity() + BATCH_BOOKKEEPING <= b.reserved, "{id}");
            assert!(
                b.reserved <= 2 * b.bytes + INITIAL_BATCH_BUFFER + 1024,
                "{id}"
            );
            if acc.queues[&tp].len() == 1 && b.reserved > last {
                grew += 1;
                last = b.reserved;
            }
        }
        assert!(grew >= 5, "grew {grew} times");
        assert!(acc.queues[&tp].len() > 1, "a 1 MiB batch filled up");
        assert!(acc.queues[&tp][0].bytes <= 1 << 20);
    }

    #[test]
    fn requeued_batches_go_back_in_sequence_order() {
        let mut acc = Accumulator::default();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let s = settings(100);
        put(&mut acc, &tp, 0, 10, &s);
        let mut b5 = ProducerBatch::new(tp.clone(), &s, 1024);
        b5.base_sequence = Some(5);
        b5.closed = true;
        let mut b0 = ProducerBatch::new(tp.clone(), &s, 1024);
        b0.base_sequence = Some(0);
        b0.closed = true;
        acc.requeue(b5);
        acc.requeue(b0);
        let seqs: Vec<Option<i32>> = acc.queues[&tp].iter().map(|b| b.base_sequence).collect();
        assert_eq!(seqs, vec![Some(0), Some(5), None]);
    }

    #[test]
    fn sequence_order_wraps() {
        assert!(seq_before(1, 2));
        assert!(!seq_before(2, 1));
        assert!(seq_before(i32::MAX - 1, 3));
        assert!(!seq_before(4, 4));
    }

    fn ids(b: &mut ProducerBatch) -> Vec<u32> {
        b.records()
            .expect("records read back")
            .iter()
            .map(|r| {
                let v = r.value.as_deref().expect("tagged");
                u32::from_be_bytes(v[..4].try_into().expect("4 bytes"))
            })
            .collect()
    }

    fn next_seq(seq: i32, records: usize) -> i32 {
        seq.wrapping_add(records as i32) & i32::MAX
    }

    /// Randomised property (proptest is not a dependency of this crate, so seeded `rand` runs
    /// stand in for it; a failure names its seed): for any interleaving of appends to a few
    /// partitions with random sizes, drains of front batches (which get their sequence numbers
    /// then, as in the sender), acknowledgements by a broker that accepts only the next
    /// sequence, requeues and splits of drained batches, in any order, every record is
    /// acknowledged exactly once and in append order per partition, sequences wrapping at
    /// `i32::MAX` included.
    #[test]
    fn random_appends_requeues_and_splits_drain_every_record_once_in_order() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        for seed in 0..400u64 {
            let mut rng = StdRng::seed_from_u64(seed);
            let partitions: Vec<TopicPartition> = (0..rng.gen_range(1..=3))
                .map(|p| (Arc::from("t"), p))
                .collect();
            let batch_size = rng.gen_range(BATCH_OVERHEAD + 1..400);
            let s = settings(batch_size);
            let first_seq = if rng.gen_bool(0.3) {
                i32::MAX - rng.gen_range(0..40)
            } else {
                0
            };
            let mut acc = Accumulator::default();
            // Producer side: next sequence to assign; broker side: next sequence it accepts.
            let mut assign: HashMap<TopicPartition, i32> = HashMap::new();
            let mut expect: HashMap<TopicPartition, i32> = HashMap::new();
            let mut appended: HashMap<TopicPartition, Vec<u32>> = HashMap::new();
            let mut acked: HashMap<TopicPartition, Vec<u32>> = HashMap::new();
            let mut in_flight: Vec<ProducerBatch> = Vec::new();
            let mut next_id = 0u32;

            let drain = |acc: &mut Accumulator,
                         assign: &mut HashMap<TopicPartition, i32>,
                         tp: &TopicPartition|
             -> Option<ProducerBatch> {
                let mut b = acc.queues.get_mut(tp)?.pop_front()?;
                assert!(b.record_count > 0, "seed {seed}: empty batch queued");
                b.closed = true;
                if b.base_sequence.is_none() {
                    let seq = assign.entry(tp.clone()).or_insert(first_seq);
                    b.base_sequence = Some(*seq);
                    *seq = next_seq(*seq, b.record_count);
                }
                Some(b)
            };
            // The broker: appends the batch if it is the next sequence, else refuses it
            // (OUT_OF_ORDER_SEQUENCE_NUMBER) and the sender puts it back.
            let ack = |acc: &mut Accumulator,
                       expect: &mut HashMap<TopicPartition, i32>,
                       acked: &mut HashMap<TopicPartition, Vec<u32>>,
                       mut b: ProducerBatch| {
                let want = expect.entry(b.tp.clone()).or_insert(first_seq);
                if b.base_sequence == Some(*want) {
                    *want = next_seq(*want, b.record_count);
                    acked.entry(b.tp.clone()).or_default().extend(ids(&mut b));
                    b.succeed(0, -1);
                } else {
                    acc.requeue(b);
                }
            };

            for _ in 0..rng.gen_range(0..250) {
                match rng.gen_range(0..100) {
                    0..45 => {
                        let tp = partitions[rng.gen_range(0..partitions.len())].clone();
                        let len = rng.gen_range(1..batch_size * 3 / 2);
                        put(&mut acc, &tp, next_id, len, &s);
                        appended.entry(tp).or_default().push(next_id);
                        next_id += 1;
                    }
                    45..65 => {
                        let tp = &partitions[rng.gen_range(0..partitions.len())];
                        if let Some(b) = drain(&mut acc, &mut assign, tp) {
                            in_flight.push(b);
                        }
                    }
                    65..80 if !in_flight.is_empty() => {
                        let b = in_flight.swap_remove(rng.gen_range(0..in_flight.len()));
                        ack(&mut acc, &mut expect, &mut acked, b);
                    }
                    80..93 if !in_flight.is_empty() => {
                        let b = in_flight.swap_remove(rng.gen_range(0..in_flight.len()));
                        acc.requeue(b);
                    }
                    93..100 if !in_flight.is_empty() => {
                        let i = rng.gen_range(0..in_flight.len());
                        if in_flight[i].record_count > 1 {
                            let Ok((a, b)) = in_flight.swap_remove(i).split(s.compression) else {
                                panic!("seed {seed}: split refused");
                            };
                            assert_eq!(
                                b.base_sequence,
                                a.base_sequence.map(|s| next_seq(s, a.record_count)),
                                "seed {seed}: split sequences"
                            );
                            acc.requeue(b);
                            acc.requeue(a);
                        }
                    }
                    _ => {}
                }
            }
            // Every attempt still out fails and comes back, in any order; then the queues are
            // drained front first, each batch acknowledged in turn.
            while !in_flight.is_empty() {
                let b = in_flight.swap_remove(rng.gen_range(0..in_flight.len()));
                acc.requeue(b);
            }
            for tp in &partitions {
                while let Some(b) = drain(&mut acc, &mut assign, tp) {
                    let want = expect.get(tp).copied().unwrap_or(first_seq);
                    assert_eq!(
                        b.base_sequence,
                        Some(want),
                        "seed {seed}: {tp:?} front batch out of sequence"
                    );
                    ack(&mut acc, &mut expect, &mut acked, b);
                }
            }
            assert!(acc.is_empty(), "seed {seed}");
            for tp in &partitions {
                assert_eq!(
                    acked.get(tp),
                    appended.get(tp),
                    "seed {seed}: {tp:?} records lost, duplicated or reordered"
                );
            }
        }
    }

    #[test]
    fn batches_never_exceed_batch_size_unless_a_single_record() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        let mut rng = StdRng::seed_from_u64(7);
        let tp: TopicPartition = (Arc::from("t"), 0);
        let mut acc = Accumulator::default();
        let s = settings(256);
        for id in 0..2000 {
            put(&mut acc, &tp, id, rng.gen_range(1..300), &s);
        }
        let mut all = Vec::new();
        for b in acc.queues.get_mut(&tp).unwrap().iter_mut() {
            assert!(b.record_count == 1 || b.bytes <= 256, "{} bytes", b.bytes);
            let encoded = b.encode(false).unwrap();
            assert!(encoded.len() <= b.bytes, "{} > {}", encoded.len(), b.bytes);
            all.extend(ids(b));
        }
        assert_eq!(all, (0..2000).collect::<Vec<u32>>());
    }
}
