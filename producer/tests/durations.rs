//! Duration settings at the edge (issue "Hostile input", item 6): `Duration::MAX` in any
//! duration of a `ProducerConfig` is a clear configuration error naming the setting, never a
//! panic, and the longest accepted durations (`ProducerConfig::MAX_DURATION`) run without
//! overflowing the clock.

use std::time::Duration;

use kafkawire_client::Error;
use kafkawire_producer::{Producer, ProducerConfig, ProducerRecord};
use kafkawire_testkit::mock::MockCluster;

mod common;
use common::{client, within};

/// Every duration field of a config set to `d`, with its name.
type Setter = fn(&mut ProducerConfig, Duration);
const FIELDS: [(&str, Setter); 7] = [
    ("linger", |c, d| c.linger = d),
    ("max_block", |c, d| c.max_block = d),
    ("request_timeout", |c, d| c.request_timeout = d),
    ("delivery_timeout", |c, d| c.delivery_timeout = d),
    ("retry_backoff", |c, d| c.retry_backoff = d),
    ("retry_backoff_max", |c, d| c.retry_backoff_max = d),
    ("transaction_timeout", |c, d| c.transaction_timeout = d),
];

#[test]
fn every_duration_at_duration_max_is_a_config_error_without_panic() {
    let mut all = ProducerConfig::default();
    for (_, set) in FIELDS {
        set(&mut all, Duration::MAX);
    }
    let e = all.validate().expect_err("Duration::MAX is refused");
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("Duration::MAX"), "{e}");

    for (name, set) in FIELDS {
        let mut c = ProducerConfig::default();
        set(&mut c, Duration::MAX);
        let e = c.validate().expect_err(name).to_string();
        assert!(
            e.contains(&format!("{name} is Duration::MAX"))
                && e.contains("2147483647 ms (about 24.8 days)"),
            "{name}: {e}"
        );
        // One past the maximum is refused too; the maximum itself is not refused for its size.
        let mut c = ProducerConfig::default();
        set(
            &mut c,
            ProducerConfig::MAX_DURATION + Duration::from_nanos(1),
        );
        let e = c.validate().expect_err(name).to_string();
        assert!(e.contains(name), "{name}: {e}");
        let mut c = ProducerConfig::default();
        set(&mut c, ProducerConfig::MAX_DURATION);
        if let Err(e) = c.validate() {
            assert!(
                !e.to_string().contains("24.8 days"),
                "{name} at the maximum: {e}"
            );
        }
    }
}

#[tokio::test]
async fn a_producer_with_duration_max_settings_is_refused_by_new_and_build() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let client = client(&cluster).await;
        let mut config = ProducerConfig::default();
        for (_, set) in FIELDS {
            set(&mut config, Duration::MAX);
        }
        let e = Producer::new(&client, config.clone()).expect_err("refused");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        let e = Producer::builder(&client)
            .config(config)
            .build()
            .expect_err("refused");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        let e = Producer::builder(&client)
            .linger(Duration::MAX)
            .build()
            .expect_err("refused");
        assert!(e.to_string().contains("linger is Duration::MAX"), "{e}");
    })
    .await;
}

#[tokio::test]
async fn a_producer_with_the_longest_durations_sends() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = client(&cluster).await;
        let mut config = ProducerConfig::default();
        for (_, set) in FIELDS {
            set(&mut config, ProducerConfig::MAX_DURATION);
        }
        // delivery_timeout must hold linger + request_timeout.
        config.linger = Duration::from_millis(1);
        config.request_timeout = Duration::from_secs(5);
        config.retry_backoff = Duration::from_millis(10);
        config.validate().expect("valid");
        let producer = Producer::new(&client, config).expect("producer");
        let meta = producer
            .send_and_wait(ProducerRecord::new("t", "v0").partition(0))
            .await
            .expect("sent");
        assert_eq!(meta.offset, 0);
        producer.close(Duration::MAX).await.expect("close");
    })
    .await;
}
