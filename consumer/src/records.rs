//! [`Records`]: what one [`Consumer::poll`](crate::Consumer::poll) returns, and
//! [`ConsumerRecord`], one record of it, borrowed from the fetch response's buffer.

use bytes::Bytes;
use kafkawire_client::Error;
use kafkawire_protocol::records::{Batch, Headers, Record, TimestampType};

use crate::{Fetched, FetchedPartition};

/// The records of one poll, partition by partition, in offset order within each partition.
/// Iterating (`for record in &records`) yields [`ConsumerRecord`]s that borrow from the
/// fetched buffers: nothing is copied until the application asks for owned [`Bytes`].
#[derive(Debug, Default)]
pub struct Records {
    fetched: Fetched,
}

/// A partition whose position was out of range and was moved by the `auto_offset_reset`
/// policy: reported, never silent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResetReport {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// The position that was out of range (the committed or fetched offset).
    pub old_offset: i64,
    /// The position the policy chose.
    pub new_offset: i64,
}

impl ResetReport {
    /// How many offsets were skipped going forward (0 when the reset went backwards, which
    /// re-reads `old_offset - new_offset` offsets instead). Saturates at `i64::MAX` (offsets
    /// come from the broker; any pair is accepted).
    pub fn skipped(&self) -> i64 {
        self.new_offset.saturating_sub(self.old_offset).max(0)
    }
}

impl Records {
    /// The records of `fetched`.
    pub fn new(fetched: Fetched) -> Records {
        Records { fetched }
    }

    /// Every record, in order within each partition. A record that does not decode is an
    /// [`Error::CorruptRecord`] naming its partition.
    pub fn iter(&self) -> impl Iterator<Item = Result<ConsumerRecord<'_>, Error>> + '_ {
        self.fetched.partitions.iter().flat_map(|p| {
            p.records_with_batch().map(move |r| {
                r.map(|(batch, record)| ConsumerRecord {
                    topic: &p.topic,
                    partition: p.partition,
                    batch,
                    record,
                })
            })
        })
    }

    /// Whether the poll brought no record (it may still carry [`Records::resets`]).
    pub fn is_empty(&self) -> bool {
        self.fetched
            .partitions
            .iter()
            .all(|p| p.records().next().is_none())
    }

    /// Number of records (walks the record headers; iterate once instead when you can).
    pub fn count(&self) -> usize {
        self.fetched
            .partitions
            .iter()
            .map(|p| p.records().count())
            .sum()
    }

    /// The partitions of this poll with their high watermarks and batches.
    pub fn partitions(&self) -> &[FetchedPartition] {
        &self.fetched.partitions
    }

    /// The out-of-range resets this poll reports.
    pub fn resets(&self) -> Vec<ResetReport> {
        self.fetched
            .partitions
            .iter()
            .filter_map(|p| {
                p.reset.map(|(old_offset, new_offset)| ResetReport {
                    topic: p.topic.clone(),
                    partition: p.partition,
                    old_offset,
                    new_offset,
                })
            })
            .collect()
    }

    /// The underlying [`Fetched`].
    pub fn into_fetched(self) -> Fetched {
        self.fetched
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = Result<ConsumerRecord<'a>, Error>;
    type IntoIter = Box<dyn Iterator<Item = Self::Item> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        Box::new(self.iter())
    }
}

/// One consumed record, borrowed from its batch.
#[derive(Debug, Clone)]
pub struct ConsumerRecord<'a> {
    topic: &'a str,
    partition: i32,
    batch: &'a Batch,
    record: Record<'a>,
}

impl<'a> ConsumerRecord<'a> {
    /// Topic.
    pub fn topic(&self) -> &'a str {
        self.topic
    }

    /// Partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }

    /// Offset.
    pub fn offset(&self) -> i64 {
        self.record.offset()
    }

    /// Key, `None` when null.
    pub fn key(&self) -> Option<&'a [u8]> {
        self.record.key()
    }

    /// Value, `None` when null (a tombstone on compacted topics).
    pub fn value(&self) -> Option<&'a [u8]> {
        self.record.value()
    }

    /// The key as shared [`Bytes`] without copying (magic-2 batches).
    pub fn key_bytes(&self) -> Option<Bytes> {
        self.key().map(|k| self.batch.slice_ref(k))
    }

    /// The value as shared [`Bytes`] without copying (magic-2 batches).
    pub fn value_bytes(&self) -> Option<Bytes> {
        self.value().map(|v| self.batch.slice_ref(v))
    }

    /// Headers, in order.
    pub fn headers(&self) -> Headers<'a> {
        self.record.headers()
    }

    /// Timestamp in ms since the Unix epoch: the producer's create time or the broker's
    /// append time, see [`ConsumerRecord::timestamp_type`].
    pub fn timestamp(&self) -> i64 {
        self.record.timestamp()
    }

    /// Whether [`ConsumerRecord::timestamp`] is create or log-append time.
    pub fn timestamp_type(&self) -> TimestampType {
        self.batch.timestamp_type()
    }

    /// The leader epoch stamped on the record's batch (-1 if unknown, e.g. legacy messages):
    /// commit it with the offset so a later fetch can detect log truncation (KIP-320).
    pub fn leader_epoch(&self) -> i32 {
        self.batch.partition_leader_epoch()
    }

    /// The protocol-level record view.
    pub fn record(&self) -> &Record<'a> {
        &self.record
    }
}
