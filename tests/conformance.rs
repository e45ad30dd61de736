//! The conformance suite: written once in `eplb::testing`, run here for every built-in
//! strategy *and* their compositions ([`with_compositions`]: `hierarchical` with each leaf,
//! configured `refine`s), so a new strategy is covered as soon as it is registered.
//!
//! For random valid problems (both policies) [`check_strategies`] checks every
//! [`Property`](eplb::testing::Property): every output passes the evaluator, load is conserved,
//! results are deterministic (across runs and thread counts), a claimed bound never exceeds the
//! achieved load, another strategy's load nor the true optimum, an `optimal` claim is never
//! beaten, and no strategy beats the brute-force optimum on tiny problems (which validates the
//! evaluator's bounds too).
//!
//! Searching strategies run with a short per-layer time limit ([`LIMITS`]) so the suite stays
//! fast with every backend (good_lp's pure-Rust `microlp` only proves tiny layers); a layer
//! that stopped at the limit is checked for everything but bit-for-bit determinism, since where
//! a search stops depends on the machine's speed.

use std::time::Duration;

use eplb::strategies;
use eplb::testing::generate::{arb_problem, arb_problem_with, LoadProfile, ProblemShape};
use eplb::testing::{brute_force, check_strategies, enumerable, with_compositions, CheckOptions};
use eplb::{evaluate, solve, Problem, SolveOptions};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

/// Per-layer time limit of the searching strategies in this suite.
const LIMIT: Duration = Duration::from_millis(250);

/// Every property of every strategy and composition on `problem`.
fn conforms(problem: &Problem) -> Result<(), TestCaseError> {
    check_strategies(
        &with_compositions(),
        problem,
        &CheckOptions::default().time_limit(LIMIT),
    )
    .map_err(|failure| TestCaseError::fail(failure.to_string()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_strategy_and_composition_conforms(problem in arb_problem(8, 6)) {
        conforms(&problem)?;
    }

    #[test]
    fn every_strategy_and_composition_conforms_on_tiny_problems(problem in arb_problem(4, 3)) {
        prop_assume!(enumerable(&problem));
        conforms(&problem)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Loads from zero to huge integers and mixed magnitudes: every strategy's claims against
    /// every other strategy's verified loads (`ilp` included: its certificates are proven
    /// exactly, not to a floating-point solver's tolerance).
    #[test]
    fn every_strategy_conforms_whatever_the_loads(
        problem in arb_problem_with(ProblemShape::new(6, 4).loads(LoadProfile::Any))
    ) {
        conforms(&problem)?;
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
    let mut field: Vec<String> = with_compositions()
        .iter()
        .map(|s| s.name().to_string())
        .collect();
    let all = field.len();
    field.sort();
    field.dedup();
    assert_eq!(field.len(), all, "duplicate names among the compositions");
}

#[test]
fn brute_force_reference_knows_the_design_example() {
    // Loads (3, 3, 2) on 2 GPUs x 2 slots: the optimum replicates the *small* expert (4.0);
    // greedy replicates a 3 and reaches 4.5.
    let loads = eplb::Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
    let problem =
        eplb::Problem::new(loads, eplb::Cluster::new(4, 2), eplb::PolicyChoice::Global).unwrap();
    assert_eq!(brute_force(&problem.layer(0)).unwrap().max_load, 4.0);
    let greedy = solve(&problem, &strategies::Greedy, &SolveOptions::default()).unwrap();
    let report = evaluate(&problem, &greedy.placement, &[]).unwrap();
    assert_eq!(report.layers[0].max_load, 4.5);
    assert_eq!(report.layers[0].lower_bound, 4.0);
}
