use super::*;

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

#[test]
fn finds_the_optimum_of_the_design_examples() {
    let w = vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0];
    let problem = PackingProblem::new(w.clone(), 4, 3);
    let start = greedy_like(&w, 4, 3);
    let out = solve(&problem, &start, Backend::MicroLp, &MilpOptions::default()).unwrap();
    assert!(out.proven_optimal);
    assert!((out.max_load - 11.5).abs() < 1e-9, "{}", out.max_load);
    assert!(problem.check_solution(&out.copies).is_ok());
}

#[test]
fn regions_are_respected() {
    // Two regions of two bins, groups of two items.
    let w = vec![10.0, 1.0, 9.0, 2.0, 1.0, 1.0, 1.0, 1.0];
    let problem = PackingProblem::new(w, 4, 3).with_regions(Regions {
        regions: 2,
        group_size: 2,
    });
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
    let out = solve(&problem, &start, Backend::MicroLp, &MilpOptions::default()).unwrap();
    problem.check_solution(&out.copies).unwrap();
    assert!(out.proven_optimal);
    assert!(out.max_load <= problem.max_load(&start));
}

#[test]
fn rejects_bad_incumbents_and_options() {
    let problem = PackingProblem::new(vec![1.0, 2.0], 2, 1);
    let bad = vec![vec![1, 1], vec![0, 0]];
    assert!(matches!(
        solve(&problem, &bad, Backend::MicroLp, &MilpOptions::default()),
        Err(SolverError::InvalidModel(_))
    ));
    let good = vec![vec![1, 0], vec![0, 1]];
    let options = MilpOptions {
        mip_gap: Some(-1.0),
        ..MilpOptions::default()
    };
    assert!(solve(&problem, &good, Backend::MicroLp, &options).is_err());
}

#[test]
fn all_zero_weights_are_trivially_optimal() {
    let problem = PackingProblem::new(vec![0.0; 3], 2, 2);
    let start = vec![vec![1, 1], vec![1, 0], vec![0, 1]];
    let out = solve(&problem, &start, Backend::MicroLp, &MilpOptions::default()).unwrap();
    assert!(out.proven_optimal);
    assert_eq!(out.max_load, 0.0);
}
