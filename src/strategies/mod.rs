//! The built-in strategies and the registry the command line picks them from.

mod greedy;
mod ilp;

pub use greedy::Greedy;
pub use ilp::Ilp;

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
pub fn all_with(options: &StrategyOptions) -> Vec<Box<dyn PlacementStrategy>> {
    vec![Box::new(Greedy), Box::new(Ilp::new(options.clone()))]
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
