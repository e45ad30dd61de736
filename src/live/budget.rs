//! The budgeted local search: from the current placement, the moves that lower the max GPU
//! load the most per transfer they cost, until the budget is spent or no move helps.
//!
//! Three kinds of moves, all touching the busiest GPU `g*` (the one that sets the max):
//!
//! - **replace** a replica on `g*` of an expert with at least two replicas by a replica of
//!   another expert (a count change: one expert loses a replica, one gains one);
//! - **replace elsewhere**: a replica on another GPU gives its slot to an expert that `g*`
//!   holds, so that expert's per-replica load drops on `g*` too;
//! - **swap** a replica on `g*` with one on another GPU (counts unchanged).
//!
//! A move's cost is the change in transfers (a replica of `e` on `g` is a transfer when `g`
//! did not hold `e` in the current placement; moves that bring back what a GPU held cost
//! nothing or give transfers back). A move is taken only if it lowers `g*`'s load and leaves
//! every GPU it touches below the old max, so the max never rises and the search ends; among
//! those, the one with the largest drop of the max per transfer (then the largest drop of the
//! touched GPUs' peak per transfer), first found on ties. Work is capped by a step count,
//! never by time, so the answer is deterministic.

use eplb_solvers::loads::bin_load;
use serde::Serialize;

use super::failed::LiveGpus;
use super::holdings::node_of;
use crate::placement::LayerPlacement;
use crate::problem::{Cluster, LayerProblem, Policy};

/// One point of a layer's max-load-versus-transfers trade-off curve.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct CurvePoint {
    /// Transfers from the current placement.
    pub transfers: usize,
    /// The max GPU load at that many transfers.
    pub max_load: f64,
}

/// What the search found on one layer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SearchResult {
    /// The placement after the last step.
    pub(crate) placement: LayerPlacement,
    /// The curve: the starting point, then one point per step taken.
    pub(crate) curve: Vec<CurvePoint>,
    /// The slot writes of each step, to replay a prefix of the search.
    steps: Vec<Vec<(usize, usize)>>,
}

impl SearchResult {
    /// The placement after the first `steps` steps (all of them when `steps` is larger).
    pub(crate) fn prefix(&self, start: &LayerPlacement, steps: usize) -> LayerPlacement {
        let mut phy2log = start.phy2log().to_vec();
        for writes in self.steps.iter().take(steps) {
            for &(slot, e) in writes {
                phy2log[slot] = e;
            }
        }
        LayerPlacement::from_phy2log(phy2log)
    }

    /// `value` of the placement at every point of the curve (after 0, 1, ... steps).
    pub(crate) fn values(
        &self,
        start: &LayerPlacement,
        mut value: impl FnMut(&LayerPlacement) -> crate::Result<f64>,
    ) -> crate::Result<Vec<f64>> {
        let mut phy2log = start.phy2log().to_vec();
        let mut values = vec![value(start)?];
        for writes in &self.steps {
            for &(slot, e) in writes {
                phy2log[slot] = e;
            }
            values.push(value(&LayerPlacement::from_phy2log(phy2log.clone()))?);
        }
        Ok(values)
    }

    /// Steps taken.
    pub(crate) fn steps(&self) -> usize {
        self.steps.len()
    }
}

/// Whether a GPU may hold two replicas of one expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Replicas {
    /// It may (the default).
    MayShareGpu,
    /// It may not (`--distinct-replicas`): no step adds a replica of an expert to a GPU that
    /// holds one (the start must be distinct).
    Distinct,
}

/// Steps at most per slot of the layer (a count, so the search is deterministic).
const STEPS_PER_SLOT: usize = 4;

/// A relative drop of the max smaller than this is no drop (float noise).
const MIN_RELATIVE_DROP: f64 = 1e-12;

/// Slack, relative to the max, added to every bound before pruning: the bounds add the same
/// loads in another order than the exact evaluation, and pruning must never drop a step the
/// exact evaluation would choose.
const SLACK: f64 = 1e-9;

/// What a step costing `cost` transfers is charged when gains are compared per transfer:
/// steps that cost nothing (or give transfers back) are charged a twentieth.
fn price(cost: isize) -> f64 {
    cost.max(0) as f64 + 0.05
}

/// False when a step costing `cost` whose drop of the max is at most `bound` cannot beat
/// `best` (branch and bound: skipping it never changes the step chosen).
fn promising(best: &Option<Candidate>, bound: f64, cost: isize) -> bool {
    best.as_ref()
        .is_none_or(|b| bound / price(cost) >= b.score.0)
}

/// False when a step costing `cost`, whose touched GPUs' peak is at least `peak` (up to
/// [`SLACK`]) and that leaves a GPU of load `untouched` as it is, cannot beat `best`: its
/// score is at most `((max - untouched) / price, (max - peak) / price)`, compared as
/// [`Search::offer`] compares scores (the first part with the same float operations).
fn can_beat(best: &Option<Candidate>, max: f64, peak: f64, untouched: f64, cost: isize) -> bool {
    let Some(b) = best else {
        return true;
    };
    let price = price(cost);
    let loose = max - peak + max * SLACK;
    loose / price >= b.score.0 && ((max - untouched) / price, loose / price) > b.score
}

/// The local search state of one layer.
struct Search<'a> {
    loads: &'a [f64],
    cluster: &'a Cluster,
    experts: usize,
    slots: usize,
    phy: Vec<usize>,
    cnt: Vec<usize>,
    /// `on[g * E + e]`: replicas of `e` on GPU `g`.
    on: Vec<u32>,
    /// `held[g * E + e]`: `g` held `e` in the current placement.
    held: Vec<bool>,
    /// GPUs holding each expert now.
    holders: Vec<Vec<usize>>,
    load: Vec<f64>,
    /// Load per replica of each expert at its count (`pr`), one more (`pr_plus`) and one
    /// fewer (`pr_minus`, infinite below two replicas): no division in the candidate loops.
    pr: Vec<f64>,
    pr_plus: Vec<f64>,
    pr_minus: Vec<f64>,
    /// The experts by `pr_plus`, smallest first: the cheapest to give a replica.
    by_plus: Vec<usize>,
    /// The node each expert may live on (hierarchical policy), else `None`.
    home: Option<Vec<usize>>,
    /// The node of each GPU.
    node: Vec<usize>,
    live: &'a LiveGpus,
    /// No step adds a second replica of an expert to a GPU.
    distinct: bool,
    transfers: usize,
    /// Scratch: new load of touched GPUs, stamped.
    stamp: Vec<u64>,
    now: u64,
    touched: Vec<usize>,
    fresh: Vec<f64>,
}

/// A candidate step.
#[derive(Clone)]
struct Candidate {
    writes: Vec<(usize, usize)>,
    score: (f64, f64),
}

/// Runs the search on `layer` from `current` with at most `budget` transfers (counted from
/// `current`), placing only on `live` GPUs. `current` must be feasible for the layer.
pub(crate) fn search(
    layer: &LayerProblem<'_>,
    current: &LayerPlacement,
    budget: usize,
    live: &LiveGpus,
    replicas: Replicas,
) -> SearchResult {
    let mut s = Search::new(layer, current, live);
    s.distinct = replicas == Replicas::Distinct;
    let mut curve = vec![CurvePoint {
        transfers: s.transfers,
        max_load: s.max(),
    }];
    let mut steps = Vec::new();
    let limit = STEPS_PER_SLOT * layer.cluster().replicas;
    while steps.len() < limit {
        let Some(best) = s.best_step(budget) else {
            break;
        };
        s.apply(&best);
        curve.push(CurvePoint {
            transfers: s.transfers,
            max_load: s.max(),
        });
        steps.push(best.writes);
    }
    SearchResult {
        placement: LayerPlacement::from_phy2log(s.phy),
        curve,
        steps,
    }
}

impl<'a> Search<'a> {
    fn new(layer: &LayerProblem<'a>, current: &LayerPlacement, live: &'a LiveGpus) -> Self {
        let cluster = layer.cluster();
        let experts = layer.num_experts();
        let slots = cluster.slots_per_gpu();
        let phy = current.phy2log().to_vec();
        let mut held = vec![false; cluster.gpus * experts];
        for (slot, &e) in phy.iter().enumerate() {
            held[(slot / slots) * experts + e] = true;
        }
        let home = (layer.policy() == Policy::Hierarchical).then(|| {
            let mut home = vec![0; experts];
            for (slot, &e) in phy.iter().enumerate() {
                home[e] = node_of(cluster, slot / slots);
            }
            // Every expert of a group lives on the group's node (the current placement is
            // feasible, so each group has one).
            let size = layer.group_size();
            (0..experts).map(|e| home[(e / size) * size]).collect()
        });
        let mut s = Self {
            loads: layer.loads(),
            cluster,
            experts,
            slots,
            cnt: vec![0; experts],
            on: vec![0; cluster.gpus * experts],
            held,
            holders: vec![Vec::new(); experts],
            load: vec![0.0; cluster.gpus],
            pr: vec![0.0; experts],
            pr_plus: vec![0.0; experts],
            pr_minus: vec![0.0; experts],
            by_plus: (0..experts).collect(),
            home,
            node: (0..cluster.gpus).map(|g| node_of(cluster, g)).collect(),
            live,
            distinct: false,
            transfers: 0,
            stamp: vec![0; cluster.gpus],
            now: 0,
            touched: Vec::new(),
            fresh: vec![0.0; cluster.gpus],
            phy,
        };
        s.refresh();
        s
    }

    /// Recomputes counts, holders, loads (summed in slot order as the evaluator does) and
    /// transfers from `phy`.
    fn refresh(&mut self) {
        let e_count = self.experts;
        // Clear what the last state set (touching only its entries keeps a step O(R)).
        for list in &mut self.holders {
            list.clear();
        }
        self.cnt.iter_mut().for_each(|c| *c = 0);
        for g in 0..self.cluster.gpus {
            for slot in g * self.slots..(g + 1) * self.slots {
                self.on[g * e_count + self.phy[slot]] = 0;
            }
        }
        self.transfers = 0;
        for (slot, &e) in self.phy.iter().enumerate() {
            let g = slot / self.slots;
            if !self.live.is_live(g) {
                continue;
            }
            self.cnt[e] += 1;
            self.on[g * e_count + e] += 1;
            if self.holders[e].last() != Some(&g) {
                self.holders[e].push(g);
            }
            self.transfers += usize::from(!self.held[g * e_count + e]);
        }
        for e in 0..e_count {
            let (w, c) = (self.loads[e], self.cnt[e]);
            self.pr[e] = w / c as f64;
            self.pr_plus[e] = w / (c + 1) as f64;
            self.pr_minus[e] = if c >= 2 {
                w / (c - 1) as f64
            } else {
                f64::INFINITY
            };
        }
        let pr_plus = &self.pr_plus;
        self.by_plus
            .sort_by(|&a, &b| pr_plus[a].total_cmp(&pr_plus[b]).then(a.cmp(&b)));
        for g in 0..self.cluster.gpus {
            let slots = &self.phy[g * self.slots..(g + 1) * self.slots];
            self.load[g] = if self.live.is_live(g) {
                bin_load(slots.iter().map(|&e| self.loads[e] / self.cnt[e] as f64))
            } else {
                0.0
            };
        }
    }

    fn max(&self) -> f64 {
        self.load.iter().copied().fold(0.0, f64::max)
    }

    fn apply(&mut self, step: &Candidate) {
        for &(slot, _) in &step.writes {
            let g = slot / self.slots;
            self.on[g * self.experts + self.phy[slot]] = 0;
        }
        for &(slot, e) in &step.writes {
            self.phy[slot] = e;
        }
        self.refresh();
    }

    /// True when `expert` may go to `gpu` (live, on its group's node under the hierarchical
    /// policy, and not holding it already with distinct replicas).
    fn allowed(&self, expert: usize, gpu: usize) -> bool {
        self.live.is_live(gpu)
            && !(self.distinct && self.on[gpu * self.experts + expert] > 0)
            && self
                .home
                .as_ref()
                .is_none_or(|home| home[expert] == self.node[gpu])
    }

    /// 1 when a replica of `e` on `g` is a transfer.
    fn t(&self, g: usize, e: usize) -> isize {
        isize::from(!self.held[g * self.experts + e])
    }

    /// Starts a candidate's bookkeeping of touched GPUs.
    fn begin(&mut self) {
        self.now += 1;
        self.touched.clear();
    }

    /// Adds `delta` to GPU `g`'s load in the candidate.
    fn touch(&mut self, g: usize, delta: f64) {
        if self.stamp[g] != self.now {
            self.stamp[g] = self.now;
            self.fresh[g] = self.load[g];
            self.touched.push(g);
        }
        self.fresh[g] += delta;
    }

    /// Touches every GPU holding `e` for a change of `d` in its load per replica.
    fn recount(&mut self, e: usize, d: f64) {
        for i in 0..self.holders[e].len() {
            let g = self.holders[e][i];
            let n = self.on[g * self.experts + e] as f64;
            self.touch(g, n * d);
        }
    }

    /// The scores of the touched GPUs' new loads: `(drop of the max, drop of the touched
    /// peak)`, or `None` when the touched peak does not drop below `max`.
    fn judge(&self, max: f64, order: &[usize]) -> Option<(f64, f64)> {
        let peak = self
            .touched
            .iter()
            .map(|&g| self.fresh[g])
            .fold(0.0, f64::max);
        if peak >= max * (1.0 - MIN_RELATIVE_DROP) {
            return None;
        }
        let untouched = order
            .iter()
            .find(|&&g| self.stamp[g] != self.now)
            .map_or(0.0, |&g| self.load[g]);
        Some((max - peak.max(untouched), max - peak))
    }

    /// Keeps `candidate` if it beats `best` per transfer (see [`price`]).
    fn offer(
        &self,
        best: &mut Option<Candidate>,
        writes: &[(usize, usize)],
        cost: isize,
        gains: (f64, f64),
    ) {
        let price = price(cost);
        let score = (gains.0 / price, gains.1 / price);
        if best.as_ref().is_none_or(|b| score > b.score) {
            *best = Some(Candidate {
                writes: writes.to_vec(),
                score,
            });
        }
    }

    /// The best step within `budget` transfers, if one lowers the max.
    fn best_step(&mut self, budget: usize) -> Option<Candidate> {
        let p = self.cluster.gpus;
        let e_count = self.experts;
        let mut order: Vec<usize> = (0..p).filter(|&g| self.live.is_live(g)).collect();
        order.sort_by(|&a, &b| self.load[b].total_cmp(&self.load[a]).then(a.cmp(&b)));
        let top = *order.first()?;
        let max = self.load[top];
        if max <= 0.0 {
            return None;
        }
        let room = budget as isize - self.transfers as isize;
        let mut best: Option<Candidate> = None;
        let top_slots: Vec<usize> = (top * self.slots..(top + 1) * self.slots).collect();

        // The experts on the busiest GPU.
        let mut ys: Vec<usize> = top_slots.iter().map(|&s| self.phy[s]).collect();
        ys.sort_unstable();
        ys.dedup();
        // Replace a replica on the busiest GPU: by an expert it holds, or by one it does not
        // hold, cheapest per replica first, while the busiest GPU's load still drops and the
        // drop can still beat the best step at the lowest price.
        for &slot in &top_slots {
            let x = self.phy[slot];
            if self.cnt[x] < 2 {
                continue;
            }
            let nx = self.on[top * e_count + x] as f64;
            let base = self.load[top] + (nx - 1.0) * self.pr_minus[x] - nx * self.pr[x];
            for &y in &ys {
                self.offer_replace_top(&mut best, (slot, x, y), base, max, room, &order);
            }
            for i in 0..self.by_plus.len() {
                let y = self.by_plus[i];
                if self.on[top * e_count + y] != 0 {
                    continue;
                }
                let top_new = base + self.pr_plus[y];
                // `by_plus` is sorted: every later `y` leaves the busiest GPU busier.
                if top_new >= max || !promising(&best, max - top_new + max * SLACK, -1) {
                    break;
                }
                self.offer_replace_top(&mut best, (slot, x, y), base, max, room, &order);
            }
        }
        // Replace a replica elsewhere by an expert the busiest GPU holds.
        let heaviest: Vec<f64> = (0..p)
            .map(|h| {
                self.phy[h * self.slots..(h + 1) * self.slots]
                    .iter()
                    .map(|&e| self.pr[e])
                    .fold(0.0, f64::max)
            })
            .collect();
        for &y in &ys {
            let ny = self.on[top * e_count + y] as f64;
            let y_drop = ny * (self.pr[y] - self.pr_plus[y]);
            // Losing a replica elsewhere never makes the busiest GPU lighter.
            if !promising(&best, max - (self.load[top] - y_drop) + max * SLACK, -1) {
                continue;
            }
            for h in (0..p).filter(|&h| h != top) {
                if !self.allowed(y, h) {
                    continue;
                }
                // `h` gains its share of `y` and loses at most its heaviest replica.
                let hy = self.on[h * e_count + y] as f64;
                let y_gain = (hy + 1.0) * self.pr_plus[y] - hy * self.pr[y];
                let h_floor = self.load[h] - heaviest[h] + y_gain;
                if h_floor >= max || !promising(&best, max - h_floor + max * SLACK, -1) {
                    continue;
                }
                for slot in h * self.slots..(h + 1) * self.slots {
                    let x = self.phy[slot];
                    if x == y || self.cnt[x] < 2 {
                        continue;
                    }
                    let cost = self.t(h, y) - self.t(h, x);
                    if cost > room {
                        continue;
                    }
                    let nx = self.on[top * e_count + x] as f64;
                    let top_new = self.load[top] - y_drop + nx * (self.pr_minus[x] - self.pr[x]);
                    let (hx, hy) = (
                        self.on[h * e_count + x] as f64,
                        self.on[h * e_count + y] as f64,
                    );
                    let h_new = self.load[h] + (hx - 1.0) * self.pr_minus[x] - hx * self.pr[x]
                        + (hy + 1.0) * self.pr_plus[y]
                        - hy * self.pr[y];
                    let peak = top_new.max(h_new);
                    if top_new >= max
                        || h_new >= max
                        || !promising(&best, max - peak + max * SLACK, cost)
                        || !can_beat(&best, max, peak, self.untouched(&order, h, x, y), cost)
                    {
                        continue;
                    }
                    if let Some(gains) = self.replace(h, x, y, max, &order) {
                        self.offer(&mut best, &[(slot, y)], cost, gains);
                    }
                }
            }
        }
        // Swap a replica of the busiest GPU with one elsewhere.
        for &a in &top_slots {
            let x = self.phy[a];
            let px = self.pr[x];
            for h in (0..p).filter(|&h| h != top) {
                // A swap leaves `h` busier than now (`y` is lighter than `x`).
                if !self.allowed(x, h) || !promising(&best, max - self.load[h] + max * SLACK, -1) {
                    continue;
                }
                for b in h * self.slots..(h + 1) * self.slots {
                    let y = self.phy[b];
                    if x == y || !self.allowed(y, top) {
                        continue;
                    }
                    let cost = self.t(top, y) + self.t(h, x) - self.t(top, x) - self.t(h, y);
                    if cost > room {
                        continue;
                    }
                    let py = self.pr[y];
                    if py >= px {
                        continue;
                    }
                    let peak = (self.load[top] - px + py).max(self.load[h] - py + px);
                    if !promising(&best, max - peak + max * SLACK, cost) {
                        continue;
                    }
                    // The busiest GPU outside the two bounds the new max from below.
                    let others = order[1..].iter().find(|&&g| g != h);
                    let floor = others.map_or(0.0, |&g| self.load[g]);
                    if !can_beat(&best, max, peak, floor, cost) {
                        continue;
                    }
                    self.begin();
                    self.touch(top, py - px);
                    self.touch(h, px - py);
                    if let Some(gains) = self.judge(max, &order) {
                        self.offer(&mut best, &[(a, y), (b, x)], cost, gains);
                    }
                }
            }
        }
        best
    }

    /// Offers writing `y` over the replica of `x` in `slot` of the busiest GPU (`order[0]`),
    /// whose load without that replica (at `x`'s new count) is `base`.
    fn offer_replace_top(
        &mut self,
        best: &mut Option<Candidate>,
        (slot, x, y): (usize, usize, usize),
        base: f64,
        max: f64,
        room: isize,
        order: &[usize],
    ) {
        let top = order[0];
        if y == x || !self.allowed(y, top) {
            return;
        }
        let cost = self.t(top, y) - self.t(top, x);
        if cost > room {
            return;
        }
        let ny = self.on[top * self.experts + y] as f64;
        let top_new = base + (ny + 1.0) * self.pr_plus[y] - ny * self.pr[y];
        if top_new >= max
            || !promising(best, max - top_new + max * SLACK, cost)
            || !can_beat(best, max, top_new, self.untouched(order, top, x, y), cost)
        {
            return;
        }
        if let Some(gains) = self.replace(top, x, y, max, order) {
            self.offer(best, &[(slot, y)], cost, gains);
        }
    }

    /// The load of the busiest live GPU other than `g` and the GPUs holding `x` or `y`
    /// (`order` lists the live GPUs busiest first): the new max of a replacement on `g`
    /// is at least this.
    fn untouched(&self, order: &[usize], g: usize, x: usize, y: usize) -> f64 {
        order
            .iter()
            .find(|&&h| h != g && !self.holders[x].contains(&h) && !self.holders[y].contains(&h))
            .map_or(0.0, |&h| self.load[h])
    }

    /// The gains of writing `y` over a replica of `x` on GPU `g`.
    fn replace(
        &mut self,
        g: usize,
        x: usize,
        y: usize,
        max: f64,
        order: &[usize],
    ) -> Option<(f64, f64)> {
        self.begin();
        // Every holder of x (g included) at the new count, then g loses one x ...
        self.recount(x, self.pr_minus[x] - self.pr[x]);
        self.touch(g, -self.pr_minus[x]);
        // ... every holder of y at the new count, then g gains one y.
        self.recount(y, self.pr_plus[y] - self.pr[y]);
        self.touch(g, self.pr_plus[y]);
        self.judge(max, order)
    }
}
