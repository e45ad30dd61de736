//! Phase 1: balanced largest differencing (Karmarkar–Karp with `k` copies per bin).

use super::*;

impl CopyPacker {
    /// Balanced largest differencing: see the module docs.
    pub(super) fn construct(&mut self) {
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
}
