//! The `exact` strategy: known optima, agreement with brute force on random tiny problems
//! (both policies), valid bounds under a time limit, and non-integer loads. Every placement is
//! re-checked by the evaluator.
//! Agreement with the `ilp` strategy (HiGHS with `--features highs`, `microlp` otherwise):
//! where both prove optimality they find the same load, and each one's bound certifies the
//! other's placement.

use std::path::Path;
use std::time::{Duration, Instant};

use eplb::evaluate::evaluate_layer;
use eplb::formats::read_loads;
use eplb::strategies::{Certified, Exact, Greedy, Ilp, Refine};
use eplb::testing::{brute_force, close, enumerable, generate::arb_problem};
use eplb::{
    evaluate, solve, Cluster, LayerBudget, LayerPlacement, LayerProblem, LayerSolution, Loads,
    PlacementStrategy, PolicyChoice, Problem, SolveOptions, SolveStatus,
};
use eplb_solvers::packing::{
    CertifiedPacking, ExactEngine, PackingProblem, StopReason, WithDeadline, WithGap, WithStart,
    WithThreads,
};
use eplb_solvers::SolverError;
use proptest::prelude::*;

/// Solves a layer and checks the answer with the evaluator; returns the solution and its load.
fn solve_checked(exact: &Exact, layer: &LayerProblem<'_>) -> (LayerSolution, f64) {
    let s = exact.solve_layer(layer).unwrap();
    let report = evaluate_layer(layer, &s.placement, s.lower_bound);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    let bound = s.lower_bound.expect("exact always reports a bound");
    assert!(
        bound <= report.max_load,
        "bound {bound} above load {}",
        report.max_load
    );
    if s.status == SolveStatus::Optimal {
        // The bound is the exact optimum rounded down; the load is summed in f64.
        assert!(
            close(bound, report.max_load),
            "an optimal answer has no gap: {bound} vs {}",
            report.max_load
        );
    }
    (s, report.max_load)
}

fn readme() -> Loads {
    Loads::from_rows(&[
        vec![
            90., 132., 40., 61., 104., 165., 39., 4., 73., 56., 183., 86.,
        ],
        vec![
            20., 107., 104., 64., 19., 197., 187., 157., 172., 86., 16., 27.,
        ],
    ])
    .unwrap()
}

#[test]
fn readme_layers_have_the_known_optima() {
    let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
    for (policy, expected) in [
        (PolicyChoice::Global, [136.0, 172.0]),
        (PolicyChoice::Hierarchical, [151.0, 179.5]),
    ] {
        let problem = Problem::new(readme(), cluster, policy).unwrap();
        for layer in problem.layers() {
            let (s, load) = solve_checked(&Exact::default(), &layer);
            assert_eq!(
                s.status,
                SolveStatus::Optimal,
                "{policy:?} layer {}",
                layer.index()
            );
            assert_eq!(
                load,
                expected[layer.index()],
                "{policy:?} layer {}",
                layer.index()
            );
        }
    }
}

#[test]
fn design_examples_have_the_known_optima() {
    for (loads, replicas, gpus, expected) in [
        (vec![3.0, 3.0, 2.0], 4, 2, 4.0),
        (vec![9., 8., 7., 6., 5., 4., 3., 2., 1., 1.], 12, 4, 11.5),
    ] {
        let loads = Loads::from_rows(&[loads]).unwrap();
        let problem =
            Problem::new(loads, Cluster::new(replicas, gpus), PolicyChoice::Global).unwrap();
        let (s, load) = solve_checked(&Exact::default(), &problem.layer(0));
        assert_eq!(s.status, SolveStatus::Optimal);
        assert_eq!(load, expected);
    }
}

#[test]
fn dyadic_loads_are_solved_exactly() {
    // (3, 3, 2) halved: still exact after scaling by 2.
    let loads = Loads::from_rows(&[vec![1.5, 1.5, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
    let (s, load) = solve_checked(&Exact::default(), &problem.layer(0));
    assert_eq!(s.status, SolveStatus::Optimal);
    assert_eq!(load, 2.0);
}

#[test]
fn other_real_loads_give_valid_bounds_but_no_optimality_claim() {
    let loads = Loads::from_rows(&[vec![0.3, 0.3, 0.2, 0.1]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 2), PolicyChoice::Global).unwrap();
    let layer = problem.layer(0);
    let (s, load) = solve_checked(&Exact::default(), &layer);
    assert_eq!(s.status, SolveStatus::TimeLimit);
    let optimum = brute_force(&layer).unwrap().max_load;
    assert!(s.lower_bound.unwrap() <= optimum);
    // The rounding is far finer than the loads: the answer is still the optimum.
    assert!(close(load, optimum), "{load} vs {optimum}");
}

#[test]
fn a_search_stopped_at_once_still_answers_with_a_valid_bound() {
    // ESFT law layer 19, global: not provable before the first clock check.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/esft-vanilla-lite_esft-law.json");
    let loads = read_loads(&path, Default::default()).unwrap().loads;
    let problem = Problem::new(loads, Cluster::new(80, 8), PolicyChoice::Global).unwrap();
    let layer = problem.layer(19);
    let exact = Exact::default();
    let budget = || LayerBudget::new().with_deadline(Some(Instant::now() + Duration::ZERO));
    let (s, load) = solve_checked(&exact, &layer.with_budget(budget()));
    assert_eq!(s.status, SolveStatus::TimeLimit);
    let average = layer.total_load() / 8.0;
    assert!(
        s.lower_bound.unwrap() >= average,
        "the average bound is always there"
    );
    let greedy = eplb::strategies::Greedy.solve_layer(&layer).unwrap();
    assert!(load <= evaluate_layer(&layer, &greedy.placement, None).max_load);
}

#[test]
fn a_search_stopped_at_once_is_never_worse_than_refine_on_large_layers() {
    // More than 64 slots: the search starts from refine's placement, so even with no time at
    // all its answer is at most refine's, under both policies.
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/esft-vanilla-lite_esft-law.json");
    let loads = read_loads(&path, Default::default()).unwrap().loads;
    let exact = Exact::default();
    let budget = || LayerBudget::new().with_deadline(Some(Instant::now() + Duration::ZERO));
    for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
        let cluster = Cluster::new(80, 8).with_nodes(2).with_groups(8);
        let problem = Problem::new(loads.clone(), cluster, policy).unwrap();
        for layer in problem.layers().take(4) {
            let (_, load) = solve_checked(&exact, &layer.with_budget(budget()));
            let refine = eplb::strategies::Refine::default()
                .solve_layer(&layer)
                .unwrap();
            let refine_load = evaluate_layer(&layer, &refine.placement, None).max_load;
            assert!(
                load <= refine_load * (1.0 + 1e-12),
                "{policy:?} layer {}: {load} vs refine {refine_load}",
                layer.index()
            );
        }
    }
}

#[test]
fn esft_layers_are_feasible_with_valid_bounds_under_both_policies() {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/esft-vanilla-lite_esft-intent.json");
    let loads = read_loads(&path, Default::default()).unwrap().loads;
    let exact = Exact::default();
    let budget = || LayerBudget::new().with_deadline(Some(Instant::now() + Duration::from_secs(2)));
    for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
        let cluster = Cluster::new(80, 8).with_nodes(2).with_groups(8);
        let problem = Problem::new(loads.clone(), cluster, policy).unwrap();
        for layer in problem.layers().take(3) {
            let (s, load) = solve_checked(&exact, &layer.with_budget(budget()));
            let bounds = eplb::bounds::lower_bounds(&layer);
            // Never worse than the evaluator's own bound allows, and never above the optimum
            // that the evaluator's bound sits below.
            assert!(s.lower_bound.unwrap() <= load);
            assert!(load >= bounds.best() * (1.0 - 1e-12));
        }
    }
}

#[test]
fn a_gap_stops_early_without_claiming_optimality_unless_reached() {
    let loads = Loads::from_rows(&[vec![9., 8., 7., 6., 5., 4., 3., 2., 1., 1.]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(12, 4), PolicyChoice::Global).unwrap();
    let exact = Exact::default();
    let budget = || {
        LayerBudget::new()
            .with_deadline(Some(Instant::now() + Duration::from_secs(10)))
            .with_gap(Some(0.5))
    };
    let (s, load) = solve_checked(&exact, &problem.layer(0).with_budget(budget()));
    assert!(load <= s.lower_bound.unwrap() * 1.5);
    if s.status == SolveStatus::Optimal {
        assert_eq!(load, 11.5);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 160, ..ProptestConfig::default() })]

    /// On tiny problems of both policies, `exact` proves optimality and its load is the
    /// brute-force optimum.
    #[test]
    fn exact_matches_brute_force(problem in arb_problem(5, 4)) {
        prop_assume!(enumerable(&problem));
        for layer in problem.layers() {
            let (s, load) = solve_checked(&Exact::default(), &layer);
            let optimum = brute_force(&layer).unwrap().max_load;
            prop_assert_eq!(s.status, SolveStatus::Optimal, "{:?} {:?}", layer.policy(), layer.loads());
            prop_assert!(close(load, optimum), "{:?} {:?}: {} vs brute force {}", layer.policy(), layer.loads(), load, optimum);
        }
    }
}

/// `exact` and `ilp` (two independent methods) on one layer: each bound is at most the other's
/// load, and when both claim optimality the loads are equal.
fn exact_and_ilp_agree(layer: &LayerProblem<'_>) -> Result<(), TestCaseError> {
    let (e, e_load) = solve_checked(&Exact::default(), layer);
    let budget = LayerBudget::new().with_deadline(Some(Instant::now() + Duration::from_secs(2)));
    let ilp = Ilp::default()
        .solve_layer(&layer.with_budget(budget))
        .unwrap();
    let report = evaluate_layer(layer, &ilp.placement, ilp.lower_bound);
    prop_assert!(report.violations.is_empty(), "{:?}", report.violations);
    let (e_bound, i_bound) = (e.lower_bound.unwrap(), ilp.lower_bound.unwrap());
    prop_assert!(
        e_bound <= report.max_load * (1.0 + 1e-9),
        "exact's bound {e_bound} above ilp's load {}",
        report.max_load
    );
    prop_assert!(
        i_bound <= e_load * (1.0 + 1e-9),
        "ilp's bound {i_bound} above exact's load {e_load}"
    );
    if e.status == SolveStatus::Optimal && ilp.status == SolveStatus::Optimal {
        prop_assert!(
            close(e_load, report.max_load),
            "exact {e_load} vs ilp {}",
            report.max_load
        );
    }
    Ok(())
}

#[test]
fn exact_and_ilp_agree_on_the_known_instances() {
    let readme_cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
    let mut problems = vec![
        Problem::new(readme(), readme_cluster, PolicyChoice::Global).unwrap(),
        Problem::new(readme(), readme_cluster, PolicyChoice::Hierarchical).unwrap(),
        Problem::new(
            Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap(),
            Cluster::new(4, 2),
            PolicyChoice::Global,
        )
        .unwrap(),
    ];
    problems.push(
        Problem::new(
            Loads::from_rows(&[vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0]]).unwrap(),
            Cluster::new(12, 4),
            PolicyChoice::Global,
        )
        .unwrap(),
    );
    for problem in &problems {
        for layer in problem.layers() {
            exact_and_ilp_agree(&layer).unwrap();
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn exact_and_ilp_agree_on_random_tiny_problems(problem in arb_problem(5, 3)) {
        for layer in problem.layers() {
            exact_and_ilp_agree(&layer)?;
        }
    }
}

/// ESFT law layer 19 under the global policy (80 slots on 8 GPUs): not provable at once.
fn law_layer_19() -> Problem {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/esft-vanilla-lite_esft-law.json");
    let loads = read_loads(&path, Default::default()).unwrap().loads;
    let row = loads.layer(19).to_vec();
    Problem::new(
        Loads::from_rows(&[row]).unwrap(),
        Cluster::new(80, 8),
        PolicyChoice::Global,
    )
    .unwrap()
}

#[test]
fn a_gap_stop_reports_gap_reached() {
    // The seed (refine) is within 50% of the bound but not proven optimal; the runner's
    // options stop the search at once and allow the gap.
    let problem = law_layer_19();
    let options = SolveOptions::new()
        .with_threads(Some(1))
        .with_time_limit(Some(Duration::ZERO))
        .with_mip_gap(Some(0.5));
    let solution = solve(&problem, &Exact::default(), &options).unwrap();
    let layer = &solution.layers[0];
    assert_eq!(layer.status, SolveStatus::GapReached);
    assert_eq!(layer.status.to_string(), "gap_reached");
    let report = evaluate(&problem, &solution.placement, &solution.claims()).unwrap();
    assert!(report.layers[0].max_load <= layer.lower_bound.unwrap() * 1.5);
    // Without the gap the same stop is a time limit.
    let options = options.with_mip_gap(None);
    let solution = solve(&problem, &Exact::default(), &options).unwrap();
    assert_eq!(solution.layers[0].status, SolveStatus::TimeLimit);
}

#[test]
fn any_strategy_may_seed_and_an_optimal_seed_stops_the_search_with_a_proof() {
    // The seed returns the placement `exact` proved optimal: the seeded search proves it at
    // once although its deadline has already passed.
    let problem = law_layer_19();
    let layer = problem.layer(0);
    let (optimal, optimum) = solve_checked(&Exact::default(), &layer);
    assert_eq!(optimal.status, SolveStatus::Optimal);
    let seeded = Exact::default().with_seed(Fixed(optimal.placement));
    let now = LayerBudget::new().with_deadline(Some(Instant::now()));
    let (s, load) = solve_checked(&seeded, &layer.with_budget(now));
    assert_eq!(s.status, SolveStatus::Optimal);
    assert_eq!(load, optimum);
}

/// A strategy that always answers the same placement.
struct Fixed(LayerPlacement);

impl PlacementStrategy for Fixed {
    fn name(&self) -> &str {
        "fixed"
    }

    fn description(&self) -> &str {
        "always the same placement"
    }

    fn solve_layer(&self, _: &LayerProblem<'_>) -> eplb::Result<LayerSolution> {
        Ok(LayerSolution::heuristic(self.0.clone()))
    }
}

/// An engine that ignores its start and returns the trivial packing, stopped by its limit,
/// with the bound `known` (the test's knowledge, e.g. the true optimum; never above the
/// packing's value).
#[derive(Debug, Clone, Default)]
struct BadEngine {
    known: f64,
}

impl ExactEngine for BadEngine {
    fn solve(&self, problem: &PackingProblem) -> Result<CertifiedPacking, SolverError> {
        let slots = problem.trivial_packing();
        let value = problem.peak_of_slots(&slots);
        Ok(CertifiedPacking {
            value,
            slots,
            lower_bound: self.known.min(value),
            stop: StopReason::LimitReached,
        })
    }
}

impl WithDeadline for BadEngine {
    fn with_deadline(self, _: Option<Instant>) -> Self {
        self
    }
}

impl WithGap for BadEngine {
    fn with_gap(self, _: f64) -> Self {
        self
    }
}

impl WithStart for BadEngine {
    fn with_start(self, _: Vec<usize>) -> Self {
        self
    }
}

impl WithThreads for BadEngine {
    fn with_threads(self, _: Option<usize>) -> Self {
        self
    }
}

#[test]
fn the_adapter_never_returns_worse_than_its_seed_or_greedy() {
    let loads = Loads::from_rows(&[vec![8.0, 1.0, 1.0, 2.0, 5.0, 3.0]]).unwrap();
    for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
        let cluster = Cluster::new(12, 4).with_nodes(2).with_groups(2);
        let problem = Problem::new(loads.clone(), cluster, policy).unwrap();
        let layer = problem.layer(0);
        let load_of = |s: &dyn PlacementStrategy| {
            evaluate_layer(&layer, &s.solve_layer(&layer).unwrap().placement, None).max_load
        };
        let bad =
            Certified::from_engine("bad", "returns the trivial packing", BadEngine::default());
        let seed = Refine::default();
        let seeded = bad.clone().with_seed(seed);
        assert!(load_of(&seeded) <= load_of(&seed));
        assert!(load_of(&bad) <= load_of(&Greedy));
        assert_eq!(
            seeded.solve_layer(&layer).unwrap().status,
            SolveStatus::TimeLimit
        );
    }
}

/// Issue 15, defect 8: when the engine stops at its limit and the never-worse rule picks
/// greedy's placement, which meets the engine's bound, the layer was reported `time_limit`
/// with a zero gap. The bound proves that placement optimal.
#[test]
fn a_fallback_meeting_the_engines_bound_is_optimal() {
    // Loads (4, 4, 1, 1) on 2 GPUs x 2 slots: greedy reaches the optimum 5.0 ({4, 1} twice),
    // the trivial packing ({4, 4}, {1, 1}) does not.
    let loads = Loads::from_rows(&[vec![4.0, 4.0, 1.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
    let layer = problem.layer(0);
    let stopped = |known| Certified::from_engine("stopped", "stopped", BadEngine { known });
    let solution = stopped(5.0).solve_layer(&layer).unwrap();
    let load = evaluate_layer(&layer, &solution.placement, None).max_load;
    assert_eq!(load, 5.0);
    assert_eq!(solution.lower_bound, Some(5.0));
    assert_eq!(solution.status, SolveStatus::Optimal);
    // A bound below the load leaves the limit's status.
    let weaker = stopped(4.5).solve_layer(&layer).unwrap();
    assert_eq!(weaker.status, SolveStatus::TimeLimit);
}
