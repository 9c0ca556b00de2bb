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

// The consumer side: a group member (manual commits) reading through the same faults, then a
// successor in the same group that must find nothing left after the committed offsets.

use kafkawire::{Admin, Consumer, OffsetReset};

/// Partition `p`'s records as read: (offset, index of the produced record).
type ReadLog = Vec<Vec<(i64, usize)>>;

/// One poll of `consumer` into `log`; returns how many records it brought.
async fn poll_into(consumer: &mut Consumer, log: &mut ReadLog) -> usize {
    let records = consumer
        .poll(Duration::from_millis(200))
        .await
        .unwrap_or_else(|e| panic!("poll: {e}"));
    assert!(
        records.resets().is_empty(),
        "no offset reset: {:?}",
        records.resets()
    );
    let mut n = 0;
    for r in &records {
        let r = r.unwrap_or_else(|e| panic!("record: {e}"));
        let v = r.value().expect("value");
        let i: usize = std::str::from_utf8(&v[1..8])
            .expect("utf-8")
            .parse()
            .expect("index");
        log[r.partition() as usize].push((r.offset(), i));
        n += 1;
    }
    n
}

/// 20,000 records produced directly to 3 partitions are read by a group member through cuts
/// after 20-200 KB, a 300 ms blackhole and a 300 ms restart, committing after every poll: each
/// record exactly once, in order per partition; the committed offsets end at the high
/// watermarks, and a successor in the group (direct connection) reads nothing more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_member_reads_through_cuts_blackholes_and_restarts_exactly_once_and_commits_it_all()
{
    let broker = common::own_tansu();
    tokio::time::timeout(Duration::from_secs(60), async {
        let bootstrap = broker.bootstrap();
        let admin = common::connect(&broker).await;
        let topic = broker.topic("faults-consume");
        let group = broker.topic("faults-consume-g");
        common::create_topic(&admin, &topic, PARTITIONS).await;

        // Produced directly (no faults), spread evenly over the partitions, in small batches so
        // that fetches can be kept small.
        const N: usize = 20_000;
        let producer = Producer::builder(&admin)
            .batch_size(8 * 1024)
            .build()
            .expect("valid config");
        let records = (0..N)
            .map(|i| ProducerRecord::new(&topic, value(i)).partition(i as i32 % PARTITIONS))
            .collect();
        let sent = producer.send_batch(records).await.expect("produce");
        producer.close(Duration::from_secs(5)).await.expect("close");
        // What each partition holds, by offset: the produced record's index.
        let mut stored: Vec<Vec<usize>> = vec![Vec::new(); PARTITIONS as usize];
        for (i, m) in sent.iter().enumerate() {
            let log = &mut stored[m.partition as usize];
            assert_eq!(m.offset, log.len() as i64, "record {i} stored in order");
            log.push(i);
        }

        // Consumed through a proxy that cuts every connection after 20-200 KB (either way).
        // Fetches are kept to about 24 KB so that most get through a connection.
        let proxy = std::sync::Arc::new(
            FaultProxy::start(bootstrap.as_str(), 13)
                .await
                .expect("proxy"),
        );
        proxy.cut_after(Direction::Either, Some(20_000..200_000));
        let timeout = Duration::from_secs(2);
        let mut map = BrokerAddressMap::default();
        map.insert(&bootstrap, &proxy.addr().to_string())
            .expect("map");
        let mut c = ClientConfig::new(&proxy.addr().to_string());
        c.address_map = map;
        c.request_timeout = timeout;
        // A connection opened during the blackhole never completes its handshake.
        c.connection_setup_timeout = timeout;
        c.connection_setup_timeout_max = timeout * 2;
        let client = Client::connect(c).await.expect("connect through the proxy");
        let builder = |client: &Client| {
            Consumer::builder(client)
                .group_id(&group)
                .subscribe([topic.as_str()])
                .auto_offset_reset(OffsetReset::Earliest)
                .enable_auto_commit(false)
                // Tansu completes a join after about session_timeout / 2.
                .session_timeout(Duration::from_secs(6))
                .heartbeat_interval(Duration::from_millis(500))
                .fetch_max_wait(Duration::from_millis(100))
                .max_partition_fetch_bytes(8 * 1024)
                .fetch_max_bytes(24 * 1024)
        };
        let mut consumer = builder(&client).build().await.expect("build the member");

        let started = Instant::now();
        let mut log: ReadLog = vec![Vec::new(); PARTITIONS as usize];
        let mut total = 0;
        let mut commits = 0;
        let mut faults = Vec::new();
        // The longest time between two polls that brought records, and when the last one was.
        let mut longest_pause = Duration::ZERO;
        let mut last_records: Option<Instant> = None;
        // The generation the member joined before its first records.
        let mut generation = -1;
        while total < N {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "read only {total} of {N} records"
            );
            if faults.is_empty() && total >= N / 3 {
                // Half-open for 300 ms: what is in flight then never gets an answer.
                proxy.blackhole(true);
                let p = proxy.clone();
                faults.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    p.blackhole(false);
                }));
            }
            if faults.len() == 1 && total >= 2 * N / 3 {
                let p = proxy.clone();
                faults.push(tokio::spawn(async move {
                    p.restart(Duration::from_millis(300)).await;
                }));
            }
            let n = poll_into(&mut consumer, &mut log).await;
            total += n;
            if n > 0 {
                let now = Instant::now();
                match last_records {
                    Some(t) => longest_pause = longest_pause.max(now - t),
                    None => {
                        generation = consumer
                            .group_consumer()
                            .expect("a group member")
                            .membership()
                            .generation_id;
                    }
                }
                last_records = Some(now);
                consumer
                    .commit()
                    .await
                    .unwrap_or_else(|e| panic!("commit after {total} records: {e}"));
                commits += 1;
            }
        }
        let took = started.elapsed();
        assert_eq!(faults.len(), 2, "both faults happened");
        for f in faults {
            f.await.expect("fault task");
        }
        let stats = proxy.stats();
        eprintln!(
            "{N} records read through {} cuts, a blackhole and a restart in {took:?} \
             ({commits} commits, {} connections, longest pause {longest_pause:?})",
            stats.cuts, stats.accepted
        );
        assert!(stats.cuts >= 5, "only {} cuts", stats.cuts);
        // Each fault cost at most one request timeout and a reconnect, and none a rejoin.
        assert!(
            longest_pause < timeout + Duration::from_secs(1),
            "records stopped for {longest_pause:?}"
        );
        let m = consumer
            .group_consumer()
            .expect("a group member")
            .membership();
        assert_eq!(
            m.generation_id, generation,
            "the member kept its generation"
        );
        for p in 0..PARTITIONS as usize {
            let offsets: Vec<i64> = log[p].iter().map(|(o, _)| *o).collect();
            assert_eq!(
                offsets,
                (0..stored[p].len() as i64).collect::<Vec<_>>(),
                "partition {p}: every offset exactly once, in order"
            );
            let indices: Vec<usize> = log[p].iter().map(|(_, i)| *i).collect();
            assert_eq!(
                indices, stored[p],
                "partition {p}: the records stored there"
            );
        }
        // Nothing more, late or repeated, once a last fetch has come back.
        let mut extra = vec![Vec::new(); PARTITIONS as usize];
        assert_eq!(poll_into(&mut consumer, &mut extra).await, 0, "{extra:?}");

        // The committed offsets are the high watermarks.
        let partitions: Vec<(String, i32)> = (0..PARTITIONS).map(|p| (topic.clone(), p)).collect();
        let committed = consumer
            .committed(&partitions)
            .await
            .expect("committed offsets");
        for p in 0..PARTITIONS {
            let hw = Admin::new(&admin)
                .high_watermark(&topic, p)
                .await
                .expect("high watermark");
            assert_eq!(hw, stored[p as usize].len() as i64);
            assert_eq!(
                committed.get(&(topic.clone(), p)),
                Some(&hw),
                "partition {p} committed up to its high watermark"
            );
        }
        consumer.close().await.expect("close");

        // A new member of the group, connected directly, finds nothing after them.
        let mut second = builder(&admin).build().await.expect("build the successor");
        let joined = Instant::now();
        let mut extra = vec![Vec::new(); PARTITIONS as usize];
        while second.assignment().len() < PARTITIONS as usize {
            assert!(
                joined.elapsed() < Duration::from_secs(10),
                "the successor was not assigned the partitions"
            );
            poll_into(&mut second, &mut extra).await;
        }
        for _ in 0..3 {
            poll_into(&mut second, &mut extra).await;
        }
        assert!(
            extra.iter().all(Vec::is_empty),
            "the successor read again: {extra:?}"
        );
        for p in 0..PARTITIONS {
            assert_eq!(
                second.position(&topic, p),
                Some(stored[p as usize].len() as i64),
                "the successor starts partition {p} at the committed offset"
            );
        }
        second.close().await.expect("close the successor");
    })
    .await
    .expect("the test did not finish within 60 s");
}
