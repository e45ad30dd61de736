//! Sorting of the engines' `u64` sort keys ([`descending_key`](crate::partition) and
//! friends), with an in-register sorting network for short slices.
//!
//! The greedy sorts one short slice per node and layer (64 keys per node for DeepSeek-V3's
//! hierarchical policy, 256 for its global one), where it spent a quarter of its time with a
//! comparison sort. On x86-64 processors with AVX-512F, slices of up to [`avx512::SORT_MAX`] keys
//! are sorted instead by a bitonic network in 512-bit registers ([`avx512::sort`]): no
//! branches, and (up to 64 keys) no memory traffic between the load and the store. With AVX2
//! only, [`avx2::sort`] does the same in 256-bit registers, up to 64 keys at a time (runs of
//! 64 merged without branches). Elsewhere, and for longer slices, [`slice::sort_unstable`]
//! does the work. The keys the
//! engines sort are unique (the item's index sits in the low bits), so every correct sort
//! gives the same order and the answer does not depend on the processor; a property test
//! checks the network against `sort_unstable`.

use crate::kernels::{Isa, Kernels};
use crate::partition::merge_into;
use crate::{avx2, avx512};

/// Sorts `keys` ascending: with a register network when `kernels` runs vector kernels here
/// and the slice is short enough for them ([`avx512::SORT_MAX`], [`avx2::SORT_MAX`]), with
/// [`slice::sort_unstable`] otherwise.
pub(crate) fn sort_keys(keys: &mut [u64], kernels: Kernels) {
    match kernels.isa() {
        Isa::Avx512 if keys.len() <= avx512::SORT_MAX => avx512::sort(keys),
        Isa::Avx2 if keys.len() <= avx2::SORT_MAX => avx2::sort(keys),
        _ => keys.sort_unstable(),
    }
}

/// Merges the ascending keys `a` and `b` into `out` (`a.len() + b.len()` keys): with the
/// AVX-512 kernels, runs of up to [`avx512::MERGE_MAX`] keys in registers at once
/// ([`avx512::merge`]); four at a time in registers ([`avx2::merge`]) when `kernels` runs
/// the AVX2 kernels here (or the AVX-512 ones, for longer runs); one at a time without
/// branches on the keys ([`merge_into`]) otherwise.
pub(crate) fn merge_keys(a: &[u64], b: &[u64], out: &mut [u64], kernels: Kernels) {
    merge_keys_within(a, b, out, kernels, avx512::MERGE_MAX);
}

/// [`merge_keys`] taking the AVX-512 merge only for runs of at most `in_registers` keys (and
/// [`avx512::MERGE_MAX`]). Its cost is set by the register count its longer run needs, not by
/// the keys merged, so callers whose runs are often much shorter than their longest (the
/// lightest-first rounds of many packs) are faster with the AVX2 merge beyond a bound.
pub(crate) fn merge_keys_within(
    a: &[u64],
    b: &[u64],
    out: &mut [u64],
    kernels: Kernels,
    in_registers: usize,
) {
    let longer = a.len().max(b.len());
    match kernels.isa() {
        Isa::Avx512 if longer <= in_registers.min(avx512::MERGE_MAX) => avx512::merge(a, b, out),
        // Processors with AVX-512F have AVX2: its merge beats the scalar one there too.
        Isa::Avx2 | Isa::Avx512 if avx2::detected() => avx2::merge(a, b, out),
        _ => merge_into(a, b, out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sorted keys (duplicates, padding-equal keys and keys on either side of the top bit
    /// included), up to `max` of them.
    fn sorted_keys(max: usize) -> impl Strategy<Value = Vec<u64>> {
        prop_oneof![
            proptest::collection::vec(any::<u64>(), 0..max),
            proptest::collection::vec(
                prop_oneof![
                    0u64..4,
                    Just(u64::MAX),
                    Just(1 << 63),
                    Just(i64::MAX as u64),
                ],
                0..max,
            ),
        ]
        .prop_map(|mut keys| {
            keys.sort_unstable();
            keys
        })
    }

    proptest! {
        /// Every merge (the AVX-512 one in registers, the AVX2 one four at a time, the
        /// portable one, and `merge_keys` for both kernel choices) gives the sorted
        /// concatenation, for run lengths on both sides of every register count and beyond
        /// the in-register limit.
        #[test]
        fn merges_sort_the_concatenation(a in sorted_keys(140), b in sorted_keys(140)) {
            let mut expected = [a.clone(), b.clone()].concat();
            expected.sort_unstable();
            let mut out = vec![0; expected.len()];
            for kernels in [Kernels::Auto, Kernels::Portable] {
                out.fill(0);
                merge_keys(&a, &b, &mut out, kernels);
                prop_assert_eq!(&out, &expected);
                for in_registers in [0, 8, 32] {
                    out.fill(0);
                    merge_keys_within(&a, &b, &mut out, kernels, in_registers);
                    prop_assert_eq!(&out, &expected);
                }
            }
            if a.len().max(b.len()) <= avx512::MERGE_MAX && avx512::detected() {
                out.fill(0);
                avx512::merge(&a, &b, &mut out);
                prop_assert_eq!(&out, &expected);
            }
            if avx2::detected() {
                out.fill(0);
                avx2::merge(&a, &b, &mut out);
                prop_assert_eq!(&out, &expected);
            }
        }

        /// The networks (those the processor has) and the fallback all sort like
        /// `sort_unstable`, for every length up to the networks' limit and beyond, with
        /// duplicates and keys equal to the padding or on either side of the top bit.
        #[test]
        fn sorts_like_sort_unstable(
            keys in prop_oneof![
                proptest::collection::vec(any::<u64>(), 0..300),
                proptest::collection::vec(
                    prop_oneof![
                        0u64..4,
                        Just(u64::MAX),
                        Just(u64::MAX - 1),
                        Just(1 << 63),
                        Just(i64::MAX as u64),
                    ],
                    0..270,
                ),
            ],
        ) {
            let mut expected = keys.clone();
            expected.sort_unstable();
            let mut got = keys.clone();
            sort_keys(&mut got, Kernels::Portable);
            prop_assert_eq!(&got, &expected);
            if keys.len() <= avx512::SORT_MAX && avx512::detected() {
                let mut network = keys.clone();
                avx512::sort(&mut network);
                prop_assert_eq!(&network, &expected);
            }
            if keys.len() <= avx2::SORT_MAX && avx2::detected() {
                let mut network = keys;
                avx2::sort(&mut network);
                prop_assert_eq!(network, expected);
            }
        }
    }
}
