//! Interoperability with the `kafka-protocol` crate (an independent Rust implementation of the
//! record batch format): its batches decode with ours and ours decode with it, for every codec.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as TheirCompression, Record as TheirRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as TheirTimestampType,
};
use kafkawire_protocol::records::{
    Batch, Compression, RecordBatchBuilder, RecordSet, TimestampType,
};

const CODECS: [(Compression, TheirCompression); 5] = [
    (Compression::None, TheirCompression::None),
    (Compression::Gzip, TheirCompression::Gzip),
    (Compression::Snappy, TheirCompression::Snappy),
    (Compression::Lz4, TheirCompression::Lz4),
    (Compression::Zstd, TheirCompression::Zstd),
];

/// One test record: timestamp (ms), key, value, headers (unique keys: theirs keep a map).
struct Sample {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

fn samples(n: usize) -> Vec<Sample> {
    (0..n)
        .map(|i| Sample {
            timestamp: 1_700_000_000_000 + (i as i64 * 37) % 500,
            key: (i % 4 != 1).then(|| format!("key-{i}").into_bytes()),
            value: (i % 9 != 5).then(|| format!("value {i} {}", "abc".repeat(i % 40)).into_bytes()),
            headers: (0..i % 3)
                .map(|h| (format!("hdr-{h}"), (h != 1).then(|| vec![h as u8; h + 1])))
                .collect(),
        })
        .collect()
}

fn theirs(samples: &[Sample], base_offset: i64, producer: (i64, i16, i32)) -> Vec<TheirRecord> {
    samples
        .iter()
        .enumerate()
        .map(|(i, s)| TheirRecord {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TheirTimestampType::Creation,
            offset: base_offset + i as i64,
            sequence: if producer.2 < 0 {
                -1
            } else {
                producer.2 + i as i32
            },
            timestamp: s.timestamp,
            key: s.key.clone().map(Bytes::from),
            value: s.value.clone().map(Bytes::from),
            headers: s
                .headers
                .iter()
                .map(|(k, v)| (StrBytes::from_string(k.clone()), v.clone().map(Bytes::from)))
                .collect::<IndexMap<_, _>>(),
        })
        .collect()
}

fn check_ours(batch: &Batch, samples: &[Sample], base_offset: i64, seq: i32) {
    assert_eq!(batch.base_offset(), base_offset);
    assert_eq!(batch.last_offset(), base_offset + samples.len() as i64 - 1);
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    let recs: Vec<_> = batch.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(recs.len(), samples.len());
    for (i, (r, s)) in recs.iter().zip(samples).enumerate() {
        assert_eq!(r.offset(), base_offset + i as i64);
        assert_eq!(r.timestamp(), s.timestamp);
        assert_eq!(r.key(), s.key.as_deref());
        assert_eq!(r.value(), s.value.as_deref());
        assert_eq!(r.sequence(), if seq < 0 { -1 } else { seq + i as i32 });
        let hs: Vec<_> = r
            .headers()
            .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
            .collect();
        assert_eq!(hs, s.headers);
    }
}

#[test]
fn their_batches_decode_with_ours() {
    let samples = samples(300);
    for (ours, their) in CODECS {
        let mut buf = BytesMut::new();
        let opts = RecordEncodeOptions {
            version: 2,
            compression: their,
        };
        let records = theirs(&samples, 5_000, (99, 4, 1_000));
        RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
        let mut set = RecordSet::new(buf.freeze());
        let batch = set
            .next()
            .unwrap()
            .unwrap_or_else(|e| panic!("{ours}: {e}"));
        assert!(set.next().is_none() && !set.truncated_tail());
        assert_eq!(batch.compression(), ours);
        assert_eq!(batch.producer_id(), 99);
        assert_eq!(batch.producer_epoch(), 4);
        check_ours(&batch, &samples, 5_000, 1_000);
    }
}

#[test]
fn our_batches_decode_with_theirs() {
    let samples = samples(300);
    for (ours, their) in CODECS {
        let mut b = RecordBatchBuilder::new();
        b.base_offset(7_000).compression(ours).producer(12, 1, 50);
        for s in &samples {
            let hs: Vec<(&str, Option<&[u8]>)> = s
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_deref()))
                .collect();
            b.push(s.timestamp, s.key.as_deref(), s.value.as_deref(), &hs)
                .unwrap();
        }
        let mut bytes = b.build().unwrap();
        let set = RecordBatchDecoder::decode(&mut bytes)
            .unwrap_or_else(|e| panic!("{ours}: kafka-protocol rejects our batch: {e}"));
        assert_eq!(set.compression, their);
        assert_eq!(set.records, theirs(&samples, 7_000, (12, 1, 50)), "{ours}");
    }
}

#[test]
fn many_batches_in_one_record_set() {
    let samples = samples(40);
    let mut buf = BytesMut::new();
    for (i, (_, their)) in CODECS.iter().enumerate() {
        let opts = RecordEncodeOptions {
            version: 2,
            compression: *their,
        };
        let records = theirs(&samples, i as i64 * 40, (5, 0, 0));
        RecordBatchEncoder::encode(&mut buf, &records, &opts).unwrap();
    }
    let all = buf.freeze();
    // Cut inside the last batch, as a broker honouring max_bytes does.
    let mut set = RecordSet::new(all.slice(..all.len() - 10));
    let batches: Vec<Batch> = set.by_ref().collect::<Result<_, _>>().unwrap();
    assert!(set.truncated_tail());
    assert_eq!(batches.len(), CODECS.len() - 1);
    for (i, b) in batches.iter().enumerate() {
        assert_eq!(b.compression(), CODECS[i].0);
        check_ours(b, &samples, i as i64 * 40, 0);
    }
}
