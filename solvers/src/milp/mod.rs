//! An exact MILP for *replicated min-max packing*, on [`good_lp`].
//!
//! `n` items with weights `w[i] >= 0` are copied onto `m` bins of exactly `s` slots each
//! (`m * s >= n` slots in all). Every item gets `c[i] >= 1` copies and each copy carries
//! `w[i] / c[i]`; the aim is to minimise the largest bin sum. The copy counts and the
//! assignment are chosen together. Optionally the bins form `r` equal *regions* of consecutive
//! bins and the items form groups of `b` consecutive items: each region then takes exactly
//! `groups / r` whole groups and every copy of an item stays in its group's region.
//!
//! # Models
//!
//! Weights are scaled by the mean bin load so that tolerances are relative. `U` is the
//! incumbent's maximum (an upper bound), `L` a proven lower bound. Three formulations, chosen
//! by [`solve`]:
//!
//! **Pattern model** (no regions, few patterns). A *copy type* is an item with a copy count,
//! `(i, k)`; a *pattern* is a multiset of `s` copies, one count per item, lighter than `U`.
//! Identical bins are aggregated: integers `y[p]` count the bins using pattern `p`, binaries
//! `z[i][k]` choose the counts, `sum_p y[p] = m`, `sum_k z[i][k] = 1` and every type's copies
//! over the patterns equal `k z[i][k]`. No bin symmetry is left and the relaxation is the strong
//! configuration LP. With only the patterns of load at most `t` kept, the model says whether
//! the optimum is at most `t`; a binary search over the pattern loads finds the optimum, each
//! infeasible threshold raising the proven bound.
//!
//! **Decomposition** (regions, few splits). A solution is a split of the groups among the
//! interchangeable regions plus an independent region-free solution per group set, so the
//! optimum is `min over splits of max over its sets of OPT(set)` and
//! `min over splits of max lb(set)` is a valid bound for any per-set bounds `lb` (cheap ones
//! first: mean bin load and replication bound). The split with the smallest bound is looked at
//! repeatedly and its sets that set its value are solved (pattern or assignment model, cut off
//! at the incumbent) until the incumbent meets the bound or time runs out.
//!
//! **Assignment model** (otherwise):
//!
//! - `T in [L, U]`, minimised;
//! - copy counts restricted to `c[i] in [max(1, ceil(w[i] / U)), that + slack]` where `slack`
//!   is what the lower ends leave of the `m * s` slots (a count outside cannot beat `U`);
//!   when that makes too many columns, only the incumbent's counts plus or minus 2 are
//!   searched, as a heuristic whose dual bound is not used;
//! - binaries `z[i][k]` ("item `i` has `k` copies", one per item; absent when the range has a
//!   single value) and integers `x[i][k][j]` (copies of item `i` on bin `j` when it has `k`),
//!   linked by `sum_j x[i][k][j] = k z[i][k]`;
//! - every bin holds `s` copies and carries at most `T`; every single copy carries at most
//!   `T` (`sum_k w[i]/k z[i][k] <= T`, which puts the replication bound into the relaxation);
//! - regions (when the decomposition does not apply): binaries `y[g][r]` with each group in
//!   one region and `groups / r` groups per region; copies of group `g` on a bin of region `r`
//!   need `y[g][r]`. Regions are interchangeable, so group `g` may only use regions `0..=g`
//!   (symmetry breaking);
//! - optionally (the pure-Rust backend, which has no symmetry detection of its own) the bins of
//!   a region are ordered by load.
//!
//! The incumbent is handed to the solver as its starting solution, so a placement always
//! exists, and the result is never worse than the incumbent. The time limit covers the whole
//! call: local search, model building, every solver run.
//!
//! # Backends
//!
//! [`Backend::MicroLp`] (pure Rust, always available) solves tiny instances only;
//! `Backend::Highs` (cargo feature `highs`) also reports HiGHS's dual bound when it stops at
//! a limit.
//!
//! ```
//! use eplb_solvers::milp::{solve, Backend, MilpOptions, PackingProblem};
//!
//! // Weights (3, 3, 2) on 2 bins x 2 slots: copying the *small* item is optimal (4.0).
//! let problem = PackingProblem::new(vec![3.0, 3.0, 2.0], 2, 2);
//! // Any valid incumbent works; here item 0 twice: bins {1.5, 3} and {1.5, 2}, max 4.5.
//! let incumbent = vec![vec![1, 1], vec![1, 0], vec![0, 1]];
//! let outcome = solve(&problem, &incumbent, Backend::MicroLp, &MilpOptions::default()).unwrap();
//! assert!(outcome.proven_optimal);
//! assert_eq!(outcome.max_load, 4.0);
//! ```

mod assignment;
mod backend;
mod local;
mod microlp;
mod patterns;
mod problem;
mod regions;
#[cfg(test)]
mod tests;

#[cfg(feature = "highs")]
mod highs;

use std::time::{Duration, Instant};

use crate::error::SolverError;
use crate::tolerance::{DUAL_BOUND_SHAVE, OPTIMALITY, STRICT};

use assignment::*;
pub use backend::Backend;
use backend::*;
pub use problem::{PackingProblem, Regions};

/// Limits of one solve.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MilpOptions {
    /// Wall-time limit; `None` means none.
    pub time_limit: Option<Duration>,
    /// Relative gap at which the solver may stop; `None` means prove optimality.
    pub mip_gap: Option<f64>,
    /// Threads the solver may use (HiGHS only); `None` means the solver's default.
    pub threads: Option<usize>,
}

/// The result of [`solve`].
#[derive(Debug, Clone, PartialEq)]
pub struct MilpOutcome {
    /// `copies[i][j]`: copies of item `i` on bin `j`. Never worse than the incumbent.
    pub copies: Vec<Vec<usize>>,
    /// Largest bin load of `copies`.
    pub max_load: f64,
    /// True when the solver proved `copies` optimal (up to the solvers' tolerances: the
    /// solver's dual bound is within a relative `1e-5` of `max_load`).
    pub proven_optimal: bool,
    /// A lower bound on the optimum proved by the solver (in the weights' units), including
    /// the problem's own `lower_bound`; the solver's tolerances are shaved off.
    pub dual_bound: Option<f64>,
}

/// Copy-variable columns above which the assignment model only searches the neighbourhood of
/// the seed's copy counts.
const MAX_FULL_COLUMNS: usize = 60_000;

/// How far copy counts may move from the seed's in the neighbourhood search.
const NEIGHBOURHOOD: usize = 2;

/// What the searches share: the backend, the options and the deadline.
struct Ctx<'a> {
    backend: Backend,
    options: &'a MilpOptions,
    deadline: Option<Instant>,
}

impl Ctx<'_> {
    /// Time left before the deadline (`None`: no deadline).
    fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// True when the deadline has passed.
    fn expired(&self) -> bool {
        self.time_left().is_some_and(|t| t.is_zero())
    }
}

/// What a search found: a better solution (if any) and a proven lower bound on the optimum
/// (tolerances already shaved off).
struct Found {
    best: Option<(Vec<Vec<usize>>, f64)>,
    bound: f64,
}

/// Solves `problem` exactly (or until a limit), starting from `incumbent`
/// (`incumbent[i][j]`: copies of item `i` on bin `j`).
///
/// The time limit bounds the whole call (local search, model building and solving).
///
/// # Strategy
///
/// - Without regions, when the copy counts and bins admit few *bin patterns* (multisets of
///   `s` copies lighter than the incumbent), a pattern model (one integer per pattern: how
///   many bins use it; identical bins are aggregated, so no symmetry) answers "is there a
///   solution whose bins are all at most `t`?" and the optimum is found by binary search over
///   the pattern loads; otherwise the assignment model of the [module docs](self) runs once.
/// - With regions, when the ways to split groups among regions are few, the problem is
///   decomposed: the optimum is the minimum over splits of the largest region optimum, every
///   group set a region can receive is an independent problem without regions, and group sets
///   are solved on demand for the split with the smallest bound until the incumbent meets
///   that bound (the bound is valid because it is the minimum over *all* splits).
///
/// # Errors
/// [`SolverError::InvalidModel`] for a malformed problem or incumbent, weight errors,
/// [`SolverError::Backend`] when the solver fails.
pub fn solve(
    problem: &PackingProblem,
    incumbent: &[Vec<usize>],
    backend: Backend,
    options: &MilpOptions,
) -> Result<MilpOutcome, SolverError> {
    let deadline = options.time_limit.map(|t| Instant::now() + t);
    problem.validate()?;
    problem
        .check_solution(incumbent)
        .map_err(|m| SolverError::InvalidModel(format!("invalid incumbent: {m}")))?;
    if let Some(gap) = options.mip_gap {
        if !gap.is_finite() || gap < 0.0 {
            return Err(SolverError::InvalidModel(format!(
                "MIP gap {gap} must be a finite number >= 0"
            )));
        }
    }
    let ctx = Ctx {
        backend,
        options,
        deadline,
    };
    let mut improved = incumbent.to_vec();
    local::improve(problem, &mut improved, deadline);
    let incumbent_load = problem.max_load(&improved);
    let scale = problem.weights.iter().sum::<f64>() / problem.bins as f64;
    if scale == 0.0 || incumbent_load <= problem.lower_bound {
        // All weights zero, or the incumbent already meets the bound.
        return Ok(MilpOutcome {
            copies: improved,
            max_load: incumbent_load,
            proven_optimal: true,
            dual_bound: Some(incumbent_load),
        });
    }
    let found = match problem.regions {
        Some(r) if r.regions > 1 => {
            match regions::solve(problem, &improved, incumbent_load, &ctx)? {
                Some(found) => found,
                None => assignment(
                    problem,
                    Some(&improved),
                    problem.lower_bound,
                    incumbent_load,
                    &ctx,
                )?,
            }
        }
        _ => flat(
            &problem.weights,
            problem.bins,
            problem.slots_per_bin,
            problem.lower_bound,
            incumbent_load,
            Some(&improved),
            &ctx,
        )?,
    };
    let (copies, max_load) = match found.best {
        Some((c, _)) if problem.check_solution(&c).is_ok() => {
            let load = problem.max_load(&c);
            if load <= incumbent_load {
                (c, load)
            } else {
                (improved, incumbent_load)
            }
        }
        _ => (improved, incumbent_load),
    };
    let bound = found.bound.max(problem.lower_bound);
    Ok(MilpOutcome {
        proven_optimal: max_load <= bound * (1.0 + OPTIMALITY),
        dual_bound: Some(bound.min(max_load)),
        copies,
        max_load,
    })
}

/// A problem without regions: the pattern search when the patterns are few, the assignment
/// model otherwise. Looks for solutions lighter than `upper`; `seed` (if lighter than
/// `upper`... or equal) is the assignment model's start.
fn flat(
    weights: &[f64],
    bins: usize,
    slots: usize,
    lower: f64,
    upper: f64,
    seed: Option<&[Vec<usize>]>,
    ctx: &Ctx<'_>,
) -> Result<Found, SolverError> {
    let scale = weights.iter().sum::<f64>() / bins as f64;
    if scale == 0.0 {
        return Ok(Found {
            best: None,
            bound: 0.0,
        });
    }
    if lower >= upper * (1.0 - STRICT) {
        return Ok(Found {
            best: None,
            bound: lower,
        });
    }
    match patterns::Patterns::enumerate(weights, bins, slots, upper) {
        patterns::Enumerated::TooMany => {
            let problem =
                PackingProblem::new(weights.to_vec(), bins, slots).with_lower_bound(lower);
            assignment(&problem, seed, lower, upper, ctx)
        }
        patterns::Enumerated::NoneBetter => Ok(Found {
            best: None,
            bound: upper * (1.0 - STRICT) * (1.0 - DUAL_BOUND_SHAVE),
        }),
        patterns::Enumerated::Some(set) => set.search(lower, upper, ctx),
    }
}
