//! The [`PlacementStrategy`] trait: what every placement algorithm implements.
//!
//! A strategy solves one layer at a time; the [runner](crate::runner) fans layers out over
//! threads, times them and assembles the multi-layer [`Placement`](crate::Placement). Scoring
//! is not the strategy's business: the [evaluator](mod@crate::evaluate) judges every result.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::placement::{DeepSeekFlat, LayerPlacement, Tables};
use crate::problem::{LayerProblem, Problem};
use crate::runner::SolveOptions;

/// How much a strategy knows about the quality of its answer, and why an exact search
/// stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SolveStatus {
    /// A heuristic answer: no optimality claim.
    Heuristic,
    /// Proven optimal for the strategy's model of the problem: the lower bound meets the load.
    Optimal,
    /// An exact method stopped because its answer is within the requested relative gap
    /// (`--mip-gap`) of its lower bound; not proven optimal.
    GapReached,
    /// An exact method stopped at its time limit (or another limit, such as a precision it
    /// cannot reach): the answer is its best incumbent and the bound the best it proved.
    TimeLimit,
}

impl std::fmt::Display for SolveStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            SolveStatus::Heuristic => "heuristic",
            SolveStatus::Optimal => "optimal",
            SolveStatus::GapReached => "gap_reached",
            SolveStatus::TimeLimit => "time_limit",
        })
    }
}

/// A strategy's answer for one layer.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerSolution {
    /// The placement of the layer.
    pub placement: LayerPlacement,
    /// What the strategy claims about it.
    pub status: SolveStatus,
    /// A lower bound on the optimal maximum GPU load the strategy proved, if any. Must never
    /// exceed the true optimum.
    pub lower_bound: Option<f64>,
}

impl LayerSolution {
    /// A heuristic answer without a bound.
    pub fn heuristic(placement: LayerPlacement) -> Self {
        Self {
            placement,
            status: SolveStatus::Heuristic,
            lower_bound: None,
        }
    }
}

/// A placement algorithm. Object-safe, so strategies can be chosen at run time:
///
/// ```
/// use eplb::{strategies, Cluster, LayerPlacement, LayerProblem, LayerSolution, Loads,
///            PlacementStrategy, PolicyChoice, Problem, Result};
///
/// /// Round-robin: expert `s % E` in slot `s`. Ignores loads; a baseline for research.
/// struct RoundRobin;
///
/// impl PlacementStrategy for RoundRobin {
///     fn name(&self) -> &str { "round-robin" }
///     fn description(&self) -> &str { "expert s % E in slot s" }
///     fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
///         let e = layer.num_experts();
///         let phy2log = (0..layer.cluster().replicas).map(|s| s % e).collect();
///         Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(phy2log)))
///     }
/// }
///
/// let mut all: Vec<Box<dyn PlacementStrategy>> = strategies::all();
/// all.push(Box::new(RoundRobin));
/// let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 2.0]]).unwrap();
/// let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global).unwrap();
/// for s in &all {
///     let solution = eplb::solve(&problem, s.as_ref(), &Default::default()).unwrap();
///     let report = eplb::evaluate(&problem, &solution.placement, &solution.claims()).unwrap();
///     assert!(report.is_feasible(), "{} made an infeasible placement", s.name());
/// }
/// ```
pub trait PlacementStrategy: Send + Sync {
    /// A short, stable identifier (used on the command line).
    fn name(&self) -> &str;

    /// One line saying what the strategy does.
    fn description(&self) -> &str;

    /// Places one layer. Must be deterministic: the same layer gives the same answer.
    ///
    /// # Errors
    /// Whatever prevents the strategy from answering (an engine failure, a limit reached before
    /// any placement was found).
    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution>;

    /// Solves every layer of `problem` in one call, straight into DeepSeek's `tables`,
    /// for a strategy that has such a batched path (it may share work and buffers across
    /// layers); `None`, the default, lets [`solve_tables`](crate::runner::solve_tables)
    /// solve layer by layer with [`solve_layer`](Self::solve_layer). A batched answer must
    /// equal the layer-by-layer one, table for table.
    ///
    /// ```
    /// use eplb::{strategies::Greedy, Cluster, Loads, PlacementStrategy, PolicyChoice, Problem, Tables};
    /// let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 2.0], vec![1.0, 1.0, 9.0, 1.0]])?;
    /// let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global)?;
    /// let options = eplb::SolveOptions::new().with_threads(Some(1));
    /// let batched = Greedy.solve_batch(&problem, &options, Tables::All).expect("greedy batches")?;
    /// let by_layer = eplb::solve(&problem, &Greedy, &options)?.placement.to_deepseek_flat()?;
    /// assert_eq!(batched, by_layer);
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    ///
    /// # Errors
    /// As [`solve_tables`](crate::runner::solve_tables).
    fn solve_batch(
        &self,
        problem: &Problem,
        options: &SolveOptions,
        tables: Tables,
    ) -> Option<Result<DeepSeekFlat>> {
        let _ = (problem, options, tables);
        None
    }
}

/// Implements [`PlacementStrategy`] for a pointer type by forwarding to the strategy it
/// points to.
macro_rules! forward_strategy {
    ($(#[$doc:meta])* $pointer:ty) => {
        $(#[$doc])*
        impl<T: PlacementStrategy + ?Sized> PlacementStrategy for $pointer {
            fn name(&self) -> &str {
                (**self).name()
            }

            fn description(&self) -> &str {
                (**self).description()
            }

            fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
                (**self).solve_layer(layer)
            }

            fn solve_batch(
                &self,
                problem: &Problem,
                options: &SolveOptions,
                tables: Tables,
            ) -> Option<Result<DeepSeekFlat>> {
                (**self).solve_batch(problem, options, tables)
            }
        }
    };
}

forward_strategy!(
    /// A borrowed strategy is a strategy, so a `&dyn PlacementStrategy` can be wrapped (e.g.
    /// in [`DistinctReplicas`](crate::strategies::DistinctReplicas)).
    &T
);

forward_strategy!(
    /// A boxed strategy is a strategy, so run-time choices (e.g. [`by_name`]) plug into
    /// generic compositions such as [`Hierarchical`]:
    ///
    /// ```
    /// use eplb::strategies::{by_name, BalancedSplit, Hierarchical};
    /// let leaf = by_name("refine")?;
    /// let h = Hierarchical::two_level(BalancedSplit::default(), leaf);
    /// # let _ = h;
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    ///
    /// [`by_name`]: crate::strategies::by_name
    /// [`Hierarchical`]: crate::strategies::Hierarchical
    Box<T>
);

forward_strategy!(
    /// A shared strategy is a strategy, so one strategy held in an [`Arc`](std::sync::Arc)
    /// serves several owners (e.g. a serving loop's threads) without a wrapper:
    ///
    /// ```
    /// use std::sync::Arc;
    /// use eplb::strategies::Refine;
    /// use eplb::{Cluster, Loads, PlacementStrategy, PolicyChoice, Problem};
    /// let shared: Arc<dyn PlacementStrategy> = Arc::new(Refine::default());
    /// let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 2.0]])?;
    /// let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global)?;
    /// let solution = eplb::solve(&problem, &shared, &Default::default())?;
    /// assert_eq!(solution.placement.layers().len(), 1);
    /// # Ok::<(), eplb::EplbError>(())
    /// ```
    std::sync::Arc<T>
);
