//! Compression and bounded decompression of record payloads.
//!
//! Framings as Kafka writes them: gzip is a gzip stream; snappy uses snappy-java's "xerial"
//! framing (8-byte magic `0x82 "SNAPPY" 0x00`, int32 version, int32 compatible version, then
//! blocks of `[int32 length][raw snappy block]`), and a plain raw snappy block is also accepted;
//! LZ4 is the LZ4 frame format (KIP-57); zstd is a zstd frame (KIP-110).
//!
//! Decompression is bounded: at most the per-batch cap (and what a [`DecompressionBudget`] has
//! left), the output vector grows with the bytes produced and never past the limit, zstd frames
//! may not ask for a window above the cap, and LZ4 frames are decoded block by block straight
//! into the output (no buffers sized from a header's block size).
//!
//! zstd has two implementations, chosen by cargo features: `zstd` (on by default) is the
//! pure-Rust `ruzstd` (no C compiler needed), `zstd-c` is libzstd through the `zstd` crate
//! (compiled from C; faster, and it honours every compression level). `zstd-c` turns `zstd` on
//! too, and when it is on libzstd does all the zstd work. Both read and write plain zstd frames
//! (RFC 8878), so batches written by one are read by the other and by every Kafka client.

#[cfg(any(feature = "gzip", feature = "zstd-c"))]
use std::io::Read;
#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd-c"))]
use std::io::Write;

#[cfg(any(feature = "gzip", feature = "lz4", feature = "zstd"))]
use bytes::BufMut;
use bytes::BytesMut;

use super::{Compression, CompressionConfig, DecompressionBudget};
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
/// Default zstd level (zstd's own default, and the Java client's).
#[cfg(feature = "zstd-c")]
const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// The zstd levels a [`CompressionConfig`] may ask for, with either implementation: libzstd's
/// `ZSTD_minCLevel()..=ZSTD_maxCLevel()` (zstd 1.5: -131072 to 22; negative levels are the
/// fast modes, 0 means the default, 3). The same range is accepted without libzstd so that a
/// configuration valid in one build is valid in the other.
#[cfg(feature = "zstd")]
const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -(1 << 17)..=22;

/// Why decompression stopped early.
pub(crate) enum Stop {
    /// The output would pass the limit.
    TooBig,
    /// The input is not valid for the codec.
    Failed(DecodeErrorKind),
}

impl From<DecodeErrorKind> for Stop {
    fn from(k: DecodeErrorKind) -> Self {
        Stop::Failed(k)
    }
}

/// The per-batch cap error.
#[cold]
fn too_big(limit: usize, input: usize) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(format!(
        "decompressed size exceeds the limit of {limit} bytes per batch ({input} bytes compressed)"
    ))
}

/// Reads all of `r` into a vector of at most `limit` bytes; more is [`Stop::TooBig`]. The
/// vector starts at `hint` bytes and doubles as output arrives, but never past `limit + 1`
/// (one byte more tells that the limit is passed).
#[cfg(any(feature = "gzip", feature = "zstd-c"))]
fn read_bounded(
    mut r: impl Read,
    hint: usize,
    limit: usize,
    error: impl Fn(std::io::Error) -> DecodeErrorKind,
) -> Result<Vec<u8>, Stop> {
    let end = limit.saturating_add(1);
    let mut out = Vec::with_capacity(hint.clamp(1, end));
    loop {
        let room = out.capacity() - out.len();
        // Fill the room exactly: `read_to_end` only grows the vector past it to see EOF, and
        // a `take` that is used up is EOF.
        let n = (&mut r)
            .take(room as u64)
            .read_to_end(&mut out)
            .map_err(|e| Stop::Failed(error(e)))?;
        if out.len() > limit {
            return Err(Stop::TooBig);
        }
        if n < room {
            return Ok(out);
        }
        let grow = out.len().max(8 << 10).min(end - out.len());
        out.reserve_exact(grow);
    }
}

#[cfg(feature = "gzip")]
fn io_error(e: std::io::Error) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(e.to_string())
}

/// The largest zstd window (log2) a frame may ask for when batches may inflate to `cap` bytes:
/// the decoder's buffer follows the window, so a tiny frame cannot make it allocate more than
/// the cap (a 72-byte frame can ask for 2^31). Never below 2^21, the window of Kafka's default
/// level (3) when the producer does not say the size: such batches decode under any cap. With
/// the default 64 MiB cap that is 2^26, every level but 22 (--ultra, 2^27).
#[cfg(feature = "zstd")]
fn zstd_window_log_max(cap: usize) -> u32 {
    (usize::BITS - cap.saturating_sub(1).leading_zeros()).clamp(21, 31)
}

/// Decompresses `input` into at most `limit` bytes; `cap` (the per-batch cap, at least
/// `limit`) also bounds zstd's window.
fn inflate(codec: Compression, input: &[u8], limit: usize, cap: usize) -> Result<Vec<u8>, Stop> {
    // A guess of the output size: compressed records commonly shrink 2-4x.
    let _hint = input.len().saturating_mul(4);
    let _ = cap;
    let out = match codec {
        Compression::None => {
            if input.len() > limit {
                return Err(Stop::TooBig);
            }
            input.to_vec()
        }
        #[cfg(feature = "gzip")]
        Compression::Gzip => read_bounded(
            flate2::read::MultiGzDecoder::new(input),
            _hint,
            limit,
            io_error,
        )?,
        #[cfg(feature = "snappy")]
        Compression::Snappy => snappy_decompress(input, limit)?,
        #[cfg(feature = "lz4")]
        Compression::Lz4 => lz4_decompress(input, _hint, limit, false)?,
        #[cfg(feature = "zstd-c")]
        Compression::Zstd => zstd_c_decompress(input, _hint, limit, cap)?,
        #[cfg(all(feature = "zstd", not(feature = "zstd-c")))]
        Compression::Zstd => zstd_rust_decompress(input, _hint, limit, cap)?,
        #[allow(unreachable_patterns)]
        other => {
            return Err(Stop::Failed(DecodeErrorKind::UnsupportedCompression(
                other.id(),
            )));
        }
    };
    Ok(out)
}

/// The message of a frame whose window is over the bound of [`zstd_window_log_max`].
#[cfg(feature = "zstd")]
#[cold]
fn zstd_window_error(what: &str, log: u32, cap: usize) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(format!(
        "zstd: {what} (a frame's window may be at most {} bytes, from the per-batch decompression limit of {cap} bytes)",
        1u64 << log
    ))
}

/// zstd through libzstd (`zstd-c`): its streaming decoder with `ZSTD_d_windowLogMax` set from
/// `cap`, read into a bounded vector.
#[cfg(feature = "zstd-c")]
fn zstd_c_decompress(input: &[u8], hint: usize, limit: usize, cap: usize) -> Result<Vec<u8>, Stop> {
    let log = zstd_window_log_max(cap);
    let zstd_error = move |e: std::io::Error| {
        let text = e.to_string();
        if text.contains("memory") {
            zstd_window_error(&text, log, cap)
        } else {
            DecodeErrorKind::Decompression(format!("zstd: {text}"))
        }
    };
    let mut d = zstd::stream::read::Decoder::with_buffer(input).map_err(zstd_error)?;
    d.window_log_max(log).map_err(zstd_error)?;
    read_bounded(d, hint, limit, zstd_error)
}

/// Magic number of a zstd frame (RFC 8878, 3.1.1).
#[cfg(feature = "zstd")]
const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames: magic 0x184D2A50-0x184D2A5F, then a 4-byte size (RFC 8878, 3.1.2).
#[cfg(feature = "zstd")]
const ZSTD_SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
#[cfg(feature = "zstd")]
const ZSTD_SKIPPABLE: u32 = 0x184D_2A50;
/// Output the pure-Rust decoder produces between two checks of the limit: one block at most
/// (RFC 8878, 3.1.1.2.4: `Block_Maximum_Size` is 128 KiB).
#[cfg(feature = "zstd")]
const ZSTD_CHUNK: usize = 128 << 10;

/// What a zstd frame header (RFC 8878, 3.1.1.1) announces about memory.
#[cfg(feature = "zstd")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ZstdFrameHeader {
    /// `Window_Size`: how far back the frame's matches may reach, which is what a decoder
    /// keeps (for a single-segment frame, its content size).
    window: u64,
    /// `Frame_Content_Size`, when the header has one.
    content_size: Option<u64>,
}

/// Reads the header of the zstd frame at the start of `input` (its magic number is checked by
/// the caller) without decoding anything, so that the window and content size can be checked
/// before the decoder allocates.
#[cfg(feature = "zstd")]
fn zstd_frame_header(input: &[u8]) -> Result<ZstdFrameHeader, Stop> {
    let cut = || {
        Stop::Failed(DecodeErrorKind::Decompression(
            "zstd: frame header is cut short".into(),
        ))
    };
    let fhd = *input.get(4).ok_or_else(cut)?;
    if fhd & 0x08 != 0 {
        return Err(Stop::Failed(DecodeErrorKind::Decompression(
            "zstd: the reserved bit of the frame header descriptor is set".into(),
        )));
    }
    let single_segment = fhd & 0x20 != 0;
    let mut at = 5;
    let mut window = None;
    if !single_segment {
        let wd = *input.get(at).ok_or_else(cut)?;
        at += 1;
        let log = 10 + u32::from(wd >> 3);
        let base = 1u64 << log;
        window = Some(base + (base / 8) * u64::from(wd & 0x07));
    }
    at += [0, 1, 2, 4][usize::from(fhd & 0x03)];
    let fcs_len = match fhd >> 6 {
        0 if single_segment => 1,
        0 => 0,
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let content_size = if fcs_len == 0 {
        None
    } else {
        let field = input.get(at..at + fcs_len).ok_or_else(cut)?;
        let mut le = [0u8; 8];
        le[..fcs_len].copy_from_slice(field);
        let n = u64::from_le_bytes(le);
        Some(if fcs_len == 2 { n + 256 } else { n })
    };
    match (window, content_size) {
        (Some(window), _) => Ok(ZstdFrameHeader {
            window,
            content_size,
        }),
        (None, Some(size)) => Ok(ZstdFrameHeader {
            window: size,
            content_size,
        }),
        // A single-segment frame always has a content size (fcs_len is at least 1).
        (None, None) => Err(cut()),
    }
}

/// Grows `out` so that it can take `needed` bytes: doubling, but never past `end`.
#[cfg(feature = "zstd")]
fn grow_to(out: &mut Vec<u8>, needed: usize, end: usize) {
    if needed > out.capacity() {
        let target = needed.max(out.capacity().saturating_mul(2).min(end));
        out.reserve_exact(target - out.len());
    }
}

/// zstd in pure Rust (`ruzstd`), bounded as the libzstd path is: each frame's header is read
/// first, and a frame whose window is over `2^zstd_window_log_max(cap)` is refused before
/// anything is allocated (the decoder keeps a window's worth of output), as is a frame whose
/// announced content size does not fit in `limit`. Frames are then decoded one block at a time
/// (at most [`ZSTD_CHUNK`] bytes), moving what the window no longer needs into the output and
/// checking the limit after each step, so the decoder holds at most the window plus a block
/// and the output at most `limit` bytes. Content checksums and announced content sizes are
/// checked; concatenated and skippable frames are read as libzstd reads them.
#[cfg(feature = "zstd")]
#[cfg_attr(all(feature = "zstd-c", not(test)), allow(dead_code))]
fn zstd_rust_decompress(
    input: &[u8],
    hint: usize,
    limit: usize,
    cap: usize,
) -> Result<Vec<u8>, Stop> {
    use ruzstd::decoding::{BlockDecodingStrategy, FrameDecoder};
    let failed = |text: String| Stop::Failed(DecodeErrorKind::Decompression(text));
    let log = zstd_window_log_max(cap);
    let max_window = 1u64 << log;
    let end = limit.saturating_add(1);
    if input.is_empty() {
        // As libzstd: a zstd payload holds at least one frame.
        return Err(failed("zstd: incomplete frame (no input)".into()));
    }
    let mut out: Vec<u8> = Vec::with_capacity(hint.clamp(1, end));
    let mut rest = input;
    while !rest.is_empty() {
        let Some(magic) = rest.first_chunk::<4>().map(|m| u32::from_le_bytes(*m)) else {
            return Err(failed(format!(
                "zstd: {} bytes after the last frame are not a frame",
                rest.len()
            )));
        };
        if magic & ZSTD_SKIPPABLE_MASK == ZSTD_SKIPPABLE {
            let size = rest
                .get(4..8)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize);
            match size.and_then(|n| rest.get(n.saturating_add(8)..)) {
                Some(after) => rest = after,
                None => return Err(failed("zstd: skippable frame is cut short".into())),
            }
            continue;
        }
        if magic != ZSTD_MAGIC {
            return Err(failed(format!(
                "zstd: not a zstd frame (magic {magic:#010x})"
            )));
        }
        let header = zstd_frame_header(rest)?;
        if header.window > max_window {
            return Err(Stop::Failed(zstd_window_error(
                &format!("the frame asks for a window of {} bytes", header.window),
                log,
                cap,
            )));
        }
        if header
            .content_size
            .is_some_and(|n| n > limit.saturating_sub(out.len()) as u64)
        {
            return Err(Stop::TooBig);
        }
        if let Some(n) = header.content_size {
            // Fits under the limit (checked above): room for all of it at once.
            let needed = out.len() + n as usize;
            grow_to(&mut out, needed, end);
        }
        let mut d = FrameDecoder::new();
        d.set_max_window_size(max_window);
        d.init(&mut rest)
            .map_err(|e| failed(format!("zstd: {e}")))?;
        let frame_start = out.len();
        loop {
            d.decode_blocks(&mut rest, BlockDecodingStrategy::UptoBytes(ZSTD_CHUNK))
                .map_err(|e| failed(format!("zstd: {e}")))?;
            let ready = d.can_collect();
            // Until the frame ends, the decoder keeps the last window of output; once it has
            // let output go, that is a whole window still to come.
            let kept = if !d.is_finished() && (ready > 0 || out.len() > frame_start) {
                usize::try_from(header.window).unwrap_or(usize::MAX)
            } else {
                0
            };
            let needed = out.len() + ready;
            if needed.saturating_add(kept) > limit {
                return Err(Stop::TooBig);
            }
            grow_to(&mut out, needed, end);
            d.collect_to_writer(&mut out)
                .map_err(|e| failed(format!("zstd: {e}")))?;
            if d.is_finished() && d.can_collect() == 0 {
                break;
            }
        }
        let produced = (out.len() - frame_start) as u64;
        if let Some(n) = header.content_size
            && n != produced
        {
            return Err(failed(format!(
                "zstd: the frame holds {produced} bytes but its header says {n}"
            )));
        }
        if let Some(stored) = d.get_checksum_from_data()
            && d.get_calculated_checksum() != Some(stored)
        {
            return Err(failed("zstd: content checksum mismatch".into()));
        }
    }
    Ok(out)
}

/// zstd through libzstd (`zstd-c`) at `level` (libzstd's levels; `None` is 3), with the input
/// size pledged so that the frame header carries it.
#[cfg(feature = "zstd-c")]
fn zstd_c_compress(level: Option<i32>, input: &[u8], out: &mut BytesMut) -> std::io::Result<()> {
    let level = level.unwrap_or(ZSTD_DEFAULT_LEVEL);
    let mut enc = zstd::stream::write::Encoder::new(out.writer(), level)?;
    enc.set_pledged_src_size(Some(input.len() as u64))?;
    enc.write_all(input)?;
    enc.finish()?;
    Ok(())
}

/// zstd in pure Rust (`ruzstd`). It implements one compression level, its "Fastest" (about
/// libzstd's level 1, with a 128 KiB window), so every level (already checked against
/// [`ZSTD_LEVELS`]) and the default map to it: a level changes nothing without `zstd-c`. The
/// frame has a content checksum and no content size.
#[cfg(feature = "zstd")]
#[cfg_attr(all(feature = "zstd-c", not(test)), allow(dead_code))]
fn zstd_rust_compress(level: Option<i32>, input: &[u8], out: &mut BytesMut) {
    let _ = level;
    // Reading a slice and writing a `BytesMut` cannot fail, so `ruzstd`'s unwraps never fire.
    ruzstd::encoding::compress(
        input,
        out.writer(),
        ruzstd::encoding::CompressionLevel::Fastest,
    );
}

/// Decompresses a batch payload compressed with `codec` into at most `limit` bytes.
#[cfg(test)]
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, DecodeErrorKind> {
    decompress_charged(codec, input, limit, None)
}

/// Decompresses a batch payload compressed with `codec` into at most `cap` bytes (the
/// per-batch cap) and at most what `budget` has left, and charges the budget for the result.
pub(crate) fn decompress_charged(
    codec: Compression,
    input: &[u8],
    cap: usize,
    budget: Option<&DecompressionBudget>,
) -> Result<Vec<u8>, DecodeErrorKind> {
    let limit = cap.min(remaining(budget));
    charge(
        inflate(codec, input, limit, cap),
        input.len(),
        cap,
        limit,
        budget,
    )
}

fn remaining(budget: Option<&DecompressionBudget>) -> usize {
    budget.map_or(usize::MAX, DecompressionBudget::remaining)
}

/// Turns the outcome of decompressing `input_len` bytes under `cap` and `budget` into the
/// output (charged to the budget) or the error that names the limit that stopped it.
fn charge(
    result: Result<Vec<u8>, Stop>,
    input_len: usize,
    cap: usize,
    limit: usize,
    budget: Option<&DecompressionBudget>,
) -> Result<Vec<u8>, DecodeErrorKind> {
    match result {
        Ok(mut out) => {
            // The vector may have grown past its length; what is kept is what is charged.
            out.shrink_to_fit();
            if let Some(b) = budget {
                b.charge(out.len())?;
            }
            Ok(out)
        }
        Err(Stop::TooBig) if limit < cap => {
            Err(budget.map_or_else(|| too_big(cap, input_len), |b| b.exceeded(limit + 1)))
        }
        Err(Stop::TooBig) => Err(too_big(cap, input_len)),
        Err(Stop::Failed(k)) => Err(k),
    }
}

/// Decompresses the value of a legacy (magic 0/1) wrapper message, as [`decompress_charged`].
/// Magic-0 LZ4 payloads from old Java clients carry a frame header checksum computed over the
/// frame magic too (KAFKA-3160); such a checksum is accepted for magic 0.
pub(crate) fn decompress_legacy(
    codec: Compression,
    magic: i8,
    input: &[u8],
    cap: usize,
    budget: Option<&DecompressionBudget>,
) -> Result<Vec<u8>, DecodeErrorKind> {
    #[cfg(feature = "lz4")]
    if codec == Compression::Lz4 && magic == 0 {
        let hint = input.len().saturating_mul(4);
        let limit = cap.min(remaining(budget));
        return charge(
            lz4_decompress(input, hint, limit, true),
            input.len(),
            cap,
            limit,
            budget,
        );
    }
    let _ = magic;
    decompress_charged(codec, input, cap, budget)
}

/// LZ4 frame format (the LZ4 frame specification; Kafka: KIP-57).
#[cfg(feature = "lz4")]
const LZ4_MAGIC: u32 = 0x184D_2204;
/// Skippable frames: magic 0x184D2A50-0x184D2A5F, then a 4-byte size.
#[cfg(feature = "lz4")]
const LZ4_SKIPPABLE_MASK: u32 = 0xFFFF_FFF0;
#[cfg(feature = "lz4")]
const LZ4_SKIPPABLE: u32 = 0x184D_2A50;
/// How far back a linked block may reach into the output before it.
#[cfg(feature = "lz4")]
const LZ4_WINDOW: usize = 64 * 1024;

#[cfg(feature = "lz4")]
fn lz4_error(text: impl std::fmt::Display) -> Stop {
    Stop::Failed(DecodeErrorKind::Decompression(format!("lz4: {text}")))
}

#[cfg(feature = "lz4")]
fn lz4_take<'a>(rest: &mut &'a [u8], n: usize, what: &str) -> Result<&'a [u8], Stop> {
    match rest.split_at_checked(n) {
        Some((head, tail)) => {
            *rest = tail;
            Ok(head)
        }
        None => Err(lz4_error(format!(
            "{what} is cut short ({n} bytes needed, {} left)",
            rest.len()
        ))),
    }
}

#[cfg(feature = "lz4")]
fn lz4_u32(rest: &mut &[u8], what: &str) -> Result<u32, Stop> {
    let b = lz4_take(rest, 4, what)?;
    Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// Decodes concatenated LZ4 frames straight into one output vector: each block is decompressed
/// from the input slice into the output (a linked block reads the 64 KiB before it from there),
/// so memory follows the bytes actually produced, never a block size a header announces. At
/// most `limit` bytes, else [`Stop::TooBig`]. Header, block and content checksums are checked;
/// `kafka3160` also accepts a header checksum computed over the magic too (KAFKA-3160).
#[cfg(feature = "lz4")]
fn lz4_decompress(
    input: &[u8],
    hint: usize,
    limit: usize,
    kafka3160: bool,
) -> Result<Vec<u8>, Stop> {
    use lz4_flex::block::{DecompressError, decompress_into, decompress_into_with_dict};
    // `out[..filled]` is output; `out[filled..]` is zeroed room for the next block.
    let mut out: Vec<u8> = Vec::with_capacity(hint.min(limit));
    let mut filled = 0usize;
    let mut rest = input;
    while !rest.is_empty() {
        let frame = rest;
        let magic = lz4_u32(&mut rest, "frame magic")?;
        if magic & LZ4_SKIPPABLE_MASK == LZ4_SKIPPABLE {
            let size = lz4_u32(&mut rest, "skippable frame size")? as usize;
            lz4_take(&mut rest, size, "skippable frame")?;
            continue;
        }
        if magic != LZ4_MAGIC {
            return Err(lz4_error(format!("not an LZ4 frame (magic {magic:#010x})")));
        }
        let fd = lz4_take(&mut rest, 2, "frame descriptor")?;
        let (flg, bd) = (fd[0], fd[1]);
        if flg >> 6 != 1 {
            return Err(lz4_error(format!("frame version {} is not 1", flg >> 6)));
        }
        if flg & 0x02 != 0 || bd & 0x8f != 0 {
            return Err(lz4_error("reserved frame descriptor bits are set"));
        }
        let independent = flg & 0x20 != 0;
        let block_checksums = flg & 0x10 != 0;
        let content_checksum = flg & 0x04 != 0;
        let max_block = match (bd >> 4) & 0x07 {
            4 => 64 << 10,
            5 => 256 << 10,
            6 => 1 << 20,
            7 => 4 << 20,
            id => return Err(lz4_error(format!("block maximum size id {id} is not 4-7"))),
        };
        let content_size = if flg & 0x08 != 0 {
            let b = lz4_take(&mut rest, 8, "content size")?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Some(u64::from_le_bytes(a))
        } else {
            None
        };
        let dict_id = flg & 0x01 != 0;
        if dict_id {
            lz4_take(&mut rest, 4, "dictionary id")?;
        }
        let descriptor_end = frame.len() - rest.len();
        let stored = lz4_take(&mut rest, 1, "header checksum")?[0];
        if stored != lz4_header_checksum(&frame[4..descriptor_end])
            && !(kafka3160 && stored == lz4_header_checksum(&frame[..descriptor_end]))
        {
            return Err(lz4_error("frame header checksum mismatch"));
        }
        if dict_id {
            return Err(lz4_error("frames with a dictionary id are not supported"));
        }
        let frame_start = filled;
        loop {
            let raw = lz4_u32(&mut rest, "block size")?;
            if raw == 0 {
                break;
            }
            let len = (raw & 0x7fff_ffff) as usize;
            if len > max_block {
                return Err(lz4_error(format!(
                    "a {len}-byte block is over the frame's {max_block}-byte block size"
                )));
            }
            let data = lz4_take(&mut rest, len, "block")?;
            if block_checksums {
                let sum = lz4_u32(&mut rest, "block checksum")?;
                if sum != twox_hash::XxHash32::oneshot(0, data) {
                    return Err(lz4_error("block checksum mismatch"));
                }
            }
            // Room for a whole block, but not past the limit.
            let room = max_block.min(limit - filled);
            if out.len() < filled + room {
                out.resize(filled + room, 0);
            }
            let n = if raw & 0x8000_0000 != 0 {
                // Stored uncompressed.
                if len > room {
                    return Err(if room < max_block {
                        Stop::TooBig
                    } else {
                        lz4_error("block overruns")
                    });
                }
                out[filled..filled + len].copy_from_slice(data);
                len
            } else {
                let (before, after) = out.split_at_mut(filled);
                let dst = &mut after[..room];
                let result = if independent || filled == frame_start {
                    decompress_into(data, dst)
                } else {
                    let from = filled.saturating_sub(LZ4_WINDOW).max(frame_start);
                    decompress_into_with_dict(data, dst, &before[from..])
                };
                match result {
                    Ok(n) => n,
                    Err(DecompressError::OutputTooSmall { .. }) if room < max_block => {
                        return Err(Stop::TooBig);
                    }
                    Err(e) => return Err(lz4_error(e)),
                }
            };
            filled += n;
        }
        if content_checksum {
            let sum = lz4_u32(&mut rest, "content checksum")?;
            if sum != twox_hash::XxHash32::oneshot(0, &out[frame_start..filled]) {
                return Err(lz4_error("content checksum mismatch"));
            }
        }
        if let Some(size) = content_size
            && size != (filled - frame_start) as u64
        {
            return Err(lz4_error(format!(
                "frame holds {} bytes, its header says {size}",
                filled - frame_start
            )));
        }
    }
    out.truncate(filled);
    Ok(out)
}

/// The LZ4 frame header checksum of `descriptor`: the second byte of its XXH32 (seed 0). The
/// descriptor is 2 to 14 bytes (FLG, BD, optional content size and dictionary id); with the
/// 4-byte magic of the KAFKA-3160 variant up to 18, so this is full XXH32, not a short-input
/// shortcut.
#[cfg(feature = "lz4")]
fn lz4_header_checksum(descriptor: &[u8]) -> u8 {
    (twox_hash::XxHash32::oneshot(0, descriptor) >> 8) as u8
}

#[cfg(feature = "snappy")]
fn snappy_error(e: snap::Error) -> DecodeErrorKind {
    DecodeErrorKind::Decompression(format!("snappy: {e}"))
}

/// Decompresses one raw snappy block onto the end of `out`, keeping `out` within `limit`.
#[cfg(feature = "snappy")]
fn snappy_block(block: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), Stop> {
    let n = snap::raw::decompress_len(block).map_err(snappy_error)?;
    if n > limit - out.len() {
        return Err(Stop::TooBig);
    }
    // The length is read off the wire: before allocating it, check that the block could expand
    // that far (a snappy element of at least 2 bytes yields at most 64 bytes).
    if n > block.len().saturating_mul(SNAPPY_MAX_RATIO) {
        return Err(Stop::Failed(DecodeErrorKind::Decompression(format!(
            "snappy: a {}-byte block cannot hold {n} bytes",
            block.len()
        ))));
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
fn snappy_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, Stop> {
    let mut out = Vec::new();
    if !input.starts_with(&XERIAL_MAGIC) {
        snappy_block(input, &mut out, limit)?;
        return Ok(out);
    }
    let Some(mut rest) = input.get(XERIAL_HEADER_LEN..) else {
        return Err(
            DecodeErrorKind::Decompression("snappy: xerial header is cut short".into()).into(),
        );
    };
    while !rest.is_empty() {
        let Some((len, tail)) = rest.split_first_chunk::<4>() else {
            return Err(DecodeErrorKind::Decompression(
                "snappy: xerial block length is cut short".into(),
            )
            .into());
        };
        let len = u32::from_be_bytes(*len) as usize;
        let Some(block) = tail.get(..len) else {
            return Err(Stop::Failed(DecodeErrorKind::Decompression(format!(
                "snappy: xerial block of {len} bytes overruns the {} left",
                tail.len()
            ))));
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
        Compression::Zstd => ZSTD_LEVELS.contains(&level),
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
        #[cfg(feature = "zstd-c")]
        Compression::Zstd => {
            zstd_c_compress(config.level, input, out).map_err(|e| encode_error(codec, e))
        }
        #[cfg(all(feature = "zstd", not(feature = "zstd-c")))]
        Compression::Zstd => {
            zstd_rust_compress(config.level, input, out);
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
        // lz4_flex writes a correct checksum: ours must agree with it.
        let hc_at = 6 + if frame[4] & 0x08 != 0 { 8 } else { 0 };
        assert_eq!(frame[hc_at], lz4_header_checksum(&frame[4..hc_at]));
        let mut broken = frame.to_vec();
        broken[hc_at] = lz4_header_checksum(&frame[..hc_at]);
        assert!(decompress(Compression::Lz4, &broken, usize::MAX).is_err());
        let back = decompress_legacy(Compression::Lz4, 0, &broken, usize::MAX, None).unwrap();
        assert_eq!(back, data);
        assert!(decompress_legacy(Compression::Lz4, 1, &broken, usize::MAX, None).is_err());
        let back = decompress_legacy(Compression::Lz4, 0, &frame, usize::MAX, None).unwrap();
        assert_eq!(back, data);
    }

    /// Every FLG combination (content size, dictionary id, checksums, block mode): the header
    /// checksum is computed right (up to 18 bytes hashed for the KAFKA-3160 variant), a wrong
    /// one is refused, and nothing panics.
    #[test]
    fn lz4_header_checksum_for_every_flag_combination() {
        for low in 0u8..0x40 {
            let flg = 0x40 | low;
            let mut frame = vec![0x04, 0x22, 0x4d, 0x18, flg, 0x40];
            if flg & 0x08 != 0 {
                frame.extend_from_slice(&0u64.to_le_bytes());
            }
            if flg & 0x01 != 0 {
                frame.extend_from_slice(&7u32.to_le_bytes());
            }
            let hc_at = frame.len();
            let right = lz4_header_checksum(&frame[4..hc_at]);
            let broken = lz4_header_checksum(&frame[..hc_at]);
            let wrong = (0..=255u8).find(|b| *b != right && *b != broken).unwrap();
            for (hc, magic, ok) in [
                (right, 0, true),
                (right, 1, true),
                (broken, 0, true),
                (broken, 1, broken == right),
                (wrong, 0, false),
                (wrong, 1, false),
            ] {
                let mut f = frame.clone();
                f.push(hc);
                f.extend_from_slice(&[0, 0, 0, 0]); // end mark
                if flg & 0x04 != 0 {
                    f.extend_from_slice(&twox_hash::XxHash32::oneshot(0, b"").to_le_bytes());
                }
                let r = decompress_legacy(Compression::Lz4, magic, &f, 1 << 20, None);
                let header_refused =
                    matches!(&r, Err(e) if e.to_string().contains("header checksum"));
                if flg & 0x02 != 0 {
                    // A reserved bit is refused before the checksum is looked at.
                    assert!(r.is_err() && !header_refused, "flg {flg:#04x}: {r:?}");
                    continue;
                }
                assert_eq!(!header_refused, ok, "flg {flg:#04x} magic {magic}: {r:?}");
                if ok && flg & 0x03 == 0 {
                    assert_eq!(r.unwrap(), Vec::<u8>::new(), "flg {flg:#04x}");
                }
                for cut in 0..f.len() {
                    let r = decompress_legacy(Compression::Lz4, magic, &f[..cut], 1 << 20, None);
                    assert!(cut == 0 || r.is_err(), "flg {flg:#04x} cut {cut}");
                }
            }
        }
    }

    /// Frames as lz4_flex writes them with every option (block sizes, linked blocks, content
    /// size, checksums), alone and concatenated, decode to the input; one byte less of limit
    /// is an error.
    #[test]
    fn lz4_frames_with_every_option_round_trip() {
        use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
        // Compressible but with long-range repeats (linked blocks reach back) and some noise.
        let mut data = sample();
        let mut x = 12345u32;
        data.extend((0..300_000).map(|i| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            if i % 3 == 0 { x as u8 } else { (i % 97) as u8 }
        }));
        for size in [
            BlockSize::Max64KB,
            BlockSize::Max256KB,
            BlockSize::Max1MB,
            BlockSize::Max4MB,
        ] {
            for mode in [BlockMode::Independent, BlockMode::Linked] {
                for flags in 0..8u8 {
                    let info = FrameInfo::new()
                        .block_size(size)
                        .block_mode(mode)
                        .content_size((flags & 1 != 0).then_some(data.len() as u64))
                        .block_checksums(flags & 2 != 0)
                        .content_checksum(flags & 4 != 0);
                    let mut enc = FrameEncoder::with_frame_info(info, Vec::new());
                    enc.write_all(&data).unwrap();
                    let frame = enc.finish().unwrap();
                    let what = format!("{size:?} {mode:?} flags {flags}");
                    let back = decompress(Compression::Lz4, &frame, data.len()).expect(&what);
                    assert!(back == data, "{what}");
                    let e = decompress(Compression::Lz4, &frame, data.len() - 1).unwrap_err();
                    assert!(e.to_string().contains("limit"), "{what}: {e}");
                    let two = [frame.clone(), frame].concat();
                    let back = decompress(Compression::Lz4, &two, 2 * data.len()).expect(&what);
                    assert!(back == [data.clone(), data.clone()].concat(), "{what}");
                }
            }
        }
    }

    #[test]
    fn xxh32_known_values() {
        // Reference values of XXH32 with seed 0 from the xxHash test suite; the 18-byte input
        // takes the 16-byte stripe path that the frame descriptor with content size and
        // dictionary id needs.
        assert_eq!(twox_hash::XxHash32::oneshot(0, b""), 0x02CC_5D05);
        assert_eq!(twox_hash::XxHash32::oneshot(0, b"a"), 0x550D_7456);
        assert_eq!(twox_hash::XxHash32::oneshot(0, b"abc"), 0x32D1_53FF);
        assert_eq!(
            twox_hash::XxHash32::oneshot(0, b"Nobody inspects the spammish repetition"),
            0xE229_3B2F
        );
    }

    /// A zstd frame of RLE blocks (`blocks` x 1000 bytes) whose header asks for a window of
    /// 2^`window_log` bytes (no content size, so the decoder would size its buffer from it).
    fn zstd_rle_frame(window_log: u8, blocks: u32) -> Vec<u8> {
        let mut f = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (window_log - 10) << 3];
        for i in 0..blocks {
            let last = u32::from(i + 1 == blocks);
            let header = last | (1 << 1) | (1000 << 3);
            f.extend_from_slice(&header.to_le_bytes()[..3]);
            f.push(b'z');
        }
        f
    }

    #[test]
    fn zstd_window_is_limited_by_the_cap() {
        let cap = 64 << 20;
        assert_eq!(zstd_window_log_max(cap), 26);
        assert_eq!(zstd_window_log_max(1 << 20), 21);
        assert_eq!(zstd_window_log_max(usize::MAX), 31);
        let ok = zstd_rle_frame(26, 3);
        assert_eq!(
            decompress(Compression::Zstd, &ok, cap).unwrap(),
            vec![b'z'; 3000]
        );
        // 27 bytes asking for a 128 MiB window: refused, not allocated.
        let big = zstd_rle_frame(27, 3);
        let e = decompress(Compression::Zstd, &big, cap).unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
        let e = decompress(Compression::Zstd, &zstd_rle_frame(31, 1), 1 << 20).unwrap_err();
        assert!(e.to_string().contains("window"), "{e}");
        // Kafka's default level uses a 2 MiB window: readable under a small cap too.
        let level3 = zstd_rle_frame(21, 1);
        assert_eq!(
            decompress(Compression::Zstd, &level3, 4096).unwrap().len(),
            1000
        );
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

/// The pure-Rust zstd path, called directly (it is compiled in both builds under `cfg(test)`).
#[cfg(all(test, feature = "zstd"))]
#[path = "compression_zstd_tests.rs"]
mod zstd_rust_tests;

/// Batches compressed by one zstd implementation decode with the other (`--features zstd-c`).
#[cfg(all(test, feature = "zstd-c"))]
#[path = "compression_zstd_c_tests.rs"]
mod zstd_c_interop_tests;
