//! The incremental state of the local search: positions, copy weights, bin loads, sorted
//! copies and pairs per bin, and the sort keys.

use super::*;

/// Bins at most for which the load order is kept by insertion sort (a hierarchical node's 8
/// GPUs, for example).
const SMALL_ORDER: usize = 16;

impl CopyPacker {
    /// Rebuilds positions, copy weights, loads and sorted orders from `item` and `counts`.
    pub(super) fn index(&mut self) {
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
        // Each item's copy weight once, then by position.
        self.refresh_shares();
        let shares = &self.shares;
        self.at.clear();
        self.at.extend(self.item.iter().map(|&i| shares[i]));
        self.copy_weights_stale = true;
        self.singles.clear();
        self.singles
            .extend(self.item.iter().enumerate().map(|(pos, &i)| PairEntry {
                sum: shares[i],
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
        self.marked.clear();
        self.marked.resize(self.bins, false);
        self.on_top.clear();
        self.on_top.resize(items, 0);
        // What `refresh_bin` does for every bin: loads and sorted copies; every bin moved.
        self.load.clear();
        self.load.extend(
            self.at
                .chunks_exact(k)
                .map(|copies| bin_load(copies.iter().copied())),
        );
        for list in self.singles.chunks_exact_mut(k) {
            insertion_sort(list, singles_after);
        }
        self.moved.clear();
        self.moved.extend(0..self.bins);
        self.is_moved.clear();
        self.is_moved.resize(self.bins, true);
        // The differencing leaves the bins heaviest first: reversed, they are nearly in order
        // for the first `sort_by_load` (every bin is in `moved`: a full sort).
        self.by_load.clear();
        self.by_load.extend((0..self.bins).rev());
    }

    /// Brings `by_load` up to date: the bins by ascending load, lower bin first on ties (a
    /// total order, so the result does not depend on how it is reached). A move changes few
    /// loads: those bins are taken out and put back at their place by binary search, `O(P)`
    /// cheap moves instead of a pass of comparisons over all `P` bins; when more than one bin
    /// in 8 changed (the first call, after a balancing sweep, a count move of a widely copied
    /// item), a full sort. Up to [`SMALL_ORDER`] bins, an insertion sort (the cheapest there).
    pub(super) fn sort_by_load(&mut self) {
        if self.moved.is_empty() {
            return;
        }
        let load = &self.load;
        let order = |a: &usize, b: &usize| load[*a].total_cmp(&load[*b]).then(a.cmp(b));
        if self.bins <= SMALL_ORDER {
            let after =
                |a: &usize, b: &usize| load[*a] > load[*b] || (load[*a] == load[*b] && a > b);
            insertion_sort(&mut self.by_load, after);
        } else if self.moved.len() * 8 > self.bins {
            // Integer keys: a non-negative load's bits order like the load (`total_cmp`),
            // (`+ 0.0` turns `-0.0` into `0.0`), the bin in the low half breaks ties; no indirection
            // in the comparisons.
            // Keys in the current order, which is often nearly right (the differencing leaves
            // the bins heaviest first, `index` lists them reversed): an insertion sort while it
            // moves few keys, a full sort otherwise. The keys are distinct, so either gives the
            // same order.
            self.load_keys.clear();
            self.load_keys.extend(
                self.by_load
                    .iter()
                    .map(|&b| (u128::from((load[b] + 0.0).to_bits()) << 64) | b as u128),
            );
            if !insertion_sort_within(&mut self.load_keys, 2 * self.bins) {
                self.load_keys.sort_unstable();
            }
            self.by_load.clear();
            self.by_load
                .extend(self.load_keys.iter().map(|&key| key as u64 as usize));
            debug_assert!(self.by_load.is_sorted_by(|a, b| order(a, b).is_lt()));
            self.placed_load.clone_from(load);
        } else {
            // Each moved bin is found by binary search under the load it was placed with,
            // and moved to its new place by rotating the bins between (the others keep
            // their order, so the order equals a full sort's).
            let placed = &mut self.placed_load;
            let order = &mut self.by_load;
            for &b in &self.moved {
                let key = |x: usize| (placed[x], x);
                let below = |x: usize, at: (f64, usize)| {
                    let (l, i) = key(x);
                    l.total_cmp(&at.0).then(i.cmp(&at.1)).is_lt()
                };
                let old = (placed[b], b);
                let from = order.partition_point(|&x| below(x, old));
                debug_assert_eq!(order[from], b);
                let new = (load[b], b);
                if from > 0 && !below(order[from - 1], new) {
                    let to = order[..from].partition_point(|&x| below(x, new));
                    order[to..=from].rotate_right(1);
                } else {
                    let after = order[from + 1..].partition_point(|&x| below(x, new));
                    order[from..=from + after].rotate_left(1);
                }
                placed[b] = load[b];
            }
        }
        for &b in &self.moved {
            self.is_moved[b] = false;
        }
        self.moved.clear();
    }

    /// Recomputes bin `b`'s load (its copies summed in position order) and sorted order after
    /// its content changed (its pairs are sorted again when next needed).
    pub(super) fn refresh_bin(&mut self, b: usize) {
        self.refresh_load(b);
        let k = self.per_bin;
        // Insertion sort: the order is nearly sorted after a move.
        let list = &mut self.singles[b * k..(b + 1) * k];
        for e in list.iter_mut() {
            e.sum = self.at[e.a as usize];
        }
        insertion_sort(list, singles_after);
    }

    /// [`CopyPacker::refresh_bin`] after only the copy at `pos` changed: its entry takes the
    /// new weight and moves to its place (the others stay sorted; the order is total, so the
    /// same order as a full sort).
    pub(super) fn refresh_position(&mut self, pos: usize) {
        let k = self.per_bin;
        let b = pos / k;
        self.refresh_load(b);
        let list = &mut self.singles[b * k..(b + 1) * k];
        let Some(mut i) = list.iter().position(|e| e.a as usize == pos) else {
            debug_assert!(false, "every position has an entry in its bin");
            return;
        };
        list[i].sum = self.at[pos];
        while i > 0 && singles_after(&list[i - 1], &list[i]) {
            list.swap(i - 1, i);
            i -= 1;
        }
        while i + 1 < k && singles_after(&list[i], &list[i + 1]) {
            list.swap(i, i + 1);
            i += 1;
        }
    }

    /// Bin `b`'s load (its copies summed in position order) after its content changed; marks
    /// its place in the load order and its pairs out of date.
    fn refresh_load(&mut self, b: usize) {
        self.pairs_stale[b] = true;
        if !self.is_moved[b] {
            self.is_moved[b] = true;
            self.moved.push(b);
        }
        let k = self.per_bin;
        self.load[b] = bin_load(self.at[b * k..(b + 1) * k].iter().copied());
    }

    /// The smallest positive weight difference between a copy of bin `b` and any copy:
    /// for each copy of `b`, its weight minus the next lower copy weight of any item
    /// (`f64::INFINITY` when no copy is lighter than any of `b`'s). A swap of one copy moves
    /// at least this much off `b`, so a bin `c` with `load[b] - load[c] <= ` it has no swap
    /// that lowers `b` without lifting `c` to `b`'s former load.
    ///
    /// Exact in floating point: for copy weights `y <= p < x`, `x - y >= x - p` (rounding is
    /// monotone), so no swap's transfer `x - y` is smaller than the value returned.
    pub(super) fn least_swap_transfer(&mut self, b: usize) -> f64 {
        if std::mem::take(&mut self.copy_weights_stale) {
            let mut all = std::mem::take(&mut self.copy_weights);
            all.clear();
            all.extend(self.current_shares());
            all.sort_unstable_by(f64::total_cmp);
            self.copy_weights = all;
        }
        let k = self.per_bin;
        let all = &self.copy_weights;
        self.singles[b * k..(b + 1) * k]
            .iter()
            .map(|x| {
                let below = all.partition_point(|&w| w < x.sum);
                below
                    .checked_sub(1)
                    .map_or(f64::INFINITY, |i| x.sum - all[i])
            })
            .fold(f64::INFINITY, f64::min)
    }

    /// Brings bin `b`'s sorted pair list up to date: with the bin's copies sorted, the pairs
    /// of copy `j` with the lighter copies `i < j` form a sorted column (rounding is monotone:
    /// `s_i <= s_i'` gives `s_i + s_j <= s_i' + s_j`), and the list is the columns `j = 1, 2,
    /// ...` merged one after the other, each into the sorted list of the ones before, from the
    /// back (in place, no scratch); on equal weights the earlier column's pair comes first. So
    /// the list is the stable sort by weight of the pairs listed column by column: `O(k^3)`
    /// cheap steps at most, fewer than a sort of all pairs needs for the few copies per bin
    /// that have pair swaps.
    pub(super) fn refresh_pairs(&mut self, b: usize) {
        if !std::mem::take(&mut self.pairs_stale[b]) {
            return;
        }
        let k = self.per_bin;
        let per = k * (k - 1) / 2;
        let singles = &self.singles[b * k..(b + 1) * k];
        let list = &mut self.pairs[b * per..(b + 1) * per];
        let mut len = 0;
        for (j, y) in singles.iter().enumerate().skip(1) {
            // Merge column j (pairs (i, j), i < j, ascending) into list[..len].
            let pair = |i: usize| PairEntry {
                sum: singles[i].sum + y.sum,
                a: singles[i].a,
                b: y.a,
            };
            let mut acc = len;
            for i in (0..j).rev() {
                let c = pair(i);
                // From the back: the column's pair goes after the list's on equal weights.
                while acc > 0 && list[acc - 1].sum > c.sum {
                    list[acc + i] = list[acc - 1];
                    acc -= 1;
                }
                list[acc + i] = c;
            }
            len += j;
        }
        debug_assert_eq!(len, per);
    }

    /// The heaviest bin, the lowest on ties (the first of the last run of equal loads in
    /// `by_load`; a scan for up to [`SMALL_ORDER`] bins).
    pub(super) fn heaviest(&mut self) -> usize {
        if self.bins <= SMALL_ORDER {
            // A scan: cheaper than keeping the order for few bins.
            let mut best = 0;
            for b in 1..self.bins {
                if self.load[b] > self.load[best] {
                    best = b;
                }
            }
            return best;
        }
        self.sort_by_load();
        let order = &self.by_load;
        let last = order[order.len() - 1];
        let peak = self.load[last];
        let first = order.partition_point(|&b| self.load[b] < peak);
        order[first]
    }
}

/// Bits that hold the indices `0..n`.
pub(super) fn index_bits(n: usize) -> u32 {
    (usize::BITS - n.saturating_sub(1).leading_zeros()).max(1)
}

/// A key that sorts non-negative weights descending, then `index` ascending: the complement
/// of the weight's bits (`+ 0.0` turns `-0.0` into `0.0`) with the lowest `bits` bits
/// replaced by `index`. Weights closer than `2^(bits - 52)` (relative) count as equal.
///
/// # Panics
/// In debug builds, when `bits > 40`: the index would swallow the weight.
pub(super) fn desc_key(weight: f64, index: usize, bits: u32) -> u64 {
    debug_assert!(bits <= 40);
    let low = (1u64 << bits) - 1;
    (!(weight + 0.0).to_bits() & !low) | index as u64
}

/// The order of a bin's sorted copies: by weight, then position.
fn singles_after(x: &PairEntry, y: &PairEntry) -> bool {
    x.sum > y.sum || (x.sum == y.sum && x.a > y.a)
}

/// Sorts `keys` ascending by insertion sort if that takes at most `budget` moves of a key by
/// one place (fast on nearly sorted keys); otherwise stops early and returns `false`, leaving
/// `keys` a permutation of what it was.
pub(super) fn insertion_sort_within<T: Ord + Copy>(keys: &mut [T], mut budget: usize) -> bool {
    for i in 1..keys.len() {
        let x = keys[i];
        let mut j = i;
        while j > 0 && keys[j - 1] > x {
            if budget == 0 {
                keys[j] = x;
                return false;
            }
            budget -= 1;
            keys[j] = keys[j - 1];
            j -= 1;
        }
        keys[j] = x;
    }
    true
}

/// Sorts `list` stably so that no entry comes `after` the next one (insertion sort: fast on
/// nearly sorted lists).
pub(super) fn insertion_sort<T: Copy>(list: &mut [T], after: impl Fn(&T, &T) -> bool) {
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
