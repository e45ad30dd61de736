//! The region-structured search of [`super::solve_grouped`].

use super::*;
use crate::split::partition::all_partitions;

/// A region's result below some cutoff, memoised by group set.
#[derive(Clone)]
struct RegionResult {
    best: Option<Packing>,
    /// Valid lower bound on `min(region optimum, cutoff)`.
    lower_bound: Fraction,
    /// The search was complete: `best` is optimal, or nothing beats the cutoff.
    complete: bool,
    /// What an incomplete search was asked: cutoff, good-enough value and node budget (its
    /// pass is deterministic, so the same question gets the same answer); `None` when the
    /// clock stopped it.
    asked: Option<(Option<Fraction>, Option<Fraction>, u64)>,
}

struct Grouped<'a> {
    weights: &'a [u64],
    group_size: usize,
    bins_per_region: usize,
    per_bin: usize,
    gap: f64,
    memo: HashMap<u64, RegionResult>,
    bounds: HashMap<u64, Fraction>,
}

impl Grouped<'_> {
    fn region_weights(&self, mask: u64) -> Vec<u64> {
        let mut w = Vec::new();
        for g in 0..64 {
            if mask >> g & 1 == 1 {
                w.extend_from_slice(&self.weights[g * self.group_size..(g + 1) * self.group_size]);
            }
        }
        w
    }

    fn bound(&mut self, mask: u64) -> Fraction {
        if let Some(&b) = self.bounds.get(&mask) {
            return b;
        }
        let w = self.region_weights(mask);
        let b = flat_bound(&w, self.bins_per_region, self.per_bin);
        self.bounds.insert(mask, b);
        b
    }

    /// Solves a region below `cutoff` (memoised; cutoffs only decrease over a search, so a
    /// complete result stays valid).
    fn region(
        &mut self,
        mask: u64,
        cutoff: Option<Fraction>,
        enough: Option<Fraction>,
        budget: u64,
        ctx: &mut Ctx,
    ) -> RegionResult {
        if let Some(r) = self.memo.get(&mask) {
            if r.complete {
                return r.clone();
            }
            if let Some((c, e, b)) = r.asked {
                let value = r.best.as_ref().map(|p| p.value);
                // Not stopped at its good-enough value, or that value is good enough now.
                let same_answer = e.zip(value).is_none_or(|(e, v)| v > e)
                    || enough.zip(value).is_some_and(|(e, v)| v <= e);
                if c == cutoff && b == budget && same_answer {
                    return r.clone();
                }
            }
        }
        let w = self.region_weights(mask);
        let flat = solve_flat(
            &w,
            self.bins_per_region,
            self.per_bin,
            cutoff,
            None,
            self.gap,
            enough,
            true,
            budget,
            ctx,
        );
        let r = RegionResult {
            lower_bound: flat.outcome.lower_bound,
            best: flat.outcome.best,
            complete: flat.complete,
            asked: (!ctx.timed_out).then_some((cutoff, enough, budget)),
        };
        self.memo.insert(mask, r.clone());
        r
    }

    /// A quick incumbent for a region (no enumeration).
    fn quick(&self, mask: u64, ctx: &mut Ctx) -> Option<Packing> {
        let w = self.region_weights(mask);
        solve_flat(
            &w,
            self.bins_per_region,
            self.per_bin,
            None,
            None,
            0.0,
            None,
            false,
            0,
            ctx,
        )
        .outcome
        .best
    }
}

/// `max(sum / bins, T_rep)`: valid for every count vector.
fn flat_bound(weights: &[u64], bins: usize, per_bin: usize) -> Fraction {
    let total: u64 = weights.iter().sum();
    let counts = exact_counts(weights, bins * per_bin);
    Fraction::new(total as u128, bins as u128).max(max_share(weights, &counts))
}

/// Most splits whose regions the quick phase packs for a first incumbent.
const QUICK_SPLITS: usize = 16;

/// Search nodes after which the quick phase packs no further split (a few hundred
/// milliseconds on DeepSeek-V3's layers).
const QUICK_NODES: u64 = 8_000_000;

/// Maximum number of group-to-region splits enumerated.
const MAX_SPLITS: usize = 100_000;

/// True when `n` groups have at most `cap` canonical splits into sets of `k`:
/// `prod over the sets of C(n - i k - 1, k - 1)` (the set holding the lowest free group picks
/// its other `k - 1` among the rest), counted without listing them.
fn split_count_at_most(n: usize, k: usize, cap: usize) -> bool {
    let mut count: u128 = 1;
    for i in 0..n / k {
        let free = (n - i * k - 1) as u128;
        // C(free, k - 1), exactly (at most C(63, 31) < 2^63 for 64 groups).
        let mut c: u128 = 1;
        for j in 0..(k - 1) as u128 {
            c = c * (free - j) / (j + 1);
        }
        count = count.saturating_mul(c);
        if count > cap as u128 {
            return false;
        }
    }
    true
}

/// Assembles region packings (in region order) into one packing over all items.
fn assemble(
    g: &Grouped<'_>,
    masks: &[u64],
    packs: &[Packing],
    n: usize,
) -> (Vec<usize>, Vec<usize>) {
    let mut counts = vec![0; n];
    let mut slots = Vec::new();
    for (mask, pack) in masks.iter().zip(packs) {
        let members: Vec<usize> = (0..64)
            .filter(|&x| mask >> x & 1 == 1)
            .flat_map(|x| x * g.group_size..(x + 1) * g.group_size)
            .collect();
        for (k, &c) in pack.counts.iter().enumerate() {
            counts[members[k]] = c;
        }
        slots.extend(pack.slots.iter().map(|&k| members[k]));
    }
    (counts, slots)
}

/// The split and region packings of a given packing (the item in every slot), each region
/// improved by [`repack_subsets`]; `None` unless every region holds whole groups, the same
/// number of them, and every item at least once.
fn start_split(
    g: &Grouped<'_>,
    regions: usize,
    start: &[usize],
    ctx: &mut Ctx,
) -> Option<(Vec<u64>, Vec<Packing>)> {
    let region_slots = g.bins_per_region * g.per_bin;
    if start.len() != regions * region_slots || start.iter().any(|&i| i >= g.weights.len()) {
        return None;
    }
    let groups = g.weights.len() / g.group_size;
    let mut region_of = vec![usize::MAX; groups];
    for (slot, &i) in start.iter().enumerate() {
        let (b, x) = (slot / region_slots, i / g.group_size);
        if region_of[x] != usize::MAX && region_of[x] != b {
            return None;
        }
        region_of[x] = b;
    }
    let mut masks = vec![0u64; regions];
    for (x, &b) in region_of.iter().enumerate() {
        if b == usize::MAX {
            return None;
        }
        masks[b] |= 1u64 << x;
    }
    if masks
        .iter()
        .any(|m| m.count_ones() as usize != groups / regions)
    {
        return None;
    }
    let mut packs = Vec::with_capacity(regions);
    for (b, &mask) in masks.iter().enumerate() {
        // Local item index: position among the region's members (groups in increasing order).
        let mut local = vec![usize::MAX; g.weights.len()];
        let mut k = 0;
        for x in (0..groups).filter(|&x| mask >> x & 1 == 1) {
            for slot in &mut local[x * g.group_size..(x + 1) * g.group_size] {
                *slot = k;
                k += 1;
            }
        }
        let slots: Vec<usize> = start[b * region_slots..(b + 1) * region_slots]
            .iter()
            .map(|&i| local[i])
            .collect();
        let w = g.region_weights(mask);
        packs.push(start_packing(
            &w,
            g.bins_per_region,
            g.per_bin,
            &slots,
            ctx,
        )?);
    }
    Some((masks, packs))
}

#[allow(clippy::too_many_arguments)]
pub(super) fn solve(
    weights: &[u64],
    groups: usize,
    regions: usize,
    bins: usize,
    per_bin: usize,
    seed: Option<&[usize]>,
    gap: f64,
    ctx: &mut Ctx,
) -> Outcome {
    let mut g = Grouped {
        weights,
        group_size: weights.len() / groups,
        bins_per_region: bins / regions,
        per_bin,
        gap,
        memo: HashMap::new(),
        bounds: HashMap::new(),
    };
    let per_region = groups / regions;
    let listed = if split_count_at_most(groups, per_region, MAX_SPLITS) {
        all_partitions(groups, per_region, MAX_SPLITS)
    } else {
        None
    };
    let (all, exhaustive) = match listed {
        Some(s) => (s, true),
        // Too many splits to enumerate: only consecutive groups, and the flat bound.
        None => (
            vec![(0..regions)
                .map(|b| (b * per_region..(b + 1) * per_region).fold(0u64, |m, x| m | 1u64 << x))
                .collect()],
            false,
        ),
    };
    // Scoring every split costs a bound per group set: the clock is read as it goes, and a
    // scoring cut short keeps the splits scored so far, without the claim of having seen all.
    let mut scored: Vec<(Fraction, usize)> = Vec::with_capacity(all.len());
    let mut exhaustive = exhaustive;
    for (i, s) in all.iter().enumerate() {
        if i % 64 == 63 && ctx.expired() {
            exhaustive = false;
            break;
        }
        let b = s.iter().map(|&m| g.bound(m)).max().expect("regions");
        scored.push((b, i));
    }
    scored.sort();
    let global_lb = if exhaustive {
        scored[0].0
    } else {
        flat_bound(weights, bins, per_bin).min(scored[0].0)
    };

    // Incumbents: splits in bound order with their regions packed heuristically (memoised
    // per group set), within a budget of search nodes (not of time: a phase cut by the clock
    // would hand the exact phase a start that depends on the machine's speed, and with it
    // which optimum a layer that finishes in time returns), so the exact phase starts from
    // a good split even when it cannot finish.
    let quick_from = ctx.nodes;
    let mut quick: HashMap<u64, Option<Packing>> = HashMap::new();
    let mut best: Option<(Vec<u64>, Vec<Packing>)> = None;
    let mut inc: Option<Fraction> = None;
    if let Some((masks, packs)) = seed.and_then(|s| start_split(&g, regions, s, ctx)) {
        inc = packs.iter().map(|p| p.value).max();
        best = Some((masks, packs));
    }
    for (tried, &(bound, idx)) in scored.iter().enumerate() {
        let out_of_budget = tried >= QUICK_SPLITS || ctx.nodes - quick_from >= QUICK_NODES;
        if tried > 0 && (out_of_budget || ctx.timed_out || inc.is_some_and(|v| bound >= v)) {
            break;
        }
        let split = &all[idx];
        let mut packs = Vec::new();
        for &m in split {
            match quick.entry(m).or_insert_with(|| g.quick(m, ctx)) {
                Some(p) => packs.push(p.clone()),
                None => break,
            }
        }
        if packs.len() == split.len() {
            let value = packs.iter().map(|p| p.value).max();
            if inc.is_none_or(|v| value.is_some_and(|x| x < v)) {
                inc = value;
                best = Some((split.clone(), packs));
            }
        }
    }

    // Passes over the splits with growing per-vector node budgets in the regions' searches
    // (see [`FIRST_LEAF_NODES`]); a pass leaving no split unresolved is complete. Each pass
    // accounts for every split (resolved regions are memoised), so the last pass's bound
    // over the splits not resolved is valid.
    let mut budget = FIRST_LEAF_NODES;
    let note = |open: &mut Option<Fraction>, b: Fraction| {
        *open = Some(open.map_or(b, |u: Fraction| u.min(b)));
    };
    let open_lb = loop {
        // Lower bound over the splits not resolved.
        let mut open_lb: Option<Fraction> = None;
        for &(bound, idx) in &scored {
            if inc.is_some_and(|v| bound >= v) {
                break;
            }
            if ctx.timed_out
                || inc.is_some_and(|v| close_enough(v, open_lb.unwrap_or(bound).min(bound), gap))
            {
                // Every split from here on has a bound of at least `bound`.
                note(&mut open_lb, bound);
                break;
            }
            let split = &all[idx];
            let mut masks = split.clone();
            masks.sort_by_key(|&m| std::cmp::Reverse((g.bound(m), m)));
            let mut parts: Vec<(u64, Packing)> = Vec::new();
            let mut split_lb = bound;
            let mut resolved = true;
            for &m in &masks {
                // Once a region sets the split's value, the others need only stay at or
                // below it (and below the split's bound nothing can go).
                let enough = parts
                    .iter()
                    .map(|p| p.1.value)
                    .max()
                    .map_or(split_lb, |v| v.max(split_lb));
                let r = g.region(m, inc, Some(enough), budget, ctx);
                split_lb = split_lb.max(r.lower_bound);
                resolved &= r.complete;
                match r.best {
                    Some(p) if inc.is_none_or(|v| p.value < v) => parts.push((m, p)),
                    _ => break,
                }
            }
            if parts.len() < masks.len() {
                if !resolved {
                    note(&mut open_lb, split_lb);
                }
                continue;
            }
            let value = parts.iter().map(|p| p.1.value).max().expect("regions");
            // Regions stopped at "good enough" are not proven, but the split is resolved when
            // its value meets the largest of its regions' lower bounds.
            if !resolved && value > split_lb {
                note(&mut open_lb, split_lb);
            }
            if inc.is_none_or(|v| value < v) {
                inc = Some(value);
                parts.sort_by_key(|p| split.iter().position(|&m| m == p.0));
                best = Some((
                    parts.iter().map(|p| p.0).collect(),
                    parts.into_iter().map(|p| p.1).collect(),
                ));
            }
        }
        if open_lb.is_none() || ctx.timed_out || budget == u64::MAX {
            break open_lb;
        }
        budget = next_budget(budget, u64::MAX);
    };
    let Some((masks, packs)) = best else {
        // The splits' bounds are a bound on the optimum only when every split was scored
        // (otherwise the optimum may lie in a split never seen: only the flat bound holds).
        let lower_bound = match open_lb {
            Some(open) if exhaustive => open.max(global_lb),
            _ => global_lb,
        };
        return Outcome {
            best: None,
            lower_bound,
            proven: false,
        };
    };
    let value = inc.expect("incumbent");
    let (counts, slots) = assemble(&g, &masks, &packs, weights.len());
    let lower_bound = if exhaustive {
        open_lb.map_or(value, |u| u.min(value))
    } else {
        global_lb.min(value)
    };
    let lower_bound = lower_bound.max(global_lb.min(value));
    let proven = exhaustive && lower_bound >= value;
    Outcome {
        best: Some(Packing {
            counts,
            slots,
            value,
        }),
        lower_bound,
        proven,
    }
}

#[cfg(test)]
mod split_count_tests {
    use super::*;

    #[test]
    fn the_split_count_matches_the_listing() {
        for (n, k) in [
            (4, 2),
            (6, 2),
            (6, 3),
            (8, 2),
            (8, 4),
            (9, 3),
            (12, 4),
            (5, 5),
            (3, 1),
        ] {
            let listed = all_partitions(n, k, usize::MAX).unwrap().len();
            assert!(split_count_at_most(n, k, listed), "{n} {k}");
            assert!(!split_count_at_most(n, k, listed - 1), "{n} {k}");
        }
        // 32 groups into two sets: C(31, 15) = 300540195 splits, counted, not listed.
        assert!(!split_count_at_most(32, 16, MAX_SPLITS));
        assert!(split_count_at_most(32, 16, 300_540_195));
    }
}
