//! Transactions (KIP-98): `init_transactions`, `begin_transaction`,
//! `send_offsets_to_transaction`, `commit_transaction`, `abort_transaction`.
//!
//! The transaction coordinator is found with FindCoordinator (key type 1). Partitions are added
//! to the transaction (AddPartitionsToTxn, batched) by the sender before their first batch
//! goes out. A failed record makes the transaction abortable: `commit_transaction` then fails
//! and the application aborts and carries on. Fencing (PRODUCER_FENCED, INVALID_PRODUCER_EPOCH)
//! is fatal: every later call fails with that error.

use std::collections::HashSet;
use std::time::Duration;

use kafkawire_client::{Error, Result};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use kafkawire_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafkawire_protocol::messages::end_txn_request::EndTxnRequest;
use kafkawire_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafkawire_protocol::messages::txn_offset_commit_request::{
    TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
};
use kafkawire_protocol::messages::{ApiKey, Request};

use crate::accumulator::TopicPartition;
use crate::state::Shared;
use crate::{Producer, sender};

/// An offset to commit as part of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitionOffset {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The next offset to consume (the last processed offset + 1).
    pub offset: i64,
    /// Optional commit metadata.
    pub metadata: Option<String>,
}

/// The consumer group a transaction's offsets belong to (KIP-447: generation and member id let
/// the coordinator fence zombie members).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerGroupMetadata {
    /// Group id.
    pub group_id: String,
    /// Generation id (-1 when unknown).
    pub generation_id: i32,
    /// Member id (empty when unknown).
    pub member_id: String,
    /// Static member id, if any.
    pub group_instance_id: Option<String>,
}

impl ConsumerGroupMetadata {
    /// Metadata naming only the group (no generation fencing).
    pub fn new(group_id: &str) -> Self {
        ConsumerGroupMetadata {
            group_id: group_id.to_owned(),
            generation_id: -1,
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    #[default]
    Uninitialized,
    Ready,
    InTransaction,
}

#[derive(Default)]
pub(crate) struct TxnState {
    pub(crate) phase: Phase,
    pub(crate) coordinator: Option<i32>,
    pub(crate) added: HashSet<TopicPartition>,
    /// Something (a partition or offsets) was added: EndTxn is needed to finish.
    pub(crate) started: bool,
    /// Set when a record of the transaction failed: only an abort is allowed now.
    pub(crate) abortable: Option<Error>,
}

fn retriable_coordinator(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NOT_COORDINATOR
            | ErrorCode::COORDINATOR_NOT_AVAILABLE
            | ErrorCode::COORDINATOR_LOAD_IN_PROGRESS
            | ErrorCode::CONCURRENT_TRANSACTIONS
    ) || code.is_retriable()
}

fn fencing(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::PRODUCER_FENCED
            | ErrorCode::INVALID_PRODUCER_EPOCH
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | ErrorCode::INVALID_PRODUCER_ID_MAPPING
    )
}

impl Shared {
    pub(crate) fn check_in_transaction(&self) -> Result<()> {
        let t = self
            .txn
            .lock()
            .map_err(|_| Error::TransactionState("state poisoned".into()))?;
        if let Some(e) = &t.abortable {
            return Err(Error::TransactionState(format!(
                "the transaction must be aborted first: {e}"
            )));
        }
        match t.phase {
            Phase::InTransaction => Ok(()),
            Phase::Uninitialized => Err(Error::TransactionState(
                "call init_transactions first".into(),
            )),
            Phase::Ready => Err(Error::TransactionState(
                "call begin_transaction before sending".into(),
            )),
        }
    }

    pub(crate) fn txn_abortable(&self, e: &Error) {
        if let Ok(mut t) = self.txn.lock()
            && t.phase == Phase::InTransaction
            && t.abortable.is_none()
        {
            t.abortable = Some(e.clone());
        }
    }

    fn txn_id(&self) -> String {
        self.config.transactional_id.clone().unwrap_or_default()
    }

    fn producer_or_err(&self) -> Result<(i64, i16)> {
        self.ids()
            .ok_or_else(|| Error::TransactionState("call init_transactions first".into()))
    }

    /// Sends `make()` to the transaction coordinator, finding it (again) as needed and retrying
    /// retriable errors with backoff within the transaction timeout. `code_of` extracts the
    /// error code of the response.
    async fn to_coordinator<R: Request>(
        &self,
        make: impl Fn() -> R,
        code_of: impl Fn(&R::Response) -> i16,
    ) -> Result<R::Response> {
        self.to_coordinator_capped(make, code_of, i16::MAX).await
    }

    /// As [`Shared::to_coordinator`], with the request version capped at `max_version`.
    async fn to_coordinator_capped<R: Request>(
        &self,
        make: impl Fn() -> R,
        code_of: impl Fn(&R::Response) -> i16,
        max_version: i16,
    ) -> Result<R::Response> {
        let deadline = tokio::time::Instant::now()
            + self.config.transaction_timeout.max(Duration::from_secs(5));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = async {
                let node = match self.txn.lock().ok().and_then(|t| t.coordinator) {
                    Some(n) => n,
                    None => {
                        let n = self.client.find_coordinator(1, &self.txn_id()).await?;
                        if let Ok(mut t) = self.txn.lock() {
                            t.coordinator = Some(n);
                        }
                        n
                    }
                };
                let conn = self.client.broker_connection(node).await?;
                let version = conn.version_for(R::API_KEY)?.min(max_version);
                let resp = match conn.send_version(&make(), version).await {
                    Ok(r) => r,
                    Err(e) => {
                        if matches!(
                            e,
                            Error::Io { .. }
                                | Error::ConnectionClosed { .. }
                                | Error::Decode { .. }
                        ) {
                            conn.retire();
                        }
                        return Err(e);
                    }
                };
                let code = ErrorCode(code_of(&resp));
                if code.is_ok() {
                    Ok(resp)
                } else {
                    Err(Error::broker_error(
                        code,
                        R::API_KEY,
                        None,
                        None,
                        None,
                        Some(format!("transactional id {}", self.txn_id())),
                    ))
                }
            }
            .await;
            match result {
                Ok(r) => return Ok(r),
                Err(e) => {
                    let code = e.code().unwrap_or(ErrorCode::NONE);
                    if fencing(code) {
                        self.set_fatal(e.clone());
                        return Err(e);
                    }
                    let retry = e.is_retriable() || retriable_coordinator(code);
                    if !retry || tokio::time::Instant::now() >= deadline {
                        return Err(e);
                    }
                    if (e.invalidates_metadata()
                        || matches!(
                            code,
                            ErrorCode::NOT_COORDINATOR | ErrorCode::COORDINATOR_NOT_AVAILABLE
                        ))
                        && let Ok(mut t) = self.txn.lock()
                    {
                        t.coordinator = None;
                    }
                    tokio::time::sleep(sender::backoff(
                        self.config.retry_backoff,
                        self.config.retry_backoff_max,
                        attempt,
                    ))
                    .await;
                }
            }
        }
    }

    /// Adds partitions to the transaction before their first batch goes out. Failures other
    /// than retriable ones make the transaction abortable (and fatal ones fence the producer).
    pub(crate) async fn add_partitions_to_txn(&self, tps: Vec<TopicPartition>) {
        let Ok((pid, epoch)) = self.producer_or_err() else {
            return;
        };
        let mut topics: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
        for (t, p) in &tps {
            topics.entry(t.to_string()).or_default().push(*p);
        }
        let txn_id = self.txn_id();
        let make = || AddPartitionsToTxnRequest {
            v3_and_below_transactional_id: txn_id.clone(),
            v3_and_below_producer_id: pid,
            v3_and_below_producer_epoch: epoch,
            v3_and_below_topics: topics
                .iter()
                .map(|(name, partitions)| AddPartitionsToTxnTopic {
                    name: name.clone(),
                    partitions: partitions.clone(),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let first_error = |r: &kafkawire_protocol::messages::add_partitions_to_txn_response::AddPartitionsToTxnResponse| {
            if r.error_code != 0 {
                return r.error_code;
            }
            r.results_by_topic_v3_and_below
                .iter()
                .flat_map(|t| t.results_by_partition.iter())
                .map(|p| p.partition_error_code)
                .find(|c| *c != 0)
                .unwrap_or(0)
        };
        // Clients speak AddPartitionsToTxn v3 or lower: v4+ is the brokers' batched form (KIP-890).
        match self.to_coordinator_capped(make, first_error, 3).await {
            Ok(_) => {
                if let Ok(mut t) = self.txn.lock() {
                    t.added.extend(tps);
                    t.started = true;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "AddPartitionsToTxn failed");
                self.txn_abortable(&e);
                // The batches of those partitions cannot be sent in this transaction.
                let failed: Vec<_> = match self.acc.lock() {
                    Ok(mut acc) => tps
                        .iter()
                        .filter_map(|tp| acc.queues.remove(tp))
                        .flatten()
                        .collect(),
                    Err(_) => Vec::new(),
                };
                for b in failed {
                    self.complete_failed(b, &e);
                }
            }
        }
    }

    /// InitProducerId for the transactional id: `(-1, -1)` to register (fencing older
    /// producers), or the current id and epoch to bump the epoch (KIP-360). Adopts the answer
    /// and starts sequences again at 0.
    async fn init_producer_id(&self, (producer_id, producer_epoch): (i64, i16)) -> Result<()> {
        let txn_id = self.txn_id();
        let timeout_ms = self
            .config
            .transaction_timeout
            .as_millis()
            .min(i32::MAX as u128) as i32;
        let resp = self
            .to_coordinator(
                || InitProducerIdRequest {
                    transactional_id: Some(txn_id.clone()),
                    transaction_timeout_ms: timeout_ms,
                    producer_id,
                    producer_epoch,
                    ..Default::default()
                },
                |r| r.error_code,
            )
            .await?;
        self.reset_sequences((resp.producer_id, resp.producer_epoch));
        Ok(())
    }

    async fn end_txn(&self, commit: bool) -> Result<()> {
        let started = self.txn.lock().map(|t| t.started).unwrap_or(false);
        if started {
            let (pid, epoch) = self.producer_or_err()?;
            let txn_id = self.txn_id();
            self.to_coordinator(
                || EndTxnRequest {
                    transactional_id: txn_id.clone(),
                    producer_id: pid,
                    producer_epoch: epoch,
                    committed: commit,
                    ..Default::default()
                },
                |r| r.error_code,
            )
            .await?;
        }
        if let Ok(mut t) = self.txn.lock() {
            t.phase = Phase::Ready;
            t.added.clear();
            t.started = false;
            t.abortable = None;
        }
        Ok(())
    }

    fn fatal_check(&self) -> Result<()> {
        match self.fatal_error() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Producer {
    fn require_transactional(&self) -> Result<()> {
        if self.shared.config.transactional_id.is_none() {
            return Err(Error::TransactionState(
                "this producer has no transactional_id".into(),
            ));
        }
        self.shared.fatal_check()
    }

    /// Registers the transactional id with its coordinator and gets the producer id and epoch
    /// (InitProducerId), fencing any earlier producer with the same transactional id and
    /// completing or aborting its open transaction. Call once, before the first transaction.
    ///
    /// # Errors
    /// [`Error::TransactionState`] without a transactional id; coordinator errors after retries
    /// within the transaction timeout.
    pub async fn init_transactions(&self) -> Result<()> {
        self.require_transactional()?;
        let _guard = self.shared.txn_calls.lock().await;
        let s = &self.shared;
        s.init_producer_id((-1, -1)).await?;
        if let Ok(mut t) = s.txn.lock() {
            t.phase = Phase::Ready;
        }
        Ok(())
    }

    /// Starts a transaction: records sent from now until commit or abort belong to it.
    ///
    /// # Errors
    /// [`Error::TransactionState`] unless `init_transactions` succeeded and no transaction is
    /// open; the fatal error after fencing.
    pub fn begin_transaction(&self) -> Result<()> {
        self.require_transactional()?;
        let mut t = self
            .shared
            .txn
            .lock()
            .map_err(|_| Error::TransactionState("state poisoned".into()))?;
        match t.phase {
            Phase::Ready => {
                t.phase = Phase::InTransaction;
                t.added.clear();
                t.started = false;
                t.abortable = None;
                Ok(())
            }
            Phase::Uninitialized => Err(Error::TransactionState(
                "call init_transactions first".into(),
            )),
            Phase::InTransaction => Err(Error::TransactionState(
                "a transaction is already open".into(),
            )),
        }
    }

    /// Adds consumer offsets to the transaction, so they commit if and only if the transaction
    /// does (AddOffsetsToTxn to the transaction coordinator, then TxnOffsetCommit to the group
    /// coordinator).
    ///
    /// # Errors
    /// [`Error::TransactionState`] outside a transaction; coordinator errors.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &[TopicPartitionOffset],
        group: &ConsumerGroupMetadata,
    ) -> Result<()> {
        self.require_transactional()?;
        self.shared.check_in_transaction()?;
        let _guard = self.shared.txn_calls.lock().await;
        let s = &self.shared;
        let (pid, epoch) = s.producer_or_err()?;
        let txn_id = s.txn_id();
        s.to_coordinator(
            || AddOffsetsToTxnRequest {
                transactional_id: txn_id.clone(),
                producer_id: pid,
                producer_epoch: epoch,
                group_id: group.group_id.clone(),
                ..Default::default()
            },
            |r| r.error_code,
        )
        .await?;
        if let Ok(mut t) = s.txn.lock() {
            t.started = true;
        }
        let mut topics: std::collections::BTreeMap<&str, Vec<TxnOffsetCommitRequestPartition>> =
            Default::default();
        for o in offsets {
            topics
                .entry(&o.topic)
                .or_default()
                .push(TxnOffsetCommitRequestPartition {
                    partition_index: o.partition,
                    committed_offset: o.offset,
                    committed_leader_epoch: -1,
                    committed_metadata: o.metadata.clone(),
                    ..Default::default()
                });
        }
        let req = TxnOffsetCommitRequest {
            transactional_id: txn_id.clone(),
            group_id: group.group_id.clone(),
            producer_id: pid,
            producer_epoch: epoch,
            generation_id: group.generation_id,
            member_id: group.member_id.clone(),
            group_instance_id: group.group_instance_id.clone(),
            topics: topics
                .into_iter()
                .map(|(name, partitions)| TxnOffsetCommitRequestTopic {
                    name: name.to_owned(),
                    partitions,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let node = s.client.find_coordinator(0, &group.group_id).await?;
            let resp = s.client.send_to(node, &req).await?;
            let code = resp
                .topics
                .iter()
                .flat_map(|t| t.partitions.iter())
                .map(|p| ErrorCode(p.error_code))
                .find(|c| !c.is_ok())
                .unwrap_or(ErrorCode::NONE);
            if code.is_ok() {
                return Ok(());
            }
            let e = Error::broker_error(
                code,
                ApiKey::TxnOffsetCommit,
                None,
                None,
                None,
                Some(format!("group {}", group.group_id)),
            );
            if fencing(code) {
                s.set_fatal(e.clone());
                return Err(e);
            }
            if !retriable_coordinator(code) || attempt >= 10 {
                s.txn_abortable(&e);
                return Err(e);
            }
            tokio::time::sleep(sender::backoff(
                s.config.retry_backoff,
                s.config.retry_backoff_max,
                attempt,
            ))
            .await;
        }
    }

    /// Flushes, then commits the transaction (EndTxn). If any record of the transaction failed,
    /// nothing is committed: the error says so and the transaction must be aborted.
    ///
    /// # Errors
    /// [`Error::TransactionState`] outside a transaction or after a failed record; coordinator
    /// errors; the fatal error after fencing.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.require_transactional()?;
        self.shared.check_in_transaction()?;
        let _guard = self.shared.txn_calls.lock().await;
        self.shared.flush().await;
        self.shared.fatal_check()?;
        if let Some(e) = self
            .shared
            .txn
            .lock()
            .ok()
            .and_then(|t| t.abortable.clone())
        {
            return Err(Error::TransactionState(format!(
                "cannot commit, abort instead: {e}"
            )));
        }
        self.shared.end_txn(true).await
    }

    /// Aborts the transaction: records not yet sent are dropped (their futures fail), records
    /// already written are marked aborted (EndTxn), and the producer is ready for the next
    /// transaction.
    ///
    /// # Errors
    /// [`Error::TransactionState`] outside a transaction; coordinator errors; the fatal error
    /// after fencing.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.require_transactional()?;
        {
            let t = self
                .shared
                .txn
                .lock()
                .map_err(|_| Error::TransactionState("state poisoned".into()))?;
            if t.phase != Phase::InTransaction {
                return Err(Error::TransactionState("no transaction is open".into()));
            }
        }
        let _guard = self.shared.txn_calls.lock().await;
        let aborted = Error::TransactionState("the transaction was aborted".into());
        let queued: Vec<_> = match self.shared.acc.lock() {
            Ok(mut acc) => acc.queues.values_mut().flat_map(|q| q.drain(..)).collect(),
            Err(_) => Vec::new(),
        };
        // A dropped batch that already had sequence numbers, or a failed record, leaves a gap
        // in its partition's sequence: the epoch is bumped after the abort (KIP-360).
        let mut gap = self
            .shared
            .txn
            .lock()
            .map(|t| t.abortable.is_some())
            .unwrap_or(true);
        for b in queued {
            gap |= b.base_sequence.is_some();
            self.shared.complete_failed(b, &aborted);
        }
        self.shared.flush().await;
        self.shared.fatal_check()?;
        self.shared.end_txn(false).await?;
        if gap {
            self.bump_epoch().await?;
        }
        Ok(())
    }

    /// InitProducerId with the current producer id and epoch: the coordinator bumps the epoch,
    /// and sequences start again at 0 (KIP-360).
    async fn bump_epoch(&self) -> Result<()> {
        let current = self.shared.producer_or_err()?;
        self.shared.init_producer_id(current).await
    }
}
