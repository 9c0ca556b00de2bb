//! Unit tests of the mock cluster over raw connections.

use super::*;
use kafkawire_protocol::frame::{FrameDecoder, decode_response, encode_request};
use kafkawire_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use kafkawire_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use kafkawire_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use kafkawire_protocol::messages::produce_response::ProduceResponse;
use kafkawire_protocol::records::RecordBatchBuilder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

struct Conn {
    stream: TcpStream,
    decoder: FrameDecoder,
    next_id: i32,
}

impl Conn {
    async fn connect(addr: &str) -> Conn {
        Conn {
            stream: TcpStream::connect(addr).await.expect("connect"),
            decoder: FrameDecoder::new(1 << 24),
            next_id: 1,
        }
    }

    async fn send<R: Request>(&mut self, version: i16, req: &R) {
        let mut buf = BytesMut::new();
        encode_request(&mut buf, self.next_id, Some("unit"), version, req).expect("encode");
        self.next_id += 1;
        self.stream.write_all(&buf).await.expect("write");
    }

    /// The next response, or `None` when the connection closes.
    async fn recv<R: Request>(&mut self, version: i16) -> Option<R::Response> {
        let read = async {
            loop {
                if let Some(f) = self.decoder.next_frame().expect("frame") {
                    return Some(f);
                }
                match self.stream.read_buf(self.decoder.buffer_mut()).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        };
        let frame = tokio::time::timeout(Duration::from_secs(5), read)
            .await
            .expect("no answer within 5 s")?;
        let (_, body) = decode_response::<R::Response>(frame, R::API_KEY, version).expect("decode");
        Some(body)
    }

    async fn call<R: Request>(&mut self, version: i16, req: &R) -> Option<R::Response> {
        self.send(version, req).await;
        self.recv::<R>(version).await
    }
}

fn batch(id: i64, epoch: i16, seq: i32, values: &[&str]) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.producer(id, epoch, seq);
    for v in values {
        b.push(0, Some(b"k"), Some(v.as_bytes()), &[])
            .expect("push");
    }
    b.build().expect("build")
}

fn produce(records: Bytes) -> ProduceRequest {
    ProduceRequest {
        acks: -1,
        timeout_ms: 1000,
        topic_data: vec![TopicProduceData {
            name: "t".into(),
            partition_data: vec![PartitionProduceData {
                index: 0,
                records: Some(records),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn code_and_offset(r: &ProduceResponse) -> (i16, i64) {
    let p = &r.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

fn init(id: i64, epoch: i16) -> InitProducerIdRequest {
    InitProducerIdRequest {
        transactional_id: None,
        producer_id: id,
        producer_epoch: epoch,
        transaction_timeout_ms: -1,
        ..Default::default()
    }
}

fn ids(r: &InitProducerIdResponse) -> (i16, i64, i16) {
    (r.error_code, r.producer_id, r.producer_epoch)
}

#[tokio::test]
async fn process_then_drop_appends_and_the_retry_is_a_duplicate() {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let r = c.call(4, &init(-1, -1)).await.unwrap();
    assert_eq!(ids(&r), (0, 1000, 0));

    let first = batch(1000, 0, 0, &["a", "b"]);
    cluster.script(ApiKey::Produce, Action::ProcessThenDrop);
    assert!(
        c.call(9, &produce(first.clone())).await.is_none(),
        "closed without an answer"
    );
    assert_eq!(cluster.record_count("t", 0), 2, "but appended");

    let mut c = Conn::connect(&cluster.bootstrap()).await;
    let r = c.call(9, &produce(first)).await.unwrap();
    assert_eq!(code_and_offset(&r), (0, 0), "duplicate: original offset");
    let r = c
        .call(9, &produce(batch(1000, 0, 2, &["c"])))
        .await
        .unwrap();
    assert_eq!(code_and_offset(&r), (0, 2));
    let r = c
        .call(9, &produce(batch(1000, 0, 9, &["x"])))
        .await
        .unwrap();
    assert_eq!(code_and_offset(&r), (45, -1));
    assert_eq!(cluster.record_count("t", 0), 3);
    assert_eq!(cluster.producer_state("t", 0, 1000), Some((0, 2)));
    let records = cluster.records("t", 0).unwrap();
    let got: Vec<(i64, &[u8])> = records
        .iter()
        .map(|r| (r.offset, r.value.as_deref().unwrap()))
        .collect();
    assert_eq!(got, [(0, &b"a"[..]), (1, b"b"), (2, b"c")]);
    assert!(records.iter().all(|r| r.key.as_deref() == Some(&b"k"[..])));

    // KIP-360 epoch bump: same id, epoch + 1; sequences start again at 0.
    let r = c.call(4, &init(1000, 0)).await.unwrap();
    assert_eq!(ids(&r), (0, 1000, 1));
    let r = c.call(4, &init(1000, 0)).await.unwrap();
    assert_eq!(ids(&r), (47, -1, -1), "stale epoch");
    let r = c
        .call(9, &produce(batch(1000, 1, 3, &["d"])))
        .await
        .unwrap();
    assert_eq!(code_and_offset(&r), (45, -1), "new epoch starts at 0");
    let r = c
        .call(9, &produce(batch(1000, 1, 0, &["d"])))
        .await
        .unwrap();
    assert_eq!(code_and_offset(&r), (0, 3));
    let r = c
        .call(9, &produce(batch(1000, 0, 3, &["e"])))
        .await
        .unwrap();
    assert_eq!(code_and_offset(&r), (47, -1), "old epoch");

    // Fenced: its produce and its epoch bump are refused.
    assert_eq!(cluster.fence_producer(1000), 2);
    let r = c
        .call(9, &produce(batch(1000, 1, 1, &["f"])))
        .await
        .unwrap();
    assert_eq!(code_and_offset(&r), (90, -1));
    let r = c.call(4, &init(1000, 1)).await.unwrap();
    assert_eq!(ids(&r).0, 90);
    assert_eq!(cluster.record_count("t", 0), 4);
    assert_eq!(cluster.records("nope", 0).unwrap(), []);
}
