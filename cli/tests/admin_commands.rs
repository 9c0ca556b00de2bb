//! The admin commands end to end: the built binary against a Tansu broker (cluster describe,
//! configs of a topic, offsets, groups lag) and against the in-process mock broker for what
//! Tansu does not have (topics add-partitions, records delete, groups delete-offsets, broker
//! configs, group members' assignments in groups lag and describe). Every command's effect is checked with the library against the broker's state.

use std::collections::BTreeMap;
use std::process::{Command, Output};
use std::time::Duration;

use kafkawire::client::{ConfigResource, offset_spec};
use kafkawire::consumer::assignor::{Assignment, encode_assignment};
use kafkawire::protocol::ErrorCode;
use kafkawire::protocol::messages::ApiKey;
use kafkawire::protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroupMember,
};
use kafkawire::protocol::records::RecordBatchBuilder;
use kafkawire::{
    Admin, Client, ClientConfig, GroupMembership, NewTopic, OffsetToCommit, Producer,
    ProducerRecord,
};
use kafkawire_testkit::TansuBroker;
use kafkawire_testkit::mock::{Action, MockCluster};
use tokio::runtime::Runtime;

/// Runs `kafkawire --bootstrap BOOTSTRAP ARGS...` to the end.
fn kafkawire(bootstrap: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kafkawire"))
        .args(["--bootstrap", bootstrap, "--request-timeout-ms", "5000"])
        .args(args)
        .output()
        .expect("run kafkawire")
}

/// Runs `kafkawire`, which must succeed; returns (stdout, stderr).
fn ok(bootstrap: &str, args: &[&str]) -> (String, String) {
    let o = kafkawire(bootstrap, args);
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        o.status.success(),
        "kafkawire {}: {}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        args.join(" "),
        o.status
    );
    (stdout, stderr)
}

/// Runs `kafkawire`, which must fail; returns its standard error.
fn fails(bootstrap: &str, args: &[&str]) -> String {
    let o = kafkawire(bootstrap, args);
    let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
    assert!(
        !o.status.success(),
        "kafkawire {} should fail:\nstdout:\n{}\nstderr:\n{stderr}",
        args.join(" "),
        String::from_utf8_lossy(&o.stdout)
    );
    stderr
}

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

async fn connect(bootstrap: &str) -> Client {
    Client::connect(ClientConfig::new(bootstrap))
        .await
        .unwrap_or_else(|e| panic!("connect to {bootstrap}: {e}"))
}

/// The lines of `out`, each split at tabs.
fn rows(out: &str) -> Vec<Vec<&str>> {
    out.lines().map(|l| l.split('\t').collect()).collect()
}

fn tansu() -> TansuBroker {
    TansuBroker::start().unwrap_or_else(|e| panic!("cannot start tansu: {e}"))
}

#[test]
fn cluster_describe_and_topic_configs_against_tansu() {
    let broker = tansu();
    let b = broker.bootstrap();
    let rt = runtime();
    let client = rt.block_on(connect(&b));

    let (out, _) = ok(&b, &["cluster", "describe"]);
    let meta = rt.block_on(client.refresh_all_metadata()).unwrap();
    assert_eq!(
        out,
        format!(
            "cluster {} controller 111\nbroker 111 {}\n",
            meta.cluster_id.as_deref().unwrap_or("-"),
            broker.advertised()
        )
    );

    ok(&b, &["topics", "create", "conf", "--partitions", "1"]);
    let (_, err) = ok(
        &b,
        &[
            "configs",
            "alter",
            "--topic",
            "conf",
            "--set",
            "retention.ms=86400000",
            "--set",
            "cleanup.policy=delete",
            "--append",
            "cleanup.policy=compact",
        ],
    );
    assert!(
        err.contains("topic conf: 3 config change(s) applied"),
        "{err}"
    );
    // The library sees what the command set.
    let described = rt
        .block_on(Admin::new(&client).describe_configs(&[ConfigResource::topic("conf")]))
        .unwrap();
    let values: BTreeMap<&str, Option<&str>> = described[0]
        .1
        .iter()
        .map(|e| (e.name.as_str(), e.value.as_deref()))
        .collect();
    assert_eq!(values.get("retention.ms"), Some(&Some("86400000")));
    assert_eq!(values.get("cleanup.policy"), Some(&Some("delete,compact")));
    // And `configs describe` prints it, KEY=VALUE and the source.
    let (out, _) = ok(&b, &["configs", "describe", "--topic", "conf"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("retention.ms=86400000\t")),
        "{out}"
    );
    ok(
        &b,
        &[
            "configs",
            "alter",
            "--topic",
            "conf",
            "--delete",
            "retention.ms",
            "--subtract",
            "cleanup.policy=delete",
        ],
    );
    let (out, _) = ok(&b, &["configs", "describe", "--topic", "conf"]);
    assert!(!out.contains("retention.ms=86400000"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("cleanup.policy=compact\t")),
        "{out}"
    );

    // Usage errors are refused before anything is sent.
    let err = fails(
        &b,
        &["configs", "alter", "--topic", "conf", "--set", "novalue"],
    );
    assert!(err.contains("--set \"novalue\" must be KEY=VALUE"), "{err}");
    let err = fails(&b, &["configs", "describe"]);
    assert!(err.contains("--topic"), "{err}");
}

#[test]
fn offsets_and_group_lag_against_tansu() {
    let broker = tansu();
    let b = broker.bootstrap();
    let rt = runtime();
    let client = rt.block_on(connect(&b));
    let admin = Admin::new(&client);
    let middle = rt.block_on(async {
        admin
            .create_topics(&[NewTopic::new("lagged", 2)], Duration::from_secs(10))
            .await
            .unwrap();
        client.refresh_metadata(&["lagged"]).await.unwrap();
        let producer = Producer::builder(&client).build().unwrap();
        // One record per batch (Tansu's ListOffsets LATEST counts batches).
        for i in 0..3 {
            producer
                .send_and_wait(ProducerRecord::new("lagged", format!("a{i}")).partition(0))
                .await
                .unwrap();
        }
        tokio::time::sleep(Duration::from_millis(30)).await;
        let middle = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        tokio::time::sleep(Duration::from_millis(30)).await;
        for i in 0..2 {
            producer
                .send_and_wait(ProducerRecord::new("lagged", format!("b{i}")).partition(0))
                .await
                .unwrap();
        }
        producer
            .send_and_wait(ProducerRecord::new("lagged", "c").partition(1))
            .await
            .unwrap();
        middle
    });

    let (out, _) = ok(&b, &["offsets", "--topic", "lagged"]);
    let latest: Vec<(String, String)> = rows(&out)
        .iter()
        .map(|r| (r[1].to_owned(), r[2].to_owned()))
        .collect();
    assert_eq!(latest, [("0".into(), "5".into()), ("1".into(), "1".into())]);
    let (out, _) = ok(
        &b,
        &[
            "offsets",
            "--topic",
            "lagged",
            "--partition",
            "0",
            "--timestamp",
            &middle.to_string(),
        ],
    );
    let r = rows(&out);
    assert_eq!(r.len(), 1, "{out}");
    assert_eq!(&r[0][..3], ["lagged", "0", "3"], "{out}");
    let ts: i64 = r[0][3].parse().unwrap();
    assert!(ts >= middle, "{out}");
    let listed = rt
        .block_on(admin.list_offsets(&[("lagged".into(), 0)], middle))
        .unwrap();
    assert_eq!(listed[&("lagged".to_owned(), 0)].timestamp, ts);
    let (out, _) = ok(
        &b,
        &["offsets", "--topic", "lagged", "--timestamp", "earliest"],
    );
    // (Tansu names the first record's timestamp here; Kafka -1.)
    let earliest: Vec<Vec<&str>> = rows(&out).into_iter().map(|r| r[..3].to_vec()).collect();
    assert_eq!(
        earliest,
        [["lagged", "0", "0"], ["lagged", "1", "0"]],
        "{out}"
    );

    // Lag: 5 - 2 on partition 0, 1 - 0 on partition 1.
    let commit = |offsets: &[(i32, i64)]| {
        let plan: Vec<OffsetToCommit> = offsets
            .iter()
            .map(|&(p, o)| OffsetToCommit::new("lagged", p, o))
            .collect();
        rt.block_on(admin.commit_offsets("lag-group", &GroupMembership::none(), &plan))
            .unwrap();
    };
    commit(&[(0, 2), (1, 0)]);
    let (out, _) = ok(&b, &["groups", "lag", "lag-group"]);
    assert_eq!(
        out,
        "group\ttopic\tpartition\tcommitted\tend\tlag\tmember\thost\tclient\n\
         lag-group\tlagged\t0\t2\t5\t3\t-\t-\t-\n\
         lag-group\tlagged\t1\t0\t1\t1\t-\t-\t-\n"
    );
    commit(&[(0, 5), (1, 1)]);
    let (out, _) = ok(&b, &["groups", "lag"]);
    assert!(
        out.contains("lag-group\tlagged\t0\t5\t5\t0\t-\t-\t-\n"),
        "{out}"
    );
    assert!(
        out.contains("lag-group\tlagged\t1\t1\t1\t0\t-\t-\t-\n"),
        "{out}"
    );
    let (out, err) = ok(&b, &["groups", "lag", "nobody"]);
    assert_eq!(
        out,
        "group\ttopic\tpartition\tcommitted\tend\tlag\tmember\thost\tclient\n"
    );
    assert!(
        err.contains("group nobody has no committed offsets and no member"),
        "{err}"
    );
}

/// One batch of `n` records.
fn batch(n: usize) -> bytes::Bytes {
    let mut b = RecordBatchBuilder::new();
    for i in 0..n {
        b.push(1, None, Some(format!("v{i}").as_bytes()), &[])
            .unwrap();
    }
    b.build().unwrap()
}

#[test]
fn add_partitions_delete_records_and_offsets_against_the_mock() {
    let rt = runtime();
    let cluster = rt.block_on(MockCluster::start(2));
    cluster.create_topic("m", 2);
    for p in 0..2 {
        cluster.append("m", p, &batch(5)).unwrap();
        cluster.append("m", p, &batch(5)).unwrap();
    }
    let b = cluster.bootstrap();
    let client = rt.block_on(connect(&b));
    let admin = Admin::new(&client);

    // topics add-partitions
    let (_, err) = ok(&b, &["topics", "add-partitions", "m", "--count", "4"]);
    assert!(err.contains("topic m now has 4 partitions"), "{err}");
    let meta = rt.block_on(client.refresh_metadata(&["m"])).unwrap();
    assert_eq!(meta.partition_count("m"), Some(4));
    let err = fails(&b, &["topics", "add-partitions", "m", "--count", "2"]);
    assert!(
        err.contains("CreatePartitions failed") && err.contains("INVALID_PARTITIONS"),
        "{err}"
    );

    // records delete: one partition, then all of them to the end.
    let (out, err) = ok(
        &b,
        &[
            "records",
            "delete",
            "--topic",
            "m",
            "--partition",
            "0",
            "--before",
            "5",
        ],
    );
    assert_eq!(out, "m\t0\t5\n");
    assert!(
        err.contains("below offset 5 in 1 partition(s) of m"),
        "{err}"
    );
    let start = |p| {
        rt.block_on(admin.list_offset("m", p, offset_spec::EARLIEST))
            .unwrap()
    };
    assert_eq!((start(0), start(1)), (5, 0));
    let (out, _) = ok(&b, &["records", "delete", "--topic", "m", "--before", "-1"]);
    assert_eq!(out, "m\t0\t10\nm\t1\t10\nm\t2\t0\nm\t3\t0\n");
    assert_eq!((start(0), start(1)), (10, 10));
    assert!(cluster.log("m", 1).is_empty());
    let err = fails(
        &b,
        &[
            "records",
            "delete",
            "--topic",
            "m",
            "--partition",
            "2",
            "--before",
            "7",
        ],
    );
    assert!(err.contains("for m-2: OFFSET_OUT_OF_RANGE"), "{err}");

    // groups delete-offsets: one partition, then the whole topic.
    let plan: Vec<OffsetToCommit> = (0..4).map(|p| OffsetToCommit::new("m", p, 1)).collect();
    rt.block_on(admin.commit_offsets("g", &GroupMembership::none(), &plan))
        .unwrap();
    let (_, err) = ok(
        &b,
        &[
            "groups",
            "delete-offsets",
            "g",
            "--topic",
            "m",
            "--partition",
            "1",
        ],
    );
    assert!(err.contains("group g for 1 partition(s) of m"), "{err}");
    let committed = |rt: &Runtime| {
        rt.block_on(admin.committed_offsets("g", None))
            .unwrap()
            .into_keys()
            .map(|(_, p)| p)
            .collect::<Vec<i32>>()
    };
    assert_eq!(committed(&rt), [0, 2, 3]);
    ok(&b, &["groups", "delete-offsets", "g", "--topic", "m"]);
    assert!(committed(&rt).is_empty());
    let err = fails(&b, &["groups", "delete-offsets", "g", "--topic", "m"]);
    assert!(err.contains("GROUP_ID_NOT_FOUND"), "{err}");
}

#[test]
fn broker_configs_against_the_mock() {
    let rt = runtime();
    let cluster = rt.block_on(MockCluster::start(2));
    let b = cluster.bootstrap();
    let client = rt.block_on(connect(&b));

    let (out, _) = ok(&b, &["configs", "describe", "--broker", "1"]);
    assert!(
        out.contains("log.retention.ms=604800000\tDEFAULT_CONFIG\n"),
        "{out}"
    );
    let (_, err) = ok(
        &b,
        &[
            "configs",
            "alter",
            "--broker",
            "1",
            "--set",
            "log.retention.ms=1000",
        ],
    );
    assert!(
        err.contains("broker 1: 1 config change(s) applied"),
        "{err}"
    );
    let (_, err) = ok(
        &b,
        &[
            "configs",
            "alter",
            "--broker-default",
            "--set",
            "num.partitions=3",
            "--validate-only",
        ],
    );
    assert!(err.contains("nothing was changed"), "{err}");
    let (out, _) = ok(&b, &["configs", "describe", "--broker", "1"]);
    assert!(
        out.contains("log.retention.ms=1000\tDYNAMIC_BROKER_CONFIG\n"),
        "{out}"
    );
    assert!(out.contains("num.partitions=1\tDEFAULT_CONFIG\n"), "{out}");
    // The library agrees, and broker 0 kept its default.
    let zero = rt
        .block_on(Admin::new(&client).describe_configs(&[ConfigResource::broker(0)]))
        .unwrap();
    let retention = zero[0]
        .1
        .iter()
        .find(|e| e.name == "log.retention.ms")
        .unwrap();
    assert_eq!(retention.value.as_deref(), Some("604800000"));

    let err = fails(
        &b,
        &["configs", "alter", "--broker", "1", "--set", "no.such=1"],
    );
    assert!(
        err.contains("INVALID_CONFIG") && err.contains("broker 1"),
        "{err}"
    );
}

/// A stable consumer group's DescribeGroups answer: member `m1` (client `svc`) assigned
/// `partitions` of `topic`, encoded by the consumer's own assignment encoder.
fn one_member_owning(topic: &str, partitions: &[i32]) -> Action {
    let assignment = encode_assignment(
        &Assignment {
            partitions: partitions.iter().map(|&p| (topic.to_owned(), p)).collect(),
            user_data: None,
        },
        3,
    )
    .unwrap();
    Action::modify(move |r: &mut DescribeGroupsResponse| {
        let g = &mut r.groups[0];
        g.group_state = "Stable".to_owned();
        g.protocol_type = "consumer".to_owned();
        g.protocol_data = "range".to_owned();
        g.members = vec![DescribedGroupMember {
            member_id: "m1".to_owned(),
            client_id: "svc".to_owned(),
            client_host: "/10.1.2.3".to_owned(),
            member_assignment: assignment,
            ..Default::default()
        }];
    })
}

/// A one-broker mock cluster with topic `work`: partition 0 holds 5 records, partition 1 holds 3.
async fn work_cluster() -> MockCluster {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("work", 2);
    cluster.append("work", 0, &batch(5)).unwrap();
    cluster.append("work", 1, &batch(3)).unwrap();
    cluster
}

#[test]
fn groups_lag_and_describe_show_assigned_partitions_and_their_member() {
    let rt = runtime();
    let cluster = rt.block_on(work_cluster());
    let b = cluster.bootstrap();
    let client = rt.block_on(connect(&b));
    let admin = Admin::new(&client);
    rt.block_on(admin.commit_offsets(
        "svc-group",
        &GroupMembership::none(),
        &[OffsetToCommit::new("work", 0, 2)],
    ))
    .unwrap();

    // work-1 is assigned but not committed yet: listed, committed and lag unknown.
    cluster.script(ApiKey::DescribeGroups, one_member_owning("work", &[0, 1]));
    let (out, _) = ok(&b, &["groups", "lag", "svc-group"]);
    assert_eq!(
        out,
        "group\ttopic\tpartition\tcommitted\tend\tlag\tmember\thost\tclient\n\
         svc-group\twork\t0\t2\t5\t3\tm1\t/10.1.2.3\tsvc\n\
         svc-group\twork\t1\t-\t3\t-\tm1\t/10.1.2.3\tsvc\n"
    );

    // One DescribeGroups: the lag rows take their members from the description printed.
    cluster.script(ApiKey::DescribeGroups, one_member_owning("work", &[1]));
    let described = cluster.request_count(ApiKey::DescribeGroups);
    let (out, _) = ok(&b, &["groups", "describe", "svc-group"]);
    assert_eq!(cluster.request_count(ApiKey::DescribeGroups), described + 1);
    assert_eq!(
        out,
        "group svc-group state Stable protocol range members 1\n\
         \x20 member m1 client svc host /10.1.2.3 partitions 1\n\
         \x20 topic\tpartition\tcommitted\tend\tlag\tmember\thost\tclient\n\
         \x20 work\t0\t2\t5\t3\t-\t-\t-\n\
         \x20 work\t1\t-\t3\t-\tm1\t/10.1.2.3\tsvc\n"
    );
    assert_eq!(cluster.pending_scripts(), 0);
}

#[test]
fn reset_offsets_sets_a_group_kafka_4_has_never_seen() {
    let rt = runtime();
    let cluster = rt.block_on(work_cluster());
    let b = cluster.bootstrap();
    // DescribeGroups v6 (Kafka 4.0) answers GROUP_ID_NOT_FOUND for a group it does not know:
    // no members, so its offsets may be set before its first consumer starts.
    cluster.script(
        ApiKey::DescribeGroups,
        Action::ErrorCode(ErrorCode::GROUP_ID_NOT_FOUND),
    );
    let (_, err) = ok(
        &b,
        &[
            "groups",
            "reset-offsets",
            "brand-new",
            "--topic",
            "work",
            "--to-latest",
            "--execute",
        ],
    );
    assert!(err.contains("committed 2 offsets for group"), "{err}");
    let client = rt.block_on(connect(&b));
    let committed = rt
        .block_on(Admin::new(&client).committed_offsets("brand-new", None))
        .unwrap();
    assert_eq!(
        committed,
        BTreeMap::from([(("work".to_owned(), 0), 5), (("work".to_owned(), 1), 3)])
    );
    // Other errors still stop it.
    cluster.script(
        ApiKey::DescribeGroups,
        Action::ErrorCode(ErrorCode::GROUP_AUTHORIZATION_FAILED),
    );
    let err = fails(
        &b,
        &[
            "groups",
            "reset-offsets",
            "brand-new",
            "--topic",
            "work",
            "--to-earliest",
        ],
    );
    assert!(err.contains("GROUP_AUTHORIZATION_FAILED"), "{err}");
}
