//! The built-in strategies and the [`Registry`] of constructors the command line, `compare` and
//! sweeps build them from.
//!
//! | name | what it does | claims |
//! |---|---|---|
//! | `greedy` | DeepSeek's EPLB, bit-exact with `eplb.py` | heuristic |
//! | `refine` | greedy's counts, balanced largest differencing, local search (swaps, pair swaps, replica-count moves); bound-minimising group split under the hierarchical policy | heuristic, never worse than `greedy` |
//! | `refine-deep` | `refine` plus kicks out of local optima by replica-count moves (several times slower) | heuristic, never worse than `greedy` |
//! | `hierarchical` | top-down over the two-level tree: bound-minimising group split, `greedy` inside each node | heuristic |
//!
//! [`Hierarchical`] is generic: any [`GroupSplitter`] over any [`PlacementStrategy`], on any
//! [`Topology`](crate::topology::Topology).
//!
//! [`all`] and [`by_name`] are shorthands over [`Registry::new`]; downstream
//! strategies are [registered](Registry::register) on a registry of one's own.

mod certified;
pub mod distinct;
mod exact;
mod greedy;
pub mod hierarchical;
mod ilp;
mod refine;
pub mod registry;

pub use crate::split::{BalancedSplit, GreedySplit, GroupSplitter};
pub use certified::Certified;
pub use distinct::DistinctReplicas;
pub use exact::Exact;
pub use greedy::Greedy;
pub use hierarchical::Hierarchical;
pub use ilp::Ilp;
pub use refine::Refine;
pub use registry::{HierarchicalSpec, Registry, StrategySpec};

use crate::error::Result;
use crate::strategy::PlacementStrategy;

/// One instance of every built-in strategy, in a stable order (see [`Registry::new`]).
///
/// The searching strategies (`exact`, `ilp`) take their time limit, gap and threads from each
/// layer's [budget](crate::LayerBudget), which the runner sets from its
/// [`SolveOptions`](crate::SolveOptions).
///
/// `hierarchical` here is the decomposition over DeepSeek's two-level tree with the
/// bound-minimising group split ([`BalancedSplit`]) and greedy inside each node; other
/// combinations come from a [`StrategySpec`] or [`Hierarchical::with_topology`].
pub fn all() -> Vec<Box<dyn PlacementStrategy>> {
    Registry::new()
        .build_all()
        .expect("the built-in strategies build from their names alone")
}

/// Names of the built-in strategies, in the order of [`all`].
pub fn names() -> Vec<String> {
    Registry::new().names().map(str::to_string).collect()
}

/// The built-in strategy called `name`.
///
/// ```
/// assert_eq!(eplb::strategies::by_name("greedy").unwrap().name(), "greedy");
/// assert!(eplb::strategies::by_name("nope").is_err());
/// ```
///
/// # Errors
/// [`EplbError::UnknownStrategy`](crate::EplbError::UnknownStrategy) listing the valid names.
pub fn by_name(name: &str) -> Result<Box<dyn PlacementStrategy>> {
    Registry::new().build(&StrategySpec::new(name))
}
