//! The idempotent producer under network faults, through [`FaultProxy`]s in front of the mock
//! brokers (which check sequences as Kafka does, KIP-98): connections cut after a seeded number
//! of bytes, blackholed (half-open) connections, latency, refused connects, broker restarts that
//! keep the log, leader moves and retriable error codes.
//!
//! Every run checks, from the brokers' logs and from every batch that reached a leader:
//! - no loss: every record's future succeeds and the record is stored;
//! - no duplicate: every record is stored exactly once;
//! - order: per partition, records are stored in the order they were sent;
//! - every future settles, exactly once;
//! - a batch sent twice with the same (producer id, epoch, base sequence) holds the same records,
//!   and no record is ever sent under two different (producer id, epoch, sequence);
//! - no stall: everything settles within a bound after the last fault ends.
//!
//! A failing schedule prints its seed; `KAFKAWIRE_CHAOS_SEED=N` runs that one alone (printing
//! its schedule), `KAFKAWIRE_CHAOS_SCHEDULES=N` and `KAFKAWIRE_CHAOS_FIRST_SEED=S` run seeds
//! `S..S+N` (the soak, `cargo xtask chaos --minutes M`).

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire_client::{BrokerAddressMap, Client, ClientConfig};
use kafkawire_producer::{Producer, ProducerRecord};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::records::RecordSet;
use kafkawire_testkit::mock::{Action, MockCluster};
use kafkawire_testkit::proxy::{Direction, FaultProxy};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

const TOPIC: &str = "t";
const PARTITIONS: i32 = 3;

/// A mock cluster with a proxy in front of every broker; the client reaches brokers only
/// through the proxies.
struct Rig {
    cluster: MockCluster,
    proxies: Vec<FaultProxy>,
    client: Client,
}

impl Rig {
    async fn start(brokers: usize, seed: u64, request_timeout: Duration) -> Rig {
        let cluster = MockCluster::start(brokers).await;
        cluster.create_topic(TOPIC, PARTITIONS);
        let mut proxies = Vec::new();
        let mut map = BrokerAddressMap::default();
        for id in 0..brokers as i32 {
            let p = FaultProxy::start(cluster.broker_addr(id), seed.wrapping_add(id as u64))
                .await
                .expect("proxy");
            map.insert(&cluster.broker_addr(id), &p.addr().to_string())
                .expect("map");
            proxies.push(p);
        }
        let mut c = ClientConfig::new(&proxies[0].addr().to_string());
        c.address_map = map;
        c.request_timeout = request_timeout;
        c.connection_setup_timeout = request_timeout;
        c.connection_setup_timeout_max = request_timeout * 2;
        c.reconnect_backoff = Duration::from_millis(10);
        c.reconnect_backoff_max = Duration::from_millis(100);
        c.allow_auto_topic_creation = false;
        let client = Client::connect(c).await.expect("connect through the proxy");
        Rig {
            cluster,
            proxies,
            client,
        }
    }

    fn producer(&self, request_timeout: Duration, batch_size: usize) -> Producer {
        Producer::builder(&self.client)
            .linger(Duration::from_millis(2))
            .batch_size(batch_size)
            .retry_backoff(Duration::from_millis(5))
            .retry_backoff_max(Duration::from_millis(50))
            .request_timeout(request_timeout)
            .delivery_timeout(Duration::from_secs(60))
            .build()
            .expect("valid config")
    }
}

/// Record `i`'s value: its index, padded to 100 bytes.
fn value(i: usize) -> String {
    format!("r{i:07}-{:-<91}", "")
}

fn index_of(v: &[u8]) -> usize {
    std::str::from_utf8(&v[1..8])
        .ok()
        .and_then(|s| s.parse().ok())
        .expect("a value this test wrote")
}

/// Checks the stored logs and the sent batches; returns the number of records stored.
fn check_invariants(cluster: &MockCluster, sent: usize, seed: u64) -> usize {
    // Stored: each index once, increasing per partition.
    let mut seen = vec![false; sent];
    let mut stored = 0;
    for p in 0..PARTITIONS {
        let records = cluster.records(TOPIC, p).expect("the log decodes");
        let mut last = None;
        for r in records {
            let i = index_of(r.value.as_deref().expect("value"));
            assert!(i < sent, "seed {seed}: unknown record {i}");
            if seen[i] {
                dump(cluster, p);
            }
            assert!(
                !seen[i],
                "seed {seed}: record {i} stored twice (partition {p})"
            );
            seen[i] = true;
            assert!(
                last.is_none_or(|l| l < i),
                "seed {seed}: partition {p} out of order: {last:?} then {i}"
            );
            last = Some(i);
            stored += 1;
        }
    }
    let lost: Vec<usize> = (0..sent).filter(|i| !seen[*i]).take(10).collect();
    assert!(
        lost.is_empty(),
        "seed {seed}: records never stored: {lost:?}..."
    );
    // Sent: one content per (partition, producer id, epoch, base sequence); one sequence per
    // record.
    let mut by_seq: HashMap<(i32, i64, i16, i32), Bytes> = HashMap::new();
    let mut record_seq: HashMap<usize, (i32, i64, i16, i32)> = HashMap::new();
    for (_, p, bytes) in cluster.produced_batches() {
        for batch in RecordSet::new(bytes.clone()) {
            let batch = batch.expect("a sent batch decodes");
            let b = batch.as_v2().expect("magic 2");
            let key = (p, b.producer_id(), b.producer_epoch(), b.base_sequence());
            // From the CRC on, a batch is what the producer made (the broker rewrites only
            // the base offset and leader epoch before it).
            let content = bytes.slice(17..);
            if let Some(old) = by_seq.insert(key, content.clone()) {
                assert_eq!(
                    old, content,
                    "seed {seed}: two different batches sent as {key:?}"
                );
            }
            for (n, r) in b.records().enumerate() {
                let r = r.expect("record");
                let i = index_of(r.value().expect("value"));
                let at = (p, key.1, key.2, key.3.wrapping_add(n as i32));
                if let Some(other) = record_seq.insert(i, at) {
                    if other != at {
                        dump(cluster, p);
                    }
                    assert_eq!(
                        other, at,
                        "seed {seed}: record {i} sent under two sequences"
                    );
                }
            }
        }
    }
    stored
}

/// Prints what reached partition `p`'s leader, in order, and what it stored (in one write, so
/// that schedules failing side by side do not interleave).
fn dump(cluster: &MockCluster, p: i32) {
    use std::fmt::Write;
    let mut out = String::new();
    for (_, q, bytes) in cluster.produced_batches() {
        if q != p {
            continue;
        }
        for b in RecordSet::new(bytes) {
            let b = b.expect("batch");
            let b = b.as_v2().expect("v2");
            let _ = writeln!(
                out,
                "sent p{p} pid {} epoch {} seq {} count {}",
                b.producer_id(),
                b.producer_epoch(),
                b.base_sequence(),
                b.record_count()
            );
        }
    }
    for stored in cluster.log(TOPIC, p) {
        for b in RecordSet::new(stored) {
            let b = b.expect("batch");
            let b = b.as_v2().expect("v2");
            let _ = writeln!(
                out,
                "stored p{p} epoch {} seq {} count {}",
                b.producer_epoch(),
                b.base_sequence(),
                b.record_count()
            );
        }
    }
    eprint!("{out}");
}

/// Sends `n` keyed records, `pace` between every 50, and returns their futures.
async fn send_keyed(
    producer: &Producer,
    n: usize,
    pace: Duration,
) -> Vec<kafkawire_producer::DeliveryFuture> {
    let mut futures = Vec::with_capacity(n);
    for i in 0..n {
        let r = ProducerRecord::new(TOPIC, value(i)).key(format!("key-{}", i % 97));
        futures.push(producer.send(r).await.expect("accepted"));
        if i % 50 == 49 && !pace.is_zero() {
            tokio::time::sleep(pace).await;
        }
    }
    futures
}

/// Waits for every future; each must succeed (the delivery timeout is far away).
async fn settle_all(futures: Vec<kafkawire_producer::DeliveryFuture>, seed: u64) {
    for (i, f) in futures.into_iter().enumerate() {
        if let Err(e) = f.await {
            panic!("seed {seed}: record {i} failed: {e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_keyed_records_through_fifty_cuts_are_stored_exactly_once() {
    let seed = 8;
    let timeout = Duration::from_secs(2);
    let rig = Rig::start(1, seed, timeout).await;
    // Cuts land anywhere, inside frames too, in either direction.
    rig.proxies[0].cut_after(Direction::Either, Some(20_000..400_000));
    let producer = rig.producer(timeout, 16 * 1024);
    const N: usize = 100_000;
    let started = Instant::now();
    let futures = send_keyed(&producer, N, Duration::ZERO).await;
    tokio::time::timeout(Duration::from_secs(120), settle_all(futures, seed))
        .await
        .expect("settled within 120 s");
    let cuts = rig.proxies[0].stats().cuts;
    assert!(cuts >= 50, "only {cuts} cuts");
    assert_eq!(check_invariants(&rig.cluster, N, seed), N);
    eprintln!("{N} records through {cuts} cuts in {:?}", started.elapsed());
}

/// One fault of a schedule.
#[derive(Debug, Clone)]
enum Fault {
    /// New connections to broker b are cut after 1-60 KB, either direction; open ones are cut.
    Cuts(usize),
    /// Broker b's connections go silent (kept open), new ones too, for a while.
    Blackhole(usize, Duration),
    Latency(usize, Duration),
    /// The broker restarts: connections dropped, refused for a while, log kept.
    Restart(usize, Duration),
    /// The mock broker process stops and starts again on the same port, log kept.
    BrokerBounce(usize, Duration),
    /// Partition p's leader moves to broker b.
    LeaderMove(i32, usize),
    /// The next Produce requests get this error.
    Code(ErrorCode, usize),
    /// The next Produce is written, then its connection is cut before the answer.
    ProcessThenDrop,
}

fn schedule(rng: &mut StdRng, brokers: usize) -> Vec<(Duration, Fault)> {
    let n = rng.gen_range(2..6);
    let mut at = Duration::ZERO;
    let mut out = Vec::new();
    for _ in 0..n {
        at += Duration::from_millis(rng.gen_range(0..60));
        let b = rng.gen_range(0..brokers);
        let d = Duration::from_millis(rng.gen_range(20..150));
        let f = match rng.gen_range(0..9) {
            0 => Fault::Cuts(b),
            1 => Fault::Blackhole(b, d),
            2 => Fault::Latency(b, Duration::from_millis(rng.gen_range(1..30))),
            3 => Fault::Restart(b, d),
            4 => Fault::BrokerBounce(b, d),
            5 => Fault::LeaderMove(rng.gen_range(0..PARTITIONS), b),
            6 => Fault::Code(ErrorCode::NOT_LEADER_OR_FOLLOWER, rng.gen_range(1..4)),
            7 => Fault::Code(ErrorCode::REQUEST_TIMED_OUT, rng.gen_range(1..4)),
            _ => Fault::ProcessThenDrop,
        };
        out.push((at, f));
    }
    out
}

/// Plays a schedule; returns when every fault has ended.
async fn play(rig: &Rig, faults: Vec<(Duration, Fault)>, rng: &mut StdRng) {
    let start = Instant::now();
    for (at, f) in faults {
        if let Some(wait) = at.checked_sub(start.elapsed()) {
            tokio::time::sleep(wait).await;
        }
        match f {
            Fault::Cuts(b) => {
                let lo = rng.gen_range(1_000..30_000);
                rig.proxies[b].cut_after(Direction::Either, Some(lo..lo * 2));
                rig.proxies[b].cut_all();
            }
            Fault::Blackhole(b, d) => {
                rig.proxies[b].blackhole(true);
                tokio::time::sleep(d).await;
                // Connections blackholed stay silent: the client must give up on them.
                rig.proxies[b].blackhole(false);
            }
            Fault::Latency(b, d) => rig.proxies[b].latency(d),
            Fault::Restart(b, d) => rig.proxies[b].restart(d).await,
            Fault::BrokerBounce(b, d) => {
                let broker = rig.cluster.broker(b as i32);
                broker.stop().await;
                tokio::time::sleep(d).await;
                broker.restart().await.expect("rebind the broker's port");
            }
            Fault::LeaderMove(p, b) => rig.cluster.set_leader(TOPIC, p, b as i32),
            Fault::Code(code, n) => {
                rig.cluster
                    .script_n(ApiKey::Produce, n, || Action::ErrorCode(code));
            }
            Fault::ProcessThenDrop => rig.cluster.script(ApiKey::Produce, Action::ProcessThenDrop),
        }
    }
    // Faults that last end here; scripted codes may still be queued and are used up by retries.
    for p in &rig.proxies {
        p.cut_after(Direction::Either, None);
        p.latency(Duration::ZERO);
    }
}

/// One seeded schedule against a fresh rig. Returns (records, faults, longest settle after the
/// faults ended).
async fn run_schedule(seed: u64) -> (usize, usize, Duration) {
    let mut rng = StdRng::seed_from_u64(seed);
    let brokers = rng.gen_range(1..3);
    let timeout = Duration::from_millis(300);
    let rig = Rig::start(brokers, seed, timeout).await;
    let producer = rig.producer(timeout, rng.gen_range(300..4_000));
    let n = rng.gen_range(200..600);
    let faults = schedule(&mut rng, brokers);
    let plan = format!("seed {seed}: {brokers} brokers, {n} records, faults {faults:?}");
    if std::env::var("KAFKAWIRE_CHAOS_SEED").is_ok() {
        eprintln!("{plan}");
    }
    let count = faults.len();
    let sending = send_keyed(&producer, n, Duration::from_millis(rng.gen_range(0..8)));
    let (futures, ()) = tokio::join!(sending, play(&rig, faults, &mut rng));
    let faults_over = Instant::now();
    // After the faults: one request timeout for a request on a silent connection, a reconnect
    // (setup timeout at worst) and backoffs, with slack for a loaded machine.
    let bound = timeout * 4 + Duration::from_secs(2);
    tokio::time::timeout(bound, settle_all(futures, seed))
        .await
        .unwrap_or_else(|_| panic!("seed {seed}: not settled {bound:?} after the faults ended"));
    let stall = faults_over.elapsed();
    let checked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        check_invariants(&rig.cluster, n, seed)
    }));
    if let Err(e) = checked {
        eprintln!("{plan}");
        std::panic::resume_unwind(e);
    }
    producer
        .close(Duration::from_secs(1))
        .await
        .unwrap_or_else(|e| panic!("seed {seed}: close: {e}"));
    (n, count, stall)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seeded_fault_schedules_lose_nothing_duplicate_nothing_and_keep_order() {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    let seeds: Vec<u64> = match env("KAFKAWIRE_CHAOS_SEED") {
        Some(s) => vec![s],
        None => {
            let first = env("KAFKAWIRE_CHAOS_FIRST_SEED").unwrap_or(0);
            (first..first + env("KAFKAWIRE_CHAOS_SCHEDULES").unwrap_or(500)).collect()
        }
    };
    let started = Instant::now();
    let mut totals = (0usize, 0usize, Duration::ZERO);
    // A few schedules at a time: each spends most of its time waiting on timers.
    for chunk in seeds.chunks(8) {
        let runs: Vec<_> = chunk
            .iter()
            .map(|&seed| {
                tokio::spawn(async move {
                    // Whatever hangs (a send blocked on a full buffer, a close), the schedule
                    // fails with its seed instead of hanging the suite.
                    let run = tokio::time::timeout(Duration::from_secs(60), run_schedule(seed));
                    match run.await {
                        Ok(r) => (seed, r),
                        Err(_) => panic!("seed {seed}: the schedule did not finish within 60 s"),
                    }
                })
            })
            .collect();
        for r in runs {
            let (_, (n, f, stall)) = r
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
            totals.0 += n;
            totals.1 += f;
            totals.2 = totals.2.max(stall);
        }
    }
    let summary: BTreeMap<&str, String> = [
        ("schedules", seeds.len().to_string()),
        ("records", totals.0.to_string()),
        ("faults", totals.1.to_string()),
        ("lost", "0".into()),
        ("duplicates", "0".into()),
        ("longest settle after faults", format!("{:?}", totals.2)),
        ("took", format!("{:?}", started.elapsed())),
    ]
    .into_iter()
    .collect();
    eprintln!("chaos: {summary:?}");
}
