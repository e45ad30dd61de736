//! Placements and the evaluator on arbitrary (also broken) inputs.

use eplb::testing::{close, generate::arb_problem};
use eplb::{evaluate, Claim, Cluster, Loads, Placement, PolicyChoice, Problem, Violation};
use proptest::prelude::*;

/// A problem and an arbitrary `phy2log` for it: right or wrong slot count, ids possibly out of
/// range.
fn problem_and_any_placement() -> impl Strategy<Value = (Problem, Vec<Vec<usize>>)> {
    arb_problem(6, 4).prop_flat_map(|p| {
        let layers = p.num_layers();
        let slots = p.cluster().replicas;
        let ids = p.num_experts() + 2;
        let rows = proptest::collection::vec(
            proptest::collection::vec(0..ids, slots.saturating_sub(1)..=slots + 1),
            layers,
        );
        (Just(p), rows)
    })
}

proptest! {
    #[test]
    fn evaluator_never_panics_and_reports_every_kind_of_breakage((problem, rows) in problem_and_any_placement()) {
        let e = problem.num_experts();
        let r = problem.cluster().replicas;
        let placement = Placement::from_phy2log(e, rows.clone()).unwrap();
        let report = evaluate(&problem, &placement, &[]).unwrap();
        for (l, row) in rows.iter().enumerate() {
            let v = &report.layers[l].violations;
            prop_assert_eq!(row.len() != r, v.iter().any(|x| matches!(x, Violation::WrongSlotCount { .. })));
            prop_assert_eq!(row.iter().any(|&x| x >= e), v.iter().any(|x| matches!(x, Violation::ExpertOutOfRange { .. })));
            for expert in 0..e {
                prop_assert_eq!(!row.contains(&expert), v.contains(&Violation::MissingExpert { expert }));
            }
            // Feasible layers conserve load exactly.
            if v.is_empty() {
                let total: f64 = problem.loads().layer(l).iter().sum();
                prop_assert!(close(report.layers[l].gpu_loads.iter().sum(), total));
            }
        }
        prop_assert_eq!(report.is_feasible(), report.layers.iter().all(|l| l.violations.is_empty()));
    }

    #[test]
    fn deepseek_arrays_round_trip((problem, rows) in problem_and_any_placement()) {
        let e = problem.num_experts();
        let placement = Placement::from_phy2log(e, rows.clone()).unwrap();
        match placement.to_deepseek() {
            Ok(arrays) => {
                prop_assert_eq!(&arrays.phy2log, &rows);
                let width = arrays.logcnt.iter().flatten().max().copied().unwrap_or(0);
                prop_assert!(arrays.log2phy.iter().flatten().all(|r| r.len() == width));
                prop_assert_eq!(&Placement::from_deepseek(e, &arrays).unwrap(), &placement);
                // The flat layout holds the same numbers, row-major; it needs equal slot counts.
                match placement.to_deepseek_flat() {
                    Ok(flat) => {
                        let ints = |v: Vec<usize>| v.into_iter().map(|x| x as i64).collect::<Vec<_>>();
                        prop_assert_eq!((flat.layers, flat.experts, flat.width), (rows.len(), e, width));
                        prop_assert_eq!(flat.phy2log, ints(rows.concat()));
                        prop_assert_eq!(flat.logcnt, ints(arrays.logcnt.concat()));
                        prop_assert_eq!(flat.log2phy, arrays.log2phy.concat().concat());
                    }
                    Err(_) => prop_assert!(rows.iter().any(|r| r.len() != rows[0].len())),
                }
            }
            Err(_) => {
                prop_assert!(rows.iter().flatten().any(|&x| x >= e));
                prop_assert!(placement.to_deepseek_flat().is_err());
            }
        }
    }
}

#[test]
fn hierarchy_violations_are_detected() {
    // 4 experts in 2 groups, 2 nodes x 1 GPU x 3 slots.
    let loads = Loads::from_rows(&[vec![4.0, 3.0, 2.0, 1.0]]).unwrap();
    let problem = Problem::new(
        loads,
        Cluster::new(6, 2).with_nodes(2).with_groups(2),
        PolicyChoice::Hierarchical,
    )
    .unwrap();
    let ok = Placement::from_phy2log(4, vec![vec![0, 1, 0, 2, 3, 2]]).unwrap();
    assert!(evaluate(&problem, &ok, &[]).unwrap().is_feasible());
    // Group 0 on both nodes; node 1 then holds two groups.
    let split = Placement::from_phy2log(4, vec![vec![0, 1, 1, 2, 3, 0]]).unwrap();
    let v = &evaluate(&problem, &split, &[]).unwrap().layers[0].violations;
    assert!(
        v.contains(&Violation::GroupSplitAcrossNodes {
            group: 0,
            nodes: vec![0, 1]
        }),
        "{v:?}"
    );
    assert!(
        v.contains(&Violation::WrongGroupCount {
            node: 1,
            groups: 2,
            expected: 1
        }),
        "{v:?}"
    );
}

#[test]
fn metrics_match_hand_computation() {
    // (3, 3, 2) on 2 GPUs x 2 slots; expert 2 replicated: GPU loads 3+1=4 and 3+1=4.
    let loads = Loads::from_rows(&[vec![3.0, 3.0, 2.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(4, 2), PolicyChoice::Global).unwrap();
    let p = Placement::from_phy2log(3, vec![vec![0, 2, 1, 2]]).unwrap();
    let r = &evaluate(&problem, &p, &[]).unwrap().layers[0];
    assert_eq!(r.gpu_loads, vec![4.0, 4.0]);
    assert_eq!(
        (r.max_load, r.mean_load, r.balancedness, r.imbalance, r.gap),
        (4.0, 4.0, 1.0, 0.0, 0.0)
    );
    // Both replicas of expert 0 on GPU 0: one co-located replica; loads 3 and 5.
    let p = Placement::from_phy2log(3, vec![vec![0, 0, 1, 2]]).unwrap();
    let r = &evaluate(&problem, &p, &[]).unwrap().layers[0];
    assert_eq!(r.colocated_replicas, 1);
    assert_eq!(r.gpu_loads, vec![3.0, 5.0]);
    assert_eq!((r.balancedness, r.imbalance, r.gap), (0.8, 0.25, 0.25));
    // A claimed bound raises the reported bound, never lowers it.
    let r = &evaluate(&problem, &p, &[Claim::with_bound(4.5)])
        .unwrap()
        .layers[0];
    assert_eq!((r.lower_bound, r.gap), (4.5, 5.0 / 4.5 - 1.0));
    let r = &evaluate(&problem, &p, &[Claim::with_bound(1.0)])
        .unwrap()
        .layers[0];
    assert_eq!(r.lower_bound, 4.0);
}

#[test]
fn layer_count_mismatch_is_an_error() {
    let loads = Loads::from_rows(&[vec![1.0, 2.0], vec![2.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(2, 1), PolicyChoice::Global).unwrap();
    let p = Placement::from_phy2log(2, vec![vec![0, 1]]).unwrap();
    assert!(evaluate(&problem, &p, &[])
        .unwrap_err()
        .to_string()
        .contains("1 layers but the loads have 2"));
}
