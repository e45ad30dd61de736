//! Shared generators of the live-rebalancing tests: a random problem with two random
//! feasible placements (the current one and a new one).
#![allow(dead_code)]

use eplb::testing::generate::{arb_phy2log, arb_problem_with, LoadProfile, ProblemShape};
use eplb::{Placement, Problem};
use proptest::prelude::*;

/// A problem with a current and a new feasible placement of every layer.
pub fn arb_case(shape: ProblemShape) -> BoxedStrategy<(Problem, Placement, Placement)> {
    arb_problem_with(shape)
        .prop_flat_map(|problem| {
            let layers = |p: &Problem| -> Vec<BoxedStrategy<Vec<usize>>> {
                p.layers().map(|l| arb_phy2log(&l)).collect()
            };
            let (current, new) = (layers(&problem), layers(&problem));
            (Just(problem), current, new)
        })
        .prop_map(|(problem, current, new)| {
            let e = problem.num_experts();
            (
                problem,
                Placement::from_phy2log(e, current).expect("layers"),
                Placement::from_phy2log(e, new).expect("layers"),
            )
        })
        .boxed()
}

/// Small shapes: up to `max_gpus` GPUs, 3 slots each, 2 nodes.
pub fn small(max_experts: usize, max_gpus: usize) -> ProblemShape {
    ProblemShape::new(max_experts, max_gpus).loads(LoadProfile::SmallIntegers)
}

/// The GPU of every slot's replica, as sorted multisets per GPU.
pub fn gpu_contents(placement: &[usize], slots_per_gpu: usize) -> Vec<Vec<usize>> {
    placement
        .chunks(slots_per_gpu)
        .map(|c| {
            let mut v = c.to_vec();
            v.sort_unstable();
            v
        })
        .collect()
}

/// Up to 12 experts on up to 8 GPUs with up to 5 slots each: layers with many transfers.
pub fn wide() -> ProblemShape {
    let mut shape = ProblemShape::new(12, 8);
    shape.max_slots_per_gpu = 5;
    shape
}
