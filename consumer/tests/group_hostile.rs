//! Group members' data as hostile input (issue "Hostile input", item 5): what other members put
//! in their subscriptions and what the leader hands out must neither stop the group nor take
//! memory out of proportion to the bytes sent, and the metadata a member reads the assignment by
//! must follow the cluster.
//!
//! - An undecodable subscription in the JoinGroup member list counts as subscribing to nothing;
//!   the leader assigns the others, and the group goes on (every assignor).
//! - A 64 KiB subscription naming a 32 KiB topic with 8,000 partitions is held once, not per
//!   partition (262 MB); measured on the decoded structures, and as peak RSS in a child process
//!   on a scaled-up input (16 MiB), where copying names per partition would need 67 GB.
//! - The sticky assignor with 20,000 members and 10 partitions (400 million member pairs) runs in
//!   a few MB and seconds, and 1,000 members x 10 partitions well within a time bound.
//! - An assignment naming a partition the member's metadata does not know refreshes metadata
//!   once and goes on without it (no rebalance storm); one the refresh confirms is taken.
//! - A topic that grows from 2 to 4 partitions makes the leader (and a follower) rejoin, and the
//!   new partitions are assigned and read.
//!
//! The mock broker has no group membership of its own: [`Coordinator`] scripts JoinGroup,
//! SyncGroup and Heartbeat (as in `group_mock.rs`), making the requester the leader of each new
//! generation, or a follower of a scripted leader.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_client::{Client, ClientConfig};
use kafkawire_consumer::assignor::{
    Assignment, MemberSubscription, Subscription, by_name, by_topic, decode_assignment,
    decode_subscription, decode_subscription_by_topic, encode_assignment, encode_subscription,
};
use kafkawire_consumer::{Fetched, GroupConfig, GroupConsumer, OffsetReset};
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
use kafkawire_protocol::records::RecordBatchBuilder;
use kafkawire_testkit::mock::{Action, MockCluster, Reply, ScriptedRequest};

type Tp = (String, i32);

const TOPIC: &str = "orders";
const GROUP: &str = "billing";

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(30), f)
        .await
        .expect("test did not finish within 30 s")
}

fn tps(list: &[(&str, i32)]) -> Vec<Tp> {
    list.iter().map(|(t, p)| ((*t).to_owned(), *p)).collect()
}

async fn client(cluster: &MockCluster, metadata_max_age: Duration) -> Client {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    c.metadata_max_age = metadata_max_age;
    Client::connect(c)
        .await
        .expect("connect to the mock cluster")
}

fn config(assignor: &str) -> GroupConfig {
    let mut c = GroupConfig::new(GROUP);
    c.session_timeout = Duration::from_secs(10);
    c.heartbeat_interval = Duration::from_millis(50);
    c.max_poll_interval = Duration::from_secs(30);
    c.enable_auto_commit = false;
    c.auto_offset_reset = OffsetReset::Earliest;
    c.partition_assignment_strategy = vec![assignor.into()];
    c.fetch.fetch_max_wait = Duration::from_millis(20);
    c
}

/// The scripted group coordinator's state and the requests it saw.
#[derive(Default)]
struct Group {
    joins: Vec<JoinGroupRequest>,
    syncs: Vec<SyncGroupRequest>,
    generation: i32,
    members_created: u32,
    /// Members listed in the leader's JoinGroup response after the requester: (member id,
    /// subscription metadata).
    others: Vec<(String, Bytes)>,
    /// When set, this (absent) member leads and the requester follows: its JoinGroup response
    /// lists no members, and SyncGroup hands it `follower_assignment`.
    leader: Option<String>,
    follower_assignment: Bytes,
}

#[derive(Clone, Default)]
struct Coordinator(Arc<Mutex<Group>>);

impl Coordinator {
    fn install(&self, cluster: &MockCluster) {
        cluster.script_n(ApiKey::JoinGroup, 100, || {
            let me = self.clone();
            Action::respond(move |req| me.join(req))
        });
        cluster.script_n(ApiKey::SyncGroup, 100, || {
            let me = self.clone();
            Action::respond(move |req| me.sync(req))
        });
        cluster.script_n(ApiKey::Heartbeat, 5000, || {
            let me = self.clone();
            Action::respond(move |req| me.heartbeat(req))
        });
    }

    fn join(&self, req: &ScriptedRequest) -> Reply {
        let r: JoinGroupRequest = req.decode().expect("JoinGroup request decodes");
        let mut g = self.0.lock().unwrap();
        g.joins.push(r.clone());
        let member_id = if r.member_id.is_empty() {
            g.members_created += 1;
            format!("member-{}", g.members_created)
        } else {
            r.member_id.clone()
        };
        g.generation += 1;
        let protocol = r.protocols.first().expect("a protocol").clone();
        let (leader, members) = match &g.leader {
            Some(leader) => (leader.clone(), Vec::new()),
            None => {
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
                            metadata: metadata.clone(),
                            ..Default::default()
                        }),
                );
                (member_id.clone(), members)
            }
        };
        req.reply(&JoinGroupResponse {
            generation_id: g.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(protocol.name.clone()),
            leader,
            member_id,
            members,
            ..Default::default()
        })
    }

    /// The leader gets its own assignment from its request; a follower the scripted one.
    fn sync(&self, req: &ScriptedRequest) -> Reply {
        let r: SyncGroupRequest = req.decode().expect("SyncGroup request decodes");
        let mut g = self.0.lock().unwrap();
        g.syncs.push(r.clone());
        let assignment = if g.leader.is_some() {
            g.follower_assignment.clone()
        } else {
            r.assignments
                .iter()
                .find(|a| a.member_id == r.member_id)
                .map(|a| a.assignment.clone())
                .unwrap_or_default()
        };
        req.reply(&SyncGroupResponse {
            protocol_type: r.protocol_type.clone(),
            protocol_name: r.protocol_name.clone(),
            assignment,
            ..Default::default()
        })
    }

    fn heartbeat(&self, req: &ScriptedRequest) -> Reply {
        let r: HeartbeatRequest = req.decode().expect("Heartbeat request decodes");
        let g = self.0.lock().unwrap();
        let code = if r.generation_id != g.generation {
            ErrorCode::ILLEGAL_GENERATION
        } else {
            ErrorCode::NONE
        };
        req.reply(&HeartbeatResponse {
            error_code: code.0,
            ..Default::default()
        })
    }

    fn syncs(&self) -> Vec<SyncGroupRequest> {
        self.0.lock().unwrap().syncs.clone()
    }
}

/// What the leader's SyncGroup request gave each member.
fn sent_assignments(sync: &SyncGroupRequest) -> BTreeMap<String, Vec<Tp>> {
    sync.assignments
        .iter()
        .map(|a| {
            let mut partitions = decode_assignment(a.assignment.clone())
                .expect("assignment decodes")
                .partitions;
            partitions.sort();
            (a.member_id.clone(), partitions)
        })
        .collect()
}

fn subscription_to(topics: &[&str]) -> Bytes {
    let s = Subscription {
        topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        ..Default::default()
    };
    encode_subscription(&s, 3).expect("encode")
}

/// A v1 subscription to `TOPIC` that also claims `entries` topics, each named by
/// `name_len` bytes (`x` then the entry number) and owning `partitions` partitions.
fn hostile_subscription(entries: usize, name_len: usize, partitions: i32) -> Bytes {
    let mut b = BytesMut::new();
    b.put_i16(2);
    b.put_i32(1);
    b.put_i16(TOPIC.len() as i16);
    b.put_slice(TOPIC.as_bytes());
    b.put_i32(-1); // null user data
    b.put_i32(entries as i32);
    for e in 0..entries {
        let mut name = format!("x{e}").into_bytes();
        name.resize(name_len, b'x');
        b.put_i16(name.len() as i16);
        b.put_slice(&name);
        b.put_i32(partitions);
        for p in 0..partitions {
            b.put_i32(p);
        }
    }
    b.put_i32(1); // generation
    b.freeze()
}

/// One batch with records `v{i}` for `i` in `values`.
fn batch(values: std::ops::Range<i64>) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    for i in values {
        b.push(
            1_700_000_000_000 + i,
            None,
            Some(format!("v{i}").as_bytes()),
            &[],
        )
        .expect("push");
    }
    b.build().expect("build")
}

/// The partitions of a poll's records.
fn partitions_read(fetched: &Fetched) -> BTreeSet<i32> {
    fetched
        .partitions
        .iter()
        .filter(|p| p.records().next().is_some())
        .map(|p| p.partition)
        .collect()
}

// ---------------------------------------------------------------------------------------------
// An undecodable subscription
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_undecodable_subscription_counts_as_empty_and_the_group_goes_on() {
    within(async {
        for assignor in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
            let cluster = MockCluster::start(1).await;
            cluster.create_topic(TOPIC, 4);
            let coordinator = Coordinator::default();
            coordinator.0.lock().unwrap().others = vec![
                // Empty, a negative version, a version with nothing after it, a truncated
                // topic list, and a huge claimed topic count.
                ("member-bad-1".into(), Bytes::new()),
                (
                    "member-bad-2".into(),
                    Bytes::from_static(&[0xff, 0xfe, 0, 0]),
                ),
                ("member-bad-3".into(), Bytes::from_static(&[0, 3])),
                (
                    "member-bad-4".into(),
                    Bytes::from_static(&[0, 0, 0, 0, 0, 2, 0, 6, b'o', b'r']),
                ),
                (
                    "member-bad-5".into(),
                    Bytes::from_static(&[0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0]),
                ),
                ("member-ok".into(), subscription_to(&[TOPIC])),
            ];
            coordinator.install(&cluster);
            let client = client(&cluster, Duration::from_secs(300)).await;
            let mut consumer =
                GroupConsumer::subscribe(&client, config(assignor), &[TOPIC]).expect("subscribe");
            consumer
                .poll()
                .await
                .expect("the leader completes the join");

            let syncs = coordinator.syncs();
            assert_eq!(syncs.len(), 1, "{assignor}");
            let sent = sent_assignments(&syncs[0]);
            assert_eq!(sent.len(), 7, "{assignor}: an entry per member: {sent:?}");
            for i in 1..=5 {
                assert!(
                    sent[&format!("member-bad-{i}")].is_empty(),
                    "{assignor}: {sent:?}"
                );
            }
            let mut all: Vec<Tp> = sent["member-1"].clone();
            all.extend(sent["member-ok"].iter().cloned());
            all.sort();
            assert_eq!(
                all,
                tps(&[(TOPIC, 0), (TOPIC, 1), (TOPIC, 2), (TOPIC, 3)]),
                "{assignor}: the readable members share the topic"
            );
            assert_eq!(sent["member-1"].len(), 2, "{assignor}: {sent:?}");
            assert_eq!(consumer.assignment(), sent["member-1"], "{assignor}");

            // The group goes on: no error, no further rebalance.
            for _ in 0..3 {
                consumer.poll().await.expect("poll");
            }
            assert_eq!(cluster.request_count(ApiKey::JoinGroup), 1, "{assignor}");
            consumer.close().await.expect("close");
        }
    })
    .await;
}

#[tokio::test]
async fn a_member_claiming_a_huge_topic_does_not_stop_the_leader() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic(TOPIC, 4);
        let coordinator = Coordinator::default();
        let big = hostile_subscription(1, i16::MAX as usize, 8_000);
        assert!(big.len() < 64 * 1024);
        coordinator.0.lock().unwrap().others = vec![("member-big".into(), big)];
        coordinator.install(&cluster);
        let client = client(&cluster, Duration::from_secs(300)).await;
        let mut consumer =
            GroupConsumer::subscribe(&client, config("cooperative-sticky"), &[TOPIC])
                .expect("subscribe");
        consumer
            .poll()
            .await
            .expect("the leader completes the join");
        let sent = sent_assignments(&coordinator.syncs()[0]);
        assert_eq!(sent["member-1"].len(), 2, "{sent:?}");
        assert_eq!(sent["member-big"].len(), 2, "{sent:?}");
        consumer.close().await.expect("close");
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Memory bounded by the input
// ---------------------------------------------------------------------------------------------

#[test]
fn a_64k_subscription_with_a_32k_topic_name_is_held_once() {
    let bytes = hostile_subscription(1, i16::MAX as usize, 8_000);
    assert!(bytes.len() < 64 * 1024);
    let s = decode_subscription_by_topic(bytes.clone()).expect("decodes");
    assert_eq!(s.owned_partitions.len(), 1);
    assert_eq!(s.owned_partitions[0].partitions.len(), 8_000);
    let held = s.owned_partitions.capacity() * std::mem::size_of_val(&s.owned_partitions[0])
        + s.owned_partitions
            .iter()
            .map(|g| g.topic.capacity() + 4 * g.partitions.capacity())
            .sum::<usize>()
        + s.topics.iter().map(|t| t.capacity() + 24).sum::<usize>();
    assert!(
        held <= 2 * bytes.len(),
        "{held} bytes held for {} bytes of input",
        bytes.len()
    );
    // The assignor input takes it over as is.
    let m = MemberSubscription::from_subscription_by_topic(s, None);
    assert_eq!(m.owned().count(), 8_000);
    // The flat form (a copy of the name per partition: 262 MB) is refused, not built.
    let e = decode_subscription(bytes).expect_err("too large as flat pairs");
    assert!(
        e.to_string().contains("decode_subscription_by_topic"),
        "{e}"
    );
}

/// Environment variable that makes [`child_measurement`] run a case (in a child process).
const CHILD_CASE: &str = "KAFKAWIRE_GROUP_HOSTILE_CASE";

/// A field of `/proc/self/status` in KiB.
fn proc_status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// Runs `case` in a child process (this test binary running only [`child_measurement`]) and
/// returns how far its resident memory rose above where it stood just before the case (peak
/// RSS, KiB), or `None` where `/proc` cannot tell.
fn peak_rss_kib_of(case: &str) -> Option<u64> {
    proc_status_kib("VmHWM")?;
    let out = std::process::Command::new(std::env::current_exe().ok()?)
        .args([
            "child_measurement",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_CASE, case)
        .output()
        .expect("run the child");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "child {case} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("PEAK_RISE_KIB="))
        .map(|v| v.trim().parse().expect("a number"))
}

/// The child side of [`peak_rss_kib_of`]: does nothing unless [`CHILD_CASE`] is set.
#[test]
fn child_measurement() {
    let Ok(case) = std::env::var(CHILD_CASE) else {
        return;
    };
    // Inputs are built before the measurement starts.
    let input = match case.as_str() {
        "subscriptions" => Some(hostile_subscription(256, i16::MAX as usize, 8_000)),
        _ => None,
    };
    let members_20k: BTreeMap<String, MemberSubscription> = (0..20_000)
        .map(|i| (format!("m{i:05}"), MemberSubscription::new([TOPIC])))
        .collect();
    let partitions = BTreeMap::from([(TOPIC.to_owned(), 10)]);
    // Reset the high-water mark where the kernel allows (Linux 4.0+); otherwise it includes
    // what came before, which only overstates the rise.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = proc_status_kib("VmRSS").expect("VmRSS");
    match case.as_str() {
        "subscriptions" => {
            let bytes = input.expect("input");
            let s = decode_subscription_by_topic(bytes).expect("decodes");
            assert_eq!(s.owned_partitions.len(), 256);
            let mut members = BTreeMap::from([
                (
                    "big".to_owned(),
                    MemberSubscription::from_subscription_by_topic(s, None),
                ),
                ("a".to_owned(), MemberSubscription::new([TOPIC])),
            ]);
            members.get_mut("a").unwrap().generation_id = 1;
            let partitions = BTreeMap::from([(TOPIC.to_owned(), 4)]);
            for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
                let plan = by_name(name).unwrap().assign(&partitions, &members);
                assert_eq!(plan.values().map(Vec::len).sum::<usize>(), 4, "{name}");
            }
            drop(members);
        }
        "sticky_20k" => {
            for name in ["sticky", "cooperative-sticky"] {
                let plan = by_name(name).unwrap().assign(&partitions, &members_20k);
                assert_eq!(plan.len(), 20_000);
                assert_eq!(plan.values().map(Vec::len).sum::<usize>(), 10);
            }
        }
        other => panic!("unknown case {other}"),
    }
    let peak = proc_status_kib("VmHWM").expect("VmHWM");
    println!("PEAK_RISE_KIB={}", peak.saturating_sub(before));
}

#[test]
fn decoding_and_assigning_hostile_subscriptions_peaks_at_a_few_times_their_size() {
    // 256 topics of 32 KiB names, each with 8,000 owned partitions: 16 MiB sent. A copy of the
    // name per partition would take 67 GB.
    let input = hostile_subscription(256, i16::MAX as usize, 8_000).len() as u64;
    let Some(rise) = peak_rss_kib_of("subscriptions") else {
        eprintln!("skipped: /proc/self/status is not available");
        return;
    };
    let bound = 3 * input / 1024 + 8 * 1024;
    assert!(
        rise <= bound,
        "peak RSS rose {rise} KiB for {} KiB of input (bound {bound} KiB)",
        input / 1024
    );
}

#[test]
fn the_sticky_assignors_memory_does_not_grow_with_members_squared() {
    // 20,000 members and 10 partitions: a member-pair matrix would be 400 million entries
    // (1.6 GB); the plan needs a few MB.
    let started = Instant::now();
    let Some(rise) = peak_rss_kib_of("sticky_20k") else {
        eprintln!("skipped: /proc/self/status is not available");
        return;
    };
    assert!(rise <= 64 * 1024, "peak RSS rose {rise} KiB");
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

#[test]
fn sticky_with_a_thousand_members_and_ten_partitions_is_quick() {
    let partitions = BTreeMap::from([(TOPIC.to_owned(), 10)]);
    let mut members: BTreeMap<String, MemberSubscription> = (0..1_000)
        .map(|i| (format!("m{i:04}"), MemberSubscription::new([TOPIC])))
        .collect();
    let started = Instant::now();
    for name in ["sticky", "cooperative-sticky"] {
        let first = by_name(name).unwrap().assign(&partitions, &members);
        assert_eq!(first.values().map(Vec::len).sum::<usize>(), 10);
        // Everyone rejoins with what it had (one member gone): the partitions stay put but
        // the gone member's, which goes to someone with none.
        for (id, m) in members.iter_mut() {
            m.owned_partitions = by_topic(&first[id]);
            m.generation_id = 1;
        }
        let gone = first.iter().find(|(_, l)| !l.is_empty()).unwrap().0.clone();
        let mut rest = members.clone();
        rest.remove(&gone);
        let second = by_name(name).unwrap().assign(&partitions, &rest);
        for (id, list) in &second {
            assert!(list.len() <= 1);
            if !first[id].is_empty() {
                assert_eq!(list, &first[id], "{name}: {id} moved");
            }
        }
        for m in members.values_mut() {
            m.owned_partitions.clear();
            m.generation_id = -1;
        }
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
}

// ---------------------------------------------------------------------------------------------
// Metadata: unknown partitions in an assignment, topics gaining partitions
// ---------------------------------------------------------------------------------------------

/// A follower whose scripted leader assigns `partitions`.
async fn follower(
    cluster: &MockCluster,
    partitions: &[(&str, i32)],
    metadata_max_age: Duration,
) -> (Client, Coordinator) {
    let coordinator = Coordinator::default();
    {
        let mut g = coordinator.0.lock().unwrap();
        g.leader = Some("member-leader".into());
        g.follower_assignment = encode_assignment(
            &Assignment {
                partitions: tps(partitions),
                user_data: None,
            },
            3,
        )
        .expect("encode");
    }
    coordinator.install(cluster);
    (client(cluster, metadata_max_age).await, coordinator)
}

#[tokio::test]
async fn an_assignment_naming_an_unknown_partition_refreshes_metadata_once_without_a_rebalance() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic(TOPIC, 2);
        cluster.create_topic("elsewhere", 1);
        let assigned = [(TOPIC, 0), (TOPIC, 1), (TOPIC, 7), ("elsewhere", 0)];
        let (client, _) = follower(&cluster, &assigned, Duration::from_secs(300)).await;
        let mut consumer =
            GroupConsumer::subscribe(&client, config("range"), &[TOPIC]).expect("subscribe");
        let metadata_before = cluster.request_count(ApiKey::Metadata);
        consumer.poll().await.expect("the join succeeds");
        // orders-7 does not exist and `elsewhere` is not subscribed: both left out.
        assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
        assert_eq!(
            cluster.request_count(ApiKey::Metadata) - metadata_before,
            1,
            "one metadata refresh"
        );
        for _ in 0..5 {
            consumer.poll().await.expect("poll");
        }
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 1, "no rebalance");
        assert_eq!(cluster.request_count(ApiKey::SyncGroup), 1);
        assert_eq!(cluster.request_count(ApiKey::Metadata) - metadata_before, 1);
        consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_partition_the_cache_does_not_know_yet_is_taken_after_one_refresh() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic(TOPIC, 2);
        let assigned = [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)];
        let (client, _) = follower(&cluster, &assigned, Duration::from_secs(300)).await;
        // The member's cache knows two partitions; the leader already saw the third.
        client.refresh_metadata(&[TOPIC]).await.expect("metadata");
        cluster.create_topic(TOPIC, 3);
        let mut consumer =
            GroupConsumer::subscribe(&client, config("range"), &[TOPIC]).expect("subscribe");
        let metadata_before = cluster.request_count(ApiKey::Metadata);
        consumer.poll().await.expect("the join succeeds");
        assert_eq!(
            consumer.assignment(),
            tps(&[(TOPIC, 0), (TOPIC, 1), (TOPIC, 2)])
        );
        assert_eq!(cluster.request_count(ApiKey::Metadata) - metadata_before, 1);
        for _ in 0..3 {
            consumer.poll().await.expect("poll");
        }
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 1, "no rebalance");
        consumer.close().await.expect("close");
    })
    .await;
}

/// Grows `TOPIC` from 2 to 4 partitions. The mock can only replace a topic, so partitions 0 and
/// 1 get their records back at the same offsets (`per_partition` each), and 2 and 3 get theirs.
fn grow_to_four(cluster: &MockCluster, per_partition: i64) {
    cluster.create_topic(TOPIC, 4);
    for p in 0..4 {
        cluster
            .append(TOPIC, p, &batch(0..per_partition))
            .expect("append");
    }
}

/// Polls until records of every partition in `want` have been read; returns the partitions
/// read.
async fn poll_until_read(consumer: &mut GroupConsumer, want: &[i32]) -> BTreeSet<i32> {
    let started = Instant::now();
    let mut read = BTreeSet::new();
    while !want.iter().all(|p| read.contains(p)) {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "read only {read:?} of {want:?}; assignment {:?}",
            consumer.assignment()
        );
        let fetched = consumer.poll().await.expect("poll");
        read.extend(partitions_read(&fetched));
    }
    read
}

#[tokio::test]
async fn a_topic_gaining_partitions_makes_the_leader_rejoin_and_read_them() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic(TOPIC, 2);
        for p in 0..2 {
            cluster.append(TOPIC, p, &batch(0..3)).expect("append");
        }
        let coordinator = Coordinator::default();
        coordinator.install(&cluster);
        let client = client(&cluster, Duration::from_millis(200)).await;
        let mut consumer =
            GroupConsumer::subscribe(&client, config("range"), &[TOPIC]).expect("subscribe");
        poll_until_read(&mut consumer, &[0, 1]).await;
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 1);

        grow_to_four(&cluster, 3);
        poll_until_read(&mut consumer, &[2, 3]).await;
        assert_eq!(
            consumer.assignment(),
            tps(&[(TOPIC, 0), (TOPIC, 1), (TOPIC, 2), (TOPIC, 3)])
        );
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2, "one rejoin");
        let syncs = coordinator.syncs();
        assert_eq!(sent_assignments(&syncs[1])["member-1"].len(), 4);

        // Stable again: no more rebalances.
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_millis(50)).await;
            consumer.poll().await.expect("poll");
        }
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2);
        consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_follower_noticing_new_partitions_rejoins_and_takes_them() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic(TOPIC, 2);
        for p in 0..2 {
            cluster.append(TOPIC, p, &batch(0..3)).expect("append");
        }
        // The leader's plan names all four partitions from the start (it saw the growth
        // first); the follower takes what its metadata confirms, then the rest once it sees
        // the growth itself.
        let all = [(TOPIC, 0), (TOPIC, 1), (TOPIC, 2), (TOPIC, 3)];
        let (client, _) = follower(&cluster, &all, Duration::from_millis(200)).await;
        let mut consumer =
            GroupConsumer::subscribe(&client, config("range"), &[TOPIC]).expect("subscribe");
        poll_until_read(&mut consumer, &[0, 1]).await;
        assert_eq!(consumer.assignment(), tps(&[(TOPIC, 0), (TOPIC, 1)]));
        for _ in 0..5 {
            consumer.poll().await.expect("poll");
        }
        assert_eq!(
            cluster.request_count(ApiKey::JoinGroup),
            1,
            "no rebalance storm"
        );

        grow_to_four(&cluster, 3);
        poll_until_read(&mut consumer, &[2, 3]).await;
        assert_eq!(consumer.assignment(), tps(&all));
        assert_eq!(cluster.request_count(ApiKey::JoinGroup), 2, "one rejoin");
        consumer.close().await.expect("close");
    })
    .await;
}
