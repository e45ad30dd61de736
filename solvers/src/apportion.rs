//! Replica apportionment: give `k >= n` copies to `n` weighted items, at least one each, so
//! that the largest per-copy share `w_i / c_i` is as small as possible.
//!
//! Handing out copies one at a time to the item with the largest current share is optimal for
//! this objective (it is the greedy of Huntington–Hill-type apportionment with the min-max
//! criterion), so [`Apportioner::greedy_f32`] both reproduces DeepSeek's `replicate_experts`
//! and, in `f64`, [`min_max_share`] gives an exact lower bound for any placement.

use std::collections::BinaryHeap;

use crate::error::{check_weights, SolverError};

/// The copies given to each item.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Apportionment {
    /// `counts[i]`: copies of item `i` (`>= 1`).
    pub counts: Vec<usize>,
    /// `owner[c]`: the item copy `c` belongs to. Copies `0..n` are the items themselves in
    /// order; copies `n..k` are the extra ones in the order they were handed out.
    pub owner: Vec<usize>,
    /// `rank[c]`: which copy of its item copy `c` is (`0` for the original).
    pub rank: Vec<usize>,
}

/// A float type the apportionment can divide in, with a heap key that orders entries by
/// share (larger first) and then by item (lower index first).
trait ShareFloat: Copy + Into<f64> {
    /// An integer key: share bits above the inverted item index.
    type Key: Ord + Copy;
    fn per_copy(weight: Self, copies: usize) -> Self;
    fn key(share: Self, item: usize) -> Self::Key;
    fn item(key: Self::Key) -> usize;
}

impl ShareFloat for f32 {
    type Key = u64;
    fn per_copy(weight: f32, copies: usize) -> f32 {
        weight / copies as f32
    }
    fn key(share: f32, item: usize) -> u64 {
        // Non-negative floats order like their bits; -0.0 counts as 0.0.
        let bits = if share == 0.0 { 0 } else { share.to_bits() };
        (u64::from(bits) << 32) | u64::from(u32::MAX - item as u32)
    }
    fn item(key: u64) -> usize {
        (u32::MAX - (key & u64::from(u32::MAX)) as u32) as usize
    }
}

impl ShareFloat for f64 {
    type Key = u128;
    fn per_copy(weight: f64, copies: usize) -> f64 {
        weight / copies as f64
    }
    fn key(share: f64, item: usize) -> u128 {
        let bits = if share == 0.0 { 0 } else { share.to_bits() };
        (u128::from(bits) << 64) | u128::from(u64::MAX - item as u64)
    }
    fn item(key: u128) -> usize {
        (u64::MAX - (key & u128::from(u64::MAX)) as u64) as usize
    }
}

/// Reusable apportionment engine: keeps its buffers between calls.
#[derive(Debug, Default, Clone)]
pub struct Apportioner {
    heap32: Vec<u64>,
    heap64: Vec<u128>,
    result: Apportionment,
    /// Each item's current share (scratch of [`Apportioner::largest_share`]).
    shares: Vec<f64>,
}

/// Extra copies times items at most for which [`Apportioner::largest_share`] hands out the
/// copies by scanning the shares (a hierarchical node's `T_rep`: 8 extra copies over 9 items).
const SCAN_WORK: usize = 128;

impl Apportioner {
    /// Greedy apportionment in `f32`, bit-exact with `replicate_experts` of DeepSeek's
    /// `eplb.py`: each extra copy goes to the item with the largest `w / count` computed in
    /// `f32`, the lowest index on ties.
    ///
    /// # Errors
    /// [`SolverError::TooFewCopies`] when `copies < weights.len()`; weight errors for
    /// non-finite or negative weights.
    ///
    /// # Complexity
    /// `O(n + (k - n) log n)`.
    pub fn greedy_f32(
        &mut self,
        weights: &[f32],
        copies: usize,
    ) -> Result<&Apportionment, SolverError> {
        greedy_into(weights, copies, &mut self.heap32, &mut self.result)?;
        Ok(&self.result)
    }

    /// Greedy apportionment in `f64`: the optimal counts for the min-max share objective.
    ///
    /// # Errors
    /// As [`Apportioner::greedy_f32`].
    pub fn greedy_f64(
        &mut self,
        weights: &[f64],
        copies: usize,
    ) -> Result<&Apportionment, SolverError> {
        greedy_into(weights, copies, &mut self.heap64, &mut self.result)?;
        Ok(&self.result)
    }

    /// The counts of [`Apportioner::greedy_f64`], the same item for item, in
    /// `O(n log n)` instead of `O(n + (k - n) log n)`: without the order of hand-out
    /// ([`Apportionment::owner`] and [`Apportionment::rank`]).
    ///
    /// The greedy hands out the `k - n` extra copies to the largest keys `(w_i / c, item)`,
    /// `c >= 1`, each item's keys non-increasing in `c`, so it takes the `k - n` largest
    /// keys of all. Every key whose share is above `t = sum(w) / (k - n)` is among them when
    /// there are at most `k - n` such keys (at most `sum(w) / t` in exact arithmetic; counted,
    /// with the shares computed as the greedy computes them, not assumed): those are given
    /// in one step, and the heap hands out the rest, at most about `n`.
    ///
    /// ```
    /// use eplb_solvers::apportion::Apportioner;
    /// let w = [30.0, 9.0, 1.0, 0.0];
    /// let mut a = Apportioner::default();
    /// let greedy = a.greedy_f64(&w, 40).unwrap().counts.clone();
    /// assert_eq!(a.counts_f64(&w, 40).unwrap(), &greedy[..]);
    /// assert_eq!(greedy.iter().sum::<usize>(), 40);
    /// ```
    ///
    /// # Errors
    /// As [`Apportioner::greedy_f32`].
    pub fn counts_f64(&mut self, weights: &[f64], copies: usize) -> Result<&[usize], SolverError> {
        let n = weights.len();
        if copies < n || n == 0 || n > u32::MAX as usize {
            return Err(SolverError::TooFewCopies { items: n, copies });
        }
        check_weights(weights)?;
        let out = &mut self.result;
        out.owner.clear();
        out.rank.clear();
        out.counts.clear();
        out.counts.resize(n, 1);
        let extra = copies - n;
        let given = if extra > n {
            give_above_mean(weights, &mut out.counts, extra).unwrap_or_else(|| {
                out.counts.fill(1);
                0
            })
        } else {
            0
        };
        hand_out(
            weights,
            &mut out.counts,
            extra - given,
            &mut self.heap64,
            |_, _| {},
        );
        Ok(&out.counts)
    }
}

impl Apportioner {
    /// The largest share `max_i w_i / c_i` of the counts of [`Apportioner::counts_f64`]: the
    /// smallest possible largest share of `copies` copies ([`min_max_share`]), without the
    /// counts. With few extra copies over few items the copies are handed out by a scan over
    /// the shares, each to a largest one (on ties whichever: the taken shares are the largest
    /// of all `w_i / c`, each item's non-increasing in `c`, so the largest one left is the
    /// same value).
    ///
    /// ```
    /// use eplb_solvers::apportion::Apportioner;
    /// let mut a = Apportioner::default();
    /// assert_eq!(a.largest_share(&[3.0, 3.0, 2.0], 4).unwrap(), 3.0);
    /// assert_eq!(a.largest_share(&[3.0, 3.0, 2.0], 5).unwrap(), 2.0);
    /// ```
    ///
    /// # Errors
    /// As [`Apportioner::greedy_f32`].
    pub fn largest_share(&mut self, weights: &[f64], copies: usize) -> Result<f64, SolverError> {
        let n = weights.len();
        if copies < n || n == 0 || n > u32::MAX as usize {
            return Err(SolverError::TooFewCopies { items: n, copies });
        }
        let extra = copies - n;
        if extra.saturating_mul(n) > SCAN_WORK {
            let counts = self.counts_f64(weights, copies)?;
            return Ok(weights
                .iter()
                .zip(counts)
                .map(|(&w, &c)| w / c as f64)
                .fold(0.0, f64::max));
        }
        check_weights(weights)?;
        let counts = &mut self.result.counts;
        counts.clear();
        counts.resize(n, 1);
        self.shares.clear();
        self.shares.extend_from_slice(weights);
        for _ in 0..extra {
            let mut top = 0;
            for (i, &share) in self.shares.iter().enumerate().skip(1) {
                if share > self.shares[top] {
                    top = i;
                }
            }
            counts[top] += 1;
            self.shares[top] = weights[top] / counts[top] as f64;
        }
        Ok(self.shares.iter().copied().fold(0.0, f64::max))
    }
}

fn greedy_into<T: ShareFloat>(
    weights: &[T],
    copies: usize,
    heap_buf: &mut Vec<T::Key>,
    out: &mut Apportionment,
) -> Result<(), SolverError> {
    let n = weights.len();
    if copies < n || n == 0 || n > u32::MAX as usize {
        return Err(SolverError::TooFewCopies { items: n, copies });
    }
    check_weights(weights)?;
    out.counts.clear();
    out.counts.resize(n, 1);
    out.owner.clear();
    out.owner.extend(0..n);
    out.rank.clear();
    out.rank.resize(n, 0);
    if copies == n {
        return Ok(());
    }
    let (owner, rank) = (&mut out.owner, &mut out.rank);
    hand_out(weights, &mut out.counts, copies - n, heap_buf, |item, r| {
        owner.push(item);
        rank.push(r);
    });
    Ok(())
}

/// Hands out `picks` more copies, each to the item with the largest share `w / count` (the
/// lowest index on ties), starting from `counts`; `on_pick(item, count before)` is called for
/// each.
fn hand_out<T: ShareFloat>(
    weights: &[T],
    counts: &mut [usize],
    picks: usize,
    heap_buf: &mut Vec<T::Key>,
    mut on_pick: impl FnMut(usize, usize),
) {
    if picks == 0 {
        return;
    }
    heap_buf.clear();
    heap_buf.extend(
        weights
            .iter()
            .zip(counts.iter())
            .enumerate()
            .map(|(item, (&w, &c))| T::key(T::per_copy(w, c), item)),
    );
    let mut heap = BinaryHeap::from(std::mem::take(heap_buf));
    for _ in 0..picks {
        let mut top = heap.peek_mut().expect("heap holds one entry per item");
        let item = T::item(*top);
        on_pick(item, counts[item]);
        counts[item] += 1;
        *top = T::key(T::per_copy(weights[item], counts[item]), item);
    }
    *heap_buf = heap.into_vec();
}

/// Gives each item of `weights` the copies whose shares are above `total / extra` in one step
/// (see [`Apportioner::counts_f64`]): `counts[i] = 1 + #{c >= 1 : w_i / c > t}`, with the
/// shares computed as the greedy computes them. Returns the copies given, or `None` (counts
/// left at one each) when that is more than `extra`.
fn give_above_mean(weights: &[f64], counts: &mut [usize], extra: usize) -> Option<usize> {
    let total: f64 = weights.iter().sum();
    let t = total / extra as f64;
    if !(t > 0.0 && t.is_finite()) {
        return None;
    }
    let mut given = 0usize;
    for (count, &w) in counts.iter_mut().zip(weights) {
        // `w / c` is non-increasing in `c`: the shares above `t` are those of `c = 1..=j`.
        let guess = (w / t).floor();
        if guess > extra as f64 {
            return None;
        }
        let mut j = guess as usize;
        while j > 0 && w / j as f64 <= t {
            j -= 1;
        }
        while w / (j + 1) as f64 > t {
            j += 1;
        }
        *count = 1 + j;
        given += j;
    }
    (given <= extra).then_some(given)
}

/// The smallest achievable largest per-copy share `max_i w_i / c_i` over all apportionments of
/// `copies` copies to the items (each item at least one copy), computed in `f64`.
///
/// Any placement of the items' copies onto bins has a bin at least this heavy, so this is a
/// lower bound on the bottleneck.
///
/// ```
/// // (3, 3, 2) with 4 copies: only one of the 3s can be split, the other keeps 3.0.
/// assert_eq!(eplb_solvers::apportion::min_max_share(&[3.0, 3.0, 2.0], 4).unwrap(), 3.0);
/// // ... with 5 copies both 3s split: 2.0.
/// assert_eq!(eplb_solvers::apportion::min_max_share(&[3.0, 3.0, 2.0], 5).unwrap(), 2.0);
/// ```
///
/// # Errors
/// As [`Apportioner::greedy_f64`].
pub fn min_max_share(weights: &[f64], copies: usize) -> Result<f64, SolverError> {
    let mut engine = Apportioner::default();
    let counts = engine.counts_f64(weights, copies)?;
    Ok(weights
        .iter()
        .zip(counts)
        .map(|(&w, &c)| w / c as f64)
        .fold(0.0, f64::max))
}

/// Greedy apportionment on integer weights, comparing shares exactly (`w_i * c_j` against
/// `w_j * c_i` in `u128`): the counts minimising the largest `w_i / c_i` as rationals, the
/// lowest index first on ties. Starts from one copy per item; see [`exact_counts_from`].
///
/// ```
/// use eplb_solvers::apportion::exact_counts;
/// // (3, 3, 2) with 5 copies: both 3s are split (shares 1.5, 1.5, 2).
/// assert_eq!(exact_counts(&[3, 3, 2], 5), vec![2, 2, 1]);
/// ```
///
/// # Complexity
/// `O(n + (k - n) log n)`.
pub fn exact_counts(weights: &[u64], copies: usize) -> Vec<usize> {
    exact_counts_from(weights, vec![1; weights.len()], copies)
}

/// [`exact_counts`] continued from given `counts` (one per item): each further copy goes to
/// the item with the largest exact share `w_i / c_i`, the lowest index on ties, until the
/// counts sum to `copies` (nothing is taken away when they already sum to more).
///
/// ```
/// use eplb_solvers::apportion::exact_counts_from;
/// // Item 2 already holds 2 copies; the next copy goes to the first 3.
/// assert_eq!(exact_counts_from(&[3, 3, 2], vec![1, 1, 2], 5), vec![2, 1, 2]);
/// ```
///
/// # Panics
/// When `counts` is shorter than `weights`, or a count is zero while copies remain to hand
/// out.
pub fn exact_counts_from(weights: &[u64], mut counts: Vec<usize>, copies: usize) -> Vec<usize> {
    /// An item's share `weight / count`, ordered by share (exactly), then lower index first.
    #[derive(PartialEq, Eq)]
    struct Share {
        weight: u64,
        count: usize,
        item: usize,
    }
    impl Ord for Share {
        fn cmp(&self, o: &Self) -> std::cmp::Ordering {
            (u128::from(self.weight) * o.count as u128)
                .cmp(&(u128::from(o.weight) * self.count as u128))
                .then(o.item.cmp(&self.item))
        }
    }
    impl PartialOrd for Share {
        fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
            Some(self.cmp(o))
        }
    }
    let have: usize = counts.iter().sum();
    if have >= copies || weights.is_empty() {
        return counts;
    }
    let mut heap: BinaryHeap<Share> = weights
        .iter()
        .zip(&counts)
        .enumerate()
        .map(|(item, (&weight, &count))| Share {
            weight,
            count,
            item,
        })
        .collect();
    for _ in have..copies {
        let mut top = heap.peek_mut().expect("at least one item");
        top.count += 1;
        counts[top.item] = top.count;
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Every way to give `extra` additional copies to `n` items.
    fn all_count_vectors(n: usize, extra: usize) -> Vec<Vec<usize>> {
        if n == 1 {
            return vec![vec![1 + extra]];
        }
        let mut out = Vec::new();
        for first in 0..=extra {
            for mut rest in all_count_vectors(n - 1, extra - first) {
                rest.insert(0, 1 + first);
                out.push(rest);
            }
        }
        out
    }

    #[test]
    fn all_zero_weights_pile_on_item_zero_like_torch_argmax() {
        let mut a = Apportioner::default();
        let r = a.greedy_f32(&[0.0; 4], 7).unwrap();
        assert_eq!(r.counts, vec![4, 1, 1, 1]);
        assert_eq!(r.owner, vec![0, 1, 2, 3, 0, 0, 0]);
        assert_eq!(r.rank, vec![0, 0, 0, 0, 1, 2, 3]);
    }

    #[test]
    fn rejects_too_few_copies() {
        assert_eq!(
            min_max_share(&[1.0, 2.0, 3.0], 2),
            Err(SolverError::TooFewCopies {
                items: 3,
                copies: 2
            })
        );
        assert!(min_max_share(&[], 2).is_err());
    }

    proptest! {
        #[test]
        fn greedy_share_is_the_enumerated_optimum(
            weights in proptest::collection::vec(0u32..50, 1..5),
            extra in 0usize..5,
        ) {
            let w: Vec<f64> = weights.iter().map(|&x| x as f64).collect();
            let best = all_count_vectors(w.len(), extra)
                .into_iter()
                .map(|c| w.iter().zip(&c).map(|(&w, &c)| w / c as f64).fold(0.0, f64::max))
                .fold(f64::INFINITY, f64::min);
            prop_assert_eq!(min_max_share(&w, w.len() + extra).unwrap(), best);
        }

        /// The scan's largest share is that of the greedy's counts, with ties (small integer
        /// weights) and on either side of the scan's work limit.
        #[test]
        fn largest_share_is_that_of_the_counts(
            weights in proptest::collection::vec(0u32..8, 1..40),
            extra in 0usize..40,
        ) {
            let w: Vec<f64> = weights.iter().map(|&x| f64::from(x) / 4.0).collect();
            let copies = w.len() + extra;
            let mut a = Apportioner::default();
            let got = a.largest_share(&w, copies).unwrap();
            prop_assert_eq!(got.to_bits(), min_max_share(&w, copies).unwrap().to_bits());
        }

        #[test]
        fn exact_counts_minimise_the_exact_largest_share(
            weights in proptest::collection::vec(0u64..50, 1..5),
            extra in 0usize..5,
        ) {
            // Cross-multiplied comparison of the largest shares of two count vectors.
            let worst = |c: &[usize]| {
                let mut best = (0u64, 1usize);
                for (&w, &k) in weights.iter().zip(c) {
                    if u128::from(w) * best.1 as u128 > u128::from(best.0) * k as u128 {
                        best = (w, k);
                    }
                }
                best
            };
            let got = worst(&exact_counts(&weights, weights.len() + extra));
            for c in all_count_vectors(weights.len(), extra) {
                let other = worst(&c);
                prop_assert!(u128::from(got.0) * other.1 as u128 <= u128::from(other.0) * got.1 as u128);
            }
            // Continuing from the apportionment of fewer copies gives the same counts.
            let part = exact_counts(&weights, weights.len() + extra / 2);
            prop_assert_eq!(exact_counts_from(&weights, part, weights.len() + extra), exact_counts(&weights, weights.len() + extra));
        }

        #[test]
        fn counts_ranks_and_owners_agree(
            weights in proptest::collection::vec(0u32..50, 1..8),
            extra in 0usize..10,
        ) {
            let w: Vec<f32> = weights.iter().map(|&x| x as f32).collect();
            let mut engine = Apportioner::default();
            let a = engine.greedy_f32(&w, w.len() + extra).unwrap();
            prop_assert_eq!(a.counts.iter().sum::<usize>(), w.len() + extra);
            prop_assert_eq!(a.owner.len(), w.len() + extra);
            for item in 0..w.len() {
                let mut ranks: Vec<usize> = (0..a.owner.len()).filter(|&c| a.owner[c] == item).map(|c| a.rank[c]).collect();
                ranks.sort_unstable();
                prop_assert_eq!(ranks, (0..a.counts[item]).collect::<Vec<_>>());
            }
        }

        /// The one-step hand-out above the mean share gives the greedy's counts exactly:
        /// equal weights (ties at the threshold), zeros, spreads over many orders of magnitude,
        /// and far more copies than items.
        #[test]
        fn counts_f64_are_the_greedy_counts(
            weights in proptest::collection::vec(
                prop_oneof![Just(0.0), Just(7.0), 0.0f64..1.0, 0.0f64..1e6, 1e-300f64..1e300],
                1..40,
            ),
            extra in 0usize..2000,
        ) {
            let mut engine = Apportioner::default();
            let copies = weights.len() + extra;
            let greedy = engine.greedy_f64(&weights, copies).unwrap().counts.clone();
            prop_assert_eq!(engine.counts_f64(&weights, copies).unwrap(), &greedy[..]);
        }
    }

    #[test]
    fn counts_f64_rejects_what_greedy_f64_rejects() {
        let mut engine = Apportioner::default();
        assert!(matches!(
            engine.counts_f64(&[1.0, 2.0], 1),
            Err(SolverError::TooFewCopies {
                items: 2,
                copies: 1
            })
        ));
        assert!(engine.counts_f64(&[], 3).is_err());
        assert!(engine.counts_f64(&[1.0, f64::NAN], 4).is_err());
        assert!(engine.counts_f64(&[1.0, -1.0], 4).is_err());
    }
}
