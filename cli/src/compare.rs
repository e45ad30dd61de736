//! `eplb compare`: several strategies on one problem, against the best bound any of them proved.

use std::process::ExitCode;

use clap::Args;
use eplb::compare::compare;
use eplb::EplbError;

use super::report::{comparison_cells, shape, table, COMPARISON_HEADER};
use super::{
    build_strategies, strategy_names, Global, PlotArgs, ProblemArgs, SearchArgs, TopologyArgs,
};

#[derive(Args, Debug)]
pub(crate) struct CompareArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    /// Comma-separated strategies (default: all available).
    #[arg(long, value_name = "A,B,...")]
    strategies: Option<String>,
    #[command(flatten)]
    search: SearchArgs,
    #[command(flatten)]
    topology: TopologyArgs,
    #[command(flatten)]
    plot: PlotArgs,
    /// Worker threads over layers (default: all cores).
    #[arg(long, allow_negative_numbers = true, value_parser = crate::limits::threads)]
    threads: Option<usize>,
}

pub(crate) fn run(args: &CompareArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = &loaded.problem;
    let names = strategy_names(args.strategies.as_deref())?;
    let hierarchical = args.topology.hierarchical(&names, problem.cluster())?;
    let strategies = build_strategies(&names, &hierarchical)?;
    args.plot.check(problem)?;
    let bar = global.progress((problem.num_layers() * strategies.len()) as u64, "solving");
    let c = compare(
        problem,
        &strategies,
        &args.search.solve_options(args.threads),
        &|name, _| {
            bar.set_message(name.to_string());
            bar.inc(1)
        },
    )?;
    bar.finish_and_clear();
    let after: Vec<(&str, &eplb::Evaluation)> = c
        .rows
        .iter()
        .map(|r| (r.strategy.as_str(), &r.evaluation))
        .collect();
    let title = format!("{} — {}", args.problem.loads.display(), shape(problem));
    args.plot.draw(title, problem, &after, global)?;
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
    for row in &c.rows {
        for v in &row.claim_violations {
            eprintln!(
                "warning: layer {}: `{}` {}",
                v.layer, row.strategy, v.violation
            );
        }
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
