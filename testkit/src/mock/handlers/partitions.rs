//! The APIs a partition's leader serves: Produce, Fetch, ListOffsets, OffsetForLeaderEpoch.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::fetch_request::FetchRequest;
use kafkawire_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch as FetchLeader,
    NodeEndpoint as FetchNode, PartitionData,
};
use kafkawire_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafkawire_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
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

use super::{Answer, NONE, NOT_LEADER, UNKNOWN_TOPIC};
use crate::mock::model::{PartitionModel, State};
use crate::mock::server::Shared;
use crate::mock::{Reply, ScriptedRequest};

/// Why a partition's request is not served.
enum Refused<'a> {
    /// This error code.
    Code(i16),
    /// `NOT_LEADER_OR_FOLLOWER`: another broker leads the partition (for the KIP-951 hints).
    NotLeader(&'a PartitionModel),
}

impl Refused<'_> {
    fn code(&self) -> i16 {
        match self {
            Refused::Code(code) => *code,
            Refused::NotLeader(_) => NOT_LEADER,
        }
    }
}

/// The partition a request names, if `broker` may serve it: an injected error code first, then
/// the lookup's error (unknown topic or partition), then leadership, then the client's current
/// leader epoch (`None`: not in this version; -1: no check).
fn served<'a>(
    inject: Option<i16>,
    lookup: Result<&'a PartitionModel, i16>,
    broker: i32,
    current_leader_epoch: Option<i32>,
) -> Result<&'a PartitionModel, Refused<'a>> {
    if let Some(code) = inject {
        return Err(Refused::Code(code));
    }
    let p = lookup.map_err(Refused::Code)?;
    match current_leader_epoch.filter(|e| *e >= 0) {
        _ if p.leader != broker => Err(Refused::NotLeader(p)),
        Some(e) if e < p.leader_epoch => Err(Refused::Code(ErrorCode::FENCED_LEADER_EPOCH.0)),
        Some(e) if e > p.leader_epoch => Err(Refused::Code(ErrorCode::UNKNOWN_LEADER_EPOCH.0)),
        _ => Ok(p),
    }
}

/// Adds the endpoint of broker `leader` to a response's `node_endpoints` (KIP-951) unless it is
/// there: `node(id, host, port)`, `id_of(node)`.
fn add_endpoint<N>(
    s: &State,
    nodes: &mut Vec<N>,
    leader: i32,
    node: impl FnOnce(i32, String, i32) -> N,
    id_of: impl Fn(&N) -> i32,
) {
    if !nodes.iter().any(|n| id_of(n) == leader) {
        let (host, port) = s.advertised(leader);
        nodes.push(node(leader, host, port));
    }
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

pub(super) fn produce(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, ProduceRequest);
    let (broker, version, inject) = (req.broker_id, req.version, answer.error());
    if inject.is_some() && r.acks == 0 {
        return Reply::Close;
    }
    let mut any_error = false;
    let resp = shared.with(|s| {
        let mut resp = ProduceResponse::default();
        for t in &r.topic_data {
            let mut tr = TopicProduceResponse {
                name: t.name.clone(),
                ..Default::default()
            };
            for p in &t.partition_data {
                let lookup = s.partition(&t.name, p.index).ok_or(UNKNOWN_TOPIC);
                let pr = match served(inject, lookup, broker, None) {
                    Err(Refused::NotLeader(m)) if version >= 10 => {
                        let mut pr = produce_error(p.index, NOT_LEADER);
                        pr.current_leader = ProduceLeader {
                            leader_id: m.leader,
                            leader_epoch: m.leader_epoch,
                            ..Default::default()
                        };
                        let node = |node_id, host, port| ProduceNode {
                            node_id,
                            host,
                            port,
                            ..Default::default()
                        };
                        add_endpoint(s, &mut resp.node_endpoints, m.leader, node, |n| n.node_id);
                        pr
                    }
                    Err(why) => produce_error(p.index, why.code()),
                    Ok(_) => {
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
    if inject.is_none() {
        shared.appended.notify_waiters();
    }
    if r.acks == 0 {
        // Kafka closes an acks=0 connection on error: the only way the producer can notice.
        return if any_error {
            Reply::Close
        } else {
            Reply::Nothing
        };
    }
    answer.reply(req, resp)
}

// ---------------------------------------------------------------------------------------------
// Fetch

/// The fetch response as of now: (response, record bytes in it, whether it holds an error). An
/// injected fetch-session error (70, 71, 106) goes to the top level, any other to every
/// partition.
fn build_fetch(
    s: &State,
    broker: i32,
    version: i16,
    r: &FetchRequest,
    inject: Option<i16>,
) -> (FetchResponse, usize, bool) {
    let mut resp = FetchResponse::default();
    if let Some(code) = inject.filter(|code| matches!(code, 70 | 71 | 106)) {
        resp.error_code = code;
        return (resp, 0, true);
    }
    let mut total = 0usize;
    let mut any_error = false;
    let total_limit = if version >= 3 {
        usize::try_from(r.max_bytes).unwrap_or(0)
    } else {
        usize::MAX
    };
    for t in &r.topics {
        // By id from v13; empty for an unknown id.
        let name = if version >= 13 {
            s.topic_by_id(t.topic_id)
                .map(|(n, _)| n.clone())
                .unwrap_or_default()
        } else {
            t.topic.clone()
        };
        let model = s.topics.get(&name).filter(|_| !name.is_empty());
        let unknown = if version >= 13 && model.is_none() {
            ErrorCode::UNKNOWN_TOPIC_ID.0
        } else {
            UNKNOWN_TOPIC
        };
        let mut tr = FetchableTopicResponse {
            topic: name.clone(),
            topic_id: model.map_or(t.topic_id, |m| m.id),
            ..Default::default()
        };
        for fp in &t.partitions {
            let lookup = model
                .and_then(|m| m.partitions.get(usize::try_from(fp.partition).ok()?))
                .ok_or(unknown);
            let p = match served(inject, lookup, broker, Some(fp.current_leader_epoch)) {
                Ok(p) if fp.fetch_offset < p.log_start || fp.fetch_offset > p.high_watermark => {
                    Err(Refused::Code(ErrorCode::OFFSET_OUT_OF_RANGE.0))
                }
                served => served,
            };
            let p = match p {
                Ok(p) => p,
                Err(why) => {
                    let mut pd = PartitionData {
                        partition_index: fp.partition,
                        error_code: why.code(),
                        high_watermark: -1,
                        records: Some(Bytes::new()),
                        ..Default::default()
                    };
                    any_error |= pd.error_code != NONE;
                    if let Refused::NotLeader(m) = why {
                        if version >= 12 {
                            pd.current_leader = FetchLeader {
                                leader_id: m.leader,
                                leader_epoch: m.leader_epoch,
                                ..Default::default()
                            };
                        }
                        if version >= 16 {
                            let node = |node_id, host, port| FetchNode {
                                node_id,
                                host,
                                port,
                                ..Default::default()
                            };
                            add_endpoint(s, &mut resp.node_endpoints, m.leader, node, |n| {
                                n.node_id
                            });
                        }
                    }
                    tr.partitions.push(pd);
                    continue;
                }
            };
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

pub(super) async fn fetch(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, FetchRequest);
    let inject = answer.error();
    let wait = Duration::from_millis(u64::try_from(r.max_wait_ms).unwrap_or(0));
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let appended = shared.appended.notified();
        tokio::pin!(appended);
        appended.as_mut().enable();
        let (resp, bytes, any_error) =
            shared.with(|s| build_fetch(s, req.broker_id, req.version, &r, inject));
        let enough = r.min_bytes <= 0 || (bytes > 0 && bytes as u64 >= r.min_bytes as u64);
        // An injected error is answered at once.
        if enough || any_error || inject.is_some() || tokio::time::Instant::now() >= deadline {
            return answer.reply(req, resp);
        }
        tokio::select! {
            _ = &mut appended => {}
            _ = tokio::time::sleep_until(deadline) => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------
// ListOffsets, OffsetForLeaderEpoch

pub(super) fn list_offsets(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, ListOffsetsRequest);
    let (broker, version, inject) = (req.broker_id, req.version, answer.error());
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
                let lookup = s
                    .partition(&t.name, lp.partition_index)
                    .ok_or(UNKNOWN_TOPIC);
                let epoch = (version >= 4).then_some(lp.current_leader_epoch);
                match served(inject, lookup, broker, epoch) {
                    Err(why) => pr.error_code = why.code(),
                    Ok(p) => {
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
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    });
    answer.reply(req, resp)
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

pub(super) fn offset_for_leader_epoch(
    shared: &Shared,
    req: &ScriptedRequest,
    answer: Answer,
) -> Reply {
    let r = decode_or_close!(req, OffsetForLeaderEpochRequest);
    let (broker, version, inject) = (req.broker_id, req.version, answer.error());
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
                let lookup = s.partition(&t.topic, op.partition).ok_or(UNKNOWN_TOPIC);
                let epoch = (version >= 2).then_some(op.current_leader_epoch);
                match served(inject, lookup, broker, epoch) {
                    Err(why) => pr.error_code = why.code(),
                    Ok(p) => {
                        let (epoch, end) = epoch_end_offset(p, op.leader_epoch);
                        pr.end_offset = end;
                        if version >= 1 {
                            pr.leader_epoch = epoch;
                        }
                    }
                }
                tr.partitions.push(pr);
            }
            resp.topics.push(tr);
        }
        resp
    });
    answer.reply(req, resp)
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
