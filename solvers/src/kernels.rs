//! Which implementation of the greedy engines' inner loops runs: a configuration passed to the
//! engines ([`ReplicaPacker::with_kernels`](crate::replicate::ReplicaPacker::with_kernels),
//! [`BalancedPartitioner::with_kernels`](crate::partition::BalancedPartitioner::with_kernels)),
//! never read from the environment by this crate.
//!
//! Both choices give the same answers (property tests compare them wherever the vector kernels
//! run); [`Kernels::Portable`] exists so that the portable code can be tested and timed on any
//! machine.

use std::sync::LazyLock;

/// The greedy engines' kernel choice.
///
/// ```
/// use eplb_solvers::{kernels::Kernels, replicate::ReplicaPacker};
/// let mut auto = ReplicaPacker::default();
/// let mut portable = ReplicaPacker::default().with_kernels(Kernels::Portable);
/// assert!(!Kernels::Portable.vector());
/// let w = [9.0, 4.0, 3.0, 2.0];
/// assert_eq!(auto.greedy(&w, 6, 2).unwrap(), portable.greedy(&w, 6, 2).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Kernels {
    /// The AVX-512 kernels where the processor has AVX-512F (detected at run time, once),
    /// the portable code elsewhere.
    #[default]
    Auto,
    /// The portable code on every processor.
    Portable,
}

impl Kernels {
    /// Whether this choice runs the vector kernels on this processor.
    pub fn vector(self) -> bool {
        static DETECTED: LazyLock<bool> = LazyLock::new(crate::avx512::detected);
        self == Kernels::Auto && *DETECTED
    }
}
