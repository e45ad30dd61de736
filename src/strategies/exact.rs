//! `exact`: a pure-Rust exact search that proves placements optimal (or certifies a gap).

use eplb_solvers::exact::ExactSearch;

use crate::strategies::{Certified, Refine};

/// Layers with more slots than this start the search from [`Refine`]'s placement.
const SEED_MIN_SLOTS: usize = 64;

/// Exact search over replica counts and GPU packings ([`eplb_solvers::exact`]), as a
/// [`Certified`] strategy.
///
/// The optimum of a layer is the minimum, over replica-count vectors, of the best packing of
/// the replicas onto GPUs (exactly `S` per GPU). The search (bin completion with dominance,
/// lattice and order-statistics bounds, complete enumeration of the count vectors that could
/// still win) returns [`SolveStatus::Optimal`](crate::SolveStatus::Optimal) only with a proof;
/// when it stops within the requested gap it says
/// [`GapReached`](crate::SolveStatus::GapReached), and when the time limit stops it,
/// [`TimeLimit`](crate::SolveStatus::TimeLimit), with its best placement (never worse than
/// [`Greedy`](crate::strategies::Greedy)) and a valid lower bound. Under the hierarchical
/// policy the group-to-node splits are tried in order of their bound, each node solved as a
/// global problem cut off at the incumbent. On layers with more than 64 slots the search
/// starts from [`Refine`]'s placement (its first incumbent, improved by the search's local
/// moves), so the answer is never worse than `refine`'s either; any other seed can be set with
/// [`Certified::with_seed`].
///
/// **Exactness.** Loads that are not dyadic rationals (e.g. `0.1`) or sum above `2^50` are
/// rounded down by the engine ([`ExactSearch`]): the bound stays valid but optimality is no
/// longer claimed.
///
/// **Time and threads.** The limit is per layer (the layer's [budget](crate::LayerBudget), set by
/// the runner from [`SolveOptions`](crate::SolveOptions)), checked inside the search (default
/// [`Certified::DEFAULT_TIME_LIMIT`]). Each layer's search runs on one thread; layers run in
/// parallel through [`solve`](crate::solve). Results are identical on every run whenever the
/// search finishes within its limit; a search cut short by the clock returns what it had, which
/// can depend on machine speed.
///
/// # Complexity
/// Refine's cost (large layers) plus the search: exponential in the worst case (the problem is
/// strongly NP-hard), bounded by the time limit.
///
/// ```
/// use eplb::{strategies::Exact, Cluster, Loads, PlacementStrategy, PolicyChoice, Problem, SolveStatus};
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
/// let s = Exact::default().solve_layer(&problem.layer(0)).unwrap();
/// assert_eq!(s.status, SolveStatus::Optimal);
/// assert_eq!(s.lower_bound, Some(4.0)); // greedy reaches 4.5
/// ```
pub type Exact = Certified<ExactSearch>;

impl Default for Certified<ExactSearch> {
    /// The `exact` strategy: seeded by `refine` on layers with more than 64 slots.
    fn default() -> Self {
        Certified::from_engine(
            "exact",
            "exact search over replica counts and GPU packings (pure Rust): proves optimality or certifies a gap within the time limit",
            ExactSearch::default(),
        )
        .with_seed_above(Refine::default(), SEED_MIN_SLOTS)
    }
}
