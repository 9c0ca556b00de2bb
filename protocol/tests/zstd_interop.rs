//! zstd batches written by libzstd (the C library, through the `zstd` command-line tool) decode
//! with whichever zstd implementation this build has: the pure-Rust one by default, libzstd with
//! the `zstd-c` feature. The fixtures in `fixtures/zstd/` compress the records section of
//! [`plain_batch`] at several levels; see `fixtures/zstd/README.md` for how they were made.
//! Damaged batches (bit flips, cuts) are errors or records, never panics.
//!
//! The other direction (batches this crate compresses, read by libzstd) is checked by the unit
//! tests of `records::compression` with `--features zstd-c`, and by `benches/tests/interop.rs`
//! (the `kafka-protocol` crate reads with libzstd).

#![cfg(feature = "zstd")]

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::records::{
    Batch, BatchHeader, Compression, DecodeOptions, RecordBatchBuilder, RecordSet,
};

/// Size of the fixed magic-2 batch header (protocol guide, "Record Batch").
const HEADER: usize = 61;

/// Words of the record values: text that compresses as application records do.
const WORDS: [&str; 16] = [
    "order",
    "shipped",
    "customer",
    "42",
    "payment",
    "declined",
    "warehouse",
    "berlin",
    "status",
    "pending",
    "the",
    "a",
    "of",
    "item",
    "quantity",
    "priority",
];

/// The uncompressed batch the fixtures were made from: 1200 records of about 115 bytes (keys,
/// values of random words, a header on every third), so the records section spans two zstd
/// blocks (a block holds at most 128 KiB).
fn plain_batch() -> Bytes {
    let mut x = 2024u32;
    let mut b = RecordBatchBuilder::new();
    for i in 0..1200 {
        let mut value = String::new();
        for _ in 0..14 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            value.push_str(WORDS[(x % 16) as usize]);
            value.push(' ');
        }
        let key = format!("user-{}", i % 97);
        let headers: &[(&str, Option<&[u8]>)] = if i % 3 == 0 {
            &[("source", Some(b"fixture"))]
        } else {
            &[]
        };
        b.push(
            1_700_000_000_000 + i64::from(i),
            Some(key.as_bytes()),
            Some(value.as_bytes()),
            headers,
        )
        .unwrap();
    }
    b.build().unwrap()
}

/// `plain`'s header and `records` (a compressed records section) as a zstd batch with the
/// length and CRC-32C that fit.
fn zstd_batch(plain: &[u8], records: &[u8]) -> Bytes {
    let mut h = BatchHeader::parse(plain).unwrap();
    h.attributes |= i16::from(Compression::Zstd.id());
    h.batch_length = (HEADER - 12 + records.len()) as i32;
    let mut out = BytesMut::from(&h.to_bytes()[..]);
    out.extend_from_slice(records);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out.freeze()
}

fn fixture(name: &str) -> Vec<u8> {
    let path = format!("{}/tests/fixtures/zstd/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// (file, what the zstd tool was told): frames with and without a content size, fast to high
/// levels.
const FIXTURES: [(&str, &str); 4] = [
    (
        "records-3.zst",
        "-3, from a file (content size in the header)",
    ),
    (
        "records-19-stdin.zst",
        "-19 from standard input (no content size)",
    ),
    ("records-fast5-stdin.zst", "--fast=5 from standard input"),
    ("records-9-nochecksum.zst", "-9 --no-check, from a file"),
];

/// What the tests compare of a record: timestamp, key, value, number of headers.
type Seen = (i64, Option<Vec<u8>>, Option<Vec<u8>>, usize);

fn records_of(batch: &Batch) -> Vec<Seen> {
    batch
        .records()
        .map(|r| {
            let r = r.unwrap();
            (
                r.timestamp(),
                r.key().map(<[u8]>::to_vec),
                r.value().map(<[u8]>::to_vec),
                r.headers().count(),
            )
        })
        .collect()
}

#[test]
fn fixture_input_is_what_the_fixtures_compress() {
    // The fixtures were made from this records section; if the builder's output changed, they
    // would no longer match (`records-3.zst` holds the section's size).
    let plain = plain_batch();
    let section = &plain[HEADER..];
    if let Ok(path) = std::env::var("KAFKAWIRE_WRITE_ZSTD_FIXTURE_INPUT") {
        std::fs::write(path, section).unwrap();
    }
    assert_eq!(section.len(), 139_637);
}

#[test]
fn libzstd_batches_decode() {
    let plain = plain_batch();
    let want = records_of(&RecordSet::new(plain.clone()).next().unwrap().unwrap());
    assert_eq!(want.len(), 1200);
    let section_len = plain.len() - HEADER;
    for (file, how) in FIXTURES {
        let frame = fixture(file);
        let batch = zstd_batch(&plain, &frame);
        let got = RecordSet::new(batch.clone())
            .next()
            .unwrap()
            .unwrap_or_else(|e| panic!("{file} ({how}): {e}"));
        assert_eq!(got.compression(), Compression::Zstd);
        assert!(records_of(&got) == want, "{file} ({how})");
        // One byte less of per-batch limit: refused, naming the limit.
        let tight = DecodeOptions {
            max_decompressed_size: section_len - 1,
            ..DecodeOptions::default()
        };
        let e = RecordSet::with_options(batch, tight)
            .next()
            .unwrap()
            .unwrap_err();
        assert!(e.to_string().contains("limit"), "{file}: {e}");
    }
}

#[test]
fn a_libzstd_frame_with_a_large_window_is_bounded_by_the_cap() {
    // `zstd --long=27` from standard input: the header asks for a 128 MiB window. Under the
    // default 64 MiB cap the window may be at most 64 MiB: refused before decoding. With a
    // 256 MiB cap it decodes.
    let plain = plain_batch();
    let batch = zstd_batch(&plain, &fixture("records-long27-stdin.zst"));
    let e = RecordSet::new(batch.clone()).next().unwrap().unwrap_err();
    assert!(e.to_string().contains("window"), "{e}");
    let roomy = DecodeOptions {
        max_decompressed_size: 256 << 20,
        ..DecodeOptions::default()
    };
    let got = RecordSet::with_options(batch, roomy)
        .next()
        .unwrap()
        .unwrap();
    assert_eq!(got.record_count(), 1200);
}

#[test]
fn our_batches_round_trip() {
    let plain = plain_batch();
    let want = records_of(&RecordSet::new(plain.clone()).next().unwrap().unwrap());
    for level in [None, Some(1), Some(3), Some(19)] {
        let mut b = RecordBatchBuilder::new();
        b.compression(match level {
            Some(l) => Compression::Zstd.with_level(l),
            None => Compression::Zstd.into(),
        });
        for r in RecordSet::new(plain.clone())
            .next()
            .unwrap()
            .unwrap()
            .records()
        {
            let r = r.unwrap();
            let headers: Vec<(&str, Option<&[u8]>)> =
                r.headers().map(|h| (h.key, h.value)).collect();
            b.push(r.timestamp(), r.key(), r.value(), &headers).unwrap();
        }
        let batch = b.build().unwrap();
        let got = RecordSet::new(batch).next().unwrap().unwrap();
        assert!(records_of(&got) == want, "level {level:?}");
    }
}

/// Bit flips and cuts in the compressed records (the CRC is not checked, so they reach the
/// decoder): each batch decodes or fails, and nothing panics.
#[test]
fn damaged_frames_are_errors_not_panics() {
    let plain = plain_batch();
    let opts = DecodeOptions {
        verify_crc: false,
        ..DecodeOptions::default()
    };
    let mut ours = RecordBatchBuilder::new();
    ours.compression(Compression::Zstd);
    ours.push(0, Some(b"k"), Some(&plain[HEADER..]), &[])
        .unwrap();
    let ours = ours.build().unwrap();
    let mut frames = vec![ours[HEADER..].to_vec()];
    frames.extend(FIXTURES.iter().map(|(f, _)| fixture(f)));
    let mut x = 77u32;
    let (mut ok, mut failed) = (0, 0);
    for frame in &frames {
        let header = if frame.len() == ours.len() - HEADER {
            &ours[..]
        } else {
            &plain[..]
        };
        let mut tally = |records: Vec<u8>| {
            let batch = zstd_batch(header, &records);
            match RecordSet::with_options(batch, opts).next() {
                Some(Ok(b)) => {
                    // Records may still be malformed: iterating must not panic either.
                    let _ = b.records().filter(Result::is_ok).count();
                    ok += 1;
                }
                _ => failed += 1,
            }
        };
        for _ in 0..250 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut bad = frame.clone();
            let at = x as usize % bad.len();
            bad[at] ^= 1 << (x >> 29);
            tally(bad);
        }
        for cut in (0..frame.len()).step_by(frame.len() / 60 + 1) {
            tally(frame[..cut].to_vec());
        }
    }
    println!("damaged frames: {ok} decoded, {failed} refused");
    assert!(failed > ok);
}
