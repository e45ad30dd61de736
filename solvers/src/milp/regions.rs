//! Decomposition of problems with regions over the splits of groups among regions.
//!
//! Regions are interchangeable and each receives exactly `groups / r` whole groups, so a
//! solution is a *split* (a partition of the groups into `r` sets) plus, for every set, a
//! solution of the problem without regions on that set's items and one region's bins. The
//! optimum is therefore `min over splits of max over its sets of OPT(set)`, and with any valid
//! lower bound `lb(set) <= OPT(set)`, `min over splits of max lb(set)` is a valid lower bound
//! — over *all* splits, whichever were solved.
//!
//! The search keeps `lb` (a cheap bound first: the set's mean bin load and its replication
//! bound) and the best known solution per set. Repeatedly: find the split with the smallest
//! `max lb` (its value is the bound); if it meets the incumbent, the incumbent is optimal;
//! otherwise solve the sets of that split that are below the incumbent (each a problem
//! without regions, cut off at the incumbent), which raises their bounds or yields a better
//! incumbent.

use std::collections::HashMap;

use crate::apportion::{min_max_share, Apportioner};
use crate::error::SolverError;
use crate::rebalance::{CopyPacker, PackLimits};
use crate::split::partition::{combinations, min_max_partition};

use super::{flat, Found, PackingProblem, Settings, STRICT};

/// Group sets (of `groups / r` groups) at most for the decomposition.
const MAX_SETS: usize = 5_000;

/// Search nodes at most per bound search over the splits.
const MAX_SPLITS: usize = 1_000_000;

/// What is known about one group set.
struct SetInfo {
    items: Vec<usize>,
    lb: f64,
    best: Option<(Vec<Vec<usize>>, f64)>,
    /// Solved as far as it will be (proven, or out of its time).
    done: bool,
}

fn binomial(n: usize, k: usize) -> usize {
    let mut r: u128 = 1;
    for i in 0..k as u128 {
        r = r * (n as u128 - i) / (i + 1);
        if r > u128::from(u64::MAX) {
            return usize::MAX;
        }
    }
    usize::try_from(r).unwrap_or(usize::MAX)
}

/// Solves `problem` (with regions) by decomposition, starting from `incumbent` of load
/// `incumbent_load`. `None` when the splits are too many for it.
pub(super) fn solve(
    problem: &PackingProblem,
    incumbent: &[Vec<usize>],
    incumbent_load: f64,
    ctx: &Settings,
) -> Result<Option<Found>, SolverError> {
    let Some(r) = problem.regions else {
        return Ok(None);
    };
    let n = problem.weights.len();
    let groups = n / r.group_size;
    let per = groups / r.regions;
    if groups > 64 || binomial(groups, per) > MAX_SETS {
        return Ok(None);
    }
    let bins = problem.bins_per_region();
    let slots = problem.slots_per_bin;
    let mut search = Decomposition {
        problem,
        group_size: r.group_size,
        groups,
        per,
        bins,
        sets: HashMap::new(),
    };
    // The incumbent's split and region solutions.
    let mut split = Vec::with_capacity(r.regions);
    for region in 0..r.regions {
        let cols = region * bins..(region + 1) * bins;
        let mut mask = 0u64;
        for (i, c) in incumbent.iter().enumerate() {
            if c[cols.clone()].iter().any(|&k| k > 0) {
                mask |= 1 << (i / r.group_size);
            }
        }
        let info = search.info(mask)?;
        let sub: Vec<Vec<usize>> = info
            .items
            .iter()
            .map(|&i| incumbent[i][cols.clone()].to_vec())
            .collect();
        let load = PackingProblem::unchecked(
            info.items.iter().map(|&i| problem.weights[i]).collect(),
            bins,
            slots,
        )
        .max_load(&sub);
        if info.best.as_ref().is_none_or(|b| load < b.1) {
            info.best = Some((sub, load));
        }
        split.push(mask);
    }
    let mut best_split = split;
    let mut best_load = incumbent_load;
    let mut improved = false;
    let bound = loop {
        let Some((split, bound)) = search.best_split()? else {
            return Ok(None);
        };
        for &mask in &split {
            search.ensure_seed(mask)?;
        }
        // A better incumbent from this split?
        let candidate = split
            .iter()
            .map(|m| search.sets[m].best.as_ref().map(|b| b.1))
            .try_fold(0.0f64, |acc, l| l.map(|l| acc.max(l)));
        if let Some(load) = candidate {
            if load < best_load {
                best_load = load;
                best_split = split.clone();
                improved = true;
            }
        }
        if bound >= best_load * (1.0 - STRICT) {
            break bound;
        }
        if let Some(gap) = ctx.gap {
            if best_load <= bound * (1.0 + gap) {
                break bound;
            }
        }
        if ctx.expired() {
            break bound;
        }
        // Sets of this split whose best solution is above the split's bound (the others
        // cannot lower the split's value) and that could still be below the incumbent,
        // heaviest bound first.
        let mut pending: Vec<u64> = split
            .iter()
            .copied()
            .filter(|m| {
                let info = &search.sets[m];
                let above = info
                    .best
                    .as_ref()
                    .is_none_or(|b| b.1 > bound * (1.0 + STRICT));
                above && !info.done && info.lb < best_load * (1.0 - STRICT)
            })
            .collect();
        if pending.is_empty() {
            break bound;
        }
        pending.sort_by(|a, b| {
            search.sets[b]
                .lb
                .total_cmp(&search.sets[a].lb)
                .then(a.cmp(b))
        });
        // Each set gets the time left, not a share of it: a set stopped before the deadline
        // would make the answer depend on the machine's speed on a layer that finishes in
        // time (the only clock in the search is the layer's deadline).
        for mask in pending {
            search.solve_set(mask, best_load, ctx)?;
            if search.sets[&mask].lb >= best_load * (1.0 - STRICT) {
                break;
            }
        }
    };
    let best = improved.then(|| {
        let mut copies = vec![vec![0usize; problem.bins]; n];
        for (region, mask) in best_split.iter().enumerate() {
            let info = &search.sets[mask];
            let (sub, _) = info
                .best
                .as_ref()
                .expect("every set of the split is solved");
            for (row, &i) in sub.iter().zip(&info.items) {
                copies[i][region * bins..(region + 1) * bins].copy_from_slice(row);
            }
        }
        let load = problem.max_load(&copies);
        (copies, load)
    });
    Ok(Some(Found { best, bound }))
}

struct Decomposition<'a> {
    problem: &'a PackingProblem,
    group_size: usize,
    groups: usize,
    per: usize,
    bins: usize,
    sets: HashMap<u64, SetInfo>,
}

impl Decomposition<'_> {
    /// The information on a group set, created with its cheap bound on first use.
    fn info(&mut self, mask: u64) -> Result<&mut SetInfo, SolverError> {
        if !self.sets.contains_key(&mask) {
            let items: Vec<usize> = (0..self.problem.weights.len())
                .filter(|&i| mask & (1 << (i / self.group_size)) != 0)
                .collect();
            let w: Vec<f64> = items.iter().map(|&i| self.problem.weights[i]).collect();
            let slots = self.bins * self.problem.slots_per_bin;
            let mean = w.iter().sum::<f64>() / self.bins as f64;
            let lb = mean.max(min_max_share(&w, slots.max(w.len()))?);
            self.sets.insert(
                mask,
                SetInfo {
                    items,
                    lb,
                    best: None,
                    done: false,
                },
            );
        }
        Ok(self.sets.get_mut(&mask).expect("inserted above"))
    }

    /// The split with the smallest largest set bound, and that bound (`None` when the
    /// enumeration would be too long).
    fn best_split(&mut self) -> Result<Option<(Vec<u64>, f64)>, SolverError> {
        // Bounds of every set first (so the enumeration borrows nothing mutably).
        let all: Vec<u64> = combinations(self.groups, self.per);
        for &m in &all {
            self.info(m)?;
        }
        let sets = &self.sets;
        Ok(min_max_partition(
            self.groups,
            self.per,
            |m| sets[&m].lb,
            MAX_SPLITS,
        ))
    }

    /// Gives a group set a heuristic solution when it has none: optimal shares, balanced
    /// packing and local search.
    fn ensure_seed(&mut self, mask: u64) -> Result<(), SolverError> {
        let bins = self.bins;
        let slots = self.problem.slots_per_bin;
        let problem = self.problem;
        let info = self.info(mask)?;
        if info.best.is_some() {
            return Ok(());
        }
        let w: Vec<f64> = info.items.iter().map(|&i| problem.weights[i]).collect();
        let counts = Apportioner::default()
            .greedy_f64(&w, bins * slots)?
            .counts
            .clone();
        let phy = CopyPacker::default().pack(&w, &counts, bins, PackLimits::default())?;
        let mut copies = vec![vec![0usize; bins]; w.len()];
        for (pos, &i) in phy.iter().enumerate() {
            copies[i][pos / slots] += 1;
        }
        let load = PackingProblem::unchecked(w, bins, slots).max_load(&copies);
        info.best = Some((copies, load));
        Ok(())
    }

    /// Solves one group set as a problem without regions, looking for a solution below
    /// `cutoff` (and below its own best), before the deadline.
    fn solve_set(&mut self, mask: u64, cutoff: f64, ctx: &Settings) -> Result<(), SolverError> {
        let bins = self.bins;
        let slots = self.problem.slots_per_bin;
        let problem = self.problem;
        self.ensure_seed(mask)?;
        let info = self.info(mask)?;
        let w: Vec<f64> = info.items.iter().map(|&i| problem.weights[i]).collect();
        let own = info.best.as_ref().map_or(f64::INFINITY, |b| b.1);

        let upper = own.min(cutoff);
        if info.lb >= upper * (1.0 - STRICT) {
            info.done = true;
            return Ok(());
        }
        let seed = info.best.as_ref().map(|b| b.0.clone());
        let lb = info.lb;
        let found = flat(&w, bins, slots, lb, upper, seed.as_deref(), ctx)?;
        let info = self.sets.get_mut(&mask).expect("created above");
        info.lb = info.lb.max(found.bound);
        if let Some((c, load)) = found.best {
            if load < own {
                info.best = Some((c, load));
            }
        }
        // Either settled (bound met) or stopped at the deadline: not tried again.
        info.done = true;
        Ok(())
    }
}
