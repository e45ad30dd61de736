//! Bit-exactness with DeepSeek's `eplb.py` on the golden file (real PyTorch runs, stable-sort
//! convention): `phy2log`, `log2phy` and `logcnt` of every case; every invalid case rejected;
//! the helper-level vectors against the engines in `eplb-solvers`.

use eplb::{
    evaluate, solve, strategies::Greedy, Kernels, Loads, Placement, PolicyChoice, Problem,
    SolveOptions,
};
use eplb_solvers::{apportion::Apportioner, partition::BalancedPartitioner};

mod common;

use common::{golden, golden_cluster as cluster_of, golden_weights as weights};
use serde_json::Value;

fn matrix<T: serde::de::DeserializeOwned>(v: &Value) -> Vec<Vec<T>> {
    serde_json::from_value(v.clone()).expect("matrix")
}

#[test]
fn every_case_is_bit_exact() {
    let g = golden();
    let cases = g["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 29);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let loads = weights(&g, case["weights"].as_str().unwrap());
        let problem = Problem::new(loads, cluster_of(case), PolicyChoice::Auto).unwrap();
        assert_eq!(
            problem.policy().to_string(),
            case["policy"].as_str().unwrap(),
            "{name}: policy"
        );
        // Every thread count and both kernel choices (the vector kernels run where the
        // processor has AVX-512F; the portable code everywhere).
        let runs = [
            (Some(1), Kernels::Auto),
            (None, Kernels::Auto),
            (Some(1), Kernels::Portable),
        ];
        for (threads, kernels) in runs {
            let options = SolveOptions::new()
                .with_threads(threads)
                .with_kernels(kernels);
            let solution = solve(&problem, &Greedy, &options).unwrap();
            let arrays = solution.placement.to_deepseek().unwrap();
            let expected = &case["expected"];
            assert_eq!(
                arrays.phy2log,
                matrix::<usize>(&expected["phy2log"]),
                "{name}: phy2log"
            );
            let log2phy: Vec<Vec<Vec<i64>>> =
                serde_json::from_value(expected["log2phy"].clone()).unwrap();
            assert_eq!(arrays.log2phy, log2phy, "{name}: log2phy");
            assert_eq!(
                arrays.logcnt,
                matrix::<usize>(&expected["logcnt"]),
                "{name}: logcnt"
            );

            // The evaluator's loads agree with the reference's float64 GPU loads.
            let report = evaluate(&problem, &solution.placement, &[]).unwrap();
            assert!(
                report.is_feasible(),
                "{name}: {:?}",
                report.layers[0].violations
            );
            let max: Vec<f64> = serde_json::from_value(expected["gpu_load_max"].clone()).unwrap();
            for (l, layer) in report.layers.iter().enumerate() {
                let tol = 1e-9 * max[l].max(1.0);
                assert!(
                    (layer.max_load - max[l]).abs() <= tol,
                    "{name} layer {l}: max load {} vs {}",
                    layer.max_load,
                    max[l]
                );
                assert!(
                    layer.lower_bound <= layer.max_load + tol,
                    "{name} layer {l}: bound above load"
                );
            }
            if let Some(gpu_load) = expected.get("gpu_load") {
                let gpu_load: Vec<Vec<f64>> = matrix(gpu_load);
                for (l, layer) in report.layers.iter().enumerate() {
                    for (a, b) in layer.gpu_loads.iter().zip(&gpu_load[l]) {
                        assert!(
                            (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                            "{name} layer {l}: {a} vs {b}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn readme_output_is_reproduced() {
    let g = golden();
    let case = &g["cases"][0];
    let problem =
        Problem::new(weights(&g, "readme"), cluster_of(case), PolicyChoice::Auto).unwrap();
    let solution = solve(&problem, &Greedy, &SolveOptions::default()).unwrap();
    assert_eq!(
        solution.placement.to_deepseek().unwrap().phy2log,
        matrix::<usize>(&case["readme_printed_phy2log"])
    );
}

#[test]
fn every_invalid_case_is_an_error() {
    let g = golden();
    let cases = g["invalid_cases"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let shape: Vec<usize> = serde_json::from_value(case["weights_shape"].clone()).unwrap();
        let loads = Loads::from_flat(shape[0], shape[1], vec![1.0; shape[0] * shape[1]]).unwrap();
        let err = Problem::new(loads, cluster_of(case), PolicyChoice::Auto)
            .expect_err(case["name"].as_str().unwrap());
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn helper_vectors_match_the_engines() {
    let g = golden();
    let mut packer = BalancedPartitioner::default();
    let mut apportioner = Apportioner::default();
    let mut checked = (0, 0);
    for h in g["helpers"].as_array().unwrap() {
        let w: Vec<Vec<f32>> = matrix(&h["weight"]);
        let expected = &h["expected"];
        match h["fn"].as_str().unwrap() {
            "balanced_packing" => {
                let packs = h["num_packs"].as_u64().unwrap() as usize;
                let pack: Vec<Vec<usize>> = matrix(&expected["pack_index"]);
                let rank: Vec<Vec<usize>> = matrix(&expected["rank_in_pack"]);
                for (i, row) in w.iter().enumerate() {
                    let got = packer.greedy(row, packs).unwrap();
                    assert_eq!(got.pack, pack[i], "balanced_packing row {i}");
                    assert_eq!(got.rank, rank[i], "balanced_packing row {i}");
                }
                checked.0 += 1;
            }
            "replicate_experts" => {
                let copies = h["num_phy"].as_u64().unwrap() as usize;
                let phy2log: Vec<Vec<usize>> = matrix(&expected["phy2log"]);
                let rank: Vec<Vec<usize>> = matrix(&expected["rank"]);
                let logcnt: Vec<Vec<usize>> = matrix(&expected["logcnt"]);
                for (i, row) in w.iter().enumerate() {
                    let got = apportioner.greedy_f32(row, copies).unwrap();
                    assert_eq!(got.owner, phy2log[i], "replicate_experts row {i}");
                    assert_eq!(got.rank, rank[i], "replicate_experts row {i}");
                    assert_eq!(got.counts, logcnt[i], "replicate_experts row {i}");
                }
                checked.1 += 1;
            }
            other => panic!("unknown helper {other}"),
        }
    }
    assert_eq!(checked, (6, 3));
}

#[test]
fn deepseek_arrays_round_trip_through_placement() {
    let g = golden();
    for case in g["cases"].as_array().unwrap() {
        let expected = &case["expected"];
        let arrays = eplb::DeepSeekArrays {
            phy2log: matrix(&expected["phy2log"]),
            log2phy: serde_json::from_value(expected["log2phy"].clone()).unwrap(),
            logcnt: matrix(&expected["logcnt"]),
        };
        let e = case["num_experts"].as_u64().unwrap() as usize;
        let p = Placement::from_deepseek(e, &arrays).unwrap();
        assert_eq!(p.to_deepseek().unwrap(), arrays, "{}", case["name"]);
    }
}
