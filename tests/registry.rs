//! The strategy registry: the built-ins by name, a downstream strategy registered and built by
//! name (alone, inside `hierarchical`, and compared with the built-ins), unknown names listed.

use eplb::compare::compare;
use eplb::strategies::{self, HierarchicalSpec, Registry, StrategySpec};
use eplb::topology::{Topology, TopologySpec};
use eplb::{
    Cluster, EplbError, LayerPlacement, LayerProblem, LayerSolution, Loads, PlacementStrategy,
    PolicyChoice, Problem, Result,
};

/// Expert `s % E` in slot `s`: a downstream strategy the library does not know.
struct RoundRobin;

impl PlacementStrategy for RoundRobin {
    fn name(&self) -> &str {
        "round-robin"
    }

    fn description(&self) -> &str {
        "expert s % E in slot s"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let e = layer.num_experts();
        let phy2log = (0..layer.cluster().replicas).map(|s| s % e).collect();
        Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(
            phy2log,
        )))
    }
}

fn with_round_robin() -> Registry {
    let mut registry = Registry::new();
    registry.register("round-robin", "expert s % E in slot s", |_, _| {
        Ok(Box::new(RoundRobin))
    });
    registry
}

fn problem() -> Problem {
    let loads = Loads::from_rows(&[
        vec![8.0, 1.0, 1.0, 1.0, 6.0, 1.0, 1.0, 1.0],
        vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
    ])
    .unwrap();
    let cluster = Cluster::new(12, 4).with_nodes(2).with_groups(4);
    Problem::new(loads, cluster, PolicyChoice::Hierarchical).unwrap()
}

#[test]
fn the_builtins_are_registered_in_the_order_of_all() {
    let registry = Registry::new();
    let names: Vec<&str> = registry.names().collect();
    assert_eq!(
        names,
        [
            "greedy",
            "refine",
            "refine-deep",
            "hierarchical",
            "exact",
            "ilp"
        ]
    );
    assert_eq!(strategies::names(), names);
    for ((name, description), strategy) in registry.descriptions().zip(strategies::all()) {
        assert_eq!(
            (name, description),
            (strategy.name(), strategy.description())
        );
    }
    let built = registry.build_all().unwrap();
    let built: Vec<&str> = built.iter().map(|s| s.name()).collect();
    assert_eq!(built, names);
}

#[test]
fn unknown_names_list_the_registered_ones() {
    let err = with_round_robin()
        .build(&StrategySpec::new("nope"))
        .err()
        .expect("an unknown name");
    match err {
        EplbError::UnknownStrategy { name, available } => {
            assert_eq!(name, "nope");
            assert_eq!(
                available,
                "greedy, refine, refine-deep, hierarchical, exact, ilp, round-robin"
            );
        }
        other => panic!("expected UnknownStrategy, got {other:?}"),
    }
    // The same error for an unknown sub-strategy of `hierarchical`.
    let spec = StrategySpec::new("hierarchical").with_sub_strategy("nope");
    assert!(matches!(
        Registry::new().build(&spec),
        Err(EplbError::UnknownStrategy { .. })
    ));
    assert_eq!(
        strategies::by_name("nope").err().map(|e| e.to_string()),
        Registry::new()
            .build(&StrategySpec::new("nope"))
            .err()
            .map(|e| e.to_string())
    );
}

#[test]
fn a_downstream_strategy_builds_by_name_and_is_compared_with_the_builtins() {
    let registry = with_round_robin();
    let problem = problem();
    let rr = registry.build(&StrategySpec::new("round-robin")).unwrap();
    assert_eq!(rr.name(), "round-robin");
    let names = ["greedy", "round-robin", "refine"];
    let chosen: Vec<Box<dyn PlacementStrategy>> = names
        .iter()
        .map(|&n| registry.build(&StrategySpec::new(n)).unwrap())
        .collect();
    let c = compare(&problem, &chosen, &Default::default(), &|_, _| {}).unwrap();
    let rows: Vec<&str> = c.rows.iter().map(|r| r.strategy.as_str()).collect();
    assert_eq!(rows, names);
    // Round-robin ignores the groups: the evaluator catches it.
    assert!(c.rows[1].summary.violations > 0);
    assert_eq!(c.rows[0].summary.violations, 0);
}

#[test]
fn hierarchical_takes_a_registered_sub_strategy_and_a_topology() {
    let registry = with_round_robin();
    let problem = problem();
    let tree = Topology::from_spec(&TopologySpec::root(vec![
        TopologySpec::level("rack0", vec![TopologySpec::node(2, 3)]),
        TopologySpec::level("rack1", vec![TopologySpec::node(2, 3)]),
    ]))
    .unwrap();
    let spec = StrategySpec::new("hierarchical")
        .with_sub_strategy("round-robin")
        .with_topology(tree);
    assert!(!spec.hierarchical.is_default());
    let h = registry.build(&spec).unwrap();
    assert_eq!(h.name(), "hierarchical");
    let solution = eplb::solve(&problem, h.as_ref(), &Default::default()).unwrap();
    let report = eplb::evaluate(&problem, &solution.placement, &[]).unwrap();
    // Whole groups per node: round-robin inside each node places every expert of the node.
    assert!(report.is_feasible());
    // The default configuration is the built-in one: greedy inside DeepSeek's two-level tree.
    assert!(HierarchicalSpec::default().is_default());
    let built_in = registry.build(&StrategySpec::new("hierarchical")).unwrap();
    let by_name = strategies::by_name("hierarchical").unwrap();
    for layer in problem.layers() {
        assert_eq!(
            built_in.solve_layer(&layer).unwrap(),
            by_name.solve_layer(&layer).unwrap()
        );
    }
}

#[test]
fn registering_a_name_again_replaces_the_constructor() {
    let mut registry = Registry::new();
    registry.register("greedy", "round-robin under another name", |_, _| {
        Ok(Box::new(RoundRobin))
    });
    assert_eq!(registry.names().count(), 6);
    let built = registry.build(&StrategySpec::new("greedy")).unwrap();
    assert_eq!(built.name(), "round-robin");
}
