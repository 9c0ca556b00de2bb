//! `kafkawire metadata` and `kafkawire topics`.

use std::io::Write;
use std::time::Duration;

use clap::Subcommand;
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
