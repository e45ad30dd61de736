//! Phase 2: the moves of the local search (swaps, pair swaps, count moves) and their
//! application.

use super::*;

impl CopyPacker {
    /// An exchange of one copy (`pairs == false`) or two copies of `top` with as many
    /// copies of another bin.
    ///
    /// With `fix`, the first found (bins with the most room first, then the smallest transfer)
    /// that brings `top` down to the goal without lifting the other bin above it; otherwise the
    /// best one that lowers `top` without lifting the other bin to `top`'s load (the lowest
    /// larger load of the two).
    pub(super) fn exchange_move(&mut self, top: usize, pairs: bool, fix: bool) -> Option<Move> {
        let k = self.per_bin;
        if pairs && !self.policy.pair_swaps {
            return None;
        }
        self.stats.searches += 1;
        let per = if pairs { k * (k - 1) / 2 } else { k };
        let peak = self.load[top];
        let goal = self.stop_at;
        // Moves must lower the peak by more than rounding noise.
        let mut best = peak - peak.abs() * ROUNDING;
        let mut found = None;
        self.sort_by_load();
        if pairs {
            self.refresh_pairs(top);
        }
        // A best swap moves at least `least` off `top` and must move less than `peak - lb`:
        // the bins from the first (by ascending load) without that room on have none (with
        // many equal copy weights, often no bin has it, and the search would visit all).
        // Worked out only for many bins and many copies per item (otherwise the binary
        // searches cost more than they save: measured in instructions, +8% at R=288 P=144
        // with 256 items, +3% at E=1024 R=1536 P=512).
        let mut end = self.bins;
        if !pairs && !fix && self.policy.least_transfer {
            let least = self.least_swap_transfer(top);
            end = self
                .by_load
                .partition_point(|&b| peak - self.load[b] > least);
        }
        let mut evaluations = 0;
        for i in 0..end {
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
            if fix {
                let mut j = 0;
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
            } else if let Some(m) =
                best_exchange(mine, theirs, peak, lb, pairs, &mut best, &mut evaluations)
            {
                found = Some(m);
            }
            // With `fix`, the first bin with a move (the one with the most room) gives it.
            if fix && found.is_some() {
                break;
            }
        }
        self.stats.evaluations += evaluations;
        found
    }

    /// One balancing sweep: the `i`-th heaviest bin above the goal is paired with the `i`-th
    /// lightest bin, and each pair gets the best swap or pair swap between its two bins (the
    /// one leaving the lowest larger load of the two; none if nothing lowers the heavier).
    /// The pairs are disjoint, so one sweep moves up to `m / 2` bins towards the mean at the
    /// cost of one best-move search. Returns the moves applied.
    pub(super) fn balance_sweep(&mut self) -> usize {
        self.sort_by_load();
        let mut order = std::mem::take(&mut self.sweep_order);
        order.clone_from(&self.by_load);
        let (m, k) = (self.bins, self.per_bin);
        let kinds: &[bool] = if self.policy.pair_swaps && self.policy.sweep_pairs {
            &[false, true]
        } else {
            &[false]
        };
        let mut applied = 0;
        let mut evaluations = 0;
        for i in 0..m / 2 {
            let (top, b) = (order[m - 1 - i], order[i]);
            let (peak, lb) = (self.load[top], self.load[b]);
            if peak <= self.stop_at {
                break;
            }
            self.stats.searches += 1;
            let mut best = peak - peak.abs() * ROUNDING;
            let mut found = None;
            for &pairs in kinds {
                let per = if pairs {
                    self.refresh_pairs(top);
                    self.refresh_pairs(b);
                    k * (k - 1) / 2
                } else {
                    k
                };
                let list = if pairs { &self.pairs } else { &self.singles };
                let mine = &list[top * per..(top + 1) * per];
                let theirs = &list[b * per..(b + 1) * per];
                if let Some(m) =
                    best_exchange(mine, theirs, peak, lb, pairs, &mut best, &mut evaluations)
                {
                    found = Some(m);
                }
            }
            if let Some(m) = found {
                self.apply(m);
                applied += 1;
            }
        }
        self.stats.evaluations += evaluations;
        self.sweep_order = order;
        applied
    }

    /// The best count move that lowers `top` without lifting any bin to `top`'s load.
    pub(super) fn best_count_move(&mut self, top: usize) -> Option<Move> {
        let peak = self.load[top];
        let mut best = peak - peak.abs() * ROUNDING;
        let mut found = None;
        self.count_moves(top, best, |worst, m| {
            if worst < best {
                best = worst;
                found = Some(m);
            }
            best
        });
        found
    }

    /// Calls `offer(worst, move)` for the count moves that lower `top`, with `worst` the
    /// largest load the move leaves on the bins it touches: a copy on `top` changes owner,
    /// or an item with a copy on `top` gains a copy elsewhere.
    ///
    /// Moves whose `worst` is at least `limit` may be left out (`f64::INFINITY`: none is);
    /// `offer` returns the limit from then on. They are left out by bounds that hold in
    /// floating point (see [`CopyPacker::rising_bins`]), so the moves offered below the limit
    /// are exactly those a search without the bounds offers there, in the same order.
    pub(super) fn count_moves(
        &mut self,
        top: usize,
        mut limit: f64,
        mut offer: impl FnMut(f64, Move) -> f64,
    ) {
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
            // `from`'s other bins rise by `from_gain` unless they hold a copy of `to`.
            let rising = self.rising_bins(from, top);
            for to in 0..self.weights.len() {
                if to == from || (self.on_top[to] == 0 && self.grown[to] >= base) {
                    continue;
                }
                if rising.bins_at_limit(from_gain, limit) > 0
                    && [rising.first, rising.second]
                        .iter()
                        .filter(|r| r.load + from_gain >= limit)
                        .any(|r| !self.holds(r.bin, to))
                {
                    continue;
                }
                evaluations += 1;
                if let Some(worst) = self.count_effect(pos, to, top) {
                    limit = offer(worst, Move::Count { pos, to });
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
            for p in 0..self.positions[to].len() {
                let b = self.positions[to][p] / k;
                self.marked[b] = true;
            }
            for f in 0..self.multi.len() {
                let from = self.multi[f];
                if from == to {
                    continue;
                }
                let (cf, wf) = (self.counts[from], self.weights[from]);
                let share = wf / cf as f64;
                let from_gain = wf / (cf - 1) as f64 - share;
                let change = self.grown[to] - share;
                // `from`'s bins other than `top` and those holding `to` (marked) rise by
                // `from_gain` unless the moved copy is theirs: with two at the limit, any
                // choice of copy leaves one there.
                let rising = self.rising_bins_unmarked(from, top);
                let at_limit = rising.bins_at_limit(from_gain, limit);
                if at_limit >= 2 {
                    continue;
                }
                for p in 0..self.positions[from].len() {
                    let pos = self.positions[from][p];
                    let b = pos / k;
                    if b == top
                        || (at_limit == 1 && b != rising.first.bin)
                        || (!self.marked[b] && self.load[b] + change >= limit)
                    {
                        continue;
                    }
                    evaluations += 1;
                    if let Some(worst) = self.count_effect(pos, to, top) {
                        limit = offer(worst, Move::Count { pos, to });
                    }
                }
            }
            for p in 0..self.positions[to].len() {
                let b = self.positions[to][p] / k;
                self.marked[b] = false;
            }
        }
        for pos in slots {
            self.on_top[self.item[pos]] = 0;
        }
        self.stats.evaluations += evaluations;
    }

    /// The two heaviest bins other than `top` holding a copy of `item`.
    pub(super) fn rising_bins(&self, item: usize, top: usize) -> Rising {
        self.heaviest_two(item, |b| b != top)
    }

    /// The two heaviest bins other than `top` and the marked bins holding a copy of `item`.
    fn rising_bins_unmarked(&self, item: usize, top: usize) -> Rising {
        self.heaviest_two(item, |b| b != top && !self.marked[b])
    }

    /// The two heaviest distinct bins passing `keep` that hold a copy of `item` (bin
    /// `usize::MAX` and load `-inf` where there are fewer).
    fn heaviest_two(&self, item: usize, keep: impl Fn(usize) -> bool) -> Rising {
        let k = self.per_bin;
        let none = BinLoad {
            bin: usize::MAX,
            load: f64::NEG_INFINITY,
        };
        let mut r = Rising {
            first: none,
            second: none,
        };
        for &p in &self.positions[item] {
            let b = p / k;
            if !keep(b) || b == r.first.bin || b == r.second.bin {
                continue;
            }
            let here = BinLoad {
                bin: b,
                load: self.load[b],
            };
            if here.load > r.first.load {
                r.second = r.first;
                r.first = here;
            } else if here.load > r.second.load {
                r.second = here;
            }
        }
        r
    }

    /// Whether bin `b` holds a copy of `item`.
    fn holds(&self, b: usize, item: usize) -> bool {
        let k = self.per_bin;
        self.positions[item].iter().any(|&p| p / k == b)
    }

    /// The largest load on the bins a count move touches, if it lowers `top`.
    pub(super) fn count_effect(&mut self, pos: usize, to: usize, top: usize) -> Option<f64> {
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

    pub(super) fn apply(&mut self, m: Move) {
        let k = self.per_bin;
        match m {
            Move::Swap { a, b } => {
                self.stats.swaps += 1;
                self.exchange(a, b);
                self.refresh_position(a);
                self.refresh_position(b);
            }
            Move::PairSwap { a, b } => {
                self.stats.pair_swaps += 1;
                self.exchange(a.0, b.0);
                self.exchange(a.1, b.1);
                for p in [a.0, a.1, b.0, b.1] {
                    self.refresh_position(p);
                }
            }
            Move::Count { pos, to } => {
                self.stats.count_moves += 1;
                let from = self.item[pos];
                let share = |p: &Self, i: usize| p.weights[i] / p.counts[i] as f64;
                let before = [share(self, from), share(self, to)];
                self.item[pos] = to;
                self.counts[from] -= 1;
                self.counts[to] += 1;
                if !self.copy_weights_stale {
                    let after = [share(self, from), share(self, to)];
                    update_sorted(&mut self.copy_weights, before, after);
                }
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
    pub(super) fn exchange(&mut self, a: usize, b: usize) {
        let (ia, ib) = (self.item[a], self.item[b]);
        self.at.swap(a, b);
        self.item.swap(a, b);
        replace(&mut self.positions[ia], a, b);
        replace(&mut self.positions[ib], b, a);
    }
}

/// The best exchange of an entry of `mine` (a bin of load `peak`) with one of `theirs` (a
/// bin of load `lb`, lower), both sorted by weight: the one leaving the lowest larger load of
/// the two, if below `best` (which it then becomes). A merge-like sweep: the larger load after
/// a transfer `d` is `(peak + lb) / 2 + |d - slack / 2|`, so the best partner of `x` is the
/// one whose weight is nearest to `x - slack / 2` (the lighter one on ties).
fn best_exchange(
    mine: &[PairEntry],
    theirs: &[PairEntry],
    peak: f64,
    lb: f64,
    pairs: bool,
    best: &mut f64,
    evaluations: &mut usize,
) -> Option<Move> {
    let slack = peak - lb;
    let half = 0.5 * slack;
    let mut found = None;
    let mut j = 0;
    for x in mine {
        let ideal = x.sum - half;
        while j < theirs.len() && theirs[j].sum < ideal {
            j += 1;
        }
        let y = match (j.checked_sub(1).map(|i| &theirs[i]), theirs.get(j)) {
            (Some(below), Some(above)) if above.sum - ideal < ideal - below.sum => above,
            (Some(below), _) => below,
            (None, Some(above)) => above,
            (None, None) => continue,
        };
        *evaluations += 1;
        let d = x.sum - y.sum;
        if d > 0.0 && d < slack {
            let score = (peak - d).max(lb + d);
            if score < *best {
                *best = score;
                found = Some(exchange(pairs, x, y));
            }
        }
    }
    found
}

/// A bin and its load.
#[derive(Debug, Clone, Copy)]
pub(super) struct BinLoad {
    pub(super) bin: usize,
    pub(super) load: f64,
}

/// The two heaviest bins holding copies of an item that a count move taking a copy from the
/// item lifts by its gain `g = w / (c - 1) - w / c` (those not holding the copy moved).
///
/// In floating point a bin's change is a sum of such gains (`>= g`, adding non-negative
/// terms never lowers a rounded sum), and its new load `load + change >= load + g` (rounding
/// is monotone): a bin with `load + g >= limit` is left at the limit or above.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rising {
    pub(super) first: BinLoad,
    pub(super) second: BinLoad,
}

impl Rising {
    /// How many of the two bins a gain of `gain` lifts to `limit` or above.
    pub(super) fn bins_at_limit(&self, gain: f64, limit: f64) -> usize {
        usize::from(self.first.load + gain >= limit) + usize::from(self.second.load + gain >= limit)
    }
}

/// The exchange of entry `x` of the heaviest bin with entry `y` of another.
pub(super) fn exchange(pairs: bool, x: &PairEntry, y: &PairEntry) -> Move {
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

/// Replaces the values `old` by the values `new` in the ascending list `sorted`, keeping it
/// sorted (each old value is present: it was put there).
fn update_sorted(sorted: &mut Vec<f64>, old: [f64; 2], new: [f64; 2]) {
    for v in old {
        let i = sorted.partition_point(|&w| w < v);
        sorted.remove(i);
    }
    for v in new {
        let i = sorted.partition_point(|&w| w < v);
        sorted.insert(i, v);
    }
}

pub(super) fn replace(list: &mut [usize], old: usize, new: usize) {
    if let Some(p) = list.iter_mut().find(|p| **p == old) {
        *p = new;
    }
}

pub(super) fn replace_remove(list: &mut Vec<usize>, old: usize) {
    if let Some(i) = list.iter().position(|&p| p == old) {
        list.remove(i);
    }
}
