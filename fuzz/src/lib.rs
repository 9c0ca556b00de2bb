//! Shared code of the fuzz targets: picking an API (through `ApiKey::visit`) and a version
//! from the first bytes of an input, the record walk used by `record_set` and `responses`, the
//! decode-encode-decode check, and an allocator that tracks the peak heap use of one
//! execution.
//!
//! The input layouts are documented per target in `fuzz/README.md`; `fuzz/seeds` writes seed
//! corpora in the same layouts, so a change here means regenerating the corpora
//! (`./scripts/fuzz --seeds`).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use kafkawire_protocol::messages::{ApiKey, ApiVisitor, Message, Request};
use kafkawire_protocol::records::{Batch, RecordSet};

// ---------------------------------------------------------------------------------------------
// Peak heap tracking
// ---------------------------------------------------------------------------------------------

/// Counts the bytes the Rust code holds, and the peak since the last [`peak::reset`], the
/// default pure-Rust zstd decoder (ruzstd) included. libFuzzer, and libzstd when the protocol's
/// `zstd-c` feature is on, allocate with `malloc` directly and are not counted; their large
/// allocations are caught by `-malloc_limit_mb`.
struct Tracking;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(by: usize) {
    CURRENT.fetch_sub(by, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to `System` unchanged; only counters are updated around it.
unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Tracking = Tracking;

/// Peak heap use of one execution, checked against the issue's bound ("peak allocation at most
/// 4x the input size plus a small constant") when `KAFKAWIRE_FUZZ_PEAK_FACTOR` is set.
///
/// - `KAFKAWIRE_FUZZ_PEAK_FACTOR=4`: fail an execution whose decoders held more than
///   4 x input + `KAFKAWIRE_FUZZ_PEAK_CONST` bytes at once (default constant 1 MiB).
/// - unset (the default of `scripts/fuzz`): only `-malloc_limit_mb` / `-rss_limit_mb` apply.
pub mod peak {
    use super::{CURRENT, Ordering, PEAK};
    use std::sync::OnceLock;

    fn limits() -> Option<(usize, usize)> {
        static L: OnceLock<Option<(usize, usize)>> = OnceLock::new();
        *L.get_or_init(|| {
            let factor = std::env::var("KAFKAWIRE_FUZZ_PEAK_FACTOR")
                .ok()?
                .parse::<usize>()
                .ok()?;
            let constant = std::env::var("KAFKAWIRE_FUZZ_PEAK_CONST")
                .ok()
                .and_then(|c| c.parse::<usize>().ok())
                .unwrap_or(1 << 20);
            Some((factor, constant))
        })
    }

    /// Starts a measurement; returns the bytes held before it.
    pub fn reset() -> usize {
        let now = CURRENT.load(Ordering::Relaxed);
        PEAK.store(now, Ordering::Relaxed);
        now
    }

    /// Bytes held at the peak since [`reset`] returned `base`, above `base`.
    pub fn since(base: usize) -> usize {
        PEAK.load(Ordering::Relaxed).saturating_sub(base)
    }

    /// Panics if the peak since `base` exceeds the configured bound for `input_len` bytes.
    pub fn check(what: &str, base: usize, input_len: usize) {
        let Some((factor, constant)) = limits() else {
            return;
        };
        let used = since(base);
        let bound = input_len.saturating_mul(factor).saturating_add(constant);
        if used > bound {
            panic!(
                "{what}: peak heap {used} bytes for a {input_len}-byte input \
                 (bound {factor} x input + {constant} = {bound})"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Choosing an API and a version
// ---------------------------------------------------------------------------------------------

/// The API for selector byte `b`: the API with key `b` if this crate has it, else one picked
/// by `b` modulo `ApiKey::ALL` (so no byte value is wasted and real keys stay stable).
pub fn select_api(b: u8) -> ApiKey {
    ApiKey::from_i16(i16::from(b)).unwrap_or(ApiKey::ALL[usize::from(b) % ApiKey::ALL.len()])
}

/// The version for selector byte `b` within `min..=max`, plus one below and one above (the
/// unsupported-version paths): `b` itself when it is in `min - 1..=max + 1` (255 is -1), else
/// folded into that range.
pub fn select_version(b: u8, min: i16, max: i16) -> i16 {
    let v = if b == 255 { -1 } else { i16::from(b) };
    if (min - 1..=max + 1).contains(&v) {
        v
    } else {
        min - 1 + (i16::from(b) % (max - min + 3))
    }
}

/// The version for selector byte `b` within `min..=max` only (round trips).
pub fn select_valid_version(b: u8, min: i16, max: i16) -> i16 {
    let v = i16::from(b);
    if (min..=max).contains(&v) {
        v
    } else {
        min + (v % (max - min + 1))
    }
}

/// Decodes a whole response frame (header and body, no size prefix) of the visited API in
/// `version`, as the client does (`frame::decode_response`); the decoded body, if any.
pub struct DecodeResponseFrame(pub Bytes, pub i16);

impl ApiVisitor for DecodeResponseFrame {
    type Output = Option<Box<dyn std::any::Any>>;

    fn visit<R: Request>(self, key: ApiKey) -> Self::Output {
        let DecodeResponseFrame(frame, version) = self;
        let base = peak::reset();
        let len = frame.len();
        let decoded = kafkawire_protocol::frame::decode_response::<R::Response>(frame, key, version);
        peak::check(<R::Response as Message>::NAME, base, len);
        let (_header, body) = decoded.ok()?;
        let _ = body.throttle_time_ms();
        Some(Box::new(body))
    }
}

/// [`round_trip`] of the visited API's request (`response == false`) or response body, in the
/// version selector byte `.2` picks from the type's range.
pub struct RoundTripApi<'a>(pub &'a [u8], pub bool, pub u8);

impl ApiVisitor for RoundTripApi<'_> {
    type Output = ();

    fn visit<R: Request>(self, _key: ApiKey) {
        let RoundTripApi(body, response, version) = self;
        if response {
            round_trip_selected::<R::Response>(body, version);
        } else {
            round_trip_selected::<R>(body, version);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Round trips
// ---------------------------------------------------------------------------------------------

/// [`round_trip`] in the version selector byte `b` picks from `M`'s range.
pub fn round_trip_selected<M: Message>(data: &[u8], b: u8) {
    round_trip::<M>(
        data,
        select_valid_version(b, M::MIN_VERSION, M::MAX_VERSION),
    );
}

/// Decode-encode-decode must be the identity: a value that decodes in `version` encodes in
/// `version`, and the encoding decodes back to an equal value that encodes to the same bytes.
/// Float fields compare by their `Debug` text, so NaN equals NaN.
pub fn round_trip<M: Message>(data: &[u8], version: i16) {
    let base = peak::reset();
    let decoded = M::decode_bytes(Bytes::copy_from_slice(data), version);
    peak::check(M::NAME, base, data.len());
    let Ok(first) = decoded else {
        return;
    };
    let bytes = first.encode_bytes(version).unwrap_or_else(|e| {
        panic!("{} v{version}: decoded but does not encode: {e}\nvalue: {first:?}", M::NAME)
    });
    let second = M::decode_bytes(bytes.clone(), version).unwrap_or_else(|e| {
        panic!(
            "{} v{version}: re-encoding of a decoded value does not decode: {e}\n\
             value: {first:?}\nencoding: {bytes:02x?}",
            M::NAME
        )
    });
    if first != second && format!("{first:?}") != format!("{second:?}") {
        panic!(
            "{} v{version}: decode-encode-decode changed the value\n\
             first:  {first:?}\nsecond: {second:?}",
            M::NAME
        );
    }
    let again = second
        .encode_bytes(version)
        .unwrap_or_else(|e| panic!("{} v{version}: second encode failed: {e}", M::NAME));
    assert_eq!(
        bytes,
        again,
        "{} v{version}: the encoding of a decoded value changed on re-encoding",
        M::NAME
    );
}

// ---------------------------------------------------------------------------------------------
// Records
// ---------------------------------------------------------------------------------------------

/// Walks every batch and every record of a record set, touching every field a consumer reads.
/// Returns the number of records seen.
pub fn walk_records(mut set: RecordSet) -> usize {
    let mut n = 0;
    for batch in set.by_ref() {
        let Ok(batch) = batch else { continue };
        n += walk_batch(&batch);
    }
    let _ = (set.truncated_tail(), set.position(), set.remaining());
    n
}

fn walk_batch(batch: &Batch) -> usize {
    let _ = (
        batch.magic(),
        batch.base_offset(),
        batch.last_offset(),
        batch.compression(),
        batch.timestamp_type(),
        batch.is_transactional(),
        batch.is_control(),
        batch.producer_id(),
        batch.producer_epoch(),
        batch.record_count(),
        batch.partition_leader_epoch(),
    );
    let mut n = 0;
    let records = batch.records();
    let _ = records.size_hint();
    for record in records {
        let Ok(record) = record else { continue };
        n += 1;
        let _ = (
            record.offset(),
            record.timestamp(),
            record.offset_delta(),
            record.timestamp_delta(),
            record.sequence(),
            record.attributes(),
            record.is_control(),
            record.header_count(),
            record.control_record(),
        );
        if let Some(k) = record.key() {
            let _ = batch.slice_ref(k);
        }
        if let Some(v) = record.value() {
            let _ = batch.slice_ref(v);
        }
        if let Some(v2) = batch.as_v2() {
            let _ = (v2.key_bytes(&record), v2.value_bytes(&record));
        }
        // `Records::next` validated the headers; iterating them must yield all of them.
        let headers = record.headers().map(|h| (h.key, h.value)).count();
        assert_eq!(
            headers,
            record.header_count(),
            "record at offset {}: {} of {} headers iterated",
            record.offset(),
            headers,
            record.header_count()
        );
    }
    n
}

// ---------------------------------------------------------------------------------------------
// Input helpers
// ---------------------------------------------------------------------------------------------

/// Splits `n` selector bytes off the front of `data` (None if it is shorter).
pub fn split_selector<const N: usize>(data: &[u8]) -> Option<([u8; N], &[u8])> {
    let (head, rest) = data.split_first_chunk::<N>()?;
    Some((*head, rest))
}
