//! `RecordSet` over arbitrary bytes: every batch (magic 0, 1, 2; every codec) and every record.
//!
//! Input: `[o, records..]`; bit 0 of `o` turns CRC verification on (off lets the fuzzer reach
//! the decompressors and record parsers without forging checksums), bit 1 lowers the per-batch
//! decompression cap from the default 64 MiB to 1 MiB, bit 2 adds a 1 MiB decompression budget
//! for the whole set (`RecordSet::with_budget`, as the consumer shares one per fetch answer).
//!
//! Oracle: no panic, no abort, memory within the libFuzzer limits; every record's headers
//! iterate as many as it announces; the budget is never overdrawn.
#![no_main]

use bytes::Bytes;
use kafkawire_fuzz::{split_selector, walk_records};
use kafkawire_protocol::records::{
    BatchHeader, DEFAULT_MAX_DECOMPRESSED_SIZE, DecodeOptions, DecompressionBudget, RecordSet,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(([o], records)) = split_selector::<1>(data) else {
        return;
    };
    let opts = DecodeOptions {
        verify_crc: o & 1 == 1,
        max_decompressed_size: if o & 2 == 2 {
            1 << 20
        } else {
            DEFAULT_MAX_DECOMPRESSED_SIZE
        },
        ..DecodeOptions::default()
    };
    if let Some(h) = BatchHeader::parse(records) {
        let _ = (h.last_offset(), h.size_in_bytes(), h.to_bytes());
    }
    let records = Bytes::copy_from_slice(records);
    if o & 4 == 4 {
        let budget = DecompressionBudget::new(1 << 20);
        walk_records(RecordSet::with_budget(records, opts, &budget));
        assert!(
            budget.used() <= budget.limit(),
            "decompression budget overdrawn: {} of {}",
            budget.used(),
            budget.limit()
        );
    } else {
        walk_records(RecordSet::with_options(records, opts));
    }
});
