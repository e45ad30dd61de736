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
    weights: Vec<f32>,
    group_sums: Vec<f32>,
    mlog2log: Vec<usize>,
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
    let c = layer.cluster;
    let (groups, nodes) = match layer.policy {
        Policy::Hierarchical => (c.groups, c.nodes),
        Policy::Global => (1, 1),
    };
    let experts = layer.num_experts();
    let group_size = experts / groups;
    let groups_per_node = groups / nodes;
    let experts_per_node = experts / nodes;
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
    weights.clear();
    weights.extend(layer.loads.iter().map(|&w| w as f32));

    // Step 1: groups to nodes, by greedy packing of f32 group sums.
    group_sums.clear();
    group_sums.extend(
        weights
            .chunks_exact(group_size)
            .map(|g| g.iter().fold(0.0f32, |acc, &x| acc + x)),
    );
    let packed = partitioner.greedy(group_sums, nodes)?;
    // Node-major ("meta-logical") order: node n holds meta ids n*E/N .. (n+1)*E/N.
    // Every entry is written below.
    mlog2log.truncate(experts);
    mlog2log.resize(experts, 0);
    for (g, (&node, &rank)) in packed.pack.iter().zip(&packed.rank).enumerate() {
        let base = (node * groups_per_node + rank) * group_size;
        for (j, meta) in mlog2log[base..base + group_size].iter_mut().enumerate() {
            *meta = g * group_size + j;
        }
    }

    let mut phy2log = Vec::with_capacity(c.replicas);
    let mut ranks = Vec::with_capacity(c.replicas);
    for members in mlog2log.chunks_exact(experts_per_node) {
        // Steps 2 and 3: replicate inside the node, then pack the node's replicas onto its
        // GPUs (slot order: GPU-major inside the node).
        node_weights.clear();
        node_weights.extend(members.iter().map(|&e| weights[e]));
        let slots = replicator.greedy(node_weights, slots_per_node, gpus_per_node)?;
        phy2log.extend(slots.owner.iter().map(|&m| members[m]));
        ranks.extend_from_slice(&slots.rank);
    }
    Ok(LayerSolution::heuristic(
        LayerPlacement::from_trusted_parts(phy2log, ranks),
    ))
}
