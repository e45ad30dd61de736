//! Per-step objectives on the DeepSeek-V3 traces in `../shared/data` (next to the repository).
//!
//! The traces have no step axis (`[layers][experts]` each), so the steps are made two ways:
//!
//! - **phases**: every DeepSeek-V3 trace is one step (four prefill and two decode workloads),
//!   each scaled to the same total per layer so that no workload dominates: a placement that
//!   has to serve changing workloads;
//! - **drift**: 8 steps of one trace (`prefill_in1024`), each expert's load multiplied by a
//!   deterministic pseudo-random factor in `[0.5, 1.5)` per step.
//!
//! For each step set, cluster (R = 288, P = 32; global, and hierarchical with 4 nodes and 8
//! groups) and strategy, the placement for the mean loads is compared with the per-step search
//! (`eplb::objective::optimise`) under `sum-of-step-max` and `worst-step`.
//!
//! ```text
//! cargo run --release -p eplb-lab --bin steps-report [DATA_DIR]
//! ```

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use eplb::formats::read_loads;
use eplb::objective::{evaluate_steps, optimise, Objective, StepLoads};
use eplb::strategies::by_name;
use eplb::{solve, Cluster, Loads, PolicyChoice, Problem, SolveOptions};

const TRACES: [&str; 6] = [
    "deepseek-v3_sglang_prefill_in512",
    "deepseek-v3_sglang_prefill_in1024",
    "deepseek-v3_sglang_prefill_in1000out1000",
    "deepseek-v3_sglang_prefill_in2000out100",
    "deepseek-v3_sglang_decode_in1000out1000",
    "deepseek-v3_sglang_decode_in1800out100",
];

/// The traces folder: the first argument, or `../shared/data` next to the repository.
fn data_dir() -> PathBuf {
    std::env::args_os().nth(1).map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        PathBuf::from,
    )
}

fn read(trace: &str) -> Loads {
    let path = data_dir().join(format!("{trace}.json"));
    read_loads(&path, Default::default())
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .loads
}

/// Every layer scaled to a total of `1e6`.
fn normalised(loads: &Loads) -> Loads {
    let rows: Vec<Vec<f64>> = loads
        .rows()
        .map(|r| {
            let total: f64 = r.iter().sum();
            r.iter().map(|x| x * 1e6 / total).collect()
        })
        .collect();
    Loads::from_rows(&rows).expect("scaled loads are valid")
}

/// A deterministic factor in `[0.5, 1.5)` (splitmix64).
fn factor(seed: u64) -> f64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    0.5 + (z >> 11) as f64 / (1u64 << 53) as f64
}

fn drift(loads: &Loads, steps: usize) -> StepLoads {
    let e = loads.num_experts();
    StepLoads::new(
        (0..steps)
            .map(|s| {
                let rows: Vec<Vec<f64>> = loads
                    .rows()
                    .enumerate()
                    .map(|(l, r)| {
                        r.iter()
                            .enumerate()
                            .map(|(x, w)| w * factor(((s * 1000 + l) * e + x) as u64))
                            .collect()
                    })
                    .collect();
                Loads::from_rows(&rows).expect("scaled loads are valid")
            })
            .collect(),
    )
    .expect("steps of one trace share a shape")
}

fn main() {
    if !data_dir().exists() {
        eprintln!("{} is absent: nothing to measure", data_dir().display());
        return;
    }
    let phases = StepLoads::new(TRACES.iter().map(|t| normalised(&read(t))).collect())
        .expect("the DeepSeek-V3 traces share a shape");
    let drifting = drift(&read("deepseek-v3_sglang_prefill_in1024"), 8);
    println!("| steps | policy | strategy | objective | mean placement | per-step search | change | layers improved | mean objective change | search time |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let options = SolveOptions::new().with_threads(Some(1));
    for (set, steps) in [("phases (6)", &phases), ("drift (8)", &drifting)] {
        for (policy, cluster) in [
            (PolicyChoice::Global, Cluster::new(288, 32)),
            (
                PolicyChoice::Hierarchical,
                Cluster::new(288, 32).with_nodes(4).with_groups(8),
            ),
        ] {
            let problem = Problem::new(steps.total(), cluster, policy).expect("valid shape");
            for name in ["greedy", "refine"] {
                let strategy = by_name(name).expect("built in");
                let mean = solve(&problem, strategy.as_ref(), &options)
                    .expect("solves")
                    .placement;
                let before = evaluate_steps(&problem, steps, &mean).expect("fits");
                for objective in [Objective::SumOfStepMax, Objective::WorstStep] {
                    let start = Instant::now();
                    let per_step =
                        optimise(&problem, steps, &mean, objective, false).expect("fits");
                    let seconds = start.elapsed().as_secs_f64();
                    let after = evaluate_steps(&problem, steps, &per_step).expect("fits");
                    let total = |e: &eplb::objective::StepEvaluation| -> f64 {
                        e.layers.iter().map(|r| r.value(objective)).sum()
                    };
                    let (b, a) = (total(&before), total(&after));
                    let improved = before
                        .layers
                        .iter()
                        .zip(&after.layers)
                        .filter(|(x, y)| y.value(objective) < x.value(objective))
                        .count();
                    assert!(a <= b, "the per-step search made {set} worse");
                    let mean_change = after.summary.mean_max / before.summary.mean_max - 1.0;
                    println!(
                        "| {set} | {} | {name} | {objective} | {b:.0} | {a:.0} | {:+.2}% | {improved}/{} | {:+.2}% | {:.0} ms |",
                        problem.policy(),
                        100.0 * (a - b) / b,
                        problem.num_layers(),
                        100.0 * mean_change,
                        seconds * 1e3
                    );
                }
            }
        }
    }
}
