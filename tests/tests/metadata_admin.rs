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

    // The broker list comes with the connect.
    let meta = client.metadata();
    assert_eq!(meta.brokers.len(), 1, "{:?}", meta.brokers);
    let b = &meta.brokers[&TANSU_NODE_ID];
    assert_eq!(b.node_id, TANSU_NODE_ID);
    assert_eq!(b.host, "127.0.0.1");
    assert_eq!(b.port, i32::from(broker.port()));
    assert_eq!(b.address(), broker.bootstrap());
    assert_eq!(
        client.bootstrap_address().as_deref(),
        Some(broker.bootstrap().as_str())
    );

    let admin = Admin::new(&client);
    admin
        .create_topics(
            &[
                NewTopic::new("meta-alpha", 3),
                NewTopic::new("meta-beta", 1),
            ],
            Duration::from_secs(10),
        )
        .await
        .expect("create topics");

    // create_topics refreshed the cache for the new topics.
    let cached = client.metadata();
    assert_eq!(cached.partition_count("meta-alpha"), Some(3));
    assert_eq!(cached.partition_count("meta-beta"), Some(1));

    let topics = admin.list_topics().await.expect("list topics");
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"meta-alpha") && names.contains(&"meta-beta"),
        "{names:?}"
    );
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "list_topics is sorted by name");
    for (name, n) in [("meta-alpha", 3), ("meta-beta", 1)] {
        let t = topics.iter().find(|t| t.name == name).expect("listed");
        assert!(t.error.is_ok(), "{name}: {}", t.error);
        assert!(!t.is_internal);
        let indexes: Vec<i32> = t.partitions.iter().map(|p| p.partition).collect();
        assert_eq!(indexes, (0..n).collect::<Vec<_>>(), "{name}");
        for p in &t.partitions {
            assert_eq!(p.leader, TANSU_NODE_ID, "{name}-{}", p.partition);
            assert!(p.error.is_ok(), "{name}-{}: {}", p.partition, p.error);
        }
    }

    let alpha = admin.describe_topic("meta-alpha").await.expect("describe");
    assert_eq!(alpha.name, "meta-alpha");
    assert_eq!(alpha.partitions.len(), 3);
    assert!(alpha.partitions.iter().all(|p| p.leader == TANSU_NODE_ID));
    assert!(
        alpha
            .partitions
            .iter()
            .all(|p| p.replicas.contains(&TANSU_NODE_ID))
    );

    // Routing agrees with the metadata.
    for p in 0..3 {
        assert_eq!(
            client.leader_for("meta-alpha", p).await.expect("leader"),
            TANSU_NODE_ID
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_topic_then_describe_is_unknown_topic() {
    let broker = common::broker();
    let mut config = ClientConfig::new(&broker.bootstrap());
    config.allow_auto_topic_creation = false;
    let client = Client::connect(config).await.expect("connect");
    let admin = Admin::new(&client);

    admin
        .create_topics(&[NewTopic::new("doomed", 2)], Duration::from_secs(10))
        .await
        .expect("create");
    assert_eq!(
        admin
            .describe_topic("doomed")
            .await
            .expect("describe")
            .partitions
            .len(),
        2
    );

    admin
        .delete_topics(&["doomed"], Duration::from_secs(10))
        .await
        .expect("delete");
    assert!(
        !client.metadata().topics.contains_key("doomed"),
        "the cache still has the deleted topic"
    );
    let listed = admin.list_topics().await.expect("list");
    assert!(listed.iter().all(|t| t.name != "doomed"), "{listed:?}");

    for name in ["doomed", "never-created"] {
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
        listed
            .iter()
            .all(|t| t.name != "doomed" && t.name != "never-created"),
        "{listed:?}"
    );

    // Deleting a topic that is not there names it.
    let err = admin
        .delete_topics(&["never-created"], Duration::from_secs(10))
        .await
        .expect_err("delete an absent topic");
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert_eq!(err.topic(), Some("never-created"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn creating_an_existing_topic_is_topic_already_exists() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let admin = Admin::new(&client);
    common::create_topic(&client, "twice", 1).await;

    let err = admin
        .create_topics(&[NewTopic::new("twice", 1)], Duration::from_secs(10))
        .await
        .expect_err("second create");
    assert_eq!(err.code(), Some(ErrorCode::TOPIC_ALREADY_EXISTS), "{err}");
    assert_eq!(err.topic(), Some("twice"), "{err}");
    assert!(!err.is_retriable(), "{err}");
    assert!(err.to_string().contains("TOPIC_ALREADY_EXISTS"), "{err}");

    // The existing topic is untouched.
    assert_eq!(
        admin
            .describe_topic("twice")
            .await
            .expect("describe")
            .partitions
            .len(),
        1
    );
}
