//! Bin completion: branch and bound over the bins of one count vector.

use super::*;

/// Bin-completion branch and bound for one count vector.
pub(super) struct Packer<'a> {
    pub(super) sizes: &'a [u64],
    pub(super) avail: Vec<u32>,
    pub(super) per_bin: usize,
    /// Current threshold: only packings with every bin `<= limit` are wanted.
    pub(super) limit: u64,
    /// Stop when a packing at or below this is found.
    pub(super) floor: u64,
    pub(super) current: Vec<Vec<usize>>,
    pub(super) best: Option<(u64, Vec<Vec<usize>>)>,
    pub(super) node_budget: u64,
    pub(super) nodes: u64,
    pub(super) aborted: bool,
}

impl Packer<'_> {
    pub(super) fn stop(&mut self, ctx: &mut Ctx) -> bool {
        self.nodes += 1;
        if self.nodes > self.node_budget {
            self.aborted = true;
        }
        if ctx.tick() {
            self.aborted = true;
        }
        self.aborted || self.best.as_ref().is_some_and(|b| b.0 <= self.floor)
    }

    pub(super) fn search(&mut self, ctx: &mut Ctx, bins_left: usize, rem: u64) {
        if self.stop(ctx) {
            return;
        }
        if bins_left == 0 {
            let max = self
                .current
                .iter()
                .map(|b| bin_units(self.sizes, b))
                .max()
                .unwrap_or(0);
            self.best = Some((max, self.current.clone()));
            self.limit = max.saturating_sub(1);
            return;
        }
        if rem > self.limit.saturating_mul(bins_left as u64) {
            return;
        }
        if bins_left == 1 {
            // Everything left forms the last bin.
            let mut bin = Vec::with_capacity(self.per_bin);
            for (j, &a) in self.avail.iter().enumerate() {
                bin.extend(std::iter::repeat_n(j, a as usize));
            }
            self.current.push(bin);
            self.search(ctx, 0, 0);
            self.current.pop();
            return;
        }
        if order_bound(self.sizes, &self.avail, rem, bins_left, self.per_bin) > self.limit {
            return;
        }
        let first = self
            .avail
            .iter()
            .position(|&a| a > 0)
            .expect("copies remain");
        let smallest = self.sizes[self
            .avail
            .iter()
            .rposition(|&a| a > 0)
            .expect("copies remain")];
        self.avail[first] -= 1;
        let mut chosen = Vec::with_capacity(self.per_bin);
        chosen.push(first);
        let x = self.sizes[first];
        self.complete(
            ctx,
            first,
            self.per_bin - 1,
            x,
            smallest,
            &mut chosen,
            bins_left,
            rem,
        );
        self.avail[first] += 1;
    }

    /// Picks `k` more copies from distinct sizes `>= j` (by index) for the bin in `chosen`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn complete(
        &mut self,
        ctx: &mut Ctx,
        j: usize,
        k: usize,
        cur: u64,
        smallest: u64,
        chosen: &mut Vec<usize>,
        bins_left: usize,
        rem: u64,
    ) {
        if self.stop(ctx) {
            return;
        }
        let hi = self.limit;
        let lo = rem.saturating_sub(self.limit.saturating_mul(bins_left as u64 - 1));
        if k == 0 {
            if cur > hi || cur < lo || self.dominated(chosen, cur) {
                return;
            }
            self.current.push(chosen.clone());
            self.search(ctx, bins_left - 1, rem - cur);
            self.current.pop();
            return;
        }
        let kk = k as u64;
        for i in j..self.sizes.len() {
            if self.avail[i] == 0 {
                continue;
            }
            let s = self.sizes[i];
            if cur + s + (kk - 1) * smallest > self.limit {
                continue;
            }
            if cur + kk * s < lo {
                break;
            }
            self.avail[i] -= 1;
            chosen.push(i);
            self.complete(ctx, i, k - 1, cur + s, smallest, chosen, bins_left, rem);
            chosen.pop();
            self.avail[i] += 1;
            if self.aborted {
                return;
            }
        }
    }

    /// True when a chosen copy could be swapped for the next larger unused one and the bin
    /// would still fit: that completion is dominated by the swapped one.
    pub(super) fn dominated(&self, chosen: &[usize], sum: u64) -> bool {
        let mut prev = usize::MAX;
        for &z in &chosen[1..] {
            if z == prev {
                continue;
            }
            prev = z;
            if let Some(i) = (0..z).rev().find(|&i| self.avail[i] > 0) {
                if sum - self.sizes[z] + self.sizes[i] <= self.limit {
                    return true;
                }
            }
        }
        false
    }
}

/// Best packing of one count vector with every bin `<= limit` units, stopping at `floor`.
/// Returns the best packing found (if any) and whether the search was complete.
pub(super) fn pack_below(
    items: &Items,
    bins: usize,
    per_bin: usize,
    limit: u64,
    floor: u64,
    node_budget: u64,
    ctx: &mut Ctx,
) -> (Option<Packed>, bool) {
    if per_bin == 2 {
        let (v, b) = pack_pairs(items);
        return ((v <= limit).then_some((v, b)), true);
    }
    let mut p = Packer {
        sizes: &items.sizes,
        avail: items.avail.clone(),
        per_bin,
        limit,
        floor,
        current: Vec::with_capacity(bins),
        best: None,
        node_budget,
        nodes: 0,
        aborted: false,
    };
    p.search(ctx, bins, items.total);
    let reached_floor = p.best.as_ref().is_some_and(|b| b.0 <= floor);
    let complete = !p.aborted || reached_floor;
    (p.best, complete)
}
