//! Lane-parallel replicate-then-pack: [`ReplicaPacker`](crate::replicate::ReplicaPacker)'s
//! greedy for many same-shape instances at once, one instance per 64-bit lane of a vector,
//! answering each slot's label (DeepSeek's `phy2log`) and, when asked, its copy's rank.
//!
//! The per-instance engine sorts each instance's keys inside registers (shuffles within a
//! register, the same network for every instance). Here the keys are transposed instead:
//! row `k` holds the `k`-th key of `W` instances, so that one comparator of a sorting network
//! is one vector minimum and one maximum over two rows, for `W` instances at once, with no
//! shuffle. Every step is data-independent across lanes:
//!
//! 1. row `k` of every lane: the key of item `k`, `descending_key(w, p << 24 | label)` with
//!    the item's physical id `p = k` (the low bits order equal shares by physical id, as the
//!    per-instance engine does, and carry the label, and later the copy's rank in bits 16
//!    to 23, to the output);
//! 2. Batcher's odd-even merge sort of the item rows: aligned blocks of sixteen rows sorted
//!    and merged in pairs in registers, the later passes over rows in memory;
//! 3. the hand-out of the `X` extra copies among the first `C = min(X, n)` rows (the only
//!    candidates), one vector step per extra: the largest share is the smallest current key
//!    (a tree of minima), and the chosen row's share is divided once per step;
//! 4. the candidates' rows take their final shares; extra `t` becomes a row with its
//!    owner's final share, physical id `n + t` (extras after every original, in hand-out
//!    order) and its rank;
//! 5. the candidate and extra rows are sorted (in registers when there are at most sixteen)
//!    and merged with the untouched (still sorted) rest by the last pass of a network;
//! 6. the lightest-first fill reads the rows in that order and writes each copy's label (and
//!    rank) to its slot.
//!
//! The networks depend on the shape only ([`Plan`]); comparators that touch the padding of a
//! network to a power of two are left out or become renamings of rows when the plan is made.
//! The answer is the per-instance engine's, slot for slot (property tests compare the two
//! and the vector kernels with the portable lanes).

#[cfg(test)]
use crate::min_queue::tree_min;

/// Low bits of a lane key holding the item's label; above them, the copy's rank (bits 16 to
/// 23, 0 for an original) and its physical id in its instance (bits 24 to 31: the id orders
/// equal shares).
pub(crate) const LABEL_BITS: u32 = 16;
/// Mask of the label bits.
pub(crate) const LABEL_MASK: u64 = (1 << LABEL_BITS) - 1;
/// Where a copy's rank sits in a lane key.
pub(crate) const RANK_SHIFT: u32 = 16;
/// Mask of the rank bits.
pub(crate) const RANK_MASK: u64 = 0xff << RANK_SHIFT;
/// Where a copy's physical id sits in a lane key.
const ID_SHIFT: u32 = 24;
/// The id and label bits: a copy's item.
const ITEM_BITS: u64 = 0xff00_0000 | LABEL_MASK;
/// Most items per instance (the sort networks grow as `n log² n`).
pub(crate) const MAX_ITEMS: usize = 128;
/// Most candidates for extra copies (the hand-out keeps one vector per candidate).
pub(crate) const MAX_CANDIDATES: usize = 16;
/// Most extra copies per instance (one vector step each).
pub(crate) const MAX_EXTRA: usize = 64;
/// Most packs per instance (the fill keeps one vector per pack).
pub(crate) const MAX_PACKS: usize = 8;
/// Where the lane engine writes: every slot's label and, when asked, its copy's rank
/// (`0..count` for every item, in the order the copies were handed out).
pub(crate) struct SlotsOut<'a> {
    /// `labels[slot]`.
    pub(crate) labels: &'a mut [i64],
    /// `ranks[slot]`, or nothing.
    pub(crate) ranks: Option<&'a mut [u32]>,
}

/// `1.0f32`'s bits: a count of one in a lane's low half.
pub(crate) const ONE_F32: u64 = 0x3f80_0000;
/// The key bits above the low 32 (the share).
const HIGH_BITS: u64 = !(u32::MAX as u64);
/// The key bits below the share.
#[cfg(test)]
const LOW_BITS: u64 = u32::MAX as u64;

/// The shape of a lane engine call: `segments` instances of `items` items each, `extra`
/// extra copies per instance, packed into `packs` packs of `per_pack` copies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LaneShape {
    pub(crate) segments: usize,
    pub(crate) items: usize,
    pub(crate) extra: usize,
    pub(crate) packs: usize,
    pub(crate) per_pack: usize,
}

impl LaneShape {
    /// Whether the lane engine takes this shape with labels below `label_bound`.
    pub(crate) fn admitted(self, label_bound: usize) -> bool {
        (1..=MAX_ITEMS).contains(&self.items)
            && self.extra <= MAX_EXTRA
            && self.extra.min(self.items) <= MAX_CANDIDATES
            && (1..=MAX_PACKS).contains(&self.packs)
            && self.per_pack >= 2
            && self.items + self.extra == self.packs * self.per_pack
            && label_bound <= 1 << LABEL_BITS
    }

    /// Copies (slots) per instance.
    pub(crate) fn copies(self) -> usize {
        self.items + self.extra
    }

    /// Whether the shape is admitted (labels aside: they change the answer, never where it
    /// is written) and the slices hold every instance's items and slots.
    pub(crate) fn fits(self, weights: &[f32], labels: &[usize], out: &SlotsOut<'_>) -> bool {
        let items = self.segments.checked_mul(self.items);
        let slots = self.segments.checked_mul(self.copies());
        self.admitted(0)
            && items.is_some_and(|items| weights.len() >= items && labels.len() >= items)
            && slots.is_some_and(|slots| {
                out.labels.len() >= slots && out.ranks.as_ref().is_none_or(|r| r.len() >= slots)
            })
    }
}

/// A vector of `WIDTH` `u64` keys, one instance per lane, and the operations the lane engine
/// runs on it.
///
/// # Safety
/// Implementations may require a processor feature: callers call the functions only where
/// it is present. Row accesses take `row < rows.len() / WIDTH` (not checked).
pub(crate) trait Lanes: Copy {
    /// Lanes per vector.
    const WIDTH: usize;
    /// Per-lane result of a comparison.
    type Mask: Copy;

    /// Every lane `x`.
    unsafe fn splat(x: u64) -> Self;
    /// Row `row` of `rows` (row-major, `WIDTH` keys per row).
    unsafe fn load(rows: &[u64], row: usize) -> Self;
    /// Writes row `row` of `rows`.
    unsafe fn store(self, rows: &mut [u64], row: usize);
    /// Lane-wise unsigned minimum.
    unsafe fn min(self, other: Self) -> Self;
    /// Lane-wise unsigned maximum.
    unsafe fn max(self, other: Self) -> Self;
    /// Lane-wise `&`.
    unsafe fn and(self, other: Self) -> Self;
    /// Lane-wise `|`.
    unsafe fn or(self, other: Self) -> Self;
    /// The lanes where `self == other`.
    unsafe fn eq(self, other: Self) -> Self::Mask;
    /// `yes` in the lanes of `mask`, `no` elsewhere.
    unsafe fn blend(mask: Self::Mask, yes: Self, no: Self) -> Self;
    /// Per lane: a count held as `f32` bits in the low half, plus one.
    unsafe fn count_up(count: Self) -> Self;
    /// Per lane: a count held as `f32` bits in the low half, as an integer at the rank bits
    /// ([`RANK_SHIFT`]).
    unsafe fn rank_bits(count: Self) -> Self;
    /// Per lane: the key of the share `key_weight(weight_key) / count` (the count's `f32`
    /// bits in the low half) with the low 32 bits of `low`.
    unsafe fn share_key(weight_key: Self, count: Self, low: Self) -> Self;
    /// Sorts every lane's keys over the rows `block` (padding, `None`, last: read as
    /// `u64::MAX` and not written back), in registers.
    #[inline(always)]
    unsafe fn sort16(rows: &mut [u64], block: &Block) {
        // SAFETY: the caller's features and rows.
        unsafe {
            let none = Self::splat(u64::MAX);
            let mut keys: [Self; 16] = std::array::from_fn(|i| {
                block[i].map_or(none, |row| Self::load(rows, usize::from(row)))
            });
            sort16_in_registers(&mut keys);
            for (key, row) in keys.iter().zip(block) {
                if let Some(row) = row {
                    key.store(rows, usize::from(*row));
                }
            }
        }
    }
    /// Merges every lane's two sorted runs of sixteen keys in rows `first..first + 16` and
    /// `first + 16..first + 32`, in registers.
    #[inline(always)]
    unsafe fn merge32(rows: &mut [u64], first: usize) {
        // SAFETY: the caller's features and rows.
        unsafe {
            let mut keys: [Self; 32] = std::array::from_fn(|i| Self::load(rows, first + i));
            merge32_in_registers(&mut keys);
            for (i, key) in keys.iter().enumerate() {
                key.store(rows, first + i);
            }
        }
    }

    /// Lane `s < lanes`: the key of item `first + s * stride` of `weights` with low bits `low
    /// | labels[item]`; `u64::MAX` in the other lanes.
    unsafe fn item_keys(
        weights: &[f32],
        labels: &[usize],
        first: usize,
        stride: usize,
        lanes: usize,
        low: u64,
    ) -> Self;
    /// The lightest-first fill of the first `lanes` instances (instance `s` is instance
    /// `first + s` of the call, its slots `(first + s) * packs * per_pack..`): each reads its
    /// copies' keys from `rows` in the order `order` (the row of the `k`-th copy), puts each
    /// into the lightest open pack (lowest index on ties, sums in `f32`) and writes its label
    /// (and rank) to the slot in `out`.
    unsafe fn fill(
        rows: &[u64],
        order: &[u16],
        lanes: usize,
        first: usize,
        packs: usize,
        per_pack: usize,
        out: &mut SlotsOut<'_>,
    );
}

/// Sixteen rows sorted in registers by [`Lanes::sort16`] (`None`: padding, after the rows).
pub(crate) type Block = [Option<u16>; 16];

/// Compare-exchanges of `keys` at constant indices: after `a b`, `keys[a]` holds the smaller
/// key of the two and `keys[b]` the larger (the networks below, written out).
macro_rules! exchange {
    ($keys:ident; $($a:literal $b:literal;)*) => {
        $(
            let (x, y) = ($keys[$a], $keys[$b]);
            // SAFETY: the caller's features.
            unsafe {
                $keys[$a] = x.min(y);
                $keys[$b] = x.max(y);
            }
        )*
    };
}

/// Batcher's odd-even merge sort of sixteen keys per lane (63 comparators), written out so
/// that every index is a constant and the keys stay in registers.
#[inline(always)]
pub(crate) unsafe fn sort16_in_registers<V: Lanes>(keys: &mut [V; 16]) {
    exchange!(keys; 0 1; 2 3; 4 5; 6 7; 8 9; 10 11; 12 13; 14 15; 0 2; 1 3; 4 6; 5 7; 8 10; 9 11; 12 14; 13 15; 1 2; 5 6; 9 10; 13 14; 0 4; 1 5; 2 6; 3 7; 8 12; 9 13; 10 14; 11 15; 2 4; 3 5; 10 12; 11 13; 1 2; 3 4; 5 6; 9 10; 11 12; 13 14; 0 8; 1 9; 2 10; 3 11; 4 12; 5 13; 6 14; 7 15; 4 8; 5 9; 6 10; 7 11; 2 4; 3 5; 6 8; 7 9; 10 12; 11 13; 1 2; 3 4; 5 6; 7 8; 9 10; 11 12; 13 14;);
}

/// The last pass of Batcher's odd-even merge sort of 32 keys per lane (65 comparators): the
/// merge of two sorted runs of sixteen, written out as [`sort16_in_registers`].
#[inline(always)]
pub(crate) unsafe fn merge32_in_registers<V: Lanes>(keys: &mut [V; 32]) {
    exchange!(keys; 0 16; 1 17; 2 18; 3 19; 4 20; 5 21; 6 22; 7 23; 8 24; 9 25; 10 26; 11 27; 12 28; 13 29; 14 30; 15 31; 8 16; 9 17; 10 18; 11 19; 12 20; 13 21; 14 22; 15 23; 4 8; 5 9; 6 10; 7 11; 12 16; 13 17; 14 18; 15 19; 20 24; 21 25; 22 26; 23 27; 2 4; 3 5; 6 8; 7 9; 10 12; 11 13; 14 16; 15 17; 18 20; 19 21; 22 24; 23 25; 26 28; 27 29; 1 2; 3 4; 5 6; 7 8; 9 10; 11 12; 13 14; 15 16; 17 18; 19 20; 21 22; 23 24; 25 26; 27 28; 29 30;);
}

/// The comparator networks and row orders of one shape (see the module documentation):
/// comparator `[a, b]` leaves the smaller key in row `a`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Plan {
    items: usize,
    extra: usize,
    /// The item rows, padded to a multiple of sixteen, or of 32 with more than sixteen items
    /// (the padding rows hold `u64::MAX`); extra `t` is row `item_rows + t`.
    item_rows: usize,
    /// After every aligned block of sixteen item rows is sorted in registers (and the
    /// blocks merged in pairs in registers, with more than sixteen items), merges the runs.
    sort_items: Vec<[u16; 2]>,
    /// The candidates' rows, heaviest first.
    candidates: Vec<u16>,
    /// The candidate and extra rows when there are at most sixteen: sorted in registers.
    copies_block: Option<Block>,
    /// Otherwise: sorts them.
    sort_copies: Vec<[u16; 2]>,
    /// Merges those with the other item rows.
    merge: Vec<[u16; 2]>,
    /// The row of every copy in packing order.
    order: Vec<u16>,
}

impl Plan {
    /// The plan for `items` items and `extra` extra copies (within [`LaneShape::admitted`]).
    pub(crate) fn new(items: usize, extra: usize) -> Self {
        // Blocks of sixteen rows are sorted in registers, then (with more than sixteen
        // items) merged in pairs, so the rows are padded to a multiple of 32.
        let in_registers = if items > 16 { 32 } else { 16 };
        let item_rows = items.next_multiple_of(in_registers);
        let mut plan = Plan {
            items,
            extra,
            item_rows,
            ..Plan::default()
        };
        let rows = |range: std::ops::Range<usize>| range.map(|r| r as u16);
        // Runs of `in_registers` are sorted (in registers): the later passes remain.
        let mut wires: Vec<Option<u16>> = rows(0..items).map(Some).collect();
        wires.resize(items.next_power_of_two().max(in_registers), None);
        odd_even(&mut wires, in_registers, &mut plan.sort_items);
        let sorted_items: Vec<u16> = wires.into_iter().flatten().collect();
        let candidates = extra.min(items);
        plan.candidates = sorted_items[..candidates].to_vec();
        let copies: Vec<u16> = plan
            .candidates
            .iter()
            .copied()
            .chain(rows(item_rows..item_rows + extra))
            .collect();
        let sorted_copies = if copies.len() <= 16 {
            let mut block = [None; 16];
            for (to, &row) in block.iter_mut().zip(&copies) {
                *to = Some(row);
            }
            plan.copies_block = Some(block);
            copies
        } else {
            sort_network(copies, &mut plan.sort_copies)
        };
        let rest = &sorted_items[candidates..];
        let half = sorted_copies.len().max(rest.len()).next_power_of_two();
        let mut wires = vec![None; 2 * half];
        for (wire, &row) in wires.iter_mut().zip(&sorted_copies) {
            *wire = Some(row);
        }
        for (wire, &row) in wires[half..].iter_mut().zip(rest) {
            *wire = Some(row);
        }
        odd_even(&mut wires, half, &mut plan.merge);
        plan.order = wires.into_iter().flatten().collect();
        debug_assert_eq!(plan.order.len(), items + extra);
        plan
    }

    /// Whether this is the plan of `items` items and `extra` extra copies.
    pub(crate) fn is_for(&self, items: usize, extra: usize) -> bool {
        self.items == items && self.extra == extra && !self.order.is_empty()
    }

    /// Rows per block of instances.
    fn rows(&self) -> usize {
        self.item_rows + self.extra
    }

    /// The first rows of the aligned pairs of blocks merged in registers.
    fn merged_pairs(&self) -> impl Iterator<Item = usize> {
        let pairs = if self.items > 16 { self.item_rows } else { 0 };
        (0..pairs).step_by(32)
    }

    /// The aligned blocks of sixteen item rows.
    fn item_blocks(&self) -> impl Iterator<Item = Block> + '_ {
        (0..self.item_rows)
            .step_by(16)
            .map(|first| std::array::from_fn(|i| Some((first + i) as u16)))
    }
}

/// Sorts the rows `rows` (a network appended to `out`); returns the rows in sorted order.
fn sort_network(rows: impl IntoIterator<Item = u16>, out: &mut Vec<[u16; 2]>) -> Vec<u16> {
    let mut wires: Vec<Option<u16>> = rows.into_iter().map(Some).collect();
    let real = wires.len();
    wires.resize(real.next_power_of_two(), None);
    odd_even(&mut wires, 1, out);
    wires.into_iter().flatten().collect()
}

/// Appends the comparators of Batcher's odd-even merge sort over `wires` (a power of two of
/// them; `None` is padding, larger than every key), from the pass merging runs of
/// `first_pass` on (`1`: a full sort; half the wires: the merge of two sorted halves). A
/// comparator of two padding wires, or whose upper wire is padding, changes nothing and is
/// left out; one whose lower wire only is padding moves the key down, which `wires` records
/// instead. On return `wires` lists the rows in sorted order, the padding last.
fn odd_even(wires: &mut [Option<u16>], first_pass: usize, out: &mut Vec<[u16; 2]>) {
    let n = wires.len();
    debug_assert!(n.is_power_of_two() || n == 0);
    let mut p = first_pass;
    while p < n {
        let mut k = p;
        while k >= 1 {
            let mut j = k % p;
            while j + k < n {
                for i in 0..k.min(n - j - k) {
                    let (a, b) = (i + j, i + j + k);
                    if a / (2 * p) == b / (2 * p) {
                        match (wires[a], wires[b]) {
                            (Some(x), Some(y)) => out.push([x, y]),
                            (None, Some(_)) => wires.swap(a, b),
                            _ => {}
                        }
                    }
                }
                j += 2 * k;
            }
            k /= 2;
        }
        p *= 2;
    }
}

/// Row buffers of the lane engine, kept between calls.
#[derive(Debug, Default, Clone)]
pub(crate) struct LaneBuffers {
    plan: Plan,
    rows: Vec<u64>,
}

/// Solves the instances of `shape` (`weights` and `labels` segment-major), writing every
/// slot's label to `out` (instance `s`'s slots at `s * shape.copies()..`), `V::WIDTH`
/// instances at a time.
///
/// # Safety
/// `V`'s processor features are present and `shape.fits(weights, labels, out)`; for the
/// answer to be the greedy's, the weights are finite and non-negative and the labels below
/// `2^LABEL_BITS`.
#[inline(always)]
pub(crate) unsafe fn label_slots<V: Lanes>(
    buffers: &mut LaneBuffers,
    weights: &[f32],
    labels: &[usize],
    shape: LaneShape,
    out: &mut SlotsOut<'_>,
) {
    let LaneShape {
        segments,
        items,
        extra,
        packs,
        per_pack,
    } = shape;
    if !buffers.plan.is_for(items, extra) {
        buffers.plan = Plan::new(items, extra);
    }
    let LaneBuffers { plan, rows } = buffers;
    rows.resize(plan.rows() * V::WIDTH, 0);
    let width = V::WIDTH;
    for first in (0..segments).step_by(width) {
        let lanes = width.min(segments - first);
        // SAFETY: the caller's promises; every row index of the plan is below
        // `plan.rows()`, the rows' length.
        unsafe {
            for k in 0..items {
                let low = (k as u64) << ID_SHIFT;
                V::item_keys(weights, labels, first * items + k, items, lanes, low).store(rows, k);
            }
            for k in items..plan.item_rows {
                V::splat(u64::MAX).store(rows, k);
            }
            for block in plan.item_blocks() {
                V::sort16(rows, &block);
            }
            for first in plan.merged_pairs() {
                V::merge32(rows, first);
            }
            apply::<V>(rows, &plan.sort_items);
            if plan.candidates.len() <= 8 {
                hand_out::<V, 8>(rows, plan);
            } else {
                hand_out::<V, MAX_CANDIDATES>(rows, plan);
            }
            match &plan.copies_block {
                Some(block) => V::sort16(rows, block),
                None => apply::<V>(rows, &plan.sort_copies),
            }
            apply::<V>(rows, &plan.merge);
            V::fill(rows, &plan.order, lanes, first, packs, per_pack, out);
        }
    }
}

/// [`label_slots`] over the portable lanes (the tests' reference for the vector lanes).
///
/// # Panics
/// When the slices do not fit the shape ([`LaneShape::fits`]).
#[cfg(test)]
pub(crate) fn label_slots_portable(
    buffers: &mut LaneBuffers,
    weights: &[f32],
    labels: &[usize],
    shape: LaneShape,
    out: &mut SlotsOut<'_>,
) {
    assert!(shape.fits(weights, labels, out));
    // SAFETY: the portable lanes need no processor feature and check their accesses; the
    // shape fits (asserted above).
    unsafe { label_slots::<Portable>(buffers, weights, labels, shape, out) }
}

/// Runs a comparator network over the rows.
#[inline(always)]
unsafe fn apply<V: Lanes>(rows: &mut [u64], network: &[[u16; 2]]) {
    for &[a, b] in network {
        let (a, b) = (usize::from(a), usize::from(b));
        // SAFETY: the plan's rows are inside `rows` (the caller's promise).
        unsafe {
            let (x, y) = (V::load(rows, a), V::load(rows, b));
            x.min(y).store(rows, a);
            x.max(y).store(rows, b);
        }
    }
}

/// Steps 3 and 4 of the module documentation for at most `C` candidates: the extras handed
/// out one vector step at a time, the candidates' rows given their final shares, extra `t`
/// written to row `item_rows + t`.
#[inline(always)]
unsafe fn hand_out<V: Lanes, const C: usize>(rows: &mut [u64], plan: &Plan) {
    let (items, extras) = (plan.items, plan.item_rows);
    // SAFETY (whole body): the rows touched are the plan's candidates and `item_rows..item_rows +
    // extra`, inside `rows` (the caller's promise); the features are present.
    unsafe {
        let none = V::splat(u64::MAX);
        let one = V::splat(ONE_F32);
        // Candidate `r`'s key with its current share (padding: `u64::MAX`, never the
        // smallest of a real lane, whose keys are below it), and its original key.
        let mut current = [none; C];
        for (key, &row) in current.iter_mut().zip(&plan.candidates) {
            *key = V::load(rows, usize::from(row));
        }
        let original = current;
        let mut count = [one; C];
        for t in 0..plan.extra {
            let largest = tree_min_lanes(current);
            let chosen: [V::Mask; C] = std::array::from_fn(|r| current[r].eq(largest));
            let (mut weight, mut copies) = (none, one);
            for r in 0..C {
                weight = V::blend(chosen[r], original[r], weight);
                copies = V::blend(chosen[r], count[r], copies);
            }
            // The chosen candidate's key (largest share, lowest id on ties) with the new
            // copy's rank (its copies so far), kept in the extra's row until every share is
            // final.
            largest.or(V::rank_bits(copies)).store(rows, extras + t);
            let copies = V::count_up(copies);
            let share = V::share_key(weight, copies, largest);
            for r in 0..C {
                current[r] = V::blend(chosen[r], share, current[r]);
                count[r] = V::blend(chosen[r], copies, count[r]);
            }
        }
        for (key, &row) in current.iter().zip(&plan.candidates) {
            key.store(rows, usize::from(row));
        }
        // Extra `t`: its owner's final share, physical id `items + t`, its rank and the
        // owner's label.
        let low = V::splat(ITEM_BITS);
        let share_bits = V::splat(HIGH_BITS);
        let label = V::splat(RANK_MASK | LABEL_MASK);
        let owners: [V; C] = std::array::from_fn(|r| current[r].and(low));
        for t in 0..plan.extra {
            let chosen = V::load(rows, extras + t);
            let owner = chosen.and(low);
            let mut share = none;
            for r in 0..C {
                share = V::blend(owners[r].eq(owner), current[r], share);
            }
            let id = V::splat(((items + t) as u64) << ID_SHIFT);
            share
                .and(share_bits)
                .or(id)
                .or(chosen.and(label))
                .store(rows, extras + t);
        }
    }
}

/// The lane-wise minimum of `C` (a power of two) vectors, as a tree.
#[inline(always)]
unsafe fn tree_min_lanes<V: Lanes, const C: usize>(mut keys: [V; C]) -> V {
    let mut width = C;
    while width > 1 {
        width /= 2;
        for i in 0..width {
            // SAFETY: the caller's features.
            keys[i] = unsafe { keys[i].min(keys[i + width]) };
        }
    }
    keys[0]
}

/// The portable lanes: eight `u64` keys, plain arithmetic (the tests' reference for the
/// vector lanes).
#[cfg(test)]
#[derive(Debug, Clone, Copy)]
pub(crate) struct Portable([u64; 8]);

#[cfg(test)]
impl Portable {
    fn map(self, other: Self, f: impl Fn(u64, u64) -> u64) -> Self {
        Self(std::array::from_fn(|s| f(self.0[s], other.0[s])))
    }
}

#[cfg(test)]
impl Lanes for Portable {
    const WIDTH: usize = 8;
    type Mask = [bool; 8];

    unsafe fn splat(x: u64) -> Self {
        Self([x; 8])
    }

    unsafe fn load(rows: &[u64], row: usize) -> Self {
        let mut lanes = [0; 8];
        lanes.copy_from_slice(&rows[row * 8..][..8]);
        Self(lanes)
    }

    unsafe fn store(self, rows: &mut [u64], row: usize) {
        rows[row * 8..][..8].copy_from_slice(&self.0);
    }

    unsafe fn min(self, other: Self) -> Self {
        self.map(other, u64::min)
    }

    unsafe fn max(self, other: Self) -> Self {
        self.map(other, u64::max)
    }

    unsafe fn and(self, other: Self) -> Self {
        self.map(other, |a, b| a & b)
    }

    unsafe fn or(self, other: Self) -> Self {
        self.map(other, |a, b| a | b)
    }

    unsafe fn eq(self, other: Self) -> [bool; 8] {
        std::array::from_fn(|s| self.0[s] == other.0[s])
    }

    unsafe fn blend(mask: [bool; 8], yes: Self, no: Self) -> Self {
        Self(std::array::from_fn(|s| {
            if mask[s] {
                yes.0[s]
            } else {
                no.0[s]
            }
        }))
    }

    unsafe fn count_up(count: Self) -> Self {
        Self(
            count
                .0
                .map(|c| u64::from((f32::from_bits(c as u32) + 1.0).to_bits())),
        )
    }

    unsafe fn rank_bits(count: Self) -> Self {
        Self(
            count
                .0
                .map(|c| (f32::from_bits(c as u32) as u64) << RANK_SHIFT),
        )
    }

    unsafe fn share_key(weight_key: Self, count: Self, low: Self) -> Self {
        Self(std::array::from_fn(|s| {
            let weight = crate::partition::key_weight(weight_key.0[s]);
            let share = weight / f32::from_bits(count.0[s] as u32);
            crate::partition::descending_key(share, 0) | (low.0[s] & LOW_BITS)
        }))
    }

    unsafe fn item_keys(
        weights: &[f32],
        labels: &[usize],
        first: usize,
        stride: usize,
        lanes: usize,
        low: u64,
    ) -> Self {
        Self(std::array::from_fn(|s| {
            if s < lanes {
                let item = first + s * stride;
                crate::partition::descending_key(weights[item], 0) | low | labels[item] as u64
            } else {
                u64::MAX
            }
        }))
    }

    unsafe fn fill(
        rows: &[u64],
        order: &[u16],
        lanes: usize,
        first: usize,
        packs: usize,
        per_pack: usize,
        out: &mut SlotsOut<'_>,
    ) {
        // A pack's key as in the portable lockstep fill: `sum bits << 32 | pack << 24 |
        // count`, `u64::MAX` once full.
        let mut open = [[u64::MAX; MAX_PACKS]; 8];
        for lane in &mut open {
            for (pack, key) in lane[..packs].iter_mut().enumerate() {
                *key = (pack as u64) << 24;
            }
        }
        let copies = packs * per_pack;
        for &row in order {
            let keys = &rows[usize::from(row) * 8..][..8];
            for (s, (open, &key)) in open.iter_mut().zip(keys).enumerate().take(lanes) {
                let lightest = tree_min(*open);
                let pack = ((lightest >> 24) & 0xff) as usize;
                let count = (lightest & 0xff_ffff) as usize;
                let slot = (first + s) * copies + pack * per_pack + count;
                out.labels[slot] = (key & LABEL_MASK) as i64;
                if let Some(ranks) = out.ranks.as_deref_mut() {
                    ranks[slot] = ((key & RANK_MASK) >> RANK_SHIFT) as u32;
                }
                let sum =
                    f32::from_bits((lightest >> 32) as u32) + crate::partition::key_weight(key);
                open[pack] = if count + 1 == per_pack {
                    u64::MAX
                } else {
                    (u64::from(sum.to_bits()) << 32) | ((lightest & LOW_BITS) + 1)
                };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Sorts the keys of the block's real rows among themselves (as [`Lanes::sort16`]).
    fn sort_block(block: &Block, keys: &mut [u64]) {
        let rows: Vec<usize> = block.iter().flatten().map(|&r| usize::from(r)).collect();
        let mut values: Vec<u64> = rows.iter().map(|&r| keys[r]).collect();
        values.sort_unstable();
        for (&r, v) in rows.iter().zip(values) {
            keys[r] = v;
        }
    }

    /// Runs the comparators on `keys` (rows of one lane).
    fn run(network: &[[u16; 2]], keys: &mut [u64]) {
        for &[a, b] in network {
            let (a, b) = (usize::from(a), usize::from(b));
            if keys[a] > keys[b] {
                keys.swap(a, b);
            }
        }
    }

    proptest! {
        /// The plan's networks sort: the item rows after the first, and every row in the
        /// plan's order after all three (with the candidate and extra rows changed in
        /// between, as the hand-out does), for every shape within the limits, with ties.
        #[test]
        fn plans_sort(
            items in 1usize..=MAX_ITEMS,
            extra in 0usize..=MAX_EXTRA,
            raw in proptest::collection::vec(0u64..20, MAX_ITEMS + MAX_EXTRA),
        ) {
            prop_assume!(extra.min(items) <= MAX_CANDIDATES);
            let plan = Plan::new(items, extra);
            let mut keys = vec![u64::MAX; plan.rows()];
            keys[..items].copy_from_slice(&raw[..items]);
            keys[plan.item_rows..].copy_from_slice(&raw[items..items + extra]);
            for block in plan.item_blocks() {
                sort_block(&block, &mut keys);
            }
            for first in plan.merged_pairs() {
                keys[first..first + 32].sort_unstable();
            }
            run(&plan.sort_items, &mut keys);
            let mut sorted = raw[..items].to_vec();
            sorted.sort_unstable();
            prop_assert_eq!(&keys[..items], &sorted[..]);
            // The hand-out lowers the candidates' keys (any values) and fills the extras.
            for (i, &row) in plan.candidates.iter().enumerate() {
                keys[usize::from(row)] = raw[i + 3] % 7;
            }
            // Every copy's key, whatever the order.
            let mut expected: Vec<u64> = keys[..items]
                .iter()
                .chain(&keys[plan.item_rows..])
                .copied()
                .collect();
            expected.sort_unstable();
            match &plan.copies_block {
                Some(block) => sort_block(block, &mut keys),
                None => run(&plan.sort_copies, &mut keys),
            }
            run(&plan.merge, &mut keys);
            let got: Vec<u64> = plan.order.iter().map(|&r| keys[usize::from(r)]).collect();
            prop_assert_eq!(got, expected);
        }
    }
}
