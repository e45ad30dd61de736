//! Optimisation engines behind `eplb`, free of any Mixture-of-Experts vocabulary.
//!
//! Each engine works on plain weights and counts, so it can be reused (and tested) on its own:
//!
//! - [`partition`]: cardinality-constrained balanced partitioning — split `n` weighted items
//!   into `m` packs of exactly `n / m` items each so that pack sums are as even as possible.
//! - [`apportion`]: replica apportionment — hand out `k >= n` copies to `n` weighted items so
//!   that the largest per-copy share `w_i / c_i` is as small as possible (in `f32`, `f64`,
//!   and exactly on integer weights).
//! - [`replicate`]: both greedy steps fused — apportion copies, then pack them lightest-first
//!   into bins of equal cardinality — sorting the items once (DeepSeek's per-node work).
//! - [`rebalance`]: copy packing — place the copies of weighted items into bins of equal
//!   cardinality (balanced largest differencing) and improve it by local search.
//! - [`split`]: the group → child split search (branch and bound over assignments, and the
//!   canonical partitions into equal sets), generic over the child value.
//! - [`packing`]: the problem both exact engines solve — replicated min-max packing,
//!   optionally with regions ([`packing::PackingProblem`]) — their answer with a certificate
//!   ([`packing::CertifiedPacking`]: value, lower bound, [`packing::StopReason`]), the
//!   [`packing::ExactEngine`] trait and its capability traits (deadline, gap, start, threads).
//! - [`exact`]: exact search over copy counts and packings (bin completion with bounds),
//!   minimising the largest bin sum, with a deadline and certified lower bounds
//!   ([`exact::ExactSearch`]).
//! - [`milp`]: replicated min-max packing solved exactly — copy counts and assignment chosen
//!   together — as a MILP on `good_lp` (pure-Rust `microlp`, or HiGHS with the `highs`
//!   feature), with optimality certificates and dual bounds ([`milp::Milp`]).
//! - [`loads`] and [`tolerance`]: the one way bin loads are summed, and the named
//!   floating-point tolerances.
//!
//! # Glossary
//!
//! One meaning per word, in identifiers and docs alike.
//!
//! | term | meaning |
//! | --- | --- |
//! | item | a weighted thing to place (`w_i >= 0`), indexed `0..n` |
//! | copy | one of the `c_i >= 1` equal pieces an item is cut into; it weighs `w_i / c_i` |
//! | count | `c_i`, the number of copies of item `i`; a *count vector* gives every item's |
//! | share | the weight of one copy of an item, `w_i / c_i` |
//! | bin | holds exactly `per_bin` (`s`) copies; bins are indexed `0..m` |
//! | slot | the place of one copy: slot `k` of bin `b` is position `b * per_bin + k` |
//! | load | a bin's sum of copy weights ([`loads::bin_load`]); the *peak* is the largest load |
//! | pack | a set of items in balanced partitioning ([`partition`]): every item once, no copies |
//! | group | a run of consecutive items that must stay together (all copies in one region) |
//! | region | a run of consecutive bins that receives whole groups, the same number each |
//! | child | what a split hands groups to: a region here, a node or rack in `eplb` |
//! | split | an assignment of whole groups to children, a fixed number per child |
//! | set | the groups one child receives in a split, as a bit set |
//! | kind | children of one kind are interchangeable in a split search |
//! | unit | `1 / scale`, the integer grain of the exact search's copy sizes for one count vector |
//! | incumbent | the best solution known so far in a search |
//! | lower bound | a value no solution can beat; *proven* when the search shows it is met |
//! | budget | a count of search nodes (never time) after which a search stops |
//!
//! "Block" is not used: what `exact` called a block (a run of bins) is a region, what `milp`
//! called a block (a run of items) is a group.
//!
//! The greedy variants reproduce DeepSeek's `eplb.py` bit for bit: they compute in `f32` in the
//! same order and break ties the same way (stable descending sort, lowest index first).
//!
//! On x86-64 processors with AVX-512F or AVX2, the greedy's short sorts and its lightest-first
//! packing loop run as vector kernels, detected at run time; the answers are the same as the portable
//! code's, which runs everywhere else and wherever the caller chooses
//! [`Kernels::Portable`](kernels::Kernels) (this crate reads no environment variable).
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
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod apportion;
// The three modules with `unsafe` code (the workspace denies it everywhere else): the vector
// kernels and the lane engine they instantiate.
#[allow(unsafe_code)]
mod avx2;
#[allow(unsafe_code)]
mod avx512;
pub mod error;
pub mod exact;
pub mod kernels;
mod key_sort;
#[allow(unsafe_code)]
mod lanes;
pub mod loads;
pub mod milp;
mod min_queue;
pub mod packing;
pub mod partition;
pub mod rebalance;
pub mod replicate;
pub mod scenarios;
pub mod split;
pub mod tolerance;

pub use error::SolverError;
