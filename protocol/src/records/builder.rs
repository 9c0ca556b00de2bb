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
        check_len("record key", key.map_or(0, <[u8]>::len))?;
        check_len("record value", value.map_or(0, <[u8]>::len))?;
        check_len("record headers", headers.len())?;
        for (k, v) in headers {
            check_len("header key", k.len())?;
            check_len("header value", v.map_or(0, <[u8]>::len))?;
        }
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        let ts_delta = timestamp.checked_sub(base).ok_or_else(|| {
            EncodeError::Invalid(format!(
                "timestamp {timestamp} is too far from the batch's base timestamp {base}"
            ))
        })?;
        let body = self.body_len(ts_delta, offset_delta, key, value, headers);
        check_len("record", body)?;
        self.records.reserve(varint_len(body as i32) + body);
        let out = &mut self.records;
        put_varint(out, body as i32);
        out.put_i8(0); // record attributes: unused
        put_varlong(out, ts_delta);
        put_varint(out, offset_delta);
        put_nullable(out, key);
        put_nullable(out, value);
        put_varint(out, headers.len() as i32);
        for (k, v) in headers {
            put_nullable(out, Some(k.as_bytes()));
            put_nullable(out, *v);
        }
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
