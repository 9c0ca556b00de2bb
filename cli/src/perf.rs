//! `kafkawire perf`: load generators that report throughput and latency, like Kafka's
//! `kafka-producer-perf-test.sh`.
//!
//! `perf produce` sends `--records` records of `--record-size` random bytes (no key) as fast as
//! the producer accepts them, or at most `--throughput` records per second. The payloads are
//! generated before the clock starts, from a fixed seed, so runs are repeatable. A record's
//! latency is the time from the call that hands it to the producer to the moment its delivery
//! future resolves (acknowledged, or failed). Sends never wait for acknowledgements: the
//! producer's buffer (`--buffer-memory`) bounds what is in flight, as in Kafka's tool.
//! MB/s counts values only, in units of 2^20 bytes (as Kafka's tool does).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use clap::{Args, Subcommand};
use kafkawire::{
    Acks, Client, Compression, DeliveryFuture, Error, Producer, ProducerConfig, ProducerRecord,
};
use tokio::task::JoinSet;

#[derive(Subcommand, Debug)]
pub(crate) enum PerfCommand {
    /// Send N records of B random bytes and report throughput and latency (like
    /// kafka-producer-perf-test). The topic must exist.
    Produce(ProducePerfArgs),
    /// Read N records and report throughput (like kafka-consumer-perf-test). The topic must
    /// exist.
    Consume(crate::perf_consume::ConsumePerfArgs),
}

#[derive(Args, Debug)]
pub(crate) struct ProducePerfArgs {
    /// Topic to write to (it must exist).
    #[arg(long)]
    topic: String,
    /// Number of records to send.
    #[arg(long, alias = "num-records", value_name = "N")]
    records: u64,
    /// Size of each record's value in bytes (records have no key).
    #[arg(long, value_name = "B")]
    record_size: usize,
    /// Most records per second; -1 (the default) means no limit.
    #[arg(long, value_name = "R", default_value_t = -1.0, allow_negative_numbers = true)]
    throughput: f64,
    /// Acknowledgement level: 0, 1 or all.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Compression: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    /// How long a batch waits for more records, in ms (linger).
    #[arg(long, default_value_t = 5)]
    linger_ms: u64,
    /// Largest batch per partition, in bytes (batch.size; the producer's default).
    #[arg(long, default_value_t = 256 * 1024)]
    batch_size: usize,
    /// Producer buffer, in bytes: how much may wait to be sent or acknowledged.
    #[arg(long, default_value_t = 32 * 1024 * 1024)]
    buffer_memory: usize,
    /// Idempotent delivery (needs acks=all). Default: true with acks=all, else false.
    #[arg(long, value_name = "true|false")]
    idempotence: Option<bool>,
    /// Produce requests in flight per broker connection.
    #[arg(long, default_value_t = 5)]
    max_in_flight: usize,
    /// At the end, print (to stderr) how many records each partition of the topic received,
    /// a hint at how evenly the partitioner spread the load.
    #[arg(long)]
    partitions_hint: bool,
}

pub(crate) async fn run(client: &Client, cmd: &PerfCommand) -> Result<(), Error> {
    match cmd {
        PerfCommand::Produce(args) => produce(client, args).await,
        PerfCommand::Consume(args) => crate::perf_consume::run(client, args).await,
    }
}

/// Calls `report` with the time since its last call, once a second, until the task is aborted
/// (the progress lines of both perf commands).
pub(crate) fn every_second(
    mut report: impl FnMut(Duration) + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tick.tick().await;
        let mut last = Instant::now();
        loop {
            tick.tick().await;
            let now = Instant::now();
            report(now - last);
            last = now;
        }
    })
}

/// Delivery futures are watched by one task per chunk of this many records (a task per record
/// would cost more than the producer itself).
const CHUNK: usize = 64;
/// A chunk is handed to its watcher when it is full or its first record is this old, so a
/// resolved future is noticed at most about this late (and never later than an idle wait).
const CHUNK_AGE: Duration = Duration::from_millis(1);
/// Distinct payloads generated (fewer for large records: at most ~16 MiB of them).
const MAX_PAYLOADS: usize = 1000;
const PAYLOAD_POOL_BYTES: usize = 16 * 1024 * 1024;
const MB: f64 = 1024.0 * 1024.0;

/// Counters shared by the sender loop, the watchers and the progress reporter.
struct Stats {
    record_size: usize,
    acked: AtomicU64,
    failed: AtomicU64,
    lat_sum_us: AtomicU64,
    lat_max_us: AtomicU64,
    window_count: AtomicU64,
    window_lat_sum_us: AtomicU64,
    window_lat_max_us: AtomicU64,
    /// Latency of every acknowledged record, in microseconds (sorted at the end).
    latencies: Mutex<Vec<u32>>,
    first_error: Mutex<Option<Error>>,
    /// Acknowledged records per partition id.
    per_partition: Vec<AtomicU64>,
}

impl Stats {
    fn new(record_size: usize, records: u64, partitions: usize) -> Stats {
        let cap = usize::try_from(records).unwrap_or(usize::MAX).min(1 << 22);
        Stats {
            record_size,
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            lat_sum_us: AtomicU64::new(0),
            lat_max_us: AtomicU64::new(0),
            window_count: AtomicU64::new(0),
            window_lat_sum_us: AtomicU64::new(0),
            window_lat_max_us: AtomicU64::new(0),
            latencies: Mutex::new(Vec::with_capacity(cap)),
            first_error: Mutex::new(None),
            per_partition: (0..partitions).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    /// `n` records acknowledged with latencies summing to `sum` µs, the largest `max` µs.
    fn acked(&self, n: u64, sum: u64, max: u64) {
        self.acked.fetch_add(n, Ordering::Relaxed);
        self.lat_sum_us.fetch_add(sum, Ordering::Relaxed);
        self.lat_max_us.fetch_max(max, Ordering::Relaxed);
        self.window_count.fetch_add(n, Ordering::Relaxed);
        self.window_lat_sum_us.fetch_add(sum, Ordering::Relaxed);
        self.window_lat_max_us.fetch_max(max, Ordering::Relaxed);
    }

    fn failed(&self, e: Error) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        let mut first = self
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if first.is_none() {
            eprintln!("kafkawire perf: a record failed: {e}");
            *first = Some(e);
        }
    }

    /// Prints the records acknowledged since the last call, to stderr.
    fn print_window(&self, elapsed: Duration) {
        let n = self.window_count.swap(0, Ordering::Relaxed);
        let sum = self.window_lat_sum_us.swap(0, Ordering::Relaxed);
        let max = self.window_lat_max_us.swap(0, Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let rate = n as f64 / secs;
        eprintln!(
            "{n} records sent, {rate:.1} records/s ({:.2} MB/s), avg latency {:.1} ms, max latency {:.1} ms",
            rate * self.record_size as f64 / MB,
            if n == 0 {
                0.0
            } else {
                sum as f64 / n as f64 / 1e3
            },
            max as f64 / 1e3,
        );
    }
}

/// Waits for a chunk of delivery futures, recording each one's latency when it resolves (all
/// of them are polled on every wake-up, so completion order does not matter).
async fn watch(stats: Arc<Stats>, chunk: Vec<(Instant, DeliveryFuture)>) {
    let mut pending: Vec<Option<(Instant, DeliveryFuture)>> = chunk.into_iter().map(Some).collect();
    let mut left = pending.len();
    let mut latencies = Vec::with_capacity(left);
    std::future::poll_fn(|cx| {
        let mut now = None;
        let (mut n, mut sum, mut max) = (0u64, 0u64, 0u64);
        for slot in pending.iter_mut() {
            let Some((sent, delivery)) = slot else {
                continue;
            };
            let Poll::Ready(result) = Pin::new(delivery).poll(cx) else {
                continue;
            };
            let now = *now.get_or_insert_with(Instant::now);
            let us = u32::try_from(now.duration_since(*sent).as_micros()).unwrap_or(u32::MAX);
            *slot = None;
            left -= 1;
            match result {
                Ok(meta) => {
                    latencies.push(us);
                    n += 1;
                    sum += u64::from(us);
                    max = max.max(u64::from(us));
                    if let Some(c) = usize::try_from(meta.partition)
                        .ok()
                        .and_then(|p| stats.per_partition.get(p))
                    {
                        c.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Err(e) => stats.failed(e),
            }
        }
        if n > 0 {
            stats.acked(n, sum, max);
        }
        if left == 0 {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    })
    .await;
    stats
        .latencies
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .extend_from_slice(&latencies);
}

/// The longest a `--throughput` schedule may run: 100 years (any longer rate is a mistake, and
/// the clock could not hold it).
const MAX_SCHEDULE_SECS: f64 = 100.0 * 365.25 * 24.0 * 3600.0;

/// The rate limit `--throughput` asks for: `None` for no limit (any negative number, as
/// Kafka's tool takes -1; or infinity), else records per second.
///
/// # Errors
/// [`Error::Config`] for NaN or 0, and for a rate so low that sending `records` records would
/// take more than 100 years (e.g. `1e-20`).
fn throughput_limit(throughput: f64, records: u64) -> Result<Option<f64>, Error> {
    if throughput.is_nan() || throughput == 0.0 {
        return Err(Error::Config(
            "--throughput must be a positive number of records per second, or -1 for no limit"
                .into(),
        ));
    }
    if throughput < 0.0 || throughput.is_infinite() {
        return Ok(None);
    }
    // The last record is due (records - 1) / rate seconds after the start.
    let span = records.saturating_sub(1) as f64 / throughput;
    if span > MAX_SCHEDULE_SECS {
        return Err(Error::Config(format!(
            "--throughput {throughput:e} is too low for --records {records}: sending them would take {span:.3e} s (more than 100 years)"
        )));
    }
    Ok(Some(throughput))
}

/// Checks `--record-size` against what one Produce request may carry (the producer's
/// `max_request_size`, and `--buffer-memory`), so that a size no record could be sent with
/// fails at once instead of asking for its payloads' memory.
///
/// # Errors
/// [`Error::Config`] naming the size and the limit.
fn check_record_size(record_size: usize, buffer_memory: usize) -> Result<(), Error> {
    let max_request_size = ProducerConfig::default().max_request_size;
    let limit = max_request_size.min(buffer_memory);
    if record_size > limit {
        return Err(Error::Config(format!(
            "--record-size {record_size} is larger than a record may be: max_request_size is {max_request_size} bytes and --buffer-memory {buffer_memory}"
        )));
    }
    Ok(())
}

/// `count` payloads of `size` random upper-case letters (as Kafka's tool), from a fixed seed.
fn payloads(size: usize, count: usize) -> Vec<Bytes> {
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut all = Vec::with_capacity(size * count);
    while all.len() < size * count {
        // xorshift64*
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        let r = state.wrapping_mul(0x2545_F491_4F6C_DD1D);
        all.push(b'A' + ((r >> 32) % 26) as u8);
    }
    let all = Bytes::from(all);
    (0..count)
        .map(|i| all.slice(i * size..(i + 1) * size))
        .collect()
}

/// Nearest-rank percentile of sorted latencies, in ms.
fn percentile_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    f64::from(sorted[rank.clamp(1, sorted.len()) - 1]) / 1e3
}

fn hand_off(
    watchers: &mut JoinSet<()>,
    stats: &Arc<Stats>,
    chunk: &mut Vec<(Instant, DeliveryFuture)>,
) {
    if chunk.is_empty() {
        return;
    }
    let full = std::mem::replace(chunk, Vec::with_capacity(CHUNK));
    watchers.spawn(watch(stats.clone(), full));
    // Reap finished watchers so the set stays small on long runs.
    while watchers.try_join_next().is_some() {}
}

async fn produce(client: &Client, args: &ProducePerfArgs) -> Result<(), Error> {
    let acks: Acks = args.acks.parse()?;
    let compression: Compression = args.compression.parse().map_err(|_| {
        Error::Config(format!(
            "--compression must be none, gzip, snappy, lz4 or zstd, not {:?}",
            args.compression
        ))
    })?;
    let throughput = throughput_limit(args.throughput, args.records)?;
    check_record_size(args.record_size, args.buffer_memory)?;
    // Fail early, with the topic's name, if it does not exist.
    let topic = client.topic_metadata(&args.topic).await?;
    let partitions = topic
        .partitions
        .iter()
        .map(|p| usize::try_from(p.partition).map_or(0, |p| p + 1))
        .max()
        .unwrap_or(0);
    let config = ProducerConfig {
        acks,
        compression,
        linger: Duration::from_millis(args.linger_ms),
        batch_size: args.batch_size,
        buffer_memory: args.buffer_memory,
        enable_idempotence: args.idempotence.unwrap_or(acks == Acks::All),
        max_in_flight_per_connection: args.max_in_flight,
        ..ProducerConfig::default()
    };
    let producer = Producer::new(client, config)?;
    let printer = {
        let (c, p) = (client.clone(), producer.clone());
        crate::logging::StatsPrinter::start(move || {
            crate::logging::stats_line(&c.stats(), Some(&p.stats()), None)
        })
    };

    let pool = (PAYLOAD_POOL_BYTES / args.record_size.max(1)).clamp(1, MAX_PAYLOADS);
    let payloads = payloads(args.record_size, pool);
    let topic_name: std::sync::Arc<str> = args.topic.as_str().into();
    let stats = Arc::new(Stats::new(args.record_size, args.records, partitions));

    let cpu_start = crate::usage::cpu_time();
    let started = Instant::now();
    let reporter = {
        let stats = stats.clone();
        every_second(move |elapsed| stats.print_window(elapsed))
    };

    let mut watchers = JoinSet::new();
    let mut chunk: Vec<(Instant, DeliveryFuture)> = Vec::with_capacity(CHUNK);
    let mut chunk_started = started;
    let mut attempted = 0u64;
    let mut stopped = None;
    for i in 0..args.records {
        if let Some(rate) = throughput {
            // Checked by `throughput_limit`: the whole schedule fits the clock.
            let due = Duration::try_from_secs_f64(i as f64 / rate)
                .ok()
                .and_then(|d| started.checked_add(d))
                .ok_or_else(|| {
                    Error::Config(format!(
                        "record {i} cannot be scheduled at {rate} records/s"
                    ))
                })?;
            if Instant::now() < due {
                hand_off(&mut watchers, &stats, &mut chunk);
                tokio::time::sleep_until(due.into()).await;
            }
        }
        let record = ProducerRecord {
            topic: topic_name.clone(),
            value: Some(payloads[(i % pool as u64) as usize].clone()),
            ..ProducerRecord::default()
        };
        let sent = Instant::now();
        if !chunk.is_empty() && sent.duration_since(chunk_started) >= CHUNK_AGE {
            hand_off(&mut watchers, &stats, &mut chunk);
        }
        // Without waiting when the buffer has room; when it has none, hand the chunk over first
        // so records acknowledged while this one waits are timed when they resolve.
        let delivery = match producer.try_send(record.clone()) {
            Ok(d) => Ok(d),
            Err(_) => {
                hand_off(&mut watchers, &stats, &mut chunk);
                producer.send(record).await
            }
        };
        attempted += 1;
        match delivery {
            Ok(d) => {
                if chunk.is_empty() {
                    chunk_started = sent;
                }
                chunk.push((sent, d));
                if chunk.len() >= CHUNK {
                    hand_off(&mut watchers, &stats, &mut chunk);
                }
            }
            Err(e) => {
                stats.failed(e);
                stopped = Some(i);
                break;
            }
        }
    }
    hand_off(&mut watchers, &stats, &mut chunk);
    while let Some(r) = watchers.join_next().await {
        if let Err(e) = r {
            reporter.abort();
            return Err(Error::Config(format!("a delivery watcher failed: {e}")));
        }
    }
    let elapsed = started.elapsed();
    reporter.abort();
    let closed = producer.close(Duration::from_secs(30)).await;
    if let Some(p) = printer {
        p.finish();
    }

    let acked = stats.acked.load(Ordering::Relaxed);
    let failed = stats.failed.load(Ordering::Relaxed);
    let mut lat = std::mem::take(
        &mut *stats
            .latencies
            .lock()
            .unwrap_or_else(PoisonError::into_inner),
    );
    lat.sort_unstable();
    let secs = elapsed.as_secs_f64().max(1e-9);
    let rate = acked as f64 / secs;
    let avg = if acked == 0 {
        0.0
    } else {
        stats.lat_sum_us.load(Ordering::Relaxed) as f64 / acked as f64 / 1e3
    };
    println!(
        "{acked} records sent, {rate:.1} records/s ({:.2} MB/s), {avg:.2} ms avg latency, {:.2} ms max latency, {:.2} ms 50th, {:.2} ms 99th, {:.2} ms 99.9th.",
        rate * args.record_size as f64 / MB,
        stats.lat_max_us.load(Ordering::Relaxed) as f64 / 1e3,
        percentile_ms(&lat, 0.50),
        percentile_ms(&lat, 0.99),
        percentile_ms(&lat, 0.999),
    );
    let usage = crate::usage::summary(acked, cpu_start);
    if !usage.is_empty() {
        println!("{usage} (the whole process: sends, sender, connection)");
    }
    if args.partitions_hint {
        let counts: Vec<String> = stats
            .per_partition
            .iter()
            .enumerate()
            .map(|(p, c)| format!("{p}: {}", c.load(Ordering::Relaxed)))
            .collect();
        eprintln!(
            "records per partition of {} ({} partitions): {}",
            args.topic,
            topic.partitions.len(),
            counts.join(", ")
        );
    }
    if failed > 0 {
        if let Some(i) = stopped {
            eprintln!(
                "kafkawire perf: stopped sending after {i} of {} records.",
                args.records
            );
        }
        eprintln!("kafkawire perf: {failed} of {attempted} records failed; the first error:");
        let first = stats
            .first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        return Err(first.unwrap_or_else(|| Error::Config(format!("{failed} records failed"))));
    }
    closed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_are_fixed_letters_of_the_asked_size() {
        let a = payloads(100, 3);
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|p| p.len() == 100));
        assert!(a.iter().flat_map(|p| p.iter()).all(u8::is_ascii_uppercase));
        assert_ne!(a[0], a[1]);
        assert_eq!(a, payloads(100, 3));
        assert!(payloads(0, 1)[0].is_empty());
    }

    #[test]
    fn throughput_is_a_positive_rate_or_no_limit() {
        assert_eq!(throughput_limit(-1.0, 10).unwrap(), None);
        assert_eq!(throughput_limit(-0.5, 10).unwrap(), None);
        assert_eq!(throughput_limit(f64::INFINITY, 10).unwrap(), None);
        assert_eq!(throughput_limit(1000.0, 1_000_000).unwrap(), Some(1000.0));
        // One record is due at once, whatever the rate.
        assert_eq!(throughput_limit(1e-20, 1).unwrap(), Some(1e-20));
        for bad in [0.0, f64::NAN] {
            let e = throughput_limit(bad, 10).unwrap_err().to_string();
            assert!(e.contains("--throughput must be a positive"), "{e}");
        }
        let e = throughput_limit(1e-20, 10).unwrap_err().to_string();
        assert!(e.contains("--throughput 1e-20 is too low"), "{e}");
        assert!(e.contains("100 years"), "{e}");
        let e = throughput_limit(f64::MIN_POSITIVE, u64::MAX)
            .unwrap_err()
            .to_string();
        assert!(e.contains("too low"), "{e}");
        // The largest schedule accepted fits the clock.
        let rate = throughput_limit(1e-6, 3000).unwrap().unwrap();
        let span = Duration::try_from_secs_f64(2999.0 / rate).unwrap();
        assert!(Instant::now().checked_add(span).is_some());
    }

    #[test]
    fn record_size_is_bounded_by_what_a_request_carries() {
        check_record_size(0, 32 << 20).unwrap();
        check_record_size(100, 32 << 20).unwrap();
        check_record_size(1 << 20, 32 << 20).unwrap();
        let e = check_record_size(usize::MAX, 32 << 20)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("--record-size 18446744073709551615 is larger than a record may be"),
            "{e}"
        );
        assert!(e.contains("max_request_size is 1048576"), "{e}");
        let e = check_record_size(5000, 4096).unwrap_err().to_string();
        assert!(e.contains("--buffer-memory 4096"), "{e}");
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u32> = (1..=1000).map(|i| i * 1000).collect();
        assert_eq!(percentile_ms(&v, 0.5), 500.0);
        assert_eq!(percentile_ms(&v, 0.99), 990.0);
        assert_eq!(percentile_ms(&v, 0.999), 999.0);
        assert_eq!(percentile_ms(&[7000], 0.999), 7.0);
        assert_eq!(percentile_ms(&[], 0.5), 0.0);
    }
}
