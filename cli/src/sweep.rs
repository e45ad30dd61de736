//! `eplb sweep`: files x cluster shapes x strategies, one row each, for research.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eplb::compare::compare;
use eplb::strategies::HierarchicalSpec;
use eplb::{Cluster, EplbError, Problem};
use serde::Serialize;

use super::{
    build_strategies, read_loads, strategy_names, write_output, Global, PolicyArg, SearchArgs,
};

#[derive(Args, Debug)]
pub(crate) struct SweepArgs {
    /// Load files (JSON, CSV or .npy).
    #[arg(long, value_name = "FILE", num_args = 1.., required = true)]
    loads: Vec<PathBuf>,
    /// Replica counts R to try (comma-separated).
    #[arg(long, value_name = "R,...", value_delimiter = ',', required = true, allow_negative_numbers = true, value_parser = crate::limits::slots)]
    replicas: Vec<usize>,
    /// GPU counts P to try.
    #[arg(long, value_name = "P,...", value_delimiter = ',', required = true, allow_negative_numbers = true, value_parser = crate::limits::count)]
    gpus: Vec<usize>,
    /// Node counts N to try.
    #[arg(long, value_name = "N,...", value_delimiter = ',', default_value = "1", allow_negative_numbers = true, value_parser = crate::limits::count)]
    nodes: Vec<usize>,
    /// Group counts G to try.
    #[arg(long, value_name = "G,...", value_delimiter = ',', default_value = "1", allow_negative_numbers = true, value_parser = crate::limits::count)]
    groups: Vec<usize>,
    /// Policies to try.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "auto")]
    policy: Vec<PolicyArg>,
    /// Comma-separated strategies (default: all available).
    #[arg(long, value_name = "A,B,...")]
    strategies: Option<String>,
    #[command(flatten)]
    search: SearchArgs,
    /// Keep the leading all-zero layers of SGLang `logical_count` dumps.
    #[arg(long)]
    keep_zero_layers: bool,
    /// Write the rows here: `.json` for JSON, anything else CSV (default: CSV on standard
    /// output, JSON with --json).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

/// One (file, shape, strategy) result.
#[derive(Debug, Serialize)]
struct Row {
    file: String,
    layers: usize,
    experts: usize,
    replicas: usize,
    gpus: usize,
    nodes: usize,
    groups: usize,
    policy: String,
    strategy: String,
    max_load: Option<f64>,
    sum_max_load: Option<f64>,
    balancedness: Option<f64>,
    min_balancedness: Option<f64>,
    mean_lower_bound: Option<f64>,
    max_gap: Option<f64>,
    mean_gap: Option<f64>,
    proven_optimal: Option<usize>,
    time_limited: Option<usize>,
    seconds: Option<f64>,
    error: String,
}

pub(crate) fn run(args: &SweepArgs, global: Global) -> Result<ExitCode, EplbError> {
    let names = strategy_names(args.strategies.as_deref())?;
    let strategies = build_strategies(&names, &HierarchicalSpec::default())?;
    let options = args.search.solve_options(None);
    let files = args
        .loads
        .iter()
        .map(|p| read_loads(p, args.keep_zero_layers, global).map(|f| (p, f)))
        .collect::<Result<Vec<_>, _>>()?;
    let mut shapes = Vec::new();
    for &replicas in &args.replicas {
        for &gpus in &args.gpus {
            for &nodes in &args.nodes {
                for &groups in &args.groups {
                    for &policy in &args.policy {
                        shapes.push((
                            Cluster::new(replicas, gpus)
                                .with_nodes(nodes)
                                .with_groups(groups),
                            policy,
                        ));
                    }
                }
            }
        }
    }
    let total = files.len() * shapes.len() * strategies.len();
    let bar = global.progress(total as u64, "sweep");
    let mut rows = Vec::with_capacity(total);
    for (path, file) in &files {
        for &(cluster, policy) in &shapes {
            let base = |strategy: &str, policy: String, error: String| Row {
                file: path.display().to_string(),
                layers: file.loads.num_layers(),
                experts: file.loads.num_experts(),
                replicas: cluster.replicas,
                gpus: cluster.gpus,
                nodes: cluster.nodes,
                groups: cluster.groups,
                policy,
                strategy: strategy.to_string(),
                max_load: None,
                sum_max_load: None,
                balancedness: None,
                min_balancedness: None,
                mean_lower_bound: None,
                max_gap: None,
                mean_gap: None,
                proven_optimal: None,
                time_limited: None,
                seconds: None,
                error,
            };
            let problem = match Problem::new(file.loads.clone(), cluster, policy.choice()) {
                Ok(p) => p,
                Err(e) => {
                    // An impossible shape is a row with its reason, not the end of the sweep.
                    for s in &strategies {
                        rows.push(base(
                            s.name(),
                            format!("{policy:?}").to_lowercase(),
                            e.to_string(),
                        ));
                        bar.inc(1);
                    }
                    continue;
                }
            };
            let c = compare(&problem, &strategies, &options, &|_, _| {})?;
            let mean_bound = c.best_bounds.iter().sum::<f64>() / c.best_bounds.len().max(1) as f64;
            for r in &c.rows {
                let mut row = base(&r.strategy, problem.policy().to_string(), String::new());
                row.max_load = Some(r.summary.max_load);
                row.sum_max_load = Some(r.summary.sum_max_load);
                row.balancedness = Some(r.summary.balancedness);
                row.min_balancedness = Some(r.summary.min_balancedness);
                row.mean_lower_bound = Some(mean_bound);
                row.max_gap = Some(r.max_gap_to_best_bound);
                row.mean_gap = Some(r.mean_gap_to_best_bound);
                row.proven_optimal = Some(r.proven_optimal);
                row.time_limited = Some(r.stopped_at_limit);
                row.seconds = Some(r.seconds);
                rows.push(row);
                bar.inc(1);
            }
        }
    }
    bar.finish_and_clear();
    let as_json = global.json
        || args
            .out
            .as_ref()
            .is_some_and(|p| p.extension().is_some_and(|e| e == "json"));
    let text = if as_json {
        serde_json::to_string(&rows).expect("serialisable")
    } else {
        let mut w = csv::Writer::from_writer(Vec::new());
        for row in &rows {
            w.serialize(row).expect("writing to memory");
        }
        String::from_utf8(w.into_inner().expect("in memory")).expect("UTF-8")
    };
    write_output(args.out.as_ref(), &text)?;
    if let Some(p) = &args.out {
        global.notice(&format!("{} rows written to {}", rows.len(), p.display()));
    }
    Ok(ExitCode::SUCCESS)
}
