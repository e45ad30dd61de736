//! A strategy written outside the crate: implemented, composed with the built-in
//! decomposition, compared with the built-ins and held to every conformance property.
//!
//! ```text
//! cargo run --example custom_strategy --features testing
//! ```

#![forbid(unsafe_code)]

use std::time::Duration;

use eplb::compare::compare;
use eplb::strategies::{self, BalancedSplit, Hierarchical};
use eplb::synthetic::{lognormal_loads, readme_example};
use eplb::testing::generate::{arb_problem, sample};
use eplb::testing::{check_strategy, CheckOptions};
use eplb::{
    Cluster, LayerPlacement, LayerProblem, LayerSolution, PlacementStrategy, PolicyChoice, Problem,
    Result, SolveOptions,
};

/// Longest processing time first: every extra replica to the expert with the heaviest
/// per-replica load, then the replicas, heaviest first, each onto the least loaded GPU that
/// still has a free slot. Treats the layer as one pool of GPUs (the global policy); under the
/// hierarchical policy it runs inside [`Hierarchical`], which keeps groups on their nodes.
struct Lpt;

impl PlacementStrategy for Lpt {
    fn name(&self) -> &str {
        "lpt"
    }

    fn description(&self) -> &str {
        "heaviest replica first onto the least loaded GPU with a free slot"
    }

    fn solve_layer(&self, layer: &LayerProblem<'_>) -> Result<LayerSolution> {
        let w = layer.loads();
        let cluster = layer.cluster();
        let share = |e: usize, copies: &[usize]| w[e] / copies[e] as f64;
        let mut copies = vec![1usize; w.len()];
        for _ in w.len()..cluster.replicas {
            let heaviest = (0..w.len())
                .max_by(|&a, &b| {
                    share(a, &copies)
                        .total_cmp(&share(b, &copies))
                        .then(b.cmp(&a))
                })
                .expect("a layer has experts");
            copies[heaviest] += 1;
        }
        let mut replicas: Vec<usize> = (0..w.len())
            .flat_map(|e| std::iter::repeat_n(e, copies[e]))
            .collect();
        replicas.sort_by(|&a, &b| {
            share(b, &copies)
                .total_cmp(&share(a, &copies))
                .then(a.cmp(&b))
        });
        let per_gpu = cluster.slots_per_gpu();
        let mut gpus: Vec<Vec<usize>> = vec![Vec::with_capacity(per_gpu); cluster.gpus];
        let mut loads = vec![0.0f64; cluster.gpus];
        for e in replicas {
            let gpu = (0..cluster.gpus)
                .filter(|&g| gpus[g].len() < per_gpu)
                .min_by(|&a, &b| loads[a].total_cmp(&loads[b]))
                .expect("R = P x S slots for R replicas");
            gpus[gpu].push(e);
            loads[gpu] += share(e, &copies);
        }
        Ok(LayerSolution::heuristic(LayerPlacement::from_phy2log(
            gpus.concat(),
        )))
    }
}

/// `lpt` under both policies: the two-level decomposition with `lpt` inside each node.
fn lpt() -> Hierarchical<BalancedSplit, Lpt> {
    Hierarchical::two_level(BalancedSplit::default(), Lpt).named("lpt")
}

fn main() -> std::result::Result<(), Box<dyn std::error::Error>> {
    // The searching strategies (`exact`, `ilp`) stop each layer after 200 ms.
    let limits = SolveOptions::new().with_time_limit(Some(Duration::from_millis(200)));
    let mut field = strategies::all();
    field.push(Box::new(lpt()));

    // 1. Compared with the built-ins, against the best bound any of them proved.
    let cases = [
        (
            "eplb.py README",
            readme_example(),
            Cluster::new(16, 8).with_nodes(2).with_groups(4),
        ),
        (
            "synthetic 4x64",
            lognormal_loads(4, 64, 0.8, 1_000_000, 7),
            Cluster::new(80, 16).with_nodes(2).with_groups(8),
        ),
    ];
    for (name, loads, cluster) in cases {
        for policy in [PolicyChoice::Global, PolicyChoice::Hierarchical] {
            let problem = Problem::new(loads.clone(), cluster, policy)?;
            let c = compare(&problem, &field, &limits, &|_, _| {})?;
            println!("{name}, {} policy:", problem.policy());
            for row in &c.rows {
                println!(
                    "  {:<14} step load {:>12.1}  max gap to best bound {:>8.4}%  proven optimal {}/{}",
                    row.strategy,
                    row.summary.sum_max_load,
                    100.0 * row.max_gap_to_best_bound,
                    row.proven_optimal,
                    row.summary.layers
                );
                for v in &row.claim_violations {
                    println!("    refuted claim on layer {}: {}", v.layer, v.violation);
                }
            }
        }
    }

    // 2. Every conformance property, on random problems, with the built-ins as references.
    let references = strategies::all();
    let options = CheckOptions::default()
        .references(&references)
        .time_limit(Duration::from_millis(200));
    let problems = 32;
    for seed in 0..problems {
        let problem = sample(&arb_problem(8, 6), seed);
        check_strategy(&lpt(), &problem, &options)?;
    }
    println!("lpt passes every conformance property on {problems} random problems");
    Ok(())
}
