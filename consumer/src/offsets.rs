//! [`OffsetManager`]: committed offsets for consumption without group membership, so a
//! standalone (assigned) consumer resumes where it left off.

use std::collections::BTreeMap;

use kafkawire_client::{Admin, Client, GroupMembership, OffsetToCommit, Result};

/// Tracks the next offset to read per partition for a group id, and commits it
/// (OffsetCommit with generation -1, as standalone consumers do; KIP-211 keeps such offsets
/// while the group is empty). Mark a record's offset once it is processed; commit when you
/// want; [`OffsetManager::close`] commits what is left.
///
/// ```no_run
/// # async fn demo(client: &kafkawire_client::Client) -> Result<(), kafkawire_client::Error> {
/// use kafkawire_consumer::{ConsumerConfig, OffsetManager, PartitionConsumer, StartOffset};
/// let mut offsets = OffsetManager::new(client, "billing");
/// let start = offsets.next_offset("orders", 0).await?.map_or(StartOffset::Earliest, StartOffset::Offset);
/// let mut consumer = PartitionConsumer::new(client, ConsumerConfig::default());
/// consumer.assign("orders", 0, start).await?;
/// let fetched = consumer.poll().await?;
/// for part in &fetched.partitions {
///     for record in part.records() {
///         let record = record?;
///         // ... process ...
///         offsets.mark_processed(&part.topic, part.partition, record.offset());
///     }
/// }
/// offsets.close().await?; // commits
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct OffsetManager {
    admin: Admin,
    group: String,
    membership: GroupMembership,
    /// Next offset to read, as marked, not yet committed.
    marked: BTreeMap<(String, i32), (i64, Option<String>)>,
    /// What the group has committed, as far as this manager knows.
    committed: BTreeMap<(String, i32), i64>,
}

impl OffsetManager {
    /// An offset manager for `group` (the group id under which offsets are stored).
    pub fn new(client: &Client, group: &str) -> OffsetManager {
        OffsetManager {
            admin: Admin::new(client),
            group: group.to_owned(),
            membership: GroupMembership::none(),
            marked: BTreeMap::new(),
            committed: BTreeMap::new(),
        }
    }

    /// The group id.
    pub fn group(&self) -> &str {
        &self.group
    }

    /// The next offset to read for a partition: the last marked one, else the committed one
    /// (asked of the coordinator the first time), else `None` (start by your reset policy).
    ///
    /// # Errors
    /// OffsetFetch errors.
    pub async fn next_offset(&mut self, topic: &str, partition: i32) -> Result<Option<i64>> {
        let key = (topic.to_owned(), partition);
        if let Some((o, _)) = self.marked.get(&key) {
            return Ok(Some(*o));
        }
        if let Some(o) = self.committed.get(&key) {
            return Ok(Some(*o));
        }
        let fetched = self
            .admin
            .committed_offsets(&self.group, Some(std::slice::from_ref(&key)))
            .await?;
        self.committed.extend(fetched);
        Ok(self.committed.get(&key).copied())
    }

    /// Marks `next_offset` as the next offset to read for the partition (the last processed
    /// record's offset + 1). Marking backwards is allowed (to re-read).
    pub fn mark(
        &mut self,
        topic: &str,
        partition: i32,
        next_offset: i64,
        metadata: Option<String>,
    ) {
        self.marked
            .insert((topic.to_owned(), partition), (next_offset, metadata));
    }

    /// Marks the record at `offset` as processed: the next offset to read is `offset + 1`
    /// (saturating: `i64::MAX` marks `i64::MAX`; the consumer never returns a record there, as
    /// no offset could follow it).
    pub fn mark_processed(&mut self, topic: &str, partition: i32, offset: i64) {
        self.mark(topic, partition, offset.saturating_add(1), None);
    }

    /// Offsets marked and not yet committed.
    pub fn pending(&self) -> usize {
        self.marked.len()
    }

    /// Commits every marked offset. On failure the marks are kept, so a later commit retries.
    ///
    /// # Errors
    /// OffsetCommit errors, naming the partition.
    pub async fn commit(&mut self) -> Result<()> {
        let offsets: Vec<OffsetToCommit> = self
            .marked
            .iter()
            .map(|((t, p), (o, m))| OffsetToCommit {
                topic: t.clone(),
                partition: *p,
                offset: *o,
                leader_epoch: -1,
                metadata: m.clone(),
            })
            .collect();
        self.admin
            .commit_offsets(&self.group, &self.membership, &offsets)
            .await?;
        for o in offsets {
            self.committed.insert((o.topic, o.partition), o.offset);
        }
        self.marked.clear();
        Ok(())
    }

    /// Commits what is marked, then drops the manager.
    ///
    /// # Errors
    /// As [`OffsetManager::commit`].
    pub async fn close(mut self) -> Result<()> {
        self.commit().await
    }
}
