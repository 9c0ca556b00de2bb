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
//! Previous ownership comes from the members' `owned_partitions`, validated by generation as
//! Kafka's `AbstractStickyAssignor` does (KIP-341, KIP-429): only claims from members of the
//! highest generation any member reports count (older ones are stale: that member missed a
//! rebalance); a partition claimed by two members of that generation counts as unowned. Claims
//! on topics the member no longer subscribes to, or on partitions that no longer exist, are
//! ignored.
//!
//! The plan is computed as a minimum-cost flow: partitions flow to members, a member's cost is
//! convex in its load (weighted so that balance always outweighs stickiness) and keeping a
//! partition with its previous owner earns a unit. A greedy start is refined by cancelling
//! negative cycles (Bellman-Ford over the members) until none is left, at which point the plan
//! is optimal for both goals rather than merely locally improved. The residual graph is never
//! stored member by member: its edges are derived per topic from who holds what, so memory
//! grows with members plus partitions plus subscriptions, never with members squared.

use std::collections::{BTreeMap, BTreeSet};

use bytes::{BufMut, Bytes, BytesMut};
use kafkawire_protocol::primitives::{put_length, put_nullable_string};
use kafkawire_protocol::{DecodeError, DecodeErrorKind, EncodeError, Reader};

use super::{
    Assignor, Claim, MemberSubscription, RebalanceProtocol, claim_generation, empty_plan,
    live_topics, ordered_members, sort_plan,
};
use kafkawire_protocol::consumer_protocol::{
    TopicPartitions, by_topic, flatten, topic_partitions_list,
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
    let generation = claim_generation(members);
    let claims: Vec<Option<&[TopicPartitions]>> = order
        .iter()
        .map(|id| {
            let m = &members[*id];
            (m.generation_id == generation).then_some(m.owned_partitions.as_slice())
        })
        .collect();
    solver.resolve_prior(&topics, &claims);
    solver.solve();

    let mut lists: Vec<Vec<(String, i32)>> = vec![Vec::new(); order.len()];
    for (p, &owner) in solver.owner.iter().enumerate() {
        let t = solver.part_topic[p];
        let partition = (p - solver.topic_start[t]) as i32;
        lists[owner].push((topics[t].to_string(), partition));
    }
    for (id, list) in order.iter().zip(lists) {
        *plan.get_mut(*id).expect("every member has an entry") = list;
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
    /// Topics each member subscribes to, ascending.
    member_topics: Vec<Vec<usize>>,
    /// The previous owner of each partition after claims are validated.
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
            // `subs` and `topics` are both sorted: each subscription is found by search, so the
            // work follows the subscriptions, not members x topics.
            for topic in subs {
                if let Ok(t) = topics.binary_search(topic) {
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

    fn subscribes(&self, member: usize, topic: usize) -> bool {
        self.member_topics[member].binary_search(&topic).is_ok()
    }

    /// Settles previous ownership from the claims that count (`None` for members of an older
    /// generation): a partition claimed by exactly one member, subscribed to its topic, was
    /// that member's; one claimed by several counts as unowned.
    fn resolve_prior(&mut self, topics: &[&str], claims: &[Option<&[TopicPartitions]>]) {
        let mut claimed: Vec<Claim<usize>> = vec![Claim::Unclaimed; self.part_topic.len()];
        for (i, owned) in claims.iter().enumerate() {
            for group in owned.iter().copied().flatten() {
                let Ok(t) = topics.binary_search(&group.topic.as_str()) else {
                    continue;
                };
                let n = self.topic_start[t + 1] - self.topic_start[t];
                for &p in &group.partitions {
                    let Ok(p) = usize::try_from(p) else { continue };
                    if p < n {
                        claimed[self.topic_start[t] + p].add(i);
                    }
                }
            }
        }
        self.prior = claimed
            .into_iter()
            .enumerate()
            .map(|(p, c)| match c {
                Claim::One(i) if self.subscribes(i, self.part_topic[p]) => Some(i),
                _ => None,
            })
            .collect();
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
    /// return a partition to its previous owner, then to move one its holder did not own
    /// before, then to take from the most loaded. A fast first pass: it fixes the bulk of a join
    /// or a subscription change so that the exact pass has little left to do. Members are kept
    /// ordered by load and their holdings in sets, so a move costs about a lookup, not a scan of
    /// every partition.
    fn direct_moves(&mut self) {
        let m = self.m;
        // What each member holds, split by whether it owned it before; and what each member
        // owned before that someone else holds now.
        let mut fresh: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); m];
        let mut own: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); m];
        let mut returns: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); m];
        for (p, &x) in self.owner.iter().enumerate() {
            match self.prior[p] {
                Some(y) if y == x => {
                    own[x].insert(p);
                }
                Some(y) => {
                    returns[y].insert(p);
                    fresh[x].insert(p);
                }
                None => {
                    fresh[x].insert(p);
                }
            }
        }
        let mut by_load: BTreeSet<(usize, usize)> = (0..m).map(|a| (self.load[a], a)).collect();
        loop {
            let (Some(&(min, _)), Some(&(max, _))) = (by_load.first(), by_load.last()) else {
                return;
            };
            if max < min + 2 {
                return;
            }
            let mut chosen = None;
            for &(la, a) in &by_load {
                if la + 2 > max {
                    // Receivers come in ascending load: nobody later can receive either.
                    break;
                }
                let can_spare = |b: usize| self.load[b] >= la + 2;
                // 1. A partition it owned before, from the most loaded holder.
                let back = returns[a]
                    .iter()
                    .copied()
                    .filter(|&p| can_spare(self.owner[p]))
                    .max_by_key(|&p| (self.load[self.owner[p]], std::cmp::Reverse(p)));
                // 2. From the most loaded donors that can spare one: a partition the donor did
                //    not own before, else one it did.
                let from = |sets: &[BTreeSet<usize>]| {
                    by_load
                        .iter()
                        .rev()
                        .take_while(|&&(lb, _)| lb >= la + 2)
                        .find_map(|&(_, b)| {
                            sets[b]
                                .iter()
                                .copied()
                                .find(|&p| self.subscribes(a, self.part_topic[p]))
                        })
                };
                if let Some(p) = back.or_else(|| from(&fresh)).or_else(|| from(&own)) {
                    chosen = Some((p, a));
                    break;
                }
            }
            let Some((p, a)) = chosen else { return };
            let b = self.owner[p];
            fresh[b].remove(&p);
            own[b].remove(&p);
            match self.prior[p] {
                Some(y) if y == a => {
                    returns[a].remove(&p);
                    own[a].insert(p);
                }
                Some(y) => {
                    if y == b {
                        returns[b].insert(p);
                    }
                    fresh[a].insert(p);
                }
                None => {
                    fresh[a].insert(p);
                }
            }
            by_load.remove(&(self.load[a], a));
            by_load.remove(&(self.load[b], b));
            self.give(p, a);
            by_load.insert((self.load[a], a));
            by_load.insert((self.load[b], b));
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
        loop {
            let moves = {
                let graph = Residual::new(self);
                let cycles = graph.negative_cycles();
                let mut moves = Vec::new();
                for cycle in cycles {
                    for (i, &x) in cycle.iter().enumerate() {
                        let y = cycle[(i + 1) % cycle.len()];
                        if x == self.m || y == self.m {
                            continue; // an edge to or from the sink moves nothing itself
                        }
                        let (_, p) = graph.member_edge(x, y).expect("a cycle edge exists");
                        moves.push((p, y));
                    }
                }
                moves
            };
            if moves.is_empty() {
                return;
            }
            // Cycles share no member, and each move was chosen among what its member held
            // before any of them: they apply independently.
            for (p, y) in moves {
                self.give(p, y);
            }
        }
    }
}

/// The residual graph of the current plan: nodes `0..m` are the members, node `m` the sink.
///
/// Member-to-member edges are not stored pair by pair (that would be members² for a group
/// sharing one topic). They are derived per topic: every member holding a partition of topic
/// `t` has an edge to every member subscribed to `t`, costing 0 if it holds one it did not own
/// before and 1 otherwise; and a partition held by `x` whose previous owner is `y` gives the
/// edge `x -> y` cost -1. The cost of `x -> y` is the cheapest of these.
struct Residual<'a> {
    s: &'a Solver,
    big: i64,
    /// Partitions each member holds, ascending.
    held: Vec<Vec<usize>>,
    /// Per topic: the members holding a partition of it, with the cheapest cost of moving one
    /// of them (0 or 1).
    holders: Vec<Vec<(usize, i64)>>,
    /// `(x, y)`: `x` holds a partition `y` owned before (cost -1).
    returns: Vec<(usize, usize)>,
}

impl<'a> Residual<'a> {
    fn new(s: &'a Solver) -> Self {
        let mut held: Vec<Vec<usize>> = vec![Vec::new(); s.m];
        let mut holders: Vec<Vec<(usize, i64)>> = vec![Vec::new(); s.eligible.len()];
        let mut returns = Vec::new();
        // The topic whose holder list last saw each member, and where it sits in that list.
        let mut seen_in: Vec<usize> = vec![NOBODY; s.m];
        let mut slot: Vec<usize> = vec![0; s.m];
        for (p, &x) in s.owner.iter().enumerate() {
            let t = s.part_topic[p];
            held[x].push(p);
            if seen_in[x] != t {
                seen_in[x] = t;
                slot[x] = holders[t].len();
                holders[t].push((x, 1));
            }
            match s.prior[p] {
                Some(y) if y == x => {}
                Some(y) => {
                    holders[t][slot[x]].1 = 0;
                    returns.push((x, y));
                }
                None => holders[t][slot[x]].1 = 0,
            }
        }
        Residual {
            s,
            big: s.m as i64 + 1,
            held,
            holders,
            returns,
        }
    }

    /// The cheapest partition `x` can hand `y`, with its cost (+1 if `x` owned it before, -1 if
    /// `y` did; ties to the lowest partition), or `None` when `x` holds nothing `y` subscribes
    /// to.
    fn member_edge(&self, x: usize, y: usize) -> Option<(i64, usize)> {
        let s = self.s;
        let mut best: Option<(i64, usize)> = None;
        for &p in &self.held[x] {
            if !s.subscribes(y, s.part_topic[p]) {
                continue;
            }
            let cost = i64::from(s.prior[p] == Some(x)) - i64::from(s.prior[p] == Some(y));
            if best.is_none_or(|b| (cost, p) < b) {
                best = Some((cost, p));
            }
        }
        best
    }

    fn sink_cost(&self, from: usize, to: usize) -> i64 {
        let m = self.s.m;
        if to == m {
            self.big * (2 * self.s.load[from] as i64 + 1)
        } else {
            debug_assert_eq!(from, m);
            -self.big * (2 * self.s.load[to] as i64 - 1)
        }
    }

    fn cost(&self, from: usize, to: usize) -> Option<i64> {
        let m = self.s.m;
        if from == m || to == m {
            Some(self.sink_cost(from, to))
        } else {
            self.member_edge(from, to).map(|(c, _)| c)
        }
    }

    /// One Bellman-Ford round over every edge; returns whether anything was relaxed.
    fn relax_all(&self, dist: &mut [i64], pred: &mut [usize]) -> bool {
        let s = self.s;
        let m = s.m;
        let mut relaxed = false;
        let mut relax = |u: usize, v: usize, d: i64, dist: &mut [i64]| {
            if d < dist[v] {
                dist[v] = d;
                pred[v] = u;
                relaxed = true;
            }
        };
        // Member-to-member edges, topic by topic: the two best holders are enough to relax
        // every subscriber (the best one unless that is the subscriber itself).
        for (t, holders) in self.holders.iter().enumerate() {
            let mut best = [(i64::MAX, NOBODY); 2];
            for &(x, w) in holders {
                let d = dist[x] + w;
                if d < best[0].0 {
                    best = [(d, x), best[0]];
                } else if d < best[1].0 {
                    best[1] = (d, x);
                }
            }
            for &y in &s.eligible[t] {
                let (d, x) = if best[0].1 != y { best[0] } else { best[1] };
                if x != NOBODY {
                    relax(x, y, d, dist);
                }
            }
        }
        for &(x, y) in &self.returns {
            let d = dist[x] - 1;
            relax(x, y, d, dist);
        }
        for a in 0..m {
            let d = dist[a] + self.sink_cost(a, m);
            relax(a, m, d, dist);
        }
        for a in 0..m {
            if s.load[a] > 0 {
                let d = dist[m] + self.sink_cost(m, a);
                relax(m, a, d, dist);
            }
        }
        relaxed
    }

    /// Vertex-disjoint cycles of negative total cost, each as its nodes in order (the last
    /// leading back to the first); empty when the graph has none.
    ///
    /// Bellman-Ford from a virtual source joined to every node, looking for cycles in the
    /// predecessor graph after every round instead of waiting for round `m + 1`: any cycle there
    /// is negative, and one usually shows up within a few rounds. Cycles of the predecessor
    /// graph never share a node, so they can all be cancelled at once.
    fn negative_cycles(&self) -> Vec<Vec<usize>> {
        let nodes = self.s.m + 1;
        let mut dist = vec![0i64; nodes];
        let mut pred = vec![usize::MAX; nodes];
        for _ in 0..=nodes {
            if !self.relax_all(&mut dist, &mut pred) {
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
            let cost: Option<i64> = (0..cycle.len())
                .map(|i| self.cost(cycle[i], cycle[(i + 1) % cycle.len()]))
                .sum();
            debug_assert!(
                cost.is_some_and(|c| c < 0),
                "predecessor cycle of cost {cost:?}"
            );
            if cost.is_some_and(|c| c < 0) {
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
    let groups = by_topic(&data.previous_assignment);
    let mut buf = BytesMut::new();
    put_length(
        &mut buf,
        Some(groups.len()),
        false,
        true,
        "previous_assignment",
    )?;
    for g in groups {
        put_nullable_string(&mut buf, Some(&g.topic), false, "topic")?;
        put_length(
            &mut buf,
            Some(g.partitions.len()),
            false,
            true,
            "partitions",
        )?;
        for p in g.partitions {
            buf.put_i32(p);
        }
    }
    buf.put_i32(data.generation.unwrap_or(-1));
    Ok(buf.freeze())
}

/// Decodes sticky user data with the previous assignment grouped by topic, as on the wire
/// (memory within a small multiple of the input), and the generation.
pub(super) fn decode_sticky_user_data_by_topic(
    bytes: Bytes,
) -> Result<(Vec<TopicPartitions>, Option<i32>), DecodeError> {
    const WHAT: &str = "StickyAssignorUserData";
    let mut r = Reader::new(bytes);
    let previous = topic_partitions_list(&mut r, WHAT)?;
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
    Ok((previous, generation))
}

/// Decodes [`StickyUserData`] in version 1 (with the generation) or version 0 (without). A
/// negative generation reads as unknown.
///
/// # Errors
/// [`DecodeError`] if the bytes are truncated, invalid, or longer than version 1; also when the
/// previous assignment as flat pairs would exceed the budget of
/// [`FLAT_BUDGET_FACTOR`](super::FLAT_BUDGET_FACTOR).
pub fn decode_sticky_user_data(bytes: Bytes) -> Result<StickyUserData, DecodeError> {
    let len = bytes.len();
    let (previous, generation) = decode_sticky_user_data_by_topic(bytes)?;
    Ok(StickyUserData {
        previous_assignment: flatten(
            previous,
            len,
            "StickyAssignorUserData",
            "the grouped decoder",
        )?,
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
        let owned: Vec<(String, i32)> = owned.iter().map(|(t, p)| tp(t, *p)).collect();
        MemberSubscription::new(topics.iter().copied()).with_owned(&owned, generation)
    }

    fn kept(plan: &Plan, id: &str, m: &MemberSubscription) -> usize {
        let owned = owned(m);
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
        assert_eq!(kept(&plan, "C0", &members["C0"]), 3);
        assert_eq!(kept(&plan, "C2", &members["C2"]), 2);
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
        assert_eq!(kept(&plan, "a", &members["a"]), 2);
        assert_eq!(kept(&plan, "b", &members["b"]), 2);
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
    fn claims_of_an_older_generation_do_not_count() {
        // b's claims are from generation 2 while a reports generation 6: b missed a rebalance,
        // and its claim on t-1 is void even though nobody else claims it.
        let partitions = BTreeMap::from([("t".to_string(), 4)]);
        let members = BTreeMap::from([
            ("a".to_string(), member(&["t"], &[("t", 0)], 6)),
            (
                "b".to_string(),
                member(&["t"], &[("t", 1), ("t", 2), ("t", 3)], 2),
            ),
            ("c".to_string(), member(&["t"], &[], 6)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        assert!(plan["a"].contains(&tp("t", 0)));
        let mut sorted = loads(&plan);
        sorted.sort();
        assert_eq!(sorted, [1, 1, 2]);
        // Were b's claims current, b would keep two of them and c get the third.
        let mut current = members.clone();
        current.get_mut("b").unwrap().generation_id = 6;
        let plan = StickyAssignor.assign(&partitions, &current);
        assert_eq!(kept(&plan, "b", &current["b"]), 2);
        assert_eq!(plan["a"], [tp("t", 0)]);
    }

    #[test]
    fn duplicate_claims_of_the_highest_generation_count_as_unowned() {
        let partitions = BTreeMap::from([("t".to_string(), 2)]);
        let members = BTreeMap::from([
            ("a".to_string(), member(&["t"], &[("t", 0), ("t", 1)], 3)),
            ("b".to_string(), member(&["t"], &[("t", 1)], 3)),
        ]);
        let plan = StickyAssignor.assign(&partitions, &members);
        // t-0 is a's; t-1 is nobody's and goes where balance wants it.
        assert_eq!(plan["a"], [tp("t", 0)]);
        assert_eq!(plan["b"], [tp("t", 1)]);
    }

    /// `members` members, each subscribed to every topic of `partitions`.
    fn crowd(
        members: usize,
        partitions: &BTreeMap<String, i32>,
    ) -> BTreeMap<String, MemberSubscription> {
        (0..members)
            .map(|i| {
                (
                    format!("m{i:05}"),
                    MemberSubscription::new(partitions.keys().cloned()),
                )
            })
            .collect()
    }

    #[test]
    fn a_thousand_members_and_ten_partitions() {
        // Far more members than partitions: the old member-pair matrix alone would have been a
        // million entries; the plan is made from per-topic lists.
        let partitions = BTreeMap::from([("t".to_string(), 10)]);
        let mut members = crowd(1_000, &partitions);
        let started = std::time::Instant::now();
        let first = StickyAssignor.assign(&partitions, &members);
        assert_eq!(loads(&first).iter().sum::<usize>(), 10);
        assert!(loads(&first).iter().all(|&l| l <= 1));
        // Everyone rejoins with what it had, and ten newcomers arrive: nothing moves.
        for (id, m) in members.iter_mut() {
            m.owned_partitions = by_topic(&first[id]);
            m.generation_id = 1;
        }
        for i in 0..10 {
            members.insert(format!("new{i}"), MemberSubscription::new(["t"]));
        }
        let second = StickyAssignor.assign(&partitions, &members);
        for (id, list) in &first {
            assert_eq!(&second[id], list, "{id} moved");
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "took {:?}",
            started.elapsed()
        );
    }

    #[test]
    fn a_thousand_members_with_ten_partitions_each_rebalance_after_a_join() {
        // 10,000 partitions: a group of 10 grows to 1,000; everything must spread out, each
        // member keeping what it can (the old owners keep exactly 10 each).
        let partitions = BTreeMap::from([("a".to_string(), 6_000), ("b".to_string(), 4_000)]);
        let mut members = crowd(10, &partitions);
        let first = StickyAssignor.assign(&partitions, &members);
        for (id, m) in members.iter_mut() {
            m.owned_partitions = by_topic(&first[id]);
            m.generation_id = 1;
        }
        let old: Vec<String> = members.keys().cloned().collect();
        members.extend(crowd(1_000, &partitions).into_iter().skip(10));
        assert_eq!(members.len(), 1_000);
        let started = std::time::Instant::now();
        let second = StickyAssignor.assign(&partitions, &members);
        let elapsed = started.elapsed();
        assert!(loads(&second).iter().all(|&l| l == 10));
        for id in &old {
            assert_eq!(kept(&second, id, &members[id]), 10, "{id}");
        }
        assert!(
            elapsed < std::time::Duration::from_secs(30),
            "took {elapsed:?}"
        );
    }

    #[test]
    fn sticky_user_data_is_grouped_and_bounded() {
        // One 32 KiB topic name with 8,000 partitions: 64 KiB as sent, 262 MB as flat pairs.
        let name = "x".repeat(i16::MAX as usize);
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i16(name.len() as i16);
        b.put_slice(name.as_bytes());
        b.put_i32(8_000);
        for p in 0..8_000 {
            b.put_i32(p);
        }
        b.put_i32(3);
        let bytes = b.freeze();
        let (groups, generation) = decode_sticky_user_data_by_topic(bytes.clone()).unwrap();
        assert_eq!(generation, Some(3));
        assert_eq!(groups.len(), 1);
        assert_eq!(groups[0].partitions.len(), 8_000);
        let held: usize = groups
            .iter()
            .map(|g| g.topic.capacity() + 4 * g.partitions.capacity())
            .sum();
        assert!(
            held <= 2 * bytes.len(),
            "{held} bytes held for {}",
            bytes.len()
        );
        let e = decode_sticky_user_data(bytes).expect_err("flat pairs would take 268 MB");
        assert!(e.to_string().contains("8000 partitions"), "{e}");
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

    /// The previous owner of each partition, settled by generation (a test-side restatement):
    /// the one member of the highest generation claiming an existing partition of a topic it
    /// subscribes to.
    fn settled_prior(g: &Group) -> BTreeMap<(String, i32), String> {
        valid_claims(&g.members)
            .into_iter()
            .filter_map(|((t, p), claimants)| {
                let n = g.partitions.get(&t).copied().unwrap_or(0);
                let only = (claimants.len() == 1).then(|| claimants.into_iter().next())??;
                (g.members[&only].topics.contains(&t) && (0..n).contains(&p))
                    .then_some(((t, p), only))
            })
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
                m.owned_partitions = by_topic(&first[id]);
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
            m.owned_partitions = by_topic(&first[id]);
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
