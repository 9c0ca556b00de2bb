//! `kafkawire consume`: print records of a topic, assigned or as a member of a group.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::Args;
use kafkawire::{
    Client, ConsumerConfig, Error, Fetched, GroupConfig, GroupConsumer, OffsetReset,
    PartitionConsumer, StartOffset,
};

use crate::format;

#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Read only this partition (default: all partitions). Not with --group.
    #[arg(long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Where to start: earliest, latest, or an offset. With --group: where partitions without
    /// a committed offset start (earliest or latest).
    #[arg(long, default_value = "earliest")]
    offset: String,
    /// Consume as a member of this consumer group: partitions are shared with the group's
    /// other members, and the offsets of printed records are committed as it goes and on exit.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Stop once every partition has reached the high watermark it had at start.
    #[arg(long)]
    exit_at_end: bool,
    /// Stop after printing N records (with --group, exactly those N count as processed).
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Output format: %t topic, %p partition, %o offset, %k key, %v value, %T timestamp (ms),
    /// %h headers, and \n \t. Default: the value and a newline.
    #[arg(long, value_name = "FMT", default_value = "%v\\n")]
    format: String,
}

/// Where records come from.
enum Source {
    Assigned(Box<PartitionConsumer>),
    Group(Box<GroupConsumer>),
}

impl Source {
    async fn poll(&mut self) -> Result<Fetched, Error> {
        match self {
            Source::Assigned(c) => c.poll().await,
            Source::Group(g) => g.poll().await,
        }
    }

    /// The partitions read now, with their positions when known.
    fn partitions(&self) -> Vec<(i32, Option<i64>)> {
        match self {
            Source::Assigned(c) => c
                .assignment()
                .iter()
                .map(|((_, p), s)| (*p, Some(s.position)))
                .collect(),
            Source::Group(g) => g
                .assignment()
                .into_iter()
                .map(|(t, p)| (p, g.position(&t, p)))
                .collect(),
        }
    }
}

const GROUP_COMMIT_INTERVAL: Duration = Duration::from_secs(5);

pub(crate) async fn run(client: &Client, args: &ConsumeArgs) -> Result<(), Error> {
    let pieces = format::parse(&args.format)?;
    let mut source = match &args.group {
        Some(group) => {
            let mut config = GroupConfig::new(group);
            // A command-line member should be evicted soon after it is killed, and join fast
            // (some brokers hold a join for half the session timeout).
            config.session_timeout = Duration::from_secs(10);
            config.heartbeat_interval = Duration::from_secs(1);
            config.auto_offset_reset = match args.offset.as_str() {
                "earliest" | "beginning" => OffsetReset::Earliest,
                "latest" | "end" => OffsetReset::Latest,
                other => {
                    return Err(Error::Config(format!(
                        "with --group, --offset must be earliest or latest (where partitions without a committed offset start), not {other:?}"
                    )));
                }
            };
            // Only what is printed counts as processed: offsets are stored per record and
            // committed here, not auto-committed by poll.
            config.enable_auto_commit = false;
            Source::Group(Box::new(GroupConsumer::subscribe(
                client,
                config,
                &[&args.topic],
            )?))
        }
        None => {
            let start: StartOffset = args.offset.parse()?;
            let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default());
            match args.partition {
                Some(p) => consumer.assign(&args.topic, p, start).await?,
                None => {
                    consumer.assign_topic(&args.topic, start).await?;
                }
            }
            Source::Assigned(Box::new(consumer))
        }
    };
    // The high watermark each partition had when first seen, and where reading got to.
    let mut end_at_start: BTreeMap<i32, i64> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let started = Instant::now();
    let mut last_commit = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let mut failure = None;
    'outer: while count < limit {
        let fetched = tokio::select! {
            f = source.poll() => match f {
                Ok(f) => f,
                Err(e) if e.is_retriable() && matches!(source, Source::Group(_)) => {
                    eprintln!("kafkawire: {e}");
                    continue;
                }
                Err(e) => { failure = Some(e); break; }
            },
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
                let record = match record {
                    Ok(r) => r,
                    Err(e) => {
                        failure = Some(e);
                        break 'outer;
                    }
                };
                if args.exit_at_end && record.offset() >= end_at_start[&part.partition] {
                    break;
                }
                bytes += (record.key().map_or(0, <[u8]>::len)
                    + record.value().map_or(0, <[u8]>::len)) as u64;
                if let Err(e) =
                    format::write(&mut out, &pieces, &part.topic, part.partition, &record)
                {
                    return broken_pipe_or(e);
                }
                if let Source::Group(g) = &mut source {
                    g.store_offset(&part.topic, part.partition, record.offset() + 1);
                }
                count += 1;
                if count >= limit {
                    break 'outer;
                }
            }
        }
        if let Source::Group(g) = &mut source
            && last_commit.elapsed() >= GROUP_COMMIT_INTERVAL
        {
            out.flush().ok();
            if let Err(e) = g.commit().await {
                eprintln!("kafkawire: commit failed (will retry): {e}");
            }
            last_commit = Instant::now();
        }
        if args.exit_at_end {
            let parts = source.partitions();
            let done = !parts.is_empty()
                && parts.iter().all(|(p, position)| match end_at_start.get(p) {
                    Some(end) => position.unwrap_or(0) >= *end,
                    None => false,
                });
            if done {
                break;
            }
        }
    }
    if let Err(e) = out.flush() {
        return broken_pipe_or(e);
    }
    if let Source::Group(g) = source {
        // Commit exactly what was printed, then leave the group.
        g.close().await?;
    }
    if let Some(e) = failure {
        return Err(e);
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
