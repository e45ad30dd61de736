//! The lower bound of the budgeted problem (`budgeted_lower_bound`): never above the true
//! budgeted optimum (brute force on tiny layers), never above any placement the heuristic or
//! the exact mode finds within the budget, at least the combinatorial bound, and strictly
//! stronger than it when the budget binds.

mod live_common;

use std::time::Duration;

use eplb::bounds::proven_lower_bound;
use eplb::live::{
    budgeted_lower_bound, count_transfers, rebalance, ExactBudget, MoveBudget, RebalanceOptions,
};
use eplb::testing::{brute_force_where, enumerable};
use eplb::{Cluster, EplbError, LayerPlacement, Loads, Placement, PolicyChoice, Problem};
use live_common::{arb_case, small, wide};
use proptest::prelude::*;

/// The bound and the evaluator sum in other orders: equal up to rounding.
fn at_most(bound: f64, value: f64) -> bool {
    bound <= value * (1.0 + 1e-12)
}

/// `problem` with every load scaled by `factor` (non-integer loads take the bound's `f64` path).
fn scaled(problem: &Problem, factor: f64) -> Problem {
    let rows: Vec<Vec<f64>> = problem
        .layers()
        .map(|l| l.loads().iter().map(|w| w * factor).collect())
        .collect();
    let choice = match problem.policy() {
        eplb::Policy::Hierarchical => PolicyChoice::Hierarchical,
        eplb::Policy::Global => PolicyChoice::Global,
    };
    Problem::new(Loads::from_rows(&rows).unwrap(), *problem.cluster(), choice).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn the_bound_is_never_above_the_budgeted_optimum(
        (problem, current, _new) in arb_case(small(5, 3)),
        k in 0usize..4,
        factor in prop_oneof![Just(1.0), Just(0.1), Just(1.0 / 3.0)],
    ) {
        let problem = scaled(&problem, factor);
        prop_assume!(enumerable(&problem));
        for layer in problem.layers() {
            let cur = current.layer(layer.index());
            let bound = budgeted_lower_bound(&layer, cur, k).unwrap();
            prop_assert!(bound >= proven_lower_bound(&layer));
            let within = |p: &LayerPlacement| {
                count_transfers(problem.cluster(), cur, p).transfers <= k
            };
            // The current placement is within any budget: there is always an optimum.
            let best = brute_force_where(&layer, &within).unwrap().expect("current is feasible");
            prop_assert!(at_most(bound, best.max_load), "bound {} > optimum {} (k = {})", bound, best.max_load, k);
        }
    }

    #[test]
    fn the_bound_is_never_above_what_a_rebalance_finds(
        (problem, current, _new) in arb_case(wide()),
        k in 0usize..6,
        distinct in any::<bool>(),
    ) {
        let distinct = distinct
            && problem.layers().all(|l| eplb::strategies::distinct::check_distinct_possible(&l).is_ok());
        let options = RebalanceOptions::new(MoveBudget::PerLayer(k)).with_distinct_replicas(distinct);
        let result = rebalance(&problem, &current, None, &options).unwrap();
        for (layer, r) in problem.layers().zip(&result.layers) {
            // (Distinct: the rebalance starts from the separated placement; the bound from
            // the current one then holds for k plus the forced moves, so only check plain.)
            if distinct {
                continue;
            }
            let bound = budgeted_lower_bound(&layer, current.layer(layer.index()), k).unwrap();
            prop_assert!(at_most(bound, r.new_max), "bound {} > found {}", bound, r.new_max);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn the_exact_mode_reports_the_budgeted_bound_and_stays_below_its_answer(
        (problem, current, _new) in arb_case(small(6, 4)),
        k in 0usize..4,
    ) {
        let exact = ExactBudget::default().with_time_limit(Some(Duration::from_secs(2)));
        let options = RebalanceOptions::new(MoveBudget::PerLayer(k)).with_exact(exact);
        let result = rebalance(&problem, &current, None, &options).unwrap();
        for (layer, r) in problem.layers().zip(&result.layers) {
            let bound = budgeted_lower_bound(&layer, current.layer(layer.index()), k).unwrap();
            prop_assert_eq!(r.lower_bound, bound);
            prop_assert!(at_most(r.lower_bound, r.new_max));
            prop_assert_eq!(r.optimal, r.new_max <= r.lower_bound);
        }
    }
}

/// Expert 0 (load 6) has both slots of GPU 0; 4 GPUs x 2 slots, mean load 3.
fn hot_alone() -> (Problem, Placement) {
    let loads = Loads::from_rows(&[vec![6.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 4), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(7, vec![vec![0, 0, 1, 2, 3, 4, 5, 6]]).unwrap();
    (problem, current)
}

#[test]
fn a_binding_budget_gives_a_stronger_bound_that_proves_the_answer_optimal() {
    let (problem, current) = hot_alone();
    let layer = problem.layer(0);
    assert_eq!(proven_lower_bound(&layer), 3.0);
    // No transfer: GPU 0 keeps all of expert 0.
    assert_eq!(
        budgeted_lower_bound(&layer, current.layer(0), 0).unwrap(),
        6.0
    );
    // One transfer moves at most T of expert 0's 6 off GPU 0: T >= 3, the mean again.
    assert_eq!(
        budgeted_lower_bound(&layer, current.layer(0), 1).unwrap(),
        3.0
    );
    // The exact mode with no budget keeps the current placement and proves it optimal
    // (the combinatorial bound, 3, could not).
    let exact = ExactBudget::default().with_time_limit(Some(Duration::from_secs(10)));
    let options = RebalanceOptions::new(MoveBudget::PerLayer(0)).with_exact(exact);
    let r = &rebalance(&problem, &current, None, &options)
        .unwrap()
        .layers[0];
    assert_eq!((r.new_max, r.lower_bound, r.optimal), (6.0, 6.0, true));
}

#[test]
fn a_hot_gpu_needs_transfers_for_its_excess_load() {
    // GPU 0 holds experts 0..3 (load 4 each), the three other GPUs experts 4..15 (load 1
    // each): 28 over 4 GPUs x 4 slots, mean 7. A transfer carries at most one expert's load,
    // 4, off GPU 0: 16 - 4 k <= T, while that is above the mean.
    let mut row = vec![4.0; 4];
    row.extend([1.0; 12]);
    let loads = Loads::from_rows(&[row]).unwrap();
    let problem = Problem::new(loads, Cluster::new(16, 4), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(16, vec![(0..16).collect()]).unwrap();
    let layer = problem.layer(0);
    let bound = |k| budgeted_lower_bound(&layer, current.layer(0), k).unwrap();
    assert_eq!(proven_lower_bound(&layer), 7.0);
    assert_eq!(
        (bound(0), bound(1), bound(2), bound(3)),
        (16.0, 12.0, 8.0, 7.0)
    );
    for k in 0..4 {
        let options = RebalanceOptions::new(MoveBudget::PerLayer(k));
        let r = &rebalance(&problem, &current, None, &options)
            .unwrap()
            .layers[0];
        assert!(
            bound(k) <= r.new_max,
            "k = {k}: {} > {}",
            bound(k),
            r.new_max
        );
    }
}

#[test]
fn the_budget_is_shared_between_gpus() {
    // GPUs 0 and 1 alone hold two experts of load 5 each; GPUs 2 and 3 two of load 1. One
    // transfer can relieve one of the hot GPUs only: the other keeps 10. The combinatorial
    // bound is the mean, 6; pooling GPUs 0 and 1 gives (20 - 5) / 2 = 7.5.
    let loads = Loads::from_rows(&[vec![5.0, 5.0, 5.0, 5.0, 1.0, 1.0, 1.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 4), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(8, vec![(0..8).collect()]).unwrap();
    let layer = problem.layer(0);
    let bound = |k| budgeted_lower_bound(&layer, current.layer(0), k).unwrap();
    assert_eq!(proven_lower_bound(&layer), 6.0);
    // K = 1: 10 exactly (every max load below 10 needs a transfer on both hot GPUs).
    assert_eq!(bound(1), 10.0);
    // K = 2: each hot GPU moves one expert out: 5 each, below the mean: the mean.
    assert_eq!(bound(2), 6.0);
    let options = RebalanceOptions::new(MoveBudget::PerLayer(1))
        .with_exact(ExactBudget::default().with_time_limit(Some(Duration::from_secs(10))));
    let r = &rebalance(&problem, &current, None, &options)
        .unwrap()
        .layers[0];
    assert_eq!((r.new_max, r.lower_bound, r.optimal), (10.0, 10.0, true));
}

#[test]
fn a_current_placement_of_another_shape_is_refused() {
    let (problem, _) = hot_alone();
    let short = LayerPlacement::from_phy2log(vec![0, 1, 2]);
    let err = budgeted_lower_bound(&problem.layer(0), &short, 1).unwrap_err();
    assert!(matches!(err, EplbError::InvalidPlacement(_)), "{err}");
    assert!(err.to_string().contains("3 slots"), "{err}");
    let unknown = LayerPlacement::from_phy2log(vec![0, 1, 2, 3, 4, 5, 6, 9]);
    let err = budgeted_lower_bound(&problem.layer(0), &unknown, 1).unwrap_err();
    assert!(err.to_string().contains("expert 9"), "{err}");
}
