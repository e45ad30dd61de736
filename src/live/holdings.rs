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

/// Lists of values cut by key, in one flat buffer (no allocation per key): `of(k)` lists the
/// values of the entries of key `k`, in entry order, a value left out when its identity
/// equals that of the key's previous value (entries that come grouped, e.g. in slot order,
/// are listed once per group).
#[derive(Debug, Clone)]
pub(crate) struct KeyedLists {
    /// `list[start[k]..start[k + 1]]`: the values of key `k`.
    start: Vec<usize>,
    list: Vec<usize>,
}

impl KeyedLists {
    /// The lists of `keys` keys from `entries` (`(key, value)`, keys below `keys`; called
    /// twice: once to count, once to fill), `identity` telling which values repeat.
    pub(crate) fn build<I>(
        keys: usize,
        entries: impl Fn() -> I,
        identity: impl Fn(usize) -> usize,
    ) -> Self
    where
        I: Iterator<Item = (usize, usize)>,
    {
        let mut last = vec![usize::MAX; keys];
        let mut start = vec![0; keys + 1];
        for (k, v) in entries() {
            let id = identity(v);
            if last[k] != id {
                last[k] = id;
                start[k + 1] += 1;
            }
        }
        for k in 0..keys {
            start[k + 1] += start[k];
        }
        let mut list = vec![0; start[keys]];
        // Fill from each key's start (its count so far in `next`).
        let mut next = start.clone();
        last.fill(usize::MAX);
        for (k, v) in entries() {
            let id = identity(v);
            if last[k] != id {
                last[k] = id;
                list[next[k]] = v;
                next[k] += 1;
            }
        }
        Self { start, list }
    }

    /// The values of key `k`.
    pub(crate) fn of(&self, k: usize) -> &[usize] {
        &self.list[self.start[k]..self.start[k + 1]]
    }
}

/// The GPUs and the nodes that hold each expert in one layer's placement, each listed once
/// in increasing order (ids `>= experts` are ignored).
#[derive(Debug, Clone)]
pub(crate) struct Holders {
    gpus: KeyedLists,
    nodes: KeyedLists,
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
        let same = |v: usize| v;
        Self {
            gpus: KeyedLists::build(experts, entries, same),
            nodes: KeyedLists::build(
                experts,
                || entries().map(|(e, g)| (e, node_of(cluster, g))),
                same,
            ),
        }
    }

    /// The GPUs holding `e`, in increasing order.
    pub(crate) fn gpus(&self, e: usize) -> &[usize] {
        self.gpus.of(e)
    }

    /// The nodes holding `e`, in increasing order.
    pub(crate) fn nodes(&self, e: usize) -> &[usize] {
        self.nodes.of(e)
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
