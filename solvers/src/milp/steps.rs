//! The per-scenario MILP: one peak variable per scenario ([`ScenarioMilp`]).

use std::time::Instant;

use good_lp::{variable, Expression, ProblemVariables, Variable};

use super::backend::{run, LpModel};
use super::{Backend, Settings};
use crate::error::SolverError;
use crate::scenarios::{check_regions, goal_value, ScenarioGoal};

/// The exact solver of the per-scenario problem.
///
/// The [`scenarios`](crate::scenarios) problem solved exactly in the neighbourhood the swap
/// search explores: copy counts fixed, and the copies an item has in each region fixed, the
/// assignment of copies to bins is chosen to minimise a [`ScenarioGoal`]:
///
/// - integers `x[i][j]` (copies of item `i` on bin `j`, for the bins of the regions where `i`
///   has copies; at most 1 when copies must be distinct), `sum over region r of x[i][j]` equal
///   to the item's copies in `r`, and `sum_i x[i][j] = s` for every bin;
/// - [`ScenarioGoal::SumOfPeaks`]: one peak `T[t] >= sum_i w[t][i] / c[i] x[i][j]` per scenario
///   and bin, minimise `sum_t T[t]`; [`ScenarioGoal::WorstPeak`]: one `T` above every bin of
///   every scenario.
///
/// Weights are scaled by the largest scenario's mean bin load. The start packing is the
/// solver's starting solution and the answer is never worse than it; the lower bound (each
/// scenario's mean bin load and largest copy, or the solver's dual bound) holds for every
/// packing with these counts and per-region copies.
///
/// ```
/// use eplb_solvers::milp::{Backend, ScenarioMilp};
/// use eplb_solvers::scenarios::ScenarioGoal;
/// let weights = vec![vec![4.0, 4.0, 0.0, 0.0], vec![0.0, 0.0, 4.0, 4.0]];
/// let milp = ScenarioMilp::new(Backend::MicroLp);
/// let found = milp.solve(&weights, &[0, 1, 2, 3], 2, 2, ScenarioGoal::SumOfPeaks, false)?;
/// assert_eq!((found.value, found.proven), (8.0, true));
/// assert_eq!(found.lower_bound, 8.0); // each step's mean bin load is 4
/// assert!(found.slots == vec![0, 3, 2, 1] || found.slots == vec![0, 2, 1, 3]);
/// # Ok::<(), eplb_solvers::SolverError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ScenarioMilp {
    settings: Settings,
}

/// What [`ScenarioMilp::solve`] found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ScenarioPacking {
    /// The item of every slot (the start's slots where an item stays on its bin).
    pub slots: Vec<usize>,
    /// The goal's value ([`goal_value`]), never above the start's.
    pub value: f64,
    /// A lower bound on the goal over every packing with the start's counts and per-region
    /// copies, proven combinatorially (each scenario's mean bin load and its largest copy).
    /// The MILP solver's own dual bound is not reported: its feasibility tolerances (about
    /// `1e-6`) can put it above the optimum, and no claim leaves the engine unverified.
    pub lower_bound: f64,
    /// True when `value` meets the proven `lower_bound` exactly.
    pub proven: bool,
}

impl ScenarioMilp {
    /// A solver on `backend`, without deadline, gap or thread setting.
    pub fn new(backend: Backend) -> Self {
        Self {
            settings: Settings::new(backend),
        }
    }

    /// Stops at `deadline` with the best packing found.
    #[must_use]
    pub fn with_deadline(mut self, deadline: Option<Instant>) -> Self {
        self.settings.deadline = deadline;
        self
    }

    /// Stops within the relative gap `gap`.
    #[must_use]
    pub fn with_gap(mut self, gap: Option<f64>) -> Self {
        self.settings.gap = gap;
        self
    }

    /// Threads the backend may use (HiGHS only).
    #[must_use]
    pub fn with_threads(mut self, threads: Option<usize>) -> Self {
        self.settings.threads = threads;
        self
    }

    /// Solves from `start` (item per slot, bins of `per_bin` slots, regions of `region_bins`
    /// bins), optionally with distinct copies (the start must then be distinct).
    ///
    /// # Errors
    /// [`SolverError::InvalidModel`] for shapes that do not fit (as
    /// [`SwapSearch::improve`](crate::scenarios::SwapSearch::improve)) or a gap that is not a
    /// finite number `>= 0`; [`SolverError::Backend`] when the solver fails.
    pub fn solve(
        &self,
        weights: &[Vec<f64>],
        start: &[usize],
        per_bin: usize,
        region_bins: usize,
        goal: ScenarioGoal,
        distinct: bool,
    ) -> Result<ScenarioPacking, SolverError> {
        let start_value = goal_value(weights, start, per_bin, goal)?;
        let bins = start.len() / per_bin;
        check_regions(bins, region_bins)?;
        self.settings.check_gap()?;
        let items = weights[0].len();
        let regions = bins / region_bins;
        // Copies per item and region, and on each bin.
        let mut in_region = vec![vec![0usize; regions]; items];
        let mut on_bin = vec![vec![0usize; bins]; items];
        for (slot, &i) in start.iter().enumerate() {
            in_region[i][slot / per_bin / region_bins] += 1;
            on_bin[i][slot / per_bin] += 1;
        }
        if distinct && on_bin.iter().flatten().any(|&c| c > 1) {
            return Err(SolverError::InvalidModel(
                "distinct copies asked, but the start has two copies of an item on one bin".into(),
            ));
        }
        let counts: Vec<usize> = in_region.iter().map(|r| r.iter().sum()).collect();
        let shares: Vec<Vec<f64>> = weights
            .iter()
            .map(|w| w.iter().zip(&counts).map(|(x, &c)| x / c as f64).collect())
            .collect();
        // Per scenario: mean bin load and largest copy bound its peak from below.
        let floors: Vec<f64> = weights
            .iter()
            .zip(&shares)
            .map(|(w, sh)| {
                let mean = w.iter().sum::<f64>() / bins as f64;
                sh.iter().copied().fold(mean, f64::max)
            })
            .collect();
        let floor = match goal {
            ScenarioGoal::SumOfPeaks => floors.iter().sum(),
            ScenarioGoal::WorstPeak => floors.iter().copied().fold(0.0, f64::max),
        };
        let scale = weights
            .iter()
            .map(|w| w.iter().sum::<f64>() / bins as f64)
            .fold(0.0, f64::max);
        let done = |slots: Vec<usize>, value: f64, bound: f64| ScenarioPacking {
            slots,
            value,
            lower_bound: bound.min(value),
            proven: value <= bound,
        };
        if scale == 0.0 || start_value <= floor {
            return Ok(done(start.to_vec(), start_value, floor));
        }

        // The model.
        let mut vars = ProblemVariables::new();
        let mut start_values = Vec::new();
        let peaks: Vec<Variable> = match goal {
            ScenarioGoal::SumOfPeaks => floors
                .iter()
                .map(|&f| vars.add(variable().min(f / scale)))
                .collect(),
            ScenarioGoal::WorstPeak => vec![vars.add(variable().min(floor / scale))],
        };
        let start_peaks = crate::scenarios::scenario_peaks(weights, start, per_bin)?;
        match goal {
            ScenarioGoal::SumOfPeaks => {
                start_values.extend(start_peaks.iter().map(|p| p / scale));
            }
            ScenarioGoal::WorstPeak => start_values.push(start_value / scale),
        }
        let mut constraints = Vec::new();
        let mut x: Vec<Vec<Option<(Variable, usize)>>> = vec![vec![None; bins]; items];
        let mut bin_slots: Vec<Expression> = (0..bins).map(|_| Expression::default()).collect();
        let mut bin_loads: Vec<Vec<Expression>> = (0..weights.len())
            .map(|_| (0..bins).map(|_| Expression::default()).collect())
            .collect();
        for i in 0..items {
            for (r, &copies) in in_region[i].iter().enumerate() {
                if copies == 0 {
                    continue;
                }
                let cap = if distinct { 1 } else { copies.min(per_bin) };
                let mut placed = Expression::default();
                for j in r * region_bins..(r + 1) * region_bins {
                    let column = vars.len();
                    let v = vars.add(variable().integer().min(0).max(cap as f64));
                    start_values.push(on_bin[i][j] as f64);
                    x[i][j] = Some((v, column));
                    placed.add_mul(1.0, v);
                    bin_slots[j].add_mul(1.0, v);
                    for (t, sh) in shares.iter().enumerate() {
                        bin_loads[t][j].add_mul(sh[i] / scale, v);
                    }
                }
                constraints.push(placed.eq(copies as f64));
            }
        }
        for slots in bin_slots {
            constraints.push(slots.eq(per_bin as f64));
        }
        for (t, loads) in bin_loads.into_iter().enumerate() {
            let peak = peaks[if goal == ScenarioGoal::SumOfPeaks {
                t
            } else {
                0
            }];
            for load in loads {
                constraints.push(load.leq(peak));
            }
        }
        let objective: Expression = peaks.iter().map(|&p| Expression::from(p)).sum();
        let columns = {
            let mut c: Vec<Variable> = peaks.clone();
            c.extend(x.iter().flatten().flatten().map(|&(v, _)| v));
            c
        };
        let model = LpModel {
            vars,
            objective,
            constraints,
            columns,
            start: Some(start_values),
        };
        let outcome = run(model, &self.settings)?;
        // The solver's dual bound only ends its own search (see `ScenarioPacking::lower_bound`).
        let bound = floor;
        let Some(values) = outcome.values else {
            return Ok(done(start.to_vec(), start_value, bound));
        };
        // Columns: the peaks first, then the x in creation order (item, region, bin).
        let copies: Vec<Vec<usize>> = x
            .iter()
            .map(|row| {
                row.iter()
                    .map(|v| v.map_or(0, |(_, c)| values[c].round().max(0.0) as usize))
                    .collect()
            })
            .collect();
        let Some(slots) = slots_of(&copies, start, per_bin) else {
            return Ok(done(start.to_vec(), start_value, bound));
        };
        let value = goal_value(weights, &slots, per_bin, goal)?;
        if value < start_value {
            Ok(done(slots, value, bound))
        } else {
            Ok(done(start.to_vec(), start_value, bound))
        }
    }
}

/// The slots of a copy matrix `copies[i][j]`, each item kept in the slots it held in `start`
/// where it stays on its bin; `None` when a bin's copies do not fill it exactly or an item's
/// count changed (a solver answer outside its tolerance).
fn slots_of(copies: &[Vec<usize>], start: &[usize], per_bin: usize) -> Option<Vec<usize>> {
    let mut left: Vec<Vec<usize>> = copies.to_vec();
    let mut slots = vec![usize::MAX; start.len()];
    for (slot, &i) in start.iter().enumerate() {
        let j = slot / per_bin;
        if left[i][j] > 0 {
            left[i][j] -= 1;
            slots[slot] = i;
        }
    }
    for (slot, s) in slots.iter_mut().enumerate() {
        if *s != usize::MAX {
            continue;
        }
        let j = slot / per_bin;
        let i = (0..left.len()).find(|&i| left[i][j] > 0)?;
        left[i][j] -= 1;
        *s = i;
    }
    let all_placed = left.iter().flatten().all(|&c| c == 0);
    let mut before = vec![0usize; copies.len()];
    start.iter().for_each(|&i| before[i] += 1);
    let mut after = vec![0usize; copies.len()];
    slots.iter().for_each(|&i| after[i] += 1);
    (all_placed && before == after).then_some(slots)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The best goal over every rearrangement of `start`'s slots inside each region (what
    /// the model searches), by enumeration.
    fn brute(
        weights: &[Vec<f64>],
        start: &[usize],
        per_bin: usize,
        region_bins: usize,
        goal: ScenarioGoal,
        distinct: bool,
    ) -> f64 {
        fn permutations(items: &[usize]) -> Vec<Vec<usize>> {
            if items.len() <= 1 {
                return vec![items.to_vec()];
            }
            let mut out = Vec::new();
            for k in 0..items.len() {
                let mut rest = items.to_vec();
                let first = rest.remove(k);
                for mut p in permutations(&rest) {
                    p.insert(0, first);
                    out.push(p);
                }
            }
            out
        }
        let region_slots = region_bins * per_bin;
        let per_region: Vec<Vec<Vec<usize>>> =
            start.chunks(region_slots).map(permutations).collect();
        let mut best = f64::INFINITY;
        let mut choice = vec![0usize; per_region.len()];
        loop {
            let slots: Vec<usize> = choice
                .iter()
                .zip(&per_region)
                .flat_map(|(&c, ps)| ps[c].clone())
                .collect();
            let ok = !distinct || is_distinct(&slots, per_bin);
            if ok {
                best = best.min(goal_value(weights, &slots, per_bin, goal).unwrap());
            }
            let mut r = 0;
            while r < choice.len() {
                choice[r] += 1;
                if choice[r] < per_region[r].len() {
                    break;
                }
                choice[r] = 0;
                r += 1;
            }
            if r == choice.len() {
                return best;
            }
        }
    }

    fn is_distinct(slots: &[usize], per_bin: usize) -> bool {
        slots.chunks(per_bin).all(|b| {
            let mut b = b.to_vec();
            b.sort_unstable();
            b.windows(2).all(|w| w[0] != w[1])
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

        #[test]
        fn never_worse_and_certified_against_enumeration(
            steps in 1usize..=3,
            items in 2usize..=5,
            per_bin in 2usize..=3,
            two_regions in any::<bool>(),
            worst in any::<bool>(),
            distinct in any::<bool>(),
            seed in proptest::collection::vec(0u32..20, 24),
            extra in proptest::collection::vec(0usize..4, 6),
        ) {
            let regions = if two_regions { 2 } else { 1 };
            let region_bins = items.div_ceil(per_bin).max(1);
            let bins = region_bins * regions;
            let slots_n = bins * per_bin;
            prop_assume!(slots_n <= 6 && slots_n >= items);
            let weights: Vec<Vec<f64>> = (0..steps)
                .map(|t| (0..items).map(|i| f64::from(seed[(t * items + i) % seed.len()])).collect())
                .collect();
            let mut start: Vec<usize> = (0..items).collect();
            start.extend(extra.iter().take(slots_n - items).map(|&e| e % items));
            let goal = if worst { ScenarioGoal::WorstPeak } else { ScenarioGoal::SumOfPeaks };
            let distinct = distinct && is_distinct(&start, per_bin);
            let found = ScenarioMilp::new(Backend::default())
                .solve(&weights, &start, per_bin, region_bins, goal, distinct)
                .unwrap();
            let before = goal_value(&weights, &start, per_bin, goal).unwrap();
            let optimum = brute(&weights, &start, per_bin, region_bins, goal, distinct);
            if distinct {
                prop_assert!(is_distinct(&found.slots, per_bin));
            }
            prop_assert!(found.value <= before);
            prop_assert_eq!(found.value, goal_value(&weights, &found.slots, per_bin, goal).unwrap());
            prop_assert!(found.lower_bound <= optimum * (1.0 + 1e-9) + 1e-9, "bound {} above optimum {optimum}", found.lower_bound);
            prop_assert!(found.value >= optimum * (1.0 - 1e-9) - 1e-9);
            if found.proven {
                prop_assert!(found.value <= optimum * (1.0 + 1e-4) + 1e-9, "proven {} but optimum {optimum}", found.value);
            }
        }
    }

    #[test]
    fn bad_input_is_an_error() {
        let w = vec![vec![1.0, 2.0]];
        let milp = ScenarioMilp::new(Backend::default());
        assert!(milp
            .solve(&w, &[0, 1, 1], 2, 1, ScenarioGoal::SumOfPeaks, false)
            .is_err());
        assert!(milp
            .solve(&w, &[0, 1], 1, 3, ScenarioGoal::SumOfPeaks, false)
            .is_err());
        assert!(milp
            .solve(&w, &[0, 0, 1, 1], 2, 2, ScenarioGoal::SumOfPeaks, true)
            .is_err());
        assert!(milp
            .clone()
            .with_gap(Some(-1.0))
            .solve(&w, &[0, 1], 1, 2, ScenarioGoal::WorstPeak, false)
            .is_err());
    }
}
