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
//! [`all`], [`by_name`] and [`by_name_with`] are shorthands over [`Registry::new`]; downstream
//! strategies are [registered](Registry::register) on a registry of one's own.

mod certified;
mod exact;
mod greedy;
pub mod hierarchical;
mod ilp;
mod refine;
pub mod registry;

pub use crate::split::{BalancedSplit, GreedySplit, GroupSplitter};
pub use certified::Certified;
pub use exact::Exact;
pub use greedy::Greedy;
pub use hierarchical::Hierarchical;
pub use ilp::Ilp;
pub use refine::Refine;
pub use registry::{HierarchicalSpec, Registry, StrategySpec};

use std::time::Duration;

use crate::error::Result;
use crate::strategy::PlacementStrategy;

/// Settings shared by the strategies that search (heuristics ignore them).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StrategyOptions {
    /// Wall-time limit per layer; `None` means no limit.
    pub time_limit: Option<Duration>,
    /// Relative optimality gap at which an exact method may stop; `None` means prove
    /// optimality.
    pub mip_gap: Option<f64>,
    /// Threads an exact method may use inside one layer; `None` means one.
    pub threads: Option<usize>,
}

/// One instance of every built-in strategy with default options, in a stable order.
pub fn all() -> Vec<Box<dyn PlacementStrategy>> {
    all_with(&StrategyOptions::default())
}

/// One instance of every built-in strategy configured with `options`, in a stable order (see
/// [`Registry::new`] for what each takes).
///
/// `hierarchical` here is the decomposition over DeepSeek's two-level tree with the
/// bound-minimising group split ([`BalancedSplit`]) and greedy inside each node; other
/// combinations come from a [`StrategySpec`] or [`Hierarchical::with_topology`].
pub fn all_with(options: &StrategyOptions) -> Vec<Box<dyn PlacementStrategy>> {
    Registry::new()
        .build_all(options)
        .expect("the built-in strategies build from search options alone")
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
    by_name_with(name, &StrategyOptions::default())
}

/// The built-in strategy called `name`, configured with `options`.
///
/// # Errors
/// [`EplbError::UnknownStrategy`](crate::EplbError::UnknownStrategy) listing the valid names.
pub fn by_name_with(name: &str, options: &StrategyOptions) -> Result<Box<dyn PlacementStrategy>> {
    Registry::new().build(&StrategySpec::new(name).with_options(options.clone()))
}
