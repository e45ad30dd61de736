//! The placement problem: per-layer expert loads, the cluster, and the policy.
//!
//! Everything is validated at construction, so a [`Problem`] that exists is one every strategy
//! can solve.

use std::time::Instant;

use eplb_solvers::kernels::Kernels;
use serde::{Deserialize, Serialize};

use crate::error::{BadLoad, EplbError, Result};

/// Expert loads, `[layers][experts]`: tokens routed to each logical expert over a window.
///
/// Always rectangular, non-empty, finite and `>= 0` (`-0.0` is stored as `0.0`). All-zero
/// layers are valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Loads {
    layers: usize,
    experts: usize,
    data: Vec<f64>,
}

impl Loads {
    /// Builds loads from one row per layer.
    ///
    /// ```
    /// let loads = eplb::Loads::from_rows(&[vec![3.0, 1.0], vec![0.0, 2.0]]).unwrap();
    /// assert_eq!((loads.num_layers(), loads.num_experts()), (2, 2));
    /// assert!(eplb::Loads::from_rows(&[vec![1.0, f64::NAN]]).is_err());
    /// ```
    ///
    /// # Errors
    /// [`EplbError::EmptyLoads`], [`EplbError::RaggedLoads`], [`EplbError::InvalidLoad`].
    pub fn from_rows<R: AsRef<[f64]>>(rows: &[R]) -> Result<Self> {
        let experts = rows.first().map(|r| r.as_ref().len()).unwrap_or(0);
        if rows.is_empty() || experts == 0 {
            return Err(EplbError::EmptyLoads);
        }
        let mut data = Vec::with_capacity(rows.len() * experts);
        for (layer, row) in rows.iter().enumerate() {
            let row = row.as_ref();
            if row.len() != experts {
                return Err(EplbError::RaggedLoads {
                    layer,
                    found: row.len(),
                    expected: experts,
                });
            }
            data.extend_from_slice(row);
        }
        Self::from_flat(rows.len(), experts, data)
    }

    /// Builds loads from a row-major buffer of `layers * experts` values.
    ///
    /// # Errors
    /// [`EplbError::EmptyLoads`] when a dimension is zero, [`EplbError::RaggedLoads`] when the
    /// buffer length is not `layers * experts`, [`EplbError::InvalidLoad`] for NaN, infinite or
    /// negative values.
    pub fn from_flat(layers: usize, experts: usize, mut data: Vec<f64>) -> Result<Self> {
        if layers == 0 || experts == 0 {
            return Err(EplbError::EmptyLoads);
        }
        if data.len() != layers * experts {
            return Err(EplbError::RaggedLoads {
                layer: data.len() / experts,
                found: data.len() % experts,
                expected: experts,
            });
        }
        // `-0.0 + 0.0` is `+0.0`, every other value is unchanged: `-0.0` normalised. Then one
        // pass without a branch per value over the high 32 bits of each (it vectorises on any
        // x86-64): a finite value `>= 0` has its sign bit clear and an exponent below all ones,
        // so those bits are below `0x7ff0_0000`. Only when that fails, the first bad value.
        for v in &mut data {
            *v += 0.0;
        }
        const INFINITY_HIGH: u32 = 0x7ff0_0000;
        let valid = data.iter().fold(1u32, |ok, v| {
            let high = (v.to_bits() >> 32) as u32;
            ok & (high.wrapping_sub(INFINITY_HIGH) >> 31) & !(high >> 31)
        }) == 1;
        let first_bad = || {
            data.iter()
                .enumerate()
                .find_map(|(i, &v)| BadLoad::of(v).map(|kind| (i, kind)))
        };
        if let Some((i, kind)) = (!valid).then(first_bad).flatten() {
            return Err(EplbError::InvalidLoad {
                layer: i / experts,
                expert: i % experts,
                value: data[i],
                kind,
            });
        }
        Ok(Self {
            layers,
            experts,
            data,
        })
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers
    }

    /// Number of logical experts per layer.
    pub fn num_experts(&self) -> usize {
        self.experts
    }

    /// The loads of one layer.
    ///
    /// # Panics
    /// When `layer >= num_layers()`.
    pub fn layer(&self, layer: usize) -> &[f64] {
        &self.data[layer * self.experts..(layer + 1) * self.experts]
    }

    /// Iterates over the layers' loads.
    pub fn rows(&self) -> impl ExactSizeIterator<Item = &[f64]> + '_ {
        self.data.chunks_exact(self.experts)
    }
}

/// The cluster: `replicas` physical expert slots on `gpus` GPUs in `nodes` nodes, and the
/// number of expert `groups` (for node-limited routing).
///
/// GPU `g` holds slots `g*S .. (g+1)*S` with `S = replicas / gpus` and sits on node
/// `g / (gpus / nodes)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cluster {
    /// Physical expert slots `R` (all GPUs together).
    pub replicas: usize,
    /// GPUs `P`.
    pub gpus: usize,
    /// Nodes `N`.
    pub nodes: usize,
    /// Expert groups `G`.
    pub groups: usize,
}

impl Cluster {
    /// A cluster of `replicas` slots on `gpus` GPUs, one node, one group.
    pub fn new(replicas: usize, gpus: usize) -> Self {
        Self {
            replicas,
            gpus,
            nodes: 1,
            groups: 1,
        }
    }

    /// Sets the number of nodes.
    #[must_use]
    pub fn with_nodes(self, nodes: usize) -> Self {
        Self { nodes, ..self }
    }

    /// Sets the number of expert groups.
    #[must_use]
    pub fn with_groups(self, groups: usize) -> Self {
        Self { groups, ..self }
    }

    /// Checks the cluster for `experts` logical experts under `policy`: every count `>= 1`,
    /// `replicas >= experts`, `replicas % gpus == 0`; hierarchical also `experts % groups == 0`,
    /// `groups % nodes == 0` and `gpus % nodes == 0`.
    ///
    /// # Errors
    /// The [`EplbError`] variant naming the first violated condition.
    pub fn check(&self, experts: usize, policy: Policy) -> Result<()> {
        for (what, value) in [
            ("replicas", self.replicas),
            ("gpus", self.gpus),
            ("nodes", self.nodes),
            ("groups", self.groups),
        ] {
            if value == 0 {
                return Err(EplbError::ZeroCount { what });
            }
        }
        if self.replicas < experts {
            return Err(EplbError::TooFewReplicas {
                replicas: self.replicas,
                experts,
            });
        }
        if !self.replicas.is_multiple_of(self.gpus) {
            return Err(EplbError::ReplicasNotDivisibleByGpus {
                replicas: self.replicas,
                gpus: self.gpus,
            });
        }
        if policy == Policy::Hierarchical {
            if !experts.is_multiple_of(self.groups) {
                return Err(EplbError::ExpertsNotDivisibleByGroups {
                    experts,
                    groups: self.groups,
                });
            }
            if !self.groups.is_multiple_of(self.nodes) {
                return Err(EplbError::GroupsNotDivisibleByNodes {
                    groups: self.groups,
                    nodes: self.nodes,
                });
            }
            if !self.gpus.is_multiple_of(self.nodes) {
                return Err(EplbError::GpusNotDivisibleByNodes {
                    gpus: self.gpus,
                    nodes: self.nodes,
                });
            }
        }
        Ok(())
    }

    /// Slots per GPU, `S = R / P`.
    pub fn slots_per_gpu(&self) -> usize {
        self.replicas / self.gpus
    }

    /// GPUs per node, when the GPUs split evenly over nodes.
    pub fn gpus_per_node(&self) -> Option<usize> {
        self.gpus
            .is_multiple_of(self.nodes)
            .then(|| self.gpus / self.nodes)
    }

    /// The GPU holding `slot`.
    pub fn gpu_of_slot(&self, slot: usize) -> usize {
        slot / self.slots_per_gpu()
    }
}

/// Which placement policy to use, as asked by the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum PolicyChoice {
    /// As DeepSeek decides: hierarchical when `groups % nodes == 0`, global otherwise.
    #[default]
    Auto,
    /// Node-limited: whole groups per node, replicas stay on their group's node.
    Hierarchical,
    /// No locality constraint.
    Global,
}

/// The policy a problem is solved under.
///
/// Deliberately exhaustive: every strategy must handle every policy, so a new policy is a
/// breaking change that strategies have to answer for (unlike [`PolicyChoice`], which only
/// callers construct).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Policy {
    /// Experts form `G` groups of consecutive ids; each node gets exactly `G / N` whole groups
    /// and every replica of an expert stays on its group's node.
    Hierarchical,
    /// Any expert may go to any slot.
    Global,
}

impl std::fmt::Display for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Policy::Hierarchical => "hierarchical",
            Policy::Global => "global",
        })
    }
}

impl PolicyChoice {
    /// The policy this choice stands for on `cluster`.
    pub fn resolve(self, cluster: &Cluster) -> Policy {
        match self {
            PolicyChoice::Hierarchical => Policy::Hierarchical,
            PolicyChoice::Global => Policy::Global,
            PolicyChoice::Auto
                if cluster.nodes != 0 && cluster.groups.is_multiple_of(cluster.nodes) =>
            {
                Policy::Hierarchical
            }
            PolicyChoice::Auto => Policy::Global,
        }
    }
}

/// A validated placement problem: loads, cluster and the resolved policy.
///
/// ```
/// use eplb::{Cluster, Loads, PolicyChoice, Policy, Problem};
/// let loads = Loads::from_rows(&[vec![90.0, 132.0, 40.0, 61.0]]).unwrap();
/// let p = Problem::new(loads, Cluster::new(6, 2).with_nodes(1).with_groups(2), PolicyChoice::Auto).unwrap();
/// assert_eq!(p.policy(), Policy::Hierarchical);
/// // 5 slots cannot split over 2 GPUs:
/// let loads = Loads::from_rows(&[vec![1.0; 4]]).unwrap();
/// assert!(Problem::new(loads, Cluster::new(5, 2), PolicyChoice::Auto).is_err());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    loads: Loads,
    cluster: Cluster,
    policy: Policy,
}

impl Problem {
    /// Validates and builds a problem.
    ///
    /// Always required: every count `>= 1`, `replicas >= experts`, `replicas % gpus == 0`.
    /// Hierarchical policy also: `gpus % nodes == 0`, `experts % groups == 0`,
    /// `groups % nodes == 0` (the global policy ignores groups and nodes for placement, as
    /// DeepSeek does).
    ///
    /// # Errors
    /// The [`EplbError`] variant naming the first violated condition.
    pub fn new(loads: Loads, cluster: Cluster, policy: PolicyChoice) -> Result<Self> {
        // The counts first (resolving the policy divides by them), then the policy's own rules.
        cluster.check(loads.num_experts(), Policy::Global)?;
        let policy = policy.resolve(&cluster);
        cluster.check(loads.num_experts(), policy)?;
        Ok(Self {
            loads,
            cluster,
            policy,
        })
    }

    /// The loads.
    pub fn loads(&self) -> &Loads {
        &self.loads
    }

    /// The cluster.
    pub fn cluster(&self) -> &Cluster {
        &self.cluster
    }

    /// The resolved policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.loads.num_layers()
    }

    /// Number of logical experts.
    pub fn num_experts(&self) -> usize {
        self.loads.num_experts()
    }

    /// The single-layer problem of `layer`.
    ///
    /// # Panics
    /// When `layer >= num_layers()`.
    pub fn layer(&self, layer: usize) -> LayerProblem<'_> {
        LayerProblem::trusted(layer, self.loads.layer(layer), &self.cluster, self.policy)
    }

    /// All single-layer problems in order.
    pub fn layers(&self) -> impl ExactSizeIterator<Item = LayerProblem<'_>> + '_ {
        (0..self.num_layers()).map(|l| self.layer(l))
    }
}

/// One layer of a validated [`Problem`]: what a strategy solves.
///
/// Its fields are private so that every `LayerProblem` a strategy sees has been checked:
/// [`Problem::layer`] hands out layers of a validated problem, and [`LayerProblem::new`]
/// checks a layer built by hand (a decomposition's sub-problem, a test).
#[derive(Debug, Clone, Copy)]
pub struct LayerProblem<'a> {
    index: usize,
    loads: &'a [f64],
    cluster: &'a Cluster,
    policy: Policy,
    budget: LayerBudget,
}

/// What a strategy may spend on one layer, set by the [runner](crate::runner) when the layer
/// starts (from its [`SolveOptions`](crate::SolveOptions)); heuristics ignore it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
#[non_exhaustive]
pub struct LayerBudget {
    /// When the layer's search must stop; `None`: the strategy's own default.
    pub deadline: Option<Instant>,
    /// Relative optimality gap at which an exact method may stop; `None`: prove optimality
    /// (or the strategy's own setting).
    pub gap: Option<f64>,
    /// Threads an exact method may use inside the layer; `None`: the strategy's default.
    pub threads: Option<usize>,
    /// Which kernels the greedy engines run (answers do not depend on it).
    pub kernels: Kernels,
}

impl LayerBudget {
    /// No deadline, no gap, default threads.
    pub fn new() -> Self {
        Self::default()
    }

    /// The budget with a deadline.
    #[must_use]
    pub fn with_deadline(self, deadline: Option<Instant>) -> Self {
        Self { deadline, ..self }
    }

    /// The budget with a relative gap.
    #[must_use]
    pub fn with_gap(self, gap: Option<f64>) -> Self {
        Self { gap, ..self }
    }

    /// The budget with a thread count.
    #[must_use]
    pub fn with_threads(self, threads: Option<usize>) -> Self {
        Self { threads, ..self }
    }

    /// The budget with the greedy engines running `kernels`.
    #[must_use]
    pub fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }
}

impl<'a> LayerProblem<'a> {
    /// A checked single-layer problem: `loads` must be non-empty, finite and `>= 0`, and
    /// `cluster` valid for `policy` with `loads.len()` experts (the conditions of
    /// [`Problem::new`]).
    ///
    /// ```
    /// use eplb::{Cluster, LayerProblem, Policy};
    /// let cluster = Cluster::new(4, 2);
    /// let layer = LayerProblem::new(0, &[3.0, 3.0, 2.0], &cluster, Policy::Global)?;
    /// assert_eq!(layer.total_load(), 8.0);
    /// assert!(LayerProblem::new(0, &[1.0, -1.0], &cluster, Policy::Global).is_err());
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    ///
    /// # Errors
    /// [`EplbError::EmptyLoads`], [`EplbError::InvalidLoad`] (with `layer` = `index`), or the
    /// cluster error [`Problem::new`] would give.
    pub fn new(
        index: usize,
        loads: &'a [f64],
        cluster: &'a Cluster,
        policy: Policy,
    ) -> Result<Self> {
        if loads.is_empty() {
            return Err(EplbError::EmptyLoads);
        }
        for (expert, &value) in loads.iter().enumerate() {
            if let Some(kind) = BadLoad::of(value) {
                return Err(EplbError::InvalidLoad {
                    layer: index,
                    expert,
                    value,
                    kind,
                });
            }
        }
        cluster.check(loads.len(), policy)?;
        Ok(Self::trusted(index, loads, cluster, policy))
    }

    /// A layer of an already validated problem.
    fn trusted(index: usize, loads: &'a [f64], cluster: &'a Cluster, policy: Policy) -> Self {
        Self {
            index,
            loads,
            cluster,
            policy,
            budget: LayerBudget::default(),
        }
    }

    /// The same layer with `budget` (the runner sets it when the layer starts).
    #[must_use]
    pub fn with_budget(self, budget: LayerBudget) -> Self {
        Self { budget, ..self }
    }

    /// What the strategy may spend on the layer.
    pub fn budget(&self) -> LayerBudget {
        self.budget
    }

    /// The layer's index in its problem.
    pub fn index(&self) -> usize {
        self.index
    }

    /// Load of each logical expert (finite, `>= 0`).
    pub fn loads(&self) -> &'a [f64] {
        self.loads
    }

    /// The cluster (valid for [`policy`](Self::policy)).
    pub fn cluster(&self) -> &'a Cluster {
        self.cluster
    }

    /// The resolved policy.
    pub fn policy(&self) -> Policy {
        self.policy
    }
}

impl LayerProblem<'_> {
    /// Number of logical experts.
    pub fn num_experts(&self) -> usize {
        self.loads.len()
    }

    /// Experts per group under the hierarchical policy (`E / G`).
    pub fn group_size(&self) -> usize {
        self.loads.len() / self.cluster.groups
    }

    /// The group of `expert` under the hierarchical policy.
    pub fn group_of(&self, expert: usize) -> usize {
        expert / self.group_size()
    }

    /// Total load of the layer.
    pub fn total_load(&self) -> f64 {
        self.loads.iter().sum()
    }
}
