//! The consumer protocol's embedded data: the bytes a member puts in its JoinGroup protocol
//! metadata (its [`Subscription`]) and the bytes the leader hands each member through SyncGroup
//! (its [`Assignment`]).
//!
//! Both are encoded as an int16 version followed by the fields of that version, never flexible
//! (schemas `ConsumerProtocolSubscription` and `ConsumerProtocolAssignment`, versions 0-3).
//! Subscription v1 adds the owned partitions (KIP-429), v2 the generation id (KIP-792), v3 the
//! rack id (KIP-881). A version above the highest known one is read as the highest known one,
//! its trailing bytes ignored: newer versions only append fields, which is how Kafka's own
//! clients stay forward compatible.
//!
//! # Untrusted input
//! Another group member (or whoever can answer for the coordinator) writes these bytes, so
//! decoding keeps memory proportional to them. On the wire partitions are grouped by topic, each
//! name written once; [`decode_subscription_by_topic`] and [`decode_assignment_by_topic`] keep
//! that shape ([`TopicPartitions`]), reserve list space only for as many elements as the
//! remaining bytes can hold (and at most a few KiB up front), and so hold a small multiple of
//! the input. The group consumer reads everything that way.
//!
//! [`decode_subscription`] and [`decode_assignment`] return flat `(topic, partition)` lists,
//! which copy a topic's name once per partition: 64 KiB naming a 32 KiB topic with 8,000
//! partitions would take 268 MB. They therefore refuse (with a [`DecodeError`]) a value whose
//! flat lists would take more than [`FLAT_BUDGET_FACTOR`] times the input plus
//! [`FLAT_BUDGET_SLACK`] bytes.

use std::collections::HashMap;

use crate::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use crate::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTopic,
};
use crate::messages::{Encodable, Message};
use crate::{DecodeError, DecodeErrorKind, EncodeError, Reader};
use bytes::{BufMut, Bytes, BytesMut};

/// Highest subscription version this module writes and reads in full.
pub const SUBSCRIPTION_VERSION: i16 = ConsumerProtocolSubscription::MAX_VERSION;
/// Highest assignment version this module writes and reads in full.
pub const ASSIGNMENT_VERSION: i16 = ConsumerProtocolAssignment::MAX_VERSION;

/// The flat decoders ([`decode_subscription`], [`decode_assignment`], and the sticky
/// assignor's `decode_sticky_user_data` in kafkawire-consumer) refuse a value whose
/// `(topic, partition)` pairs would take more than this many times the input's size, plus
/// [`FLAT_BUDGET_SLACK`].
pub const FLAT_BUDGET_FACTOR: usize = 2;
/// See [`FLAT_BUDGET_FACTOR`]: 512 KiB, about 10,000 pairs of a 20-byte topic name.
pub const FLAT_BUDGET_SLACK: usize = 512 * 1024;

/// Elements reserved up front for a list, whatever its length prefix claims; the list grows as
/// its elements are actually decoded.
const MAX_PREALLOC: usize = 1024;

/// Partitions of one topic, the topic's name held once.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TopicPartitions {
    /// Topic name.
    pub topic: String,
    /// Partition indexes, in their given order.
    pub partitions: Vec<i32>,
}

impl TopicPartitions {
    /// `topic` with `partitions`.
    pub fn new(topic: impl Into<String>, partitions: impl IntoIterator<Item = i32>) -> Self {
        TopicPartitions {
            topic: topic.into(),
            partitions: partitions.into_iter().collect(),
        }
    }
}

/// Groups `(topic, partition)` pairs by topic, topics in order of first appearance, partitions
/// in their given order.
pub fn by_topic<'a, I>(pairs: I) -> Vec<TopicPartitions>
where
    I: IntoIterator<Item = &'a (String, i32)>,
{
    let mut out: Vec<TopicPartitions> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (topic, partition) in pairs {
        let i = *index.entry(topic.as_str()).or_insert_with(|| {
            out.push(TopicPartitions::new(topic.clone(), []));
            out.len() - 1
        });
        out[i].partitions.push(*partition);
    }
    out
}

/// Every `(topic, partition)` of `groups`, topic by topic, borrowing the names.
pub fn pairs(groups: &[TopicPartitions]) -> impl Iterator<Item = (&str, i32)> + '_ {
    groups
        .iter()
        .flat_map(|g| g.partitions.iter().map(move |p| (g.topic.as_str(), *p)))
}

/// What a member tells the group leader when it joins: the topics it wants and the partitions
/// it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// Topics the member subscribes to.
    pub topics: Vec<String>,
    /// Partitions the member owned in the previous generation, `(topic, partition)` (v1+).
    pub owned_partitions: Vec<(String, i32)>,
    /// Generation in which the member owned them; -1 when unknown (v2+).
    pub generation_id: i32,
    /// The member's rack, for rack-aware assignors (v3+).
    pub rack_id: Option<String>,
    /// Opaque data for the assignor.
    pub user_data: Option<Bytes>,
}

impl Default for Subscription {
    fn default() -> Self {
        Subscription {
            topics: Vec::new(),
            owned_partitions: Vec::new(),
            generation_id: -1,
            rack_id: None,
            user_data: None,
        }
    }
}

/// A [`Subscription`] as it is encoded, owned partitions grouped by topic: what
/// [`decode_subscription_by_topic`] returns, its size bounded by the bytes it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionByTopic {
    /// Topics the member subscribes to.
    pub topics: Vec<String>,
    /// Partitions the member owned in the previous generation (v1+).
    pub owned_partitions: Vec<TopicPartitions>,
    /// Generation in which the member owned them; -1 when unknown (v2+).
    pub generation_id: i32,
    /// The member's rack, for rack-aware assignors (v3+).
    pub rack_id: Option<String>,
    /// Opaque data for the assignor.
    pub user_data: Option<Bytes>,
}

impl Default for SubscriptionByTopic {
    fn default() -> Self {
        SubscriptionByTopic::from(&Subscription::default())
    }
}

impl From<&Subscription> for SubscriptionByTopic {
    fn from(s: &Subscription) -> Self {
        SubscriptionByTopic {
            topics: s.topics.clone(),
            owned_partitions: by_topic(&s.owned_partitions),
            generation_id: s.generation_id,
            rack_id: s.rack_id.clone(),
            user_data: s.user_data.clone(),
        }
    }
}

/// What the group leader gives each member: the partitions it is to consume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Assigned partitions, `(topic, partition)`.
    pub partitions: Vec<(String, i32)>,
    /// Opaque data from the assignor.
    pub user_data: Option<Bytes>,
}

/// An [`Assignment`] as it is encoded, partitions grouped by topic: what
/// [`decode_assignment_by_topic`] returns, its size bounded by the bytes it came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssignmentByTopic {
    /// Assigned partitions.
    pub partitions: Vec<TopicPartitions>,
    /// Opaque data from the assignor.
    pub user_data: Option<Bytes>,
}

impl From<&Subscription> for ConsumerProtocolSubscription {
    fn from(s: &Subscription) -> Self {
        ConsumerProtocolSubscription {
            topics: s.topics.clone(),
            user_data: s.user_data.clone(),
            owned_partitions: by_topic(&s.owned_partitions)
                .into_iter()
                .map(|g| OwnedTopic {
                    topic: g.topic,
                    partitions: g.partitions,
                    ..Default::default()
                })
                .collect(),
            generation_id: s.generation_id,
            rack_id: s.rack_id.clone(),
            ..Default::default()
        }
    }
}

impl From<AssignmentByTopic> for ConsumerProtocolAssignment {
    fn from(a: AssignmentByTopic) -> Self {
        ConsumerProtocolAssignment {
            assigned_partitions: a
                .partitions
                .into_iter()
                .map(|g| AssignedTopic {
                    topic: g.topic,
                    partitions: g.partitions,
                    ..Default::default()
                })
                .collect(),
            user_data: a.user_data,
            ..Default::default()
        }
    }
}

impl From<&Assignment> for ConsumerProtocolAssignment {
    fn from(a: &Assignment) -> Self {
        AssignmentByTopic {
            partitions: by_topic(&a.partitions),
            user_data: a.user_data.clone(),
        }
        .into()
    }
}

/// Writes the int16 version then the body of `m` in that version.
fn encode_versioned<M: Encodable>(m: &M, version: i16) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    m.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Reads a non-null array length whose elements take at least `min_elem` bytes each: a length
/// the remaining bytes cannot hold is an error before anything is reserved.
pub fn list_len(r: &mut Reader, min_elem: usize, what: &'static str) -> Result<usize, DecodeError> {
    r.length(false, true, min_elem, what)?
        .ok_or_else(|| r.error(what, DecodeErrorKind::UnexpectedNull))
}

/// Decodes `n` elements with `elem`, reserving at most 1,024 elements up front: the list
/// grows with the elements actually decoded.
pub fn decode_list<T>(
    r: &mut Reader,
    n: usize,
    mut elem: impl FnMut(&mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut v = Vec::with_capacity(n.min(MAX_PREALLOC));
    for _ in 0..n {
        v.push(elem(r)?);
    }
    Ok(v)
}

/// Reads an int32 array of partition indexes.
fn partition_list(r: &mut Reader, what: &'static str) -> Result<Vec<i32>, DecodeError> {
    let n = list_len(r, 4, what)?;
    decode_list(r, n, |r| r.i32(what))
}

/// Reads an array of `(topic string, partitions int32 array)`, the layout shared by the
/// subscription's owned partitions, the assignment and the sticky assignor's user data.
pub fn topic_partitions_list(
    r: &mut Reader,
    what: &'static str,
) -> Result<Vec<TopicPartitions>, DecodeError> {
    // A name's int16 length and an empty array's int32 length: 6 bytes at least.
    let n = list_len(r, 6, what)?;
    decode_list(r, n, |r| {
        let topic = r.string(false, what)?;
        let partitions = partition_list(r, what)?;
        Ok(TopicPartitions { topic, partitions })
    })
}

/// Reads the int16 version prefix: negative versions are an error; returns the version and the
/// one to read (at most `max`).
fn read_version(r: &mut Reader, max: i16, what: &'static str) -> Result<(i16, i16), DecodeError> {
    let version = r.i16(what)?;
    if version < 0 {
        return Err(DecodeError::new(
            what,
            0,
            DecodeErrorKind::UnsupportedVersion(version),
        ));
    }
    Ok((version, version.min(max)))
}

/// Trailing bytes are an error after a known version and ignored after a newer one (its
/// appended fields).
fn check_end(r: &Reader, version: i16, max: i16, what: &'static str) -> Result<(), DecodeError> {
    if version <= max && !r.is_empty() {
        return Err(r.error(
            what,
            DecodeErrorKind::Invalid(format!(
                "{} bytes left over after {what} v{version}",
                r.remaining()
            )),
        ));
    }
    Ok(())
}

/// Flattens `groups` into `(topic, partition)` pairs, or refuses when they would take more than
/// the budget for `input_len` bytes of input (see [`FLAT_BUDGET_FACTOR`]).
pub fn flatten(
    groups: Vec<TopicPartitions>,
    input_len: usize,
    what: &'static str,
    grouped: &'static str,
) -> Result<Vec<(String, i32)>, DecodeError> {
    let pair = std::mem::size_of::<(String, i32)>();
    let (mut count, mut bytes) = (0usize, 0usize);
    for g in &groups {
        count = count.saturating_add(g.partitions.len());
        bytes = bytes.saturating_add(g.partitions.len().saturating_mul(pair + g.topic.len()));
    }
    let budget = input_len
        .saturating_mul(FLAT_BUDGET_FACTOR)
        .saturating_add(FLAT_BUDGET_SLACK);
    if bytes > budget {
        return Err(DecodeError::new(
            what,
            0,
            DecodeErrorKind::Invalid(format!(
                "{count} partitions would take {bytes} bytes as (topic, partition) pairs, more \
                 than the {budget} allowed for {input_len} bytes of input; {grouped} reads them \
                 with each topic name held once"
            )),
        ));
    }
    let mut out = Vec::with_capacity(count);
    for g in groups {
        let mut partitions = g.partitions.into_iter().peekable();
        while let Some(p) = partitions.next() {
            if partitions.peek().is_some() {
                out.push((g.topic.clone(), p));
            } else {
                out.push((g.topic, p));
                break;
            }
        }
    }
    Ok(out)
}

/// Encodes a subscription as JoinGroup protocol metadata: int16 `version` then its fields.
///
/// Versions below 3 silently leave out the fields they cannot carry (owned partitions below 1,
/// generation below 2, rack below 3), as the schema marks those fields ignorable.
///
/// # Errors
/// [`EncodeError`] for a version outside 0-3, or a string or list too long for its prefix.
pub fn encode_subscription(s: &Subscription, version: i16) -> Result<Bytes, EncodeError> {
    encode_versioned(&ConsumerProtocolSubscription::from(s), version)
}

/// Decodes JoinGroup protocol metadata written by [`encode_subscription`] or any Kafka client,
/// owned partitions grouped by topic as on the wire. Versions above 3 are read as version 3.
/// Memory stays within a small multiple of `bytes.len()` whatever the bytes say.
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated or invalid, or the version is negative.
pub fn decode_subscription_by_topic(bytes: Bytes) -> Result<SubscriptionByTopic, DecodeError> {
    const WHAT: &str = "ConsumerProtocolSubscription";
    const MAX: i16 = SUBSCRIPTION_VERSION;
    let mut r = Reader::new(bytes);
    let (version, readable) = read_version(&mut r, MAX, WHAT)?;
    let n = list_len(&mut r, 2, "ConsumerProtocolSubscription.Topics")?;
    let topics = decode_list(&mut r, n, |r| {
        r.string(false, "ConsumerProtocolSubscription.Topics")
    })?;
    let user_data = r.nullable_bytes(false, "ConsumerProtocolSubscription.UserData")?;
    let owned_partitions = if readable >= 1 {
        topic_partitions_list(&mut r, "ConsumerProtocolSubscription.OwnedPartitions")?
    } else {
        Vec::new()
    };
    let generation_id = if readable >= 2 {
        r.i32("ConsumerProtocolSubscription.GenerationId")?
    } else {
        -1
    };
    let rack_id = if readable >= 3 {
        r.nullable_string(false, "ConsumerProtocolSubscription.RackId")?
    } else {
        None
    };
    check_end(&r, version, MAX, WHAT)?;
    Ok(SubscriptionByTopic {
        topics,
        owned_partitions,
        generation_id,
        rack_id,
        user_data,
    })
}

/// Decodes JoinGroup protocol metadata written by [`encode_subscription`] or any Kafka client.
/// Versions above 3 are read as version 3.
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated or invalid, or the version is negative; also
/// when the owned partitions as flat pairs would exceed the budget of [`FLAT_BUDGET_FACTOR`]
/// (read those with [`decode_subscription_by_topic`]).
pub fn decode_subscription(bytes: Bytes) -> Result<Subscription, DecodeError> {
    let len = bytes.len();
    let s = decode_subscription_by_topic(bytes)?;
    Ok(Subscription {
        topics: s.topics,
        owned_partitions: flatten(
            s.owned_partitions,
            len,
            "ConsumerProtocolSubscription.OwnedPartitions",
            "decode_subscription_by_topic",
        )?,
        generation_id: s.generation_id,
        rack_id: s.rack_id,
        user_data: s.user_data,
    })
}

/// Encodes an assignment as SyncGroup member data: int16 `version` then its fields (the body is
/// the same in versions 0-3).
///
/// # Errors
/// [`EncodeError`] for a version outside 0-3, or a string or list too long for its prefix.
pub fn encode_assignment(a: &Assignment, version: i16) -> Result<Bytes, EncodeError> {
    encode_versioned(&ConsumerProtocolAssignment::from(a), version)
}

/// Encodes an assignment already grouped by topic (topics and partitions in their given order)
/// as SyncGroup member data, as [`encode_assignment`] does.
///
/// # Errors
/// As [`encode_assignment`].
pub fn encode_assignment_by_topic(
    a: AssignmentByTopic,
    version: i16,
) -> Result<Bytes, EncodeError> {
    encode_versioned(&ConsumerProtocolAssignment::from(a), version)
}

/// Decodes SyncGroup member data, partitions grouped by topic as on the wire. Versions above 3
/// are read as version 3, and an empty buffer is an empty assignment (what the coordinator hands
/// a member the leader left out). Memory stays within a small multiple of `bytes.len()`.
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated or invalid, or the version is negative.
pub fn decode_assignment_by_topic(bytes: Bytes) -> Result<AssignmentByTopic, DecodeError> {
    const WHAT: &str = "ConsumerProtocolAssignment";
    const MAX: i16 = ASSIGNMENT_VERSION;
    if bytes.is_empty() {
        return Ok(AssignmentByTopic::default());
    }
    let mut r = Reader::new(bytes);
    let (version, _) = read_version(&mut r, MAX, WHAT)?;
    let partitions =
        topic_partitions_list(&mut r, "ConsumerProtocolAssignment.AssignedPartitions")?;
    let user_data = r.nullable_bytes(false, "ConsumerProtocolAssignment.UserData")?;
    check_end(&r, version, MAX, WHAT)?;
    Ok(AssignmentByTopic {
        partitions,
        user_data,
    })
}

/// Decodes SyncGroup member data. Versions above 3 are read as version 3, and an empty buffer
/// is an empty assignment (what the coordinator hands a member the leader left out).
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated or invalid, or the version is negative; also
/// when the partitions as flat pairs would exceed the budget of [`FLAT_BUDGET_FACTOR`] (read
/// those with [`decode_assignment_by_topic`]).
pub fn decode_assignment(bytes: Bytes) -> Result<Assignment, DecodeError> {
    let len = bytes.len();
    let a = decode_assignment_by_topic(bytes)?;
    Ok(Assignment {
        partitions: flatten(
            a.partitions,
            len,
            "ConsumerProtocolAssignment.AssignedPartitions",
            "decode_assignment_by_topic",
        )?,
        user_data: a.user_data,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::messages::Decodable;

    fn sample_subscription() -> Subscription {
        Subscription {
            topics: vec!["orders".into(), "payments".into()],
            owned_partitions: vec![
                ("orders".into(), 0),
                ("orders".into(), 3),
                ("payments".into(), 1),
            ],
            generation_id: 7,
            rack_id: Some("eu-west-1a".into()),
            user_data: Some(Bytes::from_static(b"\x01\x02")),
        }
    }

    #[test]
    fn subscription_round_trips_in_every_version() {
        let s = sample_subscription();
        for version in 0..=3 {
            let bytes = encode_subscription(&s, version).unwrap();
            assert_eq!(&bytes[..2], &version.to_be_bytes());
            let back = decode_subscription(bytes).unwrap();
            assert_eq!(back.topics, s.topics);
            assert_eq!(back.user_data, s.user_data);
            let owned = if version >= 1 {
                s.owned_partitions.clone()
            } else {
                vec![]
            };
            assert_eq!(back.owned_partitions, owned, "v{version}");
            assert_eq!(
                back.generation_id,
                if version >= 2 { 7 } else { -1 },
                "v{version}"
            );
            assert_eq!(
                back.rack_id,
                if version >= 3 {
                    s.rack_id.clone()
                } else {
                    None
                }
            );
        }
    }

    #[test]
    fn subscription_v0_exact_bytes() {
        let s = Subscription {
            topics: vec!["ab".into()],
            user_data: None,
            ..Default::default()
        };
        let bytes = encode_subscription(&s, 0).unwrap();
        // version 0, 1 topic, "ab", null user data
        assert_eq!(
            &bytes[..],
            &[0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn newer_subscription_version_is_read_as_highest_known() {
        let s = sample_subscription();
        let v3 = encode_subscription(&s, 3).unwrap();
        let mut newer = BytesMut::new();
        newer.put_i16(4);
        newer.put_slice(&v3[2..]);
        newer.put_slice(b"appended field from a future version");
        assert_eq!(decode_subscription(newer.freeze()).unwrap(), s);
    }

    #[test]
    fn trailing_bytes_in_known_version_are_rejected() {
        let s = sample_subscription();
        let mut b = BytesMut::from(&encode_subscription(&s, 3).unwrap()[..]);
        b.put_u8(0);
        assert!(decode_subscription(b.freeze()).is_err());
    }

    #[test]
    fn negative_or_truncated_is_an_error() {
        assert!(decode_subscription(Bytes::from_static(&[0xff, 0xff])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0])).is_err());
        assert!(decode_subscription(Bytes::from_static(&[0, 1, 0, 0])).is_err());
        assert!(decode_assignment(Bytes::from_static(&[0xff, 0xfe, 0, 0])).is_err());
    }

    #[test]
    fn assignment_round_trips_and_groups_by_topic() {
        let a = Assignment {
            partitions: vec![("b".into(), 2), ("a".into(), 0), ("b".into(), 5)],
            user_data: Some(Bytes::from_static(b"x")),
        };
        let generated = ConsumerProtocolAssignment::from(&a);
        assert_eq!(generated.assigned_partitions.len(), 2);
        assert_eq!(generated.assigned_partitions[0].topic, "b");
        assert_eq!(generated.assigned_partitions[0].partitions, vec![2, 5]);
        for version in 0..=3 {
            let back = decode_assignment(encode_assignment(&a, version).unwrap()).unwrap();
            assert_eq!(
                back.partitions,
                vec![("b".into(), 2), ("b".into(), 5), ("a".into(), 0)]
            );
            assert_eq!(back.user_data, a.user_data);
        }
    }

    #[test]
    fn assignment_exact_bytes_and_future_version() {
        let a = Assignment {
            partitions: vec![("t".into(), 1)],
            user_data: None,
        };
        let bytes = encode_assignment(&a, 3).unwrap();
        let expected: &[u8] = &[
            0, 3, // version
            0, 0, 0, 1, // one topic
            0, 1, b't', // "t"
            0, 0, 0, 1, 0, 0, 0, 1, // [1]
            0xff, 0xff, 0xff, 0xff, // null user data
        ];
        assert_eq!(&bytes[..], expected);
        let mut newer = BytesMut::from(expected);
        newer[1] = 9;
        newer.put_slice(&[1, 2, 3]);
        assert_eq!(decode_assignment(newer.freeze()).unwrap(), a);
    }

    #[test]
    fn empty_assignment_buffer_is_empty_assignment() {
        assert_eq!(
            decode_assignment(Bytes::new()).unwrap(),
            Assignment::default()
        );
    }

    /// Heap bytes a decoded list of topic partitions holds (capacities, not lengths).
    fn held(groups: &Vec<TopicPartitions>) -> usize {
        groups.capacity() * std::mem::size_of::<TopicPartitions>()
            + groups
                .iter()
                .map(|g| g.topic.capacity() + 4 * g.partitions.capacity())
                .sum::<usize>()
    }

    /// One topic of `name_len` bytes with `partitions` partitions, as the subscription's owned
    /// partitions (v1) or as an assignment.
    fn one_big_topic(subscription: bool, name_len: usize, partitions: i32) -> Bytes {
        let mut b = BytesMut::new();
        b.put_i16(if subscription { 1 } else { 0 });
        if subscription {
            b.put_i32(1);
            b.put_i16(1);
            b.put_u8(b't');
            b.put_i32(-1); // null user data
        }
        b.put_i32(1);
        b.put_i16(name_len as i16);
        b.put_slice(&vec![b'x'; name_len]);
        b.put_i32(partitions);
        for p in 0..partitions {
            b.put_i32(p);
        }
        if !subscription {
            b.put_i32(-1);
        }
        b.freeze()
    }

    #[test]
    fn grouped_decoders_read_what_the_generated_ones_do() {
        let s = sample_subscription();
        for version in 0..=3 {
            let bytes = encode_subscription(&s, version).unwrap();
            let mut r = Reader::new(bytes.slice(2..));
            let generated = ConsumerProtocolSubscription::decode(&mut r, version).unwrap();
            let grouped = decode_subscription_by_topic(bytes).unwrap();
            assert_eq!(grouped.topics, generated.topics);
            assert_eq!(grouped.user_data, generated.user_data);
            assert_eq!(grouped.generation_id, generated.generation_id);
            assert_eq!(grouped.rack_id, generated.rack_id);
            let owned: Vec<TopicPartitions> = generated
                .owned_partitions
                .into_iter()
                .map(|t| TopicPartitions::new(t.topic, t.partitions))
                .collect();
            assert_eq!(grouped.owned_partitions, owned, "v{version}");
        }
        let a = Assignment {
            partitions: vec![("b".into(), 2), ("a".into(), 0), ("b".into(), 5)],
            user_data: Some(Bytes::from_static(b"x")),
        };
        let grouped = decode_assignment_by_topic(encode_assignment(&a, 1).unwrap()).unwrap();
        assert_eq!(
            grouped.partitions,
            [
                TopicPartitions::new("b", [2, 5]),
                TopicPartitions::new("a", [0])
            ]
        );
        assert_eq!(grouped.user_data, a.user_data);
        assert_eq!(
            SubscriptionByTopic::from(&s).owned_partitions,
            by_topic(&s.owned_partitions)
        );
    }

    #[test]
    fn a_long_topic_name_with_many_partitions_is_held_once() {
        // 64 KiB: one 32 KiB topic name and 8,000 partitions. Copying the name per partition
        // would take 262 MB.
        for subscription in [true, false] {
            let bytes = one_big_topic(subscription, i16::MAX as usize, 8_000);
            assert!(bytes.len() < 64 * 1024);
            let groups = if subscription {
                decode_subscription_by_topic(bytes.clone())
                    .unwrap()
                    .owned_partitions
            } else {
                decode_assignment_by_topic(bytes.clone())
                    .unwrap()
                    .partitions
            };
            assert_eq!(groups.len(), 1);
            assert_eq!(groups[0].partitions.len(), 8_000);
            let held = held(&groups);
            assert!(
                held <= 2 * bytes.len(),
                "{held} bytes held for {} of input",
                bytes.len()
            );
            // The flat decoders refuse rather than expand.
            let e = if subscription {
                decode_subscription(bytes).unwrap_err()
            } else {
                decode_assignment(bytes).unwrap_err()
            };
            assert!(e.to_string().contains("by_topic"), "{e}");
        }
        // A long name with few partitions is fine flat too.
        let bytes = one_big_topic(false, 2_000, 10);
        assert_eq!(decode_assignment(bytes).unwrap().partitions.len(), 10);
    }

    #[test]
    fn counts_are_bounded_by_the_bytes_left() {
        // A list claiming more elements than the remaining bytes can hold fails before
        // anything is reserved, whatever the element.
        let mut b = BytesMut::new();
        b.put_i16(3);
        b.put_i32(1_000); // 1,000 topics need at least 2,000 bytes
        b.put_slice(&[0; 1_999]);
        assert!(decode_subscription_by_topic(b.freeze()).is_err());
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(100); // 100 topic entries need at least 600 bytes
        b.put_slice(&[0; 599]);
        assert!(decode_assignment_by_topic(b.freeze()).is_err());
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(1);
        b.put_i16(0);
        b.put_i32(i32::MAX); // partitions: 4 bytes each
        assert!(decode_assignment_by_topic(b.freeze()).is_err());
    }

    #[test]
    fn degenerate_lists_stay_within_a_small_multiple() {
        // 64 KiB of empty topic entries (6 bytes each), the costliest shape per input byte.
        let n = 10_000;
        let mut b = BytesMut::new();
        b.put_i16(0);
        b.put_i32(n);
        for _ in 0..n {
            b.put_i16(0);
            b.put_i32(0);
        }
        b.put_i32(-1);
        let bytes = b.freeze();
        let a = decode_assignment_by_topic(bytes.clone()).unwrap();
        assert_eq!(a.partitions.len(), n as usize);
        assert!(held(&a.partitions) <= 16 * bytes.len());
        assert!(decode_assignment(bytes).unwrap().partitions.is_empty());
    }

    /// The generated decoder with the version rules of this module: what the grouped decoders
    /// must agree with.
    fn generated<M: Message + Decodable>(bytes: &[u8]) -> Option<M> {
        let mut r = Reader::new(Bytes::copy_from_slice(bytes));
        let version = r.i16("version").ok()?;
        if version < 0 {
            return None;
        }
        let m = M::decode(&mut r, version.min(M::MAX_VERSION)).ok()?;
        (version > M::MAX_VERSION || r.is_empty()).then_some(m)
    }

    /// Arbitrary bytes, and valid encodings truncated or with a byte changed.
    fn inputs() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        let valid = (0..=4i16, any::<bool>()).prop_map(|(version, assignment)| {
            let bytes = if assignment {
                encode_assignment(
                    &Assignment {
                        partitions: vec![("ab".into(), 1), ("c".into(), 2), ("ab".into(), 3)],
                        user_data: Some(Bytes::from_static(b"u")),
                    },
                    version.min(3),
                )
            } else {
                encode_subscription(&sample_subscription(), version.min(3))
            };
            let mut v = bytes.unwrap().to_vec();
            v[1] = version as u8;
            v
        });
        prop_oneof![
            prop::collection::vec(
                prop_oneof![Just(0u8), Just(1), Just(0xff), any::<u8>()],
                0..48
            ),
            (valid.clone(), any::<prop::sample::Index>()).prop_map(|(v, i)| {
                let n = i.index(v.len() + 1);
                v[..n].to_vec()
            }),
            (valid, any::<prop::sample::Index>(), any::<u8>()).prop_map(|(mut v, i, b)| {
                let at = i.index(v.len());
                v[at] = b;
                v
            }),
        ]
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        #[test]
        fn grouped_decoders_agree_with_the_generated_ones(bytes in inputs()) {
            let grouped = decode_subscription_by_topic(Bytes::copy_from_slice(&bytes)).ok();
            let expected = generated::<ConsumerProtocolSubscription>(&bytes).map(|g| {
                SubscriptionByTopic {
                    topics: g.topics,
                    owned_partitions: g
                        .owned_partitions
                        .into_iter()
                        .map(|t| TopicPartitions::new(t.topic, t.partitions))
                        .collect(),
                    generation_id: g.generation_id,
                    rack_id: g.rack_id,
                    user_data: g.user_data,
                }
            });
            proptest::prop_assert_eq!(grouped, expected);
            if !bytes.is_empty() {
                let grouped = decode_assignment_by_topic(Bytes::copy_from_slice(&bytes)).ok();
                let expected = generated::<ConsumerProtocolAssignment>(&bytes).map(|g| {
                    AssignmentByTopic {
                        partitions: g
                            .assigned_partitions
                            .into_iter()
                            .map(|t| TopicPartitions::new(t.topic, t.partitions))
                            .collect(),
                        user_data: g.user_data,
                    }
                });
                proptest::prop_assert_eq!(grouped, expected);
            }
        }
    }

    #[test]
    fn unknown_encode_version_is_an_error() {
        assert!(encode_subscription(&Subscription::default(), 4).is_err());
        assert!(encode_assignment(&Assignment::default(), -1).is_err());
    }
}
