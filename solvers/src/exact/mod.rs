//! Exact search for min-max packing with copies.
//!
//! **The problem.** `n` items with integer weights `w_i`, `m` bins of exactly `s` slots each,
//! `m * s >= n`. Choose copy counts `c_i >= 1` with `sum(c_i) = m * s`; every item is cut into
//! `c_i` equal copies of size `w_i / c_i`, and the copies are packed into the bins, `s` per bin.
//! Minimise the largest bin sum ([`crate::packing`]'s problem). With regions: items form equal
//! groups of consecutive indices, the bins form equal regions, every region takes the same number
//! of whole groups and every copy of an item stays in its group's region.
//!
//! **Exactness.** For fixed counts the copy sizes are rationals; they are scaled by
//! `D = lcm(c_i / gcd(w_i, c_i))` so that every copy is an integer number of units `1/D` and
//! all sums and comparisons are exact integer arithmetic. Values are returned as [`Fraction`]s.
//! The weights are first divided by their greatest common divisor (token counts often share a
//! power of two), so the lattice bounds below work on the coarsest lattice.
//!
//! **The search.**
//! 1. Lower bounds valid for every count vector: the average `sum(w) / m` and the smallest
//!    achievable largest copy (`T_rep`, exact greedy apportionment).
//! 2. Incumbents: the caller's start packing if any ([`WithStart`](crate::packing::WithStart)), then a few
//!    promising count vectors (the apportionment; halves on the largest items; when the
//!    average has denominator `d`, items cut into `d` pieces by residue class so every bin can
//!    reach the average exactly; just enough copies for every share to fit under fractions of
//!    the bound), each packed largest-first into the lightest open bin, balanced by swap
//!    descent on the squared deviations (1-for-1 and 2-for-2 swaps), improved by a
//!    large-neighbourhood search (the heaviest bin and up to three others re-packed exactly by
//!    node-limited bin completion), a short walk of exact two-bin re-partitions, swaps out of
//!    the heaviest bin, then by a node-limited bin completion.
//! 3. Complete enumeration of the count vectors that could still beat the incumbent, in
//!    passes whose per-vector node budget grows eightfold (the last pass has none), so that one
//!    hard vector does not hold up the others; a pass that no budget cut short is a proof:
//!    `c_i` is forced above `w_i / incumbent`, items of equal weight get non-increasing counts
//!    (symmetry), and each vector is skipped when its own bounds (lattice bound
//!    `ceil(sum·D/m)/D`, largest copy plus the `s-1` smallest, and the generalised pigeonhole
//!    bound: among the `k·m+1` largest copies some bin holds `k+1`) reach the incumbent;
//!    otherwise its packing is minimised by bin completion below the incumbent.
//! 4. Bin completion: each bin takes the largest remaining copy and is completed by a multiset of
//!    the remaining copies, largest sums first; a completion is pruned when the rest could not
//!    fit in the remaining bins, and is dominated (skipped) when one of its copies could be
//!    swapped for the next larger unused one and the bin would still fit. The same order
//!    statistics bounds are rechecked at every bin. Two slots per bin are solved in closed form
//!    (largest with smallest).
//!
//! The clock is checked inside the search, so a deadline is honoured within a few microseconds
//! of work; the answer is then the best packing found and a valid lower bound.
//!
//! ```
//! use eplb_solvers::exact::ExactSearch;
//! use eplb_solvers::packing::{ExactEngine, PackingProblem, StopReason};
//! // Weights (3, 3, 2), 2 bins of 2 slots: copy the *small* item, {3, 1} and {3, 1}.
//! let problem = PackingProblem::new(vec![3.0, 3.0, 2.0], 2, 2)?;
//! let packing = ExactSearch::default().solve(&problem)?;
//! assert_eq!(packing.stop, StopReason::Optimal);
//! assert_eq!(packing.value, 4.0);
//! assert_eq!(packing.counts(3), vec![1, 1, 2]);
//! # Ok::<(), eplb_solvers::SolverError>(())
//! ```

use std::cmp::Ordering;
use std::collections::HashMap;
use std::time::Instant;

use crate::apportion::{exact_counts, exact_counts_from};
use crate::error::SolverError;

/// The largest total weight the engine accepts (`2^50`), so that scaled sums fit in `u64` and
/// cross-multiplied comparisons fit in `u128`.
pub const MAX_TOTAL_WEIGHT: u64 = 1 << 50;

/// Largest scale `D` tried for one count vector; vectors needing more are skipped (and the
/// search then no longer claims a proof).
const MAX_SCALE: u64 = 1 << 24;

/// Nodes of the bin-completion search spent on the incumbent's counts before enumeration.
const WARM_NODES: u64 = 20_000;

/// Node budget of each count vector's bin completion in the first pass of the enumeration;
/// every further pass multiplies it by [`BUDGET_GROWTH`] (the last pass has no budget), so one
/// hard count vector cannot hold up the others (whose packings may lower the incumbent, or
/// whose bounds may be met quickly).
const FIRST_LEAF_NODES: u64 = 4_096;

/// Growth of the per-vector node budget from one enumeration pass to the next.
const BUDGET_GROWTH: u64 = 8;

/// The next pass's node budget: grows by [`BUDGET_GROWTH`] up to `max`, and is unlimited
/// (`u64::MAX`) after `2^36` nodes.
fn next_budget(budget: u64, max: u64) -> u64 {
    let next = if budget >= 1 << 36 {
        u64::MAX
    } else {
        budget * BUDGET_GROWTH
    };
    next.min(max)
}

mod bounds;
mod completion;
mod engine;
mod enumerate;
mod fraction;
mod grouped;
mod improve;
#[cfg(test)]
mod tests;

use bounds::*;
use completion::*;
pub use engine::ExactSearch;
use enumerate::*;
pub use fraction::Fraction;
use fraction::*;
use improve::*;

/// Limits of one search on integer weights.
#[derive(Debug, Clone, Default)]
struct Limits {
    /// Stop at this instant with the best answer so far; `None` means search to the end.
    deadline: Option<Instant>,
    /// Stop as soon as `value <= lower_bound * (1 + gap)`; `0.0` (the default) means prove
    /// optimality.
    gap: f64,
    /// A placement to start from, as the item in every slot (`slots[b * per_bin + k]`, the
    /// layout of [`Packing::slots`]), e.g. a heuristic's: improved by the search's local
    /// moves and used as the first incumbent. Ignored when it is not a valid packing (every
    /// item at least once, the right number of slots, and with regions whole groups in
    /// regions).
    start: Option<Vec<usize>>,
}

/// One packing: copy counts and the item in every slot.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Packing {
    /// `counts[i]`: copies of item `i` (`>= 1`, summing to `bins * per_bin`).
    counts: Vec<usize>,
    /// `slots[b * per_bin + k]`: the item whose copy sits in slot `k` of bin `b`.
    slots: Vec<usize>,
    /// The largest bin sum, exactly.
    value: Fraction,
}

/// What a search found and proved.
#[derive(Debug, Clone)]
struct Outcome {
    /// The best packing found (always present for [`search`] and [`search_grouped`]).
    best: Option<Packing>,
    /// A lower bound on the optimal value, never above it.
    lower_bound: Fraction,
    /// True when `best` is proven optimal.
    proven: bool,
}

/// Search context: deadline and counters.
struct Ctx {
    deadline: Option<Instant>,
    nodes: u64,
    timed_out: bool,
}

impl Ctx {
    /// Counts a node; true when the deadline has passed (checked every 256 nodes).
    fn tick(&mut self) -> bool {
        self.nodes += 1;
        if self.timed_out {
            return true;
        }
        if self.nodes.is_multiple_of(256) {
            if let Some(d) = self.deadline {
                if Instant::now() >= d {
                    self.timed_out = true;
                }
            }
        }
        self.timed_out
    }

    /// Reads the clock now (for coarse-grained loops); true when the deadline has passed.
    fn expired(&mut self) -> bool {
        if !self.timed_out {
            if let Some(d) = self.deadline {
                self.timed_out = Instant::now() >= d;
            }
        }
        self.timed_out
    }
}

fn check_shape(weights: &[u64], bins: usize, per_bin: usize) -> Result<(), SolverError> {
    if bins == 0 || per_bin == 0 {
        return Err(SolverError::PacksDoNotDivide {
            items: weights.len(),
            packs: bins,
        });
    }
    let copies = bins.saturating_mul(per_bin);
    if weights.is_empty() || copies < weights.len() {
        return Err(SolverError::TooFewCopies {
            items: weights.len(),
            copies,
        });
    }
    let total = weights.iter().try_fold(0u64, |a, &w| a.checked_add(w));
    match total {
        Some(t) if t <= MAX_TOTAL_WEIGHT => Ok(()),
        _ => Err(SolverError::WeightsTooLarge {
            limit: MAX_TOTAL_WEIGHT,
        }),
    }
}

/// Minimises the largest bin sum of integer weights over copy counts and packings (see the
/// [module docs](self)).
///
/// # Errors
/// [`SolverError::PacksDoNotDivide`] when `bins` or `per_bin` is zero,
/// [`SolverError::TooFewCopies`] when `bins * per_bin < weights.len()` or there are no items,
/// [`SolverError::WeightsTooLarge`] when the weights sum above [`MAX_TOTAL_WEIGHT`].
///
fn search(
    weights: &[u64],
    bins: usize,
    per_bin: usize,
    limits: &Limits,
) -> Result<Outcome, SolverError> {
    check_shape(weights, bins, per_bin)?;
    let mut ctx = Ctx {
        deadline: limits.deadline,
        nodes: 0,
        timed_out: false,
    };
    let (reduced, g) = reduce(weights);
    let start = limits.start.as_deref();
    let out = solve_flat(
        &reduced,
        bins,
        per_bin,
        None,
        start,
        limits.gap,
        None,
        true,
        u64::MAX,
        &mut ctx,
    )
    .outcome;
    Ok(out.scaled_by(g))
}

/// Divides the weights by their greatest common divisor `g` (`1` when all are zero): the
/// search then works on the coarsest lattice, so lattice bounds (`ceil(sum * D / m) / D`) see
/// that bin sums are multiples of `g / D`. Values found are multiplied back by `g`.
fn reduce(weights: &[u64]) -> (Vec<u64>, u64) {
    let g = weights.iter().fold(0, |g, &w| gcd(g, w)).max(1);
    (weights.iter().map(|&w| w / g).collect(), g)
}

impl Outcome {
    /// The outcome of the search on weights divided by `g`, for the original weights.
    fn scaled_by(mut self, g: u64) -> Outcome {
        if g != 1 {
            self.lower_bound = self.lower_bound.times(g);
            if let Some(b) = self.best.as_mut() {
                b.value = b.value.times(g);
            }
        }
        self
    }
}

/// Like [`search`], with `groups` equal groups of consecutive items and `regions` equal regions of
/// consecutive bins: every region takes `groups / regions` whole groups, and all copies of an
/// item stay in its group's region (each region has `bins * per_bin / regions` slots).
///
/// Group-to-region splits are tried in order of their lower bound; each region is solved as a
/// [`search`] problem cut off at the incumbent (memoised per group set), and stops as soon as
/// it is good enough for its split: at or below the largest value or bound of the split's
/// regions solved before it. The passes over the splits grow the regions' per-vector node
/// budgets, as in [`search`].
///
/// # Errors
/// As [`search`], plus [`SolverError::BadGroups`] when the groups or regions do not divide
/// evenly, or there are more than 64 groups.
fn search_grouped(
    weights: &[u64],
    groups: usize,
    regions: usize,
    bins: usize,
    per_bin: usize,
    limits: &Limits,
) -> Result<Outcome, SolverError> {
    check_shape(weights, bins, per_bin)?;
    if groups == 0
        || regions == 0
        || groups > 64
        || !weights.len().is_multiple_of(groups)
        || !groups.is_multiple_of(regions)
        || !bins.is_multiple_of(regions)
    {
        return Err(SolverError::BadGroups {
            items: weights.len(),
            groups,
            regions,
            bins,
        });
    }
    let mut ctx = Ctx {
        deadline: limits.deadline,
        nodes: 0,
        timed_out: false,
    };
    let (reduced, g) = reduce(weights);
    Ok(grouped::solve(
        &reduced,
        groups,
        regions,
        bins,
        per_bin,
        limits.start.as_deref(),
        limits.gap,
        &mut ctx,
    )
    .scaled_by(g))
}

/// What [`solve_flat`] found: the outcome and whether its search was complete (so that the
/// absence of a packing below the cutoff is proven).
struct Flat {
    outcome: Outcome,
    complete: bool,
}

/// The flat problem with an optional strict cutoff: only packings below `cutoff` are wanted.
/// The lower bound returned is valid for `min(optimum, cutoff)`. With `enumerate == false` only
/// the incumbent phase runs.
#[allow(clippy::too_many_arguments)]
fn solve_flat(
    weights: &[u64],
    bins: usize,
    per_bin: usize,
    cutoff: Option<Fraction>,
    start: Option<&[usize]>,
    gap: f64,
    enough: Option<Fraction>,
    enumerate: bool,
    max_budget: u64,
    ctx: &mut Ctx,
) -> Flat {
    let good =
        |v: Fraction, lb: Fraction| close_enough(v, lb, gap) || enough.is_some_and(|e| v <= e);
    let copies = bins * per_bin;
    let total: u64 = weights.iter().sum();
    let counts0 = exact_counts(weights, copies);
    let mut lb = Fraction::new(total as u128, bins as u128).max(max_share(weights, &counts0));
    if let Some(c) = cutoff {
        lb = lb.min(c);
    }
    let mut best: Option<Packing> = None;
    let mut inc = cutoff;
    if let Some(p) = start.and_then(|s| start_packing(weights, bins, per_bin, s, ctx)) {
        if inc.is_none_or(|v| p.value < v) {
            inc = Some(p.value);
            best = Some(p);
        }
    }

    // Incumbents from a few promising count vectors.
    for counts in candidates(weights, bins, copies, &counts0, lb) {
        if inc.is_some_and(|v| good(v, lb)) || ctx.timed_out {
            break;
        }
        if let Some(p) = try_counts(weights, &counts, bins, per_bin, lb, inc, ctx) {
            inc = Some(p.value);
            best = Some(p);
        }
    }
    if let Some(v) = inc {
        if good(v, lb) {
            // Proven when the bound is reached; otherwise stopped within the gap.
            return finish(best, lb, inc, v <= lb);
        }
    }
    if !enumerate {
        return finish(best, lb, inc, false);
    }

    // Complete enumeration of count vectors.
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    // Passes with growing per-vector node budgets; a pass that no budget cut short is complete.
    // The incumbent's counts are tried first at every item.
    let pref = best.as_ref().map_or(counts0.clone(), |b| b.counts.clone());
    let mut budget = FIRST_LEAF_NODES.min(max_budget);
    loop {
        let mut en = Enumerator {
            weights,
            order: order.clone(),
            bins,
            per_bin,
            counts: vec![0; weights.len()],
            pref: pref.clone(),
            inc,
            best: &mut best,
            lb,
            gap,
            leaf_budget: budget,
            enough,
            complete: true,
            budget_hit: false,
            done: false,
        };
        en.descend(ctx, 0, copies);
        inc = en.inc;
        let (complete, done, budget_hit) = (en.complete, en.done, en.budget_hit);
        if ctx.timed_out || done || !budget_hit || budget == max_budget {
            // Stopping within the gap is complete only when the bound itself was reached.
            let complete = complete && !ctx.timed_out && (!done || inc.is_some_and(|v| v <= lb));
            return finish(best, lb, inc, complete);
        }
        budget = next_budget(budget, max_budget);
    }
}

fn finish(best: Option<Packing>, lb: Fraction, inc: Option<Fraction>, complete: bool) -> Flat {
    let outcome = match (complete, inc) {
        (true, Some(v)) => {
            let proven = best.as_ref().is_some_and(|b| b.value == v);
            Outcome {
                best,
                lower_bound: v.max(lb),
                proven,
            }
        }
        _ => Outcome {
            best,
            lower_bound: lb,
            proven: false,
        },
    };
    Flat { outcome, complete }
}
