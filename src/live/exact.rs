//! The exact budgeted mode of [`rebalance`](super::rebalance()): per layer, the budgeted MILP
//! ([`BudgetedMilp`]) started from the heuristic's answer.

use std::time::{Duration, Instant};

use eplb_solvers::milp::{Backend, BudgetedMilp};

use super::holdings::node_of;
use crate::error::Result;
use crate::placement::LayerPlacement;
use crate::problem::{LayerProblem, Policy};

/// Settings of the exact budgeted mode ([`RebalanceOptions::with_exact`](super::RebalanceOptions::with_exact)).
///
/// Per layer, a MILP minimises the max GPU load over copy counts and copy positions with at
/// most the layer's budget of transfers (replicas on a GPU that did not hold their expert),
/// started from the heuristic's answer, so it is never worse. Its answer's max load is the
/// evaluator's; the layer's lower bound is the budgeted problem's
/// ([`budgeted_lower_bound`](super::budgeted_lower_bound): at least the combinatorial bound,
/// stronger when the budget binds), and a layer is proven optimal only when its max load
/// meets that bound. With a byte budget over all layers, each layer's budget is the transfers
/// the allocation gave it. The MILP searches copy counts within 2 of the start's (a
/// neighbourhood: no claim rests on it, and its own dual bound is not reported). The pure-Rust backend
/// handles small layers only; DeepSeek-size layers need HiGHS (cargo feature `highs`).
///
/// ```
/// use eplb::live::{rebalance, ExactBudget, MoveBudget, RebalanceOptions};
/// use eplb::{Cluster, Loads, Placement, PolicyChoice, Problem};
/// // Expert 0 is hot and alone on GPU 0; one transfer may give it a second replica.
/// let loads = Loads::from_rows(&[vec![6.0, 2.0, 2.0]])?;
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global)?;
/// let current = Placement::from_phy2log(3, vec![vec![0, 1, 2, 2]])?;
/// let options = RebalanceOptions::new(MoveBudget::PerLayer(1)).with_exact(ExactBudget::default());
/// let result = rebalance(&problem, &current, None, &options)?;
/// let layer = &result.layers[0];
/// assert_eq!((layer.new_max, layer.count.transfers, layer.optimal), (5.0, 1, true));
/// # Ok::<(), eplb::EplbError>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
#[non_exhaustive]
pub struct ExactBudget {
    /// The MILP backend.
    pub backend: Backend,
    /// Time limit per layer (`None`: none).
    pub time_limit: Option<Duration>,
    /// Relative gap at which the MILP solver may stop (an effort setting: no claim uses it).
    pub gap: Option<f64>,
}

impl ExactBudget {
    /// The settings with a time limit per layer.
    #[must_use]
    pub fn with_time_limit(self, time_limit: Option<Duration>) -> Self {
        Self { time_limit, ..self }
    }

    /// The settings with a MILP gap.
    #[must_use]
    pub fn with_gap(self, gap: Option<f64>) -> Self {
        Self { gap, ..self }
    }
}

/// A placement of `layer` with a lower max load than `start`'s within `budget` transfers from
/// `current`, if the MILP finds one (`None` otherwise). `start` must be feasible (and distinct
/// with `distinct`).
pub(crate) fn improve_layer(
    layer: &LayerProblem<'_>,
    current: &LayerPlacement,
    start: &LayerPlacement,
    budget: usize,
    distinct: bool,
    settings: &ExactBudget,
) -> Result<Option<LayerPlacement>> {
    let cluster = layer.cluster();
    let (experts, s) = (layer.num_experts(), cluster.slots_per_gpu());
    let mut held = vec![vec![false; experts]; cluster.gpus];
    for (slot, &e) in current.phy2log().iter().enumerate() {
        held[slot / s][e] = true;
    }
    // Under the hierarchical policy every expert stays on the node its group has in `start`.
    let regions: Option<Vec<usize>> = (layer.policy() == Policy::Hierarchical).then(|| {
        let mut node = vec![0; experts];
        for (slot, &e) in start.phy2log().iter().enumerate() {
            node[e] = node_of(cluster, slot / s);
        }
        node
    });
    let deadline = settings.time_limit.map(|t| Instant::now() + t);
    let found = BudgetedMilp::new(settings.backend)
        .with_deadline(deadline)
        .with_gap(settings.gap)
        .solve(
            layer.loads(),
            start.phy2log(),
            &held,
            s,
            budget,
            regions.as_deref(),
            distinct,
        )?;
    Ok(found
        .improved
        .then(|| LayerPlacement::from_phy2log(found.slots)))
}
