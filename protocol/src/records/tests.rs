//! Unit tests and property tests of record batch encoding and decoding.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;

use super::*;
use crate::error::{DecodeErrorKind, EncodeError};

pub(super) type Hdrs = Vec<(String, Option<Vec<u8>>)>;

/// An owned record for tests (also used by the builder's tests).
#[derive(Debug, Clone)]
pub(super) struct Rec {
    pub(super) ts: i64,
    pub(super) key: Option<Vec<u8>>,
    pub(super) value: Option<Vec<u8>>,
    pub(super) headers: Hdrs,
}

/// Pushes `r` onto `b`, returning the builder's answer.
pub(super) fn try_push(b: &mut RecordBatchBuilder, r: &Rec) -> Result<i32, EncodeError> {
    let h: Vec<(&str, Option<&[u8]>)> = r
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_deref()))
        .collect();
    b.push(r.ts, r.key.as_deref(), r.value.as_deref(), &h)
}

fn push(b: &mut RecordBatchBuilder, r: &Rec) {
    try_push(b, r).unwrap();
}

const HDRS: [(&str, Option<&[u8]>); 2] = [("h", Some(b"1")), ("n", None)];

fn sample_batch(codec: Compression, n: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.base_offset(100).compression(codec).producer(7, 2, 40);
    for i in 0..n {
        let key = format!("key-{i}");
        let value = format!("value-{i}-{}", "x".repeat(i % 7));
        b.push(
            1_000 + i as i64,
            Some(key.as_bytes()),
            (i % 5 != 3).then_some(value.as_bytes()),
            &HDRS[..i % 3],
        )
        .unwrap();
    }
    b.build().unwrap()
}

fn only_batch(bytes: Bytes) -> Batch {
    let mut set = RecordSet::new(bytes);
    let b = set.next().expect("one batch").expect("decodes");
    assert!(set.next().is_none());
    assert!(!set.truncated_tail());
    b
}

/// Walks everything a consumer would touch; returns how many records decoded.
fn drain(set: RecordSet) -> usize {
    let mut n = 0;
    for batch in set {
        let Ok(batch) = batch else { continue };
        let _ = (
            batch.base_offset(),
            batch.last_offset(),
            batch.compression(),
        );
        for r in batch.records() {
            let Ok(r) = r else { break };
            n += 1;
            let _ = (r.key(), r.value(), r.offset(), r.timestamp(), r.sequence());
            let _ = r.control_record();
            for h in r.headers() {
                let _ = (h.key.len(), h.value);
            }
        }
    }
    n
}

#[test]
fn header_fields_are_written_and_read() {
    let bytes = sample_batch(Compression::None, 10);
    let Batch::V2(b) = only_batch(bytes.clone()) else {
        panic!("v2")
    };
    let h = b.header();
    assert_eq!(h.base_offset, 100);
    assert_eq!(h.batch_length as usize, bytes.len() - 12);
    assert_eq!(h.magic, 2);
    assert_eq!(h.partition_leader_epoch, -1);
    assert_eq!(h.last_offset_delta, 9);
    assert_eq!(h.base_timestamp, 1_000);
    assert_eq!(h.max_timestamp, 1_009);
    assert_eq!(
        (h.producer_id, h.producer_epoch, h.base_sequence),
        (7, 2, 40)
    );
    assert_eq!(h.records_count, 10);
    assert_eq!(h.to_bytes(), bytes[..61]);
    let recs: Vec<_> = b.records().map(Result::unwrap).collect();
    assert_eq!(recs.len(), 10);
    assert_eq!(recs[4].offset(), 104);
    assert_eq!(recs[4].timestamp(), 1_004);
    assert_eq!(recs[4].sequence(), 44);
    assert_eq!(recs[3].value(), None);
    let hs: Vec<_> = recs[2].headers().collect();
    assert_eq!(hs.len(), 2);
    assert_eq!(hs[0].key, "h");
    assert_eq!(hs[1].value, None);
    assert_eq!(b.last_offset(), 109);
}

#[test]
fn owned_key_shares_the_buffer() {
    let bytes = sample_batch(Compression::None, 3);
    let Batch::V2(b) = only_batch(bytes.clone()) else {
        panic!("v2")
    };
    let r = b.records().next().unwrap().unwrap();
    let k = b.key_bytes(&r).unwrap();
    assert_eq!(&k[..], b"key-0");
    let range = bytes.as_ptr() as usize..bytes.as_ptr() as usize + bytes.len();
    assert!(range.contains(&(k.as_ptr() as usize)), "no copy");
    // A slice from elsewhere is copied rather than panicking.
    assert_eq!(&b.slice_ref(b"elsewhere")[..], b"elsewhere");
}

#[test]
fn log_append_time_overrides_record_timestamps() {
    let mut b = RecordBatchBuilder::new();
    b.log_append_time(Some(5_000));
    b.push(10, None, Some(b"a"), &[]).unwrap();
    b.push(20, None, Some(b"b"), &[]).unwrap();
    let batch = only_batch(b.build().unwrap());
    assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    for r in batch.records() {
        assert_eq!(r.unwrap().timestamp(), 5_000);
    }
}

#[test]
fn sequence_wraps_past_i32_max() {
    let mut b = RecordBatchBuilder::new();
    b.producer(1, 0, i32::MAX);
    b.push(0, None, None, &[]).unwrap();
    b.push(0, None, None, &[]).unwrap();
    let batch = only_batch(b.build().unwrap());
    let seqs: Vec<i32> = batch.records().map(|r| r.unwrap().sequence()).collect();
    assert_eq!(seqs, [i32::MAX, 0]);
}

#[test]
fn control_batches_carry_markers() {
    let marker = EndTxnMarker {
        commit: true,
        coordinator_epoch: 9,
    };
    let bytes = control_batch(42, 3, 77, 1, 1234, marker);
    let batch = only_batch(bytes);
    assert!(batch.is_control() && batch.is_transactional());
    assert_eq!(batch.producer_id(), 77);
    let r = batch.records().next().unwrap().unwrap();
    assert!(r.is_control());
    let c = r.control_record().unwrap();
    assert_eq!(c.kind, ControlRecordType::Commit);
    assert_eq!(c.version, 0);
    assert_eq!(EndTxnMarker::parse(&c, r.value().unwrap()), Some(marker));
    assert_eq!(r.offset(), 42);
    assert_eq!(
        ControlRecord::parse(&[0, 0, 0, 0]).unwrap().kind,
        ControlRecordType::Abort
    );
    assert!(ControlRecord::parse(&[0, 0, 0]).is_err());
}

#[test]
fn empty_builder_is_rejected_and_clear_resets() {
    let mut b = RecordBatchBuilder::new();
    assert!(b.build().is_err());
    b.push(5, None, Some(b"x"), &[]).unwrap();
    assert_eq!(b.len(), 1);
    b.clear();
    assert!(b.is_empty() && b.build().is_err());
    assert_eq!(b.estimated_size(), RECORD_BATCH_OVERHEAD);
}

#[test]
fn estimated_size_tracks_the_encoding() {
    let mut b = RecordBatchBuilder::new();
    for i in 0..50i64 {
        let v = vec![b'v'; (i * 37 % 300) as usize];
        let hs: &[(&str, Option<&[u8]>)] = &[("trace-id", Some(b"abc"))];
        let want = b.estimated_size_with(1_000 + i * 1_000, Some(b"kk"), Some(&v), hs);
        b.push(1_000 + i * 1_000, Some(b"kk"), Some(&v), hs)
            .unwrap();
        assert_eq!(b.estimated_size(), want);
        assert_eq!(b.build().unwrap().len(), want);
    }
}

#[test]
fn compacted_empty_batch_has_no_records() {
    // Compaction can leave a batch with recordsCount 0 and no payload, even "compressed".
    let mut h = BatchHeader {
        base_offset: 10,
        batch_length: 49,
        partition_leader_epoch: 0,
        magic: 2,
        crc: 0,
        attributes: Compression::Zstd.id() as i16,
        last_offset_delta: 4,
        base_timestamp: 0,
        max_timestamp: 0,
        producer_id: 5,
        producer_epoch: 0,
        base_sequence: 0,
        records_count: 0,
    };
    let mut b = h.to_bytes();
    h.crc = crc32c::crc32c(&b[21..]);
    b = h.to_bytes();
    let batch = only_batch(Bytes::copy_from_slice(&b));
    assert_eq!(batch.records().count(), 0);
    assert_eq!(batch.last_offset(), 14);
}

fn with_fixed_crc(mut b: Vec<u8>) -> Bytes {
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    Bytes::from(b)
}

#[test]
fn huge_records_count_is_rejected_without_allocating() {
    let mut b = sample_batch(Compression::None, 2).to_vec();
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    let e = RecordSet::new(with_fixed_crc(b))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Invalid(_)), "{e}");
    assert!(e.to_string().contains("base offset 100"), "{e}");
}

#[test]
fn record_overrun_is_an_error_naming_the_base_offset() {
    let mut b = sample_batch(Compression::None, 2).to_vec();
    b[61] = 0x7e; // first record length 63: runs past the batch
    let batch = only_batch(with_fixed_crc(b));
    let e = batch.records().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("base offset 100"), "{e}");
    let mut b = sample_batch(Compression::None, 2).to_vec();
    b[57..61].copy_from_slice(&1i32.to_be_bytes()); // one record announced, two present
    let batch = only_batch(with_fixed_crc(b));
    let all: Vec<_> = batch.records().collect();
    assert_eq!(all.len(), 2);
    assert!(all[0].is_ok() && all[1].is_err());
}

#[test]
fn truncated_tail_ends_iteration_cleanly() {
    let one = sample_batch(Compression::Lz4, 20);
    let mut two = BytesMut::new();
    two.put_slice(&one);
    two.put_slice(&one);
    let two = two.freeze();
    for cut in 0..one.len() {
        let mut set = RecordSet::new(two.slice(..one.len() + cut));
        assert!(set.next().unwrap().is_ok());
        assert!(set.next().is_none(), "cut {cut}");
        assert_eq!(set.truncated_tail(), cut > 0, "cut {cut}");
    }
}

#[test]
fn every_bit_flip_is_caught() {
    for codec in Compression::ALL {
        let good = sample_batch(codec, 6);
        for byte in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.to_vec();
                b[byte] ^= 1 << bit;
                let mut set = RecordSet::new(Bytes::from(b));
                let first = set.next();
                drain(set);
                if byte >= 17 {
                    let e = first.unwrap().unwrap_err();
                    assert!(
                        matches!(e.kind, DecodeErrorKind::CrcMismatch { .. }),
                        "{codec} byte {byte}: {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn unknown_codec_and_magic_are_errors() {
    let mut b = sample_batch(Compression::None, 2).to_vec();
    b[22] |= 0x07;
    let e = RecordSet::new(with_fixed_crc(b))
        .next()
        .unwrap()
        .unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnsupportedCompression(7));
    let mut b = sample_batch(Compression::None, 2).to_vec();
    b[16] = 3;
    let e = RecordSet::new(Bytes::from(b)).next().unwrap().unwrap_err();
    assert_eq!(e.kind, DecodeErrorKind::UnknownMagic(3));
}

#[test]
fn compression_names() {
    for c in Compression::ALL {
        assert_eq!(c.to_string().parse::<Compression>().unwrap(), c);
        assert_eq!(
            Compression::from_attributes(c.id() as i16 | 0x30).unwrap(),
            c
        );
    }
    assert_eq!("ZSTD".parse::<Compression>().unwrap(), Compression::Zstd);
    assert!("brotli".parse::<Compression>().is_err());
}

/// A legacy message (magic 0 or 1) with its log overhead.
fn legacy_entry(
    offset: i64,
    magic: i8,
    attrs: i8,
    ts: i64,
    key: Option<&[u8]>,
    value: &[u8],
) -> Vec<u8> {
    let mut m = vec![magic as u8, attrs as u8];
    if magic == 1 {
        m.extend_from_slice(&ts.to_be_bytes());
    }
    match key {
        None => m.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(k) => {
            m.extend_from_slice(&(k.len() as i32).to_be_bytes());
            m.extend_from_slice(k);
        }
    }
    m.extend_from_slice(&(value.len() as i32).to_be_bytes());
    m.extend_from_slice(value);
    let mut e = offset.to_be_bytes().to_vec();
    e.extend_from_slice(&(m.len() as i32 + 4).to_be_bytes());
    e.extend_from_slice(&crc32fast::hash(&m).to_be_bytes());
    e.extend_from_slice(&m);
    e
}

#[test]
fn legacy_wrappers_get_absolute_offsets() {
    for (magic, codec) in [
        (0, Compression::Gzip),
        (1, Compression::Snappy),
        (1, Compression::Lz4),
    ] {
        let rel = |i: i64| if magic == 1 { i } else { 50 + i };
        let mut inner = Vec::new();
        for i in 0..3 {
            inner.extend(legacy_entry(
                rel(i),
                magic,
                0,
                900 + i,
                Some(b"k"),
                &[b'a' + i as u8],
            ));
        }
        let mut z = BytesMut::new();
        compression::compress(codec.into(), &inner, &mut z).unwrap();
        let wrapper = legacy_entry(52, magic, codec.id() as i8 | 0x08, 7_000, None, &z);
        let plain = legacy_entry(53, magic, 0, 8_000, None, b"p");
        let set = Bytes::from([wrapper, plain].concat());
        let batches: Vec<Batch> = RecordSet::new(set).map(Result::unwrap).collect();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[0].compression(), codec);
        assert_eq!(
            (batches[0].base_offset(), batches[0].last_offset()),
            (50, 52)
        );
        let recs: Vec<_> = batches[0].records().map(Result::unwrap).collect();
        assert_eq!(
            recs.iter().map(|r| r.offset()).collect::<Vec<_>>(),
            [50, 51, 52]
        );
        assert_eq!(recs[1].value(), Some(&b"b"[..]));
        let want_ts = if magic == 1 { 7_000 } else { NO_TIMESTAMP };
        assert_eq!(recs[2].timestamp(), want_ts);
        assert_eq!(batches[1].records().next().unwrap().unwrap().offset(), 53);
    }
}

#[test]
fn legacy_crc_mismatch_and_truncation() {
    let mut e = legacy_entry(1, 1, 0, 5, Some(b"k"), b"v");
    let n = e.len();
    e[n - 1] ^= 1;
    let err = RecordSet::new(Bytes::from(e.clone()))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err.kind, DecodeErrorKind::CrcMismatch { .. }));
    let mut set = RecordSet::new(Bytes::from(e[..n - 1].to_vec()));
    assert!(set.next().is_none() && set.truncated_tail());
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        -1_000_000i64..1_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(
            (
                "[a-zé]{0,6}",
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ),
            0..3,
        ),
    )
        .prop_map(|(ts, key, value, headers)| Rec {
            ts: 1_700_000_000_000 + ts,
            key,
            value,
            headers,
        })
}

fn codec_strategy() -> impl Strategy<Value = Compression> {
    proptest::sample::select(Compression::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trip(
        recs in proptest::collection::vec(rec_strategy(), 1..20),
        codec in codec_strategy(),
        base_offset in 0i64..1 << 40,
        producer in (-1i64..1000, -1i16..10, -1i32..1000),
        transactional: bool,
    ) {
        let mut b = RecordBatchBuilder::new();
        b.base_offset(base_offset).compression(codec).transactional(transactional)
            .producer(producer.0, producer.1, producer.2);
        for r in &recs {
            push(&mut b, r);
        }
        let bytes = b.build().unwrap();
        let Batch::V2(batch) = only_batch(bytes) else { panic!("v2") };
        prop_assert_eq!(batch.compression(), codec);
        prop_assert_eq!(batch.is_transactional(), transactional);
        prop_assert_eq!(batch.producer_id(), producer.0);
        prop_assert_eq!(batch.last_offset(), base_offset + recs.len() as i64 - 1);
        prop_assert_eq!(batch.max_timestamp(), recs.iter().map(|r| r.ts).max().unwrap());
        let got: Vec<_> = batch.records().collect::<Result<_, _>>().unwrap();
        prop_assert_eq!(got.len(), recs.len());
        for (i, (g, r)) in got.iter().zip(&recs).enumerate() {
            prop_assert_eq!(g.offset(), base_offset + i as i64);
            prop_assert_eq!(g.timestamp(), r.ts);
            prop_assert_eq!(g.key(), r.key.as_deref());
            prop_assert_eq!(g.value(), r.value.as_deref());
            let hs: Hdrs = g.headers().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect();
            prop_assert_eq!(&hs, &r.headers);
            let want_seq = if producer.2 < 0 { -1 } else { producer.2 + i as i32 };
            prop_assert_eq!(g.sequence(), want_seq);
        }
    }

    #[test]
    fn random_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        drain(RecordSet::new(Bytes::from(data)));
    }

    #[test]
    fn random_batch_like_bytes_never_panic(
        body in proptest::collection::vec(any::<u8>(), 0..300),
        magic in 0u8..3,
        count in any::<i32>(),
        attrs in any::<i16>(),
    ) {
        // A plausible header with a correct length and CRC, so the garbage reaches the records.
        let mut b = vec![0u8; 61];
        b[8..12].copy_from_slice(&((49 + body.len()) as i32).to_be_bytes());
        b[16] = magic;
        b[21..23].copy_from_slice(&attrs.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&body);
        drain(RecordSet::new(with_fixed_crc(b)));
    }

    #[test]
    fn corrupted_records_with_valid_crc_never_panic(
        codec in codec_strategy(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let good = sample_batch(codec, 8);
        let mut b = good.to_vec();
        for (at, x) in flips {
            let i = 21 + at.index(b.len() - 21);
            b[i] ^= x.max(1);
        }
        drain(RecordSet::new(with_fixed_crc(b)));
    }

    #[test]
    fn small_decompression_limit_is_an_error(codec in codec_strategy()) {
        prop_assume!(codec != Compression::None);
        let opts = DecodeOptions { max_decompressed_size: 100, ..DecodeOptions::default() };
        let e = RecordSet::with_options(sample_batch(codec, 30), opts).next().unwrap().unwrap_err();
        prop_assert!(matches!(e.kind, DecodeErrorKind::Decompression(_)), "{}", e);
    }
}

/// A batch of `n` records with `value_len`-byte values (compressible), at `base`.
fn batch_at(codec: Compression, base: i64, n: usize, value_len: usize) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.base_offset(base).compression(codec);
    let value = vec![b'v'; value_len];
    for _ in 0..n {
        b.push(1, None, Some(&value), &[]).unwrap();
    }
    b.build().unwrap()
}

#[test]
fn a_budget_is_shared_by_record_sets_and_stops_at_its_limit() {
    // Each batch inflates to ~100 KB; the budget holds 3 of them across two record sets.
    let one = batch_at(Compression::Zstd, 0, 10, 10_000);
    let inflated = {
        let b = only_batch(one.clone());
        b.as_v2().unwrap().records_bytes().len()
    };
    let budget = DecompressionBudget::new(3 * inflated + inflated / 2);
    let two: Bytes = [one.clone(), one.clone()].concat().into();
    let mut first = RecordSet::with_budget(two.clone(), DecodeOptions::default(), &budget);
    assert!(first.next().unwrap().is_ok());
    assert!(first.next().unwrap().is_ok());
    assert!(first.next().is_none());
    assert_eq!(budget.used(), 2 * inflated);
    let mut second = RecordSet::with_budget(two, DecodeOptions::default(), &budget);
    assert!(second.next().unwrap().is_ok());
    let e = second.next().unwrap().unwrap_err();
    assert_eq!(
        e.kind,
        DecodeErrorKind::DecompressionBudget {
            limit: 3 * inflated + inflated / 2,
            used: 3 * inflated,
            needed: inflated / 2 + 1,
        }
    );
    let text = e.to_string();
    assert!(
        text.contains("budget") && text.contains("base offset 0"),
        "{text}"
    );
    // The budget is spent: the set ends there.
    assert!(second.next().is_none());
    assert_eq!(budget.used(), 3 * inflated);
    // Uncompressed batches share the input and cost nothing.
    let plain = batch_at(Compression::None, 0, 10, 10_000);
    let mut set = RecordSet::with_budget(plain, DecodeOptions::default(), &budget);
    assert!(set.next().unwrap().is_ok());
    assert_eq!(budget.used(), 3 * inflated);
}

#[test]
fn decompression_limit_of_a_record_set() {
    for codec in [
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let one = batch_at(codec, 0, 20, 5_000);
        let three: Bytes = [one.clone(), one.clone(), one].concat().into();
        let mut set = RecordSet::with_decompression_limit(three, 250_000);
        assert!(set.next().unwrap().is_ok(), "{codec}");
        assert!(set.next().unwrap().is_ok(), "{codec}");
        let e = set.next().unwrap().unwrap_err();
        assert!(
            matches!(
                e.kind,
                DecodeErrorKind::DecompressionBudget { limit: 250_000, .. }
            ),
            "{codec}: {e}"
        );
        assert!(set.next().is_none());
        assert!(set.budget().unwrap().used() <= 250_000);
    }
}

#[test]
fn a_batch_ending_at_i64_max_is_an_error_not_an_overflow() {
    // last offset = i64::MAX - 1 is fine; the next offset is i64::MAX.
    let ok = batch_at(Compression::None, i64::MAX - 2, 2, 1);
    let b = only_batch(ok);
    assert_eq!(b.last_offset(), i64::MAX - 1);
    assert_eq!(b.next_offset(), i64::MAX);
    let offsets: Vec<i64> = b.records().map(|r| r.unwrap().offset()).collect();
    assert_eq!(offsets, [i64::MAX - 2, i64::MAX - 1]);
    for (base, n) in [(i64::MAX - 1, 2), (i64::MAX, 1), (i64::MAX - 5, 6)] {
        let bad = batch_at(Compression::None, base, n, 1);
        let e = RecordSet::new(bad).next().unwrap().unwrap_err();
        assert!(e.to_string().contains("i64::MAX"), "{base}+{n}: {e}");
    }
    // A record whose offset delta goes past the batch's last offset, up to i64::MAX.
    let mut b = batch_at(Compression::None, i64::MAX - 3, 1, 1).to_vec();
    // First record: length, attributes, timestamp delta, then its offset delta (0 -> 3).
    b[61 + 3] = 6;
    let batch = only_batch(with_fixed_crc(b));
    let e = batch.records().next().unwrap().unwrap_err();
    assert!(e.to_string().contains("offset delta"), "{e}");
    // Legacy messages: a plain message at i64::MAX, and magic-1 relative offsets that overflow.
    let e = RecordSet::new(Bytes::from(legacy_entry(i64::MAX, 1, 0, 5, None, b"v")))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("no next offset"), "{e}");
    let mut inner = legacy_entry(0, 1, 0, 1, None, b"a");
    inner.extend(legacy_entry(i64::MAX, 1, 0, 1, None, b"b"));
    let mut z = BytesMut::new();
    compression::compress(Compression::Gzip.into(), &inner, &mut z).unwrap();
    let wrapper = legacy_entry(-5, 1, 1, 7, None, &z);
    let e = RecordSet::new(Bytes::from(wrapper))
        .next()
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("overflows"), "{e}");
}

#[test]
fn legacy_inner_message_bookkeeping_counts_against_the_limits() {
    // 10,000 empty inner messages (26 bytes each) in one gzip wrapper: 260 KB decompressed
    // plus 880 KB of bookkeeping.
    let mut inner = Vec::new();
    for i in 0..10_000 {
        inner.extend(legacy_entry(i, 0, 0, 0, None, b""));
    }
    assert_eq!(inner.len(), 260_000);
    let mut z = BytesMut::new();
    compression::compress(Compression::Gzip.into(), &inner, &mut z).unwrap();
    let wrapper = Bytes::from(legacy_entry(9_999, 0, 1, 0, None, &z));
    let per = std::mem::size_of::<LegacyRecord>();
    let need = 260_000 + 10_000 * per;
    // Under the per-batch cap: refused before the bookkeeping is allocated.
    let opts = DecodeOptions {
        max_decompressed_size: need - 1,
        ..DecodeOptions::default()
    };
    let e = RecordSet::with_options(wrapper.clone(), opts)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(e.to_string().contains("10000 inner messages"), "{e}");
    // Under a budget.
    let budget = DecompressionBudget::new(need - 1);
    let e = RecordSet::with_budget(wrapper.clone(), DecodeOptions::default(), &budget)
        .next()
        .unwrap()
        .unwrap_err();
    assert!(
        matches!(e.kind, DecodeErrorKind::DecompressionBudget { .. }),
        "{e}"
    );
    // Enough: every message, and the budget charged for all of it.
    let budget = DecompressionBudget::new(need);
    let b = RecordSet::with_budget(wrapper, DecodeOptions::default(), &budget)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(b.records().count(), 10_000);
    assert_eq!(budget.used(), need);
}

/// An iteration continued from a position yields exactly the records after it, for every cut,
/// every codec (decompressed once) and a legacy set; a position that does not fit a batch
/// starts that batch over instead of failing.
#[test]
fn records_resume_from_a_position() {
    for codec in [Compression::None, Compression::Lz4] {
        let batch = only_batch(sample_batch(codec, 20));
        let all: Vec<i64> = batch.records().map(|r| r.unwrap().offset()).collect();
        for cut in 0..=all.len() {
            let mut it = batch.records();
            for _ in 0..cut {
                it.next().unwrap().unwrap();
            }
            let pos = it.position();
            let rest: Vec<i64> = batch
                .records_from(pos)
                .map(|r| r.unwrap().offset())
                .collect();
            assert_eq!(rest, all[cut..].to_vec(), "{codec:?} cut {cut}");
        }
        let small = only_batch(sample_batch(codec, 2));
        let mut it = batch.records();
        for _ in 0..10 {
            it.next();
        }
        let foreign = small.records_from(it.position());
        assert_eq!(
            foreign.count(),
            2,
            "{codec:?}: a foreign position starts over"
        );
    }
}
