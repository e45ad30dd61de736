//! [`DistinctReplicas`]: any strategy, with no two replicas of one expert on one GPU.

use eplb_solvers::scenarios::{separate_copies, ScenarioGoal, SwapSearch};

use crate::error::{EplbError, Result};
use crate::objective::region_gpus;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};
use crate::strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// Wraps a strategy so that no GPU holds two replicas of one expert (vllm-ascend rejects such
/// expert tables).
///
/// The inner strategy's answer is kept when it is distinct already (then everything the inner
/// strategy claims stands, and greedy stays bit-exact with `eplb.py` on such layers).
/// Otherwise every surplus replica is swapped with a replica of another GPU (of the same node
/// under the hierarchical policy, so groups stay on their nodes) that separates both, the swap
/// leaving the two GPUs' larger load smallest; a replica no swap can separate (an expert with
/// more replicas than GPUs) is given to another expert instead
/// ([`separate_copies`]). A local search over distinct swaps then lowers the max load again
/// ([`SwapSearch`]). The answer is then a heuristic one (or still `time_limit` when the inner
/// search stopped at its limit); the inner strategy's lower bound is kept (a bound without the
/// constraint is a bound with it).
///
/// Distinct replicas need a GPU's slots to fit the experts it may hold: `S <= E` (global),
/// `S <= E / N` (hierarchical); otherwise the layer fails with
/// [`EplbError::DistinctReplicasImpossible`].
///
/// ```
/// use eplb::evaluate::{evaluate_with, Requirements};
/// use eplb::strategies::{by_name, DistinctReplicas};
/// use eplb::{solve, Cluster, Loads, PolicyChoice, Problem};
///
/// // One hot expert: greedy puts two of its replicas on one GPU.
/// let loads = Loads::from_rows(&[vec![90.0, 5.0, 3.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(8, 2), PolicyChoice::Global)?;
/// let distinct = Requirements::new().with_distinct_replicas(true);
/// let greedy = solve(&problem, by_name("greedy")?.as_ref(), &Default::default())?;
/// assert!(!evaluate_with(&problem, &greedy.placement, &[], distinct)?.is_feasible());
///
/// let strategy = DistinctReplicas::new(by_name("greedy")?);
/// let solution = solve(&problem, &strategy, &Default::default())?;
/// assert!(evaluate_with(&problem, &solution.placement, &[], distinct)?.is_feasible());
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone)]
pub struct DistinctReplicas<S> {
    inner: S,
    name: String,
    description: String,
}

impl<S: PlacementStrategy> DistinctReplicas<S> {
    /// `inner` with distinct replicas; named `<inner>+distinct`.
    pub fn new(inner: S) -> Self {
        let name = format!("{}+distinct", inner.name());
        let description = format!("{}, no two replicas of one expert on a GPU", inner.name());
        Self {
            inner,
            name,
            description,
        }
    }

    /// The wrapped strategy.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

/// Checks that a distinct placement of `layer` exists.
///
/// # Errors
/// [`EplbError::DistinctReplicasImpossible`] when a GPU has more slots than the experts it
/// may hold.
pub fn check_distinct_possible(layer: &LayerProblem<'_>) -> Result<()> {
    let cluster = layer.cluster();
    let experts = match layer.policy() {
        Policy::Global => layer.num_experts(),
        Policy::Hierarchical => layer.num_experts() / cluster.nodes,
    };
    if cluster.slots_per_gpu() > experts {
        return Err(EplbError::DistinctReplicasImpossible {
            slots_per_gpu: cluster.slots_per_gpu(),
            experts,
            policy: layer.policy(),
        });
    }
    Ok(())
}

impl<S: PlacementStrategy> PlacementStrategy for DistinctReplicas<S> {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.description
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        check_distinct_possible(layer)?;
        let solution = self.inner.solve_layer(layer)?;
        let per_gpu = layer.cluster().slots_per_gpu();
        let mut slots = solution.placement.phy2log().to_vec();
        let separation = separate_copies(layer.loads(), &mut slots, per_gpu, region_gpus(layer))?;
        if separation.swaps + separation.recounts == 0 {
            return Ok(solution);
        }
        let weights = [layer.loads().to_vec()];
        SwapSearch::new(&weights, per_gpu, ScenarioGoal::SumOfPeaks)
            .with_regions_of(region_gpus(layer))
            .distinct(true)
            .improve(&mut slots)?;
        let placement = LayerPlacement::from_phy2log(slots);
        // An `optimal` or gap claim was about the inner answer; a stop at the time limit
        // still says the answer depends on where the search stopped.
        let status = match solution.status {
            SolveStatus::TimeLimit => SolveStatus::TimeLimit,
            _ => SolveStatus::Heuristic,
        };
        Ok(LayerSolution {
            placement,
            status,
            lower_bound: solution.lower_bound,
        })
    }
}
