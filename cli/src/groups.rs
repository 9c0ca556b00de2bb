//! `kafkawire groups`: list, describe (members, committed offsets, lag) and delete groups.

use std::collections::BTreeMap;

use clap::Subcommand;
use kafkawire::protocol::Reader;
use kafkawire::protocol::messages::Decodable;
use kafkawire::protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafkawire::{Admin, Client, Error};

use crate::admin::out;

#[derive(Subcommand, Debug)]
pub(crate) enum GroupsCommand {
    /// List groups with their protocol type and state.
    List,
    /// Show a group's members and, per partition, committed offset, end offset and lag.
    Describe {
        /// Group id.
        group: String,
    },
    /// Delete a group (it must have no active members).
    Delete {
        /// Group id.
        group: String,
    },
}

/// The partitions of a consumer-protocol assignment (int16 version, then the fields of that
/// version; newer versions only append fields, so they are read as the newest known one).
fn assigned_partitions(bytes: &bytes::Bytes) -> Vec<(String, i32)> {
    let mut r = Reader::new(bytes.clone());
    let Ok(version) = r.i16("assignment version") else {
        return Vec::new();
    };
    ConsumerProtocolAssignment::decode(&mut r, version.clamp(0, 3))
        .map(|a| {
            a.assigned_partitions
                .into_iter()
                .flat_map(|t| t.partitions.into_iter().map(move |p| (t.topic.clone(), p)))
                .collect()
        })
        .unwrap_or_default()
}

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
            let mut owner: BTreeMap<(String, i32), String> = BTreeMap::new();
            for m in &d.members {
                let parts = assigned_partitions(&m.assignment);
                s.push_str(&format!(
                    "  member {} client {} host {}{} partitions {}\n",
                    m.member_id,
                    m.client_id,
                    m.client_host,
                    m.group_instance_id
                        .as_ref()
                        .map(|i| format!(" instance {i}"))
                        .unwrap_or_default(),
                    parts.len()
                ));
                for p in parts {
                    owner.insert(p, m.member_id.clone());
                }
            }
            let committed = admin.committed_offsets(group, None).await?;
            s.push_str("  topic\tpartition\tcommitted\tend\tlag\tmember\n");
            for ((topic, partition), offset) in &committed {
                let end = admin.high_watermark(topic, *partition).await?;
                s.push_str(&format!(
                    "  {topic}\t{partition}\t{offset}\t{end}\t{}\t{}\n",
                    (end - offset).max(0),
                    owner
                        .get(&(topic.clone(), *partition))
                        .map_or("-", String::as_str)
                ));
            }
            out(&s)
        }
        GroupsCommand::Delete { group } => {
            admin.delete_groups(&[group]).await?;
            eprintln!("deleted group {group}");
            Ok(())
        }
    }
}
