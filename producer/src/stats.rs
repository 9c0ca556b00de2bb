//! The producer's counters: relaxed atomics the sender adds to once per request and per batch
//! (never per record), and [`ProducerStats`], the snapshot [`Producer::stats`] returns.
//!
//! [`Producer::stats`]: crate::Producer::stats

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::accumulator::TopicPartition;

/// What a producer has counted since it was created ([`Producer::stats`]). Counts only go up,
/// except the buffer's.
///
/// With the `metrics` cargo feature, the same counts go to the `metrics` crate's recorder,
/// through handles registered once per partition (install the recorder before creating the
/// producer):
///
/// | Name | Kind | Unit | Labels |
/// | --- | --- | --- | --- |
/// | `kafkawire.producer.requests` | counter | Produce requests | |
/// | `kafkawire.producer.batches` | counter | batches sent, retries included | topic, partition |
/// | `kafkawire.producer.records` | counter | records sent, retries included | topic, partition |
/// | `kafkawire.producer.bytes` | counter | record batch bytes sent | topic, partition |
/// | `kafkawire.producer.retries` | counter | batches queued again | topic, partition |
/// | `kafkawire.producer.records.acked` | counter | records acknowledged | topic, partition |
/// | `kafkawire.producer.records.failed` | counter | records failed | topic, partition |
/// | `kafkawire.producer.buffer.records` | gauge | records unsettled | |
/// | `kafkawire.producer.buffer.bytes` | gauge | buffer memory in use, bytes | |
///
/// [`Producer::stats`]: crate::Producer::stats
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProducerStats {
    /// Records accepted by `send` and not settled yet: in the buffer or in flight
    /// ([`Producer::pending`](crate::Producer::pending)).
    pub buffered_records: u64,
    /// Bytes of buffer memory their batches hold now.
    pub buffered_bytes: u64,
    /// The buffer memory, in bytes (`buffer_memory`).
    pub buffer_memory: u64,
    /// Produce requests sent.
    pub requests: u64,
    /// Record batches sent, each attempt of a retried batch counted.
    pub batches_sent: u64,
    /// Records in those batches.
    pub records_sent: u64,
    /// Bytes of those batches (encoded record batches, compressed if compression is on).
    pub bytes_sent: u64,
    /// Records acknowledged (or sent, with acks=0).
    pub records_acked: u64,
    /// Batches queued again for another attempt (after a retriable error, a lost connection,
    /// a sequence error, or split in two after MESSAGE_TOO_LARGE).
    pub retries: u64,
    /// Records whose delivery failed: delivery timeout, a non-retriable error, a fatal
    /// producer error, or a close that gave up on them.
    pub failed_records: u64,
}

impl ProducerStats {
    /// Mean bytes per batch sent (0 before the first).
    pub fn average_batch_bytes(&self) -> f64 {
        ratio(self.bytes_sent, self.batches_sent)
    }

    /// Mean records per batch sent (0 before the first).
    pub fn average_batch_records(&self) -> f64 {
        ratio(self.records_sent, self.batches_sent)
    }

    /// Mean records per Produce request (0 before the first).
    pub fn records_per_request(&self) -> f64 {
        ratio(self.records_sent, self.requests)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

/// The counters behind [`ProducerStats`].
#[derive(Default)]
pub(crate) struct ProducerCounters {
    requests: AtomicU64,
    batches: AtomicU64,
    records: AtomicU64,
    bytes: AtomicU64,
    acked: AtomicU64,
    retries: AtomicU64,
    failed: AtomicU64,
    #[cfg(feature = "metrics")]
    export: export::Producer,
}

impl ProducerCounters {
    /// A Produce request was handed to its broker's dispatcher.
    pub(crate) fn on_request(&self) {
        self.requests.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.requests.increment(1);
    }

    /// A batch of `records` records and `bytes` bytes goes out in a request.
    pub(crate) fn on_batch(&self, _tp: &TopicPartition, records: usize, bytes: usize) {
        self.batches.fetch_add(1, Relaxed);
        self.records.fetch_add(records as u64, Relaxed);
        self.bytes.fetch_add(bytes as u64, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.batch(_tp, records, bytes);
    }

    /// A batch goes back to its queue for another attempt.
    pub(crate) fn on_retry(&self, _tp: &TopicPartition) {
        self.retries.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.partition(_tp).retries.increment(1);
    }

    /// `records` records of a batch were acknowledged.
    pub(crate) fn on_acked(&self, _tp: &TopicPartition, records: usize) {
        self.acked.fetch_add(records as u64, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.partition(_tp).acked.increment(records as u64);
    }

    /// `records` records of a batch failed.
    pub(crate) fn on_failed(&self, _tp: &TopicPartition, records: usize) {
        self.failed.fetch_add(records as u64, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.partition(_tp).failed.increment(records as u64);
    }

    /// The buffer now holds `records` unsettled records in `bytes` bytes (exported as gauges).
    #[cfg(feature = "metrics")]
    pub(crate) fn buffer(&self, records: usize, bytes: usize) {
        self.export.buffer_records.set(records as f64);
        self.export.buffer_bytes.set(bytes as f64);
    }

    pub(crate) fn snapshot(
        &self,
        buffered_records: usize,
        buffered_bytes: usize,
        buffer_memory: usize,
    ) -> ProducerStats {
        ProducerStats {
            buffered_records: buffered_records as u64,
            buffered_bytes: buffered_bytes as u64,
            buffer_memory: buffer_memory as u64,
            requests: self.requests.load(Relaxed),
            batches_sent: self.batches.load(Relaxed),
            records_sent: self.records.load(Relaxed),
            bytes_sent: self.bytes.load(Relaxed),
            records_acked: self.acked.load(Relaxed),
            retries: self.retries.load(Relaxed),
            failed_records: self.failed.load(Relaxed),
        }
    }
}

#[cfg(feature = "metrics")]
mod export {
    //! The `metrics` facade: producer-wide handles registered once, per-partition ones on a
    //! partition's first batch (looked up under a lock once per batch, never per record).

    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use metrics::{Counter, Gauge};

    use crate::accumulator::TopicPartition;

    pub(super) struct Partition {
        batches: Counter,
        records: Counter,
        bytes: Counter,
        pub(super) retries: Counter,
        pub(super) acked: Counter,
        pub(super) failed: Counter,
    }

    pub(super) struct Producer {
        pub(super) requests: Counter,
        pub(super) buffer_records: Gauge,
        pub(super) buffer_bytes: Gauge,
        partitions: Mutex<HashMap<TopicPartition, Arc<Partition>>>,
    }

    impl Default for Producer {
        fn default() -> Self {
            use metrics::Unit;
            static ONCE: std::sync::Once = std::sync::Once::new();
            ONCE.call_once(|| {
                metrics::describe_counter!(
                    "kafkawire.producer.requests",
                    Unit::Count,
                    "Produce requests sent"
                );
                metrics::describe_counter!(
                    "kafkawire.producer.batches",
                    Unit::Count,
                    "Record batches sent, retries included"
                );
                metrics::describe_counter!(
                    "kafkawire.producer.records",
                    Unit::Count,
                    "Records sent, retries included"
                );
                metrics::describe_counter!(
                    "kafkawire.producer.bytes",
                    Unit::Bytes,
                    "Record batch bytes sent"
                );
                metrics::describe_counter!(
                    "kafkawire.producer.retries",
                    Unit::Count,
                    "Batches queued again for another attempt"
                );
                metrics::describe_counter!(
                    "kafkawire.producer.records.acked",
                    Unit::Count,
                    "Records acknowledged"
                );
                metrics::describe_counter!(
                    "kafkawire.producer.records.failed",
                    Unit::Count,
                    "Records whose delivery failed"
                );
                metrics::describe_gauge!(
                    "kafkawire.producer.buffer.records",
                    Unit::Count,
                    "Records accepted and not settled"
                );
                metrics::describe_gauge!(
                    "kafkawire.producer.buffer.bytes",
                    Unit::Bytes,
                    "Buffer memory in use"
                );
            });
            Producer {
                requests: metrics::counter!("kafkawire.producer.requests"),
                buffer_records: metrics::gauge!("kafkawire.producer.buffer.records"),
                buffer_bytes: metrics::gauge!("kafkawire.producer.buffer.bytes"),
                partitions: Mutex::new(HashMap::new()),
            }
        }
    }

    impl Producer {
        pub(super) fn partition(&self, tp: &TopicPartition) -> Arc<Partition> {
            let mut map = self.partitions.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(p) = map.get(tp) {
                return p.clone();
            }
            let labels = || [("topic", tp.0.to_string()), ("partition", tp.1.to_string())];
            let p = Arc::new(Partition {
                batches: metrics::counter!("kafkawire.producer.batches", &labels()),
                records: metrics::counter!("kafkawire.producer.records", &labels()),
                bytes: metrics::counter!("kafkawire.producer.bytes", &labels()),
                retries: metrics::counter!("kafkawire.producer.retries", &labels()),
                acked: metrics::counter!("kafkawire.producer.records.acked", &labels()),
                failed: metrics::counter!("kafkawire.producer.records.failed", &labels()),
            });
            map.insert(tp.clone(), p.clone());
            p
        }

        pub(super) fn batch(&self, tp: &TopicPartition, records: usize, bytes: usize) {
            let p = self.partition(tp);
            p.batches.increment(1);
            p.records.increment(records as u64);
            p.bytes.increment(bytes as u64);
        }
    }
}
