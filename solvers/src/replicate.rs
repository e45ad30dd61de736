//! Greedy replicate-then-pack: hand out copies to the heaviest items, then pack the copies
//! into bins of equal cardinality lightest-first — the two greedy steps DeepSeek's `eplb.py`
//! runs on every node (`replicate_experts`, then `balanced_packing` of the replicas), fused so
//! that the items are sorted once.
//!
//! The result is bit-exact with [`Apportioner::greedy_f32`](crate::apportion::Apportioner)
//! followed by [`BalancedPartitioner::greedy`](crate::partition::BalancedPartitioner) on the
//! copies' weights `w / count` (copy `c` of that pair lands in slot `pack * per_pack + rank`),
//! which a property test checks. It is faster because:
//!
//! - only the `copies - n` heaviest items can receive an extra copy (an item gets its first
//!   extra only after every item sorted before it got one), so the apportionment queue holds
//!   those candidates only, taken from the front of the sorted items;
//! - the copies' packing order is the items' sorted order with the replicated items taken out,
//!   merged with the (few, separately sorted) copies of the replicated items: one sort of `n`
//!   keys instead of two;
//! - [`ReplicaPacker::greedy_segments`] solves several same-shape instances (DeepSeek's nodes)
//!   in one call, running their lightest-first loops in lockstep so that the processor
//!   overlaps their dependency chains.

use crate::avx512;
use crate::error::{check_weights, SolverError};
use crate::kernels::{Isa, Kernels};
use crate::key_sort::{merge_keys, sort_keys};
use crate::lanes::{LaneBuffers, LaneShape, SlotsOut};
use crate::min_queue::{ChunkedQueue, MinQueue, WinnerTree};
use crate::partition::{
    descending_key, descending_keys, key_weight, ordered_bits, LightestFirst, LOW_BITS,
};

/// What each slot holds: slot `pack * per_pack + position` of pack `pack`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotAssignment {
    /// `owner[slot]`: the item whose copy sits in the slot.
    pub owner: Vec<usize>,
    /// `rank[slot]`: which copy of its item it is (`0` for the original, then in the order the
    /// extra copies were handed out).
    pub rank: Vec<usize>,
}

/// The slots of a solve by physical copy, without the per-slot owner and rank tables of
/// [`SlotAssignment`]: callers that turn the slots into their own tables (DeepSeek's
/// `phy2log`, `log2phy`, `logcnt`) read each slot's copy once. Physical copies are numbered
/// as in DeepSeek: every item's original (its index), then the extra copies in hand-out order
/// over all segments.
#[derive(Debug, Clone, Copy)]
pub struct SlotCopies<'a> {
    /// `copy[slot]`: the physical copy in the slot.
    pub copy: &'a [u32],
    /// `owner[copy]`: the copy's item (or its label).
    pub owner: &'a [usize],
    /// `rank[copy]`: which copy of its item it is (`0` for the original).
    pub rank: &'a [usize],
    /// `counts[item]`: the item's number of copies.
    pub counts: &'a [usize],
}

/// Where [`ReplicaPacker::greedy_segments_label_slots`] appends its answer: every slot's
/// label and, when asked, the rank of the slot's copy (`0` for an item's original, then in
/// hand-out order: DeepSeek's replica index).
#[derive(Debug)]
pub struct LabelSlots<'a> {
    /// Every slot's label, appended.
    pub labels: &'a mut Vec<i64>,
    /// Every slot's copy rank, appended, or nothing.
    pub ranks: Option<&'a mut Vec<u32>>,
}

/// What a solve writes: the per-slot tables, or the slots by physical copy only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    Slots,
    Copies,
}

/// Reusable replicate-then-pack engine: keeps its buffers between calls, so solving many
/// small instances (one per layer and node) does not allocate.
///
/// ```
/// use eplb_solvers::replicate::ReplicaPacker;
///
/// // Loads (9, 4, 3, 2), 6 copies on 2 bins of 3: the 9 gets two extra copies (9 → 4.5 → 3),
/// // then the copies 4, 3, 3, 3, 3, 2 are packed lightest-first into {4, 3, 2} and {3, 3, 3}.
/// let mut packer = ReplicaPacker::default();
/// let slots = packer.greedy(&[9.0, 4.0, 3.0, 2.0], 6, 2).unwrap();
/// assert_eq!(slots.owner, vec![1, 0, 3, 0, 2, 0]);
/// assert_eq!(slots.rank, vec![0, 1, 0, 0, 0, 2]);
/// ```
#[derive(Debug, Default, Clone)]
pub struct ReplicaPacker {
    /// Every item's [`descending_key`], sorted.
    order: Vec<u64>,
    /// Copies per item.
    counts: Vec<usize>,
    /// The hand-out's winner tree for more than 64 candidates.
    tree: WinnerTree,
    /// `leaf_of[item]`: the item's leaf in `tree`.
    leaf_of: Vec<usize>,
    /// The segments whose hand-out runs over a queue (see [`ReplicaPacker::hand_out`]).
    queued: Vec<usize>,
    /// Owner and copy rank of extra copy `t` (physical index `n + t`).
    extra_owner: Vec<usize>,
    extra_rank: Vec<usize>,
    /// Keys (share, physical index) of every copy of a replicated item, sorted.
    copy_keys: Vec<u64>,
    /// Every copy's key in packing order.
    merged: Vec<u64>,
    /// Owner (or its label) and rank of every physical copy (items first, then the extras).
    phy_owner: Vec<usize>,
    phy_rank: Vec<usize>,
    lpt: LightestFirst,
    /// The slots' physical copies when one copy per pack skips the packing.
    unsorted_copy: Vec<u32>,
    result: SlotAssignment,
    /// The lane engine's plan and rows.
    lanes: LaneBuffers,
}

/// Largest bit pattern of a finite non-negative `f32` (`f32::MAX`); `-0.0` is also accepted.
const MAX_FINITE_BITS: u32 = 0x7f7f_ffff;
const NEGATIVE_ZERO_BITS: u32 = 0x8000_0000;

impl ReplicaPacker {
    /// The same engine running `kernels` (see [`Kernels`]; the answers do not depend on it).
    #[must_use]
    pub fn with_kernels(mut self, kernels: Kernels) -> Self {
        self.set_kernels(kernels);
        self
    }

    /// Switches this engine (and its buffers) to `kernels`.
    pub fn set_kernels(&mut self, kernels: Kernels) {
        self.lpt.kernels = kernels;
    }

    /// The kernel choice in use.
    pub fn kernels(&self) -> Kernels {
        self.lpt.kernels
    }

    /// Hands out `copies` copies to the items (one each, extras to the item with the largest
    /// `w / count` in `f32`, lowest index on ties), then packs the copies into `num_packs`
    /// packs of `copies / num_packs` by descending weight (copies with equal weight in
    /// DeepSeek's physical order: originals by item, then extras in hand-out order), each to the
    /// lightest open pack, lowest index on ties. With one copy per pack, copy `c` goes to pack
    /// `c` unsorted, as `eplb.py` does.
    ///
    /// # Errors
    /// [`SolverError::TooFewCopies`] when `copies < weights.len()` or there are no items;
    /// [`SolverError::PacksDoNotDivide`] when `num_packs` is zero or does not divide `copies`;
    /// weight errors for non-finite or negative weights.
    ///
    /// # Complexity
    /// `O(n log n + x log x + copies · log num_packs)` for `n` items and `x = copies - n` extra
    /// copies; no allocation once the buffers have grown to the instance size.
    pub fn greedy(
        &mut self,
        weights: &[f32],
        copies: usize,
        num_packs: usize,
    ) -> Result<&SlotAssignment, SolverError> {
        self.greedy_segments(weights, 1, copies, num_packs)
    }

    /// [`ReplicaPacker::greedy`] on `segments` independent instances of the same shape at
    /// once: segment `s` is `weights[s * n..(s + 1) * n]` for `n = weights.len() / segments`,
    /// gets `copies` copies in `num_packs` packs, and fills slots `s * copies..(s + 1) *
    /// copies`; `owner` holds indices into `weights`. The answer equals `segments` separate
    /// calls (a property test checks this); it is faster because the segments' packing loops
    /// run in lockstep, so their dependency chains overlap (DeepSeek's hierarchical policy
    /// solves one segment per node).
    ///
    /// # Errors
    /// As [`ReplicaPacker::greedy`] per segment, and [`SolverError::PacksDoNotDivide`] when
    /// `segments` is zero or does not divide `weights.len()`.
    pub fn greedy_segments(
        &mut self,
        weights: &[f32],
        segments: usize,
        copies: usize,
        num_packs: usize,
    ) -> Result<&SlotAssignment, SolverError> {
        self.solve(weights, None, segments, copies, num_packs, Output::Slots)?;
        Ok(&self.result)
    }

    /// [`ReplicaPacker::greedy_segments`] with `owner[slot]` reporting `labels[item]` instead
    /// of the item's index: callers that reordered their items into segments (DeepSeek's
    /// nodes) get their own ids back without a second pass over the slots.
    ///
    /// ```
    /// use eplb_solvers::replicate::ReplicaPacker;
    ///
    /// let mut packer = ReplicaPacker::default();
    /// let slots = packer
    ///     .greedy_segments_labelled(&[9.0, 4.0, 3.0, 2.0], &[40, 41, 42, 43], 1, 6, 2)
    ///     .unwrap();
    /// assert_eq!(slots.owner, vec![41, 40, 43, 40, 42, 40]);
    /// ```
    ///
    /// # Errors
    /// As [`ReplicaPacker::greedy_segments`], and [`SolverError::LabelCount`] unless there is
    /// one label per weight.
    pub fn greedy_segments_labelled(
        &mut self,
        weights: &[f32],
        labels: &[usize],
        segments: usize,
        copies: usize,
        num_packs: usize,
    ) -> Result<&SlotAssignment, SolverError> {
        self.solve(
            weights,
            Some(labels),
            segments,
            copies,
            num_packs,
            Output::Slots,
        )?;
        Ok(&self.result)
    }

    /// [`ReplicaPacker::greedy_segments_labelled`] answered as the slots' physical copies
    /// ([`SlotCopies`]), for callers that build their own tables from them: the same slots,
    /// without writing an owner and a rank per slot.
    ///
    /// ```
    /// use eplb_solvers::replicate::ReplicaPacker;
    ///
    /// let mut packer = ReplicaPacker::default();
    /// let slots = packer
    ///     .greedy_segments_copies(&[9.0, 4.0, 3.0, 2.0], &[40, 41, 42, 43], 1, 6, 2)
    ///     .unwrap();
    /// let owners: Vec<usize> = slots.copy.iter().map(|&c| slots.owner[c as usize]).collect();
    /// assert_eq!(owners, vec![41, 40, 43, 40, 42, 40]);
    /// assert_eq!(slots.counts, &[3, 1, 1, 1]);
    /// ```
    ///
    /// # Errors
    /// As [`ReplicaPacker::greedy_segments_labelled`].
    pub fn greedy_segments_copies(
        &mut self,
        weights: &[f32],
        labels: &[usize],
        segments: usize,
        copies: usize,
        num_packs: usize,
    ) -> Result<SlotCopies<'_>, SolverError> {
        let per_pack = self.solve(
            weights,
            Some(labels),
            segments,
            copies,
            num_packs,
            Output::Copies,
        )?;
        Ok(SlotCopies {
            copy: if per_pack == 1 {
                &self.unsorted_copy
            } else {
                self.lpt.slots()
            },
            owner: &self.phy_owner,
            rank: &self.phy_rank,
            counts: &self.counts,
        })
    }

    /// [`ReplicaPacker::greedy_segments_labelled`] answered as every slot's label (and, when
    /// asked, its copy's rank), appended to `out` (DeepSeek's `int64` `phy2log` when the
    /// labels are expert ids): the same slots, without the per-slot owner tables or the
    /// per-copy records.
    ///
    /// With the AVX-512 kernels, instances of up to 128 items, 16 candidates for 64 extra
    /// copies, 8 packs of at least two copies and labels below 2^16 (DeepSeek-V3's nodes) run
    /// on the lane engine: the instances side by side, one per vector lane, sorted by
    /// comparator networks across the lanes, the extras handed out and the copies packed one
    /// vector step at a time, the labels written straight to `out`. Other shapes solve as
    /// [`ReplicaPacker::greedy_segments_copies`] and append the labels from its answer.
    ///
    /// ```
    /// use eplb_solvers::replicate::{LabelSlots, ReplicaPacker};
    ///
    /// let mut packer = ReplicaPacker::default();
    /// let (mut labels, mut ranks) = (vec![7], Vec::new());
    /// let out = LabelSlots { labels: &mut labels, ranks: Some(&mut ranks) };
    /// packer
    ///     .greedy_segments_label_slots(&[9.0, 4.0, 3.0, 2.0], &[40, 41, 42, 43], 1, 6, 2, out)
    ///     .unwrap();
    /// assert_eq!(labels, [7, 41, 40, 43, 40, 42, 40]);
    /// assert_eq!(ranks, [0, 1, 0, 0, 0, 2]);
    /// ```
    ///
    /// # Errors
    /// As [`ReplicaPacker::greedy_segments_labelled`] (`out` is left as it was).
    pub fn greedy_segments_label_slots(
        &mut self,
        weights: &[f32],
        labels: &[usize],
        segments: usize,
        copies: usize,
        num_packs: usize,
        out: LabelSlots<'_>,
    ) -> Result<(), SolverError> {
        let shape = self.validate(weights, Some(labels), segments, copies, num_packs)?;
        // The labels' bound only for a shape the lane engine takes. Every label is below the
        // least power of two above their bitwise or (an or, unlike a maximum of 64-bit lanes,
        // vectorises everywhere).
        let lanes = self
            .lane_shape(segments, shape.items, copies, num_packs)
            .filter(|lanes| lanes.admitted(0))
            .filter(|lanes| {
                let bits = labels.iter().fold(0, |bits, &label| bits | label);
                lanes.admitted(bits.saturating_add(1))
            });
        let LabelSlots { labels: out, ranks } = out;
        if let Some(lanes) = lanes {
            let start = out.len();
            out.resize(start + segments * copies, 0);
            let ranks = ranks.map(|ranks| {
                let start = ranks.len();
                ranks.resize(start + segments * copies, 0);
                &mut ranks[start..]
            });
            let out = &mut SlotsOut {
                labels: &mut out[start..],
                ranks,
            };
            avx512::label_slots(&mut self.lanes, weights, labels, lanes, out);
            return Ok(());
        }
        let per_pack = self.solve_checked(weights, Some(labels), shape, Output::Copies);
        let by_slot = if per_pack == 1 {
            &self.unsorted_copy
        } else {
            self.lpt.slots()
        };
        // Labels are the caller's `usize` ids, far below 2^63; ranks are below 2^32 copies.
        out.extend(
            by_slot
                .iter()
                .map(|&copy| self.phy_owner[copy as usize] as i64),
        );
        if let Some(ranks) = ranks {
            ranks.extend(
                by_slot
                    .iter()
                    .map(|&copy| self.phy_rank[copy as usize] as u32),
            );
        }
        Ok(())
    }

    /// Whether [`ReplicaPacker::greedy_segments_label_slots`] takes instances of `items`
    /// items, `copies` copies and `num_packs` packs to the lane engine (labels below 2^16
    /// provided); otherwise it solves per copy, as [`ReplicaPacker::greedy_segments_copies`]
    /// does, which callers with their own use for the copies may call instead.
    pub fn labels_in_lanes(&self, items: usize, copies: usize, num_packs: usize) -> bool {
        self.lane_shape(1, items, copies, num_packs)
            .is_some_and(|shape| shape.admitted(0))
    }

    /// The lane engine's shape of a call, unless the kernel choice keeps the per-copy engine
    /// or the shape is not a valid one. Only the AVX-512 kernels run the lane engine: it has
    /// no AVX2 lanes, and its portable lanes (the tests' reference for the AVX-512 ones) were
    /// measured slower than the per-copy engine's portable code and AVX2 kernels (DeepSeek-V3,
    /// R=288 P=32 N=4 `phy2log`: 281.5 against 247.6 us with the portable code).
    fn lane_shape(
        &self,
        segments: usize,
        items: usize,
        copies: usize,
        num_packs: usize,
    ) -> Option<LaneShape> {
        let valid = num_packs > 0 && copies >= items && copies.is_multiple_of(num_packs);
        (self.lpt.kernels.isa() == Isa::Avx512 && valid).then(|| LaneShape {
            segments,
            items,
            extra: copies - items,
            packs: num_packs,
            per_pack: copies / num_packs,
        })
    }

    /// Checks the inputs of a solve; returns its shape.
    fn validate(
        &self,
        weights: &[f32],
        labels: Option<&[usize]>,
        segments: usize,
        copies: usize,
        num_packs: usize,
    ) -> Result<Shape, SolverError> {
        if let Some(labels) = labels {
            check_labels(labels, weights)?;
        }
        if segments == 0 || !weights.len().is_multiple_of(segments) {
            return Err(SolverError::PacksDoNotDivide {
                items: weights.len(),
                packs: segments,
            });
        }
        let n = weights.len() / segments;
        let total_copies = copies.saturating_mul(segments);
        if copies < n || n == 0 || total_copies > u32::MAX as usize {
            return Err(SolverError::TooFewCopies { items: n, copies });
        }
        if num_packs == 0 || !copies.is_multiple_of(num_packs) {
            return Err(SolverError::PacksDoNotDivide {
                items: copies,
                packs: num_packs,
            });
        }
        // One branch-free pass; the detailed check only names the culprit.
        let invalid = weights.iter().fold(false, |bad, &w| {
            let bits = w.to_bits();
            bad | (bits > MAX_FINITE_BITS && bits != NEGATIVE_ZERO_BITS)
        });
        if invalid {
            check_weights(weights)?;
        }
        Ok(Shape {
            segments,
            items: n,
            copies,
            packs: num_packs,
            per_pack: copies / num_packs,
        })
    }

    /// Solves, writing `output`; returns the copies per pack.
    fn solve(
        &mut self,
        weights: &[f32],
        labels: Option<&[usize]>,
        segments: usize,
        copies: usize,
        num_packs: usize,
        output: Output,
    ) -> Result<usize, SolverError> {
        let shape = self.validate(weights, labels, segments, copies, num_packs)?;
        Ok(self.solve_checked(weights, labels, shape, output))
    }

    /// [`ReplicaPacker::solve`] once the inputs passed [`ReplicaPacker::validate`].
    fn solve_checked(
        &mut self,
        weights: &[f32],
        labels: Option<&[usize]>,
        shape: Shape,
        output: Output,
    ) -> usize {
        let total_copies = shape.segments * shape.copies;
        let n = shape.items;
        if output == Output::Slots {
            // Every slot is written below; only the lengths need fitting (no clearing).
            self.result.owner.resize(total_copies, Default::default());
            self.result.rank.resize(total_copies, Default::default());
        }
        // Counts are all 1 between calls except for the items the last call replicated.
        for &item in &self.extra_owner {
            if let Some(count) = self.counts.get_mut(item) {
                *count = 1;
            }
        }
        self.counts.truncate(weights.len());
        self.counts.resize(weights.len(), 1);
        descending_keys(weights, &mut self.order);
        self.extra_owner.clear();
        self.extra_rank.clear();
        if shape.per_pack == 1 {
            // No packing sort: only the candidates for extra copies need to be in order.
            let extra = shape.extra();
            for order in self.order.chunks_exact_mut(n) {
                if extra > 0 && extra < n {
                    order.select_nth_unstable(extra - 1);
                }
            }
            self.hand_out(weights, shape, Candidates::Selected);
            match output {
                Output::Slots => self.place_unsorted(labels, shape),
                Output::Copies => {
                    self.copy_tables(labels, shape);
                    self.unsorted_copies(shape);
                }
            }
            return shape.per_pack;
        }
        let kernels = self.lpt.kernels;
        for order in self.order.chunks_exact_mut(n) {
            sort_keys(order, kernels);
        }
        self.hand_out(weights, shape, Candidates::Sorted);
        self.merge_copies(weights, shape);
        self.pack(labels, shape, output);
        shape.per_pack
    }

    /// The apportionment of every segment: `copies - n` extras, one at a time, to the
    /// candidate with the largest share. Candidates are the first `min(extra, n)` entries of
    /// the segment's `order` (sorted, or only selected when `candidates` says so).
    ///
    /// With sorted candidates, a segment whose last candidate outweighs half the first (the
    /// largest share any replicated item can have) gives one extra to each candidate in
    /// order, without a queue ([`leading_extras`]). Otherwise up to 64 candidates (and fewer
    /// than 2^26 items) sit in a [`ChunkedQueue`] ([`SmallHandOut`]), more in a
    /// [`WinnerTree`].
    fn hand_out(&mut self, weights: &[f32], shape: Shape, candidates_are: Candidates) {
        let extra = shape.extra();
        if extra == 0 {
            return;
        }
        let mut queued = std::mem::take(&mut self.queued);
        queued.clear();
        {
            let (order, mut extras) = self.order_and_extras(shape);
            for (s, order) in order.chunks_exact(shape.items).enumerate() {
                if candidates_are == Candidates::Sorted && leading_extras(order, extra) {
                    for (t, &key) in (s * extra..).zip(&order[..extra]) {
                        extras.hand(t, (key & LOW_BITS) as usize);
                    }
                } else {
                    queued.push(s);
                }
            }
        }
        if !queued.is_empty() {
            self.hand_out_queued(weights, shape, &queued);
        }
        self.queued = queued;
    }

    /// [`ReplicaPacker::hand_out`] over a queue, for the segments `queued`.
    fn hand_out_queued(&mut self, weights: &[f32], shape: Shape, queued: &[usize]) {
        let extra = shape.extra();
        let candidates = extra.min(shape.items);
        if candidates <= 64 && weights.len() <= SmallHandOut::MAX_ITEMS {
            // Several segments take their steps together, up to four at a time, so that their
            // chains (find the largest share, divide, update) overlap.
            let lockstep = queued.len() > 1;
            match (candidates, lockstep) {
                (0..=8, false) => self.hand_out_small::<1, 1>(weights, shape, queued),
                (9..=16, false) => self.hand_out_small::<2, 1>(weights, shape, queued),
                (17..=32, false) => self.hand_out_small::<4, 1>(weights, shape, queued),
                (_, false) => self.hand_out_small::<8, 1>(weights, shape, queued),
                (0..=8, true) => self.hand_out_small::<1, 4>(weights, shape, queued),
                (9..=16, true) => self.hand_out_small::<2, 4>(weights, shape, queued),
                (17..=32, true) => self.hand_out_small::<4, 4>(weights, shape, queued),
                (_, true) => self.hand_out_small::<8, 4>(weights, shape, queued),
            }
            return;
        }
        // More candidates: a winner tree of their keys (largest share first, lowest item on
        // ties: the `descending_key`), each candidate's leaf found by its item.
        let mut tree = std::mem::take(&mut self.tree);
        let mut leaf_of = std::mem::take(&mut self.leaf_of);
        leaf_of.resize(weights.len(), 0);
        let (order, mut extras) = self.order_and_extras(shape);
        for &s in queued {
            let order = &order[s * shape.items..][..candidates];
            for (leaf, &key) in order.iter().enumerate() {
                leaf_of[(key & LOW_BITS) as usize] = leaf;
            }
            // The sorted keys are the candidates' keys with one copy each.
            tree.rebuild(order.iter().copied());
            for t in s * extra..(s + 1) * extra {
                let item = (tree.smallest() & LOW_BITS) as usize;
                let share = weights[item] / extras.hand(t, item) as f32;
                tree.replace(leaf_of[item], descending_key(share, item));
            }
        }
        self.tree = tree;
        self.leaf_of = leaf_of;
    }

    /// The sorted items and the hand-out's records (sized for every segment's extras, each
    /// written by [`Extras::hand`]), borrowed together.
    fn order_and_extras(&mut self, shape: Shape) -> (&[u64], Extras<'_>) {
        let extras_total = shape.segments * shape.extra();
        self.extra_owner.resize(extras_total, Default::default());
        self.extra_rank.resize(extras_total, Default::default());
        let extras = Extras {
            counts: &mut self.counts,
            owner: &mut self.extra_owner,
            rank: &mut self.extra_rank,
        };
        (&self.order, extras)
    }

    /// [`ReplicaPacker::hand_out`] for at most `8 * B` candidates per segment, the segments
    /// `queued`, `L` at a time in lockstep.
    fn hand_out_small<const B: usize, const L: usize>(
        &mut self,
        weights: &[f32],
        shape: Shape,
        queued: &[usize],
    ) {
        let extra = shape.extra();
        let candidates = extra.min(shape.items);
        let (order, mut extras) = self.order_and_extras(shape);
        let queue_of = |s: usize| {
            ChunkedQueue::<B, { SmallHandOut::POSITION }>::new(
                order[s * shape.items..][..candidates]
                    .iter()
                    .enumerate()
                    .map(|(position, &key)| {
                        let item = (key & LOW_BITS) as usize;
                        SmallHandOut::key(weights[item], item, position)
                    }),
            )
        };
        for segments in queued.chunks(L) {
            let mut queues: [_; L] = std::array::from_fn(|lane| {
                // Missing segments (a last, short group) get an empty queue, never used.
                segments
                    .get(lane)
                    .map_or_else(|| ChunkedQueue::new(std::iter::empty()), |&s| queue_of(s))
            });
            for step in 0..extra {
                for (&s, queue) in segments.iter().zip(&mut queues) {
                    let top = queue.smallest();
                    let item = SmallHandOut::item(top);
                    let t = s * extra + step;
                    let share = weights[item] / extras.hand(t, item) as f32;
                    queue.replace_smallest(SmallHandOut::key(
                        share,
                        item,
                        (top & SmallHandOut::POSITION) as usize,
                    ));
                }
            }
        }
    }

    /// One copy per pack: copy `c` of a segment (originals, then extras) fills its slot `c`.
    fn place_unsorted(&mut self, labels: Option<&[usize]>, shape: Shape) {
        let SlotAssignment { owner, rank } = &mut self.result;
        let extra = shape.extra();
        for (s, (owner, rank)) in owner
            .chunks_exact_mut(shape.copies)
            .zip(rank.chunks_exact_mut(shape.copies))
            .enumerate()
        {
            let first = s * shape.items;
            for (item, slot) in owner[..shape.items].iter_mut().enumerate() {
                *slot = label(labels, first + item);
            }
            rank[..shape.items].fill(0);
            let extras = s * extra..(s + 1) * extra;
            for (slot, &item) in owner[shape.items..]
                .iter_mut()
                .zip(&self.extra_owner[extras.clone()])
            {
                *slot = label(labels, item);
            }
            rank[shape.items..].copy_from_slice(&self.extra_rank[extras]);
        }
    }

    /// One copy per pack: slot `c` of segment `s` holds its copy `c` (the originals, then the
    /// extras), by physical id.
    fn unsorted_copies(&mut self, shape: Shape) {
        let extra = shape.extra();
        let extras_base = shape.segments * shape.items;
        self.unsorted_copy.clear();
        for s in 0..shape.segments {
            let originals = s * shape.items..(s + 1) * shape.items;
            let extras = extras_base + s * extra..extras_base + (s + 1) * extra;
            // Fewer than 2^32 copies (checked by `solve`).
            self.unsorted_copy
                .extend(originals.chain(extras).map(|copy| copy as u32));
        }
    }

    /// Every segment's copies in packing order (`merged`, segment-major): the sorted
    /// unreplicated items merged with the separately sorted copies of the replicated ones
    /// (originals included: their weight changed), all keyed by [`descending_key`] of (share,
    /// physical id). Physical ids: items keep their index; extra copy `t` (over all
    /// segments) is `weights.len() + t`, so equal shares keep DeepSeek's physical order.
    fn merge_copies(&mut self, weights: &[f32], shape: Shape) {
        let counts = &self.counts;
        let share = |item: usize| weights[item] / counts[item] as f32;
        let extra = shape.extra();
        self.merged
            .resize(shape.segments * shape.copies, Default::default());
        for (s, (order, merged)) in self
            .order
            .chunks_exact(shape.items)
            .zip(self.merged.chunks_exact_mut(shape.copies))
            .enumerate()
        {
            self.copy_keys.clear();
            for t in s * extra..(s + 1) * extra {
                let item = self.extra_owner[t];
                self.copy_keys
                    .push(descending_key(share(item), weights.len() + t));
                if self.extra_rank[t] == 1 {
                    // The item's first extra copy: its original is a replicated copy too.
                    self.copy_keys.push(descending_key(share(item), item));
                }
            }
            sort_keys(&mut self.copy_keys, self.lpt.kernels);
            // The replicated items are a prefix of the order (an item gets its first extra
            // only once every item sorted before it has one); the rest of the order keeps its
            // keys and is merged with the replicated items' copies.
            let replicated = order[..extra.min(shape.items)]
                .iter()
                .take_while(|&&key| counts[(key & LOW_BITS) as usize] != 1)
                .count();
            let rest = &order[replicated..];
            debug_assert!(rest
                .iter()
                .all(|&key| counts[(key & LOW_BITS) as usize] == 1));
            merge_keys(rest, &self.copy_keys, merged, self.lpt.kernels);
        }
    }

    /// Packs every segment's copies lightest-first and, for [`Output::Slots`], records each
    /// slot's owner and rank.
    fn pack(&mut self, labels: Option<&[usize]>, shape: Shape, output: Output) {
        self.copy_tables(labels, shape);
        let by_slot = self
            .lpt
            .assign(shape.segments, shape.packs, shape.per_pack, &self.merged);
        if output == Output::Copies {
            return;
        }
        let SlotAssignment { owner, rank } = &mut self.result;
        for ((&phy, owner), rank) in by_slot.iter().zip(owner).zip(rank) {
            *owner = self.phy_owner[phy as usize];
            *rank = self.phy_rank[phy as usize];
        }
    }

    /// Owner (or its label) and rank by physical id: items are their own originals, then the
    /// extras.
    fn copy_tables(&mut self, labels: Option<&[usize]>, shape: Shape) {
        let items = shape.segments * shape.items;
        self.phy_owner.clear();
        match labels {
            Some(labels) => {
                self.phy_owner.extend_from_slice(&labels[..items]);
                self.phy_owner
                    .extend(self.extra_owner.iter().map(|&item| labels[item]));
            }
            None => {
                self.phy_owner.extend(0..items);
                self.phy_owner.extend_from_slice(&self.extra_owner);
            }
        }
        self.phy_rank.clear();
        self.phy_rank.resize(items, 0);
        self.phy_rank.extend_from_slice(&self.extra_rank);
    }
}

/// Whether a segment's candidates for extra copies (the first entries of its `order`) are
/// sorted, or only selected (the smallest keys, in any order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Candidates {
    Sorted,
    Selected,
}

/// Whether the first `extra` (at least one) of a segment's sorted keys each get one extra
/// copy, in order: when the last of them is heavier than half the first. Then at step `t`
/// every replicated item (the first `t`) has a share of at most half the first weight
/// (division is monotone), below item `t`'s weight, and item `t` is the heaviest unreplicated
/// item with the lowest index among equal weights (the keys' order): it is the largest share.
/// Zero weights never pass (`0 > 0` is false).
fn leading_extras(order: &[u64], extra: usize) -> bool {
    let Some(&last) = order.get(extra - 1) else {
        return false;
    };
    key_weight(last) > key_weight(order[0]) / 2.0
}

/// The copy counts and extra copies being handed out.
struct Extras<'a> {
    counts: &'a mut [usize],
    owner: &'a mut Vec<usize>,
    rank: &'a mut Vec<usize>,
}

impl Extras<'_> {
    /// Records extra copy `t` (over all segments) as one more copy of `item`; returns the
    /// item's new copy count.
    fn hand(&mut self, t: usize, item: usize) -> usize {
        let count = self.counts[item];
        self.owner[t] = item;
        self.rank[t] = count;
        self.counts[item] = count + 1;
        count + 1
    }
}

/// The keys of [`ReplicaPacker::hand_out_small`]'s queue: `!share bits << 32 | item << 6 |
/// position`, so that the smallest key is the largest share, the lowest item on ties, and it
/// names its candidate's position (its entry in the queue).
struct SmallHandOut;

impl SmallHandOut {
    /// The position bits (at most 64 candidates).
    const POSITION: u64 = 63;
    /// Items must fit in the 26 bits between the share and the position.
    const MAX_ITEMS: usize = 1 << 26;

    fn key(share: f32, item: usize, position: usize) -> u64 {
        (u64::from(!ordered_bits(share)) << 32) | ((item as u64) << 6) | position as u64
    }

    fn item(key: u64) -> usize {
        ((key & LOW_BITS) >> 6) as usize
    }
}

/// The shape shared by every segment of one call.
#[derive(Debug, Clone, Copy)]
struct Shape {
    segments: usize,
    /// Items per segment.
    items: usize,
    /// Copies per segment.
    copies: usize,
    /// Packs per segment.
    packs: usize,
    per_pack: usize,
}

impl Shape {
    /// Extra copies per segment.
    fn extra(self) -> usize {
        self.copies - self.items
    }
}

/// What the result reports as `item`'s owner: its label, or the item itself without labels.
fn label(labels: Option<&[usize]>, item: usize) -> usize {
    labels.map_or(item, |labels| labels[item])
}

/// [`SolverError::LabelCount`] unless there is one label per weight.
fn check_labels(labels: &[usize], weights: &[f32]) -> Result<(), SolverError> {
    if labels.len() == weights.len() {
        Ok(())
    } else {
        Err(SolverError::LabelCount {
            labels: labels.len(),
            items: weights.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apportion::Apportioner;
    use crate::partition::BalancedPartitioner;
    use proptest::prelude::*;

    /// The unfused reference: apportion, then pack the copies' weights.
    fn two_steps(weights: &[f32], copies: usize, packs: usize) -> SlotAssignment {
        let a = Apportioner::default()
            .greedy_f32(weights, copies)
            .unwrap()
            .clone();
        let copy_weights: Vec<f32> = a
            .owner
            .iter()
            .map(|&i| weights[i] / a.counts[i] as f32)
            .collect();
        let p = BalancedPartitioner::default()
            .greedy(&copy_weights, packs)
            .unwrap()
            .clone();
        let per_pack = copies / packs;
        let mut out = SlotAssignment {
            owner: vec![usize::MAX; copies],
            rank: vec![usize::MAX; copies],
        };
        for c in 0..copies {
            let slot = p.pack[c] * per_pack + p.rank[c];
            out.owner[slot] = a.owner[c];
            out.rank[slot] = a.rank[c];
        }
        out
    }

    #[test]
    fn rejects_bad_shapes_and_weights() {
        let mut p = ReplicaPacker::default();
        assert!(matches!(
            p.greedy(&[1.0, 2.0, 3.0], 2, 1),
            Err(SolverError::TooFewCopies {
                items: 3,
                copies: 2
            })
        ));
        assert!(matches!(
            p.greedy(&[], 2, 1),
            Err(SolverError::TooFewCopies { items: 0, .. })
        ));
        assert!(matches!(
            p.greedy(&[1.0, 2.0], 3, 2),
            Err(SolverError::PacksDoNotDivide { items: 3, packs: 2 })
        ));
        assert!(p.greedy(&[1.0, 2.0], 2, 0).is_err());
        assert!(matches!(
            p.greedy(&[1.0, f32::INFINITY], 2, 1),
            Err(SolverError::NonFiniteWeight { index: 1, .. })
        ));
        assert!(matches!(
            p.greedy(&[f32::NAN, 1.0], 2, 1),
            Err(SolverError::NonFiniteWeight { index: 0, .. })
        ));
        assert!(matches!(
            p.greedy(&[1.0, -2.0], 2, 1),
            Err(SolverError::NegativeWeight { index: 1, .. })
        ));
        assert!(p.greedy(&[-0.0, 1.0], 2, 1).is_ok());
        assert!(matches!(
            p.greedy_segments(&[1.0, 2.0, 3.0], 2, 2, 1),
            Err(SolverError::PacksDoNotDivide { items: 3, packs: 2 })
        ));
        assert!(p.greedy_segments(&[1.0, 2.0], 0, 2, 1).is_err());
        assert!(matches!(
            p.greedy_segments_labelled(&[1.0, 2.0], &[5], 1, 2, 1),
            Err(SolverError::LabelCount {
                labels: 1,
                items: 2
            })
        ));
    }

    #[test]
    fn design_examples_match_the_two_step_reference() {
        for (w, copies, packs) in [
            (vec![3.0f32, 3.0, 2.0], 4, 2),
            (
                vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0],
                12,
                4,
            ),
            (vec![0.0; 4], 8, 2),
            (vec![5.0, 5.0, 5.0, 5.0], 8, 8),
        ] {
            let mut p = ReplicaPacker::default();
            assert_eq!(
                p.greedy(&w, copies, packs).unwrap(),
                &two_steps(&w, copies, packs)
            );
        }
    }

    /// `segments` segments of `items` weights (halves of `raw`, cycled, so full of ties) and
    /// the copy count per segment: `items + extra` rounded up to a multiple of `packs`.
    fn segment_case(
        segments: usize,
        items: usize,
        extra: usize,
        packs: usize,
        raw: &[u32],
    ) -> (Vec<f32>, usize) {
        let copies = (items + extra).div_ceil(packs) * packs;
        let w = (0..segments * items)
            .map(|i| raw[i % raw.len()] as f32 / 2.0)
            .collect();
        (w, copies)
    }

    proptest! {
        /// Bit-exact with the two greedy engines run one after the other, on weights with many
        /// ties (small integers, halves, zeros) and on every shape, reusing one engine.
        #[test]
        fn fused_equals_apportion_then_pack(
            cases in proptest::collection::vec(
                (
                    proptest::collection::vec(0u32..12, 1..24),
                    0usize..20,
                    1usize..6,
                    any::<bool>(),
                ),
                1..4,
            ),
        ) {
            let mut packer = ReplicaPacker::default();
            for (raw, extra, packs, halves) in cases {
                let w: Vec<f32> = raw
                    .iter()
                    .map(|&x| if halves { x as f32 / 2.0 } else { x as f32 })
                    .collect();
                // Round the copy count up to a multiple of the pack count.
                let copies = (w.len() + extra).div_ceil(packs) * packs;
                let got = packer.greedy(&w, copies, packs).unwrap();
                prop_assert_eq!(got, &two_steps(&w, copies, packs));
            }
        }

        /// Weights within a factor of two of each other, at most one extra per item: the
        /// hand-out without a queue (every candidate heavier than half the heaviest) and its
        /// boundary (the last candidate exactly half the first: the queue decides the ties),
        /// equal to the two-step reference, alone and in segments.
        #[test]
        fn leading_extras_equal_apportion_then_pack(
            segments in 1usize..6,
            items in 2usize..40,
            extra in 1usize..40,
            packs in 1usize..5,
            raw in proptest::collection::vec(10u32..=20, 200),
        ) {
            let extra = extra.min(items);
            let (w, copies) = segment_case(segments, items, extra, packs, &raw);
            let mut together = ReplicaPacker::default();
            let got = together.greedy_segments(&w, segments, copies, packs).unwrap().clone();
            let mut alone = ReplicaPacker::default();
            for s in 0..segments {
                let one = &w[s * items..(s + 1) * items];
                let expected = two_steps(one, copies, packs);
                prop_assert_eq!(alone.greedy(one, copies, packs).unwrap(), &expected);
                let slots = s * copies..(s + 1) * copies;
                let owners: Vec<usize> = expected.owner.iter().map(|&o| o + s * items).collect();
                prop_assert_eq!(&got.owner[slots.clone()], &owners[..]);
                prop_assert_eq!(&got.rank[slots], &expected.rank[..]);
            }
        }

        /// More than 64 candidates for extra copies (the winner tree rather than the small
        /// queue of up to 64), with and without segments, equal the two-step reference.
        #[test]
        fn many_candidates_equal_apportion_then_pack(
            items in 65usize..100,
            extra in 65usize..120,
            packs in 1usize..5,
            raw in proptest::collection::vec(0u32..12, 60),
        ) {
            let (w, copies) = segment_case(2, items, extra, packs, &raw);
            let mut packer = ReplicaPacker::default();
            for s in 0..2 {
                let one = &w[s * items..(s + 1) * items];
                prop_assert_eq!(
                    packer.greedy(one, copies, packs).unwrap(),
                    &two_steps(one, copies, packs)
                );
            }
        }

        /// Segments solved together equal separate calls, slot for slot (owners offset by
        /// the segment's first item), for few packs (the lockstep loop) and many (one segment
        /// after another), including one copy per pack; with labels, the same slots report
        /// the labels.
        #[test]
        fn segments_equal_separate_calls(
            segments in 1usize..5,
            items in 1usize..12,
            extra in 0usize..14,
            packs in prop_oneof![1usize..9, 9usize..12],
            raw in proptest::collection::vec(0u32..6, 60),
        ) {
            let (w, copies) = segment_case(segments, items, extra, packs, &raw);
            let mut together = ReplicaPacker::default();
            let got = together.greedy_segments(&w, segments, copies, packs).unwrap().clone();
            // Labelled, the owners come back as labels, everything else unchanged.
            let labels: Vec<usize> = (0..w.len()).map(|i| 1000 + 7 * i).collect();
            let labelled = together
                .greedy_segments_labelled(&w, &labels, segments, copies, packs)
                .unwrap();
            let relabelled: Vec<usize> = got.owner.iter().map(|&o| labels[o]).collect();
            prop_assert_eq!(&labelled.owner, &relabelled);
            prop_assert_eq!(&labelled.rank, &got.rank);
            // By physical copy: the same slots, and every item's count is its slots.
            let by_copy = together
                .greedy_segments_copies(&w, &labels, segments, copies, packs)
                .unwrap();
            let owners: Vec<usize> = by_copy.copy.iter().map(|&c| by_copy.owner[c as usize]).collect();
            let ranks: Vec<usize> = by_copy.copy.iter().map(|&c| by_copy.rank[c as usize]).collect();
            prop_assert_eq!(&owners, &relabelled);
            prop_assert_eq!(&ranks, &got.rank);
            prop_assert_eq!(by_copy.counts.len(), w.len());
            for (item, &count) in by_copy.counts.iter().enumerate() {
                prop_assert_eq!(count, got.owner.iter().filter(|&&o| o == item).count());
            }
            let mut alone = ReplicaPacker::default();
            for s in 0..segments {
                let one = alone.greedy(&w[s * items..(s + 1) * items], copies, packs).unwrap();
                let slots = s * copies..(s + 1) * copies;
                let owners: Vec<usize> = one.owner.iter().map(|&o| o + s * items).collect();
                prop_assert_eq!(&got.owner[slots.clone()], &owners[..]);
                prop_assert_eq!(&got.rank[slots], &one.rank[..]);
            }
        }

        /// Every slot's label (and rank) equals the per-copy answer's, on the lane
        /// engine's shapes (up to 8 packs, 16 candidates, 64 extras; segments beyond a
        /// multiple of eight included) and beyond them, with both kernel choices and the
        /// portable lanes, on weights full of ties (zeros included).
        #[test]
        fn label_slots_equal_the_copies_labels(
            segments in 1usize..20,
            items in 1usize..70,
            extra in 0usize..24,
            packs in prop_oneof![1usize..9, 9usize..12],
            raw in proptest::collection::vec(0u32..8, 97),
            halves in any::<bool>(),
        ) {
            let copies = (items + extra).div_ceil(packs) * packs;
            let w: Vec<f32> = (0..segments * items)
                .map(|i| {
                    let x = raw[i % raw.len()] as f32;
                    if halves { x / 2.0 } else { x }
                })
                .collect();
            // Labels: distinct per item, in no particular order.
            let labels: Vec<usize> = (0..w.len()).map(|i| (i * 7919) % 65_521).collect();
            let mut reference = ReplicaPacker::default().with_kernels(Kernels::Portable);
            let by_copy = reference
                .greedy_segments_copies(&w, &labels, segments, copies, packs)
                .unwrap();
            let expected: Vec<i64> = by_copy
                .copy
                .iter()
                .map(|&c| by_copy.owner[c as usize] as i64)
                .collect();
            let expected_ranks: Vec<u32> = by_copy
                .copy
                .iter()
                .map(|&c| by_copy.rank[c as usize] as u32)
                .collect();
            for kernels in [Kernels::Auto, Kernels::Portable] {
                let mut packer = ReplicaPacker::default().with_kernels(kernels);
                let mut out = Vec::new();
                let alone = LabelSlots { labels: &mut out, ranks: None };
                packer
                    .greedy_segments_label_slots(&w, &labels, segments, copies, packs, alone)
                    .unwrap();
                prop_assert_eq!(&out, &expected);
                // Appended after what was there, with the ranks.
                let (mut out, mut ranks) = (vec![-7], vec![9]);
                let both = LabelSlots { labels: &mut out, ranks: Some(&mut ranks) };
                packer
                    .greedy_segments_label_slots(&w, &labels, segments, copies, packs, both)
                    .unwrap();
                prop_assert_eq!(&out[1..], &expected[..]);
                prop_assert_eq!(&ranks[1..], &expected_ranks[..]);
            }
            let shape = LaneShape {
                segments,
                items,
                extra: copies - items,
                packs,
                per_pack: copies / packs,
            };
            // Only the AVX-512 kernels take the admitted shapes to the lanes.
            prop_assert!(!reference.labels_in_lanes(items, copies, packs));
            prop_assert_eq!(
                ReplicaPacker::default().labels_in_lanes(items, copies, packs),
                crate::avx512::detected() && shape.admitted(0)
            );
            if shape.admitted(65_521) {
                let (mut out, mut ranks) = (vec![-1; segments * copies], vec![99; segments * copies]);
                let mut slots = SlotsOut { labels: &mut out, ranks: Some(&mut ranks) };
                crate::lanes::label_slots_portable(
                    &mut LaneBuffers::default(),
                    &w,
                    &labels,
                    shape,
                    &mut slots,
                );
                prop_assert_eq!(&out, &expected);
                prop_assert_eq!(&ranks, &expected_ranks);
                if crate::avx512::detected() {
                    out.fill(-1);
                    ranks.fill(99);
                    let mut slots = SlotsOut { labels: &mut out, ranks: Some(&mut ranks) };
                    avx512::label_slots(&mut LaneBuffers::default(), &w, &labels, shape, &mut slots);
                    prop_assert_eq!(&out, &expected);
                    prop_assert_eq!(&ranks, &expected_ranks);
                }
            }
        }

        /// The vector kernels and the portable code give the same slots, segment shapes with
        /// few packs (the lockstep fill) and many, on weights full of ties.
        #[test]
        fn kernels_and_portable_code_agree(
            segments in 1usize..10,
            items in 1usize..40,
            extra in 0usize..40,
            packs in prop_oneof![1usize..9, 9usize..20],
            raw in proptest::collection::vec(0u32..8, 64),
        ) {
            let (w, copies) = segment_case(segments, items, extra, packs, &raw);
            let mut auto = ReplicaPacker::default();
            let mut portable = ReplicaPacker::default().with_kernels(Kernels::Portable);
            prop_assert_eq!(portable.kernels(), Kernels::Portable);
            let a = auto.greedy_segments(&w, segments, copies, packs).unwrap().clone();
            let p = portable.greedy_segments(&w, segments, copies, packs).unwrap();
            prop_assert_eq!(&a, p);
        }
    }
}
