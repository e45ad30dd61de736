//! Loads over time: the per-step objectives (`eplb::objective`), their evaluation and the
//! per-step search, and the readers that keep the step axis.
//!
//! The target of issue 13: under a per-step objective, the sum over steps of the step max is
//! never above the mean objective's placement's.

use std::path::Path;

use eplb::evaluate::{evaluate_with, max_gpu_load, Requirements};
use eplb::formats::{loads::loads_from_json, ReadOptions};
use eplb::objective::{evaluate_steps, optimise, Objective, StepLoads};
use eplb::strategies::{by_name, DistinctReplicas};
use eplb::testing::generate::{LoadProfile, ProblemShape};
use eplb::testing::steps::arb_step_problem;
use eplb::{evaluate, solve, Cluster, EplbError, Loads, Placement, PolicyChoice, Problem};
use proptest::prelude::*;

fn shape() -> ProblemShape {
    ProblemShape::new(8, 5)
}

/// The mean objective's placement of `strategy` and its per-step improvement under `objective`.
fn mean_and_per_step(
    problem: &Problem,
    steps: &StepLoads,
    strategy: &str,
    objective: Objective,
    distinct: bool,
) -> (Placement, Placement) {
    let mut s = by_name(strategy).unwrap();
    if distinct {
        s = Box::new(DistinctReplicas::new(s));
    }
    let mean = solve(problem, s.as_ref(), &Default::default())
        .unwrap()
        .placement;
    let per_step = optimise(problem, steps, &mean, objective, distinct).unwrap();
    (mean, per_step)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The issue's target, layer by layer, for both per-step objectives and several strategies;
    /// the per-step placement stays feasible (and distinct when asked) and keeps the replica
    /// counts.
    #[test]
    fn per_step_objective_is_never_above_the_mean_placement(
        (problem, steps) in arb_step_problem(shape().loads(LoadProfile::Any), 4),
        strategy in prop::sample::select(vec!["greedy", "refine", "hierarchical"]),
        worst in any::<bool>(),
        distinct in any::<bool>(),
    ) {
        let objective = if worst { Objective::WorstStep } else { Objective::SumOfStepMax };
        let possible = problem.layers().all(|l| {
            eplb::strategies::distinct::check_distinct_possible(&l).is_ok()
        });
        prop_assume!(!distinct || possible);
        let (mean, per_step) = mean_and_per_step(&problem, &steps, strategy, objective, distinct);
        let before = evaluate_steps(&problem, &steps, &mean).unwrap();
        let after = evaluate_steps(&problem, &steps, &per_step).unwrap();
        for (b, a) in before.layers.iter().zip(&after.layers) {
            prop_assert!(a.value(objective) <= b.value(objective), "layer {}: {a:?} vs {b:?}", a.layer);
        }
        if objective == Objective::SumOfStepMax {
            prop_assert!(after.summary.sum_step_max <= before.summary.sum_step_max);
        }
        let requirements = Requirements::new().with_distinct_replicas(distinct);
        let report = evaluate_with(&problem, &per_step, &[], requirements).unwrap();
        prop_assert!(report.is_feasible(), "{:?}", report.layers);
        for (m, p) in mean.layers().iter().zip(per_step.layers()) {
            prop_assert_eq!(m.logcnt(problem.num_experts()), p.logcnt(problem.num_experts()));
        }
    }

    /// What the step report says, recomputed from the evaluator's GPU loads step by step.
    #[test]
    fn step_report_agrees_with_the_evaluator(
        (problem, steps) in arb_step_problem(shape(), 4),
    ) {
        let placement = solve(&problem, by_name("greedy").unwrap().as_ref(), &Default::default())
            .unwrap()
            .placement;
        let report = evaluate_steps(&problem, &steps, &placement).unwrap();
        let n = steps.num_steps() as f64;
        for (layer, r) in problem.layers().zip(&report.layers) {
            let lp = placement.layer(layer.index());
            let maxes: Vec<f64> = (0..steps.num_steps())
                .map(|s| {
                    let step = Problem::new(steps.step(s).clone(), *problem.cluster(), PolicyChoice::Global)
                        .unwrap();
                    max_gpu_load(&step.layer(layer.index()), lp)
                })
                .collect();
            prop_assert_eq!(r.sum_step_max, maxes.iter().sum::<f64>());
            prop_assert_eq!(r.worst_step_max, maxes.iter().copied().fold(0.0, f64::max));
            prop_assert_eq!(maxes[r.worst_step], r.worst_step_max);
            prop_assert!((r.mean_step_max - r.sum_step_max / n).abs() <= 1e-12 * r.sum_step_max.max(1.0));
            // The mean objective is the max of the total loads over the number of steps; the
            // mean of the step maxes is at least the max of the means, and at most the worst.
            let total_max = max_gpu_load(&layer, lp);
            prop_assert!((r.mean_max - total_max / n).abs() <= 1e-9 * total_max.max(1.0));
            prop_assert!(r.mean_max <= r.mean_step_max * (1.0 + 1e-12) + 1e-12);
            prop_assert!(r.mean_step_max <= r.worst_step_max * (1.0 + 1e-12) + 1e-12);
        }
    }
}

#[test]
fn one_step_objectives_all_equal_the_max_load() {
    let loads =
        Loads::from_rows(&[vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0]]).unwrap();
    let steps = StepLoads::new(vec![loads.clone()]).unwrap();
    let problem = Problem::new(loads, Cluster::new(12, 4), PolicyChoice::Global).unwrap();
    let greedy = solve(
        &problem,
        by_name("greedy").unwrap().as_ref(),
        &Default::default(),
    )
    .unwrap();
    let r = &evaluate_steps(&problem, &steps, &greedy.placement)
        .unwrap()
        .layers[0];
    let max = evaluate(&problem, &greedy.placement, &[]).unwrap().layers[0].max_load;
    assert_eq!(max, 12.0);
    for o in Objective::ALL {
        assert_eq!(r.value(o), max, "{o}");
    }
}

#[test]
fn the_per_step_search_finds_the_phase_split() {
    // Experts 0-1 busy in step 0, 2-3 in step 1: the mean is flat, so any placement is optimal
    // for it, but only one that splits each busy pair over the GPUs serves both steps well.
    let steps = StepLoads::new(vec![
        Loads::from_rows(&[vec![4.0, 4.0, 0.0, 0.0]]).unwrap(),
        Loads::from_rows(&[vec![0.0, 0.0, 4.0, 4.0]]).unwrap(),
    ])
    .unwrap();
    let problem = Problem::new(steps.total(), Cluster::new(4, 2), PolicyChoice::Global).unwrap();
    let bad = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3]]).unwrap();
    assert_eq!(
        evaluate_steps(&problem, &steps, &bad).unwrap().layers[0].sum_step_max,
        16.0
    );
    for objective in [Objective::SumOfStepMax, Objective::WorstStep] {
        let good = optimise(&problem, &steps, &bad, objective, false).unwrap();
        let r = &evaluate_steps(&problem, &steps, &good).unwrap().layers[0];
        assert_eq!(
            (r.sum_step_max, r.worst_step_max),
            (8.0, 4.0),
            "{objective}"
        );
    }
    assert_eq!(
        optimise(&problem, &steps, &bad, Objective::Mean, false).unwrap(),
        bad
    );
}

#[test]
fn bad_step_input_is_a_clear_error() {
    let a = Loads::from_rows(&[vec![1.0, 2.0]]).unwrap();
    let b = Loads::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
    let err = StepLoads::new(vec![a.clone(), b]).unwrap_err();
    assert!(matches!(err, EplbError::InvalidStepLoads { .. }));
    assert!(
        err.to_string().contains("step 1 is 1x3 but step 0 is 1x2"),
        "{err}"
    );
    assert!(StepLoads::new(vec![]).is_err());
    // Steps of another shape than the problem.
    let steps = StepLoads::new(vec![a]).unwrap();
    let other = Loads::from_rows(&[vec![1.0, 2.0, 3.0]]).unwrap();
    let problem = Problem::new(other, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
    let p = Placement::from_phy2log(3, vec![vec![0, 1, 2, 0]]).unwrap();
    assert!(matches!(
        evaluate_steps(&problem, &steps, &p),
        Err(EplbError::InvalidStepLoads { .. })
    ));
    assert!(matches!(
        optimise(&problem, &steps, &p, Objective::SumOfStepMax, false),
        Err(EplbError::InvalidStepLoads { .. })
    ));
    let err = "mean-max".parse::<Objective>().unwrap_err();
    assert!(err.to_string().contains("sum-of-step-max"), "{err}");
    for o in Objective::ALL {
        assert_eq!(o.name().parse::<Objective>().unwrap(), o);
    }
}

#[test]
fn json_keeps_the_step_axis_and_drops_the_dense_layers_of_every_step() {
    let text = r#"{"logical_count": [
        [[0, 0], [1, 2], [3, 4]],
        [[0, 0], [5, 6], [7, 8.5]]
    ]}"#;
    let f = loads_from_json(Path::new("s.json"), text, ReadOptions::default()).unwrap();
    assert_eq!(f.first_layer, 1);
    assert_eq!(
        f.loads,
        Loads::from_rows(&[vec![6.0, 8.0], vec![10.0, 12.5]]).unwrap()
    );
    let steps = f.steps.expect("a step axis");
    assert_eq!(steps.num_steps(), 2);
    assert_eq!(steps.layer_steps(1), vec![vec![3.0, 4.0], vec![7.0, 8.5]]);
    assert_eq!(steps.total(), f.loads);
    // Two dimensions: no steps.
    let f = loads_from_json(Path::new("l.json"), "[[1, 2]]", ReadOptions::default()).unwrap();
    assert!(f.steps.is_none());
    // A negative value inside one step is refused even when the sum over steps is positive.
    let text = r#"{"loads": [[[5, 1]], [[-1, 1]]]}"#;
    let err = loads_from_json(Path::new("n.json"), text, ReadOptions::default()).unwrap_err();
    assert!(err.to_string().contains("n.json"), "{err}");
}
