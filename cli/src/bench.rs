//! `eplb bench`: median wall time of one full multi-layer solve into DeepSeek's three tables
//! (`phy2log`, `log2phy`, `logcnt` of every layer, as `eplb.py` returns them), or into
//! `phy2log` alone (`--tables phy2log`, as vLLM's `rebalance_experts` returns it), in-process.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::{Args, ValueEnum};
use eplb::live::{rebalance, LiveGpus, TransferPlan};
use eplb::runner::solve_tables;
use eplb::{EplbError, Tables};

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
    /// Which tables each solve builds: all three, or phy2log alone (what vLLM's
    /// `rebalance_experts` returns). Not with --current.
    #[arg(long, value_enum, default_value_t = TablesArg::All, conflicts_with = "current")]
    tables: TablesArg,
    /// Untimed solves first.
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    /// Worker threads over layers (1 = one core, the calling thread).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true, value_parser = crate::limits::threads)]
    threads: usize,
    /// Time a whole rebalance from this placement instead of a solve: the fresh placement of
    /// --strategy, the budgeted search, alignment and the transfer plan.
    #[arg(long, value_name = "FILE")]
    current: Option<PathBuf>,
    /// With --current: time the budgeted search, alignment and plan alone (no fresh
    /// placement).
    #[arg(long, requires = "current")]
    no_fresh: bool,
    #[command(flatten)]
    budget: super::rebalance::BudgetArgs,
    /// With --current: GPUs that failed, as `rebalance --failed-gpus` (the rebalance places on
    /// the others; a GPU whose slots are -1 in the current placement must be listed).
    #[command(flatten)]
    failed: super::rebalance::FailedArgs,
}

/// `--tables`: which of DeepSeek's tables a timed solve builds.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum TablesArg {
    /// phy2log, log2phy and logcnt (eplb.py's `rebalance_experts`).
    All,
    /// phy2log only (vLLM's `rebalance_experts`).
    Phy2log,
}

impl From<TablesArg> for Tables {
    fn from(arg: TablesArg) -> Self {
        match arg {
            TablesArg::All => Tables::All,
            TablesArg::Phy2log => Tables::Phy2log,
        }
    }
}

pub(crate) fn run(args: &BenchArgs, global: Global) -> Result<ExitCode, EplbError> {
    let loaded = args.problem.load(global)?;
    let live = args.failed.live(loaded.problem.cluster())?;
    if live.is_some() && args.current.is_none() {
        return Err(EplbError::InvalidFailedGpus(
            "--failed-gpus needs --current: bench times a rebalance on the live GPUs (time `place --failed-gpus` with a shell timer)".into(),
        ));
    }
    let current = args
        .current
        .as_ref()
        .map(|path| super::rebalance::read_current(path, &loaded, live.as_ref()))
        .transpose()?;
    let problem = loaded.problem;
    let strategy = args.strategy.build(problem.cluster())?;
    let options = args
        .strategy
        .search
        .solve_options(Some(args.threads.max(1)));
    let mut rebalance_options = args.budget.options(options.clone());
    if let Some(live) = &live {
        rebalance_options = rebalance_options.with_live(live.clone());
    }
    let all = LiveGpus::all(problem.cluster().gpus);
    let mask = live.as_ref().unwrap_or(&all);
    let fresh = (!args.no_fresh).then_some(strategy.as_ref());
    let run_once = || -> Result<(), EplbError> {
        match &current {
            None => {
                // What eplb.py's `rebalance_experts` returns, the three tables of every
                // layer, or vLLM's, phy2log alone.
                std::hint::black_box(solve_tables(
                    &problem,
                    strategy.as_ref(),
                    &options,
                    args.tables.into(),
                )?);
            }
            Some(current) => {
                let result = rebalance(&problem, current, fresh, &rebalance_options)?;
                let plan = TransferPlan::with_live(
                    &problem,
                    current,
                    &result.placement,
                    rebalance_options.expert_bytes,
                    mask,
                )?;
                std::hint::black_box((result, plan));
            }
        }
        Ok(())
    };
    for _ in 0..args.warmup {
        run_once()?;
    }
    let mut ns = Vec::with_capacity(args.iterations as usize);
    for _ in 0..args.iterations {
        let t = Instant::now();
        run_once()?;
        ns.push(t.elapsed().as_nanos() as u64);
    }
    ns.sort_unstable();
    let median = if ns.len() % 2 == 1 {
        ns[ns.len() / 2]
    } else {
        (ns[ns.len() / 2 - 1] + ns[ns.len() / 2]) / 2
    };
    let mut out = serde_json::json!({
        "strategy": strategy.name(),
        "rebalance": current.is_some().then_some(if args.no_fresh { "search" } else { "fresh+search" }),
        "effort": current.is_some().then_some(rebalance_options.effort),
        "policy": problem.policy(),
        "layers": problem.num_layers(),
        "experts": problem.num_experts(),
        "cluster": problem.cluster(),
        "threads": args.threads.max(1),
        "tables": current.is_none().then_some(match args.tables {
            TablesArg::All => "all",
            TablesArg::Phy2log => "phy2log",
        }),
        "iterations": ns.len(),
        "median_ns": median,
        "min_ns": ns[0],
        "max_ns": ns[ns.len() - 1],
        "mean_ns": ns.iter().sum::<u64>() / ns.len() as u64,
    });
    if let Some(live) = &live {
        out["failed_gpus"] = serde_json::json!(live.failed());
    }
    out!("{out}");
    Ok(ExitCode::SUCCESS)
}
