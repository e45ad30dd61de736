//! Lower bounds on the optimal maximum GPU load of one layer.
//!
//! Every bound here is valid for *any* placement satisfying the layer's policy, so
//! `(max_load - bound) / bound` is a certified upper limit on how far a placement is from
//! optimal.
//!
//! - **average**: `sum(w) / P` — some GPU carries at least the mean.
//! - **replication** (`T_rep`): the smallest achievable largest per-replica load `w_e / c_e`
//!   with `R` slots in total ([`min_max_share`]); the GPU holding that replica carries at least
//!   that much.
//! - **node** (hierarchical policy only): groups go to nodes whole, `G / N` per node, and each
//!   node has exactly `R / N` slots for its own experts. For a node holding the group set `U`,
//!   its busiest GPU carries at least `max(sum(U) / (P / N), T_rep(U, R / N))`; the bound is the
//!   minimum over all ways to split groups into nodes of the largest such node value, found by
//!   branch and bound over the splits (falling back to a weaker closed form when the search
//!   would be too large).

use std::collections::HashMap;

use eplb_solvers::apportion::min_max_share;
use serde::Serialize;

use crate::problem::{LayerProblem, Policy};

/// Search nodes the exact node bound may visit before it falls back to the closed form.
const NODE_BOUND_BUDGET: usize = 200_000;

/// The lower bounds of one layer. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LowerBounds {
    /// `sum(w) / P`.
    pub average: f64,
    /// `T_rep`: the smallest achievable largest per-replica load.
    pub replication: f64,
    /// The node-level bound of the hierarchical policy (`None` under the global policy).
    pub node: Option<f64>,
}

impl LowerBounds {
    /// The strongest of the bounds.
    pub fn best(&self) -> f64 {
        self.average
            .max(self.replication)
            .max(self.node.unwrap_or(0.0))
    }
}

/// Computes the lower bounds of a layer.
///
/// ```
/// use eplb::{bounds::lower_bounds, Cluster, Loads, PolicyChoice, Problem};
/// // (3, 3, 2) on 2 GPUs x 2 slots: mean 4.0, and splitting one 3 leaves a 3.0 replica.
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
/// let p = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
/// let b = lower_bounds(&p.layer(0));
/// assert_eq!((b.average, b.replication, b.best()), (4.0, 3.0, 4.0));
/// ```
///
/// # Complexity
/// `O(R log E)` for the global bounds; the node bound visits at most a fixed budget of group
/// splits, each closing node costing one `O(R/N log E)` apportionment (memoised per group set).
pub fn lower_bounds(layer: &LayerProblem<'_>) -> LowerBounds {
    let cluster = layer.cluster;
    let average = layer.total_load() / cluster.gpus as f64;
    let replication = min_max_share(layer.loads, cluster.replicas).unwrap_or(0.0);
    let node = (layer.policy == Policy::Hierarchical).then(|| node_bound(layer));
    LowerBounds {
        average,
        replication,
        node,
    }
}

/// Evaluates node values of group sets, memoised by the set's bit mask.
struct NodeValues<'a> {
    layer: &'a LayerProblem<'a>,
    group_sums: Vec<f64>,
    gpus_per_node: f64,
    slots_per_node: usize,
    memo: HashMap<Vec<bool>, f64>,
}

impl NodeValues<'_> {
    /// `max(sum(U) / (P/N), T_rep(U, R/N))` for the group set `U`.
    fn value(&mut self, set: &[bool]) -> f64 {
        if let Some(&v) = self.memo.get(set) {
            return v;
        }
        let size = self.layer.group_size();
        let mut loads = Vec::new();
        let mut sum = 0.0;
        for (g, _) in set.iter().enumerate().filter(|(_, &inside)| inside) {
            loads.extend_from_slice(&self.layer.loads[g * size..(g + 1) * size]);
            sum += self.group_sums[g];
        }
        let rep = min_max_share(&loads, self.slots_per_node).unwrap_or(0.0);
        let v = (sum / self.gpus_per_node).max(rep);
        self.memo.insert(set.to_vec(), v);
        v
    }
}

fn node_bound(layer: &LayerProblem<'_>) -> f64 {
    let c = layer.cluster;
    let (groups, nodes) = (c.groups, c.nodes);
    let per_node = groups / nodes;
    let size = layer.group_size();
    let group_sums: Vec<f64> = layer
        .loads
        .chunks_exact(size)
        .map(|g| g.iter().sum())
        .collect();
    let mut values = NodeValues {
        layer,
        group_sums,
        gpus_per_node: (c.gpus / nodes) as f64,
        slots_per_node: c.replicas / nodes,
        memo: HashMap::new(),
    };
    let fallback = closed_form_node_bound(&mut values, per_node);
    let mut order: Vec<usize> = (0..groups).collect();
    order.sort_by(|&a, &b| values.group_sums[b].total_cmp(&values.group_sums[a]));
    let mut search = SplitSearch {
        order,
        per_node,
        blocks: vec![Block::new(groups); nodes],
        best: f64::INFINITY,
        visited: 0,
    };
    search.descend(&mut values, 0, 0.0);
    if search.visited > NODE_BOUND_BUDGET {
        fallback
    } else {
        search.best.max(fallback)
    }
}

/// A weaker bound that needs no search: the node holding group `g` also holds `G/N - 1` other
/// groups, at least as heavy as the lightest ones, and needs `T_rep` of `g`'s experts alone.
fn closed_form_node_bound(values: &mut NodeValues<'_>, per_node: usize) -> f64 {
    let groups = values.group_sums.len();
    let mut sorted = values.group_sums.clone();
    sorted.sort_by(f64::total_cmp);
    let mut best: f64 = 0.0;
    for g in 0..groups {
        let s = values.group_sums[g];
        // The k-1 lightest groups other than g.
        let mut others = 0.0;
        let mut taken = 0;
        let mut skipped_self = false;
        for &x in &sorted {
            if taken == per_node - 1 {
                break;
            }
            if !skipped_self && x == s {
                skipped_self = true;
                continue;
            }
            others += x;
            taken += 1;
        }
        let mut only_g = vec![false; groups];
        only_g[g] = true;
        let rep = values.value(&only_g);
        best = best.max((s + others) / values.gpus_per_node).max(rep);
    }
    best
}

#[derive(Clone)]
struct Block {
    set: Vec<bool>,
    count: usize,
    sum: f64,
}

impl Block {
    fn new(groups: usize) -> Self {
        Self {
            set: vec![false; groups],
            count: 0,
            sum: 0.0,
        }
    }
}

/// Branch and bound over splits of groups into nodes (identical nodes, so an empty node is
/// only ever opened once per level).
struct SplitSearch {
    order: Vec<usize>,
    per_node: usize,
    blocks: Vec<Block>,
    best: f64,
    visited: usize,
}

impl SplitSearch {
    fn descend(&mut self, values: &mut NodeValues<'_>, depth: usize, worst_closed: f64) {
        self.visited += 1;
        if self.visited > NODE_BOUND_BUDGET || worst_closed >= self.best {
            return;
        }
        if depth == self.order.len() {
            self.best = worst_closed;
            return;
        }
        let g = self.order[depth];
        let mut opened_empty = false;
        for b in 0..self.blocks.len() {
            let block = &self.blocks[b];
            if block.count == self.per_node || (block.count == 0 && opened_empty) {
                continue;
            }
            opened_empty |= block.count == 0;
            let previous_sum = block.sum;
            let sum = previous_sum + values.group_sums[g];
            if sum / values.gpus_per_node >= self.best {
                continue;
            }
            let block = &mut self.blocks[b];
            block.set[g] = true;
            block.count += 1;
            block.sum = sum;
            let closed = if block.count == self.per_node {
                let set = block.set.clone();
                worst_closed.max(values.value(&set))
            } else {
                worst_closed
            };
            self.descend(values, depth + 1, closed);
            let block = &mut self.blocks[b];
            block.set[g] = false;
            block.count -= 1;
            block.sum = previous_sum;
        }
    }
}
