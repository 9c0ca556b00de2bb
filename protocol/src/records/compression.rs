//! Compression and bounded decompression of record payloads.
//!
//! Framings as Kafka writes them: gzip is a gzip stream; snappy uses snappy-java's "xerial"
//! framing (8-byte magic `0x82 "SNAPPY" 0x00`, int32 version, int32 compatible version, then
//! blocks of `[int32 length][raw snappy block]`), and a plain raw snappy block is also accepted;
//! LZ4 is the LZ4 frame format (KIP-57); zstd is a zstd frame (KIP-110).

#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use std::io::Read;
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use std::io::Write;

#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use bytes::BufMut;
use bytes::BytesMut;

use super::{Compression, CompressionConfig};
use crate::error::{DecodeErrorKind, EncodeError};

/// The 8-byte magic that starts a snappy-java (xerial) stream.
#[cfg(feature = "snappy")]
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// Xerial header: magic, version (int32), compatible version (int32).
#[cfg(feature = "snappy")]
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block, as snappy-java writes them.
#[cfg(feature = "snappy")]
const XERIAL_BLOCK: usize = 32 * 1024;

/// Upper bound of snappy's expansion: a 2-byte copy element yields at most 64 bytes.
#[cfg(feature = "snappy")]
const SNAPPY_MAX_RATIO: usize = 32;

/// Default gzip level (java.util.zip's default).
#[cfg(feature = "gzip")]
const GZIP_DEFAULT_LEVEL: i32 = 6;
/// Default zstd level (zstd's own default).
#[cfg(feature = "zstd")]
const ZSTD_DEFAULT_LEVEL: i32 = 3;

#[cold]
fn too_big(limit: usize) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(format!(
        "decompressed size exceeds the limit of {limit} bytes"
    ))
}

/// Reads all of `r` into a vector of at most `limit` bytes; more is an error.
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
fn read_bounded(r: impl Read, hint: usize, limit: usize) -> Result<Vec<u8>, DecodeErrorKind> {
    let mut out = Vec::with_capacity(hint.min(limit));
    r.take((limit as u64).saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| DecodeErrorKind::Decompression(e.to_string()))?;
    if out.len() > limit {
        return Err(too_big(limit));
    }
    Ok(out)
}

/// Decompresses a batch payload compressed with `codec` into at most `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeErrorKind> {
    // A guess of the output size: compressed records commonly shrink 2-4x.
    let _hint = input.len().saturating_mul(4);
    match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(too_big(limit));
            }
            Ok(input.to_vec())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => read_bounded(flate2::read::MultiGzDecoder::new(input), _hint, limit),
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy_decompress(input, limit),
        #[cfg(feature = "lz4")]
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), _hint, limit),
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let d = zstd::stream::read::Decoder::with_buffer(input)
                .map_err(|e| DecodeErrorKind::Decompression(e.to_string()))?;
            read_bounded(d, _hint, limit)
        }
        #[allow(unreachable_patterns)]
        other => Err(DecodeErrorKind::UnsupportedCompression(other.id())),
    }
}

/// Decompresses the value of a legacy (magic 0/1) wrapper message. Magic-0 LZ4 payloads from
/// old Java clients carry a frame header checksum computed over the frame magic too (KAFKA-3160);
/// such a checksum is corrected before decoding.
pub(crate) fn decompress_legacy(
    codec: Compression,
    magic: i8,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeErrorKind> {
    #[cfg(feature = "lz4")]
    if codec == Compression::Lz4
        && magic == 0
        && let Some(fixed) = fix_kafka3160_header_checksum(input)
    {
        return decompress(codec, &fixed, limit);
    }
    let _ = magic;
    decompress(codec, input, limit)
}

/// If `frame`'s LZ4 header checksum is the one computed over bytes 0.. instead of 4.. (the
/// KAFKA-3160 bug of magic-0 LZ4), a copy with the correct checksum.
#[cfg(feature = "lz4")]
fn fix_kafka3160_header_checksum(frame: &[u8]) -> Option<Vec<u8>> {
    let flg = *frame.get(4)?;
    // FLG bit 3: content size (8 bytes) follows BD; bit 0: dictionary id (4 bytes).
    let hc_at = 6 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 };
    let stored = *frame.get(hc_at)?;
    let right = (xxh32_small(&frame[4..hc_at]) >> 8) as u8;
    let broken = (xxh32_small(&frame[..hc_at]) >> 8) as u8;
    if stored == right || stored != broken {
        return None;
    }
    let mut fixed = frame.to_vec();
    fixed[hc_at] = right;
    Some(fixed)
}

/// XXH32 with seed 0 of an input shorter than 16 bytes (the LZ4 frame descriptor), per the
/// xxHash specification's short-input path.
#[cfg(feature = "lz4")]
fn xxh32_small(data: &[u8]) -> u32 {
    const P1: u32 = 0x9E37_79B1;
    const P2: u32 = 0x85EB_CA77;
    const P3: u32 = 0xC2B2_AE3D;
    const P4: u32 = 0x27D4_EB2F;
    const P5: u32 = 0x1656_67B1;
    debug_assert!(data.len() < 16);
    let mut acc = P5.wrapping_add(data.len() as u32);
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        let lane = u32::from_le_bytes([w[0], w[1], w[2], w[3]]);
        acc = acc
            .wrapping_add(lane.wrapping_mul(P3))
            .rotate_left(17)
            .wrapping_mul(P4);
    }
    for &b in words.remainder() {
        acc = acc
            .wrapping_add((b as u32).wrapping_mul(P5))
            .rotate_left(11)
            .wrapping_mul(P1);
    }
    acc ^= acc >> 15;
    acc = acc.wrapping_mul(P2);
    acc ^= acc >> 13;
    acc = acc.wrapping_mul(P3);
    acc ^ (acc >> 16)
}

#[cfg(feature = "snappy")]
fn snappy_error(e: snap::Error) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(format!("snappy: {e}"))
}

/// Decompresses one raw snappy block onto the end of `out`, keeping `out` within `limit`.
#[cfg(feature = "snappy")]
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), DecodeErrorKind> {
    let n = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if n > limit - out.len() {
        return Err(too_big(limit));
    }
    // The length is read off the wire: before allocating it, check that the block could expand
    // that far (a snappy element of at least 2 bytes yields at most 64 bytes).
    if n > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(DecodeErrorKind::Decompression(format!(
            "snappy: a {}-byte block cannot hold {n} bytes",
            block.len()
        )));
    }
    let start = out.len();
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(snappy_error)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(feature = "snappy")]
fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, DecodeErrorKind> {
    let mut out = Vec::new();
    if !input.starts_with(&XERIAL_MAGIC) {
        snappy_block(input, &mut out, limit)?;
        return Ok(out);
    }
    let Some(mut rest) = input.get(XERIAL_HEADER_LEN..) else {
        return Err(DecodeErrorKind::Decompression(
            "snappy: xerial header is cut short".into(),
        ));
    };
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(DecodeErrorKind::Decompression(
                "snappy: xerial block length is cut short".into(),
            ));
        };
        let len = u32::from_be_bytes(*len) as usize;
        let Some(block) = tail.get(..len) else {
            return Err(DecodeErrorKind::Decompression(format!(
                "snappy: xerial block of {len} bytes overruns the {} left",
                tail.len()
            )));
        };
        snappy_block(block, &mut out, limit)?;
        rest = &tail[len..];
    }
    Ok(out)
}

fn encode_error(codec: Compression, e: impl std::fmt::Display) -> EncodeError {
    EncodeError::Invalid(format!("{codec} compression failed: {e}"))
}

/// Checks that `config`'s codec is compiled in and its level is legal.
pub(crate) fn check_config(config: CompressionConfig) -> Result<(), EncodeError> {
    let codec = config.codec;
    if !codec.is_enabled() {
        return Err(EncodeError::Invalid(format!(
            "compression {codec} is not enabled (cargo feature \"{codec}\")"
        )));
    }
    let Some(level) = config.level else {
        return Ok(());
    };
    let ok = match codec {
        Compression::Gzip => (1..=9).contains(&level),
        #[cfg(feature = "zstd")]
        Compression::Zstd => zstd::compression_level_range().contains(&level),
        _ => true,
    };
    if ok {
        Ok(())
    } else {
        Err(EncodeError::Invalid(format!(
            "compression level {level} is out of range for {codec}"
        )))
    }
}

/// Appends `input` compressed with `config` to `out`.
pub(crate) fn compress(
    config: CompressionConfig,
    input: &[u8],
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    check_config(config)?;
    let codec = config.codec;
    match codec {
        Compression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => {
            let level = config.level.unwrap_or(GZIP_DEFAULT_LEVEL) as u32;
            let mut enc =
                flate2::write::GzEncoder::new(out.writer(), flate2::Compression::new(level));
            enc.write_all(input).map_err(|e| encode_error(codec, e))?;
            enc.finish().map_err(|e| encode_error(codec, e))?;
            Ok(())
        }
        #[cfg(feature = "snappy")]
        Compression::Snappy => {
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes()); // version
            out.extend_from_slice(&1i32.to_be_bytes()); // compatible version
            let mut enc = snap::raw::Encoder::new();
            for chunk in input.chunks(XERIAL_BLOCK) {
                let at = out.len();
                out.resize(at + 4 + snap::raw::max_compress_len(chunk.len()), 0);
                let n = enc
                    .compress(chunk, &mut out[at + 4..])
                    .map_err(|e| encode_error(codec, e))?;
                out[at..at + 4].copy_from_slice(&(n as u32).to_be_bytes());
                out.truncate(at + 4 + n);
            }
            Ok(())
        }
        #[cfg(feature = "lz4")]
        Compression::Lz4 => {
            use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
            // Kafka's Java reader needs independent blocks; 64 KiB is its block size.
            let info = FrameInfo::new()
                .block_size(BlockSize::Max64KB)
                .block_mode(BlockMode::Independent);
            let mut enc = FrameEncoder::with_frame_info(info, out.writer());
            enc.write_all(input).map_err(|e| encode_error(codec, e))?;
            enc.finish().map_err(|e| encode_error(codec, e))?;
            Ok(())
        }
        #[cfg(feature = "zstd")]
        Compression::Zstd => {
            let level = config.level.unwrap_or(ZSTD_DEFAULT_LEVEL);
            let mut enc = zstd::stream::write::Encoder::new(out.writer(), level)
                .map_err(|e| encode_error(codec, e))?;
            enc.set_pledged_src_size(Some(input.len() as u64))
                .map_err(|e| encode_error(codec, e))?;
            enc.write_all(input).map_err(|e| encode_error(codec, e))?;
            enc.finish().map_err(|e| encode_error(codec, e))?;
            Ok(())
        }
        #[allow(unreachable_patterns)]
        _ => Err(encode_error(codec, "codec not compiled in")),
    }
}

#[cfg(all(
    test,
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
mod tests {
    use super::*;

    fn sample() -> Vec<u8> {
        (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        let data = sample();
        for codec in Compression::ALL {
            let mut out = BytesMut::new();
            compress(codec.into(), &data, &mut out).unwrap();
            let back = decompress(codec, &out, data.len()).unwrap();
            assert_eq!(back, data, "{codec}");
            if codec != Compression::None {
                let e = decompress(codec, &out, data.len() - 1).unwrap_err();
                assert!(
                    matches!(e, DecodeErrorKind::Decompression(_)),
                    "{codec}: {e:?}"
                );
            }
        }
    }

    #[test]
    fn levels_are_checked() {
        let mut out = BytesMut::new();
        assert!(compress(Compression::Gzip.with_level(10), b"x", &mut out).is_err());
        assert!(compress(Compression::Gzip.with_level(1), b"x", &mut out).is_ok());
        assert!(compress(Compression::Zstd.with_level(99), b"x", &mut out).is_err());
        assert!(compress(Compression::Zstd.with_level(19), b"x", &mut out).is_ok());
        assert!(compress(Compression::Lz4.with_level(9), b"x", &mut out).is_ok());
    }

    #[test]
    fn snappy_reads_raw_blocks_and_rejects_cut_xerial_blocks() {
        let data = sample();
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, usize::MAX).unwrap(),
            data
        );
        let mut x = BytesMut::new();
        compress(Compression::Snappy.into(), &data, &mut x).unwrap();
        assert!(x.starts_with(&XERIAL_MAGIC));
        assert!(decompress(Compression::Snappy, &x[..x.len() - 1], usize::MAX).is_err());
        assert!(decompress(Compression::Snappy, &x[..10], usize::MAX).is_err());
        // A 6-byte block claiming 64 MiB is refused before anything is allocated.
        let liar = [0x80, 0x80, 0x80, 0x20, 0x00, 0x61];
        let e = decompress(Compression::Snappy, &liar, usize::MAX).unwrap_err();
        assert!(e.to_string().contains("cannot hold"), "{e}");
    }

    #[test]
    fn magic0_lz4_broken_header_checksum_is_accepted() {
        let data = sample();
        let mut frame = BytesMut::new();
        compress(Compression::Lz4.into(), &data, &mut frame).unwrap();
        // lz4_flex writes a correct checksum: our xxh32 must agree with it.
        let hc_at = 6 + if frame[4] & 0x08 != 0 { 8 } else { 0 };
        assert_eq!(frame[hc_at], (xxh32_small(&frame[4..hc_at]) >> 8) as u8);
        let mut broken = frame.to_vec();
        broken[hc_at] = (xxh32_small(&frame[..hc_at]) >> 8) as u8;
        assert!(decompress(Compression::Lz4, &broken, usize::MAX).is_err());
        let back = decompress_legacy(Compression::Lz4, 0, &broken, usize::MAX).unwrap();
        assert_eq!(back, data);
        assert!(decompress_legacy(Compression::Lz4, 1, &broken, usize::MAX).is_err());
        let back = decompress_legacy(Compression::Lz4, 0, &frame, usize::MAX).unwrap();
        assert_eq!(back, data);
    }

    #[test]
    fn xxh32_known_values() {
        // Reference values of XXH32 with seed 0 from the xxHash test suite.
        assert_eq!(xxh32_small(b""), 0x02CC_5D05);
        assert_eq!(xxh32_small(b"a"), 0x550D_7456);
        assert_eq!(xxh32_small(b"abc"), 0x32D1_53FF);
    }

    #[test]
    fn a_bomb_stops_at_the_limit() {
        let zeros = vec![0u8; 8 << 20];
        for codec in [
            Compression::Gzip,
            Compression::Lz4,
            Compression::Zstd,
            Compression::Snappy,
        ] {
            let mut out = BytesMut::new();
            compress(codec.into(), &zeros, &mut out).unwrap();
            let e = decompress(codec, &out, 1 << 20).unwrap_err();
            assert!(e.to_string().contains("limit"), "{codec}: {e}");
        }
    }
}
