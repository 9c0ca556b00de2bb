//! The admin operations against the in-process mock broker: what Tansu cannot show
//! (CreatePartitions, DeleteRecords and OffsetDelete it does not have; broker configs it does not
//! keep; several brokers, leader and controller moves, error codes on demand), each checked
//! against the cluster's state afterwards, not against the call's own report.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use bytes::{BufMut, BytesMut};
use kafkawire_client::{
    Admin, AlterConfigOp, Client, ClientConfig, ConfigEntry, ConfigResource, ConfigSource, Error,
    GroupMembership, NewPartitions, OffsetToCommit, offset_spec,
};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::Encodable;
use kafkawire_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, Member, TopicPartitions,
};
use kafkawire_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafkawire_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroupMember,
};
use kafkawire_protocol::messages::offset_delete_response::OffsetDeleteResponse;
use kafkawire_protocol::records::RecordBatchBuilder;
use kafkawire_testkit::mock::{Action, MockCluster};

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(20), f)
        .await
        .expect("test did not finish within 20 s")
}

async fn connect(cluster: &MockCluster) -> Client {
    let mut c = ClientConfig::new(&cluster.bootstrap());
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    Client::connect(c)
        .await
        .expect("connect to the mock cluster")
}

/// One batch of `n` records, all with timestamp `ts`.
fn batch(n: usize, ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    for i in 0..n {
        b.push(ts, None, Some(format!("v{i}").as_bytes()), &[])
            .expect("push");
    }
    b.build().expect("build")
}

/// The broker error's code, API, topic and partition.
fn broker_error(e: &Error) -> (Option<ErrorCode>, Option<ApiKey>, Option<&str>, Option<i32>) {
    (e.code(), e.api(), e.topic(), e.partition())
}

fn requests_to(cluster: &MockCluster, api: ApiKey) -> Vec<i32> {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api() == Some(api))
        .map(|r| r.broker_id)
        .collect()
}

/// `name`'s entry of a DescribeConfigs answer for one resource.
fn entry<'a>(described: &'a [(ConfigResource, Vec<ConfigEntry>)], name: &str) -> &'a ConfigEntry {
    assert_eq!(described.len(), 1, "{described:?}");
    described[0]
        .1
        .iter()
        .find(|e| e.name == name)
        .unwrap_or_else(|| panic!("no {name} in {described:?}"))
}

#[tokio::test]
async fn create_partitions_grows_the_topic_and_retries_a_moved_controller() {
    within(async {
        let cluster = MockCluster::start(3).await;
        cluster.create_topic("grow", 2);
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);

        // The first answer says the controller moved: the topic is sent again.
        cluster.script(
            ApiKey::CreatePartitions,
            Action::ErrorCode(ErrorCode::NOT_CONTROLLER),
        );
        admin
            .create_partitions(
                &[NewPartitions::increase_to("grow", 5)],
                Duration::from_secs(5),
            )
            .await
            .expect("create partitions");
        assert_eq!(requests_to(&cluster, ApiKey::CreatePartitions).len(), 2);
        // The client's own metadata was refreshed, and the cluster's has the new partitions,
        // led by brokers p % 3.
        assert_eq!(client.metadata().partition_count("grow"), Some(5));
        for p in 2..5 {
            assert_eq!(cluster.leader("grow", p), Some((p % 3, 0)), "partition {p}");
            assert_eq!(
                client.leader_for("grow", p).await.expect("leader"),
                p % 3,
                "partition {p}"
            );
        }

        // Explicit placement: the first replica leads.
        let mut placed = NewPartitions::increase_to("grow", 6);
        placed.assignments = Some(vec![vec![2]]);
        admin
            .create_partitions(&[placed], Duration::from_secs(5))
            .await
            .expect("create a placed partition");
        assert_eq!(cluster.leader("grow", 5), Some((2, 0)));

        // Not above the current count: the topic's own error, not retried.
        let e = admin
            .create_partitions(
                &[NewPartitions::increase_to("grow", 3)],
                Duration::from_secs(5),
            )
            .await
            .expect_err("shrinking is refused");
        assert_eq!(
            broker_error(&e),
            (
                Some(ErrorCode::INVALID_PARTITIONS),
                Some(ApiKey::CreatePartitions),
                Some("grow"),
                None
            ),
            "{e}"
        );
        assert!(e.broker().is_some(), "{e}");
        assert!(e.to_string().contains("currently has 6 partitions"), "{e}");
        let meta = client.refresh_metadata(&["grow"]).await.unwrap();
        assert_eq!(meta.partition_count("grow"), Some(6));

        let e = admin
            .create_partitions(
                &[NewPartitions::increase_to("nope", 3)],
                Duration::from_secs(5),
            )
            .await
            .expect_err("unknown topic");
        assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!(e.topic(), Some("nope"));
    })
    .await;
}

#[tokio::test]
async fn topic_configs_are_altered_key_by_key_and_described_with_their_source() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("conf", 1);
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        let topic = ConfigResource::topic("conf");

        let before = admin
            .describe_configs(std::slice::from_ref(&topic))
            .await
            .unwrap();
        let retention = entry(&before, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("604800000"));
        assert_eq!(retention.source, ConfigSource::Default);
        assert!(retention.is_default());

        cluster.script(
            ApiKey::IncrementalAlterConfigs,
            Action::ErrorCode(ErrorCode::NOT_CONTROLLER),
        );
        admin
            .incremental_alter_configs(
                &[(
                    topic.clone(),
                    vec![
                        AlterConfigOp::set("retention.ms", "60000"),
                        AlterConfigOp::append("cleanup.policy", "compact"),
                    ],
                )],
                false,
            )
            .await
            .expect("alter (after one NOT_CONTROLLER)");
        assert_eq!(cluster.request_count(ApiKey::IncrementalAlterConfigs), 2);

        let after = admin
            .describe_configs(std::slice::from_ref(&topic))
            .await
            .unwrap();
        let retention = entry(&after, "retention.ms");
        assert_eq!(retention.value.as_deref(), Some("60000"));
        assert_eq!(retention.source, ConfigSource::DynamicTopic);
        assert_eq!(
            retention.synonyms,
            vec![
                (
                    "retention.ms".to_owned(),
                    Some("60000".to_owned()),
                    ConfigSource::DynamicTopic
                ),
                (
                    "retention.ms".to_owned(),
                    Some("604800000".to_owned()),
                    ConfigSource::Default
                ),
            ]
        );
        assert_eq!(
            entry(&after, "cleanup.policy").value.as_deref(),
            Some("delete,compact")
        );
        // Keys not named keep their values.
        assert_eq!(
            entry(&after, "segment.bytes").value.as_deref(),
            Some("1073741824")
        );

        admin
            .incremental_alter_configs(
                &[(
                    topic.clone(),
                    vec![
                        AlterConfigOp::delete("retention.ms"),
                        AlterConfigOp::subtract("cleanup.policy", "delete"),
                    ],
                )],
                false,
            )
            .await
            .unwrap();
        let after = admin
            .describe_configs(std::slice::from_ref(&topic))
            .await
            .unwrap();
        assert_eq!(
            entry(&after, "retention.ms").value.as_deref(),
            Some("604800000")
        );
        assert!(entry(&after, "retention.ms").is_default());
        assert_eq!(
            entry(&after, "cleanup.policy").value.as_deref(),
            Some("compact")
        );

        // validate_only checks and changes nothing.
        admin
            .incremental_alter_configs(
                &[(topic.clone(), vec![AlterConfigOp::set("retention.ms", "1")])],
                true,
            )
            .await
            .unwrap();
        let after = admin
            .describe_configs(std::slice::from_ref(&topic))
            .await
            .unwrap();
        assert_eq!(
            entry(&after, "retention.ms").value.as_deref(),
            Some("604800000")
        );

        // Per-resource errors name the topic.
        let e = admin
            .incremental_alter_configs(
                &[(topic.clone(), vec![AlterConfigOp::set("no.such.key", "1")])],
                false,
            )
            .await
            .expect_err("unknown key");
        assert_eq!(
            broker_error(&e),
            (
                Some(ErrorCode::INVALID_CONFIG),
                Some(ApiKey::IncrementalAlterConfigs),
                Some("conf"),
                None
            ),
            "{e}"
        );
        assert!(e.to_string().contains("no.such.key"), "{e}");
        let e = admin
            .describe_configs(&[ConfigResource::topic("missing")])
            .await
            .expect_err("unknown topic");
        assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!(e.topic(), Some("missing"));
        // A value is needed for everything but DELETE.
        let mut bad = AlterConfigOp::set("retention.ms", "1");
        bad.value = None;
        let e = admin
            .incremental_alter_configs(&[(topic, vec![bad])], false)
            .await
            .expect_err("SET without a value");
        assert!(matches!(e, Error::Config(_)), "{e}");
    })
    .await;
}

#[tokio::test]
async fn broker_configs_go_to_that_broker_and_fall_back_to_the_cluster_default() {
    within(async {
        let cluster = MockCluster::start(3).await;
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);

        admin
            .incremental_alter_configs(
                &[
                    (
                        ConfigResource::broker(2),
                        vec![AlterConfigOp::set("log.retention.ms", "1000")],
                    ),
                    (
                        ConfigResource::broker_default(),
                        vec![AlterConfigOp::set("num.partitions", "6")],
                    ),
                ],
                false,
            )
            .await
            .expect("alter broker configs");
        let to = requests_to(&cluster, ApiKey::IncrementalAlterConfigs);
        assert!(
            to.contains(&2),
            "broker 2's config goes to broker 2: {to:?}"
        );

        let two = admin
            .describe_configs(&[ConfigResource::broker(2)])
            .await
            .unwrap();
        let retention = entry(&two, "log.retention.ms");
        assert_eq!(retention.value.as_deref(), Some("1000"));
        assert_eq!(retention.source, ConfigSource::DynamicBroker);
        let partitions = entry(&two, "num.partitions");
        assert_eq!(partitions.value.as_deref(), Some("6"));
        assert_eq!(partitions.source, ConfigSource::DynamicDefaultBroker);
        // Broker 1 has only the cluster-wide default.
        let one = admin
            .describe_configs(&[ConfigResource::broker(1)])
            .await
            .unwrap();
        assert_eq!(
            entry(&one, "log.retention.ms").value.as_deref(),
            Some("604800000")
        );
        assert_eq!(entry(&one, "num.partitions").value.as_deref(), Some("6"));
        let asked: Vec<i32> = requests_to(&cluster, ApiKey::DescribeConfigs);
        assert_eq!(asked, vec![2, 1], "each broker is asked for its own config");

        // A broker's error names the broker.
        cluster.broker(1).script(
            ApiKey::DescribeConfigs,
            Action::ErrorCode(ErrorCode::CLUSTER_AUTHORIZATION_FAILED),
        );
        let e = admin
            .describe_configs(&[ConfigResource::broker(1)])
            .await
            .expect_err("scripted error");
        assert_eq!(e.code(), Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED));
        assert!(e.to_string().contains("(broker 1)"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn delete_records_moves_the_log_start_on_each_leader() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("del", 2);
        for p in 0..2 {
            cluster.append("del", p, &batch(3, 1000)).unwrap();
            cluster.append("del", p, &batch(3, 2000)).unwrap();
        }
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);

        // Partition 1's leader moves to broker 0; the client still sends to broker 1, which
        // answers NOT_LEADER_OR_FOLLOWER, and the partition is sent again to broker 0.
        client.refresh_metadata(&["del"]).await.unwrap();
        cluster.set_leader("del", 1, 0);
        let before: BTreeMap<(String, i32), i64> =
            [(("del".to_owned(), 0), 4), (("del".to_owned(), 1), -1)].into();
        let starts = admin
            .delete_records(&before, Duration::from_secs(5))
            .await
            .expect("delete records");
        assert_eq!(
            starts,
            [(("del".to_owned(), 0), 4), (("del".to_owned(), 1), 6)].into()
        );
        // The batch with offsets 0-2 is gone from partition 0; 3-5 stays (it holds offset 4).
        assert_eq!(cluster.log("del", 0).len(), 1);
        assert!(cluster.log("del", 1).is_empty());
        for (p, start) in [(0, 4), (1, 6)] {
            assert_eq!(
                admin
                    .list_offset("del", p, offset_spec::EARLIEST)
                    .await
                    .unwrap(),
                start,
                "log start of partition {p}"
            );
        }
        assert_eq!(
            requests_to(&cluster, ApiKey::DeleteRecords),
            vec![0, 1, 0],
            "one request per leader, then the moved partition again"
        );

        // Above the high watermark: the partition's error, naming it.
        let e = admin
            .delete_records(
                &[(("del".to_owned(), 0), 99)].into(),
                Duration::from_secs(5),
            )
            .await
            .expect_err("beyond the end");
        assert_eq!(
            broker_error(&e),
            (
                Some(ErrorCode::OFFSET_OUT_OF_RANGE),
                Some(ApiKey::DeleteRecords),
                Some("del"),
                Some(0)
            ),
            "{e}"
        );
        assert!(e.broker().is_some(), "{e}");
    })
    .await;
}

#[tokio::test]
async fn describe_cluster_uses_describe_cluster_or_else_metadata() {
    within(async {
        let cluster = MockCluster::start(3).await;
        cluster.set_cluster_id("abc-123");
        cluster.set_controller(2);
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);

        let d = admin.describe_cluster().await.expect("describe cluster");
        assert_eq!(d.source, ApiKey::DescribeCluster);
        assert_eq!(d.cluster_id.as_deref(), Some("abc-123"));
        assert_eq!(d.controller_id, 2);
        let addrs: Vec<(i32, String)> =
            d.brokers.iter().map(|b| (b.node_id, b.address())).collect();
        let expected: Vec<(i32, String)> = (0..3).map(|id| (id, cluster.broker_addr(id))).collect();
        assert_eq!(addrs, expected);

        cluster.script(
            ApiKey::DescribeCluster,
            Action::ErrorCode(ErrorCode::CLUSTER_AUTHORIZATION_FAILED),
        );
        let e = admin.describe_cluster().await.expect_err("scripted error");
        assert_eq!(e.code(), Some(ErrorCode::CLUSTER_AUTHORIZATION_FAILED));
        assert_eq!(e.api(), Some(ApiKey::DescribeCluster));

        // A broker without DescribeCluster (before Kafka 2.8): the same from Metadata.
        let old = MockCluster::start(2).await;
        old.remove_api(ApiKey::DescribeCluster);
        old.set_cluster_id("old-one");
        old.set_controller(1);
        let client = connect(&old).await;
        let d = Admin::new(&client).describe_cluster().await.unwrap();
        assert_eq!(d.source, ApiKey::Metadata);
        assert_eq!(d.cluster_id.as_deref(), Some("old-one"));
        assert_eq!(d.controller_id, 1);
        assert_eq!(d.brokers.len(), 2);
        assert_eq!(old.request_count(ApiKey::DescribeCluster), 0);
    })
    .await;
}

#[tokio::test]
async fn list_offsets_by_timestamp_asks_each_leader_once() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("times", 2);
        // Partition p: batches of 2 records at 1000, 2000, 3000 (+ p * 100).
        for p in 0..2 {
            for ts in [1000, 2000, 3000] {
                cluster
                    .append("times", p, &batch(2, ts + i64::from(p) * 100))
                    .unwrap();
            }
        }
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        let both = [("times".to_owned(), 0), ("times".to_owned(), 1)];

        let at = admin.list_offsets(&both, 1500).await.expect("by time");
        let got: Vec<(i32, i64, i64)> = at
            .iter()
            .map(|((_, p), o)| (*p, o.offset, o.timestamp))
            .collect();
        assert_eq!(got, vec![(0, 2, 2000), (1, 2, 2100)]);
        assert_eq!(
            requests_to(&cluster, ApiKey::ListOffsets),
            vec![0, 1],
            "one request per leader"
        );

        // Between two partitions' timestamps, at the end, and the special values.
        let at = admin.list_offsets(&both, 3050).await.unwrap();
        assert_eq!(
            at[&both[0]].offset, -1,
            "no record that recent on partition 0"
        );
        assert_eq!((at[&both[1]].offset, at[&both[1]].timestamp), (4, 3100));
        let latest = admin
            .list_offsets(&both, offset_spec::LATEST)
            .await
            .unwrap();
        assert!(latest.values().all(|o| o.offset == 6), "{latest:?}");
        cluster.set_log_start_offset("times", 1, 2);
        let earliest = admin
            .list_offsets(&both, offset_spec::EARLIEST)
            .await
            .unwrap();
        assert_eq!(
            (earliest[&both[0]].offset, earliest[&both[1]].offset),
            (0, 2)
        );
        let ends = admin.end_offsets(&both).await.unwrap();
        assert_eq!(ends, [(both[0].clone(), 6), (both[1].clone(), 6)].into());

        // A partition's error names it.
        cluster.script(
            ApiKey::ListOffsets,
            Action::ErrorCode(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        );
        let e = admin
            .list_offsets(&both[..1], 0)
            .await
            .expect_err("scripted error");
        assert_eq!(
            broker_error(&e),
            (
                Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
                Some(ApiKey::ListOffsets),
                Some("times"),
                Some(0)
            )
        );
    })
    .await;
}

async fn commit(admin: &Admin, group: &str, offsets: &[(&str, i32, i64)]) {
    let plan: Vec<OffsetToCommit> = offsets
        .iter()
        .map(|(t, p, o)| OffsetToCommit::new(*t, *p, *o))
        .collect();
    admin
        .commit_offsets(group, &GroupMembership::none(), &plan)
        .await
        .expect("commit");
}

#[tokio::test]
async fn delete_group_offsets_removes_only_the_partitions_named() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.set_coordinator(1);
        cluster.create_topic("od", 2);
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        commit(&admin, "g1", &[("od", 0, 5), ("od", 1, 7)]).await;

        // The coordinator is loading at first: retried.
        cluster.script(
            ApiKey::OffsetDelete,
            Action::ErrorCode(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
        );
        admin
            .delete_group_offsets("g1", &[("od".to_owned(), 0)])
            .await
            .expect("delete offsets");
        assert_eq!(requests_to(&cluster, ApiKey::OffsetDelete), vec![1, 1]);
        let left = admin.committed_offsets("g1", None).await.unwrap();
        assert_eq!(left, [(("od".to_owned(), 1), 7)].into());

        let e = admin
            .delete_group_offsets("nobody", &[("od".to_owned(), 0)])
            .await
            .expect_err("unknown group");
        assert_eq!(e.code(), Some(ErrorCode::GROUP_ID_NOT_FOUND));
        assert!(e.to_string().contains("group nobody"), "{e}");

        // A partition the group still consumes: its error names topic and partition.
        cluster.script(
            ApiKey::OffsetDelete,
            Action::modify(|r: &mut OffsetDeleteResponse| {
                r.topics[0].partitions[0].error_code = ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC.0;
            }),
        );
        let e = admin
            .delete_group_offsets("g1", &[("od".to_owned(), 1)])
            .await
            .expect_err("subscribed");
        assert_eq!(
            broker_error(&e),
            (
                Some(ErrorCode::GROUP_SUBSCRIBED_TO_TOPIC),
                Some(ApiKey::OffsetDelete),
                Some("od"),
                Some(1)
            ),
            "{e}"
        );
    })
    .await;
}

#[tokio::test]
async fn group_lag_is_the_high_watermark_minus_the_committed_offset() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("lag", 2);
        cluster.create_topic("gone", 1);
        cluster.append("lag", 0, &batch(10, 1)).unwrap();
        cluster.append("lag", 1, &batch(4, 1)).unwrap();
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        commit(&admin, "a", &[("lag", 0, 3), ("lag", 1, 4)]).await;
        commit(&admin, "b", &[("lag", 0, 10), ("gone", 0, 2)]).await;
        cluster.delete_topic("gone");

        let a = admin.group_lag("a").await.expect("lag of a");
        let rows: Vec<_> = a
            .partitions
            .iter()
            .map(|p| (p.partition, p.committed, p.end_offset, p.lag))
            .collect();
        assert_eq!(
            rows,
            vec![
                (0, Some(3), Some(10), Some(7)),
                (1, Some(4), Some(4), Some(0))
            ]
        );
        assert_eq!(a.total(), 7);
        // No member: the group only stores offsets.
        assert!(a.partitions.iter().all(|p| p.member.is_none()));

        let all = admin.all_groups_lag().await.expect("lag of every group");
        let ids: Vec<&str> = all.iter().map(|g| g.group_id.as_str()).collect();
        assert_eq!(ids, ["a", "b"]);
        let b = &all[1];
        // The deleted topic's offset is listed without an end.
        assert_eq!(b.partitions.len(), 2);
        assert_eq!(
            (b.partitions[0].topic.as_str(), b.partitions[0].lag),
            ("gone", None)
        );
        assert_eq!(
            (b.partitions[1].topic.as_str(), b.partitions[1].lag),
            ("lag", Some(0))
        );

        // More records arrive: the lag grows; committing to the end brings it to 0.
        cluster.append("lag", 1, &batch(5, 1)).unwrap();
        assert_eq!(admin.group_lag("a").await.unwrap().total(), 7 + 5);
        commit(&admin, "a", &[("lag", 0, 10), ("lag", 1, 9)]).await;
        assert_eq!(admin.group_lag("a").await.unwrap().total(), 0);

        // A group without offsets has no partitions, and no error.
        assert!(admin.group_lag("none").await.unwrap().partitions.is_empty());
    })
    .await;
}

/// A consumer-protocol assignment as a member's DescribeGroups bytes: int16 version, then the
/// ConsumerProtocolAssignment of that version.
fn assignment(version: i16, partitions: &[(&str, &[i32])]) -> Bytes {
    let a = ConsumerProtocolAssignment {
        assigned_partitions: partitions
            .iter()
            .map(|(topic, ps)| AssignedTopic {
                topic: (*topic).to_owned(),
                partitions: ps.to_vec(),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    a.encode(&mut buf, version.clamp(0, 3)).expect("encode");
    buf.freeze()
}

fn member(id: &str, assignment: Bytes) -> DescribedGroupMember {
    DescribedGroupMember {
        member_id: id.to_owned(),
        client_id: format!("client-{id}"),
        client_host: "/10.0.0.7".to_owned(),
        member_assignment: assignment,
        ..Default::default()
    }
}

#[tokio::test]
async fn group_lag_lists_assigned_partitions_without_commits_with_their_member() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("work", 3);
        cluster.create_topic("other", 1);
        cluster.append("work", 0, &batch(10, 1)).unwrap();
        cluster.append("work", 1, &batch(4, 1)).unwrap();
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        commit(&admin, "live", &[("work", 0, 6)]).await;
        // m1 owns work-0 and work-1 (version 3; version 7 of a later Kafka reads as 3), m2 has
        // nothing yet, m3's assignment is garbage (logged, its partitions left out), m4 owns
        // other-0 in version 0.
        cluster.script(
            ApiKey::DescribeGroups,
            Action::modify(|r: &mut DescribeGroupsResponse| {
                let g = &mut r.groups[0];
                g.group_state = "Stable".to_owned();
                g.protocol_type = "consumer".to_owned();
                g.protocol_data = "range".to_owned();
                g.members = vec![
                    member("m1", assignment(7, &[("work", &[1, 0])])),
                    member("m2", Bytes::new()),
                    member("m3", Bytes::from_static(&[0, 3, 0xff, 0xff, 0xff])),
                    member("m4", assignment(0, &[("other", &[0])])),
                ];
            }),
        );
        let lag = admin.group_lag("live").await.expect("lag");
        let rows: Vec<_> = lag
            .partitions
            .iter()
            .map(|p| {
                (
                    p.topic.as_str(),
                    p.partition,
                    p.committed,
                    p.end_offset,
                    p.lag,
                    p.member.as_ref().map(|m| m.member_id.as_str()),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                ("other", 0, None, Some(0), None, Some("m4")),
                ("work", 0, Some(6), Some(10), Some(4), Some("m1")),
                ("work", 1, None, Some(4), None, Some("m1")),
            ]
        );
        assert_eq!(lag.total(), 4);
        let m1 = lag.partitions[1].member.as_ref().unwrap();
        assert_eq!(
            (m1.client_id.as_str(), m1.client_host.as_str()),
            ("client-m1", "/10.0.0.7")
        );

        // Without the script the group is Empty again: only the committed partition.
        let lag = admin.group_lag("live").await.expect("lag");
        assert_eq!(lag.partitions.len(), 1);
        assert!(lag.partitions[0].member.is_none());

        // Another protocol type (Kafka Connect's) is not read as consumer assignments.
        cluster.script(
            ApiKey::DescribeGroups,
            Action::modify(|r: &mut DescribeGroupsResponse| {
                let g = &mut r.groups[0];
                g.group_state = "Stable".to_owned();
                g.protocol_type = "connect".to_owned();
                g.members = vec![member("w1", assignment(0, &[("work", &[2])]))];
            }),
        );
        let lag = admin.group_lag("live").await.expect("lag");
        assert_eq!(lag.partitions.len(), 1);

        // A group the broker cannot describe fails with the group named.
        cluster.script(
            ApiKey::DescribeGroups,
            Action::ErrorCode(ErrorCode::GROUP_AUTHORIZATION_FAILED),
        );
        let e = admin.group_lag("live").await.expect_err("unauthorised");
        assert_eq!(e.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED), "{e}");
        assert!(e.to_string().contains("live"), "{e}");
    })
    .await;
}

/// A member of a KIP-848 group owning `partitions` of topic `work`.
fn kip848_member(id: &str, partitions: &[i32]) -> Member {
    Member {
        member_id: id.to_owned(),
        client_id: format!("client-{id}"),
        client_host: "/10.0.0.8".to_owned(),
        assignment: Assignment {
            topic_partitions: vec![TopicPartitions {
                topic_name: "work".to_owned(),
                partitions: partitions.to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        },
        ..Default::default()
    }
}

/// The next ConsumerGroupDescribe describes its group as a stable KIP-848 group of m1 (work-0
/// and work-1) and m2 (work-2).
fn script_kip848_group(cluster: &MockCluster) {
    cluster.script(
        ApiKey::ConsumerGroupDescribe,
        Action::modify(|r: &mut ConsumerGroupDescribeResponse| {
            let g = &mut r.groups[0];
            g.error_code = 0;
            g.error_message = None;
            g.group_state = "Stable".to_owned();
            g.assignor_name = "uniform".to_owned();
            g.members = vec![kip848_member("m1", &[0, 1]), kip848_member("m2", &[2])];
        }),
    );
}

#[tokio::test]
async fn group_lag_of_a_consumer_protocol_group_names_members_from_consumer_group_describe() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("work", 3);
        cluster.append("work", 0, &batch(10, 1)).unwrap();
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        commit(&admin, "kip848", &[("work", 0, 6)]).await;
        let rows = |lag: &kafkawire_client::GroupLag| -> Vec<_> {
            lag.partitions
                .iter()
                .map(|p| {
                    (
                        p.partition,
                        p.committed,
                        p.lag,
                        p.member.as_ref().map(|m| m.member_id.clone()),
                    )
                })
                .collect()
        };
        let m = |id: &str| Some(id.to_owned());

        // Kafka 4.0's DescribeGroups v6 says the group is not a classic group
        // (GROUP_ID_NOT_FOUND): its members come from ConsumerGroupDescribe.
        cluster.script(
            ApiKey::DescribeGroups,
            Action::ErrorCode(ErrorCode::GROUP_ID_NOT_FOUND),
        );
        script_kip848_group(&cluster);
        let lag = admin.group_lag("kip848").await.expect("lag");
        assert_eq!(
            rows(&lag),
            vec![
                (0, Some(6), Some(4), m("m1")),
                (1, None, None, m("m1")),
                (2, None, None, m("m2")),
            ]
        );
        let m2 = lag.partitions[2].member.as_ref().unwrap();
        assert_eq!(
            (m2.client_id.as_str(), m2.client_host.as_str()),
            ("client-m2", "/10.0.0.8")
        );

        // Earlier versions answer state Dead: the same. A group without commits shows its
        // assigned partitions alone.
        script_kip848_group(&cluster);
        let lag = admin.group_lag("fresh").await.expect("lag");
        assert_eq!(
            rows(&lag),
            vec![
                (0, None, None, m("m1")),
                (1, None, None, m("m1")),
                (2, None, None, m("m2")),
            ]
        );

        // describe_group describes it as a consumer group, assignments readable as for a
        // classic group.
        script_kip848_group(&cluster);
        let d = admin.describe_group("fresh").await.expect("describe");
        assert_eq!(
            (d.state.as_str(), d.protocol_type.as_str(), d.members.len()),
            ("Stable", "consumer", 2)
        );
        assert_eq!(d.protocol, "uniform");
        assert_eq!(
            d.members[0].assigned_partitions().unwrap(),
            vec![("work".to_owned(), 0), ("work".to_owned(), 1)]
        );
        assert_eq!(d.members[1].client_id, "client-m2");
        // Its lag from that description, without describing it again.
        let describes = cluster.request_count(ApiKey::ConsumerGroupDescribe);
        let lag = admin.described_group_lag(&d).await.expect("lag");
        assert_eq!(
            rows(&lag),
            vec![
                (0, None, None, m("m1")),
                (1, None, None, m("m1")),
                (2, None, None, m("m2")),
            ]
        );
        assert_eq!(
            cluster.request_count(ApiKey::ConsumerGroupDescribe),
            describes
        );

        // A group ConsumerGroupDescribe does not know either (the mock's default answer,
        // GROUP_ID_NOT_FOUND) has no members; its commits still show.
        let before = cluster.request_count(ApiKey::ConsumerGroupDescribe);
        cluster.script(
            ApiKey::DescribeGroups,
            Action::ErrorCode(ErrorCode::GROUP_ID_NOT_FOUND),
        );
        let lag = admin.group_lag("kip848").await.expect("lag");
        assert_eq!(rows(&lag), vec![(0, Some(6), Some(4), None)]);
        assert_eq!(
            cluster.request_count(ApiKey::ConsumerGroupDescribe),
            before + 1
        );

        // A classic group DescribeGroups knows is not asked about again.
        let lag = admin.group_lag("kip848").await.expect("lag");
        assert_eq!(rows(&lag), vec![(0, Some(6), Some(4), None)]);
        assert_eq!(
            cluster.request_count(ApiKey::ConsumerGroupDescribe),
            before + 1
        );

        // Its errors fail the call, naming the group.
        cluster.script(
            ApiKey::ConsumerGroupDescribe,
            Action::ErrorCode(ErrorCode::GROUP_AUTHORIZATION_FAILED),
        );
        let e = admin.group_lag("fresh").await.expect_err("unauthorised");
        assert_eq!(e.code(), Some(ErrorCode::GROUP_AUTHORIZATION_FAILED), "{e}");
        assert!(e.to_string().contains("fresh"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn group_lag_does_not_send_consumer_group_describe_to_a_broker_without_it() {
    within(async {
        let cluster = MockCluster::start(1).await;
        // Before Kafka 3.7.
        cluster.remove_api(ApiKey::ConsumerGroupDescribe);
        cluster.create_topic("work", 1);
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);
        commit(&admin, "g", &[("work", 0, 0)]).await;
        let lag = admin.group_lag("unknown").await.expect("lag");
        assert!(lag.partitions.is_empty());
        assert_eq!(cluster.request_count(ApiKey::ConsumerGroupDescribe), 0);
    })
    .await;
}

#[test]
fn assigned_partitions_read_every_assignment_version_and_refuse_garbage() {
    let of = |bytes: Bytes| {
        kafkawire_client::GroupMember {
            member_id: "m".to_owned(),
            group_instance_id: None,
            client_id: String::new(),
            client_host: String::new(),
            assignment: bytes,
        }
        .assigned_partitions()
    };
    for v in 0..=4 {
        assert_eq!(
            of(assignment(v, &[("b", &[2, 0]), ("a", &[1])])).unwrap(),
            vec![
                ("a".to_owned(), 1),
                ("b".to_owned(), 0),
                ("b".to_owned(), 2)
            ],
            "version {v}"
        );
    }
    assert_eq!(of(Bytes::new()).unwrap(), Vec::<(String, i32)>::new());
    // A negative version, a truncated assignment, a count larger than the bytes.
    assert!(of(assignment(-1, &[("a", &[1])])).is_err());
    let whole = assignment(1, &[("a", &[1])]);
    assert!(of(whole.slice(..whole.len() - 3)).is_err());
    assert!(of(Bytes::from_static(&[0, 0, 0x7f, 0xff, 0xff, 0xff])).is_err());
    // A 32,000-byte topic name with 8,000 partitions: 64 KiB that would flatten to 256 MB of
    // names.
    let long = "t".repeat(32_000);
    let many: Vec<i32> = (0..8_000).collect();
    let hostile = assignment(0, &[(long.as_str(), many.as_slice())]);
    assert!(hostile.len() < 70 * 1024);
    assert!(of(hostile).is_err());
}
