//! The consumer against the in-process mock broker: offset-out-of-range resets, leader moves,
//! partitions on several leaders and corrupt batches.

use std::time::Duration;

use bytes::Bytes;
use kafkawire_client::Error;
use kafkawire_consumer::{ConsumerConfig, Fetched, OffsetReset, PartitionConsumer, StartOffset};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::records::RecordBatchBuilder;
use kafkawire_protocol::{DecodeErrorKind, ErrorCode};
use kafkawire_testkit::mock::{Action, MockCluster};

mod common;
use common::{client, within};

fn config() -> ConsumerConfig {
    ConsumerConfig {
        fetch_max_wait: Duration::from_millis(50),
        ..ConsumerConfig::default()
    }
}

/// One batch with records `v{i}` for `i` in `values`.
fn batch(values: std::ops::Range<i64>) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    for i in values {
        b.push(
            1_700_000_000_000 + i,
            None,
            Some(format!("v{i}").as_bytes()),
            &[],
        )
        .expect("push");
    }
    b.build().expect("build")
}

/// Appends records `v{from}..v{to}` to a partition, `per_batch` records per batch.
fn seed(cluster: &MockCluster, topic: &str, partition: i32, from: i64, to: i64, per_batch: i64) {
    let mut i = from;
    while i < to {
        let end = (i + per_batch).min(to);
        let base = cluster
            .append(topic, partition, &batch(i..end))
            .expect("append");
        assert_eq!(base, i, "seed offsets line up with values");
        i = end;
    }
}

/// (partition, offset, value) of every record of a poll, in order.
fn records(fetched: &Fetched) -> Vec<(i32, i64, String)> {
    let mut out = Vec::new();
    for p in &fetched.partitions {
        for r in p.records() {
            let r = r.expect("record decodes");
            let value = String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned();
            out.push((p.partition, r.offset(), value));
        }
    }
    out
}

fn fetch_brokers(cluster: &MockCluster) -> Vec<i32> {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api() == Some(ApiKey::Fetch))
        .map(|r| r.broker_id)
        .collect()
}

/// Polls until `want` records arrived (or `max_polls` polls); returns them.
async fn poll_records(
    consumer: &mut PartitionConsumer,
    want: usize,
    max_polls: usize,
) -> Vec<(i32, i64, String)> {
    let mut got = Vec::new();
    for _ in 0..max_polls {
        if got.len() >= want {
            break;
        }
        let fetched = consumer.poll().await.expect("poll");
        got.extend(records(&fetched));
    }
    got
}

#[tokio::test]
async fn out_of_range_with_earliest_is_reported_and_continues_from_log_start() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 10, 2);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Offset(2))
            .await
            .unwrap();
        cluster.set_log_start_offset("t", 0, 6);

        let fetched = consumer.poll().await.expect("poll resets");
        assert_eq!(fetched.partitions.len(), 1);
        let p = &fetched.partitions[0];
        assert_eq!((p.topic.as_str(), p.partition), ("t", 0));
        assert_eq!(p.reset, Some((2, 6)));
        assert!(records(&fetched).is_empty());
        assert_eq!(consumer.position("t", 0), Some(6));

        let got = poll_records(&mut consumer, 4, 5).await;
        let values: Vec<&str> = got.iter().map(|(_, _, v)| v.as_str()).collect();
        assert_eq!(values, ["v6", "v7", "v8", "v9"]);
        let offsets: Vec<i64> = got.iter().map(|(_, o, _)| *o).collect();
        assert_eq!(offsets, [6, 7, 8, 9]);
        assert_eq!(consumer.position("t", 0), Some(10));

        // A position past the end is out of range too.
        consumer
            .seek("t", 0, StartOffset::Offset(100))
            .await
            .unwrap();
        let fetched = consumer.poll().await.expect("poll resets");
        assert_eq!(fetched.partitions[0].reset, Some((100, 6)));
    })
    .await;
}

#[tokio::test]
async fn out_of_range_with_reset_none_fails_naming_partition_and_offset() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 2);
        seed(&cluster, "t", 1, 0, 10, 2);
        cluster.set_log_start_offset("t", 1, 6);
        let client = client(&cluster).await;
        let cfg = ConsumerConfig {
            offset_reset: OffsetReset::None,
            ..config()
        };
        let mut consumer = PartitionConsumer::new(&client, cfg);
        consumer
            .assign("t", 1, StartOffset::Offset(2))
            .await
            .unwrap();
        let e = consumer.poll().await.unwrap_err();
        assert!(matches!(e, Error::Broker { .. }), "{e:?}");
        assert_eq!(e.code(), Some(ErrorCode::OFFSET_OUT_OF_RANGE));
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(1)));
        assert!(!e.is_retriable());
        let text = e.to_string();
        assert!(text.contains("t-1") && text.contains("offset 2"), "{text}");
        assert_eq!(consumer.position("t", 1), Some(2), "position untouched");

        // Seeking into range resolves it.
        consumer.seek("t", 1, StartOffset::Earliest).await.unwrap();
        let got = poll_records(&mut consumer, 4, 5).await;
        assert_eq!(got.first().map(|(_, o, _)| *o), Some(6));
    })
    .await;
}

#[tokio::test]
async fn out_of_range_with_latest_jumps_to_the_high_watermark() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 10, 2);
        cluster.set_log_start_offset("t", 0, 6);
        let client = client(&cluster).await;
        let cfg = ConsumerConfig {
            offset_reset: OffsetReset::Latest,
            ..config()
        };
        let mut consumer = PartitionConsumer::new(&client, cfg);
        consumer
            .assign("t", 0, StartOffset::Offset(2))
            .await
            .unwrap();
        let fetched = consumer.poll().await.expect("poll resets");
        assert_eq!(fetched.partitions[0].reset, Some((2, 10)));
        assert!(records(&fetched).is_empty());
        assert_eq!(consumer.position("t", 0), Some(10));

        let fetched = consumer.poll().await.expect("nothing new");
        assert!(records(&fetched).is_empty());
        seed(&cluster, "t", 0, 10, 12, 2);
        let got = poll_records(&mut consumer, 2, 5).await;
        let values: Vec<&str> = got.iter().map(|(_, _, v)| v.as_str()).collect();
        assert_eq!(values, ["v10", "v11"]);
    })
    .await;
}

#[tokio::test]
async fn leader_change_mid_fetch_loses_and_repeats_nothing() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 10, 2);
        let client = client(&cluster).await;
        let cfg = ConsumerConfig {
            // One batch per fetch, so the move happens mid-stream.
            max_partition_fetch_bytes: 1,
            ..config()
        };
        let mut consumer = PartitionConsumer::new(&client, cfg);
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        let mut got = poll_records(&mut consumer, 4, 4).await;
        assert_eq!(got.len(), 4);
        assert_eq!(consumer.position("t", 0), Some(4));
        assert!(fetch_brokers(&cluster).iter().all(|b| *b == 0));

        cluster.set_leader("t", 0, 1);
        seed(&cluster, "t", 0, 10, 16, 3);
        cluster.clear_requests();
        got.extend(poll_records(&mut consumer, 12, 20).await);

        let offsets: Vec<i64> = got.iter().map(|(_, o, _)| *o).collect();
        assert_eq!(
            offsets,
            (0..16).collect::<Vec<i64>>(),
            "no loss, no duplicate"
        );
        let values: Vec<String> = got.iter().map(|(_, _, v)| v.clone()).collect();
        let want: Vec<String> = (0..16).map(|i| format!("v{i}")).collect();
        assert_eq!(values, want);
        // The old leader was asked once and refused; the rest came from the new one.
        let brokers = fetch_brokers(&cluster);
        assert_eq!(brokers.first(), Some(&0), "{brokers:?}");
        assert!(brokers[1..].iter().all(|b| *b == 1), "{brokers:?}");
        assert_eq!(consumer.position("t", 0), Some(16));
    })
    .await;
}

#[tokio::test]
async fn one_poll_reads_partitions_on_different_leaders() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("t", 2);
        assert_eq!(cluster.leader("t", 0).map(|l| l.0), Some(0));
        assert_eq!(cluster.leader("t", 1).map(|l| l.0), Some(1));
        seed(&cluster, "t", 0, 0, 3, 3);
        seed(&cluster, "t", 1, 0, 5, 2);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        let parts = consumer
            .assign_topic("t", StartOffset::Earliest)
            .await
            .unwrap();
        assert_eq!(parts, [0, 1]);
        cluster.clear_requests();

        let fetched = consumer.poll().await.expect("poll");
        let got = records(&fetched);
        let p0: Vec<i64> = got.iter().filter(|r| r.0 == 0).map(|r| r.1).collect();
        let p1: Vec<i64> = got.iter().filter(|r| r.0 == 1).map(|r| r.1).collect();
        assert_eq!(p0, [0, 1, 2]);
        assert_eq!(p1, [0, 1, 2, 3, 4]);
        let mut brokers = fetch_brokers(&cluster);
        brokers.sort_unstable();
        assert_eq!(brokers, [0, 1], "one fetch per leader");
        assert_eq!(consumer.position("t", 0), Some(3));
        assert_eq!(consumer.position("t", 1), Some(5));
        let hw: Vec<i64> = fetched
            .partitions
            .iter()
            .map(|p| p.high_watermark)
            .collect();
        assert!(hw.contains(&3) && hw.contains(&5), "{hw:?}");
    })
    .await;
}

/// A valid batch of `values` with its last byte (inside the CRC-covered records) flipped.
fn corrupt_batch(values: std::ops::Range<i64>) -> Vec<u8> {
    let mut bytes = batch(values).to_vec();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x5a;
    bytes
}

fn assert_crc_error(e: &Error) {
    match e {
        Error::CorruptRecord {
            topic,
            partition,
            source,
        } => {
            assert_eq!((topic.as_str(), *partition), ("t", 0));
            assert!(
                matches!(source.kind, DecodeErrorKind::CrcMismatch { .. }),
                "{source:?}"
            );
        }
        other => panic!("expected a CRC decode error, got {other:?}"),
    }
    assert!(!e.is_retriable());
}

#[tokio::test]
async fn corrupt_batch_is_a_crc_error_not_a_panic_nor_a_skip() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 2, 2);
        assert_eq!(cluster.append("t", 0, &corrupt_batch(2..4)), Ok(2));
        seed(&cluster, "t", 0, 4, 6, 2);
        let client = client(&cluster).await;
        let cfg = ConsumerConfig {
            max_partition_fetch_bytes: 1,
            ..config()
        };
        let mut consumer = PartitionConsumer::new(&client, cfg);
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        let fetched = consumer.poll().await.expect("the good batch");
        let offsets: Vec<i64> = records(&fetched).iter().map(|r| r.1).collect();
        assert_eq!(offsets, [0, 1]);

        for _ in 0..2 {
            let e = consumer.poll().await.unwrap_err();
            assert_crc_error(&e);
            assert_eq!(consumer.position("t", 0), Some(2), "not skipped");
        }
        // The caller decides to skip it.
        consumer.seek("t", 0, StartOffset::Offset(4)).await.unwrap();
        let fetched = consumer.poll().await.expect("after the corrupt batch");
        let offsets: Vec<i64> = records(&fetched).iter().map(|r| r.1).collect();
        assert_eq!(offsets, [4, 5]);
    })
    .await;
}

#[tokio::test]
async fn corrupt_batch_after_good_ones_in_one_response_loses_nothing() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 2, 2);
        assert_eq!(cluster.append("t", 0, &corrupt_batch(2..4)), Ok(2));
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        // Both batches come in one response: either the good records are returned, or the
        // position must not move past them.
        match consumer.poll().await {
            Ok(fetched) => {
                let offsets: Vec<i64> = records(&fetched).iter().map(|r| r.1).collect();
                assert_eq!(offsets, [0, 1]);
                assert_crc_error(&consumer.poll().await.unwrap_err());
            }
            Err(e) => {
                assert_crc_error(&e);
                assert_eq!(
                    consumer.position("t", 0),
                    Some(0),
                    "records 0 and 1 were never returned, yet the position moved past them"
                );
            }
        }
    })
    .await;
}

#[tokio::test]
async fn partition_without_leader_recovers_once_a_leader_is_elected() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 4, 2);
        let client = client(&cluster).await;
        let cfg = ConsumerConfig {
            max_partition_fetch_bytes: 1,
            ..config()
        };
        let mut consumer = PartitionConsumer::new(&client, cfg);
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        assert_eq!(poll_records(&mut consumer, 2, 2).await.len(), 2);

        // Election in progress: no leader. The consumer learns that from its refresh.
        cluster.set_leader("t", 0, -1);
        cluster.set_partition_error("t", 0, ErrorCode::LEADER_NOT_AVAILABLE);
        for _ in 0..2 {
            assert!(records(&consumer.poll().await.expect("poll")).is_empty());
        }
        // Broker 1 is elected.
        cluster.set_partition_error("t", 0, ErrorCode::NONE);
        cluster.set_leader("t", 0, 1);
        let got = poll_records(&mut consumer, 2, 10).await;
        let offsets: Vec<i64> = got.iter().map(|r| r.1).collect();
        assert_eq!(offsets, [2, 3]);
    })
    .await;
}

#[tokio::test]
async fn max_poll_records_hands_out_a_fetch_in_parts_without_loss_or_repeat() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 2);
        seed(&cluster, "t", 0, 0, 10, 4);
        seed(&cluster, "t", 1, 0, 5, 5);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                max_poll_records: 3,
                ..config()
            },
        );
        consumer
            .assign_topic("t", StartOffset::Earliest)
            .await
            .unwrap();
        let mut got = Vec::new();
        for _ in 0..20 {
            let fetched = consumer.poll().await.expect("poll");
            let part = records(&fetched);
            assert!(part.len() <= 3, "a poll returned {} records", part.len());
            // The position of each partition is just past what this poll returned.
            for p in &fetched.partitions {
                assert_eq!(consumer.position("t", p.partition), Some(p.end_offset));
            }
            got.extend(part);
            if got.len() >= 15 {
                break;
            }
        }
        let mut by_partition: Vec<Vec<i64>> = vec![Vec::new(), Vec::new()];
        for (p, o, v) in &got {
            assert_eq!(v, &format!("v{o}"));
            by_partition[*p as usize].push(*o);
        }
        assert_eq!(by_partition[0], (0..10).collect::<Vec<_>>());
        assert_eq!(by_partition[1], (0..5).collect::<Vec<_>>());
        assert_eq!(consumer.position("t", 0), Some(10));
        assert_eq!(consumer.position("t", 1), Some(5));
    })
    .await;
}

#[tokio::test]
async fn the_next_fetch_is_sent_while_the_application_works_and_only_one() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 4, 4);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        let first = consumer.poll().await.expect("poll");
        assert_eq!(records(&first).len(), 4);
        let sent = cluster.request_count(ApiKey::Fetch);
        // The application is slow: new records arrive meanwhile, and the consumer has already
        // asked for them, once, without a poll.
        seed(&cluster, "t", 0, 4, 6, 2);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let prefetches = cluster.request_count(ApiKey::Fetch) - sent;
        assert_eq!(
            prefetches, 1,
            "one fetch ahead while the application is busy (none: no prefetch; more: memory \
             is unbounded)"
        );
        // Whether the prefetch saw the new records or not, the next polls return exactly them.
        let got = poll_records(&mut consumer, 2, 5).await;
        let offsets: Vec<i64> = got.iter().map(|(_, o, _)| *o).collect();
        assert_eq!(offsets, [4, 5]);
    })
    .await;
}

#[tokio::test]
async fn a_seek_or_pause_drops_what_was_fetched_ahead() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 10, 5);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(
            &client,
            ConsumerConfig {
                max_poll_records: 2,
                ..config()
            },
        );
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        let got = records(&consumer.poll().await.expect("poll"));
        assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [0, 1]);
        // Offsets 2..10 are buffered or in flight; a seek back must win over them.
        consumer.seek("t", 0, StartOffset::Offset(1)).await.unwrap();
        let got = records(&consumer.poll().await.expect("poll"));
        assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [1, 2]);
        // Paused: nothing comes back, however many polls; resumed: it continues at 3.
        consumer.pause("t", 0);
        for _ in 0..3 {
            assert!(records(&consumer.poll().await.expect("poll")).is_empty());
        }
        consumer.resume("t", 0);
        let got = poll_records(&mut consumer, 7, 10).await;
        assert_eq!(
            got.iter().map(|r| r.1).collect::<Vec<_>>(),
            (3..10).collect::<Vec<_>>()
        );
    })
    .await;
}

#[tokio::test]
async fn the_consumer_reports_a_reset_with_the_offsets_skipped_then_reads_on() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        seed(&cluster, "t", 0, 0, 10, 5);
        let client = client(&cluster).await;
        let mut consumer = kafkawire_consumer::Consumer::builder(&client)
            .assign([("t", 0)])
            .auto_offset_reset(OffsetReset::Earliest)
            .fetch_max_wait(Duration::from_millis(50))
            .build()
            .await
            .unwrap();
        consumer.seek("t", 0, StartOffset::Offset(2)).await.unwrap();
        cluster.set_log_start_offset("t", 0, 7);
        let records = consumer.poll(Duration::from_secs(5)).await.unwrap();
        let resets = records.resets();
        assert_eq!(resets.len(), 1);
        assert_eq!((resets[0].old_offset, resets[0].new_offset), (2, 7));
        assert_eq!(resets[0].skipped(), 5);
        let mut offsets = Vec::new();
        while offsets.len() < 3 {
            let records = consumer.poll(Duration::from_secs(5)).await.unwrap();
            offsets.extend(records.iter().map(|r| r.unwrap().offset()));
        }
        assert_eq!(offsets, [7, 8, 9]);
        // Nothing new: an empty poll once the timeout has passed, not a hang.
        assert!(
            consumer
                .poll(Duration::from_millis(100))
                .await
                .unwrap()
                .is_empty()
        );
    })
    .await;
}

/// A batch of `n` records `t{pid}-{i}` of producer `pid`, transactional or not.
fn producer_batch(pid: i64, transactional: bool, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.producer(pid, 0, 0).transactional(transactional);
    for i in 0..n {
        b.push(
            1_700_000_000_000,
            None,
            Some(format!("t{pid}-{i}").as_bytes()),
            &[],
        )
        .expect("push");
    }
    b.build().expect("build")
}

#[tokio::test]
async fn read_committed_drops_aborted_transactions_using_the_fetch_response_list() {
    use kafkawire_consumer::IsolationLevel;
    use kafkawire_protocol::messages::fetch_response::{AbortedTransaction, FetchResponse};
    use kafkawire_protocol::records::{EndTxnMarker, control_batch};
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        // Offsets 0-1: producer 1's transaction, aborted at 4; 2-3: producer 2's, committed
        // at 5; 6: a record outside any transaction.
        let marker = |base: i64, pid: i64, commit: bool| {
            control_batch(
                base,
                0,
                pid,
                0,
                0,
                EndTxnMarker {
                    commit,
                    coordinator_epoch: 0,
                },
            )
        };
        for batch in [
            producer_batch(1, true, 2),
            producer_batch(2, true, 2),
            marker(4, 1, false),
            marker(5, 2, true),
            producer_batch(3, false, 1),
        ] {
            cluster.append("t", 0, &batch).expect("append");
        }
        let client = client(&cluster).await;
        let read = |level: IsolationLevel| {
            let client = client.clone();
            let cluster = &cluster;
            async move {
                // The broker's answer lists producer 1's aborted transaction from offset 0.
                cluster.script(
                    ApiKey::Fetch,
                    Action::modify(|r: &mut FetchResponse| {
                        for p in r.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                            p.aborted_transactions = Some(vec![AbortedTransaction {
                                producer_id: 1,
                                first_offset: 0,
                                ..Default::default()
                            }]);
                            p.last_stable_offset = 7;
                        }
                    }),
                );
                let mut consumer = PartitionConsumer::new(
                    &client,
                    ConsumerConfig {
                        isolation_level: level,
                        ..config()
                    },
                );
                consumer
                    .assign("t", 0, StartOffset::Earliest)
                    .await
                    .unwrap();
                let fetched = consumer.poll().await.expect("poll");
                let got: Vec<String> = records(&fetched).into_iter().map(|r| r.2).collect();
                (got, consumer.position("t", 0))
            }
        };
        let (committed, position) = read(IsolationLevel::ReadCommitted).await;
        assert_eq!(committed, ["t2-0", "t2-1", "t3-0"]);
        assert_eq!(
            position,
            Some(7),
            "past the markers and the aborted records"
        );
        let (all, _) = read(IsolationLevel::ReadUncommitted).await;
        assert_eq!(all, ["t1-0", "t1-1", "t2-0", "t2-1", "t3-0"]);
    })
    .await;
}

#[tokio::test]
async fn the_consumer_builder_refuses_what_cannot_work_with_a_clear_error() {
    use kafkawire_consumer::Consumer;
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let err = |r: Result<Consumer, Error>| r.expect_err("refused").to_string();
        let e = err(Consumer::builder(&client).subscribe(["t"]).build().await);
        assert!(e.contains("group id"), "{e}");
        let e = err(Consumer::builder(&client).build().await);
        assert!(
            e.contains("topics to subscribe to or partitions to assign"),
            "{e}"
        );
        let e = err(Consumer::builder(&client)
            .group_id("g")
            .subscribe(["t"])
            .assign([("t", 0)])
            .build()
            .await);
        assert!(e.contains("not both"), "{e}");
        let e = err(Consumer::builder(&client)
            .assign([("t", 0)])
            .max_poll_records(0)
            .build()
            .await);
        assert!(e.contains("max_poll_records"), "{e}");
        let e = err(Consumer::builder(&client)
            .group_id("g")
            .subscribe(["t"])
            .partition_assignment_strategy(["fastest"])
            .build()
            .await);
        assert!(e.contains("unknown assignor"), "{e}");
        // No committed offset and no reset policy: named, not guessed.
        let e = err(Consumer::builder(&client)
            .assign([("t", 0)])
            .auto_offset_reset(OffsetReset::None)
            .build()
            .await);
        assert!(e.contains("t-0 has no committed offset"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn fetches_carry_the_leader_epoch_and_a_newer_epoch_refreshes_metadata() {
    use kafkawire_protocol::messages::fetch_request::FetchRequest;
    use kafkawire_protocol::messages::fetch_response::FetchResponse;
    use std::sync::{Arc, Mutex};
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        cluster.set_leader("t", 0, 0); // epoch 1: not the default, so -1 could not pass
        seed(&cluster, "t", 0, 0, 4, 2);
        let client = client(&cluster).await;
        let mut consumer = PartitionConsumer::new(&client, config());
        consumer
            .assign("t", 0, StartOffset::Earliest)
            .await
            .unwrap();
        assert_eq!(poll_records(&mut consumer, 4, 5).await.len(), 4);

        // What the next fetch says its epoch is (answered with nothing).
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        cluster.script(
            ApiKey::Fetch,
            Action::respond(move |req| {
                let fetch: FetchRequest = req.decode().expect("a fetch request");
                s.lock().unwrap().extend(
                    fetch
                        .topics
                        .iter()
                        .flat_map(|t| t.partitions.iter().map(|p| p.current_leader_epoch)),
                );
                req.reply(&FetchResponse::default())
            }),
        );
        let _ = consumer.poll().await;
        let _ = consumer.poll().await;
        let epoch = cluster.leader("t", 0).unwrap().1;
        assert_eq!(seen.lock().unwrap().first(), Some(&epoch));

        // A new leader epoch on the same broker: the stale epoch is refused
        // (FENCED_LEADER_EPOCH), metadata is refreshed, and reading goes on where it was.
        cluster.set_leader("t", 0, 0);
        seed(&cluster, "t", 0, 4, 8, 2);
        let got = poll_records(&mut consumer, 4, 10).await;
        assert_eq!(got.iter().map(|r| r.1).collect::<Vec<_>>(), [4, 5, 6, 7]);
    })
    .await;
}
