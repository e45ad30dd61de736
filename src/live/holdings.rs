//! Which experts every GPU and node holds, and the transfer count between two placements.

use serde::Serialize;

use crate::placement::LayerPlacement;
use crate::problem::Cluster;

/// The node of `gpu` (`g / (P / N)`; when GPUs do not split evenly over nodes, the nearest
/// even split `g * N / P`).
pub(crate) fn node_of(cluster: &Cluster, gpu: usize) -> usize {
    match cluster.gpus_per_node() {
        Some(q) => gpu / q,
        None => gpu * cluster.nodes / cluster.gpus,
    }
}

/// Whether each GPU and each node holds each expert in one layer's placement: the "held
/// before" of the transfer definition.
#[derive(Debug, Clone)]
pub(crate) struct Holdings {
    experts: usize,
    gpu: Vec<bool>,
    node: Vec<bool>,
}

impl Holdings {
    /// The holdings of `placement` (ids `>= experts` are ignored).
    pub(crate) fn new(cluster: &Cluster, experts: usize, placement: &LayerPlacement) -> Self {
        let s = cluster.slots_per_gpu();
        let mut gpu = vec![false; cluster.gpus * experts];
        let mut node = vec![false; cluster.nodes * experts];
        for (slot, &e) in placement.phy2log().iter().enumerate() {
            if e < experts && slot / s < cluster.gpus {
                gpu[(slot / s) * experts + e] = true;
                node[node_of(cluster, slot / s) * experts + e] = true;
            }
        }
        Self { experts, gpu, node }
    }

    /// True when `gpu` held `expert`.
    pub(crate) fn gpu_holds(&self, gpu: usize, expert: usize) -> bool {
        expert < self.experts && self.gpu[gpu * self.experts + expert]
    }

    /// True when some GPU of `node` held `expert`.
    pub(crate) fn node_holds(&self, node: usize, expert: usize) -> bool {
        expert < self.experts && self.node[node * self.experts + expert]
    }
}

/// The GPUs and the nodes that hold each expert in one layer's placement, each listed once
/// in increasing order (ids `>= experts` are ignored): two flat lists cut by expert (no
/// allocation per expert).
#[derive(Debug, Clone)]
pub(crate) struct Holders {
    /// `gpu_list[gpu_start[e]..gpu_start[e + 1]]`: the GPUs holding `e`.
    gpu_start: Vec<usize>,
    gpu_list: Vec<usize>,
    /// `node_list[node_start[e]..node_start[e + 1]]`: the nodes holding `e`.
    node_start: Vec<usize>,
    node_list: Vec<usize>,
}

impl Holders {
    /// The holders of every expert in `placement`.
    pub(crate) fn new(cluster: &Cluster, experts: usize, placement: &LayerPlacement) -> Self {
        let s = cluster.slots_per_gpu();
        // The live entries (expert, GPU) in slot order: GPUs, and so nodes (`node_of` never
        // decreases with the GPU), come in increasing order, so a repeat is the last entry
        // of its expert.
        let entries = || {
            placement
                .phy2log()
                .iter()
                .enumerate()
                .map(move |(slot, &e)| (e, slot / s))
                .filter(move |&(e, g)| e < experts && g < cluster.gpus)
        };
        let (mut last_gpu, mut last_node) = (vec![usize::MAX; experts], vec![usize::MAX; experts]);
        let (mut gpu_start, mut node_start) = (vec![0; experts + 1], vec![0; experts + 1]);
        for (e, g) in entries() {
            let n = node_of(cluster, g);
            if last_gpu[e] != g {
                last_gpu[e] = g;
                gpu_start[e + 1] += 1;
            }
            if last_node[e] != n {
                last_node[e] = n;
                node_start[e + 1] += 1;
            }
        }
        for e in 0..experts {
            gpu_start[e + 1] += gpu_start[e];
            node_start[e + 1] += node_start[e];
        }
        let (mut gpu_list, mut node_list) =
            (vec![0; gpu_start[experts]], vec![0; node_start[experts]]);
        // Fill from each expert's start (its count so far in `next_*`).
        let (mut next_gpu, mut next_node) = (gpu_start.clone(), node_start.clone());
        last_gpu.fill(usize::MAX);
        last_node.fill(usize::MAX);
        for (e, g) in entries() {
            let n = node_of(cluster, g);
            if last_gpu[e] != g {
                last_gpu[e] = g;
                gpu_list[next_gpu[e]] = g;
                next_gpu[e] += 1;
            }
            if last_node[e] != n {
                last_node[e] = n;
                node_list[next_node[e]] = n;
                next_node[e] += 1;
            }
        }
        Self {
            gpu_start,
            gpu_list,
            node_start,
            node_list,
        }
    }

    /// The GPUs holding `e`, in increasing order.
    pub(crate) fn gpus(&self, e: usize) -> &[usize] {
        &self.gpu_list[self.gpu_start[e]..self.gpu_start[e + 1]]
    }

    /// The nodes holding `e`, in increasing order.
    pub(crate) fn nodes(&self, e: usize) -> &[usize] {
        &self.node_list[self.node_start[e]..self.node_start[e + 1]]
    }
}

/// Transfers a new placement needs, from a current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct TransferCount {
    /// Replicas on a GPU that held no replica of their expert.
    pub transfers: usize,
    /// Transfers whose destination node held no replica of their expert.
    pub cross_node: usize,
}

/// The transfers and cross-node transfers `new` needs when the GPUs hold `current`.
///
/// ```
/// use eplb::live::count_transfers;
/// use eplb::{Cluster, LayerPlacement};
/// // 2 nodes of one GPU with 2 slots each.
/// let cluster = Cluster::new(4, 2).with_nodes(2);
/// let current = LayerPlacement::from_phy2log(vec![0, 1, 2, 3]);
/// let new = LayerPlacement::from_phy2log(vec![1, 0, 2, 0]); // expert 0 onto GPU 1
/// let count = count_transfers(&cluster, &current, &new);
/// assert_eq!((count.transfers, count.cross_node), (1, 1));
/// ```
pub fn count_transfers(
    cluster: &Cluster,
    current: &LayerPlacement,
    new: &LayerPlacement,
) -> TransferCount {
    let experts = experts_bound(current, new);
    let held = Holdings::new(cluster, experts, current);
    count_with(cluster, &held, new.phy2log())
}

/// The ids `0..n` that cover both placements' experts.
pub(crate) fn experts_bound(a: &LayerPlacement, b: &LayerPlacement) -> usize {
    a.phy2log()
        .iter()
        .chain(b.phy2log())
        .copied()
        .max()
        .map_or(0, |m| m.saturating_add(1))
        .min(a.phy2log().len() + b.phy2log().len())
}

/// [`count_transfers`] against precomputed holdings.
pub(crate) fn count_with(cluster: &Cluster, held: &Holdings, phy2log: &[usize]) -> TransferCount {
    let s = cluster.slots_per_gpu();
    let mut count = TransferCount::default();
    for (slot, &e) in phy2log.iter().enumerate() {
        let gpu = slot / s;
        if !held.gpu_holds(gpu, e) {
            count.transfers += 1;
            if !held.node_holds(node_of(cluster, gpu), e) {
                count.cross_node += 1;
            }
        }
    }
    count
}
