//! The pattern model for problems without regions whose bins admit few patterns.
//!
//! A *copy type* is an item with a copy count, `(i, k)`, each copy carrying `w[i] / k`; a
//! *pattern* is a multiset of `s` copies (one count per item, at most `k` copies of `(i, k)`)
//! lighter than the incumbent. Bins are interchangeable, so a solution is a choice of one
//! count per item and a number of bins `y[p]` per pattern — no symmetry left for the solver
//! to fight, and the relaxation is the strong configuration LP. The feasibility model for a
//! threshold `t` keeps the patterns of load at most `t`:
//!
//! - `sum_k z[i][k] = 1` (one count per item), `sum_p y[p] = m` (every bin one pattern);
//! - for every type: `sum_p a[p][(i,k)] y[p] = k z[i][k]` (exactly `k` copies when chosen).
//!
//! The optimum is the smallest pattern load whose model is feasible: a binary search over
//! the sorted pattern loads, each infeasible probe raising the proven bound.

use super::{Found, LpModel, PackingProblem, RawStatus, Settings, DUAL_BOUND_SHAVE, STRICT};
use crate::error::SolverError;
use crate::tolerance::ROUNDING;
use good_lp::{variable, Expression, ProblemVariables};

/// Patterns enumerated at most per bin (beyond, the assignment model runs instead: with few
/// bins and many patterns the assignment model is the smaller one, and HiGHS proves
/// infeasible thresholds of a wide pattern model slowly).
const MAX_PATTERNS_PER_BIN: usize = 250;

/// Patterns enumerated at most.
const MAX_PATTERNS: usize = 20_000;

/// Enumeration steps at most.
const MAX_STEPS: usize = 2_000_000;

/// What the enumeration found.
pub(super) enum Enumerated {
    /// Too many patterns for this model.
    TooMany,
    /// No count vector can beat the cutoff (each item's fewest copies already overflow).
    NoneBetter,
    /// The patterns.
    Some(Patterns),
}

/// Copy types and the patterns lighter than the cutoff (loads scaled by the mean bin load).
pub(super) struct Patterns {
    weights: Vec<f64>,
    bins: usize,
    slots: usize,
    scale: f64,
    /// `(item, copies)` of every type.
    types: Vec<(usize, usize)>,
    /// Per item, its types.
    item_types: Vec<Vec<usize>>,
    /// Every pattern: `(type, multiplicity)` pairs and its scaled load; sorted by load.
    patterns: Vec<(Vec<(usize, usize)>, f64)>,
}

struct Enumeration<'a> {
    types: &'a [(usize, usize)],
    share: &'a [f64],
    slots: usize,
    cutoff: f64,
    min_share: f64,
    used_k: Vec<usize>,
    current: Vec<(usize, usize)>,
    out: Vec<(Vec<(usize, usize)>, f64)>,
    steps: usize,
    overflow: bool,
    max_patterns: usize,
}

impl Enumeration<'_> {
    /// Adds copies of types `from..` to the current pattern (`left` slots to fill).
    fn descend(&mut self, from: usize, left: usize, load: f64) {
        self.steps += 1;
        if self.overflow || self.steps > MAX_STEPS || self.out.len() > self.max_patterns {
            self.overflow = true;
            return;
        }
        if left == 0 {
            self.out.push((self.current.clone(), load));
            return;
        }
        if load + left as f64 * self.min_share >= self.cutoff {
            return;
        }
        for t in from..self.types.len() {
            let (item, k) = self.types[t];
            if self.used_k[item] != 0 {
                continue;
            }
            let share = self.share[t];
            // Types are sorted by decreasing share: if one copy of this type overflows, the
            // next may not.
            if load + share + (left - 1) as f64 * self.min_share >= self.cutoff {
                continue;
            }
            self.used_k[item] = k;
            let mut added = 0.0;
            for mult in 1..=k.min(left) {
                added += share;
                if load + added + (left - mult) as f64 * self.min_share >= self.cutoff {
                    break;
                }
                self.current.push((t, mult));
                self.descend(t + 1, left - mult, load + added);
                self.current.pop();
                if self.overflow {
                    break;
                }
            }
            self.used_k[item] = 0;
            if self.overflow {
                return;
            }
        }
    }
}

impl Patterns {
    /// Enumerates the patterns of bins lighter than `upper * (1 - STRICT)`.
    pub(super) fn enumerate(weights: &[f64], bins: usize, slots: usize, upper: f64) -> Enumerated {
        let n = weights.len();
        let scale = weights.iter().sum::<f64>() / bins as f64;
        let w: Vec<f64> = weights.iter().map(|x| x / scale).collect();
        let cutoff = upper / scale * (1.0 - STRICT);
        let total = bins * slots;
        // Fewest copies for a share below the cutoff.
        let mut low = Vec::with_capacity(n);
        for &x in &w {
            let mut k = ((x / cutoff).ceil().max(1.0)) as usize;
            while x / k as f64 >= cutoff {
                k += 1;
            }
            if k > total {
                return Enumerated::NoneBetter;
            }
            low.push(k);
        }
        let Some(slack) = total.checked_sub(low.iter().sum()) else {
            return Enumerated::NoneBetter;
        };
        let mut types = Vec::new();
        for (i, &lo) in low.iter().enumerate() {
            for k in lo..=(lo + slack).min(total) {
                types.push((i, k));
            }
        }
        if types.len() > MAX_PATTERNS {
            return Enumerated::TooMany;
        }
        types.sort_by(|a, b| {
            let (sa, sb) = (w[a.0] / a.1 as f64, w[b.0] / b.1 as f64);
            sb.total_cmp(&sa).then(a.cmp(b))
        });
        let share: Vec<f64> = types.iter().map(|&(i, k)| w[i] / k as f64).collect();
        let mut e = Enumeration {
            types: &types,
            share: &share,
            slots,
            cutoff,
            min_share: share.iter().copied().fold(f64::INFINITY, f64::min),
            used_k: vec![0; n],
            current: Vec::new(),
            out: Vec::new(),
            steps: 0,
            overflow: false,
            max_patterns: MAX_PATTERNS.min(MAX_PATTERNS_PER_BIN * bins),
        };
        e.descend(0, e.slots, 0.0);
        if e.overflow {
            return Enumerated::TooMany;
        }
        let mut patterns = e.out;
        patterns.sort_by(|a, b| a.1.total_cmp(&b.1));
        let mut item_types = vec![Vec::new(); n];
        for (t, &(i, _)) in types.iter().enumerate() {
            item_types[i].push(t);
        }
        Enumerated::Some(Patterns {
            weights: weights.to_vec(),
            bins,
            slots,
            scale,
            types,
            item_types,
            patterns,
        })
    }

    /// Binary search over the pattern loads for the smallest feasible one, above `lower`
    /// (a proven bound) and below `upper`.
    pub(super) fn search(
        &self,
        lower: f64,
        upper: f64,
        ctx: &Settings,
    ) -> Result<Found, SolverError> {
        let lower_scaled = lower / self.scale;
        let mut levels: Vec<f64> = Vec::new();
        for &(_, load) in &self.patterns {
            if load < lower_scaled * (1.0 - STRICT) {
                continue;
            }
            if levels.last().is_none_or(|&l| load > l * (1.0 + ROUNDING)) {
                levels.push(load);
            }
        }
        let (mut lo, mut hi) = (0usize, levels.len());
        let mut best = None;
        let gap = ctx.gap.unwrap_or(0.0);
        while lo < hi {
            if ctx.expired() {
                break;
            }
            // Good enough for the requested gap?
            let bound = if lo == 0 { lower_scaled } else { levels[lo] };
            let top = if hi == levels.len() {
                upper / self.scale
            } else {
                levels[hi]
            };
            if gap > 0.0 && top <= bound * (1.0 + gap) {
                break;
            }
            let mid = lo + (hi - lo) / 2;
            match self.probe(levels[mid], ctx)? {
                Probe::Feasible(copies) => {
                    let load =
                        PackingProblem::unchecked(self.weights.clone(), self.bins, self.slots)
                            .max_load(&copies)
                            / self.scale;
                    hi = levels
                        .partition_point(|&l| l < load * (1.0 - ROUNDING))
                        .min(mid);
                    best = Some((copies, load * self.scale));
                }
                Probe::Infeasible => lo = mid + 1,
                Probe::Stopped => break,
            }
        }
        let bound = if lo == levels.len() {
            // Every level below the cutoff is infeasible (or there is none).
            upper * (1.0 - STRICT) * (1.0 - DUAL_BOUND_SHAVE)
        } else {
            // Every solution below the cutoff has its largest bin at some level, and the
            // levels below `lo` are infeasible.
            levels[lo] * self.scale * (1.0 - DUAL_BOUND_SHAVE)
        };
        Ok(Found {
            best,
            bound: bound.max(lower),
        })
    }

    /// Is there a solution using only patterns of load at most `level`?
    fn probe(&self, level: f64, ctx: &Settings) -> Result<Probe, SolverError> {
        let chosen: Vec<usize> = (0..self.patterns.len())
            .take_while(|&p| self.patterns[p].1 <= level * (1.0 + ROUNDING))
            .collect();
        let mut vars = ProblemVariables::new();
        let mut columns = Vec::new();
        let mut constraints = Vec::new();
        let mut per_type: Vec<Expression> = vec![Expression::default(); self.types.len()];
        let mut all_bins = Expression::default();
        let mut y = Vec::with_capacity(chosen.len());
        for &p in &chosen {
            let v = vars.add(variable().integer().min(0).max(self.bins as f64));
            columns.push(v);
            y.push(v);
            all_bins.add_mul(1.0, v);
            for &(t, mult) in &self.patterns[p].0 {
                per_type[t].add_mul(mult as f64, v);
            }
        }
        constraints.push(all_bins.eq(self.bins as f64));
        for item_types in &self.item_types {
            if item_types.len() == 1 {
                let t = item_types[0];
                let k = self.types[t].1 as f64;
                constraints.push(std::mem::take(&mut per_type[t]).eq(k));
                continue;
            }
            let mut one = Expression::default();
            for &t in item_types {
                let z = vars.add(variable().binary());
                columns.push(z);
                one.add_mul(1.0, z);
                let k = self.types[t].1 as f64;
                let copies = std::mem::take(&mut per_type[t]);
                constraints.push(copies.eq(Expression::from(z) * k));
            }
            constraints.push(one.eq(1.0));
        }
        let model = LpModel {
            vars,
            objective: Expression::default(),
            constraints,
            columns,
            start: None,
        };
        let raw = super::run(model, &ctx.without_gap())?;
        match (raw.status, raw.values) {
            (RawStatus::Infeasible, _) => Ok(Probe::Infeasible),
            (_, Some(values)) => {
                let mut copies = vec![vec![0usize; self.bins]; self.weights.len()];
                let mut bin = 0;
                for (i, &p) in chosen.iter().enumerate() {
                    let count = values[i].round().max(0.0) as usize;
                    for _ in 0..count {
                        if bin >= self.bins {
                            return Ok(Probe::Stopped);
                        }
                        for &(t, mult) in &self.patterns[p].0 {
                            copies[self.types[t].0][bin] += mult;
                        }
                        bin += 1;
                    }
                }
                let problem =
                    PackingProblem::unchecked(self.weights.clone(), self.bins, self.slots);
                // Every item's copies must add up to one of its counts: the shares then are
                // what the patterns assumed.
                let consistent = copies.iter().enumerate().all(|(i, c)| {
                    let total: usize = c.iter().sum();
                    self.item_types[i].iter().any(|&t| self.types[t].1 == total)
                });
                if bin == self.bins && consistent && problem.check_solution(&copies).is_ok() {
                    Ok(Probe::Feasible(copies))
                } else {
                    Ok(Probe::Stopped)
                }
            }
            (_, None) => Ok(Probe::Stopped),
        }
    }
}

/// The answer of one feasibility model.
enum Probe {
    Feasible(Vec<Vec<usize>>),
    Infeasible,
    Stopped,
}
