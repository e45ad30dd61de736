//! The runner: solves every layer of a [`Problem`] with a strategy, in parallel and
//! deterministically, and times each layer.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use eplb_solvers::kernels::Kernels;

use rayon::prelude::*;

use crate::error::{EplbError, Result};
use crate::evaluate::Claim;
use crate::placement::{DeepSeekFlat, Placement, Tables};
use crate::problem::{LayerBudget, Problem};
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// How to run a strategy over the layers: the one place for layer parallelism and for what
/// every layer may spend (argmin's executor is the model). The runner turns the per-layer
/// settings into each layer's [`LayerBudget`] when the layer starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SolveOptions {
    /// Worker threads over the layers: `None` uses rayon's global pool (all cores), `Some(1)`
    /// runs on the calling thread, `Some(n)` the calling thread and `n - 1` helpers, woken
    /// only when the layers left are worth it (see [`solve`]). The answer does not depend on
    /// it.
    pub threads: Option<usize>,
    /// Wall-time limit per layer for the strategies that search (`exact`, `ilp`), counted
    /// from the layer's start; `None`: the strategy's default (10 s for those two).
    pub time_limit: Option<Duration>,
    /// Relative optimality gap at which an exact method may stop; `None`: prove optimality.
    pub mip_gap: Option<f64>,
    /// Threads an exact method may use inside one layer; `None`: its default.
    pub threads_per_layer: Option<usize>,
    /// The greedy engines' kernels (the vector kernels where the processor has them, or the
    /// portable code); the answer does not depend on it.
    pub kernels: Kernels,
}

impl SolveOptions {
    /// Default options: all cores over the layers, the strategies' own limits.
    pub const fn new() -> Self {
        Self {
            threads: None,
            time_limit: None,
            mip_gap: None,
            threads_per_layer: None,
            kernels: Kernels::Auto,
        }
    }

    /// The options with `threads` worker threads over the layers.
    #[must_use]
    pub const fn with_threads(self, threads: Option<usize>) -> Self {
        Self { threads, ..self }
    }

    /// The options with a wall-time limit per layer.
    #[must_use]
    pub const fn with_time_limit(self, time_limit: Option<Duration>) -> Self {
        Self { time_limit, ..self }
    }

    /// The options with a relative optimality gap.
    #[must_use]
    pub const fn with_mip_gap(self, mip_gap: Option<f64>) -> Self {
        Self { mip_gap, ..self }
    }

    /// The options with a thread budget per layer.
    #[must_use]
    pub const fn with_threads_per_layer(self, threads: Option<usize>) -> Self {
        Self {
            threads_per_layer: threads,
            ..self
        }
    }

    /// The options with the greedy engines running `kernels`.
    #[must_use]
    pub const fn with_kernels(self, kernels: Kernels) -> Self {
        Self { kernels, ..self }
    }

    /// The budget of a layer starting at `start`.
    fn budget(&self, start: Instant) -> LayerBudget {
        LayerBudget::new()
            // A limit beyond what an `Instant` can hold is as good as none: the far end of
            // what it can hold (never `None`, which would mean the strategy's default).
            .with_deadline(self.time_limit.map(|t| far_deadline(start, t)))
            .with_gap(self.mip_gap)
            .with_threads(self.threads_per_layer)
            .with_kernels(self.kernels)
    }
}

/// `start + limit`, or the latest instant this platform represents below it.
fn far_deadline(start: Instant, limit: Duration) -> Instant {
    let mut limit = limit;
    loop {
        match start.checked_add(limit) {
            Some(deadline) => return deadline,
            None => limit /= 2,
        }
    }
}

/// What the runner recorded for one layer besides the placement.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct LayerOutcome {
    /// The strategy's claim.
    pub status: SolveStatus,
    /// The strategy's own lower bound, if it proved one.
    pub lower_bound: Option<f64>,
    /// Wall time of the layer's solve.
    pub elapsed: Duration,
}

/// A strategy's answer for a whole problem.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Solution {
    /// The strategy's name.
    pub strategy: String,
    /// The multi-layer placement.
    pub placement: Placement,
    /// One entry per layer.
    pub layers: Vec<LayerOutcome>,
    /// Wall time of the whole solve.
    pub elapsed: Duration,
}

impl LayerOutcome {
    /// The strategy's claim on this layer.
    pub fn claim(&self) -> Claim {
        Claim {
            status: self.status,
            bound: self.lower_bound,
        }
    }
}

impl Solution {
    /// The strategy's per-layer claims, for [`evaluate`](crate::evaluate()) to judge.
    pub fn claims(&self) -> Vec<Claim> {
        self.layers.iter().map(LayerOutcome::claim).collect()
    }
}

/// Solves every layer of `problem` with `strategy`.
///
/// Layers are independent and solved in parallel; results are collected in layer order, so the
/// output is the same for every thread count. With `threads: Some(n)` the calling thread
/// solves the first layer alone and wakes `n - 1` helper threads only if that layer's time,
/// times the layers left, reaches a millisecond: waking a thread costs more than a short solve
/// (`greedy` over a whole trace), so more threads are not slower than one there.
///
/// # Errors
/// The first (lowest-layer) error a strategy returned, as [`EplbError::StrategyFailed`] (its
/// source is the strategy's error); [`EplbError::ThreadPool`] when the worker threads cannot
/// start.
pub fn solve(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    options: &SolveOptions,
) -> Result<Solution> {
    solve_observed(problem, strategy, options, &|_| {})
}

/// Solves every layer of `problem` into DeepSeek's tables: with [`Tables::All`], the three
/// (`phy2log`, `log2phy`, `logcnt`) that `eplb.py`'s `rebalance_experts` returns; with
/// [`Tables::Phy2log`], `phy2log` alone (what vLLM's `rebalance_experts` returns). Through the
/// strategy's batched path when it has one ([`PlacementStrategy::solve_batch`]: `greedy` on
/// one thread, or on any number for problems of up to 24,576 slots over all layers), else [`solve`] then [`Placement::to_deepseek_tables`]. The tables are the
/// same either way, and `phy2log` is the same for both requests.
///
/// ```
/// use eplb::{strategies::Greedy, Cluster, Loads, PolicyChoice, Problem, SolveOptions, Tables};
/// let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global)?;
/// let options = SolveOptions::new();
/// let tables = eplb::runner::solve_tables(&problem, &Greedy, &options, Tables::All)?;
/// // Expert 0 gets both extra slots (8 → 4 → 2.67); GPU 0 holds slots 0-2, GPU 1 slots 3-5.
/// assert_eq!(tables.phy2log, vec![0, 0, 2, 0, 3, 1]);
/// assert_eq!(tables.logcnt, vec![3, 1, 1, 1]);
/// assert_eq!(tables.log2phy, vec![0, 3, 1, 5, -1, -1, 2, -1, -1, 4, -1, -1]);
/// let only = eplb::runner::solve_tables(&problem, &Greedy, &options, Tables::Phy2log)?;
/// assert_eq!(only.phy2log, tables.phy2log);
/// assert!(only.log2phy.is_empty() && only.logcnt.is_empty());
/// # Ok::<(), eplb::EplbError>(())
/// ```
///
/// # Errors
/// As [`solve`], and [`EplbError::InvalidPlacement`] when a strategy's placement holds an
/// expert id out of range.
pub fn solve_tables(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    options: &SolveOptions,
    tables: Tables,
) -> Result<DeepSeekFlat> {
    match strategy.solve_batch(problem, options, tables) {
        Some(flat) => flat,
        None => solve(problem, strategy, options)?
            .placement
            .to_deepseek_tables(tables),
    }
}

/// [`solve`], calling `on_layer_done(layer)` as each layer finishes (from worker threads, in
/// completion order) — for progress bars.
///
/// # Errors
/// As [`solve`].
pub fn solve_observed(
    problem: &Problem,
    strategy: &dyn PlacementStrategy,
    options: &SolveOptions,
    on_layer_done: &(dyn Fn(usize) + Sync),
) -> Result<Solution> {
    let start = Instant::now();
    let one = |layer: usize| -> Result<(LayerSolution, Duration)> {
        let t = Instant::now();
        let solution = strategy
            .solve_layer(&problem.layer(layer).with_budget(options.budget(t)))
            .map_err(|e| EplbError::StrategyFailed {
                strategy: strategy.name().to_string(),
                layer,
                source: Box::new(e),
            })?;
        on_layer_done(layer);
        Ok((solution, t.elapsed()))
    };
    let layers = problem.num_layers();
    let results: Vec<Result<(LayerSolution, Duration)>> = match options.threads {
        Some(1) => (0..layers).map(one).collect(),
        None => (0..layers).into_par_iter().map(one).collect(),
        Some(0) => pool_of(0)?.install(|| (0..layers).into_par_iter().map(one).collect()),
        Some(n) => shared_layers(layers, n, &one)?,
    };
    let mut placements = Vec::with_capacity(layers);
    let mut outcomes = Vec::with_capacity(layers);
    for result in results {
        let (solution, elapsed) = result?;
        placements.push(solution.placement);
        outcomes.push(LayerOutcome {
            status: solution.status,
            lower_bound: solution.lower_bound,
            elapsed,
        });
    }
    Ok(Solution {
        strategy: strategy.name().to_string(),
        placement: Placement::new(problem.num_experts(), placements),
        layers: outcomes,
        elapsed: start.elapsed(),
    })
}

/// Remaining work (estimated from the first layer's time) below which helper threads are not
/// woken: waking a sleeping thread and waiting for it at the end costs tens of microseconds on
/// an idle machine and up to a scheduler time slice (milliseconds) on a busy one, more than
/// `greedy` spends on a whole 58-layer trace.
const HANDOFF_WORTH: Duration = Duration::from_millis(1);

/// Every layer's `one(layer)`, in layer order, with `threads` threads: the calling thread and
/// `threads - 1` helpers of a kept pool take the next unsolved layer from a shared counter
/// until none is left (self-scheduling: a slow or late helper only takes fewer layers).
///
/// The calling thread solves the first layer alone; helpers are woken only when that layer's
/// time, times the layers left, reaches [`HANDOFF_WORTH`]. So a short solve never waits for a
/// thread to wake up, and more threads are never much slower than one. The schedule depends
/// on timing, the results do not: each layer's result is its own and they are returned in
/// layer order.
fn shared_layers<T: Send>(
    layers: usize,
    threads: usize,
    one: &(dyn Fn(usize) -> T + Sync),
) -> Result<Vec<T>> {
    if layers == 0 {
        return Ok(Vec::new());
    }
    let start = Instant::now();
    let first = one(0);
    let left = u32::try_from(layers - 1).unwrap_or(u32::MAX);
    if start.elapsed().saturating_mul(left) < HANDOFF_WORTH {
        return Ok(std::iter::once(first).chain((1..layers).map(one)).collect());
    }
    let helpers = pool_of(threads - 1)?;
    let next = AtomicUsize::new(1);
    let solved = Mutex::new(vec![(0, first)]);
    let work = || {
        let mut mine = Vec::new();
        loop {
            let layer = next.fetch_add(1, Ordering::Relaxed);
            if layer >= layers {
                break;
            }
            mine.push((layer, one(layer)));
        }
        solved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .append(&mut mine);
    };
    helpers.in_place_scope(|scope| {
        for _ in 1..threads {
            scope.spawn(|_| work());
        }
        work();
    });
    let mut solved = solved.into_inner().unwrap_or_else(PoisonError::into_inner);
    solved.sort_unstable_by_key(|&(layer, _)| layer);
    Ok(solved.into_iter().map(|(_, result)| result).collect())
}

/// The worker pool of `threads` threads, built once per thread count and kept for the
/// process (as rayon's global pool is): building one costs more than solving 58 layers with
/// `greedy`, so a rebalance loop that solves with `--threads T` must not pay it every call.
/// A worker pool and its thread count.
type SizedPool = (usize, Arc<rayon::ThreadPool>);

fn pool_of(threads: usize) -> Result<Arc<rayon::ThreadPool>> {
    static POOLS: OnceLock<Mutex<Vec<SizedPool>>> = OnceLock::new();
    let mut pools = POOLS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some((_, pool)) = pools.iter().find(|(n, _)| *n == threads) {
        return Ok(Arc::clone(pool));
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|source| EplbError::ThreadPool { threads, source })?;
    let pool = Arc::new(pool);
    pools.push((threads, Arc::clone(&pool)));
    Ok(pool)
}
