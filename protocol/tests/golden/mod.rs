//! Helpers shared by the golden-vector tests (`golden_*.rs`): a hand-rolled byte writer, the
//! round-trip check and a few constants.
//!
//! Every expected buffer in those tests is written field by field from the layouts in the Kafka
//! protocol guide ("Protocol Primitive Types", "The Messages") and the message schemas, through
//! the small [`W`] writer below. `W` does not use the crate's encoder or primitives, so a mistake
//! in them cannot cancel itself out. Flexible versions follow KIP-482: compact lengths are an
//! unsigned varint of `length + 1` (0 is null), and each structure ends with a tagged-field
//! section (count, then tag / size / data per field, tags ascending).
//!
//! For each vector, [`golden`] checks that encoding the value gives exactly the bytes, that
//! decoding the bytes gives back the value, that every strict prefix fails to decode and that a
//! trailing byte is refused.
//!
//! Each test file includes this with `mod golden;` and uses only part of it.
#![allow(dead_code)]

use bytes::Bytes;
use kafkawire_protocol::messages::Message;
use kafkawire_protocol::{DecodeErrorKind, Uuid};

// ---------------------------------------------------------------------------------------------
// Hand-rolled writer
// ---------------------------------------------------------------------------------------------

/// A byte-vector builder for the protocol's primitive types, written for these tests only.
/// Integers are big-endian; varints are unsigned LEB128 (protocol guide, UNSIGNED_VARINT).
#[derive(Clone, Default)]
pub(crate) struct W(pub(crate) Vec<u8>);

impl W {
    pub(crate) fn new() -> Self {
        W(Vec::new())
    }
    pub(crate) fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    pub(crate) fn i8(self, v: i8) -> Self {
        self.raw(&v.to_be_bytes())
    }
    pub(crate) fn bool(self, v: bool) -> Self {
        self.raw(&[u8::from(v)])
    }
    pub(crate) fn i16(self, v: i16) -> Self {
        self.raw(&v.to_be_bytes())
    }
    pub(crate) fn i32(self, v: i32) -> Self {
        self.raw(&v.to_be_bytes())
    }
    pub(crate) fn i64(self, v: i64) -> Self {
        self.raw(&v.to_be_bytes())
    }
    pub(crate) fn uuid(self, u: [u8; 16]) -> Self {
        self.raw(&u)
    }
    pub(crate) fn uvarint(mut self, mut v: u64) -> Self {
        loop {
            let low = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(low);
                return self;
            }
            self.0.push(low | 0x80);
        }
    }
    /// STRING / NULLABLE_STRING: int16 length, then UTF-8 bytes.
    pub(crate) fn string(self, s: &str) -> Self {
        self.i16(s.len() as i16).raw(s.as_bytes())
    }
    /// NULLABLE_STRING null: int16 -1.
    pub(crate) fn null_string(self) -> Self {
        self.i16(-1)
    }
    /// COMPACT_STRING: uvarint length + 1, then bytes.
    pub(crate) fn cstring(self, s: &str) -> Self {
        self.uvarint(s.len() as u64 + 1).raw(s.as_bytes())
    }
    /// Null in any compact nullable form (string, bytes, array): uvarint 0.
    pub(crate) fn cnull(self) -> Self {
        self.uvarint(0)
    }
    /// BYTES / NULLABLE_BYTES / RECORDS: int32 length, then bytes.
    pub(crate) fn bytes(self, b: &[u8]) -> Self {
        self.i32(b.len() as i32).raw(b)
    }
    /// Null bytes, records or array: int32 -1.
    pub(crate) fn null32(self) -> Self {
        self.i32(-1)
    }
    /// COMPACT_BYTES / COMPACT_RECORDS: uvarint length + 1, then bytes.
    pub(crate) fn cbytes(self, b: &[u8]) -> Self {
        self.uvarint(b.len() as u64 + 1).raw(b)
    }
    /// ARRAY: int32 element count.
    pub(crate) fn array(self, n: i32) -> Self {
        self.i32(n)
    }
    /// COMPACT_ARRAY: uvarint count + 1.
    pub(crate) fn carray(self, n: u64) -> Self {
        self.uvarint(n + 1)
    }
    /// An empty tagged-field section.
    pub(crate) fn no_tags(self) -> Self {
        self.uvarint(0)
    }
    /// Start of a tagged-field section holding `n` fields.
    pub(crate) fn tags(self, n: u64) -> Self {
        self.uvarint(n)
    }
    /// One tagged field: tag, size, data.
    pub(crate) fn tag(self, tag: u64, data: W) -> Self {
        self.uvarint(tag).uvarint(data.0.len() as u64).raw(&data.0)
    }
    pub(crate) fn build(self) -> Vec<u8> {
        self.0
    }
}

// ---------------------------------------------------------------------------------------------
// Checks
// ---------------------------------------------------------------------------------------------

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `value` encodes to exactly `expected` in `version`, and `expected` decodes to `value`.
pub(crate) fn golden<M: Message>(value: &M, version: i16, expected: &[u8]) {
    let encoded = value
        .encode_bytes(version)
        .unwrap_or_else(|e| panic!("{} v{version}: encode failed: {e}", M::NAME));
    assert_eq!(
        hex(&encoded),
        hex(expected),
        "{} v{version}: encoder output (left) differs from the golden bytes (right)",
        M::NAME
    );
    let decoded = M::decode_bytes(Bytes::copy_from_slice(expected), version)
        .unwrap_or_else(|e| panic!("{} v{version}: decode failed: {e}", M::NAME));
    assert_eq!(&decoded, value, "{} v{version}: decoded value", M::NAME);

    for cut in 0..expected.len() {
        assert!(
            M::decode_bytes(Bytes::copy_from_slice(&expected[..cut]), version).is_err(),
            "{} v{version}: a {cut}-byte prefix of {} bytes decoded",
            M::NAME,
            expected.len()
        );
    }
    let mut longer = expected.to_vec();
    longer.push(0);
    let e = M::decode_bytes(Bytes::from(longer), version).unwrap_err();
    assert!(matches!(e.kind, DecodeErrorKind::Invalid(_)), "{e}");
    assert_eq!(e.offset, expected.len(), "{e}");
}

pub(crate) const TOPIC_ID: [u8; 16] = [
    0x9c, 0x3e, 0x5f, 0x10, 0x2a, 0x4b, 0x4c, 0x8d, 0xa1, 0x07, 0x33, 0x61, 0xe0, 0x5b, 0x7d, 0x02,
];
pub(crate) const OTHER_ID: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];
/// Stands in for a record batch: the Records fields are opaque bytes at this layer.
pub(crate) const RECORDS: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x00opaque-batch";

pub(crate) fn topic_id() -> Uuid {
    Uuid(TOPIC_ID)
}
