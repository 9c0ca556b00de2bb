//! Golden byte vectors for record batches and legacy message sets.
//!
//! - A magic-2 batch written out byte by byte from the protocol guide's "Record Batch" and
//!   "Record" layouts, with its CRC-32C computed by a bitwise implementation in this file.
//! - Batches and message sets produced by an independent Python encoder with other libraries'
//!   compressors (see `fixtures/records/gen.py` for how they were made).

use bytes::Bytes;
use kafkawire_protocol::records::{
    Batch, Compression, DecodeOptions, RecordBatch, RecordBatchBuilder, RecordSet, TimestampType,
};

const BASE_TS: i64 = 1_700_000_000_000;

/// CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), one bit at a time.
fn bitwise_crc32c(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in data {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82F6_3B78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The three records every fixture holds: (offset, timestamp, key, value, headers).
type Expected = (
    i64,
    i64,
    Option<&'static [u8]>,
    Option<&'static [u8]>,
    Vec<(&'static str, Option<&'static [u8]>)>,
);

fn expected_v2() -> Vec<Expected> {
    vec![
        (1000, BASE_TS, Some(b"k0"), Some(b"hello"), vec![]),
        (
            1001,
            BASE_TS + 5,
            None,
            Some(b"world"),
            vec![("h1", Some(b"v1"))],
        ),
        (
            1002,
            BASE_TS + 3,
            Some(b"k2"),
            None,
            vec![("a", None), ("b", Some(b""))],
        ),
    ]
}

#[rustfmt::skip]
fn hand_built_batch() -> Vec<u8> {
    let mut b = vec![
        0, 0, 0, 0, 0, 0, 0x03, 0xe8,       // baseOffset int64 = 1000
        0, 0, 0, 96,                        // batchLength int32 = 96 bytes after this field
        0, 0, 0, 9,                         // partitionLeaderEpoch int32 = 9
        2,                                  // magic int8 = 2
        0, 0, 0, 0,                         // crc uint32, filled in below
        0, 0,                               // attributes int16: no compression, CreateTime
        0, 0, 0, 2,                         // lastOffsetDelta int32 = 2
        0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x00, // baseTimestamp int64 = 1_700_000_000_000
        0, 0, 0x01, 0x8b, 0xcf, 0xe5, 0x68, 0x05, // maxTimestamp int64 = base + 5
        0, 0, 0, 0, 0, 0, 0x10, 0x92,       // producerId int64 = 4242
        0, 3,                               // producerEpoch int16 = 3
        0, 0, 0, 17,                        // baseSequence int32 = 17
        0, 0, 0, 3,                         // recordsCount int32 = 3
        // record 0: length varint 13 (zigzag 26), attributes 0, timestampDelta 0,
        // offsetDelta 0, keyLength 2 (zigzag 4) "k0", valueLength 5 (10) "hello", 0 headers
        26, 0, 0, 0, 4, b'k', b'0', 10, b'h', b'e', b'l', b'l', b'o', 0,
        // record 1: length 17, attributes 0, timestampDelta 5, offsetDelta 1, key null (-1 -> 1),
        // value "world", 1 header: key "h1", value "v1"
        34, 0, 10, 2, 1, 10, b'w', b'o', b'r', b'l', b'd', 2, 4, b'h', b'1', 4, b'v', b'1',
        // record 2: length 14, attributes 0, timestampDelta 3, offsetDelta 2, key "k2",
        // value null, 2 headers: "a" = null, "b" = empty
        28, 0, 6, 4, 4, b'k', b'2', 1, 4, 2, b'a', 1, 2, b'b', 0,
    ];
    let crc = bitwise_crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn check_records(batch: &Batch, want: &[Expected], seq: Option<i32>) {
    let got: Vec<_> = batch.records().collect::<Result<_, _>>().unwrap();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert_eq!(g.offset(), w.0, "record {i} offset");
        assert_eq!(g.timestamp(), w.1, "record {i} timestamp");
        assert_eq!(g.key(), w.2, "record {i} key");
        assert_eq!(g.value(), w.3, "record {i} value");
        let hs: Vec<_> = g.headers().map(|h| (h.key, h.value)).collect();
        assert_eq!(hs, w.4, "record {i} headers");
        assert_eq!(g.sequence(), seq.map_or(-1, |s| s + i as i32));
    }
}

fn fixture(name: &str) -> Bytes {
    let path = format!(
        "{}/tests/fixtures/records/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hex: Vec<u8> = text.bytes().filter(u8::is_ascii_hexdigit).collect();
    let nibble = |c: u8| (c as char).to_digit(16).unwrap() as u8;
    Bytes::from(
        hex.chunks(2)
            .map(|p| (nibble(p[0]) << 4) | nibble(p[1]))
            .collect::<Vec<u8>>(),
    )
}

#[test]
fn hand_built_batch_decodes_field_by_field() {
    let bytes = Bytes::from(hand_built_batch());
    assert_eq!(bytes.len(), 12 + 96);
    // The CRC agrees with the independent Python fixture (crc32c package).
    assert_eq!(&bytes[17..21], &[0x92, 0x11, 0x2f, 0x04]);
    assert_eq!(bytes, fixture("v2_none.hex"));

    let batch = RecordBatch::decode(bytes.clone(), &DecodeOptions::default()).unwrap();
    let h = batch.header();
    assert_eq!(h.base_offset, 1000);
    assert_eq!(h.batch_length, 96);
    assert_eq!(h.partition_leader_epoch, 9);
    assert_eq!(h.magic, 2);
    assert_eq!(h.crc, 0x9211_2f04);
    assert_eq!(h.attributes, 0);
    assert_eq!(h.last_offset_delta, 2);
    assert_eq!(h.base_timestamp, BASE_TS);
    assert_eq!(h.max_timestamp, BASE_TS + 5);
    assert_eq!(h.producer_id, 4242);
    assert_eq!(h.producer_epoch, 3);
    assert_eq!(h.base_sequence, 17);
    assert_eq!(h.records_count, 3);
    assert_eq!(batch.compression(), Compression::None);
    assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
    assert!(!batch.is_transactional() && !batch.is_control());
    check_records(&Batch::V2(batch), &expected_v2(), Some(17));
}

#[test]
fn hand_built_batch_reencodes_identically() {
    let mut b = RecordBatchBuilder::new();
    b.base_offset(1000)
        .partition_leader_epoch(9)
        .producer(4242, 3, 17);
    for (_, ts, key, value, headers) in expected_v2() {
        b.push(ts, key, value, &headers).unwrap();
    }
    assert_eq!(b.build().unwrap(), hand_built_batch());
}

#[test]
fn python_batches_decode_with_every_codec() {
    for (file, codec) in [
        ("v2_none.hex", Compression::None),
        ("v2_gzip.hex", Compression::Gzip),
        ("v2_snappy_xerial.hex", Compression::Snappy),
        ("v2_snappy_raw.hex", Compression::Snappy),
        ("v2_lz4.hex", Compression::Lz4),
        ("v2_zstd.hex", Compression::Zstd),
    ] {
        let mut set = RecordSet::new(fixture(file));
        let batch = set
            .next()
            .unwrap()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(set.next().is_none() && !set.truncated_tail(), "{file}");
        assert_eq!(batch.compression(), codec, "{file}");
        assert_eq!(batch.base_offset(), 1000);
        assert_eq!(batch.last_offset(), 1002);
        assert_eq!(batch.producer_id(), 4242);
        check_records(&batch, &expected_v2(), Some(17));
    }
}

fn expected_legacy(magic: i8) -> Vec<Expected> {
    let ts = |i: i64| if magic == 1 { BASE_TS + i } else { -1 };
    vec![
        (500, ts(0), Some(b"plain"), Some(b"first"), vec![]),
        (501, ts(1), Some(b"ik0"), Some(b"inner-0"), vec![]),
        (502, ts(2), None, Some(b"inner-1"), vec![]),
        (503, ts(3), Some(b"ik2"), Some(b"inner-2"), vec![]),
        (504, ts(4), None, None, vec![]),
    ]
}

#[test]
fn python_legacy_message_sets_decode() {
    for (file, magic, codec) in [
        ("v0_gzip.hex", 0, Compression::Gzip),
        ("v1_gzip.hex", 1, Compression::Gzip),
        ("v1_snappy.hex", 1, Compression::Snappy),
        ("v1_lz4.hex", 1, Compression::Lz4),
        // Magic-0 LZ4 with the frame header checksum old Java clients wrote (KAFKA-3160).
        ("v0_lz4_kafka3160.hex", 0, Compression::Lz4),
    ] {
        let batches: Vec<Batch> = RecordSet::new(fixture(file))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(batches.len(), 3, "{file}");
        assert!(batches.iter().all(|b| b.magic() == magic));
        assert_eq!(batches[1].compression(), codec);
        assert_eq!(
            (batches[1].base_offset(), batches[1].last_offset()),
            (501, 503)
        );
        let want = expected_legacy(magic);
        check_records(&batches[0], &want[..1], None);
        check_records(&batches[1], &want[1..4], None);
        check_records(&batches[2], &want[4..], None);
    }
}

#[test]
fn python_fixtures_cut_short_end_cleanly() {
    for file in ["v2_zstd.hex", "v1_gzip.hex"] {
        let full = fixture(file);
        let mut boundaries = vec![];
        let mut set = RecordSet::new(full.clone());
        while set.next().is_some() {
            boundaries.push(set.position());
        }
        for cut in 1..full.len() {
            let mut set = RecordSet::new(full.slice(..cut));
            let n = set.by_ref().map(Result::unwrap).count();
            assert_eq!(n, boundaries.iter().filter(|&&b| b <= cut).count());
            assert_eq!(
                set.truncated_tail(),
                !boundaries.contains(&cut),
                "{file} cut at {cut}"
            );
        }
    }
}
