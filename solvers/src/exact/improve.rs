//! Incumbent improvement: heuristic packings, subset repacking, the two-bin pair walk and the
//! swap descent, and the start packing improved by them.

use super::*;

/// Pairs largest with smallest: optimal for exactly two copies per bin.
pub(super) fn pack_pairs(items: &Items) -> (u64, Vec<Vec<usize>>) {
    let mut flat = Vec::new();
    for (j, &a) in items.avail.iter().enumerate() {
        flat.extend(std::iter::repeat_n(j, a as usize));
    }
    let n = flat.len();
    let mut bins = Vec::with_capacity(n / 2);
    let mut max = 0;
    for i in 0..n / 2 {
        let (x, y) = (flat[i], flat[n - 1 - i]);
        max = max.max(items.sizes[x] + items.sizes[y]);
        bins.push(vec![x, y]);
    }
    (max, bins)
}

/// Largest-first into the lightest open bin, then pairwise swaps out of the heaviest bin.
pub(super) fn pack_heuristic(
    items: &Items,
    bins: usize,
    per_bin: usize,
    floor: u64,
    ctx: &mut Ctx,
) -> (u64, Vec<Vec<usize>>) {
    let mut load = vec![0u64; bins];
    let mut content: Vec<Vec<usize>> = vec![Vec::with_capacity(per_bin); bins];
    for (j, &a) in items.avail.iter().enumerate() {
        for _ in 0..a {
            let b = (0..bins)
                .filter(|&b| content[b].len() < per_bin)
                .min_by_key(|&b| (load[b], b))
                .expect("enough slots");
            load[b] += items.sizes[j];
            content[b].push(j);
        }
    }
    balance(items, &mut load, &mut content, ctx);
    repack_subsets(items, per_bin, floor, &mut load, &mut content, ctx);
    pair_walk(items, per_bin, floor, &mut load, &mut content, ctx);
    while !ctx.expired() {
        let hot = (0..bins)
            .max_by_key(|&b| (load[b], std::cmp::Reverse(b)))
            .expect("bins");
        let top = load[hot];
        let mut best: Option<(u64, usize, usize, usize)> = None; // new pair max, other, i, k
        for other in 0..bins {
            if other == hot {
                continue;
            }
            for (i, &x) in content[hot].iter().enumerate() {
                for (k, &y) in content[other].iter().enumerate() {
                    let (sx, sy) = (items.sizes[x], items.sizes[y]);
                    if sx <= sy {
                        continue;
                    }
                    let d = sx - sy;
                    if load[other] + d >= top {
                        continue;
                    }
                    let m = (top - d).max(load[other] + d);
                    if best.is_none_or(|b| m < b.0) {
                        best = Some((m, other, i, k));
                    }
                }
            }
        }
        let Some((_, other, i, k)) = best else { break };
        let (x, y) = (content[hot][i], content[other][k]);
        let d = items.sizes[x] - items.sizes[y];
        load[hot] -= d;
        load[other] += d;
        content[hot][i] = y;
        content[other][k] = x;
    }
    (load.iter().copied().max().unwrap_or(0), content)
}

/// Nodes of bin completion spent on one subset of bins in [`repack_subsets`], and subsets
/// tried around the heaviest bin before it gives up: a wide search where bins are many (there
/// it closes the last lattice step of DeepSeek-V3 layers), a short one where they are few (a
/// subset is then a large part of the instance, and the complete search comes sooner).
pub(super) fn subset_budget(bins: usize) -> (u64, usize) {
    if bins >= 16 {
        (4_000, 48)
    } else {
        (2_000, 24)
    }
}

/// Large-neighbourhood search: the heaviest bin and `k - 1` others (`k = 2..=4`: the lightest
/// bins first, then pseudo-random partners with the lightest) are re-packed together by a
/// node-limited bin completion that minimises their largest sum; a re-packing is kept when it
/// lowers that sum. Every kept move lowers the sorted vector of bin sums lexicographically, so
/// the loop ends; it stops at `floor` (nothing can go lower), when no subset helps, or at the
/// deadline. Exact sub-partitions found this way are what closes the last lattice step on
/// large instances, where swaps of one or two copies rarely hit an exact difference.
/// Deterministic (a fixed-seed generator).
pub(super) fn repack_subsets(
    items: &Items,
    per_bin: usize,
    floor: u64,
    load: &mut [u64],
    content: &mut [Vec<usize>],
    ctx: &mut Ctx,
) {
    let bins = load.len();
    if bins < 2 || per_bin < 2 {
        return;
    }
    let mut rng: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut avail = vec![0u32; items.sizes.len()];
    loop {
        if ctx.expired() {
            return;
        }
        let hot = (0..bins)
            .max_by_key(|&b| (load[b], std::cmp::Reverse(b)))
            .expect("bins");
        if load[hot] <= floor {
            return;
        }
        let mut cool: Vec<usize> = (0..bins).filter(|&b| b != hot).collect();
        cool.sort_by_key(|&b| (load[b], b));
        let mut improved = false;
        let (subset_nodes, subset_tries) = subset_budget(bins);
        for t in 0..subset_tries {
            if ctx.expired() {
                return;
            }
            let k = (2 + t % 3).min(bins);
            let mut subset = vec![hot];
            if t < 3 {
                subset.extend_from_slice(&cool[..k - 1]);
            } else {
                subset.push(cool[0]);
                while subset.len() < k {
                    let b = cool[(next() % cool.len() as u64) as usize];
                    if !subset.contains(&b) {
                        subset.push(b);
                    }
                }
            }
            let old_max = subset.iter().map(|&b| load[b]).max().expect("bins");
            let sub_total: u64 = subset.iter().map(|&b| load[b]).sum();
            let sub_floor = sub_total.div_ceil(subset.len() as u64).max(floor);
            if sub_floor >= old_max {
                continue;
            }
            avail.iter_mut().for_each(|a| *a = 0);
            for &b in &subset {
                for &j in &content[b] {
                    avail[j] += 1;
                }
            }
            let mut p = Packer {
                sizes: &items.sizes,
                avail: avail.clone(),
                per_bin,
                limit: old_max - 1,
                floor: sub_floor,
                current: Vec::with_capacity(subset.len()),
                best: None,
                node_budget: subset_nodes,
                nodes: 0,
                aborted: false,
            };
            p.search(ctx, subset.len(), sub_total);
            if let Some((_, packed)) = p.best {
                for (&b, bin) in subset.iter().zip(packed) {
                    load[b] = bin_units(&items.sizes, &bin);
                    content[b] = bin;
                }
                improved = true;
                break;
            }
        }
        if !improved {
            return;
        }
    }
}

/// Steps of [`pair_walk`] (each re-partitions two bins exactly).
pub(super) const WALK_STEPS: usize = 64;

/// Fewest bins for which [`pair_walk`] runs: with fewer, the subset re-packing already covers
/// a large share of the bins, and the walk's enumerations (up to `C(19, 9)` splits per pair)
/// would only take time from the other count vectors.
pub(super) const WALK_MIN_BINS: usize = 16;

/// Light partners tried per step of [`pair_walk`].
pub(super) const WALK_PARTNERS: usize = 4;

/// Largest `per_bin` for which [`pair_walk`] enumerates the splits of two bins.
pub(super) const WALK_MAX_PER_BIN: usize = 10;

/// Exact two-bin re-partitioning walk towards `target` (every bin at most `target` units).
/// Each step takes the heaviest bin `h` and enumerates every way to split the copies of `h`
/// and a partner `x` into two bins of `per_bin`: with a partner light enough
/// (`L_h + L_x <= 2 * target`) it looks for a split with both bins at most `target` (the
/// lightest partners first); otherwise it moves `h` to the largest sum at most `target`,
/// handing the excess to a pseudo-random partner, provided the pair's larger sum does not grow.
/// On large instances with no slack (`target` equal to the average) this random walk over
/// exact sub-partitions finds perfect partitions that swaps of one or two copies miss: the
/// sums of the `C(2s - 1, s - 1)` splits are dense around the target.
pub(super) fn pair_walk(
    items: &Items,
    per_bin: usize,
    target: u64,
    load: &mut [u64],
    content: &mut [Vec<usize>],
    ctx: &mut Ctx,
) {
    let bins = load.len();
    if bins < WALK_MIN_BINS || !(2..=WALK_MAX_PER_BIN).contains(&per_bin) {
        return;
    }
    let mut rng: u64 = 0xD1B5_4A32_D192_ED03;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut pool: Vec<usize> = Vec::with_capacity(2 * per_bin);
    for _ in 0..WALK_STEPS {
        if ctx.expired() {
            return;
        }
        let hot = (0..bins)
            .max_by_key(|&b| (load[b], std::cmp::Reverse(b)))
            .expect("bins");
        if load[hot] <= target {
            return;
        }
        let mut light: Vec<usize> = (0..bins)
            .filter(|&b| b != hot && load[hot] + load[b] <= 2 * target)
            .collect();
        light.sort_by_key(|&b| (load[b], b));
        let mut done = false;
        for &x in light.iter().take(WALK_PARTNERS) {
            let c = load[hot] + load[x];
            // A split with one side in [c - target, target]: both sides fit.
            if let Some(pick) = split_pair(items, content, hot, x, &mut pool, |s| {
                (s + target >= c && s <= target).then_some(0)
            }) {
                apply_split(items, load, content, hot, x, &pool, pick);
                done = true;
                break;
            }
            if ctx.expired() {
                return;
            }
        }
        if done {
            continue;
        }
        // No light partner works: move the excess to a pseudo-random partner.
        let x = loop {
            let b = (next() % bins as u64) as usize;
            if b != hot {
                break b;
            }
        };
        let c = load[hot] + load[x];
        // The largest side at most `target` (score: distance below it), kept only when the
        // other side stays at most the current heaviest sum.
        let limit = load[hot];
        if let Some(pick) = split_pair(items, content, hot, x, &mut pool, |s| {
            (s <= target && c - s <= limit).then(|| target - s)
        }) {
            apply_split(items, load, content, hot, x, &pool, pick);
        }
    }
}

/// Enumerates the splits of the copies of bins `a` and `b` (into `pool`) into two halves of
/// equal size: the first half always holds the pool's first copy, and a half's sum `s` is
/// scored by `score(s)` (`None`: not wanted); returns the mask of the half with the lowest
/// score (the first found on ties; a score of `0` stops the search).
pub(super) fn split_pair(
    items: &Items,
    content: &[Vec<usize>],
    a: usize,
    b: usize,
    pool: &mut Vec<usize>,
    score: impl Fn(u64) -> Option<u64>,
) -> Option<u32> {
    pool.clear();
    pool.extend_from_slice(&content[a]);
    pool.extend_from_slice(&content[b]);
    let sizes: Vec<u64> = pool.iter().map(|&j| items.sizes[j]).collect();
    let half = content[a].len();
    if half != content[b].len() || sizes.len() > 31 {
        return None;
    }
    struct Walk<'s, F> {
        sizes: &'s [u64],
        half: usize,
        score: F,
        best: Option<(u64, u32)>,
    }
    impl<F: Fn(u64) -> Option<u64>> Walk<'_, F> {
        fn rec(&mut self, i: usize, taken: usize, sum: u64, mask: u32) {
            if self.best.is_some_and(|b| b.0 == 0) {
                return;
            }
            if taken == self.half {
                if let Some(s) = (self.score)(sum) {
                    if self.best.is_none_or(|b| s < b.0) {
                        self.best = Some((s, mask));
                    }
                }
                return;
            }
            if self.sizes.len() - i < self.half - taken {
                return;
            }
            self.rec(i + 1, taken + 1, sum + self.sizes[i], mask | 1 << i);
            self.rec(i + 1, taken, sum, mask);
        }
    }
    let mut w = Walk {
        sizes: &sizes,
        half,
        score,
        best: None,
    };
    w.rec(1, 1, sizes[0], 1);
    w.best.map(|b| b.1)
}

/// Puts the pool copies in `mask` into bin `a` and the others into bin `b`.
pub(super) fn apply_split(
    items: &Items,
    load: &mut [u64],
    content: &mut [Vec<usize>],
    a: usize,
    b: usize,
    pool: &[usize],
    mask: u32,
) {
    content[a].clear();
    content[b].clear();
    for (i, &j) in pool.iter().enumerate() {
        if mask >> i & 1 == 1 {
            content[a].push(j);
        } else {
            content[b].push(j);
        }
    }
    load[a] = bin_units(&items.sizes, &content[a]);
    load[b] = bin_units(&items.sizes, &content[b]);
}

/// A balancing move: cost change, the two bins, positions in each, and whether two copies move.
pub(super) type Swap = (i128, usize, usize, [usize; 2], [usize; 2], bool);

/// A packing in units: its largest bin sum and the distinct-size indices of every bin.
pub(super) type Packed = (u64, Vec<Vec<usize>>);

/// Swap descent on the sum of squared deviations from the average (1-for-1 swaps between any
/// two bins, 2-for-2 swaps out of the most deviating bin when those are exhausted): drives
/// packings towards bins of exactly equal sums, which the max-bin swaps alone rarely reach.
pub(super) fn balance(items: &Items, load: &mut [u64], content: &mut [Vec<usize>], ctx: &mut Ctx) {
    let m = load.len() as i128;
    let total: i128 = load.iter().map(|&l| l as i128).sum();
    if total.saturating_mul(m) > 1i128 << 60 {
        // Squared deviations could overflow i128; the max-bin swaps still run.
        return;
    }
    let dev = |l: u64| l as i128 * m - total;
    let size = |j: usize| items.sizes[j] as i128;
    // Each applied move lowers the (integer, non-negative) cost, so this terminates; the cap
    // bounds the work on huge instances.
    for _ in 0..10_000 {
        if ctx.expired() {
            return;
        }
        let mut best: Option<Swap> = None;
        for a in 0..load.len() {
            for b in a + 1..load.len() {
                let (da, db) = (dev(load[a]), dev(load[b]));
                if da == db {
                    continue;
                }
                for (i, &x) in content[a].iter().enumerate() {
                    for (k, &y) in content[b].iter().enumerate() {
                        let d = (size(x) - size(y)) * m;
                        if d == 0 {
                            continue;
                        }
                        let delta = (da - d).pow(2) + (db + d).pow(2) - da * da - db * db;
                        if delta < 0 && best.is_none_or(|bb| delta < bb.0) {
                            best = Some((delta, a, b, [i, 0], [k, 0], false));
                        }
                    }
                }
            }
        }
        if best.is_none() {
            // 2-for-2 swaps, out of the bins furthest from the average first.
            let mut by_dev: Vec<usize> = (0..load.len()).collect();
            by_dev.sort_by_key(|&b| (std::cmp::Reverse(dev(load[b]).abs()), b));
            for a in by_dev {
                if best.is_some() || ctx.expired() {
                    break;
                }
                let da = dev(load[a]);
                let s = content[a].len();
                for b in 0..load.len() {
                    if b == a {
                        continue;
                    }
                    let db = dev(load[b]);
                    let t = content[b].len();
                    for i1 in 0..s {
                        for i2 in i1 + 1..s {
                            let out = size(content[a][i1]) + size(content[a][i2]);
                            for k1 in 0..t {
                                for k2 in k1 + 1..t {
                                    let inn = size(content[b][k1]) + size(content[b][k2]);
                                    let d = (out - inn) * m;
                                    if d == 0 {
                                        continue;
                                    }
                                    let delta =
                                        (da - d).pow(2) + (db + d).pow(2) - da * da - db * db;
                                    if delta < 0 && best.is_none_or(|bb| delta < bb.0) {
                                        best = Some((delta, a, b, [i1, i2], [k1, k2], true));
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        let Some((_, a, b, ia, kb, two)) = best else {
            return;
        };
        let moves = if two { 2 } else { 1 };
        for t in 0..moves {
            let (x, y) = (content[a][ia[t]], content[b][kb[t]]);
            load[a] = load[a] - items.sizes[x] + items.sizes[y];
            load[b] = load[b] - items.sizes[y] + items.sizes[x];
            content[a][ia[t]] = y;
            content[b][kb[t]] = x;
        }
    }
}

/// A given packing (the item in every slot), improved by [`repack_subsets`]; `None` when it
/// is not a valid packing of `bins` bins of `per_bin` slots with every item at least once.
pub(super) fn start_packing(
    weights: &[u64],
    bins: usize,
    per_bin: usize,
    slots: &[usize],
    ctx: &mut Ctx,
) -> Option<Packing> {
    if slots.len() != bins * per_bin || slots.iter().any(|&i| i >= weights.len()) {
        return None;
    }
    let mut counts = vec![0usize; weights.len()];
    for &i in slots {
        counts[i] += 1;
    }
    if counts.contains(&0) {
        return None;
    }
    let items = Items::build(weights, &counts)?;
    let index = |i: usize| -> usize {
        let unit = (weights[i] as u128 * items.scale as u128 / counts[i] as u128) as u64;
        items
            .sizes
            .binary_search_by(|s| unit.cmp(s))
            .expect("every copy size is listed")
    };
    let mut content: Vec<Vec<usize>> = slots
        .chunks(per_bin)
        .map(|bin| bin.iter().map(|&i| index(i)).collect())
        .collect();
    let mut load: Vec<u64> = content
        .iter()
        .map(|bin| bin_units(&items.sizes, bin))
        .collect();
    let floor = order_bound(&items.sizes, &items.avail, items.total, bins, per_bin);
    repack_subsets(&items, per_bin, floor, &mut load, &mut content, ctx);
    pair_walk(&items, per_bin, floor, &mut load, &mut content, ctx);
    let v = load.iter().copied().max().unwrap_or(0);
    Some(Packing {
        counts,
        slots: items.slots(&content),
        value: frac(v, items.scale),
    })
}
