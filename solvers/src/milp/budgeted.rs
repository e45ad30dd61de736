//! The budgeted MILP: the lowest peak reachable from a current packing with at most `K`
//! *new* copies, on bins that did not hold their item ([`BudgetedMilp`]).

use std::time::Instant;

use good_lp::{variable, Expression, ProblemVariables};

use super::backend::{run, LpModel};
use super::{Backend, Settings};
use crate::error::SolverError;
use crate::scenarios::{goal_value, ScenarioGoal};

/// Copy counts searched around the start's count of every item (the neighbourhood keeps the
/// model small; the answer's bound never comes from the solver, so this loses no claim).
const COUNT_RADIUS: usize = 2;

/// The budgeted packing solver: from a start packing, choose every item's copy count and the
/// bins of its copies so that the heaviest bin is as light as possible, while at most `K`
/// copies are *new* — on a bin that held no copy of their item in the `held` packing (a
/// weight transfer, in the live-rebalancing vocabulary of the caller).
///
/// The model (weights scaled by the mean bin load):
///
/// - binaries `z[i][k]` ("item `i` has `k` copies", `k` within 2 of the start's
///   count and at least `ceil(w[i] / U)` with `U` the start's peak), one per item;
/// - integers `x[i][k][j]` (copies of item `i` on bin `j` when it has `k`; at most 1 with
///   distinct copies; only on the bins of the item's region), `sum_j x[i][k][j] = k z[i][k]`;
/// - the copies on the (item, bin) pairs `held` lacks sum to at most `K`;
/// - every bin holds `s` copies and carries at most `T`, minimised.
///
/// The start is the solver's starting solution; the answer is checked in integers (bin sizes,
/// new copies, distinctness) and its peak recomputed exactly as an evaluator sums bins, and it
/// replaces the start only when that peak is lower. No bound of the floating-point solver is
/// reported: the caller's combinatorial bounds of the problem without a budget hold for it.
///
/// ```
/// use eplb_solvers::milp::{Backend, BudgetedMilp};
/// // Weights 6, 2, 2 on 2 bins of 2 slots: bin 0 holds {0, 1}, bin 1 holds {2, 2} (peak 8).
/// let held = [vec![true, true, false], vec![false, false, true]];
/// let (weights, start) = ([6.0, 2.0, 2.0], [0, 1, 2, 2]);
/// let milp = BudgetedMilp::new(Backend::MicroLp);
/// let none = milp.solve(&weights, &start, &held, 2, 0, None, false)?;
/// assert_eq!((none.value, none.improved), (8.0, false)); // no new copy: nothing can move
/// // One new copy: of item 0, on bin 1, instead of a copy of item 2: {3, 2}, {3, 2}.
/// let one = milp.solve(&weights, &start, &held, 2, 1, None, false)?;
/// assert_eq!((one.value, one.new_copies), (5.0, 1));
/// # Ok::<(), eplb_solvers::SolverError>(())
/// ```
#[derive(Debug, Clone)]
pub struct BudgetedMilp {
    settings: Settings,
}

/// What [`BudgetedMilp::solve`] found.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BudgetedPacking {
    /// The item of every slot (the start's slots where an item stays on its bin).
    pub slots: Vec<usize>,
    /// The peak of `slots` (never above the start's).
    pub value: f64,
    /// Copies of `slots` on a bin that held no copy of their item (at most the budget, unless
    /// the start had more).
    pub new_copies: usize,
    /// True when the solver's answer replaced the start.
    pub improved: bool,
}

impl BudgetedMilp {
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

    /// Stops within the relative gap `gap` (the solver's own, an effort setting only).
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

    /// Solves from `start` (item per slot, bins of `per_bin` slots) with at most `budget` new
    /// copies against `held[j][i]` (bin `j` held item `i`; a start with more new copies than
    /// the budget may keep them). `regions`, when given, is the region of every item:
    /// `regions[i] = r` keeps item `i`'s copies on the bins `r * b .. (r + 1) * b`, with `b`
    /// bins per region and `b * (max r + 1) = bins`. With `distinct` no bin takes two copies
    /// of an item (the start must be distinct).
    ///
    /// # Errors
    /// [`SolverError::InvalidModel`] for shapes that do not fit, a start that breaks the
    /// regions or distinctness, or a gap that is not a finite number `>= 0`;
    /// [`SolverError::Backend`] when the solver fails.
    #[allow(clippy::too_many_arguments)]
    pub fn solve(
        &self,
        weights: &[f64],
        start: &[usize],
        held: &[Vec<bool>],
        per_bin: usize,
        budget: usize,
        regions: Option<&[usize]>,
        distinct: bool,
    ) -> Result<BudgetedPacking, SolverError> {
        let scenario = [weights.to_vec()];
        let start_value = goal_value(&scenario, start, per_bin, ScenarioGoal::WorstPeak)?;
        let bins = start.len() / per_bin;
        let items = weights.len();
        if held.len() != bins || held.iter().any(|row| row.len() != items) {
            return Err(SolverError::InvalidModel(format!(
                "held must be [{bins} bins][{items} items]"
            )));
        }
        self.settings.check_gap()?;
        let region_bins = match regions {
            Some(r) if r.len() != items => {
                return Err(SolverError::InvalidModel(format!(
                    "regions lists {} items, the weights {items}",
                    r.len()
                )))
            }
            Some(r) => {
                let count = r.iter().max().map_or(1, |&m| m + 1);
                if !bins.is_multiple_of(count) {
                    return Err(SolverError::InvalidModel(format!(
                        "{count} regions do not split {bins} bins evenly"
                    )));
                }
                bins / count
            }
            None => bins,
        };
        let region_of = |i: usize| regions.map_or(0, |r| r[i]);
        let mut on_bin = vec![vec![0usize; bins]; items];
        for (slot, &i) in start.iter().enumerate() {
            on_bin[i][slot / per_bin] += 1;
            if slot / per_bin / region_bins != region_of(i) {
                return Err(SolverError::InvalidModel(format!(
                    "the start has item {i} outside its region {}",
                    region_of(i)
                )));
            }
        }
        if distinct && on_bin.iter().flatten().any(|&c| c > 1) {
            return Err(SolverError::InvalidModel(
                "distinct copies asked, but the start has two copies of an item on one bin".into(),
            ));
        }
        let counts: Vec<usize> = on_bin.iter().map(|b| b.iter().sum()).collect();
        let new_copies_of = |on: &[Vec<usize>]| -> usize {
            (0..items)
                .flat_map(|i| (0..bins).map(move |j| (i, j)))
                .filter(|&(i, j)| !held[j][i])
                .map(|(i, j)| on[i][j])
                .sum()
        };
        let start_new = new_copies_of(&on_bin);
        let keep = || BudgetedPacking {
            slots: start.to_vec(),
            value: start_value,
            new_copies: start_new,
            improved: false,
        };
        let scale = weights.iter().sum::<f64>() / bins as f64;
        if scale <= 0.0 {
            return Ok(keep());
        }

        // Count ranges: near the start's, and no copy heavier than the start's peak.
        let lowest: Vec<usize> = weights
            .iter()
            .map(|&w| ((w / start_value).ceil() as usize).max(1))
            .collect();
        let region_slots = region_bins * per_bin;
        let ranges: Vec<(usize, usize)> = (0..items)
            .map(|i| {
                let cap = if distinct { region_bins } else { region_slots };
                let lo = lowest[i].max(counts[i].saturating_sub(COUNT_RADIUS)).max(1);
                let hi = (counts[i] + COUNT_RADIUS).min(cap);
                (lo.min(counts[i]), hi.max(counts[i]))
            })
            .collect();

        let mut vars = ProblemVariables::new();
        let mut start_values = Vec::new();
        let mut columns = Vec::new();
        let mut add = |vars: &mut ProblemVariables, def: good_lp::VariableDefinition, v0: f64| {
            let v = vars.add(def);
            columns.push(v);
            start_values.push(v0);
            (v, columns.len() - 1)
        };
        let (peak, _) = add(&mut vars, variable().min(0.0), start_value / scale);
        let mut constraints = Vec::new();
        // Per item: its x columns, as (bin, column index).
        let mut x: Vec<Vec<(usize, usize)>> = vec![Vec::new(); items];
        let mut bin_slots: Vec<Expression> = (0..bins).map(|_| Expression::default()).collect();
        let mut bin_loads: Vec<Expression> = (0..bins).map(|_| Expression::default()).collect();
        let mut on_pair: Vec<Vec<Expression>> = (0..items)
            .map(|_| (0..bins).map(|_| Expression::default()).collect())
            .collect();
        for i in 0..items {
            let (lo, hi) = ranges[i];
            let region = region_of(i);
            let mut choice = Expression::default();
            for k in lo..=hi {
                let chosen = k == counts[i];
                let z = (lo < hi).then(|| {
                    add(
                        &mut vars,
                        variable().binary(),
                        if chosen { 1.0 } else { 0.0 },
                    )
                    .0
                });
                let mut placed = Expression::default();
                let cap = if distinct { 1 } else { k.min(per_bin) };
                for j in region * region_bins..(region + 1) * region_bins {
                    let v0 = if chosen { on_bin[i][j] as f64 } else { 0.0 };
                    let (v, column) =
                        add(&mut vars, variable().integer().min(0).max(cap as f64), v0);
                    x[i].push((j, column));
                    placed.add_mul(1.0, v);
                    bin_slots[j].add_mul(1.0, v);
                    bin_loads[j].add_mul(weights[i] / k as f64 / scale, v);
                    on_pair[i][j].add_mul(1.0, v);
                }
                match z {
                    Some(z) => {
                        constraints.push(placed.eq(Expression::from(z) * k as f64));
                        choice.add_mul(1.0, z);
                    }
                    None => constraints.push(placed.eq(k as f64)),
                }
            }
            if lo < hi {
                constraints.push(choice.eq(1.0));
            }
        }
        let mut transfers = Expression::default();
        for (i, pairs) in on_pair.into_iter().enumerate() {
            for (j, on) in pairs.into_iter().enumerate() {
                if !held[j][i] {
                    transfers += on;
                }
            }
        }
        constraints.push(transfers.leq(budget.max(start_new) as f64));
        for (slots, load) in bin_slots.into_iter().zip(bin_loads) {
            constraints.push(slots.eq(per_bin as f64));
            constraints.push(load.leq(peak));
        }
        let model = LpModel {
            vars,
            objective: Expression::from(peak),
            constraints,
            columns,
            start: Some(start_values),
        };
        let outcome = run(model, &self.settings)?;
        let Some(values) = outcome.values else {
            return Ok(keep());
        };
        let mut copies = vec![vec![0usize; bins]; items];
        for (i, entries) in x.iter().enumerate() {
            for &(j, column) in entries {
                copies[i][j] += values[column].round().max(0.0) as usize;
            }
        }
        // Checked in integers: every bin full, at least one copy per item, the budget, the
        // distinctness; then the peak as an evaluator sums it.
        let Some(slots) = slots_with_counts(&copies, start, per_bin) else {
            return Ok(keep());
        };
        let new_copies = new_copies_of(&copies);
        if new_copies > budget.max(start_new)
            || (distinct && copies.iter().flatten().any(|&c| c > 1))
        {
            return Ok(keep());
        }
        let value = goal_value(&scenario, &slots, per_bin, ScenarioGoal::WorstPeak)?;
        if value < start_value {
            Ok(BudgetedPacking {
                slots,
                value,
                new_copies,
                improved: true,
            })
        } else {
            Ok(keep())
        }
    }
}

/// The slots of a copy matrix `copies[i][j]` whose counts may differ from `start`'s: each item
/// keeps the slots it held in `start` where it stays on its bin, the other copies fill the
/// remaining slots in item order; `None` when a bin's copies do not fill it exactly or an item
/// has no copy (a solver answer outside its tolerance).
fn slots_with_counts(copies: &[Vec<usize>], start: &[usize], per_bin: usize) -> Option<Vec<usize>> {
    if copies.iter().any(|row| row.iter().sum::<usize>() == 0) {
        return None;
    }
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
    left.iter().flatten().all(|&c| c == 0).then_some(slots)
}
