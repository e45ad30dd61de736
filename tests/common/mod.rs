//! Shared test helpers: the golden file of DeepSeek's `eplb.py`. (Random problems, the
//! brute-force optimum and the conformance checks are in `eplb::testing`.)
#![allow(dead_code)]

use eplb::{Cluster, Loads, PolicyChoice, Problem};
use serde_json::Value;

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
