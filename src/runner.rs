//! The runner: solves every layer of a [`Problem`] with a strategy, in parallel and
//! deterministically, and times each layer.

use std::time::{Duration, Instant};

use rayon::prelude::*;

use crate::error::{EplbError, Result};
use crate::evaluate::Claim;
use crate::placement::Placement;
use crate::problem::Problem;
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// How to run a strategy over the layers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SolveOptions {
    /// Worker threads: `None` uses rayon's global pool (all cores), `Some(1)` runs on the
    /// calling thread. The answer does not depend on it.
    pub threads: Option<usize>,
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
/// The first (lowest-layer) error a strategy returned, as [`EplbError::StrategyFailed`].
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
        let solution =
            strategy
                .solve_layer(&problem.layer(layer))
                .map_err(|e| EplbError::StrategyFailed {
                    strategy: strategy.name().to_string(),
                    layer,
                    message: e.to_string(),
                })?;
        on_layer_done(layer);
        Ok((solution, t.elapsed()))
    };
    let layers = problem.num_layers();
    let results: Vec<Result<(LayerSolution, Duration)>> = match options.threads {
        Some(1) => (0..layers).map(one).collect(),
        None => (0..layers).into_par_iter().map(one).collect(),
        Some(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| EplbError::StrategyFailed {
                    strategy: strategy.name().to_string(),
                    layer: 0,
                    message: format!("cannot start {n} worker threads: {e}"),
                })?;
            pool.install(|| (0..layers).into_par_iter().map(one).collect())
        }
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
