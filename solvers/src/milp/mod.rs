//! An exact MILP for *replicated min-max packing*, on [`good_lp`].
//!
//! `n` items with weights `w[i] >= 0` are copied onto `m` bins of exactly `s` slots each
//! (`m * s >= n` slots in all). Every item gets `c[i] >= 1` copies and each copy carries
//! `w[i] / c[i]`; the aim is to minimise the largest bin sum. The copy counts and the
//! assignment are chosen together. Optionally the bins form `r` equal *regions* of consecutive
//! bins and the items form blocks of `b` consecutive items: each region then takes exactly
//! `blocks / r` whole blocks and every copy of an item stays in its block's region.
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
//! **Decomposition** (regions, few splits). A solution is a split of the blocks among the
//! interchangeable regions plus an independent region-free solution per block set, so the
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
//! - regions (when the decomposition does not apply): binaries `y[g][r]` with each block in
//!   one region and `blocks / r` blocks per region; copies of block `g` on a bin of region `r`
//!   need `y[g][r]`. Regions are interchangeable, so block `g` may only use regions `0..=g`
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

mod local;
mod microlp;
mod patterns;
mod regions;

#[cfg(feature = "highs")]
mod highs;

use std::time::{Duration, Instant};

use good_lp::{variable, Constraint, Expression, ProblemVariables, Variable};

use crate::error::{check_weights, SolverError};

/// Bins split into regions and items into blocks (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Regions {
    /// Number of regions `r` (consecutive, equal runs of bins).
    pub regions: usize,
    /// Items per block `b` (blocks are consecutive runs of items).
    pub block_size: usize,
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

    fn bins_per_region(&self) -> usize {
        self.regions.map_or(self.bins, |r| self.bins / r.regions)
    }

    fn region_of_bin(&self, bin: usize) -> usize {
        bin / self.bins_per_region()
    }

    fn block_of_item(&self, item: usize) -> usize {
        self.regions.map_or(0, |r| item / r.block_size)
    }

    /// The largest bin load of `copies` (`copies[i][j]`: copies of item `i` on bin `j`).
    pub fn max_load(&self, copies: &[Vec<usize>]) -> f64 {
        bin_loads(&self.weights, copies, self.bins)
            .into_iter()
            .fold(0.0, f64::max)
    }

    /// Checks the instance's shape.
    fn validate(&self) -> Result<(), SolverError> {
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
                && r.block_size >= 1
                && self.bins.is_multiple_of(r.regions)
                && n.is_multiple_of(r.block_size)
                && (n / r.block_size).is_multiple_of(r.regions);
            if !ok {
                return Err(SolverError::InvalidModel(format!(
                    "{} regions and blocks of {} items do not fit {} bins and {} items: regions must divide the bins, the block size the items, and the regions the blocks",
                    r.regions, r.block_size, self.bins, n
                )));
            }
        }
        Ok(())
    }

    /// Checks that `copies` is a valid solution: every item copied at least once, every bin
    /// full, regions respected.
    fn check_solution(&self, copies: &[Vec<usize>]) -> Result<(), String> {
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
            let blocks = n / r.block_size;
            let mut region_of_block = vec![None; blocks];
            let mut per_region = vec![0usize; r.regions];
            for (i, c) in copies.iter().enumerate() {
                let g = i / r.block_size;
                for (j, &k) in c.iter().enumerate() {
                    if k == 0 {
                        continue;
                    }
                    let region = self.region_of_bin(j);
                    match region_of_block[g] {
                        None => {
                            region_of_block[g] = Some(region);
                            per_region[region] += 1;
                        }
                        Some(x) if x != region => {
                            return Err(format!("block {g} spans regions {x} and {region}"))
                        }
                        Some(_) => {}
                    }
                }
            }
            if per_region.iter().any(|&k| k != blocks / r.regions) {
                return Err(format!(
                    "regions hold {per_region:?} blocks, expected {} each",
                    blocks / r.regions
                ));
            }
        }
        Ok(())
    }
}

/// Which MILP solver runs the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// good_lp's pure-Rust `microlp` (branch and bound on a dense simplex): tiny instances.
    MicroLp,
    /// HiGHS through good_lp and the `highs` crate (cargo feature `highs`).
    #[cfg(feature = "highs")]
    Highs,
}

impl Default for Backend {
    /// HiGHS when the `highs` feature is on, `microlp` otherwise.
    fn default() -> Self {
        #[cfg(feature = "highs")]
        {
            Backend::Highs
        }
        #[cfg(not(feature = "highs"))]
        {
            Backend::MicroLp
        }
    }
}

impl Backend {
    /// The backend's name.
    pub fn name(self) -> &'static str {
        match self {
            Backend::MicroLp => "microlp",
            #[cfg(feature = "highs")]
            Backend::Highs => "highs",
        }
    }
}

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

/// Relative amount shaved off a solver's dual bound (floating-point LP tolerances).
const TOLERANCE: f64 = 1e-7;

/// Relative distance between the incumbent and the proven bound within which the incumbent
/// is called optimal (HiGHS prunes with its feasibility tolerance, `1e-6`, in the scaled
/// units where the mean bin load is `1`).
const OPTIMALITY_TOLERANCE: f64 = 1e-5;

/// Copy-variable columns above which the assignment model only searches the neighbourhood of
/// the seed's copy counts.
const MAX_FULL_COLUMNS: usize = 60_000;

/// How far copy counts may move from the seed's in the neighbourhood search.
const NEIGHBOURHOOD: usize = 2;

/// Relative margin by which a solution must beat a cutoff to count as better.
const STRICT: f64 = 1e-9;

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
/// - With regions, when the ways to split blocks among regions are few, the problem is
///   decomposed: the optimum is the minimum over splits of the largest region optimum, every
///   block set a region can receive is an independent problem without regions, and block sets
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
        proven_optimal: max_load <= bound * (1.0 + OPTIMALITY_TOLERANCE),
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
            bound: upper * (1.0 - STRICT) * (1.0 - TOLERANCE),
        }),
        patterns::Enumerated::Some(set) => set.search(lower, upper, ctx),
    }
}

/// The assignment model (module docs) looking for solutions of at most `upper`, started from
/// `seed` when it is at most `upper`.
fn assignment(
    problem: &PackingProblem,
    seed: Option<&[Vec<usize>]>,
    lower: f64,
    upper: f64,
    ctx: &Ctx<'_>,
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
        .map(|&w| ((w / upper * (1.0 - 1e-12)).ceil().max(1.0)) as usize)
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
    let raw = run(model, ctx, ctx.options.mip_gap)?;
    let dual = raw
        .dual_bound
        .filter(|b| b.is_finite())
        .map_or(lower, |b| (b * scale * (1.0 - TOLERANCE)).max(lower));
    let best = raw.values.map(|v| layout.extract(&v)).and_then(|c| {
        problem.check_solution(&c).ok()?;
        let load = problem.max_load(&c);
        Some((c, load))
    });
    let bound = match raw.status {
        _ if window.is_some() => lower,
        RawStatus::Infeasible => upper * (1.0 - TOLERANCE),
        RawStatus::Optimal | RawStatus::Stopped => dual,
    };
    Ok(Found { best, bound })
}

/// How a backend run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawStatus {
    /// Solved to the requested gap.
    Optimal,
    /// No solution exists.
    Infeasible,
    /// A limit stopped it.
    Stopped,
}

/// What a backend returns: column values (creation order), status, dual bound (model units).
struct RawOutcome {
    values: Option<Vec<f64>>,
    status: RawStatus,
    dual_bound: Option<f64>,
}

/// A model ready for a backend.
struct LpModel {
    vars: ProblemVariables,
    objective: Expression,
    constraints: Vec<Constraint>,
    /// The variables in creation order (column `c` is `columns[c]`).
    columns: Vec<Variable>,
    /// A starting solution, one value per column.
    start: Option<Vec<f64>>,
}

/// Runs `model` on the context's backend with the time left.
fn run(model: LpModel, ctx: &Ctx<'_>, gap: Option<f64>) -> Result<RawOutcome, SolverError> {
    let time_left = ctx.time_left();
    if time_left.is_some_and(|t| t < Duration::from_millis(1)) {
        return Ok(RawOutcome {
            values: None,
            status: RawStatus::Stopped,
            dual_bound: None,
        });
    }
    match ctx.backend {
        Backend::MicroLp => microlp::run(model, ctx.deadline, gap),
        #[cfg(feature = "highs")]
        Backend::Highs => highs::run(model, ctx.deadline, gap, ctx.options.threads),
    }
}

/// Bin loads of `copies`.
fn bin_loads(weights: &[f64], copies: &[Vec<usize>], bins: usize) -> Vec<f64> {
    let mut loads = vec![0.0; bins];
    for (w, c) in weights.iter().zip(copies) {
        let total: usize = c.iter().sum();
        if total == 0 {
            continue;
        }
        let share = w / total as f64;
        for (load, &k) in loads.iter_mut().zip(c) {
            *load += share * k as f64;
        }
    }
    loads
}

/// The incumbent relabelled to satisfy the model's symmetry breaking: regions ordered by the
/// lowest block they hold, bins inside a region by decreasing load (stable).
fn canonical_incumbent(problem: &PackingProblem, incumbent: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let per_region = problem.bins_per_region();
    let regions = problem.bins / per_region;
    let loads = bin_loads(&problem.weights, incumbent, problem.bins);
    // Lowest block held by each region.
    let mut first_block = vec![usize::MAX; regions];
    for (i, c) in incumbent.iter().enumerate() {
        for (j, &k) in c.iter().enumerate() {
            if k > 0 {
                let r = problem.region_of_bin(j);
                first_block[r] = first_block[r].min(problem.block_of_item(i));
            }
        }
    }
    let mut region_order: Vec<usize> = (0..regions).collect();
    region_order.sort_by_key(|&r| (first_block[r], r));
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
struct Model;

/// Copies of an item on each bin for one copy count `k`: `(variable, column)`, or `None` when
/// the bin is ruled out.
type BinCopies = Vec<Option<(Variable, usize)>>;

/// Where the copy variables are, to read a solution back.
struct Layout {
    /// `x[i]`: `(k, per-bin (variable, column) or None when the bin is ruled out)`.
    copy_vars: Vec<Vec<(usize, BinCopies)>>,
    items: usize,
    bins: usize,
}

impl Model {
    /// The model for solutions of at most `upper`, with `T >= lower`, started from
    /// `incumbent` when given (it must then be canonical, see [`canonical_incumbent`]).
    fn build(
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
        let (regions, blocks, per_region_blocks) = match problem.regions {
            Some(r) => {
                let blocks = n / r.block_size;
                (r.regions, blocks, blocks / r.regions)
            }
            None => (1, 1, 1),
        };
        // Copy-count ranges, capped by the slots an item's region offers.
        let region_slots = problem.bins_per_region() * s;
        let low: Vec<usize> = w
            .iter()
            .map(|&x| {
                let need = (x / upper * (1.0 - 1e-12)).ceil();
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
        let mut region_var: Vec<Vec<Option<Variable>>> = vec![vec![None; regions]; blocks];
        if problem.regions.is_some() {
            let incumbent_region: Vec<usize> = (0..blocks)
                .map(|g| {
                    let i = g * (n / blocks);
                    incumbent[i]
                        .iter()
                        .position(|&k| k > 0)
                        .map_or(0, |j| problem.region_of_bin(j))
                })
                .collect();
            for g in 0..blocks {
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
                let mut held = Expression::with_capacity(blocks);
                for vars_of_block in &region_var {
                    if let Some(y) = vars_of_block[r] {
                        held.add_mul(1.0, y);
                    }
                }
                constraints.push(held.eq(per_region_blocks as f64));
            }
        }

        // Counts and copies.
        let mut bin_slots: Vec<Expression> = (0..m).map(|_| Expression::with_capacity(n)).collect();
        let mut bin_load: Vec<Expression> = (0..m).map(|_| Expression::with_capacity(n)).collect();
        let mut copy_vars = Vec::with_capacity(n);
        for i in 0..n {
            let g = problem.block_of_item(i);
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
        // Region membership: copies of block g on a bin of region r need y[g][r].
        if problem.regions.is_some() {
            for (g, vars_of_block) in region_var.iter().enumerate() {
                for j in 0..m {
                    let Some(y) = vars_of_block[problem.region_of_bin(j)] else {
                        continue;
                    };
                    let mut held = Expression::with_capacity(n / blocks);
                    for (i, per_k) in copy_vars.iter().enumerate() {
                        if problem.block_of_item(i) != g {
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
    fn extract(&self, values: &[f64]) -> Vec<Vec<usize>> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn greedy_like(weights: &[f64], bins: usize, s: usize) -> Vec<Vec<usize>> {
        // Round-robin of items, then extra copies of item 0: valid but poor.
        let n = weights.len();
        let mut copies = vec![vec![0; bins]; n];
        for slot in 0..bins * s {
            let item = if slot < n { slot } else { 0 };
            copies[item][slot % bins] += 1;
        }
        copies
    }

    #[test]
    fn finds_the_optimum_of_the_design_examples() {
        let w = vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0];
        let problem = PackingProblem::new(w.clone(), 4, 3);
        let start = greedy_like(&w, 4, 3);
        let out = solve(&problem, &start, Backend::MicroLp, &MilpOptions::default()).unwrap();
        assert!(out.proven_optimal);
        assert!((out.max_load - 11.5).abs() < 1e-9, "{}", out.max_load);
        assert!(problem.check_solution(&out.copies).is_ok());
    }

    #[test]
    fn regions_are_respected() {
        // Two regions of two bins, blocks of two items.
        let w = vec![10.0, 1.0, 9.0, 2.0, 1.0, 1.0, 1.0, 1.0];
        let problem = PackingProblem::new(w, 4, 3).with_regions(Regions {
            regions: 2,
            block_size: 2,
        });
        // Blocks 0,1 in region 0 (bins 0,1), blocks 2,3 in region 1 (bins 2,3).
        let start = vec![
            vec![1, 1, 0, 0],
            vec![1, 0, 0, 0],
            vec![0, 1, 0, 0],
            vec![1, 1, 0, 0],
            vec![0, 0, 1, 1],
            vec![0, 0, 1, 1],
            vec![0, 0, 1, 0],
            vec![0, 0, 0, 1],
        ];
        problem.check_solution(&start).unwrap();
        let out = solve(&problem, &start, Backend::MicroLp, &MilpOptions::default()).unwrap();
        problem.check_solution(&out.copies).unwrap();
        assert!(out.proven_optimal);
        assert!(out.max_load <= problem.max_load(&start));
    }

    #[test]
    fn rejects_bad_incumbents_and_options() {
        let problem = PackingProblem::new(vec![1.0, 2.0], 2, 1);
        let bad = vec![vec![1, 1], vec![0, 0]];
        assert!(matches!(
            solve(&problem, &bad, Backend::MicroLp, &MilpOptions::default()),
            Err(SolverError::InvalidModel(_))
        ));
        let good = vec![vec![1, 0], vec![0, 1]];
        let options = MilpOptions {
            mip_gap: Some(-1.0),
            ..MilpOptions::default()
        };
        assert!(solve(&problem, &good, Backend::MicroLp, &options).is_err());
    }

    #[test]
    fn all_zero_weights_are_trivially_optimal() {
        let problem = PackingProblem::new(vec![0.0; 3], 2, 2);
        let start = vec![vec![1, 1], vec![1, 0], vec![0, 1]];
        let out = solve(&problem, &start, Backend::MicroLp, &MilpOptions::default()).unwrap();
        assert!(out.proven_optimal);
        assert_eq!(out.max_load, 0.0);
    }
}
