//! Certified comparison of `greedy` and `ilp`, layer by layer, on a load file.
//!
//! ```text
//! cargo run --release -p eplb-lab --features highs --bin ilp-report -- \
//!     FILE R P N G POLICY SECS [LAYERS]
//! ```
//!
//! `POLICY` is `global` or `hierarchical`, `SECS` the time limit per layer, `LAYERS` an
//! optional comma-separated list of layer indices (default: all). Prints one line per layer
//! (greedy's and ilp's max load, ilp's status, the certified bound and both gaps, the time)
//! and a summary.

#![forbid(unsafe_code)]

use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use eplb::evaluate::evaluate_layer;
use eplb::formats::read_loads;
use eplb::strategies::{Greedy, Ilp};
use eplb::{Cluster, LayerBudget, PlacementStrategy, PolicyChoice, Problem, SolveStatus};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 7 {
        return Err("usage: ilp-report FILE R P N G global|hierarchical SECS [LAYERS]".into());
    }
    let loads = read_loads(Path::new(&args[0]), Default::default())?.loads;
    let cluster = Cluster::new(args[1].parse()?, args[2].parse()?)
        .with_nodes(args[3].parse()?)
        .with_groups(args[4].parse()?);
    let policy = match args[5].as_str() {
        "global" => PolicyChoice::Global,
        "hierarchical" => PolicyChoice::Hierarchical,
        other => return Err(format!("unknown policy {other}: global or hierarchical").into()),
    };
    let limit = Duration::from_secs_f64(args[6].parse()?);
    let problem = Problem::new(loads, cluster, policy)?;
    let layers: Vec<usize> = match args.get(7) {
        Some(list) => list.split(',').map(str::parse).collect::<Result<_, _>>()?,
        None => (0..problem.num_layers()).collect(),
    };
    let ilp = Ilp::default();
    println!(
        "backend {} | policy {} | time limit {:?} per layer",
        ilp.backend().name(),
        problem.policy(),
        limit
    );
    println!(
        "layer  greedy_max      ilp_max        bound      greedy_gap  ilp_gap     status      secs"
    );
    let (mut optimal, mut greedy_gaps, mut ilp_gaps, mut secs) = (0, Vec::new(), Vec::new(), 0.0);
    for &l in &layers {
        if l >= problem.num_layers() {
            return Err(format!("layer {l} out of range").into());
        }
        let layer = problem.layer(l);
        let greedy = Greedy.solve_layer(&layer)?;
        let t = Instant::now();
        let budget = LayerBudget::new().with_deadline(Some(t + limit));
        let s = ilp.solve_layer(&layer.with_budget(budget))?;
        let elapsed = t.elapsed().as_secs_f64();
        let report = evaluate_layer(&layer, &s.placement, s.lower_bound);
        let greedy_report = evaluate_layer(&layer, &greedy.placement, Some(report.lower_bound));
        assert!(report.violations.is_empty(), "infeasible ilp placement");
        optimal += usize::from(s.status == SolveStatus::Optimal);
        greedy_gaps.push(greedy_report.gap);
        ilp_gaps.push(report.gap);
        secs += elapsed;
        println!(
            "{l:>5}  {:>12.4} {:>12.4} {:>12.4}  {:>9.4}%  {:>9.5}%  {:<10} {:>6.2}",
            greedy_report.max_load,
            report.max_load,
            report.lower_bound,
            100.0 * greedy_report.gap,
            100.0 * report.gap,
            s.status.to_string(),
            elapsed
        );
    }
    let stats = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    let (gm, gx) = stats(&mut greedy_gaps);
    let (im, ix) = stats(&mut ilp_gaps);
    println!(
        "summary: {} layers, {optimal} proven optimal | greedy certified gap median {:.4}% max {:.4}% | ilp gap median {:.5}% max {:.5}% | {:.1} s total",
        layers.len(),
        100.0 * gm,
        100.0 * gx,
        100.0 * im,
        100.0 * ix,
        secs
    );
    Ok(())
}
