//! Failed GPUs: placements and rebalances use only live GPUs, every expert keeps a live
//! replica, plans never send from or to a dead GPU, dead slots are `-1`, and a failed-GPU
//! list that does not fit is an error.

mod live_common;

use eplb::live::{
    evaluate_live, place_on_live, rebalance, LiveGpus, MoveBudget, RebalanceOptions, TransferPlan,
    DEAD_SLOT_FILLER,
};
use eplb::strategies::Refine;
use eplb::{Cluster, EplbError, Loads, Placement, PolicyChoice, Problem, Violation};
use live_common::{arb_case, wide};
use proptest::prelude::*;

/// The GPUs whose bit is set in `mask`, keeping enough live slots for every expert.
fn failed_of(problem: &Problem, mask: u32) -> Vec<usize> {
    let c = problem.cluster();
    let mut failed: Vec<usize> = (0..c.gpus).filter(|g| mask >> g & 1 == 1).collect();
    while (c.gpus - failed.len()) * c.slots_per_gpu() < problem.num_experts() {
        failed.pop();
    }
    failed
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn rebalancing_around_failed_gpus_uses_live_gpus_only(
        (problem, current, _new) in arb_case(wide()), mask in any::<u32>(), k in 0usize..8,
    ) {
        let failed = failed_of(&problem, mask);
        let live = LiveGpus::with_failed(problem.cluster().gpus, &failed);
        prop_assume!(live.is_ok());
        let live = live.unwrap();
        let options = RebalanceOptions::new(MoveBudget::PerLayer(k)).with_live(live.clone());
        let result = rebalance(&problem, &current, Some(&Refine::default()), &options).unwrap();
        // Judged under the policy the rebalance used on the live GPUs: it falls back to the
        // global one (and says so) when a group lost every live replica on its node.
        let evaluation = match &result.live {
            Some(cluster) => {
                let planned = live.live_cluster(&problem).unwrap();
                prop_assert!(cluster.policy == planned.policy || cluster.fallback.is_some());
                cluster.evaluate(&problem, &result.placement).unwrap()
            }
            None => evaluate_live(&problem, &result.placement, &live).unwrap(),
        };
        prop_assert!(evaluation.is_feasible(), "{:?}", evaluation.layers[0].violations);
        let s = problem.cluster().slots_per_gpu();
        if !failed.is_empty() {
            let cluster = result.live.as_ref().unwrap();
            for (l, row) in cluster.phy2log_with_dead(&result.placement).iter().enumerate() {
                for (slot, &e) in row.iter().enumerate() {
                    let dead = failed.contains(&(slot / s));
                    prop_assert_eq!(e < 0, dead);
                    if dead {
                        prop_assert_eq!(result.placement.layer(l).phy2log()[slot], DEAD_SLOT_FILLER);
                    }
                }
            }
        }
        let plan = TransferPlan::with_live(&problem, &current, &result.placement, 1, &live).unwrap();
        for lp in &plan.layers {
            prop_assert_eq!(lp.rounds, lp.rounds_lower_bound);
            for m in &lp.moves {
                prop_assert!(live.is_live(m.to_gpu));
                prop_assert!(m.from_gpu.is_none_or(|g| live.is_live(g)));
            }
        }
    }

    #[test]
    fn placing_on_live_gpus_is_feasible_there((problem, _c, _n) in arb_case(wide()), mask in any::<u32>()) {
        let failed = failed_of(&problem, mask);
        let live = LiveGpus::with_failed(problem.cluster().gpus, &failed);
        prop_assume!(live.is_ok());
        let live = live.unwrap();
        let placed = place_on_live(&problem, &Refine::default(), &live, &Default::default()).unwrap();
        prop_assert!(placed.evaluation.is_feasible());
        prop_assert!(evaluate_live(&problem, &placed.placement, &live).unwrap().is_feasible());
        prop_assert_eq!(placed.live.cluster.gpus, live.live_count());
    }
}

#[test]
fn an_expert_only_on_a_dead_gpu_is_missing() {
    let loads = Loads::from_rows(&[vec![1.0; 4]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global).unwrap();
    let placement = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3, 0, 1]]).unwrap();
    let live = LiveGpus::with_failed(3, &[1]).unwrap();
    let evaluation = evaluate_live(&problem, &placement, &live).unwrap();
    let violations = &evaluation.layers[0].violations;
    assert!(
        violations.contains(&Violation::MissingExpert { expert: 2 }),
        "{violations:?}"
    );
    assert!(
        violations.contains(&Violation::MissingExpert { expert: 3 }),
        "{violations:?}"
    );
}

#[test]
fn failed_gpu_lists_that_do_not_fit_are_errors() {
    let loads = Loads::from_rows(&[vec![1.0; 4]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3, 0, 1]]).unwrap();
    let message = LiveGpus::with_failed(3, &[3]).unwrap_err().to_string();
    assert!(message.contains("GPU ids are 0..3"), "{message}");
    let message = LiveGpus::with_failed(3, &[0, 1, 2])
        .unwrap_err()
        .to_string();
    assert!(message.contains("at least one"), "{message}");
    // One live GPU has 2 slots: not enough for 4 experts.
    let live = LiveGpus::with_failed(3, &[0, 1]).unwrap();
    let options = RebalanceOptions::new(MoveBudget::Unlimited).with_live(live.clone());
    let err = rebalance(&problem, &current, None, &options).unwrap_err();
    assert!(matches!(err, EplbError::InvalidFailedGpus(_)), "{err}");
    assert!(err.to_string().contains("cannot hold 4 experts"), "{err}");
    let err = place_on_live(&problem, &Refine::default(), &live, &Default::default()).unwrap_err();
    assert!(matches!(err, EplbError::InvalidFailedGpus(_)), "{err}");
    // A mask of another cluster.
    let other = LiveGpus::with_failed(4, &[0]).unwrap();
    assert!(matches!(
        other.live_cluster(&problem),
        Err(EplbError::InvalidFailedGpus(_))
    ));
}
