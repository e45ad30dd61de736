//! Copy packing with local search: place the copies of weighted items into bins of equal
//! cardinality so that the heaviest bin is as light as possible, and improve the result.
//!
//! Item `i` has weight `w_i` and `c_i >= 1` copies; each copy weighs `w_i / c_i`. There are
//! `m` bins of exactly `k` copies each (`sum(c) = m k`). Bin `b` holds positions
//! `b*k .. (b+1)*k` of the returned assignment.
//!
//! [`CopyPacker::pack`] works in two phases:
//!
//! 1. **Balanced largest differencing** (Karmarkar–Karp with cardinality constraints): the
//!    copies, sorted by weight, are cut into `k` rows of `m` copies; each row is a partial
//!    solution with one copy per bin. The two partial solutions with the largest spread
//!    (heaviest minus lightest bin) are merged by putting the heaviest bin of one together
//!    with the lightest of the other, until one remains. Every bin gets one copy per row, so
//!    the cardinality holds by construction.
//! 2. **Local search on the heaviest bin**, three move types tried in this order, each time
//!    applying the best move of the first type that lowers the heaviest bin without lifting
//!    any other bin to its load:
//!    - *swap*: exchange one copy of the heaviest bin with one copy of another bin;
//!    - *pair swap*: exchange two copies of the heaviest bin with two copies of another bin;
//!    - *count move*: take a copy away from one item and give it to another (the freed
//!      position is reused, so cardinalities hold), which changes the weight of every copy
//!      of both items.
//!
//! The search stops when no move improves or after [`PackLimits::max_moves`] moves. Optional
//! *kicks* ([`PackLimits::deep`]) then escape the local optimum: a count move that lowers the
//! heaviest bin but lifts another above it is applied anyway, the search descends again, and
//! the kick is kept only if the heaviest bin ends lower. Limits are counts, never time, so the
//! result depends only on the input.

use crate::error::{check_weights, SolverError};

/// Limits of the local search (iteration caps only: results never depend on time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackLimits {
    /// Improving moves applied at most (per descent).
    pub max_moves: usize,
    /// Kicks at most: when no move improves, a count move that lowers the heaviest bin but
    /// lifts another one above it is applied anyway and the search descends again; the kick is
    /// kept only if the heaviest bin ends lower than before.
    pub max_kicks: usize,
    /// Count moves tried per kick: the ones leaving the lowest largest touched load.
    pub kick_width: usize,
}

impl Default for PackLimits {
    /// Local search without kicks: the fast setting.
    fn default() -> Self {
        Self {
            max_moves: 4096,
            max_kicks: 0,
            kick_width: 3,
        }
    }
}

impl PackLimits {
    /// Local search with up to 4 kicks of width 3: several times the work of the default,
    /// for lower peaks.
    pub fn deep() -> Self {
        Self {
            max_kicks: 4,
            ..Self::default()
        }
    }
}

/// Which kind of move the local search may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MoveKind {
    Swap,
    PairSwap,
    Count,
}

/// A candidate move and the largest load it leaves on the bins it touches.
#[derive(Debug, Clone, Copy)]
enum Move {
    /// Exchange the copies at two positions.
    Swap { a: usize, b: usize },
    /// Exchange the two copies at `a` with the two at `b`.
    PairSwap { a: Pair, b: Pair },
    /// The copy at `pos` stops being a copy of its item and becomes a copy of `to`.
    Count { pos: usize, to: usize },
}

/// Two positions of one bin.
#[derive(Debug, Clone, Copy)]
struct Pair {
    first: usize,
    second: usize,
}

/// How many copies of one bin a [`BinSums`] entry adds up.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Arity {
    #[default]
    One,
    Two,
}

/// Reusable copy packer (keeps its buffers between calls).
#[derive(Debug, Default, Clone)]
pub struct CopyPacker {
    weights: Vec<f64>,
    counts: Vec<usize>,
    /// `item[pos]`: the item whose copy sits at position `pos`.
    item: Vec<usize>,
    /// `at[pos]`: the weight of the copy at `pos`.
    at: Vec<f64>,
    /// Positions of each item's copies.
    positions: Vec<Vec<usize>>,
    load: Vec<f64>,
    bins: usize,
    per_bin: usize,
    delta: Vec<f64>,
    touched: Vec<usize>,
    /// Bumped whenever a bin's content changes.
    version: Vec<u64>,
    /// Every bin's copy weights, sorted.
    singles: BinSums,
    /// Every bin's pair weights (two copies of the bin), sorted.
    pairs: BinSums,
}

/// One or two positions of one bin and the weight of their copies.
#[derive(Debug, Clone, Copy)]
struct Entry {
    sum: f64,
    pair: Pair,
}

/// For every bin, the sums of its copies taken one (or two) at a time, sorted ascending.
/// Refreshed lazily: only bins whose version changed since the
/// last refresh are recomputed.
#[derive(Debug, Default, Clone)]
struct BinSums {
    arity: Arity,
    lists: Vec<Vec<Entry>>,
    seen: Vec<u64>,
}

impl BinSums {
    fn new(arity: Arity) -> Self {
        Self {
            arity,
            ..Self::default()
        }
    }

    fn refresh(&mut self, at: &[f64], per_bin: usize, version: &[u64]) {
        let bins = version.len();
        if self.seen.len() != bins {
            self.seen.clear();
            self.seen.resize(bins, u64::MAX);
            self.lists.resize(bins, Vec::new());
        }
        for (bin, (seen, &now)) in self.seen.iter_mut().zip(version).enumerate() {
            if *seen == now {
                continue;
            }
            *seen = now;
            let list = &mut self.lists[bin];
            list.clear();
            let base = bin * per_bin;
            for x in base..base + per_bin {
                match self.arity {
                    Arity::One => list.push(Entry {
                        sum: at[x],
                        pair: Pair {
                            first: x,
                            second: x,
                        },
                    }),
                    Arity::Two => list.extend((x + 1..base + per_bin).map(|y| Entry {
                        sum: at[x] + at[y],
                        pair: Pair {
                            first: x,
                            second: y,
                        },
                    })),
                }
            }
            // Entries are generated in position order, so sorting by sum alone is deterministic.
            list.sort_unstable_by(|a, b| a.sum.total_cmp(&b.sum));
        }
    }

    /// Calls `found(mine, theirs, d)` for every entry `mine` of bin `top` and `theirs` of bin
    /// `other` with `0 < d = mine.sum - theirs.sum < gap`, sweeping both sorted lists once.
    fn exchanges(
        &self,
        top: usize,
        other: usize,
        gap: f64,
        mut found: impl FnMut(Pair, Pair, f64),
    ) {
        let theirs = &self.lists[other];
        let (mut lo, mut hi) = (0, 0);
        for mine in &self.lists[top] {
            while hi < theirs.len() && theirs[hi].sum < mine.sum {
                hi += 1;
            }
            while lo < hi && theirs[lo].sum <= mine.sum - gap {
                lo += 1;
            }
            for t in &theirs[lo..hi] {
                found(mine.pair, t.pair, mine.sum - t.sum);
            }
        }
    }
}

impl CopyPacker {
    /// Packs `counts[i]` copies of each item into `bins` bins of equal cardinality and improves
    /// the packing by local search (see the [module docs](self)). Returns `item[pos]`, the item
    /// of the copy at each position; bin `b` holds positions `b*k .. (b+1)*k`. Count moves may
    /// change how many copies each item has; every item keeps at least one.
    ///
    /// ```
    /// use eplb_solvers::rebalance::{CopyPacker, PackLimits};
    /// // Weights 3, 3, 2 with the first item copied twice, in 2 bins of 2: the best packing
    /// // of these copies is {3, 1.5}, {2, 1.5} (max 4.5); a count move gives the extra copy
    /// // to the light item instead: {3, 1}, {3, 1} (max 4.0, the optimum).
    /// let w = [3.0, 3.0, 2.0];
    /// let items = CopyPacker::default().pack(&w, &[2, 1, 1], 2, PackLimits::default()).unwrap();
    /// let mut counts = [0usize; 3];
    /// items.iter().for_each(|&i| counts[i] += 1);
    /// assert_eq!(counts, [1, 1, 2]);
    /// let bin = |b: usize| items[2 * b..2 * b + 2].iter().map(|&i| w[i] / counts[i] as f64).sum::<f64>();
    /// assert_eq!((bin(0), bin(1)), (4.0, 4.0));
    /// ```
    ///
    /// # Errors
    /// [`SolverError::PacksDoNotDivide`] when `bins` is zero or does not divide the number of
    /// copies; [`SolverError::TooFewCopies`] when an item has no copy or the lengths differ;
    /// weight errors for non-finite or negative weights.
    ///
    /// # Complexity
    /// `O(n log n)` for the construction with `n` copies; each local-search step costs
    /// `O(m k^2)` for swaps, `O(m k^4)` for pair swaps and `O(k n)` for count moves.
    pub fn pack(
        &mut self,
        weights: &[f64],
        counts: &[usize],
        bins: usize,
        limits: PackLimits,
    ) -> Result<Vec<usize>, SolverError> {
        check_weights(weights)?;
        let n: usize = counts.iter().sum();
        if weights.is_empty() || counts.len() != weights.len() || counts.contains(&0) {
            return Err(SolverError::TooFewCopies {
                items: weights.len(),
                copies: n,
            });
        }
        if bins == 0 || n % bins != 0 {
            return Err(SolverError::PacksDoNotDivide {
                items: n,
                packs: bins,
            });
        }
        self.weights.clear();
        self.weights.extend_from_slice(weights);
        self.counts.clear();
        self.counts.extend_from_slice(counts);
        self.bins = bins;
        self.per_bin = n / bins;
        self.construct();
        self.singles = BinSums::new(Arity::One);
        self.pairs = BinSums::new(Arity::Two);
        self.version.clear();
        self.index();
        self.descend(limits.max_moves);
        for _ in 0..limits.max_kicks {
            if !self.kick(limits) {
                break;
            }
        }
        Ok(self.item.clone())
    }

    /// Applies the best improving move until none is left or `max_moves` were applied.
    fn descend(&mut self, max_moves: usize) {
        for _ in 0..max_moves {
            let improved = [MoveKind::Swap, MoveKind::PairSwap, MoveKind::Count]
                .into_iter()
                .find_map(|kind| self.best_move(kind));
            match improved {
                Some(m) => self.apply(m),
                None => break,
            }
        }
    }

    /// Tries the `kick_width` most promising non-improving count moves, each followed by a
    /// descent; keeps the first that ends with a lower heaviest bin. Returns whether one did.
    fn kick(&mut self, limits: PackLimits) -> bool {
        let top = self.heaviest();
        let peak = self.load[top];
        let mut candidates: Vec<(f64, Move)> = Vec::new();
        for (pos, to) in self.count_candidates(top) {
            if let Some(worst) = self.count_move_effect(pos, to, top) {
                candidates.push((worst, Move::Count { pos, to }));
            }
        }
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        let saved_items = self.item.clone();
        let saved_counts = self.counts.clone();
        for &(_, m) in candidates.iter().take(limits.kick_width) {
            self.apply(m);
            self.descend(limits.max_moves);
            if self.load[self.heaviest()] < peak - peak.abs() * 1e-12 {
                return true;
            }
            self.item.copy_from_slice(&saved_items);
            self.counts.copy_from_slice(&saved_counts);
            self.index();
        }
        false
    }

    /// Count moves that touch the heaviest bin `top`, as `(position, new item)`: a copy on
    /// `top` changes owner, or an item with a copy on `top` gains a copy elsewhere.
    fn count_candidates(&self, top: usize) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for pos in self.slots(top) {
            if self.counts[self.item[pos]] >= 2 {
                out.extend((0..self.weights.len()).map(|to| (pos, to)));
            }
        }
        for to_pos in self.slots(top) {
            let to = self.item[to_pos];
            for pos in 0..self.item.len() {
                if pos / self.per_bin != top && self.counts[self.item[pos]] >= 2 {
                    out.push((pos, to));
                }
            }
        }
        out
    }

    fn share(&self, item: usize) -> f64 {
        self.weights[item] / self.counts[item] as f64
    }

    /// Balanced largest differencing: see the module docs.
    fn construct(&mut self) {
        let (m, k) = (self.bins, self.per_bin);
        let mut copies: Vec<(f64, usize)> = Vec::with_capacity(m * k);
        for item in 0..self.weights.len() {
            let s = self.share(item);
            copies.extend(std::iter::repeat((s, item)).take(self.counts[item]));
        }
        copies.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // A partial solution: m subsets (sum, items), heaviest first.
        type Partial = Vec<(f64, Vec<usize>)>;
        let mut partials: Vec<Partial> = copies
            .chunks_exact(m)
            .map(|row| row.iter().map(|&(s, i)| (s, vec![i])).collect())
            .collect();
        let spread = |p: &Partial| p[0].0 - p[p.len() - 1].0;
        while partials.len() > 1 {
            // The two largest spreads (lowest index first on ties).
            partials.sort_by(|a, b| spread(b).total_cmp(&spread(a)));
            let b = partials.remove(1);
            let a = partials.remove(0);
            let mut merged: Partial = a
                .into_iter()
                .zip(b.into_iter().rev())
                .map(|((sa, mut ia), (sb, ib))| {
                    ia.extend(ib);
                    (sa + sb, ia)
                })
                .collect();
            merged.sort_by(|x, y| y.0.total_cmp(&x.0));
            partials.push(merged);
        }
        self.item.clear();
        if let Some(last) = partials.pop() {
            for (_, items) in last {
                self.item.extend(items);
            }
        }
    }

    /// Rebuilds positions and loads from `item`.
    fn index(&mut self) {
        self.positions.clear();
        self.positions.resize(self.weights.len(), Vec::new());
        self.load.clear();
        self.load.resize(self.bins, 0.0);
        for (pos, &i) in self.item.iter().enumerate() {
            self.positions[i].push(pos);
        }
        self.at.clear();
        self.at.resize(self.item.len(), 0.0);
        for pos in 0..self.item.len() {
            let w = self.share(self.item[pos]);
            self.at[pos] = w;
            self.load[pos / self.per_bin] += w;
        }
        self.delta.clear();
        self.delta.resize(self.bins, 0.0);
        self.version.resize(self.bins, 0);
        self.version.iter_mut().for_each(|v| *v += 1);
    }

    fn heaviest(&self) -> usize {
        let mut best = 0;
        for b in 1..self.bins {
            if self.load[b] > self.load[best] {
                best = b;
            }
        }
        best
    }

    fn slots(&self, bin: usize) -> std::ops::Range<usize> {
        bin * self.per_bin..(bin + 1) * self.per_bin
    }

    /// The best improving move of `kind` for the heaviest bin, if any.
    fn best_move(&mut self, kind: MoveKind) -> Option<Move> {
        match kind {
            MoveKind::Swap => self.singles.refresh(&self.at, self.per_bin, &self.version),
            MoveKind::PairSwap => self.pairs.refresh(&self.at, self.per_bin, &self.version),
            MoveKind::Count => {}
        }
        let top = self.heaviest();
        let peak = self.load[top];
        // Moves must lower the peak by more than rounding noise.
        let limit = peak - peak.abs() * 1e-12;
        let mut best: Option<(f64, Move)> = None;
        let mut offer = |score: f64, m: Move| {
            if score < limit && best.map_or(true, |(s, _)| score < s) {
                best = Some((score, m));
            }
        };
        match kind {
            MoveKind::Swap | MoveKind::PairSwap => {
                let sums = if kind == MoveKind::Swap {
                    &self.singles
                } else {
                    &self.pairs
                };
                // Giving `d` from the heaviest bin to bin `other` helps when
                // `0 < d < peak - load[other]`.
                for other in (0..self.bins).filter(|&b| b != top) {
                    let load = self.load[other];
                    sums.exchanges(top, other, peak - load, |a, b, d| {
                        let m = if kind == MoveKind::Swap {
                            Move::Swap {
                                a: a.first,
                                b: b.first,
                            }
                        } else {
                            Move::PairSwap { a, b }
                        };
                        offer((peak - d).max(load + d), m);
                    });
                }
            }
            MoveKind::Count => {
                for (pos, to) in self.count_candidates(top) {
                    if let Some(worst) = self.count_move_effect(pos, to, top) {
                        if worst < peak {
                            offer(worst, Move::Count { pos, to });
                        }
                    }
                }
            }
        }
        best.map(|(_, m)| m)
    }

    /// The largest load on the bins a count move touches, if it lowers `top`.
    fn count_move_effect(&mut self, pos: usize, to: usize, top: usize) -> Option<f64> {
        let from = self.item[pos];
        if from == to {
            return None;
        }
        let (cf, ct) = (self.counts[from], self.counts[to]);
        let (wf, wt) = (self.weights[from], self.weights[to]);
        let from_gain = wf / (cf - 1) as f64 - wf / cf as f64;
        let to_gain = wt / (ct + 1) as f64 - wt / ct as f64;
        let k = self.per_bin;
        for &p in &self.positions[from] {
            let b = p / k;
            if self.delta[b] == 0.0 {
                self.touched.push(b);
            }
            if p == pos {
                self.delta[b] += wt / (ct + 1) as f64 - wf / cf as f64;
            } else {
                self.delta[b] += from_gain;
            }
        }
        for &p in &self.positions[to] {
            let b = p / k;
            if self.delta[b] == 0.0 {
                self.touched.push(b);
            }
            self.delta[b] += to_gain;
        }
        let mut worst = f64::NEG_INFINITY;
        let mut lowers_top = false;
        for &b in &self.touched {
            let new = self.load[b] + self.delta[b];
            worst = worst.max(new);
            lowers_top |= b == top && self.delta[b] < 0.0;
            self.delta[b] = 0.0;
        }
        self.touched.clear();
        lowers_top.then_some(worst)
    }

    fn apply(&mut self, m: Move) {
        match m {
            Move::Swap { a, b } => self.exchange(a, b),
            Move::PairSwap { a, b } => {
                self.exchange(a.first, b.first);
                self.exchange(a.second, b.second);
            }
            Move::Count { pos, to } => {
                let from = self.item[pos];
                self.item[pos] = to;
                self.counts[from] -= 1;
                self.counts[to] += 1;
                self.index();
            }
        }
    }

    fn exchange(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.item[a], self.item[b]);
        let d = self.at[a] - self.at[b];
        self.at.swap(a, b);
        self.load[a / self.per_bin] -= d;
        self.load[b / self.per_bin] += d;
        self.item.swap(a, b);
        self.version[a / self.per_bin] += 1;
        self.version[b / self.per_bin] += 1;
        replace(&mut self.positions[ia], a, b);
        replace(&mut self.positions[ib], b, a);
    }
}

fn replace(list: &mut [usize], old: usize, new: usize) {
    if let Some(p) = list.iter_mut().find(|p| **p == old) {
        *p = new;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn peak(weights: &[f64], items: &[usize], bins: usize) -> f64 {
        let mut counts = vec![0usize; weights.len()];
        items.iter().for_each(|&i| counts[i] += 1);
        let k = items.len() / bins;
        (0..bins)
            .map(|b| {
                items[b * k..(b + 1) * k]
                    .iter()
                    .map(|&i| weights[i] / counts[i] as f64)
                    .sum::<f64>()
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn rejects_bad_input() {
        let mut p = CopyPacker::default();
        let l = PackLimits::default();
        assert!(matches!(
            p.pack(&[1.0, 2.0], &[1, 2], 2, l),
            Err(SolverError::PacksDoNotDivide { items: 3, packs: 2 })
        ));
        assert!(p.pack(&[1.0, 2.0], &[1, 1], 0, l).is_err());
        assert!(matches!(
            p.pack(&[1.0, 2.0], &[1, 0], 1, l),
            Err(SolverError::TooFewCopies { .. })
        ));
        assert!(p.pack(&[1.0], &[1, 1], 1, l).is_err());
        assert!(matches!(
            p.pack(&[1.0, f64::NAN], &[1, 1], 1, l),
            Err(SolverError::NonFiniteWeight { index: 1, .. })
        ));
    }

    proptest! {
        #[test]
        fn every_item_keeps_a_copy_and_every_bin_its_cardinality(
            weights in proptest::collection::vec(0u32..100, 1..12),
            extra in 0usize..8,
            bins in 1usize..5,
        ) {
            let n = weights.len() + extra;
            prop_assume!(n % bins == 0);
            let w: Vec<f64> = weights.iter().map(|&x| x as f64).collect();
            let mut counts = vec![1; w.len()];
            counts[0] += extra;
            let mut p = CopyPacker::default();
            let items = p.pack(&w, &counts, bins, PackLimits::default()).unwrap();
            prop_assert_eq!(items.len(), n);
            for i in 0..w.len() {
                prop_assert!(items.contains(&i), "item {} lost its last copy", i);
            }
            prop_assert!(items.iter().all(|&i| i < w.len()));
            // Deterministic, also with a reused packer.
            prop_assert_eq!(&items, &CopyPacker::default().pack(&w, &counts, bins, PackLimits::default()).unwrap());
        }

        #[test]
        fn local_search_and_kicks_never_raise_the_peak(
            weights in proptest::collection::vec(0u32..1000, 2..40),
            extra in 0usize..12,
            bins in 1usize..7,
        ) {
            let n = weights.len() + extra;
            prop_assume!(n % bins == 0);
            let w: Vec<f64> = weights.iter().map(|&x| x as f64).collect();
            let mut counts = vec![1; w.len()];
            for e in 0..extra {
                counts[e % w.len()] += 1;
            }
            let mut p = CopyPacker::default();
            let built = p.pack(&w, &counts, bins, PackLimits { max_moves: 0, ..PackLimits::default() }).unwrap();
            let improved = p.pack(&w, &counts, bins, PackLimits::default()).unwrap();
            prop_assert!(peak(&w, &improved, bins) <= peak(&w, &built, bins) * (1.0 + 1e-12));
            let kicked = p.pack(&w, &counts, bins, PackLimits::deep()).unwrap();
            prop_assert!(peak(&w, &kicked, bins) <= peak(&w, &improved, bins) * (1.0 + 1e-12));
            // The mean bin is a lower bound on any packing.
            let total: f64 = w.iter().sum();
            prop_assert!(peak(&w, &improved, bins) >= total / bins as f64 * (1.0 - 1e-12));
        }
    }
}
