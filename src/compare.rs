//! Running several strategies on one problem and comparing them against the best bound any of
//! them (or the evaluator) proved: how far each heuristic is from optimal, as a measured fact.

use serde::Serialize;

use crate::error::Result;
use crate::evaluate::{evaluate, Evaluation, Summary};
use crate::problem::Problem;
use crate::runner::{solve_observed, Solution, SolveOptions};
use crate::strategy::{PlacementStrategy, SolveStatus};

/// One strategy's result in a [`Comparison`].
#[derive(Debug, Clone, Serialize)]
pub struct ComparisonRow {
    /// The strategy's name.
    pub strategy: String,
    /// The evaluator's summary of its placement.
    pub summary: Summary,
    /// Layers the strategy proved optimal.
    pub proven_optimal: usize,
    /// Layers where an exact strategy stopped at its limit.
    pub stopped_at_limit: usize,
    /// Largest per-layer gap to the best bound of that layer over all strategies.
    pub max_gap_to_best_bound: f64,
    /// Mean per-layer gap to the best bound.
    pub mean_gap_to_best_bound: f64,
    /// Wall time of the whole multi-layer solve, in seconds.
    pub seconds: f64,
    /// The full solution (not serialised).
    #[serde(skip)]
    pub solution: Solution,
    /// The full evaluation (not serialised).
    #[serde(skip)]
    pub evaluation: Evaluation,
}

/// Several strategies on one problem.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    /// Per layer: the best lower bound known (evaluator bounds and every strategy's claim).
    pub best_bounds: Vec<f64>,
    /// One row per strategy, in the order given.
    pub rows: Vec<ComparisonRow>,
}

/// Solves `problem` with each strategy and compares every placement with the best bound.
///
/// ```
/// use eplb::{compare::compare, strategies, synthetic::readme_example, Cluster, PolicyChoice, Problem};
/// let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
/// let problem = Problem::new(readme_example(), cluster, PolicyChoice::Auto).unwrap();
/// let c = compare(&problem, &strategies::all(), &Default::default(), &|_, _| {}).unwrap();
/// assert_eq!(c.rows[0].strategy, "greedy");
/// assert!(c.rows[0].max_gap_to_best_bound >= 0.0);
/// ```
///
/// `on_layer_done(strategy, layer)` is called as each layer of each strategy finishes (for
/// progress reporting).
///
/// # Errors
/// The first strategy error.
pub fn compare(
    problem: &Problem,
    strategies: &[Box<dyn PlacementStrategy>],
    options: &SolveOptions,
    on_layer_done: &(dyn Fn(&str, usize) + Sync),
) -> Result<Comparison> {
    let mut solved = Vec::with_capacity(strategies.len());
    for s in strategies {
        let solution = solve_observed(problem, s.as_ref(), options, &|l| {
            on_layer_done(s.name(), l)
        })?;
        let evaluation = evaluate(problem, &solution.placement, &solution.claimed_bounds())?;
        solved.push((solution, evaluation));
    }
    let best_bounds: Vec<f64> = (0..problem.num_layers())
        .map(|l| {
            solved
                .iter()
                .map(|(_, e)| e.layers[l].lower_bound)
                .fold(0.0, f64::max)
        })
        .collect();
    let rows = solved
        .into_iter()
        .map(|(solution, evaluation)| {
            let gaps: Vec<f64> = evaluation
                .layers
                .iter()
                .zip(&best_bounds)
                .map(|(r, &b)| if b > 0.0 { r.max_load / b - 1.0 } else { 0.0 })
                .collect();
            let count = |status| {
                solution
                    .layers
                    .iter()
                    .filter(|l| l.status == status)
                    .count()
            };
            ComparisonRow {
                strategy: solution.strategy.clone(),
                summary: evaluation.summary.clone(),
                proven_optimal: count(SolveStatus::Optimal),
                stopped_at_limit: count(SolveStatus::TimeLimit),
                max_gap_to_best_bound: gaps.iter().copied().fold(0.0, f64::max),
                mean_gap_to_best_bound: gaps.iter().sum::<f64>() / gaps.len().max(1) as f64,
                seconds: solution.elapsed.as_secs_f64(),
                solution,
                evaluation,
            }
        })
        .collect();
    Ok(Comparison { best_bounds, rows })
}
