//! `eplb demo`: every strategy on built-in examples, with a comparison table and a reading.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use eplb::compare::{compare, Comparison};
use eplb::strategies;
use eplb::synthetic::{lognormal_loads, readme_example};
use eplb::{Cluster, EplbError, Loads, PlacementStrategy, PolicyChoice, Problem, SolveOptions};

use super::report::{comparison_cells, pct, table, COMPARISON_HEADER};
use super::Global;

#[derive(Args, Debug)]
pub(crate) struct DemoArgs {}

/// A built-in example.
struct Instance {
    name: &'static str,
    loads: Loads,
    cluster: Cluster,
    /// Strategies too slow for this instance within a demo's seconds.
    skip: &'static [&'static str],
}

fn instances() -> Vec<Instance> {
    vec![
        Instance {
            name: "eplb.py README (2x12, R=16, P=8, N=2, G=4)",
            loads: readme_example(),
            cluster: Cluster::new(16, 8).with_nodes(2).with_groups(4),
            skip: &[],
        },
        Instance {
            name: "synthetic DeepSeek-V3 (58x256, R=288, P=32, N=4, G=8)",
            loads: lognormal_loads(58, 256, 0.8, 16_384 * 8, 2026),
            cluster: Cluster::new(288, 32).with_nodes(4).with_groups(8),
            // A MILP over 256 experts needs seconds per layer just to build.
            skip: &["ilp"],
        },
    ]
}

/// Time an exact strategy may search one layer in the demo (the demo must stay within seconds;
/// `eplb compare --time-limit` searches longer).
const DEMO_TIME_LIMIT: Duration = Duration::from_millis(40);

pub(crate) fn run(_args: &DemoArgs, global: Global) -> Result<ExitCode, EplbError> {
    let options = SolveOptions::new()
        .with_time_limit(Some(DEMO_TIME_LIMIT))
        .with_kernels(crate::kernels_from_env());
    let strategies = strategies::all();
    let mut results: Vec<(String, PolicyChoice, Comparison)> = Vec::new();
    let instances = instances();
    let layers: usize = instances.iter().map(|i| i.loads.num_layers()).sum();
    let bar = global.progress((2 * layers * strategies.len()) as u64, "demo");
    for instance in instances {
        let chosen: Vec<Box<dyn PlacementStrategy>> = strategies::all()
            .into_iter()
            .filter(|s| !instance.skip.contains(&s.name()))
            .collect();
        for policy in [PolicyChoice::Hierarchical, PolicyChoice::Global] {
            let problem = Problem::new(instance.loads.clone(), instance.cluster, policy)?;
            let c = compare(&problem, &chosen, &options, &|_, _| bar.inc(1))?;
            results.push((instance.name.to_string(), policy, c));
        }
    }
    bar.finish_and_clear();
    if global.json {
        let out: Vec<_> = results
            .iter()
            .map(|(name, policy, c)| serde_json::json!({"instance": name, "policy": policy, "comparison": c}))
            .collect();
        out!("{}", serde_json::Value::Array(out));
        return Ok(ExitCode::SUCCESS);
    }
    let mut header = vec!["instance", "policy"];
    header.extend(COMPARISON_HEADER);
    let mut t = table(&header);
    for (name, policy, c) in &results {
        for row in &c.rows {
            let mut cells = vec![
                comfy_table::Cell::new(name),
                comfy_table::Cell::new(format!("{policy:?}").to_lowercase()),
            ];
            cells.extend(comparison_cells(row));
            t.add_row(cells);
        }
    }
    out!("{t}");
    out!("");
    out!("{}", reading(&results));
    Ok(ExitCode::SUCCESS)
}

/// A paragraph that reads the table for the user, computed from the results.
fn reading(results: &[(String, PolicyChoice, Comparison)]) -> String {
    let mut lines = vec![format!(
        "How to read this: each placement's max GPU load is compared with the best lower bound \
         any method proved for that layer, so a gap of 0.5% means the placement is at most 0.5% \
         slower than the best possible one (the true gap may be smaller when the bound is not \
         tight). Balancedness is mean/max GPU load over the whole step (1 is perfect). Exact \
         strategies searched {} ms per layer here; \"proven optimal\" counts the layers they \
         proved (eplb compare --time-limit SECS searches longer). `ilp` runs on the small \
         example only: on 256 experts use `eplb compare --strategies ilp --time-limit 30`, \
         best built with `--features highs`.",
        DEMO_TIME_LIMIT.as_millis()
    )];
    for (name, policy, c) in results {
        let best = c
            .rows
            .iter()
            .min_by(|a, b| a.summary.sum_max_load.total_cmp(&b.summary.sum_max_load))
            .expect("at least one strategy");
        let greedy = c.rows.iter().find(|r| r.strategy == "greedy");
        let mut s = format!(
            "On {name} ({}), `{}` is best: worst layer within {} of the bound.",
            format!("{policy:?}").to_lowercase(),
            best.strategy,
            pct(best.max_gap_to_best_bound)
        );
        if let Some(g) = greedy {
            if g.strategy != best.strategy {
                s.push_str(&format!(
                    " DeepSeek's greedy is {} slower over the step and up to {} above the bound.",
                    pct(g.summary.sum_max_load / best.summary.sum_max_load - 1.0),
                    pct(g.max_gap_to_best_bound)
                ));
            } else {
                s.push_str(&format!(
                    " Greedy's worst layer is certified within {} of optimal.",
                    pct(g.max_gap_to_best_bound)
                ));
            }
        }
        lines.push(s);
    }
    lines.join("\n")
}
