//! `kafkawire groups`: list, describe (members, committed offsets, lag) and delete groups,
//! reset or delete their committed offsets, and show their lag.

use clap::Subcommand;
use kafkawire::protocol::ErrorCode;
use kafkawire::{Admin, Client, Error, GroupDescription, PartitionLag};

use crate::admin::out;

#[derive(Subcommand, Debug)]
pub(crate) enum GroupsCommand {
    /// List groups with their protocol type and state.
    List,
    /// Show a group's members and, per partition committed or assigned, committed offset, end
    /// offset, lag and member.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete a group (it must have no active members).
    Delete {
        /// Group id.
        group: String,
    },
    /// Move a group's committed offsets (KIP-122). Prints old -> new per partition; changes
    /// nothing unless --execute is given. Refuses while the group has active members.
    ResetOffsets(ResetArgs),
    /// Delete a group's committed offsets for a topic (OffsetDelete, KIP-496). The group must
    /// not be consuming the topic (its members must not be subscribed to it).
    DeleteOffsets {
        /// Group id.
        group: String,
        /// Topic whose committed offsets to delete.
        #[arg(long)]
        topic: String,
        /// Partition (repeatable; default: every partition of the topic).
        #[arg(long, value_name = "P")]
        partition: Vec<i32>,
    },
    /// Show, per group and partition it has committed or its members are assigned: the
    /// committed offset, the end offset (high watermark), the lag between them in records, and
    /// the member assigned the partition (id, host, client id); `-` where there is none. All
    /// groups, or GROUP.
    Lag {
        /// Only this group.
        group: Option<String>,
    },
}

#[derive(clap::Args, Debug)]
#[command(group(clap::ArgGroup::new("to").required(true).args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])))]
pub(crate) struct ResetArgs {
    /// Group id.
    group: String,
    /// Topic whose partitions to reset (all its partitions).
    #[arg(long)]
    topic: String,
    /// To the log start offset.
    #[arg(long)]
    to_earliest: bool,
    /// To the high watermark (skip everything not yet read).
    #[arg(long)]
    to_latest: bool,
    /// To this offset (clamped to the partition's range).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    to_offset: Option<i64>,
    /// By N from the committed offset, negative to go back (clamped).
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    shift_by: Option<i64>,
    /// To the first offset whose timestamp is at or after this time (RFC 3339, e.g.
    /// 2026-11-23T10:00:00Z).
    #[arg(long, value_name = "RFC3339")]
    to_datetime: Option<String>,
    /// Commit the new offsets (without it, only print them).
    #[arg(long)]
    execute: bool,
}

/// A partition's lag as tab-separated columns: topic, partition, committed offset, end offset,
/// lag, then the member assigned it (member id, host, client id); `-` for what is unknown.
fn lag_columns(p: &PartitionLag) -> String {
    let dash = |v: Option<i64>| v.map_or("-".to_string(), |v| v.to_string());
    let (member, host, client) = p.member.as_ref().map_or(("-", "-", "-"), |m| {
        (
            m.member_id.as_str(),
            m.client_host.as_str(),
            m.client_id.as_str(),
        )
    });
    format!(
        "{}\t{}\t{}\t{}\t{}\t{member}\t{host}\t{client}",
        p.topic,
        p.partition,
        dash(p.committed),
        dash(p.end_offset),
        dash(p.lag)
    )
}

/// The header of [`lag_columns`].
const LAG_HEADER: &str = "topic\tpartition\tcommitted\tend\tlag\tmember\thost\tclient";

pub(crate) async fn run(client: &Client, cmd: &GroupsCommand) -> Result<(), Error> {
    let admin = Admin::new(client);
    match cmd {
        GroupsCommand::List => {
            let groups = admin.list_groups().await?;
            let s: String = groups
                .iter()
                .map(|g| {
                    format!(
                        "{}\t{}\t{}\n",
                        g.group_id,
                        if g.protocol_type.is_empty() {
                            "-"
                        } else {
                            &g.protocol_type
                        },
                        if g.state.is_empty() { "-" } else { &g.state }
                    )
                })
                .collect();
            out(&s)
        }
        GroupsCommand::Describe { group } => {
            let d = admin.describe_group(group).await?;
            let mut s = format!(
                "group {} state {} protocol {} members {}\n",
                d.group_id,
                if d.state.is_empty() { "-" } else { &d.state },
                if d.protocol.is_empty() {
                    "-"
                } else {
                    &d.protocol
                },
                d.members.len()
            );
            for m in &d.members {
                let partitions = match (d.protocol_type.as_str(), m.assigned_partitions()) {
                    ("consumer", Ok(p)) => p.len().to_string(),
                    _ => "?".to_owned(),
                };
                s.push_str(&format!(
                    "  member {} client {} host {}{} partitions {partitions}\n",
                    m.member_id,
                    m.client_id,
                    m.client_host,
                    m.group_instance_id
                        .as_ref()
                        .map(|i| format!(" instance {i}"))
                        .unwrap_or_default(),
                ));
            }
            s.push_str(&format!("  {LAG_HEADER}\n"));
            for p in &admin.described_group_lag(&d).await?.partitions {
                s.push_str(&format!("  {}\n", lag_columns(p)));
            }
            out(&s)
        }
        GroupsCommand::Delete { group } => {
            admin.delete_groups(&[group]).await?;
            eprintln!("deleted group {group}");
            Ok(())
        }
        GroupsCommand::ResetOffsets(args) => reset_offsets(&admin, client, args).await,
        GroupsCommand::DeleteOffsets {
            group,
            topic,
            partition,
        } => {
            let partitions: Vec<(String, i32)> = if partition.is_empty() {
                client
                    .topic_metadata(topic)
                    .await?
                    .partitions
                    .iter()
                    .map(|p| (topic.clone(), p.partition))
                    .collect()
            } else {
                partition.iter().map(|p| (topic.clone(), *p)).collect()
            };
            admin.delete_group_offsets(group, &partitions).await?;
            eprintln!(
                "deleted the committed offsets of group {group} for {} partition(s) of {topic}",
                partitions.len()
            );
            Ok(())
        }
        GroupsCommand::Lag { group } => {
            let lags = match group {
                Some(g) => vec![admin.group_lag(g).await?],
                None => admin.all_groups_lag().await?,
            };
            let mut s = format!("group\t{LAG_HEADER}\n");
            for g in &lags {
                for p in &g.partitions {
                    s.push_str(&format!("{}\t{}\n", g.group_id, lag_columns(p)));
                }
            }
            out(&s)?;
            if let Some(g) = group
                && lags.iter().all(|l| l.partitions.is_empty())
            {
                eprintln!("group {g} has no committed offsets and no member assigned partitions");
            }
            Ok(())
        }
    }
}

async fn reset_offsets(admin: &Admin, client: &Client, args: &ResetArgs) -> Result<(), Error> {
    let group = &args.group;
    let d = match admin.describe_group(group).await {
        Ok(d) => d,
        // A group the coordinator has never seen (Kafka 4.0's DescribeGroups v6 says so with
        // GROUP_ID_NOT_FOUND): no members; its offsets may be set before its first consumer.
        Err(e) if e.code() == Some(ErrorCode::GROUP_ID_NOT_FOUND) => GroupDescription {
            group_id: group.clone(),
            state: "Dead".to_owned(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        },
        Err(e) => return Err(e),
    };
    if !d.members.is_empty()
        || matches!(
            d.state.as_str(),
            "Stable" | "PreparingRebalance" | "CompletingRebalance"
        )
    {
        return Err(Error::Config(format!(
            "group {group} has active members ({} member(s), state {}): stop its consumers first, offsets can only be reset while the group is empty",
            d.members.len(),
            d.state
        )));
    }
    let timestamp = match &args.to_datetime {
        Some(t) => {
            let at = humantime::parse_rfc3339_weak(t).map_err(|e| {
                Error::Config(format!("--to-datetime {t:?} is not an RFC 3339 time: {e}"))
            })?;
            let ms = at
                .duration_since(std::time::UNIX_EPOCH)
                .map_err(|_| Error::Config(format!("--to-datetime {t:?} is before 1970")))?
                .as_millis();
            Some(ms as i64)
        }
        None => None,
    };
    let topic = client.topic_metadata(&args.topic).await?;
    let partitions: Vec<(String, i32)> = topic
        .partitions
        .iter()
        .map(|p| (args.topic.clone(), p.partition))
        .collect();
    let committed = admin.committed_offsets(group, Some(&partitions)).await?;
    let mut plan = Vec::new();
    let mut s = String::new();
    for (t, p) in &partitions {
        let earliest = admin
            .list_offset(t, *p, kafkawire::client::offset_spec::EARLIEST)
            .await?;
        let latest = admin.high_watermark(t, *p).await?;
        let old = committed.get(&(t.clone(), *p)).copied();
        let new = if args.to_earliest {
            earliest
        } else if args.to_latest {
            latest
        } else if let Some(n) = args.to_offset {
            n
        } else if let Some(by) = args.shift_by {
            old.unwrap_or(earliest).saturating_add(by)
        } else if let Some(ts) = timestamp {
            match admin.list_offset(t, *p, ts).await? {
                -1 => latest,
                o => o,
            }
        } else {
            unreachable!("clap requires one target")
        };
        let new = new.clamp(earliest, latest.max(earliest));
        s.push_str(&format!(
            "{t}\t{p}\t{} -> {new}\n",
            old.map_or("-".to_string(), |o| o.to_string())
        ));
        plan.push(kafkawire::OffsetToCommit {
            topic: t.clone(),
            partition: *p,
            offset: new,
            leader_epoch: -1,
            metadata: None,
        });
    }
    out(&s)?;
    if args.execute {
        admin
            .commit_offsets(group, &kafkawire::GroupMembership::none(), &plan)
            .await?;
        eprintln!("committed {} offsets for group {group}", plan.len());
    } else {
        eprintln!("dry run: nothing changed (add --execute to commit these offsets)");
    }
    Ok(())
}
