//! Request dispatch: scripted actions, then the default behaviour of each API.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::frame::decode_request_header;
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::api_versions_response::{ApiVersion, ApiVersionsResponse};
use kafkawire_protocol::messages::create_topics_request::CreateTopicsRequest;
use kafkawire_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use kafkawire_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafkawire_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use kafkawire_protocol::messages::fetch_request::FetchRequest;
use kafkawire_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch as FetchLeader,
    NodeEndpoint as FetchNode, PartitionData,
};
use kafkawire_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafkawire_protocol::messages::find_coordinator_response::{
    Coordinator, FindCoordinatorResponse,
};
use kafkawire_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafkawire_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafkawire_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafkawire_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafkawire_protocol::messages::metadata_request::MetadataRequest;
use kafkawire_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkawire_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafkawire_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafkawire_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafkawire_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafkawire_protocol::messages::offset_for_leader_epoch_request::OffsetForLeaderEpochRequest;
use kafkawire_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use kafkawire_protocol::messages::produce_request::ProduceRequest;
use kafkawire_protocol::messages::produce_response::{
    LeaderIdAndEpoch as ProduceLeader, NodeEndpoint as ProduceNode, PartitionProduceResponse,
    ProduceResponse, TopicProduceResponse,
};
use kafkawire_protocol::messages::*;
use kafkawire_protocol::{DecodeError, ErrorCode, Uuid};

use super::model::{PartitionModel, State};
use super::server::Shared;
use super::{Action, Modifier, Reply, RequestRecord, ScriptedRequest};

const NONE: i16 = ErrorCode::NONE.0;
const UNKNOWN_TOPIC: i16 = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0;
const NOT_LEADER: i16 = ErrorCode::NOT_LEADER_OR_FOLLOWER.0;
const UNSUPPORTED_VERSION: i16 = ErrorCode::UNSUPPORTED_VERSION.0;

/// Reads a request frame and works out the reply.
pub(crate) async fn handle(shared: &Shared, broker: i32, frame: Bytes) -> Reply {
    let rf = match decode_request_header(frame) {
        Ok(rf) => rf,
        Err(e) => {
            tracing::warn!("mock broker {broker}: bad request header, closing: {e}");
            return Reply::Close;
        }
    };
    let h = &rf.header;
    shared.with(|s| {
        s.requests.push(RequestRecord {
            broker_id: broker,
            api_key: h.request_api_key,
            version: h.request_api_version,
            correlation_id: h.correlation_id,
            client_id: h.client_id.clone(),
        })
    });
    let Some(api) = rf.api_key else {
        tracing::warn!(
            "mock broker {broker}: unknown API key {}, closing",
            h.request_api_key
        );
        return Reply::Close;
    };
    let req = ScriptedRequest {
        broker_id: broker,
        api_key: api,
        version: h.request_api_version,
        correlation_id: h.correlation_id,
        client_id: h.client_id.clone(),
        body: rf.body,
    };
    if api != ApiKey::ApiVersions {
        let range = shared.with(|s| s.api_versions.get(&(api as i16)).copied());
        if !range.is_some_and(|(min, max)| (min..=max).contains(&req.version)) {
            tracing::warn!(
                "mock broker {broker}: {} v{} is not advertised ({range:?}), closing",
                api.name(),
                req.version
            );
            return Reply::Close;
        }
    }
    let mut action = shared.with(|s| s.next_action(broker, api));
    let action = loop {
        match action {
            Some(Action::Delay(d)) => {
                tokio::time::sleep(d).await;
                break None;
            }
            Some(Action::Delayed(d, inner)) => {
                tokio::time::sleep(d).await;
                action = Some(*inner);
            }
            other => break other,
        }
    };
    match action {
        None | Some(Action::Delay(_) | Action::Delayed(..)) => {
            default_reply(shared, &req, None).await
        }
        Some(Action::Modify(m)) => default_reply(shared, &req, Some(m)).await,
        Some(Action::ErrorCode(code)) => error_reply(shared, &req, code.0),
        Some(Action::DropConnection) => Reply::Close,
        Some(Action::NoResponse) => Reply::Nothing,
        Some(Action::ProcessThenDrop) => {
            // Side effects happen; the answer is lost with the connection.
            let _ = default_reply(shared, &req, None).await;
            Reply::Close
        }
        Some(Action::Respond(f)) => f(&req),
    }
}

fn bad_request(req: &ScriptedRequest, e: DecodeError) -> Reply {
    tracing::warn!(
        "mock broker {}: cannot decode {} v{}, closing: {e}",
        req.broker_id,
        req.api_key.name(),
        req.version
    );
    Reply::Close
}

/// Decodes the request as `$ty` or returns [`Reply::Close`].
macro_rules! decode_or_close {
    ($req:expr, $ty:ty) => {
        match $req.decode::<$ty>() {
            Ok(r) => r,
            Err(e) => return bad_request($req, e),
        }
    };
}

/// Applies the modifier, then encodes at the request's version.
fn finish<M: Message>(req: &ScriptedRequest, mut resp: M, modify: Option<Modifier>) -> Reply {
    if let Some(f) = modify {
        f(&mut resp);
    }
    req.reply(&resp)
}

async fn default_reply(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    match req.api_key {
        ApiKey::ApiVersions => api_versions(shared, req, modify),
        ApiKey::Metadata => metadata(shared, req, modify),
        ApiKey::Produce => produce(shared, req, modify),
        ApiKey::Fetch => fetch(shared, req, modify).await,
        ApiKey::ListOffsets => list_offsets(shared, req, modify),
        ApiKey::OffsetForLeaderEpoch => offset_for_leader_epoch(shared, req, modify),
        ApiKey::FindCoordinator => find_coordinator(shared, req, modify),
        ApiKey::InitProducerId => init_producer_id(shared, req, modify),
        ApiKey::CreateTopics => create_topics(shared, req, modify),
        ApiKey::DeleteTopics => delete_topics(shared, req, modify),
        ApiKey::OffsetCommit => offset_commit(shared, req, modify),
        ApiKey::OffsetFetch => offset_fetch(shared, req, modify),
        _ => generic_default(req, modify),
    }
}

/// Every other API: decode the request, answer the response type's `Default`.
fn generic_default(req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    macro_rules! generic {
        ($($key:ident => $m:ident :: $ty:ident),* $(,)?) => {
            match req.api_key {
                $(ApiKey::$key => {
                    decode_or_close!(req, $m::$ty);
                    finish(req, <<$m::$ty as Request>::Response as Default>::default(), modify)
                })*
                other => {
                    tracing::warn!(
                        "mock broker {}: no default for {}, closing",
                        req.broker_id,
                        other.name()
                    );
                    Reply::Close
                }
            }
        };
    }
    generic! {
        AddOffsetsToTxn => add_offsets_to_txn_request::AddOffsetsToTxnRequest,
        AddPartitionsToTxn => add_partitions_to_txn_request::AddPartitionsToTxnRequest,
        AlterClientQuotas => alter_client_quotas_request::AlterClientQuotasRequest,
        AlterConfigs => alter_configs_request::AlterConfigsRequest,
        AlterPartitionReassignments =>
            alter_partition_reassignments_request::AlterPartitionReassignmentsRequest,
        ConsumerGroupDescribe => consumer_group_describe_request::ConsumerGroupDescribeRequest,
        ConsumerGroupHeartbeat => consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest,
        CreateAcls => create_acls_request::CreateAclsRequest,
        CreatePartitions => create_partitions_request::CreatePartitionsRequest,
        DeleteAcls => delete_acls_request::DeleteAclsRequest,
        DeleteGroups => delete_groups_request::DeleteGroupsRequest,
        DeleteRecords => delete_records_request::DeleteRecordsRequest,
        DescribeAcls => describe_acls_request::DescribeAclsRequest,
        DescribeClientQuotas => describe_client_quotas_request::DescribeClientQuotasRequest,
        DescribeCluster => describe_cluster_request::DescribeClusterRequest,
        DescribeConfigs => describe_configs_request::DescribeConfigsRequest,
        DescribeGroups => describe_groups_request::DescribeGroupsRequest,
        DescribeLogDirs => describe_log_dirs_request::DescribeLogDirsRequest,
        DescribeProducers => describe_producers_request::DescribeProducersRequest,
        DescribeTopicPartitions =>
            describe_topic_partitions_request::DescribeTopicPartitionsRequest,
        DescribeTransactions => describe_transactions_request::DescribeTransactionsRequest,
        ElectLeaders => elect_leaders_request::ElectLeadersRequest,
        EndTxn => end_txn_request::EndTxnRequest,
        Heartbeat => heartbeat_request::HeartbeatRequest,
        IncrementalAlterConfigs =>
            incremental_alter_configs_request::IncrementalAlterConfigsRequest,
        JoinGroup => join_group_request::JoinGroupRequest,
        LeaveGroup => leave_group_request::LeaveGroupRequest,
        ListGroups => list_groups_request::ListGroupsRequest,
        ListPartitionReassignments =>
            list_partition_reassignments_request::ListPartitionReassignmentsRequest,
        ListTransactions => list_transactions_request::ListTransactionsRequest,
        OffsetDelete => offset_delete_request::OffsetDeleteRequest,
        SaslAuthenticate => sasl_authenticate_request::SaslAuthenticateRequest,
        SaslHandshake => sasl_handshake_request::SaslHandshakeRequest,
        SyncGroup => sync_group_request::SyncGroupRequest,
        TxnOffsetCommit => txn_offset_commit_request::TxnOffsetCommitRequest,
    }
}

/// [`Action::ErrorCode`]: the request's response shape with `code` in its error fields.
fn error_reply(shared: &Shared, req: &ScriptedRequest, code: i16) -> Reply {
    macro_rules! top_level {
        ($($key:ident => $m:ident :: $ty:ident),* $(,)?) => {
            match req.api_key {
                $(ApiKey::$key => {
                    decode_or_close!(req, $m::$ty);
                    let mut resp = <<$m::$ty as Request>::Response as Default>::default();
                    resp.error_code = code;
                    req.reply(&resp)
                })*
                other => {
                    tracing::warn!(
                        "mock broker {}: Action::ErrorCode is not implemented for {}, closing",
                        req.broker_id,
                        other.name()
                    );
                    Reply::Close
                }
            }
        };
    }
    match req.api_key {
        ApiKey::ApiVersions => api_versions_error(shared, req, code),
        ApiKey::Metadata => {
            let r = decode_or_close!(req, MetadataRequest);
            let mut resp = shared.with(|s| build_metadata(s, req.version, &r, false));
            for t in &mut resp.topics {
                t.error_code = code;
                t.partitions.clear();
            }
            req.reply(&resp)
        }
        ApiKey::Produce => {
            let r = decode_or_close!(req, ProduceRequest);
            if r.acks == 0 {
                return Reply::Close;
            }
            let resp = ProduceResponse {
                responses: r
                    .topic_data
                    .iter()
                    .map(|t| TopicProduceResponse {
                        name: t.name.clone(),
                        partition_responses: t
                            .partition_data
                            .iter()
                            .map(|p| produce_error(p.index, code))
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::Fetch => {
            let r = decode_or_close!(req, FetchRequest);
            let session_error = matches!(code, 70 | 71 | 106);
            let mut resp = FetchResponse::default();
            if session_error {
                resp.error_code = code;
            } else {
                let names = shared.with(|s| fetch_topic_names(s, req.version, &r));
                for (t, name) in r.topics.iter().zip(names) {
                    resp.responses.push(FetchableTopicResponse {
                        topic: name,
                        topic_id: t.topic_id,
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| fetch_error(p.partition, code))
                            .collect(),
                        ..Default::default()
                    });
                }
            }
            req.reply(&resp)
        }
        ApiKey::ListOffsets => {
            let r = decode_or_close!(req, ListOffsetsRequest);
            let resp = ListOffsetsResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| ListOffsetsTopicResponse {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| ListOffsetsPartitionResponse {
                                partition_index: p.partition_index,
                                error_code: code,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::OffsetForLeaderEpoch => {
            let r = decode_or_close!(req, OffsetForLeaderEpochRequest);
            let resp = OffsetForLeaderEpochResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| OffsetForLeaderTopicResult {
                        topic: t.topic.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| EpochEndOffset {
                                error_code: code,
                                partition: p.partition,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::FindCoordinator => {
            let r = decode_or_close!(req, FindCoordinatorRequest);
            let mut resp = FindCoordinatorResponse::default();
            if req.version < 4 {
                resp.error_code = code;
                resp.error_message = None;
                resp.node_id = -1;
                resp.port = -1;
            } else {
                resp.coordinators = r
                    .coordinator_keys
                    .iter()
                    .map(|k| Coordinator {
                        key: k.clone(),
                        node_id: -1,
                        port: -1,
                        error_code: code,
                        error_message: None,
                        ..Default::default()
                    })
                    .collect();
            }
            req.reply(&resp)
        }
        ApiKey::InitProducerId => {
            decode_or_close!(req, InitProducerIdRequest);
            let resp = InitProducerIdResponse {
                error_code: code,
                producer_id: -1,
                producer_epoch: -1,
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::CreateTopics => {
            let r = decode_or_close!(req, CreateTopicsRequest);
            let resp = CreateTopicsResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| CreatableTopicResult {
                        name: t.name.clone(),
                        error_code: code,
                        error_message: None,
                        configs: None,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::DeleteTopics => {
            let r = decode_or_close!(req, DeleteTopicsRequest);
            let targets: Vec<(Option<String>, Uuid)> = if req.version < 6 {
                r.topic_names
                    .iter()
                    .map(|n| (Some(n.clone()), Uuid::ZERO))
                    .collect()
            } else {
                r.topics
                    .iter()
                    .map(|t| (t.name.clone(), t.topic_id))
                    .collect()
            };
            let resp = DeleteTopicsResponse {
                responses: targets
                    .into_iter()
                    .map(|(name, topic_id)| DeletableTopicResult {
                        name,
                        topic_id,
                        error_code: code,
                        error_message: None,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::OffsetCommit => {
            let r = decode_or_close!(req, OffsetCommitRequest);
            let resp = OffsetCommitResponse {
                topics: r
                    .topics
                    .iter()
                    .map(|t| OffsetCommitResponseTopic {
                        name: t.name.clone(),
                        partitions: t
                            .partitions
                            .iter()
                            .map(|p| OffsetCommitResponsePartition {
                                partition_index: p.partition_index,
                                error_code: code,
                                ..Default::default()
                            })
                            .collect(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            req.reply(&resp)
        }
        ApiKey::OffsetFetch => {
            let r = decode_or_close!(req, OffsetFetchRequest);
            let mut resp = shared.with(|s| build_offset_fetch(s, req.version, &r));
            if req.version >= 2 {
                resp.error_code = code;
            }
            for t in &mut resp.topics {
                for p in &mut t.partitions {
                    p.error_code = code;
                }
            }
            for g in &mut resp.groups {
                g.error_code = code;
                for t in &mut g.topics {
                    for p in &mut t.partitions {
                        p.error_code = code;
                    }
                }
            }
            req.reply(&resp)
        }
        _ => top_level! {
            AddOffsetsToTxn => add_offsets_to_txn_request::AddOffsetsToTxnRequest,
            AlterPartitionReassignments =>
                alter_partition_reassignments_request::AlterPartitionReassignmentsRequest,
            ConsumerGroupHeartbeat =>
                consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest,
            DescribeAcls => describe_acls_request::DescribeAclsRequest,
            DescribeClientQuotas => describe_client_quotas_request::DescribeClientQuotasRequest,
            DescribeCluster => describe_cluster_request::DescribeClusterRequest,
            ElectLeaders => elect_leaders_request::ElectLeadersRequest,
            EndTxn => end_txn_request::EndTxnRequest,
            Heartbeat => heartbeat_request::HeartbeatRequest,
            JoinGroup => join_group_request::JoinGroupRequest,
            LeaveGroup => leave_group_request::LeaveGroupRequest,
            ListGroups => list_groups_request::ListGroupsRequest,
            ListPartitionReassignments =>
                list_partition_reassignments_request::ListPartitionReassignmentsRequest,
            ListTransactions => list_transactions_request::ListTransactionsRequest,
            OffsetDelete => offset_delete_request::OffsetDeleteRequest,
            SaslAuthenticate => sasl_authenticate_request::SaslAuthenticateRequest,
            SaslHandshake => sasl_handshake_request::SaslHandshakeRequest,
            SyncGroup => sync_group_request::SyncGroupRequest,
        },
    }
}

// ---------------------------------------------------------------------------------------------
// ApiVersions

fn own_api_versions_range(s: &State) -> (i16, i16) {
    s.api_versions
        .get(&(ApiKey::ApiVersions as i16))
        .copied()
        .unwrap_or(ApiKey::ApiVersions.versions())
}

/// The KIP-511 answer to an ApiVersions version the broker does not support: v0, the error, and
/// ApiVersions' own range.
fn unsupported_api_versions(req: &ScriptedRequest, (min, max): (i16, i16), code: i16) -> Reply {
    let resp = ApiVersionsResponse {
        error_code: code,
        api_keys: vec![ApiVersion {
            api_key: ApiKey::ApiVersions as i16,
            min_version: min,
            max_version: max,
            ..Default::default()
        }],
        ..Default::default()
    };
    req.reply_with_version(0, &resp)
}

fn api_versions(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let (own, apis) = shared.with(|s| (own_api_versions_range(s), s.api_versions.clone()));
    if !(own.0..=own.1).contains(&req.version) {
        return unsupported_api_versions(req, own, UNSUPPORTED_VERSION);
    }
    decode_or_close!(req, ApiVersionsRequest);
    let resp = ApiVersionsResponse {
        api_keys: apis
            .iter()
            .map(|(k, (min, max))| ApiVersion {
                api_key: *k,
                min_version: *min,
                max_version: *max,
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    finish(req, resp, modify)
}

fn api_versions_error(shared: &Shared, req: &ScriptedRequest, code: i16) -> Reply {
    let own = shared.with(|s| own_api_versions_range(s));
    if code == UNSUPPORTED_VERSION || !(own.0..=own.1).contains(&req.version) {
        return unsupported_api_versions(req, own, code);
    }
    let resp = ApiVersionsResponse {
        error_code: code,
        ..Default::default()
    };
    req.reply(&resp)
}

// ---------------------------------------------------------------------------------------------
// Metadata, CreateTopics, DeleteTopics

fn metadata(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, MetadataRequest);
    let resp = shared.with(|s| build_metadata(s, req.version, &r, true));
    finish(req, resp, modify)
}

fn metadata_topic(name: &str, t: &super::model::TopicModel) -> MetadataResponseTopic {
    MetadataResponseTopic {
        error_code: t.error,
        name: Some(name.to_owned()),
        topic_id: t.id,
        partitions: if t.error != NONE {
            Vec::new()
        } else {
            t.partitions
                .iter()
                .enumerate()
                .map(|(i, p)| MetadataResponsePartition {
                    error_code: p.error,
                    partition_index: i as i32,
                    leader_id: p.leader,
                    leader_epoch: p.leader_epoch,
                    replica_nodes: vec![p.leader],
                    isr_nodes: vec![p.leader],
                    ..Default::default()
                })
                .collect()
        },
        ..Default::default()
    }
}

fn build_metadata(
    s: &mut State,
    version: i16,
    r: &MetadataRequest,
    may_create: bool,
) -> MetadataResponse {
    let mut resp = MetadataResponse {
        brokers: (0..s.brokers.len() as i32)
            .map(|id| {
                let (host, port) = s.advertised(id);
                MetadataResponseBroker {
                    node_id: id,
                    host,
                    port,
                    ..Default::default()
                }
            })
            .collect(),
        cluster_id: Some(s.cluster_id.clone()),
        controller_id: s.controller_id,
        ..Default::default()
    };
    let all = match &r.topics {
        None => true,
        Some(t) => t.is_empty() && version == 0,
    };
    if all {
        resp.topics = s.topics.iter().map(|(n, t)| metadata_topic(n, t)).collect();
        return resp;
    }
    let create = may_create && (version < 4 || r.allow_auto_topic_creation);
    for rt in r.topics.iter().flatten() {
        let entry = match &rt.name {
            Some(name) => {
                if let Some(n) = s.auto_create
                    && create
                    && !s.topics.contains_key(name)
                {
                    s.create_topic(name, n, None);
                }
                match s.topics.get(name) {
                    Some(t) => metadata_topic(name, t),
                    None => MetadataResponseTopic {
                        error_code: UNKNOWN_TOPIC,
                        name: Some(name.clone()),
                        ..Default::default()
                    },
                }
            }
            None => match s.topic_by_id(rt.topic_id) {
                Some((name, t)) => metadata_topic(name, t),
                None => MetadataResponseTopic {
                    error_code: ErrorCode::UNKNOWN_TOPIC_ID.0,
                    name: if version >= 12 {
                        None
                    } else {
                        Some(String::new())
                    },
                    topic_id: rt.topic_id,
                    ..Default::default()
                },
            },
        };
        resp.topics.push(entry);
    }
    resp
}

fn create_topics(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, CreateTopicsRequest);
    let version = req.version;
    let resp = shared.with(|s| {
        let mut resp = CreateTopicsResponse::default();
        for t in &r.topics {
            let mut res = CreatableTopicResult {
                name: t.name.clone(),
                error_message: None,
                configs: None,
                ..Default::default()
            };
            let partitions = match (t.num_partitions, t.assignments.len()) {
                (-1, 0) => 1,
                (-1, n) => n as i32,
                (n, _) => n,
            };
            if s.topics.contains_key(&t.name) {
                res.error_code = ErrorCode::TOPIC_ALREADY_EXISTS.0;
                res.error_message = Some(format!("Topic '{}' already exists.", t.name));
            } else if partitions <= 0 {
                res.error_code = ErrorCode::INVALID_PARTITIONS.0;
                res.error_message = Some("Number of partitions must be positive.".to_owned());
            } else {
                if !r.validate_only {
                    let leaders = (!t.assignments.is_empty()).then(|| {
                        t.assignments
                            .iter()
                            .map(|a| a.broker_ids.first().copied().unwrap_or(0))
                            .collect()
                    });
                    s.create_topic(&t.name, partitions, leaders);
                    res.topic_id = s.topics.get(&t.name).map_or(Uuid::ZERO, |t| t.id);
                }
                if version >= 5 {
                    res.num_partitions = partitions;
                    res.replication_factor = 1;
                    res.configs = Some(Vec::new());
                }
            }
            resp.topics.push(res);
        }
        resp
    });
    finish(req, resp, modify)
}

fn delete_topics(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, DeleteTopicsRequest);
    let targets: Vec<(Option<String>, Uuid)> = if req.version < 6 {
        r.topic_names
            .iter()
            .map(|n| (Some(n.clone()), Uuid::ZERO))
            .collect()
    } else {
        r.topics
            .iter()
            .map(|t| (t.name.clone(), t.topic_id))
            .collect()
    };
    let resp = shared.with(|s| {
        let mut resp = DeleteTopicsResponse::default();
        for (name, id) in targets {
            let name = name.or_else(|| s.topic_by_id(id).map(|(n, _)| n.clone()));
            let mut res = DeletableTopicResult {
                name: name.clone(),
                topic_id: id,
                error_message: None,
                ..Default::default()
            };
            match name.and_then(|n| s.topics.remove(&n)) {
                Some(t) => res.topic_id = t.id,
                None if res.name.is_none() => res.error_code = ErrorCode::UNKNOWN_TOPIC_ID.0,
                None => res.error_code = UNKNOWN_TOPIC,
            }
            resp.responses.push(res);
        }
        resp
    });
    finish(req, resp, modify)
}

// ---------------------------------------------------------------------------------------------
// Produce

fn produce_error(index: i32, code: i16) -> PartitionProduceResponse {
    PartitionProduceResponse {
        index,
        error_code: code,
        base_offset: -1,
        ..Default::default()
    }
}

fn produce(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, ProduceRequest);
    let (broker, version) = (req.broker_id, req.version);
    let mut any_error = false;
    let resp = shared.with(|s| {
        let mut resp = ProduceResponse::default();
        for t in &r.topic_data {
            let mut tr = TopicProduceResponse {
                name: t.name.clone(),
                ..Default::default()
            };
            for p in &t.partition_data {
                let leader = s
                    .partition(&t.name, p.index)
                    .map(|m| (m.leader, m.leader_epoch));
                let pr = match leader {
                    None => produce_error(p.index, UNKNOWN_TOPIC),
                    Some((leader, epoch)) if leader != broker => {
                        let mut pr = produce_error(p.index, NOT_LEADER);
                        if version >= 10 {
                            pr.current_leader = ProduceLeader {
                                leader_id: leader,
                                leader_epoch: epoch,
                                ..Default::default()
                            };
                            let (host, port) = s.advertised(leader);
                            if !resp.node_endpoints.iter().any(|n| n.node_id == leader) {
                                resp.node_endpoints.push(ProduceNode {
                                    node_id: leader,
                                    host,
                                    port,
                                    ..Default::default()
                                });
                            }
                        }
                        pr
                    }
                    Some(_) => {
                        let data = p.records.as_deref().unwrap_or_default();
                        match s.produce(&t.name, p.index, data) {
                            Ok(base) => PartitionProduceResponse {
                                index: p.index,
                                base_offset: base,
                                log_start_offset: s
                                    .partition(&t.name, p.index)
                                    .map_or(-1, |m| m.log_start),
                                ..Default::default()
                            },
                            Err(code) => produce_error(p.index, code),
                        }
                    }
                };
                any_error |= pr.error_code != NONE;
                tr.partition_responses.push(pr);
            }
            resp.responses.push(tr);
        }
        resp
    });
    shared.appended.notify_waiters();
    if r.acks == 0 {
        // Kafka closes an acks=0 connection on error: the only way the producer can notice.
        return if any_error {
            Reply::Close
        } else {
            Reply::Nothing
        };
    }
    finish(req, resp, modify)
}

// ---------------------------------------------------------------------------------------------
// Fetch

fn fetch_error(partition: i32, code: i16) -> PartitionData {
    PartitionData {
        partition_index: partition,
        error_code: code,
        high_watermark: -1,
        records: Some(Bytes::new()),
        ..Default::default()
    }
}

/// Checks a client's `current_leader_epoch` (-1: no check) against the partition's.
fn epoch_check(current_leader_epoch: i32, p: &PartitionModel) -> i16 {
    if current_leader_epoch < 0 || current_leader_epoch == p.leader_epoch {
        NONE
    } else if current_leader_epoch < p.leader_epoch {
        ErrorCode::FENCED_LEADER_EPOCH.0
    } else {
        ErrorCode::UNKNOWN_LEADER_EPOCH.0
    }
}

/// Topic names of a fetch request (by id from v13); empty for unknown ids.
fn fetch_topic_names(s: &State, version: i16, r: &FetchRequest) -> Vec<String> {
    r.topics
        .iter()
        .map(|t| {
            if version >= 13 {
                s.topic_by_id(t.topic_id)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default()
            } else {
                t.topic.clone()
            }
        })
        .collect()
}

/// The fetch response as of now: (response, record bytes in it, any partition error).
fn build_fetch(
    s: &State,
    broker: i32,
    version: i16,
    r: &FetchRequest,
) -> (FetchResponse, usize, bool) {
    let mut resp = FetchResponse::default();
    let mut total = 0usize;
    let mut any_error = false;
    let total_limit = if version >= 3 {
        usize::try_from(r.max_bytes).unwrap_or(0)
    } else {
        usize::MAX
    };
    let names = fetch_topic_names(s, version, r);
    for (t, name) in r.topics.iter().zip(names) {
        let model = s.topics.get(&name).filter(|_| !name.is_empty());
        let mut tr = FetchableTopicResponse {
            topic: name.clone(),
            topic_id: model.map_or(t.topic_id, |m| m.id),
            ..Default::default()
        };
        for fp in &t.partitions {
            let Some(p) = model.and_then(|m| m.partitions.get(usize::try_from(fp.partition).ok()?))
            else {
                let code = if version >= 13 && model.is_none() {
                    ErrorCode::UNKNOWN_TOPIC_ID.0
                } else {
                    UNKNOWN_TOPIC
                };
                any_error = true;
                tr.partitions.push(fetch_error(fp.partition, code));
                continue;
            };
            if p.leader != broker {
                any_error = true;
                let mut pd = fetch_error(fp.partition, NOT_LEADER);
                if version >= 12 {
                    pd.current_leader = FetchLeader {
                        leader_id: p.leader,
                        leader_epoch: p.leader_epoch,
                        ..Default::default()
                    };
                }
                if version >= 16 && !resp.node_endpoints.iter().any(|n| n.node_id == p.leader) {
                    let (host, port) = s.advertised(p.leader);
                    resp.node_endpoints.push(FetchNode {
                        node_id: p.leader,
                        host,
                        port,
                        ..Default::default()
                    });
                }
                tr.partitions.push(pd);
                continue;
            }
            let mut code = epoch_check(fp.current_leader_epoch, p);
            if code == NONE && (fp.fetch_offset < p.log_start || fp.fetch_offset > p.high_watermark)
            {
                code = ErrorCode::OFFSET_OUT_OF_RANGE.0;
            }
            if code != NONE {
                any_error = true;
                tr.partitions.push(fetch_error(fp.partition, code));
                continue;
            }
            let partition_limit = usize::try_from(fp.partition_max_bytes).unwrap_or(0);
            let mut records = BytesMut::new();
            for b in p
                .batches
                .iter()
                .filter(|b| b.last_offset >= fp.fetch_offset)
            {
                let len = b.bytes.len();
                let fits = records.len() + len <= partition_limit && total + len <= total_limit;
                // KIP-74: the first batch of the response goes out even if it is too big.
                if !(fits || total == 0 && records.is_empty()) {
                    break;
                }
                records.extend_from_slice(&b.bytes);
                total += len;
            }
            tr.partitions.push(PartitionData {
                partition_index: fp.partition,
                high_watermark: p.high_watermark,
                last_stable_offset: p.high_watermark,
                log_start_offset: p.log_start,
                records: Some(records.freeze()),
                ..Default::default()
            });
        }
        resp.responses.push(tr);
    }
    (resp, total, any_error)
}

async fn fetch(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, FetchRequest);
    let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let appended = shared.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (resp, bytes, any_error) =
            shared.with(|s| build_fetch(s, req.broker_id, req.version, &r));
        let enough = r.min_bytes <= 0 || (bytes > 0 && bytes as u64 >= r.min_bytes as u64);
        if enough || any_error || tokio::time::Instant::now() >= deadline {
            return finish(req, resp, modify);
        }
        tokio::select! {
            _ = &mut appended => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ListOffsets, OffsetForLeaderEpoch

fn list_offsets(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, ListOffsetsRequest);
    let (broker, version) = (req.broker_id, req.version);
    let resp = shared.with(|s| {
        let mut resp = ListOffsetsResponse::default();
        for t in &r.topics {
            let mut tr = ListOffsetsTopicResponse {
                name: t.name.clone(),
                ..Default::default()
            };
            for lp in &t.partitions {
                let mut pr = ListOffsetsPartitionResponse {
                    partition_index: lp.partition_index,
                    ..Default::default()
                };
                match s.partition(&t.name, lp.partition_index) {
                    None => pr.error_code = UNKNOWN_TOPIC,
                    Some(p) if p.leader != broker => pr.error_code = NOT_LEADER,
                    Some(p) => {
                        pr.error_code = if version >= 4 {
                            epoch_check(lp.current_leader_epoch, p)
                        } else {
                            NONE
                        };
                        if pr.error_code == NONE {
                            let (timestamp, offset) = lookup_offset(p, lp.timestamp);
                            if version == 0 {
                                pr.old_style_offsets = vec![offset];
                            } else {
                                pr.timestamp = timestamp;
                                pr.offset = offset;
                            }
                            if version >= 4 {
                                pr.leader_epoch = p.leader_epoch;
                            }
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    });
    finish(req, resp, modify)
}

/// (timestamp, offset) for a ListOffsets timestamp, at batch granularity.
fn lookup_offset(p: &PartitionModel, timestamp: i64) -> (i64, i64) {
    match timestamp {
        -1 => (-1, p.high_watermark),
        -3 => p
            .batches
            .iter()
            .max_by_key(|b| b.max_timestamp)
            .map_or((-1, -1), |b| (b.max_timestamp, b.last_offset)),
        t if t < 0 => (-1, p.log_start),
        t => p
            .batches
            .iter()
            .find(|b| b.max_timestamp >= t)
            .map_or((-1, -1), |b| {
                (b.max_timestamp, b.base_offset.max(p.log_start))
            }),
    }
}

fn offset_for_leader_epoch(
    shared: &Shared,
    req: &ScriptedRequest,
    modify: Option<Modifier>,
) -> Reply {
    let r = decode_or_close!(req, OffsetForLeaderEpochRequest);
    let (broker, version) = (req.broker_id, req.version);
    let resp = shared.with(|s| {
        let mut resp = OffsetForLeaderEpochResponse::default();
        for t in &r.topics {
            let mut tr = OffsetForLeaderTopicResult {
                topic: t.topic.clone(),
                ..Default::default()
            };
            for op in &t.partitions {
                let mut pr = EpochEndOffset {
                    partition: op.partition,
                    ..Default::default()
                };
                match s.partition(&t.topic, op.partition) {
                    None => pr.error_code = UNKNOWN_TOPIC,
                    Some(p) if p.leader != broker => pr.error_code = NOT_LEADER,
                    Some(p) => {
                        pr.error_code = if version >= 2 {
                            epoch_check(op.current_leader_epoch, p)
                        } else {
                            NONE
                        };
                        if pr.error_code == NONE {
                            let (epoch, end) = epoch_end_offset(p, op.leader_epoch);
                            pr.end_offset = end;
                            if version >= 1 {
                                pr.leader_epoch = epoch;
                            }
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    });
    finish(req, resp, modify)
}

/// The largest epoch <= `requested` and the offset where the next epoch starts (the epochs of the
/// stored batches, plus the current leader epoch ending at the high watermark).
fn epoch_end_offset(p: &PartitionModel, requested: i32) -> (i32, i64) {
    if requested < 0 || requested > p.leader_epoch {
        return (-1, -1);
    }
    if requested == p.leader_epoch {
        return (p.leader_epoch, p.high_watermark);
    }
    let floor = p
        .batches
        .iter()
        .map(|b| b.leader_epoch)
        .filter(|e| *e <= requested)
        .max()
        .unwrap_or(requested);
    let end = p
        .batches
        .iter()
        .find(|b| b.leader_epoch > requested)
        .map_or(p.high_watermark, |b| b.base_offset);
    (floor, end)
}

// ---------------------------------------------------------------------------------------------
// FindCoordinator, InitProducerId, OffsetCommit, OffsetFetch

fn find_coordinator(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, FindCoordinatorRequest);
    let (id, (host, port)) = shared.with(|s| (s.coordinator_id, s.advertised(s.coordinator_id)));
    let mut resp = FindCoordinatorResponse::default();
    if req.version < 4 {
        resp.error_message = None;
        resp.node_id = id;
        resp.host = host;
        resp.port = port;
    } else {
        resp.coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| Coordinator {
                key: k.clone(),
                node_id: id,
                host: host.clone(),
                port,
                error_message: None,
                ..Default::default()
            })
            .collect();
    }
    finish(req, resp, modify)
}

fn init_producer_id(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, InitProducerIdRequest);
    let version = req.version;
    let result = shared.with(|s| {
        let mut fresh = || {
            let id = s.next_producer_id;
            s.next_producer_id += 1;
            (id, 0i16)
        };
        let bumped = |(id, epoch): (i64, i16)| match epoch.checked_add(1) {
            Some(e) if e < i16::MAX => Some((id, e)),
            _ => None,
        };
        let next = match &r.transactional_id {
            Some(tid) => {
                let known = s.transactional.get(tid).copied();
                let next = known.and_then(bumped).unwrap_or_else(&mut fresh);
                s.transactional.insert(tid.clone(), next);
                next
            }
            // KIP-360: an idempotent producer bumping its own epoch.
            None if version >= 3 && r.producer_id >= 0 => {
                let (id, epoch) = (r.producer_id, r.producer_epoch);
                if s.fenced.get(&id).is_some_and(|min| epoch < *min) {
                    return Err(ErrorCode::PRODUCER_FENCED.0);
                }
                if s.producers.get(&id).is_some_and(|latest| *latest != epoch) {
                    return Err(ErrorCode::INVALID_PRODUCER_EPOCH.0);
                }
                bumped((id, epoch)).unwrap_or_else(&mut fresh)
            }
            None => fresh(),
        };
        s.issue_producer(next.0, next.1);
        Ok(next)
    });
    let resp = match result {
        Ok((producer_id, producer_epoch)) => InitProducerIdResponse {
            producer_id,
            producer_epoch,
            ..Default::default()
        },
        Err(code) => InitProducerIdResponse {
            error_code: code,
            producer_id: -1,
            producer_epoch: -1,
            ..Default::default()
        },
    };
    finish(req, resp, modify)
}

fn offset_commit(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, OffsetCommitRequest);
    let resp = shared.with(|s| {
        let mut resp = OffsetCommitResponse::default();
        for t in &r.topics {
            let mut tr = OffsetCommitResponseTopic {
                name: t.name.clone(),
                ..Default::default()
            };
            for p in &t.partitions {
                s.committed.insert(
                    (r.group_id.clone(), t.name.clone(), p.partition_index),
                    (
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.committed_metadata.clone(),
                    ),
                );
                tr.partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    ..Default::default()
                });
            }
            resp.topics.push(tr);
        }
        resp
    });
    finish(req, resp, modify)
}

/// Committed offsets for the request: (partition, offset, epoch, metadata) per topic.
type Committed = Vec<(String, Vec<(i32, i64, i32, Option<String>)>)>;

fn committed_for(s: &State, group: &str, topics: Option<Vec<(String, Vec<i32>)>>) -> Committed {
    let lookup = |topic: &str, p: i32| {
        let (offset, epoch, meta) = s
            .committed
            .get(&(group.to_owned(), topic.to_owned(), p))
            .cloned()
            .unwrap_or((-1, -1, Some(String::new())));
        (p, offset, epoch, meta)
    };
    match topics {
        Some(topics) => topics
            .into_iter()
            .map(|(t, ps)| {
                let parts = ps.iter().map(|p| lookup(&t, *p)).collect();
                (t, parts)
            })
            .collect(),
        None => {
            let mut out: Committed = Vec::new();
            let mut keys: Vec<_> = s.committed.keys().filter(|k| k.0 == group).collect();
            keys.sort();
            for (_, t, p) in keys {
                if out.last().is_none_or(|(name, _)| name != t) {
                    out.push((t.clone(), Vec::new()));
                }
                if let Some(last) = out.last_mut() {
                    last.1.push(lookup(t, *p));
                }
            }
            out
        }
    }
}

fn build_offset_fetch(s: &State, version: i16, r: &OffsetFetchRequest) -> OffsetFetchResponse {
    let mut resp = OffsetFetchResponse::default();
    if version < 8 {
        let topics = r.topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect()
        });
        resp.topics = committed_for(s, &r.group_id, topics)
            .into_iter()
            .map(|(name, parts)| OffsetFetchResponseTopic {
                name,
                partitions: parts
                    .into_iter()
                    .map(
                        |(p, offset, epoch, metadata)| OffsetFetchResponsePartition {
                            partition_index: p,
                            committed_offset: offset,
                            committed_leader_epoch: epoch,
                            metadata,
                            ..Default::default()
                        },
                    )
                    .collect(),
                ..Default::default()
            })
            .collect();
    } else {
        resp.groups = r
            .groups
            .iter()
            .map(|g| {
                let topics = g.topics.as_ref().map(|ts| {
                    ts.iter()
                        .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                        .collect()
                });
                OffsetFetchResponseGroup {
                    group_id: g.group_id.clone(),
                    topics: committed_for(s, &g.group_id, topics)
                        .into_iter()
                        .map(|(name, parts)| OffsetFetchResponseTopics {
                            name,
                            partitions: parts
                                .into_iter()
                                .map(
                                    |(p, offset, epoch, metadata)| OffsetFetchResponsePartitions {
                                        partition_index: p,
                                        committed_offset: offset,
                                        committed_leader_epoch: epoch,
                                        metadata,
                                        ..Default::default()
                                    },
                                )
                                .collect(),
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }
            })
            .collect();
    }
    resp
}

fn offset_fetch(shared: &Shared, req: &ScriptedRequest, modify: Option<Modifier>) -> Reply {
    let r = decode_or_close!(req, OffsetFetchRequest);
    let resp = shared.with(|s| build_offset_fetch(s, req.version, &r));
    finish(req, resp, modify)
}
