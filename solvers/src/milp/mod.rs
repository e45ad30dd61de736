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
//! by [`Milp`]:
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
//! [`Backend::MicroLp`] (pure Rust, always available) solves tiny instances only, on a thread
//! of its own so that the deadline holds even when one simplex run overruns it;
//! `Backend::Highs` (cargo feature `highs`) also uses HiGHS's dual bound when it stops at a
//! limit. A failure inside a backend run ends that run like a limit.
//!
//! # Certificates
//!
//! The backends' bounds steer the searches but are never reported: they hold only up to the
//! solvers' feasibility tolerances. The packing found is certified by the
//! [exact search](crate::exact) started from it, within the same deadline (the `verify`
//! module), so every `Optimal` and every lower bound of this engine is proven exactly.
//!
//! ```
//! use eplb_solvers::milp::{Backend, Milp};
//! use eplb_solvers::packing::{ExactEngine, PackingProblem, StopReason, WithStart};
//!
//! // Weights (3, 3, 2) on 2 bins x 2 slots: copying the *small* item is optimal (4.0).
//! let problem = PackingProblem::new(vec![3.0, 3.0, 2.0], 2, 2)?;
//! // Any valid start works; here item 0 twice: bins {1.5, 3} and {1.5, 2}, max 4.5.
//! let milp = Milp::new(Backend::MicroLp).with_start(vec![0, 1, 0, 2]);
//! let packing = milp.solve(&problem)?;
//! assert_eq!(packing.stop, StopReason::Optimal);
//! assert_eq!(packing.value, 4.0);
//! # Ok::<(), eplb_solvers::SolverError>(())
//! ```

mod assignment;
mod backend;
mod budgeted;
mod local;
mod microlp;
mod patterns;
mod regions;
mod steps;
#[cfg(test)]
mod tests;
mod verify;

#[cfg(feature = "highs")]
mod highs;

use std::time::{Duration, Instant};

use crate::error::SolverError;
use crate::tolerance::{DUAL_BOUND_SHAVE, STRICT};

use crate::packing::{
    CertifiedPacking, ExactEngine, PackingProblem, StopReason, WithDeadline, WithGap, WithStart,
    WithThreads,
};
use assignment::*;
pub use backend::Backend;
use backend::*;
pub use budgeted::{BudgetedMilp, BudgetedPacking};
pub use steps::{ScenarioMilp, ScenarioPacking};

/// The MILP engine: a backend and the limits of one solve (see the [module docs](self)).
///
/// Without a start ([`WithStart`]) it starts from [`PackingProblem::trivial_packing`]. The
/// deadline covers the whole call: local search, model building, every solver run.
///
/// # Complexity
/// Exponential in the worst case (branch and bound over an NP-hard model); bounded by the
/// deadline. Model sizes: `O(n * m * k)` columns for the assignment model (`k` the copy
/// counts left per item), one column per bin pattern for the pattern model.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Milp {
    settings: Settings,
    start: Option<Vec<usize>>,
}

impl Milp {
    /// The engine on `backend`, without limits or start.
    pub fn new(backend: Backend) -> Self {
        Self {
            settings: Settings::new(backend),
            start: None,
        }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.settings.backend
    }
}

impl WithDeadline for Milp {
    fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.settings.deadline = deadline;
        self
    }
}

impl WithGap for Milp {
    /// The solver may stop at this relative gap (`0`: prove optimality).
    fn with_gap(mut self, gap: f64) -> Self {
        self.settings.gap = Some(gap);
        self
    }
}

impl WithStart for Milp {
    fn with_start(self, slots: Vec<usize>) -> Self {
        Self {
            start: Some(slots),
            ..self
        }
    }
}

impl WithThreads for Milp {
    /// Threads for HiGHS (the pure-Rust backend runs on one).
    fn with_threads(mut self, threads: Option<usize>) -> Self {
        self.settings.threads = threads;
        self
    }
}

/// Copy-variable columns above which the assignment model only searches the neighbourhood of
/// the seed's copy counts.
const MAX_FULL_COLUMNS: usize = 60_000;

/// How far copy counts may move from the seed's in the neighbourhood search.
const NEIGHBOURHOOD: usize = 2;

/// The settings of one MILP solve, shared by the engines of this module ([`Milp`],
/// [`BudgetedMilp`], [`ScenarioMilp`]) and every search they run: the backend, the relative gap
/// the solver may stop at, the backend's threads and the deadline.
#[derive(Debug, Clone, Default, PartialEq)]
struct Settings {
    backend: Backend,
    gap: Option<f64>,
    /// Threads for the backend (only HiGHS takes them).
    #[cfg_attr(not(feature = "highs"), allow(dead_code))]
    threads: Option<usize>,
    deadline: Option<Instant>,
}

impl Settings {
    /// `backend` without gap, threads or deadline.
    fn new(backend: Backend) -> Self {
        Self {
            backend,
            ..Self::default()
        }
    }

    /// The same settings without a gap (the pattern search's feasibility probes: a model with
    /// no objective, where only a solution or a proof of infeasibility answers).
    fn without_gap(&self) -> Self {
        Self {
            gap: None,
            ..self.clone()
        }
    }

    /// Refuses a gap that is not a finite number `>= 0`.
    fn check_gap(&self) -> Result<(), SolverError> {
        match self.gap {
            Some(gap) if !gap.is_finite() || gap < 0.0 => Err(SolverError::InvalidModel(format!(
                "MIP gap {gap} must be a finite number >= 0"
            ))),
            _ => Ok(()),
        }
    }

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

impl ExactEngine for Milp {
    /// Solves `problem` exactly (or until a limit), starting from the start packing.
    ///
    /// The deadline bounds the whole call (local search, model building and solving); the
    /// answer is never worse than the start.
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
    /// [`SolverError::InvalidModel`] for an invalid start or gap,
    /// [`SolverError::Backend`] when the solver fails.
    fn solve(&self, problem: &PackingProblem) -> Result<CertifiedPacking, SolverError> {
        let ctx = &self.settings;
        let deadline = ctx.deadline;
        let start = match &self.start {
            Some(s) => s.clone(),
            None => problem.trivial_packing(),
        };
        problem
            .check_slots(&start)
            .map_err(|m| SolverError::InvalidModel(format!("invalid incumbent: {m}")))?;
        let incumbent = problem.copies_of(&start);
        ctx.check_gap()?;
        let mut improved = incumbent;
        local::improve(problem, &mut improved, deadline);
        let incumbent_load = problem.max_load(&improved);
        let scale = problem.weights.iter().sum::<f64>() / problem.bins as f64;
        if scale == 0.0 || incumbent_load <= problem.lower_bound {
            // All weights zero, or the incumbent already meets the (proven) known bound.
            let slots = problem.slots_of(&improved);
            let value = problem.peak_of_slots(&slots);
            let lower_bound = problem.lower_bound.min(value);
            return Ok(CertifiedPacking {
                stop: StopReason::judge(true, value, lower_bound, 0.0),
                slots,
                value,
                lower_bound,
            });
        }
        let found = match problem.regions {
            Some(r) if r.regions > 1 => {
                match regions::solve(problem, &improved, incumbent_load, ctx)? {
                    Some(found) => found,
                    None => assignment(
                        problem,
                        Some(&improved),
                        problem.lower_bound,
                        incumbent_load,
                        ctx,
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
                ctx,
            )?,
        };
        let copies = match found.best {
            Some((c, _))
                if problem.check_solution(&c).is_ok() && problem.max_load(&c) <= incumbent_load =>
            {
                c
            }
            _ => improved,
        };
        // The backend's bound (`found.bound`) steered the search; the certificate is exact.
        Ok(verify::certify(
            problem,
            &copies,
            ctx.gap.unwrap_or(0.0),
            deadline,
        ))
    }
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
    ctx: &Settings,
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
            let mut problem = PackingProblem::unchecked(weights.to_vec(), bins, slots);
            problem.lower_bound = lower;
            assignment(&problem, seed, lower, upper, ctx)
        }
        patterns::Enumerated::NoneBetter => Ok(Found {
            best: None,
            bound: upper * (1.0 - STRICT) * (1.0 - DUAL_BOUND_SHAVE),
        }),
        patterns::Enumerated::Some(set) => set.search(lower, upper, ctx),
    }
}
