//! Wall time of one strategy over all layers of a trace, one thread: the minimum and median
//! of 20 passes (`PASSES=n` to change) (orientation; the criterion bench `refine` is the measurement).
//!
//! ```text
//! cargo run --release --example speed -- refine ../shared/data/deepseek-v3_sglang_prefill_in1024.json 288 32 global
//! ```

use std::path::Path;
use std::time::Instant;

use eplb::formats::read_loads;
use eplb::{strategies, Cluster, PolicyChoice, Problem};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [name, path, replicas, gpus, policy] = args.as_slice() else {
        return Err("usage: speed STRATEGY LOADS.json REPLICAS GPUS global|hierarchical".into());
    };
    let loads = read_loads(Path::new(path), Default::default()).map(|f| f.loads)?;
    let gpus: usize = gpus.parse()?;
    let cluster = Cluster::new(replicas.parse()?, gpus)
        .with_nodes((gpus / 8).max(1))
        .with_groups(8);
    let policy = match policy.as_str() {
        "global" => PolicyChoice::Global,
        _ => PolicyChoice::Hierarchical,
    };
    let problem = Problem::new(loads, cluster, policy)?;
    // STOP_GAP=x: `refine` with that stop gap (for tuning).
    let strategy = match std::env::var("STOP_GAP").ok().and_then(|g| g.parse().ok()) {
        Some(stop_gap) if name == "refine" => Box::new(strategies::Refine::with_limits(
            eplb_solvers::rebalance::PackLimits {
                stop_gap,
                ..Default::default()
            },
        )),
        _ => strategies::by_name(name)?,
    };
    let mut times = Vec::new();
    let passes: usize = std::env::var("PASSES")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(20);
    for _ in 0..passes.max(1) {
        let t = Instant::now();
        for layer in problem.layers() {
            std::hint::black_box(strategy.solve_layer(&layer)?);
        }
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "{name}: {} layers, min {:.3} ms, median {:.3} ms per pass",
        problem.num_layers(),
        times[0],
        times[times.len() / 2]
    );
    Ok(())
}
