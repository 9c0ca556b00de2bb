//! The range assignor (`range`), the classic default of Kafka's clients.
//!
//! Each topic is assigned on its own: the members subscribed to it, in
//! [`ordered_members`](super::ordered_members) order, each get a contiguous range of its
//! partitions; with `n` partitions and `m` members every member gets `n / m` and the first
//! `n % m` one more. Members of co-partitioned topics thus get matching partition numbers, at
//! the cost of balance across topics (the first members get the extra partition of every topic).

use std::collections::BTreeMap;

use super::{
    Assignor, MemberSubscription, RebalanceProtocol, empty_plan, live_topics, ordered_members,
    sort_plan,
};

/// Contiguous ranges of each topic's partitions per subscribed member.
#[derive(Debug, Clone, Copy, Default)]
pub struct RangeAssignor;

impl Assignor for RangeAssignor {
    fn name(&self) -> &'static str {
        "range"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Vec<(String, i32)>> {
        let mut plan = empty_plan(members);
        // topic -> its subscribers, in dealing order
        let mut subscribers: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for id in ordered_members(members) {
            for topic in live_topics(&members[id], partitions_per_topic) {
                subscribers.entry(topic).or_default().push(id);
            }
        }
        for (topic, ids) in subscribers {
            let n = partitions_per_topic[topic];
            let m = ids.len() as i32;
            let (base, extra) = (n / m, n % m);
            let mut next = 0;
            for (i, id) in ids.into_iter().enumerate() {
                let take = base + i32::from((i as i32) < extra);
                let list = plan.get_mut(id).expect("every member has an entry");
                list.extend((next..next + take).map(|p| (topic.to_string(), p)));
                next += take;
            }
        }
        sort_plan(&mut plan);
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::{members, tp};
    use super::*;

    #[test]
    fn two_members_three_partitions() {
        let partitions = BTreeMap::from([("t".to_string(), 3)]);
        let plan = RangeAssignor.assign(&partitions, &members(&[("c0", &["t"]), ("c1", &["t"])]));
        assert_eq!(plan["c0"], [tp("t", 0), tp("t", 1)]);
        assert_eq!(plan["c1"], [tp("t", 2)]);
    }

    #[test]
    fn each_topic_ranged_separately() {
        // Kafka's documented example: two consumers, two topics of three partitions.
        let partitions = BTreeMap::from([("t0".to_string(), 3), ("t1".to_string(), 3)]);
        let plan = RangeAssignor.assign(
            &partitions,
            &members(&[("c0", &["t0", "t1"]), ("c1", &["t0", "t1"])]),
        );
        assert_eq!(
            plan["c0"],
            [tp("t0", 0), tp("t0", 1), tp("t1", 0), tp("t1", 1)]
        );
        assert_eq!(plan["c1"], [tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn only_subscribers_share_a_topic() {
        let partitions = BTreeMap::from([("a".to_string(), 4), ("b".to_string(), 2)]);
        let plan = RangeAssignor.assign(
            &partitions,
            &members(&[("x", &["a"]), ("y", &["a", "b"]), ("z", &["b", "a", "b"])]),
        );
        assert_eq!(plan["x"], [tp("a", 0), tp("a", 1)]);
        assert_eq!(plan["y"], [tp("a", 2), tp("b", 0)]);
        assert_eq!(plan["z"], [tp("a", 3), tp("b", 1)]);
    }

    #[test]
    fn more_members_than_partitions() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let plan = RangeAssignor.assign(
            &partitions,
            &members(&[("a", &["t"]), ("b", &["t"]), ("c", &["t"])]),
        );
        assert_eq!(plan["a"], [tp("t", 0)]);
        assert_eq!(plan["b"], [tp("t", 1)]);
        assert!(plan["c"].is_empty());
    }

    #[test]
    fn static_members_come_first() {
        let partitions = BTreeMap::from([("t".to_string(), 3)]);
        let mut m = members(&[("a", &["t"]), ("b", &["t"])]);
        m.get_mut("b").unwrap().group_instance_id = Some("host-1".into());
        let plan = RangeAssignor.assign(&partitions, &m);
        assert_eq!(plan["b"], [tp("t", 0), tp("t", 1)]);
        assert_eq!(plan["a"], [tp("t", 2)]);
    }
}
