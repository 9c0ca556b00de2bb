//! Statistics: the counters every connection keeps for its broker (relaxed atomics, touched a
//! few times per request and never per record), the snapshots [`Client::stats`] returns
//! ([`ClientStats`], [`BrokerStats`], [`ApiStats`]), and [`LatencyHistogram`], a fixed-bucket
//! histogram of durations that the producer and consumer use too.
//!
//! With the `metrics` cargo feature, the same counters also go to the recorder installed with
//! the [`metrics`](https://docs.rs/metrics) crate (a Prometheus or OpenTelemetry exporter), as
//! handles registered once per broker (and per API on first use), so a request costs a few
//! atomic adds there too. Install the recorder before creating the [`Client`]. Names (labels in
//! brackets):
//!
//! | Name | Kind | Unit | Labels |
//! | --- | --- | --- | --- |
//! | `kafkawire.client.requests` | counter | requests written (counted as the write starts) | broker, api |
//! | `kafkawire.client.request.errors` | counter | requests failed without an answer | broker, api |
//! | `kafkawire.client.request.latency` | histogram | seconds, queued to answered | broker, api |
//! | `kafkawire.client.bytes.sent` | counter | bytes | broker |
//! | `kafkawire.client.bytes.received` | counter | bytes | broker |
//! | `kafkawire.client.requests.in_flight` | gauge | requests | broker |
//! | `kafkawire.client.throttle.time` | counter | milliseconds | broker |
//! | `kafkawire.client.connects` | counter | connections | broker |
//! | `kafkawire.client.reconnects` | counter | connections | broker |
//!
//! `broker` is the address dialled (`host:port`), `api` the API's name (`Produce`, `Fetch`, ...).
//!
//! [`Client::stats`]: crate::Client::stats
//! [`Client`]: crate::Client

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI32, AtomicI64, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use kafkawire_protocol::messages::ApiKey;

/// Sub-buckets per power of two (2 bits: a bucket is a quarter of an octave wide).
const SUB_BITS: u32 = 2;
const SUB: u64 = 1 << SUB_BITS;
/// Buckets of a [`LatencyHistogram`]: microseconds up to 2^41 (about 25 days); longer
/// durations land in the last bucket.
const BUCKETS: usize = 160;

/// The bucket of a duration of `us` microseconds: exact below 4 µs, then four buckets per
/// power of two.
fn bucket_of(us: u64) -> usize {
    if us < SUB {
        return us as usize;
    }
    let msb = 63 - us.leading_zeros();
    let sub = (us >> (msb - SUB_BITS)) & (SUB - 1);
    let i = u64::from(msb - SUB_BITS + 1) * SUB + sub;
    (i as usize).min(BUCKETS - 1)
}

/// The exclusive upper bound of bucket `i`, in microseconds.
fn bucket_upper(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i + 1;
    }
    let octave = i / SUB;
    let sub = i % SUB;
    let msb = octave - 1 + u64::from(SUB_BITS);
    (SUB + sub + 1) << (msb - u64::from(SUB_BITS))
}

/// A histogram of durations with fixed log-linear buckets (four per power of two of
/// microseconds, so a quantile is off by at most a quarter of its value), kept in atomics:
/// [`record`](Self::record) is four relaxed atomic operations, with no lock and no allocation.
/// It counts everything since it was created (no decay).
pub struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
    max_us: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram::new()
    }
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("LatencyHistogram")
            .field(&self.summary())
            .finish()
    }
}

impl LatencyHistogram {
    /// An empty histogram.
    pub fn new() -> LatencyHistogram {
        LatencyHistogram {
            buckets: [const { AtomicU64::new(0) }; BUCKETS],
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
            max_us: AtomicU64::new(0),
        }
    }

    /// Counts one duration (microsecond resolution).
    pub fn record(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
        self.max_us.fetch_max(us, Relaxed);
    }

    /// Count, mean, median, 99th percentile and maximum of what was recorded.
    pub fn summary(&self) -> LatencySummary {
        let mut s = HistogramSnapshot::default();
        s.add(self);
        s.summary()
    }

    /// The `q` quantile (0.0 to 1.0) of what was recorded: the upper end of the bucket where it
    /// falls (at most the largest duration recorded); zero when nothing was.
    pub fn quantile(&self, q: f64) -> Duration {
        let mut s = HistogramSnapshot::default();
        s.add(self);
        s.quantile(q)
    }
}

/// The counts of one or more histograms, read once.
pub(crate) struct HistogramSnapshot {
    buckets: [u64; BUCKETS],
    sum_us: u64,
    max_us: u64,
}

impl Default for HistogramSnapshot {
    fn default() -> Self {
        HistogramSnapshot {
            buckets: [0; BUCKETS],
            sum_us: 0,
            max_us: 0,
        }
    }
}

impl HistogramSnapshot {
    /// Adds the counts of `h`.
    pub(crate) fn add(&mut self, h: &LatencyHistogram) {
        for (acc, b) in self.buckets.iter_mut().zip(&h.buckets) {
            *acc += b.load(Relaxed);
        }
        self.sum_us = self.sum_us.saturating_add(h.sum_us.load(Relaxed));
        self.max_us = self.max_us.max(h.max_us.load(Relaxed));
    }

    fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }

    fn quantile(&self, q: f64) -> Duration {
        let n = self.count();
        if n == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).clamp(1, n);
        let mut seen = 0;
        for (i, b) in self.buckets.iter().enumerate() {
            seen += b;
            if seen >= rank {
                return Duration::from_micros((bucket_upper(i) - 1).min(self.max_us));
            }
        }
        Duration::from_micros(self.max_us)
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        let count = self.count();
        LatencySummary {
            count,
            mean: Duration::from_micros(self.sum_us.checked_div(count).unwrap_or(0)),
            p50: self.quantile(0.5),
            p99: self.quantile(0.99),
            max: Duration::from_micros(self.max_us),
        }
    }
}

/// A summary of a [`LatencyHistogram`]. The quantiles are the upper ends of their buckets (at
/// most a quarter above the true value, never above `max`); all zero when nothing was
/// recorded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LatencySummary {
    /// Durations recorded.
    pub count: u64,
    /// Their mean (exact, to the microsecond).
    pub mean: Duration,
    /// Median.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// The longest (exact, to the microsecond).
    pub max: Duration,
}

/// Per-API slots: API keys go up to 75.
pub(crate) const API_SLOTS: usize = 80;

fn slot(api: i16) -> usize {
    (api.max(0) as usize).min(API_SLOTS - 1)
}

/// The counters of one broker address, shared by every connection a client opens to it.
pub(crate) struct BrokerCounters {
    address: String,
    node_id: AtomicI32,
    requests: [AtomicU64; API_SLOTS],
    errors: [AtomicU64; API_SLOTS],
    /// One histogram per API, allocated on its first answer.
    latency: [OnceLock<Box<LatencyHistogram>>; API_SLOTS],
    bytes_sent: AtomicU64,
    bytes_received: AtomicU64,
    in_flight: AtomicI64,
    throttle_ms: AtomicU64,
    connects: AtomicU64,
    reconnects: AtomicU64,
    /// A bootstrap connection to this address was set up before.
    bootstrapped: std::sync::atomic::AtomicBool,
    #[cfg(feature = "metrics")]
    export: export::Broker,
}

impl BrokerCounters {
    pub(crate) fn new(address: &str) -> BrokerCounters {
        BrokerCounters {
            address: address.to_owned(),
            node_id: AtomicI32::new(-1),
            requests: [const { AtomicU64::new(0) }; API_SLOTS],
            errors: [const { AtomicU64::new(0) }; API_SLOTS],
            latency: [const { OnceLock::new() }; API_SLOTS],
            bytes_sent: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            in_flight: AtomicI64::new(0),
            throttle_ms: AtomicU64::new(0),
            connects: AtomicU64::new(0),
            reconnects: AtomicU64::new(0),
            bootstrapped: std::sync::atomic::AtomicBool::new(false),
            #[cfg(feature = "metrics")]
            export: export::Broker::new(address),
        }
    }

    /// Notes a bootstrap connection to this address; true if there was one before (this one
    /// is a reconnect).
    pub(crate) fn bootstrapped(&self) -> bool {
        self.bootstrapped.swap(true, Relaxed)
    }

    pub(crate) fn set_node_id(&self, id: i32) {
        self.node_id.store(id, Relaxed);
    }

    /// A request frame (size prefix included) is being written (counted as the write starts,
    /// so that a request is counted before its answer can be).
    pub(crate) fn on_written(&self, frame: &[u8]) {
        let api = match frame {
            [_, _, _, _, a, b, ..] => i16::from_be_bytes([*a, *b]),
            _ => return,
        };
        self.requests[slot(api)].fetch_add(1, Relaxed);
        self.bytes_sent.fetch_add(frame.len() as u64, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.written(api, frame.len());
    }

    /// A response frame of `bytes` bytes (size prefix included) arrived.
    pub(crate) fn on_received(&self, bytes: usize) {
        self.bytes_received.fetch_add(bytes as u64, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.bytes_received.increment(bytes as u64);
    }

    /// A request now waits for its answer.
    pub(crate) fn on_queued(&self) {
        let _n = self.in_flight.fetch_add(1, Relaxed) + 1;
        #[cfg(feature = "metrics")]
        self.export.in_flight.set(_n as f64);
    }

    /// A request no longer waits (answered, failed or given up).
    pub(crate) fn on_settled(&self) {
        let _n = self.in_flight.fetch_sub(1, Relaxed) - 1;
        #[cfg(feature = "metrics")]
        self.export.in_flight.set(_n as f64);
    }

    /// A request of `api` was answered `took` after it was queued.
    pub(crate) fn on_answered(&self, api: ApiKey, took: Duration) {
        let i = slot(api as i16);
        self.latency[i]
            .get_or_init(|| Box::new(LatencyHistogram::new()))
            .record(took);
        #[cfg(feature = "metrics")]
        self.export.answered(api, took);
    }

    /// A request of `api` failed without a usable answer.
    pub(crate) fn on_failed(&self, api: ApiKey) {
        self.errors[slot(api as i16)].fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.failed(api);
    }

    /// A response asked for `ms` milliseconds of throttling.
    pub(crate) fn on_throttle(&self, ms: i32) {
        let ms = u64::try_from(ms).unwrap_or(0);
        self.throttle_ms.fetch_add(ms, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.throttle.increment(ms);
    }

    /// A connection was set up; `again`: the client's shared connection to this broker was
    /// lost before and this one replaces it.
    pub(crate) fn on_connect(&self, again: bool) {
        self.connects.fetch_add(1, Relaxed);
        #[cfg(feature = "metrics")]
        self.export.connects.increment(1);
        if again {
            self.reconnects.fetch_add(1, Relaxed);
            #[cfg(feature = "metrics")]
            self.export.reconnects.increment(1);
        }
    }

    pub(crate) fn snapshot(&self) -> BrokerStats {
        let mut all = HistogramSnapshot::default();
        let mut apis = Vec::new();
        for (i, requests) in self.requests.iter().enumerate() {
            let requests = requests.load(Relaxed);
            let errors = self.errors[i].load(Relaxed);
            let hist = self.latency[i].get();
            if requests == 0 && errors == 0 && hist.is_none() {
                continue;
            }
            let Some(api) = ApiKey::from_i16(i as i16) else {
                continue;
            };
            let latency = match hist {
                Some(h) => {
                    all.add(h);
                    h.summary()
                }
                None => LatencySummary::default(),
            };
            apis.push(ApiStats {
                api,
                requests,
                errors,
                latency,
            });
        }
        let node_id = self.node_id.load(Relaxed);
        BrokerStats {
            address: self.address.clone(),
            node_id: (node_id >= 0).then_some(node_id),
            requests: apis.iter().map(|a| a.requests).sum(),
            errors: apis.iter().map(|a| a.errors).sum(),
            bytes_sent: self.bytes_sent.load(Relaxed),
            bytes_received: self.bytes_received.load(Relaxed),
            in_flight: self.in_flight.load(Relaxed).max(0) as u64,
            throttle_time: Duration::from_millis(self.throttle_ms.load(Relaxed)),
            connects: self.connects.load(Relaxed),
            reconnects: self.reconnects.load(Relaxed),
            latency: all.summary(),
            apis,
        }
    }
}

/// What a client has counted for one broker address since the client was created. Counts
/// only go up, except `in_flight`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct BrokerStats {
    /// The address dialled (`host:port`, after the address map).
    pub address: String,
    /// The broker's node id, once a connection to it was opened by node id (the bootstrap
    /// address alone does not say).
    pub node_id: Option<i32>,
    /// Requests written to the broker (ApiVersions and SASL of each connection included).
    pub requests: u64,
    /// Requests that failed without a usable answer: timed out, connection lost or refused,
    /// or an answer that did not decode. Error codes inside answers are not counted here.
    pub errors: u64,
    /// Bytes written: request frames, size prefixes included.
    pub bytes_sent: u64,
    /// Bytes read: response frames, size prefixes included.
    pub bytes_received: u64,
    /// Requests waiting for their answer now.
    pub in_flight: u64,
    /// The throttle time the broker's answers asked for, added up (KIP-219 quotas).
    pub throttle_time: Duration,
    /// Connections set up (TCP, TLS, ApiVersions, SASL): the shared one, reconnects, and a
    /// group member's own coordinator connection.
    pub connects: u64,
    /// Of those, the shared connections opened again after the previous one was lost.
    pub reconnects: u64,
    /// Time from queueing a request to its answer, over every API. A Fetch's includes the time
    /// the broker held it waiting for data (`fetch_max_wait`), a JoinGroup's the rebalance.
    pub latency: LatencySummary,
    /// Per API, for the APIs used, by API key.
    pub apis: Vec<ApiStats>,
}

impl BrokerStats {
    /// The counts of one API (`None` if never used with this broker).
    pub fn api(&self, api: ApiKey) -> Option<&ApiStats> {
        self.apis.iter().find(|a| a.api == api)
    }
}

/// What a client has counted for one API with one broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiStats {
    /// The API.
    pub api: ApiKey,
    /// Requests written.
    pub requests: u64,
    /// Requests that failed without a usable answer (see [`BrokerStats::errors`]).
    pub errors: u64,
    /// Time from queueing a request to its answer.
    pub latency: LatencySummary,
}

/// A snapshot of a [`Client`](crate::Client)'s counters ([`Client::stats`](crate::Client::stats)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientStats {
    /// One entry per broker address the client has connected to, by address.
    pub brokers: Vec<BrokerStats>,
}

impl ClientStats {
    /// The entry of one broker address.
    pub fn broker(&self, address: &str) -> Option<&BrokerStats> {
        self.brokers.iter().find(|b| b.address == address)
    }

    /// Requests of `api` written, over every broker.
    pub fn requests(&self, api: ApiKey) -> u64 {
        self.brokers
            .iter()
            .filter_map(|b| b.api(api))
            .map(|a| a.requests)
            .sum()
    }

    /// Requests written, over every broker and API.
    pub fn total_requests(&self) -> u64 {
        self.brokers.iter().map(|b| b.requests).sum()
    }

    /// Bytes written, over every broker.
    pub fn bytes_sent(&self) -> u64 {
        self.brokers.iter().map(|b| b.bytes_sent).sum()
    }

    /// Bytes read, over every broker.
    pub fn bytes_received(&self) -> u64 {
        self.brokers.iter().map(|b| b.bytes_received).sum()
    }
}

#[cfg(feature = "metrics")]
mod export {
    //! The `metrics` facade: handles registered once per broker, and per API on first use.

    use std::sync::OnceLock;
    use std::time::Duration;

    use kafkawire_protocol::messages::ApiKey;
    use metrics::{Counter, Gauge, Histogram};

    use super::{API_SLOTS, slot};

    pub(super) struct Broker {
        address: String,
        requests: [OnceLock<Counter>; API_SLOTS],
        errors: [OnceLock<Counter>; API_SLOTS],
        latency: [OnceLock<Histogram>; API_SLOTS],
        bytes_sent: Counter,
        pub(super) bytes_received: Counter,
        pub(super) in_flight: Gauge,
        pub(super) throttle: Counter,
        pub(super) connects: Counter,
        pub(super) reconnects: Counter,
    }

    fn describe() {
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            use metrics::Unit;
            metrics::describe_counter!(
                "kafkawire.client.requests",
                Unit::Count,
                "Requests written to a broker"
            );
            metrics::describe_counter!(
                "kafkawire.client.request.errors",
                Unit::Count,
                "Requests that failed without a usable answer"
            );
            metrics::describe_histogram!(
                "kafkawire.client.request.latency",
                Unit::Seconds,
                "Time from queueing a request to its answer"
            );
            metrics::describe_counter!(
                "kafkawire.client.bytes.sent",
                Unit::Bytes,
                "Request bytes written"
            );
            metrics::describe_counter!(
                "kafkawire.client.bytes.received",
                Unit::Bytes,
                "Response bytes read"
            );
            metrics::describe_gauge!(
                "kafkawire.client.requests.in_flight",
                Unit::Count,
                "Requests waiting for their answer"
            );
            metrics::describe_counter!(
                "kafkawire.client.throttle.time",
                Unit::Milliseconds,
                "Throttle time asked by the broker"
            );
            metrics::describe_counter!(
                "kafkawire.client.connects",
                Unit::Count,
                "Connections set up"
            );
            metrics::describe_counter!(
                "kafkawire.client.reconnects",
                Unit::Count,
                "Shared connections opened again after a loss"
            );
        });
    }

    fn api_name(api: i16) -> &'static str {
        ApiKey::from_i16(api).map_or("unknown", ApiKey::name)
    }

    impl Broker {
        pub(super) fn new(address: &str) -> Broker {
            describe();
            let b = || address.to_owned();
            Broker {
                address: address.to_owned(),
                requests: [const { OnceLock::new() }; API_SLOTS],
                errors: [const { OnceLock::new() }; API_SLOTS],
                latency: [const { OnceLock::new() }; API_SLOTS],
                bytes_sent: metrics::counter!("kafkawire.client.bytes.sent", "broker" => b()),
                bytes_received: metrics::counter!("kafkawire.client.bytes.received", "broker" => b()),
                in_flight: metrics::gauge!("kafkawire.client.requests.in_flight", "broker" => b()),
                throttle: metrics::counter!("kafkawire.client.throttle.time", "broker" => b()),
                connects: metrics::counter!("kafkawire.client.connects", "broker" => b()),
                reconnects: metrics::counter!("kafkawire.client.reconnects", "broker" => b()),
            }
        }

        pub(super) fn written(&self, api: i16, bytes: usize) {
            self.requests[slot(api)]
                .get_or_init(|| {
                    metrics::counter!("kafkawire.client.requests", "broker" => self.address.clone(), "api" => api_name(api))
                })
                .increment(1);
            self.bytes_sent.increment(bytes as u64);
        }

        pub(super) fn answered(&self, api: ApiKey, took: Duration) {
            self.latency[slot(api as i16)]
                .get_or_init(|| {
                    metrics::histogram!("kafkawire.client.request.latency", "broker" => self.address.clone(), "api" => api.name())
                })
                .record(took.as_secs_f64());
        }

        pub(super) fn failed(&self, api: ApiKey) {
            self.errors[slot(api as i16)]
                .get_or_init(|| {
                    metrics::counter!("kafkawire.client.request.errors", "broker" => self.address.clone(), "api" => api.name())
                })
                .increment(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_a_quarter_octave_wide() {
        let mut last = 0;
        for us in 0..100_000u64 {
            let b = bucket_of(us);
            assert!(b == last || b == last + 1, "{us}: {b} after {last}");
            assert!(us < bucket_upper(b), "{us} < upper of {b}");
            if b > 0 {
                assert!(us >= bucket_upper(b - 1), "{us} >= upper of {}", b - 1);
            }
            last = b;
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_within_a_quarter_of_the_truth() {
        let h = LatencyHistogram::new();
        for ms in 1..=100u64 {
            h.record(Duration::from_millis(ms));
        }
        let s = h.summary();
        assert_eq!(s.count, 100);
        assert_eq!(s.max, Duration::from_millis(100));
        assert_eq!(s.mean, Duration::from_micros(50_500));
        let p50 = s.p50.as_secs_f64() * 1000.0;
        assert!((50.0..=62.5).contains(&p50), "{p50}");
        let p99 = s.p99.as_secs_f64() * 1000.0;
        assert!((99.0..=100.0).contains(&p99), "{p99}");
        assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
    }
}
