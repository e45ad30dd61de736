//! `eplb bench`: median wall time of one full multi-layer solve, in-process.

use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use eplb::{solve, EplbError};

use super::{Global, ProblemArgs, StrategyArgs};

#[derive(Args, Debug)]
pub(crate) struct BenchArgs {
    #[command(flatten)]
    problem: ProblemArgs,
    #[command(flatten)]
    strategy: StrategyArgs,
    /// Timed solves.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    iterations: u32,
    /// Untimed solves first.
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    /// Worker threads over layers (1 = one core, the calling thread).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = crate::limits::threads)]
    threads: usize,
}

pub(crate) fn run(args: &BenchArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let problem = loaded.problem;
    let strategy = args.strategy.build(problem.cluster())?;
    let options = args
        .strategy
        .search
        .solve_options(Some(args.threads.max(1)));
    for _ in 0..args.warmup {
        solve(&problem, strategy.as_ref(), &options)?;
    }
    let mut ns = Vec::with_capacity(args.iterations as usize);
    for _ in 0..args.iterations {
        let t = Instant::now();
        let solution = solve(&problem, strategy.as_ref(), &options)?;
        ns.push(t.elapsed().as_nanos() as u64);
        std::hint::black_box(solution);
    }
    ns.sort_unstable();
    let median = if ns.len() % 2 == 1 {
        ns[ns.len() / 2]
    } else {
        (ns[ns.len() / 2 - 1] + ns[ns.len() / 2]) / 2
    };
    let out = serde_json::json!({
        "strategy": strategy.name(),
        "policy": problem.policy(),
        "layers": problem.num_layers(),
        "experts": problem.num_experts(),
        "cluster": problem.cluster(),
        "threads": args.threads.max(1),
        "iterations": ns.len(),
        "median_ns": median,
        "min_ns": ns[0],
        "max_ns": ns[ns.len() - 1],
        "mean_ns": ns.iter().sum::<u64>() / ns.len() as u64,
    });
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}
