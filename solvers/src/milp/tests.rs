use super::*;
use std::time::{Duration, Instant};

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

#[test]
fn a_backend_failure_ends_the_run_like_a_limit() {
    let failed = Err(SolverError::Backend("microlp: Singular matrix".into()));
    let outcome = backend::failure_as_limit(failed).unwrap();
    assert_eq!(outcome.status, RawStatus::Stopped);
    assert!(outcome.values.is_none() && outcome.dual_bound.is_none());
    // Other errors are the caller's, not the solver's: they stay errors.
    let invalid = Err(SolverError::InvalidModel("bad gap".into()));
    assert!(backend::failure_as_limit(invalid).is_err());
}

/// A backend run that proved an optimum of 1 (one column at 1).
fn optimal_run() -> RawOutcome {
    RawOutcome {
        values: Some(vec![1.0]),
        status: RawStatus::Optimal,
        dual_bound: Some(1.0),
    }
}

#[test]
fn a_backend_run_that_overruns_its_deadline_is_abandoned_as_stopped() {
    // A run that would answer "optimal" only after 30 s: at a 20 ms deadline the caller gets a
    // stopped run (no solution, no bound) instead of waiting.
    // (Its own gate: the 30 s run stays abandoned, and must not hold up the other tests.)
    static GATE: backend::Abandoned = backend::Abandoned::new(1);
    let deadline = Some(Instant::now() + Duration::from_millis(20));
    let outcome = backend::run_gated(&GATE, deadline, || {
        std::thread::sleep(Duration::from_secs(30));
        Ok(optimal_run())
    })
    .unwrap();
    assert_eq!(outcome.status, RawStatus::Stopped);
    assert!(outcome.values.is_none());
    // Without a deadline the run is waited for.
    let outcome = backend::run_until(None, || Ok(RawOutcome::stopped())).unwrap();
    assert_eq!(outcome.status, RawStatus::Stopped);
}

/// Issue 15: a microlp run abandoned at its layer's deadline ran on for up to seconds (microlp
/// checks its clock every 1000 pivots), and every later layer could abandon one more, so
/// abandoned threads piled up and took the cores. The gate keeps at most its limit of them
/// alive: a new run waits for room until its own deadline.
#[test]
fn abandoned_backend_runs_are_capped() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::mpsc;
    static GATE: backend::Abandoned = backend::Abandoned::new(1);
    static SECOND_RAN: AtomicBool = AtomicBool::new(false);
    let soon = || Some(Instant::now() + Duration::from_millis(10));
    // A run that ends only when released: abandoned at its deadline, still alive.
    let (release, released) = mpsc::channel::<()>();
    let first = backend::run_gated(&GATE, soon(), move || {
        let _ = released.recv();
        Ok(RawOutcome::stopped())
    })
    .unwrap();
    assert_eq!(first.status, RawStatus::Stopped);
    assert_eq!(GATE.alive(), 1);
    // The gate is full until the next deadline: the next run does not start at all.
    let second = backend::run_gated(&GATE, soon(), || {
        SECOND_RAN.store(true, Ordering::SeqCst);
        Ok(RawOutcome::stopped())
    })
    .unwrap();
    assert_eq!(second.status, RawStatus::Stopped);
    assert!(
        !SECOND_RAN.load(Ordering::SeqCst),
        "a run started past the cap"
    );
    // Once the abandoned run ends, a waiting run gets its room and its answer.
    release.send(()).unwrap();
    let later = Some(Instant::now() + Duration::from_secs(60));
    let third = backend::run_gated(&GATE, later, || Ok(optimal_run())).unwrap();
    assert_eq!(third.status, RawStatus::Optimal);
    assert_eq!(GATE.alive(), 0);
}

/// The instance (45 loads, 2 GPUs of 25 slots): the backend's optimum 10403844.5 is
/// beaten by 10403825.5 (found by `refine-deep`), so the MILP's tolerance-level claim must not
/// leave the engine.
#[test]
fn no_floating_point_optimum_or_bound_leaves_the_engine() {
    let w: Vec<f64> = [
        214459, 777712, 58795, 97911, 109700, 165508, 276979, 440384, 117243, 561136, 773364,
        462228, 376415, 198966, 408890, 935799, 887110, 914687, 728005, 245215, 485645, 89574,
        915654, 917415, 166709, 894066, 277449, 345587, 925639, 305808, 70237, 970323, 747911,
        716031, 546279, 653147, 488480, 521502, 693143, 68338, 378633, 200605, 150399, 60382,
        468185,
    ]
    .iter()
    .map(|&x| x as f64)
    .collect();
    let problem = PackingProblem::new(w, 2, 25).unwrap();
    let out = Milp::new(Backend::MicroLp)
        .with_deadline(Some(Instant::now() + Duration::from_millis(200)))
        .solve(&problem)
        .unwrap();
    problem.check_slots(&out.slots).unwrap();
    let better_known = 10403825.5;
    assert!(
        out.lower_bound <= better_known,
        "bound {} above a verified load {better_known}",
        out.lower_bound
    );
    if out.stop == StopReason::Optimal {
        assert!(
            out.value <= better_known,
            "optimal claimed at {}",
            out.value
        );
    }
}
