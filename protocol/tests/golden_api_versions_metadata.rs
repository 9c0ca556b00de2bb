//! Golden byte vectors for discovery and framing: ApiVersions (key 18), Metadata (key 3), and
//! the request/response frames with their header versions, plus a self-check of the test writer.
//!
//! The expected bytes are laid out by hand with the writer in the shared [`golden`] module
//! (see its docs for the method); `golden::golden` round-trips each vector.

mod golden;

use bytes::{Bytes, BytesMut};
use golden::{OTHER_ID, TOPIC_ID, W, golden, hex, topic_id};
use kafkawire_protocol::frame;
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, SupportedFeatureKey,
};
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafkawire_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkawire_protocol::messages::{ApiKey, Message};
use kafkawire_protocol::{RawTaggedField, Uuid};

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

#[test]
fn the_writer_itself_matches_the_protocol_guide() {
    // UNSIGNED_VARINT 300 = 0xac 0x02; COMPACT_STRING "a" = 0x02 'a'; compact null = 0x00.
    assert_eq!(W::new().uvarint(300).build(), [0xac, 0x02]);
    assert_eq!(
        W::new().uvarint(127).uvarint(128).build(),
        [0x7f, 0x80, 0x01]
    );
    assert_eq!(W::new().cstring("a").cnull().build(), [0x02, b'a', 0x00]);
    assert_eq!(W::new().string("ab").build(), [0x00, 0x02, b'a', b'b']);
    assert_eq!(W::new().null_string().build(), [0xff, 0xff]);
    assert_eq!(W::new().tag(5, W::new().i16(1)).build(), [5, 2, 0, 1]);
}

// ---------------------------------------------------------------------------------------------
// ApiVersions (key 18)
// ---------------------------------------------------------------------------------------------

#[test]
fn api_versions_request_v0_is_empty() {
    golden(&ApiVersionsRequest::default(), 0, &[]);
}

#[test]
fn api_versions_request_v3() {
    let req = ApiVersionsRequest {
        client_software_name: "kafkawire".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    };
    // Written out in full once: compact strings are uvarint(len + 1) then the bytes.
    let mut expected = vec![0x0a];
    expected.extend_from_slice(b"kafkawire");
    expected.push(0x06);
    expected.extend_from_slice(b"0.1.0");
    expected.push(0x00); // no tagged fields
    golden(&req, 3, &expected);
    assert_eq!(
        expected,
        W::new()
            .cstring("kafkawire")
            .cstring("0.1.0")
            .no_tags()
            .build()
    );
}

#[test]
fn api_versions_request_v3_keeps_unknown_tagged_fields() {
    let req = ApiVersionsRequest {
        client_software_name: "kw".into(),
        client_software_version: "1".into(),
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 300,
            data: Bytes::from_static(&[0xca, 0xfe]),
        }],
    };
    let expected = W::new()
        .cstring("kw")
        .cstring("1")
        .tags(1)
        .tag(300, W::new().raw(&[0xca, 0xfe]))
        .build();
    assert_eq!(&expected[5..], [0x01, 0xac, 0x02, 0x02, 0xca, 0xfe]);
    golden(&req, 3, &expected);
}

#[test]
fn api_versions_response_v0() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![
            ApiVersion {
                api_key: 0,
                min_version: 0,
                max_version: 9,
                ..Default::default()
            },
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 3,
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    let expected = [
        0x00, 0x00, // error_code
        0x00, 0x00, 0x00, 0x02, // api_keys: int32 count
        0x00, 0x00, 0x00, 0x00, 0x00, 0x09, // Produce 0..=9
        0x00, 0x12, 0x00, 0x00, 0x00, 0x03, // ApiVersions 0..=3
    ];
    golden(&resp, 0, &expected);
}

#[test]
fn api_versions_response_v0_unsupported_version_error() {
    // What a broker answers when it does not know the request version: error 35
    // (UNSUPPORTED_VERSION) and the key ranges it does support, still in v0 layout.
    let resp = ApiVersionsResponse {
        error_code: 35,
        api_keys: vec![ApiVersion {
            api_key: 18,
            min_version: 0,
            max_version: 4,
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = W::new().i16(35).array(1).i16(18).i16(0).i16(4).build();
    golden(&resp, 0, &expected);
}

#[test]
fn api_versions_response_v3_with_known_and_unknown_tagged_fields() {
    let resp = ApiVersionsResponse {
        error_code: 0,
        api_keys: vec![
            ApiVersion {
                api_key: 1,
                min_version: 4,
                max_version: 17,
                // An unknown tagged field inside an array element is kept too.
                unknown_tagged_fields: vec![RawTaggedField {
                    tag: 7,
                    data: Bytes::from_static(&[0x2a]),
                }],
            },
            ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 4,
                ..Default::default()
            },
        ],
        throttle_time_ms: 12,
        supported_features: vec![SupportedFeatureKey {
            name: "metadata.version".into(),
            min_version: 1,
            max_version: 21,
            ..Default::default()
        }],
        finalized_features_epoch: 5,
        unknown_tagged_fields: vec![RawTaggedField {
            tag: 42,
            data: Bytes::from_static(&[1, 2, 3]),
        }],
        ..Default::default()
    };
    let supported = W::new()
        .carray(1)
        .cstring("metadata.version")
        .i16(1)
        .i16(21)
        .no_tags();
    let expected = W::new()
        .i16(0)
        .carray(2)
        .i16(1)
        .i16(4)
        .i16(17)
        .tags(1)
        .tag(7, W::new().raw(&[0x2a]))
        .i16(18)
        .i16(0)
        .i16(4)
        .no_tags()
        .i32(12)
        .tags(3)
        .tag(0, supported) // SupportedFeatures
        .tag(1, W::new().i64(5)) // FinalizedFeaturesEpoch
        .tag(42, W::new().raw(&[1, 2, 3])) // unknown to us
        .build();
    // The SupportedFeatures entry is 23 bytes: 1 count + 17 name + 2 + 2 + 1 tags.
    assert_eq!(expected[25..27], [0x00, 23]);
    golden(&resp, 3, &expected);

    // Decode then re-encode writes the unknown fields back where they were.
    let back = ApiVersionsResponse::decode_bytes(Bytes::from(expected.clone()), 3).unwrap();
    assert_eq!(back.unknown_tagged_fields.len(), 1);
    assert_eq!(back.api_keys[0].unknown_tagged_fields[0].tag, 7);
    assert_eq!(&back.encode_bytes(3).unwrap()[..], &expected[..]);
}

#[test]
fn api_versions_response_v3_default_tagged_fields_are_not_written() {
    // FinalizedFeaturesEpoch defaults to -1; fields at their default are left out (KIP-482).
    let resp = ApiVersionsResponse::default();
    assert_eq!(resp.finalized_features_epoch, -1);
    let expected = W::new().i16(0).carray(0).i32(0).no_tags().build();
    golden(&resp, 3, &expected);
}

// ---------------------------------------------------------------------------------------------
// Metadata (key 3)
// ---------------------------------------------------------------------------------------------

#[test]
fn metadata_request_v1_null_topics_means_all() {
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    golden(&req, 1, &[0xff, 0xff, 0xff, 0xff]);
}

#[test]
fn metadata_request_v1_named_topics() {
    let req = MetadataRequest {
        topics: Some(vec![
            MetadataRequestTopic {
                name: Some("orders".into()),
                ..Default::default()
            },
            MetadataRequestTopic {
                name: Some("payments".into()),
                ..Default::default()
            },
        ]),
        ..Default::default()
    };
    let expected = W::new()
        .array(2)
        .string("orders")
        .string("payments")
        .build();
    golden(&req, 1, &expected);
}

#[test]
fn metadata_request_v12() {
    let req = MetadataRequest {
        topics: Some(vec![
            // By id (KIP-516): the name is null.
            MetadataRequestTopic {
                topic_id: topic_id(),
                name: None,
                ..Default::default()
            },
            // By name: the id is all zeros.
            MetadataRequestTopic {
                topic_id: Uuid::ZERO,
                name: Some("orders".into()),
                ..Default::default()
            },
        ]),
        allow_auto_topic_creation: false,
        include_topic_authorized_operations: true,
        ..Default::default()
    };
    let expected = W::new()
        .carray(2)
        .uuid(TOPIC_ID)
        .cnull()
        .no_tags()
        .uuid([0; 16])
        .cstring("orders")
        .no_tags()
        .bool(false) // AllowAutoTopicCreation (v4+)
        .bool(true) // IncludeTopicAuthorizedOperations (v8+); the cluster flag is v8-10 only
        .no_tags()
        .build();
    golden(&req, 12, &expected);
}

fn metadata_response(version: i16) -> MetadataResponse {
    let flexible_era = version >= 7;
    MetadataResponse {
        throttle_time_ms: 0,
        brokers: vec![
            MetadataResponseBroker {
                node_id: 1,
                host: "kafka-1".into(),
                port: 9092,
                rack: Some("rack-a".into()),
                ..Default::default()
            },
            MetadataResponseBroker {
                node_id: 2,
                host: "kafka-2".into(),
                port: 9093,
                rack: None,
                ..Default::default()
            },
        ],
        cluster_id: (version >= 2).then(|| "MkU3OEVBNTcwNTJENDM2Qk".to_string()),
        controller_id: 2,
        topics: vec![MetadataResponseTopic {
            error_code: 0,
            name: Some("orders".into()),
            topic_id: if version >= 10 {
                topic_id()
            } else {
                Uuid::ZERO
            },
            is_internal: false,
            partitions: vec![
                MetadataResponsePartition {
                    error_code: 0,
                    partition_index: 0,
                    leader_id: 1,
                    leader_epoch: if flexible_era { 7 } else { -1 },
                    replica_nodes: vec![1, 2],
                    isr_nodes: vec![1, 2],
                    ..Default::default()
                },
                MetadataResponsePartition {
                    error_code: 0,
                    partition_index: 1,
                    leader_id: 2,
                    leader_epoch: if flexible_era { 3 } else { -1 },
                    replica_nodes: vec![2, 3],
                    isr_nodes: vec![2],
                    offline_replicas: if version >= 5 { vec![3] } else { vec![] },
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    }
}

#[test]
fn metadata_response_v1() {
    let resp = metadata_response(1);
    let expected = W::new()
        // Brokers: node id, host, port, rack (v1+, nullable)
        .array(2)
        .i32(1)
        .string("kafka-1")
        .i32(9092)
        .string("rack-a")
        .i32(2)
        .string("kafka-2")
        .i32(9093)
        .null_string()
        // ControllerId (v1+); no ClusterId before v2, no ThrottleTimeMs before v3
        .i32(2)
        // Topics: error, name, is_internal (v1+), partitions
        .array(1)
        .i16(0)
        .string("orders")
        .bool(false)
        .array(2)
        // partition 0: error, index, leader, replicas, isr (no leader epoch before v7)
        .i16(0)
        .i32(0)
        .i32(1)
        .array(2)
        .i32(1)
        .i32(2)
        .array(2)
        .i32(1)
        .i32(2)
        // partition 1
        .i16(0)
        .i32(1)
        .i32(2)
        .array(2)
        .i32(2)
        .i32(3)
        .array(1)
        .i32(2)
        .build();
    golden(&resp, 1, &expected);
}

#[test]
fn metadata_response_v12() {
    let mut resp = metadata_response(12);
    // A second topic looked up by an id the broker does not know: null name (v12+), error 100
    // (UNKNOWN_TOPIC_ID).
    resp.topics.push(MetadataResponseTopic {
        error_code: 100,
        name: None,
        topic_id: Uuid(OTHER_ID),
        ..Default::default()
    });
    resp.throttle_time_ms = 3;
    let expected = W::new()
        .i32(3) // ThrottleTimeMs
        .carray(2)
        .i32(1)
        .cstring("kafka-1")
        .i32(9092)
        .cstring("rack-a")
        .no_tags()
        .i32(2)
        .cstring("kafka-2")
        .i32(9093)
        .cnull()
        .no_tags()
        .cstring("MkU3OEVBNTcwNTJENDM2Qk") // ClusterId
        .i32(2) // ControllerId
        .carray(2)
        // topic "orders"
        .i16(0)
        .cstring("orders")
        .uuid(TOPIC_ID)
        .bool(false)
        .carray(2)
        .i16(0)
        .i32(0)
        .i32(1)
        .i32(7) // LeaderEpoch (v7+)
        .carray(2)
        .i32(1)
        .i32(2)
        .carray(2)
        .i32(1)
        .i32(2)
        .carray(0) // OfflineReplicas (v5+)
        .no_tags()
        .i16(0)
        .i32(1)
        .i32(2)
        .i32(3)
        .carray(2)
        .i32(2)
        .i32(3)
        .carray(1)
        .i32(2)
        .carray(1)
        .i32(3)
        .no_tags()
        .i32(i32::MIN) // TopicAuthorizedOperations (v8+), default "not requested"
        .no_tags()
        // unknown topic id
        .i16(100)
        .cnull()
        .uuid(OTHER_ID)
        .bool(false)
        .carray(0)
        .i32(i32::MIN)
        .no_tags()
        // no ClusterAuthorizedOperations after v10
        .no_tags()
        .build();
    golden(&resp, 12, &expected);
}

// ---------------------------------------------------------------------------------------------
// Frames and headers
// ---------------------------------------------------------------------------------------------

#[test]
fn api_versions_v3_request_frame() {
    let req = ApiVersionsRequest {
        client_software_name: "kafkawire".into(),
        client_software_version: "0.1.0".into(),
        ..Default::default()
    };
    let mut out = BytesMut::new();
    frame::encode_request(&mut out, 0x0102_0304, Some("kw-client"), 3, &req).unwrap();

    // Request header v2: api key, version, correlation id, ClientId as a plain int16-length
    // string (never compact, even in v2), then an empty tagged-field section.
    let mut expected: Vec<u8> = vec![
        0x00, 0x00, 0x00, 37, // size of everything after this field
        0x00, 18, // ApiVersions
        0x00, 3, // version
        0x01, 0x02, 0x03, 0x04, // correlation id
        0x00, 9, // client id length (int16)
    ];
    expected.extend_from_slice(b"kw-client");
    expected.push(0x00); // header tagged fields
    expected.push(10); // body: compact "kafkawire"
    expected.extend_from_slice(b"kafkawire");
    expected.push(6); // compact "0.1.0"
    expected.extend_from_slice(b"0.1.0");
    expected.push(0x00); // body tagged fields
    assert_eq!(expected.len(), 4 + 37);
    assert_eq!(hex(&out), hex(&expected));

    let f = frame::decode_request_header(Bytes::from(expected).slice(4..)).unwrap();
    assert_eq!(f.api_key, Some(ApiKey::ApiVersions));
    assert_eq!(f.header.correlation_id, 0x0102_0304);
    assert_eq!(f.header.client_id.as_deref(), Some("kw-client"));
    assert_eq!(f.decode::<ApiVersionsRequest>().unwrap(), req);
}

#[test]
fn request_frames_with_null_client_id_and_header_v1() {
    // Null ClientId is int16 -1. Metadata v1 uses request header v1: no tagged fields.
    let req = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let mut out = BytesMut::new();
    frame::encode_request(&mut out, 9, None, 1, &req).unwrap();
    let expected = W::new()
        .i32(14)
        .i16(3)
        .i16(1)
        .i32(9)
        .null_string()
        .null32()
        .build();
    assert_eq!(hex(&out), hex(&expected));

    // Metadata v12 uses header v2: the same plus one tagged-field byte.
    let mut out = BytesMut::new();
    frame::encode_request(&mut out, 9, Some(""), 12, &MetadataRequest::default()).unwrap();
    let expected = W::new()
        .i32(15)
        .i16(3)
        .i16(12)
        .i32(9)
        .string("")
        .no_tags()
        .carray(0)
        .bool(true)
        .bool(false)
        .no_tags()
        .build();
    assert_eq!(hex(&out), hex(&expected));
}

#[test]
fn response_frames_use_the_right_header_version() {
    // ApiVersions responses always use response header v0 (no tagged fields), even when the
    // body is flexible, so that a client can read it whatever version it asked for.
    let resp = ApiVersionsResponse::default();
    let mut out = BytesMut::new();
    frame::encode_response(&mut out, ApiKey::ApiVersions, 77, 3, &resp).unwrap();
    let body = W::new().i16(0).carray(0).i32(0).no_tags().build();
    let expected = W::new()
        .i32(4 + body.len() as i32)
        .i32(77)
        .raw(&body)
        .build();
    assert_eq!(hex(&out), hex(&expected));
    let (h, back) = frame::decode_response::<ApiVersionsResponse>(
        Bytes::from(expected).slice(4..),
        ApiKey::ApiVersions,
        3,
    )
    .unwrap();
    assert_eq!((h.correlation_id, back), (77, resp));

    // Other flexible responses use header v1: correlation id, then tagged fields.
    let resp = MetadataResponse::default();
    let mut out = BytesMut::new();
    frame::encode_response(&mut out, ApiKey::Metadata, 78, 12, &resp).unwrap();
    let body = W::new()
        .i32(0)
        .carray(0)
        .cnull()
        .i32(-1)
        .carray(0)
        .no_tags()
        .build();
    let expected = W::new()
        .i32(5 + body.len() as i32)
        .i32(78)
        .no_tags()
        .raw(&body)
        .build();
    assert_eq!(hex(&out), hex(&expected));
}
