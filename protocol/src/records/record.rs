//! Records of a magic-2 batch: the borrowed [`Record`] view, its headers, control records, and
//! the [`Records`] iterator (protocol guide, "Record"; KIP-82 headers; KIP-98 control records).

use super::TimestampType;
use super::batch::BatchHeader;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::primitives::decode_uvarint;

/// One record of a batch, borrowed from the batch's buffer (protocol guide, "Record"). Offsets
/// and timestamps are absolute. Legacy (magic 0/1) messages are seen through the same view, with
/// no headers and no sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    pub(super) offset: i64,
    pub(super) timestamp: i64,
    pub(super) offset_delta: i32,
    pub(super) timestamp_delta: i64,
    pub(super) sequence: i32,
    pub(super) attributes: i8,
    pub(super) control: bool,
    pub(super) key: Option<&'a [u8]>,
    pub(super) value: Option<&'a [u8]>,
    pub(super) headers: &'a [u8],
    pub(super) header_count: u32,
}

impl<'a> Record<'a> {
    /// Absolute offset: batch base offset + offset delta.
    #[inline]
    pub fn offset(&self) -> i64 {
        self.offset
    }

    /// Absolute timestamp in milliseconds since the epoch: base timestamp + delta for
    /// CreateTime, the batch's max timestamp for LogAppendTime, -1 for magic-0 messages.
    #[inline]
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// Offset relative to the batch's base offset.
    #[inline]
    pub fn offset_delta(&self) -> i32 {
        self.offset_delta
    }

    /// Timestamp relative to the batch's base timestamp, in milliseconds, as stored.
    #[inline]
    pub fn timestamp_delta(&self) -> i64 {
        self.timestamp_delta
    }

    /// Producer sequence of this record: batch base sequence + offset delta (wrapping past
    /// `i32::MAX` to 0, as KIP-98 specifies), or -1 when the batch has none.
    #[inline]
    pub fn sequence(&self) -> i32 {
        self.sequence
    }

    /// The record's attribute byte (unused by Kafka so far; the message attributes for magic
    /// 0/1).
    #[inline]
    pub fn attributes(&self) -> i8 {
        self.attributes
    }

    /// Whether this is a control record (its batch has the control bit).
    #[inline]
    pub fn is_control(&self) -> bool {
        self.control
    }

    /// The key, `None` when null.
    #[inline]
    pub fn key(&self) -> Option<&'a [u8]> {
        self.key
    }

    /// The value, `None` when null (a tombstone on a compacted topic).
    #[inline]
    pub fn value(&self) -> Option<&'a [u8]> {
        self.value
    }

    /// Number of headers.
    #[inline]
    pub fn header_count(&self) -> usize {
        self.header_count as usize
    }

    /// The headers in wire order (KIP-82). Their layout and UTF-8 keys were checked when the
    /// record was read.
    #[inline]
    pub fn headers(&self) -> Headers<'a> {
        Headers {
            buf: self.headers,
            remaining: self.header_count,
        }
    }

    /// The parsed key of a control record; `None` for ordinary records or a control key
    /// shorter than 4 bytes.
    pub fn control_record(&self) -> Option<ControlRecord> {
        if !self.control {
            return None;
        }
        ControlRecord::parse(self.key?).ok()
    }
}

/// One record header (KIP-82): a UTF-8 key and a nullable value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// The header key.
    pub key: &'a str,
    /// The header value, `None` when null.
    pub value: Option<&'a [u8]>,
}

/// Iterator over the headers of a [`Record`].
#[derive(Debug, Clone)]
pub struct Headers<'a> {
    buf: &'a [u8],
    remaining: u32,
}

impl<'a> Iterator for Headers<'a> {
    type Item = Header<'a>;

    fn next(&mut self) -> Option<Header<'a>> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        // The layout was validated by `Records::next`; a failure here cannot happen, and would
        // just end the iteration.
        let mut c = Cursor {
            buf: self.buf,
            total: self.buf.len(),
        };
        let key = c.nullable_slice("header key").ok()??;
        let value = c.nullable_slice("header value").ok()?;
        self.buf = c.buf;
        Some(Header {
            key: std::str::from_utf8(key).ok()?,
            value,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize))
    }
}

/// Type of a control record (KIP-98; KRaft adds types used only in metadata logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlRecordType {
    /// Type 0: the transaction was aborted.
    Abort,
    /// Type 1: the transaction was committed.
    Commit,
    /// Any other type (e.g. KRaft's leader change, 2, and snapshot markers, 3 and 4).
    Other(i16),
}

impl ControlRecordType {
    /// The type id on the wire.
    pub const fn id(self) -> i16 {
        match self {
            ControlRecordType::Abort => 0,
            ControlRecordType::Commit => 1,
            ControlRecordType::Other(t) => t,
        }
    }

    /// The type with id `id`.
    pub const fn from_id(id: i16) -> ControlRecordType {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            t => ControlRecordType::Other(t),
        }
    }
}

/// The key of a control record: int16 version, int16 type (KIP-98).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ControlRecord {
    /// Key schema version (0 so far).
    pub version: i16,
    /// What the marker says.
    pub kind: ControlRecordType,
}

impl ControlRecord {
    /// Parses a control record key (at least 4 bytes; later versions may append fields).
    pub fn parse(key: &[u8]) -> Result<ControlRecord, DecodeError> {
        match key {
            [v0, v1, t0, t1, ..] => Ok(ControlRecord {
                version: i16::from_be_bytes([*v0, *v1]),
                kind: ControlRecordType::from_id(i16::from_be_bytes([*t0, *t1])),
            }),
            _ => Err(DecodeError::new(
                "control record key",
                0,
                DecodeErrorKind::Truncated {
                    needed: 4,
                    remaining: key.len(),
                },
            )),
        }
    }

    /// The 4-byte key.
    pub fn to_key(&self) -> [u8; 4] {
        let v = self.version.to_be_bytes();
        let t = self.kind.id().to_be_bytes();
        [v[0], v[1], t[0], t[1]]
    }
}

/// A cursor over the tail of a batch's record bytes: every read shrinks the slice. `total` is the
/// length of the whole buffer, so `total - buf.len()` is the position, for error messages.
struct Cursor<'a> {
    buf: &'a [u8],
    total: usize,
}

#[cold]
#[inline(never)]
fn error_at(what: &'static str, at: usize, kind: DecodeErrorKind) -> DecodeError {
    DecodeError::new(what, at, kind)
}

impl<'a> Cursor<'a> {
    #[inline(always)]
    fn pos(&self) -> usize {
        self.total - self.buf.len()
    }

    #[inline(always)]
    fn u8(&mut self, what: &'static str) -> Result<u8, DecodeError> {
        match *self.buf {
            [b, ref rest @ ..] => {
                self.buf = rest;
                Ok(b)
            }
            [] => Err(error_at(
                what,
                self.pos(),
                DecodeErrorKind::Truncated {
                    needed: 1,
                    remaining: 0,
                },
            )),
        }
    }

    /// An unsigned varint of up to `max` bytes: one-, two- and three-byte values are decoded
    /// inline, longer ones (and errors) out of line.
    #[inline(always)]
    fn uvarint(&mut self, max: usize, what: &'static str) -> Result<u64, DecodeError> {
        match *self.buf {
            [b0, ref rest @ ..] if b0 < 0x80 => {
                self.buf = rest;
                Ok(b0 as u64)
            }
            [b0, b1, ref rest @ ..] if b1 < 0x80 => {
                self.buf = rest;
                Ok((b0 & 0x7f) as u64 | (b1 as u64) << 7)
            }
            [b0, b1, b2, ref rest @ ..] if b2 < 0x80 => {
                self.buf = rest;
                Ok((b0 & 0x7f) as u64 | ((b1 & 0x7f) as u64) << 7 | (b2 as u64) << 14)
            }
            _ => self.uvarint_slow(max, what),
        }
    }

    #[cold]
    #[inline(never)]
    fn uvarint_slow(&mut self, max: usize, what: &'static str) -> Result<u64, DecodeError> {
        match decode_uvarint(self.buf, max) {
            Ok((v, n)) => {
                self.buf = &self.buf[n..];
                Ok(v)
            }
            Err(kind) => Err(error_at(what, self.pos(), kind)),
        }
    }

    /// A zigzag varint (VARINT, at most 5 bytes).
    #[inline(always)]
    fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let v = self.uvarint(5, what)?;
        if v > u32::MAX as u64 {
            return Err(error_at(what, self.pos(), DecodeErrorKind::VarintOverflow));
        }
        let v = v as u32;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// A zigzag varlong (VARLONG, at most 10 bytes).
    #[inline(always)]
    fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let v = self.uvarint(10, what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// `n` bytes.
    #[inline(always)]
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        match self.buf.split_at_checked(n) {
            Some((head, rest)) => {
                self.buf = rest;
                Ok(head)
            }
            None => Err(error_at(
                what,
                self.pos(),
                DecodeErrorKind::Truncated {
                    needed: n,
                    remaining: self.buf.len(),
                },
            )),
        }
    }

    /// A varint length (-1 for null) followed by that many bytes.
    #[inline(always)]
    fn nullable_slice(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, DecodeError> {
        let len = self.varint(what)?;
        if len < 0 {
            if len == -1 {
                return Ok(None);
            }
            return Err(error_at(
                what,
                self.pos(),
                DecodeErrorKind::InvalidLength(len as i64),
            ));
        }
        self.take(len as usize, what).map(Some)
    }
}

/// Iterator over the records of a [`RecordBatch`](super::RecordBatch), yielding borrowed
/// [`Record`] views. It checks each record's framing (length, varints, key/value/header bounds,
/// UTF-8 header keys), that exactly `recordsCount` records fill the buffer, and stops after the
/// first error, which names the batch's base offset.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    buf: &'a [u8],
    total: usize,
    remaining: u32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    base_sequence: i32,
    control: bool,
}

impl<'a> Records<'a> {
    pub(super) fn new(header: &BatchHeader, records: &'a [u8]) -> Self {
        Records {
            buf: records,
            total: records.len(),
            remaining: header.records_count.max(0) as u32,
            base_offset: header.base_offset,
            base_timestamp: header.base_timestamp,
            log_append_time: (header.timestamp_type() == TimestampType::LogAppendTime)
                .then_some(header.max_timestamp),
            base_sequence: header.base_sequence,
            control: header.is_control(),
        }
    }

    /// Where the iteration stands: bytes of the batch's records consumed and records left.
    pub(crate) fn position(&self) -> (usize, u32) {
        (self.total - self.buf.len(), self.remaining)
    }

    /// Continues at `position` (from [`Records::position`] on the same batch): the records
    /// before it are not read again. A position that does not fit this batch starts over.
    pub(crate) fn resume(mut self, (consumed, remaining): (usize, u32)) -> Self {
        if consumed <= self.buf.len() && remaining <= self.remaining {
            self.buf = &self.buf[consumed..];
            self.remaining = remaining;
        }
        self
    }

    #[cold]
    #[inline(never)]
    fn fail(&mut self, e: DecodeError) -> DecodeError {
        self.remaining = 0;
        self.buf = &[];
        let base = self.base_offset;
        e.in_context(|| format!("record batch at base offset {base}"))
    }

    /// Reads one record. The fields are read with one cursor over the rest of the buffer (every
    /// read is bounds-checked against it), then the bytes consumed must equal the record's
    /// length prefix, so a field cannot end up reading into the next record unnoticed.
    #[inline(always)]
    fn read(&mut self) -> Result<Record<'a>, DecodeError> {
        let mut c = Cursor {
            buf: self.buf,
            total: self.total,
        };
        let len = c.varint("record length")?;
        if len < 0 || len as usize > c.buf.len() {
            return Err(error_at(
                "record length",
                c.pos(),
                DecodeErrorKind::Invalid(format!(
                    "record length {len} does not fit the {} bytes left",
                    c.buf.len()
                )),
            ));
        }
        let end = c.buf.len() - len as usize;
        let start = c.pos();
        let attributes = c.u8("record attributes")? as i8;
        let timestamp_delta = c.varlong("record timestamp delta")?;
        let offset_delta = c.varint("record offset delta")?;
        let key = c.nullable_slice("record key")?;
        let value = c.nullable_slice("record value")?;
        let header_count = c.varint("record header count")?;
        let mut headers: &'a [u8] = &[];
        if header_count != 0 {
            headers = c.buf;
            c.buf = check_headers(c.buf, c.total, header_count)?;
        }
        if c.buf.len() != end {
            return Err(error_at(
                "record",
                start,
                DecodeErrorKind::Invalid(format!(
                    "record length {len} does not match its fields ({} bytes)",
                    (c.pos() as i64) - (start as i64)
                )),
            ));
        }
        // The batch ends before i64::MAX (checked when it was decoded); a record past it must
        // not wrap around or leave no next offset.
        let offset = match self.base_offset.checked_add(offset_delta as i64) {
            Some(o) if o < i64::MAX => o,
            _ => {
                return Err(error_at(
                    "record offset delta",
                    start,
                    DecodeErrorKind::Invalid(format!(
                        "base offset {} + offset delta {offset_delta} leaves no next offset below i64::MAX",
                        self.base_offset
                    )),
                ));
            }
        };
        self.buf = c.buf;
        let sequence = if self.base_sequence < 0 {
            -1
        } else {
            // KIP-98: sequences wrap from i32::MAX to 0.
            (self.base_sequence as i64 + offset_delta as i64).rem_euclid(1 << 31) as i32
        };
        Ok(Record {
            offset,
            timestamp: match self.log_append_time {
                Some(t) => t,
                None => self.base_timestamp.wrapping_add(timestamp_delta),
            },
            offset_delta,
            timestamp_delta,
            sequence,
            attributes,
            control: self.control,
            key,
            value,
            headers,
            header_count: header_count as u32,
        })
    }
}

/// Checks `count` headers at the start of `buf` (a tail of a `total`-byte buffer): non-null
/// UTF-8 keys and nullable values, all in bounds. Returns the bytes after them.
#[inline(never)]
fn check_headers(buf: &[u8], total: usize, count: i32) -> Result<&[u8], DecodeError> {
    let mut c = Cursor { buf, total };
    if count < 0 {
        return Err(error_at(
            "record header count",
            c.pos(),
            DecodeErrorKind::InvalidLength(count as i64),
        ));
    }
    for _ in 0..count {
        let at = c.pos();
        let Some(key) = c.nullable_slice("header key")? else {
            return Err(error_at("header key", at, DecodeErrorKind::UnexpectedNull));
        };
        if std::str::from_utf8(key).is_err() {
            return Err(error_at("header key", at, DecodeErrorKind::InvalidUtf8));
        }
        c.nullable_slice("header value")?;
    }
    Ok(c.buf)
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, DecodeError>;

    #[inline]
    fn next(&mut self) -> Option<Self::Item> {
        if self.remaining == 0 {
            if self.buf.is_empty() {
                return None;
            }
            let extra = self.buf.len();
            let at = self.total - extra;
            let e = error_at(
                "records",
                at,
                DecodeErrorKind::Invalid(format!("{extra} bytes left over after the last record")),
            );
            return Some(Err(self.fail(e)));
        }
        match self.read() {
            Ok(r) => {
                self.remaining -= 1;
                Some(Ok(r))
            }
            Err(e) => Some(Err(self.fail(e))),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (0, Some(self.remaining as usize + 1))
    }
}
