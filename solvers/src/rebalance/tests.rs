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
        prop_assert!(peak(&w, &improved, bins) <= peak(&w, &built, bins) * (1.0 + ROUNDING));
        let exhaustive = p.pack(&w, &counts, bins, PackLimits { stop_gap: 0.0, coarse_stop_gap: 0.0, ..PackLimits::default() }).unwrap();
        prop_assert!(peak(&w, &exhaustive, bins) <= peak(&w, &built, bins) * (1.0 + ROUNDING));
        // Deep goes on from where the fast setting stops.
        let kicked = p.pack(&w, &counts, bins, PackLimits::deep()).unwrap();
        prop_assert!(peak(&w, &kicked, bins) <= peak(&w, &improved, bins) * (1.0 + ROUNDING));
        // Where the fast setting says it reached its goal, it is within its gap of the
        // bound (at most the mean or the largest copy).
        let total: f64 = w.iter().sum();
        let mean = total / bins as f64;
        if reached {
            let largest = w.iter().zip(&counts).map(|(&x, &c)| x / c as f64).fold(mean, f64::max);
            prop_assert!(peak(&w, &improved, bins) <= largest * (1.0 + PackLimits::default().gap_for(bins, n / bins)));
        }
        // The mean bin is a lower bound on any packing.
        prop_assert!(peak(&w, &improved, bins) >= mean * (1.0 - ROUNDING));
    }
}

/// A packer holding the differencing's packing (no local search) of `weights` in `bins` bins
/// of `per_bin` copies, the extra copies given to the items in turn.
fn constructed(weights: &[f64], bins: usize, per_bin: usize) -> CopyPacker {
    let mut counts = vec![1; weights.len()];
    for e in 0..bins * per_bin - weights.len() {
        counts[e % weights.len()] += 1;
    }
    let mut p = CopyPacker::default();
    let limits = PackLimits {
        max_moves: 0,
        ..PackLimits::default()
    };
    p.pack(weights, &counts, bins, limits).unwrap();
    // The search state of that packing (`pack` does not build it when the construction is
    // already at the goal).
    p.index();
    p
}

/// Applies a swap of the copies at positions `a` and `b` (modulo the copies), or with
/// `count` a count move of the copy at `a` to the item at `b`; returns `false` (and applies
/// nothing) for a count move that would take an item's last copy or keep the item.
fn random_move(p: &mut CopyPacker, a: u16, b: u16, count: bool) -> bool {
    let n = p.item.len();
    let (a, b) = (a as usize % n, b as usize % n);
    if !count {
        p.apply(Move::Swap { a, b });
    } else if p.counts[p.item[a]] >= 2 && p.item[a] != p.item[b] {
        p.apply(Move::Count {
            pos: a,
            to: p.item[b],
        });
    } else {
        return false;
    }
    true
}

/// Random moves `(a, b, count)` (see [`random_move`]) applied one by one to the
/// differencing's packing of `weights` (times 10) in `bins` bins of `per_bin` copies, `check`
/// called with the packer and its heaviest bin after each (`weights.len()` at most the copies).
fn after_random_moves(
    weights: &[u32],
    bins: usize,
    per_bin: usize,
    moves: &[(u16, u16, bool)],
    mut check: impl FnMut(&mut CopyPacker, &[f64], usize) -> Result<(), TestCaseError>,
) -> Result<(), TestCaseError> {
    let w: Vec<f64> = weights.iter().map(|&x| f64::from(x) * 10.0).collect();
    let mut p = constructed(&w, bins, per_bin);
    for &(a, b, count) in moves {
        if random_move(&mut p, a, b, count) {
            let top = p.heaviest();
            check(&mut p, &w, top)?;
        }
    }
    Ok(())
}

/// The bins by ascending load, lower bin first on ties, and the heaviest bin (the lowest on
/// ties), computed from scratch.
fn naive_order(p: &CopyPacker) -> (Vec<usize>, usize) {
    let mut order: Vec<usize> = (0..p.bins).collect();
    order.sort_by(|&a, &b| p.load[a].total_cmp(&p.load[b]).then(a.cmp(&b)));
    let top = (0..p.bins).fold(0, |t, b| if p.load[b] > p.load[t] { b } else { t });
    (order, top)
}

proptest! {
    /// The load order kept up to date move by move (bins taken out and put back, or sorted
    /// again when most changed) is the order a full sort gives, and the heaviest bin read from
    /// it is the one a scan finds.
    #[test]
    fn the_incremental_load_order_is_the_sorted_order(
        weights in proptest::collection::vec(0u32..50, 2..100),
        bins in 1usize..33,
        per_bin in 1usize..4,
        moves in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<bool>()), 1..40),
    ) {
        // Up to 32 bins: a move that changes two loads is put back in place (the full sort
        // runs when more than one bin in 8 changed).
        let n = bins * per_bin;
        prop_assume!(weights.len() <= n);
        let w: Vec<f64> = weights.iter().map(|&x| x as f64).collect();
        let mut p = constructed(&w, bins, per_bin);
        for (a, b, count) in moves {
            if !random_move(&mut p, a, b, count) {
                continue;
            }
            let top = p.heaviest();
            p.sort_by_load();
            let (order, naive_top) = naive_order(&p);
            prop_assert_eq!(&p.by_load, &order);
            prop_assert_eq!(top, naive_top);
        }
    }
}

/// The best swap of the heaviest bin by brute force: the lowest larger load of the two bins
/// after exchanging a copy of `top` with a lighter copy of another bin, over every pair of
/// copies, if it lowers `top` by more than rounding noise.
fn naive_best_swap(p: &CopyPacker, top: usize) -> Option<f64> {
    let k = p.per_bin;
    let peak = p.load[top];
    let mut best = peak - peak.abs() * ROUNDING;
    let mut found = None;
    for b in (0..p.bins).filter(|&b| b != top) {
        let lb = p.load[b];
        for x in &p.at[top * k..(top + 1) * k] {
            for y in &p.at[b * k..(b + 1) * k] {
                let d = x - y;
                let score = (peak - d).max(lb + d);
                if d > 0.0 && d < peak - lb && score < best {
                    best = score;
                    found = Some(score);
                }
            }
        }
    }
    found
}

proptest! {
    /// With many equal copy weights (few items, many copies each), the best-swap search that
    /// stops at the first bin without room for the least transfer finds a move exactly when
    /// one exists, as good as the best of all (up to rounding); and no copy of the heaviest
    /// bin is closer than that least transfer above any lighter copy.
    #[test]
    fn the_pruned_best_swap_search_is_the_full_one(
        weights in proptest::collection::vec(1u32..40, 2..12),
        bins in 2usize..100,
        per_bin in 2usize..9,
        moves in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<bool>()), 1..30),
    ) {
        prop_assume!(weights.len() <= bins * per_bin);
        after_random_moves(&weights, bins, per_bin, &moves, |p, w, top| {
            // The item copy weights kept move by move are those of the current counts.
            let mut shares: Vec<f64> =
                w.iter().zip(&p.counts).map(|(&w, &c)| w / c as f64).collect();
            shares.sort_by(f64::total_cmp);
            if !p.copy_weights_stale {
                prop_assert_eq!(&p.copy_weights, &shares);
            }
            let least = p.least_swap_transfer(top);
            let k = p.per_bin;
            for x in &p.at[top * k..(top + 1) * k] {
                for y in p.at.iter().filter(|&&y| y < *x) {
                    prop_assert!(x - y >= least);
                }
            }
            let want = naive_best_swap(p, top);
            let got = p.exchange_move(top, false, false).map(|m| match m {
                Move::Swap { a, b } => {
                    let d = p.at[a] - p.at[b];
                    (p.load[top] - d).max(p.load[b / k] + d)
                }
                _ => unreachable!("a swap search returns swaps"),
            });
            // The same existence, the same score up to rounding (the merge sweep picks
            // the partner nearest the ideal weight, which may differ in the last bit).
            prop_assert_eq!(got.is_some(), want.is_some());
            if let (Some(got), Some(want)) = (got, want) {
                prop_assert!((got - want).abs() <= want * 1e-12, "{} vs {}", got, want);
            }
            Ok(())
        })?;
    }
}

/// The best count move of the heaviest bin without the bounds that leave moves out: every
/// move offered, the first with the lowest `worst` below the peak kept.
fn full_best_count_move(p: &mut CopyPacker, top: usize) -> Option<Move> {
    let peak = p.load[top];
    let mut best = peak - peak.abs() * ROUNDING;
    let mut found = None;
    p.count_moves(top, f64::INFINITY, |worst, m| {
        if worst < best {
            best = worst;
            found = Some(m);
        }
        f64::INFINITY
    });
    found
}

proptest! {
    /// The count-move search that leaves out moves by bounds (a bin of the item losing a copy
    /// already at the best load found, or the bin of the moved copy) finds the same move as
    /// the search that evaluates every move, on packings with few and with many copies per
    /// item, after random swaps and count moves.
    #[test]
    fn the_bounded_count_move_search_is_the_full_one(
        weights in proptest::collection::vec(0u32..40, 2..16),
        bins in 2usize..40,
        per_bin in 1usize..10,
        moves in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<bool>()), 1..30),
    ) {
        prop_assume!(weights.len() <= bins * per_bin);
        after_random_moves(&weights, bins, per_bin, &moves, |p, _, top| {
            let before = p.stats.evaluations;
            let want = full_best_count_move(p, top);
            let full = p.stats.evaluations - before;
            let got = p.best_count_move(top);
            prop_assert_eq!(got, want);
            // The full search evaluated at least as many moves.
            prop_assert!(p.stats.evaluations - before - full <= full);
            Ok(())
        })?;
    }
}

/// The lightest heaviest pair over every way to pair the copies `copies` (an even number):
/// the first copy with each other one in turn, the rest paired recursively.
fn best_pairing(copies: &[f64]) -> f64 {
    if copies.is_empty() {
        return 0.0;
    }
    (1..copies.len())
        .map(|j| {
            let mut rest = copies[1..].to_vec();
            rest.remove(j - 1);
            (copies[0] + copies[j]).max(best_pairing(&rest))
        })
        .fold(f64::INFINITY, f64::min)
}

proptest! {
    /// With two copies per bin the construction pairs the copies heaviest with lightest, and
    /// no pairing of the same copies has a lighter heaviest bin (brute force over all
    /// pairings of up to 10 copies); the local search (which keeps that pairing and moves
    /// only counts) never raises the peak and keeps every item a copy.
    #[test]
    fn two_copies_per_bin_are_paired_optimally(
        weights in proptest::collection::vec(0u32..100, 1..10),
        bins in 1usize..6,
    ) {
        let n = 2 * bins;
        prop_assume!(weights.len() <= n);
        let w: Vec<f64> = weights.iter().map(|&x| f64::from(x)).collect();
        let p = constructed(&w, bins, 2);
        let copies: Vec<f64> = p.at.clone();
        let built = peak(&w, &p.item, bins);
        prop_assert_eq!(built, best_pairing(&copies));
        let counts = p.counts.clone();
        let mut q = CopyPacker::default();
        let items = q.pack(&w, &counts, bins, PackLimits::default()).unwrap();
        prop_assert!(q.policy.paired);
        prop_assert!(peak(&w, &items, bins) <= built);
        for i in 0..w.len() {
            prop_assert!(items.contains(&i));
        }
    }
}

/// Weights as `f64` and `n` copies handed out round robin (every item at least one; `n` at
/// least the number of items).
fn round_robin(weights: &[u32], n: usize) -> (Vec<f64>, Vec<usize>) {
    let w: Vec<f64> = weights.iter().map(|&x| f64::from(x)).collect();
    let mut counts = vec![1; w.len()];
    for e in 0..n - w.len() {
        counts[e % w.len()] += 1;
    }
    (w, counts)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(16))]

    /// Wide packings ([`WIDE_BINS`] bins or more) back off the goal-directed pair-swap search
    /// (see `SearchPolicy::goal_backoff`): still a packing of every item with every bin's cardinality,
    /// never above the differencing's peak, deterministic.
    #[test]
    fn wide_packings_keep_the_invariants(
        weights in proptest::collection::vec(1u32..10_000, 64..200),
        bins in WIDE_BINS..WIDE_BINS + 40,
        per_bin in 3usize..7,
    ) {
        let n = bins * per_bin;
        prop_assume!(n >= weights.len());
        let (w, counts) = round_robin(&weights, n);
        let mut p = CopyPacker::default();
        let built = p.pack(&w, &counts, bins, PackLimits { max_moves: 0, ..PackLimits::default() }).unwrap();
        let improved = p.pack(&w, &counts, bins, PackLimits::default()).unwrap();
        prop_assert_eq!(improved.len(), n);
        for i in 0..w.len() {
            prop_assert!(improved.contains(&i), "item {} lost its last copy", i);
        }
        prop_assert!(peak(&w, &improved, bins) <= peak(&w, &built, bins) * (1.0 + ROUNDING));
        prop_assert_eq!(&improved, &CopyPacker::default().pack(&w, &counts, bins, PackLimits::default()).unwrap());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]

    /// The work budget of wide packings only cuts the search short: the budgeted search is a
    /// prefix of the unbudgeted one (never lower, never above the differencing's peak, fewer
    /// evaluations when the budget acted), and `deep` goes on from where it stops (never
    /// higher). Packings below [`WIDE_BINS`] bins ignore it.
    #[test]
    fn the_wide_budget_cuts_the_search_short(
        weights in proptest::collection::vec(1u32..10_000, 64..200),
        bins in WIDE_BINS - 8..WIDE_BINS + 40,
        per_bin in 3usize..7,
        budget in 0usize..3_000,
    ) {
        let n = bins * per_bin;
        prop_assume!(n >= weights.len());
        let (w, counts) = round_robin(&weights, n);
        let mut p = CopyPacker::default();
        let built = peak(&w, &p.pack(&w, &counts, bins, PackLimits { max_moves: 0, ..PackLimits::default() }).unwrap(), bins);
        let free = PackLimits { wide_budget: usize::MAX, ..PackLimits::default() };
        let unbounded = p.pack(&w, &counts, bins, free).unwrap();
        let free_stats = p.stats();
        let tight = PackLimits { wide_budget: budget, ..PackLimits::default() };
        let bounded = p.pack(&w, &counts, bins, tight).unwrap();
        let tight_stats = p.stats();
        if bins < WIDE_BINS {
            prop_assert_eq!(&bounded, &unbounded);
        }
        let (low, high) = (peak(&w, &unbounded, bins), peak(&w, &bounded, bins));
        prop_assert!(low <= high * (1.0 + ROUNDING));
        prop_assert!(high <= built * (1.0 + ROUNDING));
        prop_assert!(tight_stats.evaluations <= free_stats.evaluations);
        if free_stats.evaluations > tight_stats.evaluations {
            // The budget acted: it was spent.
            prop_assert!(tight_stats.evaluations >= budget);
        }
        let deep = p.pack(&w, &counts, bins, PackLimits { wide_budget: budget, ..PackLimits::deep() }).unwrap();
        prop_assert!(peak(&w, &deep, bins) <= high * (1.0 + ROUNDING));
    }
}

proptest! {
    #[test]
    fn the_budgeted_insertion_sort_sorts_or_says_it_did_not(
        keys in proptest::collection::vec(0u128..64, 0..80),
        budget in 0usize..200,
    ) {
        let mut sorted = keys.clone();
        sorted.sort_unstable();
        let mut got = keys.clone();
        let done = insertion_sort_within(&mut got, budget);
        if done {
            prop_assert_eq!(&got, &sorted);
        } else {
            // Stopped early: still a permutation of the keys (and there were more than `budget`
            // inversions to undo).
            let mut again = got.clone();
            again.sort_unstable();
            prop_assert_eq!(&again, &sorted);
            let inversions = (0..keys.len())
                .flat_map(|i| (i + 1..keys.len()).map(move |j| (i, j)))
                .filter(|&(i, j)| keys[i] > keys[j])
                .count();
            prop_assert!(inversions > budget);
        }
    }
}

proptest! {
    #[test]
    fn the_merged_pair_lists_are_the_stable_sort_of_the_pairs(
        weights in proptest::collection::vec(0u32..12, 2..60),
        bins in 1usize..9,
        per_bin in 2usize..12,
        moves in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<bool>()), 0..20),
    ) {
        // Small weights: many equal pair weights, so the order of ties is checked.
        prop_assume!(weights.len() <= bins * per_bin);
        after_random_moves(&weights, bins, per_bin, &moves, |p, _, _| {
            let k = p.per_bin;
            let per = k * (k - 1) / 2;
            for b in 0..p.bins {
                p.refresh_pairs(b);
                // The pairs listed column by column (copy j with each lighter copy i < j, in
                // the bin's sorted order), stably sorted by weight.
                let singles = &p.singles[b * k..(b + 1) * k];
                let mut naive = Vec::new();
                for j in 0..k {
                    for i in 0..j {
                        naive.push((singles[i].sum + singles[j].sum, singles[i].a, singles[j].a));
                    }
                }
                naive.sort_by(|x, y| x.0.total_cmp(&y.0));
                let got: Vec<(f64, u32, u32)> = p.pairs[b * per..(b + 1) * per]
                    .iter()
                    .map(|e| (e.sum, e.a, e.b))
                    .collect();
                prop_assert_eq!(got, naive);
            }
            Ok(())
        })?;
    }
}

proptest! {
    #[test]
    fn the_pairing_construction_is_the_general_differencing(
        weights in proptest::collection::vec(0u32..20, 1..40),
        bins in 1usize..40,
        extra in proptest::collection::vec(any::<u16>(), 0..80),
    ) {
        // Two copies per bin; the extra copies go to random items (small weights: many ties).
        let n = weights.len();
        prop_assume!(n <= 2 * bins && n + extra.len() >= 2 * bins);
        let mut counts = vec![1usize; n];
        for &e in &extra[..2 * bins - n] {
            counts[e as usize % n] += 1;
        }
        let w: Vec<f64> = weights.iter().map(|&x| f64::from(x) / 3.0).collect();
        let mut p = CopyPacker {
            weights: w,
            counts,
            bins,
            per_bin: 2,
            ..CopyPacker::default()
        };
        p.construct_general();
        let general = p.item.clone();
        p.construct_pairs();
        prop_assert_eq!(&p.item, &general);
        // Again from the order the last call left (the warm-started sort).
        p.counts.swap(0, n - 1);
        p.construct_general();
        let general = p.item.clone();
        p.construct_pairs();
        prop_assert_eq!(&p.item, &general);
    }
}

proptest! {
    #[test]
    fn the_sorted_copies_and_loads_after_moves_are_a_rebuilds(
        weights in proptest::collection::vec(0u32..12, 2..60),
        bins in 1usize..9,
        per_bin in 1usize..12,
        moves in proptest::collection::vec((any::<u16>(), any::<u16>(), any::<bool>()), 1..30),
    ) {
        // Swaps update one entry of each bin's sorted copies, count moves every entry of the
        // bins they touch: either way the state is the one `index` builds from scratch.
        prop_assume!(weights.len() <= bins * per_bin);
        after_random_moves(&weights, bins, per_bin, &moves, |p, _, _| {
            let mut fresh = p.clone();
            fresh.index();
            let entries = |q: &CopyPacker| -> Vec<(f64, u32)> {
                q.singles.iter().map(|e| (e.sum, e.a)).collect()
            };
            prop_assert_eq!(entries(p), entries(&fresh));
            prop_assert_eq!(&p.load, &fresh.load);
            prop_assert_eq!(&p.at, &fresh.at);
            Ok(())
        })?;
    }
}
