//! Random per-step loads ([`StepLoads`]) and the problem of their total.
//!
//! ```
//! use eplb::testing::generate::{sample, ProblemShape};
//! use eplb::testing::steps::arb_step_problem;
//! let (problem, steps) = sample(&arb_step_problem(ProblemShape::new(6, 4), 3), 1);
//! assert_eq!(problem.loads(), &steps.total());
//! assert!((1..=3).contains(&steps.num_steps()));
//! ```

use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::BoxedStrategy;

use super::generate::{arb_loads, arb_problem_with, ProblemShape};
use crate::objective::StepLoads;
use crate::problem::{Loads, Policy, PolicyChoice, Problem};

/// A random problem of `shape` whose loads are the total of 1 to `max_steps` random steps,
/// with the steps (each step's loads drawn by the shape's load profile).
pub fn arb_step_problem(
    shape: ProblemShape,
    max_steps: usize,
) -> BoxedStrategy<(Problem, StepLoads)> {
    arb_problem_with(shape)
        .prop_flat_map(move |problem| {
            let (layers, experts) = (problem.num_layers(), problem.num_experts());
            let step = vec(arb_loads(shape.loads, experts), layers);
            (Just(problem), vec(step, 1..=max_steps.max(1)))
        })
        .prop_map(|(problem, rows)| {
            let steps = rows
                .iter()
                .map(|m| Loads::from_rows(m).expect("generated loads are valid"))
                .collect();
            let steps = StepLoads::new(steps).expect("generated steps share a shape");
            let policy = match problem.policy() {
                Policy::Hierarchical => PolicyChoice::Hierarchical,
                Policy::Global => PolicyChoice::Global,
            };
            let problem = Problem::new(steps.total(), *problem.cluster(), policy)
                .expect("the generated cluster fits");
            (problem, steps)
        })
        .boxed()
}
