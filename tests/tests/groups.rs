//! The group consumer against a real broker: partition split, leave and eviction rebalances,
//! cooperative rebalancing, committed offsets across restarts, auto commit, and leaving the
//! group for polling too slowly.
//!
//! Tansu completes a JoinGroup only after about max(1 s, session_timeout / 2), so these tests use
//! session timeouts of 2-4 s and short heartbeats. Every wait is bounded.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use kafkawire::{
    Admin, Client, Error, GroupConfig, GroupConsumer, OffsetReset, Producer, ProducerRecord,
    RebalanceListener,
};
use tokio::task::JoinHandle;

type Tp = (String, i32);

/// How long a test waits for a group to reach the state it expects.
const SETTLE_DEADLINE: Duration = Duration::from_secs(25);

/// How long a split must hold, across polls of both members, to count as settled (longer than a
/// few heartbeats, so that a rebalance still pending would have been noticed).
const STABLE_FOR: Duration = Duration::from_millis(1200);

fn config(group: &str) -> GroupConfig {
    let mut c = GroupConfig::new(group);
    c.session_timeout = Duration::from_secs(4);
    c.heartbeat_interval = Duration::from_millis(400);
    c.max_poll_interval = Duration::from_secs(20);
    c.auto_offset_reset = OffsetReset::Earliest;
    c.fetch.fetch_max_wait = Duration::from_millis(100);
    c
}

fn partitions(topic: &str, n: i32) -> BTreeSet<Tp> {
    (0..n).map(|p| (topic.to_owned(), p)).collect()
}

fn set(v: &[Tp]) -> BTreeSet<Tp> {
    v.iter().cloned().collect()
}

/// Whether `a` and `b` split `all`: both non-empty, disjoint, together all of it.
fn split(a: &BTreeSet<Tp>, b: &BTreeSet<Tp>, all: &BTreeSet<Tp>) -> bool {
    !a.is_empty()
        && !b.is_empty()
        && a.is_disjoint(b)
        && a.union(b).cloned().collect::<BTreeSet<_>>() == *all
}

/// A group member polling in a task of its own, as an application would, publishing its
/// generation and assignment after every poll.
struct Poller {
    stop: Arc<AtomicBool>,
    state: Arc<Mutex<(i32, BTreeSet<Tp>)>>,
    handle: JoinHandle<Result<GroupConsumer, String>>,
}

impl Poller {
    fn spawn(mut consumer: GroupConsumer, name: &'static str) -> Poller {
        let stop = Arc::new(AtomicBool::new(false));
        let state = Arc::new(Mutex::new((-1, BTreeSet::new())));
        let (s, st) = (stop.clone(), state.clone());
        let handle = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                if let Err(e) = consumer.poll().await {
                    return Err(format!("member {name}: poll failed: {e}"));
                }
                *st.lock().unwrap() = (
                    consumer.membership().generation_id,
                    set(&consumer.assignment()),
                );
            }
            Ok(consumer)
        });
        Poller {
            stop,
            state,
            handle,
        }
    }

    fn assignment(&self) -> BTreeSet<Tp> {
        self.state.lock().unwrap().1.clone()
    }

    fn generation(&self) -> i32 {
        self.state.lock().unwrap().0
    }

    fn check_alive(&self) {
        assert!(
            !self.handle.is_finished(),
            "a poller stopped early (a poll failed)"
        );
    }

    /// Stops polling and hands the consumer back.
    async fn stop(self) -> GroupConsumer {
        self.stop.store(true, Ordering::SeqCst);
        match self.handle.await.expect("poller task") {
            Ok(c) => c,
            Err(e) => panic!("{e}"),
        }
    }
}

/// Waits until `cond` holds continuously for [`STABLE_FOR`]; fails after [`SETTLE_DEADLINE`]
/// with `what` and the last state `describe` gives.
async fn settle(what: &str, mut cond: impl FnMut() -> bool, describe: impl Fn() -> String) {
    let start = Instant::now();
    let mut since: Option<Instant> = None;
    loop {
        if cond() {
            let s = *since.get_or_insert_with(Instant::now);
            if s.elapsed() >= STABLE_FOR {
                return;
            }
        } else {
            since = None;
        }
        assert!(
            start.elapsed() < SETTLE_DEADLINE,
            "{what}: not reached within {SETTLE_DEADLINE:?}; last state: {}",
            describe()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until two pollers split `all`.
async fn settle_split(a: &Poller, b: &Poller, all: &BTreeSet<Tp>) {
    settle(
        "two members split the partitions",
        || {
            a.check_alive();
            b.check_alive();
            split(&a.assignment(), &b.assignment(), all)
        },
        || format!("a {:?} / b {:?}", a.assignment(), b.assignment()),
    )
    .await;
}

/// Waits until one poller holds all of `all`.
async fn settle_all(who: &Poller, all: &BTreeSet<Tp>, what: &str) {
    settle(
        what,
        || {
            who.check_alive();
            who.assignment() == *all
        },
        || format!("{:?}", who.assignment()),
    )
    .await;
}

async fn setup(topic_base: &str, partitions: i32) -> (common::TestBroker, Client, String, String) {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic(topic_base);
    let group = broker.topic(&format!("{topic_base}-group"));
    common::create_topic(&client, &topic, partitions).await;
    (broker, client, topic, group)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_members_split_then_one_leaves_and_the_other_takes_everything() {
    let (broker, client, topic, group) = setup("split-leave", 4).await;
    let all = partitions(&topic, 4);
    // A client per member, as for separate processes.
    let client_b = common::connect(&broker).await;
    let a = GroupConsumer::subscribe(&client, config(&group), &[&topic]).unwrap();
    let b = GroupConsumer::subscribe(&client_b, config(&group), &[&topic]).unwrap();
    let (a, b) = (Poller::spawn(a, "a"), Poller::spawn(b, "b"));
    settle_split(&a, &b, &all).await;

    let b = b.stop().await;
    let left = Instant::now();
    b.close().await.expect("close (commit and leave)");
    settle_all(
        &a,
        &all,
        "the remaining member gets every partition after a leave",
    )
    .await;
    eprintln!("rebalance after a leave took {:?}", left.elapsed());
    a.stop().await.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_killed_without_leaving_is_evicted_after_the_session_timeout() {
    let (broker, client, topic, group) = setup("evict", 4).await;
    let all = partitions(&topic, 4);
    let mut cfg = config(&group);
    cfg.session_timeout = Duration::from_secs(3);
    cfg.heartbeat_interval = Duration::from_millis(300);
    // Its own client, as for a separate process.
    let client_b = common::connect(&broker).await;
    let a = GroupConsumer::subscribe(&client, cfg.clone(), &[&topic]).unwrap();
    let b = GroupConsumer::subscribe(&client_b, cfg.clone(), &[&topic]).unwrap();
    let (a, b) = (Poller::spawn(a, "a"), Poller::spawn(b, "b"));
    settle_split(&a, &b, &all).await;

    // Kill b: its task (and with it the consumer and its heartbeat task) is aborted; no
    // LeaveGroup, no commit.
    b.handle.abort();
    assert!(b.handle.await.is_err_and(|e| e.is_cancelled()));
    drop(client_b);
    let killed = Instant::now();
    settle(
        "the survivor gets every partition after the eviction",
        || {
            a.check_alive();
            a.assignment() == all
        },
        || format!("{:?}", a.assignment()),
    )
    .await;
    let took = killed.elapsed() - STABLE_FOR;
    eprintln!("eviction rebalance after {took:?}");
    // The group cannot know before the session timeout expires (allowing for a coarse timer).
    assert!(
        took >= cfg.session_timeout / 2,
        "the survivor got everything {took:?} after the kill, before the session timeout"
    );
    a.stop().await.close().await.expect("close");
}

/// What a listener saw.
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cooperative_sticky_revokes_only_the_partitions_that_move() {
    let (broker, client, topic, group) = setup("coop", 4).await;
    let all = partitions(&topic, 4);
    let mut cfg = config(&group);
    cfg.partition_assignment_strategy = vec!["cooperative-sticky".into()];

    let mut a = GroupConsumer::subscribe(&client, cfg.clone(), &[&topic]).unwrap();
    let seen = Recorder::default();
    a.set_rebalance_listener(seen.clone());
    let a = Poller::spawn(a, "a");
    settle_all(&a, &all, "a lone member gets every partition").await;
    let before = a.assignment();
    {
        let mut s = seen.0.lock().unwrap();
        assert_eq!(set(&s.assigned), all, "{s:?}");
        assert!(s.revoked.is_empty() && s.lost.is_empty(), "{s:?}");
        *s = Seen::default();
    }

    let client_b = common::connect(&broker).await;
    let b = GroupConsumer::subscribe(&client_b, cfg, &[&topic]).unwrap();
    let b = Poller::spawn(b, "b");
    settle_split(&a, &b, &all).await;
    let after = a.assignment();
    let s = std::mem::take(&mut *seen.0.lock().unwrap());
    let moved: BTreeSet<Tp> = before.difference(&after).cloned().collect();
    assert!(
        after.is_subset(&before),
        "a gained partitions: {before:?} -> {after:?}"
    );
    assert!(
        s.lost.is_empty(),
        "nothing is lost in a cooperative rebalance: {s:?}"
    );
    assert!(
        s.assigned.is_empty(),
        "a was assigned nothing new, yet saw {s:?}"
    );
    let revoked = set(&s.revoked);
    assert_eq!(
        s.revoked.len(),
        revoked.len(),
        "a partition was revoked twice: {s:?}"
    );
    assert!(
        revoked.is_disjoint(&after),
        "retained partitions were revoked: revoked {revoked:?}, kept {after:?}"
    );
    assert_eq!(
        revoked, moved,
        "exactly the partitions that moved are revoked"
    );
    let a = a.stop().await;
    let b = b.stop().await;
    a.close().await.expect("close a");
    b.close().await.expect("close b");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_that_has_settled_stops_rebalancing() {
    let (broker, client, topic, group) = setup("stable", 4).await;
    let all = partitions(&topic, 4);
    let a = GroupConsumer::subscribe(&client, config(&group), &[&topic]).unwrap();
    let a = Poller::spawn(a, "a");
    settle_all(&a, &all, "a lone member gets every partition").await;
    // A second member joins: one rebalance (two with a cooperative follow-up) and then none,
    // as nobody joins or leaves any more.
    let client_b = common::connect(&broker).await;
    let b = GroupConsumer::subscribe(&client_b, config(&group), &[&topic]).unwrap();
    let b = Poller::spawn(b, "b");
    settle(
        "two members split the partitions in one generation",
        || {
            a.check_alive();
            b.check_alive();
            a.generation() == b.generation() && split(&a.assignment(), &b.assignment(), &all)
        },
        || {
            format!(
                "a gen {} {:?} / b gen {} {:?}",
                a.generation(),
                a.assignment(),
                b.generation(),
                b.assignment()
            )
        },
    )
    .await;
    let settled = a.generation();
    // Several JoinGroup rounds (about 2 s each on Tansu) and heartbeats.
    tokio::time::sleep(Duration::from_secs(6)).await;
    a.check_alive();
    b.check_alive();
    assert_eq!(
        (a.generation(), b.generation()),
        (settled, settled),
        "the group kept rebalancing with no member joining or leaving"
    );
    a.stop().await.close().await.expect("close a");
    b.stop().await.close().await.expect("close b");
}

/// Produces `per_partition` records `p{p}-{i}` to every partition of `topic`.
async fn produce(client: &Client, topic: &str, partitions: i32, per_partition: i32, from: i32) {
    let producer = Producer::builder(client).build().unwrap();
    let records: Vec<ProducerRecord> = (0..partitions)
        .flat_map(|p| {
            (from..from + per_partition)
                .map(move |i| ProducerRecord::new(topic, format!("p{p}-{i}")).partition(p))
        })
        .collect();
    producer.send_batch(records).await.unwrap();
    producer.close(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_offsets_are_committed_on_close_and_a_new_member_resumes_right_after_them() {
    const PARTITIONS: i32 = 3;
    const TOTAL: i64 = 20;
    const PROCESSED: i64 = 7;
    let (_broker, client, topic, group) = setup("resume", PARTITIONS).await;
    produce(&client, &topic, PARTITIONS, TOTAL as i32, 0).await;
    let mut cfg = config(&group);
    cfg.enable_auto_commit = false;

    // First member: processes (and stores) only the first PROCESSED records of each partition,
    // although polls return more.
    let mut first = GroupConsumer::subscribe(&client, cfg.clone(), &[&topic]).unwrap();
    let mut processed: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let start = Instant::now();
    while (0..PARTITIONS).any(|p| processed.get(&p).map_or(0, Vec::len) < PROCESSED as usize) {
        assert!(
            start.elapsed() < SETTLE_DEADLINE,
            "processed only {processed:?}"
        );
        let fetched = first.poll().await.expect("poll");
        for part in &fetched.partitions {
            for r in part.records() {
                let offset = r.expect("record").offset();
                let done = processed.entry(part.partition).or_default();
                if (done.len() as i64) < PROCESSED {
                    done.push(offset);
                    first.store_offset(&part.topic, part.partition, offset + 1);
                }
            }
        }
    }
    for p in 0..PARTITIONS {
        assert_eq!(
            processed[&p],
            (0..PROCESSED).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    first
        .close()
        .await
        .expect("close commits the stored offsets");
    let committed = Admin::new(&client)
        .committed_offsets(&group, None)
        .await
        .expect("committed offsets");
    let expected: BTreeMap<Tp, i64> = (0..PARTITIONS)
        .map(|p| ((topic.clone(), p), PROCESSED))
        .collect();
    assert_eq!(committed, expected);

    // A new member of the same group reads from exactly PROCESSED on: nothing lost, nothing
    // read twice.
    let mut second = GroupConsumer::subscribe(&client, cfg, &[&topic]).unwrap();
    let mut read: BTreeMap<i32, Vec<i64>> = BTreeMap::new();
    let want = ((TOTAL - PROCESSED) * i64::from(PARTITIONS)) as usize;
    let start = Instant::now();
    while read.values().map(Vec::len).sum::<usize>() < want {
        assert!(start.elapsed() < SETTLE_DEADLINE, "read only {read:?}");
        let fetched = second.poll().await.expect("poll");
        for part in &fetched.partitions {
            for r in part.records() {
                read.entry(part.partition)
                    .or_default()
                    .push(r.expect("record").offset());
            }
        }
    }
    for p in 0..PARTITIONS {
        assert_eq!(
            read[&p],
            (PROCESSED..TOTAL).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
    second.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_commits_only_what_poll_returned_and_close_commits_the_positions() {
    const PARTITIONS: i32 = 2;
    let (_broker, client, topic, group) = setup("autocommit", PARTITIONS).await;
    let mut cfg = config(&group);
    cfg.enable_auto_commit = true;
    cfg.auto_commit_interval = Duration::from_millis(200);
    let admin = Admin::new(&client);
    let mut consumer = GroupConsumer::subscribe(&client, cfg.clone(), &[&topic]).unwrap();
    // Next offset after the last record each poll returned.
    let mut returned: BTreeMap<Tp, i64> = BTreeMap::new();
    let mut saw_auto_commit = false;
    for round in 0..3 {
        produce(&client, &topic, PARTITIONS, 5, round * 5).await;
        let target = i64::from(round + 1) * 5;
        let start = Instant::now();
        while (0..PARTITIONS)
            .any(|p| returned.get(&(topic.clone(), p)).copied().unwrap_or(0) < target)
        {
            assert!(
                start.elapsed() < SETTLE_DEADLINE,
                "round {round}: {returned:?}"
            );
            let fetched = consumer.poll().await.expect("poll");
            for part in &fetched.partitions {
                for r in part.records() {
                    returned.insert(
                        (part.topic.clone(), part.partition),
                        r.expect("record").offset() + 1,
                    );
                }
            }
            let committed = admin
                .committed_offsets(&group, None)
                .await
                .expect("committed");
            for (tp, c) in &committed {
                let r = returned.get(tp).copied().unwrap_or(0);
                assert!(
                    *c <= r,
                    "{tp:?} committed {c}, but poll returned records only up to {r}"
                );
            }
            saw_auto_commit |= !committed.is_empty();
        }
        // Without new records, a poll after the interval commits everything returned so far.
        tokio::time::sleep(cfg.auto_commit_interval + Duration::from_millis(50)).await;
        consumer.poll().await.expect("poll");
        let committed = admin
            .committed_offsets(&group, None)
            .await
            .expect("committed");
        assert_eq!(
            committed, returned,
            "round {round}: auto commit after the interval"
        );
    }
    assert!(saw_auto_commit);

    // Records returned since the last auto commit are committed by close, exactly at the
    // positions after them.
    produce(&client, &topic, PARTITIONS, 3, 15).await;
    let start = Instant::now();
    while (0..PARTITIONS).any(|p| returned[&(topic.clone(), p)] < 18) {
        assert!(start.elapsed() < SETTLE_DEADLINE, "{returned:?}");
        let fetched = consumer.poll().await.expect("poll");
        for part in &fetched.partitions {
            for r in part.records() {
                returned.insert(
                    (part.topic.clone(), part.partition),
                    r.expect("record").offset() + 1,
                );
            }
        }
    }
    for p in 0..PARTITIONS {
        assert_eq!(
            consumer.position(&topic, p),
            Some(18),
            "position of partition {p}"
        );
    }
    let before_close = admin
        .committed_offsets(&group, None)
        .await
        .expect("committed");
    consumer.close().await.expect("close");
    let committed = admin
        .committed_offsets(&group, None)
        .await
        .expect("committed");
    let expected: BTreeMap<Tp, i64> = (0..PARTITIONS).map(|p| ((topic.clone(), p), 18)).collect();
    assert_eq!(
        committed, expected,
        "committed by close (before close: {before_close:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_that_stops_polling_leaves_and_its_next_polls_report_it_then_rejoin() {
    let (_broker, client, topic, group) = setup("slowpoll", 2).await;
    let mut cfg = config(&group);
    cfg.session_timeout = Duration::from_secs(2);
    cfg.heartbeat_interval = Duration::from_millis(300);
    cfg.max_poll_interval = Duration::from_millis(1500);
    let mut consumer = GroupConsumer::subscribe(&client, cfg.clone(), &[&topic]).unwrap();
    let seen = Recorder::default();
    consumer.set_rebalance_listener(seen.clone());
    let all = partitions(&topic, 2);
    let start = Instant::now();
    while set(&consumer.assignment()) != all {
        assert!(
            start.elapsed() < SETTLE_DEADLINE,
            "{:?}",
            consumer.assignment()
        );
        consumer.poll().await.expect("poll");
    }
    // Keep polling for a while: a member that polls in time stays in the group.
    let first = consumer.membership();
    let until = Instant::now() + Duration::from_secs(2);
    while Instant::now() < until {
        consumer.poll().await.expect("poll while polling in time");
    }
    assert_eq!(consumer.membership().member_id, first.member_id);
    assert!(!first.member_id.is_empty());

    // Stop polling for longer than max_poll_interval (plus a heartbeat to notice it).
    tokio::time::sleep(cfg.max_poll_interval + Duration::from_millis(1000)).await;
    assert_eq!(
        consumer.membership().member_id,
        "",
        "the member left the group by itself"
    );
    match consumer.poll().await {
        Err(e @ Error::GroupMembership { .. }) => assert!(e.is_retriable(), "{e}"),
        other => panic!("expected Error::GroupMembership, got {other:?}"),
    }
    assert!(
        consumer.assignment().is_empty(),
        "partitions are given up: {:?}",
        consumer.assignment()
    );
    assert_eq!(set(&seen.0.lock().unwrap().lost), all);

    // The next poll joins again.
    consumer
        .poll()
        .await
        .expect("the poll after the error rejoins");
    let again = consumer.membership();
    assert!(!again.member_id.is_empty());
    assert_eq!(set(&consumer.assignment()), all);
    consumer.close().await.expect("close");
}
