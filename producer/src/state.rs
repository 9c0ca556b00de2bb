//! State shared by the producer handles and the sender: the accumulator, buffer memory,
//! producer id and sequences, transaction state, and the fatal error that stops everything.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use kafkawire_client::{Client, Error, Result};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use tokio::sync::{Notify, Semaphore};

use crate::accumulator::{
    Accumulator, BATCH_OVERHEAD, BatchSettings, ProducerBatch, RecordRef, TopicPartition,
    record_size, seq_before,
};
use crate::config::ProducerConfig;
use crate::stats::{ProducerCounters, ProducerStats};
use crate::txn::TxnState;
use crate::{DeliveryFuture, ProducerRecord};

/// Producer id and epoch, and each partition's sequence state (KIP-98, KIP-360).
///
/// The rules, as in the Java client's TransactionManager:
/// - a batch keeps the producer id, epoch and base sequence it first got for every retry, so
///   the broker deduplicates a batch whose earlier attempt it may have written;
/// - each partition has its own producer id and epoch: after an epoch bump, a partition moves to
///   the new epoch (at sequence 0) only once none of its batches is in flight;
/// - a partition whose sequence has a gap (a batch that got a sequence failed for good) is reset:
///   new batches wait, and once none of its batches is in flight and none queued may have been
///   written, the epoch is bumped and its unsent batches are numbered again from 0 under it.
///   Other partitions are not renumbered.
#[derive(Default)]
pub(crate) struct Ids {
    /// The newest producer id and epoch.
    pub(crate) producer: Option<(i64, i16)>,
    pub(crate) partitions: HashMap<TopicPartition, PartitionSeq>,
}

/// The sequence state of one partition.
pub(crate) struct PartitionSeq {
    /// The producer id and epoch its sequences belong to.
    pub(crate) producer: (i64, i16),
    /// The base sequence of its next new batch.
    pub(crate) next_seq: i32,
    /// Its sequence has a gap: new batches wait for an epoch bump.
    pub(crate) needs_reset: bool,
}

impl Ids {
    /// Whether a new batch of `tp` may get a sequence now (`busy`: batches of `tp` in flight).
    pub(crate) fn can_assign(&self, tp: &TopicPartition, busy: bool) -> bool {
        let Some(current) = self.producer else {
            return false;
        };
        match self.partitions.get(tp) {
            None => true,
            Some(p) => !p.needs_reset && (p.producer == current || !busy),
        }
    }

    /// The producer id, epoch and base sequence for a new batch of `records` records of `tp`;
    /// `None` when it must wait ([`Ids::can_assign`]).
    pub(crate) fn assign(
        &mut self,
        tp: &TopicPartition,
        records: usize,
        busy: bool,
    ) -> Option<((i64, i16), i32)> {
        if !self.can_assign(tp, busy) {
            return None;
        }
        let current = self.producer?;
        let p = self.partitions.entry(tp.clone()).or_insert(PartitionSeq {
            producer: current,
            next_seq: 0,
            needs_reset: false,
        });
        if p.producer != current {
            p.producer = current;
            p.next_seq = 0;
        }
        let seq = p.next_seq;
        p.next_seq = p.next_seq.wrapping_add(records as i32) & i32::MAX;
        Some((current, seq))
    }

    /// Whether `tp` waits for an epoch bump.
    pub(crate) fn needs_reset(&self, tp: &TopicPartition) -> bool {
        self.partitions.get(tp).is_some_and(|p| p.needs_reset)
    }
}

pub(crate) struct Shared {
    pub(crate) client: Client,
    pub(crate) config: ProducerConfig,
    /// How batches are opened (from `config`).
    pub(crate) settings: BatchSettings,
    /// Buffer memory in bytes, as the semaphore's permits (`buffer_memory`, capped).
    memory_total: usize,
    pub(crate) acc: Mutex<Accumulator>,
    memory: Semaphore,
    pub(crate) wake: Arc<Notify>,
    pub(crate) outstanding: AtomicUsize,
    idle: Notify,
    fatal: Mutex<Option<Error>>,
    /// `fatal` is set (checked on every send without taking the lock).
    has_fatal: AtomicBool,
    pub(crate) ids: Mutex<Ids>,
    pub(crate) txn: Mutex<TxnState>,
    /// Serialises the transactional calls.
    pub(crate) txn_calls: tokio::sync::Mutex<()>,
    refreshing: Arc<AtomicBool>,
    /// Set when a close gave up: requests still in flight settle their records at once.
    pub(crate) stopped: tokio::sync::watch::Sender<bool>,
    pub(crate) sender_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// Counted by the sender per request and per batch ([`crate::Producer::stats`]).
    pub(crate) stats: ProducerCounters,
}

impl Shared {
    pub(crate) fn new(client: Client, config: ProducerConfig) -> Shared {
        let permits = config
            .buffer_memory
            .min(Semaphore::MAX_PERMITS)
            .min(u32::MAX as usize);
        Shared {
            client,
            settings: BatchSettings {
                batch_size: config.batch_size,
                delivery_timeout: config.delivery_timeout,
                compression: kafkawire_protocol::records::CompressionConfig {
                    codec: config.compression,
                    level: config.compression_level,
                },
            },
            memory_total: permits,
            acc: Mutex::new(Accumulator::default()),
            memory: Semaphore::new(permits),
            wake: Arc::new(Notify::new()),
            outstanding: AtomicUsize::new(0),
            idle: Notify::new(),
            fatal: Mutex::new(None),
            has_fatal: AtomicBool::new(false),
            ids: Mutex::new(Ids::default()),
            txn: Mutex::new(TxnState::default()),
            txn_calls: tokio::sync::Mutex::new(()),
            refreshing: Arc::new(AtomicBool::new(false)),
            stopped: tokio::sync::watch::Sender::new(false),
            sender_task: Mutex::new(None),
            stats: ProducerCounters::default(),
            config,
        }
    }

    // ---- statistics ----

    /// Bytes of buffer memory held by batches now.
    fn memory_in_use(&self) -> usize {
        self.memory_total
            .saturating_sub(self.memory.available_permits())
    }

    /// A snapshot of the counters and the buffer.
    pub(crate) fn stats(&self) -> ProducerStats {
        self.stats.snapshot(
            self.outstanding.load(Ordering::Relaxed),
            self.memory_in_use(),
            self.memory_total,
        )
    }

    /// Exports the buffer's fill (with the `metrics` feature; a no-op without).
    pub(crate) fn export_buffer(&self) {
        #[cfg(feature = "metrics")]
        self.stats.buffer(
            self.outstanding.load(Ordering::Relaxed),
            self.memory_in_use(),
        );
    }

    // ---- accepting records ----

    /// Size check and state check before anything is reserved.
    pub(crate) fn check_record(&self, r: &ProducerRecord) -> Result<usize> {
        if self.has_fatal.load(Ordering::Acquire)
            && let Some(e) = self.fatal_error()
        {
            return Err(e);
        }
        // Closing is checked under the accumulator's lock when the record is appended.
        if self.config.transactional_id.is_some() {
            self.check_in_transaction()?;
        }
        let size = record_size(r.key.as_deref(), r.value.as_deref(), &r.headers);
        let limit = self.config.max_request_size.min(self.config.buffer_memory);
        if size + BATCH_OVERHEAD > limit {
            return Err(Error::RecordTooLarge {
                topic: r.topic.to_string(),
                size,
                limit,
                setting: if self.config.max_request_size <= self.config.buffer_memory {
                    "max_request_size"
                } else {
                    "buffer_memory"
                },
            });
        }
        Ok(size)
    }

    fn choose(&self, r: &ProducerRecord, partitions: usize) -> Result<i32> {
        let n = partitions as i32;
        match r.partition {
            Some(p) if (0..n).contains(&p) => Ok(p),
            Some(p) => Err(Error::broker_error(
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
                ApiKey::Produce,
                None,
                Some(&r.topic),
                Some(p),
                Some(format!("the topic has {n} partitions")),
            )),
            None => Ok(self
                .config
                .partitioner
                .partition(&r.topic, r.key.as_deref(), n)),
        }
    }

    /// The record's partition from cached metadata only (for `try_send`).
    pub(crate) fn partition_now(&self, r: &ProducerRecord) -> Result<i32> {
        match self.client.metadata().partition_count(&r.topic) {
            Some(n) if n > 0 => self.choose(r, n),
            _ => Err(Error::NoLeader {
                topic: r.topic.to_string(),
                partition: r.partition.unwrap_or(-1),
                reason: Some("no metadata for the topic yet; use send, which waits for it".into()),
            }),
        }
    }

    /// The record's partition, fetching the topic's metadata if needed (retried while the
    /// error is retriable; the caller bounds it by `max_block`).
    pub(crate) async fn partition_for(&self, r: &ProducerRecord) -> Result<i32> {
        if let Some(n) = self
            .client
            .metadata()
            .partition_count(&r.topic)
            .filter(|n| *n > 0)
        {
            return self.choose(r, n);
        }
        let mut attempt = 0;
        loop {
            match self.client.topic_metadata(&r.topic).await {
                Ok(t) => return self.choose(r, t.partitions.len()),
                Err(e) if e.is_retriable() => {
                    attempt += 1;
                    tokio::time::sleep(crate::sender::backoff(
                        self.config.retry_backoff,
                        self.config.retry_backoff_max,
                        attempt,
                    ))
                    .await;
                }
                Err(e) => return Err(e),
            }
        }
    }

    pub(crate) async fn reserve(&self, size: usize) -> Result<usize> {
        if let Ok(held) = self.try_reserve(size) {
            return Ok(held);
        }
        match tokio::time::timeout(self.config.max_block, self.memory.acquire_many(size as u32))
            .await
        {
            Ok(Ok(p)) => {
                p.forget();
                Ok(size)
            }
            Ok(Err(_)) => Err(Error::ProducerClosed { reason: None }),
            Err(_) => Err(Error::BufferFull {
                buffer_memory: self.config.buffer_memory,
                waited_ms: Some(self.config.max_block.as_millis() as u64),
            }),
        }
    }

    pub(crate) fn try_reserve(&self, size: usize) -> Result<usize> {
        match self.memory.try_acquire_many(size as u32) {
            Ok(p) => {
                p.forget();
                Ok(size)
            }
            Err(_) => Err(Error::BufferFull {
                buffer_memory: self.config.buffer_memory,
                waited_ms: None,
            }),
        }
    }

    /// Encodes the record into its partition's open batch, growing it or opening a new one
    /// with `reservation` bytes of buffer memory (held by the caller). `Ok(Err(n))`: that
    /// needs `n` bytes of buffer memory and no reservation was given; reserve them and call
    /// again. On an error the caller still holds its reservation.
    pub(crate) fn append(
        &self,
        r: &ProducerRecord,
        partition: i32,
        size: usize,
        timestamp: i64,
        reservation: Option<usize>,
    ) -> Result<std::result::Result<DeliveryFuture, usize>> {
        let mut header_refs: Vec<(&str, Option<&[u8]>)> = Vec::new();
        if !r.headers.is_empty() {
            header_refs.extend(r.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())));
        }
        let rec = RecordRef {
            timestamp,
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &header_refs,
            size,
        };
        let appended = {
            let mut acc = self.acc.lock().map_err(|_| Error::ProducerClosed {
                reason: Some("internal state poisoned".into()),
            })?;
            if acc.closing {
                return Err(Error::ProducerClosed { reason: None });
            }
            match acc.append(&r.topic, partition, &rec, reservation, &self.settings) {
                // Counted while the lock is held: the sender cannot settle the record (and
                // count it out) before it is counted in.
                Ok(Some(a)) => {
                    self.outstanding.fetch_add(1, Ordering::SeqCst);
                    a
                }
                Ok(None) => {
                    let need = acc.needed(&r.topic, partition, &rec, &self.settings);
                    // Never more than the whole buffer (a larger batch_size than buffer_memory).
                    return Ok(Err(need.clamp(1, self.memory_total)));
                }
                Err(source) => {
                    return Err(Error::Encode {
                        api: ApiKey::Produce,
                        source,
                    });
                }
            }
        };
        let a = appended;
        if a.unused_reservation > 0 {
            self.memory.add_permits(a.unused_reservation);
        }
        self.config.partitioner.on_append(&r.topic, partition, size);
        if a.wake {
            self.wake.notify_one();
        }
        Ok(Ok(DeliveryFuture {
            completion: a.completion,
            index: a.index,
            timestamp,
            topic: a.topic,
            partition,
        }))
    }

    /// Gives back buffer memory a caller reserved and did not use.
    pub(crate) fn unreserve(&self, bytes: usize) {
        self.memory.add_permits(bytes);
    }

    // ---- settling batches ----

    fn release(&self, bytes: usize, records: usize) {
        self.memory.add_permits(bytes);
        // Saturating: a close that gave up has already counted everything out.
        let before = self
            .outstanding
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(records))
            })
            .unwrap_or(0);
        if before <= records {
            self.idle.notify_waiters();
        }
    }

    /// The count of unsettled records drops before the futures resolve, so an application that
    /// sees its record acknowledged also sees it counted out of `pending()`.
    pub(crate) fn complete_ok(&self, b: ProducerBatch, base_offset: i64, append_time: i64) {
        self.stats.on_acked(&b.tp, b.record_count);
        self.release(b.reserved, b.record_count);
        b.succeed(base_offset, append_time);
    }

    pub(crate) fn complete_failed(&self, b: ProducerBatch, err: &Error) {
        if self.config.transactional_id.is_some() {
            self.txn_abortable(err);
        }
        self.stats.on_failed(&b.tp, b.record_count);
        self.release(b.reserved, b.record_count);
        b.fail(err);
    }

    pub(crate) fn requeue(&self, b: ProducerBatch) {
        match self.acc.lock() {
            Ok(mut acc) => acc.requeue(b),
            Err(_) => self.complete_failed(
                b,
                &Error::ProducerClosed {
                    reason: Some("internal state poisoned".into()),
                },
            ),
        }
    }

    pub(crate) fn has_earlier_queued(&self, tp: &TopicPartition, seq: i32) -> bool {
        self.acc.lock().is_ok_and(|acc| {
            acc.queues.get(tp).is_some_and(|q| {
                q.iter()
                    .any(|b| b.base_sequence.is_some_and(|s| seq_before(s, seq)))
            })
        })
    }

    /// Fails every queued batch (after a fatal error, or at close).
    pub(crate) fn fail_queued(&self) {
        let err = self
            .fatal_error()
            .unwrap_or(Error::ProducerClosed { reason: None });
        let batches: Vec<ProducerBatch> = match self.acc.lock() {
            Ok(mut acc) => acc.queues.values_mut().flat_map(|q| q.drain(..)).collect(),
            Err(_) => return,
        };
        for b in batches {
            self.stats.on_failed(&b.tp, b.record_count);
            self.release(b.reserved, b.record_count);
            b.fail(&err);
        }
    }

    pub(crate) fn finished(&self, inflight_requests: usize) -> bool {
        inflight_requests == 0 && self.acc.lock().map(|a| a.is_empty()).unwrap_or(true)
    }

    // ---- fatal state ----

    pub(crate) fn set_fatal(&self, e: Error) {
        if let Ok(mut f) = self.fatal.lock() {
            f.get_or_insert(e);
        }
        self.has_fatal.store(true, Ordering::Release);
    }

    pub(crate) fn fatal_error(&self) -> Option<Error> {
        self.fatal.lock().ok().and_then(|f| f.clone())
    }

    pub(crate) fn is_fatal(&self) -> bool {
        self.fatal.lock().map(|f| f.is_some()).unwrap_or(true)
    }

    // ---- producer id and sequences ----

    pub(crate) fn ids(&self) -> Option<(i64, i16)> {
        self.ids.lock().ok().and_then(|i| i.producer)
    }

    /// A sequence number of `tp` will never be acknowledged: the partition's sequence has a
    /// gap. A transaction becomes abortable; an idempotent producer resets the partition.
    pub(crate) fn sequence_gap(&self, tp: &TopicPartition) {
        if self.config.transactional_id.is_some() {
            self.txn_abortable(&Error::TransactionState(
                "a record of this transaction failed; abort the transaction".into(),
            ));
        } else if let Ok(mut ids) = self.ids.lock()
            && let Some(p) = ids.partitions.get_mut(tp)
        {
            if !p.needs_reset {
                tracing::debug!(topic = %tp.0, partition = tp.1, "sequence gap: the partition will move to a new epoch");
            }
            p.needs_reset = true;
        }
    }

    /// Gets a producer id for an idempotent producer, or bumps the epoch (KIP-360) for the
    /// partitions with a sequence gap once none of their batches is in flight (`busy`) and
    /// none queued may have been written; those partitions' unsent batches are then numbered
    /// again from 0. Transactional producers get theirs from `init_transactions`.
    pub(crate) async fn ensure_producer_id(
        &self,
        busy: impl Fn(&TopicPartition) -> bool,
    ) -> Result<()> {
        if !self.config.enable_idempotence || self.config.transactional_id.is_some() {
            return Ok(());
        }
        let (current, resetting) = match self.ids.lock() {
            Ok(i) => (
                i.producer,
                i.partitions
                    .iter()
                    .filter(|(_, p)| p.needs_reset)
                    .map(|(tp, _)| tp.clone())
                    .collect::<Vec<_>>(),
            ),
            Err(_) => return Ok(()),
        };
        if current.is_some() && resetting.is_empty() {
            return Ok(());
        }
        if current.is_none() && self.acc.lock().map(|a| a.is_empty()).unwrap_or(true) {
            return Ok(()); // nothing to send yet: ask when there is
        }
        if current.is_some() {
            // Waits for a batch that may have been written only while it is the first one
            // with a sequence: behind one the broker has refused, nothing can have been
            // written (the broker appends a producer's batches in sequence order).
            let unsettled = self.acc.lock().map_or(true, |acc| {
                resetting.iter().any(|tp| {
                    busy(tp)
                        || acc.queues.get(tp).is_some_and(|q| {
                            q.iter()
                                .find(|b| b.base_sequence.is_some())
                                .is_some_and(|b| b.maybe_written)
                        })
                })
            });
            if unsettled {
                return Ok(()); // their outcome decides first
            }
        }
        let (pid, epoch) = current.unwrap_or((-1, -1));
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: i32::MAX,
            producer_id: pid,
            producer_epoch: epoch,
            ..Default::default()
        };
        let conn = self.client.any_connection().await?;
        let version = conn.version_for(ApiKey::InitProducerId)?;
        let req = if version < 3 {
            InitProducerIdRequest {
                producer_id: -1,
                producer_epoch: -1,
                ..req
            }
        } else {
            req
        };
        let mut resp = conn.send_version(&req, version).await?;
        if resp.error_code != 0
            && req.producer_id >= 0
            && !ErrorCode(resp.error_code).is_retriable()
        {
            // The broker would not bump the epoch (some brokers only bump for transactional
            // producers): start over with a new producer id instead.
            tracing::info!(code = %ErrorCode(resp.error_code), "epoch bump refused; asking for a new producer id");
            let fresh = InitProducerIdRequest {
                producer_id: -1,
                producer_epoch: -1,
                ..req
            };
            resp = conn.send_version(&fresh, version).await?;
        }
        if resp.error_code != 0 {
            let e = Error::broker_error(
                ErrorCode(resp.error_code),
                ApiKey::InitProducerId,
                Some(conn.broker()),
                None,
                None,
                None,
            );
            if !e.is_retriable() {
                self.set_fatal(e.clone());
            }
            return Err(e);
        }
        let fresh = (resp.producer_id, resp.producer_epoch);
        tracing::debug!(
            producer_id = fresh.0,
            epoch = fresh.1,
            partitions = resetting.len(),
            "producer id assigned"
        );
        if let Ok(mut ids) = self.ids.lock() {
            ids.producer = Some(fresh);
            for tp in &resetting {
                ids.partitions.remove(tp);
            }
        }
        if let Ok(mut acc) = self.acc.lock() {
            for tp in &resetting {
                for b in acc
                    .queues
                    .get_mut(tp)
                    .into_iter()
                    .flat_map(|q| q.iter_mut())
                {
                    b.base_sequence = None;
                    b.producer = None;
                    b.maybe_written = false;
                }
            }
        }
        Ok(())
    }

    /// Adopts a producer id and epoch for every partition and starts every sequence again at
    /// 0 (transactions: after InitProducerId, with nothing in flight).
    pub(crate) fn reset_sequences(&self, producer: (i64, i16)) {
        if let Ok(mut ids) = self.ids.lock() {
            ids.producer = Some(producer);
            ids.partitions.clear();
        }
        if let Ok(mut acc) = self.acc.lock() {
            for b in acc.queues.values_mut().flat_map(|q| q.iter_mut()) {
                b.base_sequence = None;
                b.producer = None;
            }
        }
    }

    // ---- metadata ----

    pub(crate) fn refresh_metadata_soon(&self) {
        if self.refreshing.swap(true, Ordering::SeqCst) {
            return;
        }
        let topics: Vec<String> = self
            .acc
            .lock()
            .map(|a| {
                let mut t: Vec<String> = a.queues.keys().map(|(t, _)| t.to_string()).collect();
                t.sort();
                t.dedup();
                t
            })
            .unwrap_or_default();
        let client = self.client.clone();
        let flag = self.refreshing.clone();
        let wake = self.wake.clone();
        let pause = self.config.retry_backoff;
        tokio::spawn(async move {
            let refs: Vec<&str> = topics.iter().map(String::as_str).collect();
            if let Err(e) = client.refresh_metadata(&refs).await {
                tracing::debug!(error = %e, "metadata refresh failed");
                tokio::time::sleep(pause).await;
            }
            flag.store(false, Ordering::SeqCst);
            wake.notify_one();
        });
    }

    // ---- flush and close ----

    async fn wait_idle(&self) {
        loop {
            let notified = self.idle.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.outstanding.load(Ordering::SeqCst) == 0 {
                return;
            }
            notified.await;
        }
    }

    /// Sends everything now and waits until every record accepted so far is settled.
    pub(crate) async fn flush(&self) {
        if let Ok(mut acc) = self.acc.lock() {
            acc.flushing += 1;
        }
        self.wake.notify_one();
        self.wait_idle().await;
        if let Ok(mut acc) = self.acc.lock() {
            acc.flushing -= 1;
        }
    }

    /// As [`Shared::flush`], giving up after `timeout` (the records stay in flight).
    pub(crate) async fn flush_within(&self, timeout: Duration) -> Result<()> {
        match tokio::time::timeout(timeout, self.flush()).await {
            Ok(()) => Ok(()),
            Err(_) => {
                if let Ok(mut acc) = self.acc.lock() {
                    acc.flushing = acc.flushing.saturating_sub(1);
                }
                Err(Error::Incomplete {
                    operation: "flush",
                    timeout_ms: timeout.as_millis() as u64,
                    unsettled: self.outstanding.load(Ordering::SeqCst),
                })
            }
        }
    }

    pub(crate) async fn close(&self, timeout: Duration) -> Result<()> {
        if let Ok(mut acc) = self.acc.lock() {
            acc.closing = true;
        }
        self.wake.notify_one();
        let settled = tokio::time::timeout(timeout, self.wait_idle())
            .await
            .is_ok();
        if !settled {
            let unsettled = self.outstanding.load(Ordering::SeqCst);
            self.set_fatal(Error::ProducerClosed {
                reason: Some(format!(
                    "closed after {} ms with records unsettled",
                    timeout.as_millis()
                )),
            });
            self.fail_queued();
            if let Some(t) = self.sender_task.lock().ok().and_then(|mut t| t.take()) {
                t.abort();
            }
            self.stopped.send_replace(true);
            // Batches in flight are dropped with the sender: their futures resolve with
            // ProducerClosed when their senders drop. Nothing is left to wait for.
            self.outstanding.store(0, Ordering::SeqCst);
            self.idle.notify_waiters();
            return Err(Error::ProducerClosed {
                reason: Some(format!(
                    "{unsettled} records were not settled within the close timeout of {} ms; \
                     those in flight may still be written",
                    timeout.as_millis()
                )),
            });
        }
        Ok(())
    }

    /// Partitions added to the current transaction (`None` without transactions).
    pub(crate) fn txn_partitions(&self) -> Option<HashSet<TopicPartition>> {
        self.config.transactional_id.as_ref()?;
        self.txn.lock().ok().map(|t| t.added.clone())
    }
}
