//! `kafkawire metadata`, `topics`, `configs`, `records`, `cluster` and `offsets`.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Duration;

use clap::{Args, Subcommand};
use kafkawire::client::{AlterConfigOp, ConfigResource, NewPartitions, offset_spec};
use kafkawire::{Admin, Client, Error, NewTopic};

#[derive(Subcommand, Debug)]
pub(crate) enum TopicsCommand {
    /// List topic names with their partition counts.
    List,
    /// Create a topic.
    Create {
        /// Topic name.
        name: String,
        /// Number of partitions (-1: the broker's default).
        #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
        partitions: i32,
        /// Replication factor (-1: the broker's default).
        #[arg(long, default_value_t = -1, allow_negative_numbers = true)]
        replication_factor: i16,
        /// A topic config, KEY=VALUE (repeatable), e.g. retention.ms=60000.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// Delete a topic.
    Delete {
        /// Topic name.
        name: String,
    },
    /// Show a topic's partitions, leaders, replicas and in-sync replicas.
    Describe {
        /// Topic name.
        name: String,
    },
    /// Grow a topic to --count partitions in all (CreatePartitions, KIP-195). Keyed records may
    /// map to other partitions afterwards.
    AddPartitions {
        /// Topic name.
        name: String,
        /// The partition count wanted, in all (above the current count).
        #[arg(long, value_name = "N")]
        count: i32,
    },
}

/// Which configuration `kafkawire configs` shows or changes.
#[derive(Args, Debug)]
#[command(group(clap::ArgGroup::new("resource").required(true).args(["topic", "broker", "broker_default"])))]
pub(crate) struct ResourceArgs {
    /// A topic's configuration.
    #[arg(long, value_name = "TOPIC")]
    topic: Option<String>,
    /// A broker's configuration (asked of that broker).
    #[arg(long, value_name = "ID")]
    broker: Option<i32>,
    /// The cluster-wide default of every broker.
    #[arg(long)]
    broker_default: bool,
}

impl ResourceArgs {
    fn resource(&self) -> ConfigResource {
        match (&self.topic, self.broker) {
            (Some(t), _) => ConfigResource::topic(t.clone()),
            (None, Some(id)) => ConfigResource::broker(id),
            (None, None) => ConfigResource::broker_default(),
        }
    }
}

#[derive(Subcommand, Debug)]
pub(crate) enum ConfigsCommand {
    /// Show every config of a topic or broker: KEY=VALUE, its source and flags, one per line
    /// (DescribeConfigs).
    Describe(ResourceArgs),
    /// Change configs key by key, leaving the others as they are (IncrementalAlterConfigs,
    /// KIP-339).
    #[command(group(clap::ArgGroup::new("ops").required(true).multiple(true).args(["set", "delete", "append", "subtract"])))]
    Alter {
        #[command(flatten)]
        resource: ResourceArgs,
        /// Set KEY to VALUE (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove the setting of KEY: back to the broker's or the built-in default
        /// (repeatable).
        #[arg(long, value_name = "KEY")]
        delete: Vec<String>,
        /// Add VALUE to the list config KEY, e.g. cleanup.policy=compact (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        append: Vec<String>,
        /// Remove VALUE from the list config KEY (repeatable).
        #[arg(long, value_name = "KEY=VALUE")]
        subtract: Vec<String>,
        /// Have the broker check the changes without applying them.
        #[arg(long)]
        validate_only: bool,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum RecordsCommand {
    /// Delete the records below an offset (DeleteRecords, KIP-107): the log start offset moves
    /// up to it. Prints TOPIC, PARTITION and the new log start offset per partition.
    Delete {
        /// Topic.
        #[arg(long)]
        topic: String,
        /// Partition (repeatable; default: every partition of the topic).
        #[arg(long, value_name = "P")]
        partition: Vec<i32>,
        /// Delete the records below this offset; -1 deletes every record (up to the high
        /// watermark).
        #[arg(long, value_name = "OFFSET", allow_negative_numbers = true)]
        before: i64,
    },
}

#[derive(Subcommand, Debug)]
pub(crate) enum ClusterCommand {
    /// Show the cluster id, the controller and the brokers (DescribeCluster, KIP-700, or
    /// Metadata on brokers without it).
    Describe,
}

#[derive(Args, Debug)]
pub(crate) struct OffsetsArgs {
    /// Topic.
    #[arg(long)]
    topic: String,
    /// Partition (repeatable; default: every partition of the topic).
    #[arg(long, value_name = "P")]
    partition: Vec<i32>,
    /// MS since the Unix epoch (the first record at or after it), an RFC 3339 time (e.g.
    /// 2026-11-23T10:00:00Z), latest (-1: the high watermark) or earliest (-2: the log start
    /// offset).
    #[arg(
        long,
        value_name = "MS|RFC3339|latest|earliest",
        default_value = "latest",
        allow_hyphen_values = true
    )]
    timestamp: String,
}

pub(crate) fn out(text: &str) -> Result<(), Error> {
    let mut o = std::io::stdout().lock();
    match o.write_all(text.as_bytes()).and_then(|_| o.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Error::Config(format!(
            "cannot write to standard output: {e}"
        ))),
    }
}

pub(crate) async fn metadata(client: &Client, topic: Option<&str>) -> Result<(), Error> {
    let meta = match topic {
        Some(t) => {
            client.topic_metadata(t).await?;
            client.metadata()
        }
        None => client.refresh_all_metadata().await?,
    };
    let mut s = String::new();
    s.push_str(&format!(
        "cluster {} controller {}\n",
        meta.cluster_id.as_deref().unwrap_or("-"),
        meta.controller_id
    ));
    for b in meta.brokers.values() {
        s.push_str(&format!(
            "broker {} {}{}\n",
            b.node_id,
            b.address(),
            b.rack
                .as_ref()
                .map(|r| format!(" rack {r}"))
                .unwrap_or_default()
        ));
    }
    for t in meta
        .topics
        .values()
        .filter(|t| topic.is_none_or(|n| n == t.name))
    {
        s.push_str(&format!(
            "topic {} partitions {}{}{}\n",
            t.name,
            t.partitions.len(),
            if t.is_internal { " internal" } else { "" },
            if t.error.is_ok() {
                String::new()
            } else {
                format!(" error {}", t.error)
            }
        ));
        for p in &t.partitions {
            s.push_str(&format!(
                "  partition {} leader {} epoch {} replicas {:?} isr {:?}\n",
                p.partition, p.leader, p.leader_epoch, p.replicas, p.isr
            ));
        }
    }
    out(&s)
}

pub(crate) async fn topics(client: &Client, cmd: &TopicsCommand) -> Result<(), Error> {
    let admin = Admin::new(client);
    match cmd {
        TopicsCommand::List => {
            let topics = admin.list_topics().await?;
            let s: String = topics
                .iter()
                .map(|t| format!("{}\t{}\n", t.name, t.partitions.len()))
                .collect();
            out(&s)
        }
        TopicsCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => {
            let mut topic = NewTopic::new(name, *partitions);
            topic.replication_factor = *replication_factor;
            for c in configs {
                let (k, v) = c
                    .split_once('=')
                    .ok_or_else(|| Error::Config(format!("--config {c:?} must be KEY=VALUE")))?;
                topic.configs.push((k.to_owned(), v.to_owned()));
            }
            admin
                .create_topics(&[topic], Duration::from_secs(30))
                .await?;
            eprintln!("created topic {name}");
            Ok(())
        }
        TopicsCommand::Delete { name } => {
            admin
                .delete_topics(&[name], Duration::from_secs(30))
                .await?;
            eprintln!("deleted topic {name}");
            Ok(())
        }
        TopicsCommand::AddPartitions { name, count } => {
            admin
                .create_partitions(
                    &[NewPartitions::increase_to(name.clone(), *count)],
                    Duration::from_secs(30),
                )
                .await?;
            eprintln!("topic {name} now has {count} partitions");
            Ok(())
        }
        TopicsCommand::Describe { name } => {
            let t = admin.describe_topic(name).await?;
            let mut s = format!(
                "topic {} id {} partitions {}\n",
                t.name,
                t.topic_id,
                t.partitions.len()
            );
            for p in &t.partitions {
                s.push_str(&format!(
                    "  partition {} leader {} epoch {} replicas {:?} isr {:?}{}\n",
                    p.partition,
                    p.leader,
                    p.leader_epoch,
                    p.replicas,
                    p.isr,
                    if p.error.is_ok() {
                        String::new()
                    } else {
                        format!(" error {}", p.error)
                    }
                ));
            }
            out(&s)
        }
    }
}

/// `KEY=VALUE` of `flag`, split at the first `=`.
fn key_value<'a>(flag: &str, spec: &'a str) -> Result<(&'a str, &'a str), Error> {
    match spec.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k, v)),
        _ => Err(Error::Config(format!("{flag} {spec:?} must be KEY=VALUE"))),
    }
}

pub(crate) async fn configs(client: &Client, cmd: &ConfigsCommand) -> Result<(), Error> {
    let admin = Admin::new(client);
    match cmd {
        ConfigsCommand::Describe(which) => {
            let resource = which.resource();
            let described = admin.describe_configs(&[resource]).await?;
            let mut s = String::new();
            for (_, entries) in &described {
                for e in entries {
                    let value = match (&e.value, e.sensitive) {
                        (_, true) => "(sensitive)",
                        (Some(v), false) => v.as_str(),
                        (None, false) => "(null)",
                    };
                    s.push_str(&format!(
                        "{}={value}\t{}{}\n",
                        e.name,
                        e.source.name(),
                        if e.read_only { "\tread-only" } else { "" }
                    ));
                }
            }
            out(&s)
        }
        ConfigsCommand::Alter {
            resource,
            set,
            delete,
            append,
            subtract,
            validate_only,
        } => {
            let resource = resource.resource();
            let mut ops = Vec::new();
            for spec in set {
                let (k, v) = key_value("--set", spec)?;
                ops.push(AlterConfigOp::set(k, v));
            }
            for k in delete {
                ops.push(AlterConfigOp::delete(k.as_str()));
            }
            for spec in append {
                let (k, v) = key_value("--append", spec)?;
                ops.push(AlterConfigOp::append(k, v));
            }
            for spec in subtract {
                let (k, v) = key_value("--subtract", spec)?;
                ops.push(AlterConfigOp::subtract(k, v));
            }
            let n = ops.len();
            admin
                .incremental_alter_configs(&[(resource.clone(), ops)], *validate_only)
                .await?;
            if *validate_only {
                eprintln!(
                    "{resource}: {n} config change(s) are valid; nothing was changed (--validate-only)"
                );
            } else {
                eprintln!("{resource}: {n} config change(s) applied");
            }
            Ok(())
        }
    }
}

/// The partitions named, or every partition of `topic`.
async fn partitions_of(
    client: &Client,
    topic: &str,
    named: &[i32],
) -> Result<Vec<(String, i32)>, Error> {
    if !named.is_empty() {
        return Ok(named.iter().map(|p| (topic.to_owned(), *p)).collect());
    }
    let t = client.topic_metadata(topic).await?;
    Ok(t.partitions
        .iter()
        .map(|p| (topic.to_owned(), p.partition))
        .collect())
}

pub(crate) async fn records(client: &Client, cmd: &RecordsCommand) -> Result<(), Error> {
    let admin = Admin::new(client);
    match cmd {
        RecordsCommand::Delete {
            topic,
            partition,
            before,
        } => {
            if *before < -1 {
                return Err(Error::Config(format!(
                    "--before takes an offset >= 0, or -1 for every record, not {before}"
                )));
            }
            let wanted: BTreeMap<(String, i32), i64> = partitions_of(client, topic, partition)
                .await?
                .into_iter()
                .map(|k| (k, *before))
                .collect();
            let starts = admin
                .delete_records(&wanted, Duration::from_secs(30))
                .await?;
            let s: String = starts
                .iter()
                .map(|((t, p), start)| format!("{t}\t{p}\t{start}\n"))
                .collect();
            out(&s)?;
            eprintln!(
                "deleted the records below {} in {} partition(s) of {topic}",
                if *before == -1 {
                    "the high watermark".to_owned()
                } else {
                    format!("offset {before}")
                },
                starts.len()
            );
            Ok(())
        }
    }
}

pub(crate) async fn cluster(client: &Client, cmd: &ClusterCommand) -> Result<(), Error> {
    match cmd {
        ClusterCommand::Describe => {
            let c = Admin::new(client).describe_cluster().await?;
            let mut s = format!(
                "cluster {} controller {}\n",
                c.cluster_id.as_deref().unwrap_or("-"),
                c.controller_id
            );
            for b in &c.brokers {
                s.push_str(&format!(
                    "broker {} {}{}\n",
                    b.node_id,
                    b.address(),
                    b.rack
                        .as_ref()
                        .map(|r| format!(" rack {r}"))
                        .unwrap_or_default()
                ));
            }
            out(&s)
        }
    }
}

/// `--timestamp` of `kafkawire offsets`: ms, -1/-2, latest/earliest, or an RFC 3339 time.
fn parse_timestamp(t: &str) -> Result<i64, Error> {
    match t {
        "latest" | "end" => return Ok(offset_spec::LATEST),
        "earliest" | "beginning" => return Ok(offset_spec::EARLIEST),
        _ => {}
    }
    if let Ok(ms) = t.parse::<i64>() {
        return if ms >= -2 {
            Ok(ms)
        } else {
            Err(Error::Config(format!(
                "--timestamp takes ms >= 0, -1 (latest) or -2 (earliest), not {ms}"
            )))
        };
    }
    let at = humantime::parse_rfc3339_weak(t).map_err(|e| {
        Error::Config(format!(
            "--timestamp {t:?} is neither milliseconds, latest, earliest nor an RFC 3339 time: {e}"
        ))
    })?;
    let ms = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_err(|_| Error::Config(format!("--timestamp {t:?} is before 1970")))?
        .as_millis();
    Ok(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// `kafkawire offsets`: TOPIC, PARTITION, OFFSET and the record's TIMESTAMP per partition (-1
/// where there is none).
pub(crate) async fn offsets(client: &Client, args: &OffsetsArgs) -> Result<(), Error> {
    let timestamp = parse_timestamp(&args.timestamp)?;
    let partitions = partitions_of(client, &args.topic, &args.partition).await?;
    let listed = Admin::new(client)
        .list_offsets(&partitions, timestamp)
        .await?;
    let s: String = listed
        .iter()
        .map(|((t, p), o)| format!("{t}\t{p}\t{}\t{}\n", o.offset, o.timestamp))
        .collect();
    out(&s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_take_milliseconds_names_and_rfc3339() {
        assert_eq!(parse_timestamp("latest").unwrap(), -1);
        assert_eq!(parse_timestamp("earliest").unwrap(), -2);
        assert_eq!(parse_timestamp("-1").unwrap(), -1);
        assert_eq!(parse_timestamp("1700000000000").unwrap(), 1_700_000_000_000);
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z").unwrap(),
            1_700_000_000_000
        );
        assert!(parse_timestamp("-3").is_err());
        assert!(parse_timestamp("yesterday").is_err());
    }

    #[test]
    fn key_values_split_at_the_first_equals_sign() {
        assert_eq!(key_value("--set", "a=b=c").unwrap(), ("a", "b=c"));
        assert_eq!(key_value("--set", "a=").unwrap(), ("a", ""));
        assert!(key_value("--set", "=b").is_err());
        assert!(key_value("--set", "ab").is_err());
    }
}
