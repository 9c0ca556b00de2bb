//! The mock broker seen from the wire: raw TCP plus the protocol crate's frame codecs, decoded
//! exactly as a client would.

use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafkawire_protocol::ErrorCode;
use kafkawire_protocol::frame::{FrameDecoder, decode_response, encode_request};
use kafkawire_protocol::messages::api_versions_request::ApiVersionsRequest;
use kafkawire_protocol::messages::api_versions_response::ApiVersionsResponse;
use kafkawire_protocol::messages::create_topics_request::{CreatableTopic, CreateTopicsRequest};
use kafkawire_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use kafkawire_protocol::messages::fetch_request::{FetchPartition, FetchRequest, FetchTopic};
use kafkawire_protocol::messages::fetch_response::FetchResponse;
use kafkawire_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use kafkawire_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafkawire_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use kafkawire_protocol::messages::metadata_request::{MetadataRequest, MetadataRequestTopic};
use kafkawire_protocol::messages::metadata_response::MetadataResponse;
use kafkawire_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafkawire_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestTopic,
};
use kafkawire_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
};
use kafkawire_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafkawire_protocol::messages::produce_response::ProduceResponse;
use kafkawire_protocol::messages::{ApiKey, Message, Request};
use kafkawire_testkit::mock::{Action, MockCluster, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TIMEOUT: Duration = Duration::from_secs(5);

/// A bare connection speaking frames.
struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    next_correlation_id: i32,
}

impl Conn {
    async fn connect(addr: &str) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            decoder: FrameDecoder::new(1 << 24),
            next_correlation_id: 1,
        }
    }

    /// Sends a request; returns its correlation id.
    async fn send<R: Request>(&mut self, version: i16, req: &R) -> i32 {
        let id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let mut buf = BytesMut::new();
        encode_request(&mut buf, id, Some("mock-test"), version, req).expect("encode");
        self.stream.write_all(&buf).await.expect("write");
        id
    }

    /// The next frame, or `None` on end of stream.
    async fn frame(&mut self) -> Option<Bytes> {
        tokio::time::timeout(TIMEOUT, async {
            loop {
                if let Some(f) = self.decoder.next_frame().expect("frame") {
                    return Some(f);
                }
                let read = self.stream.read_buf(self.decoder.buffer_mut()).await;
                let n: usize = read.unwrap_or_default();
                if n == 0 {
                    return None;
                }
            }
        })
        .await
        .expect("no frame within the timeout")
    }

    /// Reads the next response as `M` for `key` at `version`; checks its correlation id.
    async fn recv<M: Message>(&mut self, key: ApiKey, version: i16, correlation_id: i32) -> M {
        let frame = self.frame().await.expect("connection closed");
        let (header, body) = decode_response::<M>(frame, key, version).expect("decode response");
        assert_eq!(header.correlation_id, correlation_id);
        body
    }

    async fn call<R: Request>(&mut self, version: i16, req: &R) -> R::Response {
        let id = self.send(version, req).await;
        self.recv::<R::Response>(R::API_KEY, version, id).await
    }
}

/// A magic-2 batch of `records` records (header fields only matter to the mock), with `payload`
/// standing in for the records.
fn batch(records: i32, max_timestamp: i64, payload: &[u8]) -> Bytes {
    let mut b = vec![0u8; 61];
    b.extend_from_slice(payload);
    let len = (b.len() - 12) as i32;
    b[..8].copy_from_slice(&(-7i64).to_be_bytes());
    b[8..12].copy_from_slice(&len.to_be_bytes());
    b[12..16].copy_from_slice(&(-1i32).to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&(records - 1).to_be_bytes());
    b[27..35].copy_from_slice(&max_timestamp.to_be_bytes());
    b[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    b[57..61].copy_from_slice(&records.to_be_bytes());
    Bytes::from(b)
}

/// `batch` as stored at `base_offset` by a leader in `epoch`.
fn stored(batch: &Bytes, base_offset: i64, epoch: i32) -> Bytes {
    let mut b = batch.to_vec();
    b[..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&epoch.to_be_bytes());
    Bytes::from(b)
}

fn produce_req(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        acks,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: topic.to_owned(),
            partition_data: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn fetch_req(topic: &str, partition: i32, offset: i64, max_wait_ms: i32) -> FetchRequest {
    FetchRequest {
        max_wait_ms,
        min_bytes: 1,
        topics: vec![FetchTopic {
            topic: topic.to_owned(),
            partitions: vec![FetchPartition {
                partition,
                fetch_offset: offset,
                partition_max_bytes: 1 << 20,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn metadata_req(topics: &[&str]) -> MetadataRequest {
    MetadataRequest {
        topics: Some(
            topics
                .iter()
                .map(|t| MetadataRequestTopic {
                    name: Some((*t).to_owned()),
                    ..Default::default()
                })
                .collect(),
        ),
        allow_auto_topic_creation: false,
        ..Default::default()
    }
}

#[tokio::test]
async fn api_versions_round_trip_and_kip_511_downgrade() {
    let cluster = MockCluster::start(1).await;
    let mut c = Conn::connect(&cluster.broker_addr(0)).await;
    let resp = c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(resp.api_keys.len(), ApiKey::ALL.len());
    for k in ApiKey::ALL {
        let v = resp
            .api_keys
            .iter()
            .find(|v| v.api_key == *k as i16)
            .expect("listed");
        assert_eq!((v.min_version, v.max_version), k.versions());
    }

    cluster.set_api_versions(ApiKey::ApiVersions, 0, 2);
    cluster.set_api_versions(ApiKey::Fetch, 4, 11);
    cluster.remove_api(ApiKey::DescribeAcls);
    // v3 is now too new: the answer is a v0 body with UNSUPPORTED_VERSION.
    let id = c.send(3, &ApiVersionsRequest::default()).await;
    let resp: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 0, id).await;
    assert_eq!(resp.error_code, ErrorCode::UNSUPPORTED_VERSION.0);
    assert_eq!(resp.api_keys.len(), 1);
    assert_eq!(
        (resp.api_keys[0].api_key, resp.api_keys[0].max_version),
        (18, 2)
    );
    // The retry at v0 works and shows the changes.
    let resp = c.call(0, &ApiVersionsRequest::default()).await;
    assert_eq!(resp.error_code, 0);
    let fetch = resp.api_keys.iter().find(|v| v.api_key == 1).unwrap();
    assert_eq!((fetch.min_version, fetch.max_version), (4, 11));
    assert!(!resp.api_keys.iter().any(|v| v.api_key == 29));

    // A request at a version outside the advertised range closes the connection.
    c.send(12, &fetch_req("t", 0, 0, 0)).await;
    assert!(c.frame().await.is_none());
    let log = cluster.requests();
    assert_eq!(log.len(), 4);
    assert_eq!(log[0].api(), Some(ApiKey::ApiVersions));
    assert_eq!(log[0].client_id.as_deref(), Some("mock-test"));
    assert_eq!((log[3].api_key, log[3].version), (1, 12));
}

#[tokio::test]
async fn metadata_shows_topics_leaders_and_advertised_addresses() {
    let cluster = MockCluster::start(3).await;
    cluster.create_topic("a", 3);
    cluster.create_topic("b", 1);
    cluster.set_advertised(2, "unreachable.invalid:9999");
    cluster.set_controller(1);
    cluster.set_partition_error("a", 1, ErrorCode::LEADER_NOT_AVAILABLE);
    assert_eq!(cluster.bootstrap().split(',').count(), 3);

    let mut c = Conn::connect(&cluster.broker_addr(1)).await;
    let all = MetadataRequest {
        topics: None,
        ..Default::default()
    };
    let resp = c.call(12, &all).await;
    assert_eq!(resp.cluster_id.as_deref(), Some("mock-cluster"));
    assert_eq!(resp.controller_id, 1);
    let hosts: Vec<(i32, String, i32)> = resp
        .brokers
        .iter()
        .map(|b| (b.node_id, b.host.clone(), b.port))
        .collect();
    let port0 = cluster.broker(0).socket_addr().port() as i32;
    assert_eq!(hosts[0], (0, "127.0.0.1".to_owned(), port0));
    assert_eq!(hosts[2], (2, "unreachable.invalid".to_owned(), 9999));
    let names: Vec<_> = resp
        .topics
        .iter()
        .map(|t| t.name.clone().unwrap())
        .collect();
    assert_eq!(names, ["a", "b"]);
    let a = &resp.topics[0];
    assert_eq!(a.topic_id, cluster.topic_id("a").unwrap());
    let leaders: Vec<(i32, i32, i16)> = a
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.leader_id, p.error_code))
        .collect();
    assert_eq!(leaders, [(0, 0, 0), (1, 1, 5), (2, 2, 0)]);

    // Named topics at an old version; an unknown one gets UNKNOWN_TOPIC_OR_PARTITION.
    let mut old = metadata_req(&["b", "nope"]);
    old.allow_auto_topic_creation = true; // v1 cannot say "false"
    let resp = c.call(1, &old).await;
    assert_eq!(resp.topics.len(), 2);
    assert_eq!(resp.topics[0].partitions.len(), 1);
    assert_eq!(resp.topics[1].error_code, 3);

    // Auto-creation when enabled and allowed.
    cluster.set_auto_create_topics(Some(2));
    let mut req = metadata_req(&["auto"]);
    req.allow_auto_topic_creation = true;
    let resp = c.call(9, &req).await;
    assert_eq!(resp.topics[0].partitions.len(), 2);
    assert_eq!(cluster.topics(), ["a", "auto", "b"]);
}

#[tokio::test]
async fn produce_then_fetch_returns_the_batches_at_their_offsets() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let b1 = batch(3, 1_000, b"first three");
    let b2 = batch(2, 2_000, b"two");
    let resp = c.call(9, &produce_req("t", 0, b1.clone(), -1)).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset, p.log_start_offset), (0, 0, 0));
    assert_eq!(p.log_append_time_ms, -1);
    let resp = c.call(3, &produce_req("t", 0, b2.clone(), 1)).await;
    assert_eq!(resp.responses[0].partition_responses[0].base_offset, 3);
    assert_eq!(cluster.high_watermark("t", 0), Some(5));
    let (s1, s2) = (stored(&b1, 0, 0), stored(&b2, 3, 0));
    assert_eq!(cluster.log("t", 0), [s1.clone(), s2.clone()]);

    let resp = c.call(12, &fetch_req("t", 0, 0, 0)).await;
    let pd = &resp.responses[0].partitions[0];
    assert_eq!(pd.error_code, 0);
    assert_eq!((pd.high_watermark, pd.log_start_offset), (5, 0));
    let both: Vec<u8> = [s1.as_ref(), s2.as_ref()].concat();
    assert_eq!(pd.records.as_deref(), Some(&both[..]));

    // From an offset inside the second batch: the whole second batch only.
    let resp = c.call(4, &fetch_req("t", 0, 4, 0)).await;
    assert_eq!(resp.responses[0].partitions[0].records.as_ref(), Some(&s2));

    // By topic id (v13+).
    let mut by_id = fetch_req("", 0, 3, 0);
    by_id.topics[0].topic_id = cluster.topic_id("t").unwrap();
    let resp = c.call(13, &by_id).await;
    assert_eq!(resp.responses[0].partitions[0].records.as_ref(), Some(&s2));

    // A small partition limit still returns the first batch (KIP-74), but only that.
    let mut small = fetch_req("t", 0, 0, 0);
    small.topics[0].partitions[0].partition_max_bytes = 10;
    let resp = c.call(11, &small).await;
    assert_eq!(resp.responses[0].partitions[0].records.as_ref(), Some(&s1));

    // At the high watermark: nothing; past it: OFFSET_OUT_OF_RANGE.
    let resp = c.call(12, &fetch_req("t", 0, 5, 0)).await;
    assert_eq!(
        resp.responses[0].partitions[0].records.as_deref(),
        Some(&[][..])
    );
    let resp = c.call(12, &fetch_req("t", 0, 6, 0)).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);
    // Below the log start too.
    cluster.set_log_start_offset("t", 0, 3);
    assert_eq!(cluster.log("t", 0), std::slice::from_ref(&s2));
    let resp = c.call(12, &fetch_req("t", 0, 1, 0)).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 1);

    // Garbage is refused and stores nothing.
    let resp = c
        .call(9, &produce_req("t", 0, Bytes::from_static(b"junk"), -1))
        .await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 2);
    assert_eq!(cluster.high_watermark("t", 0), Some(5));
}

#[tokio::test]
async fn list_offsets_earliest_latest_and_by_timestamp() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    cluster.append("t", 0, &batch(4, 100, b"")).unwrap();
    cluster.append("t", 0, &batch(2, 200, b"")).unwrap();
    cluster.set_log_start_offset("t", 0, 1);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let req = |ts: &[i64]| ListOffsetsRequest {
        replica_id: -1,
        topics: vec![ListOffsetsTopic {
            name: "t".into(),
            partitions: ts
                .iter()
                .map(|t| ListOffsetsPartition {
                    partition_index: 0,
                    timestamp: *t,
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = c.call(7, &req(&[-2, -1, 150, 300])).await;
    let got: Vec<(i16, i64)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.error_code, p.offset))
        .collect();
    assert_eq!(got, [(0, 1), (0, 6), (0, 4), (0, -1)]);
    assert_eq!(resp.topics[0].partitions[0].leader_epoch, 0);
    let resp = c.call(0, &req(&[-1])).await;
    assert_eq!(resp.topics[0].partitions[0].old_style_offsets, [6]);
}

#[tokio::test]
async fn scripted_error_codes_show_up_without_side_effects() {
    let cluster = MockCluster::start(2).await;
    cluster.create_topic("t", 1);
    cluster.script(
        ApiKey::Produce,
        Action::ErrorCode(ErrorCode::NOT_ENOUGH_REPLICAS),
    );
    cluster.script(
        ApiKey::Metadata,
        Action::ErrorCode(ErrorCode::LEADER_NOT_AVAILABLE),
    );
    // Only for broker 1.
    cluster
        .broker(1)
        .script(ApiKey::FindCoordinator, Action::ErrorCode(ErrorCode(15)));
    assert_eq!(cluster.pending_scripts(), 3);

    let mut c = Conn::connect(&cluster.broker_addr(0)).await;
    let b = batch(1, 0, b"x");
    let resp = c.call(9, &produce_req("t", 0, b.clone(), -1)).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!((p.error_code, p.base_offset), (19, -1));
    assert!(cluster.log("t", 0).is_empty());
    // The queue is consumed: the next produce is default again.
    let resp = c.call(9, &produce_req("t", 0, b, -1)).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);

    let resp = c.call(12, &metadata_req(&["t"])).await;
    assert_eq!(resp.topics[0].error_code, 5);
    assert!(resp.topics[0].partitions.is_empty());

    let find = FindCoordinatorRequest {
        key: "g".into(),
        ..Default::default()
    };
    let find_v4 = FindCoordinatorRequest {
        coordinator_keys: vec!["g".into()],
        ..Default::default()
    };
    // Broker 0 is unaffected by broker 1's script.
    let resp = c.call(3, &find).await;
    assert_eq!((resp.error_code, resp.node_id), (0, 0));
    let mut c1 = Conn::connect(&cluster.broker_addr(1)).await;
    let resp = c1.call(4, &find_v4).await;
    assert_eq!(resp.coordinators[0].error_code, 15);
    assert_eq!(resp.coordinators[0].node_id, -1);
    assert_eq!(cluster.pending_scripts(), 0);

    cluster.script(
        ApiKey::InitProducerId,
        Action::ErrorCode(ErrorCode::COORDINATOR_LOAD_IN_PROGRESS),
    );
    let resp = c.call(4, &InitProducerIdRequest::default()).await;
    assert_eq!((resp.error_code, resp.producer_id), (14, -1));
    let resp = c.call(4, &InitProducerIdRequest::default()).await;
    assert_eq!(
        (resp.error_code, resp.producer_id, resp.producer_epoch),
        (0, 1000, 0)
    );
}

#[tokio::test]
async fn drop_connection_closes_without_answering() {
    let cluster = MockCluster::start(1).await;
    cluster.script(ApiKey::Metadata, Action::DropConnection);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.send(12, &metadata_req(&[])).await;
    assert!(
        c.frame().await.is_none(),
        "expected a close, not a response"
    );
    assert_eq!(cluster.request_count(ApiKey::Metadata), 1);
    // A new connection is served normally.
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let resp = c.call(12, &metadata_req(&[])).await;
    assert_eq!(resp.brokers.len(), 1);
    assert_eq!(cluster.connections(0), 2);
}

#[tokio::test]
async fn set_leader_moves_metadata_and_fences_the_old_leader() {
    let cluster = MockCluster::start(2).await;
    cluster.create_topic("t", 1);
    assert_eq!(cluster.leader("t", 0), Some((0, 0)));
    cluster.set_leader("t", 0, 1);
    assert_eq!(cluster.leader("t", 0), Some((1, 1)));

    let mut old = Conn::connect(&cluster.broker_addr(0)).await;
    let resp = old.call(12, &metadata_req(&["t"])).await;
    let p = &resp.topics[0].partitions[0];
    assert_eq!((p.leader_id, p.leader_epoch), (1, 1));

    let b = batch(2, 0, b"ab");
    let resp: ProduceResponse = old.call(10, &produce_req("t", 0, b.clone(), -1)).await;
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ErrorCode::NOT_LEADER_OR_FOLLOWER.0);
    assert_eq!(
        (p.current_leader.leader_id, p.current_leader.leader_epoch),
        (1, 1)
    );
    let port1 = cluster.broker(1).socket_addr().port() as i32;
    assert_eq!(
        (resp.node_endpoints[0].node_id, resp.node_endpoints[0].port),
        (1, port1)
    );
    let resp = old.call(8, &produce_req("t", 0, b.clone(), -1)).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 6);

    let mut new = Conn::connect(&cluster.broker_addr(1)).await;
    let resp = new.call(8, &produce_req("t", 0, b.clone(), -1)).await;
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    // Stored with the new leader epoch.
    assert_eq!(cluster.log("t", 0), [stored(&b, 0, 1)]);

    // Fetch: the old leader refuses; the new one fences a stale epoch.
    let resp: FetchResponse = old.call(12, &fetch_req("t", 0, 0, 0)).await;
    let pd = &resp.responses[0].partitions[0];
    assert_eq!((pd.error_code, pd.current_leader.leader_id), (6, 1));
    let mut stale = fetch_req("t", 0, 0, 0);
    stale.topics[0].partitions[0].current_leader_epoch = 0;
    let resp = new.call(12, &stale).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 74);
    stale.topics[0].partitions[0].current_leader_epoch = 1;
    let resp = new.call(12, &stale).await;
    assert_eq!(resp.responses[0].partitions[0].error_code, 0);

    // OffsetForLeaderEpoch: epoch 0 ended where epoch 1 began (offset 0).
    let req = OffsetForLeaderEpochRequest {
        topics: vec![OffsetForLeaderTopic {
            topic: "t".into(),
            partitions: vec![OffsetForLeaderPartition {
                partition: 0,
                current_leader_epoch: 1,
                leader_epoch: 0,
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = new.call(4, &req).await;
    let e = &resp.topics[0].partitions[0];
    assert_eq!((e.error_code, e.leader_epoch, e.end_offset), (0, 0, 0));
}

#[tokio::test]
async fn delays_keep_order_and_no_response_swallows() {
    let cluster = MockCluster::start(1).await;
    cluster.script(ApiKey::Metadata, Action::Delay(Duration::from_millis(200)));
    cluster.script(ApiKey::ApiVersions, Action::NoResponse);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let start = Instant::now();
    let m = c.send(12, &metadata_req(&[])).await;
    let swallowed = c.send(3, &ApiVersionsRequest::default()).await;
    let v = c.send(3, &ApiVersionsRequest::default()).await;
    let _: MetadataResponse = c.recv(ApiKey::Metadata, 12, m).await;
    assert!(start.elapsed() >= Duration::from_millis(200));
    // The swallowed request's answer never comes; the next one does.
    let resp: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3, v).await;
    assert_eq!(resp.error_code, 0);
    assert_eq!(swallowed + 1, v);

    // acks=0 gets no response at all.
    cluster.create_topic("t", 1);
    c.send(9, &produce_req("t", 0, batch(1, 0, b""), 0)).await;
    let v = c.send(3, &ApiVersionsRequest::default()).await;
    let _: ApiVersionsResponse = c.recv(ApiKey::ApiVersions, 3, v).await;
    assert_eq!(cluster.high_watermark("t", 0), Some(1));

    // Delayed(then error).
    cluster.script(
        ApiKey::Metadata,
        Action::Delayed(
            Duration::from_millis(50),
            Box::new(Action::ErrorCode(ErrorCode(5))),
        ),
    );
    let resp = c.call(12, &metadata_req(&["t"])).await;
    assert_eq!(resp.topics[0].error_code, 5);
}

#[tokio::test]
async fn fetch_long_poll_wakes_up_on_produce() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    // Empty and short wait: returns empty after about max_wait_ms.
    let start = Instant::now();
    let resp = c.call(12, &fetch_req("t", 0, 0, 100)).await;
    assert!(start.elapsed() >= Duration::from_millis(90));
    assert_eq!(
        resp.responses[0].partitions[0].records.as_deref(),
        Some(&[][..])
    );

    let id = c.send(12, &fetch_req("t", 0, 0, 10_000)).await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    let b = batch(1, 0, b"late");
    let start = Instant::now();
    cluster.append("t", 0, &b).unwrap();
    let resp: FetchResponse = c.recv(ApiKey::Fetch, 12, id).await;
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        resp.responses[0].partitions[0].records.as_ref(),
        Some(&stored(&b, 0, 0))
    );
}

#[tokio::test]
async fn respond_and_modify_escape_hatches() {
    let cluster = MockCluster::start(1).await;
    cluster.script(
        ApiKey::ApiVersions,
        Action::respond(|req| {
            let decoded: ApiVersionsRequest = req.decode().expect("decode");
            assert_eq!(decoded.client_software_name, "sw");
            req.reply(&ApiVersionsResponse {
                error_code: 42,
                ..Default::default()
            })
        }),
    );
    cluster.script(
        ApiKey::Metadata,
        Action::modify(|m: &mut MetadataResponse| m.cluster_id = Some("changed".into())),
    );
    cluster.script(
        ApiKey::Metadata,
        Action::respond(|_| Reply::Frame(Bytes::from_static(&[0, 0, 0, 1, 9]))),
    );
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let req = ApiVersionsRequest {
        client_software_name: "sw".into(),
        client_software_version: "1".into(),
        ..Default::default()
    };
    assert_eq!(c.call(3, &req).await.error_code, 42);
    let resp = c.call(12, &metadata_req(&[])).await;
    assert_eq!(resp.cluster_id.as_deref(), Some("changed"));
    c.send(12, &metadata_req(&[])).await;
    assert_eq!(c.frame().await.as_deref(), Some(&[9u8][..]));
}

#[tokio::test]
async fn create_and_delete_topics_change_the_model() {
    let cluster = MockCluster::start(2).await;
    let mut c = Conn::connect(&cluster.broker_addr(0)).await;
    let create = CreateTopicsRequest {
        topics: vec![
            CreatableTopic {
                name: "new".into(),
                num_partitions: 4,
                replication_factor: 1,
                ..Default::default()
            },
            CreatableTopic {
                name: "bad".into(),
                num_partitions: 0,
                replication_factor: 1,
                ..Default::default()
            },
        ],
        timeout_ms: 1000,
        ..Default::default()
    };
    let resp = c.call(7, &create).await;
    let codes: Vec<i16> = resp.topics.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, 37]);
    assert_eq!(resp.topics[0].num_partitions, 4);
    assert_eq!(Some(resp.topics[0].topic_id), cluster.topic_id("new"));
    assert_eq!(cluster.leader("new", 3), Some((1, 0)));
    let resp = c.call(4, &create).await;
    assert_eq!(resp.topics[0].error_code, 36);

    let delete = DeleteTopicsRequest {
        topic_names: vec!["new".into(), "missing".into()],
        timeout_ms: 1000,
        ..Default::default()
    };
    let resp = c.call(4, &delete).await;
    let codes: Vec<i16> = resp.responses.iter().map(|t| t.error_code).collect();
    assert_eq!(codes, [0, 3]);
    assert!(cluster.topics().is_empty());
}

#[tokio::test]
async fn offsets_commit_and_fetch_round_trip() {
    let cluster = MockCluster::start(1).await;
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let commit = OffsetCommitRequest {
        group_id: "g".into(),
        topics: vec![OffsetCommitRequestTopic {
            name: "t".into(),
            partitions: vec![OffsetCommitRequestPartition {
                partition_index: 2,
                committed_offset: 42,
                committed_metadata: Some("m".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let resp = c.call(8, &commit).await;
    assert_eq!(resp.topics[0].partitions[0].error_code, 0);
    let fetch = OffsetFetchRequest {
        group_id: "g".into(),
        topics: Some(vec![OffsetFetchRequestTopic {
            name: "t".into(),
            partition_indexes: vec![2, 3],
            ..Default::default()
        }]),
        ..Default::default()
    };
    let resp = c.call(7, &fetch).await;
    let got: Vec<(i32, i64)> = resp.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.committed_offset))
        .collect();
    assert_eq!(got, [(2, 42), (3, -1)]);
    assert_eq!(resp.topics[0].partitions[0].metadata.as_deref(), Some("m"));
}

#[tokio::test]
async fn drop_connections_stop_and_restart() {
    let cluster = MockCluster::start(2).await;
    let b0 = cluster.broker(0).clone();
    let mut c = Conn::connect(&b0.addr()).await;
    c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(b0.open_connections(), 1);
    b0.drop_connections();
    assert!(c.frame().await.is_none());

    b0.stop().await;
    assert!(!b0.is_running());
    assert!(TcpStream::connect(b0.addr()).await.is_err());
    // The other broker is unaffected.
    let mut c1 = Conn::connect(&cluster.broker_addr(1)).await;
    c1.call(3, &ApiVersionsRequest::default()).await;

    b0.restart().await.expect("restart");
    let mut c = Conn::connect(&b0.addr()).await;
    c.call(3, &ApiVersionsRequest::default()).await;
    assert_eq!(b0.connections(), 2);
}

#[tokio::test]
async fn bad_requests_close_the_connection() {
    let cluster = MockCluster::start(1).await;
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    // Unknown API key 999, version 0.
    let frame = [0, 0, 0, 10, 0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    c.stream.write_all(&frame).await.unwrap();
    assert!(c.frame().await.is_none());
    // A Metadata request with a truncated body.
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let mut buf = BytesMut::new();
    encode_request(&mut buf, 1, None, 12, &metadata_req(&["abc"])).unwrap();
    let cut = buf.len() - 3;
    let mut bad = buf[..cut].to_vec();
    bad[..4].copy_from_slice(&((cut - 4) as i32).to_be_bytes());
    c.stream.write_all(&bad).await.unwrap();
    assert!(c.frame().await.is_none());
    // The broker still serves others.
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    c.call(3, &ApiVersionsRequest::default()).await;
}
