//! The research workbench judged itself: its generators make what they promise, its oracle
//! refuses what it cannot enumerate, and the evaluator, `compare` and `check_strategy` catch
//! strategies that lie about their answers.

use std::sync::atomic::{AtomicUsize, Ordering};

use eplb::compare::compare;
use eplb::evaluate::{evaluate_layer, violations};
use eplb::testing::generate::{
    arb_broken_phy2log, arb_phy2log, arb_problem, arb_problem_with, sample, LoadProfile,
    ProblemShape,
};
use eplb::testing::{brute_force, check_strategy, CheckOptions, Property, TooLarge};
use eplb::{
    evaluate, solve, strategies, ClaimViolation, Cluster, LayerPlacement, LayerProblem,
    LayerSolution, Loads, PlacementStrategy, PolicyChoice, Problem, Result, SolveOptions,
    SolveStatus,
};
use proptest::prelude::*;

/// Greedy's placement with a dishonest claim.
struct Liar {
    name: &'static str,
    status: SolveStatus,
    /// The claimed bound: greedy's max load times this.
    bound_factor: Option<f64>,
}

impl PlacementStrategy for Liar {
    fn name(&self) -> &str {
        self.name
    }

    fn description(&self) -> &str {
        "greedy's placement, dishonest claims"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let placement = strategies::Greedy.solve_layer(layer)?.placement;
        let load = evaluate_layer(layer, &placement, None).max_load;
        Ok(LayerSolution {
            placement,
            status: self.status,
            lower_bound: self.bound_factor.map(|f| f * load),
        })
    }
}

/// (3, 3, 2) on 2 GPUs x 2 slots: greedy reaches 4.5, the optimum (refine's) is 4.
fn design_example() -> Problem {
    let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
    Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap()
}

#[test]
fn a_bound_above_the_own_load_is_a_claim_violation() {
    let problem = design_example();
    let liar = Liar {
        name: "inflated-bound",
        status: SolveStatus::Heuristic,
        bound_factor: Some(1.5),
    };
    let solution = solve(&problem, &liar, &SolveOptions::default()).unwrap();
    let report = evaluate(&problem, &solution.placement, &solution.claims()).unwrap();
    assert!(report.is_feasible(), "a lie is not a constraint violation");
    assert!(!report.claims_hold());
    assert_eq!(
        report.layers[0].claim_violations,
        vec![ClaimViolation::BoundAboveOwnLoad {
            bound: 6.75,
            max_load: 4.5
        }]
    );
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["summary"]["claim_violations"], 1);
    assert_eq!(
        json["layers"][0]["claim_violations"][0]["kind"],
        "bound_above_own_load"
    );
    let failure = check_strategy(&liar, &problem, &CheckOptions::default()).unwrap_err();
    assert_eq!(failure.property, Property::ClaimsHold);
    assert_eq!(failure.strategy, "inflated-bound");
}

#[test]
fn honest_claims_add_nothing_to_the_json() {
    let problem = design_example();
    let solution = solve(&problem, &strategies::Greedy, &SolveOptions::default()).unwrap();
    let report = evaluate(&problem, &solution.placement, &solution.claims()).unwrap();
    assert!(report.claims_hold());
    let json = serde_json::to_value(&report).unwrap();
    assert!(json["summary"].get("claim_violations").is_none());
    assert!(json["layers"][0].get("claim_violations").is_none());
    let c = compare(
        &problem,
        &strategies::all(),
        &SolveOptions::default(),
        &|_, _| {},
    )
    .unwrap();
    let json = serde_json::to_value(&c).unwrap();
    assert!(json["rows"]
        .as_array()
        .unwrap()
        .iter()
        .all(|row| row.get("claim_violations").is_none()));
}

#[test]
fn compare_catches_a_beaten_optimal_claim_and_a_bound_above_another_load() {
    let problem = design_example();
    let liars: Vec<Box<dyn PlacementStrategy>> = vec![
        Box::new(Liar {
            name: "false-optimal",
            status: SolveStatus::Optimal,
            bound_factor: None,
        }),
        // A bound of 4.5 holds against its own load (4.5) but not against refine's 4.
        Box::new(Liar {
            name: "bound-at-own-load",
            status: SolveStatus::Heuristic,
            bound_factor: Some(1.0),
        }),
        Box::new(strategies::Refine::default()),
    ];
    let c = compare(&problem, &liars, &SolveOptions::default(), &|_, _| {}).unwrap();
    let refuted = |row: usize| -> Vec<ClaimViolation> {
        c.rows[row]
            .claim_violations
            .iter()
            .map(|v| v.violation.clone())
            .collect()
    };
    assert_eq!(
        refuted(0),
        vec![ClaimViolation::OptimalBeaten {
            max_load: 4.5,
            by: "refine".into(),
            load: 4.0
        }]
    );
    assert_eq!(
        refuted(1),
        vec![ClaimViolation::BoundAboveVerifiedLoad {
            bound: 4.5,
            by: "refine".into(),
            load: 4.0
        }]
    );
    assert!(refuted(2).is_empty());
    assert_eq!(c.rows[0].summary.claim_violations, 1);
    assert!(!c.rows[1].evaluation.claims_hold());
    assert!(c.rows[2].evaluation.claims_hold());
}

#[test]
fn check_strategy_names_the_property_a_liar_breaks() {
    let problem = design_example();
    let false_optimal = Liar {
        name: "false-optimal",
        status: SolveStatus::Optimal,
        bound_factor: None,
    };
    // Alone, the brute force refutes it; with refine as a reference, compare does first.
    let alone = check_strategy(&false_optimal, &problem, &CheckOptions::default()).unwrap_err();
    assert_eq!(alone.property, Property::OptimalIsOptimum);
    assert_eq!(alone.layer, Some(0));
    let refine = vec![strategies::by_name("refine").unwrap()];
    let judged = check_strategy(
        &false_optimal,
        &problem,
        &CheckOptions::default().references(&refine),
    )
    .unwrap_err();
    assert_eq!(judged.property, Property::ClaimsHold);
    // Without the oracle and the references nothing can refute it.
    assert!(check_strategy(
        &false_optimal,
        &problem,
        &CheckOptions::default().brute_force(false)
    )
    .is_ok());
    for s in strategies::all() {
        check_strategy(s.as_ref(), &problem, &CheckOptions::default()).unwrap();
    }
}

/// Round-robin placements shifted by a call counter: a different answer every time.
struct Restless(AtomicUsize);

impl PlacementStrategy for Restless {
    fn name(&self) -> &str {
        "restless"
    }

    fn description(&self) -> &str {
        "round-robin shifted by a call counter"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let e = layer.num_experts();
        let shift = self.0.fetch_add(1, Ordering::Relaxed);
        let phy2log = (0..layer.cluster().replicas)
            .map(|s| (s + shift) % e)
            .collect();
        Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(
            phy2log,
        )))
    }
}

/// Leaves the last expert out.
struct Forgetful;

impl PlacementStrategy for Forgetful {
    fn name(&self) -> &str {
        "forgetful"
    }

    fn description(&self) -> &str {
        "round-robin without the last expert"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let e = layer.num_experts().max(2) - 1;
        let phy2log = (0..layer.cluster().replicas).map(|s| s % e).collect();
        Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(
            phy2log,
        )))
    }
}

#[test]
fn check_strategy_catches_nondeterminism_and_infeasibility() {
    let loads = Loads::from_rows(&[vec![5.0, 1.0, 2.0, 7.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global).unwrap();
    let restless = Restless(AtomicUsize::new(0));
    let failure = check_strategy(&restless, &problem, &CheckOptions::default()).unwrap_err();
    assert_eq!(failure.property, Property::Deterministic);
    let failure = check_strategy(&Forgetful, &problem, &CheckOptions::default()).unwrap_err();
    assert_eq!(failure.property, Property::Feasible);
    assert!(failure
        .to_string()
        .starts_with("forgetful breaks `feasible` on layer 0"));
}

#[test]
fn the_brute_force_refuses_large_layers_at_once() {
    let loads = Loads::from_rows(&[vec![1.0; 64]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(72, 8), PolicyChoice::Global).unwrap();
    let err: TooLarge = brute_force(&problem.layer(0)).unwrap_err();
    assert!(err.candidates > err.limit);
    assert!(err.to_string().contains("brute-force limit"));
}

#[test]
fn sampling_is_deterministic() {
    let shape = ProblemShape::new(8, 6).loads(LoadProfile::Any);
    assert_eq!(
        sample(&arb_problem_with(shape), 3),
        sample(&arb_problem_with(shape), 3)
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn generated_placements_are_feasible_and_broken_ones_are_reported(
        (problem, valid, broken) in arb_problem(8, 6).prop_flat_map(|p| {
            let layer = p.layer(0);
            (Just(p.clone()), arb_phy2log(&layer), arb_broken_phy2log(&layer))
        })
    ) {
        let layer = problem.layer(0);
        let found = violations(&layer, &LayerPlacement::from_phy2log(valid.clone()));
        prop_assert!(found.is_empty(), "{:?} on {:?}: {:?}", valid, problem.cluster(), found);
        let found = violations(&layer, &LayerPlacement::from_phy2log(broken.phy2log.clone()));
        prop_assert!(
            found.iter().any(|v| broken.breakage.is_reported_by(v)),
            "{:?} not reported on {:?}: {:?}", broken, problem.cluster(), found
        );
        // The evaluator measures broken placements without panicking, whatever the ids.
        let report = evaluate_layer(&layer, &LayerPlacement::from_phy2log(broken.phy2log), None);
        prop_assert!(report.max_load.is_finite());
    }

    #[test]
    fn load_profiles_give_valid_problems(
        problem in arb_problem_with(ProblemShape::new(8, 6).loads(LoadProfile::Any))
    ) {
        prop_assert!(problem.loads().rows().flatten().all(|w| w.is_finite() && *w >= 0.0));
    }
}
