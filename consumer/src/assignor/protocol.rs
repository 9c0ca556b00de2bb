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

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_protocol::messages::consumer_protocol_assignment::{
    ConsumerProtocolAssignment, TopicPartition as AssignedTopic,
};
use kafkawire_protocol::messages::consumer_protocol_subscription::{
    ConsumerProtocolSubscription, TopicPartition as OwnedTopic,
};
use kafkawire_protocol::messages::{Encodable, Message};
use kafkawire_protocol::{DecodeError, DecodeErrorKind, EncodeError, Reader};

/// Highest subscription version this crate writes and reads in full.
pub const SUBSCRIPTION_VERSION: i16 = ConsumerProtocolSubscription::MAX_VERSION;
/// Highest assignment version this crate writes and reads in full.
pub const ASSIGNMENT_VERSION: i16 = ConsumerProtocolAssignment::MAX_VERSION;

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

/// What the group leader gives each member: the partitions it is to consume.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Assignment {
    /// Assigned partitions, `(topic, partition)`.
    pub partitions: Vec<(String, i32)>,
    /// Opaque data from the assignor.
    pub user_data: Option<Bytes>,
}

/// Groups `(topic, partition)` pairs by topic, topics in order of first appearance, partitions
/// in their given order.
fn group_by_topic(pairs: &[(String, i32)]) -> Vec<(String, Vec<i32>)> {
    let mut out: Vec<(String, Vec<i32>)> = Vec::new();
    for (topic, partition) in pairs {
        match out.iter_mut().find(|(t, _)| t == topic) {
            Some((_, ps)) => ps.push(*partition),
            None => out.push((topic.clone(), vec![*partition])),
        }
    }
    out
}

impl From<&Subscription> for ConsumerProtocolSubscription {
    fn from(s: &Subscription) -> Self {
        ConsumerProtocolSubscription {
            topics: s.topics.clone(),
            user_data: s.user_data.clone(),
            owned_partitions: group_by_topic(&s.owned_partitions)
                .into_iter()
                .map(|(topic, partitions)| OwnedTopic {
                    topic,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            generation_id: s.generation_id,
            rack_id: s.rack_id.clone(),
            ..Default::default()
        }
    }
}

impl From<ConsumerProtocolSubscription> for Subscription {
    fn from(s: ConsumerProtocolSubscription) -> Self {
        Subscription {
            topics: s.topics,
            owned_partitions: s
                .owned_partitions
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic;
                    t.partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .collect(),
            generation_id: s.generation_id,
            rack_id: s.rack_id,
            user_data: s.user_data,
        }
    }
}

impl From<&Assignment> for ConsumerProtocolAssignment {
    fn from(a: &Assignment) -> Self {
        ConsumerProtocolAssignment {
            assigned_partitions: group_by_topic(&a.partitions)
                .into_iter()
                .map(|(topic, partitions)| AssignedTopic {
                    topic,
                    partitions,
                    ..Default::default()
                })
                .collect(),
            user_data: a.user_data.clone(),
            ..Default::default()
        }
    }
}

impl From<ConsumerProtocolAssignment> for Assignment {
    fn from(a: ConsumerProtocolAssignment) -> Self {
        Assignment {
            partitions: a
                .assigned_partitions
                .into_iter()
                .flat_map(|t| {
                    let topic = t.topic;
                    t.partitions.into_iter().map(move |p| (topic.clone(), p))
                })
                .collect(),
            user_data: a.user_data,
        }
    }
}

/// Writes the int16 version then the body of `m` in that version.
fn encode_versioned<M: Encodable>(m: &M, version: i16) -> Result<Bytes, EncodeError> {
    let mut buf = BytesMut::new();
    buf.put_i16(version);
    m.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

/// Reads the int16 version, then the body in `min(version, M::MAX_VERSION)`. Trailing bytes are
/// an error for a known version and ignored for a newer one (its appended fields).
fn decode_versioned<M: Message>(bytes: Bytes) -> Result<M, DecodeError> {
    let mut r = Reader::new(bytes);
    let version = r.i16(M::NAME)?;
    if version < M::MIN_VERSION {
        return Err(DecodeError::new(
            M::NAME,
            0,
            DecodeErrorKind::UnsupportedVersion(version),
        ));
    }
    let readable = version.min(M::MAX_VERSION);
    let m = M::decode(&mut r, readable)?;
    if version <= M::MAX_VERSION && !r.is_empty() {
        return Err(r.error(
            M::NAME,
            DecodeErrorKind::Invalid(format!(
                "{} bytes left over after {} v{version}",
                r.remaining(),
                M::NAME
            )),
        ));
    }
    Ok(m)
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

/// Decodes JoinGroup protocol metadata written by [`encode_subscription`] or any Kafka client.
/// Versions above 3 are read as version 3.
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated or invalid, or the version is negative.
pub fn decode_subscription(bytes: Bytes) -> Result<Subscription, DecodeError> {
    decode_versioned::<ConsumerProtocolSubscription>(bytes).map(Subscription::from)
}

/// Encodes an assignment as SyncGroup member data: int16 `version` then its fields (the body is
/// the same in versions 0-3).
///
/// # Errors
/// [`EncodeError`] for a version outside 0-3, or a string or list too long for its prefix.
pub fn encode_assignment(a: &Assignment, version: i16) -> Result<Bytes, EncodeError> {
    encode_versioned(&ConsumerProtocolAssignment::from(a), version)
}

/// Decodes SyncGroup member data. Versions above 3 are read as version 3, and an empty buffer
/// is an empty assignment (what the coordinator hands a member the leader left out).
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated or invalid, or the version is negative.
pub fn decode_assignment(bytes: Bytes) -> Result<Assignment, DecodeError> {
    if bytes.is_empty() {
        return Ok(Assignment::default());
    }
    decode_versioned::<ConsumerProtocolAssignment>(bytes).map(Assignment::from)
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn unknown_encode_version_is_an_error() {
        assert!(encode_subscription(&Subscription::default(), 4).is_err());
        assert!(encode_assignment(&Assignment::default(), -1).is_err());
    }
}
