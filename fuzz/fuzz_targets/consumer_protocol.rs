//! The consumer protocol's embedded data, as a group leader and its members read it:
//! subscriptions (JoinGroup member metadata), assignments (SyncGroup), the sticky assignor's
//! user data, and every assignor run over subscriptions other members sent.
//!
//! Input: `[mode, rest..]`, `mode % 4`:
//! - 0: `decode_subscription(rest)`; 1: `decode_assignment(rest)`; 2:
//!   `decode_sticky_user_data(rest)`. A value that decodes must re-encode (highest version) and
//!   decode to the same value (partition lists compared as sets: encoding groups them by topic).
//! - 3: `rest = [p, (len, subscription[len])..]`: up to 8 members' subscriptions (an
//!   undecodable one counts as subscribing to nothing, the behaviour the issue asks for); each
//!   topic they name gets `(p + name length) % 8` partitions (7: absent from metadata). Every
//!   assignor (range, roundrobin, sticky, cooperative-sticky) must return a plan with an entry
//!   per member, each list sorted, no partition twice, and only existing partitions of topics
//!   the member subscribes to.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use kafkawire_consumer::assignor::{
    self, ASSIGNMENT_VERSION, MemberSubscription, SUBSCRIPTION_VERSION, decode_assignment,
    decode_sticky_user_data, decode_subscription, encode_assignment, encode_sticky_user_data,
    encode_subscription,
};
use kafkawire_fuzz::{peak, split_selector};
use libfuzzer_sys::fuzz_target;

fn sorted(mut v: Vec<(String, i32)>) -> Vec<(String, i32)> {
    v.sort();
    v
}

fn subscription(rest: &[u8]) {
    let base = peak::reset();
    let decoded = decode_subscription(Bytes::copy_from_slice(rest));
    peak::check("decode_subscription", base, rest.len());
    let Ok(s) = decoded else { return };
    let bytes = encode_subscription(&s, SUBSCRIPTION_VERSION)
        .unwrap_or_else(|e| panic!("decoded subscription does not encode: {e}\n{s:?}"));
    let back = decode_subscription(bytes)
        .unwrap_or_else(|e| panic!("re-encoded subscription does not decode: {e}\n{s:?}"));
    assert_eq!(back.topics, s.topics);
    assert_eq!(
        sorted(back.owned_partitions.clone()),
        sorted(s.owned_partitions.clone())
    );
    assert_eq!(back.generation_id, s.generation_id);
    assert_eq!(back.rack_id, s.rack_id);
    assert_eq!(back.user_data, s.user_data);
}

fn assignment(rest: &[u8]) {
    let base = peak::reset();
    let decoded = decode_assignment(Bytes::copy_from_slice(rest));
    peak::check("decode_assignment", base, rest.len());
    let Ok(a) = decoded else { return };
    let bytes = encode_assignment(&a, ASSIGNMENT_VERSION)
        .unwrap_or_else(|e| panic!("decoded assignment does not encode: {e}\n{a:?}"));
    let back = decode_assignment(bytes)
        .unwrap_or_else(|e| panic!("re-encoded assignment does not decode: {e}\n{a:?}"));
    assert_eq!(sorted(back.partitions), sorted(a.partitions));
    assert_eq!(back.user_data, a.user_data);
}

fn sticky_user_data(rest: &[u8]) {
    let base = peak::reset();
    let decoded = decode_sticky_user_data(Bytes::copy_from_slice(rest));
    peak::check("decode_sticky_user_data", base, rest.len());
    let Ok(d) = decoded else { return };
    let bytes = encode_sticky_user_data(&d)
        .unwrap_or_else(|e| panic!("decoded sticky user data does not encode: {e}\n{d:?}"));
    let back = decode_sticky_user_data(bytes)
        .unwrap_or_else(|e| panic!("re-encoded sticky user data does not decode: {e}\n{d:?}"));
    assert_eq!(
        sorted(back.previous_assignment),
        sorted(d.previous_assignment)
    );
    assert_eq!(back.generation, d.generation);
}

fn assign(rest: &[u8]) {
    let Some(([p], mut rest)) = split_selector::<1>(rest) else {
        return;
    };
    let mut members = BTreeMap::new();
    while members.len() < 8 {
        let Some(([len], tail)) = split_selector::<1>(rest) else {
            break;
        };
        let len = usize::from(len).min(tail.len());
        let (sub, tail) = tail.split_at(len);
        rest = tail;
        let s = decode_subscription(Bytes::copy_from_slice(sub)).unwrap_or_default();
        let i = members.len();
        let instance = (i % 2 == 1).then(|| format!("instance-{}", 8 - i));
        members.insert(
            format!("member-{i}"),
            MemberSubscription::from_subscription(s, instance),
        );
    }
    let mut partitions_per_topic = BTreeMap::new();
    for m in members.values() {
        for t in &m.topics {
            let n = (usize::from(p) + t.len()) % 8;
            if n != 7 {
                partitions_per_topic.insert(t.clone(), n as i32);
            }
        }
    }
    for name in ["range", "roundrobin", "sticky", "cooperative-sticky"] {
        let a = assignor::by_name(name).expect("assignor");
        let plan = a.assign(&partitions_per_topic, &members);
        let mut seen = BTreeSet::new();
        for (id, m) in &members {
            let Some(owned) = plan.get(id) else {
                panic!("{name}: no entry for {id} in the plan {plan:?}");
            };
            assert!(
                owned.windows(2).all(|w| w[0] < w[1]),
                "{name}: {id}'s list is not sorted and distinct: {owned:?}"
            );
            for (t, part) in owned {
                assert!(
                    m.topics.contains(t),
                    "{name}: {id} got {t}-{part} but does not subscribe to {t:?}\n\
                     members: {members:?}\nplan: {plan:?}"
                );
                let count = partitions_per_topic.get(t).copied().unwrap_or(0);
                assert!(
                    (0..count).contains(part),
                    "{name}: {id} got {t}-{part}, but {t:?} has {count} partitions\n\
                     members: {members:?}\nplan: {plan:?}"
                );
                assert!(
                    seen.insert((t.clone(), *part)),
                    "{name}: {t}-{part} assigned twice\nmembers: {members:?}\nplan: {plan:?}"
                );
            }
        }
        assert!(
            plan.keys().all(|id| members.contains_key(id)),
            "{name}: plan names a member that did not join: {plan:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(([mode], rest)) = split_selector::<1>(data) else {
        return;
    };
    match mode % 4 {
        0 => subscription(rest),
        1 => assignment(rest),
        2 => sticky_user_data(rest),
        _ => assign(rest),
    }
});
