//! Failed GPUs: which GPUs are alive, the live part of a cluster, placing and evaluating on
//! it.

use serde::Serialize;

use super::holdings::node_of;
use crate::error::{EplbError, Result};
use crate::evaluate::{evaluate, Evaluation};
use crate::placement::{DeepSeekFlat, LayerPlacement, Placement};
use crate::problem::{Cluster, Policy, PolicyChoice, Problem};
use crate::runner::{solve, SolveOptions};
use crate::strategy::PlacementStrategy;

/// Which GPUs of a cluster are alive: a placement puts replicas only on live GPUs (each keeps
/// its `S` slots), and a transfer plan takes weights only from live ones.
///
/// ```
/// use eplb::live::LiveGpus;
/// let live = LiveGpus::with_failed(4, &[2])?;
/// assert_eq!((live.is_live(1), live.is_live(2), live.live_count()), (true, false, 3));
/// assert!(LiveGpus::with_failed(4, &[4]).is_err()); // GPU ids are 0..4
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveGpus {
    alive: Vec<bool>,
}

impl LiveGpus {
    /// All `gpus` GPUs alive.
    pub fn all(gpus: usize) -> Self {
        Self {
            alive: vec![true; gpus],
        }
    }

    /// `gpus` GPUs of which `failed` are dead (repeats allowed).
    ///
    /// # Errors
    /// [`EplbError::InvalidFailedGpus`] when a failed GPU id is not below `gpus`, or when no
    /// GPU is left alive.
    pub fn with_failed(gpus: usize, failed: &[usize]) -> Result<Self> {
        let mut alive = vec![true; gpus];
        for &g in failed {
            if g >= gpus {
                return Err(EplbError::InvalidFailedGpus(format!(
                    "GPU {g} does not exist: GPU ids are 0..{gpus}"
                )));
            }
            alive[g] = false;
        }
        if !alive.contains(&true) {
            return Err(EplbError::InvalidFailedGpus(format!(
                "all {gpus} GPUs failed: at least one must stay alive"
            )));
        }
        Ok(Self { alive })
    }

    /// Number of GPUs (live and dead).
    pub fn gpus(&self) -> usize {
        self.alive.len()
    }

    /// True when `gpu` is alive (GPUs beyond the mask are not).
    pub fn is_live(&self, gpu: usize) -> bool {
        self.alive.get(gpu).copied().unwrap_or(false)
    }

    /// Number of live GPUs.
    pub fn live_count(&self) -> usize {
        self.alive.iter().filter(|&&a| a).count()
    }

    /// The dead GPUs, in order.
    pub fn failed(&self) -> Vec<usize> {
        (0..self.alive.len()).filter(|&g| !self.alive[g]).collect()
    }

    /// True when every GPU is alive.
    pub fn all_live(&self) -> bool {
        self.alive.iter().all(|&a| a)
    }
}

/// The live GPUs of a cluster seen as a cluster of their own: what strategies solve when some
/// GPUs failed (each live GPU keeps its `S` slots).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveCluster {
    /// The cluster of the live GPUs.
    pub cluster: Cluster,
    /// The policy on it: hierarchical when the problem's was and the live GPUs still allow
    /// it, else global.
    pub policy: Policy,
    /// Why the hierarchical policy fell back to the global one, if it did.
    pub fallback: Option<String>,
    /// The physical id of every live GPU, in order.
    gpus: Vec<usize>,
    /// Slots per GPU.
    slots: usize,
    /// Physical slots.
    replicas: usize,
}

impl LiveGpus {
    /// The live part of `problem`'s cluster. Node-limited routing is kept when every node
    /// that still has live GPUs has the same number of them and the groups still split
    /// evenly over those nodes; otherwise the policy falls back to global (and says why).
    ///
    /// ```
    /// use eplb::live::LiveGpus;
    /// use eplb::{Cluster, Loads, Policy, PolicyChoice, Problem};
    /// let loads = Loads::from_rows(&[vec![1.0; 8]])?;
    /// let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
    /// let problem = Problem::new(loads, cluster, PolicyChoice::Hierarchical)?;
    /// let one_dead = LiveGpus::with_failed(8, &[5])?.live_cluster(&problem)?;
    /// assert_eq!(one_dead.policy, Policy::Global); // node 1 has 3 live GPUs, node 0 has 4
    /// let node_dead = LiveGpus::with_failed(8, &[4, 5, 6, 7])?.live_cluster(&problem)?;
    /// assert_eq!((node_dead.policy, node_dead.cluster.nodes), (Policy::Hierarchical, 1));
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    ///
    /// # Errors
    /// [`EplbError::InvalidFailedGpus`] when the mask has another GPU count than the cluster
    /// or the live slots cannot hold every expert.
    pub fn live_cluster(&self, problem: &Problem) -> Result<LiveCluster> {
        let cluster = problem.cluster();
        if self.gpus() != cluster.gpus {
            return Err(EplbError::InvalidFailedGpus(format!(
                "the mask covers {} GPUs but the cluster has {}",
                self.gpus(),
                cluster.gpus
            )));
        }
        let s = cluster.slots_per_gpu();
        let gpus: Vec<usize> = (0..cluster.gpus).filter(|&g| self.is_live(g)).collect();
        let experts = problem.num_experts();
        if gpus.len() * s < experts {
            return Err(EplbError::InvalidFailedGpus(format!(
                "{} live GPUs x {s} slots = {} slots cannot hold {experts} experts: at most {} of the {} GPUs may fail",
                gpus.len(),
                gpus.len() * s,
                cluster.gpus - experts.div_ceil(s),
                cluster.gpus
            )));
        }
        let mut per_node = vec![0usize; cluster.nodes];
        for &g in &gpus {
            per_node[node_of(cluster, g)] += 1;
        }
        let counts: Vec<usize> = per_node.iter().copied().filter(|&c| c > 0).collect();
        let even = counts.windows(2).all(|w| w[0] == w[1]);
        let nodes = if even { counts.len() } else { 1 };
        let sub = Cluster::new(gpus.len() * s, gpus.len())
            .with_nodes(nodes)
            .with_groups(cluster.groups);
        let (policy, fallback) = match problem.policy() {
            Policy::Global => (Policy::Global, None),
            Policy::Hierarchical if !even => (
                Policy::Global,
                Some(format!(
                    "the nodes have {counts:?} live GPUs: node-limited routing needs the same number on every node, so the global policy is used"
                )),
            ),
            Policy::Hierarchical => match sub.check(experts, Policy::Hierarchical) {
                Ok(()) => (Policy::Hierarchical, None),
                Err(e) => (
                    Policy::Global,
                    Some(format!("on the live GPUs {e}; the global policy is used")),
                ),
            },
        };
        Ok(LiveCluster {
            cluster: sub,
            policy,
            fallback,
            gpus,
            slots: s,
            replicas: cluster.replicas,
        })
    }
}

/// The expert that fills a dead GPU's slots in a [`Placement`] (SGLang's convention: the
/// slots hold expert 0 and no `log2phy` entry refers to them).
pub const DEAD_SLOT_FILLER: usize = 0;

impl LiveCluster {
    /// The problem of the live GPUs: the same loads on [`LiveCluster::cluster`].
    ///
    /// # Errors
    /// Never for a live cluster made by [`LiveGpus::live_cluster`] of that problem.
    pub fn problem(&self, problem: &Problem) -> Result<Problem> {
        let choice = match self.policy {
            Policy::Global => PolicyChoice::Global,
            Policy::Hierarchical => PolicyChoice::Hierarchical,
        };
        Problem::new(problem.loads().clone(), self.cluster, choice)
    }

    /// The live GPUs' slots of a placement of the whole cluster, in order.
    pub fn restrict(&self, layer: &LayerPlacement) -> LayerPlacement {
        let s = self.slots;
        LayerPlacement::from_phy2log(
            self.gpus
                .iter()
                .flat_map(|&g| layer.phy2log()[g * s..(g + 1) * s].iter().copied())
                .collect(),
        )
    }

    /// A placement of the whole cluster from one of the live GPUs: dead GPUs' slots hold
    /// [`DEAD_SLOT_FILLER`].
    pub fn expand(&self, layer: &LayerPlacement) -> LayerPlacement {
        let s = self.slots;
        let mut phy2log = vec![DEAD_SLOT_FILLER; self.replicas];
        for (i, &g) in self.gpus.iter().enumerate() {
            phy2log[g * s..(g + 1) * s].copy_from_slice(&layer.phy2log()[i * s..(i + 1) * s]);
        }
        LayerPlacement::from_phy2log(phy2log)
    }

    /// [`LiveCluster::restrict`] for every layer.
    pub fn restrict_all(&self, placement: &Placement) -> Placement {
        Placement::new(
            placement.num_experts(),
            placement
                .layers()
                .iter()
                .map(|l| self.restrict(l))
                .collect(),
        )
    }

    /// [`LiveCluster::expand`] for every layer.
    pub fn expand_all(&self, placement: &Placement) -> Placement {
        Placement::new(
            placement.num_experts(),
            placement.layers().iter().map(|l| self.expand(l)).collect(),
        )
    }

    /// Evaluates a whole-cluster placement on these live GPUs under this live cluster's
    /// policy (which a [rebalance](super::rebalance()) may have set to global: its
    /// [`Rebalance::live`](super::Rebalance::live) is the cluster to judge it on). As
    /// [`evaluate_live`] otherwise.
    ///
    /// # Errors
    /// As [`evaluate`].
    pub fn evaluate(&self, problem: &Problem, placement: &Placement) -> Result<Evaluation> {
        evaluate(&self.problem(problem)?, &self.restrict_all(placement), &[])
    }

    /// The physical slot of slot `slot` of the live cluster.
    pub fn physical_slot(&self, slot: usize) -> usize {
        self.gpus[slot / self.slots] * self.slots + slot % self.slots
    }

    /// The physical ids of the live GPUs, in order.
    pub fn live_gpus(&self) -> &[usize] {
        &self.gpus
    }

    /// `phy2log` of a whole-cluster placement with dead GPUs' slots as `-1`.
    pub fn phy2log_with_dead(&self, placement: &Placement) -> Vec<Vec<i64>> {
        let s = self.slots;
        let live: Vec<bool> = (0..self.replicas)
            .map(|slot| self.gpus.binary_search(&(slot / s)).is_ok())
            .collect();
        placement
            .layers()
            .iter()
            .map(|l| {
                l.phy2log()
                    .iter()
                    .zip(&live)
                    .map(|(&e, &on)| if on { e as i64 } else { -1 })
                    .collect()
            })
            .collect()
    }

    /// DeepSeek's arrays of a whole-cluster placement, flat: dead GPUs' slots `-1` in
    /// `phy2log` and in no `log2phy` row (replica ranks count live replicas only).
    ///
    /// ```
    /// use eplb::live::LiveGpus;
    /// use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
    /// let problem = Problem::new(Loads::from_rows(&[vec![1.0; 3]])?, Cluster::new(6, 3), PolicyChoice::Global)?;
    /// let live = LiveGpus::with_failed(3, &[1])?.live_cluster(&problem)?;
    /// // GPU 1 (slots 2 and 3) is dead; expert 1 lives on GPU 0 and GPU 2.
    /// let placement = Placement::from_phy2log(3, vec![vec![0, 1, 0, 0, 1, 2]])?;
    /// let flat = live.to_deepseek_flat(&placement)?;
    /// assert_eq!(flat.phy2log, vec![0, 1, -1, -1, 1, 2]);
    /// assert_eq!(flat.logcnt, vec![1, 2, 1]);
    /// assert_eq!(&flat.log2phy[..2], &[0, -1]); // expert 0: slot 0 only
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    ///
    /// # Errors
    /// As [`Placement::to_deepseek_flat`].
    pub fn to_deepseek_flat(&self, placement: &Placement) -> Result<DeepSeekFlat> {
        let mut flat = self.restrict_all(placement).to_deepseek_flat()?;
        for slot in flat.log2phy.iter_mut().filter(|s| **s >= 0) {
            // Slots are far below 2^63.
            *slot = self.physical_slot(*slot as usize) as i64;
        }
        flat.phy2log = self.phy2log_with_dead(placement).concat();
        flat.slots = self.replicas;
        Ok(flat)
    }
}

/// Places `problem` on its `live` GPUs only with `strategy` (solved on the live cluster and
/// mapped back; dead GPUs' slots hold [`DEAD_SLOT_FILLER`]), and evaluates it there.
///
/// ```
/// use eplb::live::{place_on_live, LiveGpus};
/// use eplb::{strategies, Cluster, Loads, PolicyChoice, Problem};
/// let loads = Loads::from_rows(&[vec![4.0, 3.0, 2.0, 1.0]])?;
/// let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global)?;
/// let refine = strategies::by_name("refine")?;
/// let live = LiveGpus::with_failed(3, &[1])?;
/// let placed = place_on_live(&problem, refine.as_ref(), &live, &Default::default())?;
/// assert!(placed.evaluation.is_feasible());
/// assert_eq!(placed.live.phy2log_with_dead(&placed.placement)[0][2..4], [-1, -1]);
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// As [`LiveGpus::live_cluster`] and [`solve`].
pub fn place_on_live(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    live: &LiveGpus,
    options: &SolveOptions,
) -> Result<LivePlacement> {
    let cluster = live.live_cluster(problem)?;
    let sub = cluster.problem(problem)?;
    let solution = solve(&sub, strategy, options)?;
    let evaluation = evaluate(&sub, &solution.placement, &solution.claims())?;
    Ok(LivePlacement {
        placement: cluster.expand_all(&solution.placement),
        evaluation,
        live: cluster,
    })
}

/// Evaluates a whole-cluster placement on its live GPUs: dead GPUs' slots carry nothing and
/// count for nothing, so every expert must keep a replica on a live GPU (else a
/// [`MissingExpert`](crate::Violation::MissingExpert) violation). GPU indices in the reports
/// are those of the live cluster (the live GPUs in order).
///
/// # Errors
/// As [`LiveGpus::live_cluster`] and [`evaluate`].
pub fn evaluate_live(
    problem: &Problem,
    placement: &Placement,
    live: &LiveGpus,
) -> Result<Evaluation> {
    live.live_cluster(problem)?.evaluate(problem, placement)
}

/// A placement on the live GPUs ([`place_on_live`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LivePlacement {
    /// The placement of the whole cluster (dead slots hold [`DEAD_SLOT_FILLER`]).
    pub placement: Placement,
    /// Its evaluation on the live GPUs.
    pub evaluation: Evaluation,
    /// The live cluster it was solved on (policy, fallback, the slot mapping).
    pub live: LiveCluster,
}

/// Gives every expert without a live replica one (a reload from host memory): it takes the
/// slot of a replica of the expert with the most replicas (then the smallest load per
/// replica, then the lowest slot), on the expert's group's node under the hierarchical
/// policy. `None` when the hierarchical policy leaves no such slot.
pub(crate) fn reload_missing(
    layer: &crate::problem::LayerProblem<'_>,
    placement: &LayerPlacement,
) -> Option<LayerPlacement> {
    let experts = layer.num_experts();
    let cluster = layer.cluster();
    let mut phy2log = placement.phy2log().to_vec();
    let mut cnt = placement.logcnt(experts);
    let slots_per_node = cluster.replicas / cluster.nodes;
    let hierarchical = layer.policy() == Policy::Hierarchical;
    // The node of each group that still has a live replica.
    let mut home = vec![None; cluster.groups];
    if hierarchical {
        for (slot, &e) in phy2log.iter().enumerate() {
            home[layer.group_of(e)] = Some(slot / slots_per_node);
        }
    }
    for e in 0..experts {
        if cnt[e] > 0 {
            continue;
        }
        let node = if hierarchical {
            Some(home[layer.group_of(e)]?)
        } else {
            None
        };
        let slot = (0..phy2log.len())
            .filter(|&s| cnt[phy2log[s]] >= 2 && node.is_none_or(|n| s / slots_per_node == n))
            .min_by(|&a, &b| {
                let (x, y) = (phy2log[a], phy2log[b]);
                cnt[y]
                    .cmp(&cnt[x])
                    .then(
                        (layer.loads()[x] / cnt[x] as f64)
                            .total_cmp(&(layer.loads()[y] / cnt[y] as f64)),
                    )
                    .then(a.cmp(&b))
            })?;
        cnt[phy2log[slot]] -= 1;
        phy2log[slot] = e;
        cnt[e] = 1;
    }
    Some(LayerPlacement::from_phy2log(phy2log))
}
