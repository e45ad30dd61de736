//! The certified adapter: an [exact engine](eplb_solvers::packing::ExactEngine) as a
//! [`PlacementStrategy`], with seeding, the never-worse rule and the status mapping done once
//! for every engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use eplb_solvers::packing::{
    ExactEngine, PackingProblem, Regions, StopReason, WithDeadline, WithGap, WithStart, WithThreads,
};

use crate::bounds::proven_lower_bound;
use crate::error::Result;
use crate::evaluate::max_gpu_load;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
use crate::strategies::Greedy;
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// An exact engine `E` as a placement strategy.
///
/// For every layer it
/// 1. runs the seed strategy (if any, on layers with more slots than the seed threshold) and
///    hands its placement to the engine as the starting solution;
/// 2. builds the [`PackingProblem`] (GPUs are bins, slots per GPU the bin size, experts the
///    items; under the hierarchical policy nodes are regions and expert groups are groups),
///    with the [combinatorial lower bound](crate::bounds), lowered by its rounding error
///    ([`proven_lower_bound`]), as its known bound;
/// 3. gives the engine the layer's [budget](crate::LayerBudget), set by the runner from its
///    [`SolveOptions`](crate::SolveOptions): the deadline (without one,
///    [`Certified::DEFAULT_TIME_LIMIT`] from the start of the layer), the gap and the threads;
/// 4. applies the **never-worse rule**: the answer is never worse than [`Greedy`]'s nor the
///    seed's, as judged by the evaluator's [`max_gpu_load`];
/// 5. maps the engine's [`StopReason`] to a [`SolveStatus`] (`Optimal`, `GapReached`,
///    `TimeLimit`), with the engine's lower bound (never above the returned load); a load that
///    meets the bound is `Optimal` whatever stopped the engine, so `TimeLimit` never comes
///    with a zero gap.
///
/// # Complexity
/// The seed's and greedy's cost plus the engine's, which is exponential in the worst case and
/// bounded by the deadline.
#[derive(Clone)]
pub struct Certified<E> {
    name: &'static str,
    description: &'static str,
    engine: E,
    seed: Option<Arc<dyn PlacementStrategy>>,
    seed_above_slots: usize,
}

impl<E> std::fmt::Debug for Certified<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Certified")
            .field("name", &self.name)
            .field("seed", &self.seed.as_ref().map(|s| s.name().to_string()))
            .field("seed_above_slots", &self.seed_above_slots)
            .finish_non_exhaustive()
    }
}

impl<E> Certified<E> {
    /// The time limit per layer when none is given: 10 s.
    pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(10);

    /// `engine` as a strategy called `name`, without a seed and with default options.
    pub fn from_engine(name: &'static str, description: &'static str, engine: E) -> Self {
        Self {
            name,
            description,
            engine,
            seed: None,
            seed_above_slots: 0,
        }
    }

    /// The same strategy seeded on every layer by `seed` (any strategy): its placement is the
    /// engine's starting solution, and the answer is never worse than it.
    #[must_use]
    pub fn with_seed(self, seed: impl PlacementStrategy + 'static) -> Self {
        self.with_seed_above(seed, 0)
    }

    /// The same strategy seeded by `seed` on layers with more than `slots` slots only.
    #[must_use]
    pub fn with_seed_above(self, seed: impl PlacementStrategy + 'static, slots: usize) -> Self {
        Self {
            seed: Some(Arc::new(seed)),
            seed_above_slots: slots,
            ..self
        }
    }

    /// The engine.
    pub fn engine(&self) -> &E {
        &self.engine
    }

    /// The same strategy on another engine (its limits and start are still set per layer).
    #[must_use]
    pub fn with_engine(self, engine: E) -> Self {
        Self { engine, ..self }
    }
}

impl<E> PlacementStrategy for Certified<E>
where
    E: ExactEngine + WithDeadline + WithGap + WithStart + WithThreads + Clone + Send + Sync,
{
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        self.description
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let started = Instant::now();
        let budget = layer.budget();
        let deadline = budget
            .deadline
            .or_else(|| started.checked_add(Self::DEFAULT_TIME_LIMIT));
        let (gap, threads) = (budget.gap, budget.threads);
        let c = layer.cluster();
        let seed = match &self.seed {
            Some(s) if c.replicas > self.seed_above_slots => Some(s.solve_layer(layer)?.placement),
            _ => None,
        };
        let mut problem = PackingProblem::new(layer.loads().to_vec(), c.gpus, c.slots_per_gpu())?
            .with_lower_bound(proven_lower_bound(layer))?;
        if layer.policy() == Policy::Hierarchical {
            problem = problem.with_regions(Regions {
                regions: c.nodes,
                group_size: layer.group_size(),
            })?;
        }
        let mut engine = self
            .engine
            .clone()
            .with_deadline(deadline)
            .with_threads(threads);
        if let Some(gap) = gap {
            engine = engine.with_gap(gap);
        }
        if let Some(s) = &seed {
            engine = engine.with_start(s.phy2log().to_vec());
        }
        let packing = engine.solve(&problem)?;
        let mut placement = LayerPlacement::from_phy2log(packing.slots);
        let mut load = max_gpu_load(layer, &placement);
        // The never-worse rule, in the evaluator's arithmetic.
        let greedy = Greedy.solve_layer(layer)?.placement;
        for fallback in seed.into_iter().chain([greedy]) {
            let fallback_load = max_gpu_load(layer, &fallback);
            if fallback_load < load {
                (placement, load) = (fallback, fallback_load);
            }
        }
        // A fallback that meets the engine's proved bound is optimal: a limit never comes with
        // a zero gap.
        let status = match packing.stop {
            StopReason::Optimal => SolveStatus::Optimal,
            _ if load <= packing.lower_bound => SolveStatus::Optimal,
            StopReason::GapReached => SolveStatus::GapReached,
            _ => SolveStatus::TimeLimit,
        };
        Ok(LayerSolution {
            placement,
            status,
            lower_bound: Some(packing.lower_bound.min(load)),
        })
    }
}
