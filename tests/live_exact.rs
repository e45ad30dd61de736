//! `rebalance` in the exact budgeted mode: never worse than the heuristic, within the budget,
//! feasible, and `optimal` only when proven by the combinatorial bound.

mod live_common;

use std::time::Duration;

use eplb::live::{count_transfers, rebalance, Choice, ExactBudget, MoveBudget, RebalanceOptions};
use eplb::objective::{Objective, StepLoads};
use eplb::testing::{brute_force_where, enumerable};
use eplb::{evaluate, EplbError, Loads, Placement, PolicyChoice, Problem};
use live_common::{arb_case, small};
use proptest::prelude::*;

fn exact() -> ExactBudget {
    ExactBudget::default().with_time_limit(Some(Duration::from_secs(2)))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_exact_mode_is_never_worse_than_the_heuristic_and_keeps_the_budget(
        (problem, current, _new) in arb_case(small(6, 4)),
        k in 1usize..5,
        distinct in any::<bool>(),
    ) {
        let heuristic = RebalanceOptions::new(MoveBudget::PerLayer(k));
        let distinct = distinct
            && problem.layers().all(|l| eplb::strategies::distinct::check_distinct_possible(&l).is_ok());
        let heuristic = heuristic.with_distinct_replicas(distinct);
        let plain = rebalance(&problem, &current, None, &heuristic).unwrap();
        let options = heuristic.clone().with_exact(exact());
        let result = rebalance(&problem, &current, None, &options).unwrap();
        prop_assert!(evaluate(&problem, &result.placement, &[]).unwrap().is_feasible());
        for (r, p) in result.layers.iter().zip(&plain.layers) {
            prop_assert!(r.new_max <= p.new_max, "{} > {}", r.new_max, p.new_max);
            prop_assert!(r.count.transfers <= k);
            // (The bound and the evaluator sum in other orders: equal up to rounding.)
            prop_assert!(r.lower_bound <= r.new_max * (1.0 + 1e-12));
            prop_assert_eq!(r.optimal, r.new_max <= r.lower_bound);
            if r.choice == Choice::Exact {
                prop_assert!(r.new_max < p.new_max);
            }
        }
        if enumerable(&problem) && !distinct {
            // The budgeted bound holds for the budgeted optimum (a distinct rebalance starts
            // from the separated placement, so only plain ones are compared).
            for (layer, r) in problem.layers().zip(&result.layers) {
                let cur = current.layer(layer.index());
                let within = |p: &eplb::LayerPlacement| {
                    count_transfers(problem.cluster(), cur, p).transfers <= k
                };
                if let Ok(Some(best)) = brute_force_where(&layer, &within) {
                    prop_assert!(r.lower_bound <= best.max_load * (1.0 + 1e-12));
                }
            }
        }
    }
}

#[test]
fn the_exact_mode_refuses_a_per_step_objective() {
    let loads = Loads::from_rows(&[vec![3.0, 2.0, 1.0]]).unwrap();
    let problem = Problem::new(
        loads.clone(),
        eplb::Cluster::new(4, 2),
        PolicyChoice::Global,
    )
    .unwrap();
    let current = Placement::from_phy2log(3, vec![vec![0, 1, 2, 0]]).unwrap();
    let steps = StepLoads::new(vec![loads.clone(), loads]).unwrap();
    let options = RebalanceOptions::new(MoveBudget::PerLayer(1))
        .with_steps(Objective::SumOfStepMax, steps)
        .with_exact(exact());
    let err = rebalance(&problem, &current, None, &options).unwrap_err();
    assert!(matches!(err, EplbError::InvalidBudget(_)), "{err}");
    assert!(err.to_string().contains("sum-of-step-max"), "{err}");
}

#[test]
fn the_exact_mode_keeps_within_a_byte_budget_per_layer_allocation() {
    // Two layers; 3 transfers over both. The exact mode improves each layer within the
    // transfers the allocation gave it, so the total stays within the budget.
    let rows = vec![vec![13.0, 8.0, 28.0, 35.0], vec![35.0, 28.0, 8.0, 13.0]];
    let loads = Loads::from_rows(&rows).unwrap();
    let problem = Problem::new(loads, eplb::Cluster::new(9, 3), PolicyChoice::Global).unwrap();
    let layer = vec![3, 2, 0, 1, 2, 0, 2, 1, 3];
    let current = Placement::from_phy2log(4, vec![layer.clone(), layer]).unwrap();
    for transfers in 0..4u64 {
        let budget = MoveBudget::TotalBytes(transfers * 10);
        let heuristic = RebalanceOptions::new(budget).with_expert_bytes(10);
        let plain = rebalance(&problem, &current, None, &heuristic).unwrap();
        let result = rebalance(&problem, &current, None, &heuristic.with_exact(exact())).unwrap();
        assert!(result.transfers() as u64 <= transfers);
        for (r, p) in result.layers.iter().zip(&plain.layers) {
            assert!(r.new_max <= p.new_max);
            assert!(r.count.transfers <= p.count.transfers);
            assert!(r.lower_bound <= r.new_max);
        }
    }
}

#[test]
fn the_exact_mode_finds_what_the_heuristic_misses_and_proves_it() {
    // 3 GPUs x 3 slots. One transfer (a replica of expert 3 onto GPU 1, over expert 2) and
    // count changes among what the GPUs hold reach the mean load 28 on every GPU; the
    // heuristic's steps stop at 29.67.
    let loads = Loads::from_rows(&[vec![13.0, 8.0, 28.0, 35.0]]).unwrap();
    let problem = Problem::new(loads, eplb::Cluster::new(9, 3), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(4, vec![vec![3, 2, 0, 1, 2, 0, 2, 1, 3]]).unwrap();
    let heuristic = RebalanceOptions::new(MoveBudget::PerLayer(1));
    let plain = rebalance(&problem, &current, None, &heuristic).unwrap();
    assert!(plain.layers[0].new_max > 28.0 && !plain.layers[0].optimal);
    let generous = ExactBudget::default().with_time_limit(Some(Duration::from_secs(60)));
    let result = rebalance(&problem, &current, None, &heuristic.with_exact(generous)).unwrap();
    let layer = &result.layers[0];
    assert_eq!(
        (layer.new_max, layer.choice, layer.optimal),
        (28.0, Choice::Exact, true)
    );
    assert_eq!((layer.count.transfers, layer.lower_bound), (1, 28.0));
}
