//! Errors from producing and consuming carry what they concern, and fail instead of hanging.
mod common;

use std::time::Duration;

use kafkawire::protocol::ErrorCode;
use kafkawire::{
    Client, ClientConfig, PartitionConsumer, Producer, ProducerConfig, ProducerRecord, StartOffset,
};

const GIVE_UP: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_a_missing_partition_names_topic_and_partition() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let single = broker.topic("single");
    common::create_topic(&client, &single, 1).await;
    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");

    // Refused by `send` itself, before the record is buffered.
    let err = tokio::time::timeout(
        GIVE_UP,
        producer.send(ProducerRecord::new(&single, "x").partition(99)),
    )
    .await
    .expect("the produce fails instead of hanging")
    .expect_err("partition 99 does not exist");
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert_eq!(err.topic(), Some(single.as_str()), "{err}");
    assert_eq!(err.partition(), Some(99), "{err}");
    assert!(err.to_string().contains(&format!("{single}-99")), "{err}");

    // Nothing was written to the real partition, and the producer still works.
    assert_eq!(producer.pending(), 0, "nothing was buffered");
    let m = producer
        .send_and_wait(ProducerRecord::new(&single, "y"))
        .await
        .expect("produce");
    assert_eq!((m.partition, m.offset), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consume_from_a_missing_partition_names_topic_and_partition() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let single = broker.topic("single");
    common::create_topic(&client, &single, 1).await;

    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    let err = tokio::time::timeout(GIVE_UP, consumer.assign(&single, 5, StartOffset::Earliest))
        .await
        .expect("assign fails instead of hanging")
        .expect_err("partition 5 does not exist");
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert_eq!(
        (err.topic(), err.partition()),
        (Some(single.as_str()), Some(5)),
        "{err}"
    );
    assert!(consumer.assignment().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_to_an_unknown_topic_without_auto_creation_names_it() {
    let broker = common::broker();
    let mut config = ClientConfig::new(&broker.bootstrap());
    config.allow_auto_topic_creation = false;
    let client = Client::connect(config).await.expect("connect");
    // `send` waits up to `max_block` for the topic's metadata (it may yet be created), then
    // gives up naming the topic, as the Java client does.
    let max_block = Duration::from_secs(2);
    let producer = Producer::new(
        &client,
        ProducerConfig {
            max_block,
            ..ProducerConfig::default()
        },
    )
    .expect("valid config");
    let nowhere = broker.topic("nowhere");

    let start = std::time::Instant::now();
    let err = tokio::time::timeout(
        GIVE_UP,
        producer.send(ProducerRecord::new(&nowhere, "x").key("k")),
    )
    .await
    .expect("the produce fails instead of hanging")
    .expect_err("the topic does not exist");
    assert!(
        start.elapsed() >= max_block,
        "gave up after {:?}, before max_block",
        start.elapsed()
    );
    assert_eq!(
        err.code(),
        Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION),
        "{err}"
    );
    assert_eq!(err.topic(), Some(nowhere.as_str()), "{err}");
}
