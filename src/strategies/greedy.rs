//! DeepSeek's EPLB greedy heuristic, bit-exact with `eplb.py`.

use std::cell::RefCell;

use eplb_solvers::partition::BalancedPartitioner;
use eplb_solvers::replicate::ReplicaPacker;

use eplb_solvers::kernels::Kernels;

use crate::error::Result;
use crate::placement::{DeepSeekFlat, FlatTables, LayerPlacement, Tables};
use crate::problem::{Cluster, LayerProblem, Policy, Problem};
use crate::runner::SolveOptions;
use crate::strategy::{LayerSolution, PlacementStrategy};

/// DeepSeek's EPLB (`rebalance_experts` of `eplb.py`), reproduced bit for bit (with a stable
/// sort: equal weights are visited in ascending index order).
///
/// Hierarchical policy: (1) pack expert groups to nodes with greedy balanced packing of the
/// group sums; (2) inside each node, hand out the node's `R/N` slots by repeatedly replicating
/// the expert with the largest `w / count`; (3) pack the node's replicas onto its GPUs with
/// greedy balanced packing. The global policy is the same with one group and one node.
/// All arithmetic is in `f32` in `eplb.py`'s order.
///
/// # Complexity
///
/// Per layer of `E` experts, `R` slots and `P` GPUs: `O(E log E + X log X + R log P)` time
/// with `X = R - E` extra replicas (sorting the experts, handing out the extras from a heap,
/// packing each replica into the lightest open GPU), plus `O(G log G + G log N)` for the
/// group-to-node packing under the hierarchical policy; `O(E + R)` memory, reused across
/// layers on one thread (no allocation once the buffers have grown).
///
/// ```
/// use eplb::{strategies::Greedy, Cluster, Loads, PolicyChoice, Problem};
/// // The README example of eplb.py.
/// let loads = Loads::from_rows(&[
///     vec![90.0, 132.0, 40.0, 61.0, 104.0, 165.0, 39.0, 4.0, 73.0, 56.0, 183.0, 86.0],
///     vec![20.0, 107.0, 104.0, 64.0, 19.0, 197.0, 187.0, 157.0, 172.0, 86.0, 16.0, 27.0],
/// ]).unwrap();
/// let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
/// let problem = Problem::new(loads, cluster, PolicyChoice::Auto).unwrap();
/// let solution = eplb::solve(&problem, &Greedy, &Default::default()).unwrap();
/// assert_eq!(
///     solution.placement.layer(0).phy2log(),
///     &[5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1]
/// );
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

/// Engines and buffers reused across layers on one thread.
#[derive(Default)]
struct Workspace {
    partitioner: BalancedPartitioner,
    replicator: ReplicaPacker,
    /// The layer's loads in `f32`, by expert.
    weights: Vec<f32>,
    group_sums: Vec<f32>,
    /// Hierarchical policy: `mlog2log[meta]` is the expert with meta-logical id `meta`.
    mlog2log: Vec<usize>,
    /// The experts' loads in `f32`, in meta-logical order.
    node_weights: Vec<f32>,
}

thread_local! {
    static WORKSPACE: RefCell<Workspace> = RefCell::new(Workspace::default());
}

impl PlacementStrategy for Greedy {
    fn name(&self) -> &str {
        "greedy"
    }

    fn description(&self) -> &str {
        "DeepSeek EPLB greedy (bit-exact with eplb.py): replicate the hottest expert, pack replicas lightest-first"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        WORKSPACE.with(|ws| solve(&mut ws.borrow_mut(), layer))
    }

    /// On one thread (`threads: Some(1)`), and on any number for a problem of at most
    /// 24,576 slots over all layers (`BATCH_ON_ANY_THREADS`), every layer's nodes go to the engine in
    /// one call: no per-layer allocation or assembly, the nodes of different layers fill the
    /// lockstep kernels' lanes, and the engine's slots are written once into the tables.
    /// Larger problems on more threads are solved by the runner, layer by layer in parallel.
    fn solve_batch(
        &self,
        problem: &Problem,
        options: &SolveOptions,
        tables: Tables,
    ) -> Option<Result<DeepSeekFlat>> {
        let slots = problem.num_layers() * problem.cluster().replicas;
        if options.threads != Some(1) && slots > BATCH_ON_ANY_THREADS {
            return None;
        }
        let batched =
            WORKSPACE.with(|ws| solve_all(&mut ws.borrow_mut(), problem, options.kernels, tables));
        // An engine error (a load too large for `f32`) is reported as the layer-by-layer run
        // reports it: the lowest failing layer, named.
        Some(batched.or_else(|_| solve_tables_by_layer(problem, self, options, tables)))
    }
}

/// The most slots (layers × replicas) that `greedy` solves in one batch on the calling thread
/// whatever the thread count. Below it a whole problem takes well under a millisecond, which
/// the runner would spend on the calling thread anyway (waking a helper costs more), and the
/// batched path is the faster one there; above it, parallel layers pay. Measured on the
/// 2-core build machine (`eplb bench --strategy greedy`, one thread batched against two
/// threads layer by layer, medians): DeepSeek-V3's 58 layers × 288 slots 0.16 against
/// 0.21 ms, 64 × 320 0.36 against 0.44 ms, but 64 × 512 1.06 against 0.77 ms.
const BATCH_ON_ANY_THREADS: usize = 24_576;

/// The layer-by-layer tables (the runner's path without a batched one).
fn solve_tables_by_layer(
    problem: &Problem,
    strategy: &Greedy,
    options: &SolveOptions,
    tables: Tables,
) -> Result<DeepSeekFlat> {
    crate::runner::solve(problem, strategy, options)?
        .placement
        .to_deepseek_tables(tables)
}

/// How a layer splits into the engine's same-shape node sub-problems under its policy (the
/// global policy: one node holding every expert in id order).
#[derive(Debug, Clone, Copy)]
struct NodeShape {
    groups: usize,
    nodes: usize,
    experts: usize,
    slots_per_node: usize,
    gpus_per_node: usize,
}

impl NodeShape {
    fn of(cluster: &Cluster, policy: Policy, experts: usize) -> Self {
        let (groups, nodes) = match policy {
            Policy::Hierarchical => (cluster.groups, cluster.nodes),
            Policy::Global => (1, 1),
        };
        Self {
            groups,
            nodes,
            experts,
            slots_per_node: cluster.replicas / nodes,
            gpus_per_node: cluster.gpus / nodes,
        }
    }
}

impl Workspace {
    /// Writes one layer's node sub-problems at `base..base + E` of `node_weights` and
    /// `mlog2log` (sized by the caller): step 1 of the hierarchical policy, groups packed to
    /// nodes by greedy packing of their `f32` sums, laid out node-major ("meta-logical"
    /// order: node `n` holds meta ids `n*E/N .. (n+1)*E/N`, its groups in the order they were
    /// packed); under the global policy, the experts in id order.
    fn stage(&mut self, loads: &[f64], shape: NodeShape, base: usize) -> Result<()> {
        let items = base..base + shape.experts;
        if shape.groups == shape.nodes {
            // One group per node (or one node): every group stays where it is (`eplb.py`
            // packs one item per pack in order), so the loads go straight to their places;
            // the group sums are still checked (a sum too large for `f32` is an error).
            let node_weights = &mut self.node_weights[items.clone()];
            for (to, &w) in node_weights.iter_mut().zip(loads) {
                *to = w as f32;
            }
            if shape.groups > 1 {
                sum_groups(node_weights, shape.groups, &mut self.group_sums);
                self.partitioner.greedy(&self.group_sums, shape.nodes)?;
            }
            for (to, expert) in self.mlog2log[items].iter_mut().zip(0..) {
                *to = expert;
            }
            return Ok(());
        }
        let group_size = shape.experts / shape.groups;
        let groups_per_node = shape.groups / shape.nodes;
        self.weights.clear();
        self.weights.extend(loads.iter().map(|&w| w as f32));
        sum_groups(&self.weights, shape.groups, &mut self.group_sums);
        let packed = self.partitioner.greedy(&self.group_sums, shape.nodes)?;
        let node_weights = &mut self.node_weights[items.clone()];
        let mlog2log = &mut self.mlog2log[items];
        for (g, (&node, &rank)) in packed.pack.iter().zip(&packed.rank).enumerate() {
            let meta = (node * groups_per_node + rank) * group_size..;
            let experts = g * group_size..(g + 1) * group_size;
            node_weights[meta.clone()][..group_size]
                .copy_from_slice(&self.weights[experts.clone()]);
            for (to, expert) in mlog2log[meta][..group_size].iter_mut().zip(experts) {
                *to = expert;
            }
        }
        Ok(())
    }

    fn set_kernels(&mut self, kernels: Kernels) {
        self.partitioner.set_kernels(kernels);
        self.replicator.set_kernels(kernels);
    }
}

fn solve(ws: &mut Workspace, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
    let c = layer.cluster();
    let shape = NodeShape::of(c, layer.policy(), layer.num_experts());
    ws.set_kernels(layer.budget().kernels);
    let slots = if shape.groups == 1 {
        // Global: one node holding every expert in id order, owners its items.
        ws.weights.clear();
        ws.weights.extend(layer.loads().iter().map(|&w| w as f32));
        ws.replicator
            .greedy_segments(&ws.weights, 1, c.replicas, c.gpus)?
    } else {
        ws.mlog2log.resize(shape.experts, Default::default());
        ws.node_weights.resize(shape.experts, Default::default());
        ws.stage(layer.loads(), shape, 0)?;
        // Steps 2 and 3, for all nodes at once: replicate inside each node, then pack the
        // node's replicas onto its GPUs (slot order: node-major, then GPU-major inside the
        // node). Owners come back as expert ids.
        ws.replicator.greedy_segments_labelled(
            &ws.node_weights,
            &ws.mlog2log,
            shape.nodes,
            shape.slots_per_node,
            shape.gpus_per_node,
        )?
    };
    Ok(LayerSolution::heuristic(
        LayerPlacement::from_trusted_parts(slots.owner.clone(), slots.rank.clone()),
    ))
}

/// Slots per engine call of [`solve_all`]: enough layers that the nodes of several layers
/// fill the lockstep kernels' lanes, few enough that the engine's buffers stay in cache.
const BATCH_SLOTS: usize = 2048;

/// Every layer, in batches of layers: each batch's nodes staged one after the other and
/// solved in one engine call (the layers' nodes have the same shape: they are segments of
/// one call), the batch's slots written into `tables` while they are in cache.
fn solve_all(
    ws: &mut Workspace,
    problem: &Problem,
    kernels: Kernels,
    tables: Tables,
) -> Result<DeepSeekFlat> {
    let c = problem.cluster();
    let experts = problem.num_experts();
    let shape = NodeShape::of(c, problem.policy(), experts);
    let layers = problem.num_layers();
    // A multiple of four layers: one node per layer (the global policy) fills the four
    // lanes of the AVX2 kernels.
    let batch = (BATCH_SLOTS / c.replicas)
        .next_multiple_of(4)
        .clamp(4, layers.max(4));
    ws.set_kernels(kernels);
    let mut flat = FlatTables::new(experts, c.replicas, layers, tables);
    for first in (0..layers).step_by(batch) {
        let in_batch = batch.min(layers - first);
        ws.mlog2log.resize(in_batch * experts, Default::default());
        ws.node_weights
            .resize(in_batch * experts, Default::default());
        for l in 0..in_batch {
            ws.stage(problem.loads().layer(first + l), shape, l * experts)?;
        }
        let items = experts / shape.nodes;
        if ws
            .replicator
            .labels_in_lanes(items, shape.slots_per_node, shape.gpus_per_node)
        {
            // The slots' experts (and ranks) written straight into the tables (segment
            // `l * N + node`'s slots are the layer's node-major slots).
            ws.replicator.greedy_segments_label_slots(
                &ws.node_weights,
                &ws.mlog2log,
                in_batch * shape.nodes,
                shape.slots_per_node,
                shape.gpus_per_node,
                flat.label_slots(in_batch),
            )?;
            continue;
        }
        let slots = ws.replicator.greedy_segments_copies(
            &ws.node_weights,
            &ws.mlog2log,
            in_batch * shape.nodes,
            shape.slots_per_node,
            shape.gpus_per_node,
        )?;
        for l in 0..in_batch {
            flat.push_copies(
                &slots,
                l * c.replicas..(l + 1) * c.replicas,
                l * experts..(l + 1) * experts,
            );
        }
    }
    Ok(flat.finish())
}

/// Every group's load sum in `f32`, each summed in expert order as `eplb.py` does. Eight
/// groups are summed side by side (their addition chains are independent, so the processor
/// overlaps them; one group after another, each chain waited for the previous one's adds).
fn sum_groups(weights: &[f32], groups: usize, sums: &mut Vec<f32>) {
    const SIDE_BY_SIDE: usize = 8;
    let group_size = weights.len() / groups;
    sums.clear();
    for (chunk, first) in weights
        .chunks(SIDE_BY_SIDE * group_size)
        .zip((0..groups).step_by(SIDE_BY_SIDE))
    {
        if groups - first >= SIDE_BY_SIDE {
            let rows: [&[f32]; SIDE_BY_SIDE] =
                std::array::from_fn(|j| &chunk[j * group_size..(j + 1) * group_size]);
            let mut acc = [0.0f32; SIDE_BY_SIDE];
            for k in 0..group_size {
                for (sum, row) in acc.iter_mut().zip(&rows) {
                    *sum += row[k];
                }
            }
            sums.extend_from_slice(&acc);
        } else {
            sums.extend(
                chunk
                    .chunks_exact(group_size)
                    .map(|group| group.iter().fold(0.0, |sum, &w| sum + w)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The side-by-side group sums are every group's sum in expert order, bit for bit
        /// (group counts on both sides of a multiple of eight, weights from zero to near
        /// `f32::MAX`, so that some sums round and some overflow).
        #[test]
        fn group_sums_are_each_group_summed_in_order(
            groups in 1usize..20,
            group_size in 1usize..40,
            raw in proptest::collection::vec(
                prop_oneof![0.0f32..4.0, 0.0f32..1e10, Just(0.0), Just(3e38)],
                800,
            ),
        ) {
            let weights = &raw[..groups * group_size];
            let mut sums = Vec::new();
            sum_groups(weights, groups, &mut sums);
            let expected: Vec<u32> = weights
                .chunks_exact(group_size)
                .map(|g| g.iter().fold(0.0f32, |s, &w| s + w).to_bits())
                .collect();
            let got: Vec<u32> = sums.iter().map(|s| s.to_bits()).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
