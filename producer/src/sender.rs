//! The background sender: takes ready batches from the accumulator, sends one Produce request
//! per leader (up to `max_in_flight_per_connection` pipelined per broker), and settles each
//! batch from its response: success, retry (with backoff, metadata refresh, or a split), epoch
//! bump and sequence reset (KIP-360), or failure.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkawire_client::Error;
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafkawire_protocol::messages::produce_response::ProduceResponse;
use rand::Rng;
use tokio::sync::mpsc;
use tracing::Instrument;

use crate::Shared;
use crate::accumulator::{ProducerBatch, TopicPartition, seq_before};
use crate::config::Acks;

/// The answer to one Produce request.
struct Completion {
    leader: i32,
    batches: Vec<ProducerBatch>,
    result: Result<Option<ProduceResponse>, Error>,
    /// The request was queued on a connection: an error without a response leaves its outcome
    /// unknown (the broker may have written it).
    sent: bool,
}

#[derive(Default)]
struct InFlight {
    per_broker: HashMap<i32, usize>,
    per_partition: HashMap<TopicPartition, PartitionFlight>,
    requests: usize,
}

/// The batches of one partition sent and not yet out of the window, in the order sent: base
/// sequences (a placeholder without idempotence), each with whether its answer came and
/// whether it is a retry of a batch that may have been written. An entry leaves only once every
/// batch sent before it has its answer too, so the window (at most five entries) counts every
/// batch sent after the oldest one still waiting: if that one turns out to be of unknown
/// outcome, at most four were written after it, and the broker's five-batch deduplication
/// window still holds it for the retry (KIP-98).
///
/// The broker's window counts from a batch's first write, not from its latest attempt: while a
/// batch that may have been written is retried, no new batch of its partition is sent (the
/// batches sent after its first attempt are the only ones that can be written after it), so
/// however many attempts it takes, the broker still recognises it.
#[derive(Default)]
struct PartitionFlight {
    entries: std::collections::VecDeque<Sent>,
}

/// One attempt in a partition's window.
struct Sent {
    /// Base sequence (0 without idempotence).
    seq: i32,
    /// Its answer came (or the batch went back to the queue).
    answered: bool,
    /// A retry of a batch that may have been written.
    maybe_written: bool,
}

impl PartitionFlight {
    fn push(&mut self, seq: i32, maybe_written: bool) {
        self.entries.push_back(Sent {
            seq,
            answered: false,
            maybe_written,
        });
    }

    /// The answer for the batch at `seq` came (or it went back to the queue).
    fn complete(&mut self, seq: i32) {
        if let Some(e) = self
            .entries
            .iter_mut()
            .find(|e| e.seq == seq && !e.answered)
        {
            e.answered = true;
        }
        while self.entries.front().is_some_and(|e| e.answered) {
            self.entries.pop_front();
        }
    }

    /// Batches sent whose answer has not come.
    fn waiting(&self) -> impl Iterator<Item = i32> + '_ {
        self.entries.iter().filter(|e| !e.answered).map(|e| e.seq)
    }

    /// A batch that may have been written is being retried.
    fn retrying_unknown(&self) -> bool {
        self.entries.iter().any(|e| !e.answered && e.maybe_written)
    }
}

impl InFlight {
    /// Whether a batch of `tp` is waiting for its answer.
    fn busy(&self, tp: &TopicPartition) -> bool {
        self.per_partition
            .get(tp)
            .is_some_and(|f| f.waiting().next().is_some())
    }

    /// Whether an attempt of a batch of `tp` that may have been written is waiting for its
    /// answer (no new batch of `tp` may be sent then).
    fn retrying_unknown(&self, tp: &TopicPartition) -> bool {
        self.per_partition
            .get(tp)
            .is_some_and(PartitionFlight::retrying_unknown)
    }
}

/// Backoff before attempt `attempts + 1`: `base * 2^(attempts-1)`, capped, with ±20% jitter
/// (KIP-580).
pub(crate) fn backoff(base: Duration, max: Duration, attempts: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempts.saturating_sub(1).min(16))
        .min(max);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    exp.mul_f64(jitter).min(max)
}

fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::PRODUCER_FENCED
            | ErrorCode::INVALID_PRODUCER_EPOCH
            | ErrorCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
            | ErrorCode::CLUSTER_AUTHORIZATION_FAILED
            | ErrorCode::INVALID_PRODUCER_ID_MAPPING
    )
}

/// A Produce request for one broker's dispatcher.
struct Job {
    req: ProduceRequest,
    batches: Vec<ProducerBatch>,
}

/// The span of one Produce request, after OpenTelemetry's messaging conventions for Kafka
/// (operation `send`, span kind producer): the destination topic and partition when the
/// request carries only one, the records it carries, the broker. Its fields are filled only
/// when a subscriber wants the span (INFO, target `kafkawire_producer::sender`).
fn produce_span(job: &Job, broker: &str, client_id: Option<&str>) -> tracing::Span {
    let span = tracing::info_span!(
        "send",
        otel.name = tracing::field::Empty,
        otel.kind = "producer",
        messaging.system = "kafka",
        messaging.operation.name = "send",
        messaging.operation.type = "send",
        messaging.destination.name = tracing::field::Empty,
        messaging.destination.partition.id = tracing::field::Empty,
        messaging.batch.message_count = tracing::field::Empty,
        messaging.client.id = client_id,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    let records: usize = job.batches.iter().map(|b| b.record_count).sum();
    span.record("messaging.batch.message_count", records);
    let (host, port) = split_host_port(broker);
    span.record("server.address", host);
    if let Some(port) = port {
        span.record("server.port", port);
    }
    match job.req.topic_data.as_slice() {
        [t] => {
            span.record("messaging.destination.name", t.name.as_str());
            span.record("otel.name", format!("send {}", t.name).as_str());
            if let [p] = t.partition_data.as_slice() {
                span.record(
                    "messaging.destination.partition.id",
                    p.index.to_string().as_str(),
                );
            }
        }
        _ => {
            span.record("otel.name", "send");
        }
    }
    span
}

/// `host:port` split at the last colon (an IPv6 host keeps its brackets).
fn split_host_port(addr: &str) -> (&str, Option<u16>) {
    match addr.rsplit_once(':') {
        Some((h, p)) => match p.parse() {
            Ok(port) => (h, Some(port)),
            Err(_) => (addr, None),
        },
        None => (addr, None),
    }
}

/// Records the `error.type` of a failed request on `span` (if a subscriber wants it): the
/// broker's error code, else the error's kind.
fn record_error(span: &tracing::Span, e: &Error) {
    if span.is_disabled() {
        return;
    }
    let kind = match e.code() {
        Some(code) => code.to_string(),
        None => format!("{e:?}")
            .split(|c: char| !c.is_alphanumeric())
            .next()
            .unwrap_or("_OTHER")
            .to_owned(),
    };
    span.record("error.type", kind.as_str());
}

/// One task per broker writes that broker's requests in the order the sender made them (the
/// broker applies a connection's requests in order, so a partition's batches stay in sequence
/// order on the wire), then waits for each response in a task of its own.
fn dispatcher(
    shared: &Arc<Shared>,
    leader: i32,
    done: mpsc::UnboundedSender<Completion>,
) -> mpsc::UnboundedSender<Job> {
    let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
    let client = shared.client.clone();
    let acks = shared.config.acks;
    let request_timeout = shared.config.request_timeout;
    let stopped = shared.stopped.subscribe();
    let client_id = client.config().client_id.clone();
    tokio::spawn(async move {
        while let Some(job) = rx.recv().await {
            let fail = |batches, e| Completion {
                leader,
                batches,
                result: Err(e),
                sent: false,
            };
            let conn = match client.broker_connection(leader).await {
                Ok(c) => c,
                Err(e) => {
                    let _ = done.send(fail(job.batches, e));
                    continue;
                }
            };
            let span = produce_span(&job, conn.broker(), client_id.as_deref());
            if acks == Acks::None {
                let result = span.in_scope(|| {
                    conn.version_for(ApiKey::Produce)
                        .and_then(|v| conn.send_no_response(&job.req, v))
                        .map(|()| None)
                });
                if let Err(e) = &result {
                    record_error(&span, e);
                }
                let _ = done.send(Completion {
                    leader,
                    batches: job.batches,
                    result,
                    sent: true,
                });
                continue;
            }
            // The connection bounds the wait by the producer's request timeout, or sooner by the
            // earliest delivery deadline of the request's batches (KIP-91), and retires itself
            // when a written request is not answered in that time.
            let deadline = job.batches.iter().map(|b| b.deadline).min();
            let wait = deadline
                .map_or(request_timeout, |d| {
                    d.saturating_duration_since(Instant::now())
                })
                .min(request_timeout)
                .max(Duration::from_millis(1));
            match conn.send_ordered_within(&job.req, wait) {
                Ok(response) => {
                    let done = done.clone();
                    let mut stopped = stopped.clone();
                    let in_span = span.clone();
                    tokio::spawn(async move {
                        let result = tokio::select! {
                            r = response => r,
                            _ = stopped.wait_for(|s| *s) => {
                                // The producer was closed with this request in flight (close
                                // timed out): settle its records now.
                                let e = Error::ProducerClosed {
                                    reason: Some(
                                        "closed with the request in flight: the broker may still write these records"
                                            .into(),
                                    ),
                                };
                                for b in job.batches {
                                    b.fail(&e);
                                }
                                return;
                            }
                        };
                        if matches!(result, Err(Error::Decode { .. })) {
                            // A response that does not decode: the stream is not trusted.
                            conn.retire();
                        }
                        match &result {
                            Err(e) => record_error(&span, e),
                            Ok(r) if !span.is_disabled() => {
                                // The first partition error, if any (low cardinality: a code).
                                let code = r
                                    .responses
                                    .iter()
                                    .flat_map(|t| t.partition_responses.iter())
                                    .map(|p| ErrorCode(p.error_code))
                                    .find(|c| !c.is_ok());
                                if let Some(code) = code {
                                    span.record("error.type", code.to_string().as_str());
                                }
                            }
                            Ok(_) => {}
                        }
                        // A request held back by a throttle until its time ran out was never
                        // written: its outcome is known.
                        let sent = !matches!(result, Err(Error::Timeout { throttled_ms, .. }) if throttled_ms > 0);
                        let _ = done.send(Completion {
                            leader,
                            batches: job.batches,
                            result: result.map(Some),
                            sent,
                        });
                    }.instrument(in_span));
                }
                Err(e) => {
                    record_error(&span, &e);
                    let _ = done.send(fail(job.batches, e));
                }
            }
        }
    });
    tx
}

pub(crate) async fn run(shared: Arc<Shared>) {
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Completion>();
    let mut inflight = InFlight::default();
    let mut dispatchers: HashMap<i32, mpsc::UnboundedSender<Job>> = HashMap::new();
    // When to ask for the producer id (or the epoch bump) again after a failure.
    let mut ids_retry: Option<(u32, Instant)> = None;
    loop {
        if shared.is_fatal() {
            shared.fail_queued();
        } else if ids_retry.is_none_or(|(_, at)| Instant::now() >= at) {
            let busy = |tp: &TopicPartition| inflight.busy(tp);
            match shared.ensure_producer_id(busy).await {
                Ok(()) => ids_retry = None,
                Err(e) => {
                    // Batches held for it would otherwise sleep until their delivery deadline:
                    // the loop comes back at this time.
                    let attempt = ids_retry.map_or(1, |(n, _)| n.saturating_add(1));
                    let wait = backoff(cfg_backoff(&shared).0, cfg_backoff(&shared).1, attempt);
                    tracing::debug!(error = %e, ?wait, "producer id not ready; will retry");
                    ids_retry = Some((attempt, Instant::now() + wait));
                }
            }
        }
        let now = Instant::now();
        let (requests, next_wake, need_add) = collect(&shared, &mut inflight, now);
        if !need_add.is_empty() {
            shared.add_partitions_to_txn(need_add).await;
            continue;
        }
        let sent_any = !requests.is_empty();
        for (leader, batches) in requests {
            let d = dispatchers
                .entry(leader)
                .or_insert_with(|| dispatcher(&shared, leader, done_tx.clone()));
            send(&shared, leader, batches, d, &done_tx);
        }
        if shared.finished(inflight.requests) {
            shared.wake.notify_waiters();
            if shared.acc.lock().map(|a| a.closing).unwrap_or(true) {
                break;
            }
        }
        if sent_any {
            // More may be ready: fill the free in-flight slots before waiting.
            while let Ok(c) = done_rx.try_recv() {
                settle(&shared, &mut inflight, c);
            }
            continue;
        }
        let wake_at = next_wake
            .unwrap_or(now + Duration::from_secs(1))
            .min(ids_retry.map_or(now + Duration::from_secs(1), |(_, at)| at));
        let sleep = tokio::time::sleep_until(wake_at.into());
        tokio::select! {
            c = done_rx.recv() => {
                if let Some(c) = c {
                    settle(&shared, &mut inflight, c);
                }
            }
            _ = shared.wake.notified() => {}
            _ = sleep => {}
        }
        while let Ok(c) = done_rx.try_recv() {
            settle(&shared, &mut inflight, c);
        }
    }
}

/// The producer's retry backoff and its cap.
fn cfg_backoff(shared: &Shared) -> (Duration, Duration) {
    (shared.config.retry_backoff, shared.config.retry_backoff_max)
}

type Requests = Vec<(i32, Vec<ProducerBatch>)>;

/// Expires old batches and takes ready ones, grouped by leader, within the in-flight limits.
/// Returns the requests to send, when to look again, and (transactions) partitions that must be
/// added to the transaction first.
fn collect(
    shared: &Shared,
    inflight: &mut InFlight,
    now: Instant,
) -> (Requests, Option<Instant>, Vec<TopicPartition>) {
    let cfg = &shared.config;
    let meta = shared.client.metadata();
    let added = shared.txn_partitions();
    // Lock order: the accumulator, then the ids.
    let Ok(mut acc) = shared.acc.lock() else {
        return (Vec::new(), None, Vec::new());
    };
    let Ok(mut ids) = shared.ids.lock() else {
        return (Vec::new(), None, Vec::new());
    };
    let urgent = acc.flushing > 0 || acc.closing;
    let mut wake: Option<Instant> = None;
    let mut soon = |t: Instant| wake = Some(wake.map_or(t, |w| w.min(t)));
    let mut need_add = Vec::new();
    let mut ready: Vec<(i32, TopicPartition)> = Vec::new();
    let mut expired = Vec::new();
    let mut refresh = false;
    let per_partition_limit = if cfg.idempotent() {
        5
    } else {
        cfg.max_in_flight_per_connection
    };
    for (tp, q) in acc.queues.iter_mut() {
        while q.front().is_some_and(|b| b.deadline <= now) {
            expired.push(q.pop_front().expect("front"));
        }
        let Some(front) = q.front() else { continue };
        if let Some(t) = front.retry_at.filter(|t| *t > now) {
            soon(t);
            continue;
        }
        let lingered = front.created + cfg.linger;
        let is_ready = urgent
            || front.closed
            || q.len() > 1
            || front.bytes >= cfg.batch_size
            || now >= lingered;
        if !is_ready {
            soon(lingered);
            continue;
        }
        soon(front.deadline);
        if cfg.idempotent() {
            // A batch with a sequence keeps it; one may have been written goes out even while
            // its partition waits for an epoch bump (its answer decides what was written). A
            // new batch needs a sequence: a producer id, no gap in its partition, and no batch
            // of an older epoch in flight there.
            let busy = inflight.busy(tp);
            let may_go = match front.base_sequence {
                // A retry goes alone (in flight 1 for the partition until the retries are
                // done, as the Java client does), and no new batch follows a retry of one that
                // may have been written: batches written after one whose outcome is unknown
                // stay within the broker's five-batch deduplication window.
                Some(_) => !busy && (front.maybe_written || !ids.needs_reset(tp)),
                None => !inflight.retrying_unknown(tp) && ids.can_assign(tp, busy),
            };
            if !may_go {
                continue;
            }
        }
        if inflight
            .per_partition
            .get(tp)
            .map_or(0, |f| f.entries.len())
            >= per_partition_limit
        {
            continue;
        }
        let leader = meta.partition(&tp.0, tp.1).map_or(-1, |p| p.leader);
        if leader < 0 {
            refresh = true;
            soon(now + cfg.retry_backoff);
            continue;
        }
        if let Some(added) = &added
            && !added.contains(tp)
        {
            need_add.push(tp.clone());
            continue;
        }
        if inflight.per_broker.get(&leader).copied().unwrap_or(0)
            >= cfg.max_in_flight_per_connection
        {
            continue;
        }
        ready.push((leader, tp.clone()));
    }
    ready.sort();
    let mut requests: Requests = Vec::new();
    for (leader, tp) in ready {
        let start_new = requests.last().is_none_or(|(l, _)| *l != leader);
        if start_new {
            if inflight.per_broker.get(&leader).copied().unwrap_or(0)
                >= cfg.max_in_flight_per_connection
            {
                continue;
            }
            *inflight.per_broker.entry(leader).or_default() += 1;
            inflight.requests += 1;
            requests.push((leader, Vec::new()));
        }
        let (_, batches) = requests.last_mut().expect("request");
        let size: usize = batches.iter().map(|b| b.bytes).sum();
        let q = acc.queues.get_mut(&tp).expect("queue");
        let fits = q
            .front()
            .is_some_and(|b| batches.is_empty() || size + b.bytes <= cfg.max_request_size);
        if !fits {
            continue;
        }
        let mut batch = q.pop_front().expect("front");
        if cfg.idempotent() && batch.base_sequence.is_none() {
            let busy = inflight.busy(&tp);
            match ids.assign(&tp, batch.record_count, busy) {
                Some((producer, seq)) => {
                    batch.producer = Some(producer);
                    batch.base_sequence = Some(seq);
                    batch.after_unacked = busy;
                }
                None => {
                    q.push_front(batch);
                    continue;
                }
            }
        }
        batch.closed = true;
        inflight
            .per_partition
            .entry(tp)
            .or_default()
            .push(batch.base_sequence.unwrap_or(0), batch.maybe_written);
        batches.push(batch);
    }
    drop(ids);
    drop(acc);
    for b in expired {
        expire(shared, b, None);
    }
    if refresh {
        shared.refresh_metadata_soon();
    }
    need_add.sort();
    need_add.dedup();
    (requests, wake, need_add)
}

fn send(
    shared: &Arc<Shared>,
    leader: i32,
    batches: Vec<ProducerBatch>,
    dispatcher: &mpsc::UnboundedSender<Job>,
    done: &mpsc::UnboundedSender<Completion>,
) {
    let cfg = &shared.config;
    let mut topics: HashMap<Arc<str>, Vec<PartitionProduceData>> = HashMap::new();
    let mut encoded_ok = Vec::new();
    for mut batch in batches {
        let bytes = batch.encode(cfg.transactional_id.is_some());
        match bytes {
            Ok(bytes) => {
                shared
                    .stats
                    .on_batch(&batch.tp, batch.record_count, bytes.len());
                topics
                    .entry(batch.tp.0.clone())
                    .or_default()
                    .push(PartitionProduceData {
                        index: batch.tp.1,
                        records: Some(bytes),
                        ..Default::default()
                    });
                encoded_ok.push(batch);
            }
            Err(source) => {
                // Not a broker problem: the record cannot be encoded. Fail it (and release the
                // slot it held), never retry.
                let err = Error::Encode {
                    api: ApiKey::Produce,
                    source,
                };
                // Leader -1: this completion frees no request slot (the request's own does).
                let _ = done.send(Completion {
                    leader: -1,
                    batches: vec![batch],
                    result: Err(err),
                    sent: false,
                });
            }
        }
    }
    if encoded_ok.is_empty() {
        // Nothing to send after all: free the request slot.
        let _ = done.send(Completion {
            leader,
            batches: Vec::new(),
            result: Ok(None),
            sent: false,
        });
        return;
    }
    let req = ProduceRequest {
        transactional_id: cfg.transactional_id.clone(),
        acks: cfg.acks.as_i16(),
        timeout_ms: cfg.request_timeout.as_millis().min(i32::MAX as u128) as i32,
        topic_data: topics
            .into_iter()
            .map(|(name, partition_data)| TopicProduceData {
                name: name.to_string(),
                partition_data,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    shared.stats.on_request();
    if let Err(mpsc::error::SendError(job)) = dispatcher.send(Job {
        req,
        batches: encoded_ok,
    }) {
        let err = Error::ProducerClosed {
            reason: Some("the broker dispatcher stopped".into()),
        };
        let _ = done.send(Completion {
            leader,
            batches: job.batches,
            result: Err(err),
            sent: false,
        });
    }
}

fn settle(shared: &Shared, inflight: &mut InFlight, c: Completion) {
    if let Some(n) = inflight.per_broker.get_mut(&c.leader) {
        *n = n.saturating_sub(1);
        inflight.requests = inflight.requests.saturating_sub(1);
    }
    for b in &c.batches {
        if let Some(f) = inflight.per_partition.get_mut(&b.tp) {
            f.complete(b.base_sequence.unwrap_or(0));
        }
    }
    let broker = shared
        .client
        .metadata()
        .brokers
        .get(&c.leader)
        .map(|b| b.address());
    match c.result {
        Err(e) => {
            for b in c.batches {
                on_error(shared, inflight, b, e.clone(), c.sent);
            }
        }
        Ok(None) => {
            for b in c.batches {
                shared.complete_ok(b, -1, -1);
            }
        }
        Ok(Some(resp)) => {
            for b in c.batches {
                let p = resp
                    .responses
                    .iter()
                    .filter(|t| *t.name == *b.tp.0)
                    .flat_map(|t| t.partition_responses.iter())
                    .find(|p| p.index == b.tp.1);
                match p {
                    Some(p) if p.error_code == 0 => {
                        shared.complete_ok(b, p.base_offset, p.log_append_time_ms)
                    }
                    // Already written by an earlier attempt (KIP-98): success, offset unknown.
                    Some(p) if ErrorCode(p.error_code) == ErrorCode::DUPLICATE_SEQUENCE_NUMBER => {
                        shared.complete_ok(b, -1, -1)
                    }
                    Some(p) => {
                        let e = Error::broker_error(
                            ErrorCode(p.error_code),
                            ApiKey::Produce,
                            broker.as_deref(),
                            Some(&b.tp.0),
                            Some(b.tp.1),
                            p.error_message.clone(),
                        );
                        on_error(shared, inflight, b, e, false);
                    }
                    None => {
                        // An answer that leaves the partition out says nothing of whether the
                        // batch was written: retried as it is.
                        let e = Error::broker_error(
                            ErrorCode::UNKNOWN_SERVER_ERROR,
                            ApiKey::Produce,
                            broker.as_deref(),
                            Some(&b.tp.0),
                            Some(b.tp.1),
                            Some("the response does not mention this partition".into()),
                        );
                        on_error(shared, inflight, b, e, true);
                    }
                }
            }
        }
    }
    shared.export_buffer();
    shared.wake.notify_one();
}

/// Fails a batch whose delivery timeout passed (KIP-91). One that may have been written says
/// so; one with a sequence leaves a gap in its partition.
fn expire(shared: &Shared, b: ProducerBatch, error: Option<&Error>) {
    let last = error.or(b.last_error.as_ref()).map(ToString::to_string);
    let last_error = if b.maybe_written {
        Some(format!(
            "{}; the outcome of an earlier attempt is unknown: the broker may have written these records",
            last.unwrap_or_else(|| "no answer".into())
        ))
    } else {
        last
    };
    let err = Error::DeliveryTimeout {
        topic: b.tp.0.to_string(),
        partition: b.tp.1,
        timeout_ms: shared.config.delivery_timeout.as_millis() as u64,
        last_error,
    };
    let gap = b.base_sequence.map(|_| b.tp.clone());
    shared.complete_failed(b, &err);
    if let Some(tp) = gap {
        shared.sequence_gap(&tp);
    }
}

/// Settles a failed attempt. `unknown`: the request may have reached the broker and no answer
/// for this batch came back (its outcome is unknown).
fn on_error(
    shared: &Shared,
    inflight: &InFlight,
    mut batch: ProducerBatch,
    e: Error,
    unknown: bool,
) {
    let cfg = &shared.config;
    let now = Instant::now();
    batch.attempts += 1;
    let code = e.code();
    // A leader that timed out waiting for its replicas (acks=all) has the batch in its log.
    let unknown = unknown
        || matches!(
            code,
            Some(ErrorCode::REQUEST_TIMED_OUT | ErrorCode::NOT_ENOUGH_REPLICAS_AFTER_APPEND)
        );
    if unknown {
        batch.maybe_written = true;
    }
    if code.is_some_and(is_fatal) {
        tracing::error!(error = %e, "producer fenced or not authorised: failing every record");
        shared.set_fatal(e.clone());
        shared.complete_failed(batch, &e);
        shared.fail_queued();
        return;
    }
    if matches!(
        code,
        Some(ErrorCode::MESSAGE_TOO_LARGE | ErrorCode::RECORD_LIST_TOO_LARGE)
    ) && batch.record_count > 1
    {
        tracing::debug!(
            records = batch.record_count,
            "batch too large for the broker: splitting"
        );
        match batch.split(shared.settings.compression) {
            Ok((a, b)) => {
                shared.stats.on_retry(&a.tp);
                shared.requeue(b);
                shared.requeue(a);
                return;
            }
            Err(b) => batch = b,
        }
    }
    if now >= batch.deadline {
        expire(shared, batch, Some(&e));
        return;
    }
    if cfg.idempotent()
        && matches!(
            code,
            Some(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER | ErrorCode::UNKNOWN_PRODUCER_ID)
        )
    {
        // The broker holds no batch of ours at this sequence (a duplicate of one of its last
        // five batches would have been answered as such): whatever an earlier attempt did,
        // this batch is not written.
        batch.maybe_written = false;
        let seq = batch.base_sequence.unwrap_or(0);
        let earlier_pending = inflight
            .per_partition
            .get(&batch.tp)
            .is_some_and(|f| f.waiting().any(|s| seq_before(s, seq)))
            || shared.has_earlier_queued(&batch.tp, seq);
        // Sent behind batches not yet acknowledged, it may have overtaken one of them (on
        // another connection, after a reconnect): a race, not a gap. Sent with everything
        // earlier acknowledged, the broker had all of it: a real gap.
        if code == Some(ErrorCode::UNKNOWN_PRODUCER_ID) || !(earlier_pending || batch.after_unacked)
        {
            // Nothing earlier is outstanding, yet the broker expected another sequence (or has
            // no state for us): this partition moves to a new epoch (KIP-360).
            tracing::warn!(error = %e, "sequence refused with nothing earlier pending: resetting the partition");
            shared.sequence_gap(&batch.tp);
        }
        batch.retry_at = Some(now + cfg.retry_backoff.min(Duration::from_millis(10)));
        batch.after_unacked = false;
        batch.last_error = Some(e);
        shared.stats.on_retry(&batch.tp);
        shared.requeue(batch);
        return;
    }
    if unknown || e.is_retriable() {
        batch.retry_at =
            Some(now + backoff(cfg.retry_backoff, cfg.retry_backoff_max, batch.attempts));
        if e.invalidates_metadata() {
            shared.refresh_metadata_soon();
        }
        tracing::debug!(error = %e, attempt = batch.attempts, unknown, "retrying batch");
        batch.last_error = Some(e);
        shared.stats.on_retry(&batch.tp);
        shared.requeue(batch);
        return;
    }
    let gap = batch.base_sequence.map(|_| batch.tp.clone());
    shared.complete_failed(batch, &e);
    if let Some(tp) = gap {
        shared.sequence_gap(&tp);
    }
}
