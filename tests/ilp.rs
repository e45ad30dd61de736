//! The `ilp` strategy against an independent exhaustive search on tiny problems (both
//! policies), the two instances where greedy is not optimal, and its certificates.
//!
//! The conformance suite (`tests/conformance.rs`) covers `ilp` too, as a registered strategy.

use eplb::evaluate::evaluate_layer;
use eplb::strategies::{Greedy, Ilp};
use eplb::testing::{brute_force, close, enumerable};
use eplb::{
    Cluster, LayerBudget, LayerProblem, Loads, PlacementStrategy, Policy, PolicyChoice, Problem,
    SolveStatus,
};
use proptest::prelude::*;

/// The optimal max GPU load of `experts` (loads `w`) on `gpus` GPUs of `slots` slots, any
/// expert anywhere, by depth-first search over GPU contents: each GPU's experts in
/// non-decreasing order, GPUs in non-decreasing lexicographic order (they are
/// interchangeable), every expert present. Returns `INFINITY` when nothing fits.
fn exhaustive_global(w: &[f64], gpus: usize, slots: usize) -> f64 {
    struct Search<'a> {
        w: &'a [f64],
        gpus: usize,
        slots: usize,
        slot_expert: Vec<usize>,
        best: f64,
    }
    impl Search<'_> {
        fn leaf(&mut self) {
            let mut count = vec![0usize; self.w.len()];
            for &e in &self.slot_expert {
                count[e] += 1;
            }
            if count.contains(&0) {
                return;
            }
            let max = self
                .slot_expert
                .chunks(self.slots)
                .map(|gpu| gpu.iter().map(|&e| self.w[e] / count[e] as f64).sum())
                .fold(0.0, f64::max);
            self.best = self.best.min(max);
        }
        fn descend(&mut self, slot: usize) {
            let total = self.gpus * self.slots;
            if slot == total {
                self.leaf();
                return;
            }
            // Experts not yet used must still fit in the remaining slots.
            let missing = (0..self.w.len())
                .filter(|e| !self.slot_expert[..slot].contains(e))
                .count();
            if missing > total - slot {
                return;
            }
            let (gpu, pos) = (slot / self.slots, slot % self.slots);
            let min_expert = if pos > 0 {
                self.slot_expert[slot - 1]
            } else {
                0
            };
            for e in min_expert..self.w.len() {
                self.slot_expert[slot] = e;
                // GPU contents in non-decreasing lexicographic order.
                if pos == self.slots - 1 && gpu > 0 {
                    let prev = &self.slot_expert[(gpu - 1) * self.slots..gpu * self.slots];
                    let this = &self.slot_expert[gpu * self.slots..(gpu + 1) * self.slots];
                    if this < prev {
                        continue;
                    }
                }
                self.descend(slot + 1);
            }
        }
    }
    let mut search = Search {
        w,
        gpus,
        slots,
        slot_expert: vec![0; gpus * slots],
        best: f64::INFINITY,
    };
    search.descend(0);
    search.best
}

/// The optimal max GPU load of a layer under its policy. Hierarchical: minimum over the ways
/// to give every node `G/N` whole groups of the largest per-node global optimum.
fn exhaustive_optimum(layer: &LayerProblem<'_>) -> f64 {
    let c = layer.cluster();
    let slots = c.slots_per_gpu();
    match layer.policy() {
        Policy::Global => exhaustive_global(layer.loads(), c.gpus, slots),
        Policy::Hierarchical => {
            let (groups, nodes) = (c.groups, c.nodes);
            let size = layer.group_size();
            let mut best = f64::INFINITY;
            // Every assignment of groups to nodes, G/N per node.
            let mut node_of = vec![0usize; groups];
            loop {
                let mut per_node = vec![0usize; nodes];
                for &n in &node_of {
                    per_node[n] += 1;
                }
                if per_node.iter().all(|&k| k == groups / nodes) {
                    let mut worst: f64 = 0.0;
                    for n in 0..nodes {
                        let w: Vec<f64> = (0..groups)
                            .filter(|&g| node_of[g] == n)
                            .flat_map(|g| layer.loads()[g * size..(g + 1) * size].iter().copied())
                            .collect();
                        worst = worst.max(exhaustive_global(&w, c.gpus / nodes, slots));
                    }
                    best = best.min(worst);
                }
                let mut i = 0;
                loop {
                    if i == groups {
                        return best;
                    }
                    node_of[i] += 1;
                    if node_of[i] < nodes {
                        break;
                    }
                    node_of[i] = 0;
                    i += 1;
                }
            }
        }
    }
}

/// Tiny problems: 1–8 experts, 1–4 GPUs, at most 3 spare slots, both policies.
fn tiny_problem() -> impl Strategy<Value = Problem> {
    (
        1usize..=4,
        1usize..=8,
        0usize..=3,
        any::<bool>(),
        1usize..=2,
        1usize..=2,
    )
        .prop_filter_map(
            "shape must fit",
            |(gpus, experts, spare, hier, nodes, groups_per_node)| {
                let replicas = experts + spare;
                if replicas % gpus != 0 {
                    return None;
                }
                let (policy, nodes, groups) = if hier {
                    let groups = nodes * groups_per_node;
                    if gpus % nodes != 0 || experts % groups != 0 {
                        return None;
                    }
                    (PolicyChoice::Hierarchical, nodes, groups)
                } else {
                    (PolicyChoice::Global, 1, 1)
                };
                Some((
                    Cluster::new(replicas, gpus)
                        .with_nodes(nodes)
                        .with_groups(groups),
                    experts,
                    policy,
                ))
            },
        )
        .prop_flat_map(|(cluster, experts, policy)| {
            proptest::collection::vec(0u32..30, experts).prop_map(move |row| {
                let row: Vec<f64> = row.into_iter().map(f64::from).collect();
                Problem::new(Loads::from_rows(&[row]).unwrap(), cluster, policy).unwrap()
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn ilp_reaches_the_exhaustive_optimum_and_never_loses_to_greedy(problem in tiny_problem()) {
        let layer = problem.layer(0);
        let optimum = exhaustive_optimum(&layer);
        if enumerable(&problem) {
            // The two references agree where both apply.
            prop_assert!(close(optimum, brute_force(&layer).unwrap().max_load));
        }
        let ilp = Ilp::default().solve_layer(&layer).unwrap();
        let greedy = Greedy.solve_layer(&layer).unwrap();
        let report = evaluate_layer(&layer, &ilp.placement, ilp.lower_bound);
        let greedy_report = evaluate_layer(&layer, &greedy.placement, None);
        prop_assert!(report.violations.is_empty(), "{:?}", report.violations);
        prop_assert_eq!(ilp.status, SolveStatus::Optimal);
        prop_assert!(close(report.max_load, optimum), "ilp {} vs optimum {} on {:?}", report.max_load, optimum, layer.loads());
        prop_assert!(report.max_load <= greedy_report.max_load);
        let bound = ilp.lower_bound.unwrap();
        prop_assert!(bound <= optimum * (1.0 + 1e-9) + 1e-12);
        prop_assert!(report.gap <= 1e-9);
    }
}

fn one_layer(loads: Vec<f64>, cluster: Cluster, policy: PolicyChoice) -> Problem {
    Problem::new(Loads::from_rows(&[loads]).unwrap(), cluster, policy).unwrap()
}

#[test]
fn replicating_the_small_expert_reaches_4() {
    let problem = one_layer(
        vec![3.0, 3.0, 2.0],
        Cluster::new(4, 2),
        PolicyChoice::Global,
    );
    let layer = problem.layer(0);
    let s = Ilp::default().solve_layer(&layer).unwrap();
    let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
    assert_eq!(s.status, SolveStatus::Optimal);
    assert_eq!(report.max_load, 4.0);
    assert_eq!(report.lower_bound, 4.0);
    assert_eq!(report.gap, 0.0);
    assert_eq!(s.placement.logcnt(3), vec![1, 1, 2]);
}

#[test]
fn the_ten_expert_example_reaches_11_5() {
    let problem = one_layer(
        vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0],
        Cluster::new(12, 4),
        PolicyChoice::Global,
    );
    let layer = problem.layer(0);
    let s = Ilp::default().solve_layer(&layer).unwrap();
    let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
    assert_eq!(s.status, SolveStatus::Optimal);
    assert_eq!(report.max_load, 11.5);
    assert_eq!(report.gap, 0.0);
    let greedy = Greedy.solve_layer(&layer).unwrap();
    assert_eq!(
        evaluate_layer(&layer, &greedy.placement, None).max_load,
        12.0
    );
}

#[test]
fn hierarchical_layers_keep_groups_on_one_node() {
    // 8 experts in 4 groups on 2 nodes of 2 GPUs x 3 slots.
    let cluster = Cluster::new(12, 4).with_nodes(2).with_groups(4);
    let problem = one_layer(
        vec![20.0, 1.0, 3.0, 9.0, 7.0, 7.0, 2.0, 11.0],
        cluster,
        PolicyChoice::Hierarchical,
    );
    let layer = problem.layer(0);
    let s = Ilp::default().solve_layer(&layer).unwrap();
    let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
    assert!(report.violations.is_empty(), "{:?}", report.violations);
    assert_eq!(s.status, SolveStatus::Optimal);
    assert!(close(report.max_load, exhaustive_optimum(&layer)));
}

#[test]
fn a_stopped_solve_keeps_an_incumbent_and_a_valid_bound() {
    // A zero time limit: the answer is greedy's placement (or better) with status time_limit
    // and a bound that is still valid; the status is never `optimal` without a proof.
    let budget = LayerBudget::new().with_deadline(Some(std::time::Instant::now()));
    let problem = one_layer(
        vec![9.0, 8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0, 1.0],
        Cluster::new(12, 4),
        PolicyChoice::Global,
    );
    let layer = problem.layer(0).with_budget(budget);
    let s = Ilp::default().solve_layer(&layer).unwrap();
    let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
    assert!(report.violations.is_empty());
    assert!(report.max_load <= 12.0);
    assert!(report.lower_bound <= 11.5);
    if s.status == SolveStatus::Optimal {
        assert_eq!(report.max_load, 11.5);
    } else {
        assert_eq!(s.status, SolveStatus::TimeLimit);
    }
}

#[test]
fn ilp_is_registered_and_honours_options() {
    let budget = LayerBudget::new().with_gap(Some(0.5));
    let s = eplb::strategies::by_name("ilp").unwrap();
    assert_eq!(s.name(), "ilp");
    // With a 50% gap the solver may stop early: whatever it returns is feasible and at least
    // as good as greedy, and its bound is valid.
    let problem = one_layer(
        vec![3.0, 3.0, 2.0],
        Cluster::new(4, 2),
        PolicyChoice::Global,
    );
    let layer = problem.layer(0).with_budget(budget);
    let sol = s.solve_layer(&layer).unwrap();
    let report = evaluate_layer(&layer, &sol.placement, sol.lower_bound);
    assert!(report.violations.is_empty());
    assert!(report.max_load <= 4.5);
    assert!(report.lower_bound <= 4.0);
}

#[test]
fn a_negative_gap_is_a_typed_error_not_a_panic() {
    let budget = LayerBudget::new().with_gap(Some(-0.1));
    let problem = one_layer(
        vec![3.0, 3.0, 2.0],
        Cluster::new(4, 2),
        PolicyChoice::Global,
    );
    let err = Ilp::default()
        .solve_layer(&problem.layer(0).with_budget(budget))
        .unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
}

/// The example of `eplb.py`'s README (2 layers x 12 experts, R=16, P=8, N=2, G=4): both
/// layers proven optimal under both policies, on whichever backend the build has.
#[test]
fn the_eplb_readme_example_is_proven_optimal_under_both_policies() {
    let rows = eplb::synthetic::readme_example();
    for (policy, optima) in [
        (PolicyChoice::Hierarchical, [151.0, 179.5]),
        (PolicyChoice::Global, [136.0, 172.0]),
    ] {
        let cluster = Cluster::new(16, 8).with_nodes(2).with_groups(4);
        let problem = Problem::new(rows.clone(), cluster, policy).unwrap();
        for (l, &optimum) in optima.iter().enumerate() {
            let layer = problem.layer(l);
            let s = Ilp::default().solve_layer(&layer).unwrap();
            let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
            assert!(report.violations.is_empty(), "{:?}", report.violations);
            assert_eq!(s.status, SolveStatus::Optimal, "{policy:?} layer {l}");
            assert_eq!(report.max_load, optimum, "{policy:?} layer {l}");
            assert_eq!(report.lower_bound, optimum, "{policy:?} layer {l}");
        }
    }
}
