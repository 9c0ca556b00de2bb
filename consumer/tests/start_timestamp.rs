//! `StartOffset::Timestamp` and `PartitionConsumer::offset_for_timestamp` against the in-process
//! mock broker, which answers ListOffsets from the records' own (CreateTime) timestamps, as
//! Kafka does. (Tansu uses its receive time instead; see /work/shared/TANSU.md.)
//!
//! Every batch holds one record, so the mock's batch-granular lookup is exact.

use std::time::Duration;

use bytes::Bytes;
use kafkawire_client::{Client, Error};
use kafkawire_consumer::{ConsumerConfig, PartitionConsumer, StartOffset};
use kafkawire_protocol::messages::ApiKey;
use kafkawire_protocol::messages::list_offsets_request::ListOffsetsRequest;
use kafkawire_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use kafkawire_protocol::records::RecordBatchBuilder;
use kafkawire_testkit::mock::{Action, MockCluster};

mod common;
use common::{client, within};

/// Timestamps (ms) of the records at offsets 0, 1, 2, 3 (two share a millisecond).
const TIMESTAMPS: [i64; 4] = [1_000, 2_000, 2_000, 3_000];

/// A batch of one record with value `v{offset}` and timestamp `ts`.
fn record(offset: i64, ts: i64) -> Bytes {
    let mut b = RecordBatchBuilder::new();
    b.push(ts, None, Some(format!("v{offset}").as_bytes()), &[])
        .expect("push");
    b.build().expect("build")
}

/// A cluster with topic `t` (one partition) holding one record per [`TIMESTAMPS`] entry.
async fn seeded() -> MockCluster {
    let cluster = MockCluster::start(1).await;
    cluster.create_topic("t", 1);
    for (offset, ts) in (0i64..).zip(TIMESTAMPS) {
        let base = cluster.append("t", 0, &record(offset, ts)).expect("append");
        assert_eq!(base, offset);
    }
    cluster
}

fn consumer(client: &Client) -> PartitionConsumer {
    PartitionConsumer::new(
        client,
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(50),
            ..ConsumerConfig::default()
        },
    )
}

/// The values polled until `want` records arrived (at most 10 polls).
async fn poll_values(consumer: &mut PartitionConsumer, want: usize) -> Vec<String> {
    let mut got = Vec::new();
    for _ in 0..10 {
        if got.len() >= want {
            break;
        }
        let fetched = consumer.poll().await.expect("poll");
        for p in &fetched.partitions {
            for r in p.records() {
                let r = r.expect("record decodes");
                got.push(String::from_utf8_lossy(r.value().unwrap_or_default()).into_owned());
            }
        }
    }
    got
}

#[tokio::test]
async fn offset_for_timestamp_is_the_first_offset_at_or_after_the_time() {
    within(async {
        let cluster = seeded().await;
        let client = client(&cluster).await;
        let c = consumer(&client);
        for (ms, want) in [
            (0, Some(0)),
            (1_000, Some(0)),
            (1_001, Some(1)),
            (2_000, Some(1)),
            (2_500, Some(3)),
            (3_000, Some(3)),
            (3_001, None),
        ] {
            let got = c.offset_for_timestamp("t", 0, ms).await.expect("lookup");
            assert_eq!(got, want, "offset for timestamp {ms}");
        }
    })
    .await;
}

#[tokio::test]
async fn assign_at_a_timestamp_reads_from_the_first_record_that_recent() {
    within(async {
        let cluster = seeded().await;
        let client = client(&cluster).await;
        let mut c = consumer(&client);
        c.assign("t", 0, StartOffset::Timestamp(1_500))
            .await
            .expect("assign");
        assert_eq!(c.position("t", 0), Some(1));
        assert_eq!(poll_values(&mut c, 3).await, ["v1", "v2", "v3"]);

        // seek moves to a timestamp too.
        c.seek("t", 0, StartOffset::Timestamp(3_000))
            .await
            .expect("seek");
        assert_eq!(c.position("t", 0), Some(3));
        assert_eq!(poll_values(&mut c, 1).await, ["v3"]);
    })
    .await;
}

#[tokio::test]
async fn a_timestamp_newer_than_every_record_starts_at_the_log_end() {
    within(async {
        let cluster = seeded().await;
        let client = client(&cluster).await;
        let mut c = consumer(&client);
        c.assign("t", 0, StartOffset::Timestamp(10_000))
            .await
            .expect("assign");
        assert_eq!(
            c.position("t", 0),
            Some(4),
            "no record that recent: the end"
        );
        // Records written afterwards are read, whatever their timestamp.
        cluster.append("t", 0, &record(4, 500)).expect("append");
        assert_eq!(poll_values(&mut c, 1).await, ["v4"]);
    })
    .await;
}

#[tokio::test]
async fn the_broker_is_asked_for_the_timestamp_and_its_answer_is_used() {
    within(async {
        let cluster = seeded().await;
        let client = client(&cluster).await;
        let (tx, rx) = tokio::sync::oneshot::channel();
        cluster.script(
            ApiKey::ListOffsets,
            Action::respond(move |req| {
                let r: ListOffsetsRequest = req.decode().expect("a ListOffsets request");
                let asked: Vec<(String, i32, i64)> = r
                    .topics
                    .iter()
                    .flat_map(|t| {
                        t.partitions
                            .iter()
                            .map(|p| (t.name.clone(), p.partition_index, p.timestamp))
                    })
                    .collect();
                tx.send((req.version, asked)).expect("report");
                // An answer the mock's own lookup would not give (it says 1 for 2000).
                req.reply(&ListOffsetsResponse {
                    topics: vec![ListOffsetsTopicResponse {
                        name: "t".into(),
                        partitions: vec![ListOffsetsPartitionResponse {
                            partition_index: 0,
                            timestamp: 2_000,
                            offset: 2,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                })
            }),
        );
        let got = consumer(&client)
            .offset_for_timestamp("t", 0, 2_000)
            .await
            .expect("lookup");
        assert_eq!(got, Some(2));
        let (version, asked) = rx.await.expect("the request was seen");
        assert_eq!(asked, [("t".to_owned(), 0, 2_000)]);
        assert!(
            version >= 1,
            "KIP-79 lookups need ListOffsets v1+, sent v{version}"
        );
    })
    .await;
}

#[tokio::test]
async fn negative_timestamps_are_refused_with_a_clear_error() {
    within(async {
        let cluster = seeded().await;
        let client = client(&cluster).await;
        let mut c = consumer(&client);
        let e = c
            .assign("t", 0, StartOffset::Timestamp(-2))
            .await
            .expect_err("refused");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        assert!(e.to_string().contains("t-0"), "{e}");
        assert!(c.assignment().is_empty());
        let e = c
            .offset_for_timestamp("t", 0, -1)
            .await
            .expect_err("refused");
        assert!(matches!(e, Error::Config(_)), "{e:?}");
        // No request was sent for either.
        assert_eq!(cluster.request_count(ApiKey::ListOffsets), 0);
    })
    .await;
}

#[tokio::test]
async fn a_broker_without_timestamp_lookups_is_named_not_misread() {
    within(async {
        let cluster = seeded().await;
        // ListOffsets v0 answers segment start offsets, not the offset for a timestamp.
        cluster.set_api_versions(ApiKey::ListOffsets, 0, 0);
        let client = client(&cluster).await;
        let mut c = consumer(&client);
        let e = c
            .assign("t", 0, StartOffset::Timestamp(1_500))
            .await
            .expect_err("refused");
        assert!(
            matches!(
                e,
                Error::UnsupportedVersion {
                    api: ApiKey::ListOffsets,
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(cluster.request_count(ApiKey::ListOffsets), 0);
        // Earliest still works at v0.
        c.assign("t", 0, StartOffset::Earliest)
            .await
            .expect("assign");
        assert_eq!(c.position("t", 0), Some(0));
    })
    .await;
}

#[test]
fn start_offsets_parse_from_text() {
    let parse = |s: &str| s.parse::<StartOffset>();
    assert_eq!(
        parse("@1700000000000").unwrap(),
        StartOffset::Timestamp(1_700_000_000_000)
    );
    assert_eq!(parse("@0").unwrap(), StartOffset::Timestamp(0));
    assert_eq!(parse("42").unwrap(), StartOffset::Offset(42));
    assert_eq!(parse("earliest").unwrap(), StartOffset::Earliest);
    assert_eq!(parse("end").unwrap(), StartOffset::Latest);
    for bad in ["@", "@-5", "@abc", "@1.5", "-3", "soon"] {
        let e = parse(bad).expect_err(bad);
        assert!(matches!(e, Error::Config(_)), "{bad}: {e:?}");
        assert!(e.to_string().contains(&format!("{bad:?}")), "{bad}: {e}");
    }
}
