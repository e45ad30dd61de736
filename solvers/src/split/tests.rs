use proptest::prelude::*;

use super::assign::{kinds_by_equality, AssignSearch, Child};
use super::partition::{all_partitions, combinations, min_max_partition};
use super::set::WideSet;

/// The members of a bit mask.
fn members(set: u64) -> Vec<usize> {
    (0..64).filter(|&g| set >> g & 1 == 1).collect()
}

/// The value of a set of groups in the tests: its load plus its heaviest group (so that
/// the value is not the load alone).
fn value(loads: &[u64], groups: &[usize]) -> u64 {
    let sum: u64 = groups.iter().map(|&g| loads[g]).sum();
    sum + groups.iter().map(|&g| loads[g]).max().unwrap_or(0)
}

#[test]
fn combinations_count_binomials() {
    assert_eq!(combinations(6, 3).len(), 20);
    assert_eq!(combinations(3, 0), vec![0]);
    assert!(combinations(2, 3).is_empty());
}

#[test]
fn kinds_group_equal_children() {
    let children = [(2, 4), (2, 4), (1, 8)];
    assert_eq!(kinds_by_equality(&children), vec![0, 0, 2]);
}

proptest! {
    #[test]
    fn partitions_are_all_distinct_and_tile_the_groups(sets in 1usize..5, k in 1usize..4) {
        let n = sets * k;
        let all = all_partitions(n, k, usize::MAX).unwrap();
        for p in &all {
            prop_assert_eq!(p.iter().fold(0u64, |a, &s| a | s).count_ones() as usize, n);
            prop_assert!(p.iter().all(|s| s.count_ones() as usize == k));
        }
        let mut sorted: Vec<Vec<u64>> = all.iter().map(|p| { let mut p = p.clone(); p.sort_unstable(); p }).collect();
        sorted.sort();
        sorted.dedup();
        prop_assert_eq!(sorted.len(), all.len());
    }

    #[test]
    fn both_searches_find_the_brute_force_optimum(
        loads in proptest::collection::vec(0u64..40, 1..4).prop_flat_map(|v| {
            let k = v.len();
            (proptest::collection::vec(0u64..40, k * 3), Just(k))
        }),
    ) {
        let (loads, k) = loads;
        let n = loads.len();
        let best = all_partitions(n, k, usize::MAX)
            .unwrap()
            .iter()
            .map(|p| p.iter().map(|&s| value(&loads, &members(s))).max().unwrap())
            .min()
            .unwrap();
        let by_partition = min_max_partition(n, k, |s| value(&loads, &members(s)), usize::MAX).unwrap();
        prop_assert_eq!(by_partition.1, best);

        let children = vec![Child { groups: k, kind: 0 }; 3];
        let start: Vec<Vec<usize>> = (0..3).map(|c| (c * k..(c + 1) * k).collect()).collect();
        let f: Vec<f64> = loads.iter().map(|&w| w as f64).collect();
        let mut search = AssignSearch::with_budget(usize::MAX);
        let narrow = search
            .run(&f, &children, &start, |_, g| Ok::<u64, ()>(value(&loads, g)), |_, sum| sum as u64)
            .unwrap();
        prop_assert!(narrow.complete);
        prop_assert_eq!(narrow.value, best);
        prop_assert_eq!(narrow.sets.iter().map(|g| value(&loads, g)).max().unwrap(), best);
        let wide = search
            .run_with::<WideSet, ()>(&f, &children, &start, |_, g| Ok(value(&loads, g)), |_, sum| sum as u64)
            .unwrap();
        prop_assert_eq!(wide, narrow);
    }
}
