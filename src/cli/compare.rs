//! `eplb compare`: several strategies on one problem, against the best bound any of them proved.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eplb::compare::compare;
use eplb::plot::{draw, LoadPlot};
use eplb::{EplbError, SolveOptions};

use super::report::{comparison_cells, shape, table, COMPARISON_HEADER};
use super::{strategy_list, Global, ProblemArgs, SearchArgs};

#[derive(Args, Debug)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    /// Comma-separated strategies (default: all available).
    #[arg(long, value_name = "A,B,...")]
    strategies: Option<String>,
    #[command(flatten)]
    search: SearchArgs,
    /// Draw per-GPU loads (before/after, every strategy) of --plot-layer and per-layer
    /// balancedness (.svg or .png).
    #[arg(long, value_name = "FILE")]
    plot: Option<PathBuf>,
    /// The layer drawn by --plot.
    #[arg(long, value_name = "L", default_value_t = 0)]
    plot_layer: usize,
    /// Worker threads over layers (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
}

pub(crate) fn run(args: &CompareArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    let options = args.search.options();
    let strategies = match &args.strategies {
        Some(list) => strategy_list(list, &options)?,
        None => eplb::strategies::all_with(&options),
    };
    if args.plot.is_some() && args.plot_layer >= problem.num_layers() {
        return Err(EplbError::Format {
            path: "--plot-layer".into(),
            message: format!(
                "layer {} does not exist: the loads have {} layers",
                args.plot_layer,
                problem.num_layers()
            ),
        });
    }
    let bar = global.progress((problem.num_layers() * strategies.len()) as u64, "solving");
    let c = compare(
        problem,
        &strategies,
        &SolveOptions {
            threads: args.threads,
        },
        &|name, _| {
            bar.set_message(name.to_string());
            bar.inc(1)
        },
    )?;
    bar.finish_and_clear();
    if let Some(path) = &args.plot {
        let after: Vec<(&str, &eplb::Evaluation)> = c
            .rows
            .iter()
            .map(|r| (r.strategy.as_str(), &r.evaluation))
            .collect();
        let title = format!("{} — {}", args.problem.loads.display(), shape(problem));
        draw(
            &LoadPlot::new(title, problem, args.plot_layer, &after),
            path,
        )?;
        global.notice(&format!("plot written to {}", path.display()));
    }
    if global.json {
        out!("{}", serde_json::to_string(&c).expect("serialisable"));
    } else {
        out!("{}", shape(problem));
        let mut t = table(&COMPARISON_HEADER);
        for row in &c.rows {
            t.add_row(comparison_cells(row));
        }
        out!("{t}");
        out!("gap = max GPU load / best lower bound of the layer - 1 (a certified upper limit on the distance to optimal)");
    }
    let infeasible: Vec<&str> = c
        .rows
        .iter()
        .filter(|r| r.summary.violations > 0)
        .map(|r| r.strategy.as_str())
        .collect();
    if !infeasible.is_empty() {
        eprintln!(
            "error: infeasible placements from {}",
            infeasible.join(", ")
        );
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}
