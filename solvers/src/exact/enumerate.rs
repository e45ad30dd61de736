//! The count vectors: promising candidates before the enumeration, and the depth-first
//! enumeration of every vector that could beat the incumbent.

use super::*;

/// Count vectors worth packing before the complete enumeration: the apportionment; halves on
/// the largest items; and, when the average `sum / bins` has denominator `d > 1`, pieces of
/// `1/d` from the largest items whose weight `d` does not divide (enough such copies are needed
/// for every bin to reach the average exactly), the other extra copies apportioned greedily.
pub(super) fn candidates(
    weights: &[u64],
    bins: usize,
    copies: usize,
    counts0: &[usize],
    lb: Fraction,
) -> Vec<Vec<usize>> {
    let n = weights.len();
    let extra = copies - n;
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| weights[b].cmp(&weights[a]).then(a.cmp(&b)));
    let mut out = vec![counts0.to_vec()];
    let total: u64 = weights.iter().sum();
    let d = bins as u64 / gcd(total, bins as u64).max(1);
    let halves = |keep: &dyn Fn(u64) -> bool| -> Option<Vec<usize>> {
        // Too few suitable items: the rest of the copies are handed out greedily.
        let counts = counts_partial(&order, weights, extra, keep);
        Some(exact_counts_from(weights, counts, copies))
    };
    if extra > 0 {
        if let Some(c) = halves(&|_| true) {
            out.push(c);
        }
        if d == 1 {
            if let Some(c) = halves(&|w| w % 2 == 0) {
                out.push(c);
            }
        } else if let Some(c) = halves(&|w| w % 2 == 1) {
            out.push(c);
        }
    }
    if d > 1 && (d as usize) - 1 <= extra {
        // t items in d pieces each (largest weights coprime with d first), the other extra
        // copies as integer halves (even weights) or greedily.
        let d = d as usize;
        let residue_families: [&dyn Fn(u64) -> bool; 3] =
            [&|w| gcd(w, d as u64) == 1, &|w| w % d as u64 == 1, &|w| {
                w % d as u64 == d as u64 - 1
            }];
        for family in residue_families {
            let coprime: Vec<usize> = order
                .iter()
                .copied()
                .filter(|&i| family(weights[i]))
                .collect();
            for t in 1..=(extra / (d - 1)).min(coprime.len()).min(8) {
                let mut counts = vec![1; n];
                for &i in &coprime[..t] {
                    counts[i] = d;
                }
                let left = extra - t * (d - 1);
                let mut even = counts.clone();
                let mut k = left;
                for &i in &order {
                    if k > 0 && even[i] == 1 && weights[i].is_multiple_of(2) {
                        even[i] = 2;
                        k -= 1;
                    }
                }
                out.push(exact_counts_from(weights, even, copies));
                out.push(exact_counts_from(weights, counts, copies));
            }
        }
    }
    // Fewest copies for shares at most `alpha * lb`, the extra copies to the smallest items
    // (fillers that barely change the packing) or apportioned: the apportionment gives the
    // largest items every extra copy, while good packings often split the largest items just
    // enough and cut medium items in halves.
    let target = lb.to_f64();
    if target > 0.0 {
        for alpha in [1.0, 0.9, 0.8, 0.7, 0.6, 0.5] {
            let cap = alpha * target;
            let counts: Vec<usize> = weights
                .iter()
                .map(|&w| ((w as f64 / cap).ceil() as usize).max(1))
                .collect();
            let used: usize = counts.iter().sum();
            if used > copies {
                continue;
            }
            let mut filler = counts.clone();
            let mut small: Vec<usize> = (0..n).collect();
            small.sort_by(|&a, &b| weights[a].cmp(&weights[b]).then(a.cmp(&b)));
            for k in 0..copies - used {
                filler[small[k % n]] += 1;
            }
            out.push(filler);
            out.push(exact_counts_from(weights, counts, copies));
        }
    }
    let mut seen = Vec::new();
    out.retain(|c| {
        let fresh = !seen.contains(c);
        if fresh {
            seen.push(c.clone());
        }
        fresh
    });
    out
}

/// Counts 2 for the largest items passing `keep` (up to `extra`), 1 otherwise.
pub(super) fn counts_partial(
    order: &[usize],
    weights: &[u64],
    extra: usize,
    keep: &dyn Fn(u64) -> bool,
) -> Vec<usize> {
    let mut counts = vec![1; weights.len()];
    let mut left = extra;
    for &i in order {
        if left > 0 && keep(weights[i]) {
            counts[i] = 2;
            left -= 1;
        }
    }
    counts
}

/// Packs one count vector heuristically, then by a node-limited bin completion; returns a
/// packing strictly better than `inc`, if it finds one.
pub(super) fn try_counts(
    weights: &[u64],
    counts: &[usize],
    bins: usize,
    per_bin: usize,
    lb: Fraction,
    inc: Option<Fraction>,
    ctx: &mut Ctx,
) -> Option<Packing> {
    let items = Items::build(weights, counts)?;
    let limit = match inc {
        None => u64::MAX,
        Some(f) => units_below(f, items.scale)?,
    };
    let local_lb = order_bound(&items.sizes, &items.avail, items.total, bins, per_bin);
    let floor = units_at_least(lb, items.scale).max(local_lb);
    if floor > limit {
        return None;
    }
    let (mut v, mut packed) = if per_bin == 2 {
        pack_pairs(&items)
    } else {
        pack_heuristic(&items, bins, per_bin, floor, ctx)
    };
    if v > floor && per_bin > 2 {
        let (found, _) = pack_below(
            &items,
            bins,
            per_bin,
            v.min(limit.saturating_add(1)) - 1,
            floor,
            WARM_NODES,
            ctx,
        );
        if let Some((v2, p2)) = found {
            (v, packed) = (v2, p2);
        }
    }
    (v <= limit).then(|| Packing {
        counts: counts.to_vec(),
        slots: items.slots(&packed),
        value: frac(v, items.scale),
    })
}

/// Depth-first enumeration of count vectors that could beat the incumbent.
pub(super) struct Enumerator<'a, 'b> {
    pub(super) weights: &'a [u64],
    pub(super) order: Vec<usize>,
    pub(super) bins: usize,
    pub(super) per_bin: usize,
    pub(super) counts: Vec<usize>,
    /// Preferred count of each item (tried first).
    pub(super) pref: Vec<usize>,
    pub(super) inc: Option<Fraction>,
    pub(super) best: &'b mut Option<Packing>,
    pub(super) lb: Fraction,
    pub(super) gap: f64,
    /// Node budget of each count vector's bin completion.
    pub(super) leaf_budget: u64,
    /// Stop at a packing at or below this value (good enough for the caller; not a proof).
    pub(super) enough: Option<Fraction>,
    pub(super) complete: bool,
    /// Some vector's bin completion ran out of its node budget (not of time).
    pub(super) budget_hit: bool,
    pub(super) done: bool,
}

impl Enumerator<'_, '_> {
    /// Fewest copies item `i` needs for a share strictly below the incumbent.
    pub(super) fn min_count(&self, i: usize) -> usize {
        match self.inc {
            None => 1,
            Some(f) => {
                let w = self.weights[i] as u128;
                if f.num == 0 {
                    return usize::MAX;
                }
                // c > w * den / num
                (((w * f.den) / f.num) + 1).min(usize::MAX as u128) as usize
            }
        }
    }

    pub(super) fn descend(&mut self, ctx: &mut Ctx, pos: usize, left: usize) {
        if self.done || ctx.tick() {
            return;
        }
        let n = self.order.len();
        // Copies the remaining items need at least.
        let mut need = 0usize;
        for &i in &self.order[pos..] {
            need = need.saturating_add(self.min_count(i));
        }
        if need > left {
            return;
        }
        let i = self.order[pos];
        let lo = self.min_count(i);
        let mut hi = left - (need - lo);
        if pos > 0 {
            let prev = self.order[pos - 1];
            if self.weights[prev] == self.weights[i] {
                hi = hi.min(self.counts[prev]);
            }
        }
        if pos + 1 == n {
            if left < lo || left > hi {
                return;
            }
            self.counts[i] = left;
            self.leaf(ctx);
            return;
        }
        // The preferred count first (so the first vectors are the promising ones), then the
        // rest in increasing order.
        let pref = self.pref[i].clamp(lo, hi.max(lo));
        let candidates = std::iter::once(pref).chain((lo..=hi).filter(|&c| c != pref));
        for c in candidates {
            // The incumbent may have improved: re-check this item's minimum.
            if c < self.min_count(i) || c > hi {
                continue;
            }
            self.counts[i] = c;
            self.descend(ctx, pos + 1, left - c);
            if self.done || ctx.timed_out {
                return;
            }
        }
    }

    pub(super) fn leaf(&mut self, ctx: &mut Ctx) {
        let Some(items) = Items::build(self.weights, &self.counts) else {
            self.complete = false;
            return;
        };
        let local = order_bound(
            &items.sizes,
            &items.avail,
            items.total,
            self.bins,
            self.per_bin,
        );
        let limit = match self.inc {
            None => u64::MAX,
            Some(f) => match units_below(f, items.scale) {
                Some(u) => u,
                None => return,
            },
        };
        if local > limit {
            return;
        }
        let floor = units_at_least(self.lb, items.scale).max(local);
        let (found, complete) = pack_below(
            &items,
            self.bins,
            self.per_bin,
            limit,
            floor,
            self.leaf_budget,
            ctx,
        );
        if !complete {
            self.complete = false;
            self.budget_hit |= !ctx.timed_out;
        }
        if let Some((v, packed)) = found {
            let value = frac(v, items.scale);
            self.inc = Some(value);
            *self.best = Some(Packing {
                counts: self.counts.clone(),
                slots: items.slots(&packed),
                value,
            });
            if close_enough(value, self.lb, self.gap) || self.enough.is_some_and(|e| value <= e) {
                self.done = true;
            }
        }
    }
}
