//! Transactions against a real broker (KIP-98): commit and abort markers in the log,
//! transactional batches, state errors, fencing of a zombie producer, and consumer offsets
//! committed with a transaction.
//!
//! Tansu does not filter aborted records for read_committed consumers (its aborted-transactions
//! list is always empty, see /work/shared/TANSU.md, "Deviations" 6), so these tests read
//! read_uncommitted and assert on the markers and batch attributes themselves.
mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use kafkawire::protocol::ErrorCode;
use kafkawire::protocol::messages::ApiKey;
use kafkawire::protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use kafkawire::protocol::records::ControlRecordType;
use kafkawire::{
    Client, ConsumerGroupMetadata, Error, PartitionConsumer, Producer, ProducerRecord, StartOffset,
    TopicPartitionOffset,
};

/// Longest a test waits for a read-back.
const DEADLINE: Duration = Duration::from_secs(30);

/// One entry of a partition's log as read back: a data record or a transaction marker, with the
/// attributes of the batch that held it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    offset: i64,
    /// `Some` for a control record: what the marker says.
    marker: Option<ControlRecordType>,
    value: Option<Vec<u8>>,
    transactional: bool,
    producer_id: i64,
    producer_epoch: i16,
}

/// Reads `topic`/`partition` read_uncommitted from offset 0 until `count` entries (data and
/// control records alike) arrived.
async fn read_entries(client: &Client, topic: &str, partition: i32, count: usize) -> Vec<Entry> {
    let mut consumer = PartitionConsumer::new(client, common::quick_consumer_config());
    consumer
        .assign(topic, partition, StartOffset::Offset(0))
        .await
        .expect("assign");
    let mut out: Vec<Entry> = Vec::new();
    let start = Instant::now();
    while out.len() < count {
        assert!(
            start.elapsed() < DEADLINE,
            "{topic}-{partition}: {} of {count} entries after {DEADLINE:?}: {out:?}",
            out.len()
        );
        let fetched = consumer.poll().await.expect("poll");
        for part in &fetched.partitions {
            for b in part.batches() {
                for r in b.records() {
                    let r = r.expect("a well-formed record");
                    if r.offset() < part.fetch_offset
                        || out.last().is_some_and(|e| e.offset >= r.offset())
                    {
                        continue;
                    }
                    let marker = if b.is_control() {
                        Some(
                            r.control_record()
                                .unwrap_or_else(|| panic!("a control record key at {}", r.offset()))
                                .kind,
                        )
                    } else {
                        None
                    };
                    out.push(Entry {
                        offset: r.offset(),
                        marker,
                        value: r.value().map(<[u8]>::to_vec),
                        transactional: b.is_transactional(),
                        producer_id: b.producer_id(),
                        producer_epoch: b.producer_epoch(),
                    });
                }
            }
        }
    }
    assert_eq!(
        out.len(),
        count,
        "{topic}-{partition}: more entries than expected: {out:?}"
    );
    out
}

/// Asserts that `entries` are `values` as transactional data records of one producer, followed
/// by one `marker` of the same producer. Returns the producer (id, epoch).
fn assert_transaction(
    what: &str,
    entries: &[Entry],
    values: &[String],
    marker: ControlRecordType,
) -> (i64, i16) {
    assert_eq!(entries.len(), values.len() + 1, "{what}: {entries:?}");
    let producer = (entries[0].producer_id, entries[0].producer_epoch);
    assert!(producer.0 >= 0 && producer.1 >= 0, "{what}: {entries:?}");
    for (e, v) in entries.iter().zip(values) {
        assert_eq!(e.marker, None, "{what}: {e:?}");
        assert_eq!(e.value.as_deref(), Some(v.as_bytes()), "{what}: {e:?}");
        assert!(e.transactional, "{what}: not transactional: {e:?}");
        assert_eq!((e.producer_id, e.producer_epoch), producer, "{what}: {e:?}");
    }
    let last = entries.last().expect("a marker");
    assert_eq!(last.marker, Some(marker), "{what}: {last:?}");
    assert!(
        last.transactional,
        "{what}: marker not transactional: {last:?}"
    );
    assert_eq!(last.producer_id, producer.0, "{what}: {last:?}");
    assert!(
        last.producer_epoch >= producer.1,
        "{what}: marker epoch below the data's: {last:?}"
    );
    producer
}

/// A transactional producer with `id`, initialised.
async fn transactional(client: &Client, id: &str) -> Producer {
    let producer = Producer::builder(client)
        .transactional_id(id)
        .transaction_timeout(Duration::from_secs(20))
        .build()
        .expect("valid config");
    tokio::time::timeout(Duration::from_secs(20), producer.init_transactions())
        .await
        .expect("init_transactions in time")
        .expect("init_transactions");
    producer
}

/// Sends `values` (in order) to `topic`/`partition` and waits for every acknowledgement.
async fn send_all(producer: &Producer, topic: &str, partition: i32, values: &[String]) {
    let mut futures = Vec::new();
    for v in values {
        let r = ProducerRecord::new(topic, v.clone()).partition(partition);
        futures.push(producer.send(r).await.expect("accepted"));
    }
    for f in futures {
        f.await.expect("delivered");
    }
}

fn is_fencing(e: &Error) -> bool {
    matches!(
        e.code(),
        Some(ErrorCode::PRODUCER_FENCED | ErrorCode::INVALID_PRODUCER_EPOCH)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_committed_transaction_ends_with_a_commit_marker() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("txn-commit");
    common::create_topic(&client, &topic, 2).await;
    let producer = transactional(&client, &broker.topic("txn-commit-id")).await;

    producer.begin_transaction().expect("begin");
    let mut futures = Vec::new();
    for i in 0..100 {
        let r = ProducerRecord::new(&topic, format!("c-{i}")).partition(i % 2);
        futures.push(producer.send(r).await.expect("accepted"));
    }
    tokio::time::timeout(Duration::from_secs(20), producer.commit_transaction())
        .await
        .expect("commit in time")
        .expect("commit");
    // Commit flushes first: every record is acknowledged by now.
    for (i, f) in futures.into_iter().enumerate() {
        let m = tokio::time::timeout(Duration::ZERO, f)
            .await
            .unwrap_or_else(|_| panic!("record {i} unsettled after commit"))
            .unwrap_or_else(|e| panic!("record {i}: {e}"));
        assert_eq!(m.partition, (i % 2) as i32);
        assert_eq!(m.offset, (i / 2) as i64, "record {i}");
    }

    let mut producers = Vec::new();
    for p in 0..2 {
        let values: Vec<String> = (0..100)
            .filter(|i| i % 2 == p)
            .map(|i| format!("c-{i}"))
            .collect();
        let entries = read_entries(&client, &topic, p, values.len() + 1).await;
        assert_eq!(entries.last().map(|e| e.offset), Some(50), "{entries:?}");
        producers.push(assert_transaction(
            &format!("{topic}-{p}"),
            &entries,
            &values,
            ControlRecordType::Commit,
        ));
    }
    assert_eq!(
        producers[0], producers[1],
        "one producer for both partitions"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_aborted_transaction_leaves_an_abort_marker_and_the_producer_carries_on() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("txn-abort");
    common::create_topic(&client, &topic, 1).await;
    let producer = transactional(&client, &broker.topic("txn-abort-id")).await;

    let aborted: Vec<String> = (0..50).map(|i| format!("a-{i}")).collect();
    producer.begin_transaction().expect("begin");
    // Wait for the acknowledgements: abort drops what is not sent yet.
    send_all(&producer, &topic, 0, &aborted).await;
    tokio::time::timeout(Duration::from_secs(20), producer.abort_transaction())
        .await
        .expect("abort in time")
        .expect("abort");

    let committed: Vec<String> = (0..10).map(|i| format!("b-{i}")).collect();
    producer.begin_transaction().expect("begin after abort");
    send_all(&producer, &topic, 0, &committed).await;
    tokio::time::timeout(Duration::from_secs(20), producer.commit_transaction())
        .await
        .expect("commit in time")
        .expect("commit after abort");

    // read_uncommitted (and Tansu at any isolation level) shows the aborted records, then the
    // ABORT marker, then the second transaction and its COMMIT marker.
    let entries = read_entries(&client, &topic, 0, 50 + 1 + 10 + 1).await;
    let offsets: Vec<i64> = entries.iter().map(|e| e.offset).collect();
    assert_eq!(offsets, (0..62).collect::<Vec<i64>>());
    let first = assert_transaction(
        &format!("{topic}-0 (aborted)"),
        &entries[..51],
        &aborted,
        ControlRecordType::Abort,
    );
    let second = assert_transaction(
        &format!("{topic}-0 (committed)"),
        &entries[51..],
        &committed,
        ControlRecordType::Commit,
    );
    assert_eq!(first.0, second.0, "the same producer id");
    assert!(second.1 >= first.1, "{first:?} then {second:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_out_of_order_are_transaction_state_errors() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("txn-state");
    common::create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client)
        .transactional_id(broker.topic("txn-state-id"))
        .build()
        .expect("valid config");
    let state = |what: &str, r: Result<(), Error>| match r {
        Err(Error::TransactionState(_)) => {}
        other => panic!("{what}: expected TransactionState, got {other:?}"),
    };
    let record = || ProducerRecord::new(&topic, "v").partition(0);

    // Before init_transactions.
    state("send before init", producer.send(record()).await.map(drop));
    state("begin before init", producer.begin_transaction());

    tokio::time::timeout(Duration::from_secs(20), producer.init_transactions())
        .await
        .expect("init in time")
        .expect("init");
    // Initialised, no transaction open.
    state(
        "send outside a transaction",
        producer.send(record()).await.map(drop),
    );
    state(
        "try_send outside a transaction",
        producer.try_send(record()).map(drop),
    );
    state(
        "send_and_wait outside a transaction",
        producer.send_and_wait(record()).await.map(drop),
    );
    state("commit without begin", producer.commit_transaction().await);
    state("abort without begin", producer.abort_transaction().await);
    state(
        "offsets without begin",
        producer
            .send_offsets_to_transaction(
                &[TopicPartitionOffset {
                    topic: topic.clone(),
                    partition: 0,
                    offset: 1,
                    metadata: None,
                }],
                &ConsumerGroupMetadata::new("txn-state-group"),
            )
            .await,
    );
    assert_eq!(producer.pending(), 0, "nothing was accepted");

    producer.begin_transaction().expect("begin");
    state("begin twice", producer.begin_transaction());
    producer
        .send_and_wait(record())
        .await
        .expect("send in a transaction");
    producer.commit_transaction().await.expect("commit");
    state("commit twice", producer.commit_transaction().await);
    state("send after commit", producer.send(record()).await.map(drop));

    // A producer without a transactional id has no transactions at all.
    let plain = Producer::builder(&client).build().expect("valid config");
    state("begin without an id", plain.begin_transaction());
    state("init without an id", plain.init_transactions().await);
    plain
        .send_and_wait(record())
        .await
        .expect("a plain send works");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_producer_with_the_same_id_fences_the_first() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("txn-fence");
    common::create_topic(&client, &topic, 1).await;
    let id = broker.topic("txn-fence-id");

    let zombie = transactional(&client, &id).await;
    zombie.begin_transaction().expect("begin");
    zombie
        .send_and_wait(ProducerRecord::new(&topic, "zombie-1").partition(0))
        .await
        .expect("send before fencing");

    // The second producer's InitProducerId bumps the epoch: the first is fenced.
    let successor = transactional(&client, &id).await;

    // The zombie's next send fails with a fencing error, at once or on delivery, and so does
    // its commit.
    match zombie
        .send(ProducerRecord::new(&topic, "zombie-2").partition(0))
        .await
    {
        Err(e) => assert!(is_fencing(&e), "send: {e:?}"),
        Ok(f) => {
            let e = tokio::time::timeout(Duration::from_secs(20), f)
                .await
                .expect("delivery settles")
                .expect_err("a fenced producer's record is not written");
            assert!(is_fencing(&e), "delivery: {e:?}");
        }
    }
    let e = tokio::time::timeout(Duration::from_secs(20), zombie.commit_transaction())
        .await
        .expect("commit returns")
        .expect_err("a fenced producer cannot commit");
    assert!(is_fencing(&e), "commit: {e:?}");

    // Every later call fails with the same fencing error.
    let e = zombie
        .send(ProducerRecord::new(&topic, "zombie-3").partition(0))
        .await
        .expect_err("send after fencing");
    assert!(is_fencing(&e), "send: {e:?}");
    let e = zombie.begin_transaction().expect_err("begin after fencing");
    assert!(is_fencing(&e), "begin: {e:?}");
    let e = zombie.commit_transaction().await.expect_err("commit again");
    assert!(is_fencing(&e), "commit: {e:?}");
    let e = zombie
        .abort_transaction()
        .await
        .expect_err("abort after fencing");
    assert!(is_fencing(&e), "abort: {e:?}");
    let e = zombie
        .init_transactions()
        .await
        .expect_err("init after fencing");
    assert!(is_fencing(&e), "init: {e:?}");

    // The successor works.
    successor.begin_transaction().expect("begin");
    successor
        .send_and_wait(ProducerRecord::new(&topic, "successor").partition(0))
        .await
        .expect("send");
    successor.commit_transaction().await.expect("commit");

    // The log: the zombie's record and the ABORT marker the coordinator wrote when the
    // successor took over its transactional id, then the successor's transaction (a higher
    // epoch of the same producer id) and its COMMIT marker. Nothing of the zombie after fencing.
    let entries = read_entries(&client, &topic, 0, 4).await;
    let zombie_id = assert_transaction(
        &format!("{topic}-0 (zombie)"),
        &entries[..2],
        &["zombie-1".to_owned()],
        ControlRecordType::Abort,
    );
    let successor_id = assert_transaction(
        &format!("{topic}-0 (successor)"),
        &entries[2..],
        &["successor".to_owned()],
        ControlRecordType::Commit,
    );
    assert_eq!(successor_id.0, zombie_id.0, "the same producer id");
    assert!(
        successor_id.1 > zombie_id.1,
        "{zombie_id:?} then {successor_id:?}"
    );
}

/// OffsetFetch of `group` for `topic` partitions `partitions`, in whatever version the broker
/// and client agree on. Returns the committed offset of each partition (-1: none), or the
/// error code.
async fn offset_fetch(
    client: &Client,
    group: &str,
    topic: &str,
    partitions: &[i32],
) -> Result<BTreeMap<i32, i64>, ErrorCode> {
    let node = client
        .find_coordinator(0, group)
        .await
        .expect("group coordinator");
    let conn = client.broker_connection(node).await.expect("connection");
    let version = conn
        .version_for(ApiKey::OffsetFetch)
        .expect("OffsetFetch supported");
    let req = if version >= 8 {
        OffsetFetchRequest {
            topics: Some(Vec::new()),
            groups: vec![OffsetFetchRequestGroup {
                group_id: group.to_owned(),
                member_id: None,
                member_epoch: -1,
                topics: Some(vec![OffsetFetchRequestTopics {
                    name: topic.to_owned(),
                    partition_indexes: partitions.to_vec(),
                    ..Default::default()
                }]),
                ..Default::default()
            }],
            ..Default::default()
        }
    } else {
        OffsetFetchRequest {
            group_id: group.to_owned(),
            topics: Some(vec![OffsetFetchRequestTopic {
                name: topic.to_owned(),
                partition_indexes: partitions.to_vec(),
                ..Default::default()
            }]),
            ..Default::default()
        }
    };
    let resp = conn.send_version(&req, version).await.expect("OffsetFetch");
    let mut out = BTreeMap::new();
    if version >= 8 {
        let g = resp
            .groups
            .iter()
            .find(|g| g.group_id == group)
            .expect("the group in the response");
        if g.error_code != 0 {
            return Err(ErrorCode(g.error_code));
        }
        for t in g.topics.iter().filter(|t| t.name == topic) {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(ErrorCode(p.error_code));
                }
                out.insert(p.partition_index, p.committed_offset);
            }
        }
    } else {
        if resp.error_code != 0 {
            return Err(ErrorCode(resp.error_code));
        }
        for t in resp.topics.iter().filter(|t| t.name == topic) {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(ErrorCode(p.error_code));
                }
                out.insert(p.partition_index, p.committed_offset);
            }
        }
    }
    Ok(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_to_a_transaction_are_committed_with_it() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let input = broker.topic("txn-offsets-in");
    let output = broker.topic("txn-offsets-out");
    common::create_topic(&client, &input, 2).await;
    common::create_topic(&client, &output, 1).await;
    let group = broker.topic("txn-offsets-group");
    let producer = transactional(&client, &broker.topic("txn-offsets-id")).await;

    assert_eq!(
        offset_fetch(&client, &group, &input, &[0, 1]).await,
        Ok(BTreeMap::from([(0, -1), (1, -1)])),
        "nothing committed yet"
    );

    // Consume-transform-produce: the output record and the input offsets commit together.
    producer.begin_transaction().expect("begin");
    producer
        .send_and_wait(ProducerRecord::new(&output, "derived").partition(0))
        .await
        .expect("send");
    let offsets = [
        TopicPartitionOffset {
            topic: input.clone(),
            partition: 0,
            offset: 42,
            metadata: None,
        },
        TopicPartitionOffset {
            topic: input.clone(),
            partition: 1,
            offset: 7,
            metadata: None,
        },
    ];
    tokio::time::timeout(
        Duration::from_secs(20),
        producer.send_offsets_to_transaction(&offsets, &ConsumerGroupMetadata::new(&group)),
    )
    .await
    .expect("send_offsets in time")
    .expect("send_offsets_to_transaction");
    tokio::time::timeout(Duration::from_secs(20), producer.commit_transaction())
        .await
        .expect("commit in time")
        .expect("commit");

    assert_eq!(
        offset_fetch(&client, &group, &input, &[0, 1]).await,
        Ok(BTreeMap::from([(0, 42), (1, 7)])),
        "the offsets committed with the transaction"
    );

    // Offsets sent to an aborted transaction are not committed.
    producer.begin_transaction().expect("begin");
    let later = [TopicPartitionOffset {
        topic: input.clone(),
        partition: 0,
        offset: 100,
        metadata: None,
    }];
    tokio::time::timeout(
        Duration::from_secs(20),
        producer.send_offsets_to_transaction(&later, &ConsumerGroupMetadata::new(&group)),
    )
    .await
    .expect("send_offsets in time")
    .expect("send_offsets_to_transaction");
    tokio::time::timeout(Duration::from_secs(20), producer.abort_transaction())
        .await
        .expect("abort in time")
        .expect("abort");
    assert_eq!(
        offset_fetch(&client, &group, &input, &[0, 1]).await,
        Ok(BTreeMap::from([(0, 42), (1, 7)])),
        "the aborted transaction's offset is not committed"
    );

    let entries = read_entries(&client, &output, 0, 2).await;
    assert_transaction(
        &format!("{output}-0"),
        &entries,
        &["derived".to_owned()],
        ControlRecordType::Commit,
    );
}
