//! Current placements with dead GPUs (`-1` slots) and GPUs that newly fail: reading them in
//! every format, checking them against the failed GPUs, and rebalancing from them (experts
//! whose only replica was on a newly failed GPU are reloaded from host memory).

use std::path::Path;

use eplb::formats::{read_placement, read_placement_with_empty, PlacementFormat};
use eplb::live::{
    align_live, evaluate_live, rebalance, CurrentPlacement, LiveGpus, MoveBudget, RebalanceOptions,
    TransferPlan,
};
use eplb::strategies::Refine;
use eplb::{Cluster, EplbError, Loads, Placement, PolicyChoice, Problem};

/// 4 experts on 3 GPUs x 2 slots; GPU 1 alone holds experts 2 and 3.
fn sole_holder_case() -> (Problem, Placement) {
    let loads = Loads::from_rows(&[vec![5.0, 4.0, 2.0, 1.0]]).unwrap();
    let problem = Problem::new(loads, Cluster::new(6, 3), PolicyChoice::Global).unwrap();
    let current = Placement::from_phy2log(4, vec![vec![0, 1, 2, 3, 0, 1]]).unwrap();
    (problem, current)
}

#[test]
fn a_newly_failed_sole_holder_is_reloaded_from_host_memory() {
    let (problem, current) = sole_holder_case();
    let live = LiveGpus::with_failed(3, &[1]).unwrap();
    for budget in [
        MoveBudget::PerLayer(0),
        MoveBudget::PerLayer(1),
        MoveBudget::Unlimited,
    ] {
        for with_fresh in [false, true] {
            let refine = Refine::default();
            let fresh = with_fresh.then_some(&refine as &dyn eplb::PlacementStrategy);
            let options = RebalanceOptions::new(budget).with_live(live.clone());
            let result = rebalance(&problem, &current, fresh, &options).unwrap();
            let evaluation = evaluate_live(&problem, &result.placement, &live).unwrap();
            assert!(evaluation.is_feasible(), "{budget:?}: {evaluation:?}");
            let plan =
                TransferPlan::with_live(&problem, &current, &result.placement, 10, &live).unwrap();
            let layer = &plan.layers[0];
            // Experts 2 and 3 lived only on GPU 1: both come from host memory, and count.
            let reloaded: Vec<usize> = layer
                .moves
                .iter()
                .filter(|m| m.from_gpu.is_none())
                .map(|m| m.expert)
                .collect();
            assert!(reloaded.contains(&2) && reloaded.contains(&3), "{layer:?}");
            assert_eq!(layer.host_reloads, reloaded.len());
            assert!(layer.transfers >= layer.host_reloads);
            assert_eq!(layer.bytes, 10 * layer.transfers as u64);
            assert!(layer.moves.iter().all(|m| m.to_gpu != 1));
            if budget == MoveBudget::PerLayer(0) {
                // Nothing beyond the forced reloads.
                assert_eq!(layer.transfers, 2, "{layer:?}");
            }
        }
    }
}

#[test]
fn a_current_placement_with_dead_gpus_rebalances_under_a_hierarchical_policy() {
    // 8 experts in 2 groups, 2 nodes of 2 GPUs x 3 slots; GPU 3 is dead in the current
    // placement (made under the global fallback; its slots hold the filler, expert 0, off
    // group 0's node).
    let loads = Loads::from_rows(&[vec![8.0, 7.0, 6.0, 5.0, 4.0, 3.0, 2.0, 1.0]]).unwrap();
    let cluster = Cluster::new(12, 4).with_nodes(2).with_groups(2);
    let problem = Problem::new(loads, cluster, PolicyChoice::Hierarchical).unwrap();
    let placement =
        Placement::from_phy2log(8, vec![vec![0, 1, 2, 3, 4, 5, 6, 7, 0, 0, 0, 0]]).unwrap();
    let current = CurrentPlacement::new(&cluster, placement, &[9, 10, 11]).unwrap();
    assert_eq!(current.dead_gpus(), vec![3]);
    // Its whole-cluster check fails (groups split over the nodes) ...
    assert!(eplb::live::check_current(&problem, &current.placement).is_err());
    // ... but with GPU 3 failed, the live part is what counts.
    let live = LiveGpus::with_failed(4, &[3]).unwrap();
    current.check_failed(Some(&live)).unwrap();
    let options = RebalanceOptions::new(MoveBudget::PerLayer(2)).with_live(live.clone());
    let result = rebalance(&problem, &current.placement, None, &options).unwrap();
    assert!(evaluate_live(&problem, &result.placement, &live)
        .unwrap()
        .is_feasible());
    let plan =
        TransferPlan::with_live(&problem, &current.placement, &result.placement, 1, &live).unwrap();
    let layer = &plan.layers[0];
    assert!(layer
        .moves
        .iter()
        .all(|m| m.to_gpu != 3 && m.from_gpu != Some(3)));
    assert_eq!(layer.host_reloads, 0);
    // An expert held by no GPU at all (not even a failed one) cannot be reloaded by guess.
    let lost = Placement::from_phy2log(8, vec![vec![0, 1, 2, 3, 4, 5, 6, 0, 0, 0, 0, 0]]).unwrap();
    let err = rebalance(&problem, &lost, None, &options).unwrap_err();
    assert!(err.to_string().contains("expert 7"), "{err}");
    // A dead GPU of the current placement that is not among the failed ones is an error.
    let err = current.check_failed(None).unwrap_err();
    assert!(matches!(err, EplbError::InvalidFailedGpus(_)), "{err}");
    assert!(err.to_string().contains("--failed-gpus 3"), "{err}");
}

#[test]
fn aligning_on_live_gpus_keeps_dead_gpus_empty_and_loads_unchanged() {
    let (problem, _) = sole_holder_case();
    let live = LiveGpus::with_failed(3, &[1]).unwrap();
    let current = Placement::from_phy2log(4, vec![vec![0, 1, 0, 0, 2, 3]]).unwrap();
    let fresh = Placement::from_phy2log(4, vec![vec![2, 3, 0, 0, 0, 1]]).unwrap();
    let aligned = align_live(&problem, &current, &fresh, &live).unwrap();
    assert_eq!(aligned.layer(0).phy2log(), &[0, 1, 0, 0, 2, 3]);
    let before = evaluate_live(&problem, &fresh, &live).unwrap();
    let after = evaluate_live(&problem, &aligned, &live).unwrap();
    let mut a = before.layers[0].gpu_loads.clone();
    let mut b = after.layers[0].gpu_loads.clone();
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    assert_eq!(a, b);
}

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn minus_one_slots_are_read_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let files = [
        (
            write(d, "a.json", r#"{"phy2log": [[0, 1, -1, -1, 2, 3], [3, 2, -1, -1, 1, 0]]}"#),
            PlacementFormat::DeepSeek,
        ),
        (
            write(
                d,
                "b.json",
                r#"{"physical_to_logical_map": [[0, 1, -1, -1, 2, 3], [3, 2, -1, -1, 1, 0]]}"#,
            ),
            PlacementFormat::Sglang,
        ),
        (
            write(
                d,
                "c.yaml",
                "num_slots: 6\ninitial_global_assignments:\n  0: [0, 1, -1, -1, 2, 3]\n  1: [3, 2, -1, -1, 1, 0]\nlayer_updates_per_iter: 0\n",
            ),
            PlacementFormat::TrtLlm,
        ),
    ];
    for (path, format) in &files {
        let read = read_placement_with_empty(path, 4, 2, 0).unwrap();
        assert_eq!(read.format, *format);
        assert_eq!(read.empty_slots, vec![2, 3]);
        assert_eq!(read.placement.layer(1).phy2log(), &[3, 2, 0, 0, 1, 0]);
        // The strict reader (`check`) still refuses them.
        let err = read_placement(path, 4, 2, 0).unwrap_err().to_string();
        assert!(err.contains("is -1"), "{err}");
    }
}

#[test]
fn deepseek_arrays_with_minus_one_slots_are_checked_against_the_live_slots() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What `place --failed-gpus` writes: log2phy names live slots only.
    let good = write(
        d,
        "good.json",
        r#"{"phy2log": [[0, 1, -1, -1, 1, 0]], "log2phy": [[[0, 5], [1, 4]]], "logcnt": [[2, 2]]}"#,
    );
    let read = read_placement_with_empty(&good, 2, 1, 0).unwrap();
    assert_eq!(read.empty_slots, vec![2, 3]);
    for (name, text, wanted) in [
        (
            "points_at_empty.json",
            r#"{"phy2log": [[0, 1, -1, -1, 1, 0]], "log2phy": [[[0, 2], [1, 4]]], "logcnt": [[2, 2]]}"#,
            "lists slot 2, which is -1",
        ),
        (
            "miscounted.json",
            r#"{"phy2log": [[0, 1, -1, -1, 1, 0]], "log2phy": [[[0, -1], [1, 4]]], "logcnt": [[2, 2]]}"#,
            "logcnt[0] = 2",
        ),
        (
            "layers_differ.json",
            r#"{"phy2log": [[0, 1, -1, -1, 1, 0], [0, 1, 1, -1, -1, 0]]}"#,
            "-1 in every layer",
        ),
        (
            "minus_two.json",
            r#"{"phy2log": [[0, 1, -2, -1, 1, 0]]}"#,
            "expert ids must be >= 0",
        ),
    ] {
        let err = read_placement_with_empty(&write(d, name, text), 2, 2, 0)
            .unwrap_err()
            .to_string();
        assert!(err.contains(wanted), "{name}: {err}");
    }
}

#[test]
fn half_dead_gpus_and_out_of_range_empty_slots_are_errors() {
    let cluster = Cluster::new(6, 3);
    let placement = || Placement::from_phy2log(2, vec![vec![0, 1, 0, 0, 1, 0]]).unwrap();
    let err = CurrentPlacement::new(&cluster, placement(), &[3])
        .unwrap_err()
        .to_string();
    assert!(err.contains("GPU 1 has 1 of its 2 slots"), "{err}");
    let err = CurrentPlacement::new(&cluster, placement(), &[6])
        .unwrap_err()
        .to_string();
    assert!(err.contains("slots 0..6"), "{err}");
    let err = CurrentPlacement::new(&cluster, placement(), &[0, 1, 2, 3, 4, 5])
        .unwrap_err()
        .to_string();
    assert!(err.contains("all 3 GPUs are dead"), "{err}");
}
