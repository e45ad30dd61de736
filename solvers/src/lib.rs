//! Optimisation engines behind `eplb`, free of any Mixture-of-Experts vocabulary.
//!
//! Each engine works on plain weights and counts, so it can be reused (and tested) on its own:
//!
//! - [`partition`]: cardinality-constrained balanced partitioning — split `n` weighted items
//!   into `m` packs of exactly `n / m` items each so that pack sums are as even as possible.
//! - [`apportion`]: replica apportionment — hand out `k >= n` copies to `n` weighted items so
//!   that the largest per-copy share `w_i / c_i` is as small as possible.
//! - [`replicate`]: both greedy steps fused — apportion copies, then pack them lightest-first
//!   into bins of equal cardinality — sorting the items once (DeepSeek's per-node work).
//! - [`rebalance`]: copy packing — place the copies of weighted items into bins of equal
//!   cardinality (balanced largest differencing) and improve it by local search.
//! - [`exact`]: exact search over copy counts and packings (bin completion with bounds),
//!   minimising the largest bin sum, with a deadline and certified lower bounds.
//! - [`milp`]: replicated min-max packing solved exactly — copy counts and assignment chosen
//!   together — as a MILP on `good_lp` (pure-Rust `microlp`, or HiGHS with the `highs`
//!   feature), with optimality certificates and dual bounds.
//!
//! The greedy variants reproduce DeepSeek's `eplb.py` bit for bit: they compute in `f32` in the
//! same order and break ties the same way (stable descending sort, lowest index first).
//!
//! On x86-64 processors with AVX-512F, the greedy's short sorts and its lightest-first packing
//! loop run as vector kernels, detected at run time; the answers are the same as the portable
//! code's, which runs everywhere else and when the environment variable `EPLB_DISABLE_AVX512`
//! is set.
//!
//! ```
//! use eplb_solvers::partition::BalancedPartitioner;
//!
//! let mut packer = BalancedPartitioner::default();
//! let packs = packer.greedy(&[5.0, 4.0, 3.0, 2.0], 2).unwrap();
//! assert_eq!(packs.pack, vec![0, 1, 1, 0]); // {5, 2} and {4, 3}
//! assert_eq!(packs.rank, vec![0, 0, 1, 1]);
//! ```
#![deny(missing_docs)]

pub mod apportion;
mod avx512;
pub mod error;
pub mod exact;
mod key_sort;
pub mod loads;
pub mod milp;
mod min_queue;
pub mod partition;
pub mod rebalance;
pub mod replicate;
pub mod split;
pub mod tolerance;

pub use error::SolverError;
