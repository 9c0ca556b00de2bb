//! Administrative APIs: CreatePartitions, DeleteRecords, DescribeConfigs,
//! IncrementalAlterConfigs, DescribeCluster, ListGroups, DescribeGroups, ConsumerGroupDescribe
//! and OffsetDelete.
//!
//! - **CreatePartitions** (any broker): grows a topic to the requested count, new partition `p`
//!   led by broker `p % n_brokers` (or the first broker of its assignment);
//!   `INVALID_PARTITIONS` when the count is not above the current one,
//!   `INVALID_REPLICA_ASSIGNMENT` for assignments of the wrong number or naming unknown
//!   brokers, `UNKNOWN_TOPIC_OR_PARTITION`. `validate_only` changes nothing.
//! - **DeleteRecords** (the partition's leader): moves the log start offset up to the offset
//!   (-1: the high watermark), dropping the batches wholly below it; `OFFSET_OUT_OF_RANGE`
//!   above the high watermark, `NOT_LEADER_OR_FOLLOWER` on other brokers.
//! - **DescribeConfigs / IncrementalAlterConfigs**: a few configs with Kafka's defaults per
//!   topic ([`TOPIC_DEFAULTS`]) and per broker ([`BROKER_DEFAULTS`]); alterations (SET, DELETE,
//!   APPEND and SUBTRACT for the list configs, KIP-339) are kept per cluster and reported with
//!   their source (`DYNAMIC_TOPIC_CONFIG`, `DYNAMIC_BROKER_CONFIG`,
//!   `DYNAMIC_DEFAULT_BROKER_CONFIG`) and synonyms. A broker resource must name the broker that
//!   receives the request (or be empty: the cluster-wide default), else `INVALID_REQUEST`, as
//!   in Kafka; unknown keys get `INVALID_CONFIG`, unknown topics `UNKNOWN_TOPIC_OR_PARTITION`.
//! - **DescribeCluster**: the cluster id, controller and brokers Metadata reports.
//! - **ListGroups**: every group with committed offsets (protocol type empty, state `Empty`:
//!   the mock has no group membership).
//! - **DescribeGroups**: the same groups in state `Empty` with no members, any other group in
//!   state `Dead` (as Kafka before DescribeGroups v6). Members are scripted
//!   ([`crate::mock::Action::modify`]).
//! - **ConsumerGroupDescribe** (KIP-848): every group `GROUP_ID_NOT_FOUND`, as Kafka answers for
//!   an unknown or a classic group (the mock has no groups of the consumer rebalance protocol).
//!   Such groups are scripted ([`crate::mock::Action::modify`]).
//! - **OffsetDelete**: removes committed offsets; `GROUP_ID_NOT_FOUND` for a group with none,
//!   `UNKNOWN_TOPIC_OR_PARTITION` for a partition that does not exist.
//!
//! An injected error code ([`crate::mock::Action::ErrorCode`]) goes into every error field of
//! the response (top level, resources, topics, partitions) and nothing changes.
//!
//! The altered configs live outside the cluster model, in a table of this module keyed by the
//! cluster (its shared state's address and its first broker's listener address, which no
//! other running cluster can have).

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};

use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use kafkawire_protocol::messages::consumer_group_describe_response::ConsumerGroupDescribeResponse;
use kafkawire_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use kafkawire_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use kafkawire_protocol::messages::delete_records_request::DeleteRecordsRequest;
use kafkawire_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use kafkawire_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use kafkawire_protocol::messages::describe_cluster_response::{
    DescribeClusterBroker, DescribeClusterResponse,
};
use kafkawire_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use kafkawire_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
    DescribeConfigsSynonym,
};
use kafkawire_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use kafkawire_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup,
};
use kafkawire_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use kafkawire_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse, IncrementalAlterConfigsResponse,
};
use kafkawire_protocol::messages::list_groups_request::ListGroupsRequest;
use kafkawire_protocol::messages::list_groups_response::{ListGroupsResponse, ListedGroup};
use kafkawire_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use kafkawire_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};

use super::{Answer, NONE, NOT_LEADER, UNKNOWN_TOPIC};
use crate::mock::model::{PartitionModel, State};
use crate::mock::server::Shared;
use crate::mock::{Reply, ScriptedRequest};

/// Resource type codes (DescribeConfigs / IncrementalAlterConfigs).
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

/// Config sources (DescribeConfigs v1+).
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const DYNAMIC_BROKER_CONFIG: i8 = 2;
const DYNAMIC_DEFAULT_BROKER_CONFIG: i8 = 3;
const DEFAULT_CONFIG: i8 = 5;

/// The topic configs the mock knows, with Kafka's defaults.
pub(crate) const TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("max.message.bytes", "1048588"),
    ("min.insync.replicas", "1"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
];

/// The broker configs the mock knows, with Kafka's defaults.
pub(crate) const BROKER_DEFAULTS: &[(&str, &str)] = &[
    ("log.cleanup.policy", "delete"),
    ("log.retention.ms", "604800000"),
    ("message.max.bytes", "1048588"),
    ("num.partitions", "1"),
];

/// Configs whose value is a comma-separated list (APPEND and SUBTRACT apply).
const LIST_CONFIGS: &[&str] = &["cleanup.policy", "log.cleanup.policy"];

/// Altered configs of one cluster: by (resource type, resource name), key → value.
type Overrides = BTreeMap<(i8, String), BTreeMap<String, String>>;

/// The identity of a running cluster: its shared state's address and its first broker's
/// listener address (held by that cluster's listener while it runs).
type ClusterKey = (usize, std::net::SocketAddr);

static OVERRIDES: LazyLock<Mutex<HashMap<ClusterKey, Overrides>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn cluster_key(shared: &Shared, s: &State) -> ClusterKey {
    let addr = s
        .brokers
        .first()
        .map_or_else(|| ([0, 0, 0, 0], 0).into(), |b| b.addr);
    (shared as *const Shared as usize, addr)
}

/// Runs `f` with the cluster's altered configs.
fn with_overrides<T>(shared: &Shared, s: &State, f: impl FnOnce(&mut Overrides) -> T) -> T {
    let key = cluster_key(shared, s);
    let mut all = OVERRIDES.lock().unwrap_or_else(|e| e.into_inner());
    f(all.entry(key).or_default())
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions

/// CreatePartitions (any broker answers).
pub(super) fn create_partitions(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, CreatePartitionsRequest);
    let inject = answer.error();
    let resp = shared.with(|s| {
        let mut resp = CreatePartitionsResponse::default();
        for t in &r.topics {
            let mut res = CreatePartitionsTopicResult {
                name: t.name.clone(),
                error_message: None,
                ..Default::default()
            };
            match inject {
                Some(code) => res.error_code = code,
                None => {
                    if let Err((code, message)) =
                        grow_topic(s, &t.name, t.count, t, r.validate_only)
                    {
                        res.error_code = code.0;
                        res.error_message = Some(message);
                    }
                }
            }
            resp.results.push(res);
        }
        resp
    });
    answer.reply(req, resp)
}

/// Grows topic `name` to `count` partitions (unless `validate_only`).
fn grow_topic(
    s: &mut State,
    name: &str,
    count: i32,
    t: &kafkawire_protocol::messages::create_partitions_request::CreatePartitionsTopic,
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    let n_brokers = s.brokers.len().max(1) as i32;
    let Some(topic) = s.topics.get(name) else {
        return Err((
            ErrorCode::UNKNOWN_TOPIC_OR_PARTITION,
            format!("The topic '{name}' does not exist."),
        ));
    };
    let current = topic.partitions.len() as i32;
    if count <= current {
        return Err((
            ErrorCode::INVALID_PARTITIONS,
            format!(
                "Topic currently has {current} partitions, which is higher than the requested {count}."
            ),
        ));
    }
    let leaders: Vec<i32> = match &t.assignments {
        None => (current..count).map(|p| p % n_brokers).collect(),
        Some(a) => {
            if a.len() as i32 != count - current {
                return Err((
                    ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Increasing the number of partitions by {} but {} assignments provided.",
                        count - current,
                        a.len()
                    ),
                ));
            }
            let mut leaders = Vec::with_capacity(a.len());
            for replicas in a {
                match replicas.broker_ids.first() {
                    Some(b) if (0..n_brokers).contains(b) => leaders.push(*b),
                    _ => {
                        return Err((
                            ErrorCode::INVALID_REPLICA_ASSIGNMENT,
                            format!("Unknown broker(s) in assignment {:?}.", replicas.broker_ids),
                        ));
                    }
                }
            }
            leaders
        }
    };
    if !validate_only && let Some(topic) = s.topics.get_mut(name) {
        topic
            .partitions
            .extend(leaders.into_iter().map(|leader| PartitionModel {
                leader,
                leader_epoch: 0,
                error: 0,
                log_start: 0,
                high_watermark: 0,
                batches: Vec::new(),
                producers: HashMap::new(),
            }));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// DeleteRecords

/// DeleteRecords, served by each partition's leader.
pub(super) fn delete_records(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, DeleteRecordsRequest);
    let (broker, inject) = (req.broker_id, answer.error());
    let resp = shared.with(|s| DeleteRecordsResponse {
        topics: r
            .topics
            .iter()
            .map(|t| DeleteRecordsTopicResult {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|dp| {
                        let (low_watermark, error_code) = match inject {
                            Some(code) => (-1, code),
                            None => delete_below(s, &t.name, dp.partition_index, dp.offset, broker),
                        };
                        DeleteRecordsPartitionResult {
                            partition_index: dp.partition_index,
                            low_watermark,
                            error_code,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    });
    answer.reply(req, resp)
}

/// Moves a partition's log start offset up to `offset` (-1: the high watermark): (low
/// watermark, error code).
fn delete_below(
    s: &mut State,
    topic: &str,
    partition: i32,
    offset: i64,
    broker: i32,
) -> (i64, i16) {
    let Some(p) = s.partition_mut(topic, partition) else {
        return (-1, UNKNOWN_TOPIC);
    };
    if p.leader != broker {
        return (-1, NOT_LEADER);
    }
    let offset = if offset == -1 {
        p.high_watermark
    } else {
        offset
    };
    if offset < 0 || offset > p.high_watermark {
        return (-1, ErrorCode::OFFSET_OUT_OF_RANGE.0);
    }
    if offset > p.log_start {
        p.log_start = offset;
        p.batches.retain(|b| b.last_offset >= offset);
    }
    (p.log_start, NONE)
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs and IncrementalAlterConfigs

/// Why a config resource is refused on `broker`: (error code, message).
fn check_resource(s: &State, broker: i32, kind: i8, name: &str) -> Result<(), (i16, String)> {
    match kind {
        TOPIC if s.topics.contains_key(name) => Ok(()),
        TOPIC => Err((UNKNOWN_TOPIC, format!("The topic '{name}' does not exist."))),
        BROKER if name.is_empty() || name == broker.to_string() => Ok(()),
        BROKER => Err((
            ErrorCode::INVALID_REQUEST.0,
            format!("Unexpected broker id, expected {broker} or empty string, but received {name}"),
        )),
        other => Err((
            ErrorCode::INVALID_REQUEST.0,
            format!("Unsupported resource type {other}"),
        )),
    }
}

/// The defaults of a resource type.
fn defaults(kind: i8) -> &'static [(&'static str, &'static str)] {
    if kind == TOPIC {
        TOPIC_DEFAULTS
    } else {
        BROKER_DEFAULTS
    }
}

/// A config's value and source, with its synonyms most specific first: (value, source,
/// synonyms as (name, value, source)).
type Described = (String, i8, Vec<(String, String, i8)>);

/// The values of `key` for a resource: its own override, the cluster-wide broker default's (for
/// brokers), the built-in default.
fn describe_key(o: &Overrides, kind: i8, name: &str, key: &str, default: &str) -> Described {
    let mut chain = Vec::new();
    if let Some(v) = o.get(&(kind, name.to_owned())).and_then(|m| m.get(key)) {
        let source = match kind {
            TOPIC => DYNAMIC_TOPIC_CONFIG,
            _ if name.is_empty() => DYNAMIC_DEFAULT_BROKER_CONFIG,
            _ => DYNAMIC_BROKER_CONFIG,
        };
        chain.push((key.to_owned(), v.clone(), source));
    }
    if kind == BROKER
        && !name.is_empty()
        && let Some(v) = o.get(&(BROKER, String::new())).and_then(|m| m.get(key))
    {
        chain.push((key.to_owned(), v.clone(), DYNAMIC_DEFAULT_BROKER_CONFIG));
    }
    chain.push((key.to_owned(), default.to_owned(), DEFAULT_CONFIG));
    let (value, source) = (chain[0].1.clone(), chain[0].2);
    (value, source, chain)
}

/// DescribeConfigs: every known key of each resource (or the keys asked for), synonyms when
/// asked (v1+).
pub(super) fn describe_configs(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, DescribeConfigsRequest);
    let (broker, version, inject) = (req.broker_id, req.version, answer.error());
    let resp = shared.with(|s| {
        let overrides = with_overrides(shared, s, |o| o.clone());
        let mut resp = DescribeConfigsResponse::default();
        for res in &r.resources {
            let mut out = DescribeConfigsResult {
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                error_message: None,
                ..Default::default()
            };
            let checked = match inject {
                Some(code) => Err((code, String::new())),
                None => check_resource(s, broker, res.resource_type, &res.resource_name),
            };
            if let Err((code, message)) = checked {
                out.error_code = code;
                out.error_message = (!message.is_empty()).then_some(message);
                resp.results.push(out);
                continue;
            }
            for (key, default) in defaults(res.resource_type) {
                if res
                    .configuration_keys
                    .as_ref()
                    .is_some_and(|keys| !keys.iter().any(|k| k == key))
                {
                    continue;
                }
                let (value, source, chain) = describe_key(
                    &overrides,
                    res.resource_type,
                    &res.resource_name,
                    key,
                    default,
                );
                let mut entry = DescribeConfigsResourceResult {
                    name: (*key).to_owned(),
                    value: Some(value),
                    read_only: false,
                    is_sensitive: false,
                    documentation: None,
                    ..Default::default()
                };
                if version == 0 {
                    entry.is_default = source == DEFAULT_CONFIG;
                } else {
                    entry.config_source = source;
                    if r.include_synonyms {
                        entry.synonyms = chain
                            .into_iter()
                            .map(|(name, value, source)| DescribeConfigsSynonym {
                                name,
                                value: Some(value),
                                source,
                                ..Default::default()
                            })
                            .collect();
                    }
                }
                out.configs.push(entry);
            }
            resp.results.push(out);
        }
        resp
    });
    answer.reply(req, resp)
}

/// A comma-separated list with `item` added (if absent) or removed.
fn edit_list(current: &str, item: &str, add: bool) -> String {
    let mut items: Vec<&str> = current.split(',').filter(|i| !i.is_empty()).collect();
    if add {
        if !items.contains(&item) {
            items.push(item);
        }
    } else {
        items.retain(|i| *i != item);
    }
    items.join(",")
}

/// IncrementalAlterConfigs: each resource's operations are checked, then applied together
/// (unless `validate_only`).
pub(super) fn incremental_alter_configs(
    shared: &Shared,
    req: &ScriptedRequest,
    answer: Answer,
) -> Reply {
    let r = decode_or_close!(req, IncrementalAlterConfigsRequest);
    let (broker, inject) = (req.broker_id, answer.error());
    let resp = shared.with(|s| {
        let mut resp = IncrementalAlterConfigsResponse::default();
        for res in &r.resources {
            let mut out = AlterConfigsResourceResponse {
                resource_type: res.resource_type,
                resource_name: res.resource_name.clone(),
                error_message: None,
                ..Default::default()
            };
            let result = match inject {
                Some(code) => Err((code, String::new())),
                None => check_resource(s, broker, res.resource_type, &res.resource_name)
                    .and_then(|()| with_overrides(shared, s, |o| alter(o, res, r.validate_only))),
            };
            if let Err((code, message)) = result {
                out.error_code = code;
                out.error_message = (!message.is_empty()).then_some(message);
            }
            resp.responses.push(out);
        }
        resp
    });
    answer.reply(req, resp)
}

/// Applies one resource's operations to `o` (all or none).
fn alter(
    o: &mut Overrides,
    res: &kafkawire_protocol::messages::incremental_alter_configs_request::AlterConfigsResource,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    let invalid = |m: String| (ErrorCode::INVALID_CONFIG.0, m);
    let kind = res.resource_type;
    let key = (kind, res.resource_name.clone());
    let mut mine = o.get(&key).cloned().unwrap_or_default();
    for c in &res.configs {
        let Some((_, default)) = defaults(kind).iter().find(|(k, _)| *k == c.name) else {
            return Err(invalid(format!("Unknown config name: {}", c.name)));
        };
        let value = c.value.clone();
        match (c.config_operation, value) {
            (0, Some(v)) => {
                mine.insert(c.name.clone(), v);
            }
            (1, _) => {
                mine.remove(&c.name);
            }
            (op @ (2 | 3), Some(v)) => {
                if !LIST_CONFIGS.contains(&c.name.as_str()) {
                    return Err(invalid(format!(
                        "Config {} is not a list: APPEND and SUBTRACT do not apply",
                        c.name
                    )));
                }
                let current = mine.get(&c.name).map_or(*default, String::as_str);
                let edited = edit_list(current, &v, op == 2);
                mine.insert(c.name.clone(), edited);
            }
            (op, _) => {
                return Err(invalid(format!(
                    "Operation {op} of {} is not valid here",
                    c.name
                )));
            }
        }
    }
    if !validate_only {
        o.insert(key, mine);
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// DescribeCluster, ListGroups, OffsetDelete

/// DescribeCluster: the model's cluster id, controller and brokers.
pub(super) fn describe_cluster(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    decode_or_close!(req, DescribeClusterRequest);
    let resp = shared.with(|s| {
        let mut resp = DescribeClusterResponse {
            error_message: None,
            cluster_id: s.cluster_id.clone(),
            controller_id: s.controller_id,
            brokers: (0..s.brokers.len() as i32)
                .map(|id| {
                    let (host, port) = s.advertised(id);
                    DescribeClusterBroker {
                        broker_id: id,
                        host,
                        port,
                        rack: None,
                        ..Default::default()
                    }
                })
                .collect(),
            ..Default::default()
        };
        if let Some(code) = answer.error() {
            resp.error_code = code;
            resp.brokers.clear();
        }
        resp
    });
    answer.reply(req, resp)
}

/// ListGroups: the groups with committed offsets, on every broker.
pub(super) fn list_groups(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    decode_or_close!(req, ListGroupsRequest);
    let mut resp = ListGroupsResponse::default();
    match answer.error() {
        Some(code) => resp.error_code = code,
        None => {
            let mut groups: Vec<String> =
                shared.with(|s| s.committed.keys().map(|(g, _, _)| g.clone()).collect());
            groups.sort_unstable();
            groups.dedup();
            resp.groups = groups
                .into_iter()
                .map(|group_id| ListedGroup {
                    group_id,
                    protocol_type: String::new(),
                    group_state: "Empty".to_owned(),
                    ..Default::default()
                })
                .collect();
        }
    }
    answer.reply(req, resp)
}

/// DescribeGroups: groups with committed offsets are `Empty`, others `Dead`; no members.
pub(super) fn describe_groups(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, DescribeGroupsRequest);
    let inject = answer.error();
    let known: Vec<bool> = shared.with(|s| {
        r.groups
            .iter()
            .map(|g| s.committed.keys().any(|(c, _, _)| c == g))
            .collect()
    });
    let resp = DescribeGroupsResponse {
        groups: r
            .groups
            .iter()
            .zip(known)
            .map(|(group_id, known)| DescribedGroup {
                error_code: inject.unwrap_or(NONE),
                group_id: group_id.clone(),
                group_state: if known { "Empty" } else { "Dead" }.to_owned(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    answer.reply(req, resp)
}

/// ConsumerGroupDescribe: no group is one of the consumer rebalance protocol (KIP-848).
pub(super) fn consumer_group_describe(req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, ConsumerGroupDescribeRequest);
    let inject = answer.error();
    let resp = ConsumerGroupDescribeResponse {
        groups: r
            .group_ids
            .iter()
            .map(|group_id| {
                kafkawire_protocol::messages::consumer_group_describe_response::DescribedGroup {
                    error_code: inject.unwrap_or(ErrorCode::GROUP_ID_NOT_FOUND.0),
                    error_message: inject
                        .is_none()
                        .then(|| format!("Group {group_id} is not a consumer group.")),
                    group_id: group_id.clone(),
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    };
    answer.reply(req, resp)
}

/// OffsetDelete: removes committed offsets of the group.
pub(super) fn offset_delete(shared: &Shared, req: &ScriptedRequest, answer: Answer) -> Reply {
    let r = decode_or_close!(req, OffsetDeleteRequest);
    let inject = answer.error();
    let resp = shared.with(|s| {
        let mut resp = OffsetDeleteResponse::default();
        if let Some(code) = inject {
            resp.error_code = code;
        } else if !s.committed.keys().any(|(g, _, _)| *g == r.group_id) {
            resp.error_code = ErrorCode::GROUP_ID_NOT_FOUND.0;
            return resp;
        }
        resp.topics = r
            .topics
            .iter()
            .map(|t| OffsetDeleteResponseTopic {
                name: t.name.clone(),
                partitions: t
                    .partitions
                    .iter()
                    .map(|p| {
                        let error_code = match inject {
                            Some(code) => code,
                            None if s.partition(&t.name, p.partition_index).is_none() => {
                                UNKNOWN_TOPIC
                            }
                            None => {
                                s.committed.remove(&(
                                    r.group_id.clone(),
                                    t.name.clone(),
                                    p.partition_index,
                                ));
                                NONE
                            }
                        };
                        OffsetDeleteResponsePartition {
                            partition_index: p.partition_index,
                            error_code,
                            ..Default::default()
                        }
                    })
                    .collect(),
                ..Default::default()
            })
            .collect();
        resp
    });
    answer.reply(req, resp)
}
