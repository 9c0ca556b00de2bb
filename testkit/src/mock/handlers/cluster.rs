//! ApiVersions, Metadata, CreateTopics, DeleteTopics.

use kafkawire_protocol::messages::ApiKey;
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
use kafkawire_protocol::messages::metadata_request::MetadataRequest;
use kafkawire_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafkawire_protocol::{ErrorCode, Uuid};

use super::{Answer, NONE, UNKNOWN_TOPIC, UNSUPPORTED_VERSION};
use crate::mock::model::{State, TopicModel};
use crate::mock::server::Shared;
use crate::mock::{Reply, ScriptedRequest};

// ---------------------------------------------------------------------------------------------
// ApiVersions

fn own_api_versions_range(s: &State) -> (i16, i16) {
    s.api_versions
        .get(&(ApiKey::ApiVersions as i16))
        .copied()
        .unwrap_or(ApiKey::ApiVersions.versions())
}

/// ApiVersions. A version the broker does not support, or an injected `UNSUPPORTED_VERSION`,
/// gets the KIP-511 answer: v0, the error, and ApiVersions' own range. Any other injected error
/// is answered without reading the request.
pub(super) fn api_versions(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let (own, apis) = shared.with(|s| (own_api_versions_range(s), s.api_versions.clone()));
    let inject = answer.error();
    if inject == Some(UNSUPPORTED_VERSION) || !(own.0..=own.1).contains(&req.version) {
        let resp = ApiVersionsResponse {
            error_code: inject.unwrap_or(UNSUPPORTED_VERSION),
            api_keys: vec![ApiVersion {
                api_key: ApiKey::ApiVersions as i16,
                min_version: own.0,
                max_version: own.1,
                ..Default::default()
            }],
            ..Default::default()
        };
        return req.reply_with_version(0, &resp);
    }
    if let Some(code) = inject {
        let resp = ApiVersionsResponse {
            error_code: code,
            ..Default::default()
        };
        return answer.reply(req, resp);
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
    answer.reply(req, resp)
}

// ---------------------------------------------------------------------------------------------
// Metadata

/// Metadata; an injected error goes to every listed topic, which then has no partitions (and
/// unknown topics are not auto-created).
pub(super) fn metadata(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, MetadataRequest);
    let inject = answer.error();
    let mut resp = shared.with(|s| build_metadata(s, req.version, &r, inject.is_none()));
    if let Some(code) = inject {
        for t in &mut resp.topics {
            t.error_code = code;
            t.partitions.clear();
        }
    }
    answer.reply(req, resp)
}

fn metadata_topic(name: &str, t: &TopicModel) -> MetadataResponseTopic {
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

// ---------------------------------------------------------------------------------------------
// CreateTopics, DeleteTopics

pub(super) fn create_topics(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, CreateTopicsRequest);
    let (version, inject) = (req.version, answer.error());
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
            if let Some(code) = inject {
                res.error_code = code;
            } else if s.topics.contains_key(&t.name) {
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
    answer.reply(req, resp)
}

/// DeleteTopics; a topic named only by id is named in the answer once found (not with an
/// injected error).
pub(super) fn delete_topics(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, DeleteTopicsRequest);
    let inject = answer.error();
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
        for (name, topic_id) in targets {
            let mut res = DeletableTopicResult {
                name,
                topic_id,
                error_message: None,
                ..Default::default()
            };
            if let Some(code) = inject {
                res.error_code = code;
            } else {
                res.name = res
                    .name
                    .take()
                    .or_else(|| s.topic_by_id(topic_id).map(|(n, _)| n.clone()));
                match res.name.as_ref().and_then(|n| s.topics.remove(n)) {
                    Some(t) => res.topic_id = t.id,
                    None if res.name.is_none() => res.error_code = ErrorCode::UNKNOWN_TOPIC_ID.0,
                    None => res.error_code = UNKNOWN_TOPIC,
                }
            }
            resp.responses.push(res);
        }
        resp
    });
    answer.reply(req, resp)
}
