//! Decoding of magic-2 record batches and iteration over their records (protocol guide, "Record
//! Batch" and "Record"; KIP-98).

use bytes::Bytes;

use super::compression::decompress_charged;
use super::record::{Record, Records};
use super::{
    ATTR_CONTROL, ATTR_DELETE_HORIZON, ATTR_TRANSACTIONAL, Compression, DecodeOptions,
    DecompressionBudget, LOG_OVERHEAD, MAGIC_V2, RECORD_BATCH_OVERHEAD, TimestampType,
};
use crate::error::{DecodeError, DecodeErrorKind};

/// Bytes from the start of a batch to the first byte covered by its CRC (`attributes`).
pub(super) const CRC_START: usize = 21;
/// The smallest encoded record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const MIN_RECORD_SIZE: usize = 7;

/// The fixed 61-byte header of a magic-2 record batch (protocol guide, "Record Batch"), field by
/// field in wire order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct BatchHeader {
    /// Offset of the first record (int64). A producer writes 0; the broker assigns the real one.
    pub base_offset: i64,
    /// Bytes after this field to the end of the batch (int32).
    pub batch_length: i32,
    /// Leader epoch of the broker that appended the batch (int32, KIP-101), -1 from producers.
    pub partition_leader_epoch: i32,
    /// Format version: 2 (int8).
    pub magic: i8,
    /// CRC-32C of everything from `attributes` to the end of the batch (uint32).
    pub crc: u32,
    /// Attribute bits (int16): codec, timestamp type, transactional, control, delete horizon.
    pub attributes: i16,
    /// Offset of the last record relative to `base_offset` (int32).
    pub last_offset_delta: i32,
    /// Timestamp of the first record in milliseconds since the epoch (int64); the delete horizon
    /// when attribute bit 6 is set.
    pub base_timestamp: i64,
    /// Largest record timestamp in milliseconds (int64); the append time for LogAppendTime.
    pub max_timestamp: i64,
    /// Idempotent/transactional producer id (int64), -1 for none.
    pub producer_id: i64,
    /// Producer epoch (int16), -1 for none.
    pub producer_epoch: i16,
    /// Sequence number of the first record (int32), -1 for none.
    pub base_sequence: i32,
    /// Number of records (int32).
    pub records_count: i32,
}

impl BatchHeader {
    /// Reads the header from the first [`RECORD_BATCH_OVERHEAD`] bytes of `buf`; `None` when
    /// `buf` is shorter. No field is checked.
    #[inline]
    pub fn parse(buf: &[u8]) -> Option<BatchHeader> {
        let h: &[u8; RECORD_BATCH_OVERHEAD] = buf.get(..RECORD_BATCH_OVERHEAD)?.try_into().ok()?;
        let i16_at = |at: usize| i16::from_be_bytes([h[at], h[at + 1]]);
        let i32_at = |at: usize| i32::from_be_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let i64_at = |at: usize| {
            let mut a = [0u8; 8];
            a.copy_from_slice(&h[at..at + 8]);
            i64::from_be_bytes(a)
        };
        Some(BatchHeader {
            base_offset: i64_at(0),
            batch_length: i32_at(8),
            partition_leader_epoch: i32_at(12),
            magic: h[16] as i8,
            crc: i32_at(17) as u32,
            attributes: i16_at(21),
            last_offset_delta: i32_at(23),
            base_timestamp: i64_at(27),
            max_timestamp: i64_at(35),
            producer_id: i64_at(43),
            producer_epoch: i16_at(51),
            base_sequence: i32_at(53),
            records_count: i32_at(57),
        })
    }

    /// Writes the header in wire order.
    pub fn to_bytes(&self) -> [u8; RECORD_BATCH_OVERHEAD] {
        let mut h = [0u8; RECORD_BATCH_OVERHEAD];
        h[0..8].copy_from_slice(&self.base_offset.to_be_bytes());
        h[8..12].copy_from_slice(&self.batch_length.to_be_bytes());
        h[12..16].copy_from_slice(&self.partition_leader_epoch.to_be_bytes());
        h[16] = self.magic as u8;
        h[17..21].copy_from_slice(&self.crc.to_be_bytes());
        h[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        h[23..27].copy_from_slice(&self.last_offset_delta.to_be_bytes());
        h[27..35].copy_from_slice(&self.base_timestamp.to_be_bytes());
        h[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        h[43..51].copy_from_slice(&self.producer_id.to_be_bytes());
        h[51..53].copy_from_slice(&self.producer_epoch.to_be_bytes());
        h[53..57].copy_from_slice(&self.base_sequence.to_be_bytes());
        h[57..61].copy_from_slice(&self.records_count.to_be_bytes());
        h
    }

    /// The timestamp type (attribute bit 3).
    pub const fn timestamp_type(&self) -> TimestampType {
        TimestampType::from_attributes(self.attributes)
    }

    /// Whether the batch belongs to a transaction (attribute bit 4).
    pub const fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    /// Whether the batch holds a control record (attribute bit 5).
    pub const fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// Whether `base_timestamp` is a delete horizon (attribute bit 6, KIP-534).
    pub const fn has_delete_horizon(&self) -> bool {
        self.attributes & ATTR_DELETE_HORIZON != 0
    }

    /// Offset of the last record: `base_offset + last_offset_delta` (saturating; a decoded
    /// batch is checked to end before `i64::MAX`).
    pub const fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// The offset after the batch, where a consumer continues: `last_offset() + 1`
    /// (saturating; a decoded batch is checked to end before `i64::MAX`).
    pub const fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }

    /// Total size of the batch on the wire in bytes, including the 12-byte log overhead.
    pub const fn size_in_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length as u32 as usize
    }
}

/// A decoded magic-2 record batch: the header and one buffer of (decompressed) record bytes.
/// Iterate it with [`RecordBatch::records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordBatch {
    header: BatchHeader,
    compression: Compression,
    records: Bytes,
}

impl RecordBatch {
    /// Decodes one complete batch: `batch` holds exactly `12 + batchLength` bytes. Checks the
    /// magic, the CRC (if `opts.verify_crc`), the codec and the records count, and decompresses
    /// the records (at most `opts.max_decompressed_size` bytes). Uncompressed records are shared
    /// with `batch`, not copied. Error offsets count from the start of `batch`.
    pub fn decode(batch: Bytes, opts: &DecodeOptions) -> Result<RecordBatch, DecodeError> {
        Self::decode_with_budget(batch, opts, None)
    }

    /// [`RecordBatch::decode`], charging the decompressed size to `budget` (if any): a batch
    /// that would pass what the budget has left is a [`DecodeErrorKind::DecompressionBudget`]
    /// error.
    pub fn decode_with_budget(
        batch: Bytes,
        opts: &DecodeOptions,
        budget: Option<&DecompressionBudget>,
    ) -> Result<RecordBatch, DecodeError> {
        let base = BatchHeader::parse(&batch).map(|h| h.base_offset);
        decode_inner(batch, opts, budget).map_err(|e| match base {
            Some(b) => e.in_context(|| format!("record batch at base offset {b}")),
            None => e,
        })
    }

    /// Assembles a batch from an already-checked header and decompressed records. Iteration
    /// still checks every record.
    pub fn from_parts(header: BatchHeader, records: Bytes) -> Result<RecordBatch, DecodeError> {
        let compression = Compression::from_attributes(header.attributes)
            .map_err(|k| DecodeError::new("batch attributes", 21, k))?;
        Ok(RecordBatch {
            header,
            compression,
            records,
        })
    }

    /// The header fields.
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        self.header.base_offset
    }

    /// Offset of the last record (`base_offset + last_offset_delta`); with compaction some
    /// offsets in between may be missing.
    pub fn last_offset(&self) -> i64 {
        self.header.last_offset()
    }

    /// The offset after the batch (`last_offset() + 1`, saturating), where a consumer
    /// continues.
    pub fn next_offset(&self) -> i64 {
        self.header.next_offset()
    }

    /// Leader epoch that appended the batch (KIP-101).
    pub fn partition_leader_epoch(&self) -> i32 {
        self.header.partition_leader_epoch
    }

    /// The stored CRC-32C.
    pub fn crc(&self) -> u32 {
        self.header.crc
    }

    /// The raw attribute bits.
    pub fn attributes(&self) -> i16 {
        self.header.attributes
    }

    /// The codec the records were compressed with on the wire.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        self.header.timestamp_type()
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.header.is_transactional()
    }

    /// Whether the batch holds a control record (transaction marker).
    pub fn is_control(&self) -> bool {
        self.header.is_control()
    }

    /// Timestamp of the first record, in milliseconds.
    pub fn base_timestamp(&self) -> i64 {
        self.header.base_timestamp
    }

    /// Largest timestamp of the batch, in milliseconds.
    pub fn max_timestamp(&self) -> i64 {
        self.header.max_timestamp
    }

    /// Producer id, -1 for none.
    pub fn producer_id(&self) -> i64 {
        self.header.producer_id
    }

    /// Producer epoch, -1 for none.
    pub fn producer_epoch(&self) -> i16 {
        self.header.producer_epoch
    }

    /// Sequence of the first record, -1 for none.
    pub fn base_sequence(&self) -> i32 {
        self.header.base_sequence
    }

    /// The number of records the header announces.
    pub fn record_count(&self) -> i32 {
        self.header.records_count
    }

    /// The decompressed record bytes.
    pub fn records_bytes(&self) -> &Bytes {
        &self.records
    }

    /// Iterates the records. Each item borrows from this batch; a malformed record yields one
    /// error naming the batch's base offset, then the iteration ends.
    pub fn records(&self) -> Records<'_> {
        Records::new(&self.header, &self.records)
    }

    /// `sub` as a [`Bytes`] sharing this batch's buffer (one reference count increment, no copy)
    /// when it lies inside the records, else a copy.
    pub fn slice_ref(&self, sub: &[u8]) -> Bytes {
        let start = self.records.as_ptr() as usize;
        let at = sub.as_ptr() as usize;
        if !sub.is_empty() && at >= start && at + sub.len() <= start + self.records.len() {
            self.records.slice_ref(sub)
        } else {
            Bytes::copy_from_slice(sub)
        }
    }

    /// The key of `record` (from this batch) as owned [`Bytes`], see [`RecordBatch::slice_ref`].
    pub fn key_bytes(&self, record: &Record<'_>) -> Option<Bytes> {
        record.key().map(|k| self.slice_ref(k))
    }

    /// The value of `record` (from this batch) as owned [`Bytes`].
    pub fn value_bytes(&self, record: &Record<'_>) -> Option<Bytes> {
        record.value().map(|v| self.slice_ref(v))
    }
}

fn invalid(what: &'static str, at: usize, text: String) -> DecodeError {
    DecodeError::new(what, at, DecodeErrorKind::Invalid(text))
}

fn decode_inner(
    batch: Bytes,
    opts: &DecodeOptions,
    budget: Option<&DecompressionBudget>,
) -> Result<RecordBatch, DecodeError> {
    let Some(header) = BatchHeader::parse(&batch) else {
        return Err(DecodeError::new(
            "record batch header",
            0,
            DecodeErrorKind::Truncated {
                needed: RECORD_BATCH_OVERHEAD,
                remaining: batch.len(),
            },
        ));
    };
    if header.magic != MAGIC_V2 {
        return Err(DecodeError::new(
            "record batch magic",
            16,
            DecodeErrorKind::UnknownMagic(header.magic),
        ));
    }
    if header.batch_length < (RECORD_BATCH_OVERHEAD - LOG_OVERHEAD) as i32
        || header.size_in_bytes() != batch.len()
    {
        return Err(invalid(
            "record batch length",
            8,
            format!(
                "batch length {} does not match the {} bytes given",
                header.batch_length,
                batch.len().saturating_sub(LOG_OVERHEAD)
            ),
        ));
    }
    if opts.verify_crc {
        let computed = crc32c::crc32c(&batch[CRC_START..]);
        if computed != header.crc {
            return Err(DecodeError::new(
                "record batch crc",
                17,
                DecodeErrorKind::CrcMismatch {
                    stored: header.crc,
                    computed,
                },
            ));
        }
    }
    let compression = Compression::from_attributes(header.attributes)
        .map_err(|k| DecodeError::new("record batch attributes", 21, k))?;
    // A consumer continues at last offset + 1: that must be an offset.
    if header
        .base_offset
        .checked_add(header.last_offset_delta as i64)
        .and_then(|last| last.checked_add(1))
        .is_none()
    {
        return Err(invalid(
            "last offset delta",
            23,
            format!(
                "base offset {} + last offset delta {} leaves no next offset below i64::MAX",
                header.base_offset, header.last_offset_delta
            ),
        ));
    }
    if header.records_count < 0 {
        return Err(invalid(
            "records count",
            57,
            format!("negative records count {}", header.records_count),
        ));
    }
    let records = if header.records_count == 0 {
        // Compaction may leave empty batches (kept for producer state) with no payload at all.
        Bytes::new()
    } else if compression == Compression::None {
        batch.slice(RECORD_BATCH_OVERHEAD..)
    } else {
        let payload = &batch[RECORD_BATCH_OVERHEAD..];
        decompress_charged(compression, payload, opts.max_decompressed_size, budget)
            .map(Bytes::from)
            .map_err(|k| DecodeError::new("records", RECORD_BATCH_OVERHEAD, k))?
    };
    if header.records_count as usize > records.len() / MIN_RECORD_SIZE {
        return Err(invalid(
            "records count",
            57,
            format!(
                "{} records cannot fit in {} bytes",
                header.records_count,
                records.len()
            ),
        ));
    }
    Ok(RecordBatch {
        header,
        compression,
        records,
    })
}
