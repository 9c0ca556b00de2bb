//! The consumer's statistics: [`ConsumerStats`] (positions, high watermarks and lag per
//! partition, fetch latency, rebalances), the counters behind it (touched once per Fetch
//! request, per poll and per rebalance, never per record), and the tracing spans of fetches and
//! group operations, after OpenTelemetry's messaging conventions for Kafka.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kafkawire_client::{LatencyHistogram, LatencySummary};

use crate::{IsolationLevel, PartitionState};

/// What a consumer has counted since it was created ([`Consumer::stats`]), and where each of
/// its partitions stands.
///
/// With the `metrics` cargo feature, the same counts go to the `metrics` crate's recorder
/// (install it before creating the consumer):
///
/// | Name | Kind | Unit | Labels |
/// | --- | --- | --- | --- |
/// | `kafkawire.consumer.fetch.requests` | counter | Fetch requests | |
/// | `kafkawire.consumer.fetch.errors` | counter | Fetch requests failed | |
/// | `kafkawire.consumer.fetch.latency` | histogram | seconds | |
/// | `kafkawire.consumer.records` | counter | records returned by polls | topic, partition |
/// | `kafkawire.consumer.position` | gauge | offset | topic, partition |
/// | `kafkawire.consumer.lag` | gauge | records | topic, partition |
/// | `kafkawire.consumer.rebalances` | counter | rebalances completed | group |
/// | `kafkawire.consumer.rebalance.time` | histogram | seconds | group |
///
/// The gauges move when a poll hands out a partition's records (or its news of an empty
/// fetch).
///
/// [`Consumer::stats`]: crate::Consumer::stats
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConsumerStats {
    /// Each assigned partition, by topic and partition.
    pub partitions: Vec<PartitionStats>,
    /// Fetch requests sent.
    pub fetch_requests: u64,
    /// Fetch requests that failed without an answer (timeouts, lost connections, unknown
    /// leaders); error codes inside answers are not counted here.
    pub fetch_errors: u64,
    /// Time from sending a Fetch to its answer, the broker's wait for data (`fetch_max_wait`)
    /// included.
    pub fetch_latency: LatencySummary,
    /// Records handed to the application by polls.
    pub records_returned: u64,
    /// Group rebalances completed (join and sync rounds that gave the member an assignment);
    /// 0 without a group membership.
    pub rebalances: u64,
    /// Time spent in rebalances, failed rounds included: from revoking (eager protocol) or
    /// joining to the new assignment taking effect.
    pub rebalance_time: Duration,
}

impl ConsumerStats {
    /// The lag summed over the partitions whose lag is known.
    pub fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(|p| p.lag).sum()
    }
}

/// Where one assigned partition stands.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PartitionStats {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The offset of the next record a poll returns.
    pub position: i64,
    /// The high watermark of the last fetch (-1 before the first).
    pub high_watermark: i64,
    /// The last stable offset of the last fetch (-1 if unknown).
    pub last_stable_offset: i64,
    /// Records between the position and the end of the log as of the last fetch: the high
    /// watermark (the last stable offset with read_committed) minus the position, at least 0.
    /// `None` before the first fetch answered.
    pub lag: Option<i64>,
}

/// The lag of a partition (see [`PartitionStats::lag`]).
pub(crate) fn lag(state: &PartitionState, isolation: IsolationLevel) -> Option<i64> {
    let end = match isolation {
        IsolationLevel::ReadCommitted if state.last_stable_offset >= 0 => state.last_stable_offset,
        _ => state.high_watermark,
    };
    (end >= 0).then(|| (end - state.position).max(0))
}

/// The counters of Fetch requests, shared with the tasks that send them.
#[derive(Default)]
pub(crate) struct FetchCounters {
    requests: AtomicU64,
    errors: AtomicU64,
    latency: LatencyHistogram,
    #[cfg(feature = "metrics")]
    export: export::Fetch,
}

impl FetchCounters {
    /// A Fetch request ended after `took`; `ok`: it got an answer.
    pub(crate) fn on_fetch(&self, took: Duration, ok: bool) {
        self.requests.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.requests.increment(1);
        if ok {
            self.latency.record(took);
            #[cfg(feature = "metrics")]
            self.export.latency.record(took.as_secs_f64());
        } else {
            self.errors.fetch_add(1, Relaxed);
            #[cfg(feature = "metrics")]
            self.export.errors.increment(1);
        }
    }
}

/// The counters of a [`crate::PartitionConsumer`].
#[derive(Default)]
pub(crate) struct ConsumerCounters {
    pub(crate) fetch: Arc<FetchCounters>,
    records_returned: u64,
    /// The consumer group, for the spans (`messaging.consumer.group.name`).
    pub(crate) group: Option<Arc<str>>,
    /// The spans of the fetch round in flight, by leader: each ends once its answer is
    /// buffered (only kept while a subscriber wants them).
    pub(crate) spans: std::collections::HashMap<i32, tracing::Span>,
    #[cfg(feature = "metrics")]
    export: export::Partitions,
}

impl std::fmt::Debug for ConsumerCounters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumerCounters")
            .field("records_returned", &self.records_returned)
            .finish_non_exhaustive()
    }
}

impl ConsumerCounters {
    /// A poll handed out `records` records of a partition, which now stands at `state`.
    pub(crate) fn on_returned(
        &mut self,
        _key: &(String, i32),
        records: usize,
        _state: Option<&PartitionState>,
        _isolation: IsolationLevel,
    ) {
        self.records_returned += records as u64;
        #[cfg(feature = "metrics")]
        self.export.returned(_key, records, _state, _isolation);
    }

    pub(crate) fn snapshot<'a>(
        &self,
        assigned: impl Iterator<Item = (&'a (String, i32), &'a PartitionState)>,
        isolation: IsolationLevel,
    ) -> ConsumerStats {
        ConsumerStats {
            partitions: assigned
                .map(|((topic, partition), s)| PartitionStats {
                    topic: topic.clone(),
                    partition: *partition,
                    position: s.position,
                    high_watermark: s.high_watermark,
                    last_stable_offset: s.last_stable_offset,
                    lag: lag(s, isolation),
                })
                .collect(),
            fetch_requests: self.fetch.requests.load(Relaxed),
            fetch_errors: self.fetch.errors.load(Relaxed),
            fetch_latency: self.fetch.latency.summary(),
            records_returned: self.records_returned,
            rebalances: 0,
            rebalance_time: Duration::ZERO,
        }
    }
}

/// The rebalance counters of a group member.
#[derive(Default)]
pub(crate) struct GroupCounters {
    pub(crate) rebalances: u64,
    pub(crate) time: Duration,
    #[cfg(feature = "metrics")]
    export: Option<export::Group>,
}

impl GroupCounters {
    /// A rebalance round of `group` took `took`; `done`: it gave the member an assignment.
    pub(crate) fn on_rebalance(&mut self, _group: &str, took: Duration, done: bool) {
        self.time += took;
        if done {
            self.rebalances += 1;
        }
        #[cfg(feature = "metrics")]
        {
            let e = self
                .export
                .get_or_insert_with(|| export::Group::new(_group));
            e.time.record(took.as_secs_f64());
            if done {
                e.rebalances.increment(1);
            }
        }
    }
}

/// The span of one Fetch request to `broker` for `keys` (operation `poll`, type `receive`,
/// span kind client). Its fields are filled only when a subscriber wants it (INFO, target
/// `kafkawire_consumer::fetch`).
pub(crate) fn fetch_span(
    keys: &[((String, i32), i64)],
    broker: Option<(&str, i32)>,
    group: Option<&str>,
    client_id: Option<&str>,
) -> tracing::Span {
    let span = tracing::info_span!(
        target: "kafkawire_consumer::fetch",
        "poll",
        otel.name = tracing::field::Empty,
        otel.kind = "client",
        messaging.system = "kafka",
        messaging.operation.name = "poll",
        messaging.operation.type = "receive",
        messaging.destination.name = tracing::field::Empty,
        messaging.destination.partition.id = tracing::field::Empty,
        messaging.consumer.group.name = group,
        messaging.client.id = client_id,
        messaging.batch.message_count = tracing::field::Empty,
        server.address = tracing::field::Empty,
        server.port = tracing::field::Empty,
        error.type = tracing::field::Empty,
    );
    if span.is_disabled() {
        return span;
    }
    if let Some((host, port)) = broker {
        span.record("server.address", host);
        span.record("server.port", port);
    }
    let first = keys.first().map(|((t, _), _)| t.as_str());
    if let Some(topic) = first.filter(|t| keys.iter().all(|((k, _), _)| k == t)) {
        span.record("messaging.destination.name", topic);
        span.record("otel.name", format!("poll {topic}").as_str());
        if let [((_, p), _)] = keys {
            span.record("messaging.destination.partition.id", p.to_string().as_str());
        }
    } else {
        span.record("otel.name", "poll");
    }
    span
}

/// The span of a group operation (`join`, `sync`, `commit`), span kind client (INFO, target
/// `kafkawire_consumer::group`).
pub(crate) fn group_span(op: GroupOp, group: &str) -> tracing::Span {
    macro_rules! span {
        ($name:literal, $type:expr) => {
            tracing::info_span!(
                target: "kafkawire_consumer::group",
                $name,
                otel.name = tracing::field::Empty,
                otel.kind = "client",
                messaging.system = "kafka",
                messaging.operation.name = $name,
                messaging.operation.type = $type,
                messaging.consumer.group.name = group,
                error.type = tracing::field::Empty,
            )
        };
    }
    let span = match op {
        GroupOp::Join => span!("join", tracing::field::Empty),
        GroupOp::Sync => span!("sync", tracing::field::Empty),
        GroupOp::Commit => span!("commit", "settle"),
    };
    if !span.is_disabled() {
        let name = match op {
            GroupOp::Join => "join",
            GroupOp::Sync => "sync",
            GroupOp::Commit => "commit",
        };
        span.record("otel.name", format!("{name} {group}").as_str());
    }
    span
}

/// A group operation with a span of its own.
#[derive(Debug, Clone, Copy)]
pub(crate) enum GroupOp {
    Join,
    Sync,
    Commit,
}

/// Records `error.type` on `span` when `r` failed: the broker's error code, else the error's
/// kind.
pub(crate) fn record_error<T>(span: &tracing::Span, r: &kafkawire_client::Result<T>) {
    if let Err(e) = r
        && !span.is_disabled()
    {
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
}

#[cfg(feature = "metrics")]
mod export {
    //! The `metrics` facade: handles registered once per consumer, per partition on its first
    //! poll and per group on its first rebalance.

    use std::collections::HashMap;

    use metrics::{Counter, Gauge, Histogram};

    use crate::{IsolationLevel, PartitionState};

    fn describe() {
        use metrics::Unit;
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            metrics::describe_counter!(
                "kafkawire.consumer.fetch.requests",
                Unit::Count,
                "Fetch requests sent"
            );
            metrics::describe_counter!(
                "kafkawire.consumer.fetch.errors",
                Unit::Count,
                "Fetch requests failed without an answer"
            );
            metrics::describe_histogram!(
                "kafkawire.consumer.fetch.latency",
                Unit::Seconds,
                "Time from sending a Fetch to its answer"
            );
            metrics::describe_counter!(
                "kafkawire.consumer.records",
                Unit::Count,
                "Records returned by polls"
            );
            metrics::describe_gauge!(
                "kafkawire.consumer.position",
                Unit::Count,
                "Offset of the next record a poll returns"
            );
            metrics::describe_gauge!(
                "kafkawire.consumer.lag",
                Unit::Count,
                "Records between the position and the end of the log"
            );
            metrics::describe_counter!(
                "kafkawire.consumer.rebalances",
                Unit::Count,
                "Group rebalances completed"
            );
            metrics::describe_histogram!(
                "kafkawire.consumer.rebalance.time",
                Unit::Seconds,
                "Time spent in a rebalance round"
            );
        });
    }

    pub(super) struct Fetch {
        pub(super) requests: Counter,
        pub(super) errors: Counter,
        pub(super) latency: Histogram,
    }

    impl Default for Fetch {
        fn default() -> Self {
            describe();
            Fetch {
                requests: metrics::counter!("kafkawire.consumer.fetch.requests"),
                errors: metrics::counter!("kafkawire.consumer.fetch.errors"),
                latency: metrics::histogram!("kafkawire.consumer.fetch.latency"),
            }
        }
    }

    struct Partition {
        records: Counter,
        position: Gauge,
        lag: Gauge,
    }

    #[derive(Default)]
    pub(super) struct Partitions(HashMap<(String, i32), Partition>);

    impl Partitions {
        pub(super) fn returned(
            &mut self,
            key: &(String, i32),
            records: usize,
            state: Option<&PartitionState>,
            isolation: IsolationLevel,
        ) {
            let p = self.0.entry(key.clone()).or_insert_with(|| {
                let labels = [("topic", key.0.clone()), ("partition", key.1.to_string())];
                Partition {
                    records: metrics::counter!("kafkawire.consumer.records", &labels),
                    position: metrics::gauge!("kafkawire.consumer.position", &labels),
                    lag: metrics::gauge!("kafkawire.consumer.lag", &labels),
                }
            });
            p.records.increment(records as u64);
            if let Some(s) = state {
                p.position.set(s.position as f64);
                if let Some(lag) = super::lag(s, isolation) {
                    p.lag.set(lag as f64);
                }
            }
        }
    }

    pub(super) struct Group {
        pub(super) rebalances: Counter,
        pub(super) time: Histogram,
    }

    impl Group {
        pub(super) fn new(group: &str) -> Group {
            describe();
            Group {
                rebalances: metrics::counter!("kafkawire.consumer.rebalances", "group" => group.to_owned()),
                time: metrics::histogram!("kafkawire.consumer.rebalance.time", "group" => group.to_owned()),
            }
        }
    }
}
