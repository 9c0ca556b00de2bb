//! The round-robin assignor (`roundrobin`).
//!
//! Every partition of every subscribed topic, sorted by topic then partition, is dealt in turn
//! to the members in [`ordered_members`](super::ordered_members) order; a member not subscribed
//! to the partition's topic is skipped and the deal goes on with the next one. With identical
//! subscriptions member loads differ by at most one.

use std::collections::{BTreeMap, BTreeSet};

use super::{
    Assignor, MemberSubscription, RebalanceProtocol, empty_plan, live_topics, ordered_members,
};

/// Partitions dealt one at a time around the members.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundRobinAssignor;

impl Assignor for RoundRobinAssignor {
    fn name(&self) -> &'static str {
        "roundrobin"
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
        let order = ordered_members(members);
        let subscribed: Vec<BTreeSet<&str>> = order
            .iter()
            .map(|id| live_topics(&members[*id], partitions_per_topic))
            .collect();
        let topics: BTreeSet<&str> = subscribed.iter().flatten().copied().collect();
        let mut next = 0;
        for topic in topics {
            for p in 0..partitions_per_topic[topic] {
                // Someone subscribes to `topic`, so the search ends within one turn.
                let at = (0..order.len())
                    .map(|k| (next + k) % order.len())
                    .find(|&i| subscribed[i].contains(topic))
                    .expect("topic has a subscriber");
                plan.get_mut(order[at])
                    .expect("every member has an entry")
                    .push((topic.to_string(), p));
                next = at + 1;
            }
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::{members, tp};
    use super::*;

    #[test]
    fn kafka_docs_two_consumers_two_topics() {
        // Kafka's documented example: C0 and C1 subscribed to t0 and t1, three partitions each.
        let partitions = BTreeMap::from([("t0".to_string(), 3), ("t1".to_string(), 3)]);
        let plan = RoundRobinAssignor.assign(
            &partitions,
            &members(&[("C0", &["t0", "t1"]), ("C1", &["t0", "t1"])]),
        );
        assert_eq!(plan["C0"], [tp("t0", 0), tp("t0", 2), tp("t1", 1)]);
        assert_eq!(plan["C1"], [tp("t0", 1), tp("t1", 0), tp("t1", 2)]);
    }

    #[test]
    fn two_topics_three_members() {
        let partitions = BTreeMap::from([("t0".to_string(), 3), ("t1".to_string(), 3)]);
        let all: &[&str] = &["t0", "t1"];
        let plan = RoundRobinAssignor.assign(
            &partitions,
            &members(&[("C0", all), ("C1", all), ("C2", all)]),
        );
        assert_eq!(plan["C0"], [tp("t0", 0), tp("t1", 0)]);
        assert_eq!(plan["C1"], [tp("t0", 1), tp("t1", 1)]);
        assert_eq!(plan["C2"], [tp("t0", 2), tp("t1", 2)]);
    }

    #[test]
    fn kafka_docs_uneven_subscriptions() {
        // Kafka's documented example: t0, t1, t2 with 1, 2, 3 partitions; C0 subscribes to t0,
        // C1 to t0 and t1, C2 to all three.
        let partitions = BTreeMap::from([
            ("t0".to_string(), 1),
            ("t1".to_string(), 2),
            ("t2".to_string(), 3),
        ]);
        let plan = RoundRobinAssignor.assign(
            &partitions,
            &members(&[
                ("C0", &["t0"]),
                ("C1", &["t0", "t1"]),
                ("C2", &["t0", "t1", "t2"]),
            ]),
        );
        assert_eq!(plan["C0"], [tp("t0", 0)]);
        assert_eq!(plan["C1"], [tp("t1", 0)]);
        assert_eq!(
            plan["C2"],
            [tp("t1", 1), tp("t2", 0), tp("t2", 1), tp("t2", 2)]
        );
    }
}
