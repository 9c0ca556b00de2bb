//! The advertised-listener trap against a real broker: the bootstrap address answers, but the
//! broker advertises an address this client cannot reach. The client must say so plainly, and
//! the address map must get it working.
//!
//! Every test here starts a Tansu broker of its own even when `KAFKAWIRE_BOOTSTRAP` names an
//! external one: the trap needs a broker that advertises an address of the test's choosing, and
//! the last test stops its broker mid-test, which no shared broker may suffer.
mod common;

use std::time::Duration;

use kafkawire::{
    Admin, Client, ClientConfig, Error, NewTopic, PartitionConsumer, Producer, ProducerConfig,
    ProducerRecord, StartOffset,
};
use kafkawire_testkit::TansuBroker;

const ADVERTISED: &str = "kafka.invalid:9092";

/// A Tansu broker of this test's own (whatever `KAFKAWIRE_BOOTSTRAP` says) advertising
/// [`ADVERTISED`], which cannot be reached.
fn trapped_broker() -> TansuBroker {
    TansuBroker::start_advertising(ADVERTISED).unwrap_or_else(|e| panic!("cannot start tansu: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_advertised_listener_is_diagnosed() {
    let broker = trapped_broker();
    let bootstrap = broker.bootstrap();

    // Bootstrap answers, and Metadata shows what the broker advertises.
    let client = Client::connect(ClientConfig::new(&bootstrap))
        .await
        .expect("connect");
    let brokers: Vec<String> = client
        .metadata()
        .brokers
        .values()
        .map(|b| b.address())
        .collect();
    assert_eq!(brokers, vec![ADVERTISED.to_owned()]);

    // CreateTopics falls back to the bootstrap connection when the controller is unreachable.
    Admin::new(&client)
        .create_topics(&[NewTopic::new("trap", 1)], Duration::from_secs(10))
        .await
        .expect("create through the bootstrap connection");

    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        producer.send_and_wait(ProducerRecord::new("trap", "lost").partition(0)),
    )
    .await
    .expect("the produce gives up instead of hanging")
    .expect_err("the leader's advertised address cannot be reached");
    let Error::AdvertisedListenerUnreachable {
        bootstrap: b,
        node_id,
        advertised,
        mapped_to,
        ..
    } = &err
    else {
        panic!("expected AdvertisedListenerUnreachable, got {err:?}");
    };
    assert_eq!(b, &bootstrap);
    assert_eq!(*node_id, 111);
    assert_eq!(advertised, ADVERTISED);
    assert_eq!(mapped_to, &None);
    let text = err.to_string();
    for needle in [
        bootstrap.as_str(),
        ADVERTISED,
        "advertised.listeners",
        "--broker-map",
    ] {
        assert!(text.contains(needle), "{needle:?} missing from: {text}");
    }
    assert!(
        text.contains(&format!("--broker-map {ADVERTISED}=")),
        "{text}"
    );
    assert!(!err.is_retriable(), "{err}");

    // The consumer hits the same wall when it fetches.
    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    let err = tokio::time::timeout(Duration::from_secs(20), async {
        consumer.assign("trap", 0, StartOffset::Offset(0)).await?;
        consumer.poll().await
    })
    .await
    .expect("the poll gives up instead of hanging")
    .expect_err("the fetch cannot reach the leader");
    assert!(
        matches!(err, Error::AdvertisedListenerUnreachable { .. }),
        "{err:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn address_map_gets_past_the_trap() {
    let broker = trapped_broker();
    broker
        .create_topic("mapped", 2)
        .expect("create with the tansu CLI");

    let mut config = ClientConfig::new(&broker.bootstrap());
    config
        .address_map
        .insert(ADVERTISED, &broker.bootstrap())
        .expect("map");
    let client = Client::connect(config).await.expect("connect");
    // Metadata still says what the broker advertises; only connections are rewritten.
    assert_eq!(client.metadata().brokers[&111].address(), ADVERTISED);

    let producer = Producer::new(&client, ProducerConfig::default()).expect("valid config");
    let records: Vec<ProducerRecord> = (0..20)
        .map(|i| ProducerRecord::new("mapped", format!("v{i}")).key(format!("k{i}")))
        .collect();
    let written = producer
        .send_batch(records.clone())
        .await
        .expect("produce through the map");
    assert_eq!(written.len(), 20);

    let mut consumer = PartitionConsumer::new(&client, common::quick_consumer_config());
    consumer
        .assign_topic("mapped", StartOffset::Earliest)
        .await
        .expect("assign");
    let got = common::drain(&mut consumer, 20).await;
    for (r, m) in records.iter().zip(&written) {
        let read = &got.of("mapped", m.partition)[m.offset as usize];
        assert_eq!(read, &common::Owned::expected(m.offset, r));
    }

    // Admin through the controller connection works too.
    Admin::new(&client)
        .create_topics(&[NewTopic::new("mapped-2", 1)], Duration::from_secs(10))
        .await
        .expect("create through the mapped controller");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_went_down_is_not_the_advertised_listener_trap() {
    // A Tansu of this test's own even with `KAFKAWIRE_BOOTSTRAP` set: the test stops it.
    let broker = common::own_tansu();
    let client = common::connect(&broker).await;
    let gone = broker.topic("gone");
    common::create_topic(&client, &gone, 1).await;
    // Retries are bounded by time: a record fails once the delivery timeout has passed.
    let producer = Producer::new(
        &client,
        ProducerConfig {
            linger: Duration::ZERO,
            request_timeout: Duration::from_millis(500),
            delivery_timeout: Duration::from_secs(2),
            ..ProducerConfig::default()
        },
    )
    .expect("valid config");
    producer
        .send_and_wait(ProducerRecord::new(&gone, "before").partition(0))
        .await
        .expect("send");

    // The broker advertises exactly the bootstrap address; now neither answers.
    drop(broker);
    let err = tokio::time::timeout(
        Duration::from_secs(20),
        producer.send_and_wait(ProducerRecord::new(&gone, "after").partition(0)),
    )
    .await
    .expect("the produce gives up instead of hanging")
    .expect_err("the broker is down");
    assert!(
        !matches!(err, Error::AdvertisedListenerUnreachable { .. }),
        "a broker that is down is not an advertised-listener problem: {err}"
    );
    assert!(
        err.is_retriable(),
        "a broker restart is worth retrying: {err:?}"
    );
    // It was retried until the delivery timeout; the last attempt's error is not the trap
    // either.
    let Error::DeliveryTimeout { last_error, .. } = &err else {
        panic!("expected DeliveryTimeout after retries, got {err:?}");
    };
    let last_error = last_error.as_deref().expect("the last attempt's error");
    assert!(
        !last_error.contains("advertised.listeners"),
        "a broker that is down is not an advertised-listener problem: {last_error}"
    );
}
