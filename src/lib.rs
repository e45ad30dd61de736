//! # eplb — expert placement for Mixture-of-Experts serving
//!
//! Decides which logical expert every physical expert slot of a GPU cluster holds, layer by
//! layer, so that the busiest GPU carries as little load as possible.
//!
//! - [`Problem`]: per-layer expert loads, the [`Cluster`] and the [`Policy`], validated.
//! - [`PlacementStrategy`]: the plug-in trait; [`strategies`] holds the built-in ones
//!   ([`strategies::Greedy`] is DeepSeek's EPLB, bit-exact with `eplb.py`;
//!   [`strategies::Refine`] improves on it and is never worse; [`strategies::Hierarchical`]
//!   decomposes a layer top-down over a [`topology::Topology`] with pluggable sub-solvers).
//! - [`solve`]: runs a strategy over all layers in parallel, deterministically.
//! - [`evaluate()`]: the single judge of feasibility and balance, with certified
//!   [lower bounds](bounds) and gaps.
//! - `formats` (the default cargo feature `formats`): reading load statistics and topology
//!   files, writing placements.
//! - `testing` (cargo feature `testing`): the research workbench — random problems and
//!   placements, a brute-force optimum, `check_strategy` with every conformance property.
//! - [`topology`]: the cluster as a tree (root → racks → nodes → GPUs).
//! - [`live`]: live rebalancing — align a new placement to the current one, rebalance under a
//!   transfer budget, plan the transfers in rounds, place around failed GPUs.
//!
//! ```
//! use eplb::{evaluate, solve, strategies, Cluster, Loads, PolicyChoice, Problem};
//!
//! let loads = Loads::from_rows(&[vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0]])?;
//! let problem = Problem::new(loads, Cluster::new(12, 4), PolicyChoice::Global)?;
//! let greedy = strategies::by_name("greedy")?;
//! let solution = solve(&problem, greedy.as_ref(), &Default::default())?;
//! let report = evaluate(&problem, &solution.placement, &solution.claims())?;
//! assert!(report.is_feasible());
//! assert_eq!(report.layers[0].max_load, 12.0);   // the optimum is 11.5
//! assert_eq!(report.layers[0].lower_bound, 11.5); // sum / P proves greedy is within 4.35%
//! # Ok::<(), eplb::EplbError>(())
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod bounds;
pub mod compare;
pub mod error;
pub mod evaluate;
#[cfg(feature = "formats")]
#[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
pub mod formats;
pub mod live;
pub mod objective;
pub mod placement;
pub mod problem;
pub mod runner;
pub mod split;
pub mod strategies;
pub mod strategy;
pub mod synthetic;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;
pub mod topology;

pub use eplb_solvers::kernels::Kernels;
pub use error::{EplbError, Result};
pub use evaluate::{evaluate, Claim, ClaimViolation, Evaluation, LayerReport, Violation};
pub use placement::{DeepSeekArrays, DeepSeekFlat, LayerPlacement, Placement, Tables};
pub use problem::{Cluster, LayerBudget, LayerProblem, Loads, Policy, PolicyChoice, Problem};
pub use runner::{solve, solve_observed, Solution, SolveOptions};
pub use strategy::{LayerSolution, PlacementStrategy, SolveStatus};

/// The README's Rust example, compiled and run as a doc test.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
