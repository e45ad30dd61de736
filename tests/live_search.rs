//! The budgeted search on clusters larger than the number of GPUs it trades with per step:
//! within the budget at every point of its curve, a curve whose max load never rises, never
//! worse than the current placement, and the policy's group rules, distinct replicas and
//! failed GPUs kept.

mod live_common;

use eplb::evaluate::{evaluate_with, max_gpu_load, Requirements};
use eplb::live::{count_transfers, rebalance, LiveGpus, MoveBudget, RebalanceOptions};
use eplb::strategies::distinct::check_distinct_possible;
use eplb::testing::generate::ProblemShape;
use eplb::Problem;
use live_common::arb_case;
use proptest::prelude::*;

/// Up to 10 experts on up to 20 GPUs of 2 slots, up to 4 nodes: more GPUs than a step trades
/// with.
fn many_gpus() -> ProblemShape {
    let mut shape = ProblemShape::new(10, 20).nodes(4, 2);
    shape.max_slots_per_gpu = 2;
    shape.max_layers = 2;
    shape
}

/// The budget's checks on every layer: the curve starts at the current placement, stays
/// within `k` transfers and never rises; the answer is never worse than the current
/// placement and its transfers are the report's.
fn check_layers(
    problem: &Problem,
    current: &eplb::Placement,
    result: &eplb::live::Rebalance,
    k: usize,
) -> Result<(), TestCaseError> {
    for layer in problem.layers() {
        let l = layer.index();
        let report = &result.layers[l];
        prop_assert_eq!(report.curve[0].transfers, 0);
        prop_assert!(report.curve.iter().all(|p| p.transfers <= k));
        prop_assert!(report
            .curve
            .windows(2)
            .all(|w| w[1].max_load <= w[0].max_load));
        prop_assert!(report.new_max <= report.old_max);
        let count = count_transfers(
            problem.cluster(),
            current.layer(l),
            result.placement.layer(l),
        );
        prop_assert!(count.transfers <= k);
        prop_assert_eq!(count, report.count);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn the_search_keeps_the_budget_and_the_rules(
        (problem, current, _new) in arb_case(many_gpus()),
        k in 0usize..10,
        distinct in any::<bool>(),
    ) {
        prop_assume!(!distinct || problem.layers().all(|l| check_distinct_possible(&l).is_ok()));
        // A distinct current placement, so that no forced separation is counted.
        let rules = Requirements::new().with_distinct_replicas(distinct);
        prop_assume!(evaluate_with(&problem, &current, &[], rules).unwrap().is_feasible());
        let options = RebalanceOptions::new(MoveBudget::PerLayer(k)).with_distinct_replicas(distinct);
        let result = rebalance(&problem, &current, None, &options).unwrap();
        let evaluation = evaluate_with(&problem, &result.placement, &[], rules).unwrap();
        prop_assert!(evaluation.is_feasible(), "{:?}", evaluation.layers[0].violations);
        check_layers(&problem, &current, &result, k)?;
        for layer in problem.layers() {
            let l = layer.index();
            prop_assert!(
                max_gpu_load(&layer, result.placement.layer(l))
                    <= max_gpu_load(&layer, current.layer(l))
            );
        }
    }

    #[test]
    fn the_search_places_on_live_gpus_only(
        (problem, current, _new) in arb_case(many_gpus()),
        k in 1usize..10,
        dead in 0usize..20,
    ) {
        let gpus = problem.cluster().gpus;
        let live = LiveGpus::with_failed(gpus, &[dead % gpus]);
        prop_assume!(live.is_ok());
        let live = live.unwrap();
        let result = rebalance(
            &problem,
            &current,
            None,
            &RebalanceOptions::new(MoveBudget::PerLayer(k)).with_live(live.clone()),
        );
        // Too few live slots for the experts is an error, not a placement.
        prop_assume!(result.is_ok());
        let result = result.unwrap();
        // Judged on the live cluster the rebalance used (its policy, or the global fallback).
        let cluster = result.live.as_ref().unwrap();
        let evaluation = cluster.evaluate(&problem, &result.placement).unwrap();
        prop_assert!(evaluation.is_feasible(), "{:?}", evaluation.layers[0].violations);
        for report in &result.layers {
            prop_assert!(report.curve.iter().all(|p| p.transfers <= k));
            prop_assert!(report.curve.windows(2).all(|w| w[1].max_load <= w[0].max_load));
            prop_assert!(report.new_max <= report.old_max);
        }
    }
}
