//! Producing and consuming against a real broker: every compression codec round-trips
//! byte-for-byte, keyed records land on the murmur2 partition, explicit partitions and start
//! offsets are honoured, and acks 0 and 1 both write.
mod common;

use std::collections::BTreeMap;

use bytes::Bytes;
use common::Owned;
use kafkawire::producer::partition_for_key;
use kafkawire::{
    Acks, Compression, PartitionConsumer, Producer, ProducerConfig, ProducerRecord, StartOffset,
};

const RECORDS: usize = 10_000;
const CHUNK: usize = 1_000;
const PARTITIONS: i32 = 3;

/// A deterministic pseudo-random byte stream (xorshift), so values are not trivially
/// compressible and vary in length.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// Record `i` of a codec run: keyed, with headers (one of them null), varied values; every
/// 101st value is empty and every 211th is null.
fn record(topic: &str, codec: &str, i: usize) -> ProducerRecord {
    let value: Option<Bytes> = if i.is_multiple_of(211) {
        None
    } else if i.is_multiple_of(101) {
        Some(Bytes::new())
    } else {
        let mut v = format!("value-{i}-").repeat(1 + i % 7).into_bytes();
        v.extend(noise(i as u64, i % 64));
        Some(v.into())
    };
    let mut r = ProducerRecord::new(topic, Bytes::new()).key(format!("key-{i}"));
    r.value = value;
    r = r
        .header("idx", i.to_string())
        .header("codec", codec.to_owned());
    r.headers.push(("nullable".to_owned(), None));
    if i.is_multiple_of(3) {
        r = r.header("bin", noise(!(i as u64), 5));
    }
    r
}

async fn round_trip(compression: Compression, codec: &str) {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic(&format!("codec-{codec}"));
    common::create_topic(&client, &topic, PARTITIONS).await;

    let producer = Producer::new(
        &client,
        ProducerConfig {
            compression,
            ..ProducerConfig::default()
        },
    )
    .expect("valid config");
    let records: Vec<ProducerRecord> = (0..RECORDS).map(|i| record(&topic, codec, i)).collect();

    // What each partition should hold, in order.
    let mut expected: BTreeMap<i32, Vec<Owned>> = BTreeMap::new();
    for chunk in records.chunks(CHUNK) {
        let written = producer
            .send_batch(chunk.to_vec())
            .await
            .unwrap_or_else(|e| panic!("{codec}: {e}"));
        assert_eq!(written.len(), chunk.len());
        for (r, m) in chunk.iter().zip(&written) {
            let key = r.key.as_ref().expect("keyed");
            assert_eq!(&*m.topic, topic.as_str());
            assert_eq!(
                m.partition,
                partition_for_key(key, PARTITIONS),
                "{codec}: key {key:?}"
            );
            let part = expected.entry(m.partition).or_default();
            assert_eq!(
                m.offset,
                part.len() as i64,
                "{codec}: offsets are contiguous from 0 in send order"
            );
            part.push(Owned::expected(m.offset, r));
        }
    }
    assert_eq!(
        expected.len(),
        PARTITIONS as usize,
        "{codec}: every partition got records"
    );

    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    let parts = consumer
        .assign_topic(&topic, StartOffset::Earliest)
        .await
        .expect("assign");
    assert_eq!(parts, (0..PARTITIONS).collect::<Vec<_>>());
    let got = common::drain(&mut consumer, RECORDS).await;
    for (p, want) in &expected {
        let have = got.of(&topic, *p);
        assert_eq!(have.len(), want.len(), "{codec}: partition {p} count");
        for (h, w) in have.iter().zip(want) {
            assert_eq!(h, w, "{codec}: partition {p} offset {}", w.offset);
        }
        assert_eq!(
            got.high_watermark(&topic, *p),
            Some(want.len() as i64),
            "{codec}: high watermark of partition {p}"
        );
    }
    // The broker stored the batches as the producer compressed them.
    assert_eq!(
        got.codecs,
        vec![compression],
        "{codec}: codecs of the fetched batches"
    );
    common::assert_no_more(&mut consumer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_uncompressed() {
    round_trip(Compression::None, "none").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_gzip() {
    round_trip(Compression::Gzip, "gzip").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_snappy() {
    round_trip(Compression::Snappy, "snappy").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_lz4() {
    round_trip(Compression::Lz4, "lz4").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_records_round_trip_zstd() {
    round_trip(Compression::Zstd, "zstd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explicit_partitions_and_start_offsets() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let spread = broker.topic("spread");
    common::create_topic(&client, &spread, 4).await;
    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");

    // Partition p gets 10 + 5p records, interleaved across partitions in one batch call.
    let counts: Vec<usize> = (0..4).map(|p| 10 + 5 * p).collect();
    let mut records = Vec::new();
    for i in 0..counts[3] {
        for (p, n) in counts.iter().enumerate() {
            if i < *n {
                records
                    .push(ProducerRecord::new(&spread, format!("p{p}-r{i}")).partition(p as i32));
            }
        }
    }
    let written = producer.send_batch(records.clone()).await.expect("produce");
    for (r, m) in records.iter().zip(&written) {
        assert_eq!(Some(m.partition), r.partition);
    }

    // All four partitions, from the start: each in order.
    let total: usize = counts.iter().sum();
    let mut all = PartitionConsumer::new(&client, common::quick_consumer_config());
    assert_eq!(
        all.assign_topic(&spread, StartOffset::Earliest)
            .await
            .expect("assign"),
        vec![0, 1, 2, 3]
    );
    let got = common::drain(&mut all, total).await;
    for (p, n) in counts.iter().enumerate() {
        let values: Vec<String> = got
            .of(&spread, p as i32)
            .iter()
            .map(|r| String::from_utf8(r.value.clone().expect("value")).expect("utf8"))
            .collect();
        let want: Vec<String> = (0..*n).map(|i| format!("p{p}-r{i}")).collect();
        assert_eq!(values, want, "partition {p}");
        let offsets: Vec<i64> = got.of(&spread, p as i32).iter().map(|r| r.offset).collect();
        assert_eq!(offsets, (0..*n as i64).collect::<Vec<_>>(), "partition {p}");
        assert_eq!(
            got.high_watermark(&spread, p as i32),
            Some(*n as i64),
            "high watermark of partition {p}"
        );
        assert_eq!(all.position(&spread, p as i32), Some(*n as i64));
    }
    common::assert_no_more(&mut all).await;

    // One partition from an exact offset: exactly from there. The records went out in one
    // batch per partition, so the fetch returns records before `from` which must be skipped.
    let from = 7;
    let mut one = PartitionConsumer::new(&client, common::quick_consumer_config());
    one.assign(&spread, 2, StartOffset::Offset(from))
        .await
        .expect("assign");
    let got = common::drain(&mut one, counts[2] - from as usize).await;
    assert_eq!(
        got.records.len(),
        1,
        "only the assigned partition answers: {:?}",
        got.records.keys()
    );
    let recs = got.of(&spread, 2);
    assert_eq!(recs.first().map(|r| r.offset), Some(from));
    assert_eq!(recs.last().map(|r| r.offset), Some(counts[2] as i64 - 1));
    assert_eq!(
        recs[0].value.as_deref(),
        Some(format!("p2-r{from}").as_bytes())
    );
    assert_eq!(got.high_watermark(&spread, 2), Some(counts[2] as i64));
    common::assert_no_more(&mut one).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_one_both_write() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let acks = broker.topic("acks");
    common::create_topic(&client, &acks, 1).await;

    let fire_and_forget = Producer::new(
        &client,
        ProducerConfig {
            acks: Acks::None,
            // Idempotence needs acks=all.
            enable_idempotence: false,
            ..ProducerConfig::default()
        },
    )
    .expect("valid config");
    let zero: Vec<ProducerRecord> = (0..5)
        .map(|i| ProducerRecord::new(&acks, format!("a0-{i}")).partition(0))
        .collect();
    let written = fire_and_forget.send_batch(zero).await.expect("acks=0");
    assert_eq!(written.len(), 5);
    assert!(
        written.iter().all(|m| m.offset == -1 && m.partition == 0),
        "{written:?}"
    );

    // acks=1 on the same connection: its answer comes after the acks=0 request was handled,
    // so its offset says where the unacknowledged records went.
    let leader = Producer::new(
        &client,
        ProducerConfig {
            acks: Acks::Leader,
            // Idempotence needs acks=all.
            enable_idempotence: false,
            ..ProducerConfig::default()
        },
    )
    .expect("valid config");
    let one: Vec<ProducerRecord> = (0..5)
        .map(|i| ProducerRecord::new(&acks, format!("a1-{i}")).partition(0))
        .collect();
    let written = leader.send_batch(one).await.expect("acks=1");
    let offsets: Vec<i64> = written.iter().map(|m| m.offset).collect();
    assert_eq!(offsets, vec![5, 6, 7, 8, 9]);

    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    consumer
        .assign(&acks, 0, StartOffset::Earliest)
        .await
        .expect("assign");
    let got = common::drain(&mut consumer, 10).await;
    let values: Vec<Vec<u8>> = got
        .of(&acks, 0)
        .iter()
        .map(|r| r.value.clone().expect("value"))
        .collect();
    let want: Vec<Vec<u8>> = (0..5)
        .map(|i| format!("a0-{i}").into_bytes())
        .chain((0..5).map(|i| format!("a1-{i}").into_bytes()))
        .collect();
    assert_eq!(values, want);
}
