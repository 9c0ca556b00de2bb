//! `kafkawire perf consume`: read records as fast as the consumer delivers them and report the
//! throughput, like Kafka's `kafka-consumer-perf-test.sh`.
//!
//! Without `--group` every partition of the topic is assigned (no group, nothing committed);
//! with `--group` the consumer joins that group (offsets auto-committed, and committed on exit,
//! so a second run with the same group starts where the first stopped). The run stops exactly
//! at `--records` records, even when the last fetch brought more. Every record is decoded (its
//! key and value located) and every batch's CRC checked, so the figure is a fetch-and-decode
//! rate, not a byte-copy rate.
//!
//! The clock starts when the first record arrives: the records of that first fetch count, the
//! time it took (and the join, with a group) does not; it is reported as the time to first
//! record. MB/s counts keys and values, in units of 2^20 bytes (as Kafka's tool does).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use kafkawire::{Client, Consumer, Error, OffsetReset, RebalanceListener};

#[derive(Args, Debug)]
pub(crate) struct ConsumePerfArgs {
    /// Topic to read (it must exist).
    #[arg(long)]
    topic: String,
    /// Number of records to read; the run stops exactly there.
    #[arg(long, alias = "messages", value_name = "N")]
    records: u64,
    /// Consume as a member of this consumer group (offsets are auto-committed, and committed on
    /// exit). Default: assign every partition of the topic, without a group.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Where to start. With --group: where partitions without a committed offset start.
    #[arg(long, value_enum, default_value_t = StartAt::Earliest)]
    from: StartAt,
    /// Give up when no record arrives for this long (ms): print what was consumed and fail.
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    timeout_ms: u64,
    /// Most bytes in one fetch response (default 50 MiB).
    #[arg(long, value_name = "B")]
    fetch_max_bytes: Option<i32>,
    /// Most bytes per partition in one fetch response (default 1 MiB).
    #[arg(long, value_name = "B")]
    max_partition_fetch_bytes: Option<i32>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum StartAt {
    /// The oldest record still kept.
    Earliest,
    /// The end of the log: only records written after the start.
    Latest,
}

const MB: f64 = 1024.0 * 1024.0;

/// Notes when the group first gave this member partitions.
struct JoinClock(Arc<Mutex<Option<Instant>>>);

impl RebalanceListener for JoinClock {
    fn on_partitions_assigned(&mut self, _partitions: &[(String, i32)]) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert_with(Instant::now);
    }
}

/// Records and bytes consumed since the progress reporter last looked.
#[derive(Default)]
struct Window {
    records: AtomicU64,
    bytes: AtomicU64,
}

fn per_second(n: f64, elapsed: Duration) -> f64 {
    n / elapsed.as_secs_f64().max(1e-9)
}

/// The progress line for `records` records of `bytes` bytes consumed in `elapsed`.
fn window_line(records: u64, bytes: u64, elapsed: Duration) -> String {
    format!(
        "{records} records consumed, {:.1} records/s ({:.2} MB/s)",
        per_second(records as f64, elapsed),
        per_second(bytes as f64 / MB, elapsed),
    )
}

/// What a run consumed, for the summary line.
struct Summary {
    records: u64,
    /// Key and value bytes.
    bytes: u64,
    /// From the first record's arrival to the last record's.
    elapsed: Duration,
    /// From the start (before assigning or joining) to the first record's arrival.
    to_first_record: Option<Duration>,
    /// From the start to the group's first assignment (with --group).
    to_join: Option<Duration>,
}

fn summary_line(s: &Summary) -> String {
    let mut line = format!(
        "{} records consumed, {:.1} records/s ({:.2} MB/s), {:.2} MB in {:.2} s",
        s.records,
        per_second(s.records as f64, s.elapsed),
        per_second(s.bytes as f64 / MB, s.elapsed),
        s.bytes as f64 / MB,
        s.elapsed.as_secs_f64(),
    );
    match s.to_first_record {
        Some(d) => line.push_str(&format!(
            ", {:.1} ms to first record",
            d.as_secs_f64() * 1e3
        )),
        None => line.push_str(", no record arrived"),
    }
    if let Some(d) = s.to_join {
        line.push_str(&format!(
            ", {:.1} ms to join the group",
            d.as_secs_f64() * 1e3
        ));
    }
    line.push('.');
    line
}

/// How long a poll may still wait for the next record, `timeout` after `last_progress`:
/// `None` once that has passed; `Duration::MAX` (no deadline) for a timeout too long for the
/// clock.
fn time_left(last_progress: Instant, timeout: Duration, now: Instant) -> Option<Duration> {
    match last_progress.checked_add(timeout) {
        Some(deadline) => deadline.checked_duration_since(now),
        None => Some(Duration::MAX),
    }
}

/// Prints `window` to stderr every second until aborted.
fn spawn_reporter(window: Arc<Window>) -> tokio::task::JoinHandle<()> {
    crate::perf::every_second(move |elapsed| {
        let records = window.records.swap(0, Ordering::Relaxed);
        let bytes = window.bytes.swap(0, Ordering::Relaxed);
        eprintln!("{}", window_line(records, bytes, elapsed));
    })
}

pub(crate) async fn run(client: &Client, args: &ConsumePerfArgs) -> Result<(), Error> {
    if args.records == 0 {
        return Err(Error::Config("--records must be at least 1".into()));
    }
    if args.fetch_max_bytes.is_some_and(|b| b <= 0)
        || args.max_partition_fetch_bytes.is_some_and(|b| b <= 0)
    {
        return Err(Error::Config(
            "--fetch-max-bytes and --max-partition-fetch-bytes must be positive".into(),
        ));
    }
    // Fail early, with the topic's name, if it does not exist (a group would wait for it).
    let meta = client.topic_metadata(&args.topic).await?;

    let joined = Arc::new(Mutex::new(None));
    let cpu_start = crate::usage::cpu_time();
    let started = Instant::now();
    let mut builder = Consumer::builder(client).auto_offset_reset(match args.from {
        StartAt::Earliest => OffsetReset::Earliest,
        StartAt::Latest => OffsetReset::Latest,
    });
    if let Some(b) = args.fetch_max_bytes {
        builder = builder.fetch_max_bytes(b);
    }
    if let Some(b) = args.max_partition_fetch_bytes {
        builder = builder.max_partition_fetch_bytes(b);
    }
    let mut consumer = match &args.group {
        Some(group) => {
            builder
                .group_id(group)
                .subscribe([args.topic.as_str()])
                // Some brokers (Tansu) hold a join for half the session timeout: keep it short.
                .session_timeout(Duration::from_secs(10))
                .heartbeat_interval(Duration::from_secs(1))
                .enable_auto_commit(true)
                .rebalance_listener(JoinClock(joined.clone()))
                .build()
                .await?
        }
        None => {
            builder
                .assign(
                    meta.partitions
                        .iter()
                        .map(|p| (args.topic.as_str(), p.partition)),
                )
                .build()
                .await?
        }
    };

    let timeout = Duration::from_millis(args.timeout_ms);
    let window = Arc::new(Window::default());
    let mut reporter = None;
    let mut first_record: Option<Instant> = None;
    // When the last records were counted: the end of the clock, and where the timeout runs from.
    let mut last_progress = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let mut failure = None;
    let mut timed_out = false;
    let mut ticker = crate::logging::StatsTicker::start();
    let stats_line = |consumer: &Consumer| {
        crate::logging::stats_line(&client.stats(), None, Some(&consumer.stats()))
    };
    while count < args.records {
        if let Some(t) = ticker.as_mut()
            && t.due()
        {
            eprintln!("{}", stats_line(&consumer));
        }
        let Some(remaining) = time_left(last_progress, timeout, Instant::now()) else {
            timed_out = true;
            break;
        };
        let records = match consumer.poll(remaining).await {
            Ok(r) => r,
            Err(e) if e.is_retriable() => {
                eprintln!("kafkawire perf: {e} (retrying)");
                continue;
            }
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let arrived = Instant::now();
        for reset in records.resets() {
            eprintln!(
                "kafkawire perf: {}-{}: offset {} is out of range; continuing from {}",
                reset.topic, reset.partition, reset.old_offset, reset.new_offset
            );
        }
        let (mut n, mut b) = (0u64, 0u64);
        for record in records.iter().take((args.records - count) as usize) {
            match record {
                Ok(r) => {
                    b += (r.key().map_or(0, <[u8]>::len) + r.value().map_or(0, <[u8]>::len)) as u64;
                    n += 1;
                }
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        if n > 0 {
            if first_record.is_none() {
                first_record = Some(arrived);
                reporter = Some(spawn_reporter(window.clone()));
            }
            count += n;
            bytes += b;
            window.records.fetch_add(n, Ordering::Relaxed);
            window.bytes.fetch_add(b, Ordering::Relaxed);
            last_progress = Instant::now();
        }
        if failure.is_some() {
            break;
        }
    }
    if let Some(r) = reporter {
        r.abort();
    }
    if ticker.is_some() {
        eprintln!("{}", stats_line(&consumer));
    }
    let closed = consumer.close().await;
    if let Some(e) = failure {
        return Err(e);
    }
    let summary = Summary {
        records: count,
        bytes,
        elapsed: first_record.map_or(Duration::ZERO, |f| last_progress.duration_since(f)),
        to_first_record: first_record.map(|f| f.duration_since(started)),
        to_join: joined
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .map(|j| j.duration_since(started)),
    };
    println!("{}", summary_line(&summary));
    let usage = crate::usage::summary(count, cpu_start);
    if !usage.is_empty() {
        println!("{usage} (the whole process, from start to the last record)");
    }
    if timed_out {
        return Err(Error::Config(format!(
            "only {count} of the {} records asked for arrived: none for {} ms (does {} hold that many from --from {}? Raise --timeout-ms to wait longer)",
            args.records,
            args.timeout_ms,
            args.topic,
            match args.from {
                StartAt::Earliest => "earliest",
                StartAt::Latest => "latest",
            }
        )));
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_lines_count_records_and_mebibytes_per_second() {
        assert_eq!(
            window_line(2000, 2 * 1024 * 1024, Duration::from_millis(500)),
            "2000 records consumed, 4000.0 records/s (4.00 MB/s)"
        );
        assert_eq!(
            window_line(0, 0, Duration::from_secs(1)),
            "0 records consumed, 0.0 records/s (0.00 MB/s)"
        );
        // No division by zero.
        assert!(window_line(1, 1, Duration::ZERO).starts_with("1 records consumed, "));
    }

    #[test]
    fn the_timeout_runs_from_the_last_progress_and_any_length_is_accepted() {
        let start = Instant::now();
        let later = start + Duration::from_millis(400);
        assert_eq!(
            time_left(start, Duration::from_secs(1), later),
            Some(Duration::from_millis(600))
        );
        assert_eq!(time_left(start, Duration::from_millis(100), later), None);
        // --timeout-ms u64::MAX: half a billion years left, no panic.
        let left = time_left(start, Duration::from_millis(u64::MAX), later).unwrap();
        assert!(left > Duration::from_secs(1 << 50), "{left:?}");
        // Past what the clock holds: no deadline, no panic.
        assert_eq!(time_left(start, Duration::MAX, later), Some(Duration::MAX));
    }

    #[test]
    fn summaries_name_the_latencies_they_know() {
        let mut s = Summary {
            records: 1_000_000,
            bytes: 100 * 1024 * 1024,
            elapsed: Duration::from_secs(4),
            to_first_record: Some(Duration::from_micros(12_345)),
            to_join: None,
        };
        assert_eq!(
            summary_line(&s),
            "1000000 records consumed, 250000.0 records/s (25.00 MB/s), 100.00 MB in 4.00 s, 12.3 ms to first record."
        );
        s.to_join = Some(Duration::from_millis(5001));
        assert!(
            summary_line(&s).ends_with(", 12.3 ms to first record, 5001.0 ms to join the group.")
        );
        let none = Summary {
            records: 0,
            bytes: 0,
            elapsed: Duration::ZERO,
            to_first_record: None,
            to_join: None,
        };
        assert_eq!(
            summary_line(&none),
            "0 records consumed, 0.0 records/s (0.00 MB/s), 0.00 MB in 0.00 s, no record arrived."
        );
    }
}
