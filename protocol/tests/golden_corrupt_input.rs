//! Corrupt and hostile input: truncated, oversized, negative, out-of-order and otherwise
//! malformed bytes must be refused with an error naming the field, the kind and the offset,
//! without allocating from untrusted lengths.
//!
//! The inputs are laid out by hand with the writer in the shared [`golden`] module.

mod golden;

use bytes::Bytes;
use golden::W;
use kafkawire_protocol::messages::Message;
use kafkawire_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafkawire_protocol::messages::fetch_response::FetchResponse;
use kafkawire_protocol::messages::metadata_request::MetadataRequest;
use kafkawire_protocol::messages::metadata_response::MetadataResponse;
use kafkawire_protocol::messages::produce_request::ProduceRequest;
use kafkawire_protocol::{DecodeError, DecodeErrorKind};

// ---------------------------------------------------------------------------------------------
// Corrupt and hostile input
// ---------------------------------------------------------------------------------------------

fn decode_err<M: Message>(bytes: Vec<u8>, version: i16) -> DecodeError {
    match M::decode_bytes(Bytes::from(bytes), version) {
        Ok(v) => panic!("{} v{version} decoded corrupt input as {v:?}", M::NAME),
        Err(e) => e,
    }
}

#[test]
fn huge_array_length_is_refused_before_allocating() {
    // A Metadata response claiming a million brokers, backed by 8 bytes. The length is checked
    // against the bytes left, at the element's smallest encoding (v1 broker: node id 4, host 2,
    // port 4, rack 2 = 12 bytes), before any Vec is sized from it.
    let bytes = W::new().array(1_000_000).raw(&[0; 8]).build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponse.Brokers");
    assert_eq!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 12_000_000,
            remaining: 8
        }
    );
    assert_eq!(e.offset, 4);

    // The same for int32 arrays deep inside, and for compact lengths.
    let bytes = W::new()
        .array(0)
        .i32(1)
        .array(1)
        .i16(0)
        .string("t")
        .bool(false)
        .array(1)
        .i16(0)
        .i32(0)
        .i32(1)
        .array(1_000_000) // ReplicaNodes
        .raw(&[0; 16]) // room for the rest of the topic and partition at their smallest
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponsePartition.ReplicaNodes");
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 4_000_000,
            ..
        }
    ));

    // A length that fits the bytes left at one byte per element but not at the element's
    // smallest encoding is refused at the array, not after a million failed elements.
    let bytes = W::new().array(1_000).raw(&[0; 1_000]).build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponse.Brokers");
    assert_eq!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 12_000,
            remaining: 1_000
        }
    );

    for len in [i32::MAX as u64, u32::MAX as u64 - 1] {
        let bytes = W::new().i32(0).carray(len).build();
        let e = decode_err::<MetadataResponse>(bytes, 12);
        assert_eq!(e.what, "MetadataResponse.Brokers");
        assert!(matches!(e.kind, DecodeErrorKind::Truncated { .. }), "{e}");
    }
}

#[test]
fn negative_lengths_other_than_null_are_invalid() {
    let e = decode_err::<MetadataResponse>(W::new().array(-2).build(), 1);
    assert_eq!(e.kind, DecodeErrorKind::InvalidLength(-2));
    // Padding: the topic array's length is checked against its element's smallest size first.
    let bytes = W::new()
        .array(0)
        .i32(1)
        .array(1)
        .i16(0)
        .i16(-5)
        .raw(&[0; 8])
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponseTopic.Name");
    assert_eq!(e.kind, DecodeErrorKind::InvalidLength(-5));
}

#[test]
fn invalid_utf8_names_the_field_and_offset() {
    // v1: brokers (4) + controller (4) + topic count (4) + error code (2) + name length (2).
    let bytes = W::new()
        .array(0)
        .i32(1)
        .array(1)
        .i16(0)
        .i16(2)
        .raw(&[0xff, 0xfe])
        .bool(false)
        .array(0)
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponseTopic.Name");
    assert_eq!(e.kind, DecodeErrorKind::InvalidUtf8);
    assert_eq!(e.offset, 16);
    assert_eq!(e.context.as_deref(), Some("MetadataResponse v1"));
    let text = e.to_string();
    assert!(text.contains("MetadataResponseTopic.Name"), "{text}");
    assert!(text.contains("byte 16"), "{text}");

    // v12, compact: throttle (4) + brokers (1) + cluster id (1) + controller (4) + count (1)
    // + error code (2) + name length (1).
    let bytes = W::new()
        .i32(0)
        .carray(0)
        .cnull()
        .i32(1)
        .carray(1)
        .i16(0)
        .uvarint(3)
        .raw(&[b'o', 0xc3])
        .uuid([0; 16])
        .raw(&[0; 8]) // the smallest topic is 26 bytes
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 12);
    assert_eq!(e.what, "MetadataResponseTopic.Name");
    assert_eq!(e.kind, DecodeErrorKind::InvalidUtf8);
    assert_eq!(e.offset, 14);
}

#[test]
fn tagged_fields_out_of_order_or_repeated_are_refused() {
    let base = W::new().i16(0).carray(0).i32(0);
    let swapped = base
        .clone()
        .tags(2)
        .tag(1, W::new().i64(1))
        .tag(0, W::new().carray(0))
        .build();
    let e = decode_err::<ApiVersionsResponse>(swapped, 3);
    assert_eq!(e.kind, DecodeErrorKind::TagOrder { tag: 0 });
    let repeated = base.tags(2).tag(50, W::new()).tag(50, W::new()).build();
    let e = decode_err::<ApiVersionsResponse>(repeated, 3);
    assert_eq!(e.kind, DecodeErrorKind::TagOrder { tag: 50 });
}

#[test]
fn overlong_varint_length_is_refused() {
    // Six continuation bytes: longer than any 32-bit unsigned varint may be.
    let bytes = W::new()
        .i32(0)
        .raw(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01])
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 12);
    assert_eq!(e.what, "MetadataResponse.Brokers");
    assert_eq!(e.kind, DecodeErrorKind::VarintOverflow);
}

#[test]
fn truncated_records_length_is_an_error() {
    // Records claim 100 bytes and 3 follow.
    let bytes = W::new()
        .null_string()
        .i16(1)
        .i32(0)
        .array(1)
        .string("t")
        .array(1)
        .i32(0)
        .i32(100)
        .raw(b"abc")
        .build();
    let e = decode_err::<ProduceRequest>(bytes, 3);
    assert_eq!(e.what, "PartitionProduceData.Records");
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated { needed: 100, .. }
    ));
}

#[test]
fn null_in_a_version_where_the_field_is_not_nullable_is_refused() {
    // MetadataResponseTopic.Name is nullable only from v12. In v1 an int16 -1 there is invalid
    // (Kafka's own decoder refuses it), and our encoder refuses to write it.
    let bytes = W::new()
        .array(0)
        .i32(1)
        .array(1)
        .i16(0)
        .null_string()
        .bool(false)
        .array(0)
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponseTopic.Name");
    assert_eq!(e.kind, DecodeErrorKind::UnexpectedNull);

    // MetadataRequest.Topics is nullable from v1; in v0 an empty array means "all topics" and
    // -1 is not a valid length.
    let e = decode_err::<MetadataRequest>(W::new().null32().build(), 0);
    assert_eq!(e.what, "MetadataRequest.Topics");
}

#[test]
fn error_inside_a_tagged_field_reports_an_offset_in_the_message() {
    // FetchResponse v12 whose DivergingEpoch tag (0) announces 4 bytes: too short for the
    // 13-byte EpochEndOffset it must hold.
    let prefix = W::new()
        .i32(0)
        .i16(0)
        .i32(0)
        .carray(1)
        .cstring("t")
        .carray(1)
        .i32(0)
        .i16(0)
        .i64(0)
        .i64(0)
        .i64(0)
        .cnull()
        .i32(-1)
        .cnull()
        .tags(1)
        .uvarint(0)
        .uvarint(4)
        .build();
    let data_at = prefix.len();
    let bytes = W::new().raw(&prefix).i32(3).no_tags().no_tags().build();
    let e = decode_err::<FetchResponse>(bytes, 12);
    assert_eq!(e.what, "EpochEndOffset.EndOffset");
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 8,
            remaining: 0
        }
    ));
    assert_eq!(
        e.offset,
        data_at + 4,
        "offset must count from the message start: {e}"
    );
}
