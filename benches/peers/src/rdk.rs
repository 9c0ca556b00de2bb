//! The librdkafka side, through the `rdkafka` crate, the way its documentation suggests for
//! throughput: no async wrappers, delivery reports counted by a callback.
//!
//! Configuration: `bootstrap.servers`, and for the producer `enable.idempotence=true` and
//! `acks=all` spelled out (kafkawire's defaults; librdkafka's `acks` default is already `all`,
//! its `enable.idempotence` default is `false`). The consumer needs a `group.id` to `assign`
//! partitions at all; it never joins that group (`assign`, not `subscribe`) and commits nothing
//! (`enable.auto.commit=false`), like kafkawire's group-less consumer. Everything else is
//! librdkafka's default (`linger.ms` 5, `batch.size` 1,000,000 bytes,
//! `queue.buffering.max.messages` 100,000, `fetch.max.bytes` 50 MiB, ...).
//!
//! Produce: a `ThreadedProducer`, whose own thread serves librdkafka's events and runs the
//! delivery callback ([`Ctx::delivery`]), which counts reports and wakes the application
//! thread when it waits. After the warm-up record (see [`crate::workload`]), `send` each record
//! (librdkafka copies key and value); when [`MAX_PENDING`] records are unacknowledged, wait
//! for reports. At the end, ask librdkafka to flush and wait for every report.
//!
//! Not a hand-polled `BaseProducer`: in rdkafka 0.39, `BaseProducer::poll(t)` keeps serving
//! events until the whole `t` has passed, and its last millisecond spins (the remaining time
//! is rounded down to 0 ms), so an application waiting in `poll` either burns CPU (short `t`)
//! or oversleeps the last acknowledgement (long `t`). The threaded producer's thread polls in
//! 100 ms slices and runs the callbacks as events arrive.
//!
//! Consume: a `BaseConsumer`, every partition assigned at `Offset::Beginning`, `poll` one
//! message at a time.
//!
//! `PEERS_RDKAFKA_DEBUG=CONTEXTS` (e.g. `eos,msg,broker`) sets librdkafka's `debug` property;
//! librdkafka's warnings and errors (and that debug output) go to stderr.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Offset, TopicPartitionList};

use crate::meter::Meter;
use crate::workload::{Tally, WARMUP_KEY, fill_value, key};
use crate::{MAX_PENDING, Options, Outcome, check_partitions};

/// The longest the application thread sleeps between checks while it waits for delivery
/// reports (the callback wakes it sooner).
const PARK: Duration = Duration::from_millis(100);

/// A client configuration with the bootstrap list and, if `PEERS_RDKAFKA_DEBUG` is set,
/// librdkafka's debug contexts.
fn base_config(o: &Options) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &o.bootstrap);
    if let Ok(contexts) = std::env::var("PEERS_RDKAFKA_DEBUG") {
        config.set("debug", contexts);
    }
    config
}

/// librdkafka's log lines: warnings and errors always, debug output when asked for.
fn log_line(level: RDKafkaLogLevel, facility: &str, message: &str) {
    // Emerg = 0 ... Warning = 4 ... Debug = 7, as syslog levels.
    if level as i32 <= RDKafkaLogLevel::Warning as i32
        || std::env::var_os("PEERS_RDKAFKA_DEBUG").is_some()
    {
        eprintln!("peers: librdkafka {level:?} {facility}: {message}");
    }
}

/// The producer's context: counts delivery reports and wakes the application thread.
struct Ctx {
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// The application thread, woken by reports while `waiting` is set.
    app: Thread,
    waiting: AtomicBool,
}

impl Ctx {
    fn new() -> Ctx {
        Ctx {
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
            app: std::thread::current(),
            waiting: AtomicBool::new(false),
        }
    }

    /// Reports received, successes and failures.
    fn settled(&self) -> u64 {
        self.acked.load(Ordering::SeqCst) + self.failed.load(Ordering::SeqCst)
    }

    /// Blocks the application thread until `done(settled)` holds; fails when no report
    /// arrives for the idle timeout.
    fn wait_until(&self, o: &Options, done: impl Fn(u64) -> bool) -> Result<(), String> {
        let mut last = (self.settled(), Instant::now());
        loop {
            // Set the flag before looking, so a report counted after the look wakes us.
            self.waiting.store(true, Ordering::SeqCst);
            let settled = self.settled();
            if done(settled) {
                self.waiting.store(false, Ordering::SeqCst);
                return Ok(());
            }
            if settled != last.0 {
                last = (settled, Instant::now());
            } else if last.1.elapsed() > o.idle_timeout {
                self.waiting.store(false, Ordering::SeqCst);
                return Err(format!(
                    "no delivery report for {} ms ({settled} settled)",
                    o.idle_timeout.as_millis()
                ));
            }
            std::thread::park_timeout(PARK);
        }
    }

    fn first_error(&self) -> String {
        self.first_error
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .unwrap_or_default()
    }
}

impl ClientContext for Ctx {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_line(level, facility, message);
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::SeqCst);
            }
            Err((e, message)) => {
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                if first.is_none() {
                    *first = Some(format!(
                        "{e} (partition {}, key {:?})",
                        message.partition(),
                        message.key()
                    ));
                }
                drop(first);
                self.failed.fetch_add(1, Ordering::SeqCst);
            }
        }
        if self.waiting.load(Ordering::SeqCst) {
            self.app.unpark();
        }
    }
}

/// The consumer's context: librdkafka's log lines to stderr.
struct ConsumerCtx;

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log_line(level, facility, message);
    }
}

impl ConsumerContext for ConsumerCtx {}

/// The topic's partition count from a metadata request (which also warms the client's cache
/// and connection, before the clock starts).
fn partition_count<C: ClientContext>(
    client: &rdkafka::client::Client<C>,
    o: &Options,
) -> Result<usize, String> {
    let metadata = client
        .fetch_metadata(Some(&o.topic), Duration::from_secs(10))
        .map_err(|e| format!("no metadata for topic {}: {e}", o.topic))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == o.topic)
        .ok_or_else(|| format!("topic {} is not in the metadata", o.topic))?;
    if let Some(e) = topic.error() {
        return Err(format!("topic {}: {}", o.topic, RDKafkaErrorCode::from(e)));
    }
    check_partitions(o, topic.partitions().len())
}

/// The produce phase: N records, every delivery report counted and checked.
pub fn produce(o: &Options) -> Result<Outcome, String> {
    let producer: ThreadedProducer<Ctx> = base_config(o)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create_with_context(Ctx::new())
        .map_err(|e| format!("cannot create the producer: {e}"))?;
    let partitions = partition_count(producer.client(), o)?;
    let ctx = producer.context();

    // The warm-up record (see `workload`), before the clock.
    let warmup = BaseRecord::to(&o.topic)
        .key(WARMUP_KEY)
        .payload(&[][..])
        .partition(0);
    producer
        .send(warmup)
        .map_err(|(e, _)| format!("the warm-up record failed: {e}"))?;
    ctx.wait_until(o, |settled| settled >= 1)?;
    if ctx.failed.load(Ordering::SeqCst) > 0 {
        return Err(format!("the warm-up record failed: {}", ctx.first_error()));
    }

    let mut value = vec![0u8; o.value_size];
    let meter = Meter::start();
    for i in 0..o.records {
        // `i` records were sent so far, and one warm-up record.
        if i + 1 - ctx.settled() >= MAX_PENDING as u64 {
            ctx.wait_until(o, |settled| i + 1 - settled < MAX_PENDING as u64)?;
        }
        fill_value(i, &mut value);
        let k = key(i);
        let mut record = BaseRecord::to(&o.topic).key(&k[..]).payload(&value[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                // librdkafka's own queue is full: wait for a report, then try again.
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    record = r;
                    let now = ctx.settled();
                    ctx.wait_until(o, |settled| settled > now)?;
                }
                Err((e, _)) => return Err(format!("send of record {i} failed: {e}")),
            }
        }
    }
    // Ask librdkafka to send what lingers now (with a zero timeout the call returns at once,
    // with a time-out error while records are outstanding: expected), then wait for every
    // report.
    let _ = producer.flush(Duration::ZERO);
    ctx.wait_until(o, |settled| settled > o.records)?;
    let measurement = meter.finish();

    let failed = ctx.failed.load(Ordering::SeqCst);
    if failed > 0 {
        return Err(format!(
            "{failed} deliveries failed; the first: {}",
            ctx.first_error()
        ));
    }
    let acked = ctx.acked.load(Ordering::SeqCst) - 1;
    if acked != o.records {
        return Err(format!("{acked} of {} records acknowledged", o.records));
    }
    Ok(Outcome {
        partitions,
        measurement,
        tally: None,
    })
}

/// The consume phase: the first N records of the topic, every partition from the beginning.
pub fn consume(o: &Options) -> Result<Outcome, String> {
    let consumer: BaseConsumer<ConsumerCtx> = base_config(o)
        .set("group.id", format!("peers-{}", o.topic))
        .set("enable.auto.commit", "false")
        .create_with_context(ConsumerCtx)
        .map_err(|e| format!("cannot create the consumer: {e}"))?;
    let partitions = partition_count(consumer.client(), o)?;
    let mut assignment = TopicPartitionList::new();
    for p in 0..partitions as i32 {
        assignment
            .add_partition_offset(&o.topic, p, Offset::Beginning)
            .map_err(|e| format!("cannot assign partition {p}: {e}"))?;
    }
    let mut tally = Tally::new(o.value_size);

    let meter = Meter::start();
    consumer
        .assign(&assignment)
        .map_err(|e| format!("cannot assign the partitions: {e}"))?;
    // The idle clock is looked at only when a poll comes back empty, not per message.
    let mut last_progress = (0u64, Instant::now());
    // The records and the warm-up record.
    while tally.seen() < o.records + 1 {
        match consumer.poll(Duration::from_secs(1)) {
            Some(Ok(m)) => {
                tally.add(m.key(), m.payload(), || {
                    format!("{}-{}@{}", m.topic(), m.partition(), m.offset())
                });
                continue;
            }
            // librdkafka retries by itself (reconnects, refetches): report and carry on; the
            // idle timeout catches a consumer that never recovers.
            Some(Err(e)) => eprintln!("peers: rdkafka poll: {e}"),
            None => {}
        }
        if tally.seen() != last_progress.0 {
            last_progress = (tally.seen(), Instant::now());
        } else if last_progress.1.elapsed() > o.idle_timeout {
            return Err(format!(
                "only {} of {} records arrived: none for {} ms",
                tally.count,
                o.records,
                o.idle_timeout.as_millis()
            ));
        }
    }
    let measurement = meter.finish();
    Ok(Outcome {
        partitions,
        measurement,
        tally: Some(tally),
    })
}
