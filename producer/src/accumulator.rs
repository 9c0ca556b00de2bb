//! The record accumulator: per-partition queues of batches waiting to be sent.
//!
//! `send` appends records to the last open batch of their partition (or opens one); the sender
//! takes whole batches from the front of each queue when they are full, have lingered long
//! enough, or a flush asks for them. Retried batches go back to the front, in sequence order, so
//! a partition's records leave in the order they were given to `send`.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire_client::{Error, Result};
use tokio::sync::oneshot;

use crate::RecordMetadata;

/// A topic-partition.
pub(crate) type TopicPartition = (Arc<str>, i32);

/// A record waiting in a batch, with where its result goes.
pub(crate) struct PendingRecord {
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Bytes>,
    pub(crate) value: Option<Bytes>,
    pub(crate) headers: Vec<(String, Option<Bytes>)>,
    /// Upper bound of its encoded size in bytes; also the buffer memory it holds.
    pub(crate) size: usize,
    pub(crate) tx: oneshot::Sender<Result<RecordMetadata>>,
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

/// A batch of one partition, from its first record until it is acknowledged or fails.
pub(crate) struct ProducerBatch {
    pub(crate) tp: TopicPartition,
    pub(crate) records: Vec<PendingRecord>,
    /// Sum of the records' sizes plus the header.
    pub(crate) bytes: usize,
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

impl ProducerBatch {
    pub(crate) fn new(tp: TopicPartition, delivery_timeout: Duration) -> ProducerBatch {
        let created = Instant::now();
        ProducerBatch {
            tp,
            records: Vec::new(),
            bytes: BATCH_OVERHEAD,
            created,
            deadline: created + delivery_timeout,
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

    /// Completes every record with `err` and returns the memory they held.
    pub(crate) fn fail(self, err: &Error) -> usize {
        let mut bytes = 0;
        for r in self.records {
            bytes += r.size;
            let _ = r.tx.send(Err(err.clone()));
        }
        bytes
    }

    /// Completes every record as written at `base_offset` (-1 when unknown); returns the memory
    /// they held.
    pub(crate) fn succeed(self, base_offset: i64, log_append_time: i64) -> usize {
        let mut bytes = 0;
        for (i, r) in self.records.into_iter().enumerate() {
            bytes += r.size;
            let _ = r.tx.send(Ok(RecordMetadata {
                topic: self.tp.0.to_string(),
                partition: self.tp.1,
                offset: if base_offset < 0 {
                    -1
                } else {
                    base_offset + i as i64
                },
                timestamp: if log_append_time >= 0 {
                    log_append_time
                } else {
                    r.timestamp
                },
            }));
        }
        bytes
    }

    /// Splits into two halves (after MESSAGE_TOO_LARGE); sequences follow on.
    pub(crate) fn split(mut self) -> (ProducerBatch, ProducerBatch) {
        let half = self.records.len() / 2;
        let tail: Vec<PendingRecord> = self.records.split_off(half);
        let mk =
            |records: Vec<PendingRecord>, seq: Option<i32>, from: &ProducerBatch| ProducerBatch {
                tp: from.tp.clone(),
                bytes: BATCH_OVERHEAD + records.iter().map(|r| r.size).sum::<usize>(),
                records,
                created: from.created,
                deadline: from.deadline,
                attempts: from.attempts,
                retry_at: None,
                base_sequence: seq,
                producer: from.producer,
                maybe_written: from.maybe_written,
                after_unacked: false,
                last_error: from.last_error.clone(),
                closed: true,
            };
        let first_seq = self.base_sequence;
        let second_seq = first_seq.map(|s| s.wrapping_add(half as i32) & i32::MAX);
        let a = mk(std::mem::take(&mut self.records), first_seq, &self);
        let b = mk(tail, second_seq, &self);
        (a, b)
    }
}

/// Per-partition queues.
#[derive(Default)]
pub(crate) struct Accumulator {
    pub(crate) queues: HashMap<TopicPartition, VecDeque<ProducerBatch>>,
    /// Number of `flush` calls waiting: while above 0 every batch is ready at once.
    pub(crate) flushing: usize,
    /// Set by `close`: send everything, accept nothing more.
    pub(crate) closing: bool,
    /// One shared name per topic, so batches do not allocate it again.
    topics: HashMap<String, Arc<str>>,
}

impl Accumulator {
    /// The shared name of `topic`.
    pub(crate) fn intern(&mut self, topic: &str) -> Arc<str> {
        if let Some(t) = self.topics.get(topic) {
            return t.clone();
        }
        let t: Arc<str> = Arc::from(topic);
        self.topics.insert(topic.to_owned(), t.clone());
        t
    }

    /// Appends a record to its partition's open batch (or a new one). Returns true when the
    /// sender should be woken: a batch was opened (its linger timer starts) or became full.
    pub(crate) fn append(
        &mut self,
        tp: TopicPartition,
        record: PendingRecord,
        batch_size: usize,
        delivery_timeout: Duration,
    ) -> bool {
        let q = self.queues.entry(tp.clone()).or_default();
        let fits = q.back().is_some_and(|b| {
            !b.closed && (b.records.is_empty() || b.bytes + record.size <= batch_size)
        });
        if !fits {
            q.push_back(ProducerBatch::new(tp, delivery_timeout));
        }
        let b = q.back_mut().expect("a batch was just ensured");
        b.bytes += record.size;
        b.records.push(record);
        !fits || b.bytes >= batch_size
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

    fn rec(n: usize) -> (PendingRecord, oneshot::Receiver<Result<RecordMetadata>>) {
        let (tx, rx) = oneshot::channel();
        (
            PendingRecord {
                timestamp: 1,
                key: None,
                value: Some(Bytes::from(vec![0; n])),
                headers: vec![],
                size: n,
                tx,
            },
            rx,
        )
    }

    #[test]
    fn batches_fill_to_batch_size_then_a_new_one_opens() {
        let mut acc = Accumulator::default();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let d = Duration::from_secs(1);
        let mut rxs = vec![];
        for _ in 0..3 {
            let (r, rx) = rec(40);
            rxs.push(rx);
            acc.append(tp.clone(), r, 200, d);
        }
        assert_eq!(acc.queues[&tp].len(), 1);
        let (r, _rx) = rec(40);
        assert!(
            acc.append(tp.clone(), r, 200, d),
            "a second batch makes the first ready"
        );
        assert_eq!(acc.queues[&tp].len(), 2);
        // A record larger than batch_size still gets a batch of its own.
        let (r, _rx2) = rec(1000);
        acc.append(tp.clone(), r, 200, d);
        assert_eq!(acc.queues[&tp].len(), 3);
    }

    #[test]
    fn requeued_batches_go_back_in_sequence_order() {
        let mut acc = Accumulator::default();
        let tp: TopicPartition = (Arc::from("t"), 0);
        let d = Duration::from_secs(1);
        let (r, _rx) = rec(10);
        acc.append(tp.clone(), r, 100, d);
        let mut b5 = ProducerBatch::new(tp.clone(), d);
        b5.base_sequence = Some(5);
        b5.closed = true;
        let mut b0 = ProducerBatch::new(tp.clone(), d);
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

    /// A record carrying `id` in its value, accounted as `size` bytes.
    fn tagged(id: u32, size: usize) -> PendingRecord {
        let (tx, _rx) = oneshot::channel();
        PendingRecord {
            timestamp: 1,
            key: None,
            value: Some(Bytes::copy_from_slice(&id.to_be_bytes())),
            headers: vec![],
            size,
            tx,
        }
    }

    fn ids(b: &ProducerBatch) -> Vec<u32> {
        b.records
            .iter()
            .map(|r| {
                let v = r.value.as_deref().expect("tagged");
                u32::from_be_bytes(v.try_into().expect("4 bytes"))
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
            let d = Duration::from_secs(60);
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
                assert!(!b.records.is_empty(), "seed {seed}: empty batch queued");
                b.closed = true;
                if b.base_sequence.is_none() {
                    let seq = assign.entry(tp.clone()).or_insert(first_seq);
                    b.base_sequence = Some(*seq);
                    *seq = next_seq(*seq, b.records.len());
                }
                Some(b)
            };
            // The broker: appends the batch if it is the next sequence, else refuses it
            // (OUT_OF_ORDER_SEQUENCE_NUMBER) and the sender puts it back.
            let ack = |acc: &mut Accumulator,
                       expect: &mut HashMap<TopicPartition, i32>,
                       acked: &mut HashMap<TopicPartition, Vec<u32>>,
                       b: ProducerBatch| {
                let want = expect.entry(b.tp.clone()).or_insert(first_seq);
                if b.base_sequence == Some(*want) {
                    *want = next_seq(*want, b.records.len());
                    acked.entry(b.tp.clone()).or_default().extend(ids(&b));
                } else {
                    acc.requeue(b);
                }
            };

            for _ in 0..rng.gen_range(0..250) {
                match rng.gen_range(0..100) {
                    0..45 => {
                        let tp = partitions[rng.gen_range(0..partitions.len())].clone();
                        let size = rng.gen_range(1..batch_size * 3 / 2);
                        acc.append(tp.clone(), tagged(next_id, size), batch_size, d);
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
                        if in_flight[i].records.len() > 1 {
                            let (a, b) = in_flight.swap_remove(i).split();
                            assert_eq!(
                                b.base_sequence,
                                a.base_sequence.map(|s| next_seq(s, a.records.len())),
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
        for id in 0..2000 {
            acc.append(
                tp.clone(),
                tagged(id, rng.gen_range(1..300)),
                256,
                Duration::from_secs(1),
            );
        }
        let q = &acc.queues[&tp];
        let mut all = Vec::new();
        for b in q {
            assert_eq!(
                b.bytes,
                BATCH_OVERHEAD + b.records.iter().map(|r| r.size).sum::<usize>()
            );
            assert!(b.records.len() == 1 || b.bytes <= 256, "{} bytes", b.bytes);
            all.extend(ids(b));
        }
        assert_eq!(all, (0..2000).collect::<Vec<u32>>());
    }
}
