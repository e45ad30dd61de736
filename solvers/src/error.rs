//! The engines' error type.

use thiserror::Error;

/// What an engine rejects. Every variant says what was wrong and what would be valid.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum SolverError {
    /// A weight was NaN or infinite; engines need finite weights.
    #[error("weight {index} is {value}: weights must be finite numbers")]
    NonFiniteWeight {
        /// Position of the weight.
        index: usize,
        /// The offending value (as `f64` for display).
        value: f64,
    },
    /// A weight was negative; engines need weights `>= 0`.
    #[error("weight {index} is {value}: weights must be >= 0")]
    NegativeWeight {
        /// Position of the weight.
        index: usize,
        /// The offending value.
        value: f64,
    },
    /// `num_packs` was zero or does not divide the number of items.
    #[error("{items} items cannot be split into {packs} packs of equal size: the pack count must be >= 1 and divide the item count")]
    PacksDoNotDivide {
        /// Number of items.
        items: usize,
        /// Number of packs asked for.
        packs: usize,
    },
    /// Fewer copies than items were asked for: every item needs at least one copy.
    #[error("{copies} copies cannot cover {items} items: need at least one copy per item")]
    TooFewCopies {
        /// Number of items.
        items: usize,
        /// Number of copies asked for.
        copies: usize,
    },
    /// Labels given for items, but not one per item.
    #[error("{labels} labels for {items} items: give exactly one label per item")]
    LabelCount {
        /// Number of labels.
        labels: usize,
        /// Number of items.
        items: usize,
    },
    /// The weights sum above what exact integer arithmetic supports.
    #[error(
        "the weights sum above {limit}: scale them down (exact search needs totals <= {limit})"
    )]
    WeightsTooLarge {
        /// The largest accepted total.
        limit: u64,
    },
    /// Groups or regions that do not divide evenly.
    #[error("{items} items in {groups} groups on {regions} regions of {bins} bins: groups must divide the items, regions must divide the groups and the bins, and there may be at most 64 groups")]
    BadGroups {
        /// Number of items.
        items: usize,
        /// Number of groups.
        groups: usize,
        /// Number of regions.
        regions: usize,
        /// Number of bins.
        bins: usize,
    },
    /// A MILP instance, incumbent or option that does not fit together.
    #[error("invalid MILP input: {0}")]
    InvalidModel(String),
    /// The MILP solver failed (not a limit: an error inside the solver).
    #[error("the MILP solver failed: {0}")]
    Backend(String),
}

/// Checks that every weight is finite and non-negative.
pub(crate) fn check_weights<T: Copy + Into<f64>>(weights: &[T]) -> Result<(), SolverError> {
    for (index, &w) in weights.iter().enumerate() {
        let value: f64 = w.into();
        if !value.is_finite() {
            return Err(SolverError::NonFiniteWeight { index, value });
        }
        if value < 0.0 {
            return Err(SolverError::NegativeWeight { index, value });
        }
    }
    Ok(())
}
