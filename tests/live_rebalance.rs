//! `eplb::live::rebalance`: feasible, within the budget, never worse than the current
//! placement, with an unlimited budget never worse than the fresh strategy aligned, a zero
//! budget keeps the current placement, `min_gain` keeps layers that gain too little, and bad
//! input is an error.

mod live_common;

use eplb::evaluate::max_gpu_load;
use eplb::live::{align, count_transfers, rebalance, MoveBudget, RebalanceOptions};
use eplb::strategies::Refine;
use eplb::{evaluate, solve, Cluster, EplbError, Loads, Placement, PolicyChoice, Problem};
use live_common::{arb_case, wide};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn within_budget_and_never_worse((problem, current, _new) in arb_case(wide()), k in 0usize..12) {
        let options = RebalanceOptions::new(MoveBudget::PerLayer(k));
        let result = rebalance(&problem, &current, None, &options).unwrap();
        prop_assert!(evaluate(&problem, &result.placement, &[]).unwrap().is_feasible());
        for layer in problem.layers() {
            let l = layer.index();
            let (cur, got) = (current.layer(l), result.placement.layer(l));
            let report = &result.layers[l];
            let count = count_transfers(problem.cluster(), cur, got);
            prop_assert!(count.transfers <= k);
            prop_assert_eq!(count, report.count);
            prop_assert!(max_gpu_load(&layer, got) <= max_gpu_load(&layer, cur));
            prop_assert_eq!(report.new_max, max_gpu_load(&layer, got));
            prop_assert_eq!(report.old_max, max_gpu_load(&layer, cur));
            if k == 0 {
                prop_assert_eq!(got, cur);
            }
            // The curve starts at the current placement and never rises.
            prop_assert_eq!(report.curve[0].transfers, 0);
            prop_assert!(report.curve.windows(2).all(|w| w[1].max_load <= w[0].max_load));
        }
    }

    #[test]
    fn unlimited_is_no_worse_than_refine_then_align((problem, current, _new) in arb_case(wide())) {
        let options = RebalanceOptions::new(MoveBudget::Unlimited);
        let result = rebalance(&problem, &current, Some(&Refine::default()), &options).unwrap();
        let fresh = solve(&problem, &Refine::default(), &Default::default()).unwrap().placement;
        let aligned = align(&problem, &current, &fresh).unwrap();
        for layer in problem.layers() {
            let l = layer.index();
            prop_assert!(
                max_gpu_load(&layer, result.placement.layer(l))
                    <= max_gpu_load(&layer, aligned.layer(l))
            );
        }
    }

    #[test]
    fn a_byte_budget_is_spent_over_all_layers((problem, current, _new) in arb_case(wide()), k in 0u64..20) {
        let options = RebalanceOptions::new(MoveBudget::TotalBytes(k * 10 + 9)).with_expert_bytes(10);
        let result = rebalance(&problem, &current, Some(&Refine::default()), &options).unwrap();
        prop_assert!(result.transfers() as u64 <= k);
        for layer in problem.layers() {
            let l = layer.index();
            prop_assert!(
                max_gpu_load(&layer, result.placement.layer(l))
                    <= max_gpu_load(&layer, current.layer(l))
            );
        }
        // The update order lists exactly the layers that change.
        let mut changed: Vec<usize> = (0..problem.num_layers())
            .filter(|&l| result.placement.layer(l) != current.layer(l))
            .collect();
        let mut order = result.update_order.clone();
        order.sort_unstable();
        changed.sort_unstable();
        prop_assert_eq!(order, changed);
    }
}

fn drifted() -> (Problem, Placement) {
    // The current placement balanced loads (4, 4, 4, 4); expert 0 got much busier.
    let loads = Loads::from_rows(&[vec![12.0, 4.0, 4.0, 4.0], vec![4.0, 4.0, 4.0, 4.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 4), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(
        4,
        vec![vec![0, 1, 2, 3, 0, 1, 2, 3], vec![0, 1, 2, 3, 0, 1, 2, 3]],
    )
    .unwrap();
    (problem, current)
}

#[test]
fn a_rebalance_moves_replicas_towards_the_hot_expert() {
    let (problem, current) = drifted();
    let result = rebalance(
        &problem,
        &current,
        None,
        &RebalanceOptions::new(MoveBudget::PerLayer(2)),
    )
    .unwrap();
    let layer = &result.layers[0];
    // Before: GPU 0 holds experts 0 and 1: 6 + 2 = 8. Giving expert 0 a third replica (in
    // place of one of expert 1, 2 or 3) lowers the max.
    assert_eq!(layer.old_max, 8.0);
    assert!(layer.new_max < 8.0, "{layer:?}");
    assert!(layer.count.transfers <= 2 && layer.count.transfers >= 1);
    // Layer 1's loads did not change: nothing to gain, nothing moves.
    assert_eq!(result.placement.layer(1), current.layer(1));
    assert_eq!(result.update_order, vec![0]);
}

#[test]
fn min_gain_keeps_layers_that_gain_too_little() {
    let (problem, current) = drifted();
    let options = RebalanceOptions::new(MoveBudget::Unlimited).with_min_gain(0.99);
    let result = rebalance(&problem, &current, Some(&Refine::default()), &options).unwrap();
    assert_eq!(result.placement, current);
    assert_eq!(result.transfers(), 0);
    assert!(result.update_order.is_empty());
}

#[test]
fn bad_input_is_an_error() {
    let (problem, current) = drifted();
    let options = RebalanceOptions::new(MoveBudget::PerLayer(3));
    let cases = [
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 3, 0, 1, 2, 3]]).unwrap(),
            "layers",
        ),
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 3]; 2]).unwrap(),
            "slots",
        ),
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 3, 0, 1, 2, 7]; 2]).unwrap(),
            "valid ids",
        ),
        (
            Placement::from_phy2log(4, vec![vec![0, 1, 2, 0, 0, 1, 2, 1]; 2]).unwrap(),
            "expert 3 has no replica",
        ),
        (
            Placement::from_phy2log(5, vec![vec![0, 1, 2, 3, 4, 1, 2, 3]; 2]).unwrap(),
            "5 experts",
        ),
    ];
    for (bad, what) in cases {
        let err = rebalance(&problem, &bad, None, &options).unwrap_err();
        assert!(matches!(err, EplbError::InvalidPlacement(_)), "{err}");
        assert!(err.to_string().contains(what), "{err}");
    }
    for gain in [-0.1, f64::NAN, f64::INFINITY] {
        let bad = RebalanceOptions::new(MoveBudget::Unlimited).with_min_gain(gain);
        let err = rebalance(&problem, &current, None, &bad).unwrap_err();
        assert!(matches!(err, EplbError::InvalidBudget(_)), "{err}");
    }
    let zero = RebalanceOptions::new(MoveBudget::TotalBytes(100)).with_expert_bytes(0);
    assert!(matches!(
        rebalance(&problem, &current, None, &zero),
        Err(EplbError::InvalidBudget(_))
    ));
}
