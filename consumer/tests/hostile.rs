//! The consumer against a broker that sends hostile or broken fetch answers (issue "Hostile
//! input", items 2, 4 and 6): compression bombs spread over many small batches, offsets at the
//! edge of i64, batches cut short at the per-partition limit, and `Duration::MAX` arguments.
//! Each case must end in bounded memory and time, with a clear error where the data cannot be
//! read; never a panic (these run in debug, where overflow panics) and never a silent spin.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire_client::Error;
use kafkawire_consumer::{
    Consumer, ConsumerConfig, Fetched, MAX_GROUP_DURATION, OffsetReset, PartitionConsumer,
    StartOffset,
};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::fetch_request::FetchRequest;
use kafkawire_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use kafkawire_protocol::messages::join_group_request::JoinGroupRequest;
use kafkawire_protocol::messages::join_group_response::{
    JoinGroupResponse, JoinGroupResponseMember,
};
use kafkawire_protocol::messages::sync_group_request::SyncGroupRequest;
use kafkawire_protocol::messages::sync_group_response::SyncGroupResponse;
use kafkawire_protocol::records::{BatchHeader, Compression, RecordBatchBuilder};
use kafkawire_testkit::mock::{Action, MockCluster};

mod common;
use common::client;

const MIB: usize = 1 << 20;

/// The tests of this file run one at a time: one of them measures the process's resident
/// memory, which the others would disturb.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Every test runs inside this bound so that a hang (a spinning consumer) fails instead of
/// blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    let _one_at_a_time = SERIAL.lock().await;
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("test did not finish within 60 s")
}

fn config() -> ConsumerConfig {
    ConsumerConfig {
        fetch_max_wait: Duration::from_millis(50),
        ..ConsumerConfig::default()
    }
}

/// One uncompressed batch with records `v{i}` for `i` in `values` (offsets are assigned by the
/// broker on append).
fn batch(values: std::ops::Range<i64>) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    for i in values {
        b.push(0, None, Some(format!("v{i}").as_bytes()), &[])
            .expect("push");
    }
    b.build().expect("build")
}

/// A zstd batch of one record whose value is `size` zero bytes: a few hundred bytes on the wire
/// that inflate to `size`.
fn bomb(size: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.compression(Compression::Zstd);
    b.push(0, None, Some(&vec![0u8; size]), &[]).expect("push");
    b.build().expect("build")
}

/// A batch of `n` records at `base_offset` (for answers the mock would not store).
fn batch_at(base_offset: i64, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.base_offset(base_offset);
    for i in 0..n {
        b.push(0, None, Some(format!("x{i}").as_bytes()), &[])
            .expect("push");
    }
    b.build().expect("build")
}

/// Decompressed bytes held by the batches of a poll (compressed batches only: the records of
/// an uncompressed batch are a view of the response).
fn decompressed(fetched: &Fetched) -> usize {
    fetched
        .partitions
        .iter()
        .flat_map(|p| p.batches.iter())
        .filter(|b| b.compression() != Compression::None)
        .filter_map(|b| b.as_v2())
        .map(|b| b.records_bytes().len())
        .sum()
}

/// (offset, value length) of every record of a poll.
fn offsets_and_sizes(fetched: &Fetched) -> Vec<(i64, usize)> {
    fetched
        .partitions
        .iter()
        .flat_map(|p| p.records())
        .map(|r| {
            let r = r.expect("record decodes");
            (r.offset(), r.value().map_or(0, <[u8]>::len))
        })
        .collect()
}

/// (offset, value) of every record of a poll.
fn values(fetched: &Fetched) -> Vec<(i64, String)> {
    fetched
        .partitions
        .iter()
        .flat_map(|p| p.records())
        .map(|r| {
            let r = r.expect("record decodes");
            let v = String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned();
            (r.offset(), v)
        })
        .collect()
}

/// Resident memory of this process in bytes (Linux); `None` where `/proc` is missing.
fn resident() -> Option<usize> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: usize = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

// ---------------------------------------------------------------------------------------------
// Decompression budget

#[tokio::test]
async fn many_small_zstd_bombs_in_one_answer_are_decoded_within_the_budget() {
    within(async {
        // 24 batches of a few hundred bytes each inflate to 16 MiB: 384 MiB from one answer of
        // a few KiB. With a 32 MiB budget no poll holds more than two of them.
        const BUDGET: usize = 32 * MIB;
        const EACH: usize = 16 * MIB;
        const N: usize = 24;
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let one = bomb(EACH);
        assert!(one.len() < 4096, "a bomb is small on the wire: {}", one.len());
        for i in 0..N {
            assert_eq!(cluster.append("t", 0, &one).expect("append"), i as i64);
        }
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                max_decompressed_bytes: Some(BUDGET),
                ..config()
            },
        );
        assert_eq!(consumer.config().decompression_budget(), BUDGET);
        consumer.assign("t", 0, StartOffset::Earliest).await.unwrap();

        let before = resident();
        let mut grew = 0usize;
        let mut got = Vec::new();
        let mut polls = 0;
        while got.len() < N {
            polls += 1;
            assert!(polls <= 4 * N, "no progress after {polls} polls: {got:?}");
            let fetched = consumer.poll().await.expect("poll");
            let held = decompressed(&fetched);
            assert!(
                held <= BUDGET,
                "poll {polls} holds {held} decompressed bytes, more than the {BUDGET}-byte budget"
            );
            if let (Some(b), Some(now)) = (before, resident()) {
                grew = grew.max(now.saturating_sub(b));
            }
            let part = offsets_and_sizes(&fetched);
            if polls == 1 {
                assert!(
                    !part.is_empty() && part.len() < N,
                    "the first poll stops at the budget, before decompressing everything: {} records",
                    part.len()
                );
            }
            got.extend(part);
        }
        let want: Vec<(i64, usize)> = (0..N as i64).map(|o| (o, EACH)).collect();
        assert_eq!(got, want, "every record once, in order");
        assert_eq!(consumer.position("t", 0), Some(N as i64));
        eprintln!(
            "{N} bombs of {} MiB in {polls} polls; resident memory grew by at most {} MiB",
            EACH / MIB,
            grew / MIB
        );
        // Held at once: at most the budget (plus allocator slack), not the 384 MiB of the
        // whole answer.
        assert!(
            grew < 4 * BUDGET,
            "resident memory grew by {} MiB",
            grew / MIB
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_larger_than_the_whole_budget_is_a_clear_error_and_the_consumer_stays() {
    within(async {
        const BUDGET: usize = 8 * MIB;
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        cluster.append("t", 0, &batch(0..3)).unwrap();
        let big = bomb(2 * BUDGET);
        assert_eq!(cluster.append("t", 0, &big).unwrap(), 3);
        cluster.append("t", 0, &batch(4..5)).unwrap();
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                max_decompressed_bytes: Some(BUDGET),
                ..config()
            },
        );
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();

        // The good records before the bomb come first.
        let fetched = consumer.poll().await.expect("records before the bomb");
        let got: Vec<i64> = values(&fetched).into_iter().map(|(o, _)| o).collect();
        assert_eq!(got, [0, 1, 2]);
        assert_eq!(consumer.position("t", 0), Some(3));

        // Then the error, naming the partition, the batch and the sizes, as many times as the
        // application polls: the consumer does not move past it by itself.
        for _ in 0..3 {
            let started = Instant::now();
            let e = consumer.poll().await.expect_err("the bomb is an error");
            assert!(started.elapsed() < Duration::from_secs(10));
            assert!(!e.is_retriable());
            let text = e.to_string();
            match &e {
                Error::CorruptRecord {
                    topic, partition, ..
                } => assert_eq!((topic.as_str(), *partition), ("t", 0)),
                other => panic!("expected CorruptRecord, got {other:?}"),
            }
            for part in [
                "t-0",
                "the batch at offset 3",
                &format!("{} bytes, zstd", big.len()),
                &format!("decompression budget of {BUDGET} bytes"),
                "max_decompressed_bytes",
                "seek to offset 4",
            ] {
                assert!(text.contains(part), "{part:?} missing from: {text}");
            }
            assert_eq!(consumer.position("t", 0), Some(3));
        }

        // Skipping it as the error says reads on.
        consumer.seek("t", 0, StartOffset::Offset(4)).await.unwrap();
        let fetched = consumer.poll().await.expect("records after the bomb");
        assert_eq!(values(&fetched), [(4, "v4".to_owned())]);
    })
    .await;
}

#[tokio::test]
async fn the_default_budget_follows_fetch_max_bytes() {
    let c = ConsumerConfig::default();
    assert_eq!(c.max_decompressed_bytes, None);
    assert_eq!(
        c.decompression_budget(),
        200 * MIB,
        "4 x the 50 MiB default"
    );
    let small = ConsumerConfig {
        fetch_max_bytes: MIB as i32,
        ..ConsumerConfig::default()
    };
    assert_eq!(small.decompression_budget(), 64 * MIB, "never below 64 MiB");
    let odd = ConsumerConfig {
        fetch_max_bytes: -5,
        ..ConsumerConfig::default()
    };
    assert_eq!(odd.decompression_budget(), 64 * MIB);
    let big = ConsumerConfig {
        fetch_max_bytes: i32::MAX,
        ..ConsumerConfig::default()
    };
    assert_eq!(big.decompression_budget(), 4 * i32::MAX as usize);
    let set = ConsumerConfig {
        max_decompressed_bytes: Some(5),
        ..ConsumerConfig::default()
    };
    assert_eq!(set.decompression_budget(), 5);
}

// ---------------------------------------------------------------------------------------------
// Offsets at the edge of i64

/// Every Fetch answer (up to `n`) carries `records` for every partition, whatever the log
/// holds.
fn answer_with(cluster: &MockCluster, records: Bytes, n: usize) {
    cluster.script_n(ApiKey::Fetch, n, || {
        let records = records.clone();
        Action::modify::<FetchResponse>(move |r| {
            for t in &mut r.responses {
                for p in &mut t.partitions {
                    p.records = Some(records.clone());
                }
            }
        })
    });
}

async fn assert_offset_error(consumer: &mut PartitionConsumer, start: i64, wants: &[&str]) {
    for _ in 0..3 {
        let started = Instant::now();
        let e = consumer
            .poll()
            .await
            .expect_err("an error, not an empty poll");
        assert!(started.elapsed() < Duration::from_secs(10));
        let text = e.to_string();
        assert!(
            matches!(&e, Error::CorruptRecord { topic, partition: 0, .. } if topic == "t"),
            "{e:?}"
        );
        for want in wants {
            assert!(text.contains(want), "{want:?} missing from: {text}");
        }
        assert_eq!(consumer.position("t", 0), Some(start), "the position stays");
    }
}

#[tokio::test]
async fn a_batch_ending_at_i64_max_is_a_clear_error_not_a_spin_or_a_panic() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        answer_with(&cluster, batch_at(i64::MAX, 1), 50);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Offset(0))
            .await
            .unwrap();
        assert_offset_error(
            &mut consumer,
            0,
            // The decoder refuses the batch (and, were it to let it through, the consumer).
            &["t-0", &format!("base offset {}", i64::MAX), "i64::MAX"],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn a_batch_whose_offsets_overflow_i64_is_a_clear_error_not_a_spin_or_a_panic() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        // Base offset i64::MAX - 1 and three records: the last offset is past i64::MAX.
        answer_with(&cluster, batch_at(i64::MAX - 1, 3), 50);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Offset(0))
            .await
            .unwrap();
        assert_offset_error(
            &mut consumer,
            0,
            &["t-0", &format!("base offset {}", i64::MAX - 1), "i64::MAX"],
        )
        .await;
    })
    .await;
}

#[tokio::test]
async fn an_answer_with_only_batches_before_the_position_is_an_error_not_a_spin() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        cluster.append("t", 0, &batch(0..10)).unwrap();
        answer_with(&cluster, batch_at(0, 2), 50);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Offset(5))
            .await
            .unwrap();
        assert_offset_error(
            &mut consumer,
            5,
            &["t-0", "fetch at offset 5", "all end before it", "offset 1"],
        )
        .await;
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Batches cut short at the per-partition limit

/// A broker before KIP-74 (or a proxy): a partition's answer is its log from the fetch offset,
/// cut at the request's `partition_max_bytes` (at most `cap` bytes), even inside the first
/// batch. Records each `partition_max_bytes` asked for in `asked`.
fn cutting_broker(cluster: &MockCluster, cap: usize, asked: Arc<Mutex<Vec<i32>>>) {
    let log = cluster.log("t", 0);
    let high_watermark = cluster.high_watermark("t", 0).unwrap();
    cluster.script_n(ApiKey::Fetch, 200, || {
        let (log, asked) = (log.clone(), asked.clone());
        Action::respond(move |req| {
            let r: FetchRequest = req.decode().expect("Fetch request decodes");
            let mut resp = FetchResponse::default();
            for t in &r.topics {
                let mut tr = FetchableTopicResponse {
                    topic: t.topic.clone(),
                    topic_id: t.topic_id,
                    ..Default::default()
                };
                for p in &t.partitions {
                    asked.lock().unwrap().push(p.partition_max_bytes);
                    let mut bytes = Vec::new();
                    for b in &log {
                        let h = BatchHeader::parse(b).expect("stored batch");
                        if h.last_offset() >= p.fetch_offset {
                            bytes.extend_from_slice(b);
                        }
                    }
                    let limit = usize::try_from(p.partition_max_bytes).unwrap_or(0).min(cap);
                    bytes.truncate(limit);
                    tr.partitions.push(PartitionData {
                        partition_index: p.partition,
                        high_watermark,
                        last_stable_offset: high_watermark,
                        log_start_offset: 0,
                        records: Some(Bytes::from(bytes)),
                        ..Default::default()
                    });
                }
                resp.responses.push(tr);
            }
            req.reply(&resp)
        })
    });
}

/// A 300 KB record at offset 1, between two small ones.
fn seed_big_record(cluster: &MockCluster) -> usize {
    cluster.create_topic("t", 1);
    cluster.append("t", 0, &batch(0..1)).unwrap();
    let mut b = RecordBatchBuilder::new();
    b.push(0, None, Some(&vec![b'x'; 300_000]), &[]).unwrap();
    let big = b.build().unwrap();
    assert_eq!(cluster.append("t", 0, &big).unwrap(), 1);
    cluster.append("t", 0, &batch(2..3)).unwrap();
    big.len()
}

#[tokio::test]
async fn a_batch_cut_short_at_max_partition_fetch_bytes_is_fetched_again_whole() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let big = seed_big_record(&cluster);
        let asked = Arc::new(Mutex::new(Vec::new()));
        cutting_broker(&cluster, usize::MAX, asked.clone());
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                max_partition_fetch_bytes: 64 * 1024,
                fetch_max_bytes: MIB as i32,
                ..config()
            },
        );
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();

        let mut got = Vec::new();
        for _ in 0..10 {
            if got.len() >= 3 {
                break;
            }
            got.extend(offsets_and_sizes(&consumer.poll().await.expect("poll")));
        }
        assert_eq!(got, [(0, 2), (1, 300_000), (2, 2)]);
        let asked = asked.lock().unwrap().clone();
        assert!(
            asked.contains(&(big as i32)),
            "the batch was asked for whole ({big} bytes): {asked:?}"
        );
        assert_eq!(
            asked.last(),
            Some(&(64 * 1024)),
            "back to max_partition_fetch_bytes once past it: {asked:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_batch_larger_than_fetch_max_bytes_cut_short_is_a_clear_error() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let big = seed_big_record(&cluster);
        cutting_broker(&cluster, usize::MAX, Arc::default());
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                max_partition_fetch_bytes: 64 * 1024,
                fetch_max_bytes: 128 * 1024,
                ..config()
            },
        );
        consumer
            .assign("t", 0, StartOffset::Offset(1))
            .await
            .unwrap();
        for _ in 0..3 {
            let e = consumer.poll().await.expect_err("too large");
            assert!(!e.is_retriable());
            assert!(
                matches!(&e, Error::Broker { code, topic: Some(t), partition: Some(0), .. }
                    if *code == ErrorCode::MESSAGE_TOO_LARGE && t == "t"),
                "{e:?}"
            );
            let text = e.to_string();
            for want in [
                "t-0",
                "offset 1",
                &format!("is {big} bytes"),
                "fetch_max_bytes is 131072",
                "max_partition_fetch_bytes 65536",
                &format!("raise fetch_max_bytes to at least {big}"),
            ] {
                assert!(text.contains(want), "{want:?} missing from: {text}");
            }
            assert_eq!(consumer.position("t", 0), Some(1));
        }
    })
    .await;
}

#[tokio::test]
async fn a_broker_that_always_cuts_the_batch_short_is_an_error_not_endless_empty_polls() {
    within(async {
        let cluster = MockCluster::start(1).await;
        seed_big_record(&cluster);
        let asked = Arc::new(Mutex::new(Vec::new()));
        // Never more than 1000 bytes, whatever the consumer asks for.
        cutting_broker(&cluster, 1000, asked.clone());
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Offset(1))
            .await
            .unwrap();
        let mut polls = 0;
        let e = loop {
            polls += 1;
            assert!(polls <= 10, "still no error after {polls} polls");
            match consumer.poll().await {
                Ok(f) => assert!(values(&f).is_empty()),
                Err(e) => break e,
            }
        };
        let text = e.to_string();
        assert!(matches!(&e, Error::CorruptRecord { .. }), "{e:?}");
        for want in ["t-0", "offset 1", "cut short 3 times", "1000 left"] {
            assert!(text.contains(want), "{want:?} missing from: {text}");
        }
        assert!(asked.lock().unwrap().len() <= 10);
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Duration::MAX

#[tokio::test]
async fn poll_with_duration_max_returns_and_every_duration_setting_takes_duration_max() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        cluster.append("t", 0, &batch(0..3)).unwrap();
        let client = client(&cluster).await;
        let mut consumer = Consumer::builder(&client)
            .assign([("t", 0)])
            .auto_offset_reset(OffsetReset::Earliest)
            .auto_commit_interval(Duration::MAX)
            .session_timeout(Duration::MAX)
            .heartbeat_interval(Duration::MAX)
            .max_poll_interval(Duration::MAX)
            .fetch_max_wait(Duration::MAX)
            .build()
            .await
            .expect("build");
        let records = consumer.poll(Duration::MAX).await.expect("poll");
        let got: Vec<i64> = records.iter().map(|r| r.unwrap().offset()).collect();
        assert_eq!(got, [0, 1, 2]);
        drop(consumer);

        // The same through the config of a PartitionConsumer, which the builder does not see.
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                fetch_max_wait: Duration::MAX,
                ..ConsumerConfig::default()
            },
        );
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        let got: Vec<i64> = values(&consumer.poll().await.expect("poll"))
            .into_iter()
            .map(|(o, _)| o)
            .collect();
        assert_eq!(got, [0, 1, 2]);
        drop(consumer);

        // An error ends a poll without deadline too.
        answer_with(&cluster, batch_at(i64::MAX, 1), 50);
        let mut consumer = Consumer::builder(&client)
            .assign([("t", 0)])
            .fetch_max_wait(Duration::from_millis(50))
            .build()
            .await
            .expect("build");
        let e = consumer
            .poll(Duration::MAX)
            .await
            .expect_err("the overflowing batch");
        assert!(matches!(e, Error::CorruptRecord { .. }), "{e:?}");
    })
    .await;
}

#[tokio::test]
async fn a_group_member_with_duration_max_settings_joins_and_polls() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        cluster.append("t", 0, &batch(0..2)).unwrap();
        let joins = Arc::new(Mutex::new(Vec::<JoinGroupRequest>::new()));
        // A coordinator that makes the requester the leader of a new generation, and hands it
        // the assignment it sends.
        cluster.script_n(ApiKey::JoinGroup, 10, || {
            let joins = joins.clone();
            Action::respond(move |req| {
                let r: JoinGroupRequest = req.decode().expect("JoinGroup decodes");
                joins.lock().unwrap().push(r.clone());
                let protocol = r.protocols.first().expect("a protocol").clone();
                req.reply(&JoinGroupResponse {
                    generation_id: 1,
                    protocol_type: Some("consumer".into()),
                    protocol_name: Some(protocol.name.clone()),
                    leader: "m-1".into(),
                    member_id: "m-1".into(),
                    members: vec![JoinGroupResponseMember {
                        member_id: "m-1".into(),
                        metadata: protocol.metadata.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            })
        });
        cluster.script_n(ApiKey::SyncGroup, 10, || {
            Action::respond(|req| {
                let r: SyncGroupRequest = req.decode().expect("SyncGroup decodes");
                let assignment = r
                    .assignments
                    .iter()
                    .find(|a| a.member_id == r.member_id)
                    .map(|a| a.assignment.clone())
                    .unwrap_or_default();
                req.reply(&SyncGroupResponse {
                    protocol_type: r.protocol_type.clone(),
                    protocol_name: r.protocol_name.clone(),
                    assignment,
                    ..Default::default()
                })
            })
        });
        let client = client(&cluster).await;
        let mut consumer = Consumer::builder(&client)
            .group_id("g")
            .subscribe(["t"])
            .partition_assignment_strategy(["range"])
            .auto_offset_reset(OffsetReset::Earliest)
            .enable_auto_commit(false)
            .auto_commit_interval(Duration::MAX)
            .session_timeout(Duration::MAX)
            .heartbeat_interval(Duration::MAX)
            .max_poll_interval(Duration::MAX)
            .fetch_max_wait(Duration::MAX)
            .build()
            .await
            .expect("build");
        let records = consumer.poll(Duration::MAX).await.expect("poll");
        let got: Vec<i64> = records.iter().map(|r| r.unwrap().offset()).collect();
        assert_eq!(got, [0, 1]);
        let joins = joins.lock().unwrap().clone();
        let join = joins.first().expect("a JoinGroup");
        let max_ms = MAX_GROUP_DURATION.as_millis() as i32;
        assert_eq!(max_ms, i32::MAX);
        assert_eq!(join.session_timeout_ms, max_ms);
        assert_eq!(join.rebalance_timeout_ms, max_ms);
    })
    .await;
}
