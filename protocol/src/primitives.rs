//! Kafka's primitive wire types: fixed-width integers, varints, strings, bytes, arrays, UUIDs and
//! tagged-field sections.
//!
//! Rules from the Kafka protocol guide ("Protocol Primitive Types") and KIP-482 (flexible
//! versions: compact forms and tagged fields). Decoding goes through [`Reader`], which never
//! panics: every failure is a [`DecodeError`] naming what was being read and at which byte.
//! Memory follows the bytes actually read, never a length off the wire: an array length is
//! checked against the bytes left at its element's smallest encoding
//! ([`Reader::array_len_min`]), at most [`MAX_PREALLOC_BYTES`] are reserved before the elements
//! arrive, and vectors grow as elements decode ([`decode_array`]).
//! Encoding writes into a [`bytes::BytesMut`] through the `put_*` functions.

use bytes::{BufMut, Bytes, BytesMut};

use crate::error::{DecodeError, DecodeErrorKind, EncodeError};

/// A 128-bit UUID as Kafka sends it (topic ids, KIP-516): 16 bytes, most significant first.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Uuid(pub [u8; 16]);

impl Uuid {
    /// The all-zero UUID, which Kafka uses for "no topic id".
    pub const ZERO: Uuid = Uuid([0; 16]);

    /// Builds a UUID from its two 64-bit halves, most significant first.
    pub fn from_u64_pair(high: u64, low: u64) -> Self {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&high.to_be_bytes());
        b[8..].copy_from_slice(&low.to_be_bytes());
        Uuid(b)
    }
}

impl std::fmt::Debug for Uuid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(self, f)
    }
}

impl std::fmt::Display for Uuid {
    /// Standard 8-4-4-4-12 lowercase hex form.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// A tagged field whose tag this version of the code does not know. It is kept so that a decode
/// followed by an encode writes it back unchanged (KIP-482).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RawTaggedField {
    /// The field's tag number.
    pub tag: u32,
    /// The field's encoded bytes, without the tag and size prefix.
    pub data: Bytes,
}

/// A cursor over one buffer of received bytes. Every read checks the remaining length and returns
/// a [`DecodeError`] instead of panicking. Slices of the buffer (`bytes`, `records`) are handed out
/// as [`Bytes`] sharing the same allocation.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
    pos: usize,
    /// Offset of `buf` within the outermost buffer, so errors name absolute byte offsets.
    base: usize,
    /// Bytes of decoded representation still allowed (see [`Reader::budget`]).
    budget: usize,
}

/// The default decode budget is this many times the input's size (plus
/// [`DECODE_BUDGET_SLACK`]). Messages shaped like real ones charge up to about 6x their size
/// (measured in `protocol/tests/alloc_bounds.rs`: ListGroups v3 of 50,000 groups 5.9x,
/// Metadata with one replica per partition 4.6x, OffsetFetch 4.5x), so 12 leaves them a 2x
/// margin; input made only of the smallest elements the format allows (a list of empty compact
/// strings: 1 byte each, 24 bytes decoded) would reach 24x and more, and is refused instead.
pub const DECODE_BUDGET_FACTOR: usize = 12;

/// Added to the default decode budget, in bytes, so small messages never meet it.
pub const DECODE_BUDGET_SLACK: usize = 1 << 20;

/// The default decode budget for `input_len` bytes of input, in bytes:
/// [`DECODE_BUDGET_FACTOR`] x `input_len` + [`DECODE_BUDGET_SLACK`].
pub fn default_decode_budget(input_len: usize) -> usize {
    input_len
        .saturating_mul(DECODE_BUDGET_FACTOR)
        .saturating_add(DECODE_BUDGET_SLACK)
}

impl Reader {
    /// A reader over `buf`, starting at its first byte, with the default decode budget
    /// ([`default_decode_budget`] of `buf.len()`).
    pub fn new(buf: Bytes) -> Self {
        let budget = default_decode_budget(buf.len());
        Reader::with_budget(buf, budget)
    }

    /// A reader over `buf` whose decoders may build at most `budget` bytes of representation
    /// (see [`Reader::budget`]).
    pub fn with_budget(buf: Bytes, budget: usize) -> Self {
        Reader {
            buf,
            pos: 0,
            base: 0,
            budget,
        }
    }

    /// Bytes of decoded representation the decoders may still build. Array decoding
    /// ([`decode_array`]) charges each element's in-memory size as capacity is reserved,
    /// strings their length, unknown tagged fields their entry; when a charge does not fit the
    /// decode fails with [`DecodeErrorKind::DecodeBudget`]. This bounds the memory a message
    /// can cost by its own size, whatever mix of elements it holds (array counts are also
    /// checked against the bytes left, see [`Reader::array_len_min`]).
    pub fn budget(&self) -> usize {
        self.budget
    }

    /// Charges `bytes` of decoded representation against [`Reader::budget`].
    ///
    /// # Errors
    /// [`DecodeErrorKind::DecodeBudget`] when fewer than `bytes` are left; the budget is then
    /// unchanged.
    pub fn charge(&mut self, bytes: usize, what: &'static str) -> Result<(), DecodeError> {
        match self.budget.checked_sub(bytes) {
            Some(left) => {
                self.budget = left;
                Ok(())
            }
            None => Err(self.error(
                what,
                DecodeErrorKind::DecodeBudget {
                    limit: self.budget,
                    needed: bytes,
                },
            )),
        }
    }

    /// Byte offset of the next read from the start of the outermost buffer.
    pub fn position(&self) -> usize {
        self.base + self.pos
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    /// The unread bytes, without consuming them.
    pub fn peek_rest(&self) -> &[u8] {
        &self.buf[self.pos..]
    }

    /// An error of `kind` at the current position while reading `what`.
    pub fn error(&self, what: &'static str, kind: DecodeErrorKind) -> DecodeError {
        DecodeError::new(what, self.position(), kind)
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&[u8], DecodeError> {
        if n > self.remaining() {
            return Err(self.error(
                what,
                DecodeErrorKind::Truncated {
                    needed: n,
                    remaining: self.remaining(),
                },
            ));
        }
        let start = self.pos;
        self.pos += n;
        Ok(&self.buf[start..start + n])
    }

    /// Takes the next `n` bytes as a shared slice of the buffer (no copy).
    pub fn take_bytes(&mut self, n: usize, what: &'static str) -> Result<Bytes, DecodeError> {
        if n > self.remaining() {
            return Err(self.error(
                what,
                DecodeErrorKind::Truncated {
                    needed: n,
                    remaining: self.remaining(),
                },
            ));
        }
        let b = self.buf.slice(self.pos..self.pos + n);
        self.pos += n;
        Ok(b)
    }

    /// Takes every unread byte as a shared slice.
    pub fn take_rest(&mut self) -> Bytes {
        let b = self.buf.slice(self.pos..);
        self.pos = self.buf.len();
        b
    }

    /// A reader over the next `n` bytes; this reader moves past them.
    pub fn sub_reader(&mut self, n: usize, what: &'static str) -> Result<Reader, DecodeError> {
        let base = self.position();
        let buf = self.take_bytes(n, what)?;
        Ok(Reader {
            buf,
            pos: 0,
            base,
            budget: self.budget,
        })
    }

    /// Reads a boolean (one byte, non-zero is true).
    pub fn bool(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        Ok(self.take(1, what)?[0] != 0)
    }

    /// Reads a signed 8-bit integer.
    pub fn i8(&mut self, what: &'static str) -> Result<i8, DecodeError> {
        Ok(self.take(1, what)?[0] as i8)
    }

    /// Reads a big-endian signed 16-bit integer.
    pub fn i16(&mut self, what: &'static str) -> Result<i16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian unsigned 16-bit integer.
    pub fn u16(&mut self, what: &'static str) -> Result<u16, DecodeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    /// Reads a big-endian signed 32-bit integer.
    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian unsigned 32-bit integer.
    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// Reads a big-endian signed 64-bit integer.
    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    /// Reads a big-endian IEEE 754 double.
    pub fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.i64(what)? as u64))
    }

    /// Reads a UUID (16 bytes).
    pub fn uuid(&mut self, what: &'static str) -> Result<Uuid, DecodeError> {
        let b = self.take(16, what)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(Uuid(a))
    }

    /// Reads an unsigned varint of at most 32 bits (protocol guide: UNSIGNED_VARINT).
    pub fn uvarint(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let v = self.uvarlong_max(what, 5)?;
        u32::try_from(v).map_err(|_| self.error(what, DecodeErrorKind::VarintOverflow))
    }

    /// Reads an unsigned varint of at most 64 bits.
    pub fn uvarlong(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        self.uvarlong_max(what, 10)
    }

    fn uvarlong_max(&mut self, what: &'static str, max_bytes: usize) -> Result<u64, DecodeError> {
        let start = self.position();
        match decode_uvarint(&self.buf[self.pos..], max_bytes) {
            Ok((v, n)) => {
                self.pos += n;
                Ok(v)
            }
            Err(kind) => Err(DecodeError::new(what, start, kind)),
        }
    }

    /// Reads a zigzag-encoded signed varint of at most 32 bits (VARINT).
    pub fn varint(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        let v = self.uvarint(what)?;
        Ok(((v >> 1) as i32) ^ -((v & 1) as i32))
    }

    /// Reads a zigzag-encoded signed varint of at most 64 bits (VARLONG).
    pub fn varlong(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        let v = self.uvarlong(what)?;
        Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
    }

    /// Reads a length that must be non-negative and fit in the remaining bytes times `min_size`.
    fn checked_len(
        &self,
        len: i64,
        min_elem: usize,
        what: &'static str,
    ) -> Result<usize, DecodeError> {
        if len < 0 {
            return Err(self.error(what, DecodeErrorKind::InvalidLength(len)));
        }
        let n = len as usize;
        if n.saturating_mul(min_elem) > self.remaining() {
            return Err(self.error(
                what,
                DecodeErrorKind::Truncated {
                    needed: n.saturating_mul(min_elem),
                    remaining: self.remaining(),
                },
            ));
        }
        Ok(n)
    }

    /// Reads the length of a string, bytes or array: `compact` uses an unsigned varint of
    /// length + 1 (0 is null), otherwise `wide` selects int32 (bytes, arrays) over int16
    /// (strings); -1 is null. Returns `None` for null.
    pub fn length(
        &mut self,
        compact: bool,
        wide: bool,
        min_elem: usize,
        what: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        let raw: i64 = if compact {
            self.uvarint(what)? as i64 - 1
        } else if wide {
            self.i32(what)? as i64
        } else {
            self.i16(what)? as i64
        };
        if raw == -1 {
            return Ok(None);
        }
        self.checked_len(raw, min_elem, what).map(Some)
    }

    /// Reads a nullable string (STRING / COMPACT_STRING / their NULLABLE forms).
    pub fn nullable_string(
        &mut self,
        compact: bool,
        what: &'static str,
    ) -> Result<Option<String>, DecodeError> {
        let Some(n) = self.length(compact, false, 1, what)? else {
            return Ok(None);
        };
        self.charge(n, what)?;
        let at = self.position();
        let raw = self.take(n, what)?;
        match std::str::from_utf8(raw) {
            Ok(s) => Ok(Some(s.to_owned())),
            Err(_) => Err(DecodeError::new(what, at, DecodeErrorKind::InvalidUtf8)),
        }
    }

    /// Reads a string that must not be null.
    pub fn string(&mut self, compact: bool, what: &'static str) -> Result<String, DecodeError> {
        let at = self.position();
        self.nullable_string(compact, what)?
            .ok_or_else(|| DecodeError::new(what, at, DecodeErrorKind::UnexpectedNull))
    }

    /// Reads nullable bytes (BYTES / COMPACT_BYTES / NULLABLE forms) as a shared slice.
    pub fn nullable_bytes(
        &mut self,
        compact: bool,
        what: &'static str,
    ) -> Result<Option<Bytes>, DecodeError> {
        match self.length(compact, true, 1, what)? {
            None => Ok(None),
            Some(n) => self.take_bytes(n, what).map(Some),
        }
    }

    /// Reads bytes that must not be null.
    pub fn bytes(&mut self, compact: bool, what: &'static str) -> Result<Bytes, DecodeError> {
        let at = self.position();
        self.nullable_bytes(compact, what)?
            .ok_or_else(|| DecodeError::new(what, at, DecodeErrorKind::UnexpectedNull))
    }

    /// Reads an array length (ARRAY / COMPACT_ARRAY); `None` is a null array. Each element
    /// takes at least one byte, so a length larger than the remaining bytes is rejected before
    /// anything is allocated. [`Reader::array_len_min`] checks against a larger element size.
    pub fn array_len(
        &mut self,
        compact: bool,
        what: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        self.length(compact, true, 1, what)
    }

    /// Reads an array length whose elements take at least `min_elem` bytes each on the wire: a
    /// length whose elements cannot fit in the remaining bytes is a
    /// [`DecodeErrorKind::Truncated`] error, before anything is allocated. Generated decoders
    /// pass each element type's `min_encoded_size(version)`.
    pub fn array_len_min(
        &mut self,
        compact: bool,
        min_elem: usize,
        what: &'static str,
    ) -> Result<Option<usize>, DecodeError> {
        self.length(compact, true, min_elem.max(1), what)
    }

    /// Reads a tagged-field section and calls `known` for each field; `known` returns `false`
    /// for tags it does not know, which are then kept in `unknown`. Tags must be strictly
    /// increasing (KIP-482).
    pub fn tagged_fields(
        &mut self,
        unknown: &mut Vec<RawTaggedField>,
        mut known: impl FnMut(u32, &mut Reader) -> Result<bool, DecodeError>,
    ) -> Result<(), DecodeError> {
        let count_at = self.position();
        let count = self.uvarint("tagged field count")?;
        // Each field takes at least two bytes (tag and size).
        if (count as usize).saturating_mul(2) > self.remaining() {
            return Err(DecodeError::new(
                "tagged field count",
                count_at,
                DecodeErrorKind::Truncated {
                    needed: (count as usize).saturating_mul(2),
                    remaining: self.remaining(),
                },
            ));
        }
        let mut last: Option<u32> = None;
        for i in 0..count as usize {
            let tag_at = self.position();
            let tag = self.uvarint("tagged field tag")?;
            if last.is_some_and(|l| tag <= l) {
                return Err(DecodeError::new(
                    "tagged field tag",
                    tag_at,
                    DecodeErrorKind::TagOrder { tag },
                ));
            }
            last = Some(tag);
            let size = self.uvarint("tagged field size")? as usize;
            let mut sub = self.sub_reader(size, "tagged field data")?;
            let base = sub.pos;
            let known = known(tag, &mut sub);
            // What the field's decoder built counts against this reader's budget too.
            self.budget = sub.budget;
            if !known? {
                if unknown.len() == unknown.capacity() {
                    // Double as fields arrive, never past the announced count.
                    let more = unknown.len().clamp(1, count as usize - i);
                    self.charge(more * std::mem::size_of::<RawTaggedField>(), "tagged field")?;
                    unknown.reserve_exact(more);
                }
                unknown.push(RawTaggedField {
                    tag,
                    data: sub.buf.slice(base..),
                });
            }
        }
        Ok(())
    }
}

/// Most bytes an array decoder reserves up front, whatever the length on the wire says: the
/// length is only a claim until the elements have been read, so a larger array grows as its
/// elements are decoded (see [`decode_array`]).
pub const MAX_PREALLOC_BYTES: usize = 32 * 1024;

/// How many elements of `T` to reserve for an array announcing `n`: at most
/// [`MAX_PREALLOC_BYTES`] worth.
#[inline]
pub fn prealloc_len<T>(n: usize) -> usize {
    n.min(MAX_PREALLOC_BYTES / std::mem::size_of::<T>().max(1))
}

/// Decodes an array of `n` elements with `elem` (the length already read and checked, e.g. by
/// [`Reader::array_len_min`]). Memory follows the elements actually decoded: at most
/// [`prealloc_len`] elements are reserved up front, then the vector doubles as elements arrive,
/// never beyond `n`. Each reservation is charged to the reader's decode budget
/// ([`Reader::budget`]) at the element's in-memory size. The first error is returned.
#[inline]
pub fn decode_array<T>(
    r: &mut Reader,
    n: usize,
    mut elem: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let first = prealloc_len::<T>(n);
    r.charge(first * std::mem::size_of::<T>(), "array")?;
    let mut v = Vec::with_capacity(first);
    for i in 0..n {
        if v.len() == v.capacity() {
            let more = i.clamp(1, n - i);
            r.charge(more * std::mem::size_of::<T>(), "array")?;
            v.reserve_exact(more);
        }
        v.push(elem(r)?);
    }
    Ok(v)
}

/// Decodes an unsigned LEB128 varint from the start of `buf` using at most `max_bytes` bytes.
/// Returns the value and the number of bytes read.
#[inline]
pub fn decode_uvarint(buf: &[u8], max_bytes: usize) -> Result<(u64, usize), DecodeErrorKind> {
    let mut v: u64 = 0;
    for i in 0..max_bytes {
        let Some(&b) = buf.get(i) else {
            return Err(DecodeErrorKind::Truncated {
                needed: i + 1,
                remaining: buf.len(),
            });
        };
        v |= ((b & 0x7f) as u64) << (7 * i);
        if b & 0x80 == 0 {
            return Ok((v, i + 1));
        }
    }
    Err(DecodeErrorKind::VarintOverflow)
}

/// Writes an unsigned varint (UNSIGNED_VARINT).
#[inline]
pub fn put_uvarint(buf: &mut impl BufMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

/// Writes a zigzag-encoded signed 32-bit varint (VARINT).
#[inline]
pub fn put_varint(buf: &mut impl BufMut, v: i32) {
    put_uvarint(buf, ((v << 1) ^ (v >> 31)) as u32 as u64);
}

/// Writes a zigzag-encoded signed 64-bit varint (VARLONG).
#[inline]
pub fn put_varlong(buf: &mut impl BufMut, v: i64) {
    put_uvarint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

/// Number of bytes [`put_uvarint`] writes for `v`.
#[inline]
pub fn uvarint_len(v: u64) -> usize {
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Number of bytes [`put_varint`] writes for `v`.
#[inline]
pub fn varint_len(v: i32) -> usize {
    uvarint_len(((v << 1) ^ (v >> 31)) as u32 as u64)
}

/// Number of bytes [`put_varlong`] writes for `v`.
#[inline]
pub fn varlong_len(v: i64) -> usize {
    uvarint_len(((v << 1) ^ (v >> 63)) as u64)
}

/// Writes a length prefix; `None` writes null. `compact` selects the varint form of length + 1,
/// else `wide` selects int32 over int16. Fails when the length does not fit the form.
pub fn put_length(
    buf: &mut BytesMut,
    len: Option<usize>,
    compact: bool,
    wide: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    match (len, compact) {
        (None, true) => put_uvarint(buf, 0),
        (None, false) if wide => buf.put_i32(-1),
        (None, false) => buf.put_i16(-1),
        (Some(n), true) => {
            if n >= u32::MAX as usize {
                return Err(EncodeError::TooLong { what, len: n });
            }
            put_uvarint(buf, n as u64 + 1)
        }
        (Some(n), false) if wide => {
            let v = i32::try_from(n).map_err(|_| EncodeError::TooLong { what, len: n })?;
            buf.put_i32(v)
        }
        (Some(n), false) => {
            let v = i16::try_from(n).map_err(|_| EncodeError::TooLong { what, len: n })?;
            buf.put_i16(v)
        }
    }
    Ok(())
}

/// Writes a nullable string.
pub fn put_nullable_string(
    buf: &mut BytesMut,
    s: Option<&str>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_length(buf, s.map(str::len), compact, false, what)?;
    if let Some(s) = s {
        buf.put_slice(s.as_bytes());
    }
    Ok(())
}

/// Writes nullable bytes.
pub fn put_nullable_bytes(
    buf: &mut BytesMut,
    b: Option<&[u8]>,
    compact: bool,
    what: &'static str,
) -> Result<(), EncodeError> {
    put_length(buf, b.map(<[u8]>::len), compact, true, what)?;
    if let Some(b) = b {
        buf.put_slice(b);
    }
    Ok(())
}

/// Writes a UUID.
pub fn put_uuid(buf: &mut BytesMut, u: &Uuid) {
    buf.put_slice(&u.0);
}

/// Writes one tagged field: tag, size, then the bytes `body` writes.
pub fn put_tagged_field(
    buf: &mut BytesMut,
    tag: u32,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let mut tmp = BytesMut::new();
    body(&mut tmp)?;
    put_uvarint(buf, tag as u64);
    put_uvarint(buf, tmp.len() as u64);
    buf.put_slice(&tmp);
    Ok(())
}

/// Frames one known tagged field for [`put_tagged_section`]: tag, size, then `body`.
pub fn tagged_entry(tag: u32, body: BytesMut) -> (u32, BytesMut) {
    let mut out = BytesMut::with_capacity(body.len() + 10);
    put_uvarint(&mut out, tag as u64);
    put_uvarint(&mut out, body.len() as u64);
    out.put_slice(&body);
    (tag, out)
}

/// Writes unknown tagged fields kept from a decode, merged in tag order with the known fields
/// already encoded in `known` (each as `(tag, encoded field with prefix)`).
pub fn put_tagged_section(
    buf: &mut BytesMut,
    mut known: Vec<(u32, BytesMut)>,
    unknown: &[RawTaggedField],
) {
    for u in unknown {
        let mut tmp = BytesMut::with_capacity(u.data.len() + 10);
        put_uvarint(&mut tmp, u.tag as u64);
        put_uvarint(&mut tmp, u.data.len() as u64);
        tmp.put_slice(&u.data);
        known.push((u.tag, tmp));
    }
    known.sort_by_key(|(t, _)| *t);
    put_uvarint(buf, known.len() as u64);
    for (_, b) in known {
        buf.put_slice(&b);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn reader(b: &[u8]) -> Reader {
        Reader::new(Bytes::copy_from_slice(b))
    }

    #[test]
    fn varint_examples_from_protocol_guide() {
        // zigzag: 0 -> 0, -1 -> 1, 1 -> 2, -2 -> 3, 2147483647 -> 4294967294
        let mut b = BytesMut::new();
        put_varint(&mut b, -1);
        assert_eq!(&b[..], &[1]);
        b.clear();
        put_varint(&mut b, 300);
        assert_eq!(&b[..], &[0xd8, 0x04]);
        b.clear();
        put_uvarint(&mut b, 300);
        assert_eq!(&b[..], &[0xac, 0x02]);
        assert_eq!(reader(&[0xac, 0x02]).uvarint("x").unwrap(), 300);
    }

    #[test]
    fn overlong_varint_is_an_error() {
        let e = reader(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01])
            .uvarint("len")
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::VarintOverflow);
        let e = reader(&[0xff, 0xff, 0xff, 0xff, 0x7f])
            .uvarint("len")
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::VarintOverflow);
        let e = reader(&[0x80]).varlong("x").unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
    }

    #[test]
    fn huge_array_length_is_rejected_without_allocating() {
        let e = reader(&[0x7f, 0xff, 0xff, 0xff, 0])
            .array_len(false, "topics")
            .unwrap_err();
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }));
        assert_eq!(e.what, "topics");
        let e = reader(&[0xff, 0xff, 0xff, 0xfe])
            .array_len(false, "t")
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidLength(-2));
    }

    #[test]
    fn array_lengths_are_checked_at_the_element_size_and_vectors_grow_with_elements() {
        // 8 bytes left: two int32 elements fit, three do not.
        let e = reader(&[0, 0, 0, 3, 0, 0, 0, 1, 0, 0, 0, 2])
            .array_len_min(false, 4, "ids")
            .unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 12,
                remaining: 8
            }
        );
        let mut r = reader(&[0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 2]);
        let n = r.array_len_min(false, 4, "ids").unwrap().unwrap();
        let v = decode_array(&mut r, n, |r| r.i32("id")).unwrap();
        assert_eq!(v, vec![1, 2]);

        // A length the bytes can back: at most MAX_PREALLOC_BYTES reserved up front, then the
        // vector grows with the elements and ends exactly at the length.
        assert_eq!(prealloc_len::<u64>(1 << 30), MAX_PREALLOC_BYTES / 8);
        assert_eq!(prealloc_len::<u64>(3), 3);
        let n = 100_000;
        let mut r = Reader::new(Bytes::from(vec![7u8; n]));
        let v = decode_array(&mut r, n, |r| r.i8("b")).unwrap();
        assert_eq!((v.len(), v.capacity()), (n, n));
        // An element that fails stops the array at once.
        let mut r = Reader::new(Bytes::from(vec![7u8; 10]));
        assert!(decode_array(&mut r, 11, |r| r.i8("b")).is_err());
    }

    #[test]
    fn tagged_field_count_is_checked_against_the_bytes_left() {
        // 3 fields announced, 4 bytes left: each takes at least 2.
        let e = reader(&[3, 1, 0, 2, 0])
            .tagged_fields(&mut vec![], |_, _| Ok(false))
            .unwrap_err();
        assert_eq!(
            e.kind,
            DecodeErrorKind::Truncated {
                needed: 6,
                remaining: 4
            }
        );
        let mut unknown = vec![];
        reader(&[2, 1, 0, 2, 0])
            .tagged_fields(&mut unknown, |_, _| Ok(false))
            .unwrap();
        assert_eq!((unknown.len(), unknown.capacity()), (2, 2));
    }

    #[test]
    fn strings_null_and_invalid_utf8() {
        assert_eq!(
            reader(&[0xff, 0xff]).nullable_string(false, "s").unwrap(),
            None
        );
        assert_eq!(reader(&[0]).nullable_string(true, "s").unwrap(), None);
        let e = reader(&[0xff, 0xff])
            .string(false, "client_id")
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::UnexpectedNull);
        let e = reader(&[0, 2, 0xc3, 0x28]).string(false, "s").unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::InvalidUtf8);
        assert_eq!(e.offset, 2);
    }

    #[test]
    fn tagged_fields_keep_unknown_and_check_order() {
        let mut b = BytesMut::new();
        put_tagged_section(
            &mut b,
            vec![],
            &[
                RawTaggedField {
                    tag: 7,
                    data: Bytes::from_static(b"xy"),
                },
                RawTaggedField {
                    tag: 2,
                    data: Bytes::from_static(b"a"),
                },
            ],
        );
        assert_eq!(&b[..], &[2, 2, 1, b'a', 7, 2, b'x', b'y']);
        let mut unknown = vec![];
        let mut r = Reader::new(b.freeze());
        r.tagged_fields(&mut unknown, |_, _| Ok(false)).unwrap();
        assert_eq!(unknown.len(), 2);
        assert_eq!(unknown[1].data, Bytes::from_static(b"xy"));
        let e = reader(&[2, 5, 0, 3, 0])
            .tagged_fields(&mut vec![], |_, _| Ok(false))
            .unwrap_err();
        assert_eq!(e.kind, DecodeErrorKind::TagOrder { tag: 3 });
    }

    #[test]
    fn uuid_display() {
        let u = Uuid::from_u64_pair(0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210);
        assert_eq!(u.to_string(), "01234567-89ab-cdef-fedc-ba9876543210");
    }

    proptest! {
        #[test]
        fn uvarlong_roundtrip(v: u64) {
            let mut b = BytesMut::new();
            put_uvarint(&mut b, v);
            prop_assert_eq!(b.len(), uvarint_len(v));
            prop_assert_eq!(Reader::new(b.freeze()).uvarlong("v").unwrap(), v);
        }

        #[test]
        fn varint_roundtrip(v: i32) {
            let mut b = BytesMut::new();
            put_varint(&mut b, v);
            prop_assert_eq!(b.len(), varint_len(v));
            prop_assert_eq!(Reader::new(b.freeze()).varint("v").unwrap(), v);
        }

        #[test]
        fn varlong_roundtrip(v: i64) {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            prop_assert_eq!(b.len(), varlong_len(v));
            prop_assert_eq!(Reader::new(b.freeze()).varlong("v").unwrap(), v);
        }

        #[test]
        fn strings_roundtrip(s: Option<String>, compact: bool) {
            let mut b = BytesMut::new();
            put_nullable_string(&mut b, s.as_deref(), compact, "s").unwrap();
            let mut r = Reader::new(b.freeze());
            prop_assert_eq!(r.nullable_string(compact, "s").unwrap(), s);
            prop_assert!(r.is_empty());
        }

        #[test]
        fn bytes_roundtrip(v: Option<Vec<u8>>, compact: bool) {
            let mut b = BytesMut::new();
            put_nullable_bytes(&mut b, v.as_deref(), compact, "b").unwrap();
            let mut r = Reader::new(b.freeze());
            let got = r.nullable_bytes(compact, "b").unwrap();
            prop_assert_eq!(got.as_deref(), v.as_deref());
        }

        #[test]
        fn fixed_ints_roundtrip(a: i8, b: i16, c: u16, d: i32, e: u32, f: i64, g in -1e300f64..1e300) {
            let mut buf = BytesMut::new();
            buf.put_i8(a); buf.put_i16(b); buf.put_u16(c); buf.put_i32(d); buf.put_u32(e);
            buf.put_i64(f); buf.put_f64(g);
            let mut r = Reader::new(buf.freeze());
            prop_assert_eq!(r.i8("a").unwrap(), a);
            prop_assert_eq!(r.i16("b").unwrap(), b);
            prop_assert_eq!(r.u16("c").unwrap(), c);
            prop_assert_eq!(r.i32("d").unwrap(), d);
            prop_assert_eq!(r.u32("e").unwrap(), e);
            prop_assert_eq!(r.i64("f").unwrap(), f);
            prop_assert_eq!(r.f64("g").unwrap(), g);
            prop_assert!(r.i8("past end").is_err());
        }

        #[test]
        fn reader_never_panics_on_garbage(data: Vec<u8>, compact: bool) {
            let mut r = Reader::new(Bytes::from(data));
            let _ = r.nullable_string(compact, "s");
            let _ = r.array_len(compact, "a");
            let _ = r.tagged_fields(&mut vec![], |_, _| Ok(false));
            let _ = r.varlong("v");
        }
    }
}
