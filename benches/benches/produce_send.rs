//! The producer's in-memory send path: `Producer::send` of a record into its partition's open
//! batch, with metadata cached and buffer room available (no network in the timed part).
//!
//! Records: 8-byte key, 100-byte value (shared `Bytes`, as an application that already holds
//! its data), one shared topic name (`Arc<str>`), one partition or four (by key hash), the
//! producer's defaults (idempotence) but 16 KiB batches (the old default, so figures compare across versions) with a linger of an hour so batches wait.
//! Each measured chunk of up to 20,000 sends runs on a new producer (built outside the timed
//! part, on a current-thread runtime, so the background sender does not run while the sends are
//! timed); the producer is closed after the chunk, outside the timed part.
//!
//! Besides criterion's time per record, prints records/s and heap allocations per record
//! (counted by a global allocator wrapper over the timed sends only).
//!
//! `cargo bench -p kafkawire-benches --bench produce_send`

use std::alloc::System;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use kafkawire_client::{Client, ClientConfig};
use kafkawire_producer::{Producer, ProducerRecord};
use kafkawire_testkit::mock::MockCluster;
use stats_alloc::{INSTRUMENTED_SYSTEM, Region, StatsAlloc};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const CHUNK: u64 = 20_000;

struct Setup {
    rt: tokio::runtime::Runtime,
    _cluster: MockCluster,
    client: Client,
    topic: Arc<str>,
    keys: Vec<Bytes>,
    value: Bytes,
}

fn setup(partitions: i32) -> Setup {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (cluster, client) = rt.block_on(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("bench", partitions);
        let client = Client::connect(ClientConfig::new(&cluster.bootstrap()))
            .await
            .expect("connect to the mock broker");
        client.topic_metadata("bench").await.expect("metadata");
        (cluster, client)
    });
    Setup {
        rt,
        _cluster: cluster,
        client,
        topic: Arc::from("bench"),
        keys: (0..1024u64)
            .map(|i| Bytes::copy_from_slice(&i.to_be_bytes()))
            .collect(),
        value: Bytes::from(vec![b'v'; 100]),
    }
}

/// Sends `n` records on a fresh producer; returns the time the sends took and the
/// allocations they made.
fn chunk(s: &Setup, n: u64) -> (Duration, usize) {
    s.rt.block_on(async {
        let producer = Producer::builder(&s.client)
            .linger(Duration::from_secs(3600))
            .delivery_timeout(Duration::from_secs(7200))
            .batch_size(16 * 1024)
            .build()
            .expect("producer");
        let mut futures = Vec::with_capacity(n as usize);
        let records: Vec<ProducerRecord> = (0..n)
            .map(|i| ProducerRecord {
                topic: s.topic.clone(),
                key: Some(s.keys[(i % 1024) as usize].clone()),
                value: Some(s.value.clone()),
                ..ProducerRecord::default()
            })
            .collect();
        let region = Region::new(GLOBAL);
        let started = Instant::now();
        for r in records {
            futures.push(producer.send(r).await.expect("buffered"));
        }
        let took = started.elapsed();
        let change = region.change();
        let allocs = change.allocations + change.reallocations;
        // `futures` was allocated for `n` before: it does not grow while timed.
        let _ = producer.close(Duration::ZERO).await;
        drop(futures);
        (took, allocs)
    })
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("produce_send");
    group.throughput(Throughput::Elements(1));
    for partitions in [1, 4] {
        let s = setup(partitions);
        // One chunk outside criterion for the printed figures.
        let _ = chunk(&s, CHUNK);
        let (mut time, mut allocs, mut records) = (Duration::ZERO, 0usize, 0u64);
        for _ in 0..5 {
            let (t, a) = chunk(&s, CHUNK);
            time += t;
            allocs += a;
            records += CHUNK;
        }
        group.bench_function(format!("{partitions}_partition"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                let mut left = iters;
                while left > 0 {
                    let n = left.min(CHUNK);
                    total += chunk(&s, n).0;
                    left -= n;
                }
                total
            })
        });
        println!(
            "produce_send {partitions} partition(s): {:.0} records/s, {:.1} ns/record, {:.3} allocations/record ({records} records, 8 B keys, 100 B values)",
            records as f64 / time.as_secs_f64(),
            time.as_nanos() as f64 / records as f64,
            allocs as f64 / records as f64,
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
