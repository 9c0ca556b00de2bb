//! Metadata and admin operations against a real broker: the broker list, topics after create,
//! list/describe, delete, and the errors for unknown and duplicate topics.
mod common;

use std::time::Duration;

use kafkawire::protocol::ErrorCode;
use kafkawire::{Admin, Client, ClientConfig, Error, NewTopic};

/// Tansu's only broker always has this node id.
const TANSU_NODE_ID: i32 = 111;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_lists_the_broker_and_created_topics_with_leaders() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let alpha = broker.topic("meta-alpha");
    let beta = broker.topic("meta-beta");

    // The broker list comes with the connect.
    let meta = client.metadata();
    assert!(!meta.brokers.is_empty(), "no brokers in the metadata");
    for (id, b) in &meta.brokers {
        assert_eq!(b.node_id, *id, "{b:?}");
    }
    let answered = client.bootstrap_address().expect("an address answered");
    let bootstrap = broker.bootstrap_addresses();
    assert!(
        bootstrap.contains(&answered),
        "{answered} not in {bootstrap:?}"
    );
    if let Some(tansu) = broker.tansu() {
        assert_eq!(meta.brokers.len(), 1, "{:?}", meta.brokers);
        let b = &meta.brokers[&TANSU_NODE_ID];
        assert_eq!(b.node_id, TANSU_NODE_ID);
        assert_eq!(b.host, "127.0.0.1");
        assert_eq!(b.port, i32::from(tansu.port()));
        assert_eq!(b.address(), broker.bootstrap());
        assert_eq!(
            client.bootstrap_address().as_deref(),
            Some(broker.bootstrap().as_str())
        );
    }
    let broker_ids: Vec<i32> = meta.brokers.keys().copied().collect();

    let admin = Admin::new(&client);
    admin
        .create_topics(
            &[NewTopic::new(&alpha, 3), NewTopic::new(&beta, 1)],
            Duration::from_secs(10),
        )
        .await
        .expect("create topics");

    // create_topics refreshed the cache for the new topics.
    let cached = client.metadata();
    assert_eq!(cached.partition_count(&alpha), Some(3));
    assert_eq!(cached.partition_count(&beta), Some(1));

    let topics = admin.list_topics().await.expect("list topics");
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&alpha.as_str()) && names.contains(&beta.as_str()),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "list_topics is sorted by name");
    for (name, n) in [(&alpha, 3), (&beta, 1)] {
        let t = topics.iter().find(|t| &t.name == name).expect("listed");
        assert!(t.error.is_ok(), "{name}: {}", t.error);
        assert!(!t.is_internal);
        let indexes: Vec<i32> = t.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(indexes, (0..n).collect::<Vec<_>>(), "{name}");
        for p in &t.partitions {
            assert!(
                broker_ids.contains(&p.leader),
                "{name}-{}: leader {} is not one of the brokers {broker_ids:?}",
                p.partition,
                p.leader
            );
            if broker.is_tansu() {
                assert_eq!(p.leader, TANSU_NODE_ID, "{name}-{}", p.partition);
            }
            assert!(p.error.is_ok(), "{name}-{}: {}", p.partition, p.error);
        }
    }

    let described = admin.describe_topic(&alpha).await.expect("describe");
    assert_eq!(described.name, alpha);
    assert_eq!(described.partitions.len(), 3);
    assert!(
        described
            .partitions
            .iter()
            .all(|p| p.replicas.contains(&p.leader)),
        "{:?}",
        described.partitions
    );
    if broker.is_tansu() {
        assert!(
            described
                .partitions
                .iter()
                .all(|p| p.leader == TANSU_NODE_ID)
        );
        assert!(
            described
                .partitions
                .iter()
                .all(|p| p.replicas.contains(&TANSU_NODE_ID))
        );
    }

    // Routing agrees with the metadata.
    for p in 0..3 {
        let leader = client.leader_for(&alpha, p).await.expect("leader");
        let described_leader = described
            .partitions
            .iter()
            .find(|d| d.partition == p)
            .expect("described partition")
            .leader;
        assert_eq!(leader, described_leader, "{alpha}-{p}");
        if broker.is_tansu() {
            assert_eq!(leader, TANSU_NODE_ID);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topic_then_describe_is_unknown_topic() {
    let broker = common::broker();
    let mut config = ClientConfig::new(&broker.bootstrap());
    config.allow_auto_topic_creation = false;
    let client = Client::connect(config).await.expect("connect");
    let admin = Admin::new(&client);
    let doomed = broker.topic("doomed");
    let never = broker.topic("never-created");

    admin
        .create_topics(&[NewTopic::new(&doomed, 2)], Duration::from_secs(10))
        .await
        .expect("create");
    if !broker.is_tansu() {
        // A Kafka cluster's metadata can lag behind its controller for a moment.
        common::wait_for_topic(&client, &doomed, 2).await;
    }
    assert_eq!(
        admin
            .describe_topic(&doomed)
            .await
            .expect("describe")
            .partitions
            .len(),
        2
    );

    admin
        .delete_topics(&[&doomed], Duration::from_secs(10))
        .await
        .expect("delete");
    if !broker.is_tansu() {
        // On a Kafka cluster the deletion reaches the brokers' metadata a moment after the
        // controller answered: wait for it (the assertions below then hold as on Tansu).
        wait_until_unlisted(&admin, &doomed).await;
    }
    assert!(
        !client.metadata().topics.contains_key(&doomed),
        "the cache still has the deleted topic"
    );
    let listed = admin.list_topics().await.expect("list");
    assert!(listed.iter().all(|t| t.name != doomed), "{listed:?}");

    for name in [doomed.as_str(), never.as_str()] {
        let err = admin
            .describe_topic(name)
            .await
            .expect_err("describe an absent topic");
        assert_eq!(
            err.code(),
            Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
            "{name}: {err}"
        );
        assert_eq!(err.topic(), Some(name), "{err}");
        assert!(err.to_string().contains(name), "{err}");
        assert!(matches!(err, Error::Broker { .. }), "{err:?}");
    }
    // With auto-creation off, asking did not create them.
    let listed = admin.list_topics().await.expect("list");
    assert!(
        listed.iter().all(|t| t.name != doomed && t.name != never),
        "{listed:?}"
    );

    // Deleting a topic that is not there names it.
    let err = admin
        .delete_topics(&[&never], Duration::from_secs(10))
        .await
        .expect_err("delete an absent topic");
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert_eq!(err.topic(), Some(never.as_str()), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_topic_is_topic_already_exists() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let admin = Admin::new(&client);
    let twice = broker.topic("twice");
    common::create_topic(&client, &twice, 1).await;

    let err = admin
        .create_topics(&[NewTopic::new(&twice, 1)], Duration::from_secs(10))
        .await
        .expect_err("second create");
    assert_eq!(err.code(), Some(ErrorCode::TOPIC_ALREADY_EXISTS), "{err}");
    assert_eq!(err.topic(), Some(twice.as_str()), "{err}");
    assert!(!err.is_retriable(), "{err}");
    assert!(err.to_string().contains("TOPIC_ALREADY_EXISTS"), "{err}");

    // The existing topic is untouched.
    assert_eq!(
        admin
            .describe_topic(&twice)
            .await
            .expect("describe")
            .partitions
            .len(),
        1
    );
}

/// Lists topics until `name` is no longer among them; fails after
/// [`common::METADATA_DEADLINE`].
async fn wait_until_unlisted(admin: &Admin, name: &str) {
    let start = std::time::Instant::now();
    while admin
        .list_topics()
        .await
        .expect("list")
        .iter()
        .any(|t| t.name == name)
    {
        assert!(
            start.elapsed() < common::METADATA_DEADLINE,
            "{name} is still listed {:?} after its deletion",
            common::METADATA_DEADLINE
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
