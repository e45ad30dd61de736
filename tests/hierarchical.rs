//! The hierarchical decomposition: greedy sub-solvers on DeepSeek's two-level tree reproduce
//! `greedy` exactly; the bound-minimising split attains the node-level bound; deeper trees keep
//! whole groups inside every subtree; plug-ins that misbehave give errors, not panics.

mod common;

use common::golden_cases;
use eplb::bounds::lower_bounds;
use eplb::evaluate::evaluate_layer;
use eplb::split::{ChildCapacity, SplitProblem};
use eplb::strategies::{BalancedSplit, Greedy, GreedySplit, GroupSplitter, Hierarchical};
use eplb::testing::generate::arb_problem;
use eplb::topology::Topology;
use eplb::{
    Cluster, EplbError, LayerPlacement, LayerProblem, LayerSolution, Loads, PlacementStrategy,
    Policy, PolicyChoice, Problem, SolveStatus,
};
use proptest::prelude::*;

#[test]
fn greedy_sub_solvers_reproduce_greedy_on_every_golden_case() {
    let h = Hierarchical::two_level(GreedySplit, Greedy);
    let cases = golden_cases();
    assert!(cases
        .iter()
        .any(|(_, p)| p.policy() == Policy::Hierarchical && p.cluster().nodes > 1));
    for (name, problem) in cases {
        for layer in problem.layers() {
            assert_eq!(
                h.solve_layer(&layer).unwrap(),
                Greedy.solve_layer(&layer).unwrap(),
                "{name}, layer {}",
                layer.index()
            );
        }
    }
}

fn two_level_split(layer: &LayerProblem<'_>) -> (Vec<usize>, Vec<ChildCapacity>) {
    let c = layer.cluster();
    let child = ChildCapacity {
        groups: c.groups / c.nodes,
        gpus: c.gpus / c.nodes,
        slots: c.replicas / c.nodes,
    };
    ((0..c.groups).collect(), vec![child; c.nodes])
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn greedy_sub_solvers_reproduce_greedy(problem in arb_problem(12, 8)) {
        let h = Hierarchical::two_level(GreedySplit, Greedy);
        for layer in problem.layers() {
            prop_assert_eq!(h.solve_layer(&layer).unwrap(), Greedy.solve_layer(&layer).unwrap());
        }
    }

    /// The balanced split and the node bound are both the minimum over all group splits of the
    /// largest node value: check them against enumerating every split.
    #[test]
    fn balanced_split_and_node_bound_are_the_best_split(problem in arb_problem(12, 8)) {
        prop_assume!(problem.policy() == Policy::Hierarchical);
        for layer in problem.layers() {
            let (groups, children) = two_level_split(&layer);
            let p = SplitProblem { layer: &layer, groups: &groups, children: &children };
            let best = every_split(groups.len(), children.len())
                .iter()
                .map(|s| p.value(s))
                .fold(f64::INFINITY, f64::min);
            let balanced = p.value(&BalancedSplit::default().split(&p).unwrap());
            let greedy = p.value(&GreedySplit.split(&p).unwrap());
            let node = lower_bounds(&layer).node.unwrap();
            prop_assert!(balanced <= greedy);
            prop_assert!((balanced - best).abs() <= 1e-9 * best.max(1.0), "split {} vs best {}", balanced, best);
            prop_assert!((node - best).abs() <= 1e-9 * best.max(1.0), "node bound {} vs best {}", node, best);
        }
    }
}

/// Every way to put `groups` groups into `nodes` nodes of equal size.
fn every_split(groups: usize, nodes: usize) -> Vec<Vec<Vec<usize>>> {
    let per = groups / nodes;
    let mut out = Vec::new();
    for code in 0..nodes.pow(groups as u32) {
        let mut split = vec![Vec::new(); nodes];
        let mut c = code;
        for g in 0..groups {
            split[c % nodes].push(g);
            c /= nodes;
        }
        if split.iter().all(|s| s.len() == per) {
            out.push(split);
        }
    }
    out
}

const RACKS: &str = r#"{"children": [
    {"name": "rack0", "children": [{"gpus": 2, "slots_per_gpu": 3}, {"gpus": 2, "slots_per_gpu": 3}]},
    {"name": "rack1", "children": [{"gpus": 2, "slots_per_gpu": 3}, {"gpus": 2, "slots_per_gpu": 3}]}
]}"#;

#[test]
fn deeper_trees_keep_whole_groups_in_every_subtree() {
    let topology = Topology::from_json_str(RACKS).unwrap();
    // 16 experts in 8 groups of 2, 24 slots on 8 GPUs in 4 nodes of 2 racks.
    let rows = vec![(0..16)
        .map(|e| ((e * 37) % 23 + 1) as f64)
        .collect::<Vec<_>>()];
    let cluster = Cluster::new(24, 8).with_nodes(4).with_groups(8);
    let problem = Problem::new(
        Loads::from_rows(&rows).unwrap(),
        cluster,
        PolicyChoice::Hierarchical,
    )
    .unwrap();
    let layer = problem.layer(0);
    for strategy in [
        Box::new(Hierarchical::with_topology(
            topology.clone(),
            GreedySplit,
            Greedy,
        )) as Box<dyn PlacementStrategy>,
        Box::new(Hierarchical::with_topology(
            topology.clone(),
            BalancedSplit::default(),
            eplb::strategies::Refine::default(),
        )),
    ] {
        let s = strategy.solve_layer(&layer).unwrap();
        let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
        assert!(report.violations.is_empty(), "{:?}", report.violations);
        // Each rack (12 slots) holds exactly 4 whole groups, none shared with the other rack.
        let groups_of = |slots: &[usize]| {
            let mut g: Vec<usize> = slots.iter().map(|&e| e / 2).collect();
            g.sort_unstable();
            g.dedup();
            g
        };
        let rack0 = groups_of(&s.placement.phy2log()[..12]);
        let rack1 = groups_of(&s.placement.phy2log()[12..]);
        assert_eq!((rack0.len(), rack1.len()), (4, 4));
        assert!(rack0.iter().all(|g| !rack1.contains(g)));
    }
}

#[test]
fn a_topology_that_does_not_fit_the_cluster_is_an_error() {
    let topology = Topology::from_json_str(RACKS).unwrap();
    let problem = Problem::new(
        Loads::from_rows(&[vec![1.0; 16]]).unwrap(),
        Cluster::new(32, 8).with_nodes(4).with_groups(8),
        PolicyChoice::Hierarchical,
    )
    .unwrap();
    let h = Hierarchical::with_topology(topology, GreedySplit, Greedy);
    assert!(matches!(
        h.solve_layer(&problem.layer(0)),
        Err(EplbError::Topology(_))
    ));
}

/// Gives every group to the first child.
struct Lopsided;

impl GroupSplitter for Lopsided {
    fn name(&self) -> &str {
        "lopsided"
    }
    fn split(&self, p: &SplitProblem<'_>) -> eplb::Result<Vec<Vec<usize>>> {
        let mut out = vec![Vec::new(); p.children.len()];
        out[0] = p.groups.to_vec();
        Ok(out)
    }
}

/// Puts an expert id that does not exist into every slot.
struct OutOfRange;

impl PlacementStrategy for OutOfRange {
    fn name(&self) -> &str {
        "out-of-range"
    }
    fn description(&self) -> &str {
        "broken on purpose"
    }
    fn solve_layer(&self, layer: &LayerProblem<'_>) -> eplb::Result<LayerSolution> {
        Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(
            vec![layer.num_experts(); layer.cluster().replicas],
        )))
    }
}

#[test]
fn misbehaving_plug_ins_are_errors_not_panics() {
    let problem = Problem::new(
        Loads::from_rows(&[vec![1.0, 2.0, 3.0, 4.0]]).unwrap(),
        Cluster::new(8, 4).with_nodes(2).with_groups(2),
        PolicyChoice::Hierarchical,
    )
    .unwrap();
    let layer = problem.layer(0);
    let bad_split = Hierarchical::two_level(Lopsided, Greedy);
    assert!(matches!(
        bad_split.solve_layer(&layer),
        Err(EplbError::InvalidPlugin { component, .. }) if component == "lopsided"
    ));
    let bad_leaf = Hierarchical::two_level(GreedySplit, OutOfRange);
    assert!(matches!(
        bad_leaf.solve_layer(&layer),
        Err(EplbError::InvalidPlugin { component, .. }) if component == "out-of-range"
    ));
}

/// An exact sub-solver for tiny nodes: tries every replica count vector and every packing.
struct Enumerate;

impl PlacementStrategy for Enumerate {
    fn name(&self) -> &str {
        "enumerate"
    }
    fn description(&self) -> &str {
        "brute force for tiny nodes"
    }
    fn solve_layer(&self, layer: &LayerProblem<'_>) -> eplb::Result<LayerSolution> {
        let (e, r) = (layer.num_experts(), layer.cluster().replicas);
        let mut best: Option<(f64, Vec<usize>)> = None;
        let mut phy2log = vec![0usize; r];
        loop {
            if (0..e).all(|x| phy2log.contains(&x)) {
                let p = LayerPlacement::from_phy2log(phy2log.clone());
                let max = eplb::evaluate::max_gpu_load(layer, &p);
                if best.as_ref().is_none_or(|(b, _)| max < *b) {
                    best = Some((max, phy2log.clone()));
                }
            }
            let Some(i) = (0..r).find(|&i| phy2log[i] + 1 < e) else {
                break;
            };
            phy2log[i] += 1;
            phy2log[..i].iter_mut().for_each(|x| *x = 0);
        }
        let (max, phy2log) = best.expect("replicas >= experts");
        Ok(LayerSolution {
            placement: LayerPlacement::from_phy2log(phy2log),
            status: SolveStatus::Optimal,
            lower_bound: Some(max),
        })
    }
}

#[test]
fn exact_sub_solvers_make_every_node_optimal_for_its_groups() {
    let problem = Problem::new(
        Loads::from_rows(&[vec![9.0, 1.0, 4.0, 4.0, 3.0, 3.0, 2.0, 7.0]]).unwrap(),
        Cluster::new(12, 4).with_nodes(2).with_groups(4),
        PolicyChoice::Hierarchical,
    )
    .unwrap();
    let layer = problem.layer(0);
    let exact = Hierarchical::two_level(BalancedSplit::default(), Enumerate);
    let greedy_nodes = Hierarchical::two_level(BalancedSplit::default(), Greedy);
    let d = exact.solve_detailed(&layer).unwrap();
    let g = greedy_nodes.solve_detailed(&layer).unwrap();
    assert_eq!(d.nodes.len(), 2);
    assert!(d.nodes.iter().all(|n| n.status == SolveStatus::Optimal));
    // Same split, so node by node the exact placement is no worse than greedy's.
    let loads = |s: &LayerSolution| eplb::evaluate::gpu_loads(&layer, &s.placement);
    let (exact_loads, greedy_loads) = (loads(&d.solution), loads(&g.solution));
    for (n, node) in d.nodes.iter().enumerate() {
        assert_eq!(node.groups, g.nodes[n].groups);
        let max = |l: &[f64]| l[2 * n..2 * n + 2].iter().copied().fold(0.0, f64::max);
        assert!(max(&exact_loads) <= max(&greedy_loads));
        assert_eq!(Some(max(&exact_loads)), node.lower_bound);
    }
}
