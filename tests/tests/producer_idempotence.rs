//! The idempotent producer against a real broker: 100,000 records per codec written exactly
//! once, in order, with a producer id and contiguous sequence numbers (KIP-98); many tasks
//! sharing one producer; `flush` and `close`; sticky partitioning of null keys with a linger.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire::producer::partition_for_key;
use kafkawire::{
    Client, Compression, DeliveryFuture, Error, PartitionConsumer, Producer, ProducerRecord,
    RecordMetadata, StartOffset,
};

/// Longest a test waits for its deliveries or its read-back.
const DEADLINE: Duration = Duration::from_secs(45);

/// The header fields of one magic-2 batch, as read back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchInfo {
    base_offset: i64,
    records: i32,
    last_offset_delta: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    compression: Compression,
}

/// What was read back from one partition: its batches (by base offset) and its data records.
#[derive(Debug, Default)]
struct PartitionLog {
    batches: BTreeMap<i64, BatchInfo>,
    records: Vec<common::Owned>,
}

/// Reads partitions `0..ends.len()` of `topic` from offset 0 until partition `p` reaches offset
/// `ends[p]`, keeping every batch header and every data record.
async fn read_log(client: &Client, topic: &str, ends: &[i64]) -> Vec<PartitionLog> {
    let mut consumer = PartitionConsumer::new(client, common::quick_consumer_config());
    for p in 0..ends.len() {
        consumer
            .assign(topic, p as i32, StartOffset::Offset(0))
            .await
            .expect("assign");
    }
    let mut out: Vec<PartitionLog> = ends.iter().map(|_| PartitionLog::default()).collect();
    let start = Instant::now();
    loop {
        let done =
            (0..ends.len()).all(|p| consumer.position(topic, p as i32).unwrap_or(0) >= ends[p]);
        if done {
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "read-back of {topic} incomplete after {DEADLINE:?}: positions {:?}, wanted {ends:?}",
            consumer.assignment()
        );
        let fetched = consumer.poll().await.expect("poll");
        for part in &fetched.partitions {
            assert_eq!(
                part.reset, None,
                "offset reset on {topic}-{}",
                part.partition
            );
            let log = &mut out[part.partition as usize];
            for b in part.batches() {
                let v2 = b.as_v2().expect("a magic-2 batch");
                let h = v2.header();
                log.batches.insert(
                    h.base_offset,
                    BatchInfo {
                        base_offset: h.base_offset,
                        records: h.records_count,
                        last_offset_delta: h.last_offset_delta,
                        producer_id: h.producer_id,
                        producer_epoch: h.producer_epoch,
                        base_sequence: h.base_sequence,
                        transactional: h.is_transactional(),
                        control: h.is_control(),
                        compression: v2.compression(),
                    },
                );
            }
            for r in part.records() {
                let r = r.expect("a well-formed record");
                if log.records.last().is_some_and(|l| l.offset >= r.offset()) {
                    continue; // a batch returned twice
                }
                log.records.push(common::Owned {
                    offset: r.offset(),
                    key: r.key().map(<[u8]>::to_vec),
                    value: r.value().map(<[u8]>::to_vec),
                    headers: r
                        .headers()
                        .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                        .collect(),
                });
            }
        }
    }
    out
}

/// Checks the data batches of one partition and returns the producer (id, epoch) pairs that
/// wrote them, in log order. The batches must cover offsets `0..end` without gaps, be neither
/// transactional nor control batches, and carry a producer id and epoch >= 0; the sequence
/// numbers of each producer's run of batches must start at 0 and be contiguous, and a producer
/// never reappears after another one took over (a new id or epoch starts sequences again at 0,
/// KIP-360). An undisturbed producer gives exactly one pair.
fn producer_runs(what: &str, batches: &BTreeMap<i64, BatchInfo>, end: i64) -> Vec<(i64, i16)> {
    let mut runs: Vec<(i64, i16)> = Vec::new();
    let mut next_offset = 0;
    let mut next_seq = 0;
    for b in batches.values() {
        assert!(!b.control && !b.transactional, "{what}: {b:?}");
        assert!(
            b.producer_id >= 0 && b.producer_epoch >= 0,
            "{what}: no producer id: {b:?}"
        );
        let producer = (b.producer_id, b.producer_epoch);
        if runs.last() != Some(&producer) {
            assert!(
                !runs.contains(&producer),
                "{what}: producer {producer:?} came back after {runs:?}"
            );
            runs.push(producer);
            next_seq = 0;
        }
        assert_eq!(
            b.base_offset, next_offset,
            "{what}: offset gap before {b:?}"
        );
        assert_eq!(b.base_sequence, next_seq, "{what}: sequence gap at {b:?}");
        assert!(b.records > 0, "{what}: {b:?}");
        assert_eq!(b.last_offset_delta, b.records - 1, "{what}: {b:?}");
        next_offset += i64::from(b.records);
        next_seq += b.records;
    }
    assert_eq!(next_offset, end, "{what}: batches end at {next_offset}");
    runs
}

/// Awaits every future (bounded by [`DEADLINE`] in all), each of which must succeed.
async fn settle_all(futures: Vec<DeliveryFuture>) -> Vec<RecordMetadata> {
    tokio::time::timeout(DEADLINE, async {
        let mut out = Vec::with_capacity(futures.len());
        for (i, f) in futures.into_iter().enumerate() {
            out.push(f.await.unwrap_or_else(|e| panic!("record {i} failed: {e}")));
        }
        out
    })
    .await
    .unwrap_or_else(|_| panic!("deliveries not settled within {DEADLINE:?}"))
}

const BIG_RECORDS: usize = 100_000;
const BIG_PARTITIONS: i32 = 4;

/// Record `i` of the big run: two keyed records in three (a thousand distinct keys), the rest
/// null-keyed; values of varied length; two headers, the second null now and then.
fn big_record(topic: &str, codec: &str, i: usize) -> ProducerRecord {
    let value = format!("{codec}-{i:06}-").repeat(1 + i % 5);
    let mut r = ProducerRecord::new(topic, value).header("i", i.to_string());
    if !i.is_multiple_of(3) {
        r = r.key(format!("key-{}", i % 1000));
    }
    if i.is_multiple_of(7) {
        r.headers.push(("nil".to_owned(), None));
    } else {
        r = r.header("codec", codec.to_owned());
    }
    r
}

/// Sends [`BIG_RECORDS`] records with `codec` and checks that each was written exactly once,
/// in send order per partition, at contiguous offsets, by sequenced batches
/// ([`producer_runs`]) of ONE producer id and epoch (nothing failed, so nothing may have
/// caused an epoch bump or a new producer id). Returns the producer runs of each partition.
async fn exactly_once_in_order(codec: Compression) -> Vec<Vec<(i64, i16)>> {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic(&format!("idempotent-{codec}"));
    common::create_topic(&client, &topic, BIG_PARTITIONS).await;
    // Default settings (idempotent, acks=all, 5 ms linger) but the codec.
    let producer = Producer::builder(&client)
        .compression(codec)
        .build()
        .expect("valid config");
    assert!(producer.config().idempotent());

    let records: Vec<ProducerRecord> = (0..BIG_RECORDS)
        .map(|i| big_record(&topic, codec.name(), i))
        .collect();
    let mut futures = Vec::with_capacity(BIG_RECORDS);
    for r in &records {
        futures.push(producer.send(r.clone()).await.expect("accepted"));
    }
    let written = settle_all(futures).await;

    // Per partition, the records in send order got offsets 0, 1, 2, ...; keyed records are on
    // their murmur2 partition.
    let mut sent: Vec<Vec<usize>> = vec![Vec::new(); BIG_PARTITIONS as usize];
    for (i, (r, m)) in records.iter().zip(&written).enumerate() {
        assert_eq!(&*m.topic, topic.as_str());
        if let Some(k) = &r.key {
            assert_eq!(
                m.partition,
                partition_for_key(k, BIG_PARTITIONS),
                "record {i}"
            );
        }
        let on = &mut sent[m.partition as usize];
        assert_eq!(
            m.offset,
            on.len() as i64,
            "record {i} on partition {}: offsets not contiguous in send order",
            m.partition
        );
        on.push(i);
    }
    assert!(
        sent.iter().all(|s| !s.is_empty()),
        "every partition gets keyed records"
    );

    let ends: Vec<i64> = sent.iter().map(|s| s.len() as i64).collect();
    let logs = read_log(&client, &topic, &ends).await;
    let mut runs = Vec::new();
    for (p, log) in logs.iter().enumerate() {
        let what = format!("{topic}-{p}");
        assert_eq!(log.records.len(), sent[p].len(), "{what}: record count");
        for (offset, (got, i)) in log.records.iter().zip(&sent[p]).enumerate() {
            let want = common::Owned::expected(offset as i64, &records[*i]);
            assert_eq!(*got, want, "{what} at {offset} (record {i})");
        }
        runs.push(producer_runs(&what, &log.batches, ends[p]));
        assert!(
            log.batches.values().all(|b| b.compression == codec),
            "{what}: a batch not compressed with {codec}"
        );
    }
    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    let ids: BTreeSet<(i64, i16)> = runs.iter().flatten().copied().collect();
    assert_eq!(
        ids.len(),
        1,
        "the producer id or epoch changed mid-stream: {runs:?}"
    );
    runs
}

/// The strict form of the KIP-98 check: one producer id and epoch for the whole run, and each
/// partition's batch sequences contiguous from 0. Two runs of 100,000 records, as the
/// failure is a race (it showed in about two runs out of three).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_producer_id_and_gapless_sequences_under_load() {
    for _ in 0..2 {
        let runs = exactly_once_in_order(Compression::None).await;
        let all: BTreeSet<(i64, i16)> = runs.iter().flatten().copied().collect();
        assert_eq!(
            all.len(),
            1,
            "the producer id or epoch changed mid-stream: {runs:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_in_order_uncompressed() {
    exactly_once_in_order(Compression::None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_in_order_gzip() {
    exactly_once_in_order(Compression::Gzip).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_in_order_snappy() {
    exactly_once_in_order(Compression::Snappy).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_in_order_lz4() {
    exactly_once_in_order(Compression::Lz4).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exactly_once_in_order_zstd() {
    exactly_once_in_order(Compression::Zstd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_senders_keep_their_own_order() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("idempotent-shared");
    common::create_topic(&client, &topic, 2).await;
    let producer = Producer::builder(&client).build().expect("valid config");

    const TASKS: usize = 8;
    const EACH: usize = 2_000;
    let mut set = tokio::task::JoinSet::new();
    for t in 0..TASKS {
        let producer = producer.clone();
        let topic = topic.clone();
        set.spawn(async move {
            let mut futures = Vec::with_capacity(EACH);
            for i in 0..EACH {
                let r = ProducerRecord::new(&topic, format!("{t}:{i}"))
                    .partition(0)
                    .header("task", t.to_string());
                futures.push(producer.send(r).await.expect("accepted"));
                if i % 100 == 0 {
                    tokio::task::yield_now().await; // interleave with the other tasks
                }
            }
            (t, settle_all(futures).await)
        });
    }
    let mut by_offset: BTreeMap<i64, (usize, usize)> = BTreeMap::new();
    while let Some(done) = set.join_next().await {
        let (t, written) = done.expect("task");
        let offsets: Vec<i64> = written.iter().map(|m| m.offset).collect();
        assert!(
            offsets.windows(2).all(|w| w[0] < w[1]),
            "task {t}: offsets out of send order"
        );
        for (i, m) in written.iter().enumerate() {
            assert_eq!(m.partition, 0);
            assert!(
                by_offset.insert(m.offset, (t, i)).is_none(),
                "offset {} given twice",
                m.offset
            );
        }
    }
    let total = (TASKS * EACH) as i64;
    assert_eq!(
        by_offset.keys().copied().collect::<Vec<_>>(),
        (0..total).collect::<Vec<_>>(),
        "offsets 0..{total}, each once"
    );

    let logs = read_log(&client, &topic, &[total]).await;
    let log = &logs[0];
    producer_runs(&format!("{topic}-0"), &log.batches, total);
    let mut next = [0usize; TASKS];
    for r in &log.records {
        let value = String::from_utf8(r.value.clone().expect("a value")).expect("utf-8");
        let (t, i) = value.split_once(':').expect("task:index");
        let (t, i): (usize, usize) = (t.parse().expect("task"), i.parse().expect("index"));
        assert_eq!(i, next[t], "task {t}: record {i} at offset {}", r.offset);
        assert_eq!(by_offset[&r.offset], (t, i), "offset {}", r.offset);
        next[t] += 1;
    }
    assert_eq!(next, [EACH; TASKS], "every task's records, each once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_settles_everything_and_close_refuses_sends() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("idempotent-flush");
    common::create_topic(&client, &topic, 3).await;
    // A linger far longer than the test: only flush gets these records out.
    let linger = Duration::from_secs(20);
    let producer = Producer::builder(&client)
        .linger(linger)
        .build()
        .expect("valid config");
    // Metadata first, so every send below is accepted at once.
    producer
        .send(ProducerRecord::new(&topic, "warm-up").partition(0))
        .await
        .expect("warm-up");

    const N: usize = 3_000;
    let mut futures = Vec::with_capacity(N);
    for i in 0..N {
        let r = ProducerRecord::new(&topic, format!("flush-{i}")).key(format!("k{i}"));
        futures.push(producer.send(r).await.expect("accepted"));
    }
    assert!(producer.pending() > 0, "records should wait for the linger");
    let started = Instant::now();
    producer
        .flush(Duration::from_secs(15))
        .await
        .expect("flush settles everything within 15 s");
    assert!(
        started.elapsed() < linger,
        "flush waited for the linger ({:?})",
        started.elapsed()
    );
    assert_eq!(producer.pending(), 0, "flush returned with records pending");
    // Every future is already resolved: a zero timeout polls it once.
    for (i, f) in futures.into_iter().enumerate() {
        let m = tokio::time::timeout(Duration::ZERO, f)
            .await
            .unwrap_or_else(|_| panic!("record {i} unsettled after flush"))
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
        assert!(m.offset >= 0, "record {i}: {m:?}");
    }

    producer
        .close(Duration::from_secs(10))
        .await
        .expect("close");
    assert_eq!(producer.pending(), 0);
    let e = producer
        .send(ProducerRecord::new(&topic, "late"))
        .await
        .expect_err("send after close");
    assert!(matches!(e, Error::ProducerClosed { .. }), "{e:?}");
    let e = producer
        .try_send(ProducerRecord::new(&topic, "late"))
        .expect_err("try_send after close");
    assert!(matches!(e, Error::ProducerClosed { .. }), "{e:?}");
    // A clone shares the closed state.
    let e = producer
        .clone()
        .send_and_wait(ProducerRecord::new(&topic, "late"))
        .await
        .expect_err("send_and_wait after close");
    assert!(matches!(e, Error::ProducerClosed { .. }), "{e:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn null_keys_stick_until_about_a_batch_then_switch() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("idempotent-sticky");
    const PARTITIONS: i32 = 4;
    common::create_topic(&client, &topic, PARTITIONS).await;
    // 16 KiB batches, so 4,000 records make about 24 switches (with the 256 KiB default they
    // would make one or two, and a re-pick of the same partition would look like none).
    let producer = Producer::builder(&client)
        .linger(Duration::from_millis(50))
        .batch_size(16 * 1024)
        .build()
        .expect("valid config");
    let batch_size = producer.config().batch_size;

    // Records of one size, about 100 bytes each on the wire: 4,000 of them fill about 24
    // batches, so the partitioner switches about 24 times.
    const N: usize = 4_000;
    let value = Bytes::from(vec![b'x'; 100]);
    // Record size as the wire counts it: length varint (1), attributes (1), timestamp and
    // offset deltas (1-2 each, 2 counted), null key (1), value length varint (1) + 100,
    // header count (1).
    let wire_size = 1 + 1 + 2 + 1 + 1 + 100 + 1;
    let mut futures = Vec::with_capacity(N);
    for _ in 0..N {
        futures.push(
            producer
                .send(ProducerRecord::new(&topic, value.clone()))
                .await
                .expect("accepted"),
        );
    }
    let written = settle_all(futures).await;

    // Runs of consecutive records on one partition.
    let mut runs: Vec<(i32, usize)> = Vec::new();
    for m in &written {
        match runs.last_mut() {
            Some((p, n)) if *p == m.partition => *n += 1,
            _ => runs.push((m.partition, 1)),
        }
    }
    let used: BTreeSet<i32> = runs.iter().map(|(p, _)| *p).collect();
    assert!(used.len() > 1, "never switched: {runs:?}");
    // The partitioner moves on after about `batch_size` bytes, to a partition chosen at random
    // (possibly the same one again): every run but the last is a whole number of "stints" of
    // about batch_size bytes.
    let full: Vec<usize> = runs[..runs.len() - 1].iter().map(|(_, n)| *n).collect();
    let stint = *full.iter().min().expect("at least one switch");
    let stint_bytes = stint * wire_size;
    assert!(
        stint_bytes >= batch_size * 9 / 10 && stint_bytes <= batch_size * 11 / 10,
        "switched after {stint} records (about {stint_bytes} bytes), not about {batch_size}: {runs:?}"
    );
    assert!(
        full.iter().all(|n| n % stint == 0),
        "runs are not whole stints of {stint} records: {runs:?}"
    );

    // Each run went to its partition at contiguous offsets, and the log holds them all.
    let mut next = [0i64; PARTITIONS as usize];
    for m in &written {
        assert_eq!(m.offset, next[m.partition as usize], "{m:?}");
        next[m.partition as usize] += 1;
    }
    let logs = read_log(&client, &topic, &next).await;
    for (p, log) in logs.iter().enumerate() {
        assert_eq!(log.records.len() as i64, next[p], "{topic}-{p}");
        assert!(log.records.iter().all(|r| r.key.is_none()));
        producer_runs(&format!("{topic}-{p}"), &log.batches, next[p]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_is_zero_once_every_future_resolved() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("idempotent-pending");
    common::create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client).build().expect("valid config");
    for i in 0..300 {
        producer
            .send_and_wait(ProducerRecord::new(&topic, format!("p-{i}")))
            .await
            .expect("send");
        assert_eq!(
            producer.pending(),
            0,
            "record {i} acknowledged, yet pending() counts it"
        );
    }
}
