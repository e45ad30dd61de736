//! The ILP-exact strategy: replica counts and assignment chosen together by a MILP.

use eplb_solvers::milp::{Backend, Milp};

use crate::strategies::{Certified, Refine};

/// Exact placement by mixed-integer linear programming (the model is
/// [`eplb_solvers::milp`]'s replicated min-max packing), as a [`Certified`] strategy.
///
/// Unlike [greedy](crate::strategies::Greedy), which fixes the replica counts before packing, the model chooses
/// the number of replicas of every expert *and* their GPUs together, under either policy
/// (hierarchical: whole groups per node, `G / N` per node, replicas on their group's node).
/// [Refine](Refine)'s placement (never worse than greedy's) is the starting incumbent, so the
/// answer is never worse than greedy's.
///
/// How the engine solves it: small layers by a pattern model (identical GPUs aggregated)
/// and binary search over the max load; the hierarchical policy by decomposition over the
/// group-to-node splits, each node an independent global problem, with a bound valid over all
/// splits; large layers by the assignment model (see [`eplb_solvers::milp`]).
///
/// The result is `optimal` only when proven *exactly*: a floating-point solver proves bounds
/// only to its tolerances, so the MILP's packing is handed to the [exact
/// search](crate::strategies::Exact) as its start, within the same deadline, and the
/// certificate is the exact search's (rational arithmetic; the
/// [combinatorial bounds](crate::bounds) included). When it stops at the requested gap it is
/// `gap_reached`, at the time limit `time_limit`, with the best placement found and the best
/// lower bound proved. A failure inside the backend ends that solver run as a limit would: the
/// layer keeps its incumbent and says `time_limit`.
///
/// The time limit (the layer's [budget](crate::LayerBudget); default
/// [`Certified::DEFAULT_TIME_LIMIT`] per layer) covers the whole layer: the seed, the bounds,
/// building the models and solving them. The budget's threads go to HiGHS.
///
/// Backends: HiGHS with the cargo feature `highs` (the default then), otherwise good_lp's
/// pure-Rust `microlp`, which proves small layers (the `eplb.py` README example) but runs
/// the assignment model of large layers far more slowly than HiGHS.
///
/// # Complexity
/// Refine's cost plus the MILP's: exponential in the worst case, bounded by the time limit.
///
/// ```
/// use eplb::{strategies::Ilp, Cluster, Loads, PolicyChoice, Problem, SolveStatus};
/// // Greedy reaches 4.5 here (it replicates a 3); the optimum replicates the 2.
/// let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
/// let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
/// let solution = eplb::solve(&problem, &Ilp::default(), &Default::default()).unwrap();
/// assert_eq!(solution.layers[0].status, SolveStatus::Optimal);
/// let report = eplb::evaluate(&problem, &solution.placement, &solution.claims()).unwrap();
/// assert_eq!(report.layers[0].max_load, 4.0);
/// assert_eq!(report.layers[0].gap, 0.0);
/// ```
pub type Ilp = Certified<Milp>;

impl Default for Certified<Milp> {
    /// The `ilp` strategy on the default backend, seeded by `refine`.
    fn default() -> Self {
        Certified::from_engine(
            "ilp",
            "exact MILP (replica counts and assignment together), certified: optimal when proven, else best placement and dual bound at the time limit",
            Milp::new(Backend::default()),
        )
        .with_seed(Refine::default())
    }
}

impl Certified<Milp> {
    /// The same strategy on another backend.
    #[must_use]
    pub fn with_backend(self, backend: Backend) -> Self {
        self.with_engine(Milp::new(backend))
    }

    /// The backend in use.
    pub fn backend(&self) -> Backend {
        self.engine().backend()
    }
}
