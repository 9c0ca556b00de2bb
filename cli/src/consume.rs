//! `kafkawire consume`: print records of a topic, assigned or as a member of a group.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use kafkawire::{
    Admin, Client, ConsumerConfig, Error, Fetched, GroupConfig, GroupConsumer, IsolationLevel,
    OffsetReset, PartitionConsumer, StartOffset,
};

use crate::format::{self, Origin, Output};

#[derive(Args, Debug)]
pub(crate) struct ConsumeArgs {
    /// Topic to read.
    #[arg(long)]
    topic: String,
    /// Read only this partition (default: all partitions). Not with --group.
    #[arg(long, conflicts_with = "group")]
    partition: Option<i32>,
    /// Where to start: earliest, latest, an offset N, -N (the last N records of each partition:
    /// from max(log start, high watermark - N); fewer records where offsets are transaction
    /// markers or were compacted away), or @MS (the first record whose timestamp is at or after
    /// MS milliseconds since the Unix epoch, by the broker's ListOffsets; the end of the
    /// partition when no record is that recent). With --group: where partitions without a
    /// committed offset start (earliest or latest).
    #[arg(
        long,
        value_name = "earliest|latest|N|-N|@MS",
        default_value = "earliest",
        allow_hyphen_values = true
    )]
    offset: String,
    /// Consume as a member of this consumer group: partitions are shared with the group's
    /// other members, and the offsets of printed records are committed as it goes and on exit.
    #[arg(long, value_name = "GROUP")]
    group: Option<String>,
    /// Stop once every partition has reached the end it had at start (the high watermark; the
    /// last stable offset with read_committed).
    #[arg(long)]
    exit_at_end: bool,
    /// Stop after printing N records (with --group, exactly those N count as processed).
    #[arg(long, value_name = "N")]
    max_messages: Option<u64>,
    /// Which records of transactions to show (KIP-98): read_uncommitted (the default, as the
    /// Java consumer) shows every record; read_committed hides records of aborted transactions
    /// and stops at the last stable offset, before transactions still open.
    #[arg(
        long,
        value_enum,
        value_name = "LEVEL",
        default_value = "read_uncommitted"
    )]
    isolation_level: Isolation,
    /// text: as --format. json: one JSON object per record and line, fields in this order:
    /// topic, partition, offset, timestamp (ms since the Unix epoch), timestamp_type
    /// ("CreateTime" or "LogAppendTime"), key, key_encoding, value, value_encoding, headers (a
    /// list of {"key", "value", "value_encoding"} in record order). An *_encoding is "utf8"
    /// when the bytes are valid UTF-8 (the field is the text), "base64" otherwise (standard
    /// alphabet, padded), and null, like its field, for a null key or value. With jq:
    /// `jq -r 'select(.value_encoding == "utf8") | .value'`, or `.value | @base64d` for base64.
    #[arg(long, value_enum, value_name = "FORMAT", default_value = "text")]
    output: OutputKind,
    /// Output format of --output text: %t topic, %p partition, %o offset, %k key, %v value, %T
    /// timestamp (ms), %h headers (k=v,k=v), and \n \t \\. Default: the value and a newline.
    /// Keys, values and headers are escaped so that the terminal shows every byte: \\ for a
    /// backslash, \n \t \r, and \xNN for other control characters, invisible or
    /// bidirectional formatting characters and invalid UTF-8; --raw prints them as they are.
    #[arg(long, value_name = "FMT")]
    format: Option<String>,
    /// Print keys, values and headers byte for byte, without escaping (--output text).
    #[arg(long)]
    raw: bool,
}

/// `--isolation-level`, spelled as Kafka's `isolation.level` setting.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Isolation {
    /// Every record, whether its transaction committed, aborted or is still open.
    #[value(name = "read_uncommitted", alias = "read-uncommitted")]
    ReadUncommitted,
    /// Only records of committed transactions (and records outside transactions).
    #[value(name = "read_committed", alias = "read-committed")]
    ReadCommitted,
}

impl From<Isolation> for IsolationLevel {
    fn from(i: Isolation) -> IsolationLevel {
        match i {
            Isolation::ReadUncommitted => IsolationLevel::ReadUncommitted,
            Isolation::ReadCommitted => IsolationLevel::ReadCommitted,
        }
    }
}

/// `--output`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OutputKind {
    /// As --format, escaped unless --raw.
    Text,
    /// One JSON object per record and line.
    Json,
}

/// Where an assigned (group-less) consume starts, from `--offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Start {
    /// Earliest, latest, an offset or a timestamp, resolved by the consumer.
    At(StartOffset),
    /// The last N offsets of each partition (`-N`).
    Last(u64),
}

/// Parses `--offset` for an assigned consume.
///
/// # Errors
/// [`Error::Config`] quoting the text and listing the accepted forms.
fn parse_start(s: &str) -> Result<Start, Error> {
    if let Some(n) = s.strip_prefix('-') {
        return n.parse::<u64>().map(Start::Last).map_err(|_| {
            Error::Config(format!(
                "--offset -N takes a whole number of records from the end, not {s:?}"
            ))
        });
    }
    s.parse().map(Start::At).map_err(|e| {
        if s.starts_with('@') {
            let why = match e {
                Error::Config(why) => why,
                other => other.to_string(),
            };
            Error::Config(format!("--offset: {why}"))
        } else {
            Error::Config(format!(
                "--offset must be earliest, latest, an offset N >= 0, -N (the last N records) or @MS (a timestamp in ms since the Unix epoch), not {s:?}"
            ))
        }
    })
}

/// The output chosen by `--output`, `--format` and `--raw`.
///
/// # Errors
/// [`Error::Config`] for `--format` or `--raw` with `--output json`, or a bad `--format`.
fn output(args: &ConsumeArgs) -> Result<Output, Error> {
    match args.output {
        OutputKind::Json if args.format.is_some() => Err(Error::Config(
            "--format applies to --output text only; --output json prints every field".into(),
        )),
        OutputKind::Json if args.raw => Err(Error::Config(
            "--raw applies to --output text only; --output json keeps every byte (base64 where not UTF-8)".into(),
        )),
        OutputKind::Json => Ok(Output::Json),
        OutputKind::Text => Ok(Output::Text {
            pieces: format::parse(args.format.as_deref().unwrap_or("%v\\n"))?,
            raw: args.raw,
        }),
    }
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

    /// The consumer's statistics (positions, high watermarks, lag, fetches).
    fn stats(&self) -> kafkawire::ConsumerStats {
        match self {
            Source::Assigned(c) => c.stats(),
            Source::Group(g) => g.stats(),
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
    let output = output(args)?;
    let isolation = IsolationLevel::from(args.isolation_level);
    let mut source = match &args.group {
        Some(group) => {
            let mut config = GroupConfig::new(group);
            // A command-line member should be evicted soon after it is killed, and join fast
            // (some brokers hold a join for half the session timeout).
            config.session_timeout = Duration::from_secs(10);
            config.heartbeat_interval = Duration::from_secs(1);
            config.fetch.isolation_level = isolation;
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
            let start = parse_start(&args.offset)?;
            let config = ConsumerConfig {
                isolation_level: isolation,
                ..ConsumerConfig::default()
            };
            let mut consumer = PartitionConsumer::new(client, config);
            // -N starts every partition at its log start, then moves it to the last N offsets.
            let first = match start {
                Start::At(at) => at,
                Start::Last(_) => StartOffset::Earliest,
            };
            let partitions = match args.partition {
                Some(p) => {
                    consumer.assign(&args.topic, p, first).await?;
                    vec![p]
                }
                None => consumer.assign_topic(&args.topic, first).await?,
            };
            if let Start::Last(n) = start {
                let admin = Admin::new(client);
                for p in partitions {
                    let log_start = consumer.position(&args.topic, p).unwrap_or(0);
                    let end = admin.high_watermark(&args.topic, p).await?;
                    let from = end
                        .saturating_sub(i64::try_from(n).unwrap_or(i64::MAX))
                        .max(log_start);
                    consumer
                        .seek(&args.topic, p, StartOffset::Offset(from))
                        .await?;
                }
            }
            Source::Assigned(Box::new(consumer))
        }
    };
    // The end (high watermark, or last stable offset with read_committed) each partition had
    // when first seen.
    let mut end_at_start: BTreeMap<i32, i64> = BTreeMap::new();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, stdout.lock());
    let started = Instant::now();
    let mut last_commit = Instant::now();
    let (mut count, mut bytes) = (0u64, 0u64);
    let limit = args.max_messages.unwrap_or(u64::MAX);
    let mut failure = None;
    // --stats-interval-ms: the client's and this consumer's statistics, checked after each
    // poll (a poll returns within fetch_max_wait even when nothing is new).
    let mut ticker = crate::logging::StatsTicker::start();
    let stats_line =
        |source: &Source| crate::logging::stats_line(&client.stats(), None, Some(&source.stats()));
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
            // read_committed reads up to the last stable offset, not the high watermark.
            let end = match isolation {
                IsolationLevel::ReadCommitted if part.last_stable_offset >= 0 => {
                    part.last_stable_offset
                }
                _ => part.high_watermark,
            };
            end_at_start.entry(part.partition).or_insert(end);
            let origin = |timestamp_type| Origin {
                topic: &part.topic,
                partition: part.partition,
                timestamp_type,
            };
            for record in part.records_with_batch() {
                let (batch, record) = match record {
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
                if let Err(e) = output.write(&mut out, origin(batch.timestamp_type()), &record) {
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
        if ticker.as_mut().is_some_and(|t| t.due()) {
            out.flush().ok();
            eprintln!("{}", stats_line(&source));
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
    if ticker.is_some() {
        eprintln!("{}", stats_line(&source));
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser, Debug)]
    struct Cli {
        #[command(flatten)]
        args: ConsumeArgs,
    }

    fn args(argv: &[&str]) -> ConsumeArgs {
        let mut all = vec!["consume", "--topic", "t"];
        all.extend_from_slice(argv);
        Cli::try_parse_from(all)
            .unwrap_or_else(|e| panic!("{argv:?}: {e}"))
            .args
    }

    #[test]
    fn offsets_parse_in_every_form() {
        assert_eq!(
            parse_start("earliest").unwrap(),
            Start::At(StartOffset::Earliest)
        );
        assert_eq!(parse_start("end").unwrap(), Start::At(StartOffset::Latest));
        assert_eq!(
            parse_start("17").unwrap(),
            Start::At(StartOffset::Offset(17))
        );
        assert_eq!(parse_start("-17").unwrap(), Start::Last(17));
        assert_eq!(parse_start("-0").unwrap(), Start::Last(0));
        assert_eq!(
            parse_start("@1700000000000").unwrap(),
            Start::At(StartOffset::Timestamp(1_700_000_000_000))
        );
        for (bad, why) in [
            ("-", "-N takes a whole number"),
            ("--3", "-N takes a whole number"),
            ("-1.5", "-N takes a whole number"),
            ("@", "--offset: a start timestamp"),
            ("@-1", "--offset: a start timestamp"),
            ("soon", "-N (the last N records)"),
            ("", "-N (the last N records)"),
        ] {
            let e = parse_start(bad).expect_err(bad).to_string();
            assert!(e.contains(why), "{bad:?}: {e}");
            assert!(e.contains(&format!("{bad:?}")), "{bad:?} is quoted: {e}");
        }
    }

    #[test]
    fn flags_parse_with_their_defaults() {
        let a = args(&[]);
        assert_eq!(a.isolation_level, Isolation::ReadUncommitted);
        assert_eq!(
            IsolationLevel::from(a.isolation_level),
            kafkawire::ConsumerConfig::default().isolation_level,
            "the default is the consumer's"
        );
        assert_eq!(a.output, OutputKind::Text);
        assert_eq!(
            output(&a).unwrap(),
            Output::Text {
                pieces: format::parse("%v\\n").unwrap(),
                raw: false
            }
        );
        // A negative number is a value of --offset, not a flag.
        assert_eq!(args(&["--offset", "-5"]).offset, "-5");
        let a = args(&["--isolation-level", "read_committed", "--output", "json"]);
        assert_eq!(
            IsolationLevel::from(a.isolation_level),
            IsolationLevel::ReadCommitted
        );
        assert_eq!(output(&a).unwrap(), Output::Json);
        assert!(output(&args(&["--output", "json", "--raw"])).is_err());
        assert!(output(&args(&["--output", "json", "--format", "%v"])).is_err());
        assert!(output(&args(&["--format", "%q"])).is_err());
        let a = args(&["--raw", "--format", "%k"]);
        assert_eq!(
            output(&a).unwrap(),
            Output::Text {
                pieces: vec![format::Piece::Key],
                raw: true
            }
        );
        assert!(
            Cli::try_parse_from(["consume", "--topic", "t", "--isolation-level", "x"]).is_err()
        );
    }
}
