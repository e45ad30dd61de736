//! `refine`: optimal replica counts, a balanced largest-differencing packing, and local
//! search (swaps, pair swaps, replica-count moves) that stops at the lower bound; never worse
//! than greedy.

use std::cell::RefCell;

use eplb_solvers::apportion::Apportioner;
use eplb_solvers::rebalance::{CopyPacker, PackLimits};
use eplb_solvers::split::assign::{AssignSearch, Child};

use crate::error::Result;
use crate::evaluate::max_gpu_load;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
use crate::split::{BalancedSplit, ChildCapacity, SplitProblem};
use crate::strategies::Greedy;
use crate::strategy::{LayerSolution, PlacementStrategy};

/// Improves on DeepSeek's greedy EPLB.
///
/// - **Global policy**: the replica counts start from the min-max apportionment (greedy's
///   counts, in `f64`); the replicas are packed onto GPUs by balanced largest differencing
///   (Karmarkar–Karp with `R/P` replicas per GPU), balanced by up to two sweeps (six with
///   128 GPUs or more and 7 slots per GPU or more) that pair the busiest GPUs with the least
///   busy ones, and improved by local search on the busiest
///   GPU: single swaps, pair swaps and replica-count moves (take a replica from one expert and
///   give it to another). The search stops as soon as the busiest GPU is within `7e-5`
///   (0.007%, relative) of the lower bound `max(sum/P, T_rep)`, or `3.5e-4` (0.035%) with
///   fewer than 8 slots per GPU or 128 GPUs or more (see [`PackLimits::gap_for`]); with
///   128 GPUs or more also when the busiest GPU stalls (lowered by less than 0.002% of the
///   bound over `P/4` moves) or when the search has evaluated
///   [`DEFAULT_WIDE_BUDGET`](eplb_solvers::rebalance::DEFAULT_WIDE_BUDGET) candidate moves
///   (a bounded amount of work per layer, a count, so deterministic; `refine-deep` goes on
///   from there without a budget), and with 2 slots per GPU there the copies stay paired
///   heaviest with lightest and only replica counts move. See [`eplb_solvers::rebalance`].
/// - **Hierarchical policy**: the groups-to-nodes split minimises the node-level bound (the
///   same objective as [`BalancedSplit`], searched by branch and bound over the group sets
///   with each node's `T_rep` computed from its groups' heaviest experts only), then each
///   node's experts get their optimal replica counts and are packed onto the node's GPUs as
///   above; a node's search stops once its busiest GPU is within `7e-5` of the layer's node
///   bound (lighter nodes need not be perfect).
///
/// [`Refine::deep`] (`refine-deep`) goes on from where `refine` stops towards the bound
/// itself and adds kicks: when stuck, a replica-count move that lowers the busiest GPU but
/// lifts another above it is applied anyway and the search descends again, kept only if the
/// peak ends lower; so it is never worse than `refine`.
///
/// Either way the result's largest GPU load (summed by the packer exactly as the evaluator
/// sums it) is compared with that of [`Greedy`]'s placement and the better placement is
/// returned (greedy's on ties), so `refine` is never worse than greedy. The
/// search is bounded by move counts, not time: the output is deterministic.
///
/// # Complexity
///
/// Per layer: the apportionment `O(E + X log E)`, the differencing `O(R log R)`, then at most
/// [`PackLimits::max_moves`](eplb_solvers::rebalance::PackLimits) improving moves, each
/// `O(S² + E)` for `S = R/P` slots per GPU (pair swaps against the busiest GPU's partners,
/// count moves over the experts), and [`greedy`](Greedy)'s cost for the never-worse check.
/// Under the hierarchical policy the split search visits at most 2,000 branch-and-bound
/// nodes (one memoised `T_rep` per group set, over each group's `x + 1` heaviest experts).
/// Work is capped by counts, not by time, so the answer is deterministic. `refine-deep` adds
/// up to 4 kicks, each followed by a new descent of at most `max_moves` moves.
///
/// ```
/// use eplb::{strategies::{Greedy, Refine}, Cluster, Loads, PolicyChoice, Problem};
/// // The design example: loads (3, 3, 2) on 2 GPUs x 2 slots. Greedy replicates a 3 (4.5);
/// // the optimum replicates the small expert (4.0).
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
/// let max = |s: &dyn eplb::PlacementStrategy| {
///     let sol = eplb::solve(&problem, s, &Default::default()).unwrap();
///     eplb::evaluate(&problem, &sol.placement, &[]).unwrap().layers[0].max_load
/// };
/// assert_eq!(max(&Greedy), 4.5);
/// assert_eq!(max(&Refine::default()), 4.0);
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Refine {
    limits: PackLimits,
    name: &'static str,
}

impl Default for Refine {
    /// `refine`: local search without kicks.
    fn default() -> Self {
        Self {
            limits: PackLimits::default(),
            name: "refine",
        }
    }
}

impl Refine {
    /// `refine-deep`: the local search goes on from where `refine` stops to the bound itself
    /// and kicks out of local optima with replica-count moves ([`PackLimits::deep`]); slower
    /// than `refine`, never higher peaks.
    pub fn deep() -> Self {
        Self {
            limits: PackLimits::deep(),
            name: "refine-deep",
        }
    }

    /// A `refine` strategy whose local search applies at most `max_moves` improving moves per
    /// GPU-packing sub-problem (and no kicks).
    pub fn with_max_moves(max_moves: usize) -> Self {
        Self::with_limits(PackLimits {
            max_moves,
            ..PackLimits::default()
        })
    }

    /// A `refine` strategy with the given local-search limits (its
    /// [`PackLimits::target`] is ignored: under the hierarchical policy every node is given
    /// the layer's node bound as its target).
    pub fn with_limits(limits: PackLimits) -> Self {
        Self {
            limits,
            ..Self::default()
        }
    }
}

/// Engines and buffers reused across layers on one thread.
#[derive(Default)]
struct Workspace {
    apportioner: Apportioner,
    packer: CopyPacker,
    split: NodeSplit,
    counts: Vec<usize>,
    members: Vec<usize>,
    node_loads: Vec<f64>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

impl PlacementStrategy for Refine {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        if self.limits.max_kicks == 0 {
            "optimal counts + balanced largest differencing + local search (swaps, pair swaps, replica-count moves) to the bound; never worse than greedy"
        } else {
            "refine plus kicks: non-improving replica-count moves followed by a new descent, kept when they lower the peak; never worse than greedy"
        }
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let packed = WORKSPACE.with(|ws| {
            let ws = &mut *ws.borrow_mut();
            ws.packer.set_kernels(layer.budget().kernels);
            match layer.policy() {
                Policy::Global => self.solve_global(ws, layer),
                Policy::Hierarchical => self.solve_hierarchical(ws, layer),
            }
        })?;
        let greedy = Greedy.solve_layer(layer)?;
        if packed.peak < max_gpu_load(layer, &greedy.placement) {
            let improved = LayerPlacement::from_phy2log(packed.phy2log);
            debug_assert_eq!(packed.peak, max_gpu_load(layer, &improved));
            Ok(LayerSolution::heuristic(improved))
        } else {
            Ok(greedy)
        }
    }
}

/// `refine`'s placement of one layer and its largest GPU load, as the evaluator computes it.
struct Packed {
    phy2log: Vec<usize>,
    peak: f64,
}

impl Refine {
    fn solve_global(&self, ws: &mut Workspace, layer: &LayerProblem<'_>) -> Result<Packed> {
        let c = layer.cluster();
        let limits = PackLimits {
            target: 0.0,
            ..self.limits
        };
        ws.counts.clear();
        ws.counts
            .extend_from_slice(ws.apportioner.counts_f64(layer.loads(), c.replicas)?);
        let phy2log = ws.packer.pack(layer.loads(), &ws.counts, c.gpus, limits)?;
        Ok(Packed {
            phy2log,
            peak: ws.packer.peak(),
        })
    }

    fn solve_hierarchical(&self, ws: &mut Workspace, layer: &LayerProblem<'_>) -> Result<Packed> {
        let c = layer.cluster();
        let (nodes, size) = (c.nodes, layer.group_size());
        let slots = c.replicas / nodes;
        let capacity = ChildCapacity {
            groups: c.groups / nodes,
            gpus: c.gpus / nodes,
            slots,
        };
        let (split, bound) = ws
            .split
            .split(layer, capacity, nodes, &mut ws.apportioner)?;
        let limits = PackLimits {
            target: bound,
            ..self.limits
        };
        let mut phy2log = vec![0; c.replicas];
        let mut peak = 0.0f64;
        for (node, groups) in split.iter().enumerate() {
            ws.members.clear();
            ws.members
                .extend(groups.iter().flat_map(|&g| g * size..(g + 1) * size));
            ws.node_loads.clear();
            ws.node_loads
                .extend(ws.members.iter().map(|&e| layer.loads()[e]));
            ws.counts.clear();
            ws.counts
                .extend_from_slice(ws.apportioner.counts_f64(&ws.node_loads, slots)?);
            let items = ws
                .packer
                .pack(&ws.node_loads, &ws.counts, capacity.gpus, limits)?;
            for (s, &i) in items.iter().enumerate() {
                phy2log[node * slots + s] = ws.members[i];
            }
            // Every replica of a node's expert is on the node: its GPUs carry what the
            // packer's bins carry.
            peak = peak.max(ws.packer.peak());
        }
        Ok(Packed { phy2log, peak })
    }
}

/// The groups-to-nodes split minimising the node-level bound `max over nodes of
/// max(node_sum / gpus, T_rep(node, slots))`: the split engine's branch and bound
/// ([`AssignSearch`]) over the assignments of groups (heaviest first) to identical nodes, from
/// eplb.py's greedy split, within a budget of search nodes (deterministic).
///
/// A node with `x` extra slots (slots minus experts) gives extra replicas only to its `x + 1`
/// heaviest experts, so `T_rep` of a set of groups is that of the union of each group's
/// `x + 1` heaviest loads with `x` extra copies: cheap, and memoised per set of groups.
#[derive(Debug, Default)]
struct NodeSplit {
    sums: Vec<f64>,
    /// Each group's heaviest loads (`x + 1` at most, in no particular order).
    tops: Vec<Vec<f64>>,
    order: Vec<usize>,
    merged: Vec<f64>,
    start: Vec<Vec<usize>>,
    start_sum: Vec<f64>,
    /// The engine, kept with its buffers.
    search: Option<AssignSearch<f64>>,
}

/// Search nodes of the split search at most. DeepSeek's shapes (8 groups on 4 or 8 nodes)
/// are searched completely in far fewer; with many groups per layer (64 groups on 16 nodes)
/// the search never completes, and on synthetic log-normal loads 20,000 nodes (ten times the
/// work) found no better split than 500 do.
const SPLIT_BUDGET: usize = 2_000;

impl NodeSplit {
    /// The split (groups ascending inside each node) and its value.
    fn split(
        &mut self,
        layer: &LayerProblem<'_>,
        cap: ChildCapacity,
        nodes: usize,
        apportioner: &mut Apportioner,
    ) -> Result<(Vec<Vec<usize>>, f64)> {
        let groups = layer.cluster().groups;
        if groups > 64 {
            // Many groups: the general split with the full `T_rep` of every node.
            let all: Vec<usize> = (0..groups).collect();
            let children = vec![cap; nodes];
            let p = SplitProblem {
                layer,
                groups: &all,
                children: &children,
            };
            let outcome = BalancedSplit::default().search(&p)?;
            return Ok((outcome.split, outcome.value));
        }
        let size = layer.group_size();
        let extra = cap.slots - cap.groups * size;
        self.sums.clear();
        self.tops.resize(groups, Vec::new());
        for g in 0..groups {
            let loads = &layer.loads()[g * size..(g + 1) * size];
            self.sums.push(loads.iter().sum());
            let top = &mut self.tops[g];
            top.clear();
            top.extend_from_slice(loads);
            if top.len() > extra + 1 {
                top.select_nth_unstable_by(extra, |a, b| b.total_cmp(a));
                top.truncate(extra + 1);
            }
        }
        self.order.clear();
        self.order.extend(0..groups);
        let sums = &self.sums;
        self.order
            .sort_by(|&a, &b| sums[b].total_cmp(&sums[a]).then(a.cmp(&b)));
        // Start: the heaviest group into the lightest node that is not full.
        self.start.resize(nodes, Vec::new());
        self.start.truncate(nodes);
        self.start.iter_mut().for_each(Vec::clear);
        self.start_sum.clear();
        self.start_sum.resize(nodes, 0.0);
        for &g in &self.order {
            let n = (0..nodes)
                .filter(|&n| self.start[n].len() < cap.groups)
                .min_by(|&a, &b| self.start_sum[a].total_cmp(&self.start_sum[b]))
                .unwrap_or(0);
            self.start[n].push(g);
            self.start_sum[n] += self.sums[g];
        }
        let children = vec![
            Child {
                groups: cap.groups,
                kind: 0,
            };
            nodes
        ];
        let (tops, merged) = (&self.tops, &mut self.merged);
        let search = self
            .search
            .get_or_insert_with(|| AssignSearch::with_budget(SPLIT_BUDGET));
        let found = search.run(
            &self.sums,
            &children,
            &self.start,
            |_, set| node_value(sums, tops, merged, set, cap, extra, apportioner),
            |_, sum| sum / cap.gpus as f64,
        )?;
        Ok((found.sets, found.value))
    }
}

/// `max(sum / gpus, T_rep)` of the node holding the groups of `set` (ascending), `T_rep` from
/// the groups' heaviest loads `tops` (`merged` is a buffer).
fn node_value(
    sums: &[f64],
    tops: &[Vec<f64>],
    merged: &mut Vec<f64>,
    set: &[usize],
    cap: ChildCapacity,
    extra: usize,
    apportioner: &mut Apportioner,
) -> Result<f64> {
    merged.clear();
    let mut sum = 0.0;
    for &g in set {
        sum += sums[g];
        merged.extend_from_slice(&tops[g]);
    }
    if merged.len() > extra + 1 {
        merged.select_nth_unstable_by(extra, |a, b| b.total_cmp(a));
        merged.truncate(extra + 1);
    }
    let rep = apportioner.largest_share(merged, merged.len() + extra)?;
    Ok((sum / cap.gpus as f64).max(rep))
}
