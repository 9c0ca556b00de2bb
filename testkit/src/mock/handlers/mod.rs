//! Request dispatch: scripted actions, then each API's answer.
//!
//! One handler per API serves both its default behaviour and [`Action::ErrorCode`]: given an
//! [`Answer`] with an injected error code, it sends the same response shape with that code in
//! every error field, and has no side effect (nothing is appended, created, deleted or
//! committed).
//!
//! - `partitions`: Produce, Fetch, ListOffsets and OffsetForLeaderEpoch, served by each
//!   partition's leader.
//! - `cluster`: ApiVersions, Metadata, CreateTopics and DeleteTopics.
//! - `groups`: FindCoordinator, InitProducerId, OffsetCommit and OffsetFetch.
//! - `admin`: CreatePartitions, DeleteRecords, DescribeConfigs, IncrementalAlterConfigs,
//!   DescribeCluster, ListGroups and OffsetDelete.
//! - `sasl`: on connections accepted with SASL enabled, the gate before every request and
//!   SaslHandshake / SaslAuthenticate (otherwise they get default responses).
//! - Every other API: its response type's `Default` (`other_api`).

use bytes::Bytes;
use kafkawire_protocol::frame::decode_request_header;
use kafkawire_protocol::messages::*;
use kafkawire_protocol::{DecodeError, ErrorCode};

use super::server::{ConnState, Shared};
use super::{Action, Modifier, Reply, RequestRecord, ScriptedRequest};

const NONE: i16 = ErrorCode::NONE.0;
const UNKNOWN_TOPIC: i16 = ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0;
const NOT_LEADER: i16 = ErrorCode::NOT_LEADER_OR_FOLLOWER.0;
const UNSUPPORTED_VERSION: i16 = ErrorCode::UNSUPPORTED_VERSION.0;

/// Decodes the request as `$ty` or returns [`Reply::Close`].
macro_rules! decode_or_close {
    ($req:expr, $ty:ty) => {
        match $req.decode::<$ty>() {
            Ok(r) => r,
            Err(e) => return $crate::mock::handlers::bad_request($req, e),
        }
    };
}

mod admin;
mod cluster;
mod groups;
mod partitions;
pub(crate) mod sasl;

/// How to answer a request.
enum Answer {
    /// The default behaviour, the response passed through the [`Action::Modify`] closure if any.
    Default(Option<Modifier>),
    /// [`Action::ErrorCode`]: this code in every error field, no side effect.
    Error(i16),
}

impl Answer {
    /// The injected error code, if any.
    fn error(&self) -> Option<i16> {
        match self {
            Answer::Default(_) => None,
            Answer::Error(code) => Some(*code),
        }
    }

    /// Applies the modifier (if any), then encodes `resp` at the request's version.
    fn reply<M: Message>(self, req: &ScriptedRequest, mut resp: M) -> Reply {
        if let Answer::Default(Some(f)) = self {
            f(&mut resp);
        }
        req.reply(&resp)
    }
}

/// Reads a request frame and works out the reply.
pub(crate) async fn handle(
    shared: &Shared,
    broker: i32,
    frame: Bytes,
    conn: &mut ConnState,
) -> Reply {
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
    if let Some(auth) = conn.sasl.as_ref()
        && !auth.admit(broker, api, req.version)
    {
        return Reply::Close;
    }
    let mut action = shared.with(|s| s.next_action(broker, api));
    if let Some(auth) = conn.sasl.as_mut()
        && api == ApiKey::ApiVersions
        && !matches!(action, Some(Action::ErrorCode(_)))
        && shared.with(|s| {
            let (min, max) = s
                .api_versions
                .get(&(ApiKey::ApiVersions as i16))
                .copied()
                .unwrap_or(ApiKey::ApiVersions.versions());
            (min..=max).contains(&req.version)
        })
    {
        // Answered with the API list (not a KIP-511 error): only SaslHandshake may follow.
        auth.api_versions_answered();
    }
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
            respond(shared, &req, Answer::Default(None), conn).await
        }
        Some(Action::Modify(m)) => respond(shared, &req, Answer::Default(Some(m)), conn).await,
        Some(Action::ErrorCode(code)) => respond(shared, &req, Answer::Error(code.0), conn).await,
        Some(Action::DropConnection) => Reply::Close,
        Some(Action::NoResponse) => Reply::Nothing,
        Some(Action::ProcessThenDrop) => {
            // Side effects happen; the answer is lost with the connection.
            let _ = respond(shared, &req, Answer::Default(None), conn).await;
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

async fn respond(
    shared: &Shared,
    req: &ScriptedRequest,
    answer: Answer,
    conn: &mut ConnState,
) -> Reply {
    match req.api_key {
        ApiKey::SaslHandshake if conn.sasl.is_some() => sasl::handshake(req, answer, conn),
        ApiKey::SaslAuthenticate if conn.sasl.is_some() => {
            sasl::authenticate(shared, req, answer, conn)
        }
        ApiKey::ApiVersions => cluster::api_versions(shared, req, answer),
        ApiKey::Metadata => cluster::metadata(shared, req, answer),
        ApiKey::CreateTopics => cluster::create_topics(shared, req, answer),
        ApiKey::DeleteTopics => cluster::delete_topics(shared, req, answer),
        ApiKey::Produce => partitions::produce(shared, req, answer),
        ApiKey::Fetch => partitions::fetch(shared, req, answer).await,
        ApiKey::ListOffsets => partitions::list_offsets(shared, req, answer),
        ApiKey::OffsetForLeaderEpoch => partitions::offset_for_leader_epoch(shared, req, answer),
        ApiKey::FindCoordinator => groups::find_coordinator(shared, req, answer),
        ApiKey::InitProducerId => groups::init_producer_id(shared, req, answer),
        ApiKey::OffsetCommit => groups::offset_commit(shared, req, answer),
        ApiKey::OffsetFetch => groups::offset_fetch(shared, req, answer),
        ApiKey::CreatePartitions => admin::create_partitions(shared, req, answer),
        ApiKey::DeleteRecords => admin::delete_records(shared, req, answer),
        ApiKey::DescribeConfigs => admin::describe_configs(shared, req, answer),
        ApiKey::IncrementalAlterConfigs => admin::incremental_alter_configs(shared, req, answer),
        ApiKey::DescribeCluster => admin::describe_cluster(shared, req, answer),
        ApiKey::ListGroups => admin::list_groups(shared, req, answer),
        ApiKey::DescribeGroups => admin::describe_groups(shared, req, answer),
        ApiKey::ConsumerGroupDescribe => admin::consumer_group_describe(req, answer),
        ApiKey::OffsetDelete => admin::offset_delete(shared, req, answer),
        _ => other_api(req, answer),
    }
}

/// Every other API: the request is decoded, then answered with its response type's `Default`.
/// An injected error goes into the top-level error code of the APIs listed under `error_code`;
/// for the others it closes the connection.
fn other_api(req: &ScriptedRequest, answer: Answer) -> Reply {
    macro_rules! apis {
        (
            error_code: [$($m:ident :: $ty:ident,)*],
            no_error_code: [$($m2:ident :: $ty2:ident,)*],
        ) => {
            $(if req.api_key == <$m::$ty as Request>::API_KEY {
                decode_or_close!(req, $m::$ty);
                let mut resp = <<$m::$ty as Request>::Response as Default>::default();
                if let Some(code) = answer.error() {
                    resp.error_code = code;
                }
                return answer.reply(req, resp);
            })*
            $(if req.api_key == <$m2::$ty2 as Request>::API_KEY && answer.error().is_none() {
                decode_or_close!(req, $m2::$ty2);
                return answer.reply(req, <<$m2::$ty2 as Request>::Response as Default>::default());
            })*
        };
    }
    apis! {
        error_code: [
            add_offsets_to_txn_request::AddOffsetsToTxnRequest,
            alter_partition_reassignments_request::AlterPartitionReassignmentsRequest,
            consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest,
            describe_acls_request::DescribeAclsRequest,
            describe_client_quotas_request::DescribeClientQuotasRequest,
            elect_leaders_request::ElectLeadersRequest,
            end_txn_request::EndTxnRequest,
            heartbeat_request::HeartbeatRequest,
            join_group_request::JoinGroupRequest,
            leave_group_request::LeaveGroupRequest,
            list_partition_reassignments_request::ListPartitionReassignmentsRequest,
            list_transactions_request::ListTransactionsRequest,
            sasl_authenticate_request::SaslAuthenticateRequest,
            sasl_handshake_request::SaslHandshakeRequest,
            sync_group_request::SyncGroupRequest,
        ],
        no_error_code: [
            add_partitions_to_txn_request::AddPartitionsToTxnRequest,
            alter_client_quotas_request::AlterClientQuotasRequest,
            alter_configs_request::AlterConfigsRequest,
            create_acls_request::CreateAclsRequest,
            delete_acls_request::DeleteAclsRequest,
            delete_groups_request::DeleteGroupsRequest,
            describe_log_dirs_request::DescribeLogDirsRequest,
            describe_producers_request::DescribeProducersRequest,
            describe_topic_partitions_request::DescribeTopicPartitionsRequest,
            describe_transactions_request::DescribeTransactionsRequest,
            txn_offset_commit_request::TxnOffsetCommitRequest,
        ],
    }
    let what = match answer {
        Answer::Default(_) => "no default for",
        Answer::Error(_) => "Action::ErrorCode is not implemented for",
    };
    tracing::warn!(
        "mock broker {}: {what} {}, closing",
        req.broker_id,
        req.api_key.name()
    );
    Reply::Close
}
