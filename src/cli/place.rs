//! `eplb place`: loads in, placement out.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use eplb::formats::deepseek::PlacementDocument;
use eplb::{evaluate, solve, strategies, EplbError, SolveOptions};

use super::report::{layer_table, summary_line};
use super::{write_output, ProblemArgs, SearchArgs};

#[derive(Args, Debug)]
pub(crate) struct PlaceArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    /// Strategy to use (see `eplb strategies`).
    #[arg(long, default_value = "greedy")]
    strategy: String,
    #[command(flatten)]
    search: SearchArgs,
    /// Write the placement JSON here (default: standard output).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Include per-GPU loads of every layer in the JSON.
    #[arg(long)]
    gpu_loads: bool,
    /// Worker threads over layers (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// With --out, print nothing on success.
    #[arg(long, short)]
    quiet: bool,
}

pub(crate) fn run(args: &PlaceArgs) -> Result<ExitCode, EplbError> {
    let problem = args.problem.problem()?;
    let strategy = strategies::by_name_with(&args.strategy, &args.search.options())?;
    let solution = solve(
        &problem,
        strategy.as_ref(),
        &SolveOptions {
            threads: args.threads,
        },
    )?;
    let evaluation = evaluate(&problem, &solution.placement, &solution.claimed_bounds())?;
    let doc = PlacementDocument::new(
        &problem,
        &solution.placement,
        &evaluation,
        Some(&solution),
        args.gpu_loads,
    )?;
    let json = serde_json::to_string(&doc).expect("placement documents serialise");
    write_output(args.out.as_ref(), &json)?;
    if args.out.is_some() && !args.quiet {
        println!("{}", layer_table(&evaluation, Some(&solution)));
        println!("{}", summary_line(&evaluation));
    }
    if !evaluation.is_feasible() {
        eprintln!(
            "error: strategy `{}` produced an infeasible placement",
            strategy.name()
        );
        return Ok(ExitCode::from(super::EXIT_FAILURE));
    }
    Ok(ExitCode::SUCCESS)
}
