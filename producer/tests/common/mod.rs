//! Helpers shared by this crate's mock-broker tests (each test file that uses them declares
//! `mod common;`; not every file uses every helper).
#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use kafkawire_client::{Client, ClientConfig};
use kafkawire_testkit::mock::MockCluster;

/// Runs a test body within 15 s, so that a hang fails instead of blocking the suite.
pub(crate) async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("test did not finish within 15 s")
}

/// A client of `cluster` (bootstrapping from its broker 0) with short timeouts (requests 5 s,
/// connection setup 2 s) and no topic auto-creation.
pub(crate) async fn client(cluster: &MockCluster) -> Client {
    let mut c = ClientConfig::new(&cluster.broker_addr(0));
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    Client::connect(c)
        .await
        .expect("connect to the mock cluster")
}
