//! Walking a whole `records` field (a fetch response partition's record set) batch by batch.

use bytes::Bytes;

use super::batch::RecordBatch;
use super::legacy::{LegacyBatch, LegacyRecord, MIN_MESSAGE_V0};
use super::record::{Record, Records};
use super::{
    Compression, DecodeOptions, DecompressionBudget, LOG_OVERHEAD, MAGIC_V0, MAGIC_V1, MAGIC_V2,
    NO_PRODUCER_EPOCH, NO_PRODUCER_ID, TimestampType,
};
use crate::error::{DecodeError, DecodeErrorKind};

/// One batch of a record set: a magic-2 record batch or a legacy (magic 0/1) log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Batch {
    /// A magic-2 record batch (KIP-98).
    V2(RecordBatch),
    /// A magic 0 or 1 log entry, with the messages of a compressed wrapper.
    Legacy(LegacyBatch),
}

impl Batch {
    /// Magic byte: 0, 1 or 2.
    pub fn magic(&self) -> i8 {
        match self {
            Batch::V2(_) => MAGIC_V2,
            Batch::Legacy(b) => b.magic(),
        }
    }

    /// Offset of the first record.
    pub fn base_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.base_offset(),
            Batch::Legacy(b) => b.base_offset(),
        }
    }

    /// Offset of the last record. A consumer continues from `last_offset() + 1` even when the
    /// batch's records were all removed by compaction.
    pub fn last_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.last_offset(),
            Batch::Legacy(b) => b.last_offset(),
        }
    }

    /// The offset after the batch, where a consumer continues: `last_offset() + 1`. Decoding
    /// checks that it exists (a batch ending at `i64::MAX` is an error), and it saturates.
    pub fn next_offset(&self) -> i64 {
        match self {
            Batch::V2(b) => b.next_offset(),
            Batch::Legacy(b) => b.next_offset(),
        }
    }

    /// The codec the batch was compressed with.
    pub fn compression(&self) -> Compression {
        match self {
            Batch::V2(b) => b.compression(),
            Batch::Legacy(b) => b.compression(),
        }
    }

    /// The timestamp type.
    pub fn timestamp_type(&self) -> TimestampType {
        match self {
            Batch::V2(b) => b.timestamp_type(),
            Batch::Legacy(b) => b.timestamp_type(),
        }
    }

    /// Whether the batch belongs to a transaction (always false for legacy entries).
    pub fn is_transactional(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_transactional())
    }

    /// Whether the batch holds a control record (always false for legacy entries).
    pub fn is_control(&self) -> bool {
        matches!(self, Batch::V2(b) if b.is_control())
    }

    /// Producer id, -1 for none (and for legacy entries).
    pub fn producer_id(&self) -> i64 {
        match self {
            Batch::V2(b) => b.producer_id(),
            Batch::Legacy(_) => NO_PRODUCER_ID,
        }
    }

    /// Producer epoch, -1 for none (and for legacy entries).
    pub fn producer_epoch(&self) -> i16 {
        match self {
            Batch::V2(b) => b.producer_epoch(),
            Batch::Legacy(_) => NO_PRODUCER_EPOCH,
        }
    }

    /// Number of records (as announced by a magic-2 header).
    pub fn record_count(&self) -> usize {
        match self {
            Batch::V2(b) => b.record_count().max(0) as usize,
            Batch::Legacy(b) => b.records().len(),
        }
    }

    /// Iterates the records as [`Record`] views, the same type for every magic.
    pub fn records(&self) -> BatchRecords<'_> {
        BatchRecords {
            inner: match self {
                Batch::V2(b) => Inner::V2(b.records()),
                Batch::Legacy(b) => Inner::Legacy(b.base_offset(), b.records().iter()),
            },
        }
    }

    /// As [`Batch::records`], continuing where an earlier iteration of this batch stood
    /// ([`BatchRecords::position`]): the records before `position` are not decoded again, so a
    /// consumer handing out a large batch in parts walks each record once. A position taken
    /// from another batch that does not fit this one starts from the first record.
    pub fn records_from(&self, position: RecordsPosition) -> BatchRecords<'_> {
        let mut r = self.records();
        match (&mut r.inner, position.0) {
            (Inner::V2(v2), Pos::V2(consumed, remaining)) => {
                *v2 = v2.clone().resume((consumed, remaining));
            }
            (Inner::Legacy(_, it), Pos::Legacy(left)) => {
                let skip = it.len().saturating_sub(left);
                if left <= it.len() {
                    for _ in 0..skip {
                        it.next();
                    }
                }
            }
            _ => {}
        }
        r
    }

    /// The partition leader epoch the leader stamped on the batch (magic 2), or -1 for legacy
    /// message sets, which carry none (KIP-101).
    pub fn partition_leader_epoch(&self) -> i32 {
        match self {
            Batch::V2(b) => b.partition_leader_epoch(),
            Batch::Legacy(_) => -1,
        }
    }

    /// The magic-2 batch, if this is one.
    pub fn as_v2(&self) -> Option<&RecordBatch> {
        match self {
            Batch::V2(b) => Some(b),
            Batch::Legacy(_) => None,
        }
    }

    /// `sub` (a key, value or header value of a record of this batch) as shared [`Bytes`]
    /// without copying; see [`RecordBatch::slice_ref`]. Legacy entries copy.
    pub fn slice_ref(&self, sub: &[u8]) -> Bytes {
        match self {
            Batch::V2(b) => b.slice_ref(sub),
            Batch::Legacy(_) => Bytes::copy_from_slice(sub),
        }
    }
}

/// Iterator over the records of a [`Batch`] of any magic.
#[derive(Debug, Clone)]
pub struct BatchRecords<'a> {
    inner: Inner<'a>,
}

/// Where an iteration of a batch's records stands ([`BatchRecords::position`]), to continue
/// it later with [`Batch::records_from`] without decoding the records before it again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordsPosition(Pos);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pos {
    /// Bytes of the records consumed, records left.
    V2(usize, u32),
    /// Records left.
    Legacy(usize),
}

impl BatchRecords<'_> {
    /// Where this iteration stands: the next record [`Iterator::next`] would read.
    pub fn position(&self) -> RecordsPosition {
        RecordsPosition(match &self.inner {
            Inner::V2(r) => {
                let (consumed, remaining) = r.position();
                Pos::V2(consumed, remaining)
            }
            Inner::Legacy(_, it) => Pos::Legacy(it.len()),
        })
    }
}

#[derive(Debug, Clone)]
enum Inner<'a> {
    V2(Records<'a>),
    Legacy(i64, std::slice::Iter<'a, LegacyRecord>),
}

impl<'a> Iterator for BatchRecords<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::V2(r) => r.next(),
            Inner::Legacy(base, it) => it.next().map(|r| Ok(r.as_record(*base))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.inner {
            Inner::V2(r) => r.size_hint(),
            Inner::Legacy(_, it) => it.size_hint(),
        }
    }
}

/// A record set — the `records` field of a fetch response partition or produce request — read
/// as an iterator of [`Batch`]es.
///
/// - A trailing batch the broker cut short (it fills the response up to `max_bytes`) ends the
///   iteration without an error; [`RecordSet::truncated_tail`] then returns true.
/// - A complete batch that fails to decode (CRC mismatch, bad lengths, records overrunning) is
///   an error naming its base offset; the iteration then continues with the next batch, as its
///   length is known.
/// - A length prefix below the smallest legal size is an error that ends the iteration.
/// - A batch that would take the decompressed size past the set's [`DecompressionBudget`] (if
///   it has one) is a [`DecodeErrorKind::DecompressionBudget`] error that ends the iteration.
///
/// Memory: uncompressed batches share `records`; each compressed batch holds at most
/// [`DecodeOptions::max_decompressed_size`] bytes, and all of them together at most the budget.
#[derive(Debug, Clone)]
pub struct RecordSet {
    buf: Bytes,
    pos: usize,
    opts: DecodeOptions,
    budget: Option<DecompressionBudget>,
    truncated: bool,
    stopped: bool,
}

impl RecordSet {
    /// A record set over `records`, with default [`DecodeOptions`].
    pub fn new(records: Bytes) -> RecordSet {
        RecordSet::with_options(records, DecodeOptions::default())
    }

    /// A record set over `records` decoded with `opts`.
    pub fn with_options(records: Bytes, opts: DecodeOptions) -> RecordSet {
        RecordSet {
            buf: records,
            pos: 0,
            opts,
            budget: None,
            truncated: false,
            stopped: false,
        }
    }

    /// A record set over `records` decoded with `opts` whose decompression is charged to
    /// `budget`, shared with every other set given (a clone of) the same budget: one budget
    /// per fetch answer bounds the memory of all its partitions' batches together. See
    /// [`DecompressionBudget`] for what is charged.
    pub fn with_budget(
        records: Bytes,
        opts: DecodeOptions,
        budget: &DecompressionBudget,
    ) -> RecordSet {
        RecordSet {
            budget: Some(budget.clone()),
            ..RecordSet::with_options(records, opts)
        }
    }

    /// A record set over `records` (default options otherwise) whose batches together may
    /// decompress to at most `limit` bytes: [`RecordSet::with_budget`] with a budget of its
    /// own.
    pub fn with_decompression_limit(records: Bytes, limit: usize) -> RecordSet {
        RecordSet::with_budget(
            records,
            DecodeOptions::default(),
            &DecompressionBudget::new(limit),
        )
    }

    /// The budget this set charges, if it has one.
    pub fn budget(&self) -> Option<&DecompressionBudget> {
        self.budget.as_ref()
    }

    /// True once the iteration has reached a trailing partial batch. A consumer that got no
    /// complete batch at all and this flag should fetch again with a larger `max_bytes`.
    pub fn truncated_tail(&self) -> bool {
        self.truncated
    }

    /// Byte offset of the next batch in the record set.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// Bytes not yet iterated (including a truncated tail).
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn next_batch(&mut self) -> Option<Result<Batch, DecodeError>> {
        if self.stopped {
            return None;
        }
        let pos = self.pos;
        let rest = &self.buf[pos..];
        let Some((head, _)) = rest.split_first_chunk::<LOG_OVERHEAD>() else {
            self.stopped = true;
            self.truncated = !rest.is_empty();
            return None;
        };
        let mut o = [0u8; 8];
        o.copy_from_slice(&head[..8]);
        let base_offset = i64::from_be_bytes(o);
        let len = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if len < MIN_MESSAGE_V0 as i32 {
            self.stopped = true;
            let e = DecodeError::new(
                "record batch length",
                pos + 8,
                DecodeErrorKind::Invalid(format!(
                    "batch length {len} is below the {MIN_MESSAGE_V0}-byte minimum"
                )),
            );
            return Some(Err(e.in_context(|| {
                format!("record batch at base offset {base_offset}")
            })));
        }
        let size = LOG_OVERHEAD + len as usize;
        if size > rest.len() {
            self.stopped = true;
            self.truncated = true;
            return None;
        }
        self.pos += size;
        let bytes = self.buf.slice(pos..pos + size);
        let budget = self.budget.as_ref();
        let result = match bytes[16] as i8 {
            MAGIC_V2 => RecordBatch::decode_with_budget(bytes, &self.opts, budget).map(Batch::V2),
            MAGIC_V0 | MAGIC_V1 => {
                LegacyBatch::decode_with_budget(bytes, &self.opts, budget).map(Batch::Legacy)
            }
            m => Err(
                DecodeError::new("record batch magic", 16, DecodeErrorKind::UnknownMagic(m))
                    .in_context(|| format!("record batch at base offset {base_offset}")),
            ),
        };
        Some(result.map_err(|mut e| {
            if matches!(e.kind, DecodeErrorKind::DecompressionBudget { .. }) {
                // The budget is spent: later batches are left for another fetch.
                self.stopped = true;
            }
            e.offset = e.offset.saturating_add(pos);
            e
        }))
    }
}

impl Iterator for RecordSet {
    type Item = Result<Batch, DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_batch()
    }
}
