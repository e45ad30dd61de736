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
/// On x86-64, [`Kernels::Auto`] runs the AVX-512 kernels where the processor has AVX-512F, the
/// AVX2 kernels where it has AVX2 only, and the portable code elsewhere.
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
    /// The widest vector kernels the processor has (AVX-512F, else AVX2; detected at run
    /// time, once), the portable code elsewhere.
    #[default]
    Auto,
    /// The portable code on every processor.
    Portable,
}

impl Kernels {
    /// Whether this choice runs vector kernels (AVX-512 or AVX2) on this processor.
    pub fn vector(self) -> bool {
        self.isa() != Isa::Portable
    }

    /// The instruction set whose kernels this choice runs on this processor.
    pub(crate) fn isa(self) -> Isa {
        static DETECTED: LazyLock<Isa> = LazyLock::new(|| {
            if crate::avx512::detected() {
                Isa::Avx512
            } else if crate::avx2::detected() {
                Isa::Avx2
            } else {
                Isa::Portable
            }
        });
        match self {
            Kernels::Auto => *DETECTED,
            Kernels::Portable => Isa::Portable,
        }
    }
}

/// Which kernels run: those of one instruction set, or the portable code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Isa {
    /// The portable code.
    Portable,
    /// The AVX2 kernels ([`avx2`](crate::avx2)).
    Avx2,
    /// The AVX-512 kernels ([`avx512`](crate::avx512)).
    Avx512,
}
