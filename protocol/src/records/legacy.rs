//! Decoding of legacy message sets, magic 0 and 1 (protocol guide, "Message Sets"; KIP-32 added
//! the magic-1 timestamp, KIP-31 the relative offsets inside compressed magic-1 wrappers).
//!
//! A log entry is `offset int64, message_size int32, message`, and a message is `crc uint32
//! (CRC-32 of everything after it), magic int8, attributes int8, [timestamp int64 if magic 1],
//! key bytes (int32 length, -1 null), value bytes`. A compressed entry ("wrapper") carries a
//! whole inner message set, compressed, as its value.

use bytes::Bytes;

use super::compression::decompress_legacy;
use super::record::Record;
use super::{
    Compression, DecodeOptions, DecompressionBudget, LOG_OVERHEAD, MAGIC_V0, MAGIC_V1,
    NO_TIMESTAMP, TimestampType,
};
use crate::error::{DecodeError, DecodeErrorKind};

/// Smallest magic-0 message: crc, magic, attributes, key length, value length.
pub(super) const MIN_MESSAGE_V0: usize = 4 + 1 + 1 + 4 + 4;
/// Smallest magic-1 message: magic 0 plus the timestamp.
pub(super) const MIN_MESSAGE_V1: usize = MIN_MESSAGE_V0 + 8;

/// One message of a legacy message set, owning its key and value (shared slices of the fetch
/// buffer or of the decompressed wrapper payload).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyRecord {
    /// Absolute offset.
    pub offset: i64,
    /// Timestamp in milliseconds ([`NO_TIMESTAMP`] for magic 0); for a LogAppendTime wrapper
    /// the wrapper's timestamp.
    pub timestamp: i64,
    /// Magic byte (0 or 1).
    pub magic: i8,
    /// Attribute byte of the message.
    pub attributes: i8,
    /// The stored CRC-32.
    pub crc: u32,
    /// The key, `None` when null.
    pub key: Option<Bytes>,
    /// The value, `None` when null.
    pub value: Option<Bytes>,
}

impl LegacyRecord {
    /// This message as the common [`Record`] view; `base_offset` is its batch's first offset.
    pub fn as_record(&self, base_offset: i64) -> Record<'_> {
        Record {
            offset: self.offset,
            timestamp: self.timestamp,
            offset_delta: self.offset.wrapping_sub(base_offset) as i32,
            timestamp_delta: 0,
            sequence: -1,
            attributes: self.attributes,
            control: false,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &[],
            header_count: 0,
        }
    }
}

/// One legacy log entry: a plain message, or a compressed wrapper and the messages inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyBatch {
    offset: i64,
    magic: i8,
    attributes: i8,
    crc: u32,
    timestamp: i64,
    compression: Compression,
    size: usize,
    records: Vec<LegacyRecord>,
}

/// A message read off the wire.
struct Message {
    offset: i64,
    magic: i8,
    attributes: i8,
    crc: u32,
    timestamp: i64,
    key: Option<Bytes>,
    value: Option<Bytes>,
}

impl Message {
    fn into_record(self) -> LegacyRecord {
        LegacyRecord {
            offset: self.offset,
            timestamp: self.timestamp,
            magic: self.magic,
            attributes: self.attributes,
            crc: self.crc,
            key: self.key,
            value: self.value,
        }
    }
}

fn truncated(what: &'static str, at: usize, needed: usize, remaining: usize) -> DecodeError {
    DecodeError::new(what, at, DecodeErrorKind::Truncated { needed, remaining })
}

fn invalid(what: &'static str, at: usize, text: String) -> DecodeError {
    DecodeError::new(what, at, DecodeErrorKind::Invalid(text))
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads the nullable int32-length bytes at `*pos` of `msg` (which ends at `end`).
fn nullable_bytes(
    buf: &Bytes,
    pos: &mut usize,
    end: usize,
    what: &'static str,
) -> Result<Option<Bytes>, DecodeError> {
    if end - *pos < 4 {
        return Err(truncated(what, *pos, 4, end - *pos));
    }
    let len = be_i32(buf, *pos);
    *pos += 4;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(DecodeError::new(
            what,
            *pos - 4,
            DecodeErrorKind::InvalidLength(len as i64),
        ));
    }
    let len = len as usize;
    if len > end - *pos {
        return Err(truncated(what, *pos, len, end - *pos));
    }
    let b = buf.slice(*pos..*pos + len);
    *pos += len;
    Ok(Some(b))
}

/// Reads the complete log entry starting at `pos` of `buf`; returns it and the position after.
fn read_entry(
    buf: &Bytes,
    pos: usize,
    opts: &DecodeOptions,
) -> Result<(Message, usize), DecodeError> {
    let rest = buf.len() - pos;
    if rest < LOG_OVERHEAD {
        return Err(truncated("message set entry", pos, LOG_OVERHEAD, rest));
    }
    let offset = be_i64(buf, pos);
    let size = be_i32(buf, pos + 8);
    let start = pos + LOG_OVERHEAD;
    if size < MIN_MESSAGE_V0 as i32 {
        return Err(invalid(
            "message size",
            pos + 8,
            format!("message size {size} is below the {MIN_MESSAGE_V0}-byte minimum"),
        ));
    }
    let size = size as usize;
    if size > rest - LOG_OVERHEAD {
        return Err(truncated("message", start, size, rest - LOG_OVERHEAD));
    }
    let end = start + size;
    let crc = be_i32(buf, start) as u32;
    let magic = buf[start + 4] as i8;
    let attributes = buf[start + 5] as i8;
    let mut p = start + 6;
    let timestamp = match magic {
        MAGIC_V0 => NO_TIMESTAMP,
        MAGIC_V1 => {
            if size < MIN_MESSAGE_V1 {
                return Err(invalid(
                    "message size",
                    pos + 8,
                    format!(
                        "magic-1 message size {size} is below the {MIN_MESSAGE_V1}-byte minimum"
                    ),
                ));
            }
            p += 8;
            be_i64(buf, start + 6)
        }
        m => {
            return Err(DecodeError::new(
                "message magic",
                start + 4,
                DecodeErrorKind::UnknownMagic(m),
            ));
        }
    };
    if opts.verify_crc {
        let computed = crc32fast::hash(&buf[start + 4..end]);
        if computed != crc {
            return Err(DecodeError::new(
                "message crc",
                start,
                DecodeErrorKind::CrcMismatch {
                    stored: crc,
                    computed,
                },
            ));
        }
    }
    let key = nullable_bytes(buf, &mut p, end, "message key")?;
    let value = nullable_bytes(buf, &mut p, end, "message value")?;
    if p != end {
        return Err(invalid(
            "message",
            p,
            format!("{} bytes left over after the message value", end - p),
        ));
    }
    let msg = Message {
        offset,
        magic,
        attributes,
        crc,
        timestamp,
        key,
        value,
    };
    Ok((msg, end))
}

/// How many log entries follow each other from the start of `buf`, reading only their sizes
/// (stops at the first size that is invalid or overruns; the full read reports it).
fn count_entries(buf: &[u8]) -> usize {
    let mut pos = 0usize;
    let mut n = 0usize;
    while let Some(head) = buf.get(pos..pos + LOG_OVERHEAD) {
        let size = be_i32(head, 8);
        if size < MIN_MESSAGE_V0 as i32 {
            break;
        }
        pos = pos + LOG_OVERHEAD + size as usize;
        if pos > buf.len() {
            break;
        }
        n += 1;
    }
    n
}

impl LegacyBatch {
    /// Decodes one complete legacy log entry (`entry` holds exactly `12 + message_size` bytes),
    /// decompressing a wrapper's inner messages. Error offsets count from the start of `entry`
    /// (for inner messages, from the start of the decompressed payload).
    pub fn decode(entry: Bytes, opts: &DecodeOptions) -> Result<LegacyBatch, DecodeError> {
        Self::decode_with_budget(entry, opts, None)
    }

    /// [`LegacyBatch::decode`], charging a wrapper's decompressed size and the bookkeeping of
    /// its inner messages (`size_of::<LegacyRecord>()` each) to `budget` (if any). Both also
    /// count against `opts.max_decompressed_size`, so many tiny inner messages cannot hold
    /// more memory than the cap.
    pub fn decode_with_budget(
        entry: Bytes,
        opts: &DecodeOptions,
        budget: Option<&DecompressionBudget>,
    ) -> Result<LegacyBatch, DecodeError> {
        let first = entry.get(..8).map(|b| be_i64(b, 0));
        Self::decode_inner(entry, opts, budget).map_err(|e| match first {
            Some(o) => e.in_context(|| format!("legacy message at offset {o}")),
            None => e,
        })
    }

    fn decode_inner(
        entry: Bytes,
        opts: &DecodeOptions,
        budget: Option<&DecompressionBudget>,
    ) -> Result<LegacyBatch, DecodeError> {
        let (msg, end) = read_entry(&entry, 0, opts)?;
        if end != entry.len() {
            return Err(invalid(
                "message set entry",
                end,
                format!("{} bytes after the message", entry.len() - end),
            ));
        }
        let compression = Compression::from_attributes(msg.attributes as i16)
            .map_err(|k| DecodeError::new("message attributes", 17, k))?;
        if compression == Compression::Zstd {
            return Err(invalid(
                "message attributes",
                17,
                "zstd compression needs magic 2 (KIP-110)".into(),
            ));
        }
        let ts_type = match msg.magic {
            MAGIC_V1 => TimestampType::from_attributes(msg.attributes as i16),
            _ => TimestampType::CreateTime,
        };
        let mut batch = LegacyBatch {
            offset: msg.offset,
            magic: msg.magic,
            attributes: msg.attributes,
            crc: msg.crc,
            timestamp: msg.timestamp,
            compression,
            size: entry.len(),
            records: Vec::new(),
        };
        if compression == Compression::None {
            batch.records.push(msg.into_record());
            batch.check_offsets()?;
            return Ok(batch);
        }
        let Some(payload) = msg.value else {
            return Err(DecodeError::new(
                "compressed message value",
                0,
                DecodeErrorKind::UnexpectedNull,
            ));
        };
        let inner = decompress_legacy(
            compression,
            batch.magic,
            &payload,
            opts.max_decompressed_size,
            budget,
        )
        .map(Bytes::from)
        .map_err(|k| DecodeError::new("compressed message value", 0, k))?;
        // Each inner message is kept as a `LegacyRecord`: count them first (sizes only), and
        // charge their bookkeeping before allocating it.
        let count = count_entries(&inner);
        let bookkeeping = count.saturating_mul(std::mem::size_of::<LegacyRecord>());
        if inner.len().saturating_add(bookkeeping) > opts.max_decompressed_size {
            return Err(DecodeError::new(
                "compressed message value",
                0,
                DecodeErrorKind::Decompression(format!(
                    "{count} inner messages take {} bytes decompressed and {bookkeeping} bytes of bookkeeping, over the limit of {} bytes per batch",
                    inner.len(),
                    opts.max_decompressed_size
                )),
            ));
        }
        if let Some(b) = budget {
            b.charge(bookkeeping)
                .map_err(|k| DecodeError::new("compressed message value", 0, k))?;
        }
        batch.records.reserve_exact(count);
        let mut pos = 0;
        while pos < inner.len() {
            let (m, next) = read_entry(&inner, pos, opts)?;
            if m.magic != batch.magic {
                return Err(invalid(
                    "inner message magic",
                    pos + 16,
                    format!(
                        "inner magic {} differs from the wrapper's {}",
                        m.magic, batch.magic
                    ),
                ));
            }
            if m.attributes & 0x07 != 0 {
                return Err(invalid(
                    "inner message attributes",
                    pos + 17,
                    "nested compression".into(),
                ));
            }
            batch.records.push(m.into_record());
            pos = next;
        }
        let Some(last) = batch.records.last() else {
            return Err(invalid(
                "compressed message value",
                0,
                "a compressed wrapper holds no messages".into(),
            ));
        };
        if batch.magic == MAGIC_V1 {
            // KIP-31: inner offsets are relative; the wrapper's offset is the last inner one's.
            let last_offset = last.offset;
            let base = batch.offset.checked_sub(last_offset);
            let log_append = ts_type == TimestampType::LogAppendTime;
            for r in &mut batch.records {
                let Some(offset) = base.and_then(|b| b.checked_add(r.offset)) else {
                    return Err(invalid(
                        "inner message offset",
                        0,
                        format!(
                            "relative offset {} under wrapper offset {} (last relative offset {}) overflows",
                            r.offset, batch.offset, last_offset
                        ),
                    ));
                };
                r.offset = offset;
                if log_append {
                    r.timestamp = batch.timestamp;
                }
            }
        }
        batch.check_offsets()?;
        Ok(batch)
    }

    /// A consumer continues at an offset + 1: every offset must be below `i64::MAX`.
    fn check_offsets(&self) -> Result<(), DecodeError> {
        match self.records.iter().find(|r| r.offset == i64::MAX) {
            Some(r) => Err(invalid(
                "message offset",
                0,
                format!("offset {} leaves no next offset", r.offset),
            )),
            None => Ok(()),
        }
    }

    /// The entry's offset: for a wrapper, the offset of its last inner message.
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Offset of the first message.
    pub fn base_offset(&self) -> i64 {
        self.records.first().map_or(self.offset, |r| r.offset)
    }

    /// Offset of the last message.
    pub fn last_offset(&self) -> i64 {
        self.records.last().map_or(self.offset, |r| r.offset)
    }

    /// The offset after the entry (`last_offset() + 1`, saturating), where a consumer
    /// continues.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Magic byte, 0 or 1.
    pub fn magic(&self) -> i8 {
        self.magic
    }

    /// Attribute byte of the entry (of the wrapper, if compressed).
    pub fn attributes(&self) -> i8 {
        self.attributes
    }

    /// The stored CRC-32 of the entry's message.
    pub fn crc(&self) -> u32 {
        self.crc
    }

    /// The entry's timestamp in milliseconds ([`NO_TIMESTAMP`] for magic 0).
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The timestamp type (magic 1 attribute bit 3; CreateTime for magic 0).
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic == MAGIC_V1 {
            TimestampType::from_attributes(self.attributes as i16)
        } else {
            TimestampType::CreateTime
        }
    }

    /// The wrapper's codec, [`Compression::None`] for a plain message.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Size of the entry on the wire in bytes, including the 12-byte log overhead.
    pub fn size_in_bytes(&self) -> usize {
        self.size
    }

    /// The messages, in order (one for an uncompressed entry).
    pub fn records(&self) -> &[LegacyRecord] {
        &self.records
    }
}
