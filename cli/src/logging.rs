//! Logs and statistics of the command-line tool.
//!
//! Logs: a `tracing` subscriber writing to standard error, warnings only by default; `-v`,
//! `-vv`, `-vvv` raise kafkawire's own crates to info, debug, trace; `--debug AREA,...` turns
//! on debug logs of some areas only, as kcat's `-d` contexts; `KAFKAWIRE_LOG` (else
//! `RUST_LOG`), a tracing filter such as `warn,kafkawire_client::connection=debug`, replaces
//! the `-v` level when set.
//!
//! Statistics: `--stats-interval-ms N` prints a snapshot of the client's counters (and the
//! producer's or consumer's, for `produce` and `perf`) as one JSON line on standard error every
//! N ms, and once more at the end.

use std::io::IsTerminal;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafkawire::{ClientStats, ConsumerStats, LatencySummary, ProducerStats};
use serde_json::{Map, Value, json};

/// The global flags of logs and statistics.
#[derive(clap::Args, Debug, Default)]
pub(crate) struct LogArgs {
    /// More log output on standard error: -v info, -vv debug, -vvv trace (kafkawire's own
    /// crates; -v shows each connection set up). Default: warnings only. KAFKAWIRE_LOG or
    /// RUST_LOG (a tracing filter, e.g. kafkawire_client::connection=debug) replaces it.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,

    /// Debug logs of these areas only (comma-separated, repeatable), as kcat's -d: connection
    /// (TCP, TLS, ApiVersions, SASL), metadata, produce, fetch, group, protocol (every request
    /// and response), admin, all.
    #[arg(
        long = "debug",
        value_name = "AREA[,AREA...]",
        value_delimiter = ',',
        global = true,
        value_parser = clap::builder::PossibleValuesParser::new(AREAS.iter().map(|a| a.0))
    )]
    pub(crate) debug: Vec<String>,

    /// Print the client's statistics (requests, bytes, latency, throttling, errors and
    /// reconnects per broker; for produce and perf also the producer's or consumer's: batches,
    /// retries, lag...) as one JSON line on standard error every MS milliseconds, and at the
    /// end.
    #[arg(
        long = "stats-interval-ms",
        value_name = "MS",
        global = true,
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    pub(crate) stats_interval_ms: Option<u64>,
}

/// The `--debug` areas: name, the module targets they cover, and their level.
const AREAS: &[(&str, &[&str], &str)] = &[
    (
        "connection",
        &[
            "kafkawire_client::connection",
            "kafkawire_client::authenticate",
            "kafkawire_client::tls",
            "kafkawire_client::sasl",
        ],
        "debug",
    ),
    (
        "metadata",
        &["kafkawire_client::client", "kafkawire_client::metadata"],
        "debug",
    ),
    ("produce", &["kafkawire_producer"], "debug"),
    (
        "fetch",
        &["kafkawire_consumer::fetch", "kafkawire_consumer::buffer"],
        "debug",
    ),
    (
        "group",
        &[
            "kafkawire_consumer::group",
            "kafkawire_consumer::consumer",
            "kafkawire_consumer::offsets",
        ],
        "debug",
    ),
    ("protocol", &["kafkawire_client::protocol"], "trace"),
    (
        "admin",
        &["kafkawire_client::admin", "kafkawire_client::groups"],
        "debug",
    ),
    (
        "all",
        &[
            "kafkawire",
            "kafkawire_client",
            "kafkawire_producer",
            "kafkawire_consumer",
        ],
        "debug",
    ),
];

/// kafkawire's own crates (the binary's crate is `kafkawire`, as the facade's).
const CRATES: &[&str] = &[
    "kafkawire",
    "kafkawire_client",
    "kafkawire_producer",
    "kafkawire_consumer",
    "kafkawire_protocol",
];

static STATS_INTERVAL: OnceLock<Option<Duration>> = OnceLock::new();

/// The filter directives for `args`, with `env` (`KAFKAWIRE_LOG`, else `RUST_LOG`) replacing
/// the `-v` level when set.
fn directives(args: &LogArgs, env: Option<&str>) -> String {
    let level = match args.verbose {
        0 => None,
        1 => Some("info"),
        2 => Some("debug"),
        _ => Some("trace"),
    };
    let mut out: Vec<String> = match env {
        Some(filter) => vec![filter.to_owned()],
        None => std::iter::once("warn".to_owned())
            .chain(
                level
                    .into_iter()
                    .flat_map(|l| CRATES.iter().map(move |c| format!("{c}={l}"))),
            )
            .collect(),
    };
    for area in &args.debug {
        if let Some((_, targets, area_level)) = AREAS.iter().find(|a| a.0 == area) {
            // -vvv asks for more than an area's debug: keep trace.
            let l = if args.verbose >= 3 {
                "trace"
            } else {
                area_level
            };
            out.extend(targets.iter().map(|t| format!("{t}={l}")));
        }
    }
    out.join(",")
}

/// Installs the subscriber and notes the statistics interval. Returns notes for the user (a
/// filter in the environment that does not parse).
pub(crate) fn init(args: &LogArgs) -> Vec<String> {
    let _ = STATS_INTERVAL.set(args.stats_interval_ms.map(Duration::from_millis));
    let mut notes = Vec::new();
    let env = ["KAFKAWIRE_LOG", "RUST_LOG"].into_iter().find_map(|name| {
        std::env::var(name)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .map(|v| (name, v))
    });
    let filter = match tracing_subscriber::EnvFilter::try_new(directives(
        args,
        env.as_ref().map(|(_, v)| v.as_str()),
    )) {
        Ok(f) => f,
        Err(e) => {
            if let Some((name, value)) = &env {
                notes.push(format!(
                    "{name}={value:?} is not a log filter ({e}); using the command line's level"
                ));
            }
            tracing_subscriber::EnvFilter::new(directives(args, None))
        }
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .try_init();
    notes
}

/// The `--stats-interval-ms` interval, if given.
pub(crate) fn stats_interval() -> Option<Duration> {
    STATS_INTERVAL.get().copied().flatten()
}

/// Prints a statistics line every interval from a background task while it lives; stops on
/// drop. [`StatsPrinter::finish`] prints the last one.
pub(crate) struct StatsPrinter {
    task: tokio::task::JoinHandle<()>,
    line: Arc<dyn Fn() -> String + Send + Sync>,
}

impl StatsPrinter {
    /// With `--stats-interval-ms`, starts printing `line()` on standard error at that interval.
    pub(crate) fn start(line: impl Fn() -> String + Send + Sync + 'static) -> Option<Self> {
        let every = stats_interval()?;
        let line: Arc<dyn Fn() -> String + Send + Sync> = Arc::new(line);
        let l = line.clone();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                eprintln!("{}", l());
            }
        });
        Some(StatsPrinter { task, line })
    }

    /// Stops and prints the last line.
    pub(crate) fn finish(self) {
        self.task.abort();
        eprintln!("{}", (self.line)());
    }
}

impl Drop for StatsPrinter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// For a loop that owns what it reports on (a consumer): says when a line is due.
pub(crate) struct StatsTicker {
    every: Duration,
    next: Instant,
}

impl StatsTicker {
    /// With `--stats-interval-ms`, a ticker whose first line is due one interval from now.
    pub(crate) fn start() -> Option<StatsTicker> {
        let every = stats_interval()?;
        Some(StatsTicker {
            every,
            next: Instant::now() + every,
        })
    }

    /// Whether a line is due now (then the next one is an interval later).
    pub(crate) fn due(&mut self) -> bool {
        let now = Instant::now();
        if now < self.next {
            return false;
        }
        self.next = now + self.every;
        true
    }
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

fn latency(l: &LatencySummary) -> Value {
    json!({
        "count": l.count,
        "mean_ms": ms(l.mean),
        "p50_ms": ms(l.p50),
        "p99_ms": ms(l.p99),
        "max_ms": ms(l.max),
    })
}

fn client_json(s: &ClientStats) -> Value {
    let brokers: Vec<Value> = s
        .brokers
        .iter()
        .map(|b| {
            let apis: Map<String, Value> = b
                .apis
                .iter()
                .map(|a| {
                    (
                        a.api.name().to_owned(),
                        json!({
                            "requests": a.requests,
                            "errors": a.errors,
                            "latency": latency(&a.latency),
                        }),
                    )
                })
                .collect();
            json!({
                "address": b.address,
                "node_id": b.node_id,
                "requests": b.requests,
                "errors": b.errors,
                "bytes_sent": b.bytes_sent,
                "bytes_received": b.bytes_received,
                "in_flight": b.in_flight,
                "throttle_ms": b.throttle_time.as_millis() as u64,
                "connects": b.connects,
                "reconnects": b.reconnects,
                "latency": latency(&b.latency),
                "apis": apis,
            })
        })
        .collect();
    json!({ "brokers": brokers })
}

fn producer_json(s: &ProducerStats) -> Value {
    json!({
        "buffered_records": s.buffered_records,
        "buffered_bytes": s.buffered_bytes,
        "buffer_memory": s.buffer_memory,
        "requests": s.requests,
        "batches_sent": s.batches_sent,
        "records_sent": s.records_sent,
        "bytes_sent": s.bytes_sent,
        "records_acked": s.records_acked,
        "retries": s.retries,
        "failed_records": s.failed_records,
        "average_batch_bytes": (s.average_batch_bytes() * 10.0).round() / 10.0,
        "average_batch_records": (s.average_batch_records() * 10.0).round() / 10.0,
        "records_per_request": (s.records_per_request() * 10.0).round() / 10.0,
    })
}

fn consumer_json(s: &ConsumerStats) -> Value {
    let partitions: Vec<Value> = s
        .partitions
        .iter()
        .map(|p| {
            json!({
                "topic": p.topic,
                "partition": p.partition,
                "position": p.position,
                "high_watermark": p.high_watermark,
                "lag": p.lag,
            })
        })
        .collect();
    json!({
        "fetch_requests": s.fetch_requests,
        "fetch_errors": s.fetch_errors,
        "fetch_latency": latency(&s.fetch_latency),
        "records_returned": s.records_returned,
        "total_lag": s.total_lag(),
        "rebalances": s.rebalances,
        "rebalance_ms": s.rebalance_time.as_millis() as u64,
        "partitions": partitions,
    })
}

/// One statistics line: a JSON object with `stats_ts_ms` (milliseconds since the Unix epoch),
/// `client`, and `producer` or `consumer` when given (keys in alphabetical order).
pub(crate) fn stats_line(
    client: &ClientStats,
    producer: Option<&ProducerStats>,
    consumer: Option<&ConsumerStats>,
) -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut line = Map::new();
    line.insert("stats_ts_ms".into(), now.into());
    line.insert("client".into(), client_json(client));
    if let Some(p) = producer {
        line.insert("producer".into(), producer_json(p));
    }
    if let Some(c) = consumer {
        line.insert("consumer".into(), consumer_json(c));
    }
    Value::Object(line).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(verbose: u8, debug: &[&str]) -> LogArgs {
        LogArgs {
            verbose,
            debug: debug.iter().map(|d| (*d).to_owned()).collect(),
            stats_interval_ms: None,
        }
    }

    #[test]
    fn verbosity_and_areas_make_the_filter() {
        assert_eq!(directives(&args(0, &[]), None), "warn");
        let v = directives(&args(1, &[]), None);
        assert!(
            v.starts_with("warn,kafkawire=info,kafkawire_client=info"),
            "{v}"
        );
        assert!(directives(&args(2, &[]), None).contains("kafkawire_producer=debug"));
        assert!(directives(&args(3, &[]), None).contains("kafkawire_consumer=trace"));
        let d = directives(&args(0, &["connection", "protocol"]), None);
        assert_eq!(
            d,
            "warn,kafkawire_client::connection=debug,kafkawire_client::authenticate=debug,\
             kafkawire_client::tls=debug,kafkawire_client::sasl=debug,\
             kafkawire_client::protocol=trace"
        );
        // The environment replaces the -v level; areas still add to it.
        assert_eq!(
            directives(&args(2, &["fetch"]), Some("error")),
            "error,kafkawire_consumer::fetch=debug,kafkawire_consumer::buffer=debug"
        );
        for (_, _, level) in AREAS {
            assert!(["debug", "trace"].contains(level));
        }
        // Every area's filter parses.
        let all: Vec<&str> = AREAS.iter().map(|a| a.0).collect();
        tracing_subscriber::EnvFilter::try_new(directives(&args(1, &all), None)).unwrap();
    }

    #[test]
    fn a_stats_line_is_one_json_object() {
        let line = stats_line(
            &ClientStats::default(),
            Some(&ProducerStats::default()),
            Some(&ConsumerStats::default()),
        );
        assert!(!line.contains('\n'));
        let v: Value = serde_json::from_str(&line).unwrap();
        assert!(v["stats_ts_ms"].as_u64().unwrap() > 0);
        assert_eq!(v["client"]["brokers"], json!([]));
        assert_eq!(v["producer"]["batches_sent"], 0);
        assert_eq!(v["consumer"]["total_lag"], 0);
    }
}
