//! `rebalance` with per-step objectives and distinct replicas: the per-step objective is what
//! the budgeted choices minimise and report, never above keeping the current placement (nor,
//! without a budget, above the mean objective's answer); with distinct replicas no GPU ends
//! up with two replicas of one expert, whatever the current placement.

mod live_common;

use eplb::evaluate::{evaluate_with, Requirements};
use eplb::live::{rebalance, MoveBudget, RebalanceOptions, TransferPlan};
use eplb::objective::{evaluate_steps, Objective, StepLoads};
use eplb::strategies::distinct::check_distinct_possible;
use eplb::strategies::Refine;
use eplb::testing::close;
use eplb::testing::generate::{arb_phy2log, ProblemShape};
use eplb::testing::steps::arb_step_problem;
use eplb::{Cluster, EplbError, Loads, Placement, PlacementStrategy, PolicyChoice, Problem};
use live_common::{arb_case, wide};
use proptest::prelude::*;

/// A per-step problem with a feasible current placement.
fn arb_step_case() -> BoxedStrategy<(Problem, StepLoads, Placement)> {
    let mut shape = ProblemShape::new(10, 6);
    shape.max_slots_per_gpu = 4;
    arb_step_problem(shape, 4)
        .prop_flat_map(|(problem, steps)| {
            let layers: Vec<_> = problem.layers().map(|l| arb_phy2log(&l)).collect();
            (Just(problem), Just(steps), layers)
        })
        .prop_map(|(problem, steps, rows)| {
            let current = Placement::from_phy2log(problem.num_experts(), rows).unwrap();
            (problem, steps, current)
        })
        .boxed()
}

fn budget_of(k: Option<usize>) -> MoveBudget {
    k.map_or(MoveBudget::Unlimited, MoveBudget::PerLayer)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn a_per_step_objective_is_minimised_and_reported(
        (problem, steps, current) in arb_step_case(),
        k in proptest::option::of(0usize..6),
        worst in any::<bool>(),
        with_fresh in any::<bool>(),
    ) {
        let objective = if worst { Objective::WorstStep } else { Objective::SumOfStepMax };
        let refine = Refine::default();
        let fresh = with_fresh.then_some(&refine as &dyn PlacementStrategy);
        let options = RebalanceOptions::new(budget_of(k)).with_steps(objective, steps.clone());
        let result = rebalance(&problem, &current, fresh, &options).unwrap();
        prop_assert_eq!(result.objective, objective);
        let before = evaluate_steps(&problem, &steps, &current).unwrap();
        let after = evaluate_steps(&problem, &steps, &result.placement).unwrap();
        for (l, r) in result.layers.iter().enumerate() {
            let (old, new) = (before.layers[l].value(objective), after.layers[l].value(objective));
            // The report is the objective's value, never worse than the current placement.
            prop_assert!(close(r.old_max, old) && close(r.new_max, new), "{r:?} {old} {new}");
            prop_assert!(new <= old);
            prop_assert!(r.lower_bound <= new * (1.0 + 1e-9), "{} > {new}", r.lower_bound);
            if let Some(k) = k {
                prop_assert!(r.count.transfers <= k);
            }
            let values = r.objective_values.as_ref().unwrap();
            prop_assert_eq!(values.len(), r.curve.len() + usize::from(r.fresh.is_some()));
            prop_assert!(close(values[0], old));
        }
        if k.is_none() {
            // Without a budget, no layer is above what the mean objective's rebalance gives.
            let mean = RebalanceOptions::new(MoveBudget::Unlimited);
            let plain = rebalance(&problem, &current, fresh, &mean).unwrap();
            let plain = evaluate_steps(&problem, &steps, &plain.placement).unwrap();
            for (a, b) in after.layers.iter().zip(&plain.layers) {
                let (a, b) = (a.value(objective), b.value(objective));
                prop_assert!(a <= b || close(a, b), "{a} > {b}");
            }
        }
    }

    #[test]
    fn distinct_replicas_hold_whatever_the_current_placement(
        (problem, current, _new) in arb_case(wide()),
        k in proptest::option::of(0usize..6),
        with_fresh in any::<bool>(),
    ) {
        prop_assume!(problem.layers().all(|l| check_distinct_possible(&l).is_ok()));
        let refine = Refine::default();
        let fresh = with_fresh.then_some(&refine as &dyn PlacementStrategy);
        let options = RebalanceOptions::new(budget_of(k)).with_distinct_replicas(true);
        let result = rebalance(&problem, &current, fresh, &options).unwrap();
        let distinct = Requirements::new().with_distinct_replicas(true);
        let evaluation = evaluate_with(&problem, &result.placement, &[], distinct).unwrap();
        prop_assert!(evaluation.is_feasible(), "{:?}", evaluation.layers[0].violations);
        for r in &result.layers {
            prop_assert!(r.new_max <= r.old_max);
        }
        let plan = TransferPlan::new(&problem, &current, &result.placement, 1).unwrap();
        for lp in &plan.layers {
            prop_assert_eq!(lp.rounds, lp.rounds_lower_bound);
        }
    }
}

#[test]
fn a_distinct_current_placement_stays_distinct_and_the_search_still_helps() {
    // Expert 0 is hot; the current placement holds it once, distinct. The search must give it
    // replicas on other GPUs, never a second one on GPU 0.
    let loads = Loads::from_rows(&[vec![12.0, 2.0, 2.0, 2.0, 1.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 4), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(6, vec![vec![0, 1, 2, 3, 4, 5, 1, 2]]).unwrap();
    let options = RebalanceOptions::new(MoveBudget::PerLayer(3)).with_distinct_replicas(true);
    let result = rebalance(&problem, &current, None, &options).unwrap();
    let layer = &result.layers[0];
    assert!(layer.new_max < layer.old_max, "{layer:?}");
    let phy2log = result.placement.layer(0).phy2log();
    for gpu in phy2log.chunks(2) {
        assert_ne!(gpu[0], gpu[1], "{phy2log:?}");
    }
}

#[test]
fn options_that_cannot_be_met_are_errors() {
    let loads = Loads::from_rows(&[vec![3.0, 2.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 2), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(3, vec![vec![0, 1, 2, 0, 0, 1, 2, 0]]).unwrap();
    // 4 slots per GPU, 3 experts: no distinct placement exists.
    let options = RebalanceOptions::new(MoveBudget::Unlimited).with_distinct_replicas(true);
    let err = rebalance(&problem, &current, None, &options).unwrap_err();
    assert!(
        matches!(err, EplbError::DistinctReplicasImpossible { .. }),
        "{err}"
    );
    // Per-step loads of another shape.
    let steps = StepLoads::new(vec![Loads::from_rows(&[vec![1.0, 1.0]]).unwrap()]).unwrap();
    let options =
        RebalanceOptions::new(MoveBudget::Unlimited).with_steps(Objective::WorstStep, steps);
    let err = rebalance(&problem, &current, None, &options).unwrap_err();
    assert!(matches!(err, EplbError::InvalidStepLoads { .. }), "{err}");
}
