//! The problem: items, bins, optional regions, and the checks and loads of a solution.

use crate::error::{check_weights, SolverError};
use crate::loads::{count_loads, peak};

/// Bins split into regions and items into groups (see the [module docs](super)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regions {
    /// Number of regions `r` (consecutive, equal runs of bins).
    pub regions: usize,
    /// Items per group `b` (groups are consecutive runs of items).
    pub group_size: usize,
}

/// One instance of replicated min-max packing.
#[derive(Debug, Clone, PartialEq)]
pub struct PackingProblem {
    /// Weight of each item (finite, `>= 0`).
    pub weights: Vec<f64>,
    /// Number of bins `m`.
    pub bins: usize,
    /// Slots per bin `s`.
    pub slots_per_bin: usize,
    /// Region constraints, if any.
    pub regions: Option<Regions>,
    /// A proven lower bound on the optimal maximum bin load (`0` when none is known).
    pub lower_bound: f64,
}

impl PackingProblem {
    /// An instance without regions and without a known lower bound.
    pub fn new(weights: Vec<f64>, bins: usize, slots_per_bin: usize) -> Self {
        Self {
            weights,
            bins,
            slots_per_bin,
            regions: None,
            lower_bound: 0.0,
        }
    }

    /// Adds region constraints.
    pub fn with_regions(self, regions: Regions) -> Self {
        Self {
            regions: Some(regions),
            ..self
        }
    }

    /// Sets a proven lower bound on the optimum (it becomes the lower end of `T`).
    pub fn with_lower_bound(self, lower_bound: f64) -> Self {
        Self {
            lower_bound,
            ..self
        }
    }

    pub(super) fn bins_per_region(&self) -> usize {
        self.regions.map_or(self.bins, |r| self.bins / r.regions)
    }

    pub(super) fn region_of_bin(&self, bin: usize) -> usize {
        bin / self.bins_per_region()
    }

    pub(super) fn group_of_item(&self, item: usize) -> usize {
        self.regions.map_or(0, |r| item / r.group_size)
    }

    /// The largest bin load of `copies` (`copies[i][j]`: copies of item `i` on bin `j`).
    pub fn max_load(&self, copies: &[Vec<usize>]) -> f64 {
        peak(&count_loads(&self.weights, copies, self.bins))
    }

    /// Checks the instance's shape.
    pub(super) fn validate(&self) -> Result<(), SolverError> {
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
    pub(super) fn check_solution(&self, copies: &[Vec<usize>]) -> Result<(), String> {
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
