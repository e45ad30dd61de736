//! The ILP-exact strategy: replica counts and assignment chosen together by a MILP.

use std::time::Instant;

use eplb_solvers::milp::{self, Backend, MilpOptions, PackingProblem, Regions};

use crate::bounds::lower_bounds;
use crate::error::Result;
use crate::evaluate::max_gpu_load;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
use crate::strategies::Exact;
use crate::strategies::{Refine, StrategyOptions};
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// Exact placement by mixed-integer linear programming (the model is
/// [`eplb_solvers::milp`]'s replicated min-max packing).
///
/// Unlike [greedy](crate::strategies::Greedy), which fixes the replica counts before packing, the model chooses
/// the number of replicas of every expert *and* their GPUs together, under either policy
/// (hierarchical: whole groups per node, `G / N` per node, replicas on their group's node).
/// [Refine](Refine)'s placement (never worse than greedy's) is the starting incumbent, so the
/// answer is never worse than greedy's.
///
/// How the engine solves it: small layers by a pattern model (identical GPUs aggregated)
/// and binary search over the max load; the hierarchical policy by decomposition over the
/// group-to-node splits, each node an independent global problem, with a bound valid over all
/// splits; large layers by the assignment model (see [`eplb_solvers::milp`]).
///
/// The result is `optimal` only when proven; when it stops at the time limit or at the
/// requested gap it is `time_limit`, with the best placement found and the best lower bound
/// proved (the solver's bound combined with the [combinatorial bounds](crate::bounds)).
///
/// The time limit (default [`Exact::DEFAULT_TIME_LIMIT`] per layer) covers the whole layer:
/// the seed, the bounds, building the models and solving them.
///
/// Backends: HiGHS with the cargo feature `highs` (the default then), otherwise good_lp's
/// pure-Rust `microlp`, which proves small layers (the `eplb.py` README example) but runs
/// the assignment model of large layers far more slowly than HiGHS.
///
/// ```
/// use eplb::{strategies::Ilp, Cluster, Loads, PolicyChoice, Problem, SolveStatus};
/// // Greedy reaches 4.5 here (it replicates a 3); the optimum replicates the 2.
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
/// let solution = eplb::solve(&problem, &Ilp::default(), &Default::default()).unwrap();
/// assert_eq!(solution.layers[0].status, SolveStatus::Optimal);
/// let report = eplb::evaluate(&problem, &solution.placement, &solution.claims()).unwrap();
/// assert_eq!(report.layers[0].max_load, 4.0);
/// assert_eq!(report.layers[0].gap, 0.0);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Ilp {
    options: StrategyOptions,
    backend: Backend,
}

impl Ilp {
    /// The strategy with `options` (time limit and gap per layer, solver threads) on the
    /// default backend.
    pub fn new(options: StrategyOptions) -> Self {
        Self {
            options,
            backend: Backend::default(),
        }
    }

    /// The same strategy on another backend.
    #[must_use]
    pub fn with_backend(self, backend: Backend) -> Self {
        Self { backend, ..self }
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.backend
    }
}

impl PlacementStrategy for Ilp {
    fn name(&self) -> &str {
        "ilp"
    }

    fn description(&self) -> &str {
        "exact MILP (replica counts and assignment together), certified: optimal when proven, else best placement and dual bound at the time limit"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        // The limit covers everything: the seed, the bounds, the model and the answer.
        let started = Instant::now();
        let limit = self.options.time_limit.unwrap_or(Exact::DEFAULT_TIME_LIMIT);
        let seed = Refine::default().solve_layer(layer)?;
        let c = layer.cluster();
        let experts = layer.num_experts();
        let slots = c.slots_per_gpu();
        let mut problem = PackingProblem::new(layer.loads().to_vec(), c.gpus, slots)
            .with_lower_bound(lower_bounds(layer).best());
        if layer.policy() == Policy::Hierarchical {
            problem = problem.with_regions(Regions {
                regions: c.nodes,
                group_size: layer.group_size(),
            });
        }
        let mut incumbent = vec![vec![0usize; c.gpus]; experts];
        for (slot, &e) in seed.placement.phy2log().iter().enumerate() {
            incumbent[e][slot / slots] += 1;
        }
        let options = MilpOptions {
            time_limit: Some(limit.saturating_sub(started.elapsed())),
            mip_gap: self.options.mip_gap,
            threads: self.options.threads,
        };
        let outcome = milp::solve(&problem, &incumbent, self.backend, &options)?;
        let mut phy2log = Vec::with_capacity(c.replicas);
        for gpu in 0..c.gpus {
            for (e, copies) in outcome.copies.iter().enumerate() {
                phy2log.extend(std::iter::repeat_n(e, copies[gpu]));
            }
        }
        let mut placement = LayerPlacement::from_phy2log(phy2log);
        let mut max_load = max_gpu_load(layer, &placement);
        // The engine never returns worse than its incumbent in its own arithmetic; summing
        // in the evaluator's order can differ by an ulp, and the seed (never worse than
        // greedy) must never win.
        let seed_load = max_gpu_load(layer, &seed.placement);
        if seed_load < max_load {
            placement = seed.placement;
            max_load = seed_load;
        }
        let (status, lower_bound) = if outcome.proven_optimal {
            (SolveStatus::Optimal, Some(max_load))
        } else {
            (
                SolveStatus::TimeLimit,
                outcome.dual_bound.map(|b| b.min(max_load)),
            )
        };
        Ok(LayerSolution {
            placement,
            status,
            lower_bound,
        })
    }
}
