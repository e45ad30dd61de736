use super::*;
use proptest::prelude::*;

/// A packing: `bins` bins of `per_bin` slots over `items` items, every item at least once.
fn arb_packing() -> impl Strategy<Value = (Vec<Vec<f64>>, Vec<usize>, usize, usize)> {
    (1usize..=5, 1usize..=4, 1usize..=3, 1usize..=3).prop_flat_map(
        |(items, per_bin, regions, steps)| {
            let region_bins = items.div_ceil(per_bin).max(1);
            let bins = region_bins * regions;
            let slots = bins * per_bin;
            (
                proptest::collection::vec(
                    proptest::collection::vec((0u32..50).prop_map(f64::from), items),
                    steps,
                ),
                proptest::collection::vec(0..items, slots - items),
                Just(per_bin),
                Just(bins),
            )
                .prop_map(move |(weights, extra, per_bin, bins)| {
                    // Every item once, then the extra copies, in a shuffled-by-value order.
                    let mut slots: Vec<usize> = (0..items).chain(extra).collect();
                    slots.sort_by_key(|&i| (i * 7919) % 13);
                    (weights, slots, per_bin, bins)
                })
        },
    )
}

fn counts(slots: &[usize], items: usize) -> Vec<usize> {
    let mut c = vec![0; items];
    slots.iter().for_each(|&i| c[i] += 1);
    c
}

fn is_distinct(slots: &[usize], per_bin: usize) -> bool {
    slots.chunks_exact(per_bin).all(|bin| {
        let mut b = bin.to_vec();
        b.sort_unstable();
        b.windows(2).all(|w| w[0] != w[1])
    })
}

#[test]
fn rejects_bad_shapes() {
    let w = vec![vec![1.0, 2.0]];
    assert!(SwapSearch::new(&w, 2, ScenarioGoal::SumOfPeaks)
        .improve(&mut [0, 1, 1])
        .is_err());
    assert!(SwapSearch::new(&w, 1, ScenarioGoal::SumOfPeaks)
        .improve(&mut [0, 0])
        .is_err());
    assert!(SwapSearch::new(&w, 1, ScenarioGoal::SumOfPeaks)
        .improve(&mut [0, 2])
        .is_err());
    assert!(SwapSearch::new(&[], 1, ScenarioGoal::SumOfPeaks)
        .improve(&mut [0])
        .is_err());
    let ragged = vec![vec![1.0, 2.0], vec![1.0]];
    assert!(SwapSearch::new(&ragged, 1, ScenarioGoal::WorstPeak)
        .improve(&mut [0, 1])
        .is_err());
    let nan = vec![vec![1.0, f64::NAN]];
    assert!(SwapSearch::new(&nan, 1, ScenarioGoal::WorstPeak)
        .improve(&mut [0, 1])
        .is_err());
    assert!(SwapSearch::new(&w, 1, ScenarioGoal::WorstPeak)
        .with_regions_of(3)
        .improve(&mut [0, 1])
        .is_err());
    assert!(SwapSearch::new(&w, 2, ScenarioGoal::WorstPeak)
        .distinct(true)
        .improve(&mut [0, 0, 1, 1])
        .is_err());
    // Two bins of two slots over three items: 2 distinct items per region of one bin is too few.
    assert!(separate_copies(&[1.0, 1.0, 1.0], &mut [0, 0, 1, 2], 2, 1).is_err());
}

#[test]
fn count_moves_give_a_copy_where_the_steps_need_it() {
    // Item 0 is hot in both steps; item 1 has two copies it does not need.
    let weights = vec![vec![8.0, 1.0, 1.0], vec![8.0, 0.0, 2.0]];
    let mut slots = vec![0, 1, 1, 2];
    let swaps_only = SwapSearch::new(&weights, 2, ScenarioGoal::SumOfPeaks)
        .improve(&mut slots.clone())
        .unwrap();
    let out = SwapSearch::new(&weights, 2, ScenarioGoal::SumOfPeaks)
        .with_count_moves(true)
        .improve(&mut slots)
        .unwrap();
    assert!(out.count_moves >= 1);
    assert!(out.after < swaps_only.after, "{out:?} vs {swaps_only:?}");
    assert_eq!(counts(&slots, 3)[0], 2);
}

#[test]
fn separation_recounts_when_no_swap_can() {
    // One bin of two slots holding item 0 twice; item 1 lives on the other bin only as its
    // single copy, which cannot leave without making that bin a duplicate: swap item 0 with 1.
    let mut slots = vec![0, 0, 1, 1];
    let done = separate_copies(&[4.0, 2.0], &mut slots, 2, 2).unwrap();
    assert!(is_distinct(&slots, 2));
    assert_eq!(counts(&slots, 2), vec![2, 2]);
    assert_eq!(done.swaps, 1);
    // Item 0 on both bins, twice on bin 0: no swap separates it, only a count change.
    let mut slots = vec![0, 0, 0, 1];
    let done = separate_copies(&[4.0, 2.0], &mut slots, 2, 2).unwrap();
    assert_eq!(slots, vec![0, 1, 0, 1]);
    assert_eq!((done.swaps, done.recounts), (0, 1));
}

proptest! {
    #[test]
    fn swaps_never_worsen_keep_counts_and_regions(
        (weights, start, per_bin, bins) in arb_packing(),
        worst in any::<bool>(),
        regions in 1usize..=3,
    ) {
        let goal = if worst { ScenarioGoal::WorstPeak } else { ScenarioGoal::SumOfPeaks };
        let region_bins = if bins % regions == 0 { bins / regions } else { bins };
        let mut slots = start.clone();
        let out = SwapSearch::new(&weights, per_bin, goal)
            .with_regions_of(region_bins)
            .improve(&mut slots)
            .unwrap();
        let before = goal_value(&weights, &start, per_bin, goal).unwrap();
        let after = goal_value(&weights, &slots, per_bin, goal).unwrap();
        prop_assert_eq!(out.before, before);
        prop_assert_eq!(out.after, after);
        prop_assert!(after <= before);
        prop_assert_eq!(out.swaps == 0, slots == start);
        let items = weights[0].len();
        let rs = region_bins * per_bin;
        for (a, b) in start.chunks(rs).zip(slots.chunks(rs)) {
            prop_assert_eq!(counts(a, items), counts(b, items));
        }
    }

    #[test]
    fn count_moves_never_worsen_keep_every_item_and_regions(
        (weights, start, per_bin, bins) in arb_packing(),
        worst in any::<bool>(),
        regions in 1usize..=3,
        distinct in any::<bool>(),
    ) {
        let goal = if worst { ScenarioGoal::WorstPeak } else { ScenarioGoal::SumOfPeaks };
        let region_bins = if bins % regions == 0 { bins / regions } else { bins };
        let distinct = distinct && is_distinct(&start, per_bin);
        let mut slots = start.clone();
        let out = SwapSearch::new(&weights, per_bin, goal)
            .with_regions_of(region_bins)
            .distinct(distinct)
            .with_count_moves(true)
            .improve(&mut slots)
            .unwrap();
        let after = goal_value(&weights, &slots, per_bin, goal).unwrap();
        prop_assert_eq!(out.after, after);
        prop_assert!(after <= goal_value(&weights, &start, per_bin, goal).unwrap());
        let items = weights[0].len();
        prop_assert!(counts(&slots, items).iter().all(|&c| c >= 1));
        if distinct {
            prop_assert!(is_distinct(&slots, per_bin));
        }
        // Items stay in the regions they were in.
        let rs = region_bins * per_bin;
        for (a, b) in start.chunks(rs).zip(slots.chunks(rs)) {
            prop_assert!(b.iter().all(|i| a.contains(i)));
        }
    }

    #[test]
    fn separation_gives_a_distinct_packing_in_the_same_regions(
        (weights, start, per_bin, bins) in arb_packing(),
    ) {
        let items = weights[0].len();
        let mut slots = start.clone();
        match separate_copies(&weights[0], &mut slots, per_bin, bins) {
            Ok(done) => {
                prop_assert!(is_distinct(&slots, per_bin));
                prop_assert!(counts(&slots, items).iter().all(|&c| c >= 1));
                if is_distinct(&start, per_bin) {
                    prop_assert_eq!(&slots, &start);
                    prop_assert_eq!(done, Separation::default());
                }
                // And a distinct search from there stays distinct and never worsens.
                let w = vec![weights[0].clone()];
                let mut improved = slots.clone();
                SwapSearch::new(&w, per_bin, ScenarioGoal::SumOfPeaks)
                    .distinct(true)
                    .improve(&mut improved)
                    .unwrap();
                prop_assert!(is_distinct(&improved, per_bin));
                prop_assert!(goal_value(&w, &improved, per_bin, ScenarioGoal::SumOfPeaks).unwrap()
                    <= goal_value(&w, &slots, per_bin, ScenarioGoal::SumOfPeaks).unwrap());
            }
            Err(_) => prop_assert!(items < per_bin),
        }
    }
}
