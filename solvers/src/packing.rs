//! The problem both exact engines solve — *replicated min-max packing*, optionally with
//! regions — its answer with a certificate, and the traits the engines implement.
//!
//! `n` items with weights `w_i >= 0` are cut into copies and placed on `m` bins of exactly `s`
//! slots each (`m * s >= n`): item `i` gets `c_i >= 1` copies of weight `w_i / c_i`, and the
//! aim is to minimise the largest bin load. Optionally the bins form `r` equal [`Regions`] of
//! consecutive bins and the items form groups of `b` consecutive items: every region then takes
//! `groups / r` whole groups and every copy of an item stays in its group's region.
//!
//! An engine ([`ExactEngine`]) takes a [`PackingProblem`] and returns a [`CertifiedPacking`]:
//! the item in every slot, its value, a valid lower bound on the optimum and why the search
//! stopped ([`StopReason`]). Its limits and its start are set by the capability traits
//! [`WithDeadline`], [`WithGap`], [`WithStart`] and [`WithThreads`] (good_lp's
//! `WithTimeLimit`, `WithMipGap` and `WithInitialSolution` are the model).
//!
//! ```
//! use eplb_solvers::exact::ExactSearch;
//! use eplb_solvers::packing::{ExactEngine, PackingProblem, StopReason, WithGap};
//!
//! // Weights (3, 3, 2) on 2 bins of 2 slots: copying the *small* item is optimal (4.0).
//! let problem = PackingProblem::new(vec![3.0, 3.0, 2.0], 2, 2)?;
//! let packing = ExactSearch::default().with_gap(0.0).solve(&problem)?;
//! assert_eq!(packing.stop, StopReason::Optimal);
//! assert_eq!((packing.value, packing.lower_bound), (4.0, 4.0));
//! assert_eq!(packing.counts(3), vec![1, 1, 2]);
//! # Ok::<(), eplb_solvers::SolverError>(())
//! ```

use std::time::Instant;

use crate::error::{check_weights, SolverError};
use crate::loads::{bin_load, count_loads, peak};

/// Bins split into regions and items into groups (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regions {
    /// Number of regions `r` (consecutive, equal runs of bins).
    pub regions: usize,
    /// Items per group `b` (groups are consecutive runs of items).
    pub group_size: usize,
}

/// One instance of replicated min-max packing (see the [module docs](self)), checked when it
/// is built.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingProblem {
    pub(crate) weights: Vec<f64>,
    pub(crate) bins: usize,
    pub(crate) slots_per_bin: usize,
    pub(crate) regions: Option<Regions>,
    pub(crate) lower_bound: f64,
}

impl PackingProblem {
    /// An instance without regions and without a known lower bound: `weights` on `bins` bins
    /// of `slots_per_bin` slots each.
    ///
    /// # Errors
    /// [`SolverError::NonFiniteWeight`] / [`SolverError::NegativeWeight`] for a bad weight,
    /// [`SolverError::InvalidModel`] without items, bins or slots,
    /// [`SolverError::TooFewCopies`] when `bins * slots_per_bin` is below the item count.
    pub fn new(weights: Vec<f64>, bins: usize, slots_per_bin: usize) -> Result<Self, SolverError> {
        let problem = Self::unchecked(weights, bins, slots_per_bin);
        problem.validate()?;
        Ok(problem)
    }

    /// An instance the caller knows to be valid (the engines' sub-problems).
    pub(crate) fn unchecked(weights: Vec<f64>, bins: usize, slots_per_bin: usize) -> Self {
        Self {
            weights,
            bins,
            slots_per_bin,
            regions: None,
            lower_bound: 0.0,
        }
    }

    /// Adds region constraints.
    ///
    /// # Errors
    /// [`SolverError::InvalidModel`] when the regions do not divide the bins, the group size the
    /// items, or the regions the groups.
    pub fn with_regions(self, regions: Regions) -> Result<Self, SolverError> {
        let problem = Self {
            regions: Some(regions),
            ..self
        };
        problem.validate()?;
        Ok(problem)
    }

    /// Sets a proven lower bound on the optimum (engines may use it to stop early, and it is
    /// part of every certificate).
    ///
    /// # Errors
    /// [`SolverError::InvalidModel`] when it is negative or not finite.
    pub fn with_lower_bound(self, lower_bound: f64) -> Result<Self, SolverError> {
        let problem = Self {
            lower_bound,
            ..self
        };
        problem.validate()?;
        Ok(problem)
    }

    /// The items' weights.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// The number of bins `m`.
    pub fn bins(&self) -> usize {
        self.bins
    }

    /// The slots of every bin `s`.
    pub fn slots_per_bin(&self) -> usize {
        self.slots_per_bin
    }

    /// The region constraints, if any.
    pub fn regions(&self) -> Option<Regions> {
        self.regions
    }

    /// The known lower bound on the optimum (`0` when none was given).
    pub fn lower_bound(&self) -> f64 {
        self.lower_bound
    }

    /// The number of slots, `m * s`.
    pub fn slots(&self) -> usize {
        self.bins * self.slots_per_bin
    }

    /// The largest bin load of a packing given as the item in every slot, summed slot by slot
    /// ([`bin_load`]).
    pub fn peak_of_slots(&self, slots: &[usize]) -> f64 {
        let counts = counts_of(slots, self.weights.len());
        let loads: Vec<f64> = slots
            .chunks(self.slots_per_bin)
            .map(|bin| bin_load(bin.iter().map(|&i| self.weights[i] / counts[i] as f64)))
            .collect();
        peak(&loads)
    }

    /// A valid packing that ignores the weights: in every region (the whole set of bins when
    /// there are none) its groups' items once each in order, the remaining slots filled with
    /// the region's first item.
    pub fn trivial_packing(&self) -> Vec<usize> {
        let (regions, per_region_items) = match self.regions {
            Some(r) => (r.regions, self.weights.len() / r.regions),
            None => (1, self.weights.len()),
        };
        let region_slots = self.slots() / regions;
        let mut slots = Vec::with_capacity(self.slots());
        for r in 0..regions {
            let first = r * per_region_items;
            slots.extend(first..first + per_region_items);
            slots.extend(std::iter::repeat_n(first, region_slots - per_region_items));
        }
        slots
    }

    /// Checks a packing given as the item in every slot: the right number of slots, every item
    /// at least once, regions respected.
    pub(crate) fn check_slots(&self, slots: &[usize]) -> Result<(), String> {
        if slots.len() != self.slots() {
            return Err(format!(
                "expected {} slots, got {}",
                self.slots(),
                slots.len()
            ));
        }
        if let Some(&i) = slots.iter().find(|&&i| i >= self.weights.len()) {
            return Err(format!("item {i} does not exist"));
        }
        self.check_solution(&self.copies_of(slots))
    }

    /// A packing as the item in every slot turned into copies per item and bin.
    pub(crate) fn copies_of(&self, slots: &[usize]) -> Vec<Vec<usize>> {
        let mut copies = vec![vec![0usize; self.bins]; self.weights.len()];
        for (slot, &i) in slots.iter().enumerate() {
            copies[i][slot / self.slots_per_bin] += 1;
        }
        copies
    }

    /// Copies per item and bin turned into the item in every slot (every bin lists its items in
    /// increasing order).
    pub(crate) fn slots_of(&self, copies: &[Vec<usize>]) -> Vec<usize> {
        let mut slots = Vec::with_capacity(self.slots());
        for bin in 0..self.bins {
            for (i, c) in copies.iter().enumerate() {
                slots.extend(std::iter::repeat_n(i, c[bin]));
            }
        }
        slots
    }

    pub(crate) fn bins_per_region(&self) -> usize {
        self.regions.map_or(self.bins, |r| self.bins / r.regions)
    }

    pub(crate) fn region_of_bin(&self, bin: usize) -> usize {
        bin / self.bins_per_region()
    }

    pub(crate) fn group_of_item(&self, item: usize) -> usize {
        self.regions.map_or(0, |r| item / r.group_size)
    }

    /// The largest bin load of `copies` (`copies[i][j]`: copies of item `i` on bin `j`).
    pub(crate) fn max_load(&self, copies: &[Vec<usize>]) -> f64 {
        peak(&count_loads(&self.weights, copies, self.bins))
    }

    /// Checks the instance's shape.
    pub(crate) fn validate(&self) -> Result<(), SolverError> {
        check_weights(&self.weights)?;
        let n = self.weights.len();
        if n == 0 || self.bins == 0 || self.slots_per_bin == 0 {
            return Err(SolverError::InvalidModel(
                "need at least one item, one bin and one slot per bin".into(),
            ));
        }
        if self.bins * self.slots_per_bin < n {
            return Err(SolverError::TooFewCopies {
                items: n,
                copies: self.bins * self.slots_per_bin,
            });
        }
        if !self.lower_bound.is_finite() || self.lower_bound < 0.0 {
            return Err(SolverError::InvalidModel(format!(
                "lower bound {} must be a finite number >= 0",
                self.lower_bound
            )));
        }
        if let Some(r) = self.regions {
            let ok = r.regions >= 1
                && r.group_size >= 1
                && self.bins.is_multiple_of(r.regions)
                && n.is_multiple_of(r.group_size)
                && (n / r.group_size).is_multiple_of(r.regions);
            if !ok {
                return Err(SolverError::InvalidModel(format!(
                    "{} regions and groups of {} items do not fit {} bins and {} items: regions must divide the bins, the group size the items, and the regions the groups",
                    r.regions, r.group_size, self.bins, n
                )));
            }
        }
        Ok(())
    }

    /// Checks that `copies` is a valid solution: every item copied at least once, every bin
    /// full, regions respected.
    pub(crate) fn check_solution(&self, copies: &[Vec<usize>]) -> Result<(), String> {
        let n = self.weights.len();
        if copies.len() != n || copies.iter().any(|c| c.len() != self.bins) {
            return Err(format!(
                "expected {n} items x {} bins of copy counts",
                self.bins
            ));
        }
        for (i, c) in copies.iter().enumerate() {
            if c.iter().sum::<usize>() == 0 {
                return Err(format!("item {i} has no copy"));
            }
        }
        for j in 0..self.bins {
            let held: usize = copies.iter().map(|c| c[j]).sum();
            if held != self.slots_per_bin {
                return Err(format!(
                    "bin {j} holds {held} copies, expected {}",
                    self.slots_per_bin
                ));
            }
        }
        if let Some(r) = self.regions {
            let groups = n / r.group_size;
            let mut region_of_group = vec![None; groups];
            let mut per_region = vec![0usize; r.regions];
            for (i, c) in copies.iter().enumerate() {
                let g = i / r.group_size;
                for (j, &k) in c.iter().enumerate() {
                    if k == 0 {
                        continue;
                    }
                    let region = self.region_of_bin(j);
                    match region_of_group[g] {
                        None => {
                            region_of_group[g] = Some(region);
                            per_region[region] += 1;
                        }
                        Some(x) if x != region => {
                            return Err(format!("group {g} spans regions {x} and {region}"))
                        }
                        Some(_) => {}
                    }
                }
            }
            if per_region.iter().any(|&k| k != groups / r.regions) {
                return Err(format!(
                    "regions hold {per_region:?} groups, expected {} each",
                    groups / r.regions
                ));
            }
        }
        Ok(())
    }
}

/// `counts[i]`: how many slots hold item `i`.
fn counts_of(slots: &[usize], items: usize) -> Vec<usize> {
    let mut counts = vec![0usize; items];
    for &i in slots {
        counts[i] += 1;
    }
    counts
}

/// Why a search stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StopReason {
    /// The packing is proven optimal: its value meets the lower bound.
    Optimal,
    /// The packing is within the requested relative gap of the lower bound, not proven
    /// optimal.
    GapReached,
    /// A limit (the deadline, or a precision the engine cannot reach) stopped the search: the
    /// packing is the best found and the lower bound the best proved.
    LimitReached,
}

impl StopReason {
    /// The reason for a search that proved (`proven`) or did not prove its packing of `value`
    /// optimal, with `lower_bound` proved and the relative `gap` requested (`0`: none). A
    /// packing that meets its proved bound is optimal whatever the search says (a limit never
    /// comes with a zero gap).
    pub(crate) fn judge(proven: bool, value: f64, lower_bound: f64, gap: f64) -> Self {
        if proven || value <= lower_bound {
            StopReason::Optimal
        } else if gap > 0.0 && value <= lower_bound * (1.0 + gap) {
            StopReason::GapReached
        } else {
            StopReason::LimitReached
        }
    }
}

/// An engine's answer: a packing, its value and a certificate (a lower bound and why the
/// search stopped).
#[derive(Debug, Clone, PartialEq)]
pub struct CertifiedPacking {
    /// `slots[b * s + k]`: the item whose copy sits in slot `k` of bin `b`; every item appears
    /// at least once and regions are respected.
    pub slots: Vec<usize>,
    /// The largest bin load of `slots` ([`PackingProblem::peak_of_slots`]).
    pub value: f64,
    /// A lower bound on the optimum, never above `value` and never above the true optimum.
    pub lower_bound: f64,
    /// Why the search stopped.
    pub stop: StopReason,
}

impl CertifiedPacking {
    /// `counts[i]`: the copies of item `i` (of `items`).
    pub fn counts(&self, items: usize) -> Vec<usize> {
        counts_of(&self.slots, items)
    }
}

/// An exact engine for replicated min-max packing: it returns the best packing it found and
/// a certificate for it. Limits and a start are set through the capability traits.
pub trait ExactEngine {
    /// Solves `problem` within the engine's limits.
    ///
    /// # Errors
    /// What the engine cannot handle (e.g. weights too large for exact arithmetic, more groups
    /// than it supports) or a solver failure.
    fn solve(&self, problem: &PackingProblem) -> Result<CertifiedPacking, SolverError>;
}

/// An engine that stops at a deadline with its best packing and bound.
pub trait WithDeadline {
    /// The engine stopping at `deadline` (`None`: no deadline).
    #[must_use]
    fn with_deadline(self, deadline: Option<Instant>) -> Self;
}

/// An engine that may stop once its packing is within a relative gap of its bound.
pub trait WithGap {
    /// The engine stopping once `value <= lower_bound * (1 + gap)` (`0`: prove optimality).
    #[must_use]
    fn with_gap(self, gap: f64) -> Self;
}

/// An engine that starts from a given packing (the item in every slot), e.g. a heuristic's.
/// An invalid start is ignored.
pub trait WithStart {
    /// The engine starting from `slots`.
    #[must_use]
    fn with_start(self, slots: Vec<usize>) -> Self;
}

/// An engine that may use several threads.
pub trait WithThreads {
    /// The engine using at most `threads` threads (`None`: its default).
    #[must_use]
    fn with_threads(self, threads: Option<usize>) -> Self;
}

#[cfg(test)]
mod tests {
    use super::StopReason;

    /// Issue 15, defect 8: a search stopped by its deadline whose packing meets its proved
    /// bound was reported as `LimitReached` with a zero gap; the bound proves it optimal.
    #[test]
    fn a_packing_meeting_its_bound_is_optimal_whatever_stopped_the_search() {
        assert_eq!(StopReason::judge(false, 4.0, 4.0, 0.0), StopReason::Optimal);
        assert_eq!(StopReason::judge(false, 4.0, 4.0, 0.1), StopReason::Optimal);
        assert_eq!(
            StopReason::judge(false, 4.0, 3.9, 0.1),
            StopReason::GapReached
        );
        assert_eq!(
            StopReason::judge(false, 4.0, 3.9, 0.0),
            StopReason::LimitReached
        );
        assert_eq!(StopReason::judge(true, 4.0, 3.9, 0.0), StopReason::Optimal);
    }
}
