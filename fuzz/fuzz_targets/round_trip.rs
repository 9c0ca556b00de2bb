//! Decode-encode-decode is the identity for every generated message type and version.
//!
//! Input: `[kind, key, version, body..]`: `kind % 3` is 0 for a request, 1 for a response
//! (`key` picks the API as in `responses`, through `ApiKey::visit`), 2 for the other messages (`key % 4`: RequestHeader,
//! ResponseHeader, ConsumerProtocolSubscription, ConsumerProtocolAssignment); `version` is
//! folded into the type's version range; `body` is decoded with `Message::decode_bytes`.
//!
//! Oracle: a body that decodes re-encodes in the same version, the encoding decodes to an equal
//! value, and that value encodes to the same bytes.
#![no_main]

use kafkawire_fuzz::{RoundTripApi, round_trip_selected, select_api, split_selector};
use kafkawire_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafkawire_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;
use kafkawire_protocol::messages::request_header::RequestHeader;
use kafkawire_protocol::messages::response_header::ResponseHeader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(([kind, key, version], body)) = split_selector::<3>(data) else {
        return;
    };
    match kind % 3 {
        0 => select_api(key).visit(RoundTripApi(body, false, version)),
        1 => select_api(key).visit(RoundTripApi(body, true, version)),
        _ => match key % 4 {
            0 => round_trip_selected::<RequestHeader>(body, version),
            1 => round_trip_selected::<ResponseHeader>(body, version),
            2 => round_trip_selected::<ConsumerProtocolSubscription>(body, version),
            _ => round_trip_selected::<ConsumerProtocolAssignment>(body, version),
        },
    }
});
