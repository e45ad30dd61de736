//! Live rebalancing: from the placement the GPUs hold now to a better one for new loads, at
//! the fewest weight transfers.
//!
//! The terms (used the same way in code and docs):
//!
//! - The **current** placement is what the GPUs hold now; the **new** one is what a
//!   rebalance produces for new loads.
//! - A **transfer** is a replica of expert `e` on GPU `g` in the new placement when `g` held
//!   no replica of `e` in the current one: its weights must cross the network. A slot change
//!   inside a GPU that already holds `e` is a **local copy**. A transfer is **cross-node**
//!   when no GPU of the destination's node held `e`.
//! - Relabelling GPUs (any permutation under the global policy; nodes, and GPUs within a
//!   node, under the hierarchical one) and slots within a GPU never changes any GPU's load:
//!   [`align`] finds the fewest-transfer relabelling exactly.
//!
//! The pieces:
//!
//! - [`align()`]: the zero-regret relabelling of any new placement (exact assignment problems,
//!   Kuhn–Munkres from the `pathfinding` crate, with a tie-break for fewer cross-node
//!   transfers).
//! - [`count_transfers`]: transfers and cross-node transfers between two placements.
//! - [`TransferPlan`]: the moves of every layer, sources on the destination's node when one
//!   exists, scheduled in the fewest rounds (each GPU sends at most one and receives at most
//!   one expert per round: König's bound, reached by a bipartite edge colouring of the
//!   transfer graph built with `petgraph`).
//! - [`rebalance()`]: minimises the max GPU load under a move budget (per layer or in bytes over
//!   all layers), starting from the current placement; never worse than keeping it, and with
//!   an unlimited budget no worse than a fresh placement followed by [`align()`].
//!
//! ```
//! use eplb::live::{align, count_transfers, rebalance, RebalanceOptions, MoveBudget, TransferPlan};
//! use eplb::{strategies, Cluster, Loads, Placement, PolicyChoice, Problem};
//!
//! // 4 experts on 2 GPUs x 3 slots; the loads drifted towards expert 3.
//! let current = Placement::from_phy2log(4, vec![vec![0, 0, 1, 2, 3, 3]])?;
//! let loads = Loads::from_rows(&[vec![1.0, 1.0, 1.0, 9.0]])?;
//! let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global)?;
//!
//! // At most one transfer per layer.
//! let options = RebalanceOptions::new(MoveBudget::PerLayer(1));
//! let refine = strategies::by_name("refine")?;
//! let result = rebalance(&problem, &current, Some(refine.as_ref()), &options)?;
//! let layer = &result.layers[0];
//! assert!(layer.count.transfers <= 1 && layer.new_max <= layer.old_max);
//!
//! // Any new placement can be relabelled to need fewer transfers, at the same GPU loads.
//! let fresh = Placement::from_phy2log(4, vec![vec![3, 3, 1, 0, 2, 0]])?;
//! let aligned = align(&problem, &current, &fresh)?;
//! let transfers = |p: &Placement| count_transfers(problem.cluster(), current.layer(0), p.layer(0)).transfers;
//! assert_eq!((transfers(&fresh), transfers(&aligned)), (4, 2));
//!
//! // The plan: which GPU sends what to whom, in rounds.
//! let plan = TransferPlan::new(&problem, &current, &aligned, eplb::live::DEFAULT_EXPERT_BYTES)?;
//! assert_eq!(plan.layers[0].rounds, plan.layers[0].rounds_lower_bound);
//! # Ok::<(), eplb::EplbError>(())
//! ```

mod align;
mod budget;
mod budget_bound;
mod current;
mod exact;
mod failed;
mod holdings;
mod plan;
mod rebalance;

pub use align::{align, align_layer, align_live};
pub use budget::{CurvePoint, SearchEffort};
pub use budget_bound::budgeted_lower_bound;
pub use current::CurrentPlacement;
pub use exact::ExactBudget;
pub use failed::{
    evaluate_live, place_on_live, LiveCluster, LiveGpus, LivePlacement, DEAD_SLOT_FILLER,
};
pub use holdings::{count_transfers, TransferCount};
pub use plan::{LayerPlan, Move, TransferPlan};
pub use rebalance::{
    rebalance, Choice, LayerObjective, LayerRebalance, MoveBudget, Rebalance, RebalanceOptions,
    DEFAULT_EXPERT_BYTES,
};

use crate::error::{EplbError, Result};
use crate::evaluate::{violations, Violation};
use crate::placement::Placement;
use crate::problem::Problem;

/// Checks that `current` is a feasible placement of `problem`'s shape (layers, experts,
/// slots, every expert present, the policy's group rules): the starting point of a rebalance.
///
/// # Errors
/// [`EplbError::InvalidPlacement`] naming the first problem and what would be valid.
pub fn check_current(problem: &Problem, current: &Placement) -> Result<()> {
    check_shape(problem, current, "the current placement")
}

/// Checks a placement against the problem: layer count, expert count, every constraint.
pub(crate) fn check_shape(problem: &Problem, placement: &Placement, what: &str) -> Result<()> {
    check_with(problem, placement, what, |_| true)
}

/// Checks a current placement some of whose GPUs failed: layer, expert and slot counts,
/// expert ids in range, every expert held somewhere (a newly failed GPU's replicas count:
/// they are reloaded from host memory; slots of GPUs dead in the placement hold a filler).
/// The group rules are not checked: a dead GPU's filler need not keep them, and the live
/// part is checked on the live cluster.
pub(crate) fn check_with_failed(
    problem: &Problem,
    placement: &Placement,
    what: &str,
) -> Result<()> {
    check_with(problem, placement, what, |v| {
        matches!(
            v,
            Violation::WrongSlotCount { .. }
                | Violation::ExpertOutOfRange { .. }
                | Violation::MissingExpert { .. }
        )
    })
}

/// Checks layer and expert counts, then the violations `relevant` keeps.
fn check_with(
    problem: &Problem,
    placement: &Placement,
    what: &str,
    relevant: impl Fn(&Violation) -> bool,
) -> Result<()> {
    if placement.num_layers() != problem.num_layers() {
        return Err(EplbError::InvalidPlacement(format!(
            "{what} has {} layers but the loads have {}: they must match",
            placement.num_layers(),
            problem.num_layers()
        )));
    }
    if placement.num_experts() != problem.num_experts() {
        return Err(EplbError::InvalidPlacement(format!(
            "{what} is for {} experts but the loads have {}",
            placement.num_experts(),
            problem.num_experts()
        )));
    }
    for layer in problem.layers() {
        if let Some(v) = violations(&layer, placement.layer(layer.index()))
            .into_iter()
            .find(|v| relevant(v))
        {
            return Err(EplbError::InvalidPlacement(format!(
                "{what}, layer {}: {v} (a {} placement of {} slots holding every expert is needed)",
                layer.index(),
                problem.policy(),
                problem.cluster().replicas
            )));
        }
    }
    Ok(())
}
