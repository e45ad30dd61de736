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
//! 2. **Local search on the heaviest bin** with three move types:
//!    - *swap*: exchange one copy of the heaviest bin with one copy of another bin;
//!    - *pair swap*: exchange two copies of the heaviest bin with two copies of another bin
//!      (bins of 2 to 64 copies);
//!    - *count move*: take a copy away from one item and give it to another (the freed
//!      position is reused, so cardinalities hold), which changes the weight of every copy
//!      of both items.
//!
//!    Each step applies the first of: a pair swap that brings the heaviest bin down to the
//!    goal (below) without lifting the other bin above it — the one with the smallest
//!    transfer, with the bin that has the most room; otherwise the best swap, else the best
//!    pair swap, else the best count move that lowers the heaviest bin without lifting any
//!    other bin to its load.
//!
//! The search stops as soon as the heaviest bin reaches the **goal**: the lower bound
//! `max(sum(w) / m, T)` (`T` the smallest possible largest copy weight, when the given counts
//! attain it) or the caller's [`PackLimits::target`] if larger, relaxed by
//! [`PackLimits::stop_gap`]; otherwise when no move improves or after
//! [`PackLimits::max_moves`] moves. With *kicks* ([`PackLimits::deep`]) the search then goes
//! on to the bound itself and escapes local optima: a count move that lowers the heaviest bin
//! but lifts another above it is applied anyway, the search descends again, and the kick is
//! kept only if the heaviest bin ends lower. Limits are counts, never time, so the result
//! depends only on the input.
//!
//! # Cost of a move search
//!
//! The state is kept incrementally: bin loads (recomputed only for the bins a move touches,
//! by summing their copies in position order, so they equal an evaluator's sums), every bin's
//! copies sorted by weight, and, lazily, every bin's pairs sorted by weight (rebuilt from the
//! sorted copies when the bin changed: generated in nearly sorted order, then
//! insertion-sorted). Bins are visited by ascending load (re-sorted only after a move). A
//! goal-directed search wants a transfer `d` in `[peak - goal, goal - load[b]]`; it stops at
//! the first bin (the one with the most room) that has one and at the first bin whose room is
//! too small. A best-move search wants `d`
//! next to half the slack `peak - load[b]`, and stops at the first bin whose best possible
//! outcome `(peak + load[b]) / 2` cannot beat the best move found so far. Either way, for each
//! copy (pair) of the heaviest bin only the one or two partners of `b` next to the wanted
//! weight are evaluated, found by a merge-like sweep over both sorted lists: `O(k)` per bin
//! for swaps, `O(k^2)` for pair swaps. A count-move search costs `O(n k + k c)` cheap filters
//! (`c` copies of replicated items) plus a full evaluation of the few that lower the heaviest
//! bin. Nothing is allocated inside the search once the packer is warm.

use crate::error::{check_weights, SolverError};

/// Limits of the local search (counts and loads only: results never depend on time).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PackLimits {
    /// Improving moves applied at most (per descent).
    pub max_moves: usize,
    /// Kicks at most. With kicks, the search goes on from where it stops (the goal below)
    /// to the lower bound itself; when no move improves, a count move that lowers the
    /// heaviest bin but lifts another one above it is applied anyway and the search descends
    /// again; the kick is kept only if the heaviest bin ends lower than before.
    pub max_kicks: usize,
    /// Count moves tried per kick: the ones leaving the lowest largest touched load.
    pub kick_width: usize,
    /// The search stops once the heaviest bin is within this relative gap of the packer's
    /// lower bound `max(sum / m, T)`: `0.0` searches until no move improves.
    pub stop_gap: f64,
    /// A load the caller knows the answer need not go below (`0.0`: none): the search aims at
    /// the larger of it and the packer's own lower bound. Useful when the packing is one part
    /// of a larger problem whose optimum is known to be at least `target`.
    pub target: f64,
}

impl Default for PackLimits {
    /// Local search without kicks, stopping within `7e-5` (0.007%) of the lower bound: the
    /// fast setting.
    fn default() -> Self {
        Self {
            max_moves: 4096,
            max_kicks: 0,
            kick_width: 3,
            stop_gap: 7e-5,
            target: 0.0,
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

/// What the last [`CopyPacker::pack`] did (diagnostics; the counts are deterministic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PackStats {
    /// Swaps applied.
    pub swaps: usize,
    /// Pair swaps applied.
    pub pair_swaps: usize,
    /// Count moves applied (kicks included).
    pub count_moves: usize,
    /// Kicks tried.
    pub kicks: usize,
    /// Move searches run (of any type).
    pub searches: usize,
    /// Candidate moves evaluated.
    pub evaluations: usize,
    /// Whether the search stopped because the heaviest bin reached the goal.
    pub reached_goal: bool,
}

/// A candidate move.
#[derive(Debug, Clone, Copy)]
enum Move {
    /// Exchange the copies at two positions.
    Swap { a: usize, b: usize },
    /// Exchange the copies at `a.0, a.1` with those at `b.0, b.1`.
    PairSwap {
        a: (usize, usize),
        b: (usize, usize),
    },
    /// The copy at `pos` stops being a copy of its item and becomes a copy of `to`.
    Count { pos: usize, to: usize },
}

/// Two positions of one bin (as `u32`: 16-byte entries keep the lists in cache) and the weight
/// of their copies.
#[derive(Debug, Clone, Copy, Default)]
struct PairEntry {
    sum: f64,
    a: u32,
    b: u32,
}

/// One subset of a partial solution of the differencing: its sum and the copies in it, as a
/// linked list over the sorted copies.
#[derive(Debug, Clone, Copy)]
struct Subset {
    sum: f64,
    head: usize,
    tail: usize,
}

/// Reusable copy packer (keeps its buffers between calls: no allocation once warm).
#[derive(Debug, Default, Clone)]
pub struct CopyPacker {
    weights: Vec<f64>,
    counts: Vec<usize>,
    /// `w_i / (c_i + 1)`: the weight of a copy of `i` if it gained one.
    grown: Vec<f64>,
    /// `item[pos]`: the item whose copy sits at position `pos`.
    item: Vec<usize>,
    /// `at[pos]`: the weight of the copy at `pos`.
    at: Vec<f64>,
    /// Positions of each item's copies.
    positions: Vec<Vec<usize>>,
    load: Vec<f64>,
    bins: usize,
    per_bin: usize,
    /// Per bin, its copies sorted by weight (ascending), as entries with `a == b`.
    singles: Vec<PairEntry>,
    /// The bins by load, ascending (brought up to date before each exchange search).
    by_load: Vec<usize>,
    /// Whether a load changed since `by_load` was sorted.
    by_load_stale: bool,
    /// Per bin, its pairs of positions sorted by weight (ascending), `k (k-1) / 2` entries.
    pairs: Vec<PairEntry>,
    /// Per bin, whether its copies changed since its `pairs` were sorted.
    pairs_stale: Vec<bool>,
    /// Count-move evaluation scratch: per-bin load change and the bins touched.
    delta: Vec<f64>,
    touched: Vec<usize>,
    /// Copies of each item on the heaviest bin (count-move search scratch).
    on_top: Vec<usize>,
    /// Items with at least two copies (count-move search scratch).
    multi: Vec<usize>,
    /// The search stops at or below this load.
    stop_at: f64,
    stats: PackStats,
    // Construction scratch.
    keys: Vec<u64>,
    merged: Vec<Subset>,
    copies: Vec<(f64, usize)>,
    next: Vec<usize>,
    subsets: Vec<Subset>,
    alive: Vec<usize>,
    // Kick scratch.
    candidates: Vec<(f64, Move)>,
    saved_item: Vec<usize>,
    saved_counts: Vec<usize>,
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
    /// `O(m k)` for swaps, `O(m k^2)` for pair swaps and `O(n k)` for count moves (see the
    /// module docs), at most [`PackLimits::max_moves`] steps per descent.
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
        if bins == 0 || !n.is_multiple_of(bins) {
            return Err(SolverError::PacksDoNotDivide {
                items: n,
                packs: bins,
            });
        }
        // Positions are stored as `u32` in the sorted lists (4 billion copies would not fit
        // in memory anyway).
        debug_assert!(u32::try_from(n).is_ok());
        self.weights.clear();
        self.weights.extend_from_slice(weights);
        self.counts.clear();
        self.counts.extend_from_slice(counts);
        self.bins = bins;
        self.per_bin = n / bins;
        self.stats = PackStats::default();
        let goal = self.goal().max(limits.target);
        self.stop_at = goal * (1.0 + limits.stop_gap);
        self.construct();
        self.index();
        self.descend(limits.max_moves);
        if limits.max_kicks > 0 {
            // Deep: from where the fast setting stops, on to the bound itself, with kicks
            // (so never worse than the fast setting).
            self.stop_at = goal;
            self.descend(limits.max_moves);
            for _ in 0..limits.max_kicks {
                if self.stats.reached_goal || !self.kick(limits) {
                    break;
                }
            }
        }
        Ok(self.item.clone())
    }

    /// What the last [`CopyPacker::pack`] did.
    pub fn stats(&self) -> PackStats {
        self.stats
    }

    /// The heaviest bin's load in the result of the last [`CopyPacker::pack`] (`0.0` before
    /// any): each bin's copy weights `w_i / c_i`, with the final counts, summed from `0.0` in
    /// position order, as an evaluator that sums slot by slot gets them.
    pub fn peak(&self) -> f64 {
        self.load.iter().copied().fold(0.0, f64::max)
    }

    /// A lower bound on the heaviest bin of any packing with any counts: the mean bin
    /// `sum(w) / m`, and the largest copy weight of the given counts when no other counts
    /// make every copy lighter (checked, not assumed).
    fn goal(&self) -> f64 {
        let total: f64 = self.weights.iter().sum();
        let mean = total / self.bins as f64;
        let largest = self
            .weights
            .iter()
            .zip(&self.counts)
            .map(|(&w, &c)| w / c as f64)
            .fold(0.0, f64::max);
        if largest <= 0.0 {
            return mean;
        }
        // The fewest copies that make every copy strictly lighter than `largest`: if that is
        // more than we have, `largest` is the smallest possible largest copy weight.
        let needed: f64 = self
            .weights
            .iter()
            .map(|&w| ((w / largest).floor() + 1.0).max(1.0))
            .sum();
        let copies: usize = self.counts.iter().sum();
        if needed > copies as f64 {
            mean.max(largest)
        } else {
            mean
        }
    }

    /// Applies the best improving move until the goal is reached, none is left or `max_moves`
    /// were applied.
    fn descend(&mut self, max_moves: usize) {
        for _ in 0..max_moves {
            let top = self.heaviest();
            if self.load[top] <= self.stop_at {
                self.stats.reached_goal = true;
                return;
            }
            // A pair swap that brings the heaviest bin down to the goal (the most effective
            // move near the goal); otherwise the best swap, pair swap or count move that
            // lowers it, cheapest first.
            let m = self
                .exchange_move(top, true, true)
                .or_else(|| self.exchange_move(top, false, false))
                .or_else(|| self.exchange_move(top, true, false))
                .or_else(|| self.best_count_move(top));
            match m {
                Some(m) => self.apply(m),
                None => return,
            }
        }
        let top = self.heaviest();
        self.stats.reached_goal = self.load[top] <= self.stop_at;
    }

    /// Tries the `kick_width` most promising non-improving count moves, each followed by a
    /// descent; keeps the first that ends with a lower heaviest bin. Returns whether one did.
    fn kick(&mut self, limits: PackLimits) -> bool {
        let top = self.heaviest();
        let peak = self.load[top];
        let mut candidates = std::mem::take(&mut self.candidates);
        candidates.clear();
        self.count_moves(top, |worst, m| candidates.push((worst, m)));
        candidates.sort_by(|a, b| a.0.total_cmp(&b.0));
        self.saved_item.clone_from(&self.item);
        self.saved_counts.clone_from(&self.counts);
        let mut kept = false;
        for &(_, m) in candidates.iter().take(limits.kick_width) {
            self.stats.kicks += 1;
            self.apply(m);
            self.descend(limits.max_moves);
            if self.load[self.heaviest()] < peak - peak.abs() * 1e-12 {
                kept = true;
                break;
            }
            self.item.clone_from(&self.saved_item);
            self.counts.clone_from(&self.saved_counts);
            self.index();
        }
        self.candidates = candidates;
        kept
    }

    /// Balanced largest differencing: see the module docs.
    fn construct(&mut self) {
        let (m, k) = (self.bins, self.per_bin);
        // Items by descending copy weight (integer keys, see `desc_key`).
        let bits = index_bits(self.weights.len());
        self.keys.clear();
        for (item, (&w, &c)) in self.weights.iter().zip(&self.counts).enumerate() {
            self.keys.push(desc_key(w / c as f64, item, bits));
        }
        self.keys.sort_unstable();
        self.copies.clear();
        for &key in &self.keys {
            let item = (key & ((1 << bits) - 1)) as usize;
            let (s, c) = (
                self.weights[item] / self.counts[item] as f64,
                self.counts[item],
            );
            self.copies.extend(std::iter::repeat_n((s, item), c));
        }
        let n = self.copies.len();
        self.next.clear();
        self.next.resize(n, usize::MAX);
        self.subsets.clear();
        self.subsets
            .extend(self.copies.iter().enumerate().map(|(i, &(sum, _))| Subset {
                sum,
                head: i,
                tail: i,
            }));
        // Row r (a partial solution, heaviest subset first) is subsets[r*m .. (r+1)*m].
        self.alive.clear();
        self.alive.extend(0..k);
        let spread = |s: &[Subset], r: usize| s[r * m].sum - s[r * m + m - 1].sum;
        while self.alive.len() > 1 {
            // The two largest spreads, earliest on ties.
            let (mut first, mut second) = (0, 1);
            if spread(&self.subsets, self.alive[1]) > spread(&self.subsets, self.alive[0]) {
                (first, second) = (1, 0);
            }
            for i in 2..self.alive.len() {
                let s = spread(&self.subsets, self.alive[i]);
                if s > spread(&self.subsets, self.alive[first]) {
                    second = first;
                    first = i;
                } else if s > spread(&self.subsets, self.alive[second]) {
                    second = i;
                }
            }
            let (a, b) = (self.alive[first], self.alive[second]);
            for i in 0..m {
                let from = self.subsets[b * m + m - 1 - i];
                let into = &mut self.subsets[a * m + i];
                self.next[into.tail] = from.head;
                into.tail = from.tail;
                into.sum += from.sum;
            }
            // Heaviest subset first again.
            let bits = index_bits(m);
            let merged = &mut self.subsets[a * m..(a + 1) * m];
            self.keys.clear();
            self.keys.extend(
                merged
                    .iter()
                    .enumerate()
                    .map(|(i, s)| desc_key(s.sum, i, bits)),
            );
            self.keys.sort_unstable();
            self.merged.clear();
            self.merged.extend_from_slice(merged);
            for (s, &key) in merged.iter_mut().zip(&self.keys) {
                *s = self.merged[(key & ((1 << bits) - 1)) as usize];
            }
            self.alive.retain(|&r| r != a && r != b);
            self.alive.push(a);
        }
        self.item.clear();
        let r = self.alive[0];
        for j in 0..m {
            let subset = self.subsets[r * m + j];
            let mut c = subset.head;
            loop {
                self.item.push(self.copies[c].1);
                if c == subset.tail {
                    break;
                }
                c = self.next[c];
            }
        }
    }

    /// Rebuilds positions, copy weights, loads and sorted orders from `item` and `counts`.
    fn index(&mut self) {
        let items = self.weights.len();
        if self.positions.len() < items {
            self.positions.resize(items, Vec::new());
        }
        self.positions.iter_mut().for_each(Vec::clear);
        for (pos, &i) in self.item.iter().enumerate() {
            self.positions[i].push(pos);
        }
        self.grown.clear();
        self.grown.extend(
            self.weights
                .iter()
                .zip(&self.counts)
                .map(|(&w, &c)| w / (c + 1) as f64),
        );
        self.at.clear();
        self.at.extend(
            self.item
                .iter()
                .map(|&i| self.weights[i] / self.counts[i] as f64),
        );
        self.load.clear();
        self.load.resize(self.bins, 0.0);
        self.singles.clear();
        self.singles
            .extend((0..self.item.len()).map(|pos| PairEntry {
                sum: 0.0,
                a: pos as u32,
                b: pos as u32,
            }));
        let k = self.per_bin;
        self.pairs.clear();
        self.pairs.resize(
            self.bins * k * k.saturating_sub(1) / 2,
            PairEntry::default(),
        );
        self.pairs_stale.clear();
        self.pairs_stale.resize(self.bins, true);
        self.delta.clear();
        self.delta.resize(self.bins, 0.0);
        self.on_top.clear();
        self.on_top.resize(items, 0);
        for b in 0..self.bins {
            self.refresh_bin(b);
        }
        self.by_load.clear();
        self.by_load.extend(0..self.bins);
        self.by_load_stale = true;
    }

    /// Sorts `by_load` (insertion sort: a move changes few loads), lower bin first on ties.
    fn sort_by_load(&mut self) {
        if !std::mem::take(&mut self.by_load_stale) {
            return;
        }
        let (order, load) = (&mut self.by_load, &self.load);
        let after = |a: usize, b: usize| load[a] > load[b] || (load[a] == load[b] && a > b);
        for i in 1..order.len() {
            let x = order[i];
            let mut j = i;
            while j > 0 && after(order[j - 1], x) {
                order[j] = order[j - 1];
                j -= 1;
            }
            order[j] = x;
        }
    }

    /// Recomputes bin `b`'s load (its copies summed in position order) and sorted order after
    /// its content changed (its pairs are sorted again when next needed).
    fn refresh_bin(&mut self, b: usize) {
        self.pairs_stale[b] = true;
        self.by_load_stale = true;
        let k = self.per_bin;
        let slots = b * k..(b + 1) * k;
        self.load[b] = self.at[slots.clone()].iter().sum();
        // Insertion sort: the order is nearly sorted after a move.
        let list = &mut self.singles[slots];
        for e in list.iter_mut() {
            e.sum = self.at[e.a as usize];
        }
        insertion_sort(list, |x, y| x.sum > y.sum || (x.sum == y.sum && x.a > y.a));
    }

    /// Brings bin `b`'s sorted pair list up to date: with the bin's copies sorted, the pairs
    /// of each copy with the lighter ones form sorted columns, and the columns of ever heavier
    /// copies one after the other are nearly sorted (copy weights are spread out); an
    /// insertion sort finishes the job in one step per pair out of order, far fewer than a
    /// comparison sort of all pairs needs.
    fn refresh_pairs(&mut self, b: usize) {
        if !std::mem::take(&mut self.pairs_stale[b]) {
            return;
        }
        let k = self.per_bin;
        let per = k * (k - 1) / 2;
        let singles = &self.singles[b * k..(b + 1) * k];
        let list = &mut self.pairs[b * per..(b + 1) * per];
        let mut pairs = list.iter_mut();
        for (j, y) in singles.iter().enumerate() {
            for (x, e) in singles[..j].iter().zip(&mut pairs) {
                *e = PairEntry {
                    sum: x.sum + y.sum,
                    a: x.a,
                    b: y.a,
                };
            }
        }
        insertion_sort(list, |x, y| x.sum > y.sum);
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

    /// An exchange of one copy (`pairs == false`) or two copies of `top` with as many
    /// copies of another bin.
    ///
    /// With `fix`, the first found (bins with the most room first, then the smallest transfer)
    /// that brings `top` down to the goal without lifting the other bin above it; otherwise the
    /// best one that lowers `top` without lifting the other bin to `top`'s load (the lowest
    /// larger load of the two).
    fn exchange_move(&mut self, top: usize, pairs: bool, fix: bool) -> Option<Move> {
        let k = self.per_bin;
        // Pair swaps for 2 to 64 copies per bin (the pair lists cost O(k^2) per bin).
        if pairs && !(2..=64).contains(&k) {
            return None;
        }
        self.stats.searches += 1;
        let per = if pairs { k * (k - 1) / 2 } else { k };
        let peak = self.load[top];
        let goal = self.stop_at;
        // Moves must lower the peak by more than rounding noise.
        let mut best = peak - peak.abs() * 1e-12;
        let mut found = None;
        self.sort_by_load();
        if pairs {
            self.refresh_pairs(top);
        }
        let mut evaluations = 0;
        for i in 0..self.bins {
            let b = self.by_load[i];
            let lb = self.load[b];
            // Bins come by ascending load: no later bin can do better.
            if (fix && lb + (peak - goal) > goal) || (!fix && (peak + lb) * 0.5 >= best) {
                break;
            }
            if b == top {
                continue;
            }
            if pairs {
                self.refresh_pairs(b);
            }
            let list = if pairs { &self.pairs } else { &self.singles };
            let mine = &list[top * per..(top + 1) * per];
            let theirs = &list[b * per..(b + 1) * per];
            // A merge-like sweep over both sorted lists.
            let mut j = 0;
            if fix {
                // Transfers d in [peak - goal, goal - lb]: the smallest one.
                let (least, room) = (peak - goal, goal - lb);
                let mut smallest = f64::INFINITY;
                for x in mine {
                    let most = x.sum - least;
                    while j < per && theirs[j].sum <= most {
                        j += 1;
                    }
                    if j > 0 {
                        evaluations += 1;
                        let y = &theirs[j - 1];
                        let d = x.sum - y.sum;
                        if d > 0.0 && d <= room && d < smallest {
                            smallest = d;
                            found = Some(exchange(pairs, x, y));
                        }
                    }
                }
            } else {
                // The larger load after a transfer d is (peak + lb) / 2 + |d - slack / 2|:
                // the best partner is the one whose weight is nearest to x - slack / 2 (the
                // lighter one on ties).
                let slack = peak - lb;
                let half = 0.5 * slack;
                for x in mine {
                    let ideal = x.sum - half;
                    while j < per && theirs[j].sum < ideal {
                        j += 1;
                    }
                    let y = match (j.checked_sub(1).map(|i| &theirs[i]), theirs.get(j)) {
                        (Some(below), Some(above)) if above.sum - ideal < ideal - below.sum => {
                            above
                        }
                        (Some(below), _) => below,
                        (None, Some(above)) => above,
                        (None, None) => continue,
                    };
                    evaluations += 1;
                    let d = x.sum - y.sum;
                    if d > 0.0 && d < slack {
                        let score = (peak - d).max(lb + d);
                        if score < best {
                            best = score;
                            found = Some(exchange(pairs, x, y));
                        }
                    }
                }
            }
            // With `fix`, the first bin with a move (the one with the most room) gives it.
            if fix && found.is_some() {
                break;
            }
        }
        self.stats.evaluations += evaluations;
        found
    }

    /// The best count move that lowers `top` without lifting any bin to `top`'s load.
    fn best_count_move(&mut self, top: usize) -> Option<Move> {
        let peak = self.load[top];
        let mut best = peak - peak.abs() * 1e-12;
        let mut found = None;
        self.count_moves(top, |worst, m| {
            if worst < best {
                best = worst;
                found = Some(m);
            }
        });
        found
    }

    /// Calls `offer(worst, move)` for the count moves that lower `top`, with `worst` the
    /// largest load the move leaves on the bins it touches: a copy on `top` changes owner,
    /// or an item with a copy on `top` gains a copy elsewhere.
    fn count_moves(&mut self, top: usize, mut offer: impl FnMut(f64, Move)) {
        self.stats.searches += 1;
        let k = self.per_bin;
        let slots = top * k..(top + 1) * k;
        for pos in slots.clone() {
            self.on_top[self.item[pos]] += 1;
        }
        self.multi.clear();
        self.multi
            .extend((0..self.weights.len()).filter(|&i| self.counts[i] >= 2));
        let mut evaluations = 0;
        // A copy on `top` changes owner.
        for pos in slots.clone() {
            let from = self.item[pos];
            let cf = self.counts[from];
            if cf < 2 {
                continue;
            }
            let wf = self.weights[from];
            let share = wf / cf as f64;
            let from_gain = wf / (cf - 1) as f64 - share;
            // `top` changes by grown[to] - share + from_gain * (others of `from` on top)
            // + (its copies of `to` shrinking); the first part must already be negative
            // unless `to` is on `top`.
            let base = share - from_gain * (self.on_top[from] - 1) as f64;
            for to in 0..self.weights.len() {
                if to == from || (self.on_top[to] == 0 && self.grown[to] >= base) {
                    continue;
                }
                evaluations += 1;
                if let Some(worst) = self.count_effect(pos, to, top) {
                    offer(worst, Move::Count { pos, to });
                }
            }
        }
        // An item on `top` gains a copy taken from a copy elsewhere.
        for to_pos in slots.clone() {
            let to = self.item[to_pos];
            if slots
                .clone()
                .take_while(|&p| p < to_pos)
                .any(|p| self.item[p] == to)
            {
                continue;
            }
            for f in 0..self.multi.len() {
                let from = self.multi[f];
                if from == to {
                    continue;
                }
                for p in 0..self.positions[from].len() {
                    let pos = self.positions[from][p];
                    if pos / k == top {
                        continue;
                    }
                    evaluations += 1;
                    if let Some(worst) = self.count_effect(pos, to, top) {
                        offer(worst, Move::Count { pos, to });
                    }
                }
            }
        }
        for pos in slots {
            self.on_top[self.item[pos]] = 0;
        }
        self.stats.evaluations += evaluations;
    }

    /// The largest load on the bins a count move touches, if it lowers `top`.
    fn count_effect(&mut self, pos: usize, to: usize, top: usize) -> Option<f64> {
        let from = self.item[pos];
        let (cf, ct) = (self.counts[from], self.counts[to]);
        let (wf, wt) = (self.weights[from], self.weights[to]);
        let from_share = wf / cf as f64;
        let from_gain = wf / (cf - 1) as f64 - from_share;
        let to_gain = self.grown[to] - wt / ct as f64;
        let k = self.per_bin;
        for &p in &self.positions[from] {
            let b = p / k;
            if self.delta[b] == 0.0 {
                self.touched.push(b);
            }
            self.delta[b] += if p == pos {
                self.grown[to] - from_share
            } else {
                from_gain
            };
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
            worst = worst.max(self.load[b] + self.delta[b]);
            lowers_top |= b == top && self.delta[b] < 0.0;
            self.delta[b] = 0.0;
        }
        self.touched.clear();
        lowers_top.then_some(worst)
    }

    fn apply(&mut self, m: Move) {
        let k = self.per_bin;
        match m {
            Move::Swap { a, b } => {
                self.stats.swaps += 1;
                self.exchange(a, b);
                self.refresh_bin(a / k);
                self.refresh_bin(b / k);
            }
            Move::PairSwap { a, b } => {
                self.stats.pair_swaps += 1;
                self.exchange(a.0, b.0);
                self.exchange(a.1, b.1);
                self.refresh_bin(a.0 / k);
                self.refresh_bin(b.0 / k);
            }
            Move::Count { pos, to } => {
                self.stats.count_moves += 1;
                let from = self.item[pos];
                self.item[pos] = to;
                self.counts[from] -= 1;
                self.counts[to] += 1;
                replace_remove(&mut self.positions[from], pos);
                self.positions[to].push(pos);
                for item in [from, to] {
                    let c = self.counts[item];
                    let (w, share) = (self.weights[item], self.weights[item] / c as f64);
                    self.grown[item] = w / (c + 1) as f64;
                    for p in 0..self.positions[item].len() {
                        let q = self.positions[item][p];
                        self.at[q] = share;
                    }
                }
                // Refresh every bin holding a copy of either item (once each).
                for item in [from, to] {
                    for p in 0..self.positions[item].len() {
                        let b = self.positions[item][p] / k;
                        if self.delta[b] == 0.0 {
                            self.delta[b] = 1.0;
                            self.touched.push(b);
                        }
                    }
                }
                let touched = std::mem::take(&mut self.touched);
                for &b in &touched {
                    self.delta[b] = 0.0;
                    self.refresh_bin(b);
                }
                self.touched = touched;
                self.touched.clear();
            }
        }
    }

    /// Exchanges the copies at `a` and `b` (loads and orders are refreshed by the caller).
    fn exchange(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.item[a], self.item[b]);
        self.at.swap(a, b);
        self.item.swap(a, b);
        replace(&mut self.positions[ia], a, b);
        replace(&mut self.positions[ib], b, a);
    }
}

/// Bits that hold the indices `0..n`.
fn index_bits(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

/// A key that sorts non-negative weights descending, then `index` ascending: the complement
/// of the weight's bits (`+ 0.0` turns `-0.0` into `0.0`) with the lowest `bits` bits
/// replaced by `index`. Weights closer than `2^(bits - 52)` (relative) count as equal.
///
/// # Panics
/// In debug builds, when `bits > 40`: the index would swallow the weight.
fn desc_key(weight: f64, index: usize, bits: u32) -> u64 {
    debug_assert!(bits <= 40);
    let low = (1u64 << bits) - 1;
    (!(weight + 0.0).to_bits() & !low) | index as u64
}

/// Sorts `list` stably so that no entry comes `after` the next one (insertion sort: fast on
/// nearly sorted lists).
fn insertion_sort(list: &mut [PairEntry], after: impl Fn(&PairEntry, &PairEntry) -> bool) {
    for i in 1..list.len() {
        let x = list[i];
        let mut j = i;
        while j > 0 && after(&list[j - 1], &x) {
            list[j] = list[j - 1];
            j -= 1;
        }
        list[j] = x;
    }
}

/// The exchange of entry `x` of the heaviest bin with entry `y` of another.
fn exchange(pairs: bool, x: &PairEntry, y: &PairEntry) -> Move {
    if pairs {
        Move::PairSwap {
            a: (x.a as usize, x.b as usize),
            b: (y.a as usize, y.b as usize),
        }
    } else {
        Move::Swap {
            a: x.a as usize,
            b: y.a as usize,
        }
    }
}

fn replace(list: &mut [usize], old: usize, new: usize) {
    if let Some(p) = list.iter_mut().find(|p| **p == old) {
        *p = new;
    }
}

fn replace_remove(list: &mut Vec<usize>, old: usize) {
    if let Some(i) = list.iter().position(|&p| p == old) {
        list.remove(i);
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

    #[test]
    fn differencing_balances_a_perfect_instance() {
        // 1..=8 in 2 bins of 4: sum 36, both bins 18 (e.g. {8, 5, 4, 1}, {7, 6, 3, 2}).
        let w: Vec<f64> = (1..=8).map(f64::from).collect();
        let limits = PackLimits {
            max_moves: 0,
            ..PackLimits::default()
        };
        let mut p = CopyPacker::default();
        let items = p.pack(&w, &[1; 8], 2, limits).unwrap();
        assert_eq!(peak(&w, &items, 2), 18.0);
    }

    #[test]
    fn stops_at_the_bound_and_at_the_target() {
        let w = [5.0, 4.0, 3.0, 3.0, 2.0, 1.0];
        let mut p = CopyPacker::default();
        let items = p.pack(&w, &[1; 6], 2, PackLimits::default()).unwrap();
        // Sum 18 over 2 bins: 9 is the bound, and it is reached.
        assert_eq!(peak(&w, &items, 2), 9.0);
        assert!(p.stats().reached_goal);
        // A target above the construction's peak: no move at all.
        let limits = PackLimits {
            target: 100.0,
            ..PackLimits::default()
        };
        p.pack(&w, &[1; 6], 2, limits).unwrap();
        assert_eq!(
            p.stats().swaps + p.stats().pair_swaps + p.stats().count_moves,
            0
        );
        assert_eq!(p.stats().searches, 0);
        assert!(p.stats().reached_goal);
    }

    #[test]
    fn the_goal_uses_the_largest_copy_only_when_the_counts_attain_it() {
        // (8, 1, 1) in 2 bins of 2 with 8 copied twice: every copy is at most 4, and no
        // other counts do better, so the bound is max(10 / 2, 4) = 5.
        let mut p = CopyPacker {
            weights: vec![8.0, 1.0, 1.0],
            counts: vec![2, 1, 1],
            bins: 2,
            ..CopyPacker::default()
        };
        assert_eq!(p.goal(), 5.0);
        // (8, 1, 1, 1) with 1 copied twice: 8 could be copied instead; only the mean counts.
        p.weights = vec![8.0, 1.0, 1.0, 1.0];
        p.counts = vec![1, 2, 1, 1];
        p.bins = 5;
        assert_eq!(p.goal(), 11.0 / 5.0);
        // Copying 8 twice is optimal with 5 copies: bound max(11 / 5, 4) = 4.
        p.counts = vec![2, 1, 1, 1];
        assert_eq!(p.goal(), 4.0);
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
            for limits in [PackLimits::default(), PackLimits::deep()] {
                let items = p.pack(&w, &counts, bins, limits).unwrap();
                prop_assert_eq!(items.len(), n);
                for i in 0..w.len() {
                    prop_assert!(items.contains(&i), "item {} lost its last copy", i);
                }
                prop_assert!(items.iter().all(|&i| i < w.len()));
                // Deterministic, also with a reused packer.
                prop_assert_eq!(&items, &CopyPacker::default().pack(&w, &counts, bins, limits).unwrap());
            }
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
            let reached = p.stats().reached_goal;
            prop_assert!(peak(&w, &improved, bins) <= peak(&w, &built, bins) * (1.0 + 1e-12));
            let exhaustive = p.pack(&w, &counts, bins, PackLimits { stop_gap: 0.0, ..PackLimits::default() }).unwrap();
            prop_assert!(peak(&w, &exhaustive, bins) <= peak(&w, &built, bins) * (1.0 + 1e-12));
            // Deep goes on from where the fast setting stops.
            let kicked = p.pack(&w, &counts, bins, PackLimits::deep()).unwrap();
            prop_assert!(peak(&w, &kicked, bins) <= peak(&w, &improved, bins) * (1.0 + 1e-12));
            // Where the fast setting says it reached its goal, it is within its gap of the
            // bound (at most the mean or the largest copy).
            let total: f64 = w.iter().sum();
            let mean = total / bins as f64;
            if reached {
                let largest = w.iter().zip(&counts).map(|(&x, &c)| x / c as f64).fold(mean, f64::max);
                prop_assert!(peak(&w, &improved, bins) <= largest * (1.0 + PackLimits::default().stop_gap));
            }
            // The mean bin is a lower bound on any packing.
            prop_assert!(peak(&w, &improved, bins) >= mean * (1.0 - 1e-12));
        }
    }
}
