//! Running several strategies on one problem and comparing them against the best bound any of
//! them (or the evaluator) proved: how far each heuristic is from optimal, as a measured fact.
//!
//! The comparison also judges every strategy's claims against the others' verified loads: an
//! `optimal` claim beaten, or a claimed bound above a load another strategy reached, is
//! recorded as a [`ClaimViolation`] on that strategy's evaluation.

use serde::Serialize;

use crate::error::Result;
use crate::evaluate::{evaluate, exceeds, ClaimViolation, Evaluation, Summary};
use crate::problem::Problem;
use crate::runner::{solve_observed, Solution, SolveOptions};
use crate::strategy::{PlacementStrategy, SolveStatus};

/// One strategy's result in a [`Comparison`].
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
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
    /// The strategy's refuted claims, layer by layer (not serialised when empty).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub claim_violations: Vec<LayerClaimViolation>,
    /// The full solution (not serialised).
    #[serde(skip)]
    pub solution: Solution,
    /// The full evaluation (not serialised).
    #[serde(skip)]
    pub evaluation: Evaluation,
}

/// A refuted claim and the layer it was made on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LayerClaimViolation {
    /// The layer.
    pub layer: usize,
    /// What was refuted.
    #[serde(flatten)]
    pub violation: ClaimViolation,
}

/// Several strategies on one problem.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
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
/// Each strategy's claims are judged against the best verified load of the others on every
/// layer (see [`ClaimViolation`]); the refuted ones are in the row's `claim_violations` and
/// in its evaluation.
///
/// # Errors
/// The first strategy error.
pub fn compare(
    problem: &Problem,
    strategies: &[Box<dyn PlacementStrategy>],
    options: &SolveOptions,
    on_layer_done: &(dyn Fn(&str, usize) + Sync),
) -> Result<Comparison> {
    let strategies: Vec<&dyn PlacementStrategy> = strategies.iter().map(|s| s.as_ref()).collect();
    compare_borrowed(problem, &strategies, options, on_layer_done)
}

/// [`compare`] over borrowed strategies.
pub(crate) fn compare_borrowed(
    problem: &Problem,
    strategies: &[&dyn PlacementStrategy],
    options: &SolveOptions,
    on_layer_done: &(dyn Fn(&str, usize) + Sync),
) -> Result<Comparison> {
    let mut solved = Vec::with_capacity(strategies.len());
    for &s in strategies {
        let solution = solve_observed(problem, s, options, &|l| on_layer_done(s.name(), l))?;
        let evaluation = evaluate(problem, &solution.placement, &solution.claims())?;
        solved.push((solution, evaluation));
    }
    judge_claims(&mut solved);
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
            let claim_violations = evaluation
                .layers
                .iter()
                .flat_map(|r| {
                    r.claim_violations
                        .iter()
                        .map(|violation| LayerClaimViolation {
                            layer: r.layer,
                            violation: violation.clone(),
                        })
                })
                .collect();
            ComparisonRow {
                strategy: solution.strategy.clone(),
                summary: evaluation.summary.clone(),
                proven_optimal: count(SolveStatus::Optimal),
                stopped_at_limit: count(SolveStatus::TimeLimit),
                max_gap_to_best_bound: gaps.iter().copied().fold(0.0, f64::max),
                mean_gap_to_best_bound: gaps.iter().sum::<f64>() / gaps.len().max(1) as f64,
                seconds: solution.elapsed.as_secs_f64(),
                claim_violations,
                solution,
                evaluation,
            }
        })
        .collect();
    Ok(Comparison { best_bounds, rows })
}

/// Judges every strategy's claims on every layer against the lowest verified (feasible) max
/// load any *other* strategy reached there, recording the refuted ones.
fn judge_claims(solved: &mut [(Solution, Evaluation)]) {
    let layers = solved.first().map_or(0, |(s, _)| s.layers.len());
    for l in 0..layers {
        for i in 0..solved.len() {
            let best_other = solved
                .iter()
                .enumerate()
                .filter(|&(j, (_, e))| j != i && e.layers[l].violations.is_empty())
                .map(|(_, (s, e))| (e.layers[l].max_load, s.strategy.as_str()))
                .min_by(|a, b| a.0.total_cmp(&b.0));
            let Some((load, by)) = best_other else {
                continue;
            };
            let (solution, evaluation) = &solved[i];
            let claim = solution.layers[l].claim();
            let own = &evaluation.layers[l];
            let mut refuted = Vec::new();
            if let Some(bound) = claim.bound.filter(|&b| exceeds(b, load)) {
                refuted.push(ClaimViolation::BoundAboveVerifiedLoad {
                    bound,
                    by: by.to_string(),
                    load,
                });
            }
            if claim.status == SolveStatus::Optimal
                && own.violations.is_empty()
                && exceeds(own.max_load, load)
            {
                refuted.push(ClaimViolation::OptimalBeaten {
                    max_load: own.max_load,
                    by: by.to_string(),
                    load,
                });
            }
            for violation in refuted {
                solved[i].1.record_claim_violation(l, violation);
            }
        }
    }
}
