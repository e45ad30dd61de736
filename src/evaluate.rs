//! The shared evaluator: the one place that judges placements.
//!
//! It checks every constraint of the problem (see [`Violation`]) and measures balance per
//! layer and over all layers. Strategies never score themselves; the CLI, the tests and the
//! benchmarks all report what this module computes.
//!
//! It judges what strategies *claim* too ([`Claim`]): a claimed lower bound above the
//! strategy's own max load is a [`ClaimViolation`]. Claims that only another strategy's answer
//! can refute (an `optimal` claim beaten, a bound above another verified load) are judged by
//! [`compare`](crate::compare::compare()).

use eplb_solvers::loads::bin_load;
use serde::Serialize;

use crate::bounds::{lower_bounds, LowerBounds, NodeBoundKind};
use crate::error::{EplbError, Result};
use crate::placement::{LayerPlacement, Placement};
use crate::problem::{LayerProblem, Policy, Problem};
use crate::strategy::{LayerSolution, SolveStatus};

/// What a strategy claims about its answer for one layer: judged, never trusted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Claim {
    /// The claimed status (`optimal` is a claim that no placement is better).
    pub status: SolveStatus,
    /// The claimed lower bound on the optimal max GPU load, if any.
    pub bound: Option<f64>,
}

impl Claim {
    /// No claim: a heuristic answer without a bound (what a placement read from a file has).
    pub const NONE: Claim = Claim {
        status: SolveStatus::Heuristic,
        bound: None,
    };

    /// A heuristic answer with a claimed lower bound.
    pub fn with_bound(bound: f64) -> Self {
        Self {
            status: SolveStatus::Heuristic,
            bound: Some(bound),
        }
    }

    /// The claim of a strategy's answer.
    pub fn of(solution: &LayerSolution) -> Self {
        Self {
            status: solution.status,
            bound: solution.lower_bound,
        }
    }
}

/// Relative tolerance of the claim checks: a claimed bound `b` is refuted by a load `x` only
/// when `b > x * (1 + CLAIM_TOLERANCE) + CLAIM_TOLERANCE * 1e-3` (and an `optimal` load `y` by
/// `x` only when `y` exceeds `x` the same way), so that loads summed in different orders, or
/// bounds computed in scaled arithmetic, are not reported as lies.
pub const CLAIM_TOLERANCE: f64 = 1e-9;

/// True when `value` exceeds `limit` by more than [`CLAIM_TOLERANCE`].
pub fn exceeds(value: f64, limit: f64) -> bool {
    value > limit * (1.0 + CLAIM_TOLERANCE) + CLAIM_TOLERANCE * 1e-3
}

/// A strategy's claim refuted by a verified load. Unlike a [`Violation`], it does not make the
/// placement infeasible: it says the strategy's bound or `optimal` status cannot be trusted.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ClaimViolation {
    /// The claimed bound is above the max load of the strategy's own placement.
    BoundAboveOwnLoad {
        /// The claimed bound.
        bound: f64,
        /// The max load of its placement.
        max_load: f64,
    },
    /// The claimed bound is above the verified max load of another strategy's feasible
    /// placement (found by [`compare`](crate::compare::compare())).
    BoundAboveVerifiedLoad {
        /// The claimed bound.
        bound: f64,
        /// The strategy whose placement refutes it.
        by: String,
        /// That placement's max load.
        load: f64,
    },
    /// The strategy claimed `optimal`, but another strategy's feasible placement has a lower
    /// max load (found by [`compare`](crate::compare::compare())).
    OptimalBeaten {
        /// The max load claimed optimal.
        max_load: f64,
        /// The strategy whose placement beats it.
        by: String,
        /// That placement's max load.
        load: f64,
    },
}

impl std::fmt::Display for ClaimViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClaimViolation::BoundAboveOwnLoad { bound, max_load } => write!(
                f,
                "claimed lower bound {bound} is above its own max load {max_load}"
            ),
            ClaimViolation::BoundAboveVerifiedLoad { bound, by, load } => write!(
                f,
                "claimed lower bound {bound} is above the max load {load} that {by} reached"
            ),
            ClaimViolation::OptimalBeaten { max_load, by, load } => {
                write!(f, "claimed optimal at {max_load}, but {by} reached {load}")
            }
        }
    }
}

/// A broken constraint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Violation {
    /// The layer does not have exactly `R` slots.
    WrongSlotCount {
        /// `R`.
        expected: usize,
        /// Slots found.
        found: usize,
    },
    /// A slot holds an id that is not a logical expert.
    ExpertOutOfRange {
        /// The slot.
        slot: usize,
        /// The id found.
        expert: usize,
        /// Valid ids are `0..num_experts`.
        num_experts: usize,
    },
    /// A logical expert has no replica: its tokens have nowhere to go.
    MissingExpert {
        /// The expert.
        expert: usize,
    },
    /// Hierarchical policy: replicas of one group's experts sit on several nodes.
    GroupSplitAcrossNodes {
        /// The group.
        group: usize,
        /// The nodes it touches.
        nodes: Vec<usize>,
    },
    /// Hierarchical policy: a node does not hold exactly `G / N` groups.
    WrongGroupCount {
        /// The node.
        node: usize,
        /// Groups with a replica on it.
        groups: usize,
        /// `G / N`.
        expected: usize,
    },
    /// Distinct replicas asked ([`Requirements::distinct_replicas`]): a GPU holds several
    /// replicas of one expert.
    SharedGpu {
        /// The GPU.
        gpu: usize,
        /// The expert.
        expert: usize,
        /// Its replicas on the GPU.
        replicas: usize,
    },
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Violation::WrongSlotCount { expected, found } => {
                write!(f, "{found} slots, expected {expected}")
            }
            Violation::ExpertOutOfRange {
                slot,
                expert,
                num_experts,
            } => write!(
                f,
                "slot {slot} holds expert {expert}, valid ids are 0..{num_experts}"
            ),
            Violation::MissingExpert { expert } => write!(f, "expert {expert} has no replica"),
            Violation::GroupSplitAcrossNodes { group, nodes } => {
                write!(f, "group {group} is split across nodes {nodes:?}")
            }
            Violation::WrongGroupCount {
                node,
                groups,
                expected,
            } => write!(f, "node {node} holds {groups} groups, expected {expected}"),
            Violation::SharedGpu {
                gpu,
                expert,
                replicas,
            } => write!(
                f,
                "GPU {gpu} holds {replicas} replicas of expert {expert}, distinct replicas allow one"
            ),
        }
    }
}

/// Everything measured on one layer.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LayerReport {
    /// Layer index.
    pub layer: usize,
    /// Broken constraints (empty when feasible).
    pub violations: Vec<Violation>,
    /// Load of each GPU: sum over its slots of `w[e] / logcnt[e]`.
    pub gpu_loads: Vec<f64>,
    /// Load of each node (`None` when GPUs do not split evenly over nodes).
    pub node_loads: Option<Vec<f64>>,
    /// Largest GPU load: the layer's bottleneck.
    pub max_load: f64,
    /// Mean GPU load (`sum(w) / P` when feasible).
    pub mean_load: f64,
    /// `mean / max` (1 is perfect; vLLM's and SGLang's "balancedness"/"utilization").
    pub balancedness: f64,
    /// `(max - mean) / mean` (TensorRT-LLM's imbalance).
    pub imbalance: f64,
    /// Extra replicas of an expert on a GPU that already holds it (wasted slots).
    pub colocated_replicas: usize,
    /// The combinatorial lower bounds of the layer.
    pub bounds: LowerBounds,
    /// The bound the strategy claimed, if any.
    pub claimed_bound: Option<f64>,
    /// The strategy's refuted claims (empty when its claims hold or it made none; not
    /// serialised when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claim_violations: Vec<ClaimViolation>,
    /// The best valid bound: the largest of `bounds` (as [proven](LowerBounds::proven_best):
    /// never above the exact optimum, even by an ulp of rounding) and `claimed_bound`.
    pub lower_bound: f64,
    /// `(max_load - lower_bound) / lower_bound`: how far from optimal at most.
    pub gap: f64,
}

impl LayerReport {
    /// `max / mean` (1 is perfect).
    pub fn max_over_mean(&self) -> f64 {
        ratio(self.max_load, self.mean_load)
    }
}

/// Metrics over all layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Layers evaluated.
    pub layers: usize,
    /// Layers without violations.
    pub feasible_layers: usize,
    /// Violations over all layers.
    pub violations: usize,
    /// Refuted claims over all layers (not serialised when zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub claim_violations: usize,
    /// Layers whose hierarchical node bound's split search was cut short by its work budget,
    /// so that the weaker closed-form node bound went into their `lower_bound`
    /// ([`NodeBoundKind::ClosedForm`]; not serialised when zero).
    #[serde(skip_serializing_if = "is_zero")]
    pub node_bounds_cut_short: usize,
    /// Largest GPU load of any layer.
    pub max_load: f64,
    /// Sum over layers of the max GPU load: the time of one step through all layers.
    pub sum_max_load: f64,
    /// `sum of means / sum of maxes`: the step-level balancedness.
    pub balancedness: f64,
    /// Mean over layers of the per-layer balancedness.
    pub mean_balancedness: f64,
    /// Worst per-layer balancedness.
    pub min_balancedness: f64,
    /// Mean per-layer imbalance.
    pub mean_imbalance: f64,
    /// Largest per-layer gap to the lower bound.
    pub max_gap: f64,
    /// Mean per-layer gap to the lower bound.
    pub mean_gap: f64,
    /// Co-located replicas over all layers.
    pub colocated_replicas: usize,
}

/// The evaluator's verdict on a multi-layer placement.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Evaluation {
    /// One report per layer.
    pub layers: Vec<LayerReport>,
    /// Over all layers.
    pub summary: Summary,
}

impl Evaluation {
    /// True when no layer violates a constraint.
    pub fn is_feasible(&self) -> bool {
        self.summary.violations == 0
    }

    /// True when no claim of the strategy was refuted.
    pub fn claims_hold(&self) -> bool {
        self.summary.claim_violations == 0
    }

    /// Records a refuted claim on `layer` (keeps the summary's count in step).
    pub(crate) fn record_claim_violation(&mut self, layer: usize, violation: ClaimViolation) {
        self.layers[layer].claim_violations.push(violation);
        self.summary.claim_violations += 1;
    }
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

fn ratio(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        if a == 0.0 {
            1.0
        } else {
            f64::INFINITY
        }
    } else {
        a / b
    }
}

/// Evaluates `placement` on `problem`. `claims` holds the strategy's per-layer [`Claim`]s (or
/// is empty, e.g. for a placement read from a file): the reported bound is the best of the
/// claimed and the combinatorial ones, and a claimed bound above the placement's own max load
/// is recorded as a [`ClaimViolation`].
///
/// # Errors
/// [`EplbError::LayerCountMismatch`] when the placement's layer count or expert count differs
/// from the problem's (everything else is reported as a [`Violation`]).
pub fn evaluate(problem: &Problem, placement: &Placement, claims: &[Claim]) -> Result<Evaluation> {
    if placement.num_layers() != problem.num_layers() {
        return Err(EplbError::LayerCountMismatch {
            found: placement.num_layers(),
            expected: problem.num_layers(),
        });
    }
    if placement.num_experts() != problem.num_experts() {
        return Err(EplbError::InvalidPlacement(format!(
            "the placement is for {} experts but the loads have {}",
            placement.num_experts(),
            problem.num_experts()
        )));
    }
    let layers: Vec<LayerReport> = problem
        .layers()
        .zip(placement.layers())
        .map(|(layer, lp)| {
            let claimed = claims.get(layer.index()).and_then(|c| c.bound);
            evaluate_layer(&layer, lp, claimed)
        })
        .collect();
    let summary = summarise(&layers);
    Ok(Evaluation { layers, summary })
}

/// Constraints beyond the problem's own that a deployment may ask for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Requirements {
    /// No GPU may hold two replicas of one expert (vllm-ascend rejects such tables); a
    /// breach is a [`Violation::SharedGpu`].
    pub distinct_replicas: bool,
}

impl Requirements {
    /// Only the problem's own constraints.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also requires distinct replicas when `distinct` is true.
    #[must_use]
    pub fn with_distinct_replicas(self, distinct: bool) -> Self {
        Self {
            distinct_replicas: distinct,
        }
    }
}

/// [`evaluate`] with extra [`Requirements`]: their breaches are violations like any other.
///
/// ```
/// use eplb::evaluate::{evaluate_with, Requirements};
/// use eplb::{Claim, Cluster, Loads, Placement, PolicyChoice, Problem};
/// let loads = Loads::from_rows(&[vec![4.0, 1.0, 1.0]])?;
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
/// let shared = Placement::from_phy2log(3, vec![vec![0, 0, 1, 2]])?;
/// let distinct = Requirements::new().with_distinct_replicas(true);
/// assert!(evaluate_with(&problem, &shared, &[], Requirements::new())?.is_feasible());
/// assert!(!evaluate_with(&problem, &shared, &[], distinct)?.is_feasible());
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// As [`evaluate`].
pub fn evaluate_with(
    problem: &Problem,
    placement: &Placement,
    claims: &[Claim],
    requirements: Requirements,
) -> Result<Evaluation> {
    let mut evaluation = evaluate(problem, placement, claims)?;
    if requirements.distinct_replicas {
        for (report, (layer, lp)) in evaluation
            .layers
            .iter_mut()
            .zip(problem.layers().zip(placement.layers()))
        {
            report.violations.extend(shared_gpus(&layer, lp));
        }
        let claim_violations = evaluation.summary.claim_violations;
        evaluation.summary = summarise(&evaluation.layers);
        evaluation.summary.claim_violations = claim_violations;
    }
    Ok(evaluation)
}

/// The [`Violation::SharedGpu`]s of a layer: every (GPU, expert) with several replicas.
pub fn shared_gpus(layer: &LayerProblem<'_>, placement: &LayerPlacement) -> Vec<Violation> {
    let experts = layer.num_experts();
    let mut violations = Vec::new();
    for (gpu, slots) in gpu_slots(layer, placement.phy2log()).enumerate() {
        let mut on_gpu: Vec<usize> = slots.iter().copied().filter(|&e| e < experts).collect();
        on_gpu.sort_unstable();
        for run in on_gpu.chunk_by(|a, b| a == b).filter(|r| r.len() > 1) {
            violations.push(Violation::SharedGpu {
                gpu,
                expert: run[0],
                replicas: run.len(),
            });
        }
    }
    violations
}

/// Evaluates one layer with the strategy's claimed bound, if any. See [`evaluate`].
pub fn evaluate_layer(
    layer: &LayerProblem<'_>,
    placement: &LayerPlacement,
    claimed_bound: Option<f64>,
) -> LayerReport {
    let cluster = layer.cluster();
    let phy2log = placement.phy2log();
    let violations = violations(layer, placement);
    let logcnt = placement.logcnt(layer.num_experts());
    let gpu_loads = loads_of(layer, phy2log, &logcnt);
    let colocated_replicas = colocated(layer, phy2log);
    let node_loads = cluster.gpus_per_node().map(|q| {
        gpu_loads
            .chunks_exact(q)
            .map(|c| c.iter().sum::<f64>())
            .collect::<Vec<f64>>()
    });

    let max_load = gpu_loads.iter().copied().fold(0.0, f64::max);
    let mean_load = gpu_loads.iter().sum::<f64>() / cluster.gpus as f64;
    let bounds = lower_bounds(layer);
    // Never above the exact optimum, even by an ulp of rounding.
    let lower_bound = bounds.proven_best(layer).max(claimed_bound.unwrap_or(0.0));
    // An infeasible placement's load refutes nothing (missing experts carry no load).
    let claim_violations = claimed_bound
        .filter(|&bound| violations.is_empty() && exceeds(bound, max_load))
        .map(|bound| ClaimViolation::BoundAboveOwnLoad { bound, max_load })
        .into_iter()
        .collect();
    LayerReport {
        layer: layer.index(),
        violations,
        node_loads,
        max_load,
        mean_load,
        balancedness: ratio(mean_load, max_load),
        imbalance: ratio(max_load, mean_load) - 1.0,
        colocated_replicas,
        bounds,
        claimed_bound,
        claim_violations,
        lower_bound,
        gap: ratio(max_load, lower_bound) - 1.0,
        gpu_loads,
    }
}

/// The constraints `placement` breaks on `layer` (empty when feasible), as [`evaluate_layer`]
/// reports them, without measuring anything.
pub fn violations(layer: &LayerProblem<'_>, placement: &LayerPlacement) -> Vec<Violation> {
    let cluster = layer.cluster();
    let experts = layer.num_experts();
    let phy2log = placement.phy2log();
    let mut violations = Vec::new();
    if phy2log.len() != cluster.replicas {
        violations.push(Violation::WrongSlotCount {
            expected: cluster.replicas,
            found: phy2log.len(),
        });
    }
    for (slot, &expert) in phy2log.iter().enumerate() {
        if expert >= experts {
            violations.push(Violation::ExpertOutOfRange {
                slot,
                expert,
                num_experts: experts,
            });
        }
    }
    let logcnt = placement.logcnt(experts);
    violations.extend(
        (0..experts)
            .filter(|&e| logcnt[e] == 0)
            .map(|expert| Violation::MissingExpert { expert }),
    );

    if layer.policy() == Policy::Hierarchical {
        check_groups(layer, phy2log, &mut violations);
    }

    violations
}

/// The load of every GPU under `placement`, computed exactly as [`evaluate_layer`] does
/// (without the constraint checks and bounds): strategies that compare candidate placements
/// use this so that their choice agrees with the evaluator's verdict.
pub fn gpu_loads(layer: &LayerProblem<'_>, placement: &LayerPlacement) -> Vec<f64> {
    let logcnt = placement.logcnt(layer.num_experts());
    loads_of(layer, placement.phy2log(), &logcnt)
}

/// The largest GPU load under `placement`, as [`evaluate_layer`] reports it.
pub fn max_gpu_load(layer: &LayerProblem<'_>, placement: &LayerPlacement) -> f64 {
    gpu_loads(layer, placement).into_iter().fold(0.0, f64::max)
}

/// The slots of every GPU (the last ones cut short if `phy2log` is short).
fn gpu_slots<'a>(
    layer: &LayerProblem<'_>,
    phy2log: &'a [usize],
) -> impl Iterator<Item = &'a [usize]> {
    let per_gpu = layer.cluster().slots_per_gpu();
    (0..layer.cluster().gpus).map(move |gpu| {
        &phy2log[(gpu * per_gpu).min(phy2log.len())..((gpu + 1) * per_gpu).min(phy2log.len())]
    })
}

/// GPU loads, summed in slot order (the engines' [`bin_load`], so that their peaks and the
/// evaluator's agree to the bit). Slots beyond `R` and out-of-range ids carry nothing.
fn loads_of(layer: &LayerProblem<'_>, phy2log: &[usize], logcnt: &[usize]) -> Vec<f64> {
    let experts = layer.num_experts();
    gpu_slots(layer, phy2log)
        .map(|slots| {
            bin_load(
                slots
                    .iter()
                    .filter(|&&e| e < experts)
                    .map(|&e| layer.loads()[e] / logcnt[e] as f64),
            )
        })
        .collect()
}

/// Replicas that share a GPU with an earlier replica of the same expert.
fn colocated(layer: &LayerProblem<'_>, phy2log: &[usize]) -> usize {
    let experts = layer.num_experts();
    gpu_slots(layer, phy2log)
        .map(|slots| {
            (0..slots.len())
                .filter(|&i| slots[i] < experts && slots[..i].contains(&slots[i]))
                .count()
        })
        .sum()
}

/// Hierarchical policy: every group's replicas on one node, `G/N` groups per node.
fn check_groups(layer: &LayerProblem<'_>, phy2log: &[usize], violations: &mut Vec<Violation>) {
    let c = layer.cluster();
    let slots_per_node = c.replicas / c.nodes;
    let mut touches = vec![vec![false; c.nodes]; c.groups];
    for (slot, &e) in phy2log.iter().enumerate().take(c.replicas) {
        if e < layer.num_experts() {
            touches[layer.group_of(e)][slot / slots_per_node] = true;
        }
    }
    let mut groups_on_node = vec![0; c.nodes];
    for (group, nodes) in touches.iter().enumerate() {
        let on: Vec<usize> = (0..c.nodes).filter(|&n| nodes[n]).collect();
        for &n in &on {
            groups_on_node[n] += 1;
        }
        if on.len() > 1 {
            violations.push(Violation::GroupSplitAcrossNodes { group, nodes: on });
        }
    }
    let expected = c.groups / c.nodes;
    for (node, &groups) in groups_on_node.iter().enumerate() {
        if groups != expected {
            violations.push(Violation::WrongGroupCount {
                node,
                groups,
                expected,
            });
        }
    }
}

fn summarise(layers: &[LayerReport]) -> Summary {
    let n = layers.len().max(1) as f64;
    let sum = |f: fn(&LayerReport) -> f64| layers.iter().map(f).sum::<f64>();
    let sum_max_load = sum(|l| l.max_load);
    Summary {
        layers: layers.len(),
        feasible_layers: layers.iter().filter(|l| l.violations.is_empty()).count(),
        violations: layers.iter().map(|l| l.violations.len()).sum(),
        claim_violations: layers.iter().map(|l| l.claim_violations.len()).sum(),
        node_bounds_cut_short: layers
            .iter()
            .filter(|l| l.bounds.node_kind == Some(NodeBoundKind::ClosedForm))
            .count(),
        max_load: layers.iter().map(|l| l.max_load).fold(0.0, f64::max),
        sum_max_load,
        balancedness: ratio(sum(|l| l.mean_load), sum_max_load),
        mean_balancedness: sum(|l| l.balancedness) / n,
        min_balancedness: layers
            .iter()
            .map(|l| l.balancedness)
            .fold(f64::INFINITY, f64::min),
        mean_imbalance: sum(|l| l.imbalance) / n,
        max_gap: layers.iter().map(|l| l.gap).fold(0.0, f64::max),
        mean_gap: sum(|l| l.gap) / n,
        colocated_replicas: layers.iter().map(|l| l.colocated_replicas).sum(),
    }
}
