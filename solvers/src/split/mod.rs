//! Splitting whole groups among children: the one search behind every group → child split.
//!
//! A *split* hands `G` groups (each a run of items, see the [glossary](crate#glossary)) to
//! children, every child a fixed number of whole groups; its value is the largest child value,
//! a value the caller defines (a closure) for a set of groups. Two searches minimise it:
//!
//! - [`assign`]: branch and bound that places the groups one at a time, heaviest first, into
//!   children of possibly different sizes, from a starting split and within a budget of search
//!   nodes; a child's value is computed when it closes (memoised per kind of child and group
//!   set), and a child is pruned as soon as a caller's bound on its partial load reaches the
//!   best value. Sets are bit sets: one word for up to 64 groups (the fast path), a vector of
//!   words beyond.
//! - [`partition`]: the canonical partitions of `G <= 64` groups into interchangeable sets of
//!   equal size (each set opened by the lowest group left), enumerated in full or searched
//!   by branch and bound for the partition with the smallest largest set value.
//!
//! Values are generic (`V: Copy + PartialOrd`): `f64` for the heuristics and the MILP, exact
//! rationals ([`Fraction`](crate::exact::Fraction)) for the exact search.
//!
//! ```
//! use eplb_solvers::split::assign::{AssignSearch, Child};
//!
//! // Four groups with loads 5, 4, 3, 2 into two children of two groups each; a child's value
//! // is its load. Start from {5, 4} | {3, 2}.
//! let loads = [5.0, 4.0, 3.0, 2.0];
//! let children = [Child { groups: 2, kind: 0 }; 2];
//! let load = |sets: &[usize]| sets.iter().map(|&g| loads[g]).sum::<f64>();
//! let found = AssignSearch::with_budget(1_000)
//!     .run(
//!         &loads,
//!         &children,
//!         &[vec![0, 1], vec![2, 3]],
//!         |_, groups| Ok::<f64, ()>(load(groups)),
//!         |_, sum| sum,
//!     )
//!     .unwrap();
//! assert_eq!(found.value, 7.0);
//! assert_eq!(found.sets, vec![vec![0, 3], vec![1, 2]]);
//! assert!(found.complete);
//! ```

pub mod assign;
pub mod partition;
mod set;
#[cfg(test)]
mod tests;

/// The larger of two partially ordered values (`a` on ties and when they do not compare).
fn max<V: PartialOrd>(a: V, b: V) -> V {
    if b > a {
        b
    } else {
        a
    }
}

/// The larger of a running maximum and a value (`None`: nothing yet).
fn max_with<V: PartialOrd>(worst: Option<V>, v: V) -> V {
    match worst {
        Some(w) => max(w, v),
        None => v,
    }
}
