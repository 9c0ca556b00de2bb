//! The kafkawire side: `Producer` and `Consumer` with their default settings, on a tokio
//! multi-thread runtime (as `#[tokio::main]` would build: one worker per core).
//!
//! Produce: after the warm-up record (see [`crate::workload`]), `send` each record (it waits
//! only for buffer room) and keep its `DeliveryFuture` in a FIFO of at most [`MAX_PENDING`];
//! when the FIFO is full, await the oldest. At the end, `flush` (sends what lingers) and await
//! the rest.
//!
//! Consume: assign every partition of the topic from the earliest offset (no group), as
//! `kafkawire perf consume` does, and `poll` until N records (and the warm-up record) were
//! counted.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafkawire::{
    Client, ClientConfig, Consumer, DeliveryFuture, OffsetReset, Producer, ProducerRecord,
};

use crate::meter::Meter;
use crate::workload::{Tally, WARMUP_KEY, fill_value, key};
use crate::{MAX_PENDING, Options, Outcome, check_partitions};

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the tokio runtime: {e}"))
}

/// Connects and returns the client with the topic's partition count (metadata now cached).
async fn connect(o: &Options) -> Result<(Client, usize), String> {
    let client = Client::connect(ClientConfig::new(&o.bootstrap))
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", o.bootstrap))?;
    let meta = client
        .topic_metadata(&o.topic)
        .await
        .map_err(|e| format!("no metadata for topic {}: {e}", o.topic))?;
    let partitions = check_partitions(o, meta.partitions.len())?;
    Ok((client, partitions))
}

/// Awaits one delivery, failing when it takes longer than the idle timeout.
async fn settle(future: DeliveryFuture, o: &Options) -> Result<(), String> {
    match tokio::time::timeout(o.idle_timeout, future).await {
        Ok(Ok(_metadata)) => Ok(()),
        Ok(Err(e)) => Err(format!("a delivery failed: {e}")),
        Err(_) => Err(format!(
            "a delivery was not settled within {} ms",
            o.idle_timeout.as_millis()
        )),
    }
}

/// The produce phase: N records, every delivery awaited and checked.
pub fn produce(o: &Options) -> Result<Outcome, String> {
    runtime()?.block_on(async {
        let (client, partitions) = connect(o).await?;
        // Defaults: idempotent, acks=all, 16 KiB batches, linger 5 ms.
        let producer = Producer::builder(&client)
            .build()
            .map_err(|e| format!("cannot build the producer: {e}"))?;

        // The warm-up record (see `workload`), before the clock.
        let warmup = ProducerRecord::new(o.topic.as_str(), Vec::new())
            .key(WARMUP_KEY)
            .partition(0);
        match producer.send(warmup).await {
            Ok(delivery) => settle(delivery, o).await,
            Err(e) => Err(e.to_string()),
        }
        .map_err(|e| format!("the warm-up record failed: {e}"))?;

        // One shared topic name for every record, as the producer's docs suggest for many
        // records to one topic (no copy of the name per record).
        let topic: Arc<str> = Arc::from(o.topic.as_str());
        let meter = Meter::start();
        let mut pending: VecDeque<DeliveryFuture> = VecDeque::with_capacity(MAX_PENDING);
        let mut acked = 0u64;
        for i in 0..o.records {
            if pending.len() >= MAX_PENDING
                && let Some(oldest) = pending.pop_front()
            {
                settle(oldest, o).await?;
                acked += 1;
            }
            // A fresh buffer per record: the producer takes ownership of the value (`Bytes`).
            let mut value = vec![0u8; o.value_size];
            fill_value(i, &mut value);
            let record = ProducerRecord::new(topic.clone(), value).key(key(i).to_vec());
            let delivery = producer
                .send(record)
                .await
                .map_err(|e| format!("send of record {i} failed: {e}"))?;
            pending.push_back(delivery);
        }
        // Send what waits for linger now; then every future is settled (or about to be).
        producer
            .flush(o.idle_timeout)
            .await
            .map_err(|e| format!("flush failed: {e}"))?;
        for delivery in pending.drain(..) {
            settle(delivery, o).await?;
            acked += 1;
        }
        let measurement = meter.finish();

        if acked != o.records {
            return Err(format!("{acked} of {} records acknowledged", o.records));
        }
        producer
            .close(Duration::from_secs(10))
            .await
            .map_err(|e| format!("close failed: {e}"))?;
        Ok(Outcome {
            partitions,
            measurement,
            tally: None,
        })
    })
}

/// The consume phase: the first N records of the topic, every partition from the beginning.
pub fn consume(o: &Options) -> Result<Outcome, String> {
    runtime()?.block_on(async {
        let (client, partitions) = connect(o).await?;
        let mut tally = Tally::new(o.value_size);

        let meter = Meter::start();
        let mut consumer = Consumer::builder(&client)
            .auto_offset_reset(OffsetReset::Earliest)
            .assign((0..partitions as i32).map(|p| (o.topic.as_str(), p)))
            .build()
            .await
            .map_err(|e| format!("cannot build the consumer: {e}"))?;
        let mut last_progress = Instant::now();
        // The records and the warm-up record.
        let total = o.records + 1;
        while tally.seen() < total {
            if last_progress.elapsed() > o.idle_timeout {
                return Err(format!(
                    "only {} of {} records arrived: none for {} ms",
                    tally.count,
                    o.records,
                    o.idle_timeout.as_millis()
                ));
            }
            let records = match consumer.poll(Duration::from_secs(1)).await {
                Ok(records) => records,
                Err(e) if e.is_retriable() => {
                    eprintln!("peers: kafkawire poll: {e} (retrying)");
                    continue;
                }
                Err(e) => return Err(format!("poll failed: {e}")),
            };
            let wanted = (total - tally.seen()) as usize;
            let before = tally.seen();
            for record in records.iter().take(wanted) {
                let r = record.map_err(|e| format!("a record does not decode: {e}"))?;
                tally.add(r.key(), r.value(), || {
                    format!("{}-{}@{}", r.topic(), r.partition(), r.offset())
                });
            }
            if tally.seen() > before {
                last_progress = Instant::now();
            }
        }
        let measurement = meter.finish();

        consumer
            .close()
            .await
            .map_err(|e| format!("close failed: {e}"))?;
        Ok(Outcome {
            partitions,
            measurement,
            tally: Some(tally),
        })
    })
}
