//! `kafkawire consume`: print records of a topic.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use clap::Args;
use kafkawire::{Client, ConsumerConfig, Error, PartitionConsumer, StartOffset};

use crate::format;

#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Read only this partition (default: all partitions).
    #[arg(long)]
    partition: Option<i32>,
    /// Where to start: earliest, latest, or an offset.
    #[arg(long, default_value = "earliest")]
    offset: String,
    /// Stop once every partition has reached the high watermark it had at start.
    #[arg(long)]
    exit_at_end: bool,
    /// Stop after printing N records.
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp (ms),
    /// %h headers, and \n \t. Default: the value and a newline.
    #[arg(long, value_name = "FMT", default_value = "%v\\n")]
    format: String,
}

pub(crate) async fn run(client: &Client, args: &ConsumeArgs) -> Result<(), Error> {
    let pieces = format::parse(&args.format)?;
    let start: StartOffset = args.offset.parse()?;
    let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default());
    match args.partition {
        Some(p) => consumer.assign(&args.topic, p, start).await?,
        None => {
            consumer.assign_topic(&args.topic, start).await?;
        }
    }
    let partitions = consumer.assignment().len();
    // The high watermark each partition had when first seen: where --exit-at-end stops.
    let mut end_at_start: BTreeMap<i32, i64> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let started = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let limit = args.max_messages.unwrap_or(u64::MAX);
    'outer: while count < limit {
        let fetched = tokio::select! {
            f = consumer.poll() => f?,
            _ = tokio::signal::ctrl_c() => break,
        };
        for part in &fetched.partitions {
            if let Some((old, new)) = part.reset {
                eprintln!(
                    "kafkawire: {}-{}: offset {old} is out of range; continuing from {new} ({} offsets skipped)",
                    part.topic,
                    part.partition,
                    (new - old).max(0)
                );
            }
            end_at_start
                .entry(part.partition)
                .or_insert(part.high_watermark);
            for record in part.records() {
                let record = record?;
                if args.exit_at_end && record.offset() >= end_at_start[&part.partition] {
                    break;
                }
                bytes += (record.key().map_or(0, <[u8]>::len)
                    + record.value().map_or(0, <[u8]>::len)) as u64;
                let written =
                    format::write(&mut out, &pieces, &part.topic, part.partition, &record);
                if let Err(e) = written {
                    return broken_pipe_or(e);
                }
                count += 1;
                if count >= limit {
                    break 'outer;
                }
            }
        }
        if args.exit_at_end
            && end_at_start.len() == partitions
            && consumer
                .assignment()
                .iter()
                .all(|((_, p), s)| s.position >= end_at_start[p])
        {
            break;
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_or(e);
    }
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    eprintln!(
        "consumed {count} records ({bytes} bytes of keys and values) from {} in {secs:.2} s: {:.0} records/s, {:.2} MB/s",
        args.topic,
        count as f64 / secs,
        bytes as f64 / secs / 1e6
    );
    Ok(())
}

fn broken_pipe_or(e: std::io::Error) -> Result<(), Error> {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "cannot write to standard output: {e}"
        )))
    }
}
