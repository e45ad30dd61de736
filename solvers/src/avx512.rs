//! The engines' AVX-512 kernels, used when the processor has AVX-512F (detected at run time;
//! every kernel has a portable counterpart that gives the same answer, and a property test
//! compares the two wherever the kernel runs):
//!
//! - [`sort`]: a bitonic sorting network over up to 256 `u64` keys held in (up to 32)
//!   registers, for [`key_sort`](crate::key_sort);
//! - [`merge`]: the last stage of that network alone, merging two sorted runs of up to 128
//!   keys each, for [`key_sort`](crate::key_sort);
//! - [`fill_lightest_first`]: the lightest-first packing loop of up to sixteen same-shape
//!   instances at once, one instance per 64-bit lane, for
//!   [`LightestFirst`](crate::partition).
//!
//! This module and [`avx2`](crate::avx2) are the only ones with `unsafe` code. On other architectures [`detected`] is
//! `false` and the kernels are never called. Callers run them only when their
//! [`Kernels`](crate::kernels::Kernels) choice says so ([`Kernels::vector`](crate::kernels::Kernels::vector)).

#[cfg(not(target_arch = "x86_64"))]
pub(crate) use elsewhere::{fill_lightest_first, label_slots, merge, sort};
#[cfg(target_arch = "x86_64")]
pub(crate) use x86::{fill_lightest_first, label_slots, merge, sort};

use crate::kernels::FillLimits;

/// Whether the processor has AVX-512F (the kernels' precondition).
pub(crate) fn detected() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512f")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Longest slice [`sort`] takes (32 registers of eight keys).
pub(crate) const SORT_MAX: usize = 256;

/// Longest run [`merge`] takes (each run fills half of at most 32 registers).
pub(crate) const MERGE_MAX: usize = SORT_MAX / 2;

/// Most instances [`fill_lightest_first`] packs at once (one per lane of two sets of
/// registers).
pub(crate) const FILL_LANES: usize = 16;

/// Most packs per instance [`fill_lightest_first`] handles (one register per pack).
pub(crate) const FILL_MAX_PACKS: usize = 8;

/// Largest pack size [`fill_lightest_first`] handles (its count field has 24 bits).
pub(crate) const FILL_MAX_PER_PACK: usize = (1 << 24) - 1;

/// The shapes [`fill_lightest_first`] takes.
pub(crate) const FILL: FillLimits = FillLimits {
    lanes: FILL_LANES,
    packs: FILL_MAX_PACKS,
    per_pack: FILL_MAX_PER_PACK,
};

/// Off x86-64 [`available`] is `false`, so the kernels are never called; these stand-ins
/// keep the callers free of target conditions.
#[cfg(not(target_arch = "x86_64"))]
mod elsewhere {
    pub(crate) fn sort(_: &mut [u64]) {
        unreachable!("the AVX-512 kernels exist on x86-64 only")
    }

    pub(crate) fn merge(_: &[u64], _: &[u64], _: &mut [u64]) {
        unreachable!("the AVX-512 kernels exist on x86-64 only")
    }

    pub(crate) fn fill_lightest_first(_: usize, _: usize, _: usize, _: &[u64], _: &mut [u32]) {
        unreachable!("the AVX-512 kernels exist on x86-64 only")
    }

    pub(crate) fn label_slots(
        _: &mut crate::lanes::LaneBuffers,
        _: &[f32],
        _: &[usize],
        _: crate::lanes::LaneShape,
        _: &mut crate::lanes::SlotsOut<'_>,
    ) {
        unreachable!("the AVX-512 kernels exist on x86-64 only")
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m512i, _mm512_add_epi64, _mm512_and_si512, _mm512_andnot_si512, _mm512_castps_si512,
        _mm512_castsi512_ps, _mm512_cmpeq_epu64_mask, _mm512_cvtepi64_epi32, _mm512_mask_add_ps,
        _mm512_mask_i64gather_epi64, _mm512_mask_i64scatter_epi32, _mm512_mask_loadu_epi64,
        _mm512_mask_min_epu64, _mm512_mask_mov_epi64, _mm512_mask_storeu_epi64, _mm512_max_epu64,
        _mm512_min_epu64, _mm512_mul_epu32, _mm512_permutex_epi64, _mm512_permutexvar_epi64,
        _mm512_set1_epi64, _mm512_setr_epi64, _mm512_shuffle_epi32, _mm512_shuffle_i64x2,
        _mm512_srli_epi64, _MM_PERM_BADC,
    };

    use std::arch::x86_64::{
        __mmask8, _mm256_setzero_si256, _mm512_add_ps, _mm512_cvtepu32_epi64, _mm512_cvttps_epi32,
        _mm512_div_ps, _mm512_loadu_si512, _mm512_mask_i64gather_epi32,
        _mm512_mask_i64scatter_epi64, _mm512_or_si512, _mm512_setzero_si512, _mm512_slli_epi64,
        _mm512_storeu_si512, _mm512_xor_si512,
    };

    use super::{detected, FILL, FILL_MAX_PACKS, MERGE_MAX, SORT_MAX};
    use crate::lanes::{
        self, merge32_in_registers, sort16_in_registers, Block, LaneBuffers, LaneShape, Lanes,
        SlotsOut,
    };

    /// Sorts at most [`SORT_MAX`] keys ascending.
    ///
    /// # Panics
    /// When the slice is longer or the processor lacks AVX-512F (callers check both).
    pub(crate) fn sort(keys: &mut [u64]) {
        assert!(keys.len() <= SORT_MAX && detected());
        // SAFETY: the processor supports AVX-512F (asserted above).
        unsafe {
            match keys.len() {
                0..=8 => sort_in_registers::<1>(keys),
                9..=16 => sort_in_registers::<2>(keys),
                17..=32 => sort_in_registers::<4>(keys),
                33..=64 => sort_in_registers::<8>(keys),
                65..=128 => sort_in_registers::<16>(keys),
                _ => sort_in_registers::<32>(keys),
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
                _mm512_mask_loadu_epi64(padding, first_lanes(chunk.len()), chunk.as_ptr().cast())
            };
        }
        bitonic(&mut regs);
        for (reg, chunk) in regs.iter().zip(keys.chunks_mut(8)) {
            // SAFETY: as for the load.
            unsafe {
                _mm512_mask_storeu_epi64(chunk.as_mut_ptr().cast(), first_lanes(chunk.len()), *reg)
            };
        }
    }

    /// Merges the ascending keys `a` and `b` (at most [`MERGE_MAX`] each) into `out`, as
    /// [`merge_into`](crate::partition::merge_into) does: `a` ascending in the first half of
    /// the registers and `b` descending in the second (both padded with `u64::MAX`, so the
    /// lanes form one bitonic sequence), then the last stage of the bitonic network, with
    /// no branch on the keys. Equal keys are the same value, so which run one came from does
    /// not show.
    ///
    /// # Panics
    /// When `out` does not hold `a.len() + b.len()` keys, a run is longer than
    /// [`MERGE_MAX`] or the processor lacks AVX-512F (callers check the last two).
    pub(crate) fn merge(a: &[u64], b: &[u64], out: &mut [u64]) {
        let longer = a.len().max(b.len());
        assert!(out.len() == a.len() + b.len() && longer <= MERGE_MAX && detected());
        // SAFETY: the processor supports AVX-512F (asserted above).
        unsafe {
            match longer {
                0..=8 => merge_in_registers::<2>(a, b, out),
                9..=16 => merge_in_registers::<4>(a, b, out),
                17..=32 => merge_in_registers::<8>(a, b, out),
                33..=64 => merge_in_registers::<16>(a, b, out),
                _ => merge_in_registers::<32>(a, b, out),
            }
        }
    }

    /// [`merge`] in `R` registers (runs of at most `4 * R` keys).
    #[target_feature(enable = "avx512f")]
    unsafe fn merge_in_registers<const R: usize>(a: &[u64], b: &[u64], out: &mut [u64]) {
        let padding = _mm512_set1_epi64(-1);
        let reverse = _mm512_setr_epi64(7, 6, 5, 4, 3, 2, 1, 0);
        let mut regs = [padding; R];
        for (reg, chunk) in regs[..R / 2].iter_mut().zip(a.chunks(8)) {
            // SAFETY: the mask enables only the chunk's lanes, which lie inside `a`.
            *reg = unsafe {
                _mm512_mask_loadu_epi64(padding, first_lanes(chunk.len()), chunk.as_ptr().cast())
            };
        }
        // Key `i` of `b` goes to lane `8 * R - 1 - i`: its chunk `c` reversed into register
        // `R - 1 - c`, the padding before it.
        for (reg, chunk) in regs[R / 2..].iter_mut().rev().zip(b.chunks(8)) {
            // SAFETY: as for `a`.
            let loaded = unsafe {
                _mm512_mask_loadu_epi64(padding, first_lanes(chunk.len()), chunk.as_ptr().cast())
            };
            *reg = _mm512_permutexvar_epi64(reverse, loaded);
        }
        macro_rules! step {
            ($k:literal, $j:literal) => {
                if $k == 8 * R {
                    merge_step::<R, $k, $j>(&mut regs);
                }
            };
        }
        crate::kernels::bitonic_steps!(step);
        for (reg, chunk) in regs.iter().zip(out.chunks_mut(8)) {
            // SAFETY: the mask enables only the chunk's lanes, which lie inside `out`.
            unsafe {
                _mm512_mask_storeu_epi64(chunk.as_mut_ptr().cast(), first_lanes(chunk.len()), *reg)
            };
        }
    }

    /// The mask of the first `len <= 8` lanes.
    fn first_lanes(len: usize) -> u8 {
        (0xffu16 >> (8 - len)) as u8
    }

    /// Bitonic sort of the `8 * R` lanes (register-major): for every run length `k`, merge
    /// steps at distances `k / 2, ..., 1`, where key `i` and key `i + j` (`i & j == 0`) are
    /// put in ascending order when `i & k == 0` and in descending order otherwise. Every step
    /// is its own instantiation, so that the masks and shuffles are constants and the
    /// registers never leave the register file.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn bitonic<const R: usize>(regs: &mut [__m512i; R]) {
        macro_rules! step {
            ($k:literal, $j:literal) => {
                if $k <= 8 * R {
                    merge_step::<R, $k, $j>(regs);
                }
            };
        }
        crate::kernels::bitonic_steps!(step);
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
    /// in a merge of runs of `k`: the lower lane of an ascending pair, the upper lane of a
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

    /// Lightest-first packing of `lanes` instances at once, bit-exact with the portable loop
    /// of [`LightestFirst`](crate::partition): instance `s` packs the copies whose
    /// [`descending_key`](crate::partition)s are `keys[s * per_instance..][..per_instance]`
    /// (in that order, `per_instance = num_packs * per_pack`) into its `num_packs` packs,
    /// each copy to the lightest pack that is not full (lowest pack on ties, sums in `f32`),
    /// and writes each copy's low 32 key bits to its slot in `by_slot[s * per_instance..]`.
    ///
    /// Pack `p` of every instance lives in register `p`, lane `s % 8` of its group of eight
    /// instances, as the key `sum bits << 32 | p << 24 | count` (`u64::MAX` once full), so one
    /// vertical minimum over a group's registers finds its instances' lightest packs at once;
    /// two groups take their steps together (their chains overlap). Measured against one
    /// group of eight at a time (DeepSeek-V3's hierarchical shapes, phy2log, one thread,
    /// six interleaved rounds): R=288 P=32 N=4 and R=320 P=64 N=8 1-2% faster overall.
    ///
    /// # Panics
    /// When the processor lacks AVX-512F, the shape exceeds [`FILL`], or a slice is too
    /// short.
    pub(crate) fn fill_lightest_first(
        lanes: usize,
        num_packs: usize,
        per_pack: usize,
        keys: &[u64],
        by_slot: &mut [u32],
    ) {
        assert!(detected() && FILL.fits(lanes, num_packs, per_pack, keys.len(), by_slot.len()));
        // SAFETY: AVX-512F is there, and every gathered or scattered index is below
        // `lanes * num_packs * per_pack`, inside both slices (asserted above).
        unsafe { fill_lanes(lanes, num_packs, per_pack, keys, by_slot) }
    }

    /// [`fill_lightest_first`]: up to two groups of eight instances, each in its own set of
    /// registers, taking their steps together so that the two groups' dependency chains
    /// (find the lightest pack, add, update) overlap.
    #[target_feature(enable = "avx512f")]
    unsafe fn fill_lanes(
        lanes: usize,
        num_packs: usize,
        per_pack: usize,
        keys: &[u64],
        by_slot: &mut [u32],
    ) {
        let per_instance = num_packs * per_pack;
        let first = LaneGroup::new(lanes.min(8), 0, num_packs, per_pack);
        if lanes <= 8 {
            let mut group = first;
            for _ in 0..per_instance {
                // SAFETY: as for `fill_lightest_first`.
                unsafe { group.step(keys, by_slot) };
            }
            return;
        }
        let mut groups = [first, LaneGroup::new(lanes - 8, 8, num_packs, per_pack)];
        for _ in 0..per_instance {
            for group in &mut groups {
                // SAFETY: as for `fill_lightest_first`.
                unsafe { group.step(keys, by_slot) };
            }
        }
    }

    /// Eight (or fewer) instances of [`fill_lanes`], one per 64-bit lane.
    #[derive(Clone, Copy)]
    struct LaneGroup {
        /// Pack `p` of every instance: register `p`, lane `s`, as `sum bits << 32 | p << 24 |
        /// count` (`u64::MAX` once full).
        open: [__m512i; FILL_MAX_PACKS],
        /// Every lane's next copy.
        at: __m512i,
        /// Every lane's first slot.
        first_slot: __m512i,
        active: u8,
        pack_size: __m512i,
        last: __m512i,
    }

    impl LaneGroup {
        /// `lanes` instances from instance `first` on.
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn new(lanes: usize, first: usize, num_packs: usize, per_pack: usize) -> Self {
            let per_instance = (num_packs * per_pack) as i64;
            let full = _mm512_set1_epi64(-1);
            // Lane s starts at copy (and slot) (first + s) * per_instance.
            let lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
            let at = _mm512_mul_epu32(
                _mm512_add_epi64(lane, _mm512_set1_epi64(first as i64)),
                _mm512_set1_epi64(per_instance),
            );
            Self {
                open: std::array::from_fn(|p| {
                    if p < num_packs {
                        _mm512_set1_epi64((p as i64) << 24)
                    } else {
                        full
                    }
                }),
                at,
                first_slot: at,
                active: first_lanes(lanes),
                pack_size: _mm512_set1_epi64(per_pack as i64),
                last: _mm512_set1_epi64(per_pack as i64 - 1),
            }
        }

        /// Packs every lane's next copy.
        ///
        /// # Safety
        /// Every active lane's next copy and its slot lie inside `keys` and `by_slot`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn step(&mut self, keys: &[u64], by_slot: &mut [u32]) {
            let full = _mm512_set1_epi64(-1);
            // SAFETY: the active lanes read `keys[at]`, inside `keys` (the caller's promise).
            let key = unsafe {
                _mm512_mask_i64gather_epi64::<8>(full, self.active, self.at, keys.as_ptr().cast())
            };
            let slot = self.advance(key);
            // SAFETY: the active lanes write `by_slot[slot]`, inside `by_slot` (the caller's
            // promise).
            unsafe {
                _mm512_mask_i64scatter_epi32::<4>(
                    by_slot.as_mut_ptr().cast(),
                    self.active,
                    slot,
                    _mm512_cvtepi64_epi32(key),
                )
            };
            self.at = _mm512_add_epi64(self.at, _mm512_set1_epi64(1));
        }

        /// Packs every lane's copy `key` into its lightest open pack; returns the slot it
        /// takes (over all instances of the call).
        #[inline]
        #[target_feature(enable = "avx512f")]
        fn advance(&mut self, key: __m512i) -> __m512i {
            const COUNT: i64 = (1 << 24) - 1;
            const SUM: i64 = !((1 << 32) - 1);
            let full = _mm512_set1_epi64(-1);
            let count_mask = _mm512_set1_epi64(COUNT);
            let one = _mm512_set1_epi64(1);
            let lightest = {
                let [a, b, c, d, e, f, g, h] = self.open;
                let (ab, cd) = (_mm512_min_epu64(a, b), _mm512_min_epu64(c, d));
                let (ef, gh) = (_mm512_min_epu64(e, f), _mm512_min_epu64(g, h));
                _mm512_min_epu64(_mm512_min_epu64(ab, cd), _mm512_min_epu64(ef, gh))
            };
            // The copy's weight bits sit inverted in the key's high half: the odd f32 lanes
            // get the new sum, the even ones (the count) one more.
            let weight = _mm512_andnot_si512(key, _mm512_set1_epi64(SUM));
            let counted = _mm512_castps_si512(_mm512_mask_add_ps(
                _mm512_castsi512_ps(_mm512_add_epi64(lightest, one)),
                0xaaaa,
                _mm512_castsi512_ps(lightest),
                _mm512_castsi512_ps(weight),
            ));
            let now_full =
                _mm512_cmpeq_epu64_mask(_mm512_and_si512(lightest, count_mask), self.last);
            let updated = _mm512_mask_mov_epi64(counted, now_full, full);
            for pack in &mut self.open {
                let chosen = _mm512_cmpeq_epu64_mask(*pack, lightest);
                *pack = _mm512_mask_mov_epi64(*pack, chosen, updated);
            }
            // Slot: the instance's first slot + pack * per_pack + count.
            let pack =
                _mm512_srli_epi64::<24>(_mm512_and_si512(lightest, _mm512_set1_epi64(0xff << 24)));
            _mm512_add_epi64(
                _mm512_add_epi64(self.first_slot, _mm512_mul_epu32(pack, self.pack_size)),
                _mm512_and_si512(lightest, count_mask),
            )
        }
    }

    /// The lane engine ([`lanes`](crate::lanes)) over eight instances per 512-bit vector:
    /// every slot's label of `shape.segments` instances written to `out`.
    ///
    /// # Panics
    /// When the processor lacks AVX-512F, the shape is not one the lane engine admits, a
    /// label is `2^LABEL_BITS` or more, or a slice does not fit the shape.
    pub(crate) fn label_slots(
        buffers: &mut LaneBuffers,
        weights: &[f32],
        labels: &[usize],
        shape: LaneShape,
        out: &mut SlotsOut<'_>,
    ) {
        assert!(detected() && shape.fits(weights, labels, out));
        // SAFETY: AVX-512F is there and the shape, labels and slices fit (asserted above).
        unsafe { label_slots_avx512(buffers, weights, labels, shape, out) }
    }

    #[target_feature(enable = "avx512f")]
    unsafe fn label_slots_avx512(
        buffers: &mut LaneBuffers,
        weights: &[f32],
        labels: &[usize],
        shape: LaneShape,
        out: &mut SlotsOut<'_>,
    ) {
        // SAFETY: the caller's promises.
        unsafe { lanes::label_slots::<Zmm2>(buffers, weights, labels, shape, out) }
    }

    /// Sixteen `u64` lanes of the lane engine as two 512-bit vectors: every operation runs on
    /// both halves, independently, so that the halves' dependency chains (the hand-out's and
    /// the fill's steps) overlap. Row `r` is [`Zmm`] rows `2r` and `2r + 1`.
    #[derive(Clone, Copy)]
    struct Zmm2([Zmm; 2]);

    impl Zmm2 {
        #[inline(always)]
        unsafe fn each(self, other: Self, f: impl Fn(Zmm, Zmm) -> Zmm) -> Self {
            Self([f(self.0[0], other.0[0]), f(self.0[1], other.0[1])])
        }
    }

    impl Lanes for Zmm2 {
        const WIDTH: usize = 16;
        type Mask = [__mmask8; 2];

        #[inline(always)]
        unsafe fn splat(x: u64) -> Self {
            // SAFETY: the caller's features.
            let half = unsafe { Zmm::splat(x) };
            Self([half; 2])
        }

        #[inline(always)]
        unsafe fn load(rows: &[u64], row: usize) -> Self {
            // SAFETY: the caller's promises (row `row` of sixteen keys).
            unsafe { Self([Zmm::load(rows, 2 * row), Zmm::load(rows, 2 * row + 1)]) }
        }

        #[inline(always)]
        unsafe fn store(self, rows: &mut [u64], row: usize) {
            // SAFETY: as for `load`.
            unsafe {
                self.0[0].store(rows, 2 * row);
                self.0[1].store(rows, 2 * row + 1);
            }
        }

        /// Each half on its own, so that its sixteen vectors fit the registers.
        #[inline(always)]
        unsafe fn sort16(rows: &mut [u64], block: &Block) {
            for half in 0..2 {
                // SAFETY: the caller's features and rows (row `r`'s half is `Zmm` row `2r +
                // half`).
                unsafe {
                    let none = Zmm::splat(u64::MAX);
                    let mut keys: [Zmm; 16] = std::array::from_fn(|i| {
                        block[i].map_or(none, |row| Zmm::load(rows, 2 * usize::from(row) + half))
                    });
                    sort16_in_registers(&mut keys);
                    for (key, row) in keys.iter().zip(block) {
                        if let Some(row) = row {
                            key.store(rows, 2 * usize::from(*row) + half);
                        }
                    }
                }
            }
        }

        /// Each half on its own, as `sort16`.
        #[inline(always)]
        unsafe fn merge32(rows: &mut [u64], first: usize) {
            for half in 0..2 {
                // SAFETY: the caller's features and rows.
                unsafe {
                    let mut keys: [Zmm; 32] =
                        std::array::from_fn(|i| Zmm::load(rows, 2 * (first + i) + half));
                    merge32_in_registers(&mut keys);
                    for (i, key) in keys.iter().enumerate() {
                        key.store(rows, 2 * (first + i) + half);
                    }
                }
            }
        }

        #[inline(always)]
        unsafe fn min(self, other: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe { self.each(other, |a, b| a.min(b)) }
        }

        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe { self.each(other, |a, b| a.max(b)) }
        }

        #[inline(always)]
        unsafe fn and(self, other: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe { self.each(other, |a, b| a.and(b)) }
        }

        #[inline(always)]
        unsafe fn or(self, other: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe { self.each(other, |a, b| a.or(b)) }
        }

        #[inline(always)]
        unsafe fn eq(self, other: Self) -> [__mmask8; 2] {
            // SAFETY: the caller's features.
            unsafe { [self.0[0].eq(other.0[0]), self.0[1].eq(other.0[1])] }
        }

        #[inline(always)]
        unsafe fn blend(mask: [__mmask8; 2], yes: Self, no: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe {
                Self([
                    Zmm::blend(mask[0], yes.0[0], no.0[0]),
                    Zmm::blend(mask[1], yes.0[1], no.0[1]),
                ])
            }
        }

        #[inline(always)]
        unsafe fn count_up(count: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe { Self([Zmm::count_up(count.0[0]), Zmm::count_up(count.0[1])]) }
        }

        #[inline(always)]
        unsafe fn rank_bits(count: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe { Self([Zmm::rank_bits(count.0[0]), Zmm::rank_bits(count.0[1])]) }
        }

        #[inline(always)]
        unsafe fn share_key(weight_key: Self, count: Self, low: Self) -> Self {
            // SAFETY: the caller's features.
            unsafe {
                Self([
                    Zmm::share_key(weight_key.0[0], count.0[0], low.0[0]),
                    Zmm::share_key(weight_key.0[1], count.0[1], low.0[1]),
                ])
            }
        }

        #[inline(always)]
        unsafe fn item_keys(
            weights: &[f32],
            labels: &[usize],
            first: usize,
            stride: usize,
            lanes: usize,
            low: u64,
        ) -> Self {
            // SAFETY: the caller's promises; the second half's lanes start eight instances
            // on (none active when `lanes <= 8`: the masked gathers read nothing).
            unsafe {
                Self([
                    Zmm::item_keys(weights, labels, first, stride, lanes.min(8), low),
                    Zmm::item_keys(
                        weights,
                        labels,
                        first + 8 * stride,
                        stride,
                        lanes.saturating_sub(8),
                        low,
                    ),
                ])
            }
        }

        #[inline(always)]
        unsafe fn fill(
            rows: &[u64],
            order: &[u16],
            lanes: usize,
            first: usize,
            packs: usize,
            per_pack: usize,
            out: &mut SlotsOut<'_>,
        ) {
            let mut groups = [
                LaneGroup::new(lanes.min(8), first, packs, per_pack),
                LaneGroup::new(lanes.saturating_sub(8), first + 8, packs, per_pack),
            ];
            let label = _mm512_set1_epi64(lanes::LABEL_MASK as i64);
            for &row in order {
                for (half, group) in groups.iter_mut().enumerate() {
                    // SAFETY: the plan's rows are inside `rows`, and the active lanes' slots
                    // inside `out` (the caller's promise).
                    unsafe {
                        let key = Zmm::load(rows, 2 * usize::from(row) + half).0;
                        let slot = group.advance(key);
                        write_slot(out, group.active, slot, key, label);
                    }
                }
            }
        }
    }

    /// Eight `u64` lanes of the lane engine.
    #[derive(Clone, Copy)]
    struct Zmm(__m512i);

    impl Lanes for Zmm {
        const WIDTH: usize = 8;
        type Mask = __mmask8;

        #[inline(always)]
        unsafe fn splat(x: u64) -> Self {
            Self(_mm512_set1_epi64(x as i64))
        }

        #[inline(always)]
        unsafe fn load(rows: &[u64], row: usize) -> Self {
            debug_assert!(row * 8 + 8 <= rows.len());
            // SAFETY: the row lies inside `rows` (the caller's promise).
            Self(unsafe { _mm512_loadu_si512(rows.as_ptr().add(row * 8).cast()) })
        }

        #[inline(always)]
        unsafe fn store(self, rows: &mut [u64], row: usize) {
            debug_assert!(row * 8 + 8 <= rows.len());
            // SAFETY: as for `load`.
            unsafe { _mm512_storeu_si512(rows.as_mut_ptr().add(row * 8).cast(), self.0) }
        }

        #[inline(always)]
        unsafe fn min(self, other: Self) -> Self {
            Self(_mm512_min_epu64(self.0, other.0))
        }

        #[inline(always)]
        unsafe fn max(self, other: Self) -> Self {
            Self(_mm512_max_epu64(self.0, other.0))
        }

        #[inline(always)]
        unsafe fn and(self, other: Self) -> Self {
            Self(_mm512_and_si512(self.0, other.0))
        }

        #[inline(always)]
        unsafe fn or(self, other: Self) -> Self {
            Self(_mm512_or_si512(self.0, other.0))
        }

        #[inline(always)]
        unsafe fn eq(self, other: Self) -> __mmask8 {
            _mm512_cmpeq_epu64_mask(self.0, other.0)
        }

        #[inline(always)]
        unsafe fn blend(mask: __mmask8, yes: Self, no: Self) -> Self {
            Self(_mm512_mask_mov_epi64(no.0, mask, yes.0))
        }

        #[inline(always)]
        unsafe fn count_up(count: Self) -> Self {
            // The high halves stay 0.0 + 0.0.
            let one = _mm512_set1_epi64(lanes::ONE_F32 as i64);
            Self(_mm512_castps_si512(_mm512_add_ps(
                _mm512_castsi512_ps(count.0),
                _mm512_castsi512_ps(one),
            )))
        }

        #[inline(always)]
        unsafe fn rank_bits(count: Self) -> Self {
            // The high halves (0.0) convert to 0.
            let count = _mm512_cvttps_epi32(_mm512_castsi512_ps(count.0));
            Self(_mm512_slli_epi64::<{ lanes::RANK_SHIFT }>(
                _mm512_and_si512(count, _mm512_set1_epi64(0xff)),
            ))
        }

        #[inline(always)]
        unsafe fn share_key(weight_key: Self, count: Self, low: Self) -> Self {
            // The weight's bits sit inverted in the key's high half; the high halves of the
            // quotient (0 / 0) are shifted out.
            let weight =
                _mm512_srli_epi64::<32>(_mm512_xor_si512(weight_key.0, _mm512_set1_epi64(-1)));
            let share = _mm512_castps_si512(_mm512_div_ps(
                _mm512_castsi512_ps(weight),
                _mm512_castsi512_ps(count.0),
            ));
            Self(descending_high(share, low.0))
        }

        #[inline(always)]
        unsafe fn item_keys(
            weights: &[f32],
            labels: &[usize],
            first: usize,
            stride: usize,
            lanes: usize,
            low: u64,
        ) -> Self {
            let active = first_lanes(lanes);
            let lane = _mm512_setr_epi64(0, 1, 2, 3, 4, 5, 6, 7);
            let at = _mm512_add_epi64(
                _mm512_set1_epi64(first as i64),
                _mm512_mul_epu32(lane, _mm512_set1_epi64(stride as i64)),
            );
            // SAFETY: the active lanes read items inside `weights` and `labels` (the
            // caller's promise).
            let (weight, label) = unsafe {
                (
                    _mm512_mask_i64gather_epi32::<4>(
                        _mm256_setzero_si256(),
                        active,
                        at,
                        weights.as_ptr().cast(),
                    ),
                    _mm512_mask_i64gather_epi64::<8>(
                        _mm512_setzero_si512(),
                        active,
                        at,
                        labels.as_ptr().cast(),
                    ),
                )
            };
            let low = _mm512_or_si512(label, _mm512_set1_epi64(low as i64));
            let key = descending_high(_mm512_cvtepu32_epi64(weight), low);
            Self(_mm512_mask_mov_epi64(_mm512_set1_epi64(-1), active, key))
        }

        #[inline(always)]
        unsafe fn fill(
            rows: &[u64],
            order: &[u16],
            lanes: usize,
            first: usize,
            packs: usize,
            per_pack: usize,
            out: &mut SlotsOut<'_>,
        ) {
            let mut group = LaneGroup::new(lanes, first, packs, per_pack);
            let label = _mm512_set1_epi64(lanes::LABEL_MASK as i64);
            for &row in order {
                // SAFETY: the plan's rows are inside `rows`, and the active lanes' slots
                // inside `out` (the caller's promise).
                unsafe {
                    let key = Self::load(rows, usize::from(row)).0;
                    let slot = group.advance(key);
                    write_slot(out, group.active, slot, key, label);
                }
            }
        }
    }

    /// Writes the active lanes' labels (and ranks) to their slots.
    ///
    /// # Safety
    /// The active lanes' slots lie inside `out`'s slices.
    #[inline(always)]
    unsafe fn write_slot(
        out: &mut SlotsOut<'_>,
        active: __mmask8,
        slot: __m512i,
        key: __m512i,
        label: __m512i,
    ) {
        // SAFETY: the caller's promise.
        unsafe {
            _mm512_mask_i64scatter_epi64::<8>(
                out.labels.as_mut_ptr().cast(),
                active,
                slot,
                _mm512_and_si512(key, label),
            );
            if let Some(ranks) = out.ranks.as_deref_mut() {
                let rank = _mm512_srli_epi64::<{ lanes::RANK_SHIFT }>(_mm512_and_si512(
                    key,
                    _mm512_set1_epi64(lanes::RANK_MASK as i64),
                ));
                _mm512_mask_i64scatter_epi32::<4>(
                    ranks.as_mut_ptr().cast(),
                    active,
                    slot,
                    _mm512_cvtepi64_epi32(rank),
                );
            }
        }
    }

    /// Per lane: `descending_key` of the `f32` whose bits are in the low half of `bits`
    /// (any high half), with the low 32 bits of `low`.
    #[inline(always)]
    unsafe fn descending_high(bits: __m512i, low: __m512i) -> __m512i {
        // !(bits & 0x7fff_ffff) in the high half: the inverted ordered bits, top bit set.
        let inverted = _mm512_andnot_si512(bits, _mm512_set1_epi64(0x7fff_ffff));
        let high = _mm512_or_si512(
            _mm512_slli_epi64::<32>(inverted),
            _mm512_set1_epi64(i64::MIN),
        );
        _mm512_or_si512(
            high,
            _mm512_and_si512(low, _mm512_set1_epi64(u32::MAX as i64)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::kernels::{Isa, Kernels};

    /// `Auto` runs the kernels exactly where the processor has them and `Portable` never;
    /// under `EPLB_REQUIRE_AVX512` (as CI runs the tests on a processor with AVX-512F) they
    /// must run, so that their comparisons with the portable code are not skipped.
    #[test]
    fn the_choice_turns_the_kernels_on_or_off() {
        assert_eq!(Kernels::Auto.isa() == Isa::Avx512, detected());
        assert!(!Kernels::Portable.vector());
        if std::env::var_os("EPLB_REQUIRE_AVX512").is_some() {
            assert!(
                Kernels::Auto.isa() == Isa::Avx512,
                "EPLB_REQUIRE_AVX512 is set, but the processor has no AVX-512F"
            );
        }
    }
}
