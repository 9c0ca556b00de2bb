//! The group consumer against the in-process mock broker, which scripts the group coordinator:
//! the MEMBER_ID_REQUIRED round, rebalances signalled by SyncGroup and Heartbeat, lost
//! membership, fenced static members, a coordinator move during a commit, and the leader's
//! assignment.
//!
//! The mock has no group membership of its own, so every test scripts JoinGroup and SyncGroup
//! with [`Coordinator`]: each JoinGroup makes the requester the leader of a new generation
//! (listing any extra members the test adds), and each SyncGroup hands the requester the
//! assignment its own (leader's) request carries for it.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire_client::{Admin, Client, ClientConfig, Error};
use kafkawire_consumer::assignor::{
    MemberSubscription, Subscription, by_name, decode_assignment, decode_subscription,
    encode_subscription,
};
use kafkawire_consumer::{GroupConfig, GroupConsumer, OffsetReset, RebalanceListener};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::heartbeat_request::HeartbeatRequest;
use kafkawire_protocol::messages::heartbeat_response::HeartbeatResponse;
use kafkawire_protocol::messages::join_group_request::JoinGroupRequest;
use kafkawire_protocol::messages::join_group_response::{
    JoinGroupResponse, JoinGroupResponseMember,
};
use kafkawire_protocol::messages::sync_group_request::SyncGroupRequest;
use kafkawire_protocol::messages::sync_group_response::SyncGroupResponse;
use kafkawire_testkit::mock::{Action, MockCluster, Reply, ScriptedRequest};

mod common;
use common::client;

type Tp = (String, i32);

const TOPIC: &str = "orders";
const GROUP: &str = "billing";

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test did not finish within 20 s")
}

/// Waits (up to 5 s) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn config() -> GroupConfig {
    let mut c = GroupConfig::new(GROUP);
    c.session_timeout = Duration::from_secs(10);
    c.heartbeat_interval = Duration::from_millis(50);
    c.max_poll_interval = Duration::from_secs(30);
    c.enable_auto_commit = false;
    c.auto_offset_reset = OffsetReset::Earliest;
    c.partition_assignment_strategy = vec!["range".into()];
    c.fetch.fetch_max_wait = Duration::from_millis(20);
    c
}

fn tps(list: &[(&str, i32)]) -> Vec<Tp> {
    list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
}

/// The scripted group coordinator's state and the requests it saw.
#[derive(Default)]
struct Group {
    joins: Vec<JoinGroupRequest>,
    syncs: Vec<SyncGroupRequest>,
    generation: i32,
    members_created: u32,
    /// Members listed in every JoinGroup response after the requester: (member id,
    /// subscription metadata).
    others: Vec<(String, Bytes)>,
    /// A rebalance is pending: heartbeats of the current generation get
    /// REBALANCE_IN_PROGRESS until the next JoinGroup.
    pending_rebalance: bool,
}

#[derive(Clone, Default)]
struct Coordinator(Arc<Mutex<Group>>);

impl Coordinator {
    /// Queues JoinGroup, SyncGroup and Heartbeat responders (after anything the test queued
    /// before); the `n`th JoinGroup is answered after `join_delays[n]`, if given.
    fn install(&self, cluster: &MockCluster, join_delays: &[Duration]) {
        for i in 0..100 {
            let me = self.clone();
            let respond = Action::respond(move |req| me.join(req));
            cluster.script(
                ApiKey::JoinGroup,
                match join_delays.get(i) {
                    Some(d) if !d.is_zero() => Action::Delayed(*d, Box::new(respond)),
                    _ => respond,
                },
            );
        }
        cluster.script_n(ApiKey::Heartbeat, 2000, || {
            let me = self.clone();
            Action::respond(move |req| me.heartbeat(req))
        });
        cluster.script_n(ApiKey::SyncGroup, 100, || {
            let me = self.clone();
            Action::respond(move |req| me.sync(req))
        });
    }

    /// A new member id, as the coordinator hands out.
    fn new_member_id(g: &mut Group) -> String {
        g.members_created += 1;
        format!("member-{}", g.members_created)
    }

    /// Records a JoinGroup request.
    fn record_join(&self, req: &ScriptedRequest) -> JoinGroupRequest {
        let r: JoinGroupRequest = req.decode().expect("JoinGroup request decodes");
        self.0.lock().unwrap().joins.push(r.clone());
        r
    }

    /// A completed join: a new generation led by the requester, with its subscription and those
    /// of the extra members.
    fn join(&self, req: &ScriptedRequest) -> Reply {
        let r = self.record_join(req);
        let mut g = self.0.lock().unwrap();
        let member_id = if r.member_id.is_empty() {
            Self::new_member_id(&mut g)
        } else {
            r.member_id.clone()
        };
        g.generation += 1;
        g.pending_rebalance = false;
        let protocol = r.protocols.first().expect("a protocol").clone();
        let mut members = vec![JoinGroupResponseMember {
            member_id: member_id.clone(),
            group_instance_id: r.group_instance_id.clone(),
            metadata: protocol.metadata.clone(),
            ..Default::default()
        }];
        members.extend(
            g.others
                .iter()
                .map(|(id, metadata)| JoinGroupResponseMember {
                    member_id: id.clone(),
                    group_instance_id: None,
                    metadata: metadata.clone(),
                    ..Default::default()
                }),
        );
        req.reply(&JoinGroupResponse {
            generation_id: g.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(protocol.name.clone()),
            leader: member_id.clone(),
            member_id,
            members,
            ..Default::default()
        })
    }

    /// The requester's own assignment, taken from its (the leader's) request.
    fn sync(&self, req: &ScriptedRequest) -> Reply {
        let r: SyncGroupRequest = req.decode().expect("SyncGroup request decodes");
        self.0.lock().unwrap().syncs.push(r.clone());
        let assignment = r
            .assignments
            .iter()
            .find(|a| a.member_id == r.member_id)
            .map(|a| a.assignment.clone())
            .unwrap_or_default();
        req.reply(&SyncGroupResponse {
            protocol_type: r.protocol_type.clone(),
            protocol_name: r.protocol_name.clone(),
            assignment,
            ..Default::default()
        })
    }

    /// As a Kafka coordinator: ILLEGAL_GENERATION for another generation, REBALANCE_IN_PROGRESS
    /// while a rebalance is pending, else success.
    fn heartbeat(&self, req: &ScriptedRequest) -> Reply {
        let r: HeartbeatRequest = req.decode().expect("Heartbeat request decodes");
        let g = self.0.lock().unwrap();
        let code = if r.generation_id != g.generation {
            ErrorCode::ILLEGAL_GENERATION
        } else if g.pending_rebalance {
            ErrorCode::REBALANCE_IN_PROGRESS
        } else {
            ErrorCode::NONE
        };
        req.reply(&HeartbeatResponse {
            error_code: code.0,
            ..Default::default()
        })
    }

    fn joins(&self) -> Vec<JoinGroupRequest> {
        self.0.lock().unwrap().joins.clone()
    }

    fn syncs(&self) -> Vec<SyncGroupRequest> {
        self.0.lock().unwrap().syncs.clone()
    }
}

/// What a rebalance listener saw.
#[derive(Debug, Default)]
struct Seen {
    assigned: Vec<Tp>,
    revoked: Vec<Tp>,
    lost: Vec<Tp>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl Recorder {
    fn take(&self) -> Seen {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, partitions: &[Tp]) {
        self.0.lock().unwrap().revoked.extend_from_slice(partitions);
    }
    fn on_partitions_assigned(&mut self, partitions: &[Tp]) {
        self.0
            .lock()
            .unwrap()
            .assigned
            .extend_from_slice(partitions);
    }
    fn on_partitions_lost(&mut self, partitions: &[Tp]) {
        self.0.lock().unwrap().lost.extend_from_slice(partitions);
    }
}

/// A cluster with `TOPIC` (2 partitions) and a coordinator whose responders are queued after
/// whatever `before` scripts.
async fn start(
    before: impl FnOnce(&MockCluster, &Coordinator),
) -> (MockCluster, Client, Coordinator) {
    start_with_join_delays(before, &[]).await
}

/// As [`start`], the `n`th JoinGroup answered after `join_delays[n]`.
async fn start_with_join_delays(
    before: impl FnOnce(&MockCluster, &Coordinator),
    join_delays: &[Duration],
) -> (MockCluster, Client, Coordinator) {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic(TOPIC, 2);
    let coordinator = Coordinator::default();
    before(&cluster, &coordinator);
    coordinator.install(&cluster, join_delays);
    let client = client(&cluster).await;
    (cluster, client, coordinator)
}

/// A member that has joined and been assigned both partitions of `TOPIC`.
async fn joined(client: &Client, config: GroupConfig, listener: &Recorder) -> GroupConsumer {
    let mut consumer = GroupConsumer::subscribe(client, config, &[TOPIC]).expect("subscribe");
    consumer.set_rebalance_listener(listener.clone());
    // A join round that has to be repeated ends its poll (empty); the next poll goes on.
    for _ in 0..5 {
        consumer.poll().await.expect("a poll joins");
        if !consumer.assignment().is_empty() {
            break;
        }
    }
    assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
    assert_eq!(listener.take().assigned, tps(&[(TOPIC, 0), (TOPIC, 1)]));
    consumer
}

#[tokio::test]
async fn member_id_required_round_then_join_with_the_given_id() {
    within(async {
        let (cluster, client, coordinator) = start(|cluster, coordinator| {
            let c = coordinator.clone();
            cluster.script(
                ApiKey::JoinGroup,
                Action::respond(move |req| {
                    c.record_join(req);
                    req.reply(&JoinGroupResponse {
                        error_code: ErrorCode::MEMBER_ID_REQUIRED.0,
                        generation_id: -1,
                        member_id: "member-from-broker".into(),
                        ..Default::default()
                    })
                }),
            );
        })
        .await;
        let listener = Recorder::default();
        let consumer = joined(&client, config(), &listener).await;
        let joins = coordinator.joins();
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2);
        assert_eq!(joins.len(), 2);
        assert_eq!(joins[0].member_id, "", "the first join has no member id");
        assert_eq!(joins[1].member_id, "member-from-broker");
        let m = consumer.membership();
        assert_eq!(
            (m.member_id.as_str(), m.generation_id),
            ("member-from-broker", 1)
        );
        let syncs = coordinator.syncs();
        assert_eq!(syncs.len(), 1);
        assert_eq!(
            (syncs[0].member_id.as_str(), syncs[0].generation_id),
            ("member-from-broker", 1)
        );
        consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn rebalance_in_progress_on_sync_group_joins_again() {
    within(async {
        let (cluster, client, coordinator) = start(|cluster, _| {
            cluster.script(
                ApiKey::SyncGroup,
                Action::ErrorCode(ErrorCode::REBALANCE_IN_PROGRESS),
            );
        })
        .await;
        let listener = Recorder::default();
        let consumer = joined(&client, config(), &listener).await;
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2);
        assert_eq!(cluster.request_count(ApiKey::SyncGroup), 2);
        let joins = coordinator.joins();
        // The failed SyncGroup was not recorded by the coordinator (it was scripted before it).
        assert_eq!(joins.len(), 2);
        assert_eq!(joins[0].member_id, "");
        assert_eq!(
            joins[1].member_id, "member-1",
            "REBALANCE_IN_PROGRESS keeps the member id"
        );
        let m = consumer.membership();
        assert_eq!((m.member_id.as_str(), m.generation_id), ("member-1", 2));
        consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn rebalance_in_progress_on_heartbeat_makes_the_next_poll_rejoin() {
    within(async {
        let (cluster, client, coordinator) = start(|cluster, _| {
            cluster.script(
                ApiKey::Heartbeat,
                Action::ErrorCode(ErrorCode::REBALANCE_IN_PROGRESS),
            );
        })
        .await;
        let listener = Recorder::default();
        let mut consumer = joined(&client, config(), &listener).await;
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 1);
        // The heartbeat task answers one heartbeat after another: a second heartbeat means the
        // answer to the first has been handled.
        wait_until("two heartbeats were sent", || {
            cluster.request_count(ApiKey::Heartbeat) >= 2
        })
        .await;
        consumer.poll().await.expect("poll rejoins");
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2);
        let joins = coordinator.joins();
        assert_eq!(joins[1].member_id, "member-1", "the member id is kept");
        assert_eq!(consumer.membership().generation_id, 2);
        assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
        let seen = listener.take();
        // Eager (range): everything is revoked before joining again, then assigned again;
        // nothing is lost.
        assert_eq!(seen.revoked, tps(&[(TOPIC, 0), (TOPIC, 1)]), "{seen:?}");
        assert_eq!(seen.assigned, tps(&[(TOPIC, 0), (TOPIC, 1)]), "{seen:?}");
        assert!(seen.lost.is_empty(), "{seen:?}");
        consumer.close().await.expect("close");
    })
    .await;
}

/// A heartbeat answer that ends the membership: the partitions are lost (not revoked), and the
/// next poll joins again.
async fn heartbeat_error_loses_the_partitions(code: ErrorCode) -> Vec<JoinGroupRequest> {
    let (cluster, client, coordinator) = start(|cluster, _| {
        cluster.script(ApiKey::Heartbeat, Action::ErrorCode(code));
    })
    .await;
    let listener = Recorder::default();
    let mut consumer = joined(&client, config(), &listener).await;
    // The heartbeat task forgets the member id when the answer comes.
    wait_until("the heartbeat answer was handled", || {
        consumer.membership().member_id.is_empty()
    })
    .await;
    consumer.poll().await.expect("poll rejoins");
    assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2, "{code}");
    let seen = listener.take();
    assert_eq!(
        seen.lost,
        tps(&[(TOPIC, 0), (TOPIC, 1)]),
        "{code}: {seen:?}"
    );
    assert!(
        seen.revoked.is_empty(),
        "{code}: lost partitions are not revoked: {seen:?}"
    );
    assert_eq!(
        seen.assigned,
        tps(&[(TOPIC, 0), (TOPIC, 1)]),
        "{code}: {seen:?}"
    );
    assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
    consumer.close().await.expect("close");
    coordinator.joins()
}

#[tokio::test]
async fn unknown_member_id_on_heartbeat_loses_the_partitions_and_rejoins_as_a_new_member() {
    within(async {
        let joins = heartbeat_error_loses_the_partitions(ErrorCode::UNKNOWN_MEMBER_ID).await;
        assert_eq!(joins[0].member_id, "");
        assert_eq!(
            joins[1].member_id, "",
            "a member the coordinator does not know joins with an empty member id"
        );
    })
    .await;
}

#[tokio::test]
async fn illegal_generation_on_heartbeat_loses_the_partitions_and_rejoins() {
    within(async {
        let joins = heartbeat_error_loses_the_partitions(ErrorCode::ILLEGAL_GENERATION).await;
        assert_eq!(joins.len(), 2);
    })
    .await;
}

#[tokio::test]
async fn fenced_instance_id_on_heartbeat_is_fatal() {
    within(async {
        let (cluster, client, coordinator) = start(|cluster, _| {
            cluster.script(
                ApiKey::Heartbeat,
                Action::ErrorCode(ErrorCode::FENCED_INSTANCE_ID),
            );
        })
        .await;
        let mut cfg = config();
        cfg.group_instance_id = Some("billing-1".into());
        let listener = Recorder::default();
        let mut consumer = joined(&client, cfg, &listener).await;
        assert_eq!(
            coordinator.joins()[0].group_instance_id.as_deref(),
            Some("billing-1")
        );
        wait_until("a heartbeat was sent", || {
            cluster.request_count(ApiKey::Heartbeat) >= 1
        })
        .await;
        // The answer may still be on its way: poll until the error shows.
        let start = Instant::now();
        let err = loop {
            assert!(start.elapsed() < Duration::from_secs(5), "no error");
            match consumer.poll().await {
                Ok(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                Err(e) => break e,
            }
        };
        assert_eq!(err.code(), Some(ErrorCode::FENCED_INSTANCE_ID), "{err}");
        assert!(!err.is_retriable(), "{err}");
        let heartbeats = cluster.request_count(ApiKey::Heartbeat);
        for _ in 0..3 {
            let e = consumer
                .poll()
                .await
                .expect_err("every later poll fails too");
            assert_eq!(e.code(), Some(ErrorCode::FENCED_INSTANCE_ID), "{e}");
            tokio::time::sleep(Duration::from_millis(60)).await;
        }
        assert_eq!(
            cluster.request_count(ApiKey::JoinGroup),
            1,
            "a fenced member does not join again"
        );
        assert_eq!(
            cluster.request_count(ApiKey::Heartbeat),
            heartbeats,
            "a fenced member stops heartbeating"
        );
    })
    .await;
}

#[tokio::test]
async fn not_coordinator_on_offset_commit_is_retried_after_finding_the_coordinator_again() {
    within(async {
        let (cluster, client, _coordinator) = start(|_, _| {}).await;
        let listener = Recorder::default();
        let mut consumer = joined(&client, config(), &listener).await;
        consumer.store_offset(TOPIC, 0, 5);
        consumer.store_offset(TOPIC, 1, 7);
        cluster.script(
            ApiKey::OffsetCommit,
            Action::ErrorCode(ErrorCode::NOT_COORDINATOR),
        );
        let before = cluster.requests().len();
        consumer
            .commit()
            .await
            .expect("commit succeeds on the retry");
        let after: Vec<ApiKey> = cluster.requests()[before..]
            .iter()
            .filter_map(|r| r.api())
            .filter(|k| matches!(k, ApiKey::OffsetCommit | ApiKey::FindCoordinator))
            .collect();
        let commits: Vec<usize> = after
            .iter()
            .enumerate()
            .filter(|(_, k)| **k == ApiKey::OffsetCommit)
            .map(|(i, _)| i)
            .collect();
        assert_eq!(commits.len(), 2, "one failed commit, one retry: {after:?}");
        assert!(
            after[commits[0]..commits[1]].contains(&ApiKey::FindCoordinator),
            "the coordinator is looked up again before the retry: {after:?}"
        );
        let committed = Admin::new(&client)
            .committed_offsets(GROUP, None)
            .await
            .expect("committed offsets");
        assert_eq!(
            committed,
            BTreeMap::from([((TOPIC.to_owned(), 0), 5), ((TOPIC.to_owned(), 1), 7)])
        );
        consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn the_leader_assigns_every_member_with_the_range_assignor() {
    within(async {
        let (cluster, client, coordinator) = start(|cluster, coordinator| {
            // Three partitions of TOPIC, and a topic only the other member subscribes to.
            cluster.create_topic(TOPIC, 3);
            cluster.create_topic("refunds", 2);
            let other = Subscription {
                topics: vec![TOPIC.into(), "refunds".into()],
                ..Default::default()
            };
            coordinator.0.lock().unwrap().others = vec![(
                "member-zz".into(),
                encode_subscription(&other, 1).expect("encode"),
            )];
        })
        .await;
        let mut consumer =
            GroupConsumer::subscribe(&client, config(), &[TOPIC]).expect("subscribe");
        consumer.poll().await.expect("poll joins");

        let syncs = coordinator.syncs();
        assert_eq!(syncs.len(), 1);
        let sync = &syncs[0];
        assert_eq!(
            (sync.member_id.as_str(), sync.generation_id),
            ("member-1", 1)
        );
        assert_eq!(sync.protocol_name.as_deref(), Some("range"));
        let sent: BTreeMap<String, Vec<Tp>> = sync
            .assignments
            .iter()
            .map(|a| {
                let decoded = decode_assignment(a.assignment.clone()).expect("assignment decodes");
                (a.member_id.clone(), decoded.partitions)
            })
            .collect();
        let expected = BTreeMap::from([
            ("member-1".to_owned(), tps(&[(TOPIC, 0), (TOPIC, 1)])),
            (
                "member-zz".to_owned(),
                tps(&[(TOPIC, 2), ("refunds", 0), ("refunds", 1)]),
            ),
        ]);
        assert_eq!(sent, expected);

        // The same as the range assignor plans from the subscriptions the leader was given.
        let joins = coordinator.joins();
        let own = decode_subscription(joins[0].protocols[0].metadata.clone()).expect("decode");
        assert_eq!(own.topics, vec![TOPIC.to_owned()]);
        let members = BTreeMap::from([
            (
                "member-1".to_owned(),
                MemberSubscription::from_subscription(own, None),
            ),
            (
                "member-zz".to_owned(),
                MemberSubscription::new([TOPIC, "refunds"]),
            ),
        ]);
        let partitions = BTreeMap::from([(TOPIC.to_owned(), 3), ("refunds".to_owned(), 2)]);
        let plan = by_name("range")
            .expect("range")
            .assign(&partitions, &members);
        assert_eq!(sent, plan);

        assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
        drop(cluster);
    })
    .await;
}

#[tokio::test]
async fn a_heartbeat_sent_during_a_rejoin_does_not_start_another_rebalance() {
    within(async {
        // The rejoin's JoinGroup takes 300 ms, as while a coordinator waits for the other
        // members; heartbeats sent meanwhile get REBALANCE_IN_PROGRESS (or ILLEGAL_GENERATION),
        // answered after the JoinGroup, as a broker answers a connection's requests in order.
        let delays = [Duration::ZERO, Duration::from_millis(300)];
        let (cluster, client, coordinator) = start_with_join_delays(|_, _| {}, &delays).await;
        let listener = Recorder::default();
        let mut consumer = joined(&client, config(), &listener).await;
        assert_eq!(consumer.membership().generation_id, 1);

        // The coordinator starts a rebalance; a heartbeat tells the member.
        coordinator.0.lock().unwrap().pending_rebalance = true;
        let heartbeats = cluster.request_count(ApiKey::Heartbeat);
        wait_until("two heartbeats were sent", || {
            cluster.request_count(ApiKey::Heartbeat) >= heartbeats + 2
        })
        .await;
        consumer.poll().await.expect("poll rejoins");
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2);
        let m = consumer.membership();
        assert_eq!((m.member_id.as_str(), m.generation_id), ("member-1", 2));
        let seen = listener.take();
        assert!(seen.lost.is_empty(), "{seen:?}");

        // The group is stable now: no more rebalances, whatever heartbeats were in flight.
        for _ in 0..5 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            consumer.poll().await.expect("poll");
        }
        let m = consumer.membership();
        assert_eq!(
            (m.member_id.as_str(), m.generation_id),
            ("member-1", 2),
            "the member id and generation survive"
        );
        assert_eq!(
            cluster.request_count(ApiKey::JoinGroup),
            2,
            "no further rebalance: {:?}",
            listener.take()
        );
        assert!(listener.take().lost.is_empty());
        consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn group_authorization_failed_on_join_is_reported() {
    // A consumer that is not a member yet reports a failed join as the broker's error.
    within(async {
        let (cluster, client, _) = start(|cluster, _| {
            cluster.script(
                ApiKey::JoinGroup,
                Action::ErrorCode(ErrorCode::GROUP_AUTHORIZATION_FAILED),
            );
        })
        .await;
        let mut consumer =
            GroupConsumer::subscribe(&client, config(), &[TOPIC]).expect("subscribe");
        let e = consumer.poll().await.expect_err("not authorized");
        assert_eq!(e.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED), "{e}");
        assert!(!matches!(e, Error::GroupMembership { .. }));
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 1);
    })
    .await;
}

#[tokio::test]
async fn a_join_held_past_the_request_timeout_succeeds_without_holding_up_the_client() {
    within(async {
        // The coordinator holds the JoinGroup 1.5 s (waiting for other members), longer than
        // the client's 1 s request timeout but within the rebalance timeout.
        let delays = [Duration::from_millis(1500)];
        let (cluster, _, _) = start_with_join_delays(|_, _| {}, &delays).await;
        let mut c = ClientConfig::new(&cluster.broker_addr(0));
        c.request_timeout = Duration::from_secs(1);
        c.allow_auto_topic_creation = false;
        let client = Client::connect(c).await.expect("connect");
        let mut consumer = GroupConsumer::subscribe(&client, config(), &[TOPIC]).unwrap();
        let member = tokio::spawn(async move {
            for _ in 0..3 {
                consumer.poll().await?;
                if !consumer.assignment().is_empty() {
                    break;
                }
            }
            Ok::<_, Error>(consumer)
        });
        wait_until("the JoinGroup is on its way", || {
            cluster.request_count(ApiKey::JoinGroup) >= 1
        })
        .await;
        // Meanwhile the same client answers other requests: the member's coordinator
        // traffic has its own connection, so nothing waits behind the held JoinGroup.
        client.refresh_metadata(&[TOPIC]).await.expect("metadata");
        Admin::new(&client)
            .committed_offsets(GROUP, None)
            .await
            .expect("offset fetch");
        assert!(
            !member.is_finished(),
            "the join was still held while the other requests were answered"
        );
        let consumer = member
            .await
            .unwrap()
            .expect("the join outlives the request timeout");
        assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
        assert_eq!(
            cluster.request_count(ApiKey::JoinGroup),
            1,
            "one JoinGroup, not timed out and sent again"
        );
        consumer.close().await.expect("close");
    })
    .await;
}
