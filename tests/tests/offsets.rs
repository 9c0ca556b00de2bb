//! Committed offsets without group membership (OffsetManager) and group administration.

mod common;

use std::time::Duration;

use kafkawire::{
    Admin, ConsumerConfig, OffsetManager, PartitionConsumer, Producer, ProducerRecord, StartOffset,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offset_manager_resumes_exactly_after_the_last_processed_record() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("resume");
    let group = broker.topic("resume-group");
    common::create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client).build().unwrap();
    let records: Vec<ProducerRecord> = (0..20)
        .map(|i| ProducerRecord::new(&topic, format!("v{i}")).partition(0))
        .collect();
    producer.send_batch(records).await.unwrap();

    // First run: nothing committed yet, so start at the beginning; process 7 records.
    let mut offsets = OffsetManager::new(&client, &group);
    assert_eq!(offsets.next_offset(&topic, 0).await.unwrap(), None);
    let mut consumer = PartitionConsumer::new(
        &client,
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    );
    consumer
        .assign(&topic, 0, StartOffset::Earliest)
        .await
        .unwrap();
    let mut processed = 0;
    'outer: while processed < 7 {
        let fetched = consumer.poll().await.unwrap();
        for part in &fetched.partitions {
            for r in part.records() {
                offsets.mark_processed(&topic, 0, r.unwrap().offset());
                processed += 1;
                if processed == 7 {
                    break 'outer;
                }
            }
        }
    }
    assert_eq!(offsets.pending(), 1);
    offsets.close().await.unwrap();

    // Second run: a new manager (as after a restart) resumes at offset 7.
    let mut offsets = OffsetManager::new(&client, &group);
    assert_eq!(offsets.next_offset(&topic, 0).await.unwrap(), Some(7));
    let mut consumer = PartitionConsumer::new(
        &client,
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(100),
            ..Default::default()
        },
    );
    consumer
        .assign(&topic, 0, StartOffset::Offset(7))
        .await
        .unwrap();
    let fetched = consumer.poll().await.unwrap();
    let first = fetched.partitions[0].records().next().unwrap().unwrap();
    assert_eq!((first.offset(), first.value()), (7, Some(&b"v7"[..])));

    // The group's committed offset is visible to admin tools, with the lag.
    let admin = Admin::new(&client);
    let committed = admin.committed_offsets(&group, None).await.unwrap();
    assert_eq!(committed.get(&(topic.clone(), 0)), Some(&7));
    assert_eq!(admin.high_watermark(&topic, 0).await.unwrap(), 20);
    let listed = admin.list_groups().await.unwrap();
    assert!(listed.iter().any(|g| g.group_id == group), "{listed:?}");

    // Marking backwards re-reads; commit failures keep the marks (not exercised here).
    offsets.mark(&topic, 0, 3, Some("rewind".into()));
    offsets.commit().await.unwrap();
    assert_eq!(
        admin
            .committed_offsets(&group, None)
            .await
            .unwrap()
            .get(&(topic.clone(), 0)),
        Some(&3)
    );

    admin.delete_groups(&[&group]).await.unwrap();
    let after = admin.committed_offsets(&group, None).await.unwrap();
    assert!(
        after.is_empty(),
        "offsets survive the group's deletion: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_partitions_are_not_fetched_until_resumed() {
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("pausing");
    common::create_topic(&client, &topic, 2).await;
    let producer = Producer::builder(&client).build().unwrap();
    let records: Vec<ProducerRecord> = (0..20)
        .map(|i| ProducerRecord::new(&topic, format!("v{i}")).partition(i % 2))
        .collect();
    producer.send_batch(records).await.unwrap();

    let mut consumer = PartitionConsumer::new(
        &client,
        ConsumerConfig {
            fetch_max_wait: Duration::from_millis(50),
            ..Default::default()
        },
    );
    consumer
        .assign_topic(&topic, StartOffset::Earliest)
        .await
        .unwrap();
    consumer.pause(&topic, 0);
    assert_eq!(consumer.paused(), vec![(topic.clone(), 0)]);
    for _ in 0..3 {
        let fetched = consumer.poll().await.unwrap();
        assert!(
            fetched.partitions.iter().all(|p| p.partition == 1),
            "paused partition 0 was fetched"
        );
    }
    assert_eq!(consumer.position(&topic, 0), Some(0));
    assert_eq!(consumer.position(&topic, 1), Some(10));
    consumer.resume(&topic, 0);
    let fetched = consumer.poll().await.unwrap();
    let p0 = fetched
        .partitions
        .iter()
        .find(|p| p.partition == 0)
        .expect("partition 0 after resume");
    assert_eq!(p0.records().count(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commit_async_reports_through_its_callback_and_committed_reads_it_back() {
    use kafkawire::{GroupConfig, GroupConsumer, OffsetReset};
    let broker = common::broker();
    let client = common::connect(&broker).await;
    let topic = broker.topic("async-commit");
    let group = broker.topic("async-group");
    common::create_topic(&client, &topic, 1).await;
    let producer = Producer::builder(&client).build().unwrap();
    let records: Vec<ProducerRecord> = (0..5)
        .map(|i| ProducerRecord::new(&topic, format!("v{i}")).partition(0))
        .collect();
    producer.send_batch(records).await.unwrap();

    let mut config = GroupConfig::new(&group);
    config.session_timeout = Duration::from_secs(2);
    config.heartbeat_interval = Duration::from_millis(300);
    config.auto_offset_reset = OffsetReset::Earliest;
    config.enable_auto_commit = false;
    config.fetch.fetch_max_wait = Duration::from_millis(50);
    let mut consumer = GroupConsumer::subscribe(&client, config, &[&topic]).unwrap();
    let mut read = 0;
    while read < 5 {
        for p in &consumer.poll().await.unwrap().partitions {
            for r in p.records() {
                let r = r.unwrap();
                consumer.store_offset(&topic, 0, r.offset() + 1);
                read += 1;
            }
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    consumer.commit_async(move |r| {
        let _ = tx.send(r);
    });
    tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let committed = consumer.committed(&[(topic.clone(), 0)]).await.unwrap();
    assert_eq!(committed.get(&(topic.clone(), 0)), Some(&5));
    consumer.close().await.unwrap();
}
