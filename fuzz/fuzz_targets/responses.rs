//! Every response decoder, by API key and version, as the client reads a response frame.
//!
//! Input: `[key, version, frame..]`: `key` is an API key (other values pick an API by index
//! into `ApiKey::ALL`), `version` a version of it (one below and one above the supported range
//! included, 255 is -1); `frame` is the frame without its size prefix (response header, then
//! body), decoded with `frame::decode_response` through `ApiKey::visit`. A Fetch response's
//! record sets are walked as the consumer does: CRCs verified, one decompression budget
//! (64 MiB) shared by all its partitions.
//!
//! Oracle: no panic, memory within the libFuzzer limits (and the peak bound when
//! `KAFKAWIRE_FUZZ_PEAK_FACTOR` is set); the budget is never overdrawn.
#![no_main]

use bytes::Bytes;
use kafkawire_fuzz::{
    DecodeResponseFrame, select_api, select_version, split_selector, walk_records,
};
use kafkawire_protocol::messages::fetch_response::FetchResponse;
use kafkawire_protocol::records::{DecodeOptions, DecompressionBudget, RecordSet};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(([k, v], frame)) = split_selector::<2>(data) else {
        return;
    };
    let key = select_api(k);
    let (min, max) = key.versions();
    let version = select_version(v, min, max);
    let Some(body) = key.visit(DecodeResponseFrame(Bytes::copy_from_slice(frame), version)) else {
        return;
    };
    if let Some(fetch) = body.downcast_ref::<FetchResponse>() {
        let budget = DecompressionBudget::new(64 << 20);
        for topic in &fetch.responses {
            for partition in &topic.partitions {
                if let Some(records) = &partition.records {
                    walk_records(RecordSet::with_budget(
                        records.clone(),
                        DecodeOptions::default(),
                        &budget,
                    ));
                }
            }
        }
        assert!(
            budget.used() <= budget.limit(),
            "decompression budget overdrawn: {} of {}",
            budget.used(),
            budget.limit()
        );
    }
});
