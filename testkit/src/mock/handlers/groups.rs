//! FindCoordinator, InitProducerId, OffsetCommit, OffsetFetch.

use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafkawire_protocol::messages::find_coordinator_response::{
    Coordinator, FindCoordinatorResponse,
};
use kafkawire_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafkawire_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafkawire_protocol::messages::offset_commit_request::OffsetCommitRequest;
use kafkawire_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafkawire_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use kafkawire_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};

use super::{Answer, NONE};
use crate::mock::model::State;
use crate::mock::server::Shared;
use crate::mock::{Reply, ScriptedRequest};

/// FindCoordinator: the coordinator broker for every key, or the injected error and no broker.
pub(super) fn find_coordinator(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, FindCoordinatorRequest);
    let (error_code, node_id, host, port) = match answer.error() {
        Some(code) => (code, -1, String::new(), -1),
        None => shared.with(|s| {
            let (host, port) = s.advertised(s.coordinator_id);
            (NONE, s.coordinator_id, host, port)
        }),
    };
    let mut resp = FindCoordinatorResponse::default();
    if req.version < 4 {
        resp.error_code = error_code;
        resp.error_message = None;
        resp.node_id = node_id;
        resp.host = host;
        resp.port = port;
    } else {
        resp.coordinators = r
            .coordinator_keys
            .iter()
            .map(|k| Coordinator {
                key: k.clone(),
                node_id,
                host: host.clone(),
                port,
                error_code,
                error_message: None,
                ..Default::default()
            })
            .collect();
    }
    answer.reply(req, resp)
}

/// InitProducerId: a fresh producer id, or the next epoch of a transactional id's (or, KIP-360,
/// of the request's own) producer id.
pub(super) fn init_producer_id(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, InitProducerIdRequest);
    let result = match answer.error() {
        Some(code) => Err(code),
        None => shared.with(|s| issue_producer_id(s, req.version, &r)),
    };
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
    answer.reply(req, resp)
}

/// The producer id and epoch InitProducerId issues, or its error code.
fn issue_producer_id(
    s: &mut State,
    version: i16,
    r: &InitProducerIdRequest,
) -> Result<(i64, i16), i16> {
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
}

/// OffsetCommit: stores every offset (nothing with an injected error).
pub(super) fn offset_commit(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, OffsetCommitRequest);
    let inject = answer.error();
    let resp = shared.with(|s| {
        let mut resp = OffsetCommitResponse::default();
        for t in &r.topics {
            let mut tr = OffsetCommitResponseTopic {
                name: t.name.clone(),
                ..Default::default()
            };
            for p in &t.partitions {
                if inject.is_none() {
                    s.committed.insert(
                        (r.group_id.clone(), t.name.clone(), p.partition_index),
                        (
                            p.committed_offset,
                            p.committed_leader_epoch,
                            p.committed_metadata.clone(),
                        ),
                    );
                }
                tr.partitions.push(OffsetCommitResponsePartition {
                    partition_index: p.partition_index,
                    error_code: inject.unwrap_or(NONE),
                    ..Default::default()
                });
            }
            resp.topics.push(tr);
        }
        resp
    });
    answer.reply(req, resp)
}

/// A committed offset: partition, offset, leader epoch, metadata.
type CommittedPartition = (i32, i64, i32, Option<String>);

/// The committed offsets of `group` for the requested topics and partitions, or for every
/// partition it has committed (sorted) when `topics` is `None`; -1 where none is stored.
fn committed_for(
    s: &State,
    group: &str,
    topics: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<CommittedPartition>)> {
    let topics = topics.unwrap_or_else(|| {
        let mut keys: Vec<_> = s.committed.keys().filter(|k| k.0 == group).collect();
        keys.sort();
        let mut all: Vec<(String, Vec<i32>)> = Vec::new();
        for (_, t, p) in keys {
            match all.last_mut() {
                Some((name, ps)) if name == t => ps.push(*p),
                _ => all.push((t.clone(), vec![*p])),
            }
        }
        all
    });
    let lookup = |t: &str, p: i32| {
        let (offset, epoch, meta) = s
            .committed
            .get(&(group.to_owned(), t.to_owned(), p))
            .cloned()
            .unwrap_or((-1, -1, Some(String::new())));
        (p, offset, epoch, meta)
    };
    topics
        .into_iter()
        .map(|(t, ps)| {
            let partitions = ps.iter().map(|p| lookup(&t, *p)).collect();
            (t, partitions)
        })
        .collect()
}

/// The OffsetFetch response topics (`$topic` of `$partition`, all with `$error_code`) for
/// `$group`'s committed offsets of the requested `$topics`. The per-group answer of v8+ has the
/// same fields as the older one, in its own types.
macro_rules! offset_fetch_topics {
    ($s:expr, $group:expr, $topics:expr, $topic:ident, $partition:ident, $error_code:expr) => {{
        let topics = $topics.as_ref().map(|ts| {
            ts.iter()
                .map(|t| (t.name.clone(), t.partition_indexes.clone()))
                .collect()
        });
        committed_for($s, $group, topics)
            .into_iter()
            .map(|(name, parts)| $topic {
                name,
                partitions: parts
                    .into_iter()
                    .map(
                        |(partition_index, committed_offset, committed_leader_epoch, metadata)| {
                            $partition {
                                partition_index,
                                committed_offset,
                                committed_leader_epoch,
                                metadata,
                                error_code: $error_code,
                                ..Default::default()
                            }
                        },
                    )
                    .collect(),
                ..Default::default()
            })
            .collect()
    }};
}

/// OffsetFetch: the committed offsets, by group from v8; an injected error goes to the top level
/// (v2+), every group and every partition.
pub(super) fn offset_fetch(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, OffsetFetchRequest);
    let (version, inject) = (req.version, answer.error());
    let error_code = inject.unwrap_or(NONE);
    let mut resp = OffsetFetchResponse::default();
    if version >= 2 && inject.is_some() {
        resp.error_code = error_code;
    }
    shared.with(|s| {
        if version < 8 {
            resp.topics = offset_fetch_topics!(
                s,
                &r.group_id,
                r.topics,
                OffsetFetchResponseTopic,
                OffsetFetchResponsePartition,
                error_code
            );
            return;
        }
        resp.groups = r
            .groups
            .iter()
            .map(|g| OffsetFetchResponseGroup {
                group_id: g.group_id.clone(),
                error_code,
                topics: offset_fetch_topics!(
                    s,
                    &g.group_id,
                    g.topics,
                    OffsetFetchResponseTopics,
                    OffsetFetchResponsePartitions,
                    error_code
                ),
                ..Default::default()
            })
            .collect();
    });
    answer.reply(req, resp)
}
