//! Delivery guarantees of the producer against the in-process mock broker, which checks
//! idempotent producer sequences as Kafka does (KIP-98): leader moves, connections cut before the
//! answer, retriable and fatal codes, splits, epoch bumps (KIP-360), delivery timeouts (KIP-91),
//! buffer limits and ordering with five requests in flight. Every check ends with the broker's
//! log: each record exactly once, in send order per partition.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use kafkawire_client::{Client, ClientConfig, Error};
use kafkawire_producer::{
    Acks, DeliveryFuture, Producer, ProducerBuilder, ProducerRecord, RecordMetadata,
};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::produce_response::ProduceResponse;
use kafkawire_testkit::mock::{Action, MockCluster};

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test did not finish within 20 s")
}

async fn client_with_timeout(cluster: &MockCluster, request_timeout: Duration) -> Client {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = request_timeout;
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    Client::connect(c)
        .await
        .expect("connect to the mock cluster")
}

async fn client(cluster: &MockCluster) -> Client {
    client_with_timeout(cluster, Duration::from_secs(5)).await
}

/// Fast retries, short request timeout.
fn builder(client: &Client) -> ProducerBuilder {
    Producer::builder(client)
        .retry_backoff(Duration::from_millis(5))
        .retry_backoff_max(Duration::from_millis(50))
        .request_timeout(Duration::from_secs(2))
}

/// [`builder`] with requests pipelined: no linger, 100-byte batches (two or three records each).
fn pipelined(client: &Client) -> ProducerBuilder {
    builder(client).linger(Duration::ZERO).batch_size(100)
}

fn value(i: usize) -> String {
    format!("v{i}")
}

fn record(topic: &str, partition: i32, i: usize) -> ProducerRecord {
    ProducerRecord::new(topic, value(i)).partition(partition)
}

/// The values stored in a partition's log, in offset order, checking offsets are dense from 0.
fn log_values(cluster: &MockCluster, topic: &str, partition: i32) -> Vec<String> {
    let records = cluster.records(topic, partition).expect("the log decodes");
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "{topic}-{partition}: dense offsets");
    }
    assert_eq!(records.len(), cluster.record_count(topic, partition));
    records
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap_or_default()).into_owned())
        .collect()
}

fn expected(range: std::ops::Range<usize>) -> Vec<String> {
    range.map(value).collect()
}

/// Sends `range` to one partition without waiting for acknowledgements.
async fn send_all(
    producer: &Producer,
    topic: &str,
    partition: i32,
    range: std::ops::Range<usize>,
) -> Vec<DeliveryFuture> {
    let mut out = Vec::new();
    for i in range {
        out.push(
            producer
                .send(record(topic, partition, i))
                .await
                .expect("accepted"),
        );
    }
    out
}

async fn settle(futures: Vec<DeliveryFuture>) -> Vec<Result<RecordMetadata, Error>> {
    let mut out = Vec::with_capacity(futures.len());
    for f in futures {
        out.push(f.await);
    }
    out
}

/// Every future succeeded, at the offset its record has in the log (`first` is the offset of the
/// first one). A duplicate answered with its original base offset keeps offsets exact.
fn assert_all_ok_at(results: &[Result<RecordMetadata, Error>], first: i64) {
    for (i, r) in results.iter().enumerate() {
        match r {
            Ok(m) => assert_eq!(m.offset, first + i as i64, "record {i}: {m:?}"),
            Err(e) => panic!("record {i} failed: {e:?}"),
        }
    }
}

fn apis(cluster: &MockCluster) -> Vec<ApiKey> {
    cluster.requests().iter().filter_map(|r| r.api()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_moves_mid_stream_keep_every_record_once_and_in_order() {
    within(async {
        let cluster = MockCluster::start(3).await;
        cluster.create_topic("t", 2);
        let client = client(&cluster).await;
        let producer = builder(&client)
            .linger(Duration::ZERO)
            .batch_size(200)
            .build()
            .expect("valid config");
        const N: usize = 300;
        let mut futures = [Vec::new(), Vec::new()];
        for i in 0..N {
            if i == N / 3 {
                cluster.set_leader("t", 0, 1);
                cluster.set_leader("t", 1, 2);
            }
            if i == 2 * N / 3 {
                cluster.set_leader("t", 0, 2);
                cluster.set_leader("t", 1, 0);
            }
            let p = (i % 2) as i32;
            futures[p as usize].push(producer.send(record("t", p, i)).await.expect("accepted"));
            if i % 20 == 0 {
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        for (p, fs) in futures.into_iter().enumerate() {
            let results = settle(fs).await;
            assert_all_ok_at(&results, 0);
            let want: Vec<String> = (0..N).filter(|i| i % 2 == p).map(value).collect();
            assert_eq!(log_values(&cluster, "t", p as i32), want, "partition {p}");
        }
        // The old leaders refused at least once: the moves really happened mid-stream.
        let brokers: std::collections::BTreeSet<i32> = cluster
            .requests()
            .iter()
            .filter(|r| r.api() == Some(ApiKey::Produce))
            .map(|r| r.broker_id)
            .collect();
        assert_eq!(brokers.len(), 3, "every broker led at some point");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cut_before_the_answer_is_retried_and_deduplicated_by_the_broker() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = builder(&client)
            .linger(Duration::from_millis(20))
            .build()
            .expect("valid config");
        // Warm up: producer id and metadata.
        assert_all_ok_at(&settle(send_all(&producer, "t", 0, 0..2).await).await, 0);

        // The broker appends the batch, then the connection dies before the answer.
        let connections = cluster.connections(0);
        cluster.script(ApiKey::Produce, Action::ProcessThenDrop);
        let before = cluster.request_count(ApiKey::Produce);
        let results = settle(send_all(&producer, "t", 0, 2..10).await).await;
        assert_all_ok_at(&results, 2);
        assert_eq!(cluster.pending_scripts(), 0);
        assert!(
            cluster.request_count(ApiKey::Produce) >= before + 2,
            "the batch was sent again"
        );
        assert_eq!(
            cluster.connections(0),
            connections + 1,
            "a new connection for the retry"
        );
        assert_eq!(log_values(&cluster, "t", 0), expected(0..10));
        // Again with several requests in flight behind the cut one.
        let producer2 = pipelined(&client).build().expect("valid config");
        assert_all_ok_at(
            &settle(send_all(&producer2, "t", 0, 10..11).await).await,
            10,
        );
        cluster.script(ApiKey::Produce, Action::ProcessThenDrop);
        let results = settle(send_all(&producer2, "t", 0, 11..60).await).await;
        assert_all_ok_at(&results, 11);
        assert_eq!(log_values(&cluster, "t", 0), expected(0..60));
    })
    .await;
}

#[tokio::test]
async fn not_enough_replicas_and_request_timed_out_once_are_retried() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = builder(&client).build().expect("valid config");
        let mut next = 0;
        for code in [ErrorCode::NOT_ENOUGH_REPLICAS, ErrorCode::REQUEST_TIMED_OUT] {
            cluster.script(ApiKey::Produce, Action::ErrorCode(code));
            let before = cluster.request_count(ApiKey::Produce);
            let results = settle(send_all(&producer, "t", 0, next..next + 3).await).await;
            assert_all_ok_at(&results, next as i64);
            assert_eq!(cluster.pending_scripts(), 0, "{code}");
            assert!(
                cluster.request_count(ApiKey::Produce) > before + 1,
                "{code}"
            );
            next += 3;
        }
        assert_eq!(log_values(&cluster, "t", 0), expected(0..next));
    })
    .await;
}

#[tokio::test]
async fn message_too_large_splits_the_batch_and_every_record_arrives_in_order() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = builder(&client)
            .linger(Duration::from_millis(200))
            .build()
            .expect("valid config");
        // One record first so that the producer id and metadata are known.
        assert_all_ok_at(&settle(send_all(&producer, "t", 0, 0..1).await).await, 0);
        cluster.script(
            ApiKey::Produce,
            Action::ErrorCode(ErrorCode::MESSAGE_TOO_LARGE),
        );
        let before = cluster.request_count(ApiKey::Produce);
        let batches_before = cluster.log("t", 0).len();
        let results = settle(send_all(&producer, "t", 0, 1..9).await).await;
        assert_all_ok_at(&results, 1);
        assert_eq!(cluster.pending_scripts(), 0);
        // One refused request, then the two halves.
        assert_eq!(cluster.request_count(ApiKey::Produce), before + 3);
        assert_eq!(cluster.log("t", 0).len(), batches_before + 2, "two halves");
        assert_eq!(log_values(&cluster, "t", 0), expected(0..9));
    })
    .await;
}

#[tokio::test]
async fn out_of_order_sequence_with_nothing_earlier_pending_bumps_the_epoch() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = builder(&client).build().expect("valid config");
        assert_all_ok_at(&settle(send_all(&producer, "t", 0, 0..3).await).await, 0);
        assert_eq!(cluster.request_count(ApiKey::InitProducerId), 1);
        let (epoch, last_seq) = cluster
            .producer_state("t", 0, 1000)
            .expect("producer 1000 wrote to t-0");
        assert_eq!((epoch, last_seq), (0, 2));

        cluster.script(
            ApiKey::Produce,
            Action::ErrorCode(ErrorCode::OUT_OF_ORDER_SEQUENCE_NUMBER),
        );
        let results = settle(send_all(&producer, "t", 0, 3..6).await).await;
        assert_all_ok_at(&results, 3);
        // KIP-360: InitProducerId with the current id and epoch, then the same id at epoch 1,
        // sequences starting again at 0.
        assert_eq!(cluster.request_count(ApiKey::InitProducerId), 2);
        let apis = apis(&cluster);
        let bump = apis
            .iter()
            .rposition(|a| *a == ApiKey::InitProducerId)
            .expect("an InitProducerId");
        let refused = apis
            .iter()
            .enumerate()
            .filter(|(_, a)| **a == ApiKey::Produce)
            .map(|(i, _)| i)
            .nth(1)
            .expect("the refused produce");
        assert!(bump > refused, "the bump follows the refusal: {apis:?}");
        assert_eq!(cluster.producer_state("t", 0, 1000), Some((1, 2)));
        assert_eq!(log_values(&cluster, "t", 0), expected(0..6));
    })
    .await;
}

/// Partition 0's leader (broker 0) swallows every Produce while partition 1's (broker 1)
/// answers; the producer has request_timeout 1 s, delivery_timeout 1.5 s and linger 0, the
/// client `client_timeout`. Checks that exactly partition 0's records fail, with
/// DeliveryTimeout, and returns how long they took.
async fn expire_one_partition(client_timeout: Duration) -> Duration {
    let cluster = MockCluster::start(2).await;
    cluster.create_topic("t", 2); // partition 0 on broker 0, partition 1 on broker 1
    let client = client_with_timeout(&cluster, client_timeout).await;
    let delivery_timeout = Duration::from_millis(1500);
    let producer = builder(&client)
        .linger(Duration::ZERO)
        .request_timeout(Duration::from_secs(1))
        .delivery_timeout(delivery_timeout)
        .build()
        .expect("valid config");
    for _ in 0..50 {
        cluster
            .broker(0)
            .script(ApiKey::Produce, Action::NoResponse);
    }
    let start = Instant::now();
    let mut lost = Vec::new();
    let mut kept = Vec::new();
    for i in 0..20 {
        let p = (i % 2) as i32;
        let f = producer.send(record("t", p, i)).await.expect("accepted");
        if p == 0 { lost.push(f) } else { kept.push(f) }
    }
    let kept = settle(kept).await;
    assert_all_ok_at(&kept, 0);
    let lost = settle(lost).await;
    let elapsed = start.elapsed();
    for r in &lost {
        match r {
            Err(Error::DeliveryTimeout {
                topic,
                partition,
                timeout_ms,
                ..
            }) => {
                assert_eq!((topic.as_str(), *partition, *timeout_ms), ("t", 0, 1500));
            }
            other => panic!("expected DeliveryTimeout, got {other:?}"),
        }
    }
    assert!(
        elapsed >= delivery_timeout,
        "failed after {elapsed:?}, before the delivery timeout"
    );
    assert!(cluster.log("t", 0).is_empty());
    let want: Vec<String> = (0..20).filter(|i| i % 2 == 1).map(value).collect();
    assert_eq!(log_values(&cluster, "t", 1), want);
    elapsed
}

#[tokio::test]
async fn delivery_timeout_fails_exactly_the_expired_records() {
    within(async {
        // The client gives up on an unanswered request after 1 s, like request_timeout: the
        // second attempt ends past the delivery timeout.
        let elapsed = expire_one_partition(Duration::from_secs(1)).await;
        assert!(elapsed < Duration::from_millis(3500), "took {elapsed:?}");
    })
    .await;
}

#[tokio::test]
async fn delivery_timeout_bounds_a_request_left_unanswered() {
    within(async {
        let elapsed = expire_one_partition(Duration::from_secs(10)).await;
        assert!(elapsed < Duration::from_millis(3500), "took {elapsed:?}");
    })
    .await;
}

#[tokio::test]
async fn a_full_buffer_blocks_send_for_max_block_and_fails_try_send_at_once() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let max_block = Duration::from_millis(300);
        let producer = builder(&client)
            .buffer_memory(4096)
            .max_block(max_block)
            .linger(Duration::ZERO)
            .build()
            .expect("valid config");
        for _ in 0..100 {
            cluster.script(ApiKey::Produce, Action::NoResponse);
        }
        let big = "x".repeat(500);
        let mut accepted = Vec::new();
        let err = loop {
            let start = Instant::now();
            match producer
                .send(ProducerRecord::new("t", big.clone()).partition(0))
                .await
            {
                Ok(f) => {
                    accepted.push(f);
                    assert!(accepted.len() < 9, "4 KiB cannot hold more than 8 records");
                }
                Err(e) => break (e, start.elapsed()),
            }
        };
        let (e, waited) = err;
        assert!(
            matches!(
                e,
                Error::BufferFull {
                    buffer_memory: 4096,
                    waited_ms: Some(300)
                }
            ),
            "{e:?}"
        );
        assert!(waited >= max_block, "gave up after {waited:?}");
        assert!(waited < max_block * 4, "waited {waited:?}");
        assert!(accepted.len() >= 6, "{} accepted", accepted.len());

        let start = Instant::now();
        let e = producer
            .try_send(ProducerRecord::new("t", big.clone()).partition(0))
            .unwrap_err();
        assert!(
            matches!(
                e,
                Error::BufferFull {
                    waited_ms: None,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(start.elapsed() < Duration::from_millis(100));
        assert_eq!(producer.pending(), accepted.len());
    })
    .await;
}

#[tokio::test]
async fn producer_fenced_fails_pending_records_and_every_later_send() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("t", 2);
        let client = client(&cluster).await;
        let producer = builder(&client)
            .linger(Duration::from_millis(30))
            .build()
            .expect("valid config");
        assert_all_ok_at(&settle(send_all(&producer, "t", 0, 0..2).await).await, 0);
        assert_all_ok_at(&settle(send_all(&producer, "t", 1, 0..2).await).await, 0);

        // Another instance took over the producer id.
        assert_eq!(cluster.fence_producer(1000), 1);
        let mut pending = Vec::new();
        for i in 2..12 {
            let p = (i % 2) as i32;
            pending.push(producer.send(record("t", p, i)).await.expect("accepted"));
        }
        for r in settle(pending).await {
            let e = r.expect_err("fenced");
            assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED), "{e:?}");
        }
        let start = Instant::now();
        let e = producer.send(record("t", 0, 99)).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED), "{e:?}");
        let e = producer.try_send(record("t", 1, 99)).unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::PRODUCER_FENCED), "{e:?}");
        assert!(start.elapsed() < Duration::from_millis(100));
        let produced = cluster.request_count(ApiKey::Produce);
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            cluster.request_count(ApiKey::Produce),
            produced,
            "nothing sent"
        );
        assert_eq!(log_values(&cluster, "t", 0), ["v0", "v1"]);
        assert_eq!(log_values(&cluster, "t", 1), ["v0", "v1"]);
    })
    .await;
}

#[tokio::test]
async fn a_record_above_max_request_size_is_refused_at_send() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = builder(&client)
            .max_request_size(1024)
            .build()
            .expect("valid config");
        let e = producer
            .send(ProducerRecord::new("t", "x".repeat(2000)).partition(0))
            .await
            .unwrap_err();
        match &e {
            Error::RecordTooLarge {
                topic,
                limit,
                setting,
                size,
            } => {
                assert_eq!(
                    (topic.as_str(), *limit, *setting),
                    ("t", 1024, "max_request_size")
                );
                assert!(*size > 2000);
            }
            other => panic!("expected RecordTooLarge, got {other:?}"),
        }
        let e = producer
            .try_send(ProducerRecord::new("t", "x".repeat(2000)).partition(0))
            .unwrap_err();
        assert!(matches!(e, Error::RecordTooLarge { .. }), "{e:?}");
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(cluster.request_count(ApiKey::Produce), 0);
        assert_eq!(producer.pending(), 0);
        // A record that fits still goes.
        assert_all_ok_at(&settle(send_all(&producer, "t", 0, 0..1).await).await, 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_in_flight_keep_order_when_the_first_request_is_retried() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = pipelined(&client).build().expect("valid config");
        assert_all_ok_at(&settle(send_all(&producer, "t", 0, 0..1).await).await, 0);
        let mut next = 1;
        for code in [
            ErrorCode::NOT_ENOUGH_REPLICAS,
            ErrorCode::NOT_LEADER_OR_FOLLOWER,
            ErrorCode::REQUEST_TIMED_OUT,
        ] {
            // The first request of the series fails; the ones behind it are then out of
            // sequence for the broker and must be retried after it, not reordered.
            cluster.script(ApiKey::Produce, Action::ErrorCode(code));
            let results = settle(send_all(&producer, "t", 0, next..next + 100).await).await;
            assert_all_ok_at(&results, next as i64);
            assert_eq!(cluster.pending_scripts(), 0);
            next += 100;
        }
        assert_eq!(log_values(&cluster, "t", 0), expected(0..next));
    })
    .await;
}

/// A batch of unknown outcome is in the broker's log from its first write on, whatever its
/// later attempts: the broker recognises a retry as a duplicate only while the batch is among
/// the last five it wrote for the producer (KIP-98). Here the first batch is written and its
/// answer says `REQUEST_TIMED_OUT` (a leader whose replicas did not follow in time has it in its
/// log) on its first three attempts, duplicates included, while records keep coming. If batches
/// sent behind a retry pushed the first write out of the broker's window, the next retry would be
/// refused as out of sequence, taken for never written and sent again under a new epoch: stored
/// twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_unknown_outcome_stays_within_the_brokers_deduplication_window() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = pipelined(&client).build().expect("valid config");
        let lies = Arc::new(AtomicUsize::new(0));
        let lying = lies.clone();
        cluster.script_n(ApiKey::Produce, 2_000, move || {
            let lies = lying.clone();
            Action::modify(move |r: &mut ProduceResponse| {
                for p in r
                    .responses
                    .iter_mut()
                    .flat_map(|t| t.partition_responses.iter_mut())
                {
                    // Offset 0: the first batch, written or answered as a duplicate of it.
                    if p.error_code == 0
                        && p.base_offset == 0
                        && lies.fetch_add(1, Ordering::SeqCst) < 3
                    {
                        p.error_code = ErrorCode::REQUEST_TIMED_OUT.0;
                        p.base_offset = -1;
                    }
                }
            })
        });
        let results = settle(send_all(&producer, "t", 0, 0..300).await).await;
        cluster.clear_scripts();
        // Three answers REQUEST_TIMED_OUT, then the broker's answer to a retry it recognised
        // as a duplicate of its first write.
        let answers = lies.load(Ordering::SeqCst);
        assert!(
            answers >= 4,
            "the first batch was answered at offset 0 {answers} times"
        );
        assert_all_ok_at(&results, 0);
        assert_eq!(log_values(&cluster, "t", 0), expected(0..300));
        assert_eq!(
            cluster.request_count(ApiKey::InitProducerId),
            1,
            "no epoch bump: nothing was refused"
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_requests_reach_the_broker_in_sequence_order() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = pipelined(&client).build().expect("valid config");
        let results = settle(send_all(&producer, "t", 0, 0..600).await).await;
        assert_all_ok_at(&results, 0);
        assert_eq!(log_values(&cluster, "t", 0), expected(0..600));
        // Nothing failed, so nothing needed a retry: one request per stored batch, and no
        // epoch bump. A request that overtook an earlier one would have been refused as out of
        // sequence and sent again.
        assert_eq!(
            cluster.request_count(ApiKey::Produce),
            cluster.log("t", 0).len(),
            "Produce requests beyond the stored batches were refused"
        );
        assert_eq!(cluster.request_count(ApiKey::InitProducerId), 1);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_idempotence_five_in_flight_keep_send_order_when_nothing_fails() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let producer = pipelined(&client)
            .enable_idempotence(false)
            .build()
            .expect("valid config");
        let results = settle(send_all(&producer, "t", 0, 0..600).await).await;
        assert!(results.iter().all(Result::is_ok));
        let log = log_values(&cluster, "t", 0);
        assert_eq!(log.len(), 600);
        let want = expected(0..600);
        if let Some(at) = log.iter().zip(&want).position(|(got, want)| got != want) {
            panic!(
                "out of send order from offset {at}: {:?}",
                &log[at..(at + 6).min(log.len())]
            );
        }
    })
    .await;
}

#[tokio::test]
async fn conflicting_settings_are_refused_by_build() {
    let cluster = MockCluster::start(1).await;
    let client = client(&cluster).await;
    let e = Producer::builder(&client)
        .acks(Acks::Leader)
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("acks=all"), "{e}");
    // Without idempotence acks=1 is fine.
    Producer::builder(&client)
        .acks(Acks::Leader)
        .enable_idempotence(false)
        .build()
        .expect("acks=1 without idempotence");

    let e = Producer::builder(&client)
        .linger(Duration::from_secs(10))
        .request_timeout(Duration::from_secs(1))
        .delivery_timeout(Duration::from_secs(5))
        .build()
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("delivery_timeout"), "{e}");
}
