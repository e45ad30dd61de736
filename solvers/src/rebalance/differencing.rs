//! Phase 1: balanced largest differencing (Karmarkar–Karp with `k` copies per bin).

use super::*;

impl CopyPacker {
    /// Balanced largest differencing: see the module docs. With two copies per bin,
    /// [`CopyPacker::construct_pairs`] (the same packing, without the general merge's
    /// bookkeeping).
    pub(super) fn construct(&mut self) {
        if self.per_bin == 2 {
            self.construct_pairs();
        } else {
            self.construct_general();
        }
    }

    /// The copies by descending weight (`copies`): the items by descending copy weight
    /// (integer keys, see `desc_key`), each item's copies together. Within one packing the sort
    /// starts from the order of the last call (after a count move two items' keys changed: an
    /// insertion sort puts them in place); a packing's first sort is a full sort (the last
    /// order is another packing's: another node, another layer). The keys are distinct, so the
    /// order does not depend on the start.
    fn sorted_copies(&mut self) {
        let n = self.weights.len();
        let bits = index_bits(n);
        let mask = (1u64 << bits) - 1;
        let fresh = std::mem::take(&mut self.fresh_order);
        // Each item's copy weight once (the keys and the copies take it from here).
        self.refresh_shares();
        let shares = &self.shares;
        self.keys.clear();
        if fresh || self.item_order.len() != n {
            self.keys.extend(
                shares
                    .iter()
                    .enumerate()
                    .map(|(item, &share)| desc_key(share, item, bits)),
            );
        } else {
            self.keys.extend(
                self.item_order
                    .iter()
                    .map(|&item| desc_key(shares[item], item, bits)),
            );
        }
        if fresh || !insertion_sort_within(&mut self.keys, 2 * n) {
            sort_keys(&mut self.keys, self.kernels);
        }
        self.item_order.clear();
        self.item_order
            .extend(self.keys.iter().map(|&key| (key & mask) as usize));
        let total: usize = self.counts.iter().sum();
        self.copies.clear();
        self.copies.resize(total, (0.0, 0));
        let mut at = 0;
        for &item in &self.item_order {
            let c = self.counts[item];
            self.copies[at..at + c].fill((shares[item], item));
            at += c;
        }
    }

    /// [`CopyPacker::construct`] for two copies per bin: the differencing merges its two rows
    /// (the heavier and the lighter half of the sorted copies) once, the `i`-th copy of the
    /// row with the larger spread (the first on ties) with the `i`-th last of the other, and
    /// orders the bins heaviest first (keys as in the merge, lower `i` first on ties). The
    /// same packing, bit for bit (checked against the general merge in the tests).
    pub(super) fn construct_pairs(&mut self) {
        debug_assert_eq!(self.per_bin, 2);
        let m = self.bins;
        self.sorted_copies();
        let c = &self.copies;
        let spread = |r: usize| c[r * m].0 - c[r * m + m - 1].0;
        let (a, b) = if spread(1) > spread(0) {
            (m, 0)
        } else {
            (0, m)
        };
        let bits = index_bits(m);
        self.keys.clear();
        self.keys
            .extend((0..m).map(|i| desc_key(c[a + i].0 + c[b + m - 1 - i].0, i, bits)));
        sort_keys(&mut self.keys, self.kernels);
        self.item.clear();
        for &key in &self.keys {
            let i = (key & ((1 << bits) - 1)) as usize;
            self.item.push(c[a + i].1);
            self.item.push(c[b + m - 1 - i].1);
        }
    }

    /// The differencing for any number of copies per bin.
    pub(super) fn construct_general(&mut self) {
        let (m, k) = (self.bins, self.per_bin);
        self.sorted_copies();
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
            sort_keys(&mut self.keys, self.kernels);
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
}
