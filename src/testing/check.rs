//! The conformance properties every strategy must have, checked on one problem.

use std::time::Duration;

use crate::compare::{compare_borrowed, ComparisonRow};
use crate::error::EplbError;
use crate::evaluate::{exceeds, shared_gpus, Requirements};
use crate::problem::Problem;
use eplb_solvers::kernels::Kernels;

use crate::runner::{solve, Solution, SolveOptions};
use crate::strategy::{PlacementStrategy, SolveStatus};

use super::brute_force::{brute_force, enumerable};
use super::close;

/// A conformance property (what [`check_strategy`] checks, in this order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Property {
    /// The strategy answers every layer without an error.
    Solves,
    /// Its placement passes the evaluator: no constraint violated.
    Feasible,
    /// The GPU loads add up to the layer's total load.
    ConservesLoad,
    /// Its claims hold: no claimed bound above its own max load (judged by the evaluator) or
    /// above another strategy's verified load, no `optimal` claim beaten by another
    /// strategy (judged by [`compare`](crate::compare::compare())).
    ClaimsHold,
    /// The evaluator's lower bound (with the claimed one) is not above the max load.
    BoundBelowLoad,
    /// The same placement on a second run and on several threads (layers where a run stopped
    /// at or ran into its time limit are exempt: where a search stops depends on the
    /// machine's speed).
    Deterministic,
    /// Tiny problems: its max load is not below the brute-force optimum.
    NotBelowOptimum,
    /// Tiny problems: its claimed bound is not above the brute-force optimum.
    ClaimedBoundBelowOptimum,
    /// Tiny problems: the evaluator's combinatorial bounds are not above the optimum.
    BoundsBelowOptimum,
    /// Tiny problems: an `optimal` claim reaches the brute-force optimum.
    OptimalIsOptimum,
}

impl std::fmt::Display for Property {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Property::Solves => "solves",
            Property::Feasible => "feasible",
            Property::ConservesLoad => "conserves load",
            Property::ClaimsHold => "claims hold",
            Property::BoundBelowLoad => "bound below load",
            Property::Deterministic => "deterministic",
            Property::NotBelowOptimum => "not below the optimum",
            Property::ClaimedBoundBelowOptimum => "claimed bound below the optimum",
            Property::BoundsBelowOptimum => "bounds below the optimum",
            Property::OptimalIsOptimum => "optimal is the optimum",
        })
    }
}

/// The first property a strategy broke, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct ConformanceFailure {
    /// The strategy's name.
    pub strategy: String,
    /// The property it broke.
    pub property: Property,
    /// The layer, when the property is about one.
    pub layer: Option<usize>,
    /// What was seen.
    pub detail: String,
}

impl std::fmt::Display for ConformanceFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} breaks `{}`", self.strategy, self.property)?;
        if let Some(layer) = self.layer {
            write!(f, " on layer {layer}")?;
        }
        write!(f, ": {}", self.detail)
    }
}

impl std::error::Error for ConformanceFailure {}

/// How [`check_strategy`] runs.
#[derive(Clone, Copy)]
#[must_use]
pub struct CheckOptions<'a> {
    threads: usize,
    time_limit: Option<Duration>,
    brute_force: bool,
    references: &'a [Box<dyn PlacementStrategy>],
    requirements: Requirements,
}

impl Default for CheckOptions<'_> {
    /// 2 threads for the parallel run, brute force on tiny problems, no references.
    fn default() -> Self {
        Self {
            threads: 2,
            time_limit: None,
            brute_force: true,
            references: &[],
            requirements: Requirements::new(),
        }
    }
}

impl std::fmt::Debug for CheckOptions<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let references: Vec<&str> = self.references.iter().map(|r| r.name()).collect();
        f.debug_struct("CheckOptions")
            .field("threads", &self.threads)
            .field("time_limit", &self.time_limit)
            .field("brute_force", &self.brute_force)
            .field("references", &references)
            .field("requirements", &self.requirements)
            .finish()
    }
}

impl<'a> CheckOptions<'a> {
    /// Worker threads of the parallel run compared with the sequential ones (default 2).
    pub fn threads(self, threads: usize) -> Self {
        Self { threads, ..self }
    }

    /// The time limit per layer of the searching strategies in every run (default: theirs).
    pub fn time_limit(self, time_limit: Duration) -> Self {
        Self {
            time_limit: Some(time_limit),
            ..self
        }
    }

    /// Whether tiny problems are compared with their [brute-force](super::brute_force())
    /// optimum (default: yes).
    pub fn brute_force(self, brute_force: bool) -> Self {
        Self {
            brute_force,
            ..self
        }
    }

    /// Strategies whose verified loads the checked strategies' claims must survive (they are
    /// solved, not checked).
    pub fn references(self, references: &'a [Box<dyn PlacementStrategy>]) -> Self {
        Self { references, ..self }
    }

    /// Constraints beyond the problem's that the checked strategies promise (e.g. distinct
    /// replicas, for [`DistinctReplicas`](crate::strategies::DistinctReplicas)): a breach
    /// fails [`Property::Feasible`] (default: none).
    pub fn requirements(self, requirements: Requirements) -> Self {
        Self {
            requirements,
            ..self
        }
    }
}

/// Checks every [`Property`] of `strategy` on `problem`.
///
/// ```
/// use eplb::testing::{check_strategy, CheckOptions, Property};
/// use eplb::{strategies, Cluster, LayerPlacement, LayerProblem, LayerSolution, Loads,
///            PlacementStrategy, PolicyChoice, Problem, Result, SolveStatus};
///
/// /// Claims its (round-robin) answer is optimal.
/// struct Boaster;
/// impl PlacementStrategy for Boaster {
///     fn name(&self) -> &str { "boaster" }
///     fn description(&self) -> &str { "round-robin, claimed optimal" }
///     fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
///         let e = layer.num_experts();
///         let phy2log = (0..layer.cluster().replicas).map(|s| s % e).collect();
///         Ok(LayerSolution { status: SolveStatus::Optimal, lower_bound: None,
///                            placement: LayerPlacement::from_phy2log(phy2log) })
///     }
/// }
///
/// let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global)?;
/// let greedy = vec![strategies::by_name("greedy")?];
/// let failure = check_strategy(&Boaster, &problem, &CheckOptions::default().references(&greedy))
///     .unwrap_err();
/// assert_eq!(failure.property, Property::ClaimsHold); // greedy beats the claimed optimum
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// The first property broken, as a [`ConformanceFailure`].
pub fn check_strategy(
    strategy: &dyn PlacementStrategy,
    problem: &Problem,
    options: &CheckOptions<'_>,
) -> Result<(), ConformanceFailure> {
    check_all(&[strategy], problem, options)
}

/// Checks every [`Property`] of each of `strategies` on `problem`, each strategy's claims
/// judged against the verified loads of all the others (and of the references).
///
/// # Errors
/// The first property broken, as a [`ConformanceFailure`].
pub fn check_strategies(
    strategies: &[Box<dyn PlacementStrategy>],
    problem: &Problem,
    options: &CheckOptions<'_>,
) -> Result<(), ConformanceFailure> {
    let checked: Vec<&dyn PlacementStrategy> = strategies.iter().map(|s| s.as_ref()).collect();
    check_all(&checked, problem, options)
}

fn check_all(
    checked: &[&dyn PlacementStrategy],
    problem: &Problem,
    options: &CheckOptions<'_>,
) -> Result<(), ConformanceFailure> {
    let mut field = checked.to_vec();
    field.extend(options.references.iter().map(|r| r.as_ref()));
    let sequential = SolveOptions::new()
        .with_threads(Some(1))
        .with_time_limit(options.time_limit);
    let comparison = compare_borrowed(problem, &field, &sequential, &|_, _| {})
        .map_err(|e| solve_failure("a strategy", e))?;
    let optima: Vec<Option<f64>> = if options.brute_force && enumerable(problem) {
        problem
            .layers()
            .map(|layer| brute_force(&layer).ok().map(|o| o.max_load))
            .collect()
    } else {
        vec![None; problem.num_layers()]
    };
    for (&strategy, row) in checked.iter().zip(&comparison.rows) {
        let check = Check {
            strategy,
            problem,
            row,
            fail: |property, layer, detail| ConformanceFailure {
                strategy: strategy.name().to_string(),
                property,
                layer,
                detail,
            },
        };
        check.evaluation()?;
        check.requirements(options.requirements)?;
        check.determinism(&sequential, options.threads)?;
        check.optima(&optima)?;
    }
    Ok(())
}

fn solve_failure(strategy: &str, error: EplbError) -> ConformanceFailure {
    let (strategy, layer) = match &error {
        EplbError::StrategyFailed {
            strategy, layer, ..
        } => (strategy.as_str(), Some(*layer)),
        _ => (strategy, None),
    };
    ConformanceFailure {
        strategy: strategy.to_string(),
        property: Property::Solves,
        layer,
        detail: error.to_string(),
    }
}

/// The checks of one strategy's row of the comparison.
struct Check<'c, F> {
    strategy: &'c dyn PlacementStrategy,
    problem: &'c Problem,
    row: &'c ComparisonRow,
    fail: F,
}

impl<F: Fn(Property, Option<usize>, String) -> ConformanceFailure> Check<'_, F> {
    /// The extra requirements, judged by the evaluator.
    fn requirements(&self, requirements: Requirements) -> Result<(), ConformanceFailure> {
        if !requirements.distinct_replicas {
            return Ok(());
        }
        let placement = &self.row.solution.placement;
        for (layer, lp) in self.problem.layers().zip(placement.layers()) {
            let shared = shared_gpus(&layer, lp);
            if !shared.is_empty() {
                return Err((self.fail)(
                    Property::Feasible,
                    Some(layer.index()),
                    format!("distinct replicas promised: {shared:?}"),
                ));
            }
        }
        Ok(())
    }

    /// Feasible, load conserved, claims hold, bound below load.
    fn evaluation(&self) -> Result<(), ConformanceFailure> {
        for (l, r) in self.row.evaluation.layers.iter().enumerate() {
            let at = Some(l);
            if !r.violations.is_empty() {
                return Err((self.fail)(
                    Property::Feasible,
                    at,
                    format!("{:?}", r.violations),
                ));
            }
            let total: f64 = self.problem.loads().layer(l).iter().sum();
            let sum: f64 = r.gpu_loads.iter().sum();
            if !close(sum, total) {
                return Err((self.fail)(
                    Property::ConservesLoad,
                    at,
                    format!("GPU loads sum to {sum}, the layer's loads to {total}"),
                ));
            }
            if let Some(v) = r.claim_violations.first() {
                return Err((self.fail)(Property::ClaimsHold, at, v.to_string()));
            }
            if exceeds(r.lower_bound, r.max_load) {
                return Err((self.fail)(
                    Property::BoundBelowLoad,
                    at,
                    format!("bound {} above load {}", r.lower_bound, r.max_load),
                ));
            }
        }
        Ok(())
    }

    /// The same placements on a second `sequential` run, on `threads` threads, on the
    /// portable kernels and with twice the time limit.
    ///
    /// A layer that ran into its deadline is exempt, even when its status is not
    /// `time_limit` (a stage cut by the deadline may leave another start to a later stage that
    /// still proves an optimum, and optima need not be unique). Every other layer must not
    /// depend on the clock at all: the run with the longer limit catches a search that splits
    /// its time into shares, whose stages then stop at points that depend on the machine's
    /// speed although the layer ends in time.
    fn determinism(
        &self,
        sequential: &SolveOptions,
        threads: usize,
    ) -> Result<(), ConformanceFailure> {
        let first = &self.row.solution;
        let stopped = |s: &Solution, options: &SolveOptions, l: usize| {
            s.layers[l].status == SolveStatus::TimeLimit
                || options
                    .time_limit
                    .is_some_and(|limit| s.layers[l].elapsed >= limit)
        };
        if (0..self.problem.num_layers()).all(|l| stopped(first, sequential, l)) {
            return Ok(()); // every layer is exempt
        }
        let mut runs = vec![
            ("a second run", sequential.clone()),
            (
                "a parallel run",
                sequential.clone().with_threads(Some(threads)),
            ),
            (
                "a run on the portable kernels",
                sequential.clone().with_kernels(Kernels::Portable),
            ),
        ];
        if let Some(limit) = sequential.time_limit {
            runs.push((
                "a run with twice the time limit",
                sequential.clone().with_time_limit(Some(limit * 2)),
            ));
        }
        for (what, options) in runs {
            let other: Solution = solve(self.problem, self.strategy, &options)
                .map_err(|e| solve_failure(self.strategy.name(), e))?;
            for l in 0..self.problem.num_layers() {
                if !stopped(first, sequential, l)
                    && !stopped(&other, &options, l)
                    && first.placement.layer(l) != other.placement.layer(l)
                {
                    return Err((self.fail)(
                        Property::Deterministic,
                        Some(l),
                        format!(
                            "{what} gave {:?} instead of {:?}",
                            other.placement.layer(l).phy2log(),
                            first.placement.layer(l).phy2log()
                        ),
                    ));
                }
            }
        }
        Ok(())
    }

    /// On the layers whose optimum is known: load, bounds and `optimal` claims against it.
    fn optima(&self, optima: &[Option<f64>]) -> Result<(), ConformanceFailure> {
        for (l, r) in self.row.evaluation.layers.iter().enumerate() {
            let Some(optimum) = optima[l] else {
                continue;
            };
            let at = Some(l);
            let outcome = &self.row.solution.layers[l];
            if r.max_load < optimum * (1.0 - 1e-9) {
                return Err((self.fail)(
                    Property::NotBelowOptimum,
                    at,
                    format!("max load {} below the optimum {optimum}", r.max_load),
                ));
            }
            if let Some(bound) = outcome.lower_bound.filter(|&b| exceeds(b, optimum)) {
                return Err((self.fail)(
                    Property::ClaimedBoundBelowOptimum,
                    at,
                    format!("claimed bound {bound} above the optimum {optimum}"),
                ));
            }
            if exceeds(r.bounds.best(), optimum) {
                return Err((self.fail)(
                    Property::BoundsBelowOptimum,
                    at,
                    format!("bounds {:?} above the optimum {optimum}", r.bounds),
                ));
            }
            if outcome.status == SolveStatus::Optimal && !close(r.max_load, optimum) {
                return Err((self.fail)(
                    Property::OptimalIsOptimum,
                    at,
                    format!(
                        "claimed optimal at {} but the optimum is {optimum}",
                        r.max_load
                    ),
                ));
            }
        }
        Ok(())
    }
}
