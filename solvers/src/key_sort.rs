//! Sorting of the engines' `u64` sort keys ([`descending_key`](crate::partition) and
//! friends), with an in-register sorting network for short slices.
//!
//! DeepSeek's hierarchical policy sorts one short slice per node and layer (64 keys for
//! DeepSeek-V3), which is where the greedy spends a quarter of its time with a comparison
//! sort. On x86-64 processors with AVX-512F, slices of up to 64 keys are sorted instead by a
//! bitonic network held in (up to eight) 512-bit registers: no branches, no memory traffic
//! between the load and the store. Elsewhere, and for longer slices, [`slice::sort_unstable`]
//! does the work. The keys the engines sort are unique (the item's index sits in the low
//! bits), so every correct sort gives the same order and the answer does not depend on the
//! processor; a property test checks the network against `sort_unstable`.

/// Sorts `keys` ascending: with the register network when the processor has AVX-512F and
/// the slice holds at most [`NETWORK_MAX`] keys, with [`slice::sort_unstable`] otherwise.
pub(crate) fn sort_keys(keys: &mut [u64]) {
    if keys.len() > NETWORK_MIN && keys.len() <= NETWORK_MAX && avx512::available() {
        avx512::sort(keys);
    } else {
        keys.sort_unstable();
    }
}

/// Longest slice the register network sorts (eight registers of eight keys).
pub(crate) const NETWORK_MAX: usize = 64;

/// Up to this length `sort_unstable` (an insertion sort there) is as fast as the network.
const NETWORK_MIN: usize = 8;

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use std::arch::x86_64::{
        __m512i, _mm512_mask_loadu_epi64, _mm512_mask_min_epu64, _mm512_mask_storeu_epi64,
        _mm512_max_epu64, _mm512_min_epu64, _mm512_permutex_epi64, _mm512_set1_epi64,
        _mm512_shuffle_epi32, _mm512_shuffle_i64x2, _MM_PERM_BADC,
    };

    /// Whether the processor runs AVX-512F (the detection is cached by `std`).
    pub(super) fn available() -> bool {
        std::arch::is_x86_feature_detected!("avx512f")
    }

    /// Sorts at most 64 keys; the caller checked [`available`].
    pub(super) fn sort(keys: &mut [u64]) {
        debug_assert!(keys.len() <= super::NETWORK_MAX && available());
        // SAFETY: the caller checked that the processor supports AVX-512F.
        unsafe {
            match keys.len() {
                0..=8 => sort_in_registers::<1>(keys),
                9..=16 => sort_in_registers::<2>(keys),
                17..=32 => sort_in_registers::<4>(keys),
                _ => sort_in_registers::<8>(keys),
            }
        }
    }

    /// Loads `keys` (at most `8 * R`) into `R` registers padded with `u64::MAX`, sorts them
    /// with a bitonic network and stores the first `keys.len()` back.
    #[target_feature(enable = "avx512f")]
    unsafe fn sort_in_registers<const R: usize>(keys: &mut [u64]) {
        let padding = _mm512_set1_epi64(-1);
        let mut regs = [padding; R];
        for (reg, chunk) in regs.iter_mut().zip(keys.chunks(8)) {
            // SAFETY: the mask enables only the chunk's lanes, which lie inside `keys`.
            *reg = unsafe {
                _mm512_mask_loadu_epi64(padding, lanes(chunk.len()), chunk.as_ptr().cast())
            };
        }
        bitonic(&mut regs);
        for (reg, chunk) in regs.iter().zip(keys.chunks_mut(8)) {
            // SAFETY: as for the load.
            unsafe {
                _mm512_mask_storeu_epi64(chunk.as_mut_ptr().cast(), lanes(chunk.len()), *reg)
            };
        }
    }

    /// The mask of the first `len` lanes.
    fn lanes(len: usize) -> u8 {
        (0xffu16 >> (8 - len)) as u8
    }

    /// Bitonic sort of the `8 * R` lanes (register-major): for every block size `k`, merge
    /// steps at distances `k / 2, ..., 1`, where key `i` and key `i + j` (`i & j == 0`) are
    /// put in ascending order when `i & k == 0` and in descending order otherwise. Every step
    /// is its own instantiation, so that the masks and shuffles are constants and the
    /// registers never leave the register file.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn bitonic<const R: usize>(regs: &mut [__m512i; R]) {
        macro_rules! steps {
            ($(($k:literal, $j:literal)),*) => {
                $(if $k <= 8 * R {
                    merge_step::<R, $k, $j>(regs);
                })*
            };
        }
        steps!(
            (2, 1),
            (4, 2),
            (4, 1),
            (8, 4),
            (8, 2),
            (8, 1),
            (16, 8),
            (16, 4),
            (16, 2),
            (16, 1),
            (32, 16),
            (32, 8),
            (32, 4),
            (32, 2),
            (32, 1),
            (64, 32),
            (64, 16),
            (64, 8),
            (64, 4),
            (64, 2),
            (64, 1)
        );
    }

    /// One step of [`bitonic`]: distances of eight and more pair whole registers, shorter
    /// ones the lanes of one register (shuffled against each other, the smaller key kept in
    /// the lanes of [`min_lanes`]).
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn merge_step<const R: usize, const K: usize, const J: usize>(regs: &mut [__m512i; R]) {
        if J >= 8 {
            let step = J / 8;
            for r in 0..R {
                if r & step == 0 {
                    let (a, b) = (regs[r], regs[r + step]);
                    let (low, high) = (_mm512_min_epu64(a, b), _mm512_max_epu64(a, b));
                    if (8 * r) & K == 0 {
                        (regs[r], regs[r + step]) = (low, high);
                    } else {
                        (regs[r], regs[r + step]) = (high, low);
                    }
                }
            }
        } else {
            let masks: [u8; R] = const { min_lanes::<R>(J, K) };
            for (reg, mask) in regs.iter_mut().zip(masks) {
                let partner = match J {
                    4 => _mm512_shuffle_i64x2::<0b01_00_11_10>(*reg, *reg),
                    2 => _mm512_permutex_epi64::<0b01_00_11_10>(*reg),
                    _ => _mm512_shuffle_epi32::<_MM_PERM_BADC>(*reg),
                };
                let high = _mm512_max_epu64(*reg, partner);
                *reg = _mm512_mask_min_epu64(high, mask, *reg, partner);
            }
        }
    }

    /// Per register, the lanes that keep the smaller key of their pair at distance `j < 8`
    /// in a merge of blocks of `k`: the lower lane of an ascending pair, the upper lane of a
    /// descending one.
    const fn min_lanes<const R: usize>(j: usize, k: usize) -> [u8; R] {
        let mut masks = [0; R];
        let mut i = 0;
        while i < 8 * R {
            let lower = i & j == 0;
            let ascending = i & k == 0;
            if lower == ascending {
                masks[i / 8] |= 1 << (i % 8);
            }
            i += 1;
        }
        masks
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx512 {
    pub(super) fn available() -> bool {
        false
    }

    pub(super) fn sort(keys: &mut [u64]) {
        keys.sort_unstable();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The network (when the processor has it) and the fallback both sort like
        /// `sort_unstable`, for every length up to the network's limit and beyond, with
        /// duplicates and keys equal to the padding.
        #[test]
        fn sorts_like_sort_unstable(
            keys in prop_oneof![
                proptest::collection::vec(any::<u64>(), 0..80),
                proptest::collection::vec(
                    prop_oneof![0u64..4, Just(u64::MAX), Just(u64::MAX - 1), Just(1 << 63)],
                    0..70,
                ),
            ],
        ) {
            let mut expected = keys.clone();
            expected.sort_unstable();
            let mut got = keys.clone();
            sort_keys(&mut got);
            prop_assert_eq!(&got, &expected);
            if keys.len() <= NETWORK_MAX && avx512::available() {
                let mut network = keys;
                avx512::sort(&mut network);
                prop_assert_eq!(network, expected);
            }
        }
    }
}
