//! The sticky assignor (`sticky`, KIP-54) and the plan it shares with `cooperative-sticky`.
//!
//! Two goals, in this order:
//! 1. Balance: member loads are as even as the subscriptions allow. With identical subscriptions
//!    they differ by at most one; in general no partition can be passed along a chain of members
//!    (each subscribed to the partition it receives) so that a member loses one and another
//!    with at least two fewer gains one.
//! 2. Stickiness: among the balanced plans, as many partitions as possible stay with their
//!    previous owner.
//!
//! Previous ownership comes from the members' `owned_partitions`. When several members claim a
//! partition, the claim from the highest generation wins (KIP-341); claims tied at the highest
//! generation cancel out and the partition counts as unowned. Claims on topics the member no
//! longer subscribes to, or on partitions that no longer exist, are ignored.
//!
//! The plan is computed as a minimum-cost flow: partitions flow to members, a member's cost is
//! convex in its load (weighted so that balance always outweighs stickiness) and keeping a
//! partition with its previous owner earns a unit. A greedy start is refined by cancelling
//! negative cycles (Bellman-Ford over the members) until none is left, at which point the plan
//! is optimal for both goals rather than merely locally improved.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_protocol::primitives::{put_length, put_nullable_string};
use kafkawire_protocol::{DecodeError, DecodeErrorKind, EncodeError, Reader};

use super::{
    Assignor, MemberSubscription, RebalanceProtocol, empty_plan, live_topics, ordered_members,
    sort_plan,
};

/// Balanced plans that keep partitions with their previous owners (KIP-54), for the eager
/// protocol.
///
/// Eager members revoke everything before they join, so a member must still list the
/// partitions it held before revoking in its subscription's `owned_partitions`. Kafka's Java
/// clients instead carry them in the subscription's user data (see [`decode_sticky_user_data`]);
/// a leader can fill `owned_partitions` and `generation_id` from it when they are empty.
#[derive(Debug, Clone, Copy, Default)]
pub struct StickyAssignor;

impl Assignor for StickyAssignor {
    fn name(&self) -> &'static str {
        "sticky"
    }

    fn protocol(&self) -> RebalanceProtocol {
        RebalanceProtocol::Eager
    }

    fn assign(
        &self,
        partitions_per_topic: &BTreeMap<String, i32>,
        members: &BTreeMap<String, MemberSubscription>,
    ) -> BTreeMap<String, Vec<(String, i32)>> {
        sticky_plan(partitions_per_topic, members)
    }
}

/// The balanced, sticky plan shared by `sticky` and `cooperative-sticky`.
pub(super) fn sticky_plan(
    partitions_per_topic: &BTreeMap<String, i32>,
    members: &BTreeMap<String, MemberSubscription>,
) -> BTreeMap<String, Vec<(String, i32)>> {
    let mut plan = empty_plan(members);
    let order = ordered_members(members);
    let subscribed: Vec<BTreeSet<&str>> = order
        .iter()
        .map(|id| live_topics(&members[*id], partitions_per_topic))
        .collect();
    let topics: Vec<&str> = subscribed
        .iter()
        .flatten()
        .copied()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    if topics.is_empty() {
        return plan;
    }

    let mut solver = Solver::new(partitions_per_topic, &topics, &subscribed);
    let generations: Vec<i32> = order.iter().map(|id| members[*id].generation_id).collect();
    let claims: Vec<&[(String, i32)]> = order
        .iter()
        .map(|id| members[*id].owned_partitions.as_slice())
        .collect();
    solver.resolve_prior(&topics, &claims, &generations, &subscribed);
    solver.solve();

    for (p, &owner) in solver.owner.iter().enumerate() {
        let t = solver.part_topic[p];
        let partition = (p - solver.topic_start[t]) as i32;
        plan.get_mut(order[owner])
            .expect("every member has an entry")
            .push((topics[t].to_string(), partition));
    }
    sort_plan(&mut plan);
    plan
}

/// Marks a partition without an owner yet.
const NOBODY: usize = usize::MAX;

/// The assignment problem over dense indices: members `0..m` (in dealing order), topics
/// `0..topics.len()`, partitions numbered topic by topic.
struct Solver {
    m: usize,
    /// First partition index of each topic, plus the total at the end.
    topic_start: Vec<usize>,
    /// Topic of each partition.
    part_topic: Vec<usize>,
    /// Members subscribed to each topic, ascending.
    eligible: Vec<Vec<usize>>,
    /// Topics each member subscribes to.
    member_topics: Vec<Vec<usize>>,
    /// The previous owner of each partition after conflicts are settled.
    prior: Vec<Option<usize>>,
    /// The current owner of each partition.
    owner: Vec<usize>,
    /// Partitions per member.
    load: Vec<usize>,
}

impl Solver {
    fn new(
        partitions_per_topic: &BTreeMap<String, i32>,
        topics: &[&str],
        subscribed: &[BTreeSet<&str>],
    ) -> Self {
        let m = subscribed.len();
        let mut topic_start = Vec::with_capacity(topics.len() + 1);
        let mut part_topic = Vec::new();
        for (t, topic) in topics.iter().enumerate() {
            topic_start.push(part_topic.len());
            let n = partitions_per_topic[*topic] as usize;
            part_topic.extend(std::iter::repeat_n(t, n));
        }
        topic_start.push(part_topic.len());
        let mut eligible = vec![Vec::new(); topics.len()];
        let mut member_topics = vec![Vec::new(); m];
        for (i, subs) in subscribed.iter().enumerate() {
            for (t, topic) in topics.iter().enumerate() {
                if subs.contains(topic) {
                    eligible[t].push(i);
                    member_topics[i].push(t);
                }
            }
        }
        let total = part_topic.len();
        Solver {
            m,
            topic_start,
            part_topic,
            eligible,
            member_topics,
            prior: vec![None; total],
            owner: vec![NOBODY; total],
            load: vec![0; m],
        }
    }

    /// Settles previous ownership from each member's claims: the highest generation wins, a tie
    /// at the highest generation leaves the partition unowned (KIP-341).
    fn resolve_prior(
        &mut self,
        topics: &[&str],
        claims: &[&[(String, i32)]],
        generations: &[i32],
        subscribed: &[BTreeSet<&str>],
    ) {
        let mut best: Vec<Option<(i32, Option<usize>)>> = vec![None; self.part_topic.len()];
        for (i, owned) in claims.iter().enumerate() {
            let generation = generations[i];
            let owned: BTreeSet<(&str, i32)> =
                owned.iter().map(|(t, p)| (t.as_str(), *p)).collect();
            for (topic, p) in owned {
                if !subscribed[i].contains(topic) {
                    continue;
                }
                let Ok(t) = topics.binary_search(&topic) else {
                    continue;
                };
                let n = self.topic_start[t + 1] - self.topic_start[t];
                let Ok(p) = usize::try_from(p) else { continue };
                if p >= n {
                    continue;
                }
                let slot = &mut best[self.topic_start[t] + p];
                *slot = match *slot {
                    None => Some((generation, Some(i))),
                    Some((g, _)) if generation > g => Some((generation, Some(i))),
                    Some((g, _)) if generation == g => Some((g, None)),
                    keep => keep,
                };
            }
        }
        self.prior = best.into_iter().map(|b| b.and_then(|(_, o)| o)).collect();
    }

    fn give(&mut self, p: usize, to: usize) {
        let from = self.owner[p];
        if from != NOBODY {
            self.load[from] -= 1;
        }
        self.owner[p] = to;
        self.load[to] += 1;
    }

    fn solve(&mut self) {
        self.start();
        self.direct_moves();
        self.cancel_negative_cycles();
    }

    /// Keeps every partition with its previous owner and hands the rest, the partitions with
    /// the fewest candidates first, to the least loaded candidate.
    fn start(&mut self) {
        let mut unowned = Vec::new();
        for p in 0..self.owner.len() {
            match self.prior[p] {
                Some(i) => self.give(p, i),
                None => unowned.push(p),
            }
        }
        unowned.sort_by_key(|&p| (self.eligible[self.part_topic[p]].len(), p));
        for p in unowned {
            let to = *self.eligible[self.part_topic[p]]
                .iter()
                .min_by_key(|&&i| (self.load[i], i))
                .expect("only subscribed topics are planned");
            self.give(p, to);
        }
    }

    /// Moves single partitions from a member to one with at least two fewer, preferring to
    /// return a partition to its previous owner and to move one its holder did not own before.
    /// A fast first pass: it fixes the bulk of a join or a subscription change so that the
    /// exact pass has little left to do.
    fn direct_moves(&mut self) {
        loop {
            let (min, max) = (
                *self.load.iter().min().expect("members"),
                *self.load.iter().max().expect("members"),
            );
            if max < min + 2 {
                return;
            }
            let mut receivers: Vec<usize> = (0..self.m).collect();
            receivers.sort_by_key(|&a| (self.load[a], a));
            let mut moved = false;
            for a in receivers {
                let floor = self.load[a] + 2;
                let mut best: Option<((bool, bool, usize), usize)> = None;
                for &t in &self.member_topics[a] {
                    for p in self.topic_start[t]..self.topic_start[t + 1] {
                        let b = self.owner[p];
                        if self.load[b] < floor {
                            continue;
                        }
                        let score = (
                            self.prior[p] == Some(a),
                            self.prior[p] != Some(b),
                            self.load[b],
                        );
                        if best.is_none_or(|(s, _)| score > s) {
                            best = Some((score, p));
                        }
                    }
                }
                if let Some((_, p)) = best {
                    self.give(p, a);
                    moved = true;
                    break;
                }
            }
            if !moved {
                return;
            }
        }
    }

    /// Cancels negative cycles of the residual graph until none is left.
    ///
    /// Nodes are the members plus a sink. An edge `x -> y` moves one partition that `x` holds
    /// and `y` subscribes to, costing +1 if `x` owned it before and -1 if `y` did. An edge
    /// `a -> sink` adds a unit of load to `a`, `sink -> c` removes one from `c`, costing the
    /// change of `big * load²`; `big` exceeds the stickiness any simple cycle can gain, so a
    /// cycle that moves load from `c` to a member with at least two fewer is always negative,
    /// and one that moves it the other way never is. With no negative cycle the plan minimises
    /// `big * Σ load² - kept`, hence is balanced first and sticky second.
    fn cancel_negative_cycles(&mut self) {
        let m = self.m;
        if self.owner.len() >= 1 << 30 {
            // Beyond what a packed edge holds; the direct moves are as far as it goes.
            return;
        }
        let mut held: Vec<Vec<usize>> = vec![Vec::new(); m];
        for (p, &x) in self.owner.iter().enumerate() {
            held[x].push(p);
        }
        // The cheapest partition to move for each ordered pair of members. A row depends only
        // on what its member holds, so a cancelled cycle refreshes just the rows it touched.
        let mut pair = vec![NO_EDGE; m * m];
        for x in 0..m {
            self.fill_row(x, &held[x], &mut pair[x * m..(x + 1) * m]);
        }
        loop {
            let graph = Residual {
                m,
                big: m as i64 + 1,
                pair: &pair,
                load: &self.load,
            };
            let cycles = graph.negative_cycles();
            if cycles.is_empty() {
                return;
            }
            let mut touched = BTreeSet::new();
            for cycle in cycles {
                for (i, &x) in cycle.iter().enumerate() {
                    let y = cycle[(i + 1) % cycle.len()];
                    if x == m || y == m {
                        continue; // an edge to or from the sink moves nothing itself
                    }
                    let (p, _) = unpack(pair[x * m + y]);
                    self.give(p, y);
                    held[x].retain(|&q| q != p);
                    held[y].push(p);
                    touched.extend([x, y]);
                }
            }
            for x in touched {
                self.fill_row(x, &held[x], &mut pair[x * m..(x + 1) * m]);
            }
        }
    }

    /// Fills `row` (indexed by receiving member) with the cheapest of `held` (partitions member
    /// `x` holds) to move to each other member: cost +1 if `x` owned it before, -1 if the
    /// receiver did; ties go to the lowest partition index.
    fn fill_row(&self, x: usize, held: &[usize], row: &mut [u32]) {
        row.fill(NO_EDGE);
        for &p in held {
            let loss = i64::from(self.prior[p] == Some(x));
            for &y in &self.eligible[self.part_topic[p]] {
                if y == x {
                    continue;
                }
                let cost = loss - i64::from(self.prior[p] == Some(y));
                let better = row[y] == NO_EDGE || {
                    let (q, c) = unpack(row[y]);
                    (cost, p) < (c, q)
                };
                if better {
                    row[y] = pack(p, cost);
                }
            }
        }
    }
}

/// No member-to-member edge.
const NO_EDGE: u32 = u32::MAX;

/// A member-to-member edge: the partition it moves (below 2^30) and its cost (-1, 0 or 1), in
/// four bytes so that the member-pair matrix stays small.
fn pack(partition: usize, cost: i64) -> u32 {
    ((partition as u32) << 2) | (cost + 1) as u32
}

fn unpack(edge: u32) -> (usize, i64) {
    ((edge >> 2) as usize, i64::from(edge & 3) - 1)
}

/// The residual graph: nodes `0..m` are the members, node `m` the sink.
struct Residual<'a> {
    m: usize,
    big: i64,
    /// Packed member-to-member edges, row `x` holding the edges out of member `x`.
    pair: &'a [u32],
    load: &'a [usize],
}

impl Residual<'_> {
    fn cost(&self, from: usize, to: usize) -> i64 {
        if to == self.m {
            self.big * (2 * self.load[from] as i64 + 1)
        } else if from == self.m {
            -self.big * (2 * self.load[to] as i64 - 1)
        } else {
            unpack(self.pair[from * self.m + to]).1
        }
    }

    fn for_each_edge(&self, mut f: impl FnMut(usize, usize, i64)) {
        let m = self.m;
        for x in 0..m {
            for (y, &e) in self.pair[x * m..(x + 1) * m].iter().enumerate() {
                if e != NO_EDGE {
                    f(x, y, unpack(e).1);
                }
            }
        }
        for a in 0..m {
            f(a, m, self.cost(a, m));
            if self.load[a] > 0 {
                f(m, a, self.cost(m, a));
            }
        }
    }

    /// Vertex-disjoint cycles of negative total cost, each as its nodes in order (the last
    /// leading back to the first); empty when the graph has none.
    ///
    /// Bellman-Ford from a virtual source joined to every node, looking for cycles in the
    /// predecessor graph after every round instead of waiting for round `m + 1`: any cycle there
    /// is negative, and one usually shows up within a few rounds. Cycles of the predecessor
    /// graph never share a node, so they can all be cancelled at once.
    fn negative_cycles(&self) -> Vec<Vec<usize>> {
        let nodes = self.m + 1;
        let mut dist = vec![0i64; nodes];
        let mut pred = vec![usize::MAX; nodes];
        for _ in 0..=nodes {
            let mut relaxed = false;
            self.for_each_edge(|u, v, w| {
                let d = dist[u] + w;
                if d < dist[v] {
                    dist[v] = d;
                    pred[v] = u;
                    relaxed = true;
                }
            });
            if !relaxed {
                return Vec::new();
            }
            let cycles = self.predecessor_cycles(&pred);
            if !cycles.is_empty() {
                return cycles;
            }
        }
        // Unreachable: after that many rounds that still relax, the predecessor graph cycles.
        debug_assert!(false, "Bellman-Ford did not settle and found no cycle");
        Vec::new()
    }

    /// The cycles of the predecessor graph (each node has at most one predecessor), kept only
    /// if negative.
    fn predecessor_cycles(&self, pred: &[usize]) -> Vec<Vec<usize>> {
        const UNSEEN: usize = usize::MAX;
        // The walk that first reached each node, to tell a new cycle from an old path.
        let mut walk = vec![UNSEEN; pred.len()];
        let mut cycles = Vec::new();
        for start in 0..pred.len() {
            let mut x = start;
            while walk[x] == UNSEEN {
                walk[x] = start;
                if pred[x] == usize::MAX {
                    break;
                }
                x = pred[x];
            }
            if walk[x] != start || pred[x] == usize::MAX {
                continue;
            }
            // This walk came back to `x`: collect the cycle through it.
            let mut cycle = vec![x];
            let mut y = pred[x];
            while y != x {
                cycle.push(y);
                y = pred[y];
            }
            cycle.reverse();
            let cost: i64 = (0..cycle.len())
                .map(|i| self.cost(cycle[i], cycle[(i + 1) % cycle.len()]))
                .sum();
            debug_assert!(cost < 0, "predecessor cycle of cost {cost}");
            if cost < 0 {
                cycles.push(cycle);
            }
        }
        cycles
    }
}

/// The user data Kafka's Java `StickyAssignor` puts in its subscription: the member's previous
/// assignment and, from its version 1, the generation it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StickyUserData {
    /// Partitions the member held, `(topic, partition)`.
    pub previous_assignment: Vec<(String, i32)>,
    /// The generation of that assignment, if known.
    pub generation: Option<i32>,
}

/// Encodes [`StickyUserData`] in its version 1 layout: an array of `(topic string, partitions
/// int32 array)` then an int32 generation (-1 when unknown). It has no version prefix.
///
/// # Errors
/// [`EncodeError::TooLong`] for a topic name or list too long for its length prefix.
pub fn encode_sticky_user_data(data: &StickyUserData) -> Result<Bytes, EncodeError> {
    let mut by_topic: Vec<(&str, Vec<i32>)> = Vec::new();
    for (topic, p) in &data.previous_assignment {
        match by_topic.iter_mut().find(|(t, _)| t == topic) {
            Some((_, ps)) => ps.push(*p),
            None => by_topic.push((topic, vec![*p])),
        }
    }
    let mut buf = BytesMut::new();
    put_length(
        &mut buf,
        Some(by_topic.len()),
        false,
        true,
        "previous_assignment",
    )?;
    for (topic, ps) in by_topic {
        put_nullable_string(&mut buf, Some(topic), false, "topic")?;
        put_length(&mut buf, Some(ps.len()), false, true, "partitions")?;
        for p in ps {
            buf.put_i32(p);
        }
    }
    buf.put_i32(data.generation.unwrap_or(-1));
    Ok(buf.freeze())
}

/// Decodes [`StickyUserData`] in version 1 (with the generation) or version 0 (without). A
/// negative generation reads as unknown.
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated, invalid, or longer than version 1.
pub fn decode_sticky_user_data(bytes: Bytes) -> Result<StickyUserData, DecodeError> {
    const WHAT: &str = "StickyAssignorUserData";
    let mut r = Reader::new(bytes);
    let mut previous_assignment = Vec::new();
    let topics = r
        .array_len(false, WHAT)?
        .ok_or_else(|| r.error(WHAT, DecodeErrorKind::UnexpectedNull))?;
    for _ in 0..topics {
        let topic = r.string(false, WHAT)?;
        let n = r
            .array_len(false, WHAT)?
            .ok_or_else(|| r.error(WHAT, DecodeErrorKind::UnexpectedNull))?;
        for _ in 0..n {
            previous_assignment.push((topic.clone(), r.i32(WHAT)?));
        }
    }
    let generation = match r.remaining() {
        0 => None,
        4 => Some(r.i32(WHAT)?).filter(|g| *g >= 0),
        n => {
            return Err(r.error(
                WHAT,
                DecodeErrorKind::Invalid(format!("{n} bytes left over")),
            ));
        }
    };
    Ok(StickyUserData {
        previous_assignment,
        generation,
    })
}

#[cfg(test)]
mod tests {
    use super::super::tests::support::*;
    use super::*;
    use proptest::prelude::*;

    type Plan = BTreeMap<String, Vec<(String, i32)>>;

    fn member(topics: &[&str], owned: &[(&str, i32)], generation: i32) -> MemberSubscription {
        MemberSubscription {
            topics: topics.iter().map(|t| t.to_string()).collect(),
            owned_partitions: owned.iter().map(|(t, p)| tp(t, *p)).collect(),
            generation_id: generation,
            group_instance_id: None,
        }
    }

    fn kept(plan: &Plan, id: &str, owned: &[(String, i32)]) -> usize {
        plan[id].iter().filter(|x| owned.contains(x)).count()
    }

    #[test]
    fn kafka_docs_member_leaves() {
        // Kafka's documented StickyAssignor example: t0..t3 with two partitions each, C1 leaves
        // a balanced group; C0 and C2 keep everything they had and split C1's partitions.
        let partitions: BTreeMap<String, i32> = (0..4).map(|t| (format!("t{t}"), 2)).collect();
        let all = ["t0", "t1", "t2", "t3"];
        let c0 = [("t0", 0), ("t1", 1), ("t3", 0)];
        let c2 = [("t1", 0), ("t2", 1)];
        let members = BTreeMap::from([
            ("C0".to_string(), member(&all, &c0, 1)),
            ("C2".to_string(), member(&all, &c2, 1)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["C0"].len(), 4);
        assert_eq!(plan["C2"].len(), 4);
        assert_eq!(kept(&plan, "C0", &members["C0"].owned_partitions), 3);
        assert_eq!(kept(&plan, "C2", &members["C2"].owned_partitions), 2);
    }

    #[test]
    fn member_joins_takes_from_the_fullest() {
        let partitions = BTreeMap::from([("t".to_string(), 6)]);
        let members = BTreeMap::from([
            (
                "a".to_string(),
                member(&["t"], &[("t", 0), ("t", 1), ("t", 2)], 3),
            ),
            (
                "b".to_string(),
                member(&["t"], &[("t", 3), ("t", 4), ("t", 5)], 3),
            ),
            ("c".to_string(), member(&["t"], &[], -1)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        assert_eq!(loads(&plan), [2, 2, 2]);
        assert_eq!(kept(&plan, "a", &members["a"].owned_partitions), 2);
        assert_eq!(kept(&plan, "b", &members["b"].owned_partitions), 2);
    }

    #[test]
    fn higher_generation_wins_a_conflict() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), member(&["t"], &[("t", 1)], 2)),
            ("b".to_string(), member(&["t"], &[("t", 1)], 5)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["b"], [tp("t", 1)]);
        assert_eq!(plan["a"], [tp("t", 0)]);
    }

    #[test]
    fn unsubscribed_and_unknown_claims_are_ignored() {
        let partitions = BTreeMap::from([("t".to_string(), 2), ("u".to_string(), 2)]);
        let members = BTreeMap::from([
            // a owned all of u and a partition that no longer exists, but now wants only t.
            (
                "a".to_string(),
                member(&["t"], &[("u", 0), ("u", 1), ("t", 7), ("t", -1)], 4),
            ),
            ("b".to_string(), member(&["t", "u"], &[("t", 0)], 4)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        // Balance comes first: b gives up t-0, the only way to reach two partitions each.
        assert_eq!(plan["a"], [tp("t", 0), tp("t", 1)]);
        assert_eq!(plan["b"], [tp("u", 0), tp("u", 1)]);
        // With a third partition of t, b keeps t-0 and a takes t-1 and t-2.
        let partitions = BTreeMap::from([("t".to_string(), 3), ("u".to_string(), 1)]);
        let plan = StickyAssignor.assign(&partitions, &members);
        assert_eq!(plan["a"], [tp("t", 1), tp("t", 2)]);
        assert_eq!(plan["b"], [tp("t", 0), tp("u", 0)]);
    }

    #[test]
    fn balance_needs_a_chain_of_moves() {
        // a only takes t0, c only t1; b holds the only t0 partition. The balanced plan needs
        // b to pass t0-0 to a and take a t1 partition from c.
        let partitions = BTreeMap::from([("t0".to_string(), 1), ("t1".to_string(), 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), member(&["t0"], &[], 1)),
            ("b".to_string(), member(&["t0", "t1"], &[("t0", 0)], 1)),
            ("c".to_string(), member(&["t1"], &[("t1", 0), ("t1", 1)], 1)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        assert_eq!(loads(&plan), [1, 1, 1]);
        assert_eq!(plan["a"], [tp("t0", 0)]);
    }

    #[test]
    fn sticky_user_data_round_trip_and_v0() {
        let data = StickyUserData {
            previous_assignment: vec![tp("a", 1), tp("a", 3), tp("b", 0)],
            generation: Some(9),
        };
        let bytes = encode_sticky_user_data(&data).unwrap();
        assert_eq!(decode_sticky_user_data(bytes.clone()).unwrap(), data);
        let v0 = bytes.slice(..bytes.len() - 4);
        let back = decode_sticky_user_data(v0).unwrap();
        assert_eq!(back.previous_assignment, data.previous_assignment);
        assert_eq!(back.generation, None);
        let none = StickyUserData::default();
        let bytes = encode_sticky_user_data(&none).unwrap();
        assert_eq!(&bytes[..], &[0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(decode_sticky_user_data(bytes).unwrap(), none);
        assert!(decode_sticky_user_data(Bytes::from_static(&[0, 0, 0, 0, 1])).is_err());
    }

    /// The previous owner of each partition, settled by generation (a test-side restatement).
    fn settled_prior(g: &Group) -> BTreeMap<(String, i32), String> {
        let mut best: BTreeMap<(String, i32), (i32, Option<String>)> = BTreeMap::new();
        for (id, m) in &g.members {
            let owned: BTreeSet<_> = m.owned_partitions.iter().cloned().collect();
            for (t, p) in owned {
                let n = g.partitions.get(&t).copied().unwrap_or(0);
                if !m.topics.contains(&t) || !(0..n).contains(&p) {
                    continue;
                }
                let e = best
                    .entry((t, p))
                    .or_insert((m.generation_id, Some(id.clone())));
                if m.generation_id > e.0 {
                    *e = (m.generation_id, Some(id.clone()));
                } else if m.generation_id == e.0 && e.1.as_deref() != Some(id) {
                    e.1 = None;
                }
            }
        }
        best.into_iter()
            .filter_map(|(k, (_, o))| o.map(|o| (k, o)))
            .collect()
    }

    fn owner_of(plan: &Plan) -> BTreeMap<(String, i32), String> {
        plan.iter()
            .flat_map(|(id, l)| l.iter().map(move |x| (x.clone(), id.clone())))
            .collect()
    }

    /// No partition left its previous owner for a member that ends up with more partitions
    /// (moving it back would be at least as balanced and stickier).
    fn check_no_needless_move(g: &Group, plan: &Plan) -> Result<(), TestCaseError> {
        let owner = owner_of(plan);
        for (tp, prev) in settled_prior(g) {
            let now = &owner[&tp];
            if *now != prev {
                prop_assert!(
                    plan[&prev].len() >= plan[now].len(),
                    "{tp:?} moved from {prev} ({}) to {now} ({})",
                    plan[&prev].len(),
                    plan[now].len()
                );
            }
        }
        Ok(())
    }

    /// No chain of members, each subscribed to a partition the next one holds, leads from a
    /// member to one holding at least two more partitions.
    fn check_globally_balanced(g: &Group, plan: &Plan) -> Result<(), TestCaseError> {
        let owner = owner_of(plan);
        for (start, list) in plan {
            let mut seen = BTreeSet::from([start.clone()]);
            let mut queue = vec![start.clone()];
            while let Some(x) = queue.pop() {
                for t in &g.members[&x].topics {
                    for p in 0..g.partitions.get(t).copied().unwrap_or(0) {
                        let holder = &owner[&(t.clone(), p)];
                        if seen.insert(holder.clone()) {
                            prop_assert!(
                                plan[holder].len() < list.len() + 2,
                                "{holder} ({}) can pass load to {start} ({})",
                                plan[holder].len(),
                                list.len()
                            );
                            queue.push(holder.clone());
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// With identical subscriptions the most partitions a balanced plan can keep is known:
    /// every member keeps up to ⌊P/M⌋, and `P mod M` of those that had more keep one extra.
    fn check_optimal_stickiness_identical(g: &Group, plan: &Plan) -> Result<(), TestCaseError> {
        let total: usize = plan.values().map(Vec::len).sum();
        let m = plan.len();
        let (floor, extra) = (total / m, total % m);
        let prior = settled_prior(g);
        let mut before: BTreeMap<&str, usize> = BTreeMap::new();
        for owner in prior.values() {
            *before.entry(owner).or_default() += 1;
        }
        let best = before.values().map(|&c| c.min(floor)).sum::<usize>()
            + before.values().filter(|&&c| c > floor).count().min(extra);
        let owner = owner_of(plan);
        let kept = prior.iter().filter(|(tp, o)| owner[*tp] == **o).count();
        prop_assert_eq!(kept, best, "kept {} of {} possible", kept, best);
        // Hence no member whose previous count was at most ⌊P/M⌋ lost anything, and the others
        // kept at least ⌊P/M⌋.
        for (id, &c) in &before {
            let k = prior
                .iter()
                .filter(|(tp, o)| o.as_str() == *id && owner[*tp] == **o)
                .count();
            prop_assert!(k >= c.min(floor), "{id} kept {k} of {c}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn sticky_is_balanced_then_sticky(g in group(false)) {
            let plan = StickyAssignor.assign(&g.partitions, &g.members);
            check_valid(&g, &plan, true)?;
            check_globally_balanced(&g, &plan)?;
            check_no_needless_move(&g, &plan)?;
        }

        #[test]
        fn sticky_identical_keeps_the_most(g in group(true)) {
            let plan = StickyAssignor.assign(&g.partitions, &g.members);
            check_valid(&g, &plan, true)?;
            check_balanced(&plan)?;
            check_optimal_stickiness_identical(&g, &plan)?;
        }

        #[test]
        fn sticky_after_a_member_leaves_or_joins(
            g in group(false),
            identical in any::<bool>(),
            leave in any::<prop::sample::Index>(),
            joins in any::<bool>(),
        ) {
            let mut g = g;
            if identical {
                let topics = g.members.values().next().unwrap().topics.clone();
                for m in g.members.values_mut() {
                    m.topics = topics.clone();
                }
            }
            for m in g.members.values_mut() {
                m.owned_partitions.clear();
            }
            let first = StickyAssignor.assign(&g.partitions, &g.members);
            for (id, m) in g.members.iter_mut() {
                m.owned_partitions = first[id].clone();
                m.generation_id = 1;
            }
            if joins || g.members.len() == 1 {
                let topics = g.members.values().next().unwrap().topics.clone();
                g.members.insert("new".into(), MemberSubscription::new(topics));
            } else {
                let gone = leave.get(&g.members.keys().cloned().collect::<Vec<_>>()).clone();
                g.members.remove(&gone);
            }
            let second = StickyAssignor.assign(&g.partitions, &g.members);
            check_valid(&g, &second, true)?;
            check_globally_balanced(&g, &second)?;
            check_no_needless_move(&g, &second)?;
            if identical {
                check_balanced(&second)?;
                check_optimal_stickiness_identical(&g, &second)?;
            }
        }
    }

    #[test]
    fn large_group_is_fast_enough() {
        // 200 members, 40 topics of 50 partitions, uneven subscriptions and a joining member.
        let partitions: BTreeMap<String, i32> = (0..40).map(|t| (format!("t{t:02}"), 50)).collect();
        let mut members = BTreeMap::new();
        for i in 0..200usize {
            let topics: Vec<String> = (0..40)
                .filter(|t| (t + i) % 3 != 0)
                .map(|t| format!("t{t:02}"))
                .collect();
            members.insert(format!("m{i:03}"), MemberSubscription::new(topics));
        }
        let started = std::time::Instant::now();
        let first = StickyAssignor.assign(&partitions, &members);
        for (id, m) in members.iter_mut() {
            m.owned_partitions = first[id].clone();
            m.generation_id = 1;
        }
        members.remove("m007");
        members.insert(
            "m999".into(),
            MemberSubscription::new(partitions.keys().cloned()),
        );
        let second = StickyAssignor.assign(&partitions, &members);
        let total: usize = second.values().map(Vec::len).sum();
        assert_eq!(total, 2000);
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "took {:?}",
            started.elapsed()
        );
    }
}
