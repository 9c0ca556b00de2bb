//! `consumer_protocol` seeds: subscriptions and assignments in versions 0-3 (and a newer
//! version read as 3), sticky user data v0 and v1, and groups of members for the assignors.

use bytes::Bytes;
use kafkawire_consumer::assignor::{
    Assignment, StickyUserData, Subscription, encode_assignment, encode_sticky_user_data,
    encode_subscription,
};
use kafkawire_protocol::messages::consumer_protocol_assignment::ConsumerProtocolAssignment;
use kafkawire_protocol::messages::consumer_protocol_subscription::ConsumerProtocolSubscription;

use super::{message, write};

fn with_mode(mode: u8, b: &[u8]) -> Vec<u8> {
    let mut d = vec![mode];
    d.extend_from_slice(b);
    d
}

pub(crate) fn all() {
    let subs = [
        Subscription {
            topics: vec!["orders".into()],
            ..Default::default()
        },
        Subscription {
            topics: vec!["orders".into(), "payments".into()],
            owned_partitions: vec![("orders".into(), 0), ("payments".into(), 2)],
            generation_id: 4,
            rack_id: Some("rack-a".into()),
            user_data: Some(Bytes::from_static(b"\x00\x01")),
        },
        Subscription {
            topics: vec!["payments".into(), "x".into()],
            owned_partitions: vec![("payments".into(), 0), ("orders".into(), 0)],
            generation_id: 3,
            ..Default::default()
        },
    ];
    let mut encoded = Vec::new();
    for s in &subs {
        for version in 0..=3 {
            let b = encode_subscription(s, version).unwrap();
            write("consumer_protocol", &with_mode(0, &b));
            message::<ConsumerProtocolSubscription>(version, &b[2..], false);
            if version == 3 {
                encoded.push(b.clone());
                // A newer version: read as 3, trailing fields ignored.
                let mut newer = b.to_vec();
                newer[..2].copy_from_slice(&5i16.to_be_bytes());
                newer.extend_from_slice(&[0, 0, 0, 0]);
                write("consumer_protocol", &with_mode(0, &newer));
            }
        }
    }
    let a = Assignment {
        partitions: vec![("orders".into(), 0), ("orders".into(), 3), ("payments".into(), 1)],
        user_data: Some(Bytes::from_static(b"u")),
    };
    for version in 0..=3 {
        let b = encode_assignment(&a, version).unwrap();
        write("consumer_protocol", &with_mode(1, &b));
        message::<ConsumerProtocolAssignment>(version, &b[2..], false);
    }
    write("consumer_protocol", &[1]); // empty: an empty assignment
    let sticky = StickyUserData {
        previous_assignment: vec![("orders".into(), 1), ("orders".into(), 2)],
        generation: Some(6),
    };
    let b = encode_sticky_user_data(&sticky).unwrap();
    write("consumer_protocol", &with_mode(2, &b));
    write("consumer_protocol", &with_mode(2, &b[..b.len() - 4])); // v0: no generation

    // Assignors: p, then (len, subscription) per member.
    for p in [0u8, 3] {
        let mut d = vec![3, p];
        for b in encoded.iter().chain(encoded.iter().take(1)) {
            d.push(b.len() as u8);
            d.extend_from_slice(b);
        }
        write("consumer_protocol", &d);
    }
}
