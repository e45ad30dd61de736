//! Quality table of `refine` (and `hierarchical`) against `greedy` on the real traces in
//! `../shared/data` (next to the repository), judged by the evaluator.
//!
//! ```text
//! cargo run --release -p eplb-lab --bin quality            # all traces
//! cargo run --release -p eplb-lab --bin quality -- deepseek # traces whose name contains "deepseek"
//! EPLB_DATA=/path/to/data cargo run --release -p eplb-lab --bin quality # another folder
//! ```
//!
//! Shapes: `R = E + E/8, P = 32` and `R = E + E/4, P = 64`. Global policy: the fraction of
//! layers whose max load is within 0.01% (resp. 0.05%) of `max(sum/P, T_rep)`, and the
//! improvement over greedy `(greedy - refine) / greedy`. Hierarchical policy (8 GPUs per node,
//! 8 groups): the gap to the evaluator's bound, which includes the node-level bound.
//! Timings are single-thread wall times of all layers (orientation only; see the criterion
//! bench `refine` for measurements).

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::time::Instant;

use eplb::formats::read_loads;
use eplb::strategies::{BalancedSplit, Greedy, Hierarchical, Refine};
use eplb::{
    evaluate, solve, Cluster, Loads, PlacementStrategy, PolicyChoice, Problem, SolveOptions,
};

struct Shape {
    extra_divisor: usize,
    gpus: usize,
    target: f64,
}

const SHAPES: [Shape; 2] = [
    Shape {
        extra_divisor: 8,
        gpus: 32,
        target: 1e-4,
    },
    Shape {
        extra_divisor: 4,
        gpus: 64,
        target: 5e-4,
    },
];

const GPUS_PER_NODE: usize = 8;
const GROUPS: usize = 8;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

/// One strategy's per-layer max loads and bounds (from the evaluator) and its wall time.
struct Run {
    max: Vec<f64>,
    bound: Vec<f64>,
    ms: f64,
}

fn run(problem: &Problem, strategy: &dyn PlacementStrategy) -> Result<Run, eplb::EplbError> {
    let t = Instant::now();
    let s = solve(
        problem,
        strategy,
        &SolveOptions::new().with_threads(Some(1)),
    )?;
    let elapsed = t.elapsed().as_secs_f64() * 1e3;
    let report = evaluate(problem, &s.placement, &s.claims())?;
    assert!(report.is_feasible(), "{} infeasible", strategy.name());
    Ok(Run {
        max: report.layers.iter().map(|l| l.max_load).collect(),
        bound: report.layers.iter().map(|l| l.lower_bound).collect(),
        ms: elapsed,
    })
}

fn table(name: &str, loads: &Loads) -> Result<(), eplb::EplbError> {
    let e = loads.num_experts();
    for shape in &SHAPES {
        let replicas = e + e / shape.extra_divisor;
        if !replicas.is_multiple_of(shape.gpus) {
            println!(
                "{name}: R={replicas} does not split over P={}; skipped",
                shape.gpus
            );
            continue;
        }
        let cluster = Cluster::new(replicas, shape.gpus)
            .with_nodes(shape.gpus / GPUS_PER_NODE)
            .with_groups(GROUPS);
        let global = Problem::new(loads.clone(), cluster, PolicyChoice::Global)?;
        let Run {
            max: g_max,
            ms: g_ms,
            ..
        } = run(&global, &Greedy)?;
        let Run {
            max: r_max,
            bound,
            ms: r_ms,
        } = run(&global, &Refine::default())?;
        let Run {
            max: d_max,
            ms: d_ms,
            ..
        } = run(&global, &Refine::deep())?;
        let layers = g_max.len();
        let within = (0..layers)
            .filter(|&l| r_max[l] <= bound[l] * (1.0 + shape.target))
            .count();
        let deep_within = (0..layers)
            .filter(|&l| d_max[l] <= bound[l] * (1.0 + shape.target))
            .count();
        let mut deep_gaps: Vec<f64> = (0..layers).map(|l| d_max[l] / bound[l] - 1.0).collect();
        let deep_worst = deep_gaps.iter().copied().fold(0.0, f64::max);
        let mut gaps: Vec<f64> = (0..layers).map(|l| r_max[l] / bound[l] - 1.0).collect();
        let mut greedy_gaps: Vec<f64> = (0..layers).map(|l| g_max[l] / bound[l] - 1.0).collect();
        let mut improvement: Vec<f64> = (0..layers).map(|l| 1.0 - r_max[l] / g_max[l]).collect();
        let worst_gap = gaps.iter().copied().fold(0.0, f64::max);
        let worst_improvement = improvement.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{name:<48} global R={replicas:<3} P={:<2} within {:.2}%: {within:>2}/{layers} ({:5.1}%)  gap med {:.4}% worst {:.4}% (greedy med {:.3}%)  improvement med {:.3}% worst {:.3}%  time refine {r_ms:.2} ms greedy {g_ms:.2} ms",
            shape.gpus,
            shape.target * 100.0,
            100.0 * within as f64 / layers as f64,
            100.0 * median(&mut gaps),
            100.0 * worst_gap,
            100.0 * median(&mut greedy_gaps),
            100.0 * median(&mut improvement),
            100.0 * worst_improvement,
        );
        println!(
            "{name:<48} global R={replicas:<3} P={:<2} refine-deep within: {deep_within:>2}/{layers}  gap med {:.4}% worst {:.4}%  time {d_ms:.2} ms",
            shape.gpus,
            100.0 * median(&mut deep_gaps),
            100.0 * deep_worst,
        );
        if !e.is_multiple_of(GROUPS) {
            continue;
        }
        let hier = Problem::new(loads.clone(), cluster, PolicyChoice::Hierarchical)?;
        let Run {
            max: g_max,
            bound: g_bound,
            ..
        } = run(&hier, &Greedy)?;
        let Run {
            max: r_max,
            bound,
            ms: r_ms,
        } = run(&hier, &Refine::default())?;
        let split = Hierarchical::two_level(BalancedSplit::default(), Greedy);
        let h_max = run(&hier, &split)?.max;
        let d_max = run(&hier, &Refine::deep())?.max;
        let mut deep_gaps: Vec<f64> = (0..layers).map(|l| d_max[l] / bound[l] - 1.0).collect();
        let deep_worst = deep_gaps.iter().copied().fold(0.0, f64::max);
        let mut gaps: Vec<f64> = (0..layers).map(|l| r_max[l] / bound[l] - 1.0).collect();
        let mut greedy_gaps: Vec<f64> = (0..layers).map(|l| g_max[l] / g_bound[l] - 1.0).collect();
        let mut h_gaps: Vec<f64> = (0..layers).map(|l| h_max[l] / bound[l] - 1.0).collect();
        let mut improvement: Vec<f64> = (0..layers).map(|l| 1.0 - r_max[l] / g_max[l]).collect();
        let worst_gap = gaps.iter().copied().fold(0.0, f64::max);
        let worst_improvement = improvement.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{name:<48} hier   R={replicas:<3} P={:<2} N={}: gap to node bound med {:.4}% worst {:.4}% (greedy med {:.3}%, hierarchical med {:.3}%)  improvement med {:.3}% worst {:.3}%  time refine {r_ms:.2} ms",
            shape.gpus,
            shape.gpus / GPUS_PER_NODE,
            100.0 * median(&mut gaps),
            100.0 * worst_gap,
            100.0 * median(&mut greedy_gaps),
            100.0 * median(&mut h_gaps),
            100.0 * median(&mut improvement),
            100.0 * worst_improvement,
        );
        println!(
            "{name:<48} hier   R={replicas:<3} P={:<2} refine-deep gap to node bound med {:.4}% worst {:.4}%",
            shape.gpus,
            100.0 * median(&mut deep_gaps),
            100.0 * deep_worst,
        );
    }
    Ok(())
}

fn main() -> Result<(), eplb::EplbError> {
    let filter = std::env::args().nth(1).unwrap_or_default();
    // `EPLB_DATA` overrides the folder (e.g. from a worktree that is not next to `shared/`).
    let dir = std::env::var_os("EPLB_DATA").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data"),
        PathBuf::from,
    );
    let Ok(entries) = std::fs::read_dir(&dir) else {
        println!("skipped: {} is absent", dir.display());
        return Ok(());
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .filter(|p| p.to_string_lossy().contains(&filter))
        .collect();
    files.sort();
    for path in files {
        let loads = read_loads(&path, Default::default()).map(|f| f.loads)?;
        let name = path.file_stem().unwrap_or_default().to_string_lossy();
        table(&name, &loads)?;
    }
    Ok(())
}
