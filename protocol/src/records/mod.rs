//! Record batches (magic 2) and legacy message sets (magic 0 and 1): the data path of produce and
//! fetch.
//!
//! Layouts follow the Kafka protocol guide ("Record Batch", "Record", "Message Sets") and the KIPs
//! that shaped them: KIP-32 (magic 1 timestamps), KIP-31 (relative offsets in compressed magic-1
//! wrappers), KIP-98 (magic 2 batches, producer ids, transactions and control records), KIP-57
//! (LZ4 frame format), KIP-110 (zstd) and KIP-390 (compression levels).
//!
//! Decoding:
//! - [`RecordSet`] walks the `records` field of a fetch response partition (one [`Bytes`](bytes::Bytes)) and
//!   yields one [`Batch`] per batch or legacy log entry. A trailing batch that the broker cut
//!   short (fetch `max_bytes`) ends the walk cleanly and is reported by
//!   [`RecordSet::truncated_tail`].
//! - [`RecordBatch`] is a decoded magic-2 batch: its header fields and one [`Bytes`](bytes::Bytes) holding the
//!   (decompressed) records. [`RecordBatch::records`] iterates [`Record`] views that borrow from
//!   that buffer without allocating or touching a reference count.
//! - [`LegacyBatch`] is a magic 0/1 log entry; it owns its few records.
//! - [`Batch::records`] yields the same [`Record`] view for both kinds.
//!
//! Encoding: [`RecordBatchBuilder`] writes magic-2 batches (the only format a producer sends);
//! [`control_batch`] writes transaction markers.
//!
//! Decoding never panics and never reserves memory from a length read off the wire; the
//! decompressed size of a batch is capped by [`DecodeOptions::max_decompressed_size`], and the
//! decompressed size of all the batches of one fetch answer by a [`DecompressionBudget`] shared
//! by their [`RecordSet`]s ([`RecordSet::with_budget`]).

mod batch;
mod builder;
mod compression;
mod legacy;
mod record;
mod set;
#[cfg(all(
    test,
    feature = "gzip",
    feature = "snappy",
    feature = "lz4",
    feature = "zstd"
))]
mod tests;

use std::fmt;
use std::str::FromStr;

pub use batch::{BatchHeader, RecordBatch};
pub use builder::{EndTxnMarker, RecordBatchBuilder, control_batch, set_producer};
pub use legacy::{LegacyBatch, LegacyRecord};
pub use record::{ControlRecord, ControlRecordType, Header, Headers, Record, Records};
pub use set::{Batch, BatchRecords, RecordSet, RecordsPosition};

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::error::DecodeErrorKind;

/// Magic byte of the current record batch format (KIP-98).
pub const MAGIC_V2: i8 = 2;
/// Magic byte of the KIP-32 message format (messages with a timestamp).
pub const MAGIC_V1: i8 = 1;
/// Magic byte of the original message format.
pub const MAGIC_V0: i8 = 0;

/// Bytes before the length-delimited part of every batch or log entry: base offset (int64) and
/// length (int32).
pub const LOG_OVERHEAD: usize = 12;
/// Size in bytes of a magic-2 batch header, from base offset to records count inclusive.
pub const RECORD_BATCH_OVERHEAD: usize = 61;

/// `producerId` of a batch sent without an idempotent producer (KIP-98).
pub const NO_PRODUCER_ID: i64 = -1;
/// `producerEpoch` of a batch sent without an idempotent producer (KIP-98).
pub const NO_PRODUCER_EPOCH: i16 = -1;
/// `baseSequence` of a batch sent without an idempotent producer (KIP-98).
pub const NO_SEQUENCE: i32 = -1;
/// `partitionLeaderEpoch` a producer writes; the broker fills in the real epoch (KIP-101).
pub const NO_PARTITION_LEADER_EPOCH: i32 = -1;
/// Timestamp of a record without one (magic 0 messages), in milliseconds.
pub const NO_TIMESTAMP: i64 = -1;

/// Default cap on the decompressed size of one batch: 64 MiB.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 << 20;

/// Attribute bits 0-2: the compression codec.
pub const ATTR_COMPRESSION_MASK: i16 = 0x07;
/// Attribute bit 3: timestamp type, set for LogAppendTime (KIP-32).
pub const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
/// Attribute bit 4: the batch is part of a transaction (KIP-98).
pub const ATTR_TRANSACTIONAL: i16 = 0x10;
/// Attribute bit 5: the batch holds a control record (KIP-98).
pub const ATTR_CONTROL: i16 = 0x20;
/// Attribute bit 6: `baseTimestamp` holds the delete horizon of a compacted batch (KIP-534).
pub const ATTR_DELETE_HORIZON: i16 = 0x40;

/// Compression codec of a batch: attribute bits 0-2 (protocol guide, "Record Batch").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// Codec 0: no compression.
    #[default]
    None,
    /// Codec 1: a gzip stream (RFC 1952).
    Gzip,
    /// Codec 2: snappy, in snappy-java's "xerial" block framing (a raw block is also read).
    Snappy,
    /// Codec 3: the LZ4 frame format (KIP-57).
    Lz4,
    /// Codec 4: a zstd frame (KIP-110); magic 2 only. Cargo feature `zstd` (pure Rust, on by
    /// default) or `zstd-c` (the C library libzstd, faster and with every level).
    Zstd,
}

impl Compression {
    /// All codecs, in id order.
    pub const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    /// The codec id carried in attribute bits 0-2.
    pub const fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec with id `id`, if Kafka defines one.
    pub const fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The codec named by bits 0-2 of batch `attributes` (an int16 in magic 2, an int8 widened
    /// for magic 0/1). Ids 5-7 are [`DecodeErrorKind::UnsupportedCompression`].
    pub fn from_attributes(attributes: i16) -> Result<Compression, DecodeErrorKind> {
        let id = (attributes & ATTR_COMPRESSION_MASK) as u8;
        Compression::from_id(id).ok_or(DecodeErrorKind::UnsupportedCompression(id))
    }

    /// Whether this build can compress and decompress the codec (its cargo feature is on).
    pub const fn is_enabled(self) -> bool {
        match self {
            Compression::None => true,
            Compression::Gzip => cfg!(feature = "gzip"),
            Compression::Snappy => cfg!(feature = "snappy"),
            Compression::Lz4 => cfg!(feature = "lz4"),
            Compression::Zstd => cfg!(feature = "zstd"),
        }
    }

    /// The codec's name as Kafka's `compression.type` setting spells it.
    pub const fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// This codec at compression level `level` (KIP-390): gzip 1-9, zstd -131072 to 22
    /// (libzstd's range; negative levels are the fast modes, 0 is the default). A level out
    /// of range makes encoding fail with [`EncodeError::Invalid`](crate::error::EncodeError::Invalid).
    /// Snappy and LZ4 have no levels here; a level given for them is ignored.
    ///
    /// zstd levels take effect with the cargo feature `zstd-c` (libzstd). The default, pure-Rust
    /// zstd (`ruzstd`) implements a single level, about libzstd's level 1, and uses it for
    /// every level: batches then come out larger than at Kafka's default level 3 (see
    /// `benches/benches/zstd_codecs.rs`), and any Kafka client reads them.
    pub const fn with_level(self, level: i32) -> CompressionConfig {
        CompressionConfig {
            codec: self,
            level: Some(level),
        }
    }
}

impl fmt::Display for Compression {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The text given to [`Compression::from_str`] names no codec.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown compression type {0:?} (expected none, gzip, snappy, lz4 or zstd)")]
pub struct ParseCompressionError(pub String);

impl FromStr for Compression {
    type Err = ParseCompressionError;

    /// Parses `none`, `gzip`, `snappy`, `lz4` or `zstd` (ASCII case ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Compression::ALL
            .into_iter()
            .find(|c| c.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| ParseCompressionError(s.to_owned()))
    }
}

/// A codec plus an optional level, for encoding. `level: None` is the codec's default (gzip 6,
/// zstd 3, matching the Java client; without the `zstd-c` feature zstd has one level, see
/// [`Compression::with_level`]). Build one with [`Compression::with_level`] or from a
/// [`Compression`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CompressionConfig {
    /// The codec.
    pub codec: Compression,
    /// The level, or `None` for the default.
    pub level: Option<i32>,
}

impl From<Compression> for CompressionConfig {
    fn from(codec: Compression) -> Self {
        CompressionConfig { codec, level: None }
    }
}

/// What a record's timestamp means: attribute bit 3 (KIP-32).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TimestampType {
    /// Set by the producer when the record was created. Magic-0 messages, which have no
    /// timestamp, also report this type, with timestamp [`NO_TIMESTAMP`].
    #[default]
    CreateTime,
    /// Set by the broker when it appended the batch; every record of the batch carries the
    /// batch's `maxTimestamp`.
    LogAppendTime,
}

impl TimestampType {
    /// The type named by bit 3 of batch `attributes`.
    pub const fn from_attributes(attributes: i16) -> TimestampType {
        if attributes & ATTR_TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// Options of decoding. The default verifies CRCs and caps decompression at
/// [`DEFAULT_MAX_DECOMPRESSED_SIZE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Verify each batch's CRC (CRC-32C for magic 2, CRC-32 for magic 0/1). Skipping it saves
    /// one pass over the bytes but lets corruption through.
    pub verify_crc: bool,
    /// Largest decompressed size of one batch, in bytes; a batch that inflates past it is a
    /// [`DecodeErrorKind::Decompression`] error naming the limit (protects against compression
    /// bombs). It also bounds what a batch may make the decompressor allocate: zstd frames may
    /// not ask for a window above it (nor below 2 MiB, the window of Kafka's default level),
    /// and the inner messages of a legacy wrapper count their bookkeeping
    /// (`size_of::<LegacyRecord>()` each) against it. While a batch is being decompressed its
    /// output vector may hold up to twice the limit. For a bound over all the batches of a
    /// fetch answer, see [`DecompressionBudget`].
    pub max_decompressed_size: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            verify_crc: true,
            max_decompressed_size: DEFAULT_MAX_DECOMPRESSED_SIZE,
        }
    }
}

/// A limit on the memory that decompression may take for a group of batches, typically every
/// batch of one fetch answer: the record sets of all its partitions share one budget
/// ([`RecordSet::with_budget`]), so a fetch answer of many small batches that each inflate
/// close to the per-batch cap cannot add up to gigabytes.
///
/// What is charged: the decompressed bytes of every compressed batch (magic 2 and legacy
/// wrappers), plus, for legacy wrappers, the bookkeeping of their inner messages
/// (`size_of::<LegacyRecord>()`, 88 bytes, each). Uncompressed batches are slices of the
/// fetch answer and cost nothing. A batch that would pass the limit is not decompressed further
/// and is a [`DecodeErrorKind::DecompressionBudget`] error naming the limit, the bytes already
/// used and the bytes the batch needs; the record set's iteration ends there (the batches
/// before it are good; a consumer keeps them and fetches again from that batch). Batches are
/// charged when they are decoded and nothing is given back when they are dropped.
///
/// Cloning shares the budget (an atomic counter; it can be used from several threads).
///
/// ```
/// use kafkawire_protocol::records::{DecompressionBudget, RecordSet, DecodeOptions};
/// # let partitions: Vec<bytes::Bytes> = vec![];
/// // One budget for one fetch answer, e.g. a few times its `fetch.max.bytes`.
/// let budget = DecompressionBudget::new(4 * 52_428_800);
/// for records in partitions {
///     for batch in RecordSet::with_budget(records, DecodeOptions::default(), &budget) {
///         // ...
/// #       let _ = batch;
///     }
/// }
/// assert!(budget.used() <= budget.limit());
/// ```
#[derive(Debug, Clone)]
pub struct DecompressionBudget {
    inner: Arc<BudgetInner>,
}

#[derive(Debug)]
struct BudgetInner {
    limit: usize,
    used: AtomicUsize,
}

impl DecompressionBudget {
    /// A budget of `limit` bytes.
    pub fn new(limit: usize) -> DecompressionBudget {
        DecompressionBudget {
            inner: Arc::new(BudgetInner {
                limit,
                used: AtomicUsize::new(0),
            }),
        }
    }

    /// The limit, in bytes.
    pub fn limit(&self) -> usize {
        self.inner.limit
    }

    /// Bytes charged so far.
    pub fn used(&self) -> usize {
        self.inner.used.load(Ordering::Relaxed)
    }

    /// Bytes left: `limit - used`.
    pub fn remaining(&self) -> usize {
        self.limit().saturating_sub(self.used())
    }

    /// The error for a batch needing `needed` bytes more than the budget has left.
    pub(crate) fn exceeded(&self, needed: usize) -> DecodeErrorKind {
        DecodeErrorKind::DecompressionBudget {
            limit: self.limit(),
            used: self.used(),
            needed,
        }
    }

    /// Takes `n` bytes from the budget, or fails (taking nothing) when fewer are left.
    pub(crate) fn charge(&self, n: usize) -> Result<(), DecodeErrorKind> {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|&total| total <= limit)
            })
            .map(|_| ())
            .map_err(|_| self.exceeded(n))
    }
}
