//! Connection-lifecycle faults, one test per defect fixed in the connection layer: timed-out
//! requests retire their connection, a closing connection fails everything in flight at once,
//! blackholed (half-open) connections, no lock across a connect and a bounded setup, reconnect
//! backoff, unknown brokers, capped throttles, the enqueue-after-close race, broker restarts and
//! callers that give up on a written request.
//!
//! Every test runs inside a tokio timeout, so a hang fails instead of blocking the suite.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafkawire_client::{Client, ClientConfig, Connection, Error};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafkawire_protocol::messages::metadata_response::MetadataResponse;
use kafkawire_testkit::mock::{Action, MockCluster, Reply};
use kafkawire_testkit::proxy::FaultProxy;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Runs a test body, failing it if it takes longer than `secs`.
async fn within<F: Future>(secs: u64, f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .unwrap_or_else(|_| panic!("test did not finish within {secs} s"))
}

/// The request timeout of [`config`].
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = REQUEST_TIMEOUT;
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    c
}

/// A one-broker mock cluster and a client of it with the given request timeout.
async fn one_broker(request_timeout: Duration) -> (MockCluster, Client) {
    let cluster = MockCluster::start(1).await;
    let mut cfg = config(&cluster.broker_addr(0));
    cfg.request_timeout = request_timeout;
    let client = Client::connect(cfg).await.expect("connect");
    (cluster, client)
}

/// The client's connection to broker 0.
async fn connection(client: &Client) -> Arc<Connection> {
    client
        .broker_connection(0)
        .await
        .expect("broker connection")
}

/// A fault proxy in front of broker `id`, through which `cfg` reaches that broker.
async fn proxy_in_front_of(
    cluster: &MockCluster,
    id: i32,
    seed: u64,
    cfg: &mut ClientConfig,
) -> FaultProxy {
    let proxy = FaultProxy::start(cluster.broker_addr(id), seed)
        .await
        .expect("proxy");
    cfg.address_map
        .insert(&cluster.broker_addr(id), &proxy.addr().to_string())
        .expect("map");
    proxy
}

/// Scripts broker 0 to leave its next `n` Metadata requests unanswered.
fn leave_unanswered(cluster: &MockCluster, n: usize) {
    for _ in 0..n {
        cluster
            .broker(0)
            .script(ApiKey::Metadata, Action::NoResponse);
    }
}

/// Scripts broker 0 to answer the next Metadata request with a throttle of `i32::MAX` ms.
fn throttle_forever(cluster: &MockCluster) {
    cluster.broker(0).script(
        ApiKey::Metadata,
        Action::modify::<MetadataResponse>(|r| r.throttle_time_ms = i32::MAX),
    );
}

/// A Metadata request for the broker list only (no topics).
fn brokers_only() -> MetadataRequest {
    MetadataRequest {
        topics: Some(Vec::new()),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

/// The API, timeout and time held back by a throttle (ms) of `e`, which must be a Timeout
/// (`expected` says which kind in the panic otherwise).
fn timeout_parts(e: &Error, expected: &str) -> (ApiKey, u64, u64) {
    match e {
        Error::Timeout {
            api,
            timeout_ms,
            throttled_ms,
            ..
        } => (*api, *timeout_ms, *throttled_ms),
        other => panic!("expected {expected}, got {other:?}"),
    }
}

/// Asks broker 0 for the broker list, which must be answered (`why`).
async fn broker_0_answers(client: &Client, why: &str) {
    client.send_to(0, &brokers_only()).await.expect(why);
}

/// Waits (up to 2 s) until the mock has received `n` Metadata requests in total.
async fn metadata_requests_reach(cluster: &MockCluster, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(2);
    while cluster.request_count(ApiKey::Metadata) < n {
        assert!(
            Instant::now() < deadline,
            "the mock saw {} Metadata requests, expected {n}",
            cluster.request_count(ApiKey::Metadata)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// 1. A written request that gets no answer within the request timeout retires its connection
///    (it may be half-open); the next request opens a new one.
#[tokio::test]
async fn a_timed_out_request_retires_its_connection() {
    within(5, async {
        let (cluster, client) = one_broker(Duration::from_millis(300)).await;
        let conn = connection(&client).await;
        let before = cluster.broker(0).connections();

        leave_unanswered(&cluster, 1);
        let started = Instant::now();
        let e = conn.send(&brokers_only()).await.unwrap_err();
        let took = started.elapsed();
        let (api, timeout_ms, throttled_ms) = timeout_parts(&e, "Timeout");
        assert_eq!(api, ApiKey::Metadata);
        assert_eq!(timeout_ms, 300);
        assert_eq!(throttled_ms, 0, "it was written, not throttled");
        assert!(e.is_retriable(), "{e}");
        assert!(took < Duration::from_millis(1000), "{took:?}");
        assert!(conn.is_closed(), "the timed-out connection must be retired");

        broker_0_answers(&client, "the next request goes out on a new connection").await;
        assert_eq!(
            cluster.broker(0).connections(),
            before + 1,
            "send_to opened exactly one new connection"
        );
    })
    .await;
}

/// 2. A connection closed by the broker fails every request in flight on it at once, with a
///    retriable error, not after the request timeout.
#[tokio::test]
async fn a_closed_connection_fails_everything_in_flight_at_once() {
    within(5, async {
        let (cluster, client) = one_broker(REQUEST_TIMEOUT).await;
        let conn = connection(&client).await;
        let seen = cluster.request_count(ApiKey::Metadata);
        leave_unanswered(&cluster, 3);
        let req = brokers_only();
        let futures: Vec<_> = (0..3)
            .map(|_| conn.send_ordered(&req).expect("queued"))
            .collect();
        let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
        metadata_requests_reach(&cluster, seen + 3).await;

        let dropped = Instant::now();
        cluster.broker(0).drop_connections();
        for (i, t) in tasks.into_iter().enumerate() {
            let e = t.await.expect("task").unwrap_err();
            let took = dropped.elapsed();
            assert!(
                matches!(e, Error::ConnectionClosed { .. } | Error::Io { .. }),
                "request {i}: {e:?}"
            );
            assert!(e.is_retriable(), "request {i}: {e}");
            assert!(
                took < Duration::from_millis(200),
                "request {i} failed {took:?} after the connection closed"
            );
        }
        assert!(conn.is_closed());
    })
    .await;
}

/// 2b. The same when the connection is retired by a request of its own timing out: the other
///     requests in flight fail at once (retriable), they do not wait out their own timeouts.
#[tokio::test]
async fn a_timeout_fails_the_other_requests_in_flight_at_once() {
    within(5, async {
        let (cluster, client) = one_broker(REQUEST_TIMEOUT).await;
        let conn = connection(&client).await;
        leave_unanswered(&cluster, 3);
        let started = Instant::now();
        let short = {
            let conn = conn.clone();
            tokio::spawn(async move {
                conn.send_with_timeout(&brokers_only(), Duration::from_millis(200))
                    .await
            })
        };
        // Queued after the short one: the connection's 10 s request timeout.
        let req = brokers_only();
        let long: Vec<_> = (0..2)
            .map(|_| tokio::spawn(conn.send_ordered(&req).expect("queued")))
            .collect();

        let e = short.await.expect("task").unwrap_err();
        assert!(matches!(e, Error::Timeout { .. }), "{e:?}");
        for (i, t) in long.into_iter().enumerate() {
            let e = t.await.expect("task").unwrap_err();
            assert!(e.is_retriable(), "request {i}: {e}");
            assert!(
                matches!(e, Error::ConnectionClosed { .. }),
                "request {i}: {e:?}"
            );
        }
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(600),
            "the others failed {took:?} after they were sent"
        );
        assert!(conn.is_closed());
    })
    .await;
}

/// 3. A blackholed connection (open socket, nothing comes back, like a dead NAT entry): the
///    request times out, the connection is retired, and the next request succeeds on a new
///    connection within the request timeout plus a reconnect.
#[tokio::test]
async fn a_blackholed_connection_is_replaced_after_one_timeout() {
    within(5, async {
        let cluster = MockCluster::start(1).await;
        let mut cfg = config(&cluster.broker_addr(0));
        let proxy = proxy_in_front_of(&cluster, 0, 3, &mut cfg).await;
        cfg.request_timeout = Duration::from_millis(500);
        let client = Client::connect(cfg).await.expect("connect");
        broker_0_answers(&client, "through the proxy").await;
        let conn = client.broker_connection(0).await.expect("same connection");
        assert_eq!(proxy.stats().accepted, 1, "{:?}", proxy.stats());

        proxy.blackhole(true);
        let started = Instant::now();
        let e = client.send_to(0, &brokers_only()).await.unwrap_err();
        let (_, _, throttled_ms) = timeout_parts(&e, "Timeout");
        assert_eq!(throttled_ms, 0);
        assert!(
            conn.is_closed(),
            "the blackholed connection must be retired"
        );

        proxy.blackhole(false); // for new connections only
        broker_0_answers(&client, "a new connection answers").await;
        let took = started.elapsed();
        assert!(
            took < Duration::from_millis(1500),
            "timeout + reconnect took {took:?}"
        );
        assert_eq!(proxy.stats().accepted, 2, "{:?}", proxy.stats());
    })
    .await;
}

/// 4. A connect to an unreachable broker (TCP accepted, ApiVersions never answered) holds no
///    lock other brokers' traffic needs, and the setup timeout bounds TCP + ApiVersions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_connect_blocks_no_other_broker_and_is_bounded_by_the_setup_timeout() {
    within(6, async {
        let cluster = MockCluster::start(2).await;
        let mut cfg = config(&cluster.broker_addr(0));
        let proxy = proxy_in_front_of(&cluster, 1, 4, &mut cfg).await;
        proxy.blackhole(true);
        cfg.request_timeout = Duration::from_secs(10);
        cfg.connection_setup_timeout = Duration::from_secs(2);
        let client = Client::connect(cfg).await.expect("connect");
        broker_0_answers(&client, "broker 0 answers").await;

        let started = Instant::now();
        let hanging = {
            let client = client.clone();
            tokio::spawn(async move {
                let r = client.broker_connection(1).await;
                (r, started.elapsed())
            })
        };
        // Let the connect get under way (TCP accepted by the proxy, ApiVersions unanswered).
        let deadline = Instant::now() + Duration::from_secs(1);
        while proxy.stats().accepted == 0 {
            assert!(
                Instant::now() < deadline,
                "the connect never reached the proxy"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!hanging.is_finished(), "the blackholed connect should hang");

        let t = Instant::now();
        broker_0_answers(&client, "broker 0 still answers").await;
        let took = t.elapsed();
        assert!(
            took < Duration::from_millis(300),
            "a request to broker 0 waited {took:?} behind the connect to broker 1"
        );

        let (r, took) = hanging.await.expect("task");
        match r {
            Err(Error::Io { ref source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::TimedOut, "{source}")
            }
            other => panic!("expected an Io TimedOut error, got {other:?}"),
        }
        // 2 s with ±20% jitter.
        assert!(
            took >= Duration::from_millis(1500) && took < Duration::from_millis(2900),
            "setup gave up after {took:?}, expected about 2 s"
        );
    })
    .await;
}

/// 5. Reconnect backoff: repeated connects to a broker that is down wait a growing backoff
///    (±20% jitter) instead of hammering it, and each call makes exactly one connect attempt.
#[tokio::test]
async fn reconnects_to_a_down_broker_back_off() {
    within(6, async {
        let cluster = MockCluster::start(2).await;
        // Bootstrap from broker 1, which stays up; broker 0 is reached through the proxy.
        let mut cfg = config(&cluster.broker_addr(1));
        let proxy = proxy_in_front_of(&cluster, 0, 5, &mut cfg).await;
        cfg.reconnect_backoff = Duration::from_millis(100);
        cfg.reconnect_backoff_max = Duration::from_millis(400);
        let client = Client::connect(cfg).await.expect("connect");
        cluster.broker(0).stop().await;
        proxy.refuse(true);

        const CALLS: u64 = 7;
        let started = Instant::now();
        for i in 0..CALLS {
            let e = client.broker_connection(0).await.unwrap_err();
            assert!(e.is_retriable(), "call {i}: {e:?}");
        }
        let took = started.elapsed();
        let stats = proxy.stats();
        assert_eq!(
            stats.accepted + stats.refused,
            CALLS,
            "one connect attempt per call: {stats:?}"
        );
        // Waits before calls 2..=7: 100, 200, 400, 400, 400, 400 ms = 1.9 s, each ±20%.
        assert!(
            took >= Duration::from_millis(1400),
            "{CALLS} calls took only {took:?}: no backoff"
        );
        assert!(
            took < Duration::from_millis(2800),
            "{CALLS} calls took {took:?}: backoff above its maximum"
        );
    })
    .await;
}

/// 6. A node id missing from the broker list (a leader or coordinator the metadata does not
///    name yet) is a retriable error that invalidates metadata, after one metadata refresh.
#[tokio::test]
async fn an_unknown_broker_is_retriable_after_one_refresh() {
    within(5, async {
        let (cluster, client) = one_broker(REQUEST_TIMEOUT).await;
        let before = cluster.request_count(ApiKey::Metadata);
        let e = client.broker_connection(7).await.unwrap_err();
        match &e {
            Error::UnknownBroker { node_id, known } => {
                assert_eq!(*node_id, 7);
                assert_eq!(known, &vec![0]);
            }
            other => panic!("expected UnknownBroker, got {other:?}"),
        }
        assert!(e.is_retriable(), "{e}");
        assert!(e.invalidates_metadata(), "{e}");
        assert_eq!(
            cluster.request_count(ApiKey::Metadata),
            before + 1,
            "exactly one metadata refresh"
        );
    })
    .await;
}

/// 7. A throttle of `i32::MAX` ms is capped at the request timeout: the next request is held
///    back unsent and fails with a throttled Timeout within about its timeout, the connection
///    stays open, and once the capped throttle is over the connection works again.
#[tokio::test]
async fn a_huge_throttle_is_capped_and_does_not_stall_the_connection() {
    within(5, async {
        let (cluster, client) = one_broker(Duration::from_millis(500)).await;
        let conn = connection(&client).await;

        throttle_forever(&cluster);
        let resp = conn.send(&brokers_only()).await.expect("throttled answer");
        assert_eq!(resp.throttle_time_ms, i32::MAX);
        let written = cluster.requests().len();

        let started = Instant::now();
        let e = conn.send(&brokers_only()).await.unwrap_err();
        let took = started.elapsed();
        let (_, timeout_ms, throttled_ms) = timeout_parts(&e, "a throttled Timeout");
        assert!(throttled_ms > 0, "{e:?}");
        assert_eq!(timeout_ms, 500);
        assert!(took < Duration::from_millis(700), "{took:?}");
        let text = e.to_string();
        assert!(text.contains("throttl"), "{text}");
        assert!(text.contains("KIP-219"), "{text}");
        assert!(
            !conn.is_closed(),
            "a throttled request must not retire the connection"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            cluster.requests().len(),
            written,
            "the throttled request was written: {:?}",
            cluster.requests().last()
        );

        // The capped throttle (500 ms) is over: the same connection works.
        conn.send(&brokers_only())
            .await
            .expect("the connection is usable after the capped throttle");
        assert!(!conn.is_closed());
    })
    .await;
}

/// 7b. A request held back by a throttle until just before its deadline is not written with
///     only a sliver of its timeout left (the broker could not answer in time, and the timeout
///     of a written request would retire a healthy connection): it times out unsent, as
///     throttled, and the connection stays open.
#[tokio::test]
async fn a_request_held_back_almost_to_its_deadline_is_not_written() {
    within(5, async {
        let (cluster, client) = one_broker(Duration::from_millis(500)).await;
        let conn = connection(&client).await;

        throttle_forever(&cluster);
        // Were the next request written, the broker would take 100 ms to answer it.
        cluster
            .broker(0)
            .script(ApiKey::Metadata, Action::Delay(Duration::from_millis(100)));
        conn.send(&brokers_only()).await.expect("throttled answer");
        let written = cluster.requests().len();
        // Queued 50 ms into the (capped, 500 ms) throttle: held 450 ms of its 500 ms.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let e = conn.send(&brokers_only()).await.unwrap_err();
        let (_, _, throttled_ms) = timeout_parts(&e, "a throttled Timeout");
        assert!(throttled_ms > 0, "{e:?}");
        assert!(
            !conn.is_closed(),
            "a request held back by a throttle must not retire the connection"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            cluster.requests().len(),
            written,
            "the held-back request was written"
        );
        conn.send(&brokers_only())
            .await
            .expect("the connection is usable after the throttle");
    })
    .await;
}

/// 8. Requests racing a connection's close: each either is answered or fails at once; none is
///    added to the failed connection and left to wait out its (10 s) timeout. Even rounds close
///    the socket (the broker drops its connections: every error is retriable); odd rounds
///    corrupt the stream (a response frame with a negative size), which fails the connection
///    while its socket still takes writes, so a request added after the failure would be
///    written, answered and never read (before the fix, that case hung in most runs; a request
///    added to a closed socket was usually rescued by the failed write of a later one). 120
///    rounds of 20 senders; the fault comes 0-2 ms into each round (seeded; the seed is printed
///    on failure and can be replayed with `FAULTS_SEED`, though thread timing varies).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn requests_racing_a_close_never_wait_out_their_timeout() {
    let seed: u64 = std::env::var("FAULTS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| rand::thread_rng().r#gen());
    let result = tokio::spawn(async move {
        within(20, race_sends_against_close(seed)).await;
    })
    .await;
    if let Err(e) = result {
        panic!("failed with seed {seed} (rerun with FAULTS_SEED={seed}): {e}");
    }
}

async fn race_sends_against_close(seed: u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (cluster, client) = one_broker(REQUEST_TIMEOUT).await;
    // Many topic names: encoding the request takes a while, which widens the window between a
    // sender's check that the connection is open and its request being registered.
    let req = MetadataRequest {
        topics: Some(
            (0..1000)
                .map(|i| MetadataRequestTopic {
                    name: Some(format!("race-topic-{i}")),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    };
    for round in 0..120 {
        let corrupt = round % 2 == 1;
        let conn: Arc<Connection> = loop {
            match client.broker_connection(0).await {
                Ok(c) if !c.is_closed() => break c,
                Ok(_) => tokio::task::yield_now().await,
                Err(e) => panic!("round {round}: reconnect failed: {e}"),
            }
        };
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..20 {
            let conn = conn.clone();
            let req = req.clone();
            tasks.spawn(async move {
                // Send until the connection fails under us (at most 200 requests).
                for _ in 0..200 {
                    let sent = Instant::now();
                    match tokio::time::timeout(Duration::from_secs(1), conn.send(&req)).await {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => {
                            assert!(
                                e.is_retriable() || (corrupt && matches!(e, Error::Decode { .. })),
                                "unexpected error: {e:?}"
                            );
                            return;
                        }
                        Err(_) => panic!(
                            "a request waited {:?} on a failing connection",
                            sent.elapsed()
                        ),
                    }
                }
            });
        }
        // 0 to 2 ms into the traffic, to the microsecond.
        let delay = Duration::from_micros(rng.gen_range(0..=2000));
        let started = Instant::now();
        while started.elapsed() < delay {
            tokio::task::yield_now().await;
        }
        if corrupt {
            cluster.broker(0).script(
                ApiKey::Metadata,
                Action::respond(|_| Reply::Frame(Bytes::from_static(&[0x80, 0, 0, 0]))),
            );
        } else {
            cluster.broker(0).drop_connections();
        }
        while let Some(r) = tasks.join_next().await {
            if let Err(e) = r {
                let how = if corrupt { "corrupt" } else { "close" };
                panic!("round {round} ({how} after {delay:?}): {e}");
            }
        }
        if !conn.is_closed() {
            // Every task sent its 200 requests before the fault: start the next round clean.
            cluster.clear_scripts();
            cluster.broker(0).drop_connections();
            while !conn.is_closed() {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }
}

/// 9. A broker restart: requests fail (retriable) while it is down, without hammering it (the
///    default reconnect backoff, 50 ms doubling up to 1 s), and succeed soon after it is back,
///    on a new connection: the backoff does not grow so long that recovery waits for it.
#[tokio::test]
async fn a_restarted_broker_is_reached_again_soon() {
    within(6, async {
        let (cluster, client) = one_broker(REQUEST_TIMEOUT).await;
        broker_0_answers(&client, "up").await;

        let broker = cluster.broker(0).clone();
        let before = broker.connections();
        broker.stop().await;
        let restart = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            broker.restart().await.expect("restart");
            Instant::now()
        });
        let mut failures = 0;
        let answered = loop {
            match client.send_to(0, &brokers_only()).await {
                Ok(_) => break Instant::now(),
                Err(e) => {
                    assert!(e.is_retriable(), "{e:?}");
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        let restarted = restart.await.expect("restart task");
        assert!(failures > 0, "the broker was down for 300 ms");
        // 50, 100, 200 ms (±20%) of backoff cover the 300 ms outage in about 4 attempts; a
        // client without backoff makes one every 10 ms here.
        assert!(
            failures <= 8,
            "{failures} failed attempts in a 300 ms outage: no reconnect backoff"
        );
        assert!(
            cluster.broker(0).connections() > before,
            "answered on a new connection"
        );
        assert!(
            answered >= restarted,
            "answered before the broker came back"
        );
        let took = answered - restarted;
        assert!(
            took < Duration::from_millis(1500),
            "reached {took:?} after the restart"
        );
    })
    .await;
}

/// 10. A caller that gives up on a request already written (drops its future, e.g. under its
///     own timeout or a `select!`) must not break the connection for the other requests on
///     it: the late answer is discarded, not treated as a corrupt stream.
#[tokio::test]
async fn abandoning_a_written_request_leaves_the_others_alone() {
    within(5, async {
        let (cluster, client) = one_broker(REQUEST_TIMEOUT).await;
        let conn = connection(&client).await;
        let seen = cluster.request_count(ApiKey::Metadata);
        cluster
            .broker(0)
            .script(ApiKey::Metadata, Action::Delay(Duration::from_millis(300)));

        let req = brokers_only();
        let first = conn.send_ordered(&req).expect("queued");
        let second = tokio::spawn(conn.send_ordered(&req).expect("queued"));
        metadata_requests_reach(&cluster, seen + 1).await;
        // The caller gives up on the first one after it was written.
        let gave_up = tokio::time::timeout(Duration::from_millis(50), first).await;
        assert!(gave_up.is_err(), "answered before the delay: {gave_up:?}");

        second
            .await
            .expect("task")
            .expect("the other request on the connection is answered");
        assert!(!conn.is_closed(), "the connection must stay open");
        conn.send(&brokers_only())
            .await
            .expect("and it keeps working");
    })
    .await;
}
