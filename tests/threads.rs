//! `SolveOptions::threads`: the runner's schedule (the calling thread alone, or with helper
//! threads taking layers from a shared counter) never changes the answer.

use std::thread::sleep;
use std::time::Duration;

use eplb::strategies::{Greedy, Refine};
use eplb::{
    solve, Cluster, EplbError, LayerProblem, LayerSolution, PlacementStrategy, PolicyChoice,
    Problem, SolveOptions,
};

/// A strategy that takes at least a millisecond per layer (so the runner wakes its helper
/// threads) and fails on the layers in `fail`.
struct Slow<'a> {
    inner: &'a dyn PlacementStrategy,
    fail: &'a [usize],
}

impl PlacementStrategy for Slow<'_> {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn description(&self) -> &str {
        "a strategy slowed down to a millisecond per layer"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> eplb::Result<LayerSolution> {
        sleep(Duration::from_millis(1));
        if self.fail.contains(&layer.index()) {
            return Err(EplbError::NoStrategies {
                list: String::new(),
                available: String::new(),
            });
        }
        self.inner.solve_layer(layer)
    }
}

fn problems() -> Vec<Problem> {
    let loads = eplb::synthetic::lognormal_loads(24, 64, 0.8, 1 << 20, 11);
    let cluster = Cluster::new(96, 16).with_nodes(2).with_groups(8);
    [PolicyChoice::Global, PolicyChoice::Hierarchical]
        .into_iter()
        .map(|policy| Problem::new(loads.clone(), cluster, policy).unwrap())
        .collect()
}

/// Slow layers (helpers woken) and fast ones (the calling thread alone): the placements and
/// claims of 2, 3 and 4 threads are those of one thread.
#[test]
fn every_thread_count_gives_the_one_thread_answer() {
    let refine = Refine::default();
    for problem in problems() {
        for inner in [&Greedy as &dyn PlacementStrategy, &refine] {
            let slow = Slow { inner, fail: &[] };
            for strategy in [inner, &slow as &dyn PlacementStrategy] {
                let one = solve(
                    &problem,
                    strategy,
                    &SolveOptions::new().with_threads(Some(1)),
                )
                .unwrap();
                for threads in [Some(2), Some(3), Some(4), None] {
                    let many = solve(
                        &problem,
                        strategy,
                        &SolveOptions::new().with_threads(threads),
                    )
                    .unwrap();
                    assert_eq!(
                        one.placement,
                        many.placement,
                        "{} {threads:?}",
                        inner.name()
                    );
                    assert_eq!(one.claims(), many.claims(), "{} {threads:?}", inner.name());
                    assert_eq!(many.layers.len(), problem.num_layers());
                }
            }
        }
    }
}

/// With helpers at work, the error reported is still the lowest failing layer's.
#[test]
fn the_lowest_failing_layer_is_reported_with_any_thread_count() {
    let problem = &problems()[0];
    let slow = Slow {
        inner: &Greedy,
        fail: &[17, 5, 9],
    };
    for threads in [Some(1), Some(2), Some(4)] {
        let err = solve(problem, &slow, &SolveOptions::new().with_threads(threads)).unwrap_err();
        assert!(
            matches!(err, EplbError::StrategyFailed { layer: 5, .. }),
            "{threads:?}: {err}"
        );
    }
}
