//! Golden byte vectors: our encoders and decoders checked against bytes laid out by hand.
//!
//! Every expected buffer here is written field by field from the layouts in the Kafka protocol
//! guide ("Protocol Primitive Types", "The Messages") and the message schemas, through the small
//! [`W`] writer below. `W` does not use the crate's encoder or primitives, so a mistake in them
//! cannot cancel itself out. Flexible versions follow KIP-482: compact lengths are an unsigned
//! varint of `length + 1` (0 is null), and each structure ends with a tagged-field section
//! (count, then tag / size / data per field, tags ascending).
//!
//! For each vector, [`golden`] checks that encoding the value gives exactly the bytes, that
//! decoding the bytes gives back the value, that every strict prefix fails to decode and that a
//! trailing byte is refused.

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::frame;
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::api_versions_response::{
    ApiVersion, ApiVersionsResponse, SupportedFeatureKey,
};
use kafkawire_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic,
};
use kafkawire_protocol::messages::fetch_response::{
    self as fres, AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse,
    PartitionData, SnapshotId,
};
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafkawire_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkawire_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafkawire_protocol::messages::produce_response::{
    self as pres, BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse,
    TopicProduceResponse,
};
use kafkawire_protocol::messages::{ApiKey, Message};
use kafkawire_protocol::{DecodeError, DecodeErrorKind, RawTaggedField, Uuid};

// ---------------------------------------------------------------------------------------------
// Hand-rolled writer
// ---------------------------------------------------------------------------------------------

/// A byte-vector builder for the protocol's primitive types, written for these tests only.
/// Integers are big-endian; varints are unsigned LEB128 (protocol guide, UNSIGNED_VARINT).
#[derive(Clone, Default)]
struct W(Vec<u8>);

impl W {
    fn new() -> Self {
        W(Vec::new())
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn i8(self, v: i8) -> Self {
        self.raw(&v.to_be_bytes())
    }
    fn bool(self, v: bool) -> Self {
        self.raw(&[u8::from(v)])
    }
    fn i16(self, v: i16) -> Self {
        self.raw(&v.to_be_bytes())
    }
    fn i32(self, v: i32) -> Self {
        self.raw(&v.to_be_bytes())
    }
    fn i64(self, v: i64) -> Self {
        self.raw(&v.to_be_bytes())
    }
    fn uuid(self, u: [u8; 16]) -> Self {
        self.raw(&u)
    }
    fn uvarint(mut self, mut v: u64) -> Self {
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
    fn string(self, s: &str) -> Self {
        self.i16(s.len() as i16).raw(s.as_bytes())
    }
    /// NULLABLE_STRING null: int16 -1.
    fn null_string(self) -> Self {
        self.i16(-1)
    }
    /// COMPACT_STRING: uvarint length + 1, then bytes.
    fn cstring(self, s: &str) -> Self {
        self.uvarint(s.len() as u64 + 1).raw(s.as_bytes())
    }
    /// Null in any compact nullable form (string, bytes, array): uvarint 0.
    fn cnull(self) -> Self {
        self.uvarint(0)
    }
    /// BYTES / NULLABLE_BYTES / RECORDS: int32 length, then bytes.
    fn bytes(self, b: &[u8]) -> Self {
        self.i32(b.len() as i32).raw(b)
    }
    /// Null bytes, records or array: int32 -1.
    fn null32(self) -> Self {
        self.i32(-1)
    }
    /// COMPACT_BYTES / COMPACT_RECORDS: uvarint length + 1, then bytes.
    fn cbytes(self, b: &[u8]) -> Self {
        self.uvarint(b.len() as u64 + 1).raw(b)
    }
    /// ARRAY: int32 element count.
    fn array(self, n: i32) -> Self {
        self.i32(n)
    }
    /// COMPACT_ARRAY: uvarint count + 1.
    fn carray(self, n: u64) -> Self {
        self.uvarint(n + 1)
    }
    /// An empty tagged-field section.
    fn no_tags(self) -> Self {
        self.uvarint(0)
    }
    /// Start of a tagged-field section holding `n` fields.
    fn tags(self, n: u64) -> Self {
        self.uvarint(n)
    }
    /// One tagged field: tag, size, data.
    fn tag(self, tag: u64, data: W) -> Self {
        self.uvarint(tag).uvarint(data.0.len() as u64).raw(&data.0)
    }
    fn build(self) -> Vec<u8> {
        self.0
    }
}

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
// Checks
// ---------------------------------------------------------------------------------------------

fn hex(b: &[u8]) -> String {
    b.iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// `value` encodes to exactly `expected` in `version`, and `expected` decodes to `value`.
fn golden<M: Message>(value: &M, version: i16, expected: &[u8]) {
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

const TOPIC_ID: [u8; 16] = [
    0x9c, 0x3e, 0x5f, 0x10, 0x2a, 0x4b, 0x4c, 0x8d, 0xa1, 0x07, 0x33, 0x61, 0xe0, 0x5b, 0x7d, 0x02,
];
const OTHER_ID: [u8; 16] = [
    0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10,
];
/// Stands in for a record batch: the Records fields are opaque bytes at this layer.
const RECORDS: &[u8] = b"\x00\x00\x00\x00\x00\x00\x00\x00opaque-batch";

fn topic_id() -> Uuid {
    Uuid(TOPIC_ID)
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
// Produce (key 0)
// ---------------------------------------------------------------------------------------------

#[test]
fn produce_request_v3() {
    let req = ProduceRequest {
        transactional_id: None,
        acks: -1,
        timeout_ms: 30_000,
        topic_data: vec![TopicProduceData {
            name: "orders".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(Bytes::from_static(RECORDS)),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = W::new()
        .null_string() // TransactionalId (v3+)
        .i16(-1) // Acks: all in-sync replicas
        .i32(30_000)
        .array(1)
        .string("orders")
        .array(1)
        .i32(0)
        .bytes(RECORDS)
        .build();
    assert_eq!(
        expected[..8],
        [0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x75, 0x30]
    );
    golden(&req, 3, &expected);
}

#[test]
fn produce_request_v9() {
    let req = ProduceRequest {
        transactional_id: Some("txn-1".into()),
        acks: -1,
        timeout_ms: 1_500,
        topic_data: vec![TopicProduceData {
            name: "orders".into(),
            partition_data: vec![
                PartitionProduceData {
                    index: 0,
                    records: Some(Bytes::from_static(RECORDS)),
                    ..Default::default()
                },
                PartitionProduceData {
                    index: 1,
                    records: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = W::new()
        .cstring("txn-1")
        .i16(-1)
        .i32(1_500)
        .carray(1)
        .cstring("orders")
        .carray(2)
        .i32(0)
        .cbytes(RECORDS)
        .no_tags()
        .i32(1)
        .cnull()
        .no_tags()
        .no_tags()
        .no_tags()
        .build();
    golden(&req, 9, &expected);
}

fn produce_response() -> ProduceResponse {
    ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "orders".into(),
            partition_responses: vec![
                PartitionProduceResponse {
                    index: 0,
                    error_code: 87, // INVALID_RECORD
                    base_offset: -1,
                    log_append_time_ms: -1,
                    log_start_offset: 100,
                    record_errors: vec![
                        BatchIndexAndErrorMessage {
                            batch_index: 0,
                            batch_index_error_message: Some("key is required".into()),
                            ..Default::default()
                        },
                        BatchIndexAndErrorMessage {
                            batch_index: 3,
                            batch_index_error_message: None,
                            ..Default::default()
                        },
                    ],
                    error_message: Some("2 records rejected".into()),
                    ..Default::default()
                },
                PartitionProduceResponse {
                    index: 1,
                    error_code: 0,
                    base_offset: 4_242,
                    log_append_time_ms: 1_700_000_000_000,
                    log_start_offset: 0,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        throttle_time_ms: 0,
        ..Default::default()
    }
}

#[test]
fn produce_response_v8() {
    let expected = W::new()
        .array(1)
        .string("orders")
        .array(2)
        .i32(0)
        .i16(87)
        .i64(-1) // BaseOffset
        .i64(-1) // LogAppendTimeMs (v2+)
        .i64(100) // LogStartOffset (v5+)
        .array(2) // RecordErrors (v8+)
        .i32(0)
        .string("key is required")
        .i32(3)
        .null_string()
        .string("2 records rejected") // ErrorMessage (v8+)
        .i32(1)
        .i16(0)
        .i64(4_242)
        .i64(1_700_000_000_000)
        .i64(0)
        .array(0)
        .null_string()
        .i32(0) // ThrottleTimeMs
        .build();
    golden(&produce_response(), 8, &expected);
}

fn produce_response_v9_bytes(leader_tag: Option<W>, endpoints_tag: Option<W>) -> Vec<u8> {
    let partition0_tags = match leader_tag {
        Some(t) => W::new().tags(1).tag(0, t),
        None => W::new().no_tags(),
    };
    let top_tags = match endpoints_tag {
        Some(t) => W::new().tags(1).tag(0, t),
        None => W::new().no_tags(),
    };
    W::new()
        .carray(1)
        .cstring("orders")
        .carray(2)
        .i32(0)
        .i16(87)
        .i64(-1)
        .i64(-1)
        .i64(100)
        .carray(2)
        .i32(0)
        .cstring("key is required")
        .no_tags()
        .i32(3)
        .cnull()
        .no_tags()
        .cstring("2 records rejected")
        .raw(&partition0_tags.build())
        .i32(1)
        .i16(0)
        .i64(4_242)
        .i64(1_700_000_000_000)
        .i64(0)
        .carray(0)
        .cnull()
        .no_tags()
        .no_tags() // topic
        .i32(0)
        .raw(&top_tags.build())
        .build()
}

#[test]
fn produce_response_v9() {
    golden(
        &produce_response(),
        9,
        &produce_response_v9_bytes(None, None),
    );
}

#[test]
fn produce_response_v10_tagged_leader_and_endpoints() {
    // KIP-951: CurrentLeader (partition, tag 0) and NodeEndpoints (top level, tag 0).
    let mut resp = produce_response();
    resp.responses[0].partition_responses[0].current_leader = pres::LeaderIdAndEpoch {
        leader_id: 2,
        leader_epoch: 9,
        ..Default::default()
    };
    resp.node_endpoints = vec![pres::NodeEndpoint {
        node_id: 2,
        host: "kafka-2".into(),
        port: 9093,
        rack: None,
        ..Default::default()
    }];
    let leader = W::new().i32(2).i32(9).no_tags();
    let endpoints = W::new()
        .carray(1)
        .i32(2)
        .cstring("kafka-2")
        .i32(9093)
        .cnull()
        .no_tags();
    golden(
        &resp,
        10,
        &produce_response_v9_bytes(Some(leader), Some(endpoints)),
    );
    // Version 9 cannot carry them, and says so rather than dropping them.
    assert!(resp.encode_bytes(9).is_err());
}

// ---------------------------------------------------------------------------------------------
// Fetch (key 1)
// ---------------------------------------------------------------------------------------------

#[test]
fn fetch_request_v4() {
    let req = FetchRequest {
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        isolation_level: 1, // READ_COMMITTED
        topics: vec![FetchTopic {
            topic: "orders".into(),
            partitions: vec![
                FetchPartition {
                    partition: 0,
                    fetch_offset: 42,
                    partition_max_bytes: 1_048_576,
                    ..Default::default()
                },
                FetchPartition {
                    partition: 1,
                    fetch_offset: 0,
                    partition_max_bytes: 1_048_576,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = W::new()
        .i32(-1) // ReplicaId
        .i32(500) // MaxWaitMs
        .i32(1) // MinBytes
        .i32(52_428_800) // MaxBytes (v3+)
        .i8(1) // IsolationLevel (v4+)
        .array(1)
        .string("orders")
        .array(2)
        .i32(0)
        .i64(42)
        .i32(1_048_576)
        .i32(1)
        .i64(0)
        .i32(1_048_576)
        .build();
    golden(&req, 4, &expected);
}

fn fetch_request_v12_plus(version: i16) -> FetchRequest {
    let by_id = version >= 13;
    FetchRequest {
        cluster_id: (!by_id).then(|| "cluster-A".to_string()),
        replica_id: -1,
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 52_428_800,
        isolation_level: 0,
        session_id: 12_345,
        session_epoch: 3,
        topics: vec![FetchTopic {
            topic: if by_id {
                String::new()
            } else {
                "orders".into()
            },
            topic_id: if by_id { topic_id() } else { Uuid::ZERO },
            partitions: vec![FetchPartition {
                partition: 0,
                current_leader_epoch: 5,
                fetch_offset: 42,
                last_fetched_epoch: 4,
                log_start_offset: -1,
                partition_max_bytes: 1_048_576,
                ..Default::default()
            }],
            ..Default::default()
        }],
        forgotten_topics_data: vec![ForgottenTopic {
            topic: if by_id {
                String::new()
            } else {
                "old-topic".into()
            },
            topic_id: if by_id { Uuid(OTHER_ID) } else { Uuid::ZERO },
            partitions: vec![0, 1],
            ..Default::default()
        }],
        rack_id: if by_id {
            String::new()
        } else {
            "rack-a".into()
        },
        ..Default::default()
    }
}

#[test]
fn fetch_request_v12() {
    let expected = W::new()
        .i32(-1)
        .i32(500)
        .i32(1)
        .i32(52_428_800)
        .i8(0)
        .i32(12_345) // SessionId (v7+)
        .i32(3) // SessionEpoch (v7+)
        .carray(1)
        .cstring("orders")
        .carray(1)
        .i32(0)
        .i32(5) // CurrentLeaderEpoch (v9+)
        .i64(42)
        .i32(4) // LastFetchedEpoch (v12+)
        .i64(-1) // LogStartOffset (v5+)
        .i32(1_048_576)
        .no_tags()
        .no_tags()
        .carray(1) // ForgottenTopicsData (v7+)
        .cstring("old-topic")
        .carray(2)
        .i32(0)
        .i32(1)
        .no_tags()
        .cstring("rack-a") // RackId (v11+)
        .tags(1)
        .tag(0, W::new().cstring("cluster-A")) // ClusterId, tagged (KIP-595)
        .build();
    golden(&fetch_request_v12_plus(12), 12, &expected);
}

#[test]
fn fetch_request_v13_uses_topic_ids() {
    let expected = W::new()
        .i32(-1)
        .i32(500)
        .i32(1)
        .i32(52_428_800)
        .i8(0)
        .i32(12_345)
        .i32(3)
        .carray(1)
        .uuid(TOPIC_ID) // TopicId replaces Topic from v13 (KIP-516)
        .carray(1)
        .i32(0)
        .i32(5)
        .i64(42)
        .i32(4)
        .i64(-1)
        .i32(1_048_576)
        .no_tags()
        .no_tags()
        .carray(1)
        .uuid(OTHER_ID)
        .carray(2)
        .i32(0)
        .i32(1)
        .no_tags()
        .cstring("") // empty RackId
        .no_tags() // ClusterId null: not written
        .build();
    golden(&fetch_request_v12_plus(13), 13, &expected);
}

#[test]
fn fetch_response_v4_with_aborted_transactions() {
    let resp = FetchResponse {
        throttle_time_ms: 0,
        responses: vec![FetchableTopicResponse {
            topic: "orders".into(),
            partitions: vec![
                PartitionData {
                    partition_index: 0,
                    error_code: 0,
                    high_watermark: 100,
                    last_stable_offset: 90,
                    aborted_transactions: Some(vec![
                        AbortedTransaction {
                            producer_id: 7,
                            first_offset: 91,
                            ..Default::default()
                        },
                        AbortedTransaction {
                            producer_id: 8,
                            first_offset: 95,
                            ..Default::default()
                        },
                    ]),
                    records: Some(Bytes::from_static(RECORDS)),
                    ..Default::default()
                },
                PartitionData {
                    partition_index: 1,
                    error_code: 6, // NOT_LEADER_OR_FOLLOWER
                    high_watermark: -1,
                    last_stable_offset: -1,
                    aborted_transactions: None,
                    records: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = W::new()
        .i32(0) // ThrottleTimeMs (v1+); ErrorCode and SessionId only from v7
        .array(1)
        .string("orders")
        .array(2)
        .i32(0)
        .i16(0)
        .i64(100) // HighWatermark
        .i64(90) // LastStableOffset (v4+); no LogStartOffset before v5
        .array(2) // AbortedTransactions (v4+, nullable)
        .i64(7)
        .i64(91)
        .i64(8)
        .i64(95)
        .bytes(RECORDS)
        .i32(1)
        .i16(6)
        .i64(-1)
        .i64(-1)
        .null32() // null AbortedTransactions
        .null32() // null Records
        .build();
    golden(&resp, 4, &expected);
}

#[test]
fn fetch_response_v12_tagged_partition_fields_and_null_records() {
    let resp = FetchResponse {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 12_345,
        responses: vec![FetchableTopicResponse {
            topic: "orders".into(),
            partitions: vec![
                PartitionData {
                    partition_index: 0,
                    error_code: 0,
                    high_watermark: 100,
                    last_stable_offset: 90,
                    log_start_offset: 0,
                    diverging_epoch: EpochEndOffset {
                        epoch: 3,
                        end_offset: 80,
                        ..Default::default()
                    },
                    current_leader: fres::LeaderIdAndEpoch {
                        leader_id: 2,
                        leader_epoch: 4,
                        ..Default::default()
                    },
                    aborted_transactions: Some(vec![AbortedTransaction {
                        producer_id: 7,
                        first_offset: 91,
                        ..Default::default()
                    }]),
                    preferred_read_replica: -1,
                    records: Some(Bytes::from_static(RECORDS)),
                    unknown_tagged_fields: vec![RawTaggedField {
                        tag: 9,
                        data: Bytes::from_static(&[0xaa]),
                    }],
                    ..Default::default()
                },
                PartitionData {
                    partition_index: 1,
                    error_code: 0,
                    high_watermark: 50,
                    last_stable_offset: 50,
                    log_start_offset: 0,
                    snapshot_id: SnapshotId {
                        end_offset: 40,
                        epoch: 2,
                        ..Default::default()
                    },
                    aborted_transactions: None,
                    preferred_read_replica: 3,
                    records: None,
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
        ..Default::default()
    };
    let expected = W::new()
        .i32(0)
        .i16(0) // ErrorCode (v7+)
        .i32(12_345) // SessionId (v7+)
        .carray(1)
        .cstring("orders")
        .carray(2)
        // partition 0
        .i32(0)
        .i16(0)
        .i64(100)
        .i64(90)
        .i64(0) // LogStartOffset (v5+)
        .carray(1)
        .i64(7)
        .i64(91)
        .no_tags()
        .i32(-1) // PreferredReadReplica (v11+)
        .cbytes(RECORDS)
        .tags(3)
        .tag(0, W::new().i32(3).i64(80).no_tags()) // DivergingEpoch
        .tag(1, W::new().i32(2).i32(4).no_tags()) // CurrentLeader
        .tag(9, W::new().raw(&[0xaa])) // unknown, kept
        // partition 1
        .i32(1)
        .i16(0)
        .i64(50)
        .i64(50)
        .i64(0)
        .cnull() // null AbortedTransactions
        .i32(3)
        .cnull() // null Records
        .tags(1)
        .tag(2, W::new().i64(40).i32(2).no_tags()) // SnapshotId
        .no_tags() // topic
        .no_tags()
        .build();
    golden(&resp, 12, &expected);
}

#[test]
fn fetch_response_tagged_fields_refused_before_v12() {
    let resp = FetchResponse {
        responses: vec![FetchableTopicResponse {
            topic: "t".into(),
            partitions: vec![PartitionData {
                diverging_epoch: EpochEndOffset {
                    epoch: 1,
                    end_offset: 2,
                    ..Default::default()
                },
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    assert!(resp.encode_bytes(11).is_err());
    assert!(resp.encode_bytes(12).is_ok());
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
    // against the bytes left before any Vec is sized from it.
    let bytes = W::new().array(1_000_000).raw(&[0; 8]).build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponse.Brokers");
    assert_eq!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 1_000_000,
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
        .build();
    let e = decode_err::<MetadataResponse>(bytes, 1);
    assert_eq!(e.what, "MetadataResponsePartition.ReplicaNodes");
    assert!(matches!(
        e.kind,
        DecodeErrorKind::Truncated {
            needed: 1_000_000,
            ..
        }
    ));

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
    let bytes = W::new().array(0).i32(1).array(1).i16(0).i16(-5).build();
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
