//! The client against the in-process mock broker: version negotiation, dropped connections,
//! timeouts, pipelining, bootstrap, leader routing, the advertised-listener trap and error
//! classification.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafkawire_client::offset_spec;
use kafkawire_client::{
    Admin, Client, ClientConfig, Connection, ConnectionConfig, Error, NewTopic,
};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::frame::encode_response;
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::describe_acls_request::DescribeAclsRequest;
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafkawire_protocol::messages::metadata_response::{MetadataResponse, MetadataResponseTopic};
use kafkawire_testkit::mock::{Action, MockCluster, Reply};

/// Every test runs inside this bound so that a hang fails instead of blocking the suite.
async fn within<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(15), f)
        .await
        .expect("test did not finish within 15 s")
}

fn config(bootstrap: &str) -> ClientConfig {
    let mut c = ClientConfig::new(bootstrap);
    c.request_timeout = Duration::from_secs(5);
    c.connection_setup_timeout = Duration::from_secs(2);
    c.allow_auto_topic_creation = false;
    c
}

async fn connect(cluster: &MockCluster) -> Client {
    Client::connect(config(&cluster.broker_addr(0)))
        .await
        .expect("connect to the mock cluster")
}

fn metadata_for(topic: &str) -> MetadataRequest {
    MetadataRequest {
        topics: Some(vec![MetadataRequestTopic {
            name: Some(topic.to_owned()),
            ..Default::default()
        }]),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

/// The one topic name a Metadata response lists.
fn only_topic(resp: &MetadataResponse) -> String {
    assert_eq!(resp.topics.len(), 1, "{resp:?}");
    resp.topics[0].name.clone().unwrap_or_default()
}

fn versions_sent(cluster: &MockCluster, api: ApiKey) -> Vec<i16> {
    cluster
        .requests()
        .iter()
        .filter(|r| r.api() == Some(api))
        .map(|r| r.version)
        .collect()
}

#[tokio::test]
async fn uses_the_highest_common_version_and_names_missing_apis() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.set_api_versions(ApiKey::Metadata, 0, 5);
        cluster.set_api_versions(ApiKey::DeleteRecords, 40, 50);
        cluster.remove_api(ApiKey::DescribeAcls);
        let client = connect(&cluster).await;
        client.refresh_metadata(&[]).await.expect("metadata");

        let metadata = versions_sent(&cluster, ApiKey::Metadata);
        assert!(metadata.len() >= 2, "{metadata:?}");
        assert!(metadata.iter().all(|v| *v == 5), "{metadata:?}");
        assert_eq!(
            versions_sent(&cluster, ApiKey::ApiVersions),
            [ApiKey::ApiVersions.versions().1]
        );

        let conn = client.any_connection().await.expect("connection");
        assert_eq!(conn.version_for(ApiKey::Metadata).unwrap(), 5);
        assert_eq!(
            conn.version_for(ApiKey::Fetch).unwrap(),
            ApiKey::Fetch.versions().1
        );

        // Ranges that do not overlap.
        let e = conn.version_for(ApiKey::DeleteRecords).unwrap_err();
        let ours = ApiKey::DeleteRecords.versions();
        match &e {
            Error::UnsupportedVersion {
                broker,
                api,
                ours: o,
                theirs,
            } => {
                assert_eq!(broker, &cluster.broker_addr(0));
                assert_eq!(*api, ApiKey::DeleteRecords);
                assert_eq!(*o, ours);
                assert_eq!(*theirs, Some((40, 50)));
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        let text = e.to_string();
        assert!(text.contains("DeleteRecords"), "{text}");
        assert!(
            text.contains(&format!("client {}-{}", ours.0, ours.1)),
            "{text}"
        );
        assert!(text.contains("broker 40-50"), "{text}");
        assert!(!e.is_retriable());

        // An API the broker does not list at all: nothing goes on the wire.
        let e = client
            .send_any(&DescribeAclsRequest::default())
            .await
            .unwrap_err();
        match &e {
            Error::UnsupportedVersion { api, theirs, .. } => {
                assert_eq!(*api, ApiKey::DescribeAcls);
                assert_eq!(*theirs, None);
            }
            other => panic!("expected UnsupportedVersion, got {other:?}"),
        }
        assert!(e.to_string().contains("DescribeAcls"), "{e}");
        assert!(e.to_string().contains("broker none"), "{e}");
        assert_eq!(cluster.request_count(ApiKey::DescribeAcls), 0);
    })
    .await;
}

#[tokio::test]
async fn api_versions_falls_back_to_an_older_version() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.set_api_versions(ApiKey::ApiVersions, 0, 2);
        let client = connect(&cluster).await;
        let sent = versions_sent(&cluster, ApiKey::ApiVersions);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert_eq!(sent[0], ApiKey::ApiVersions.versions().1);
        assert!(sent[1] <= 2, "retried above the broker's range: {sent:?}");
        assert_eq!(sent[1], 2, "KIP-511: retry at the broker's newest version");
        client.refresh_metadata(&[]).await.expect("metadata");
        assert_eq!(cluster.connections(0), 1);

        // A broker that answers UNSUPPORTED_VERSION without a usable range: retry at v0.
        let cluster = MockCluster::start(1).await;
        cluster.script(
            ApiKey::ApiVersions,
            Action::ErrorCode(ErrorCode::UNSUPPORTED_VERSION),
        );
        let client = connect(&cluster).await;
        let sent = versions_sent(&cluster, ApiKey::ApiVersions);
        assert_eq!(sent.len(), 2, "{sent:?}");
        assert!(sent[1] < sent[0], "{sent:?}");
        client.refresh_metadata(&[]).await.expect("metadata");
    })
    .await;
}

#[tokio::test]
async fn dropped_connection_is_a_retriable_error_and_the_next_call_reconnects() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = connect(&cluster).await;
        assert_eq!(cluster.connections(0), 1);

        cluster.script(ApiKey::Metadata, Action::DropConnection);
        let e = client.refresh_metadata(&["t"]).await.unwrap_err();
        match &e {
            Error::ConnectionClosed { broker, api } => {
                assert_eq!(broker, &cluster.broker_addr(0));
                assert_eq!(*api, Some(ApiKey::Metadata));
            }
            other => panic!("expected ConnectionClosed, got {other:?}"),
        }
        assert!(e.is_retriable());
        assert!(e.to_string().contains(&cluster.broker_addr(0)), "{e}");

        let meta = client.refresh_metadata(&["t"]).await.expect("reconnects");
        assert_eq!(meta.partition_count("t"), Some(1));
        assert_eq!(cluster.connections(0), 2);

        // The same through a broker connection (send_to).
        cluster
            .broker(0)
            .script(ApiKey::Metadata, Action::DropConnection);
        let e = client.send_to(0, &metadata_for("t")).await.unwrap_err();
        assert!(matches!(e, Error::ConnectionClosed { .. }), "{e:?}");
        let before = cluster.connections(0);
        let resp = client
            .send_to(0, &metadata_for("t"))
            .await
            .expect("reconnects");
        assert_eq!(only_topic(&resp), "t");
        assert_eq!(cluster.connections(0), before + 1);
    })
    .await;
}

#[tokio::test]
async fn unanswered_request_times_out_naming_api_and_broker() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let mut cfg = config(&cluster.broker_addr(0));
        cfg.request_timeout = Duration::from_millis(300);
        let client = Client::connect(cfg).await.expect("connect");

        cluster.script(ApiKey::Metadata, Action::NoResponse);
        let started = Instant::now();
        let e = client.refresh_metadata(&[]).await.unwrap_err();
        let took = started.elapsed();
        match &e {
            Error::Timeout {
                broker,
                api,
                timeout_ms,
                throttled_ms,
            } => {
                assert_eq!(*throttled_ms, 0, "nothing throttled it");
                assert_eq!(broker, &cluster.broker_addr(0));
                assert_eq!(*api, ApiKey::Metadata);
                assert_eq!(*timeout_ms, 300);
            }
            other => panic!("expected Timeout, got {other:?}"),
        }
        assert!(e.is_retriable());
        assert!(took >= Duration::from_millis(290), "{took:?}");
        assert!(took < Duration::from_secs(3), "{took:?}");
        let text = e.to_string();
        assert!(
            text.contains("Metadata") && text.contains(&cluster.broker_addr(0)),
            "{text}"
        );

        client.refresh_metadata(&[]).await.expect("next call works");
    })
    .await;
}

#[tokio::test]
async fn many_requests_in_flight_on_one_connection_get_their_own_answers() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let client = connect(&cluster).await;
        cluster.script(ApiKey::Metadata, Action::Delay(Duration::from_millis(200)));
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..20 {
            let client = client.clone();
            tasks.spawn(async move {
                let name = format!("topic-{i}");
                let resp = client.send_any(&metadata_for(&name)).await;
                (name, resp)
            });
        }
        let mut answered = 0;
        while let Some(joined) = tasks.join_next().await {
            let (name, resp) = joined.expect("task");
            let resp = resp.expect("answered");
            assert_eq!(only_topic(&resp), name);
            assert_eq!(
                resp.topics[0].error_code,
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0
            );
            answered += 1;
        }
        assert_eq!(answered, 20);
        assert_eq!(cluster.connections(0), 1, "all pipelined on one connection");
        let mut ids: Vec<i32> = cluster
            .requests()
            .iter()
            .filter(|r| r.api() == Some(ApiKey::Metadata))
            .map(|r| r.correlation_id)
            .collect();
        let n = ids.len();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), n, "correlation ids are unique");
    })
    .await;
}

#[tokio::test]
async fn responses_out_of_order_reach_the_right_request() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let answer = |name: &str| MetadataResponse {
            topics: vec![MetadataResponseTopic {
                name: Some(name.to_owned()),
                error_code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                ..Default::default()
            }],
            ..Default::default()
        };
        // The first request is held back; the second is answered with its own response followed
        // by the first one's, so the answers arrive in reverse order.
        let held: Arc<Mutex<Option<(i32, i16)>>> = Arc::default();
        let h = held.clone();
        cluster.script(
            ApiKey::Metadata,
            Action::respond(move |req| {
                *h.lock().unwrap() = Some((req.correlation_id, req.version));
                Reply::Nothing
            }),
        );
        let h = held.clone();
        let (a, b) = (answer("a"), answer("b"));
        cluster.script(
            ApiKey::Metadata,
            Action::respond(move |req| {
                let Reply::Frame(second) = req.reply(&b) else {
                    return Reply::Close;
                };
                let (id, version) = h.lock().unwrap().take().expect("first request held");
                let mut buf = BytesMut::from(&second[..]);
                encode_response(&mut buf, ApiKey::Metadata, id, version, &a).expect("encode");
                Reply::Frame(buf.freeze())
            }),
        );
        let conn = Arc::new(
            Connection::connect(
                &cluster.broker_addr(0),
                ConnectionConfig::default(),
                Duration::from_secs(2),
            )
            .await
            .expect("connect"),
        );
        let c = conn.clone();
        let first = tokio::spawn(async move { c.send(&metadata_for("a")).await });
        while cluster.request_count(ApiKey::Metadata) == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let second = conn
            .send(&metadata_for("b"))
            .await
            .expect("second answered");
        let first = first.await.expect("task").expect("first answered");
        assert_eq!(only_topic(&first), "a");
        assert_eq!(only_topic(&second), "b");
        assert!(!conn.is_closed());
    })
    .await;
}

#[tokio::test]
async fn bootstrap_skips_a_dead_address() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
            l.local_addr().expect("addr").to_string()
        };
        let live = cluster.broker_addr(0);
        let client = Client::connect(config(&format!("{dead},{live}")))
            .await
            .expect("connects through the second address");
        assert_eq!(client.bootstrap_address(), Some(live));
        assert_eq!(client.metadata().brokers.len(), 1);

        // Nothing alive at all: every address is named.
        let e = Client::connect(config(&dead)).await.unwrap_err();
        match &e {
            Error::NoBrokerReachable { attempts } => {
                assert_eq!(attempts.len(), 1);
                assert_eq!(attempts[0].0, dead);
            }
            other => panic!("expected NoBrokerReachable, got {other:?}"),
        }
        assert!(e.is_retriable());
    })
    .await;
}

#[tokio::test]
async fn leader_routing_follows_metadata_refreshes() {
    within(async {
        let cluster = MockCluster::start(3).await;
        cluster.create_topic("t", 3);
        let client = connect(&cluster).await;
        for p in 0..3 {
            assert_eq!(client.leader_for("t", p).await.unwrap(), p);
        }
        cluster.set_leader("t", 1, 0);
        cluster.set_leader("t", 2, 1);
        client.refresh_metadata(&["t"]).await.expect("refresh");
        assert_eq!(client.leader_for("t", 0).await.unwrap(), 0);
        assert_eq!(client.leader_for("t", 1).await.unwrap(), 0);
        assert_eq!(client.leader_for("t", 2).await.unwrap(), 1);
        let epoch = client.metadata().partition("t", 1).unwrap().leader_epoch;
        assert_eq!(Some((0, epoch)), cluster.leader("t", 1));

        // Requests for the partition go to the new leader.
        cluster.clear_requests();
        let admin = Admin::new(&client);
        assert_eq!(
            admin
                .list_offset("t", 2, offset_spec::LATEST)
                .await
                .unwrap(),
            0
        );
        let sent: Vec<i32> = cluster
            .requests()
            .iter()
            .filter(|r| r.api() == Some(ApiKey::ListOffsets))
            .map(|r| r.broker_id)
            .collect();
        assert_eq!(sent, [1]);

        // A partition that does not exist.
        let e = client.leader_for("t", 7).await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(7)));
    })
    .await;
}

#[tokio::test]
async fn unreachable_advertised_listener_is_diagnosed_and_the_address_map_fixes_it() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.set_advertised(1, "nowhere.invalid:9092");
        let bootstrap = cluster.broker_addr(0);
        let client = connect(&cluster).await;
        let e = client.broker_connection(1).await.unwrap_err();
        match &e {
            Error::AdvertisedListenerUnreachable {
                bootstrap: b,
                node_id,
                advertised,
                mapped_to,
                ..
            } => {
                assert_eq!(b, &bootstrap);
                assert_eq!(*node_id, 1);
                assert_eq!(advertised, "nowhere.invalid:9092");
                assert_eq!(*mapped_to, None);
            }
            other => panic!("expected AdvertisedListenerUnreachable, got {other:?}"),
        }
        assert!(!e.is_retriable());
        let text = e.to_string();
        assert!(
            text.contains(&bootstrap) && text.contains("nowhere.invalid:9092"),
            "{text}"
        );
        // Broker 0 is fine.
        client.broker_connection(0).await.expect("broker 0");

        let mut cfg = config(&bootstrap);
        cfg.address_map
            .insert("nowhere.invalid:9092", &cluster.broker_addr(1))
            .unwrap();
        let client = Client::connect(cfg).await.expect("connect");
        let conn = client.broker_connection(1).await.expect("mapped broker 1");
        assert_eq!(conn.broker(), cluster.broker_addr(1));
        cluster.clear_requests();
        client
            .send_to(1, &metadata_for("x"))
            .await
            .expect("request via the map");
        assert_eq!(cluster.requests()[0].broker_id, 1);
    })
    .await;
}

#[tokio::test]
async fn broker_error_codes_are_classified_with_their_topic_and_partition() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 2);
        let client = connect(&cluster).await;
        let admin = Admin::new(&client);

        cluster.script(
            ApiKey::ListOffsets,
            Action::ErrorCode(ErrorCode::NOT_LEADER_OR_FOLLOWER),
        );
        let e = admin
            .list_offset("t", 1, offset_spec::EARLIEST)
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Broker { .. }), "{e:?}");
        assert_eq!(e.code(), Some(ErrorCode::NOT_LEADER_OR_FOLLOWER));
        assert_eq!(e.api(), Some(ApiKey::ListOffsets));
        assert!(e.is_retriable());
        assert!(e.invalidates_metadata());
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(1)));
        assert!(e.to_string().contains("t-1"), "{e}");

        cluster.script(
            ApiKey::ListOffsets,
            Action::ErrorCode(ErrorCode::TOPIC_AUTHORIZATION_FAILED),
        );
        let e = admin
            .list_offset("t", 0, offset_spec::LATEST)
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TOPIC_AUTHORIZATION_FAILED));
        assert!(!e.is_retriable());
        assert!(!e.invalidates_metadata());
        assert_eq!((e.topic(), e.partition()), (Some("t"), Some(0)));

        // Topic-level: Metadata and CreateTopics.
        let e = client.topic_metadata("missing").await.unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION));
        assert!(e.is_retriable());
        assert_eq!((e.topic(), e.partition()), (Some("missing"), None));

        cluster.script(
            ApiKey::CreateTopics,
            Action::ErrorCode(ErrorCode::POLICY_VIOLATION),
        );
        let e = admin
            .create_topics(&[NewTopic::new("new", 3)], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::POLICY_VIOLATION));
        assert_eq!(e.api(), Some(ApiKey::CreateTopics));
        assert!(!e.is_retriable());
        assert_eq!((e.topic(), e.partition()), (Some("new"), None));
        assert_eq!(e.broker(), Some(cluster.broker_addr(0).as_str()));
        assert!(!cluster.topics().contains(&"new".to_owned()));
        let e = admin
            .create_topics(&[NewTopic::new("t", 1)], Duration::from_secs(1))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Some(ErrorCode::TOPIC_ALREADY_EXISTS));
        assert_eq!(e.topic(), Some("t"));
    })
    .await;
}

#[tokio::test]
async fn garbled_response_is_a_decode_error_and_the_next_call_recovers() {
    within(async {
        let cluster = MockCluster::start(1).await;
        let client = connect(&cluster).await;
        cluster.script(
            ApiKey::Metadata,
            Action::respond(|req| {
                // A frame with the right correlation id and a body cut short.
                let mut frame = Vec::new();
                frame.extend_from_slice(&7i32.to_be_bytes());
                frame.extend_from_slice(&req.correlation_id.to_be_bytes());
                frame.extend_from_slice(&[0xff, 0xff, 0xff]);
                Reply::Frame(frame.into())
            }),
        );
        let e = client.send_to(0, &metadata_for("t")).await.unwrap_err();
        match &e {
            Error::Decode { broker, api, .. } => {
                assert_eq!(broker, &cluster.broker_addr(0));
                assert_eq!(*api, ApiKey::Metadata);
            }
            other => panic!("expected Decode, got {other:?}"),
        }
        assert!(!e.is_retriable());
        let resp = client
            .send_to(0, &metadata_for("t"))
            .await
            .expect("recovers");
        assert_eq!(only_topic(&resp), "t");
    })
    .await;
}

#[tokio::test]
async fn stopped_bootstrap_broker_fails_over_to_the_next_address() {
    within(async {
        let cluster = MockCluster::start(2).await;
        cluster.create_topic("t", 2);
        let client = Client::connect(config(&cluster.bootstrap()))
            .await
            .expect("connect");
        assert_eq!(client.bootstrap_address(), Some(cluster.broker_addr(0)));
        cluster.broker(0).stop().await;
        // Let the client's reader see the end of the stream.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let meta = client.refresh_metadata(&["t"]).await.expect("via broker 1");
        assert_eq!(meta.partition_count("t"), Some(2));
        assert_eq!(client.bootstrap_address(), Some(cluster.broker_addr(1)));

        // Broker 0 leads partition 0 but is down: a transport error naming it, retriable.
        let e = client.broker_connection(0).await.unwrap_err();
        assert!(e.is_retriable(), "{e:?}");
        assert_eq!(e.broker(), Some(cluster.broker_addr(0).as_str()));
        cluster.broker(0).restart().await.expect("restart");
        client.broker_connection(0).await.expect("back");
    })
    .await;
}

#[tokio::test]
async fn a_throttled_answer_holds_the_next_request_for_the_throttle_time() {
    within(async {
        let cluster = MockCluster::start(1).await;
        cluster.create_topic("t", 1);
        let client = connect(&cluster).await;
        // The broker answers at once but asks for 400 ms of quiet (KIP-219).
        cluster.script(
            ApiKey::Metadata,
            Action::modify(|r: &mut MetadataResponse| r.throttle_time_ms = 400),
        );
        let first = client.refresh_metadata(&["t"]).await.expect("metadata");
        assert!(first.topics.contains_key("t"));
        let sent = Instant::now();
        let before = cluster.request_count(ApiKey::Metadata);
        client.refresh_metadata(&["t"]).await.expect("metadata");
        assert_eq!(cluster.request_count(ApiKey::Metadata), before + 1);
        assert!(
            sent.elapsed() >= Duration::from_millis(350),
            "the next request went out {:?} after a 400 ms throttle",
            sent.elapsed()
        );
    })
    .await;
}
