//! DeepSeek's EPLB greedy heuristic, bit-exact with `eplb.py`.

use std::cell::RefCell;

use eplb_solvers::partition::BalancedPartitioner;
use eplb_solvers::replicate::ReplicaPacker;

use crate::error::Result;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
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
}

fn solve(ws: &mut Workspace, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
    let c = layer.cluster();
    let (groups, nodes) = match layer.policy() {
        Policy::Hierarchical => (c.groups, c.nodes),
        Policy::Global => (1, 1),
    };
    let experts = layer.num_experts();
    let group_size = experts / groups;
    let groups_per_node = groups / nodes;
    let slots_per_node = c.replicas / nodes;
    let gpus_per_node = c.gpus / nodes;

    let Workspace {
        partitioner,
        replicator,
        weights,
        group_sums,
        mlog2log,
        node_weights,
    } = ws;
    let kernels = layer.budget().kernels;
    partitioner.set_kernels(kernels);
    replicator.set_kernels(kernels);
    weights.clear();
    weights.extend(layer.loads().iter().map(|&w| w as f32));
    let slots = if groups == 1 {
        // Global: one node holding every expert in id order.
        replicator.greedy_segments(weights, 1, c.replicas, c.gpus)?
    } else {
        // Step 1: groups to nodes, by greedy packing of f32 group sums. Node-major
        // ("meta-logical") order: node n holds meta ids n*E/N .. (n+1)*E/N, its groups in
        // the order they were packed.
        sum_groups(weights, groups, group_sums);
        let packed = partitioner.greedy(group_sums, nodes)?;
        mlog2log.resize(experts, 0);
        node_weights.resize(experts, 0.0);
        for (g, (&node, &rank)) in packed.pack.iter().zip(&packed.rank).enumerate() {
            let meta = (node * groups_per_node + rank) * group_size..;
            let experts = g * group_size..(g + 1) * group_size;
            node_weights[meta.clone()][..group_size].copy_from_slice(&weights[experts.clone()]);
            for (to, expert) in mlog2log[meta][..group_size].iter_mut().zip(experts) {
                *to = expert;
            }
        }
        // Steps 2 and 3, for all nodes at once: replicate inside each node, then pack the
        // node's replicas onto its GPUs (slot order: node-major, then GPU-major inside the
        // node). Owners come back as expert ids.
        replicator.greedy_segments_labelled(
            node_weights,
            mlog2log,
            nodes,
            slots_per_node,
            gpus_per_node,
        )?
    };
    Ok(LayerSolution::heuristic(
        LayerPlacement::from_trusted_parts(slots.owner.clone(), slots.rank.clone()),
    ))
}

/// Every group's load sum in `f32`, each summed in expert order as `eplb.py` does (the groups'
/// addition chains are independent, so the processor overlaps them).
fn sum_groups(weights: &[f32], groups: usize, sums: &mut Vec<f32>) {
    let group_size = weights.len() / groups;
    sums.clear();
    sums.extend(
        weights
            .chunks_exact(group_size)
            .map(|group| group.iter().fold(0.0, |sum, &w| sum + w)),
    );
}
