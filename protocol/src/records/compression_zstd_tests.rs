//! The pure-Rust zstd path, called directly (it is compiled in both builds under `cfg(test)`).

use super::*;

/// Text of random words (deterministic): compressible as record values are.
pub(super) fn word_salad(len: usize, seed: u32) -> Vec<u8> {
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
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 16);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        out.extend_from_slice(WORDS[(x % 16) as usize].as_bytes());
        out.push(if x.is_multiple_of(7) { b'\n' } else { b' ' });
    }
    out.truncate(len);
    out
}

fn rust(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeErrorKind> {
    charge(
        zstd_rust_decompress(input, input.len() * 4, limit, limit),
        input.len(),
        limit,
        limit,
        None,
    )
}

fn compressed(data: &[u8]) -> Vec<u8> {
    let mut out = BytesMut::new();
    zstd_rust_compress(None, data, &mut out);
    out.to_vec()
}

/// Frame header descriptor byte and window descriptor of a frame without content size.
fn header(fhd: u8, rest: &[u8]) -> Vec<u8> {
    let mut f = ZSTD_MAGIC.to_le_bytes().to_vec();
    f.push(fhd);
    f.extend_from_slice(rest);
    f
}

#[test]
fn frame_headers_are_read_as_rfc_8878_says() {
    let h = |f: &[u8]| zstd_frame_header(f).ok();
    // Window descriptor: exponent 11 (2^21), mantissa 0 and 3 (+3/8).
    let w21 = ZstdFrameHeader {
        window: 1 << 21,
        content_size: None,
    };
    assert_eq!(h(&header(0x00, &[11 << 3])), Some(w21));
    assert_eq!(
        h(&header(0x00, &[(11 << 3) | 3])).unwrap().window,
        (1 << 21) + 3 * (1 << 18)
    );
    // Dictionary id of 1, 2 and 4 bytes, then a 2-byte content size (+256).
    for (flag, len) in [(1u8, 1usize), (2, 2), (3, 4)] {
        let mut rest = vec![11 << 3];
        rest.extend(std::iter::repeat_n(7, len));
        rest.extend_from_slice(&[0x10, 0x00]);
        let got = h(&header(0x40 | flag, &rest)).unwrap();
        assert_eq!(got.content_size, Some(0x10 + 256), "dict id flag {flag}");
        assert_eq!(got.window, 1 << 21);
    }
    // Single segment: no window descriptor; the content size is the window (1, 4, 8 bytes).
    let one = h(&header(0x20, &[200])).unwrap();
    assert_eq!((one.window, one.content_size), (200, Some(200)));
    let four = h(&header(0xa0, &5_000_000u32.to_le_bytes())).unwrap();
    assert_eq!(four.window, 5_000_000);
    let eight = h(&header(0xe0, &(1u64 << 40).to_le_bytes())).unwrap();
    assert_eq!(eight.content_size, Some(1 << 40));
    // Cut short anywhere, or the reserved bit set: an error, no panic.
    let full = header(0xe3, &[1, 2, 3, 4, 1, 2, 3, 4, 5, 6, 7, 8]);
    for cut in 0..full.len() {
        assert!(h(&full[..cut]).is_none(), "cut {cut}");
    }
    assert!(h(&full).is_some());
    assert!(h(&header(0x08, &[11 << 3])).is_none());
}

#[test]
fn round_trips_across_block_boundaries() {
    for len in [
        0,
        1,
        100,
        (128 << 10) - 1,
        128 << 10,
        (128 << 10) + 1,
        1 << 20,
    ] {
        let data = word_salad(len, len as u32 + 1);
        let frame = compressed(&data);
        assert_eq!(rust(&frame, len.max(1)).unwrap(), data, "{len}");
        if len > 0 {
            let e = rust(&frame, len - 1).unwrap_err();
            assert!(e.to_string().contains("limit"), "{len}: {e}");
        }
    }
}

#[test]
fn concatenated_and_skippable_frames_are_read() {
    let a = word_salad(5000, 1);
    let b = word_salad(300_000, 2);
    let mut input = compressed(&a);
    input.extend_from_slice(&0x184D_2A5Au32.to_le_bytes());
    input.extend_from_slice(&3u32.to_le_bytes());
    input.extend_from_slice(b"xyz");
    input.extend_from_slice(&compressed(&b));
    assert_eq!(rust(&input, 1 << 20).unwrap(), [a, b].concat());
    // No input at all is an error, as with libzstd.
    assert!(rust(&input[..0], 10).is_err());
    // A skippable frame cut short, and bytes that are no frame after a good one.
    let skip = [0x5a, 0x2a, 0x4d, 0x18, 9, 0, 0, 0, 1];
    assert!(rust(&skip, 100).is_err());
    let mut tail = compressed(b"hello");
    tail.extend_from_slice(&[1, 2, 3]);
    assert!(
        rust(&tail, 100)
            .unwrap_err()
            .to_string()
            .contains("not a frame")
    );
}

#[test]
fn corruption_is_detected() {
    let data = word_salad(200_000, 3);
    let frame = compressed(&data);
    // The content checksum (last 4 bytes) no longer matches.
    let mut bad = frame.clone();
    let n = bad.len();
    bad[n - 1] ^= 0x55;
    let e = rust(&bad, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("checksum"), "{e}");
    // Cut short anywhere: an error, never a panic or a partial result.
    for cut in (0..frame.len()).step_by(97) {
        assert!(
            rust(&frame[..cut], 1 << 20).is_err() || cut == 0,
            "cut {cut}"
        );
    }
    // An RLE block of 1000 bytes in a frame whose header says 999.
    let mut liar = header(0x40, &[11 << 3]);
    liar.extend_from_slice(&(999u16 - 256).to_le_bytes());
    let block = 1 | (1 << 1) | (1000 << 3);
    liar.extend_from_slice(&(block as u32).to_le_bytes()[..3]);
    liar.push(b'z');
    let e = rust(&liar, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("header says 999"), "{e}");
}

#[test]
fn headers_are_checked_before_decoding() {
    // The frames below have no blocks at all: had the decoder started on them, the error
    // would be a missing block, not the limit or the window.
    // A content size of 10 MiB under a 1 MiB limit.
    let mut big = header(0x80, &[11 << 3]);
    big.extend_from_slice(&(10u32 << 20).to_le_bytes());
    let e = rust(&big, 1 << 20).unwrap_err();
    assert!(e.to_string().contains("limit of 1048576"), "{e}");
    // A single-segment frame of 2 GiB: its window is its content size.
    let mut huge = header(0xa0, &[]);
    huge.extend_from_slice(&(2u32 << 30).to_le_bytes());
    let e = rust(&huge, 64 << 20).unwrap_err();
    assert!(e.to_string().contains("window of 2147483648 bytes"), "{e}");
    // The largest window descriptor (2^41 + 7 x 2^38).
    let e = rust(&header(0x00, &[0xff]), usize::MAX).unwrap_err();
    assert!(e.to_string().contains("window"), "{e}");
}

#[test]
fn the_window_kept_counts_against_the_limit() {
    // Two RLE blocks of 100 KiB in a frame with a 128 KiB window, and the input ends there
    // (the last block is missing). After the two blocks the decoder has let 72 KiB go and
    // keeps 128 KiB, which is output to come: under a limit of 200 KiB - 1 that is already
    // too much, and decoding stops before it reaches the missing block.
    let mut f = header(0x00, &[7 << 3]);
    for _ in 0..2 {
        f.extend_from_slice(&((1u32 << 1) | ((100 << 10) << 3)).to_le_bytes()[..3]);
        f.push(b'q');
    }
    let e = rust(&f, (200 << 10) - 1).unwrap_err().to_string();
    assert!(e.contains("limit"), "{e}");
    let e = rust(&f, 200 << 10).unwrap_err().to_string();
    assert!(!e.contains("limit"), "{e}");
}

#[test]
fn every_level_compresses_with_the_one_level_there_is() {
    let data = word_salad(50_000, 4);
    let fastest = compressed(&data);
    for level in [*ZSTD_LEVELS.start(), -1, 0, 1, 3, 19, *ZSTD_LEVELS.end()] {
        let mut out = BytesMut::new();
        zstd_rust_compress(Some(level), &data, &mut out);
        assert_eq!(out.to_vec(), fastest, "level {level}");
    }
    assert!(fastest.len() < data.len() / 2, "{} bytes", fastest.len());
}
