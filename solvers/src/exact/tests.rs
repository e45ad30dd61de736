use super::*;

fn run(w: &[u64], bins: usize, per_bin: usize) -> Outcome {
    search(w, bins, per_bin, &Limits::default()).unwrap()
}

#[test]
fn design_examples() {
    let o = run(&[3, 3, 2], 2, 2);
    assert!(o.proven);
    assert_eq!(o.best.unwrap().value, Fraction::new(4, 1));
    let o = run(&[9, 8, 7, 6, 5, 4, 3, 2, 1, 1], 4, 3);
    assert!(o.proven);
    assert_eq!(o.best.unwrap().value, Fraction::new(23, 2));
}

#[test]
fn order_bound_pigeonhole() {
    // Five copies of 10 and five of 1 in 5 bins of 2: each bin can take one 10, so the
    // best bound is the largest copy plus the smallest, 11.
    assert_eq!(order_bound(&[10, 1], &[5, 5], 55, 5, 2), 11);
    // Four 10s and two 1s in 3 bins of 2: some bin holds two 10s (pigeonhole), 20.
    assert_eq!(order_bound(&[10, 1], &[4, 2], 42, 3, 2), 20);
}

#[test]
fn slots_and_counts_are_consistent() {
    let w = [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86];
    let o = run(&w, 8, 2);
    let best = o.best.unwrap();
    assert_eq!(best.slots.len(), 16);
    for (i, &c) in best.counts.iter().enumerate() {
        assert_eq!(best.slots.iter().filter(|&&x| x == i).count(), c);
    }
    assert!(o.proven);
    assert_eq!(best.value, Fraction::new(136, 1));
}

/// Units of `1 / 2520`: every share `w / c` with `c <= 9` is an integer number of them.
const L: u64 = 2520;

/// The optimum by enumerating every count vector and every assignment of copies to bins.
fn brute(w: &[u64], bins: usize, per_bin: usize) -> u64 {
    fn counts_rec(
        w: &[u64],
        i: usize,
        left: usize,
        c: &mut Vec<usize>,
        f: &mut dyn FnMut(&[usize]),
    ) {
        if i + 1 == w.len() {
            if left >= 1 {
                c.push(left);
                f(c);
                c.pop();
            }
            return;
        }
        for x in 1..=left.saturating_sub(w.len() - i - 1) {
            c.push(x);
            counts_rec(w, i + 1, left - x, c, f);
            c.pop();
        }
    }
    fn assign(
        copies: &[u64],
        k: usize,
        loads: &mut [u64],
        fill: &mut [usize],
        per_bin: usize,
    ) -> u64 {
        if k == copies.len() {
            return loads.iter().copied().max().unwrap_or(0);
        }
        let mut best = u64::MAX;
        for b in 0..loads.len() {
            if fill[b] < per_bin {
                loads[b] += copies[k];
                fill[b] += 1;
                best = best.min(assign(copies, k + 1, loads, fill, per_bin));
                loads[b] -= copies[k];
                fill[b] -= 1;
            }
        }
        best
    }
    let mut best = u64::MAX;
    counts_rec(w, 0, bins * per_bin, &mut Vec::new(), &mut |c| {
        let copies: Vec<u64> = w
            .iter()
            .zip(c)
            .flat_map(|(&x, &k)| std::iter::repeat_n(x * L / k as u64, k))
            .collect();
        best = best.min(assign(
            &copies,
            0,
            &mut vec![0; bins],
            &mut vec![0; bins],
            per_bin,
        ));
    });
    best
}

/// Checks a packing's shape and recomputes its value in units of `1 / L`.
fn recheck(w: &[u64], bins: usize, per_bin: usize, p: &Packing) -> u64 {
    assert_eq!(p.slots.len(), bins * per_bin);
    assert_eq!(p.counts.iter().sum::<usize>(), bins * per_bin);
    for (i, &c) in p.counts.iter().enumerate() {
        assert!(c >= 1);
        assert_eq!(p.slots.iter().filter(|&&x| x == i).count(), c);
    }
    p.slots
        .chunks(per_bin)
        .map(|b| {
            b.iter()
                .map(|&i| w[i] * L / p.counts[i] as u64)
                .sum::<u64>()
        })
        .max()
        .unwrap()
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 200, ..Default::default() })]

    #[test]
    fn flat_matches_brute_force(
        w in proptest::collection::vec(0u64..30, 1..=4),
        bins in 1usize..=3,
        per_bin in 1usize..=3,
    ) {
        proptest::prop_assume!(w.len() <= bins * per_bin);
        let o = run(&w, bins, per_bin);
        let best = o.best.clone().unwrap();
        let v = recheck(&w, bins, per_bin, &best);
        proptest::prop_assert_eq!(Fraction::new(v as u128, L as u128), best.value);
        proptest::prop_assert!(o.proven);
        proptest::prop_assert_eq!(v, brute(&w, bins, per_bin));
        proptest::prop_assert_eq!(o.lower_bound, best.value);
    }

    #[test]
    fn grouped_matches_brute_force(
        w in proptest::collection::vec(0u64..30, 4),
        groups in proptest::sample::select(vec![2usize, 4]),
        per_bin in 1usize..=2,
    ) {
        // Two regions of two bins each.
        let (regions, bins) = (2, 4);
        let o = search_grouped(&w, groups, regions, bins, per_bin, &Limits::default()).unwrap();
        let best = o.best.clone().unwrap();
        let v = recheck(&w, bins, per_bin, &best);
        proptest::prop_assert_eq!(Fraction::new(v as u128, L as u128), best.value);
        let size = w.len() / groups;
        // Copies stay in their group's region, and each region takes groups / regions groups.
        let mut region_of_group = vec![usize::MAX; groups];
        for (slot, &i) in best.slots.iter().enumerate() {
            let region = slot / (bins / regions * per_bin);
            let g = i / size;
            proptest::prop_assert!(region_of_group[g] == usize::MAX || region_of_group[g] == region);
            region_of_group[g] = region;
        }
        for b in 0..regions {
            proptest::prop_assert_eq!(region_of_group.iter().filter(|&&x| x == b).count(), groups / regions);
        }
        // Brute force: every split of the groups, each region solved by enumeration.
        let mut optimum = u64::MAX;
        for mask in 0u32..(1 << groups) {
            if mask.count_ones() as usize != groups / regions || mask & 1 == 0 {
                continue;
            }
            let part = |inside: bool| -> Vec<u64> {
                (0..w.len()).filter(|&i| ((mask >> (i / size)) & 1 == 1) == inside).map(|i| w[i]).collect()
            };
            let (a, b) = (part(true), part(false));
            let slots = bins / regions * per_bin;
            if a.len() > slots || b.len() > slots {
                continue;
            }
            optimum = optimum.min(brute(&a, bins / regions, per_bin).max(brute(&b, bins / regions, per_bin)));
        }
        if optimum == u64::MAX {
            return Ok(());
        }
        proptest::prop_assert!(o.proven);
        proptest::prop_assert_eq!(v, optimum);
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 120, ..Default::default() })]

    /// Dividing by the gcd of the weights changes nothing but the scale: weights times `k`
    /// have `k` times the optimum (and the same proven status and tight bound).
    #[test]
    fn common_factors_scale_the_optimum(
        w in proptest::collection::vec(0u64..20, 1..=4),
        k in 1u64..=6,
        bins in 1usize..=3,
        per_bin in 1usize..=3,
    ) {
        proptest::prop_assume!(w.len() <= bins * per_bin);
        let scaled: Vec<u64> = w.iter().map(|&x| x * k).collect();
        let o = run(&scaled, bins, per_bin);
        let best = o.best.clone().unwrap();
        proptest::prop_assert!(o.proven);
        let v = recheck(&scaled, bins, per_bin, &best);
        proptest::prop_assert_eq!(v, brute(&w, bins, per_bin) * k);
        proptest::prop_assert_eq!(o.lower_bound, best.value);
    }

    /// A start packing (any valid one, or an invalid one) never changes the optimum found,
    /// and the answer is never worse than the start.
    #[test]
    fn a_start_packing_keeps_the_optimum(
        w in proptest::collection::vec(0u64..30, 1..=4),
        bins in 1usize..=3,
        per_bin in 1usize..=3,
        seed in proptest::collection::vec(0usize..100, 12),
        valid in proptest::bool::ANY,
    ) {
        proptest::prop_assume!(w.len() <= bins * per_bin);
        let n = w.len();
        let slots_len = bins * per_bin;
        // Every item once, the other slots from the seed; invalid: one slot short.
        let mut start: Vec<usize> = (0..n).chain(seed.iter().map(|&x| x % n)).take(slots_len).collect();
        start.rotate_left(seed[0] % slots_len);
        if !valid {
            start.pop();
        }
        let limits = Limits { start: Some(start.clone()), ..Default::default() };
        let o = search(&w, bins, per_bin, &limits).unwrap();
        let best = o.best.clone().unwrap();
        proptest::prop_assert!(o.proven);
        let v = recheck(&w, bins, per_bin, &best);
        proptest::prop_assert_eq!(v, brute(&w, bins, per_bin));
        if valid {
            let counts: Vec<usize> = (0..n).map(|i| start.iter().filter(|&&x| x == i).count()).collect();
            let start_value = start
                .chunks(per_bin)
                .map(|b| b.iter().map(|&i| w[i] * L / counts[i] as u64).sum::<u64>())
                .max()
                .unwrap();
            proptest::prop_assert!(v <= start_value);
        }
    }

    /// The grouped search started from a valid grouped packing (its own answer with the
    /// slots of every region reversed) finds the same optimum.
    #[test]
    fn a_grouped_start_keeps_the_optimum(
        w in proptest::collection::vec(0u64..30, 4),
        groups in proptest::sample::select(vec![2usize, 4]),
        per_bin in 1usize..=2,
    ) {
        let (regions, bins) = (2, 4);
        let plain = search_grouped(&w, groups, regions, bins, per_bin, &Limits::default()).unwrap();
        let mut start = plain.best.clone().unwrap().slots;
        let region_slots = bins / regions * per_bin;
        for chunk in start.chunks_mut(region_slots) {
            chunk.reverse();
        }
        let limits = Limits { start: Some(start), ..Default::default() };
        let o = search_grouped(&w, groups, regions, bins, per_bin, &limits).unwrap();
        proptest::prop_assert_eq!(o.proven, plain.proven);
        proptest::prop_assert_eq!(o.best.unwrap().value, plain.best.unwrap().value);
        proptest::prop_assert_eq!(o.lower_bound, plain.lower_bound);
    }
}

#[test]
fn subset_repacking_reaches_an_exact_partition() {
    // Four bins of three: 6+5+1, 4+4+4, 6+3+3, 5+5+2 are all 12 = the average; start far
    // from it (a sorted fill) and let the large-neighbourhood search balance it.
    let w = [6, 6, 5, 5, 5, 4, 4, 4, 3, 3, 2, 1];
    let counts = vec![1; w.len()];
    let items = Items::build(&w, &counts).unwrap();
    let mut content: Vec<Vec<usize>> = Vec::new();
    let mut flat = Vec::new();
    for (j, &a) in items.avail.iter().enumerate() {
        flat.extend(std::iter::repeat_n(j, a as usize));
    }
    for bin in flat.chunks(3) {
        content.push(bin.to_vec());
    }
    let mut load: Vec<u64> = content
        .iter()
        .map(|b| b.iter().map(|&j| items.sizes[j]).sum())
        .collect();
    assert_eq!(load.iter().max(), Some(&17));
    let mut ctx = Ctx {
        deadline: None,
        nodes: 0,
        timed_out: false,
    };
    repack_subsets(&items, 3, 12, &mut load, &mut content, &mut ctx);
    assert_eq!(load, vec![12; 4]);
    let mut all: Vec<usize> = content.concat();
    all.sort();
    assert_eq!(all, flat, "the same copies, re-packed");
}

#[test]
fn pair_walk_keeps_the_copies_and_never_raises_the_peak() {
    // 16 bins of 3 copies, weights 1..=48 in a sorted fill: the walk re-partitions pairs of
    // bins exactly; the copies stay the same and the heaviest bin never gets heavier.
    let w: Vec<u64> = (1..=48).collect();
    let items = Items::build(&w, &vec![1; w.len()]).unwrap();
    let mut flat = Vec::new();
    for (j, &a) in items.avail.iter().enumerate() {
        flat.extend(std::iter::repeat_n(j, a as usize));
    }
    let mut content: Vec<Vec<usize>> = flat.chunks(3).map(|b| b.to_vec()).collect();
    let mut load: Vec<u64> = content
        .iter()
        .map(|b| b.iter().map(|&j| items.sizes[j]).sum())
        .collect();
    let before = *load.iter().max().unwrap();
    let mut ctx = Ctx {
        deadline: None,
        nodes: 0,
        timed_out: false,
    };
    // The average: 48 * 49 / 2 / 16 = 73.5, so the target is 74.
    pair_walk(&items, 3, 74, &mut load, &mut content, &mut ctx);
    let after = *load.iter().max().unwrap();
    assert!(after < before, "{after} vs {before}");
    for (b, bin) in content.iter().enumerate() {
        assert_eq!(bin.len(), 3);
        assert_eq!(load[b], bin.iter().map(|&j| items.sizes[j]).sum::<u64>());
    }
    let mut all: Vec<usize> = content.concat();
    all.sort();
    assert_eq!(all, flat);
}

#[test]
fn rejects_bad_shapes() {
    assert!(search(&[1, 2, 3], 1, 2, &Limits::default()).is_err());
    assert!(search(&[1], 0, 2, &Limits::default()).is_err());
    assert!(search(&[u64::MAX, 1], 1, 2, &Limits::default()).is_err());
    assert!(search_grouped(&[1, 2, 3], 2, 1, 1, 4, &Limits::default()).is_err());
}
