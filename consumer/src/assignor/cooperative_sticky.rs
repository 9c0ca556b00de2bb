//! The cooperative sticky assignor (`cooperative-sticky`, KIP-429).
//!
//! It plans exactly as [`StickyAssignor`](super::StickyAssignor), but for the cooperative
//! protocol, where members keep consuming during a rebalance. A partition must never have two
//! consumers at once, so a partition that changes owner takes two rebalances:
//! 1. The plan withholds it from its new owner (see [`withhold_moving_partitions`]); the old
//!    owner finds it in [`revoked`] (owned but no longer assigned), stops consuming it, commits,
//!    and, having revoked something, rejoins at once.
//! 2. That rejoin starts a follow-up rebalance in which nobody claims the partition any more, so
//!    the new owner receives it.

use std::collections::{BTreeMap, BTreeSet};

use super::sticky::sticky_plan;
use super::{Assignor, MemberSubscription, RebalanceProtocol};

/// The sticky plan, minus partitions still held by another member, for the cooperative
/// protocol.
#[derive(Debug, Clone, Copy, Default)]
pub struct CooperativeStickyAssignor;

impl Assignor for CooperativeStickyAssignor {
    fn name(&self) -> &'static str {
        "cooperative-sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Cooperative
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Vec<(String, i32)>> {
        let mut plan = sticky_plan(partitions_per_topic, members);
        withhold_moving_partitions(&mut plan, members);
        plan
    }
}

/// Removes from `plan` every partition given to a member while another member still lists it
/// in its `owned_partitions`, and returns them sorted. That other member will revoke it (it is
/// not assigned to it) and rejoin; the follow-up rebalance hands it over.
///
/// Claims count whatever their generation: a member with a stale claim may still be consuming
/// the partition, so the handover waits for its revocation.
pub fn withhold_moving_partitions(
    plan: &mut BTreeMap<String, Vec<(String, i32)>>,
    members: &BTreeMap<String, MemberSubscription>,
) -> Vec<(String, i32)> {
    let mut claimants: BTreeMap<(&str, i32), BTreeSet<&str>> = BTreeMap::new();
    for (id, m) in members {
        for (t, p) in &m.owned_partitions {
            claimants
                .entry((t.as_str(), *p))
                .or_default()
                .insert(id.as_str());
        }
    }
    let mut withheld = Vec::new();
    for (id, list) in plan.iter_mut() {
        list.retain(|(t, p)| {
            let held_elsewhere = claimants
                .get(&(t.as_str(), *p))
                .is_some_and(|c| c.iter().any(|other| *other != id.as_str()));
            if held_elsewhere {
                withheld.push((t.clone(), *p));
            }
            !held_elsewhere
        });
    }
    withheld.sort();
    withheld
}

/// The partitions a member must give up: those it owns that are not in its new assignment,
/// sorted and without duplicates. A member revoking anything under the cooperative protocol
/// rejoins the group right after, to start the follow-up rebalance.
pub fn revoked(owned: &[(String, i32)], assigned: &[(String, i32)]) -> Vec<(String, i32)> {
    let assigned: BTreeSet<&(String, i32)> = assigned.iter().collect();
    owned
        .iter()
        .filter(|x| !assigned.contains(x))
        .cloned()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::StickyAssignor;
    use super::super::tests::support::*;
    use super::*;
    use proptest::prelude::*;

    fn member(topics: &[&str], owned: &[(&str, i32)]) -> MemberSubscription {
        MemberSubscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned_partitions: owned.iter().map(|(t, p)| tp(t, *p)).collect(),
            generation_id: 3,
            group_instance_id: None,
        }
    }

    #[test]
    fn joining_member_waits_for_revocation() {
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let mut members = BTreeMap::from([
            (
                "a".to_string(),
                member(&["t"], &[("t", 0), ("t", 1), ("t", 2), ("t", 3)]),
            ),
            ("b".to_string(), member(&["t"], &[])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        // a keeps two and revokes two; b gets nothing yet.
        assert_eq!(plan["a"].len(), 2);
        assert!(plan["b"].is_empty());
        let gone = revoked(&members["a"].owned_partitions, &plan["a"]);
        assert_eq!(gone.len(), 2);
        // a revokes and rejoins: the follow-up rebalance gives b the two partitions.
        for (id, m) in members.iter_mut() {
            m.owned_partitions = plan[id].clone();
            m.generation_id = 4;
        }
        let next = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(next["a"], plan["a"]);
        assert_eq!(next["b"], gone);
    }

    #[test]
    fn partitions_nobody_holds_are_given_at_once() {
        let partitions = BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), member(&["t", "u"], &[("t", 0), ("t", 1)])),
            ("b".to_string(), member(&["t", "u"], &[])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["a"], [tp("t", 0), tp("t", 1)]);
        assert_eq!(plan["b"], [tp("u", 0), tp("u", 1)]);
    }

    #[test]
    fn revoked_is_owned_minus_assigned() {
        let owned = [tp("a", 1), tp("a", 0), tp("b", 2), tp("a", 0)];
        let assigned = [tp("a", 1), tp("c", 0)];
        assert_eq!(revoked(&owned, &assigned), [tp("a", 0), tp("b", 2)]);
        assert!(revoked(&[], &assigned).is_empty());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn no_partition_changes_hands_within_a_round(g in group(false)) {
            let sticky = StickyAssignor.assign(&g.partitions, &g.members);
            let plan = CooperativeStickyAssignor.assign(&g.partitions, &g.members);
            check_valid(&g, &plan, false)?;
            // Nothing goes to a member while another still holds it.
            for (id, list) in &plan {
                for x in list {
                    for (other, m) in &g.members {
                        prop_assert!(
                            other == id || !m.owned_partitions.contains(x),
                            "{x:?} given to {id} while {other} holds it"
                        );
                    }
                }
            }
            // The plan is the sticky one minus the withheld partitions, and every withheld
            // partition is revoked by someone.
            let mut expected = sticky.clone();
            let withheld = withhold_moving_partitions(&mut expected, &g.members);
            prop_assert_eq!(&plan, &expected);
            let all_revoked: BTreeSet<(String, i32)> = g
                .members
                .iter()
                .flat_map(|(id, m)| revoked(&m.owned_partitions, &plan[id]))
                .collect();
            for x in &withheld {
                prop_assert!(all_revoked.contains(x), "{x:?} withheld but nobody revokes it");
            }

            // Members revoke, keep the rest and rejoin: the follow-up round completes the plan
            // without withholding anything.
            let mut g2 = g.clone();
            for (id, m) in g2.members.iter_mut() {
                m.owned_partitions = plan[id].clone();
                m.generation_id = 10;
            }
            let next = CooperativeStickyAssignor.assign(&g2.partitions, &g2.members);
            check_valid(&g2, &next, true)?;
            for (id, list) in &plan {
                for x in list {
                    prop_assert!(next[id].contains(x), "{id} lost {x:?} in the follow-up");
                }
            }
        }
    }
}
