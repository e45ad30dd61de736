//! The floating-point tolerances of the engines, in one place.
//!
//! Every tolerance is *relative* unless its name says otherwise: a value `x` is compared with
//! `y * (1 ± tolerance)`. The exact engine ([`crate::exact`]) needs none (it compares exact
//! rationals); the `f64` engines use these and no literal of their own.

/// Rounding noise of `f64` sums of a few hundred terms: loads closer than this are equal, and a
/// move (or a pattern level, or a copy count bound) must clear it to count. Guards the local
/// searches of [`crate::rebalance`] and [`crate::milp`] against cycling on rounding.
pub const ROUNDING: f64 = 1e-12;

/// Margin by which a solution must beat a cutoff to count as better in [`crate::milp`]'s
/// searches, and by which a pattern level may sit below a proven lower bound before it is
/// dropped. Larger than [`ROUNDING`]: the values come back from an LP solver.
pub const STRICT: f64 = 1e-9;

/// Shaved off an LP solver's dual bound before [`crate::milp`]'s searches use it to steer (the
/// solvers' feasibility tolerances are about `1e-6` in the scaled units). No bound of an LP
/// solver is ever reported: the MILP's certificates are proven by the exact search.
pub const DUAL_BOUND_SHAVE: f64 = 1e-7;

/// *Absolute* MIP gap handed to HiGHS, in the model's scaled units (the mean bin load is `1`).
pub const HIGHS_ABSOLUTE_GAP: f64 = 1e-9;
