//! Golden byte vectors for the data path: Produce (key 0) and Fetch (key 1) requests and
//! responses, old fixed-width versions and flexible versions with tagged fields.
//!
//! The expected bytes are laid out by hand with the writer in the shared [`golden`] module
//! (see its docs for the method); `golden::golden` round-trips each vector.

mod golden;

use bytes::Bytes;
use golden::{OTHER_ID, RECORDS, TOPIC_ID, W, golden, topic_id};
use kafkawire_protocol::messages::Message;
use kafkawire_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic, ForgottenTopic,
};
use kafkawire_protocol::messages::fetch_response::{
    self as fres, AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse,
    PartitionData, SnapshotId,
};
use kafkawire_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafkawire_protocol::messages::produce_response::{
    self as pres, BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceResponse,
    TopicProduceResponse,
};
use kafkawire_protocol::{RawTaggedField, Uuid};

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
