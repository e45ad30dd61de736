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
//!   branch and bound over the splits ([`BalancedSplit::search`], the same search the
//!   hierarchical strategies use to choose their split), falling back to a weaker closed form
//!   when the search would be too large. Which of the two was reported is
//!   [`LowerBounds::node_kind`]: a search cut short by its work budget says so
//!   ([`NodeBoundKind::ClosedForm`]), and `eplb place` / `eplb check` print a notice.

use eplb_solvers::apportion::min_max_share;
use serde::Serialize;

use crate::problem::{LayerProblem, Policy};
use crate::split::{BalancedSplit, ChildCapacity, SplitOutcome, SplitProblem};

/// Search nodes the exact node bound may visit before it falls back to the closed form, on
/// nodes of at most [`NODE_BOUND_SLOTS`] slots.
const NODE_BOUND_BUDGET: usize = 200_000;

/// Slots per node up to which the node bound gets its whole [`NODE_BOUND_BUDGET`]; above, the
/// budget shrinks in proportion (each search node costs an apportionment of a node's slots),
/// so the bound costs about the same on every shape: `R / N` slots give
/// `NODE_BOUND_BUDGET * NODE_BOUND_SLOTS / (R / N)` search nodes.
const NODE_BOUND_SLOTS: usize = 16;

/// The lower bounds of one layer. See the [module docs](self).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LowerBounds {
    /// `sum(w) / P`.
    pub average: f64,
    /// `T_rep`: the smallest achievable largest per-replica load.
    pub replication: f64,
    /// The node-level bound of the hierarchical policy (`None` under the global policy).
    pub node: Option<f64>,
    /// How `node` was found (`None` under the global policy).
    pub node_kind: Option<NodeBoundKind>,
}

/// How the hierarchical node bound of [`LowerBounds::node`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum NodeBoundKind {
    /// The split search finished: the smallest largest node value over all splits of the
    /// groups into nodes (the strongest node bound).
    BestSplit,
    /// The split search was cut short by its work budget: the closed form (the heaviest
    /// group with the lightest others, and each group's own `T_rep`) is reported instead —
    /// valid, but weaker.
    ClosedForm,
}

impl LowerBounds {
    /// The strongest of the bounds, as computed in `f64` (it may sit an ulp above the exact
    /// value; [`proven_best`](Self::proven_best) never does).
    pub fn best(&self) -> f64 {
        self.average
            .max(self.replication)
            .max(self.node.unwrap_or(0.0))
    }

    /// The [strongest bound](Self::best) of `layer` (whose bounds these are), never above the
    /// exact optimum: as computed when it is certainly exact, else lowered by the largest
    /// rounding error of its `f64` arithmetic. Every bound is a sum of at most `E` loads
    /// divided by an integer `k <= R`: the relative error is below `(E + 1) * 2^-53`, so
    /// `best * (1 - (E + 2) * f64::EPSILON)`, rounded down once more, is valid. It is
    /// certainly exact when the loads are integers summing to at most `2^53` (the sums are
    /// then exact) and the quotient is too far from every other `f64` to have been rounded
    /// (for example an integer or a half on up to `2^20` slots below `2^32`; not a
    /// replication bound such as `w / 3`, whose quotient is not an `f64`).
    pub fn proven_best(&self, layer: &LayerProblem<'_>) -> f64 {
        let best = self.best();
        if certainly_exact(best, layer) {
            return best;
        }
        let terms = layer.num_experts() as f64 + 2.0;
        let lowered = best * (1.0 - terms * f64::EPSILON);
        lowered.next_down().max(0.0)
    }
}

/// The [strongest bound](LowerBounds::best) of a layer, never above the exact optimum (see
/// [`LowerBounds::proven_best`]). This is the bound a certificate may build on (the
/// [`Certified`](crate::strategies::Certified) adapter hands it to its engine) and the
/// evaluator's reported `lower_bound`.
///
/// ```
/// use eplb::{bounds::{lower_bounds, proven_lower_bound}, Cluster, Loads, PolicyChoice, Problem};
/// // One expert of load 1 on 5 GPUs: the average 1/5 rounds *up* to the f64 `0.2`.
/// let loads = Loads::from_rows(&[vec![1.0]]).unwrap();
/// let p = Problem::new(loads, Cluster::new(5, 5), PolicyChoice::Global).unwrap();
/// assert_eq!(lower_bounds(&p.layer(0)).best(), 0.2);
/// assert!(proven_lower_bound(&p.layer(0)) < 0.2);
/// // Integer loads: a bound with a short binary fraction is exact as computed
/// // ((3 + 5) / 2 = 4 is beaten by the unsplittable 5; 9 / 2 = 4.5 on two GPUs).
/// let loads = Loads::from_rows(&[vec![3.0, 5.0]]).unwrap();
/// let p = Problem::new(loads, Cluster::new(2, 2), PolicyChoice::Global).unwrap();
/// assert_eq!(proven_lower_bound(&p.layer(0)), 5.0);
/// let loads = Loads::from_rows(&[vec![4.0, 5.0]]).unwrap();
/// let p = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
/// assert_eq!(proven_lower_bound(&p.layer(0)), 4.5);
/// ```
pub fn proven_lower_bound(layer: &LayerProblem<'_>) -> f64 {
    lower_bounds(layer).proven_best(layer)
}

/// Totals up to which sums of integer loads are exact in `f64`.
pub(crate) const EXACT_TOTAL: f64 = 9_007_199_254_740_992.0; // 2^53

/// True when `bound`, computed in `f64` as one correctly rounded quotient `S / k` of an exact
/// integer `S` by an integer `1 <= k <= R`, certainly equals `S / k`. With `d` the fewest binary
/// digits after the point that `bound` needs, a quotient that differs from `bound` lies at
/// least `1 / (k 2^d) >= 1 / (R 2^d)` from it; a correctly rounded one lies within half the
/// spacing of `f64`s at `bound`; so when `1 / (R 2^d)` exceeds that spacing (a factor two of
/// margin for computing it), the two are equal.
fn certainly_exact(bound: f64, layer: &LayerProblem<'_>) -> bool {
    if bound == 0.0 {
        return true;
    }
    let integral_loads = layer.loads().iter().all(|&w| w.fract() == 0.0);
    if !bound.is_finite() || !integral_loads || layer.total_load() > EXACT_TOTAL {
        return false;
    }
    let mut digits = 0;
    let mut scaled = bound;
    while scaled.fract() != 0.0 {
        if digits == 64 {
            return false;
        }
        scaled *= 2.0;
        digits += 1;
    }
    let spacing = bound.next_up() - bound;
    let distance = 1.0 / (layer.cluster().replicas as f64 * 2f64.powi(digits));
    distance > spacing
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
/// `O(R log E)` for the global bounds; the node bound visits at most a budget of group splits
/// inversely proportional to the slots per node, each closing node costing one
/// `O(R/N log E)` apportionment (memoised per group set), so its cost is about the same on
/// every shape; past its budget it falls back to the closed form (valid, weaker).
pub fn lower_bounds(layer: &LayerProblem<'_>) -> LowerBounds {
    let cluster = layer.cluster();
    let average = layer.total_load() / cluster.gpus as f64;
    let replication = min_max_share(layer.loads(), cluster.replicas).unwrap_or(0.0);
    let node = (layer.policy() == Policy::Hierarchical).then(|| node_bound(layer));
    LowerBounds {
        average,
        replication,
        node: node.map(|(value, _)| value),
        node_kind: node.map(|(_, kind)| kind),
    }
}

/// The node bound and how it was found.
fn node_bound(layer: &LayerProblem<'_>) -> (f64, NodeBoundKind) {
    let c = layer.cluster();
    let child = ChildCapacity {
        groups: c.groups / c.nodes,
        gpus: c.gpus / c.nodes,
        slots: c.replicas / c.nodes,
    };
    let children = vec![child; c.nodes];
    let groups: Vec<usize> = (0..c.groups).collect();
    let split = SplitProblem {
        layer,
        groups: &groups,
        children: &children,
    };
    let fallback = closed_form_node_bound(&split);
    // The search minimises exactly the node bound's objective; only a complete search proves
    // its minimum.
    let budget = NODE_BOUND_BUDGET * NODE_BOUND_SLOTS / child.slots.max(NODE_BOUND_SLOTS);
    match BalancedSplit::with_budget(budget).search(&split) {
        Ok(SplitOutcome {
            value,
            complete: true,
            ..
        }) => (value.max(fallback), NodeBoundKind::BestSplit),
        _ => (fallback, NodeBoundKind::ClosedForm),
    }
}

/// A weaker bound that needs no search: the node holding group `g` also holds `G/N - 1` other
/// groups, at least as heavy as the lightest ones, and needs `T_rep` of `g`'s experts alone.
fn closed_form_node_bound(split: &SplitProblem<'_>) -> f64 {
    let child = split.children[0];
    let per_node = child.groups;
    let group_sums: Vec<f64> = split.groups.iter().map(|&g| split.group_load(g)).collect();
    let mut sorted = group_sums.clone();
    sorted.sort_by(f64::total_cmp);
    let mut best: f64 = 0.0;
    for (g, &s) in group_sums.iter().enumerate() {
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
        let rep = split.child_value(&child, &[g]);
        best = best.max((s + others) / child.gpus as f64).max(rep);
    }
    best
}
