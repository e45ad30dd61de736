//! The engines' AVX2 kernels, used when the processor has AVX2 but not AVX-512F ([`merge`]
//! also with AVX-512F, which has no merge of its own; detected at run time; every kernel has
//! a portable counterpart that gives the same answer, and a property test compares the two
//! wherever the kernel runs):
//!
//! - [`sort`]: a bitonic sorting network over up to 64 `u64` keys held in (up to 16) 256-bit
//!   registers; longer slices (up to [`SORT_MAX`]) are sorted 64 keys at a time and the runs
//!   merged by [`merge`], for [`key_sort`](crate::key_sort);
//! - [`merge`]: two ascending runs merged four keys at a time (a bitonic merge of eight keys
//!   in two registers, the next four taken from the run whose next key is smaller), without
//!   branches on the keys, for `key_sort` and the greedy's merge of its copies;
//! - [`fill_lightest_first`]: the lightest-first packing loop of up to four same-shape
//!   instances at once, one instance per 64-bit lane, for
//!   [`LightestFirst`](crate::partition).
//!
//! AVX2 compares 64-bit lanes as signed numbers only. The sort flips every key's top bit on
//! the way in and out, so that signed order is the keys' unsigned order; the fill's pack keys
//! never have the top bit set (a full pack is `i64::MAX`, not `u64::MAX`).
//!
//! This module and [`avx512`](crate::avx512) are the only ones with `unsafe` code. On other
//! architectures [`detected`] is `false` and the kernels are never called. Callers run them
//! only when their [`Kernels`](crate::kernels::Kernels) choice says so.

#[cfg(not(target_arch = "x86_64"))]
pub(crate) use elsewhere::{fill_lightest_first, merge, sort};
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{fill_lightest_first, merge, sort};

use crate::kernels::FillLimits;

/// Whether the processor has AVX2 (the kernels' precondition).
pub(crate) fn detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Longest slice [`sort`] takes: four runs of 64 keys.
pub(crate) const SORT_MAX: usize = 256;

/// Longest run [`sort`] sorts in registers (16 registers of four keys).
const RUN: usize = 64;

/// Most instances [`fill_lightest_first`] packs at once (one per lane).
pub(crate) const FILL_LANES: usize = 4;

/// Most packs per instance [`fill_lightest_first`] handles (one register per pack: up to
/// eight stay in registers, more are read from the stack every step, which still beats the
/// one-instance-at-a-time rounds of the portable code up to 32).
pub(crate) const FILL_MAX_PACKS: usize = 32;

/// Most packs per instance of the portable lockstep fill, which the kernel test compares
/// against (more packs are compared with the rounds fill).
#[cfg(test)]
const PORTABLE_LOCKSTEP_PACKS: usize = 8;

/// Largest pack size [`fill_lightest_first`] handles (its countdown field has 8 bits).
pub(crate) const FILL_MAX_PER_PACK: usize = 256;

/// The shapes [`fill_lightest_first`] takes.
pub(crate) const FILL: FillLimits = FillLimits {
    lanes: FILL_LANES,
    packs: FILL_MAX_PACKS,
    per_pack: FILL_MAX_PER_PACK,
};

/// Off x86-64 [`detected`] is `false`, so the kernels are never called; these stand-ins keep
/// the callers free of target conditions.
#[cfg(not(target_arch = "x86_64"))]
mod elsewhere {
    pub(crate) fn sort(_: &mut [u64]) {
        unreachable!("the AVX2 kernels exist on x86-64 only")
    }

    pub(crate) fn fill_lightest_first(_: usize, _: usize, _: usize, _: &[u64], _: &mut [u32]) {
        unreachable!("the AVX2 kernels exist on x86-64 only")
    }

    pub(crate) fn merge(_: &[u64], _: &[u64], _: &mut [u64]) {
        unreachable!("the AVX2 kernels exist on x86-64 only")
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_add_ps, _mm256_and_si256, _mm256_andnot_si256,
        _mm256_blend_epi32, _mm256_blendv_epi8, _mm256_castps_si256, _mm256_castsi256_ps,
        _mm256_cmpeq_epi64, _mm256_cmpgt_epi64, _mm256_loadu_si256, _mm256_maskload_epi64,
        _mm256_permute4x64_epi64, _mm256_set1_epi64x, _mm256_setr_epi64x, _mm256_shuffle_epi32,
        _mm256_storeu_si256, _mm256_xor_si256,
    };

    use super::{detected, FILL, FILL_LANES, FILL_MAX_PACKS, RUN, SORT_MAX};

    /// Sorts at most [`SORT_MAX`] keys ascending.
    ///
    /// # Panics
    /// When the slice is longer or the processor lacks AVX2 (callers check both).
    pub(crate) fn sort(keys: &mut [u64]) {
        assert!(keys.len() <= SORT_MAX && detected());
        if keys.len() <= RUN {
            // SAFETY: the processor supports AVX2 (asserted above).
            unsafe { sort_run(keys) };
            return;
        }
        for run in keys.chunks_mut(RUN) {
            // SAFETY: as above.
            unsafe { sort_run(run) };
        }
        // Merge runs of 64 into 128, then 128 into 256, through a buffer on the stack.
        let mut spare = [0u64; SORT_MAX];
        let spare = &mut spare[..keys.len()];
        let mut width = RUN;
        let mut in_keys = true;
        while width < keys.len() {
            let (from, to): (&[u64], &mut [u64]) = if in_keys {
                (keys, spare)
            } else {
                (spare, keys)
            };
            for (from, to) in from.chunks(2 * width).zip(to.chunks_mut(2 * width)) {
                let (a, b) = from.split_at(width.min(from.len()));
                // SAFETY: as above.
                unsafe { merge_runs(a, b, to) };
            }
            in_keys = !in_keys;
            width *= 2;
        }
        if !in_keys {
            keys.copy_from_slice(spare);
        }
    }

    /// Merges the ascending keys `a` and `b` into `out`, as
    /// [`merge_into`](crate::partition::merge_into) does.
    ///
    /// # Panics
    /// When `out` does not hold `a.len() + b.len()` keys or the processor lacks AVX2.
    pub(crate) fn merge(a: &[u64], b: &[u64], out: &mut [u64]) {
        assert!(out.len() == a.len() + b.len() && detected());
        // SAFETY: the processor supports AVX2 (asserted above).
        unsafe { merge_runs(a, b, out) };
    }

    /// Four keys of `keys` from `at` (top bits flipped), padded with the largest key past the
    /// end. A short block is a masked load (no copy through memory, which would stall the
    /// load behind four stores).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn block(keys: &[u64], at: usize) -> __m256i {
        let left = keys.len().saturating_sub(at);
        let loaded = if left >= 4 {
            // SAFETY: keys `at..at + 4` exist (32 bytes); unaligned loads are allowed.
            unsafe { _mm256_loadu_si256(keys.as_ptr().add(at).cast()) }
        } else if left == 0 {
            _mm256_set1_epi64x(-1)
        } else {
            let present = _mm256_cmpgt_epi64(
                _mm256_set1_epi64x(left as i64),
                _mm256_setr_epi64x(0, 1, 2, 3),
            );
            // SAFETY: only the lanes of keys `at..keys.len()` are read (the mask's).
            let some = unsafe { _mm256_maskload_epi64(keys.as_ptr().add(at).cast(), present) };
            _mm256_blendv_epi8(_mm256_set1_epi64x(-1), some, present)
        };
        _mm256_xor_si256(loaded, _mm256_set1_epi64x(TOP))
    }

    /// The merge of [`merge`]: while both runs have keys left, the four smallest keys not
    /// yet written are among the eight in two registers (the four kept from the last step and
    /// the next four of the run whose next key is smaller), so a bitonic merge of the eight
    /// writes four and keeps four. A run's last block may be short: it reads past the end as
    /// the largest key, which sorts after the real ones (or equals them). Once a run is used
    /// up, the kept keys and the other run's rest are merged one at a time (the rest copied
    /// once the kept ones are written).
    #[target_feature(enable = "avx2")]
    fn merge_runs(a: &[u64], b: &[u64], out: &mut [u64]) {
        debug_assert_eq!(out.len(), a.len() + b.len());
        let flip = _mm256_set1_epi64x(TOP);
        let (mut from_a, mut from_b) = (0, 0);
        let mut written = 0;
        let mut kept = block(b, 0);
        let mut next = block(a, 0);
        if !a.is_empty() && !b.is_empty() {
            (from_a, from_b) = (4, 4);
            loop {
                // Ascending `kept`, descending `next`: a bitonic sequence of eight (the new
                // block is the one reversed, off the chain from one step to the next).
                let mut regs = [kept, _mm256_permute4x64_epi64::<0b00_01_10_11>(next)];
                merge_step::<2, 8, 4>(&mut regs);
                merge_step::<2, 8, 2>(&mut regs);
                merge_step::<2, 8, 1>(&mut regs);
                let smallest = _mm256_xor_si256(regs[0], flip);
                kept = regs[1];
                if let Some(lanes) = out.get_mut(written..written + 4) {
                    // SAFETY: `lanes` holds four keys; unaligned stores are allowed.
                    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), smallest) };
                    written += 4;
                } else {
                    let mut lanes = [0u64; 4];
                    // SAFETY: as above.
                    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), smallest) };
                    let tail = &mut out[written..];
                    tail.copy_from_slice(&lanes[..tail.len()]);
                    return;
                }
                if from_a >= a.len() || from_b >= b.len() {
                    break;
                }
                // The next four come from the run whose next key is smaller; both blocks are
                // loaded and one kept, without a branch on the keys.
                let take_a = a[from_a] <= b[from_b];
                let choose = _mm256_set1_epi64x(-i64::from(take_a));
                next = _mm256_blendv_epi8(block(b, from_b), block(a, from_a), choose);
                from_a += 4 * usize::from(take_a);
                from_b += 4 * usize::from(!take_a);
            }
        }
        // The kept keys (their real ones first: padding sorts last) and the rest of the run
        // that has keys left.
        let rest = if from_a < a.len() {
            &a[from_a..]
        } else {
            &b[from_b.min(b.len())..]
        };
        let mut lanes = [0u64; 4];
        // SAFETY: `lanes` holds four keys; unaligned stores are allowed.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), _mm256_xor_si256(kept, flip)) };
        let real = out.len() - written - rest.len();
        crate::partition::merge_into(&lanes[..real], rest, &mut out[written..]);
    }

    /// Sorts at most [`RUN`] keys in registers.
    #[target_feature(enable = "avx2")]
    fn sort_run(keys: &mut [u64]) {
        match keys.len() {
            0..=4 => sort_in_registers::<1>(keys),
            5..=8 => sort_in_registers::<2>(keys),
            9..=16 => sort_in_registers::<4>(keys),
            17..=32 => sort_in_registers::<8>(keys),
            _ => sort_in_registers::<16>(keys),
        }
    }

    /// [`bitonic`] over 16 registers, ordered to need fewer at a time: each half is sorted on
    /// its own (eight registers and their temporaries fit in the sixteen the processor has),
    /// the upper half is reversed (a sorted run followed by a reversed one is what the
    /// network's last merge takes) and the two are merged.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn bitonic_by_halves(regs: &mut [__m256i; 16]) {
        let mut low: [__m256i; 8] = regs[..8].try_into().expect("eight registers");
        let mut high: [__m256i; 8] = regs[8..].try_into().expect("eight registers");
        bitonic(&mut low);
        bitonic(&mut high);
        for (r, reg) in high.iter().rev().enumerate() {
            regs[8 + r] = _mm256_permute4x64_epi64::<0b00_01_10_11>(*reg);
        }
        regs[..8].copy_from_slice(&low);
        merge_step::<16, 64, 32>(regs);
        merge_step::<16, 64, 16>(regs);
        merge_step::<16, 64, 8>(regs);
        merge_step::<16, 64, 4>(regs);
        merge_step::<16, 64, 2>(regs);
        merge_step::<16, 64, 1>(regs);
    }

    /// The top bit: flipping it turns unsigned order into signed order and back.
    const TOP: i64 = i64::MIN;

    /// Loads `keys` (at most `4 * R`) into `R` registers (top bits flipped) padded with the
    /// largest key, sorts them with a bitonic network and stores the first `keys.len()` back.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn sort_in_registers<const R: usize>(keys: &mut [u64]) {
        let flip = _mm256_set1_epi64x(TOP);
        let mut regs = [_mm256_set1_epi64x(i64::MAX); R];
        for (reg, chunk) in regs.iter_mut().zip(keys.chunks(4)) {
            let loaded = if let Ok(lanes) = <&[u64; 4]>::try_from(chunk) {
                // SAFETY: `lanes` holds four keys (32 bytes); unaligned loads are allowed.
                unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
            } else {
                // The last, partial chunk: padded with the largest key.
                let mut lanes = [u64::MAX; 4];
                lanes[..chunk.len()].copy_from_slice(chunk);
                // SAFETY: as above.
                unsafe { _mm256_loadu_si256(lanes.as_ptr().cast()) }
            };
            *reg = _mm256_xor_si256(loaded, flip);
        }
        if let Ok(sixteen) = <&mut [__m256i; 16]>::try_from(&mut regs[..]) {
            bitonic_by_halves(sixteen);
        } else {
            bitonic(&mut regs);
        }
        for (reg, chunk) in regs.iter().zip(keys.chunks_mut(4)) {
            let sorted = _mm256_xor_si256(*reg, flip);
            if let Ok(lanes) = <&mut [u64; 4]>::try_from(&mut *chunk) {
                // SAFETY: as for the loads.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sorted) };
            } else {
                let mut lanes = [0u64; 4];
                // SAFETY: as for the loads.
                unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), sorted) };
                chunk.copy_from_slice(&lanes[..chunk.len()]);
            }
        }
    }

    /// Bitonic sort of the `4 * R` lanes (register-major): for every run length `k`, merge
    /// steps at distances `k / 2, ..., 1`, where key `i` and key `i + j` (`i & j == 0`) are
    /// put in ascending order when `i & k == 0` and in descending order otherwise (the
    /// network of the AVX-512 kernel, four lanes to a register).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn bitonic<const R: usize>(regs: &mut [__m256i; R]) {
        macro_rules! step {
            ($k:literal, $j:literal) => {
                if $k <= 4 * R {
                    merge_step::<R, $k, $j>(regs);
                }
            };
        }
        crate::kernels::bitonic_steps!(step);
    }

    /// `(min, max)` of two registers, lane by lane (signed).
    #[inline]
    #[target_feature(enable = "avx2")]
    fn min_max(a: __m256i, b: __m256i) -> (__m256i, __m256i) {
        let a_greater = _mm256_cmpgt_epi64(a, b);
        (
            _mm256_blendv_epi8(a, b, a_greater),
            _mm256_blendv_epi8(b, a, a_greater),
        )
    }

    /// Runs `$body` with `$r` bound to each register index `0..16` in turn, written out:
    /// LLVM does not unroll the loops of a 16-register step by itself, and a loop would keep
    /// the registers in memory.
    macro_rules! each_register {
        ($r:ident => $body:block) => {
            each_register!(@ $r $body 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)
        };
        (@ $r:ident $body:block $($index:literal)*) => {
            $({
                let $r: usize = $index;
                $body
            })*
        };
    }

    /// One step of [`bitonic`]: distances of four and more pair whole registers, shorter ones
    /// the lanes of one register (each lane takes its partner's key when that puts the pair
    /// in order: the partner is smaller in a lane that keeps the smaller key, larger in one
    /// that keeps the larger). Every condition is on constants.
    #[inline]
    #[target_feature(enable = "avx2")]
    fn merge_step<const R: usize, const K: usize, const J: usize>(regs: &mut [__m256i; R]) {
        if J >= 4 {
            let step = J / 4;
            each_register!(r => {
                if r + step < R && r & step == 0 {
                    let (low, high) = min_max(regs[r], regs[r + step]);
                    if (4 * r) & K == 0 {
                        (regs[r], regs[r + step]) = (low, high);
                    } else {
                        (regs[r], regs[r + step]) = (high, low);
                    }
                }
            });
        } else {
            let keeps_max: [[i64; 4]; R] = const { max_lanes::<R>(J, K) };
            each_register!(r => {
                if r < R {
                    let reg = regs[r];
                    let partner = if J == 2 {
                        _mm256_permute4x64_epi64::<0b01_00_11_10>(reg)
                    } else {
                        _mm256_shuffle_epi32::<0b01_00_11_10>(reg)
                    };
                    let [a, b, c, d] = keeps_max[r];
                    let take = _mm256_xor_si256(
                        _mm256_cmpgt_epi64(reg, partner),
                        _mm256_setr_epi64x(a, b, c, d),
                    );
                    regs[r] = _mm256_blendv_epi8(reg, partner, take);
                }
            });
        }
    }

    /// Per register, all-ones in the lanes that keep the larger key of their pair at
    /// distance `j < 4` in a merge of runs of `k`: the upper lane of an ascending pair, the
    /// lower lane of a descending one.
    const fn max_lanes<const R: usize>(j: usize, k: usize) -> [[i64; 4]; R] {
        let mut masks = [[0; 4]; R];
        let mut i = 0;
        while i < 4 * R {
            let lower = i & j == 0;
            let ascending = i & k == 0;
            if lower != ascending {
                masks[i / 4][i % 4] = -1;
            }
            i += 1;
        }
        masks
    }

    /// The contract of the AVX-512 kernel of the same name (instance `s` of `lanes` packs
    /// `keys[s * per_instance..][..per_instance]` lightest-first and writes its slots in
    /// `by_slot[s * per_instance..]`, bit-exact with the portable loop), four lanes at a time.
    ///
    /// Pack `p` of every instance lives in register `p`, lane `s`, as the key `sum bits << 32
    /// | slot << 8 | left` (`i64::MAX` once full), where `slot = p * per_pack + count` is the
    /// slot its next copy takes and `left = per_pack - 1 - count` the copies it takes after
    /// that: one vertical minimum over the registers finds every instance's lightest pack at
    /// once (on equal sums the lowest slot, so the lowest pack), and its key names the slot.
    ///
    /// # Panics
    /// When the processor lacks AVX2, the shape exceeds [`FILL`], or a slice is too short.
    pub(crate) fn fill_lightest_first(
        lanes: usize,
        num_packs: usize,
        per_pack: usize,
        keys: &[u64],
        by_slot: &mut [u32],
    ) {
        assert!(detected() && FILL.fits(lanes, num_packs, per_pack, keys.len(), by_slot.len()));
        // SAFETY: AVX2 is there (asserted above).
        unsafe {
            match num_packs {
                0..=8 => fill_lanes::<8>(lanes, num_packs, per_pack, keys, by_slot),
                9..=16 => fill_lanes::<16>(lanes, num_packs, per_pack, keys, by_slot),
                _ => fill_lanes::<FILL_MAX_PACKS>(lanes, num_packs, per_pack, keys, by_slot),
            }
        }
    }

    /// [`fill_lightest_first`] with the packs in `P` registers (the missing ones full).
    #[target_feature(enable = "avx2")]
    fn fill_lanes<const P: usize>(
        lanes: usize,
        num_packs: usize,
        per_pack: usize,
        keys: &[u64],
        by_slot: &mut [u32],
    ) {
        const SLOT: i64 = 0xff_ffff << 8;
        const LEFT: i64 = 0xff;
        const SUM: i64 = !((1 << 32) - 1);
        let per_instance = num_packs * per_pack;
        let full = _mm256_set1_epi64x(i64::MAX);
        let slot_mask = _mm256_set1_epi64x(SLOT);
        let left_mask = _mm256_set1_epi64x(LEFT);
        let sum_mask = _mm256_set1_epi64x(SUM);
        let zero = _mm256_set1_epi64x(0);
        // One slot further, one copy fewer left.
        let step_on = _mm256_set1_epi64x((1 << 8) - 1);
        let mut open: [__m256i; P] = std::array::from_fn(|p| {
            if p < num_packs {
                _mm256_set1_epi64x(((p * per_pack) << 8 | (per_pack - 1)) as i64)
            } else {
                full
            }
        });
        // Missing lanes read their keys from lane 0 and write nothing.
        let first: [usize; FILL_LANES] =
            std::array::from_fn(|s| if s < lanes { s * per_instance } else { 0 });
        for step in 0..per_instance {
            let lane_keys: [u64; FILL_LANES] = std::array::from_fn(|s| keys[first[s] + step]);
            let [k0, k1, k2, k3] = lane_keys.map(|key| key as i64);
            let key = _mm256_setr_epi64x(k0, k1, k2, k3);
            // A tree of minima (depth log2 P), not a chain.
            let lightest = {
                let mut level = open;
                let mut width = P;
                while width > 1 {
                    width /= 2;
                    for i in 0..width {
                        level[i] = min_max(level[2 * i], level[2 * i + 1]).0;
                    }
                }
                level[0]
            };
            // The copy's weight bits sit inverted in the key's high half. The sums are added
            // with the low halves (slot and countdown) cleared, so that no lane computes with
            // them as floats; the blend takes the sums from the high halves and the next slot
            // and countdown from the low halves.
            let weight = _mm256_andnot_si256(key, sum_mask);
            let summed = _mm256_castps_si256(_mm256_add_ps(
                _mm256_castsi256_ps(_mm256_and_si256(lightest, sum_mask)),
                _mm256_castsi256_ps(weight),
            ));
            let counted =
                _mm256_blend_epi32::<0b1010_1010>(_mm256_add_epi64(lightest, step_on), summed);
            let now_full = _mm256_cmpeq_epi64(_mm256_and_si256(lightest, left_mask), zero);
            let updated = _mm256_blendv_epi8(counted, full, now_full);
            for pack in &mut open {
                let chosen = _mm256_cmpeq_epi64(*pack, lightest);
                *pack = _mm256_blendv_epi8(*pack, updated, chosen);
            }
            let mut slots = [0u64; FILL_LANES];
            let slot = _mm256_and_si256(lightest, slot_mask);
            // SAFETY: `slots` holds four lanes (32 bytes); unaligned stores are allowed.
            unsafe { _mm256_storeu_si256(slots.as_mut_ptr().cast(), slot) };
            for s in 0..lanes {
                by_slot[first[s] + (slots[s] >> 8) as usize] = lane_keys[s] as u32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    use crate::kernels::{Isa, Kernels};
    use crate::partition::{descending_key, fill_portable, LightestFirst};

    /// `Auto` runs these kernels exactly where the processor has AVX2 and not AVX-512F, and
    /// `Portable` never.
    #[test]
    fn the_choice_turns_the_kernels_on_or_off() {
        assert_eq!(
            Kernels::Auto.isa() == Isa::Avx2,
            detected() && !crate::avx512::detected()
        );
        assert_eq!(Kernels::Portable.isa(), Isa::Portable);
    }

    proptest! {
        /// The vector merge writes what the portable merge writes, for runs of any length
        /// (either empty, not multiples of four), with repeated keys and keys equal to the
        /// padding or on either side of the top bit.
        #[test]
        fn merge_equals_the_portable_merge(
            mut a in proptest::collection::vec(
                prop_oneof![any::<u64>(), Just(u64::MAX), Just(1 << 63), 0u64..6], 0..140),
            mut b in proptest::collection::vec(
                prop_oneof![any::<u64>(), Just(u64::MAX), Just(i64::MAX as u64), 0u64..6], 0..140),
        ) {
            prop_assume!(detected());
            a.sort_unstable();
            b.sort_unstable();
            let mut expected = vec![0; a.len() + b.len()];
            crate::partition::merge_into(&a, &b, &mut expected);
            let mut got = vec![0; a.len() + b.len()];
            merge(&a, &b, &mut got);
            prop_assert_eq!(got, expected);
        }

        /// The four-lane fill writes every slot as the portable code does (the lockstep fill
        /// up to eight packs, the rounds one instance at a time beyond), for one to four
        /// instances (missing lanes idle), one to 32 packs, on weights full of ties and zeros,
        /// huge ones (sums rounding in `f32`) and in any arrival order.
        #[test]
        fn fill_equals_the_portable_fill(
            lanes in 1usize..=FILL_LANES,
            num_packs in 1usize..=FILL_MAX_PACKS,
            per_pack in 1usize..12,
            raw in proptest::collection::vec(
                prop_oneof![
                    4 => (0u32..8).prop_map(|k| k as f32 / 2.0),
                    1 => Just(0.0f32),
                    1 => Just(3.0e38f32),
                    1 => (1u32..1_000_000).prop_map(|k| k as f32 * 1.0e-3),
                ],
                1..64,
            ),
        ) {
            prop_assume!(detected());
            let per_instance = num_packs * per_pack;
            let keys: Vec<u64> = (0..lanes * per_instance)
                .map(|i| descending_key(raw[(i * 7) % raw.len()], i))
                .collect();
            let mut expected = vec![u32::MAX; keys.len()];
            if num_packs <= PORTABLE_LOCKSTEP_PACKS {
                fill_portable(lanes, num_packs, per_pack, &keys, &mut expected);
            } else {
                let mut rounds = LightestFirst::default();
                rounds.kernels = Kernels::Portable;
                expected.copy_from_slice(rounds.assign(lanes, num_packs, per_pack, &keys));
            }
            let mut got = vec![u32::MAX; keys.len()];
            fill_lightest_first(lanes, num_packs, per_pack, &keys, &mut got);
            prop_assert_eq!(got, expected);
        }
    }
}
