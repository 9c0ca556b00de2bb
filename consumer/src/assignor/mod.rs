//! Partition assignors of the classic group protocol ("consumer" protocol type).
//!
//! In the classic protocol the group leader, one of the members, decides who consumes what: it
//! reads every member's [`Subscription`] from the JoinGroup response, runs the assignor the
//! group agreed on, and sends each member its [`Assignment`] in SyncGroup. This module holds
//! that pure logic (no I/O):
//!
//! | name                 | type                          | protocol                        |
//! |----------------------|-------------------------------|---------------------------------|
//! | `range`              | [`RangeAssignor`]             | [`RebalanceProtocol::Eager`]    |
//! | `roundrobin`         | [`RoundRobinAssignor`]        | [`RebalanceProtocol::Eager`]    |
//! | `sticky`             | [`StickyAssignor`]            | [`RebalanceProtocol::Eager`]    |
//! | `cooperative-sticky` | [`CooperativeStickyAssignor`] | [`RebalanceProtocol::Cooperative`] |
//!
//! ```
//! use std::collections::BTreeMap;
//! use kafkawire_consumer::assignor::{by_name, MemberSubscription};
//!
//! let partitions = BTreeMap::from([("orders".to_string(), 3)]);
//! let members = BTreeMap::from([
//!     ("a".to_string(), MemberSubscription::new(["orders"])),
//!     ("b".to_string(), MemberSubscription::new(["orders"])),
//! ]);
//! let plan = by_name("range").unwrap().assign(&partitions, &members);
//! assert_eq!(plan["a"], [("orders".to_string(), 0), ("orders".to_string(), 1)]);
//! assert_eq!(plan["b"], [("orders".to_string(), 2)]);
//! ```

mod cooperative_sticky;
mod range;
mod roundrobin;
mod sticky;

use std::collections::{BTreeMap, BTreeSet};

pub use cooperative_sticky::{CooperativeStickyAssignor, revoked, withhold_moving_partitions};
pub use kafkawire_protocol::consumer_protocol::{
    ASSIGNMENT_VERSION, Assignment, AssignmentByTopic, FLAT_BUDGET_FACTOR, FLAT_BUDGET_SLACK,
    SUBSCRIPTION_VERSION, Subscription, SubscriptionByTopic, TopicPartitions, by_topic,
    decode_assignment, decode_assignment_by_topic, decode_subscription,
    decode_subscription_by_topic, encode_assignment, encode_subscription, pairs,
};
pub use range::RangeAssignor;
pub use roundrobin::RoundRobinAssignor;
pub use sticky::{
    StickyAssignor, StickyUserData, decode_sticky_user_data, encode_sticky_user_data,
};

/// How a group moves partitions between members during a rebalance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RebalanceProtocol {
    /// Every member revokes all its partitions before joining ("stop the world").
    Eager,
    /// Members keep their partitions while the group rebalances and revoke only those that
    /// move; a moved partition reaches its new owner in a follow-up rebalance (KIP-429).
    Cooperative,
}

/// One member's input to an assignor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberSubscription {
    /// Topics the member subscribes to.
    pub topics: Vec<String>,
    /// Partitions the member owned, grouped by topic (each name held once, so that a member's
    /// claims take memory in proportion to the bytes it sent).
    pub owned_partitions: Vec<TopicPartitions>,
    /// Generation in which it owned them; -1 when unknown.
    pub generation_id: i32,
    /// The member's static id (KIP-345), if it has one.
    pub group_instance_id: Option<String>,
}

impl MemberSubscription {
    /// A dynamic member subscribed to `topics`, owning nothing.
    pub fn new<I, S>(topics: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        MemberSubscription {
            topics: topics.into_iter().map(Into::into).collect(),
            owned_partitions: Vec::new(),
            generation_id: -1,
            group_instance_id: None,
        }
    }

    /// The assignor input for a member that sent `subscription` and joined with
    /// `group_instance_id` (both from the JoinGroup response's member list).
    pub fn from_subscription(
        subscription: Subscription,
        group_instance_id: Option<String>,
    ) -> Self {
        MemberSubscription {
            owned_partitions: by_topic(&subscription.owned_partitions),
            topics: subscription.topics,
            generation_id: subscription.generation_id,
            group_instance_id,
        }
    }

    /// As [`MemberSubscription::from_subscription`], from
    /// [`decode_subscription_by_topic`]'s result (nothing is copied).
    pub fn from_subscription_by_topic(
        subscription: SubscriptionByTopic,
        group_instance_id: Option<String>,
    ) -> Self {
        MemberSubscription {
            topics: subscription.topics,
            owned_partitions: subscription.owned_partitions,
            generation_id: subscription.generation_id,
            group_instance_id,
        }
    }

    /// Sets the owned partitions from `(topic, partition)` pairs and the generation they were
    /// owned in.
    pub fn with_owned<'a, I>(mut self, owned: I, generation_id: i32) -> Self
    where
        I: IntoIterator<Item = &'a (String, i32)>,
    {
        self.owned_partitions = by_topic(owned);
        self.generation_id = generation_id;
        self
    }

    /// The owned partitions as `(topic, partition)` pairs, borrowing the names.
    pub fn owned(&self) -> impl Iterator<Item = (&str, i32)> + '_ {
        pairs(&self.owned_partitions)
    }
}

/// The generation whose ownership claims count (KIP-341, KIP-429): the highest any member
/// reports, as Kafka's `AbstractStickyAssignor` has it. Claims from members of older
/// generations are stale: those members missed a rebalance, and the partitions may have moved
/// on since.
fn claim_generation(members: &BTreeMap<String, MemberSubscription>) -> i32 {
    members
        .values()
        .map(|m| m.generation_id)
        .max()
        .unwrap_or(-1)
}

/// Who claims a partition in the generation that counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Claim<T> {
    /// Nobody.
    Unclaimed,
    /// Exactly one member (however many times it lists the partition).
    One(T),
    /// Two or more members: the claim is void, the partition counts as unowned and goes to
    /// nobody until they have all revoked it.
    Conflict,
}

impl<T: PartialEq + Copy> Claim<T> {
    /// Adds `member`'s claim.
    fn add(&mut self, member: T) {
        *self = match *self {
            Claim::Unclaimed => Claim::One(member),
            Claim::One(m) if m == member => Claim::One(m),
            _ => Claim::Conflict,
        };
    }
}

/// A partition assignment strategy of the classic consumer group protocol.
pub trait Assignor: Send + Sync {
    /// The name members advertise in JoinGroup (e.g. `"range"`), the same as Kafka's clients
    /// use so that mixed groups agree.
    fn name(&self) -> &'static str;

    /// The rebalance protocol the assignor's plans are safe for.
    fn protocol(&self) -> RebalanceProtocol;

    /// Plans the assignment. `partitions_per_topic` is the partition count of each topic (from
    /// metadata); `members` maps member ids to their subscriptions. The result has an entry for
    /// every member (possibly empty), each list sorted by topic then partition. Topics missing
    /// from `partitions_per_topic` or with no partitions are skipped.
    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Vec<(String, i32)>>;
}

/// The assignor Kafka's clients know by `name`: `range`, `roundrobin`, `sticky` or
/// `cooperative-sticky`.
pub fn by_name(name: &str) -> Option<Box<dyn Assignor>> {
    match name {
        "range" => Some(Box::new(RangeAssignor)),
        "roundrobin" => Some(Box::new(RoundRobinAssignor)),
        "sticky" => Some(Box::new(StickyAssignor)),
        "cooperative-sticky" => Some(Box::new(CooperativeStickyAssignor)),
        _ => None,
    }
}

/// Member ids in the order Kafka's range and round-robin assignors deal to them (since KIP-345):
/// static members first, by group instance id, then dynamic members by member id.
fn ordered_members(members: &BTreeMap<String, MemberSubscription>) -> Vec<&str> {
    let mut ids: Vec<(&str, &MemberSubscription)> =
        members.iter().map(|(id, m)| (id.as_str(), m)).collect();
    ids.sort_by(|(a_id, a), (b_id, b)| {
        let key_a = (
            a.group_instance_id.is_none(),
            a.group_instance_id.as_deref().unwrap_or(a_id),
        );
        let key_b = (
            b.group_instance_id.is_none(),
            b.group_instance_id.as_deref().unwrap_or(b_id),
        );
        key_a.cmp(&key_b).then_with(|| a_id.cmp(b_id))
    });
    ids.into_iter().map(|(id, _)| id).collect()
}

/// The topics of `m` that exist with at least one partition, without duplicates.
fn live_topics<'a>(
    m: &'a MemberSubscription,
    partitions_per_topic: &BTreeMap<String, i32>,
) -> BTreeSet<&'a str> {
    m.topics
        .iter()
        .filter(|t| partitions_per_topic.get(t.as_str()).is_some_and(|&n| n > 0))
        .map(String::as_str)
        .collect()
}

/// An empty plan with an entry for every member.
fn empty_plan(
    members: &BTreeMap<String, MemberSubscription>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    members.keys().map(|id| (id.clone(), Vec::new())).collect()
}

/// Sorts each member's list by topic then partition.
fn sort_plan(plan: &mut BTreeMap<String, Vec<(String, i32)>>) {
    for list in plan.values_mut() {
        list.sort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use self::support::*;

    /// Generators and checks shared by the assignors' tests.
    pub(super) mod support {
        use super::super::*;
        use proptest::prelude::*;

        /// A random group: topic partition counts and members.
        #[derive(Debug, Clone)]
        pub(crate) struct Group {
            pub(crate) partitions: BTreeMap<String, i32>,
            pub(crate) members: BTreeMap<String, MemberSubscription>,
        }

        pub(crate) fn tp(t: &str, p: i32) -> (String, i32) {
            (t.to_string(), p)
        }

        /// A member's owned partitions as `(topic, partition)` pairs.
        pub(crate) fn owned(m: &MemberSubscription) -> Vec<(String, i32)> {
            m.owned().map(|(t, p)| tp(t, p)).collect()
        }

        /// The claims that count: those of members of the highest generation reported (a
        /// test-side restatement of KIP-341's rule), as `partition -> claimants`.
        pub(crate) fn valid_claims(
            members: &BTreeMap<String, MemberSubscription>,
        ) -> BTreeMap<(String, i32), BTreeSet<String>> {
            let max = members
                .values()
                .map(|m| m.generation_id)
                .max()
                .unwrap_or(-1);
            let mut claims: BTreeMap<(String, i32), BTreeSet<String>> = BTreeMap::new();
            for (id, m) in members {
                if m.generation_id == max {
                    for x in owned(m) {
                        claims.entry(x).or_default().insert(id.clone());
                    }
                }
            }
            claims
        }

        /// Members by id, each subscribed to the given topics (no prior ownership).
        pub(crate) fn members(subs: &[(&str, &[&str])]) -> BTreeMap<String, MemberSubscription> {
            subs.iter()
                .map(|(id, topics)| {
                    (
                        id.to_string(),
                        MemberSubscription::new(topics.iter().copied()),
                    )
                })
                .collect()
        }

        fn topic_name(i: usize) -> String {
            format!("t{i}")
        }

        /// Topics (1-5 with 1-20 partitions), members (1-8) with random subscriptions (a
        /// non-empty subset of the topics, sometimes plus a topic that does not exist), random
        /// prior ownership (sometimes invalid or conflicting) and generations, some static ids.
        /// With `identical`, every member subscribes to the same topics.
        pub(crate) fn group(identical: bool) -> impl Strategy<Value = Group> {
            let topics = prop::collection::vec(1..=20i32, 1..=5);
            let member = (
                any::<u8>(),
                any::<bool>(),
                prop::collection::vec((0..6usize, 0..24i32), 0..16),
                -1..4i32,
                prop::option::weighted(0.25, 0..20u8),
            );
            (topics, prop::collection::vec(member, 1..=8), any::<u8>()).prop_map(
                move |(counts, ms, shared_mask)| {
                    let partitions: BTreeMap<String, i32> = counts
                        .iter()
                        .enumerate()
                        .map(|(i, &n)| (topic_name(i), n))
                        .collect();
                    let n_topics = counts.len();
                    let subset = |mask: u8| -> Vec<String> {
                        let mut v: Vec<String> = (0..n_topics)
                            .filter(|i| mask & (1 << i) != 0)
                            .map(topic_name)
                            .collect();
                        if v.is_empty() {
                            v.push(topic_name(mask as usize % n_topics));
                        }
                        v
                    };
                    let mut members = BTreeMap::new();
                    for (i, (mask, ghost, owned, generation, instance)) in
                        ms.into_iter().enumerate()
                    {
                        let mut topics = subset(if identical { shared_mask } else { mask });
                        if ghost && !identical {
                            topics.push("ghost".into());
                        }
                        members.insert(
                            format!("m{i}"),
                            MemberSubscription {
                                topics,
                                owned_partitions: by_topic(
                                    &owned
                                        .into_iter()
                                        .map(|(t, p)| (topic_name(t), p))
                                        .collect::<Vec<_>>(),
                                ),
                                generation_id: generation,
                                group_instance_id: instance.map(|s| format!("static-{s}")),
                            },
                        );
                    }
                    Group {
                        partitions,
                        members,
                    }
                },
            )
        }

        /// Every partition of a topic someone subscribes to, sorted.
        pub(crate) fn subscribed_partitions(g: &Group) -> BTreeSet<(String, i32)> {
            let mut all = BTreeSet::new();
            for m in g.members.values() {
                for t in live_topics(m, &g.partitions) {
                    for p in 0..g.partitions[t] {
                        all.insert(tp(t, p));
                    }
                }
            }
            all
        }

        /// Checks that the plan has an entry per member, lists sorted, gives a partition to at
        /// most one member and only to a member subscribed to its topic, and (with `complete`)
        /// gives out every subscribed partition.
        pub(crate) fn check_valid(
            g: &Group,
            plan: &BTreeMap<String, Vec<(String, i32)>>,
            complete: bool,
        ) -> Result<(), TestCaseError> {
            prop_assert_eq!(
                plan.keys().collect::<Vec<_>>(),
                g.members.keys().collect::<Vec<_>>()
            );
            let mut seen = BTreeSet::new();
            for (id, list) in plan {
                let mut sorted = list.clone();
                sorted.sort();
                prop_assert_eq!(&sorted, list, "{} not sorted", id);
                let m = &g.members[id];
                for (t, p) in list {
                    prop_assert!(m.topics.contains(t), "{id} got {t}-{p} unsubscribed");
                    let n = g.partitions.get(t).copied().unwrap_or(0);
                    prop_assert!((0..n).contains(p), "{id} got {t}-{p}: no such partition");
                    prop_assert!(seen.insert((t.clone(), *p)), "{t}-{p} given twice");
                }
            }
            if complete {
                prop_assert_eq!(seen, subscribed_partitions(g));
            }
            Ok(())
        }

        /// Partition counts per member.
        pub(crate) fn loads(plan: &BTreeMap<String, Vec<(String, i32)>>) -> Vec<usize> {
            plan.values().map(Vec::len).collect()
        }

        /// Asserts that member loads differ by at most one.
        pub(crate) fn check_balanced(
            plan: &BTreeMap<String, Vec<(String, i32)>>,
        ) -> Result<(), TestCaseError> {
            let l = loads(plan);
            let (min, max) = (l.iter().min().unwrap(), l.iter().max().unwrap());
            prop_assert!(max - min <= 1, "unbalanced loads {:?}", l);
            Ok(())
        }
    }

    fn all_assignors() -> Vec<Box<dyn Assignor>> {
        ["range", "roundrobin", "sticky", "cooperative-sticky"]
            .into_iter()
            .map(|n| by_name(n).unwrap())
            .collect()
    }

    #[test]
    fn names_and_protocols() {
        for a in all_assignors() {
            let expected = if a.name() == "cooperative-sticky" {
                RebalanceProtocol::Cooperative
            } else {
                RebalanceProtocol::Eager
            };
            assert_eq!(a.protocol(), expected, "{}", a.name());
            assert_eq!(by_name(a.name()).unwrap().name(), a.name());
        }
        assert!(by_name("uniform").is_none());
    }

    #[test]
    fn static_members_are_ordered_first_by_instance_id() {
        let mut members = BTreeMap::new();
        members.insert("a".to_string(), MemberSubscription::new(["t"]));
        let mut z = MemberSubscription::new(["t"]);
        z.group_instance_id = Some("i-2".into());
        members.insert("z".to_string(), z);
        let mut y = MemberSubscription::new(["t"]);
        y.group_instance_id = Some("i-1".into());
        members.insert("y".to_string(), y);
        members.insert("b".to_string(), MemberSubscription::new(["t"]));
        assert_eq!(ordered_members(&members), ["y", "z", "a", "b"]);
    }

    #[test]
    fn no_members_or_no_topics() {
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let none = BTreeMap::new();
        let members = BTreeMap::from([
            ("a".to_string(), MemberSubscription::new(["missing"])),
            (
                "b".to_string(),
                MemberSubscription::new(Vec::<String>::new()),
            ),
        ]);
        for a in all_assignors() {
            assert!(a.assign(&partitions, &none).is_empty());
            let plan = a.assign(&partitions, &members);
            assert_eq!(plan.len(), 2);
            assert!(plan.values().all(Vec::is_empty), "{}", a.name());
        }
    }

    #[test]
    fn from_subscription_keeps_ownership() {
        let s = Subscription {
            topics: vec!["t".into()],
            owned_partitions: vec![tp("t", 1)],
            generation_id: 4,
            ..Default::default()
        };
        let m = MemberSubscription::from_subscription(s, Some("i".into()));
        assert_eq!(m.owned_partitions, [TopicPartitions::new("t", [1])]);
        assert_eq!(owned(&m), [tp("t", 1)]);
        assert_eq!(m.generation_id, 4);
        assert_eq!(m.group_instance_id.as_deref(), Some("i"));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn every_assignor_gives_valid_plans(g in group(false)) {
            for a in all_assignors() {
                let plan = a.assign(&g.partitions, &g.members);
                // The cooperative assignor may hold back partitions that change owner.
                let complete = a.protocol() == RebalanceProtocol::Eager;
                check_valid(&g, &plan, complete)?;
                // Same input, same plan: every member computing it would agree.
                prop_assert_eq!(a.assign(&g.partitions, &g.members), plan);
            }
        }

        #[test]
        fn identical_subscriptions_are_balanced(g in group(true)) {
            for name in ["roundrobin", "sticky"] {
                let plan = by_name(name).unwrap().assign(&g.partitions, &g.members);
                check_valid(&g, &plan, true)?;
                check_balanced(&plan)?;
            }
            // Range balances each topic on its own (it is not balanced across topics).
            let plan = RangeAssignor.assign(&g.partitions, &g.members);
            check_valid(&g, &plan, true)?;
            let topics = live_topics(g.members.values().next().unwrap(), &g.partitions);
            for t in topics {
                let per_topic: BTreeMap<String, Vec<(String, i32)>> = plan
                    .iter()
                    .map(|(id, l)| (id.clone(), l.iter().filter(|(x, _)| x == t).cloned().collect()))
                    .collect();
                check_balanced(&per_topic)?;
            }
        }
    }
}
