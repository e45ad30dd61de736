//! Shared test helpers: random tiny problems and a brute-force optimum.
#![allow(dead_code)]

use eplb::{
    evaluate::evaluate_layer, Cluster, LayerPlacement, LayerProblem, Loads, PolicyChoice, Problem,
};
use proptest::prelude::*;
use serde_json::Value;

/// A random valid problem: 1–3 layers, integer loads (with zeros and ties), both policies.
pub fn arb_problem(max_experts: usize, max_gpus: usize) -> impl Strategy<Value = Problem> {
    (
        1usize..=max_gpus, // gpus
        1usize..=3,        // slots per gpu
        1usize..=max_experts,
        1usize..=3,    // layers
        any::<bool>(), // hierarchical?
        1usize..=2,    // nodes
        1usize..=2,    // groups per node
    )
        .prop_filter_map(
            "shape must fit",
            |(gpus, spg, experts, layers, hier, nodes, gpn)| {
                let replicas = gpus * spg;
                if replicas < experts {
                    return None;
                }
                let (nodes, groups) = if hier {
                    let groups = nodes * gpn;
                    if gpus % nodes != 0 || experts % groups != 0 {
                        return None;
                    }
                    (nodes, groups)
                } else {
                    (nodes, 1 + gpn) // arbitrary, ignored by the global policy
                };
                let policy = if hier {
                    PolicyChoice::Hierarchical
                } else {
                    PolicyChoice::Global
                };
                Some((
                    Cluster::new(replicas, gpus)
                        .with_nodes(nodes)
                        .with_groups(groups),
                    experts,
                    layers,
                    policy,
                ))
            },
        )
        .prop_flat_map(|(cluster, experts, layers, policy)| {
            proptest::collection::vec(proptest::collection::vec(0u32..40, experts), layers)
                .prop_map(move |rows| {
                    let rows: Vec<Vec<f64>> = rows
                        .iter()
                        .map(|r| r.iter().map(|&x| x as f64).collect())
                        .collect();
                    Problem::new(Loads::from_rows(&rows).unwrap(), cluster, policy).unwrap()
                })
        })
}

/// The optimal max GPU load of a tiny layer, by enumerating every `phy2log` and keeping the
/// feasible ones (as judged by the evaluator). Only for `E^R <= ~10^6`.
pub fn brute_force_optimum(layer: &LayerProblem<'_>) -> f64 {
    let e = layer.num_experts();
    let r = layer.cluster.replicas;
    assert!((e as f64).powi(r as i32) <= 2e6, "too large to enumerate");
    let mut phy2log = vec![0usize; r];
    let mut best = f64::INFINITY;
    loop {
        // Cheap pre-filter: every expert present, canonical order inside each GPU.
        let s = layer.cluster.slots_per_gpu();
        let sorted_in_gpus = phy2log
            .chunks(s)
            .all(|c| c.windows(2).all(|w| w[0] <= w[1]));
        if sorted_in_gpus && (0..e).all(|x| phy2log.contains(&x)) {
            let report =
                evaluate_layer(layer, &LayerPlacement::from_phy2log(phy2log.clone()), None);
            if report.violations.is_empty() {
                best = best.min(report.max_load);
            }
        }
        // Next vector in base e.
        let mut i = 0;
        loop {
            if i == r {
                return best;
            }
            phy2log[i] += 1;
            if phy2log[i] < e {
                break;
            }
            phy2log[i] = 0;
            i += 1;
        }
    }
}

/// True when `problem` is small enough for [`brute_force_optimum`].
pub fn enumerable(problem: &Problem) -> bool {
    (problem.num_experts() as f64).powi(problem.cluster().replicas as i32) <= 2e6
}

/// Relative tolerance for comparing loads computed in different orders.
pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

/// The golden file of DeepSeek's `eplb.py` outputs (copied into the repository).
pub fn golden() -> Value {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/eplb_reference.json"
    ))
    .expect("golden file is in the repository");
    serde_json::from_str(&text).expect("golden file is JSON")
}

/// Decodes a named weight matrix of the golden file following `conventions.weights`.
pub fn golden_weights(g: &Value, name: &str) -> Loads {
    let w = &g["weights"][name];
    let data: Vec<Vec<f64>> = serde_json::from_value(w["data"].clone()).expect("matrix");
    let rows: Vec<Vec<f64>> = match w["encoding"].as_str().expect("encoding") {
        "int" => data,
        "int_over_scale" => {
            let scale = w["scale"].as_f64().expect("scale");
            data.iter()
                .map(|r| r.iter().map(|x| x / scale).collect())
                .collect()
        }
        "f32" => data
            .iter()
            .map(|r| r.iter().map(|&x| x as f32 as f64).collect())
            .collect(),
        other => panic!("unknown encoding {other}"),
    };
    Loads::from_rows(&rows).expect("valid golden loads")
}

/// The cluster of a golden case.
pub fn golden_cluster(case: &Value) -> Cluster {
    let n = |k: &str| case[k].as_u64().expect("count") as usize;
    Cluster::new(n("num_replicas"), n("num_gpus"))
        .with_nodes(n("num_nodes"))
        .with_groups(n("num_groups"))
}

/// Every golden case as a named problem (policy chosen as DeepSeek does).
pub fn golden_cases() -> Vec<(String, Problem)> {
    let g = golden();
    g["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|case| {
            let loads = golden_weights(&g, case["weights"].as_str().expect("weights name"));
            let problem =
                Problem::new(loads, golden_cluster(case), PolicyChoice::Auto).expect("valid case");
            (case["name"].as_str().expect("name").to_string(), problem)
        })
        .collect()
}
