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

/// The shapes a vector kernel's lockstep fill takes: at most `lanes` instances at once, each
/// of at most `packs` packs of at most `per_pack` copies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FillLimits {
    pub(crate) lanes: usize,
    pub(crate) packs: usize,
    pub(crate) per_pack: usize,
}

impl FillLimits {
    /// Whether instances of `num_packs` packs of `per_pack` copies fit.
    pub(crate) fn admits(self, num_packs: usize, per_pack: usize) -> bool {
        (1..=self.packs).contains(&num_packs) && (1..=self.per_pack).contains(&per_pack)
    }

    /// Whether `lanes` such instances fit at once, their `keys` and `slots` (slice lengths)
    /// holding every copy.
    pub(crate) fn fits(
        self,
        lanes: usize,
        num_packs: usize,
        per_pack: usize,
        keys: usize,
        slots: usize,
    ) -> bool {
        let copies = lanes * num_packs * per_pack;
        (1..=self.lanes).contains(&lanes)
            && self.admits(num_packs, per_pack)
            && keys >= copies
            && slots >= copies
    }
}

/// Calls `$step!(k, j)` for every merge step of a bitonic sort of up to 256 keys, in order: for
/// every run length `k = 2, 4, ..., 256`, the distances `j = k / 2, ..., 1` (the vector sorts
/// skip the steps beyond their keys).
macro_rules! bitonic_steps {
    ($step:ident) => {
        $step!(2, 1);
        $step!(4, 2);
        $step!(4, 1);
        $step!(8, 4);
        $step!(8, 2);
        $step!(8, 1);
        $step!(16, 8);
        $step!(16, 4);
        $step!(16, 2);
        $step!(16, 1);
        $step!(32, 16);
        $step!(32, 8);
        $step!(32, 4);
        $step!(32, 2);
        $step!(32, 1);
        $step!(64, 32);
        $step!(64, 16);
        $step!(64, 8);
        $step!(64, 4);
        $step!(64, 2);
        $step!(64, 1);
        $step!(128, 64);
        $step!(128, 32);
        $step!(128, 16);
        $step!(128, 8);
        $step!(128, 4);
        $step!(128, 2);
        $step!(128, 1);
        $step!(256, 128);
        $step!(256, 64);
        $step!(256, 32);
        $step!(256, 16);
        $step!(256, 8);
        $step!(256, 4);
        $step!(256, 2);
        $step!(256, 1);
    };
}
pub(crate) use bitonic_steps;
