//! Batches compressed by one zstd implementation decode with the other, and both treat
//! hostile frames alike (run with `--features zstd-c`).

use super::zstd_rust_tests::word_salad;
use super::*;

/// The per-batch cap, which bounds the window: the default one.
const CAP: usize = super::super::DEFAULT_MAX_DECOMPRESSED_SIZE;

fn rust(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeErrorKind> {
    let r = zstd_rust_decompress(input, input.len() * 4, limit, CAP);
    charge(r, input.len(), CAP, limit, None)
}

fn c(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeErrorKind> {
    let r = zstd_c_decompress(input, input.len() * 4, limit, CAP);
    charge(r, input.len(), CAP, limit, None)
}

/// Payloads: text, zeros, noise, and a mix with long-range repeats.
fn payloads() -> Vec<Vec<u8>> {
    let mut x = 99u32;
    let mut noise = |n: usize| -> Vec<u8> {
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    };
    let mut mixed = word_salad(100_000, 7);
    mixed.extend(noise(50_000));
    mixed.extend_from_within(..120_000);
    let mut out = vec![
        Vec::new(),
        b"x".to_vec(),
        vec![0; 300_000],
        noise(200_000),
        mixed,
    ];
    for len in [1000, (128 << 10) + 1, 700_000] {
        out.push(word_salad(len, len as u32));
    }
    out
}

#[test]
fn the_level_range_is_libzstds() {
    assert_eq!(ZSTD_LEVELS, zstd::compression_level_range());
}

#[test]
fn rust_frames_decode_with_libzstd() {
    for data in payloads() {
        let mut frame = BytesMut::new();
        zstd_rust_compress(None, &data, &mut frame);
        let limit = data.len().max(1);
        assert!(c(&frame, limit).unwrap() == data, "{} bytes", data.len());
        assert!(zstd::stream::decode_all(&frame[..]).unwrap() == data);
    }
}

#[test]
fn libzstd_frames_decode_in_rust() {
    for data in payloads() {
        for level in [-5, 1, 3, 9, 19] {
            if level > 9 && data.len() > 200_000 {
                continue; // slow without optimisations, and nothing new
            }
            let mut frame = BytesMut::new();
            zstd_c_compress(Some(level), &data, &mut frame).unwrap();
            let limit = data.len().max(1);
            let what = format!("{} bytes at level {level}", data.len());
            assert!(rust(&frame, limit).expect(&what) == data, "{what}");
            if !data.is_empty() {
                let e = rust(&frame, data.len() - 1).unwrap_err();
                assert!(e.to_string().contains("limit"), "{what}: {e}");
            }
            // Without a content size in the header (as a streaming writer makes them).
            let plain = zstd::stream::encode_all(&data[..], level).unwrap();
            let mut streamed = Vec::new();
            let mut enc = zstd::stream::write::Encoder::new(&mut streamed, level).unwrap();
            enc.include_contentsize(false).unwrap();
            enc.include_checksum(true).unwrap();
            enc.write_all(&data).unwrap();
            enc.finish().unwrap();
            assert!(rust(&plain, limit).unwrap() == data, "{what}");
            assert!(rust(&streamed, limit).unwrap() == data, "{what}");
        }
    }
}

/// Cut and corrupted frames: the Rust decoder accepts only what libzstd accepts, and then
/// gives the same bytes; neither panics. It may refuse more: it checks that a Huffman
/// literals section holds the count of literals its header says, which libzstd does not
/// always check (such a frame is corrupt; libzstd's output from it is not the input).
#[test]
fn both_decoders_agree_on_damaged_frames() {
    let data = word_salad(300_000, 11);
    let mut frames = Vec::new();
    let mut ours = BytesMut::new();
    zstd_rust_compress(None, &data, &mut ours);
    frames.push(ours.to_vec());
    for level in [1, 3] {
        let mut theirs = BytesMut::new();
        zstd_c_compress(Some(level), &data, &mut theirs).unwrap();
        frames.push(theirs.to_vec());
    }
    let mut disagreements = Vec::new();
    let mut stricter = 0;
    for (i, frame) in frames.iter().enumerate() {
        let mut check = |input: &[u8], what: String| {
            let (r, k) = (rust(input, 1 << 20), c(input, 1 << 20));
            let same = match (&r, &k) {
                (Ok(a), Ok(b)) => a == b,
                (Err(_), Err(_)) => true,
                (Err(_), Ok(b)) => {
                    stricter += 1;
                    *b != data
                }
                (Ok(_), Err(_)) => false,
            };
            if !same {
                disagreements.push(format!(
                    "frame {i} {what}: rust {:?} / libzstd {:?}",
                    r.map(|v| v.len()),
                    k.map(|v| v.len())
                ));
            }
        };
        for cut in (0..frame.len()).step_by(frame.len() / 150 + 1) {
            check(&frame[..cut], format!("cut at {cut}"));
        }
        let mut x = 7u32;
        for _ in 0..300 {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            let mut bad = frame.clone();
            let at = x as usize % bad.len();
            bad[at] ^= 1 << (x >> 28 & 7);
            check(&bad, format!("bit flip at {at}"));
        }
    }
    println!("refused by the Rust decoder only: {stricter}");
    assert!(disagreements.is_empty(), "{disagreements:#?}");
}

#[test]
fn edge_inputs_are_treated_alike() {
    let mut skippable_only = 0x184D_2A50u32.to_le_bytes().to_vec();
    skippable_only.extend_from_slice(&2u32.to_le_bytes());
    skippable_only.extend_from_slice(b"ab");
    let mut frame = BytesMut::new();
    zstd_c_compress(None, b"hello", &mut frame).unwrap();
    let mut trailing = frame.to_vec();
    trailing.extend_from_slice(&[0, 0, 0]);
    let mut two = frame.to_vec();
    two.extend_from_slice(&frame);
    for (what, input) in [
        ("empty", Vec::new()),
        ("skippable only", skippable_only),
        ("trailing bytes", trailing),
        ("two frames", two),
        ("magic only", ZSTD_MAGIC.to_le_bytes().to_vec()),
    ] {
        let (r, k) = (rust(&input, 100), c(&input, 100));
        assert_eq!(r.is_ok(), k.is_ok(), "{what}: rust {r:?} / libzstd {k:?}");
        if let (Ok(a), Ok(b)) = (r, k) {
            assert_eq!(a, b, "{what}");
        }
    }
}
