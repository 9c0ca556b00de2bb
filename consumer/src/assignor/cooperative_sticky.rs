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
use super::{Assignor, Claim, MemberSubscription, RebalanceProtocol, claim_generation};

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

/// Removes from `plan` every partition given to a member while another member still holds it,
/// and returns them sorted. That other member will revoke it (it is not assigned to it) and
/// rejoin; the follow-up rebalance hands it over.
///
/// Claims are validated by generation as Kafka's `AbstractStickyAssignor` does (KIP-341,
/// KIP-429): only members of the highest generation any member reports hold what they list. A
/// member of an older generation missed a rebalance; its claims are stale and hold nothing back
/// (it revokes whatever it is not assigned when its assignment arrives), so a stale member
/// cannot keep partitions from their owners. A partition two members of that generation both
/// claim goes to neither (nor anyone else) this round: both revoke it, and the follow-up
/// rebalance gives it out.
pub fn withhold_moving_partitions(
    plan: &mut BTreeMap<String, Vec<(String, i32)>>,
    members: &BTreeMap<String, MemberSubscription>,
) -> Vec<(String, i32)> {
    let generation = claim_generation(members);
    let keep: Vec<Vec<bool>> = {
        // Only partitions the plan gives out matter: the index is as large as the plan, however
        // much members claim.
        let mut claims: BTreeMap<(&str, i32), Claim<&str>> = plan
            .values()
            .flatten()
            .map(|(t, p)| ((t.as_str(), *p), Claim::Unclaimed))
            .collect();
        for (id, m) in members {
            if m.generation_id != generation {
                continue;
            }
            for (t, p) in m.owned() {
                if let Some(c) = claims.get_mut(&(t, p)) {
                    c.add(id.as_str());
                }
            }
        }
        plan.iter()
            .map(|(id, list)| {
                list.iter()
                    .map(|(t, p)| match claims[&(t.as_str(), *p)] {
                        Claim::Unclaimed => true,
                        Claim::One(holder) => holder == id.as_str(),
                        Claim::Conflict => false,
                    })
                    .collect()
            })
            .collect()
    };
    let mut withheld = Vec::new();
    for (list, keep) in plan.values_mut().zip(keep) {
        let mut keep = keep.into_iter();
        list.retain(|x| {
            let k = keep.next().unwrap_or(true);
            if !k {
                withheld.push(x.clone());
            }
            k
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
    use super::super::tests::support::*;
    use super::super::{StickyAssignor, by_topic};
    use super::*;
    use proptest::prelude::*;

    fn member(topics: &[&str], owned: &[(&str, i32)]) -> MemberSubscription {
        member_of(3, topics, owned)
    }

    fn member_of(generation: i32, topics: &[&str], owned: &[(&str, i32)]) -> MemberSubscription {
        let owned: Vec<(String, i32)> = owned.iter().map(|(t, p)| tp(t, *p)).collect();
        MemberSubscription::new(topics.iter().copied()).with_owned(&owned, generation)
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
        let gone = revoked(&owned(&members["a"]), &plan["a"]);
        assert_eq!(gone.len(), 2);
        // a revokes and rejoins: the follow-up rebalance gives b the two partitions.
        for (id, m) in members.iter_mut() {
            m.owned_partitions = by_topic(&plan[id]);
            m.generation_id = 4;
        }
        let next = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(next["a"], plan["a"]);
        assert_eq!(next["b"], gone);
    }

    #[test]
    fn a_stale_claim_does_not_keep_a_partition_from_its_owner() {
        // a and b are members of generation 7 and own t-0 and t-1. s missed a rebalance: it
        // still claims both from generation 5.
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), member_of(7, &["t"], &[("t", 0)])),
            ("b".to_string(), member_of(7, &["t"], &[("t", 1)])),
            ("s".to_string(), member_of(5, &["t"], &[("t", 0), ("t", 1)])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        // The current owners keep them; the stale member gets nothing and revokes its claims.
        assert_eq!(plan["a"], [tp("t", 0)]);
        assert_eq!(plan["b"], [tp("t", 1)]);
        assert!(plan["s"].is_empty());
        assert_eq!(revoked(&owned(&members["s"]), &plan["s"]).len(), 2);
        let mut sticky = StickyAssignor.assign(&partitions, &members);
        assert!(withhold_moving_partitions(&mut sticky, &members).is_empty());

        // With a's claim at generation 7 and the stale one alone on t-1 (b gone), t-1 is
        // nobody's: it is given out at once, to whoever balance picks, not withheld for s.
        let members = BTreeMap::from([
            ("a".to_string(), member_of(7, &["t"], &[("t", 0)])),
            ("s".to_string(), member_of(5, &["t"], &[("t", 0), ("t", 1)])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["a"], [tp("t", 0)]);
        assert_eq!(plan["s"], [tp("t", 1)]);
    }

    #[test]
    fn a_stale_claim_is_not_honoured_even_alone() {
        // The stale member is the only one claiming t-1 and t-2, but a member of a newer
        // generation exists: the claims are void, and the plan is balanced as if unowned.
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let members = BTreeMap::from([
            ("a".to_string(), member_of(9, &["t"], &[("t", 0)])),
            (
                "s".to_string(),
                member_of(2, &["t"], &[("t", 1), ("t", 2), ("t", 3)]),
            ),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["a"].len() + plan["s"].len(), 4);
        assert!(plan["a"].contains(&tp("t", 0)));
        assert_eq!(plan["a"].len(), 2, "balanced: {plan:?}");
    }

    #[test]
    fn duplicate_claims_of_the_highest_generation_go_to_nobody_this_round() {
        // a and b both claim t-1 in generation 4 (it cannot be both theirs): neither keeps it,
        // nor does the newcomer c get it while they may still be consuming it.
        let partitions = BTreeMap::from([("t".to_string(), 3)]);
        let mut members = BTreeMap::from([
            ("a".to_string(), member_of(4, &["t"], &[("t", 0), ("t", 1)])),
            ("b".to_string(), member_of(4, &["t"], &[("t", 1), ("t", 2)])),
            ("c".to_string(), member_of(-1, &["t"], &[])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["a"], [tp("t", 0)]);
        assert_eq!(plan["b"], [tp("t", 2)]);
        assert!(plan["c"].is_empty(), "{plan:?}");
        // Both revoke it and rejoin; the follow-up round gives it out.
        assert_eq!(revoked(&owned(&members["a"]), &plan["a"]), [tp("t", 1)]);
        assert_eq!(revoked(&owned(&members["b"]), &plan["b"]), [tp("t", 1)]);
        for (id, m) in members.iter_mut() {
            m.owned_partitions = by_topic(&plan[id]);
            m.generation_id = 5;
        }
        let next = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(next["a"], [tp("t", 0)]);
        assert_eq!(next["b"], [tp("t", 2)]);
        assert_eq!(next["c"], [tp("t", 1)]);

        // Two claimants and nobody else: neither keeps it this round either.
        let partitions = BTreeMap::from([("t".to_string(), 1)]);
        let members = BTreeMap::from([
            ("a".to_string(), member_of(4, &["t"], &[("t", 0)])),
            ("b".to_string(), member_of(4, &["t"], &[("t", 0)])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        assert!(plan.values().all(Vec::is_empty), "{plan:?}");
    }

    #[test]
    fn a_claim_listed_twice_by_one_member_is_still_its_own() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), member_of(4, &["t"], &[("t", 0), ("t", 0)])),
            ("b".to_string(), member_of(4, &["t"], &[("t", 1)])),
        ]);
        let plan = CooperativeStickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["a"], [tp("t", 0)]);
        assert_eq!(plan["b"], [tp("t", 1)]);
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
            // Nothing goes to a member while another member of the highest generation holds
            // it; stale claims hold nothing back.
            let claims = valid_claims(&g.members);
            for (id, list) in &plan {
                for x in list {
                    if let Some(holders) = claims.get(x) {
                        prop_assert!(
                            holders.iter().all(|h| h == id),
                            "{x:?} given to {id} while {holders:?} hold it"
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
                .flat_map(|(id, m)| revoked(&owned(m), &plan[id]))
                .collect();
            for x in &withheld {
                prop_assert!(all_revoked.contains(x), "{x:?} withheld but nobody revokes it");
            }

            // Members revoke, keep the rest and rejoin: the follow-up round completes the plan
            // without withholding anything.
            let mut g2 = g.clone();
            for (id, m) in g2.members.iter_mut() {
                m.owned_partitions = by_topic(&plan[id]);
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
