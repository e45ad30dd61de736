//! The built-in strategies and the registry the command line picks them from.
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

mod exact;
mod greedy;
pub mod hierarchical;
mod ilp;
mod refine;

pub use crate::split::{BalancedSplit, GreedySplit, GroupSplitter};
pub use exact::Exact;
pub use greedy::Greedy;
pub use hierarchical::Hierarchical;
pub use ilp::Ilp;
pub use refine::Refine;

use std::time::Duration;

use crate::error::{EplbError, Result};
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

/// One instance of every built-in strategy configured with `options`, in a stable order.
///
/// `hierarchical` here is the decomposition over DeepSeek's two-level tree with the
/// bound-minimising group split ([`BalancedSplit`]) and greedy inside each node; other
/// combinations and deeper trees are built with [`Hierarchical::with_topology`].
///
/// `exact` takes `time_limit` (default [`Exact::DEFAULT_TIME_LIMIT`], 10 s per layer) and
/// `mip_gap` (default: prove optimality); it searches each layer on one thread, so `threads`
/// does not change it. `ilp` takes all three; see [`Ilp`] for its backends.
pub fn all_with(options: &StrategyOptions) -> Vec<Box<dyn PlacementStrategy>> {
    vec![
        Box::new(Greedy),
        Box::new(Refine::default()),
        Box::new(Refine::deep()),
        Box::new(Hierarchical::two_level(BalancedSplit::default(), Greedy)),
        Box::new(Exact {
            time_limit: options.time_limit.unwrap_or(Exact::DEFAULT_TIME_LIMIT),
            gap: options.mip_gap.unwrap_or(0.0),
        }),
        Box::new(Ilp::new(options.clone())),
    ]
}

/// Names of the built-in strategies, in the order of [`all`].
pub fn names() -> Vec<String> {
    all().iter().map(|s| s.name().to_string()).collect()
}

/// The built-in strategy called `name`.
///
/// ```
/// assert_eq!(eplb::strategies::by_name("greedy").unwrap().name(), "greedy");
/// assert!(eplb::strategies::by_name("nope").is_err());
/// ```
///
/// # Errors
/// [`EplbError::UnknownStrategy`] listing the valid names.
pub fn by_name(name: &str) -> Result<Box<dyn PlacementStrategy>> {
    by_name_with(name, &StrategyOptions::default())
}

/// The built-in strategy called `name`, configured with `options`.
///
/// # Errors
/// [`EplbError::UnknownStrategy`] listing the valid names.
pub fn by_name_with(name: &str, options: &StrategyOptions) -> Result<Box<dyn PlacementStrategy>> {
    all_with(options)
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| EplbError::UnknownStrategy {
            name: name.to_string(),
            available: names().join(", "),
        })
}
