//! Encoding of magic-2 record batches (protocol guide, "Record Batch"; KIP-98) and of control
//! batches (transaction markers).

use bytes::{BufMut, Bytes, BytesMut};

use super::batch::CRC_START;
use super::compression::{check_config, compress};
use super::record::{ControlRecord, ControlRecordType};
use super::{
    ATTR_CONTROL, ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL, CompressionConfig, LOG_OVERHEAD,
    MAGIC_V2, NO_PARTITION_LEADER_EPOCH, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE,
    RECORD_BATCH_OVERHEAD,
};
use crate::error::EncodeError;
use crate::primitives::{put_varint, put_varlong, varint_len, varlong_len};

/// Builds one magic-2 record batch. Records are encoded as they are pushed (uncompressed);
/// [`RecordBatchBuilder::build`] compresses them and writes the header with the batch length,
/// last offset delta, max timestamp and CRC-32C.
///
/// ```
/// use kafkawire_protocol::records::{Compression, RecordBatchBuilder, RecordSet};
/// let mut b = RecordBatchBuilder::new();
/// b.compression(Compression::Lz4);
/// b.push(1_700_000_000_000, Some(b"k"), Some(b"v"), &[("trace", Some(b"1"))]).unwrap();
/// let bytes = b.build().unwrap();
/// let batch = RecordSet::new(bytes).next().unwrap().unwrap();
/// assert_eq!(batch.records().next().unwrap().unwrap().value(), Some(&b"v"[..]));
/// ```
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    compression: CompressionConfig,
    log_append_time: Option<i64>,
    base_timestamp: i64,
    max_timestamp: i64,
    count: i32,
    records: BytesMut,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        RecordBatchBuilder::new()
    }
}

/// Length in bytes of a nullable varint-prefixed field.
fn field_len(b: Option<usize>) -> usize {
    match b {
        None => 1,
        Some(n) => varint_len(n as i32) + n,
    }
}

fn too_long(what: &'static str, len: usize) -> EncodeError {
    EncodeError::TooLong { what, len }
}

fn check_len(what: &'static str, len: usize) -> Result<(), EncodeError> {
    if len > i32::MAX as usize {
        return Err(too_long(what, len));
    }
    Ok(())
}

impl RecordBatchBuilder {
    /// An empty builder: base offset 0, no producer id/epoch/sequence (-1), partition leader
    /// epoch -1, not transactional, no compression, CreateTime.
    pub fn new() -> Self {
        RecordBatchBuilder {
            base_offset: 0,
            partition_leader_epoch: NO_PARTITION_LEADER_EPOCH,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            compression: CompressionConfig::default(),
            log_append_time: None,
            base_timestamp: 0,
            max_timestamp: -1,
            count: 0,
            records: BytesMut::new(),
        }
    }

    /// An empty builder (as [`RecordBatchBuilder::new`]) whose record buffer holds
    /// `capacity` bytes of encoded records before it grows: a producer that accounts for a
    /// batch's memory up front reserves it here, so pushing never reallocates. `push` needs 8
    /// bytes of room past each record it writes.
    pub fn with_capacity(capacity: usize) -> Self {
        RecordBatchBuilder {
            records: BytesMut::with_capacity(capacity),
            ..RecordBatchBuilder::new()
        }
    }

    /// Bytes the record buffer holds before it grows.
    pub fn capacity(&self) -> usize {
        self.records.capacity()
    }

    /// Grows the record buffer to hold `additional` more bytes than its capacity now, exactly
    /// (where `push` would grow it by doubling), so a producer can grow it by what it accounted.
    pub fn reserve_exact(&mut self, additional: usize) {
        let target = self.records.capacity() + additional;
        if self.records.is_empty() {
            self.records = BytesMut::with_capacity(target);
            return;
        }
        let mut grown = BytesMut::with_capacity(target);
        grown.extend_from_slice(&self.records);
        self.records = grown;
    }

    /// Sets the base offset (0 for produce requests; a broker writes the log offset).
    pub fn base_offset(&mut self, offset: i64) -> &mut Self {
        self.base_offset = offset;
        self
    }

    /// Sets the partition leader epoch (KIP-101; -1 from producers).
    pub fn partition_leader_epoch(&mut self, epoch: i32) -> &mut Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the idempotent producer id, epoch and the sequence of the first record (KIP-98);
    /// may be called after records were pushed.
    pub fn producer(&mut self, id: i64, epoch: i16, base_sequence: i32) -> &mut Self {
        self.producer_id = id;
        self.producer_epoch = epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch transactional (attribute bit 4).
    pub fn transactional(&mut self, yes: bool) -> &mut Self {
        self.transactional = yes;
        self
    }

    /// Marks the batch as a control batch (attribute bit 5); its records must be control
    /// records (see [`control_batch`]).
    pub fn control(&mut self, yes: bool) -> &mut Self {
        self.control = yes;
        self
    }

    /// Sets the codec and level, e.g. `Compression::Zstd` or `Compression::Gzip.with_level(9)`.
    pub fn compression(&mut self, compression: impl Into<CompressionConfig>) -> &mut Self {
        self.compression = compression.into();
        self
    }

    /// Makes the batch LogAppendTime (attribute bit 3) with `max_timestamp` = `append_time`
    /// (milliseconds), as a broker writes it; `None` restores CreateTime.
    pub fn log_append_time(&mut self, append_time: Option<i64>) -> &mut Self {
        self.log_append_time = append_time;
        self
    }

    /// Number of records pushed.
    pub fn len(&self) -> usize {
        self.count as usize
    }

    /// Whether no record was pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Encoded size in bytes of the batch so far, header included, before compression: an upper
    /// bound for uncompressed batches, and what a producer compares with `batch.size`.
    pub fn estimated_size(&self) -> usize {
        RECORD_BATCH_OVERHEAD + self.records.len()
    }

    /// What [`RecordBatchBuilder::estimated_size`] would be after pushing this record, so a
    /// producer can decide to close the batch first.
    pub fn estimated_size_with(
        &self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let ts_delta = if self.count == 0 {
            0
        } else {
            timestamp.wrapping_sub(self.base_timestamp)
        };
        let body = self.body_len(ts_delta, self.count, key, value, headers);
        self.estimated_size() + varint_len(body.min(i32::MAX as usize) as i32) + body
    }

    fn body_len(
        &self,
        ts_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> usize {
        let mut n = 1
            + varlong_len(ts_delta)
            + varint_len(offset_delta)
            + field_len(key.map(<[u8]>::len))
            + field_len(value.map(<[u8]>::len))
            + varint_len(headers.len().min(i32::MAX as usize) as i32);
        for (k, v) in headers {
            n += field_len(Some(k.len())) + field_len(v.map(<[u8]>::len));
        }
        n
    }

    /// Appends a record: `timestamp` in milliseconds since the epoch, nullable key and value,
    /// and headers as (UTF-8 key, nullable value) pairs. Returns the record's offset delta.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
    ) -> Result<i32, EncodeError> {
        let offset_delta = self.count;
        if offset_delta == i32::MAX {
            return Err(too_long("record batch", offset_delta as usize));
        }
        // Lengths are checked as the record's size is summed (saturating, then checked against
        // i32::MAX as a whole); the errors come in the order key, value, header count, headers.
        let key_len = key.map_or(0, <[u8]>::len);
        let value_len = value.map_or(0, <[u8]>::len);
        if (key_len | value_len | headers.len()) > i32::MAX as usize {
            return Err(first_too_long(key_len, value_len, headers.len()));
        }
        let mut headers_len = 0usize;
        for (k, v) in headers {
            let v_len = v.map_or(0, <[u8]>::len);
            if (k.len() | v_len) > i32::MAX as usize {
                check_len("header key", k.len())?;
                check_len("header value", v_len)?;
            }
            headers_len = headers_len
                .saturating_add(uvlen(k.len() as u64 * 2) + k.len())
                .saturating_add(nullable_len(*v));
        }
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let Some(ts_delta) = timestamp.checked_sub(base) else {
            return Err(EncodeError::Invalid(format!(
                "timestamp {timestamp} is too far from the batch's base timestamp {base}"
            )));
        };
        let zz_ts = zigzag64(ts_delta);
        let zz_od = zigzag32(offset_delta);
        let zz_key = nullable_tag(key);
        let zz_value = nullable_tag(value);
        let (ts_n, od_n) = (uvlen(zz_ts), uvlen(zz_od));
        let (key_n, value_n) = (uvlen(zz_key), uvlen(zz_value));
        let body = (1 + ts_n + od_n + key_n + value_n)
            .saturating_add(key_len)
            .saturating_add(value_len)
            .saturating_add(uvlen(zigzag32(headers.len() as i32)))
            .saturating_add(headers_len);
        check_len("record", body)?;
        let zz_body = zigzag32(body as i32);
        let body_n = uvlen(zz_body);
        let out = &mut self.records;
        // Room for the record and for the 8-byte stores below, which run past the bytes they
        // keep, so none of the appends below reallocates.
        out.reserve(body_n + body + 8);

        // Every varint but a long timestamp delta is at most 5 bytes and written with one store
        // (see `put_uvarint35`).
        let start = out.len();
        put_uvarint35(out, zz_body, body_n);
        out.put_u8(0); // record attributes: unused
        if ts_n <= 5 {
            put_uvarint35(out, zz_ts, ts_n);
        } else {
            put_varlong(out, ts_delta);
        }
        put_uvarint35(out, zz_od, od_n);
        put_uvarint35(out, zz_key, key_n);
        if let Some(k) = key {
            out.extend_from_slice(k);
        }
        put_uvarint35(out, zz_value, value_n);
        if let Some(v) = value {
            out.extend_from_slice(v);
        }
        if headers.is_empty() {
            out.put_u8(0);
        } else {
            put_varint(out, headers.len() as i32);
            for (k, v) in headers {
                put_nullable(out, Some(k.as_bytes()));
                put_nullable(out, *v);
            }
        }
        debug_assert_eq!(out.len(), start + body_n + body);
        self.base_timestamp = base;
        self.max_timestamp = if self.count == 0 {
            timestamp
        } else {
            self.max_timestamp.max(timestamp)
        };
        self.count += 1;
        Ok(offset_delta)
    }

    /// Drops all records, keeping the settings and the buffer's capacity.
    pub fn clear(&mut self) {
        self.records.clear();
        self.count = 0;
        self.base_timestamp = 0;
        self.max_timestamp = -1;
    }

    /// The attribute bits this builder writes.
    fn attributes(&self) -> i16 {
        let mut a = self.compression.codec.id() as i16;
        if self.log_append_time.is_some() {
            a |= ATTR_TIMESTAMP_TYPE;
        }
        if self.transactional {
            a |= ATTR_TRANSACTIONAL;
        }
        if self.control {
            a |= ATTR_CONTROL;
        }
        a
    }

    /// Appends the encoded batch to `out`. A batch needs at least one record.
    pub fn write_to(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        if self.count == 0 {
            return Err(EncodeError::Invalid(
                "a record batch needs at least one record".into(),
            ));
        }
        check_config(self.compression)?;
        let start = out.len();
        out.reserve(RECORD_BATCH_OVERHEAD + self.records.len());
        out.put_i64(self.base_offset);
        out.put_i32(0); // batch length, patched below
        out.put_i32(self.partition_leader_epoch);
        out.put_i8(MAGIC_V2);
        out.put_u32(0); // crc, patched below
        out.put_i16(self.attributes());
        out.put_i32(self.count - 1);
        out.put_i64(self.base_timestamp);
        out.put_i64(self.log_append_time.unwrap_or(self.max_timestamp));
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_i32(self.base_sequence);
        out.put_i32(self.count);
        if let Err(e) = compress(self.compression, &self.records, out) {
            out.truncate(start);
            return Err(e);
        }
        let batch_length = out.len() - start - LOG_OVERHEAD;
        if batch_length > i32::MAX as usize {
            out.truncate(start);
            return Err(too_long("record batch", batch_length));
        }
        out[start + 8..start + 12].copy_from_slice(&(batch_length as i32).to_be_bytes());
        let crc = crc32c::crc32c(&out[start + CRC_START..]);
        out[start + 17..start + 21].copy_from_slice(&crc.to_be_bytes());
        Ok(())
    }

    /// The encoded batch. A batch needs at least one record.
    pub fn build(&self) -> Result<Bytes, EncodeError> {
        let mut out = BytesMut::new();
        self.write_to(&mut out)?;
        Ok(out.freeze())
    }
}

/// Rewrites the producer id, epoch, base sequence and transactional bit of an encoded magic-2
/// record batch in place, and its CRC-32C (protocol guide, "Record Batch"; KIP-98). The records
/// (compressed or not) are untouched, so a producer can give a batch it already encoded a new
/// epoch and sequence (KIP-360) without encoding it again.
///
/// # Errors
/// [`EncodeError::Invalid`] when `batch` is shorter than a batch header or not magic 2.
pub fn set_producer(
    batch: &mut [u8],
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
) -> Result<(), EncodeError> {
    if batch.len() < RECORD_BATCH_OVERHEAD || batch[16] as i8 != MAGIC_V2 {
        return Err(EncodeError::Invalid(
            "not an encoded magic-2 record batch".into(),
        ));
    }
    let mut attributes = i16::from_be_bytes([batch[21], batch[22]]);
    if transactional {
        attributes |= ATTR_TRANSACTIONAL;
    } else {
        attributes &= !ATTR_TRANSACTIONAL;
    }
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[43..51].copy_from_slice(&producer_id.to_be_bytes());
    batch[51..53].copy_from_slice(&producer_epoch.to_be_bytes());
    batch[53..57].copy_from_slice(&base_sequence.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// The error for the first of a record's key, value and header count that is too long, in the
/// order `push` checks them.
#[cold]
fn first_too_long(key: usize, value: usize, headers: usize) -> EncodeError {
    [
        ("record key", key),
        ("record value", value),
        ("record headers", headers),
    ]
    .into_iter()
    .find(|&(_, len)| len > i32::MAX as usize)
    .map_or_else(|| too_long("record", 0), |(what, len)| too_long(what, len))
}

#[inline]
fn zigzag32(v: i32) -> u64 {
    ((v << 1) ^ (v >> 31)) as u32 as u64
}

#[inline]
fn zigzag64(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Encoded length of a nullable varint-prefixed field.
#[inline]
fn nullable_len(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => uvlen(b.len() as u64 * 2) + b.len(),
    }
}

/// The zigzag-encoded length prefix of a nullable field (-1 for null); the length fits an i32.
#[inline]
fn nullable_tag(b: Option<&[u8]>) -> u64 {
    match b {
        None => 1,
        Some(b) => b.len() as u64 * 2,
    }
}

/// Number of bytes of `v` as an unsigned varint: ceil(significant bits / 7), at least 1,
/// computed as (9 * bits + 64) / 64 (exact for 1..=64 bits) to spare a division.
#[inline(always)]
fn uvlen(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    (bits * 9 + 64) / 64
}

/// Appends `v` (below 2^35) as an unsigned varint of `n` = `uvlen(v)` bytes with one store:
/// one byte, two bytes (lengths below 8 KiB, offset and timestamp deltas within +-8 KiB), or
/// for 3 to 5 bytes the 7-bit groups spread over a u64 in a register, stored as 8 bytes and
/// the excess cut off again (so `out` should have room for 8 more bytes).
#[inline(always)]
fn put_uvarint35(out: &mut BytesMut, v: u64, n: usize) {
    debug_assert!(v < 1 << 35 && n == uvlen(v));
    match n {
        1 => out.put_u8(v as u8),
        2 => out.put_u16_le(((v & 0x7f) | 0x80 | ((v >> 7) << 8)) as u16),
        _ => {
            let len = out.len();
            let spread = (v & 0x7f)
                | ((v & (0x7f << 7)) << 1)
                | ((v & (0x7f << 14)) << 2)
                | ((v & (0x7f << 21)) << 3)
                | ((v & (0x7f << 28)) << 4);
            // Continuation bits on every byte of the varint but its last.
            let cont = 0x0000_0080_8080_8080u64 & ((1u64 << (8 * (n - 1))) - 1);
            out.put_u64_le(spread | cont);
            out.truncate(len + n);
        }
    }
}

fn put_nullable(out: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, b.len() as i32);
            out.put_slice(b);
        }
    }
}

/// An end-transaction marker (KIP-98): the control record a transaction coordinator has the
/// partition leader write when a transaction commits or aborts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EndTxnMarker {
    /// True for commit, false for abort.
    pub commit: bool,
    /// Epoch of the transaction coordinator that wrote the marker.
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// The control record value: int16 version (0), int32 coordinator epoch.
    pub fn value(&self) -> [u8; 6] {
        let mut v = [0u8; 6];
        v[2..].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        v
    }

    /// Parses a control record value written by [`EndTxnMarker::value`] (at least 6 bytes);
    /// `commit` is taken from the record's key.
    pub fn parse(key: &ControlRecord, value: &[u8]) -> Option<EndTxnMarker> {
        let commit = match key.kind {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            ControlRecordType::Other(_) => return None,
        };
        let e: [u8; 4] = value.get(2..6)?.try_into().ok()?;
        Some(EndTxnMarker {
            commit,
            coordinator_epoch: i32::from_be_bytes(e),
        })
    }
}

/// A control batch holding one transaction marker, as a partition leader appends it: at
/// `base_offset`, for producer `producer_id`/`producer_epoch`, transactional and control bits
/// set, no sequence, `timestamp` in milliseconds.
pub fn control_batch(
    base_offset: i64,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    timestamp: i64,
    marker: EndTxnMarker,
) -> Bytes {
    let key = ControlRecord {
        version: 0,
        kind: if marker.commit {
            ControlRecordType::Commit
        } else {
            ControlRecordType::Abort
        },
    }
    .to_key();
    let mut b = RecordBatchBuilder::new();
    b.base_offset(base_offset)
        .partition_leader_epoch(partition_leader_epoch)
        .producer(producer_id, producer_epoch, NO_SEQUENCE)
        .transactional(true)
        .control(true);
    // One tiny uncompressed record: neither push nor build can fail.
    b.push(timestamp, Some(&key), Some(&marker.value()), &[])
        .and_then(|_| b.build())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    //! The builder's output against a plain, byte-at-a-time encoding of the same records written
    //! from the protocol guide's layout, and decoded back.

    use proptest::prelude::*;

    use super::*;
    use crate::records::{Batch, Compression, RecordSet};

    use crate::records::tests::{Hdrs, Rec, try_push as push};

    fn ref_uvarint(out: &mut Vec<u8>, mut v: u64) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }

    fn ref_varint(out: &mut Vec<u8>, v: i64) {
        ref_uvarint(out, ((v << 1) ^ (v >> 63)) as u64);
    }

    fn ref_nullable(out: &mut Vec<u8>, b: Option<&[u8]>) {
        match b {
            None => ref_varint(out, -1),
            Some(b) => {
                ref_varint(out, b.len() as i64);
                out.extend_from_slice(b);
            }
        }
    }

    /// Record: length varint, attributes int8, timestamp delta varlong, offset delta varint,
    /// key, value, header count varint, headers (key, nullable value).
    fn ref_record(out: &mut Vec<u8>, base_ts: i64, offset_delta: i32, r: &Rec) {
        let mut body = vec![0u8];
        ref_varint(&mut body, r.ts - base_ts);
        ref_varint(&mut body, offset_delta.into());
        ref_nullable(&mut body, r.key.as_deref());
        ref_nullable(&mut body, r.value.as_deref());
        ref_varint(&mut body, r.headers.len() as i64);
        for (k, v) in &r.headers {
            ref_nullable(&mut body, Some(k.as_bytes()));
            ref_nullable(&mut body, v.as_deref());
        }
        ref_varint(out, body.len() as i64);
        out.extend_from_slice(&body);
    }

    /// An uncompressed batch: the 61-byte header (CRC-32C from the attributes on), records.
    fn ref_batch(base_offset: i64, producer: (i64, i16, i32), recs: &[Rec]) -> Vec<u8> {
        let base_ts = recs[0].ts;
        let mut records = vec![];
        for (i, r) in recs.iter().enumerate() {
            ref_record(&mut records, base_ts, i as i32, r);
        }
        let mut out = vec![];
        out.extend_from_slice(&base_offset.to_be_bytes());
        out.extend_from_slice(&((RECORD_BATCH_OVERHEAD - 12 + records.len()) as i32).to_be_bytes());
        out.extend_from_slice(&(-1i32).to_be_bytes()); // partition leader epoch
        out.push(2); // magic
        out.extend_from_slice(&[0; 4]); // crc, below
        out.extend_from_slice(&0i16.to_be_bytes()); // attributes
        out.extend_from_slice(&(recs.len() as i32 - 1).to_be_bytes());
        out.extend_from_slice(&base_ts.to_be_bytes());
        let max_ts = recs.iter().map(|r| r.ts).max().unwrap();
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&producer.0.to_be_bytes());
        out.extend_from_slice(&producer.1.to_be_bytes());
        out.extend_from_slice(&producer.2.to_be_bytes());
        out.extend_from_slice(&(recs.len() as i32).to_be_bytes());
        out.extend_from_slice(&records);
        let crc = crc32c::crc32c(&out[21..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// Small lengths (across 63/64, where a length's varint grows to 2 bytes), lengths across
    /// 8191/8192 (3 bytes), and large ones (3-byte record lengths).
    #[test]
    fn set_producer_rewrites_ids_and_crc_only() {
        for codec in [Compression::None, Compression::Lz4] {
            let mut b = RecordBatchBuilder::with_capacity(256);
            b.compression(codec);
            b.producer(7, 1, 40);
            b.push(1_000, Some(b"k"), Some(b"v"), &[]).unwrap();
            b.push(1_002, None, Some(b"w"), &[]).unwrap();
            let mut expected = b.clone();
            expected.producer(9, 3, 100).transactional(true);
            let mut bytes = b.build().unwrap().to_vec();
            set_producer(&mut bytes, 9, 3, 100, true).unwrap();
            assert_eq!(bytes, expected.build().unwrap().to_vec(), "{codec:?}");
            let batch = RecordSet::new(Bytes::from(bytes)).next().unwrap().unwrap();
            assert_eq!(
                (
                    batch.producer_id(),
                    batch.producer_epoch(),
                    batch.is_transactional()
                ),
                (9, 3, true)
            );
        }
        assert!(set_producer(&mut [0u8; 60], 1, 1, 1, false).is_err());
    }

    fn bytes_strategy() -> impl Strategy<Value = Option<Vec<u8>>> {
        let len = prop_oneof![
            4 => 0usize..130,
            1 => 8180usize..8200,
            1 => 16_300usize..16_400,
        ];
        proptest::option::weighted(
            0.9,
            len.prop_flat_map(|n| proptest::collection::vec(any::<u8>(), n)),
        )
    }

    /// Timestamp deltas from the first record: small (either sign), around the varint
    /// boundaries, and beyond 2^34 (more than five varint bytes).
    fn delta_strategy() -> impl Strategy<Value = i64> {
        prop_oneof![
            4 => -200i64..200,
            1 => -9000i64..9000,
            1 => (1i64 << 33) - 10..(1i64 << 35) + 10,
            1 => -(1i64 << 50)..(1i64 << 50),
        ]
    }

    fn rec_strategy() -> impl Strategy<Value = Rec> {
        (
            delta_strategy(),
            bytes_strategy(),
            bytes_strategy(),
            proptest::collection::vec(
                (
                    "[a-zé]{0,6}",
                    proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
                ),
                0..3,
            ),
        )
            .prop_map(|(ts, key, value, headers)| Rec {
                ts,
                key,
                value,
                headers,
            })
    }

    fn check(base_ts: i64, base_offset: i64, producer: (i64, i16, i32), mut recs: Vec<Rec>) {
        for r in &mut recs {
            r.ts += base_ts;
        }
        let mut b = RecordBatchBuilder::new();
        b.base_offset(base_offset)
            .producer(producer.0, producer.1, producer.2);
        for (i, r) in recs.iter().enumerate() {
            assert_eq!(push(&mut b, r).unwrap(), i as i32);
        }
        let bytes = b.build().unwrap();
        let want = ref_batch(base_offset, producer, &recs);
        assert_eq!(b.estimated_size(), want.len());
        assert_eq!(&bytes[..], &want[..]);

        let mut set = RecordSet::new(bytes);
        let Some(Ok(Batch::V2(batch))) = set.next() else {
            panic!("one magic-2 batch")
        };
        assert!(set.next().is_none());
        let got: Vec<_> = batch.records().collect::<Result<_, _>>().unwrap();
        assert_eq!(got.len(), recs.len());
        for (i, (g, r)) in got.iter().zip(&recs).enumerate() {
            assert_eq!(g.offset(), base_offset + i as i64);
            assert_eq!(g.timestamp(), r.ts);
            assert_eq!(g.key(), r.key.as_deref());
            assert_eq!(g.value(), r.value.as_deref());
            let hs: Hdrs = g
                .headers()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect();
            assert_eq!(hs, r.headers);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn encoding_matches_a_plain_reference_and_decodes_back(
            recs in proptest::collection::vec(rec_strategy(), 1..12),
            base_ts in -(1i64 << 60)..(1i64 << 60),
            base_offset in 0i64..1 << 40,
            producer in (-1i64..1000, -1i16..10, -1i32..1000),
        ) {
            check(base_ts, base_offset, producer, recs);
        }

        #[test]
        fn estimated_size_with_is_the_size_after_push(
            recs in proptest::collection::vec(rec_strategy(), 1..8),
        ) {
            let mut b = RecordBatchBuilder::new();
            for r in &recs {
                let h: Vec<(&str, Option<&[u8]>)> =
                    r.headers.iter().map(|(k, v)| (k.as_str(), v.as_deref())).collect();
                let want = b.estimated_size_with(r.ts, r.key.as_deref(), r.value.as_deref(), &h);
                push(&mut b, r).unwrap();
                prop_assert_eq!(b.estimated_size(), want);
            }
        }
    }

    /// Offset deltas across the varint boundaries (63/64 and 8191/8192) with tiny records.
    #[test]
    fn many_records_match_the_reference() {
        let recs: Vec<Rec> = (0..8300)
            .map(|i| Rec {
                ts: (i % 300) - 100,
                key: (i % 3 != 0).then(|| vec![i as u8; (i % 5) as usize]),
                value: (i % 7 != 0).then(|| vec![1; (i % 70) as usize]),
                headers: vec![],
            })
            .collect();
        check(1_700_000_000_000, 0, (-1, -1, -1), recs);
    }

    #[test]
    fn extreme_timestamp_deltas() {
        let rec = |ts| Rec {
            ts,
            key: None,
            value: Some(b"v".to_vec()),
            headers: vec![("k".into(), None)],
        };
        check(
            0,
            5,
            (1, 2, 3),
            vec![rec(0), rec(i64::MAX), rec(i64::MIN + 1), rec(-1)],
        );
        check(i64::MIN, 0, (1, 2, 3), vec![rec(0), rec(i64::MAX)]);
        let mut b = RecordBatchBuilder::new();
        b.push(i64::MIN, None, None, &[]).unwrap();
        assert!(matches!(
            b.push(1, None, None, &[]),
            Err(EncodeError::Invalid(_))
        ));
        assert_eq!(b.len(), 1);
    }
}
