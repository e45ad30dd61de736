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
//!   extra only after every item sorted before it got one), so the apportionment heap holds
//!   those candidates only, taken from the front of the sorted items;
//! - the copies' packing order is the items' sorted order with the replicated items taken out,
//!   merged with the (few, separately sorted) copies of the replicated items: one sort of `n`
//!   keys instead of two.

use std::collections::BinaryHeap;

use crate::error::{check_weights, SolverError};
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
    /// The apportionment heap: (share bits, inverted item) of the candidates.
    heap: Vec<u64>,
    /// Owner and copy rank of extra copy `t` (physical index `n + t`).
    extra_owner: Vec<usize>,
    extra_rank: Vec<usize>,
    /// Keys (share, physical index) of every copy of a replicated item, sorted.
    copy_keys: Vec<u64>,
    /// Every copy's key in packing order.
    merged: Vec<u64>,
    lpt: LightestFirst,
    result: SlotAssignment,
}

/// Largest bit pattern of a finite non-negative `f32` (`f32::MAX`); `-0.0` is also accepted.
const MAX_FINITE_BITS: u32 = 0x7f7f_ffff;
const NEGATIVE_ZERO_BITS: u32 = 0x8000_0000;

impl ReplicaPacker {
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
        let n = weights.len();
        if copies < n || n == 0 || copies > u32::MAX as usize {
            return Err(SolverError::TooFewCopies { items: n, copies });
        }
        if num_packs == 0 || copies % num_packs != 0 {
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
        let per_pack = copies / num_packs;
        // Every slot is written below; only the lengths need fitting (no clearing).
        fit(&mut self.result.owner, copies);
        fit(&mut self.result.rank, copies);
        // Counts are all 1 between calls except for the items the last call replicated.
        for &item in &self.extra_owner {
            if let Some(count) = self.counts.get_mut(item) {
                *count = 1;
            }
        }
        self.counts.truncate(n);
        self.counts.resize(n, 1);
        descending_keys(weights, &mut self.order);
        let extra = copies - n;
        if per_pack == 1 {
            // No packing sort: only the candidates for extra copies need to be in order.
            if extra > 0 && extra < n {
                self.order.select_nth_unstable(extra - 1);
            }
            self.hand_out(weights, extra);
            self.place_unsorted(n);
            return Ok(&self.result);
        }
        self.order.sort_unstable();
        self.hand_out(weights, extra);
        self.sort_replicated_copies(weights, n);
        self.pack(n, num_packs, per_pack);
        Ok(&self.result)
    }

    /// The apportionment: `extra` copies, one at a time, to the candidate with the largest
    /// share. Candidates are the first `min(extra, n)` entries of `order`.
    fn hand_out(&mut self, weights: &[f32], extra: usize) {
        self.extra_owner.clear();
        self.extra_rank.clear();
        if extra == 0 {
            return;
        }
        let share_key = |share: f32, item: usize| -> u64 {
            (u64::from(ordered_bits(share)) << 32) | u64::from(u32::MAX - item as u32)
        };
        let candidates = extra.min(self.order.len());
        self.heap.clear();
        self.heap
            .extend(self.order[..candidates].iter().map(|&key| {
                let item = (key & LOW_BITS) as usize;
                share_key(weights[item], item)
            }));
        let mut heap = BinaryHeap::from(std::mem::take(&mut self.heap));
        for _ in 0..extra {
            let mut top = heap.peek_mut().expect("one heap entry per candidate");
            let item = (u32::MAX - (*top & LOW_BITS) as u32) as usize;
            let count = self.counts[item];
            self.extra_owner.push(item);
            self.extra_rank.push(count);
            self.counts[item] = count + 1;
            *top = share_key(weights[item] / (count + 1) as f32, item);
        }
        self.heap = heap.into_vec();
    }

    /// One copy per pack: copy `c` (originals, then extras) fills slot `c`.
    fn place_unsorted(&mut self, n: usize) {
        let SlotAssignment { owner, rank } = &mut self.result;
        for (item, slot) in owner[..n].iter_mut().enumerate() {
            *slot = item;
        }
        rank[..n].fill(0);
        owner[n..].copy_from_slice(&self.extra_owner);
        rank[n..].copy_from_slice(&self.extra_rank);
    }

    /// Sorts every copy of the replicated items (originals included: their weight changed)
    /// by [`descending_key`] of (share, physical index).
    fn sort_replicated_copies(&mut self, weights: &[f32], n: usize) {
        let counts = &self.counts;
        let share = |item: usize| weights[item] / counts[item] as f32;
        self.copy_keys.clear();
        for (t, &item) in self.extra_owner.iter().enumerate() {
            self.copy_keys.push(descending_key(share(item), n + t));
            if self.extra_rank[t] == 1 {
                // The item's first extra copy: its original is a replicated copy too.
                self.copy_keys.push(descending_key(share(item), item));
            }
        }
        self.copy_keys.sort_unstable();
    }

    /// Packs the copies in descending order: the sorted unreplicated items merged with the
    /// sorted copies of replicated ones.
    fn pack(&mut self, n: usize, num_packs: usize, per_pack: usize) {
        let counts = &self.counts;
        let merged = &mut self.merged;
        fit(merged, n + self.extra_owner.len());
        let mut next = 0;
        let mut split = self.copy_keys.iter().copied().peekable();
        for &key in &self.order {
            if counts[(key & LOW_BITS) as usize] != 1 {
                continue;
            }
            while let Some(copy) = split.next_if(|&copy| copy < key) {
                merged[next] = copy;
                next += 1;
            }
            merged[next] = key;
            next += 1;
        }
        for copy in split {
            merged[next] = copy;
            next += 1;
        }
        debug_assert_eq!(next, merged.len());
        let placed = self.lpt.assign(
            num_packs,
            per_pack,
            merged.iter().map(|&key| key_weight(key)),
        );
        let SlotAssignment { owner, rank } = &mut self.result;
        for (&key, at) in merged.iter().zip(placed) {
            let phy = (key & LOW_BITS) as usize;
            let slot = at.pack as usize * per_pack + at.position as usize;
            if phy < n {
                owner[slot] = phy;
                rank[slot] = 0;
            } else {
                owner[slot] = self.extra_owner[phy - n];
                rank[slot] = self.extra_rank[phy - n];
            }
        }
    }
}

/// Gives `v` length `len` without touching the entries it keeps (the caller overwrites them).
fn fit(v: &mut Vec<impl Copy + Default>, len: usize) {
    v.truncate(len);
    v.resize(len, Default::default());
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
    }
}
