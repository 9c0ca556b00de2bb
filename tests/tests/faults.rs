//! The idempotent producer against a real broker (Tansu) through a [`FaultProxy`] that cuts
//! every connection after a random 20-400 KB (either direction, inside frames too), blackholes
//! connections for a while (half-open: nothing forwarded, sockets kept) and "restarts" the
//! broker (every connection dropped, new ones refused for a while).
//!
//! Tansu 0.6.0 deduplicates a retried batch (it answers DUPLICATE_SEQUENCE_NUMBER, 46, and
//! stores nothing), so the stored log must hold every record exactly once, in send order per
//! partition. Each test starts a Tansu of its own (the proxy needs the broker's address).
mod common;

use std::time::{Duration, Instant};

use kafkawire::{BrokerAddressMap, Client, ClientConfig, PartitionConsumer, Producer};
use kafkawire::{ProducerRecord, StartOffset};
use kafkawire_testkit::proxy::{Direction, FaultProxy};

const PARTITIONS: i32 = 3;

/// Record `i`'s value: its index, padded to 100 bytes.
fn value(i: usize) -> String {
    format!("r{i:07}-{:-<91}", "")
}

/// A client that reaches the broker only through `proxy`.
async fn client_through(proxy: &FaultProxy, broker: &str, timeout: Duration) -> Client {
    let mut map = BrokerAddressMap::default();
    map.insert(broker, &proxy.addr().to_string()).expect("map");
    let mut c = ClientConfig::new(&proxy.addr().to_string());
    c.address_map = map;
    c.request_timeout = timeout;
    Client::connect(c).await.expect("connect through the proxy")
}

/// Reads every partition directly (no proxy) and checks: each of `0..n` exactly once, increasing
/// per partition.
async fn check_stored_exactly_once(bootstrap: &str, topic: &str, n: usize) {
    let client = Client::connect(ClientConfig::new(bootstrap))
        .await
        .expect("connect");
    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    for p in 0..PARTITIONS {
        consumer
            .assign(topic, p, StartOffset::Offset(0))
            .await
            .expect("assign");
    }
    let drained = common::drain(&mut consumer, n).await;
    let mut seen = vec![false; n];
    for p in 0..PARTITIONS {
        let mut last = None;
        for r in drained.of(topic, p) {
            let v = r.value.as_deref().expect("value");
            let i: usize = std::str::from_utf8(&v[1..8])
                .expect("utf-8")
                .parse()
                .expect("index");
            assert!(!seen[i], "record {i} stored twice");
            seen[i] = true;
            assert!(
                last.is_none_or(|l| l < i),
                "partition {p}: {last:?} then {i}"
            );
            last = Some(i);
        }
    }
    assert!(seen.iter().all(|s| *s), "records missing");
    common::assert_no_more(&mut consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyed_records_through_cuts_blackholes_and_restarts_are_stored_exactly_once_in_order() {
    let broker = common::own_tansu();
    let bootstrap = broker.bootstrap();
    let admin = common::connect(&broker).await;
    let topic = broker.topic("faults");
    common::create_topic(&admin, &topic, PARTITIONS).await;
    let proxy = FaultProxy::start(bootstrap.as_str(), 11)
        .await
        .expect("proxy");
    proxy.cut_after(Direction::Either, Some(20_000..400_000));
    let timeout = Duration::from_secs(2);
    let client = client_through(&proxy, &bootstrap, timeout).await;
    let producer = Producer::builder(&client)
        .request_timeout(timeout)
        .build()
        .expect("valid config");

    const N: usize = 100_000;
    let started = Instant::now();
    let mut futures = Vec::with_capacity(N);
    for i in 0..N {
        if i == N / 3 {
            // Half-open for a while: written requests get no answer, connects hang.
            proxy.blackhole(true);
            tokio::time::sleep(Duration::from_millis(300)).await;
            proxy.blackhole(false);
        }
        if i == 2 * N / 3 {
            proxy.restart(Duration::from_millis(300)).await;
        }
        let r = ProducerRecord::new(&topic, value(i)).key(format!("key-{}", i % 101));
        futures.push(producer.send(r).await.expect("accepted"));
    }
    for (i, f) in futures.into_iter().enumerate() {
        if let Err(e) = f.await {
            panic!("record {i}: {e}");
        }
    }
    let took = started.elapsed();
    producer.close(Duration::from_secs(5)).await.expect("close");
    let stats = proxy.stats();
    assert!(stats.cuts >= 50, "only {} cuts", stats.cuts);
    eprintln!(
        "{N} records through {} cuts, a blackhole and a restart in {took:?}",
        stats.cuts
    );
    check_stored_exactly_once(&bootstrap, &topic, N).await;
}
