//! The conformance suite: written once, run for every registered strategy
//! (`eplb::strategies::all()`), so a new strategy is covered as soon as it is registered.
//!
//! For random valid problems (both policies): every output passes the evaluator, load is
//! conserved, results are deterministic (across runs and thread counts), a claimed bound never
//! exceeds the achieved load nor the true optimum, an `optimal` claim is never beaten, and no
//! strategy beats the brute-force optimum (which validates the evaluator's bounds too).
//!
//! Searching strategies run with a short per-layer time limit ([`LIMITS`]) so the suite stays
//! fast with every backend (good_lp's pure-Rust `microlp` only proves tiny layers); a layer
//! that stopped at the limit is checked for everything but bit-for-bit determinism, since where
//! a search stops depends on the machine's speed.

mod common;

use common::{arb_problem, brute_force_optimum, close, enumerable};
use std::time::Duration;

use eplb::strategies::StrategyOptions;
use eplb::{evaluate, solve, strategies, PlacementStrategy, SolveOptions, SolveStatus};
use proptest::prelude::*;

/// Per-layer time limit of the searching strategies in this suite.
const LIMITS: StrategyOptions = StrategyOptions {
    time_limit: Some(Duration::from_millis(250)),
    mip_gap: None,
    threads: None,
};

/// Every registered strategy, searching ones limited by [`LIMITS`].
fn all() -> Vec<Box<dyn PlacementStrategy>> {
    strategies::all_with(&LIMITS)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_strategy_is_feasible_conserving_and_deterministic(problem in arb_problem(8, 6)) {
        for strategy in all() {
            let name = strategy.name();
            let a = solve(&problem, strategy.as_ref(), &SolveOptions { threads: Some(1) }).unwrap();
            let b = solve(&problem, strategy.as_ref(), &SolveOptions { threads: Some(2) }).unwrap();
            for l in 0..problem.num_layers() {
                let finished = a.layers[l].status != SolveStatus::TimeLimit && b.layers[l].status != SolveStatus::TimeLimit;
                if finished {
                    prop_assert_eq!(a.placement.layer(l), b.placement.layer(l), "{} is not deterministic on layer {}", name, l);
                }
            }
            let report = evaluate(&problem, &a.placement, &a.claims()).unwrap();
            prop_assert!(report.is_feasible(), "{}: {:?}", name, report.layers.iter().map(|l| &l.violations).collect::<Vec<_>>());
            for (l, layer) in report.layers.iter().enumerate() {
                let total: f64 = problem.loads().layer(l).iter().sum();
                prop_assert!(close(layer.gpu_loads.iter().sum::<f64>(), total), "{}: load not conserved on layer {}", name, l);
                prop_assert!(layer.lower_bound <= layer.max_load * (1.0 + 1e-9) + 1e-12,
                    "{}: bound {} above load {} on layer {}", name, layer.lower_bound, layer.max_load, l);
                if let Some(claimed) = layer.claimed_bound {
                    prop_assert!(claimed <= layer.max_load * (1.0 + 1e-9) + 1e-12, "{}: claimed bound above its own load", name);
                }
            }
        }
    }

    #[test]
    fn nothing_beats_the_brute_force_optimum_and_optimal_claims_hold(problem in arb_problem(4, 3)) {
        prop_assume!(enumerable(&problem));
        for l in 0..problem.num_layers() {
            let layer = problem.layer(l);
            let optimum = brute_force_optimum(&layer);
            let bounds = eplb::bounds::lower_bounds(&layer);
            prop_assert!(bounds.best() <= optimum * (1.0 + 1e-9) + 1e-12,
                "bound {:?} above the optimum {} on {:?}", bounds, optimum, layer.loads);
            for strategy in all() {
                let s = strategy.solve_layer(&layer).unwrap();
                let report = eplb::evaluate::evaluate_layer(&layer, &s.placement, s.lower_bound);
                prop_assert!(report.max_load >= optimum * (1.0 - 1e-9), "{} beat the optimum", strategy.name());
                if let Some(b) = s.lower_bound {
                    prop_assert!(b <= optimum * (1.0 + 1e-9) + 1e-12, "{} claimed bound {} above the optimum {}", strategy.name(), b, optimum);
                }
                if s.status == SolveStatus::Optimal {
                    prop_assert!(close(report.max_load, optimum), "{} claimed optimal at {} but the optimum is {}", strategy.name(), report.max_load, optimum);
                }
            }
        }
    }
}

#[test]
fn every_strategy_has_a_unique_name_and_a_description() {
    let names = strategies::names();
    let mut unique = names.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(
        unique.len(),
        names.len(),
        "duplicate strategy names: {names:?}"
    );
    for s in strategies::all() {
        assert!(
            !s.description().is_empty(),
            "{} has no description",
            s.name()
        );
        assert_eq!(strategies::by_name(s.name()).unwrap().name(), s.name());
    }
}

#[test]
fn brute_force_reference_knows_the_design_example() {
    // Loads (3, 3, 2) on 2 GPUs x 2 slots: the optimum replicates the *small* expert (4.0);
    // greedy replicates a 3 and reaches 4.5.
    let loads = eplb::Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
    let problem =
        eplb::Problem::new(loads, eplb::Cluster::new(4, 2), eplb::PolicyChoice::Global).unwrap();
    assert_eq!(brute_force_optimum(&problem.layer(0)), 4.0);
    let greedy = solve(&problem, &strategies::Greedy, &SolveOptions::default()).unwrap();
    let report = evaluate(&problem, &greedy.placement, &[]).unwrap();
    assert_eq!(report.layers[0].max_load, 4.5);
    assert_eq!(report.layers[0].lower_bound, 4.0);
}
