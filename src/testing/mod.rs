//! A research workbench for placement strategies (cargo feature `testing`).
//!
//! What the crate's own conformance suite uses, public so that a strategy written outside the
//! crate is held to the same standard:
//!
//! - [`generate`]: random problems (shapes, both policies, loads from all-zero to huge
//!   integers, mixed magnitudes and ties) and random placements, valid or broken in a named
//!   way, as [`proptest`](mod@proptest) strategies, plus [`generate::sample`] for a seeded draw outside
//!   proptest;
//! - [`brute_force()`]: the true optimum of tiny layers by exhaustive enumeration, with a
//!   documented size limit;
//! - [`check_strategy`] / [`check_strategies`]: every conformance property (feasible, load
//!   conserved, deterministic across runs and thread counts, claims that hold against the
//!   strategy's own load, the other strategies' loads and the brute-force optimum), failing
//!   with the [`Property`] that broke;
//! - [`steps`]: random per-step loads and the problem of their total, for the per-step
//!   [objectives](crate::objective);
//! - [`with_compositions`]: every built-in strategy and their compositions, the field a new
//!   strategy is compared with.
//!
//! ```
//! use eplb::testing::{check_strategy, generate, CheckOptions};
//! use eplb::strategies::Refine;
//!
//! let problem = generate::sample(&generate::arb_problem(6, 4), 7);
//! check_strategy(&Refine::default(), &problem, &CheckOptions::default()).unwrap();
//! ```

pub mod brute_force;
mod check;
pub mod generate;
pub mod steps;
mod zoo;

pub use brute_force::{
    brute_force, brute_force_where, enumerable, Optimum, TooLarge, BRUTE_FORCE_LIMIT,
};
pub use check::{check_strategies, check_strategy, CheckOptions, ConformanceFailure, Property};
pub use zoo::{with_compositions, Named};

/// True when two loads computed in different orders agree (relative tolerance `1e-9`).
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}
