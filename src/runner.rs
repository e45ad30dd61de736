//! The runner: solves every layer of a [`Problem`] with a strategy, in parallel and
//! deterministically, and times each layer.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use eplb_solvers::kernels::Kernels;

use rayon::prelude::*;

use crate::error::{EplbError, Result};
use crate::evaluate::Claim;
use crate::placement::Placement;
use crate::problem::{LayerBudget, Problem};
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// How to run a strategy over the layers: the one place for layer parallelism and for what
/// every layer may spend (argmin's executor is the model). The runner turns the per-layer
/// settings into each layer's [`LayerBudget`] when the layer starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SolveOptions {
    /// Worker threads over the layers: `None` uses rayon's global pool (all cores), `Some(1)`
    /// runs on the calling thread. The answer does not depend on it.
    pub threads: Option<usize>,
    /// Wall-time limit per layer for the strategies that search (`exact`, `ilp`), counted
    /// from the layer's start; `None`: the strategy's default (10 s for those two).
    pub time_limit: Option<Duration>,
    /// Relative optimality gap at which an exact method may stop; `None`: prove optimality.
    pub mip_gap: Option<f64>,
    /// Threads an exact method may use inside one layer; `None`: its default.
    pub threads_per_layer: Option<usize>,
    /// The greedy engines' kernels (the vector kernels where the processor has them, or the
    /// portable code); the answer does not depend on it.
    pub kernels: Kernels,
}

impl SolveOptions {
    /// Default options: all cores over the layers, the strategies' own limits.
    pub const fn new() -> Self {
        Self {
            threads: None,
            time_limit: None,
            mip_gap: None,
            threads_per_layer: None,
            kernels: Kernels::Auto,
        }
    }

    /// The options with `threads` worker threads over the layers.
    #[must_use]
    pub const fn with_threads(self, threads: Option<usize>) -> Self {
        Self { threads, ..self }
    }

    /// The options with a wall-time limit per layer.
    #[must_use]
    pub const fn with_time_limit(self, time_limit: Option<Duration>) -> Self {
        Self { time_limit, ..self }
    }

    /// The options with a relative optimality gap.
    #[must_use]
    pub const fn with_mip_gap(self, mip_gap: Option<f64>) -> Self {
        Self { mip_gap, ..self }
    }

    /// The options with a thread budget per layer.
    #[must_use]
    pub const fn with_threads_per_layer(self, threads: Option<usize>) -> Self {
        Self {
            threads_per_layer: threads,
            ..self
        }
    }

    /// The options with the greedy engines running `kernels`.
    #[must_use]
    pub const fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }

    /// The budget of a layer starting at `start`.
    fn budget(&self, start: Instant) -> LayerBudget {
        LayerBudget::new()
            // A limit beyond what an `Instant` can hold is as good as none: the far end of
            // what it can hold (never `None`, which would mean the strategy's default).
            .with_deadline(self.time_limit.map(|t| far_deadline(start, t)))
            .with_gap(self.mip_gap)
            .with_threads(self.threads_per_layer)
            .with_kernels(self.kernels)
    }
}

/// `start + limit`, or the latest instant this platform represents below it.
fn far_deadline(start: Instant, limit: Duration) -> Instant {
    let mut limit = limit;
    loop {
        match start.checked_add(limit) {
            Some(deadline) => return deadline,
            None => limit /= 2,
        }
    }
}

/// What the runner recorded for one layer besides the placement.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LayerOutcome {
    /// The strategy's claim.
    pub status: SolveStatus,
    /// The strategy's own lower bound, if it proved one.
    pub lower_bound: Option<f64>,
    /// Wall time of the layer's solve.
    pub elapsed: Duration,
}

/// A strategy's answer for a whole problem.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Solution {
    /// The strategy's name.
    pub strategy: String,
    /// The multi-layer placement.
    pub placement: Placement,
    /// One entry per layer.
    pub layers: Vec<LayerOutcome>,
    /// Wall time of the whole solve.
    pub elapsed: Duration,
}

impl LayerOutcome {
    /// The strategy's claim on this layer.
    pub fn claim(&self) -> Claim {
        Claim {
            status: self.status,
            bound: self.lower_bound,
        }
    }
}

impl Solution {
    /// The strategy's per-layer claims, for [`evaluate`](crate::evaluate()) to judge.
    pub fn claims(&self) -> Vec<Claim> {
        self.layers.iter().map(LayerOutcome::claim).collect()
    }
}

/// Solves every layer of `problem` with `strategy`.
///
/// Layers are independent and solved in parallel; results are collected in layer order, so the
/// output is the same for every thread count.
///
/// # Errors
/// The first (lowest-layer) error a strategy returned, as [`EplbError::StrategyFailed`] (its
/// source is the strategy's error); [`EplbError::ThreadPool`] when the worker threads cannot
/// start.
pub fn solve(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    options: &SolveOptions,
) -> Result<Solution> {
    solve_observed(problem, strategy, options, &|_| {})
}

/// [`solve`], calling `on_layer_done(layer)` as each layer finishes (from worker threads, in
/// completion order) — for progress bars.
///
/// # Errors
/// As [`solve`].
pub fn solve_observed(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    options: &SolveOptions,
    on_layer_done: &(dyn Fn(usize) + Sync),
) -> Result<Solution> {
    let start = Instant::now();
    let one = |layer: usize| -> Result<(LayerSolution, Duration)> {
        let t = Instant::now();
        let solution = strategy
            .solve_layer(&problem.layer(layer).with_budget(options.budget(t)))
            .map_err(|e| EplbError::StrategyFailed {
                strategy: strategy.name().to_string(),
                layer,
                source: Box::new(e),
            })?;
        on_layer_done(layer);
        Ok((solution, t.elapsed()))
    };
    let layers = problem.num_layers();
    let results: Vec<Result<(LayerSolution, Duration)>> = match options.threads {
        Some(1) => (0..layers).map(one).collect(),
        None => (0..layers).into_par_iter().map(one).collect(),
        Some(n) => pool_of(n)?.install(|| (0..layers).into_par_iter().map(one).collect()),
    };
    let mut placements = Vec::with_capacity(layers);
    let mut outcomes = Vec::with_capacity(layers);
    for result in results {
        let (solution, elapsed) = result?;
        placements.push(solution.placement);
        outcomes.push(LayerOutcome {
            status: solution.status,
            lower_bound: solution.lower_bound,
            elapsed,
        });
    }
    Ok(Solution {
        strategy: strategy.name().to_string(),
        placement: Placement::new(problem.num_experts(), placements),
        layers: outcomes,
        elapsed: start.elapsed(),
    })
}

/// The worker pool of `threads` threads, built once per thread count and kept for the
/// process (as rayon's global pool is): building one costs more than solving 58 layers with
/// `greedy`, so a rebalance loop that solves with `--threads T` must not pay it every call.
/// A worker pool and its thread count.
type SizedPool = (usize, Arc<rayon::ThreadPool>);

fn pool_of(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<Vec<SizedPool>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, pool)) = pools.iter().find(|(n, _)| *n == threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| EplbError::ThreadPool { threads, source })?;
    let pool = Arc::new(pool);
    pools.push((threads, Arc::clone(&pool)));
    Ok(pool)
}
