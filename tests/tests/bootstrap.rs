//! Bootstrap lists: dead addresses are skipped, and when none answers the error names each.
mod common;

use kafkawire::{Client, ClientConfig, Error, Producer, ProducerConfig, ProducerRecord};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_first_address_is_skipped() {
    let broker = common::broker();
    let dead = format!("127.0.0.1:{}", common::dead_port());
    let list = format!("{dead}, {}", broker.bootstrap());

    let client = Client::connect(ClientConfig::new(&list))
        .await
        .expect("connect past the dead address");
    let live = broker.bootstrap_addresses();
    let mut want = vec![dead.clone()];
    want.extend(live.iter().cloned());
    assert_eq!(client.config().bootstrap, want);
    let answered = client.bootstrap_address().expect("an address answered");
    assert_ne!(answered, dead);
    assert!(live.contains(&answered), "{answered} not in {live:?}");
    assert!(!client.metadata().brokers.is_empty());
    if broker.is_tansu() {
        assert_eq!(client.config().bootstrap, vec![dead, broker.bootstrap()]);
        assert_eq!(answered, broker.bootstrap());
        assert_eq!(client.metadata().brokers.len(), 1);
    }

    // And the client works.
    let boot = broker.topic("boot");
    common::create_topic(&client, &boot, 1).await;
    let m = Producer::new(&client, ProducerConfig::default())
        .expect("valid config")
        .send_and_wait(ProducerRecord::new(&boot, "hello"))
        .await
        .expect("produce");
    assert_eq!((m.partition, m.offset), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_dead_addresses_is_no_broker_reachable() {
    let dead: Vec<String> = (0..3)
        .map(|_| format!("127.0.0.1:{}", common::dead_port()))
        .collect();
    let err = Client::connect(ClientConfig::new(&dead.join(",")))
        .await
        .expect_err("nothing listens");
    let Error::NoBrokerReachable { attempts } = &err else {
        panic!("expected NoBrokerReachable, got {err:?}");
    };
    let tried: Vec<&str> = attempts.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(tried, dead.iter().map(String::as_str).collect::<Vec<_>>());
    assert!(
        attempts.iter().all(|(_, why)| !why.is_empty()),
        "{attempts:?}"
    );
    let text = err.to_string();
    for addr in &dead {
        assert!(text.contains(addr.as_str()), "{addr} missing from: {text}");
    }
    assert!(err.is_retriable(), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_bootstrap_list_is_a_config_error() {
    let err = Client::connect(ClientConfig::new(" , "))
        .await
        .expect_err("empty list");
    assert!(matches!(err, Error::Config(_)), "{err:?}");
    assert!(!err.is_retriable());
}
