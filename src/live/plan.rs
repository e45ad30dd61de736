//! The transfer plan: every layer's moves, their sources, and their schedule in rounds.
//!
//! A round lets every GPU send at most one expert and receive at most one. The transfers of
//! a layer form a bipartite multigraph (senders on one side, receivers on the other; built
//! with `petgraph`), and a schedule is a proper edge colouring of it. König's theorem says
//! the fewest colours is the largest degree: the lower bound `max(transfers into one GPU,
//! transfers out of one GPU)` is always reached. The colouring inserts the edges one by one;
//! when the first colour free at the sender is taken at the receiver, it swaps the two
//! colours along the alternating path from the receiver (which cannot reach the sender in a
//! bipartite graph).
//!
//! Sources: a GPU on the destination's node that holds the expert when there is one (the
//! transfer is then not cross-node), else any GPU that holds it; among those, the one with
//! the fewest sends so far (lowest id on ties), which keeps the largest out-degree low. Dead
//! GPUs never send; a replica that only dead GPUs held is a host reload (`from_gpu: null`).
//!
//! # Complexity
//! `O(T (P + Δ))` per layer for `T` transfers and `Δ` rounds.

use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;
use serde::Serialize;

use super::failed::LiveGpus;
use super::holdings::{node_of, KeyedLists};
use crate::error::Result;
use crate::placement::{LayerPlacement, Placement};
use crate::problem::{Cluster, Problem};

/// One transfer: expert weights copied into a slot of a GPU that did not hold the expert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Move {
    /// The logical expert.
    pub expert: usize,
    /// The GPU that sends the weights; `None` when they must be reloaded from host memory
    /// (only failed GPUs held the expert).
    pub from_gpu: Option<usize>,
    /// The slot the weights are read from (on `from_gpu`).
    pub from_slot: Option<usize>,
    /// The receiving GPU.
    pub to_gpu: usize,
    /// The receiving slot.
    pub to_slot: usize,
    /// The round of the schedule (0-based).
    pub round: usize,
    /// True when the sender sits on another node (or the weights come from host memory).
    pub cross_node: bool,
}

/// The plan of one layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerPlan {
    /// Layer index.
    pub layer: usize,
    /// Transfers (moves).
    pub transfers: usize,
    /// Transfers from another node or from host memory.
    pub cross_node: usize,
    /// Transfers reloaded from host memory (the expert only lived on failed GPUs).
    pub host_reloads: usize,
    /// Slots that take an expert their GPU already held in another slot (copied on the GPU,
    /// no network traffic).
    pub local_copies: usize,
    /// `transfers * expert_bytes`.
    pub bytes: u64,
    /// Rounds of the schedule.
    pub rounds: usize,
    /// The largest number of transfers into or out of one GPU: no schedule has fewer rounds.
    pub rounds_lower_bound: usize,
    /// The moves, by round then receiving slot.
    pub moves: Vec<Move>,
}

/// The transfer plan of every layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TransferPlan {
    /// One plan per layer.
    pub layers: Vec<LayerPlan>,
}

impl TransferPlan {
    /// The plan that turns `current` into `new` (both checked against `problem`), with
    /// `expert_bytes` per transfer, every GPU alive.
    ///
    /// ```
    /// use eplb::live::{TransferPlan, DEFAULT_EXPERT_BYTES};
    /// use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
    /// let loads = Loads::from_rows(&[vec![1.0; 4]])?;
    /// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
    /// let current = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3]])?;
    /// let new = Placement::from_phy2log(4, vec![vec![0, 2, 1, 3]])?;
    /// let plan = TransferPlan::new(&problem, &current, &new, DEFAULT_EXPERT_BYTES)?;
    /// let layer = &plan.layers[0];
    /// assert_eq!((layer.transfers, layer.rounds, layer.rounds_lower_bound), (2, 1, 1));
    /// assert_eq!(layer.moves[0].from_gpu, Some(1)); // expert 2 comes from GPU 1
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    ///
    /// # Errors
    /// [`EplbError::InvalidPlacement`](crate::EplbError::InvalidPlacement) when a placement
    /// does not fit the problem.
    pub fn new(
        problem: &Problem,
        current: &Placement,
        new: &Placement,
        expert_bytes: u64,
    ) -> Result<Self> {
        Self::with_live(
            problem,
            current,
            new,
            expert_bytes,
            &LiveGpus::all(problem.cluster().gpus),
        )
    }

    /// [`TransferPlan::new`] when only the `live` GPUs can send and receive: dead GPUs' slots
    /// in `new` are ignored.
    ///
    /// # Errors
    /// As [`TransferPlan::new`].
    pub fn with_live(
        problem: &Problem,
        current: &Placement,
        new: &Placement,
        expert_bytes: u64,
        live: &LiveGpus,
    ) -> Result<Self> {
        if live.all_live() {
            super::check_shape(problem, current, "the current placement")?;
        } else {
            // Failed GPUs' slots hold nothing to send: their group rules do not matter.
            super::check_with_failed(problem, current, "the current placement")?;
        }
        if new.num_layers() != problem.num_layers() {
            return Err(crate::EplbError::InvalidPlacement(format!(
                "the new placement has {} layers but the loads have {}",
                new.num_layers(),
                problem.num_layers()
            )));
        }
        let layers = (0..problem.num_layers())
            .map(|l| {
                plan_layer(
                    l,
                    problem.cluster(),
                    problem.num_experts(),
                    current.layer(l),
                    new.layer(l),
                    expert_bytes,
                    live,
                )
            })
            .collect();
        Ok(Self { layers })
    }

    /// Transfers over all layers.
    pub fn transfers(&self) -> usize {
        self.layers.iter().map(|l| l.transfers).sum()
    }

    /// Bytes over all layers.
    pub fn bytes(&self) -> u64 {
        self.layers.iter().map(|l| l.bytes).sum()
    }
}

/// The plan of one layer: sources, then the schedule.
pub(crate) fn plan_layer(
    layer: usize,
    cluster: &Cluster,
    experts: usize,
    current: &LayerPlacement,
    new: &LayerPlacement,
    expert_bytes: u64,
    live: &LiveGpus,
) -> LayerPlan {
    let s = cluster.slots_per_gpu();
    let cur = current.phy2log();
    // The experts each GPU holds, and the live slots holding each expert now (the first on
    // each GPU, in slot order).
    let mut holds = vec![false; cluster.gpus * experts];
    let live_slots = || {
        cur.iter()
            .enumerate()
            .filter(|&(slot, &e)| e < experts && live.is_live(slot / s))
            .map(|(slot, &e)| (e, slot))
    };
    for (e, slot) in live_slots() {
        holds[(slot / s) * experts + e] = true;
    }
    let sources = KeyedLists::build(experts, live_slots, |slot| slot / s);
    let mut sends = vec![0usize; cluster.gpus];
    let mut moves = Vec::new();
    let mut local_copies = 0;
    for (slot, &e) in new.phy2log().iter().enumerate() {
        let to_gpu = slot / s;
        if e >= experts || !live.is_live(to_gpu) {
            continue;
        }
        if holds[to_gpu * experts + e] {
            local_copies += usize::from(cur.get(slot) != Some(&e));
            continue;
        }
        let node = node_of(cluster, to_gpu);
        let source = sources
            .of(e)
            .iter()
            .copied()
            .min_by_key(|&src| (node_of(cluster, src / s) != node, sends[src / s], src));
        if let Some(src) = source {
            sends[src / s] += 1;
        }
        moves.push(Move {
            expert: e,
            from_gpu: source.map(|src| src / s),
            from_slot: source,
            to_gpu,
            to_slot: slot,
            round: 0,
            cross_node: source.is_none_or(|src| node_of(cluster, src / s) != node),
        });
    }
    let (rounds, lower_bound) = schedule(cluster.gpus, &mut moves);
    moves.sort_by_key(|m| (m.round, m.to_slot));
    LayerPlan {
        layer,
        transfers: moves.len(),
        cross_node: moves.iter().filter(|m| m.cross_node).count(),
        host_reloads: moves.iter().filter(|m| m.from_gpu.is_none()).count(),
        local_copies,
        bytes: moves.len() as u64 * expert_bytes,
        rounds,
        rounds_lower_bound: lower_bound,
        moves,
    }
}

/// Colours the transfer graph's edges with its largest degree: sets every move's round and
/// returns `(rounds used, lower bound)`.
fn schedule(gpus: usize, moves: &mut [Move]) -> (usize, usize) {
    // The transfer graph: one node per GPU and one for host memory, an edge per move.
    let mut graph: DiGraph<(), usize> = DiGraph::with_capacity(gpus + 1, moves.len());
    let nodes: Vec<NodeIndex> = (0..=gpus).map(|_| graph.add_node(())).collect();
    let host = nodes[gpus];
    for (i, m) in moves.iter().enumerate() {
        graph.add_edge(m.from_gpu.map_or(host, |g| nodes[g]), nodes[m.to_gpu], i);
    }
    let degree = |n: NodeIndex, d: Direction| graph.edges_directed(n, d).count();
    let bound = nodes[..gpus]
        .iter()
        .map(|&n| degree(n, Direction::Outgoing).max(degree(n, Direction::Incoming)))
        .max()
        .unwrap_or(0);
    // send[g][c] / recv[g][c]: the move of colour c that GPU g sends / receives.
    let mut send = vec![vec![None::<usize>; bound]; gpus];
    let mut recv = vec![vec![None::<usize>; bound]; gpus];
    let mut colour = vec![usize::MAX; moves.len()];
    let free = |table: &[Option<usize>]| table.iter().position(Option::is_none);
    for edge in graph.edge_references() {
        let i = *edge.weight();
        let v = moves[i].to_gpu;
        let Some(u) = moves[i].from_gpu else {
            let c = free(&recv[v]).expect("in-degree <= bound");
            recv[v][c] = Some(i);
            colour[i] = c;
            continue;
        };
        let a = free(&send[u]).expect("out-degree <= bound");
        if recv[v][a].is_some() {
            let b = free(&recv[v]).expect("in-degree <= bound");
            // The path from v alternating colours a, b: swap them along it.
            let mut path = Vec::new();
            let (mut at_receiver, mut gpu, mut c) = (true, v, a);
            loop {
                let next = if at_receiver {
                    recv[gpu][c]
                } else {
                    send[gpu][c]
                };
                let Some(j) = next else { break };
                path.push(j);
                match (at_receiver, moves[j].from_gpu) {
                    (true, Some(sender)) => gpu = sender,
                    (true, None) => break,
                    (false, _) => gpu = moves[j].to_gpu,
                }
                at_receiver = !at_receiver;
                c = if c == a { b } else { a };
            }
            for &j in &path {
                if let Some(sender) = moves[j].from_gpu {
                    send[sender][colour[j]] = None;
                }
                recv[moves[j].to_gpu][colour[j]] = None;
            }
            for &j in &path {
                colour[j] = if colour[j] == a { b } else { a };
                if let Some(sender) = moves[j].from_gpu {
                    send[sender][colour[j]] = Some(j);
                }
                recv[moves[j].to_gpu][colour[j]] = Some(j);
            }
        }
        send[u][a] = Some(i);
        recv[v][a] = Some(i);
        colour[i] = a;
    }
    for (m, &c) in moves.iter_mut().zip(&colour) {
        m.round = c;
    }
    let rounds = colour.iter().map(|&c| c + 1).max().unwrap_or(0);
    (rounds, bound)
}
