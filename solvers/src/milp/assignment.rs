//! The assignment model: copy counts and copies per bin as integers, with regions.

use good_lp::{variable, Expression, ProblemVariables, Variable};

use crate::error::SolverError;
use crate::loads::count_loads;
use crate::tolerance::ROUNDING;

use super::*;

/// The assignment model (module docs) looking for solutions of at most `upper`, started from
/// `seed` when it is at most `upper`.
pub(super) fn assignment(
    problem: &PackingProblem,
    seed: Option<&[Vec<usize>]>,
    lower: f64,
    upper: f64,
    ctx: &Settings,
) -> Result<Found, SolverError> {
    let scale = problem.weights.iter().sum::<f64>() / problem.bins as f64;
    let seed = seed.filter(|s| problem.max_load(s) <= upper);
    let canonical = seed.map(|s| canonical_incumbent(problem, s));
    // Columns of the full model: copy counts from the fewest that beat `upper` up to what the
    // slots leave, one integer per count and bin. Too many, and only the neighbourhood of the
    // seed's counts is searched (a heuristic: its dual bound proves nothing then).
    let low: Vec<usize> = problem
        .weights
        .iter()
        .map(|&w| ((w / upper * (1.0 - ROUNDING)).ceil().max(1.0)) as usize)
        .collect();
    let slack = (problem.bins * problem.slots_per_bin).saturating_sub(low.iter().sum());
    let columns = problem.weights.len() * (slack + 1) * problem.bins;
    let window = (columns > MAX_FULL_COLUMNS && canonical.is_some()).then_some(NEIGHBOURHOOD);
    let (model, layout) = Model::build(
        problem,
        canonical.as_deref(),
        lower,
        upper,
        scale,
        ctx.backend == Backend::MicroLp,
        window,
    );
    let raw = run(model, ctx)?;
    let dual = raw
        .dual_bound
        .filter(|b| b.is_finite())
        .map_or(lower, |b| (b * scale * (1.0 - DUAL_BOUND_SHAVE)).max(lower));
    let best = raw.values.map(|v| layout.extract(&v)).and_then(|c| {
        problem.check_solution(&c).ok()?;
        let load = problem.max_load(&c);
        Some((c, load))
    });
    let bound = match raw.status {
        _ if window.is_some() => lower,
        RawStatus::Infeasible => upper * (1.0 - DUAL_BOUND_SHAVE),
        RawStatus::Optimal | RawStatus::Stopped => dual,
    };
    Ok(Found { best, bound })
}

/// lowest group they hold, bins inside a region by decreasing load (stable).
pub(super) fn canonical_incumbent(
    problem: &PackingProblem,
    incumbent: &[Vec<usize>],
) -> Vec<Vec<usize>> {
    let per_region = problem.bins_per_region();
    let regions = problem.bins / per_region;
    let loads = count_loads(&problem.weights, incumbent, problem.bins);
    // Lowest group held by each region.
    let mut first_group = vec![usize::MAX; regions];
    for (i, c) in incumbent.iter().enumerate() {
        for (j, &k) in c.iter().enumerate() {
            if k > 0 {
                let r = problem.region_of_bin(j);
                first_group[r] = first_group[r].min(problem.group_of_item(i));
            }
        }
    }
    let mut region_order: Vec<usize> = (0..regions).collect();
    region_order.sort_by_key(|&r| (first_group[r], r));
    let mut bin_order = Vec::with_capacity(problem.bins);
    for &r in &region_order {
        let mut bins: Vec<usize> = (r * per_region..(r + 1) * per_region).collect();
        bins.sort_by(|&a, &b| loads[b].total_cmp(&loads[a]));
        bin_order.extend(bins);
    }
    incumbent
        .iter()
        .map(|c| bin_order.iter().map(|&j| c[j]).collect())
        .collect()
}

/// The assignment model of the module docs.
pub(super) struct Model;

/// Copies of an item on each bin for one copy count `k`: `(variable, column)`, or `None` when
/// the bin is ruled out.
pub(super) type BinCopies = Vec<Option<(Variable, usize)>>;

/// Where the copy variables are, to read a solution back.
pub(super) struct Layout {
    /// `x[i]`: `(k, per-bin (variable, column) or None when the bin is ruled out)`.
    pub(super) copy_vars: Vec<Vec<(usize, BinCopies)>>,
    pub(super) items: usize,
    pub(super) bins: usize,
}

impl Model {
    /// The model for solutions of at most `upper`, with `T >= lower`, started from
    /// `incumbent` when given (it must then be canonical, see [`canonical_incumbent`]).
    pub(super) fn build(
        problem: &PackingProblem,
        incumbent: Option<&[Vec<usize>]>,
        lower: f64,
        upper: f64,
        scale: f64,
        order_bins: bool,
        window: Option<usize>,
    ) -> (LpModel, Layout) {
        let n = problem.weights.len();
        let m = problem.bins;
        let s = problem.slots_per_bin;
        let w: Vec<f64> = problem.weights.iter().map(|x| x / scale).collect();
        let upper = upper / scale;
        let lower = (lower / scale).min(upper);
        let zeros;
        let has_start = incumbent.is_some();
        let incumbent = match incumbent {
            Some(i) => i,
            None => {
                zeros = vec![vec![0usize; m]; n];
                &zeros[..]
            }
        };
        let (regions, groups, per_region_groups) = match problem.regions {
            Some(r) => {
                let groups = n / r.group_size;
                (r.regions, groups, groups / r.regions)
            }
            None => (1, 1, 1),
        };
        // Copy-count ranges, capped by the slots an item's region offers.
        let region_slots = problem.bins_per_region() * s;
        let low: Vec<usize> = w
            .iter()
            .map(|&x| {
                let need = (x / upper * (1.0 - ROUNDING)).ceil();
                (need.max(1.0) as usize).min(region_slots)
            })
            .collect();
        let slack = (m * s).saturating_sub(low.iter().sum());
        let counts: Vec<usize> = incumbent.iter().map(|c| c.iter().sum()).collect();
        // Count ranges: everything that could beat `upper`, or (a neighbourhood search) the
        // incumbent's counts plus or minus `window`.
        let range: Vec<(usize, usize)> = (0..n)
            .map(|i| {
                let hi = (low[i] + slack).min(region_slots);
                match window {
                    Some(d) if has_start => (
                        low[i].max(counts[i].saturating_sub(d)),
                        hi.min(counts[i] + d).max(low[i]),
                    ),
                    _ => (low[i], hi),
                }
            })
            .collect();
        let mut vars = ProblemVariables::new();
        let mut start = Vec::new();
        let objective = vars.add(variable().min(lower).max(upper));
        start.push((objective, upper));
        let mut constraints = Vec::new();

        // Regions.
        let mut region_var: Vec<Vec<Option<Variable>>> = vec![vec![None; regions]; groups];
        if problem.regions.is_some() {
            let incumbent_region: Vec<usize> = (0..groups)
                .map(|g| {
                    let i = g * (n / groups);
                    incumbent[i]
                        .iter()
                        .position(|&k| k > 0)
                        .map_or(0, |j| problem.region_of_bin(j))
                })
                .collect();
            for g in 0..groups {
                let mut one = Expression::with_capacity(regions);
                for (r, slot) in region_var[g].iter_mut().enumerate().take(g + 1) {
                    let y = vars.add(variable().binary());
                    start.push((y, f64::from(u8::from(incumbent_region[g] == r))));
                    *slot = Some(y);
                    one.add_mul(1.0, y);
                }
                constraints.push(one.eq(1.0));
            }
            for r in 0..regions {
                let mut held = Expression::with_capacity(groups);
                for vars_of_group in &region_var {
                    if let Some(y) = vars_of_group[r] {
                        held.add_mul(1.0, y);
                    }
                }
                constraints.push(held.eq(per_region_groups as f64));
            }
        }

        // Counts and copies.
        let mut bin_slots: Vec<Expression> = (0..m).map(|_| Expression::with_capacity(n)).collect();
        let mut bin_load: Vec<Expression> = (0..m).map(|_| Expression::with_capacity(n)).collect();
        let mut copy_vars = Vec::with_capacity(n);
        for i in 0..n {
            let g = problem.group_of_item(i);
            let (lo, hi) = range[i];
            let mut choose = Expression::with_capacity(hi - lo + 1);
            let mut share = Expression::with_capacity(hi - lo + 1);
            let mut per_k = Vec::with_capacity(hi - lo + 1);
            for k in lo..=hi {
                let chosen = counts[i] == k;
                // z[i][k]: a variable unless the count is forced.
                let z: Expression = if lo == hi {
                    Expression::from(1.0)
                } else {
                    let z = vars.add(variable().binary());
                    start.push((z, f64::from(u8::from(chosen))));
                    choose.add_mul(1.0, z);
                    Expression::from(z)
                };
                share.add_mul(w[i] / k as f64, z.clone());
                let mut placed = Expression::with_capacity(m);
                let mut xs = Vec::with_capacity(m);
                for (j, (slots, load)) in bin_slots.iter_mut().zip(&mut bin_load).enumerate() {
                    let r = problem.region_of_bin(j);
                    if problem.regions.is_some() && region_var[g][r].is_none() {
                        xs.push(None);
                        continue;
                    }
                    let column = vars.len();
                    let x = vars.add(variable().integer().min(0).max(k.min(s) as f64));
                    let value = if chosen { incumbent[i][j] } else { 0 };
                    start.push((x, value as f64));
                    placed.add_mul(1.0, x);
                    slots.add_mul(1.0, x);
                    load.add_mul(w[i] / k as f64, x);
                    xs.push(Some((x, column)));
                }
                constraints.push(placed.eq(z * k as f64));
                per_k.push((k, xs));
            }
            if lo != hi {
                constraints.push(choose.eq(1.0));
            }
            constraints.push(share.leq(objective));
            copy_vars.push(per_k);
        }
        for slots in bin_slots {
            constraints.push(slots.eq(s as f64));
        }
        let loads: Vec<Expression> = bin_load;
        for load in &loads {
            constraints.push(load.clone().leq(objective));
        }
        if order_bins {
            let per_region = problem.bins_per_region();
            for j in 0..m.saturating_sub(1) {
                if (j + 1) % per_region != 0 {
                    constraints.push(loads[j].clone().geq(loads[j + 1].clone()));
                }
            }
        }
        // Region membership: copies of group g on a bin of region r need y[g][r].
        if problem.regions.is_some() {
            for (g, vars_of_group) in region_var.iter().enumerate() {
                for j in 0..m {
                    let Some(y) = vars_of_group[problem.region_of_bin(j)] else {
                        continue;
                    };
                    let mut held = Expression::with_capacity(n / groups);
                    for (i, per_k) in copy_vars.iter().enumerate() {
                        if problem.group_of_item(i) != g {
                            continue;
                        }
                        for (_, xs) in per_k {
                            if let Some((x, _)) = xs[j] {
                                held.add_mul(1.0, x);
                            }
                        }
                    }
                    constraints.push(held.leq(Expression::from(y) * s as f64));
                }
            }
        }
        let columns = start.iter().map(|&(v, _)| v).collect();
        let start = has_start.then(|| start.iter().map(|&(_, x)| x).collect());
        (
            LpModel {
                vars,
                objective: objective.into(),
                constraints,
                columns,
                start,
            },
            Layout {
                copy_vars,
                items: n,
                bins: m,
            },
        )
    }
}

impl Layout {
    /// Reads the copies off a solution's column values.
    pub(super) fn extract(&self, values: &[f64]) -> Vec<Vec<usize>> {
        let mut copies = vec![vec![0usize; self.bins]; self.items];
        for (i, per_k) in self.copy_vars.iter().enumerate() {
            for (_, xs) in per_k {
                for (j, x) in xs.iter().enumerate() {
                    if let Some((_, column)) = x {
                        copies[i][j] += values[*column].round().max(0.0) as usize;
                    }
                }
            }
        }
        copies
    }
}
