//! Loads over time: per-step loads and the objectives that judge a placement over the steps.
//!
//! A load trace often has a step axis, `[steps][layers][experts]` (SGLang's recorder dumps,
//! NumPy arrays). One placement serves every step, and a step costs what its busiest GPU
//! carries in that step, so three [`Objective`]s are useful:
//!
//! - [`Objective::Mean`]: the largest GPU load of the mean loads (what every strategy
//!   minimises; the loads readers' summed matrix is the mean up to a constant);
//! - [`Objective::SumOfStepMax`]: the sum over steps of each step's largest GPU load, what the
//!   steps actually cost (SGLang's `deepseek_vec` goal);
//! - [`Objective::WorstStep`]: the largest GPU load of any step.
//!
//! [`evaluate_steps`] reports all three for any placement; [`optimise`] lowers a per-step
//! objective from any placement (a strategy's answer for the mean) by swapping replicas
//! between GPUs ([`eplb_solvers::scenarios::SwapSearch`]), never making it worse;
//! [`ExactStepSearch`] continues with a MILP with one max variable per step and certifies
//! each layer.
//!
//! ```
//! use eplb::objective::{evaluate_steps, optimise, Objective, StepLoads};
//! use eplb::{solve, strategies, Cluster, Loads, PolicyChoice, Problem};
//!
//! // Two steps: experts 0 and 1 are busy in the first, 2 and 3 in the second.
//! let steps = StepLoads::new(vec![
//!     Loads::from_rows(&[vec![4.0, 4.0, 0.0, 0.0]])?,
//!     Loads::from_rows(&[vec![0.0, 0.0, 4.0, 4.0]])?,
//! ])?;
//! let problem = Problem::new(steps.total(), Cluster::new(4, 2), PolicyChoice::Global)?;
//! let mean = solve(&problem, strategies::by_name("greedy")?.as_ref(), &Default::default())?;
//! let per_step = optimise(&problem, &steps, &mean.placement, Objective::SumOfStepMax, false)?;
//! let before = evaluate_steps(&problem, &steps, &mean.placement)?;
//! let after = evaluate_steps(&problem, &steps, &per_step)?;
//! assert_eq!(before.layers[0].mean_max, 4.0); // every mean-optimal placement has this
//! assert!(after.summary.sum_step_max <= before.summary.sum_step_max);
//! assert_eq!(after.layers[0].sum_step_max, 8.0); // each step split 4 + 4 over the GPUs
//! # Ok::<(), eplb::EplbError>(())
//! ```

use std::str::FromStr;
use std::time::{Duration, Instant};

use eplb_solvers::milp::{Backend, ScenarioMilp};
use eplb_solvers::scenarios::{ScenarioGoal, SwapSearch};
use serde::{Deserialize, Serialize};

use crate::error::{EplbError, Result};
use crate::evaluate::gpu_loads;
use crate::placement::{LayerPlacement, Placement};
use crate::problem::{LayerProblem, Loads, Policy, Problem};

/// What a placement is judged by over the steps of a trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// The largest GPU load of the mean loads (today's objective of every strategy).
    #[default]
    Mean,
    /// The sum over steps of each step's largest GPU load.
    SumOfStepMax,
    /// The largest GPU load of any step.
    WorstStep,
}

impl Objective {
    /// Every objective, in a stable order.
    pub const ALL: [Objective; 3] = [
        Objective::Mean,
        Objective::SumOfStepMax,
        Objective::WorstStep,
    ];

    /// The objective's name on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Objective::Mean => "mean",
            Objective::SumOfStepMax => "sum-of-step-max",
            Objective::WorstStep => "worst-step",
        }
    }

    /// True for the objectives that need per-step loads.
    pub fn is_per_step(self) -> bool {
        self != Objective::Mean
    }
}

impl std::fmt::Display for Objective {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Objective {
    type Err = EplbError;

    /// ```
    /// use eplb::objective::Objective;
    /// assert_eq!("worst-step".parse::<Objective>().unwrap(), Objective::WorstStep);
    /// assert!("max".parse::<Objective>().is_err());
    /// ```
    fn from_str(s: &str) -> Result<Self> {
        Objective::ALL
            .into_iter()
            .find(|o| o.name() == s)
            .ok_or_else(|| EplbError::UnknownObjective { name: s.into() })
    }
}

/// Expert loads per step, `[steps][layers][experts]`: every step a [`Loads`] of one shape.
///
/// ```
/// use eplb::{objective::StepLoads, Loads};
/// let a = Loads::from_rows(&[vec![1.0, 2.0]])?;
/// let b = Loads::from_rows(&[vec![3.0, 0.0]])?;
/// let steps = StepLoads::new(vec![a, b])?;
/// assert_eq!(steps.total().layer(0), &[4.0, 2.0]);
/// assert_eq!(steps.layer_steps(0), vec![vec![1.0, 2.0], vec![3.0, 0.0]]);
/// assert!(StepLoads::new(vec![]).is_err());
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct StepLoads {
    steps: Vec<Loads>,
}

impl StepLoads {
    /// Per-step loads from one [`Loads`] per step.
    ///
    /// # Errors
    /// [`EplbError::InvalidStepLoads`] when there is no step or the steps differ in shape.
    pub fn new(steps: Vec<Loads>) -> Result<Self> {
        let Some(first) = steps.first() else {
            return Err(EplbError::InvalidStepLoads {
                reason: "no step: give at least one [layers][experts] matrix".into(),
            });
        };
        let shape = (first.num_layers(), first.num_experts());
        if let Some((s, l)) = steps
            .iter()
            .enumerate()
            .find(|(_, l)| (l.num_layers(), l.num_experts()) != shape)
        {
            return Err(EplbError::InvalidStepLoads {
                reason: format!(
                    "step {s} is {}x{} but step 0 is {}x{}: every step must have the same [layers][experts] shape",
                    l.num_layers(),
                    l.num_experts(),
                    shape.0,
                    shape.1
                ),
            });
        }
        Ok(Self { steps })
    }

    /// Number of steps.
    pub fn num_steps(&self) -> usize {
        self.steps.len()
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.steps[0].num_layers()
    }

    /// Number of experts.
    pub fn num_experts(&self) -> usize {
        self.steps[0].num_experts()
    }

    /// The loads of step `step`.
    ///
    /// # Panics
    /// When `step >= num_steps()`.
    pub fn step(&self, step: usize) -> &Loads {
        &self.steps[step]
    }

    /// The loads summed over the steps, in step order (what the loads readers hand to a
    /// [`Problem`]: the mean up to the factor `1 / steps`).
    pub fn total(&self) -> Loads {
        let (layers, experts) = (self.num_layers(), self.num_experts());
        let mut data = vec![0.0; layers * experts];
        for step in &self.steps {
            for (x, y) in data.iter_mut().zip(step.rows().flatten()) {
                *x += y;
            }
        }
        Loads::from_flat(layers, experts, data).expect("sums of valid loads are valid")
    }

    /// The loads of `layer` in every step, `[step][expert]`.
    ///
    /// # Panics
    /// When `layer >= num_layers()`.
    pub fn layer_steps(&self, layer: usize) -> Vec<Vec<f64>> {
        self.steps.iter().map(|s| s.layer(layer).to_vec()).collect()
    }

    /// The same steps without their first `layers` layers (dense layers a reader skips).
    #[cfg(feature = "formats")]
    pub(crate) fn without_leading_layers(&self, layers: usize) -> Result<Self> {
        let steps = self
            .steps
            .iter()
            .map(|s| Loads::from_rows(&s.rows().skip(layers).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>>>()?;
        Self::new(steps)
    }

    /// Checks that the steps have the problem's layers and experts.
    ///
    /// # Errors
    /// [`EplbError::InvalidStepLoads`] naming both shapes.
    pub fn check_fits(&self, problem: &Problem) -> Result<()> {
        if (self.num_layers(), self.num_experts()) != (problem.num_layers(), problem.num_experts())
        {
            return Err(EplbError::InvalidStepLoads {
                reason: format!(
                    "the steps are {}x{} [layers][experts] but the problem is {}x{}: they must match",
                    self.num_layers(),
                    self.num_experts(),
                    problem.num_layers(),
                    problem.num_experts()
                ),
            });
        }
        Ok(())
    }
}

/// Every objective of one layer's placement over the steps.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepReport {
    /// Layer index.
    pub layer: usize,
    /// [`Objective::Mean`]: the largest GPU load of the mean loads (the mean over steps of
    /// each GPU's load, then the largest).
    pub mean_max: f64,
    /// The mean over steps of each step's largest GPU load.
    pub mean_step_max: f64,
    /// [`Objective::WorstStep`]: the largest GPU load of any step.
    pub worst_step_max: f64,
    /// [`Objective::SumOfStepMax`]: the sum over steps of each step's largest GPU load.
    pub sum_step_max: f64,
    /// The step with the largest GPU load (the first on ties).
    pub worst_step: usize,
}

impl StepReport {
    /// The layer's value under `objective`.
    pub fn value(&self, objective: Objective) -> f64 {
        match objective {
            Objective::Mean => self.mean_max,
            Objective::SumOfStepMax => self.sum_step_max,
            Objective::WorstStep => self.worst_step_max,
        }
    }
}

/// The objectives over all layers.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepSummary {
    /// Steps in the trace.
    pub steps: usize,
    /// Sum over layers of [`StepReport::mean_max`].
    pub mean_max: f64,
    /// Sum over layers of [`StepReport::mean_step_max`].
    pub mean_step_max: f64,
    /// Sum over layers of [`StepReport::sum_step_max`].
    pub sum_step_max: f64,
    /// Largest [`StepReport::worst_step_max`] of any layer.
    pub worst_step_max: f64,
}

/// Every objective for every layer of a placement; see [`evaluate_steps`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepEvaluation {
    /// One report per layer.
    pub layers: Vec<StepReport>,
    /// Over all layers.
    pub summary: StepSummary,
}

/// Judges `placement` step by step: every [`Objective`] of every layer. GPU loads are the
/// evaluator's ([`gpu_loads`]) on each step's loads.
///
/// # Errors
/// [`EplbError::InvalidStepLoads`] when the steps do not fit the problem,
/// [`EplbError::LayerCountMismatch`] when the placement does not.
pub fn evaluate_steps(
    problem: &Problem,
    steps: &StepLoads,
    placement: &Placement,
) -> Result<StepEvaluation> {
    check_shapes(problem, steps, placement)?;
    let layers = problem
        .layers()
        .zip(placement.layers())
        .map(|(layer, lp)| step_report(&layer, steps, lp))
        .collect::<Result<Vec<_>>>()?;
    let sum = |f: fn(&StepReport) -> f64| layers.iter().map(f).sum::<f64>();
    let summary = StepSummary {
        steps: steps.num_steps(),
        mean_max: sum(|r| r.mean_max),
        mean_step_max: sum(|r| r.mean_step_max),
        sum_step_max: sum(|r| r.sum_step_max),
        worst_step_max: layers.iter().map(|r| r.worst_step_max).fold(0.0, f64::max),
    };
    Ok(StepEvaluation { layers, summary })
}

/// The steps and the placement fit the problem.
fn check_shapes(problem: &Problem, steps: &StepLoads, placement: &Placement) -> Result<()> {
    steps.check_fits(problem)?;
    if placement.num_layers() != problem.num_layers() {
        return Err(EplbError::LayerCountMismatch {
            found: placement.num_layers(),
            expected: problem.num_layers(),
        });
    }
    Ok(())
}

/// Every objective of one layer; see [`evaluate_steps`].
///
/// # Errors
/// [`EplbError::InvalidStepLoads`] when the steps do not have the layer's experts.
pub fn step_report(
    layer: &LayerProblem<'_>,
    steps: &StepLoads,
    placement: &LayerPlacement,
) -> Result<StepReport> {
    if steps.num_experts() != layer.num_experts() || layer.index() >= steps.num_layers() {
        return Err(EplbError::InvalidStepLoads {
            reason: format!(
                "layer {} of {} experts is not in the steps' {}x{} [layers][experts]",
                layer.index(),
                layer.num_experts(),
                steps.num_layers(),
                steps.num_experts()
            ),
        });
    }
    let cluster = layer.cluster();
    let mut total = vec![0.0; cluster.gpus];
    let (mut sum_step_max, mut worst_step_max, mut worst_step) = (0.0, 0.0, 0);
    for s in 0..steps.num_steps() {
        let step_layer = LayerProblem::new(
            layer.index(),
            steps.step(s).layer(layer.index()),
            cluster,
            layer.policy(),
        )?;
        let loads = gpu_loads(&step_layer, placement);
        let max = loads.iter().copied().fold(0.0, f64::max);
        for (t, l) in total.iter_mut().zip(&loads) {
            *t += l;
        }
        sum_step_max += max;
        if max > worst_step_max {
            (worst_step_max, worst_step) = (max, s);
        }
    }
    let n = steps.num_steps() as f64;
    Ok(StepReport {
        layer: layer.index(),
        mean_max: total.iter().copied().fold(0.0, f64::max) / n,
        mean_step_max: sum_step_max / n,
        worst_step_max,
        sum_step_max,
        worst_step,
    })
}

/// Lowers `objective` from `placement` layer by layer by swapping replicas between GPUs
/// (between GPUs of one node under the hierarchical policy, so groups stay on their nodes):
/// replica counts stay, every swap is judged on the exact per-step loads and only improving
/// swaps are kept, so no layer gets worse under `objective`. With `distinct`, no swap puts a
/// second replica of an expert on a GPU (the placement must be distinct already:
/// [`DistinctReplicas`](crate::strategies::DistinctReplicas)). [`Objective::Mean`] returns
/// the placement as it is: it is what the strategies minimise.
///
/// # Errors
/// [`EplbError::InvalidStepLoads`], [`EplbError::LayerCountMismatch`] for shapes that do not
/// fit; [`EplbError::Solver`] when a layer of `placement` is infeasible or, with `distinct`,
/// not distinct.
pub fn optimise(
    problem: &Problem,
    steps: &StepLoads,
    placement: &Placement,
    objective: Objective,
    distinct: bool,
) -> Result<Placement> {
    check_shapes(problem, steps, placement)?;
    let Some(goal) = goal_of(objective) else {
        return Ok(placement.clone());
    };
    let layers = problem
        .layers()
        .zip(placement.layers())
        .map(|(layer, lp)| {
            let weights = steps.layer_steps(layer.index());
            let mut slots = lp.phy2log().to_vec();
            let search = SwapSearch::new(&weights, layer.cluster().slots_per_gpu(), goal)
                .with_regions_of(region_gpus(&layer))
                .distinct(distinct);
            if search.improve(&mut slots)?.swaps == 0 {
                return Ok(lp.clone());
            }
            Ok(LayerPlacement::from_phy2log(slots))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Placement::new(problem.num_experts(), layers))
}

/// The exact per-step search: [`optimise`]'s swap search, then per layer the MILP with one
/// max variable per step ([`ScenarioMilp`]) started from it, under a time limit per layer.
///
/// The MILP keeps the replica counts and each node's replicas (the swap search's
/// neighbourhood) and chooses which GPU holds which replica; its [`StepCertificate`] is a
/// lower bound on the objective over every placement with those counts, proven
/// combinatorially (each step's mean GPU load and its largest replica share), and the layer is
/// proven optimal when the value meets it. The MILP solver's own dual bound is not reported:
/// its feasibility tolerances can put it above the optimum, and no unverified claim leaves
/// the library. DeepSeek-size layers need HiGHS (cargo feature `highs`) and a time limit.
///
/// ```
/// use eplb::objective::{ExactStepSearch, Objective, StepLoads};
/// use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
/// let steps = StepLoads::new(vec![
///     Loads::from_rows(&[vec![4.0, 4.0, 1.0, 0.0]])?,
///     Loads::from_rows(&[vec![0.0, 1.0, 4.0, 4.0]])?,
/// ])?;
/// let problem = Problem::new(steps.total(), Cluster::new(4, 2), PolicyChoice::Global)?;
/// let start = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3]])?;
/// let found = ExactStepSearch::default().optimise(&problem, &steps, &start, Objective::SumOfStepMax, false)?;
/// assert_eq!(found.layers[0].value, 10.0); // {0, 2} and {1, 3}: 5 + 5
/// // Each step's mean GPU load is 4.5: a bound of 9 that the optimum 10 does not meet.
/// assert_eq!(found.layers[0].lower_bound, 9.0);
/// assert!(!found.layers[0].proven);
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct ExactStepSearch {
    backend: Backend,
    time_limit: Option<Duration>,
    gap: Option<f64>,
}

/// What [`ExactStepSearch`] proved about one layer.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[non_exhaustive]
pub struct StepCertificate {
    /// The layer's value under the objective.
    pub value: f64,
    /// A lower bound on the objective over every placement with the same replica counts (and,
    /// under the hierarchical policy, the same replicas per node).
    pub lower_bound: f64,
    /// True when `value` meets `lower_bound`.
    pub proven: bool,
}

/// The placement [`ExactStepSearch`] found and a certificate per layer.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ExactStepResult {
    /// The placement (never worse than the start under the objective, layer by layer).
    pub placement: Placement,
    /// One certificate per layer (empty for [`Objective::Mean`], which the strategies
    /// minimise themselves).
    pub layers: Vec<StepCertificate>,
}

impl ExactStepSearch {
    /// The search on `backend`, without time limit or gap.
    pub fn new(backend: Backend) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }

    /// The time limit of each layer's MILP.
    #[must_use]
    pub fn with_time_limit(self, time_limit: Option<Duration>) -> Self {
        Self { time_limit, ..self }
    }

    /// The relative gap at which a layer's MILP may stop.
    #[must_use]
    pub fn with_gap(self, gap: Option<f64>) -> Self {
        Self { gap, ..self }
    }

    /// Lowers `objective` from `placement`; see the [type](Self) docs.
    ///
    /// # Errors
    /// As [`optimise`]; [`EplbError::Solver`] when the MILP backend fails.
    pub fn optimise(
        &self,
        problem: &Problem,
        steps: &StepLoads,
        placement: &Placement,
        objective: Objective,
        distinct: bool,
    ) -> Result<ExactStepResult> {
        let start = optimise(problem, steps, placement, objective, distinct)?;
        let Some(goal) = goal_of(objective) else {
            return Ok(ExactStepResult {
                placement: start,
                layers: Vec::new(),
            });
        };
        let mut layers = Vec::with_capacity(problem.num_layers());
        let mut certificates = Vec::with_capacity(problem.num_layers());
        for (layer, lp) in problem.layers().zip(start.layers()) {
            let milp = ScenarioMilp::new(self.backend)
                .with_deadline(self.time_limit.map(|t| Instant::now() + t))
                .with_gap(self.gap);
            let found = milp.solve(
                &steps.layer_steps(layer.index()),
                lp.phy2log(),
                layer.cluster().slots_per_gpu(),
                region_gpus(&layer),
                goal,
                distinct,
            )?;
            certificates.push(StepCertificate {
                value: found.value,
                lower_bound: found.lower_bound,
                proven: found.proven,
            });
            layers.push(if found.slots == lp.phy2log() {
                lp.clone()
            } else {
                LayerPlacement::from_phy2log(found.slots)
            });
        }
        Ok(ExactStepResult {
            placement: Placement::new(problem.num_experts(), layers),
            layers: certificates,
        })
    }
}

/// The engines' goal of a per-step objective.
fn goal_of(objective: Objective) -> Option<ScenarioGoal> {
    match objective {
        Objective::Mean => None,
        Objective::SumOfStepMax => Some(ScenarioGoal::SumOfPeaks),
        Objective::WorstStep => Some(ScenarioGoal::WorstPeak),
    }
}

/// The GPUs a replica may move among: a node under the hierarchical policy, all otherwise.
pub(crate) fn region_gpus(layer: &LayerProblem<'_>) -> usize {
    let cluster = layer.cluster();
    match layer.policy() {
        Policy::Hierarchical => cluster.gpus / cluster.nodes,
        Policy::Global => cluster.gpus,
    }
}
