//! The built-in strategies and the registry the command line picks them from.

mod greedy;

pub use greedy::Greedy;

use crate::error::{EplbError, Result};
use crate::strategy::PlacementStrategy;

/// One instance of every built-in strategy, in a stable order.
pub fn all() -> Vec<Box<dyn PlacementStrategy>> {
    vec![Box::new(Greedy)]
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
    all()
        .into_iter()
        .find(|s| s.name() == name)
        .ok_or_else(|| EplbError::UnknownStrategy {
            name: name.to_string(),
            available: names().join(", "),
        })
}
