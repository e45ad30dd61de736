use super::*;
use crate::packing::Regions;

fn greedy_like(weights: &[f64], bins: usize, s: usize) -> Vec<Vec<usize>> {
    // Round-robin of items, then extra copies of item 0: valid but poor.
    let n = weights.len();
    let mut copies = vec![vec![0; bins]; n];
    for slot in 0..bins * s {
        let item = if slot < n { slot } else { 0 };
        copies[item][slot % bins] += 1;
    }
    copies
}

/// The MILP on `backend`, started from `copies` (copies per item and bin).
fn milp_from(problem: &PackingProblem, copies: &[Vec<usize>]) -> Milp {
    Milp::new(Backend::MicroLp).with_start(problem.slots_of(copies))
}

#[test]
fn finds_the_optimum_of_the_design_examples() {
    let w = vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0];
    let problem = PackingProblem::new(w.clone(), 4, 3).unwrap();
    let start = greedy_like(&w, 4, 3);
    let out = milp_from(&problem, &start).solve(&problem).unwrap();
    assert_eq!(out.stop, StopReason::Optimal);
    assert!((out.value - 11.5).abs() < 1e-9, "{}", out.value);
    assert!(problem.check_slots(&out.slots).is_ok());
}

#[test]
fn regions_are_respected() {
    // Two regions of two bins, groups of two items.
    let w = vec![10.0, 1.0, 9.0, 2.0, 1.0, 1.0, 1.0, 1.0];
    let problem = PackingProblem::new(w, 4, 3)
        .unwrap()
        .with_regions(Regions {
            regions: 2,
            group_size: 2,
        })
        .unwrap();
    // Groups 0,1 in region 0 (bins 0,1), groups 2,3 in region 1 (bins 2,3).
    let start = vec![
        vec![1, 1, 0, 0],
        vec![1, 0, 0, 0],
        vec![0, 1, 0, 0],
        vec![1, 1, 0, 0],
        vec![0, 0, 1, 1],
        vec![0, 0, 1, 1],
        vec![0, 0, 1, 0],
        vec![0, 0, 0, 1],
    ];
    problem.check_solution(&start).unwrap();
    let out = milp_from(&problem, &start).solve(&problem).unwrap();
    problem.check_slots(&out.slots).unwrap();
    assert_eq!(out.stop, StopReason::Optimal);
    assert!(out.value <= problem.max_load(&start));
}

#[test]
fn rejects_bad_incumbents_and_options() {
    let problem = PackingProblem::new(vec![1.0, 2.0], 2, 1).unwrap();
    let bad = vec![vec![1, 1], vec![0, 0]];
    assert!(matches!(
        milp_from(&problem, &bad).solve(&problem),
        Err(SolverError::InvalidModel(_))
    ));
    let good = vec![vec![1, 0], vec![0, 1]];
    assert!(milp_from(&problem, &good)
        .with_gap(-1.0)
        .solve(&problem)
        .is_err());
}

#[test]
fn all_zero_weights_are_trivially_optimal() {
    let problem = PackingProblem::new(vec![0.0; 3], 2, 2).unwrap();
    let start = vec![vec![1, 1], vec![1, 0], vec![0, 1]];
    let out = milp_from(&problem, &start).solve(&problem).unwrap();
    assert_eq!(out.stop, StopReason::Optimal);
    assert_eq!(out.value, 0.0);
}

#[test]
fn without_a_start_the_trivial_packing_is_used() {
    let problem = PackingProblem::new(vec![3.0, 3.0, 2.0], 2, 2).unwrap();
    let out = Milp::new(Backend::MicroLp).solve(&problem).unwrap();
    assert_eq!(out.stop, StopReason::Optimal);
    assert_eq!(out.value, 4.0);
}
