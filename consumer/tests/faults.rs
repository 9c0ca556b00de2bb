//! The consumer under connection faults, against the in-process mock broker: fetches whose
//! connection is cut (scripted, dropped by the broker, broker stopped and restarted) or that get
//! no answer resume at the same position with every offset exactly once; commits while the
//! coordinator connection is cut are retried or fail retriably, and work once it is back; a
//! group member whose coordinator connection is cut (or whose coordinator moves) keeps its
//! membership and assignment.
//!
//! Group membership is not modelled by the mock broker: the group tests script JoinGroup,
//! SyncGroup and Heartbeat with [`Coordinator`], as `group_mock.rs` does.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkawire_client::{Client, ClientConfig, OffsetToCommit};
use kafkawire_consumer::{Consumer, ConsumerBuilder, OffsetReset, RebalanceListener};
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

const TOPIC: &str = "events";
const GROUP: &str = "audit";
/// Records read through each fetch fault.
const N: i64 = 2_000;

type Tp = (String, i32);

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), f)
        .await
        .expect("test did not finish within 10 s")
}

/// Waits (up to 4 s) until `cond` holds.
async fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(4),
            "timed out waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn client(cluster: &MockCluster, request_timeout: Duration) -> Client {
    let mut c = ClientConfig::new(&cluster.bootstrap());
    c.request_timeout = request_timeout;
    c.allow_auto_topic_creation = false;
    Client::connect(c)
        .await
        .expect("connect to the mock cluster")
}

/// Appends records `v{from}..v{to}` to a partition, 20 records per batch.
fn seed(cluster: &MockCluster, partition: i32, from: i64, to: i64) {
    let mut i = from;
    while i < to {
        let end = (i + 20).min(to);
        let mut b = RecordBatchBuilder::new();
        for j in i..end {
            b.push(
                1_700_000_000_000 + j,
                None,
                Some(format!("v{j}").as_bytes()),
                &[],
            )
            .expect("push");
        }
        let base = cluster
            .append(TOPIC, partition, &b.build().expect("build"))
            .expect("append");
        assert_eq!(base, i, "seed offsets line up with values");
        i = end;
    }
}

/// A cluster of `brokers` brokers with `TOPIC` (`partitions` partitions, all led by broker 0)
/// holding `per_partition` records in each partition.
async fn cluster(brokers: usize, partitions: i32, per_partition: i64) -> MockCluster {
    let cluster = MockCluster::start(brokers).await;
    cluster.create_topic(TOPIC, partitions);
    for p in 0..partitions {
        cluster.set_leader(TOPIC, p, 0);
        seed(&cluster, p, 0, per_partition);
    }
    cluster
}

/// A consumer of partition 0 from the earliest offset; small fetches (about 200 records each)
/// so that reading `N` records takes about ten of them.
async fn assigned(client: &Client, group: Option<&str>) -> Consumer {
    let mut b = Consumer::builder(client)
        .assign([(TOPIC, 0)])
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .fetch_max_wait(Duration::from_millis(50))
        .max_partition_fetch_bytes(4096)
        .max_poll_records(150);
    if let Some(g) = group {
        b = b.group_id(g);
    }
    b.build().await.expect("build the consumer")
}

/// One poll's records, appended to `got` as (partition, offset, value).
async fn poll_into(consumer: &mut Consumer, got: &mut Vec<(i32, i64, String)>) {
    let records = consumer
        .poll(Duration::from_millis(100))
        .await
        .expect("poll");
    assert!(
        records.resets().is_empty(),
        "no reset: {:?}",
        records.resets()
    );
    for r in &records {
        let r = r.expect("record decodes");
        let value = String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned();
        got.push((r.partition(), r.offset(), value));
    }
}

/// Every offset `0..n` of `partition`, exactly once, in order, with its own value.
fn assert_exactly_once(got: &[(i32, i64, String)], partition: i32, n: i64) {
    let mine: Vec<(i64, &str)> = got
        .iter()
        .filter(|(p, _, _)| *p == partition)
        .map(|(_, o, v)| (*o, v.as_str()))
        .collect();
    let offsets: Vec<i64> = mine.iter().map(|(o, _)| *o).collect();
    if offsets != (0..n).collect::<Vec<i64>>() {
        let dups = offsets.windows(2).filter(|w| w[1] <= w[0]).count();
        let gaps = offsets.windows(2).filter(|w| w[1] > w[0] + 1).count();
        panic!(
            "partition {partition}: {} records, {dups} repeats or reorderings, {gaps} gaps; \
             first {:?}, last {:?}",
            offsets.len(),
            offsets.first(),
            offsets.last()
        );
    }
    for (o, v) in mine {
        assert_eq!(v, format!("v{o}"), "value of offset {o}");
    }
}

/// Polls until `n` records of partition 0 arrived (or 4 s passed).
async fn read_to(consumer: &mut Consumer, got: &mut Vec<(i32, i64, String)>, n: usize) {
    let start = Instant::now();
    while got.len() < n && start.elapsed() < Duration::from_secs(4) {
        poll_into(consumer, got).await;
    }
}

/// One more poll brings nothing, late or repeated.
async fn assert_nothing_more(consumer: &mut Consumer) {
    let mut more = Vec::new();
    poll_into(consumer, &mut more).await;
    assert!(more.is_empty(), "read again: {:?}", more.first());
}

/// Scripts the next fetches up to the last fault: those numbered (from 1) in `faults` get their
/// fault, the others before them are answered as usual.
fn script_fetch_faults(cluster: &MockCluster, faults: impl IntoIterator<Item = (usize, Action)>) {
    let mut next = 1;
    for (n, fault) in faults {
        for _ in next..n {
            cluster.script(ApiKey::Fetch, Action::Delay(Duration::ZERO));
        }
        cluster.script(ApiKey::Fetch, fault);
        next = n + 1;
    }
}

fn assert_every_fault_happened(cluster: &MockCluster) {
    assert_eq!(
        cluster.pending_scripts(),
        0,
        "every scripted fault happened"
    );
}

#[tokio::test]
async fn a_fetch_whose_connection_is_dropped_is_fetched_again_from_the_same_position() {
    within(async {
        let cluster = cluster(1, 1, N).await;
        // Fetches 3, 5 (processed, then the connection cut before the answer), 8 and 9 lose
        // their connection; the others are answered as usual.
        script_fetch_faults(
            &cluster,
            [
                (3, Action::DropConnection),
                (5, Action::ProcessThenDrop),
                (8, Action::DropConnection),
                (9, Action::DropConnection),
            ],
        );
        let client = client(&cluster, Duration::from_secs(5)).await;
        let mut consumer = assigned(&client, None).await;
        let connections = cluster.broker(0).connections();
        let mut got = Vec::new();
        read_to(&mut consumer, &mut got, N as usize).await;
        assert_exactly_once(&got, 0, N);
        assert_every_fault_happened(&cluster);
        assert!(
            cluster.broker(0).connections() >= connections + 4,
            "each cut connection was replaced by a new one"
        );
        assert_eq!(consumer.position(TOPIC, 0), Some(N));
    })
    .await;
}

#[tokio::test]
async fn a_broker_dropping_its_connections_mid_fetch_loses_and_repeats_nothing() {
    within(async {
        let cluster = Arc::new(cluster(1, 1, N).await);
        let client = client(&cluster, Duration::from_secs(5)).await;
        let mut consumer = assigned(&client, None).await;
        let mut got = Vec::new();
        read_to(&mut consumer, &mut got, 500).await;

        // A fetch the broker holds (far longer than the test may take) when it drops every
        // connection: only the drop can end it.
        cluster.script(ApiKey::Fetch, Action::Delay(Duration::from_secs(30)));
        let c = cluster.clone();
        let dropper = tokio::spawn(async move {
            wait_until("the held fetch arrived", || c.pending_scripts() == 0).await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            c.broker(0).drop_connections();
        });
        // What is buffered and prefetched (about 400 records) cannot take it this far: a
        // fetch has to pass the held one.
        read_to(&mut consumer, &mut got, 1_300).await;
        assert!(dropper.is_finished(), "the held fetch was cut by the drop");
        dropper.await.expect("dropper");

        // And a drop at whatever moment between two polls (a prefetch may be in flight).
        cluster.broker(0).drop_connections();
        read_to(&mut consumer, &mut got, 1_600).await;
        cluster.broker(0).drop_connections();
        read_to(&mut consumer, &mut got, N as usize).await;
        assert_exactly_once(&got, 0, N);
    })
    .await;
}

#[tokio::test]
async fn a_broker_stopped_and_restarted_mid_stream_is_read_on_from_the_same_position() {
    within(async {
        let cluster = cluster(1, 1, N).await;
        let client = client(&cluster, Duration::from_secs(5)).await;
        let mut consumer = assigned(&client, None).await;
        let mut got = Vec::new();
        read_to(&mut consumer, &mut got, 1_000).await;
        let broker = cluster.broker(0).clone();
        broker.stop().await;
        let stopped_at = got.len();
        let restarter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            broker.restart().await.expect("restart on the same port");
        });
        // While the broker is down the consumer hands out what it has buffered, then polls
        // come back empty (or with what the prefetch brought before the stop).
        let start = Instant::now();
        while start.elapsed() < Duration::from_millis(200) {
            poll_into(&mut consumer, &mut got).await;
        }
        assert!(
            got.len() < N as usize,
            "the stop came before the end ({stopped_at} then {} records)",
            got.len()
        );
        restarter.await.expect("restarter");
        read_to(&mut consumer, &mut got, N as usize).await;
        assert_exactly_once(&got, 0, N);
    })
    .await;
}

#[tokio::test]
async fn a_fetch_that_gets_no_answer_is_sent_again_after_the_request_timeout() {
    within(async {
        let cluster = cluster(1, 1, N).await;
        // Two fetches never answered, and one answered only after the request timeout.
        script_fetch_faults(
            &cluster,
            [
                (3, Action::NoResponse),
                (5, Action::Delay(Duration::from_millis(800))),
                (7, Action::NoResponse),
            ],
        );
        let client = client(&cluster, Duration::from_millis(500)).await;
        let mut consumer = assigned(&client, None).await;
        let start = Instant::now();
        let mut got = Vec::new();
        read_to(&mut consumer, &mut got, N as usize).await;
        let took = start.elapsed();
        assert_exactly_once(&got, 0, N);
        assert_every_fault_happened(&cluster);
        assert!(
            took >= Duration::from_millis(1_500),
            "three fetches waited out the 500 ms request timeout, in {took:?}"
        );
        // Nothing is lost or repeated when the late answer arrives either.
        tokio::time::sleep(Duration::from_millis(400)).await;
        poll_into(&mut consumer, &mut got).await;
        assert_exactly_once(&got, 0, N);
    })
    .await;
}

// Commits of an assigned consumer under group `GROUP` after reading 300 records: what was
// committed and what `committed()` says.

/// A consumer of partition 0 under `GROUP` that has read 300 records: it, the records and its
/// position.
async fn read_300(client: &Client) -> (Consumer, Vec<(i32, i64, String)>, i64) {
    let mut consumer = assigned(client, Some(GROUP)).await;
    let mut got = Vec::new();
    read_to(&mut consumer, &mut got, 300).await;
    let position = consumer.position(TOPIC, 0).expect("position");
    (consumer, got, position)
}

/// `committed()` says `offset` for partition 0.
async fn assert_committed(consumer: &Consumer, offset: i64) {
    let committed = consumer
        .committed(&[(TOPIC.to_owned(), 0)])
        .await
        .expect("committed offsets");
    assert_eq!(committed, BTreeMap::from([((TOPIC.to_owned(), 0), offset)]));
}

#[tokio::test]
async fn a_commit_whose_connection_is_cut_is_retried() {
    within(async {
        let cluster = cluster(1, 1, N).await;
        let client = client(&cluster, Duration::from_secs(5)).await;
        let (mut consumer, _, position) = read_300(&client).await;

        cluster.script(ApiKey::OffsetCommit, Action::DropConnection);
        // Committed by the broker, but the answer is lost: committing again is harmless.
        cluster.script(ApiKey::OffsetCommit, Action::ProcessThenDrop);
        consumer.commit().await.expect("commit succeeds on a retry");
        assert_eq!(cluster.request_count(ApiKey::OffsetCommit), 3);
        assert_committed(&consumer, position).await;

        cluster.script(ApiKey::OffsetCommit, Action::DropConnection);
        consumer
            .commit_offsets(&[OffsetToCommit::new(TOPIC, 0, 42)])
            .await
            .expect("commit_offsets succeeds on a retry");
        assert_committed(&consumer, 42).await;
    })
    .await;
}

#[tokio::test]
async fn a_commit_that_keeps_losing_its_connection_fails_retriably_then_succeeds() {
    within(async {
        let cluster = cluster(1, 1, N).await;
        let client = client(&cluster, Duration::from_secs(5)).await;
        let (mut consumer, _, position) = read_300(&client).await;

        cluster.script_n(ApiKey::OffsetCommit, 100, || Action::DropConnection);
        let e = consumer
            .commit()
            .await
            .expect_err("no OffsetCommit is answered");
        assert!(e.is_retriable(), "{e}");
        assert_eq!(e.api(), Some(ApiKey::OffsetCommit), "{e}");
        assert!(e.to_string().contains("OffsetCommit"), "{e}");
        assert!(
            cluster.request_count(ApiKey::OffsetCommit) > 1,
            "it was retried before giving up"
        );

        cluster.clear_scripts();
        consumer
            .commit()
            .await
            .expect("commit once the coordinator answers");
        assert_committed(&consumer, position).await;
    })
    .await;
}

#[tokio::test]
async fn a_commit_while_the_coordinator_is_down_fails_retriably_then_succeeds_once_it_is_back() {
    within(async {
        // Broker 0 leads the partition; broker 1 is the coordinator.
        let cluster = cluster(2, 1, N).await;
        cluster.set_coordinator(1);
        let mut config = ClientConfig::new(&cluster.bootstrap());
        config.allow_auto_topic_creation = false;
        // Reconnects to the stopped coordinator back off 50 ms, 100 ms, then 150 ms, so that
        // the commit's retries (8 attempts) end within about 2 s.
        config.reconnect_backoff_max = Duration::from_millis(150);
        let client = Client::connect(config).await.expect("connect");
        let (mut consumer, mut got, position) = read_300(&client).await;
        consumer
            .commit_offsets(&[OffsetToCommit::new(TOPIC, 0, 1)])
            .await
            .expect("a first commit opens the coordinator connection");

        let coordinator = cluster.broker(1).clone();
        coordinator.stop().await;
        let e = consumer
            .commit()
            .await
            .expect_err("the coordinator is down");
        assert!(e.is_retriable(), "{e}");
        assert_eq!(
            e.broker(),
            Some(cluster.broker_addr(1).as_str()),
            "names the coordinator: {e}"
        );
        // Fetching from the partition leader goes on meanwhile.
        read_to(&mut consumer, &mut got, 600).await;

        // Back within the commit's retries: the commit succeeds.
        let position_2 = consumer.position(TOPIC, 0).expect("position");
        assert!(position_2 > position);
        let c = coordinator.clone();
        let restarter = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.restart().await.expect("restart on the same port");
        });
        coordinator.stop().await;
        consumer
            .commit()
            .await
            .expect("the commit is retried until the coordinator is back");
        restarter.await.expect("restarter");
        assert_committed(&consumer, position_2).await;
    })
    .await;
}

/// The scripted group coordinator's state and the requests it saw.
#[derive(Default)]
struct Group {
    joins: Vec<JoinGroupRequest>,
    generation: i32,
    /// Heartbeats of the current generation answered successfully, by broker.
    heartbeats_ok: BTreeMap<i32, usize>,
    /// Faults for the next heartbeats, in order (then answered normally).
    heartbeat_faults: Vec<Reply>,
}

/// JoinGroup makes the requester the leader of a new generation (with itself alone); SyncGroup
/// gives it the assignment its own request carries; Heartbeat answers ILLEGAL_GENERATION for
/// another generation, else success, unless a fault is queued.
#[derive(Clone, Default)]
struct Coordinator(Arc<Mutex<Group>>);

impl Coordinator {
    fn install(&self, cluster: &MockCluster) {
        cluster.script_n(ApiKey::JoinGroup, 50, || {
            let me = self.clone();
            Action::respond(move |req| me.join(req))
        });
        cluster.script_n(ApiKey::SyncGroup, 50, || {
            Action::respond(|req| {
                let r: SyncGroupRequest = req.decode().expect("SyncGroup request decodes");
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
            })
        });
        cluster.script_n(ApiKey::Heartbeat, 5_000, || {
            let me = self.clone();
            Action::respond(move |req| me.heartbeat(req))
        });
    }

    fn join(&self, req: &ScriptedRequest) -> Reply {
        let r: JoinGroupRequest = req.decode().expect("JoinGroup request decodes");
        let mut g = self.0.lock().unwrap();
        g.joins.push(r.clone());
        g.generation += 1;
        let member_id = if r.member_id.is_empty() {
            format!("member-{}", g.joins.len())
        } else {
            r.member_id.clone()
        };
        let protocol = r.protocols.first().expect("a protocol").clone();
        req.reply(&JoinGroupResponse {
            generation_id: g.generation,
            protocol_type: Some("consumer".into()),
            protocol_name: Some(protocol.name.clone()),
            leader: member_id.clone(),
            member_id: member_id.clone(),
            members: vec![JoinGroupResponseMember {
                member_id,
                metadata: protocol.metadata.clone(),
                ..Default::default()
            }],
            ..Default::default()
        })
    }

    fn heartbeat(&self, req: &ScriptedRequest) -> Reply {
        let r: HeartbeatRequest = req.decode().expect("Heartbeat request decodes");
        let mut g = self.0.lock().unwrap();
        if !g.heartbeat_faults.is_empty() {
            return g.heartbeat_faults.remove(0);
        }
        let code = if r.generation_id == g.generation {
            *g.heartbeats_ok.entry(req.broker_id).or_default() += 1;
            ErrorCode::NONE
        } else {
            ErrorCode::ILLEGAL_GENERATION
        };
        req.reply(&HeartbeatResponse {
            error_code: code.0,
            ..Default::default()
        })
    }

    fn ok_on(&self, broker: i32) -> usize {
        let g = self.0.lock().unwrap();
        g.heartbeats_ok.get(&broker).copied().unwrap_or(0)
    }

    fn joins(&self) -> usize {
        self.0.lock().unwrap().joins.len()
    }

    /// Queues `faults` for the next heartbeats.
    fn fault_heartbeats(&self, faults: Vec<Reply>) {
        self.0.lock().unwrap().heartbeat_faults = faults;
    }

    /// Every queued heartbeat fault has happened.
    fn faults_done(&self) -> bool {
        self.0.lock().unwrap().heartbeat_faults.is_empty()
    }

    /// Waits until `n` heartbeats in all were answered successfully by `broker`.
    async fn wait_for_ok(&self, broker: i32, n: usize, what: &str) {
        wait_until(what, || self.ok_on(broker) >= n).await;
    }
}

#[derive(Debug, Default)]
struct Seen {
    assigned: Vec<Tp>,
    revoked: Vec<Tp>,
    lost: Vec<Tp>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

impl RebalanceListener for Recorder {
    fn on_partitions_revoked(&mut self, partitions: &[Tp]) {
        self.0.lock().unwrap().revoked.extend_from_slice(partitions);
    }
    fn on_partitions_assigned(&mut self, partitions: &[Tp]) {
        let mut s = self.0.lock().unwrap();
        s.assigned.extend_from_slice(partitions);
    }
    fn on_partitions_lost(&mut self, partitions: &[Tp]) {
        self.0.lock().unwrap().lost.extend_from_slice(partitions);
    }
}

const PER_PARTITION: i64 = 400;

fn both() -> Vec<Tp> {
    vec![(TOPIC.to_owned(), 0), (TOPIC.to_owned(), 1)]
}

/// A consumer of `GROUP` subscribed to `TOPIC` (heartbeats every 50 ms, no auto-commit) that
/// reports its rebalances to `listener`; the fetch sizes are left to the caller.
fn group_member(client: &Client, listener: &Recorder) -> ConsumerBuilder {
    Consumer::builder(client)
        .group_id(GROUP)
        .subscribe([TOPIC])
        .auto_offset_reset(OffsetReset::Earliest)
        .enable_auto_commit(false)
        .session_timeout(Duration::from_secs(10))
        .heartbeat_interval(Duration::from_millis(50))
        .partition_assignment_strategy(["range"])
        .rebalance_listener(listener.clone())
}

/// The member kept its generation and partitions: nothing revoked, nothing lost, one join.
fn assert_same_generation(consumer: &mut Consumer, coordinator: &Coordinator, listener: &Recorder) {
    {
        let seen = listener.0.lock().unwrap();
        assert!(
            seen.revoked.is_empty() && seen.lost.is_empty(),
            "no partition was revoked or lost: {seen:?}"
        );
        assert_eq!(seen.assigned, both(), "assigned once: {seen:?}");
    }
    assert_eq!(coordinator.joins(), 1, "no rejoin");
    let m = consumer
        .group_consumer()
        .expect("a group member")
        .membership();
    assert_eq!((m.member_id.as_str(), m.generation_id), ("member-1", 1));
}

/// A cluster whose broker 0 leads both partitions while broker 1 is the group coordinator.
async fn coordinator_on_broker_1() -> MockCluster {
    let cluster = cluster(2, 2, PER_PARTITION).await;
    cluster.set_coordinator(1);
    cluster
}

/// A member of `GROUP` under a scripted [`Coordinator`], with the record of its rebalances and
/// the records it read.
struct Member {
    consumer: Consumer,
    coordinator: Coordinator,
    listener: Recorder,
    got: Vec<(i32, i64, String)>,
}

impl Member {
    /// Installs a [`Coordinator`] on `cluster` and starts a member (heartbeats every 50 ms,
    /// request timeout 1 s) that has joined, been assigned both partitions and read some
    /// records of each.
    async fn join(cluster: &MockCluster) -> Member {
        let coordinator = Coordinator::default();
        coordinator.install(cluster);
        let listener = Recorder::default();
        let client = client(cluster, Duration::from_secs(1)).await;
        let mut consumer = group_member(&client, &listener)
            .fetch_max_wait(Duration::from_millis(20))
            .max_partition_fetch_bytes(1024)
            .max_poll_records(50)
            .build()
            .await
            .expect("build the member");
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 100 && start.elapsed() < Duration::from_secs(3) {
            poll_into(&mut consumer, &mut got).await;
        }
        assert_eq!(consumer.assignment(), both());
        assert_eq!(listener.0.lock().unwrap().assigned, both());
        Member {
            consumer,
            coordinator,
            listener,
            got,
        }
    }

    /// The member kept its generation and partitions (see [`assert_same_generation`]), and
    /// reads both partitions to the end with every offset exactly once.
    async fn assert_membership_kept(&mut self) {
        let start = Instant::now();
        while self.got.len() < 2 * PER_PARTITION as usize
            && start.elapsed() < Duration::from_secs(3)
        {
            poll_into(&mut self.consumer, &mut self.got).await;
        }
        assert_exactly_once(&self.got, 0, PER_PARTITION);
        assert_exactly_once(&self.got, 1, PER_PARTITION);
        assert_same_generation(&mut self.consumer, &self.coordinator, &self.listener);
        assert_eq!(self.consumer.assignment(), both());
    }
}

#[tokio::test]
async fn a_heartbeat_whose_connection_is_cut_keeps_the_membership() {
    within(async {
        let cluster = cluster(1, 2, PER_PARTITION).await;
        let mut m = Member::join(&cluster).await;

        // Two heartbeats lose their connection, one is never answered (the member's 1 s
        // request timeout ends it), then another loses its connection.
        let connections = cluster.broker(0).connections();
        m.coordinator.fault_heartbeats(vec![
            Reply::Close,
            Reply::Close,
            Reply::Nothing,
            Reply::Close,
        ]);
        let ok = m.coordinator.ok_on(0);
        wait_until("heartbeats are answered again after the faults", || {
            m.coordinator.faults_done() && m.coordinator.ok_on(0) >= ok + 3
        })
        .await;
        assert!(
            cluster.broker(0).connections() >= connections + 4,
            "each cut connection was replaced"
        );
        m.assert_membership_kept().await;
        m.consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_coordinator_dropping_its_connections_keeps_the_membership() {
    within(async {
        let cluster = coordinator_on_broker_1().await;
        let mut m = Member::join(&cluster).await;
        // Dropped between two heartbeats, then while the coordinator holds one (unanswered:
        // only the drop ends it before the member's 1 s request timeout).
        for held in [false, true] {
            let ok = m.coordinator.ok_on(1);
            if held {
                m.coordinator.fault_heartbeats(vec![Reply::Nothing]);
                wait_until("a heartbeat is held", || m.coordinator.faults_done()).await;
            }
            cluster.broker(1).drop_connections();
            m.coordinator
                .wait_for_ok(1, ok + 3, "heartbeats are answered again")
                .await;
        }
        m.assert_membership_kept().await;
        m.consumer.close().await.expect("close");
    })
    .await;
}

#[tokio::test]
async fn a_coordinator_that_goes_down_is_found_again_and_the_membership_kept() {
    within(async {
        // Broker 1 is the coordinator until it stops, when the group moves to broker 0 (as
        // its coordinator partition's leadership would).
        let cluster = coordinator_on_broker_1().await;
        let mut m = Member::join(&cluster).await;
        m.coordinator
            .wait_for_ok(1, 2, "heartbeats reach broker 1")
            .await;

        cluster.broker(1).stop().await;
        cluster.set_coordinator(0);
        m.coordinator
            .wait_for_ok(0, 3, "heartbeats reach the new coordinator")
            .await;
        m.assert_membership_kept().await;
        // The new coordinator also takes commits.
        m.consumer
            .commit()
            .await
            .expect("commit to the new coordinator");
        let committed = m
            .consumer
            .committed(&both())
            .await
            .expect("committed offsets");
        assert_eq!(
            committed,
            BTreeMap::from([
                ((TOPIC.to_owned(), 0), PER_PARTITION),
                ((TOPIC.to_owned(), 1), PER_PARTITION)
            ])
        );
        m.consumer.close().await.expect("close");
    })
    .await;
}

// Blackholes through a `FaultProxy`: a connection that goes silent (half-open) mid-stream.
// The blackholed connection stays silent forever (as a dead NAT entry), so the consumer must
// notice the silence by the request timeout, drop the connection and read on over a new one.

use kafkawire_client::BrokerAddressMap;
use kafkawire_testkit::proxy::FaultProxy;

/// The request timeout of the blackhole tests.
const BLACKHOLE_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How long the proxy stays blackholed.
const BLACKHOLE_FOR: Duration = Duration::from_millis(300);
/// Records per partition read through a blackhole by the group member.
const BLACKHOLE_PER_PARTITION: i64 = 1_000;
/// The longest pause in the records a blackhole may cause: the fetch caught in it fails after
/// the request timeout, then the next one goes out at once over a new connection (after at most
/// a brief wait for the metadata refresh, itself stuck on the blackholed bootstrap connection).
/// Tighter than the request timeout + 1 s it must stay under: a poll that waited for that
/// refresh to time out as well stalled for two request timeouts (about 1,010 ms).
const BLACKHOLE_MAX_GAP: Duration = Duration::from_millis(900);

/// A proxy in front of broker 0 (the only broker) and a client (request timeout 500 ms) that
/// reaches the cluster only through it.
async fn through_proxy(cluster: &MockCluster, seed: u64) -> (Arc<FaultProxy>, Client) {
    let broker = cluster.broker_addr(0);
    let proxy = FaultProxy::start(broker.as_str(), seed)
        .await
        .expect("proxy");
    let mut map = BrokerAddressMap::default();
    map.insert(&broker, &proxy.addr().to_string()).expect("map");
    let mut c = ClientConfig::new(&proxy.addr().to_string());
    c.address_map = map;
    c.request_timeout = BLACKHOLE_REQUEST_TIMEOUT;
    c.allow_auto_topic_creation = false;
    let client = Client::connect(c).await.expect("connect through the proxy");
    (Arc::new(proxy), client)
}

/// What a read through a blackhole saw: every record as (partition, offset, value), and when
/// the blackhole ended.
struct ThroughBlackhole {
    got: Vec<(i32, i64, String)>,
    /// Time from the last non-empty poll that ended before the blackhole was lifted to the
    /// first non-empty poll after it.
    gap: Duration,
    /// Time from the end of the blackhole to the first non-empty poll after it.
    recovery: Duration,
    /// Records read before the blackhole started.
    before: usize,
}

impl ThroughBlackhole {
    /// Prints what the read of `who` saw.
    fn report(&self, who: &str) {
        eprintln!(
            "{who}: {} records before the blackhole; gap {:?}, recovered {:?} after it ended",
            self.before, self.gap, self.recovery
        );
    }

    /// Records resumed within [`BLACKHOLE_MAX_GAP`] of the last ones before the blackhole.
    fn assert_gap_within_limit(&self) {
        assert!(
            self.gap < BLACKHOLE_MAX_GAP,
            "records resumed {:?} after the last ones before the blackhole ended (at most \
             {BLACKHOLE_MAX_GAP:?}: one request timeout and a reconnect)",
            self.gap
        );
    }
}

/// Polls `consumer` until `total` records arrived, blackholing `proxy` for [`BLACKHOLE_FOR`]
/// once `blackhole_at` records were read.
async fn read_through_blackhole(
    consumer: &mut Consumer,
    proxy: &Arc<FaultProxy>,
    blackhole_at: usize,
    total: usize,
) -> ThroughBlackhole {
    let mut got = Vec::new();
    // When each poll that brought records ended.
    let mut polls: Vec<Instant> = Vec::new();
    let mut lifter = None;
    let mut before = 0;
    let start = Instant::now();
    while got.len() < total {
        assert!(
            start.elapsed() < Duration::from_secs(6),
            "read only {} of {total} records",
            got.len()
        );
        if lifter.is_none() && got.len() >= blackhole_at {
            before = got.len();
            proxy.blackhole(true);
            let p = proxy.clone();
            lifter = Some(tokio::spawn(async move {
                tokio::time::sleep(BLACKHOLE_FOR).await;
                p.blackhole(false);
                Instant::now()
            }));
        }
        let n = got.len();
        poll_into(consumer, &mut got).await;
        if got.len() > n {
            polls.push(Instant::now());
        }
    }
    let lifted = lifter
        .expect("the blackhole happened")
        .await
        .expect("lifter");
    let last_before = polls
        .iter()
        .copied()
        .rfind(|t| *t < lifted)
        .expect("records before the blackhole ended");
    let first_after = polls
        .iter()
        .copied()
        .find(|t| *t >= lifted)
        .expect("records after the blackhole ended");
    ThroughBlackhole {
        got,
        gap: first_after - last_before,
        recovery: first_after - lifted,
        before,
    }
}

#[tokio::test]
async fn an_assigned_consumer_reads_on_after_a_blackhole_within_the_request_timeout() {
    within(async {
        let cluster = cluster(1, 1, N).await;
        let (proxy, client) = through_proxy(&cluster, 21).await;
        let mut consumer = assigned(&client, None).await;
        let accepted = proxy.stats().accepted;
        let r = read_through_blackhole(&mut consumer, &proxy, N as usize / 2, N as usize).await;
        r.report("assigned");
        assert!(r.before < N as usize, "the blackhole came mid-stream");
        assert_exactly_once(&r.got, 0, N);
        r.assert_gap_within_limit();
        assert!(
            proxy.stats().accepted > accepted,
            "the silent connection was replaced by a new one"
        );
        assert_eq!(consumer.position(TOPIC, 0), Some(N));
        // Nothing more comes, late or repeated.
        assert_nothing_more(&mut consumer).await;
    })
    .await;
}

#[tokio::test]
async fn a_group_member_reads_on_after_a_blackhole_and_keeps_its_membership() {
    within(async {
        let cluster = cluster(1, 2, BLACKHOLE_PER_PARTITION).await;
        let coordinator = Coordinator::default();
        coordinator.install(&cluster);
        let (proxy, client) = through_proxy(&cluster, 22).await;
        let listener = Recorder::default();
        let mut consumer = group_member(&client, &listener)
            .fetch_max_wait(Duration::from_millis(50))
            .max_partition_fetch_bytes(4096)
            .max_poll_records(150)
            .build()
            .await
            .expect("build the member");
        let total = 2 * BLACKHOLE_PER_PARTITION as usize;
        let r = read_through_blackhole(&mut consumer, &proxy, total / 2, total).await;
        r.report("group");
        assert!(r.before < total, "the blackhole came mid-stream");
        assert_exactly_once(&r.got, 0, BLACKHOLE_PER_PARTITION);
        assert_exactly_once(&r.got, 1, BLACKHOLE_PER_PARTITION);
        r.assert_gap_within_limit();
        // Heartbeats go on after the blackhole (over a new coordinator connection), and the
        // member kept its generation and partitions.
        let ok = coordinator.ok_on(0);
        coordinator
            .wait_for_ok(0, ok + 3, "heartbeats are answered after the blackhole")
            .await;
        assert_same_generation(&mut consumer, &coordinator, &listener);
        assert_nothing_more(&mut consumer).await;
        consumer.close().await.expect("close");
    })
    .await;
}
