//! Distinct replicas (`DistinctReplicas`, `--distinct-replicas`): no GPU holds two replicas of
//! one expert. Every built-in strategy and composition honours it through the wrapper (the
//! conformance checks with the distinct requirement), or fails with a clear error when the
//! cluster cannot; without it nothing changes.

use std::time::Duration;

use eplb::evaluate::{evaluate_with, shared_gpus, Requirements};
use eplb::strategies::distinct::check_distinct_possible;
use eplb::strategies::{by_name, DistinctReplicas};
use eplb::testing::generate::arb_problem;
use eplb::testing::{check_strategies, with_compositions, CheckOptions};
use eplb::{
    evaluate, solve, Cluster, EplbError, Loads, PlacementStrategy, PolicyChoice, Problem, Violation,
};
use proptest::prelude::*;

fn distinct() -> Requirements {
    Requirements::new().with_distinct_replicas(true)
}

fn possible(problem: &Problem) -> bool {
    problem
        .layers()
        .all(|l| check_distinct_possible(&l).is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every conformance property, plus the distinct requirement, for every strategy and
    /// composition wrapped.
    #[test]
    fn every_wrapped_strategy_conforms_and_is_distinct(problem in arb_problem(8, 6)) {
        prop_assume!(possible(&problem));
        let field: Vec<Box<dyn PlacementStrategy>> = with_compositions()
            .into_iter()
            .map(|s| Box::new(DistinctReplicas::new(s)) as Box<dyn PlacementStrategy>)
            .collect();
        let options = CheckOptions::default()
            .time_limit(Duration::from_millis(250))
            .requirements(distinct());
        check_strategies(&field, &problem, &options)
            .map_err(|failure| TestCaseError::fail(failure.to_string()))?;
    }

    /// A strategy whose answer is distinct already is left exactly as it is (claims included).
    #[test]
    fn a_distinct_answer_is_kept(problem in arb_problem(8, 6)) {
        prop_assume!(possible(&problem));
        for name in ["greedy", "refine", "hierarchical"] {
            let inner = solve(&problem, by_name(name).unwrap().as_ref(), &Default::default()).unwrap();
            let wrapped = DistinctReplicas::new(by_name(name).unwrap());
            let outer = solve(&problem, &wrapped, &Default::default()).unwrap();
            for (l, (a, b)) in inner.layers.iter().zip(&outer.layers).enumerate() {
                let layer = problem.layer(l);
                if shared_gpus(&layer, inner.placement.layer(l)).is_empty() {
                    prop_assert_eq!(inner.placement.layer(l), outer.placement.layer(l));
                    prop_assert_eq!((a.status, a.lower_bound), (b.status, b.lower_bound));
                }
            }
        }
    }

    /// Impossible clusters fail with the named error, never a panic.
    #[test]
    fn impossible_clusters_are_a_clear_error(problem in arb_problem(6, 4)) {
        prop_assume!(!possible(&problem));
        let wrapped = DistinctReplicas::new(by_name("refine").unwrap());
        let err = solve(&problem, &wrapped, &Default::default()).unwrap_err();
        let EplbError::StrategyFailed { source, .. } = err else {
            return Err(TestCaseError::fail(format!("unexpected {err}")));
        };
        let is_impossible = matches!(*source, EplbError::DistinctReplicasImpossible { .. });
        prop_assert!(is_impossible, "{}", source);
    }
}

#[test]
fn the_evaluator_reports_shared_gpus_only_when_asked() {
    let loads = Loads::from_rows(&[vec![4.0, 1.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global).unwrap();
    let p = eplb::Placement::from_phy2log(3, vec![vec![0, 0, 0, 1, 2, 1]]).unwrap();
    assert!(evaluate(&problem, &p, &[]).unwrap().is_feasible());
    let report = evaluate_with(&problem, &p, &[], distinct()).unwrap();
    assert_eq!(report.summary.violations, 2);
    assert_eq!(report.summary.feasible_layers, 0);
    assert_eq!(
        report.layers[0].violations,
        vec![
            Violation::SharedGpu {
                gpu: 0,
                expert: 0,
                replicas: 3
            },
            Violation::SharedGpu {
                gpu: 1,
                expert: 1,
                replicas: 2
            },
        ]
    );
    assert_eq!(
        report.layers[0].violations[0].to_string(),
        "GPU 0 holds 3 replicas of expert 0, distinct replicas allow one"
    );
}

#[test]
fn a_hot_expert_with_more_replicas_than_gpus_gives_slots_away() {
    // Greedy gives expert 0 five replicas on two GPUs: at most two can stay.
    let loads = Loads::from_rows(&[vec![100.0, 1.0, 1.0, 1.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(8, 2), PolicyChoice::Global).unwrap();
    let greedy = solve(
        &problem,
        by_name("greedy").unwrap().as_ref(),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(greedy.placement.layer(0).logcnt(5)[0], 4);
    let wrapped = DistinctReplicas::new(by_name("greedy").unwrap());
    let s = solve(&problem, &wrapped, &Default::default()).unwrap();
    let report = evaluate_with(&problem, &s.placement, &s.claims(), distinct()).unwrap();
    assert!(report.is_feasible(), "{:?}", report.layers[0].violations);
    assert_eq!(s.placement.layer(0).logcnt(5)[0], 2);
    // Total 104 over two GPUs: 52 is the optimum, reached by {0, a, b, c} and {0, d, b, c}
    // with b and c split in halves.
    assert_eq!(report.layers[0].max_load, 52.0);
}

#[test]
fn distinct_replicas_on_the_esft_traces() {
    // R = 128 on 16 GPUs: 8 slots per GPU, 64 experts; both policies (4 nodes, 8 groups).
    for trace in [
        "esft-vanilla-lite_esft-intent",
        "esft-vanilla-lite_esft-law",
    ] {
        let path = format!("{}/tests/data/{trace}.json", env!("CARGO_MANIFEST_DIR"));
        let file = eplb::formats::read_loads(path.as_ref(), Default::default()).unwrap();
        for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
            let cluster = Cluster::new(128, 16).with_nodes(4).with_groups(8);
            let problem = Problem::new(file.loads.clone(), cluster, policy).unwrap();
            for name in ["greedy", "refine", "hierarchical"] {
                let wrapped = DistinctReplicas::new(by_name(name).unwrap());
                let s = solve(&problem, &wrapped, &Default::default()).unwrap();
                let report =
                    evaluate_with(&problem, &s.placement, &s.claims(), distinct()).unwrap();
                assert!(report.is_feasible(), "{trace} {policy:?} {name}");
                assert_eq!(report.summary.colocated_replicas, 0);
            }
        }
    }
}
